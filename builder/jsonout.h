/* json-c for the modules that write JSON (ignition, buildinfo, inspect,
 * and every command's --json): an allocation failure is fatal here as
 * everywhere else (util.h), so callers never check for NULL.
 *
 * What --json prints is one convention, documented in the man page (JSON
 * OUTPUT): one object, snake_case keys, times as ISO 8601 UTC strings
 * (json_time), sizes in bytes as numbers, null for what is absent, lists
 * always arrays. Keys are only ever added. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
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

static inline json_object *json_i64(int64_t v) {
	return json_checked(json_object_new_int64(v));
}

static inline json_object *json_boolean(bool v) {
	return json_checked(json_object_new_boolean(v));
}

/* "2026-12-01T21:00:00Z" */
static inline json_object *json_time(time_t t) {
	char s[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_str(s);
}

/* A command's --json answer on standard output, and frees it. */
static inline void json_print(json_object *root) {
	puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}
