/* One pool connection to a node: its state machine, handshake, legs and internal requests.
 *
 *   CONNECTING --tcp--> STARTUP --READY--------------------------+--> [USE "<ks>"] --> READY --> DRAINING
 *                          \--AUTHENTICATE--> AUTH --AUTH_SUCCESS-/      (v2-v4, DSE_V1)         |
 *   any state --error / close--> CLOSED                                                           v
 *                                                                                               CLOSED
 * With a TLS context for the cluster, CONNECTING also covers the TLS handshake (started once TCP is
 * up, bounded by the handshake deadline); STARTUP is written when it completes, and a TLS failure
 * closes with the TLS module's message as the reason sessions report.
 * v5 switches to segments right after reading READY or AUTHENTICATE (§4.3). Legs go out as
 * [header with the backend stream id][body slice reference]; responses come back as a slice
 * reference into the read buffer. Internal requests (STARTUP, AUTH_RESPONSE, USE, heartbeat OPTIONS)
 * use the reserved ids and are consumed here. On close, every leg holding an id fails exactly once
 * (written=true); legs still queued in the pool never touched this connection. */
#include <stdarg.h>
#include <tandem/obs/log.h>
#include "internal.h"

static const char *const state_names[TDM_SERVER_STATE_MAX] = {
  [TDM_SERVER_CONNECTING] = "CONNECTING", [TDM_SERVER_STARTUP] = "STARTUP", [TDM_SERVER_AUTH] = "AUTH",
  [TDM_SERVER_USE] = "USE",               [TDM_SERVER_READY] = "READY",     [TDM_SERVER_DRAINING] = "DRAINING",
  [TDM_SERVER_CLOSED] = "CLOSED",
};

const char *tdm__server_state_name(tdm_server_state_t s) { return s < TDM_SERVER_STATE_MAX ? state_names[s] : "?"; }

static bool legal(tdm_server_state_t from, tdm_server_state_t to)
{
  if (to == TDM_SERVER_CLOSED) return from != TDM_SERVER_CLOSED;
  switch (from) {
  case TDM_SERVER_CONNECTING: return to == TDM_SERVER_STARTUP;
  case TDM_SERVER_STARTUP: return to == TDM_SERVER_AUTH || to == TDM_SERVER_USE || to == TDM_SERVER_READY;
  case TDM_SERVER_AUTH: return to == TDM_SERVER_USE || to == TDM_SERVER_READY;
  case TDM_SERVER_USE: return to == TDM_SERVER_READY;
  case TDM_SERVER_READY: return to == TDM_SERVER_DRAINING;
  default: return false;
  }
}

void tdm__server_set_state(tdm_backend_conn_t *bc, tdm_server_state_t to)
{
  tdm_server_state_t from = bc->state;
  TDM_ASSERT(legal(from, to));
  if (bc->pool) {
    TDM_ASSERT(bc->pool->nstate[from] > 0);
    bc->pool->nstate[from]--;
    if (to != TDM_SERVER_CLOSED) bc->pool->nstate[to]++;
  }
  bc->state = to;
  tdm_log_debug(bc->conn.tag, "%s -> %s", state_names[from], state_names[to]);
}

bool tdm__server_usable(const tdm_backend_conn_t *bc)
{
  return bc->state == TDM_SERVER_READY && !bc->password && !tdm_conn_is_closing(&bc->conn);
}

static uint64_t now_ms(const tdm_backend_conn_t *bc) { return uv_now(bc->be->loop); }

/* The node gauges this connection counts in: async-read pools are kept apart for metrics (§13.1). */
static uint32_t *node_ids(tdm_backend_conn_t *bc)
{
  return bc->async ? &bc->node->async_stream_ids : &bc->node->stream_ids;
}
static uint32_t *node_conns(tdm_backend_conn_t *bc) { return bc->async ? &bc->node->async_conns : &bc->node->conns; }

static void mark_dirty(tdm_backend_conn_t *bc)
{
  if (!bc->chan.dirty || tdm_list_linked(&bc->dirty_link)) return;
  tdm_list_insert_tail(&bc->be->dirty, &bc->dirty_link);
  tdm__backend_schedule(bc->be);
}

