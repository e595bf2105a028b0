/* Reads the image names out of `docker save` and OCI layout tarballs, and
 * normalises references the way containerd does. The archive is untrusted
 * input: only three small JSON members are read, with a limit, and nothing
 * from it reaches a message without being made printable. */
#include "imagearchive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "buf.h"

/* ---- references ------------------------------------------------------- */

#define NAME_MAX_LEN 255 /* distribution/reference NameTotalLengthMax */
#define TAG_MAX_LEN 128

static bool is_lower_alnum(char c) {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c) {
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c) {
	return c >= '0' && c <= '9';
}

static bool is_lower_hex(char c) {
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* [a-z0-9]+ joined by '.', '_', '__' or runs of '-'. */
static bool valid_path_component(const char *s, size_t n) {
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == n)
			return true;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += i + 1 < n && s[i + 1] == '_' ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return false;
	}
}

/* Components separated by single slashes. */
static bool valid_path(const char *s, size_t n) {
	if (n == 0)
		return false;
	for (size_t start = 0;;) {
		const char *slash = memchr(s + start, '/', n - start);
		size_t end = slash ? (size_t)(slash - s) : n;
		if (!valid_path_component(s + start, end - start))
			return false;
		if (!slash)
			return true;
		start = end + 1;
	}
}

