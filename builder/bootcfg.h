/* Boot menus, written for the bootloaders we ship: syslinux (pxelinux and
 * isolinux), GRUB and iPXE. One model, so every firmware path boots the
 * same kernel, initrds and command line. */
#pragma once
#include <stddef.h>
#include "util.h"

struct boot_entry {
	char *label;            /* short name: role ("worker") or hostname */
	char *title;            /* menu text */
	char *kernel;           /* path from the boot root, no leading '/' */
	struct strv initrds;    /* loaded in this order, paths like kernel */
	char *cmdline;
	char *mac;              /* set for a node's own entry */
};

struct boot_menu {
	struct boot_entry *v;
	size_t n, cap;
	size_t default_entry;   /* index into v */
	unsigned timeout_s;
};
#define BOOT_MENU_INIT { 0 }

struct boot_entry *boot_menu_add(struct boot_menu *m, const char *label, const char *title, const char *kernel,
				 const char *cmdline);
void boot_menu_release(struct boot_menu *m);

/* A syslinux config: every entry, or, with `only`, that one entry booting
 * at once (a node's own pxelinux.cfg/01-<mac> file). `root` prefixes every
 * path ("" for pxelinux, which resolves from the TFTP root; "/" for isolinux). */
char *bootcfg_syslinux(const struct boot_menu *m, const struct boot_entry *only, const char *root);
/* A GRUB config: the menu, or one entry booting at once. */
char *bootcfg_grub(const struct boot_menu *m, const struct boot_entry *only);
/* An iPXE script: nodes chosen by ${mac}, the rest get the menu's default. */
char *bootcfg_ipxe(const struct boot_menu *m);
/* The syslinux/pxelinux name of a node's config file: "01-aa-bb-cc-dd-ee-ff". */
char *bootcfg_pxelinux_mac_name(const char *mac);
