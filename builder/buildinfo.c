#include "buildinfo.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"

#define BUILDINFO_LIMIT (1 << 20)

static json_object *checked(json_object *o) {
	if (!o)
		die_oom();
	return o;
}

static json_object *str(const char *s) {
	return checked(json_object_new_string(s));
}

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
	/* The common leading components. */
	size_t i = 0, common = 0;
	while (from[i] && from[i] == to[i]) {
		i++;
		if (from[i - 1] == '/')
			common = i;
	}
	if (!from[i] && (to[i] == '/' || !to[i]))
		common = to[i] ? i + 1 : i;
	struct buf b = BUF_INIT;
	for (const char *p = from + common; *p; p++)
		if (p == from + common || p[-1] == '/')
			buf_puts(&b, "../");
	buf_puts(&b, to + common);
	return buf_steal(&b, NULL);
}

char *buildinfo_json(const struct build *const *builds, size_t n, const char *output) {
	json_object *root = checked(json_object_new_object());
	json_object_object_add(root, "tool", str("dlws-mkimage"));
	json_object_object_add(root, "version", str(DLWS_VERSION));
	char built[32];
	struct tm tm;
	time_t epoch = n ? builds[0]->opts->epoch : 0;
	gmtime_r(&epoch, &tm);
	strftime(built, sizeof(built), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(root, "built", str(built));
	json_object_object_add(root, "cluster", str(n ? builds[0]->cluster->name : ""));
	_cleanup_free_ char *out_abs = absolute(output);
	json_object *list = checked(json_object_new_array());
	for (size_t i = 0; i < n; i++) {
		const struct build *b = builds[i];
		json_object *o = checked(json_object_new_object());
		json_object_object_add(o, "name", str(b->recipe->name));
		json_object_object_add(o, "role", str(role_name(b->recipe->role)));
		_cleanup_free_ char *rabs = absolute(b->recipe->path);
		_cleanup_free_ char *rel = relative(out_abs, rabs);
		json_object_object_add(o, "recipe", str(rel));
		json_object *nodes = checked(json_object_new_array());
		for (size_t k = 0; k < b->n_nodes; k++)
			json_object_array_add(nodes, str(b->nodes[k]->hostname));
		json_object_object_add(o, "nodes", nodes);
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

int buildinfo_read(const char *path, struct buildinfo *ret, struct diags *d) {
	*ret = (struct buildinfo){ 0 };
	if (!path_exists(path))
		return -ENOENT;
	char *text = NULL;
	size_t len;
	int r = read_file(path, BUILDINFO_LIMIT, &text, &len, d);
	if (r < 0)
		return r;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		die_oom();
	json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	bool complete = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	free(text);
	json_object *list = NULL;
	if (!complete || !root || !json_object_is_type(root, json_type_object) || !streq(get_str(root, "tool"), "dlws-mkimage") ||
	    !json_object_object_get_ex(root, "recipes", &list) || !json_object_is_type(list, json_type_array)) {
		json_object_put(root);
		diag_error(d, NULL, "'%s' is not dlws-mkimage's build metadata", path);
		return -EINVAL;
	}
	const char *v = get_str(root, "version"), *built = get_str(root, "built"), *cluster = get_str(root, "cluster");
	ret->tool_version = xstrdup(v ? v : "");
	ret->built = xstrdup(built ? built : "");
	ret->cluster = xstrdup(cluster ? cluster : "");
	size_t n = json_object_array_length(list);
	ret->recipes = xcalloc(n + 1, sizeof(*ret->recipes));
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(list, i), *nodes;
		const char *name = get_str(o, "name"), *role = get_str(o, "role"), *recipe = get_str(o, "recipe");
		if (!name || !role || !recipe) {
			buildinfo_release(ret);
			json_object_put(root);
			diag_error(d, NULL, "'%s': recipe %zu lacks its name, role or recipe path", path, i + 1);
			return -EINVAL;
		}
		struct buildinfo_recipe *br = &ret->recipes[ret->n_recipes++];
		br->name = xstrdup(name);
		br->role = xstrdup(role);
		br->recipe = xstrdup(recipe);
		if (json_object_object_get_ex(o, "nodes", &nodes) && json_object_is_type(nodes, json_type_array))
			for (size_t k = 0; k < json_object_array_length(nodes); k++) {
				const char *h = json_object_get_string(json_object_array_get_idx(nodes, k));
				if (h)
					strv_push(&br->nodes, h);
			}
	}
	json_object_put(root);
	return 0;
}

void buildinfo_release(struct buildinfo *b) {
	for (size_t i = 0; i < b->n_recipes; i++) {
		free(b->recipes[i].name);
		free(b->recipes[i].role);
		free(b->recipes[i].recipe);
		strv_release(&b->recipes[i].nodes);
	}
	free(b->recipes);
	free(b->tool_version);
	free(b->built);
	free(b->cluster);
	*b = (struct buildinfo){ 0 };
}

char *buildinfo_recipe_path(const char *output, const char *recipe) {
	char cwd[PATH_MAX];
	_cleanup_free_ char *joined = recipe[0] == '/' ? xstrdup(recipe) : path_join(output, recipe);
	_cleanup_free_ char *abs = absolute(joined);
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(abs);
	return relative(cwd, abs);
}
