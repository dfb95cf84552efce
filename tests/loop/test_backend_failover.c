/* Backend failure handling against the mock cluster: a killed connection fails its written legs with
 * TDM_ECLOSED (written=true, reason = the node) while legs that waited for ids move to another node; the
 * failed node stays out for its cooldown; an unreachable cluster fails legs with TDM_EUNAVAILABLE
 * (written=false) and send refuses at once; closing the backend fails everything pending exactly once;
 * a node that leaves the topology drains; a DOWN node is skipped; pool heartbeats are sent on idle
 * connections and a silent node fails them. Every test ends with uv_loop_close() == 0. */
#include "test_backend_legs.h"

static void test_kill_connection(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 2, NULL, "proxy_max_stream_ids: 16\nbackend_pool_max_connections_per_node: 1\n");
  /* start with node 0 alone, whose answers never come */
  tdm_topology_t *one = tb_topology(&t.f, TDM_CONF_ORIGIN);
  one->n_nodes = 1;
  tdm_backend_set_topology(t.be, one);
  tb_cmd(&t.f, "RULE ADD op=QUERY match=hang node=0 action=noreply");
  enum { N = 20 };
  tleg_t legs[N + 10];
  memset(legs, 0, sizeof(legs));
  for (int i = 0; i < N; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.hang");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  tb_run_for(&t.f, 200);
  assert_int_equal(bt_stats(&t, 0).inflight, 12); /* 12 written, 8 waiting for ids */
  assert_int_equal(t.done, 0);
  /* node 1 joins, then node 0 dies (its listener too) */
  tdm_backend_set_topology(t.be, t.topo);
  tb_cmd(&t.f, "STOP node=0");
  assert_true(bt_wait(&t, N, 5000));
  char node0[64];
  snprintf(node0, sizeof(node0), "127.0.0.1:%u", (unsigned)tb_node_port(&t.f, 0));
  int failed = 0, moved = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(legs[i].responses + legs[i].failures, 1);
    if (legs[i].failures) {
      /* written: it may have run, so it is reported, never re-sent */
      assert_int_equal(legs[i].err, TDM_ECLOSED);
      assert_true(legs[i].written);
      assert_string_equal(legs[i].reason, node0);
      failed++;
    } else {
      /* never sent: re-dispatched to the other node */
      assert_int_equal(legs[i].leg.node, 1);
      assert_int_equal(bt_result_kind(&legs[i]), TDM_RESULT_ROWS);
      moved++;
    }
  }
  assert_int_equal(failed, 12);
  assert_int_equal(moved, 8);
  assert_int_equal(tb_count(&t.f, "op=QUERY node=1"), 8);
  /* node 0 is in its 10 s cooldown: even listening again it gets nothing */
  tb_cmd(&t.f, "START node=0");
  int64_t conns0 = tb_count(&t.f, "what=connections node=0");
  t.done = 0;
  for (int i = N; i < N + 10; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.after");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  assert_true(bt_wait(&t, 10, 3000));
  for (int i = N; i < N + 10; i++) {
    assert_int_equal(legs[i].responses, 1);
    assert_int_equal(legs[i].leg.node, 1);
  }
  assert_int_equal(tb_count(&t.f, "what=connections node=0"), conns0);
  assert_true(tdm_backend_reachable(t.be, TDM_CONF_ORIGIN));
  assert_int_equal(bt_stats(&t, 0).stream_ids, 0);
  assert_int_equal(bt_stats(&t, 0).connections, 0);
  bt_free_legs(legs, N + 10);
  tdm_topology_unref(one);
  bt_finish(&t);
}

static void test_unreachable(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, NULL);
  tb_cmd(&t.f, "STOP node=0");
  assert_true(tdm_backend_reachable(t.be, TDM_CONF_ORIGIN)); /* not known to be down yet */
  tleg_t l[2];
  memset(l, 0, sizeof(l));
  bt_leg(&t, &l[0], "SELECT * FROM ks.x");
  assert_int_equal(bt_send(&t, &l[0]), 0);
  assert_true(bt_wait(&t, 1, 3000));
  assert_int_equal(l[0].failures, 1);
  assert_int_equal(l[0].err, TDM_EUNAVAILABLE);
  assert_false(l[0].written);
  assert_non_null(strstr(l[0].reason, "connection refused"));
  /* now known down: nothing is even queued */
  assert_false(tdm_backend_reachable(t.be, TDM_CONF_ORIGIN));
  bt_leg(&t, &l[1], "SELECT * FROM ks.x");
  assert_int_equal(bt_send(&t, &l[1]), TDM_EUNAVAILABLE);
  tb_run_for(&t.f, 50);
  assert_int_equal(l[1].responses + l[1].failures, 0); /* no callback after a synchronous refusal */
  /* the other cluster was never given a topology */
  assert_false(tdm_backend_reachable(t.be, TDM_CONF_TARGET));
  bt_free_legs(l, 2);
  bt_finish(&t);
}

static void test_close_with_pending(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, "proxy_max_stream_ids: 16\nbackend_pool_max_connections_per_node: 1\n");
  tb_cmd(&t.f, "RULE ADD op=QUERY match=pend delay=2000");
  enum { N = 15 };
  tleg_t legs[N];
  memset(legs, 0, sizeof(legs));
  for (int i = 0; i < N; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.pend");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  tb_run_for(&t.f, 150);
  assert_int_equal(t.done, 0);
  tdm_backend_close(t.be);
  /* every leg heard exactly once, at close */
  assert_int_equal(t.done, N);
  int written = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(legs[i].failures, 1);
    assert_int_equal(legs[i].err, TDM_ECLOSED);
    written += legs[i].written;
  }
  assert_int_equal(written, 12);
  t.be = NULL;
  bt_free_legs(legs, N);
  tdm_topology_unref(t.topo);
  tb_finish(&t.f);
}

