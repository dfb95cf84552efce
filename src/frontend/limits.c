/* Limits on client connections (behaviour.md §2.3, §11.2, §11.3): the over-limit refusal (accept,
 * read the first frame header within 5 s, answer OVERLOADED naming the limit on its stream and
 * version, or the §3 answer for an unusable version, flush, close; at most 64 pending, beyond that
 * closed at once), the handshake deadline (client_handshake_timeout_ms from accept to READY), and the
 * end of a draining client. One timer per worker serves both deadline lists: each list is in accept
 * order, and a deadline is accept time + a per-list constant, so its head is always the next to expire. */
#include <unistd.h>

#include <tandem/frontend/versions.h>
#include <tandem/obs/log.h>
#include <tandem/proto/writer.h>
#include <tandem/util/time.h>

#include "internal.h"

static uint64_t handshake_timeout(const tdm_frontend_t *fe)
{
  const tdm_conf_t *conf = fe->pw->conf;
  return conf && conf->client_handshake_timeout_ms > 0 ? (uint64_t)conf->client_handshake_timeout_ms : 0;
}

static void on_timer(uv_timer_t *t);

void tdm__frontend_arm_timer(tdm_frontend_t *fe)
{
  if (fe->stopping) return;
  uint64_t next = UINT64_MAX;
  uint64_t hs = handshake_timeout(fe);
  tdm_list_t *n = tdm_list_first(&fe->handshaking);
  if (n && hs) next = TDM_CONTAINER_OF(n, tdm_client_t, hs_link)->accepted_ms + hs;
  n = tdm_list_first(&fe->refusals);
  if (n) next = TDM_MIN(next, TDM_CONTAINER_OF(n, tdm__refusal_t, link)->accepted_ms + TDM_FRONTEND_REFUSE_MS);
  if (next == UINT64_MAX) {
    uv_timer_stop(&fe->timer);
    return;
  }
  uint64_t now = tdm_time_loop_ms(fe->pw->loop);
  uv_timer_start(&fe->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
  tdm_frontend_t *fe = t->data;
  uint64_t now = tdm_time_loop_ms(fe->pw->loop);
  uint64_t hs = handshake_timeout(fe);
  tdm_list_t *n;
  while (hs && (n = tdm_list_first(&fe->handshaking))) {
    tdm_client_t *c = TDM_CONTAINER_OF(n, tdm_client_t, hs_link);
    if (c->accepted_ms + hs > now) break;
    tdm_list_remove(&c->hs_link);
    fe->pw->stats.client_refused_handshake_timeout++;
    tdm_log_debug(c->conn.tag, "handshake timeout (%s after %llu ms)", tdm__client_state_name(c->state),
                  (unsigned long long)hs);
    tdm__hs_cancel(c);
    tdm__client_close_after_flush(c); /* e.g. a version refusal still queued */
  }
  while ((n = tdm_list_first(&fe->refusals))) {
    tdm__refusal_t *r = TDM_CONTAINER_OF(n, tdm__refusal_t, link);
    if (r->accepted_ms + TDM_FRONTEND_REFUSE_MS > now) break;
    tdm_list_remove(&r->link);
    tdm_conn_close(&r->conn, TDM_ETIMEOUT);
  }
  tdm__frontend_arm_timer(fe);
}

void tdm__client_drain_check(tdm_client_t *c)
{
  if (c->state == TDM_CLIENT_DRAINING && c->view.inflight == 0 && c->sessions_pending == 0)
    tdm__client_close_after_flush(c);
}

/* ---- over-limit refusals ---- */

static void refusal_forget(tdm__refusal_t *r)
{
  if (!r->fe) return;
  if (tdm_list_linked(&r->link)) tdm_list_remove(&r->link);
  r->fe->nrefusals--;
  tdm__frontend_arm_timer(r->fe);
  r->fe = NULL;
}

/* OVERLOADED naming the limit, in the version and on the stream of the first frame. */
static int overloaded_frame(const tdm_frame_header_t *h, int limit, uint8_t *out, size_t cap)
{
  char msg[128];
  int mlen = snprintf(msg, sizeof(msg), "tandem: too many client connections (limit %d), retry on another node", limit);
  tdm_frame_header_t rh = { 0 };
  rh.version = h->version;
  rh.response = true;
  rh.stream = tdm_proto_is_v2_header(h->version) ? (int16_t)(int8_t)h->stream : h->stream;
  rh.opcode = TDM_OP_ERROR;
  rh.length = (uint32_t)(4 + 2 + mlen);
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  size_t hlen = tdm_frame_header_encode(&rh, hdr);
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, out, cap);
  tdm_writer_raw(&w, hdr, hlen);
  tdm_writer_int(&w, TDM_ERR_OVERLOADED);
  tdm_writer_string(&w, (tdm_str_t){ msg, (size_t)mlen });
  return tdm_writer_error(&w) ? tdm_writer_error(&w) : (int)w.len;
}

