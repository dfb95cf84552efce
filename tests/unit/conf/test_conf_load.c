/* Unit tests of loading: YAML values of every type, lists as comma strings or sequences, enum spellings,
 * exact `file:line:column` errors (unknown key with suggestion, duplicate, bad value, syntax), the
 * environment's precedence and warnings, and secrets absent from every message. Environments are
 * synthetic arrays, never the process environment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/conf/conf.h>

/* Contact points, so that the cross-key rules pass; test lines start at line 3. */
#define CP "origin_contact_points: 10.0.0.1\ntarget_contact_points: 10.0.1.1\n"

static tdm_conf_t *load_ok(const char *yaml, char *const *env, tdm_conf_diag_t *d)
{
  tdm_conf_t *c = NULL;
  int rc = tdm_conf_load_buffer("t.yaml", yaml, strlen(yaml), env, &c, d);
  if (rc)
    fail_msg("load failed (%s):\n%s", tdm_strerror(rc), d->message ? d->message : "");
  assert_non_null(c);
  return c;
}

static void expect_fail(const char *yaml, char *const *env, const char *msg)
{
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  int rc = tdm_conf_load_buffer("t.yaml", yaml, strlen(yaml), env, &c, &d);
  assert_int_equal(rc, TDM_ECONF);
  assert_null(c);
  assert_non_null(d.message);
  if (strcmp(d.message, msg) != 0)
    fail_msg("for:\n%s\ngot:\n%s\nexpected:\n%s", yaml, d.message, msg);
  tdm_conf_diag_free(&d);
}

static bool has_warning(const tdm_conf_diag_t *d, const char *text)
{
  for (size_t i = 0; i < d->nwarnings; i++)
    if (!strcmp(d->warnings[i], text))
      return true;
  return false;
}

static void expect_warning(const tdm_conf_diag_t *d, const char *text)
{
  if (has_warning(d, text))
    return;
  for (size_t i = 0; i < d->nwarnings; i++)
    print_message("warning: %s\n", d->warnings[i]);
  fail_msg("missing warning: %s", text);
}

static void render(const tdm_conf_t *c, const char *key, char *buf, size_t len)
{
  assert_int_equal(tdm_conf_render_value(c, key, buf, len), 0);
}

/* ---- values ---- */

