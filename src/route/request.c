/* The life of one request and its legs: objects from a per-worker freelist, the request deadline (one
 * timer per worker, deadlines.c), leg callbacks, aggregation (route/aggregate.c decides), the single
 * answer, the schema hold, metrics, and recycling. dispatch.c builds a request and calls
 * tdm__route_req_start; everything after is here.
 *
 *   dispatch ──> req_new (freelist, plain memory) ──> req_start
 *                  │  deadline armed: now + proxy_request_timeout_ms of the request's epoch
 *                  │  a needed cluster unreachable ──> UNAVAILABLE, nothing sent ─────────────┐
 *                  │  (PRIMARY_WINS: unreachable secondary ──> primary only, counted)          │
 *                  └─ legs sent in the same loop iteration ──> [SENT]                          │
 *   on_response ── UNPREPARED & prepared ──> [REPREPARE] ── PREPARE pinned to that node        │
 *        │                                      └─ ok ──> resend once ──> [SENT]               │
 *        └─> [DONE] outcome ──┐      on_failure ──> [DONE] LOST (written) / UNAVAILABLE         │
 *   deadline ──> [ABANDONED]: SILENT (written) / OVERLOADED (queued) ──┤                         │
 *                             v                                                                 │
 *                      tdm_agg_decide ── WAIT ──> (more outcomes)                               │
 *                             │ FORWARD / REWRITE / TIMEOUT (early answer allowed)              │
 *                             v                                                                 │
 *                      answer once ── DDL: schema hold (hook) until agreement or deadline       │
 *                             v                                                                 │
 *                      no leg SENT/REPREPARE, no hold ──> metrics, LWT, journal ──> freelist <──┘
 *
 * Invariants: exactly one tdm_client_respond*() per sync request unless the client left (detached);
 * the backend owns a callback on a leg exactly while the leg is SENT or REPREPARE; a request is
 * recycled only when none of its legs is, so no callback ever reaches a recycled object; a request is
 * armed on the worker's deadline list from its start until it expires or is recycled. */
#include <tandem/obs/log.h>
#include "internal.h"

static void on_leg_response(tdm_leg_t *leg, const tdm_frame_header_t *h, tdm_slice_t *slice, const uint8_t *body,
                            size_t len);
static void on_leg_failure(tdm_leg_t *leg, int err, bool written, const char *reason);

/* ---- per-worker state and the freelist ---- */

tdm_route_worker_t *tdm__route_worker(tdm_proxy_worker_t *pw)
{
  if (pw->route) return pw->route;
  tdm_route_worker_t *rw = calloc(1, sizeof(*rw));
  if (!rw) return NULL;
  rw->pw = pw;
  tdm_list_init(&rw->live);
  tdm_list_init(&rw->free);
  rw->rng = (uint64_t)(uintptr_t)pw ^ uv_hrtime() ^ ((uint64_t)pw->index << 32);
  if (!rw->rng) rw->rng = 0x9e3779b97f4a7c15ull;
  pw->route = rw;
  return rw;
}

tdm_route_req_t *tdm__route_req_new(tdm_route_worker_t *rw, tdm__req_kind_t kind, tdm_client_t *client,
                                    const tdm_frame_header_t *h, tdm_slice_t *body, size_t off, size_t len)
{
  tdm_route_req_t *req;
  tdm_list_t *n = tdm_list_pop(&rw->free);
  if (n) {
    req = TDM_CONTAINER_OF(n, tdm_route_req_t, link);
    rw->nfree--;
  } else {
    req = malloc(sizeof(*req));
    if (!req) return NULL;
    req->rw = rw;
  }
  /* Everything from the deadline on is per use (a recycled object is disarmed: zeroing is safe). */
  memset((char *)req + offsetof(tdm_route_req_t, deadline), 0,
         sizeof(*req) - offsetof(tdm_route_req_t, deadline));
  tdm_list_init(&req->link);
  req->kind = (uint8_t)kind;
  req->opcode = h->opcode;
  req->version = h->version;
  req->flags = h->flags;
  req->stream = h->stream;
  req->client = client;
  tdm_client_ref(client);
  req->conf = tdm_conf_ref(rw->pw->conf);
  req->start_ms = uv_now(rw->pw->loop);
  req->body = tdm_slice_ref(body);
  req->body_off = off;
  req->body_len = len;
  req->batch_type = -1;
  req->metric_type = -1;
  req->policy = req->conf->write_divergence_policy;
  req->success_cluster = req->conf->primary_cluster;
  req->children = req->children_inline;
  req->answered = kind == TDM__REQ_ASYNC;
  for (int c = 0; c < 2; c++) {
    tdm_leg_init(&req->legs[c].leg);
    req->legs[c].cluster = c;
  }
  tdm_list_insert_tail(&rw->live, &req->link);
  rw->nlive++;
  return req;
}

