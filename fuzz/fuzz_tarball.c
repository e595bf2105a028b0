/* PXE bundle tars as `publish` reads them (tarball.c, tarball_read) before
 * a byte lands on the boot server: names, links, types and sizes checked,
 * SHA256SUMS held in memory. Check-only (out NULL) as publish's first
 * pass, then extraction into a fresh directory, emptied again after. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diag.h"
#include "fsutil.h"
#include "fuzz.h"
#include "tarball.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *tar = xstrdup(fuzz_write("bundle.tar", data, size));
	struct tarball_contents c = TARBALL_CONTENTS_INIT;
	struct diags d = DIAGS_INIT;
	if (tarball_read(tar, NULL, SHA256SUMS_NAME, 1 << 16, &c, &d) == 0) {
		/* Accepted by the check: extraction must agree and stay inside. */
		char *out = xstrdup(fuzz_path("extract"));
		struct tarball_contents x = TARBALL_CONTENTS_INIT;
		if (mkdir(out, 0700) < 0)
			abort();
		if (tarball_read(tar, out, SHA256SUMS_NAME, 1 << 16, &x, &d) == 0) {
			if (x.files.n != c.files.n || (!x.held) != (!c.held))
				abort();
			tarball_contents_release(&x);
		}
		rm_rf(out);
		free(out);
		tarball_contents_release(&c);
	}
	diags_release(&d);
	free(tar);
	return 0;
}
