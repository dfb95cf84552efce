/* The instance's side of each worker thread: the hooks that build and tear down a tdm_proxy_worker_t
 * (buffer pool, backend, epoch, TLS and topology references), the handlers of CONF_SWAP, DRAIN and
 * STATS_REQ, and the main loop's ways to reach every worker: fire-and-forget CALLs (topology, events)
 * and a broadcast with a reply per worker (listener start, reload acknowledgement).
 *
 *   main loop                         worker thread                       main loop
 *   broadcast: CALL(slot) ─ inbox ──► fn(pw) ; push reply ─ main inbox ──► reply: --pending, done()
 *   (a CALL never delivered still sends its reply, with TDM_ECLOSED, from its cancel hook)
 *
 * Worker threads read the instance only for `plug` (constant after start) and their own slot. */
#include <stdatomic.h>
#include <tandem/obs/log.h>
#include "instance_internal.h"

static tdm__wslot_t *slot_of(tdm_proxy_worker_t *pw)
{
  return TDM_CONTAINER_OF(pw, tdm__wslot_t, pw);
}

static tdm_proxy_worker_t *current_pw(void)
{
  tdm_worker_t *w = tdm_worker_current();
  TDM_ASSERT(w != NULL);
  return w->data;
}

void tdm__instance_node_name(const tdm_node_t *node, char *buf, size_t cap)
{
  if (strchr(node->host, ':'))
    snprintf(buf, cap, "[%s]:%u", node->host, (unsigned)node->port);
  else
    snprintf(buf, cap, "%s:%u", node->host, (unsigned)node->port);
}

/* ---- hooks (worker thread) ---- */

static int hook_init(tdm_worker_t *w)
{
  tdm_proxy_worker_t *pw = w->data;
  tdm_instance_t *inst = pw->instance;
  pw->worker = w;
  pw->loop = &w->loop;
  pw->journal = inst->journal; /* written before this thread was created */
  pw->version_refused = tdm__instance_version_refused;
  tdm_list_init(&pw->clients);
  tdm_buf_pool_init(&pw->buf_pool, TDM__INSTANCE_BUF_BLOCK, TDM__INSTANCE_BUF_FREE);
  tdm_list_init(&slot_of(pw)->holds);
  if (inst->has_backend) {
    int rc = inst->plug.backend_new(&w->loop, &pw->buf_pool, &pw->backend);
    if (rc < 0)
      return rc;
    inst->plug.backend_set_conf(pw->backend, pw->conf);
    if (inst->plug.backend_set_tls)
      inst->plug.backend_set_tls(pw->backend, &pw->tls);
  }
  if (inst->plug.route_set_schema_hook)
    tdm__instance_schema_hook_init(slot_of(pw));
  return 0;
}

/* Closes what the data plane owns on this worker (idempotent): the frontend (listener, clients after a
 * last flush attempt), route requests, backend pools. Their handles finish closing in later loop
 * iterations, which is why the instance runs this before STOP (tdm__instance_worker_settled). */
static void close_plane(tdm_proxy_worker_t *pw)
{
  tdm_instance_t *inst = pw->instance;
  if (slot_of(pw)->plane_closed)
    return;
  slot_of(pw)->plane_closed = true;
  if (inst->has_frontend)
    inst->plug.frontend_stop(pw); /* a no-op when it never started */
  slot_of(pw)->frontend_on = false;
  if (inst->plug.route_set_schema_hook)
    inst->plug.route_set_schema_hook(pw, NULL);
  tdm__instance_schema_holds_drop(slot_of(pw));
  if (inst->plug.route_worker_close)
    inst->plug.route_worker_close(pw); /* requests still in flight give up; their legs are abandoned */
  if (pw->backend)
    inst->plug.backend_close(pw->backend);
  pw->backend = NULL;
}

void tdm__instance_worker_close_plane(tdm_proxy_worker_t *pw, void *arg, int *result)
{
  close_plane(pw);
}

