/* Which images a container image archive holds: docker save and OCI layout
 * tarballs built here with bsdtar, plain and compressed, the names
 * containerd would give them, and every way an archive can be refused. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "imagearchive.h"
#include "util.h"

#define HEX "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define HEX_UPPER "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03"
#define DIGEST "sha256:" HEX

#define S10 "abcdefghij"
#define S50 S10 S10 S10 S10 S10
#define TAG128 S50 S50 S10 S10 "abcdefgh"

static const struct { const char *ref, *want; } normalize_cases[] = {
	/* library images */
	{ "pause:3.10", "docker.io/library/pause:3.10" },
	{ "pause", "docker.io/library/pause:latest" },
	{ "docker.io/pause:3.10", "docker.io/library/pause:3.10" },
	{ "docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36" },
	{ "index.docker.io/library/busybox", "docker.io/library/busybox:latest" },
	{ "index.docker.io/busybox", "docker.io/library/busybox:latest" },
	/* user images */
	{ "flannel-io/flannel:v1", "docker.io/flannel-io/flannel:v1" },
	{ "flannel-io/flannel", "docker.io/flannel-io/flannel:latest" },
	{ "a/b/c:1", "docker.io/a/b/c:1" },
	{ "my_org/some__name/x-y--z.w:v1.2_3-rc.1", "docker.io/my_org/some__name/x-y--z.w:v1.2_3-rc.1" },
	/* registries */
	{ "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10" },
	{ "quay.io/coreos/etcd:v3.5.9", "quay.io/coreos/etcd:v3.5.9" },
	{ "ghcr.io/flannel-io/flannel-cni-plugin", "ghcr.io/flannel-io/flannel-cni-plugin:latest" },
	{ "localhost:5000/x:1", "localhost:5000/x:1" },
	{ "localhost:5000/x", "localhost:5000/x:latest" },
	{ "localhost/x", "localhost/x:latest" },
	{ "10.0.0.1:5000/team/x:1", "10.0.0.1:5000/team/x:1" },
	{ "[::1]:5000/x:1", "[::1]:5000/x:1" },
	{ "Registry.Example/x", "Registry.Example/x:latest" },
	{ "Upper/x", "Upper/x:latest" },                        /* capitals: a registry, as in docker */
	{ "localhost", "docker.io/library/localhost:latest" },  /* no slash: a name, not a registry */
	{ "localhost:5000", "docker.io/library/localhost:5000" }, /* ... and ":5000" a tag */
	/* digests */
	{ "busybox@" DIGEST, "docker.io/library/busybox@" DIGEST },
	{ "registry.k8s.io/pause@" DIGEST, "registry.k8s.io/pause@" DIGEST },
	{ "localhost:5000/x@" DIGEST, "localhost:5000/x@" DIGEST },
	{ "busybox:1.36@" DIGEST, "docker.io/library/busybox@" DIGEST }, /* containerd drops the tag */
	{ "x@sha512:" HEX HEX, "docker.io/library/x@sha512:" HEX HEX },
	{ "x:" TAG128, "docker.io/library/x:" TAG128 },
	/* not references */
	{ "", NULL },
	{ ":1", NULL },
	{ "x:", NULL },
	{ "x:.1", NULL },
	{ "x:-1", NULL },
	{ "x:" TAG128 "i", NULL },
	{ "x:1:2", NULL },
	{ "x@", NULL },
	{ "x@sha256:" HEX_UPPER, NULL },
	{ "x@sha256:abc", NULL },
	{ "x@md5:0123456789abcdef0123456789abcdef", NULL },
	{ "x@" DIGEST "@" DIGEST, NULL },
	{ "@" DIGEST, NULL },
	{ "UPPER", NULL },
	{ "flannel-io/Flannel", NULL },
	{ "a//b", NULL },
	{ "a/b/", NULL },
	{ "/a", NULL },
	{ "registry.k8s.io/", NULL },
	{ "-a", NULL },
	{ "a-", NULL },
	{ "a..b", NULL },
	{ "a___b", NULL },
	{ "a b", NULL },
	{ "my.registry:abc/x", NULL },
	{ "my.registry:/x", NULL },
	{ "-bad.registry/x", NULL },
	{ "[]:5000/x", NULL },
	{ HEX, NULL }, /* an image id */
	{ "registry.example/" S50 S50 S50 S50 S10 S10 S10 "abcdefghi", NULL }, /* a name over 255 */
};

