#!/usr/bin/env python3
"""`make bench`: drives tdm-bench against two `cqlmock --fast` nodes (origin, target) on the direct path
(client -> origin mock) and the tandem path (client -> build/tandem -> both mocks), in the same
invocation (the low-load runs add a reference relay: client -> haproxy in TCP mode -> origin mock), then an idle-connection memory test, then a shorter run against the real Cassandra clusters
when they are up. Writes build/bench/results.json, prints the table, the ratios and the budget verdicts,
and plots latency by percentile with gnuplot. Standard library only. Knobs: see ENV below."""

import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ENV = {  # name: (default, meaning)
    "BENCH_DURATION": ("4", "seconds measured per mock run"),
    "BENCH_WARMUP": ("1", "seconds of unmeasured load before each run"),
    "BENCH_CONNS": ("16", "client connections of the matrix runs"),
    "BENCH_INFLIGHT": ("4", "requests in flight per connection (closed loop)"),
    "BENCH_RATE": ("10000", "offered load of the equal-load open-loop runs, requests/s"),
    "BENCH_LOW_RATE": ("2000", "offered load of the low-load latency runs, requests/s"),
    "BENCH_LOW_ROUNDS": ("3", "rounds of the low-load runs (direct, relay, tandem each); medians are compared"),
    "BENCH_LOW_DURATION": ("3", "seconds measured per low-load run"),
    "BENCH_REAL_DURATION": ("3", "seconds measured per real-cluster run"),
    "BENCH_CLUSTERS": ("auto", "auto: use the real clusters if already up; start: bring them up; skip"),
    "BENCH_TANDEM_WORKERS": ("1", "tandem worker threads"),
    "BENCH_IDLE": ("1000,10000", "idle client connection counts of the memory test"),
    "BENCH_ALLOC": ("auto", "count tandem's heap allocations per request with gdb: auto|0|1"),
    "BENCH_PROFILE": ("0", "1: perf record tandem during the 16x4 insert run (build/bench/perf-*.txt)"),
    "BENCH_BUDGET_S": ("350", "no real-cluster phase is started past this many seconds (10 min with the build)"),
    "BENCH_NICE": ("0", "niceness of every benchmark process (e.g. -5 on a shared machine; < 0 needs root)"),
    "BENCH_TLS_REQUESTS": ("300000", "pipelined INSERTs per TLS-overhead run (sequential runs use a tenth)"),
    "BENCH_PHASES": ("matrix,lowload,pipeline,alloc,tls,idle,real", "phases to run (subset, comma-separated)"),
}
MATRIX = [(4, "none"), (5, "lz4")]
MAX_ONLY = [(5, "none")]  # closed loop only: plain v5 (its own output path: segments by reference)
ALLOC_SHAPES = [(4, "none"), (5, "none"), (5, "lz4")]
IDLE_PROTOCOLS = [4, 5]
WORKLOADS = ["insert", "select", "mix"]
ZDM_REASON = ("zdm-proxy could not be obtained: the Go module proxy answers 403 Forbidden for "
              "github.com/datastax/zdm-proxy (and its dependency go-cassandra-native-protocol) on this machine, "
              "and building it from a git clone is outside the rules of this project's benchmark")


def env(name):
    return os.environ.get(name, ENV[name][0])


def phase(name):
    return name in env("BENCH_PHASES").split(",")


