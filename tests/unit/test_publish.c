/* publish's parsers, table-driven: destinations (local or host:path, the ssh command split like rsync -e), release ids, and sh
 * quoting (checked by running sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "publish.h"
#include "util.h"

static void test_dest(void) {
	static const struct {
		const char *spec, *ssh;
		const char *host, *path, *ssh_words;    /* host NULL: local; ssh_words joined by '|' */
		const char *error;
	} cases[] = {
		{ "/srv/boot", NULL, NULL, "/srv/boot", "", NULL },
		{ "out/srv", NULL, NULL, "out/srv", "", NULL },
		{ "./a:b", NULL, NULL, "./a:b", "", NULL },
		{ "boot1:/srv/boot", "ssh", "boot1", "/srv/boot", "ssh", NULL },
		{ "root@boot1:/srv/boot", "ssh -p 2222 -i 'my key' -o \"UserKnownHostsFile=/tmp/k h\"", "root@boot1", "/srv/boot",
		  "ssh|-p|2222|-i|my key|-o|UserKnownHostsFile=/tmp/k h", NULL },
		{ "boot1:srv", "ssh  -p\\ x", "boot1", "srv", "ssh|-p x", NULL },
		{ "boot1:", "ssh", NULL, NULL, NULL, "'boot1:' names no directory on 'boot1'" },
		{ ":/srv", "ssh", NULL, NULL, NULL, "':/srv' names no usable host before ':' (write './:/srv' for a local directory)" },
		{ "-oProxyCommand=x:/srv", "ssh", NULL, NULL, NULL,
		  "'-oProxyCommand=x:/srv' names no usable host before ':' (write './-oProxyCommand=x:/srv' for a local directory)" },
		{ "h:/srv", "ssh -i 'key", NULL, NULL, NULL, "cannot split the ssh command 'ssh -i 'key' into words (an unbalanced quote?)" },
		{ "h:/srv", "  ", NULL, NULL, NULL, "cannot split the ssh command '  ' into words (an unbalanced quote?)" },
		{ "", NULL, NULL, NULL, NULL, "the destination is empty" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct diags d = DIAGS_INIT;
		struct publish_dest p = PUBLISH_DEST_INIT;
		int r = publish_dest_parse(cases[i].spec, cases[i].ssh, &p, &d);
		if (cases[i].error) {
			CHECK(r < 0);
			CHECK_INTEQ(d.n, 1);
			if (d.n)
				CHECK_STREQ(d.v[0].msg, cases[i].error);
		} else {
			CHECK_INTEQ(r, 0);
			CHECK_STREQ(p.label, cases[i].spec);
			CHECK_STREQ(p.path, cases[i].path);
			if (cases[i].host)
				CHECK_STREQ(p.host, cases[i].host);
			else
				CHECK(p.host == NULL);
			struct buf w = BUF_INIT;
			for (size_t k = 0; k < p.ssh_argv.n; k++)
				buf_printf(&w, "%s%s", k ? "|" : "", p.ssh_argv.v[k]);
			CHECK_STREQ(w.data ? w.data : "", cases[i].ssh_words);
			buf_release(&w);
		}
		publish_dest_release(&p);
		diags_release(&d);
	}
	/* The environment's ssh command when none is given. */
	setenv("DLWS_MKIMAGE_SSH", "ssh -p 2200", 1);
	struct diags d = DIAGS_INIT;
	struct publish_dest p = PUBLISH_DEST_INIT;
	CHECK_INTEQ(publish_dest_parse("h:/srv", NULL, &p, &d), 0);
	CHECK_STREQ(p.ssh, "ssh -p 2200");
	CHECK_INTEQ(p.ssh_argv.n, 3);
	publish_dest_release(&p);
	diags_release(&d);
	unsetenv("DLWS_MKIMAGE_SSH");
}

static void test_ids(void) {
	static const struct {
		const char *id;
		bool valid;
	} ids[] = {
		{ "20261201T181500Z-3fa2c1d9", true },
		{ "20261201T181500Z-3fa2c1d", false },
		{ "20261201T181500Z-3fa2c1dA", false },
		{ "20261201T181500-3fa2c1d9a", false },
		{ "20261201T181500Z-3fa2c1d9.partial", false },
		{ "../../../etc/passwd", false },
		{ "", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++)
		CHECK(publish_is_release_id(ids[i].id) == ids[i].valid);
	CHECK(!publish_is_release_id(NULL));

	const char hex[] = "3fa2c1d9" "0000000000000000000000000000000000000000000000000000000000";
	time_t t = 1796148900;  /* 2026-12-01 18:15:00 UTC */
	char *id = publish_release_id(t, NULL, hex);
	CHECK_STREQ(id, "20261201T181500Z-3fa2c1d9");
	free(id);
	/* Within the same second as the newest, or with a clock behind it:
	 * one second after it, so ids keep the order of publication. */
	id = publish_release_id(t, "20261201T181500Z-00000000", hex);
	CHECK_STREQ(id, "20261201T181501Z-3fa2c1d9");
	free(id);
	id = publish_release_id(t, "20261201T235959Z-00000000", hex);
	CHECK_STREQ(id, "20261202T000000Z-3fa2c1d9");
	free(id);
	id = publish_release_id(t, "20261130T000000Z-00000000", hex);
	CHECK_STREQ(id, "20261201T181500Z-3fa2c1d9");
	free(id);
}

/* Quoted words go through sh unchanged. */
static void test_quote(void) {
	static const char *const words[] = { "plain", "with space", "it's", "'", "$HOME `id` \"x\" \\n", "", "a\nb" };
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		char *q = publish_sh_quote(words[i]);
		char *cmd = xasprintf("printf '%%s' %s", q);
		FILE *f = popen(cmd, "r");
		struct buf out = BUF_INIT;
		char chunk[256];
		size_t n;
		while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&out, chunk, n);
		CHECK(f && pclose(f) == 0);
		CHECK_STREQ(out.data ? out.data : "", words[i]);
		buf_release(&out);
		free(cmd);
		free(q);
	}
}

int main(void) {
	test_dest();
	test_ids();
	test_quote();
	return check_summary("test_publish");
}
