/* The payload tree and the initrd segment written from it: where files go,
 * what replaces what, how overlays are walked (symlinks kept, never
 * followed), the manifest, and the cpio read back by an independent tool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "stage.h"
#include "util.h"

/* From sha256sum(1). */
#define SUM_CLOUD_CONFIG "88c95955b024402aa9572b663f7eeb134f01343bb92af27b50e97e72b22c565f" /* "#cloud-config\n" */
#define SUM_HELLO "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"        /* "hello\n" */
#define SUM_Z "c865f6c5ab8d1b0bcd383a5e1e3879d22681c96bf462c269b7581d523fbe70ab"            /* "z\n" */
#define SUM_WELCOME "77f44b9024fd19a6674a62d98939f4e7f1b77f64eac4c7559414c46bdaec494c"      /* "welcome\n" */
#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

#define R PAYLOAD_ROOTFS "/"
#define MTIME 1700000000 /* 2023-11-14 22:13:20 UTC */

static const struct srcloc recipe_at = { "r.recipe", 3, 7 };

static char *format_diags(const struct diags *d) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%d:%d: %s", i ? "\n" : "", d->v[i].line, d->v[i].col, d->v[i].msg);
	return buf_steal(&b, NULL);
}

static void check_diags(struct diags *d, const char *want) {
	char *got = format_diags(d);
	CHECK_STREQ(got, want);
	free(got);
	diags_release(d);
}

static void write_text(const char *path, const char *text, mode_t mode) {
	struct diags d = DIAGS_INIT;
	if (write_file_atomic(path, text, strlen(text), mode, &d) < 0) {
		diags_print(&d, stderr);
		exit(1);
	}
	diags_release(&d);
}

static void make_dir(const char *path, mode_t mode) {
	if (mkdir_p(path, 0755) < 0 || chmod(path, mode) < 0) {
		perror(path);
		exit(1);
	}
}

static void make_link(const char *target, const char *path) {
	if (symlink(target, path) < 0) {
		perror(path);
		exit(1);
	}
}

static char *run(const char *cmd) {
	FILE *p = popen(cmd, "r");
	if (!p)
		return NULL;
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_append(&b, chunk, n);
	int status = pclose(p);
	CHECK_INTEQ(status, 0);
	return buf_steal(&b, NULL);
}

static const struct { const char *dest, *want; } payload_cases[] = {
	{ "/usr/share/oem/cloud-config.yml", "usr/share/oem/cloud-config.yml" },
	{ "/usr/share/oem/x", "usr/share/oem/x" },
	{ "/usr//share/./oem/x", "usr/share/oem/x" },
	{ "/opt/bin/k", "usr/share/oem/dlws/rootfs/opt/bin/k" },
	{ "/etc//kubernetes/./kubelet.env", "usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet.env" },
	{ "/usr/share/oemx/y", "usr/share/oem/dlws/rootfs/usr/share/oemx/y" },
	{ "/usr/share/y", "usr/share/oem/dlws/rootfs/usr/share/y" },
	{ "/opt/../etc/passwd", NULL },
	{ "/usr/share/oem/../../../etc/shadow", NULL },
	{ "/..", NULL },
	{ "/", NULL },
	{ "", NULL },
};

static void test_payload_path(void) {
	for (size_t i = 0; i < ARRAY_SIZE(payload_cases); i++) {
		char *got = stage_payload_path(payload_cases[i].dest);
		if (payload_cases[i].want)
			CHECK_STREQ(got, payload_cases[i].want);
		else if (got)
			CHECK_STREQ(got, "(NULL)");
		free(got);
	}
}

