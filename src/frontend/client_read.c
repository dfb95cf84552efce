/* Client input: every byte the socket delivers goes through here.
 *
 *   on_data ─┬─ unframed: 9-byte (8 for v1/v2) headers, body limit, versions (§3), discard of
 *            │  over-limit bodies as they arrive (never buffered)
 *            └─ framed (v5 after READY/AUTHENTICATE): envelope reader (segments, CRCs, reassembly)
 *        ─> one request: stream id checks (§8) ─> state: handshake (handshake.c, auth.c) | local
 *           opcodes (OPTIONS, REGISTER, REVISE_REQUEST, unknown) | tdm_route_dispatch | OVERLOADED (drain)
 *
 * At most TDM_FRONTEND_FRAMES_PER_READ frames per callback, then a yield (counted). While READY is held
 * (WAIT_BACKENDS) nothing more is parsed: pipelined requests wait in the buffer, in order, and reading
 * pauses past TDM_FRONTEND_WAIT_BUFFER. A fatal input error queues its PROTOCOL_ERROR and closes after
 * the flush; the input buffer is then gone, so nothing here touches `data` after a close. */
#include <tandem/frontend/versions.h>
#include <tandem/obs/log.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/request.h>
#include <tandem/route/route.h>

#include "internal.h"

static const char k_overloaded_drain[] = "Shutting down, please retry on next host.";

static uint32_t max_frame(const tdm_client_t *c)
{
  const tdm_conf_t *conf = c->view.pw->conf;
  return conf && conf->max_frame_bytes > 0 ? (uint32_t)conf->max_frame_bytes : TDM_ENVELOPE_DEFAULT_MAX;
}

static void too_big(tdm_client_t *c, int16_t stream, uint64_t length)
{
  c->view.pw->stats.frames_too_large++;
  tdm__client_send_error(c, stream, TDM_ERR_INVALID, "Request is too big: length %llu exceeds maximum allowed length %u.",
                         (unsigned long long)length, max_frame(c));
}

/* A malformed request: PROTOCOL_ERROR naming the defect, then close after the flush (§14). Counted
 * by the caller when the defect is not plain malformation (CRC). */
static void malformed_as(tdm_client_t *c, int16_t stream, const char *what)
{
  tdm_log_debug(c->conn.tag, "malformed input: %s", what);
  tdm__client_send_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "%s", what);
  tdm__client_close_after_flush(c);
}

static void malformed(tdm_client_t *c, int16_t stream, const char *what)
{
  c->view.pw->stats.frames_malformed++;
  malformed_as(c, stream, what);
}

void tdm__client_refuse_version(tdm_client_t *c, uint8_t requested)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  uint8_t frame[TDM_VERSIONS_ERROR_MAX];
  if (c->state == TDM_CLIENT_REFUSED_VERSION) requested = c->refused_version; /* the same error again */
  int n = tdm_versions_error_frame(requested, tdm__frontend_usable(c->fe), tdm_versions_supported(pw->conf), frame,
                                   sizeof(frame));
  pw->stats.frames_bad_version++;
  if (n > 0) (void)tdm__client_send_raw(c, frame, (size_t)n);
  if (c->state == TDM_CLIENT_STARTUP || c->state == TDM_CLIENT_WAIT_BACKENDS) {
    c->refused_version = requested;
    pw->stats.handshakes_version_refused++;
    tdm_log_debug(c->conn.tag, "protocol version %u refused", (unsigned)requested);
    tdm__client_set_state(c, TDM_CLIENT_REFUSED_VERSION);
  }
}

int tdm__client_body(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len,
                     const uint8_t **out, size_t *out_len, uint8_t **owned)
{
  *owned = NULL;
  *out = body;
  *out_len = len;
  if (c->framed || !(h->flags & TDM_FLAG_COMPRESSED)) return 0;
  if (c->view.compression == TDM_COMPRESSION_NONE) return TDM_EPROTO_MALFORMED;
  int rc = tdm_body_decompress(c->view.compression, body, len, max_frame(c), owned, out_len);
  if (rc == 0) *out = *owned;
  return rc;
}

/* Reports a failed tdm__client_body: over the limit -> INVALID (the connection goes on); anything else
 * -> PROTOCOL_ERROR and close. */
void tdm__client_body_failed(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len, int rc)
{
  size_t declared = 0;
  if (rc == TDM_EPROTO_TOO_LARGE && tdm_body_uncompressed_length(c->view.compression, body, len, &declared) == 0)
    too_big(c, h->stream, declared);
  else if (c->view.compression == TDM_COMPRESSION_NONE)
    malformed(c, h->stream, "Frame is compressed but no compression was negotiated");
  else
    malformed(c, h->stream, "Corrupt compressed frame body");
}