void tdm__server_flush(tdm_backend_conn_t *bc)
{
  tdm_list_remove(&bc->dirty_link);
  int rc = tdm__chan_flush(&bc->chan, bc->be->pool);
  if (rc < 0) tdm__server_close(bc, rc);
}

/* Fails the connection with a reason text (kept for sessions and waiting legs). */
static int fail(tdm_backend_conn_t *bc, int err, const char *fmt, ...) TDM_PRINTF(3, 4);
static int fail(tdm_backend_conn_t *bc, int err, const char *fmt, ...)
{
  if (!bc->fail_err) {
    bc->fail_err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bc->fail_reason, sizeof(bc->fail_reason), fmt, ap);
    va_end(ap);
  }
  tdm__server_close(bc, err);
  return 0;
}

void tdm__server_close(tdm_backend_conn_t *bc, int err) { tdm_conn_close(&bc->conn, err); }

/* ---- internal requests ---- */

static int send_internal(tdm_backend_conn_t *bc, int which, uint8_t opcode, const tdm_writer_t *body, int32_t *id_out)
{
  int id = tdm_streams_alloc_internal(&bc->streams, tdm__marker(bc->be, which));
  if (id < 0) return id;
  int rc = tdm__chan_send(&bc->chan, (int16_t)id, opcode, body->buf, body->len);
  if (rc < 0) {
    (void)tdm_streams_release(&bc->streams, id);
    return rc;
  }
  bc->last_write = now_ms(bc);
  *id_out = id;
  mark_dirty(bc);
  return 0;
}

static void release_internal(tdm_backend_conn_t *bc, int32_t id) { (void)tdm_streams_release(&bc->streams, id); }

static int send_startup(tdm_backend_conn_t *bc)
{
  const tdm_topology_t *topo = bc->be->cl[bc->pool->cluster].topo;
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm__startup_body(&w, topo ? topo->cql_version : NULL, bc->pool->compression);
  if (rc == 0) rc = send_internal(bc, TDM__INTERNAL_HANDSHAKE, TDM_OP_STARTUP, &w, &bc->hs_stream);
  tdm_writer_free(&w);
  return rc;
}

static void become_ready(tdm_backend_conn_t *bc)
{
  tdm__server_set_state(bc, TDM_SERVER_READY);
  bc->ever_ready = true;
  bc->deadline = 0;
  bc->last_write = bc->last_active = now_ms(bc);
  tdm__pool_t *pool = bc->pool;
  if (bc->password) {
    /* the credentials just verified are the identity's current ones (the pool reconnects with them) */
    if (strcmp(pool->password, bc->password) != 0) {
      char *p = strdup(bc->password);
      if (p) {
        for (volatile char *q = pool->password; *q; q++) *q = 0;
        free(pool->password);
        pool->password = p;
      }
    }
    for (volatile char *q = bc->password; *q; q++) *q = 0;
    free(bc->password);
    bc->password = NULL;
  }
  tdm_log_debug(bc->conn.tag, "%s pool connection ready (v%u, %s)", tdm__cluster_name(pool->cluster),
                (unsigned)bc->chan.version, tdm_compression_name(pool->compression));
  tdm__pool_conn_ready(pool, bc);
}

/* USE "<ks>" with embedded quotes doubled. */
static int send_use(tdm_backend_conn_t *bc)
{
  const char *ks = bc->pool->keyspace;
  size_t n = strlen(ks);
  char *q = malloc(2 * n + 8);
  if (!q) return TDM_ENOMEM;
  size_t k = 0;
  memcpy(q, "USE \"", 5);
  k = 5;
  for (size_t i = 0; i < n; i++) {
    if (ks[i] == '"') q[k++] = '"';
    q[k++] = ks[i];
  }
  q[k++] = '"';
  q[k] = '\0';
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm__query_body(&w, bc->chan.version, q);
  if (rc == 0) rc = send_internal(bc, TDM__INTERNAL_HANDSHAKE, TDM_OP_QUERY, &w, &bc->hs_stream);
  tdm_writer_free(&w);
  free(q);
  return rc;
}