static void test_scalar_values(void **state)
{
  tdm_conf_diag_t d = { 0 };
  tdm_conf_t *c = load_ok(CP "primary_cluster: target\n"
                             "read_mode: async_reads_on_secondary\n"
                             "system_queries_mode: Target\n"
                             "log_level: warning\n"
                             "log_format: JSON\n"
                             "write_divergence_policy: primary_wins\n"
                             "control_conn_max_protocol_version: dse_v1\n"
                             "forward_client_credentials_to_origin: YES\n"
                             "metrics_enabled: 0\n"
                             "tracing_enabled: True\n"
                             "proxy_tls_require_client_auth: no\n"
                             "write_divergence_log_values: On\n"
                             "enable_protocol_v2: F\n"
                             "origin_port: \"9043\"\n"
                             "target_port: ~\n"
                             "origin_username:\n"
                             "target_username: ''\n"
                             "heartbeat_retry_backoff_factor: 1.5\n"
                             "write_divergence_log_max_bytes: 8589934592\n"
                             "request_read_buffer_size_bytes: -5\n"
                             "proxy_listen_address: \"0.0.0.0\"\n"
                             "tracing_request_id_key: x-req\n",
                          NULL, &d);
  assert_int_equal(c->primary_cluster, TDM_CONF_TARGET);
  assert_int_equal(c->read_mode, TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY);
  assert_int_equal(c->system_queries_mode, TDM_CONF_TARGET);
  assert_int_equal(c->log_level, TDM_CONF_LOG_WARN);
  assert_int_equal(c->log_format, TDM_CONF_LOG_JSON);
  assert_int_equal(c->write_divergence_policy, TDM_CONF_DIVERGENCE_PRIMARY_WINS);
  assert_int_equal(c->control_conn_max_protocol_version, 0x41);
  assert_true(c->forward_client_credentials_to_origin);
  assert_false(c->metrics_enabled);
  assert_true(c->tracing_enabled);
  assert_false(c->proxy_tls_require_client_auth);
  assert_true(c->write_divergence_log_values);
  assert_false(c->enable_protocol_v2);
  assert_int_equal(c->cluster[TDM_CONF_ORIGIN].port, 9043);
  assert_int_equal(c->cluster[TDM_CONF_TARGET].port, 9042); /* `~` keeps the default */
  assert_string_equal(c->cluster[TDM_CONF_ORIGIN].username, "");
  assert_string_equal(c->cluster[TDM_CONF_TARGET].username, "");
  assert_true(c->heartbeat_retry_backoff_factor == 1.5);
  assert_true(c->write_divergence_log_max_bytes == 8589934592LL);
  assert_int_equal(c->compat.request_read_buffer_size_bytes, -5);
  assert_string_equal(c->proxy_listen_address, "0.0.0.0");
  assert_string_equal(c->tracing_request_id_key, "x-req");
  assert_string_equal(c->path, "t.yaml");
  char buf[64];
  render(c, "read_mode", buf, sizeof(buf));
  assert_string_equal(buf, "DUAL_ASYNC_ON_SECONDARY"); /* the alias renders canonically */
  render(c, "log_level", buf, sizeof(buf));
  assert_string_equal(buf, "WARN");
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

static void test_version_spellings(void **state)
{
  static const struct {
    const char *text; /* blocked_protocol_versions value */
    unsigned mask;    /* expected bits */
  } cases[] = {
    { "\"\"", 0 },
    { "v5,DseV1", TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V1 },
    { "3, 4", TDM_CONF_PV_V3 | TDM_CONF_PV_V4 },
    { "V3,v4,65", TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_DSE_V1 },
    { "Dse_V1,DSE_V2", TDM_CONF_PV_DSE_V1 | TDM_CONF_PV_DSE_V2 },
    { "66", TDM_CONF_PV_DSE_V2 },
    { "[2, v5]", TDM_CONF_PV_V2 | TDM_CONF_PV_V5 },
    { "dsev2", TDM_CONF_PV_DSE_V2 },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    char yaml[256];
    tdm_conf_diag_t d = { 0 };
    snprintf(yaml, sizeof(yaml), CP "blocked_protocol_versions: %s\n", cases[i].text);
    tdm_conf_t *c = load_ok(yaml, NULL, &d);
    assert_int_equal(c->blocked_protocol_versions, cases[i].mask);
    tdm_conf_unref(c);
    tdm_conf_diag_free(&d);
  }
  static const struct {
    const char *text; /* control_conn_max_protocol_version value */
    int version;      /* expected byte */
  } single[] = { { "3", 3 }, { "v4", 4 }, { "5", 5 }, { "DseV1", 0x41 }, { "DSE_V2", 0x42 }, { "66", 0x42 } };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(single); i++) {
    char yaml[256];
    tdm_conf_diag_t d = { 0 };
    snprintf(yaml, sizeof(yaml), CP "control_conn_max_protocol_version: %s\n", single[i].text);
    tdm_conf_t *c = load_ok(yaml, NULL, &d);
    assert_int_equal(c->control_conn_max_protocol_version, single[i].version);
    tdm_conf_unref(c);
    tdm_conf_diag_free(&d);
  }
}

