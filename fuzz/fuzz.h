/* Helpers shared by the libFuzzer harnesses (fuzz/fuzz_*.c). Plain libc
 * only: the agent's harnesses do not link the builder's library.
 *
 * Parsers that take a path read their input from one scratch directory per
 * process, made on first use and removed at exit, so an iteration never
 * leaves a file behind and never touches the checkout. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The process's scratch directory ("/tmp/dlws-fuzz.XXXXXX", under $TMPDIR
 * when set); aborts when it cannot be made: a harness without it would
 * test nothing. */
const char *fuzz_dir(void);
/* fuzz_dir() + "/" + rel, in a static buffer overwritten by the next call. */
const char *fuzz_path(const char *rel);
/* Writes `len` bytes to fuzz_dir()/rel (truncating), creating its parent
 * directories; aborts on failure. Returns the full path (as fuzz_path). */
const char *fuzz_write(const char *rel, const void *data, size_t len);
/* A NUL-terminated copy of the input; the caller frees it. */
char *fuzz_strdup(const uint8_t *data, size_t len);

/* libFuzzer's entry points, which every harness defines. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Harnesses print the diagnostics of each input when FUZZ_VERBOSE is set
 * (for triage: `FUZZ_VERBOSE=1 build-fuzz/fuzz_recipe FILE`). */