static void after_auth(tdm_backend_conn_t *bc)
{
  if (bc->pool->keyspace[0]) {
    int rc = send_use(bc);
    if (rc < 0) {
      fail(bc, rc, "cannot send USE: %s", tdm_strerror(rc));
      return;
    }
    tdm__server_set_state(bc, TDM_SERVER_USE);
    return;
  }
  become_ready(bc);
}

static void creds_of(const tdm_backend_conn_t *bc, const char **authzid, const char **user, const char **password)
{
  const tdm__pool_t *pool = bc->pool;
  if (pool->client_creds) {
    *authzid = pool->authzid;
    *user = pool->user;
    *password = bc->password ? bc->password : pool->password;
    return;
  }
  *authzid = "";
  tdm__backend_conf_creds(bc->be, pool->cluster, user, password);
}

static int send_auth(tdm_backend_conn_t *bc, const tdm_bytes_t *challenge)
{
  const char *authzid, *user, *password, *why = NULL;
  creds_of(bc, &authzid, &user, &password);
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm__sasl_next(&bc->sasl, challenge, authzid, user, password, &w, &why);
  if (rc == 0) rc = send_internal(bc, TDM__INTERNAL_HANDSHAKE, TDM_OP_AUTH_RESPONSE, &w, &bc->hs_stream);
  tdm_writer_free(&w);
  if (rc < 0) fail(bc, rc, "%s", why ? why : tdm_strerror(rc));
  return rc;
}

/* The cluster answered the handshake with an ERROR: keep its body for the session (relayed verbatim). */
static void refused(tdm_backend_conn_t *bc, const tdm__msg_t *m, const tdm_response_error_t *e, uint8_t version)
{
  bc->refused = true;
  free(bc->err_body);
  bc->err_body = malloc(m->len ? m->len : 1);
  if (bc->err_body) {
    memcpy(bc->err_body, m->body, m->len);
    bc->err_len = m->len;
  }
  bool vers = tdm__is_version_refusal(e->code, e->message);
  tdm_log_debug(bc->conn.tag, "%s refused the %s handshake (v%u): %s: %.*s", tdm__cluster_name(bc->pool->cluster),
                state_names[bc->state], (unsigned)version, tdm_error_code_name(e->code), (int)e->message.len,
                e->message.ptr ? e->message.ptr : "");
  fail(bc, vers ? TDM_EPROTO_VERSION : TDM_EINVAL, "%s: %.*s", tdm_error_code_name(e->code), (int)e->message.len,
       e->message.ptr ? e->message.ptr : "");
}

