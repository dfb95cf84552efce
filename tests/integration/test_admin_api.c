/* The admin listener of build/tandem (behaviour.md §13.2; test-scenarios LC-10): GET /api/v1/status
 * on both listeners with every documented field; POST /api/v1/reload with the bearer token (401 without
 * or with a wrong one, 200 + status when applied, 422 + status when rejected), a token file changed
 * live, routing (405 for a wrong method, 404 for other paths, reload only on the admin listener), and
 * requests arriving during the drain. */
#include <pthread.h>
#include "test_instance_harness.h"

static void expect_in(const char *body, const char *needle)
{
  if (!strstr(body, needle))
    fail_msg("missing %s in:\n%.2000s", needle, body);
}

static int request(uint16_t port, const char *method, const char *path, const char *auth, tdm_it_http_t *r)
{
  assert_int_equal(tdm_it_http(port, method, path, auth, r), 0);
  return r->status;
}

static void test_status_fields(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "admin-status");
  tdm_it_env_write_conf(&e, "write_divergence_policy: PRIMARY_WINS\n");
  tdm_it_env_up(&e);
  tdm_it_http_t r;
  uint16_t ports[2] = { e.metrics, e.admin };
  for (int i = 0; i < 2; i++) {
    assert_int_equal(request(ports[i], "GET", "/api/v1/status", NULL, &r), 200);
    expect_in(r.headers, "Content-Type: application/json");
    char want[600];
    snprintf(want, sizeof(want), "\"epoch\":1,\"config_file\":\"%s\",\"readiness\":\"UP\",\"draining\":false,"
                                 "\"primary_cluster\":\"ORIGIN\",\"read_mode\":\"PRIMARY_ONLY\","
                                 "\"write_divergence_policy\":\"PRIMARY_WINS\",\"pending_restart\":[],"
                                 "\"last_reload\":{\"time\":null,\"result\":null,\"error\":null},",
             e.conf);
    expect_in(r.body, "{\"version\":\"");
    expect_in(r.body, want);
    snprintf(want, sizeof(want), "\"clusters\":{\"origin\":{\"status\":\"UP\",\"control_node\":\"127.0.0.1:%u\","
                                 "\"failures\":0,\"last_error\":null,\"nodes\":[{\"node\":\"127.0.0.1:%u\",\"dc\":\"dc1\","
                                 "\"state\":\"UP\",\"connections\":",
             e.port[0], e.port[0]);
    expect_in(r.body, want);
    snprintf(want, sizeof(want), "\"target\":{\"status\":\"UP\",\"control_node\":\"127.0.0.1:%u\"", e.port[1]);
    expect_in(r.body, want);
    expect_in(r.body, "\"clients\":{\"total\":0,\"by_version\":{},\"by_worker\":[{\"worker\":0,\"connections\":0,"
                      "\"by_version\":{}},{\"worker\":1,\"connections\":0,\"by_version\":{}}]}}");
    tdm_it_http_free(&r);
  }
  /* Routing. */
  assert_int_equal(request(e.admin, "GET", "/api/v1/reload", NULL, &r), 405);
  expect_in(r.headers, "Allow: POST");
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "POST", "/api/v1/status", NULL, &r), 405);
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "GET", "/metrics", NULL, &r), 404);
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "GET", "/health/readiness", NULL, &r), 404);
  tdm_it_http_free(&r);
  assert_int_equal(request(e.metrics, "POST", "/api/v1/reload", NULL, &r), 404); /* admin listener only */
  tdm_it_http_free(&r);
  assert_int_equal(request(e.metrics, "GET", "/nothing/here", NULL, &r), 404);
  tdm_it_http_free(&r);
  assert_int_equal(request(e.metrics, "GET", "/api/v1/status?pretty=1", NULL, &r), 200); /* query ignored */
  tdm_it_http_free(&r);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

