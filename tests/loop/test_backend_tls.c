/* Pool connections behind TLS (tdm_backend_set_tls): the TLS handshake is part of the handshake
 * budget ({c}_connection_timeout_ms) against a peer that accepts and never answers; a TLS failure
 * becomes the session's reason "tandem: cannot open a session to ORIGIN (<node>): ORIGIN TLS: <cause>"
 * and a WARN; a context set later applies to new connections only, while a pool opened before it
 * keeps carrying legs in plaintext. Every test ends with uv_loop_close() == 0. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <tandem/net/tls.h>
#include "test_backend_legs.h"

static char g_certs[512]; /* tests/data/tls/gen.sh output, generated once per process */

static const char *cert(const char *name)
{
  static char buf[4][600];
  static int next;
  if (!g_certs[0]) {
    const char *src = getenv("TDM_SOURCE_DIR");
    const char *bld = getenv("TDM_BUILD_DIR");
    char cmd[1200];
    snprintf(g_certs, sizeof(g_certs), "%s/tls-test", bld && *bld ? bld : "build");
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/data/tls/gen.sh' '%s'", src && *src ? src : ".", g_certs);
    if (system(cmd) != 0) fail_msg("certificate generation failed: %s", cmd);
  }
  char *b = buf[next++ % 4];
  snprintf(b, sizeof(buf[0]), "%s/%s", g_certs, name);
  return b;
}

/* A set whose ORIGIN context trusts the test CA (the caller clears it). */
static void origin_tls(tdm_tls_set_t *set)
{
  memset(set, 0, sizeof(*set));
  char err[TDM_TLS_ERR_MAX];
  if (tdm_tls_client_ctx_new("ORIGIN", cert("ca.pem"), NULL, NULL, true, &set->cluster[TDM_CONF_ORIGIN], err,
                             sizeof(err)) != 0)
    fail_msg("%s", err);
}

typedef struct sess_s {
  int calls;         /* callbacks */
  int err;           /* last error */
  char reason[700];  /* last reason ("" = NULL) */
} sess_t;

static void on_session(void *arg, int err, const uint8_t *body, size_t len, const char *reason)
{
  sess_t *s = arg;
  s->calls++;
  s->err = err;
  snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "");
}

static bool sess_done(void *arg) { return ((sess_t *)arg)->calls > 0; }

static void open_session(bt_t *t, uint8_t version, sess_t *s)
{
  memset(s, 0, sizeof(*s));
  tdm_session_key_t key = t->key;
  key.version = version;
  assert_int_equal(tdm_backend_session_open(t->be, TDM_CONF_ORIGIN, &key, on_session, s), 0);
  assert_true(tb_run_until(&t->f, sess_done, s, 5000));
  assert_int_equal(s->calls, 1);
}

