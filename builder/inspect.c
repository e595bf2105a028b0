#include "inspect.h"

#include <string.h>

#include "buf.h"
#include "buildinfo.h"
#include "disk.h"
#include "fsutil.h"
#include "jsonout.h"
#include "pki.h"
#include "stage.h"

static json_object *i64(long long v) {
	return json_checked(json_object_new_int64(v));
}

static void add(json_object *o, const char *key, json_object *v) {
	json_object_object_add(o, key, v);
}

static void problem(json_object *problems, char *msg) {
	json_object_array_add(problems, json_str(msg));
	free(msg);
}

/* One boot entry, the same shape wherever it comes from: the build
 * metadata or a menu read back. `mac`: the entry's, or NULL for e->mac. */
static json_object *entry_model(const struct boot_entry *e, const char *mac) {
	json_object *eo = json_checked(json_object_new_object());
	add(eo, "label", json_str(e->label));
	add(eo, "title", e->title ? json_str(e->title) : NULL);
	add(eo, "kernel", json_str(e->kernel));
	add(eo, "initrds", json_str_array(&e->initrds));
	_cleanup_free_ char *cmdline = reader_mask_secrets(e->cmdline, strlen(e->cmdline));
	add(eo, "cmdline", json_str(cmdline));
	mac = mac ? mac : e->mac;
	add(eo, "mac", mac ? json_str(mac) : NULL);
	return eo;
}

