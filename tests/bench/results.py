"""Results of `make bench`: the rows of build/bench/results.json, the table and the tandem/direct ratios
printed on stdout, the budget verdicts of architecture.md section 6, and the gnuplot latency-percentile
plot. Standard library only; gnuplot is optional (the plot is skipped with a message without it)."""

import json
import os
import shutil
import subprocess

# Keys of every load row, in the order of the list, then the extras.
ROW_KEYS = ["workload", "protocol", "path", "connections", "inflight", "requests", "throughput_rps",
            "p50_us", "p90_us", "p99_us", "p999_us", "proxy_cpu_us_per_req", "proxy_rss_kib"]


def make_row(run, scenario, backend, note=None):
    """One results.json object from a tdm-bench JSON line (`run`) and where it ran."""
    procs = run.get("procs", {})
    proxy = procs.get("proxy", {})
    row = {k: run.get(k) for k in ROW_KEYS if k in run}
    row["workload"] = run.get("workload")
    row["protocol"] = run.get("protocol")
    row["compression"] = run.get("compression")
    row["path"] = run.get("path")
    row["proxy_cpu_us_per_req"] = proxy.get("cpu_us_per_req") if proxy.get("ok") else None
    row["proxy_rss_kib"] = proxy.get("rss_kib") if proxy.get("ok") else None
    backend_cpu = [p.get("cpu_us_per_req") for name, p in procs.items()
                   if name in ("origin", "target") and p.get("ok")]
    row.update({
        "scenario": scenario,
        "backend": backend,
        "mode": "open-loop" if run.get("rate") else "closed-loop",
        "rate": run.get("rate") or None,
        "pipeline": run.get("pipeline"),
        "errors": run.get("errors"),
        "lost": run.get("lost"),
        "elapsed_s": run.get("elapsed_s"),
        "max_us": run.get("max_us"),
        "mean_us": run.get("mean_us"),
        "proxy_cpu_sched_us_per_req": proxy.get("cpu_sched_us_per_req") if proxy.get("ok") else None,
        "backend_cpu_us_per_req": round(sum(backend_cpu), 3) if backend_cpu else None,
        "client_cpu_us_per_req": run.get("client_cpu_us_per_req"),
        "spectrum": run.get("spectrum"),
        "ok": bool(run.get("ok")) and not run.get("lost"),
    })
    if run.get("first_error"):
        row["first_error"] = run["first_error"]
    if run.get("failure"):
        row["failure"] = run["failure"]
    if note:
        row["note"] = note
    return row


def copies_per_body(before, after):
    """Request-body copies per body forwarded to a backend leg during one run, from tandem's counters:
    all copies, and the avoidable ones (copies not forced by an id patch or by compression)."""
    fwd = after["forwarded"] - before["forwarded"]
    if fwd <= 0:
        return {}
    copies, forced = after["copies"] - before["copies"], after["forced"] - before["forced"]
    return {"bodies_forwarded": int(fwd), "body_copies_per_body": round(copies / fwd, 4),
            "body_copies_avoidable_per_body": round((copies - forced) / fwd, 4)}


def skipped_row(scenario, backend, workload, protocol, compression, path, reason, **extra):
    row = {"workload": workload, "protocol": protocol, "compression": compression, "path": path,
           "scenario": scenario, "backend": backend, "ok": False, "skipped": reason}
    for k in ROW_KEYS:
        row.setdefault(k, None)
    row.update(extra)
    return row


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows):
    """The load rows as a fixed-width table (one line per run)."""
    head = ("backend  scenario  workload proto      path   conn x inf  mode        req/s     p50     p90     p99"
            "   p99.9  proxy us/req  proxy RSS KiB")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.get("scenario") in ("idle", "alloc"):
            continue
        proto = "v%s%s" % (r.get("protocol"), "" if r.get("compression") in (None, "none") else "+" + r["compression"])
        shape = "%sx%s" % (r.get("connections") or "-", r.get("inflight") or "-")
        if r.get("pipeline") and r["pipeline"] > 1:
            shape += "/p%d" % r["pipeline"]
        mode = "rate %d" % r["rate"] if r.get("rate") else "closed"
        if r.get("skipped"):
            lines.append("%-8s %-9s %-8s %-9s %7s   skipped: %s" % (r["backend"], r["scenario"], r["workload"], proto,
                                                                    r["path"], r["skipped"]))
            continue
        flag = "" if r.get("ok") else "  !" + (r.get("failure") or ("lost %s" % r.get("lost")))
        lines.append("%-8s %-9s %-8s %-9s %7s %11s  %-9s %8s %7s %7s %7s %7s %13s %14s%s" % (
            r["backend"], r["scenario"], r["workload"], proto, r["path"], shape, mode,
            _fmt(r.get("throughput_rps"), ".0f"), _fmt(r.get("p50_us"), ".0f"), _fmt(r.get("p90_us"), ".0f"),
            _fmt(r.get("p99_us"), ".0f"), _fmt(r.get("p999_us"), ".0f"), _fmt(r.get("proxy_cpu_us_per_req"), ".2f"),
            _fmt(r.get("proxy_rss_kib"), "d"), flag))
    return "\n".join(lines)


