/* Client output: response headers in the connection's version (v2's 8 bytes, 9 otherwise), optional
 * body compression for v3/v4 clients, and v5 framing. A v5 response is not written at once: its
 * envelope (header copy + body reference) waits in the client's list until the worker's seal pass
 * (uv_idle, so it runs before the loop next blocks), which packs every waiting envelope into as few
 * self-contained segments as fit, splits an envelope over 131071 bytes across non-self-contained
 * ones, and queues the segments on the socket. Invariant: a framed client is on fe->sealing exactly
 * while it has waiting envelopes (nout > 0). */
#include <tandem/obs/log.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/response.h>
#include <tandem/proto/segment.h>

#include "internal.h"

static size_t make_header(const tdm_client_t *c, int16_t stream, uint8_t opcode, uint8_t flags, uint32_t len,
                          uint8_t out[TDM_FRAME_HEADER_MAX])
{
  tdm_frame_header_t h = { 0 };
  h.version = c->view.version;
  h.response = true;
  h.flags = flags;
  h.stream = tdm_proto_is_v2_header(h.version) ? (int16_t)(int8_t)stream : stream;
  h.opcode = opcode;
  h.length = len;
  return tdm_frame_header_encode(&h, out);
}

static void fail(tdm_client_t *c, int err)
{
  tdm_log_error(c->conn.tag, "output failed: %s", tdm_strerror(err));
  tdm_conn_close(&c->conn, err);
}

/* Queues one envelope for the seal pass. */
static int queue_envelope(tdm_client_t *c, const uint8_t hdr[TDM_ENVELOPE_HEADER], tdm_slice_t *slice, size_t off,
                          size_t len)
{
  if (c->nout == c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap * 2 : 8;
    tdm__env_out_t *p = realloc(c->out, cap * sizeof(*p));
    if (!p) return TDM_ENOMEM;
    c->out = p;
    c->out_cap = cap;
  }
  tdm__env_out_t *e = &c->out[c->nout++];
  memcpy(e->hdr, hdr, TDM_ENVELOPE_HEADER);
  e->slice = len ? tdm_slice_ref(slice) : NULL;
  e->off = off;
  e->len = len;
  if (c->nout == 1) {
    tdm_frontend_t *fe = c->fe;
    tdm_list_insert_tail(&fe->sealing, &c->seal_link);
    if (!fe->idle_on && !fe->stopping) {
      fe->idle_on = true;
      uv_idle_start(&fe->idle, tdm__frontend_on_idle);
    }
  }
  return 0;
}

int tdm__client_send(tdm_client_t *c, int16_t stream, uint8_t opcode, uint8_t flags, tdm_slice_t *slice, size_t off,
                     size_t len)
{
  if (!tdm__client_alive(c)) return TDM_ECLOSED;
  if (len > UINT32_MAX) return TDM_EINVAL;
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  int rc;
  if (c->framed) {
    make_header(c, stream, opcode, flags & (uint8_t)~TDM_FLAG_COMPRESSED, (uint32_t)len, hdr);
    rc = queue_envelope(c, hdr, slice, off, len);
  } else {
    size_t hlen = make_header(c, stream, opcode, flags, (uint32_t)len, hdr);
    rc = tdm_conn_write(&c->conn, hdr, hlen, slice, off, len);
    if (rc == 0) c->view.pw->stats.bytes_client_out += hlen + len;
  }
  if (rc < 0 && rc != TDM_ECLOSED) fail(c, rc);
  return rc;
}

int tdm__client_send_bytes(tdm_client_t *c, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len,
                           bool compress)
{
  if (!tdm__client_alive(c)) return TDM_ECLOSED;
  tdm_buf_pool_t *pool = &c->conn.ctx->slice_pool;
  uint8_t flags = 0;
  uint8_t *packed = NULL;
  size_t packed_len = 0;
  /* compressed only once the handshake is over: a driver reads every later frame with the flag */
  if (compress && len && !c->framed && c->view.compression != TDM_COMPRESSION_NONE &&
      (c->state == TDM_CLIENT_READY || c->state == TDM_CLIENT_DRAINING) &&
      tdm_body_compress(c->view.compression, body, len, &packed, &packed_len) == 0) {
    body = packed;
    len = packed_len;
    flags = TDM_FLAG_COMPRESSED;
  }
  int rc;
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  if (!c->framed && len + TDM_FRAME_HEADER_MAX <= TDM_CONN_INLINE_MAX) {
    /* small answers (READY, short errors) travel inline: one queue entry, no slice */
    uint8_t frame[TDM_CONN_INLINE_MAX];
    size_t hlen = make_header(c, stream, opcode, flags, (uint32_t)len, hdr);
    memcpy(frame, hdr, hlen);
    if (len) memcpy(frame + hlen, body, len);
    rc = tdm_conn_write(&c->conn, frame, hlen + len, NULL, 0, 0);
    if (rc == 0) c->view.pw->stats.bytes_client_out += hlen + len;
    else if (rc != TDM_ECLOSED) fail(c, rc);
  } else {
    tdm_slice_t *s = tdm_slice_copy(pool, body, len);
    rc = s ? tdm__client_send(c, stream, opcode, flags, s, 0, len) : TDM_ENOMEM;
    if (!s) fail(c, rc);
    tdm_slice_unref(s);
  }
  free(packed);
  return rc;
}