static void test_normalize(void) {
	for (size_t i = 0; i < ARRAY_SIZE(normalize_cases); i++) {
		char *got = image_ref_normalize(normalize_cases[i].ref);
		if (normalize_cases[i].want) {
			CHECK_STREQ(got, normalize_cases[i].want);
		} else if (got) {
			fprintf(stderr, "'%s' should not normalise\n", normalize_cases[i].ref);
			CHECK_STREQ(got, "(NULL)");
		}
		free(got);
	}
	/* The longest name there may be. */
	char *longest = image_ref_normalize("registry.example/" S50 S50 S50 S50 S10 S10 S10 "abcdefgh");
	CHECK(longest && strlen(longest) == 255 + strlen(":latest"));
	free(longest);
	CHECK(image_ref_normalize(NULL) == NULL);
}

/* ---- fixtures -------------------------------------------------------- */

static void write_text(const char *path, const char *text) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		if (mkdir_p(dir, 0755) < 0) {
			perror(dir);
			exit(1);
		}
	}
	if (write_file_atomic(path, text, strlen(text), 0644, &d) < 0) {
		diags_print(&d, stderr);
		exit(1);
	}
	diags_release(&d);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *cmd = NULL;
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_imagearchive: failed: %s\n", cmd);
		exit(1);
	}
	free(cmd);
}

struct member {
	const char *name, *text;
};

#define LAYOUT { "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}" }
#define LAYER { "0123abcd/layer.tar", "a dummy layer\n" }
#define BLOB { "blobs/sha256/" HEX, "a dummy blob\n" }
#define DOCKER_IMAGE(tags) "{\"Config\":\"cfg.json\",\"RepoTags\":" tags ",\"Layers\":[\"0123abcd/layer.tar\"]}"
#define OCI_MANIFEST(annotations) \
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" DIGEST "\",\"size\":1" \
	annotations "}"
#define INDEX(...) "{\"schemaVersion\":2,\"manifests\":[" __VA_ARGS__ "]}"
#define NAMED(name) ",\"annotations\":{\"io.containerd.image.name\":\"" name "\"}"
#define REF_NAME(name) ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"" name "\"}"
#define BOTH(name, ref) \
	",\"annotations\":{\"io.containerd.image.name\":\"" name "\",\"org.opencontainers.image.ref.name\":\"" ref "\"}"

/* Each archive is built from its members in this order with
 * `bsdtar -c <flags>`; `want` is the references, one a line, or the
 * diagnostics ("error: ...", "warning: ..."), one a line. */
