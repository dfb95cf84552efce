/* Unit tests of the key table and the snapshot: every default and reload class against behaviour.md §1.2
 * and §1.3 (written out independently here), flags, typed fields, rendering, refcounting, the diff and
 * the key suggestions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/conf/conf.h>

#define BUCKETS "1,4,7,10,25,40,60,80,100,150,250,500,1000,2500,5000,10000,15000"

typedef struct expect_s {
  const char *name;  /* key */
  const char *value; /* default, rendered */
  const char *cls;   /* reload class */
  unsigned flags;    /* expected TDM_CONF_F_* */
} expect_t;

#define Z TDM_CONF_F_ZDM
#define ZS (TDM_CONF_F_ZDM | TDM_CONF_F_SECRET)
#define ZN (TDM_CONF_F_ZDM | TDM_CONF_F_NO_EFFECT)
#define CLUSTER(c)                                                                                       \
  { c "_contact_points", "", "restart", Z }, { c "_port", "9042", "restart", Z },                        \
  { c "_secure_connect_bundle_path", "", "restart", Z }, { c "_local_datacenter", "", "restart", Z },    \
  { c "_username", "", "new", Z }, { c "_password", "", "new", ZS },                                     \
  { c "_connection_timeout_ms", "30000", "new", Z }, { c "_tls_server_ca_path", "", "new", Z },          \
  { c "_tls_client_cert_path", "", "new", Z }, { c "_tls_client_key_path", "", "new", Z },               \
  { c "_enable_host_assignment", "true", "restart", Z }, { c "_tls_verify_hostname", "true", "new", 0 }, \
  { c "_tls_server_name", "", "new", 0 }

/* behaviour.md §1.2 and §1.3, one row per key. */
static const expect_t spec[] = {
  { "primary_cluster", "ORIGIN", "live", Z },
  { "read_mode", "PRIMARY_ONLY", "live", Z },
  { "system_queries_mode", "ORIGIN", "restart", Z },
  { "forward_client_credentials_to_origin", "false", "new", Z },
  { "replace_cql_functions", "false", "restart", Z },
  { "async_handshake_timeout_ms", "4000", "live", Z },
  { "async_connector_write_queue_size_frames", "2048", "live", Z },
  { "log_level", "INFO", "live", Z },
  { "control_conn_max_protocol_version", "DseV2", "restart", Z },
  { "blocked_protocol_versions", "", "new", Z },
  { "tracing_enabled", "false", "live", Z },
  { "tracing_rate_limit", "0", "live", Z },
  { "tracing_request_id_key", "request-id", "live", Z },
  { "proxy_topology_index", "0", "live", Z },
  { "proxy_topology_addresses", "", "live", Z },
  { "proxy_topology_num_tokens", "8", "live", Z },
  CLUSTER("origin"),
  CLUSTER("target"),
  { "proxy_listen_address", "localhost", "restart", Z },
  { "proxy_listen_port", "14002", "restart", Z },
  { "proxy_request_timeout_ms", "10000", "live", Z },
  { "proxy_max_client_connections", "1000", "live", Z },
  { "proxy_max_stream_ids", "32768", "new", Z },
  { "proxy_tls_ca_path", "", "new", Z },
  { "proxy_tls_cert_path", "", "new", Z },
  { "proxy_tls_key_path", "", "new", Z },
  { "proxy_tls_require_client_auth", "false", "new", Z },
  { "metrics_enabled", "true", "restart", Z },
  { "metrics_address", "localhost", "restart", Z },
  { "metrics_port", "14001", "restart", Z },
  { "metrics_prefix", "tandem", "restart", Z },
  { "metrics_origin_latency_buckets_ms", BUCKETS, "restart", Z },
  { "metrics_target_latency_buckets_ms", BUCKETS, "restart", Z },
  { "metrics_async_read_latency_buckets_ms", BUCKETS, "restart", Z },
  { "heartbeat_interval_ms", "30000", "live", Z },
  { "heartbeat_retry_interval_min_ms", "250", "live", Z },
  { "heartbeat_retry_interval_max_ms", "30000", "live", Z },
  { "heartbeat_retry_backoff_factor", "2", "live", Z },
  { "heartbeat_failure_threshold", "1", "live", Z },
  /* zdm-proxy tuning keys: no effect; zdm-proxy's defaults. */
  { "request_write_queue_size_frames", "128", "live", ZN },
  { "request_write_buffer_size_bytes", "4096", "live", ZN },
  { "request_read_buffer_size_bytes", "32768", "live", ZN },
  { "response_write_queue_size_frames", "128", "live", ZN },
  { "response_write_buffer_size_bytes", "8192", "live", ZN },
  { "response_read_buffer_size_bytes", "32768", "live", ZN },
  { "request_response_max_workers", "-1", "live", ZN },
  { "write_max_workers", "-1", "live", ZN },
  { "read_max_workers", "-1", "live", ZN },
  { "listener_max_workers", "-1", "live", ZN },
  { "event_queue_size_frames", "12", "live", ZN },
  { "async_connector_write_buffer_size_bytes", "4096", "live", ZN },
  { "origin_prefer_ip_from_system_local", "true", "live", ZN },
  { "target_prefer_ip_from_system_local", "true", "live", ZN },
  { "proxy_max_prepared_statement_cache_size", "10000", "live", ZN },
  /* §1.3 */
  { "workers", "0", "restart", 0 },
  { "max_frame_bytes", "268435456", "live", 0 },
  { "prepared_cache_max_entries", "50000", "live", 0 },
  { "log_format", "text", "live", 0 },
  { "log_file", "", "restart", 0 },
  { "admin_address", "localhost", "restart", 0 },
  { "admin_port", "14003", "restart", 0 },
  { "admin_token_file", "", "live", 0 },
  { "async_read_sample_percent", "100", "live", 0 },
  { "write_divergence_policy", "FAIL", "live", 0 },
  { "write_divergence_log", "", "live", 0 },
  { "write_divergence_log_values", "false", "live", 0 },
  { "write_divergence_log_max_bytes", "268435456", "live", 0 },
  { "schema_agreement_wait_ms", "10000", "live", 0 },
  { "client_handshake_timeout_ms", "30000", "live", 0 },
  { "shutdown_drain_timeout_ms", "15000", "live", 0 },
  { "backpressure_high_water_bytes", "4194304", "live", 0 },
  { "backend_pool_max_connections_per_node", "4", "live", 0 },
  { "backend_pool_idle_timeout_ms", "300000", "live", 0 },
  { "auth_cache_ttl_ms", "30000", "live", 0 },
  { "proxy_tls_allow_plaintext", "false", "new", 0 },
  { "enable_protocol_v2", "false", "restart", 0 },
};

