/* YAML documents (yamldoc.c) and the value tree (value.c): what recipes,
 * cluster files, --set and the template filters go through.
 *
 * Two properties besides "no crash, no leak": a document that parses
 * survives value_copy, and every scalar quoted by yaml_quote (the `yaml`
 * template filter) parses back to the very same text, since a quoting slip
 * there would let a value change the structure of a rendered config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "diag.h"
#include "fuzz.h"
#include "util.h"
#include "value.h"
#include "yamldoc.h"

static void check_quote(const char *text) {
	char *quoted = yaml_quote(text);
	char *doc = xasprintf("k: %s\n", quoted);
	struct diags d = DIAGS_INIT;
	struct value *v = NULL;
	if (yaml_parse("quoted", doc, strlen(doc), &v, &d) < 0) {
		fprintf(stderr, "yaml_quote(\"%s\") = %s does not parse\n", text, quoted);
		abort();
	}
	const struct value *k = value_map_get(v, "k");
	if (!k || k->kind != VALUE_SCALAR || strcmp(k->text, text) != 0 || k->plain) {
		fprintf(stderr, "yaml_quote(\"%s\") = %s reads back as \"%s\"\n", text, quoted, k && k->text ? k->text : "?");
		abort();
	}
	value_free(v);
	diags_release(&d);
	free(doc);
	free(quoted);
}

/* Walks the tree: quotes each scalar and key, and looks each map key up. */
static void walk(const struct value *v, int depth) {
	if (depth > 64)
		return;
	if (v->kind == VALUE_SCALAR) {
		check_quote(v->text);
		long n;
		bool b;
		(void)value_as_long(v, &n);
		(void)value_as_bool(v, &b);
		(void)value_truthy(v);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		if (v->kind == VALUE_MAP) {
			check_quote(v->keys[i]);
			if (value_map_get(v, v->keys[i]) == NULL)
				abort();        /* a key the map holds must be found */
		}
		walk(v->items[i], depth + 1);
	}
}

/* Each "KEY=VALUE" line as `render --set` applies it to the template
 * context, then looked up again. */
static void apply_sets(struct value *root, const char *text) {
	char *copy = xstrdup(text);
	for (char *line = copy, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *eq = strchr(line, '=');
		if (!eq || eq == line)
			continue;
		*eq = '\0';
		struct srcloc at = { "--set", 0, 0 };
		if (value_set_path(root, line, value_new_scalar(eq + 1, &at)) == 0) {
			const struct value *got = value_lookup(root, line);
			/* A name with an empty part ("a..b") may legitimately not be found again. */
			if (got && got->kind == VALUE_SCALAR && strcmp(got->text, eq + 1) != 0) {
				fprintf(stderr, "--set %s=%s reads back as '%s'\n", line, eq + 1, got->text);
				abort();
			}
		}
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *text = xstrndup((const char *)data, size);
	struct diags d = DIAGS_INIT;
	struct value *doc = NULL;
	if (yaml_parse("fuzz.yaml", (const char *)data, size, &doc, &d) == 0) {
		struct value *copy = value_copy(doc);
		walk(copy, 0);
		apply_sets(copy, text);
		value_free(copy);
	} else {
		struct srcloc at = { "fuzz", 1, 1 };
		struct value *root = value_new_map(&at);
		apply_sets(root, text);
		value_free(root);
	}
	value_free(doc);
	(void)yaml_check_stream("fuzz.yaml", (const char *)data, size, &d);
	diags_release(&d);
	free(text);
	return 0;
}
