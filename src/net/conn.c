/* Base connection: lifecycle, read delivery, the write queue and its per-loop flush scheduler.
 *
 *   socket --read--> rbuf [rpos..wpos) --on_data(all unread)--> owner consumes n (or yields)
 *
 *   owner --tdm_conn_write(hdr copy + slice ref)--> wq: [e0 e1 e2 | e3 e4 ...]
 *                                                        in flight   queued
 *   conn marked FLUSH on ctx->pending ──► ctx pass (prepare or check) ──► ONE transport write
 *   of up to TDM_CONN_BATCH_MAX entries (a try-writev; uv_write only for what the kernel did not take)
 *   ──► on_written (at once when the try took everything): drop the entries, unref slices,
 *   unsent -= bytes, low watermark, queue left? mark FLUSH again : flush-close? send FIN
 *
 * Scheduling choice: a uv_check (runs right after poll, so writes queued by this iteration's read
 * callbacks leave in the same iteration without an extra syscall) plus a uv_prepare (runs before the
 * loop blocks, so writes queued by timers, pending or close callbacks, which run outside poll, never
 * wait for the next socket event). Both are started only while some connection is pending. A
 * redelivery (a yield) still due after a pass also starts a uv_idle, whose only job is to make that
 * iteration's poll non-blocking; otherwise the loop could sleep on a connection that has input. One
 * write in flight per connection: a write the kernel took whole completes inside flush (a queue longer
 * than one batch is scheduled again, the second round or the next pass writes it); a queued one
 * completes in a later iteration's pending phase.
 *
 * Lifetime: refs starts at 1 for the open handles. tdm_conn_close runs on_close, closes the handles;
 * the last handle close callback drops that reference, and the last reference runs destroy, which
 * frees buffers and entries and calls on_destroy (the owner frees its struct there). */
#include <unistd.h>
#include <tandem/net/conn.h>
#include <tandem/obs/log.h>

#define DUE_FLUSH 1u   /* the write queue should be written */
#define DUE_DELIVER 2u /* buffered input should be offered again */

typedef struct wentry_s {
  tdm_list_t link;                   /* position in conn->wq */
  tdm_slice_t *slice;                /* body bytes (one reference), NULL when len == 0 */
  size_t off;                        /* first body byte in slice->data */
  size_t len;                        /* body bytes */
  uint8_t hlen;                      /* header bytes in hdr */
  uint8_t hdr[TDM_CONN_INLINE_MAX];  /* copied header (the per-leg 9-byte frame header) */
} wentry_t;

static void ctx_run(tdm_conn_ctx_t *ctx);

/* ---- context ---- */

static void on_prepare(uv_prepare_t *h) { ctx_run(h->data); }
static void on_check(uv_check_t *h) { ctx_run(h->data); }
static void on_idle(uv_idle_t *h) { (void)h; /* exists only to keep the next poll from blocking */ }

int tdm_conn_ctx_init(tdm_conn_ctx_t *ctx, uv_loop_t *loop)
{
  memset(ctx, 0, sizeof(*ctx));
  ctx->loop = loop;
  tdm_list_init(&ctx->pending);
  int rc = uv_prepare_init(loop, &ctx->prepare);
  if (rc < 0) return rc;
  rc = uv_check_init(loop, &ctx->check);
  if (rc < 0) {
    uv_close((uv_handle_t *)&ctx->prepare, NULL); /* nothing to free: memory is the caller's */
    return rc;
  }
  rc = uv_idle_init(loop, &ctx->idle);
  if (rc < 0) {
    uv_close((uv_handle_t *)&ctx->prepare, NULL);
    uv_close((uv_handle_t *)&ctx->check, NULL);
    return rc;
  }
  ctx->prepare.data = ctx;
  ctx->check.data = ctx;
  ctx->idle.data = ctx;
  ctx->handles = 3;
  tdm_buf_pool_init(&ctx->read_pool, TDM_CONN_READ_BLOCK, TDM_CONN_POOL_KEEP);
  tdm_buf_pool_init(&ctx->entry_pool, sizeof(wentry_t), TDM_CONN_POOL_KEEP * 4);
  tdm_buf_pool_init(&ctx->slice_pool, TDM_CONN_SLICE_BLOCK, TDM_CONN_POOL_KEEP);
  ctx->high_water = TDM_CONN_HIGH_WATER_DEFAULT;
  ctx->rbuf_max = TDM_CONN_RBUF_MAX_DEFAULT;
  return 0;
}

