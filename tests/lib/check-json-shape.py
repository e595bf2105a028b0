#!/usr/bin/env python3
"""check-json-shape.py MANPAGE SHAPE FILE: FILE (a --json answer) has the
top-level shape the man page's JSON OUTPUT section documents under the
subsection whose title starts with SHAPE ("Releases:"): one object, every
documented key with its type, and no key the page leaves out. Prints one
line per mismatch; exit 1 if there is any."""
import json
import re
import sys

page, shape, path = sys.argv[1:4]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def documented(lines):
    """{key: type} from the .TP tags of the subsection, as
    `.BR key " \\fIobject|null\\fR"` or `.BR key " [\\fIstring\\fR]"`."""
    keys, in_json, in_shape, prev = {}, False, False, ""
    for line in lines:
        if line.startswith(".SH "):
            in_json = line.strip() == ".SH JSON OUTPUT"
            in_shape = False
        elif line.startswith(".SS ") and in_json:
            in_shape = line[4:].strip().strip('"').startswith(shape)
        elif in_shape and prev.startswith(".TP"):
            m = re.match(r'^\.BR (\w+) " (.+)"$', line.strip())
            if m:
                keys[m.group(1)] = re.sub(r"\\f[IRBP]", "", m.group(2)).strip()
        prev = line
    return keys


def fits(value, kind):
    if kind.endswith("|null"):
        return value is None or fits(value, kind[: -len("|null")])
    if kind.startswith("[") and kind.endswith("]"):
        return isinstance(value, list) and all(fits(v, kind[1:-1]) for v in value)
    return {
        "string": lambda v: isinstance(v, str),
        "time": lambda v: isinstance(v, str) and TIME.match(v) is not None,
        "number": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
    }[kind](value)


keys = documented(open(page).read().splitlines())
if not keys:
    print(f"{page}: no keys documented under JSON OUTPUT, '{shape}'")
    sys.exit(1)
try:
    doc = json.load(open(path))
except ValueError as e:
    print(f"{path}: not JSON: {e}")
    sys.exit(1)
bad = []
if not isinstance(doc, dict):
    bad.append(f"{path}: the top level is {type(doc).__name__}, not an object")
else:
    for k, kind in keys.items():
        if k not in doc:
            bad.append(f"{path}: lacks '{k}' ({kind})")
        elif not fits(doc[k], kind):
            bad.append(f"{path}: '{k}' is not {kind}: {json.dumps(doc[k])[:80]}")
    for k in doc:
        if k not in keys:
            bad.append(f"{path}: '{k}' is not documented in {page}")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
