/* systemd-sysext images: where they go on the node, the extension-release
 * written, a made image's bytes (squashfs superblock, padding, identical
 * for identical inputs, no temp left), pins checked before anything is
 * written, the check of a prebuilt image's extension-release, and what is
 * staged. The image's content is read back by unsquashfs and
 * systemd-dissect in tests/e2e/test_sysext.sh. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "recipe.h"
#include "stage.h"
#include "sysext.h"
#include "util.h"

/* sha256 of "kubelet binary\n" and of "hello\n", from sha256sum(1). */
#define KUBELET_SUM "ba13b0bed708854fc0ee7c4bee3a27a80f723da8b96881a599eaf1a4891692e6"
#define HELLO_SUM "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define EPOCH 1700000000

static void write_text(const char *path, const char *text) {
	struct diags d = DIAGS_INIT;
	if (write_file_atomic(path, text, strlen(text), 0644, &d) < 0) {
		diags_print(&d, stderr);
		exit(1);
	}
	diags_release(&d);
}

static struct recipe_file files[] = {
	{ .src = "in/kubelet", .dest = "/usr/bin/kubelet", .mode = 0755, .sha256 = KUBELET_SUM, .loc = { "r.recipe", 11, 9 } },
	{ .src = "in/bridge", .dest = "/opt/cni/bin/bridge", .mode = 0755, .sha256 = HELLO_SUM, .loc = { "r.recipe", 12, 9 } },
	{ .src = "in/kubectl", .dest = "/usr/bin/kubectl", .mode = 0700, .sha256 = HELLO_SUM, .loc = { "r.recipe", 13, 9 } },
};

static struct recipe_sysext made = {
	.name = "kubernetes",
	.version = "v1.34.2",
	.id = "flatcar",
	.sysext_level = "1.0",
	.architecture = "x86-64",
	.files = files,
	.n_files = ARRAY_SIZE(files),
	.loc = { "r.recipe", 8, 5 },
	.name_loc = { "r.recipe", 8, 13 },
};

static char *slurp(const char *path, size_t *len) {
	struct diags d = DIAGS_INIT;
	char *text = NULL;
	if (read_file(path, 64 << 20, &text, len, &d) < 0)
		text = NULL;
	diags_release(&d);
	return text;
}

