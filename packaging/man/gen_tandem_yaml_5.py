#!/usr/bin/env python3
"""Generates tandem.yaml(5) from the configuration key table compiled into tandem_core (names, types,
defaults, reload classes, flags, ranges, enum spellings, help; dumped by packaging/tools/introspect.sh)
and the template packaging/man/tandem.yaml.5.in. Run with --build BUILD_DIR or --keys DUMP.TSV;
packaging/test.sh regenerates the page and fails when it differs from the committed one.
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIELDS = ("name", "type", "default", "reload", "flags", "lo", "hi", "enums", "help")
INT32_MIN, INT32_MAX, INT64_MAX = -2147483648, 2147483647, 9223372036854775807

# What a value of each type looks like in the file, beyond its range or enum list.
TYPE_TEXT = {
    "string": "string",
    "boolean": "boolean (true/false, yes/no, on/off, 1/0)",
    "integer": "integer",
    "number": "number",
    "enum": "one of",
    "version": "protocol version: 3, 4, 5, DseV1 or DseV2 (2 with enable_protocol_v2)",
    "versions": "list of protocol versions (3/v3, 4/v4, 5/v5, DseV1, DseV2), comma-separated or a sequence",
    "hosts": "list of host or host:port, comma-separated or a sequence",
    "addresses": "list of IP or IP:port, comma-separated or a sequence",
    "buckets": "list of positive, strictly ascending numbers (ms), comma-separated or a sequence",
}


def esc(text):
    """Escapes text for a troff line: backslashes, and a leading control character."""
    text = text.replace("\\", "\\e")
    if text[:1] in (".", "'"):
        text = "\\&" + text
    return text


def literal(text):
    """A value shown verbatim in bold: minus signs as \\- so that they are not hyphenated."""
    if text == "":
        return '\\fB""\\fR (empty)'
    return "\\fB" + esc(text).replace("-", "\\-") + "\\fR"


def read_keys(lines):
    keys = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != len(FIELDS):
            sys.exit(f"gen_tandem_yaml_5: line {n}: {len(parts)} fields, expected {len(FIELDS)}")
        keys.append(dict(zip(FIELDS, parts)))
    if not keys:
        sys.exit("gen_tandem_yaml_5: no keys in the dump")
    return keys


def value_line(k):
    """The 'Type ... Default ... Reload ... Environment ...' paragraph of one key."""
    flags = set() if k["flags"] == "-" else set(k["flags"].split(","))
    out = []
    t = TYPE_TEXT.get(k["type"], k["type"])
    if k["type"] == "enum":
        names = k["enums"].split(",")
        t += " " + ", ".join("\\fB" + esc(x) + "\\fR" for x in names) + " (any case)"
    elif k["lo"] != "-":
        lo, hi = int(k["lo"]), int(k["hi"])
        if lo == INT32_MIN and hi == INT32_MAX:
            pass
        elif hi in (INT32_MAX, INT64_MAX):
            t += ", at least " + literal(str(lo))
        else:
            t += ", " + literal(str(lo)) + " to " + literal(str(hi))
    out.append("Type: " + t + ".")
    out.append("Default: " + literal(k["default"]) + ".")
    if "no_effect" not in flags:
        out.append("Reload: \\fI" + esc(k["reload"]) + "\\fR.")
    env = "TANDEM_" + k["name"].upper()
    if "zdm" in flags:
        env = "ZDM_" + k["name"].upper() + ", " + env
    out.append("Environment: " + esc(env) + ".")
    if "secret" in flags:
        out.append("Secret: never logged, never shown in the status API.")
    return " ".join(out)


def key_entry(k):
    help_text = k["help"].rstrip(".")
    return "\n".join([
        ".TP",
        ".B " + esc(k["name"]),
        esc(help_text) + ".",
        ".br",
        value_line(k),
    ])


def render(keys, template):
    def flags(k):
        return set() if k["flags"] == "-" else set(k["flags"].split(","))

    zdm = [k for k in keys if "zdm" in flags(k) and "no_effect" not in flags(k)]
    own = [k for k in keys if "zdm" not in flags(k)]
    compat = [k for k in keys if "no_effect" in flags(k)]
    parts = [
        ".SS zdm-proxy keys",
        "Keys zdm-proxy also understands, with its meaning; the environment sets them through",
        "\\fBZDM_\\fIKEY\\fR and \\fBTANDEM_\\fIKEY\\fR.",
    ]
    parts += [key_entry(k) for k in zdm]
    parts += [
        ".SS tandem-only keys",
        "Keys zdm-proxy does not have; the environment sets them through \\fBTANDEM_\\fIKEY\\fR only.",
    ]
    parts += [key_entry(k) for k in own]
    parts += [
        ".SS Accepted zdm-proxy tuning keys without effect",
        "tandem accepts these keys so that a zdm-proxy file loads unchanged, ignores their values,",
        "and logs one WARN for each one that is set.",
    ]
    parts += [key_entry(k) for k in compat]
    body = "\n".join(parts)
    if "@KEYS@" not in template or "@VERSION@" not in template:
        sys.exit("gen_tandem_yaml_5: the template lacks @KEYS@ or @VERSION@")
    return template.replace("@KEYS@", body).replace("@VERSION@", project_version()) \
        .replace("@NKEYS@", str(len(keys)))


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\(tandem VERSION ([0-9.]+)", f.read())
    if not m:
        sys.exit("gen_tandem_yaml_5: no project version in CMakeLists.txt")
    return m.group(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--build", help="CMake build directory holding src/libtandem_core.a")
    src.add_argument("--keys", help="tab-separated key dump (introspect keys)")
    ap.add_argument("-o", "--output", help="output file (default: stdout)")
    args = ap.parse_args()
    if args.build:
        tool = os.path.join(ROOT, "packaging", "tools", "introspect.sh")
        dump = subprocess.run(["bash", tool, args.build, "keys"], check=True, stdout=subprocess.PIPE,
                              text=True).stdout
        keys = read_keys(dump.splitlines())
    else:
        with open(args.keys, encoding="utf-8") as f:
            keys = read_keys(f)
    with open(os.path.join(HERE, "tandem.yaml.5.in"), encoding="utf-8") as f:
        page = render(keys, f.read())
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(page)
    else:
        sys.stdout.write(page)


if __name__ == "__main__":
    main()
