/* Publishing to a directory on a server, "[user@]host:path": the tree
 * goes over with rsync (--link-dest to the kept releases), everything else
 * is a few POSIX sh scripts run through the same ssh; the lock is held by
 * one ssh session for the whole publish. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "buildinfo.h"
#include "publish_int.h"

#define EXIT_BUSY 75                    /* the lock script: held, not waiting */
#define EXIT_NO_FLOCK 69                /* the lock script: the server has no flock(1) */
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- command lines ---------------------------------------------------- */

int publish_split_words(const char *line, struct strv *ret) {
	struct strv v = STRV_INIT;
	struct buf w = BUF_INIT;
	bool in_word = false;
	int r = 0;
	for (const char *p = line;; p++) {
		char c = *p;
		if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
			if (in_word)
				strv_push_take(&v, buf_steal(&w, NULL));
			in_word = false;
			if (!c)
				break;
			continue;
		}
		in_word = true;
		if (c == '\'') {
			const char *q = strchr(p + 1, '\'');
			if (!q) {
				r = -EINVAL;
				break;
			}
			buf_append(&w, p + 1, (size_t)(q - p - 1));
			p = q;
		} else if (c == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				buf_putc(&w, *p);
			}
			if (!*p) {
				r = -EINVAL;
				break;
			}
		} else if (c == '\\' && p[1]) {
			buf_putc(&w, *++p);
		} else {
			buf_putc(&w, c);
		}
	}
	buf_release(&w);
	if (r == 0 && v.n == 0)
		r = -EINVAL;
	if (r < 0) {
		strv_release(&v);
		return r;
	}
	*ret = v;
	return 0;
}

char *publish_sh_quote(const char *s) {
	struct buf b = BUF_INIT;
	buf_putc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			buf_puts(&b, "'\\''");
		else
			buf_putc(&b, *s);
	}
	buf_putc(&b, '\'');
	return buf_steal(&b, NULL);
}

/* The last lines of a tool's stderr (ssh's warnings about known hosts left
 * out), last first; `n` at most. */
static void stderr_lines(struct buf *err, struct strv *ret, size_t n) {
	if (!err->data)
		return;
	char *s = err->data;
	for (char *e = s + err->len; e > s && ret->n < n;) {
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '))
			*--e = '\0';
		char *start = e;
		while (start > s && start[-1] != '\n')
			start--;
		if (*start && !startswith(start, "Warning: Permanently added"))
			strv_push(ret, start);
		e = start;
	}
}

/* ---- scripts ---------------------------------------------------------- */

/* Every script gets the root ($1) and its label for messages ($2). What
 * they create is 0755 whatever the session's umask: nginx and dnsmasq's
 * TFTP read the root as other users (rsync sets the modes of what it
 * copies itself: --chmod). */
#define SH_START \
	"set -u\n" \
	"umask 022\n" \
	"die() { printf '%s\\n' \"$*\" >&2; exit 1; }\n"
#define SH_ENTER \
	"[ -d \"$1\" ] || die \"'$2' is not a directory\"\n" \
	"cd \"$1\" || die \"cannot enter '$2'\"\n"
#define SH_PROLOGUE SH_START SH_ENTER

/* What is in the root: `current` and the entries of releases/. */
#define SH_STATE \
	"if [ -L current ]; then\n" \
	"  printf 'current %s\\n' \"$(readlink current)\"\n" \
	"  [ ! -f current/SHA256SUMS ] || printf 'sums %s\\n' \"$(sha256sum <current/SHA256SUMS | cut -c1-64)\"\n" \
	"elif [ -e current ]; then echo current-not-link; fi\n" \
	"for f in releases/*; do [ -e \"$f\" ] && printf 'entry %s\\n' \"${f#releases/}\"; done\n"

/* Holds the lock until our end of its stdin closes (we finish, or die);
 * a publish ($5 = create) creates a missing root. Without flock(1) there
 * is no lock to take: said before anything is created. */