static void test_sequence_vs_comma_list(void **state)
{
  static const char *const forms[] = {
    "origin_contact_points: \"10.0.0.1,10.0.0.2:9043, db3\"\n",
    "origin_contact_points: 10.0.0.1 , 10.0.0.2:9043,db3,\n",
    "origin_contact_points: [10.0.0.1, \"10.0.0.2:9043\", db3]\n",
    "origin_contact_points:\n  - 10.0.0.1\n  - 10.0.0.2:9043\n  - db3\n",
    "origin_contact_points:\n- \"10.0.0.1, 10.0.0.2:9043\"\n- db3\n",
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(forms); i++) {
    char yaml[256], buf[128];
    tdm_conf_diag_t d = { 0 };
    snprintf(yaml, sizeof(yaml), "target_contact_points: 10.0.1.1\n%s", forms[i]);
    tdm_conf_t *c = load_ok(yaml, NULL, &d);
    render(c, "origin_contact_points", buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.1,10.0.0.2:9043,db3");
    const tdm_conf_hostports_t *cp = &c->cluster[TDM_CONF_ORIGIN].contact_points;
    assert_int_equal(cp->n, 3);
    assert_string_equal(cp->v[2].host, "db3");
    assert_int_equal(cp->v[1].port, 9043);
    assert_int_equal(cp->v[2].port, 9042);
    tdm_conf_unref(c);
    tdm_conf_diag_free(&d);
  }
  /* Buckets and version lists take sequences too; an empty sequence is an empty list. */
  tdm_conf_diag_t d = { 0 };
  char buf[128];
  tdm_conf_t *c = load_ok(CP "metrics_target_latency_buckets_ms: [5, 50, 500]\n"
                             "metrics_async_read_latency_buckets_ms:\n  - 1\n  - 2.5\n"
                             "blocked_protocol_versions: []\n"
                             "proxy_topology_addresses: [10.9.0.1, '[fd00::1]:9000']\n",
                          NULL, &d);
  render(c, "metrics_target_latency_buckets_ms", buf, sizeof(buf));
  assert_string_equal(buf, "5,50,500");
  render(c, "metrics_async_read_latency_buckets_ms", buf, sizeof(buf));
  assert_string_equal(buf, "1,2.5");
  assert_int_equal(c->blocked_protocol_versions, 0);
  assert_int_equal(c->proxy_topology_addresses.n, 2);
  assert_string_equal(c->proxy_topology_addresses.v[1].host, "fd00::1");
  assert_int_equal(c->proxy_topology_addresses.v[1].port, 9000);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

static void test_empty_documents(void **state)
{
  static const char *const docs[] = { "", "# only a comment\n", "---\n", "---\n...\n" };
  char *env[] = { "TANDEM_ORIGIN_CONTACT_POINTS=10.0.0.1", "TANDEM_TARGET_CONTACT_POINTS=10.0.1.1", NULL };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(docs); i++) {
    tdm_conf_diag_t d = { 0 };
    tdm_conf_t *c = load_ok(docs[i], env, &d);
    assert_int_equal(c->primary_cluster, TDM_CONF_ORIGIN);
    assert_int_equal(d.nwarnings, 0);
    tdm_conf_unref(c);
    tdm_conf_diag_free(&d);
  }
}

/* ---- errors ---- */

typedef struct case_s {
  const char *yaml; /* document after CP */
  const char *msg;  /* expected diag message */
} case_t;

static void run_cases(const case_t *cases, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), CP "%s", cases[i].yaml);
    expect_fail(yaml, NULL, cases[i].msg);
  }
}

static void test_key_errors(void **state)
{
  static const case_t cases[] = {
    { "primary_clustr: TARGET\n", "t.yaml:3:1: unknown key 'primary_clustr' (did you mean 'primary_cluster'?)" },
    { "log_level: INFO\nlog_levle: INFO\n", "t.yaml:4:1: unknown key 'log_levle' (did you mean 'log_level'?)" },
    { "ORIGIN_PORT: 9042\n", "t.yaml:3:1: unknown key 'ORIGIN_PORT' (did you mean 'origin_port'?)" },
    { "foo: 1\n", "t.yaml:3:1: unknown key 'foo'" },
    { "origin_port: 9042\nworkers: 2\norigin_port: 9043\n",
      "t.yaml:5:1: duplicate key 'origin_port' (first set at line 3)" },
    { "origin_contact_points: 10.0.0.2\n",
      "t.yaml:3:1: duplicate key 'origin_contact_points' (first set at line 1)" },
    { "[a]: 1\n", "t.yaml:3:1: keys must be plain names" },
    /* Several problems are all reported, in file order. */
    { "primary_clustr: TARGET\nfoo: 1\nlog_level: loud\norigin_port: 70000\norigin_port: 1\n",
      "t.yaml:3:1: unknown key 'primary_clustr' (did you mean 'primary_cluster'?)\n"
      "t.yaml:4:1: unknown key 'foo'\n"
      "t.yaml:5:12: invalid value for 'log_level': expected PANIC, FATAL, ERROR, WARN, INFO, DEBUG or TRACE, "
      "got 'loud'\n"
      "t.yaml:6:14: invalid value for 'origin_port': expected an integer from 0 to 65535, got '70000'\n"
      "t.yaml:7:1: duplicate key 'origin_port' (first set at line 6)" },
  };
  run_cases(cases, TDM_ARRAY_SIZE(cases));
}

