/* A file's contents as libisofs reads them while writing an image.
 *
 * libisofs's own file streams read a source file one 2 KiB sector per
 * read(2), 100,000 system calls for a 200 MB medium. This stream reads in
 * large pieces and hands sectors out of memory.
 *
 * Its identity (libisofs stores data once for streams of one identity) is
 * `id`: the caller gives one per contents, so that a file added twice, or
 * two files alike, take their space once.
 */
#pragma once
#include <stdint.h>
#include <sys/types.h>
/* Without libburn, libisofs declares struct burn_source itself. */
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>

/* A stream of the file at `path`, of `size` bytes as the caller saw it
 * (libisofs pads or cuts a file that changed: the caller checks it
 * unchanged after writing). Returns a libisofs error code < 0 on failure. */
int isofile_stream_new(const char *path, uint64_t size, ino_t id, IsoStream **ret);
