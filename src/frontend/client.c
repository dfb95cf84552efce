/* A client connection: the state machine and its single setter, accept and close, in-flight stream
 * ids, backpressure, and the calls through which the route module answers requests. Reading lives in
 * client_read.c, writing (v3/v4 frames, v5 segments) in client_write.c, the handshake in handshake.c
 * and auth.c. Lifetime: the base connection's reference count keeps the struct; it is freed from the
 * conn's on_destroy, which touches nothing but the client itself (the frontend may be gone by then). */
#include <openssl/crypto.h>
#include <unistd.h>

#include <tandem/frontend/client.h>
#include <tandem/obs/log.h>
#include <tandem/route/route.h>
#include <tandem/util/time.h>

#include "internal.h"

static const char *const k_state_names[TDM_CLIENT_STATE_MAX] = {
  [TDM_CLIENT_STARTUP] = "STARTUP",
  [TDM_CLIENT_AUTHENTICATING] = "AUTHENTICATING",
  [TDM_CLIENT_WAIT_BACKENDS] = "WAIT_BACKENDS",
  [TDM_CLIENT_READY] = "READY",
  [TDM_CLIENT_REFUSED_VERSION] = "REFUSED_VERSION",
  [TDM_CLIENT_DRAINING] = "DRAINING",
  [TDM_CLIENT_CLOSED] = "CLOSED",
};

#define S(x) (1u << TDM_CLIENT_##x)
/* k_legal[from] has bit `to` set when from -> to is a legal transition. */
static const uint32_t k_legal[TDM_CLIENT_STATE_MAX] = {
  [TDM_CLIENT_STARTUP] = S(AUTHENTICATING) | S(WAIT_BACKENDS) | S(REFUSED_VERSION) | S(DRAINING) | S(CLOSED),
  [TDM_CLIENT_AUTHENTICATING] = S(WAIT_BACKENDS) | S(DRAINING) | S(CLOSED),
  /* back to AUTHENTICATING after BAD_CREDENTIALS, to STARTUP when configured credentials were refused
   * on a cluster that checks no client (the client may retry), REFUSED_VERSION when a node refused */
  [TDM_CLIENT_WAIT_BACKENDS] = S(READY) | S(AUTHENTICATING) | S(STARTUP) | S(REFUSED_VERSION) | S(DRAINING) | S(CLOSED),
  [TDM_CLIENT_READY] = S(DRAINING) | S(CLOSED),
  [TDM_CLIENT_REFUSED_VERSION] = S(CLOSED),
  [TDM_CLIENT_DRAINING] = S(CLOSED),
  [TDM_CLIENT_CLOSED] = 0,
};
#undef S

const char *tdm__client_state_name(enum tdm_client_state s)
{
  return (unsigned)s < TDM_CLIENT_STATE_MAX ? k_state_names[s] : "?";
}

void tdm__client_set_state(tdm_client_t *c, enum tdm_client_state to)
{
  enum tdm_client_state from = c->state;
  TDM_ASSERT((unsigned)to < TDM_CLIENT_STATE_MAX);
  TDM_ASSERT(k_legal[from] & (1u << to));
  TDM_ASSERT(c->fe->states[from] > 0);
  c->fe->states[from]--;
  c->fe->states[to]++;
  c->state = to;
  tdm_log_debug(c->conn.tag, "%s -> %s", k_state_names[from], k_state_names[to]);
}

/* ---- in-flight stream ids: 32 pages of 1024 bits, allocated when first used ---- */

bool tdm__stream_busy(const tdm_client_t *c, int16_t stream)
{
  if (stream < 0) return false;
  const uint64_t *page = c->streams[(uint16_t)stream >> 10];
  unsigned bit = (uint16_t)stream & 1023u;
  return page && (page[bit >> 6] >> (bit & 63)) & 1u;
}

int tdm__stream_take(tdm_client_t *c, int16_t stream)
{
  TDM_ASSERT(stream >= 0);
  uint64_t **page = &c->streams[(uint16_t)stream >> 10];
  if (!*page && !(*page = calloc(1024 / 64, sizeof(uint64_t)))) return TDM_ENOMEM;
  unsigned bit = (uint16_t)stream & 1023u;
  TDM_ASSERT(!(((*page)[bit >> 6] >> (bit & 63)) & 1u));
  (*page)[bit >> 6] |= (uint64_t)1 << (bit & 63);
  c->view.inflight++;
  return 0;
}

void tdm__stream_free(tdm_client_t *c, int16_t stream)
{
  if (!tdm__stream_busy(c, stream)) return;
  uint64_t *page = c->streams[(uint16_t)stream >> 10];
  unsigned bit = (uint16_t)stream & 1023u;
  page[bit >> 6] &= ~((uint64_t)1 << (bit & 63));
  TDM_ASSERT(c->view.inflight > 0);
  c->view.inflight--;
  if (c->state == TDM_CLIENT_DRAINING) tdm__client_drain_check(c);
}

/* ---- lifecycle ---- */

