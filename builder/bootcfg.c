#include "bootcfg.h"

#include <string.h>

#include "buf.h"

struct boot_entry *boot_menu_add(struct boot_menu *m, const char *label, const char *title, const char *kernel,
				 const char *cmdline) {
	GROW(m->v, m->cap, m->n + 1);
	struct boot_entry *e = &m->v[m->n++];
	*e = (struct boot_entry){
		.label = xstrdup(label),
		.title = xstrdup(title),
		.kernel = xstrdup(kernel),
		.cmdline = xstrdup(cmdline),
	};
	return e;
}

void boot_menu_release(struct boot_menu *m) {
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].label);
		free(m->v[i].title);
		free(m->v[i].kernel);
		free(m->v[i].cmdline);
		free(m->v[i].mac);
		strv_release(&m->v[i].initrds);
	}
	free(m->v);
	*m = (struct boot_menu)BOOT_MENU_INIT;
}

static void syslinux_entry(struct buf *b, const struct boot_entry *e, const char *root) {
	buf_printf(b, "\nLABEL %s\n  MENU LABEL %s\n  KERNEL %s%s\n  INITRD ", e->label, e->title, root, e->kernel);
	/* syslinux loads a comma-separated INITRD list one after the other. */
	for (size_t i = 0; i < e->initrds.n; i++)
		buf_printf(b, "%s%s%s", i ? "," : "", root, e->initrds.v[i]);
	buf_printf(b, "\n  APPEND %s\n", e->cmdline);
}

char *bootcfg_syslinux(const struct boot_menu *m, const struct boot_entry *only, const char *root) {
	struct buf b = BUF_INIT;
	buf_puts(&b, "# written by dlws-mkimage\n");
	if (only) {
		buf_printf(&b, "DEFAULT %s\nPROMPT 0\nTIMEOUT 1\n", only->label);
		syslinux_entry(&b, only, root);
		return buf_steal(&b, NULL);
	}
	/* TIMEOUT is in tenths of a second. */
	buf_printf(&b, "UI menu.c32\nMENU TITLE dlws-mkimage\nDEFAULT %s\nPROMPT 0\nTIMEOUT %u\n", m->v[m->default_entry].label,
		   m->timeout_s * 10);
	for (size_t i = 0; i < m->n; i++)
		syslinux_entry(&b, &m->v[i], root);
	return buf_steal(&b, NULL);
}

static void grub_entry(struct buf *b, const struct boot_entry *e) {
	buf_printf(b, "menuentry '%s' --id %s {\n  linux /%s %s\n  initrd", e->title, e->label, e->kernel, e->cmdline);
	for (size_t i = 0; i < e->initrds.n; i++)
		buf_printf(b, " /%s", e->initrds.v[i]);
	buf_puts(b, "\n}\n");
}

char *bootcfg_grub(const struct boot_menu *m, const struct boot_entry *only) {
	struct buf b = BUF_INIT;
	buf_puts(&b, "# written by dlws-mkimage\nserial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n");
	if (only) {
		buf_printf(&b, "set default=%s\nset timeout=0\n", only->label);
		grub_entry(&b, only);
		return buf_steal(&b, NULL);
	}
	buf_printf(&b, "set default=%s\nset timeout=%u\n", m->v[m->default_entry].label, m->timeout_s);
	for (size_t i = 0; i < m->n; i++)
		grub_entry(&b, &m->v[i]);
	return buf_steal(&b, NULL);
}

static void ipxe_entry(struct buf *b, const struct boot_entry *e) {
	buf_printf(b, ":%s\nkernel %s", e->label, e->kernel);
	/* iPXE hands EFI kernels only the initrds named on the command line. */
	for (size_t i = 0; i < e->initrds.n; i++) {
		const char *base = strrchr(e->initrds.v[i], '/');
		buf_printf(b, " initrd=%s", base ? base + 1 : e->initrds.v[i]);
	}
	buf_printf(b, " %s\n", e->cmdline);
	for (size_t i = 0; i < e->initrds.n; i++)
		buf_printf(b, "initrd %s\n", e->initrds.v[i]);
	buf_puts(b, "boot\n\n");
}

char *bootcfg_ipxe(const struct boot_menu *m) {
	struct buf b = BUF_INIT;
	buf_puts(&b, "#!ipxe\n# written by dlws-mkimage\n");
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].mac)
			buf_printf(&b, "iseq ${mac} %s && goto %s ||\n", m->v[i].mac, m->v[i].label);
	buf_printf(&b, "goto %s\n\n", m->v[m->default_entry].label);
	for (size_t i = 0; i < m->n; i++)
		ipxe_entry(&b, &m->v[i]);
	return buf_steal(&b, NULL);
}

char *bootcfg_pxelinux_mac_name(const char *mac) {
	char *s = xasprintf("01-%s", mac);
	for (char *p = s + 3; *p; p++)
		if (*p == ':')
			*p = '-';
	return s;
}
