/* Routing policy (behaviour.md §5.2) as one pure function: what a request is (opcode, statement class,
 * virtual or system table, paging state) and the policy keys of the request's epoch go in; where it goes
 * and whether it may be mirrored to the secondary (§12) come out. No I/O and no state: route/dispatch.c
 * gathers the facts and applies the decision. */
#ifndef TANDEM_ROUTE_ROUTER_H
#define TANDEM_ROUTE_ROUTER_H

#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/proto/classify.h>

typedef enum tdm_route_dest_e {
  TDM_ROUTE_LOCAL_VIRTUAL = 0, /* a virtual system table: the frontend answers (§9) */
  TDM_ROUTE_PRIMARY,           /* the primary cluster only (reads, LIST) */
  TDM_ROUTE_BOTH,              /* both clusters: writes, DDL, DCL, USE, PREPARE, BATCH, unknown text */
  TDM_ROUTE_SYSTEM_CLUSTER,    /* the system_queries_mode cluster (non-virtual system reads) */
  TDM_ROUTE_LOCAL_VOID,        /* answered locally with RESULT Void (CALL InsightsRpc.*) */
  TDM_ROUTE_LOCAL_ERROR,       /* answered locally with an error (see tdm_route_local_error_t) */
  TDM_ROUTE_DEST_MAX           /* sentinel */
} tdm_route_dest_t;

typedef enum tdm_route_local_error_e {
  TDM_ROUTE_ERR_NONE = 0,          /* not a local error */
  TDM_ROUTE_ERR_UNKNOWN_OPCODE,    /* PROTOCOL_ERROR `Unknown opcode <n>` */
  TDM_ROUTE_ERR_CONTINUOUS_PAGING, /* INVALID `tandem does not support DSE continuous paging` */
  TDM_ROUTE_ERR_UNEXPECTED,        /* PROTOCOL_ERROR: a handshake opcode the frontend should have kept */
} tdm_route_local_error_t;

/* The policy keys of one epoch that routing reads. */
typedef struct tdm_route_policy_s {
  int primary;        /* primary_cluster: TDM_CONF_ORIGIN or TDM_CONF_TARGET */
  int system_cluster; /* system_queries_mode: TDM_CONF_ORIGIN or TDM_CONF_TARGET */
  bool async_reads;   /* read_mode == DUAL_ASYNC_ON_SECONDARY */
} tdm_route_policy_t;

/* What the dispatcher learned about a request. A zeroed struct is an unknown-opcode request. */
typedef struct tdm_route_info_s {
  uint8_t opcode;         /* TDM_OP_* of the client frame */
  tdm_stmt_class_t cls;   /* QUERY / PREPARE: classified text; EXECUTE: the class stored at PREPARE */
  uint32_t cflags;        /* TDM_CLASSIFY_F_* of the same statement (INSIGHTS matters here) */
  bool is_virtual;        /* SELECT of system.local / peers / peers_v2, keyspace resolved (§9.1) */
  bool reads_system;      /* SELECT of any system keyspace, keyspace resolved (§5.1) */
  bool paging_state;      /* carries a paging state: a follow-up page, never mirrored (§12) */
  bool continuous_paging; /* DSE continuous paging requested (refused, §5.2) */
} tdm_route_info_t;

typedef struct tdm_route_decision_s {
  tdm_route_dest_t dest;           /* where the request goes */
  int cluster;                     /* PRIMARY / SYSTEM_CLUSTER: the cluster; -1 for every other dest */
  bool mirror;                     /* eligible for an async copy to the other cluster, before sampling */
  tdm_route_local_error_t error;   /* LOCAL_ERROR: which one */
} tdm_route_decision_t;

/* The policy of an epoch. */
void tdm_router_policy(const tdm_conf_t *conf, tdm_route_policy_t *out);

/* The §5.2 table. Total: every input gets a decision; out is always fully written. */
void tdm_router_decide(const tdm_route_info_t *in, const tdm_route_policy_t *policy, tdm_route_decision_t *out);

/* "LOCAL_VIRTUAL", "PRIMARY", ... for logs and tests; never NULL. */
const char *tdm_router_dest_name(tdm_route_dest_t dest);

#endif