static int on_handshake_frame(tdm_backend_conn_t *bc, const tdm__frame_t *f)
{
  if (f->h.stream != bc->hs_stream) {
    /* a version refusal may come back on stream 0 in another header version */
    if (!(bc->state == TDM_SERVER_STARTUP && f->h.opcode == TDM_OP_ERROR)) return 0;
  }
  release_internal(bc, bc->hs_stream);
  bc->hs_stream = -1;
  tdm__msg_t m;
  tdm_response_t r;
  const char *why = "undecodable response";
  int rc = tdm__msg_open(f, bc->pool->compression, &m);
  if (rc == 0) rc = tdm_response_decode(f->h.version, f->h.opcode, m.body, m.len, &r, &why);
  if (rc < 0) {
    tdm__msg_close(&m);
    /* an undecodable reply to STARTUP counts as a version refusal (§3) */
    bc->refused = bc->state == TDM_SERVER_STARTUP;
    return fail(bc, bc->refused ? TDM_EPROTO_VERSION : TDM_EPROTO_MALFORMED, "%s to %s", why,
                state_names[bc->state]);
  }
  bool v5 = tdm_proto_has_segments(bc->chan.version);
  switch (f->h.opcode) {
  case TDM_OP_READY:
    if (bc->state != TDM_SERVER_STARTUP) break;
    if (v5) tdm__chan_start_segments(&bc->chan, bc->pool->compression == TDM_COMPRESSION_LZ4);
    tdm__msg_close(&m);
    after_auth(bc);
    return 0;
  case TDM_OP_AUTHENTICATE:
    if (bc->state != TDM_SERVER_STARTUP) break;
    if (v5) tdm__chan_start_segments(&bc->chan, bc->pool->compression == TDM_COMPRESSION_LZ4);
    tdm__server_set_state(bc, TDM_SERVER_AUTH);
    tdm__sasl_start(&bc->sasl, r.authenticator);
    tdm__msg_close(&m);
    {
      const char *authzid, *user, *password;
      creds_of(bc, &authzid, &user, &password);
      if (!user[0]) {
        int cl = bc->pool->cluster;
        return fail(bc, TDM_ECONF, "%s requires authentication but %s_username is not set", tdm__cluster_name(cl),
                    tdm__cluster_key(cl));
      }
    }
    send_auth(bc, NULL);
    return 0;
  case TDM_OP_AUTH_CHALLENGE:
    if (bc->state != TDM_SERVER_AUTH) break;
    {
      tdm_bytes_t token = r.token;
      send_auth(bc, &token);
    }
    tdm__msg_close(&m);
    return 0;
  case TDM_OP_AUTH_SUCCESS:
    if (bc->state != TDM_SERVER_AUTH) break;
    tdm__msg_close(&m);
    after_auth(bc);
    return 0;
  case TDM_OP_RESULT:
    if (bc->state != TDM_SERVER_USE) break;
    tdm__msg_close(&m);
    become_ready(bc);
    return 0;
  case TDM_OP_ERROR:
    refused(bc, &m, &r.error, f->h.version);
    tdm__msg_close(&m);
    return 0;
  default:
    break;
  }
  tdm__msg_close(&m);
  return fail(bc, TDM_EPROTO_MALFORMED, "unexpected %s during %s", tdm_opcode_name(f->h.opcode),
              state_names[bc->state]);
}

/* ---- legs ---- */

void tdm__server_write_leg(tdm_backend_conn_t *bc, tdm_leg_t *leg)
{
  int id = tdm_streams_alloc(&bc->streams, leg);
  if (id < 0) {
    /* callers checked for a free id, so only the id table's growth can fail: nothing was sent */
    tdm__leg_fail(leg, id, false, bc->node->name);
    return;
  }
  tdm_frame_header_t h = { .version = bc->chan.version, .flags = leg->flags, .stream = (int16_t)id,
                           .opcode = leg->opcode };
  int rc = tdm__chan_write(&bc->chan, &h, leg->body, leg->body_off, leg->body_len);
  if (rc < 0) {
    /* nothing left: the connection goes, the leg is offered to the pool again (never sent) */
    (void)tdm_streams_release(&bc->streams, id);
    leg->state = TDM__LEG_NEW;
    tdm__pool_t *pool = bc->pool;
    bool pinned = pool->pinned;
    pool->pinned = true; /* the close below must not free the pool the leg goes back to */
    tdm__server_close(bc, rc);
    pool->pinned = pinned;
    tdm__pool_submit(pool, leg);
    return;
  }
  uint64_t now = now_ms(bc);
  leg->stream = id;
  leg->conn = bc;
  leg->state = TDM__LEG_WRITTEN;
  leg->node = bc->node->index;
  leg->sent_at_ms = now;
  bc->inflight++;
  bc->node->inflight++;
  (*node_ids(bc))++;
  bc->last_write = now;
  mark_dirty(bc);
}

/* A client id came back: the counters first (before any callback may close the connection). Node
 * gauges: inflight counts legs someone still waits for, stream_ids also the orphans. */
static void id_accounted(tdm_backend_conn_t *bc, bool orphan)
{
  bc->inflight--;
  if (!orphan) bc->node->inflight--;
  (*node_ids(bc))--;
  if (bc->inflight == 0) bc->last_active = now_ms(bc);
}

