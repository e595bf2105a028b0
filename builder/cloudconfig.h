/* The schema of a cloud-config as Flatcar's coreos-cloudinit reads it.
 *
 * coreos-cloudinit silently ignores keys it does not know (a misspelt
 * `drop-ins` simply never reaches systemd) and drops a whole config whose
 * values do not fit its types. This check finds both at build time. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "diag.h"
#include "value.h"

/* Checks `doc` (a parsed cloud-config, without its '#cloud-config' line
 * mattering) and reports every problem at its place in `doc`: errors for
 * what coreos-cloudinit ignores, rejects or misreads, warnings for keys it
 * calls deprecated. Returns 0 or -EINVAL when any error was reported. */
int cloudconfig_check(const struct value *doc, struct diags *d);

/* Whether coreos-cloudinit takes `text` for a cloud-config: its first line
 * is '#cloud-config', trailing blanks aside. */
bool cloudconfig_is_header(const char *text, size_t len);