static bool node0_idle(void *arg)
{
  bt_t *t = arg;
  return tb_count(&t->f, "what=connections node=0") > 0 && t->done >= 5;
}

static void test_node_removed(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 2, NULL, NULL);
  tb_cmd(&t.f, "RULE ADD op=QUERY match=drain delay=300");
  tleg_t legs[10];
  memset(legs, 0, sizeof(legs));
  for (int i = 0; i < 5; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.drain");
    legs[i].leg.pin_node = 0;
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  tb_run_for(&t.f, 100);
  assert_int_equal(bt_stats(&t, 0).inflight, 5);
  /* node 0 leaves: its in-flight legs still complete, then its connection closes */
  tdm_topology_t *only1 = tb_topology(&t.f, TDM_CONF_ORIGIN);
  only1->nodes[0] = only1->nodes[1];
  only1->n_nodes = 1;
  tdm_backend_set_topology(t.be, only1);
  assert_true(tb_run_until(&t.f, node0_idle, &t, 3000));
  for (int i = 0; i < 5; i++) assert_int_equal(legs[i].responses, 1);
  tb_run_for(&t.f, 200);
  char reply[4096];
  assert_int_equal(tdm_mockctl_cmd(&t.f.mock, reply, sizeof(reply), "STATS node=0"), 0);
  assert_non_null(strstr(reply, "\"connections_open\":0"));
  /* new legs go to the remaining node, now index 0 of the new snapshot */
  t.done = 0;
  for (int i = 5; i < 10; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.rest");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  assert_true(bt_wait(&t, 5, 3000));
  for (int i = 5; i < 10; i++) assert_int_equal(legs[i].leg.node, 0);
  assert_int_equal(tb_count(&t.f, "op=QUERY node=1 match=rest"), 5);
  bt_free_legs(legs, 10);
  tdm_topology_unref(only1);
  bt_finish(&t);
}

static void test_down_node_skipped(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 3, NULL, NULL);
  tdm_topology_t *d = tb_topology(&t.f, TDM_CONF_ORIGIN);
  d->nodes[1].state = TDM_NODE_DOWN;
  d->nodes[2].local_dc = false; /* another DC: not used either */
  tdm_backend_set_topology(t.be, d);
  tleg_t legs[12];
  memset(legs, 0, sizeof(legs));
  for (int i = 0; i < 12; i++) {
    bt_leg(&t, &legs[i], "SELECT * FROM ks.x");
    assert_int_equal(bt_send(&t, &legs[i]), 0);
  }
  assert_true(bt_wait(&t, 12, 3000));
  for (int i = 0; i < 12; i++) assert_int_equal(legs[i].leg.node, 0);
  assert_int_equal(tb_count(&t.f, "what=connections node=1"), 0);
  assert_int_equal(tb_count(&t.f, "what=connections node=2"), 0);
  bt_free_legs(legs, 12);
  tdm_topology_unref(d);
  bt_finish(&t);
}

static bool hb_failed(void *arg)
{
  tleg_t *l = arg;
  return l->failures > 0;
}

static void test_pool_heartbeat(void **state)
{
  (void)state;
  bt_t t;
  bt_init(&t, 1, NULL, "heartbeat_interval_ms: 100\nproxy_request_timeout_ms: 300\n");
  tleg_t legs[2];
  memset(legs, 0, sizeof(legs));
  bt_leg(&t, &legs[0], "SELECT * FROM ks.x");
  assert_int_equal(bt_send(&t, &legs[0]), 0);
  assert_true(bt_wait(&t, 1, 3000));
  /* idle: OPTIONS every 100 ms, consumed by the backend (no callback) */
  int64_t before = tb_count(&t.f, "op=OPTIONS");
  tb_run_for(&t.f, 800);
  int64_t hb = tb_count(&t.f, "op=OPTIONS") - before;
  assert_true(hb >= 4);
  assert_true(hb <= 9);
  assert_int_equal(t.done, 1);
  assert_int_equal(bt_stats(&t, 0).stream_ids, 0);
  /* a node that stops answering fails the connection: the written leg learns it */
  tb_cmd(&t.f, "RULE ADD op=QUERY,OPTIONS action=noreply");
  bt_leg(&t, &legs[1], "SELECT * FROM ks.x");
  assert_int_equal(bt_send(&t, &legs[1]), 0);
  assert_true(tb_run_until(&t.f, hb_failed, &legs[1], 3000));
  assert_int_equal(legs[1].err, TDM_ETIMEOUT);
  assert_true(legs[1].written);
  assert_int_equal(bt_stats(&t, 0).connections, 0);
  assert_int_equal(bt_stats(&t, 0).stream_ids, 0);
  bt_free_legs(legs, 2);
  bt_finish(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kill_connection),  cmocka_unit_test(test_unreachable),
    cmocka_unit_test(test_close_with_pending), cmocka_unit_test(test_node_removed),
    cmocka_unit_test(test_down_node_skipped), cmocka_unit_test(test_pool_heartbeat),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
