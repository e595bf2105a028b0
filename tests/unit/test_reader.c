/* The reader's parsers: entry names, manifests, boot menus, secret masking. */
#include <stdlib.h>
#include <string.h>

#include "bootcfg.h"
#include "buf.h"
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

/* What bootcfg.c writes reads back the same. */
static void test_bootcfg_round_trip(void) {
	struct boot_menu m = BOOT_MENU_INIT;
	struct boot_entry *e = boot_menu_add(&m, "master", "master: without node configuration", "master/vmlinuz", "console=ttyS0 dlws.recipe=master");
	strv_push(&e->initrds, "master/base.img");
	strv_push(&e->initrds, "master/shared.cpio.zst");
	e = boot_menu_add(&m, "dlws-master", "dlws-master: master 10.0.0.10", "master/vmlinuz", "console=ttyS0 dlws.node=dlws-master");
	strv_push(&e->initrds, "master/base.img");
	strv_push(&e->initrds, "nodes/dlws-master.cpio.zst");
	e->mac = xstrdup("52:54:00:00:10:01");
	e = boot_menu_add(&m, "dlws-worker1", "dlws-worker1: worker 10.0.0.21", "worker/vmlinuz", "");
	strv_push(&e->initrds, "worker/base.img");
	e->mac = xstrdup("52:54:00:00:21:01");
	m.default_entry = 1;
	m.timeout_s = 3;
	static const struct { enum reader_bootcfg kind; const char *root; } kinds[] = {
		{ READER_BOOT_SYSLINUX, "" }, { READER_BOOT_SYSLINUX, "/" }, { READER_BOOT_GRUB, NULL }, { READER_BOOT_IPXE, NULL },
	};
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char *text = kinds[k].kind == READER_BOOT_SYSLINUX ? bootcfg_syslinux(&m, NULL, kinds[k].root)
			     : kinds[k].kind == READER_BOOT_GRUB   ? bootcfg_grub(&m, NULL)
								     : bootcfg_ipxe(&m);
		struct boot_menu got;
		struct strv problems = STRV_INIT;
		reader_bootcfg_parse(text, strlen(text), kinds[k].kind, "m", &got, &problems);
		CHECK_INTEQ(problems.n, 0);
		for (size_t i = 0; i < problems.n; i++)
			fprintf(stderr, "  %s\n", problems.v[i]);
		CHECK_INTEQ(got.n, m.n);
		CHECK_INTEQ(got.default_entry, 1);
		for (size_t i = 0; i < got.n && i < m.n; i++) {
			CHECK_STREQ(got.v[i].label, m.v[i].label);
			if (kinds[k].kind == READER_BOOT_IPXE) {
				CHECK(got.v[i].title == NULL);
				CHECK((got.v[i].mac == NULL) == (m.v[i].mac == NULL));
				if (got.v[i].mac && m.v[i].mac)
					CHECK_STREQ(got.v[i].mac, m.v[i].mac);
			} else {
				CHECK_STREQ(got.v[i].title, m.v[i].title);
				CHECK(got.v[i].mac == NULL);
			}
			CHECK_STREQ(got.v[i].kernel, m.v[i].kernel);
			CHECK_STREQ(got.v[i].cmdline, m.v[i].cmdline);
			CHECK_INTEQ(got.v[i].initrds.n, m.v[i].initrds.n);
			for (size_t j = 0; j < got.v[i].initrds.n && j < m.v[i].initrds.n; j++)
				CHECK_STREQ(got.v[i].initrds.v[j], m.v[i].initrds.v[j]);
		}
		boot_menu_release(&got);
		strv_release(&problems);
		free(text);
	}
	/* A node's own file: one entry booting at once. */
	char *one = bootcfg_syslinux(&m, &m.v[2], "");
	struct boot_menu got;
	struct strv problems = STRV_INIT;
	reader_bootcfg_parse(one, strlen(one), READER_BOOT_SYSLINUX, "m", &got, &problems);
	CHECK_INTEQ(problems.n, 0);
	CHECK_INTEQ(got.n, 1);
	CHECK_INTEQ(got.default_entry, 0);
	CHECK_STREQ(got.n ? got.v[0].cmdline : NULL, "");
	boot_menu_release(&got);
	strv_release(&problems);
	free(one);
	boot_menu_release(&m);
}