static void release_leg(tdm__route_leg_t *rl)
{
  tdm_slice_unref(rl->resp);
  rl->resp = NULL;
  tdm_slice_unref(rl->body);
  rl->body = NULL;
  tdm_prepared_entry_unref(rl->rp_entry);
  rl->rp_entry = NULL;
  tdm_slice_unref(rl->rp_body);
  rl->rp_body = NULL;
}

static void recycle(tdm_route_req_t *req)
{
  tdm_route_worker_t *rw = req->rw;
  tdm__route_timer_disarm(req);
  for (int c = 0; c < 2; c++) release_leg(&req->legs[c]);
  tdm_prepared_entry_unref(req->entry);
  for (uint16_t i = 0; i < req->n_children; i++) tdm_prepared_entry_unref(req->children[i]);
  if (req->children != req->children_inline) free(req->children);
  req->children = req->children_inline;
  req->n_children = 0;
  req->entry = NULL;
  tdm_slice_unref(req->body);
  req->body = NULL;
  tdm_conf_unref(req->conf);
  req->conf = NULL;
  tdm_client_unref(req->client);
  req->client = NULL;
  tdm_list_remove(&req->link);
  rw->nlive--;
  if (rw->closing || rw->nfree >= TDM__ROUTE_FREE_MAX) {
    free(req);
  } else {
    tdm_list_insert_head(&rw->free, &req->link);
    rw->nfree++;
  }
}

void tdm__route_req_discard(tdm_route_req_t *req) { recycle(req); }

/* ---- metrics ---- */

tdm_request_error_t tdm__route_error_class(uint32_t code)
{
  switch (code) {
  case TDM_ERR_READ_TIMEOUT: return TDM_REQERR_read_timeout;
  case TDM_ERR_READ_FAILURE: return TDM_REQERR_read_failure;
  case TDM_ERR_WRITE_TIMEOUT: return TDM_REQERR_write_timeout;
  case TDM_ERR_WRITE_FAILURE: return TDM_REQERR_write_failure;
  case TDM_ERR_OVERLOADED: return TDM_REQERR_overloaded;
  case TDM_ERR_UNAVAILABLE: return TDM_REQERR_unavailable;
  case TDM_ERR_UNPREPARED: return TDM_REQERR_unprepared;
  default: return TDM_REQERR_other;
  }
}

static const tdm_conf_doubles_t *cluster_bounds(const tdm_conf_t *conf, int idx)
{
  return idx == 0 ? &conf->metrics_origin_latency_buckets_ms
         : idx == 1 ? &conf->metrics_target_latency_buckets_ms
                    : &conf->metrics_async_read_latency_buckets_ms;
}

/* A leg outcome arrived: {c}_request_duration and {c}_requests_failed (§13.1). */
static void leg_metrics(tdm_route_req_t *req, const tdm__route_leg_t *rl)
{
  tdm_proxy_stats_t *st = &tdm__route_pw(req)->stats;
  int idx = req->kind == TDM__REQ_ASYNC ? 2 : rl->cluster;
  bool counted = req->kind == TDM__REQ_ASYNC || req->metric_type >= 0;
  if (counted && rl->synth == TDM__SYNTH_NONE && (rl->agg.outcome == TDM_AGG_OK || rl->agg.outcome == TDM_AGG_ERROR))
    tdm_hist_observe(&st->cluster_latency[idx][req->metric_type == 2 ? 1 : 0], cluster_bounds(req->conf, idx),
                     (double)(tdm__route_now(req) - rl->sent_ms));
  if (rl->agg.outcome == TDM_AGG_ERROR)
    st->requests_failed[idx][tdm__route_error_class(rl->agg.code)]++;
  else if (rl->agg.outcome == TDM_AGG_SILENT)
    st->requests_failed[idx][TDM_REQERR_client_timeout]++;
  else if (rl->agg.outcome == TDM_AGG_LOST)
    st->requests_failed[idx][TDM_REQERR_other]++;
}

static uint64_t *inflight_gauge(tdm_route_req_t *req)
{
  tdm_proxy_stats_t *st = &tdm__route_pw(req)->stats;
  return req->metric_type == 0 ? &st->reads_inflight_origin
         : req->metric_type == 1 ? &st->reads_inflight_target
                                 : &st->writes_inflight;
}

/* pool_queue_wait (§13.1): how long a leg the backend had to queue waited, from its hand-over to its
 * write, or to `now` when it is given up while still queued. Observed once per hand-over, at the leg's
 * first outcome; the bounds are metrics_origin_latency_buckets_ms (core/proxy.h). */
static void queue_wait(tdm_route_req_t *req, const tdm__route_leg_t *rl)
{
  if (!rl->leg.queued) return;
  uint64_t until = rl->leg.sent_at_ms ? rl->leg.sent_at_ms : tdm__route_now(req);
  tdm_hist_observe(&tdm__route_pw(req)->stats.pool_queue_wait, &req->conf->metrics_origin_latency_buckets_ms,
                   until > rl->sent_ms ? (double)(until - rl->sent_ms) : 0.0);
}

