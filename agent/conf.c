#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sha256.h"

enum { CONF_LIMIT = 64 * 1024 };

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int set_string(char *dst, size_t n, const char *value, const char *name, int line,
		      const char *key, struct agent_err *e)
{
	if (strlen(value) >= n)
		return err_set(e, -EINVAL, "%s:%d: %s is too long", name, line, key);
	strcpy(dst, value);
	return 0;
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_hex(char c)
{
	return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A character as a message shows it: 'x', or \xHH when not printable. */
static const char *show_char(char c, char buf[8])
{
	if (c > ' ' && c < 0x7f)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "\\x%02x", (unsigned char)c);
	return buf;
}

/* "scheme://" at the start: its length (without "://"), else 0. */
static size_t scheme_length(const char *v)
{
	size_t n = 0;

	if (!((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= 'A' && v[0] <= 'Z')))
		return 0;
	while (is_alnum(v[n]) || v[n] == '+' || v[n] == '-' || v[n] == '.')
		n++;
	return strncmp(v + n, "://", 3) == 0 ? n : 0;
}

int conf_check_url(const char *url, char *why, size_t n)
{
	static const char path_extra[] = "-._~/+,=:@";
	const char *host, *p;
	size_t scheme = scheme_length(url), host_len;
	char cb[8];

	if (scheme == 4 && strncasecmp(url, "http", 4) == 0 && strncmp(url, "http", 4) != 0) {
		snprintf(why, n, "write the URL's scheme in lowercase: http://");
		return -EINVAL;
	}
	if (scheme == 5 && strncasecmp(url, "https", 5) == 0) {
		snprintf(why, n, "https:// is not supported (the live system has no CA certificates to check "
			 "the server with): use http://, DLWS_INSTALL_IMAGE_SHA256 protects the image");
		return -EINVAL;
	}
	if (scheme != 4 || strncmp(url, "http", 4) != 0) {
		snprintf(why, n, "'%.*s://' URLs are not supported, only http:// (or an absolute path)",
			 (int)(scheme ? scheme : strcspn(url, ":")), url);
		return -EINVAL;
	}
	host = url + 7;
	host_len = strcspn(host, ":/");
	if (host_len == 0) {
		snprintf(why, n, "the URL has no host");
		return -EINVAL;
	}
	for (p = host; p < host + host_len; p++) {
		if (!is_alnum(*p) && *p != '.' && *p != '-') {
			snprintf(why, n, "character %s is not allowed in the URL's host (a name or an IPv4 "
				 "address: letters, digits, '.', '-')", show_char(*p, cb));
			return -EINVAL;
		}
	}
	if (host[0] == '-' || host[0] == '.' || host_len > 253) {
		snprintf(why, n, "the URL's host '%.*s' is not a host name", (int)host_len, host);
		return -EINVAL;
	}
	p = host + host_len;
	if (*p == ':') {
		unsigned long port = 0;
		const char *digits = ++p;
		while (*p >= '0' && *p <= '9' && p - digits < 6)
			port = port * 10 + (unsigned long)(*p++ - '0');
		if (p == digits || port == 0 || port > 65535 || (*p != '/' && *p != '\0')) {
			snprintf(why, n, "the URL's port must be a number from 1 to 65535, not '%.*s'",
				 (int)strcspn(digits, "/"), digits);
			return -EINVAL;
		}
	}
	if (*p != '/' || p[1] == '\0') {
		snprintf(why, n, "the URL has no path to the image");
		return -EINVAL;
	}
	for (; *p; p++) {
		if (*p == '%') {
			if (!is_hex(p[1]) || !is_hex(p[2])) {
				snprintf(why, n, "'%%' in the URL's path must start an escape %%XX of two hex digits");
				return -EINVAL;
			}
			p += 2;
		} else if (!is_alnum(*p) && !strchr(path_extra, *p)) {
			snprintf(why, n, "character %s is not allowed in the URL's path (letters, digits, "
				 "\"%s\" and %%XX escapes are)", show_char(*p, cb), path_extra);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_line(char *s, const char *name, int line, struct install_conf *c,
		      unsigned *seen, struct agent_err *e)
{
	char *key, *value, *eq, *end;
	size_t vlen;

	while (is_blank(*s))
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	if (strncmp(s, "export", 6) == 0 && is_blank(s[6])) {
		s += 7;
		while (is_blank(*s))
			s++;
	}
	eq = strchr(s, '=');
	if (!eq)
		return err_set(e, -EINVAL, "%s:%d: expected KEY=VALUE", name, line);
	key = s;
	*eq = '\0';
	value = eq + 1;
	vlen = strlen(value);
	while (vlen > 0 && is_blank(value[vlen - 1]))
		value[--vlen] = '\0';
	if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
		value[vlen - 1] = '\0';
		value++;
	}

	if (strcmp(key, "DLWS_INSTALL_DEVICE") == 0) {
		*seen |= 1;
		return set_string(c->device, sizeof c->device, value, name, line, key, e);
	}
	if (strcmp(key, "DLWS_INSTALL_IMAGE") == 0) {
		char why[512];
		*seen |= 2;
		c->image_is_url = scheme_length(value) > 0;
		if (c->image_is_url && conf_check_url(value, why, sizeof why) < 0)
			return err_set(e, -EINVAL, "%s:%d: DLWS_INSTALL_IMAGE: %s", name, line, why);
		if (!c->image_is_url && value[0] != '/')
			return err_set(e, -EINVAL, "%s:%d: DLWS_INSTALL_IMAGE must be an absolute path or an "
				       "http:// URL, not '%s'", name, line, value);
		return set_string(c->image, sizeof c->image, value, name, line, key, e);
	}
	if (strcmp(key, "DLWS_INSTALL_IMAGE_SHA256") == 0) {
		size_t i;
		for (i = 0; i < SHA256_HEX && is_lower_hex(value[i]); i++)
			;
		if (i != SHA256_HEX || value[i] != '\0')
			return err_set(e, -EINVAL, "%s:%d: DLWS_INSTALL_IMAGE_SHA256 must be 64 lowercase hex "
				       "digits, not '%s'", name, line, value);
		memcpy(c->image_sha256, value, SHA256_HEX + 1);
		return 0;
	}
	if (strcmp(key, "DLWS_INSTALL_IMAGE_SIZE") == 0) {
		unsigned long long v;
		*seen |= 4;
		errno = 0;
		v = strtoull(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-' || v == 0)
			return err_set(e, -EINVAL, "%s:%d: DLWS_INSTALL_IMAGE_SIZE must be a positive "
				       "number of bytes, not '%s'", name, line, value);
		c->image_size = v;
		return 0;
	}
	if (strcmp(key, "DLWS_INSTALL_WIPE") == 0) {
		if (strcmp(value, "0") == 0)
			c->wipe = false;
		else if (strcmp(value, "1") == 0)
			c->wipe = true;
		else
			return err_set(e, -EINVAL, "%s:%d: DLWS_INSTALL_WIPE must be 0 or 1, not '%s'",
				       name, line, value);
		return 0;
	}
	if (strcmp(key, "DLWS_INSTALL_MEDIUM") == 0)
		return set_string(c->medium, sizeof c->medium, value, name, line, key, e);
	/* Other keys (for other readers of the file) are none of our business. */
	return 0;
}

int conf_parse(const char *text, const char *name, struct install_conf *c, struct agent_err *e)
{
	char *copy = strdup(text), *s, *next;
	unsigned seen = 0;
	int line = 0, r = 0;

	if (!copy)
		return err_set(e, -ENOMEM, "out of memory");
	memset(c, 0, sizeof *c);
	for (s = copy; s && r == 0; s = next) {
		size_t n;
		next = strchr(s, '\n');
		if (next)
			*next++ = '\0';
		n = strlen(s);
		if (n > 0 && s[n - 1] == '\r')
			s[n - 1] = '\0';
		line++;
		r = parse_line(s, name, line, c, &seen, e);
	}
	free(copy);
	if (r < 0)
		return r;
	if (!(seen & 1) || c->device[0] == '\0')
		return err_set(e, -EINVAL, "%s: DLWS_INSTALL_DEVICE is not set", name);
	if (!(seen & 2) || c->image[0] == '\0')
		return err_set(e, -EINVAL, "%s: DLWS_INSTALL_IMAGE is not set", name);
	if (c->image_is_url && c->image_sha256[0] == '\0')
		return err_set(e, -EINVAL, "%s: DLWS_INSTALL_IMAGE is an http:// URL but "
			       "DLWS_INSTALL_IMAGE_SHA256 is not set (nothing would check the download)", name);
	if (!(seen & 4))
		return err_set(e, -EINVAL, "%s: DLWS_INSTALL_IMAGE_SIZE is not set", name);
	if (strcmp(c->device, "auto") != 0 && c->device[0] != '/')
		return err_set(e, -EINVAL, "%s: DLWS_INSTALL_DEVICE must be 'auto' or an absolute "
			       "path, not '%s'", name, c->device);
	return 0;
}

int conf_load(const char *path, const char *name, struct install_conf *c, struct agent_err *e)
{
	char *buf;
	ssize_t got;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "cannot read '%s': %s", name, strerror(errno));
	buf = malloc(CONF_LIMIT + 1);
	if (!buf) {
		close(fd);
		return err_set(e, -ENOMEM, "out of memory");
	}
	while ((got = read(fd, buf + len, CONF_LIMIT + 1 - len)) > 0 && len < CONF_LIMIT + 1)
		len += (size_t)got;
	r = got < 0 ? -errno : 0;
	close(fd);
	if (r < 0) {
		free(buf);
		return err_set(e, r, "cannot read '%s': %s", name, strerror(-r));
	}
	if (len > CONF_LIMIT) {
		free(buf);
		return err_set(e, -EFBIG, "'%s' is larger than %d bytes", name, CONF_LIMIT);
	}
	buf[len] = '\0';
	r = conf_parse(buf, name, c, e);
	free(buf);
	return r;
}
