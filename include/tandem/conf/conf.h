/* Configuration (behaviour.md §1): one descriptor per key, an immutable refcounted snapshot built from
 * defaults < YAML file < ZDM_<KEY> < TANDEM_<KEY>, validated whole, and the helpers the core needs on reload:
 * diff with reload classes, value rendering with secrets redacted, key iteration and `--check`.
 * A snapshot is never modified after tdm_conf_load() returns it, except `epoch`, which its owner sets
 * before publishing it. */
#ifndef TANDEM_CONF_CONF_H
#define TANDEM_CONF_CONF_H

#include <stdatomic.h>
#include <tandem/common.h>

/* ---- enumerated values ---- */

typedef enum tdm_conf_cluster_e {
  TDM_CONF_ORIGIN = 0, /* the cluster being left */
  TDM_CONF_TARGET = 1, /* the cluster being migrated to */
  TDM_CONF_CLUSTER_MAX /* sentinel: number of clusters */
} tdm_conf_cluster_t;

typedef enum tdm_conf_read_mode_e {
  TDM_CONF_READ_PRIMARY_ONLY = 0,            /* reads go to the primary only */
  TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY = 1, /* reads also mirrored to the secondary (§12) */
} tdm_conf_read_mode_t;

typedef enum tdm_conf_log_level_e {
  TDM_CONF_LOG_PANIC = 0, /* zdm-proxy's levels, most severe first */
  TDM_CONF_LOG_FATAL,     /* fatal errors only */
  TDM_CONF_LOG_ERROR,     /* errors */
  TDM_CONF_LOG_WARN,      /* warnings (also spelt WARNING) */
  TDM_CONF_LOG_INFO,      /* the default */
  TDM_CONF_LOG_DEBUG,     /* debugging detail */
  TDM_CONF_LOG_TRACE,     /* everything */
} tdm_conf_log_level_t;

typedef enum tdm_conf_log_format_e {
  TDM_CONF_LOG_TEXT = 0, /* human-readable lines */
  TDM_CONF_LOG_JSON = 1, /* one JSON object per line */
} tdm_conf_log_format_t;

typedef enum tdm_conf_divergence_e {
  TDM_CONF_DIVERGENCE_FAIL = 0,         /* zdm-proxy semantics: a one-sided failure fails the write */
  TDM_CONF_DIVERGENCE_PRIMARY_WINS = 1, /* the primary's result is returned, the divergence journaled */
} tdm_conf_divergence_t;

/* When a changed key takes effect on reload (§1.1 column R). */
typedef enum tdm_conf_reload_e {
  TDM_CONF_LIVE = 0,    /* requests dispatched after the new epoch is published */
  TDM_CONF_NEW = 1,     /* connections opened after the new epoch is published */
  TDM_CONF_RESTART = 2, /* not applied on reload: reported as pending, old value kept */
} tdm_conf_reload_t;

/* Protocol versions as bits of blocked_protocol_versions. */
#define TDM_CONF_PV_V2     (1u << 0) /* 0x02 */
#define TDM_CONF_PV_V3     (1u << 1) /* 0x03 */
#define TDM_CONF_PV_V4     (1u << 2) /* 0x04 */
#define TDM_CONF_PV_V5     (1u << 3) /* 0x05 */
#define TDM_CONF_PV_DSE_V1 (1u << 4) /* 0x41 */
#define TDM_CONF_PV_DSE_V2 (1u << 5) /* 0x42 */

/* ---- composite values ---- */

typedef struct tdm_conf_hostport_s {
  char *host;    /* host name or IP literal (IPv6 without brackets); never NULL */
  uint16_t port; /* the entry's port, else the key's default port (resolved at load) */
  bool port_set; /* the entry carried its own port (`host:port`) */
} tdm_conf_hostport_t;

typedef struct tdm_conf_hostports_s {
  tdm_conf_hostport_t *v; /* entries in configured order; NULL when n == 0 */
  size_t n;               /* number of entries */
} tdm_conf_hostports_t;

typedef struct tdm_conf_doubles_s {
  double *v; /* values in configured order (ascending for buckets); NULL when n == 0 */
  size_t n;  /* number of values */
} tdm_conf_doubles_t;

