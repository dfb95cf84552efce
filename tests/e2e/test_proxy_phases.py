"""The migration phases through tandem between the two real Cassandra clusters.

Phase 1 dual writes (E2E-1), Phase 3 async dual reads (E2E-3, AR-02, AR-08), Phase 4 primary flips
by SIGHUP under load (E2E-4, CF-04 on real clusters) and Phase 5 cut-over with a clean drain
(E2E-5, FI-08). Every check reads the clusters directly (CL ALL) or scrapes tandem's /metrics;
marker rows seeded with different values on each cluster show which cluster served a read.
"""
import signal
import socket
import statistics
import struct
import threading
import time

from cassandra import ConsistencyLevel
from cassandra.query import BatchStatement, BatchType, SimpleStatement

from harness import (KEYSPACE, Workload, check_log, check_quiescent, connect_tandem, driver_connections,
                     metrics, read_kv, read_row, reload_tandem, unique_key, wait_for)

KV = KEYSPACE + ".kv"
DRAIN_TEXT = "Shutting down, please retry on next host."      # behaviour.md §11.3, §14


def seed_marker(origin_session, target_session, table="kv"):
    """A key whose value is 'origin' on ORIGIN and 'target' on TARGET (written directly)."""
    k = unique_key("marker")
    for s, v in ((origin_session, "origin"), (target_session, "target")):
        s.execute("INSERT INTO %s.%s (k, v) VALUES (%%s, %%s)" % (KEYSPACE, table), [k, v])
    return k


def same_on_both(origin_session, target_session, table, key, columns=("v",), writetime=True):
    """The row as read from each cluster; asserts it exists on both with identical contents
    (and identical writetimes when `writetime`)."""
    o = read_row(origin_session, table, key, columns, writetime)
    t = read_row(target_session, table, key, columns, writetime)
    assert o is not None, "%s %s missing on ORIGIN" % (table, key)
    assert t is not None, "%s %s missing on TARGET" % (table, key)
    assert o == t, "%s %s differs: ORIGIN %s, TARGET %s" % (table, key, o, t)
    return o


