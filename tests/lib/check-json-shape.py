#!/usr/bin/env python3
"""check-json-shape.py MANPAGE SHAPE FILE: FILE (a --json answer) has the
top-level shape the man page's JSON OUTPUT section documents under the
subsection whose title starts with SHAPE ("Releases:"): one object, every
documented key with its type, and no key the page leaves out; below the top
level, every key of every object is one the subsection names in bold (its
prose documents nested keys and their types: "built (time|null)"), so a key
added to the output and not to the page is found. Prints one line per
mismatch; exit 1 if there is any."""
import json
import re
import shlex
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


def bold_names(lines):
    """Every word the subsection sets in bold: .B WORD, the 1st, 3rd, ...
    arguments of .BR (bold, roman, bold, ...), and \\fB...\\fR inline."""
    names, in_json, in_shape = set(), False, False
    for line in lines:
        if line.startswith(".SH "):
            in_json = line.strip() == ".SH JSON OUTPUT"
            in_shape = False
            continue
        if line.startswith(".SS ") and in_json:
            in_shape = line[4:].strip().strip('"').startswith(shape)
            continue
        if not in_shape:
            continue
        text = line.replace("\\%", "").replace("\\-", "-")
        try:
            args = shlex.split(text.split(" ", 1)[1]) if " " in text else []
        except ValueError:
            args = text.split()[1:]
        if text.startswith(".B "):
            names.update(args[:1])
        elif text.startswith(".BR "):
            names.update(args[0::2])
        names.update(re.findall(r"\\fB(\w+)\\f[RP]", text))
    return {n for n in names if re.fullmatch(r"\w+", n)}


def nested_keys(value, where, out):
    """(where, key) for every key of every object below `value`."""
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((where, k))
            nested_keys(v, f"{where}.{k}", out)
    elif isinstance(value, list):
        for v in value:
            nested_keys(v, f"{where}[]", out)
    return out


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


page_lines = open(page).read().splitlines()
keys = documented(page_lines)
named = bold_names(page_lines)
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
    seen = set()
    for where, k in nested_keys({k: v for k, v in doc.items() if k in keys}, "", []):
        if where and k not in named and (where, k) not in seen:
            seen.add((where, k))
            bad.append(f"{path}: '{where[1:]}.{k}' is not documented in {page}")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
