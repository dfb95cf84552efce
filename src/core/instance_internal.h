/* Internals shared by the instance's files (instance.c: lifecycle, start-up, control callbacks;
 * instance_worker.c: worker hooks and broadcasts; instance_stats.c: aggregation by message;
 * instance_reload.c: epochs; instance_drain.c: drain and stop; instance_http.c: admin and metrics
 * endpoints; instance_events.c: events to clients). Named for the module, not `internal.h`, because
 * src/core holds other modules (worker, inbox, signals) with their own owners. Never included outside
 * src/core. Everything here runs on the main loop unless a comment says "worker thread". */
#ifndef TANDEM_CORE_INSTANCE_INTERNAL_H
#define TANDEM_CORE_INSTANCE_INTERNAL_H

#include <tandem/core/inbox.h>
#include <tandem/core/instance.h>
#include <tandem/core/signals.h>
#include <tandem/core/worker.h>
#include <tandem/obs/admin.h>
#include <tandem/obs/health.h>
#include <tandem/obs/metrics.h>
#include <tandem/route/journal.h>
#include <tandem/route/prepared.h>
#include <tandem/util/queue.h>

#define TDM__INSTANCE_BUF_BLOCK (64 * 1024) /* worker buffer pool block size */
#define TDM__INSTANCE_BUF_FREE 256          /* blocks each worker keeps for reuse */
#define TDM__INSTANCE_DRAIN_POLL_MS 50      /* how often a drain counts the open client connections */
#define TDM__INSTANCE_SETTLE_MS 2000        /* longest wait for the workers' data planes to close at stop */

/* One node's gauges as one worker saw them (written on the worker thread, read on the main loop after
 * the worker's STATS_REQ reply arrived: the inbox lock orders the two). */
typedef struct tdm__wnode_s {
  char name[TDM_METRICS_NODE_NAME_MAX]; /* "host:port" */
  tdm_backend_node_stats_t g;           /* gauges */
} tdm__wnode_t;

typedef struct tdm__wsnap_s {
  tdm_proxy_stats_t stats;   /* copy of the worker's counters */
  uint64_t clients;          /* open client connections (length of pw->clients) */
  tdm__wnode_t *nodes[2];    /* per cluster, malloc'd by the worker, freed by the main loop */
  size_t n_nodes[2];         /* entries in nodes */
} tdm__wsnap_t;

/* One worker thread and the proxy state it owns. The array of slots never moves once allocated. */
typedef struct tdm__wslot_s {
  tdm_worker_t w;            /* thread + loop + inbox (w.data = &pw) */
  tdm_proxy_worker_t pw;     /* proxy state, worker thread only after start */
  tdm__wsnap_t snap;         /* last STATS_REQ copy (see tdm__wsnap_t) */
  bool started;              /* main loop: tdm_worker_start succeeded */
  bool frontend_on;          /* worker thread: tdm_frontend_start succeeded */
  bool plane_closed;         /* worker thread: frontend, route and backend closed (shutdown) */
  uint16_t client_port;      /* worker thread, before its listener-start reply: the bound client port */
  tdm_route_schema_hook_t schema_hook; /* installed in the route module (instance_schema.c) */
  tdm_list_t holds;          /* worker thread: schema holds waiting for the main loop */
} tdm__wslot_t;

/* A reload or stats waiter; `result` of a reload: 1 applied, 0 rejected, < 0 aborted (shutting down). */
typedef void (*tdm__reload_cb)(tdm_instance_t *inst, void *arg, int result);
typedef void (*tdm__stats_cb)(tdm_instance_t *inst, void *arg, bool ok);
typedef struct tdm__waiter_s {
  tdm_list_t link;            /* on one of the instance's waiter lists */
  tdm__reload_cb reload_cb;   /* reload waiters */
  tdm__stats_cb stats_cb;     /* stats waiters */
  void *arg;                  /* callback argument */
} tdm__waiter_t;

typedef enum tdm__reload_state_e {
  TDM__RELOAD_IDLE = 0,   /* nothing scheduled */
  TDM__RELOAD_SCHEDULED,  /* a zero timer will run it: requests now join it */
  TDM__RELOAD_RUNNING,    /* published, waiting for every worker's ack: requests now cause one more */
} tdm__reload_state_t;

