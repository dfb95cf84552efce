/* Aggregation of a request's legs (behaviour.md §6.1–§6.3) as a pure decision over (primary, divergence
 * policy, ORIGIN outcome, TARGET outcome), plus the texts and ERROR fields tandem originates for it
 * (§14): the "applied on A, failed on B" rewrite, proxy timeouts, lost connections, unreachable and
 * saturated clusters, and Cassandra's UNPREPARED text. route/request.c feeds outcomes in as legs
 * answer and acts on the decision; nothing here touches a socket, a clock or a counter. */
#ifndef TANDEM_ROUTE_AGGREGATE_H
#define TANDEM_ROUTE_AGGREGATE_H

#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/util/str.h>
#include <tandem/proto/response.h>

/* What one leg has produced so far. Failures that mean "nothing ran on that cluster" (unreachable at
 * send time, still queued when the timer fired, re-prepare failed) are ERRORs with a synthesized code
 * (UNAVAILABLE, OVERLOADED, UNPREPARED) so they follow the table like a cluster's own error. */
typedef enum tdm_agg_outcome_e {
  TDM_AGG_NONE = 0, /* no leg on this cluster */
  TDM_AGG_PENDING,  /* sent (or queued), no outcome yet */
  TDM_AGG_OK,       /* a response that is not an ERROR */
  TDM_AGG_ERROR,    /* an ERROR response, or a synthesized not-executed error; code in tdm_agg_leg_t */
  TDM_AGG_SILENT,   /* written, and nothing came back before the request timer fired */
  TDM_AGG_LOST,     /* written, then the connection was lost */
  TDM_AGG_OUTCOME_MAX /* sentinel */
} tdm_agg_outcome_t;

typedef struct tdm_agg_leg_s {
  tdm_agg_outcome_t outcome; /* see above */
  uint32_t code;             /* TDM_ERR_* when outcome is ERROR */
} tdm_agg_leg_t;

typedef struct tdm_agg_input_s {
  int primary;                  /* TDM_CONF_ORIGIN or TDM_CONF_TARGET */
  tdm_conf_divergence_t policy; /* FAIL or PRIMARY_WINS */
  int success_cluster;          /* whose response answers when both succeed: the primary, ORIGIN for PREPARE */
  tdm_agg_leg_t leg[2];         /* [TDM_CONF_ORIGIN], [TDM_CONF_TARGET] */
} tdm_agg_input_t;

typedef enum tdm_agg_action_e {
  TDM_AGG_WAIT = 0,  /* undecided: wait for more outcomes (or the timer) */
  TDM_AGG_FORWARD,   /* answer with leg[cluster]'s response, success or ERROR, as it is */
  TDM_AGG_REWRITE,   /* SERVER_ERROR "applied on <ok_cluster>, failed on <cluster>: <code>: <msg>" */
  TDM_AGG_TIMEOUT,   /* §6.3 timeout-class error naming the `silent` and `lost` clusters */
  TDM_AGG_ACTION_MAX /* sentinel */
} tdm_agg_action_t;

typedef struct tdm_agg_decision_s {
  tdm_agg_action_t action; /* what to answer now */
  int cluster;             /* FORWARD / REWRITE: the leg whose response (or error) is used; else -1 */
  int ok_cluster;          /* REWRITE: the leg that succeeded; else -1 */
  unsigned silent;         /* TIMEOUT: bit (1 << c) per cluster that said nothing in time */
  unsigned lost;           /* TIMEOUT: bit per cluster whose connection was lost after the write */
  unsigned applied;        /* bit per cluster whose leg succeeded */
  unsigned failed;         /* bit per present cluster whose leg did not succeed (so far) */
  bool complete;           /* every present leg has an outcome: metrics and journal may be recorded */
  bool divergent;          /* complete, and one leg succeeded while the other did not (journal) */
} tdm_agg_decision_t;

#define TDM_AGG_BIT(c) (1u << (unsigned)(c))

/* The §6.1 table with the rewrite, early answers and PRIMARY_WINS. A request with one leg (NONE on the
 * other cluster) forwards that leg's outcome. out is always fully written. */
void tdm_agg_decide(const tdm_agg_input_t *in, tdm_agg_decision_t *out);

/* UNAVAILABLE, OVERLOADED, IS_BOOTSTRAPPING, UNPREPARED: errors telling drivers the statement did not
 * run, rewritten when the other leg applied it (§6.1). */
bool tdm_agg_is_not_executed(uint32_t code);

/* "ORIGIN" / "TARGET" ("?" otherwise). */
const char *tdm_agg_cluster_name(int cluster);

/* ---- texts (§14). Each writes a NUL-terminated message into buf (cut to cap) and returns its full
 * length, as snprintf does. ---- */

/* `tandem: applied on <OK>, failed on <CLUSTER>: <code name>: <message>` */
size_t tdm_agg_format_rewrite(char *buf, size_t cap, int ok_cluster, int failed_cluster, uint32_t code,
                              tdm_str_t message);
/* `tandem: connection to <C> <node> lost` and/or `tandem: no response from <C>[ and <C>] within <n> ms`,
 * joined by "; ", then ` (applied on <C>)` for each cluster in `applied`. node[c] names the node of a
 * lost leg (NULL or "" leaves it out). */
size_t tdm_agg_format_timeout(char *buf, size_t cap, unsigned silent, unsigned lost, unsigned applied,
                              const char *const node[2], int timeout_ms);
/* `tandem: no reachable <CLUSTER> node` */
size_t tdm_agg_format_unreachable(char *buf, size_t cap, int cluster);
/* `tandem: no capacity to <CLUSTER> within <n> ms` */
size_t tdm_agg_format_no_capacity(char *buf, size_t cap, int cluster, int timeout_ms);
/* Cassandra's UNPREPARED text: `Prepared query with ID <lowercase hex> not found (...)`. */
size_t tdm_agg_format_unprepared(char *buf, size_t cap, const uint8_t *id, size_t id_len);

/* ---- ERROR bodies (fields for tdm_client_respond_error) ---- */

/* What a proxy timeout looks like for a request class (§6.3). */
typedef enum tdm_agg_class_e {
  TDM_AGG_CLASS_OTHER = 0, /* PREPARE, USE, DDL, DCL, unknown text: SERVER_ERROR */
  TDM_AGG_CLASS_READ,      /* READ_TIMEOUT: CL, received 0, blockfor 1, data_present 0 */
  TDM_AGG_CLASS_WRITE,     /* WRITE_TIMEOUT: CL, received 0, blockfor 1, write_type */
} tdm_agg_class_t;

/* Fills e (zeroed first) with the timeout error of `cls`. batch_type is the BATCH type 0/1/2 giving
 * write_type BATCH / UNLOGGED_BATCH / COUNTER, or -1 for SIMPLE. message is borrowed. */
void tdm_agg_timeout_error(tdm_agg_class_t cls, uint16_t consistency, int batch_type, tdm_str_t message,
                           tdm_response_error_t *e);
/* UNAVAILABLE: CL, required 1, alive 0, with message (§6.1). */
void tdm_agg_unavailable_error(uint16_t consistency, tdm_str_t message, tdm_response_error_t *e);

#endif
