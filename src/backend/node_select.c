/* Node states of one worker's backend and the choice of a node for a leg (behaviour.md §0, §11.1):
 * eligible = in the current topology, not DOWN, not in the 10 s cooldown that follows a connect
 * failure, in the local DC (all nodes count as local when no DC is known); among those, the fewest
 * legs in flight or queued, ties rotated. With {c}_enable_host_assignment off only the control node is used.
 * Node states are keyed by address so pools survive topology snapshots that reorder nodes. */
#include <tandem/obs/log.h>
#include "internal.h"

#define TDM__NODE_COOLDOWN_MS 10000

static tdm__node_t *node_find(tdm__cluster_t *cl, const char *host, uint16_t port)
{
  TDM_LIST_FOREACH(it, &cl->all)
  {
    tdm__node_t *n = TDM_CONTAINER_OF(it, tdm__node_t, link);
    if (n->port == port && strcmp(n->host, host) == 0) return n;
  }
  return NULL;
}

static tdm__node_t *node_new(int cluster, const tdm_node_t *tn)
{
  tdm__node_t *n = calloc(1, sizeof(*n));
  if (!n) return NULL;
  n->cluster = cluster;
  snprintf(n->host, sizeof(n->host), "%s", tn->host);
  n->port = tn->port;
  memcpy(&n->addr, &tn->addr, TDM_MIN(sizeof(n->addr), sizeof(tn->addr)));
  if (tdm_sockaddr_len(&n->addr) == 0) (void)tdm_sockaddr_parse_ip(tn->host, tn->port, &n->addr);
  tdm_sockaddr_format(&n->addr, n->name, sizeof(n->name));
  n->index = -1;
  tdm_list_init(&n->link);
  tdm_list_init(&n->pools);
  return n;
}

void tdm__node_maybe_free(tdm__node_t *n)
{
  if (n->pinned || n->index >= 0 || !tdm_list_empty(&n->pools)) return;
  tdm_list_remove(&n->link);
  free(n);
}

int tdm__nodes_update(tdm_backend_t *be, int cluster, tdm_topology_t *topo)
{
  tdm__cluster_t *cl = &be->cl[cluster];
  tdm_list__fix(&cl->all);
  size_t n = topo ? topo->n_nodes : 0;
  tdm__node_t **nodes = n ? calloc(n, sizeof(*nodes)) : NULL;
  if (n && !nodes) return TDM_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const tdm_node_t *tn = &topo->nodes[i];
    tdm__node_t *s = node_find(cl, tn->host, tn->port);
    if (!s) {
      s = node_new(cluster, tn);
      if (!s) {
        free(nodes);
        return TDM_ENOMEM;
      }
      tdm_list_insert_tail(&cl->all, &s->link);
    }
    nodes[i] = s;
  }
  /* every state starts as "removed"; the new snapshot's nodes are marked again below */
  TDM_LIST_FOREACH(it, &cl->all) TDM_CONTAINER_OF(it, tdm__node_t, link)->index = -1;
  bool any_local = false;
  for (size_t i = 0; i < n; i++) any_local |= topo->nodes[i].local_dc;
  for (size_t i = 0; i < n; i++) {
    nodes[i]->index = (int)i;
    nodes[i]->local_dc = any_local ? topo->nodes[i].local_dc : true;
    nodes[i]->down = topo->nodes[i].state == TDM_NODE_DOWN;
  }
  free(cl->nodes);
  cl->nodes = nodes;
  cl->n_nodes = n;
  /* nodes that left: drain their pools; the state goes once its pools are gone */
  TDM_LIST_FOREACH_SAFE(it, tmp, &cl->all)
  {
    tdm__node_t *s = TDM_CONTAINER_OF(it, tdm__node_t, link);
    if (s->index >= 0) continue;
    s->pinned = true;
    TDM_LIST_FOREACH_SAFE(pit, ptmp, &s->pools) tdm__pool_retire(TDM_CONTAINER_OF(pit, tdm__pool_t, link), 0);
    s->pinned = false;
    tdm__node_maybe_free(s);
  }
  return 0;
}

void tdm__nodes_free(tdm_backend_t *be, int cluster)
{
  tdm__cluster_t *cl = &be->cl[cluster];
  free(cl->nodes);
  cl->nodes = NULL;
  cl->n_nodes = 0;
  tdm_list_t *it;
  while ((it = tdm_list_pop(&cl->all))) {
    tdm__node_t *n = TDM_CONTAINER_OF(it, tdm__node_t, link);
    TDM_ASSERT(tdm_list_empty(&n->pools));
    free(n);
  }
}

bool tdm__node_eligible(const tdm_backend_t *be, const tdm__node_t *n, uint64_t now)
{
  if (n->index < 0 || n->down || !n->local_dc) return false;
  if (n->cooldown_until && now < n->cooldown_until) return false;
  const tdm_conf_t *conf = be->conf;
  if (conf && !conf->cluster[n->cluster].enable_host_assignment && n->index != 0) return false;
  return true;
}

void tdm__node_cooldown(tdm_backend_t *be, tdm__node_t *n)
{
  n->cooldown_until = uv_now(be->loop) + TDM__NODE_COOLDOWN_MS;
  tdm_log_debug(NULL, "%s node %s down for %d ms after a connect failure", tdm__cluster_name(n->cluster), n->name,
                TDM__NODE_COOLDOWN_MS);
}

tdm__node_t *tdm__node_select(tdm_backend_t *be, int cluster, const tdm__node_t *avoid)
{
  tdm__cluster_t *cl = &be->cl[cluster];
  if (cl->n_nodes == 0) return NULL;
  uint64_t now = uv_now(be->loop);
  tdm__node_t *best = NULL;
  size_t start = cl->rr++ % cl->n_nodes;
  for (size_t k = 0; k < cl->n_nodes; k++) {
    tdm__node_t *n = cl->nodes[(start + k) % cl->n_nodes];
    if (n == avoid || !tdm__node_eligible(be, n, now)) continue;
    /* queued legs count as load too: a burst sent before any connection is up still spreads */
    if (!best || n->inflight + n->queued < best->inflight + best->queued) best = n;
  }
  return best;
}
