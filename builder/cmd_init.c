/* dlws-mkimage init: a new cluster's recipe tree from a few options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "dlwsconfig.h"
#include "fsutil.h"
#include "scaffold.h"
#include "util.h"

#define OPT_SSH_KEY 256         /* long options without a short one */
#define OPT_BOOT_SERVER 257
#define OPT_ETCD 258
#define OPT_WORKER 259
#define OPT_FROM_DLWS 260

static const char usage[] =
	"usage: dlws-mkimage init --name NAME --master HOST=IP[,MAC] [OPTIONS] DIR\n"
	"       dlws-mkimage init --from-dlws CONFIG.yaml [OPTIONS] DIR\n"
	"\n"
	"Writes a new cluster's tree: DIR/recipes/cluster.yaml made from the options\n"
	"(checked like a hand-written one), the master, etcd and worker recipes, their\n"
	"templates and DIR/overlays/ copied from the shipped examples. DIR must be\n"
	"absent or empty; nothing is written when a value is wrong.\n"
	"\n"
	"options:\n"
	"      --from-dlws FILE          take the values of a DL Workspace config.yaml\n"
	"                                (cluster_name, nodes, ranges, ssh_cert, the\n"
	"                                hyperkube image's version); the other options\n"
	"                                override or add to them\n"
	"  -n, --name NAME               the cluster's name (cluster_name)\n"
	"  -m, --master HOST=IP[,MAC]    a master node (repeatable)\n"
	"      --etcd HOST=IP[,MAC]      an etcd node (repeatable)\n"
	"      --worker HOST=IP[,MAC]    a worker node (repeatable)\n"
	"      --ssh-key FILE            a public key file for user core (repeatable)\n"
	"      --boot-server IP/PREFIX   the PXE boot server as nodes reach it, with its\n"
	"                                network's prefix (proxy DHCP)\n"
	"  -q, --quiet                   print errors only\n"
	"  -v, --verbose                 print every step\n"
	"  -h, --help                    show this help\n"
	"\n"
	"environment: DLWS_EXAMPLES_DIR names the examples to copy (default: the\n"
	"installed ones, else the checkout beside the binary).\n";

/* The key line of a .pub file; its content is checked by cluster_load. A
 * private key is refused before it is copied anywhere. */
static int read_ssh_key(const char *path, struct strv *keys, struct diags *d) {
	_cleanup_free_ char *text = NULL;
	int r = read_file(path, 64 << 10, &text, NULL, d);
	if (r < 0)
		return r;
	if (strstr(text, "PRIVATE KEY")) {
		diag_error(d, NULL, "'%s' is a private key (give the .pub file)", path);
		return -EINVAL;
	}
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		text[--n] = '\0';
	if (!n) {
		diag_error(d, NULL, "'%s' is empty (expected an SSH public key)", path);
		return -EINVAL;
	}
	strv_push(keys, text);
	return 0;
}

int cmd_init(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "master", required_argument, NULL, 'm' },
		{ "etcd", required_argument, NULL, OPT_ETCD },
		{ "worker", required_argument, NULL, OPT_WORKER },
		{ "ssh-key", required_argument, NULL, OPT_SSH_KEY },
		{ "boot-server", required_argument, NULL, OPT_BOOT_SERVER },
		{ "from-dlws", required_argument, NULL, OPT_FROM_DLWS },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	_cleanup_(scaffold_release) struct scaffold s = SCAFFOLD_INIT;
	struct strv key_files = STRV_INIT;
	const char *from_dlws = NULL;
	int c, status = -1;
	optind = 0;
	while (status < 0 && (c = getopt_long(argc, argv, "n:m:" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		enum node_role role = ROLE_MASTER;
		switch (c) {
		case 'n':
			free(s.name);
			s.name = xstrdup(optarg);
			continue;
		case OPT_SSH_KEY:
			strv_push(&key_files, optarg);
			continue;
		case OPT_BOOT_SERVER:
			free(s.boot_server);
			s.boot_server = xstrdup(optarg);
			continue;
		case OPT_FROM_DLWS:
			from_dlws = optarg;
			continue;
		case 'm': role = ROLE_MASTER; break;
		case OPT_ETCD: role = ROLE_ETCD; break;
		case OPT_WORKER: role = ROLE_WORKER; break;
		default:
			status = cmd_common_option(c, ctx, "init", usage);
			continue;
		}
		if (scaffold_add_node(&s, role, optarg) < 0)
			status = cmd_usage_error("init", "--%s takes HOST=IP[,MAC], not '%s'", role_name(role), optarg);
	}
	if (status < 0 && argc - optind != 1)
		status = cmd_usage_error("init", "needs exactly one DIR");
	else if (status < 0 && !s.name && !from_dlws)
		status = cmd_usage_error("init", "needs --name NAME (or --from-dlws FILE)");
	if (status >= 0) {
		strv_release(&key_files);
		return status;
	}
	const char *dir = argv[optind];
	struct diags d = DIAGS_INIT;
	int r = 0;
	for (size_t i = 0; i < key_files.n; i++) {
		int k = read_ssh_key(key_files.v[i], &s.ssh_keys, &d);
		if (k < 0)
			r = k;
	}
	strv_release(&key_files);
	/* After the command line's keys are read: the file's go before them. */
	if (r == 0 && from_dlws)
		r = dlwsconfig_merge(from_dlws, &s, &d);
	_cleanup_free_ char *examples = scaffold_examples_dir();
	if (r == 0)
		r = scaffold_write(&s, examples, dir, &d);
	if (r == 0 && ctx->verbosity >= 2)
		fprintf(stderr, "dlws-mkimage: copied the recipes, templates and overlays of '%s'\n", examples);
	if (r == 0 && ctx->verbosity >= 1)
		printf("wrote %s/recipes (cluster.yaml, master.recipe, etcd.recipe, worker.recipe, templates/) and "
		       "%s/overlays\nbuild: dlws-mkimage %s/recipes/master.recipe %s/recipes/etcd.recipe %s/recipes/worker.recipe\n",
		       dir, dir, dir, dir, dir);
	return cmd_report(&d, r);
}