/* Then: close a draining connection once empty, feed the pool's queue. */
static void id_reusable(tdm_backend_conn_t *bc)
{
  if (tdm_conn_is_closing(&bc->conn)) return;
  if (bc->state == TDM_SERVER_DRAINING && bc->inflight == 0) {
    tdm__server_close(bc, 0);
    return;
  }
  if (bc->pool && bc->pool->nwait) tdm__pool_drain_waitq(bc->pool);
}

static int on_leg_frame(tdm_backend_conn_t *bc, const tdm__frame_t *f)
{
  int32_t id = f->h.stream;
  void *owner = tdm_streams_owner(&bc->streams, id);
  if (!owner) {
    tdm_log_debug(bc->conn.tag, "response on stream %d, which is not in use: ignored", (int)id);
    return 0;
  }
  tdm_backend_t *be = bc->be;
  if (tdm_streams_is_internal(&bc->streams, id)) {
    release_internal(bc, id);
    if (owner == tdm__marker(be, TDM__INTERNAL_HEARTBEAT) && id == bc->hb_stream) bc->hb_stream = -1;
    return 0;
  }
  (void)tdm_streams_release(&bc->streams, id);
  if (owner == tdm__marker(be, TDM__INTERNAL_ORPHAN)) {
    bc->orphans--;
    be->cl[bc->node->cluster].late_responses++;
    tdm_log_trace(bc->conn.tag, "late response on stream %d discarded", (int)id);
    id_accounted(bc, true);
    id_reusable(bc);
    return 0;
  }
  tdm_leg_t *leg = owner;
  id_accounted(bc, false);
  size_t off = 0;
  tdm_slice_t *slice = tdm__chan_share(&bc->chan, f, be->pool, &off);
  leg->state = TDM__LEG_DONE;
  leg->conn = NULL;
  if (!slice) {
    tdm__leg_fail(leg, TDM_ENOMEM, true, bc->node->name);
  } else {
    tdm_frame_header_t h = f->h;
    leg->on_response(leg, &h, slice, slice->data + off, f->len);
    tdm_slice_unref(slice);
  }
  /* the leg may be gone now; only the connection is touched below (a reference is held by conn.c) */
  id_reusable(bc);
  return 0;
}

static int on_frame(void *arg, const tdm__frame_t *f)
{
  tdm_backend_conn_t *bc = arg;
  if (f->h.stream < 0) return 0; /* EVENTs on pool connections: events come from the control connection */
  if (bc->state < TDM_SERVER_READY) return on_handshake_frame(bc, f);
  return on_leg_frame(bc, f);
}

static int on_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  tdm_backend_conn_t *bc = c->data;
  int rc = tdm__chan_parse(&bc->chan, data, len, on_frame, bc);
  if (rc < 0 && !bc->fail_err) {
    bc->fail_err = rc;
    tdm__textf(bc->fail_reason, sizeof(bc->fail_reason), "%s", tdm_strerror(rc));
  }
  return rc;
}

/* ---- lifecycle ---- */

static void on_connected(tdm_conn_t *c, int status)
{
  tdm_backend_conn_t *bc = c->data;
  if (status < 0) {
    /* conn.c closes the connection right after this callback */
    if (!bc->fail_err) {
      bc->fail_err = status;
      if (status == TDM_ETIMEOUT)
        tdm__textf(bc->fail_reason, sizeof(bc->fail_reason), "connect timed out after %llu ms",
                 (unsigned long long)tdm__backend_connect_timeout(bc->be, bc->pool->cluster));
      else
        tdm__textf(bc->fail_reason, sizeof(bc->fail_reason), "%s", tdm_strerror(status));
    }
    return;
  }
  if (tdm_tls_active(c)) {
    /* still CONNECTING: reading sends the ClientHello; STARTUP follows in on_tls_ready, and the
     * handshake deadline (bc->deadline) bounds the TLS handshake too */
    int rc = tdm_conn_read_start(c);
    if (rc < 0) fail(bc, rc, "%s", tdm_strerror(rc));
    return;
  }
  tdm__server_set_state(bc, TDM_SERVER_STARTUP);
  int rc = tdm_conn_read_start(c);
  if (rc == 0) rc = send_startup(bc);
  if (rc < 0) fail(bc, rc, "%s", tdm_strerror(rc));
}