static void test_value_errors(void **state)
{
  static const case_t cases[] = {
    { "metrics_enabled: maybe\n",
      "t.yaml:3:18: invalid value for 'metrics_enabled': expected true or false (or yes/no, on/off, 1/0), got 'maybe'" },
    { "origin_port: nine\n",
      "t.yaml:3:14: invalid value for 'origin_port': expected an integer from 0 to 65535, got 'nine'" },
    { "proxy_listen_port: 0\n",
      "t.yaml:3:20: invalid value for 'proxy_listen_port': expected an integer from 1 to 65535, got '0'" },
    { "proxy_max_stream_ids: 32769\n",
      "t.yaml:3:23: invalid value for 'proxy_max_stream_ids': expected an integer from 1 to 32768, got '32769'" },
    { "proxy_topology_num_tokens: 257\n",
      "t.yaml:3:28: invalid value for 'proxy_topology_num_tokens': expected an integer from 1 to 256, got '257'" },
    { "proxy_topology_num_tokens: 0\n",
      "t.yaml:3:28: invalid value for 'proxy_topology_num_tokens': expected an integer from 1 to 256, got '0'" },
    { "async_read_sample_percent: 101\n",
      "t.yaml:3:28: invalid value for 'async_read_sample_percent': expected an integer from 0 to 100, got '101'" },
    { "async_read_sample_percent: -1\n",
      "t.yaml:3:28: invalid value for 'async_read_sample_percent': expected an integer from 0 to 100, got '-1'" },
    { "metrics_port: 65536\n",
      "t.yaml:3:15: invalid value for 'metrics_port': expected an integer from 0 to 65535, got '65536'" },
    { "proxy_request_timeout_ms: 1.5s\n",
      "t.yaml:3:27: invalid value for 'proxy_request_timeout_ms': expected an integer >= 1, got '1.5s'" },
    { "workers: 99999999999999999999\n",
      "t.yaml:3:10: invalid value for 'workers': expected an integer from 0 to 1024, got '99999999999999999999'" },
    { "heartbeat_retry_backoff_factor: 0.5\n",
      "t.yaml:3:33: invalid value for 'heartbeat_retry_backoff_factor': expected a number from 1 to 1000, "
      "got '0.5'" },
    { "primary_cluster: BOTH\n",
      "t.yaml:3:18: invalid value for 'primary_cluster': expected ORIGIN or TARGET, got 'BOTH'" },
    { "read_mode: DUAL\n",
      "t.yaml:3:12: invalid value for 'read_mode': expected PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY, got 'DUAL'" },
    { "write_divergence_policy: x\n",
      "t.yaml:3:26: invalid value for 'write_divergence_policy': expected FAIL or PRIMARY_WINS, got 'x'" },
    { "control_conn_max_protocol_version: 6\n",
      "t.yaml:3:36: invalid value for 'control_conn_max_protocol_version': expected a protocol version: 2-5, "
      "v2-v5, DseV1 (Dse_V1, 65) or DseV2 (Dse_V2, 66), got '6'" },
    { "blocked_protocol_versions: v5, v1\n",
      "t.yaml:3:28: invalid value for 'blocked_protocol_versions': unknown protocol version (expected a comma "
      "list of 2-5, v2-v5, DseV1 (Dse_V1, 65) or DseV2 (Dse_V2, 66)), got 'v1'" },
    { "blocked_protocol_versions:\n  - v5\n  - v7\n",
      "t.yaml:5:5: invalid value for 'blocked_protocol_versions': unknown protocol version (expected a comma "
      "list of 2-5, v2-v5, DseV1 (Dse_V1, 65) or DseV2 (Dse_V2, 66)), got 'v7'" },
    { "metrics_origin_latency_buckets_ms: 1,10,5\n",
      "t.yaml:3:36: invalid value for 'metrics_origin_latency_buckets_ms': buckets must be strictly ascending, "
      "got '5'" },
    { "metrics_target_latency_buckets_ms: [0, 1]\n",
      "t.yaml:3:37: invalid value for 'metrics_target_latency_buckets_ms': expected positive numbers (ms), "
      "got '0'" },
    { "metrics_target_latency_buckets_ms: [1, -2]\n",
      "t.yaml:3:40: invalid value for 'metrics_target_latency_buckets_ms': expected positive numbers (ms), "
      "got '-2'" },
    { "metrics_async_read_latency_buckets_ms: \"\"\n",
      "t.yaml:3:40: invalid value for 'metrics_async_read_latency_buckets_ms': at least one bucket is required" },
    { "metrics_origin_latency_buckets_ms: 1,1\n",
      "t.yaml:3:36: invalid value for 'metrics_origin_latency_buckets_ms': buckets must be strictly ascending, "
      "got '1'" },
    { "proxy_topology_addresses: 10.0.0.1,proxy2\n",
      "t.yaml:3:27: invalid value for 'proxy_topology_addresses': expected an IP address, optionally with "
      ":port, got 'proxy2'" },
    { "proxy_topology_addresses: [10.0.0.1, '10.0.0.2:0']\n",
      "t.yaml:3:38: invalid value for 'proxy_topology_addresses': invalid port (expected 1 to 65535), "
      "got '10.0.0.2:0'" },
    { "log_level: [INFO]\n",
      "t.yaml:3:13: invalid value for 'log_level': expected a single value, not a sequence" },
    { "log_file: \"a\\0b\"\n", "t.yaml:3:11: invalid value for 'log_file': value contains a NUL byte" },
    { "log_level: \"\\x01\"\n",
      "t.yaml:3:12: invalid value for 'log_level': expected PANIC, FATAL, ERROR, WARN, INFO, DEBUG or TRACE, "
      "got '\\x01'" },
  };
  run_cases(cases, TDM_ARRAY_SIZE(cases));
  /* Host entries (the CP prefix would make these duplicates). */
  expect_fail("origin_contact_points: 10.0.0.1\ntarget_contact_points: 'bad host'\n", NULL,
              "t.yaml:2:24: invalid value for 'target_contact_points': invalid host name, got 'bad host'");
  expect_fail("origin_contact_points: 10.0.0.1\ntarget_contact_points: '[10.0.0.1]:9042'\n", NULL,
              "t.yaml:2:24: invalid value for 'target_contact_points': invalid IPv6 address, got '[10.0.0.1]:9042'");
  expect_fail("origin_contact_points: 10.0.0.1\ntarget_contact_points: '[::1'\n", NULL,
              "t.yaml:2:24: invalid value for 'target_contact_points': missing ']' after an IPv6 address, got '[::1'");
  expect_fail("origin_contact_points: 10.0.0.1\ntarget_contact_points: '[::1]x'\n", NULL,
              "t.yaml:2:24: invalid value for 'target_contact_points': expected ':port' after ']', got '[::1]x'");
  expect_fail("origin_contact_points: 10.0.0.1\ntarget_contact_points: 'db:99999'\n", NULL,
              "t.yaml:2:24: invalid value for 'target_contact_points': invalid port (expected 1 to 65535), "
              "got 'db:99999'");
  expect_fail("origin_contact_points: 10.0.0.1\ntarget_contact_points: ':9042'\n", NULL,
              "t.yaml:2:24: invalid value for 'target_contact_points': expected host or host:port, got ':9042'");
}

