/* build/tandem with TLS on every leg (behaviour.md §11.4, §1.4): a raw OpenSSL client does a CQL
 * handshake and writes through tandem over mutual TLS; a client without a certificate and a plaintext
 * client are refused with only their socket closed (counted, WARN naming the cause); a reload that
 * swaps the server certificate serves the new one (subject and serial) to new connections while an
 * open one keeps working; a reload with a bad certificate file is rejected and the old material kept;
 * on the cluster side, a wrong CA and a name mismatch show up as the control connection's error, a
 * reload with the right material brings it up, and a pool connection refused by TLS gives the client
 * SERVER_ERROR "tandem: cannot open a session to TARGET (<node>): TARGET TLS: ...".
 *
 * cqlmock speaks no TLS, so each cluster sits behind a TLS-terminating relay that runs tandem's own
 * TLS transport (server role) on a libuv loop in a thread: ORIGIN one-way TLS, TARGET mutual TLS. */
#include <stdatomic.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <tandem/core/listener.h>
#include <tandem/net/conn.h>
#include <tandem/net/tls.h>
#include <tandem/proto/request.h>
#include <tandem/util/queue.h>
#include "test_instance_harness.h"

/* ---- certificates (tests/data/tls/gen.sh) ---- */

static char g_certs[512]; /* material directory, generated once per process */

static const char *certs_dir(void)
{
  if (g_certs[0]) return g_certs;
  const char *src = getenv("TDM_SOURCE_DIR");
  const char *bld = getenv("TDM_BUILD_DIR");
  char cmd[1200];
  snprintf(g_certs, sizeof(g_certs), "%s/tls-test", bld && *bld ? bld : "build");
  snprintf(cmd, sizeof(cmd), "sh '%s/tests/data/tls/gen.sh' '%s'", src && *src ? src : ".", g_certs);
  if (system(cmd) != 0) fail_msg("certificate generation failed: %s", cmd);
  return g_certs;
}

/* certs_dir()/name in one of a few rotating buffers (enough for one call's arguments). */
static const char *cert(const char *name)
{
  static char bufs[8][600];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, sizeof(bufs[0]), "%s/%s", certs_dir(), name);
  return b;
}

/* The serial number of a PEM certificate file, as upper-case hex. */
static void serial_of_file(const char *path, char *out, size_t cap)
{
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  assert_non_null(x);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
  char *hex = BN_bn2hex(bn);
  snprintf(out, cap, "%s", hex);
  OPENSSL_free(hex);
  BN_free(bn);
  X509_free(x);
}

static void copy_file(const char *from, const char *to)
{
  char *text = tdm_it_read_file(from);
  assert_true(text[0] != '\0');
  tdm_it_write_file(to, text); /* write + rename: a reload never reads half a file */
  free(text);
}

/* ---- the TLS-terminating relay in front of a mock node ---- */

typedef struct relay_s {
  uv_thread_t thread;     /* runs loop until stopped */
  uv_loop_t loop;         /* the relay's own loop */
  uv_async_t stop;        /* wakes the loop to close everything */
  tdm_conn_ctx_t ctx;     /* connection context on loop */
  tdm_listener_t lst;     /* TLS side, 127.0.0.1:port */
  tdm_tls_ctx_t *tls;     /* server context (one reference) */
  tdm_sockaddr_t target;  /* the mock node, plaintext */
  uint16_t port;          /* bound port of lst */
  tdm_list_t pairs;       /* live relayed connections (loop thread only) */
  int loop_close_rc;      /* uv_loop_close() at the end: 0 = no handle leaked */
  _Atomic int handshakes; /* TLS handshakes completed */
  _Atomic int failures;   /* TLS sessions that failed */
  uv_mutex_t mu;          /* guards the two strings below */
  char subject[256];      /* client certificate subject of the last handshake ("" none) */
  char sni[256];          /* SNI of the last handshake ("" none) */
} relay_t;

