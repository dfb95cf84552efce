/* The key table: one row per configuration key of behaviour.md §1.2 and §1.3 (name, type, field offset,
 * default as text, reload class, flags, range, enum spellings, help). Defaults live here and only here;
 * they are parsed by the same code as file and environment values. */
#include <stddef.h>
#include "internal.h"

static const tdm_conf_enum_t cluster_names[] = {
  { "ORIGIN", TDM_CONF_ORIGIN },
  { "TARGET", TDM_CONF_TARGET },
  { NULL, 0 },
};

static const tdm_conf_enum_t read_mode_names[] = {
  { "PRIMARY_ONLY", TDM_CONF_READ_PRIMARY_ONLY },
  { "DUAL_ASYNC_ON_SECONDARY", TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY },
  { "ASYNC_READS_ON_SECONDARY", TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY }, /* zdm-proxy Helm chart */
  { NULL, 0 },
};

static const tdm_conf_enum_t log_level_names[] = {
  { "PANIC", TDM_CONF_LOG_PANIC }, { "FATAL", TDM_CONF_LOG_FATAL }, { "ERROR", TDM_CONF_LOG_ERROR },
  { "WARN", TDM_CONF_LOG_WARN },   { "INFO", TDM_CONF_LOG_INFO },   { "DEBUG", TDM_CONF_LOG_DEBUG },
  { "TRACE", TDM_CONF_LOG_TRACE },
  { "WARNING", TDM_CONF_LOG_WARN }, /* logrus spelling accepted by zdm-proxy */
  { NULL, 0 },
};

static const tdm_conf_enum_t log_format_names[] = {
  { "text", TDM_CONF_LOG_TEXT },
  { "json", TDM_CONF_LOG_JSON },
  { NULL, 0 },
};

static const tdm_conf_enum_t divergence_names[] = {
  { "FAIL", TDM_CONF_DIVERGENCE_FAIL },
  { "PRIMARY_WINS", TDM_CONF_DIVERGENCE_PRIMARY_WINS },
  { NULL, 0 },
};

#define MAXI 2147483647LL          /* INT32_MAX */
#define MAXL 9223372036854775807LL /* INT64_MAX */
#define ZDM TDM_CONF_F_ZDM
#define SECRET TDM_CONF_F_SECRET
#define NOEFF (TDM_CONF_F_ZDM | TDM_CONF_F_NO_EFFECT)
#define DEF_BUCKETS "1,4,7,10,25,40,60,80,100,150,250,500,1000,2500,5000,10000,15000"

