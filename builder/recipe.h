/* Recipes: what to build for one role, as YAML (see recipes/ and the
 * docs in README.md). Paths are resolved relative to the recipe file. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cluster.h"
#include "compress.h"
#include "diag.h"
#include "layout.h"
#include "pki.h"
#include "value.h"

/* Where both Flatcar stable and beta run a cloud-config from at every boot
 * (coreos-cloudinit through user-config.target), and flatcar-install -c
 * puts it: the dest of a recipe's cloud-config. */
#define RECIPE_CLOUD_CONFIG_DEST "/" LAYOUT_USER_DATA

struct recipe_config {
	char *template;         /* resolved path */
	char *dest;             /* absolute path on the node */
	unsigned mode;
	struct srcloc loc;
};

struct recipe_file {
	char *src;              /* resolved path */
	char *dest;
	unsigned mode;
	char sha256[65];
	struct srcloc loc;
};

/* A systemd-sysext image for the node (builder/sysext.h): a prebuilt one
 * (`src`, pinned), or one the builder makes from pinned files. */
struct recipe_sysext {
	char *name;             /* image name: /etc/extensions/<name>.raw, extension-release.<name> */
	char *src;              /* prebuilt: the image (resolved path); NULL when made from files */
	char sha256[65];        /* prebuilt: its pin */
	char *version;          /* made: in its file name, <name>-<version>-x86-64.raw */
	char *id;               /* made: extension-release ID= ("flatcar", or "_any") */
	char *sysext_level;     /* made: SYSEXT_LEVEL= ("1.0"); NULL with ID=_any */
	char *architecture;     /* made: ARCHITECTURE= ("x86-64", or "_any") */
	bool reload_manager;    /* made: EXTENSION_RELOAD_MANAGER=1 */
	struct recipe_file *files;      /* made: dests under /usr or /opt */
	size_t n_files;
	struct srcloc loc, name_loc;
};

struct recipe_overlay {
	char *dir;
	struct srcloc loc;
};

struct recipe {
	char *path;             /* owned; every srcloc's file points here */
	char *name;
	enum node_role role;
	char *cluster_path;
	struct srcloc cluster_loc;
	struct {
		char *kernel, *initrd, *cmdline, *image;
	} base;
	struct {
		char *dir;
		enum pki_key_type key_type;
		bool include_ca_key;
	} pki;
	struct recipe_config *configs;
	size_t n_configs;
	struct recipe_file *files;
	size_t n_files;
	struct recipe_file *images;     /* container images (docker save or OCI tarballs); dest unused */
	size_t n_images;
	char *container_runtime;        /* containerd (default) | docker: where images are imported */
	struct recipe_overlay *overlays;
	size_t n_overlays;
	struct recipe_sysext *sysexts;  /* systemd-sysext images, in recipe order */
	size_t n_sysexts;
	struct srcloc install_loc;
	struct {
		bool enabled;
		char *device;   /* a path, or "auto" */
		char *after;    /* poweroff | reboot | shell */
		bool wipe;
	} install;
	struct compression compression; /* "compression:": of every payload segment */
	struct srcloc compression_loc;
	struct {
		char *initrd;   /* outputs.initrd.path: a directory of payload segments */
		uint64_t max_initrd;    /* outputs.initrd.max_size, 0 = no limit */
		struct srcloc initrd_loc;
		char *pxe;      /* outputs.pxe.path: a TFTP/HTTP root */
		bool pxe_tar;   /* outputs.pxe.tar: also <path>.tar of the tree (default off) */
		uint64_t max_pxe_initrd;        /* outputs.pxe.max_initrd, 0 = no limit */
		struct srcloc pxe_loc;
		char *iso;      /* outputs.iso.path: a hybrid ISO (CD and USB stick, BIOS and UEFI) */
		char *iso_label;        /* volume label; default DLWS_<NAME> */
		uint64_t max_iso;       /* outputs.iso.max_size, 0 = no limit */
		uint64_t iso_large;     /* outputs.iso.large_file_size: files this big stay on the medium */
		struct srcloc iso_loc;
		char *disk;     /* outputs.disk.path: a directory of pre-installed disks, one per node */
		bool disk_qcow2;        /* outputs.disk.format: qcow2 (else raw: <hostname>.img) */
		uint64_t disk_size;     /* outputs.disk.size: grow each disk (and ROOT) to this; 0 = as the OS image */
		struct srcloc disk_loc, disk_size_loc;
	} outputs;
	struct value *values;   /* recipe "values:" (owned, may be empty map) */
	struct value *doc;      /* owned */
};

/* Loads and validates a recipe, including that every file it names exists.
 * All problems are reported before returning -EINVAL. */
int recipe_load(const char *path, struct recipe **ret, struct diags *d);
void recipe_free(struct recipe *r);

/* "4G", "512M", "100K", "1000" -> bytes. */
int parse_size(const char *text, uint64_t *ret);
