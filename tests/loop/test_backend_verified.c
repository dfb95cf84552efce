/* Backend gaps closed for the auth cache and the metrics (behaviour.md §2.2 step 4, §13.1), against
 * the mock cluster: a session opened with credentials the caller already verified (its cache) costs no
 * login when the identity's pool is ready, and opens a pool connection with the pool's own password
 * otherwise; pools made for legs after the handshake borrow the identity's password; failed
 * connections are counted per cluster and for the async pools, a client's refused password is not; the
 * async pools' connections and stream ids are gauged apart. Every test ends with uv_loop_close() == 0. */
#include "test_backend_legs.h"

typedef struct sess_s {
  int calls;        /* callbacks */
  int err;          /* last error */
  bool has_body;    /* the cluster's ERROR body came with it */
  char reason[300]; /* last reason ("" = NULL) */
} sess_t;

static void on_session(void *arg, int err, const uint8_t *body, size_t len, const char *reason)
{
  sess_t *s = arg;
  s->calls++;
  s->err = err;
  s->has_body = body != NULL;
  snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "");
}

static bool sess_done(void *arg) { return ((sess_t *)arg)->calls > 0; }

static void open_session(bt_t *t, const tdm_session_key_t *key, sess_t *s)
{
  memset(s, 0, sizeof(*s));
  assert_int_equal(tdm_backend_session_open(t->be, TDM_CONF_ORIGIN, key, on_session, s), 0);
  assert_int_equal(s->calls, 0); /* never from inside session_open */
  assert_true(tb_run_until(&t->f, sess_done, s, 5000));
  assert_int_equal(s->calls, 1);
}

/* A cache hit with the identity's pool ready: no new connection, no new login. */
static void test_verified_uses_ready_pool(void **state)
{
  bt_t t;
  const char *args[] = { "--auth", "alice:secret", NULL };
  bt_init(&t, 1, args, NULL);
  tdm_credentials_t good = { .authzid = "", .user = "alice", .password = "secret" };
  tdm_session_key_t key = t.key;
  key.creds = &good;
  sess_t s;
  open_session(&t, &key, &s); /* the first login verifies on a connection of its own */
  assert_int_equal(s.err, 0);
  assert_int_equal(tb_count(&t.f, "what=auth_ok user=alice"), 1);
  good.verified = true;
  for (int i = 0; i < 3; i++) {
    open_session(&t, &key, &s);
    assert_int_equal(s.err, 0);
  }
  assert_int_equal(tb_count(&t.f, "what=auth_ok user=alice"), 1);
  assert_int_equal(tb_count(&t.f, "what=connections"), 1);
  /* not verified: checked again, on a new connection (a pool never vouches for a password) */
  good.verified = false;
  open_session(&t, &key, &s);
  assert_int_equal(s.err, 0);
  assert_int_equal(tb_count(&t.f, "what=auth_ok user=alice"), 2);
  bt_finish(&t);
}

/* A cache hit whose pool lost its connections: one pool connection opens with the password the pool
 * holds (the one the cluster last accepted), not with the caller's. */
static void test_verified_reconnects_with_pool_password(void **state)
{
  bt_t t;
  const char *args[] = { "--auth", "alice:secret", NULL };
  bt_init(&t, 1, args, NULL);
  tdm_credentials_t creds = { .authzid = "", .user = "alice", .password = "secret" };
  tdm_session_key_t key = t.key;
  key.creds = &creds;
  sess_t s;
  open_session(&t, &key, &s);
  assert_int_equal(s.err, 0);
  tb_cmd(&t.f, "KILL node=0");
  tb_run_for(&t.f, 200); /* the pool notices: no connection left */
  assert_int_equal(bt_stats(&t, 0).connections, 0);
  creds.verified = true;
  creds.password = "not-what-the-pool-holds";
  open_session(&t, &key, &s);
  assert_int_equal(s.err, 0);
  assert_int_equal(tb_count(&t.f, "what=auth_ok user=alice"), 2);
  assert_int_equal(tb_count(&t.f, "what=auth_failed user=alice"), 0);
  /* a pool refused by the cluster (password changed meanwhile) reports the cluster's answer */
  tb_cmd(&t.f, "KILL node=0");
  tb_cmd(&t.f, "RULE ADD op=AUTH_RESPONSE action=error code=BAD_CREDENTIALS msg=\"Provided username alice and/or "
               "password are incorrect\" times=1");
  tb_run_for(&t.f, 200);
  open_session(&t, &key, &s);
  assert_int_equal(s.err, TDM_EINVAL);
  assert_true(s.has_body);
  bt_finish(&t);
}

/* A cache hit on a worker with no pool yet for the identity: the pool is made with the verified
 * password and its first connection logs in with it. */
static void test_verified_new_pool(void **state)
{
  bt_t t;
  const char *args[] = { "--auth", "alice:secret", NULL };
  bt_init(&t, 1, args, NULL);
  tdm_credentials_t creds = { .authzid = "", .user = "alice", .password = "secret", .verified = true };
  tdm_session_key_t key = t.key;
  key.creds = &creds;
  sess_t s;
  open_session(&t, &key, &s);
  assert_int_equal(s.err, 0);
  assert_int_equal(tb_count(&t.f, "what=auth_ok user=alice"), 1);
  bt_finish(&t);
}

/* Legs of a client identity after its handshake (the password wiped from the key) reach nodes whose
 * pool did not exist yet: those pools borrow the identity's password. */
