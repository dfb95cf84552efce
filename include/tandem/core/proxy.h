/* The proxy's per-worker state, shared by the frontend (client connections), the route module
 * (requests) and the backend (pools), plus the per-worker counters that feed /metrics. One
 * tdm_proxy_worker_t lives on each worker thread and is touched only by that thread; the instance
 * (main thread) reaches it only through the worker's inbox (core/worker.h). */
#ifndef TANDEM_CORE_PROXY_H
#define TANDEM_CORE_PROXY_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/net/buf.h>
#include <tandem/net/tls.h>
#include <tandem/backend/backend.h>
#include <tandem/backend/topology.h>
#include <tandem/route/prepared.h>
#include <tandem/util/queue.h>

typedef struct tdm_instance_s tdm_instance_t;
struct tdm_worker_s;

/* Latency histogram with the configured bucket bounds (ms); counts are per bucket, not cumulative. */
#define TDM_HIST_MAX_BUCKETS 32
typedef struct tdm_hist_s {
  uint64_t counts[TDM_HIST_MAX_BUCKETS + 1]; /* [i] = observations <= bound i (and > bound i-1); last = +Inf */
  uint64_t count;                            /* observations */
  double sum_ms;                             /* sum of observations, ms */
} tdm_hist_t;

/* Per-worker counters and gauges (style rule 17): the struct, zeroing and summing are generated from
 * this list; obs/metrics maps them to the series of behaviour.md §13.1. X(name) is a uint64 counter or
 * gauge; cluster-indexed ones are arrays [2] (ORIGIN, TARGET). */
#define TDM_PROXY_COUNTERS(X)                                                                             \
  X(client_connections)          /* gauge: open client connections */                                     \
  X(client_refused_max_connections) X(client_refused_draining) X(client_refused_tls)                     \
  X(client_refused_handshake_timeout)                                                                     \
  X(handshakes_ok) X(handshakes_auth_failed) X(handshakes_version_refused) X(handshakes_backend_failed)   \
  X(frames_too_large) X(frames_malformed) X(frames_crc) X(frames_bad_version) X(frames_bad_stream_id)    \
  X(reads_inflight_origin) X(reads_inflight_target) X(writes_inflight) /* gauges */                       \
  X(failed_reads_origin) X(failed_reads_target)                                                           \
  X(failed_writes_origin) X(failed_writes_target) X(failed_writes_both)                                   \
  X(pscache_misses)                                                                                        \
  X(pscache_reprepares_ok_origin) X(pscache_reprepares_ok_target)                                         \
  X(pscache_reprepares_failed_origin) X(pscache_reprepares_failed_target)                                 \
  X(async_reads_sent) X(async_reads_dropped_queue_full) X(async_reads_dropped_no_connection)             \
  X(async_reads_sampled_out) X(async_inflight) X(async_failed)                                            \
  X(late_responses_origin) X(late_responses_target)                                                       \
  X(backpressure_pauses_client) X(backpressure_pauses_backend) X(read_yields)                             \
  X(bytes_client_in) X(bytes_client_out) X(bytes_origin_in) X(bytes_origin_out)                           \
  X(bytes_target_in) X(bytes_target_out) X(bytes_async_in) X(bytes_async_out)                             \
  X(lwt_applied_mismatch) X(schema_waits_agreed) X(schema_waits_timeout)                                  \
  X(divergence_journal_dropped)                                                                            \
  X(failed_connections_origin) X(failed_connections_target) /* backend connects that failed, sync pools */ \
  X(failed_connections_async)    /* backend connects that failed, async-read pools */                     \
  /* architecture.md §6 "copies of a request body", per leg (origin, target, async; route counts them,    \
   * docs/internals/route.md "Body copies"): client bodies handed to the backend (a resend after a        \
   * re-prepare included, tandem's own PREPARE not); buffers built holding one for that leg; and the      \
   * subset forced by an id rewrite or by compression. copies_forced <= copies. */                        \
  X(request_bodies_forwarded_origin) X(request_bodies_forwarded_target) X(request_bodies_forwarded_async)  \
  X(request_body_copies_origin) X(request_body_copies_target) X(request_body_copies_async)               \
  X(request_body_copies_forced_origin) X(request_body_copies_forced_target)                              \
  X(request_body_copies_forced_async)

