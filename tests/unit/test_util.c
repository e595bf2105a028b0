/* The small helpers everything else leans on: bounded buffers, did-you-mean,
 * destination paths, the value tree, and the YAML loader's refusals. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "hash.h"
#include "util.h"
#include "value.h"
#include "yamldoc.h"

/* Every diagnostic as "L:C: message", one per line. */
static char *format_diags(const struct diags *d) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%d:%d: %s", i ? "\n" : "", d->v[i].line, d->v[i].col, d->v[i].msg);
	return buf_steal(&b, NULL);
}

static struct value *parse_ok(const char *text) {
	struct diags d = DIAGS_INIT;
	struct value *v = NULL;
	int r = yaml_parse("t.yaml", text, strlen(text), &v, &d);
	CHECK_INTEQ(r, 0);
	if (r < 0) {
		diags_print(&d, stderr);
		exit(1);
	}
	diags_release(&d);
	return v;
}

static const char *text_at(const struct value *root, const char *path) {
	const struct value *v = value_lookup(root, path);
	return v && v->kind == VALUE_SCALAR ? v->text : NULL;
}

/* A full buffer refuses what does not fit and keeps what it had. */
static void test_buf_limit(void) {
	struct buf b = { .limit = 8 };
	CHECK_INTEQ(buf_puts(&b, "12345"), 0);
	CHECK_INTEQ(buf_puts(&b, "6789"), -EFBIG);
	CHECK_INTEQ(b.len, 5);
	CHECK_STREQ(b.data, "12345");
	CHECK_INTEQ(buf_printf(&b, "%d", 6789), -EFBIG);
	CHECK_STREQ(b.data, "12345");
	CHECK_INTEQ(buf_puts(&b, "678"), 0);
	CHECK_STREQ(b.data, "12345678");
	CHECK_INTEQ(buf_putc(&b, 'x'), -EFBIG);
	CHECK_INTEQ(buf_append(&b, "", 0), 0);
	CHECK_INTEQ(buf_append(&b, "y", (size_t)-1), -EFBIG);
	CHECK_INTEQ(b.len, 8);
	CHECK_STREQ(b.data, "12345678");
	buf_reset(&b);
	CHECK_INTEQ(b.len, 0);
	CHECK_STREQ(b.data, "");
	CHECK_INTEQ(buf_puts(&b, "abcdefgh"), 0);
	size_t len = 0;
	char *s = buf_steal(&b, &len);
	CHECK_STREQ(s, "abcdefgh");
	CHECK_INTEQ(len, 8);
	CHECK(b.data == NULL && b.len == 0);
	free(s);

	/* An untouched buffer still hands out a string. */
	struct buf empty = BUF_INIT;
	s = buf_steal(&empty, &len);
	CHECK_STREQ(s, "");
	CHECK_INTEQ(len, 0);
	free(s);
	buf_release(&b);
}

static const struct { const char *a, *b; size_t want; } distance_cases[] = {
	{ "", "", 0 },
	{ "same", "same", 0 },
	{ "abc", "", 3 },
	{ "", "abc", 3 },
	{ "kitten", "sitting", 3 },
	{ "flaw", "lawn", 2 },
	{ "bootloadr", "bootloader", 1 },
	{ "paht", "path", 2 },
	{ "kernle", "kernel", 2 },
};

static const char *const recipe_keys[] = { "recipe", "name", "role", "cluster", "base", "pki", "overlays", "outputs" };

static const struct { const char *word, *want; } match_cases[] = {
	{ "nmae", "name" },
	{ "rol", "role" },
	{ "overlay", "overlays" },
	{ "clustr", "cluster" },
	{ "outptus", "outputs" },
	{ "name", "name" },
	/* too far from everything: no suggestion rather than a silly one */
	{ "frobnicate", NULL },
	{ "xyz", NULL },
	{ "", NULL },
};

static void test_did_you_mean(void) {
	for (size_t i = 0; i < ARRAY_SIZE(distance_cases); i++) {
		CHECK_INTEQ(edit_distance(distance_cases[i].a, distance_cases[i].b), distance_cases[i].want);
		CHECK_INTEQ(edit_distance(distance_cases[i].b, distance_cases[i].a), distance_cases[i].want);
	}
	for (size_t i = 0; i < ARRAY_SIZE(match_cases); i++) {
		const char *got = closest_match(match_cases[i].word, recipe_keys, ARRAY_SIZE(recipe_keys));
		if (match_cases[i].want)
			CHECK_STREQ(got, match_cases[i].want);
		else
			CHECK(got == NULL);
	}
	/* Ties go to the first candidate, so suggestions are stable. */
	static const char *const tie[] = { "ab", "ba" };
	CHECK_STREQ(closest_match("aa", tie, 2), "ab");
	CHECK(closest_match("x", NULL, 0) == NULL);
}