static void test_every_default_and_class(void **state)
{
  tdm_conf_t *c = NULL;
  assert_int_equal(tdm_conf_defaults(&c), 0);
  assert_int_equal(tdm_conf_key_count(), TDM_ARRAY_SIZE(spec));
  for (size_t i = 0; i < TDM_ARRAY_SIZE(spec); i++) {
    const tdm_conf_key_t *k = tdm_conf_key_find(spec[i].name);
    char buf[256];
    if (!k)
      fail_msg("key %s missing from the table", spec[i].name);
    assert_int_equal(tdm_conf_render(c, k, buf, sizeof(buf)), 0);
    if (strcmp(buf, spec[i].value) != 0)
      fail_msg("%s: default '%s', spec says '%s'", spec[i].name, buf, spec[i].value);
    assert_string_equal(tdm_conf_reload_name(k->reload), spec[i].cls);
    if (k->flags != spec[i].flags)
      fail_msg("%s: flags %#x, expected %#x", spec[i].name, k->flags, spec[i].flags);
    assert_int_equal(c->origin[tdm_conf_key_index(k)].source, TDM_CONF_SRC_DEFAULT);
  }
  tdm_conf_unref(c);
}

static void test_typed_defaults(void **state)
{
  tdm_conf_t *c = NULL;
  assert_int_equal(tdm_conf_defaults(&c), 0);
  assert_int_equal(c->primary_cluster, TDM_CONF_ORIGIN);
  assert_int_equal(c->read_mode, TDM_CONF_READ_PRIMARY_ONLY);
  assert_int_equal(c->system_queries_mode, TDM_CONF_ORIGIN);
  assert_int_equal(c->log_level, TDM_CONF_LOG_INFO);
  assert_int_equal(c->log_format, TDM_CONF_LOG_TEXT);
  assert_int_equal(c->write_divergence_policy, TDM_CONF_DIVERGENCE_FAIL);
  assert_int_equal(c->control_conn_max_protocol_version, 0x42);
  assert_int_equal(c->blocked_protocol_versions, 0);
  assert_int_equal(c->async_handshake_timeout_ms, 4000);
  assert_int_equal(c->proxy_listen_port, 14002);
  assert_string_equal(c->proxy_listen_address, "localhost");
  assert_string_equal(c->tracing_request_id_key, "request-id");
  assert_int_equal(c->proxy_max_stream_ids, 32768);
  assert_int_equal(c->max_frame_bytes, 268435456);
  assert_true(c->write_divergence_log_max_bytes == 268435456);
  assert_true(c->backpressure_high_water_bytes == 4194304);
  assert_true(c->heartbeat_retry_backoff_factor == 2.0);
  assert_int_equal(c->proxy_topology_addresses.n, 0);
  for (int i = 0; i < TDM_CONF_CLUSTER_MAX; i++) {
    assert_int_equal(c->cluster[i].port, 9042);
    assert_int_equal(c->cluster[i].contact_points.n, 0);
    assert_string_equal(c->cluster[i].password, "");
    assert_true(c->cluster[i].enable_host_assignment);
    assert_true(c->cluster[i].tls_verify_hostname);
    assert_int_equal(c->cluster[i].connection_timeout_ms, 30000);
  }
  static const double buckets[] = { 1, 4, 7, 10, 25, 40, 60, 80, 100, 150, 250, 500, 1000, 2500, 5000, 10000,
                                    15000 };
  const tdm_conf_doubles_t *lists[] = { &c->metrics_origin_latency_buckets_ms,
                                        &c->metrics_target_latency_buckets_ms,
                                        &c->metrics_async_read_latency_buckets_ms };
  for (size_t l = 0; l < 3; l++) {
    assert_int_equal(lists[l]->n, TDM_ARRAY_SIZE(buckets));
    for (size_t i = 0; i < TDM_ARRAY_SIZE(buckets); i++)
      assert_true(lists[l]->v[i] == buckets[i]);
  }
  assert_int_equal(c->compat.request_write_queue_size_frames, 128);
  assert_int_equal(c->compat.listener_max_workers, -1);
  assert_true(c->metrics_enabled);
  assert_false(c->enable_protocol_v2);
  assert_int_equal(c->epoch, 0);
  assert_null(c->path);
  tdm_conf_unref(c);
}

