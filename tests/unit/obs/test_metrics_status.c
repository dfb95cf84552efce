/* obs/status: the /api/v1/status document (behaviour.md §13.2, test-scenarios LC-10): every field
 * in its fixed order, the last reload before and after one, per-worker and per-version client counts,
 * and JSON string escaping (quotes, control bytes, invalid UTF-8). */
#include <testlib.h>
#include <tandem/obs/status.h>

static char *render(const tdm_status_t *s)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  assert_int_equal(tdm_status_render(f, s), 0);
  assert_int_equal(fclose(f), 0);
  return buf;
}

static void test_full_document(void **state)
{
  static const char *const pending[] = { "workers", "proxy_listen_port" };
  tdm_status_node_t on[2] = { { "10.0.0.1:9042", "dc1", "UP", 4, 2 }, { "10.0.0.2:9042", "dc2", "DOWN", 0, 0 } };
  tdm_status_node_t tn[1] = { { "[::1]:9042", "", "UP", 1, 0 } };
  tdm_status_worker_t w[2] = { { 3, { 0, 0, 2, 1, 0, 0 } }, { 1, { 0, 1, 0, 0, 0, 0 } } };
  tdm_status_t s = {
    .version = "0.1.0",
    .epoch = 7,
    .config_file = "/etc/tandem.yaml",
    .readiness = "UP",
    .primary_cluster = "TARGET",
    .read_mode = "DUAL_ASYNC_ON_SECONDARY",
    .write_divergence_policy = "PRIMARY_WINS",
    .pending_restart = pending,
    .n_pending_restart = 2,
    .last_reload_ms = 1700000000123LL,
    .last_reload_result = "rejected",
    .last_reload_error = "t.yaml:3:1: unknown key 'bogus'",
    .clusters = { { "UP", "10.0.0.1:9042", 0, NULL, on, 2 }, { "DOWN", NULL, 2, "connection refused", tn, 1 } },
    .workers = w,
    .n_workers = 2,
  };
  char *got = render(&s);
  assert_string_equal(
    got,
    "{\"version\":\"0.1.0\",\"epoch\":7,\"config_file\":\"/etc/tandem.yaml\",\"readiness\":\"UP\",\"draining\":false,"
    "\"primary_cluster\":\"TARGET\",\"read_mode\":\"DUAL_ASYNC_ON_SECONDARY\",\"write_divergence_policy\":\"PRIMARY_WINS\","
    "\"pending_restart\":[\"workers\",\"proxy_listen_port\"],"
    "\"last_reload\":{\"time\":\"2023-11-14T22:13:20.123Z\",\"result\":\"rejected\",\"error\":\"t.yaml:3:1: unknown key "
    "'bogus'\"},"
    "\"clusters\":{\"origin\":{\"status\":\"UP\",\"control_node\":\"10.0.0.1:9042\",\"failures\":0,\"last_error\":null,"
    "\"nodes\":[{\"node\":\"10.0.0.1:9042\",\"dc\":\"dc1\",\"state\":\"UP\",\"connections\":4,\"in_flight\":2},"
    "{\"node\":\"10.0.0.2:9042\",\"dc\":\"dc2\",\"state\":\"DOWN\",\"connections\":0,\"in_flight\":0}]},"
    "\"target\":{\"status\":\"DOWN\",\"control_node\":null,\"failures\":2,\"last_error\":\"connection refused\","
    "\"nodes\":[{\"node\":\"[::1]:9042\",\"dc\":\"\",\"state\":\"UP\",\"connections\":1,\"in_flight\":0}]}},"
    "\"clients\":{\"total\":4,\"by_version\":{\"v3\":1,\"v4\":2,\"v5\":1},"
    "\"by_worker\":[{\"worker\":0,\"connections\":3,\"by_version\":{\"v4\":2,\"v5\":1}},"
    "{\"worker\":1,\"connections\":1,\"by_version\":{\"v3\":1}}]}}");
  free(got);
}

static void test_before_any_reload(void **state)
{
  tdm_status_t s = { .version = "0.1.0", .epoch = 1, .readiness = "STARTUP", .draining = true };
  char *got = render(&s);
  assert_non_null(strstr(got, "\"config_file\":null,\"readiness\":\"STARTUP\",\"draining\":true,"));
  assert_non_null(strstr(got, "\"pending_restart\":[],\"last_reload\":{\"time\":null,\"result\":null,\"error\":null},"));
  assert_non_null(strstr(got, "\"origin\":{\"status\":\"STARTUP\",\"control_node\":null,\"failures\":0,\"last_error\":null,"
                              "\"nodes\":[]}"));
  assert_non_null(strstr(got, "\"clients\":{\"total\":0,\"by_version\":{},\"by_worker\":[]}}"));
  free(got);
}

static void test_json_escaping(void **state)
{
  static const struct { const char *in, *out; } cases[] = {
    { "plain", "\"plain\"" },
    { "q\"b\\s", "\"q\\\"b\\\\s\"" },
    { "a\nb\tc\x01", "\"a\\nb\\tc\\u0001\"" },
    { "caf\xc3\xa9 \xe2\x86\x92", "\"caf\xc3\xa9 \xe2\x86\x92\"" }, /* valid UTF-8 kept */
    { "bad\xff\xc3", "\"bad\\u00ff\\u00c3\"" },                     /* invalid bytes escaped */
    { "\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"" },                /* a surrogate is not UTF-8 */
    { "\xc0\xaf", "\"\\u00c0\\u00af\"" },                           /* overlong */
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tdm_status_json_string(f, cases[i].in);
    fclose(f);
    assert_string_equal(buf, cases[i].out);
    free(buf);
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tdm_status_json_string(f, NULL);
  fclose(f);
  assert_string_equal(buf, "null");
  free(buf);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_full_document),
    cmocka_unit_test(test_before_any_reload),
    cmocka_unit_test(test_json_escaping),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
