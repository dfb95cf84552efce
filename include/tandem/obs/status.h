/* The JSON of `GET /api/v1/status` and `POST /api/v1/reload` (behaviour.md §13.2): version, epoch,
 * config file, live policy keys, restart-class keys waiting for a restart, the last reload, each
 * cluster's nodes with their pool gauges, and client connections by worker and protocol version. A pure
 * renderer of a snapshot the instance assembles on the main loop, plus the JSON string escaping that
 * the readiness document (obs/health) shares. */
#ifndef TANDEM_OBS_STATUS_H
#define TANDEM_OBS_STATUS_H

#include <stdio.h>
#include <tandem/common.h>

#define TDM_STATUS_VERSIONS 6 /* client version slots: v2 v3 v4 v5 DseV1 DseV2 (tdm_proxy_stats_t order) */

typedef struct tdm_status_node_s {
  const char *name;     /* "host:port" */
  const char *dc;       /* data center, "" if unknown */
  const char *state;    /* "UP" or "DOWN" as the control connection last saw it */
  uint64_t connections; /* open pool connections, summed over workers */
  uint64_t inflight;    /* legs in flight, summed over workers */
} tdm_status_node_t;

typedef struct tdm_status_cluster_s {
  const char *status;             /* readiness of its control connection: STARTUP, UP, DOWN */
  const char *control_node;       /* node the control connection uses, NULL when not connected */
  int failures;                   /* consecutive control connection failures */
  const char *last_error;         /* last control connection error, NULL if none */
  const tdm_status_node_t *nodes; /* known nodes, control node first */
  size_t n_nodes;                 /* entries in nodes */
} tdm_status_cluster_t;

typedef struct tdm_status_worker_s {
  uint64_t clients;                       /* open client connections */
  uint64_t by_version[TDM_STATUS_VERSIONS]; /* of which per protocol version */
} tdm_status_worker_t;

typedef struct tdm_status_s {
  const char *version;                 /* tandem version */
  uint64_t epoch;                      /* configuration epoch in use */
  const char *config_file;             /* --config path, NULL when none */
  const char *readiness;               /* STARTUP, UP or DOWN */
  bool draining;                       /* a drain has begun */
  const char *primary_cluster;         /* ORIGIN or TARGET */
  const char *read_mode;               /* PRIMARY_ONLY or DUAL_ASYNC_ON_SECONDARY */
  const char *write_divergence_policy; /* FAIL or PRIMARY_WINS */
  const char *const *pending_restart;  /* restart-class key names changed but not applied */
  size_t n_pending_restart;            /* entries in pending_restart */
  int64_t last_reload_ms;              /* wall clock of the last reload attempt, 0 = none yet */
  const char *last_reload_result;      /* "applied" or "rejected" (ignored when none yet) */
  const char *last_reload_error;       /* why it was rejected, NULL when applied */
  tdm_status_cluster_t clusters[2];    /* ORIGIN, TARGET */
  const tdm_status_worker_t *workers;  /* one per worker thread */
  size_t n_workers;                    /* entries in workers */
} tdm_status_t;

/* Writes the status document (one line, no newline). 0, or TDM_ENOMEM when the stream failed. */
int tdm_status_render(FILE *out, const tdm_status_t *s);
/* Writes s as a JSON string with quotes; NULL writes null. Control bytes and invalid UTF-8 are escaped
 * as \u00XX, so any input gives valid JSON. */
void tdm_status_json_string(FILE *out, const char *s);

#endif
