/* v5 envelope layer between segments and CQL messages: the reader turns segment bytes into whole
 * envelopes (in place when it can, reassembling split ones), the writer packs envelopes into segments,
 * and the emitters lay envelopes out for the proxy: bodies by reference, or lz4 with one copy.
 * Invariants: see the flow below; the writer never leaves a half-written segment in buf[0..len). */
#include <tandem/proto/envelope.h>

/* Reader flow for one input buffer:
 *
 *   [segment]----CRC ok----> self-contained? --yes--> hand out envelopes one per call
 *        |                        |                   (in place, or from `plain` after lz4)
 *        | need more -> 0         no                  segment (plain or lz4) consumed on the call after its last one
 *        v                        v
 *   (wait for bytes)      split collection: header -> limit check -> grow(big) -> body -> hand out
 *
 * A borrowed active segment starts at the first unconsumed input byte; a split envelope in progress
 * (head_len, big_need or discard non-zero) admits only non-self-contained segments, and each of those
 * carries only its bytes. */

/* ---- reader ---- */

static int reader_fail(tdm_envelope_reader_t *r, int err)
{
  r->err = err;
  return err;
}

static bool split_under_way(const tdm_envelope_reader_t *r)
{
  return r->head_len > 0 || r->big_need > 0 || r->discard > 0;
}

static uint32_t reader_limit(const tdm_envelope_reader_t *r)
{
  return r->max_frame_bytes ? r->max_frame_bytes : TDM_ENVELOPE_DEFAULT_MAX;
}

static void release_big(tdm_envelope_reader_t *r)
{
  free(r->big);
  r->big = NULL;
  r->big_cap = r->big_len = r->big_need = 0;
  r->big_out = false;
}

/* Makes room for n more reassembly bytes. The buffer grows with the bytes that actually arrive
 * (doubling, capped at the declared size), so a peer that announces a large envelope and stalls
 * pins at most twice what it sent, not the whole limit. */
static int grow_big(tdm_envelope_reader_t *r, size_t n)
{
  size_t want = r->big_len + n;
  if (want <= r->big_cap) return 0;
  size_t cap = r->big_cap ? r->big_cap : 2 * TDM_SEGMENT_MAX_PAYLOAD;
  while (cap < want) cap *= 2;
  cap = TDM_MIN(cap, r->big_need);
  uint8_t *p = realloc(r->big, cap);
  if (!p) return TDM_ENOMEM;
  r->big = p;
  r->big_cap = cap;
  return 0;
}

/* Decodes a 9-byte envelope header: 0 or TDM_EPROTO_TOO_LARGE with *h filled, else MALFORMED. */
static int envelope_header(const tdm_envelope_reader_t *r, const uint8_t *p, tdm_frame_header_t *h)
{
  if (tdm_frame_header_size(p[0]) != TDM_ENVELOPE_HEADER) return TDM_EPROTO_MALFORMED; /* v1/v2: 8 bytes */
  int rc = tdm_frame_header_decode(p, TDM_ENVELOPE_HEADER, reader_limit(r), h);
  TDM_ASSERT(rc == (int)TDM_ENVELOPE_HEADER || rc == TDM_EPROTO_TOO_LARGE);
  h->flags &= (uint8_t)~TDM_FLAG_COMPRESSED;
  return rc == TDM_EPROTO_TOO_LARGE ? rc : 0;
}

static void set_env(tdm_envelope_t *env, const tdm_frame_header_t *h, const uint8_t *data, bool borrowed)
{
  env->header = *h;
  env->data = data;
  env->len = data ? TDM_ENVELOPE_HEADER + h->length : 0;
  env->body = data ? data + TDM_ENVELOPE_HEADER : NULL;
  env->borrowed = borrowed;
}

