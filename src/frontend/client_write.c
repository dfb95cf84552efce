/* Client output: response headers in the connection's version (v2's 8 bytes, 9 otherwise), optional
 * body compression for v3/v4 clients, and v5 framing. A v5 response is not written at once: its
 * envelope (header copy + body reference) waits in the client's list until the worker's seal pass
 * (uv_idle, so it runs before the loop next blocks), which queues the waiting envelopes as segments.
 * Uncompressed, tdm_envelope_emit packs them into shared self-contained segments whose bodies go by
 * reference, headers and CRC32 inline (small bodies are copied into a shared block: see emit_put); lz4,
 * tdm_envelope_emit_lz4 compresses them into pooled slices (small envelopes gathered per segment,
 * large ones straight from their bodies). An envelope over 131071 bytes spans non-self-contained
 * segments. Invariant: a framed client is on fe->sealing exactly while it has waiting envelopes
 * (nout > 0). */
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
  c->reader.spare = &c->fe->lz4_spare;
  tdm_log_debug(c->conn.tag, "v5 framing starts (%s)", c->reader.lz4 ? "lz4" : "uncompressed");
}

/* ---- the seal pass ---- */

/* Response bodies of at most this many bytes are copied, with the inline bytes around them, into a
 * shared pooled block (the connection's 2 KiB slices) that goes out as one write-queue entry: RESULT
 * Void, short errors and small Rows cost a memcpy instead of an entry and two iovecs each. Larger
 * bodies go by reference, never copied. Measured: docs/internals/frontend.md "v5 output". */
#define TDM__CLIENT_PACK_BODY_MAX 256
_Static_assert(TDM_ENVELOPE_PIECE_INLINE + TDM__CLIENT_PACK_BODY_MAX + sizeof(tdm_slice_t) <= TDM_CONN_SLICE_BLOCK,
               "a small piece must fit an empty pack");

/* One uncompressed seal: pieces from tdm_envelope_emit; small ones copied into `pack` until a body
 * goes by reference or the block is full. Invariant: pack_len <= the slice pool's block capacity. */
typedef struct tdm__seal_s {
  tdm_client_t *c;   /* the client being sealed */
  tdm_slice_t *pack; /* small pieces copied together, NULL while none is open */
  size_t pack_len;   /* bytes used in pack */
  tdm_slice_t *s;    /* lz4: the buffer handed out last, until its segment is queued */
} tdm__seal_t;

static void emit_get(void *arg, size_t i, const uint8_t **hdr, const uint8_t **body, size_t *len)
{
  const tdm__env_out_t *e = &((tdm__seal_t *)arg)->c->out[i];
  *hdr = e->hdr;
  *body = e->len ? e->slice->data + e->off : NULL;
  *len = e->len;
}

/* Queues the pack (if any) as one entry. */
static int pack_flush(tdm__seal_t *s)
{
  if (!s->pack) return 0;
  int rc = tdm_conn_write(&s->c->conn, NULL, 0, s->pack, 0, s->pack_len);
  if (rc == 0) s->c->view.pw->stats.bytes_client_out += s->pack_len;
  tdm_slice_unref(s->pack);
  s->pack = NULL;
  s->pack_len = 0;
  return rc;
}

static int emit_put(void *arg, const uint8_t *inl, size_t inl_len, size_t i, size_t off, size_t len)
{
  tdm__seal_t *s = arg;
  const tdm__env_out_t *e = &s->c->out[i];
  tdm_buf_pool_t *pool = &s->c->conn.ctx->slice_pool;
  int rc;
  if (len > TDM__CLIENT_PACK_BODY_MAX) {
    /* by reference; the inline bytes before it travel in its own entry */
    if ((rc = pack_flush(s))) return rc;
    rc = tdm_conn_write(&s->c->conn, inl, inl_len, e->slice, e->off + off, len);
    if (rc == 0) s->c->view.pw->stats.bytes_client_out += inl_len + len;
    return rc;
  }
  size_t cap = TDM_CONN_SLICE_BLOCK - sizeof(tdm_slice_t); /* one block of the pool */
  if (s->pack && s->pack_len + inl_len + len > cap && (rc = pack_flush(s))) return rc;
  if (!s->pack && !(s->pack = tdm_slice_new(pool, cap))) return TDM_ENOMEM;
  memcpy(s->pack->data + s->pack_len, inl, inl_len);
  if (len) memcpy(s->pack->data + s->pack_len + inl_len, e->slice->data + e->off + off, len);
  s->pack_len += inl_len + len;
  return 0;
}

/* lz4 buffers: a slice from the smallest pool whose blocks hold n bytes (the connection's small
 * slices, its read blocks, the worker's buffer blocks; malloc'd only past all of them). */
static uint8_t *emit_buf(void *arg, size_t n)
{
  tdm__seal_t *s = arg;
  TDM_ASSERT(s->s == NULL);
  s->s = tdm_conn_ctx_slice(s->c->conn.ctx, &s->c->view.pw->buf_pool, n);
  return s->s ? s->s->data : NULL;
}

static int emit_seg(void *arg, size_t start, size_t size)
{
  tdm__seal_t *s = arg;
  int rc = tdm_conn_write(&s->c->conn, NULL, 0, s->s, start, size);
  if (rc == 0) s->c->view.pw->stats.bytes_client_out += size;
  tdm_slice_unref(s->s);
  s->s = NULL;
  return rc;
}

void tdm__client_seal(tdm_client_t *c)
{
  tdm_list_remove(&c->seal_link);
  int rc = 0;
  if (c->nout && tdm__client_alive(c)) {
    tdm__seal_t s = { .c = c };
    if (c->reader.lz4) {
      rc = tdm_envelope_emit_lz4(&c->fe->lz4, c->nout, emit_get, emit_buf, emit_seg, &s);
      tdm_slice_unref(s.s); /* a buffer handed out when the run stopped on an error */
    } else {
      rc = tdm_envelope_emit(c->nout, emit_get, emit_put, &s);
      if (rc == 0) rc = pack_flush(&s);
      tdm_slice_unref(s.pack); /* still open when the run stopped on an error */
    }
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