/* The per-cluster keys `{c}_*` of §1.2 and §1.3. Strings are never NULL in a loaded snapshot. */
typedef struct tdm_conf_backend_s {
  tdm_conf_hostports_t contact_points; /* {c}_contact_points: host or host:port entries */
  int port;                            /* {c}_port: port of entries without their own */
  char *secure_connect_bundle_path;    /* {c}_secure_connect_bundle_path (refused until supported) */
  char *local_datacenter;              /* {c}_local_datacenter; "" = DC of the first node reached */
  char *username;                      /* {c}_username; "" = none */
  char *password;                      /* {c}_password (secret) */
  int connection_timeout_ms;           /* {c}_connection_timeout_ms: budget to open one connection */
  char *tls_server_ca_path;            /* {c}_tls_server_ca_path; "" = no TLS */
  char *tls_client_cert_path;          /* {c}_tls_client_cert_path; with the key: mTLS */
  char *tls_client_key_path;           /* {c}_tls_client_key_path */
  bool enable_host_assignment;         /* {c}_enable_host_assignment */
  bool tls_verify_hostname;            /* {c}_tls_verify_hostname (tandem-only) */
  char *tls_server_name;               /* {c}_tls_server_name: SNI / name to verify (tandem-only) */
} tdm_conf_backend_t;

/* zdm-proxy tuning keys: accepted and stored for compatibility, without effect (§1.2). */
typedef struct tdm_conf_compat_s {
  int request_write_queue_size_frames;         /* no effect */
  int request_write_buffer_size_bytes;         /* no effect */
  int request_read_buffer_size_bytes;          /* no effect */
  int response_write_queue_size_frames;        /* no effect */
  int response_write_buffer_size_bytes;        /* no effect */
  int response_read_buffer_size_bytes;         /* no effect */
  int request_response_max_workers;            /* no effect */
  int write_max_workers;                       /* no effect */
  int read_max_workers;                        /* no effect */
  int listener_max_workers;                    /* no effect */
  int event_queue_size_frames;                 /* no effect */
  int async_connector_write_buffer_size_bytes; /* no effect */
  bool origin_prefer_ip_from_system_local;     /* no effect: tandem uses the native address of each node */
  bool target_prefer_ip_from_system_local;     /* no effect: as for ORIGIN */
  int proxy_max_prepared_statement_cache_size; /* no effect: prepared_cache_max_entries bounds the registry */
} tdm_conf_compat_t;

/* Where a key's value came from. */
typedef enum tdm_conf_source_e {
  TDM_CONF_SRC_DEFAULT = 0, /* built-in default from the key table */
  TDM_CONF_SRC_FILE,        /* the YAML file, at line:column */
  TDM_CONF_SRC_ENV_ZDM,     /* a ZDM_<KEY> variable */
  TDM_CONF_SRC_ENV_TANDEM,  /* a TANDEM_<KEY> variable */
} tdm_conf_source_t;

typedef struct tdm_conf_origin_s {
  uint8_t source; /* tdm_conf_source_t */
  uint32_t line;  /* 1-based line of the key in the file (TDM_CONF_SRC_FILE), else 0 */
  uint32_t col;   /* 1-based column of the key in the file, else 0 */
} tdm_conf_origin_t;

#define TDM_CONF_KEY_MAX 128 /* capacity of per-key arrays; the table is checked against it */

/* One immutable configuration snapshot (an epoch). Shared read-only by every thread through
 * tdm_conf_ref()/tdm_conf_unref(). A zeroed snapshot is inert (NULL strings read as ""). */