static const char sh_lock[] = SH_START
	"command -v flock >/dev/null 2>&1 || exit " STR(EXIT_NO_FLOCK) "\n"
	"[ \"$5\" != create ] || [ -e \"$1\" ] || mkdir -p -- \"$1\" || die \"cannot create '$2'\"\n"
	SH_ENTER
	"mkdir -p releases || die \"cannot create '$2/releases'\"\n"
	"exec 9>>" LOCK_NAME "\n"
	"if ! flock -n 9; then\n"
	"  printf 'busy %s\\n' \"$(head -n 1 " LOCK_NAME ")\"\n"
	"  [ \"$4\" = wait ] || exit " STR(EXIT_BUSY) "\n"
	"  flock 9 || die \"cannot lock '$2/" LOCK_NAME "'\"\n"
	"fi\n"
	"printf '%s\\n' \"$3\" >" LOCK_NAME "\n"
	SH_STATE
	"b=current/" BUILDINFO_FILE "\n"
	"if [ -L current ] && [ -f \"$b\" ]; then printf 'current-buildinfo %s\\n' \"$(wc -c <\"$b\")\"; cat \"$b\"; fi\n"
	"echo ready\n"
	"cat >/dev/null\n"
	": >" LOCK_NAME "\n";

static const char sh_list[] = SH_PROLOGUE
	SH_STATE
	"echo list\n"
	"for f in releases/*; do\n"
	"  n=${f#releases/}\n"
	"  case $n in *.partial) continue;; esac\n"
	"  [ -d \"$f\" ] && [ ! -L \"$f\" ] || continue\n"
	"  printf 'size %s %s\\n' \"$n\" \"$(du -sb \"$f\" | cut -f1)\"\n"
	"  b=\"$f/" BUILDINFO_FILE "\"\n"
	"  if [ -f \"$b\" ]; then printf 'buildinfo %s %s\\n' \"$n\" \"$(wc -c <\"$b\")\"; cat \"$b\"; fi\n"
	"  for v in \"$f\"/*/vmlinuz; do [ -f \"$v\" ] || continue; v=${v%/vmlinuz}; printf 'role %s %s\\n' \"$n\" \"${v##*/}\"; done\n"
	"  for c in \"$f\"/nodes/*.cpio.zst \"$f\"/nodes/*.cpio.xz \"$f\"/nodes/*.cpio.gz; do [ -f \"$c\" ] || continue; c=${c##*/}; printf 'node %s %s\\n' \"$n\" \"${c%.cpio.*}\"; done\n"
	"done\n";

/* Lists releases/$3 for the check: its SHA256SUMS (length-prefixed), then
 * "<sum>  ./<path>" for every file and "other ./<path>" for anything else
 * that is not a directory. */
static const char sh_scan[] = SH_PROLOGUE
	"cd \"releases/$3\" || die \"cannot enter '$2/releases/$3'\"\n"
	"if [ -f SHA256SUMS ]; then printf 'sums %s\\n' \"$(wc -c <SHA256SUMS)\"; cat SHA256SUMS; else echo nosums; fi\n"
	"find . ! -type d ! -type f -exec printf 'other %s\\n' {} + || die \"cannot list '$2/releases/$3'\"\n"
	"find . -type f -exec sha256sum {} + || die \"cannot read the files of '$2/releases/$3'\"\n";

/* "same" when $3 names the root's directory (symlinks followed). */
static const char sh_same_dir[] = SH_START
	"a=$(cd \"$1\" 2>/dev/null && pwd -P) && b=$(cd \"$3\" 2>/dev/null && pwd -P) && [ \"$a\" = \"$b\" ] && echo same\n"
	"exit 0\n";

