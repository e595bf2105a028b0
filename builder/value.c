#include "value.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hash.h"
#include "util.h"

static struct value *value_new(enum value_kind kind, const struct srcloc *loc) {
	struct value *v = xcalloc(1, sizeof(*v));
	v->kind = kind;
	if (loc)
		v->loc = *loc;
	return v;
}

struct value *value_new_scalar(const char *text, const struct srcloc *loc) {
	struct value *v = value_new(VALUE_SCALAR, loc);
	v->text = xstrdup(text);
	return v;
}

struct value *value_new_list(const struct srcloc *loc) {
	return value_new(VALUE_LIST, loc);
}

struct value *value_new_map(const struct srcloc *loc) {
	return value_new(VALUE_MAP, loc);
}

void value_free(struct value *v) {
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		value_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->key_locs);
	free(v->text);
	free(v);
}

struct value *value_copy(const struct value *v) {
	struct value *c = value_new(v->kind, &v->loc);
	c->plain = v->plain;
	if (v->text)
		c->text = xstrdup(v->text);
	for (size_t i = 0; i < v->n; i++) {
		if (v->kind == VALUE_MAP) {
			value_map_set(c, v->keys[i], value_copy(v->items[i]));
			c->key_locs[i] = v->key_locs[i];
		} else {
			value_list_push(c, value_copy(v->items[i]));
		}
	}
	return c;
}

long value_map_index(const struct value *map, const char *key) {
	if (!map || map->kind != VALUE_MAP)
		return -1;
	for (size_t i = 0; i < map->n; i++)
		if (streq(map->keys[i], key))
			return (long)i;
	return -1;
}

struct value *value_map_get(const struct value *map, const char *key) {
	long i = value_map_index(map, key);
	return i < 0 ? NULL : map->items[i];
}

static void grow(struct value *v) {
	if (v->n < v->cap)
		return;
	size_t cap = v->cap;
	GROW(v->items, cap, v->n + 1);
	if (v->kind == VALUE_MAP) {
		size_t c2 = v->cap, c3 = v->cap;
		GROW(v->keys, c2, cap);
		GROW(v->key_locs, c3, cap);
	}
	v->cap = cap;
}

void value_map_set(struct value *map, const char *key, struct value *item) {
	long i = value_map_index(map, key);
	if (i >= 0) {
		value_free(map->items[i]);
		map->items[i] = item;
		return;
	}
	grow(map);
	map->keys[map->n] = xstrdup(key);
	map->key_locs[map->n] = item ? item->loc : (struct srcloc){ 0 };
	map->items[map->n++] = item;
}

void value_map_set_str(struct value *map, const char *key, const char *text) {
	value_map_set(map, key, value_new_scalar(text, NULL));
}

void value_list_push(struct value *list, struct value *item) {
	grow(list);
	list->items[list->n++] = item;
}

struct value *value_step(const struct value *v, const char *part, size_t len) {
	if (v->kind == VALUE_MAP) {
		for (size_t i = 0; i < v->n; i++)
			if (strncmp(v->keys[i], part, len) == 0 && v->keys[i][len] == '\0')
				return v->items[i];
		return NULL;
	}
	char key[32];
	if (len >= sizeof(key))
		return NULL;
	memcpy(key, part, len);
	key[len] = '\0';
	if (v->kind == VALUE_LIST) {
		char *end;
		unsigned long idx = strtoul(key, &end, 10);
		if (!len || *end || idx >= v->n)
			return NULL;
		return v->items[idx];
	}
	return NULL;
}

struct value *value_lookup(const struct value *root, const char *path) {
	const struct value *v = root;
	const char *p = path;
	while (v) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		v = value_step(v, p, len);
		if (!dot)
			break;
		p = dot + 1;
	}
	return (struct value *)v;
}

int value_set_path(struct value *root, const char *path, struct value *item) {
	struct value *v = root;
	const char *p = path;
	for (;;) {
		if (v->kind != VALUE_MAP) {
			value_free(item);
			return -ENOTDIR;
		}
		const char *dot = strchr(p, '.');
		if (!dot || dot == p) {
			if (!*p || dot == p) {
				value_free(item);
				return -EINVAL;
			}
			value_map_set(v, p, item);
			return 0;
		}
		char *key = xstrndup(p, (size_t)(dot - p));
		struct value *next = value_map_get(v, key);
		if (!next) {
			next = value_new_map(NULL);
			value_map_set(v, key, next);
		}
		free(key);
		v = next;
		p = dot + 1;
	}
}

bool value_is_null(const struct value *v) {
	return v && v->kind == VALUE_SCALAR && v->plain &&
	       (!*v->text || streq(v->text, "~") || streq(v->text, "null") || streq(v->text, "Null") || streq(v->text, "NULL"));
}

bool value_as_bool(const struct value *v, bool *ret) {
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON" };
	static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF" };
	if (!v || v->kind != VALUE_SCALAR || !v->plain)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (streq(v->text, yes[i])) {
			*ret = true;
			return true;
		}
		if (streq(v->text, no[i])) {
			*ret = false;
			return true;
		}
	}
	return false;
}

bool value_as_long(const struct value *v, long *ret) {
	if (!v || v->kind != VALUE_SCALAR || !v->plain || !*v->text)
		return false;
	char *end;
	errno = 0;
	long n = strtol(v->text, &end, 10);
	if (errno || *end)
		return false;
	*ret = n;
	return true;
}

bool value_truthy(const struct value *v) {
	if (!v)
		return false;
	if (v->kind != VALUE_SCALAR)
		return v->n > 0;
	bool b;
	if (value_as_bool(v, &b))
		return b;
	if (value_is_null(v) || !*v->text)
		return false;
	long n;
	if (value_as_long(v, &n))
		return n != 0;
	return true;
}

const char *value_kind_article(enum value_kind k) {
	switch (k) {
	case VALUE_SCALAR: return "a string";
	case VALUE_LIST: return "a list";
	case VALUE_MAP: return "a map";
	}
	return "?";
}

const char *value_kind_name(enum value_kind k) {
	switch (k) {
	case VALUE_SCALAR: return "scalar";
	case VALUE_LIST: return "list";
	case VALUE_MAP: return "map";
	}
	return "?";
}

void value_hash(const struct value *v, bool (*keep)(const char *key, void *ctx), void *ctx, struct sha256 *h) {
	char head[64];
	if (!v) {
		sha256_update(h, "-", 1);
		return;
	}
	int n = snprintf(head, sizeof(head), "%d %d %zu %zu:", (int)v->kind, v->plain, v->kind == VALUE_LIST ? v->n : 0,
			 v->kind == VALUE_SCALAR && v->text ? strlen(v->text) : (size_t)0);
	sha256_update(h, head, (size_t)n);
	if (v->kind == VALUE_SCALAR && v->text)
		sha256_update(h, v->text, strlen(v->text));
	for (size_t i = 0; i < v->n; i++) {
		if (v->kind == VALUE_MAP) {
			if (keep && !keep(v->keys[i], ctx))
				continue;
			n = snprintf(head, sizeof(head), "k%zu:", strlen(v->keys[i]));
			sha256_update(h, head, (size_t)n);
			sha256_update(h, v->keys[i], strlen(v->keys[i]));
		}
		value_hash(v->items[i], keep, ctx, h);
	}
	sha256_update(h, ";", 1);
}
