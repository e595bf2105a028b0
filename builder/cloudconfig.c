/* The cloud-config schema, as our own table.
 *
 * Source: flatcar/coreos-cloudinit at 8df59e8f39474510fbde9440f16b5587b9a3c82d
 * (its HEAD when read; "New config location", pinned by Flatcar beta and
 * alpha 4722+, the next stable): the yaml and valid tags of
 * config/{config,unit,file,user,etcd,etcd2,flannel,fleet,locksmith,update,
 * oem}.go, what system/ and initialize/ do with the values, the -validate
 * rules in config/validate/, and how its vendored gopkg.in/yaml.v3 v3.0.1
 * (decode.go, resolve.go) reads scalars. 1c1d7f4ae6b933350d7fd36e882dda170123cccc
 * (pinned by stable 4593) has the same config/, system/, initialize/ and
 * vendored yaml.v3: the two differ only in dropped OEM datasources (Packet,
 * Rackspace) and where the OEM config is read from, so this table holds
 * for both.
 *
 * What coreos-cloudinit does, and so what we report:
 * - yaml.v3 ignores keys that match no struct tag, and tags match exactly:
 *   `drop-ins` never reaches systemd. (Its -validate maps '-' to '_' before
 *   comparing, so it wrongly passes `drop-ins`.) Unknown key: error.
 * - A value yaml.v3 cannot put in its field (a list for a string, "maybe"
 *   for a bool) fails the whole cloud-config: nothing of it is applied.
 *   Null is always fine (the field keeps its zero value).
 * - A string field takes any scalar's source text: `permissions: 0644`
 *   and `permissions: 644` reach system/file.go as "0644" and "644", which
 *   it parses in base 8, so an unquoted mode is read right. What is read
 *   wrong is a decimal mode, Ignition's habit: 420 becomes 0420.
 * - A bool field takes true/True/TRUE/false/False/FALSE unquoted, and the
 *   YAML 1.1 words (y, yes, on, n, no, off and their capitalised forms)
 *   quoted or not; a quoted "true" fails.
 * - `valid:` patterns: command, etcd2.proxy and locksmith's window are
 *   checked only by -validate, but fail where they are used (systemd,
 *   etcd, locksmithd); a bad encoding, reboot_strategy or manage_etc_hosts
 *   fails the config when it is applied.
 * - A unit or user without a name is skipped with a log line; systemd
 *   reads neither a unit file without a type suffix nor a drop-in not
 *   ending in .conf.
 * - Keys with a `deprecated` tag are warnings, as in -validate. */
#include "cloudconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "util.h"

enum field_type {
	FIELD_STRING,
	FIELD_BOOL,
	FIELD_INT,
	FIELD_FLOAT,
	FIELD_STRINGS,  /* a list of strings */
	FIELD_MAP,      /* a struct: `shape` */
	FIELD_LIST,     /* a list of structs: `shape` */
};

struct field;

/* A struct of coreos-cloudinit's config package. */
struct shape {
	const struct field *fields;
	size_t n_fields;
	/* Checks across the keys of one map; `where` names it ("coreos.units[0]"). */
	void (*check)(const struct value *map, const char *where, struct diags *d);
};

struct field {
	const char *key;
	enum field_type type;
	const struct shape *shape;      /* MAP, LIST */
	const char *const *choices;     /* STRING: the values allowed, NULL-terminated */
	/* STRING: a further check of the text; `where` names the map holding it. */
	void (*check)(const struct value *v, const char *where, struct diags *d);
	const char *deprecated;         /* why coreos-cloudinit warns about the key */
};

#define S(k) { .key = k, .type = FIELD_STRING }
#define B(k) { .key = k, .type = FIELD_BOOL }
#define I(k) { .key = k, .type = FIELD_INT }
#define F(k) { .key = k, .type = FIELD_FLOAT }
#define SHAPE(fields, fn) { fields, ARRAY_SIZE(fields), fn }

/* ---- checks of single values ---- */

static const char *const unit_types[] = {
	".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target", ".path", ".timer", ".slice", ".scope",
	/* coreos-cloudinit puts these in /etc/systemd/network for networkd */
	".network", ".netdev", ".link",
};

