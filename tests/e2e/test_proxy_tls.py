"""TLS on every leg with real Cassandra 5.0 in client-TLS mode (behaviour.md §11.4; secure pass only).

tandem reaches both clusters over TLS (CA = build/cassandra/tls/node.crt, hostname verification on:
the contact points are IP literals checked against the node certificate's IP SANs 127.0.0.1-.5) and
serves clients over TLS with tests/data/tls/gen.sh's server certificate. The Python driver connects
to tandem with an ssl_context, then over mutual TLS, and its writes land on both clusters. A wrong CA
or a name the node certificate does not carry keeps that cluster's control connection down with a
message naming the leg, the cause and the file; hostname verification switched off logs a WARN.
"""
import json
import os
import signal
import ssl
import subprocess
from pathlib import Path

import pytest
from cassandra.cluster import NoHostAvailable

import harness
from harness import (BUILD, KEYSPACE, ROOT, check_quiescent, connect_tandem, driver_connections, http_get,
                     metrics, read_kv, unique_key, wait_for, write_tandem_config)

pytestmark = pytest.mark.tls

TLS_MATERIAL = BUILD / "tls-test"


@pytest.fixture(scope="module")
def certs() -> Path:
    """tandem's client-facing material: test CA, server certificate (IP SAN 127.0.0.1), client pair."""
    subprocess.run(["sh", str(ROOT / "tests" / "data" / "tls" / "gen.sh"), str(TLS_MATERIAL)], check=True,
                   timeout=120)
    return TLS_MATERIAL


def client_tls(certs: Path, proxy_tls: bool = True, mutual: bool = False) -> dict:
    """tandem keys for client-facing TLS (mutual: client certificates required)."""
    if not proxy_tls:
        return {}
    keys = {"proxy_tls_cert_path": str(certs / "server.pem"), "proxy_tls_key_path": str(certs / "server.key")}
    if mutual:
        keys.update(proxy_tls_ca_path=str(certs / "ca.pem"), proxy_tls_require_client_auth=True)
    return keys


def driver_context(certs: Path, client_cert: bool = False) -> ssl.SSLContext:
    """What an application configures: trust tandem's CA, check its name (127.0.0.1 is an IP SAN)."""
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    return ctx


def client_credentials(clusters):
    """The client's own login in the secure pass (TARGET checks client credentials by default)."""
    return clusters.target.app if clusters.auth else None


def tandem_sessions_on(session):
    """(ssl_enabled, ssl_protocol) of the connections tandem (DRIVER_NAME 'tandem') holds to the
    cluster of `session`."""
    rows = session.execute("SELECT driver_name, ssl_enabled, ssl_protocol FROM system_views.clients")
    return [(r.ssl_enabled, r.ssl_protocol) for r in rows if r.driver_name == "tandem"]


def write_and_check(s, origin_session, target_session, tag):
    k = unique_key(tag)
    s.execute("INSERT INTO %s.kv (k, v) VALUES (%%s, %%s)" % KEYSPACE, [k, tag])
    assert s.execute("SELECT v FROM %s.kv WHERE k = %%s" % KEYSPACE, [k]).one().v == tag
    o, t = read_kv(origin_session, k), read_kv(target_session, k)
    assert o is not None and o["v"] == tag
    assert o == t, "the write did not land identically on both clusters: %r / %r" % (o, t)


@pytest.mark.parametrize("version", [4, 5])
def test_driver_over_tls_every_leg(tandem, clusters, schema, origin_session, target_session, certs, version):
    assert clusters.tls and clusters.origin.tls_ca, "the tls marker should have skipped this layout"
    p = tandem(**client_tls(certs))
    assert "TLS: clients on; ORIGIN on (names checked); TARGET on (names checked)" in p.output()
    cluster, s = connect_tandem(p, credentials=client_credentials(clusters), protocol_version=version,
                                ssl_context=driver_context(certs))
    try:
        for c in driver_connections(s):
            sock = c._socket
            assert isinstance(sock, ssl.SSLSocket), "driver connection %s is not TLS" % c
            assert sock.version() in ("TLSv1.2", "TLSv1.3")
            subject = dict(x[0] for x in sock.getpeercert()["subject"])
            assert subject["commonName"] == "localhost"     # tandem's certificate, not a node's
            assert c.protocol_version == version
        write_and_check(s, origin_session, target_session, "tls-v%d" % version)
    finally:
        cluster.shutdown()
    # tandem's own connections to each cluster are TLS sessions
    for name, sess in (("ORIGIN", origin_session), ("TARGET", target_session)):
        legs = tandem_sessions_on(sess)
        assert legs, "no tandem connection on %s" % name
        assert all(enabled and proto in ("TLSv1.2", "TLSv1.3") for enabled, proto in legs), (name, legs)
    assert metrics(p).value("tandem_client_connections_refused_total", reason="tls") == 0
    check_quiescent(p)


