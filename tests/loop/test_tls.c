/* TLS transport on a real loop over loopback, the working paths: echo through TLS 1.3 and TLS 1.2 with
 * writes queued before the handshake, a 1 MiB write plus 10,000 small ones, mutual TLS, SNI and IP-SAN
 * checks, hostname verification switched off, close_notify on a flush-close, plaintext and TLS clients
 * on one port (proxy_tls_allow_plaintext), and certificate rotation by tdm_tls_reload(): existing
 * sessions keep their context, new ones get the new certificate, a bad file keeps the old material.
 * Every test ends with uv_loop_close() == 0. */
#include "test_tls_env.h"
#include <tandem/conf/conf.h>

static void check_clean_close(const peer_t *client, const peer_t *server)
{
  assert_int_equal(client->closes, 1);
  assert_int_equal(client->destroys, 1);
  assert_int_equal(client->close_reason, 0); /* flush-close ended by the server's EOF */
  assert_string_equal(client->err, "");
  assert_int_equal(server->closes, 1);
  assert_int_equal(server->destroys, 1);
  assert_int_equal(server->close_reason, UV_EOF);
  assert_string_equal(server->err, "");
}

static void echo_version(int max_version, const char *version)
{
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  if (max_version) assert_int_equal(SSL_CTX_set_max_proto_version(cc->ssl, max_version), 1);
  peer_t *p = client_start(&env, 0, cc, "localhost", 0, 200, 40);
  tdm_tls_ctx_unref(cc); /* the connection holds its own reference */
  env_run(&env);
  peer_t *s = server_of(&env, p);
  assert_int_equal(p->connects, 1);
  assert_int_equal(p->rounds_done, 1);
  assert_int_equal(p->handshakes, 1);
  assert_true(p->hs_tls);
  assert_true(p->info.active && p->info.established);
  assert_string_equal(p->info.version, version);
  assert_string_equal(p->info.peer_subject, "localhost");
  assert_string_equal(p->info.sni, "localhost");
  assert_int_equal(s->handshakes, 1);
  assert_string_equal(s->info.version, version);
  assert_string_equal(s->info.sni, "localhost"); /* the SNI the server saw */
  assert_string_equal(s->info.peer_subject, ""); /* no client certificate */
  assert_true(s->close_info.peer_close_notify);  /* the client's flush-close sent close_notify */
  check_clean_close(p, s);
  if (max_version == TLS1_2_VERSION) assert_non_null(strstr(p->info.cipher, "ECDHE-ECDSA"));
  env_free(&env);
}

static void test_echo_tls13(void **state)
{
  (void)state;
  echo_version(0, "TLSv1.3");
}

static void test_echo_tls12(void **state)
{
  (void)state;
  echo_version(TLS1_2_VERSION, "TLSv1.2");
}

/* A 1 MiB write followed by 10,000 writes of 9 bytes; the echo must be byte-exact and the small
 * writes must leave in batches (one transport write per up to 256 entries), as on plain TCP. */
static void test_large_and_small(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  peer_t *p = client_start(&env, 0, cc, "localhost", 1u << 20, 10000, 9);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  assert_int_equal(p->rounds_done, 1);
  assert_int_equal(p->conn.bytes_out, (1u << 20) + 90000);
  assert_int_equal(p->conn.bytes_in, (1u << 20) + 90000);
  assert_true(p->conn.write_calls <= 10001 / TDM_CONN_BATCH_MAX + 2);
  check_clean_close(p, server_of(&env, p));
  env_free(&env);
}

static void mtls_ok(int max_version, const char *version)
{
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, "server.pem", "server.key", "ca.pem", true);
  tdm_tls_ctx_t *cc = client_ctx("TARGET", "ca.pem", "client.pem", "client.key", true);
  if (max_version) assert_int_equal(SSL_CTX_set_max_proto_version(cc->ssl, max_version), 1);
  peer_t *p = client_start(&env, 0, cc, "localhost", 0, 50, 33);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  peer_t *s = server_of(&env, p);
  assert_int_equal(p->rounds_done, 1);
  assert_string_equal(s->info.version, version);
  assert_string_equal(s->info.peer_subject, "tandem-client");
  assert_string_equal(p->info.peer_subject, "localhost");
  check_clean_close(p, s);
  env_free(&env);
}

static void test_mtls_ok_tls13(void **state)
{
  (void)state;
  mtls_ok(0, "TLSv1.3");
}

static void test_mtls_ok_tls12(void **state)
{
  (void)state;
  mtls_ok(TLS1_2_VERSION, "TLSv1.2");
}

