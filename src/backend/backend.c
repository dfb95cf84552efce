/* The per-worker backend's public face: lifetime, conf and topology swaps, the send / abandon pair the
 * route module uses, handshake sessions, gauges, and the two loop handles that drive the rest:
 *
 *   tick (uv_timer, 100 ms, while connections exist): heartbeats, handshake deadlines, idle and drain
 *   idle (uv_idle, only while work is due): v5 segment flushes, then session results
 *
 * The idle handle runs before the loop's prepare phase, so the segments it hands to a connection are
 * written by conn.c in the same iteration; while it is active the loop does not block in poll. */
#include <tandem/obs/log.h>
#include "internal.h"

#define TDM__TICK_MS 100

static void on_tick(uv_timer_t *t);

static void handle_closed(uv_handle_t *h);

static void maybe_free(tdm_backend_t *be)
{
  if (!be->closing || be->handles || be->live_conns) return;
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) {
    tdm__nodes_free(be, c);
    tdm_topology_unref(be->cl[c].topo);
  }
  tdm_tls_set_clear(&be->tls);
  tdm_conf_unref(be->conf);
  free(be);
}

static void handle_closed(uv_handle_t *h)
{
  tdm_backend_t *be = h->data;
  be->handles--;
  maybe_free(be);
}

static void net_closed(tdm_conn_ctx_t *ctx)
{
  tdm_backend_t *be = TDM_CONTAINER_OF(ctx, tdm_backend_t, net);
  be->handles--;
  maybe_free(be);
}

void tdm__backend_conn_gone(tdm_backend_t *be)
{
  TDM_ASSERT(be->live_conns > 0);
  be->live_conns--;
  if (be->closing && be->live_conns == 0 && !be->net.closing) tdm_conn_ctx_close(&be->net, net_closed);
  maybe_free(be);
}

static void run_sessions(tdm_backend_t *be)
{
  tdm_list_t *n;
  while ((n = tdm_list_pop(&be->done))) {
    tdm__session_t *s = TDM_CONTAINER_OF(n, tdm__session_t, link);
    s->cb(s->arg, s->err, s->body, s->body_len, s->err && !s->body ? s->reason : NULL);
    free(s->body);
    if (s->password) {
      for (volatile char *q = s->password; *q; q++) *q = 0;
      free(s->password);
    }
    free(s);
  }
}

static void on_idle(uv_idle_t *h)
{
  tdm_backend_t *be = h->data;
  tdm_list_t *n;
  while ((n = tdm_list_first(&be->dirty))) tdm__server_flush(TDM_CONTAINER_OF(n, tdm_backend_conn_t, dirty_link));
  run_sessions(be);
  if (tdm_list_empty(&be->dirty) && tdm_list_empty(&be->done)) uv_idle_stop(&be->idle);
}

void tdm__backend_schedule(tdm_backend_t *be)
{
  if (be->closing) return;
  uv_idle_start(&be->idle, on_idle);
}

void tdm__backend_tick_start(tdm_backend_t *be)
{
  if (be->closing || uv_is_active((uv_handle_t *)&be->tick)) return;
  uv_timer_start(&be->tick, on_tick, TDM__TICK_MS, TDM__TICK_MS);
}

int tdm_backend_new(void *loop, tdm_buf_pool_t *pool, tdm_backend_t **out)
{
  *out = NULL;
  tdm_backend_t *be = calloc(1, sizeof(*be));
  if (!be) return TDM_ENOMEM;
  be->loop = loop;
  be->pool = pool;
  int rc = tdm_conn_ctx_init(&be->net, be->loop);
  if (rc < 0) {
    free(be);
    return rc;
  }
  uv_timer_init(be->loop, &be->tick);
  uv_idle_init(be->loop, &be->idle);
  be->tick.data = be;
  be->idle.data = be;
  uv_unref((uv_handle_t *)&be->tick); /* housekeeping alone never keeps a loop alive */
  be->handles = 3;
  tdm_list_init(&be->dirty);
  tdm_list_init(&be->done);
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) tdm_list_init(&be->cl[c].all);
  *out = be;
  return 0;
}