static void check_unit_name(const struct value *v, const char *where, struct diags *d) {
	const char *name = v->text;
	if (strchr(name, '/')) {
		diag_error(d, &v->loc, "invalid unit name '%s' in %s (a file name, without '/')", name, where);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(unit_types); i++) {
		if (streq(name, unit_types[i])) {
			diag_error(d, &v->loc, "invalid unit name '%s' in %s (a name before '%s')", name, where, name);
			return;
		}
		if (endswith(name, unit_types[i]))
			return;
	}
	const char *dot = strrchr(name, '.');
	const char *hint = dot && dot != name ? closest_match(dot, unit_types, ARRAY_SIZE(unit_types)) : NULL;
	if (hint)
		diag_error(d, &v->loc, "unit name '%s' in %s does not end in a unit type (did you mean '%.*s%s'?)", name, where,
			   (int)(dot - name), name, hint);
	else
		diag_error(d, &v->loc, "unit name '%s' in %s does not end in a unit type such as '.service'", name, where);
}

static void check_dropin_name(const struct value *v, const char *where, struct diags *d) {
	if (strchr(v->text, '/'))
		diag_error(d, &v->loc, "invalid drop-in name '%s' in %s (a file name, without '/')", v->text, where);
	else if (streq(v->text, ".conf"))
		diag_error(d, &v->loc, "invalid drop-in name '.conf' in %s (a name before '.conf')", where);
	else if (!endswith(v->text, ".conf"))
		diag_error(d, &v->loc, "drop-in name '%s' in %s does not end in '.conf' (systemd ignores it)", v->text, where);
}

static void check_path(const struct value *v, const char *where, struct diags *d) {
	if (v->text[0] != '/')
		diag_error(d, &v->loc, "path '%s' in %s is not absolute", v->text, where);
	else if (startswith(v->text, "/usr/") || streq(v->text, "/usr"))
		diag_error(d, &v->loc, "path '%s' in %s is on the read-only /usr", v->text, where);
}

static bool all_digits(const char *s, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* system/file.go parses permissions with ParseInt(s, 8, 32); -validate
 * wants ^0?[0-7]{3,4}$. */
static bool octal_mode(const char *s) {
	size_t n = strlen(s);
	if (n > 0 && s[0] == '0' && n > 3)
		s++, n--;
	if (n < 3 || n > 4)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '7')
			return false;
	return true;
}

/* A mode no one means: someone has a permission its owner lacks. */
static bool odd_mode(unsigned mode) {
	unsigned user = (mode >> 6) & 7, group = (mode >> 3) & 7, other = mode & 7;
	return (group & ~user) || (other & ~group);
}

static void check_permissions(const struct value *v, const char *where, struct diags *d) {
	static const unsigned common[] = { 0400, 0440, 0444, 0500, 0550, 0555, 0600, 0640, 0644, 0660, 0664,
					   0666, 0700, 0750, 0755, 0770, 0775, 0777 };
	const char *s = v->text;
	/* 420 written for 0644, as Ignition's JSON would have it: unless its
	 * octal reading is a sensible mode, say what was meant. */
	if (s[0] != '0' && strlen(s) <= 4 && all_digits(s, strlen(s))) {
		unsigned dec = (unsigned)strtoul(s, NULL, 10);
		for (size_t i = 0; i < ARRAY_SIZE(common); i++)
			if (dec == common[i] && (!octal_mode(s) || odd_mode((unsigned)strtoul(s, NULL, 8)))) {
				diag_error(d, &v->loc, "permissions '%s' in %s are read as octal, not decimal (did you mean '%04o'?)",
					   s, where, common[i]);
				return;
			}
	}
	if (!octal_mode(s))
		diag_error(d, &v->loc, "invalid permissions '%s' in %s (expected an octal string such as '0644')", s, where);
}

static bool day_name(const char *s) {
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	for (size_t i = 0; i < ARRAY_SIZE(days); i++)
		if (strncasecmp(s, days[i], 3) == 0)
			return true;
	return false;
}

/* Digits with any number of leading zeros and a value up to `max`. */
static const char *clock_part(const char *s, unsigned max) {
	const char *p = s;
	while (*p == '0')
		p++;
	const char *sig = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == s || p - sig > 2 || (p > sig && strtoul(sig, NULL, 10) > max))
		return NULL;
	return p;
}

