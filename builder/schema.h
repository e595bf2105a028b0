/* Checks on parsed YAML documents shared by the recipe and cluster
 * loaders: every finding is reported at the place it was written, and the
 * caller keeps going so that one run reports every problem. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "diag.h"
#include "value.h"

/* Reports each key of `map` that is not in `allowed`, with a did-you-mean.
 * `what` names the map in messages ("recipe", "outputs.iso"). Returns
 * false when any key was unknown. */
bool schema_keys(const struct value *map, const char *const *allowed, size_t n, const char *what, struct diags *d);

/* `v` must be of `kind`; `what` names it ("'outputs'"). */
bool schema_is(const struct value *v, enum value_kind kind, const char *what, struct diags *d);

/* The scalar text at map[key]; NULL when absent (an error when `required`)
 * or not a scalar (an error). A null scalar counts as absent. */
const char *schema_str(const struct value *map, const char *key, bool required, const char *what, struct diags *d);
/* map[key] when it is of `kind`; NULL when absent (error when required) or mistyped (error). */
const struct value *schema_get(const struct value *map, const char *key, enum value_kind kind, bool required, const char *what, struct diags *d);
/* Where map[key]'s value is, or the map itself when absent. */
const struct srcloc *schema_loc(const struct value *map, const char *key);