typedef struct tdm_conf_s {
  atomic_uint refs; /* references held; the snapshot is freed when the last one goes */
  uint64_t epoch;   /* set by the owner (the core) before publishing; 0 from tdm_conf_load() */
  char *path;       /* file it was loaded from, NULL for environment + defaults only */

  /* §1.2 zdm-proxy keys */
  tdm_conf_cluster_t primary_cluster;          /* serves synchronous reads (live) */
  tdm_conf_read_mode_t read_mode;              /* PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY (live) */
  tdm_conf_cluster_t system_queries_mode;      /* cluster serving system reads (restart) */
  bool forward_client_credentials_to_origin;   /* §2.1 credential table (new) */
  bool replace_cql_functions;                  /* always false: true is refused (restart) */
  int async_handshake_timeout_ms;              /* async-read connection handshake timeout (live) */
  int async_connector_write_queue_size_frames; /* per-worker cap on mirrored reads (live) */
  tdm_conf_log_level_t log_level;              /* log threshold (live) */
  int control_conn_max_protocol_version;       /* version byte first probed: 2..5, 0x41, 0x42 */
  unsigned blocked_protocol_versions;          /* TDM_CONF_PV_* bits of refused client versions */
  bool tracing_enabled;                        /* add a request id to payloads (live) */
  int tracing_rate_limit;                      /* tracing rate limit, 0 = none (live) */
  char *tracing_request_id_key;                /* custom payload key of the request id (live) */
  int proxy_topology_index;                    /* this instance's index in the address list */
  tdm_conf_hostports_t proxy_topology_addresses; /* instances; ports default to proxy_listen_port */
  int proxy_topology_num_tokens;               /* virtual tokens per instance, 1..256 */
  tdm_conf_backend_t cluster[TDM_CONF_CLUSTER_MAX]; /* {c}_* keys, indexed by tdm_conf_cluster_t */
  char *proxy_listen_address;                  /* client listener address (restart) */
  int proxy_listen_port;                       /* client listener port, 1..65535 (restart) */
  int proxy_request_timeout_ms;                /* per-request timeout (live) */
  int proxy_max_client_connections;            /* client connection limit (live) */
  int proxy_max_stream_ids;                    /* stream ids per backend connection, 1..32768 (new) */
  char *proxy_tls_ca_path;                     /* client-facing TLS CA (client certificates) */
  char *proxy_tls_cert_path;                   /* client-facing TLS certificate */
  char *proxy_tls_key_path;                    /* client-facing TLS private key */
  bool proxy_tls_require_client_auth;          /* demand client certificates (new) */
  bool metrics_enabled;                        /* HTTP metrics listener on/off (restart) */
  char *metrics_address;                       /* metrics listener address (restart) */
  int metrics_port;                            /* metrics listener port (restart) */
  char *metrics_prefix;                        /* Prometheus series prefix (restart) */
  tdm_conf_doubles_t metrics_origin_latency_buckets_ms;     /* histogram buckets, ms, ascending */
  tdm_conf_doubles_t metrics_target_latency_buckets_ms;     /* histogram buckets, ms, ascending */
  tdm_conf_doubles_t metrics_async_read_latency_buckets_ms; /* histogram buckets, ms, ascending */
  int heartbeat_interval_ms;                   /* control heartbeat / pool idle threshold (live) */
  int heartbeat_retry_interval_min_ms;         /* reconnect backoff floor (live) */
  int heartbeat_retry_interval_max_ms;         /* reconnect backoff ceiling (live) */
  double heartbeat_retry_backoff_factor;       /* reconnect backoff multiplier, >= 1 (live) */
  int heartbeat_failure_threshold;             /* control failures before readiness is DOWN (live) */
  tdm_conf_compat_t compat;                    /* zdm-proxy tuning keys without effect */

  /* §1.3 tandem-only keys */
  int workers;                          /* worker threads, 0 = online CPUs (restart) */
  int max_frame_bytes;                  /* largest client body / v5 envelope (live) */
  int prepared_cache_max_entries;       /* prepared-statement registry bound (live) */
  tdm_conf_log_format_t log_format;     /* text or json (live) */
  char *log_file;                       /* "" = stderr (restart) */
  char *admin_address;                  /* admin listener address (restart) */
  int admin_port;                       /* admin listener port, 0 = disabled (restart) */
  char *admin_token_file;               /* bearer token file for POST, "" = none (live) */
  int async_read_sample_percent;        /* share of eligible reads mirrored, 0..100 (live) */
  tdm_conf_divergence_t write_divergence_policy; /* FAIL or PRIMARY_WINS (live) */
  char *write_divergence_log;           /* JSON-lines journal path, "" = none (live) */
  bool write_divergence_log_values;     /* journal bound values in hex (live) */
  int64_t write_divergence_log_max_bytes; /* journal rotation size (live) */
  int schema_agreement_wait_ms;         /* DDL response hold, 0 = none (live) */
  int client_handshake_timeout_ms;      /* a client not READY within this is closed (live) */
  int shutdown_drain_timeout_ms;        /* longest drain on SIGTERM (live) */
  int64_t backpressure_high_water_bytes; /* per-connection output high watermark (live) */
  int backend_pool_max_connections_per_node; /* per worker and pool key (live) */
  int backend_pool_idle_timeout_ms;     /* idle pool connections beyond the first close (live) */
  int auth_cache_ttl_ms;                /* verified identity lifetime, 0 = always verify (live) */
  bool proxy_tls_allow_plaintext;       /* with client TLS, also accept plaintext (new) */
  bool enable_protocol_v2;              /* accept protocol v2 (restart) */

  tdm_conf_origin_t origin[TDM_CONF_KEY_MAX]; /* per key index: where its value came from */
} tdm_conf_t;

