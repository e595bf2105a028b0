#!/usr/bin/env bash
# `flash IMAGE DEVICE` on loop devices only (never a real disk is written):
# the device reads back as the image (cmp), a regular file only with
# --allow-file, every refusal (exit 3, nothing written) with its exact
# message, the confirmation and the progress bar under a pseudo-terminal
# (script), and, through a loop device on a small FUSE file that flips or
# fails one byte on read, a real read-back mismatch (exit 4) and a read
# error (exit 1).
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK" || exit 1

if [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	skip flash "needs root and loop devices (losetup)"
	finish
fi

# Everything this script attaches, mounts or starts goes away with it, in
# the order that lets it: filesystems, swap, loop devices, FUSE, helpers.
# The order lets each go: holders first, the FUSE servers last.
MOUNTS=() SWAPS=() LOOPS=() FUSE_MOUNTS=() PIDS=() FUSE_PIDS=()
cleanup() {
	local i
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null; done
	for s in "${SWAPS[@]}"; do swapoff "$s" 2>/dev/null; done
	# A loop device still open (the namespace above going away) is
	# detached when its last user closes it.
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
	for m in "${FUSE_MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	for p in "${FUSE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# loop VAR FILE [losetup options]: attaches FILE, its device into VAR (no
# subshell, so that the cleanup knows it).
loop() {
	local dev
	dev=$(losetup -f --show "${@:3}" "$2") || return 1
	LOOPS+=("$dev")
	printf -v "$1" %s "$dev"
}
mnt() { mkdir -p "$2" && mount "$1" "$2" && MOUNTS+=("$2"); }
sha() { head -c "$2" "$1" | sha256sum | cut -d' ' -f1; }

# An image whose size is not a multiple of 4 MiB nor of 512 bytes: the tail
# goes through the page cache, the rest with O_DIRECT.
head -c 9437184 /dev/urandom >img
printf 'tail of the image' >>img
size=$(stat -c %s img)
# The stick: 16 MiB of 0xaa, so that bytes past the image can be checked.
head -c 16777216 /dev/zero | tr '\0' '\252' >stick
loop L stick

"$MK" flash --yes img "$L" >out 2>err
rc=$?
if [ $rc = 0 ] && cmp -s -n "$size" img "$L" && grep -qx "verified: $L reads back as the image (sha256 $(sha img "$size"))" err; then
	pass flash_loop_device_verified
else
	fail flash_loop_device_verified "rc=$rc $(cat err)"
fi
if [ "$(tail -c +$((size + 1)) "$L" | tr -d '\252' | wc -c)" = 0 ]; then pass flash_leaves_rest_of_device_untouched; else fail flash_leaves_rest_of_device_untouched "bytes past the image changed"; fi
if grep -q "^device: $L, loop device of '$WORK/stick', 16.0 MiB (16777216 bytes), not removable$" err &&
	grep -q "^image:  img, 9.0 MiB ($size bytes)$" err && [ ! -s out ]; then
	pass flash_shows_device
else
	fail flash_shows_device "$(cat err)"
fi
if [ "$(tr -cd '\r' <err | wc -c)" = 0 ] && ! grep -q 'left\|\[#' err; then pass progress_absent_off_terminal; else fail progress_absent_off_terminal "$(od -c err | head)"; fi
"$MK" flash -q --yes img "$L" >out 2>err
if [ $? = 0 ] && [ ! -s out ] && [ ! -s err ]; then pass flash_quiet_prints_nothing; else fail flash_quiet_prints_nothing "$(cat err)"; fi
# A loop device takes O_DIRECT whatever its backing file's filesystem does
# (the ramfs file below does not: the buffered fallback).
"$MK" flash -v --yes img "$L" >out 2>err
if [ $? = 0 ] && grep -qx 'writing in 4 MiB blocks, O_DIRECT' err && cmp -s -n "$size" img "$L"; then
	pass flash_loop_device_uses_o_direct
else
	fail flash_loop_device_uses_o_direct "$(cat err)"
fi

# A regular file: only with --allow-file (then made when missing).
"$MK" flash --yes --allow-file img file.img 2>err
if [ $? = 0 ] && cmp -s img file.img; then pass flash_allow_file_creates; else fail flash_allow_file_creates "$(cat err)"; fi
head -c 20000000 /dev/zero >file2.img
"$MK" flash --yes --allow-file img file2.img 2>err
if [ $? = 0 ] && cmp -s -n "$size" img file2.img && [ "$(stat -c %s file2.img)" = 20000000 ]; then pass flash_allow_file_existing; else fail flash_allow_file_existing "$(cat err)"; fi
cp file2.img before.img
"$MK" flash --yes img file2.img 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing 'file2.img': a regular file, not a block device (--allow-file writes to a file)" err &&
	cmp -s before.img file2.img; then
	pass refuse_regular_file_without_allow_file
else
	fail refuse_regular_file_without_allow_file "$(cat err)"
fi
"$MK" flash --yes img nosuch.img 2>err
if [ $? = 1 ] && grep -qx "dlws-mkimage: error: cannot open 'nosuch.img': No such file or directory" err && [ ! -e nosuch.img ]; then
	pass missing_device_without_allow_file
else
	fail missing_device_without_allow_file "$(cat err)"
fi
# The file is made only once the write is confirmed: a refusal (no
# terminal, no --yes) leaves none; its directory is checked before asking.
"$MK" flash --allow-file img new.img </dev/null 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing 'new.img': not confirmed, standard input is not a terminal (--yes writes without asking)" err &&
	[ ! -e new.img ]; then
	pass refused_new_file_left_no_file
else
	fail refused_new_file_left_no_file "$(cat err; ls -l new.img 2>&1)"
fi
"$MK" flash --allow-file img nodir/new.img </dev/null 2>err
if [ $? = 1 ] && grep -qx "dlws-mkimage: error: cannot create 'nodir/new.img': No such file or directory" err && ! grep -q 'not confirmed' err; then
	pass new_file_directory_checked_before_asking
else
	fail new_file_directory_checked_before_asking "$(cat err)"
fi
"$MK" flash --yes --allow-file img img 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing 'img': it is the image itself" err; then pass refuse_image_onto_itself; else fail refuse_image_onto_itself "$(cat err)"; fi
# ramfs takes no O_DIRECT: buffered writes, the same result.
mkdir -p ramfs && mount -t ramfs ramfs ramfs && MOUNTS+=("$WORK/ramfs")
"$MK" flash -v --yes --allow-file img ramfs/file.img 2>err
if [ $? = 0 ] && cmp -s img ramfs/file.img && grep -qx 'writing in 4 MiB blocks, through the page cache (the device does not take O_DIRECT)' err; then
	pass flash_buffered_without_o_direct
else
	fail flash_buffered_without_o_direct "$(cat err)"
fi
"$MK" flash --yes img /dev/null 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '/dev/null': a character device, not a block device" err; then pass refuse_character_device; else fail refuse_character_device "$(cat err)"; fi

# Too small: a 4 MiB loop device for a 9 MiB image; nothing written.
head -c 4194304 /dev/zero >small
loop S small
"$MK" flash --yes img "$S" 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$S': too small: 4194304 bytes, the image has $size" err &&
	[ "$(sha "$S" 4194304)" = "$(sha small 4194304)" ] && [ "$(tr -d '\0' <"$S" | wc -c)" = 0 ]; then
	pass refuse_too_small
else
	fail refuse_too_small "$(cat err)"
fi

# No terminal on standard input and no --yes: refused, nothing written.
head -c 16777216 /dev/zero >stick2
loop L2 stick2
"$MK" flash img "$L2" </dev/null 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$L2': not confirmed, standard input is not a terminal (--yes writes without asking)" err &&
	[ "$(tr -d '\0' <"$L2" | wc -c)" = 0 ]; then
	pass refuse_without_terminal_or_yes
else
	fail refuse_without_terminal_or_yes "$(cat err)"
fi

# Under a pseudo-terminal: anything but "yes" refuses; "yes" writes, with
# a progress bar (rate, time left) for the write and for the verify.
printf 'y\n' | script -qec "'$MK' flash img '$L2'" /dev/null >tty.out 2>&1
rc=$?
if [ $rc = 3 ] && grep -q "type 'yes' to write" tty.out && grep -q "refusing '$L2': not confirmed (typed 'y', not 'yes'); nothing written" tty.out &&
	[ "$(tr -d '\0' <"$L2" | wc -c)" = 0 ]; then
	pass confirm_other_answer_refuses
else
	fail confirm_other_answer_refuses "rc=$rc $(cat tty.out)"
fi
printf 'yes\n' | script -qec "'$MK' flash img '$L2'" /dev/null >tty.out 2>&1
rc=$?
if [ $rc = 0 ] && cmp -s -n "$size" img "$L2" && grep -q "verified: $L2 reads back as the image" tty.out; then
	pass confirm_yes_writes
else
	fail confirm_yes_writes "rc=$rc $(cat tty.out)"
fi
if grep -q $'\r''writing   \[--------------------\]   0%' tty.out && grep -q $'\r''writing   \[####################\] 100%' tty.out &&
	grep -q $'\r''verifying \[####################\] 100%' tty.out && grep -q ' left ' tty.out && grep -Eq '[0-9.]+ [KMG]iB/s' tty.out &&
	grep -q 'done in [0-9]:[0-9][0-9]' tty.out; then
	pass progress_on_terminal
else
	fail progress_on_terminal "$(od -c tty.out | head -20)"
fi
script -qec "'$MK' flash -q --yes img '$L2'" /dev/null >tty.out 2>&1
if [ $? = 0 ] && ! grep -q 'left\|%\|verified' tty.out; then pass progress_quiet_on_terminal; else fail progress_quiet_on_terminal "$(cat tty.out)"; fi
# -q still shows what it asks about, as --help and the man page say.
printf 'no\n' | script -qec "'$MK' flash -q img '$L2'" /dev/null >tty.out 2>&1
rc=$?
if [ $rc = 3 ] && grep -q "^device: $L2, loop device of '$WORK/stick2'" tty.out && grep -q "type 'yes' to write" tty.out &&
	"$MK" flash --help | grep -q -- '-q, --quiet .*(and the device summary when' &&
	! grep -q 'no device summary' "$ROOT/man/dlws-mkimage.1"; then
	pass quiet_shows_device_when_asking
else
	fail quiet_shows_device_when_asking "rc=$rc $(cat tty.out)"
fi
# Declined at the question: the file --allow-file would have made is not there.
printf 'no\n' | script -qec "'$MK' flash --allow-file img declined.img" /dev/null >tty.out 2>&1
rc=$?
if [ $rc = 3 ] && grep -q "device: declined.img, a new regular file" tty.out && grep -q "not confirmed (typed 'no', not 'yes')" tty.out &&
	[ ! -e declined.img ]; then
	pass declined_new_file_left_no_file
else
	fail declined_new_file_left_no_file "rc=$rc $(cat tty.out; ls -l declined.img 2>&1)"
fi

# Mounted: the device itself (ext4), then a partition of a partitioned
# loop device (vfat); and the image lying inside the target's filesystem.
head -c 33554432 /dev/zero >fs.disk
loop F fs.disk
mkfs.ext4 -q "$F" && mnt "$F" "$WORK/m1"
"$MK" flash --yes img "$F" 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$F': it is mounted on '$WORK/m1'" err; then pass refuse_mounted_device; else fail refuse_mounted_device "$(cat err)"; fi
cp img "$WORK/m1/img"
"$MK" flash --yes "$WORK/m1/img" "$F" 2>err
if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$F': it holds the image '$WORK/m1/img'" err; then pass refuse_device_holding_image; else fail refuse_device_holding_image "$(cat err)"; fi

head -c 33554432 /dev/zero >parts.disk
printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, size=16384, type=82\n' | sfdisk -q parts.disk >/dev/null 2>&1
loop P parts.disk -P
# A kernel that does not read partition tables itself is told them (BLKPG).
[ -b "${P}p1" ] || partx -a "$P" 2>/dev/null
if [ -b "${P}p1" ] && mkfs.ext4 -q "${P}p1" && mnt "${P}p1" "$WORK/m 2"; then
	"$MK" flash --yes img "$P" 2>err
	if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$P': its partition '${P}p1' is mounted on '$WORK/m 2'" err; then
		pass refuse_mounted_partition
	else
		fail refuse_mounted_partition "$(cat err)"
	fi
	cp img "$WORK/m 2/img"
	"$MK" flash --yes "$WORK/m 2/img" "$P" 2>err
	if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$P': its partition '${P}p1' holds the image '$WORK/m 2/img'" err; then
		pass refuse_partition_holding_image
	else
		fail refuse_partition_holding_image "$(cat err)"
	fi
	# A partition holding swap.
	if mkswap "${P}p2" >/dev/null 2>&1 && swapon "${P}p2" 2>/dev/null; then
		SWAPS+=("${P}p2")
		umount "$WORK/m 2"
		"$MK" flash --yes img "$P" 2>err
		if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$P': its partition '${P}p2' is in use as swap" err; then
			pass refuse_swap_partition
		else
			fail refuse_swap_partition "$(cat err)"
		fi
		swapoff "${P}p2"
	else
		skip refuse_swap_partition "swapon is not allowed here"
	fi
else
	fail refuse_mounted_partition "no partition device ${P}p1 (losetup -P, partx -a) or mkfs/mount failed"
fi

# Mounted in another mount namespace: not in our mountinfo, but the
# kernel's exclusive claim makes the open fail (EBUSY).
head -c 16777216 /dev/zero >ns.disk
loop N ns.disk
mkfs.ext4 -q "$N" && mkdir -p ns
unshare -m --propagation private sh -c "mount '$N' '$WORK/ns' && touch '$WORK/ns.ready' && exec sleep 120" &
PIDS+=($!)
for _ in $(seq 50); do [ -e ns.ready ] && break; sleep 0.1; done
if [ -e ns.ready ]; then
	"$MK" flash --yes img "$N" 2>err
	if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '$N': busy: someone else holds it (mounted in another mount namespace, or opened exclusively)" err; then
		pass refuse_busy_device
	else
		fail refuse_busy_device "$(cat err)"
	fi
else
	skip refuse_busy_device "cannot mount in a new mount namespace (unshare -m)"
fi

# The disk of the running system is refused. Three refusals stand between
# this and a write: the check itself, the exclusive open of a mounted disk,
# and no --yes with standard input not a terminal. The image lies on a
# ramfs so that "holds the image" does not answer first.
rootdev=$(mountpoint -d / 2>/dev/null)
rootname=$(basename "$(readlink -f "/sys/dev/block/$rootdev" 2>/dev/null)" 2>/dev/null)
if [ -n "$rootdev" ] && [ -e "/sys/dev/block/$rootdev" ] && [ -b "/dev/$rootname" ]; then
	head -c 1048576 /dev/urandom >ramfs/img
	"$MK" flash ramfs/img "/dev/$rootname" </dev/null 2>err
	if [ $? = 3 ] && grep -qx "dlws-mkimage: error: refusing '/dev/$rootname': it holds the running system ('/')" err; then
		pass refuse_running_system
	else
		fail refuse_running_system "$(cat err)"
	fi
else
	skip refuse_running_system "/ is not on a block device here ($rootdev)"
fi

# A device that does not return what was written: a loop device on a file
# served by a tiny FUSE filesystem (tests/e2e's own, speaking the kernel's
# protocol) that inverts one byte, or fails it with EIO, on every read.
cat >fusedisk.c <<'EOF'
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static unsigned char *data;
static uint64_t size, at;
static int eio;

static void reply(int fd, uint64_t unique, int error, const void *out, size_t len) {
	struct fuse_out_header h = { .len = sizeof(h) + (error ? 0 : len), .error = error, .unique = unique };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)out, error ? 0 : len } };
	if (writev(fd, iov, 2) < 0 && errno != ENOENT)
		perror("fusedisk: writev");
}

