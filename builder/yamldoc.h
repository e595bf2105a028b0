/* The one module that speaks libyaml: YAML text in, a value tree out. */
#pragma once
#include <stddef.h>
#include "diag.h"
#include "value.h"

/* Parses one YAML document. `name` is used in messages and stored in the
 * locations of the tree, so it must outlive the tree. Duplicate map keys,
 * anchors/aliases and multiple documents are errors. An empty document is
 * an empty map. Returns 0 or -EINVAL (messages in d). */
int yaml_parse(const char *name, const char *text, size_t len, struct value **ret, struct diags *d);
/* Checks every document of a YAML stream (Kubernetes manifests put several
 * in one file, separated by '---') with the same rules; keeps none. */
int yaml_check_stream(const char *name, const char *text, size_t len, struct diags *d);
/* Quotes `s` as a YAML double-quoted scalar into a new string. */
char *yaml_quote(const char *s);