/* Hostile menus: what cannot be an entry of ours is left out and said. */
static void test_bootcfg_problems(void) {
	static const struct { enum reader_bootcfg kind; const char *text; size_t entries; const char *problem; } cases[] = {
		{ READER_BOOT_IPXE, "#!ipxe\n:a\nkernel ../../etc/passwd x\nboot\n", 0,
		  "m:3: refusing path '../../etc/passwd': not a plain path inside the boot root" },
		{ READER_BOOT_IPXE, "#!ipxe\n:a\nkernel /vmlinuz x\nboot\n", 0,
		  "m:3: refusing path '/vmlinuz': not a plain path inside the boot root" },
		{ READER_BOOT_IPXE, "#!ipxe\n:a\nkernel k\ninitrd a/../../b\nboot\n", 0,
		  "m:4: refusing path 'a/../../b': not a plain path inside the boot root" },
		{ READER_BOOT_IPXE, "#!ipxe\niseq ${mac} 52:54:00:00:10:01 && goto nope ||\n:a\nkernel k\nboot\n", 1,
		  "m:2: goto 'nope' names no entry" },
		{ READER_BOOT_IPXE, "#!ipxe\niseq ${mac} zz\x1b && goto a ||\n:a\nkernel k\nboot\n", 1, "m:2: 'zz\\x1b' is not a MAC address" },
		{ READER_BOOT_IPXE, "#!ipxe\niseq ${mac} 52:54:00:00:10:01 goto a\n", 0,
		  "m:2: a per-MAC line not as dlws-mkimage writes it (iseq ${mac} MAC && goto LABEL ||)" },
		{ READER_BOOT_IPXE, "echo hi\n:a\nkernel k\nboot\n", 0, "m:1: not an iPXE script (no #!ipxe)" },
		{ READER_BOOT_IPXE, "#!ipxe\n:a\nkernel k initrd=x.img c\ninitrd d/y.img\nboot\n", 1,
		  "m:2: entry 'a': the kernel line's initrd= names are not the initrds it loads" },
		{ READER_BOOT_IPXE, "#!ipxe\n:a\x01\nkernel k\nboot\n", 0, "m:2: entry 'a\\x01': not a label of [A-Za-z0-9._:-]" },
		{ READER_BOOT_IPXE, "#!ipxe\n:a\nkernel k\nboot\n:b\nkernel k\nboot\n:a\nkernel k2\nboot\n", 2, "m:8: entry 'a' is defined twice" },
		{ READER_BOOT_IPXE, "#!ipxe\ngoto b\n:a\nkernel k\nboot\n", 1, "m:2: the default 'b' names no entry" },
		{ READER_BOOT_IPXE, "#!ipxe\n:a\nkernel k\n", 0, "m:2: entry 'a' does not end" },
		{ READER_BOOT_IPXE, "#!ipxe\n:a\ninitrd k\nboot\n", 0, "m:2: entry 'a': no kernel" },
		{ READER_BOOT_SYSLINUX, "LABEL a\n  KERNEL /../x\n", 0, "m:2: refusing path '/../x': not a plain path inside the boot root" },
		{ READER_BOOT_SYSLINUX, "LABEL a\n  APPEND x\n", 0, "m:1: entry 'a': no kernel" },
		{ READER_BOOT_SYSLINUX, "LABEL a\n  KERNEL k\n  APPEND a\x1b[2Jb\n", 0, "m:1: entry 'a': its command line is not printable text" },
		{ READER_BOOT_SYSLINUX, "LABEL a\n  MENU LABEL \xc0\xaf\n  KERNEL k\n", 0, "m:1: entry 'a': its title is not printable text" },
		{ READER_BOOT_GRUB, "menuentry x {\n}\n", 0, "m:1: a menuentry not as dlws-mkimage writes it ('TITLE' --id LABEL {)" },
		{ READER_BOOT_GRUB, "menuentry 'T' --id a {\n  linux /k c\n", 0, "m:1: entry 'a' does not end" },
		{ READER_BOOT_GRUB, "set default=b\nmenuentry 'T' --id a {\n  linux /k c\n}\n", 1, "m:1: the default 'b' names no entry" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct boot_menu got;
		struct strv problems = STRV_INIT;
		reader_bootcfg_parse(cases[i].text, strlen(cases[i].text), cases[i].kind, "m", &got, &problems);
		CHECK_INTEQ(got.n, cases[i].entries);
		CHECK_STREQ(problems.n ? problems.v[0] : "", cases[i].problem);
		boot_menu_release(&got);
		strv_release(&problems);
	}
	static const char nul[] = "LABEL a\n  KERNEL k\n  INITRD a\0b\n";
	struct boot_menu got;
	struct strv problems = STRV_INIT;
	reader_bootcfg_parse(nul, sizeof(nul) - 1, READER_BOOT_SYSLINUX, "m", &got, &problems);
	CHECK_INTEQ(got.n, 1);
	CHECK_STREQ(problems.n ? problems.v[0] : "", "m:3: holds a NUL byte");
	boot_menu_release(&got);
	strv_release(&problems);
	/* Limits: initrds per entry, line length, problems said per menu. */
	struct buf b = BUF_INIT;
	buf_puts(&b, "LABEL a\n  KERNEL k\n  INITRD i0");
	for (int i = 1; i <= READER_BOOT_INITRDS_MAX; i++)
		buf_printf(&b, ",i%d", i);
	buf_printf(&b, "\nLABEL b\n  KERNEL k\n  APPEND %*s\n", READER_BOOT_LINE_MAX, "x");
	for (int i = 0; i < 30; i++)
		buf_puts(&b, "LABEL c d\n  KERNEL k\n");
	reader_bootcfg_parse(b.data, b.len, READER_BOOT_SYSLINUX, "m", &got, &problems);
	CHECK_INTEQ(got.n, 1);
	CHECK_INTEQ(problems.n, 21);
	CHECK_STREQ(problems.n ? problems.v[0] : "", "m:1: entry 'a': more than 64 initrds");
	CHECK_STREQ(problems.n > 1 ? problems.v[1] : "", "m:6: longer than 8192 bytes");
	CHECK_STREQ(problems.n ? problems.v[problems.n - 1] : "", "m: 12 more problems");
	boot_menu_release(&got);
	strv_release(&problems);
	buf_release(&b);
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
	CHECK(reader_mac_ok("52:54:00:AB:cd:01"));
	CHECK(!reader_mac_ok("52:54:00:ab:cd"));
	CHECK(!reader_mac_ok("52-54-00-ab-cd-01"));
	CHECK(!reader_mac_ok("52:54:00:ab:cd:0g"));
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
	test_bootcfg_round_trip();
	test_bootcfg_problems();
	test_text();
	test_base64();
	return check_summary("test_reader");
}