/* ---- legs ---- */

void tdm__route_leg_set_body(tdm__route_leg_t *rl, tdm_slice_t *slice, size_t off, size_t len, uint8_t flags)
{
  tdm_slice_unref(rl->body);
  rl->body = tdm_slice_ref(slice);
  rl->body_off = off;
  rl->body_len = len;
  rl->body_flags = flags;
}

void tdm__route_session_key(const tdm_route_req_t *req, int cluster, const char *ks, tdm_session_key_t *out)
{
  const tdm_client_view_t *v = tdm_client_view(req->client);
  *out = v->key[cluster];
  if (req->kind == TDM__REQ_ASYNC) out->async = true;
  if (ks && !tdm_proto_has_request_keyspace(req->version)) out->keyspace = ks;
}

int tdm__route_leg_send(tdm_route_req_t *req, tdm__route_leg_t *rl, uint8_t opcode, int node)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  /* USE runs on the pool of the new keyspace (§5.3); a re-prepare and its retry on the pool of the
   * keyspace the statement was prepared under (§7.3). */
  const char *ks = rl->rp_entry ? rl->rp_entry->keyspace : req->kind == TDM__REQ_USE && req->ks_len ? req->ks : NULL;
  tdm_session_key_t key;
  tdm__route_session_key(req, rl->cluster, ks, &key);
  tdm_leg_init(&rl->leg);
  rl->leg.cluster = rl->cluster;
  rl->leg.opcode = opcode;
  bool prep = opcode == TDM_OP_PREPARE && rl->rp_body; /* the internal PREPARE of §7.3 */
  rl->leg.flags = prep ? (uint8_t)(req->flags & ~TDM_FLAG_COMPRESSED) : rl->body_flags;
  rl->leg.body = prep ? rl->rp_body : rl->body;
  rl->leg.body_off = prep ? 0 : rl->body_off;
  rl->leg.body_len = prep ? rl->rp_len : rl->body_len;
  rl->leg.pin_node = node;
  rl->leg.on_response = on_leg_response;
  rl->leg.on_failure = on_leg_failure;
  rl->leg.owner = req;
  rl->state = prep ? TDM__LEG_REPREPARE : TDM__LEG_SENT;
  rl->agg = (tdm_agg_leg_t){ TDM_AGG_PENDING, 0 };
  rl->sent_ms = uv_now(pw->loop);
  int rc = tdm_backend_send(pw->backend, &key, &rl->leg);
  if (rc < 0) rl->state = TDM__LEG_IDLE;
  return rc;
}

void tdm__route_leg_synth(tdm__route_leg_t *rl, tdm__synth_t why)
{
  static const uint32_t codes[] = {
    [TDM__SYNTH_UNREACHABLE] = TDM_ERR_UNAVAILABLE, [TDM__SYNTH_NO_CAPACITY] = TDM_ERR_OVERLOADED,
    [TDM__SYNTH_UNPREPARED] = TDM_ERR_UNPREPARED,   [TDM__SYNTH_BAD_RESPONSE] = TDM_ERR_SERVER_ERROR,
  };
  TDM_ASSERT(why > TDM__SYNTH_NONE && why < (int)TDM_ARRAY_SIZE(codes));
  tdm_slice_unref(rl->resp);
  rl->resp = NULL;
  rl->state = TDM__LEG_DONE;
  rl->synth = (uint8_t)why;
  rl->agg = (tdm_agg_leg_t){ TDM_AGG_ERROR, codes[why] };
}

void tdm__route_leg_response(tdm_route_req_t *req, tdm__route_leg_t *rl, const tdm_frame_header_t *h,
                             tdm_slice_t *slice, const uint8_t *body, size_t len)
{
  tdm_slice_unref(rl->resp);
  rl->resp = tdm_slice_ref(slice);
  rl->resp_body = body;
  rl->resp_len = len;
  rl->resp_opcode = h->opcode;
  rl->resp_flags = h->flags;
  rl->state = TDM__LEG_DONE;
  rl->synth = TDM__SYNTH_NONE;
  if (h->opcode != TDM_OP_ERROR) {
    rl->agg = (tdm_agg_leg_t){ TDM_AGG_OK, 0 };
    return;
  }
  tdm__msg_t m;
  uint32_t code;
  if (tdm__route_resp_open(req, rl, &m) < 0) {
    tdm__route_leg_synth(rl, TDM__SYNTH_BAD_RESPONSE);
    return;
  }
  int rc = tdm_response_peek_error_code(m.buf + m.msg_off, m.len - m.msg_off, &code, NULL);
  tdm__route_msg_close(tdm__route_pw(req), &m);
  if (rc < 0)
    tdm__route_leg_synth(rl, TDM__SYNTH_BAD_RESPONSE);
  else
    rl->agg = (tdm_agg_leg_t){ TDM_AGG_ERROR, code };
}

