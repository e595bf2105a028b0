#include "loaders.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "runcmd.h"
#include "util.h"

static const char *env_or(const char *name, const char *def) {
	const char *v = getenv(name);
	return v && *v ? v : def;
}

/* Copies `names` from the directory `from` into `dir`, each checked to be
 * there (Debian's `package` ships them). */
static int copy_from(const char *from, const char *const *names, size_t n, const char *dir, const char *package,
		     struct diags *d) {
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_free_ char *src = path_join(from, names[i]);
		_cleanup_free_ char *dst = path_join(dir, names[i]);
		if (!path_exists(src)) {
			diag_error(d, NULL, "cannot find '%s' (install Debian's %s package)", src, package);
			return -ENOENT;
		}
		r = copy_file(src, dst, 0644, d);
	}
	return r;
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
	if (r == 0)
		r = copy_from(mods, modules, ARRAY_SIZE(modules), dir, "syslinux-common", d);
	return r;
}

int loaders_copy_ipxe(const char *dir, struct diags *d) {
	static const char *const files[] = { IPXE_BIOS, IPXE_EFI };
	return copy_from(env_or("DLWS_IPXE_DIR", "/usr/lib/ipxe"), files, ARRAY_SIZE(files), dir, "ipxe", d);
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

int loaders_isolinux(struct isolinux_files *ret, struct diags *d) {
	static const char *const modules[] = { "ldlinux.c32", "menu.c32", "libutil.c32" };
	const char *dir = env_or("DLWS_ISOLINUX_DIR", "/usr/lib/ISOLINUX");
	const char *mods = env_or("DLWS_SYSLINUX_DIR", "/usr/lib/syslinux/modules/bios");
	*ret = (struct isolinux_files){
		.isolinux_bin = path_join(dir, "isolinux.bin"),
		.mbr = path_join(dir, "isohdpfx.bin"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(modules); i++)
		ret->modules[i] = path_join(mods, modules[i]);
	const char *all[] = { ret->isolinux_bin, ret->mbr, ret->modules[0], ret->modules[1], ret->modules[2] };
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (!path_exists(all[i])) {
			diag_error(d, NULL, "cannot find '%s' (install Debian's isolinux and syslinux-common packages)", all[i]);
			loaders_isolinux_release(ret);
			return -ENOENT;
		}
	return 0;
}

void loaders_isolinux_release(struct isolinux_files *f) {
	free(f->isolinux_bin);
	free(f->mbr);
	for (size_t i = 0; i < ARRAY_SIZE(f->modules); i++)
		free(f->modules[i]);
	*f = (struct isolinux_files){ 0 };
}

int loaders_efi_image(const char *out_path, const char *label, const char *work, long long epoch, struct diags *d) {
	const char *grub_dir = env_or("DLWS_GRUB_EFI_DIR", "/usr/lib/grub/x86_64-efi");
	if (!path_exists(grub_dir)) {
		diag_error(d, NULL, "cannot find '%s' (install Debian's grub-efi-amd64-bin package)", grub_dir);
		return -ENOENT;
	}
	_cleanup_free_ char *early = path_join(work, "grub-early.cfg");
	_cleanup_free_ char *efi = path_join(work, "BOOTX64.EFI");
	/* The same file system whether the firmware booted the El Torito image
	 * of a CD or the EFI partition of a stick: find it by label. */
	_cleanup_free_ char *cfg = xasprintf("search --no-floppy --set=root --label %s\n"
					     "set prefix=($root)/boot/grub\n"
					     "configfile $prefix/grub.cfg\n", label);
	int r = write_file_atomic(early, cfg, strlen(cfg), 0644, d);
	if (r < 0)
		return r;
	const char *mkimage[] = {
		"grub-mkimage", "--format=x86_64-efi", "--directory", grub_dir, "--output", efi,
		"--prefix", "/boot/grub", "--config", early,
		"part_gpt", "part_msdos", "iso9660", "fat", "search", "search_label", "normal", "configfile",
		"linux", "echo", "test", "serial", "terminal", "efi_gop", "efi_uga", "all_video", "gzio", "sleep",
		NULL,
	};
	r = run_command(mkimage, d);
	if (r < 0)
		return r;
	struct stat st;
	if (stat(efi, &st) < 0) {
		diag_error(d, NULL, "grub-mkimage wrote no '%s'", efi);
		return -EIO;
	}
	/* Room for the FAT itself and directories; 1 MiB steps. */
	long long kib = ((long long)st.st_size / 1024 + 512 + 1023) / 1024 * 1024;
	_cleanup_free_ char *kib_text = xasprintf("%lld", kib);
	_cleanup_free_ char *epoch_text = xasprintf("%lld", epoch);
	/* mtools and mkfs.fat take their timestamps from SOURCE_DATE_EPOCH. */
	setenv("SOURCE_DATE_EPOCH", epoch_text, 1);
	struct timespec times[2] = { { epoch, 0 }, { epoch, 0 } };
	utimensat(AT_FDCWD, efi, times, 0);
	unlink(out_path);
	const char *mkfs[] = { "mkfs.fat", "-C", "-n", "EFIBOOT", "-i", "d1e5b007", "--invariant", out_path, kib_text, NULL };
	const char *mmd[] = { "mmd", "-i", out_path, "::/EFI", "::/EFI/BOOT", NULL };
	const char *mcopy[] = { "mcopy", "-m", "-i", out_path, efi, "::/EFI/BOOT/BOOTX64.EFI", NULL };
	r = run_command(mkfs, d);
	if (r == 0)
		r = run_command(mmd, d);
	if (r == 0)
		r = run_command(mcopy, d);
	if (r < 0)
		unlink(out_path);
	return r;
}
