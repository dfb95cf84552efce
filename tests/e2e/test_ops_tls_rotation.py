"""Certificate rotation under load (issue 7): zero client errors.

Client-facing TLS only (the clusters are plain), so this runs in the plain pass. tandem starts with
server certificate A (tests/data/tls/gen.sh's server.pem, CN=localhost); a driver session over TLS
runs a read/write workload through it while two reloads point proxy_tls_cert_path/_key_path at
certificate B (server2.pem, CN=tandem-rotated, same CA) and back at A. After each reload a NEW TLS
connection sees the newly configured certificate (subject and serial) while the driver keeps its
connections: zero client errors, no reconnect, every acknowledged write on both clusters. Then a
file that is not PEM is rejected by reload and new connections keep the last good certificate.
"""
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from harness import (BUILD, KEYSPACE, ROOT, Workload, check_quiescent, connect_tandem, driver_connections,
                     metrics, reload_tandem, unique_key, wait_for, write_tandem_config)

KV = KEYSPACE + ".kv"
TLS_MATERIAL = BUILD / "tls-test"


def gen_certs() -> Path:
    subprocess.run(["sh", str(ROOT / "tests" / "data" / "tls" / "gen.sh"), str(TLS_MATERIAL)], check=True,
                   timeout=120)
    return TLS_MATERIAL


def cert_id(pem: Path) -> tuple:
    """(commonName, serial as upper-case hex) of a PEM certificate file, by the openssl CLI."""
    out = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-serial", "-subject",
                          "-nameopt", "multiline"], check=True, capture_output=True, text=True).stdout
    serial = cn = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("serial="):
            serial = line.split("=", 1)[1].upper().lstrip("0")
        elif line.startswith("commonName"):
            cn = line.split("=", 1)[1].strip()
    assert serial and cn, out
    return cn, serial


def seen_cert(p, ctx: ssl.SSLContext) -> tuple:
    """(commonName, serial) of the certificate a brand-new TLS connection to tandem is served."""
    with socket.create_connection((p.host, p.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=p.host) as tls:
            peer = tls.getpeercert()
    cn = dict(x[0] for x in peer["subject"])["commonName"]
    return cn, peer["serialNumber"].upper().lstrip("0")


def test_cert_rotation_under_load_no_errors_no_reconnects(tandem, tmp_path, schema, origin_session,
                                                           target_session):
    certs = gen_certs()
    # two certificate sets, as files of their own (the operator writes new files, then reloads)
    a_pem, a_key = tmp_path / "set-a.pem", tmp_path / "set-a.key"
    b_pem, b_key = tmp_path / "set-b.pem", tmp_path / "set-b.key"
    shutil.copyfile(certs / "server.pem", a_pem)
    shutil.copyfile(certs / "server.key", a_key)
    cert_a, cert_b = cert_id(a_pem), cert_id(certs / "server2.pem")
    assert cert_a[0] == "localhost" and cert_b[0] == "tandem-rotated" and cert_a[1] != cert_b[1]
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))   # checks the IP SAN 127.0.0.1 too

    p = tandem(proxy_tls_cert_path=str(a_pem), proxy_tls_key_path=str(a_key))
    assert "TLS: clients on" in p.output()
    assert seen_cert(p, ctx) == cert_a
    cluster, s = connect_tandem(p, ssl_context=ctx)
    try:
        conns = driver_connections(s)
        assert conns and all(isinstance(c._socket, ssl.SSLSocket) for c in conns)
        conns0 = [id(c) for c in conns]
        ins = s.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % KV)
        sel = s.prepare("SELECT v FROM %s WHERE k = ?" % KV)
        tag = unique_key("rot")

        def step(thread, i):
            key = "%s-%d-%d" % (tag, thread, i)
            s.execute(ins, [key, key])
            got = s.execute(sel, [key]).one()
            assert got is not None and got.v == key, (key, got)
            return key

        m0 = metrics(p)
        wl = Workload(step, threads=4).start()
        time.sleep(1.5)

        # 1. rotate to B: new files, the config pointed at them, SIGHUP
        shutil.copyfile(certs / "server2.pem", b_pem)
        shutil.copyfile(certs / "server2.key", b_key)
        assert reload_tandem(p, proxy_tls_cert_path=str(b_pem), proxy_tls_key_path=str(b_key)) == 2
        assert seen_cert(p, ctx) == cert_b
        time.sleep(1.5)
        assert seen_cert(p, ctx) == cert_b
        # 2. back to A
        assert reload_tandem(p, proxy_tls_cert_path=str(a_pem), proxy_tls_key_path=str(a_key)) == 3
        assert seen_cert(p, ctx) == cert_a
        time.sleep(1.5)
        assert seen_cert(p, ctx) == cert_a
        wl.stop()
        m1 = metrics(p)
        conns1 = driver_connections(s)
        closed = [c for c in conns1 if c.is_closed or c.is_defunct]   # before shutdown closes them
    finally:
        cluster.shutdown()

    assert not wl.errors, "%d client errors, first: %r" % (len(wl.errors), wl.errors[0].error)
    outcomes = wl.done()
    assert len(outcomes) > 50, len(outcomes)
    # the workload ran across both reloads
    assert sum(1 for o in outcomes if o.t0 > outcomes[0].t0 + 2.0) > 0
    # no reconnect: the same connection objects, none closed, no new CQL handshake
    assert [id(c) for c in conns1] == conns0
    assert not closed, closed
    assert m1.value("tandem_client_handshakes_total", result="ok") == \
        m0.value("tandem_client_handshakes_total", result="ok")
    assert m1.value("tandem_config_epoch") == 3
    assert m1.value("tandem_config_reloads_total", result="applied") == 2
    assert m1.value("tandem_config_reloads_total", result="rejected") == 0
    assert m1.value("tandem_client_connections_refused_total", reason="tls") == 0

    # every acknowledged write is on both clusters (read directly at CL ALL, 100 keys at a time)
    keys = [o.value for o in outcomes]
    for name, sess in (("ORIGIN", origin_session), ("TARGET", target_session)):
        missing = []
        for i in range(0, len(keys), 100):
            chunk = keys[i:i + 100]
            stmt = SimpleStatement("SELECT k, v FROM %s WHERE k IN (%s)" % (KV, ", ".join(["%s"] * len(chunk))),
                                   consistency_level=ConsistencyLevel.ALL)
            got = {r.k: r.v for r in sess.execute(stmt, chunk)}
            missing += [k for k in chunk if got.get(k) != k]
        assert not missing, "%d of %d acknowledged writes not on %s, e.g. %s" % (len(missing), len(keys), name,
                                                                                 missing[:3])
    check_quiescent(p)

    # 3. a certificate file that is not PEM: the reload is rejected, new connections keep A
    cfg = dict(p.extra["config_values"])
    cfg["proxy_tls_cert_path"] = str(certs / "garbage.pem")
    write_tandem_config(Path(str(p.extra["config"])), cfg)
    p.send_signal(signal.SIGHUP)
    wait_for("the rejected reload in /metrics",
             lambda: metrics(p).value("tandem_config_reloads_total", result="rejected") == 1, 15)
    m2 = metrics(p)
    assert m2.value("tandem_config_epoch") == 3
    assert m2.value("tandem_config_reloads_total", result="applied") == 2
    assert "holds no usable PEM certificate" in p.output(), p.tail(10)
    assert seen_cert(p, ctx) == cert_a
    check_quiescent(p, allow=(r"reload rejected, epoch 3 kept",))
