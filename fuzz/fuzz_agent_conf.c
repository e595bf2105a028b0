/* The install agent's install.conf parser (agent/conf.c), and its URL
 * check on each line: the file comes from the boot medium. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *text = fuzz_strdup(data, size);
	struct install_conf c;
	struct agent_err e;
	if (conf_parse(text, "install.conf", &c, &e) == 0) {
		/* What the agent goes on to use must be terminated and as promised. */
		if (!memchr(c.device, '\0', sizeof(c.device)) || !memchr(c.image, '\0', sizeof(c.image)) ||
		    !memchr(c.medium, '\0', sizeof(c.medium)) || c.image_sha256[64] != '\0')
			abort();
		char why[256];
		if (c.image_is_url && (conf_check_url(c.image, why, sizeof(why)) < 0 || !c.image_sha256[0]))
			abort();
	}
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char why[256];
		(void)conf_check_url(line, why, sizeof(why));
	}
	free(text);
	return 0;
}
