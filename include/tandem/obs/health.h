/* Readiness (behaviour.md §13.2): the state of both control connections and the drain decide STARTUP,
 * UP or DOWN, rendered in zdm-proxy's JSON shape plus a `Tandem` member; HTTP 200 only for UP. Pure
 * functions of a snapshot the instance keeps on the main loop.
 *   STARTUP  until both control connections have come up once (cluster members are null, as in
 *            zdm-proxy); then
 *   UP       while neither has reached heartbeat_failure_threshold consecutive failures and no drain
 *            has begun;
 *   DOWN     otherwise. */
#ifndef TANDEM_OBS_HEALTH_H
#define TANDEM_OBS_HEALTH_H

#include <stdio.h>
#include <tandem/common.h>

typedef enum tdm_health_status_e {
  TDM_HEALTH_STARTUP = 0, /* a control connection has never been up */
  TDM_HEALTH_UP = 1,      /* ready for clients */
  TDM_HEALTH_DOWN = 2,    /* a cluster is failing, or tandem is draining */
} tdm_health_status_t;

#define TDM_HEALTH_ADDR_MAX 72 /* "host:port" plus the NUL */

/* One control connection as readiness sees it. */
typedef struct tdm_health_cluster_s {
  char addr[TDM_HEALTH_ADDR_MAX]; /* node it is connected to; "" = not connected ("NOT_CONNECTED") */
  int failures;                   /* consecutive failures (CurrentFailureCount) */
  int threshold;                  /* heartbeat_failure_threshold (FailureCountThreshold) */
  bool ever_up;                   /* has been up at least once */
} tdm_health_cluster_t;

typedef struct tdm_health_s {
  tdm_health_cluster_t cluster[2]; /* ORIGIN, TARGET */
  bool draining;                   /* SIGTERM / SIGINT received */
  uint64_t epoch;                  /* configuration epoch in use */
  int primary_cluster;             /* TDM_CONF_ORIGIN / TDM_CONF_TARGET */
  int read_mode;                   /* tdm_conf_read_mode_t */
  const char *version;             /* tandem version */
} tdm_health_t;

const char *tdm_health_status_name(tdm_health_status_t s); /* "STARTUP", "UP", "DOWN" */
/* UP or DOWN for one control connection (zdm-proxy's rule: DOWN at threshold failures). */
tdm_health_status_t tdm_health_cluster_status(const tdm_health_cluster_t *c);
tdm_health_status_t tdm_health_status(const tdm_health_t *h);
/* Writes the readiness document and returns the HTTP status: 200 when UP, else 503. */
unsigned tdm_health_readiness_json(FILE *out, const tdm_health_t *h);

#endif
