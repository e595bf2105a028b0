#include "buildinfo.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "jsonout.h"

#define BUILDINFO_LIMIT (1 << 20)

/* The absolute, normalised form of `path`, which need not exist: its
 * longest existing ancestor resolved, the rest appended. */
static char *absolute(const char *path) {
	char buf[PATH_MAX];
	if (realpath(path, buf))
		return xstrdup(buf);
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *parent = slash ? (slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path))) : xstrdup(".");
	_cleanup_free_ char *abs_parent = absolute(parent);
	return path_join(abs_parent, slash ? slash + 1 : path);
}

/* `to` relative to the directory `from` (both absolute and normalised). */
static char *relative(const char *from, const char *to) {
	size_t i = 0, common = 0;
	while (from[i] && from[i] == to[i]) {
		i++;
		if (from[i - 1] == '/')
			common = i;
	}
	/* `from` itself is a directory above `to` (or is it). */
	if (!from[i] && (to[i] == '/' || !to[i]))
		return xstrdup(to[i] ? to + i + 1 : ".");
	struct buf b = BUF_INIT;
	for (const char *p = from + common; *p; p++)
		if (p == from + common || p[-1] == '/')
			buf_puts(&b, "../");
	buf_puts(&b, to + common);
	return buf_steal(&b, NULL);
}

void buildinfo_init(struct buildinfo *info, const struct build *const *builds, size_t n) {
	char built[32];
	struct tm tm;
	time_t epoch = n ? builds[0]->opts->epoch : 0;
	gmtime_r(&epoch, &tm);
	strftime(built, sizeof(built), "%Y-%m-%dT%H:%M:%SZ", &tm);
	*info = (struct buildinfo){
		.tool_version = xstrdup(DLWS_VERSION),
		.built = n && builds[0]->opts->epoch_set ? xstrdup(built) : NULL,
		.cluster = xstrdup(n ? builds[0]->cluster->name : ""),
	};
	const struct boot_server *bs = n ? &builds[0]->cluster->boot_server : NULL;
	if (bs && bs->address) {
		info->server_address = xstrdup(bs->address);
		info->server_root = xstrdup(bs->root);
	}
}

static struct buildinfo_recipe *add_recipe(struct buildinfo *info, const char *name, const char *role, const char *recipe) {
	GROW(info->recipes, info->cap, info->n_recipes + 1);
	struct buildinfo_recipe *r = &info->recipes[info->n_recipes++];
	*r = (struct buildinfo_recipe){ .name = xstrdup(name), .role = xstrdup(role), .recipe = xstrdup(recipe) };
	return r;
}

static void copy_entry(struct boot_menu *m, const struct boot_entry *e) {
	struct boot_entry *c = boot_menu_add(m, e->label, e->title, e->kernel, e->cmdline);
	for (size_t i = 0; i < e->initrds.n; i++)
		strv_push(&c->initrds, e->initrds.v[i]);
	if (e->mac)
		c->mac = xstrdup(e->mac);
}

void buildinfo_add_build(struct buildinfo *info, const struct build *b, const char *output, const char *payload_sha256,
			 const char *inputs_sha256, const struct boot_menu *menu, size_t first) {
	_cleanup_free_ char *out_abs = absolute(output);
	_cleanup_free_ char *rabs = absolute(b->recipe->path);
	_cleanup_free_ char *rel = relative(out_abs, rabs);
	struct buildinfo_recipe *r = add_recipe(info, b->recipe->name, role_name(b->recipe->role), rel);
	for (size_t k = 0; k < b->n_nodes; k++)
		strv_push(&r->nodes, b->nodes[k]->hostname);
	r->payload_sha256 = xstrdup(payload_sha256 ? payload_sha256 : "");
	r->inputs_sha256 = xstrdup(inputs_sha256 ? inputs_sha256 : "");
	for (size_t i = first; menu && i < menu->n; i++)
		copy_entry(&r->entries, &menu->v[i]);
}

