#include "recipe.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "schema.h"
#include "stage.h"
#include "util.h"
#include "yamldoc.h"

#define RECIPE_FILE_LIMIT ((size_t)1 << 20)
#define RECIPE_VERSION 1

int parse_size(const char *text, uint64_t *ret) {
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	unsigned long long n = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B')
		end++;
	if (*end || (shift && n > (UINT64_MAX >> shift)))
		return -EINVAL;
	*ret = (uint64_t)n << shift;
	return 0;
}

static bool parse_mode(const struct value *v, unsigned *ret, struct diags *d) {
	char *end;
	unsigned long m = strtoul(v->text, &end, 8);
	if (!*v->text || *end || m > 07777) {
		diag_error(d, &v->loc, "invalid mode '%s' (expected octal like \"0644\")", v->text);
		return false;
	}
	*ret = (unsigned)m;
	return true;
}

/* A path the recipe names: resolved against the recipe, and it must exist
 * (as a directory when `dir`). */
static char *resolve_existing(struct recipe *r, const struct value *map, const char *key, bool required, bool dir,
			      const char *what, struct diags *d) {
	const char *rel = schema_str(map, key, required, what, d);
	if (!rel)
		return NULL;
	char *path = path_relative_to(r->path, rel);
	struct stat st;
	if (stat(path, &st) < 0)
		diag_error(d, schema_loc(map, key), "cannot find '%s': %s", path, strerror(errno));
	else if (dir && !S_ISDIR(st.st_mode))
		diag_error(d, schema_loc(map, key), "'%s' is not a directory", path);
	else if (!dir && !S_ISREG(st.st_mode))
		diag_error(d, schema_loc(map, key), "'%s' is not a regular file", path);
	return path;
}