def ratios(rows):
    """tandem (and the reference relay) vs direct for every run that has both paths, round by round:
    throughput ratio, added p50/p99."""
    key = lambda r: (r["backend"], r["scenario"], r["workload"], r.get("protocol"), r.get("compression"),
                     r.get("round"))
    direct = {key(r): r for r in rows if r.get("path") == "direct" and r.get("ok") and r.get("workload") != "idle"}
    out = []
    head = ("backend  scenario  workload proto     rnd   path   path/direct req/s   added p50 us   added p99 us"
            "   proxy us/req")
    out.append(head)
    out.append("-" * len(head))
    for r in rows:
        if r.get("path") not in ("tandem", "relay") or not r.get("ok") or key(r) not in direct:
            continue
        d = direct[key(r)]
        proto = "v%s%s" % (r["protocol"], "" if r.get("compression") in (None, "none") else "+" + r["compression"])
        tr = r["throughput_rps"] / d["throughput_rps"] if d.get("throughput_rps") else None
        out.append("%-8s %-9s %-8s %-9s %3s %6s %18s %14s %14s %14s" % (
            r["backend"], r["scenario"], r["workload"], proto, r.get("round") or "-", r["path"], _fmt(tr, ".2f"),
            _fmt(r["p50_us"] - d["p50_us"], "+.0f"), _fmt(r["p99_us"] - d["p99_us"], "+.0f"),
            _fmt(r.get("proxy_cpu_us_per_req"), ".2f")))
    return "\n".join(out) if len(out) > 2 else "(no run has both paths yet)"


def median(values):
    v = sorted(values)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def lowload_summary(rows):
    """Median p50 per path and workload over the low-load rounds, and the added p50 of tandem and of the
    reference relay over direct: {workload: {"direct": us, "relay": us, "tandem": us, "added_tandem": ...}}."""
    out = {}
    for wl in ("insert", "select"):
        s = {}
        for path in ("direct", "relay", "tandem"):
            p50s = [r["p50_us"] for r in rows if r.get("scenario") == "lowload" and r.get("backend") == "mock"
                    and r.get("workload") == wl and r.get("path") == path and r.get("ok")]
            s[path] = median(p50s)
            s[path + "_rounds"] = len(p50s)
        for path in ("relay", "tandem"):
            s["added_" + path] = (round(s[path] - s["direct"], 1) if s[path] is not None and s["direct"] is not None
                                  else None)
        out[wl] = s
    return out


def lowload_text(rows):
    """One line per workload: median low-load p50 of each path and what the relay and tandem add."""
    out = []
    for wl, s in lowload_summary(rows).items():
        if s["direct"] is None:
            continue
        out.append("low load, %s, median p50 over %d rounds: direct %s us, relay %s us (%s), tandem %s us (%s)" % (
            wl, s["direct_rounds"], _fmt(s["direct"], ".0f"), _fmt(s["relay"], ".0f"), _fmt(s["added_relay"], "+.0f"),
            _fmt(s["tandem"], ".0f"), _fmt(s["added_tandem"], "+.0f")))
    return "\n".join(out)


