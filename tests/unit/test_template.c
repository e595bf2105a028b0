/* Template rendering: a table of templates that render and a table of
 * templates that fail, each with every error as "L:C: message". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "template.h"
#include "util.h"
#include "value.h"
#include "yamldoc.h"

static const char context_yaml[] =
	"name: master-1\n"
	"empty: ''\n"
	"zero: 0\n"
	"yes_flag: true\n"
	"no_flag: false\n"
	"role: master\n"
	"node: { ip: 10.0.0.1, hostname: m1 }\n"
	"nodes:\n"
	"  - { name: m1, ip: 10.0.0.1, mac: 'aa:bb' }\n"
	"  - { name: m2, ip: 10.0.0.2 }\n"
	"  - { name: m3, ip: 10.0.0.3 }\n"
	"keys: [ssh-rsa AAA one, ssh-ed25519 BBB two]\n"
	"none: []\n"
	"pem: \"-----BEGIN-----\\nAAA\\n-----END-----\\n\"\n"
	"multi: \"a\\n\\nb\"\n"
	"quote: 'say \"hi\"'\n"
	"nested: [[a, b], [c]]\n";

static const struct { const char *tpl, *want; } ok_cases[] = {
	/* names and paths */
	{ "", "" },
	{ "plain { text } with }} and {c}", "plain { text } with }} and {c}" },
	{ "hello {{ name }}!", "hello master-1!" },
	{ "{{name}}", "master-1" },
	{ "{{\n  name\n}}", "master-1" },
	{ "ip: {{ node.ip }}", "ip: 10.0.0.1" },
	{ "{{ nodes.1.ip }} {{ nodes.2.name }}", "10.0.0.2 m3" },
	{ "[{{ empty }}]", "[]" },
	{ "{{ \"{{\" }} x {{ \"}}\" }}", "{{ x }}" },
	/* filters */
	{ "{{ name | base64 }}", "bWFzdGVyLTE=" },
	{ "{{ pem | base64 }}", "LS0tLS1CRUdJTi0tLS0tCkFBQQotLS0tLUVORC0tLS0tCg==" },
	{ "key: |\n  {{ pem | indent 2 }}", "key: |\n  -----BEGIN-----\n  AAA\n  -----END-----\n" },
	{ "  {{ multi | indent 4 }}", "  a\n\n    b" },
	{ "{{ name | indent 0 }}", "master-1" },
	{ "{{ quote | yaml }}", "\"say \\\"hi\\\"\"" },
	{ "{{ multi | yaml }}", "\"a\\n\\nb\"" },
	{ "{{ keys | yaml }}", "[\"ssh-rsa AAA one\", \"ssh-ed25519 BBB two\"]" },
	{ "{{ none | yaml }}", "[]" },
	{ "{{ keys | join \", \" }}", "ssh-rsa AAA one, ssh-ed25519 BBB two" },
	{ "{{ none | join \",\" }}", "" },
	{ "{{ keys | join \"\\t\\\\\\\"\" }}", "ssh-rsa AAA one\t\\\"ssh-ed25519 BBB two" },
	{ "{{ keys | join \"}}\" }}", "ssh-rsa AAA one}}ssh-ed25519 BBB two" },
	{ "  {{ keys | join \"\\n\" | indent 2 }}", "  ssh-rsa AAA one\n  ssh-ed25519 BBB two" },
	{ "{{ name|yaml|base64 }}", "Im1hc3Rlci0xIg==" },
	/* conditions */
	{ "{{ if yes_flag }}Y{{ end }}", "Y" },
	{ "{{ if no_flag }}Y{{ else }}N{{ end }}", "N" },
	{ "{{ if zero }}Y{{ else }}N{{ end }}", "N" },
	{ "{{ if empty }}Y{{ else }}N{{ end }}", "N" },
	{ "{{ if keys }}Y{{ end }}{{ if none }}N{{ end }}", "Y" },
	{ "{{ if node }}Y{{ end }}", "Y" },
	{ "{{ if not no_flag }}Y{{ end }}{{ if not yes_flag }}N{{ end }}", "Y" },
	{ "{{ if role == \"master\" }}M{{ else }}W{{ end }}", "M" },
	{ "{{ if role != \"master\" }}W{{ else }}M{{ end }}", "M" },
	{ "{{ if not role == \"worker\" }}M{{ end }}", "M" },
	{ "{{ if zero == \"0\" }}Z{{ end }}", "Z" },
	{ "{{ if defined node.ip }}a{{ end }}{{ if defined node.mac }}b{{ else }}c{{ end }}", "ac" },
	{ "{{ if not defined x.y.z }}n{{ end }}", "n" },
	{ "{{ if defined node.mac }}{{ node.mac }}{{ end }}", "" },
	{ "{{ if yes_flag }}{{ if no_flag }}1{{ else }}2{{ end }}{{ else }}3{{ end }}", "2" },
	/* loops */
	{ "{{ each k in keys }}[{{ k }}]{{ end }}", "[ssh-rsa AAA one][ssh-ed25519 BBB two]" },
	{ "{{ each k in none }}x{{ end }}", "" },
	{ "{{ each n in nodes }}{{ loop.index }}:{{ n.name }}{{ if not loop.last }},{{ end }}{{ end }}", "0:m1,1:m2,2:m3" },
	{ "{{ each n in nodes }}{{ if loop.first }}first {{ end }}{{ n.ip }} {{ end }}", "first 10.0.0.1 10.0.0.2 10.0.0.3 " },
	{ "{{ each l in nested }}{{ each x in l }}{{ x }}{{ end }};{{ end }}", "ab;c;" },
	{ "{{ each l in nested }}{{ each x in l }}{{ loop.index }}{{ end }}{{ loop.index }} {{ end }}", "010 01 " },
	{ "{{ each n in nodes }}{{ each k in none }}{{ end }}{{ each k in keys }}{{ n.name }}{{ end }}{{ end }}", "m1m1m2m2m3m3" },
	{ "{{ each name in keys }}{{ name }};{{ end }}{{ name }}", "ssh-rsa AAA one;ssh-ed25519 BBB two;master-1" },
	{ "{{ each n in nodes }}{{ if defined n.mac }}{{ n.name }}={{ n.mac }}{{ end }}{{ end }}", "m1=aa:bb" },
	{ "{{ each x in nested.0 }}{{ x }}{{ end }}", "ab" },
	/* lines holding only a block tag vanish */
	{ "a:\n  {{ if yes_flag }}\n  b: 1\n  {{ else }}\n  b: 2\n  {{ end }}\nc: 3\n", "a:\n  b: 1\nc: 3\n" },
	{ "keys:\n{{ each k in keys }}\n  - {{ k | yaml }}\n{{ end }}\n", "keys:\n  - \"ssh-rsa AAA one\"\n  - \"ssh-ed25519 BBB two\"\n" },
	{ "a\n\t {{ if yes_flag }} \t\nb\n{{ end }}", "a\nb\n" },
	{ "a\r\n{{ if yes_flag }}\r\nb\r\n{{ end }}\r\n", "a\r\nb\r\n" },
	{ "x {{ if yes_flag }}y{{ end }}\n", "x y\n" },
	{ "{{ if yes_flag }}y\n{{ end }}z\n", "y\nz\n" },
	{ "  {{ name }}\n", "  master-1\n" },
	/* comments */
	{ "a{{# note #}}b", "ab" },
	{ "a\n  {{# a whole-line comment #}}\nb", "a\nb" },
	{ "{{# {{ undefined }} #}}ok", "ok" },
};

