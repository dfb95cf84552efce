/* Handshake sessions and negotiated pool connections against the mock cluster: session_open with the
 * configured credentials, with client credentials (bad ones relayed as the cluster's BAD_CREDENTIALS
 * body, good ones adopted by the pool, a pool never vouching for a password), missing username, version
 * refusal, unreachable node and failover; cancel; v5 with lz4 (envelopes beyond one segment), v4 with
 * lz4 and snappy, v3 plain, end to end; USE on keyspace pools; EVENT frames on pool connections
 * ignored. Every test ends with uv_loop_close() == 0. */
#include "test_backend_legs.h"

typedef struct sess_s {
  int calls;           /* callbacks */
  int err;             /* last error */
  uint8_t body[512];   /* last ERROR body */
  size_t body_len;     /* its length (0 = none) */
  bool has_body;       /* body was non-NULL */
  char reason[300];    /* last reason ("" = NULL) */
} sess_t;

static void on_session(void *arg, int err, const uint8_t *body, size_t len, const char *reason)
{
  sess_t *s = arg;
  s->calls++;
  s->err = err;
  s->has_body = body != NULL;
  s->body_len = body ? TDM_MIN(len, sizeof(s->body)) : 0;
  if (body) memcpy(s->body, body, s->body_len);
  snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "");
}

static bool sess_done(void *arg) { return ((sess_t *)arg)->calls > 0; }

static int open_session(bt_t *t, const tdm_session_key_t *key, sess_t *s)
{
  memset(s, 0, sizeof(*s));
  int rc = tdm_backend_session_open(t->be, TDM_CONF_ORIGIN, key, on_session, s);
  if (rc == 0) {
    assert_int_equal(s->calls, 0); /* never from inside session_open */
    assert_true(tb_run_until(&t->f, sess_done, s, 5000));
    assert_int_equal(s->calls, 1);
  }
  return rc;
}

static void error_of(const sess_t *s, uint32_t *code, char *msg, size_t cap)
{
  tdm_str_t m;
  assert_true(s->has_body);
  assert_int_equal(tdm_response_peek_error_code(s->body, s->body_len, code, &m), 0);
  snprintf(msg, cap, "%.*s", (int)m.len, m.ptr);
}

static void test_session_configured(void **state)
{
  (void)state;
  bt_t t;
  const char *args[] = { "--auth", "svc:svcpw", NULL };
  bt_init(&t, 1, args, "origin_username: svc\norigin_password: svcpw\n");
  sess_t s;
  assert_int_equal(open_session(&t, &t.key, &s), 0);
  assert_int_equal(s.err, 0);
  assert_false(s.has_body);
  assert_int_equal(tb_count(&t.f, "what=auth_ok user=svc"), 1);
  /* a ready pool answers the next one without a new connection */
  assert_int_equal(open_session(&t, &t.key, &s), 0);
  assert_int_equal(s.err, 0);
  assert_int_equal(tb_count(&t.f, "what=connections"), 1);
  bt_finish(&t);
}