/* One relayed connection: TLS from tandem in front, plaintext to the mock behind. */
typedef struct rpair_s {
  tdm_conn_t front; /* accepted, TLS (server role) */
  tdm_conn_t back;  /* to the mock node */
  relay_t *r;       /* owner */
  tdm_list_t link;  /* r->pairs until either side closes */
  int live;         /* connections not yet destroyed; the pair is freed at 0 */
} rpair_t;

static tdm_conn_t *other_of(rpair_t *p, tdm_conn_t *c) { return c == &p->front ? &p->back : &p->front; }

static int pair_on_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  rpair_t *p = c->data;
  tdm_conn_t *o = other_of(p, c);
  if (!tdm_conn_is_closing(o) && tdm_conn_write_bytes(o, data, len) < 0) return TDM_ENOMEM;
  return (int)len;
}

static void pair_on_close(tdm_conn_t *c, int reason)
{
  rpair_t *p = c->data;
  tdm_list_remove(&p->link);
  if (c == &p->front && tdm_tls_is_error(reason)) atomic_fetch_add(&p->r->failures, 1);
  tdm_conn_t *o = other_of(p, c);
  if (!tdm_conn_is_closing(o)) tdm_conn_close_after_flush(o, 500); /* an answer on its way still arrives */
}

static void pair_on_destroy(tdm_conn_t *c)
{
  rpair_t *p = c->data;
  if (--p->live == 0) free(p);
}

static const tdm_conn_hooks_t pair_hooks = {
  .on_data = pair_on_data,
  .on_close = pair_on_close,
  .on_destroy = pair_on_destroy,
};

static void front_on_tls(tdm_conn_t *c, int status)
{
  rpair_t *p = c->data;
  tdm_tls_info_t info;
  (void)tdm_tls_info(c, &info);
  uv_mutex_lock(&p->r->mu);
  snprintf(p->r->subject, sizeof(p->r->subject), "%s", info.peer_subject);
  snprintf(p->r->sni, sizeof(p->r->sni), "%s", info.sni);
  uv_mutex_unlock(&p->r->mu);
  atomic_fetch_add(&p->r->handshakes, 1);
}

static void back_on_connected(tdm_conn_t *c, int status)
{
  rpair_t *p = c->data;
  if (status < 0 || tdm_conn_is_closing(&p->front)) {
    tdm_conn_close(&p->front, status < 0 ? status : TDM_ECLOSED);
    return;
  }
  /* the TLS side is read only once the mock is reachable, so nothing waits in between */
  if (tdm_conn_read_start(&p->front) < 0 || tdm_conn_read_start(&p->back) < 0) tdm_conn_close(&p->front, TDM_ECLOSED);
}

static int relay_on_accept(tdm_listener_t *l, uv_os_sock_t fd, const tdm_sockaddr_t *peer)
{
  relay_t *r = l->data;
  rpair_t *p = calloc(1, sizeof(*p));
  TDM_ASSERT(p != NULL); /* relay thread: cmocka's asserts belong to the test thread */
  p->r = r;
  p->live = 2;
  TDM_ASSERT(tdm_conn_init(&p->front, &r->ctx, &pair_hooks, p) == 0);
  TDM_ASSERT(tdm_conn_init(&p->back, &r->ctx, &pair_hooks, p) == 0);
  tdm_list_insert_tail(&r->pairs, &p->link);
  if (tdm_conn_open(&p->front, fd) < 0) return 0; /* closing: on_close closes the back */
  if (tdm_tls_server(&p->front, r->tls, false, front_on_tls) < 0) {
    tdm_conn_close(&p->front, TDM_ENOMEM);
    return 0;
  }
  (void)tdm_conn_connect(&p->back, &r->target, 3000, back_on_connected); /* a failure closes both */
  return 0;
}

static void relay_on_stop(uv_async_t *a)
{
  relay_t *r = a->data;
  tdm_listener_close(&r->lst, NULL);
  TDM_LIST_FOREACH_SAFE(it, tmp, &r->pairs)
  {
    rpair_t *p = TDM_CONTAINER_OF(it, rpair_t, link);
    tdm_conn_close(&p->front, TDM_ECLOSED);
    tdm_conn_close(&p->back, TDM_ECLOSED);
  }
  uv_close((uv_handle_t *)&r->stop, NULL);
  tdm_conn_ctx_close(&r->ctx, NULL);
}

