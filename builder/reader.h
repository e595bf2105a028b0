/* Reading a built output back, as untrusted input: a PXE tree or its tar,
 * an outputs.initrd directory, a hybrid ISO, or one payload segment
 * (*.cpio.zst, .xz, .gz). One pass streams every file once: regular files are
 * hashed as they go by, segments inside an ISO, a tar or a tree are read
 * by streaming the outer file's data into a second archive reader (never
 * extracted), and only small files of interest are kept in memory (each
 * up to READER_KEEP_LIMIT). Names from the image are checked (no absolute
 * names, no "..", no control characters) and never used to open anything;
 * sizes are what was read, never what a header claims.
 *
 * A disk image (outputs.disk: raw GPT, qcow2) is read by disk_read
 * (disk.h) through a read-only libguestfs appliance: its files named
 * "ROOT/<path>" and "OEM/<path>", only those its manifest lists. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bootcfg.h"
#include "diag.h"
#include "hash.h"
#include "util.h"

#define READER_KEEP_LIMIT ((size_t)1 << 20)     /* per kept file */
/* Per kept file outside segments: dlws-build.json, SHA256SUMS and the boot
 * menus grow with the nodes (a menu holds ~2,000 nodes in 1 MiB). */
#define READER_KEEP_OUTER_LIMIT ((size_t)16 << 20)
#define READER_KEEP_TOTAL ((size_t)64 << 20)    /* all kept files together */
#define READER_MAX_ENTRIES 1000000              /* per archive */
#define READER_SEGMENT_MAX ((uint64_t)64 << 30) /* bytes unpacked from one segment */
#define READER_MANIFEST_SIZE_MAX ((uint64_t)1 << 44)    /* 16 TiB: a size above is absurd */

enum reader_kind { READER_PXE_TREE, READER_PXE_TAR, READER_INITRD_DIR, READER_ISO, READER_SEGMENT, READER_DISK };
/* "pxe-tree", "pxe-tar", "initrd-dir", "iso", "segment", "disk". */
const char *reader_kind_name(enum reader_kind k);

enum reader_type { READER_REG, READER_DIR, READER_LINK, READER_OTHER };

struct reader_file {
	char *path;             /* relative, normalised, no leading '/' */
	enum reader_type type;
	unsigned mode;          /* permission bits */
	uint64_t size;          /* bytes read (REG) */
	char sha256[SHA256_HEX_LEN + 1];        /* REG */
	char *data;             /* kept content, NUL-terminated, or NULL */
	size_t len;
	bool not_kept;          /* wanted, but larger than READER_KEEP_LIMIT (outside
				 * segments READER_KEEP_OUTER_LIMIT) or past
				 * READER_KEEP_TOTAL: not in `data` */
	unsigned char *head;    /* ISO: the first sector, for El Torito */
	size_t head_len;
};

struct reader_segment {
	char *path;             /* the segment's path in the output */
	struct reader_file *files;      /* sorted by path */
	size_t n, cap;
	char *error;            /* why it could not be read whole, or NULL */
	bool per_node;          /* holds manifest.d/node or manifest.d/role: a node's or a
				 * role's own segment, made by build_stage_node (build.h) */
};

struct reader_boot_image {
	char platform[8];       /* "BIOS", "UEFI", or "0xNN" */
	bool bootable;
	uint32_t load_rba, sectors;
	char *path;             /* the file at load_rba, or NULL */
};

struct reader_output {
	enum reader_kind kind;
	char *path;
	struct reader_file *files;      /* the output's own files, sorted; none for a segment */
	size_t n, cap;
	struct reader_segment *segs;
	size_t n_segs, cap_segs;
	struct reader_boot_image *boot; /* ISO: the El Torito catalog */
	size_t n_boot;
	const char *disk_format;        /* DISK: "raw" or "qcow2" */
};
#define READER_OUTPUT_INIT { 0 }

/* Identifies and reads the output at `path`. A name that leaves the
 * output, an archive that cannot be read, a file listed twice: an error.
 * A segment that cannot be read whole is noted in its `error`. The files
 * kept (`data`): of every segment its manifests, the OEM configs
 * (config.ign, cloud-config.yml, user_data, node.env), *.crt, *.conf and
 * kubeconfig files, and of a per_node segment every other text file too
 * (no NUL byte: inspect shows them as the node's rendered configs);
 * outside segments dlws-build.json, SHA256SUMS and the boot menus
 * (isolinux, GRUB, pxelinux, boot.ipxe). */
