/* The reader's parsers: entry names, manifests, secret masking. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "reader.h"

#define SUM "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_names(void) {
	static const struct { const char *name; bool ok; } cases[] = {
		{ "usr/share/oem/config.ign", true }, { "a", true }, { "..a/b..", true },
		{ "", false }, { "/etc/passwd", false }, { "../evil", false }, { "a/../b", false }, { "a/..", false },
		{ "a//b", false }, { "./a", false }, { "a/./b", false }, { "a\\b", false }, { "a\nb", false }, { "a/", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_total++;
		if (reader_name_ok(cases[i].name) != cases[i].ok) {
			check_failed++;
			fprintf(stderr, "reader_name_ok(\"%s\") != %d\n", cases[i].name, cases[i].ok);
		}
	}
}

static void test_manifests(void) {
	static const struct { const char *text; const char *error; } cases[] = {
		{ "# header\n" SUM " 12 0644 /usr/share/oem/x\n", NULL },
		{ SUM " 0 0755 /a/b", NULL },
		{ SUM " 12 0644 /../../etc/passwd\n", "m:1: refusing path '/../../etc/passwd': not a plain absolute path inside the payload" },
		{ SUM " 12 0644 relative\n", "m:1: refusing path 'relative': not a plain absolute path inside the payload" },
		{ "#\n" SUM " 99999999999999999999 0644 /a\n", "m:2: absurd size '99999999999999999999'" },
		{ SUM " 17592186044417 0644 /a\n", "m:1: absurd size '17592186044417'" },
		{ SUM " -1 0644 /a\n", "m:1: absurd size '-1'" },
		{ SUM " 1 0844 /a\n", "m:1: bad mode '0844'" },
		{ SUM " 1 07777777 /a\n", "m:1: bad mode '07777777'" },
		{ "abc 1 0644 /a\n", "m:1: not a sha256: 'abc'" },
		{ SUM " 1 0644 /a extra\n", "m:1: expected '<sha256> <size> <mode> /<path>'" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diags d = DIAGS_INIT;
		struct reader_manifest m;
		int r = reader_manifest_parse(cases[i].text, strlen(cases[i].text), "m", &m, &d);
		if (!cases[i].error) {
			CHECK_INTEQ(r, 0);
			if (r == 0) {
				CHECK_INTEQ(m.n, 1);
				CHECK(m.v[0].path[0] != '/');
				reader_manifest_release(&m);
			}
		} else {
			CHECK(r < 0);
			char got[512] = "";
			if (d.n)
				snprintf(got, sizeof(got), "%s:%d: %s", d.v[0].file, d.v[0].line, d.v[0].msg);
			CHECK_STREQ(got, cases[i].error);
		}
		diags_release(&d);
	}
	struct diags d = DIAGS_INIT;
	struct reader_manifest m;
	const char *two = SUM " 10 0644 /a\n" SUM " 32 0600 /b/c\n";
	CHECK_INTEQ(reader_manifest_parse(two, strlen(two), "m", &m, &d), 0);
	CHECK_INTEQ(m.total, 42);
	CHECK_INTEQ(m.v[1].mode, 0600);
	CHECK_STREQ(m.v[1].path, "b/c");
	reader_manifest_release(&m);
	diags_release(&d);
}

static void test_mask(void) {
	static const struct { const char *in, *out; } cases[] = {
		{ "token: abcdef.0123456789abcdef\n", "token: abcdef.****************\n" },
		{ "--token=abcdef.0123456789abcdef", "--token=abcdef.****************" },
		{ "version: 1.2.3\nhost: a.example.com\n", "version: 1.2.3\nhost: a.example.com\n" },
		{ "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIB\nAAAA\n-----END RSA PRIVATE KEY-----\nb\n", "a\n(private key hidden)\nb\n" },
		{ "x: |\n  -----BEGIN PRIVATE KEY-----\n  MIIB\n", "x: |\n  (private key hidden)" },
		{ "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" },
		{ "    client-key-data: QUJD\n", "    client-key-data: (hidden)\n" },
		{ "\"token-secret\": \"0123456789abcdef\",", "\"token-secret\": \"(hidden)\"," },
		{ "password: hunter2\n", "password: (hidden)\n" },
		/* base64 of "-----BEGIN EC PRIVATE KEY-----\nxyz" in any key */
		{ "data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCnh5eg==\n", "data: (private key hidden)\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = reader_mask_secrets(cases[i].in, strlen(cases[i].in));
		CHECK_STREQ(got, cases[i].out);
		free(got);
	}
}

static void test_base64(void) {
	size_t n = 0;
	char *s = reader_base64_decode("aGVs\nbG8=", 9, 100, &n);
	CHECK_STREQ(s, "hello");
	CHECK_INTEQ(n, 5);
	free(s);
	CHECK(reader_base64_decode("a*b", 3, 100, &n) == NULL);
	CHECK(reader_base64_decode("aGVsbG8=", 8, 3, &n) == NULL);
}

int main(void) {
	test_names();
	test_manifests();
	test_mask();
	test_base64();
	return check_summary("test_reader");
}