/* Error classes of {c}_requests_failed_total{error} (§13.1). */
#define TDM_REQUEST_ERRORS(X)                                                                              \
  X(client_timeout) X(read_timeout) X(read_failure) X(write_timeout) X(write_failure) X(overloaded)       \
  X(unavailable) X(unprepared) X(other)

typedef enum tdm_request_error_e {
#define TDM_REQERR_ENUM(name) TDM_REQERR_##name,
  TDM_REQUEST_ERRORS(TDM_REQERR_ENUM)
#undef TDM_REQERR_ENUM
  TDM_REQERR_MAX
} tdm_request_error_t;

typedef struct tdm_proxy_stats_s {
#define TDM_PROXY_COUNTER_FIELD(name) uint64_t name;
  TDM_PROXY_COUNTERS(TDM_PROXY_COUNTER_FIELD)
#undef TDM_PROXY_COUNTER_FIELD
  uint64_t requests_failed[3][TDM_REQERR_MAX]; /* [origin, target, async][error class] */
  uint64_t client_versions[8];                 /* open clients by version: v2 v3 v4 v5 dse1 dse2 */
  tdm_hist_t proxy_latency[3];                 /* proxy_request_duration: reads_origin, reads_target, writes */
  tdm_hist_t cluster_latency[3][2];            /* {origin,target,async}_request_duration: [reads, writes] */
  uint64_t write_divergence[3][2];             /* write_divergence_total: [write, counter, lwt][failed_on origin, target] */
  tdm_hist_t pool_queue_wait;                  /* pool_queue_wait_seconds: legs that waited in a pool queue for a
                                                  stream id or a READY connection, from hand-over to write (or
                                                  to abandonment when never written) */
} tdm_proxy_stats_t;

/* Bucket bounds each histogram must be observed with (restart-class keys, so they never change):
 * proxy_latency[0] and [2] and pool_queue_wait: metrics_origin_latency_buckets_ms; proxy_latency[1]:
 * metrics_target_latency_buckets_ms; cluster_latency[c]: the bucket key of cluster c (origin, target,
 * async_read). obs/metrics renders them with the same bounds. */

/* The per-worker proxy state. */
typedef struct tdm_proxy_worker_s {
  tdm_instance_t *instance;          /* the process (main thread owns it) */
  struct tdm_worker_s *worker;       /* thread + loop + inbox */
  uv_loop_t *loop;                   /* this worker's loop */
  unsigned index;                    /* worker number, 0-based */
  tdm_conf_t *conf;                  /* current epoch (own reference); a request keeps the epoch it arrived under */
  tdm_tls_set_t tls;                 /* TLS contexts of the current epoch (own references; a connection keeps
                                        the context it was opened with); zeroed: no TLS anywhere */
  tdm_topology_t *topology[2];       /* current snapshots by cluster (own references), NULL until known */
  tdm_backend_t *backend;            /* this worker's pools to both clusters */
  tdm_prepared_registry_t *registry; /* shared by all workers */
  tdm_buf_pool_t buf_pool;           /* this worker's buffer blocks */
  tdm_list_t clients;                /* open client connections (frontend) */
  bool draining;                     /* SIGTERM: new requests get OVERLOADED */
  struct tdm_frontend_s *frontend;   /* frontend state (listener, deadlines, auth cache); src/frontend owns it */
  tdm_proxy_stats_t stats;           /* this worker's counters */
  struct tdm_route_worker_s *route;  /* route module's state (request freelist, async cap); NULL until the
                                        first dispatch, freed by tdm_route_worker_close() */
  struct tdm_journal_s *journal;     /* divergence journal (route/journal.h; thread-safe submit), shared by
                                        all workers, owned by the instance; NULL when there is none */
  /* Set by the instance (NULL in tests): a node refused `version` during a client handshake on this
   * worker; forwards it to that cluster's control connection, whose next snapshot carries it to every
   * worker (§3). Called on the worker thread; never blocks. */
  void (*version_refused)(struct tdm_proxy_worker_s *pw, int cluster, uint8_t version);
} tdm_proxy_worker_t;

/* Sums b into a (for aggregation on the main thread); gauges are summed too. */
void tdm_proxy_stats_add(tdm_proxy_stats_t *a, const tdm_proxy_stats_t *b);
/* Records one observation (ms) with the epoch's bucket bounds. */
void tdm_hist_observe(tdm_hist_t *h, const tdm_conf_doubles_t *bounds, double ms);

#endif