def test_driver_over_mutual_tls(tandem, clusters, schema, origin_session, target_session, certs):
    p = tandem(**client_tls(certs, mutual=True))
    assert "TLS: clients on (client certificates required)" in p.output()
    creds = client_credentials(clusters)
    cluster, s = connect_tandem(p, credentials=creds, ssl_context=driver_context(certs, client_cert=True))
    try:
        write_and_check(s, origin_session, target_session, "mtls")
        # a client without a certificate is refused at the TLS layer; the session above goes on
        with pytest.raises(NoHostAvailable):
            c, _ = connect_tandem(p, credentials=creds, ssl_context=driver_context(certs))
            c.shutdown()
        wait_for("the refusal to be counted",
                 lambda: metrics(p).value("tandem_client_connections_refused_total", reason="tls") >= 1, 10)
        assert "client TLS: peer did not return a certificate (client certificates are required" in p.output()
        write_and_check(s, origin_session, target_session, "mtls-after-refusal")
    finally:
        cluster.shutdown()
    check_quiescent(p, allow=[r"TLS handshake refused: client TLS: peer did not return a certificate"])


# --------------------------------------------------------------------------- cluster-side failures
def start_unready_tandem(tmp_path, clusters, name, **overrides):
    """build/tandem against the real clusters whose client listener may never open (a cluster it
    cannot reach): started like the `tandem` fixture's, but ready once /metrics answers."""
    metrics_port = harness.free_port()
    cfg = {"origin_contact_points": clusters.origin.contact_points, "origin_port": clusters.origin.port,
           "target_contact_points": clusters.target.contact_points, "target_port": clusters.target.port,
           "proxy_listen_address": "127.0.0.1", "proxy_listen_port": harness.free_port(),
           "metrics_address": "127.0.0.1", "metrics_port": metrics_port,
           "heartbeat_retry_interval_min_ms": 100, "heartbeat_retry_interval_max_ms": 500, "log_level": "INFO"}
    for c in clusters:
        if c.app is not None:
            cfg["%s_username" % c.name] = c.app.username
            cfg["%s_password" % c.name] = c.app.password
        cfg["%s_tls_server_ca_path" % c.name] = c.tls_ca
    cfg.update(overrides)
    path = write_tandem_config(tmp_path / ("%s.yaml" % name), cfg)
    binary = Path(os.environ.get("TANDEM_BIN", BUILD / "tandem"))
    p = harness.start_process("tandem", [str(binary), "--config=%s" % path], tmp_path / ("%s.log" % name),
                              "127.0.0.1", metrics_port, 30, drop_env=harness.HARNESS_ENV)
    p.extra.update(config=path, config_values=cfg, metrics_port=metrics_port)
    return p


def origin_status(p):
    """The "origin" member of /api/v1/status's "clusters"."""
    status, body = http_get("127.0.0.1", int(p.extra["metrics_port"]), "/api/v1/status")
    assert status == 200, body
    return json.loads(body)["clusters"]["origin"]


@pytest.mark.parametrize("case", ["wrong_ca", "name_mismatch"])
def test_cluster_tls_failure_is_named(tmp_path, clusters, certs, case):
    if case == "wrong_ca":
        # the test CA did not sign the node certificate
        overrides = {"origin_tls_server_ca_path": str(certs / "ca.pem")}
        want = "ORIGIN TLS: unknown CA (server certificate, CA file '%s')" % (certs / "ca.pem")
    else:
        # node.crt carries IP SANs and DNS:localhost, not this name
        overrides = {"origin_tls_server_name": "cassandra.invalid"}
        want = ("ORIGIN TLS: hostname mismatch: certificate is not valid for 'cassandra.invalid' (server "
                "certificate, CA file '%s')" % clusters.origin.tls_ca)
    p = start_unready_tandem(tmp_path, clusters, case, **overrides)
    try:
        wait_for("the ORIGIN control connection's TLS error in the log", lambda: want in p.output(), 30, 0.2)
        assert "ORIGIN control connection down (%s:%d: %s" % (clusters.origin.hosts[0], clusters.origin.port,
                                                                 want) in p.output()
        wait_for("the error in /api/v1/status", lambda: want in (origin_status(p).get("last_error") or ""), 10)
        status, _ = http_get("127.0.0.1", int(p.extra["metrics_port"]), "/health/readiness")
        assert status != 200
        assert "accepting clients" not in p.output()
        # the right material by reload: ORIGIN comes up, clients are served
        cfg = dict(p.extra["config_values"])
        cfg.update(origin_tls_server_ca_path=clusters.origin.tls_ca, origin_tls_server_name=None)
        write_tandem_config(Path(str(p.extra["config"])), cfg)
        p.send_signal(signal.SIGHUP)
        wait_for("readiness UP after the reload",
                 lambda: http_get("127.0.0.1", int(p.extra["metrics_port"]), "/health/readiness")[0] == 200, 30, 0.2)
    finally:
        rc = p.stop(timeout=20)
    assert rc == 0, p.tail()


def test_cluster_tls_without_hostname_check_warns(tandem, clusters, schema, origin_session, target_session,
                                                  certs):
    """origin_tls_verify_hostname: false accepts a certificate for another name (the chain is still
    checked) and says so at start."""
    p = tandem(origin_tls_server_name="cassandra.invalid", origin_tls_verify_hostname=False)
    assert ("'origin_tls_verify_hostname' is false: ORIGIN node certificates are not checked against the host "
            "name") in p.output()
    assert "ORIGIN on (names NOT checked, name 'cassandra.invalid')" in p.output()
    cluster, s = connect_tandem(p, credentials=client_credentials(clusters))
    try:
        write_and_check(s, origin_session, target_session, "no-name-check")
    finally:
        cluster.shutdown()
    check_quiescent(p, allow=[r"'origin_tls_verify_hostname' is false"])