typedef struct settle_count_s {
  tdm_worker_t *w; /* the worker */
  unsigned n;      /* foreign handles seen */
} settle_count_t;

static void count_foreign(uv_handle_t *h, void *arg)
{
  settle_count_t *sc = arg;
  const char *p = (const char *)h, *net = (const char *)&sc->w->net;
  if (h == (uv_handle_t *)&sc->w->inbox.async || (p >= net && p < net + sizeof(sc->w->net)))
    return; /* the worker's own infrastructure, closed by worker.c at STOP */
  sc->n++;
}

void tdm__instance_worker_settled(tdm_proxy_worker_t *pw, void *arg, int *result)
{
  settle_count_t sc = { pw->worker, 0 };
  uv_walk(pw->loop, count_foreign, &sc);
  if (sc.n)
    *result = TDM_EINVAL;
}

static void hook_fini(tdm_worker_t *w)
{
  tdm_proxy_worker_t *pw = w->data;
  close_plane(pw); /* a no-op after the shutdown's phase 1 */
  for (int c = 0; c < 2; c++) {
    tdm_topology_unref(pw->topology[c]);
    pw->topology[c] = NULL;
  }
  tdm_conf_unref(pw->conf);
  pw->conf = NULL;
  tdm_tls_set_clear(&pw->tls); /* open connections hold their own context references */
  tdm_buf_pool_destroy(&pw->buf_pool);
}

static void on_conf_swap(tdm_worker_t *w, tdm_msg_t *m)
{
  tdm_proxy_worker_t *pw = w->data;
  tdm_conf_t *conf = m->u.conf.ptr;
  m->u.conf.ptr = NULL; /* ours now */
  tdm_conf_t *old = pw->conf;
  pw->conf = conf;
  if (pw->backend)
    pw->instance->plug.backend_set_conf(pw->backend, conf);
  tdm_conf_unref(old); /* requests in flight keep their own reference to the epoch they began under */
}

static void on_drain(tdm_worker_t *w, tdm_msg_t *m)
{
  tdm_proxy_worker_t *pw = w->data;
  pw->draining = true;
  if (slot_of(pw)->frontend_on)
    pw->instance->plug.frontend_drain(pw);
}

static size_t list_length(const tdm_list_t *h)
{
  size_t n = 0;
  TDM_LIST_FOREACH(it, h)
    n++;
  return n;
}

/* Copies this worker's counters and node gauges into its slot; the reply that worker.c sends next
 * carries the happens-before edge to the main loop. The main loop freed the previous node arrays. */
static void on_stats_req(tdm_worker_t *w, tdm_msg_t *m)
{
  tdm_proxy_worker_t *pw = w->data;
  tdm_instance_t *inst = pw->instance;
  tdm__wsnap_t *snap = &slot_of(pw)->snap;
  snap->stats = pw->stats;
  snap->clients = list_length(&pw->clients);
  if (pw->backend && inst->plug.backend_late_responses) {
    /* Counted by the backend (the leg was abandoned, so no request sees the response); the larger of the
     * two sources is right whichever of them counts, and nothing is counted twice. */
    uint64_t lo = inst->plug.backend_late_responses(pw->backend, TDM_CONF_ORIGIN);
    uint64_t lt = inst->plug.backend_late_responses(pw->backend, TDM_CONF_TARGET);
    snap->stats.late_responses_origin = TDM_MAX(snap->stats.late_responses_origin, lo);
    snap->stats.late_responses_target = TDM_MAX(snap->stats.late_responses_target, lt);
  }
  if (pw->backend && inst->plug.backend_failed_connections) {
    /* counted by the backend, which sees every connection attempt (the route never does) */
    snap->stats.failed_connections_origin = inst->plug.backend_failed_connections(pw->backend, TDM_CONF_ORIGIN, false);
    snap->stats.failed_connections_target = inst->plug.backend_failed_connections(pw->backend, TDM_CONF_TARGET, false);
    snap->stats.failed_connections_async = inst->plug.backend_failed_connections(pw->backend, TDM_CONF_ORIGIN, true) +
                                           inst->plug.backend_failed_connections(pw->backend, TDM_CONF_TARGET, true);
  }
  for (int c = 0; c < 2; c++) {
    const tdm_topology_t *t = pw->topology[c];
    snap->nodes[c] = NULL;
    snap->n_nodes[c] = 0;
    if (!t || !t->n_nodes || !pw->backend)
      continue;
    snap->nodes[c] = calloc(t->n_nodes, sizeof(tdm__wnode_t));
    if (!snap->nodes[c])
      continue; /* this scrape shows no gauges for the cluster: better than failing it */
    for (size_t i = 0; i < t->n_nodes; i++) {
      tdm__wnode_t *n = &snap->nodes[c][i];
      tdm__instance_node_name(&t->nodes[i], n->name, sizeof(n->name));
      inst->plug.backend_node_stats(pw->backend, c, i, &n->g);
    }
    snap->n_nodes[c] = t->n_nodes;
  }
}