def extras(rows):
    """The idle-connection memory and allocation-count rows, one line each."""
    out = []
    for r in rows:
        if r.get("scenario") == "idle":
            if r.get("skipped"):
                out.append("memory: %s idle connections: skipped: %s" % (r.get("connections"), r["skipped"]))
            elif r.get("ok"):
                out.append("memory, v%s: %6d idle connections: tandem RSS %d KiB (before %d KiB) = %.2f KiB per "
                           "connection" % (r["protocol"], r["connections"], r["proxy_rss_kib"], r["baseline_rss_kib"],
                                           r["rss_per_conn_kib"]))
            else:
                out.append("memory: %s idle connections: FAILED: %s" % (r.get("connections"), r.get("failure")))
        elif r.get("scenario") == "alloc":
            out.append("allocations, v%s%s: %s per request (%s calls in run 1, %s in run 2, %s requests apart)" % (
                r.get("protocol"), "" if r.get("compression") in (None, "none") else "+" + r["compression"],
                r.get("allocs_per_req"), r.get("alloc_calls_run1"), r.get("alloc_calls_run2"), r.get("requests")))
    return "\n".join(out)


def find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()) and r.get("ok"):
            return r
    return None


def budgets(rows, zdm_reason):
    """Verdicts for architecture.md section 6, from what this invocation measured."""
    out = []

    def verdict(name, budget, value, ok, how):
        out.append({"budget": name, "limit": budget, "measured": value,
                    "verdict": "unmeasured" if value is None else ("met" if ok else "NOT met"), "how": how})

    dual = find(rows, backend="mock", scenario="max", workload="insert", protocol=4, path="tandem")
    v = dual.get("proxy_cpu_us_per_req") if dual else None
    verdict("proxy CPU per dual write, 16x4, pooled", "<= 7 us", v, v is not None and v <= 7,
            "tandem /proc/PID/stat utime+stime over the measured interval / completed INSERTs (v4, mock backends)")
    pipe = find(rows, backend="mock", scenario="pipeline", workload="insert", protocol=4, path="tandem")
    v = pipe.get("proxy_cpu_us_per_req") if pipe else None
    verdict("proxy CPU per request, clients pipelining >= 16", "<= 2 us", v, v is not None and v <= 2,
            "as above, client writes 16 requests per syscall (4 connections x 64 in flight)")
    low = lowload_summary(rows)
    for wl in ("insert", "select"):
        s = low[wl]
        v = s["added_tandem"]
        relay = ("reference relay (haproxy, TCP) added %+.0f us in the same rounds" % s["added_relay"]
                 if s["added_relay"] is not None else "no reference relay run")
        verdict("added p50 latency, low load, loopback (%s)" % wl, "<= 30 us", v, v is not None and v <= 30,
                "median over %d rounds of p50 tandem - median p50 direct, open loop at the same fixed rate, "
                "same invocation; %s" % (s["tandem_rounds"], relay))
    big = [r for r in rows if r.get("workload") == "idle" and r.get("ok")]
    v = max((r["rss_per_conn_kib"] for r in big), default=None)
    verdict("memory per idle client connection", "<= 8 KiB", v, v is not None and v <= 8,
            "(tandem RSS with N idle clients - RSS before) / N, N = 1000 and 10000, v4 and v5, a fresh tandem per "
            "protocol; the largest is shown")
    alloc = [r for r in rows if r.get("scenario") == "alloc" and r.get("ok")]
    v = max((r["allocs_per_req"] for r in alloc), default=None)
    verdict("heap allocations per request, steady state", "0", v, v is not None and v < 0.001,
            "gdb breakpoints on malloc/calloc/realloc in tandem during two closed-loop INSERT runs of 5000 and "
            "45000 requests; the worst of %s" % ", ".join(
                "v%s%s" % (r["protocol"], "" if r.get("compression") in (None, "none") else "+" + r["compression"])
                for r in alloc))
    verdict("throughput vs zdm-proxy per CPU second", ">= 5x", None, False, zdm_reason)
    counted = [r for r in rows if r.get("backend") == "mock" and r.get("path") == "tandem"
               and r.get("body_copies_avoidable_per_body") is not None]
    v = max((r["body_copies_avoidable_per_body"] for r in counted), default=None)
    worst = [r for r in counted if r["body_copies_avoidable_per_body"] == v]
    verdict("copies of a request body on the way through", "0", v, v is not None and v == 0,
            "tandem_request_body_copies_total - _forced_total, per tandem_request_bodies_forwarded_total, "
            "scraped around each tandem run; worst of %d runs%s" % (
                len(counted), " (%s %s v%s%s)" % (worst[0]["scenario"], worst[0]["workload"], worst[0]["protocol"],
                                                  "" if worst[0].get("compression") in (None, "none")
                                                  else "+" + worst[0]["compression"]) if worst else ""))
    return out


