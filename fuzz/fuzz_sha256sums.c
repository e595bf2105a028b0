/* SHA256SUMS files (fsutil.c, sha256sums_parse): the pins recipes look
 * binaries up in, and the sums inside every output that verify checks. */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fsutil.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct sha256sums s = SHA256SUMS_INIT;
	struct diags d = DIAGS_INIT;
	if (sha256sums_parse((const char *)data, size, "SHA256SUMS", &s, &d) == 0) {
		for (size_t i = 0; i < s.n; i++) {
			/* Sorted, each listed once, and found by its own name. */
			if (i > 0 && strcmp(s.v[i - 1].path, s.v[i].path) >= 0)
				abort();
			if (sha256sums_find(&s, s.v[i].path) != &s.v[i] || !path_is_plain_relative(s.v[i].path))
				abort();
		}
		sha256sums_release(&s);
	} else if (d.n_errors == 0) {
		abort();
	}
	if (getenv("FUZZ_VERBOSE"))
		diags_print(&d, stderr);
	diags_release(&d);
	return 0;
}
