"""Failures through tandem: the real TARGET node down and back (FI-01), one cluster answering
with an error or not at all (AG-01, AG-03, AG-04 against a scripted cqlmock as one cluster, the
other one real), and malformed bytes from a raw socket while a driver keeps working (MI-13).
The expected client-visible answers are those of behaviour.md §6 and §14, exact where quoted.
"""
import json
import socket
import struct
import time
import zlib

import pytest
from cassandra import InvalidRequest, ReadTimeout, Unavailable, WriteTimeout
from cassandra.policies import WriteType
from cassandra.protocol import ServerError
from cassandra.query import BatchStatement, BatchType, SimpleStatement

import harness
from harness import (KEYSPACE, Workload, check_quiescent, connect_tandem, driver_connections, metrics,
                     read_kv, readiness, unique_key, wait_for)

KV = KEYSPACE + ".kv"


# --------------------------------------------------------------------------- TARGET node down
def test_target_down_writes_fail_naming_target_reads_continue_then_recovers(tandem, schema, origin_session,
                                                                           target_session):
    marker = unique_key("marker")
    origin_session.execute("INSERT INTO %s (k, v) VALUES (%%s, 'origin')" % KV, [marker])
    p = tandem(heartbeat_retry_interval_max_ms=1000, proxy_request_timeout_ms=5000)
    cluster, s = connect_tandem(p)
    node = "target"
    tag = unique_key("down")
    try:
        ins = s.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % KV)
        sel = s.prepare("SELECT v FROM %s WHERE k = ?" % KV)
        s.execute(ins, [tag + "-before", "before"])

        harness.stop_node(node)
        try:
            t_down = time.monotonic()
            attempts = []                      # (seconds after the stop, key, exception or None)
            while time.monotonic() - t_down < 6:
                key = "%s-%d" % (tag, len(attempts))
                try:
                    s.execute(ins, [key, "while-down"])
                    attempts.append((time.monotonic() - t_down, key, None))
                except Exception as e:         # every one must fail: asserted below
                    attempts.append((time.monotonic() - t_down, key, e))
                # primary (ORIGIN) reads keep working, prepared and simple
                assert s.execute(sel, [marker]).one().v == "origin"
                assert s.execute("SELECT v FROM %s WHERE k = '%s'" % (KV, marker)).one().v == "origin"
                time.sleep(0.1)
            status, body = readiness(p)
            assert status == 503 and json.loads(body)["TargetStatus"]["Status"] == "DOWN", body
        finally:
            harness.start_node(node)

        succeeded = [a for a in attempts if a[2] is None]
        assert not succeeded, "writes succeeded with TARGET down: %s" % [a[1] for a in succeeded]
        for _, key, e in attempts:
            assert "TARGET" in str(e), "the error does not name TARGET: %r" % e
        # once the node is known down (within 2 s), each write is refused before anything runs
        settled = [(key, e) for t, key, e in attempts if t > 2]
        assert settled
        for key, e in settled:
            assert isinstance(e, Unavailable), repr(e)
            assert "tandem: no reachable TARGET node" in str(e), str(e)
            assert read_kv(origin_session, key) is None, "%s ran on ORIGIN although refused" % key

        # the node is back: tandem recovers by itself (same process, same client connection)
        conns = [id(c) for c in driver_connections(s)]

        def write_ok():
            try:
                s.execute(ins, [tag + "-probe", "probe"])
                return True
            except Exception:
                return False
        wait_for("writes through tandem to succeed again", write_ok, 60, 0.5)
        wait_for("readiness UP", lambda: readiness(p)[0] == 200, 30, 0.25)
        for i in range(10):
            s.execute(ins, ["%s-after-%d" % (tag, i), "after"])
        assert [id(c) for c in driver_connections(s)] == conns
        assert p.returncode is None
    finally:
        cluster.shutdown()
    harness.wait_session(target_session)
    for i in range(10):
        o, t = read_kv(origin_session, "%s-after-%d" % (tag, i)), read_kv(target_session, "%s-after-%d" % (tag, i))
        assert o is not None and o == t
    check_quiescent(p, allow=[r"TARGET", r"127\.0\.0\.3", r"T-\d+"])


