/* The process (main thread): loads the configuration, starts the workers and both control connections,
 * owns the main loop (signals, inbox replies, admin HTTP), publishes configuration epochs and topology
 * snapshots to the workers by inbox message, opens the client listeners once both clusters have been
 * reached, reloads on SIGHUP / POST /api/v1/reload and drains on SIGTERM. See docs/internals-instance.md.
 *
 * The data plane (frontend + backend, on the workers) and the control plane (control connections, on
 * the main loop) are reached through a table of entry points, tdm_instance_plug_t, that main.c fills
 * with the real functions. A part left NULL stays off, which lets tests drive the instance with fakes
 * and lets the daemon link before every module exists. */
#ifndef TANDEM_CORE_INSTANCE_H
#define TANDEM_CORE_INSTANCE_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/backend/backend.h>
#include <tandem/backend/control.h>
#include <tandem/conf/conf.h>
#include <tandem/core/proxy.h>
#include <tandem/obs/health.h>
#include <tandem/route/route.h>

typedef struct tdm_instance_plug_s {
  /* Data plane, called on each worker thread. All or none of the frontend entries; same for backend. */
  int (*frontend_start)(tdm_proxy_worker_t *pw);  /* opens this worker's client listener */
  void (*frontend_drain)(tdm_proxy_worker_t *pw); /* SIGTERM */
  void (*frontend_stop)(tdm_proxy_worker_t *pw);  /* closes the listener and every client */
  void (*frontend_broadcast_event)(tdm_proxy_worker_t *pw, const char *type, const uint8_t *body, size_t len);
  int (*backend_new)(void *loop, tdm_buf_pool_t *pool, tdm_backend_t **out);
  void (*backend_close)(tdm_backend_t *be);
  void (*backend_set_conf)(tdm_backend_t *be, tdm_conf_t *conf);
  void (*backend_set_topology)(tdm_backend_t *be, tdm_topology_t *topology);
  void (*backend_node_stats)(const tdm_backend_t *be, int cluster, size_t node, tdm_backend_node_stats_t *out);
  /* Optional data-plane extras (worker thread); each may be NULL. */
  uint16_t (*frontend_port)(const tdm_proxy_worker_t *pw);                  /* bound client port, for logs */
  uint64_t (*backend_late_responses)(const tdm_backend_t *be, int cluster); /* proxy_late_responses_total */
  uint64_t (*backend_failed_connections)(const tdm_backend_t *be, int cluster, bool async); /* failed connects */
  void (*route_set_schema_hook)(tdm_proxy_worker_t *pw, const tdm_route_schema_hook_t *hook); /* §5.3 hold */
  void (*route_worker_close)(tdm_proxy_worker_t *pw);                       /* at worker stop */
  void (*backend_set_tls)(tdm_backend_t *be, const tdm_tls_set_t *tls);     /* at init and each reload */
  /* Control plane, called on the main loop. All or none of these four. */
  int (*control_new)(void *loop, int cluster, tdm_conf_t *conf, const tdm_control_callbacks_t *cb,
                     tdm_control_t **out);
  void (*control_start)(tdm_control_t *c);
  void (*control_set_conf)(tdm_control_t *c, tdm_conf_t *conf);
  void (*control_close)(tdm_control_t *c);
  /* Optional: the TLS contexts for the next connection attempts (before start and on each reload). */
  void (*control_set_tls)(tdm_control_t *c, const tdm_tls_set_t *tls);
  /* Optional: a version a node refused during a client handshake on some worker (§3, main loop). */
  void (*control_learn_refused_version)(tdm_control_t *c, uint8_t version);
  /* Optional: schema agreement on both clusters for the route module's DDL hold (main loop). */
  void (*control_wait_schema_agreement)(tdm_control_t *c, int wait_ms, void (*cb)(void *arg, bool agreed), void *arg);
} tdm_instance_plug_t;

/* Designated-initializer fragments for main.c: `{ TDM_INSTANCE_PLUG_FRONTEND, TDM_INSTANCE_PLUG_BACKEND,
 * TDM_INSTANCE_PLUG_ROUTE, TDM_INSTANCE_PLUG_CONTROL }` (the caller includes frontend/client.h and
 * route/route.h). */