static void attr(uint64_t node, struct fuse_attr *a) {
	memset(a, 0, sizeof(*a));
	a->ino = node;
	a->mode = node == 1 ? S_IFDIR | 0755 : S_IFREG | 0644;
	a->nlink = node == 1 ? 2 : 1;
	a->size = node == 1 ? 0 : size;
	a->blocks = a->size / 512;
	a->blksize = 4096;
}

/* fusedisk MOUNTPOINT SIZE flip|eio AT: mounts, prints the server's pid. */
int main(int argc, char **argv) {
	if (argc != 5)
		return 2;
	size = strtoull(argv[2], NULL, 0);
	eio = strcmp(argv[3], "eio") == 0;
	at = strtoull(argv[4], NULL, 0);
	data = calloc(1, size);
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (!data || fd < 0) {
		perror("fusedisk: /dev/fuse");
		return 1;
	}
	char opts[128];
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fd);
	if (mount("fusedisk", argv[1], "fuse.fusedisk", MS_NOSUID | MS_NODEV, opts) < 0) {
		perror("fusedisk: mount");
		return 1;
	}
	pid_t pid = fork();
	if (pid != 0) {
		printf("%d\n", (int)pid);
		return pid < 0;
	}
	/* The caller reads the pid through a pipe: let it see the end. */
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	size_t bufsize = (1 << 20) + 4096;
	char *buf = malloc(bufsize);
	for (;;) {
		ssize_t n = read(fd, buf, bufsize);
		if (n < 0 && (errno == EINTR || errno == ENOENT || errno == EAGAIN))
			continue;
		if (n < 0)
			return errno == ENODEV ? 0 : 1;
		struct fuse_in_header *in = (void *)buf;
		void *arg = buf + sizeof(*in);
		switch (in->opcode) {
		case FUSE_INIT: {
			struct fuse_init_in *ii = arg;
			struct fuse_init_out o = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
				.max_readahead = ii->max_readahead, .max_write = 1 << 20, .max_background = 16,
				.congestion_threshold = 12, .time_gran = 1 };
			reply(fd, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_LOOKUP: {
			if (in->nodeid != 1 || strcmp(arg, "disk") != 0) {
				reply(fd, in->unique, -ENOENT, NULL, 0);
				break;
			}
			struct fuse_entry_out o = { .nodeid = 2, .generation = 1, .entry_valid = 1, .attr_valid = 1 };
			attr(2, &o.attr);
			reply(fd, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_GETATTR:
		case FUSE_SETATTR: {
			struct fuse_attr_out o = { .attr_valid = 1 };
			attr(in->nodeid, &o.attr);
			reply(fd, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_OPEN:
		case FUSE_OPENDIR: {
			/* Direct I/O: every read reaches this server, none comes from a cache. */
			struct fuse_open_out o = { .fh = 1, .open_flags = in->opcode == FUSE_OPEN ? FOPEN_DIRECT_IO : 0 };
			reply(fd, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_READ: {
			struct fuse_read_in *r = arg;
			uint64_t off = r->offset < size ? r->offset : size, len = r->size;
			if (len > size - off)
				len = size - off;
			if (eio && at >= off && at < off + len) {
				reply(fd, in->unique, -EIO, NULL, 0);
				break;
			}
			unsigned char *out = malloc(len ? len : 1);
			memcpy(out, data + off, len);
			if (!eio && at >= off && at < off + len)
				out[at - off] ^= 0xff;
			reply(fd, in->unique, 0, out, len);
			free(out);
			break;
		}
		case FUSE_WRITE: {
			struct fuse_write_in *w = arg;
			if (w->offset > size || w->size > size - w->offset) {
				reply(fd, in->unique, -ENOSPC, NULL, 0);
				break;
			}
			memcpy(data + w->offset, (char *)arg + sizeof(*w), w->size);
			struct fuse_write_out o = { .size = w->size };
			reply(fd, in->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_READDIR:
			reply(fd, in->unique, 0, NULL, 0);
			break;
		case FUSE_FLUSH:
		case FUSE_RELEASE:
		case FUSE_RELEASEDIR:
		case FUSE_FSYNC:
		case FUSE_ACCESS:
			reply(fd, in->unique, 0, NULL, 0);
			break;
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break;
		case FUSE_DESTROY:
			reply(fd, in->unique, 0, NULL, 0);
			return 0;
		default:
			reply(fd, in->unique, -ENOSYS, NULL, 0);
		}
	}
}
EOF
# fuse_disk VAR MODE AT: a loop device on a fresh 16 MiB FUSE disk.
fuse_disk() {
	local dir pid
	dir=$(mktemp -d "$WORK/fuse.XXXXXX")
	pid=$(./fusedisk "$dir" 16777216 "$2" "$3") || return 1
	FUSE_PIDS+=("$pid")
	FUSE_MOUNTS+=("$dir")
	loop "$1" "$dir/disk"
}
# The flipped byte lies past 5 MiB of zeros, so that it is the first difference.
head -c 5242880 /dev/zero >fimg
head -c 4194304 /dev/urandom >>fimg
flip=5246977
if ! cc -O1 -o fusedisk fusedisk.c 2>fuse.err || [ ! -c /dev/fuse ]; then
	skip readback_mismatch "cannot build or run the FUSE test disk: $(head -3 fuse.err) $([ -c /dev/fuse ] || echo 'no /dev/fuse')"
	skip readback_error "the same"
elif ! fuse_disk B flip $flip 2>fuse.err; then
	skip readback_mismatch "cannot mount the FUSE test disk: $(cat fuse.err)"
	skip readback_error "the same"
else
	"$MK" flash --yes fimg "$B" 2>err
	rc=$?
	if [ $rc = 4 ] && grep -q "^wrote 9.0 MiB" err &&
		grep -qx "dlws-mkimage: error: '$B' reads back differently from the image: first difference at byte $flip" err; then
		pass readback_mismatch
	else
		fail readback_mismatch "rc=$rc $(cat err)"
	fi
	fuse_disk E eio $flip
	"$MK" flash --yes fimg "$E" 2>err
	rc=$?
	if [ $rc = 1 ] && grep -qx "dlws-mkimage: error: cannot read back '$E' at byte 4194304: Input/output error" err; then
		pass readback_error
	else
		fail readback_error "rc=$rc $(cat err)"
	fi
fi

# A write error: a loop device on a sparse file in a 4 MiB tmpfs.
mkdir -p full && mount -t tmpfs -o size=4m tmpfs full && MOUNTS+=("$WORK/full")
truncate -s 16M full/disk
loop W full/disk
"$MK" flash --yes img "$W" 2>err
rc=$?
if [ $rc = 1 ] && grep -q "^dlws-mkimage: error: cannot write '$W' at byte [0-9]*: " err; then pass write_error; else fail write_error "rc=$rc $(cat err)"; fi
# A file that --allow-file made is removed when the write fails.
"$MK" flash --yes --allow-file img full/new.img 2>err
rc=$?
if [ $rc = 1 ] && grep -q "^dlws-mkimage: error: cannot write 'full/new.img' at byte [0-9]*: No space left on device" err && [ ! -e full/new.img ]; then
	pass write_error_removes_created_file
else
	fail write_error_removes_created_file "rc=$rc $(cat err)"
fi

# Bad command lines (2) and bad inputs (1).
bad=""
for args in "" "img" "img $L extra"; do
	# shellcheck disable=SC2086
	"$MK" flash $args 2>err
	rc=$?
	[ $rc = 2 ] && grep -qx 'dlws-mkimage: flash: needs exactly IMAGE and DEVICE (see --help)' err || bad="$bad ['$args': rc=$rc $(cat err)]"
done
if [ -z "$bad" ]; then pass usage_arg_count; else fail usage_arg_count "$bad"; fi
"$MK" flash --bogus img "$L" 2>err
if [ $? = 2 ]; then pass usage_unknown_option; else fail usage_unknown_option "$(cat err)"; fi
"$MK" flash --yes nosuch "$L" 2>err
if [ $? = 1 ] && grep -qx "dlws-mkimage: error: cannot open image 'nosuch': No such file or directory" err; then pass missing_image; else fail missing_image "$(cat err)"; fi
mkdir -p adir
"$MK" flash --yes adir "$L" 2>err
if [ $? = 1 ] && grep -qx "dlws-mkimage: error: image 'adir' is a directory" err; then pass image_is_directory; else fail image_is_directory "$(cat err)"; fi
"$MK" flash --help >out
if [ $? = 0 ] && grep -q '^  3  refused' out && grep -q '^  4  written, but' out && grep -q -- '--allow-file' out; then pass help_documents_exit_codes; else fail help_documents_exit_codes "$(cat out)"; fi
if cmp -s -n "$size" img "$L"; then pass refusals_left_device_as_written; else fail refusals_left_device_as_written "'$L' changed"; fi

finish