static void test_session_client_credentials(void **state)
{
  (void)state;
  bt_t t;
  const char *args[] = { "--auth", "alice:secret", "--auth", "svc:svcpw", NULL };
  bt_init(&t, 1, args, "origin_username: svc\norigin_password: svcpw\n");
  tdm_credentials_t bad = { .authzid = "", .user = "alice", .password = "wrong" };
  tdm_credentials_t good = { .authzid = "", .user = "alice", .password = "secret" };
  tdm_session_key_t key = t.key;
  key.creds = &bad;
  sess_t s;
  assert_int_equal(open_session(&t, &key, &s), 0);
  /* the cluster's own BAD_CREDENTIALS body, to relay verbatim */
  assert_int_equal(s.err, TDM_EINVAL);
  uint32_t code;
  char msg[256];
  error_of(&s, &code, msg, sizeof(msg));
  assert_int_equal(code, TDM_ERR_BAD_CREDENTIALS);
  assert_non_null(strstr(msg, "alice"));
  assert_string_equal(s.reason, "");
  /* the right password works, and the pool now carries that identity */
  key.creds = &good;
  assert_int_equal(open_session(&t, &key, &s), 0);
  assert_int_equal(s.err, 0);
  /* a wrong password is checked again, never vouched for by the ready pool */
  key.creds = &bad;
  assert_int_equal(open_session(&t, &key, &s), 0);
  assert_int_equal(s.err, TDM_EINVAL);
  assert_int_equal(tb_count(&t.f, "what=auth_failed user=alice"), 2);
  assert_int_equal(tb_count(&t.f, "what=auth_ok user=alice"), 1);
  /* legs of the identity's pool run as alice; the configured identity has its own pool */
  key.creds = &good;
  t.key = key;
  tleg_t l[2];
  memset(l, 0, sizeof(l));
  bt_leg(&t, &l[0], "INSERT INTO ks.who (k, v) VALUES ('a', 'b')");
  assert_int_equal(bt_send(&t, &l[0]), 0);
  t.key.creds = NULL;
  bt_leg(&t, &l[1], "INSERT INTO ks.who (k, v) VALUES ('c', 'd')");
  assert_int_equal(bt_send(&t, &l[1]), 0);
  assert_true(bt_wait(&t, 2, 3000));
  assert_int_equal(l[0].responses + l[1].responses, 2);
  assert_int_equal(bt_result_kind(&l[0]), TDM_RESULT_VOID);
  assert_int_equal(bt_result_kind(&l[1]), TDM_RESULT_VOID);
  char conns[8192];
  assert_int_equal(tdm_mockctl_cmd(&t.f.mock, conns, sizeof(conns), "CONNS"), 0);
  assert_non_null(strstr(conns, "\"user\":\"alice\""));
  assert_non_null(strstr(conns, "\"user\":\"svc\""));
  assert_int_equal(tb_count(&t.f, "what=connections"), 4); /* 3 verifications (1 kept) + 1 configured */
  bt_free_legs(l, 2);
  bt_finish(&t);
}

static void test_session_missing_username(void **state)
{
  (void)state;
  bt_t t;
  const char *args[] = { "--auth", "alice:secret", NULL };
  bt_init(&t, 1, args, NULL);
  sess_t s;
  assert_int_equal(open_session(&t, &t.key, &s), 0);
  assert_int_equal(s.err, TDM_ECONF);
  assert_false(s.has_body);
  char want[200];
  snprintf(want, sizeof(want),
           "tandem: cannot open a session to ORIGIN (127.0.0.1:%u): ORIGIN requires authentication but "
           "origin_username is not set",
           (unsigned)tb_node_port(&t.f, 0));
  assert_string_equal(s.reason, want);
  /* the node answered: it is not put in cooldown */
  assert_true(tdm_backend_reachable(t.be, TDM_CONF_ORIGIN));
  bt_finish(&t);
}

static void test_session_version_refused(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  tdm_session_key_t key = t.key;
  key.version = TDM_PROTO_DSE_V2;
  sess_t s;
  assert_int_equal(open_session(&t, &key, &s), 0);
  assert_int_equal(s.err, TDM_EPROTO_VERSION);
  uint32_t code;
  char msg[256];
  error_of(&s, &code, msg, sizeof(msg));
  assert_int_equal(code, TDM_ERR_PROTOCOL_ERROR);
  assert_non_null(strstr(msg, "Invalid or unsupported protocol version (66)"));
  assert_true(tdm_backend_reachable(t.be, TDM_CONF_ORIGIN));
  bt_finish(&t);
}

static void test_session_unreachable_and_failover(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 2, NULL, NULL);
  tb_cmd(&t.f, "STOP node=0");
  /* the first choice is down: the session moves on to the other node */
  sess_t s;
  assert_int_equal(open_session(&t, &t.key, &s), 0);
  assert_int_equal(s.err, 0);
  assert_int_equal(tb_count(&t.f, "what=connections node=1"), 1);
  /* both down: a tandem reason naming the cluster and the node */
  tb_cmd(&t.f, "STOP node=1");
  tdm_session_key_t key = t.key;
  key.version = TDM_PROTO_V3; /* another pool, so it has to connect */
  assert_int_equal(open_session(&t, &key, &s), 0);
  assert_true(s.err < 0);
  assert_false(s.has_body);
  char want[160];
  snprintf(want, sizeof(want), "tandem: cannot open a session to ORIGIN (127.0.0.1:%u): connection refused",
           (unsigned)tb_node_port(&t.f, 1));
  assert_string_equal(s.reason, want);
  /* every node in cooldown now */
  assert_int_equal(open_session(&t, &key, &s), 0);
  assert_int_equal(s.err, TDM_EUNAVAILABLE);
  assert_string_equal(s.reason, "tandem: cannot open a session to ORIGIN (all nodes down): no reachable node");
  bt_finish(&t);
}

