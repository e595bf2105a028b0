#include "units.h"

#include <string.h>

#include "buf.h"
#include "ignition.h"
#include "layout.h"
#include "util.h"

#define IMAGES_DIR "/" LAYOUT_IMAGES_DIR

/* The units of Flatcar's own that read what the payload puts in place. */
#define PAYLOAD_CONSUMERS "containerd.service docker.service kubelet.service etcd.service flanneld.service"

static const char payload_unit[] =
	"[Unit]\n"
	"Description=Put the dlws payload in place (verify it, copy its rootfs into /)\n"
	"Documentation=file:" LAYOUT_LIVE_PAYLOAD_SCRIPT "\n"
	"ConditionPathIsDirectory=" LAYOUT_LIVE_MANIFESTS "\n"
	"# Before anything reads /etc: modules-load.d, sysctl.d, tmpfiles.d and the\n"
	"# services; the live root (tmpfs) and /usr are there from the initramfs.\n"
	"DefaultDependencies=no\n"
	"RequiresMountsFor=" LAYOUT_LIVE_DLWS "\n"
	"Conflicts=shutdown.target\n"
	"Before=shutdown.target sysinit.target systemd-modules-load.service systemd-sysctl.service systemd-sysext.service\n"
	"Before=systemd-tmpfiles-setup.service systemd-udevd.service " PAYLOAD_CONSUMERS "\n"
	"\n"
	"[Service]\n"
	"Type=oneshot\n"
	"RemainAfterExit=yes\n"
	"ExecStart=" LAYOUT_LIVE_PAYLOAD_SCRIPT " place\n"
	"StandardOutput=journal+console\n"
	"\n"
	"[Install]\n"
	"WantedBy=sysinit.target\n";

/* A node's kubelet is system:node:<its hostname>: the name must be in
 * place before the kubelet (from a sysext, upheld by multi-user.target)
 * starts, not when coreos-cloudinit gets to the cloud-config. */
static const char hostname_unit[] =
	"[Unit]\n"
	"Description=Name this node before its kubelet starts\n"
	"Documentation=file:" LAYOUT_LIVE_PAYLOAD_SCRIPT "\n"
	"ConditionPathExists=" LAYOUT_LIVE_DLWS "/node.env\n"
	"Requires=dlws-payload.service\n"
	"After=dlws-payload.service systemd-udev-trigger.service\n"
	"Before=containerd.service kubelet.service etcd.service\n"
	"\n"
	"[Service]\n"
	"Type=oneshot\n"
	"RemainAfterExit=yes\n"
	"ExecStart=" LAYOUT_LIVE_PAYLOAD_SCRIPT " hostname\n"
	"StandardOutput=journal+console\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

static const char medium_unit[] =
	"[Unit]\n"
	"Description=Link the large dlws payload files from the boot medium\n"
	"Documentation=file:" LAYOUT_LIVE_PAYLOAD_SCRIPT "\n"
	"# Only an ISO or a USB stick keeps files on the medium.\n"
	"ConditionPathExists=" LAYOUT_LIVE_DLWS "/medium-id\n"
	"Requires=dlws-payload.service\n"
	"After=dlws-payload.service systemd-udev-trigger.service\n"
	"Before=" PAYLOAD_CONSUMERS " dlws-load-images.service dlws-install.service\n"
	"\n"
	"[Service]\n"
	"Type=oneshot\n"
	"RemainAfterExit=yes\n"
	"ExecStart=" LAYOUT_LIVE_PAYLOAD_SCRIPT " large\n"
	"# sha256 of the large files read from a CD can take minutes.\n"
	"TimeoutStartSec=30min\n"
	"StandardOutput=journal+console\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

/* Runs once: the rename makes the condition false on later boots of an
 * installed node (and keeps the tarballs; delete images.loaded to free the
 * space). A failed import leaves the directory, so the next boot retries.
 * "$$" is systemd's escape for "$". */