/* "host:port" of the node a leg went to, for error texts only: a failure records the backend's reason
 * in rl->node; otherwise it is formatted here, on demand, so a successful response costs no snprintf. */
static const char *node_text(tdm_route_req_t *req, const tdm__route_leg_t *rl, char *buf, size_t cap)
{
  if (rl->node[0]) return rl->node;
  const tdm_topology_t *t = tdm__route_pw(req)->topology[rl->cluster];
  buf[0] = '\0';
  if (t && rl->leg.node >= 0 && (size_t)rl->leg.node < t->n_nodes)
    snprintf(buf, cap, "%s:%u", t->nodes[rl->leg.node].host, t->nodes[rl->leg.node].port);
  return buf;
}

static void on_leg_response(tdm_leg_t *leg, const tdm_frame_header_t *h, tdm_slice_t *slice, const uint8_t *body,
                            size_t len)
{
  tdm_route_req_t *req = leg->owner;
  tdm__route_leg_t *rl = TDM_CONTAINER_OF(leg, tdm__route_leg_t, leg);
  TDM_ASSERT(rl->state == TDM__LEG_SENT || rl->state == TDM__LEG_REPREPARE);
  tdm__route_enter(req);
  queue_wait(req, rl);
  rl->node[0] = '\0'; /* formatted on demand by node_text() if an error text needs it */
  bool was_reprepare = rl->state == TDM__LEG_REPREPARE;
  tdm__route_leg_response(req, rl, h, slice, body, len);
  if (was_reprepare) {
    /* The internal PREPARE answered: prepared_flow resends, or gives up with UNPREPARED. */
    tdm__route_reprepared(req, rl);
  } else {
    leg_metrics(req, rl);
    if (rl->agg.outcome == TDM_AGG_ERROR && rl->agg.code == TDM_ERR_UNPREPARED && rl->synth == TDM__SYNTH_NONE &&
        (req->entry || req->n_children)) {
      if (!rl->reprepared)
        (void)tdm__route_reprepare(req, rl); /* on failure the leg is DONE with a made-up UNPREPARED */
      else
        tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED); /* a second UNPREPARED: the client re-prepares */
    }
  }
  req->settle = true;
  tdm__route_leave(req);
}

static void on_leg_failure(tdm_leg_t *leg, int err, bool written, const char *reason)
{
  tdm_route_req_t *req = leg->owner;
  tdm__route_leg_t *rl = TDM_CONTAINER_OF(leg, tdm__route_leg_t, leg);
  TDM_ASSERT(rl->state == TDM__LEG_SENT || rl->state == TDM__LEG_REPREPARE);
  tdm__route_enter(req);
  queue_wait(req, rl);
  snprintf(rl->node, sizeof(rl->node), "%s", reason ? reason : "");
  if (rl->state == TDM__LEG_REPREPARE) {
    /* The re-prepare itself failed: the statement never ran here (§7.3). */
    tdm_proxy_stats_t *st = &tdm__route_pw(req)->stats;
    if (rl->cluster == TDM_CONF_ORIGIN) st->pscache_reprepares_failed_origin++;
    else st->pscache_reprepares_failed_target++;
    tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED);
  } else if (!written) {
    tdm__route_leg_synth(rl, TDM__SYNTH_UNREACHABLE);
  } else if (err == TDM_EPROTO_MALFORMED) {
    tdm__route_leg_synth(rl, TDM__SYNTH_BAD_RESPONSE);
  } else {
    rl->state = TDM__LEG_DONE;
    rl->agg = (tdm_agg_leg_t){ TDM_AGG_LOST, 0 };
  }
  leg_metrics(req, rl);
  req->settle = true;
  tdm__route_leave(req);
}

bool tdm__route_any_active(const tdm_route_req_t *req)
{
  for (int c = 0; c < 2; c++)
    if (req->legs[c].state == TDM__LEG_SENT || req->legs[c].state == TDM__LEG_REPREPARE) return true;
  return false;
}

/* ---- answering ---- */

/* The message of a made-up ERROR. */
static void synth_message(tdm_route_req_t *req, const tdm__route_leg_t *rl, char *buf, size_t cap)
{
  switch (rl->synth) {
  case TDM__SYNTH_UNREACHABLE: tdm_agg_format_unreachable(buf, cap, rl->cluster); break;
  case TDM__SYNTH_NO_CAPACITY:
    tdm_agg_format_no_capacity(buf, cap, rl->cluster, req->conf->proxy_request_timeout_ms);
    break;
  case TDM__SYNTH_UNPREPARED: {
    const uint8_t *id;
    size_t n;
    tdm__route_unprepared_id(req, rl, &id, &n);
    tdm_agg_format_unprepared(buf, cap, id, n);
    break;
  }
  default: {
    char node[TDM__ROUTE_NODE_MAX];
    const char *at = node_text(req, rl, node, sizeof(node));
    snprintf(buf, cap, "tandem: undecodable response from %s%s%s", tdm_agg_cluster_name(rl->cluster),
             at[0] ? " " : "", at);
    break;
  }
  }
}