static void test_structure_errors(void **state)
{
  static const case_t cases[] = {
    { "primary_cluster: [ORIGIN\n",
      "t.yaml:4:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 3)" },
    { "primary_cluster: \"ORIGIN\n",
      "t.yaml:4:1: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar at line 3)" },
    { "log_level: INFO: DEBUG\n", "t.yaml:3:16: YAML syntax error: mapping values are not allowed in this context" },
    { "read_mode:\n  mode: PRIMARY_ONLY\n",
      "t.yaml:4:3: 'read_mode' expects a value, not a mapping (the file is a flat map)" },
    { "workers: &w 2\nadmin_port: *w\n", "t.yaml:4:13: 'admin_port': YAML aliases are not supported" },
    { "blocked_protocol_versions: [[1]]\n",
      "t.yaml:3:29: 'blocked_protocol_versions': sequence items must be plain values" },
    { "---\nworkers: 1\n", "t.yaml:3:1: only one YAML document is allowed" },
  };
  run_cases(cases, TDM_ARRAY_SIZE(cases));
  expect_fail("- a\n- b\n", NULL, "t.yaml:1:1: the configuration must be a map of keys to values");
  expect_fail("just text\n", NULL, "t.yaml:1:1: the configuration must be a map of keys to values");
  expect_fail("\t", NULL,
              "t.yaml:1:1: YAML syntax error: found character that cannot start any token (while scanning for the "
              "next token at line 1)");
  expect_fail("a: \xff\xfe\n", NULL, "t.yaml: YAML syntax error: invalid leading UTF-8 octet at byte offset 3");
}

static void test_too_many_errors(void **state)
{
  char yaml[8192];
  size_t o = 0;
  for (int i = 0; i < 80; i++)
    o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "unknown_%d: 1\n", i);
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  assert_int_equal(tdm_conf_load_buffer("t.yaml", yaml, o, NULL, &c, &d), TDM_ECONF);
  assert_int_equal(d.nerrors, 51);
  assert_string_equal(d.errors[0], "t.yaml:1:1: unknown key 'unknown_0'");
  assert_string_equal(d.errors[50], "t.yaml: too many errors, giving up");
  tdm_conf_diag_free(&d);
  /* A NULL diag is allowed. */
  assert_int_equal(tdm_conf_load_buffer("t.yaml", yaml, o, NULL, &c, NULL), TDM_ECONF);
  assert_null(c);
}

/* ---- environment ---- */

