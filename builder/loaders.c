#include "loaders.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cache.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
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

/* The cache key of an image `programs` make from grub's modules: `what`
 * says how (arguments, label, time), then the sums of every file of
 * `grub_dir` and of each program as found in PATH, so an upgraded package
 * makes the image anew. Empty when a file cannot be read (no caching). */
static void image_key(const char *what, const char *grub_dir, const char *const *programs, char key[SHA256_HEX_LEN + 1]) {
	struct buf b = BUF_INIT;
	struct strv files = STRV_INIT;
	struct diags quiet = DIAGS_INIT;
	buf_printf(&b, "dlws-mkimage %s loader image\n%s\n", DLWS_VERSION, what);
	bool ok = tree_list(grub_dir, &files, &quiet) == 0;
	for (size_t i = 0; i < files.n && ok; i++) {
		_cleanup_free_ char *full = path_join(grub_dir, files.v[i]);
		char sum[SHA256_HEX_LEN + 1];
		ok = filesum(full, sum, NULL, &quiet) == 0;
		buf_printf(&b, "%s %s\n", sum, files.v[i]);
	}
	const char *path = getenv("PATH");
	for (size_t i = 0; programs[i] && ok; i++) {
		bool found = false;
		_cleanup_free_ char *dirs = xstrdup(path && *path ? path : "/usr/bin:/bin:/usr/sbin:/sbin");
		char *save = NULL;
		for (char *dir = strtok_r(dirs, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
			_cleanup_free_ char *full = path_join(dir, programs[i]);
			char sum[SHA256_HEX_LEN + 1];
			if (access(full, X_OK) == 0 && filesum(full, sum, NULL, &quiet) == 0) {
				buf_printf(&b, "%s %s\n", sum, programs[i]);
				found = true;
			}
		}
		ok = found;
	}
	if (ok)
		sha256_hex(b.data, b.len, key);
	else
		key[0] = '\0';
	strv_release(&files);
	diags_release(&quiet);
	buf_release(&b);
}

int loaders_grub_netboot(const char *out_path, struct cache *cache, struct diags *d) {
	const char *grub_dir = env_or("DLWS_GRUB_EFI_DIR", "/usr/lib/grub/x86_64-efi");
	if (!path_exists(grub_dir)) {
		diag_error(d, NULL, "cannot find '%s' (install Debian's grub-efi-amd64-bin package)", grub_dir);
		return -ENOENT;
	}
	static const char *const programs[] = { "grub-mkimage", NULL };
	char key[SHA256_HEX_LEN + 1] = "";
	if (cache && cache->dir) {
		image_key("grub netboot", grub_dir, programs, key);
		int k = key[0] ? cache_fetch(cache, key, out_path, 0644, d) : 0;
		if (k != 0)
			return k < 0 ? k : 0;
	}
	const char *argv[] = {
		"grub-mkimage", "--format=x86_64-efi", "--directory", grub_dir, "--output", out_path,
		/* The prefix is on the server the image came from: grub.cfg at the bundle root. */
		"--prefix", "",
		"efinet", "tftp", "http", "net", "normal", "configfile", "linux", "echo", "test",
		"serial", "terminal", "efi_gop", "efi_uga", "all_video", "gzio", "sleep", "regexp",
		NULL,
	};
	int r = run_command(argv, d);
	if (r == 0 && key[0])
		cache_put(cache, key, out_path, d);
	return r;
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

int loaders_efi_image(const char *out_path, const char *label, const char *work, long long epoch, struct cache *cache,
		      struct diags *d) {
	const char *grub_dir = env_or("DLWS_GRUB_EFI_DIR", "/usr/lib/grub/x86_64-efi");
	if (!path_exists(grub_dir)) {
		diag_error(d, NULL, "cannot find '%s' (install Debian's grub-efi-amd64-bin package)", grub_dir);
		return -ENOENT;
	}
	static const char *const programs[] = { "grub-mkimage", "mkfs.fat", "mmd", "mcopy", NULL };
	char key[SHA256_HEX_LEN + 1] = "";
	if (cache && cache->dir) {
		_cleanup_free_ char *what = xasprintf("efi image\nlabel %s\nepoch %lld", label, epoch);
		image_key(what, grub_dir, programs, key);
		int k = key[0] ? cache_fetch(cache, key, out_path, 0644, d) : 0;
		if (k != 0)
			return k < 0 ? k : 0;
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
	else if (key[0])
		cache_put(cache, key, out_path, d);
	return r;
}
