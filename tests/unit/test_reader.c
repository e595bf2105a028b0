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
		/* kubeconfigs: a bootstrap token keeps its id, any other token is hidden whole */
		{ "    token: \"kt5m55.t5td7h4b5pdjurra\"\n", "    token: \"kt5m55.****************\"\n" },
		{ "    token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n", "    token: (hidden)\n" },
		{ "    refresh-token: r3fr3sh\n    id-token: 1d\n", "    refresh-token: (hidden)\n    id-token: (hidden)\n" },
		/* kubeadm.yaml: bootstrapTokens and the certificate key */
		{ "bootstrapTokens:\n- token: abcdef.0123456789abcdef\n  ttl: 24h\n",
		  "bootstrapTokens:\n- token: abcdef.****************\n  ttl: 24h\n" },
		{ "certificateKey: \"e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204\"\n", "certificateKey: \"(hidden)\"\n" },
		{ "  certificate-key: 0123abcd\n", "  certificate-key: (hidden)\n" },
		/* kubeadm's flags in a unit or script */
		{ "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00ff "
		  "--control-plane --certificate-key 0123abcd --skip-token-print\n",
		  "kubeadm join 10.0.0.1:6443 --token abcdef.**************** --discovery-token-ca-cert-hash sha256:00ff "
		  "--control-plane --certificate-key (hidden) --skip-token-print\n" },
		{ "--certificate-key=0123abcd --token=opaque-value --password \"p w\"", "--certificate-key=(hidden) --token=(hidden) --password \"(hidden)\"" },
		{ "--token --other", "--token --other" },
		/* env files, TOML, JSON without spaces */
		{ "password=hunter2\n", "password=(hidden)\n" },
		{ "  password = \"p4ss\"\n", "  password = \"(hidden)\"\n" },
		{ "{\"auths\":{\"r.io\":{\"auth\":\"dXNlcjpwYXNz\"}}}", "{\"auths\":{\"r.io\":{\"auth\":\"(hidden)\"}}}" },
		{ "{token: abc}", "{token: (hidden)}" },
		/* EncryptionConfiguration */
		{ "        - name: key1\n          secret: c2VjcmV0IGlzIHNlY3VyZQ==\n", "        - name: key1\n          secret: (hidden)\n" },
		/* YAML block scalars: every line of the value, not its line count */
		{ "secret: |\n  line1\n  line2\nnext: 1\n", "secret: |\n  (hidden)\n  (hidden)\nnext: 1\n" },
		{ "- password: >-\n    s1\n\n    s2\n  other: x\n", "- password: >-\n    (hidden)\n\n    (hidden)\n  other: x\n" },
		{ "password: |", "password: |" },
		/* a PEM key percent-encoded in an Ignition data URL */
		{ "\"source\": \"data:,-----BEGIN%20RSA%20PRIVATE%20KEY-----%0AMIIB%0A-----END%20RSA%20PRIVATE%20KEY-----%0A\"",
		  "\"source\": \"data:,(private key hidden)%0A\"" },
		{ "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n", "(private key hidden)\n" },
		/* what is public stays */
		{ "  token-id: \"kt5m55\"\n  auth-extra-groups: \"system:bootstrappers\"\n",
		  "  token-id: \"kt5m55\"\n  auth-extra-groups: \"system:bootstrappers\"\n" },
		{ "secret:\n  secretName: foo\nname: bootstrap-token-kt5m55\n", "secret:\n  secretName: foo\nname: bootstrap-token-kt5m55\n" },
		{ "ETCD_INITIAL_CLUSTER_TOKEN=dlws-lab-etcd\nkeyFile: /etc/k.key\n", "ETCD_INITIAL_CLUSTER_TOKEN=dlws-lab-etcd\nkeyFile: /etc/k.key\n" },
		{ "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = reader_mask_secrets(cases[i].in, strlen(cases[i].in));
		CHECK_STREQ(got, cases[i].out);
		free(got);
	}
}

static void test_text(void) {
	static const char utf8[] = "a\tb\r\nc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	CHECK(reader_is_text(utf8, sizeof(utf8) - 1));
	CHECK(!reader_is_text("a\x01", 2));
	CHECK(!reader_is_text("a\0b", 3));
	CHECK(!reader_is_text("\xc3", 1));
	CHECK(!reader_is_text("\xc0\xaf", 2));
	CHECK(!reader_is_text("\xed\xa0\x80", 3));
	CHECK(!reader_is_text("\xf4\x90\x80\x80", 4));
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
	test_text();
	test_base64();
	return check_summary("test_reader");
}