/* Next envelope of the active self-contained segment whose payload is p. */
static int next_in_segment(tdm_envelope_reader_t *r, const uint8_t *p, tdm_envelope_t *env)
{
  size_t left = r->seg_len - r->seg_pos;
  const uint8_t *e = p + r->seg_pos;
  tdm_frame_header_t h;
  if (left < TDM_ENVELOPE_HEADER) return TDM_EPROTO_MALFORMED; /* segment ends inside a header */
  int rc = envelope_header(r, e, &h);
  if (rc == TDM_EPROTO_MALFORMED) return rc;
  if (h.length > left - TDM_ENVELOPE_HEADER) return TDM_EPROTO_MALFORMED; /* ... or inside a body */
  r->seg_pos += TDM_ENVELOPE_HEADER + h.length;
  set_env(env, &h, rc ? NULL : e, r->seg_borrowed);
  return rc ? rc : 1;
}

/* Feeds the plain payload of one non-self-contained segment to the split envelope. Returns 1 when the
 * envelope is complete (in big), 0 when more segments are needed, TDM_EPROTO_TOO_LARGE when its header
 * is over the limit (the rest is then discarded), or a fatal error. */
static int collect_split(tdm_envelope_reader_t *r, const uint8_t *p, size_t n, tdm_envelope_t *env)
{
  if (r->discard) {
    if (n > r->discard) return TDM_EPROTO_MALFORMED; /* bytes after the envelope it carries */
    r->discard -= n;
    return 0;
  }
  if (r->big_need == 0) {
    size_t k = TDM_MIN(TDM_ENVELOPE_HEADER - r->head_len, n);
    if (k) memcpy(r->head + r->head_len, p, k);
    r->head_len += k;
    p += k;
    n -= k;
    if (r->head_len < TDM_ENVELOPE_HEADER) return 0;

    tdm_frame_header_t h;
    int rc = envelope_header(r, r->head, &h);
    r->head_len = 0;
    if (rc == TDM_EPROTO_TOO_LARGE) {
      if (n > h.length) return TDM_EPROTO_MALFORMED;
      r->discard = h.length - n;
      set_env(env, &h, NULL, false);
      return rc;
    }
    if (rc) return rc;
    /* The declared length passed the limit: only now is memory committed to it. */
    r->big_need = TDM_ENVELOPE_HEADER + h.length;
    if ((rc = grow_big(r, TDM_ENVELOPE_HEADER))) return rc;
    memcpy(r->big, r->head, TDM_ENVELOPE_HEADER);
    r->big_len = TDM_ENVELOPE_HEADER;
  }
  if (n > r->big_need - r->big_len) return TDM_EPROTO_MALFORMED;
  int grc = grow_big(r, n);
  if (grc) return grc;
  if (n) memcpy(r->big + r->big_len, p, n);
  r->big_len += n;
  if (r->big_len < r->big_need) return 0;

  tdm_frame_header_t h;
  if (envelope_header(r, r->big, &h)) return TDM_EPROTO_MALFORMED; /* checked above; cannot change */
  set_env(env, &h, r->big, false);
  r->big_out = true;
  return 1;
}