static int version_slot(uint8_t v)
{
  switch (v) {
  case TDM_PROTO_V2: return 0;
  case TDM_PROTO_V3: return 1;
  case TDM_PROTO_V4: return 2;
  case TDM_PROTO_V5: return 3;
  case TDM_PROTO_DSE_V1: return 4;
  case TDM_PROTO_DSE_V2: return 5;
  default: return -1;
  }
}

void tdm__client_handshake_done(tdm_client_t *c)
{
  if (!tdm_list_linked(&c->hs_link)) return;
  tdm_list_remove(&c->hs_link);
  tdm__frontend_arm_timer(c->fe);
}

static void on_high(tdm_conn_t *conn)
{
  tdm_client_t *c = tdm__client_of(conn);
  c->view.pw->stats.backpressure_pauses_client++;
  tdm_conn_read_pause(conn, TDM_CONN_PAUSE_OWN_OUTPUT);
}

static void on_low(tdm_conn_t *conn) { tdm_conn_read_resume(conn, TDM_CONN_PAUSE_OWN_OUTPUT); }

/* Closing began: everything that refers to this client lets go, counters move, the frontend forgets
 * it. After this nothing touches c->fe. */
static void on_close(tdm_conn_t *conn, int reason)
{
  tdm_client_t *c = tdm__client_of(conn);
  tdm_frontend_t *fe = c->fe;
  tdm_proxy_worker_t *pw = c->view.pw;
  bool routed = c->state == TDM_CLIENT_READY || c->state == TDM_CLIENT_DRAINING;
  tdm__hs_cancel(c);
  tdm__client_set_state(c, TDM_CLIENT_CLOSED);
  if (routed) tdm_route_client_gone(c);
  tdm_list_remove(&c->link);
  tdm__client_handshake_done(c);
  tdm__client_out_free(c);
  tdm__auth_wipe(c);
  if (tdm_tls_is_error(reason)) {
    /* only this socket closes (§11.4); a failure after the handshake is not a refusal */
    if (reason != TDM_ETLS_PROTOCOL) pw->stats.client_refused_tls++;
    const char *why = tdm_tls_error(conn);
    tdm_log_warn(conn->tag, "%s: %s", reason == TDM_ETLS_PROTOCOL ? "TLS session failed" : "TLS handshake refused",
                 why ? why : tdm_strerror(reason));
  }
  int slot = c->counted_version ? version_slot(c->view.version) : -1;
  if (slot >= 0) pw->stats.client_versions[slot]--;
  TDM_ASSERT(fe->admitted > 0 && pw->stats.client_connections > 0);
  fe->admitted--;
  pw->stats.client_connections--;
  fe->states[TDM_CLIENT_CLOSED]--; /* a closed client no longer counts anywhere */
  tdm_log_debug(conn->tag, "closed (%s)", reason ? tdm_strerror(reason) : "done");
}

static void on_destroy(tdm_conn_t *conn)
{
  tdm_client_t *c = tdm__client_of(conn);
  for (size_t i = 0; i < TDM_FRONTEND_STREAM_PAGES; i++) free(c->streams[i]);
  tdm_envelope_reader_free(&c->reader);
  if (c->cred_buf) OPENSSL_cleanse(c->cred_buf, c->cred_len);
  free(c->cred_buf);
  free(c);
}

static const tdm_conn_hooks_t k_hooks = {
  .on_data = tdm__client_on_data,
  .on_high = on_high,
  .on_low = on_low,
  .on_close = on_close,
  .on_destroy = on_destroy,
};

int tdm__client_accept(tdm_frontend_t *fe, uv_os_sock_t fd)
{
  tdm_proxy_worker_t *pw = fe->pw;
  tdm_client_t *c = calloc(1, sizeof(*c));
  if (!c) {
    close(fd);
    return TDM_ENOMEM;
  }
  int rc = tdm_conn_init(&c->conn, fe->net, &k_hooks, c);
  if (rc < 0) {
    free(c);
    close(fd);
    return rc;
  }
  /* registered before the socket is adopted, so that a failing open unwinds through on_close */
  c->fe = fe;
  c->auth_cluster = -1;
  tdm_list_init(&c->link);
  tdm_list_init(&c->hs_link);
  tdm_list_init(&c->seal_link);
  c->accepted_ms = tdm_time_loop_ms(pw->loop);
  c->view.pw = pw;
  c->view.id = ++fe->next_id;
  c->view.peer = c->peer;
  c->view.local = c->local;
  c->view.keyspace = c->keyspace;
  fe->states[TDM_CLIENT_STARTUP]++; /* a zeroed client is in STARTUP (rule 11) */
  fe->admitted++;
  pw->stats.client_connections++;
  tdm_list_insert_tail(&pw->clients, &c->link);
  tdm_list_insert_tail(&fe->handshaking, &c->hs_link);
  tdm__frontend_arm_timer(fe);

  tdm_conn_set_name(&c->conn, 'C', c->view.id);
  (void)tdm_sockaddr_local_of(fd, &c->local_addr);
  tdm_sockaddr_format(&c->local_addr, c->local, sizeof(c->local));
  int64_t high = pw->conf ? pw->conf->backpressure_high_water_bytes : 0;
  if (high > 0) tdm_conn_set_watermarks(&c->conn, (size_t)high, (size_t)high / 2);
  rc = tdm_conn_open(&c->conn, fd);
  if (rc == 0) {
    tdm_sockaddr_format(&c->conn.peer, c->peer, sizeof(c->peer));
    /* client-facing TLS: the first byte tells a ClientHello from plaintext CQL (net/tls.h); a failed
     * handshake closes this socket with a TDM_ETLS_* reason (on_close counts and logs it) */
    if (pw->tls.client) rc = tdm_tls_server(&c->conn, pw->tls.client, pw->tls.allow_plaintext, NULL);
  }
  if (rc == 0) rc = tdm_conn_read_start(&c->conn);
  if (rc < 0) {
    tdm_conn_close(&c->conn, rc); /* no-op when already closing */
    return rc;
  }
  tdm_log_debug(c->conn.tag, "accepted on %s", c->local);
  return 0;
}

