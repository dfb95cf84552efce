/* The framed channel under control and pool connections: turns the connection's unread bytes into
 * frames (v3/v4 9-byte headers, v2 8-byte ones) or, once the v5 handshake has switched, into envelopes
 * read from segments; and writes frames the matching way. Bodies are never copied on the way out
 * except to compress them. v3/v4 legs go out at once as [header][body slice reference]. v5 envelopes
 * wait, by reference, for the owner's flush (once per loop iteration), which lays them out as
 * segments: uncompressed, [segment header + envelope header][body reference][envelope header][body
 * reference]...[CRC32] (tdm_envelope_emit: no byte of a body copied); lz4, compressed into pooled
 * slices, small envelopes gathered per segment and large ones straight from their bodies
 * (tdm_envelope_emit_lz4: one copy, forced). Frame bodies borrowed from the read buffer are shared by
 * reference (tdm_conn_share_input). */
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
  ch->lz4 = lz4;
  /* one compressor state per lz4 connection; without it (out of memory) lz4 uses a one-off state */
  if (lz4 && !ch->z) ch->z = tdm_segment_lz4_new();
}

/* Drops the waiting envelopes' references. */
static void drop_pending(tdm__chan_t *ch)
{
  for (uint32_t i = 0; i < ch->npending; i++) tdm_slice_unref(ch->pending[i].slice);
  ch->npending = 0;
  ch->dirty = false;
}

void tdm__chan_free(tdm__chan_t *ch)
{
  tdm_envelope_reader_free(&ch->er);
  drop_pending(ch);
  free(ch->pending);
  ch->pending = NULL;
  ch->pending_cap = 0;
  tdm_segment_lz4_free(ch->z);
  ch->z = NULL;
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
  /* No tdm_envelope_reader_trim here: an lz4 backend connection keeps its 128 KiB decompression buffer
   * (freed with the channel), because backend connections are few (pool size x nodes x workers) and
   * trimming it cost a malloc/free per read of compressed responses. */
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

/* v5: keeps the envelope (header copy, body reference) for the flush. */
static int queue_envelope(tdm__chan_t *ch, const uint8_t hdr[TDM_ENVELOPE_HEADER], tdm_slice_t *body, size_t off,
                          size_t len)
{
  if (tdm_conn_is_closing(ch->conn)) return TDM_ECLOSED;
  if (ch->npending == ch->pending_cap) {
    uint32_t cap = ch->pending_cap ? ch->pending_cap * 2 : 8;
    tdm__chan_env_t *p = realloc(ch->pending, cap * sizeof(*p));
    if (!p) return TDM_ENOMEM;
    ch->pending = p;
    ch->pending_cap = cap;
  }
  tdm__chan_env_t *e = &ch->pending[ch->npending++];
  memcpy(e->hdr, hdr, TDM_ENVELOPE_HEADER);
  e->slice = len ? tdm_slice_ref(body) : NULL;
  e->off = off;
  e->len = len;
  ch->dirty = true;
  return 0;
}

int tdm__chan_write(tdm__chan_t *ch, const tdm_frame_header_t *h, tdm_slice_t *body, size_t off, size_t len)
{
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  size_t hlen;
  tdm_frame_header_t x = *h;
  x.length = (uint32_t)len;
  encode_header(ch, &x, hdr, &hlen);
  if (!ch->segments) return tdm_conn_write(ch->conn, hdr, hlen, body, off, len);
  return queue_envelope(ch, hdr, body, off, len);
}

int tdm__chan_send(tdm__chan_t *ch, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len)
{
  tdm_frame_header_t h = { .version = ch->version, .stream = stream, .opcode = opcode, .length = (uint32_t)len };
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  size_t hlen;
  encode_header(ch, &h, hdr, &hlen);
  if (len == 0)
    return ch->segments ? queue_envelope(ch, hdr, NULL, 0, 0) : tdm_conn_write(ch->conn, hdr, hlen, NULL, 0, 0);
  /* internal messages (STARTUP, AUTH_RESPONSE, USE) are few and small: their bodies are copied */
  tdm_slice_t *s = tdm_slice_copy(&ch->conn->ctx->slice_pool, body, len);
  if (!s) return TDM_ENOMEM;
  int rc = ch->segments ? queue_envelope(ch, hdr, s, 0, len) : tdm_conn_write(ch->conn, hdr, hlen, s, 0, len);
  tdm_slice_unref(s);
  return rc;
}

/* One flush: the channel, the caller's pool and the slice of the lz4 segment being built. */
typedef struct tdm__chan_out_s {
  tdm__chan_t *ch;      /* the channel being flushed */
  tdm_buf_pool_t *pool; /* the owner's pool for buffers over the connection's pool blocks (may be NULL) */
  tdm_slice_t *s;       /* lz4: the buffer handed out last, until its segment is queued */
} tdm__chan_out_t;

/* tdm_envelope_emit's view of the waiting envelopes, and where its pieces go. */
static void emit_get(void *arg, size_t i, const uint8_t **hdr, const uint8_t **body, size_t *len)
{
  const tdm__chan_env_t *e = &((tdm__chan_out_t *)arg)->ch->pending[i];
  *hdr = e->hdr;
  *body = e->len ? e->slice->data + e->off : NULL;
  *len = e->len;
}

static int emit_put(void *arg, const uint8_t *inl, size_t inl_len, size_t i, size_t off, size_t len)
{
  tdm__chan_t *ch = ((tdm__chan_out_t *)arg)->ch;
  const tdm__chan_env_t *e = &ch->pending[i];
  return tdm_conn_write(ch->conn, inl, inl_len, len ? e->slice : NULL, len ? e->off + off : 0, len);
}

/* lz4 buffers: a slice from the smallest pool whose blocks hold n bytes (malloc'd past them all). */
static uint8_t *emit_buf(void *arg, size_t n)
{
  tdm__chan_out_t *o = arg;
  TDM_ASSERT(o->s == NULL);
  o->s = tdm_conn_ctx_slice(o->ch->conn->ctx, o->pool, n);
  return o->s ? o->s->data : NULL;
}

static int emit_seg(void *arg, size_t start, size_t size)
{
  tdm__chan_out_t *o = arg;
  int rc = tdm_conn_write(o->ch->conn, NULL, 0, o->s, start, size);
  tdm_slice_unref(o->s);
  o->s = NULL;
  return rc;
}

int tdm__chan_flush(tdm__chan_t *ch, tdm_buf_pool_t *pool)
{
  if (!ch->dirty) return 0;
  tdm__chan_out_t o = { .ch = ch, .pool = pool };
  int rc = ch->lz4 ? tdm_envelope_emit_lz4(ch->z, ch->npending, emit_get, emit_buf, emit_seg, &o)
                   : tdm_envelope_emit(ch->npending, emit_get, emit_put, &o);
  tdm_slice_unref(o.s); /* a buffer handed out when the run stopped on an error */
  drop_pending(ch);     /* after an error the connection closes: what was not written is dropped */
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