static const struct archive_case {
	const char *archive, *flags;
	struct member members[5];
	int rc;
	const char *want, *want_diags;
} archive_cases[] = {
	/* docker save */
	{ "docker-one.tar", "",
	  { { "./0123abcd/layer.tar", "layer\n" }, { "./cfg.json", "{}" },
	    { "./manifest.json", "[" DOCKER_IMAGE("[\"pause:3.10\"]") "]" }, { "./repositories", "{}" } },
	  0, "docker.io/library/pause:3.10", "" },
	{ "docker-two.tar", "",
	  { LAYER,
	    { "manifest.json", "[" DOCKER_IMAGE("[\"registry.k8s.io/pause:3.10\"]") ","
			       DOCKER_IMAGE("[\"flannel-io/flannel:v0.26.1\",\"docker.io/flannel-io/flannel:v0.26.1\","
					    "\"localhost:5000/flannel:dev\"]") "]" } },
	  0, "docker.io/flannel-io/flannel:v0.26.1\nlocalhost:5000/flannel:dev\nregistry.k8s.io/pause:3.10", "" },
	{ "docker-two.tar.gz", "-z",
	  { LAYER, { "manifest.json", "[" DOCKER_IMAGE("[\"pause:3.10\"]") "," DOCKER_IMAGE("[\"busybox\"]") "]" } },
	  0, "docker.io/library/busybox:latest\ndocker.io/library/pause:3.10", "" },
	{ "docker-one.tar.zst", "--zstd",
	  { LAYER, { "manifest.json", "[" DOCKER_IMAGE("[\"busybox@" DIGEST "\"]") "]" } },
	  0, "docker.io/library/busybox@" DIGEST, "" },
	/* docker save 25+ writes an OCI layout beside manifest.json: the layout wins */
	{ "docker-25.tar", "",
	  { BLOB, { "index.json", INDEX(OCI_MANIFEST(BOTH("docker.io/library/a:1", "1"))) },
	    { "manifest.json", "[" DOCKER_IMAGE("[\"b:1\"]") "]" }, LAYOUT, { "repositories", "{}" } },
	  0, "docker.io/library/a:1", "" },
	/* without oci-layout, index.json is not read */
	{ "docker-index.tar", "",
	  { { "index.json", "not even JSON" }, { "manifest.json", "[" DOCKER_IMAGE("[\"b:1\"]") "]" } },
	  0, "docker.io/library/b:1", "" },

	/* OCI image layouts */
	{ "oci-named.tar", "",
	  { LAYOUT,
	    { "index.json", INDEX(OCI_MANIFEST(BOTH("registry.k8s.io/pause:3.10", "3.10")) ","
				  OCI_MANIFEST(NAMED("docker.io/library/busybox:1.36")) ","
				  OCI_MANIFEST(NAMED("registry.k8s.io/pause:3.10"))) },
	    BLOB },
	  0, "docker.io/library/busybox:1.36\nregistry.k8s.io/pause:3.10", "" },
	{ "oci-ref-name.tar", "",
	  { BLOB, { "./index.json", INDEX(OCI_MANIFEST(REF_NAME("quay.io/coreos/etcd:v3.5.9")) ","
					OCI_MANIFEST(REF_NAME("registry.k8s.io/pause@" DIGEST))) },
	    LAYOUT },
	  0, "quay.io/coreos/etcd:v3.5.9\nregistry.k8s.io/pause@" DIGEST, "" },
	{ "oci-named.tar.gz", "-z",
	  { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(BOTH("", "ghcr.io/x/y:2"))) }, BLOB },
	  0, "ghcr.io/x/y:2", "" },
	/* ctr keeps OCI names as they are: a short one is worth a warning */
	{ "oci-short.tar", "",
	  { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(NAMED("pause:3.10"))) } },
	  0, "docker.io/library/pause:3.10",
	  "warning: 'oci-short.tar': index.json names 'pause:3.10', which ctr images import keeps as is; the kubelet "
	  "looks for 'docker.io/library/pause:3.10'" },

	/* images without a name */
	{ "docker-null-tags.tar", "", { LAYER, { "manifest.json", "[" DOCKER_IMAGE("null") "]" } },
	  -EINVAL, NULL,
	  "error: 'docker-null-tags.tar' holds an image without a name (docker save IMAGE:TAG, not an image id)" },
	{ "docker-no-tags.tar", "",
	  { { "manifest.json", "[" DOCKER_IMAGE("[\"a:1\"]") ",{\"Config\":\"cfg.json\"}]" } },
	  -EINVAL, NULL,
	  "error: 'docker-no-tags.tar' holds an image without a name (docker save IMAGE:TAG, not an image id)" },
	{ "docker-empty-tags.tar", "", { { "manifest.json", "[" DOCKER_IMAGE("[]") "]" } },
	  -EINVAL, NULL,
	  "error: 'docker-empty-tags.tar' holds an image without a name (docker save IMAGE:TAG, not an image id)" },
	{ "oci-tag-only.tar", "", { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(REF_NAME("3.10"))) } },
	  -EINVAL, NULL,
	  "error: 'oci-tag-only.tar' holds an image without a name (index.json has no io.containerd.image.name and "
	  "no full org.opencontainers.image.ref.name)" },
	{ "oci-unnamed.tar", "", { LAYOUT, { "index.json", INDEX(OCI_MANIFEST("")) } },
	  -EINVAL, NULL,
	  "error: 'oci-unnamed.tar' holds an image without a name (index.json has no io.containerd.image.name and "
	  "no full org.opencontainers.image.ref.name)" },

	/* malformed JSON and wrong types */
	{ "bad-json.tar", "", { { "manifest.json", "[{\"RepoTags\":[\"a:1\"]}" } },
	  -EINVAL, NULL, "error: 'bad-json.tar': manifest.json is not valid JSON: unexpected end of data at byte 21" },
	{ "bad-json-comma.tar", "", { LAYOUT, { "index.json", "{\"manifests\":[],}" } },
	  -EINVAL, NULL, "error: 'bad-json-comma.tar': index.json is not valid JSON: unexpected character at byte 16" },
	{ "bad-json-trailing.tar", "", { { "manifest.json", "[{\"RepoTags\":[\"a:1\"]}] []" } },
	  -EINVAL, NULL,
	  "error: 'bad-json-trailing.tar': manifest.json is not valid JSON: unexpected character at byte 23" },
	{ "bad-json-empty.tar", "", { { "manifest.json", "" } },
	  -EINVAL, NULL, "error: 'bad-json-empty.tar': manifest.json is not valid JSON: unexpected end of data at byte 0" },
	{ "bad-json-utf8.tar", "", { { "manifest.json", "[{\"RepoTags\":[\"a\xff:1\"]}]" } },
	  -EINVAL, NULL, "error: 'bad-json-utf8.tar': manifest.json is not valid JSON: invalid utf-8 string at byte 16" },
	{ "bad-layout-json.tar", "", { { "oci-layout", "{" }, { "manifest.json", "[]" } },
	  -EINVAL, NULL, "error: 'bad-layout-json.tar': oci-layout is not valid JSON: unexpected end of data at byte 1" },
	{ "manifest-object.tar", "", { { "manifest.json", "{\"RepoTags\":[\"a:1\"]}" } },
	  -EINVAL, NULL, "error: 'manifest-object.tar': manifest.json is not a list of images" },
	{ "manifest-empty.tar", "", { { "manifest.json", "[]" } },
	  -EINVAL, NULL, "error: 'manifest-empty.tar' holds no images (manifest.json lists none)" },
	{ "manifest-number.tar", "", { { "manifest.json", "[" DOCKER_IMAGE("[\"a:1\"]") ",7]" } },
	  -EINVAL, NULL, "error: 'manifest-number.tar': manifest.json: image 2 is not an object" },
	{ "tags-string.tar", "", { { "manifest.json", "[" DOCKER_IMAGE("\"a:1\"") "]" } },
	  -EINVAL, NULL, "error: 'tags-string.tar': manifest.json: RepoTags of image 1 is not a list of strings" },
	{ "tags-number.tar", "", { { "manifest.json", "[" DOCKER_IMAGE("[\"a:1\",2]") "]" } },
	  -EINVAL, NULL, "error: 'tags-number.tar': manifest.json: RepoTags of image 1 is not a list of strings" },
	{ "tags-nul.tar", "", { { "manifest.json", "[" DOCKER_IMAGE("[\"a:1\\u0000b\"]") "]" } },
	  -EINVAL, NULL, "error: 'tags-nul.tar': manifest.json: RepoTags of image 1 is not a list of strings" },
	{ "tags-invalid.tar", "", { { "manifest.json", "[" DOCKER_IMAGE("[\"Pause:3.10\"]") "]" } },
	  -EINVAL, NULL, "error: 'tags-invalid.tar': manifest.json names an invalid image reference 'Pause:3.10'" },
	/* archive text reaches a terminal only made printable */
	{ "tags-escape.tar", "", { { "manifest.json", "[" DOCKER_IMAGE("[\"a\\u001b[2J\\n:1\"]") "]" } },
	  -EINVAL, NULL, "error: 'tags-escape.tar': manifest.json names an invalid image reference 'a?[2J?:1'" },
	{ "index-array.tar", "", { LAYOUT, { "index.json", "[]" } },
	  -EINVAL, NULL, "error: 'index-array.tar': index.json is not an object" },
	{ "index-no-manifests.tar", "", { LAYOUT, { "index.json", "{\"schemaVersion\":2}" } },
	  -EINVAL, NULL, "error: 'index-no-manifests.tar': index.json has no list of manifests" },
	{ "index-manifests-object.tar", "", { LAYOUT, { "index.json", "{\"manifests\":{}}" } },
	  -EINVAL, NULL, "error: 'index-manifests-object.tar': index.json has no list of manifests" },
	{ "index-empty.tar", "", { LAYOUT, { "index.json", INDEX() } },
	  -EINVAL, NULL, "error: 'index-empty.tar' holds no images (index.json lists none)" },
	{ "index-number.tar", "", { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(NAMED("docker.io/library/a:1")) ",null") } },
	  -EINVAL, NULL, "error: 'index-number.tar': index.json: manifest 2 is not an object" },
	{ "index-annotations-list.tar", "", { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(",\"annotations\":[]")) } },
	  -EINVAL, NULL, "error: 'index-annotations-list.tar': index.json: annotations of manifest 1 are not an object" },
	{ "index-name-number.tar", "",
	  { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(",\"annotations\":{\"io.containerd.image.name\":1}")) } },
	  -EINVAL, NULL,
	  "error: 'index-name-number.tar': index.json: annotation io.containerd.image.name of manifest 1 is not a string" },
	{ "index-ref-name-bool.tar", "",
	  { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(",\"annotations\":{\"org.opencontainers.image.ref.name\":true}")) } },
	  -EINVAL, NULL,
	  "error: 'index-ref-name-bool.tar': index.json: annotation org.opencontainers.image.ref.name of manifest 1 is "
	  "not a string" },
	{ "index-invalid-name.tar", "", { LAYOUT, { "index.json", INDEX(OCI_MANIFEST(NAMED("a/b:c:d"))) } },
	  -EINVAL, NULL, "error: 'index-invalid-name.tar': index.json names an invalid image reference 'a/b:c:d'" },
	{ "layout-version.tar", "",
	  { { "oci-layout", "{\"imageLayoutVersion\":\"2.0.0\"}" }, { "index.json", INDEX(OCI_MANIFEST(NAMED("a:1"))) } },
	  -EINVAL, NULL, "error: 'layout-version.tar': unsupported OCI image layout version '2.0.0' in oci-layout" },
	{ "layout-version-number.tar", "",
	  { { "oci-layout", "{\"imageLayoutVersion\":1}" }, { "index.json", INDEX(OCI_MANIFEST(NAMED("a:1"))) } },
	  -EINVAL, NULL, "error: 'layout-version-number.tar': oci-layout: imageLayoutVersion is not a string" },
	/* an oci-layout without a version is no layout to containerd */
	{ "layout-no-version.tar", "",
	  { { "oci-layout", "{}" }, { "index.json", "{}" }, { "manifest.json", "[" DOCKER_IMAGE("[\"b:1\"]") "]" } },
	  0, "docker.io/library/b:1", "" },

	/* not image archives */
	{ "plain.tar", "", { { "README", "hello\n" }, { "etc/motd", "hi\n" } },
	  -EINVAL, NULL, "error: 'plain.tar' is not a container image archive (no manifest.json or index.json)" },
	{ "nested.tar", "", { { "image/manifest.json", "[" DOCKER_IMAGE("[\"b:1\"]") "]" } },
	  -EINVAL, NULL, "error: 'nested.tar' is not a container image archive (no manifest.json or index.json)" },
	{ "index-only.tar", "", { { "index.json", INDEX(OCI_MANIFEST(NAMED("a:1"))) } },
	  -EINVAL, NULL, "error: 'index-only.tar' is not a container image archive (index.json without oci-layout)" },
	{ "layout-unversioned.tar", "", { { "oci-layout", "{\"imageLayoutVersion\":\"\"}" }, { "index.json", "{}" } },
	  -EINVAL, NULL,
	  "error: 'layout-unversioned.tar' is not a container image archive (oci-layout has no imageLayoutVersion)" },
	{ "layout-only.tar", "", { LAYOUT, { "manifest.json", "[" DOCKER_IMAGE("[\"b:1\"]") "]" } },
	  -EINVAL, NULL, "error: 'layout-only.tar' is not a container image archive (oci-layout without index.json)" },
};

