/* The cloud-config schema check (cloudconfig.c, over schema.c's helpers):
 * a rendered cloud-config parsed as build.c parses it, then checked. */
#include <stdlib.h>

#include "cloudconfig.h"
#include "diag.h"
#include "fuzz.h"
#include "value.h"
#include "yamldoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const char *text = (const char *)data;
	struct diags d = DIAGS_INIT;
	struct value *doc = NULL;
	(void)cloudconfig_is_header(text, size);
	if (yaml_parse("user_data", text, size, &doc, &d) == 0) {
		size_t before = d.n_errors;
		int r = cloudconfig_check(doc, &d);
		/* Its result and its findings must agree. */
		if ((r < 0) != (d.n_errors > before))
			abort();
	}
	value_free(doc);
	if (getenv("FUZZ_VERBOSE"))
		diags_print(&d, stderr);
	diags_release(&d);
	return 0;
}