# --------------------------------------------------------------------------- Phase 1
def test_phase1_dual_writes_all_statement_kinds(tandem, schema, origin_session, target_session):
    marker = seed_marker(origin_session, target_session)
    p = tandem()
    cluster, s = connect_tandem(p)
    try:
        s.execute("USE %s" % KEYSPACE)            # every statement below is unqualified
        tag = unique_key("p1")
        k = lambda name: "%s-%s" % (tag, name)   # noqa: E731

        # simple statements (QUERY), values inlined by the driver
        s.execute("INSERT INTO kv (k, v) VALUES (%s, %s)", [k("simple"), "simple"])
        s.execute("INSERT INTO kv (k, v) VALUES (%s, %s) USING TTL 86400", [k("ttl"), "ttl"])
        s.execute("UPDATE kv SET v = %s WHERE k = %s", ["updated", k("update")])
        s.execute("INSERT INTO kv (k, v) VALUES (%s, %s)", [k("deleted"), "soon gone"])
        s.execute("DELETE FROM kv WHERE k = %s", [k("deleted")])

        # prepared statements (PREPARE on both, EXECUTE with TARGET's id on the TARGET leg)
        ins = s.prepare("INSERT INTO kv (k, v) VALUES (?, ?)")
        s.execute(ins, [k("prepared"), "prepared"])
        ins_ck = s.prepare("INSERT INTO clustered (pk, ck, v) VALUES (?, ?, ?)")
        pk = abs(hash(tag)) % 1_000_000_000
        for ck in range(5):
            s.execute(ins_ck, [pk, ck, "ck%d" % ck])

        # logged and unlogged BATCH opcodes mixing prepared and simple children, and a text batch
        logged = BatchStatement(batch_type=BatchType.LOGGED)
        logged.add(ins, [k("logged-1"), "logged-1"])
        logged.add(SimpleStatement("INSERT INTO kv (k, v) VALUES (%s, %s)"), [k("logged-2"), "logged-2"])
        s.execute(logged)
        unlogged = BatchStatement(batch_type=BatchType.UNLOGGED)
        unlogged.add(ins, [k("unlogged-1"), "unlogged-1"])
        unlogged.add(SimpleStatement("INSERT INTO kv (k, v) VALUES (%s, %s)"), [k("unlogged-2"), "unlogged-2"])
        s.execute(unlogged)
        s.execute("BEGIN UNLOGGED BATCH INSERT INTO kv (k, v) VALUES ('%s', 'text-1'); "
                  "INSERT INTO kv (k, v) VALUES ('%s', 'text-2'); APPLY BATCH" % (k("text-1"), k("text-2")))

        # LWT: the client sees the primary's [applied]
        r = s.execute("INSERT INTO kv (k, v) VALUES (%s, %s) IF NOT EXISTS", [k("lwt"), "lwt-1"]).one()
        assert r.applied is True
        r = s.execute("INSERT INTO kv (k, v) VALUES (%s, %s) IF NOT EXISTS", [k("lwt"), "lwt-2"]).one()
        assert r.applied is False and r.v == "lwt-1"
        cas = s.prepare("UPDATE kv SET v = ? WHERE k = ? IF v = ?")
        assert s.execute(cas, ["lwt-3", k("lwt"), "lwt-1"]).one().applied is True

        # counters: simple, prepared and a COUNTER batch (never retried by tandem)
        s.execute("UPDATE counters SET c = c + 5 WHERE k = %s", [k("counter")])
        inc = s.prepare("UPDATE counters SET c = c + ? WHERE k = ?")
        s.execute(inc, [7, k("counter")])
        cb = BatchStatement(batch_type=BatchType.COUNTER)
        cb.add(inc, [100, k("counter")])
        cb.add(inc, [1, k("counter-2")])
        s.execute(cb)

        # reads through tandem come from ORIGIN (the primary), simple and prepared alike
        assert s.execute("SELECT v FROM kv WHERE k = %s", [marker]).one().v == "origin"
        sel = s.prepare("SELECT v FROM kv WHERE k = ?")
        assert s.execute(sel, [marker]).one().v == "origin"
        assert s.execute(sel, [k("prepared")]).one().v == "prepared"
    finally:
        cluster.shutdown()

    # every row is on both clusters with identical values and writetimes
    expect = {"simple": "simple", "ttl": "ttl", "update": "updated", "prepared": "prepared",
              "logged-1": "logged-1", "logged-2": "logged-2", "unlogged-1": "unlogged-1",
              "unlogged-2": "unlogged-2", "text-1": "text-1", "text-2": "text-2"}
    for name, v in expect.items():
        row = same_on_both(origin_session, target_session, "kv", {"k": k(name)})
        assert row["v"] == v, name
    for ck in range(5):
        row = same_on_both(origin_session, target_session, "clustered", {"pk": pk, "ck": ck})
        assert row["v"] == "ck%d" % ck
    assert read_kv(origin_session, k("deleted")) is None
    assert read_kv(target_session, k("deleted")) is None
    # Paxos picks its own timestamp on each cluster, so an LWT row matches in value, not writetime
    row = same_on_both(origin_session, target_session, "kv", {"k": k("lwt")}, writetime=False)
    assert row["v"] == "lwt-3"
    for key, total in ((k("counter"), 112), (k("counter-2"), 1)):
        row = same_on_both(origin_session, target_session, "counters", {"k": key}, ("c",), writetime=False)
        assert row["c"] == total
    # the seeded marker is untouched on both sides
    assert read_kv(origin_session, marker)["v"] == "origin"
    assert read_kv(target_session, marker)["v"] == "target"

    m = metrics(p)
    assert m.value("tandem_proxy_failed_writes_total") == 0
    assert m.value("tandem_proxy_failed_reads_total") == 0
    check_quiescent(p)


# --------------------------------------------------------------------------- Phase 3
def coordinator_reads(session, table):
    """How many reads of tandem_e2e.TABLE this cluster has coordinated (system_views)."""
    row = session.execute("SELECT count FROM system_views.coordinator_read_latency "
                          "WHERE keyspace_name = %s AND table_name = %s", [KEYSPACE, table]).one()
    return row.count if row else 0


