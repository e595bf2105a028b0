/* install.conf: what the builder tells the agent (KEY=VALUE lines, never
 * executed; '#' comments, optional "export ", one pair of quotes removed). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct install_conf {
	char device[AGENT_PATH_MAX];  /* DLWS_INSTALL_DEVICE: a path, or "auto" */
	bool wipe;                    /* DLWS_INSTALL_WIPE: 0 or 1 (default 0) */
	char image[AGENT_PATH_MAX];   /* DLWS_INSTALL_IMAGE: live path of the OS image, or an http:// URL */
	bool image_is_url;            /* it is a URL (checked: conf_check_url) */
	uint64_t image_size;          /* DLWS_INSTALL_IMAGE_SIZE: uncompressed bytes */
	char image_sha256[65];        /* DLWS_INSTALL_IMAGE_SHA256: of the image file as stored (compressed),
				       * 64 lowercase hex digits; "" when not given (then a URL is refused) */
	char medium[AGENT_PATH_MAX];  /* DLWS_INSTALL_MEDIUM: boot device to exclude, or "" */
};

/* An http:// URL the agent accepts: "http://" host [":" port] "/" path, the
 * host a name or an IPv4 address ([A-Za-z0-9.-]), the path of letters,
 * digits, "-._~/+,=:@" and %XX escapes: nothing a shell or curl's URL
 * globbing would interpret. Returns 0, or -EINVAL with why[] saying what is
 * wrong (lowercase, for "install.conf:N: DLWS_INSTALL_IMAGE: <why>"). */
int conf_check_url(const char *url, char *why, size_t n);

/* Parses `text`; `name` is used in messages ("install.conf:3: ..."). */
int conf_parse(const char *text, const char *name, struct install_conf *c, struct agent_err *e);
/* Reads and parses the file at `path`, naming it `name` in messages. */
int conf_load(const char *path, const char *name, struct install_conf *c, struct agent_err *e);
