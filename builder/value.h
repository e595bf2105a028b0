/* A tree of YAML-like values: scalars, lists and maps with source locations.
 * Parsed documents (recipe, cluster values) and the template context are
 * both values, so templates see exactly what the user wrote. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "diag.h"

enum value_kind { VALUE_SCALAR, VALUE_LIST, VALUE_MAP };

struct value {
	enum value_kind kind;
	char *text;             /* SCALAR: owned text */
	bool plain;             /* SCALAR: unquoted in the source (so may be a bool/int/null) */
	struct value **items;   /* LIST items, or MAP values (owned) */
	char **keys;            /* MAP keys, parallel to items (owned) */
	struct srcloc *key_locs;/* MAP: where each key was written */
	size_t n, cap;
	struct srcloc loc;      /* where the value starts */
};

struct value *value_new_scalar(const char *text, const struct srcloc *loc);
struct value *value_new_list(const struct srcloc *loc);
struct value *value_new_map(const struct srcloc *loc);
void value_free(struct value *v);
struct value *value_copy(const struct value *v);

/* Adds or replaces `key` (copied); takes ownership of `item`. */
void value_map_set(struct value *map, const char *key, struct value *item);
void value_map_set_str(struct value *map, const char *key, const char *text);
/* NULL when absent or `map` is not a map. */
struct value *value_map_get(const struct value *map, const char *key);
/* Index of key or -1. */
long value_map_index(const struct value *map, const char *key);
void value_list_push(struct value *list, struct value *item);
/* Looks up a dotted path ("node.ip", "nodes.0.ip"); NULL when any part is missing. */
struct value *value_lookup(const struct value *root, const char *path);
/* One step of a dotted path, the `len` bytes at `part`: a map's key, or a
 * list's index. */
struct value *value_step(const struct value *v, const char *part, size_t len);
/* Sets a dotted path, creating maps as needed (for --set KEY=VALUE). */
int value_set_path(struct value *root, const char *path, struct value *item);

/* Scalar interpretations of plain YAML scalars. Return false when `v` is
 * not a scalar of that type. */
bool value_is_null(const struct value *v);
/* Feeds `v` to `h` unambiguously (kinds, plainness, texts and keys with
 * their lengths, in order): equal hashes, equal trees. With `keep`, a map
 * entry whose key it refuses is left out, with all below it. */
struct sha256;
void value_hash(const struct value *v, bool (*keep)(const char *key, void *ctx), void *ctx, struct sha256 *h);
bool value_as_bool(const struct value *v, bool *ret);
bool value_as_long(const struct value *v, long *ret);
/* Truthiness for template conditions: a non-empty list/map, or a scalar
 * that is not empty, null, false/no/off or 0. */
bool value_truthy(const struct value *v);
const char *value_kind_name(enum value_kind k);
/* "a string", "a list", "a map": for messages ("must be a map, not a list"). */
const char *value_kind_article(enum value_kind k);
