/* Container image archives: which image references one holds, named the
 * way containerd names them after `ctr images import`, so a build can tell
 * whether its media carry every image a node will run (nothing is pulled
 * at boot). */
#pragma once
#include "diag.h"
#include "util.h"

/* manifest.json, index.json and oci-layout are small; anything bigger is
 * not an image archive we want to trust. */
#define IMAGE_ARCHIVE_JSON_LIMIT ((size_t)4 << 20)

/* The image references (registry/name:tag, normalised as containerd names
 * them) that `ctr images import` / `docker load` would create from the
 * archive at `path`: plain tar, or gzip- or zstd-compressed tar.
 *
 * Which file names the images follows containerd: an OCI image layout
 * (oci-layout and index.json: the annotation io.containerd.image.name,
 * else org.opencontainers.image.ref.name when it is a full reference, that
 * is holds '/', ':' or '@') wins over a `docker save` manifest.json
 * (RepoTags), which docker save 25+ writes beside it. Every image must have
 * a name; an archive holding several images gives all of them.
 *
 * The archive is streamed, never held in memory; reading stops once the
 * answer is known. An OCI name that is not in normalised form ("pause:3.10")
 * is returned normalised, with a warning: ctr keeps such names as they are,
 * and the kubelet would not find the image under them.
 *
 * Returns 0 and sets *ret to the references, sorted and without duplicates
 * (the caller releases it; *ret is overwritten, not appended to), or a
 * negative errno with the reason in `d` naming the file; *ret is untouched
 * on failure. Every message is placed at `at` (the recipe's images: entry,
 * or NULL): what is wrong lies in the archive, but the user fixes it
 * where the recipe names it. */
int image_archive_refs(const char *path, const struct srcloc *at, struct strv *ret, struct diags *d);

/* containerd's normalised form of a reference (reference/docker
 * ParseDockerRef): "pause:3.10" -> "docker.io/library/pause:3.10",
 * "flannel-io/flannel:v1" -> "docker.io/flannel-io/flannel:v1",
 * "registry.k8s.io/pause:3.10" as is, a missing tag -> ":latest"; a digest
 * ("@sha256:...") is kept and a tag beside it dropped. The first component
 * is a registry when it holds '.' or ':', is "localhost", or has capitals.
 * Returns a new string, or NULL when `ref` is not a valid reference. */
char *image_ref_normalize(const char *ref);
