/* Strict text templates.
 *
 * The source is lexed once into a flat array of items (text runs,
 * expressions and block tags); block tags are then matched with a stack so
 * that each `if`/`each` knows the index of its `else` and `end`. Rendering
 * walks index ranges of that array. Syntax errors are all collected first;
 * rendering only runs on a template that parsed, so that a typo in one tag
 * does not cascade into confusing errors about the rest. When asked, every
 * piece appended to the output is recorded with where it came from (the
 * template_map), so later checks of the output can point into the
 * template. */
#include "template.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hash.h"
#include "util.h"
#include "yamldoc.h"

/* Bounds the recursion of rendering and the scope stack of `each`. */
#define MAX_DEPTH 32
#define MAX_INDENT 256

enum item_kind { ITEM_TEXT, ITEM_EXPR, ITEM_IF, ITEM_ELSE, ITEM_END, ITEM_EACH };
enum filter_kind { FILTER_BASE64, FILTER_INDENT, FILTER_YAML, FILTER_JOIN };
static const char *const filter_names[] = { "base64", "indent", "yaml", "join" };
enum cond_kind { COND_TRUTHY, COND_DEFINED, COND_EQ, COND_NE };

struct filter {
	enum filter_kind kind;
	struct srcloc loc;
	size_t indent;          /* INDENT */
	char *sep;              /* JOIN, owned */
};

struct item {
	enum item_kind kind;
	struct srcloc loc;      /* the text start, or the tag's '{{' */
	const char *text;       /* TEXT: points into the source */
	size_t len;
	char *path;             /* EXPR, IF, EACH: a dotted name, owned */
	struct srcloc path_loc;
	char *literal;          /* EXPR: a string literal in place of a name, owned */
	struct filter *filters; /* EXPR, owned */
	size_t n_filters, cap_filters;
	enum cond_kind cond;    /* IF */
	bool negate;
	char *rhs;              /* IF ==/!=: owned */
	char *var;              /* EACH: owned */
	size_t else_idx;        /* IF: 0 when there is no else (index 0 is never an else) */
	size_t end_idx;         /* IF, EACH */
};

/* One piece of output: literal text, or a value some tag inserted. */
struct span {
	size_t out_off;         /* where it starts, from the start of the render */
	bool literal;
	size_t src_off;         /* literal: where it starts in the template */
	struct srcloc tag;      /* a value: the tag's '{{' */
};

struct template_map {
	const char *name;
	size_t *src_lines;      /* offsets where template lines start */
	size_t n_src_lines;
	struct span *spans;
	size_t n_spans, cap_spans;
	size_t *lines;          /* offsets where rendered lines start */
	size_t n_lines, cap_lines;
	size_t len;             /* bytes rendered */
};

struct scope {
	const char *var;
	const struct value *item;
	struct value *loop;     /* index, first, last: render_each's */
};

struct tpl {
	const char *name, *src;
	size_t len;
	size_t *lines;          /* offsets where lines start, for line:col */
	size_t n_lines, cap_lines;
	struct item *items;
	size_t n_items, cap_items;
	struct diags *d;
	size_t first_diag;      /* diags before ours are not compared for duplicates */
	size_t n_errors;
	/* rendering */
	const struct value *ctx;
	struct buf *out;
	struct scope scopes[MAX_DEPTH];
	size_t n_scopes;
	bool unclosed;          /* a tag ran on: later block tags may be misread */
	bool stop;              /* the output limit was hit: nothing more can be rendered */
	struct template_map *map; /* NULL unless the caller asked for one */
};

enum tok_kind { TOK_END, TOK_WORD, TOK_STRING, TOK_PIPE, TOK_EQ, TOK_NE };

struct token {
	enum tok_kind kind;
	size_t off, len;        /* the raw text in the source */
	char *str;              /* STRING: decoded, owned */
};

struct tokens {
	struct token *v;
	size_t n, cap, i;       /* i: the parser's cursor */
};

