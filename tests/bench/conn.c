/* One client connection of tdm-bench: connect, STARTUP (+ SASL PLAIN), then per role the setup DDL,
 * the PREPAREs or nothing (idle), then load requests on stream ids 0..inflight-1.
 *
 *   CONNECTING -> STARTUP -> [AUTH] -> DDL (setup role) ----------------> READY (done)
 *                                   -> PREPARE (load role) -------------> READY (load)
 *                                   -> READY (idle role)
 *
 * Invariants: rbuf[0..rlen) holds input not yet consumed (compacted after each read); a stream id is
 * either on free_ids or has sent_at != 0; at most one uv_write is in flight and everything else waits,
 * in order, in wire.out. One timestamp is taken per read callback: every response in that read gets
 * it, which is when the client could first see them. */
#include <stdarg.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "bench.h"

#define RBUF_MIN 16384u

static void set_state(tdm_bench_conn_t *c, tdm_bench_conn_state_t s)
{
  TDM_ASSERT(s < TDM_BENCH_CONN_STATE_MAX && (s >= c->state || s == TDM_BENCH_CONN_CLOSING));
  c->state = s;
}

void tdm_bench_worker_fail(tdm_bench_worker_t *w, int err, const char *fmt, ...)
{
  if (!w->err) {
    w->err = err ? err : TDM_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err_text, sizeof(w->err_text), fmt, ap);
    va_end(ap);
  }
  w->done = true;
  uv_stop(&w->loop);
}

static void conn_fail(tdm_bench_conn_t *c, int err, const char *what)
{
  tdm_bench_worker_fail(c->worker, err, "connection %u to %s:%d: %s (%s)", c->index, c->worker->o->host,
                        c->worker->o->port, what, tdm_strerror(err));
}

/* Queues one request body built by a tandem encoder (handshake path: allocation is fine here). */
static int send_body(tdm_bench_conn_t *c, uint8_t opcode, int16_t stream, tdm_writer_t *w)
{
  int rc = tdm_writer_error(w);
  if (rc == 0) rc = tdm_bench_wire_add(&c->wire, opcode, stream, w->buf, w->len);
  tdm_writer_free(w);
  if (rc) conn_fail(c, rc, "cannot encode a request");
  return rc;
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
  tdm_bench_conn_t *c = req->data;
  c->writing = false;
  if (status < 0) {
    if (c->state != TDM_BENCH_CONN_CLOSING) conn_fail(c, status, "write failed");
    return;
  }
  tdm_bench_conn_flush(c);
}

void tdm_bench_conn_flush(tdm_bench_conn_t *c)
{
  if (c->state == TDM_BENCH_CONN_CLOSING || c->writing) return;
  if (tdm_bench_wire_seal(&c->wire)) {
    conn_fail(c, TDM_ENOMEM, "cannot seal a segment");
    return;
  }
  size_t len = c->wire.out_len;
  if (len == 0) return;
  uv_buf_t b = uv_buf_init((char *)c->wire.out, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)len) {
    tdm_bench_wire_consumed(&c->wire, len);
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    conn_fail(c, n, "write failed");
    return;
  }
  size_t done = n > 0 ? (size_t)n : 0, rest = len - done;
  if (rest > c->wcap) {
    uint8_t *p = realloc(c->wbuf, rest);
    if (!p) {
      conn_fail(c, TDM_ENOMEM, "out of memory");
      return;
    }
    c->wbuf = p;
    c->wcap = rest;
  }
  memcpy(c->wbuf, c->wire.out + done, rest);
  tdm_bench_wire_consumed(&c->wire, len);
  b = uv_buf_init((char *)c->wbuf, (unsigned)rest);
  c->write_req.data = c;
  int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc) {
    conn_fail(c, rc, "write failed");
    return;
  }
  c->writing = true;
}

/* ---- handshake ---- */

static bool needs(const tdm_bench_opts_t *o, tdm_bench_op_t op)
{
  return o->workload == TDM_BENCH_MIX || (op == TDM_BENCH_OP_INSERT) == (o->workload == TDM_BENCH_INSERT);
}

static int send_ddl(tdm_bench_conn_t *c)
{
  char text[TDM_BENCH_STMT_TEXT];
  if (!tdm_bench_stmt_ddl(c->worker->o, c->step, text, sizeof(text))) return 1; /* all done */
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_bench_stmt_query(&w, c->worker->o, text);
  return send_body(c, TDM_OP_QUERY, 0, &w);
}