static bool is_time(const char *s) {
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	if (!s || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return false;
	return true;
}

static bool is_sha256(const char *s) {
	if (!s || strlen(s) != SHA256_HEX_LEN)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}

/* `s` when it passes `ok`; NULL (null in JSON) when it is NULL or "";
 * otherwise a problem, and NULL. */
static json_object *checked(const char *s, bool (*ok)(const char *), const char *what, json_object *problems) {
	if (!s || !*s)
		return NULL;
	if (ok(s))
		return json_str(s);
	problem(problems, xstrdup(what));
	return NULL;
}

static json_object *build_model(const struct reader_output *o, json_object *problems) {
	const char *name = o->kind == READER_DISK ? DISK_READ_BUILDINFO : BUILDINFO_FILE;
	const struct reader_file *f = reader_find(o->files, o->n, name);
	if (!f)
		return NULL;
	struct buildinfo info;
	struct diags d = DIAGS_INIT;
	if (!f->data || buildinfo_parse(f->data, f->len, name, &info, &d) < 0) {
		problem(problems, xasprintf("%s: %s", name, d.n ? d.v[0].msg : "too large"));
		diags_release(&d);
		return NULL;
	}
	diags_release(&d);
	json_object *b = json_checked(json_object_new_object());
	add(b, "tool", json_str("dlws-mkimage"));
	add(b, "version", json_str(info.tool_version));
	/* null: SOURCE_DATE_EPOCH was not set for the build. */
	_cleanup_free_ char *bad_time = xasprintf("%s: 'built' is not a time (YYYY-MM-DDTHH:MM:SSZ) or null", name);
	add(b, "built", checked(info.built, is_time, bad_time, problems));
	add(b, "cluster", json_str(info.cluster));
	json_object *list = json_checked(json_object_new_array());
	for (size_t i = 0; i < info.n_recipes; i++) {
		const struct buildinfo_recipe *r = &info.recipes[i];
		json_object *ro = json_checked(json_object_new_object());
		add(ro, "name", json_str(r->name));
		add(ro, "role", json_str(r->role));
		add(ro, "recipe", json_str(r->recipe));
		add(ro, "nodes", json_str_array(&r->nodes));
		add(ro, "payload_sha256", json_str(r->payload_sha256));
		/* null in the metadata of builds made before it was recorded. */
		_cleanup_free_ char *bad_sum = xasprintf("%s: recipe '%s': 'inputs_sha256' is not a sha256 or null", name, r->name);
		add(ro, "inputs_sha256", checked(r->inputs_sha256, is_sha256, bad_sum, problems));
		json_object *entries = json_checked(json_object_new_array());
		for (size_t k = 0; k < r->entries.n; k++)
			json_object_array_add(entries, entry_model(&r->entries.v[k], NULL));
		add(ro, "entries", entries);
		json_object_array_add(list, ro);
	}
	add(b, "recipes", list);
	buildinfo_release(&info);
	return b;
}

/* A boot menu read back (reader_bootcfg_parse): its default, the labels
 * ("entries", as before entries were read whole) and the entries
 * ("items"); `mac`: a per-MAC file's, for each of its items. */
static json_object *menu_model(const struct reader_file *f, enum reader_bootcfg kind, const char *mac, json_object *problems) {
	json_object *m = json_checked(json_object_new_object());
	add(m, "file", json_str(f->path));
	if (mac)
		add(m, "mac", json_str(mac));
	struct boot_menu menu = BOOT_MENU_INIT;
	struct strv said = STRV_INIT;
	if (f->data)
		reader_bootcfg_parse(f->data, f->len, kind, f->path, &menu, &said);
	else
		strv_push_take(&said, f->size > READER_KEEP_OUTER_LIMIT
					      ? xasprintf("%s: not read: larger than %zu bytes", f->path, READER_KEEP_OUTER_LIMIT)
					      : xasprintf("%s: not read: past the %zu bytes inspect keeps of one output", f->path,
							  READER_KEEP_TOTAL));
	for (size_t i = 0; i < said.n; i++)
		problem(problems, xstrdup(said.v[i]));
	strv_release(&said);
	add(m, "default", menu.default_entry < menu.n ? json_str(menu.v[menu.default_entry].label) : NULL);
	json_object *labels = json_checked(json_object_new_array());
	json_object *items = json_checked(json_object_new_array());
	for (size_t i = 0; i < menu.n; i++) {
		json_object_array_add(labels, json_str(menu.v[i].label));
		json_object_array_add(items, entry_model(&menu.v[i], mac));
	}
	add(m, "entries", labels);
	add(m, "items", items);
	boot_menu_release(&menu);
	return m;
}

/* The MAC a per-node menu file is named after ("pxelinux.cfg/01-aa-bb-...",
 * "grub/aa:bb:....cfg"), or NULL. */
static char *per_mac_name(const char *path) {
	char *mac = NULL;
	if (startswith(path, "pxelinux.cfg/01-")) {
		mac = xstrdup(path + 16);
		for (char *c = mac; *c; c++)
			if (*c == '-')
				*c = ':';
	} else if (startswith(path, "grub/") && endswith(path, ".cfg") && !strchr(path + 5, '/'))
		mac = xstrndup(path + 5, strlen(path) - 9);
	if (mac && !reader_mac_ok(mac)) {
		free(mac);
		return NULL;
	}
	return mac;
}

static json_object *boot_model(const struct reader_output *o, json_object *problems) {
	json_object *b = json_checked(json_object_new_object());
	json_object *et = json_checked(json_object_new_array());
	for (size_t i = 0; i < o->n_boot; i++) {
		const struct reader_boot_image *bi = &o->boot[i];
		json_object *e = json_checked(json_object_new_object());
		add(e, "platform", json_str(bi->platform));
		add(e, "bootable", json_checked(json_object_new_boolean(bi->bootable)));
		add(e, "path", bi->path ? json_str(bi->path) : NULL);
		add(e, "load_rba", i64(bi->load_rba));
		add(e, "sectors", i64(bi->sectors));
		json_object_array_add(et, e);
	}
	add(b, "el_torito", et);
	json_object *menus = json_checked(json_object_new_array());
	json_object *per_mac = json_checked(json_object_new_array());
	json_object *ipxe = json_checked(json_object_new_array());
	for (size_t i = 0; i < o->n; i++) {
		const struct reader_file *f = &o->files[i];
		if (f->type != READER_REG || o->kind == READER_DISK)
			continue;
		bool pxelinux_mac = startswith(f->path, "pxelinux.cfg/01-");
		bool grub_mac = startswith(f->path, "grub/") && endswith(f->path, ".cfg");
		if (pxelinux_mac || grub_mac) {
			_cleanup_free_ char *mac = per_mac_name(f->path);
			if (!mac)
				problem(problems, xasprintf("%s: not named after a MAC address", f->path));
			else
				json_object_array_add(per_mac, menu_model(f, pxelinux_mac ? READER_BOOT_SYSLINUX : READER_BOOT_GRUB, mac, problems));
		} else if (streq(f->path, "isolinux/isolinux.cfg") || streq(f->path, "pxelinux.cfg/default"))
			json_object_array_add(menus, menu_model(f, READER_BOOT_SYSLINUX, NULL, problems));
		else if (streq(f->path, "boot/grub/grub.cfg") || streq(f->path, "grub.cfg"))
			json_object_array_add(menus, menu_model(f, READER_BOOT_GRUB, NULL, problems));
		else if (streq(f->path, "boot.ipxe"))
			json_object_array_add(ipxe, menu_model(f, READER_BOOT_IPXE, NULL, problems));
	}
	add(b, "menus", menus);
	add(b, "per_mac", per_mac);
	add(b, "ipxe", ipxe);
	return b;
}

/* One manifest: counts, and every line when `entries`. */
static json_object *manifest_model(const char *name, const struct reader_manifest *m, bool entries) {
	json_object *mo = json_checked(json_object_new_object());
	add(mo, "name", json_str(name));
	add(mo, "files", i64((long long)m->n));
	add(mo, "bytes", i64((long long)m->total));
	if (entries) {
		json_object *list = json_checked(json_object_new_array());
		for (size_t k = 0; k < m->n; k++) {
			json_object *e = json_checked(json_object_new_object());
			_cleanup_free_ char *path = xasprintf("/%s", m->v[k].path);
			char mode[8];
			snprintf(mode, sizeof(mode), "%04o", m->v[k].mode);
			add(e, "path", json_str(path));
			add(e, "size", i64((long long)m->v[k].size));
			add(e, "mode", json_str(mode));
			add(e, "sha256", json_str(m->v[k].sha256));
			json_object_array_add(list, e);
		}
		add(mo, "entries", list);
	}
	return mo;
}

static json_object *manifests_model(const struct reader_segment *seg, bool entries, json_object *problems) {
	json_object *a = json_checked(json_object_new_array());
	for (size_t i = 0; i < seg->n; i++) {
		const struct reader_file *f = &seg->files[i];
		if (!startswith(f->path, PAYLOAD_MANIFESTS "/") || f->type != READER_REG)
			continue;
		struct reader_manifest m;
		struct diags d = DIAGS_INIT;
		_cleanup_free_ char *where = xasprintf("%s: /%s", seg->path, f->path);
		if (!f->data || reader_manifest_parse(f->data, f->len, where, &m, &d) < 0) {
			problem(problems, d.n ? xasprintf("%s:%d: %s", where, d.v[0].line, d.v[0].msg) : xasprintf("%s: too large", where));
			diags_release(&d);
			continue;
		}
		diags_release(&d);
		json_object_array_add(a, manifest_model(f->path + strlen(PAYLOAD_MANIFESTS "/"), &m, entries));
		reader_manifest_release(&m);
	}
	return a;
}

static void cert_add(json_object *certs, const char *seg, const char *path, const char *source, const char *pem, size_t len,
		     time_t now, json_object *problems) {
	struct pki_cert_info info;
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *name = xasprintf("%s: /%s", seg, path);
	if (pki_cert_info_parse(pem, len, name, &info, &d) < 0) {
		problem(problems, xstrdup(d.n ? d.v[0].msg : "unreadable certificate"));
		diags_release(&d);
		return;
	}
	diags_release(&d);
	json_object *c = json_checked(json_object_new_object());
	_cleanup_free_ char *p = xasprintf("/%s", path);
	add(c, "segment", json_str(seg));
	add(c, "path", json_str(p));
	add(c, "source", json_str(source));
	add(c, "subject", json_str(info.subject));
	add(c, "issuer", json_str(info.issuer));
	json_object *sans = json_checked(json_object_new_array());
	for (size_t k = 0; k < info.n_sans; k++)
		json_object_array_add(sans, json_str(info.sans[k]));
	add(c, "sans", sans);
	char date[32];
	struct tm tm;
	gmtime_r(&info.not_after, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	add(c, "not_after", json_str(date));
	add(c, "days_left", i64((long long)((info.not_after - now) / 86400)));
	json_object_array_add(certs, c);
	free(info.file);
	free(info.subject);
	free(info.issuer);
	for (size_t k = 0; k < info.n_sans; k++)
		free(info.sans[k]);
	free(info.sans);
}

/* A kubeconfig's client-certificate-data: base64 of PEM. */
static void kubeconfig_certs(json_object *certs, const char *seg, const struct reader_file *f, time_t now, json_object *problems) {
	static const char key[] = "client-certificate-data:";
	for (const char *at = strstr(f->data, key); at; at = strstr(at + 1, key)) {
		const char *v = at + strlen(key);
		while (*v == ' ' || *v == '"')
			v++;
		size_t n = strcspn(v, "\"\n\r ");
		size_t len = 0;
		_cleanup_free_ char *pem = reader_base64_decode(v, n, (size_t)1 << 20, &len);
		if (pem && strstr(pem, "-----BEGIN CERTIFICATE-----"))
			cert_add(certs, seg, f->path, "kubeconfig", pem, len, now, problems);
		else
			problem(problems, xasprintf("%s: /%s: client-certificate-data is not a PEM certificate", seg, f->path));
	}
}

/* The OEM configs, shown from any segment: the Ignition config, the
 * cloud-config (as the payload carries it, or as user_data), node.env. */
static bool oem_config(const char *path) {
	return streq(path, PAYLOAD_IGNITION) || streq(path, LAYOUT_PART_OEM "/" LAYOUT_IGNITION) ||
	       streq(path, PAYLOAD_OEM "/cloud-config.yml") || endswith(path, "/user_data") || streq(path, PAYLOAD_DIR "/node.env");
}

static bool is_pem(const char *data) {
	return startswith(data + strspn(data, " \t\r\n"), "-----BEGIN ");
}

/* Which files are rendered configs. A segment does not record which of
 * its files came from the recipe's config: templates, but every one of
 * them is in a node's or a role's own segment (per_node), with what else
 * is made per node (the Ignition config, node.env, the node's kubeconfigs
 * and bootstrap token): so a per_node segment's text files are shown, but
 * its manifest and PEM files (certificates are shown as certificates,
 * keys never). Shared segments (overlays, pinned files) show only the OEM
 * configs. A disk's kept files (disk.h) are the node's: all of its text
 * but PEM and the disk's own metadata. */
static bool is_config(const struct reader_file *f, bool per_node) {
	if (f->type != READER_REG || startswith(f->path, PAYLOAD_MANIFESTS "/") || streq(f->path, DISK_READ_BUILDINFO) ||
	    streq(f->path, DISK_READ_MANIFEST))
		return false;
	if (!per_node && !oem_config(f->path))
		return false;
	if (f->not_kept)
		return true;
	return f->data && !is_pem(f->data) && reader_is_text(f->data, f->len);
}

/* The certificates and configs among a segment's or a disk's kept files;
 * `seg` names where they are. */
static void file_model(const char *seg, const struct reader_file *f, bool per_node, const struct inspect_opts *opts,
		       json_object *certs, json_object *configs, json_object *problems) {
	if (f->data && f->type == READER_REG) {
		if ((endswith(f->path, ".crt") || endswith(f->path, ".pem")) && strstr(f->data, "-----BEGIN CERTIFICATE-----"))
			cert_add(certs, seg, f->path, "file", f->data, f->len, opts->now, problems);
		else if (strstr(f->data, "client-certificate-data:"))
			kubeconfig_certs(certs, seg, f, opts->now, problems);
	}
	if (!is_config(f, per_node))
		return;
	json_object *c = json_checked(json_object_new_object());
	_cleanup_free_ char *p = xasprintf("/%s", f->path);
	add(c, "segment", json_str(seg));
	add(c, "path", json_str(p));
	if (f->data) {
		_cleanup_free_ char *masked = reader_mask_secrets(f->data, f->len);
		add(c, "text", json_str(masked));
		add(c, "omitted", NULL);
	} else {
		add(c, "text", json_str(""));
		add(c, "omitted", json_str(f->size > READER_KEEP_LIMIT ? "larger than 1 MiB"
								  : "past the 64 MiB of text inspect reads of one output"));
	}
	json_object_array_add(configs, c);
}

/* A disk: its format and manifest; files named "/ROOT/..." or "/OEM/...". */
static json_object *disk_model(const struct reader_output *o, const struct inspect_opts *opts, json_object *certs,
			       json_object *configs, json_object *problems) {
	json_object *dm = json_checked(json_object_new_object());
	add(dm, "format", json_str(o->disk_format));
	const struct reader_file *mf = reader_find(o->files, o->n, DISK_READ_MANIFEST);
	struct reader_manifest m;
	struct diags d = DIAGS_INIT;
	if (mf && mf->data && reader_manifest_parse(mf->data, mf->len, DISK_READ_MANIFEST, &m, &d) == 0) {
		add(dm, "manifest", manifest_model(LAYOUT_DISK_MANIFEST, &m, opts->manifest_entries));
		reader_manifest_release(&m);
	} else {
		add(dm, "manifest", NULL);
		problem(problems, xasprintf("/%s: %s", DISK_READ_MANIFEST, d.n ? d.v[0].msg : "missing"));
	}
	diags_release(&d);
	for (size_t i = 0; i < o->n; i++)
		file_model(startswith(o->files[i].path, LAYOUT_PART_OEM "/") ? LAYOUT_PART_OEM : LAYOUT_PART_ROOT, &o->files[i], true,
			   opts, certs, configs, problems);
	return dm;
}

static json_object *model(const struct reader_output *o, const struct inspect_opts *opts, struct strv *ret_problems) {
	json_object *root = json_checked(json_object_new_object());
	json_object *problems = json_checked(json_object_new_array());
	add(root, "output", json_str(o->path));
	add(root, "type", json_str(reader_kind_name(o->kind)));
	add(root, "build", build_model(o, problems));
	add(root, "boot", boot_model(o, problems));
	json_object *segs = json_checked(json_object_new_array());
	json_object *certs = json_checked(json_object_new_array());
	json_object *configs = json_checked(json_object_new_array());
	for (size_t i = 0; i < o->n_segs; i++) {
		const struct reader_segment *seg = &o->segs[i];
		json_object *so = json_checked(json_object_new_object());
		uint64_t bytes = 0;
		size_t files = 0;
		for (size_t k = 0; k < seg->n; k++)
			if (seg->files[k].type == READER_REG) {
				files++;
				bytes += seg->files[k].size;
			}
		add(so, "path", json_str(seg->path));
		add(so, "files", i64((long long)files));
		add(so, "bytes", i64((long long)bytes));
		add(so, "error", seg->error ? json_str(seg->error) : NULL);
		if (seg->error)
			problem(problems, xasprintf("%s: %s", seg->path, seg->error));
		add(so, "manifests", manifests_model(seg, opts->manifest_entries, problems));
		json_object_array_add(segs, so);
		for (size_t k = 0; k < seg->n; k++)
			file_model(seg->path, &seg->files[k], seg->per_node, opts, certs, configs, problems);
	}
	add(root, "disk", o->kind == READER_DISK ? disk_model(o, opts, certs, configs, problems) : NULL);
	add(root, "segments", segs);
	add(root, "certificates", certs);
	add(root, "configs", configs);
	for (size_t i = 0; i < json_object_array_length(problems); i++)
		strv_push(ret_problems, json_object_get_string(json_object_array_get_idx(problems, i)));
	add(root, "problems", problems);
	return root;
}

char *inspect_json(const struct reader_output *o, const struct inspect_opts *opts, struct strv *ret_problems) {
	json_object *root = model(o, opts, ret_problems);
	char *text = xasprintf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
									    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return text;
}

/* ---- text ---------------------------------------------------------------- */

static const char *get_s(json_object *o, const char *key) {
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static long long get_i(json_object *o, const char *key) {
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static json_object *get_a(json_object *o, const char *key) {
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array) ? v : NULL;
}

static size_t len_a(json_object *a) {
	return a ? json_object_array_length(a) : 0;
}

static void joined(struct buf *b, json_object *a) {
	for (size_t i = 0; i < len_a(a); i++)
		buf_printf(b, "%s%s", i ? ", " : "", json_object_get_string(json_object_array_get_idx(a, i)));
}

/* "PREFIXlabel: kernel + initrd,initrd (mac M)", and with `cmdline` its
 * command line on the next line. */
static void entry_text(struct buf *b, const char *prefix, json_object *e, bool cmdline) {
	buf_printf(b, "%s%s: %s", prefix, get_s(e, "label"), get_s(e, "kernel"));
	json_object *initrds = get_a(e, "initrds");
	for (size_t j = 0; j < len_a(initrds); j++)
		buf_printf(b, "%s%s", j ? "," : " + ", json_object_get_string(json_object_array_get_idx(initrds, j)));
	if (get_s(e, "mac"))
		buf_printf(b, " (mac %s)", get_s(e, "mac"));
	buf_putc(b, '\n');
	if (cmdline)
		buf_printf(b, "      cmdline: %s\n", get_s(e, "cmdline"));
}

/* "PREFIXfile: label, label (default label)", and with `items` every entry. */
static void menu_text(struct buf *b, const char *prefix, json_object *m, bool items) {
	buf_printf(b, "%s%s: ", prefix, get_s(m, "file"));
	joined(b, get_a(m, "entries"));
	if (get_s(m, "default"))
		buf_printf(b, " (default %s)", get_s(m, "default"));
	buf_putc(b, '\n');
	json_object *list = get_a(m, "items");
	for (size_t i = 0; items && i < len_a(list); i++)
		entry_text(b, "    ", json_object_array_get_idx(list, i), true);
}

char *inspect_text(const struct reader_output *o, const struct inspect_opts *opts, struct strv *ret_problems) {
	json_object *root = model(o, opts, ret_problems);
	struct buf b = { .limit = (size_t)1 << 30 };
	buf_printf(&b, "%s: %s\n", get_s(root, "output"), get_s(root, "type"));
	json_object *build;
	if (json_object_object_get_ex(root, "build", &build) && build) {
		if (get_s(build, "built"))
			buf_printf(&b, "built by dlws-mkimage %s at %s, cluster %s\n", get_s(build, "version"), get_s(build, "built"),
				   get_s(build, "cluster"));
		else
			buf_printf(&b, "built by dlws-mkimage %s (no build time: SOURCE_DATE_EPOCH was not set), cluster %s\n",
				   get_s(build, "version"), get_s(build, "cluster"));
		json_object *recipes = get_a(build, "recipes");
		for (size_t i = 0; i < len_a(recipes); i++) {
			json_object *r = json_object_array_get_idx(recipes, i);
			buf_printf(&b, "recipe %s (role %s)\n  nodes:   ", get_s(r, "name"), get_s(r, "role"));
			joined(&b, get_a(r, "nodes"));
			buf_printf(&b, "%s\n  payload: %s\n  inputs:  %s\n", len_a(get_a(r, "nodes")) ? "" : "(none)",
				   get_s(r, "payload_sha256"), get_s(r, "inputs_sha256") ? get_s(r, "inputs_sha256") : "(not recorded)");
			json_object *entries = get_a(r, "entries");
			for (size_t k = 0; k < len_a(entries); k++)
				entry_text(&b, "  entry ", json_object_array_get_idx(entries, k), false);
		}
	} else
		buf_printf(&b, "no build metadata (%s)\n", BUILDINFO_FILE);
	json_object *boot;
	json_object_object_get_ex(root, "boot", &boot);
	json_object *et = get_a(boot, "el_torito");
	for (size_t i = 0; i < len_a(et); i++) {
		json_object *e = json_object_array_get_idx(et, i);
		buf_printf(&b, "El Torito %s image: %s (%s)\n", get_s(e, "platform"), get_s(e, "path") ? get_s(e, "path") : "?",
			   json_object_get_boolean(json_object_object_get(e, "bootable")) ? "bootable" : "not bootable");
	}
	json_object *menus = get_a(boot, "menus");
	for (size_t i = 0; i < len_a(menus); i++)
		menu_text(&b, "menu ", json_object_array_get_idx(menus, i), opts->manifest_entries);
	json_object *ipxe = get_a(boot, "ipxe");
	for (size_t i = 0; i < len_a(ipxe); i++)
		menu_text(&b, "iPXE script ", json_object_array_get_idx(ipxe, i), opts->manifest_entries);
	json_object *macs = get_a(boot, "per_mac");
	if (len_a(macs))
		buf_printf(&b, "per-MAC configs: %zu\n", len_a(macs));
	for (size_t i = 0; opts->manifest_entries && i < len_a(macs); i++) {
		json_object *m = json_object_array_get_idx(macs, i);
		buf_printf(&b, "  %s (%s): ", get_s(m, "file"), get_s(m, "mac"));
		joined(&b, get_a(m, "entries"));
		buf_putc(&b, '\n');
	}
	json_object *disk;
	if (json_object_object_get_ex(root, "disk", &disk) && disk) {
		json_object *m = json_object_object_get(disk, "manifest");
		const char *format = get_s(disk, "format");
		if (m)
			buf_printf(&b, "disk (%s): manifest %lld files, %lld bytes\n", format ? format : "?", get_i(m, "files"),
				   get_i(m, "bytes"));
		json_object *es = m ? get_a(m, "entries") : NULL;
		for (size_t j = 0; j < len_a(es); j++) {
			json_object *e = json_object_array_get_idx(es, j);
			buf_printf(&b, "    %s %10lld %s %s\n", get_s(e, "mode"), get_i(e, "size"), get_s(e, "sha256"), get_s(e, "path"));
		}
	}
	json_object *segs = get_a(root, "segments");
	for (size_t i = 0; i < len_a(segs); i++) {
		json_object *s = json_object_array_get_idx(segs, i);
		buf_printf(&b, "segment %s: %lld files, %lld bytes\n", get_s(s, "path"), get_i(s, "files"), get_i(s, "bytes"));
		if (get_s(s, "error"))
			buf_printf(&b, "  error: %s\n", get_s(s, "error"));
		json_object *ms = get_a(s, "manifests");
		for (size_t k = 0; k < len_a(ms); k++) {
			json_object *m = json_object_array_get_idx(ms, k);
			buf_printf(&b, "  manifest %s: %lld files, %lld bytes\n", get_s(m, "name"), get_i(m, "files"), get_i(m, "bytes"));
			json_object *es = get_a(m, "entries");
			for (size_t j = 0; j < len_a(es); j++) {
				json_object *e = json_object_array_get_idx(es, j);
				buf_printf(&b, "    %s %10lld %s %s\n", get_s(e, "mode"), get_i(e, "size"), get_s(e, "sha256"), get_s(e, "path"));
			}
		}
	}
	json_object *certs = get_a(root, "certificates");
	for (size_t i = 0; i < len_a(certs); i++) {
		json_object *c = json_object_array_get_idx(certs, i);
		buf_printf(&b, "certificate %s: %s%s\n  subject: %s\n  expires: %s (%lld days)\n", get_s(c, "segment"), get_s(c, "path"),
			   streq(get_s(c, "source"), "kubeconfig") ? " (client-certificate-data)" : "", get_s(c, "subject"),
			   get_s(c, "not_after"), get_i(c, "days_left"));
		if (len_a(get_a(c, "sans"))) {
			buf_puts(&b, "  sans:    ");
			joined(&b, get_a(c, "sans"));
			buf_putc(&b, '\n');
		}
	}
	json_object *configs = get_a(root, "configs");
	for (size_t i = 0; i < len_a(configs); i++) {
		json_object *c = json_object_array_get_idx(configs, i);
		if (get_s(c, "omitted")) {
			buf_printf(&b, "config %s: %s (not shown: %s)\n", get_s(c, "segment"), get_s(c, "path"), get_s(c, "omitted"));
			continue;
		}
		buf_printf(&b, "config %s: %s (secrets masked)\n", get_s(c, "segment"), get_s(c, "path"));
		if (opts->config_text) {
			const char *t = get_s(c, "text");
			for (const char *line = t; line && *line;) {
				const char *nl = strchr(line, '\n');
				size_t n = nl ? (size_t)(nl - line) : strlen(line);
				buf_printf(&b, "  | %.*s\n", (int)n, line);
				line = nl ? nl + 1 : NULL;
			}
		}
	}
	json_object *problems = get_a(root, "problems");
	for (size_t i = 0; i < len_a(problems); i++)
		buf_printf(&b, "problem: %s\n", json_object_get_string(json_object_array_get_idx(problems, i)));
	json_object_put(root);
	return buf_steal(&b, NULL);
}