/* locksmith's ^((?i:sun|mon|...|sat) )?0*([0-9]|1[0-9]|2[0-3]):0*([0-9]|[1-5][0-9])$ */
static void check_window_start(const struct value *v, const char *where, struct diags *d) {
	const char *p = v->text;
	if (strlen(p) > 4 && day_name(p) && p[3] == ' ')
		p += 4;
	p = clock_part(p, 23);
	if (p && *p == ':')
		p = clock_part(p + 1, 59);
	else
		p = NULL;
	if (!p || *p)
		diag_error(d, &v->loc, "invalid window_start '%s' in %s (expected a time such as 'thu 04:00' or '04:00')", v->text, where);
}

/* locksmith's ^[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+$, a Go duration */
static void check_window_length(const struct value *v, const char *where, struct diags *d) {
	const char *p = v->text;
	bool ok = true;
	if (*p == '-' || *p == '+')
		p++;
	if (!*p)
		ok = false;
	while (ok && *p) {
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
		ok = *p >= 'a' && *p <= 'z';
		while (*p >= 'a' && *p <= 'z')
			p++;
	}
	if (!ok)
		diag_error(d, &v->loc, "invalid window_length '%s' in %s (expected a duration such as '1h30m')", v->text, where);
}

/* ---- the schema ---- */

static const char *const commands[] = { "start", "stop", "restart", "reload", "try-restart", "reload-or-restart",
					"reload-or-try-restart", NULL };
static const char *const encodings[] = { "base64", "b64", "gz", "gzip", "gz+base64", "gzip+base64", "gz+b64", "gzip+b64", NULL };
/* The ones config/decode.go base64-decodes first. */
static const char *const base64_encodings[] = { "base64", "b64", "gz+base64", "gzip+base64", "gz+b64", "gzip+b64" };
static const char *const reboot_strategies[] = { "etcd-lock", "reboot", "off", NULL };
static const char *const etcd2_proxies[] = { "on", "off", "readonly", NULL };
static const char *const etc_hosts[] = { "localhost", NULL };

static void check_unit(const struct value *map, const char *where, struct diags *d);
static void check_dropin(const struct value *map, const char *where, struct diags *d);
static void check_file(const struct value *map, const char *where, struct diags *d);
static void check_user(const struct value *map, const char *where, struct diags *d);

static const struct field dropin_fields[] = {
	{ .key = "name", .type = FIELD_STRING, .check = check_dropin_name },
	S("content"),
};
static const struct shape dropin_shape = SHAPE(dropin_fields, check_dropin);

static const struct field unit_fields[] = {
	{ .key = "name", .type = FIELD_STRING, .check = check_unit_name },
	B("mask"),
	B("enable"),
	B("runtime"),
	S("content"),
	{ .key = "command", .type = FIELD_STRING, .choices = commands },
	{ .key = "drop_ins", .type = FIELD_LIST, .shape = &dropin_shape },
};
static const struct shape unit_shape = SHAPE(unit_fields, check_unit);

static const struct field file_fields[] = {
	{ .key = "encoding", .type = FIELD_STRING, .choices = encodings },
	S("content"),
	S("owner"),
	{ .key = "path", .type = FIELD_STRING, .check = check_path },
	{ .key = "permissions", .type = FIELD_STRING, .check = check_permissions },
};
static const struct shape file_shape = SHAPE(file_fields, check_file);

#define NETWORK_KEYS "fetches keys from the network at every boot, which often fails"
static const struct field user_fields[] = {
	S("name"),
	S("passwd"),
	{ .key = "ssh_authorized_keys", .type = FIELD_STRINGS },
	{ .key = "coreos_ssh_import_github", .type = FIELD_STRING, .deprecated = NETWORK_KEYS },
	{ .key = "coreos_ssh_import_github_users", .type = FIELD_STRINGS, .deprecated = NETWORK_KEYS },
	{ .key = "coreos_ssh_import_url", .type = FIELD_STRING, .deprecated = NETWORK_KEYS },
	S("gecos"),
	S("homedir"),
	B("no_create_home"),
	S("primary_group"),
	{ .key = "groups", .type = FIELD_STRINGS },
	B("no_user_group"),
	B("system"),
	B("no_log_init"),
	S("shell"),
};
static const struct shape user_shape = SHAPE(user_fields, check_user);