static void build_archive(const struct archive_case *c) {
	_cleanup_free_ char *dir = xasprintf("src/%s", c->archive);
	struct buf names = BUF_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(c->members) && c->members[i].name; i++) {
		_cleanup_free_ char *path = path_join(dir, c->members[i].name);
		write_text(path, c->members[i].text);
		buf_printf(&names, " '%s'", c->members[i].name);
	}
	sh("bsdtar -c %s -f '%s' -C '%s'%s", c->flags, c->archive, dir, names.data);
	buf_release(&names);
}

/* The references, then the diagnostics, each one a line. */
static char *format_diags(const struct diags *d) {
	static const char *const levels[] = { "error", "warning", "note" };
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%s: %s", i ? "\n" : "", levels[d->v[i].level], d->v[i].msg);
	return buf_steal(&b, NULL);
}

static char *join(const struct strv *s) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < s->n; i++)
		buf_printf(&b, "%s%s", i ? "\n" : "", s->v[i]);
	return buf_steal(&b, NULL);
}

/* Runs image_archive_refs; on failure *ret must be left as it was (on
 * success it is overwritten, so it starts empty then). Every message is
 * placed where the recipe names the archive. */
static void check_refs(const char *path, int rc, const char *want, const char *want_diags) {
	static const struct srcloc at = { "x.recipe", 42, 5 };
	struct diags d = DIAGS_INIT;
	struct strv refs = STRV_INIT;
	if (rc)
		strv_push(&refs, "untouched");
	int r = image_archive_refs(path, &at, &refs, &d);
	if (r != rc)
		fprintf(stderr, "%s:\n", path);
	CHECK_INTEQ(r, rc);
	if (rc == 0) {
		char *got = join(&refs);
		CHECK_STREQ(got, want);
		free(got);
		CHECK(refs.v && refs.v[refs.n] == NULL);
	} else {
		CHECK(refs.n == 1 && streq(refs.v[0], "untouched"));
	}
	char *got = format_diags(&d);
	CHECK_STREQ(got, want_diags);
	CHECK_INTEQ(d.n_errors, rc ? 1 : 0);
	for (size_t i = 0; i < d.n; i++) {
		CHECK_STREQ(d.v[i].file, at.file);
		CHECK_INTEQ(d.v[i].line, at.line);
		CHECK_INTEQ(d.v[i].col, at.col);
	}
	free(got);
	strv_release(&refs);
	diags_release(&d);
}