static void test_add_data(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(stage_add_data(&s, "usr/share/oem/cloud-config.yml", "#cloud-config\n", 14, 0100644, &d), 0);
	CHECK_INTEQ(stage_add_data(&s, "bin", "a\0b", 3, 04755, &d), 0);
	CHECK_INTEQ(s.n, 2);
	const struct stage_entry *e = stage_find(&s, "usr/share/oem/cloud-config.yml");
	CHECK(e && e->type == STAGE_FILE);
	CHECK_INTEQ(e->mode, 0644);
	CHECK_INTEQ(e->size, 14);
	CHECK_STREQ(e->data, "#cloud-config\n");
	CHECK(e->src == NULL && e->link == NULL);
	CHECK_STREQ(e->sha256, SUM_CLOUD_CONFIG);
	e = stage_find(&s, "bin");
	CHECK(e && e->size == 3 && memcmp(e->data, "a\0b", 3) == 0);
	CHECK_INTEQ(e->mode, 04755);
	CHECK(stage_find(&s, "usr/share/oem") == NULL);
	CHECK_INTEQ(d.n, 0);
	stage_release(&s);
	CHECK(s.v == NULL && s.n == 0);
	stage_release(&s);
}

static void test_add_file(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(stage_add_file(&s, R "opt/bin/kubectl", "bin/kubectl", 0100755, SUM_HELLO, &recipe_at, &d), 0);
	const struct stage_entry *e = stage_find(&s, R "opt/bin/kubectl");
	CHECK(e && e->type == STAGE_FILE && e->data == NULL);
	CHECK_STREQ(e->src, "bin/kubectl");
	CHECK_INTEQ(e->size, 6);
	CHECK_INTEQ(e->mode, 0755);
	CHECK_STREQ(e->sha256, SUM_HELLO);
	/* No pin: taken as it is. */
	CHECK_INTEQ(stage_add_file(&s, "x", "bin/kubectl", 0644, NULL, NULL, &d), 0);
	check_diags(&d, "");

	/* A wrong pin names the file and both sums, where the recipe pinned it,
	 * and leaves what was staged at that path alone. */
	CHECK_INTEQ(stage_add_file(&s, R "opt/bin/kubectl", "bin/kubeadm", 0755, ZEROS, &recipe_at, &d), -EBADMSG);
	CHECK_INTEQ(d.n, 1);
	CHECK_STREQ(d.v[0].file, "r.recipe");
	check_diags(&d, "3:7: sha256 mismatch for 'bin/kubeadm': expected " ZEROS ", got " SUM_Z);
	CHECK_INTEQ(s.n, 2);
	e = stage_find(&s, R "opt/bin/kubectl");
	CHECK(e && streq(e->src, "bin/kubectl") && streq(e->sha256, SUM_HELLO));

	CHECK_INTEQ(stage_add_file(&s, "y", "bin/nope", 0644, NULL, &recipe_at, &d), -ENOENT);
	check_diags(&d, "3:7: cannot open 'bin/nope': No such file or directory");
	CHECK(stage_find(&s, "y") == NULL);
	stage_release(&s);
}

/* Later entries win, in place: the order of the rest does not change. */
static void test_replace(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	stage_add_data(&s, "a", "one", 3, 0644, &d);
	stage_add_data(&s, "b", "bee", 3, 0644, &d);
	stage_add_data(&s, "a", "two!", 4, 0600, &d);
	CHECK_INTEQ(s.n, 2);
	CHECK_STREQ(s.v[0].path, "a");
	CHECK_STREQ(s.v[0].data, "two!");
	CHECK_INTEQ(s.v[0].size, 4);
	CHECK_INTEQ(s.v[0].mode, 0600);
	CHECK_INTEQ(stage_add_file(&s, "a", "bin/kubectl", 0755, NULL, NULL, &d), 0);
	CHECK_INTEQ(s.n, 2);
	CHECK(s.v[0].data == NULL);
	CHECK_STREQ(s.v[0].src, "bin/kubectl");
	CHECK_STREQ(s.v[0].sha256, SUM_HELLO);
	/* an overlay entry replaces a file too: here "b" becomes a symlink */
	CHECK_INTEQ(stage_add_tree(&s, "", "replace-overlay", NULL, &d), 0);
	CHECK_INTEQ(s.n, 2);
	CHECK(s.v[1].type == STAGE_SYMLINK && s.v[1].data == NULL);
	CHECK_STREQ(s.v[1].link, "a");
	/* and a file replaces a symlink */
	stage_add_data(&s, "b", "bee", 3, 0644, &d);
	CHECK(s.v[1].type == STAGE_FILE && s.v[1].link == NULL);
	check_diags(&d, "");
	stage_release(&s);
}