void tdm__route_leg_error_text(tdm_route_req_t *req, const tdm__route_leg_t *rl, char *buf, size_t cap)
{
  char msg[512];
  if (rl->state == TDM__LEG_IDLE && req->secondary_skipped) {
    /* PRIMARY_WINS with the secondary unreachable at dispatch: the leg was never sent (§6.2) */
    tdm_agg_format_unreachable(msg, sizeof(msg), rl->cluster);
    snprintf(buf, cap, "%s: %s (not sent)", tdm_error_code_name(TDM_ERR_UNAVAILABLE), msg);
    return;
  }
  switch (rl->agg.outcome) {
  case TDM_AGG_SILENT:
    snprintf(buf, cap, "no response from %s within %d ms", tdm_agg_cluster_name(rl->cluster),
             req->conf->proxy_request_timeout_ms);
    return;
  case TDM_AGG_LOST:
    snprintf(buf, cap, "connection to %s %s lost", tdm_agg_cluster_name(rl->cluster), rl->node[0] ? rl->node : "?");
    return;
  case TDM_AGG_ERROR: break;
  default: snprintf(buf, cap, "no outcome"); return;
  }
  if (rl->synth) {
    synth_message(req, rl, msg, sizeof(msg));
    snprintf(buf, cap, "%s: %s", tdm_error_code_name(rl->agg.code), msg);
    return;
  }
  tdm__msg_t m;
  uint32_t code = rl->agg.code;
  tdm_str_t text = TDM_STR("");
  bool opened = rl->resp && tdm__route_resp_open(req, rl, &m) == 0;
  if (opened && tdm_response_peek_error_code(m.buf + m.msg_off, m.len - m.msg_off, &code, &text) < 0)
    text = TDM_STR("");
  snprintf(buf, cap, "%s: %.*s", tdm_error_code_name(code), (int)text.len, text.ptr ? text.ptr : "");
  if (opened) tdm__route_msg_close(tdm__route_pw(req), &m);
}

static void respond_error(tdm_route_req_t *req, const tdm_response_error_t *e)
{
  (void)tdm_client_respond_error(req->client, req->stream, e);
}

static void answer_synth(tdm_route_req_t *req, const tdm__route_leg_t *rl)
{
  char msg[512];
  synth_message(req, rl, msg, sizeof(msg));
  tdm_response_error_t e;
  if (rl->synth == TDM__SYNTH_UNREACHABLE) {
    tdm_agg_unavailable_error(req->consistency, tdm_str_from(msg), &e);
  } else {
    memset(&e, 0, sizeof(e));
    e.code = rl->agg.code;
    e.message = tdm_str_from(msg);
    if (rl->synth == TDM__SYNTH_UNPREPARED) {
      const uint8_t *id;
      size_t n;
      tdm__route_unprepared_id(req, rl, &id, &n);
      e.unprepared_id = (tdm_bytes_t){ id, (int32_t)n };
    }
  }
  respond_error(req, &e);
}

/* REWRITE: SERVER_ERROR naming the side that applied and the not-executed error of the other. */
static void answer_rewrite(tdm_route_req_t *req, const tdm_agg_decision_t *d)
{
  const tdm__route_leg_t *rl = &req->legs[d->cluster];
  char orig[512], msg[1024];
  tdm_str_t text = TDM_STR("");
  tdm__msg_t m = { 0 };
  bool opened = false;
  if (rl->synth) {
    synth_message(req, rl, orig, sizeof(orig));
    text = tdm_str_from(orig);
  } else if (tdm__route_resp_open(req, rl, &m) == 0) {
    opened = true;
    uint32_t code;
    if (tdm_response_peek_error_code(m.buf + m.msg_off, m.len - m.msg_off, &code, &text) < 0) text = TDM_STR("");
  }
  tdm_agg_format_rewrite(msg, sizeof(msg), d->ok_cluster, d->cluster, rl->agg.code, text);
  if (opened) tdm__route_msg_close(tdm__route_pw(req), &m);
  tdm_response_error_t e = { .code = TDM_ERR_SERVER_ERROR, .message = tdm_str_from(msg) };
  respond_error(req, &e);
}

static void answer_timeout(tdm_route_req_t *req, const tdm_agg_decision_t *d)
{
  const char *nodes[2] = { req->legs[0].node, req->legs[1].node };
  char msg[512];
  tdm_agg_format_timeout(msg, sizeof(msg), d->silent, d->lost, d->applied, nodes, req->conf->proxy_request_timeout_ms);
  tdm_response_error_t e;
  tdm_agg_timeout_error(req->agg_class, req->consistency, req->batch_type, tdm_str_from(msg), &e);
  respond_error(req, &e);
}

static void hold_done(void *arg, bool agreed);