static const struct { const char *in, *want; } dest_cases[] = {
	{ "/opt/bin/kubelet", "opt/bin/kubelet" },
	{ "/opt//bin/./x", "opt/bin/x" },
	{ "opt/bin/x/", "opt/bin/x" },
	{ "///etc", "etc" },
	{ "./x", "x" },
	{ "/..a/b..", "..a/b.." },
	{ "/a/.../b", "a/.../b" },
	/* '..' is refused outright, even where it would stay inside */
	{ "/a/../b", NULL },
	{ "/..", NULL },
	{ "/opt/../../etc/passwd", NULL },
	{ "..", NULL },
	{ "/", NULL },
	{ "/./.", NULL },
	{ "", NULL },
};

static const struct { const char *base, *rel, *want; } relative_cases[] = {
	{ "recipes/master.recipe", "../keys", "recipes/../keys" },
	{ "recipes/master.recipe", "/srv/keys", "/srv/keys" },
	{ "master.recipe", "cluster.yaml", "cluster.yaml" },
	{ "/master.recipe", "cluster.yaml", "/cluster.yaml" },
	{ "/a/b/c.recipe", "d/e", "/a/b/d/e" },
	{ "a/b/c.recipe", "", "a/b/" },
};

static void test_paths(void) {
	for (size_t i = 0; i < ARRAY_SIZE(dest_cases); i++) {
		char *got = path_normalize_dest(dest_cases[i].in);
		if (dest_cases[i].want)
			CHECK_STREQ(got, dest_cases[i].want);
		else if (got)
			CHECK_STREQ(got, "(NULL)");
		free(got);
	}
	for (size_t i = 0; i < ARRAY_SIZE(relative_cases); i++) {
		char *got = path_relative_to(relative_cases[i].base, relative_cases[i].rel);
		CHECK_STREQ(got, relative_cases[i].want);
		free(got);
	}
	char *j = path_join("a/", "/b");
	CHECK_STREQ(j, "a/b");
	free(j);
	j = path_join("a", "b/c");
	CHECK_STREQ(j, "a/b/c");
	free(j);
}

static const char lookup_doc[] =
	"name: m1\n"
	"nodes:\n"
	"  - { ip: 10.0.0.1 }\n"
	"  - { ip: 10.0.0.2, tags: [gpu, big] }\n"
	"map: { a: { b: c } }\n"
	"'dotted.key': x\n";

static const struct { const char *path, *want; } lookup_cases[] = {
	{ "name", "m1" },
	{ "nodes.0.ip", "10.0.0.1" },
	{ "nodes.1.ip", "10.0.0.2" },
	{ "nodes.1.tags.1", "big" },
	{ "map.a.b", "c" },
	{ "nodes.2.ip", NULL },
	{ "nodes.-1.ip", NULL },
	{ "nodes.x", NULL },
	{ "nodes.", NULL },
	{ "nodes.0.ip.x", NULL },
	{ "name.0", NULL },
	{ "map.a.b.c", NULL },
	{ "nope", NULL },
	{ "", NULL },
	/* a dot always separates: a key with a dot in it is unreachable */
	{ "dotted.key", NULL },
};

static void test_lookup(void) {
	struct value *doc = parse_ok(lookup_doc);
	for (size_t i = 0; i < ARRAY_SIZE(lookup_cases); i++) {
		const struct value *v = value_lookup(doc, lookup_cases[i].path);
		if (lookup_cases[i].want) {
			CHECK_STREQ(text_at(doc, lookup_cases[i].path), lookup_cases[i].want);
		} else if (v) {
			fprintf(stderr, "lookup '%s' should fail\n", lookup_cases[i].path);
			CHECK(v == NULL);
		}
	}
	const struct value *nodes = value_lookup(doc, "nodes");
	CHECK(nodes && nodes->kind == VALUE_LIST && nodes->n == 2);
	/* Locations are 1-based and point at the value. */
	const struct value *ip = value_lookup(doc, "nodes.1.ip");
	CHECK(ip && ip->loc.line == 4 && ip->loc.col == 11);
	value_free(doc);
}

