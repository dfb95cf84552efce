/* Unit tests of the cross-key rules of behaviour.md §1.1: each rule refused with its exact
 * `file:line:column: ...` text (located at the key that breaks it), and the valid neighbours of each
 * rule accepted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/conf/conf.h>

#define CP "origin_contact_points: 10.0.0.1\ntarget_contact_points: 10.0.1.1\n"

typedef struct case_s {
  const char *yaml; /* whole document */
  const char *msg;  /* expected diag message */
} case_t;

static void run_bad(const case_t *cases, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    tdm_conf_t *c = NULL;
    tdm_conf_diag_t d = { 0 };
    int rc = tdm_conf_load_buffer("t.yaml", cases[i].yaml, strlen(cases[i].yaml), NULL, &c, &d);
    if (rc != TDM_ECONF)
      fail_msg("accepted (rc %d):\n%s", rc, cases[i].yaml);
    assert_null(c);
    if (strcmp(d.message, cases[i].msg) != 0)
      fail_msg("for:\n%s\ngot:\n%s\nexpected:\n%s", cases[i].yaml, d.message, cases[i].msg);
    tdm_conf_diag_free(&d);
  }
}

static void run_good(const char *const *docs, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    tdm_conf_t *c = NULL;
    tdm_conf_diag_t d = { 0 };
    int rc = tdm_conf_load_buffer("t.yaml", docs[i], strlen(docs[i]), NULL, &c, &d);
    if (rc != 0)
      fail_msg("refused:\n%s\n->\n%s", docs[i], d.message ? d.message : tdm_strerror(rc));
    tdm_conf_unref(c);
    tdm_conf_diag_free(&d);
  }
}

static void test_bundle_rules(void **state)
{
  static const case_t bad[] = {
    { "origin_secure_connect_bundle_path: /b.zip\n" CP,
      "t.yaml:1:1: 'origin_secure_connect_bundle_path' and 'origin_contact_points' are mutually exclusive" },
    { "origin_contact_points: 10.0.0.1\ntarget_secure_connect_bundle_path: /b.zip\ntarget_local_datacenter: dc1\n",
      "t.yaml:2:1: 'target_secure_connect_bundle_path' and 'target_local_datacenter' are mutually exclusive" },
    { "origin_contact_points: 10.0.0.1\ntarget_secure_connect_bundle_path: /b.zip\n"
      "target_tls_server_ca_path: /ca.pem\n",
      "t.yaml:2:1: 'target_secure_connect_bundle_path' excludes custom TLS files ('target_tls_*_path')" },
    { "origin_contact_points: 10.0.0.1\ntarget_secure_connect_bundle_path: /b.zip\n",
      "t.yaml:2:1: 'target_secure_connect_bundle_path': secure connect bundles are not supported yet; use "
      "'target_contact_points' (and 'target_tls_*' for TLS)" },
    /* Contact points are required without a bundle... */
    { "origin_contact_points: 10.0.0.1\n",
      "t.yaml: 'target_contact_points' is required: TARGET has no contact points" },
    { "origin_contact_points: 10.0.0.1\ntarget_contact_points: \"\"\n",
      "t.yaml:2:1: 'target_contact_points' is required: TARGET has no contact points" },
    { "origin_contact_points: []\ntarget_contact_points: ' , '\n",
      "t.yaml:1:1: 'origin_contact_points' is required: ORIGIN has no contact points\n"
      "t.yaml:2:1: 'target_contact_points' is required: TARGET has no contact points" },
    /* ...and a port: their own or {c}_port. */
    { CP "origin_port: 0\n", "t.yaml:3:1: 'origin_port' is 0 but contact point '10.0.0.1' has no port of its own" },
  };
  run_bad(bad, TDM_ARRAY_SIZE(bad));
  static const char *const ok[] = {
    "origin_contact_points: 10.0.0.1:9042, 10.0.0.2:9043\ntarget_contact_points: 10.0.1.1\norigin_port: 0\n",
    CP "origin_secure_connect_bundle_path: \"\"\n",
  };
  run_good(ok, TDM_ARRAY_SIZE(ok));
}

static void test_local_dc_rule(void **state)
{
  static const case_t bad[] = {
    { CP "origin_local_datacenter: dc1\norigin_enable_host_assignment: false\n",
      "t.yaml:3:1: 'origin_local_datacenter' needs 'origin_enable_host_assignment: true'" },
  };
  static const char *const ok[] = {
    CP "origin_local_datacenter: dc1\n",
    CP "target_enable_host_assignment: false\n",
  };
  run_bad(bad, TDM_ARRAY_SIZE(bad));
  run_good(ok, TDM_ARRAY_SIZE(ok));
}

#define TLS_MSG(CL, c)                                                                                    \
  "incomplete TLS for " CL ": set '" c "_tls_server_ca_path' alone (one-way TLS) or with '" c              \
  "_tls_client_cert_path' and '" c "_tls_client_key_path' (mutual TLS)"

static void test_cluster_tls_rules(void **state)
{
  static const case_t bad[] = {
    { CP "origin_tls_server_ca_path: /ca\norigin_tls_client_cert_path: /cert\n",
      "t.yaml:4:1: " TLS_MSG("ORIGIN", "origin") },
    { CP "target_tls_client_key_path: /key\n", "t.yaml:3:1: " TLS_MSG("TARGET", "target") },
    { CP "target_tls_client_cert_path: /cert\ntarget_tls_client_key_path: /key\n",
      "t.yaml:3:1: " TLS_MSG("TARGET", "target") },
  };
  static const char *const ok[] = {
    CP "origin_tls_server_ca_path: /ca\n",
    CP "target_tls_server_ca_path: /ca\ntarget_tls_client_cert_path: /c\ntarget_tls_client_key_path: /k\n",
  };
  run_bad(bad, TDM_ARRAY_SIZE(bad));
  run_good(ok, TDM_ARRAY_SIZE(ok));
}

