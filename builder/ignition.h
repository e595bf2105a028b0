/* Ignition configs: the one module that speaks JSON (json-c).
 *
 * Flatcar runs Ignition in its initramfs when the kernel command line has
 * flatcar.first_boot=1 (a live boot) or the installed disk says it is its
 * first boot; it reads /usr/share/oem/config.ign (the PXE "custom OEM"
 * route) or the OEM partition's config.ign. We write spec 3.3.0: every
 * current Flatcar accepts it, and Debian's ignition-validate checks it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define IGNITION_SPEC_VERSION "3.3.0"

struct ign_dropin {
	const char *name;       /* "10-foo.conf" */
	const char *contents;
};

struct ign_unit {
	const char *name;       /* "foo.service" */
	bool enabled;           /* as `systemctl enable` would: by its [Install] section */
	const char *contents;   /* the unit file; NULL for drop-ins only */
	const struct ign_dropin *dropins;
	size_t n_dropins;
};

/* The config text (pretty-printed JSON, keys in a fixed order, so identical
 * units give identical bytes). Never fails: allocation failure aborts. */
char *ignition_config(const struct ign_unit *units, size_t n);
