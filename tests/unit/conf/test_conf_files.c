/* Unit tests on real files: a zdm-proxy YAML file and a ZDM_* environment load unchanged, the annotated
 * config/tandem.yaml loads and documents every key with its reload class, and `--check` prints OK or the
 * errors with the right result. Files are found through TDM_SOURCE_DIR (set by ctest) or the cwd. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/conf/conf.h>

static void source_path(char *out, size_t len, const char *rel)
{
  const char *dir = getenv("TDM_SOURCE_DIR");
  snprintf(out, len, "%s/%s", dir && *dir ? dir : ".", rel);
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static bool has_warning(const tdm_conf_diag_t *d, const char *text)
{
  for (size_t i = 0; i < d->nwarnings; i++)
    if (!strcmp(d->warnings[i], text))
      return true;
  return false;
}

static void test_zdm_proxy_file(void **state)
{
  char path[1024], buf[128], want[1200];
  source_path(path, sizeof(path), "tests/data/conf/zdm-proxy.yaml");
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  int rc = tdm_conf_load(path, NULL, &c, &d);
  if (rc)
    fail_msg("%s", d.message ? d.message : tdm_strerror(rc));
  assert_string_equal(c->path, path);
  assert_int_equal(c->primary_cluster, TDM_CONF_ORIGIN);
  assert_int_equal(c->read_mode, TDM_CONF_READ_PRIMARY_ONLY);
  assert_int_equal(c->blocked_protocol_versions, TDM_CONF_PV_DSE_V1);
  const tdm_conf_backend_t *o = &c->cluster[TDM_CONF_ORIGIN], *t = &c->cluster[TDM_CONF_TARGET];
  assert_int_equal(o->contact_points.n, 2);
  assert_string_equal(o->contact_points.v[1].host, "10.0.0.2");
  assert_int_equal(o->contact_points.v[1].port, 9042);
  assert_string_equal(o->local_datacenter, "dc1");
  assert_string_equal(o->username, "cassandra");
  assert_string_equal(o->password, "origin-pass");
  assert_int_equal(t->contact_points.n, 3);
  assert_string_equal(t->contact_points.v[2].host, "10.0.1.3");
  assert_string_equal(t->password, "target-pass");
  assert_string_equal(c->proxy_listen_address, "0.0.0.0");
  assert_int_equal(c->proxy_listen_port, 14002);
  assert_int_equal(c->proxy_max_stream_ids, 2048);
  assert_int_equal(c->proxy_topology_index, 1);
  assert_int_equal(c->proxy_topology_addresses.n, 3);
  assert_int_equal(c->proxy_topology_addresses.v[0].port, 14002);
  assert_int_equal(c->metrics_port, 14001);
  assert_string_equal(c->metrics_prefix, "zdm");
  assert_int_equal(c->metrics_origin_latency_buckets_ms.n, 17);
  assert_int_equal(c->compat.request_write_queue_size_frames, 128);
  assert_int_equal(tdm_conf_render_value(c, "origin_password", buf, sizeof(buf)), 0);
  assert_string_equal(buf, "***");
  /* Exactly one WARN per tuning key set, nothing else. */
  assert_int_equal(d.nwarnings, 5);
  static const struct {
    const char *key; /* tuning key */
    int line;        /* its line in the fixture */
  } tuning[] = { { "request_write_queue_size_frames", 51 }, { "request_write_buffer_size_bytes", 52 },
                 { "request_read_buffer_size_bytes", 53 },  { "response_write_queue_size_frames", 54 },
                 { "read_max_workers", 55 } };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(tuning); i++) {
    snprintf(want, sizeof(want), "%s:%d:1: '%s' is a zdm-proxy tuning key without effect in tandem; ignored", path,
             tuning[i].line, tuning[i].key);
    if (!has_warning(&d, want))
      fail_msg("missing warning: %s", want);
  }
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