static void test_table_is_well_formed(void **state)
{
  for (size_t i = 0; i < tdm_conf_key_count(); i++) {
    const tdm_conf_key_t *k = tdm_conf_key_at(i);
    assert_ptr_equal(tdm_conf_key_find(k->name), k);
    assert_int_equal(tdm_conf_key_index(k), i);
    assert_non_null(k->help);
    assert_true(strlen(k->help) > 5);
    for (const char *p = k->name; *p; p++)
      assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
    assert_true((k->type == TDM_CONF_T_ENUM) == (k->enums != NULL));
    bool secret = strstr(k->name, "_password") != NULL;
    assert_int_equal(secret, (k->flags & TDM_CONF_F_SECRET) != 0);
  }
  assert_null(tdm_conf_key_at(tdm_conf_key_count()));
  assert_null(tdm_conf_key_find("nope"));
  assert_null(tdm_conf_key_find("PRIMARY_CLUSTER")); /* file keys are case-sensitive */
}

static void test_suggest(void **state)
{
  assert_string_equal(tdm_conf_key_suggest("primary_clustr")->name, "primary_cluster");
  assert_string_equal(tdm_conf_key_suggest("PRIMARY_CLUSTER")->name, "primary_cluster");
  assert_string_equal(tdm_conf_key_suggest("orign_contact_points")->name, "origin_contact_points");
  assert_string_equal(tdm_conf_key_suggest("log_levle")->name, "log_level");
  assert_string_equal(tdm_conf_key_suggest("worker")->name, "workers");
  assert_null(tdm_conf_key_suggest("foo"));
  assert_null(tdm_conf_key_suggest("completely_unrelated_setting"));
  assert_null(tdm_conf_key_suggest(""));
}