static void test_archives(void) {
	for (size_t i = 0; i < ARRAY_SIZE(archive_cases); i++) {
		const struct archive_case *c = &archive_cases[i];
		build_archive(c);
		check_refs(c->archive, c->rc, c->want, c->want_diags);
	}
}

/* Files that are no tar archive at all, and ones that break off. */
static void test_not_tar(void) {
	check_refs("no-such.tar", -ENOENT, NULL, "error: cannot open 'no-such.tar': No such file or directory");
	check_refs("src", -EISDIR, NULL, "error: cannot open 'src': Is a directory");

	write_text("text.tar", "hello, I am not a tar archive\n");
	check_refs("text.tar", -EINVAL, NULL, "error: 'text.tar' is not a tar archive (plain, gzip- or zstd-compressed)");
	write_text("empty.tar", "");
	check_refs("empty.tar", -EINVAL, NULL,
		   "error: 'empty.tar' is not a tar archive (plain, gzip- or zstd-compressed)");
	sh("gzip -c text.tar > text.tar.gz");
	check_refs("text.tar.gz", -EINVAL, NULL,
		   "error: 'text.tar.gz' is not a tar archive (plain, gzip- or zstd-compressed)");
	/* containerd decompresses gzip and zstd only */
	sh("xz -c docker-one.tar > docker-one.tar.xz");
	check_refs("docker-one.tar.xz", -EINVAL, NULL,
		   "error: 'docker-one.tar.xz' is not a tar archive (plain, gzip- or zstd-compressed)");
	/* end-of-archive blocks only: a tar holding nothing */
	sh("head -c 1024 /dev/zero > zeros.tar");
	check_refs("zeros.tar", -EINVAL, NULL,
		   "error: 'zeros.tar' is not a container image archive (no manifest.json or index.json)");

	/* broken off inside manifest.json's data */
	sh("head -c 1600 docker-one.tar > cut.tar");
	check_refs("cut.tar", -EIO, NULL,
		   "error: cannot read 'cut.tar': Truncated input file (needed 512 bytes, only 64 available)");
}