/* A zdm-proxy deployment configured through ZDM_* variables only (its Docker/Ansible form). */
static void test_zdm_environment(void **state)
{
  char *env[] = { "ZDM_PRIMARY_CLUSTER=TARGET",
                  "ZDM_READ_MODE=ASYNC_READS_ON_SECONDARY",
                  "ZDM_LOG_LEVEL=DEBUG",
                  "ZDM_ORIGIN_CONTACT_POINTS=10.0.0.1,10.0.0.2",
                  "ZDM_ORIGIN_PORT=9042",
                  "ZDM_ORIGIN_USERNAME=cassandra",
                  "ZDM_ORIGIN_PASSWORD=pw1",
                  "ZDM_TARGET_CONTACT_POINTS=10.0.1.1",
                  "ZDM_TARGET_PORT=9043",
                  "ZDM_TARGET_USERNAME=u2",
                  "ZDM_TARGET_PASSWORD=pw2",
                  "ZDM_PROXY_LISTEN_ADDRESS=0.0.0.0",
                  "ZDM_PROXY_LISTEN_PORT=9042",
                  "ZDM_METRICS_PORT=14001",
                  "ZDM_PROXY_TOPOLOGY_ADDRESSES=10.5.0.1,10.5.0.2",
                  "ZDM_PROXY_TOPOLOGY_INDEX=0",
                  "ZDM_HEARTBEAT_RETRY_BACKOFF_FACTOR=1.5",
                  "ZDM_BLOCKED_PROTOCOL_VERSIONS=v5",
                  "ZDM_METRICS_ENABLED=F", /* Go's ParseBool spellings */
                  "ZDM_TRACING_ENABLED=True",
                  NULL };
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  assert_int_equal(tdm_conf_load(NULL, env, &c, &d), 0);
  assert_int_equal(d.nwarnings, 0);
  assert_int_equal(c->primary_cluster, TDM_CONF_TARGET);
  assert_int_equal(c->read_mode, TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY);
  assert_int_equal(c->log_level, TDM_CONF_LOG_DEBUG);
  assert_int_equal(c->cluster[TDM_CONF_TARGET].contact_points.v[0].port, 9043);
  assert_string_equal(c->cluster[TDM_CONF_ORIGIN].password, "pw1");
  assert_int_equal(c->proxy_listen_port, 9042);
  assert_int_equal(c->proxy_topology_addresses.v[1].port, 9042);
  assert_true(c->heartbeat_retry_backoff_factor == 1.5);
  assert_true(tdm_conf_version_blocked(c, 5));
  assert_false(c->metrics_enabled);
  assert_true(c->tracing_enabled);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

static void test_example_file(void **state)
{
  char path[1024];
  source_path(path, sizeof(path), "config/tandem.yaml");
  tdm_conf_t *c = NULL, *defaults = NULL;
  tdm_conf_diag_t d = { 0 };
  int rc = tdm_conf_load(path, NULL, &c, &d);
  if (rc)
    fail_msg("%s", d.message ? d.message : tdm_strerror(rc));
  assert_int_equal(d.nwarnings, 0);
  assert_string_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.v[0].host, "127.0.0.2");
  assert_string_equal(c->cluster[TDM_CONF_TARGET].contact_points.v[0].host, "127.0.0.3");
  assert_int_equal(tdm_conf_defaults(&defaults), 0);

  const char *text = slurp(path);
  for (size_t i = 0; i < tdm_conf_key_count(); i++) {
    const tdm_conf_key_t *k = tdm_conf_key_at(i);
    char line[160], want[64], a[256], b[256];
    /* Every value in the example is the default, except the two contact point lists. */
    if (strcmp(k->name, "origin_contact_points") && strcmp(k->name, "target_contact_points")) {
      assert_int_equal(tdm_conf_render(c, k, a, sizeof(a)), 0);
      assert_int_equal(tdm_conf_render(defaults, k, b, sizeof(b)), 0);
      if (strcmp(a, b))
        fail_msg("%s: example shows '%s', default is '%s'", k->name, a, b);
    }
    if (k->flags & TDM_CONF_F_NO_EFFECT) {
      /* Compat keys are listed, commented out (setting them would log a WARN). */
      snprintf(line, sizeof(line), "\n#   %s: ", k->name);
      if (!strstr(text, line))
        fail_msg("example does not mention %s", k->name);
      continue;
    }
    /* Each key is set on its own line, under a comment that gives its reload class. */
    snprintf(line, sizeof(line), "\n%s: ", k->name);
    const char *at = strstr(text, line);
    if (!at)
      fail_msg("example does not set %s", k->name);
    const char *comment = at; /* the line just above: [comment, at) */
    while (comment > text && comment[-1] != '\n')
      comment--;
    char prevline[512];
    snprintf(prevline, sizeof(prevline), "%.*s", (int)TDM_MIN((size_t)(at - comment), sizeof(prevline) - 1),
             comment);
    snprintf(want, sizeof(want), "reload: %s]", tdm_conf_reload_name(k->reload));
    if (prevline[0] != '#' || !strstr(prevline, want))
      fail_msg("%s: comment '%s' lacks '%s'", k->name, prevline, want);
  }
  tdm_conf_unref(defaults);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

/* Runs --check into a memory stream. */
static int check(const char *path, char *const *env, char *out, size_t outlen)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  int rc = tdm_conf_check_file_env(path, env, f);
  fclose(f);
  snprintf(out, outlen, "%s", buf ? buf : "");
  free(buf);
  return rc;
}

