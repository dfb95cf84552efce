/* v5 envelope layer between segments and CQL messages: the reader turns segment bytes into whole
 * envelopes (in place when it can, reassembling split ones), the writer packs envelopes into segments.
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
  free(r->plain);
  r->plain = NULL;
}

void tdm_envelope_reader_free(tdm_envelope_reader_t *r)
{
  uint32_t max = r->max_frame_bytes;
  bool lz4 = r->lz4, skip_crc = r->skip_crc;
  free(r->plain);
  free(r->big);
  memset(r, 0, sizeof(*r));
  r->max_frame_bytes = max;
  r->lz4 = lz4;
  r->skip_crc = skip_crc;
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