/* ---- the key table ---- */

typedef enum tdm_conf_type_e {
  TDM_CONF_T_STR = 0,  /* char *, never NULL after load */
  TDM_CONF_T_BOOL,     /* bool: true/false, yes/no, on/off, 1/0, t/f, any case */
  TDM_CONF_T_INT,      /* int, in [lo, hi] */
  TDM_CONF_T_I64,      /* int64_t, in [lo, hi] */
  TDM_CONF_T_DOUBLE,   /* double, in [lo, hi] */
  TDM_CONF_T_ENUM,     /* a C enum (int-sized), names from `enums`, any case */
  TDM_CONF_T_VERSION,  /* int protocol version byte: 2..5, 0x41, 0x42 */
  TDM_CONF_T_VERSIONS, /* unsigned TDM_CONF_PV_* bitmask, comma list or sequence */
  TDM_CONF_T_HOSTS,    /* tdm_conf_hostports_t of host[:port], comma list or sequence */
  TDM_CONF_T_ADDRS,    /* tdm_conf_hostports_t of ip[:port] (IP literals only) */
  TDM_CONF_T_BUCKETS,  /* tdm_conf_doubles_t: positive, strictly ascending, at least one */
  TDM_CONF_T_MAX       /* sentinel */
} tdm_conf_type_t;

#define TDM_CONF_F_SECRET    (1u << 0) /* value never shown: rendered `***`, omitted from errors */
#define TDM_CONF_F_ZDM       (1u << 1) /* zdm-proxy key: also read from ZDM_<KEY> */
#define TDM_CONF_F_NO_EFFECT (1u << 2) /* compat-only: accepted, ignored, one WARN when set */

typedef struct tdm_conf_enum_s {
  const char *name; /* accepted spelling; the first entry of each value is the canonical one */
  int value;        /* enum value */
} tdm_conf_enum_t;

typedef struct tdm_conf_key_s {
  const char *name;             /* YAML key (lower case); env name is the prefix + upper case */
  tdm_conf_type_t type;         /* value type: picks parser, renderer and destructor */
  size_t offset;                /* offsetof the field in tdm_conf_t */
  const char *defval;           /* default, as text parsed by the type's parser */
  tdm_conf_reload_t reload;     /* reload class */
  unsigned flags;               /* TDM_CONF_F_* */
  int64_t lo;                   /* inclusive minimum (INT, I64, DOUBLE) */
  int64_t hi;                   /* inclusive maximum (INT, I64, DOUBLE) */
  const tdm_conf_enum_t *enums; /* ENUM spellings, NULL-name terminated; else NULL */
  const char *help;             /* one line for docs and the status API */
} tdm_conf_key_t;

