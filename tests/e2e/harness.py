"""tandem end-to-end harness: plain helpers shared by conftest.py and the tests.

Import from a test with `from harness import read_row, free_port, ...` (pytest puts tests/e2e on
sys.path). Fixtures live in conftest.py; everything here is usable without pytest (tests/demo/walk.py
imports it too).

Sections: clusters (layout, clusters.sh, one node's stop/start with its data kept), driver sessions
(straight to a cluster, or through tandem), processes, tandem config, tandem at runtime (/metrics,
readiness, reload by SIGHUP), the mock's control port, and a threaded client workload.
"""
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
CLUSTERS_SH = ROOT / "tests" / "cassandra" / "clusters.sh"
CASS_NODE_SH = ROOT / "tests" / "cassandra" / "cass-node.sh"
CASS_WORK = Path(os.environ.get("CASS_WORK", BUILD / "cassandra"))
CLUSTERS_ENV = CASS_WORK / "clusters.env"
VENV_BIN = BUILD / "venv" / "bin"

KEYSPACE = "tandem_e2e"
# One statement per table; identical on both clusters (the `schema` fixture runs them).
TABLES = {
    "kv": "CREATE TABLE IF NOT EXISTS {ks}.kv (k text PRIMARY KEY, v text)",
    "counters": "CREATE TABLE IF NOT EXISTS {ks}.counters (k text PRIMARY KEY, c counter)",
    "clustered": "CREATE TABLE IF NOT EXISTS {ks}.clustered "
                 "(pk int, ck int, v text, PRIMARY KEY (pk, ck)) WITH CLUSTERING ORDER BY (ck ASC)",
    # read only by the Phase 3 test, so that the cluster's per-table read counters are its own
    "mirrored": "CREATE TABLE IF NOT EXISTS {ks}.mirrored (k text PRIMARY KEY, v text)",
}


# --------------------------------------------------------------------------- clusters
@dataclass
class Credentials:
    username: str
    password: str


@dataclass
class ClusterInfo:
    """One of the two real clusters as clusters.sh started it."""
    name: str                              # cluster_name: "origin" or "target"
    hosts: List[str]                       # node addresses, seed first
    port: int = 9042
    tls_ca: Optional[str] = None           # PEM to trust when client TLS is on
    admin: Optional[Credentials] = None    # superuser role (auth mode only)
    app: Optional[Credentials] = None      # login role with ALL on all keyspaces (auth mode only)

    @property
    def contact_points(self) -> str:
        return ",".join(self.hosts)


@dataclass
class Clusters:
    origin: ClusterInfo
    target: ClusterInfo
    nodes: int                              # nodes per cluster
    auth: bool
    tls: bool
    started_here: bool = False              # this pytest session started them (so it stops them)

    def __iter__(self):
        return iter((self.origin, self.target))


def requested_mode() -> Dict[str, str]:
    """The cluster layout the environment asks for (same variables as clusters.sh)."""
    return {
        "TANDEM_CLUSTER_NODES": os.environ.get("TANDEM_CLUSTER_NODES", "1"),
        "TANDEM_CLUSTER_AUTH": os.environ.get("TANDEM_CLUSTER_AUTH", "0"),
        "TANDEM_CLUSTER_TLS": os.environ.get("TANDEM_CLUSTER_TLS", "0"),
    }


def read_clusters_env(path: Path = CLUSTERS_ENV) -> Dict[str, str]:
    """Parses build/cassandra/clusters.env (shell assignments, several per line allowed)."""
    env: Dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for word in shlex.split(line):
            k, _, v = word.partition("=")
            env[k] = v
    return env


def clusters_from_env(env: Dict[str, str], started_here: bool = False) -> Clusters:
    auth = env.get("TANDEM_CLUSTER_AUTH") == "1"
    tls = env.get("TANDEM_CLUSTER_TLS") == "1"
    ca = env.get("TLS_CA") or None
    port = int(env.get("CQL_PORT", "9042"))

    def info(name: str) -> ClusterInfo:
        up = name.upper()
        c = ClusterInfo(name=name, hosts=env[up + "_HOSTS"].split(","), port=port,
                        tls_ca=ca if tls else None)
        if auth:
            c.admin = Credentials(env[up + "_ADMIN_USER"], env[up + "_ADMIN_PASSWORD"])
            c.app = Credentials(env[up + "_APP_USER"], env[up + "_APP_PASSWORD"])
        return c

    return Clusters(origin=info("origin"), target=info("target"),
                    nodes=int(env.get("TANDEM_CLUSTER_NODES", "1")), auth=auth, tls=tls,
                    started_here=started_here)


