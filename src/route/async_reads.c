/* Async dual reads (behaviour.md §12): a primary-routed read may be copied to the secondary cluster on
 * the dedicated async pools, sampled by async_read_sample_percent, capped per worker by
 * async_connector_write_queue_size_frames, with its own deadline. The copy shares the request body (its
 * header is its own, with the tracing flag cleared) and its outcome only feeds metrics. Invariants: a
 * copy never answers the client and never delays or changes the synchronous request; rw->async_live
 * counts exactly the copies between send and completion. */
#include "internal.h"

/* xorshift64: cheap, per worker, good enough for sampling. */
static uint32_t next_rand(tdm_route_worker_t *rw)
{
  uint64_t x = rw->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rw->rng = x;
  return (uint32_t)(x >> 32);
}

void tdm__route_async_maybe(tdm_route_req_t *sync)
{
  tdm_route_worker_t *rw = sync->rw;
  tdm_proxy_worker_t *pw = rw->pw;
  tdm_proxy_stats_t *st = &pw->stats;
  const tdm_conf_t *conf = sync->conf;
  if (!sync->route.mirror || sync->route.dest != TDM_ROUTE_PRIMARY) return;
  int pct = conf->async_read_sample_percent;
  if (pct < 100 && (pct <= 0 || next_rand(rw) % 100u >= (unsigned)pct)) {
    st->async_reads_sampled_out++;
    return;
  }
  if (conf->async_connector_write_queue_size_frames <= 0 ||
      rw->async_live >= (uint32_t)conf->async_connector_write_queue_size_frames) {
    st->async_reads_dropped_queue_full++;
    return;
  }
  int s = 1 - sync->route.cluster;
  if (!tdm_backend_reachable(pw->backend, s)) {
    st->async_reads_dropped_no_connection++;
    return;
  }
  tdm_frame_header_t h = { .version = sync->version, .flags = (uint8_t)(sync->flags & ~TDM_FLAG_TRACING),
                           .stream = sync->stream, .opcode = sync->opcode };
  tdm_route_req_t *req = tdm__route_req_new(rw, TDM__REQ_ASYNC, sync->client, &h, sync->body, sync->body_off,
                                            sync->body_len);
  if (!req) {
    st->async_reads_dropped_queue_full++;
    return;
  }
  tdm__route_enter(req); /* a leg callback from inside tdm_backend_send settles on leave */
  req->route = sync->route;
  req->route.cluster = s;
  req->consistency = sync->consistency;
  req->agg_class = sync->agg_class;
  if (sync->entry) {
    tdm_prepared_entry_ref(sync->entry);
    req->entry = sync->entry;
  }
  size_t off, len;
  uint8_t flags;
  tdm_slice_t *body = tdm__route_prepared_body(req, s, &off, &len, &flags);
  if (!body) {
    tdm__route_req_discard(req);
    st->async_reads_dropped_queue_full++;
    return;
  }
  tdm__route_leg_set_body(&req->legs[s], body, off, len, (uint8_t)(flags & ~TDM_FLAG_TRACING));
  tdm_slice_unref(body);
  if (tdm__route_leg_send(req, &req->legs[s], req->opcode, -1) < 0) {
    tdm__route_req_discard(req);
    st->async_reads_dropped_no_connection++;
    return;
  }
  rw->async_live++;
  st->async_inflight++;
  st->async_reads_sent++;
  tdm__route_count_handover(req, req->route.cluster); /* a rewrite was counted where built */
  tdm__route_timer_start(req);
  tdm__route_leave(req);
}

void tdm__route_async_done(tdm_route_req_t *req)
{
  if (req->busy) {
    req->settle = true;
    return;
  }
  if (tdm__route_any_active(req)) return; /* a re-prepare or its retry is still out */
  tdm_route_worker_t *rw = req->rw;
  tdm_proxy_stats_t *st = &rw->pw->stats;
  const tdm__route_leg_t *rl = &req->legs[req->route.cluster];
  if (rl->agg.outcome != TDM_AGG_OK) st->async_failed++;
  TDM_ASSERT(rw->async_live > 0);
  rw->async_live--;
  if (st->async_inflight) st->async_inflight--;
  tdm__route_req_discard(req);
}