static void test_reload_with_token(void **state)
{
  tdm_it_env_t e;
  char token_path[320], extra[600];
  tdm_it_env_init(&e, "admin-reload");
  snprintf(token_path, sizeof(token_path), "%s/token", e.dir);
  tdm_it_write_file(token_path, "s3cret-token\n");
  snprintf(extra, sizeof(extra), "admin_token_file: %s\n", token_path);
  tdm_it_env_write_conf(&e, extra);
  tdm_it_env_up(&e);
  tdm_it_http_t r;

  /* No token, a wrong one, a wrong scheme: 401, nothing reloaded. */
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", NULL, &r), 401);
  expect_in(r.headers, "WWW-Authenticate: Bearer");
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Bearer s3cret-tokeN", &r), 401);
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Basic s3cret-token", &r), 401);
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Bearer s3cret-token-and-more", &r), 401);
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "GET", "/api/v1/status", NULL, &r), 200);
  expect_in(r.body, "\"epoch\":1,");
  tdm_it_http_free(&r);

  /* The right token: 200 and the status after the reload (epoch 2, the new primary). */
  snprintf(extra, sizeof(extra), "admin_token_file: %s\nprimary_cluster: TARGET\n", token_path);
  tdm_it_env_write_conf(&e, extra);
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Bearer s3cret-token", &r), 200);
  expect_in(r.headers, "Content-Type: application/json");
  expect_in(r.body, "\"epoch\":2,");
  expect_in(r.body, "\"primary_cluster\":\"TARGET\"");
  expect_in(r.body, "\"result\":\"applied\",\"error\":null}");
  tdm_it_http_free(&r);

  /* An invalid file: 422 and the status with the error; epoch 2 kept. */
  snprintf(extra, sizeof(extra), "admin_token_file: %s\nprimary_cluster: TARGET\nproxy_request_timeout_ms: -5\n",
           token_path);
  tdm_it_env_write_conf(&e, extra);
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Bearer s3cret-token", &r), 422);
  expect_in(r.body, "\"epoch\":2,");
  expect_in(r.body, "\"result\":\"rejected\",\"error\":\"");
  expect_in(r.body, "proxy_request_timeout_ms");
  tdm_it_http_free(&r);

  /* The token file is read per request (admin_token_file reloads live): a new token applies at once. */
  tdm_it_write_file(token_path, "other-token");
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Bearer s3cret-token", &r), 401);
  tdm_it_http_free(&r);
  snprintf(extra, sizeof(extra), "admin_token_file: %s\nprimary_cluster: TARGET\n", token_path);
  tdm_it_env_write_conf(&e, extra);
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Bearer other-token", &r), 200);
  expect_in(r.body, "\"epoch\":3,");
  tdm_it_http_free(&r);

  /* Without a token file, POST needs no token. */
  tdm_it_env_write_conf(&e, "primary_cluster: TARGET\n");
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", "Bearer other-token", &r), 200);
  expect_in(r.body, "\"epoch\":4,");
  tdm_it_http_free(&r);
  assert_int_equal(request(e.admin, "POST", "/api/v1/reload", NULL, &r), 200);
  expect_in(r.body, "\"epoch\":5,");
  tdm_it_http_free(&r);

  /* Metrics agree. */
  assert_int_equal(request(e.metrics, "GET", "/metrics", NULL, &r), 200);
  expect_in(r.body, "\ntandem_config_reloads_total{result=\"applied\"} 4\n");
  expect_in(r.body, "\ntandem_config_reloads_total{result=\"rejected\"} 1\n");
  expect_in(r.body, "\ntandem_config_epoch 5\n");
  expect_in(r.body, "\ntandem_primary_cluster{cluster=\"target\"} 1\n");
  tdm_it_http_free(&r);
  /* The token never appears in the log. */
  assert_int_equal(tdm_it_count_text(e.log, "s3cret"), 0);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

/* Many concurrent POSTs are serialized onto few reloads and every one of them gets an answer. */
static void *post_thread(void *arg)
{
  tdm_it_env_t *e = arg;
  tdm_it_http_t r;
  int rc = tdm_it_http(e->admin, "POST", "/api/v1/reload", NULL, &r);
  intptr_t status = rc == 0 ? r.status : -1;
  tdm_it_http_free(&r);
  return (void *)status;
}

static void test_concurrent_posts(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "admin-posts");
  tdm_it_env_write_conf(&e, NULL);
  tdm_it_env_up(&e);
  pthread_t t[16];
  for (int i = 0; i < 16; i++)
    assert_int_equal(pthread_create(&t[i], NULL, post_thread, &e), 0);
  for (int i = 0; i < 16; i++) {
    void *st;
    pthread_join(t[i], &st);
    assert_int_equal((intptr_t)st, 200);
  }
  tdm_it_http_t r;
  assert_int_equal(request(e.admin, "GET", "/api/v1/status", NULL, &r), 200);
  char v[32];
  assert_true(tdm_it_json_raw(r.body, "epoch", v, sizeof(v)));
  long epoch = strtol(v, NULL, 10);
  assert_true(epoch >= 2 && epoch <= 17); /* coalesced: at least one reload, at most one per request */
  tdm_it_http_free(&r);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_status_fields),
    cmocka_unit_test(test_reload_with_token),
    cmocka_unit_test(test_concurrent_posts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