/* What the overlay in make_fixtures() stages under the rootfs prefix. */
static const struct { const char *path; enum stage_type type; unsigned mode; const char *link, *sha256; } overlay_entries[] = {
	{ R "dangling", STAGE_SYMLINK, 0777, "nowhere", NULL },
	{ R "empty", STAGE_DIR, 0755, NULL, NULL },
	{ R "etc", STAGE_DIR, 0755, NULL, NULL },
	{ R "etc/link-dir", STAGE_SYMLINK, 0777, "/etc", NULL },
	{ R "etc/motd", STAGE_FILE, 0644, NULL, SUM_WELCOME },
	{ R "link-abs", STAGE_SYMLINK, 0777, "/etc/shadow", NULL },
	{ R "link-up", STAGE_SYMLINK, 0777, "../../etc/passwd", NULL },
	{ R "opt", STAGE_DIR, 0755, NULL, NULL },
	{ R "opt/bin", STAGE_DIR, 0755, NULL, NULL },
	{ R "opt/bin/tool", STAGE_FILE, 0750, NULL, SUM_HELLO },
	{ R "private", STAGE_DIR, 0700, NULL, NULL },
	{ R "private/key", STAGE_FILE, 0600, NULL, SUM_Z },
};

static void test_add_tree(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(stage_add_tree(&s, PAYLOAD_ROOTFS, "overlay", &recipe_at, &d), 0);
	check_diags(&d, "");
	stage_sort(&s);
	CHECK_INTEQ(s.n, ARRAY_SIZE(overlay_entries));
	for (size_t i = 0; i < ARRAY_SIZE(overlay_entries) && i < s.n; i++) {
		const struct stage_entry *e = &s.v[i];
		CHECK_STREQ(e->path, overlay_entries[i].path);
		CHECK_INTEQ(e->type, overlay_entries[i].type);
		CHECK_INTEQ(e->mode, overlay_entries[i].mode);
		if (overlay_entries[i].link)
			CHECK_STREQ(e->link, overlay_entries[i].link);
		else
			CHECK(e->link == NULL);
		if (overlay_entries[i].sha256)
			CHECK_STREQ(e->sha256, overlay_entries[i].sha256);
	}
	/* Files stream from the overlay; nothing was read through a link. */
	CHECK_STREQ(stage_find(&s, R "opt/bin/tool")->src, "overlay/opt/bin/tool");
	for (size_t i = 0; i < s.n; i++)
		CHECK(!startswith(s.v[i].path, R "etc/link-dir/"));
	stage_release(&s);

	/* No prefix: paths relative to the root. */
	CHECK_INTEQ(stage_add_tree(&s, "", "overlay/opt", NULL, &d), 0);
	CHECK_INTEQ(s.n, 2);
	CHECK(stage_find(&s, "bin") && stage_find(&s, "bin/tool"));
	stage_release(&s);

	CHECK_INTEQ(stage_add_tree(&s, "x", "no-such-overlay", &recipe_at, &d), -ENOENT);
	check_diags(&d, "3:7: cannot open directory 'no-such-overlay': No such file or directory");
	CHECK_INTEQ(stage_add_tree(&s, "x", "odd-overlay", &recipe_at, &d), -EINVAL);
	check_diags(&d, "3:7: 'odd-overlay/fifo' is not a regular file, directory or symlink");
	stage_release(&s);
}

