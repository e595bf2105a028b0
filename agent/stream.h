/* Streaming the OS image onto the target: raw, .bz2, .gz, .xz or .zst,
 * decompressed on the fly with libarchive's raw reader, never whole in memory.
 * The image is a file in the live system (the boot medium, or RAM) or an
 * http:// URL on the boot server, fetched by a client the live system has
 * (curl, else busybox wget) run as a child process writing into a pipe.
 * Every byte read is hashed in the same pass. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct stream_source {
	const char *image;    /* the path to open, or an http:// URL (conf_check_url) */
	bool is_url;
	const char *display;  /* what messages call it: the live path, or the URL */
	const char *sha256;   /* 64 lowercase hex digits the image as stored must hash to, or NULL */
	uint64_t size;        /* the decompressed size: exactly this many bytes are written */
};

struct stream_result {
	uint64_t bytes;       /* written */
	uint64_t read;        /* bytes of the image as stored (compressed) */
	double seconds;       /* from the first byte written to the final fsync */
	char filter[32];      /* "xz", "gzip", ... or "none" */
	char sha256[65];      /* of the bytes read */
	char client[16];      /* "curl" or "wget" for a URL; "" for a file */
};

struct stream;

/* Opens the image and reads its start, which tells the compression. For a
 * URL this starts the client and waits for its first bytes: an unreachable
 * server or a missing image fails here, before the target is touched. */
int stream_open(const struct stream_source *src, struct stream **ret, struct agent_err *e);

/* Writes the decompressed image to fd from offset 0 in STREAM_CHUNK pieces
 * (failing before it writes past src->size bytes), reads the rest of the
 * image, waits for the client, then checks in this order: the client's exit
 * status is 0, the sha256 of every byte read is src->sha256, exactly
 * src->size bytes were written; and fsyncs. `display` names the target. On
 * failure the target holds part of an image: the caller must make it
 * unbootable. */
int stream_copy(struct stream *s, int fd, const char *display, struct stream_result *ret,
		struct agent_err *e);

/* Frees the stream; a client still running is killed (and reaped).
 * Accepts NULL. */
void stream_free(struct stream *s);

enum { STREAM_CHUNK = 1 << 20 };
