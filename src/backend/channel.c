/* The framed channel under control and pool connections: turns the connection's unread bytes into
 * frames (v3/v4 9-byte headers, v2 8-byte ones) or, once the v5 handshake has switched, into envelopes
 * read from segments; and writes frames the matching way. v3/v4 legs go out as [header][body slice
 * reference], never copied; v5 envelopes are copied once into the open segment and the segments leave
 * when the owner flushes (once per loop iteration). Frame bodies borrowed from the read buffer are
 * shared by reference (tdm_conn_share_input). */
#include "internal.h"

void tdm__chan_init(tdm__chan_t *ch, tdm_conn_t *conn, uint8_t version)
{
  memset(ch, 0, sizeof(*ch));
  ch->conn = conn;
  ch->version = version;
  ch->er.max_frame_bytes = TDM__CHAN_MAX_BODY;
}

void tdm__chan_start_segments(tdm__chan_t *ch, bool lz4)
{
  ch->segments = true;
  ch->er.lz4 = lz4;
  ch->ew.lz4 = lz4;
}

void tdm__chan_free(tdm__chan_t *ch)
{
  tdm_envelope_reader_free(&ch->er);
  tdm_envelope_writer_free(&ch->ew);
  ch->dirty = false;
}

/* One v2-v4 frame at p[0..len): >0 consumed, 0 need more (with a read hint), <0 error. */
static int parse_frame(tdm__chan_t *ch, const uint8_t *p, size_t len, tdm__chan_frame_cb cb, void *arg)
{
  tdm__frame_t f;
  const uint8_t *body = NULL;
  int n = tdm_frame_decode(p, len, TDM__CHAN_MAX_BODY, &f.h, &body);
  if (n < 0) return n;
  if (n == 0) {
    tdm_frame_header_t h;
    int hs = tdm_frame_header_decode(p, len, TDM__CHAN_MAX_BODY, &h);
    if (hs > 0) tdm_conn_read_hint(ch->conn, (size_t)hs + h.length);
    return 0;
  }
  tdm_conn_read_hint(ch->conn, 0);
  f.body = body;
  f.len = f.h.length;
  f.borrowed = true;
  int rc = cb(arg, &f);
  return rc < 0 ? rc : n;
}

int tdm__chan_parse(tdm__chan_t *ch, const uint8_t *data, size_t len, tdm__chan_frame_cb cb, void *arg)
{
  size_t pos = 0;
  while (pos < len && !tdm_conn_is_closing(ch->conn)) {
    if (!ch->segments) {
      int n = parse_frame(ch, data + pos, len - pos, cb, arg);
      if (n < 0) return n;
      if (n == 0) break;
      pos += (size_t)n;
      continue;
    }
    tdm_envelope_t env;
    size_t used = 0;
    int rc = tdm_envelope_read(&ch->er, data + pos, len - pos, &used, &env);
    /* the envelope returned never lies in the bytes reported used, and nothing is released before
     * this function returns, so borrowed envelopes stay valid through the callback */
    if (rc < 0) return rc; /* a response over 256 MB is as fatal as a CRC error on a backend leg */
    pos += used;
    if (rc == 0) {
      if (used == 0) break;
      continue;
    }
    tdm__frame_t f = { .h = env.header, .body = env.body, .len = env.header.length, .borrowed = env.borrowed };
    int r = cb(arg, &f);
    if (r < 0) return r;
  }
  if (ch->segments) tdm_envelope_reader_trim(&ch->er);
  return (int)TDM_MIN(pos, (size_t)INT32_MAX);
}

static void encode_header(const tdm__chan_t *ch, const tdm_frame_header_t *h, uint8_t out[TDM_FRAME_HEADER_MAX],
                          size_t *hlen)
{
  tdm_frame_header_t x = *h;
  x.version = ch->version;
  x.response = false;
  *hlen = tdm_frame_header_encode(&x, out);
}

int tdm__chan_write(tdm__chan_t *ch, const tdm_frame_header_t *h, tdm_slice_t *body, size_t off, size_t len)
{
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  size_t hlen;
  tdm_frame_header_t x = *h;
  x.length = (uint32_t)len;
  encode_header(ch, &x, hdr, &hlen);
  if (!ch->segments) return tdm_conn_write(ch->conn, hdr, hlen, body, off, len);
  if (tdm_conn_is_closing(ch->conn)) return TDM_ECLOSED;
  int rc = tdm_envelope_writer_add(&ch->ew, hdr, len ? body->data + off : NULL, len);
  if (rc == 0) ch->dirty = true;
  return rc;
}

int tdm__chan_send(tdm__chan_t *ch, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len)
{
  tdm_frame_header_t h = { .version = ch->version, .stream = stream, .opcode = opcode, .length = (uint32_t)len };
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  size_t hlen;
  encode_header(ch, &h, hdr, &hlen);
  if (ch->segments) {
    if (tdm_conn_is_closing(ch->conn)) return TDM_ECLOSED;
    int rc = tdm_envelope_writer_add(&ch->ew, hdr, body, len);
    if (rc == 0) ch->dirty = true;
    return rc;
  }
  if (len == 0) return tdm_conn_write(ch->conn, hdr, hlen, NULL, 0, 0);
  tdm_slice_t *s = tdm_slice_copy(&ch->conn->ctx->slice_pool, body, len);
  if (!s) return TDM_ENOMEM;
  int rc = tdm_conn_write(ch->conn, hdr, hlen, s, 0, len);
  tdm_slice_unref(s);
  return rc;
}

int tdm__chan_flush(tdm__chan_t *ch, tdm_buf_pool_t *pool)
{
  if (!ch->dirty) return 0;
  ch->dirty = false;
  uint8_t *out = NULL;
  size_t n = 0;
  int rc = tdm_envelope_writer_take(&ch->ew, &out, &n);
  if (rc < 0) return rc;
  if (!out) return 0;
  /* the segment bytes move into a slice the write queue can hold by reference (one copy; see the
   * report: an envelope writer that builds into a caller's slice would save it) */
  tdm_slice_t *s = tdm_slice_copy(pool, out, n);
  free(out);
  if (!s) return TDM_ENOMEM;
  rc = tdm_conn_write(ch->conn, NULL, 0, s, 0, n);
  tdm_slice_unref(s);
  return rc;
}

tdm_slice_t *tdm__chan_share(tdm__chan_t *ch, const tdm__frame_t *f, tdm_buf_pool_t *pool, size_t *off)
{
  if (f->borrowed && f->len > 0) return tdm_conn_share_input(ch->conn, f->body, f->len, off);
  *off = 0;
  if (f->len == 0) {
    /* an empty body still gets a slice, so callers never special-case NULL */
    return tdm_slice_new(pool, 1);
  }
  return tdm_slice_copy(pool, f->body, f->len);
}