static void relay_main(void *arg)
{
  relay_t *r = arg;
  uv_run(&r->loop, UV_RUN_DEFAULT);
  r->loop_close_rc = uv_loop_close(&r->loop);
}

/* Everything is created here, on the test thread, before the relay's thread starts its loop. */
static void relay_start(relay_t *r, uint16_t mock_port, const char *ca, bool require_client_cert)
{
  memset(r, 0, sizeof(*r));
  char err[TDM_TLS_ERR_MAX];
  assert_int_equal(uv_loop_init(&r->loop), 0);
  assert_int_equal(tdm_conn_ctx_init(&r->ctx, &r->loop), 0);
  if (tdm_tls_server_ctx_new(cert("server.pem"), cert("server.key"), ca, require_client_cert, &r->tls, err,
                             sizeof(err)) != 0)
    fail_msg("relay context: %s", err);
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", mock_port, &r->target), 0);
  tdm_list_init(&r->pairs);
  assert_int_equal(tdm_listener_open_host(&r->lst, &r->loop, "127.0.0.1", 0, 0, relay_on_accept, r), 0);
  r->port = tdm_listener_port(&r->lst);
  assert_int_equal(uv_async_init(&r->loop, &r->stop, relay_on_stop), 0);
  r->stop.data = r;
  assert_int_equal(uv_mutex_init(&r->mu), 0);
  assert_int_equal(uv_thread_create(&r->thread, relay_main, r), 0);
}

static void relay_stop(relay_t *r)
{
  assert_int_equal(uv_async_send(&r->stop), 0);
  assert_int_equal(uv_thread_join(&r->thread), 0);
  assert_int_equal(r->loop_close_rc, 0);
  tdm_tls_ctx_unref(r->tls);
  uv_mutex_destroy(&r->mu);
}

/* The relay's last subject / SNI. */
static void relay_seen(relay_t *r, char *subject, char *sni, size_t cap)
{
  uv_mutex_lock(&r->mu);
  snprintf(subject, cap, "%s", r->subject);
  snprintf(sni, cap, "%s", r->sni);
  uv_mutex_unlock(&r->mu);
}

/* ---- a raw TLS CQL client (OpenSSL, blocking, v4 frames) ---- */

typedef struct tcli_s {
  int fd;            /* socket, -1 when closed */
  uint8_t version;   /* protocol version of the frames sent (v4 unless changed after open) */
  SSL_CTX *ctx;      /* verifies tandem against ca.pem and the IP SAN 127.0.0.1 */
  SSL *ssl;          /* the session */
  char subject[256]; /* tandem's certificate: subject CN */
  char serial[128];  /* and serial number (hex) */
} tcli_t;

static void tcli_close(tcli_t *t)
{
  if (t->ssl) SSL_free(t->ssl);
  if (t->ctx) SSL_CTX_free(t->ctx);
  if (t->fd >= 0) close(t->fd);
  memset(t, 0, sizeof(*t));
  t->fd = -1;
}

/* Connects to 127.0.0.1:port and completes the TLS handshake, presenting cert/key when not NULL.
 * 0 once the handshake completed (in TLS 1.3 a client gets there before the server has checked its
 * certificate), -1 otherwise (t closed). */
static int tcli_open(tcli_t *t, uint16_t port, const char *cert_path, const char *key_path)
{
  memset(t, 0, sizeof(*t));
  t->version = TDM_PROTO_V4;
  t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(t->fd >= 0);
  struct timeval tv = { 5, 0 };
  setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  t->ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(t->ctx);
  assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, cert("ca.pem"), NULL), 1);
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  if (cert_path) {
    assert_int_equal(SSL_CTX_use_certificate_chain_file(t->ctx, cert_path), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(t->ctx, key_path, SSL_FILETYPE_PEM), 1);
  }
  t->ssl = SSL_new(t->ctx);
  assert_non_null(t->ssl);
  assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1"), 1);
  assert_int_equal(SSL_set_fd(t->ssl, t->fd), 1);
  if (SSL_connect(t->ssl) != 1) {
    ERR_clear_error();
    tcli_close(t);
    return -1;
  }
  X509 *peer = SSL_get0_peer_certificate(t->ssl);
  assert_non_null(peer);
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, t->subject, (int)sizeof(t->subject));
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(peer), NULL);
  char *hex = BN_bn2hex(bn);
  snprintf(t->serial, sizeof(t->serial), "%s", hex);
  OPENSSL_free(hex);
  BN_free(bn);
  return 0;
}