int tdm__client_send_error(tdm_client_t *c, int16_t stream, uint32_t code, const char *fmt, ...)
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
  uint8_t buf[640];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, buf, sizeof(buf));
  int rc = tdm_response_encode_error(&w, c->view.version ? c->view.version : TDM_PROTO_V4, &e);
  if (rc < 0) return rc;
  return tdm__client_send_bytes(c, stream, TDM_OP_ERROR, w.buf, w.len, true);
}

int tdm__client_send_raw(tdm_client_t *c, const uint8_t *p, size_t n)
{
  if (!tdm__client_alive(c)) return TDM_ECLOSED;
  tdm__client_seal(c);
  int rc = tdm_conn_write_bytes(&c->conn, p, n);
  if (rc < 0 && rc != TDM_ECLOSED) fail(c, rc);
  return rc;
}

void tdm__client_start_framing(tdm_client_t *c)
{
  if (c->framed || c->view.version != TDM_PROTO_V5) return;
  c->framed = true;
  tdm_conf_t *conf = c->view.pw->conf;
  c->reader.max_frame_bytes = conf && conf->max_frame_bytes > 0 ? (uint32_t)conf->max_frame_bytes : 0;
  c->reader.lz4 = c->view.compression == TDM_COMPRESSION_LZ4;
  tdm_log_debug(c->conn.tag, "v5 framing starts (%s)", c->reader.lz4 ? "lz4" : "uncompressed");
}

/* ---- the seal pass ---- */

/* Copies bytes [from, from+n) of envelope e (its 9-byte header, then its body) to dst. */
static void copy_envelope(uint8_t *dst, const tdm__env_out_t *e, size_t from, size_t n)
{
  if (from < TDM_ENVELOPE_HEADER) {
    size_t k = TDM_MIN(n, TDM_ENVELOPE_HEADER - from);
    memcpy(dst, e->hdr + from, k);
    dst += k;
    from += k;
    n -= k;
  }
  if (n) memcpy(dst, e->slice->data + e->off + (from - TDM_ENVELOPE_HEADER), n);
}

/* Builds one segment from `payload` bytes gathered by fill() and queues it on the socket. */
static int emit(tdm_client_t *c, const tdm__env_out_t *e, size_t count, size_t from, size_t payload,
                bool self_contained)
{
  bool lz4 = c->reader.lz4;
  size_t hsize = lz4 ? TDM_SEGMENT_HEADER_LZ4 : TDM_SEGMENT_HEADER_PLAIN;
  size_t room = lz4 ? TDM_SEGMENT_SEAL_LZ4_ROOM(payload) : hsize + payload + TDM_SEGMENT_CRC_BYTES;
  tdm_slice_t *s = tdm_slice_new(&c->conn.ctx->slice_pool, room);
  if (!s) return TDM_ENOMEM;
  uint8_t *p = s->data + hsize;
  if (self_contained) {
    for (size_t i = 0; i < count; i++) {
      copy_envelope(p, &e[i], 0, TDM_ENVELOPE_HEADER + e[i].len);
      p += TDM_ENVELOPE_HEADER + e[i].len;
    }
  } else {
    copy_envelope(p, e, from, payload);
  }
  size_t size = lz4 ? tdm_segment_seal_lz4(s->data, payload, self_contained)
                    : tdm_segment_seal_plain(s->data, payload, self_contained);
  int rc = tdm_conn_write(&c->conn, NULL, 0, s, 0, size);
  if (rc == 0) c->view.pw->stats.bytes_client_out += size;
  tdm_slice_unref(s);
  return rc;
}

void tdm__client_seal(tdm_client_t *c)
{
  tdm_list_remove(&c->seal_link);
  int rc = 0;
  size_t i = 0;
  while (i < c->nout && rc == 0 && tdm__client_alive(c)) {
    size_t size = TDM_ENVELOPE_HEADER + c->out[i].len;
    if (size > TDM_SEGMENT_MAX_PAYLOAD) {
      /* alone, across consecutive non-self-contained segments */
      for (size_t from = 0; from < size && rc == 0; from += TDM_SEGMENT_MAX_PAYLOAD)
        rc = emit(c, &c->out[i], 1, from, TDM_MIN(size - from, (size_t)TDM_SEGMENT_MAX_PAYLOAD), false);
      i++;
      continue;
    }
    size_t j = i, payload = 0;
    while (j < c->nout && payload + TDM_ENVELOPE_HEADER + c->out[j].len <= TDM_SEGMENT_MAX_PAYLOAD)
      payload += TDM_ENVELOPE_HEADER + c->out[j++].len;
    rc = emit(c, &c->out[i], j - i, 0, payload, true);
    i = j;
  }
  for (size_t k = 0; k < c->nout; k++) tdm_slice_unref(c->out[k].slice);
  c->nout = 0;
  if (rc < 0 && rc != TDM_ECLOSED) fail(c, rc);
}

void tdm__frontend_seal_all(tdm_frontend_t *fe)
{
  tdm_list_t *n;
  while ((n = tdm_list_first(&fe->sealing))) tdm__client_seal(TDM_CONTAINER_OF(n, tdm_client_t, seal_link));
}

void tdm__client_out_free(tdm_client_t *c)
{
  tdm_list_remove(&c->seal_link);
  for (size_t k = 0; k < c->nout; k++) tdm_slice_unref(c->out[k].slice);
  free(c->out);
  c->out = NULL;
  c->nout = c->out_cap = 0;
}