static const struct { const char *tpl, *want; } error_cases[] = {
	/* undefined names: reported where the name starts, never rendered empty */
	{ "x: {{ node.ipp }}", "1:7: undefined name 'node.ipp' (did you mean 'node.ip'?)" },
	{ "a\n  {{ nam }}", "2:6: undefined name 'nam' (did you mean 'name'?)" },
	{ "{{ nodez.ip }}", "1:4: undefined name 'nodez.ip' (did you mean 'node.ip'?)" },
	{ "{{ nodes.5.ip }}", "1:4: undefined name 'nodes.5.ip' ('nodes' has 3 items)" },
	{ "{{ name.x }}", "1:4: undefined name 'name.x' ('name' is a scalar)" },
	{ "{{ qqq }}\n{{ www }}", "1:4: undefined name 'qqq'\n2:4: undefined name 'www'" },
	{ "{{ loop.index }}", "1:4: undefined name 'loop.index'" },
	{ "{{ each k in keys }}{{ kk }}{{ end }}", "1:24: undefined name 'kk' (did you mean 'k'?)" },
	{ "{{ each n in nodes }}{{ n.mac }}{{ end }}", "1:25: undefined name 'n.mac'" },
	{ "{{ if nope }}a{{ end }}", "1:7: undefined name 'nope' (did you mean 'node'?)" },
	{ "{{ if qqq }}{{ www }}{{ else }}{{ vvv }}{{ end }}",
	  "1:7: undefined name 'qqq'\n1:16: undefined name 'www'\n1:35: undefined name 'vvv'" },
	{ "{{ each k in qqq }}{{ k }}{{ end }}", "1:14: undefined name 'qqq'" },
	/* values that cannot be inserted as they are */
	{ "{{ pem }}", "1:4: value of 'pem' contains a newline; use a filter such as indent or yaml" },
	{ "{{ multi }}", "1:4: value of 'multi' contains a newline; use a filter such as indent or yaml" },
	{ "{{ keys | join \"\\n\" }}", "1:4: value of 'keys' contains a newline; use a filter such as indent or yaml" },
	{ "{{ keys }}", "1:4: 'keys' is a list; use join or yaml" },
	{ "{{ node }}", "1:4: 'node' is a map; use one of its keys" },
	{ "{{ each k in name }}{{ end }}", "1:14: 'name' is a scalar; 'each' needs a list" },
	{ "{{ each k in node }}{{ end }}", "1:14: 'node' is a map; 'each' needs a list" },
	{ "{{ if keys == \"x\" }}{{ end }}", "1:7: 'keys' is a list; '==' compares text" },
	/* filters */
	{ "{{ name | bas64 }}", "1:11: unknown filter 'bas64' (did you mean 'base64'?)" },
	{ "{{ name | yaml | inden 2 }}", "1:18: unknown filter 'inden' (did you mean 'indent'?)" },
	{ "{{ name | frobnicate }}", "1:11: unknown filter 'frobnicate' (filters are base64, indent, yaml and join)" },
	{ "{{ name | indent }}", "1:11: filter 'indent' needs a number of spaces from 0 to 256" },
	{ "{{ name | indent x }}", "1:11: filter 'indent' needs a number of spaces from 0 to 256" },
	{ "{{ name | indent 999 }}", "1:11: filter 'indent' needs a number of spaces from 0 to 256" },
	{ "{{ keys | join }}", "1:11: filter 'join' needs a separator string, as in join \", \"" },
	{ "{{ name | join \",\" }}", "1:11: filter 'join' needs a list, but 'name' is a scalar" },
	{ "{{ node | yaml }}", "1:11: filter 'yaml' needs a scalar or a list of scalars, but 'node' is a map" },
	{ "{{ nodes | join \",\" }}", "1:12: filter 'join' needs a list of scalars, but item 0 of 'nodes' is a map" },
	{ "{{ nested | yaml }}", "1:13: filter 'yaml' needs a list of scalars, but item 0 of 'nested' is a list" },
	{ "{{ keys | base64 }}", "1:11: filter 'base64' needs a scalar, but 'keys' is a list" },
	{ "{{ keys | indent 2 }}", "1:11: filter 'indent' needs a scalar, but 'keys' is a list" },
	{ "{{ name | }}", "1:11: expected a filter name after '|' before '}}'" },
	{ "{{ name | yaml extra }}", "1:16: expected '|' or '}}', found 'extra'" },
	/* syntax */
	{ "ab {{ name", "1:4: unclosed '{{'" },
	{ "{{ a\n{{ b c }}", "1:1: unclosed '{{'\n2:6: expected '|' or '}}', found 'c'" },
	{ "x {{# note", "1:3: unclosed comment" },
	{ "{{ }}", "1:4: expected a name before '}}'" },
	{ "{{ a..b }}", "1:4: invalid name 'a..b'" },
	{ "{{ .a }}", "1:4: invalid name '.a'" },
	{ "{{ name ! }}", "1:9: unexpected character '!'" },
	{ "{{ name \x01 }}", "1:9: unexpected byte 0x01" },
	{ "{{ keys | join \"a\\q\" }}", "1:18: unknown escape '\\q' in string (use \\n, \\t, \\\\ or \\\")" },
	{ "{{ keys | join \"abc }}", "1:16: unterminated string" },
	{ "{{ if }}{{ end }}", "1:7: expected a condition before '}}'" },
	{ "{{ if role = \"x\" }}{{ end }}", "1:12: unexpected character '='" },
	{ "{{ if role == x }}{{ end }}", "1:15: expected a quoted string, found 'x'" },
	{ "{{ if role \"x\" }}{{ end }}", "1:12: expected '==', '!=' or '}}', found '\"x\"'" },
	{ "{{ if defined }}{{ end }}", "1:15: expected a name after 'defined' before '}}'" },
	{ "{{ each k keys }}{{ end }}", "1:11: expected 'in', found 'keys'" },
	{ "{{ each k.x in keys }}{{ end }}", "1:9: invalid loop variable 'k.x'" },
	{ "{{ each loop in keys }}{{ end }}", "1:9: invalid loop variable 'loop'" },
	{ "{{ if yes_flag }}{{ else x }}{{ end }}", "1:26: expected '}}' after 'else', found 'x'" },
	{ "{{ end now }}", "1:8: expected '}}' after 'end', found 'now'\n1:1: 'end' without 'if' or 'each'" },
	/* blocks */
	{ "line\n{{ if yes_flag }}\nx\n", "2:1: 'if' at 2:1 is never closed" },
	{ "{{ each k in keys }}\n  {{ if k }}\n{{ end }}", "1:1: 'each' at 1:1 is never closed" },
	{ "{{ else }}", "1:1: 'else' without 'if'" },
	{ "a\n {{ end }}", "2:2: 'end' without 'if' or 'each'" },
	{ "{{ if yes_flag }}{{ else }}{{ else }}{{ end }}", "1:28: second 'else' for 'if' at 1:1" },
	{ "{{ each k in keys }}{{ else }}{{ end }}", "1:21: 'else' without 'if'" },
	{ "{{ if role = }}\n{{ qqq }}\n{{ end }}{{ end }}",
	  "1:12: unexpected character '='\n3:10: 'end' without 'if' or 'each'" },
};

