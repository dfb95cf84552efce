/* Routing policy: behaviour.md §5.2 as a total, pure function of (request facts, epoch policy). The
 * dispatcher (route/dispatch.c) classifies and resolves keyspaces; this file only decides. Invariant: a
 * statement of class READ never goes to BOTH (§5.1), and only a primary-routed READ is mirrored. */
#include <tandem/route/router.h>

void tdm_router_policy(const tdm_conf_t *conf, tdm_route_policy_t *out)
{
  out->primary = conf->primary_cluster == TDM_CONF_TARGET ? TDM_CONF_TARGET : TDM_CONF_ORIGIN;
  out->system_cluster = conf->system_queries_mode == TDM_CONF_TARGET ? TDM_CONF_TARGET : TDM_CONF_ORIGIN;
  out->async_reads = conf->read_mode == TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY;
}

static void local_error(tdm_route_decision_t *out, tdm_route_local_error_t err)
{
  out->dest = TDM_ROUTE_LOCAL_ERROR;
  out->error = err;
}

/* A statement (QUERY text, or the class an EXECUTE inherits from its PREPARE). */
static void statement(const tdm_route_info_t *in, const tdm_route_policy_t *policy, tdm_route_decision_t *out)
{
  switch (in->cls) {
  case TDM_CLASSIFY_CLASS_READ:
    if (in->is_virtual) {
      out->dest = TDM_ROUTE_LOCAL_VIRTUAL;
    } else if (in->reads_system) {
      out->dest = TDM_ROUTE_SYSTEM_CLUSTER;
      out->cluster = policy->system_cluster;
    } else {
      out->dest = TDM_ROUTE_PRIMARY;
      out->cluster = policy->primary;
      out->mirror = policy->async_reads && !in->paging_state; /* only first pages (§12) */
    }
    return;
  case TDM_CLASSIFY_CLASS_AUTH_READ: /* LIST ROLES / USERS / PERMISSIONS: a read of auth metadata */
    out->dest = TDM_ROUTE_PRIMARY;
    out->cluster = policy->primary;
    return;
  case TDM_CLASSIFY_CLASS_CALL:
    out->dest = (in->cflags & TDM_CLASSIFY_F_INSIGHTS) ? TDM_ROUTE_LOCAL_VOID : TDM_ROUTE_BOTH;
    return;
  default: /* USE, WRITE, SCHEMA, DCL and UNKNOWN: unknown text may write, so it goes to both */
    out->dest = TDM_ROUTE_BOTH;
    return;
  }
}

void tdm_router_decide(const tdm_route_info_t *in, const tdm_route_policy_t *policy, tdm_route_decision_t *out)
{
  memset(out, 0, sizeof(*out));
  out->cluster = -1;
  switch (in->opcode) {
  case TDM_OP_QUERY:
  case TDM_OP_EXECUTE:
    if (in->continuous_paging) {
      local_error(out, TDM_ROUTE_ERR_CONTINUOUS_PAGING);
      return;
    }
    statement(in, policy, out);
    return;
  case TDM_OP_PREPARE:
    /* A virtual-table SELECT is prepared by the frontend (§9.3); every other text on both (§7.1). */
    out->dest = (in->cls == TDM_CLASSIFY_CLASS_READ && in->is_virtual) ? TDM_ROUTE_LOCAL_VIRTUAL : TDM_ROUTE_BOTH;
    return;
  case TDM_OP_BATCH:
    out->dest = TDM_ROUTE_BOTH;
    return;
  case TDM_OP_REVISE_REQUEST:
    local_error(out, TDM_ROUTE_ERR_CONTINUOUS_PAGING);
    return;
  case TDM_OP_OPTIONS:
  case TDM_OP_STARTUP:
  case TDM_OP_AUTH_RESPONSE:
  case TDM_OP_REGISTER:
    local_error(out, TDM_ROUTE_ERR_UNEXPECTED);
    return;
  default:
    local_error(out, TDM_ROUTE_ERR_UNKNOWN_OPCODE);
    return;
  }
}

const char *tdm_router_dest_name(tdm_route_dest_t dest)
{
  static const char *const names[TDM_ROUTE_DEST_MAX] = {
    [TDM_ROUTE_LOCAL_VIRTUAL] = "LOCAL_VIRTUAL", [TDM_ROUTE_PRIMARY] = "PRIMARY",
    [TDM_ROUTE_BOTH] = "BOTH",                   [TDM_ROUTE_SYSTEM_CLUSTER] = "SYSTEM_CLUSTER",
    [TDM_ROUTE_LOCAL_VOID] = "LOCAL_VOID",       [TDM_ROUTE_LOCAL_ERROR] = "LOCAL_ERROR",
  };
  return (unsigned)dest < TDM_ROUTE_DEST_MAX ? names[dest] : "?";
}