tdm_slice_t *tdm_conn_ctx_slice(tdm_conn_ctx_t *ctx, tdm_buf_pool_t *fallback, size_t n)
{
  if (n <= tdm_slice_pool_capacity(&ctx->slice_pool)) return tdm_slice_new(&ctx->slice_pool, n);
  if (n <= tdm_slice_pool_capacity(&ctx->read_pool)) return tdm_slice_new(&ctx->read_pool, n);
  return tdm_slice_new(fallback, n);
}

static void ctx_handle_closed(uv_handle_t *h)
{
  tdm_conn_ctx_t *ctx = h->data;
  if (--ctx->handles == 0 && ctx->close_cb) ctx->close_cb(ctx);
}

void tdm_conn_ctx_close(tdm_conn_ctx_t *ctx, void (*cb)(tdm_conn_ctx_t *ctx))
{
  if (ctx->closing) return;
  ctx->closing = true;
  ctx->close_cb = cb;
  ctx->armed = false;
  /* blocks still out (buffers of connections closing right now) are freed when they come back */
  tdm_buf_pool_destroy(&ctx->read_pool);
  tdm_buf_pool_destroy(&ctx->entry_pool);
  tdm_buf_pool_destroy(&ctx->slice_pool);
  uv_close((uv_handle_t *)&ctx->prepare, ctx_handle_closed);
  uv_close((uv_handle_t *)&ctx->check, ctx_handle_closed);
  uv_close((uv_handle_t *)&ctx->idle, ctx_handle_closed);
}

static void ctx_arm(tdm_conn_ctx_t *ctx)
{
  if (ctx->armed || ctx->closing) return;
  ctx->armed = true;
  uv_prepare_start(&ctx->prepare, on_prepare);
  uv_check_start(&ctx->check, on_check);
}

static void ctx_disarm(tdm_conn_ctx_t *ctx)
{
  if (!ctx->armed) return;
  ctx->armed = false;
  uv_prepare_stop(&ctx->prepare);
  uv_check_stop(&ctx->check);
  uv_idle_stop(&ctx->idle);
}

static void schedule(tdm_conn_t *c, uint8_t due)
{
  if (c->closing || c->ctx->closing) return;
  if (!c->pending) tdm_list_insert_tail(&c->ctx->pending, &c->pending_link);
  c->pending |= due;
  ctx_arm(c->ctx);
}

static void unschedule(tdm_conn_t *c)
{
  tdm_list_remove(&c->pending_link);
  c->pending = 0;
}

static void deliver(tdm_conn_t *c);
static void flush(tdm_conn_t *c);
static void read_apply(tdm_conn_t *c);

/* One pass over the pending connections. Deliveries first, then flushes; writes queued by those
 * deliveries are flushed by the second round of the same pass, while deliveries requested during the
 * pass wait for the next one, so a connection that keeps yielding cannot starve the loop. */
static void ctx_run(tdm_conn_ctx_t *ctx)
{
  tdm_list_t batch;
  ctx->passes++;
  for (int round = 0; round < 2; round++) {
    tdm_list_init(&batch);
    tdm_list_splice_tail(&batch, &ctx->pending);
    tdm_list_t *n;
    while ((n = tdm_list_pop(&batch))) {
      tdm_conn_t *c = TDM_CONTAINER_OF(n, tdm_conn_t, pending_link);
      uint8_t due = c->pending;
      c->pending = 0;
      tdm_conn_hold(c);
      if (round == 0 && (due & DUE_DELIVER)) deliver(c);
      if (round == 1 && (due & DUE_DELIVER)) schedule(c, DUE_DELIVER);
      if (due & DUE_FLUSH) flush(c);
      tdm_conn_release(c);
    }
  }
  if (tdm_list_empty(&ctx->pending))
    ctx_disarm(ctx);
  else if (!ctx->closing)
    uv_idle_start(&ctx->idle, on_idle); /* deliveries are due: the next poll must not block */
}

