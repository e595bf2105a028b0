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

/* Where each piece of a rendered text came from in its template, so that
 * a check of the rendered text (YAML, cloud-config schema) can point at the
 * template line the user edits. Rendered lines count from the start of
 * what the render appended, not from the start of `out`. */
struct template_map;

/* template_render that also returns the map (owned by the caller, set
 * only on success). `name` must outlive the map: its locations point at it. */
int template_render_map(const char *name, const char *src, size_t len, const struct value *ctx, struct buf *out,
			struct template_map **ret_map, struct diags *d);
void template_map_free(struct template_map *m);
/* The template place of rendered `line`:`col` (1-based; col 0 means the
 * line's start): inside literal text the very character, inside a value
 * the tag that inserted it ('{{'), even when the value spans several
 * lines. Lines past the end map to the end. The result's file is the
 * template's name; line 0 when nothing was rendered. */
struct srcloc template_map_loc(const struct template_map *m, int line, int col);
/* Appends each diagnostic of `from` (located in the rendered text) to `to`
 * at its template place, keeping its level and message. */
void template_map_diags(const struct template_map *m, const struct diags *from, struct diags *to);