/* Connecting by IP checks the IP SAN and sends no SNI; by name sends SNI and checks the DNS SAN. */
static void test_ip_san_and_sni(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 4);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  peer_t *by_ip = client_start(&env, 0, cc, "127.0.0.1", 0, 3, 20);
  peer_t *by_name = client_start(&env, 1, cc, "localhost", 0, 3, 20);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  assert_int_equal(by_ip->rounds_done, 1);
  assert_int_equal(by_name->rounds_done, 1);
  assert_string_equal(server_of(&env, by_ip)->info.sni, "");
  assert_string_equal(server_of(&env, by_name)->info.sni, "localhost");
  check_clean_close(by_ip, server_of(&env, by_ip));
  check_clean_close(by_name, server_of(&env, by_name));
  env_free(&env);
}

/* {c}_tls_verify_hostname: false accepts a certificate for another name; the chain is still checked. */
static void test_verify_hostname_off(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 2);
  server_ctx(&env, "other.pem", "other.key", NULL, false);
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, false);
  peer_t *p = client_start(&env, 0, cc, "localhost", 0, 2, 10);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  assert_int_equal(p->rounds_done, 1);
  assert_string_equal(p->info.peer_subject, "other.example");
  check_clean_close(p, server_of(&env, p));
  env_free(&env);
}

/* proxy_tls_allow_plaintext: the first byte tells; both kinds of client work on the same port. */
static void test_plaintext_allowed(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 4);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  env.set.allow_plaintext = true;
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  peer_t *plain = client_start(&env, 0, NULL, NULL, 0, 100, 9);
  plain->expect[0] = 0x04; /* a v4 request header's first byte: not 0x16 */
  peer_t *tls = client_start(&env, 1, cc, "localhost", 0, 100, 9);
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  peer_t *sp = server_of(&env, plain), *st = server_of(&env, tls);
  assert_int_equal(plain->rounds_done, 1);
  assert_int_equal(tls->rounds_done, 1);
  assert_int_equal(sp->handshakes, 1); /* told, with tdm_tls_active() false */
  assert_false(sp->hs_tls);
  assert_false(sp->close_info.active);
  assert_int_equal(st->handshakes, 1);
  assert_true(st->hs_tls);
  assert_true(st->close_info.active);
  check_clean_close(plain, sp);
  check_clean_close(tls, st);
  env_free(&env);
}

/* The server writes before the client's first byte: the write waits for the sniff, then leaves
 * encrypted after the handshake (TLS client) or on the plain transport (plaintext client). */
static void test_server_speaks_first(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, 4);
  server_ctx(&env, "server.pem", "server.key", NULL, false);
  env.set.allow_plaintext = true;
  env.greeting = "hello from the server";
  tdm_tls_ctx_t *cc = client_ctx("ORIGIN", "ca.pem", NULL, NULL, true);
  peer_t *tls = client_start(&env, 0, cc, "localhost", 0, 10, 9);
  peer_t *plain = client_start(&env, 1, NULL, NULL, 0, 10, 9);
  plain->expect[0] = 0x05;
  tdm_tls_ctx_unref(cc);
  env_run(&env);
  assert_int_equal(tls->greeted, strlen(env.greeting));
  assert_int_equal(plain->greeted, strlen(env.greeting));
  assert_int_equal(tls->rounds_done, 1);
  assert_int_equal(plain->rounds_done, 1);
  assert_true(server_of(&env, tls)->hs_tls);
  assert_false(server_of(&env, plain)->hs_tls);
  check_clean_close(tls, server_of(&env, tls));
  check_clean_close(plain, server_of(&env, plain));
  env_free(&env);
}

/* ---- certificate rotation ---- */

typedef struct reload_s {
  tdm_conf_t *conf_a;      /* server.pem */
  tdm_conf_t *conf_b;      /* server2.pem (rotated) */
  tdm_conf_t *conf_bad;    /* garbage.pem as the certificate */
  tdm_conf_t *conf_gone;   /* a certificate file that does not exist */
  tdm_tls_ctx_t *ctx_a;    /* the context of the first connection */
  tdm_tls_ctx_t *ctx_b;    /* the rotated context */
  int reloads;             /* successful reloads done in the callback */
} reload_t;

static tdm_conf_t *conf_with(const char *cert_name, const char *key_name)
{
  char yaml[2048];
  snprintf(yaml, sizeof(yaml),
           "origin_contact_points: 127.0.0.1\n"
           "target_contact_points: 127.0.0.1\n"
           "origin_tls_server_ca_path: %s/ca.pem\n"
           "proxy_tls_cert_path: %s/%s\n"
           "proxy_tls_key_path: %s/%s\n",
           certs_dir(), certs_dir(), cert_name, certs_dir(), key_name);
  tdm_conf_t *conf = NULL;
  tdm_conf_diag_t d = { 0 };
  int rc = tdm_conf_load_buffer("tls.yaml", yaml, strlen(yaml), NULL, &conf, &d);
  if (rc) fail_msg("conf: %s", d.message ? d.message : tdm_strerror(rc));
  tdm_conf_diag_free(&d);
  return conf;
}