/* ---- lifecycle ---- */

static void update_tag(tdm_conn_t *c)
{
  char peer[TDM_SOCKADDR_STRLEN];
  if (c->peer.sa.sa_family) {
    tdm_sockaddr_format(&c->peer, peer, sizeof(peer));
    snprintf(c->tag, sizeof(c->tag), "%c-%llu %s", c->kind, (unsigned long long)c->id, peer);
  } else {
    snprintf(c->tag, sizeof(c->tag), "%c-%llu", c->kind, (unsigned long long)c->id);
  }
}

int tdm_conn_init(tdm_conn_t *c, tdm_conn_ctx_t *ctx, const tdm_conn_hooks_t *hooks, void *data)
{
  TDM_ASSERT(hooks && hooks->on_data);
  memset(c, 0, sizeof(*c));
  int rc = uv_tcp_init(ctx->loop, &c->tcp);
  if (rc < 0) return rc;
  /* applied now or when the socket is created (connect) or adopted (open) */
  (void)uv_tcp_nodelay(&c->tcp, 1);
  (void)uv_tcp_keepalive(&c->tcp, 1, 60);
  c->tcp.data = c;
  c->timer.data = c;
  c->connect_req.data = c;
  c->ctx = ctx;
  c->transport = &tdm_transport_tcp;
  c->hooks = hooks;
  c->data = data;
  c->kind = '?';
  tdm_buf_init(&c->rbuf, &ctx->read_pool, ctx->rbuf_max);
  tdm_list_init(&c->wq);
  tdm_list_init(&c->pending_link);
  c->high = ctx->high_water;
  c->low = ctx->high_water / 2;
  c->handles = 1;
  c->refs = 1;
  ctx->nconns++;
  update_tag(c);
  return 0;
}

void tdm_conn_set_name(tdm_conn_t *c, char kind, uint64_t id)
{
  c->kind = kind;
  c->id = id;
  update_tag(c);
}

static void destroy(tdm_conn_t *c)
{
  tdm_list_t *n;
  while ((n = tdm_list_pop(&c->wq))) {
    wentry_t *e = TDM_CONTAINER_OF(n, wentry_t, link);
    tdm_slice_unref(e->slice);
    tdm_buf_pool_put(&c->ctx->entry_pool, e);
  }
  c->wq_len = 0;
  c->unsent = 0;
  tdm_buf_free(&c->rbuf);
  c->ctx->nconns--;
  tdm_log_trace(c->tag, "destroyed");
  if (c->hooks->on_destroy) c->hooks->on_destroy(c);
}

void tdm_conn_release(tdm_conn_t *c)
{
  TDM_ASSERT(c->refs > 0);
  if (--c->refs == 0) destroy(c);
}

static void on_handle_closed(uv_handle_t *h)
{
  tdm_conn_t *c = h->data;
  TDM_ASSERT(c->handles > 0);
  if (--c->handles == 0) tdm_conn_release(c); /* the handles' reference */
}

void tdm_conn_close(tdm_conn_t *c, int reason)
{
  if (c->closing) return;
  c->closing = true;
  c->close_reason = reason;
  tdm_conn_hold(c);
  unschedule(c);
  tdm_log_debug(c->tag, "closing: %s", reason ? tdm_strerror(reason) : "done");
  if (c->hooks->on_close) c->hooks->on_close(c, reason);
  if (c->timer_inited) {
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  }
  c->reading = false;
  c->transport->close(c, on_handle_closed);
  tdm_conn_release(c);
}

int tdm_conn_open(tdm_conn_t *c, uv_os_sock_t fd)
{
  int rc = uv_tcp_open(&c->tcp, fd);
  if (rc < 0) {
    close(fd);
    tdm_conn_close(c, rc);
    return rc;
  }
  (void)tdm_sockaddr_peer_of(fd, &c->peer);
  update_tag(c);
  return 0;
}