def test_phase3_async_dual_reads_reach_target(tandem, schema, origin_session, target_session):
    marker = seed_marker(origin_session, target_session, "mirrored")
    p = tandem()
    cluster, s = connect_tandem(p)
    try:
        sel = s.prepare("SELECT v FROM %s.mirrored WHERE k = ?" % KEYSPACE)
        n = 40
        # read_mode PRIMARY_ONLY: TARGET coordinates none of these reads
        before = coordinator_reads(target_session, "mirrored")
        for _ in range(n):
            assert s.execute(sel, [marker]).one().v == "origin"
        time.sleep(0.5)
        assert coordinator_reads(target_session, "mirrored") == before

        m0 = metrics(p)
        epoch = reload_tandem(p, read_mode="DUAL_ASYNC_ON_SECONDARY")
        m1 = metrics(p)
        assert m1.value("tandem_read_mode", mode="DUAL_ASYNC_ON_SECONDARY") == 1
        assert m1.value("tandem_config_epoch") == epoch

        # the client still gets ORIGIN's rows (prepared and simple); TARGET receives a copy of each
        for i in range(n):
            assert s.execute(sel, [marker]).one().v == "origin"
            rows = s.execute("SELECT v FROM %s.mirrored WHERE k = '%s'" % (KEYSPACE, marker))
            assert rows.one().v == "origin"
        wait_for("TARGET to coordinate the %d mirrored reads" % (2 * n),
                 lambda: coordinator_reads(target_session, "mirrored") >= before + 2 * n, 15)

        def mirrored_in_metrics():
            m = metrics(p)
            return m.value("tandem_async_request_duration_seconds_count", type="reads") - \
                m0.value("tandem_async_request_duration_seconds_count", type="reads") >= 2 * n
        wait_for("tandem's async read counters to count the copies", mirrored_in_metrics, 15)
        m2 = metrics(p)
        assert m2.value("tandem_async_requests_failed_total") == 0
        assert m2.value("tandem_async_reads_dropped_total") == 0
        assert m2.value("tandem_proxy_failed_reads_total") == 0
    finally:
        cluster.shutdown()
    check_quiescent(p)


def median_latency(session, stmt, params, n):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        session.execute(stmt, params)
        lat.append(time.perf_counter() - t0)
    return statistics.median(lat)


def test_phase3_slow_target_does_not_slow_clients(tandem, schema, mock_cluster, origin_session):
    """Real ORIGIN, mock TARGET whose reads take 1.5 s: mirrored copies never delay the client."""
    target = mock_cluster("target")
    target.ctl.cmd('RULE ADD op=QUERY,EXECUTE match="FROM %s.kv" delay=1500' % KEYSPACE)
    marker = unique_key("marker")
    origin_session.execute("INSERT INTO %s (k, v) VALUES (%%s, 'origin')" % KV, [marker])
    p = tandem(**target.overrides("target"))
    cluster, s = connect_tandem(p)
    try:
        sel = s.prepare("SELECT v FROM %s WHERE k = ?" % KV)
        assert s.execute(sel, [marker]).one().v == "origin"
        n = 30
        off = median_latency(s, sel, [marker], n)
        assert target.ctl.count('op=EXECUTE match="FROM %s.kv"' % KEYSPACE) == 0

        reload_tandem(p, read_mode="DUAL_ASYNC_ON_SECONDARY")
        on = median_latency(s, sel, [marker], n)
        # every read was mirrored to TARGET, where each copy waits 1.5 s
        wait_for("the mock TARGET to receive %d mirrored reads" % n,
                 lambda: target.ctl.count('op=EXECUTE match="FROM %s.kv"' % KEYSPACE) >= n, 10)
        # a generous bound: a client waiting for even one copy would see >= 1.5 s
        assert on < max(3 * off, off + 0.1), "p50 %.1f ms with async reads, %.1f ms without" % (
            on * 1000, off * 1000)
        assert on < 0.75
        assert metrics(p).value("tandem_proxy_failed_reads_total") == 0
    finally:
        cluster.shutdown()
    check_quiescent(p)          # the delayed copies, too, are answered and their ids freed


