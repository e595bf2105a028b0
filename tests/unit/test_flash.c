/* The flash module on regular files (block devices are test_flash.sh's):
 * bad images, the refusals that need no device, a write whose progress
 * starts at 0, only grows and ends at the image's size, the sha256, and a
 * read-back that finds the first changed byte or a short target. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "diag.h"
#include "flash.h"
#include "fsutil.h"
#include "hash.h"
#include "util.h"

#define IMAGE_SIZE ((size_t)FLASH_BLOCK_SIZE + 5 * 1048576 + 777)      /* two full blocks and a ragged tail */

static void write_bytes(const char *path, const void *data, size_t len) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static void check_one_error(struct diags *d, const char *want) {
	CHECK_INTEQ(d->n, 1);
	if (d->n)
		CHECK_STREQ(d->v[0].msg, want);
	diags_release(d);
}

struct calls {
	size_t n;
	uint64_t first, last, total;
	bool monotonic;
	enum flash_phase phase;
};

static void record(void *ctx, enum flash_phase phase, uint64_t done, uint64_t total) {
	struct calls *c = ctx;
	if (c->n == 0)
		c->first = done;
	else if (done < c->last || phase != c->phase)
		c->monotonic = false;
	c->n++;
	c->last = done;
	c->total = total;
	c->phase = phase;
}

static void test_bad_images(void) {
	struct diags d = DIAGS_INIT;
	struct flash *f = NULL;
	CHECK_INTEQ(flash_new("nosuch", "target", true, &f, &d), -ENOENT);
	check_one_error(&d, "cannot open image 'nosuch': No such file or directory");
	CHECK_INTEQ(flash_new(".", "target", true, &f, &d), -EISDIR);
	check_one_error(&d, "image '.' is a directory");
	write_bytes("empty", "", 0);
	CHECK_INTEQ(flash_new("empty", "target", true, &f, &d), -EINVAL);
	check_one_error(&d, "image 'empty' is empty");
	CHECK(f == NULL);
}

static void test_refusals(void) {
	struct diags d = DIAGS_INIT;
	struct flash *f = NULL;
	CHECK_INTEQ(flash_new("image", "nosuch", false, &f, &d), -ENOENT);
	check_one_error(&d, "cannot open 'nosuch': No such file or directory");

	write_bytes("existing", "x", 1);
	CHECK_INTEQ(flash_new("image", "existing", false, &f, &d), 0);
	CHECK_INTEQ(flash_check(f, &d), FLASH_REFUSED);
	check_one_error(&d, "refusing 'existing': a regular file, not a block device (--allow-file writes to a file)");
	flash_free(f);

	CHECK_INTEQ(flash_new("image", "image", true, &f, &d), 0);
	CHECK_INTEQ(flash_check(f, &d), FLASH_REFUSED);
	check_one_error(&d, "refusing 'image': it is the image itself");
	flash_free(f);

	CHECK_INTEQ(flash_new("image", "/dev/null", true, &f, &d), 0);
	CHECK_INTEQ(flash_check(f, &d), FLASH_REFUSED);
	check_one_error(&d, "refusing '/dev/null': a character device, not a block device");
	flash_free(f);

	CHECK_INTEQ(flash_new("image", ".", true, &f, &d), 0);
	CHECK_INTEQ(flash_check(f, &d), FLASH_REFUSED);
	check_one_error(&d, "refusing '.': a directory, not a block device");
	flash_free(f);
}

/* A file to create is made only once the write is confirmed
 * (flash_create): opening it checks its directory and makes nothing, so
 * a refusal at the question leaves no file behind. */
static void test_new_file_made_when_confirmed(void) {
	struct diags d = DIAGS_INIT;
	struct flash *f = NULL;
	CHECK_INTEQ(flash_new("image", "declined", true, &f, &d), 0);
	if (!f)
		return;
	CHECK_INTEQ(flash_check(f, &d), 0);
	CHECK_INTEQ(flash_open_target(f, &d), 0);
	CHECK_INTEQ(d.n, 0);
	flash_free(f);
	CHECK(access("declined", F_OK) < 0);

	CHECK_INTEQ(flash_new("image", "nodir/new.img", true, &f, &d), 0);
	CHECK_INTEQ(flash_check(f, &d), 0);
	CHECK_INTEQ(flash_open_target(f, &d), -ENOENT);
	check_one_error(&d, "cannot create 'nodir/new.img': No such file or directory");
	flash_free(f);
}