int tdm_envelope_read(tdm_envelope_reader_t *r, const uint8_t *in, size_t len, size_t *consumed, tdm_envelope_t *env)
{
  size_t used = 0; /* input bytes done with during this call */
  int rc;
  *consumed = 0;
  if (r->err) return r->err;
  if (r->big_out) release_big(r); /* the caller had its chance to steal it */
  if (!in) { /* no bytes at all: keep pointer arithmetic defined */
    TDM_ASSERT(len == 0 && !(r->seg_active && r->seg_borrowed));
    in = (const uint8_t *)"";
  }

  for (;;) {
    if (r->seg_active) {
      if (r->seg_pos < r->seg_len) {
        /* The caller passes the unconsumed bytes again, so a borrowed segment is still whole at in + used. */
        TDM_ASSERT(!r->seg_borrowed || used + r->seg_wire <= len);
        const uint8_t *payload = r->seg_borrowed ? in + used + r->seg_off : r->plain;
        rc = next_in_segment(r, payload, env);
        if (rc < 0 && rc != TDM_EPROTO_TOO_LARGE) return reader_fail(r, rc);
        *consumed = used; /* deferred: the segment holding env is not counted yet */
        return rc;
      }
      r->seg_active = false; /* every envelope of it has been handed out */
      used += r->seg_wire;
      continue;
    }

    tdm_segment_t seg;
    int n = tdm_segment_decode(in + used, len - used, r->lz4, !r->skip_crc, &seg);
    if (n == 0) {
      *consumed = used;
      return 0;
    }
    if (n < 0) return reader_fail(r, n);

    const uint8_t *plain = seg.payload;
    if (seg.compressed) {
      if (!r->plain && r->spare && *r->spare) {
        r->plain = *r->spare;
        *r->spare = NULL;
      }
      if (!r->plain && !(r->plain = malloc(TDM_SEGMENT_MAX_PAYLOAD))) return reader_fail(r, TDM_ENOMEM);
      rc = tdm_segment_payload(&seg, r->plain, TDM_SEGMENT_MAX_PAYLOAD);
      if (rc) return reader_fail(r, rc);
      plain = r->plain;
    }

    if (seg.self_contained) {
      if (split_under_way(r)) return reader_fail(r, TDM_EPROTO_MALFORMED);
      if (seg.uncompressed_len == 0) { /* empty: nothing to hand out */
        used += (size_t)n;
        continue;
      }
      r->seg_active = true;
      r->seg_borrowed = !seg.compressed;
      r->seg_pos = 0;
      r->seg_len = seg.uncompressed_len;
      /* Either way the segment's wire bytes count as consumed only after its last envelope: callers
       * loop while they have unconsumed input, so consuming a decompressed segment up front would
       * leave its later envelopes waiting for bytes that never come. */
      r->seg_wire = (size_t)n;
      if (r->seg_borrowed) r->seg_off = (size_t)(seg.payload - (in + used));
      continue;
    }

    used += (size_t)n; /* collect_split copies what it keeps */
    rc = collect_split(r, plain, seg.uncompressed_len, env);
    if (rc == 0) continue;
    if (rc < 0 && rc != TDM_EPROTO_TOO_LARGE) return reader_fail(r, rc);
    *consumed = used;
    return rc;
  }
}

uint8_t *tdm_envelope_reader_steal(tdm_envelope_reader_t *r)
{
  if (!r->big_out) return NULL;
  uint8_t *p = r->big;
  r->big = NULL;
  release_big(r);
  return p;
}

void tdm_envelope_reader_trim(tdm_envelope_reader_t *r)
{
  if (r->seg_active && !r->seg_borrowed) return; /* envelopes still come from plain */
  if (r->plain && r->spare && !*r->spare)
    *r->spare = r->plain;
  else
    free(r->plain);
  r->plain = NULL;
}

void tdm_envelope_reader_free(tdm_envelope_reader_t *r)
{
  uint32_t max = r->max_frame_bytes;
  bool lz4 = r->lz4, skip_crc = r->skip_crc;
  uint8_t **spare = r->spare;
  free(r->plain); /* never into the spare: the slot's owner may be gone by now */
  free(r->big);
  memset(r, 0, sizeof(*r));
  r->max_frame_bytes = max;
  r->lz4 = lz4;
  r->skip_crc = skip_crc;
  r->spare = spare;
}

/* ---- writer ---- */