/* TLS handshake done (failures close the connection instead: on_close reads tdm_tls_error). */
static void on_tls_ready(tdm_conn_t *c, int status)
{
  tdm_backend_conn_t *bc = c->data;
  if (status < 0 || bc->state != TDM_SERVER_CONNECTING || tdm_conn_is_closing(c)) return;
  tdm__server_set_state(bc, TDM_SERVER_STARTUP);
  int rc = send_startup(bc);
  if (rc < 0) fail(bc, rc, "%s", tdm_strerror(rc));
}

static void fail_written(tdm_backend_conn_t *bc, int err)
{
  tdm_backend_t *be = bc->be;
  tdm_list_t legs;
  tdm_list_init(&legs);
  tdm_streams_t *s = &bc->streams;
  for (uint32_t id = 0; id < s->high; id++) {
    void *owner = tdm_streams_release(s, (int32_t)id);
    if (!owner) continue;
    (*node_ids(bc))--;
    if (owner == tdm__marker(be, TDM__INTERNAL_ORPHAN)) continue;
    bc->node->inflight--;
    tdm_leg_t *leg = owner;
    leg->state = TDM__LEG_DONE;
    tdm_list_insert_tail(&legs, &leg->link);
  }
  for (uint32_t id = s->client_limit; id < s->total; id++) (void)tdm_streams_release(s, (int32_t)id);
  bc->inflight = 0;
  bc->orphans = 0;
  tdm_list_t *n;
  while ((n = tdm_list_pop(&legs))) tdm__leg_fail(TDM_CONTAINER_OF(n, tdm_leg_t, link), err, true, bc->node->name);
}

static void on_close(tdm_conn_t *c, int reason)
{
  tdm_backend_conn_t *bc = c->data;
  tdm__pool_t *pool = bc->pool;
  tdm_server_state_t was = bc->state;
  if (!bc->fail_err && reason) {
    bc->fail_err = reason;
    const char *tls_err = tdm_tls_error(c); /* "<CLUSTER> TLS: <cause> (<certificate, file>)" */
    tdm__textf(bc->fail_reason, sizeof(bc->fail_reason), "%s",
             tls_err ? tls_err : reason == UV_EOF ? "connection closed by the node" : tdm_strerror(reason));
  }
  if (tdm_tls_is_error(reason) && !pool->be->closing)
    tdm_log_warn(c->tag, "%s pool connection to %s: %s", tdm__cluster_name(pool->cluster), bc->node->name,
                 bc->fail_reason);
  tdm__server_set_state(bc, TDM_SERVER_CLOSED);
  tdm_list_remove(&bc->dirty_link);
  tdm_list_remove(&bc->link);
  pool->nconns--;
  (*node_conns(bc))--;
  bc->pool = NULL;
  if (reason && reason != TDM_ECLOSED)
    tdm_log_debug(c->tag, "%s pool connection closed in %s: %s", tdm__cluster_name(pool->cluster), state_names[was],
                  bc->fail_reason);
  if (!bc->ever_ready) {
    /* a handshake that did not finish: a transport failure (refused, timed out, reset) puts the node
     * in cooldown; an answer from the cluster (refusal, bad credentials) does not, nor does a TLS
     * failure (certificate, name, TLS off on the node: configuration, and the node's open pools work) */
    bool transport = !bc->refused && bc->fail_err != TDM_ECONF && bc->fail_err != TDM_EPROTO_MALFORMED &&
                     !tdm_tls_is_error(bc->fail_err) && !pool->be->closing;
    if (transport) tdm__node_cooldown(pool->be, bc->node);
    /* a failed connection for metrics, unless it was closed on purpose (reason 0: node left; backend
     * closing) or only the client's password was refused on a verification connection */
    bool client_refused = bc->password && bc->refused && bc->fail_err == TDM_EINVAL;
    if (reason && !pool->be->closing && !client_refused)
      pool->be->cl[pool->cluster].failed_conns[bc->async ? 1 : 0]++;
    tdm__pool_conn_failed(pool, bc, transport);
  } else {
    fail_written(bc, reason == TDM_ETIMEOUT ? TDM_ETIMEOUT : TDM_ECLOSED);
    tdm__pool_conn_lost(pool);
  }
  if (bc->session) {
    /* a verification whose session was not settled above (closing backend) */
    tdm__session_finish(bc->session, bc->fail_err ? bc->fail_err : TDM_ECLOSED, NULL, 0, bc->fail_reason);
  }
  tdm__pool_maybe_free(pool);
}