class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.out = os.path.join(self.build, "bench")
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.bin = {n: os.path.join(self.build, n) for n in ("tdm-bench", "cqlmock", "tandem")}
        self.procs = []
        self.rows = []
        self.t_start = time.monotonic()
        self.notes = []

    # ---- helpers ----

    def log(self, msg):
        print("bench [%5.0fs] %s" % (time.monotonic() - self.t_start, msg), file=sys.stderr, flush=True)

    def note(self, msg):
        self.notes.append(msg)
        self.log(msg)

    def elapsed(self):
        return time.monotonic() - self.t_start

    @staticmethod
    def niced(argv):
        n = int(env("BENCH_NICE"))
        return (["nice", "-n", str(n)] + argv) if n else argv

    def spawn(self, name, argv, **kw):
        argv = self.niced(argv)
        logf = open(os.path.join(self.logs, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=kw.pop("stdout", logf), stderr=logf, cwd=ROOT, **kw)
        p.bench_name = name
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)

    @staticmethod
    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def start_mock(self, name):
        p = self.spawn("mock-" + name, [self.bin["cqlmock"], "--fast", "--quiet", "--cluster-name", name,
                                        "--node", "127.0.0.1:0"], stdout=subprocess.PIPE)
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline and p.poll() is None:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                line = p.stdout.readline().decode(errors="replace")
                break
        if "ready" not in line:
            raise RuntimeError("cqlmock %s did not start (see %s/mock-%s.log)" % (name, self.logs, name))
        port = int(line.split("nodes=")[1].split(",")[0].rsplit(":", 1)[1])
        self.log("mock %s: 127.0.0.1:%d pid %d" % (name, port, p.pid))
        return p, port

    def tdm_bench(self, args, timeout=120, label="direct", pids=None, name="run"):
        argv = [self.bin["tdm-bench"], "--json", "--quiet", "--label", label, "--connect-timeout", 20] + args
        argv = self.niced([str(a) for a in argv])
        for k, v in (pids or {}).items():
            argv += ["--sample-pid", "%s=%d" % (k, v)]
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return {"ok": False, "failure": "tdm-bench timed out after %d s" % timeout, "procs": {}}
        with open(os.path.join(self.logs, "tdm-bench.log"), "a") as f:
            f.write("$ %s\n%s%s\n" % (" ".join(argv), res.stderr, res.stdout))
        for line in res.stdout.splitlines():
            if line.startswith("{"):
                return json.loads(line)
        return {"ok": False, "failure": (res.stderr.strip().splitlines() or ["no output"])[-1], "procs": {}}

    # ---- tandem ----

    def start_tandem(self, name, origin, target, extra=None):
        """Starts build/tandem between two endpoints; returns (proc, port) or (None, reason)."""
        if not os.access(self.bin["tandem"], os.X_OK):
            return None, "build/tandem does not exist"
        port = self.free_port()
        cfg = os.path.join(self.out, "tandem-%s.yaml" % name)
        conf = {
            "origin_contact_points": origin[0], "origin_port": origin[1],
            "target_contact_points": target[0], "target_port": target[1],
            "proxy_listen_address": "127.0.0.1", "proxy_listen_port": port,
            "proxy_max_client_connections": 30000, "workers": int(env("BENCH_TANDEM_WORKERS")),
            "metrics_enabled": "false", "admin_port": 0, "log_level": "WARN",
        }
        conf.update(extra or {})
        with open(cfg, "w") as f:
            f.write("# generated by tests/bench/bench.py\n")
            for k, v in conf.items():
                f.write("%s: %s\n" % (k, v))
        p = self.spawn("tandem-" + name, [self.bin["tandem"], "--config=" + cfg])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if p.poll() is not None:
                self.procs.remove(p)
                return None, "tandem exited with status %s (%s)" % (p.returncode, self.tail("tandem-" + name))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return p, port
            except OSError:
                time.sleep(0.1)
        self.stop(p)
        return None, "tandem did not listen on 127.0.0.1:%d within 15 s" % port

    def tail(self, name, n=2):
        try:
            with open(os.path.join(self.logs, name + ".log")) as f:
                lines = [l.strip() for l in f.read().splitlines() if l.strip()]
            return " | ".join(lines[-n:]) or "no output"
        except OSError:
            return "no log"

    def probe(self, port, extra=()):
        """A tiny run through tandem: handshake, DDL, PREPARE, a few EXECUTEs of each kind."""
        run = self.tdm_bench(["--port", port, "--workload", "mix", "--requests", 200, "--connections", 2,
                              "--inflight", 2, "--warmup", 0, "--drain-timeout", 3] + list(extra),
                             timeout=30, label="tandem")
        if run.get("ok") and not run.get("lost") and not run.get("errors"):
            return None
        return run.get("failure") or run.get("first_error") or ("%s lost responses" % run.get("lost"))

    # ---- phases ----

    def run_pair(self, backend, scenario, args, direct_port, tandem_port, pids_direct, pids_tandem, workload,
                 proto, comp, tandem_skip, timeout):
        self.run_paths(backend, scenario, args, [("direct", direct_port, pids_direct),
                                                 ("tandem", tandem_port, pids_tandem)],
                       workload, proto, comp, tandem_skip, timeout)

    def run_paths(self, backend, scenario, args, paths, workload, proto, comp, tandem_skip, timeout, extra=None):
        """One run per (path, port, pids), in order; rows carry `extra` (e.g. the round)."""
        common = ["--workload", workload, "--protocol", proto, "--compression", comp] + args
        for path, port, pids in paths:
            self.check_alive()
            if path == "tandem" and not tandem_skip:
                tandem_skip = self.tandem_dead or self.broken.get((backend, proto, comp))
            if path == "tandem" and tandem_skip:
                self.rows.append(results.skipped_row(scenario, backend, workload, proto, comp, path, tandem_skip))
                continue
            copies0 = self.body_copies() if path == "tandem" and backend == "mock" else None
            if self.profile_this(backend, scenario, workload, proto, path):
                run = self.with_profile(pids["proxy"], lambda: self.tdm_bench(["--port", port] + common, timeout,
                                                                               path, pids))
            else:
                run = self.tdm_bench(["--port", port] + common, timeout, path, pids)
            row = results.make_row(run, scenario, backend)
            row.update(extra or {})
            if copies0:
                row.update(results.copies_per_body(copies0, self.body_copies()))
            self.rows.append(row)
            self.remember_broken(run, backend, path, proto, comp)
            self.log("%-6s %-8s %-6s v%d %-4s %-6s %9s req/s  p50 %6s us  p99 %7s us  proxy %s us/req%s" % (
                backend, scenario, workload, proto, comp, path, results._fmt(row.get("throughput_rps"), ".0f"),
                results._fmt(row.get("p50_us"), ".0f"), results._fmt(row.get("p99_us"), ".0f"),
                results._fmt(row.get("proxy_cpu_us_per_req"), ".2f"),
                "" if row["ok"] else "  FAILED: %s" % (row.get("failure") or "lost %s" % row.get("lost"))))

    def body_copies(self):
        """tandem's request-body counters from /metrics (summed over the origin and target legs), or None."""
        import urllib.request
        if not getattr(self, "metrics_port", None):
            return None
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        out = {"forwarded": 0, "copies": 0, "forced": 0}
        names = {"tandem_request_bodies_forwarded_total": "forwarded", "tandem_request_body_copies_total": "copies",
                 "tandem_request_body_copies_forced_total": "forced"}
        for line in text.splitlines():
            name = line.split("{")[0]
            if name in names and 'leg="async"' not in line:
                out[names[name]] += float(line.rsplit(" ", 1)[1])
        return out

    def remember_broken(self, run, backend, path, proto, comp):
        """A tandem run that failed before its load started (handshake, PREPARE) would fail again, each
        time after tandem's request timeout: the protocol's later tandem runs are skipped instead."""
        if path == "tandem" and not run.get("ok") and not run.get("requests"):
            why = "an earlier v%s %s run through tandem failed: %s" % (proto, comp, run.get("failure"))
            self.broken.setdefault((backend, proto, comp), why)

    def check_alive(self):
        """Mocks must outlive the phase; a dead tandem turns the rest of its runs into skips."""
        for name, p in self.watch.items():
            if p is None or p.poll() is None:
                continue
            why = "%s exited with status %s during the run (log: %s)" % (name, p.returncode,
                                                                        os.path.join(self.logs, p.bench_name + ".log"))
            if name == "tandem":
                if not self.tandem_dead:
                    self.note(why)
                self.tandem_dead = why
            else:
                raise RuntimeError(why)

    def profile_this(self, backend, scenario, workload, proto, path):
        return (env("BENCH_PROFILE") == "1" and backend == "mock" and scenario == "max" and workload == "insert"
                and proto == 4 and path == "tandem")

    def with_profile(self, pid, fn):
        """perf samples tandem (all threads, user + kernel) during fn; flat profiles by DSO and by symbol."""
        data = os.path.join(self.out, "perf-tandem.data")
        rec = subprocess.Popen(["perf", "record", "-F", "2999", "-p", str(pid), "-o", data],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return fn()
        finally:
            rec.send_signal(signal.SIGINT)
            rec.wait(timeout=30)
            with open(os.path.join(self.out, "perf-tandem.txt"), "w") as f:
                for sort in ("dso", "dso,symbol"):
                    f.flush()
                    subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", sort, "--percent-limit", "0.5"],
                                   stdout=f, stderr=subprocess.DEVNULL)
            self.log("profile: %s/perf-tandem.txt" % self.out)

    def mock_phase(self):
        dur, warm = env("BENCH_DURATION"), env("BENCH_WARMUP")
        conns, infl = env("BENCH_CONNS"), env("BENCH_INFLIGHT")
        origin, oport = self.start_mock("origin")
        target, tport = self.start_mock("target")
        self.metrics_port = self.free_port()
        tandem, tp = self.start_tandem("mock", ("127.0.0.1", oport), ("127.0.0.1", tport),
                                       {"metrics_enabled": "true", "metrics_address": "127.0.0.1",
                                        "metrics_port": self.metrics_port})
        self.watch = {"mock origin": origin, "mock target": target, "tandem": tandem}
        self.tandem_dead = None
        skip = None
        if tandem is None:
            skip = tp
        else:
            skip = self.probe(tp)
            if skip:
                skip = "tandem cannot serve yet: " + skip
        if skip:
            self.note("tandem path skipped: %s" % skip)
        pids_d = {"origin": origin.pid}
        pids_t = {"proxy": tandem.pid if tandem else 0, "origin": origin.pid, "target": target.pid}
        base = ["--warmup", warm, "--duration", dur, "--connections", conns, "--drain-timeout", 3]
        t = float(dur) + float(warm) + 60
        for proto, comp in MATRIX if phase("matrix") else []:
            for wl in WORKLOADS:
                self.run_pair("mock", "max", base + ["--inflight", infl], oport, tp, pids_d, pids_t, wl, proto, comp,
                              skip, t)
                self.run_pair("mock", "rate", base + ["--inflight", 64, "--rate", env("BENCH_RATE")], oport, tp,
                              pids_d, pids_t, wl, proto, comp, skip, t)
        for proto, comp in MAX_ONLY if phase("matrix") else []:
            for wl in WORKLOADS:
                self.run_pair("mock", "max", base + ["--inflight", infl], oport, tp, pids_d, pids_t, wl, proto, comp,
                              skip, t)
        if phase("lowload"):
            self.lowload_phase(oport, tp, pids_d, pids_t, skip, t)
        pipe = ["--warmup", warm, "--duration", dur, "--connections", 4, "--inflight", 64, "--pipeline", 16,
                "--drain-timeout", 3]
        if phase("pipeline"):
            self.run_pair("mock", "pipeline", pipe, oport, tp, pids_d, pids_t, "insert", 4, "none", skip, t)
        for proto, comp in ALLOC_SHAPES if tandem and not skip and phase("alloc") else []:
            if tandem.poll() is None:
                self.alloc_phase(tandem, tp, proto, comp)
            if tandem.poll() is not None:
                self.note("tandem exited (status %s) during the allocation count" % tandem.returncode)
                break
        if tandem and not skip and phase("tls"):
            self.tls_phase(tandem, tp, oport, tport)
        if tandem:
            self.stop(tandem)
        if phase("idle"):
            self.idle_phase(oport, tport, skip)
        self.stop(origin)
        self.stop(target)

    def lowload_phase(self, oport, tp, pids_d, pids_t, skip, timeout):
        """Added latency at low load. On a shared 2-vCPU VM one process wake-up costs tens of microseconds,
        and any proxy adds wake-ups, so the runs include a reference: haproxy as a plain TCP relay in front
        of the origin mock (one thread, no parsing: the floor for any user-space proxy here). Rounds of
        direct, relay, tandem alternate; the verdict compares medians over the rounds."""
        relay, rport = self.start_relay(oport)
        low = ["--warmup", env("BENCH_WARMUP"), "--duration", env("BENCH_LOW_DURATION"), "--connections", 4,
               "--inflight", 64, "--rate", env("BENCH_LOW_RATE"), "--drain-timeout", 3]
        try:
            for rnd in range(1, int(env("BENCH_LOW_ROUNDS")) + 1):
                for wl in ("insert", "select"):
                    paths = [("direct", oport, pids_d)]
                    if relay:
                        paths.append(("relay", rport, {"proxy": relay.pid, "origin": pids_d["origin"]}))
                    paths.append(("tandem", tp, pids_t))
                    self.run_paths("mock", "lowload", low, paths, wl, 4, "none", skip, timeout, {"round": rnd})
        finally:
            if relay:
                self.stop(relay)

    def start_relay(self, oport):
        """haproxy (Debian package) relaying TCP to the origin mock; (proc, port) or (None, None)."""
        import shutil
        hap = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
        if not hap:
            self.note("reference relay skipped: haproxy is not installed (make deps installs it)")
            return None, None
        port = self.free_port()
        cfg = os.path.join(self.out, "relay-haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("# generated by tests/bench/bench.py: a plain TCP relay, the reference for added latency\n"
                    "global\n  nbthread 1\n  maxconn 1000\n"
                    "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n"
                    "listen relay\n  bind 127.0.0.1:%d\n  server origin 127.0.0.1:%d\n" % (port, oport))
        p = self.spawn("relay-haproxy", [hap, "-db", "-f", cfg])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    self.log("reference relay: haproxy %s on 127.0.0.1:%d pid %d" % (self.hap_version(hap), port,
                                                                                      p.pid))
                    return p, port
            except OSError:
                time.sleep(0.1)
        self.note("reference relay skipped: haproxy did not start (%s)" % self.tail("relay-haproxy"))
        self.stop(p)
        return None, None

    @staticmethod
    def hap_version(hap):
        out = subprocess.run([hap, "-v"], capture_output=True, text=True).stdout.split()
        return out[2] if len(out) > 2 else "?"

    def tls_phase(self, tandem, tp, oport, tport):
        """Client-facing TLS overhead: a second tandem with proxy_tls_cert_path/key_path (throwaway self-signed
        certificate), driven by tests/bench/tls_overhead.py (tdm-bench has no TLS transport); the same client
        drives the plaintext tandem. Rows: scenario "tls", path "tandem" / "tandem-tls"."""
        import shutil
        import tempfile
        tmp = tempfile.mkdtemp(prefix="tandem-bench-tls-")
        crt, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        try:
            gen = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                                  "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2", "-keyout", key, "-out", crt],
                                 capture_output=True, text=True)
            if gen.returncode != 0:
                self.note("TLS run skipped: openssl req failed: %s" % gen.stderr.strip()[-200:])
                return
            tls, tlsp = self.start_tandem("tls", ("127.0.0.1", oport), ("127.0.0.1", tport),
                                          {"proxy_tls_cert_path": crt, "proxy_tls_key_path": key})
            if tls is None:
                self.note("TLS run skipped: %s" % tlsp)
                return
            n = int(env("BENCH_TLS_REQUESTS"))
            client = [sys.executable, os.path.join(ROOT, "tests", "bench", "tls_overhead.py")]
            for mode, infl, batch, reqs in (("pipelined", 64, 16, n), ("sequential", 1, 1, max(n // 10, 1000))):
                for rep in (1, 2):
                    for path, port, pid, extra in (("tandem", tp, tandem.pid, []),
                                                   ("tandem-tls", tlsp, tls.pid, ["--tls", "--ca", crt])):
                        argv = self.niced(client + ["--port", str(port), "--sample-pid", str(pid), "--requests",
                                                    str(reqs), "--warmup", str(max(reqs // 20, 200)), "--inflight",
                                                    str(infl), "--batch", str(batch), "--label", path] + extra)
                        try:
                            res = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
                            out = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else None
                            why = None if out else (res.stderr.strip().splitlines() or ["no output"])[-1]
                        except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
                            out, why = None, str(e)
                        with open(os.path.join(self.logs, "tls-overhead.log"), "a") as f:
                            f.write("$ %s\n%s\n" % (" ".join(argv), json.dumps(out) if out else why))
                        row = {"workload": "insert", "protocol": 4, "compression": "none", "path": path,
                               "scenario": "tls", "backend": "mock", "connections": 1, "inflight": infl,
                               "pipeline": batch, "mode": "closed-loop", "rate": None, "tls_mode": mode,
                               "repeat": rep, "client": "tests/bench/tls_overhead.py",
                               "command": " ".join(argv), "ok": bool(out) and not out.get("errors")}
                        for k in results.ROW_KEYS:
                            row.setdefault(k, None)
                        if out:
                            row.update({"requests": out["requests"], "throughput_rps": out["throughput_rps"],
                                        "errors": out["errors"], "tls_version": out.get("tls_version"),
                                        "proxy_cpu_us_per_req": out["proxy_cpu_us_per_req"],
                                        "proxy_cpu_sched_us_per_req": out["proxy_sched_us_per_req"],
                                        "proxy_rss_kib": self.rss(pid)})
                        else:
                            row["failure"] = why
                        self.rows.append(row)
                        self.log("mock   tls      insert v4 %-10s %-10s %9s req/s  proxy %s us/req (sched %s)%s" % (
                            mode, path, results._fmt(row.get("throughput_rps"), ".0f"),
                            results._fmt(row.get("proxy_cpu_us_per_req"), ".2f"),
                            results._fmt(row.get("proxy_cpu_sched_us_per_req"), ".2f"),
                            "" if row["ok"] else "  FAILED: %s" % (why or "errors")))
            self.stop(tls)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def alloc_phase(self, tandem, port, proto, comp):
        """Heap allocations per request in steady state. gdb counts malloc/calloc/realloc calls in tandem
        (breakpoints with a huge ignore count) over two runs of the same shape, N1 and N2 requests; the
        per-connection set-up costs are the same in both, so (hits2 - hits1) / (N2 - N1) is the steady
        state cost of one request."""
        want = env("BENCH_ALLOC")
        gdb = subprocess.run(["sh", "-c", "command -v gdb"], capture_output=True, text=True).stdout.strip()
        if want == "0" or (want == "auto" and not gdb):
            self.note("allocation count skipped (%s)" % ("BENCH_ALLOC=0" if want == "0" else "gdb not installed"))
            return
        script = os.path.join(self.out, "alloc.gdb")
        with open(script, "w") as f:
            f.write("set pagination off\nset confirm off\nhandle SIGPIPE nostop noprint pass\n")
            for i, fn in enumerate(("malloc", "calloc", "realloc"), 1):
                f.write("break %s\nignore %d 1000000000\n" % (fn, i))
            f.write("echo ==attached\\n\ncontinue\necho ==mark1\\n\ninfo breakpoints\ncontinue\n"
                    "echo ==mark2\\n\ninfo breakpoints\ndetach\nquit\n")
        g = subprocess.Popen([gdb, "-q", "-batch", "-p", str(tandem.pid), "-x", script], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, bufsize=0)
        out = ""
        try:
            self.wait_line(g, "==attached", 20)
            time.sleep(0.5)
            shape = ["--port", port, "--workload", "insert", "--connections", 16, "--inflight", 4, "--warmup", 0,
                     "--no-setup", "--drain-timeout", 10, "--protocol", proto, "--compression", comp]
            n1, n2 = 5000, 45000
            r1 = self.tdm_bench(shape + ["--requests", n1], timeout=120, label="tandem")
            g.send_signal(signal.SIGINT)
            self.wait_line(g, "==mark1", 20)
            time.sleep(0.5)
            r2 = self.tdm_bench(shape + ["--requests", n2], timeout=300, label="tandem")
            g.send_signal(signal.SIGINT)
            rest, _ = g.communicate(timeout=30)
            out = self.gdb_out + rest.decode(errors="replace")
        except (subprocess.TimeoutExpired, RuntimeError) as e:
            g.kill()
            g.wait()
            self.note("allocation count failed: %s" % e)
            return
        with open(os.path.join(self.logs, "alloc-gdb.log"), "w") as f:
            f.write(out)
        marks = out.split("==mark1")
        if len(marks) != 2 or "==mark2" not in marks[1]:
            self.note("allocation count failed: unexpected gdb output (see logs/alloc-gdb.log)")
            return
        h1 = self.hits(marks[1].split("==mark2")[0])
        h2 = self.hits(marks[1].split("==mark2")[1])
        done1, done2 = r1.get("requests") or 0, r2.get("requests") or 0
        ok = bool(r1.get("ok") and r2.get("ok")) and done2 > done1
        per = round(((h2 - h1) - h1) / (done2 - done1), 4) if ok else None
        self.rows.append({"workload": "insert", "protocol": proto, "compression": comp, "path": "tandem",
                          "scenario": "alloc", "backend": "mock", "ok": ok, "connections": 16, "inflight": 4,
                          "requests": done2 - done1, "alloc_calls_run1": h1, "alloc_calls_run2": h2 - h1,
                          "allocs_per_req": per,
                          "note": "malloc+calloc+realloc calls in tandem: (run2 - run1) / (N2 - N1), same shape"})
        self.log("allocations v%d %s: run1 %d calls / %d requests, run2 %d calls / %d requests: %s per request" % (
            proto, comp, h1, done1, h2 - h1, done2, per))

    def wait_line(self, p, marker, timeout):
        """Reads p's stdout (unbuffered bytes) until marker shows up; keeps everything in self.gdb_out."""
        if marker == "==attached":
            self.gdb_out = ""
        deadline = time.monotonic() + timeout
        while marker not in self.gdb_out and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.gdb_out += chunk.decode(errors="replace")
        if marker not in self.gdb_out:
            raise RuntimeError("gdb did not reach %s" % marker)

    @staticmethod
    def hits(text):
        """Sum of 'breakpoint already hit N times' in an `info breakpoints` listing (absent = 0)."""
        n = 0
        for line in text.splitlines():
            if "breakpoint already hit" in line:
                n += int(line.split("hit")[1].split()[0])
        return n

    def idle_phase(self, oport, tport, skip):
        """RSS per idle client connection: a fresh tandem per protocol (v4, then v5, whose connections also
        carry a segment reader), RSS before, then with each count of idle clients held at once."""
        counts = [int(x) for x in env("BENCH_IDLE").split(",") if x.strip()]
        for proto in IDLE_PROTOCOLS:
            if skip:
                for n in counts:
                    self.rows.append(results.skipped_row("idle", "mock", "idle", proto, "none", "tandem", skip,
                                                         connections=n))
                continue
            self.idle_one(oport, tport, proto, counts)

    def idle_one(self, oport, tport, proto, counts):
        tandem, tp = self.start_tandem("idle", ("127.0.0.1", oport), ("127.0.0.1", tport))
        if tandem is None:
            self.note("idle-connection test (v%d) skipped: %s" % (proto, tp))
            return
        try:
            if self.probe(tp, ["--protocol", proto]):
                self.note("idle-connection test (v%d) skipped: tandem does not serve" % proto)
                return
            time.sleep(0.5)
            base = self.rss(tandem.pid)
            for n in counts:
                run = self.tdm_bench(["--port", tp, "--idle", n, "--hold", 1, "--protocol", proto], timeout=180,
                                     label="tandem", pids={"proxy": tandem.pid})
                proxy = run.get("procs", {}).get("proxy", {})
                ok = bool(run.get("ok")) and proxy.get("ok") and run.get("idle_connections") == n
                rss = proxy.get("rss_kib")
                per = round((rss - base) / n, 2) if ok and rss else None
                self.rows.append({"workload": "idle", "protocol": proto, "compression": "none", "path": "tandem",
                                  "scenario": "idle", "backend": "mock", "connections": n, "ok": bool(ok),
                                  "proxy_rss_kib": rss, "baseline_rss_kib": base, "rss_per_conn_kib": per,
                                  "failure": run.get("failure")})
                self.log("idle v%d, %d connections: tandem RSS %s KiB (before %s KiB) = %s KiB per connection" % (
                    proto, n, rss, base, per))
        finally:
            self.stop(tandem)

    @staticmethod
    def rss(pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def clusters_up(self):
        mode = env("BENCH_CLUSTERS")
        if mode == "skip":
            return "BENCH_CLUSTERS=skip"
        script = os.path.join(ROOT, "tests", "cassandra", "clusters.sh")
        st = subprocess.run(["bash", script, "status"], capture_output=True, text=True, timeout=60)
        if st.returncode == 0:
            return None
        if mode != "start":
            return "the real clusters are not up (make clusters-up, or BENCH_CLUSTERS=start)"
        if self.elapsed() > float(env("BENCH_BUDGET_S")) - 120:
            return "not enough time left in the 10-minute budget to start them"
        up = subprocess.run(["bash", script, "up"], capture_output=True, text=True, timeout=240)
        if up.returncode != 0:
            return "clusters.sh up failed: %s" % (up.stderr.strip().splitlines() or ["?"])[-1]
        self.started_clusters = True
        return None

    def real_phase(self):
        why = self.clusters_up()
        if why:
            self.note("real-cluster run skipped: %s" % why)
            return
        envf = {}
        try:
            with open(os.path.join(self.build, "cassandra", "clusters.env")) as f:
                for line in f:
                    if "=" in line and not line.startswith("#"):
                        k, v = line.strip().split("=", 1)
                        envf[k] = v
        except OSError:
            pass
        if envf.get("TANDEM_CLUSTER_TLS") == "1":
            self.note("real-cluster run skipped: the clusters run with TLS, which tdm-bench does not speak")
            return
        origin = (envf.get("ORIGIN_HOSTS", "127.0.0.2").split(",")[0], int(envf.get("CQL_PORT", "9042")))
        target = (envf.get("TARGET_HOSTS", "127.0.0.3").split(",")[0], origin[1])
        auth_d, auth_t, extra = [], [], {}
        if envf.get("TANDEM_CLUSTER_AUTH") == "1":
            auth_d = ["--user", "origin_app", "--password", "origin_app_pw"]
            auth_t = ["--user", "target_app", "--password", "target_app_pw"]  # TARGET checks client credentials
            extra = {"origin_username": "origin_app", "origin_password": "origin_app_pw",
                     "target_username": "target_app", "target_password": "target_app_pw"}
        tandem, tp = self.start_tandem("cassandra", origin, target, extra)
        self.watch = {"tandem": tandem}
        self.tandem_dead = None
        skip = None if tandem else tp
        if tandem:
            skip = self.probe(tp, auth_t)
            skip = "tandem cannot serve the real clusters: " + skip if skip else None
        if skip:
            self.note("real-cluster tandem path skipped: %s" % skip)
        opid = self.cluster_pid("origin")
        tpid = self.cluster_pid("target")
        pids_d = {"origin": opid} if opid else {}
        pids_t = dict(pids_d, **({"target": tpid} if tpid else {}), proxy=tandem.pid if tandem else 0)
        dur = env("BENCH_REAL_DURATION")
        for proto, comp in MATRIX:
            for wl in WORKLOADS:
                args = ["--warmup", 1, "--duration", dur, "--connections", env("BENCH_CONNS"), "--inflight",
                        env("BENCH_INFLIGHT"), "--host", origin[0], "--drain-timeout", 5]
                # the direct path talks to origin; the tandem path to tandem on 127.0.0.1
                self.run_pair_real(args, origin, tp, pids_d, pids_t, wl, proto, comp, skip, auth_d, auth_t)
        if tandem:
            self.stop(tandem)

    def run_pair_real(self, args, origin, tp, pids_d, pids_t, wl, proto, comp, skip, auth_d, auth_t):
        common = ["--workload", wl, "--protocol", proto, "--compression", comp]
        run = self.tdm_bench(args + common + ["--port", origin[1]] + auth_d, 90, "direct", pids_d)
        self.rows.append(results.make_row(run, "max", "cassandra"))
        self.log("real %s v%d direct: %s req/s p50 %s us" % (wl, proto, results._fmt(run.get("throughput_rps"), ".0f"),
                                                            results._fmt(run.get("p50_us"), ".0f")))
        self.check_alive()
        skip = skip or self.tandem_dead or self.broken.get(("cassandra", proto, comp))
        if skip:
            self.rows.append(results.skipped_row("max", "cassandra", wl, proto, comp, "tandem", skip))
            return
        targs = [a if a != origin[0] else "127.0.0.1" for a in args]
        run = self.tdm_bench(targs + common + ["--port", tp] + auth_t, 90, "tandem", pids_t)
        self.rows.append(results.make_row(run, "max", "cassandra"))
        self.remember_broken(run, "cassandra", "tandem", proto, comp)
        self.log("real %s v%d tandem: %s req/s p50 %s us" % (wl, proto, results._fmt(run.get("throughput_rps"), ".0f"),
                                                            results._fmt(run.get("p50_us"), ".0f")))

    def cluster_pid(self, node):
        try:
            with open(os.path.join(self.build, "cassandra", node, "pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    # ---- main ----

    def main(self):
        for n in ("tdm-bench", "cqlmock"):
            if not os.access(self.bin[n], os.X_OK):
                sys.exit("bench: %s is missing: run `make` first" % self.bin[n])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.started_clusters = False
        for f in os.listdir(self.out):
            if f.endswith((".dat", ".png", ".json")):
                os.remove(os.path.join(self.out, f))
        open(os.path.join(self.logs, "tdm-bench.log"), "w").close()
        open(os.path.join(self.logs, "tls-overhead.log"), "w").close()
        self.log("machine: %d CPUs; knobs: %s" % (os.cpu_count(), ", ".join("%s=%s" % (k, env(k)) for k in ENV)))
        load0 = os.getloadavg()
        if load0[0] > os.cpu_count():
            self.note("the machine is busy before the benchmark starts (load average %.1f on %d CPUs): "
                      "the figures will be noisy" % (load0[0], os.cpu_count()))
        self.watch, self.tandem_dead, self.broken = {}, None, {}
        try:
            try:
                self.mock_phase()
            except RuntimeError as e:
                self.note("mock phase aborted: %s" % e)
            if not phase("real"):
                pass
            elif self.elapsed() < float(env("BENCH_BUDGET_S")):
                self.real_phase()
            else:
                self.note("real-cluster run skipped: the 10-minute budget is used up")
        finally:
            self.stop_all()
            if self.started_clusters:
                subprocess.run(["bash", os.path.join(ROOT, "tests", "cassandra", "clusters.sh"), "down"])
        verdicts = results.budgets(self.rows, ZDM_REASON)
        path = os.path.join(self.out, "results.json")
        results.write_json(path, self.rows, {"budgets": verdicts, "notes": self.notes, "cpus": os.cpu_count(),
                                             "knobs": {k: env(k) for k in ENV},
                                             "lowload": results.lowload_summary(self.rows),
                                             "loadavg_start": load0, "loadavg_end": os.getloadavg(),
                                             "elapsed_s": round(self.elapsed(), 1)})
        png = results.plot(self.rows, self.out, self.log)
        print()
        print(results.table(self.rows))
        print()
        print(results.ratios(self.rows))
        print()
        low = results.lowload_text(self.rows)
        if low:
            print(low)
            print()
        ex = results.extras(self.rows)
        if ex:
            print(ex)
            print()
        print(results.budget_table(verdicts))
        for n in self.notes:
            print("note: " + n)
        print("\nresults: %s%s  (%.0f s)" % (path, ("  plot: " + png) if png else "", self.elapsed()))
        failed = [r for r in self.rows if not r.get("ok") and not r.get("skipped")]
        if failed:
            print("WARNING: %d run(s) failed or lost responses; they are flagged with '!' above" % len(failed))
        # the suite fails only when it could not measure at all; failed runs are results too
        good = [r for r in self.rows if r.get("ok") and r.get("path") == "direct"]
        return 0 if good else 1


if __name__ == "__main__":
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    sys.exit(Bench(build).main())