/* Number of keys, the key at index i (< count), or the key called `name` (exact, NULL if none). */
size_t tdm_conf_key_count(void);
const tdm_conf_key_t *tdm_conf_key_at(size_t i);
const tdm_conf_key_t *tdm_conf_key_find(const char *name);
size_t tdm_conf_key_index(const tdm_conf_key_t *key);
/* The known key closest to `name` by edit distance (case-insensitive), or NULL if none is close. */
const tdm_conf_key_t *tdm_conf_key_suggest(const char *name);
/* "live", "new", "restart". */
const char *tdm_conf_reload_name(tdm_conf_reload_t reload);

/* ---- loading ---- */

/* What a load said. Zero it before the first use; tdm_conf_diag_free() releases and re-zeroes it. */
typedef struct tdm_conf_diag_s {
  char *message;    /* every error, one per line, no trailing newline; NULL when the load succeeded */
  char **errors;    /* the errors, each `where: what` */
  size_t nerrors;   /* number of errors */
  char **warnings;  /* warnings for the core to log (compat keys, env overrides, insecure TLS...) */
  size_t nwarnings; /* number of warnings */
} tdm_conf_diag_t;

void tdm_conf_diag_free(tdm_conf_diag_t *diag);

/* Builds a validated snapshot from defaults < file `path` (NULL: none) < ZDM_<KEY> < TANDEM_<KEY> taken
 * from `envp` (NULL-terminated "NAME=value" strings, NULL: none). On success *out holds one reference and
 * returns 0; otherwise TDM_ECONF (diag->message says why) or TDM_ENOMEM, and *out is NULL. `diag` may be
 * NULL. Messages never contain the value of a secret key. */
TDM_MUSTCHECK int tdm_conf_load(const char *path, char *const *envp, tdm_conf_t **out,
                                tdm_conf_diag_t *diag);
/* The same from an in-memory YAML document; `name` stands for the file name in messages and `path`. */
TDM_MUSTCHECK int tdm_conf_load_buffer(const char *name, const char *data, size_t len, char *const *envp,
                                       tdm_conf_t **out, tdm_conf_diag_t *diag);
/* A snapshot holding the defaults only, not validated (contact points are empty): for tests. */
TDM_MUSTCHECK int tdm_conf_defaults(tdm_conf_t **out);

tdm_conf_t *tdm_conf_ref(tdm_conf_t *conf);
void tdm_conf_unref(tdm_conf_t *conf); /* NULL is ignored */

/* `tandem --check`: loads `path` with the process environment and prints each warning as
 * `warning: ...`, then either `OK` or each error, to `out`. Returns 0 when valid, else -1 (an exit
 * status for main.c, by request of its owner, rather than a TDM_E* code). */
int tdm_conf_check_file(const char *path, FILE *out);
/* The same with an explicit environment (tests). */
int tdm_conf_check_file_env(const char *path, char *const *envp, FILE *out);

/* ---- inspection ---- */

/* Renders the value of `key` as configuration text (lists comma-joined; a non-empty secret as `***`)
 * into buf (always NUL-terminated when len > 0). Returns 0, TDM_EOVERFLOW when truncated, TDM_ENOMEM. */
int tdm_conf_render(const tdm_conf_t *conf, const tdm_conf_key_t *key, char *buf, size_t len);
/* The same by key name; TDM_ENOTFOUND for an unknown name. */
int tdm_conf_render_value(const tdm_conf_t *conf, const char *name, char *buf, size_t len);

/* Called once per key whose value differs, in table order, with both values rendered (secrets
 * `***`). The texts live until the callback returns. */
typedef void (*tdm_conf_diff_cb)(const tdm_conf_key_t *key, const char *old_text, const char *new_text,
                                 void *arg);
/* Compares two snapshots key by key. Returns the number of changed keys, or TDM_ENOMEM. */
int tdm_conf_diff(const tdm_conf_t *old_conf, const tdm_conf_t *new_conf, tdm_conf_diff_cb cb, void *arg);

/* The TDM_CONF_PV_* bit of a protocol version byte, 0 for a version tandem does not know. */
unsigned tdm_conf_version_bit(int version);
/* Whether client protocol version `version` is in blocked_protocol_versions. */
bool tdm_conf_version_blocked(const tdm_conf_t *conf, int version);

#endif