static bool path_below(const char *path, const char *dir) {
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* Reports `dest` against one earlier entry's; true when they clash. */
static bool dest_clashes(const char *dest, const struct srcloc *at, const char *earlier, const char *earlier_what,
			 const struct srcloc *earlier_loc, struct diags *d) {
	if (!earlier)
		return false;
	if (streq(dest, earlier))
		diag_error(d, at, "'%s' is already the dest of a %s (at %d:%d)", dest, earlier_what, earlier_loc->line,
			   earlier_loc->col);
	else if (path_below(dest, earlier) || path_below(earlier, dest))
		diag_error(d, at, "'%s' and '%s' (the dest of a %s at %d:%d) cannot both be files: one lies below the other",
			   dest, earlier, earlier_what, earlier_loc->line, earlier_loc->col);
	else
		return false;
	return true;
}

/* Two config: or files: entries that write one path (or a path and one
 * below it) cannot both be on the node, and which one won would depend on
 * the order the payload is staged in. Overlays may layer over each other,
 * later ones winning, but an entry is named on purpose: a clash is a
 * mistake. Only the first earlier entry `dest` clashes with is reported. */
static void check_dest_free(const struct recipe *r, const char *dest, const struct srcloc *at, struct diags *d) {
	for (size_t i = 0; i < r->n_configs; i++)
		if (dest_clashes(dest, at, r->configs[i].dest, "config entry", &r->configs[i].loc, d))
			return;
	for (size_t i = 0; i < r->n_files; i++)
		if (dest_clashes(dest, at, r->files[i].dest, "files entry", &r->files[i].loc, d))
			return;
}

static char *dest_path(const struct value *map, const char *what, struct diags *d) {
	const char *dest = schema_str(map, "dest", true, what, d);
	if (!dest)
		return NULL;
	char *norm = path_normalize_dest(dest);
	if (dest[0] != '/' || !norm) {
		diag_error(d, schema_loc(map, "dest"), "'dest' must be an absolute path inside the node's file system, not '%s'", dest);
		free(norm);
		return NULL;
	}
	char *abs = xasprintf("/%s", norm);
	free(norm);
	/* Flatcar's /usr is a read-only, verity-checked image: a file there
	 * could not be put in place on a live system nor on an installed one. */
	if (startswith(abs, "/usr/") && !startswith(abs, "/" PAYLOAD_OEM "/"))
		diag_error(d, schema_loc(map, "dest"), "'dest' '%s' is under /usr, which is read-only on Flatcar (use /opt or /etc)", abs);
	return abs;
}

static void load_base(struct recipe *r, const struct value *doc, struct diags *d) {
	static const char *const keys[] = { "kernel", "initrd", "cmdline", "image" };
	const struct value *base = schema_get(doc, "base", VALUE_MAP, true, "recipe", d);
	if (!base)
		return;
	schema_keys(base, keys, ARRAY_SIZE(keys), "base", d);
	r->base.kernel = resolve_existing(r, base, "kernel", true, false, "base", d);
	r->base.initrd = resolve_existing(r, base, "initrd", true, false, "base", d);
	r->base.image = resolve_existing(r, base, "image", false, false, "base", d);
	const char *cmdline = schema_str(base, "cmdline", false, "base", d);
	r->base.cmdline = xstrdup(cmdline ? cmdline : "");
	if (strchr(r->base.cmdline, '\n'))
		diag_error(d, schema_loc(base, "cmdline"), "'cmdline' must be one line");
}

static void load_pki(struct recipe *r, const struct value *doc, struct diags *d) {
	static const char *const keys[] = { "dir", "key_type", "include_ca_key" };
	const struct value *pki = schema_get(doc, "pki", VALUE_MAP, false, "recipe", d);
	const char *dir = pki ? schema_str(pki, "dir", false, "pki", d) : NULL;
	/* The PKI dir need not exist yet: the first build creates it. */
	r->pki.dir = path_relative_to(r->path, dir ? dir : "../keys");
	r->pki.key_type = PKI_KEY_RSA2048;
	if (!pki)
		return;
	schema_keys(pki, keys, ARRAY_SIZE(keys), "pki", d);
	const char *type = schema_str(pki, "key_type", false, "pki", d);
	if (type && streq(type, "ecdsa"))
		r->pki.key_type = PKI_KEY_ECDSA_P256;
	else if (type && !streq(type, "rsa"))
		diag_error(d, schema_loc(pki, "key_type"), "'key_type' must be 'rsa' or 'ecdsa', not '%s'", type);
	const struct value *ca = value_map_get(pki, "include_ca_key");
	if (ca && !value_as_bool(ca, &r->pki.include_ca_key))
		diag_error(d, &ca->loc, "'include_ca_key' must be true or false");
}

static void load_configs(struct recipe *r, const struct value *doc, struct diags *d) {
	static const char *const keys[] = { "template", "dest", "mode" };
	const struct value *list = schema_get(doc, "config", VALUE_LIST, false, "recipe", d);
	if (!list)
		return;
	r->configs = xcalloc(list->n, sizeof(*r->configs));
	for (size_t i = 0; i < list->n; i++) {
		const struct value *item = list->items[i];
		if (!schema_is(item, VALUE_MAP, "a 'config' entry", d))
			continue;
		schema_keys(item, keys, ARRAY_SIZE(keys), "config entry", d);
		struct recipe_config *c = &r->configs[r->n_configs];
		c->template = resolve_existing(r, item, "template", true, false, "config entry", d);
		c->dest = dest_path(item, "config entry", d);
		/* As flatcar-install leaves it: only root reads the cloud-config. */
		c->mode = c->dest && streq(c->dest, RECIPE_CLOUD_CONFIG_DEST) ? 0600 : 0644;
		c->loc = item->loc;
		if (c->dest && streq(c->dest, "/" PAYLOAD_OEM "/cloud-config.yml"))
			diag_error(d, schema_loc(item, "dest"),
				   "Flatcar 4722+ does not apply '%s' (and stable would apply it twice): use dest '%s'",
				   c->dest, RECIPE_CLOUD_CONFIG_DEST);
		if (c->dest && streq(c->dest, LAYOUT_LIVE_IGNITION))
			diag_error(d, schema_loc(item, "dest"),
				   "'%s' is the node's Ignition config, which dlws-mkimage writes: put units in the cloud-config",
				   c->dest);
		const struct value *mode = schema_get(item, "mode", VALUE_SCALAR, false, "config entry", d);
		if (mode)
			parse_mode(mode, &c->mode, d);
		if (c->dest)
			check_dest_free(r, c->dest, schema_loc(item, "dest"), d);
		r->n_configs++;
	}
}

static bool sha256_valid(const char *s) {
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

/* The sum of `src` in a "<sha256>  <name>" file (sha256sum's format),
 * matched by the file name of src. */
static int lookup_sum(struct recipe *r, const struct value *item, const char *sums_rel, const char *src, char **ret,
		      struct diags *d) {
	_cleanup_free_ char *sums_path = path_relative_to(r->path, sums_rel);
	const struct srcloc *at = schema_loc(item, "sha256sums");
	struct diags rd = DIAGS_INIT;
	char *text = NULL;
	size_t len;
	if (read_file(sums_path, RECIPE_FILE_LIMIT, &text, &len, &rd) < 0) {
		diag_error(d, at, "%s", rd.v[0].msg);
		diags_release(&rd);
		return -ENOENT;
	}
	const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	int result = -ENOENT;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "\r")] = '\0';
		size_t sum_len = strcspn(line, " \t");
		char *name = line + sum_len;
		while (*name == ' ' || *name == '\t' || *name == '*')
			name++;
		const char *nbase = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
		if (!streq(nbase, base))
			continue;
		line[sum_len] = '\0';
		if (!sha256_valid(line)) {
			diag_error(d, at, "'%s' has an invalid sum for '%s' (expected 64 hex digits)", sums_path, base);
			result = -EINVAL;
		} else {
			*ret = xstrdup(line);
			result = 0;
		}
		break;
	}
	if (result == -ENOENT)
		diag_error(d, at, "'%s' has no sum for '%s'", sums_path, base);
	free(text);
	return result;
}

