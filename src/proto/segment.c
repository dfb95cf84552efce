/* Protocol v5 segments: header codec with CRC24, payload CRC32 (zlib, primed with FA 2D 55 CA), lz4
 * block (de)compression, and the in-place builder the envelope writer uses. Header integers are
 * little-endian; padding bits above the flag are ignored on input (as Cassandra does) and written as 0.
 * Invariant: decode never reads p[i] for i >= len and never trusts a length before the CRC24 passed. */
#include <lz4.h>
#include <zlib.h>

#include <tandem/proto/segment.h>

#define TDM_SEGMENT_CRC24_INIT 0x875060u
#define TDM_SEGMENT_CRC24_POLY 0x1974F0Bu
#define TDM_SEGMENT_LEN_MASK 0x1FFFFu

static const uint8_t crc32_prime[4] = { 0xFA, 0x2D, 0x55, 0xCA };

uint32_t tdm_crc24(const uint8_t *p, size_t len)
{
  uint32_t crc = TDM_SEGMENT_CRC24_INIT;
  for (size_t i = 0; i < len; i++) {
    crc ^= (uint32_t)p[i] << 16;
    for (int bit = 0; bit < 8; bit++) {
      crc <<= 1;
      if (crc & 0x1000000u) crc ^= TDM_SEGMENT_CRC24_POLY;
    }
  }
  return crc & 0xFFFFFFu;
}

uint32_t tdm_crc32_cql(const uint8_t *p, size_t len)
{
  uLong crc = crc32(0L, crc32_prime, sizeof(crc32_prime));
  if (len) crc = crc32_z(crc, p, len);
  return (uint32_t)crc;
}

