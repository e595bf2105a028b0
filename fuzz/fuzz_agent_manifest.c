/* The install agent's payload manifest check (agent/verify.c): the input
 * is the one manifest fragment under a fake root (the agent's --root, as
 * its tests run it) that holds a few payload files, so lines can match,
 * mismatch, or name what is missing.
 *
 * Inputs naming ".." are skipped: the agent reads the live system where the
 * root is "/", and here a path out of the fake root would hash whatever the
 * host has there (/proc, devices) instead of testing the parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "paths.h"
#include "util.h"
#include "verify.h"

static const char *const payload[][2] = {
	{ "root/usr/share/oem/dlws/install.conf", "DLWS_INSTALL_DEVICE=auto\n" },
	{ "root/usr/share/oem/dlws/rootfs/opt/bin/kubectl", "#!/bin/sh\necho kubectl stand-in\n" },
	{ "root/usr/share/oem/dlws/large/os.img.bz2", "" },
};

static void on_damaged(const char *path, const char *reason, void *userdata) {
	if (!path || !reason || !*reason)
		abort();
	(*(unsigned *)userdata)++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	for (size_t i = 0; i < sizeof(payload) / sizeof(payload[0]); i++)
		fuzz_write(payload[i][0], payload[i][1], strlen(payload[i][1]));
	root_set(fuzz_path("root"));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (memmem(data, size, "..", 2))
		return 0;
	fuzz_write("root" LAYOUT_LIVE_MANIFESTS "/shared", data, size);
	struct manifest *m = manifest_new();
	struct agent_err e;
	unsigned files = 0, damaged = 0, reported = 0;
	int r = manifest_verify(m, on_damaged, &reported, &files, &damaged, &e);
	if (r == 0 || r == -EBADMSG) {
		if (damaged != reported || damaged > files || (r == 0) != (damaged == 0))
			abort();
		(void)manifest_has(m, "/opt/bin/kubectl");
	}
	manifest_free(m);
	return 0;
}