void tdm__client_close_after_flush(tdm_client_t *c)
{
  if (!tdm__client_alive(c)) return;
  tdm__client_seal(c);
  tdm_conn_close_after_flush(&c->conn, TDM_FRONTEND_LINGER_MS);
}

void tdm__client_set_version(tdm_client_t *c, uint8_t version)
{
  c->version_set = true;
  c->view.version = version;
  for (int k = 0; k < TDM_CONF_CLUSTER_MAX; k++) {
    c->view.key[k].version = version;
    /* pools are keyed by keyspace only where requests cannot carry one (§0) */
    c->view.key[k].keyspace = tdm_proto_has_request_keyspace(version) ? NULL : c->keyspace;
  }
  int slot = version_slot(version);
  if (slot >= 0) {
    c->view.pw->stats.client_versions[slot]++;
    c->counted_version = true;
  }
}

/* ---- the route module's side (client.h) ---- */

const tdm_client_view_t *tdm_client_view(const tdm_client_t *c) { return &c->view; }

bool tdm_client_is_closing(const tdm_client_t *c)
{
  return !tdm__client_alive(c) || c->state == TDM_CLIENT_CLOSED;
}

int tdm_client_respond(tdm_client_t *c, int16_t stream, uint8_t opcode, uint8_t flags, tdm_slice_t *slice,
                       size_t off, size_t len)
{
  int rc = tdm_client_is_closing(c) ? TDM_ECLOSED : tdm__client_send(c, stream, opcode, flags, slice, off, len);
  tdm__stream_free(c, stream);
  return rc;
}

int tdm_client_respond_bytes(tdm_client_t *c, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len)
{
  int rc = tdm_client_is_closing(c) ? TDM_ECLOSED : tdm__client_send_bytes(c, stream, opcode, body, len, true);
  tdm__stream_free(c, stream);
  return rc;
}

int tdm_client_respond_error(tdm_client_t *c, int16_t stream, const tdm_response_error_t *e)
{
  uint8_t buf[1024];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, buf, sizeof(buf));
  int rc = tdm_response_encode_error(&w, c->view.version, e);
  if (rc == TDM_EOVERFLOW) {
    tdm_writer_init(&w);
    rc = tdm_response_encode_error(&w, c->view.version, e);
  }
  if (rc == 0) rc = tdm_client_respond_bytes(c, stream, TDM_OP_ERROR, w.buf, w.len);
  else tdm__stream_free(c, stream);
  if (w.growable) tdm_writer_free(&w);
  return rc;
}

int tdm_client_respond_errorf(tdm_client_t *c, int16_t stream, uint32_t code, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  tdm_response_error_t e;
  memset(&e, 0, sizeof(e));
  e.code = code;
  e.message = (tdm_str_t){ msg, n < 0 ? 0 : TDM_MIN((size_t)n, sizeof(msg) - 1) };
  return tdm_client_respond_error(c, stream, &e);
}

void tdm_client_set_keyspace(tdm_client_t *c, const char *keyspace, size_t len)
{
  len = TDM_MIN(len, sizeof(c->keyspace) - 1);
  memcpy(c->keyspace, keyspace, len);
  c->keyspace[len] = '\0';
}

void tdm_client_ref(tdm_client_t *c) { tdm_conn_hold(&c->conn); }

void tdm_client_unref(tdm_client_t *c) { tdm_conn_release(&c->conn); }

void tdm_client_pause_for_backend(tdm_client_t *c, bool paused)
{
  if (tdm_client_is_closing(c)) return;
  bool was = (c->conn.read_pause & TDM_CONN_PAUSE_PEER_OUTPUT) != 0;
  if (paused && !was) {
    c->view.pw->stats.backpressure_pauses_backend++;
    tdm_conn_read_pause(&c->conn, TDM_CONN_PAUSE_PEER_OUTPUT);
  } else if (!paused && was) {
    tdm_conn_read_resume(&c->conn, TDM_CONN_PAUSE_PEER_OUTPUT);
  }
}