static void test_precedence(void **state)
{
  static const char yaml[] = CP "primary_cluster: TARGET\nproxy_request_timeout_ms: 2000\nworkers: 3\n";
  tdm_conf_diag_t d = { 0 };
  char buf[64];

  /* defaults < file */
  tdm_conf_t *c = load_ok(yaml, NULL, &d);
  assert_int_equal(c->primary_cluster, TDM_CONF_TARGET);
  assert_int_equal(c->proxy_request_timeout_ms, 2000);
  assert_int_equal(c->log_level, TDM_CONF_LOG_INFO);
  const tdm_conf_origin_t *o = &c->origin[tdm_conf_key_index(tdm_conf_key_find("primary_cluster"))];
  assert_int_equal(o->source, TDM_CONF_SRC_FILE);
  assert_int_equal(o->line, 3);
  assert_int_equal(o->col, 1);
  assert_int_equal(d.nwarnings, 0);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);

  /* file < ZDM_ */
  char *env1[] = { "PATH=/usr/bin", "ZDM_PRIMARY_CLUSTER=origin", "ZDM_LOG_LEVEL=debug", NULL };
  c = load_ok(yaml, env1, &d);
  assert_int_equal(c->primary_cluster, TDM_CONF_ORIGIN);
  assert_int_equal(c->log_level, TDM_CONF_LOG_DEBUG);
  assert_int_equal(c->origin[tdm_conf_key_index(tdm_conf_key_find("primary_cluster"))].source,
                   TDM_CONF_SRC_ENV_ZDM);
  expect_warning(&d, "t.yaml:3:1: 'primary_cluster' from the file (TARGET) is overridden by ZDM_PRIMARY_CLUSTER "
                     "(ORIGIN)");
  assert_int_equal(d.nwarnings, 1); /* log_level was not in the file */
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);

  /* ZDM_ < TANDEM_, whatever the order of the array. */
  char *env2[] = { "TANDEM_PRIMARY_CLUSTER=TARGET", "ZDM_PRIMARY_CLUSTER=ORIGIN", "TANDEM_WORKERS=3",
                   "ZDM_PROXY_REQUEST_TIMEOUT_MS=2500", NULL };
  c = load_ok(yaml, env2, &d);
  assert_int_equal(c->primary_cluster, TDM_CONF_TARGET);
  assert_int_equal(c->proxy_request_timeout_ms, 2500);
  assert_int_equal(c->workers, 3);
  assert_int_equal(c->origin[tdm_conf_key_index(tdm_conf_key_find("primary_cluster"))].source,
                   TDM_CONF_SRC_ENV_TANDEM);
  expect_warning(&d, "t.yaml:3:1: 'primary_cluster' from the file (TARGET) is overridden by ZDM_PRIMARY_CLUSTER "
                     "(ORIGIN)");
  expect_warning(&d, "ZDM_PRIMARY_CLUSTER: 'primary_cluster' (ORIGIN) is overridden by TANDEM_PRIMARY_CLUSTER "
                     "(TARGET)");
  expect_warning(&d, "t.yaml:4:1: 'proxy_request_timeout_ms' from the file (2000) is overridden by "
                     "ZDM_PROXY_REQUEST_TIMEOUT_MS (2500)");
  assert_int_equal(d.nwarnings, 3); /* TANDEM_WORKERS=3 equals the file's value: no warning */
  render(c, "primary_cluster", buf, sizeof(buf));
  assert_string_equal(buf, "TARGET");
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

static void test_env_only_and_prefix_rules(void **state)
{
  char *env[] = { "ZDM_ORIGIN_CONTACT_POINTS=10.0.0.1, 10.0.0.2:9043",
                  "TANDEM_TARGET_CONTACT_POINTS=10.0.1.1",
                  "ZDM_WORKERS=4",                      /* tandem-only key: ZDM_ is ignored */
                  "TANDEM_MAX_FRAME_BYTES=1048576",
                  "TANDEM_PRIMARY_CLUSTR=TARGET",       /* unknown: warning with the right spelling */
                  "ZDM_SOMETHING_ELSE=1",
                  "TDM_SOURCE_DIR=/src",                /* other prefixes are none of our business */
                  "tandem_workers=9",
                  "TANDEM_NOEQUALS",
                  "TANDEM_blocked_protocol_versions=v5",
                  NULL };
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  assert_int_equal(tdm_conf_load(NULL, env, &c, &d), 0);
  assert_null(c->path);
  assert_int_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.n, 2);
  assert_int_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.v[1].port, 9043);
  assert_int_equal(c->workers, 0);
  assert_int_equal(c->max_frame_bytes, 1048576);
  assert_int_equal(c->primary_cluster, TDM_CONF_ORIGIN);
  assert_int_equal(c->blocked_protocol_versions, TDM_CONF_PV_V5);
  expect_warning(&d, "ZDM_WORKERS: ignored: 'workers' is a tandem-only key, set TANDEM_WORKERS");
  expect_warning(&d, "TANDEM_PRIMARY_CLUSTR: unknown variable, ignored (did you mean TANDEM_PRIMARY_CLUSTER?)");
  expect_warning(&d, "ZDM_SOMETHING_ELSE: unknown variable, ignored");
  assert_int_equal(d.nwarnings, 3);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