static void test_session_cancel(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  sess_t s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(tdm_backend_session_open(t.be, TDM_CONF_ORIGIN, &t.key, on_session, &s), 0);
  tdm_backend_session_cancel(t.be, on_session, &s);
  tb_run_for(&t.f, 300);
  assert_int_equal(s.calls, 0);
  /* cancelled after the result was ready but before it was delivered */
  assert_int_equal(open_session(&t, &t.key, &s), 0);
  memset(&s, 0, sizeof(s));
  assert_int_equal(tdm_backend_session_open(t.be, TDM_CONF_ORIGIN, &t.key, on_session, &s), 0);
  tdm_backend_session_cancel(t.be, on_session, &s);
  tb_run_for(&t.f, 100);
  assert_int_equal(s.calls, 0);
  bt_finish(&t);
}

/* INSERT (value bound, so any size) then SELECT of a `size`-byte value through the test's key;
 * checks the value comes back byte for byte. */
static void round_trip(bt_t *t, const char *table, size_t size)
{
  char *value = malloc(size + 1);
  for (size_t i = 0; i < size; i++) value[i] = (char)('a' + (i * 7 + i / 13) % 26);
  value[size] = '\0';
  char cql[128];
  snprintf(cql, sizeof(cql), "INSERT INTO ks.%s (k, v) VALUES ('big', ?)", table);
  tdm_writer_t vals;
  tdm_writer_init(&vals);
  tdm_writer_bytes(&vals, value, (int32_t)size);
  tleg_t l;
  memset(&l, 0, sizeof(l));
  t->done = 0;
  bt_leg_values(t, &l, cql, vals.buf, vals.len, 1);
  tdm_writer_free(&vals);
  assert_int_equal(bt_send(t, &l), 0);
  assert_true(bt_wait(t, 1, 5000));
  assert_int_equal(l.responses, 1);
  assert_int_equal(bt_result_kind(&l), TDM_RESULT_VOID);
  snprintf(cql, sizeof(cql), "SELECT v FROM ks.%s WHERE k = 'big'", table);
  t->done = 0;
  bt_leg(t, &l, cql);
  assert_int_equal(bt_send(t, &l), 0);
  assert_true(bt_wait(t, 1, 5000));
  assert_int_equal(l.responses, 1);
  assert_int_equal(l.rversion, t->key.version);
  char *got = malloc(size + 1);
  assert_true(bt_cell(&l, got, size + 1));
  assert_int_equal(strlen(got), size);
  assert_memory_equal(got, value, size);
  free(got);
  free(l.body);
  free(value);
}

/* The mock's view of its (only) pool connection for this key. */
static void assert_conn(bt_t *t, int version, const char *compression)
{
  char reply[8192], want[96];
  assert_int_equal(tdm_mockctl_cmd(&t->f.mock, reply, sizeof(reply), "CONNS"), 0);
  snprintf(want, sizeof(want), "\"version\":%d,\"compression\":\"%s\"", version, compression);
  assert_non_null(strstr(reply, want));
}

static void test_v5_lz4(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  t.key.version = TDM_PROTO_V5;
  t.key.compression = TDM_COMPRESSION_LZ4;
  round_trip(&t, "v5small", 100);
  round_trip(&t, "v5big", 300000); /* envelopes over 128 KiB span several segments both ways */
  assert_conn(&t, 5, "lz4");
  assert_int_equal(tb_count(&t.f, "what=connections"), 1);
  assert_int_equal(tb_count(&t.f, "what=protocol_errors"), 0);
  bt_finish(&t);
}

static void test_v5_plain(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  t.key.version = TDM_PROTO_V5;
  round_trip(&t, "v5plain", 200000);
  assert_conn(&t, 5, "none");
  bt_finish(&t);
}

