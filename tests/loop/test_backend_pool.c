/* Pooled, multiplexed backend connections against the mock cluster: 500 legs over one connection with
 * the right bodies, least-in-flight spreading over 3 nodes, stream-id exhaustion with
 * proxy_max_stream_ids 16 (queueing, then all succeed: SI-04), abandon of queued and written legs
 * (late responses counted, ids freed), recycling of a connection whose ids are mostly orphaned, idle
 * close of spare connections, and pool growth. Every test ends with uv_loop_close() == 0. */
#include "test_backend_legs.h"

#define N500 500

static void test_500_legs_one_connection(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, "backend_pool_max_connections_per_node: 1\n");
  tleg_t *legs = calloc(N500, sizeof(*legs));
  char cql[128], want[32], got[64];
  for (int i = 0; i < N500; i++) {
    snprintf(cql, sizeof(cql), "INSERT INTO ks.kv (k, v) VALUES ('k%d', 'value-%d')", i, i * 7);
    bt_leg(&t, &legs[i], cql);
    legs[i].idx = i;
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  assert_true(bt_wait(&t, N500, 10000));
  for (int i = 0; i < N500; i++) {
    assert_int_equal(legs[i].responses, 1);
    assert_int_equal(legs[i].failures, 0);
    assert_int_equal(bt_result_kind(&legs[i]), TDM_RESULT_VOID);
    assert_int_equal(legs[i].leg.node, 0);
    assert_true(legs[i].leg.sent_at_ms > 0);
  }
  /* every SELECT gets its own row back */
  t.done = 0;
  for (int i = 0; i < N500; i++) {
    snprintf(cql, sizeof(cql), "SELECT v FROM ks.kv WHERE k = 'k%d'", i);
    bt_leg(&t, &legs[i], cql);
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  assert_true(bt_wait(&t, N500, 10000));
  for (int i = 0; i < N500; i++) {
    assert_int_equal(legs[i].responses, 1);
    snprintf(want, sizeof(want), "value-%d", i * 7);
    assert_true(bt_cell(&legs[i], got, sizeof(got)));
    assert_string_equal(got, want);
  }
  /* all of it on one pool connection; gauges back to zero */
  assert_int_equal(tb_count(&t.f, "what=connections"), 1);
  assert_int_equal(tb_count(&t.f, "op=QUERY"), 2 * N500);
  tdm_backend_node_stats_t s = bt_stats(&t, 0);
  assert_int_equal(s.connections, 1);
  assert_int_equal(s.inflight, 0);
  assert_int_equal(s.stream_ids, 0);
  bt_free_legs(legs, N500);
  free(legs);
  bt_finish(&t);
}

static void test_spread_least_inflight(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 3, NULL, NULL);
  tb_cmd(&t.f, "RULE ADD op=QUERY match=spread delay=300");
  enum { N = 300 };
  tleg_t *legs = calloc(N, sizeof(*legs));
  for (int i = 0; i < N; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.spread");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  /* while the node holds them: one third each, in flight */
  tb_run_for(&t.f, 150);
  for (size_t n = 0; n < 3; n++) {
    tdm_backend_node_stats_t s = bt_stats(&t, n);
    assert_int_equal(s.inflight, N / 3);
    assert_int_equal(s.connections, 1);
  }
  assert_true(bt_wait(&t, N, 5000));
  int per[3] = { 0 };
  for (int i = 0; i < N; i++) {
    assert_int_equal(legs[i].responses, 1);
    assert_true(legs[i].leg.node >= 0 && legs[i].leg.node < 3);
    per[legs[i].leg.node]++;
  }
  char f[64];
  for (int n = 0; n < 3; n++) {
    assert_int_equal(per[n], N / 3);
    snprintf(f, sizeof(f), "op=QUERY node=%d match=spread", n);
    assert_int_equal(tb_count(&t.f, f), N / 3);
  }
  /* a busy node gets fewer: 30 slow legs pinned on node 0, then 60 more spread over 1 and 2 */
  t.done = 0;
  for (int i = 0; i < 30; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.spread");
    legs[i].leg.pin_node = 0;
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  for (int i = 30; i < 90; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.other");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  assert_true(bt_wait(&t, 90, 5000));
  for (int i = 30; i < 90; i++) assert_true(legs[i].leg.node == 1 || legs[i].leg.node == 2);
  bt_free_legs(legs, N);
  free(legs);
  bt_finish(&t);
}

typedef struct peak_s {
  bt_t *t;            /* test */
  uint32_t max_ids;   /* highest stream_ids gauge seen on any node */
  uint32_t max_conns; /* highest connections gauge */
} peak_t;

static void test_stream_id_exhaustion(void **state)
{
  (void)state;
  bt_t t;
  /* SI-04: 16 ids per connection (12 for legs, 4 internal), one connection per node, 500 legs */
  bt_init(&t, 3, NULL, "proxy_max_stream_ids: 16\nbackend_pool_max_connections_per_node: 1\n");
  tb_cmd(&t.f, "RULE ADD op=QUERY delay=5");
  tleg_t *legs = calloc(N500, sizeof(*legs));
  char cql[128];
  for (int i = 0; i < N500; i++) {
    snprintf(cql, sizeof(cql), "INSERT INTO ks.si (k, v) VALUES ('k%d', 'v')", i);
    bt_leg(&t, &legs[i], cql);
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  /* queued in the backend: nothing refused, at most 12 in flight per node */
  peak_t peak = { &t, 0, 0 };
  uint64_t end = uv_hrtime() / 1000000u + 20000;
  while (t.done < N500 && uv_hrtime() / 1000000u < end) {
    tb_run_for(&t.f, 5);
    for (size_t n = 0; n < 3; n++) {
      tdm_backend_node_stats_t s = bt_stats(&t, n);
      peak.max_ids = TDM_MAX(peak.max_ids, s.stream_ids);
      peak.max_conns = TDM_MAX(peak.max_conns, s.connections);
      assert_true(s.inflight <= 12);
    }
  }
  assert_int_equal(t.done, N500);
  assert_int_equal(peak.max_ids, 12);
  assert_int_equal(peak.max_conns, 1);
  for (int i = 0; i < N500; i++) {
    assert_int_equal(legs[i].failures, 0);
    assert_int_equal(legs[i].responses, 1);
    assert_int_equal(bt_result_kind(&legs[i]), TDM_RESULT_VOID);
  }
  assert_int_equal(tb_count(&t.f, "what=connections"), 3);
  assert_int_equal(tb_count(&t.f, "op=QUERY"), N500);
  for (size_t n = 0; n < 3; n++) {
    tdm_backend_node_stats_t s = bt_stats(&t, n);
    assert_int_equal(s.stream_ids, 0);
    assert_int_equal(s.inflight, 0);
  }
  bt_free_legs(legs, N500);
  free(legs);
  bt_finish(&t);
}

static void test_abandon(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, "proxy_max_stream_ids: 16\nbackend_pool_max_connections_per_node: 1\n");
  tb_cmd(&t.f, "RULE ADD op=QUERY match=slow delay=300");
  enum { N = 15 };
  tleg_t legs[N];
  memset(legs, 0, sizeof(legs));
  for (int i = 0; i < N; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.slow");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  tb_run_for(&t.f, 100);
  /* 12 written, 3 waiting for ids */
  tdm_backend_node_stats_t s = bt_stats(&t, 0);
  assert_int_equal(s.inflight, 12);
  assert_int_equal(s.stream_ids, 12);
  /* two written legs and one queued leg are abandoned: no callback for them, ever */
  tdm_backend_abandon(&legs[0].leg);
  tdm_backend_abandon(&legs[5].leg);
  tdm_backend_abandon(&legs[13].leg);
  assert_int_equal(legs[13].leg.state, legs[0].leg.state);
  assert_int_equal(tdm_backend_late_responses(t.be, TDM_CONF_ORIGIN), 0);
  assert_true(bt_wait(&t, N - 3, 5000));
  tb_run_for(&t.f, 100);
  assert_int_equal(t.done, N - 3);
  for (int i = 0; i < N; i++) {
    bool abandoned = i == 0 || i == 5 || i == 13;
    assert_int_equal(legs[i].responses, abandoned ? 0 : 1);
    assert_int_equal(legs[i].failures, 0);
  }
  /* the late responses of the two written ones were read, counted and freed their ids */
  assert_int_equal(tdm_backend_late_responses(t.be, TDM_CONF_ORIGIN), 2);
  s = bt_stats(&t, 0);
  assert_int_equal(s.stream_ids, 0);
  assert_int_equal(s.inflight, 0);
  /* the abandoned queued leg was never sent */
  assert_int_equal(tb_count(&t.f, "op=QUERY match=slow"), N - 1);
  bt_free_legs(legs, N);
  bt_finish(&t);
}

static void test_recycle_orphaned_connection(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, "proxy_max_stream_ids: 16\nbackend_pool_max_connections_per_node: 1\n");
  tb_cmd(&t.f, "RULE ADD op=QUERY match=stuck delay=400");
  enum { N = 12 };
  tleg_t legs[N + 4];
  memset(legs, 0, sizeof(legs));
  for (int i = 0; i < N; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.stuck");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  tb_run_for(&t.f, 100);
  assert_int_equal(bt_stats(&t, 0).inflight, N);
  /* 7 of 12 ids held by abandoned legs: more than half, the connection is recycled */
  for (int i = 0; i < 7; i++) tdm_backend_abandon(&legs[i].leg);
  /* new legs go to a fresh connection while the old one finishes its 5 */
  for (int i = N; i < N + 4; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.fresh");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  assert_true(bt_wait(&t, 4, 300)); /* the fresh ones are not delayed */
  for (int i = N; i < N + 4; i++) assert_int_equal(legs[i].responses, 1);
  assert_int_equal(tb_count(&t.f, "what=connections"), 2);
  assert_true(bt_wait(&t, 4 + 5, 3000));
  tb_run_for(&t.f, 200);
  for (int i = 7; i < N; i++) assert_int_equal(legs[i].responses, 1);
  assert_int_equal(tdm_backend_late_responses(t.be, TDM_CONF_ORIGIN), 7);
  /* the recycled connection closed once empty */
  tdm_backend_node_stats_t s = bt_stats(&t, 0);
  assert_int_equal(s.connections, 1);
  assert_int_equal(s.stream_ids, 0);
  bt_free_legs(legs, N + 4);
  bt_finish(&t);
}

static bool one_connection(void *arg)
{
  bt_t *t = arg;
  return bt_stats(t, 0).connections == 1;
}

static void test_grow_and_idle_close(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL,
          "proxy_max_stream_ids: 16\nbackend_pool_max_connections_per_node: 4\nbackend_pool_idle_timeout_ms: 300\n");
  tb_cmd(&t.f, "RULE ADD op=QUERY match=grow delay=200");
  enum { N = 40 };
  tleg_t legs[N];
  memset(legs, 0, sizeof(legs));
  for (int i = 0; i < N; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.grow");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  /* 40 legs need 4 connections of 12 ids: the pool grows to its limit, not beyond */
  tb_run_for(&t.f, 100);
  assert_int_equal(bt_stats(&t, 0).connections, 4);
  assert_int_equal(bt_stats(&t, 0).inflight, N);
  assert_true(bt_wait(&t, N, 3000));
  assert_int_equal(tb_count(&t.f, "what=connections"), 4);
  /* idle spare connections close after backend_pool_idle_timeout_ms; the first one stays */
  assert_true(tb_run_until(&t.f, one_connection, &t, 2000));
  tb_run_for(&t.f, 500);
  assert_int_equal(bt_stats(&t, 0).connections, 1);
  bt_free_legs(legs, N);
  bt_finish(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_500_legs_one_connection), cmocka_unit_test(test_spread_least_inflight),
    cmocka_unit_test(test_stream_id_exhaustion),    cmocka_unit_test(test_abandon),
    cmocka_unit_test(test_recycle_orphaned_connection), cmocka_unit_test(test_grow_and_idle_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