static void test_env_errors(void **state)
{
  char *env[] = { "ZDM_ORIGIN_PORT=abc", "TANDEM_READ_MODE=sometimes", "TANDEM_TARGET_CONTACT_POINTS=a b", NULL };
  expect_fail(CP, env,
              "ZDM_ORIGIN_PORT: invalid value for 'origin_port': expected an integer from 0 to 65535, got 'abc'\n"
              "TANDEM_READ_MODE: invalid value for 'read_mode': expected PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY, "
              "got 'sometimes'\n"
              "TANDEM_TARGET_CONTACT_POINTS: invalid value for 'target_contact_points': invalid host name, got 'a b'");
  /* Cross-key errors name the variable that set the key. */
  char *env2[] = { "TANDEM_PROXY_TOPOLOGY_INDEX=2", NULL };
  expect_fail(CP, env2,
              "TANDEM_PROXY_TOPOLOGY_INDEX: 'proxy_topology_index' is 2 but 'proxy_topology_addresses' is empty "
              "(the index must be 0)");
  /* With neither file nor environment, the contact points are missing. */
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  assert_int_equal(tdm_conf_load(NULL, NULL, &c, &d), TDM_ECONF);
  assert_string_equal(d.message, "configuration: 'origin_contact_points' is required: ORIGIN has no contact points\n"
                                 "configuration: 'target_contact_points' is required: TARGET has no contact points");
  tdm_conf_diag_free(&d);
}

/* ---- warnings ---- */

