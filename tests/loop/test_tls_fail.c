/* TLS transport on a real loop, the refusals: a missing or untrusted client certificate under mutual
 * TLS (TLS 1.3 and 1.2; only that socket closes while a good client on the same listener echoes), a
 * server certificate from the wrong CA, an expired one, one for another name or address, plaintext
 * on a TLS-only port, TLS against a plaintext server, a peer offering only TLS 1.1, and a peer that
 * leaves in the middle of the handshake. Each side must close with the right TDM_ETLS_* code and the
 * exact message naming the leg, the file and the cause. Every test ends with uv_loop_close() == 0. */
#include "test_tls_env.h"

static void expect_err(const peer_t *p, int reason, const char *msg)
{
  assert_int_equal(p->closes, 1);
  assert_int_equal(p->destroys, 1);
  if (strcmp(p->err, msg) != 0) fail_msg("message:\n  got:  %s\n  want: %s", p->err, msg);
  if (p->close_reason != reason)
    fail_msg("reason: got %s (%d), want %s", tdm_tls_strerror(p->close_reason), p->close_reason,
             tdm_tls_strerror(reason));
}

static void expect_echo_ok(env_t *env, const peer_t *p)
{
  const peer_t *s = server_of(env, p);
  assert_int_equal(p->rounds_done, 1);
  assert_int_equal(p->close_reason, 0);
  assert_string_equal(p->err, "");
  assert_int_equal(s->close_reason, UV_EOF);
  assert_string_equal(s->err, "");
}

/* mTLS: client 0 has no certificate, client 1 has a good one and must not notice. */
static void missing_client_cert(int max_version)
{
  env_t env;
  env_init(&env, 4);
  server_ctx(&env, "server.pem", "server.key", "ca.pem", true);
  tdm_tls_ctx_t *none = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  tdm_tls_ctx_t *good = client_ctx("ORIGIN", "ca.pem", "client.pem", "client.key", true);
  SSL_CTX_set_max_proto_version(none->ssl, max_version);
  SSL_CTX_set_max_proto_version(good->ssl, max_version);
  peer_t *bad = client_start(&env, 0, none, "localhost", 0, 5, 10);
  peer_t *ok = client_start(&env, 1, good, "localhost", 0, 50, 10);
  tdm_tls_ctx_unref(none);
  tdm_tls_ctx_unref(good);
  env_run(&env);
  expect_err(server_of(&env, bad), TDM_ETLS_VERIFY,
             msgf("client TLS: peer did not return a certificate (client certificates are required, CA file "
                  "'%s/ca.pem')", env.dir));
  if (max_version == TLS1_3_VERSION) {
    /* TLS 1.3: the client finishes its side first; the refusal arrives as an alert afterwards */
    assert_int_equal(bad->handshakes, 1);
    expect_err(bad, TDM_ETLS_REJECTED, "ORIGIN TLS: peer requires a client certificate (no client certificate "
                                       "configured)");
  } else {
    assert_int_equal(bad->handshakes, 0);
    expect_err(bad, TDM_ETLS_REJECTED, "ORIGIN TLS: peer aborted the handshake (handshake failure; no client "
                                       "certificate configured: does it require one?)");
  }
  assert_int_equal(bad->rounds_done, 0);
  assert_int_equal(server_of(&env, bad)->handshakes, 0);
  expect_echo_ok(&env, ok);
  assert_string_equal(server_of(&env, ok)->info.peer_subject, "tandem-client");
  env_free(&env);
}

static void test_missing_client_cert_tls13(void **state)
{
  (void)state;
  missing_client_cert(TLS1_3_VERSION);
}

static void test_missing_client_cert_tls12(void **state)
{
  (void)state;
  missing_client_cert(TLS1_2_VERSION);
}