struct tdm_instance_s {
  uv_loop_t loop;                  /* the main loop */
  bool loop_inited;                /* uv_loop_init succeeded */
  tdm_inbox_t inbox;               /* replies from workers (CALL messages) */
  bool inbox_on;                   /* inbox initialised and not closed */
  tdm_signals_t signals;           /* HUP, USR1, TERM, INT */
  bool signals_on;                 /* watchers started and not closed */
  tdm_instance_plug_t plug;        /* entry points (a copy) */
  bool has_frontend;               /* plug.frontend_* set */
  bool has_backend;                /* plug.backend_* set */
  bool has_control;                /* plug.control_* set */
  char *config_path;               /* --config, NULL if none */
  char **envp;                     /* environment snapshot taken at start (NULL-terminated) */
  bool keep_logger;                /* the logger belongs to the caller */
  bool logger_on;                  /* we started the logger */
  bool no_signals;                 /* options.no_signals */
  tdm_conf_t *conf;                /* current epoch (one reference) */
  tdm_tls_set_t tls;               /* TLS contexts built from conf (own references; workers hold copies) */
  tdm_prepared_registry_t *registry; /* shared by workers */
  tdm_journal_t *journal;          /* divergence journal (its own writer thread), shared by workers */
  tdm__wslot_t *workers;           /* nworkers slots */
  unsigned nworkers;               /* slots allocated */
  tdm_worker_t **wptrs;            /* &workers[i].w for the started ones, in order */
  unsigned nstarted;               /* workers started */
  tdm_control_t *control[2];       /* control connections, NULL until created */
  tdm_topology_t *topology[2];     /* latest snapshot per cluster (own reference) */
  tdm_health_t health;             /* readiness inputs (threshold and epoch refreshed when read) */
  char *control_error[2];          /* last control connection error text */
  bool ever_ready;                 /* the first UP happened */
  bool listen_requested;           /* frontend_start sent to the workers */
  bool ready_notified;             /* systemd READY=1 sent */
  /* reload */
  tdm__reload_state_t reload_state; /* see tdm__reload_state_t */
  bool reload_again;               /* a request arrived while RUNNING */
  uv_timer_t reload_timer;         /* zero-delay timer that runs a scheduled reload */
  tdm_list_t reload_next;          /* waiters of the next reload to run */
  tdm_list_t reload_cur;           /* waiters of the running reload */
  tdm_conf_t *reload_conf;         /* RUNNING: the epoch being published */
  uint64_t reloads_applied;        /* counters for config_reloads_total */
  uint64_t reloads_rejected;
  int64_t last_reload_ms;          /* wall clock of the last attempt, 0 = none */
  bool last_reload_ok;             /* its result */
  char *last_reload_error;         /* its error text when rejected */
  char **pending_restart;          /* restart-class keys changed in the file, not applied */
  size_t n_pending_restart;        /* entries */
  /* stats */
  bool stats_busy;                 /* a STATS_REQ round is out */
  tdm_list_t stats_waiters;        /* waiters of the round in flight (or about to start) */
  tdm_proxy_stats_t agg;           /* last round: counters summed over workers */
  tdm_metrics_node_t *agg_nodes;   /* last round: node gauges summed over workers */
  size_t n_agg_nodes;              /* entries in agg_nodes */
  /* drain */
  bool draining;                   /* drain begun */
  bool closing;                    /* tdm__instance_finish ran: everything is being closed */
  uv_timer_t drain_timer;          /* shutdown_drain_timeout_ms */
  uv_timer_t drain_poll;           /* counts open clients every TDM__INSTANCE_DRAIN_POLL_MS */
  bool timers_on;                  /* the three timers were initialised */
  uint64_t settle_deadline;        /* closing: when phase 2 starts even if workers still close handles */
  int result;                      /* what tdm_instance_run returns */
  /* HTTP */
  tdm_admin_t *metrics_http;       /* metrics listener, NULL when disabled */
  tdm_admin_t *admin_http;         /* admin listener, NULL when disabled */
  uint16_t metrics_port;           /* bound ports (kept after close, for the accessors) */
  uint16_t admin_port;
};

/* instance_worker.c */
extern const tdm_worker_hooks_t tdm__instance_worker_hooks;
/* Runs fn(pw, arg, &result) on every started worker, then done(inst, arg, first error or 0) on the main
 * loop once each worker answered (a worker that is gone counts with TDM_ECLOSED). done never runs once
 * the instance is closing. 0 or TDM_ENOMEM (nothing sent). */
