/* What `dlws-mkimage inspect` shows of an output read back (reader.h):
 * its build metadata, boot entries, manifests, certificates and rendered
 * configs, secrets masked. One model, two renderings: JSON (the shape
 * README.md documents, stable) and text for people. */
#pragma once
#include <stdbool.h>
#include <time.h>

#include "diag.h"
#include "reader.h"

struct inspect_opts {
	bool manifest_entries;  /* every manifest line, not only counts */
	bool config_text;       /* text rendering: the configs' text too */
	time_t now;             /* for days_left */
};

/* The model as JSON text (ends in a newline) and as text for people.
 * Neither ever holds a private key or a token secret. *ret is owned by the
 * caller; what could not be read (unreadable segments, metadata or
 * certificates: "problems" in the model) is pushed to `problems`. */
char *inspect_json(const struct reader_output *o, const struct inspect_opts *opts, struct strv *problems);
char *inspect_text(const struct reader_output *o, const struct inspect_opts *opts, struct strv *problems);
