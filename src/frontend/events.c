/* Events to clients (behaviour.md §10): REGISTER is answered READY here and its event types are kept
 * per connection; tdm_frontend_broadcast_event sends an EVENT (stream -1) to every ready connection
 * registered for its type, in that connection's version and framing. The body is shared by every
 * uncompressed client (one slice, one reference each); v3/v4 clients with compression get their own
 * compressed copy, and v2 clients (whose SCHEMA_CHANGE layout differs) a re-encoded one. */
#include <tandem/obs/log.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "internal.h"

int tdm__events_register(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len)
{
  const uint8_t *b;
  size_t blen;
  uint8_t *owned = NULL;
  tdm_register_t reg;
  const char *why = "malformed REGISTER";
  int rc = tdm__client_body(c, h, body, len, &b, &blen, &owned);
  if (rc < 0) {
    tdm__client_body_failed(c, h, body, len, rc);
    return rc;
  }
  rc = tdm_request_decode_register(b, blen, &reg, &why);
  free(owned);
  if (rc < 0) {
    c->view.pw->stats.frames_malformed++;
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "Malformed REGISTER: %s", why);
    tdm__client_close_after_flush(c);
    return rc;
  }
  c->events |= reg.events;
  tdm_log_debug(c->conn.tag, "registered for events 0x%x", (unsigned)c->events);
  return tdm__client_send_bytes(c, h->stream, TDM_OP_READY, NULL, 0, false);
}

static uint32_t event_bit(const char *type)
{
  if (strcmp(type, "TOPOLOGY_CHANGE") == 0) return TDM_REQUEST_EVENT_TOPOLOGY_CHANGE;
  if (strcmp(type, "STATUS_CHANGE") == 0) return TDM_REQUEST_EVENT_STATUS_CHANGE;
  if (strcmp(type, "SCHEMA_CHANGE") == 0) return TDM_REQUEST_EVENT_SCHEMA_CHANGE;
  return 0;
}

/* The event re-encoded for a v2 client (its schema changes carry keyspace + table only). */
static int send_v2(tdm_client_t *c, const uint8_t *body, size_t len)
{
  tdm_response_t r;
  if (tdm_response_decode(TDM_PROTO_V4, TDM_OP_EVENT, body, len, &r, NULL) < 0) return TDM_EINVAL;
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm_response_encode_event(&w, TDM_PROTO_V2, &r.event);
  if (rc == 0) rc = tdm__client_send_bytes(c, -1, TDM_OP_EVENT, w.buf, w.len, false);
  tdm_writer_free(&w);
  return rc;
}

void tdm_frontend_broadcast_event(tdm_proxy_worker_t *pw, const char *type, const uint8_t *body, size_t len)
{
  uint32_t bit = event_bit(type);
  if (!bit || !pw->frontend) return;
  tdm_slice_t *shared = NULL;
  TDM_LIST_FOREACH_SAFE(it, tmp, &pw->clients) /* a failed send closes (unlinks) that client */
  {
    tdm_client_t *c = TDM_CONTAINER_OF(it, tdm_client_t, link);
    if (!(c->events & bit) || c->state != TDM_CLIENT_READY || !tdm__client_alive(c)) continue;
    if (c->view.version == TDM_PROTO_V2) {
      (void)send_v2(c, body, len);
    } else if (!c->framed && c->view.compression != TDM_COMPRESSION_NONE) {
      (void)tdm__client_send_bytes(c, -1, TDM_OP_EVENT, body, len, true);
    } else {
      if (!shared && !(shared = tdm_slice_copy(&c->conn.ctx->slice_pool, body, len))) return;
      (void)tdm__client_send(c, -1, TDM_OP_EVENT, 0, shared, 0, len);
    }
  }
  tdm_slice_unref(shared);
}