#define K(name, type, field, def, rel, flags, lo, hi, enums, help) \
  { name, TDM_CONF_T_##type, offsetof(tdm_conf_t, field), def, TDM_CONF_##rel, flags, lo, hi, enums, help }

/* The per-cluster keys, once for ORIGIN and once for TARGET. */
#define CLUSTER_KEYS(c, CL, i)                                                                           \
  K(#c "_contact_points", HOSTS, cluster[i].contact_points, "", RESTART, ZDM, 0, 0, NULL,                \
    "Contact points of " CL ": host or host:port, comma-separated or a sequence; required"),             \
  K(#c "_port", INT, cluster[i].port, "9042", RESTART, ZDM, 0, 65535, NULL,                              \
    "CQL port of " CL " contact points given without one"),                                               \
  K(#c "_secure_connect_bundle_path", STR, cluster[i].secure_connect_bundle_path, "", RESTART, ZDM, 0, 0, \
    NULL, "Astra secure connect bundle for " CL "; not supported yet, refused"),                         \
  K(#c "_local_datacenter", STR, cluster[i].local_datacenter, "", RESTART, ZDM, 0, 0, NULL,              \
    "Local DC of " CL "; empty means the DC of the first node reached"),                                  \
  K(#c "_username", STR, cluster[i].username, "", NEW, ZDM, 0, 0, NULL,                                  \
    "Configured user name for " CL " (control connection, pools without the client identity)"),         \
  K(#c "_password", STR, cluster[i].password, "", NEW, ZDM | SECRET, 0, 0, NULL,                         \
    "Configured password for " CL "; never shown"),                                                      \
  K(#c "_connection_timeout_ms", INT, cluster[i].connection_timeout_ms, "30000", NEW, ZDM, 1, MAXI, NULL, \
    "Budget to open one " CL " connection; each node attempt gets min(5000, budget)"),                   \
  K(#c "_tls_server_ca_path", STR, cluster[i].tls_server_ca_path, "", NEW, ZDM, 0, 0, NULL,              \
    "CA file for " CL " TLS; alone: one-way TLS"),                                                       \
  K(#c "_tls_client_cert_path", STR, cluster[i].tls_client_cert_path, "", NEW, ZDM, 0, 0, NULL,          \
    "Client certificate for " CL " mTLS (with the CA and the key)"),                                     \
  K(#c "_tls_client_key_path", STR, cluster[i].tls_client_key_path, "", NEW, ZDM, 0, 0, NULL,            \
    "Client private key for " CL " mTLS (with the CA and the certificate)"),                             \
  K(#c "_enable_host_assignment", BOOL, cluster[i].enable_host_assignment, "true", RESTART, ZDM, 0, 0,   \
    NULL, "False: every " CL " leg goes to the control connection's node"),                              \
  K(#c "_tls_verify_hostname", BOOL, cluster[i].tls_verify_hostname, "true", NEW, 0, 0, 0, NULL,         \
    "Check the " CL " node certificate against the contact host; false logs a WARN at every start"),     \
  K(#c "_tls_server_name", STR, cluster[i].tls_server_name, "", NEW, 0, 0, 0, NULL,                      \
    "SNI and name to verify for " CL " when it is not the contact host")

const tdm_conf_key_t tdm__conf_keys[] = {
  /* ---- §1.2 zdm-proxy keys ---- */
  K("primary_cluster", ENUM, primary_cluster, "ORIGIN", LIVE, ZDM, 0, 0, cluster_names,
    "Serves synchronous reads; its response is returned for successful dual writes"),
  K("read_mode", ENUM, read_mode, "PRIMARY_ONLY", LIVE, ZDM, 0, 0, read_mode_names,
    "PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY (alias ASYNC_READS_ON_SECONDARY)"),
  K("system_queries_mode", ENUM, system_queries_mode, "ORIGIN", RESTART, ZDM, 0, 0, cluster_names,
    "Serves non-virtual system reads and feeds the virtual tables"),
  K("forward_client_credentials_to_origin", BOOL, forward_client_credentials_to_origin, "false", NEW, ZDM,
    0, 0, NULL, "With auth on both clusters, client credentials go to ORIGIN instead of TARGET"),
  K("replace_cql_functions", BOOL, replace_cql_functions, "false", RESTART, ZDM, 0, 0, NULL,
    "zdm-proxy's now() rewrite; not supported yet, true is refused"),
  K("async_handshake_timeout_ms", INT, async_handshake_timeout_ms, "4000", LIVE, ZDM, 1, MAXI, NULL,
    "Handshake timeout of async-read connections"),
  K("async_connector_write_queue_size_frames", INT, async_connector_write_queue_size_frames, "2048", LIVE,
    ZDM, 0, MAXI, NULL, "Per-worker cap on mirrored reads queued or in flight"),
  K("log_level", ENUM, log_level, "INFO", LIVE, ZDM, 0, 0, log_level_names,
    "PANIC FATAL ERROR WARN INFO DEBUG TRACE"),
  K("control_conn_max_protocol_version", VERSION, control_conn_max_protocol_version, "DseV2", RESTART, ZDM,
    0, 0, NULL, "First version probed by the control connection: 3 4 5 DseV1 DseV2 (2 if enabled)"),
  K("blocked_protocol_versions", VERSIONS, blocked_protocol_versions, "", NEW, ZDM, 0, 0, NULL,
    "Client protocol versions refused, e.g. v5,DseV1"),
  K("tracing_enabled", BOOL, tracing_enabled, "false", LIVE, ZDM, 0, 0, NULL,
    "Add a request id to the custom payload of QUERY/PREPARE/EXECUTE/BATCH (v4+)"),
  K("tracing_rate_limit", INT, tracing_rate_limit, "0", LIVE, ZDM, 0, MAXI, NULL,
    "Tracing rate limit; 0 = none"),
  K("tracing_request_id_key", STR, tracing_request_id_key, "request-id", LIVE, ZDM, 0, 0, NULL,
    "Custom payload key carrying the request id"),
  K("proxy_topology_index", INT, proxy_topology_index, "0", LIVE, ZDM, 0, MAXI, NULL,
    "Index of this instance in proxy_topology_addresses"),
  K("proxy_topology_addresses", ADDRS, proxy_topology_addresses, "", LIVE, ZDM, 0, 0, NULL,
    "Addresses of every tandem instance, ip or ip:port; empty = this instance alone"),
  K("proxy_topology_num_tokens", INT, proxy_topology_num_tokens, "8", LIVE, ZDM, 1, 256, NULL,
    "Virtual tokens per instance"),
  CLUSTER_KEYS(origin, "ORIGIN", TDM_CONF_ORIGIN),
  CLUSTER_KEYS(target, "TARGET", TDM_CONF_TARGET),
  K("proxy_listen_address", STR, proxy_listen_address, "localhost", RESTART, ZDM, 0, 0, NULL,
    "Client listener address"),
  K("proxy_listen_port", INT, proxy_listen_port, "14002", RESTART, ZDM, 1, 65535, NULL,
    "Client listener port"),
  K("proxy_request_timeout_ms", INT, proxy_request_timeout_ms, "10000", LIVE, ZDM, 1, MAXI, NULL,
    "Per-request timeout"),
  K("proxy_max_client_connections", INT, proxy_max_client_connections, "1000", LIVE, ZDM, 1, MAXI, NULL,
    "Client connection limit"),
  K("proxy_max_stream_ids", INT, proxy_max_stream_ids, "32768", NEW, ZDM, 1, 32768, NULL,
    "Stream ids per backend connection (128 for v2)"),
  K("proxy_tls_ca_path", STR, proxy_tls_ca_path, "", NEW, ZDM, 0, 0, NULL,
    "Client-facing TLS: CA that client certificates must chain to"),
  K("proxy_tls_cert_path", STR, proxy_tls_cert_path, "", NEW, ZDM, 0, 0, NULL,
    "Client-facing TLS certificate (with the key)"),
  K("proxy_tls_key_path", STR, proxy_tls_key_path, "", NEW, ZDM, 0, 0, NULL,
    "Client-facing TLS private key (with the certificate)"),
  K("proxy_tls_require_client_auth", BOOL, proxy_tls_require_client_auth, "false", NEW, ZDM, 0, 0, NULL,
    "Require client certificates chaining to proxy_tls_ca_path"),
  K("metrics_enabled", BOOL, metrics_enabled, "true", RESTART, ZDM, 0, 0, NULL,
    "HTTP listener for /metrics, /health/* and /api/v1/status"),
  K("metrics_address", STR, metrics_address, "localhost", RESTART, ZDM, 0, 0, NULL,
    "Metrics listener address"),
  K("metrics_port", INT, metrics_port, "14001", RESTART, ZDM, 0, 65535, NULL, "Metrics listener port"),
  K("metrics_prefix", STR, metrics_prefix, "tandem", RESTART, ZDM, 0, 0, NULL,
    "Series prefix; zdm keeps zdm-proxy dashboards working"),
  K("metrics_origin_latency_buckets_ms", BUCKETS, metrics_origin_latency_buckets_ms, DEF_BUCKETS, RESTART, ZDM,
    0, 0, NULL, "ORIGIN latency histogram buckets in ms, ascending"),
  K("metrics_target_latency_buckets_ms", BUCKETS, metrics_target_latency_buckets_ms, DEF_BUCKETS, RESTART, ZDM,
    0, 0, NULL, "TARGET latency histogram buckets in ms, ascending"),
  K("metrics_async_read_latency_buckets_ms", BUCKETS, metrics_async_read_latency_buckets_ms, DEF_BUCKETS,
    RESTART, ZDM, 0, 0, NULL, "Async read latency histogram buckets in ms, ascending"),
  K("heartbeat_interval_ms", INT, heartbeat_interval_ms, "30000", LIVE, ZDM, 1, MAXI, NULL,
    "Control connection heartbeat; idle threshold of pool connections"),
  K("heartbeat_retry_interval_min_ms", INT, heartbeat_retry_interval_min_ms, "250", LIVE, ZDM, 1, MAXI, NULL,
    "Control connection reconnect backoff floor"),
  K("heartbeat_retry_interval_max_ms", INT, heartbeat_retry_interval_max_ms, "30000", LIVE, ZDM, 1, MAXI,
    NULL, "Control connection reconnect backoff ceiling"),
  K("heartbeat_retry_backoff_factor", DOUBLE, heartbeat_retry_backoff_factor, "2", LIVE, ZDM, 1, 1000, NULL,
    "Control connection reconnect backoff multiplier (+-20 % jitter)"),
  K("heartbeat_failure_threshold", INT, heartbeat_failure_threshold, "1", LIVE, ZDM, 1, MAXI, NULL,
    "Consecutive control connection failures before readiness is DOWN"),

  /* zdm-proxy tuning keys: accepted, no effect, one WARN each when set (defaults are zdm-proxy's). */
  K("request_write_queue_size_frames", INT, compat.request_write_queue_size_frames, "128", LIVE, NOEFF,
    -MAXI - 1, MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("request_write_buffer_size_bytes", INT, compat.request_write_buffer_size_bytes, "4096", LIVE, NOEFF,
    -MAXI - 1, MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("request_read_buffer_size_bytes", INT, compat.request_read_buffer_size_bytes, "32768", LIVE, NOEFF,
    -MAXI - 1, MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("response_write_queue_size_frames", INT, compat.response_write_queue_size_frames, "128", LIVE, NOEFF,
    -MAXI - 1, MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("response_write_buffer_size_bytes", INT, compat.response_write_buffer_size_bytes, "8192", LIVE, NOEFF,
    -MAXI - 1, MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("response_read_buffer_size_bytes", INT, compat.response_read_buffer_size_bytes, "32768", LIVE, NOEFF,
    -MAXI - 1, MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("request_response_max_workers", INT, compat.request_response_max_workers, "-1", LIVE, NOEFF, -MAXI - 1,
    MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("write_max_workers", INT, compat.write_max_workers, "-1", LIVE, NOEFF, -MAXI - 1, MAXI, NULL,
    "zdm-proxy tuning key; no effect"),
  K("read_max_workers", INT, compat.read_max_workers, "-1", LIVE, NOEFF, -MAXI - 1, MAXI, NULL,
    "zdm-proxy tuning key; no effect"),
  K("listener_max_workers", INT, compat.listener_max_workers, "-1", LIVE, NOEFF, -MAXI - 1, MAXI, NULL,
    "zdm-proxy tuning key; no effect"),
  K("event_queue_size_frames", INT, compat.event_queue_size_frames, "12", LIVE, NOEFF, -MAXI - 1, MAXI, NULL,
    "zdm-proxy tuning key; no effect"),
  K("async_connector_write_buffer_size_bytes", INT, compat.async_connector_write_buffer_size_bytes, "4096",
    LIVE, NOEFF, -MAXI - 1, MAXI, NULL, "zdm-proxy tuning key; no effect"),
  K("origin_prefer_ip_from_system_local", BOOL, compat.origin_prefer_ip_from_system_local, "true", LIVE,
    NOEFF, 0, 0, NULL, "zdm-proxy key; no effect (tandem connects to each node's native address)"),
  K("target_prefer_ip_from_system_local", BOOL, compat.target_prefer_ip_from_system_local, "true", LIVE,
    NOEFF, 0, 0, NULL, "zdm-proxy key; no effect (tandem connects to each node's native address)"),
  K("proxy_max_prepared_statement_cache_size", INT, compat.proxy_max_prepared_statement_cache_size, "10000",
    LIVE, NOEFF, -MAXI - 1, MAXI, NULL, "zdm-proxy key; no effect (prepared_cache_max_entries bounds the registry)"),

  /* ---- §1.3 tandem-only keys ---- */
  K("workers", INT, workers, "0", RESTART, 0, 0, 1024, NULL, "Worker threads; 0 = online CPUs"),
  K("max_frame_bytes", INT, max_frame_bytes, "268435456", LIVE, 0, 1, MAXI, NULL,
    "Largest client body / v5 envelope, also after decompression"),
  K("prepared_cache_max_entries", INT, prepared_cache_max_entries, "50000", LIVE, 0, 1, MAXI, NULL,
    "Bound of the prepared-statement registry; shrinking evicts at once"),
  K("log_format", ENUM, log_format, "text", LIVE, 0, 0, 0, log_format_names,
    "text, or json (one object per line)"),
  K("log_file", STR, log_file, "", RESTART, 0, 0, 0, NULL, "Log file; empty = stderr; SIGUSR1 reopens"),
  K("admin_address", STR, admin_address, "localhost", RESTART, 0, 0, 0, NULL,
    "Admin listener address (POST /api/v1/reload)"),
  K("admin_port", INT, admin_port, "14003", RESTART, 0, 0, 65535, NULL, "Admin listener port; 0 disables"),
  K("admin_token_file", STR, admin_token_file, "", LIVE, 0, 0, 0, NULL,
    "File holding the bearer token POST requests must carry; empty = none"),
  K("async_read_sample_percent", INT, async_read_sample_percent, "100", LIVE, 0, 0, 100, NULL,
    "Share of eligible reads mirrored, 0-100"),
  K("write_divergence_policy", ENUM, write_divergence_policy, "FAIL", LIVE, 0, 0, 0, divergence_names,
    "FAIL (zdm-proxy semantics) or PRIMARY_WINS"),
  K("write_divergence_log", STR, write_divergence_log, "", LIVE, 0, 0, 0, NULL,
    "JSON-lines journal of divergent writes; empty = none"),
  K("write_divergence_log_values", BOOL, write_divergence_log_values, "false", LIVE, 0, 0, 0, NULL,
    "Add bound values in hex to the journal (off for privacy)"),
  K("write_divergence_log_max_bytes", I64, write_divergence_log_max_bytes, "268435456", LIVE, 0, 1, MAXL,
    NULL, "Journal size that triggers rotation to .1"),
  K("schema_agreement_wait_ms", INT, schema_agreement_wait_ms, "10000", LIVE, 0, 0, MAXI, NULL,
    "Hold of schema-changing responses until agreement; 0 = no hold"),
  K("client_handshake_timeout_ms", INT, client_handshake_timeout_ms, "30000", LIVE, 0, 1, MAXI, NULL,
    "A client not READY within this is closed"),
  K("shutdown_drain_timeout_ms", INT, shutdown_drain_timeout_ms, "15000", LIVE, 0, 0, MAXI, NULL,
    "Longest drain on SIGTERM"),
  K("backpressure_high_water_bytes", I64, backpressure_high_water_bytes, "4194304", LIVE, 0, 1, MAXL, NULL,
    "Per-connection output high watermark; low = half"),
  K("backend_pool_max_connections_per_node", INT, backend_pool_max_connections_per_node, "4", LIVE, 0, 1,
    MAXI, NULL, "Most pool connections per node, per worker and pool key"),
  K("backend_pool_idle_timeout_ms", INT, backend_pool_idle_timeout_ms, "300000", LIVE, 0, 0, MAXI, NULL,
    "Idle pool connections beyond the first close after this"),
  K("auth_cache_ttl_ms", INT, auth_cache_ttl_ms, "30000", LIVE, 0, 0, MAXI, NULL,
    "Lifetime of a verified client identity; 0 = verify every login"),
  K("proxy_tls_allow_plaintext", BOOL, proxy_tls_allow_plaintext, "false", NEW, 0, 0, 0, NULL,
    "With client TLS on, also accept plaintext CQL on the same port"),
  K("enable_protocol_v2", BOOL, enable_protocol_v2, "false", RESTART, 0, 0, 0, NULL,
    "Accept protocol v2"),
};

const size_t tdm__conf_nkeys = TDM_ARRAY_SIZE(tdm__conf_keys);

_Static_assert(TDM_ARRAY_SIZE(tdm__conf_keys) <= TDM_CONF_KEY_MAX, "raise TDM_CONF_KEY_MAX");
/* Enum fields are written through an int: every enum used in the table must be int-sized. */
_Static_assert(sizeof(tdm_conf_cluster_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tdm_conf_read_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tdm_conf_log_level_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tdm_conf_log_format_t) == sizeof(int), "enum size");
_Static_assert(sizeof(tdm_conf_divergence_t) == sizeof(int), "enum size");