/* Whether a forwarded success must wait for schema agreement first (§5.3); starts the hold if so. */
static bool start_hold(tdm_route_req_t *req, const tdm_agg_decision_t *d)
{
  tdm_route_worker_t *rw = req->rw;
  const tdm__route_leg_t *rl = &req->legs[d->cluster];
  if (!rw->hook.wait || req->route.dest != TDM_ROUTE_BOTH || req->conf->schema_agreement_wait_ms <= 0 ||
      rl->resp_opcode != TDM_OP_RESULT)
    return false;
  tdm__msg_t m;
  int32_t kind = 0;
  if (tdm__route_resp_open(req, rl, &m) < 0) return false;
  int rc = tdm_response_peek_result_kind(m.buf + m.msg_off, m.len - m.msg_off, &kind);
  tdm__route_msg_close(rw->pw, &m);
  if (rc < 0 || kind != TDM_RESULT_SCHEMA_CHANGE) return false;
  uint64_t elapsed = tdm__route_now(req) - req->start_ms;
  uint64_t left = (uint64_t)req->conf->proxy_request_timeout_ms > elapsed
                      ? (uint64_t)req->conf->proxy_request_timeout_ms - elapsed : 0;
  int wait = (int)TDM_MIN((uint64_t)req->conf->schema_agreement_wait_ms, left);
  req->holding = true;
  req->held = *d;
  req->hold_starting = true;
  rw->hook.wait(rw->hook.arg, wait, hold_done, req);
  req->hold_starting = false;
  return req->holding; /* false when done() already ran inside wait(): answer now */
}

/* Sends the one answer the decision names; a DDL success may be held first (allow_hold). */
static void answer(tdm_route_req_t *req, const tdm_agg_decision_t *d, bool allow_hold)
{
  if (d->action == TDM_AGG_FORWARD) {
    tdm__route_leg_t *rl = &req->legs[d->cluster];
    if (rl->synth) {
      answer_synth(req, rl);
    } else {
      if (rl->agg.outcome == TDM_AGG_OK && req->kind == TDM__REQ_PREPARE && tdm__route_prepare_store(req) < 0) {
        /* Forwarding it would hand out an id EXECUTE cannot resolve: the driver would loop. */
        (void)tdm_client_respond_errorf(req->client, req->stream, TDM_ERR_SERVER_ERROR,
                                        "tandem: cannot record the prepared statement (undecodable PREPARED result)");
        goto done;
      }
      if (rl->agg.outcome == TDM_AGG_OK && req->kind == TDM__REQ_USE && req->ks_len)
        tdm_client_set_keyspace(req->client, req->ks, req->ks_len);
      if (allow_hold && rl->agg.outcome == TDM_AGG_OK && start_hold(req, d)) return;
      (void)tdm_client_respond(req->client, req->stream, rl->resp_opcode, rl->resp_flags, rl->resp,
                               (size_t)(rl->resp_body - rl->resp->data), rl->resp_len);
    }
  } else if (d->action == TDM_AGG_REWRITE) {
    answer_rewrite(req, d);
  } else {
    answer_timeout(req, d);
  }
done:
  req->answered = true;
  req->answer_ms = tdm__route_now(req);
}

/* ---- completion ---- */

static void lwt_compare(tdm_route_req_t *req)
{
  tdm_route_worker_t *rw = req->rw;
  tdm_response_applied_t a[2];
  for (int c = 0; c < 2; c++) {
    const tdm__route_leg_t *rl = &req->legs[c];
    if (rl->agg.outcome != TDM_AGG_OK || rl->resp_opcode != TDM_OP_RESULT) return;
    tdm__msg_t m;
    if (tdm__route_resp_open(req, rl, &m) < 0) return;
    int rc = tdm_response_peek_rows_applied(req->version, m.buf + m.msg_off, m.len - m.msg_off, &a[c]);
    tdm__route_msg_close(rw->pw, &m);
    if (rc < 0 || (a[c] != TDM_RESPONSE_APPLIED_TRUE && a[c] != TDM_RESPONSE_APPLIED_FALSE)) return;
  }
  if (a[0] == a[1]) return;
  tdm__route_lwt_mismatch(req, a[0] == TDM_RESPONSE_APPLIED_TRUE);
}