/* Starts (or restarts) the connection's deadline timer. */
static int timer_start(tdm_conn_t *c, uint64_t ms, uv_timer_cb cb)
{
  if (!c->timer_inited) {
    int rc = uv_timer_init(c->ctx->loop, &c->timer);
    if (rc < 0) return rc;
    c->timer.data = c;
    c->timer_inited = true;
    c->handles++;
  }
  return uv_timer_start(&c->timer, cb, ms, 0);
}

static void timer_stop(tdm_conn_t *c)
{
  if (c->timer_inited) uv_timer_stop(&c->timer);
}

/* Reports the connect result once; a failure closes the connection. */
static void connect_done(tdm_conn_t *c, int status)
{
  if (!c->connecting) return;
  c->connecting = false;
  timer_stop(c);
  tdm_conn_hold(c);
  if (c->connect_cb) c->connect_cb(c, status);
  if (status < 0) {
    tdm_conn_close(c, status);
  } else if (!c->closing) {
    read_apply(c); /* reading and writing wait for the connection */
    if (!tdm_list_empty(&c->wq)) schedule(c, DUE_FLUSH);
  }
  tdm_conn_release(c);
}

static void on_connect(uv_connect_t *req, int status) { connect_done(req->data, status); }

static void on_connect_timeout(uv_timer_t *t) { connect_done(t->data, TDM_ETIMEOUT); }

int tdm_conn_connect(tdm_conn_t *c, const tdm_sockaddr_t *addr, uint64_t timeout_ms, tdm_conn_connect_cb cb)
{
  if (c->closing) return TDM_ECLOSED;
  c->peer = *addr;
  update_tag(c);
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, &addr->sa, on_connect);
  if (rc == 0 && timeout_ms) rc = timer_start(c, timeout_ms, on_connect_timeout);
  if (rc < 0) {
    tdm_conn_close(c, rc); /* also cancels a connect already started */
    return rc;
  }
  c->connecting = true;
  c->connect_cb = cb;
  return 0;
}

static void on_flush_timeout(uv_timer_t *t)
{
  tdm_conn_t *c = t->data;
  tdm_conn_close(c, c->fin_done ? 0 : TDM_ETIMEOUT); /* after the FIN only the peer's EOF was missing */
}

static void start_shutdown(tdm_conn_t *c)
{
  c->shutdown_sent = true;
  int rc = c->transport->shutdown(c);
  if (rc < 0) tdm_conn_close(c, rc);
}

void tdm_conn_close_after_flush(tdm_conn_t *c, uint64_t timeout_ms)
{
  if (c->closing || c->flush_close) return;
  c->flush_close = true;
  tdm_conn_hold(c);
  if (timeout_ms) {
    int rc = timer_start(c, timeout_ms, on_flush_timeout);
    if (rc < 0) tdm_conn_close(c, rc);
    c->flush_deadline = rc == 0;
  }
  if (!c->closing) {
    tdm_buf_consume(&c->rbuf, tdm_buf_len(&c->rbuf)); /* input is no longer wanted */
    tdm_buf_release_if_empty(&c->rbuf);
    read_apply(c);
    if (c->connecting) {
      /* not connected yet: nothing could have been written */
      tdm_conn_close(c, 0);
    } else if (!c->closing && c->inflight == 0 && tdm_list_empty(&c->wq)) {
      start_shutdown(c);
    }
  }
  tdm_conn_release(c);
}

void tdm_conn_on_shutdown(tdm_conn_t *c, int status)
{
  c->fin_done = status == 0;
  if (status < 0 || !c->read_on || !c->flush_deadline) {
    /* nothing to linger for: no reader to see the peer's EOF, or no deadline to bound the wait */
    tdm_conn_close(c, status < 0 ? status : 0);
  }
}

/* ---- reading ---- */

/* Reads while the owner started reading and nothing pauses it; a flush-close reads (and discards)
 * regardless of pauses, until the peer's EOF. */