static void test_set_path(void) {
	struct value *root = parse_ok("name: m1\nlist: [a]\n");
	CHECK_INTEQ(value_set_path(root, "a.b.c", value_new_scalar("x", NULL)), 0);
	CHECK_INTEQ(value_set_path(root, "a.b.d", value_new_scalar("y", NULL)), 0);
	CHECK_STREQ(text_at(root, "a.b.c"), "x");
	CHECK_STREQ(text_at(root, "a.b.d"), "y");
	/* Replacing keeps one entry per key. */
	CHECK_INTEQ(value_set_path(root, "name", value_new_scalar("m2", NULL)), 0);
	CHECK_STREQ(text_at(root, "name"), "m2");
	CHECK_INTEQ(root->n, 3);
	CHECK_INTEQ(value_set_path(root, "a.b", value_new_scalar("flat", NULL)), 0);
	CHECK_STREQ(text_at(root, "a.b"), "flat");
	CHECK(value_lookup(root, "a.b.c") == NULL);

	/* Refusals free the item they were given (ASan checks that). */
	CHECK_INTEQ(value_set_path(root, "name.x", value_new_scalar("z", NULL)), -ENOTDIR);
	CHECK_INTEQ(value_set_path(root, "list.0", value_new_scalar("z", NULL)), -ENOTDIR);
	CHECK_INTEQ(value_set_path(root, "", value_new_scalar("z", NULL)), -EINVAL);
	CHECK_INTEQ(value_set_path(root, ".a", value_new_scalar("z", NULL)), -EINVAL);
	CHECK_INTEQ(value_set_path(root, "a.", value_new_scalar("z", NULL)), -EINVAL);
	CHECK_INTEQ(value_set_path(root, "q..r", value_new_scalar("z", NULL)), -EINVAL);
	CHECK_STREQ(text_at(root, "name"), "m2");
	CHECK_STREQ(text_at(root, "list.0"), "a");
	value_free(root);
}

/* value `v: <yaml>`: truthy for templates, and as a bool (-1: not a bool). */
static const struct { const char *yaml; bool truthy; int as_bool; } truth_cases[] = {
	{ "true", true, 1 },
	{ "True", true, 1 },
	{ "yes", true, 1 },
	{ "ON", true, 1 },
	{ "false", false, 0 },
	{ "FALSE", false, 0 },
	{ "no", false, 0 },
	{ "off", false, 0 },
	{ "0", false, -1 },
	{ "00", false, -1 },
	{ "1", true, -1 },
	{ "-3", true, -1 },
	{ "x", true, -1 },
	{ "tRue", true, -1 },
	{ "''", false, -1 },
	{ "~", false, -1 },
	{ "null", false, -1 },
	{ "", false, -1 },
	/* quoted scalars are strings, whatever they spell */
	{ "'false'", true, -1 },
	{ "\"no\"", true, -1 },
	{ "'0'", true, -1 },
	{ "[]", false, -1 },
	{ "[a]", true, -1 },
	{ "{}", false, -1 },
	{ "{ a: 0 }", true, -1 },
};

static void test_truthy(void) {
	for (size_t i = 0; i < ARRAY_SIZE(truth_cases); i++) {
		char *text = xasprintf("v: %s\n", truth_cases[i].yaml);
		struct value *doc = parse_ok(text);
		const struct value *v = value_map_get(doc, "v");
		bool b = false;
		int as_bool = value_as_bool(v, &b) ? b : -1;
		if (value_truthy(v) != truth_cases[i].truthy || as_bool != truth_cases[i].as_bool)
			fprintf(stderr, "truth case '%s'\n", truth_cases[i].yaml);
		CHECK_INTEQ(value_truthy(v), truth_cases[i].truthy);
		CHECK_INTEQ(as_bool, truth_cases[i].as_bool);
		value_free(doc);
		free(text);
	}
	CHECK(!value_truthy(NULL));
}