static void complete(tdm_route_req_t *req, const tdm_agg_decision_t *d)
{
  tdm_proxy_stats_t *st = &tdm__route_pw(req)->stats;
  req->completed = true;
  if (req->metric_type >= 0) {
    uint64_t *g = inflight_gauge(req);
    if (*g) (*g)--;
    uint64_t end = req->answer_ms ? req->answer_ms : tdm__route_now(req);
    tdm_hist_observe(&st->proxy_latency[req->metric_type], cluster_bounds(req->conf, req->metric_type == 1 ? 1 : 0),
                     (double)(end - req->start_ms));
    if (req->metric_type < 2) {
      if (d->failed & TDM_AGG_BIT(req->metric_type))
        (*(req->metric_type == 0 ? &st->failed_reads_origin : &st->failed_reads_target))++;
    } else if (d->failed == 3u) {
      st->failed_writes_both++;
    } else if (d->failed) {
      (*(d->failed & 1u ? &st->failed_writes_origin : &st->failed_writes_target))++;
    }
  }
  if (req->route.dest == TDM_ROUTE_BOTH && req->kind == TDM__REQ_FORWARD) {
    /* one line per divergent write (§6.2): counted, logged and journaled by divergence.c */
    if (d->divergent) tdm__route_divergence(req, (d->failed & 1u) ? TDM_CONF_ORIGIN : TDM_CONF_TARGET);
    int p = req->conf->primary_cluster;
    if (req->secondary_skipped && req->legs[p].agg.outcome == TDM_AGG_OK) tdm__route_divergence(req, 1 - p);
    if (d->applied == 3u) {
      if ((req->cflags & TDM_CLASSIFY_F_LWT) || req->opcode == TDM_OP_BATCH) lwt_compare(req);
      if (req->opcode == TDM_OP_EXECUTE) tdm__route_record_metadata_ids(req);
    }
  }
  recycle(req);
}

void tdm__route_progress(tdm_route_req_t *req)
{
  if (req->busy) {
    req->settle = true; /* an outer caller still uses the request: it settles on leave */
    return;
  }
  if (req->holding || req->completed) return;
  tdm_agg_input_t in = { req->conf->primary_cluster, req->policy, req->success_cluster, { { 0 }, { 0 } } };
  for (int c = 0; c < 2; c++)
    in.leg[c] = req->legs[c].state == TDM__LEG_IDLE ? (tdm_agg_leg_t){ TDM_AGG_NONE, 0 } : req->legs[c].agg;
  tdm_agg_decision_t d;
  tdm_agg_decide(&in, &d);
  if (!req->answered && d.action != TDM_AGG_WAIT) {
    answer(req, &d, !req->timer_fired);
    if (req->holding) return;
  }
  if (!tdm__route_any_active(req)) complete(req, &d);
}

static void hold_done(void *arg, bool agreed)
{
  tdm_route_req_t *req = arg;
  if (!req->holding) return;
  tdm_proxy_stats_t *st = &tdm__route_pw(req)->stats;
  (*(agreed ? &st->schema_waits_agreed : &st->schema_waits_timeout))++;
  req->holding = false;
  if (req->hold_starting) return; /* called from inside wait(): start_hold's caller answers */
  tdm__route_enter(req);
  if (!req->answered) answer(req, &req->held, false);
  req->settle = true;
  tdm__route_leave(req);
}

/* ---- expiry (run by the worker timer, deadlines.c) ---- */

void tdm__route_expire(tdm_route_req_t *req)
{
  tdm_route_worker_t *rw = req->rw;
  tdm__route_enter(req);
  req->timer_fired = true;
  if (req->holding) {
    /* The deadline covers the schema hold: the DDL applied on both, so the held answer goes out now. */
    if (rw->hook.cancel) rw->hook.cancel(rw->hook.arg, req);
    req->holding = false;
    rw->pw->stats.schema_waits_timeout++;
    if (!req->answered) answer(req, &req->held, false);
  }
  for (int c = 0; c < 2; c++) {
    tdm__route_leg_t *rl = &req->legs[c];
    if (rl->state != TDM__LEG_SENT && rl->state != TDM__LEG_REPREPARE) continue;
    bool queued = rl->state == TDM__LEG_SENT && rl->leg.sent_at_ms == 0; /* never written: nothing ran */
    queue_wait(req, rl);
    if (rl->state == TDM__LEG_REPREPARE) {
      /* the internal PREPARE got no answer in time: that re-prepare failed (§7.3) */
      tdm_proxy_stats_t *st = &rw->pw->stats;
      (*(rl->cluster == TDM_CONF_ORIGIN ? &st->pscache_reprepares_failed_origin
                                        : &st->pscache_reprepares_failed_target))++;
    }
    tdm_backend_abandon(&rl->leg);
    rl->state = TDM__LEG_ABANDONED;
    if (queued) {
      rl->synth = TDM__SYNTH_NO_CAPACITY;
      rl->agg = (tdm_agg_leg_t){ TDM_AGG_ERROR, TDM_ERR_OVERLOADED };
    } else {
      rl->agg = (tdm_agg_leg_t){ TDM_AGG_SILENT, 0 };
    }
    leg_metrics(req, rl);
  }
  req->settle = true;
  tdm__route_leave(req); /* may complete and recycle req */
}

/* ---- re-entrancy ---- */

void tdm__route_enter(tdm_route_req_t *req) { req->busy++; }

void tdm__route_leave(tdm_route_req_t *req)
{
  TDM_ASSERT(req->busy > 0);
  if (--req->busy > 0 || !req->settle) return;
  req->settle = false;
  if (req->kind == TDM__REQ_ASYNC)
    tdm__route_async_done(req);
  else
    tdm__route_progress(req);
}

/* ---- start ---- */

