"""tandem demo walk (run by tests/demo/run.sh, i.e. `make demo`): the migration phases 1, 3, 4 and 5
with a small workload through a running tandem, printing what happened and where the data is
(row counts read straight from ORIGIN and TARGET). Every step has a check; the exit status is 1
when any check failed, 0 otherwise.

  walk.py --pid PID --config FILE --listen HOST:PORT --metrics HOST:PORT
"""
import argparse
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import harness  # noqa: E402  (tests/e2e/harness.py: metrics parsing, HTTP, config writing)

KS = "tandem_demo"
ORDERS = 300            # rows the Phase 1 workload writes
FAILED = []


def say(text=""):
    print(text, flush=True)


def check(ok, what):
    """Prints one check; remembers failures for the exit status."""
    say("    [%s] %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        FAILED.append(what)
    return ok


class Tandem:
    """The running tandem: its pid, config file, listener and metrics endpoint."""

    def __init__(self, args):
        self.pid = args.pid
        self.config = Path(args.config)
        self.host, port = args.listen.rsplit(":", 1)
        self.port = int(port)
        mhost, mport = args.metrics.rsplit(":", 1)
        self.mhost, self.mport = mhost, int(mport)

    def metrics(self):
        status, body = harness.http_get(self.mhost, self.mport, "/metrics")
        if status != 200:
            raise RuntimeError("GET /metrics answered %d" % status)
        return harness.Metrics(body)

    def reload(self, **changes):
        """Edits the keys in the config file in place (comments kept), sends SIGHUP and waits
        for the next epoch; returns that epoch."""
        epoch = int(self.metrics().value("tandem_config_epoch"))
        text = self.config.read_text()
        for key, value in changes.items():
            text, n = re.subn(r"(?m)^%s:.*$" % re.escape(key), "%s: %s" % (key, value), text)
            if n != 1:
                raise RuntimeError("%s: no single '%s:' line to edit" % (self.config, key))
        self.config.write_text(text)
        os.kill(self.pid, signal.SIGHUP)
        harness.wait_for("tandem to apply the reload",
                         lambda: int(self.metrics().value("tandem_config_epoch")) > epoch, 15, 0.05)
        return epoch + 1


def direct_session(host):
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy
    from cassandra import ConsistencyLevel
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]),
                               consistency_level=ConsistencyLevel.ALL, request_timeout=30)
    c = Cluster([host], execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10)
    return c, c.connect()


def count(session, table="orders"):
    return session.execute("SELECT count(*) FROM %s.%s" % (KS, table)).one()[0]


