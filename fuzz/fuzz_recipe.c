/* Recipes (recipe.c, over yamldoc.c, schema.c and value.c): recipe_load
 * reads a path and checks that every file a recipe names exists, so each
 * input is written as recipes/fuzz.recipe into a scratch copy of the
 * shipped project's shape: the base, vendor binaries pinned in SHA256SUMS,
 * overlays, templates and what recipes/flatcar/ reads from supplied/
 * (reached from recipes/ as ../../supplied). The shipped recipes in the
 * seed corpus then load cleanly and the fuzzer starts from accepted input;
 * so do recipes/flatcar/'s, whose ../cluster.yaml, ../templates and
 * ../../overlays land on the copies one level up. */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fsutil.h"
#include "fuzz.h"
#include "recipe.h"

static const char *const fixture_files[] = {
	"proj/out/base/vmlinuz", "proj/out/base/initrd.img",
	"proj/vendor/bin/kubectl", "proj/vendor/bin/etcd", "proj/vendor/bin/etcdctl",
	"proj/overlays/common/etc/motd", "proj/overlays/kubernetes/etc/modules-load.d/k8s.conf",
	"proj/overlays/master/etc/hostname", "proj/overlays/worker/etc/hostname",
	"proj/recipes/cluster.yaml", "proj/cluster.yaml",
	"overlays/common/etc/motd", "overlays/kubernetes/etc/modules-load.d/k8s.conf",
	"overlays/master/etc/hostname", "overlays/worker/etc/hostname",
	"proj/recipes/templates/cloud-config.yml", "proj/recipes/templates/kubeadm.yaml",
	"proj/recipes/templates/containerd-config.toml", "proj/recipes/templates/bootstrap-rbac.yaml",
	"proj/recipes/templates/kube-flannel.yaml", "proj/recipes/templates/etcd.env",
	"proj/recipes/templates/kubeadm-flags.env", "proj/recipes/templates/kubelet-config.yaml",
	"proj/templates/cloud-config.yml", "proj/templates/kubeadm.yaml",
	"proj/templates/containerd-config.toml", "proj/templates/bootstrap-rbac.yaml",
	"proj/templates/kube-flannel.yaml", "proj/templates/etcd.env",
	"proj/templates/kubeadm-flags.env", "proj/templates/kubelet-config.yaml",
	"supplied/flatcar/flatcar_production_pxe.vmlinuz", "supplied/flatcar/flatcar_production_pxe_image.cpio.gz",
	"supplied/flatcar/flatcar_production_image.bin.bz2",
	"supplied/etcd/etcd", "supplied/etcd/etcdctl",
	"supplied/sysext/kubernetes-v1.34.2-x86-64.raw", "supplied/sysext/nvidia-runtime-x86-64.raw",
	"supplied/images/coredns.tar", "supplied/images/flannel-cni-plugin.tar", "supplied/images/flannel.tar",
	"supplied/images/kube-apiserver.tar", "supplied/images/kube-controller-manager.tar",
	"supplied/images/kube-proxy.tar", "supplied/images/kube-scheduler.tar", "supplied/images/pause.tar",
	"proj/images/pause.tar",
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	for (size_t i = 0; i < sizeof(fixture_files) / sizeof(fixture_files[0]); i++)
		fuzz_write(fixture_files[i], fixture_files[i], strlen(fixture_files[i]));
	struct diags d = DIAGS_INIT;
	char *vendor = strdup(fuzz_path("proj/vendor"));
	char *supplied = strdup(fuzz_path("supplied"));
	if (sha256sums_write(vendor, SHA256SUMS_NAME, &d) < 0 || sha256sums_write(supplied, SHA256SUMS_NAME, &d) < 0) {
		diags_print(&d, stderr);
		abort();
	}
	free(vendor);
	free(supplied);
	if (getenv("FUZZ_VERBOSE"))
		diags_print(&d, stderr);
	diags_release(&d);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const char *path = fuzz_write("proj/recipes/fuzz.recipe", data, size);
	struct diags d = DIAGS_INIT;
	struct recipe *r = NULL;
	if (recipe_load(path, &r, &d) == 0) {
		/* Accepted: the loader's promises hold. */
		if (!r->name || !r->path || !r->values || r->role >= _ROLE_MAX)
			abort();
		recipe_free(r);
	} else if (d.n_errors == 0) {
		abort();        /* a refusal must say why */
	}
	if (getenv("FUZZ_VERBOSE"))
		diags_print(&d, stderr);
	diags_release(&d);
	return 0;
}