static void read_apply(tdm_conn_t *c)
{
  bool want = c->read_on && !c->closing && !c->connecting && (c->read_pause == 0 || c->flush_close);
  if (want && !c->reading) {
    int rc = c->transport->read_start(c);
    if (rc < 0) {
      tdm_conn_close(c, rc);
      return;
    }
    c->reading = true;
  } else if (!want && c->reading) {
    (void)c->transport->read_stop(c);
    c->reading = false;
  }
}

int tdm_conn_read_start(tdm_conn_t *c)
{
  if (c->closing) return TDM_ECLOSED;
  c->read_on = true;
  read_apply(c);
  return c->closing ? c->close_reason : 0;
}

void tdm_conn_read_pause(tdm_conn_t *c, uint32_t reasons)
{
  c->read_pause |= reasons;
  read_apply(c);
}

void tdm_conn_read_resume(tdm_conn_t *c, uint32_t reasons)
{
  uint32_t before = c->read_pause;
  c->read_pause &= ~reasons;
  read_apply(c);
  if (before && !c->read_pause && tdm_buf_len(&c->rbuf) > 0) schedule(c, DUE_DELIVER);
}

void tdm_conn_redeliver(tdm_conn_t *c)
{
  if (tdm_buf_len(&c->rbuf) > 0) schedule(c, DUE_DELIVER);
}

void tdm_conn_on_alloc(tdm_conn_t *c, uv_buf_t *buf)
{
  size_t have = tdm_buf_len(&c->rbuf);
  size_t want = c->read_want > have ? c->read_want - have : 0;
  uint8_t *p;
  size_t n;
  c->alloc_err = tdm_buf_reserve(&c->rbuf, TDM_MAX(want, (size_t)TDM_CONN_READ_MIN), &p, &n);
  if (c->alloc_err < 0) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to the read callback */
    return;
  }
  *buf = uv_buf_init((char *)p, (unsigned int)TDM_MIN(n, (size_t)UINT32_MAX));
}

/* Offers all buffered input to the owner once. */
static void deliver(tdm_conn_t *c)
{
  size_t len = tdm_buf_len(&c->rbuf);
  if (c->closing || c->flush_close || c->read_pause || len == 0) return;
  tdm_conn_hold(c);
  int r = c->hooks->on_data(c, tdm_buf_rptr(&c->rbuf), len);
  if (r < 0) {
    tdm_conn_close(c, r);
  } else if (!c->closing && !c->flush_close) {
    /* A handler that started a close (flush-close drops the input itself) has nothing to consume. */
    TDM_ASSERT((size_t)r <= len);
    tdm_buf_consume(&c->rbuf, (size_t)r);
  }
  tdm_buf_release_if_empty(&c->rbuf); /* an idle connection keeps no buffer */
  tdm_conn_release(c);
}

void tdm_conn_on_read(tdm_conn_t *c, ssize_t nread)
{
  if (nread == UV_ENOBUFS && c->alloc_err < 0) nread = c->alloc_err;
  if (nread < 0) {
    /* the peer's EOF is how a flush-close is meant to end */
    tdm_conn_close(c, (nread == UV_EOF && c->shutdown_sent) ? 0 : (int)nread);
    return;
  }
  if (nread == 0) {
    tdm_buf_release_if_empty(&c->rbuf);
    return;
  }
  tdm_buf_commit(&c->rbuf, (size_t)nread);
  c->bytes_in += (uint64_t)nread;
  c->ctx->bytes_in += (uint64_t)nread;
  if (c->flush_close) {
    tdm_buf_consume(&c->rbuf, (size_t)nread);
    tdm_buf_release_if_empty(&c->rbuf);
    return;
  }
  deliver(c);
}

/* ---- writing ---- */

void tdm_conn_set_watermarks(tdm_conn_t *c, size_t high, size_t low)
{
  TDM_ASSERT(low <= high);
  c->high = high;
  c->low = low;
}