#define TDM_INSTANCE_PLUG_FRONTEND                                                                        \
  .frontend_start = tdm_frontend_start, .frontend_drain = tdm_frontend_drain,                             \
  .frontend_stop = tdm_frontend_stop, .frontend_broadcast_event = tdm_frontend_broadcast_event,           \
  .frontend_port = tdm_frontend_port
#define TDM_INSTANCE_PLUG_BACKEND                                                                         \
  .backend_new = tdm_backend_new, .backend_close = tdm_backend_close, .backend_set_conf = tdm_backend_set_conf, \
  .backend_set_topology = tdm_backend_set_topology, .backend_node_stats = tdm_backend_node_stats,          \
  .backend_late_responses = tdm_backend_late_responses, .backend_set_tls = tdm_backend_set_tls,          \
  .backend_failed_connections = tdm_backend_failed_connections
#define TDM_INSTANCE_PLUG_ROUTE                                                                           \
  .route_set_schema_hook = tdm_route_set_schema_hook, .route_worker_close = tdm_route_worker_close
#define TDM_INSTANCE_PLUG_CONTROL                                                                         \
  .control_new = tdm_control_new, .control_start = tdm_control_start, .control_set_conf = tdm_control_set_conf, \
  .control_close = tdm_control_close, .control_wait_schema_agreement = tdm_control_wait_schema_agreement, \
  .control_set_tls = tdm_control_set_tls, .control_learn_refused_version = tdm_control_learn_refused_version

typedef struct tdm_instance_options_s {
  const char *config_path;        /* --config; NULL = defaults + environment only */
  char *const *envp;              /* environment to read ZDM_* / TANDEM_* from (copied once: §1.1) */
  const tdm_instance_plug_t *plug; /* entry points; NULL = none (no data or control plane) */
  bool keep_logger;               /* the caller started the logger: do not start or stop it (tests) */
  bool no_signals;                /* do not watch signals (in-process tests drive the instance directly) */
} tdm_instance_options_t;

/* Exit statuses main.c maps results to. */
#define TDM_INSTANCE_EXIT_OK 0     /* drained (or stopped by a second signal) */
#define TDM_INSTANCE_EXIT_FAIL 1   /* start-up failed (configuration, bind, threads) */

/* Loads the configuration (errors in diag, which may be NULL) and starts the logger. No thread, socket
 * or handle exists yet. 0, TDM_ECONF, TDM_ENOMEM or a logger error. */
TDM_MUSTCHECK int tdm_instance_new(const tdm_instance_options_t *opts, tdm_instance_t **out, tdm_conf_diag_t *diag);
/* Starts everything and runs the main loop until the drain ends. 0 after a drain or stop; a negative
 * code when start-up failed (logged). Call once. */
int tdm_instance_run(tdm_instance_t *inst);
/* Frees what run left (call after run returns, or instead of run). Stops the logger unless keep_logger. */
void tdm_instance_free(tdm_instance_t *inst);

/* ---- main loop thread only (tests schedule these with timers on tdm_instance_loop) ---- */

uv_loop_t *tdm_instance_loop(tdm_instance_t *inst);
/* Same as SIGHUP: a reload (coalesced with any already waiting, §1.4). */
void tdm_instance_reload(tdm_instance_t *inst);
/* Same as SIGTERM / SIGINT; a second call stops at once. */
void tdm_instance_shutdown(tdm_instance_t *inst);
tdm_health_status_t tdm_instance_readiness(const tdm_instance_t *inst);
uint64_t tdm_instance_epoch(const tdm_instance_t *inst);
const tdm_conf_t *tdm_instance_conf(const tdm_instance_t *inst);
/* Bound ports of the HTTP listeners (0 when disabled or not started). */
uint16_t tdm_instance_metrics_port(const tdm_instance_t *inst);
uint16_t tdm_instance_admin_port(const tdm_instance_t *inst);
/* Number of worker threads started. */
unsigned tdm_instance_workers(const tdm_instance_t *inst);
/* Whether the client listeners were asked to open (both control connections came up once). */
bool tdm_instance_listening(const tdm_instance_t *inst);
/* Reloads applied and rejected since start. */
void tdm_instance_reload_counts(const tdm_instance_t *inst, uint64_t *applied, uint64_t *rejected);

#endif
