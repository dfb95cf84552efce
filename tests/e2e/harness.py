"""tandem end-to-end harness: plain helpers shared by conftest.py and the tests.

Import from a test with `from harness import read_row, free_port, ...` (pytest puts tests/e2e on
sys.path). Fixtures live in conftest.py; everything here is usable without pytest.
"""
import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
CLUSTERS_SH = ROOT / "tests" / "cassandra" / "clusters.sh"
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
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (the kernel's pick; bind it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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


def start_process(name: str, argv: List[str], log: Path, host: str, port: int,
                  ready_timeout: float, env: Optional[Dict[str, str]] = None,
                  cwd: Optional[Path] = None) -> Process:
    """Starts argv with output to `log`; returns once host:port accepts TCP.

    Raises RuntimeError (with the output's tail) when the process exits or stays deaf.
    """
    logf = open(log, "ab")
    try:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd or ROOT, env={**os.environ, **(env or {})})
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