static void test_v4_lz4_snappy(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  t.key.compression = TDM_COMPRESSION_LZ4;
  round_trip(&t, "v4lz4", 50000);
  assert_conn(&t, 4, "lz4");
  t.key.compression = TDM_COMPRESSION_SNAPPY;
  round_trip(&t, "v4snappy", 50000);
  assert_conn(&t, 4, "snappy");
  t.key.compression = TDM_COMPRESSION_NONE;
  t.key.version = TDM_PROTO_V3;
  round_trip(&t, "v3", 1000);
  assert_conn(&t, 3, "none");
  /* three keys, three pools, three connections, no protocol error */
  assert_int_equal(tb_count(&t.f, "what=connections"), 3);
  assert_int_equal(tb_count(&t.f, "what=protocol_errors"), 0);
  bt_finish(&t);
}

static void test_keyspace_pool_and_events(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  t.key.keyspace = "Ks\"1";
  tleg_t l;
  memset(&l, 0, sizeof(l));
  bt_leg(&t, &l, "INSERT INTO kv (k, v) VALUES ('a', 'b')");
  assert_int_equal(bt_send(&t, &l), 0);
  assert_true(bt_wait(&t, 1, 3000));
  assert_int_equal(bt_result_kind(&l), TDM_RESULT_VOID);
  /* the pool ran USE once, quoted, before its first leg */
  assert_int_equal(tb_count(&t.f, "text=\"USE \\\"Ks\\\"\\\"1\\\"\""), 1);
  char reply[8192];
  assert_int_equal(tdm_mockctl_cmd(&t.f.mock, reply, sizeof(reply), "CONNS"), 0);
  assert_non_null(strstr(reply, "\"keyspace\":\"Ks\\\"1\""));
  /* v5 pools are not keyed by keyspace: no USE */
  t.key.version = TDM_PROTO_V5;
  t.done = 0;
  bt_leg(&t, &l, "SELECT v FROM \"Ks\"\"1\".kv WHERE k = 'a'");
  assert_int_equal(bt_send(&t, &l), 0);
  assert_true(bt_wait(&t, 1, 3000));
  char got[16];
  assert_true(bt_cell(&l, got, sizeof(got)));
  assert_string_equal(got, "b");
  assert_int_equal(tb_count(&t.f, "regex=^USE"), 1);
  /* a pool connection that registered for events gets them on stream -1: ignored, nothing breaks */
  t.done = 0;
  bt_leg(&t, &l, "x");
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_str_t ev = TDM_STR("STATUS_CHANGE");
  assert_int_equal(tdm_request_encode_register(&w, &ev, 1), 0);
  tdm_slice_unref(l.leg.body);
  l.leg.body = tdm_slice_copy(&t.f.pool, w.buf, w.len);
  l.leg.body_len = w.len;
  l.leg.opcode = TDM_OP_REGISTER;
  tdm_writer_free(&w);
  assert_int_equal(bt_send(&t, &l), 0);
  assert_true(bt_wait(&t, 1, 3000));
  assert_int_equal(l.opcode, TDM_OP_READY);
  char out[64];
  assert_int_equal(tdm_mockctl_cmd(&t.f.mock, out, sizeof(out), "EVENT type=STATUS_CHANGE change=UP node=0"), 0);
  assert_string_equal(out, "OK 1");
  tb_run_for(&t.f, 200);
  assert_int_equal(t.done, 1);
  t.done = 0;
  bt_leg(&t, &l, "SELECT v FROM \"Ks\"\"1\".kv WHERE k = 'a'");
  assert_int_equal(bt_send(&t, &l), 0);
  assert_true(bt_wait(&t, 1, 3000));
  assert_int_equal(l.responses, 1);
  assert_int_equal(bt_stats(&t, 0).connections, 2);
  free(l.body);
  bt_finish(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_session_configured),     cmocka_unit_test(test_session_client_credentials),
    cmocka_unit_test(test_session_missing_username), cmocka_unit_test(test_session_version_refused),
    cmocka_unit_test(test_session_unreachable_and_failover), cmocka_unit_test(test_session_cancel),
    cmocka_unit_test(test_v5_lz4),                  cmocka_unit_test(test_v5_plain),
    cmocka_unit_test(test_v4_lz4_snappy),           cmocka_unit_test(test_keyspace_pool_and_events),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