typedef void (*tdm__on_worker_fn)(tdm_proxy_worker_t *pw, void *arg, int *result);
typedef void (*tdm__done_fn)(tdm_instance_t *inst, void *arg, int result);
int tdm__instance_broadcast(tdm_instance_t *inst, tdm__on_worker_fn fn, void *arg, tdm__done_fn done);
/* The same, with done running also while the instance is closing (shutdown phases). */
int tdm__instance_broadcast_closing(tdm_instance_t *inst, tdm__on_worker_fn fn, void *arg, tdm__done_fn done);
/* Worker thread, shutdown phase 1: closes the frontend, the route state and the backend. */
void tdm__instance_worker_close_plane(tdm_proxy_worker_t *pw, void *arg, int *result);
/* Worker thread: *result = TDM_EINVAL while a handle other than the inbox's and the worker's own
 * networking context is still open or closing on this loop. */
void tdm__instance_worker_settled(tdm_proxy_worker_t *pw, void *arg, int *result);
/* Fire and forget: a reference on `topology` to every worker (swapped in there). */
void tdm__instance_publish_topology(tdm_instance_t *inst, int cluster, tdm_topology_t *topology);
/* Fire and forget: an EVENT body to every worker's registered clients. */
void tdm__instance_publish_event(tdm_instance_t *inst, const char *type, const uint8_t *body, size_t len);
/* Sends CONF_SWAP (a reference each) to every worker. */
void tdm__instance_publish_conf(tdm_instance_t *inst, tdm_conf_t *conf);
/* Fire and forget: a copy of inst->tls to every worker (swapped into pw->tls and its backend). Sent
 * before the CONF_SWAP of the same epoch, so a worker sees both together (FIFO inbox). */
void tdm__instance_publish_tls(tdm_instance_t *inst);
/* Sends DRAIN to every worker. */
void tdm__instance_send_drain(tdm_instance_t *inst);
/* "host:port" or "[v6]:port" of a topology node (any thread). */
void tdm__instance_node_name(const tdm_node_t *node, char *buf, size_t cap);

/* instance_stats.c */
/* Asks every worker for its counters; cb(inst, arg, true) once the sums are in inst->agg and
 * inst->agg_nodes, or cb(..., false) when the instance closes first. */
void tdm__instance_stats(tdm_instance_t *inst, tdm__stats_cb cb, void *arg);
void tdm__instance_stats_fail_all(tdm_instance_t *inst);
uint64_t tdm__instance_open_clients(const tdm_instance_t *inst); /* from the last round */
void tdm__instance_stats_free(tdm_instance_t *inst);

/* instance_reload.c */
void tdm__instance_reload_request(tdm_instance_t *inst, tdm__reload_cb cb, void *arg);
void tdm__instance_reload_fail_all(tdm_instance_t *inst);
void tdm__instance_reload_free(tdm_instance_t *inst);
/* Maps the configured log level / format to the logger's. */
void tdm__instance_apply_log(const tdm_conf_t *conf);
/* One INFO line saying which legs use TLS (start-up, and each reload while any leg uses TLS). */
void tdm__instance_log_tls(const tdm_conf_t *conf, const tdm_tls_set_t *tls);

/* instance_drain.c */
/* Closes everything (workers stopped and joined, control connections, HTTP, signals, timers, inbox);
 * the main loop then ends. `result` becomes tdm_instance_run's return value. Idempotent. */
void tdm__instance_finish(tdm_instance_t *inst, int result);

/* instance_http.c */
void tdm__instance_on_http(tdm_admin_t *a, tdm_admin_req_t *req, void *arg);
/* Readiness inputs refreshed from the current epoch. */
void tdm__instance_health(const tdm_instance_t *inst, tdm_health_t *out);

/* instance_schema.c: the route module's schema-agreement hook (worker side -> main loop -> back). */
void tdm__instance_schema_hook_init(tdm__wslot_t *slot);   /* worker thread, at init */
void tdm__instance_schema_holds_drop(tdm__wslot_t *slot);  /* worker thread, at fini */

/* instance_events.c */
void tdm__instance_on_schema_event(void *arg, int cluster, const uint8_t *body, size_t len, uint8_t version);
/* Worker thread (pw->version_refused): hands a version refusal learned in a client handshake to the
 * main loop, which tells that cluster's control connection (plug.control_learn_refused_version). */
void tdm__instance_version_refused(tdm_proxy_worker_t *pw, int cluster, uint8_t version);
/* Synthesized TOPOLOGY_CHANGE events for a reload that changed the instance list (§10). */
void tdm__instance_topology_events(tdm_instance_t *inst, const tdm_conf_t *old_conf, const tdm_conf_t *new_conf);

#endif