/* The pin of `src`: `sha256` inline, or looked up in a `sha256sums` file. */
static void load_pin(struct recipe *r, const struct value *item, const char *src, const char *what, char ret[65],
		     struct diags *d) {
	const char *sum = schema_str(item, "sha256", false, what, d);
	const char *sums = schema_str(item, "sha256sums", false, what, d);
	_cleanup_free_ char *looked_up = NULL;
	if (sum && sums)
		diag_error(d, schema_loc(item, "sha256sums"), "give either 'sha256' or 'sha256sums', not both");
	else if (!sum && !sums)
		diag_error(d, &item->loc, "missing required key 'sha256' in %s (every file is pinned)", what);
	else if (sums && src && lookup_sum(r, item, sums, src, &looked_up, d) == 0)
		sum = looked_up;
	if (sum && !sha256_valid(sum))
		diag_error(d, schema_loc(item, "sha256"), "'sha256' must be 64 hex digits");
	else if (sum)
		for (int k = 0; k < 65; k++)
			ret[k] = (char)tolower((unsigned char)sum[k]);
}

/* A list of pinned files: `files:` (with dest and mode) or `images:`
 * (container images: src and pin only). */
static void load_pinned(struct recipe *r, const struct value *doc, const char *key, bool with_dest,
			struct recipe_file **ret, size_t *ret_n, struct diags *d) {
	static const char *const file_keys[] = { "src", "dest", "mode", "sha256", "sha256sums" };
	static const char *const image_keys[] = { "src", "sha256", "sha256sums" };
	const struct value *list = schema_get(doc, key, VALUE_LIST, false, "recipe", d);
	if (!list)
		return;
	_cleanup_free_ char *what = xasprintf("%s entry", key);
	*ret = xcalloc(list->n, sizeof(**ret));
	for (size_t i = 0; i < list->n; i++) {
		const struct value *item = list->items[i];
		_cleanup_free_ char *a = xasprintf("a '%s' entry", key);
		if (!schema_is(item, VALUE_MAP, a, d))
			continue;
		if (with_dest)
			schema_keys(item, file_keys, ARRAY_SIZE(file_keys), what, d);
		else
			schema_keys(item, image_keys, ARRAY_SIZE(image_keys), what, d);
		struct recipe_file *f = &(*ret)[*ret_n];
		f->src = resolve_existing(r, item, "src", true, false, what, d);
		f->dest = with_dest ? dest_path(item, what, d) : NULL;
		f->mode = 0644;
		f->loc = item->loc;
		const struct value *mode = with_dest ? schema_get(item, "mode", VALUE_SCALAR, false, what, d) : NULL;
		if (mode)
			parse_mode(mode, &f->mode, d);
		/* Binaries are pinned: an unpinned file would make the media
		 * depend on whatever happened to be on the build machine. */
		load_pin(r, item, f->src, what, f->sha256, d);
		/* *ret_n is r->n_files for files:, so f is not compared with itself. */
		if (f->dest)
			check_dest_free(r, f->dest, schema_loc(item, "dest"), d);
		(*ret_n)++;
	}
}

static void load_overlays(struct recipe *r, const struct value *doc, struct diags *d) {
	const struct value *list = schema_get(doc, "overlays", VALUE_LIST, false, "recipe", d);
	if (!list)
		return;
	r->overlays = xcalloc(list->n, sizeof(*r->overlays));
	for (size_t i = 0; i < list->n; i++) {
		const struct value *item = list->items[i];
		if (!schema_is(item, VALUE_SCALAR, "an overlay", d))
			continue;
		char *path = path_relative_to(r->path, item->text);
		struct stat st;
		if (stat(path, &st) < 0)
			diag_error(d, &item->loc, "cannot find overlay '%s': %s", path, strerror(errno));
		else if (!S_ISDIR(st.st_mode))
			diag_error(d, &item->loc, "overlay '%s' is not a directory", path);
		r->overlays[r->n_overlays++] = (struct recipe_overlay){ path, item->loc };
	}
}

/* systemd-sysext images (builder/sysext.h). Names and versions become file
 * names on the node; id and sysext_level are what systemd-sysext compares
 * with the host's os-release, so they follow os-release's rules. */