static void test_render(void **state)
{
  static const char yaml[] = "origin_contact_points: [10.0.0.1, 'db1:9043', '[::1]:9044', '::2']\n"
                             "target_contact_points: 10.0.1.1\n"
                             "origin_password: s3cret\n"
                             "blocked_protocol_versions: v5,DseV1,3\n"
                             "metrics_origin_latency_buckets_ms: 0.5, 2.25, 1e3\n"
                             "proxy_topology_addresses: 10.1.0.1,10.1.0.2:9999\n";
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  char buf[128];
  assert_int_equal(tdm_conf_load_buffer("t.yaml", yaml, strlen(yaml), NULL, &c, &d), 0);
  assert_int_equal(tdm_conf_render_value(c, "origin_contact_points", buf, sizeof(buf)), 0);
  assert_string_equal(buf, "10.0.0.1,db1:9043,[::1]:9044,::2");
  assert_int_equal(tdm_conf_render_value(c, "origin_password", buf, sizeof(buf)), 0);
  assert_string_equal(buf, "***");
  assert_int_equal(tdm_conf_render_value(c, "target_password", buf, sizeof(buf)), 0);
  assert_string_equal(buf, ""); /* an unset secret shows as empty */
  assert_int_equal(tdm_conf_render_value(c, "blocked_protocol_versions", buf, sizeof(buf)), 0);
  assert_string_equal(buf, "3,5,DseV1");
  assert_int_equal(tdm_conf_render_value(c, "metrics_origin_latency_buckets_ms", buf, sizeof(buf)), 0);
  assert_string_equal(buf, "0.5,2.25,1000");
  assert_int_equal(tdm_conf_render_value(c, "proxy_topology_addresses", buf, sizeof(buf)), 0);
  assert_string_equal(buf, "10.1.0.1,10.1.0.2:9999");
  /* Ports resolved: entries without one take {c}_port / proxy_listen_port. */
  assert_int_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.n, 4);
  assert_int_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.v[0].port, 9042);
  assert_false(c->cluster[TDM_CONF_ORIGIN].contact_points.v[0].port_set);
  assert_int_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.v[1].port, 9043);
  assert_string_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.v[2].host, "::1");
  assert_int_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.v[2].port, 9044);
  assert_string_equal(c->cluster[TDM_CONF_ORIGIN].contact_points.v[3].host, "::2");
  assert_int_equal(c->proxy_topology_addresses.v[0].port, 14002);
  assert_int_equal(c->proxy_topology_addresses.v[1].port, 9999);
  assert_true(tdm_conf_version_blocked(c, 5));
  assert_true(tdm_conf_version_blocked(c, 0x41));
  assert_true(tdm_conf_version_blocked(c, 3));
  assert_false(tdm_conf_version_blocked(c, 4));
  assert_false(tdm_conf_version_blocked(c, 0x42));
  assert_false(tdm_conf_version_blocked(c, 7));
  /* Truncation and unknown keys. */
  assert_int_equal(tdm_conf_render_value(c, "origin_contact_points", buf, 6), TDM_EOVERFLOW);
  assert_string_equal(buf, "10.0.");
  assert_int_equal(tdm_conf_render_value(c, "no_such_key", buf, sizeof(buf)), TDM_ENOTFOUND);
  assert_string_equal(buf, "");
  assert_int_equal(tdm_conf_render_value(c, "log_level", buf, 0), TDM_EOVERFLOW);
  tdm_conf_unref(c);
  tdm_conf_diag_free(&d);
}

static void test_version_bits(void **state)
{
  assert_int_equal(tdm_conf_version_bit(2), TDM_CONF_PV_V2);
  assert_int_equal(tdm_conf_version_bit(3), TDM_CONF_PV_V3);
  assert_int_equal(tdm_conf_version_bit(4), TDM_CONF_PV_V4);
  assert_int_equal(tdm_conf_version_bit(5), TDM_CONF_PV_V5);
  assert_int_equal(tdm_conf_version_bit(0x41), TDM_CONF_PV_DSE_V1);
  assert_int_equal(tdm_conf_version_bit(0x42), TDM_CONF_PV_DSE_V2);
  assert_int_equal(tdm_conf_version_bit(1), 0);
  assert_int_equal(tdm_conf_version_bit(6), 0);
}

