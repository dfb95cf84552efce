/* Schema agreement on the control connection (behaviour.md §5.3): while someone waits, every 200 ms
 * read schema_version from system.local and system.peers(_v2); agreement is every live node (not DOWN
 * in the current snapshot, version not null) reporting the control node's version. Waiters hear true
 * at the first agreement, false when their own wait ends (or the control connection closes). */
#include <tandem/obs/log.h>
#include "internal.h"

static void finish_all(tdm_control_t *c, bool agreed)
{
  tdm_list_t done;
  tdm_list_init(&done);
  tdm_list_splice_tail(&done, &c->waiters);
  tdm_list_t *n;
  while ((n = tdm_list_pop(&done))) {
    tdm__schema_waiter_t *w = TDM_CONTAINER_OF(n, tdm__schema_waiter_t, link);
    w->cb(w->arg, agreed);
    free(w);
  }
  if (!c->closing) uv_timer_stop(&c->poll);
}

void tdm__ctl_schema_fail_all(tdm_control_t *c) { finish_all(c, false); }

static void expire(tdm_control_t *c, uint64_t now)
{
  TDM_LIST_FOREACH_SAFE(it, tmp, &c->waiters)
  {
    tdm__schema_waiter_t *w = TDM_CONTAINER_OF(it, tdm__schema_waiter_t, link);
    if (now < w->deadline) continue;
    tdm_list_remove(&w->link);
    w->cb(w->arg, false);
    free(w);
  }
  if (tdm_list_empty(&c->waiters) && !c->closing) uv_timer_stop(&c->poll);
}

static void on_poll_peers(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  c->poll_inflight = false;
  tdm__rows_t peers = { 0 };
  if (err < 0 || !r || tdm__rows_parse(c->version, r, &peers) < 0 || c->poll_local.n != 1) {
    tdm__rows_free(&peers);
    tdm__rows_free(&c->poll_local);
    return;
  }
  char mine[40], theirs[40], host[64];
  const tdm_column_t *local = tdm__rows_col(&c->poll_local, 0, "schema_version");
  tdm__cell_uuid(local, mine, sizeof(mine));
  bool agreed = mine[0] != '\0';
  uint16_t def_port = (uint16_t)c->conf->cluster[c->cluster].port;
  for (size_t i = 0; agreed && i < peers.n; i++) {
    tdm__cell_uuid(tdm__rows_col(&peers, i, "schema_version"), theirs, sizeof(theirs));
    if (!theirs[0]) continue;
    uint16_t port;
    if (tdm__peer_address(&peers, i, def_port, host, sizeof(host), &port) == 0) {
      int idx = tdm_topology_find_node(c->topo, host, port);
      if (idx >= 0 && c->topo->nodes[idx].state == TDM_NODE_DOWN) continue;
    }
    agreed = strcmp(mine, theirs) == 0;
  }
  (void)tdm__ctl_note_schema(c, local);
  tdm__rows_free(&peers);
  tdm__rows_free(&c->poll_local);
  if (agreed) {
    tdm_log_debug(NULL, "%s schema agreement on %s", tdm__cluster_name(c->cluster), mine);
    finish_all(c, true);
  }
}

static void on_poll_local(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  tdm__rows_free(&c->poll_local);
  if (err < 0 || !r || tdm__rows_parse(c->version, r, &c->poll_local) < 0 || c->poll_local.n != 1) {
    c->poll_inflight = false;
    return;
  }
  int rc = tdm__ctl_query(c, c->peers_v2 ? "SELECT * FROM system.peers_v2" : "SELECT * FROM system.peers",
                          on_poll_peers);
  if (rc < 0) c->poll_inflight = false;
}

void tdm__ctl_schema_poll(tdm_control_t *c)
{
  if (!c->up || c->poll_inflight || tdm_list_empty(&c->waiters)) return;
  int rc = tdm__ctl_query(c, "SELECT schema_version FROM system.local WHERE key='local'", on_poll_local);
  if (rc == 0) c->poll_inflight = true;
}

static void on_poll(uv_timer_t *t)
{
  tdm_control_t *c = t->data;
  expire(c, uv_now(c->loop));
  tdm__ctl_schema_poll(c);
}

void tdm_control_wait_schema_agreement(tdm_control_t *c, int wait_ms, void (*cb)(void *arg, bool agreed), void *arg)
{
  if (c->closing) {
    cb(arg, false);
    return;
  }
  tdm__schema_waiter_t *w = calloc(1, sizeof(*w));
  if (!w) {
    cb(arg, false);
    return;
  }
  w->deadline = uv_now(c->loop) + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
  w->cb = cb;
  w->arg = arg;
  tdm_list_insert_tail(&c->waiters, &w->link);
  /* first poll at once (next loop iteration), then every 200 ms; answers never come synchronously */
  if (!uv_is_active((uv_handle_t *)&c->poll)) uv_timer_start(&c->poll, on_poll, 0, TDM__CTL_SCHEMA_POLL_MS);
}