static void test_check(void **state)
{
  char path[1024], out[4096], want[4096];

  source_path(path, sizeof(path), "config/tandem.yaml");
  assert_int_equal(check(path, NULL, out, sizeof(out)), 0);
  assert_string_equal(out, "OK\n");

  char *env[] = { "TANDEM_LOG_LEVEL=DEBUG", NULL };
  assert_int_equal(check(path, env, out, sizeof(out)), 0);
  const char *text = slurp(path), *at = strstr(text, "\nlog_level: ");
  assert_non_null(at);
  int line = 2;
  for (const char *p = text; p < at; p++)
    line += *p == '\n';
  snprintf(want, sizeof(want),
           "warning: %s:%d:1: 'log_level' from the file (INFO) is overridden by TANDEM_LOG_LEVEL (DEBUG)\nOK\n",
           path, line);
  assert_string_equal(out, want);

  source_path(path, sizeof(path), "tests/data/conf/invalid.yaml");
  assert_int_equal(check(path, NULL, out, sizeof(out)), -1);
  snprintf(want, sizeof(want),
           "%s:2:1: unknown key 'primary_clustr' (did you mean 'primary_cluster'?)\n"
           "%s:4:23: invalid value for 'proxy_max_stream_ids': expected an integer from 1 to 32768, got '40000'\n",
           path, path);
  assert_string_equal(out, want);

  source_path(path, sizeof(path), "tests/data/conf/no-such-file.yaml");
  assert_int_equal(check(path, NULL, out, sizeof(out)), -1);
  snprintf(want, sizeof(want), "%s: cannot read the configuration file: No such file or directory\n", path);
  assert_string_equal(out, want);

  /* The same through tdm_conf_load. */
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  assert_int_equal(tdm_conf_load(path, NULL, &c, &d), TDM_ECONF);
  assert_null(c);
  assert_int_equal(d.nerrors, 1);
  snprintf(want, sizeof(want), "%s: cannot read the configuration file: No such file or directory", path);
  assert_string_equal(d.message, want);
  tdm_conf_diag_free(&d);

  /* A directory is not a file. */
  source_path(path, sizeof(path), "tests/data/conf");
  assert_int_equal(check(path, NULL, out, sizeof(out)), -1);
  assert_non_null(strstr(out, "cannot read the configuration file"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_zdm_proxy_file),
    cmocka_unit_test(test_zdm_environment),
    cmocka_unit_test(test_example_file),
    cmocka_unit_test(test_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