static void test_manifest(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	/* added out of order, with a directory and a symlink that are not listed */
	stage_add_data(&s, R "z", "z\n", 2, 0600, &d);
	stage_add_data(&s, "usr/share/oem/cloud-config.yml", "#cloud-config\n", 14, 0644, &d);
	CHECK_INTEQ(stage_add_tree(&s, R "opt", "overlay/opt", NULL, &d), 0);
	CHECK_INTEQ(stage_add_tree(&s, "", "replace-overlay", NULL, &d), 0);
	stage_add_data(&s, R "sbin/suid", "hello\n", 6, 04755, &d);
	CHECK_INTEQ(stage_add_manifest(&s, "shared", &d), 0);
	check_diags(&d, "");
	const struct stage_entry *m = stage_find(&s, PAYLOAD_MANIFESTS "/shared");
	CHECK(m && m->type == STAGE_FILE && m->mode == 0644);
	CHECK_STREQ(m->data,
		    "# dlws payload manifest, segment 'shared': sha256 size mode path\n"
		    SUM_CLOUD_CONFIG " 14 0644 /usr/share/oem/cloud-config.yml\n"
		    SUM_HELLO " 6 0750 /usr/share/oem/dlws/rootfs/opt/bin/tool\n"
		    SUM_HELLO " 6 4755 /usr/share/oem/dlws/rootfs/sbin/suid\n"
		    SUM_Z " 2 0600 /usr/share/oem/dlws/rootfs/z\n");
	CHECK_INTEQ(m->size, strlen(m->data));
	stage_release(&s);
}

struct listed {
	char mode[16], uid[16], gid[16];
	unsigned long long size;
	char month[8], day[8], year[8];
	char *name, *link;
};

/* `bsdtar -tv` output, one struct per line (names without spaces). */
static size_t list_archive(const char *path, struct listed *out, size_t max) {
	char *cmd = xasprintf("TZ=UTC bsdtar -tvf '%s'", path);
	char *text = run(cmd);
	free(cmd);
	size_t n = 0;
	for (char *line = strtok(text, "\n"); line && n < max; line = strtok(NULL, "\n")) {
		struct listed *l = &out[n];
		int name_at = 0;
		if (sscanf(line, "%15s %*d %15s %15s %llu %7s %7s %7s %n", l->mode, l->uid, l->gid, &l->size, l->month, l->day,
			   l->year, &name_at) != 7 || !name_at) {
			fprintf(stderr, "cannot parse bsdtar line: %s\n", line);
			CHECK(0);
			continue;
		}
		char *arrow = strstr(line + name_at, " -> ");
		l->link = arrow ? xstrdup(arrow + 4) : NULL;
		if (arrow)
			*arrow = '\0';
		l->name = xstrdup(line + name_at);
		n++;
	}
	free(text);
	return n;
}

static const struct listed *find_listed(const struct listed *l, size_t n, const char *name, size_t *ret_index) {
	for (size_t i = 0; i < n; i++)
		if (streq(l[i].name, name)) {
			if (ret_index)
				*ret_index = i;
			return &l[i];
		}
	return NULL;
}

static void free_listed(struct listed *l, size_t n) {
	for (size_t i = 0; i < n; i++) {
		free(l[i].name);
		free(l[i].link);
	}
}

/* The segment a build would write: configs, a pinned file, an overlay, a manifest. */
static void build_stage(struct stage *s, bool reversed) {
	struct diags d = DIAGS_INIT;
	if (reversed) {
		CHECK_INTEQ(stage_add_file(s, R "opt/bin/kubectl", "bin/kubectl", 0755, SUM_HELLO, NULL, &d), 0);
		CHECK_INTEQ(stage_add_tree(s, PAYLOAD_ROOTFS, "overlay", NULL, &d), 0);
		stage_add_data(s, "usr/share/oem/cloud-config.yml", "#cloud-config\n", 14, 0644, &d);
	} else {
		stage_add_data(s, "usr/share/oem/cloud-config.yml", "#cloud-config\n", 14, 0644, &d);
		CHECK_INTEQ(stage_add_tree(s, PAYLOAD_ROOTFS, "overlay", NULL, &d), 0);
		CHECK_INTEQ(stage_add_file(s, R "opt/bin/kubectl", "bin/kubectl", 0755, SUM_HELLO, NULL, &d), 0);
	}
	CHECK_INTEQ(stage_add_manifest(s, "shared", &d), 0);
	check_diags(&d, "");
}