static void test_leg_pools_borrow_identity_password(void **state)
{
  bt_t t;
  const char *args[] = { "--auth", "alice:secret", NULL };
  bt_init(&t, 2, args, NULL);
  tdm_credentials_t creds = { .authzid = "", .user = "alice", .password = "secret" };
  t.key.creds = &creds;
  sess_t s;
  open_session(&t, &t.key, &s);
  assert_int_equal(s.err, 0);
  creds.password = NULL; /* what the frontend does once the client is READY */
  tleg_t l[6];
  memset(l, 0, sizeof(l));
  for (int i = 0; i < 6; i++) {
    char cql[96];
    snprintf(cql, sizeof(cql), "INSERT INTO ks.t (k, v) VALUES ('%d', 'x')", i);
    bt_leg(&t, &l[i], cql);
    assert_int_equal(bt_send(&t, &l[i]), 0);
  }
  assert_true(bt_wait(&t, 6, 5000));
  for (int i = 0; i < 6; i++) {
    assert_int_equal(l[i].failures, 0);
    assert_int_equal(bt_result_kind(&l[i]), TDM_RESULT_VOID);
  }
  assert_true(tb_count(&t.f, "what=requests node=1 op=QUERY") > 0); /* the second node was used */
  assert_int_equal(tb_count(&t.f, "what=auth_failed"), 0);
  bt_free_legs(l, 6);
  bt_finish(&t);
}

/* {p}_{origin,target,async}_failed_connections_total and the async gauges. */
static void test_failed_connections_and_async_gauges(void **state)
{
  bt_t t;
  const char *args[] = { "--auth", "alice:secret", "--auth", "svc:svcpw", NULL };
  bt_init(&t, 1, args, "origin_username: svc\norigin_password: svcpw\n");
  /* a client's wrong password is not a failed connection */
  tdm_credentials_t bad = { .authzid = "", .user = "alice", .password = "wrong" };
  tdm_session_key_t key = t.key;
  key.creds = &bad;
  sess_t s;
  open_session(&t, &key, &s);
  assert_int_equal(s.err, TDM_EINVAL);
  assert_int_equal(tdm_backend_failed_connections(t.be, TDM_CONF_ORIGIN, false), 0);
  /* an async leg held by the node: async gauges move, sync ones do not */
  tb_cmd(&t.f, "RULE ADD op=QUERY match=slow delay=400");
  t.key.async = true;
  tleg_t l[2];
  memset(l, 0, sizeof(l));
  bt_leg(&t, &l[0], "SELECT v FROM ks.slow");
  assert_int_equal(bt_send(&t, &l[0]), 0);
  tb_run_for(&t.f, 150);
  tdm_backend_node_stats_t g = bt_stats(&t, 0);
  assert_int_equal(g.async_connections, 1);
  assert_int_equal(g.async_stream_ids, 1);
  assert_int_equal(g.connections, 0);
  assert_int_equal(g.stream_ids, 0);
  assert_int_equal(g.inflight, 1);
  assert_true(bt_wait(&t, 1, 3000));
  g = bt_stats(&t, 0);
  assert_int_equal(g.async_stream_ids, 0);
  t.key.async = false;
  bt_leg(&t, &l[1], "SELECT v FROM ks.slow");
  assert_int_equal(bt_send(&t, &l[1]), 0);
  tb_run_for(&t.f, 150);
  g = bt_stats(&t, 0);
  assert_int_equal(g.connections, 1);
  assert_int_equal(g.stream_ids, 1);
  assert_int_equal(g.async_connections, 1);
  assert_int_equal(g.async_stream_ids, 0);
  assert_true(bt_wait(&t, 2, 3000));
  /* a node that refuses connections: one failure per pool kind */
  tb_cmd(&t.f, "STOP node=0");
  tdm_session_key_t k3 = t.key;
  k3.version = TDM_PROTO_V3; /* a pool with no connection yet */
  open_session(&t, &k3, &s);
  assert_true(s.err < 0);
  assert_int_equal(tdm_backend_failed_connections(t.be, TDM_CONF_ORIGIN, false), 1);
  assert_int_equal(tdm_backend_failed_connections(t.be, TDM_CONF_ORIGIN, true), 0);
  assert_int_equal(tdm_backend_failed_connections(t.be, TDM_CONF_TARGET, false), 0);
  bt_free_legs(l, 2);
  bt_finish(&t);
}

static void test_failed_connections_async(void **state)
{
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  tb_cmd(&t.f, "STOP node=0");
  tdm_session_key_t key = t.key;
  key.async = true;
  sess_t s;
  open_session(&t, &key, &s);
  assert_true(s.err < 0);
  assert_int_equal(tdm_backend_failed_connections(t.be, TDM_CONF_ORIGIN, true), 1);
  assert_int_equal(tdm_backend_failed_connections(t.be, TDM_CONF_ORIGIN, false), 0);
  bt_finish(&t);
}

int main(void)
{
  tdm_log_set_level(TDM_LOG_FATAL);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_verified_uses_ready_pool),
    cmocka_unit_test(test_verified_reconnects_with_pool_password),
    cmocka_unit_test(test_verified_new_pool),
    cmocka_unit_test(test_leg_pools_borrow_identity_password),
    cmocka_unit_test(test_failed_connections_and_async_gauges),
    cmocka_unit_test(test_failed_connections_async),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