/* Only the three small JSON members are bounded; layers may be any size. */
static void test_limits(void) {
	size_t limit = IMAGE_ARCHIVE_JSON_LIMIT;
	char *text = xmalloc(2 * limit + 1);
	memset(text, ' ', 2 * limit);
	text[2 * limit] = '\0';

	/* a manifest.json exactly at the limit (JSON, then blanks) beside a
	 * layer twice that size */
	const char *json = "[" DOCKER_IMAGE("[\"pause:3.10\"]") "]";
	memcpy(text, json, strlen(json));
	text[limit] = '\0';
	write_text("src/at-limit/manifest.json", text);
	text[limit] = ' ';
	write_text("src/at-limit/0123abcd/layer.tar", text);
	sh("bsdtar -czf at-limit.tar.gz -C src/at-limit 0123abcd manifest.json");
	check_refs("at-limit.tar.gz", 0, "docker.io/library/pause:3.10", "");

	/* one byte more */
	text[limit + 1] = '\0';
	write_text("src/over-limit/manifest.json", text);
	free(text);
	sh("bsdtar -cf over-limit.tar -C src/over-limit manifest.json");
	check_refs("over-limit.tar", -EFBIG, NULL, "error: 'over-limit.tar': manifest.json is larger than 4194304 bytes");
}

