/* Strict text templates for configs.
 *
 *   {{ name }}  {{ node.ip }}  {{ pki.apiserver.cert | base64 }}
 *   {{ x | indent 4 }}  {{ x | yaml }}  {{ list | join "," }}
 *   {{ if cond }} .. {{ else }} .. {{ end }}   {{ if not cond }}
 *   {{ if a == "text" }}   {{ each k in cluster.ssh_keys }} .. {{ end }}
 *
 * An undefined name is an error at TEMPLATE:LINE:COL, never an empty string.
 * A value containing a newline inserted without a filter that makes it safe
 * (indent, yaml, base64) is an error: it would change the YAML structure.
 * A line holding only a block tag ({{ if }}, {{ else }}, {{ end }},
 * {{ each }}) leaves no trace in the output, so YAML indentation is kept. */
#pragma once
#include <stddef.h>
#include "buf.h"
#include "diag.h"
#include "value.h"

/* Renders `src` (named `name` in messages; must outlive nothing) with
 * `ctx` (a map). Appends to `out`. Returns 0 or -EINVAL (messages in d). */
int template_render(const char *name, const char *src, size_t len, const struct value *ctx, struct buf *out, struct diags *d);