static int tcli_send(tcli_t *t, int16_t stream, uint8_t opcode, const tdm_writer_t *body)
{
  tdm_frame_header_t h = { .version = t->version, .stream = stream, .opcode = opcode, .length = (uint32_t)body->len };
  uint8_t buf[TDM_FRAME_HEADER_MAX + 4096];
  size_t n = tdm_frame_header_encode(&h, buf);
  assert_true(body->len <= sizeof(buf) - n);
  memcpy(buf + n, body->buf, body->len);
  size_t done = 0;
  return SSL_write_ex(t->ssl, buf, n + body->len, &done) == 1 && done == n + body->len ? 0 : -1;
}

static int tcli_read(tcli_t *t, uint8_t *p, size_t n)
{
  while (n) {
    size_t got = 0;
    if (SSL_read_ex(t->ssl, p, n, &got) != 1) {
      ERR_clear_error();
      return -1; /* closed, refused by an alert, or timed out */
    }
    p += got;
    n -= got;
  }
  return 0;
}

/* The next frame (body on the heap). 0, or -1 when the connection failed or closed. */
static int tcli_recv(tcli_t *t, tdm_mockctl_frame_t *f)
{
  memset(f, 0, sizeof(*f));
  uint8_t hdr[9];
  if (tcli_read(t, hdr, sizeof(hdr)) < 0 || tdm_frame_header_decode(hdr, sizeof(hdr), 1u << 24, &f->h) != 9)
    return -1;
  f->len = f->h.length;
  f->body = malloc(f->len ? f->len : 1);
  if (tcli_read(t, f->body, f->len) < 0) {
    tdm_mockctl_frame_free(f);
    return -1;
  }
  return 0;
}

/* STARTUP; 0 on READY, the ERROR code (its message in msg, which may be NULL), or -1 when the
 * connection failed. */
static int tcli_startup(tcli_t *t, char *msg, size_t cap)
{
  tdm_str_t keys[1] = { TDM_STR("CQL_VERSION") }, vals[1] = { TDM_STR("3.0.0") };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_startup(&w, keys, vals, 1);
  int rc = tcli_send(t, 0, TDM_OP_STARTUP, &w);
  tdm_writer_free(&w);
  tdm_mockctl_frame_t f;
  if (rc < 0 || tcli_recv(t, &f) < 0) return -1;
  uint32_t code = 0;
  rc = f.h.opcode == TDM_OP_READY ? 0 : tdm_mockctl_error_code(&f, &code, msg, cap) == 0 ? (int)code : -1;
  tdm_mockctl_frame_free(&f);
  return rc;
}

/* QUERY at ONE; the answer's opcode (RESULT is 0x08), or -1. */
static int tcli_query(tcli_t *t, int16_t stream, const char *cql)
{
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_query(&w, t->version, tdm_str_from(cql), &p);
  int rc = tcli_send(t, stream, TDM_OP_QUERY, &w);
  tdm_writer_free(&w);
  tdm_mockctl_frame_t f;
  if (rc < 0 || tcli_recv(t, &f) < 0) return -1;
  rc = f.h.stream == stream ? f.h.opcode : -1;
  tdm_mockctl_frame_free(&f);
  return rc;
}

/* ---- the set-up: two mocks, a relay in front of each, tandem with TLS on every leg ---- */

typedef struct fixture_s {
  tdm_it_env_t e;        /* mocks, tandem, ports, files */
  relay_t relay[2];      /* ORIGIN (one-way TLS), TARGET (mutual TLS) */
  char proxy_cert[320];  /* tandem's client-facing certificate (a copy we rotate) */
  char proxy_key[320];   /* and key */
} fixture_t;

