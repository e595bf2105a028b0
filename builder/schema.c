#include "schema.h"

#include "util.h"

bool schema_keys(const struct value *map, const char *const *allowed, size_t n, const char *what, struct diags *d) {
	bool ok = true;
	for (size_t i = 0; i < map->n; i++) {
		bool known = false;
		for (size_t j = 0; j < n && !known; j++)
			known = streq(map->keys[i], allowed[j]);
		if (known)
			continue;
		ok = false;
		const char *hint = closest_match(map->keys[i], allowed, n);
		if (hint)
			diag_error(d, &map->key_locs[i], "unknown key '%s' in %s (did you mean '%s'?)", map->keys[i], what, hint);
		else
			diag_error(d, &map->key_locs[i], "unknown key '%s' in %s", map->keys[i], what);
	}
	return ok;
}

bool schema_is(const struct value *v, enum value_kind kind, const char *what, struct diags *d) {
	if (v->kind == kind)
		return true;
	diag_error(d, &v->loc, "%s must be %s, not %s", what, value_kind_article(kind), value_kind_article(v->kind));
	return false;
}

const struct srcloc *schema_loc(const struct value *map, const char *key) {
	const struct value *v = value_map_get(map, key);
	return v ? &v->loc : &map->loc;
}

const struct value *schema_get(const struct value *map, const char *key, enum value_kind kind, bool required, const char *what, struct diags *d) {
	const struct value *v = value_map_get(map, key);
	if (!v || value_is_null(v)) {
		if (required)
			diag_error(d, &map->loc, "missing required key '%s' in %s", key, what);
		return NULL;
	}
	char *name = xasprintf("'%s'", key);
	bool ok = schema_is(v, kind, name, d);
	free(name);
	return ok ? v : NULL;
}

const char *schema_str(const struct value *map, const char *key, bool required, const char *what, struct diags *d) {
	const struct value *v = schema_get(map, key, VALUE_SCALAR, required, what, d);
	return v ? v->text : NULL;
}
