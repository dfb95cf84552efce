/* Backend series on /metrics that the workers fill (behaviour.md §13.1): with async reads on, a mirrored
 * SELECT opens an async pool connection to TARGET, shown as {p}_async_connections_total{node} apart
 * from TARGET's synchronous pool; a TARGET node that stops accepting makes a new pool's connection fail,
 * counted in {p}_proxy_failed_connections_total{cluster="target"} and {p}_target_failed_connections_total. */
#include "test_instance_harness.h"
#include <tandem/proto/opcodes.h>

static void expect_in(const char *body, const char *needle)
{
  if (!strstr(body, needle))
    fail_msg("missing %s in:\n%.4000s", needle, body);
}

static char *scrape(tdm_it_env_t *e)
{
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e->metrics, "GET", "/metrics", NULL, &r), 0);
  assert_int_equal(r.status, 200);
  char *b = r.body;
  r.body = NULL;
  tdm_it_http_free(&r);
  return b;
}

/* Scrapes until needle shows up (gauges follow the workers' state a little later); fails otherwise. */
static void wait_metric(tdm_it_env_t *e, const char *needle)
{
  uint64_t deadline = tdm_it_now_ms() + 5000;
  for (;;) {
    char *b = scrape(e);
    bool ok = strstr(b, needle) != NULL;
    if (ok || tdm_it_now_ms() > deadline) {
      if (!ok)
        fail_msg("missing %s in:\n%.4000s", needle, b);
      free(b);
      return;
    }
    free(b);
    tdm_it_sleep_ms(50);
  }
}

static void test_async_gauges_and_failed_connections(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "metrics-backend");
  tdm_it_env_write_conf(&e, "workers: 1\nread_mode: DUAL_ASYNC_ON_SECONDARY\n");
  tdm_it_env_up(&e);
  tdm_mockctl_cql_t c;
  uint32_t code;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e.client, 4), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, NULL, NULL, NULL, &code), 0);
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_query(&c, 1, "SELECT v FROM ks.t WHERE k = 'a'", &f, 5000), 0);
  assert_int_equal(f.h.opcode, TDM_OP_RESULT);
  tdm_mockctl_frame_free(&f);
  char want[200];
  /* the mirrored read went over an async pool connection to TARGET; the client's session has its own */
  snprintf(want, sizeof(want), "\ntandem_async_connections_total{node=\"127.0.0.1:%u\"} 1\n", e.port[1]);
  wait_metric(&e, want);
  snprintf(want, sizeof(want), "\ntandem_target_connections_total{node=\"127.0.0.1:%u\"} 1\n", e.port[1]);
  wait_metric(&e, want);
  snprintf(want, sizeof(want), "\ntandem_async_used_stream_ids_total{node=\"127.0.0.1:%u\"} 0\n", e.port[1]);
  wait_metric(&e, want);
  char *b = scrape(&e);
  expect_in(b, "\ntandem_proxy_failed_connections_total{cluster=\"target\"} 0\n");
  free(b);
  /* TARGET stops accepting (open connections stay): a v3 client needs new pools, TARGET's cannot open */
  assert_int_equal(tdm_mockctl_cmd(&e.mock[1], NULL, 0, "STOP node=0 kill=0"), 0);
  tdm_mockctl_cql_t c3;
  assert_int_equal(tdm_mockctl_cql_connect(&c3, "127.0.0.1", e.client, 3), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c3, NULL, NULL, NULL, &code), TDM_EINVAL);
  assert_int_equal(code, TDM_ERR_SERVER_ERROR);
  tdm_mockctl_cql_close(&c3);
  wait_metric(&e, "\ntandem_proxy_failed_connections_total{cluster=\"target\"} 1\n");
  b = scrape(&e);
  expect_in(b, "\ntandem_proxy_failed_connections_total{cluster=\"origin\"} 0\n");
  expect_in(b, "\ntandem_target_failed_connections_total{node=\"all\"} 1\n");
  expect_in(b, "\ntandem_async_failed_connections_total{node=\"all\"} 0\n");
  free(b);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_async_gauges_and_failed_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