void tdm_backend_close(tdm_backend_t *be)
{
  if (!be || be->closing) return;
  be->closing = true;
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) {
    tdm__cluster_t *cl = &be->cl[c];
    TDM_LIST_FOREACH_SAFE(it, tmp, &cl->all)
    {
      tdm__node_t *n = TDM_CONTAINER_OF(it, tdm__node_t, link);
      n->pinned = true;
      TDM_LIST_FOREACH_SAFE(pit, ptmp, &n->pools) tdm__pool_retire(TDM_CONTAINER_OF(pit, tdm__pool_t, link), TDM_ECLOSED);
      n->pinned = false;
    }
  }
  run_sessions(be); /* every pending handshake hears about the close now */
  uv_timer_stop(&be->tick);
  uv_idle_stop(&be->idle);
  uv_close((uv_handle_t *)&be->tick, handle_closed);
  uv_close((uv_handle_t *)&be->idle, handle_closed);
  if (be->live_conns == 0) tdm_conn_ctx_close(&be->net, net_closed);
}

void tdm_backend_set_conf(tdm_backend_t *be, tdm_conf_t *conf)
{
  tdm_conf_t *old = be->conf;
  be->conf = tdm_conf_ref(conf);
  tdm_conf_unref(old);
}

void tdm_backend_set_tls(tdm_backend_t *be, const tdm_tls_set_t *tls)
{
  tdm_tls_set_t old = be->tls;
  tdm_tls_set_copy(&be->tls, tls); /* references first, so a set handed back to us stays alive */
  tdm_tls_set_clear(&old);
}

void tdm_backend_set_topology(tdm_backend_t *be, tdm_topology_t *topology)
{
  if (!topology || topology->cluster < 0 || topology->cluster >= TDM_CONF_CLUSTER_MAX || be->closing) return;
  tdm__cluster_t *cl = &be->cl[topology->cluster];
  tdm_topology_t *old = cl->topo;
  cl->topo = tdm_topology_ref(topology);
  if (tdm__nodes_update(be, topology->cluster, topology) < 0) {
    tdm_log_error(NULL, "%s topology not applied by a worker: out of memory", tdm__cluster_name(topology->cluster));
    tdm_topology_unref(cl->topo);
    cl->topo = old;
    return;
  }
  tdm_topology_unref(old);
}

bool tdm_backend_reachable(const tdm_backend_t *be, int cluster)
{
  if (cluster < 0 || cluster >= TDM_CONF_CLUSTER_MAX || be->closing) return false;
  const tdm__cluster_t *cl = &be->cl[cluster];
  uint64_t now = uv_now(be->loop);
  for (size_t i = 0; i < cl->n_nodes; i++)
    if (tdm__node_eligible(be, cl->nodes[i], now)) return true;
  return false;
}

int tdm__backend_dispatch(tdm_backend_t *be, const tdm_session_key_t *key, tdm_leg_t *leg, const tdm__node_t *avoid)
{
  tdm__cluster_t *cl = &be->cl[leg->cluster];
  tdm__node_t *node;
  if (leg->pin_node >= 0) {
    /* a pinned leg (re-prepare on the node that answered) ignores health: that node just answered */
    node = (size_t)leg->pin_node < cl->n_nodes ? cl->nodes[leg->pin_node] : NULL;
  } else {
    node = tdm__node_select(be, leg->cluster, avoid);
    if (!node && avoid) node = tdm__node_select(be, leg->cluster, NULL);
  }
  if (!node) return TDM_EUNAVAILABLE;
  tdm__pool_t *pool = tdm__pool_get(be, node, key);
  if (!pool) return TDM_ENOMEM;
  tdm__pool_submit(pool, leg);
  return 0;
}

int tdm_backend_send(tdm_backend_t *be, const tdm_session_key_t *key, tdm_leg_t *leg)
{
  TDM_ASSERT(leg->on_response && leg->on_failure);
  if (be->closing || leg->cluster < 0 || leg->cluster >= TDM_CONF_CLUSTER_MAX) return TDM_EUNAVAILABLE;
  if (leg->body_len && (!leg->body || leg->body_off > leg->body->size || leg->body_len > leg->body->size - leg->body_off))
    return TDM_EINVAL;
  leg->state = TDM__LEG_NEW;
  leg->attempts = 0;
  leg->stream = -1;
  leg->conn = NULL;
  leg->wait_pool = NULL;
  leg->node = -1;
  leg->sent_at_ms = 0;
  leg->queued = false;
  return tdm__backend_dispatch(be, key, leg, NULL);
}

void tdm__leg_fail(tdm_leg_t *leg, int err, bool written, const char *reason)
{
  leg->state = TDM__LEG_DONE;
  leg->conn = NULL;
  leg->wait_pool = NULL;
  leg->on_failure(leg, err, written, reason);
}

/* Makes an in-use client id an orphan: its late response frees it (the leg's memory may go now).
 * tdm_streams_t has no owner setter, so the documented owner[] table is written directly. */