int reader_open(const char *path, struct reader_output *ret, struct diags *d);
void reader_release(struct reader_output *o);
const struct reader_file *reader_find(const struct reader_file *v, size_t n, const char *path);

/* Whether `name` (an archive entry's name, "./" and trailing '/' already
 * gone) is a plain relative path: not empty, not absolute, no "." or ".."
 * components, no "//", no control characters or backslashes, < 4096. */
bool reader_name_ok(const char *name);
/* Whether `text` is UTF-8 without control characters other than tab,
 * CR and LF (and no NUL within `len`). */
bool reader_is_text(const char *text, size_t len);

/* A boot menu read back, in the shapes bootcfg.c writes: syslinux
 * (isolinux.cfg, pxelinux.cfg/...), GRUB (grub.cfg) and iPXE (boot.ipxe). */
enum reader_bootcfg { READER_BOOT_SYSLINUX, READER_BOOT_GRUB, READER_BOOT_IPXE };
#define READER_BOOT_ENTRIES_MAX 65536   /* per menu */
#define READER_BOOT_INITRDS_MAX 64      /* per entry */
#define READER_BOOT_LINE_MAX 8192
#define READER_BOOT_TEXT_MAX 4096       /* a title or command line */
/* Parses a menu into `ret`: its entries in file order, paths without a
 * leading '/', title NULL for iPXE (it has none), mac set from iPXE's
 * per-MAC dispatch ("iseq ${mac} M && goto L ||"); ret->default_entry is
 * the DEFAULT / set default= / first goto's entry, or ret->n when there is
 * none. Lines no entry of ours holds are skipped (GRUB's per-MAC
 * configfile stanza, hand edits). What cannot be an entry of ours is
 * pushed to `problems` as "NAME:LINE: ..." and left out: a kernel or
 * initrd path that leaves the boot root, a label that is not
 * [A-Za-z0-9._:-], a title or command line that is not printable UTF-8, a
 * label defined twice, an iPXE kernel line whose initrd= names are not
 * the initrds the entry loads, a dispatch to no entry or with a bad MAC,
 * more entries, initrds or longer lines than the limits above. */
void reader_bootcfg_parse(const char *text, size_t len, enum reader_bootcfg kind, const char *name, struct boot_menu *ret,
			  struct strv *problems);
/* Whether `mac` is six hex pairs separated by ':'. */
bool reader_mac_ok(const char *mac);

/* One line of a payload manifest: "<sha256> <size> <mode> /<path>". */
struct reader_manifest_line {
	char sha256[SHA256_HEX_LEN + 1];
	uint64_t size;
	unsigned mode;
	char *path;             /* without the leading '/' */
};
struct reader_manifest {
	struct reader_manifest_line *v;
	size_t n, cap;
	uint64_t total;         /* sum of sizes */
};
/* Parses a manifest; `name` names it in messages ("NAME:LINE: ..."). Every
 * bad line is reported; *ret is set only on success. */
int reader_manifest_parse(const char *text, size_t len, const char *name, struct reader_manifest *ret, struct diags *d);
void reader_manifest_release(struct reader_manifest *m);

/* Checks every manifest of every segment against the files read, and the
 * output's SHA256SUMS (a disk: its manifest, sizes and modes too, and
 * that the build metadata's payload_sha256 is the manifest's sum): each problem (a mismatch, a missing file, an
 * unreadable segment or manifest) is pushed to `problems`, naming the
 * file. `checked` counts files that matched; `elsewhere` those a manifest
 * lists on a boot medium this output is not (a lone segment). */
void reader_verify(const struct reader_output *o, struct strv *problems, size_t *checked, size_t *elsewhere);

/* A copy of `text` with secrets masked: PEM private key blocks (also
 * percent-encoded, as in an Ignition data URL), base64 that decodes to one
 * (client-key-data), bootstrap token secrets ("abcdef.0123456789abcdef"
 * -> "abcdef.****************"), the values of keys named like secrets
 * (token-secret, token, client-key-data, password, certificateKey,
 * certificate-key, secret, ...: "key: value", "key=value", JSON's
 * "key": "value", and a YAML block scalar "key: |" whole) and of flags
 * (--token, --certificate-key, --password; "--flag=value" or "--flag
 * value"). A bootstrap token in a token: field or --token keeps its id. */
char *reader_mask_secrets(const char *text, size_t len);
/* Standard base64 decoding, whitespace skipped; NULL when not base64. */
char *reader_base64_decode(const char *s, size_t len, size_t limit, size_t *ret_len);