static struct value *context(void) {
	struct diags d = DIAGS_INIT;
	struct value *ctx = NULL;
	int r = yaml_parse("ctx.yaml", context_yaml, strlen(context_yaml), &ctx, &d);
	CHECK_INTEQ(r, 0);
	diags_release(&d);
	if (r < 0)
		exit(1);
	return ctx;
}

/* Every diagnostic as "L:C: message", one per line. */
static char *format_diags(const struct diags *d) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%d:%d: %s", i ? "\n" : "", d->v[i].line, d->v[i].col, d->v[i].msg);
	return buf_steal(&b, NULL);
}

static int render(const char *tpl, const struct value *ctx, size_t limit, char **ret_out, char **ret_diags) {
	struct buf out = { .limit = limit };
	struct diags d = DIAGS_INIT;
	int r = template_render("t.yml", tpl, strlen(tpl), ctx, &out, &d);
	for (size_t i = 0; i < d.n; i++)
		CHECK_STREQ(d.v[i].file, "t.yml");
	*ret_out = buf_steal(&out, NULL);
	*ret_diags = format_diags(&d);
	diags_release(&d);
	return r;
}

static void test_ok(const struct value *ctx) {
	for (size_t i = 0; i < ARRAY_SIZE(ok_cases); i++) {
		char *out, *diags;
		int r = render(ok_cases[i].tpl, ctx, 0, &out, &diags);
		if (r != 0)
			fprintf(stderr, "case ok[%zu] %s\n", i, ok_cases[i].tpl);
		CHECK_INTEQ(r, 0);
		CHECK_STREQ(diags, "");
		CHECK_STREQ(out, ok_cases[i].want);
		free(out);
		free(diags);
	}
}