/* Promotes releases/$3.partial when $4 is 1, then points `current` at releases/$3. */
static const char sh_switch[] = SH_PROLOGUE
	"r=releases/$3\n"
	"if [ \"$4\" = 1 ]; then\n"
	"  [ ! -e \"$r\" ] || die \"'$2/$r' exists already\"\n"
	"  mv -T \"$r.partial\" \"$r\" || die \"cannot rename '$2/$r.partial' to '$2/$r'\"\n"
	"fi\n"
	"[ -d \"$r\" ] && [ ! -L \"$r\" ] || die \"'$2/$r' is not a directory\"\n"
	"if [ -e current ] && [ ! -L current ]; then die \"'$2/current' is not a symbolic link: refusing to replace it\"; fi\n"
	"find \"$r\" -exec sync -- {} + 2>/dev/null || sync\n"
	"rm -f current.new && ln -s \"$r\" current.new || die \"cannot create '$2/current.new'\"\n"
	"mv -T current.new current || die \"cannot rename '$2/current.new' to '$2/current'\"\n"
	"sync -- . 2>/dev/null || sync\n";

/* Removes releases/$3...; a release goes through <id>.partial. */
static const char sh_remove[] = SH_PROLOGUE
	"cd releases || exit 0\n"
	"shift 2\n"
	"for n; do\n"
	"  case $n in *.partial) ;; *) mv -T \"$n\" \"$n.partial\" || die \"cannot rename '$n' in releases/\"; n=$n.partial;; esac\n"
	"  rm -rf \"$n\" || die \"cannot remove '$n' in releases/\"\n"
	"done\n";

/* ssh ... HOST "sh -c 'SCRIPT' dlws-publish 'ROOT' 'LABEL' 'ARG'...": the
 * remote login shell only has to pass quoted words on to sh. */
static void remote_argv(const struct publish_dest *dest, const char *script, const char *const *args, size_t n_args,
			struct strv *argv) {
	for (size_t i = 0; i < dest->ssh_argv.n; i++)
		strv_push(argv, dest->ssh_argv.v[i]);
	strv_push(argv, dest->host);
	struct buf cmd = BUF_INIT;
	_cleanup_free_ char *q = publish_sh_quote(script);
	buf_printf(&cmd, "sh -c %s dlws-publish", q);
	const char *fixed[] = { dest->path, dest->label };
	for (size_t i = 0; i < 2 + n_args; i++) {
		_cleanup_free_ char *a = publish_sh_quote(i < 2 ? fixed[i] : args[i - 2]);
		buf_printf(&cmd, " %s", a);
	}
	strv_push_take(argv, buf_steal(&cmd, NULL));
}

static int remote_failed(const struct publish_dest *dest, int status, struct buf *err, struct diags *d) {
	struct strv lines = STRV_INIT;
	stderr_lines(err, &lines, 4);
	const char *last = lines.n ? lines.v[0] : "no message";
	char st[64];
	if (WIFEXITED(status) && WEXITSTATUS(status) == 255)
		diag_error(d, NULL, "cannot run commands on '%s' with '%s': %s", dest->host, dest->ssh, last);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && lines.n)
		diag_error(d, NULL, "%s", last);
	else
		diag_error(d, NULL, "a command on '%s' failed (%s): %s", dest->host, child_status_text(status, st), last);
	for (size_t i = lines.n; i-- > 1;)
		diag_note(d, NULL, "%s", lines.v[i]);
	strv_release(&lines);
	return -EIO;
}

static int remote_sh(const struct publish_dest *dest, const char *script, const char *const *args, size_t n_args,
		     struct buf *out, struct diags *d) {
	struct strv argv = STRV_INIT;
	remote_argv(dest, script, args, n_args, &argv);
	struct buf err = { .limit = 64 << 10 };
	int status = 0;
	int r = run_capture((const char *const *)argv.v, out, &err, &status, d);
	if (r == 0 && status != 0)
		r = remote_failed(dest, status, &err, d);
	buf_release(&err);
	strv_release(&argv);
	return r;
}

/* Lines of a script's output: each call returns the next one (NUL-terminated in place), NULL at the end. */
static char *next_line(char **cursor, char *end) {
	if (*cursor >= end)
		return NULL;
	char *line = *cursor;
	char *nl = memchr(line, '\n', (size_t)(end - line));
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = end;
	}
	return line;
}