/* A host name label: alphanumerics, '-' inside. */
static bool valid_domain_label(const char *s, size_t n) {
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* host[:port], host a DNS name or a bracketed IPv6 address. */
static bool valid_domain(const char *s, size_t n) {
	size_t host_len = n;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!is_digit(*p) && !strchr("abcdefABCDEF:", *p))
				return false;
		host_len = (size_t)(close - s) + 1;
	} else {
		const char *colon = memchr(s, ':', n);
		if (colon)
			host_len = (size_t)(colon - s);
		for (size_t start = 0;;) {
			const char *dot = memchr(s + start, '.', host_len - start);
			size_t end = dot ? (size_t)(dot - s) : host_len;
			if (!valid_domain_label(s + start, end - start))
				return false;
			if (!dot)
				break;
			start = end + 1;
		}
	}
	if (host_len == n)
		return true;
	if (s[host_len] != ':' || host_len + 1 == n)
		return false;
	for (size_t i = host_len + 1; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

static bool valid_tag(const char *s, size_t n) {
	if (n == 0 || n > TAG_MAX_LEN || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* go-digest: an algorithm it knows and its lowercase hex encoding. */
static bool valid_digest(const char *s) {
	static const struct { const char *prefix; size_t hex_len; } algorithms[] = {
		{ "sha256:", 64 }, { "sha384:", 96 }, { "sha512:", 128 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(algorithms); i++) {
		if (!startswith(s, algorithms[i].prefix))
			continue;
		const char *hex = s + strlen(algorithms[i].prefix);
		size_t n = strlen(hex);
		if (n != algorithms[i].hex_len)
			return false;
		for (size_t k = 0; k < n; k++)
			if (!is_lower_hex(hex[k]))
				return false;
		return true;
	}
	return false;
}

/* Docker refuses a bare image id where a name is expected. */
static bool is_image_id(const char *s) {
	size_t n = strlen(s);
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return true;
}

char *image_ref_normalize(const char *ref) {
	if (!ref || is_image_id(ref))
		return NULL;
	const char *at = strchr(ref, '@');
	size_t rest_len = at ? (size_t)(at - ref) : strlen(ref);
	if (at && !valid_digest(at + 1))
		return NULL;

	/* The tag is after the last ':' that follows the last '/'. */
	const char *slash = memrchr(ref, '/', rest_len);
	const char *after_slash = slash ? slash + 1 : ref;
	const char *colon = memchr(after_slash, ':', rest_len - (size_t)(after_slash - ref));
	size_t name_len = colon ? (size_t)(colon - ref) : rest_len;
	if (colon && !valid_tag(colon + 1, rest_len - name_len - 1))
		return NULL;

	/* docker's splitDockerDomain: a first component is a registry when it
	 * looks like a host name, is localhost, or has capitals (which a
	 * repository path cannot have). */
	const char *first_slash = memchr(ref, '/', name_len);
	const char *domain = "docker.io", *path = ref;
	size_t domain_len = strlen(domain), path_len = name_len;
	if (first_slash) {
		size_t first_len = (size_t)(first_slash - ref);
		bool host_like = memchr(ref, '.', first_len) || memchr(ref, ':', first_len) ||
				 (first_len == 9 && memcmp(ref, "localhost", 9) == 0);
		for (size_t i = 0; i < first_len && !host_like; i++)
			host_like = ref[i] >= 'A' && ref[i] <= 'Z';
		if (host_like) {
			domain = ref;
			domain_len = first_len;
			path = first_slash + 1;
			path_len = name_len - first_len - 1;
			if (!valid_domain(domain, domain_len))
				return NULL;
		}
	}
	if (!valid_path(path, path_len))
		return NULL;
	if (domain_len == 15 && memcmp(domain, "index.docker.io", 15) == 0) {
		domain = "docker.io";
		domain_len = 9;
	}
	bool official = domain_len == 9 && memcmp(domain, "docker.io", 9) == 0 && !memchr(path, '/', path_len);
	char *name = xasprintf("%.*s/%s%.*s", (int)domain_len, domain, official ? "library/" : "", (int)path_len, path);
	if (strlen(name) > NAME_MAX_LEN) {
		free(name);
		return NULL;
	}
	/* ParseDockerRef: a digest pins the image, so a tag beside it is dropped. */
	char *out;
	if (at)
		out = xasprintf("%s%s", name, at);
	else if (colon)
		out = xasprintf("%s%.*s", name, (int)(rest_len - name_len), colon);
	else
		out = xasprintf("%s:latest", name);
	free(name);
	return out;
}

/* ---- the JSON inside -------------------------------------------------- */

struct json_ctx {
	const char *path;       /* the archive */
	const char *member;     /* "manifest.json", ... */
	const struct srcloc *at; /* where the recipe names the archive */
	struct diags *d;
};

/* Archive text made safe to print: no control bytes, bounded length. */
static char *printable(const char *s) {
	size_t n = strlen(s), max = 200;
	char *out = xstrndup(s, n > max ? max : n);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	if (n > max) {
		char *longer = xasprintf("%s...", out);
		free(out);
		out = longer;
	}
	return out;
}

static int json_parse(const struct json_ctx *c, const char *text, size_t len, json_object **ret) {
	json_tokener *tok = json_tokener_new();
	if (!tok)
		die_oom();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* The terminating NUL tells json-c the input is complete. */
	json_object *o = json_tokener_parse_ex(tok, text, (int)len + 1);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (e != json_tokener_success || !o) {
		diag_error(c->d, c->at, "'%s': %s is not valid JSON: %s at byte %zu", c->path, c->member,
			   json_tokener_error_desc(e), end);
		json_object_put(o);
		return -EINVAL;
	}
	if (end < len) {
		diag_error(c->d, c->at, "'%s': %s is not valid JSON: unexpected data after the end at byte %zu", c->path,
			   c->member, end);
		json_object_put(o);
		return -EINVAL;
	}
	*ret = o;
	return 0;
}

/* A string member as a C string; NULL when it is not one (or holds NUL). */
static const char *json_string(json_object *o) {
	if (!json_object_is_type(o, json_type_string))
		return NULL;
	const char *s = json_object_get_string(o);
	return s && strlen(s) == (size_t)json_object_get_string_len(o) ? s : NULL;
}

static int add_ref(const struct json_ctx *c, const char *ref, bool warn_unnormalised, struct strv *refs) {
	char *norm = image_ref_normalize(ref);
	if (!norm) {
		_cleanup_free_ char *shown = printable(ref);
		diag_error(c->d, c->at, "'%s': %s names an invalid image reference '%s'", c->path, c->member, shown);
		return -EINVAL;
	}
	if (warn_unnormalised && !streq(norm, ref)) {
		_cleanup_free_ char *shown = printable(ref);
		diag_warning(c->d, c->at,
			     "'%s': %s names '%s', which ctr images import keeps as is; the kubelet looks for '%s'",
			     c->path, c->member, shown, norm);
	}
	strv_push_take(refs, norm);
	return 0;
}

static int no_name(const struct json_ctx *c, const char *hint) {
	diag_error(c->d, c->at, "'%s' holds an image without a name (%s)", c->path, hint);
	return -EINVAL;
}

/* [{"Config": ..., "RepoTags": ["name:tag", ...], "Layers": [...]}, ...] */
static int refs_from_manifest(const struct json_ctx *c, json_object *root, struct strv *refs) {
	if (!json_object_is_type(root, json_type_array)) {
		diag_error(c->d, c->at, "'%s': %s is not a list of images", c->path, c->member);
		return -EINVAL;
	}
	size_t n = json_object_array_length(root);
	if (n == 0) {
		diag_error(c->d, c->at, "'%s' holds no images (%s lists none)", c->path, c->member);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *image = json_object_array_get_idx(root, i), *tags = NULL;
		if (!json_object_is_type(image, json_type_object)) {
			diag_error(c->d, c->at, "'%s': %s: image %zu is not an object", c->path, c->member, i + 1);
			return -EINVAL;
		}
		/* docker save by image id writes "RepoTags": null */
		json_object_object_get_ex(image, "RepoTags", &tags);
		if (!tags || (json_object_is_type(tags, json_type_array) && json_object_array_length(tags) == 0))
			return no_name(c, "docker save IMAGE:TAG, not an image id");
		if (!json_object_is_type(tags, json_type_array)) {
			diag_error(c->d, c->at, "'%s': %s: RepoTags of image %zu is not a list of strings", c->path,
				   c->member, i + 1);
			return -EINVAL;
		}
		for (size_t k = 0; k < json_object_array_length(tags); k++) {
			const char *tag = json_string(json_object_array_get_idx(tags, k));
			if (!tag) {
				diag_error(c->d, c->at, "'%s': %s: RepoTags of image %zu is not a list of strings", c->path,
					   c->member, i + 1);
				return -EINVAL;
			}
			int r = add_ref(c, tag, false, refs);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* An annotation's value; *ret NULL when absent. Wrong types are errors. */
static int annotation(const struct json_ctx *c, json_object *annotations, const char *key, size_t index,
		      const char **ret) {
	json_object *v = NULL;
	*ret = NULL;
	if (!annotations || !json_object_object_get_ex(annotations, key, &v))
		return 0;
	*ret = json_string(v);
	if (!*ret) {
		diag_error(c->d, c->at, "'%s': %s: annotation %s of manifest %zu is not a string", c->path, c->member, key,
			   index + 1);
		return -EINVAL;
	}
	return 0;
}

/* {"manifests": [{"annotations": {"io.containerd.image.name": ...}}, ...]} */
static int refs_from_index(const struct json_ctx *c, json_object *root, struct strv *refs) {
	json_object *manifests = NULL;
	if (!json_object_is_type(root, json_type_object)) {
		diag_error(c->d, c->at, "'%s': %s is not an object", c->path, c->member);
		return -EINVAL;
	}
	if (!json_object_object_get_ex(root, "manifests", &manifests) ||
	    !json_object_is_type(manifests, json_type_array)) {
		diag_error(c->d, c->at, "'%s': %s has no list of manifests", c->path, c->member);
		return -EINVAL;
	}
	size_t n = json_object_array_length(manifests);
	if (n == 0) {
		diag_error(c->d, c->at, "'%s' holds no images (%s lists none)", c->path, c->member);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(manifests, i), *annotations = NULL;
		if (!json_object_is_type(m, json_type_object)) {
			diag_error(c->d, c->at, "'%s': %s: manifest %zu is not an object", c->path, c->member, i + 1);
			return -EINVAL;
		}
		json_object_object_get_ex(m, "annotations", &annotations);
		if (annotations && !json_object_is_type(annotations, json_type_object)) {
			diag_error(c->d, c->at, "'%s': %s: annotations of manifest %zu are not an object", c->path,
				   c->member, i + 1);
			return -EINVAL;
		}
		const char *name, *ref_name;
		int r = annotation(c, annotations, "io.containerd.image.name", i, &name);
		if (r == 0)
			r = annotation(c, annotations, "org.opencontainers.image.ref.name", i, &ref_name);
		if (r < 0)
			return r;
		/* ctr imports a ref.name that is only a tag ("3.10") under a
		 * made-up "import-<date>" name: it is no name a node can use. */
		if (!name || !*name)
			name = ref_name && strpbrk(ref_name, "/:@") ? ref_name : NULL;
		if (!name)
			return no_name(c, "index.json has no io.containerd.image.name and no full "
					  "org.opencontainers.image.ref.name");
		r = add_ref(c, name, true, refs);
		if (r < 0)
			return r;
	}
	return 0;
}

/* containerd takes the archive as an OCI layout when oci-layout has an
 * imageLayoutVersion, and accepts only 1.0.0. */
static int oci_layout_version(const struct json_ctx *c, json_object *root, bool *ret_oci) {
	json_object *v = NULL;
	if (!json_object_is_type(root, json_type_object)) {
		diag_error(c->d, c->at, "'%s': %s is not an object", c->path, c->member);
		return -EINVAL;
	}
	if (!json_object_object_get_ex(root, "imageLayoutVersion", &v) || json_object_is_type(v, json_type_null)) {
		*ret_oci = false;
		return 0;
	}
	const char *version = json_string(v);
	if (!version) {
		diag_error(c->d, c->at, "'%s': %s: imageLayoutVersion is not a string", c->path, c->member);
		return -EINVAL;
	}
	if (*version && !streq(version, "1.0.0")) {
		_cleanup_free_ char *shown = printable(version);
		diag_error(c->d, c->at, "'%s': unsupported OCI image layout version '%s' in %s", c->path, shown, c->member);
		return -EINVAL;
	}
	*ret_oci = *version != '\0';
	return 0;
}

/* The references in index.json (an OCI layout) or manifest.json. */
static int refs_from_json(const char *path, const struct srcloc *at, const char *member, const char *text, size_t len,
			  struct strv *refs, struct diags *d) {
	struct json_ctx c = { path, member, at, d };
	json_object *root = NULL;
	int r = json_parse(&c, text, len, &root);
	if (r < 0)
		return r;
	r = streq(member, "index.json") ? refs_from_index(&c, root, refs) : refs_from_manifest(&c, root, refs);
	json_object_put(root);
	return r;
}

static int is_oci_layout(const char *path, const struct srcloc *at, const char *text, size_t len, bool *ret_oci,
			 struct diags *d) {
	struct json_ctx c = { path, "oci-layout", at, d };
	json_object *root = NULL;
	int r = json_parse(&c, text, len, &root);
	if (r == 0)
		r = oci_layout_version(&c, root, ret_oci);
	json_object_put(root);
	return r;
}

/* ---- reading the archive ---------------------------------------------- */

enum { MANIFEST_JSON, INDEX_JSON, OCI_LAYOUT, N_MEMBERS };
static const char *const member_names[N_MEMBERS] = { "manifest.json", "index.json", "oci-layout" };

struct members {
	char *text[N_MEMBERS]; /* NULL when the archive has no such member */
	size_t len[N_MEMBERS];
	bool oci;              /* oci-layout names a version: index.json counts */
};

static void members_release(struct members *m) {
	for (size_t i = 0; i < N_MEMBERS; i++)
		free(m->text[i]);
}

/* containerd compares path.Clean(name); tar writers add "./" in front. */
static const char *member_name(const char *name) {
	while (name[0] == '.' && name[1] == '/') {
		name += 2;
		while (*name == '/')
			name++;
	}
	return name;
}

static int read_error(struct archive *a, const char *path, const struct srcloc *at, struct diags *d) {
	const char *why = archive_error_string(a);
	diag_error(d, at, "cannot read '%s': %s", path, why ? why : "unknown error");
	return -EIO;
}

/* A member's data, whatever size its header claims, up to the limit. */
static int read_member(struct archive *a, const char *path, const struct srcloc *at, const char *name, char **ret,
		       size_t *ret_len, struct diags *d) {
	struct buf b = { .limit = IMAGE_ARCHIVE_JSON_LIMIT };
	char chunk[16384];
	for (;;) {
		la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n < 0) {
			buf_release(&b);
			return read_error(a, path, at, d);
		}
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			diag_error(d, at, "'%s': %s is larger than %zu bytes", path, name, IMAGE_ARCHIVE_JSON_LIMIT);
			buf_release(&b);
			return -EFBIG;
		}
	}
	*ret = buf_steal(&b, ret_len);
	return 0;
}

static int open_archive(struct archive *a, const char *path, const struct srcloc *at, struct diags *d) {
	/* What containerd decompresses on import; nothing else is accepted. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 64 * 1024) == ARCHIVE_OK)
		return 0;
	int e = archive_errno(a);
	if (e == EILSEQ) { /* libarchive's ARCHIVE_ERRNO_FILE_FORMAT */
		diag_error(d, at, "'%s' is not a tar archive (plain, gzip- or zstd-compressed)", path);
		return -EINVAL;
	}
	if (e > 0) {
		diag_error(d, at, "cannot open '%s': %s", path, strerror(e));
		return -e;
	}
	return read_error(a, path, at, d);
}

/* Reads manifest.json, index.json and oci-layout, stopping once an OCI
 * layout is complete. A docker save archive is read to its end: an
 * oci-layout after manifest.json would make containerd read index.json. */
static int read_members(const char *path, const struct srcloc *at, struct members *ret, struct diags *d) {
	struct members m = { 0 };
	struct archive *a = archive_read_new();
	if (!a)
		die_oom();
	int r = open_archive(a, path, at, d);
	while (r == 0 && !(m.oci && m.text[INDEX_JSON])) {
		struct archive_entry *e;
		int s = archive_read_next_header(a, &e);
		if (s == ARCHIVE_EOF)
			break;
		if (s < ARCHIVE_WARN) {
			r = read_error(a, path, at, d);
			break;
		}
		/* containerd reads regular files only; links are not followed. */
		const char *name = archive_entry_pathname(e);
		if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) || !name)
			continue;
		name = member_name(name);
		for (size_t k = 0; k < N_MEMBERS; k++) {
			if (!streq(name, member_names[k]))
				continue;
			/* Which copy counts would depend on the reader. */
			if (m.text[k]) {
				diag_error(d, at, "'%s' holds %s twice", path, member_names[k]);
				r = -EINVAL;
				break;
			}
			r = read_member(a, path, at, member_names[k], &m.text[k], &m.len[k], d);
			if (r == 0 && k == OCI_LAYOUT)
				r = is_oci_layout(path, at, m.text[k], m.len[k], &m.oci, d);
			break;
		}
	}
	archive_read_free(a);
	if (r < 0) {
		members_release(&m);
		return r;
	}
	*ret = m;
	return 0;
}

int image_archive_refs(const char *path, const struct srcloc *at, struct strv *ret, struct diags *d) {
	struct members m = { 0 };
	int r = read_members(path, at, &m, d);
	if (r < 0)
		return r;
	struct strv refs = STRV_INIT;
	const char *missing = NULL;
	if (m.oci && m.text[INDEX_JSON])
		r = refs_from_json(path, at, "index.json", m.text[INDEX_JSON], m.len[INDEX_JSON], &refs, d);
	else if (m.oci)
		missing = "oci-layout without index.json";
	else if (m.text[MANIFEST_JSON])
		r = refs_from_json(path, at, "manifest.json", m.text[MANIFEST_JSON], m.len[MANIFEST_JSON], &refs, d);
	else if (m.text[OCI_LAYOUT])
		missing = "oci-layout has no imageLayoutVersion";
	else if (m.text[INDEX_JSON])
		missing = "index.json without oci-layout";
	else
		missing = "no manifest.json or index.json";
	if (missing) {
		diag_error(d, at, "'%s' is not a container image archive (%s)", path, missing);
		r = -EINVAL;
	}
	members_release(&m);
	if (r < 0) {
		strv_release(&refs);
		return r;
	}
	strv_sort(&refs);
	struct strv unique = STRV_INIT;
	for (size_t i = 0; i < refs.n; i++) {
		if (unique.n && streq(unique.v[unique.n - 1], refs.v[i]))
			free(refs.v[i]);
		else
			strv_push_take(&unique, refs.v[i]);
	}
	free(refs.v);
	*ret = unique;
	return 0;
}