static void test_errors(const struct value *ctx) {
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		char *out, *diags;
		int r = render(error_cases[i].tpl, ctx, 0, &out, &diags);
		if (r != -EINVAL)
			fprintf(stderr, "case error[%zu] %s\n", i, error_cases[i].tpl);
		CHECK_INTEQ(r, -EINVAL);
		CHECK_STREQ(diags, error_cases[i].want);
		free(out);
		free(diags);
	}
}

/* The output is appended: a caller can render several templates into one buffer. */
static void test_appends(const struct value *ctx) {
	struct buf out = BUF_INIT;
	struct diags d = DIAGS_INIT;
	buf_puts(&out, "#cloud-config\n");
	CHECK_INTEQ(template_render("t.yml", "host: {{ name }}\n", 17, ctx, &out, &d), 0);
	CHECK_STREQ(out.data, "#cloud-config\nhost: master-1\n");
	/* The length is honoured: the source need not be NUL-terminated there. */
	buf_reset(&out);
	CHECK_INTEQ(template_render("t.yml", "{{ name }}{{ qqq }}", 10, ctx, &out, &d), 0);
	CHECK_STREQ(out.data, "master-1");
	CHECK_INTEQ(d.n, 0);
	buf_release(&out);
	diags_release(&d);
}

static void test_limits(const struct value *ctx) {
	char *out, *diags;
	CHECK_INTEQ(render("{{ name }}{{ name }}{{ name }}", ctx, 10, &out, &diags), -EINVAL);
	CHECK_STREQ(diags, "1:11: rendered output of 't.yml' exceeds 10 bytes");
	free(out);
	free(diags);

	CHECK_INTEQ(render("{{ each n in nodes }}{{ pem | indent 200 }}{{ end }}", ctx, 300, &out, &diags), -EINVAL);
	CHECK_STREQ(diags, "1:31: rendered output of 't.yml' exceeds 300 bytes");
	free(out);
	free(diags);

	/* 32 nested blocks are fine, 33 are not. */
	struct buf tpl = BUF_INIT;
	for (int i = 0; i < 32; i++)
		buf_puts(&tpl, "{{ if yes_flag }}");
	buf_puts(&tpl, "deep");
	for (int i = 0; i < 32; i++)
		buf_puts(&tpl, "{{ end }}");
	CHECK_INTEQ(render(tpl.data, ctx, 0, &out, &diags), 0);
	CHECK_STREQ(out, "deep");
	free(out);
	free(diags);
	buf_reset(&tpl);
	for (int i = 0; i < 33; i++)
		buf_puts(&tpl, "{{ each k in keys }}");
	for (int i = 0; i < 33; i++)
		buf_puts(&tpl, "{{ end }}");
	CHECK_INTEQ(render(tpl.data, ctx, 0, &out, &diags), -EINVAL);
	CHECK_STREQ(diags, "1:641: blocks nested more than 32 deep");
	free(out);
	free(diags);
	buf_release(&tpl);
}