static const struct { const char *in, *want; } quote_cases[] = {
	{ "", "\"\"" },
	{ "plain", "\"plain\"" },
	{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
	{ "C:\\dir", "\"C:\\\\dir\"" },
	{ "a\nb\tc\rd", "\"a\\nb\\tc\\rd\"" },
	{ "bell\a del\x7f esc\x1b", "\"bell\\x07 del\\x7f esc\\x1b\"" },
	{ "k: v # not a comment", "\"k: v # not a comment\"" },
	{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
	/* Read raw, YAML folds these like line breaks or refuses them (found
	 * by fuzz_yaml): NEL, LINE and PARAGRAPH SEPARATOR, a C1 control, BOM. */
	{ "a\xc2\x85" "b", "\"a\\u0085b\"" },
	{ "a\xe2\x80\xa8" "b\xe2\x80\xa9", "\"a\\u2028b\\u2029\"" },
	{ "\xc2\x9b" "x\xef\xbb\xbf", "\"\\u009bx\\ufeff\"" },
};

static void test_yaml_quote(void) {
	for (size_t i = 0; i < ARRAY_SIZE(quote_cases); i++) {
		char *q = yaml_quote(quote_cases[i].in);
		CHECK_STREQ(q, quote_cases[i].want);
		/* The point of quoting: YAML reads back exactly the input. */
		char *doc_text = xasprintf("v: %s\n", q);
		struct value *doc = parse_ok(doc_text);
		CHECK_STREQ(text_at(doc, "v"), quote_cases[i].in);
		CHECK(!value_map_get(doc, "v")->plain);
		value_free(doc);
		free(doc_text);
		free(q);
	}
}

static const struct { const char *yaml, *want; } yaml_error_cases[] = {
	{ "a: &x 1\n", "1:4: anchors are not supported" },
	{ "a: 1\nb: *x\n", "2:4: aliases are not supported" },
	{ "a: &x 1\nb: *x\n", "1:4: anchors are not supported\n2:4: aliases are not supported" },
	{ "- &x a\n- *x\n", "1:3: anchors are not supported\n2:3: aliases are not supported" },
	{ "a: &x { b: 1 }\n", "1:4: anchors are not supported" },
	{ "a: &x [1]\n", "1:4: anchors are not supported" },
	{ "&x a: 1\n", "1:1: anchors are not supported" },
	{ "a: &x { b: 1 }\nc: *x\n", "1:4: anchors are not supported\n2:4: aliases are not supported" },
	{ "a: 1\nb: 2\na: 3\n", "3:1: duplicate key 'a' (first defined at 1:1)" },
	{ "a: 1\na: 2\na: 3\n", "2:1: duplicate key 'a' (first defined at 1:1)\n3:1: duplicate key 'a' (first defined at 1:1)" },
	{ "m:\n  x: 1\n  y: 2\n  x: 3\n", "4:3: duplicate key 'x' (first defined at 2:3)" },
	{ "- { k: 1, k: 2 }\n", "1:11: duplicate key 'k' (first defined at 1:5)" },
	{ "'a': 1\n\"a\": 2\n", "2:1: duplicate key 'a' (first defined at 1:1)" },
	{ "a: 1\n---\nb: 2\n", "2:1: more than one YAML document" },
	{ "--- a\n--- b\n", "2:1: more than one YAML document" },
	{ "? [a]\n: 1\n", "1:3: map keys must be plain strings" },
	{ "a: b: c\n", "1:5: mapping values are not allowed in this context" },
	{ "a: [1, 2\n", "2:1: while parsing a flow sequence did not find expected ',' or ']'" },
	{ "a: 'unterminated\n", "2:1: while scanning a quoted scalar found unexpected end of stream" },
	{ "a:\n\tb: 1\n", "2:1: while scanning for the next token found character that cannot start any token" },
	{ "a: 1\n b: 2\n", "2:3: mapping values are not allowed in this context" },
	{ "- a\nb: c\n", "2:1: while parsing a block collection did not find expected '-' indicator" },
	{ "a: \"\\q\"\n", "1:5: while parsing a quoted scalar found unknown escape character" },
};

static void test_yaml_errors(void) {
	for (size_t i = 0; i < ARRAY_SIZE(yaml_error_cases); i++) {
		struct diags d = DIAGS_INIT;
		struct value *v = NULL;
		int r = yaml_parse("t.yaml", yaml_error_cases[i].yaml, strlen(yaml_error_cases[i].yaml), &v, &d);
		char *got = format_diags(&d);
		if (r != -EINVAL)
			fprintf(stderr, "yaml error case %zu\n", i);
		CHECK_INTEQ(r, -EINVAL);
		CHECK(v == NULL);
		value_free(v);
		CHECK_STREQ(got, yaml_error_cases[i].want);
		for (size_t k = 0; k < d.n; k++)
			CHECK_STREQ(d.v[k].file, "t.yaml");
		free(got);
		diags_release(&d);
	}
}

/* Nesting is bounded so that a hostile file cannot exhaust the stack. */
static void test_yaml_depth(void) {
	struct buf b = BUF_INIT;
	for (int i = 0; i < 65; i++)
		buf_putc(&b, '[');
	for (int i = 0; i < 65; i++)
		buf_putc(&b, ']');
	struct diags d = DIAGS_INIT;
	struct value *v = NULL;
	CHECK_INTEQ(yaml_parse("t.yaml", b.data, b.len, &v, &d), 0);
	value_free(v);
	v = NULL;
	buf_reset(&b);
	for (int i = 0; i < 66; i++)
		buf_putc(&b, '[');
	for (int i = 0; i < 66; i++)
		buf_putc(&b, ']');
	CHECK_INTEQ(yaml_parse("t.yaml", b.data, b.len, &v, &d), -EINVAL);
	char *got = format_diags(&d);
	CHECK_STREQ(got, "1:66: nested deeper than 64 levels");
	free(got);
	diags_release(&d);
	buf_release(&b);
}

static void test_yaml_documents(void) {
	/* Empty and null documents are empty maps, so "no keys" is the usual error. */
	static const char *const empties[] = { "", "\n\n", "# only a comment\n", "~\n", "---\n", "---\n...\n" };
	for (size_t i = 0; i < ARRAY_SIZE(empties); i++) {
		struct value *v = parse_ok(empties[i]);
		CHECK(v->kind == VALUE_MAP && v->n == 0);
		CHECK(v->loc.line == 1 && v->loc.col == 1);
		value_free(v);
	}
	struct value *v = parse_ok("just text\n");
	CHECK(v->kind == VALUE_SCALAR && v->plain);
	CHECK_STREQ(v->text, "just text");
	value_free(v);
	/* A length is honoured: the text need not end there. */
	struct diags d = DIAGS_INIT;
	v = NULL;
	CHECK_INTEQ(yaml_parse("t.yaml", "a: 1\n---\nb: 2\n", 5, &v, &d), 0);
	CHECK(v && v->n == 1);
	CHECK_STREQ(text_at(v, "a"), "1");
	value_free(v);
	diags_release(&d);
}

static void test_hash(void) {
	char hex[SHA256_HEX_LEN + 1];
	sha256_hex("abc", 3, hex);
	CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, hex);
	CHECK_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* Piece by piece, the same digest. */
	struct sha256 *h = sha256_new();
	sha256_update(h, "a", 1);
	sha256_update(h, "", 0);
	sha256_update(h, "bc", 2);
	sha256_final_hex(h, hex);
	CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_free(NULL);
	sha256_free(sha256_new());

	static const struct { const char *in; size_t len; const char *want; } b64[] = {
		{ "", 0, "" },
		{ "f", 1, "Zg==" },
		{ "fo", 2, "Zm8=" },
		{ "foo", 3, "Zm9v" },
		{ "foobar", 6, "Zm9vYmFy" },
		{ "\xff\xfe\x00", 3, "//4A" },
		{ "master-1", 8, "bWFzdGVyLTE=" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(b64); i++) {
		char *s = base64_encode(b64[i].in, b64[i].len);
		CHECK_STREQ(s, b64[i].want);
		free(s);
	}
	/* Long input: one line, no breaks (cloud-config wants it that way). */
	char big[3000];
	memset(big, 'x', sizeof(big));
	char *s = base64_encode(big, sizeof(big));
	CHECK_INTEQ(strlen(s), 4000);
	CHECK(strchr(s, '\n') == NULL);
	free(s);
}

/* Work done in a stage directory is told by the path the user knows; a
 * longer name that only starts with the stage's is left alone. */
static void test_diags_rename_dir(void) {
	struct diags d = DIAGS_INIT;
	diag_error(&d, NULL, "before: 'k.new/a.pem'");
	diag_error(&d, NULL, "cannot load 'k.new/ca-key.pem': bad, see 'k.new'");
	diag_error(&d, NULL, "'k.newer/x' and k.new/y and xk.new/z");
	diags_rename_dir(&d, 1, "k.new", "k");
	CHECK_STREQ(d.v[0].msg, "before: 'k.new/a.pem'");
	CHECK_STREQ(d.v[1].msg, "cannot load 'k/ca-key.pem': bad, see 'k'");
	CHECK_STREQ(d.v[2].msg, "'k.newer/x' and k/y and xk.new/z");
	diags_release(&d);
}

int main(void) {
	test_diags_rename_dir();
	test_buf_limit();
	test_did_you_mean();
	test_paths();
	test_lookup();
	test_set_path();
	test_truthy();
	test_yaml_quote();
	test_yaml_errors();
	test_yaml_depth();
	test_yaml_documents();
	test_hash();
	return check_summary("test_util");
}