/* `count` bytes (decimal, from the line before) at *cursor, copied: what
 * a script sends with "cat" after a "wc -c". */
static int take_block(const char *count, char **cursor, char *end, char **ret, size_t *ret_len) {
	char *e;
	errno = 0;
	unsigned long long n = strtoull(count, &e, 10);
	if (errno || e == count || n > (unsigned long long)(end - *cursor) || n > SUMS_LIMIT)
		return -EIO;
	*ret = xstrndup(*cursor, (size_t)n);
	*ret_len = (size_t)n;
	*cursor += n;
	return 0;
}

static void remote_parse_state(char *text, size_t len, struct state *st) {
	char *cursor = text, *line;
	const char *target = NULL;
	while ((line = next_line(&cursor, text + len))) {
		if (startswith(line, "current-buildinfo ")) {
			free(st->current_info);
			st->current_info = NULL;
			if (take_block(line + strlen("current-buildinfo "), &cursor, text + len, &st->current_info, &st->current_info_len) < 0)
				break;
		} else if (startswith(line, "current ")) {
			target = line + strlen("current ");
		} else if (streq(line, "current-not-link")) {
			st->current_foreign = true;
		} else if (startswith(line, "sums ") && strlen(line) == 5 + SHA256_HEX_LEN && is_sha256_hex(line + 5)) {
			memcpy(st->current_sums, line + 5, SHA256_HEX_LEN + 1);
		} else if (startswith(line, "entry ")) {
			state_add_entry(st, line + strlen("entry "));
		}
	}
	state_set_current(st, target);
	if (!st->current) {
		st->current_sums[0] = '\0';
		free(st->current_info);
		st->current_info = NULL;
	}
}

int remote_lock(const struct publish_dest *dest, const struct publish_opts *o, bool create, struct remote_lock *lk,
		struct state *st, struct diags *d) {
	_cleanup_free_ char *me = lock_holder_text(NULL);
	const char *args[] = { me, o->no_wait ? "nowait" : "wait", create ? "create" : "exists" };
	struct strv argv = STRV_INIT;
	remote_argv(dest, sh_lock, args, 3, &argv);
	lk->err.limit = 64 << 10;
	int r = child_start((const char *const *)argv.v, CHILD_STDIN, &lk->c, d);
	strv_release(&argv);
	if (r < 0)
		return r;
	size_t seen = 0;
	bool ready = false, waited = false;
	char *holder = NULL;
	while (!ready && child_pump(&lk->c, &lk->out, &lk->err)) {
		char *nl;
		while (!ready && lk->out.data && (nl = memchr(lk->out.data + seen, '\n', lk->out.len - seen))) {
			char *line = xstrndup(lk->out.data + seen, (size_t)(nl - lk->out.data - seen));
			seen = (size_t)(nl - lk->out.data) + 1;
			if (streq(line, "ready")) {
				ready = true;
			} else if (startswith(line, "busy ") && !waited) {
				free(holder);
				holder = xstrdup(line + 5);
				if (!o->no_wait) {
					_cleanup_free_ char *who = lock_holder_describe(holder);
					publish_note(o, false, "waiting for the publish of %s to finish", who);
				}
				waited = true;
			}
			free(line);
		}
	}
	if (ready) {
		remote_parse_state(lk->out.data, seen, st);
		free(holder);
		return 0;
	}
	int status = child_finish(&lk->c, &lk->out, &lk->err);
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_BUSY) {
		r = lock_busy_error(dest, holder, d);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_NO_FLOCK) {
		const char *at = strrchr(dest->host, '@');
		diag_error(d, NULL, "cannot lock '%s': '%s' has no flock(1) (util-linux)", dest->label, at ? at + 1 : dest->host);
		r = -ENOSYS;
	} else {
		r = remote_failed(dest, status, &lk->err, d);
	}
	free(holder);
	return r;
}

