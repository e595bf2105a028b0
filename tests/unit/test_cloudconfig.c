/* The cloud-config schema: a table of documents with every finding as
 * "L:C: message" (warnings as "L:C: warning: message"; "" for a document
 * coreos-cloudinit takes as it is), then the path build.c takes: a
 * template rendered with its line map, parsed, checked, and the findings
 * moved to the template's lines. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "cloudconfig.h"
#include "diag.h"
#include "template.h"
#include "util.h"
#include "value.h"
#include "yamldoc.h"

/* Every case starts with the header line: what a case adds starts on line 2. */
#define H "#cloud-config\n"
/* A unit whose further keys start on line 5 at column 7. */
#define UNIT H "coreos:\n  units:\n    - name: a.service\n"
/* A file whose further keys start on line 4 at column 5. */
#define FILE_ H "write_files:\n  - path: /etc/x\n"

static const struct { const char *yaml, *want; } cases[] = {
	/* documents coreos-cloudinit takes as they are */
	{ H, "" },
	{ H "hostname: m1\nssh_authorized_keys: [ssh-ed25519 AAAA a, \"ssh-rsa BBBB b\"]\nmanage_etc_hosts: localhost\n", "" },
	{ H "coreos:\n  units:\n  update:\nwrite_files: ~\nusers:\n", "" },
	{ UNIT "      enable: yes\n      runtime: \"on\"\n      mask: False\n", "" },
	{ UNIT "      enable: TRUE\n      runtime: 'n'\n      mask: ~\n      command: ''\n", "" },
	{ H "coreos:\n  units:\n    - name: getty@.service\n    - name: 10-eth0.network\n      runtime: true\n"
	  "    - name: var-lib.mount\n      command: reload-or-try-restart\n", "" },
	/* unquoted modes reach coreos-cloudinit as their source text, read as octal */
	{ FILE_ "    permissions: 0644\n  - path: /etc/y\n    permissions: 755\n  - path: /etc/z\n    permissions: '1777'\n", "" },
	/* 511 is the decimal of 0777, but 0511 is a sensible mode: taken as written */
	{ FILE_ "    permissions: 511\n", "" },
	{ FILE_ "    encoding: base64\n    content: aGVsbG8K\n  - path: /etc/y\n    encoding: gzip+b64\n"
	  "    content: |\n      H4sIAAAAAAAAA8tIzcnJ\n      BQAgOjA2BgAAAA==\n  - path: /etc/z\n    encoding: gz\n    content: binary\n", "" },
	{ H "coreos:\n  locksmith:\n    window_start: Thu 04:00\n    window_length: 1h30m\n  update:\n"
	  "    reboot_strategy: \"off\"\n    group: stable\n", "" },
	{ H "coreos:\n  locksmith:\n    window_start: 004:0\n    window_length: -.5h\n", "" },
	{ H "coreos:\n  flannel:\n    interface: eth1\n    ip_masq: true\n  oem:\n    id: dlws\n", "" },

	/* keys coreos-cloudinit ignores */
	{ UNIT "      drop-ins:\n        - name: x.conf\n          content: y\n",
	  "5:7: unknown key 'drop-ins' in coreos.units[0] (did you mean 'drop_ins'?)" },
	{ H "ssh-authorized-keys: []\n", "2:1: unknown key 'ssh-authorized-keys' in cloud-config (did you mean 'ssh_authorized_keys'?)" },
	{ H "users:\n  - name: core\n    no-log-init: true\n",
	  "4:5: unknown key 'no-log-init' in users[0] (did you mean 'no_log_init'?)" },
	{ H "hostnme: m1\n", "2:1: unknown key 'hostnme' in cloud-config (did you mean 'hostname'?)" },
	{ H "frobnicate: 1\n", "2:1: unknown key 'frobnicate' in cloud-config" },
	{ H "units: []\n", "2:1: unknown key 'units' in cloud-config (did you mean 'coreos.units'?)" },
	{ H "coreos:\n  write_files: []\n", "3:3: unknown key 'write_files' in coreos ('write_files' belongs at the top level)" },
	{ UNIT "      drop_ins:\n        - name: x.conf\n          contnet: y\n",
	  "7:11: unknown key 'contnet' in coreos.units[0].drop_ins[0] (did you mean 'content'?)" },
	{ H "coreos:\n  etcd2:\n    election_timout: 100\n",
	  "3:3: warning: deprecated key 'etcd2' in coreos (Flatcar does not ship the etcd2 it configures)\n"
	  "4:5: unknown key 'election_timout' in coreos.etcd2 (did you mean 'election_timeout'?)" },

	/* values of the wrong kind */
	{ H "- hostname: m1\n", "2:1: a cloud-config must be a map, not a list" },
	{ H "hostname: [m1]\n", "2:11: 'hostname' must be a string, not a list" },
	{ H "coreos: []\n", "2:9: 'coreos' must be a map, not a list" },
	{ H "coreos:\n  units:\n    name: a.service\n", "4:5: 'coreos.units' must be a list, not a map" },
	{ H "ssh_authorized_keys: ssh-rsa AAAA\n", "2:22: 'ssh_authorized_keys' must be a list, not a string" },
	{ H "ssh_authorized_keys:\n  - [ssh-rsa AAAA]\n", "3:5: 'ssh_authorized_keys[0]' must be a string, not a list" },
	{ H "write_files:\n  - /etc/x\n", "3:5: 'write_files[0]' must be a map, not a string" },
	{ UNIT "      content: { a: b }\n", "5:16: 'coreos.units[0].content' must be a string, not a map" },
	{ UNIT "      drop_ins: { name: x.conf }\n", "5:17: 'coreos.units[0].drop_ins' must be a list, not a map" },
	{ H "users:\n  - name: core\n    groups: wheel\n", "4:13: 'users[0].groups' must be a list, not a string" },

	/* booleans, as yaml.v3 reads them into a Go bool */
	{ UNIT "      enable: maybe\n", "5:15: 'coreos.units[0].enable' must be true or false, not 'maybe'" },
	{ UNIT "      runtime: \"true\"\n", "5:16: 'coreos.units[0].runtime' must be true or false, not the string 'true'" },
	{ UNIT "      mask: 1\n", "5:13: 'coreos.units[0].mask' must be true or false, not '1'" },
	{ H "users:\n  - name: svc\n    system: enabled\n", "4:13: 'users[0].system' must be true or false, not 'enabled'" },

	/* numbers */
	{ H "coreos:\n  fleet:\n    verbosity: \"2\"\n    etcd_request_timeout: 1.5\n    token_limit: 0x10\n",
	  "3:3: warning: deprecated key 'fleet' in coreos (Flatcar does not ship fleet)\n"
	  "4:16: 'coreos.fleet.verbosity' must be an integer, not the string '2'" },
	{ H "coreos:\n  etcd:\n    cluster_remove_delay: soon\n    max_wals: .inf\n",
	  "3:3: warning: deprecated key 'etcd' in coreos (Flatcar does not ship the etcd it configures)\n"
	  "4:27: 'coreos.etcd.cluster_remove_delay' must be a number, not 'soon'\n"
	  "5:15: 'coreos.etcd.max_wals' must be an integer, not '.inf'" },

	/* choices from the valid: patterns */
	{ UNIT "      command: strat\n", "5:16: invalid command 'strat' in coreos.units[0] (did you mean 'start'?)" },
	{ UNIT "      command: enable\n",
	  "5:16: invalid command 'enable' in coreos.units[0] (expected start, stop, restart, reload, try-restart, "
	  "reload-or-restart or reload-or-try-restart)" },
	{ UNIT "      command: Start\n", "5:16: invalid command 'Start' in coreos.units[0] (did you mean 'start'?)" },
	{ FILE_ "    encoding: base-64\n    content: aGVsbG8K\n", "4:15: invalid encoding 'base-64' in write_files[0] (did you mean 'base64'?)" },
	{ FILE_ "    encoding: zstd\n", "4:15: invalid encoding 'zstd' in write_files[0] "
	  "(expected base64, b64, gz, gzip, gz+base64, gzip+base64, gz+b64 or gzip+b64)" },
	{ H "coreos:\n  update:\n    reboot_strategy: best-effort\n",
	  "4:22: invalid reboot_strategy 'best-effort' in coreos.update (expected etcd-lock, reboot or off)" },
	{ H "manage_etc_hosts: true\n", "2:19: invalid manage_etc_hosts 'true' in cloud-config (expected localhost)" },
	{ H "coreos:\n  etcd2:\n    proxy: readonl\n",
	  "3:3: warning: deprecated key 'etcd2' in coreos (Flatcar does not ship the etcd2 it configures)\n"
	  "4:12: invalid proxy 'readonl' in coreos.etcd2 (did you mean 'readonly'?)" },
	{ H "coreos:\n  locksmith:\n    window_start: 24:00\n    window_length: 1 hour\n",
	  "4:19: invalid window_start '24:00' in coreos.locksmith (expected a time such as 'thu 04:00' or '04:00')\n"
	  "5:20: invalid window_length '1 hour' in coreos.locksmith (expected a duration such as '1h30m')" },
	{ H "coreos:\n  locksmith:\n    window_start: thursday 04:00\n    window_length: 90\n",
	  "4:19: invalid window_start 'thursday 04:00' in coreos.locksmith (expected a time such as 'thu 04:00' or '04:00')\n"
	  "5:20: invalid window_length '90' in coreos.locksmith (expected a duration such as '1h30m')" },

	/* units and drop-ins */
	{ H "coreos:\n  units:\n    - command: start\n", "4:7: missing required key 'name' in coreos.units[0]" },
	{ H "coreos:\n  units:\n    -\n    - name: b.service\n", "4:6: missing required key 'name' in coreos.units[0]" },
	{ H "coreos:\n  units:\n    - name: kubelet\n",
	  "4:13: unit name 'kubelet' in coreos.units[0] does not end in a unit type such as '.service'" },
	{ H "coreos:\n  units:\n    - name: kubelet.servce\n",
	  "4:13: unit name 'kubelet.servce' in coreos.units[0] does not end in a unit type (did you mean 'kubelet.service'?)" },
	{ H "coreos:\n  units:\n    - name: .service\n",
	  "4:13: invalid unit name '.service' in coreos.units[0] (a name before '.service')" },
	{ H "coreos:\n  units:\n    - name: ../etc/a.service\n",
	  "4:13: invalid unit name '../etc/a.service' in coreos.units[0] (a file name, without '/')" },
	{ UNIT "      drop_ins:\n        - name: 10-a\n          content: x\n",
	  "6:17: drop-in name '10-a' in coreos.units[0].drop_ins[0] does not end in '.conf' (systemd ignores it)" },
	{ UNIT "      drop_ins:\n        - content: x\n", "6:11: missing required key 'name' in coreos.units[0].drop_ins[0]" },
	{ UNIT "      drop_ins:\n        - name: a/b.conf\n",
	  "6:17: invalid drop-in name 'a/b.conf' in coreos.units[0].drop_ins[0] (a file name, without '/')" },

	/* files */
	{ H "write_files:\n  - content: x\n", "3:5: missing required key 'path' in write_files[0]" },
	{ H "write_files:\n  - path: etc/hosts\n", "3:11: path 'etc/hosts' in write_files[0] is not absolute" },
	{ H "write_files:\n  - path: /usr/local/bin/x\n", "3:11: path '/usr/local/bin/x' in write_files[0] is on the read-only /usr" },
	{ FILE_ "    permissions: 0o644\n", "4:18: invalid permissions '0o644' in write_files[0] (expected an octal string such as '0644')" },
	{ FILE_ "    permissions: \"0888\"\n", "4:18: invalid permissions '0888' in write_files[0] (expected an octal string such as '0644')" },
	{ FILE_ "    permissions: 64\n", "4:18: invalid permissions '64' in write_files[0] (expected an octal string such as '0644')" },
	{ FILE_ "    permissions: 420\n", "4:18: permissions '420' in write_files[0] are read as octal, not decimal (did you mean '0644'?)" },
	{ FILE_ "    permissions: 493\n", "4:18: permissions '493' in write_files[0] are read as octal, not decimal (did you mean '0755'?)" },
	{ FILE_ "    encoding: b64\n    content: not base64!\n", "5:14: content in write_files[0] is not valid base64 (encoding 'b64')" },
	{ FILE_ "    encoding: base64\n    content: aGVsbG8\n", "5:14: content in write_files[0] is not valid base64 (encoding 'base64')" },

	/* users */
	{ H "users:\n  - passwd: x\n", "3:5: missing required key 'name' in users[0]" },
	{ H "users:\n  - name: ops\n    coreos_ssh_import_github: ops\n",
	  "4:5: warning: deprecated key 'coreos_ssh_import_github' in users[0] (fetches keys from the network at every boot, which often fails)" },

	/* every problem of a document in one run, in document order */
	{ H "hostname: m1\n"
	  "coreos:\n"
	  "  units:\n"
	  "    - name: flanneld.service\n"
	  "      command: start\n"
	  "      drop-ins:\n"
	  "        - name: 40-x.conf\n"
	  "    - name: docker\n"
	  "      enable: sure\n"
	  "  update:\n"
	  "    reboot-strategy: off\n"
	  "write_files:\n"
	  "  - path: /etc/a\n"
	  "    permissions: 420\n"
	  "    ownr: root\n",
	  "7:7: unknown key 'drop-ins' in coreos.units[0] (did you mean 'drop_ins'?)\n"
	  "9:13: unit name 'docker' in coreos.units[1] does not end in a unit type such as '.service'\n"
	  "10:15: 'coreos.units[1].enable' must be true or false, not 'sure'\n"
	  "12:5: unknown key 'reboot-strategy' in coreos.update (did you mean 'reboot_strategy'?)\n"
	  "15:18: permissions '420' in write_files[0] are read as octal, not decimal (did you mean '0644'?)\n"
	  "16:5: unknown key 'ownr' in write_files[0] (did you mean 'owner'?)" },
};

