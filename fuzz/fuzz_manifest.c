/* The payload manifest as inspect and verify read it back from an output
 * (reader.c, reader_manifest_parse): "<sha256> <size> <mode> /<path>". */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fuzz.h"
#include "reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct reader_manifest m = { 0 };
	struct diags d = DIAGS_INIT;
	if (reader_manifest_parse((const char *)data, size, "manifest", &m, &d) == 0) {
		uint64_t total = 0;
		for (size_t i = 0; i < m.n; i++) {
			/* What the reader hands on must be a name it would accept. */
			if (!reader_name_ok(m.v[i].path) || m.v[i].mode > 07777 || strlen(m.v[i].sha256) != SHA256_HEX_LEN)
				abort();
			total += m.v[i].size;
		}
		if (total != m.total)
			abort();
		reader_manifest_release(&m);
	} else if (d.n_errors == 0) {
		abort();
	}
	if (getenv("FUZZ_VERBOSE"))
		diags_print(&d, stderr);
	diags_release(&d);
	return 0;
}
