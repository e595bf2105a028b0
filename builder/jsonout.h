/* json-c for the modules that write JSON (ignition, buildinfo, inspect,
 * certs --json): an allocation failure is fatal here as everywhere else
 * (util.h), so callers never check for NULL. */
#pragma once
#include <json-c/json.h>

#include "util.h"

static inline json_object *json_checked(json_object *o) {
	if (!o)
		die_oom();
	return o;
}

/* NULL becomes "". */
static inline json_object *json_str(const char *s) {
	return json_checked(json_object_new_string(s ? s : ""));
}

static inline json_object *json_str_array(const struct strv *v) {
	json_object *a = json_checked(json_object_new_array());
	for (size_t i = 0; i < v->n; i++)
		json_object_array_add(a, json_str(v->v[i]));
	return a;
}