static int become_ready(tdm_bench_conn_t *c)
{
  const tdm_bench_opts_t *o = c->worker->o;
  if (c->role == TDM_BENCH_ROLE_LOAD) {
    uint32_t m = o->inflight;
    c->sent_at = calloc(m, sizeof(*c->sent_at));
    c->op = calloc(m, 1);
    c->free_ids = malloc(m * sizeof(*c->free_ids));
    if (!c->sent_at || !c->op || !c->free_ids) {
      conn_fail(c, TDM_ENOMEM, "out of memory");
      return TDM_ENOMEM;
    }
    for (uint32_t i = 0; i < m; i++) c->free_ids[i] = (int16_t)(m - 1 - i); /* pops 0 first */
    c->n_free = m;
  }
  set_state(c, TDM_BENCH_CONN_READY);
  tdm_bench_load_on_ready(c->worker, c);
  return 0;
}

/* PREPAREs go one at a time, as an application preparing its statements does: the next needed
 * statement from op c->step on, or READY when none is left. */
static int prepare_next(tdm_bench_conn_t *c)
{
  const tdm_bench_opts_t *o = c->worker->o;
  while (c->step < TDM_BENCH_OPS && !needs(o, (tdm_bench_op_t)c->step)) c->step++;
  if (c->step == TDM_BENCH_OPS) return become_ready(c);
  char text[TDM_BENCH_STMT_TEXT];
  tdm_bench_stmt_text(o, (tdm_bench_op_t)c->step, text, sizeof(text));
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_bench_stmt_prepare(&w, o, text);
  int rc = send_body(c, TDM_OP_PREPARE, (int16_t)c->step, &w);
  c->step++;
  return rc ? -1 : 0;
}

/* The handshake proper is over (READY or AUTH_SUCCESS): start the role's work. */
static int after_auth(tdm_bench_conn_t *c)
{
  switch (c->role) {
  case TDM_BENCH_ROLE_IDLE: return become_ready(c);
  case TDM_BENCH_ROLE_SETUP:
    set_state(c, TDM_BENCH_CONN_DDL);
    c->step = 0;
    return send_ddl(c) < 0 ? -1 : 0;
  case TDM_BENCH_ROLE_LOAD:
    set_state(c, TDM_BENCH_CONN_PREPARE);
    c->step = 0;
    return prepare_next(c);
  }
  return -1;
}

/* ERROR text of a response body, for messages. */
static void error_text(tdm_bench_conn_t *c, const tdm_bench_msg_t *m, char *buf, size_t cap)
{
  const uint8_t *body;
  size_t len;
  tdm_response_prefix_t pre;
  uint32_t code;
  tdm_str_t text = { 0 };
  if (tdm_bench_wire_body(&c->wire, m, &body, &len) || tdm_response_strip_prefix(m->h.version, m->h.flags, body, len, &pre) ||
      tdm_response_peek_error_code(body + pre.message_offset, len - pre.message_offset, &code, &text)) {
    snprintf(buf, cap, "undecodable ERROR");
    return;
  }
  snprintf(buf, cap, "%s (0x%04x): %.*s", tdm_error_code_name(code), code, (int)TDM_MIN(text.len, 180u),
           text.ptr ? text.ptr : "");
}

static int on_prepared(tdm_bench_conn_t *c, const tdm_bench_msg_t *m)
{
  char why[256];
  int op = m->h.stream;
  if (op < 0 || op + 1 != (int)c->step || c->tmpl[op].body) {
    conn_fail(c, TDM_EPROTO_MALFORMED, "answer on an unexpected stream during PREPARE");
    return -1;
  }
  if (m->h.opcode == TDM_OP_ERROR) {
    error_text(c, m, why, sizeof(why));
    tdm_bench_worker_fail(c->worker, TDM_EINVAL, "PREPARE failed: %s", why);
    return -1;
  }
  const uint8_t *body;
  size_t len;
  tdm_response_prefix_t pre;
  tdm_response_prepared_ids_t ids;
  int rc = tdm_bench_wire_body(&c->wire, m, &body, &len);
  if (!rc) rc = tdm_response_strip_prefix(m->h.version, m->h.flags, body, len, &pre);
  if (!rc) rc = tdm_response_peek_prepared_ids(m->h.version, body + pre.message_offset, len - pre.message_offset, &ids);
  if (!rc) rc = tdm_bench_stmt_template(c->worker->o, (tdm_bench_op_t)op, ids.id, ids.result_metadata_id, &c->tmpl[op]);
  if (rc) {
    conn_fail(c, rc, "bad PREPARED answer");
    return -1;
  }
  return prepare_next(c);
}