static fixture_t *fixture_new(const char *name)
{
  fixture_t *fx = calloc(1, sizeof(*fx));
  assert_non_null(fx);
  tdm_it_env_init(&fx->e, name);
  snprintf(fx->proxy_cert, sizeof(fx->proxy_cert), "%s/proxy.pem", fx->e.dir);
  snprintf(fx->proxy_key, sizeof(fx->proxy_key), "%s/proxy.key", fx->e.dir);
  copy_file(cert("server.pem"), fx->proxy_cert);
  copy_file(cert("server.key"), fx->proxy_key);
  relay_start(&fx->relay[0], fx->e.port[0], NULL, false);
  relay_start(&fx->relay[1], fx->e.port[1], cert("ca.pem"), true);
  return fx;
}

static void fixture_free(fixture_t *fx)
{
  tdm_it_env_fini(&fx->e);
  for (int c = 0; c < 2; c++) relay_stop(&fx->relay[c]);
  free(fx);
}

/* tandem.yaml: clusters reached through the relays with the given CA files; TARGET presents tandem's
 * client certificate and checks the name `localhost`; clients must use TLS with a certificate. */
static void fixture_conf(fixture_t *fx, const char *origin_ca, const char *target_ca, const char *extra)
{
  char text[6000];
  snprintf(text, sizeof(text),
           "origin_contact_points: 127.0.0.1:%u\n"
           "target_contact_points: 127.0.0.1:%u\n"
           "origin_tls_server_ca_path: %s\n"
           "target_tls_server_ca_path: %s\n"
           "target_tls_client_cert_path: %s\n"
           "target_tls_client_key_path: %s\n"
           "target_tls_server_name: localhost\n"
           "proxy_tls_cert_path: %s\n"
           "proxy_tls_key_path: %s\n"
           "proxy_tls_ca_path: %s\n"
           "proxy_tls_require_client_auth: true\n"
           "%s",
           fx->relay[0].port, fx->relay[1].port, cert(origin_ca), cert(target_ca), cert("client.pem"),
           cert("client.key"), fx->proxy_cert, fx->proxy_key, cert("ca.pem"), extra ? extra : "");
  tdm_it_env_write_conf(&fx->e, text);
}

static char *http_body(uint16_t port, const char *path)
{
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(port, "GET", path, NULL, &r), 0);
  char *b = r.body;
  r.body = NULL;
  tdm_it_http_free(&r);
  return b;
}

static long epoch_of(fixture_t *fx)
{
  char *b = http_body(fx->e.metrics, "/api/v1/status"), v[64];
  assert_true(tdm_it_json_raw(b, "epoch", v, sizeof(v)));
  free(b);
  return strtol(v, NULL, 10);
}

/* Polls `path` until its body contains needle; fails the test with the body and the log otherwise. */
static void wait_body(fixture_t *fx, const char *path, const char *needle, int timeout_ms)
{
  uint64_t deadline = tdm_it_now_ms() + (uint64_t)timeout_ms;
  char *b = NULL;
  do {
    free(b);
    b = http_body(fx->e.metrics, path);
    if (strstr(b, needle)) {
      free(b);
      return;
    }
    tdm_it_sleep_ms(20);
  } while (tdm_it_now_ms() < deadline);
  char *log = tdm_it_read_file(fx->e.log);
  fail_msg("%s never showed %s:\n%.3000s\n--- log:\n%.6000s", path, needle, b, log);
}

static void wait_log(fixture_t *fx, const char *needle, int timeout_ms)
{
  if (tdm_it_wait_text(fx->e.log, needle, timeout_ms)) return;
  char *log = tdm_it_read_file(fx->e.log);
  fail_msg("the log never showed \"%s\":\n%.8000s", needle, log);
}

static void reload(fixture_t *fx, long expect_epoch)
{
  assert_int_equal(kill(fx->e.pid, SIGHUP), 0);
  char needle[64];
  snprintf(needle, sizeof(needle), "\"epoch\":%ld", expect_epoch);
  wait_body(fx, "/api/v1/status", needle, 10000);
}