/* size 0: not checked */
static const struct { const char *name, *mode, *link; unsigned long long size; } archive_entries[] = {
	{ "usr", "drwxr-xr-x", NULL, 0 },
	{ "usr/share/oem", "drwxr-xr-x", NULL, 0 },
	{ "usr/share/oem/cloud-config.yml", "-rw-r--r--", NULL, 14 },
	{ "usr/share/oem/dlws/manifest.d/shared", "-rw-r--r--", NULL, 0 },
	{ R "opt/bin/kubectl", "-rwxr-xr-x", NULL, 6 },
	{ R "opt/bin/tool", "-rwxr-x---", NULL, 6 },
	{ R "private", "drwx------", NULL, 0 },
	{ R "private/key", "-rw-------", NULL, 2 },
	{ R "empty", "drwxr-xr-x", NULL, 0 },
	{ R "link-up", "lrwxrwxrwx", "../../etc/passwd", 0 },
	{ R "link-abs", "lrwxrwxrwx", "/etc/shadow", 0 },
	{ R "etc/link-dir", "lrwxrwxrwx", "/etc", 0 },
	{ R "dangling", "lrwxrwxrwx", "nowhere", 0 },
};

static void test_initrd_write(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	build_stage(&s, false);
	uint64_t size = 0;
	CHECK_INTEQ(initrd_write(&s, "out/seg.cpio.zst", NULL, MTIME, NULL, &size, &d), 0);
	check_diags(&d, "");
	struct stat st;
	CHECK(stat("out/seg.cpio.zst", &st) == 0 && (uint64_t)st.st_size == size);
	CHECK(!path_exists("out/seg.cpio.zst.tmp"));

	/* zstd (the default) around newc ("070701"), the only cpio format the kernel unpacks */
	char *magic = run("zstd -dc out/seg.cpio.zst | head -c 6");
	CHECK_STREQ(magic, "070701");
	free(magic);

	struct listed l[64];
	size_t n = list_archive("out/seg.cpio.zst", l, ARRAY_SIZE(l));
	for (size_t i = 0; i < ARRAY_SIZE(archive_entries); i++) {
		const struct listed *e = find_listed(l, n, archive_entries[i].name, NULL);
		if (!e) {
			fprintf(stderr, "not in the archive: %s\n", archive_entries[i].name);
			CHECK(e != NULL);
			continue;
		}
		CHECK_STREQ(e->mode, archive_entries[i].mode);
		if (archive_entries[i].link)
			CHECK_STREQ(e->link, archive_entries[i].link);
		else
			CHECK(e->link == NULL);
		if (archive_entries[i].size)
			CHECK_INTEQ(e->size, archive_entries[i].size);
	}
	for (size_t i = 0; i < n; i++) {
		/* owner root, one fixed time, each name once */
		CHECK_STREQ(l[i].uid, "0");
		CHECK_STREQ(l[i].gid, "0");
		CHECK(streq(l[i].month, "Nov") && streq(l[i].day, "14") && streq(l[i].year, "2023"));
		size_t first = 0;
		find_listed(l, n, l[i].name, &first);
		CHECK_INTEQ(first, i);
		/* every parent is a directory listed before its children */
		char *parent = xstrdup(l[i].name);
		for (char *slash = strrchr(parent, '/'); slash; slash = strrchr(parent, '/')) {
			*slash = '\0';
			size_t at = 0;
			const struct listed *p = find_listed(l, n, parent, &at);
			if (!p || p->mode[0] != 'd' || at >= i)
				fprintf(stderr, "parent '%s' of '%s' missing, late or not a directory\n", parent, l[i].name);
			CHECK(p && p->mode[0] == 'd' && at < i);
		}
		free(parent);
		/* the overlay's link to /etc was not walked */
		CHECK(!startswith(l[i].name, R "etc/link-dir/"));
	}
	/* staged entries plus the parents above the rootfs and manifest dirs */
	CHECK_INTEQ(n, s.n + 6);
	free_listed(l, n);

	char *text = run("bsdtar -xOf out/seg.cpio.zst usr/share/oem/cloud-config.yml " R "opt/bin/kubectl");
	CHECK_STREQ(text, "#cloud-config\nhello\n");
	free(text);
	text = run("bsdtar -xOf out/seg.cpio.zst " PAYLOAD_MANIFESTS "/shared");
	CHECK_STREQ(text, stage_find(&s, PAYLOAD_MANIFESTS "/shared")->data);
	free(text);
	stage_release(&s);
}