# --------------------------------------------------------------------------- one side errs or is silent
# (name, mock rule action, primary, statement kind, expected exception, checks on the message)
ERROR_CASES = [
    # a one-sided error outside the rewrite set reaches the client verbatim
    ("target_write_timeout_verbatim",
     "action=error code=WRITE_TIMEOUT cl=LOCAL_ONE received=1 blockfor=2 write_type=SIMPLE msg=\"mock target timed out\"",
     "ORIGIN", "write", WriteTimeout, ["mock target timed out"]),
    # "did not run" errors after the other side applied become SERVER_ERROR naming both (§6.1)
    ("target_unavailable_rewritten",
     "action=error code=UNAVAILABLE cl=LOCAL_ONE required=1 alive=0 msg=\"mock target has no replica\"",
     "ORIGIN", "write", ServerError,
     ["tandem: applied on ORIGIN, failed on TARGET: UNAVAILABLE: mock target has no replica"]),
    ("target_overloaded_rewritten",
     "action=error code=OVERLOADED msg=\"mock target is busy\"",
     "ORIGIN", "write", ServerError,
     ["tandem: applied on ORIGIN, failed on TARGET: OVERLOADED: mock target is busy"]),
    # both fail: the primary's error (ORIGIN's real one, or the mock TARGET's)
    ("both_fail_primary_origin",
     "action=error code=INVALID msg=\"mock target refuses\"",
     "ORIGIN", "missing_table", InvalidRequest, ["nosuch"]),
    ("both_fail_primary_target",
     "action=error code=INVALID msg=\"mock target refuses\"",
     "TARGET", "missing_table", InvalidRequest, ["mock target refuses"]),
    # one side silent: tandem's own timeout answer names it (§6.3)
    ("target_silent_write",
     "action=noreply", "ORIGIN", "write", WriteTimeout,
     ["tandem: no response from TARGET within 1000 ms (applied on ORIGIN)"]),
    ("target_silent_logged_batch",
     "action=noreply", "ORIGIN", "batch", WriteTimeout,
     ["tandem: no response from TARGET within 1000 ms (applied on ORIGIN)"]),
    ("primary_target_silent_read",
     "action=noreply", "TARGET", "read", ReadTimeout,
     ["tandem: no response from TARGET within 1000 ms"]),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_one_side_error_or_silence_gives_the_prescribed_answer(tandem, schema, mock_cluster, origin_session,
                                                               case):
    """Real ORIGIN, scripted cqlmock as TARGET; the rule hits only this case's statement."""
    name, action, primary, kind, exc, texts = case
    target = mock_cluster("target")
    key = unique_key(name)
    if kind == "missing_table":     # ORIGIN really fails: the table exists only on the mock
        stmt = "INSERT INTO %s.nosuch (k, v) VALUES ('%s', 'x')" % (KEYSPACE, key)
    elif kind == "read":
        stmt = "SELECT v FROM %s WHERE k = '%s'" % (KV, key)
    else:
        stmt = "INSERT INTO %s (k, v) VALUES ('%s', 'x')" % (KV, key)
    target.ctl.cmd("RULE ADD op=QUERY,BATCH match=\"'%s'\" %s" % (key, action))
    p = tandem(primary_cluster=primary, proxy_request_timeout_ms=1000, **target.overrides("target"))
    cluster, s = connect_tandem(p)
    try:
        t0 = time.monotonic()
        with pytest.raises(exc) as info:
            if kind == "batch":
                b = BatchStatement(batch_type=BatchType.LOGGED)
                b.add(SimpleStatement(stmt))
                b.add(SimpleStatement("INSERT INTO %s (k, v) VALUES ('%s-2', 'x')" % (KV, key)))
                s.execute(b)
            else:
                s.execute(stmt)
        took = time.monotonic() - t0
        for text in texts:
            assert text in str(info.value), str(info.value)
        e = info.value
        if name == "target_write_timeout_verbatim":       # TARGET's own fields, untouched
            assert (e.received_responses, e.required_responses) == (1, 2)
        if exc is WriteTimeout and "silent" in name:
            assert (e.received_responses, e.required_responses) == (0, 1)
            assert e.write_type == (WriteType.BATCH if kind == "batch" else WriteType.SIMPLE), e.write_type
            assert 0.9 < took < 5, took
        if exc is ReadTimeout:
            assert (e.received_responses, e.required_responses, e.data_retrieved) == (0, 1, False)
        # the request reached the mock exactly once: tandem never retries a write
        assert target.ctl.count("match=\"'%s'\"" % key) == 1
        # the connection stays usable
        assert s.execute("SELECT release_version FROM system.local").one() is not None
    finally:
        cluster.shutdown()
    if "applied on ORIGIN" in " ".join(texts):
        assert read_kv(origin_session, key) is not None
    m = metrics(p)
    if kind in ("write", "batch"):
        assert m.value("tandem_proxy_failed_writes_total", failed_on="target") >= 1
    # a one-sided failure is a divergent write, logged as such; the rest must stay quiet. A silent
    # node keeps the id of the request it never answers (freed only by a late answer, §8)
    check_quiescent(p, allow=[r"divergent write"],
                    skip=["tandem_target_used_stream_ids_total"] if "silent" in name else [])


# --------------------------------------------------------------------------- malformed input
def frame(version, stream, opcode, body, flags=0):
    return struct.pack(">BBhBI", version, flags, stream, opcode, len(body)) + body


def cql_string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def string_map(d):
    out = struct.pack(">H", len(d))
    for k, v in d.items():
        out += cql_string(k) + cql_string(v)
    return out


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(sock):
    """(version byte, stream, opcode, body) of one unframed v3/v4/v5 message."""
    version, _flags, stream, opcode, length = struct.unpack(">BBhBI", recv_exact(sock, 9))
    return version, stream, opcode, recv_exact(sock, length)


def error_of(body):
    code = struct.unpack(">i", body[:4])[0]
    n = struct.unpack(">H", body[4:6])[0]
    return code, body[6:6 + n].decode("utf-8", "replace")


def closed_soon(sock, timeout=5.0):
    """True once the peer closes (EOF or reset) within `timeout`; data read meanwhile is dropped."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def crc24(data):
    crc = 0x875060
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1974F0B
    return crc & 0xFFFFFF


def segment(payload, corrupt_header_crc=False):
    """One uncompressed self-contained v5 segment around `payload` (behaviour.md §4.2)."""
    hdr = (len(payload) | (1 << 17)).to_bytes(3, "little")
    crc = crc24(hdr) ^ (0x5A5A5A if corrupt_header_crc else 0)
    body_crc = zlib.crc32(payload, zlib.crc32(b"\xfa\x2d\x55\xca"))
    return hdr + crc.to_bytes(3, "little") + payload + body_crc.to_bytes(4, "little")


STARTUP = 0x01
READY = 0x02
QUERY = 0x07
EXECUTE = 0x0A
ERROR = 0x00
PROTOCOL_ERROR = 0x000A


def handshake(p, version=4, options=None):
    sock = socket.create_connection((p.host, p.port), timeout=5)
    sock.sendall(frame(version, 0, STARTUP, string_map(options or {"CQL_VERSION": "3.0.0"})))
    v, stream, op, body = read_frame(sock)
    assert op == READY, (op, body)
    return sock


def malformed_startup(p):
    """STARTUP whose string map announces two entries and carries one."""
    sock = socket.create_connection((p.host, p.port), timeout=5)
    body = struct.pack(">H", 2) + cql_string("CQL_VERSION") + cql_string("3.0.0")
    sock.sendall(frame(4, 3, STARTUP, body))
    return sock, 3


def query_string_overruns_body(p):
    """QUERY whose [long string] length is larger than the body."""
    sock = handshake(p)
    sock.sendall(frame(4, 7, QUERY, struct.pack(">i", 1000) + b"SELECT now"))
    return sock, 7


def execute_id_overruns_body(p):
    """EXECUTE whose [short bytes] id length runs past the body."""
    sock = handshake(p)
    sock.sendall(frame(4, 9, EXECUTE, struct.pack(">H", 200) + b"\x01\x02\x03\x04"))
    return sock, 9


def v5_segment_bad_crc(p):
    """After a v5 handshake, a segment whose header CRC24 is wrong."""
    sock = handshake(p, version=5)
    q = cql_string("SELECT release_version FROM system.local")
    envelope = frame(5, 11, QUERY, struct.pack(">i", len(q) - 2) + q[2:] + struct.pack(">Hi", 1, 0))
    sock.sendall(segment(envelope, corrupt_header_crc=True))
    return sock, None


MALFORMED = [malformed_startup, query_string_overruns_body, execute_id_overruns_body, v5_segment_bad_crc]


def test_malformed_input_closes_only_that_connection(tandem, schema):
    p = tandem()
    cluster, s = connect_tandem(p)
    try:
        ins = s.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % KV)
        sel = s.prepare("SELECT v FROM %s WHERE k = ?" % KV)
        tag = unique_key("mi")

        def step(thread, i):
            key = "%s-%d-%d" % (tag, thread, i)
            s.execute(ins, [key, key])
            assert s.execute(sel, [key]).one().v == key
        conns = [id(c) for c in driver_connections(s)]
        m0 = metrics(p)
        wl = Workload(step, threads=2).start()
        try:
            for make in MALFORMED:
                sock, stream = make(p)
                try:
                    if stream is not None:
                        version, got_stream, op, body = read_frame(sock)
                        assert version & 0x80, "not a response"
                        assert op == ERROR, (make.__name__, op, body)
                        code, msg = error_of(body)
                        assert code == PROTOCOL_ERROR, (make.__name__, hex(code), msg)
                        assert got_stream == stream, (make.__name__, got_stream)
                        assert msg, make.__name__
                    assert closed_soon(sock), "%s: tandem kept the connection open" % make.__name__
                finally:
                    sock.close()
                time.sleep(0.2)
        finally:
            wl.stop()
        m1 = metrics(p)
        conns_after = [id(c) for c in driver_connections(s) if not (c.is_closed or c.is_defunct)]
    finally:
        cluster.shutdown()
    assert not wl.errors, "%d driver errors, first: %r" % (len(wl.errors), wl.errors[0].error)
    assert wl.count() > 20
    assert conns_after == conns, "the driver's own connections were disturbed"
    rejected = lambda m, r: m.value("tandem_frames_rejected_total", reason=r)  # noqa: E731
    assert rejected(m1, "malformed") - rejected(m0, "malformed") >= 3
    assert rejected(m1, "crc") - rejected(m0, "crc") >= 1
    check_quiescent(p, allow=[r"malformed", r"protocol", r"CRC", r"crc"])