/* Every diagnostic as "L:C: message", one per line. */
static char *format_diags(const struct diags *d) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%d:%d: %s%s", i ? "\n" : "", d->v[i].line, d->v[i].col,
			   d->v[i].level == DIAG_WARNING ? "warning: " : "", d->v[i].msg);
	return buf_steal(&b, NULL);
}

static void test_cases(void) {
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct diags d = DIAGS_INIT;
		struct value *doc = NULL;
		int r = yaml_parse("cc.yml", cases[i].yaml, strlen(cases[i].yaml), &doc, &d);
		CHECK_INTEQ(r, 0);
		if (r == 0)
			r = cloudconfig_check(doc, &d);
		char *got = format_diags(&d);
		if (!streq(got, cases[i].want))
			fprintf(stderr, "case %zu:\n%s\n", i, cases[i].yaml);
		CHECK_STREQ(got, cases[i].want);
		/* Warnings alone do not fail a config. */
		CHECK_INTEQ(r, d.n_errors ? -EINVAL : 0);
		for (size_t k = 0; k < d.n; k++)
			CHECK_STREQ(d.v[k].file, "cc.yml");
		free(got);
		value_free(doc);
		diags_release(&d);
	}
}

/* What DL Workspace's nodes ran, in the form coreos-cloudinit reads. */
static void test_full_config(void) {
	static const char yaml[] =
		"#cloud-config\n"
		"hostname: \"dlws-master\"\n"
		"ssh_authorized_keys:\n"
		"  - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZk operator@lab\"\n"
		"users:\n"
		"  - name: core\n"
		"    ssh_authorized_keys:\n"
		"      - ssh-rsa AAAAB3 core@lab\n"
		"    groups: [docker, sudo]\n"
		"  - name: ops\n"
		"    passwd: $6$rounds=4096$abc$def\n"
		"    gecos: Operator\n"
		"    homedir: /home/ops\n"
		"    shell: /bin/bash\n"
		"    primary_group: ops\n"
		"    no_create_home: false\n"
		"    no_user_group: no\n"
		"    system: false\n"
		"write_files:\n"
		"  - path: /etc/hosts\n"
		"    permissions: \"0644\"\n"
		"    owner: root:root\n"
		"    content: |\n"
		"      127.0.0.1 localhost\n"
		"      192.168.255.10 dlws-master\n"
		"  - path: /etc/kubernetes/ssl/ca.pem\n"
		"    encoding: base64\n"
		"    permissions: 0600\n"
		"    content: LS0tLS1CRUdJTi0tLS0tCkFBQQotLS0tLUVORC0tLS0tCg==\n"
		"coreos:\n"
		"  update:\n"
		"    reboot_strategy: \"off\"\n"
		"    group: stable\n"
		"    server: https://public.update.flatcar-linux.net/v1/update/\n"
		"  locksmith:\n"
		"    window_start: Sun 03:00\n"
		"    window_length: 2h\n"
		"  flannel:\n"
		"    etcd_endpoints: https://192.168.255.11:2379\n"
		"    etcd_cafile: /etc/kubernetes/ssl/ca.pem\n"
		"  units:\n"
		"    - name: flanneld.service\n"
		"      command: start\n"
		"      drop_ins:\n"
		"        - name: 40-dlws-options.conf\n"
		"          content: |\n"
		"            [Service]\n"
		"            ExecStartPre=/usr/bin/ln -sf /etc/flannel/options.env /run/flannel/options.env\n"
		"    - name: docker.service\n"
		"      command: start\n"
		"      drop_ins:\n"
		"        - name: 40-flannel.conf\n"
		"          content: |\n"
		"            [Unit]\n"
		"            Requires=flanneld.service\n"
		"    - name: kubelet.service\n"
		"      command: start\n"
		"      enable: true\n"
		"      content: |\n"
		"        [Unit]\n"
		"        Description=Kubernetes kubelet\n"
		"        [Service]\n"
		"        ExecStart=/opt/bin/kubelet $KUBELET_OPTS\n"
		"        [Install]\n"
		"        WantedBy=multi-user.target\n"
		"    - name: update-engine.service\n"
		"      mask: true\n"
		"    - name: 00-eth0.network\n"
		"      runtime: true\n"
		"      content: |\n"
		"        [Match]\n"
		"        Name=eth0\n";
	struct diags d = DIAGS_INIT;
	struct value *doc = NULL;
	CHECK_INTEQ(yaml_parse("full.yml", yaml, strlen(yaml), &doc, &d), 0);
	CHECK_INTEQ(cloudconfig_check(doc, &d), 0);
	char *got = format_diags(&d);
	CHECK_STREQ(got, "");
	free(got);
	value_free(doc);
	diags_release(&d);
}