static inline uint32_t get_le24(const uint8_t *p) { return p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16); }
static inline uint32_t get_le32(const uint8_t *p) { return get_le24(p) | ((uint32_t)p[3] << 24); }
static inline void put_le(uint8_t *p, uint64_t v, size_t n)
{
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int tdm_segment_decode(const uint8_t *p, size_t len, bool lz4, bool check_crc, tdm_segment_t *out)
{
  size_t hlen = lz4 ? TDM_SEGMENT_HEADER_LZ4 : TDM_SEGMENT_HEADER_PLAIN;
  size_t flen = hlen - 3; /* bytes the CRC24 covers */
  if (len < hlen) return 0;
  if (check_crc && tdm_crc24(p, flen) != get_le24(p + flen)) return TDM_EPROTO_CRC;

  uint64_t bits = 0;
  for (size_t i = 0; i < flen; i++) bits |= (uint64_t)p[i] << (8 * i);
  size_t payload_len = bits & TDM_SEGMENT_LEN_MASK;
  size_t uncompressed = 0;
  bool self_contained;
  if (lz4) {
    uncompressed = (bits >> 17) & TDM_SEGMENT_LEN_MASK;
    self_contained = (bits >> 34) & 1;
    /* No lz4 block is empty: a non-zero length cannot come from zero compressed bytes. */
    if (uncompressed != 0 && payload_len == 0) return TDM_EPROTO_MALFORMED;
  } else {
    self_contained = (bits >> 17) & 1;
  }

  size_t total = hlen + payload_len + TDM_SEGMENT_CRC_BYTES;
  if (len < total) return 0;
  const uint8_t *payload = p + hlen;
  if (check_crc && tdm_crc32_cql(payload, payload_len) != get_le32(payload + payload_len)) return TDM_EPROTO_CRC;

  out->payload = payload;
  out->payload_len = payload_len;
  out->compressed = lz4 && uncompressed != 0; /* lz4 uncompressed length 0 = stored as is */
  out->uncompressed_len = out->compressed ? uncompressed : payload_len;
  out->self_contained = self_contained;
  return (int)total;
}

int tdm_segment_payload(const tdm_segment_t *seg, uint8_t *out, size_t cap)
{
  if (cap < seg->uncompressed_len) return TDM_EOVERFLOW;
  if (!seg->compressed) {
    if (seg->payload_len) memcpy(out, seg->payload, seg->payload_len);
    return 0;
  }
  /* Both lengths are <= 17 bits, so the int casts are exact. */
  int n = LZ4_decompress_safe((const char *)seg->payload, (char *)out, (int)seg->payload_len, (int)seg->uncompressed_len);
  if (n < 0 || (size_t)n != seg->uncompressed_len) return TDM_EPROTO_COMPRESS;
  return 0;
}

size_t tdm_segment_encode_bound(size_t payload_len, bool lz4)
{
  /* With lz4 a payload that would not shrink goes stored, so the payload never grows. */
  return (lz4 ? TDM_SEGMENT_HEADER_LZ4 : TDM_SEGMENT_HEADER_PLAIN) + payload_len + TDM_SEGMENT_CRC_BYTES;
}

/* Writes header bits + CRC24 (flen header bytes, then 3 CRC bytes). */
static void put_header(uint8_t *out, uint64_t bits, size_t flen)
{
  put_le(out, bits, flen);
  put_le(out + flen, tdm_crc24(out, flen), 3);
}

size_t tdm_segment_seal_plain(uint8_t *seg, size_t payload_len, bool self_contained)
{
  TDM_ASSERT(payload_len <= TDM_SEGMENT_MAX_PAYLOAD);
  put_header(seg, (uint64_t)payload_len | ((uint64_t)self_contained << 17), 3);
  uint8_t *payload = seg + TDM_SEGMENT_HEADER_PLAIN;
  put_le(payload + payload_len, tdm_crc32_cql(payload, payload_len), 4);
  return TDM_SEGMENT_HEADER_PLAIN + payload_len + TDM_SEGMENT_CRC_BYTES;
}

/* Header + trailer of an lz4 segment whose (compressed or stored) payload is in place. */
static size_t finish_lz4(uint8_t *seg, size_t clen, size_t ulen, bool self_contained)
{
  put_header(seg, (uint64_t)clen | ((uint64_t)ulen << 17) | ((uint64_t)self_contained << 34), 5);
  uint8_t *body = seg + TDM_SEGMENT_HEADER_LZ4;
  put_le(body + clen, tdm_crc32_cql(body, clen), 4);
  return TDM_SEGMENT_HEADER_LZ4 + clen + TDM_SEGMENT_CRC_BYTES;
}

/* Compresses src into dst (capacity n - 1, so only a block that strictly shrinks fits); 0 = store. */
static size_t compress_if_smaller(const uint8_t *src, size_t n, uint8_t *dst)
{
  if (n < 2) return 0;
  int c = LZ4_compress_default((const char *)src, (char *)dst, (int)n, (int)n - 1);
  return c > 0 ? (size_t)c : 0;
}

size_t tdm_segment_seal_lz4(uint8_t *seg, size_t payload_len, bool self_contained)
{
  TDM_ASSERT(payload_len <= TDM_SEGMENT_MAX_PAYLOAD);
  uint8_t *body = seg + TDM_SEGMENT_HEADER_LZ4;
  uint8_t *scratch = body + payload_len; /* LZ4 needs disjoint buffers */
  size_t clen = compress_if_smaller(body, payload_len, scratch);
  if (clen == 0) return finish_lz4(seg, payload_len, 0, self_contained); /* stored: uncompressed length 0 */
  memmove(body, scratch, clen);
  return finish_lz4(seg, clen, payload_len, self_contained);
}

int tdm_segment_encode(const uint8_t *payload, size_t payload_len, bool self_contained, bool lz4, uint8_t *out,
                       size_t cap)
{
  if (payload_len > TDM_SEGMENT_MAX_PAYLOAD) return TDM_EINVAL;
  if (cap < tdm_segment_encode_bound(payload_len, lz4)) return TDM_EOVERFLOW;
  if (!lz4) {
    if (payload_len) memcpy(out + TDM_SEGMENT_HEADER_PLAIN, payload, payload_len);
    return (int)tdm_segment_seal_plain(out, payload_len, self_contained);
  }

  uint8_t *body = out + TDM_SEGMENT_HEADER_LZ4;
  size_t clen = compress_if_smaller(payload, payload_len, body);
  if (clen == 0) {
    if (payload_len) memcpy(body, payload, payload_len);
    return (int)finish_lz4(out, payload_len, 0, self_contained);
  }
  return (int)finish_lz4(out, clen, payload_len, self_contained);
}
