/* The tar reader: what tarball_write writes reads back (checked, then
 * extracted), and the members a bundle's tar must not hold are refused,
 * table-driven, before anything is written. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "tarball.h"
#include "util.h"

static void test_roundtrip(const char *tmp) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *tree = path_join(tmp, "tree");
	_cleanup_free_ char *tar = path_join(tmp, "pxe.tar");
	_cleanup_free_ char *out = path_join(tmp, "out");
	CHECK_INTEQ(mkdirs_under(tmp, "tree/worker", 0755, &d), 0);
	_cleanup_free_ char *kernel = path_join(tree, "worker/vmlinuz");
	_cleanup_free_ char *sums = path_join(tree, "SHA256SUMS");
	CHECK_INTEQ(write_file_atomic(kernel, "kernel", 6, 0644, &d), 0);
	CHECK_INTEQ(write_file_atomic(sums, "sums\n", 5, 0644, &d), 0);
	CHECK_INTEQ(tarball_write(tree, "pxe", tar, 0, &d), 0);

	struct tarball_contents c = TARBALL_CONTENTS_INIT;
	CHECK_INTEQ(tarball_read(tar, NULL, "SHA256SUMS", 1024, &c, &d), 0);
	CHECK_STREQ(c.top, "pxe");
	CHECK_INTEQ(c.files.n, 2);
	CHECK_INTEQ(c.size, 6);
	CHECK(c.held && c.held_len == 5 && memcmp(c.held, "sums\n", 5) == 0);
	CHECK(strv_sorted_contains(&c.files, "worker/vmlinuz"));
	tarball_contents_release(&c);

	CHECK(mkdir(out, 0755) == 0);
	CHECK_INTEQ(tarball_read(tar, out, "SHA256SUMS", 1024, &c, &d), 0);
	_cleanup_free_ char *got = path_join(out, "worker/vmlinuz");
	char *text = NULL;
	size_t len = 0;
	CHECK_INTEQ(read_file(got, 1024, &text, &len, &d), 0);
	CHECK_STREQ(text, "kernel");
	free(text);
	tarball_contents_release(&c);

	/* A held file over its limit. */
	CHECK(tarball_read(tar, NULL, "SHA256SUMS", 2, &c, &d) < 0);
	CHECK_INTEQ(d.n, 1);
	diags_release(&d);
}

struct member {
	const char *name;
	mode_t type;            /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 0 ends the list */
	const char *link;       /* a symlink's target, or a hard link's member */
};

static void write_tar(const char *path, const struct member *m) {
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_open_filename(a, path);
	for (; m->type; m++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m->name);
		archive_entry_set_filetype(e, m->type);
		archive_entry_set_perm(e, 0644);
		if (m->type == AE_IFLNK)
			archive_entry_set_symlink(e, m->link);
		else if (m->link)
			archive_entry_set_hardlink(e, m->link);
		archive_entry_set_size(e, m->type == AE_IFREG && !m->link ? 1 : 0);
		archive_write_header(a, e);
		if (m->type == AE_IFREG && !m->link)
			archive_write_data(a, "x", 1);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static void test_refusals(const char *tmp) {
	static const struct {
		struct member m[4];
		const char *error;      /* after "'<tar>' " or "'<member>' in '<tar>' " */
	} cases[] = {
		{ { { "pxe/a", AE_IFREG, NULL } }, NULL },
		{ { { "../evil", AE_IFREG, NULL } }, "holds '../evil', which leaves the bundle's directory ('..'): refusing it" },
		{ { { "/etc/passwd", AE_IFREG, NULL } }, "holds '/etc/passwd', an absolute name: refusing it" },
		{ { { "pxe/a", AE_IFREG, NULL }, { "other/b", AE_IFREG, NULL } },
		  "holds 'other/b' beside 'pxe/': a bundle's tar holds one top directory ('pxe/...', as dlws-mkimage writes it)" },
		{ { { "pxe/l", AE_IFLNK, "../../x" } }, "is a symbolic link to '../../x', outside the bundle: refusing it" },
		{ { { "pxe/l", AE_IFLNK, "a" } }, "is a symbolic link: a bundle holds only files and directories" },
		{ { { "pxe/dev", AE_IFCHR, NULL } }, "is a device, fifo or socket: a bundle holds only files and directories" },
		{ { { "pxe/h", AE_IFREG, "pxe/a" } }, "is a hard link to 'pxe/a', which is not a file before it" },
		{ { { "pxe/a", AE_IFREG, NULL }, { "pxe/h", AE_IFREG, "pxe/a" } }, NULL },
		{ { { "pxe/a", AE_IFREG, NULL }, { "pxe/a", AE_IFREG, NULL } }, "holds 'pxe/a' twice" },
	};
	_cleanup_free_ char *tar = path_join(tmp, "bad.tar");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		write_tar(tar, cases[i].m);
		struct diags d = DIAGS_INIT;
		struct tarball_contents c = TARBALL_CONTENTS_INIT;
		int r = tarball_read(tar, NULL, NULL, 0, &c, &d);
		if (!cases[i].error) {
			CHECK_INTEQ(r, 0);
		} else {
			CHECK(r < 0);
			CHECK_INTEQ(d.n, 1);
			CHECK(d.n && strstr(d.v[0].msg, cases[i].error));
			if (d.n && !strstr(d.v[0].msg, cases[i].error))
				fprintf(stderr, "  case %zu: %s\n", i, d.v[0].msg);
		}
		tarball_contents_release(&c);
		diags_release(&d);
	}
}

int main(void) {
	char tmpl[] = "/tmp/test_tarball.XXXXXX";
	CHECK(mkdtemp(tmpl) != NULL);
	test_roundtrip(tmpl);
	test_refusals(tmpl);
	rm_rf(tmpl);
	return check_summary("test_tarball");
}
