/* Cluster files (cluster.c, over yamldoc.c, schema.c and value.c), and the
 * scalar parsers they use (addresses, ranges, MACs, hostnames, sizes),
 * which also check --master H=IP,MAC of `init` and outputs' sizes. */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "diag.h"
#include "fuzz.h"
#include "recipe.h"
#include "util.h"

static void scalars(const char *s) {
	uint32_t addr;
	struct cidr c;
	char mac[18];
	uint64_t size;
	if (ipv4_parse(s, &addr) == 0) {
		char *again = ipv4_format(addr);
		uint32_t back;
		if (ipv4_parse(again, &back) < 0 || back != addr)
			abort();
		free(again);
	}
	if (cidr_parse(s, &c) == 0 && (c.prefix < 0 || c.prefix > 32 || !cidr_overlaps(&c, &c)))
		abort();
	if (mac_normalize(s, mac) == 0 && strlen(mac) != 17)
		abort();
	(void)hostname_valid(s);
	(void)parse_size(s, &size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const char *path = fuzz_write("cluster.yaml", data, size);
	struct diags d = DIAGS_INIT;
	struct cluster *c = NULL;
	if (cluster_load(path, &c, &d) == 0) {
		for (size_t i = 0; i < c->n_nodes; i++) {
			if (cluster_find_node(c, c->nodes[i].hostname) == NULL)
				abort();
		}
		const struct node *v[64];
		for (int role = 0; role < _ROLE_MAX; role++)
			(void)cluster_nodes_of(c, (enum node_role)role, v, 64);
		cluster_free(c);
	} else if (d.n_errors == 0) {
		abort();
	}
	diags_release(&d);

	/* Each line as one scalar. */
	char *text = fuzz_strdup(data, size);
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		scalars(line);
	}
	free(text);
	return 0;
}
