#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		*seen |= 2;
		return set_string(c->image, sizeof c->image, value, name, line, key, e);
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
	if (c->image[0] != '/')
		return err_set(e, -EINVAL, "%s: DLWS_INSTALL_IMAGE must be an absolute path, not '%s'",
			       name, c->image);
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