static const struct field etcd_fields[] = {
	S("addr"), S("advertise_client_urls"), S("bind_addr"), S("ca_file"), S("cert_file"),
	I("cluster_active_size"), F("cluster_remove_delay"), F("cluster_sync_interval"), S("cors"), S("data_dir"),
	S("discovery"), S("discovery_fallback"), S("discovery_srv"), S("discovery_proxy"), I("election_timeout"),
	B("force_new_cluster"), S("graphite_host"), I("heartbeat_interval"), F("http_read_timeout"),
	F("http_write_timeout"), S("initial_advertise_peer_urls"), S("initial_cluster"), S("initial_cluster_state"),
	S("initial_cluster_token"), S("key_file"), S("listen_client_urls"), S("listen_peer_urls"),
	I("max_result_buffer"), I("max_retry_attempts"), I("max_snapshots"), I("max_wals"), S("name"), S("peer_addr"),
	S("peer_bind_addr"), S("peer_ca_file"), S("peer_cert_file"), I("peer_election_timeout"),
	I("peer_heartbeat_interval"), S("peer_key_file"), S("peers"), S("peers_file"), S("proxy"), F("retry_interval"),
	B("snapshot"), I("snapshot_count"), S("trace"), B("verbose"), B("very_verbose"), B("very_very_verbose"),
};
static const struct shape etcd_shape = SHAPE(etcd_fields, NULL);

static const struct field etcd2_fields[] = {
	S("advertise_client_urls"),
	{ .key = "ca_file", .type = FIELD_STRING, .deprecated = "use trusted_ca_file and client_cert_auth" },
	S("cert_file"), B("client_cert_auth"), S("cors"), S("data_dir"),
	B("debug"), S("discovery"), S("discovery_fallback"), S("discovery_srv"), S("discovery_proxy"),
	I("election_timeout"), B("enable_pprof"), B("force_new_cluster"), I("heartbeat_interval"),
	S("initial_advertise_peer_urls"), S("initial_cluster"), S("initial_cluster_state"), S("initial_cluster_token"),
	S("key_file"), S("listen_client_urls"), S("listen_peer_urls"), S("log_package_levels"), I("max_snapshots"),
	I("max_wals"), S("name"),
	{ .key = "peer_ca_file", .type = FIELD_STRING, .deprecated = "use peer_trusted_ca_file and peer_client_cert_auth" },
	S("peer_cert_file"), S("peer_key_file"), B("peer_client_cert_auth"),
	S("peer_trusted_ca_file"),
	{ .key = "proxy", .type = FIELD_STRING, .choices = etcd2_proxies },
	I("proxy_dial_timeout"), I("proxy_failure_wait"), I("proxy_read_timeout"), I("proxy_refresh_interval"),
	I("proxy_write_timeout"), I("snapshot_count"), B("strict_reconfig_check"), S("trusted_ca_file"), S("wal_dir"),
};
static const struct shape etcd2_shape = SHAPE(etcd2_fields, NULL);

static const struct field flannel_fields[] = {
	S("etcd_endpoints"), S("etcd_cafile"), S("etcd_certfile"), S("etcd_keyfile"), S("etcd_prefix"),
	S("etcd_username"), S("etcd_password"), S("ip_masq"), S("subnet_file"), S("interface"), S("public_ip"),
};
static const struct shape flannel_shape = SHAPE(flannel_fields, NULL);

static const struct field fleet_fields[] = {
	S("agent_ttl"), S("authorized_keys_file"), B("disable_engine"), F("engine_reconcile_interval"),
	S("etcd_cafile"), S("etcd_certfile"), S("etcd_keyfile"), S("etcd_key_prefix"), F("etcd_request_timeout"),
	S("etcd_servers"), S("etcd_username"), S("etcd_password"), S("metadata"), S("public_ip"), I("token_limit"),
	I("verbosity"), B("verify_units"),
};
static const struct shape fleet_shape = SHAPE(fleet_fields, NULL);

static const struct field locksmith_fields[] = {
	S("endpoint"), S("etcd_cafile"), S("etcd_certfile"), S("etcd_keyfile"), S("etcd_username"), S("etcd_password"),
	S("group"),
	{ .key = "window_start", .type = FIELD_STRING, .check = check_window_start },
	{ .key = "window_length", .type = FIELD_STRING, .check = check_window_length },
};
static const struct shape locksmith_shape = SHAPE(locksmith_fields, NULL);

static const struct field update_fields[] = {
	{ .key = "reboot_strategy", .type = FIELD_STRING, .choices = reboot_strategies },
	S("group"),
	S("server"),
};
static const struct shape update_shape = SHAPE(update_fields, NULL);

