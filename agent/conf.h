/* install.conf: what the builder tells the agent (KEY=VALUE lines, never
 * executed; '#' comments, optional "export ", one pair of quotes removed). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct install_conf {
	char device[AGENT_PATH_MAX];  /* DLWS_INSTALL_DEVICE: a path, or "auto" */
	bool wipe;                    /* DLWS_INSTALL_WIPE: 0 or 1 (default 0) */
	char image[AGENT_PATH_MAX];   /* DLWS_INSTALL_IMAGE: live path of the OS image */
	uint64_t image_size;          /* DLWS_INSTALL_IMAGE_SIZE: uncompressed bytes */
	char medium[AGENT_PATH_MAX];  /* DLWS_INSTALL_MEDIUM: boot device to exclude, or "" */
};

/* Parses `text`; `name` is used in messages ("install.conf:3: ..."). */
int conf_parse(const char *text, const char *name, struct install_conf *c, struct agent_err *e);
/* Reads and parses the file at `path`, naming it `name` in messages. */
int conf_load(const char *path, const char *name, struct install_conf *c, struct agent_err *e);
