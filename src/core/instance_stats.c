/* Aggregation of the workers' counters by message (rule 17): one STATS_REQ round at a time; every
 * caller that asks while a round is out joins it. Each worker copies its tdm_proxy_stats_t and node
 * gauges into its slot (instance_worker.c), worker.c sends the reply, and when the last reply is in,
 * the main loop sums them into inst->agg / inst->agg_nodes and runs the waiters. */
#include <tandem/obs/log.h>
#include "instance_internal.h"

static void free_snaps(tdm_instance_t *inst)
{
  for (unsigned i = 0; i < inst->nworkers; i++)
    for (int c = 0; c < 2; c++) {
      free(inst->workers[i].snap.nodes[c]);
      inst->workers[i].snap.nodes[c] = NULL;
      inst->workers[i].snap.n_nodes[c] = 0;
    }
}

static void run_waiters(tdm_instance_t *inst, bool ok)
{
  tdm_list_t batch;
  tdm_list_init(&batch);
  tdm_list_splice_tail(&batch, &inst->stats_waiters);
  tdm_list_t *n;
  while ((n = tdm_list_pop(&batch)) != NULL) {
    tdm__waiter_t *w = TDM_CONTAINER_OF(n, tdm__waiter_t, link);
    w->stats_cb(inst, w->arg, ok);
    free(w);
  }
}

/* Adds a node's gauges under its name, keeping first-seen order (main topology order first). */
static int add_node(tdm_metrics_node_t **v, size_t *n, size_t *cap, int cluster, const char *name,
                    const tdm_backend_node_stats_t *g)
{
  for (size_t i = 0; i < *n; i++) {
    tdm_metrics_node_t *e = &(*v)[i];
    if (e->cluster == cluster && !strcmp(e->name, name)) {
      if (g) {
        e->connections += g->connections;
        e->inflight += g->inflight;
        e->stream_ids += g->stream_ids;
        e->async_connections += g->async_connections;
        e->async_stream_ids += g->async_stream_ids;
      }
      return 0;
    }
  }
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    tdm_metrics_node_t *nv = realloc(*v, ncap * sizeof(*nv));
    if (!nv)
      return TDM_ENOMEM;
    *v = nv;
    *cap = ncap;
  }
  tdm_metrics_node_t *e = &(*v)[(*n)++];
  memset(e, 0, sizeof(*e));
  snprintf(e->name, sizeof(e->name), "%s", name);
  e->cluster = cluster;
  if (g) {
    e->connections = g->connections;
    e->inflight = g->inflight;
    e->stream_ids = g->stream_ids;
    e->async_connections = g->async_connections;
    e->async_stream_ids = g->async_stream_ids;
  }
  return 0;
}

static void aggregate(tdm_instance_t *inst, const tdm_worker_stats_t *wtotal)
{
  memset(&inst->agg, 0, sizeof(inst->agg));
  for (unsigned i = 0; i < inst->nstarted; i++)
    tdm_proxy_stats_add(&inst->agg, &inst->workers[i].snap.stats);
  /* read yields may be counted by the connection layer (worker stats) or by the frontend (proxy stats);
   * whichever counts them, the larger sum is the right one and nothing is counted twice. */
  inst->agg.read_yields = TDM_MAX(inst->agg.read_yields, wtotal->read_yields);

  free(inst->agg_nodes);
  inst->agg_nodes = NULL;
  inst->n_agg_nodes = 0;
  size_t cap = 0;
  bool oom = false;
  for (int c = 0; c < 2 && !oom; c++) {
    const tdm_topology_t *t = inst->topology[c];
    for (size_t i = 0; t && i < t->n_nodes && !oom; i++) {
      char name[TDM_METRICS_NODE_NAME_MAX];
      tdm__instance_node_name(&t->nodes[i], name, sizeof(name));
      oom = add_node(&inst->agg_nodes, &inst->n_agg_nodes, &cap, c, name, NULL) < 0;
    }
    for (unsigned w = 0; w < inst->nstarted && !oom; w++) {
      const tdm__wsnap_t *s = &inst->workers[w].snap;
      for (size_t i = 0; i < s->n_nodes[c] && !oom; i++)
        oom = add_node(&inst->agg_nodes, &inst->n_agg_nodes, &cap, c, s->nodes[c][i].name, &s->nodes[c][i].g) < 0;
    }
  }
  if (oom)
    tdm_log_error(NULL, "out of memory aggregating node gauges; this scrape lists fewer nodes");
}

static void on_collected(const tdm_worker_stats_t *total, const tdm_worker_stats_t *per, size_t n, void *arg)
{
  tdm_instance_t *inst = arg;
  if (inst->closing)
    return; /* the waiters were failed by tdm__instance_stats_fail_all */
  aggregate(inst, total);
  free_snaps(inst);
  inst->stats_busy = false;
  run_waiters(inst, true);
}

void tdm__instance_stats(tdm_instance_t *inst, tdm__stats_cb cb, void *arg)
{
  tdm__waiter_t *w = calloc(1, sizeof(*w));
  if (!w || inst->closing) {
    free(w);
    cb(inst, arg, false);
    return;
  }
  w->stats_cb = cb;
  w->arg = arg;
  tdm_list_insert_tail(&inst->stats_waiters, &w->link);
  if (inst->stats_busy)
    return;
  inst->stats_busy = true;
  free_snaps(inst);
  for (unsigned i = 0; i < inst->nstarted; i++)
    memset(&inst->workers[i].snap, 0, sizeof(inst->workers[i].snap));
  /* Runs on_collected synchronously when there is no worker to ask. */
  if (tdm_worker_stats_collect(inst->wptrs, inst->nstarted, &inst->inbox, on_collected, inst) < 0) {
    inst->stats_busy = false;
    tdm_log_error(NULL, "out of memory asking the workers for their counters");
    run_waiters(inst, false);
  }
}

void tdm__instance_stats_fail_all(tdm_instance_t *inst)
{
  run_waiters(inst, false);
}

uint64_t tdm__instance_open_clients(const tdm_instance_t *inst)
{
  uint64_t n = 0;
  for (unsigned i = 0; i < inst->nstarted; i++)
    n += TDM_MAX(inst->workers[i].snap.clients, inst->workers[i].snap.stats.client_connections);
  return n;
}

void tdm__instance_stats_free(tdm_instance_t *inst)
{
  free_snaps(inst);
  free(inst->agg_nodes);
  inst->agg_nodes = NULL;
  inst->n_agg_nodes = 0;
}