static void orphan_id(tdm_backend_conn_t *bc, int32_t id)
{
  TDM_ASSERT(id >= 0 && (uint32_t)id < bc->streams.high && bc->streams.owner[id] != NULL);
  bc->streams.owner[id] = tdm__marker(bc->be, TDM__INTERNAL_ORPHAN);
}

void tdm_backend_abandon(tdm_leg_t *leg)
{
  switch (leg->state) {
  case TDM__LEG_QUEUED:
    tdm__pool_unqueue(leg->wait_pool, leg);
    break;
  case TDM__LEG_WRITTEN: {
    tdm_backend_conn_t *bc = leg->conn;
    orphan_id(bc, leg->stream);
    bc->orphans++;
    bc->node->inflight--; /* nobody waits for it any more; its id stays counted in stream_ids */
    /* more than half the ids held by timed-out legs: recycle the connection (§8) */
    if (bc->orphans > bc->streams.client_limit / 2 && bc->state == TDM_SERVER_READY) {
      tdm_log_debug(bc->conn.tag, "%u of %u stream ids held by abandoned requests: recycling", bc->orphans,
                    bc->streams.client_limit);
      tdm__server_drain(bc);
    }
    break;
  }
  default:
    break;
  }
  leg->conn = NULL;
  leg->wait_pool = NULL;
  leg->state = TDM__LEG_ABANDONED;
}

static void on_tick(uv_timer_t *t)
{
  tdm_backend_t *be = t->data;
  uint64_t now = uv_now(be->loop);
  bool any = false;
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) {
    TDM_LIST_FOREACH_SAFE(it, tmp, &be->cl[c].all)
    {
      tdm__node_t *n = TDM_CONTAINER_OF(it, tdm__node_t, link);
      n->pinned = true;
      TDM_LIST_FOREACH_SAFE(pit, ptmp, &n->pools)
      {
        tdm__pool_t *p = TDM_CONTAINER_OF(pit, tdm__pool_t, link);
        p->pinned = true;
        TDM_LIST_FOREACH_SAFE(cit, ctmp, &p->conns) tdm__server_tick(TDM_CONTAINER_OF(cit, tdm_backend_conn_t, link), now);
        p->pinned = false;
        any |= p->nconns > 0;
        tdm__pool_maybe_free(p);
      }
      n->pinned = false;
      tdm__node_maybe_free(n);
    }
  }
  if (!any) uv_timer_stop(&be->tick);
}

/* ---- sessions (handshake support, §2.2) ---- */

/* A pool of `key` on an eligible node of `cluster` that has a READY connection, or NULL. */
static tdm__pool_t *ready_pool(tdm_backend_t *be, int cluster, const tdm_session_key_t *key)
{
  const tdm__cluster_t *cl = &be->cl[cluster];
  uint64_t now = uv_now(be->loop);
  for (size_t i = 0; i < cl->n_nodes; i++) {
    tdm__node_t *n = cl->nodes[i];
    if (!tdm__node_eligible(be, n, now)) continue;
    TDM_LIST_FOREACH(it, &n->pools)
    {
      tdm__pool_t *p = TDM_CONTAINER_OF(it, tdm__pool_t, link);
      if (p->nstate[TDM_SERVER_READY] > 0 && tdm__pool_key_match(p, key)) return p;
    }
  }
  return NULL;
}

int tdm_backend_session_open(tdm_backend_t *be, int cluster, const tdm_session_key_t *key, tdm_session_cb cb,
                             void *arg)
{
  if (be->closing) return TDM_ECLOSED;
  if (cluster < 0 || cluster >= TDM_CONF_CLUSTER_MAX || !cb) return TDM_EINVAL;
  tdm__session_t *s = calloc(1, sizeof(*s));
  if (!s) return TDM_ENOMEM;
  s->be = be;
  s->cb = cb;
  s->arg = arg;
  tdm_list_init(&s->link);
  /* verified: the caller's cache vouches for the password, so only readiness is checked (§2.2 step 4) */
  bool verified = key->creds && key->creds->verified;
  if (key->creds && !verified && !(s->password = strdup(key->creds->password ? key->creds->password : ""))) {
    free(s);
    return TDM_ENOMEM;
  }
  if (verified && ready_pool(be, cluster, key)) {
    tdm__session_finish(s, 0, NULL, 0, NULL);
    return 0;
  }
  tdm__node_t *node = tdm__node_select(be, cluster, NULL);
  if (!node) {
    tdm__session_finish(s, TDM_EUNAVAILABLE, NULL, 0, NULL);
    tdm__textf(s->reason, sizeof(s->reason), "tandem: cannot open a session to %s (%s): no reachable node",
             tdm__cluster_name(cluster), be->cl[cluster].n_nodes ? "all nodes down" : "topology unknown");
    return 0;
  }
  tdm__pool_t *pool = tdm__pool_get(be, node, key);
  if (!pool) {
    free(s->password);
    free(s);
    return TDM_ENOMEM;
  }
  s->pool = pool;
  tdm_list_insert_tail(&pool->sessions, &s->link);
  if (verified) tdm__pool_offer_password(pool, key->creds->password);
  if (s->password) {
    /* client credentials are verified on a connection of their own, even when the pool has ready
     * ones: a pool never vouches for a password it has not just seen accepted (§2.2 step 4) */
    int rc = tdm__server_open_ex(pool, s->password, s);
    if (rc < 0) tdm__session_finish(s, rc, NULL, 0, tdm_strerror(rc));
    return 0;
  }
  if (pool->nstate[TDM_SERVER_READY] > 0)
    tdm__session_finish(s, 0, NULL, 0, NULL);
  else
    tdm__pool_grow(pool, false);
  return 0;
}