# --------------------------------------------------------------------------- Phase 4
def test_phase4_primary_flips_under_load_no_errors_no_reconnects(tandem, schema, origin_session,
                                                                 target_session):
    marker = seed_marker(origin_session, target_session)
    p = tandem()
    downs = []
    cluster, s = connect_tandem(p)
    try:
        class Listener:                     # the driver reports any host it sees go down or away
            def on_up(self, host): pass
            def on_add(self, host): pass
            def on_down(self, host): downs.append(("down", host))
            def on_remove(self, host): downs.append(("remove", host))
        cluster.register_listener(Listener())

        ins = s.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % KV)
        sel = s.prepare("SELECT v FROM %s WHERE k = ?" % KV)
        tag = unique_key("p4")
        written = []
        wlock = threading.Lock()

        def step(thread, i):
            key = "%s-%d-%d" % (tag, thread, i)
            s.execute(ins, [key, key])
            with wlock:
                written.append(key)
            return s.execute(sel, [marker]).one().v

        conns0 = driver_connections(s)
        m0 = metrics(p)
        wl = Workload(step, threads=4).start()
        time.sleep(2)
        flips = []                           # (signal sent, epoch seen, primary)
        for primary, hold in (("TARGET", 3), ("ORIGIN", 2)):
            t_sig = time.monotonic()
            reload_tandem(p, primary_cluster=primary)
            flips.append((t_sig, time.monotonic(), primary.lower()))
            time.sleep(hold)
        wl.stop()
        m1 = metrics(p)
        conns1 = driver_connections(s)
        closed = [c for c in conns1 if c.is_closed or c.is_defunct]
    finally:
        cluster.shutdown()

    outcomes = wl.done()
    assert not wl.errors, "%d client errors, first: %r" % (len(wl.errors), wl.errors[0].error)
    assert len(outcomes) > 50
    # reads follow the primary: before the first SIGHUP, ORIGIN; once an epoch is visible (plus
    # 100 ms for every worker to take it), its primary; around a flip either may answer
    grace = 0.1
    windows = [(0.0, flips[0][0], "origin"),
               (flips[0][1] + grace, flips[1][0], "target"),
               (flips[1][1] + grace, float("inf"), "origin")]
    for lo, hi, want in windows:
        inside = [o for o in outcomes if o.t0 >= lo and o.t1 <= hi]
        assert len(inside) >= 10, "too few reads between flips to tell (%d)" % len(inside)
        wrong = [o.value for o in inside if o.value != want]
        assert not wrong, "%d of %d reads did not come from %s" % (len(wrong), len(inside), want)
    # no reconnect: same driver connections, still open; tandem saw no new handshake
    assert [id(c) for c in conns1] == [id(c) for c in conns0]
    assert not closed, closed
    assert not downs, downs
    assert m1.value("tandem_client_handshakes_total", result="ok") == \
        m0.value("tandem_client_handshakes_total", result="ok")
    assert m1.value("tandem_config_reloads_total", result="applied") == 2
    assert m1.value("tandem_primary_cluster", cluster="origin") == 1
    # every acknowledged write is on both clusters, with one writetime
    for i in range(0, len(written), 100):
        chunk = written[i:i + 100]
        q = "SELECT k, v, writetime(v) AS wt FROM %s WHERE k IN (%s)" % (KV, ",".join(["%s"] * len(chunk)))
        stmt = SimpleStatement(q, consistency_level=ConsistencyLevel.ALL)
        o = {r.k: (r.v, r.wt) for r in origin_session.execute(stmt, chunk)}
        t = {r.k: (r.v, r.wt) for r in target_session.execute(stmt, chunk)}
        assert set(o) == set(chunk), "missing on ORIGIN: %s" % sorted(set(chunk) - set(o))[:5]
        assert o == t
    check_quiescent(p)


# --------------------------------------------------------------------------- Phase 5
def all_on(session, keys, table="kv"):
    """{k: (v, writetime(v))} of those `keys` that `session`'s cluster has (read at CL ALL)."""
    out = {}
    for i in range(0, len(keys), 100):
        chunk = keys[i:i + 100]
        q = "SELECT k, v, writetime(v) AS wt FROM %s.%s WHERE k IN (%s)" % (
            KEYSPACE, table, ",".join(["%s"] * len(chunk)))
        stmt = SimpleStatement(q, consistency_level=ConsistencyLevel.ALL)
        out.update({r.k: (r.v, r.wt) for r in session.execute(stmt, chunk)})
    return out


def pipelined_inserts(p, keys):
    """A raw v4 client: STARTUP, then one INSERT QUERY per key (stream id = index) in one send.
    Returns the socket; the answers are read by read_answers()."""
    def frame(stream, opcode, body):
        return struct.pack(">BBhBI", 4, 0, stream, opcode, len(body)) + body

    def short_string(x):
        return struct.pack(">H", len(x)) + x.encode()
    sock = socket.create_connection((p.host, p.port), timeout=10)
    sock.sendall(frame(0, 0x01, struct.pack(">H", 1) + short_string("CQL_VERSION") + short_string("3.0.0")))
    version, _, stream, opcode, length = struct.unpack(">BBhBI", _recv(sock, 9))
    _recv(sock, length)
    assert opcode == 0x02, "no READY (opcode %d)" % opcode
    out = []
    for i, k in enumerate(keys):
        q = ("INSERT INTO %s (k, v) VALUES ('%s', '%s')" % (KV, k, k)).encode()
        out.append(frame(i, 0x07, struct.pack(">i", len(q)) + q + struct.pack(">HB", 0x0001, 0)))
    sock.sendall(b"".join(out))
    return sock


