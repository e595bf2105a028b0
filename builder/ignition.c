#include "ignition.h"

#include <stdlib.h>

#include "jsonout.h"
#include "util.h"

char *ignition_config(const struct ign_unit *units, size_t n) {
	json_object *root = json_checked(json_object_new_object());
	json_object *ign = json_checked(json_object_new_object());
	json_object_object_add(ign, "version", json_str(IGNITION_SPEC_VERSION));
	json_object_object_add(root, "ignition", ign);

	json_object *list = json_checked(json_object_new_array());
	for (size_t i = 0; i < n; i++) {
		const struct ign_unit *u = &units[i];
		json_object *o = json_checked(json_object_new_object());
		json_object_object_add(o, "name", json_str(u->name));
		if (u->contents) {
			json_object_object_add(o, "enabled", json_checked(json_object_new_boolean(u->enabled)));
			json_object_object_add(o, "contents", json_str(u->contents));
		}
		if (u->n_dropins) {
			json_object *drops = json_checked(json_object_new_array());
			for (size_t k = 0; k < u->n_dropins; k++) {
				json_object *dr = json_checked(json_object_new_object());
				json_object_object_add(dr, "name", json_str(u->dropins[k].name));
				json_object_object_add(dr, "contents", json_str(u->dropins[k].contents));
				json_object_array_add(drops, dr);
			}
			json_object_object_add(o, "dropins", drops);
		}
		json_object_array_add(list, o);
	}
	json_object *systemd = json_checked(json_object_new_object());
	json_object_object_add(systemd, "units", list);
	json_object_object_add(root, "systemd", systemd);

	const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
								JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = xasprintf("%s\n", text ? text : "{}");
	json_object_put(root);
	return out;
}
