"""Operating tandem under load (issue 5, CF-08): three reloads while a driver reads and writes
through tandem: flip the primary, enable async dual reads, then a file that does not validate.
Zero client errors, zero reconnects, and /metrics plus /api/v1/status show every epoch and the
rejected reload with its reason."""
import json
import signal
import time
from pathlib import Path

from harness import (KEYSPACE, Workload, check_quiescent, connect_tandem, driver_connections, http_get,
                     metrics, reload_tandem, unique_key, wait_for)

KV = KEYSPACE + ".kv"


def status(proc):
    cfg = proc.extra["config_values"]
    code, body = http_get(str(cfg["metrics_address"]), int(cfg["metrics_port"]), "/api/v1/status")
    assert code == 200, body[:200]
    return json.loads(body)


def test_three_reloads_under_load_no_errors_no_reconnects(tandem, schema, origin_session, target_session):
    marker = unique_key("ops")
    for s, v in ((origin_session, "origin"), (target_session, "target")):
        s.execute("INSERT INTO %s (k, v) VALUES (%%s, %%s)" % KV, [marker, v])
    p = tandem()
    cluster, s = connect_tandem(p)
    try:
        ins = s.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % KV)
        sel = s.prepare("SELECT v FROM %s WHERE k = ?" % KV)
        tag = unique_key("reload")

        def step(thread, i):
            key = "%s-%d-%d" % (tag, thread, i)
            s.execute(ins, [key, key])
            return s.execute(sel, [marker]).one().v

        conns0 = [id(c) for c in driver_connections(s)]
        m0 = metrics(p)
        assert m0.value("tandem_config_epoch") == 1
        wl = Workload(step, threads=4).start()
        time.sleep(1.5)

        # 1. flip the primary (Phase 4)
        assert reload_tandem(p, primary_cluster="TARGET") == 2
        time.sleep(1.5)
        # 2. async dual reads on the secondary, which is now ORIGIN (Phase 3 after the flip)
        assert reload_tandem(p, read_mode="DUAL_ASYNC_ON_SECONDARY") == 3
        time.sleep(1.5)
        # 3. a file that does not validate: nothing changes, the reload is counted as rejected
        path = Path(str(p.extra["config"]))
        good = path.read_text()
        path.write_text(good + "primary_clustr: ORIGIN\n")
        p.send_signal(signal.SIGHUP)
        wait_for("the rejected reload in /metrics",
                 lambda: metrics(p).value("tandem_config_reloads_total", result="rejected") == 1, 15)
        time.sleep(1.5)
        wl.stop()
        m1 = metrics(p)
        st = status(p)
        conns1 = driver_connections(s)
        closed = [c for c in conns1 if c.is_closed or c.is_defunct]   # before shutdown closes them
    finally:
        cluster.shutdown()

    assert not wl.errors, "%d client errors, first: %r" % (len(wl.errors), wl.errors[0].error)
    outcomes = wl.done()
    assert len(outcomes) > 50
    # after the flip, reads came from TARGET and stayed there through the rejected reload
    assert outcomes[-1].value == "target"
    # no reconnect: the driver kept its connections and tandem saw no new handshake
    assert [id(c) for c in conns1] == conns0
    assert not closed, closed
    assert m1.value("tandem_client_handshakes_total", result="ok") == \
        m0.value("tandem_client_handshakes_total", result="ok")
    # every epoch and the rejection are visible
    assert m1.value("tandem_config_epoch") == 3
    assert m1.value("tandem_config_reloads_total", result="applied") == 2
    assert m1.value("tandem_config_reloads_total", result="rejected") == 1
    assert m1.value("tandem_primary_cluster", cluster="target") == 1
    assert m1.value("tandem_read_mode", mode="DUAL_ASYNC_ON_SECONDARY") == 1
    assert st["epoch"] == 3
    assert st["primary_cluster"] == "TARGET"
    assert st["read_mode"] == "DUAL_ASYNC_ON_SECONDARY"
    last = st["last_reload"]
    assert last["result"] == "rejected"
    assert "primary_clustr" in last["error"] and "primary_cluster" in last["error"], last
    check_quiescent(p, allow=("reload rejected, epoch 3 kept",))