/* A client with tandem-client's certificate, through STARTUP. */
static void open_client(fixture_t *fx, tcli_t *t, const char *want_subject)
{
  assert_int_equal(tcli_open(t, fx->e.client, cert("client.pem"), cert("client.key")), 0);
  assert_string_equal(t->subject, want_subject);
  char msg[600] = "";
  int rc = tcli_startup(t, msg, sizeof(msg));
  if (rc != 0) fail_msg("STARTUP through tandem over TLS: %d %s", rc, msg);
}

/* ---- tests ---- */

/* Every leg on TLS: tandem -> ORIGIN (one-way, IP SAN, no SNI), tandem -> TARGET (mutual, SNI
 * localhost), client -> tandem (mutual). A write lands on both clusters; a client without a
 * certificate and a plaintext client are refused and counted, the good client never notices. */
static void test_tls_every_leg(void **state)
{
  (void)state;
  fixture_t *fx = fixture_new("tls-legs");
  fixture_conf(fx, "ca.pem", "ca.pem", NULL);
  tdm_it_env_up(&fx->e); /* readiness 200: both control connections came up through TLS */
  wait_log(fx, "TLS: clients on (client certificates required); ORIGIN on (names checked); TARGET on (mutual, "
               "names checked, name 'localhost')", 2000);
  char subject[256], sni[256];
  relay_seen(&fx->relay[0], subject, sni, sizeof(subject));
  assert_string_equal(subject, ""); /* no client certificate configured for ORIGIN */
  assert_string_equal(sni, "");     /* an IP literal sends no SNI; its IP SAN was checked */
  relay_seen(&fx->relay[1], subject, sni, sizeof(subject));
  assert_string_equal(subject, "tandem-client");
  assert_string_equal(sni, "localhost"); /* target_tls_server_name */
  int before[2] = { atomic_load(&fx->relay[0].handshakes), atomic_load(&fx->relay[1].handshakes) };
  assert_true(before[0] >= 1 && before[1] >= 1);

  tcli_t a;
  open_client(fx, &a, "localhost");
  char want[128];
  serial_of_file(cert("server.pem"), want, sizeof(want));
  assert_string_equal(a.serial, want);
  assert_int_equal(tcli_query(&a, 1, "INSERT INTO ks.t (k, v) VALUES ('a', 'tls-every-leg')"), TDM_OP_RESULT);
  for (int m = 0; m < 2; m++) {
    assert_int_equal(tdm_mockctl_count(&fx->e.mock[m], "COUNT op=QUERY match=tls-every-leg"), 1);
    /* the pool connection that carried it was a TLS session through the relay too */
    assert_true(atomic_load(&fx->relay[m].handshakes) > before[m]);
    assert_int_equal(atomic_load(&fx->relay[m].failures), 0);
  }

  /* no client certificate: the TLS 1.3 handshake ends on the client's side, then tandem's alert */
  tcli_t b;
  if (tcli_open(&b, fx->e.client, NULL, NULL) == 0) {
    assert_int_equal(tcli_startup(&b, NULL, 0), -1);
    tcli_close(&b);
  }
  /* plaintext CQL on the TLS-only port */
  tdm_mockctl_cql_t plain;
  assert_int_equal(tdm_mockctl_cql_connect(&plain, "127.0.0.1", fx->e.client, 4), 0);
  uint32_t code = 0;
  assert_int_not_equal(tdm_mockctl_cql_startup(&plain, NULL, NULL, NULL, &code), 0);
  tdm_mockctl_cql_close(&plain);

  /* only those sockets closed */
  assert_int_equal(tcli_query(&a, 2, "SELECT v FROM ks.t WHERE k = 'a'"), TDM_OP_RESULT);
  wait_body(fx, "/metrics", "\ntandem_client_connections_refused_total{reason=\"tls\"} 2\n", 5000);
  wait_log(fx, "TLS handshake refused: client TLS: peer did not return a certificate (client certificates are "
               "required, CA file '", 2000);
  wait_log(fx, "TLS handshake refused: client TLS: plaintext connection refused: TLS is required on this port", 2000);
  assert_int_equal(tcli_query(&a, 3, "SELECT v FROM ks.t WHERE k = 'a'"), TDM_OP_RESULT);

  /* a drain with a TLS client connected ends cleanly */
  assert_int_equal(tdm_it_env_signal_wait(&fx->e, SIGTERM, 10000), 0);
  tdm_mockctl_frame_t f;
  assert_int_equal(tcli_recv(&a, &f), -1);
  tcli_close(&a);
  fixture_free(fx);
}