def _recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_answers(sock):
    """(stream, opcode, error code or None, message, time.monotonic()) per answer, until EOF."""
    out = []
    while True:
        try:
            version, _, stream, opcode, length = struct.unpack(">BBhBI", _recv(sock, 9))
            body = _recv(sock, length)
        except (EOFError, ConnectionResetError):
            return out
        code, msg = None, ""
        if opcode == 0x00:
            code = struct.unpack(">i", body[:4])[0]
            msg = body[6:6 + struct.unpack(">H", body[4:6])[0]].decode("utf-8", "replace")
        out.append((stream, opcode, code, msg, time.monotonic()))


def test_phase5_target_has_every_row_and_sigterm_drains_cleanly(tandem, schema, origin_session,
                                                                target_session):
    """Phase 5 configuration (primary TARGET). The driver writes through tandem under steady load;
    then a client pipelines 2000 writes in one send and tandem gets SIGTERM at once, with most of
    them in flight. Every one must get exactly one answer: success, or OVERLOADED with the drain
    text (then it ran nowhere); tandem exits 0; a driver connected straight to TARGET sees every
    acknowledged row."""
    p = tandem(primary_cluster="TARGET", shutdown_drain_timeout_ms=15000)
    cluster, s = connect_tandem(p)
    tag = unique_key("p5")
    try:
        ins = s.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % KV)

        def write(thread, i):
            key = "%s-s%d-%d" % (tag, thread, i)
            s.execute(ins, [key, key])
            return key
        steady = Workload(write, threads=3).start()
        time.sleep(2)
        steady.stop()
    finally:
        cluster.shutdown()
    assert not steady.errors, "%d client errors, first: %r" % (len(steady.errors), steady.errors[0].error)

    burst = ["%s-b%d" % (tag, i) for i in range(2000)]
    sock = pipelined_inserts(p, burst)
    try:
        t_term = time.monotonic()
        p.send_signal(signal.SIGTERM)
        answers = read_answers(sock)
    finally:
        sock.close()
    rc = p.proc.wait(timeout=30)

    streams = [a[0] for a in answers]
    assert sorted(streams) == list(range(len(burst))), \
        "%d answers for %d requests (%d distinct)" % (len(answers), len(burst), len(set(streams)))
    ok = [burst[a[0]] for a in answers if a[1] == 0x08]
    refused = [burst[a[0]] for a in answers if a[2] == 0x1001 and a[3] == DRAIN_TEXT]
    other = [a for a in answers if a[1] != 0x08 and not (a[2] == 0x1001 and a[3] == DRAIN_TEXT)]
    assert not other, "%d answers are neither success nor the drain refusal, first: %r" % (len(other), other[0])
    done_after = [a for a in answers if a[1] == 0x08 and a[4] > t_term + 0.02]
    assert done_after, "no write completed after SIGTERM: nothing was in flight to drain"
    assert rc == 0, "tandem exited with %s after SIGTERM; end of its log:\n%s" % (rc, p.tail())
    assert "drain complete" in p.output(), p.tail()
    check_log(p)

    # a driver connected straight to TARGET sees every acknowledged row, as ORIGIN does
    acked = [o.value for o in steady.done()] + ok
    t_rows = all_on(target_session, acked)
    missing = sorted(set(acked) - set(t_rows))
    assert not missing, "%d acknowledged rows missing on TARGET, e.g. %s" % (len(missing), missing[:3])
    assert all(v == k for k, (v, _) in t_rows.items())
    o_rows = all_on(origin_session, acked)
    assert {k: v for k, (v, _) in o_rows.items()} == {k: v for k, (v, _) in t_rows.items()}
    # the driver sends its own timestamp, so its rows match in writetime too (the raw client's
    # carry none: each cluster stamps them itself)
    steady_keys = [o.value for o in steady.done()]
    assert {k: o_rows[k] for k in steady_keys} == {k: t_rows[k] for k in steady_keys}
    # a refused write ran nowhere: a driver may safely retry it on the next host
    assert not all_on(target_session, refused) and not all_on(origin_session, refused)