static void test_proxy_tls_rules(void **state)
{
  static const case_t bad[] = {
    { CP "proxy_tls_cert_path: /cert\n", "t.yaml:3:1: 'proxy_tls_cert_path' and 'proxy_tls_key_path' go together" },
    { CP "proxy_tls_ca_path: /ca\nproxy_tls_key_path: /key\n",
      "t.yaml:4:1: 'proxy_tls_cert_path' and 'proxy_tls_key_path' go together" },
    { CP "proxy_tls_ca_path: /ca\n",
      "t.yaml:3:1: 'proxy_tls_ca_path' needs 'proxy_tls_cert_path' and 'proxy_tls_key_path' (client TLS is off "
      "without them)" },
    { CP "proxy_tls_cert_path: /c\nproxy_tls_key_path: /k\nproxy_tls_require_client_auth: true\n",
      "t.yaml:5:1: 'proxy_tls_require_client_auth' needs 'proxy_tls_ca_path'" },
  };
  static const char *const ok[] = {
    CP "proxy_tls_cert_path: /c\nproxy_tls_key_path: /k\n",
    CP "proxy_tls_ca_path: /ca\nproxy_tls_cert_path: /c\nproxy_tls_key_path: /k\n"
       "proxy_tls_require_client_auth: true\nproxy_tls_allow_plaintext: true\n",
  };
  run_bad(bad, TDM_ARRAY_SIZE(bad));
  run_good(ok, TDM_ARRAY_SIZE(ok));
}

static void test_topology_rules(void **state)
{
  static const case_t bad[] = {
    { CP "proxy_topology_addresses: 10.2.0.1,10.2.0.2\nproxy_topology_index: 2\n",
      "t.yaml:4:1: 'proxy_topology_index' is 2 but 'proxy_topology_addresses' lists 2 addresses (the index must "
      "be 0 to 1)" },
    { CP "proxy_topology_index: 1\nproxy_topology_addresses: 10.2.0.1\n",
      "t.yaml:3:1: 'proxy_topology_index' is 1 but 'proxy_topology_addresses' lists 1 address (the index must "
      "be 0 to 0)" },
    { CP "proxy_topology_index: 1\n",
      "t.yaml:3:1: 'proxy_topology_index' is 1 but 'proxy_topology_addresses' is empty (the index must be 0)" },
    { CP "proxy_topology_index: -1\n",
      "t.yaml:3:23: invalid value for 'proxy_topology_index': expected an integer >= 0, got '-1'" },
  };
  static const char *const ok[] = {
    CP "proxy_topology_index: 1\nproxy_topology_addresses: '10.2.0.1, 10.2.0.2:14003'\n",
    CP "proxy_topology_num_tokens: 256\n",
    CP "proxy_topology_num_tokens: 1\n",
  };
  run_bad(bad, TDM_ARRAY_SIZE(bad));
  run_good(ok, TDM_ARRAY_SIZE(ok));
}

static void test_feature_and_version_rules(void **state)
{
  static const case_t bad[] = {
    { CP "replace_cql_functions: true\n", "t.yaml:3:1: 'replace_cql_functions: true' is not supported yet" },
    { CP "control_conn_max_protocol_version: 2\n",
      "t.yaml:3:1: 'control_conn_max_protocol_version' is 2 but protocol v2 is off (set 'enable_protocol_v2: "
      "true')" },
    { CP "blocked_protocol_versions: 3,4,5,DseV1,DseV2\n",
      "t.yaml:3:1: 'blocked_protocol_versions' blocks every supported protocol version" },
    { CP "heartbeat_retry_interval_min_ms: 5000\nheartbeat_retry_interval_max_ms: 1000\n",
      "t.yaml:3:1: 'heartbeat_retry_interval_min_ms' (5000) exceeds 'heartbeat_retry_interval_max_ms' (1000)" },
    { CP "metrics_prefix: my-proxy\n",
      "t.yaml:3:1: 'metrics_prefix' must be a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)" },
    { CP "metrics_prefix: \"\"\n",
      "t.yaml:3:1: 'metrics_prefix' must be a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)" },
    /* Several rules at once: every failure is reported. */
    { CP "replace_cql_functions: yes\nproxy_topology_index: 3\n",
      "t.yaml:4:1: 'proxy_topology_index' is 3 but 'proxy_topology_addresses' is empty (the index must be 0)\n"
      "t.yaml:3:1: 'replace_cql_functions: true' is not supported yet" },
  };
  static const char *const ok[] = {
    CP "replace_cql_functions: false\n",
    CP "control_conn_max_protocol_version: 2\nenable_protocol_v2: true\n",
    CP "blocked_protocol_versions: 3,4,5,DseV1,DseV2\nenable_protocol_v2: true\n",
    CP "blocked_protocol_versions: 2,3,4,DseV1\n",
    CP "metrics_prefix: zdm\n",
    CP "heartbeat_retry_interval_min_ms: 1000\nheartbeat_retry_interval_max_ms: 1000\n",
    CP "admin_port: 0\nmetrics_port: 0\nasync_read_sample_percent: 0\nproxy_max_stream_ids: 1\n",
  };
  run_bad(bad, TDM_ARRAY_SIZE(bad));
  run_good(ok, TDM_ARRAY_SIZE(ok));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bundle_rules),
    cmocka_unit_test(test_local_dc_rule),
    cmocka_unit_test(test_cluster_tls_rules),
    cmocka_unit_test(test_proxy_tls_rules),
    cmocka_unit_test(test_topology_rules),
    cmocka_unit_test(test_feature_and_version_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
