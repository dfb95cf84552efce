/* /metrics of build/tandem (behaviour.md §13.1; test-scenarios LC-09): a live scrape under the default
 * prefix and under `metrics_prefix: zdm` (every zdm-proxy-compatible family present, nothing named
 * tandem_*), node labels from the topology, the process collectors, values after a scripted write
 * through tandem, and `promtool check metrics` on a live scrape when promtool is installed. */
#include "test_instance_harness.h"

static void expect_in(const char *body, const char *needle)
{
  if (!strstr(body, needle))
    fail_msg("missing %s in:\n%.3000s", needle, body);
}

static char *scrape(tdm_it_env_t *e)
{
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e->metrics, "GET", "/metrics", NULL, &r), 0);
  assert_int_equal(r.status, 200);
  expect_in(r.headers, "Content-Type: text/plain; version=0.0.4");
  char *b = r.body;
  r.body = NULL;
  tdm_it_http_free(&r);
  return b;
}

static const char *const zdm_families[] = {
  "zdm_proxy_failed_connections_total",  "zdm_proxy_failed_reads_total",        "zdm_proxy_failed_writes_total",
  "zdm_proxy_request_duration_seconds",  "zdm_proxy_inflight_requests_total",   "zdm_pscache_entries_total",
  "zdm_pscache_miss_total",              "zdm_client_connections_total",        "zdm_origin_requests_failed_total",
  "zdm_target_requests_failed_total",    "zdm_async_requests_failed_total",     "zdm_origin_request_duration_seconds",
  "zdm_target_request_duration_seconds", "zdm_async_request_duration_seconds",  "zdm_origin_connections_total",
  "zdm_target_connections_total",        "zdm_async_connections_total",         "zdm_origin_failed_connections_total",
  "zdm_target_failed_connections_total", "zdm_async_failed_connections_total",  "zdm_async_inflight_requests_total",
  "zdm_origin_used_stream_ids_total",    "zdm_target_used_stream_ids_total",    "zdm_async_used_stream_ids_total",
};

/* promtool on the scrape, if it is installed; a message otherwise. */
static void promtool_check(const char *dir, const char *text)
{
  if (system("command -v promtool >/dev/null 2>&1") != 0) {
    print_message("promtool not installed (Debian package prometheus): live scrape not checked by promtool\n");
    return;
  }
  char path[400], cmd[900];
  snprintf(path, sizeof(path), "%s/scrape.txt", dir);
  tdm_it_write_file(path, text);
  snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
  int rc = system(cmd);
  if (rc != 0) {
    snprintf(cmd, sizeof(cmd), "%s.out", path);
    char *out = tdm_it_read_file(cmd);
    /* promtool's lint warns about naming conventions zdm-proxy chose (e.g. a gauge ending in _total);
     * only parse errors fail the check. */
    if (strstr(out, "error while linting") || strstr(out, "text format parsing error"))
      fail_msg("promtool check metrics failed:\n%s", out);
    print_message("promtool lint notes (not errors):\n%s\n", out);
    free(out);
  }
}

static void test_zdm_prefix(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "metrics-zdm");
  tdm_it_env_write_conf(&e, "metrics_prefix: zdm\n");
  tdm_it_env_up(&e);
  char *b = scrape(&e);
  for (size_t i = 0; i < TDM_ARRAY_SIZE(zdm_families); i++) {
    char line[160];
    snprintf(line, sizeof(line), "\n# TYPE %s ", zdm_families[i]);
    expect_in(b, line);
  }
  assert_null(strstr(b, "tandem_"));
  char want[160];
  snprintf(want, sizeof(want), "\nzdm_origin_connections_total{node=\"127.0.0.1:%u\"} ", e.port[0]);
  expect_in(b, want);
  snprintf(want, sizeof(want), "\nzdm_target_used_stream_ids_total{node=\"127.0.0.1:%u\"} ", e.port[1]);
  expect_in(b, want);
  expect_in(b, "\nprocess_cpu_seconds_total ");
  expect_in(b, "\nprocess_resident_memory_bytes ");
  expect_in(b, "\nprocess_open_fds ");
  expect_in(b, "\nprocess_max_fds ");
  expect_in(b, "\nprocess_start_time_seconds ");
  expect_in(b, "\nprocess_virtual_memory_bytes ");
  expect_in(b, "\nzdm_config_epoch 1\n");
  /* Every sample line is `name{labels} value` or `name value` with a number. */
  for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#')
      continue;
    char *sp = strrchr(line, ' ');
    assert_non_null(sp);
    char *end;
    strtod(sp + 1, &end);
    if (*end != '\0' || end == sp + 1)
      fail_msg("bad sample: %s", line);
  }
  free(b);
  b = scrape(&e);
  promtool_check(e.dir, b);
  free(b);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

static void test_values_after_writes(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "metrics-values");
  tdm_it_env_write_conf(&e, NULL);
  tdm_it_env_up(&e);
  tdm_mockctl_cql_t c;
  uint32_t code;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e.client, 4), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, NULL, NULL, NULL, &code), 0);
  for (int i = 0; i < 5; i++) {
    tdm_mockctl_frame_t f;
    char q[96];
    snprintf(q, sizeof(q), "INSERT INTO ks.t (k, v) VALUES (%d, 'metrics')", i);
    assert_int_equal(tdm_mockctl_cql_query(&c, (int16_t)(i + 1), q, &f, 5000), 0);
    assert_int_equal(f.h.opcode, 0x08);
    tdm_mockctl_frame_free(&f);
  }
  char *b = scrape(&e);
  expect_in(b, "\ntandem_client_connections_total 1\n");
  expect_in(b, "\ntandem_client_connections_by_version{version=\"v4\"} 1\n");
  expect_in(b, "\ntandem_proxy_request_duration_seconds_count{type=\"writes\"} 5\n");
  expect_in(b, "\ntandem_proxy_request_duration_seconds_bucket{type=\"writes\",le=\"+Inf\"} 5\n");
  expect_in(b, "\ntandem_proxy_inflight_requests_total{type=\"writes\"} 0\n");
  expect_in(b, "\ntandem_proxy_failed_writes_total{failed_on=\"both\"} 0\n");
  char want[160];
  snprintf(want, sizeof(want), "\ntandem_origin_connections_total{node=\"127.0.0.1:%u\"} ", e.port[0]);
  expect_in(b, want);
  free(b);
  tdm_mockctl_cql_close(&c);
  b = scrape(&e);
  promtool_check(e.dir, b);
  free(b);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_zdm_prefix),
    cmocka_unit_test(test_values_after_writes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