static int on_handshake(tdm_bench_conn_t *c, const tdm_bench_msg_t *m)
{
  const tdm_bench_opts_t *o = c->worker->o;
  char why[256];
  switch (c->state) {
  case TDM_BENCH_CONN_STARTUP:
    if (m->h.opcode == TDM_OP_READY) {
      tdm_bench_wire_start(&c->wire);
      return after_auth(c);
    }
    if (m->h.opcode == TDM_OP_AUTHENTICATE) {
      tdm_bench_wire_start(&c->wire);
      if (!o->user) {
        tdm_bench_worker_fail(c->worker, TDM_EINVAL, "the server requires authentication: give --user/--password");
        return -1;
      }
      tdm_writer_t w;
      tdm_writer_init(&w);
      tdm_bench_stmt_auth(&w, o);
      set_state(c, TDM_BENCH_CONN_AUTH);
      return send_body(c, TDM_OP_AUTH_RESPONSE, 0, &w);
    }
    break;
  case TDM_BENCH_CONN_AUTH:
    if (m->h.opcode == TDM_OP_AUTH_SUCCESS) return after_auth(c);
    break;
  case TDM_BENCH_CONN_DDL: {
    if (m->h.opcode == TDM_OP_ERROR && !o->quiet) {
      error_text(c, m, why, sizeof(why));
      fprintf(stderr, "tdm-bench: setup statement %u: %s (ignored)\n", c->step, why);
    }
    c->step++;
    int rc = send_ddl(c);
    if (rc < 0) return -1;
    return rc > 0 ? become_ready(c) : 0;
  }
  case TDM_BENCH_CONN_PREPARE:
    return on_prepared(c, m);
  default:
    break;
  }
  if (m->h.opcode == TDM_OP_ERROR) {
    error_text(c, m, why, sizeof(why));
    tdm_bench_worker_fail(c->worker, TDM_EINVAL, "handshake refused: %s", why);
  } else {
    tdm_bench_worker_fail(c->worker, TDM_EPROTO_OPCODE, "unexpected %s during the handshake",
                          tdm_opcode_name(m->h.opcode));
  }
  return -1;
}

/* ---- load ---- */