static void start_legs(tdm_route_req_t *req);

/* A needed cluster has no usable node: UNAVAILABLE, nothing sent (or what was sent is abandoned). */
static void fail_unreachable(tdm_route_req_t *req, int cluster)
{
  for (int c = 0; c < 2; c++) {
    tdm__route_leg_t *rl = &req->legs[c];
    if (rl->state == TDM__LEG_SENT) tdm_backend_abandon(&rl->leg);
    rl->state = TDM__LEG_IDLE;
  }
  tdm__route_leg_synth(&req->legs[cluster], TDM__SYNTH_UNREACHABLE);
  tdm__route_progress(req);
}

void tdm__route_req_start(tdm_route_req_t *req)
{
  tdm__route_enter(req); /* the backend may call a leg back from inside tdm_backend_send */
  start_legs(req);
  tdm__route_leave(req);
}

static void start_legs(tdm_route_req_t *req)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  int p = req->conf->primary_cluster, s = 1 - p;
  bool want[2] = { false, false };
  if (req->route.dest == TDM_ROUTE_BOTH)
    want[0] = want[1] = true;
  else
    want[req->route.cluster] = true;
  if (req->metric_type >= 0) (*inflight_gauge(req))++;
  tdm__route_timer_start(req);
  /* All-or-nothing (§6.1): check every needed cluster before sending anything. */
  for (int i = 0; i < 2; i++) {
    int c = i == 0 ? p : s;
    if (!want[c] || tdm_backend_reachable(pw->backend, c)) continue;
    if (c == s && want[p] && req->policy == TDM_CONF_DIVERGENCE_PRIMARY_WINS) {
      want[s] = false;
      req->secondary_skipped = true;
      continue;
    }
    fail_unreachable(req, c);
    return;
  }
  for (int i = 0; i < 2; i++) {
    int c = i == 0 ? p : s;
    if (!want[c]) continue;
    tdm__route_leg_t *rl = &req->legs[c];
    if (tdm__route_leg_send(req, rl, req->opcode, -1) == 0) continue;
    if (c == s && req->policy == TDM_CONF_DIVERGENCE_PRIMARY_WINS && want[p]) {
      req->secondary_skipped = true;
      continue;
    }
    fail_unreachable(req, c);
    return;
  }
  if (req->route.mirror) tdm__route_async_maybe(req);
}

/* ---- public ---- */

void tdm_route_client_gone(tdm_client_t *client)
{
  tdm_proxy_worker_t *pw = tdm_client_view(client)->pw;
  tdm_route_worker_t *rw = pw ? pw->route : NULL;
  if (!rw) return;
  TDM_LIST_FOREACH(it, &rw->live) {
    tdm_route_req_t *req = TDM_CONTAINER_OF(it, tdm_route_req_t, link);
    if (req->client != client || req->kind == TDM__REQ_ASYNC) continue;
    req->detached = true;
    req->answered = true; /* nobody to answer: legs finish or time out, metrics still count */
  }
}

void tdm_route_set_schema_hook(tdm_proxy_worker_t *pw, const tdm_route_schema_hook_t *hook)
{
  if (!hook && !pw->route) return;
  tdm_route_worker_t *rw = tdm__route_worker(pw);
  if (!rw) return;
  if (hook)
    rw->hook = *hook;
  else
    memset(&rw->hook, 0, sizeof(rw->hook));
}

uint32_t tdm_route_inflight(const tdm_proxy_worker_t *pw) { return pw->route ? pw->route->nlive : 0; }

void tdm_route_worker_close(tdm_proxy_worker_t *pw)
{
  tdm_route_worker_t *rw = pw->route;
  if (!rw) return;
  rw->closing = true;
  pw->route = NULL;
  TDM_LIST_FOREACH_SAFE(it, tmp, &rw->live) {
    tdm_route_req_t *req = TDM_CONTAINER_OF(it, tdm_route_req_t, link);
    if (req->holding && rw->hook.cancel) rw->hook.cancel(rw->hook.arg, req);
    for (int c = 0; c < 2; c++) {
      tdm__route_leg_t *rl = &req->legs[c];
      if (rl->state == TDM__LEG_SENT || rl->state == TDM__LEG_REPREPARE) tdm_backend_abandon(&rl->leg);
      rl->state = TDM__LEG_ABANDONED;
    }
    if (req->kind == TDM__REQ_ASYNC) {
      rw->async_live--;
      if (pw->stats.async_inflight) pw->stats.async_inflight--;
    } else if (req->metric_type >= 0 && *inflight_gauge(req)) {
      (*inflight_gauge(req))--;
    }
    recycle(req); /* closing: disarmed and freed */
  }
  tdm_list_t *n;
  while ((n = tdm_list_pop(&rw->free))) {
    rw->nfree--;
    free(TDM_CONTAINER_OF(n, tdm_route_req_t, link));
  }
  tdm__route_timer_close(rw); /* frees rw, maybe from the timer's close callback */
}