static void test_header(void) {
	static const struct { const char *text; bool want; } header_cases[] = {
		{ "#cloud-config\n", true },
		{ "#cloud-config", true },
		{ "#cloud-config \t\r\nhostname: x\n", true },
		{ "#cloud-configx\n", false },
		{ "# cloud-config\n", false },
		{ " #cloud-config\n", false },
		{ "#!/bin/sh\n", false },
		{ "", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(header_cases); i++) {
		if (cloudconfig_is_header(header_cases[i].text, strlen(header_cases[i].text)) != header_cases[i].want)
			fprintf(stderr, "header case '%s'\n", header_cases[i].text);
		CHECK_INTEQ(cloudconfig_is_header(header_cases[i].text, strlen(header_cases[i].text)), header_cases[i].want);
	}
	/* The length is honoured: a NUL inside the first line is not a blank. */
	CHECK(!cloudconfig_is_header("#cloud-config\0x\n", 16));
	CHECK(cloudconfig_is_header("#cloud-config\nzzz", 13));
}

/* As build.c checks a rendered config: render with the line map, parse,
 * check, and report at the template's lines. */
static char *render_and_check(const char *tpl, const struct value *ctx, int *ret) {
	struct buf out = BUF_INIT;
	struct diags d = DIAGS_INIT, cd = DIAGS_INIT;
	struct template_map *map = NULL;
	struct value *doc = NULL;
	int r = template_render_map("templates/cloud-config.yml", tpl, strlen(tpl), ctx, &out, &map, &d);
	CHECK_INTEQ(r, 0);
	if (r == 0)
		r = yaml_parse("rendered", out.data, out.len, &doc, &d);
	CHECK_INTEQ(r, 0);
	if (r == 0) {
		r = cloudconfig_check(doc, &cd);
		template_map_diags(map, &cd, &d);
	}
	for (size_t i = 0; i < d.n; i++)
		CHECK_STREQ(d.v[i].file, "templates/cloud-config.yml");
	char *got = format_diags(&d);
	*ret = r;
	value_free(doc);
	template_map_free(map);
	buf_release(&out);
	diags_release(&cd);
	diags_release(&d);
	return got;
}

static void test_template_lines(void) {
	static const char ctx_yaml[] =
		"role: worker\n"
		"units: [flanneld.service, docker.service]\n"
		"unit_body: \"[Unit]\\nAfter=x.service\\n\"\n"
		"mode: \"420\"\n";
	struct diags d = DIAGS_INIT;
	struct value *ctx = NULL;
	CHECK_INTEQ(yaml_parse("ctx.yml", ctx_yaml, strlen(ctx_yaml), &ctx, &d), 0);
	diags_release(&d);

	/* Block tags vanish from the output, so rendered line 5 is template
	 * line 9: the error must say 9. */
	static const char tpl[] =
		"#cloud-config\n"                           /* 1 */
		"{{# the units every worker runs #}}\n"     /* 2 */
		"coreos:\n"                                 /* 3 */
		"  units:\n"                                /* 4 */
		"{{ if role == \"worker\" }}\n"             /* 5 */
		"{{ each u in units }}\n"                   /* 6 */
		"    - name: {{ u }}\n"                     /* 7 */
		"      command: start\n"                    /* 8 */
		"      drop-ins:\n"                         /* 9 */
		"        - name: 40-x.conf\n"               /* 10 */
		"          content: |\n"                    /* 11 */
		"            {{ unit_body | indent 12 }}\n" /* 12 */
		"{{ end }}\n"                               /* 13 */
		"{{ end }}\n";                              /* 14 */
	int r;
	char *got = render_and_check(tpl, ctx, &r);
	CHECK_INTEQ(r, -EINVAL);
	/* Once per item of the loop, both at the template's line. */
	CHECK_STREQ(got, "9:7: unknown key 'drop-ins' in coreos.units[0] (did you mean 'drop_ins'?)\n"
			 "9:7: unknown key 'drop-ins' in coreos.units[1] (did you mean 'drop_ins'?)");
	free(got);

	/* A value's finding is reported at the tag that inserted it. */
	static const char values[] =
		"#cloud-config\n"
		"write_files:\n"
		"  - path: /etc/a\n"
		"    permissions: {{ mode }}\n"
		"coreos:\n"
		"  units:\n"
		"    - name: {{ \"kubelet\" }}\n";
	got = render_and_check(values, ctx, &r);
	CHECK_INTEQ(r, -EINVAL);
	CHECK_STREQ(got, "4:18: permissions '420' in write_files[0] are read as octal, not decimal (did you mean '0644'?)\n"
			 "7:13: unit name 'kubelet' in coreos.units[0] does not end in a unit type such as '.service'");
	free(got);

	/* The shipped template's shape, fixed, passes. */
	static const char good[] =
		"#cloud-config\n"
		"coreos:\n"
		"  units:\n"
		"{{ each u in units }}\n"
		"    - name: {{ u }}\n"
		"      drop_ins:\n"
		"        - name: 40-x.conf\n"
		"          content: |\n"
		"            {{ unit_body | indent 12 }}\n"
		"{{ end }}\n";
	got = render_and_check(good, ctx, &r);
	CHECK_INTEQ(r, 0);
	CHECK_STREQ(got, "");
	free(got);
	value_free(ctx);
}

int main(void) {
	test_cases();
	test_full_config();
	test_header();
	test_template_lines();
	return check_summary("test_cloudconfig");
}