const tdm_worker_hooks_t tdm__instance_worker_hooks = {
  .init = hook_init,
  .fini = hook_fini,
  .on_msg = {
    [TDM_MSG_CONF_SWAP] = on_conf_swap,
    [TDM_MSG_DRAIN] = on_drain,
    [TDM_MSG_STATS_REQ] = on_stats_req,
  },
};

/* ---- broadcast with replies ---- */

typedef struct bslot_s {
  struct barrier_s *b; /* owner */
  int result;          /* written by the worker (or the cancel hook) before its reply is pushed */
  tdm_msg_t *reply;    /* preallocated CALL back to the main loop */
} bslot_t;

typedef struct barrier_s {
  tdm_instance_t *inst;   /* owner */
  bool when_closing;      /* run done even while the instance is closing */
  atomic_uint refs;       /* one per worker chain still alive + the sender's while sending */
  unsigned pending;       /* replies not yet run (main loop only) */
  int result;             /* first error reported (main loop only) */
  tdm__on_worker_fn fn;   /* runs on each worker */
  void *arg;              /* fn's and done's argument */
  tdm__done_fn done;      /* runs on the main loop at the last reply */
  bslot_t slots[];        /* one per worker */
} barrier_t;

static void barrier_unref(barrier_t *b)
{
  if (atomic_fetch_sub(&b->refs, 1) == 1)
    free(b);
}

/* Main loop: one worker answered. */
static void barrier_reply(void *arg)
{
  bslot_t *s = arg;
  barrier_t *b = s->b;
  tdm_instance_t *inst = b->inst;
  if (s->result < 0 && b->result == 0)
    b->result = s->result;
  if (--b->pending == 0 && (!inst->closing || b->when_closing))
    b->done(inst, b->arg, b->result);
  barrier_unref(b);
}

static void barrier_reply_lost(void *arg)
{
  bslot_t *s = arg;
  barrier_unref(s->b); /* the main inbox closed: the instance is gone, nobody waits */
}

/* Any thread: sends the slot's reply, or drops the chain if the main inbox is closed. */
static void barrier_send_reply(bslot_t *s)
{
  tdm_msg_t *r = s->reply;
  s->reply = NULL;
  if (tdm_inbox_push(&s->b->inst->inbox, r) < 0)
    tdm_msg_free(r); /* runs barrier_reply_lost */
}

static void barrier_on_worker(void *arg)
{
  bslot_t *s = arg;
  s->b->fn(current_pw(), s->b->arg, &s->result);
  barrier_send_reply(s);
}

static void barrier_not_delivered(void *arg)
{
  bslot_t *s = arg;
  s->result = TDM_ECLOSED;
  barrier_send_reply(s);
}

