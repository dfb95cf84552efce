"""tandem end-to-end tier: session fixtures over two real Cassandra 5.0 clusters.

Fixtures
  clusters          origin (127.0.0.2[,.4]) and target (127.0.0.3[,.5]) up for the session;
                    started by tests/cassandra/clusters.sh unless already up, stopped at the end
                    only if this session started them (and TANDEM_KEEP_CLUSTERS is not 1)
  origin_session    python-driver session on origin only (whitelist policy), admin role with auth
  target_session    the same on target
  schema            keyspace tandem_e2e (RF 1) with kv, counters, clustered on both clusters,
                    created if missing and truncated once per session
  free_port         free_port() -> a free TCP port on 127.0.0.1
  tandem            factory: tandem(**config_overrides) starts build/tandem on a generated config
  cqlmock           factory: cqlmock(args, port) starts build/cqlmock with the given arguments
  mock_cluster      factory: mock_cluster(name, *args) -> MockCluster, a one-node cqlmock with its
                    control port open; .overrides(role) gives the tandem keys that make it ORIGIN
                    or TARGET (the other cluster stays the real one)

Environment
  TANDEM_CLUSTER_NODES / _AUTH / _TLS   cluster layout (see tests/cassandra/clusters.sh)
  TANDEM_E2E_REUSE=1        never start clusters: use the running ones (fail if none)
  TANDEM_KEEP_CLUSTERS=1    leave clusters this session started running
  TANDEM_E2E_REQUIRE_PROXY=0  a tandem binary that cannot serve skips tests instead of failing them
  TANDEM_BIN, TANDEM_CQLMOCK_BIN   binaries (default build/tandem, build/cqlmock)
  (these harness variables are not passed on to tandem, which would warn about unknown TANDEM_ keys)

Markers (pytest.ini): `auth` needs TANDEM_CLUSTER_AUTH=1 clusters, `tls` needs TANDEM_CLUSTER_TLS=1,
`two_nodes` needs TANDEM_CLUSTER_NODES=2; such tests are skipped on other layouts.
"""
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

import harness
from harness import (BUILD, KEYSPACE, TABLES, Clusters, MockControl, Process, clusters_cmd,
                     clusters_from_env, read_clusters_env, requested_mode, start_process, wait_for,
                     write_tandem_config)

UP_TIMEOUT = float(os.environ.get("TANDEM_E2E_UP_TIMEOUT", "420"))   # 2 × 180 s node waits + slack


def pytest_collection_modifyitems(config, items):
    mode = requested_mode()
    need = {
        "auth": (mode["TANDEM_CLUSTER_AUTH"] == "1", "needs auth clusters (TANDEM_CLUSTER_AUTH=1)"),
        "tls": (mode["TANDEM_CLUSTER_TLS"] == "1", "needs client TLS clusters (TANDEM_CLUSTER_TLS=1)"),
        "two_nodes": (mode["TANDEM_CLUSTER_NODES"] == "2", "needs 2-node clusters (TANDEM_CLUSTER_NODES=2)"),
    }
    for item in items:
        for marker, (ok, why) in need.items():
            if marker in item.keywords and not ok:
                item.add_marker(pytest.mark.skip(reason=why))


# --------------------------------------------------------------------------- clusters
@pytest.fixture(scope="session")
def clusters() -> Clusters:
    mode = requested_mode()
    st = clusters_cmd("status", timeout=60, env=mode, check=False)
    already_up = st.returncode == 0
    if os.environ.get("TANDEM_E2E_REUSE") == "1" and not already_up:
        pytest.fail("TANDEM_E2E_REUSE=1 but the requested clusters are not up (%s):\n%s"
                    % (" ".join("%s=%s" % kv for kv in mode.items()), st.stdout))
    started = False
    if not already_up:
        started = True
        try:
            clusters_cmd("up", timeout=UP_TIMEOUT, env=mode)
        except BaseException as e:     # incl. a pytest-timeout: never leave half-started JVMs
            clusters_cmd("down", timeout=120, check=False)
            if isinstance(e, RuntimeError):
                pytest.fail(str(e), pytrace=False)
            raise
    info = clusters_from_env(read_clusters_env(), started_here=started)
    yield info
    if started and os.environ.get("TANDEM_KEEP_CLUSTERS") != "1":
        p = clusters_cmd("down", timeout=120, check=False)
        if p.returncode != 0:
            print("clusters.sh down failed:\n" + p.stdout)


