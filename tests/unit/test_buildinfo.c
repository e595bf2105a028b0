/* buildinfo: recipe paths relative to an output and back, and the JSON
 * round trip (what a later build keeps a bundle's recipes from). */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildinfo.h"
#include "check.h"
#include "fsutil.h"

/* buildinfo_recipe_path: a path the metadata holds (relative to the output
 * directory) as seen from the current directory, whatever bytes lie past
 * the end of getcwd's answer. */
static void test_recipe_path(void) {
	char tmpl[] = "/tmp/test-buildinfo.XXXXXX";
	CHECK(mkdtemp(tmpl) != NULL);
	_cleanup_free_ char *proj = path_join(tmpl, "p");
	_cleanup_free_ char *recipes = path_join(proj, "recipes");
	_cleanup_free_ char *pxe = path_join(proj, "out/pxe");
	CHECK(mkdir_p(recipes, 0755) == 0 && mkdir_p(pxe, 0755) == 0);
	_cleanup_free_ char *r = path_join(recipes, "etcd.recipe");
	CHECK(write_file_atomic(r, "x", 1, 0644, &(struct diags)DIAGS_INIT) == 0);
	char cwd[4096];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(proj) == 0);
	static const struct { const char *output, *recipe, *want; } cases[] = {
		{ "out/pxe", "../../recipes/etcd.recipe", "recipes/etcd.recipe" },
		{ "recipes/../out/pxe", "../../recipes/etcd.recipe", "recipes/etcd.recipe" },
		{ "out", "../recipes/etcd.recipe", "recipes/etcd.recipe" },
		{ ".", "recipes/etcd.recipe", "recipes/etcd.recipe" },
		{ "out/pxe", "../../recipes", "recipes" },
		{ "out/pxe", "../..", "." },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = buildinfo_recipe_path(cases[i].output, cases[i].recipe);
		CHECK_STREQ(got, cases[i].want);
	}
	/* From a directory below the project: up and over. */
	CHECK(chdir("out") == 0);
	_cleanup_free_ char *up = buildinfo_recipe_path("pxe", "../../recipes/etcd.recipe");
	CHECK_STREQ(up, "../recipes/etcd.recipe");
	CHECK(chdir(cwd) == 0);
	rm_rf(tmpl);
}

static void test_parse_roundtrip(void) {
	struct buildinfo info = { .tool_version = xstrdup("0.1.0"), .built = xstrdup("1970-01-01T00:00:00Z"),
				  .cluster = xstrdup("lab"), .server_address = xstrdup("10.0.0.1"),
				  .server_root = xstrdup("/srv/boot") };
	struct buildinfo_recipe r = { .name = "worker", .role = "worker", .recipe = "../../recipes/worker.recipe",
				      .payload_sha256 = "ab", .inputs_sha256 = "cd" };
	strv_push(&r.nodes, "w1");
	struct boot_entry *e = boot_menu_add(&r.entries, "w1", "w1: worker", "worker/vmlinuz", "console=ttyS0");
	strv_push(&e->initrds, "worker/base.img");
	e->mac = xstrdup("52:54:00:00:00:01");
	buildinfo_add_kept(&info, &r);
	char *json = buildinfo_json(&info);
	struct diags d = DIAGS_INIT;
	struct buildinfo back;
	CHECK(buildinfo_parse(json, strlen(json), "t", &back, &d) == 0);
	CHECK_INTEQ(back.n_recipes, 1);
	if (back.n_recipes == 1) {
		CHECK_STREQ(back.recipes[0].name, "worker");
		CHECK_STREQ(back.recipes[0].payload_sha256, "ab");
		CHECK_STREQ(back.recipes[0].inputs_sha256, "cd");
		CHECK_STREQ(back.recipes[0].nodes.v[0], "w1");
		CHECK_INTEQ(back.recipes[0].entries.n, 1);
		CHECK_STREQ(back.recipes[0].entries.v[0].mac, "52:54:00:00:00:01");
		CHECK_STREQ(back.recipes[0].entries.v[0].initrds.v[0], "worker/base.img");
	}
	CHECK_STREQ(back.server_root, "/srv/boot");
	CHECK_STREQ(back.built, "1970-01-01T00:00:00Z");
	buildinfo_release(&back);
	free(json);
	/* No SOURCE_DATE_EPOCH: no build time, null; metadata of an earlier
	 * version without inputs_sha256 reads as "" (unknown). */
	free(info.built);
	info.built = NULL;
	json = buildinfo_json(&info);
	CHECK(strstr(json, "\"built\": null") != NULL);
	CHECK(buildinfo_parse(json, strlen(json), "t", &back, &d) == 0);
	CHECK(back.built == NULL);
	buildinfo_release(&back);
	free(json);
	static const char old[] = "{\"tool\":\"dlws-mkimage\",\"built\":\"2020-01-01T00:00:00Z\",\"recipes\":[{\"name\":\"w\","
				  "\"role\":\"worker\",\"recipe\":\"r\",\"nodes\":[],\"payload_sha256\":\"ab\",\"entries\":[]}]}";
	CHECK(buildinfo_parse(old, strlen(old), "t", &back, &d) == 0);
	CHECK_STREQ(back.built, "2020-01-01T00:00:00Z");
	if (back.n_recipes == 1)
		CHECK_STREQ(back.recipes[0].inputs_sha256, "");
	buildinfo_release(&back);
	/* Paths that leave the output are refused. */
	static const char *const bad[] = {
		"{\"tool\":\"dlws-mkimage\",\"recipes\":[{\"name\":\"w\",\"role\":\"worker\",\"recipe\":\"r\",\"nodes\":[],"
		"\"entries\":[{\"label\":\"w\",\"title\":\"t\",\"kernel\":\"../../etc/passwd\",\"initrds\":[],\"cmdline\":\"\"}]}]}",
		"{\"tool\":\"dlws-mkimage\",\"recipes\":[{\"name\":\"w\",\"role\":\"worker\",\"recipe\":\"r\",\"nodes\":[],"
		"\"entries\":[{\"label\":\"w\",\"title\":\"t\",\"kernel\":\"k\",\"initrds\":[\"/abs\"],\"cmdline\":\"\"}]}]}",
		"{\"tool\":\"dlws-mkimage\",\"recipes\":[{\"name\":\"../x\",\"role\":\"worker\",\"recipe\":\"r\",\"nodes\":[],\"entries\":[]}]}",
		"{\"tool\":\"other\",\"recipes\":[]}",
		"{\"tool\":\"dlws-mkimage\",\"recipes\":[",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct diags bd = DIAGS_INIT;
		struct buildinfo x;
		CHECK(buildinfo_parse(bad[i], strlen(bad[i]), "bad", &x, &bd) < 0);
		CHECK_INTEQ(bd.n_errors, 1);
		diags_release(&bd);
	}
	buildinfo_release(&info);
	strv_release(&r.nodes);
	boot_menu_release(&r.entries);
	diags_release(&d);
}

int main(void) {
	test_recipe_path();
	test_parse_roundtrip();
	return check_summary("test_buildinfo");
}