/* The lock is ours while the session holding it lasts: a dropped
 * connection must not let a publish switch `current` unlocked. */
static int remote_lock_held(const struct publish_dest *dest, struct remote_lock *lk, struct diags *d) {
	if (!lk || child_running(&lk->c))
		return 0;
	diag_error(d, NULL, "lost the lock on '%s': the ssh session holding it ended", dest->label);
	return -EIO;
}

void remote_unlock(struct remote_lock *lk) {
	(void)child_finish(&lk->c, &lk->out, &lk->err);
	buf_release(&lk->out);
	buf_release(&lk->err);
}

int remote_land(const struct publish_dest *dest, const struct bundle *b, const char *id, const struct state *st,
		const struct publish_opts *o, struct diags *d) {
	struct strv argv = STRV_INIT;
	/* -c: decide by content, never by size and time (a tar's files all
	 * carry one mtime); no -t and fixed modes, so an unchanged file
	 * matches its kept copy in every attribute and is hard-linked. */
	const char *fixed[] = { "rsync", "-r", "-c", "-p", "--chmod=D755,F644", "-e" };
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		strv_push(&argv, fixed[i]);
	strv_push(&argv, dest->ssh);
	size_t used = 0;
	if (st->current) {
		strv_push_take(&argv, xasprintf("--link-dest=../%s", st->current));
		used++;
	}
	for (size_t i = st->releases.n; i-- > 0 && used < LINK_SOURCES_MAX;)
		if (!streq(st->releases.v[i], st->current)) {
			strv_push_take(&argv, xasprintf("--link-dest=../%s", st->releases.v[i]));
			used++;
		}
	strv_push_take(&argv, xasprintf("%s/", b->dir));
	strv_push_take(&argv, xasprintf("%s:%s/releases/%s.partial/", dest->host, dest->path, id));
	publish_note(o, true, "running rsync to '%s:%s/releases/%s.partial/'", dest->host, dest->path, id);
	struct buf out = BUF_INIT, err = { .limit = 64 << 10 };
	int status = 0;
	int r = run_capture((const char *const *)argv.v, &out, &err, &status, d);
	if (r == 0 && status != 0) {
		struct strv lines = STRV_INIT;
		stderr_lines(&err, &lines, 4);
		char stx[64];
		diag_error(d, NULL, "cannot copy '%s' to '%s' with rsync (%s): %s", b->arg, dest->label, child_status_text(status, stx),
			   lines.n ? lines.v[0] : "no message");
		for (size_t i = lines.n; i-- > 1;)
			diag_note(d, NULL, "%s", lines.v[i]);
		strv_release(&lines);
		r = -EIO;
	}
	buf_release(&out);
	buf_release(&err);
	strv_release(&argv);
	return r;
}

int remote_scan(const struct publish_dest *dest, const char *name, struct scan *s, struct diags *d) {
	struct buf out = BUF_INIT;
	const char *args[] = { name };
	int r = remote_sh(dest, sh_scan, args, 1, &out, d);
	if (r < 0) {
		buf_release(&out);
		return r;
	}
	char *text = out.data ? out.data : (char *)"";
	char *end = text + out.len, *cursor = text;
	char *first = next_line(&cursor, end);
	if (first && startswith(first, "sums ") && take_block(first + 5, &cursor, end, &s->sums_text, &s->sums_len) < 0) {
		diag_error(d, NULL, "cannot read '%s/releases/%s/%s': unexpected answer", dest->label, name, SHA256SUMS_NAME);
		buf_release(&out);
		return -EIO;
	}
	char *line;
	while ((line = next_line(&cursor, end))) {
		if (startswith(line, "other ./"))
			scan_add(s, line + strlen("other ./"), NULL);
		else if (strlen(line) > SHA256_HEX_LEN + 4 && is_sha256_hex(line) && startswith(line + SHA256_HEX_LEN, "  ./")) {
			line[SHA256_HEX_LEN] = '\0';
			scan_add(s, line + SHA256_HEX_LEN + 4, line);
		}
		else if (*line)
			scan_add(s, line, NULL);  /* a name sha256sum had to escape: not ours */
	}
	buf_release(&out);
	return 0;
}