def _session(cluster):
    c, s = harness.connect(cluster)
    return c, s


@pytest.fixture(scope="session")
def origin_session(clusters):
    c, s = _session(clusters.origin)
    yield s
    c.shutdown()


@pytest.fixture(scope="session")
def target_session(clusters):
    c, s = _session(clusters.target)
    yield s
    c.shutdown()


@pytest.fixture(scope="session")
def schema(clusters, origin_session, target_session):
    """The same keyspace and tables on both clusters, empty at the start of the session."""
    for s in (origin_session, target_session):
        s.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}" % KEYSPACE)
        for ddl in TABLES.values():
            s.execute(ddl.format(ks=KEYSPACE), timeout=60)
        for t in TABLES:
            s.execute("TRUNCATE %s.%s" % (KEYSPACE, t), timeout=60)
    return {"keyspace": KEYSPACE, "tables": sorted(TABLES)}


@pytest.fixture(scope="session")
def free_port():
    return harness.free_port


# --------------------------------------------------------------------------- tandem
NOT_SERVING_HINTS = ("not wired", "not implemented", "unrecognized option", "unknown option",
                     "invalid option", "Usage:")


@pytest.fixture
def tandem(tmp_path, request):
    """Factory: tandem(**overrides) -> harness.Process with .host/.port (+ extra ports, config).

    The generated config points at the real clusters (app credentials and CA in auth/TLS mode),
    listens on 127.0.0.1 with free ports. Overrides replace keys; a None value drops a key.
    With both origin_contact_points and target_contact_points overridden (e.g. mocks), the
    real clusters are not needed and not started.
    Processes get SIGTERM at teardown (SIGKILL after 20 s).
    """
    binary = Path(os.environ.get("TANDEM_BIN", BUILD / "tandem"))
    started = []
    # The proxy serves now: a tandem that cannot start fails the test. TANDEM_E2E_REQUIRE_PROXY=0
    # turns that back into a skip (for harness work on a tree whose daemon is broken on purpose).
    strict = os.environ.get("TANDEM_E2E_REQUIRE_PROXY", "1") != "0"

    def not_ready(why):
        if strict:
            pytest.fail(why, pytrace=False)
        pytest.skip(why)

    def start(ready_timeout=60.0, env=None, args=(), **overrides):
        if not binary.is_file() or not os.access(binary, os.X_OK):
            not_ready("%s is not built (make all)" % binary)
        n = len(started)
        own_backends = "origin_contact_points" in overrides and "target_contact_points" in overrides
        clusters = None if own_backends else request.getfixturevalue("clusters")
        listen, metrics, admin = harness.free_port(), harness.free_port(), harness.free_port()
        cfg = {
            "origin_contact_points": clusters.origin.contact_points if clusters else None,
            "origin_port": clusters.origin.port if clusters else None,
            "target_contact_points": clusters.target.contact_points if clusters else None,
            "target_port": clusters.target.port if clusters else None,
            "proxy_listen_address": "127.0.0.1",
            "proxy_listen_port": listen,
            "metrics_address": "127.0.0.1",
            "metrics_port": metrics,
            "admin_address": "127.0.0.1",
            "admin_port": admin,
            "primary_cluster": "ORIGIN",
            "read_mode": "PRIMARY_ONLY",
            "log_level": "INFO",
        }
        for c in (clusters or ()):
            if c.app is not None:
                cfg["%s_username" % c.name] = c.app.username
                cfg["%s_password" % c.name] = c.app.password
            if c.tls_ca:
                cfg["%s_tls_server_ca_path" % c.name] = c.tls_ca
        cfg.update(overrides)
        path = write_tandem_config(tmp_path / ("tandem-%d.yaml" % n), cfg)
        argv = [str(binary), "--config=%s" % path, *args]
        host, port = str(cfg["proxy_listen_address"]), int(cfg["proxy_listen_port"])
        try:
            p = start_process("tandem", argv, tmp_path / ("tandem-%d.log" % n), host, port,
                              ready_timeout, env=env, drop_env=harness.HARNESS_ENV)
        except RuntimeError as e:
            proc = getattr(e, "process", None)
            out = proc.output() if proc else ""
            if proc is not None and proc.returncode is not None and any(h in out for h in NOT_SERVING_HINTS):
                not_ready("build/tandem cannot serve a config yet (exit %s): %s"
                          % (proc.returncode, out.strip().splitlines()[-1] if out.strip() else ""))
            raise
        p.extra.update(config=path, config_values=cfg, metrics_port=metrics, admin_port=admin)
        started.append(p)
        return p

    yield start
    reports = []
    for p in started:
        rc = p.stop(timeout=20)
        if p.extra.get("killed"):
            print("tandem ignored SIGTERM for 20 s and was killed; end of its log:\n" + p.tail())
        elif rc not in (0, -signal.SIGTERM):
            print("tandem exited with %s; end of its log:\n%s" % (rc, p.tail()))
        # a sanitizer build (TANDEM_BIN=<asan build>/tandem) reports into the log: that fails the test
        found = [line for line in p.output().splitlines() if any(m in line for m in SANITIZER_MARKS)]
        if found:
            reports.append("%s: %s" % (p.log, found[0]))
    if reports:
        pytest.fail("sanitizer report in tandem's log:\n" + "\n".join(reports), pytrace=False)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


