/* Bounds-checked decoding of CQL notation types. Invariant: pos <= len; a failed getter leaves pos
 * unchanged, so a caller can report the offset of the defect. Integers are big-endian. */
#include <tandem/proto/reader.h>

static inline int need(const tdm_reader_t *r, size_t n)
{
  return tdm_reader_left(r) >= n ? 0 : TDM_EPROTO_MALFORMED;
}

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32(const uint8_t *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int tdm_reader_byte(tdm_reader_t *r, uint8_t *out)
{
  if (need(r, 1)) return TDM_EPROTO_MALFORMED;
  *out = r->buf[r->pos++];
  return 0;
}

int tdm_reader_short(tdm_reader_t *r, uint16_t *out)
{
  if (need(r, 2)) return TDM_EPROTO_MALFORMED;
  *out = be16(r->buf + r->pos);
  r->pos += 2;
  return 0;
}

int tdm_reader_uint(tdm_reader_t *r, uint32_t *out)
{
  if (need(r, 4)) return TDM_EPROTO_MALFORMED;
  *out = be32(r->buf + r->pos);
  r->pos += 4;
  return 0;
}

int tdm_reader_int(tdm_reader_t *r, int32_t *out)
{
  uint32_t u;
  if (tdm_reader_uint(r, &u)) return TDM_EPROTO_MALFORMED;
  *out = (int32_t)u;
  return 0;
}

int tdm_reader_long(tdm_reader_t *r, int64_t *out)
{
  if (need(r, 8)) return TDM_EPROTO_MALFORMED;
  uint64_t v = ((uint64_t)be32(r->buf + r->pos) << 32) | be32(r->buf + r->pos + 4);
  *out = (int64_t)v;
  r->pos += 8;
  return 0;
}

int tdm_reader_raw(tdm_reader_t *r, size_t n, const uint8_t **out)
{
  if (need(r, n)) return TDM_EPROTO_MALFORMED;
  *out = r->buf + r->pos;
  r->pos += n;
  return 0;
}

int tdm_reader_skip(tdm_reader_t *r, size_t n)
{
  const uint8_t *unused;
  return tdm_reader_raw(r, n, &unused);
}

int tdm_reader_string(tdm_reader_t *r, tdm_str_t *out)
{
  size_t start = r->pos;
  uint16_t n;
  const uint8_t *p;
  if (tdm_reader_short(r, &n) || tdm_reader_raw(r, n, &p)) {
    r->pos = start;
    return TDM_EPROTO_MALFORMED;
  }
  out->ptr = (const char *)p;
  out->len = n;
  return 0;
}

int tdm_reader_long_string(tdm_reader_t *r, tdm_str_t *out)
{
  size_t start = r->pos;
  int32_t n;
  const uint8_t *p;
  if (tdm_reader_int(r, &n) || n < 0 || tdm_reader_raw(r, (size_t)n, &p)) {
    r->pos = start;
    return TDM_EPROTO_MALFORMED;
  }
  out->ptr = (const char *)p;
  out->len = (size_t)n;
  return 0;
}

/* [bytes] and [value] differ only in which negative lengths are legal. */
static int read_sized(tdm_reader_t *r, tdm_bytes_t *out, int32_t min_len)
{
  size_t start = r->pos;
  int32_t n;
  if (tdm_reader_int(r, &n)) return TDM_EPROTO_MALFORMED;
  if (n < 0) {
    if (n < min_len) {
      r->pos = start;
      return TDM_EPROTO_MALFORMED;
    }
    out->ptr = NULL;
    out->len = n;
    return 0;
  }
  const uint8_t *p;
  if (tdm_reader_raw(r, (size_t)n, &p)) {
    r->pos = start;
    return TDM_EPROTO_MALFORMED;
  }
  out->ptr = p;
  out->len = n;
  return 0;
}

int tdm_reader_bytes(tdm_reader_t *r, tdm_bytes_t *out)
{
  /* Any negative length means null for [bytes]; normalise to -1. */
  size_t start = r->pos;
  int32_t n;
  if (tdm_reader_int(r, &n)) return TDM_EPROTO_MALFORMED;
  if (n < 0) {
    out->ptr = NULL;
    out->len = -1;
    return 0;
  }
  r->pos = start;
  return read_sized(r, out, 0);
}

int tdm_reader_value(tdm_reader_t *r, tdm_bytes_t *out) { return read_sized(r, out, -2); }

int tdm_reader_short_bytes(tdm_reader_t *r, tdm_bytes_t *out)
{
  size_t start = r->pos;
  uint16_t n;
  const uint8_t *p;
  if (tdm_reader_short(r, &n) || tdm_reader_raw(r, n, &p)) {
    r->pos = start;
    return TDM_EPROTO_MALFORMED;
  }
  out->ptr = p;
  out->len = n;
  return 0;
}

int tdm_reader_uuid(tdm_reader_t *r, const uint8_t **out16) { return tdm_reader_raw(r, 16, out16); }

int tdm_reader_inetaddr(tdm_reader_t *r, const uint8_t **addr, uint8_t *addr_len)
{
  size_t start = r->pos;
  uint8_t n;
  if (tdm_reader_byte(r, &n) || (n != 4 && n != 16) || tdm_reader_raw(r, n, addr)) {
    r->pos = start;
    return TDM_EPROTO_MALFORMED;
  }
  *addr_len = n;
  return 0;
}

int tdm_reader_inet(tdm_reader_t *r, const uint8_t **addr, uint8_t *addr_len, int32_t *port)
{
  size_t start = r->pos;
  if (tdm_reader_inetaddr(r, addr, addr_len) || tdm_reader_int(r, port)) {
    r->pos = start;
    return TDM_EPROTO_MALFORMED;
  }
  return 0;
}

/* Skips `count` items read by `item`; restores the cursor on failure. */
static int skip_n(tdm_reader_t *r, size_t start, uint32_t count, int (*item)(tdm_reader_t *))
{
  for (uint32_t i = 0; i < count; i++) {
    if (item(r)) {
      r->pos = start;
      return TDM_EPROTO_MALFORMED;
    }
  }
  return 0;
}

static int skip_string(tdm_reader_t *r)
{
  tdm_str_t s;
  return tdm_reader_string(r, &s);
}

static int skip_string_pair(tdm_reader_t *r)
{
  tdm_str_t k, v;
  return tdm_reader_string(r, &k) || tdm_reader_string(r, &v) ? TDM_EPROTO_MALFORMED : 0;
}

static int skip_string_and_list(tdm_reader_t *r)
{
  tdm_str_t k;
  return tdm_reader_string(r, &k) || tdm_reader_skip_string_list(r) ? TDM_EPROTO_MALFORMED : 0;
}

static int skip_string_and_bytes(tdm_reader_t *r)
{
  tdm_str_t k;
  tdm_bytes_t v;
  return tdm_reader_string(r, &k) || tdm_reader_bytes(r, &v) ? TDM_EPROTO_MALFORMED : 0;
}

#define TDM_SKIP_COLLECTION(fn, item)                  \
  int fn(tdm_reader_t *r)                              \
  {                                                    \
    size_t start = r->pos;                             \
    uint16_t n;                                        \
    if (tdm_reader_short(r, &n)) return TDM_EPROTO_MALFORMED; \
    return skip_n(r, start, n, item);                  \
  }

TDM_SKIP_COLLECTION(tdm_reader_skip_string_list, skip_string)
TDM_SKIP_COLLECTION(tdm_reader_skip_string_map, skip_string_pair)
TDM_SKIP_COLLECTION(tdm_reader_skip_string_multimap, skip_string_and_list)
TDM_SKIP_COLLECTION(tdm_reader_skip_bytes_map, skip_string_and_bytes)

int tdm_reader_string_map_get(tdm_reader_t *r, tdm_str_t key, tdm_str_t *value, bool *found)
{
  size_t start = r->pos;
  uint16_t n;
  *found = false;
  if (tdm_reader_short(r, &n)) return TDM_EPROTO_MALFORMED;
  for (uint16_t i = 0; i < n; i++) {
    tdm_str_t k, v;
    if (tdm_reader_string(r, &k) || tdm_reader_string(r, &v)) {
      r->pos = start;
      *found = false;
      return TDM_EPROTO_MALFORMED;
    }
    if (!*found && tdm_str_eq_ci(k, key)) {
      *value = v;
      *found = true;
    }
  }
  return 0;
}