static int refusal_on_data(tdm_conn_t *conn, const uint8_t *data, size_t len)
{
  tdm__refusal_t *r = conn->data;
  if (r->answered || !r->fe) return (int)len;
  tdm_frame_header_t h;
  int hr = tdm_frame_header_decode(data, len, TDM_FRONTEND_REFUSE_BYTES, &h);
  if (hr == 0) return 0; /* the header is at most 9 bytes: the 5 s deadline bounds the wait */
  tdm_proxy_worker_t *pw = r->fe->pw;
  uint8_t frame[TDM_VERSIONS_ERROR_MAX];
  int n;
  unsigned usable = tdm__frontend_usable(r->fe);
  if (!tdm_versions_has(usable, h.version))
    n = tdm_versions_error_frame(h.version, usable, tdm_versions_supported(pw->conf), frame, sizeof(frame));
  else
    n = overloaded_frame(&h, pw->conf ? pw->conf->proxy_max_client_connections : 0, frame, sizeof(frame));
  r->answered = true;
  refusal_forget(r);
  if (n > 0) (void)tdm_conn_write_bytes(conn, frame, (size_t)n);
  tdm_conn_close_after_flush(conn, TDM_FRONTEND_LINGER_MS);
  return 0; /* flush-close dropped the input */
}

static void refusal_on_close(tdm_conn_t *conn, int reason) { refusal_forget(conn->data); }

static void refusal_on_destroy(tdm_conn_t *conn) { free(conn->data); }

static const tdm_conn_hooks_t k_refusal_hooks = {
  .on_data = refusal_on_data,
  .on_close = refusal_on_close,
  .on_destroy = refusal_on_destroy,
};

int tdm__refusal_accept(tdm_frontend_t *fe, uv_os_sock_t fd)
{
  tdm_proxy_worker_t *pw = fe->pw;
  pw->stats.client_refused_max_connections++;
  if (fe->nrefusals >= TDM_FRONTEND_REFUSE_MAX) {
    close(fd); /* too many pending already: no answer */
    return 0;
  }
  tdm__refusal_t *r = calloc(1, sizeof(*r));
  if (!r) {
    close(fd);
    return TDM_ENOMEM;
  }
  int rc = tdm_conn_init(&r->conn, fe->net, &k_refusal_hooks, r);
  if (rc < 0) {
    free(r);
    close(fd);
    return rc;
  }
  r->fe = fe;
  r->accepted_ms = tdm_time_loop_ms(pw->loop);
  tdm_list_init(&r->link);
  tdm_list_insert_tail(&fe->refusals, &r->link);
  fe->nrefusals++;
  tdm__frontend_arm_timer(fe);
  tdm_conn_set_name(&r->conn, 'R', ++fe->next_id);
  rc = tdm_conn_open(&r->conn, fd);
  /* a TLS client reads its OVERLOADED answer through TLS too */
  if (rc == 0 && pw->tls.client) rc = tdm_tls_server(&r->conn, pw->tls.client, pw->tls.allow_plaintext, NULL);
  if (rc == 0) rc = tdm_conn_read_start(&r->conn);
  if (rc < 0) tdm_conn_close(&r->conn, rc);
  else tdm_log_debug(r->conn.tag, "over the connection limit: refusing");
  return rc;
}

void tdm__refusals_close_all(tdm_frontend_t *fe)
{
  tdm_list_t *n;
  while ((n = tdm_list_first(&fe->refusals))) {
    tdm__refusal_t *r = TDM_CONTAINER_OF(n, tdm__refusal_t, link);
    refusal_forget(r);
    tdm_conn_close(&r->conn, TDM_ECLOSED);
  }
}