static char *images_unit(const char *runtime) {
	bool docker = streq(runtime, "docker");
	const char *service = docker ? "docker.service" : "containerd.service";
	const char *import = docker ? "/usr/bin/docker load -i"
				    : "/usr/bin/ctr --namespace k8s.io images import --platform linux/amd64";
	return xasprintf("[Unit]\n"
			 "Description=Import the container images that came with the node's media (%s)\n"
			 "ConditionDirectoryNotEmpty=" IMAGES_DIR "\n"
			 "Requires=%s\n"
			 "After=%s dlws-payload.service dlws-medium.service\n"
			 "Before=kubelet.service\n"
			 "\n"
			 "[Service]\n"
			 "Type=oneshot\n"
			 "RemainAfterExit=yes\n"
			 "ExecStart=/usr/bin/sh -c 'for f in " IMAGES_DIR "/*; do echo \"importing $$f\"; "
			 "%s \"$$f\" || exit 1; done'\n"
			 "ExecStartPost=/usr/bin/mv -T " IMAGES_DIR " " IMAGES_DIR ".loaded\n"
			 "TimeoutStartSec=30min\n"
			 "\n"
			 "[Install]\n"
			 "WantedBy=multi-user.target\n",
			 runtime, service, service, import);
}

/* No start timeout: writing a 500 MB image to a slow disk may take longer
 * than any fixed limit, and killing it halfway leaves a broken disk. The
 * after-step is ExecStartPost, so a failed install never reboots into
 * another attempt: the node stays up to be looked at. */
static char *install_unit(const struct recipe *rc) {
	/* A node booted from a PXE bundle fetches the OS image from the boot
	 * server: the network must be up (from a CD without one, systemd's
	 * wait-online gives up after two minutes and the install goes on). */
	const char *net = rc->outputs.pxe && rc->base.image ? " network-online.target" : "";
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "[Unit]\n"
		   "Description=Install this node to %s from its boot media (dlws-install)\n"
		   "ConditionPathExists=" LAYOUT_LIVE_AGENT "\n"
		   "ConditionKernelCommandLine=!dlws.noinstall\n"
		   "Requires=dlws-payload.service\n"
		   "Wants=dlws-medium.service%s\n"
		   "After=dlws-payload.service dlws-medium.service%s\n"
		   "\n"
		   "[Service]\n"
		   "Type=oneshot\n"
		   "TimeoutStartSec=infinity\n"
		   "ExecStart=" LAYOUT_LIVE_AGENT "\n",
		   rc->install.device, net, net);
	if (!streq(rc->install.after, "shell"))
		buf_printf(&b, "ExecStartPost=/usr/bin/systemctl --no-block %s\n", rc->install.after);
	buf_printf(&b, "StandardOutput=journal+console\n"
		       "\n"
		       "[Install]\n"
		       "WantedBy=multi-user.target\n");
	char *text = buf_steal(&b, NULL);
	return text;
}

/* A sysext kept on the medium (an ISO) is only reachable once
 * dlws-medium linked it, after systemd-sysext.service merged /etc/extensions
 * at boot: merge again, and let systemd see the units it brings (the
 * kubelet's). Before containerd starts, so nothing runs from /usr meanwhile. */
static char *medium_unit_text(const struct recipe *rc) {
	if (!rc->n_sysexts)
		return xstrdup(medium_unit);
	static const char marker[] = "StandardOutput=journal+console\n";
	const char *at = strstr(medium_unit, marker);
	return xasprintf("%.*sExecStartPost=/usr/bin/systemd-sysext refresh\nExecStartPost=/usr/bin/systemctl daemon-reload\n%s",
			 (int)(at - medium_unit), medium_unit, at);
}

char *units_ignition_config(const struct recipe *rc) {
	struct ign_unit units[5];
	size_t n = 0;
	_cleanup_free_ char *images = NULL, *install = NULL;
	_cleanup_free_ char *medium = medium_unit_text(rc);
	units[n++] = (struct ign_unit){ .name = "dlws-payload.service", .enabled = true, .contents = payload_unit };
	units[n++] = (struct ign_unit){ .name = "dlws-hostname.service", .enabled = true, .contents = hostname_unit };
	units[n++] = (struct ign_unit){ .name = "dlws-medium.service", .enabled = true, .contents = medium };
	if (rc->n_images) {
		images = images_unit(rc->container_runtime);
		units[n++] = (struct ign_unit){ .name = "dlws-load-images.service", .enabled = true, .contents = images };
	}
	if (rc->install.enabled) {
		install = install_unit(rc);
		units[n++] = (struct ign_unit){ .name = "dlws-install.service", .enabled = true, .contents = install };
	}
	return ignition_config(units, n);
}