/* A realistic cloud-config fragment: indentation survives the block tags. */
static void test_cloud_config(const struct value *ctx) {
	static const char tpl[] =
		"#cloud-config\n"
		"hostname: {{ node.hostname | yaml }}\n"
		"ssh_authorized_keys:\n"
		"  {{ each k in keys }}\n"
		"  - {{ k | yaml }}\n"
		"  {{ end }}\n"
		"write_files:\n"
		"  {{ if role == \"master\" }}\n"
		"  - path: /etc/kubernetes/ssl/ca.pem\n"
		"    encoding: base64\n"
		"    content: {{ pem | base64 }}\n"
		"  {{ end }}\n"
		"  - path: /etc/hosts.d/cluster\n"
		"    content: |\n"
		"      {{# one line per node #}}\n"
		"      {{ each n in nodes }}\n"
		"      {{ n.ip }} {{ n.name }}\n"
		"      {{ end }}\n";
	static const char want[] =
		"#cloud-config\n"
		"hostname: \"m1\"\n"
		"ssh_authorized_keys:\n"
		"  - \"ssh-rsa AAA one\"\n"
		"  - \"ssh-ed25519 BBB two\"\n"
		"write_files:\n"
		"  - path: /etc/kubernetes/ssl/ca.pem\n"
		"    encoding: base64\n"
		"    content: LS0tLS1CRUdJTi0tLS0tCkFBQQotLS0tLUVORC0tLS0tCg==\n"
		"  - path: /etc/hosts.d/cluster\n"
		"    content: |\n"
		"      10.0.0.1 m1\n"
		"      10.0.0.2 m2\n"
		"      10.0.0.3 m3\n";
	char *out, *diags;
	CHECK_INTEQ(render(tpl, ctx, 0, &out, &diags), 0);
	CHECK_STREQ(diags, "");
	CHECK_STREQ(out, want);
	/* ... and the result is still YAML. */
	struct diags d = DIAGS_INIT;
	struct value *doc = NULL;
	CHECK_INTEQ(yaml_parse("out.yml", out, strlen(out), &doc, &d), 0);
	CHECK_STREQ(value_lookup(doc, "ssh_authorized_keys.1") ? value_lookup(doc, "ssh_authorized_keys.1")->text : NULL, "ssh-ed25519 BBB two");
	value_free(doc);
	diags_release(&d);
	free(out);
	free(diags);
}