static void test_warnings(void **state)
{
  tdm_conf_diag_t d = { 0 };
  char *env[] = { "ZDM_WRITE_MAX_WORKERS=4", NULL };
  tdm_conf_t *c = load_ok(CP "request_write_queue_size_frames: 256\n"
                             "response_read_buffer_size_bytes: 32768\n"
                             "target_tls_verify_hostname: false\n"
                             "proxy_tls_allow_plaintext: true\n",
                          env, &d);
  expect_warning(&d, "t.yaml:3:1: 'request_write_queue_size_frames' is a zdm-proxy tuning key without effect in "
                     "tandem; ignored");
  /* Set to its default value: still a key without effect, still one WARN. */
  expect_warning(&d, "t.yaml:4:1: 'response_read_buffer_size_bytes' is a zdm-proxy tuning key without effect in "
                     "tandem; ignored");
  expect_warning(&d, "ZDM_WRITE_MAX_WORKERS: 'write_max_workers' is a zdm-proxy tuning key without effect in "
                     "tandem; ignored");
  expect_warning(&d, "t.yaml:5:1: 'target_tls_verify_hostname' is false: TARGET node certificates are not "
                     "checked against the host name");
  expect_warning(&d, "t.yaml:6:1: 'proxy_tls_allow_plaintext' has no effect without client TLS");
  assert_int_equal(d.nwarnings, 5);
  assert_int_equal(c->compat.request_write_queue_size_frames, 256);
  assert_false(c->cluster[TDM_CONF_TARGET].tls_verify_hostname);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

/* zdm-proxy 2.5 keys without an equivalent in tandem: accepted from file and ZDM_ env, one WARN each. */
static void test_zdm_keys_without_effect(void **state)
{
  tdm_conf_diag_t d = { 0 };
  char *env[] = { "ZDM_TARGET_PREFER_IP_FROM_SYSTEM_LOCAL=false", NULL };
  tdm_conf_t *c = load_ok(CP "origin_prefer_ip_from_system_local: false\n"
                             "proxy_max_prepared_statement_cache_size: 5000\n",
                          env, &d);
  expect_warning(&d, "t.yaml:3:1: 'origin_prefer_ip_from_system_local' is a zdm-proxy tuning key without effect "
                     "in tandem; ignored");
  expect_warning(&d, "t.yaml:4:1: 'proxy_max_prepared_statement_cache_size' is a zdm-proxy tuning key without "
                     "effect in tandem; ignored");
  expect_warning(&d, "ZDM_TARGET_PREFER_IP_FROM_SYSTEM_LOCAL: 'target_prefer_ip_from_system_local' is a zdm-proxy "
                     "tuning key without effect in tandem; ignored");
  assert_int_equal(d.nwarnings, 3);
  assert_false(c->compat.origin_prefer_ip_from_system_local);
  assert_false(c->compat.target_prefer_ip_from_system_local);
  assert_int_equal(c->compat.proxy_max_prepared_statement_cache_size, 5000);
  /* The registry bound is tandem's own key and is not touched by the zdm-proxy one. */
  assert_int_equal(c->prepared_cache_max_entries, 50000);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

/* ---- secrets ---- */

#define SECRET "hunter2-TOPSECRET"

static void assert_clean(const tdm_conf_diag_t *d)
{
  if (d->message && strstr(d->message, "TOPSECRET"))
    fail_msg("secret in message: %s", d->message);
  for (size_t i = 0; i < d->nerrors; i++)
    if (strstr(d->errors[i], "TOPSECRET"))
      fail_msg("secret in error: %s", d->errors[i]);
  for (size_t i = 0; i < d->nwarnings; i++)
    if (strstr(d->warnings[i], "TOPSECRET"))
      fail_msg("secret in warning: %s", d->warnings[i]);
}

static void secret_diff_cb(const tdm_conf_key_t *key, const char *old_text, const char *new_text, void *arg)
{
  assert_null(strstr(old_text, "TOPSECRET"));
  assert_null(strstr(new_text, "TOPSECRET"));
  (*(int *)arg)++;
}

static void test_secrets_never_shown(void **state)
{
  static const char *const bad[] = {
    CP "origin_password: [" SECRET "]\n",
    CP "origin_password: {a: " SECRET "}\n",
    CP "origin_password: \"" SECRET "\\0x\"\n",
    CP "origin_password: \"" SECRET "\n",
    CP "origin_password: " SECRET ": x\n",
    CP "origin_pasword: " SECRET "\n",
    CP "origin_password: " SECRET "\norigin_password: " SECRET "2\n",
    CP "target_password: " SECRET "\nprimary_cluster: nowhere\n",
    CP "target_password: a\n  " SECRET "\n  : b\n",
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(bad); i++) {
    tdm_conf_t *c = NULL;
    tdm_conf_diag_t d = { 0 };
    assert_int_equal(tdm_conf_load_buffer("t.yaml", bad[i], strlen(bad[i]), NULL, &c, &d), TDM_ECONF);
    assert_non_null(d.message);
    assert_clean(&d);
    tdm_conf_diag_free(&d);
  }
  /* Overrides between file, ZDM_ and TANDEM_: named, never shown. */
  char *env[] = { "ZDM_ORIGIN_PASSWORD=" SECRET "-zdm", "TANDEM_ORIGIN_PASSWORD=" SECRET "-tandem",
                  "ZDM_TARGET_PASSWORD=" SECRET "-t", NULL };
  tdm_conf_diag_t d = { 0 };
  tdm_conf_t *a = load_ok(CP "origin_password: " SECRET "-file\n", env, &d);
  assert_string_equal(a->cluster[TDM_CONF_ORIGIN].password, SECRET "-tandem");
  assert_clean(&d);
  expect_warning(&d, "t.yaml:3:1: 'origin_password' from the file is overridden by ZDM_ORIGIN_PASSWORD");
  expect_warning(&d, "ZDM_ORIGIN_PASSWORD: 'origin_password' is overridden by TANDEM_ORIGIN_PASSWORD");
  tdm_conf_diag_free(&d);
  /* Rendering and diffs. */
  tdm_conf_t *b = load_ok(CP "origin_password: other-" SECRET "\n", NULL, &d);
  char buf[64];
  render(a, "origin_password", buf, sizeof(buf));
  assert_string_equal(buf, "***");
  int n = 0;
  assert_int_equal(tdm_conf_diff(a, b, secret_diff_cb, &n), 2);
  assert_int_equal(n, 2);
  tdm_conf_unref(a);
  tdm_conf_unref(b);
  tdm_conf_diag_free(&d);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_scalar_values),
    cmocka_unit_test(test_version_spellings),
    cmocka_unit_test(test_sequence_vs_comma_list),
    cmocka_unit_test(test_empty_documents),
    cmocka_unit_test(test_key_errors),
    cmocka_unit_test(test_value_errors),
    cmocka_unit_test(test_structure_errors),
    cmocka_unit_test(test_too_many_errors),
    cmocka_unit_test(test_precedence),
    cmocka_unit_test(test_env_only_and_prefix_rules),
    cmocka_unit_test(test_env_errors),
    cmocka_unit_test(test_warnings),
    cmocka_unit_test(test_zdm_keys_without_effect),
    cmocka_unit_test(test_secrets_never_shown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
