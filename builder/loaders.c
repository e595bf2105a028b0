#include "loaders.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "runcmd.h"
#include "util.h"

static const char *env_or(const char *name, const char *def) {
	const char *v = getenv(name);
	return v && *v ? v : def;
}

int loaders_copy_pxelinux(const char *dir, struct diags *d) {
	static const char *const modules[] = { "ldlinux.c32", "menu.c32", "libutil.c32" };
	const char *pxelinux = env_or("DLWS_PXELINUX", "/usr/lib/PXELINUX/pxelinux.0");
	const char *mods = env_or("DLWS_SYSLINUX_DIR", "/usr/lib/syslinux/modules/bios");
	if (!path_exists(pxelinux)) {
		diag_error(d, NULL, "cannot find '%s' (install Debian's pxelinux package)", pxelinux);
		return -ENOENT;
	}
	_cleanup_free_ char *dst = path_join(dir, "pxelinux.0");
	int r = copy_file(pxelinux, dst, 0644, d);
	for (size_t i = 0; i < ARRAY_SIZE(modules) && r == 0; i++) {
		_cleanup_free_ char *src = path_join(mods, modules[i]);
		_cleanup_free_ char *out = path_join(dir, modules[i]);
		if (!path_exists(src)) {
			diag_error(d, NULL, "cannot find '%s' (install Debian's syslinux-common package)", src);
			return -ENOENT;
		}
		r = copy_file(src, out, 0644, d);
	}
	return r;
}

int loaders_grub_netboot(const char *out_path, struct diags *d) {
	const char *grub_dir = env_or("DLWS_GRUB_EFI_DIR", "/usr/lib/grub/x86_64-efi");
	if (!path_exists(grub_dir)) {
		diag_error(d, NULL, "cannot find '%s' (install Debian's grub-efi-amd64-bin package)", grub_dir);
		return -ENOENT;
	}
	const char *argv[] = {
		"grub-mkimage", "--format=x86_64-efi", "--directory", grub_dir, "--output", out_path,
		/* The prefix is on the server the image came from: grub.cfg at the bundle root. */
		"--prefix", "",
		"efinet", "tftp", "http", "net", "normal", "configfile", "linux", "echo", "test",
		"serial", "terminal", "efi_gop", "efi_uga", "all_video", "gzio", "sleep", "regexp",
		NULL,
	};
	return run_command(argv, d);
}