/* DSE continuous paging (QUERY/EXECUTE flag 0x80000000 in DSE_V1/V2) is refused (§5.2). */
static bool continuous_paging(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len)
{
  if (h->version != TDM_PROTO_DSE_V1 && h->version != TDM_PROTO_DSE_V2) return false;
  if (h->opcode != TDM_OP_QUERY && h->opcode != TDM_OP_EXECUTE) return false;
  const uint8_t *b;
  size_t blen;
  uint8_t *owned;
  if (tdm__client_body(c, h, body, len, &b, &blen, &owned) < 0) return false; /* the route reports it */
  tdm_request_t r;
  bool cp = tdm_request_decode(h->version, h->opcode, b, blen, &r, NULL) == 0 &&
            ((h->opcode == TDM_OP_QUERY ? r.u.query.params.flags : r.u.execute.params.flags) &
             TDM_QFLAG_DSE_CONTINUOUS_PAGING);
  free(owned);
  return cp;
}

static void dispatch(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len, bool in_input)
{
  if (!c->framed && (h->flags & TDM_FLAG_COMPRESSED)) {
    size_t declared = 0;
    if (c->view.compression == TDM_COMPRESSION_NONE) {
      malformed(c, h->stream, "Frame is compressed but no compression was negotiated");
      return;
    }
    if (tdm_body_uncompressed_length(c->view.compression, body, len, &declared) < 0) {
      malformed(c, h->stream, "Corrupt compressed frame body");
      return;
    }
    if (declared > max_frame(c)) { /* a decompression bomb is refused before any allocation */
      too_big(c, h->stream, declared);
      return;
    }
  }
  if (continuous_paging(c, h, body, len)) {
    tdm__client_send_error(c, h->stream, TDM_ERR_INVALID, "tandem does not support DSE continuous paging");
    return;
  }
  if (tdm__stream_take(c, h->stream) < 0) {
    tdm__client_send_error(c, h->stream, TDM_ERR_SERVER_ERROR, "tandem: out of memory");
    tdm__client_close_after_flush(c);
    return;
  }
  size_t off = 0;
  tdm_slice_t *s = in_input ? tdm_conn_share_input(&c->conn, body, len, &off)
                            : tdm_slice_copy(&c->conn.ctx->slice_pool, body, len);
  if (!s) {
    tdm__stream_free(c, h->stream);
    tdm__client_send_error(c, h->stream, TDM_ERR_SERVER_ERROR, "tandem: out of memory");
    tdm__client_close_after_flush(c);
    return;
  }
  tdm_client_ref(c);
  int rc = tdm_route_dispatch(c, h, s, off, len);
  tdm_slice_unref(s);
  if (rc < 0) {
    /* the route module queued the PROTOCOL_ERROR already */
    c->view.pw->stats.frames_malformed++;
    tdm__client_close_after_flush(c);
  }
  tdm_client_unref(c);
}

static void ready_request(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len,
                          bool in_input)
{
  if (tdm__stream_busy(c, h->stream)) {
    /* the original request still completes; this one only gets the error */
    c->view.pw->stats.frames_bad_stream_id++;
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "stream id %d already in use", h->stream);
    return;
  }
  switch (h->opcode) {
  case TDM_OP_OPTIONS: tdm__hs_options(c, h->stream); break;
  case TDM_OP_STARTUP:
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR,
                           "Unexpected message STARTUP, the connection is already initialized");
    break;
  case TDM_OP_AUTH_RESPONSE:
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR,
                           "Unexpected message AUTH_RESPONSE, the connection is already authenticated");
    break;
  case TDM_OP_REGISTER: tdm__events_register(c, h, body, len); break;
  case TDM_OP_QUERY:
  case TDM_OP_PREPARE:
  case TDM_OP_EXECUTE:
  case TDM_OP_BATCH: dispatch(c, h, body, len, in_input); break;
  case TDM_OP_REVISE_REQUEST:
    tdm__client_send_error(c, h->stream, TDM_ERR_INVALID, "tandem does not support DSE continuous paging");
    break;
  default: tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "Unknown opcode %u", (unsigned)h->opcode); break;
  }
}

/* One complete request frame of the connection's version. */
static void handle(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len, bool in_input)
{
  if (h->stream < 0) {
    c->view.pw->stats.frames_bad_stream_id++;
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR,
                           "Invalid stream id %d: client stream ids must be non-negative", h->stream);
    return;
  }
  switch (c->state) {
  case TDM_CLIENT_STARTUP:
    if (h->opcode == TDM_OP_OPTIONS) tdm__hs_options(c, h->stream);
    else if (h->opcode == TDM_OP_STARTUP) tdm__hs_startup(c, h, body, len);
    else
      tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "Unexpected message %s, expecting STARTUP or OPTIONS",
                             tdm_opcode_name(h->opcode));
    break;
  case TDM_CLIENT_AUTHENTICATING:
    if (h->opcode == TDM_OP_OPTIONS) tdm__hs_options(c, h->stream);
    else if (h->opcode == TDM_OP_AUTH_RESPONSE) tdm__auth_response(c, h, body, len);
    else
      tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "Unexpected message %s, expecting SASL_RESPONSE",
                             tdm_opcode_name(h->opcode));
    break;
  case TDM_CLIENT_READY: ready_request(c, h, body, len, in_input); break;
  case TDM_CLIENT_DRAINING:
    tdm__client_send_error(c, h->stream, TDM_ERR_OVERLOADED, "%s", k_overloaded_drain);
    break;
  case TDM_CLIENT_REFUSED_VERSION: tdm__client_refuse_version(c, h->version); break;
  default: break;
  }
}