static uint32_t le32(const char *p) {
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static void test_paths_and_release(void) {
	char *p = sysext_node_path(&made);
	CHECK_STREQ(p, "/opt/extensions/kubernetes/kubernetes-v1.34.2-x86-64.raw");
	free(p);
	p = sysext_link_path(&made);
	CHECK_STREQ(p, "/etc/extensions/kubernetes.raw");
	free(p);
	p = sysext_release_text(&made);
	CHECK_STREQ(p, "ID=flatcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=x86-64\n");
	free(p);

	struct recipe_sysext any = { .name = "nvidia", .version = "570", .id = "_any", .architecture = "_any", .reload_manager = true };
	p = sysext_release_text(&any);
	CHECK_STREQ(p, "ID=_any\nARCHITECTURE=_any\nEXTENSION_RELOAD_MANAGER=1\n");
	free(p);

	struct recipe_sysext pre = { .name = "kubernetes", .src = "recipes/../images/kubernetes-v1.34.1-x86-64.raw" };
	p = sysext_node_path(&pre);
	CHECK_STREQ(p, "/opt/extensions/kubernetes/kubernetes-v1.34.1-x86-64.raw");
	free(p);
}

static void test_write(void) {
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(sysext_write(&made, "a.raw", EPOCH, &d), 0);
	CHECK_INTEQ(sysext_write(&made, "b.raw", EPOCH, &d), 0);
	CHECK_INTEQ(sysext_write(&made, "c.raw", EPOCH + 1, &d), 0);
	CHECK_INTEQ(d.n, 0);
	diags_print(&d, stderr);
	diags_release(&d);
	CHECK(!path_exists("a.raw.tmp"));

	size_t la = 0, lb = 0, lc = 0;
	char *a = slurp("a.raw", &la), *b = slurp("b.raw", &lb), *c = slurp("c.raw", &lc);
	CHECK(a && b && c);
	if (a && b && c) {
		CHECK(la == lb && memcmp(a, b, la) == 0);
		CHECK(la == lc && memcmp(a, c, la) != 0);
		/* Superblock: magic, inode count (3 files, the release file and 8
		 * directories: / opt opt/cni opt/cni/bin usr usr/bin usr/lib
		 * usr/lib/extension-release.d), mtime, block size, gzip. */
		CHECK(memcmp(a, "hsqs", 4) == 0);
		CHECK_INTEQ(le32(a + 4), 12);
		CHECK_INTEQ(le32(a + 8), EPOCH);
		CHECK_INTEQ(le32(a + 12), 128 << 10);
		CHECK_INTEQ((unsigned char)a[20], 1);
		CHECK_INTEQ(la % 4096, 0);
		/* bytes_used (offset 40) counts what precedes the padding. */
		CHECK(le32(a + 40) <= la && le32(a + 40) > la - 4096);
	}
	free(a);
	free(b);
	free(c);
	struct stat st;
	CHECK(stat("a.raw", &st) == 0 && (st.st_mode & 07777) == 0644);
}

/* Every wrong pin is reported at its entry; nothing is written. */
static void test_bad_pins(void) {
	struct recipe_file bad[ARRAY_SIZE(files)];
	memcpy(bad, files, sizeof(files));
	memcpy(bad[0].sha256, HELLO_SUM, sizeof(bad[0].sha256));
	memcpy(bad[2].sha256, KUBELET_SUM, sizeof(bad[2].sha256));
	struct recipe_sysext x = made;
	x.files = bad;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(sysext_write(&x, "bad.raw", EPOCH, &d), -EBADMSG);
	CHECK_INTEQ(d.n, 2);
	if (d.n == 2) {
		CHECK_INTEQ(d.v[0].line, 11);
		CHECK_STREQ(d.v[0].msg, "sha256 mismatch for 'in/kubelet': expected " HELLO_SUM ", got " KUBELET_SUM);
		CHECK_INTEQ(d.v[1].line, 13);
	}
	diags_release(&d);
	CHECK(!path_exists("bad.raw"));
	CHECK(!path_exists("bad.raw.tmp"));

	bad[0] = files[0];
	bad[2] = files[2];
	bad[1].src = "in/missing";
	CHECK_INTEQ(sysext_write(&x, "bad.raw", EPOCH, &d), -ENOENT);
	CHECK(d.n == 1 && streq(d.v[0].msg, "cannot open 'in/missing': No such file or directory"));
	diags_release(&d);
	CHECK(!path_exists("bad.raw") && !path_exists("bad.raw.tmp"));

	CHECK_INTEQ(sysext_write(&made, "bad.raw", (time_t)UINT32_MAX + 1, &d), -ERANGE);
	CHECK(d.n == 1 && strstr(d.v[0].msg, "32-bit"));
	diags_release(&d);
}

/* A prebuilt squashfs must hold extension-release.<name>. */
static void test_check_prebuilt(void) {
	struct diags d = DIAGS_INIT;
	struct recipe_sysext pre = { .name = "kubernetes", .src = "a.raw", .loc = { "r.recipe", 9, 5 }, .name_loc = { "r.recipe", 9, 13 } };
	CHECK_INTEQ(sysext_check_prebuilt(&pre, &d), 0);
	CHECK_INTEQ(d.n, 0);
	pre.name = "k8s";
	CHECK_INTEQ(sysext_check_prebuilt(&pre, &d), -EINVAL);
	CHECK_INTEQ(d.n, 2);
	if (d.n == 2) {
		CHECK_STREQ(d.v[0].msg, "'a.raw' has no 'usr/lib/extension-release.d/extension-release.k8s': "
					"systemd-sysext would not merge it as 'k8s'");
		CHECK_INTEQ(d.v[0].line, 9);
		CHECK_INTEQ(d.v[0].col, 13);
		CHECK_STREQ(d.v[1].msg, "'usr/lib/extension-release.d' holds 'extension-release.kubernetes'");
	}
	diags_release(&d);
	/* Not a squashfs (erofs, ext4, a GPT image): taken as it is. */
	pre.src = "in/kubelet";
	CHECK_INTEQ(sysext_check_prebuilt(&pre, &d), 0);
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}

static void test_stage(void) {
	struct recipe_sysext xs[2] = { made, { .name = "nvidia", .src = "a.raw", .loc = { "r.recipe", 20, 5 } } };
	memcpy(xs[1].sha256, "0000000000000000000000000000000000000000000000000000000000000000", 65);
	struct recipe rc = { .sysexts = xs, .n_sysexts = 1 };
	struct sysext_work *w = sysext_work_new();
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(sysext_stage(w, &rc, EPOCH, &s, &d), 0);
	const struct stage_entry *img = stage_find(&s, PAYLOAD_ROOTFS "/opt/extensions/kubernetes/kubernetes-v1.34.2-x86-64.raw");
	const struct stage_entry *link = stage_find(&s, PAYLOAD_ROOTFS "/etc/extensions/kubernetes.raw");
	CHECK(img && img->type == STAGE_FILE && img->mode == 0644 && img->src);
	CHECK(link && link->type == STAGE_SYMLINK);
	if (link)
		CHECK_STREQ(link->link, "/opt/extensions/kubernetes/kubernetes-v1.34.2-x86-64.raw");
	/* Made once per build: a second stage (another output) reuses it. */
	char *first = img ? xstrdup(img->src) : NULL;
	stage_release(&s);
	CHECK_INTEQ(sysext_stage(w, &rc, EPOCH, &s, &d), 0);
	img = stage_find(&s, PAYLOAD_ROOTFS "/opt/extensions/kubernetes/kubernetes-v1.34.2-x86-64.raw");
	CHECK(img && streq(img->src, first));
	CHECK(first && path_exists(first));
	stage_release(&s);
	sysext_work_free(w);
	/* The build's temp directory goes with it. */
	CHECK(first && !path_exists(first));
	free(first);
	CHECK_INTEQ(d.n, 0);

	/* A prebuilt image with a wrong pin: reported at its entry. */
	rc.sysexts = &xs[1];
	w = sysext_work_new();
	CHECK_INTEQ(sysext_stage(w, &rc, EPOCH, &s, &d), -EBADMSG);
	CHECK(d.n == 1 && d.v[0].line == 20 && startswith(d.v[0].msg, "sha256 mismatch for 'a.raw': expected 0000"));
	diags_release(&d);
	stage_release(&s);
	sysext_work_free(w);
}

int main(void) {
	char tmpl[] = "/tmp/test_sysext.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *cwd = getcwd(NULL, 0);
	if (!dir || !cwd || chdir(dir) < 0 || mkdir("in", 0755) < 0) {
		perror("test_sysext: temp dir");
		return 1;
	}
	/* The build's temp images go here too. */
	setenv("TMPDIR", dir, 1);
	write_text("in/kubelet", "kubelet binary\n");
	write_text("in/bridge", "hello\n");
	write_text("in/kubectl", "hello\n");
	test_paths_and_release();
	test_write();
	test_bad_pins();
	test_check_prebuilt();
	test_stage();
	if (chdir(cwd) < 0)
		perror("test_sysext: chdir back");
	CHECK_INTEQ(rm_rf(dir), 0);
	free(cwd);
	return check_summary("test_sysext");
}