static int broadcast(tdm_instance_t *inst, tdm__on_worker_fn fn, void *arg, tdm__done_fn done, bool when_closing)
{
  unsigned n = inst->nstarted;
  barrier_t *b = calloc(1, sizeof(*b) + n * sizeof(bslot_t));
  tdm_msg_t **req = calloc(n ? n : 1, sizeof(*req));
  bool ok = b && req;
  for (unsigned i = 0; ok && i < n; i++) {
    b->slots[i].b = b;
    req[i] = tdm_msg_new_call(barrier_on_worker, &b->slots[i], barrier_not_delivered);
    b->slots[i].reply = tdm_msg_new_call(barrier_reply, &b->slots[i], barrier_reply_lost);
    ok = req[i] && b->slots[i].reply;
  }
  if (!ok) {
    for (unsigned i = 0; b && req && i < n; i++) {
      free(req[i]);
      free(b->slots[i].reply);
    }
    free(req);
    free(b);
    return TDM_ENOMEM;
  }
  b->inst = inst;
  b->when_closing = when_closing;
  b->fn = fn;
  b->arg = arg;
  b->done = done;
  b->pending = n;
  atomic_init(&b->refs, n + 1);
  for (unsigned i = 0; i < n; i++)
    if (tdm_worker_send(inst->wptrs[i], req[i]) < 0)
      tdm_msg_free(req[i]); /* runs barrier_not_delivered: the reply still comes, with TDM_ECLOSED */
  free(req);
  if (n == 0 && (!inst->closing || when_closing))
    done(inst, arg, 0); /* nothing will ever reply: callers accept this synchronous call */
  barrier_unref(b);
  return 0;
}

int tdm__instance_broadcast(tdm_instance_t *inst, tdm__on_worker_fn fn, void *arg, tdm__done_fn done)
{
  return broadcast(inst, fn, arg, done, false);
}

int tdm__instance_broadcast_closing(tdm_instance_t *inst, tdm__on_worker_fn fn, void *arg, tdm__done_fn done)
{
  return broadcast(inst, fn, arg, done, true);
}

/* ---- fire and forget ---- */

typedef struct topo_job_s {
  tdm_topology_t *topology; /* one reference for this worker */
  int cluster;              /* which cluster */
} topo_job_t;

static void topo_run(void *arg)
{
  topo_job_t *j = arg;
  tdm_proxy_worker_t *pw = current_pw();
  tdm_topology_t *old = pw->topology[j->cluster];
  pw->topology[j->cluster] = j->topology;
  if (pw->backend)
    pw->instance->plug.backend_set_topology(pw->backend, j->topology);
  tdm_topology_unref(old);
  free(j);
}

static void topo_cancel(void *arg)
{
  topo_job_t *j = arg;
  tdm_topology_unref(j->topology);
  free(j);
}

void tdm__instance_publish_topology(tdm_instance_t *inst, int cluster, tdm_topology_t *topology)
{
  for (unsigned i = 0; i < inst->nstarted; i++) {
    topo_job_t *j = malloc(sizeof(*j));
    tdm_msg_t *m = j ? tdm_msg_new_call(topo_run, j, topo_cancel) : NULL;
    if (!m) {
      free(j);
      tdm_log_error(NULL, "worker %u: out of memory publishing a %s topology", i, cluster ? "TARGET" : "ORIGIN");
      continue;
    }
    j->topology = tdm_topology_ref(topology);
    j->cluster = cluster;
    if (tdm_worker_send(inst->wptrs[i], m) < 0)
      tdm_msg_free(m); /* runs topo_cancel */
  }
}

/* One EVENT body shared by every worker. */
typedef struct event_blob_s {
  atomic_uint refs; /* one per worker message */
  char type[24];    /* "SCHEMA_CHANGE", "TOPOLOGY_CHANGE" */
  size_t len;       /* body length */
  uint8_t body[];   /* EVENT body */
} event_blob_t;

static void blob_unref(event_blob_t *b)
{
  if (atomic_fetch_sub(&b->refs, 1) == 1)
    free(b);
}