static void reload_round(peer_t *p)
{
  env_t *env = p->env;
  reload_t *r = env->scenario;
  char err[TDM_TLS_ERR_MAX];
  if (p->idx == 0 && p->rounds_done == 1) {
    /* rotate while connection 0 is open */
    assert_int_equal(tdm_tls_reload(&env->set, r->conf_b, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    r->reloads++;
    r->ctx_b = env->set.client;
    assert_ptr_not_equal(r->ctx_b, r->ctx_a);
    assert_int_equal(atomic_load(&r->ctx_a->refs), 1); /* only connection 0's session holds it now */
    /* a bad file rejects the reload and keeps the rotated material */
    assert_int_equal(tdm_tls_reload(&env->set, r->conf_bad, err, sizeof(err)), TDM_ETLS_FILE);
    const char *want = msgf("client TLS: certificate file '%s/garbage.pem' holds no usable PEM certificate",
                            certs_dir());
    assert_int_equal(strncmp(err, want, strlen(want)), 0);
    assert_int_equal(tdm_tls_reload(&env->set, r->conf_gone, err, sizeof(err)), TDM_ETLS_FILE);
    assert_string_equal(err, msgf("client TLS: cannot read certificate file '%s/missing.pem': No such file or "
                                  "directory", certs_dir()));
    assert_ptr_equal(env->set.client, r->ctx_b);
    client_start(env, 1, env->set.cluster[TDM_CONF_ORIGIN], "localhost", 0, 20, 30);
  } else if (p->idx == 1) {
    assert_string_equal(p->info.peer_subject, "tandem-rotated"); /* new connection, new certificate */
    client_send(&env->clients[0]);                               /* the old session still works */
    tdm_conn_close_after_flush(&p->conn, 5000);
  } else {
    assert_int_equal(p->rounds_done, 2);
    tdm_conn_close_after_flush(&p->conn, 5000);
  }
}

static void test_reload_rotation(void **state)
{
  (void)state;
  reload_t r = { 0 };
  r.conf_a = conf_with("server.pem", "server.key");
  r.conf_b = conf_with("server2.pem", "server2.key");
  r.conf_bad = conf_with("garbage.pem", "server.key");
  r.conf_gone = conf_with("missing.pem", "server.key");
  env_t env;
  env_init(&env, 4);
  env.scenario = &r;
  env.on_round = reload_round;
  char err[TDM_TLS_ERR_MAX];
  assert_int_equal(tdm_tls_reload(&env.set, r.conf_a, err, sizeof(err)), 0);
  assert_non_null(env.set.client);
  assert_non_null(env.set.cluster[TDM_CONF_ORIGIN]);
  assert_null(env.set.cluster[TDM_CONF_TARGET]);
  r.ctx_a = env.set.client;
  client_start(&env, 0, env.set.cluster[TDM_CONF_ORIGIN], "localhost", 0, 20, 30);
  env_run(&env);
  assert_int_equal(r.reloads, 1);
  assert_int_equal(env.clients[0].rounds_done, 2);
  assert_int_equal(env.clients[1].rounds_done, 1);
  assert_string_equal(env.clients[0].info.peer_subject, "localhost");
  assert_string_equal(env.clients[1].info.peer_subject, "tandem-rotated");
  check_clean_close(&env.clients[0], server_of(&env, &env.clients[0]));
  check_clean_close(&env.clients[1], server_of(&env, &env.clients[1]));
  assert_int_equal(atomic_load(&r.ctx_b->refs), 1); /* the set's; ctx_a is gone with its connection */
  env_free(&env);
  tdm_conf_unref(r.conf_a);
  tdm_conf_unref(r.conf_b);
  tdm_conf_unref(r.conf_bad);
  tdm_conf_unref(r.conf_gone);
}

int main(void)
{
  (void)certs_dir();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_echo_tls13),       cmocka_unit_test(test_echo_tls12),
    cmocka_unit_test(test_large_and_small),  cmocka_unit_test(test_mtls_ok_tls13),
    cmocka_unit_test(test_mtls_ok_tls12),    cmocka_unit_test(test_ip_san_and_sni),
    cmocka_unit_test(test_verify_hostname_off), cmocka_unit_test(test_plaintext_allowed),
    cmocka_unit_test(test_server_speaks_first), cmocka_unit_test(test_reload_rotation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
