/* The units dlws-mkimage adds to each node and the Ignition config that
 * carries them: which units for which recipe, their ordering and timeout
 * contract, and the JSON shape (spec version, escaping, stable bytes).
 * ignition-validate and systemd-analyze check the real outputs in
 * tests/e2e/test_flatcar.sh. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ignition.h"
#include "units.h"
#include "util.h"

static bool has(const char *text, const char *needle) {
	return text && strstr(text, needle) != NULL;
}

static size_t count(const char *text, const char *needle) {
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_plain_recipe(void) {
	struct recipe rc = { .container_runtime = "containerd" };
	char *ign = units_ignition_config(&rc);
	CHECK(has(ign, "\"version\": \"3.3.0\""));
	CHECK(has(ign, "\"name\": \"dlws-payload.service\""));
	CHECK(has(ign, "\"name\": \"dlws-medium.service\""));
	/* No images, no install: no unit for them. */
	CHECK(!has(ign, "dlws-load-images.service\","));
	CHECK(!has(ign, "dlws-install.service\","));
	CHECK_INTEQ(count(ign, "\"enabled\": true"), 3);
	/* The node is named before its kubelet (system:node:<name>) starts. */
	CHECK(has(ign, "\"name\": \"dlws-hostname.service\""));
	CHECK(has(ign, "ExecStart=/usr/share/oem/dlws/bin/dlws-payload hostname\\n"));
	CHECK(has(ign, "Before=containerd.service kubelet.service etcd.service\\n"));
	/* Early: before modules-load and sysctl read /etc, pulled in by sysinit. */
	CHECK(has(ign, "DefaultDependencies=no\\n"));
	/* and before systemd-sysext merges /etc/extensions (the payload links images there) */
	CHECK(has(ign, "Before=shutdown.target sysinit.target systemd-modules-load.service systemd-sysctl.service systemd-sysext.service\\n"));
	CHECK(has(ign, "WantedBy=sysinit.target\\n"));
	CHECK(has(ign, "ExecStart=/usr/share/oem/dlws/bin/dlws-payload place\\n"));
	CHECK(has(ign, "ExecStart=/usr/share/oem/dlws/bin/dlws-payload large\\n"));
	CHECK(has(ign, "ConditionPathExists=/usr/share/oem/dlws/medium-id\\n"));
	/* JSON: slashes are not escaped, the text ends in a newline. */
	CHECK(!has(ign, "\\/"));
	CHECK(ign[strlen(ign) - 1] == '\n');
	/* Identical recipes give identical bytes. */
	char *again = units_ignition_config(&rc);
	CHECK_STREQ(again, ign);
	free(again);
	free(ign);
}

static void test_images_and_install(void) {
	struct recipe rc = {
		.container_runtime = "containerd",
		.n_images = 1,
		.install = { .enabled = true, .device = "auto", .after = "reboot" },
	};
	char *ign = units_ignition_config(&rc);
	CHECK(has(ign, "\"name\": \"dlws-load-images.service\""));
	CHECK(has(ign, "/usr/bin/ctr --namespace k8s.io images import --platform linux/amd64"));
	CHECK(has(ign, "Requires=containerd.service\\n"));
	CHECK(has(ign, "Before=kubelet.service\\n"));
	CHECK(has(ign, "\"name\": \"dlws-install.service\""));
	CHECK(has(ign, "TimeoutStartSec=infinity\\n"));
	CHECK(has(ign, "ExecStart=/usr/share/oem/dlws/install\\n"));
	CHECK(has(ign, "ExecStartPost=/usr/bin/systemctl --no-block reboot\\n"));
	CHECK(has(ign, "ConditionKernelCommandLine=!dlws.noinstall\\n"));
	CHECK_INTEQ(count(ign, "\"enabled\": true"), 5);
	/* From a CD the image is on the medium: no wait for a network. */
	CHECK(!has(ign, "network-online.target"));
	free(ign);

	/* A PXE-booted node fetches the OS image from the boot server. */
	rc.outputs.pxe = "out/pxe";
	rc.base.image = "os.bin.bz2";
	ign = units_ignition_config(&rc);
	CHECK(has(ign, "Wants=dlws-medium.service network-online.target\\n"));
	CHECK(has(ign, "After=dlws-payload.service dlws-medium.service network-online.target\\n"));
	free(ign);
	rc.outputs.pxe = NULL;
	rc.base.image = NULL;

	/* after: shell leaves the node up: no after-step at all. */
	rc.install.after = "shell";
	ign = units_ignition_config(&rc);
	CHECK(!has(ign, "ExecStartPost=/usr/bin/systemctl"));
	free(ign);

	/* container_runtime: docker loads with docker instead. */
	rc.container_runtime = "docker";
	ign = units_ignition_config(&rc);
	CHECK(has(ign, "/usr/bin/docker load -i"));
	CHECK(has(ign, "Requires=docker.service\\n"));
	CHECK(!has(ign, "ctr --namespace"));
	free(ign);
}

static void test_ignition_escaping(void) {
	struct ign_dropin drop = { "10-x.conf", "[Service]\nEnvironment=\"A=b\\\\c\"\n" };
	struct ign_unit units[] = {
		{ .name = "a.service", .enabled = false, .contents = "[Unit]\nDescription=tab\there \"quoted\"\n" },
		{ .name = "docker.service", .dropins = &drop, .n_dropins = 1 },
	};
	char *ign = ignition_config(units, ARRAY_SIZE(units));
	CHECK(has(ign, "\"contents\": \"[Unit]\\nDescription=tab\\there \\\"quoted\\\"\\n\""));
	CHECK(has(ign, "\"enabled\": false"));
	/* A unit with only drop-ins has no contents and no enabled key. */
	CHECK_INTEQ(count(ign, "\"enabled\""), 1);
	CHECK(has(ign, "\"dropins\": ["));
	CHECK(has(ign, "\"name\": \"10-x.conf\""));
	free(ign);
}

int main(void) {
	test_plain_recipe();
	test_images_and_install();
	test_ignition_escaping();
	return check_summary("test_units");
}