static const struct field oem_fields[] = {
	S("id"), S("name"), S("version_id"), S("home_url"), S("bug_report_url"),
};
static const struct shape oem_shape = SHAPE(oem_fields, NULL);

static const struct field coreos_fields[] = {
	{ .key = "etcd", .type = FIELD_MAP, .shape = &etcd_shape, .deprecated = "Flatcar does not ship the etcd it configures" },
	{ .key = "etcd2", .type = FIELD_MAP, .shape = &etcd2_shape, .deprecated = "Flatcar does not ship the etcd2 it configures" },
	{ .key = "flannel", .type = FIELD_MAP, .shape = &flannel_shape },
	{ .key = "fleet", .type = FIELD_MAP, .shape = &fleet_shape, .deprecated = "Flatcar does not ship fleet" },
	{ .key = "locksmith", .type = FIELD_MAP, .shape = &locksmith_shape },
	{ .key = "oem", .type = FIELD_MAP, .shape = &oem_shape },
	{ .key = "update", .type = FIELD_MAP, .shape = &update_shape },
	{ .key = "units", .type = FIELD_LIST, .shape = &unit_shape },
};
static const struct shape coreos_shape = SHAPE(coreos_fields, NULL);

static const struct field top_fields[] = {
	{ .key = "ssh_authorized_keys", .type = FIELD_STRINGS },
	{ .key = "coreos", .type = FIELD_MAP, .shape = &coreos_shape },
	{ .key = "write_files", .type = FIELD_LIST, .shape = &file_shape },
	S("hostname"),
	{ .key = "users", .type = FIELD_LIST, .shape = &user_shape },
	{ .key = "manage_etc_hosts", .type = FIELD_STRING, .choices = etc_hosts },
};
static const struct shape top_shape = SHAPE(top_fields, NULL);

/* Messages name the top level so. */
#define TOP "cloud-config"

/* ---- checks across keys ---- */

/* A scalar at map[key] that is set (not null). */
static const struct value *scalar_at(const struct value *map, const char *key) {
	const struct value *v = value_map_get(map, key);
	return v && v->kind == VALUE_SCALAR && !value_is_null(v) ? v : NULL;
}

static void require(const struct value *map, const char *key, const char *where, struct diags *d) {
	const struct value *v = value_map_get(map, key);
	if (!v || value_is_null(v))
		diag_error(d, &map->loc, "missing required key '%s' in %s", key, where);
}

static void check_unit(const struct value *map, const char *where, struct diags *d) {
	require(map, "name", where, d);
}

static void check_dropin(const struct value *map, const char *where, struct diags *d) {
	require(map, "name", where, d);
}

static void check_user(const struct value *map, const char *where, struct diags *d) {
	require(map, "name", where, d);
}

/* Go's base64.StdEncoding, which skips line breaks and wants padding. */
static bool valid_base64(const char *s) {
	size_t n = 0, pad = 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (c == '\n' || c == '\r')
			continue;
		if (c == '=') {
			pad++;
		} else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return false;
		}
		n++;
	}
	return n % 4 == 0 && pad <= 2;
}

static void check_file(const struct value *map, const char *where, struct diags *d) {
	require(map, "path", where, d);
	const struct value *enc = scalar_at(map, "encoding");
	const struct value *content = scalar_at(map, "content");
	if (!enc || !content)
		return;
	/* gzip is left to coreos-cloudinit: checking it means inflating it. */
	for (size_t i = 0; i < ARRAY_SIZE(base64_encodings); i++)
		if (streq(enc->text, base64_encodings[i]) && !valid_base64(content->text))
			diag_error(d, &content->loc, "content in %s is not valid base64 (encoding '%s')", where, enc->text);
}

/* ---- the walk ---- */

static const struct field *find_field(const struct shape *s, const char *key) {
	for (size_t i = 0; i < s->n_fields; i++)
		if (streq(s->fields[i].key, key))
			return &s->fields[i];
	return NULL;
}