void buildinfo_add_kept(struct buildinfo *info, const struct buildinfo_recipe *kept) {
	struct buildinfo_recipe *r = add_recipe(info, kept->name, kept->role, kept->recipe);
	for (size_t k = 0; k < kept->nodes.n; k++)
		strv_push(&r->nodes, kept->nodes.v[k]);
	r->payload_sha256 = xstrdup(kept->payload_sha256 ? kept->payload_sha256 : "");
	r->inputs_sha256 = xstrdup(kept->inputs_sha256 ? kept->inputs_sha256 : "");
	for (size_t i = 0; i < kept->entries.n; i++)
		copy_entry(&r->entries, &kept->entries.v[i]);
}

char *buildinfo_json(const struct buildinfo *info) {
	json_object *root = json_checked(json_object_new_object());
	json_object_object_add(root, "tool", json_str("dlws-mkimage"));
	json_object_object_add(root, "version", json_str(info->tool_version));
	json_object_object_add(root, "built", info->built ? json_str(info->built) : NULL);
	json_object_object_add(root, "cluster", json_str(info->cluster));
	if (info->server_root) {
		json_object *bs = json_checked(json_object_new_object());
		json_object_object_add(bs, "address", json_str(info->server_address));
		json_object_object_add(bs, "root", json_str(info->server_root));
		json_object_object_add(root, "boot_server", bs);
	}
	json_object *list = json_checked(json_object_new_array());
	for (size_t i = 0; i < info->n_recipes; i++) {
		const struct buildinfo_recipe *r = &info->recipes[i];
		json_object *o = json_checked(json_object_new_object());
		json_object_object_add(o, "name", json_str(r->name));
		json_object_object_add(o, "role", json_str(r->role));
		json_object_object_add(o, "recipe", json_str(r->recipe));
		json_object_object_add(o, "nodes", json_str_array(&r->nodes));
		json_object_object_add(o, "payload_sha256", json_str(r->payload_sha256 ? r->payload_sha256 : ""));
		json_object_object_add(o, "inputs_sha256",
				       r->inputs_sha256 && r->inputs_sha256[0] ? json_str(r->inputs_sha256) : NULL);
		json_object *entries = json_checked(json_object_new_array());
		for (size_t k = 0; k < r->entries.n; k++) {
			const struct boot_entry *e = &r->entries.v[k];
			json_object *eo = json_checked(json_object_new_object());
			json_object_object_add(eo, "label", json_str(e->label));
			json_object_object_add(eo, "title", json_str(e->title));
			json_object_object_add(eo, "kernel", json_str(e->kernel));
			json_object_object_add(eo, "initrds", json_str_array(&e->initrds));
			json_object_object_add(eo, "cmdline", json_str(e->cmdline));
			if (e->mac)
				json_object_object_add(eo, "mac", json_str(e->mac));
			json_object_array_add(entries, eo);
		}
		json_object_object_add(o, "entries", entries);
		json_object_array_add(list, o);
	}
	json_object_object_add(root, "recipes", list);
	char *text = xasprintf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
									    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return text;
}

static const char *get_str(json_object *o, const char *key) {
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A path inside the output: relative, no "..", nothing odd. */
static bool inner_path(const char *p) {
	if (!p || !*p || p[0] == '/' || strlen(p) > 1024)
		return false;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == '\\')
			return false;
	for (const char *c = p; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
		if (strncmp(c, "..", 2) == 0 && (c[2] == '/' || !c[2]))
			return false;
	return true;
}

static bool read_strings(json_object *o, const char *key, struct strv *ret) {
	json_object *a;
	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
		return false;
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		json_object *v = json_object_array_get_idx(a, k);
		if (!json_object_is_type(v, json_type_string))
			return false;
		strv_push(ret, json_object_get_string(v));
	}
	return true;
}

static bool read_entry(json_object *eo, struct boot_menu *m) {
	const char *label = get_str(eo, "label"), *title = get_str(eo, "title"), *kernel = get_str(eo, "kernel"),
		   *cmdline = get_str(eo, "cmdline"), *mac = get_str(eo, "mac");
	if (!label || !title || !inner_path(kernel) || !cmdline)
		return false;
	struct boot_entry *e = boot_menu_add(m, label, title, kernel, cmdline);
	if (mac)
		e->mac = xstrdup(mac);
	if (!read_strings(eo, "initrds", &e->initrds))
		return false;
	for (size_t i = 0; i < e->initrds.n; i++)
		if (!inner_path(e->initrds.v[i]))
			return false;
	return true;
}

