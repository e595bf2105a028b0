/* Running the few external tools that are the right way to do a job
 * (grub-mkimage builds GRUB images; nothing else does). */
#pragma once
#include "diag.h"

/* Runs argv[0] (looked up in PATH) and waits. Its output is collected, not
 * printed; on failure the last line of it goes into the message. Returns 0,
 * or -ENOENT when the program is missing, or -EIO when it failed. */
int run_command(const char *const *argv, struct diags *d);