# --------------------------------------------------------------------------- cqlmock
@pytest.fixture
def cqlmock(tmp_path):
    """Factory: cqlmock(args, port, host="127.0.0.1", env=None, ready_timeout=10) -> harness.Process.

    Generic on purpose (the mock's command line is not final): `args` go to build/cqlmock as
    given; the fixture only waits for host:port to accept TCP, and kills the mock at teardown.
    """
    binary = Path(os.environ.get("TANDEM_CQLMOCK_BIN", BUILD / "cqlmock"))
    started = []

    def start(args, port, host="127.0.0.1", env=None, ready_timeout=10.0):
        if not binary.is_file() or not os.access(binary, os.X_OK):
            pytest.skip("%s is not built" % binary)
        n = len(started)
        p = start_process("cqlmock", [str(binary), *map(str, args)],
                          tmp_path / ("cqlmock-%d.log" % n), host, int(port), ready_timeout, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop(timeout=5)


@dataclass
class MockCluster:
    """A one-node cqlmock cluster started by the mock_cluster fixture."""
    name: str                 # --cluster-name
    host: str
    port: int                 # CQL port of its node
    ctl: MockControl          # control connection (RULE ADD ..., COUNT ...)
    proc: Process

    def overrides(self, role: str) -> dict:
        """tandem config keys that make this mock the ORIGIN or TARGET cluster."""
        role = role.lower()
        return {"%s_contact_points" % role: self.host, "%s_port" % role: self.port,
                "%s_username" % role: None, "%s_password" % role: None,
                "%s_tls_server_ca_path" % role: None}


@pytest.fixture
def mock_cluster(cqlmock, free_port):
    """Factory: mock_cluster(name="target", *extra_args) -> MockCluster on 127.0.0.1."""
    opened = []

    def start(name="target", *args):
        port, ctl = free_port(), free_port()
        proc = cqlmock(["--cluster-name", name, "--node", "127.0.0.1:%d" % port,
                        "--control", "127.0.0.1:%d" % ctl, "--quiet", *args], port)
        control = wait_for("the cqlmock control port", lambda: _try_control(ctl), 10)
        opened.append(control)
        return MockCluster(name=name, host="127.0.0.1", port=port, ctl=control, proc=proc)

    yield start
    for c in opened:
        c.close()


def _try_control(port):
    try:
        return MockControl(port)
    except OSError:
        return None
