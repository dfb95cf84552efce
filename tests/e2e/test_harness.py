"""Proves the end-to-end harness itself: two real, independent Cassandra clusters, the shared
schema, direct reads with writetime, cqlsh, and (in auth/TLS mode) per-cluster credentials."""
import os
import socket
import ssl
import sys
import subprocess

import pytest
from cassandra.query import SimpleStatement

import harness
from harness import KEYSPACE, TABLES, cqlsh, read_kv, read_row, unique_key


def test_clusters_are_distinct(clusters, origin_session, target_session):
    o = origin_session.execute("SELECT cluster_name, release_version, rpc_address FROM system.local").one()
    t = target_session.execute("SELECT cluster_name, release_version, rpc_address FROM system.local").one()
    assert o.cluster_name == "origin"
    assert t.cluster_name == "target"
    assert o.release_version.startswith("5.0.")
    assert t.release_version.startswith("5.0.")
    assert str(o.rpc_address) in clusters.origin.hosts
    assert str(t.rpc_address) in clusters.target.hosts


def test_sessions_stay_on_their_cluster(clusters, origin_session, target_session):
    for session, cluster in ((origin_session, clusters.origin), (target_session, clusters.target)):
        seen = {h.endpoint.address for h in session.cluster.metadata.all_hosts()}
        assert seen == set(cluster.hosts)
        # the whitelist policy keeps connections on the cluster's own nodes
        pooled = {h.endpoint.address for h in session.get_pool_state()}
        assert pooled <= set(cluster.hosts)


def test_driver_negotiates_v5(origin_session, target_session):
    # Cassandra 5.0's default storage_compatibility_mode (CASSANDRA_4) already serves v5
    assert origin_session.cluster.protocol_version == 5
    assert target_session.cluster.protocol_version == 5


def test_peers_match_layout(clusters, origin_session, target_session):
    """Each node lists exactly the other nodes of its own cluster in system.peers_v2."""
    for session, cluster in ((origin_session, clusters.origin), (target_session, clusters.target)):
        for host in session.cluster.metadata.all_hosts():
            rows = session.execute("SELECT peer FROM system.peers_v2", host=host)
            peers = sorted(str(r.peer) for r in rows)
            assert peers == sorted(set(cluster.hosts) - {host.endpoint.address}), host


def test_schema_on_both(schema, origin_session, target_session):
    for session in (origin_session, target_session):
        rows = session.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                               [KEYSPACE])
        assert sorted(r.table_name for r in rows) == sorted(TABLES)
        ks = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                             [KEYSPACE]).one()
        assert ks.replication["replication_factor"] == "1"


def test_clusters_are_independent(schema, origin_session, target_session):
    k = unique_key()
    origin_session.execute("INSERT INTO tandem_e2e.kv (k, v) VALUES (%s, %s) USING TIMESTAMP 1234567",
                           [k, "only-on-origin"])
    assert read_kv(origin_session, k) == {"v": "only-on-origin", "writetime(v)": 1234567}
    assert read_kv(target_session, k) is None

    target_session.execute("INSERT INTO tandem_e2e.kv (k, v) VALUES (%s, %s)", [k, "target-value"])
    o, t = read_kv(origin_session, k), read_kv(target_session, k)
    assert o["v"] == "only-on-origin" and t["v"] == "target-value"
    assert t["writetime(v)"] > o["writetime(v)"]


def test_counter_and_clustering_tables(schema, origin_session, target_session):
    k = unique_key("c")
    for _ in range(3):
        origin_session.execute("UPDATE tandem_e2e.counters SET c = c + 2 WHERE k = %s", [k])
    assert read_row(origin_session, "counters", {"k": k}, ("c",), writetime=False) == {"c": 6}
    assert read_row(target_session, "counters", {"k": k}, ("c",), writetime=False) is None

    pk = abs(hash(k)) % 1_000_000
    ins = origin_session.prepare("INSERT INTO tandem_e2e.clustered (pk, ck, v) VALUES (?, ?, ?)")
    for ck in range(250):
        origin_session.execute(ins, [pk, ck, "v%d" % ck])
    stmt = SimpleStatement("SELECT ck FROM tandem_e2e.clustered WHERE pk = %d" % pk, fetch_size=100)
    result = origin_session.execute(stmt)
    first_page = list(result.current_rows)
    assert len(first_page) == 100 and result.has_more_pages
    assert [r.ck for r in result] == list(range(250))   # iterating fetches the other pages