static bool same_bytes(const char *a, const char *b) {
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	for (int ca = 0, cb = 0; same && ca != EOF;) {
		ca = getc(fa);
		cb = getc(fb);
		same = ca == cb;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Equal inputs, equal bytes, whatever order the stage was built in. */
static void test_reproducible(void) {
	struct stage s1 = STAGE_INIT, s2 = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	build_stage(&s1, false);
	build_stage(&s2, true);
	CHECK_INTEQ(initrd_write(&s1, "out/a.cpio.zst", NULL, MTIME, NULL, NULL, &d), 0);
	CHECK_INTEQ(initrd_write(&s1, "out/b.cpio.zst", NULL, MTIME, NULL, NULL, &d), 0);
	CHECK_INTEQ(initrd_write(&s2, "out/c.cpio.zst", NULL, MTIME, NULL, NULL, &d), 0);
	CHECK_INTEQ(initrd_write(&s1, "out/d.cpio.zst", NULL, MTIME + 1, NULL, NULL, &d), 0);
	check_diags(&d, "");
	CHECK(same_bytes("out/a.cpio.zst", "out/b.cpio.zst"));
	CHECK(same_bytes("out/a.cpio.zst", "out/c.cpio.zst"));
	CHECK(!same_bytes("out/a.cpio.zst", "out/d.cpio.zst"));
	stage_release(&s1);
	stage_release(&s2);
}

/* A failed write leaves neither a file nor a temp, and never touches a good
 * segment already at that path. */
static void test_failed_write(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	stage_add_data(&s, "a", "a\n", 2, 0644, &d);
	CHECK_INTEQ(initrd_write(&s, "no-such-dir/seg.cpio.gz", NULL, MTIME, NULL, NULL, &d), -ENOENT);
	check_diags(&d, "0:0: cannot create 'no-such-dir/seg.cpio.gz.tmp': No such file or directory");
	CHECK(!path_exists("no-such-dir"));

	CHECK_INTEQ(initrd_write(&s, "out/good.cpio.zst", NULL, MTIME, NULL, NULL, &d), 0);
	char *good = run("bsdtar -xOf out/good.cpio.zst a");
	CHECK_STREQ(good, "a\n");
	free(good);

	/* the source vanishes between staging and writing */
	write_text("vanishing", "soon gone\n", 0644);
	CHECK_INTEQ(stage_add_file(&s, "b", "vanishing", 0644, NULL, NULL, &d), 0);
	unlink("vanishing");
	CHECK_INTEQ(initrd_write(&s, "out/good.cpio.zst", NULL, MTIME, NULL, NULL, &d), -ENOENT);
	check_diags(&d, "0:0: cannot open 'vanishing': No such file or directory");
	CHECK(!path_exists("out/good.cpio.zst.tmp"));
	good = run("bsdtar -tf out/good.cpio.zst");
	CHECK_STREQ(good, "a\n");
	free(good);

	/* ... or grows */
	write_text("vanishing", "soon gone\n", 0644);
	CHECK_INTEQ(stage_add_file(&s, "b", "vanishing", 0644, NULL, NULL, &d), 0);
	write_text("vanishing", "soon gone, but longer\n", 0644);
	CHECK_INTEQ(initrd_write(&s, "out/good.cpio.zst", NULL, MTIME, NULL, NULL, &d), -EIO);
	check_diags(&d, "0:0: 'vanishing' changed while the payload was written");
	CHECK(!path_exists("out/good.cpio.zst.tmp"));
	good = run("bsdtar -tf out/good.cpio.zst");
	CHECK_STREQ(good, "a\n");
	free(good);
	stage_release(&s);
}

/* A path cannot be a symlink (or a file) and also hold entries below it: the
 * archive would name it twice with two types, and what the node gets would
 * depend on the unpacker. The conflict must be reported, when staging or
 * when writing. */
static void test_entry_below_symlink(void) {
	struct stage s = STAGE_INIT;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(stage_add_tree(&s, "", "link-overlay", NULL, &d), 0);
	int r = stage_add_data(&s, "opt/x", "x\n", 2, 0644, &d);
	if (r == 0)
		r = initrd_write(&s, "out/conflict.cpio.zst", NULL, MTIME, NULL, NULL, &d);
	CHECK(r < 0);
	CHECK(d.n_errors > 0);
	CHECK(!path_exists("out/conflict.cpio.zst.tmp"));
	if (r == 0) {
		char *listing = run("bsdtar -tvf out/conflict.cpio.zst");
		fprintf(stderr, "written with 'opt' twice:\n%s", listing);
		free(listing);
	}
	diags_release(&d);
	stage_release(&s);
}

/* An empty stage is a valid (empty) segment. Run in a child: a sanitizer
 * abort there is a failed check here rather than the end of this program. */
static void test_empty_stage(void) {
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct stage s = STAGE_INIT;
		struct diags d = DIAGS_INIT;
		int r = initrd_write(&s, "out/empty.cpio.zst", NULL, MTIME, NULL, NULL, &d);
		diags_release(&d);
		_exit(r == 0 ? 0 : 3);
	}
	int status = -1;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		char *listing = run("bsdtar -tf out/empty.cpio.zst");
		CHECK_STREQ(listing, "");
		free(listing);
	}
}