static void tpl_error(struct tpl *t, const struct srcloc *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A mistake inside `each` would otherwise be reported once per item. */
static void tpl_error(struct tpl *t, const struct srcloc *at, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	for (size_t i = t->first_diag; msg && i < t->d->n; i++) {
		const struct diag *g = &t->d->v[i];
		if (g->line == at->line && g->col == at->col && streq(g->msg, msg))
			return;
	}
	diag_error(t->d, at, "%s", msg ? msg : fmt);
	t->n_errors++;
}

/* `lines` holds the offsets where lines start; the first is 0. */
static struct srcloc line_col(const char *name, const size_t *lines, size_t n_lines, size_t off) {
	size_t lo = 0, hi = n_lines;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (lines[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return (struct srcloc){ name, (int)lo + 1, (int)(off - lines[lo]) + 1 };
}

static struct srcloc loc_at(const struct tpl *t, size_t off) {
	return line_col(t->name, t->lines, t->n_lines, off);
}

static void index_lines(struct tpl *t) {
	GROW(t->lines, t->cap_lines, 1);
	t->lines[t->n_lines++] = 0;
	for (const char *p = t->src; t->len && (p = memchr(p, '\n', t->len - (size_t)(p - t->src))) != NULL; p++) {
		GROW(t->lines, t->cap_lines, t->n_lines + 1);
		t->lines[t->n_lines++] = (size_t)(p - t->src) + 1;
	}
}

static void item_release(struct item *it) {
	free(it->path);
	free(it->literal);
	for (size_t i = 0; i < it->n_filters; i++)
		free(it->filters[i].sep);
	free(it->filters);
	free(it->rhs);
	free(it->var);
}

static void push_item(struct tpl *t, const struct item *it) {
	GROW(t->items, t->cap_items, t->n_items + 1);
	t->items[t->n_items++] = *it;
}

/* ---- lexing ---- */

static bool is_word_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

static bool is_blank(char c) {
	return c == ' ' || c == '\t';
}

/* Strings may not span lines: an unterminated one is then reported where
 * it starts instead of swallowing the rest of the template. */
static int lex_string(struct tpl *t, size_t *pos, size_t to, char **ret) {
	const char *s = t->src;
	char *out = xmalloc(to - *pos + 1), *o = out;
	size_t i = *pos + 1;
	for (;;) {
		if (i >= to || s[i] == '\n') {
			struct srcloc at = loc_at(t, *pos);
			tpl_error(t, &at, "unterminated string");
			free(out);
			return -EINVAL;
		}
		char c = s[i];
		if (c == '"')
			break;
		if (c == '\\') {
			char e = i + 1 < to ? s[i + 1] : '\0';
			c = e == 'n' ? '\n' : e == 't' ? '\t' : e == '\\' ? '\\' : e == '"' ? '"' : '\0';
			if (!c) {
				struct srcloc at = loc_at(t, i);
				tpl_error(t, &at, "unknown escape '\\%c' in string (use \\n, \\t, \\\\ or \\\")", e ? e : ' ');
				free(out);
				return -EINVAL;
			}
			i++;
		}
		*o++ = c;
		i++;
	}
	*o = '\0';
	*pos = i + 1;
	*ret = out;
	return 0;
}

/* Tokens of the tag body [from, to); always ends with TOK_END on success.
 * On error the tokens lexed so far are kept, so the caller can still tell
 * a block tag from an expression. */
static int tokenize(struct tpl *t, size_t from, size_t to, struct tokens *toks) {
	const char *s = t->src;
	size_t i = from;
	for (;;) {
		while (i < to && (is_blank(s[i]) || s[i] == '\n' || s[i] == '\r'))
			i++;
		struct token tok = { .off = i };
		if (i >= to) {
			tok.kind = TOK_END;
		} else if (is_word_char(s[i])) {
			while (i < to && is_word_char(s[i]))
				i++;
			tok.kind = TOK_WORD;
		} else if (s[i] == '|') {
			i++;
			tok.kind = TOK_PIPE;
		} else if ((s[i] == '=' || s[i] == '!') && i + 1 < to && s[i + 1] == '=') {
			tok.kind = s[i] == '=' ? TOK_EQ : TOK_NE;
			i += 2;
		} else if (s[i] == '"') {
			if (lex_string(t, &i, to, &tok.str) < 0)
				return -EINVAL;
			tok.kind = TOK_STRING;
		} else {
			struct srcloc at = loc_at(t, i);
			if ((unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7f)
				tpl_error(t, &at, "unexpected character '%c'", s[i]);
			else
				tpl_error(t, &at, "unexpected byte 0x%02x", (unsigned char)s[i]);
			return -EINVAL;
		}
		tok.len = i - tok.off;
		GROW(toks->v, toks->cap, toks->n + 1);
		toks->v[toks->n++] = tok;
		if (tok.kind == TOK_END)
			return 0;
	}
}

static void tokens_release(struct tokens *toks) {
	for (size_t i = 0; i < toks->n; i++)
		free(toks->v[i].str);
	free(toks->v);
}

static struct token *peek(struct tokens *toks) {
	return &toks->v[toks->i];
}

static struct token *next(struct tokens *toks) {
	struct token *tok = &toks->v[toks->i];
	if (tok->kind != TOK_END)
		toks->i++;
	return tok;
}

static bool tok_is(const struct tpl *t, const struct token *tok, const char *word) {
	return tok->kind == TOK_WORD && tok->len == strlen(word) && memcmp(t->src + tok->off, word, tok->len) == 0;
}

static int syntax_error(struct tpl *t, const struct token *tok, const char *expected) {
	struct srcloc at = loc_at(t, tok->off);
	if (tok->kind == TOK_END)
		tpl_error(t, &at, "expected %s before '}}'", expected);
	else
		tpl_error(t, &at, "expected %s, found '%.*s'", expected, (int)tok->len, t->src + tok->off);
	return -EINVAL;
}

static int parse_path(struct tpl *t, struct tokens *toks, const char *expected, char **ret, struct srcloc *ret_loc) {
	struct token *tok = next(toks);
	if (tok->kind != TOK_WORD)
		return syntax_error(t, tok, expected);
	const char *p = t->src + tok->off;
	struct srcloc at = loc_at(t, tok->off);
	if (p[0] == '.' || p[tok->len - 1] == '.' || memmem(p, tok->len, "..", 2)) {
		tpl_error(t, &at, "invalid name '%.*s'", (int)tok->len, p);
		return -EINVAL;
	}
	*ret = xstrndup(p, tok->len);
	*ret_loc = at;
	return 0;
}

static int parse_end(struct tpl *t, struct tokens *toks, const char *expected) {
	struct token *tok = next(toks);
	return tok->kind == TOK_END ? 0 : syntax_error(t, tok, expected);
}

static int parse_filter(struct tpl *t, struct tokens *toks, struct item *it) {
	struct token *tok = next(toks);
	if (tok->kind != TOK_WORD)
		return syntax_error(t, tok, "a filter name after '|'");
	struct filter f = { .loc = loc_at(t, tok->off) };
	_cleanup_free_ char *name = xstrndup(t->src + tok->off, tok->len);
	size_t k = 0;
	while (k < ARRAY_SIZE(filter_names) && !streq(name, filter_names[k]))
		k++;
	if (k == ARRAY_SIZE(filter_names)) {
		const char *hint = closest_match(name, filter_names, ARRAY_SIZE(filter_names));
		if (hint)
			tpl_error(t, &f.loc, "unknown filter '%s' (did you mean '%s'?)", name, hint);
		else
			tpl_error(t, &f.loc, "unknown filter '%s' (filters are base64, indent, yaml and join)", name);
		return -EINVAL;
	}
	f.kind = (enum filter_kind)k;
	if (f.kind == FILTER_INDENT) {
		tok = next(toks);
		const char *p = t->src + tok->off;
		bool ok = tok->kind == TOK_WORD && tok->len <= 3;
		for (size_t i = 0; ok && i < tok->len; i++)
			ok = p[i] >= '0' && p[i] <= '9';
		if (ok)
			f.indent = strtoul(p, NULL, 10);
		if (!ok || f.indent > MAX_INDENT) {
			tpl_error(t, &f.loc, "filter 'indent' needs a number of spaces from 0 to %d", MAX_INDENT);
			return -EINVAL;
		}
	} else if (f.kind == FILTER_JOIN) {
		tok = next(toks);
		if (tok->kind != TOK_STRING) {
			tpl_error(t, &f.loc, "filter 'join' needs a separator string, as in join \", \"");
			return -EINVAL;
		}
		f.sep = tok->str;
		tok->str = NULL;
	}
	GROW(it->filters, it->cap_filters, it->n_filters + 1);
	it->filters[it->n_filters++] = f;
	return 0;
}

static int parse_expr(struct tpl *t, struct tokens *toks, struct item *it) {
	struct token *tok = peek(toks);
	if (tok->kind == TOK_STRING) {
		next(toks);
		it->literal = tok->str;
		tok->str = NULL;
		it->path_loc = loc_at(t, tok->off);
	} else if (parse_path(t, toks, "a name", &it->path, &it->path_loc) < 0) {
		return -EINVAL;
	}
	while (peek(toks)->kind == TOK_PIPE) {
		next(toks);
		if (parse_filter(t, toks, it) < 0)
			return -EINVAL;
	}
	return parse_end(t, toks, "'|' or '}}'");
}

static int parse_if(struct tpl *t, struct tokens *toks, struct item *it) {
	if (tok_is(t, peek(toks), "not")) {
		next(toks);
		it->negate = true;
	}
	if (tok_is(t, peek(toks), "defined")) {
		next(toks);
		it->cond = COND_DEFINED;
		if (parse_path(t, toks, "a name after 'defined'", &it->path, &it->path_loc) < 0)
			return -EINVAL;
		return parse_end(t, toks, "'}}'");
	}
	if (parse_path(t, toks, "a condition", &it->path, &it->path_loc) < 0)
		return -EINVAL;
	struct token *tok = peek(toks);
	if (tok->kind == TOK_EQ || tok->kind == TOK_NE) {
		next(toks);
		it->cond = tok->kind == TOK_EQ ? COND_EQ : COND_NE;
		tok = next(toks);
		if (tok->kind != TOK_STRING)
			return syntax_error(t, tok, "a quoted string");
		it->rhs = tok->str;
		tok->str = NULL;
	}
	return parse_end(t, toks, it->rhs ? "'}}'" : "'==', '!=' or '}}'");
}

static int parse_each(struct tpl *t, struct tokens *toks, struct item *it) {
	struct srcloc var_loc;
	if (parse_path(t, toks, "a loop variable", &it->var, &var_loc) < 0)
		return -EINVAL;
	if (strchr(it->var, '.') || streq(it->var, "loop")) {
		tpl_error(t, &var_loc, "invalid loop variable '%s'", it->var);
		return -EINVAL;
	}
	if (!tok_is(t, peek(toks), "in"))
		return syntax_error(t, peek(toks), "'in'");
	next(toks);
	if (parse_path(t, toks, "a list after 'in'", &it->path, &it->path_loc) < 0)
		return -EINVAL;
	return parse_end(t, toks, "'}}'");
}

/* Parses the tag body [from, to) into `it`. The kind is set even when the
 * rest is malformed, so that block matching stays in step. */
static int parse_tag(struct tpl *t, size_t from, size_t to, struct item *it) {
	struct tokens toks = { 0 };
	int r = tokenize(t, from, to, &toks);
	it->kind = ITEM_EXPR;
	if (toks.n > 0) {
		static const struct { const char *word; enum item_kind kind; } keywords[] = {
			{ "if", ITEM_IF }, { "else", ITEM_ELSE }, { "end", ITEM_END }, { "each", ITEM_EACH },
		};
		for (size_t k = 0; k < ARRAY_SIZE(keywords); k++)
			if (tok_is(t, &toks.v[0], keywords[k].word)) {
				it->kind = keywords[k].kind;
				toks.i = 1;
			}
	}
	if (r >= 0) {
		switch (it->kind) {
		case ITEM_EXPR: r = parse_expr(t, &toks, it); break;
		case ITEM_IF: r = parse_if(t, &toks, it); break;
		case ITEM_EACH: r = parse_each(t, &toks, it); break;
		case ITEM_ELSE: r = parse_end(t, &toks, "'}}' after 'else'"); break;
		case ITEM_END: r = parse_end(t, &toks, "'}}' after 'end'"); break;
		case ITEM_TEXT: break;
		}
	}
	tokens_release(&toks);
	return r;
}

/* A line holding only blanks and one block tag disappears entirely, so that
 * the tags can be indented with the YAML around them without leaving blank
 * lines or stray spaces. Returns where lexing resumes. */
static size_t trim_standalone(struct tpl *t, size_t open, size_t end) {
	const char *s = t->src;
	size_t ls = open, le = end;
	while (ls > 0 && is_blank(s[ls - 1]))
		ls--;
	while (le < t->len && is_blank(s[le]))
		le++;
	if (le + 1 < t->len && s[le] == '\r' && s[le + 1] == '\n')
		le++;
	if ((ls > 0 && s[ls - 1] != '\n') || (le < t->len && s[le] != '\n'))
		return end;
	/* The text run before the tag ends at `open` and starts at or before
	 * `ls`: anything else ends in '}}' or a newline, which stopped the scan. */
	if (t->n_items > 0) {
		struct item *prev = &t->items[t->n_items - 1];
		if (prev->kind == ITEM_TEXT && prev->text + prev->len == s + open)
			prev->len -= open - ls;
	}
	return le < t->len ? le + 1 : t->len;
}

/* Finds the '}}' closing the tag at `open`, skipping string literals so
 * that join "}}" works. A '{{' before it means this tag was never closed;
 * lexing then resumes there so the rest of the template is still checked. */
static bool find_close(struct tpl *t, size_t open, size_t *ret) {
	const char *s = t->src;
	for (size_t i = open + 2; i + 1 < t->len; i++) {
		if (s[i] == '"') {
			size_t j = i + 1;
			for (; j < t->len && s[j] != '"' && s[j] != '\n'; j++)
				if (s[j] == '\\' && j + 1 < t->len && s[j + 1] != '\n')
					j++;
			/* An unterminated string is left to the tokenizer to report. */
			if (j < t->len && s[j] == '"')
				i = j;
		} else if (s[i] == '}' && s[i + 1] == '}') {
			*ret = i;
			return true;
		} else if (s[i] == '{' && s[i + 1] == '{') {
			*ret = i;
			return false;
		}
	}
	*ret = t->len;
	return false;
}

static size_t lex_tag(struct tpl *t, size_t open) {
	const char *s = t->src;
	struct srcloc at = loc_at(t, open);
	if (open + 2 < t->len && s[open + 2] == '#') {
		const char *close = open + 3 < t->len ? memmem(s + open + 3, t->len - open - 3, "#}}", 3) : NULL;
		if (!close) {
			tpl_error(t, &at, "unclosed comment");
			t->unclosed = true;
			return t->len;
		}
		return trim_standalone(t, open, (size_t)(close - s) + 3);
	}
	size_t close;
	if (!find_close(t, open, &close)) {
		tpl_error(t, &at, "unclosed '{{'");
		t->unclosed = true;
		return close;
	}
	struct item it = { .loc = at };
	int r = parse_tag(t, open + 2, close, &it);
	if (it.kind == ITEM_EXPR) {
		if (r < 0)
			item_release(&it);
		else
			push_item(t, &it);
		return close + 2;
	}
	size_t resume = trim_standalone(t, open, close + 2);
	push_item(t, &it);
	return resume;
}

static void lex(struct tpl *t) {
	const char *s = t->src;
	size_t text_start = 0, i = 0;
	while (i + 1 < t->len) {
		if (s[i] != '{' || s[i + 1] != '{') {
			i++;
			continue;
		}
		if (i > text_start)
			push_item(t, &(struct item){ .kind = ITEM_TEXT, .loc = loc_at(t, text_start), .text = s + text_start, .len = i - text_start });
		i = text_start = lex_tag(t, i);
	}
	if (t->len > text_start)
		push_item(t, &(struct item){ .kind = ITEM_TEXT, .loc = loc_at(t, text_start), .text = s + text_start, .len = t->len - text_start });
}

static void match_blocks(struct tpl *t) {
	size_t stack[MAX_DEPTH], n = 0;
	for (size_t i = 0; i < t->n_items; i++) {
		struct item *it = &t->items[i];
		switch (it->kind) {
		case ITEM_IF:
		case ITEM_EACH:
			if (n == MAX_DEPTH) {
				tpl_error(t, &it->loc, "blocks nested more than %d deep", MAX_DEPTH);
				return;
			}
			stack[n++] = i;
			break;
		case ITEM_ELSE:
			if (n == 0 || t->items[stack[n - 1]].kind != ITEM_IF) {
				tpl_error(t, &it->loc, "'else' without 'if'");
			} else if (t->items[stack[n - 1]].else_idx) {
				struct srcloc *if_at = &t->items[stack[n - 1]].loc;
				tpl_error(t, &it->loc, "second 'else' for 'if' at %d:%d", if_at->line, if_at->col);
			} else {
				t->items[stack[n - 1]].else_idx = i;
			}
			break;
		case ITEM_END:
			if (n == 0)
				tpl_error(t, &it->loc, "'end' without 'if' or 'each'");
			else
				t->items[stack[--n]].end_idx = i;
			break;
		case ITEM_TEXT:
		case ITEM_EXPR:
			break;
		}
	}
	for (size_t k = 0; k < n; k++) {
		struct item *it = &t->items[stack[k]];
		tpl_error(t, &it->loc, "'%s' at %d:%d is never closed", it->kind == ITEM_IF ? "if" : "each", it->loc.line, it->loc.col);
	}
}

/* ---- rendering ---- */

static size_t out_limit(const struct tpl *t) {
	return t->out->limit ? t->out->limit : BUF_DEFAULT_LIMIT;
}

static void map_record(struct template_map *m, const struct tpl *t, const struct srcloc *at, const char *s, size_t n, bool literal) {
	if (n == 0)
		return;
	GROW(m->spans, m->cap_spans, m->n_spans + 1);
	m->spans[m->n_spans++] = (struct span){
		.out_off = m->len, .literal = literal, .src_off = literal ? (size_t)(s - t->src) : 0, .tag = *at,
	};
	for (const char *p = s; (p = memchr(p, '\n', n - (size_t)(p - s))) != NULL; p++) {
		GROW(m->lines, m->cap_lines, m->n_lines + 1);
		m->lines[m->n_lines++] = m->len + (size_t)(p - s) + 1;
	}
	m->len += n;
}

/* `literal`: `s` is text of the template itself, not a value. */
static void emit(struct tpl *t, const struct srcloc *at, const char *s, size_t n, bool literal) {
	if (t->stop)
		return;
	if (buf_append(t->out, s, n) >= 0) {
		if (t->map)
			map_record(t->map, t, at, s, n, literal);
		return;
	}
	tpl_error(t, at, "rendered output of '%s' exceeds %zu bytes", t->name, out_limit(t));
	t->stop = true;
}

static void report_undefined(struct tpl *t, const struct srcloc *at, const char *path, size_t seg_off, const struct value *parent) {
	const char *seg_end = strchr(path + seg_off, '.');
	size_t seg_len = seg_end ? (size_t)(seg_end - path - seg_off) : strlen(path + seg_off);
	int prefix = seg_off ? (int)seg_off - 1 : 0;  /* the part that exists, without its dot */
	if (seg_off && parent->kind != VALUE_MAP) {
		if (parent->kind == VALUE_LIST)
			tpl_error(t, at, "undefined name '%s' ('%.*s' has %zu items)", path, prefix, path, parent->n);
		else
			tpl_error(t, at, "undefined name '%s' ('%.*s' is a scalar)", path, prefix, path);
		return;
	}
	/* At the top, loop variables are names too. */
	size_t n = 0;
	_cleanup_free_ const char **names = xmalloc((parent->n + t->n_scopes + 1) * sizeof(*names));
	for (size_t i = 0; parent->kind == VALUE_MAP && i < parent->n; i++)
		names[n++] = parent->keys[i];
	for (size_t i = 0; !seg_off && i < t->n_scopes; i++)
		names[n++] = t->scopes[i].var;
	if (!seg_off && t->n_scopes)
		names[n++] = "loop";
	_cleanup_free_ char *seg = xstrndup(path + seg_off, seg_len);
	const char *hint = closest_match(seg, names, n);
	if (hint)
		tpl_error(t, at, "undefined name '%s' (did you mean '%.*s%s%s'?)", path, (int)seg_off, path, hint, path + seg_off + seg_len);
	else
		tpl_error(t, at, "undefined name '%s'", path);
}

static bool word_is(const char *s, size_t len, const char *word) {
	return strncmp(s, word, len) == 0 && word[len] == '\0';
}

/* Loop variables shadow the context; `loop` is the innermost loop's. */
static const struct value *resolve(struct tpl *t, const char *path, const struct srcloc *at, bool quiet) {
	const char *seg = path;
	size_t len = strcspn(seg, ".");
	const struct value *cur = NULL, *parent = t->ctx;
	for (size_t k = t->n_scopes; k-- > 0 && !cur;) {
		if (word_is(seg, len, t->scopes[k].var))
			cur = t->scopes[k].item;
		else if (word_is(seg, len, "loop"))
			cur = t->scopes[k].loop;
	}
	if (!cur)
		cur = value_step(t->ctx, seg, len);
	while (cur && seg[len] == '.') {
		seg += len + 1;
		len = strcspn(seg, ".");
		parent = cur;
		cur = value_step(cur, seg, len);
	}
	if (!cur && !quiet)
		report_undefined(t, at, path, (size_t)(seg - path), parent);
	return cur;
}

static void render_range(struct tpl *t, size_t from, size_t to);

/* 1 true, 0 false, -EINVAL after reporting. */
static int eval_cond(struct tpl *t, const struct item *it) {
	if (it->cond == COND_DEFINED)
		return (resolve(t, it->path, &it->path_loc, true) != NULL) != it->negate;
	const struct value *v = resolve(t, it->path, &it->path_loc, false);
	if (!v)
		return -EINVAL;
	bool res;
	if (it->cond == COND_TRUTHY) {
		res = value_truthy(v);
	} else if (v->kind != VALUE_SCALAR) {
		tpl_error(t, &it->path_loc, "'%s' is a %s; '%s' compares text", it->path, value_kind_name(v->kind), it->cond == COND_EQ ? "==" : "!=");
		return -EINVAL;
	} else {
		res = streq(v->text, it->rhs) == (it->cond == COND_EQ);
	}
	return res != it->negate;
}

static void render_if(struct tpl *t, const struct item *it, size_t i) {
	int c = eval_cond(t, it);
	/* When the condition is broken, both branches are checked so that all
	 * errors show up in one run; the output is discarded anyway. */
	if (c != 0)
		render_range(t, i + 1, it->else_idx ? it->else_idx : it->end_idx);
	if (c <= 0 && it->else_idx)
		render_range(t, it->else_idx + 1, it->end_idx);
}

/* A plain scalar whose text the loop rewrites in place: room for any
 * index, "true" and "false". */
#define LOOP_TEXT 24
static struct value *loop_scalar(struct value *loop, const char *key) {
	struct value *v = value_new_scalar("", NULL);
	v->plain = true;
	free(v->text);
	v->text = xcalloc(1, LOOP_TEXT);
	value_map_set(loop, key, v);
	return v;
}

static void render_each(struct tpl *t, const struct item *it, size_t i) {
	const struct value *list = resolve(t, it->path, &it->path_loc, false);
	if (!list)
		return;
	if (list->kind != VALUE_LIST) {
		tpl_error(t, &it->path_loc, "'%s' is a %s; 'each' needs a list", it->path, value_kind_name(list->kind));
		return;
	}
	/* One `loop` for all the items, its values set for each. */
	struct value *loop = value_new_map(&it->loc);
	struct value *index = loop_scalar(loop, "index"), *first = loop_scalar(loop, "first"),
		     *last = loop_scalar(loop, "last");
	for (size_t k = 0; k < list->n && !t->stop; k++) {
		snprintf(index->text, LOOP_TEXT, "%zu", k);
		strcpy(first->text, k == 0 ? "true" : "false");
		strcpy(last->text, k + 1 == list->n ? "true" : "false");
		t->scopes[t->n_scopes++] = (struct scope){ it->var, list->items[k], loop };
		render_range(t, i + 1, it->end_idx);
		t->n_scopes--;
	}
	value_free(loop);
}

static char *indent_text(const char *s, size_t spaces, size_t limit) {
	struct buf b = { .limit = limit };
	for (const char *p = s; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		if (p != s && *p != '\n' && buf_printf(&b, "%*s", (int)spaces, "") < 0)
			goto too_big;
		if (buf_append(&b, p, len) < 0)
			goto too_big;
		p += len;
	}
	return buf_steal(&b, NULL);
too_big:
	buf_release(&b);
	return NULL;
}

/* Joins a list of scalars; `quote` makes a YAML flow list. */
static char *join_list(const struct value *list, const char *sep, bool quote, size_t limit) {
	struct buf b = { .limit = limit };
	int r = quote ? buf_putc(&b, '[') : 0;
	for (size_t i = 0; i < list->n && r >= 0; i++) {
		_cleanup_free_ char *q = quote ? yaml_quote(list->items[i]->text) : NULL;
		if (i > 0)
			r = buf_puts(&b, sep);
		if (r >= 0)
			r = buf_puts(&b, q ? q : list->items[i]->text);
	}
	if (r >= 0 && quote)
		r = buf_putc(&b, ']');
	if (r < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

/* The state between filters is either text or, until a filter has turned
 * it into text, a list or map `v`. Returns the new text, or NULL after
 * reporting. */
static char *apply_filter(struct tpl *t, const struct filter *f, const char *name, const struct value *v, const char *text) {
	const char *fname = filter_names[f->kind];
	const char *kind = text ? "scalar" : value_kind_name(v->kind);
	char *res = NULL;
	switch (f->kind) {
	case FILTER_BASE64:
	case FILTER_INDENT:
		if (!text) {
			tpl_error(t, &f->loc, "filter '%s' needs a scalar, but '%s' is a %s", fname, name, kind);
			return NULL;
		}
		res = f->kind == FILTER_BASE64 ? base64_encode(text, strlen(text)) : indent_text(text, f->indent, out_limit(t));
		break;
	case FILTER_YAML:
	case FILTER_JOIN:
		if (text && f->kind == FILTER_YAML)
			return yaml_quote(text);
		if (text || v->kind != VALUE_LIST) {
			tpl_error(t, &f->loc, "filter '%s' needs a %s, but '%s' is a %s", fname,
				  f->kind == FILTER_YAML ? "scalar or a list of scalars" : "list", name, kind);
			return NULL;
		}
		for (size_t i = 0; i < v->n; i++)
			if (v->items[i]->kind != VALUE_SCALAR) {
				tpl_error(t, &f->loc, "filter '%s' needs a list of scalars, but item %zu of '%s' is a %s", fname, i, name, value_kind_name(v->items[i]->kind));
				return NULL;
			}
		res = join_list(v, f->kind == FILTER_YAML ? ", " : f->sep, f->kind == FILTER_YAML, out_limit(t));
		break;
	}
	if (!res) {
		tpl_error(t, &f->loc, "rendered output of '%s' exceeds %zu bytes", t->name, out_limit(t));
		t->stop = true;
	}
	return res;
}

static void render_expr(struct tpl *t, const struct item *it) {
	const struct value *v = NULL;
	const char *name = it->path ? it->path : it->literal;
	if (it->path && !(v = resolve(t, it->path, &it->path_loc, false)))
		return;
	/* the value's own text until a filter makes another */
	const char *text = it->literal ? it->literal : v->kind == VALUE_SCALAR ? v->text : NULL;
	_cleanup_free_ char *made = NULL;
	for (size_t i = 0; i < it->n_filters; i++) {
		char *res = apply_filter(t, &it->filters[i], name, v, text);
		free(made);
		if (!(text = made = res))
			return;
	}
	if (!text) {
		if (v->kind == VALUE_LIST)
			tpl_error(t, &it->path_loc, "'%s' is a list; use join or yaml", name);
		else
			tpl_error(t, &it->path_loc, "'%s' is a map; use one of its keys", name);
		return;
	}
	/* A line break in a value would end the YAML scalar it is inserted in
	 * and let the value add keys of its own. */
	bool safe = it->n_filters && it->filters[it->n_filters - 1].kind != FILTER_JOIN;
	if (!safe && strpbrk(text, "\n\r")) {
		tpl_error(t, &it->path_loc, "value of '%s' contains a newline; use a filter such as indent or yaml", name);
		return;
	}
	emit(t, &it->loc, text, strlen(text), false);
}

static void render_range(struct tpl *t, size_t from, size_t to) {
	for (size_t i = from; i < to && !t->stop; i++) {
		const struct item *it = &t->items[i];
		switch (it->kind) {
		case ITEM_TEXT: emit(t, &it->loc, it->text, it->len, true); break;
		case ITEM_EXPR: render_expr(t, it); break;
		case ITEM_IF: render_if(t, it, i); i = it->end_idx; break;
		case ITEM_EACH: render_each(t, it, i); i = it->end_idx; break;
		case ITEM_ELSE:
		case ITEM_END: break;
		}
	}
}

int template_render_map(const char *name, const char *src, size_t len, const struct value *ctx, struct buf *out,
			struct template_map **ret_map, struct diags *d) {
	struct tpl t = { .name = name, .src = src, .len = len, .d = d, .first_diag = d->n, .ctx = ctx, .out = out };
	index_lines(&t);
	if (ret_map) {
		t.map = xcalloc(1, sizeof(*t.map));
		t.map->name = name;
		GROW(t.map->lines, t.map->cap_lines, 1);
		t.map->lines[t.map->n_lines++] = 0;
	}
	lex(&t);
	if (!t.unclosed)
		match_blocks(&t);
	if (t.n_errors == 0)
		render_range(&t, 0, t.n_items);
	for (size_t i = 0; i < t.n_items; i++)
		item_release(&t.items[i]);
	free(t.items);
	if (t.n_errors) {
		free(t.lines);
		template_map_free(t.map);
		return -EINVAL;
	}
	if (t.map) {
		t.map->src_lines = t.lines;
		t.map->n_src_lines = t.n_lines;
		*ret_map = t.map;
	} else {
		free(t.lines);
	}
	return 0;
}

int template_render(const char *name, const char *src, size_t len, const struct value *ctx, struct buf *out, struct diags *d) {
	return template_render_map(name, src, len, ctx, out, NULL, d);
}

void template_map_free(struct template_map *m) {
	if (!m)
		return;
	free(m->src_lines);
	free(m->spans);
	free(m->lines);
	free(m);
}

struct srcloc template_map_loc(const struct template_map *m, int line, int col) {
	if (!m || m->n_spans == 0 || line < 1)
		return (struct srcloc){ m ? m->name : NULL, 0, 0 };
	size_t off = m->len - 1;
	if ((size_t)line <= m->n_lines) {
		size_t start = m->lines[line - 1];
		/* A column past the line's end stays on its newline. */
		size_t end = (size_t)line < m->n_lines ? m->lines[line] - 1 : m->len;
		off = col > 1 && (size_t)col - 1 < end - start ? start + (size_t)col - 1 : col > 1 ? end : start;
		if (off >= m->len)
			off = m->len - 1;  /* the end of the text, or an empty line after its last newline */
	}
	size_t lo = 0, hi = m->n_spans;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->spans[mid].out_off <= off)
			lo = mid;
		else
			hi = mid;
	}
	const struct span *sp = &m->spans[lo];
	if (!sp->literal)
		return sp->tag;
	return line_col(m->name, m->src_lines, m->n_src_lines, sp->src_off + (off - sp->out_off));
}

void template_map_diags(const struct template_map *m, const struct diags *from, struct diags *to) {
	for (size_t i = 0; i < from->n; i++) {
		const struct diag *g = &from->v[i];
		struct srcloc at = template_map_loc(m, g->line, g->col);
		switch (g->level) {
		case DIAG_ERROR: diag_error(to, &at, "%s", g->msg); break;
		case DIAG_WARNING: diag_warning(to, &at, "%s", g->msg); break;
		case DIAG_NOTE: diag_note(to, &at, "%s", g->msg); break;
		}
	}
}
