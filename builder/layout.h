/* Where the payload goes on an installed system: one definition for the
 * install agent (agent/dlws-install.c) and the builder's disk outputs.
 * These follow flatcar-install: the cloud-config as user_data on ROOT, an
 * Ignition config as config.ign on OEM; partitions found by GPT label. */
#pragma once

#define LAYOUT_PART_ROOT "ROOT"
#define LAYOUT_PART_OEM "OEM"
#define LAYOUT_PART_EFI "EFI-SYSTEM"

/* Paths inside the ROOT partition's file system. */
#define LAYOUT_USER_DATA "var/lib/flatcar-install/user_data"
/* Container images, imported by dlws-load-images.service (the payload's
 * Ignition config) on first boot; on a live system the payload links them here. */
#define LAYOUT_IMAGES_DIR "var/lib/dlws/images"
#define LAYOUT_INSTALL_LOG "var/log/dlws-install.log"
/* Inside the OEM partition's file system. */
#define LAYOUT_IGNITION "config.ign"
/* Written on OEM by the builder's disk outputs (not by the agent): the
 * build metadata (buildinfo.h, the same JSON as dlws-build.json in other
 * outputs) and every file the builder put on the disk, one per line as
 * "<sha256> <size> <mode> /<ROOT|OEM>/<path>" (its own two files not
 * included), so that `dlws-mkimage verify` can recompute them. */
#define LAYOUT_DISK_BUILDINFO "dlws-build.json"
#define LAYOUT_DISK_MANIFEST "dlws-manifest"

/* In the live system: what the builder puts in the payload for the agent.
 * A file at LAYOUT_LIVE_DLWS/X may instead be at LAYOUT_LIVE_LARGE/X:
 * large files stay on the boot medium (base/README.md, "Large files"). */
#define LAYOUT_LIVE_DLWS "/usr/share/oem/dlws"
#define LAYOUT_LIVE_LARGE "/usr/share/oem/dlws/large"
/* The cloud-config travels as a rootfs file: put at /LAYOUT_USER_DATA on
 * the live system by dlws-payload, on ROOT by the agent. */
#define LAYOUT_LIVE_CLOUD_CONFIG "/usr/share/oem/dlws/rootfs/" LAYOUT_USER_DATA
/* Ignition reads it on a live boot with flatcar.first_boot=1 (Flatcar's
 * documented "custom OEM" route); the agent puts it on OEM for installs. */
#define LAYOUT_LIVE_IGNITION "/usr/share/oem/config.ign"
#define LAYOUT_LIVE_PAYLOAD_SCRIPT "/usr/share/oem/dlws/bin/dlws-payload"
#define LAYOUT_LIVE_ROOTFS "/usr/share/oem/dlws/rootfs"
#define LAYOUT_LIVE_MANIFESTS "/usr/share/oem/dlws/manifest.d"
#define LAYOUT_LIVE_INSTALL_CONF "/usr/share/oem/dlws/install.conf"
#define LAYOUT_LIVE_AGENT "/usr/share/oem/dlws/install"
/* The OS image and container images; on an ISO they are read from the
 * medium under /usr/share/oem/dlws/large/ instead (install.conf says where). */
#define LAYOUT_LIVE_IMAGE_DIR "/usr/share/oem/dlws/os"
#define LAYOUT_LIVE_IMAGES_DIR "/usr/share/oem/dlws/images"