int buildinfo_read(const char *path, struct buildinfo *ret, struct diags *d) {
	*ret = (struct buildinfo){ 0 };
	if (!path_exists(path))
		return -ENOENT;
	char *text = NULL;
	size_t len;
	int r = read_file(path, BUILDINFO_LIMIT, &text, &len, d);
	if (r == 0)
		r = buildinfo_parse(text, len, path, ret, d);
	free(text);
	return r;
}

int buildinfo_parse(const char *text, size_t len, const char *path, struct buildinfo *ret, struct diags *d) {
	*ret = (struct buildinfo){ 0 };
	if (len > BUILDINFO_LIMIT) {
		diag_error(d, NULL, "'%s' is larger than %d bytes", path, BUILDINFO_LIMIT);
		return -EFBIG;
	}
	json_tokener *tok = json_tokener_new();
	if (!tok)
		die_oom();
	json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	bool complete = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	json_object *list = NULL;
	if (!complete || !root || !json_object_is_type(root, json_type_object) || !streq(get_str(root, "tool"), "dlws-mkimage") ||
	    !json_object_object_get_ex(root, "recipes", &list) || !json_object_is_type(list, json_type_array)) {
		json_object_put(root);
		diag_error(d, NULL, "'%s' is not dlws-mkimage's build metadata", path);
		return -EINVAL;
	}
	const char *v = get_str(root, "version"), *built = get_str(root, "built"), *cluster = get_str(root, "cluster");
	ret->tool_version = xstrdup(v ? v : "");
	ret->built = built ? xstrdup(built) : NULL;
	ret->cluster = xstrdup(cluster ? cluster : "");
	json_object *bs;
	if (json_object_object_get_ex(root, "boot_server", &bs) && json_object_is_type(bs, json_type_object) &&
	    get_str(bs, "address") && get_str(bs, "root")) {
		ret->server_address = xstrdup(get_str(bs, "address"));
		ret->server_root = xstrdup(get_str(bs, "root"));
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *o = json_object_array_get_idx(list, i), *entries;
		const char *name = get_str(o, "name"), *role = get_str(o, "role"), *recipe = get_str(o, "recipe");
		bool ok = name && role && recipe && inner_path(name) && !strchr(name, '/');
		if (ok) {
			struct buildinfo_recipe *br = add_recipe(ret, name, role, recipe);
			const char *payload = get_str(o, "payload_sha256");
			const char *inputs = get_str(o, "inputs_sha256");
			br->payload_sha256 = xstrdup(payload ? payload : "");
			br->inputs_sha256 = xstrdup(inputs ? inputs : "");
			ok = read_strings(o, "nodes", &br->nodes) && json_object_object_get_ex(o, "entries", &entries) &&
			     json_object_is_type(entries, json_type_array);
			for (size_t k = 0; ok && k < json_object_array_length(entries); k++)
				ok = read_entry(json_object_array_get_idx(entries, k), &br->entries);
		}
		if (!ok) {
			buildinfo_release(ret);
			json_object_put(root);
			diag_error(d, NULL, "'%s': recipe %zu is not well-formed (name, role, recipe, nodes, entries with paths "
				   "inside the output)", path, i + 1);
			return -EINVAL;
		}
	}
	json_object_put(root);
	return 0;
}

void buildinfo_release(struct buildinfo *info) {
	for (size_t i = 0; i < info->n_recipes; i++) {
		free(info->recipes[i].name);
		free(info->recipes[i].role);
		free(info->recipes[i].recipe);
		strv_release(&info->recipes[i].nodes);
		free(info->recipes[i].payload_sha256);
		free(info->recipes[i].inputs_sha256);
		boot_menu_release(&info->recipes[i].entries);
	}
	free(info->recipes);
	free(info->tool_version);
	free(info->built);
	free(info->cluster);
	free(info->server_address);
	free(info->server_root);
	*info = (struct buildinfo){ 0 };
}

char *buildinfo_recipe_path(const char *output, const char *recipe) {
	char cwd[PATH_MAX];
	_cleanup_free_ char *joined = recipe[0] == '/' ? xstrdup(recipe) : path_join(output, recipe);
	_cleanup_free_ char *abs = absolute(joined);
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(abs);
	return relative(cwd, abs);
}