/* Grows *p to hold at least need bytes (doubling, from 4 KiB). */
static int reserve(uint8_t **p, size_t *cap, size_t need)
{
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 4096;
  while (c < need) {
    if (c > SIZE_MAX / 2) return TDM_ENOMEM;
    c *= 2;
  }
  uint8_t *q = realloc(*p, c);
  if (!q) return TDM_ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

static int writer_fail(tdm_envelope_writer_t *w, int err)
{
  w->err = err;
  return err;
}

static size_t header_size(const tdm_envelope_writer_t *w)
{
  return w->lz4 ? TDM_SEGMENT_HEADER_LZ4 : TDM_SEGMENT_HEADER_PLAIN;
}

/* Appends n payload bytes to the open segment, in place after its header slot; the caller keeps
 * open_len + n <= the segment maximum. The trailer's room is reserved too. */
static int append(tdm_envelope_writer_t *w, const uint8_t *p, size_t n)
{
  if (n == 0) return 0;
  size_t at = w->len + header_size(w) + w->open_len;
  int rc = reserve(&w->buf, &w->cap, at + n + TDM_SEGMENT_CRC_BYTES);
  if (rc) return rc;
  memcpy(w->buf + at, p, n);
  w->open_len += n;
  return 0;
}

static int open_segment(tdm_envelope_writer_t *w)
{
  TDM_ASSERT(!w->open);
  w->open = true;
  w->open_len = 0;
  return reserve(&w->buf, &w->cap, w->len + header_size(w) + TDM_SEGMENT_CRC_BYTES);
}

static int seal(tdm_envelope_writer_t *w, bool self_contained)
{
  TDM_ASSERT(w->open && w->open_len <= TDM_SEGMENT_MAX_PAYLOAD);
  if (w->lz4) {
    int rc = reserve(&w->buf, &w->cap, w->len + TDM_SEGMENT_SEAL_LZ4_ROOM(w->open_len));
    if (rc) return rc;
    w->len += tdm_segment_seal_lz4(w->buf + w->len, w->open_len, self_contained);
  } else {
    w->len += tdm_segment_seal_plain(w->buf + w->len, w->open_len, self_contained);
  }
  w->open = false;
  w->open_len = 0;
  return 0;
}

/* An envelope over one segment: alone, in consecutive non-self-contained segments. */
static int add_split(tdm_envelope_writer_t *w, const uint8_t *hdr, const uint8_t *body, size_t body_len)
{
  const uint8_t *part[2] = { hdr, body };
  size_t left[2] = { TDM_ENVELOPE_HEADER, body_len };
  int i = 0, rc;
  while (i < 2) {
    if ((rc = open_segment(w))) return rc;
    while (i < 2 && w->open_len < TDM_SEGMENT_MAX_PAYLOAD) {
      size_t k = TDM_MIN(left[i], TDM_SEGMENT_MAX_PAYLOAD - w->open_len);
      if ((rc = append(w, part[i], k))) return rc;
      part[i] += k;
      left[i] -= k;
      if (left[i] == 0) i++;
    }
    if ((rc = seal(w, false))) return rc;
  }
  return 0;
}

int tdm_envelope_writer_add(tdm_envelope_writer_t *w, const uint8_t header[TDM_ENVELOPE_HEADER], const uint8_t *body,
                            size_t body_len)
{
  if (w->err) return w->err;
  tdm_frame_header_t h;
  if (tdm_frame_header_decode(header, TDM_ENVELOPE_HEADER, UINT32_MAX, &h) != (int)TDM_ENVELOPE_HEADER ||
      h.length != body_len)
    return TDM_EINVAL; /* a caller bug, not a broken stream: not sticky */

  uint8_t hdr[TDM_ENVELOPE_HEADER];
  memcpy(hdr, header, TDM_ENVELOPE_HEADER);
  hdr[1] &= (uint8_t)~TDM_FLAG_COMPRESSED; /* v5 bodies are never compressed per envelope */

  int rc;
  size_t total = TDM_ENVELOPE_HEADER + body_len;
  if (total > TDM_SEGMENT_MAX_PAYLOAD) {
    if (w->open && (rc = seal(w, true))) return writer_fail(w, rc);
    if ((rc = add_split(w, hdr, body, body_len))) return writer_fail(w, rc);
    return 0;
  }
  if (w->open && w->open_len + total > TDM_SEGMENT_MAX_PAYLOAD && (rc = seal(w, true))) return writer_fail(w, rc);
  if (!w->open && (rc = open_segment(w))) return writer_fail(w, rc);
  if ((rc = append(w, hdr, TDM_ENVELOPE_HEADER)) || (rc = append(w, body, body_len))) return writer_fail(w, rc);
  return 0;
}

int tdm_envelope_writer_add_envelope(tdm_envelope_writer_t *w, const uint8_t *env, size_t len)
{
  if (len < TDM_ENVELOPE_HEADER) return TDM_EINVAL;
  return tdm_envelope_writer_add(w, env, env + TDM_ENVELOPE_HEADER, len - TDM_ENVELOPE_HEADER);
}

int tdm_envelope_writer_flush(tdm_envelope_writer_t *w)
{
  if (w->err) return w->err;
  int rc;
  if (w->open && (rc = seal(w, true))) return writer_fail(w, rc);
  return 0;
}

int tdm_envelope_writer_take(tdm_envelope_writer_t *w, uint8_t **out, size_t *len)
{
  int rc = tdm_envelope_writer_flush(w);
  if (rc) return rc;
  *out = w->len ? w->buf : NULL;
  *len = w->len;
  if (w->len == 0) free(w->buf); /* nothing to send: hold no memory either */
  w->buf = NULL;
  w->len = w->cap = 0;
  return 0;
}

void tdm_envelope_writer_free(tdm_envelope_writer_t *w)
{
  bool lz4 = w->lz4;
  free(w->buf);
  memset(w, 0, sizeof(*w));
  w->lz4 = lz4;
}

/* ---- the proxy's output: emitters ---- */

size_t tdm_envelope_segments(size_t body_len)
{
  size_t total = TDM_ENVELOPE_HEADER + body_len;
  return (total + TDM_SEGMENT_MAX_PAYLOAD - 1) / TDM_SEGMENT_MAX_PAYLOAD;
}

/* Payload bytes [k * MAX, ...) of header + body: *plen header bytes (segment 0 only), then the range. */
static void cut_range(size_t body_len, size_t k, size_t *plen, size_t *off, size_t *len)
{
  size_t total = TDM_ENVELOPE_HEADER + body_len, from = k * TDM_SEGMENT_MAX_PAYLOAD;
  TDM_ASSERT(from < total);
  size_t n = TDM_MIN(total - from, (size_t)TDM_SEGMENT_MAX_PAYLOAD);
  *plen = k == 0 ? TDM_ENVELOPE_HEADER : 0;
  *off = k == 0 ? 0 : from - TDM_ENVELOPE_HEADER;
  *len = n - *plen;
}

/* The header as sent: flag 0x01 means nothing in v5 and is written clear. */
static void sent_header(const uint8_t header[TDM_ENVELOPE_HEADER], uint8_t out[TDM_ENVELOPE_HEADER])
{
  memcpy(out, header, TDM_ENVELOPE_HEADER);
  out[1] &= (uint8_t)~TDM_FLAG_COMPRESSED;
}

int tdm_envelope_emit(size_t n, tdm_envelope_get_fn get, tdm_envelope_put_fn put, void *arg)
{
  uint8_t inl[TDM_ENVELOPE_PIECE_INLINE];
  size_t il = 0; /* inline bytes waiting for the next piece: the trailer of the segment just closed */
  const uint8_t *hdr, *body;
  size_t len;
  int rc;
  size_t i = 0;
  while (i < n) {
    get(arg, i, &hdr, &body, &len);
    if (TDM_ENVELOPE_HEADER + len > TDM_SEGMENT_MAX_PAYLOAD) {
      /* alone, over consecutive non-self-contained segments */
      size_t segs = tdm_envelope_segments(len);
      for (size_t k = 0; k < segs; k++) {
        size_t plen, off, blen;
        cut_range(len, k, &plen, &off, &blen);
        tdm_segment_plain_header(inl + il, plen + blen, false);
        il += TDM_SEGMENT_HEADER_PLAIN;
        uint32_t crc = TDM_SEGMENT_CRC32_INIT;
        if (plen) {
          sent_header(hdr, inl + il);
          crc = tdm_crc32_cql_update(crc, inl + il, plen);
          il += plen;
        }
        crc = tdm_crc32_cql_update(crc, body + off, blen);
        if ((rc = put(arg, inl, il, i, off, blen))) return rc;
        tdm_segment_put_crc32(inl, crc);
        il = TDM_SEGMENT_CRC_BYTES;
      }
      i++;
      continue;
    }
    /* envelopes i..j-1 share one self-contained segment, as many as fit */
    size_t j = i + 1, payload = TDM_ENVELOPE_HEADER + len;
    for (; j < n; j++) {
      const uint8_t *h2, *b2;
      size_t l2;
      get(arg, j, &h2, &b2, &l2);
      if (payload + TDM_ENVELOPE_HEADER + l2 > TDM_SEGMENT_MAX_PAYLOAD) break;
      payload += TDM_ENVELOPE_HEADER + l2;
    }
    tdm_segment_plain_header(inl + il, payload, true);
    il += TDM_SEGMENT_HEADER_PLAIN;
    uint32_t crc = TDM_SEGMENT_CRC32_INIT;
    for (; i < j; i++) {
      get(arg, i, &hdr, &body, &len);
      sent_header(hdr, inl + il);
      crc = tdm_crc32_cql_update(crc, inl + il, TDM_ENVELOPE_HEADER);
      il += TDM_ENVELOPE_HEADER;
      crc = tdm_crc32_cql_update(crc, body, len);
      if ((rc = put(arg, inl, il, i, 0, len))) return rc;
      il = 0;
    }
    tdm_segment_put_crc32(inl, crc);
    il = TDM_SEGMENT_CRC_BYTES;
  }
  return il ? put(arg, inl, il, 0, 0, 0) : 0;
}

size_t tdm_envelope_lz4_room(size_t body_len, size_t k)
{
  size_t plen, off, len;
  cut_range(body_len, k, &plen, &off, &len);
  return TDM_SEGMENT_LZ4_ROOM(plen + len);
}

size_t tdm_envelope_cut_lz4(tdm_segment_lz4_t *z, const uint8_t header[TDM_ENVELOPE_HEADER], const uint8_t *body,
                            size_t body_len, size_t k, uint8_t *out, size_t *start)
{
  size_t plen, off, len;
  cut_range(body_len, k, &plen, &off, &len);
  bool self_contained = TDM_ENVELOPE_HEADER + body_len <= TDM_SEGMENT_MAX_PAYLOAD;
  uint8_t hdr[TDM_ENVELOPE_HEADER];
  sent_header(header, hdr); /* used in segment 0 only */
  return tdm_segment_build_lz4(z, hdr, plen, len ? body + off : NULL, len, self_contained, out, start);
}

int tdm_envelope_emit_lz4(tdm_segment_lz4_t *z, size_t n, tdm_envelope_get_fn get, tdm_envelope_buf_fn buf,
                          tdm_envelope_seg_fn seg, void *arg)
{
  const uint8_t *hdr, *body;
  size_t len, start;
  int rc;
  size_t i = 0;
  while (i < n) {
    get(arg, i, &hdr, &body, &len);
    if (TDM_ENVELOPE_HEADER + len > TDM_ENVELOPE_LZ4_GATHER_MAX) {
      /* compressed straight from the body, alone (split over the segment size) */
      for (size_t k = 0, segs = tdm_envelope_segments(len); k < segs; k++) {
        uint8_t *out = buf(arg, tdm_envelope_lz4_room(len, k));
        if (!out) return TDM_ENOMEM;
        size_t size = tdm_envelope_cut_lz4(z, hdr, body, len, k, out, &start);
        if ((rc = seg(arg, start, size))) return rc;
      }
      i++;
      continue;
    }
    /* envelopes i..j-1, all small, gathered into one self-contained segment */
    size_t j = i + 1, payload = TDM_ENVELOPE_HEADER + len;
    for (; j < n; j++) {
      const uint8_t *h2, *b2;
      size_t l2;
      get(arg, j, &h2, &b2, &l2);
      size_t total = TDM_ENVELOPE_HEADER + l2;
      if (total > TDM_ENVELOPE_LZ4_GATHER_MAX || payload + total > TDM_ENVELOPE_LZ4_RUN_MAX) break;
      payload += total;
    }
    uint8_t *out = buf(arg, TDM_SEGMENT_LZ4_GATHER_ROOM(payload));
    if (!out) return TDM_ENOMEM;
    uint8_t *p = out + TDM_SEGMENT_HEADER_LZ4;
    for (; i < j; i++) {
      get(arg, i, &hdr, &body, &len);
      sent_header(hdr, p);
      if (len) memcpy(p + TDM_ENVELOPE_HEADER, body, len);
      p += TDM_ENVELOPE_HEADER + len;
    }
    size_t size = tdm_segment_seal_lz4_gathered(z, out, payload, true, &start);
    if ((rc = seg(arg, start, size))) return rc;
  }
  return 0;
}