static void test_untrusted_client_cert(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 4);
  server_ctx(&env, "server.pem", "server.key", "ca.pem", true);
  tdm_tls_ctx_t *stranger = client_ctx("TARGET", "ca.pem", "client_ca2.pem", "client_ca2.key", true);
  tdm_tls_ctx_t *good = client_ctx("TARGET", "ca.pem", "client.pem", "client.key", true);
  peer_t *bad = client_start(&env, 0, stranger, "localhost", 0, 0, 0);
  peer_t *ok = client_start(&env, 1, good, "localhost", 0, 10, 10);
  tdm_tls_ctx_unref(stranger);
  tdm_tls_ctx_unref(good);
  env_run(&env);
  expect_err(server_of(&env, bad), TDM_ETLS_VERIFY,
             msgf("client TLS: unknown CA (client certificate, CA file '%s/ca.pem')", env.dir));
  expect_err(bad, TDM_ETLS_REJECTED,
             msgf("TARGET TLS: peer rejected our certificate: unknown CA (our certificate file "
                  "'%s/client_ca2.pem')", env.dir));
  expect_echo_ok(&env, ok);
  env_free(&env);
}

/* The server presents `cert_name`; the client (leg, name) must refuse it with client_msg and the server
 * must hear why (server_msg, or NULL to skip). */
static void server_cert_refused(const char *cert_name, const char *key_name, const char *leg, const char *name,
                                const char *client_msg, const char *server_msg)
{
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, cert_name, key_name, NULL, false);
  tdm_tls_ctx_t *cc = client_ctx(leg, "ca.pem", NULL, NULL, true);
  peer_t *p = client_start(&env, 0, cc, name, 0, 4, 10);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  expect_err(p, TDM_ETLS_VERIFY, client_msg);
  assert_int_equal(p->handshakes, 0);
  assert_int_equal(p->rounds_done, 0);
  if (server_msg) expect_err(server_of(&env, p), TDM_ETLS_REJECTED, server_msg);
  env_free(&env);
}

static void test_wrong_ca(void **state)
{
  (void)state;
  const char *d = certs_dir();
  char cmsg[TDM_TLS_ERR_MAX];
  snprintf(cmsg, sizeof(cmsg), "%s", msgf("ORIGIN TLS: unknown CA (server certificate, CA file '%s/ca.pem')", d));
  server_cert_refused("server_ca2.pem", "server_ca2.key", "ORIGIN", "localhost", cmsg,
                      msgf("client TLS: peer rejected our certificate: unknown CA (our certificate file "
                           "'%s/server_ca2.pem')", d));
}

static void test_expired(void **state)
{
  (void)state;
  const char *d = certs_dir();
  char cmsg[TDM_TLS_ERR_MAX];
  snprintf(cmsg, sizeof(cmsg), "%s",
           msgf("TARGET TLS: certificate has expired (server certificate, CA file '%s/ca.pem')", d));
  server_cert_refused("expired.pem", "expired.key", "TARGET", "localhost", cmsg,
                      msgf("client TLS: peer rejected our certificate: certificate has expired (our certificate "
                           "file '%s/expired.pem')", d));
}

static void test_name_mismatch(void **state)
{
  (void)state;
  const char *d = certs_dir();
  char cmsg[TDM_TLS_ERR_MAX];
  snprintf(cmsg, sizeof(cmsg), "%s",
           msgf("ORIGIN TLS: hostname mismatch: certificate is not valid for 'localhost' (server certificate, CA "
                "file '%s/ca.pem')", d));
  server_cert_refused("other.pem", "other.key", "ORIGIN", "localhost", cmsg, NULL);
  snprintf(cmsg, sizeof(cmsg), "%s",
           msgf("ORIGIN TLS: hostname mismatch: certificate is not valid for '127.0.0.1' (server certificate, CA "
                "file '%s/ca.pem')", d));
  server_cert_refused("other.pem", "other.key", "ORIGIN", "127.0.0.1", cmsg,
                      msgf("client TLS: peer rejected our certificate: bad certificate (our certificate file "
                           "'%s/other.pem')", d));
}