/* A listener whose connections the kernel accepts and nobody ever reads: a TLS peer that hangs. */
static int silent_listener(uint16_t *port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(fd, 8), 0);
  socklen_t len = sizeof(sa);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static void test_tls_handshake_bounded_by_connection_timeout(void **state)
{
  (void)state;
  bt_t t;
  memset(&t, 0, sizeof(t));
  tb_init(&t.f);
  uint16_t port = 0;
  int lfd = silent_listener(&port);
  char yaml[256];
  snprintf(yaml, sizeof(yaml),
           "origin_contact_points: 127.0.0.1:%u\ntarget_contact_points: 127.0.0.1:%u\n"
           "origin_connection_timeout_ms: 300\n", port, port);
  tdm_conf_diag_t diag = { 0 };
  assert_int_equal(tdm_conf_load_buffer("test.yaml", yaml, strlen(yaml), NULL, &t.f.conf, &diag), 0);
  tdm_conf_diag_free(&diag);
  assert_int_equal(tdm_backend_new(&t.f.loop, &t.f.pool, &t.be), 0);
  tdm_backend_set_conf(t.be, t.f.conf);
  tdm_tls_set_t set;
  origin_tls(&set);
  tdm_backend_set_tls(t.be, &set);
  tdm_tls_set_clear(&set); /* the backend holds its own references */
  assert_int_equal(tdm_topology_new(TDM_CONF_ORIGIN, &t.topo), 0);
  t.topo->nodes = calloc(1, sizeof(*t.topo->nodes));
  assert_non_null(t.topo->nodes);
  tdm_node_t *n = &t.topo->nodes[0];
  snprintf(n->host, sizeof(n->host), "127.0.0.1");
  n->port = port;
  tdm_sockaddr_t sa;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", port, &sa), 0);
  memcpy(&n->addr, &sa.ss, sizeof(n->addr));
  n->addr_len = tdm_sockaddr_len(&sa);
  snprintf(n->dc, sizeof(n->dc), "dc1");
  n->local_dc = true;
  t.topo->n_nodes = 1;
  t.topo->up = true;
  tdm_backend_set_topology(t.be, t.topo);
  t.key.version = TDM_PROTO_V4;

  uv_update_time(&t.f.loop); /* certificate generation may have taken a while */
  uint64_t t0 = uv_hrtime() / 1000000u;
  sess_t s;
  open_session(&t, TDM_PROTO_V4, &s);
  uint64_t took = uv_hrtime() / 1000000u - t0;
  assert_int_equal(s.err, TDM_ETIMEOUT);
  char want[200];
  snprintf(want, sizeof(want), "tandem: cannot open a session to ORIGIN (127.0.0.1:%u): TLS handshake timed out after "
           "300 ms", port);
  assert_string_equal(s.reason, want);
  assert_true(took >= 290 && took < 2000); /* the budget, plus at most a tick or two */
  bt_finish(&t);
  close(lfd);
}

static bool leg_done(void *arg) { return ((tleg_t *)arg)->responses + ((tleg_t *)arg)->failures > 0; }

static void test_tls_failure_reason_and_later_context(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  tb_log_t log;
  tb_log_begin(&log, TDM_LOG_INFO);
  /* no context yet: a plaintext v4 pool */
  sess_t s;
  open_session(&t, TDM_PROTO_V4, &s);
  assert_int_equal(s.err, 0);
  /* ORIGIN TLS from now on: a new pool (v3) tries TLS against the plaintext mock */
  tdm_tls_set_t set;
  origin_tls(&set);
  tdm_backend_set_tls(t.be, &set);
  tdm_tls_set_clear(&set);
  open_session(&t, TDM_PROTO_V3, &s);
  char want[400];
  snprintf(want, sizeof(want), "tandem: cannot open a session to ORIGIN (127.0.0.1:%u): ORIGIN TLS: peer is not "
           "speaking TLS (is TLS enabled on both sides?)", tb_node_port(&t.f, 0));
  assert_true(tdm_tls_is_error(s.err));
  assert_string_equal(s.reason, want);
  assert_int_equal(tb_log_count(&log, "ORIGIN pool connection to 127.0.0.1:"), 1);
  assert_int_equal(tb_log_count(&log, ": ORIGIN TLS: peer is not speaking TLS"), 1);
  /* the v4 pool opened before the context still carries legs */
  tleg_t l;
  memset(&l, 0, sizeof(l));
  bt_leg(&t, &l, "INSERT INTO ks.t (k, v) VALUES ('k', 'kept-plaintext')");
  assert_int_equal(bt_send(&t, &l), 0);
  assert_true(tb_run_until(&t.f, leg_done, &l, 5000));
  assert_int_equal(l.responses, 1);
  assert_int_equal(l.opcode, TDM_OP_RESULT);
  assert_int_equal(tb_count(&t.f, "op=QUERY match=kept-plaintext"), 1);
  free(l.body);
  tb_log_end(&log);
  bt_finish(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tls_handshake_bounded_by_connection_timeout),
    cmocka_unit_test(test_tls_failure_reason_and_later_context),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