/* Links and repeated members. */
static void test_odd_members(void) {
	/* a symlink called manifest.json is not followed (containerd ignores it) */
	write_text("src/link/real.json", "[" DOCKER_IMAGE("[\"pause:3.10\"]") "]");
	if (symlink("real.json", "src/link/manifest.json") < 0) {
		perror("symlink");
		exit(1);
	}
	sh("bsdtar -cf link.tar -C src/link real.json manifest.json");
	check_refs("link.tar", -EINVAL, NULL,
		   "error: 'link.tar' is not a container image archive (no manifest.json or index.json)");

	/* tar readers disagree on which copy counts */
	write_text("src/twice/manifest.json", "[" DOCKER_IMAGE("[\"pause:3.10\"]") "]");
	write_text("src/twice2/manifest.json", "[" DOCKER_IMAGE("[\"evil:1\"]") "]");
	sh("bsdtar -cf twice.tar -C src/twice manifest.json -C ../twice2 manifest.json");
	check_refs("twice.tar", -EINVAL, NULL, "error: 'twice.tar' holds manifest.json twice");

	/* a NUL ends what json-c reads: the rest must not be ignored */
	if (mkdir_p("src/nul", 0755) < 0) {
		perror("src/nul");
		exit(1);
	}
	sh("printf '[]\\000[]' > src/nul/manifest.json && bsdtar -cf nul.tar -C src/nul manifest.json");
	check_refs("nul.tar", -EINVAL, NULL,
		   "error: 'nul.tar': manifest.json is not valid JSON: unexpected data after the end at byte 2");
}

/* Reading stops once an OCI layout is known: what comes after it is never
 * read, so a break there goes unnoticed; a docker save archive is read to
 * its end, where an oci-layout could still change the answer. */
static void test_stops_early(void) {
	size_t size = 256 * 1024;
	char *blob = xmalloc(size + 1);
	memset(blob, 'b', size);
	blob[size] = '\0';
	write_text("src/oci-early/blobs/sha256/" HEX, blob);
	write_text("src/docker-late/0123abcd/layer.tar", blob);
	free(blob);
	write_text("src/oci-early/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	write_text("src/oci-early/index.json", INDEX(OCI_MANIFEST(NAMED("registry.k8s.io/pause:3.10"))));
	write_text("src/docker-late/manifest.json", "[" DOCKER_IMAGE("[\"pause:3.10\"]") "]");
	sh("bsdtar -cf oci-early.tar -C src/oci-early oci-layout index.json blobs && "
	   "head -c 100000 oci-early.tar > oci-early-cut.tar");
	check_refs("oci-early-cut.tar", 0, "registry.k8s.io/pause:3.10", "");
	sh("bsdtar -cf docker-late.tar -C src/docker-late manifest.json 0123abcd && "
	   "head -c 100000 docker-late.tar > docker-late-cut.tar");
	check_refs("docker-late-cut.tar", -EIO, NULL,
		   "error: cannot read 'docker-late-cut.tar': Truncated input file (needed 262144 bytes, only 97952 available)");
}

int main(void) {
	if (system("bsdtar --version >/dev/null 2>&1") != 0) {
		/* CI installs it (make deps), so a missing tool is a failure, not a skip. */
		fprintf(stderr, "test_imagearchive: bsdtar is needed to build the archives (make deps installs libarchive-tools)\n");
		return 1;
	}
	umask(022);
	char tmpl[] = "/tmp/test_imagearchive.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *cwd = getcwd(NULL, 0);
	if (!dir || !cwd || chdir(dir) < 0) {
		perror("test_imagearchive: temp dir");
		return 1;
	}
	test_normalize();
	test_archives();
	test_not_tar();
	test_limits();
	test_odd_members();
	test_stops_early();
	if (chdir(cwd) < 0)
		perror("test_imagearchive: chdir back");
	CHECK_INTEQ(rm_rf(dir), 0);
	free(cwd);
	return check_summary("test_imagearchive");
}
