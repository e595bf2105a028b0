/* inspect and verify on a hostile output (reader.c, inspect.c): the input
 * is one file as `dlws-mkimage inspect FILE` would get it: reader_open
 * sniffs it (an ISO, a PXE tar, a .cpio.gz segment), reads every archive
 * and every segment inside it, then both renderings of the model and the
 * checksum verification run over what was read.
 *
 * Disk images are left out: disk_read starts a libguestfs appliance (a
 * VM), seconds per input, and what parses the disk there is libguestfs's. */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fuzz.h"
#include "inspect.h"
#include "reader.h"
#include "util.h"

static bool looks_like_disk(const uint8_t *data, size_t size) {
	return (size >= 4 && memcmp(data, "QFI\xfb", 4) == 0) || (size >= 520 && memcmp(data + 512, "EFI PART", 8) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (looks_like_disk(data, size))
		return 0;
	const char *path = fuzz_write("output", data, size);
	struct reader_output o = READER_OUTPUT_INIT;
	struct diags d = DIAGS_INIT;
	if (reader_open(path, &o, &d) == 0) {
		/* A fixed "now": certificate expiry must not make runs differ. */
		struct inspect_opts opts = { .manifest_entries = true, .config_text = true, .now = 1767225600 };
		struct strv problems = STRV_INIT;
		free(inspect_json(&o, &opts, &problems));
		free(inspect_text(&o, &opts, &problems));
		size_t checked = 0, elsewhere = 0;
		reader_verify(&o, &problems, &checked, &elsewhere);
		strv_release(&problems);
		for (size_t i = 0; i < o.n; i++)
			if (!reader_name_ok(o.files[i].path))
				abort();
		for (size_t s = 0; s < o.n_segs; s++)
			for (size_t i = 0; i < o.segs[s].n; i++)
				if (!reader_name_ok(o.segs[s].files[i].path))
					abort();
		reader_release(&o);
	}
	if (getenv("FUZZ_VERBOSE"))
		diags_print(&d, stderr);
	diags_release(&d);
	return 0;
}
