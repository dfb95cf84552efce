"""Driver features through tandem between the two real Cassandra clusters.

Protocol v4 and v5 with lz4 and paging over 5000 rows (E2E-7, FR-11), PasswordAuthenticator with
different credentials on each cluster (HS-14, secure pass only), and prepared statements that
keep working when the TARGET node restarts with an empty prepared cache (PS-11).
"""
import pytest
from cassandra.cluster import NoHostAvailable
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

import harness
from harness import (KEYSPACE, Credentials, check_quiescent, connect_tandem, driver_connections, metrics,
                     read_kv, readiness, unique_key, wait_for)


def count_rows(session, pk):
    return session.execute("SELECT count(*) FROM %s.clustered WHERE pk = %%s" % KEYSPACE, [pk]).one()[0]


# --------------------------------------------------------------------------- versions, lz4, paging
@pytest.mark.parametrize("version", [4, 5])
def test_driver_protocol_v4_v5_lz4_paging_over_5000_rows(tandem, schema, origin_session, target_session,
                                                         version):
    p = tandem()
    cluster, s = connect_tandem(p, protocol_version=version, compression="lz4")
    rows = 5200
    try:
        # the driver really runs this version with lz4 (v5: inside CRC-checked segments)
        for c in driver_connections(s):
            assert c.protocol_version == version
            assert c.compressor is not None, "lz4 was not negotiated on %s" % c
            if version == 5:
                assert c._io_buffer.is_checksumming_enabled, "v5 segments are off on %s" % c
        m = metrics(p)
        assert m.value("tandem_client_connections_by_version", version="v%d" % version) >= 1

        pk = abs(hash(unique_key())) % 1_000_000_000
        ins = s.prepare("INSERT INTO %s.clustered (pk, ck, v) VALUES (?, ?, ?)" % KEYSPACE)
        results = execute_concurrent_with_args(
            s, ins, [(pk, ck, "value-%05d-%s" % (ck, "x" * 40)) for ck in range(rows)],
            concurrency=64, raise_on_first_error=False)
        failed = [r for ok, r in results if not ok]
        assert not failed, "%d inserts failed, first: %r" % (len(failed), failed[0])

        # simple and prepared SELECTs page through tandem: every row once, in clustering order
        stmts = [SimpleStatement("SELECT ck, v FROM %s.clustered WHERE pk = %d" % (KEYSPACE, pk),
                                 fetch_size=1000),
                 s.prepare("SELECT ck, v FROM %s.clustered WHERE pk = ?" % KEYSPACE)]
        stmts[1].fetch_size = 777
        for stmt, params, page in ((stmts[0], None, 1000), (stmts[1], [pk], 777)):
            rs = s.execute(stmt, params)
            got, pages = [], 0
            while True:
                pages += 1
                assert len(rs.current_rows) <= page
                got.extend(rs.current_rows)
                if not rs.has_more_pages:
                    break
                rs.fetch_next_page()
            assert pages == -(-rows // page), "%d pages of %d rows" % (pages, page)
            assert [r.ck for r in got] == list(range(rows))
            assert all(r.v == "value-%05d-%s" % (r.ck, "x" * 40) for r in got)
        assert count_rows(s, pk) == rows
    finally:
        cluster.shutdown()
    # every row reached both clusters
    assert count_rows(origin_session, pk) == rows
    assert count_rows(target_session, pk) == rows
    assert metrics(p).value("tandem_proxy_failed_writes_total") == 0
    check_quiescent(p)


# --------------------------------------------------------------------------- authentication
def tandem_identities(session):
    """Roles of the connections tandem holds to the cluster of `session` (DRIVER_NAME 'tandem')."""
    rows = session.execute("SELECT driver_name, username FROM system_views.clients")
    return {r.username for r in rows if r.driver_name == "tandem"}


@pytest.mark.auth
@pytest.mark.parametrize("forward", [False, True], ids=["checked_by_target", "checked_by_origin"])
def test_auth_different_credentials_per_cluster(tandem, clusters, schema, origin_session, target_session,
                                                forward):
    """Both clusters require auth, with different roles. The client-auth cluster (TARGET, or
    ORIGIN with forward_client_credentials_to_origin) checks the client's own credentials and
    runs its requests under them; the other cluster gets tandem's configured app role."""
    p = tandem(forward_client_credentials_to_origin=forward)
    checker, other = (clusters.origin, clusters.target) if forward else (clusters.target, clusters.origin)
    sessions = {"origin": origin_session, "target": target_session}
    # the client logs in as the checking cluster's superuser, not as the configured app role, so
    # each cluster's list of connections shows which credentials reached it
    cluster, s = connect_tandem(p, credentials=checker.admin)
    try:
        k = unique_key("auth")
        s.execute("INSERT INTO %s.kv (k, v) VALUES (%%s, %%s)" % KEYSPACE, [k, "auth"])
        assert s.execute("SELECT v FROM %s.kv WHERE k = %%s" % KEYSPACE, [k]).one().v == "auth"
        o, t = read_kv(origin_session, k), read_kv(target_session, k)
        assert o is not None and o == t
        assert checker.admin.username in tandem_identities(sessions[checker.name])
        assert tandem_identities(sessions[other.name]) == {other.app.username}
    finally:
        cluster.shutdown()

    # refused: the other cluster's role, a wrong password, no credentials at all
    for creds in (other.admin, Credentials(checker.admin.username, "wrong-password"), None):
        with pytest.raises(NoHostAvailable) as e:
            c, _ = connect_tandem(p, credentials=creds)
            c.shutdown()
        text = str(e.value)
        assert "AuthenticationFailed" in text or "requires authentication" in text, text
        if creds is not None:
            assert "password are incorrect" in text, text   # the cluster's own answer, verbatim
    m = metrics(p)
    assert m.value("tandem_client_handshakes_total", result="auth_failed") >= 2
    check_quiescent(p, allow=[r"auth", r"credentials", r"password"])


# --------------------------------------------------------------------------- TARGET node restart
def test_prepared_statements_reprepared_after_target_node_restart(tandem, clusters, schema, origin_session,
                                                                  target_session):
    """The TARGET node restarts with an empty prepared cache while the client keeps its prepared
    ids: tandem re-prepares on TARGET's UNPREPARED and retries, so the client sees no error."""
    p = tandem(heartbeat_retry_interval_max_ms=1000)
    cluster, s = connect_tandem(p)
    node = "target"                        # the seed node of TARGET; a second node stays up
    try:
        ins = s.prepare("INSERT INTO %s.kv (k, v) VALUES (?, ?)" % KEYSPACE)
        sel = s.prepare("SELECT v FROM %s.kv WHERE k = ?" % KEYSPACE)
        tag = unique_key("reprep")
        s.execute(ins, [tag + "-before", "before"])

        harness.stop_node(node)
        try:
            assert harness.forget_persisted_prepared(node) > 0
        finally:
            harness.start_node(node)
        wait_for("tandem's readiness to be UP again", lambda: readiness(p)[0] == 200, 60, 0.25)
        harness.wait_session(target_session)

        # tandem's pool to TARGET comes back (a node that failed is retried after its cooldown);
        # a simple statement probes it without touching the prepared statement
        def write_ok():
            try:
                s.execute("INSERT INTO %s.kv (k, v) VALUES ('%s-probe', 'probe')" % (KEYSPACE, tag))
                return True
            except Exception:
                return False
        wait_for("writes through tandem to succeed again", write_ok, 60, 0.5)

        m0 = metrics(p)
        for i in range(20):                # no exception: UNPREPARED never reaches the client
            s.execute(ins, ["%s-%d" % (tag, i), "after"])
        assert s.execute(sel, [tag + "-0"]).one().v == "after"
        m1 = metrics(p)
    finally:
        cluster.shutdown()
    if clusters.nodes == 1:
        assert m1.value("tandem_pscache_reprepares_total", cluster="target", result="ok") > \
            m0.value("tandem_pscache_reprepares_total", cluster="target", result="ok")
    assert m1.value("tandem_pscache_reprepares_total", result="failed") == 0
    for i in range(20):
        o, t = read_kv(origin_session, "%s-%d" % (tag, i)), read_kv(target_session, "%s-%d" % (tag, i))
        assert o is not None and o == t
    check_quiescent(p, allow=[r"TARGET", r"127\.0\.0\.3", r"T-\d+"])