/* Line maps: for each rendered line, the template line it came from. */
static const struct { const char *tpl, *want; } map_cases[] = {
	{ "a\nb\nc\n", "1 2 3" },
	{ "a\nb", "1 2" },
	/* lines holding only a block tag or a comment leave nothing */
	{ "a:\n  {{ if yes_flag }}\n  b: 1\n  {{ else }}\n  b: 2\n  {{ end }}\nc: 3\n", "1 3 7" },
	{ "{{ if no_flag }}\nx\n{{ else }}\ny\n{{ end }}\nz\n", "4 6" },
	{ "a\n  {{# a comment #}}\nb\n", "1 3" },
	{ "keys:\n{{ each k in keys }}\n  - {{ k | yaml }}\n{{ end }}\nend: 1\n", "1 3 3 5" },
	{ "{{ each k in none }}\nx\n{{ end }}\ny\n", "4" },
	/* a value over several lines: every line of it is the tag's */
	{ "key: |\n  {{ pem | indent 2 }}\nnext: 1\n", "1 2 2 2 2 3" },
	{ "a\n{{ multi | indent 4 }}\nb\n", "1 2 2 2 3" },
	{ "{{ name }}\n{{ name }} {{ name }}\n", "1 2" },
};

static char *map_lines(const char *tpl, const struct value *ctx) {
	struct buf out = BUF_INIT, lines = BUF_INIT;
	struct diags d = DIAGS_INIT;
	struct template_map *map = NULL;
	CHECK_INTEQ(template_render_map("t.yml", tpl, strlen(tpl), ctx, &out, &map, &d), 0);
	CHECK(map != NULL);
	size_t n = 0;
	for (size_t i = 0; i < out.len; i++)
		if (out.data[i] == '\n' || i + 1 == out.len)
			n++;
	for (size_t i = 1; i <= n; i++) {
		struct srcloc at = template_map_loc(map, (int)i, 0);
		CHECK_STREQ(at.file, "t.yml");
		buf_printf(&lines, "%s%d", i > 1 ? " " : "", at.line);
	}
	template_map_free(map);
	buf_release(&out);
	diags_release(&d);
	return buf_steal(&lines, NULL);
}