/* Certificate rotation by reload: new connections get the new certificate, an open one keeps working
 * on the old session; a certificate file that cannot be used rejects the reload and keeps the old. */
static void test_tls_reload_rotation(void **state)
{
  (void)state;
  fixture_t *fx = fixture_new("tls-rotate");
  fixture_conf(fx, "ca.pem", "ca.pem", NULL);
  tdm_it_env_up(&fx->e);
  char serial1[128], serial2[128];
  serial_of_file(cert("server.pem"), serial1, sizeof(serial1));
  serial_of_file(cert("server2.pem"), serial2, sizeof(serial2));
  assert_string_not_equal(serial1, serial2);

  tcli_t a;
  open_client(fx, &a, "localhost");
  assert_string_equal(a.serial, serial1);
  assert_int_equal(tcli_query(&a, 1, "INSERT INTO ks.t (k, v) VALUES ('a', 'before-rotation')"), TDM_OP_RESULT);

  copy_file(cert("server2.pem"), fx->proxy_cert);
  copy_file(cert("server2.key"), fx->proxy_key);
  reload(fx, 2);
  tcli_t b;
  open_client(fx, &b, "tandem-rotated");
  assert_string_equal(b.serial, serial2);
  assert_int_equal(tcli_query(&b, 1, "INSERT INTO ks.t (k, v) VALUES ('b', 'after-rotation')"), TDM_OP_RESULT);
  assert_int_equal(tcli_query(&a, 2, "INSERT INTO ks.t (k, v) VALUES ('a', 'old-session')"), TDM_OP_RESULT);
  for (int m = 0; m < 2; m++) {
    assert_int_equal(tdm_mockctl_count(&fx->e.mock[m], "COUNT op=QUERY match=after-rotation"), 1);
    assert_int_equal(tdm_mockctl_count(&fx->e.mock[m], "COUNT op=QUERY match=old-session"), 1);
  }

  /* a certificate file that is not PEM: rejected, epoch 2 and its certificate stay */
  copy_file(cert("garbage.pem"), fx->proxy_cert);
  assert_int_equal(kill(fx->e.pid, SIGHUP), 0);
  wait_body(fx, "/metrics", "\ntandem_config_reloads_total{result=\"rejected\"} 1\n", 10000);
  assert_int_equal(epoch_of(fx), 2);
  char *status = http_body(fx->e.metrics, "/api/v1/status");
  if (!strstr(status, "\"result\":\"rejected\",\"error\":\"client TLS: ") || !strstr(status, "proxy.pem"))
    fail_msg("status: %s", status);
  free(status);
  wait_log(fx, "reload rejected, epoch 2 kept: client TLS: ", 2000);
  tcli_t c;
  open_client(fx, &c, "tandem-rotated");
  assert_string_equal(c.serial, serial2);
  assert_int_equal(tcli_query(&c, 1, "SELECT v FROM ks.t WHERE k = 'b'"), TDM_OP_RESULT);
  assert_int_equal(tcli_query(&a, 3, "SELECT v FROM ks.t WHERE k = 'a'"), TDM_OP_RESULT);
  assert_int_equal(tcli_query(&b, 2, "SELECT v FROM ks.t WHERE k = 'b'"), TDM_OP_RESULT);
  tcli_close(&a);
  tcli_close(&b);
  tcli_close(&c);
  /* a clean exit (under ASan: no context or session leaked across the reloads) */
  assert_int_equal(tdm_it_env_signal_wait(&fx->e, SIGTERM, 10000), 0);
  fixture_free(fx);
}

