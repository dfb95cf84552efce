#!/usr/bin/env python3
"""Checks packaging/monitoring/ against the exposition of a zeroed snapshot, which declares every family
tandem can export (introspect.sh BUILD metrics). Dashboard: valid JSON, unique ids, grid without
overlaps, queries on ${datasource}, required panels querying their series, every query parsed by
promtool, every series exported. Alerts: every series exported. Exits 1 with one line per problem.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# Panels the dashboard must have, each with series its queries must use (issue 5: request rates and
# latency per cluster, errors by cluster, in flight, async reads, connections, config epoch and reloads).
REQUIRED_PANELS = {
    "Request rate by cluster": ["tandem_proxy_request_duration_seconds_count",
                                "tandem_origin_request_duration_seconds_count",
                                "tandem_target_request_duration_seconds_count"],
    "Latency per cluster": ["tandem_origin_request_duration_seconds_bucket",
                            "tandem_target_request_duration_seconds_bucket"],
    "Failed requests by cluster": ["tandem_origin_requests_failed_total", "tandem_target_requests_failed_total"],
    "Error ratio by cluster": ["tandem_origin_requests_failed_total", "tandem_target_requests_failed_total"],
    "In-flight requests": ["tandem_proxy_inflight_requests_total", "tandem_async_inflight_requests_total"],
    "Mirrored reads": ["tandem_async_request_duration_seconds_count", "tandem_async_reads_dropped_total",
                       "tandem_async_reads_sampled_out_total"],
    "Async read latency": ["tandem_async_request_duration_seconds_bucket"],
    "Client connections": ["tandem_client_connections_total"],
    "Backend pool connections": ["tandem_origin_connections_total", "tandem_target_connections_total"],
    "Config epoch": ["tandem_config_epoch"],
    "Reloads": ["tandem_config_reloads_total"],
    "Primary cluster per instance": ["tandem_primary_cluster"],
}
FOREIGN_SERIES = {"up", "probe_success"}
# Dashboard variables and Grafana's built-ins, as a query would see them.
VARIABLES = [("${prefix}", "tandem"), ("$__rate_interval", "5m"), ("$__interval", "1m"),
             ("$readiness_job", "tandem-readiness"), ("$instance", ".+"), ("$job", ".+")]
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "count", "max", "min", "avg",
                "clamp_max", "clamp_min", "changes", "and", "or", "unless", "on", "ignoring", "without",
                "group_left", "group_right", "bool", "offset", "le", "humanize"}


def families(path):
    """Family name -> type, from the # TYPE lines of an exposition."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"# TYPE (\S+) (\S+)", line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


def exported(name, fams):
    if name in fams or name in FOREIGN_SERIES:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and fams.get(name[: -len(suffix)]) == "histogram":
            return True
    return False


def series_names(expr):
    """Metric names in a PromQL expression: identifiers not followed by '(' and not inside quotes,
    braces or brackets, minus keywords and label names of by/on clauses."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if word in PROMQL_WORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


def substitute(expr):
    for var, value in VARIABLES:
        expr = expr.replace(var, value)
    return expr


def promtool_parse(exprs, errors):
    """Parses expressions with promtool, as recording rules of a temporary rule file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-queries.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (where, expr) in enumerate(exprs):
                f.write(f"      - record: dashboard:q{i}\n        expr: {json.dumps(expr)}\n")
        res = subprocess.run(["promtool", "check", "rules", path], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            errors.append("dashboard: promtool rejects a query:\n" + res.stdout)


def check_dashboard(path, fams, errors):
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        errors.append(f"{path}: not valid JSON: {e}")
        return
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash:
            errors.append(f"{path}: no '{key}'")
    variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    for v in ("datasource", "prefix", "job", "instance"):
        if v not in variables:
            errors.append(f"{path}: no template variable '{v}'")
    ids, cells, exprs = set(), {}, []
    by_title = {}
    for p in dash.get("panels", []):
        title = p.get("title", "?")
        if p.get("id") in ids:
            errors.append(f"{path}: panel '{title}': duplicate id {p.get('id')}")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24 or g.get("w", 0) <= 0 or g.get("h", 0) <= 0:
            errors.append(f"{path}: panel '{title}': gridPos {g} outside the 24-column grid")
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    errors.append(f"{path}: panel '{title}' overlaps '{cells[(x, y)]}' at {x},{y}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            errors.append(f"{path}: panel '{title}' has no query")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"{path}: panel '{title}': query {t.get('refId')} not on ${{datasource}}")
            expr = substitute(t.get("expr", ""))
            exprs.append((title, expr))
            for name in series_names(expr):
                if not exported(name, fams):
                    errors.append(f"{path}: panel '{title}': series '{name}' is not exported by tandem")
        by_title.setdefault(title, []).extend(substitute(t.get("expr", "")) for t in targets)
    for ann in dash.get("annotations", {}).get("list", []):
        if "expr" in ann:
            exprs.append(("annotation " + ann.get("name", "?"), substitute(ann["expr"])))
    for title, needed in REQUIRED_PANELS.items():
        if title not in by_title:
            errors.append(f"{path}: required panel '{title}' missing")
            continue
        text = " ".join(by_title[title])
        for series in needed:
            if series not in text:
                errors.append(f"{path}: panel '{title}' does not query {series}")
    promtool_parse(exprs, errors)


def check_alerts(path, fams, errors):
    """Every series an alert expression names must be exported (promtool checks the syntax)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # The expressions are the `expr:` scalars, single-line or `|` blocks.
    exprs = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent, first = len(m.group(1)), m.group(2)
        if first.strip() in ("|", ">", "|-", ">-"):
            block = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            exprs.append(" ".join(block))
        else:
            exprs.append(first)
            i += 1
    if not exprs:
        errors.append(f"{path}: no alert expressions found")
    for expr in exprs:
        for name in series_names(expr):
            if not exported(name, fams):
                errors.append(f"{path}: series '{name}' is not exported by tandem")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exposition", required=True)
    ap.add_argument("--dashboard")
    ap.add_argument("--alerts")
    args = ap.parse_args()
    fams = families(args.exposition)
    if len(fams) < 10:
        sys.exit(f"check_monitoring: only {len(fams)} families in {args.exposition}")
    errors = []
    if args.dashboard:
        check_dashboard(args.dashboard, fams, errors)
    if args.alerts:
        check_alerts(args.alerts, fams, errors)
    for e in errors:
        print("check_monitoring: " + e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