static void test_map(const struct value *ctx) {
	for (size_t i = 0; i < ARRAY_SIZE(map_cases); i++) {
		char *got = map_lines(map_cases[i].tpl, ctx);
		if (!streq(got, map_cases[i].want))
			fprintf(stderr, "map case %zu: %s\n", i, map_cases[i].tpl);
		CHECK_STREQ(got, map_cases[i].want);
		free(got);
	}

	/* Columns: literal text maps character for character, a value to its tag. */
	struct buf out = BUF_INIT;
	struct diags d = DIAGS_INIT;
	struct template_map *map = NULL;
	buf_puts(&out, "#cloud-config\n");
	static const char cols[] = "x: 1\nhello {{ name }} x\n";
	CHECK_INTEQ(template_render_map("t.yml", cols, strlen(cols), ctx, &out, &map, &d), 0);
	CHECK_STREQ(out.data, "#cloud-config\nx: 1\nhello master-1 x\n");
	/* Lines count from where this render started appending. */
	struct srcloc at = template_map_loc(map, 2, 1);
	CHECK_INTEQ(at.line, 2);
	CHECK_INTEQ(at.col, 1);
	at = template_map_loc(map, 2, 8);
	CHECK_INTEQ(at.line, 2);
	CHECK_INTEQ(at.col, 7);
	at = template_map_loc(map, 2, 16);
	CHECK_INTEQ(at.line, 2);
	CHECK_INTEQ(at.col, 18);
	/* Past the end of a line: its newline; past the last line: the end. */
	at = template_map_loc(map, 2, 99);
	CHECK_INTEQ(at.line, 2);
	CHECK_INTEQ(at.col, 19);
	at = template_map_loc(map, 1, 4);
	CHECK_INTEQ(at.line, 1);
	CHECK_INTEQ(at.col, 4);
	at = template_map_loc(map, 40, 1);
	CHECK_INTEQ(at.line, 2);
	CHECK_INTEQ(at.col, 19);
	at = template_map_loc(map, 0, 0);
	CHECK_INTEQ(at.line, 0);
	CHECK_STREQ(at.file, "t.yml");

	/* Diagnostics about the rendered text move to the template. */
	struct diags rendered = DIAGS_INIT, moved = DIAGS_INIT;
	diag_error(&rendered, &(struct srcloc){ "rendered", 2, 10 }, "bad value");
	diag_warning(&rendered, &(struct srcloc){ "rendered", 1, 1 }, "odd key");
	diag_note(&rendered, NULL, "somewhere");
	template_map_diags(map, &rendered, &moved);
	CHECK_INTEQ(moved.n, 3);
	CHECK_INTEQ(moved.n_errors, 1);
	CHECK(moved.v[0].level == DIAG_ERROR && moved.v[1].level == DIAG_WARNING && moved.v[2].level == DIAG_NOTE);
	CHECK_STREQ(moved.v[0].file, "t.yml");
	CHECK_INTEQ(moved.v[0].line, 2);
	CHECK_INTEQ(moved.v[0].col, 7);
	CHECK_STREQ(moved.v[0].msg, "bad value");
	CHECK_INTEQ(moved.v[1].line, 1);
	CHECK_INTEQ(moved.v[1].col, 1);
	CHECK_STREQ(moved.v[2].file, "t.yml");
	CHECK_INTEQ(moved.v[2].line, 0);
	diags_release(&rendered);
	diags_release(&moved);
	template_map_free(map);

	/* Nothing rendered: nowhere to point but the template. */
	map = NULL;
	buf_reset(&out);
	CHECK_INTEQ(template_render_map("t.yml", "{{ if no_flag }}x{{ end }}", 26, ctx, &out, &map, &d), 0);
	at = template_map_loc(map, 1, 1);
	CHECK_STREQ(at.file, "t.yml");
	CHECK_INTEQ(at.line, 0);
	template_map_free(map);

	/* A failed render hands back no map. */
	map = NULL;
	CHECK_INTEQ(template_render_map("t.yml", "{{ qqq }}", 9, ctx, &out, &map, &d), -EINVAL);
	CHECK(map == NULL);
	template_map_free(NULL);
	buf_release(&out);
	diags_release(&d);
}

int main(void) {
	struct value *ctx = context();
	test_ok(ctx);
	test_errors(ctx);
	test_appends(ctx);
	test_limits(ctx);
	test_cloud_config(ctx);
	test_map(ctx);
	value_free(ctx);
	return check_summary("test_template");
}