static void unknown_key(const struct value *map, size_t i, const struct shape *s, const char *where, struct diags *d) {
	const char *key = map->keys[i];
	const struct srcloc *at = &map->key_locs[i];
	/* yaml.v3 wants the tag exactly: a hyphen for an underscore is the
	 * likeliest mistake, as -validate lets it pass. */
	_cleanup_free_ char *underscored = xstrdup(key);
	for (char *p = underscored; *p; p++)
		if (*p == '-')
			*p = '_';
	if (find_field(s, underscored)) {
		diag_error(d, at, "unknown key '%s' in %s (did you mean '%s'?)", key, where, underscored);
		return;
	}
	/* A key of the other level is a misplaced key, however close it is
	 * to one of this level (`units` is not `users`). */
	if (s == &top_shape && find_field(&coreos_shape, underscored)) {
		diag_error(d, at, "unknown key '%s' in %s (did you mean 'coreos.%s'?)", key, where, underscored);
		return;
	}
	if (s == &coreos_shape && find_field(&top_shape, underscored)) {
		diag_error(d, at, "unknown key '%s' in %s ('%s' belongs at the top level)", key, where, underscored);
		return;
	}
	_cleanup_free_ const char **keys = xmalloc(s->n_fields * sizeof(*keys));
	for (size_t k = 0; k < s->n_fields; k++)
		keys[k] = s->fields[k].key;
	const char *hint = closest_match(key, keys, s->n_fields);
	if (hint)
		diag_error(d, at, "unknown key '%s' in %s (did you mean '%s'?)", key, where, hint);
	else
		diag_error(d, at, "unknown key '%s' in %s", key, where);
}

static bool is_kind(const struct value *v, enum value_kind kind, const char *path, struct diags *d) {
	if (v->kind == kind)
		return true;
	diag_error(d, &v->loc, "'%s' must be %s, not %s", path, value_kind_article(kind), value_kind_article(v->kind));
	return false;
}

/* yaml.v3 into a Go bool (decode.go): the YAML 1.2 words unquoted, the
 * YAML 1.1 ones even quoted. */
static bool go_bool(const struct value *v) {
	static const char *const core[] = { "true", "True", "TRUE", "false", "False", "FALSE" };
	static const char *const yaml11[] = { "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
					      "n", "N", "no", "No", "NO", "off", "Off", "OFF" };
	for (size_t i = 0; v->plain && i < ARRAY_SIZE(core); i++)
		if (streq(v->text, core[i]))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(yaml11); i++)
		if (streq(v->text, yaml11[i]))
			return true;
	return false;
}

static bool digits_in(const char *s, const char *set) {
	return *s && strspn(s, set) == strlen(s);
}

/* A plain scalar yaml.v3 resolves to a number (resolve.go): Go integer
 * literals (0x, 0o, 0b, a leading 0 for octal) and YAML 1.2 floats, '_'
 * allowed anywhere. An int field takes a float too, truncated; only a
 * float field takes infinity or NaN. */
static bool go_number(const struct value *v, bool is_float) {
	static const char *const specials[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
						".nan", ".NaN", ".NAN" };
	/* resolve.go only tries numbers for a sign, a digit or a dot first */
	if (!v->plain || !strchr("+-.0123456789", v->text[0]) || !v->text[0])
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(specials); i++)
		if (streq(v->text, specials[i]))
			return is_float;
	_cleanup_free_ char *s = xmalloc(strlen(v->text) + 1);
	char *o = s;
	for (const char *p = v->text; *p; p++)
		if (*p != '_')
			*o++ = *p;
	*o = '\0';
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return digits_in(p + 2, "0123456789abcdefABCDEF");
	if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
		return digits_in(p + 2, "01234567");
	if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
		return digits_in(p + 2, "01");
	/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? covers the
	 * decimal integers, and the leading-zero octals as floats. */
	size_t whole = strspn(p, "0123456789");
	const char *q = p + whole;
	size_t frac = 0;
	if (*q == '.') {
		frac = strspn(q + 1, "0123456789");
		q += 1 + frac;
	}
	if (whole == 0 && frac == 0)
		return false;
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q == '+' || *q == '-')
			q++;
		size_t exp = strspn(q, "0123456789");
		if (exp == 0)
			return false;
		q += exp;
	}
	return *q == '\0';
}

static void check_map(const struct value *map, const struct shape *s, const char *where, const char *path, struct diags *d);

static char *child_path(const char *path, const char *key) {
	return path ? xasprintf("%s.%s", path, key) : xstrdup(key);
}