/* Plaintext CQL on a TLS-only port: refused at the first byte, nothing written back. */
static void test_plaintext_refused(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  peer_t *p = client_start(&env, 0, NULL, NULL, 0, 1, 9);
  static const uint8_t options[9] = { 0x04, 0, 0, 1, 0x05, 0, 0, 0, 0 }; /* a v4 OPTIONS request */
  memcpy(p->expect, options, sizeof(options));
  env_run(&env);
  peer_t *s = server_of(&env, p);
  expect_err(s, TDM_ETLS_PLAINTEXT, "client TLS: plaintext connection refused: TLS is required on this port "
                                    "(proxy_tls_allow_plaintext is off)");
  assert_int_equal(s->handshakes, 0);
  assert_int_equal(p->received, 0);
  assert_int_equal(p->close_reason, UV_EOF);
  env_free(&env);
}

/* A plaintext server answers our ClientHello with a CQL frame header. */
static int cql_reply(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  (void)data;
  static const uint8_t hdr[9] = { 0x84, 0, 0, 0, 0, 0, 0, 0, 0 };
  int rc = tdm_conn_write_bytes(c, hdr, sizeof(hdr));
  return rc < 0 ? rc : (int)len;
}

static const tdm_conn_hooks_t plain_server_hooks = {
  .on_data = cql_reply, .on_close = peer_on_close, .on_destroy = peer_on_destroy
};

static void test_tls_to_plaintext_server(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 2);
  env.server_hooks = &plain_server_hooks;
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  peer_t *p = client_start(&env, 0, cc, "localhost", 0, 1, 9);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  expect_err(p, TDM_ETLS_HANDSHAKE, "ORIGIN TLS: peer is not speaking TLS (is TLS enabled on both sides?)");
  assert_false(tdm_tls_is_error(server_of(&env, p)->close_reason));
  env_free(&env);
}

/* A client that offers TLS 1.1 at most is refused by the server. */
static void test_old_protocol_refused(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  SSL_CTX_set_security_level(cc->ssl, 0); /* let this client build a TLS 1.1 ClientHello at all */
  assert_int_equal(SSL_CTX_set_min_proto_version(cc->ssl, TLS1_VERSION), 1);
  assert_int_equal(SSL_CTX_set_max_proto_version(cc->ssl, TLS1_1_VERSION), 1);
  peer_t *p = client_start(&env, 0, cc, "localhost", 0, 1, 9);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  expect_err(server_of(&env, p), TDM_ETLS_HANDSHAKE,
             "client TLS: protocol version not accepted (tandem accepts TLS 1.2 and 1.3 only)");
  expect_err(p, TDM_ETLS_HANDSHAKE, "ORIGIN TLS: peer refused the protocol version (tandem offers TLS 1.2 and "
                                    "1.3 only)");
  env_free(&env);
}

/* A peer that starts a handshake (0x16 ...) and leaves. */
static void test_peer_leaves_mid_handshake(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  peer_t *p = client_start(&env, 0, NULL, NULL, 0, 1, 5);
  static const uint8_t start[5] = { 0x16, 0x03, 0x01, 0x02, 0x00 }; /* a record header, body never sent */
  memcpy(p->expect, start, sizeof(start));
  p->close_after_send = true;
  env_run(&env);
  expect_err(server_of(&env, p), TDM_ETLS_HANDSHAKE,
             "client TLS: connection closed by the peer during the handshake");
  assert_int_equal(p->close_reason, 0);
  env_free(&env);
}

int main(void)
{
  (void)certs_dir();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_missing_client_cert_tls13), cmocka_unit_test(test_missing_client_cert_tls12),
    cmocka_unit_test(test_untrusted_client_cert),     cmocka_unit_test(test_wrong_ca),
    cmocka_unit_test(test_expired),                   cmocka_unit_test(test_name_mismatch),
    cmocka_unit_test(test_plaintext_refused),         cmocka_unit_test(test_tls_to_plaintext_server),
    cmocka_unit_test(test_old_protocol_refused),      cmocka_unit_test(test_peer_leaves_mid_handshake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