/* After the state lines: "size ID BYTES", "buildinfo ID BYTES" and the
 * file, "role ID NAME", "node ID HOSTNAME". */
static void remote_parse_list(char *text, size_t len, const struct state *st, const char *label, struct publish_release *v) {
	bool *known = xcalloc(st->releases.n ? st->releases.n : 1, sizeof(*known));
	char *cursor = text, *end = text + len, *line;
	while ((line = next_line(&cursor, end))) {
		char *sp1 = strchr(line, ' ');
		char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		if (!sp2)
			continue;
		*sp1 = *sp2 = '\0';
		const char *id = sp1 + 1, *value = sp2 + 1;
		size_t i = 0;
		while (i < st->releases.n && !streq(v[i].id, id))
			i++;
		char *meta = NULL;
		size_t meta_len = 0;
		if (streq(line, "buildinfo") && take_block(value, &cursor, end, &meta, &meta_len) == 0 && i < st->releases.n) {
			_cleanup_free_ char *where = xasprintf("%s/releases/%s/%s", label, id, BUILDINFO_FILE);
			known[i] = release_info_from_buildinfo(meta, meta_len, where, &v[i]);
		}
		free(meta);
		if (i == st->releases.n)
			continue;
		if (streq(line, "size"))
			v[i].size = strtoull(value, NULL, 10);
		else if (streq(line, "role") && !known[i])
			strv_push(&v[i].roles, value);
		else if (streq(line, "node") && !known[i])
			strv_push(&v[i].nodes, value);
	}
	free(known);
}

int remote_list(const struct publish_dest *dest, struct publish_release **ret, size_t *ret_n, struct diags *d) {
	struct buf out = BUF_INIT;
	int r = remote_sh(dest, sh_list, NULL, 0, &out, d);
	if (r < 0) {
		buf_release(&out);
		return r;
	}
	char *text = out.data ? out.data : (char *)"";
	/* The state lines come first, up to "list". */
	char *list = startswith(text, "list\n") ? text : strstr(text, "\nlist\n");
	if (list && list != text)
		list++;
	size_t state_len = list ? (size_t)(list - text) : out.len;
	char *rest = list ? list + strlen("list\n") : text + out.len;
	struct state st = { 0 };
	remote_parse_state(text, state_len, &st);
	struct publish_release *v = releases_of(&st);
	remote_parse_list(rest, (size_t)(text + out.len - rest), &st, dest->label, v);
	*ret = v;
	*ret_n = st.releases.n;
	state_release(&st);
	buf_release(&out);
	return 0;
}

int remote_switch(const struct publish_dest *dest, struct remote_lock *lk, const char *id, bool promote, struct diags *d) {
	int r = remote_lock_held(dest, lk, d);
	if (r < 0)
		return r;
	struct buf out = BUF_INIT;
	const char *args[] = { id, promote ? "1" : "0" };
	r = remote_sh(dest, sh_switch, args, 2, &out, d);
	buf_release(&out);
	return r;
}

int remote_remove(const struct publish_dest *dest, struct remote_lock *lk, const struct strv *names, struct diags *d) {
	int r = remote_lock_held(dest, lk, d);
	if (r < 0)
		return r;
	struct buf out = BUF_INIT;
	r = remote_sh(dest, sh_remove, (const char *const *)names->v, names->n, &out, d);
	buf_release(&out);
	return r;
}

bool remote_same_dir(const struct publish_dest *dest, const char *other) {
	struct buf out = BUF_INIT;
	struct diags quiet = DIAGS_INIT;
	const char *args[] = { other };
	bool same = remote_sh(dest, sh_same_dir, args, 1, &out, &quiet) == 0 && out.data && streq(out.data, "same\n");
	buf_release(&out);
	diags_release(&quiet);
	return same;
}