static void on_destroy(tdm_conn_t *c)
{
  tdm_backend_conn_t *bc = c->data;
  tdm_backend_t *be = bc->be;
  tdm_streams_free(&bc->streams);
  tdm__chan_free(&bc->chan);
  free(bc->err_body);
  if (bc->password) {
    for (volatile char *q = bc->password; *q; q++) *q = 0;
    free(bc->password);
  }
  free(bc);
  tdm__backend_conn_gone(be);
}

static const tdm_conn_hooks_t server_hooks = {
  .on_data = on_data,
  .on_close = on_close,
  .on_destroy = on_destroy,
};

static uint32_t stream_total(const tdm_backend_t *be, uint8_t version)
{
  uint32_t n = be->conf && be->conf->proxy_max_stream_ids > 0 ? (uint32_t)be->conf->proxy_max_stream_ids
                                                               : TDM_STREAMS_MAX;
  n = TDM_MIN(n, TDM_STREAMS_MAX);
  if (tdm_proto_is_v2_header(version)) n = TDM_MIN(n, TDM_STREAMS_MAX_V2);
  return TDM_MAX(n, 2u);
}

int tdm__server_open_ex(tdm__pool_t *pool, const char *password, tdm__session_t *s)
{
  tdm_backend_t *be = pool->be;
  tdm_backend_conn_t *bc = calloc(1, sizeof(*bc));
  if (!bc) return TDM_ENOMEM;
  int rc = tdm_streams_init(&bc->streams, stream_total(be, pool->version));
  if (rc == 0 && password && !(bc->password = strdup(password))) rc = TDM_ENOMEM;
  if (rc == 0) rc = tdm_conn_init(&bc->conn, &be->net, &server_hooks, bc);
  if (rc < 0) {
    tdm_streams_free(&bc->streams);
    free(bc->password);
    free(bc);
    return rc;
  }
  bc->be = be;
  bc->pool = pool;
  bc->node = pool->node;
  bc->hb_stream = -1;
  bc->hs_stream = -1;
  bc->state = TDM_SERVER_CONNECTING;
  tdm_list_init(&bc->link);
  tdm_list_init(&bc->dirty_link);
  tdm__chan_init(&bc->chan, &bc->conn, pool->version);
  tdm_conn_set_name(&bc->conn, pool->async ? 'A' : (pool->cluster == TDM_CONF_TARGET ? 'T' : 'O'), ++be->next_conn_id);
  tdm_conn_set_watermarks(&bc->conn, 0, 0);
  pool->nstate[TDM_SERVER_CONNECTING]++;
  tdm_list_insert_tail(&pool->conns, &bc->link);
  pool->nconns++;
  bc->async = pool->async;
  (*node_conns(bc))++;
  be->live_conns++;
  if (s) {
    s->conn = bc;
    bc->session = s;
  }
  uint64_t now = uv_now(be->loop);
  bc->deadline = now + tdm__backend_handshake_timeout(be, pool->cluster, pool->async);
  tdm__backend_tick_start(be);
  tdm_log_debug(bc->conn.tag, "%s pool connection to %s opening (v%u, %s)", tdm__cluster_name(pool->cluster),
                pool->node->name, (unsigned)pool->version, tdm_compression_name(pool->compression));
  tdm_tls_ctx_t *tls = be->tls.cluster[pool->cluster];
  if (tls) {
    /* the name sent as SNI and checked: {c}_tls_server_name, else the node's address (IP SAN) */
    const char *name = be->conf ? tdm_tls_server_name(&be->conf->cluster[pool->cluster], pool->node->host)
                                : pool->node->host;
    rc = tdm_tls_client(&bc->conn, tls, name, on_tls_ready);
    if (rc < 0) {
      fail(bc, rc, "%s TLS: cannot start a session for '%s': %s", tdm__cluster_name(pool->cluster), name,
           tdm_strerror(rc));
      return 0; /* closed at once, like a synchronous connect failure below */
    }
  }
  /* a synchronous failure closes the connection at once: on_close tells the pool and the session */
  (void)tdm_conn_connect(&bc->conn, &pool->node->addr, tdm__backend_connect_timeout(be, pool->cluster),
                         on_connected);
  return 0;
}