def clusters_cmd(action: str, timeout: float, env: Optional[Dict[str, str]] = None,
                 check: bool = True) -> subprocess.CompletedProcess:
    """Runs tests/cassandra/clusters.sh ACTION; output is returned (and raised on failure)."""
    p = subprocess.run(["bash", str(CLUSTERS_SH), action], cwd=ROOT, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if check and p.returncode != 0:
        raise RuntimeError("clusters.sh %s failed (exit %d):\n%s" % (action, p.returncode, p.stdout))
    return p


# One node, as clusters.sh runs it: address, JMX port and initial token (only used on a fresh node).
NODE_LAYOUT = {
    "origin": ("127.0.0.2", 7199, "0"), "target": ("127.0.0.3", 7299, "0"),
    "origin2": ("127.0.0.4", 7399, "-9223372036854775808"),
    "target2": ("127.0.0.5", 7499, "-9223372036854775808"),
}


def node_env(node: str) -> Dict[str, str]:
    """build/cassandra/NODE/node.env: how cass-node.sh last started the node (ADDR, CLUSTER, AUTH...)."""
    return read_clusters_env(CASS_WORK / node / "node.env")


def stop_node(node: str, timeout: float = 90) -> None:
    """Stops one node (SIGTERM: it drains and flushes); its data folder stays."""
    p = subprocess.run(["bash", str(CASS_NODE_SH), "stop", node], cwd=ROOT, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("cass-node.sh stop %s failed:\n%s" % (node, p.stdout))


def start_node(node: str, timeout: float = 240) -> float:
    """Starts a node stopped by stop_node() again on its kept data, with the settings it had
    (cluster, seed, auth, TLS, JMX); returns once it serves CQL. Returns the seconds it took."""
    env = node_env(node)
    addr, jmx, token = NODE_LAYOUT[node]
    child = {**os.environ, "CASS_KEEP": "1", "CASS_CLUSTER": env["CLUSTER"], "CASS_SEED": env["SEED"],
             "CASS_TOKEN": token, "CASS_JMX_PORT": env.get("JMX") or str(jmx),
             "CASS_AUTH": env.get("AUTH", "0"), "CASS_TLS": env.get("TLS", "0")}
    t0 = time.monotonic()
    for action in (["start", node, env.get("ADDR", addr)], ["wait", node]):
        p = subprocess.run(["bash", str(CASS_NODE_SH), *action], cwd=ROOT, text=True, env=child,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("cass-node.sh %s failed:\n%s" % (" ".join(action), p.stdout))
    return time.monotonic() - t0


def forget_persisted_prepared(node: str) -> int:
    """Deletes a stopped node's system.prepared_statements sstables, so that the node comes back
    with an empty prepared cache (Cassandra reloads persisted statements at start otherwise).
    Returns the number of files removed."""
    n = 0
    for d in (CASS_WORK / node / "data" / "data" / "system").glob("prepared_statements-*"):
        for f in d.rglob("*"):
            if f.is_file():
                f.unlink()
                n += 1
    return n


# --------------------------------------------------------------------------- driver sessions
def connect(cluster: ClusterInfo, credentials: Optional[Credentials] = None,
            protocol_version: Optional[int] = None, hosts: Optional[Sequence[str]] = None,
            port: Optional[int] = None, tls_ca: Optional[str] = "default", **cluster_kw):
    """A python-driver (cluster, session) talking only to `hosts` (default: the cluster's nodes).

    The whitelist policy keeps a session on its own cluster even if discovery sees more nodes.
    `credentials` default to the cluster's admin role in auth mode.
    """
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    hosts = list(hosts or cluster.hosts)
    if credentials is None:
        credentials = cluster.admin
    if tls_ca == "default":
        tls_ca = cluster.tls_ca
    kw = dict(cluster_kw)
    if credentials is not None:
        kw["auth_provider"] = PlainTextAuthProvider(credentials.username, credentials.password)
    if tls_ca:
        import ssl
        ctx = ssl.create_default_context(cafile=tls_ca)   # verifies the IP SANs of node.crt
        kw["ssl_context"] = ctx
    if protocol_version is not None:
        kw["protocol_version"] = protocol_version
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(hosts),
                               consistency_level=ConsistencyLevel.LOCAL_QUORUM,
                               request_timeout=30)
    c = Cluster(contact_points=hosts, port=port or cluster.port,
                execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                connect_timeout=10, control_connection_timeout=10, **kw)
    return c, c.connect()


def connect_tandem(proc: "Process", credentials: Optional[Credentials] = None,
                   protocol_version: Optional[int] = None, keyspace: Optional[str] = None,
                   request_timeout: float = 30, **cluster_kw):
    """A python-driver (cluster, session) talking to one tandem instance.

    Retries are off (FallthroughRetryPolicy): every error tandem returns reaches the test, so
    "zero client errors" means what it says. Credentials are the client's own (none by default).
    """
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy

    kw = dict(cluster_kw)
    if credentials is not None:
        kw["auth_provider"] = PlainTextAuthProvider(credentials.username, credentials.password)
    if protocol_version is not None:
        kw["protocol_version"] = protocol_version
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([proc.host]),
                               retry_policy=FallthroughRetryPolicy(), request_timeout=request_timeout)
    c = Cluster(contact_points=[proc.host], port=proc.port,
                execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                connect_timeout=10, control_connection_timeout=10, **kw)
    try:
        return c, c.connect(keyspace)
    except BaseException:
        c.shutdown()
        raise


def driver_connections(session) -> List[object]:
    """The driver's open connections of `session` (pools and control connection), for identity
    checks across reloads: the same objects, none closed, means no reconnect happened."""
    conns = [session.cluster.control_connection._connection]
    for pool in session.get_pools():
        conns.extend(pool.get_connections())
    return [c for c in conns if c is not None]


def wait_session(session, timeout: float = 60.0) -> None:
    """Waits until `session` (straight to a cluster) answers again, e.g. after a node restart:
    the driver reconnects on its own schedule."""
    def ok():
        try:
            session.execute("SELECT release_version FROM system.local")
            return True
        except Exception:
            return False
    wait_for("the driver session to reconnect", ok, timeout, 0.5)


def read_row(session, table: str, key: Dict[str, object], columns: Sequence[str] = ("v",),
             writetime: bool = True, keyspace: str = KEYSPACE) -> Optional[Dict[str, object]]:
    """Reads one row straight from a cluster at CL ALL.

    Returns {column: value, ..., "writetime(column)": microseconds, ...} or None when absent.
    Counter and key columns have no writetime: pass writetime=False for them.
    """
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    sel = []
    for c in columns:
        sel.append(c)
        if writetime:
            sel.append("WRITETIME(%s)" % c)
    where = " AND ".join("%s = %%s" % k for k in key)
    stmt = SimpleStatement("SELECT %s FROM %s.%s WHERE %s" % (", ".join(sel), keyspace, table, where),
                           consistency_level=ConsistencyLevel.ALL)
    rows = list(session.execute(stmt, list(key.values())))
    if not rows:
        return None
    row = rows[0]
    out: Dict[str, object] = {}
    i = 0
    for c in columns:
        out[c] = row[i]
        i += 1
        if writetime:
            out["writetime(%s)" % c] = row[i]
            i += 1
    return out


def read_kv(session, k: str) -> Optional[Dict[str, object]]:
    """tandem_e2e.kv row `k`: {"v": ..., "writetime(v)": ...} or None."""
    return read_row(session, "kv", {"k": k})


def unique_key(prefix: str = "k") -> str:
    """A key no other test (or earlier run on reused clusters) has used."""
    return "%s-%d-%d" % (prefix, os.getpid(), time.monotonic_ns())


# --------------------------------------------------------------------------- processes
_next_port = [0]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host`, below the kernel's ephemeral range (32768+): a port the
    kernel picks for bind(0) can also be taken by any outgoing connection before tandem binds it."""
    if not _next_port[0]:
        _next_port[0] = 32768 - (os.getpid() * 7919) % 10000
    for _ in range(10000):
        _next_port[0] -= 1
        if _next_port[0] < 22000:
            _next_port[0] = 32767
        port = _next_port[0]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 22000-32767")


def wait_port(host: str, port: int, timeout: float, proc: Optional[subprocess.Popen] = None) -> bool:
    """True once host:port accepts TCP; False on timeout or when `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class Process:
    """A child started by a fixture factory; output goes to `log`."""
    name: str
    argv: List[str]
    log: Path
    proc: subprocess.Popen
    host: str
    port: int
    extra: Dict[str, object] = field(default_factory=dict)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll()

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> Optional[int]:
        """`sig` (default SIGTERM), then SIGKILL after `timeout` s; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.extra["killed"] = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


# The harness's own TANDEM_* variables: tandem would warn about each as an unknown config key.
HARNESS_ENV = ("TANDEM_E2E_", "TANDEM_CLUSTER_", "TANDEM_KEEP_CLUSTERS", "TANDEM_BIN",
               "TANDEM_CQLMOCK_BIN", "TANDEM_CACHE", "TANDEM_PYTHON")


def start_process(name: str, argv: List[str], log: Path, host: str, port: int,
                  ready_timeout: float, env: Optional[Dict[str, str]] = None,
                  cwd: Optional[Path] = None, drop_env: Sequence[str] = ()) -> Process:
    """Starts argv with output to `log`; returns once host:port accepts TCP. The child gets this
    environment without the variables starting with a `drop_env` prefix, plus `env`.

    Raises RuntimeError (with the output's tail) when the process exits or stays deaf.
    """
    child = {k: v for k, v in os.environ.items() if not any(k.startswith(d) for d in drop_env)}
    child.update(env or {})
    logf = open(log, "ab")
    try:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd or ROOT, env=child)
    finally:
        logf.close()
    p = Process(name=name, argv=argv, log=log, proc=proc, host=host, port=port)
    if not wait_port(host, port, ready_timeout, proc):
        rc = proc.poll()
        if rc is None:
            p.stop(timeout=5)
            why = "did not listen on %s:%d within %.0f s" % (host, port, ready_timeout)
        else:
            why = "exited with status %d before listening on %s:%d" % (rc, host, port)
        err = RuntimeError("%s %s; end of its output:\n%s" % (name, why, p.tail()))
        err.process = p  # type: ignore[attr-defined]
        raise err
    return p


# --------------------------------------------------------------------------- tandem config
def yaml_scalar(v: object) -> str:
    """A flat-YAML scalar: bools and ints bare, everything else double-quoted."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        v = ",".join(str(x) for x in v)   # list keys take the zdm-proxy comma form
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % s


def write_tandem_config(path: Path, cfg: Dict[str, object]) -> Path:
    """Writes tandem's flat YAML map (keys in insertion order); a None value omits the key."""
    lines = ["# generated by tests/e2e (tandem fixture)"]
    for k, v in cfg.items():
        if v is not None:
            lines.append("%s: %s" % (k, yaml_scalar(v)))
    path.write_text("\n".join(lines) + "\n")
    return path


def cqlsh(host: str, *args: str, port: int = 9042, credentials: Optional[Credentials] = None,
          tls_ca: Optional[str] = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs the venv's cqlsh against host:port; `args` go after the host (e.g. "-e", "...")."""
    argv = [str(VENV_BIN / "cqlsh"), host, str(port)]
    env = dict(os.environ)
    if credentials is not None:
        argv += ["-u", credentials.username, "-p", credentials.password]
    if tls_ca:
        argv.append("--ssl")
        env["SSL_CERTFILE"] = tls_ca
        env["SSL_VALIDATE"] = "true"
    argv += list(args)
    return subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env, cwd=ROOT)


# --------------------------------------------------------------------------- tandem at runtime
def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> Tuple[int, str]:
    """(status, body) of GET http://host:port/path; any HTTP status is returned, not raised."""
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (host, port, path), timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


_SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """One scrape of tandem's /metrics (Prometheus text format)."""

    def __init__(self, text: str):
        self.text = text
        self.samples: List[Tuple[str, Dict[str, str], float]] = []
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if not m or line.startswith("#"):
                continue
            labels = dict(_LABEL.findall(m.group(2) or ""))
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def value(self, name: str, **labels: str) -> float:
        """Sum of the series called `name` whose labels include `labels`; 0 when none exists."""
        return sum(v for n, ls, v in self.samples
                   if n == name and all(ls.get(k) == want for k, want in labels.items()))

    def has(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.samples)


def metrics(proc: "Process") -> Metrics:
    """Scrapes the /metrics of a tandem started by the `tandem` fixture (or the demo)."""
    cfg = proc.extra["config_values"]
    status, body = http_get(str(cfg["metrics_address"]), int(cfg["metrics_port"]), "/metrics")
    if status != 200:
        raise RuntimeError("GET /metrics answered %d: %s" % (status, body[:200]))
    return Metrics(body)


def readiness(proc: "Process") -> Tuple[int, str]:
    cfg = proc.extra["config_values"]
    return http_get(str(cfg["metrics_address"]), int(cfg["metrics_port"]), "/health/readiness")


def wait_for(what: str, pred: Callable[[], object], timeout: float, interval: float = 0.1) -> object:
    """Polls pred() until it returns something true; raises AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def reload_tandem(proc: "Process", timeout: float = 15.0, **changes: object) -> int:
    """Phase change the way an operator does it: rewrite the config file with `changes` applied
    (None drops a key), send SIGHUP, wait until /metrics shows the next epoch. Returns that epoch.
    Raises AssertionError if the reload was rejected."""
    before = metrics(proc)
    epoch = int(before.value("tandem_config_epoch"))
    rejected = before.value("tandem_config_reloads_total", result="rejected")
    cfg = dict(proc.extra["config_values"])
    cfg.update(changes)
    write_tandem_config(Path(str(proc.extra["config"])), cfg)
    proc.extra["config_values"] = cfg
    proc.send_signal(signal.SIGHUP)

    def applied():
        m = metrics(proc)
        if m.value("tandem_config_reloads_total", result="rejected") > rejected:
            raise AssertionError("tandem rejected the reload; end of its log:\n" + proc.tail(15))
        return int(m.value("tandem_config_epoch")) > epoch
    wait_for("tandem to apply the reload (epoch %d -> %d)" % (epoch, epoch + 1), applied, timeout, 0.05)
    return epoch + 1


INFLIGHT_GAUGES = ("tandem_proxy_inflight_requests_total", "tandem_async_inflight_requests_total",
                   "tandem_origin_used_stream_ids_total", "tandem_target_used_stream_ids_total",
                   "tandem_async_used_stream_ids_total")


def check_quiescent(proc: "Process", allow: Sequence[str] = (), timeout: float = 10.0,
                    skip: Sequence[str] = ()) -> None:
    """The end-of-scenario checks of test-scenarios.md on a running tandem: every in-flight and
    stream-id gauge (but those in `skip`) is back to 0 within `timeout`, and its log has no WARN
    or ERROR line except those matching one of the `allow` regular expressions."""
    gauges = [g for g in INFLIGHT_GAUGES if g not in skip]

    def busy():
        m = metrics(proc)
        return {g: m.value(g) for g in gauges if m.value(g)}
    try:
        wait_for("tandem's in-flight and stream-id gauges to return to 0", lambda: not busy(), timeout, 0.1)
    except AssertionError:
        raise AssertionError("gauges not back to 0 after %.0f s: %s" % (timeout, busy()))
    check_log(proc, allow)


def check_log(proc: "Process", allow: Sequence[str] = ()) -> None:
    """tandem's log has no WARN/ERROR/FATAL/PANIC line except those matching an `allow` regex."""
    unexpected = [line for line in proc.output().splitlines()
                  if re.search(r"\b(WARN|ERROR|FATAL|PANIC)\b", line)
                  and not any(re.search(a, line) for a in allow)]
    assert not unexpected, "unexpected WARN/ERROR lines in tandem's log:\n" + "\n".join(unexpected[:10])


# --------------------------------------------------------------------------- cqlmock control port
class MockControl:
    """Line client for build/cqlmock's --control port (tests/mock/README.md)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.f = self.sock.makefile("rw", encoding="utf-8", newline="\n")
        self.lock = threading.Lock()

    def cmd(self, line: str) -> str:
        """Sends one command; returns the payload after OK (raises on ERR)."""
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()
            reply = self.f.readline().rstrip("\n")
        if not reply.startswith("OK"):
            raise RuntimeError("cqlmock: %s -> %s" % (line, reply))
        return reply[3:]

    def count(self, fields: str = "") -> int:
        return int(self.cmd(("COUNT " + fields).strip()))

    def close(self) -> None:
        try:
            self.f.close()
        finally:
            self.sock.close()


# --------------------------------------------------------------------------- client workload
@dataclass
class Outcome:
    """One request of a Workload: when it started and ended, and its result or error."""
    thread: int
    t0: float                      # time.monotonic() at submission
    t1: float                      # time.monotonic() at completion
    value: object = None           # what step() returned
    error: Optional[BaseException] = None


class Workload:
    """`threads` client threads, each calling step(thread_no, i) in a loop until stop().

    Every call is recorded as an Outcome; an exception is recorded and the loop goes on, so a
    test can assert on all of them at the end (`errors` is the list of failed ones).
    """

    def __init__(self, step: Callable[[int, int], object], threads: int = 4, pause: float = 0.0):
        self.step = step
        self.nthreads = threads
        self.pause = pause
        self.outcomes: List[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    def _run(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                v = self.step(n, i)
                o = Outcome(n, t0, time.monotonic(), value=v)
            except Exception as e:          # recorded; the assertions come later
                o = Outcome(n, t0, time.monotonic(), error=e)
            with self._lock:
                self.outcomes.append(o)
            i += 1
            if self.pause:
                time.sleep(self.pause)

    def start(self) -> "Workload":
        for n in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(n,), name="workload-%d" % n, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 60.0) -> "Workload":
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError("workload threads still running after %.0f s: %s" % (timeout, alive))
        return self

    def done(self) -> List[Outcome]:
        with self._lock:
            return list(self.outcomes)

    @property
    def errors(self) -> List[Outcome]:
        return [o for o in self.done() if o.error is not None]

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)
