/* fsutil: SHA256SUMS parsed (table-driven) and written, and directories
 * made below a root whatever the umask. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "util.h"

/* Every diagnostic as "L: message", one per line. */
static char *format_diags(const struct diags *d) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%d: %s", i ? "\n" : "", d->v[i].line, d->v[i].msg);
	return buf_steal(&b, NULL);
}

#define H1 "a8248cf901ccbd7a05b6e8680ea24484dbfd580685bd790fd7c56d5d9d8abb90"
#define H2 "79daa794afa9790d8478f7c00b0c55d8968935fbaf927884df4942a88ead3387"

static void test_sha256sums(void) {
	static const struct {
		const char *text;
		const char *error;      /* "LINE: message", NULL when it parses */
		size_t n;
		const char *first_path;
	} cases[] = {
		{ H1 "  worker/vmlinuz\n" H2 "  boot.ipxe\n", NULL, 2, "boot.ipxe" },
		{ H1 " *worker/vmlinuz", NULL, 1, "worker/vmlinuz" },        /* binary mark, no final newline */
		{ "A8248CF901CCBD7A05B6E8680EA24484DBFD580685BD790FD7C56D5D9D8ABB90  a\n", NULL, 1, "a" },
		{ "", "0: lists no files", 0, NULL },
		{ "deadbeef  a\n", "1: expected '<sha256 in hex>  <path>'", 0, NULL },
		{ H1 " a\n", "1: expected '<sha256 in hex>  <path>'", 0, NULL },
		{ H1 "  ../evil\n", "1: '../evil' is not a plain relative path", 0, NULL },
		{ H1 "  /etc/passwd\n", "1: '/etc/passwd' is not a plain relative path", 0, NULL },
		{ H1 "  a//b\n", "1: 'a//b' is not a plain relative path", 0, NULL },
		{ H1 "  ./a\n", "1: './a' is not a plain relative path", 0, NULL },
		{ H1 "  a\\b\n", "1: 'a\\b' is not a plain relative path", 0, NULL },
		{ H1 "  a/\n", "1: 'a/' is not a plain relative path", 0, NULL },
		{ H1 "  SHA256SUMS\n", "1: SHA256SUMS lists itself", 0, NULL },
		{ H1 "  a\n" H2 "  a\n", "0: 'a' is listed twice", 0, NULL },
		{ H1 "  a\nnonsense\n" H2 "  ../b\n", "2: expected '<sha256 in hex>  <path>'\n3: '../b' is not a plain relative path", 0, NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct diags d = DIAGS_INIT;
		struct sha256sums s = SHA256SUMS_INIT;
		int r = sha256sums_parse(cases[i].text, strlen(cases[i].text), "SHA256SUMS", &s, &d);
		char *got = format_diags(&d);
		if (cases[i].error) {
			CHECK(r < 0);
			CHECK_STREQ(got, cases[i].error);
			CHECK_INTEQ(s.n, 0);
		} else {
			CHECK_INTEQ(r, 0);
			CHECK_STREQ(got, "");
			CHECK_INTEQ(s.n, cases[i].n);
			if (s.n)
				CHECK_STREQ(s.v[0].path, cases[i].first_path);
		}
		free(got);
		sha256sums_release(&s);
		diags_release(&d);
	}
	/* Sorted by path, sums in lowercase, found by path. */
	struct diags d = DIAGS_INIT;
	struct sha256sums s = SHA256SUMS_INIT;
	const char *text = H2 "  worker/vmlinuz\n" H1 "  master/vmlinuz\n";
	CHECK_INTEQ(sha256sums_parse(text, strlen(text), "SHA256SUMS", &s, &d), 0);
	const struct sha256sum *e = sha256sums_find(&s, "worker/vmlinuz");
	CHECK(e && streq(e->hex, H2));
	CHECK(sha256sums_find(&s, "nodes/x.cpio.gz") == NULL);
	CHECK_STREQ(s.v[0].path, "master/vmlinuz");
	sha256sums_release(&s);
	diags_release(&d);
}

/* What sha256sums_write writes, sha256sums_parse reads. */
static void test_sha256sums_roundtrip(void) {
	char tmpl[] = "/tmp/test_fsutil.XXXXXX";
	CHECK(mkdtemp(tmpl) != NULL);
	struct diags d = DIAGS_INIT;
	mode_t old = umask(077);
	CHECK_INTEQ(mkdirs_for_file(tmpl, "worker/x/vmlinuz", 0755, &d), 0);
	umask(old);
	_cleanup_free_ char *dir = xasprintf("%s/worker/x", tmpl);
	struct stat st;
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0755);
	_cleanup_free_ char *file = xasprintf("%s/worker/x/vmlinuz", tmpl);
	CHECK_INTEQ(write_file_atomic(file, "abc", 3, 0644, &d), 0);
	CHECK_INTEQ(sha256sums_write(tmpl, SHA256SUMS_NAME, &d), 0);
	_cleanup_free_ char *sums_path = xasprintf("%s/%s", tmpl, SHA256SUMS_NAME);
	char *text = NULL;
	size_t len = 0;
	CHECK_INTEQ(read_file(sums_path, 1 << 20, &text, &len, &d), 0);
	struct sha256sums s = SHA256SUMS_INIT;
	CHECK_INTEQ(sha256sums_parse(text, len, sums_path, &s, &d), 0);
	const struct sha256sum *e = sha256sums_find(&s, "worker/x/vmlinuz");
	CHECK(e && streq(e->hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK_INTEQ(s.n, 1);
	CHECK_INTEQ(d.n, 0);
	sha256sums_release(&s);
	free(text);
	diags_release(&d);
	rm_rf(tmpl);
}

int main(void) {
	test_sha256sums();
	test_sha256sums_roundtrip();
	return check_summary("test_fsutil");
}