/* Writes `image` onto a new file `target`; returns the open job. */
static struct flash *write_new(const char *target, struct calls *c) {
	struct diags d = DIAGS_INIT;
	struct flash *f = NULL;
	CHECK_INTEQ(flash_new("image", target, true, &f, &d), 0);
	if (!f)
		return NULL;
	CHECK(f->create);
	CHECK_INTEQ(flash_check(f, &d), 0);
	CHECK_INTEQ(flash_open_target(f, &d), 0);
	CHECK(!f->created && access(target, F_OK) < 0);
	CHECK_INTEQ(flash_create(f, &d), 0);
	CHECK(f->created && access(target, F_OK) == 0);
	*c = (struct calls){ .monotonic = true };
	CHECK_INTEQ(flash_write(f, record, c, &d), 0);
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
	return f;
}

static void test_write_and_verify(const unsigned char *image) {
	struct diags d = DIAGS_INIT;
	struct calls c;
	struct flash *f = write_new("out", &c);
	if (!f)
		return;
	CHECK_INTEQ(c.first, 0);
	CHECK_INTEQ(c.last, IMAGE_SIZE);
	CHECK_INTEQ(c.total, IMAGE_SIZE);
	CHECK_INTEQ(c.n, 1 + (IMAGE_SIZE + FLASH_BLOCK_SIZE - 1) / FLASH_BLOCK_SIZE);
	CHECK(c.monotonic);
	CHECK(c.phase == FLASH_WRITING);
	char want[SHA256_HEX_LEN + 1];
	sha256_hex(image, IMAGE_SIZE, want);
	CHECK_STREQ(f->sha256, want);

	c = (struct calls){ .monotonic = true };
	uint64_t at = 0;
	CHECK_INTEQ(flash_verify(f, record, &c, &at, &d), 0);
	CHECK_INTEQ(d.n, 0);
	CHECK(c.phase == FLASH_VERIFYING);
	CHECK_INTEQ(c.last, IMAGE_SIZE);
	CHECK(c.monotonic);
	flash_free(f);

	char *got = NULL;
	size_t len = 0;
	CHECK_INTEQ(read_file("out", IMAGE_SIZE + 1, &got, &len, &d), 0);
	CHECK(len == IMAGE_SIZE && got && memcmp(got, image, IMAGE_SIZE) == 0);
	free(got);
	diags_release(&d);
}

/* The target changes between write and read-back, as a failing stick does. */
static void test_verify_finds_changes(void) {
	struct diags d = DIAGS_INIT;
	struct calls c;
	struct flash *f = write_new("changed", &c);
	if (!f)
		return;
	uint64_t at = 0, flip_at = FLASH_BLOCK_SIZE + 10;
	int fd = open("changed", O_RDWR);
	unsigned char byte;
	CHECK(pread(fd, &byte, 1, (off_t)flip_at) == 1);
	byte ^= 0x01;
	CHECK(pwrite(fd, &byte, 1, (off_t)flip_at) == 1);
	close(fd);
	CHECK_INTEQ(flash_verify(f, NULL, NULL, &at, &d), FLASH_MISMATCH);
	CHECK_INTEQ(at, flip_at);
	check_one_error(&d, "'changed' reads back differently from the image: first difference at byte 4194314");
	flash_free(f);

	f = write_new("short", &c);
	if (!f)
		return;
	CHECK_INTEQ(truncate("short", 1000), 0);
	CHECK_INTEQ(flash_verify(f, NULL, NULL, &at, &d), -EIO);
	check_one_error(&d, "cannot read back 'short': it ends at byte 1000");
	flash_free(f);
}

int main(void) {
	char tmpl[] = "/tmp/test_flash.XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (!dir || chdir(dir) < 0) {
		perror("test_flash: temp dir");
		return 1;
	}
	unsigned char *image = xmalloc(IMAGE_SIZE);
	uint32_t x = 12345;
	for (size_t i = 0; i < IMAGE_SIZE; i++) {
		x = x * 1103515245u + 12345u;
		image[i] = (unsigned char)(x >> 16);
	}
	write_bytes("image", image, IMAGE_SIZE);
	test_bad_images();
	test_refusals();
	test_new_file_made_when_confirmed();
	test_write_and_verify(image);
	test_verify_finds_changes();
	free(image);
	if (chdir("/") == 0) {
		const char *files[] = { "image", "empty", "existing", "out", "changed", "short" };
		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			char *p = path_join(dir, files[i]);
			unlink(p);
			free(p);
		}
		rmdir(dir);
	}
	return check_summary("test_flash");
}
