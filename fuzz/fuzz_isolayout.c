/* The ISO layout kept with a spare in the build cache (isolayout.c,
 * isolayout_parse): a file on disk that decides which bytes of the next
 * ISO are not written, so whatever it holds must yield only extents that
 * are whole blocks' starts, not empty, not past 2^64, with a full sum; and
 * parse(format(parse(x))) is parse(x). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "isolayout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct iso_extents e, back;
	isolayout_parse(text, &e);
	for (size_t i = 0; i < e.n; i++) {
		const struct iso_extent *x = &e.v[i];
		if (x->offset % 2048 || x->size == 0 || x->offset + x->size < x->offset ||
		    strlen(x->sum) != SHA256_HEX_LEN || strspn(x->sum, "0123456789abcdef") != SHA256_HEX_LEN ||
		    !isolayout_has(&e, x))
			abort();
	}
	char *again = isolayout_format(&e);
	isolayout_parse(again, &back);
	if (back.n != e.n)
		abort();
	for (size_t i = 0; i < e.n; i++)
		if (back.v[i].offset != e.v[i].offset || back.v[i].size != e.v[i].size || strcmp(back.v[i].sum, e.v[i].sum))
			abort();
	free(again);
	isolayout_release(&back);
	isolayout_release(&e);
	free(text);
	return 0;
}