static void event_run(void *arg)
{
  event_blob_t *b = arg;
  tdm_proxy_worker_t *pw = current_pw();
  if (slot_of(pw)->frontend_on)
    pw->instance->plug.frontend_broadcast_event(pw, b->type, b->body, b->len);
  blob_unref(b);
}

static void event_cancel(void *arg)
{
  blob_unref(arg);
}

void tdm__instance_publish_event(tdm_instance_t *inst, const char *type, const uint8_t *body, size_t len)
{
  if (!inst->has_frontend || inst->nstarted == 0)
    return;
  event_blob_t *b = malloc(sizeof(*b) + len);
  if (!b) {
    tdm_log_error(NULL, "out of memory forwarding a %s event", type);
    return;
  }
  snprintf(b->type, sizeof(b->type), "%s", type);
  memcpy(b->body, body, len);
  b->len = len;
  atomic_init(&b->refs, inst->nstarted + 1);
  for (unsigned i = 0; i < inst->nstarted; i++) {
    tdm_msg_t *m = tdm_msg_new_call(event_run, b, event_cancel);
    if (!m) {
      blob_unref(b);
      continue;
    }
    if (tdm_worker_send(inst->wptrs[i], m) < 0)
      tdm_msg_free(m); /* runs event_cancel */
  }
  blob_unref(b);
}

static void conf_release(void *ptr)
{
  tdm_conf_unref(ptr);
}

void tdm__instance_publish_conf(tdm_instance_t *inst, tdm_conf_t *conf)
{
  for (unsigned i = 0; i < inst->nstarted; i++) {
    tdm_msg_t *m = tdm_msg_new_conf(tdm_conf_ref(conf), conf_release);
    if (!m) {
      tdm_conf_unref(conf);
      tdm_log_error(NULL, "worker %u: out of memory publishing epoch %llu", i, (unsigned long long)conf->epoch);
      continue;
    }
    if (tdm_worker_send(inst->wptrs[i], m) < 0)
      tdm_msg_free(m); /* releases the reference */
  }
}

/* A worker's new TLS contexts: the frontend reads pw->tls at each accept, the backend keeps a copy. */
static void tls_run(void *arg)
{
  tdm_tls_set_t *set = arg;
  tdm_proxy_worker_t *pw = current_pw();
  tdm_tls_set_t old = pw->tls;
  pw->tls = *set; /* the message's references become the worker's */
  if (pw->backend && pw->instance->plug.backend_set_tls)
    pw->instance->plug.backend_set_tls(pw->backend, &pw->tls);
  tdm_tls_set_clear(&old);
  free(set);
}

static void tls_cancel(void *arg)
{
  tdm_tls_set_clear(arg);
  free(arg);
}

void tdm__instance_publish_tls(tdm_instance_t *inst)
{
  for (unsigned i = 0; i < inst->nstarted; i++) {
    tdm_tls_set_t *set = calloc(1, sizeof(*set));
    tdm_msg_t *m = set ? tdm_msg_new_call(tls_run, set, tls_cancel) : NULL;
    if (!m) {
      free(set);
      tdm_log_error(NULL, "worker %u: out of memory publishing TLS contexts; it keeps the previous ones", i);
      continue;
    }
    tdm_tls_set_copy(set, &inst->tls);
    if (tdm_worker_send(inst->wptrs[i], m) < 0)
      tdm_msg_free(m); /* runs tls_cancel */
  }
}

void tdm__instance_send_drain(tdm_instance_t *inst)
{
  for (unsigned i = 0; i < inst->nstarted; i++) {
    tdm_msg_t *m = tdm_msg_new(TDM_MSG_DRAIN);
    if (!m) {
      tdm_log_error(NULL, "worker %u: out of memory sending DRAIN", i);
      continue;
    }
    m->u.drain.timeout_ms = inst->conf ? (uint64_t)inst->conf->shutdown_drain_timeout_ms : 0;
    if (tdm_worker_send(inst->wptrs[i], m) < 0)
      tdm_msg_free(m);
  }
}