def test_cqlsh_reaches_each_cluster(clusters):
    for c in clusters:
        p = cqlsh(c.hosts[0], "-e", "SELECT cluster_name FROM system.local",
                  credentials=c.admin, tls_ca=c.tls_ca)
        assert p.returncode == 0, p.stderr
        assert c.name in p.stdout.split(), p.stdout


def test_free_port_is_bindable(free_port):
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_tandem_fixture(tandem):
    """Skips cleanly while build/tandem cannot serve; once it can, this is a smoke test."""
    p = tandem()
    with socket.create_connection((p.host, p.port), timeout=5):
        pass


# --------------------------------------------------------------------------- auth mode
@pytest.mark.auth
def test_credentials_work_only_on_their_cluster(clusters):
    from cassandra.cluster import NoHostAvailable

    o, t = clusters.origin, clusters.target
    for cluster, own, other in ((o, o, t), (t, t, o)):
        for role in (own.admin, own.app):
            c, s = harness.connect(cluster, credentials=role)
            assert s.execute("SELECT cluster_name FROM system.local").one().cluster_name == cluster.name
            c.shutdown()
        for role in (other.admin, other.app, harness.Credentials("cassandra", "cassandra")):
            with pytest.raises(NoHostAvailable) as e:
                harness.connect(cluster, credentials=role)
            assert "AuthenticationFailed" in str(e.value) or "not permitted" in str(e.value), str(e.value)


@pytest.mark.auth
def test_app_role_can_write_but_not_manage_roles(clusters, schema):
    from cassandra import Unauthorized

    for cluster in clusters:
        c, s = harness.connect(cluster, credentials=cluster.app)
        k = unique_key("app")
        s.execute("INSERT INTO tandem_e2e.kv (k, v) VALUES (%s, %s)", [k, cluster.name])
        assert read_kv(s, k)["v"] == cluster.name
        with pytest.raises(Unauthorized):
            s.execute("CREATE ROLE intruder WITH PASSWORD = 'x' AND LOGIN = true")
        c.shutdown()


@pytest.mark.auth
def test_cqlsh_with_wrong_cluster_credentials_fails(clusters):
    p = cqlsh(clusters.origin.hosts[0], "-e", "SELECT now() FROM system.local",
              credentials=clusters.target.admin, tls_ca=clusters.origin.tls_ca)
    assert p.returncode != 0
    assert "password are incorrect" in (p.stdout + p.stderr)


# --------------------------------------------------------------------------- TLS mode
@pytest.mark.tls
def test_native_port_requires_tls(clusters):
    for c in clusters:
        # plaintext OPTIONS gets no CQL answer
        with socket.create_connection((c.hosts[0], c.port), timeout=5) as s:
            s.settimeout(5)
            s.sendall(bytes([0x04, 0, 0, 0, 0x05, 0, 0, 0, 0]))
            try:
                head = s.recv(9)
            except (ConnectionResetError, socket.timeout):
                head = b""
            assert not (len(head) == 9 and head[0] == 0x84)
        # TLS with hostname (IP SAN) verification against the test CA answers SUPPORTED
        ctx = ssl.create_default_context(cafile=c.tls_ca)
        with ctx.wrap_socket(socket.create_connection((c.hosts[0], c.port), timeout=5),
                             server_hostname=c.hosts[0]) as s:
            s.sendall(bytes([0x04, 0, 0, 0, 0x05, 0, 0, 0, 0]))
            head = s.recv(9)
            assert head[0] == 0x84 and head[4] == 0x06


def test_clusters_script_reuses_running_nodes(clusters):
    p = harness.clusters_cmd("up", timeout=60, env=harness.requested_mode())
    assert "reusing running nodes" in p.stdout, p.stdout


def test_cqlprobe_tool(clusters):
    """tests/cassandra/cqlprobe.py (used by clusters.sh before any venv exists) reads rows."""
    c = clusters.origin
    argv = [sys.executable, str(harness.ROOT / "tests/cassandra/cqlprobe.py"), "query", c.hosts[0], "9042"]
    if c.admin:
        argv += ["-u", c.admin.username, "-p", c.admin.password]
    argv += ["-e", "SELECT cluster_name, native_protocol_version FROM system.local"]
    env = {"CQLPROBE_TLS": "1" if clusters.tls else "0"}
    p = subprocess.run(argv, text=True, capture_output=True, timeout=30,
                       env={**os.environ, **env})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["origin", "5"]