int tdm_conn_write(tdm_conn_t *c, const void *hdr, size_t hlen, tdm_slice_t *slice, size_t off, size_t len)
{
  if (c->closing || c->flush_close) return TDM_ECLOSED;
  if (hlen > TDM_CONN_INLINE_MAX) return TDM_EINVAL;
  if (len && (!slice || off > slice->size || len > slice->size - off)) return TDM_EINVAL;
  if (hlen == 0 && len == 0) return 0;
  wentry_t *e = tdm_buf_pool_get(&c->ctx->entry_pool);
  if (!e) return TDM_ENOMEM;
  tdm_list_init(&e->link);
  e->hlen = (uint8_t)hlen;
  if (hlen) memcpy(e->hdr, hdr, hlen);
  e->slice = len ? tdm_slice_ref(slice) : NULL;
  e->off = off;
  e->len = len;
  tdm_list_insert_tail(&c->wq, &e->link);
  c->wq_len++;
  c->unsent += hlen + len;
  schedule(c, DUE_FLUSH);
  if (c->high && !c->above_high && c->unsent > c->high) {
    c->above_high = true;
    if (c->hooks->on_high) {
      tdm_conn_hold(c);
      c->hooks->on_high(c);
      tdm_conn_release(c);
    }
  }
  return 0;
}

int tdm_conn_write_bytes(tdm_conn_t *c, const void *p, size_t n)
{
  if (n <= TDM_CONN_INLINE_MAX) return tdm_conn_write(c, p, n, NULL, 0, 0);
  if (c->closing || c->flush_close) return TDM_ECLOSED;
  tdm_slice_t *s = tdm_slice_copy(&c->ctx->slice_pool, p, n);
  if (!s) return TDM_ENOMEM;
  int rc = tdm_conn_write(c, NULL, 0, s, 0, n);
  tdm_slice_unref(s);
  return rc;
}

/* Gathers up to TDM_CONN_BATCH_MAX queued entries into one transport write. */
static void flush(tdm_conn_t *c)
{
  if (c->closing || c->inflight || c->connecting || tdm_list_empty(&c->wq)) return;
  uv_buf_t *iov = c->ctx->iov;
  unsigned int n = 0;
  uint32_t k = 0;
  TDM_LIST_FOREACH(it, &c->wq)
  {
    if (k == TDM_CONN_BATCH_MAX) break;
    wentry_t *e = TDM_CONTAINER_OF(it, wentry_t, link);
    if (e->hlen) iov[n++] = uv_buf_init((char *)e->hdr, e->hlen);
    if (e->len) iov[n++] = uv_buf_init((char *)e->slice->data + e->off, (unsigned int)e->len);
    k++;
  }
  int rc = c->transport->write(c, iov, n);
  if (rc < 0) {
    tdm_conn_close(c, rc);
    return;
  }
  c->inflight = k;
  c->write_calls++;
  c->ctx->write_calls++;
  /* written synchronously: complete now (a remainder of the queue is scheduled again by it) */
  if (rc == TDM_TRANSPORT_WRITTEN) tdm_conn_on_written(c, 0);
}

void tdm_conn_on_written(tdm_conn_t *c, int status)
{
  tdm_conn_hold(c);
  for (uint32_t i = 0; i < c->inflight; i++) {
    wentry_t *e = TDM_CONTAINER_OF(tdm_list_pop(&c->wq), wentry_t, link);
    size_t bytes = e->hlen + e->len;
    c->unsent -= bytes;
    if (status == 0) {
      c->bytes_out += bytes;
      c->ctx->bytes_out += bytes;
    }
    tdm_slice_unref(e->slice);
    tdm_buf_pool_put(&c->ctx->entry_pool, e);
    c->wq_len--;
  }
  c->inflight = 0;
  if (status < 0) {
    tdm_conn_close(c, status); /* no-op when the write was cancelled by our own close */
  } else {
    if (c->above_high && c->unsent <= c->low) {
      c->above_high = false;
      if (c->hooks->on_low) c->hooks->on_low(c);
    }
    if (!c->closing) {
      if (!tdm_list_empty(&c->wq))
        schedule(c, DUE_FLUSH);
      else if (c->flush_close && !c->shutdown_sent)
        start_shutdown(c);
    }
  }
  tdm_conn_release(c);
}