static void test_refcount(void **state)
{
  tdm_conf_t *c = NULL;
  assert_int_equal(tdm_conf_defaults(&c), 0);
  assert_int_equal(atomic_load(&c->refs), 1);
  assert_ptr_equal(tdm_conf_ref(c), c);
  assert_int_equal(atomic_load(&c->refs), 2);
  c->epoch = 7; /* the owner's to set before publishing */
  tdm_conf_unref(c);
  assert_int_equal(atomic_load(&c->refs), 1);
  assert_int_equal(c->epoch, 7);
  tdm_conf_unref(c); /* freed here; ASan reports a leak or double free */
  tdm_conf_unref(NULL);
}

/* ---- diff ---- */

typedef struct change_s {
  char name[64]; /* key */
  char cls[8];   /* reload class */
  char from[64]; /* old value */
  char to[64];   /* new value */
} change_t;

typedef struct changes_s {
  change_t v[16]; /* collected changes */
  size_t n;       /* count */
} changes_t;

static void collect(const tdm_conf_key_t *key, const char *old_text, const char *new_text, void *arg)
{
  changes_t *ch = arg;
  assert_true(ch->n < TDM_ARRAY_SIZE(ch->v));
  change_t *c = &ch->v[ch->n++];
  snprintf(c->name, sizeof(c->name), "%s", key->name);
  snprintf(c->cls, sizeof(c->cls), "%s", tdm_conf_reload_name(key->reload));
  snprintf(c->from, sizeof(c->from), "%s", old_text);
  snprintf(c->to, sizeof(c->to), "%s", new_text);
}

static tdm_conf_t *load_ok(const char *yaml)
{
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  int rc = tdm_conf_load_buffer("t.yaml", yaml, strlen(yaml), NULL, &c, &d);
  if (rc)
    fail_msg("load failed: %s", d.message ? d.message : tdm_strerror(rc));
  tdm_conf_diag_free(&d);
  return c;
}

static void expect_change(const changes_t *ch, size_t i, const char *name, const char *cls, const char *from,
                          const char *to)
{
  assert_true(i < ch->n);
  assert_string_equal(ch->v[i].name, name);
  assert_string_equal(ch->v[i].cls, cls);
  assert_string_equal(ch->v[i].from, from);
  assert_string_equal(ch->v[i].to, to);
}

static void test_diff(void **state)
{
  tdm_conf_t *a = load_ok("origin_contact_points: 10.0.0.1\n"
                          "target_contact_points: 10.0.1.1\n"
                          "origin_password: old-pass\n"
                          "proxy_request_timeout_ms: 5000\n");
  tdm_conf_t *b = load_ok("origin_contact_points: 10.0.0.1, 10.0.0.9\n"
                          "target_contact_points: 10.0.1.1\n"
                          "primary_cluster: target\n"
                          "origin_password: new-pass\n"
                          "origin_username: bob\n"
                          "proxy_request_timeout_ms: 5000\n"
                          "proxy_listen_port: 9999\n"
                          "heartbeat_retry_backoff_factor: 1.5\n");
  changes_t ch = { 0 };
  assert_int_equal(tdm_conf_diff(a, a, collect, &ch), 0);
  assert_int_equal(ch.n, 0);
  assert_int_equal(tdm_conf_diff(a, b, collect, &ch), 6);
  assert_int_equal(ch.n, 6);
  /* Table order. */
  expect_change(&ch, 0, "primary_cluster", "live", "ORIGIN", "TARGET");
  expect_change(&ch, 1, "origin_contact_points", "restart", "10.0.0.1", "10.0.0.1,10.0.0.9");
  expect_change(&ch, 2, "origin_username", "new", "", "bob");
  expect_change(&ch, 3, "origin_password", "new", "***", "***");
  expect_change(&ch, 4, "proxy_listen_port", "restart", "14002", "9999");
  expect_change(&ch, 5, "heartbeat_retry_backoff_factor", "live", "2", "1.5");
  /* A NULL callback still counts. */
  assert_int_equal(tdm_conf_diff(b, a, NULL, NULL), 6);
  tdm_conf_unref(a);
  tdm_conf_unref(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_default_and_class),
    cmocka_unit_test(test_typed_defaults),
    cmocka_unit_test(test_table_is_well_formed),
    cmocka_unit_test(test_suggest),
    cmocka_unit_test(test_render),
    cmocka_unit_test(test_version_bits),
    cmocka_unit_test(test_refcount),
    cmocka_unit_test(test_diff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