#define SYSEXT_WORD_MAX 64

static bool sysext_word_valid(const char *s, const char *also) {
	size_t n = strlen(s);
	if (n == 0 || n > SYSEXT_WORD_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(also, *s))
			return false;
	return true;
}

static bool os_release_word_valid(const char *s) {
	if (!*s || strlen(s) > SYSEXT_WORD_MAX)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

/* Only /usr and /opt of an extension image are merged into the host. */
static char *sysext_dest(const struct value *item, const char *what, struct diags *d) {
	const char *dest = schema_str(item, "dest", true, what, d);
	if (!dest)
		return NULL;
	const struct srcloc *at = schema_loc(item, "dest");
	_cleanup_free_ char *norm = path_normalize_dest(dest);
	if (dest[0] != '/' || !norm) {
		diag_error(d, at, "'dest' must be an absolute path inside the image, not '%s'", dest);
		return NULL;
	}
	char *abs = xasprintf("/%s", norm);
	if (!startswith(norm, "usr/") && !startswith(norm, "opt/"))
		diag_error(d, at, "'dest' '%s' is not below /usr or /opt, the only trees systemd-sysext merges", abs);
	else if (startswith(norm, "usr/lib/extension-release.d/"))
		diag_error(d, at, "'dest' '%s' is the image's metadata, which dlws-mkimage writes (set 'id', 'sysext_level', 'architecture')",
			   abs);
	else if (streq(norm, "usr/lib/os-release"))
		diag_error(d, at, "'dest' '%s' would replace the host's os-release when the image is merged", abs);
	return abs;
}

static void load_sysext_files(struct recipe *r, struct recipe_sysext *x, const struct value *list, struct diags *d) {
	static const char *const keys[] = { "src", "dest", "mode", "sha256", "sha256sums" };
	static const char what[] = "sysext files entry";
	x->files = xcalloc(list->n, sizeof(*x->files));
	for (size_t i = 0; i < list->n; i++) {
		const struct value *item = list->items[i];
		if (!schema_is(item, VALUE_MAP, "a sysext 'files' entry", d))
			continue;
		schema_keys(item, keys, ARRAY_SIZE(keys), what, d);
		struct recipe_file *f = &x->files[x->n_files];
		f->src = resolve_existing(r, item, "src", true, false, what, d);
		f->dest = sysext_dest(item, what, d);
		f->mode = 0644;
		f->loc = item->loc;
		const struct value *mode = schema_get(item, "mode", VALUE_SCALAR, false, what, d);
		if (mode)
			parse_mode(mode, &f->mode, d);
		load_pin(r, item, f->src, what, f->sha256, d);
		for (size_t k = 0; f->dest && k < x->n_files; k++) {
			const struct recipe_file *o = &x->files[k];
			if (streq(o->dest, f->dest))
				diag_error(d, schema_loc(item, "dest"), "'%s' is already a file of this image (at %d:%d)", f->dest,
					   o->loc.line, o->loc.col);
			else if (o->dest && (path_below(f->dest, o->dest) || path_below(o->dest, f->dest)))
				diag_error(d, schema_loc(item, "dest"), "'%s' and '%s' (at %d:%d) cannot both be files: one lies below the other",
					   f->dest, o->dest, o->loc.line, o->loc.col);
		}
		x->n_files++;
	}
}

static void load_sysext(struct recipe *r, const struct value *doc, struct diags *d) {
	static const char *const keys[] = {
		"name", "src", "sha256", "sha256sums", "version", "files", "id", "sysext_level", "architecture", "reload_manager",
	};
	static const char *const made_only[] = { "version", "id", "sysext_level", "architecture", "reload_manager" };
	static const char what[] = "sysext entry";
	const struct value *list = schema_get(doc, "sysext", VALUE_LIST, false, "recipe", d);
	if (!list)
		return;
	r->sysexts = xcalloc(list->n, sizeof(*r->sysexts));
	for (size_t i = 0; i < list->n; i++) {
		const struct value *item = list->items[i];
		if (!schema_is(item, VALUE_MAP, "a 'sysext' entry", d))
			continue;
		schema_keys(item, keys, ARRAY_SIZE(keys), what, d);
		struct recipe_sysext *x = &r->sysexts[r->n_sysexts++];
		x->loc = item->loc;
		x->name_loc = *schema_loc(item, "name");
		const char *name = schema_str(item, "name", true, what, d);
		x->name = xstrdup(name ? name : "");
		if (name && (!sysext_word_valid(name, "._-") || endswith(name, ".raw")))
			diag_error(d, &x->name_loc,
				   "invalid image name '%s' (up to %d letters, digits, '.', '_' and '-', starting with a letter or digit, "
				   "without '.raw')", name, SYSEXT_WORD_MAX);
		for (size_t k = 0; name && k + 1 < r->n_sysexts; k++)
			if (streq(r->sysexts[k].name, name))
				diag_error(d, &x->name_loc, "image '%s' is listed twice (first at %d:%d): both would be /etc/extensions/%s.raw",
					   name, r->sysexts[k].name_loc.line, r->sysexts[k].name_loc.col, name);

		const struct value *src = value_map_get(item, "src");
		bool prebuilt = src && !value_is_null(src);
		const struct value *files = schema_get(item, "files", VALUE_LIST, false, what, d);
		if (prebuilt && files) {
			diag_error(d, schema_loc(item, "files"), "give either 'src' (a prebuilt image) or 'files' (an image to make), not both");
			continue;
		}
		if (prebuilt) {
			x->src = resolve_existing(r, item, "src", true, false, what, d);
			for (size_t k = 0; k < ARRAY_SIZE(made_only); k++)
				if (value_map_get(item, made_only[k]))
					diag_error(d, schema_loc(item, made_only[k]),
						   "'%s' is for an image made from 'files': a prebuilt image keeps its own file name and extension-release",
						   made_only[k]);
			load_pin(r, item, x->src, what, x->sha256, d);
			continue;
		}
		if (!files) {
			const struct value *given = value_map_get(item, "files");
			if (!given || value_is_null(given))
				diag_error(d, &item->loc, "a sysext entry needs 'src' (a prebuilt image) or 'files' (an image to make)");
			continue;
		}
		if (value_map_get(item, "sha256") || value_map_get(item, "sha256sums"))
			diag_error(d, schema_loc(item, value_map_get(item, "sha256") ? "sha256" : "sha256sums"),
				   "an image made from 'files' is not pinned itself: pin each of its files");
		const char *version = schema_str(item, "version", true, what, d);
		x->version = xstrdup(version ? version : "");
		if (version && !sysext_word_valid(version, "._+-"))
			diag_error(d, schema_loc(item, "version"),
				   "invalid version '%s' (up to %d letters, digits, '.', '_', '+' and '-', starting with a letter or digit)",
				   version, SYSEXT_WORD_MAX);
		const char *id = schema_str(item, "id", false, what, d);
		x->id = xstrdup(id ? id : "flatcar");
		if (!os_release_word_valid(x->id))
			diag_error(d, schema_loc(item, "id"),
				   "invalid 'id' '%s' (lowercase letters, digits, '.', '_' and '-', as in os-release; '_any' matches every OS)",
				   x->id);
		const char *level = schema_str(item, "sysext_level", false, what, d);
		if (streq(x->id, "_any")) {
			if (level)
				diag_error(d, schema_loc(item, "sysext_level"), "'sysext_level' is not compared when 'id' is '_any': leave it out");
		} else {
			x->sysext_level = xstrdup(level ? level : "1.0");
			if (!os_release_word_valid(x->sysext_level))
				diag_error(d, schema_loc(item, "sysext_level"),
					   "invalid 'sysext_level' '%s' (lowercase letters, digits, '.', '_' and '-', as in os-release)",
					   x->sysext_level);
		}
		const char *arch = schema_str(item, "architecture", false, what, d);
		x->architecture = xstrdup(arch ? arch : "x86-64");
		if (!streq(x->architecture, "x86-64") && !streq(x->architecture, "_any"))
			diag_error(d, schema_loc(item, "architecture"),
				   "'architecture' must be 'x86-64' or '_any' (the media boot x86-64 machines), not '%s'", x->architecture);
		const struct value *reload = value_map_get(item, "reload_manager");
		if (reload && !value_as_bool(reload, &x->reload_manager))
			diag_error(d, &reload->loc, "'reload_manager' must be true or false");
		if (files->n == 0)
			diag_error(d, &files->loc, "'files' lists no file: an image needs at least one");
		load_sysext_files(r, x, files, d);
	}
}

static void load_install(struct recipe *r, const struct value *doc, struct diags *d) {
	static const char *const keys[] = { "device", "after", "wipe" };
	static const char *const afters[] = { "poweroff", "reboot", "shell" };
	const struct value *inst = schema_get(doc, "install", VALUE_MAP, false, "recipe", d);
	if (!inst)
		return;
	schema_keys(inst, keys, ARRAY_SIZE(keys), "install", d);
	r->install.enabled = true;
	r->install_loc = inst->loc;
	const char *device = schema_str(inst, "device", true, "install", d);
	if (device && !streq(device, "auto") && !startswith(device, "/dev/"))
		diag_error(d, schema_loc(inst, "device"), "'device' must be 'auto' or a path under /dev, not '%s'", device);
	r->install.device = xstrdup(device ? device : "auto");
	const char *after = schema_str(inst, "after", false, "install", d);
	r->install.after = xstrdup(after ? after : "poweroff");
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(afters); i++)
		known |= streq(r->install.after, afters[i]);
	if (!known)
		diag_error(d, schema_loc(inst, "after"), "'after' must be poweroff, reboot or shell, not '%s'", r->install.after);
	if (!value_lookup(doc, "base.image"))
		diag_error(d, &inst->loc, "'install' needs 'base.image': the OS image to write to the disk");
	const struct value *wipe = value_map_get(inst, "wipe");
	if (wipe && !value_as_bool(wipe, &r->install.wipe))
		diag_error(d, &wipe->loc, "'wipe' must be true or false");
}