def budget_table(items):
    lines = ["%-52s %-9s %-12s %-11s" % ("budget (architecture.md section 6)", "limit", "measured", "verdict"),
             "-" * 88]
    for b in items:
        lines.append("%-52s %-9s %-12s %-11s" % (b["budget"], b["limit"], _fmt(b["measured"], ".2f")
                                                  if isinstance(b["measured"], float) else _fmt(b["measured"], ""),
                                                  b["verdict"]))
    return "\n".join(lines)


def write_json(path, rows, meta):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    with open(os.path.join(os.path.dirname(path), "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def plot(rows, outdir, log):
    """Latency by percentile (HdrHistogram style), direct (dashed) vs tandem (solid), protocol v4 on the
    mock nodes: left, the equal-load open-loop runs; right, the low-load runs. PNG via gnuplot."""
    gp = shutil.which("gnuplot")
    panels = [("rate", "equal offered load"), ("lowload", "low load")]
    colors = {"insert": "#1f77b4", "select": "#d62728", "mix": "#2ca02c"}
    plots = []
    for scenario, title in panels:
        series = [r for r in rows if r.get("ok") and r.get("scenario") == scenario and r.get("backend") == "mock"
                  and r.get("protocol") == 4 and r.get("spectrum") and r.get("round") in (None, 1)]
        if not series:
            continue
        lines = []
        for r in series:
            name = os.path.join(outdir, "spectrum-%s-%s-%s.dat" % (scenario, r["workload"], r["path"]))
            with open(name, "w") as f:
                for p, us in r["spectrum"]:
                    if p < 100:
                        f.write("%g %g\n" % (1.0 / (1.0 - p / 100.0), us))
            lines.append("'%s' using 1:2 with linespoints lc rgb '%s' dt %d pt 7 ps 0.5 title '%s %s'" % (
                name, colors.get(r["workload"], "black"), {"direct": 2, "relay": 3}.get(r["path"], 1), r["workload"],
                r["path"]))
        plots.append("set title '%s: %d requests/s, v4'\nplot %s\n" % (title, series[0]["rate"], ", \\\n  ".join(lines)))
    if not plots:
        log("plot: no open-loop runs to plot")
        return None
    script = os.path.join(outdir, "latency.gp")
    png = os.path.join(outdir, "latency.png")
    with open(script, "w") as f:
        f.write("set terminal pngcairo size 1200,520 font ',10'\n" if _has_cairo(gp) else "set terminal png size 1200,520\n")
        f.write("set output '%s'\n" % png)
        f.write("set multiplot layout 1,%d title 'tandem (solid) vs direct (dashed) and a haproxy TCP relay (dotted, "
                "low load): latency by percentile, "
                "mock backends, loopback'\n" % len(plots))
        f.write("set logscale xy\nset grid\nset key left top\nset ylabel 'latency (us)'\nset xlabel 'percentile'\n")
        f.write("set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)\n")
        for p in plots:
            f.write(p)
        f.write("unset multiplot\n")
    if not gp:
        log("plot: gnuplot not found (Debian package gnuplot-nox): %s written, no PNG" % script)
        return None
    res = subprocess.run([gp, script], capture_output=True, text=True)
    if res.returncode != 0:
        log("plot: gnuplot failed: %s" % res.stderr.strip()[-300:])
        return None
    return png


def _has_cairo(gp):
    if not gp:
        return True
    res = subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (res.stdout + res.stderr)