/* Cluster-side failures: a CA that did not sign the node's certificate, then a name the certificate
 * does not carry, keep the ORIGIN control connection down with the TLS module's message; the right
 * material (by reload) brings it up. A pool connection refused by TLS fails that client's handshake
 * with SERVER_ERROR naming the cluster, the node and the TLS cause; clients already open go on. */
static void test_tls_cluster_errors(void **state)
{
  (void)state;
  fixture_t *fx = fixture_new("tls-cluster");
  fixture_conf(fx, "ca2.pem", "ca.pem", NULL);
  tdm_it_env_mock(&fx->e, 0);
  tdm_it_env_mock(&fx->e, 1);
  tdm_it_env_tandem(&fx->e);
  char needle[1200];
  snprintf(needle, sizeof(needle),
           "ORIGIN control connection down (127.0.0.1:%u: ORIGIN TLS: unknown CA (server certificate, CA file "
           "'%s'))", fx->relay[0].port, cert("ca2.pem"));
  wait_log(fx, needle, 10000);
  wait_body(fx, "/api/v1/status", "ORIGIN TLS: unknown CA (server certificate", 5000);
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(fx->e.metrics, "GET", "/health/readiness", NULL, &r), 0);
  assert_int_not_equal(r.status, 200);
  tdm_it_http_free(&r);

  fixture_conf(fx, "ca.pem", "ca.pem", "origin_tls_server_name: other.example\n");
  reload(fx, 2);
  wait_log(fx, "ORIGIN TLS: hostname mismatch: certificate is not valid for 'other.example' (server certificate, "
               "CA file '", 10000);

  fixture_conf(fx, "ca.pem", "ca.pem", NULL);
  reload(fx, 3);
  if (!tdm_it_wait_status(fx->e.metrics, "/health/readiness", 200, 10000)) {
    char *log = tdm_it_read_file(fx->e.log);
    fail_msg("ORIGIN never came up with the right CA:\n%.8000s", log);
  }
  tcli_t a;
  open_client(fx, &a, "localhost");
  assert_int_equal(tcli_query(&a, 1, "INSERT INTO ks.t (k, v) VALUES ('a', 'v4-client')"), TDM_OP_RESULT);

  /* TARGET's CA becomes the wrong one: the control connection and the open pool keep their sessions,
   * a new pool (a v3 client) cannot open */
  fixture_conf(fx, "ca.pem", "ca2.pem", NULL);
  reload(fx, 4);
  tcli_t v3;
  assert_int_equal(tcli_open(&v3, fx->e.client, cert("client.pem"), cert("client.key")), 0);
  v3.version = TDM_PROTO_V3;
  char msg[600] = "", want[1200];
  assert_int_equal(tcli_startup(&v3, msg, sizeof(msg)), TDM_ERR_SERVER_ERROR);
  snprintf(want, sizeof(want),
           "tandem: cannot open a session to TARGET (127.0.0.1:%u): TARGET TLS: unknown CA (server certificate, "
           "CA file '%s')", fx->relay[1].port, cert("ca2.pem"));
  assert_string_equal(msg, want);
  tdm_mockctl_frame_t f;
  assert_int_equal(tcli_recv(&v3, &f), -1); /* then closed */
  tcli_close(&v3);
  snprintf(needle, sizeof(needle), "TARGET pool connection to 127.0.0.1:%u: TARGET TLS: unknown CA", fx->relay[1].port);
  wait_log(fx, needle, 2000);
  assert_int_equal(tcli_query(&a, 2, "SELECT v FROM ks.t WHERE k = 'a'"), TDM_OP_RESULT);
  assert_int_equal(tdm_mockctl_count(&fx->e.mock[1], "COUNT op=QUERY match=v4-client"), 1);
  tcli_close(&a);
  assert_int_equal(tdm_it_env_signal_wait(&fx->e, SIGTERM, 10000), 0);
  fixture_free(fx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tls_every_leg),
    cmocka_unit_test(test_tls_reload_rotation),
    cmocka_unit_test(test_tls_cluster_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