/* ISO 9660 volume identifiers: up to 32 of A-Z, 0-9 and '_'. GRUB finds
 * the medium by it, so it must survive every file system's rules. */
static bool iso_label_valid(const char *s) {
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return false;
	for (; *s; s++)
		if (!(isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static void load_iso(struct recipe *r, const struct value *iso, struct diags *d) {
	static const char *const iso_keys[] = { "path", "label", "max_size", "large_file_size" };
	schema_keys(iso, iso_keys, ARRAY_SIZE(iso_keys), "outputs.iso", d);
	const char *path = schema_str(iso, "path", true, "outputs.iso", d);
	if (path)
		r->outputs.iso = path_relative_to(r->path, path);
	r->outputs.iso_loc = iso->loc;
	const char *label = schema_str(iso, "label", false, "outputs.iso", d);
	if (label) {
		r->outputs.iso_label = xstrdup(label);
		if (!iso_label_valid(label))
			diag_error(d, schema_loc(iso, "label"), "invalid volume label '%s' (1 to 32 of A-Z, 0-9 and '_')", label);
	} else {
		r->outputs.iso_label = xasprintf("DLWS_%.27s", r->name ? r->name : "");
		for (char *p = r->outputs.iso_label; *p; p++)
			*p = *p == '-' || *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	}
	const char *max = schema_str(iso, "max_size", false, "outputs.iso", d);
	if (max && parse_size(max, &r->outputs.max_iso) < 0)
		diag_error(d, schema_loc(iso, "max_size"), "invalid size '%s' (expected e.g. 4G)", max);
	r->outputs.iso_large = (uint64_t)1 << 20;
	const char *large = schema_str(iso, "large_file_size", false, "outputs.iso", d);
	if (large && parse_size(large, &r->outputs.iso_large) < 0)
		diag_error(d, schema_loc(iso, "large_file_size"), "invalid size '%s' (expected e.g. 1M)", large);
}

/* One disk per node: `path` is the directory that holds them, named
 * <hostname>.img (or .qcow2), so a name that looks like one disk's file is
 * most likely a mistake. */
static void load_disk(struct recipe *r, const struct value *doc, const struct value *disk, struct diags *d) {
	static const char *const disk_keys[] = { "path", "format", "size" };
	static const char *const file_like[] = { ".img", ".raw", ".qcow2", ".bin" };
	schema_keys(disk, disk_keys, ARRAY_SIZE(disk_keys), "outputs.disk", d);
	r->outputs.disk_loc = disk->loc;
	const char *path = schema_str(disk, "path", true, "outputs.disk", d);
	if (path) {
		r->outputs.disk = path_relative_to(r->path, path);
		for (size_t i = 0; i < ARRAY_SIZE(file_like); i++)
			if (endswith(path, file_like[i]))
				diag_error(d, schema_loc(disk, "path"),
					   "'path' is the directory that gets one disk per node (<hostname>.img or, with "
					   "format: qcow2, <hostname>.qcow2), not a file name like '%s'", path);
	}
	const char *format = schema_str(disk, "format", false, "outputs.disk", d);
	if (format && streq(format, "qcow2"))
		r->outputs.disk_qcow2 = true;
	else if (format && !streq(format, "raw"))
		diag_error(d, schema_loc(disk, "format"), "'format' must be raw or qcow2, not '%s'", format);
	const char *size = schema_str(disk, "size", false, "outputs.disk", d);
	if (size) {
		r->outputs.disk_size_loc = *schema_loc(disk, "size");
		if (parse_size(size, &r->outputs.disk_size) < 0 || r->outputs.disk_size == 0)
			diag_error(d, schema_loc(disk, "size"), "invalid size '%s' (expected e.g. 8G)", size);
		else if (r->outputs.disk_size % 512)
			diag_error(d, schema_loc(disk, "size"), "'size' %s is not a whole number of 512-byte sectors", size);
	}
	if (!value_lookup(doc, "base.image"))
		diag_error(d, &disk->loc, "'outputs.disk' needs 'base.image': the OS image the disks are made from");
}

/* compression: zstd | xz | gzip, or { method: .., level: N }. */
static void load_compression(struct recipe *r, const struct value *doc, struct diags *d) {
	static const char *const keys[] = { "method", "level" };
	r->compression = (struct compression)COMPRESSION_DEFAULT;
	const struct value *v = value_map_get(doc, "compression");
	if (!v)
		return;
	r->compression_loc = v->loc;
	const struct value *method = v, *level = NULL;
	if (v->kind == VALUE_MAP) {
		schema_keys(v, keys, ARRAY_SIZE(keys), "compression", d);
		method = schema_get(v, "method", VALUE_SCALAR, true, "compression", d);
		level = schema_get(v, "level", VALUE_SCALAR, false, "compression", d);
	} else if (v->kind != VALUE_SCALAR) {
		diag_error(d, &v->loc, "'compression' must be zstd, xz or gzip, or a map with 'method' and 'level'");
		return;
	}
	if (!method)
		return;
	if (compress_parse(method->text, &r->compression.method) < 0) {
		diag_error(d, &method->loc, "unknown compression '%s' (expected zstd, xz or gzip)", method->text);
		return;
	}
	int min, max, def;
	compress_levels(r->compression.method, &min, &max, &def);
	long n;
	if (level && (!value_as_long(level, &n) || n < min || n > max))
		diag_error(d, &level->loc, "invalid %s level '%s' (expected %d to %d; default %d)",
			   compress_name(r->compression.method), level->text, min, max, def);
	else if (level)
		r->compression.level = (int)n;
}

static void load_outputs(struct recipe *r, const struct value *doc, struct diags *d) {
	static const char *const keys[] = { "initrd", "pxe", "iso", "disk" };
	static const char *const initrd_keys[] = { "path", "max_size" };
	static const char *const pxe_keys[] = { "path", "max_initrd", "tar" };
	const struct value *out = schema_get(doc, "outputs", VALUE_MAP, true, "recipe", d);
	if (!out)
		return;
	size_t errors_before = d->n_errors;
	schema_keys(out, keys, ARRAY_SIZE(keys), "outputs", d);
	const struct value *initrd = schema_get(out, "initrd", VALUE_MAP, false, "outputs", d);
	const struct value *pxe = schema_get(out, "pxe", VALUE_MAP, false, "outputs", d);
	if (pxe) {
		schema_keys(pxe, pxe_keys, ARRAY_SIZE(pxe_keys), "outputs.pxe", d);
		const char *path = schema_str(pxe, "path", true, "outputs.pxe", d);
		if (path)
			r->outputs.pxe = path_relative_to(r->path, path);
		r->outputs.pxe_loc = pxe->loc;
		const char *max = schema_str(pxe, "max_initrd", false, "outputs.pxe", d);
		if (max && parse_size(max, &r->outputs.max_pxe_initrd) < 0)
			diag_error(d, schema_loc(pxe, "max_initrd"), "invalid size '%s' (expected e.g. 64M or 4G)", max);
		const struct value *tar = value_map_get(pxe, "tar");
		if (tar && !value_as_bool(tar, &r->outputs.pxe_tar))
			diag_error(d, &tar->loc, "'tar' must be true or false");
	}
	const struct value *iso = schema_get(out, "iso", VALUE_MAP, false, "outputs", d);
	if (iso)
		load_iso(r, iso, d);
	const struct value *disk = schema_get(out, "disk", VALUE_MAP, false, "outputs", d);
	if (disk)
		load_disk(r, doc, disk, d);
	if (!initrd && !pxe && !iso && !disk && d->n_errors == errors_before)
		diag_error(d, &out->loc, "'outputs' lists nothing to build");
	if (initrd) {
		schema_keys(initrd, initrd_keys, ARRAY_SIZE(initrd_keys), "outputs.initrd", d);
		const char *path = schema_str(initrd, "path", true, "outputs.initrd", d);
		if (path)
			r->outputs.initrd = path_relative_to(r->path, path);
		r->outputs.initrd_loc = initrd->loc;
		const char *max = schema_str(initrd, "max_size", false, "outputs.initrd", d);
		if (max && parse_size(max, &r->outputs.max_initrd) < 0)
			diag_error(d, schema_loc(initrd, "max_size"), "invalid size '%s' (expected e.g. 64M or 4G)", max);
	}
}

int recipe_load(const char *path, struct recipe **ret, struct diags *d) {
	static const char *const keys[] = {
		"recipe", "name", "role", "cluster", "base", "pki", "config", "files",
		"overlays", "install", "images", "container_runtime", "outputs", "values", "sysext",
		"compression",
	};
	size_t errors_before = d->n_errors;
	char *text = NULL;
	size_t len;
	int r = read_file(path, RECIPE_FILE_LIMIT, &text, &len, d);
	if (r < 0)
		return r;
	struct recipe *rc = xcalloc(1, sizeof(*rc));
	rc->path = xstrdup(path);
	r = yaml_parse(rc->path, text, len, &rc->doc, d);
	free(text);
	if (r < 0 || !schema_is(rc->doc, VALUE_MAP, "a recipe", d)) {
		recipe_free(rc);
		return -EINVAL;
	}
	const struct value *doc = rc->doc;
	schema_keys(doc, keys, ARRAY_SIZE(keys), "recipe", d);

	const struct value *version = schema_get(doc, "recipe", VALUE_SCALAR, true, "recipe", d);
	long v;
	/* Quoted or not: `recipe: "1"` means the same as `recipe: 1`. */
	if (version && (!value_as_long(&(struct value){ .kind = VALUE_SCALAR, .text = version->text, .plain = true }, &v) ||
			v != RECIPE_VERSION))
		diag_error(d, &version->loc, "unsupported recipe version '%s' (this dlws-mkimage reads version %d)", version->text, RECIPE_VERSION);

	const char *name = schema_str(doc, "name", true, "recipe", d);
	rc->name = xstrdup(name ? name : "");
	if (name && !hostname_valid(name))
		diag_error(d, schema_loc(doc, "name"), "invalid name '%s' (lowercase letters, digits, '-' and '.')", name);
	const char *role = schema_str(doc, "role", true, "recipe", d);
	if (role && role_from_name(role, &rc->role) < 0)
		diag_error(d, schema_loc(doc, "role"), "unknown role '%s' (expected master, etcd or worker)", role);
	rc->cluster_path = resolve_existing(rc, doc, "cluster", true, false, "recipe", d);
	rc->cluster_loc = *schema_loc(doc, "cluster");

	load_base(rc, doc, d);
	load_pki(rc, doc, d);
	load_configs(rc, doc, d);
	load_pinned(rc, doc, "files", true, &rc->files, &rc->n_files, d);
	load_pinned(rc, doc, "images", false, &rc->images, &rc->n_images, d);
	const char *runtime = schema_str(doc, "container_runtime", false, "recipe", d);
	rc->container_runtime = xstrdup(runtime ? runtime : "containerd");
	if (!streq(rc->container_runtime, "containerd") && !streq(rc->container_runtime, "docker"))
		diag_error(d, schema_loc(doc, "container_runtime"), "'container_runtime' must be containerd or docker, not '%s'",
			   rc->container_runtime);
	load_overlays(rc, doc, d);
	load_sysext(rc, doc, d);
	load_install(rc, doc, d);
	load_compression(rc, doc, d);
	load_outputs(rc, doc, d);
	const struct value *values = schema_get(doc, "values", VALUE_MAP, false, "recipe", d);
	rc->values = values ? value_copy(values) : value_new_map(&doc->loc);

	if (d->n_errors > errors_before) {
		recipe_free(rc);
		return -EINVAL;
	}
	*ret = rc;
	return 0;
}

void recipe_free(struct recipe *r) {
	if (!r)
		return;
	free(r->name);
	free(r->cluster_path);
	free(r->base.kernel);
	free(r->base.initrd);
	free(r->base.cmdline);
	free(r->base.image);
	free(r->container_runtime);
	free(r->pki.dir);
	for (size_t i = 0; i < r->n_configs; i++) {
		free(r->configs[i].template);
		free(r->configs[i].dest);
	}
	free(r->configs);
	for (size_t i = 0; i < r->n_files; i++) {
		free(r->files[i].src);
		free(r->files[i].dest);
	}
	free(r->files);
	for (size_t i = 0; i < r->n_images; i++)
		free(r->images[i].src);
	free(r->images);
	for (size_t i = 0; i < r->n_overlays; i++)
		free(r->overlays[i].dir);
	free(r->overlays);
	for (size_t i = 0; i < r->n_sysexts; i++) {
		struct recipe_sysext *x = &r->sysexts[i];
		free(x->name);
		free(x->src);
		free(x->version);
		free(x->id);
		free(x->sysext_level);
		free(x->architecture);
		for (size_t k = 0; k < x->n_files; k++) {
			free(x->files[k].src);
			free(x->files[k].dest);
		}
		free(x->files);
	}
	free(r->sysexts);
	free(r->install.device);
	free(r->install.after);
	free(r->outputs.initrd);
	free(r->outputs.pxe);
	free(r->outputs.iso);
	free(r->outputs.iso_label);
	free(r->outputs.disk);
	value_free(r->values);
	value_free(r->doc);
	free(r->path);
	free(r);
}