typedef enum step_e {
  STEP_MORE = 0,  /* need more bytes */
  STEP_FRAME = 1, /* a frame was handled (or skipped); go on */
  STEP_STOP = 2,  /* stop reading (closing) */
} step_t;

static step_t frame_step(tdm_client_t *c, const uint8_t *p, size_t n, size_t *used)
{
  tdm_frame_header_t h;
  int hr = tdm_frame_header_decode(p, n, max_frame(c), &h);
  if (hr == 0) return STEP_MORE;
  size_t hsize = tdm_frame_header_size(p[0]);
  bool too_large = hr == TDM_EPROTO_TOO_LARGE;
  *used = hsize;
  if (c->state == TDM_CLIENT_REFUSED_VERSION || (!c->version_set && !tdm_versions_has(tdm__frontend_usable(c->fe), h.version))) {
    tdm__client_refuse_version(c, h.version);
    c->discard = h.length;
    return STEP_FRAME;
  }
  if (!c->version_set) {
    tdm__client_set_version(c, h.version);
  } else if (h.version != c->view.version) {
    c->view.pw->stats.frames_bad_version++;
    tdm__client_send_error(c, h.stream, TDM_ERR_PROTOCOL_ERROR,
                           "Invalid message version. Got %u but previous messages on this connection had version %u",
                           (unsigned)h.version, (unsigned)c->view.version);
    c->discard = h.length;
    return STEP_FRAME;
  }
  if (h.response) {
    malformed(c, h.stream, "Unexpected response-direction frame from a client");
    return STEP_STOP;
  }
  if (too_large) {
    too_big(c, h.stream, h.length);
    c->discard = h.length;
    return STEP_FRAME;
  }
  size_t total = hsize + h.length;
  if (n < total) {
    *used = 0;
    tdm_conn_read_hint(&c->conn, total);
    return STEP_MORE;
  }
  tdm_conn_read_hint(&c->conn, 0);
  *used = total;
  handle(c, &h, p + hsize, h.length, true);
  return STEP_FRAME;
}

static step_t envelope_step(tdm_client_t *c, const uint8_t *p, size_t n, size_t *used)
{
  tdm_envelope_t env;
  size_t consumed = 0;
  int r = tdm_envelope_read(&c->reader, p, n, &consumed, &env);
  *used = consumed;
  if (r == 0) return STEP_MORE;
  if (r == TDM_EPROTO_TOO_LARGE) {
    too_big(c, env.header.stream, env.header.length);
    return STEP_FRAME;
  }
  if (r < 0) {
    if (r == TDM_EPROTO_CRC) {
      c->view.pw->stats.frames_crc++;
      malformed_as(c, 0, "Checksum mismatch in a protocol v5 segment");
    } else {
      malformed(c, 0, "Malformed protocol v5 segment");
    }
    return STEP_STOP;
  }
  const tdm_frame_header_t *h = &env.header;
  if (h->version != c->view.version) {
    c->view.pw->stats.frames_bad_version++;
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR,
                           "Invalid message version. Got %u but previous messages on this connection had version %u",
                           (unsigned)h->version, (unsigned)c->view.version);
    return STEP_FRAME;
  }
  if (h->response) {
    malformed(c, h->stream, "Unexpected response-direction frame from a client");
    return STEP_STOP;
  }
  handle(c, h, env.body, h->length, env.borrowed);
  return STEP_FRAME;
}

int tdm__client_on_data(tdm_conn_t *conn, const uint8_t *data, size_t len)
{
  tdm_client_t *c = tdm__client_of(conn);
  size_t pos = 0;
  unsigned frames = 0;
  while (pos < len && tdm__client_alive(c)) {
    if (c->state == TDM_CLIENT_WAIT_BACKENDS) {
      if (len - pos > TDM_FRONTEND_WAIT_BUFFER) tdm_conn_read_pause(conn, TDM_FRONTEND_PAUSE_WAIT);
      break;
    }
    if (c->discard) {
      size_t k = TDM_MIN((size_t)c->discard, len - pos);
      c->discard -= (uint32_t)k;
      pos += k;
      continue;
    }
    if (frames == TDM_FRONTEND_FRAMES_PER_READ) {
      c->view.pw->stats.read_yields++;
      tdm_conn_redeliver(conn);
      break;
    }
    size_t used = 0;
    step_t st = c->framed ? envelope_step(c, data + pos, len - pos, &used) : frame_step(c, data + pos, len - pos, &used);
    if (!tdm__client_alive(c)) return 0; /* closing: the input buffer is gone */
    pos += used;
    if (st != STEP_FRAME) break;
    frames++;
  }
  c->view.pw->stats.bytes_client_in += pos;
  /* an idle v5+lz4 client holds no decompression buffer: it goes back to the worker's spare slot */
  if (c->framed) tdm_envelope_reader_trim(&c->reader);
  return (int)pos;
}
