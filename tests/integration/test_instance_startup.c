/* build/tandem between two build/cqlmock processes: start-up before the clusters exist (test-scenarios
 * LC-01: readiness STARTUP, client listener closed, retries until the clusters answer), readiness JSON
 * and codes for STARTUP, UP and DOWN and liveness (LC-08), systemd notifications READY=1 at the first
 * UP and STOPPING=1 on drain (LC-11), a write through tandem reaching both clusters, SIGTERM exit 0. */
#include "test_instance_harness.h"

static void expect_readiness(tdm_it_env_t *e, int status, const char *fragment)
{
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e->metrics, "GET", "/health/readiness", NULL, &r), 0);
  if (r.status != status || !strstr(r.body, fragment))
    fail_msg("readiness: got %d %s; want %d with %s", r.status, r.body, status, fragment);
  assert_non_null(strstr(r.headers, "Content-Type: application/json"));
  tdm_it_http_free(&r);
}

static void test_startup_to_up_to_down(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "startup");
  tdm_it_env_write_conf(&e, "heartbeat_failure_threshold: 1\n");
  /* tandem first: no cluster answers yet. */
  tdm_it_env_tandem(&e);
  assert_true(tdm_it_wait_status(e.metrics, "/health/liveness", 200, 5000));
  expect_readiness(&e, 503, "{\"OriginStatus\":null,\"TargetStatus\":null,\"Status\":\"STARTUP\",\"Tandem\":{\"Epoch\":1,"
                            "\"PrimaryCluster\":\"ORIGIN\",\"ReadMode\":\"PRIMARY_ONLY\",\"Draining\":false,\"Version\":\"");
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e.metrics, "GET", "/health/liveness", NULL, &r), 0);
  assert_string_equal(r.body, "OK");
  tdm_it_http_free(&r);
  assert_false(tdm_it_port_open(e.client));

  /* ORIGIN comes up: still STARTUP, still no client listener. */
  tdm_it_env_mock(&e, 0);
  assert_true(tdm_it_wait_text(e.log, "ORIGIN control connection is up", 5000));
  tdm_it_sleep_ms(300);
  expect_readiness(&e, 503, "\"Status\":\"STARTUP\"");
  assert_false(tdm_it_port_open(e.client));
  char buf[256];
  assert_false(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 0)); /* no READY=1 yet */

  /* TARGET comes up: UP, the listener opens, systemd hears READY=1. */
  tdm_it_env_mock(&e, 1);
  assert_true(tdm_it_wait_status(e.metrics, "/health/readiness", 200, 10000));
  char want[512];
  snprintf(want, sizeof(want),
           "{\"OriginStatus\":{\"Addr\":\"127.0.0.1:%u\",\"CurrentFailureCount\":0,\"FailureCountThreshold\":1,"
           "\"Status\":\"UP\"},\"TargetStatus\":{\"Addr\":\"127.0.0.1:%u\",\"CurrentFailureCount\":0,"
           "\"FailureCountThreshold\":1,\"Status\":\"UP\"},\"Status\":\"UP\",\"Tandem\":{\"Epoch\":1,",
           e.port[0], e.port[1]);
  expect_readiness(&e, 200, want);
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 5000));
  assert_non_null(strstr(buf, "READY=1"));
  uint64_t deadline = tdm_it_now_ms() + 5000;
  while (!tdm_it_port_open(e.client) && tdm_it_now_ms() < deadline)
    tdm_it_sleep_ms(20);
  assert_true(tdm_it_port_open(e.client));

  /* Readiness answers GET only (zdm-proxy answers other methods with 404). */
  assert_int_equal(tdm_it_http(e.metrics, "POST", "/health/readiness", NULL, &r), 0);
  assert_int_equal(r.status, 404);
  tdm_it_http_free(&r);

  /* TARGET goes away: DOWN at the first failure (threshold 1), NOT_CONNECTED, 503. */
  assert_int_equal(tdm_mockctl_cmd(&e.mock[1], NULL, 0, "STOP node=0"), 0);
  assert_true(tdm_it_wait_status(e.metrics, "/health/readiness", 503, 10000));
  expect_readiness(&e, 503, "\"TargetStatus\":{\"Addr\":\"NOT_CONNECTED\",\"CurrentFailureCount\":1,"
                            "\"FailureCountThreshold\":1,\"Status\":\"DOWN\"},\"Status\":\"DOWN\"");
  /* ...and back. */
  assert_int_equal(tdm_mockctl_cmd(&e.mock[1], NULL, 0, "START node=0"), 0);
  assert_true(tdm_it_wait_status(e.metrics, "/health/readiness", 200, 10000));

  /* SIGTERM: STOPPING=1, exit 0. */
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 1000));
  assert_string_equal(buf, "STOPPING=1");
  assert_true(tdm_it_wait_text(e.log, "INFO stopped", 1000));
  assert_int_equal(tdm_it_count_text(e.log, " ERROR "), 0);
  tdm_it_env_fini(&e);
}

/* A client through tandem: handshake, then a write that reaches both clusters once each. */
static void test_write_through(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "through");
  tdm_it_env_write_conf(&e, NULL);
  tdm_it_env_up(&e);
  tdm_mockctl_cql_t c;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e.client, 4), 0);
  uint32_t code = 0;
  int rc = tdm_mockctl_cql_startup(&c, NULL, NULL, NULL, &code);
  if (rc)
    fail_msg("handshake through tandem failed: %s (error code 0x%x)", tdm_strerror(rc), code);
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_query(&c, 1, "INSERT INTO ks.t (k, v) VALUES (1, 'instance-test')", &f, 5000), 0);
  assert_int_equal(f.h.opcode, 0x08); /* RESULT */
  tdm_mockctl_frame_free(&f);
  for (int m = 0; m < 2; m++)
    assert_int_equal(tdm_mockctl_count(&e.mock[m], "COUNT op=QUERY match=instance-test"), 1);
  /* The client shows in the status and the metrics (gauges copied from the workers). */
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e.metrics, "GET", "/api/v1/status", NULL, &r), 0);
  assert_int_equal(r.status, 200);
  if (!strstr(r.body, "\"clients\":{\"total\":1,\"by_version\":{\"v4\":1}"))
    fail_msg("status: %s", r.body);
  tdm_it_http_free(&r);
  /* SIGTERM with the client still connected: it is closed, the drain ends, exit 0, no error logged. */
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  assert_int_equal(tdm_mockctl_cql_recv(&c, 2000, &f), TDM_ECLOSED);
  tdm_mockctl_cql_close(&c);
  if (tdm_it_count_text(e.log, " ERROR ") != 0) {
    char *log = tdm_it_read_file(e.log);
    fail_msg("errors logged:\n%s", log);
  }
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_startup_to_up_to_down),
    cmocka_unit_test(test_write_through),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