static inline uint64_t next_rand(tdm_bench_conn_t *c)
{
  uint64_t x = c->rng; /* xorshift64* */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  c->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

int tdm_bench_conn_send(tdm_bench_conn_t *c, uint64_t t)
{
  const tdm_bench_opts_t *o = c->worker->o;
  TDM_ASSERT(c->n_free > 0 && c->state == TDM_BENCH_CONN_READY);
  uint64_t r = next_rand(c);
  tdm_bench_op_t op = o->workload == TDM_BENCH_MIX ? (tdm_bench_op_t)(r >> 63)
                      : o->workload == TDM_BENCH_SELECT ? TDM_BENCH_OP_SELECT : TDM_BENCH_OP_INSERT;
  const tdm_bench_tmpl_t *t_ = &c->tmpl[op];
  int16_t id = c->free_ids[c->n_free - 1];
  uint8_t *p = tdm_bench_wire_begin(&c->wire, TDM_OP_EXECUTE, id, t_->len);
  if (!p) return TDM_ENOMEM;
  memcpy(p, t_->body, t_->len);
  tdm_bench_tmpl_put_key(t_, p, (r & 0x7fffffffffffffffULL) % o->keys);
  int rc = tdm_bench_wire_end(&c->wire);
  if (rc) return rc;
  c->n_free--;
  c->sent_at[id] = t ? t : 1; /* 0 marks a free slot */
  c->op[id] = (uint8_t)op;
  c->worker->inflight++;
  return 0;
}

static int on_load_response(tdm_bench_conn_t *c, const tdm_bench_msg_t *m, uint64_t now)
{
  tdm_bench_worker_t *w = c->worker;
  int16_t id = m->h.stream;
  if (id < 0 || (uint32_t)id >= w->o->inflight || c->sent_at[id] == 0) {
    tdm_bench_worker_fail(w, TDM_EPROTO_MALFORMED, "connection %u: response on stream %d, which has no request",
                          c->index, id);
    return -1;
  }
  uint64_t t = c->sent_at[id];
  c->sent_at[id] = 0;
  c->free_ids[c->n_free++] = id;
  w->inflight--;
  if (m->h.opcode == TDM_OP_RESULT) {
    if (w->measuring) {
      tdm_bench_hist_record(&w->hist, now > t ? now - t : 0);
      w->completed++;
      w->by_op[c->op[id]]++;
      w->t_last = now;
    }
    return 0;
  }
  if (m->h.opcode == TDM_OP_ERROR) {
    if (w->measuring) w->errors++;
    if (!w->first_error[0]) error_text(c, m, w->first_error, sizeof(w->first_error));
    return 0;
  }
  tdm_bench_worker_fail(w, TDM_EPROTO_OPCODE, "connection %u: unexpected %s", c->index, tdm_opcode_name(m->h.opcode));
  return -1;
}

/* ---- input ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  tdm_bench_conn_t *c = h->data;
  if (c->rcap - c->rlen < RBUF_MIN / 2) {
    size_t n = c->rcap ? c->rcap * 2 : RBUF_MIN;
    uint8_t *p = realloc(c->rbuf, n);
    if (!p) {
      *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
      return;
    }
    c->rbuf = p;
    c->rcap = n;
  }
  *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  tdm_bench_conn_t *c = s->data;
  tdm_bench_worker_t *w = c->worker;
  if (nread == 0) return;
  if (nread < 0) {
    if (c->state != TDM_BENCH_CONN_CLOSING) conn_fail(c, (int)nread, "connection lost");
    return;
  }
  c->rlen += (size_t)nread;
  uint64_t now = uv_hrtime();
  size_t pos = 0;
  bool load = c->state == TDM_BENCH_CONN_READY && c->role == TDM_BENCH_ROLE_LOAD;
  for (;;) {
    size_t used;
    tdm_bench_msg_t m;
    int rc = tdm_bench_wire_next(&c->wire, c->rbuf + pos, c->rlen - pos, &used, &m);
    pos += used;
    if (rc < 0) {
      conn_fail(c, rc, "undecodable response");
      return;
    }
    if (rc == 0) break;
    if (c->state == TDM_BENCH_CONN_READY) {
      if (c->role != TDM_BENCH_ROLE_LOAD) {
        conn_fail(c, TDM_EPROTO_MALFORMED, "unsolicited response");
        return;
      }
      if (on_load_response(c, &m, now)) return;
    } else {
      if (on_handshake(c, &m)) return;
      if (c->state == TDM_BENCH_CONN_READY && c->role == TDM_BENCH_ROLE_LOAD) load = true;
    }
    if (w->done) return;
  }
  if (pos) {
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
  }
  if (load && w->load) tdm_bench_load_on_responses(w, c, now);
  else tdm_bench_conn_flush(c);
}

/* ---- lifetime ---- */

static void on_connect(uv_connect_t *req, int status)
{
  tdm_bench_conn_t *c = req->data;
  if (status < 0) {
    conn_fail(c, status, "connect failed");
    return;
  }
  if (c->state == TDM_BENCH_CONN_CLOSING) return;
  (void)uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc) {
    conn_fail(c, rc, "read failed");
    return;
  }
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_bench_stmt_startup(&w, c->worker->o);
  set_state(c, TDM_BENCH_CONN_STARTUP);
  if (send_body(c, TDM_OP_STARTUP, 0, &w) == 0) tdm_bench_conn_flush(c);
}

int tdm_bench_conn_start(tdm_bench_conn_t *c)
{
  const tdm_bench_opts_t *o = c->worker->o;
  struct sockaddr_storage ss;
  if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&ss) && uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&ss))
    return TDM_EINVAL;
  tdm_bench_wire_init(&c->wire, o->protocol, o->compression);
  c->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)c->worker->id << 32) ^ (c->index + 1) * 0xBF58476D1CE4E5B9ULL;
  int rc = uv_tcp_init(&c->worker->loop, &c->tcp);
  if (rc) return rc;
  c->tcp.data = c;
  c->open = true;
  c->worker->n_open++;
  c->connect_req.data = c;
  return uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&ss, on_connect);
}

static void on_close(uv_handle_t *h)
{
  tdm_bench_conn_t *c = h->data;
  c->worker->n_open--;
}

void tdm_bench_conn_close(tdm_bench_conn_t *c)
{
  if (!c->open || uv_is_closing((uv_handle_t *)&c->tcp)) return;
  set_state(c, TDM_BENCH_CONN_CLOSING);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

void tdm_bench_conn_free(tdm_bench_conn_t *c)
{
  tdm_bench_wire_free(&c->wire);
  for (int i = 0; i < TDM_BENCH_OPS; i++) tdm_bench_tmpl_free(&c->tmpl[i]);
  free(c->rbuf);
  free(c->wbuf);
  free(c->sent_at);
  free(c->op);
  free(c->free_ids);
  c->rbuf = c->wbuf = NULL;
  c->sent_at = NULL;
  c->op = NULL;
  c->free_ids = NULL;
}