static void check_choice(const struct value *v, const struct field *f, const char *where, struct diags *d) {
	size_t n = 0;
	while (f->choices[n])
		n++;
	/* The zero value passes every valid: pattern. */
	if (!*v->text)
		return;
	for (size_t i = 0; i < n; i++)
		if (streq(v->text, f->choices[i]))
			return;
	const char *hint = closest_match(v->text, f->choices, n);
	if (hint) {
		diag_error(d, &v->loc, "invalid %s '%s' in %s (did you mean '%s'?)", f->key, v->text, where, hint);
		return;
	}
	struct buf list = BUF_INIT;
	for (size_t i = 0; i < n; i++)
		buf_printf(&list, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", f->choices[i]);
	diag_error(d, &v->loc, "invalid %s '%s' in %s (expected %s)", f->key, v->text, where, list.data);
	buf_release(&list);
}

/* `v` is the value of `f` in the map `where`; `path` names the value itself. */
static void check_value(const struct value *v, const struct field *f, const char *where, const char *path, struct diags *d) {
	if (value_is_null(v))
		return;
	switch (f->type) {
	case FIELD_STRING:
		if (!is_kind(v, VALUE_SCALAR, path, d))
			return;
		if (f->choices)
			check_choice(v, f, where, d);
		if (f->check)
			f->check(v, where, d);
		return;
	case FIELD_BOOL:
		if (is_kind(v, VALUE_SCALAR, path, d) && !go_bool(v))
			diag_error(d, &v->loc, "'%s' must be true or false, not %s'%s'", path, v->plain ? "" : "the string ", v->text);
		return;
	case FIELD_INT:
	case FIELD_FLOAT:
		if (is_kind(v, VALUE_SCALAR, path, d) && !go_number(v, f->type == FIELD_FLOAT))
			diag_error(d, &v->loc, "'%s' must be %s, not %s'%s'", path, f->type == FIELD_INT ? "an integer" : "a number",
				   v->plain ? "" : "the string ", v->text);
		return;
	case FIELD_STRINGS:
		if (!is_kind(v, VALUE_LIST, path, d))
			return;
		for (size_t i = 0; i < v->n; i++) {
			_cleanup_free_ char *item = xasprintf("%s[%zu]", path, i);
			is_kind(v->items[i], VALUE_SCALAR, item, d);
		}
		return;
	case FIELD_MAP:
		if (is_kind(v, VALUE_MAP, path, d))
			check_map(v, f->shape, path, path, d);
		return;
	case FIELD_LIST:
		if (!is_kind(v, VALUE_LIST, path, d))
			return;
		for (size_t i = 0; i < v->n; i++) {
			const struct value *it = v->items[i];
			_cleanup_free_ char *item = xasprintf("%s[%zu]", path, i);
			/* yaml.v3 makes a null item a zero struct: checked as an empty map. */
			if (value_is_null(it)) {
				struct value *empty = value_new_map(&it->loc);
				check_map(empty, f->shape, item, item, d);
				value_free(empty);
			} else if (is_kind(it, VALUE_MAP, item, d)) {
				check_map(it, f->shape, item, item, d);
			}
		}
		return;
	}
}

static void check_map(const struct value *map, const struct shape *s, const char *where, const char *path, struct diags *d) {
	for (size_t i = 0; i < map->n; i++) {
		const struct field *f = find_field(s, map->keys[i]);
		if (!f) {
			unknown_key(map, i, s, where, d);
			continue;
		}
		if (f->deprecated)
			diag_warning(d, &map->key_locs[i], "deprecated key '%s' in %s (%s)", f->key, where, f->deprecated);
		_cleanup_free_ char *child = child_path(path, f->key);
		check_value(map->items[i], f, where, child, d);
	}
	if (s->check)
		s->check(map, where, d);
}

int cloudconfig_check(const struct value *doc, struct diags *d) {
	size_t errors = d->n_errors;
	if (doc->kind != VALUE_MAP) {
		diag_error(d, &doc->loc, "a cloud-config must be a map, not %s", value_kind_article(doc->kind));
		return -EINVAL;
	}
	check_map(doc, &top_shape, TOP, NULL, d);
	return d->n_errors > errors ? -EINVAL : 0;
}

bool cloudconfig_is_header(const char *text, size_t len) {
	static const char header[] = "#cloud-config";
	size_t n = sizeof(header) - 1;
	if (len < n || memcmp(text, header, n) != 0)
		return false;
	/* config.IsCloudConfig trims with unicode.IsSpace: ASCII blanks are
	 * what a template can leave there. */
	for (size_t i = n; i < len && text[i] != '\n'; i++)
		if (!strchr(" \t\r\v\f", text[i]) || text[i] == '\0')
			return false;
	return true;
}