/* Fixtures, relative to the temp dir the test runs in. */
static void make_fixtures(void) {
	make_dir("bin", 0755);
	write_text("bin/kubectl", "hello\n", 0644);
	write_text("bin/kubeadm", "z\n", 0644);
	make_dir("out", 0755);

	make_dir("overlay/etc", 0755);
	write_text("overlay/etc/motd", "welcome\n", 0644);
	make_link("/etc", "overlay/etc/link-dir");
	make_dir("overlay/opt/bin", 0755);
	write_text("overlay/opt/bin/tool", "hello\n", 0750);
	make_dir("overlay/private", 0755);
	write_text("overlay/private/key", "z\n", 0600);
	chmod("overlay/private", 0700);
	make_dir("overlay/empty", 0755);
	make_link("../../etc/passwd", "overlay/link-up");
	make_link("/etc/shadow", "overlay/link-abs");
	make_link("nowhere", "overlay/dangling");

	make_dir("replace-overlay", 0755);
	make_link("a", "replace-overlay/b");

	make_dir("odd-overlay", 0755);
	if (mkfifo("odd-overlay/fifo", 0644) < 0) {
		perror("mkfifo");
		exit(1);
	}

	make_dir("link-overlay", 0755);
	make_link("/etc", "link-overlay/opt");
}

int main(void) {
	if (system("bsdtar --version >/dev/null 2>&1") != 0) {
		/* CI installs it (make deps), so a missing reader is a failure, not a skip. */
		fprintf(stderr, "test_stage: bsdtar is needed to read the archives back (make deps installs libarchive-tools)\n");
		return 1;
	}
	umask(022);
	char tmpl[] = "/tmp/test_stage.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *cwd = getcwd(NULL, 0);
	if (!dir || !cwd || chdir(dir) < 0) {
		perror("test_stage: temp dir");
		return 1;
	}
	make_fixtures();
	test_payload_path();
	test_add_data();
	test_add_file();
	test_replace();
	test_add_tree();
	test_manifest();
	test_initrd_write();
	test_reproducible();
	test_failed_write();
	test_entry_below_symlink();
	test_empty_stage();
	if (chdir(cwd) < 0)
		perror("test_stage: chdir back");
	CHECK_INTEQ(rm_rf(dir), 0);
	free(cwd);
	return check_summary("test_stage");
}
