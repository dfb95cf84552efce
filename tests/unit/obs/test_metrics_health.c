/* obs/health: the readiness document and HTTP code for each state (behaviour.md §13.2, test-scenarios
 * LC-08): STARTUP (cluster members null, as zdm-proxy), UP, DOWN by failure threshold, DOWN while
 * draining, recovery below the threshold; exact JSON text in zdm-proxy's member order + `Tandem`. */
#include <testlib.h>
#include <tandem/conf/conf.h>
#include <tandem/obs/health.h>

static unsigned render(const tdm_health_t *h, char *out, size_t cap)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  unsigned code = tdm_health_readiness_json(f, h);
  assert_int_equal(fclose(f), 0);
  snprintf(out, cap, "%s", buf);
  free(buf);
  return code;
}

static tdm_health_t base(void)
{
  tdm_health_t h;
  memset(&h, 0, sizeof(h));
  h.cluster[0].threshold = h.cluster[1].threshold = 1;
  h.epoch = 3;
  h.primary_cluster = TDM_CONF_TARGET;
  h.read_mode = TDM_CONF_READ_PRIMARY_ONLY;
  h.version = "1.2.3";
  return h;
}

static void up_both(tdm_health_t *h)
{
  h->cluster[0].ever_up = h->cluster[1].ever_up = true;
  snprintf(h->cluster[0].addr, sizeof(h->cluster[0].addr), "10.0.0.1:9042");
  snprintf(h->cluster[1].addr, sizeof(h->cluster[1].addr), "10.0.1.1:9042");
}

static void test_startup(void **state)
{
  tdm_health_t h = base();
  char out[1024];
  assert_int_equal(tdm_health_status(&h), TDM_HEALTH_STARTUP);
  assert_int_equal(render(&h, out, sizeof(out)), 503);
  assert_string_equal(out, "{\"OriginStatus\":null,\"TargetStatus\":null,\"Status\":\"STARTUP\",\"Tandem\":{\"Epoch\":3,"
                           "\"PrimaryCluster\":\"TARGET\",\"ReadMode\":\"PRIMARY_ONLY\",\"Draining\":false,"
                           "\"Version\":\"1.2.3\"}}");
  /* One cluster up is still STARTUP, even with failures on the other. */
  h.cluster[0].ever_up = true;
  h.cluster[1].failures = 5;
  assert_int_equal(tdm_health_status(&h), TDM_HEALTH_STARTUP);
  assert_int_equal(render(&h, out, sizeof(out)), 503);
  assert_non_null(strstr(out, "\"OriginStatus\":null"));
}

static void test_up(void **state)
{
  tdm_health_t h = base();
  up_both(&h);
  char out[1024];
  assert_int_equal(render(&h, out, sizeof(out)), 200);
  assert_string_equal(out,
                      "{\"OriginStatus\":{\"Addr\":\"10.0.0.1:9042\",\"CurrentFailureCount\":0,\"FailureCountThreshold\":1,"
                      "\"Status\":\"UP\"},\"TargetStatus\":{\"Addr\":\"10.0.1.1:9042\",\"CurrentFailureCount\":0,"
                      "\"FailureCountThreshold\":1,\"Status\":\"UP\"},\"Status\":\"UP\",\"Tandem\":{\"Epoch\":3,"
                      "\"PrimaryCluster\":\"TARGET\",\"ReadMode\":\"PRIMARY_ONLY\",\"Draining\":false,"
                      "\"Version\":\"1.2.3\"}}");
}

static void test_down_by_threshold(void **state)
{
  tdm_health_t h = base();
  up_both(&h);
  h.cluster[1].threshold = h.cluster[0].threshold = 3;
  h.cluster[1].failures = 2; /* below the threshold: still UP (zdm-proxy's rule) */
  h.cluster[1].addr[0] = '\0';
  char out[1024];
  assert_int_equal(render(&h, out, sizeof(out)), 200);
  assert_non_null(strstr(out, "\"TargetStatus\":{\"Addr\":\"NOT_CONNECTED\",\"CurrentFailureCount\":2,"
                              "\"FailureCountThreshold\":3,\"Status\":\"UP\"}"));
  h.cluster[1].failures = 3;
  assert_int_equal(tdm_health_cluster_status(&h.cluster[1]), TDM_HEALTH_DOWN);
  assert_int_equal(render(&h, out, sizeof(out)), 503);
  assert_string_equal(out,
                      "{\"OriginStatus\":{\"Addr\":\"10.0.0.1:9042\",\"CurrentFailureCount\":0,\"FailureCountThreshold\":3,"
                      "\"Status\":\"UP\"},\"TargetStatus\":{\"Addr\":\"NOT_CONNECTED\",\"CurrentFailureCount\":3,"
                      "\"FailureCountThreshold\":3,\"Status\":\"DOWN\"},\"Status\":\"DOWN\",\"Tandem\":{\"Epoch\":3,"
                      "\"PrimaryCluster\":\"TARGET\",\"ReadMode\":\"PRIMARY_ONLY\",\"Draining\":false,"
                      "\"Version\":\"1.2.3\"}}");
  /* Recovery. */
  h.cluster[1].failures = 0;
  assert_int_equal(render(&h, out, sizeof(out)), 200);
}

static void test_draining(void **state)
{
  tdm_health_t h = base();
  up_both(&h);
  h.draining = true;
  h.primary_cluster = TDM_CONF_ORIGIN;
  h.read_mode = TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY;
  char out[1024];
  assert_int_equal(tdm_health_status(&h), TDM_HEALTH_DOWN);
  assert_int_equal(render(&h, out, sizeof(out)), 503);
  assert_non_null(strstr(out, "\"Status\":\"DOWN\",\"Tandem\":{\"Epoch\":3,\"PrimaryCluster\":\"ORIGIN\","
                              "\"ReadMode\":\"DUAL_ASYNC_ON_SECONDARY\",\"Draining\":true,"));
  /* The clusters themselves are still UP. */
  assert_non_null(strstr(out, "\"FailureCountThreshold\":1,\"Status\":\"UP\"},\"TargetStatus\""));
}

static void test_names(void **state)
{
  assert_string_equal(tdm_health_status_name(TDM_HEALTH_STARTUP), "STARTUP");
  assert_string_equal(tdm_health_status_name(TDM_HEALTH_UP), "UP");
  assert_string_equal(tdm_health_status_name(TDM_HEALTH_DOWN), "DOWN");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_startup),
    cmocka_unit_test(test_up),
    cmocka_unit_test(test_down_by_threshold),
    cmocka_unit_test(test_draining),
    cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
