/* Streaming the OS image onto the target: raw, .bz2, .gz, .xz or .zst,
 * decompressed on the fly with libarchive's raw reader, never whole in memory. */
#pragma once
#include <stdint.h>

#include "util.h"

struct stream_result {
	uint64_t bytes;     /* written */
	double seconds;     /* including the final fsync */
	char filter[32];    /* "xz", "gzip", ... or "none" */
};

/* Writes the decompressed image to fd from offset 0 in STREAM_CHUNK pieces,
 * then fsyncs. Fails, before writing past it, when the image is larger than
 * `limit` bytes. `display` names the target in messages. */
int stream_image(const char *image, const char *image_display, int fd, const char *display,
		 uint64_t limit, struct stream_result *ret, struct agent_err *e);

enum { STREAM_CHUNK = 1 << 20 };