def where_is_the_data(origin, target, note=""):
    o, t = count(origin), count(target)
    say("    data: ORIGIN has %d orders, TARGET has %d orders%s" % (o, t, note))
    return o, t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--metrics", required=True)
    tandem = Tandem(ap.parse_args())

    from cassandra.cluster import Cluster
    from cassandra.concurrent import execute_concurrent_with_args
    from cassandra.query import BatchStatement, BatchType

    oc, origin = direct_session("127.0.0.2")
    tc, target = direct_session("127.0.0.3")
    say("== Setup: the same empty schema on both clusters, one marker row that differs")
    for s, name in ((origin, "origin"), (target, "target")):
        s.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}" % KS)
        s.execute("CREATE TABLE IF NOT EXISTS %s.orders (id int PRIMARY KEY, item text, qty int)" % KS)
        s.execute("CREATE TABLE IF NOT EXISTS %s.whoami (k text PRIMARY KEY, cluster text)" % KS)
        s.execute("TRUNCATE %s.orders" % KS)
        s.execute("INSERT INTO %s.whoami (k, cluster) VALUES ('me', %%s)" % KS, [name])
    say("    tandem_demo.whoami['me'] = 'origin' on ORIGIN and 'target' on TARGET (written directly)")

    app = Cluster([tandem.host], port=tandem.port, connect_timeout=10)
    s = app.connect(KS)
    say("    the application connects to tandem at %s:%d (protocol v%d)" % (tandem.host, tandem.port,
                                                                           app.protocol_version))
    whoami = s.prepare("SELECT cluster FROM whoami WHERE k = 'me'")
    ins = s.prepare("INSERT INTO orders (id, item, qty) VALUES (?, ?, ?)")

    # ------------------------------------------------------------------ Phase 1
    say()
    say("== Phase 1: dual writes. tandem writes every mutation to both clusters; ORIGIN serves reads")
    results = execute_concurrent_with_args(s, ins, [(i, "item-%d" % i, i % 7) for i in range(ORDERS - 2)],
                                           concurrency=32, raise_on_first_error=False)
    batch = BatchStatement(batch_type=BatchType.LOGGED)
    batch.add(ins, (ORDERS - 2, "batched", 1))
    batch.add(ins, (ORDERS - 1, "batched", 2))
    s.execute(batch)
    errors = [r for ok, r in results if not ok]
    say("    wrote %d orders through tandem (prepared inserts and a logged batch)" % ORDERS)
    check(not errors, "no client errors (%d%s)" % (len(errors), ", first: %r" % errors[0] if errors else ""))
    o, t = where_is_the_data(origin, target)
    check(o == t == ORDERS, "every order is on both clusters")
    ro = origin.execute("SELECT item, writetime(item) FROM %s.orders WHERE id = 7" % KS).one()
    rt = target.execute("SELECT item, writetime(item) FROM %s.orders WHERE id = 7" % KS).one()
    check(tuple(ro) == tuple(rt), "order 7 is identical on both, writetime included (%s)" % (tuple(ro),))
    served = s.execute(whoami).one().cluster
    check(served == "origin", "a read through tandem is served by ORIGIN (got '%s')" % served)

    # ------------------------------------------------------------------ Phase 3
    say()
    say("== Phase 3: async dual reads. SIGHUP with read_mode: DUAL_ASYNC_ON_SECONDARY")
    m0 = tandem.metrics()
    before = target.execute("SELECT count FROM system_views.coordinator_read_latency "
                            "WHERE keyspace_name = %s AND table_name = 'whoami'", [KS]).one()
    before = before.count if before else 0
    epoch = tandem.reload(read_mode="DUAL_ASYNC_ON_SECONDARY")
    say("    reload applied: epoch %d" % epoch)
    n, seen = 100, set()
    for _ in range(n):
        seen.add(s.execute(whoami).one().cluster)
    check(seen == {"origin"}, "the application still gets ORIGIN's answers (%s)" % sorted(seen))

    def mirrored():
        now = target.execute("SELECT count FROM system_views.coordinator_read_latency "
                             "WHERE keyspace_name = %s AND table_name = 'whoami'", [KS]).one()
        return (now.count if now else 0) - before >= n
    try:
        harness.wait_for("TARGET to serve the mirrored reads", mirrored, 10)
        ok = True
    except AssertionError:
        ok = False
    m1 = tandem.metrics()
    copies = m1.value("tandem_async_request_duration_seconds_count", type="reads") - \
        m0.value("tandem_async_request_duration_seconds_count", type="reads")
    check(ok, "TARGET coordinated a copy of each of the %d reads (system_views on TARGET)" % n)
    say("    tandem_async_request_duration_seconds_count{type=\"reads\"} rose by %d" % copies)
    check(m1.value("tandem_async_requests_failed_total") == 0, "no mirrored read failed")

    # ------------------------------------------------------------------ Phase 4
    say()
    say("== Phase 4: TARGET becomes the primary. SIGHUP with primary_cluster: TARGET, under load")
    handshakes = m1.value("tandem_client_handshakes_total", result="ok")
    stop, lock = threading.Event(), threading.Lock()
    state = {"writes": 0, "errors": [], "next": ORDERS}

    def writer():
        while not stop.is_set():
            with lock:
                i = state["next"]
                state["next"] += 1
            try:
                s.execute(ins, (i, "phase4", 1))
                with lock:
                    state["writes"] += 1
            except Exception as e:      # counted; the check follows
                with lock:
                    state["errors"].append(e)
    threads = [threading.Thread(target=writer, daemon=True) for _ in range(3)]
    for th in threads:
        th.start()
    time.sleep(1)
    epoch = tandem.reload(primary_cluster="TARGET")
    time.sleep(0.2)
    served = s.execute(whoami).one().cluster
    say("    reload applied: epoch %d; writes keep flowing" % epoch)
    time.sleep(1)
    stop.set()
    for th in threads:
        th.join(30)
    m2 = tandem.metrics()
    check(served == "target", "a read through tandem is now served by TARGET (got '%s')" % served)
    check(not state["errors"], "no client errors during the flip (%d writes, %d errors)"
          % (state["writes"], len(state["errors"])))
    check(m2.value("tandem_client_handshakes_total", result="ok") == handshakes,
          "no client reconnected (tandem saw no new handshake)")
    total = ORDERS + state["writes"]
    o, t = where_is_the_data(origin, target)
    check(o == t == total, "every acknowledged order (%d) is on both clusters" % total)

    # ------------------------------------------------------------------ Phase 5
    say()
    say("== Phase 5: cut-over. The application connects straight to TARGET; tandem drains")
    app.shutdown()
    direct = target.execute("SELECT count(*) FROM %s.orders" % KS).one()[0]
    check(direct == total, "a driver connected straight to TARGET sees all %d orders" % direct)
    t0 = time.monotonic()
    os.kill(tandem.pid, signal.SIGTERM)

    def gone():
        try:
            os.kill(tandem.pid, 0)
            return False
        except ProcessLookupError:
            return True
    try:
        harness.wait_for("tandem to exit after SIGTERM", gone, 20, 0.05)
        ok = True
    except AssertionError:
        ok = False
    check(ok, "SIGTERM: tandem drained and exited in %.2f s" % (time.monotonic() - t0))
    where_is_the_data(origin, target, " (ORIGIN can now be retired)")
    oc.shutdown()
    tc.shutdown()

    say()
    if FAILED:
        say("demo: %d check(s) failed:" % len(FAILED))
        for f in FAILED:
            say("  - " + f)
        return 1
    say("demo: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