static bool cancel_in(tdm_list_t *list, tdm_session_cb cb, void *arg)
{
  TDM_LIST_FOREACH_SAFE(it, tmp, list)
  {
    tdm__session_t *s = TDM_CONTAINER_OF(it, tdm__session_t, link);
    if (s->cb != cb || s->arg != arg) continue;
    tdm_list_remove(&s->link);
    if (s->conn) s->conn->session = NULL;
    free(s->body);
    if (s->password) {
      for (volatile char *q = s->password; *q; q++) *q = 0;
      free(s->password);
    }
    free(s);
    return true;
  }
  return false;
}

void tdm_backend_session_cancel(tdm_backend_t *be, tdm_session_cb cb, void *arg)
{
  if (cancel_in(&be->done, cb, arg)) return;
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) {
    TDM_LIST_FOREACH(it, &be->cl[c].all)
    {
      tdm__node_t *n = TDM_CONTAINER_OF(it, tdm__node_t, link);
      TDM_LIST_FOREACH(pit, &n->pools)
      {
        if (cancel_in(&TDM_CONTAINER_OF(pit, tdm__pool_t, link)->sessions, cb, arg)) return;
      }
    }
  }
}

/* ---- gauges and conf helpers ---- */

void tdm_backend_node_stats(const tdm_backend_t *be, int cluster, size_t node, tdm_backend_node_stats_t *out)
{
  memset(out, 0, sizeof(*out));
  if (cluster < 0 || cluster >= TDM_CONF_CLUSTER_MAX) return;
  const tdm__cluster_t *cl = &be->cl[cluster];
  if (node >= cl->n_nodes) return;
  const tdm__node_t *n = cl->nodes[node];
  out->connections = n->conns;
  out->inflight = n->inflight;
  out->stream_ids = n->stream_ids;
  out->async_connections = n->async_conns;
  out->async_stream_ids = n->async_stream_ids;
}

uint64_t tdm_backend_failed_connections(const tdm_backend_t *be, int cluster, bool async)
{
  return cluster >= 0 && cluster < TDM_CONF_CLUSTER_MAX ? be->cl[cluster].failed_conns[async ? 1 : 0] : 0;
}

uint64_t tdm_backend_late_responses(const tdm_backend_t *be, int cluster)
{
  return cluster >= 0 && cluster < TDM_CONF_CLUSTER_MAX ? be->cl[cluster].late_responses : 0;
}

void tdm__backend_conf_creds(const tdm_backend_t *be, int cluster, const char **user, const char **password)
{
  const tdm_conf_t *conf = be->conf;
  *user = conf && conf->cluster[cluster].username ? conf->cluster[cluster].username : "";
  *password = conf && conf->cluster[cluster].password ? conf->cluster[cluster].password : "";
}

uint64_t tdm__backend_connect_timeout(const tdm_backend_t *be, int cluster)
{
  const tdm_conf_t *conf = be->conf;
  int budget = conf ? conf->cluster[cluster].connection_timeout_ms : 30000;
  return (uint64_t)TDM_MIN(5000, budget > 0 ? budget : 30000);
}

uint64_t tdm__backend_handshake_timeout(const tdm_backend_t *be, int cluster, bool async)
{
  const tdm_conf_t *conf = be->conf;
  int ms = !conf ? 30000 : async ? conf->async_handshake_timeout_ms : conf->cluster[cluster].connection_timeout_ms;
  return (uint64_t)(ms > 0 ? ms : 30000);
}
