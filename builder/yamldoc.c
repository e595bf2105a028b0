#include "yamldoc.h"

#include <errno.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "util.h"

/* Deep enough for any real recipe; stops a hostile file from recursing us to death. */
#define MAX_DEPTH 64

struct parser {
	yaml_parser_t p;
	const char *name;
	struct diags *d;
	bool failed;
};

static struct srcloc loc_of(const struct parser *ps, yaml_mark_t m) {
	/* libyaml marks are 0-based. */
	return (struct srcloc){ ps->name, (int)m.line + 1, (int)m.column + 1 };
}

static bool next(struct parser *ps, yaml_event_t *ev) {
	if (yaml_parser_parse(&ps->p, ev))
		return true;
	struct srcloc at = loc_of(ps, ps->p.problem_mark);
	if (ps->p.context)
		diag_error(ps->d, &at, "%s %s", ps->p.context, ps->p.problem ? ps->p.problem : "invalid YAML");
	else
		diag_error(ps->d, &at, "%s", ps->p.problem ? ps->p.problem : "invalid YAML");
	ps->failed = true;
	return false;
}

static struct value *parse_node(struct parser *ps, yaml_event_t *ev, int depth);

/* Parses the rest of a collection whose start event was already consumed. */
static struct value *parse_collection(struct parser *ps, struct value *v, int depth) {
	for (;;) {
		yaml_event_t ev;
		if (!next(ps, &ev))
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return v;
		}
		if (v->kind == VALUE_LIST) {
			struct value *item = parse_node(ps, &ev, depth + 1);
			yaml_event_delete(&ev);
			if (!item)
				goto fail;
			value_list_push(v, item);
			continue;
		}
		struct srcloc key_at = loc_of(ps, ev.start_mark);
		if (ev.type != YAML_SCALAR_EVENT) {
			diag_error(ps->d, &key_at, "map keys must be plain strings");
			yaml_event_delete(&ev);
			ps->failed = true;
			goto fail;
		}
		if (ev.data.scalar.anchor) {
			diag_error(ps->d, &key_at, "anchors are not supported");
			ps->failed = true;
		}
		char *key = xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
		yaml_event_delete(&ev);
		if (!next(ps, &ev)) {
			free(key);
			goto fail;
		}
		struct value *item = parse_node(ps, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!item) {
			free(key);
			goto fail;
		}
		long dup = value_map_index(v, key);
		if (dup >= 0) {
			diag_error(ps->d, &key_at, "duplicate key '%s' (first defined at %d:%d)", key, v->key_locs[dup].line, v->key_locs[dup].col);
			ps->failed = true;
			value_free(item);
		} else {
			value_map_set(v, key, item);
			v->key_locs[v->n - 1] = key_at;
		}
		free(key);
	}
fail:
	value_free(v);
	return NULL;
}

static struct value *parse_node(struct parser *ps, yaml_event_t *ev, int depth) {
	struct srcloc at = loc_of(ps, ev->start_mark);
	if (depth > MAX_DEPTH) {
		diag_error(ps->d, &at, "nested deeper than %d levels", MAX_DEPTH);
		ps->failed = true;
		return NULL;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		diag_error(ps->d, &at, "aliases are not supported");
		ps->failed = true;
		return NULL;
	case YAML_SCALAR_EVENT: {
		if (ev->data.scalar.anchor) {
			diag_error(ps->d, &at, "anchors are not supported");
			ps->failed = true;
		}
		char *text = xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		struct value *v = value_new_scalar(text, &at);
		free(text);
		v->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		return v;
	}
	case YAML_SEQUENCE_START_EVENT:
		if (ev->data.sequence_start.anchor) {
			diag_error(ps->d, &at, "anchors are not supported");
			ps->failed = true;
		}
		return parse_collection(ps, value_new_list(&at), depth);
	case YAML_MAPPING_START_EVENT:
		if (ev->data.mapping_start.anchor) {
			diag_error(ps->d, &at, "anchors are not supported");
			ps->failed = true;
		}
		return parse_collection(ps, value_new_map(&at), depth);
	default:
		diag_error(ps->d, &at, "unexpected YAML event");
		ps->failed = true;
		return NULL;
	}
}

/* One document into *ret, or with `many` every document checked and none kept. */
static int parse_text(const char *name, const char *text, size_t len, bool many, struct value **ret, struct diags *d) {
	struct parser ps = { .name = name, .d = d };
	if (!yaml_parser_initialize(&ps.p))
		abort();
	yaml_parser_set_input_string(&ps.p, (const unsigned char *)text, len);
	struct value *root = NULL;
	int docs = 0;
	for (;;) {
		yaml_event_t ev;
		if (!next(&ps, &ev))
			break;
		yaml_event_type_t type = ev.type;
		if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1 && !many) {
			struct srcloc at = loc_of(&ps, ev.start_mark);
			diag_error(d, &at, "more than one YAML document");
			ps.failed = true;
		} else if (type == YAML_SCALAR_EVENT || type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT ||
			   type == YAML_ALIAS_EVENT) {
			struct value *v = parse_node(&ps, &ev, 0);
			if (!root)
				root = v;
			else
				value_free(v);
		}
		yaml_event_delete(&ev);
		if (type == YAML_STREAM_END_EVENT || ps.failed)
			break;
	}
	yaml_parser_delete(&ps.p);
	if (ps.failed) {
		value_free(root);
		return -EINVAL;
	}
	if (!ret) {
		value_free(root);
		return 0;
	}
	if (!root || value_is_null(root)) {
		value_free(root);
		root = value_new_map(&(struct srcloc){ name, 1, 1 });
	}
	*ret = root;
	return 0;
}

int yaml_parse(const char *name, const char *text, size_t len, struct value **ret, struct diags *d) {
	return parse_text(name, text, len, false, ret, d);
}

int yaml_check_stream(const char *name, const char *text, size_t len, struct diags *d) {
	return parse_text(name, text, len, true, NULL, d);
}

/* The code point of a 2- or 3-byte UTF-8 sequence at p, or 0 when it is
 * not one (a 4-byte one needs no escape). */
static unsigned utf8_char(const unsigned char *p) {
	if ((p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80 && p[0] >= 0xc2)
		return (unsigned)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
	if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
		unsigned cp = (unsigned)(p[0] & 0x0f) << 12 | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
		return cp >= 0x800 ? cp : 0;
	}
	return 0;
}

char *yaml_quote(const char *s) {
	struct buf b = BUF_INIT;
	buf_putc(&b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_puts(&b, "\\\""); break;
		case '\\': buf_puts(&b, "\\\\"); break;
		case '\n': buf_puts(&b, "\\n"); break;
		case '\t': buf_puts(&b, "\\t"); break;
		case '\r': buf_puts(&b, "\\r"); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				buf_printf(&b, "\\x%02x", *p);
			} else if (*p >= 0x80) {
				/* A YAML parser folds a raw U+0085, U+2028 or U+2029 in
				 * a quoted scalar like a line break, and refuses the C1
				 * controls and U+FEFF: escaped, they read back as they
				 * were. Bytes that are not UTF-8 stay as they are. */
				unsigned cp = utf8_char(p);
				if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff ||
				    cp == 0xfffe || cp == 0xffff) {
					buf_printf(&b, "\\u%04x", cp);
					p += cp < 0x800 ? 1 : 2;
				} else {
					buf_putc(&b, (char)*p);
				}
			} else {
				buf_putc(&b, (char)*p);
			}
		}
	}
	buf_putc(&b, '"');
	return buf_steal(&b, NULL);
}
