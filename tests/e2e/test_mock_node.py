"""The mock CQL node (build/cqlmock) seen through the real Python driver.

A 3-node mock cluster (127.0.0.1-3, one port) is driven with cassandra-driver on protocol v4 and v5:
discovery through system.local / peers(_v2), key/value round trips, and each scripted action as the
driver experiences it (error classes, delay, close, no answer, UNPREPARED re-prepared transparently),
with the mock's counters checked over its control interface. Needs no Cassandra.
"""
import socket
import time

import pytest

from cassandra import (AlreadyExists, InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable,
                       WriteTimeout)
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.policies import FallthroughRetryPolicy, RoundRobinPolicy
from cassandra.protocol import OverloadedErrorMessage

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


class Control:
    """Line client for the mock's control interface."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rw", encoding="utf-8", newline="\n")

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        reply = self.f.readline().rstrip("\n")
        assert reply.startswith("OK"), "%s -> %s" % (line, reply)
        return reply[3:]

    def count(self, fields):
        return int(self.cmd("COUNT " + fields))

    def close(self):
        self.f.close()
        self.sock.close()


@pytest.fixture
def mock(cqlmock, free_port):
    """A 3-node mock on 127.0.0.1-3 sharing one port, and its control client."""
    port, ctl = free_port(), free_port()
    args = ["--cluster-name", "e2e-mock", "--dc", "dc1", "--control", "127.0.0.1:%d" % ctl]
    for h in HOSTS:
        args += ["--node", "%s:%d" % (h, port)]
    proc = cqlmock(args, port)
    control = Control(ctl)
    yield port, control, proc
    control.close()


def connect(port, version, hosts=HOSTS, timeout=5.0):
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), retry_policy=FallthroughRetryPolicy(),
                               request_timeout=timeout)
    cluster = Cluster(contact_points=hosts[:1], port=port, protocol_version=version,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=5,
                      control_connection_timeout=5)
    return cluster, cluster.connect()


@pytest.mark.parametrize("version", [4, 5])
def test_discovery_and_round_trips(mock, version):
    port, control, _ = mock
    cluster, session = connect(port, version)
    try:
        assert cluster.protocol_version == version
        assert sorted(h.address for h in cluster.metadata.all_hosts()) == HOSTS
        assert {h.datacenter for h in cluster.metadata.all_hosts()} == {"dc1"}
        assert cluster.metadata.cluster_name == "e2e-mock"
        row = session.execute("SELECT release_version, cql_version FROM system.local").one()
        assert row.release_version == "5.0.8"
        session.execute("CREATE TABLE IF NOT EXISTS ks.kv (k text PRIMARY KEY, v text, n int)")
        ins = session.prepare("INSERT INTO ks.kv (k, v, n) VALUES (?, ?, ?)")
        sel = session.prepare("SELECT v, n FROM ks.kv WHERE k = ?")
        for i in range(10):
            session.execute(ins, ("k%d" % i, "v%d" % i, i))
        for i in range(10):
            r = session.execute(sel, ("k%d" % i,)).one()
            assert (r.v, r.n) == ("v%d" % i, i)
        assert session.execute(sel, ("missing",)).one() is None
        session.execute("INSERT INTO ks.kv (k, v) VALUES ('lit', 'eral')")
        assert session.execute("SELECT v FROM ks.kv WHERE k = 'lit'").one().v == "eral"
        # every insert reached the cluster exactly once, spread over its nodes
        assert control.count("op=EXECUTE match=\"INSERT INTO ks.kv\"") == 10
        per_node = [control.count("node=%d op=EXECUTE match=\"INSERT INTO ks.kv\"" % i) for i in range(3)]
        assert sum(per_node) == 10 and max(per_node) < 10
    finally:
        cluster.shutdown()


@pytest.mark.parametrize("version", [4, 5])
def test_scripted_errors_surface_as_driver_exceptions(mock, version):
    port, control, _ = mock
    rules = [
        ("wt", "code=WRITE_TIMEOUT cl=QUORUM received=1 blockfor=2 write_type=SIMPLE", WriteTimeout),
        ("rt", "code=READ_TIMEOUT cl=ONE received=0 blockfor=1 data_present=0", ReadTimeout),
        ("un", "code=UNAVAILABLE cl=ALL required=3 alive=1", Unavailable),
        ("ov", "code=OVERLOADED msg=\"busy\"", OverloadedErrorMessage),
        ("iv", "code=INVALID msg=\"nope\"", InvalidRequest),
        ("ae", "code=ALREADY_EXISTS ks=ks table=tbl", AlreadyExists),
    ]
    for tag, fields, _ in rules:
        control.cmd("RULE ADD op=QUERY match=\"FROM ks.%s\" action=error %s" % (tag, fields))
    cluster, session = connect(port, version)
    try:
        for tag, _, exc in rules:
            with pytest.raises(exc) as info:
                session.execute("SELECT * FROM ks.%s" % tag)
            if exc is WriteTimeout:
                assert info.value.received_responses == 1 and info.value.required_responses == 2
            if exc is Unavailable:
                assert info.value.required_replicas == 3 and info.value.alive_replicas == 1
        assert control.count("op=QUERY match=\"FROM ks.\"") == len(rules)
    finally:
        cluster.shutdown()


def test_delay_is_latency(mock):
    port, control, _ = mock
    control.cmd("RULE ADD op=QUERY match=\"FROM ks.slow\" delay=400")
    cluster, session = connect(port, 4)
    try:
        t0 = time.monotonic()
        session.execute("SELECT * FROM ks.slow")
        assert time.monotonic() - t0 >= 0.4
        t0 = time.monotonic()
        session.execute("SELECT * FROM ks.fast")
        assert time.monotonic() - t0 < 0.4
    finally:
        cluster.shutdown()


def test_no_answer_is_a_driver_timeout(mock):
    port, control, _ = mock
    control.cmd("RULE ADD op=QUERY match=\"FROM ks.void\" action=noreply")
    cluster, session = connect(port, 5)
    try:
        with pytest.raises(OperationTimedOut):
            session.execute("SELECT * FROM ks.void", timeout=0.5)
        session.execute("SELECT * FROM ks.other")          # the pool is still fine
        assert control.count("op=QUERY match=\"FROM ks.void\"") == 1
    finally:
        cluster.shutdown()


def test_close_is_a_connection_error(mock):
    port, control, _ = mock
    control.cmd("RULE ADD op=QUERY match=\"FROM ks.drop\" action=close times=1")
    # one host only, so the driver has nowhere else to send the request
    cluster, session = connect(port, 4, hosts=HOSTS[:1])
    try:
        profile = ExecutionProfile(load_balancing_policy=_only(HOSTS[0]), retry_policy=FallthroughRetryPolicy(),
                                   request_timeout=5)
        cluster.add_execution_profile("one", profile)
        with pytest.raises((ConnectionException, NoHostAvailable)):
            session.execute("SELECT * FROM ks.drop", execution_profile="one")
        deadline = time.monotonic() + 20
        while True:                                        # the driver reconnects by itself
            try:
                session.execute("SELECT * FROM ks.drop", execution_profile="one")
                break
            except (ConnectionException, NoHostAvailable):
                assert time.monotonic() < deadline, "the driver never reconnected"
                time.sleep(0.2)
        assert control.count("node=0 op=QUERY match=\"FROM ks.drop\"") >= 2
    finally:
        cluster.shutdown()


def _only(host):
    from cassandra.policies import WhiteListRoundRobinPolicy
    return WhiteListRoundRobinPolicy([host])


@pytest.mark.parametrize("version", [4, 5])
def test_unprepared_is_reprepared_transparently(mock, version):
    port, control, _ = mock
    cluster, session = connect(port, version, hosts=HOSTS[:1])
    try:
        profile = ExecutionProfile(load_balancing_policy=_only(HOSTS[0]), retry_policy=FallthroughRetryPolicy(),
                                   request_timeout=5)
        cluster.add_execution_profile("one", profile)
        stmt = session.prepare("INSERT INTO ks.up (k, v) VALUES (?, ?)")
        prepares = control.count("op=PREPARE match=\"INSERT INTO ks.up\"")
        control.cmd("RULE ADD node=0 op=EXECUTE match=\"INSERT INTO ks.up\" action=unprepared times=1")
        session.execute(stmt, ("a", "b"), execution_profile="one")   # no exception: re-prepared and retried
        assert control.count("node=0 op=EXECUTE match=\"INSERT INTO ks.up\"") == 2
        assert control.count("node=0 op=PREPARE match=\"INSERT INTO ks.up\"") >= 1
        assert control.count("op=PREPARE match=\"INSERT INTO ks.up\"") == prepares + 1
        # a cache really cleared on the node: the same recovery, through the mock's own UNPREPARED
        control.cmd("PREPARED CLEAR node=0")
        session.execute(stmt, ("c", "d"), execution_profile="one")
        assert control.count("node=0 op=EXECUTE match=\"INSERT INTO ks.up\"") == 4
        rows = list(session.execute("SELECT v FROM ks.up WHERE k = 'c'", execution_profile="one"))
        assert [r.v for r in rows] == ["d"]
    finally:
        cluster.shutdown()


def test_auth_credentials_recorded(cqlmock, free_port):
    from cassandra.auth import PlainTextAuthProvider
    port, ctl = free_port(), free_port()
    cqlmock(["--node", "127.0.0.1:%d" % port, "--control", "127.0.0.1:%d" % ctl, "--auth", "app:s3cret"], port)
    control = Control(ctl)
    try:
        bad = Cluster(["127.0.0.1"], port=port, protocol_version=4,
                      auth_provider=PlainTextAuthProvider("app", "wrong"))
        with pytest.raises(NoHostAvailable):
            bad.connect()
        bad.shutdown()
        good = Cluster(["127.0.0.1"], port=port, protocol_version=5,
                       auth_provider=PlainTextAuthProvider("app", "s3cret"))
        good.connect().execute("SELECT * FROM system.local")
        good.shutdown()
        assert control.count("what=auth_failed user=app") >= 1
        assert control.count("what=auth_ok user=app") >= 1
    finally:
        control.close()