void tdm__server_drain(tdm_backend_conn_t *bc)
{
  if (bc->state == TDM_SERVER_CLOSED || bc->state == TDM_SERVER_DRAINING) return;
  if (bc->state != TDM_SERVER_READY) {
    tdm__server_close(bc, 0);
    return;
  }
  tdm__server_set_state(bc, TDM_SERVER_DRAINING);
  const tdm_conf_t *conf = bc->be->conf;
  bc->deadline = now_ms(bc) + (conf ? (uint64_t)conf->proxy_request_timeout_ms : 10000u);
  if (bc->inflight == 0) tdm__server_close(bc, 0);
}

static void send_heartbeat(tdm_backend_conn_t *bc, uint64_t now)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = send_internal(bc, TDM__INTERNAL_HEARTBEAT, TDM_OP_OPTIONS, &w, &bc->hb_stream);
  tdm_writer_free(&w);
  if (rc < 0) {
    bc->hb_stream = -1;
    return;
  }
  bc->hb_sent = now;
  tdm_log_trace(bc->conn.tag, "heartbeat OPTIONS on stream %d", (int)bc->hb_stream);
}

void tdm__server_tick(tdm_backend_conn_t *bc, uint64_t now)
{
  const tdm_conf_t *conf = bc->be->conf;
  uint64_t hb = conf && conf->heartbeat_interval_ms > 0 ? (uint64_t)conf->heartbeat_interval_ms : 30000u;
  uint64_t reply = conf && conf->proxy_request_timeout_ms > 0 ? (uint64_t)conf->proxy_request_timeout_ms : 10000u;
  uint64_t idle = conf && conf->backend_pool_idle_timeout_ms > 0 ? (uint64_t)conf->backend_pool_idle_timeout_ms
                                                                  : 300000u;
  switch (bc->state) {
  case TDM_SERVER_CONNECTING:
  case TDM_SERVER_STARTUP:
  case TDM_SERVER_AUTH:
  case TDM_SERVER_USE:
    if (bc->deadline && now >= bc->deadline)
      fail(bc, TDM_ETIMEOUT, "%s timed out after %llu ms",
           bc->state == TDM_SERVER_CONNECTING && !bc->conn.connecting && tdm_tls_active(&bc->conn) ? "TLS handshake"
                                                                                                 : "handshake",
           (unsigned long long)tdm__backend_handshake_timeout(bc->be, bc->pool->cluster, bc->pool->async));
    return;
  case TDM_SERVER_READY:
    if (bc->hb_stream >= 0) {
      if (now - bc->hb_sent >= reply) fail(bc, TDM_ETIMEOUT, "no heartbeat reply within %llu ms", (unsigned long long)reply);
      return;
    }
    if (now - bc->last_write >= hb) {
      send_heartbeat(bc, now);
      return;
    }
    if (bc->inflight == 0 && bc->pool->nstate[TDM_SERVER_READY] > 1 && now - bc->last_active >= idle) {
      tdm_log_debug(bc->conn.tag, "idle for %llu ms: closing", (unsigned long long)(now - bc->last_active));
      tdm__server_drain(bc);
    }
    return;
  case TDM_SERVER_DRAINING:
    if (bc->inflight == 0)
      tdm__server_close(bc, 0);
    else if (bc->deadline && now >= bc->deadline)
      tdm__server_close(bc, TDM_ECLOSED);
    return;
  default:
    return;
  }
}
