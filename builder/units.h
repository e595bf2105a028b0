/* The systemd units dlws adds to every node, carried in the node's Ignition
 * config (so they reach Flatcar stable and beta alike, live or installed):
 *
 *   dlws-payload.service      early boot, before modules-load, sysctl and
 *                             every service: verify the payload that came in
 *                             the initrd, copy its rootfs into / (the
 *                             cloud-config lands at /var/lib/flatcar-install/
 *                             user_data, which user-config.target runs)
 *   dlws-hostname.service     the node's name (from its media, or for an
 *                             unlisted worker from its MAC) before the
 *                             kubelet starts: its identity is that name
 *   dlws-medium.service       after udev: mount the boot medium by its
 *                             medium id, verify the large files, link them
 *                             into place; before containerd, kubelet, install
 *   dlws-load-images.service  container images into containerd's k8s.io
 *                             namespace (or docker), before the kubelet
 *   dlws-install.service      the unattended install, with no start timeout
 *                             (coreos-cloudinit would stop waiting after 10
 *                             minutes); the after-step only when it succeeded
 *
 * The payload step itself is the payload's dlws-payload script, which the
 * default base's /init runs the same way. */
#pragma once
#include "recipe.h"

/* The Ignition config text for a node of `rc`. */
char *units_ignition_config(const struct recipe *rc);
