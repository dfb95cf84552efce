/* Protocol v5 segments: header codec with CRC24, payload CRC32 (zlib's CRC-32 primed with FA 2D 55 CA,
 * also over pieces), lz4 block (de)compression, the in-place builder the envelope writer uses, and the
 * pieces of zero-copy output (headers for payloads sent by reference; lz4 from two pieces or from a
 * gathered payload, nothing moved). Header integers are little-endian; padding bits above the flag
 * are ignored on input (as Cassandra does) and written as 0. Invariant: decode never reads p[i] for
 * i >= len and never trusts a length before the CRC24 passed. */
#include <lz4.h>
#include <zlib.h>

#include <tandem/proto/segment.h>

#define TDM_SEGMENT_CRC24_INIT 0x875060u
#define TDM_SEGMENT_CRC24_POLY 0x1974F0Bu
#define TDM_SEGMENT_LEN_MASK 0x1FFFFu

/* The payload CRC32 is zlib's CRC-32 primed with FA 2D 55 CA: it starts from TDM_SEGMENT_CRC32_INIT,
 * the CRC-32 of those 4 bytes (test_segment_out checks it against zlib). */

static inline uint32_t get_le24(const uint8_t *p) { return p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16); }
static inline uint32_t get_le32(const uint8_t *p) { return get_le24(p) | ((uint32_t)p[3] << 24); }
static inline void put_le(uint8_t *p, uint64_t v, size_t n)
{
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* crc24_tab[b]: the CRC24 register after shifting byte b through it from the top (8 steps of the
 * bitwise definition below); one lookup per byte instead of 8 data-dependent branches. */
static const uint32_t crc24_tab[256] = {
  0x000000, 0x974f0b, 0xb9d11d, 0x2e9e16, 0xe4ed31, 0x73a23a, 0x5d3c2c, 0xca7327,
  0x5e9569, 0xc9da62, 0xe74474, 0x700b7f, 0xba7858, 0x2d3753, 0x03a945, 0x94e64e,
  0xbd2ad2, 0x2a65d9, 0x04fbcf, 0x93b4c4, 0x59c7e3, 0xce88e8, 0xe016fe, 0x7759f5,
  0xe3bfbb, 0x74f0b0, 0x5a6ea6, 0xcd21ad, 0x07528a, 0x901d81, 0xbe8397, 0x29cc9c,
  0xed1aaf, 0x7a55a4, 0x54cbb2, 0xc384b9, 0x09f79e, 0x9eb895, 0xb02683, 0x276988,
  0xb38fc6, 0x24c0cd, 0x0a5edb, 0x9d11d0, 0x5762f7, 0xc02dfc, 0xeeb3ea, 0x79fce1,
  0x50307d, 0xc77f76, 0xe9e160, 0x7eae6b, 0xb4dd4c, 0x239247, 0x0d0c51, 0x9a435a,
  0x0ea514, 0x99ea1f, 0xb77409, 0x203b02, 0xea4825, 0x7d072e, 0x539938, 0xc4d633,
  0x4d7a55, 0xda355e, 0xf4ab48, 0x63e443, 0xa99764, 0x3ed86f, 0x104679, 0x870972,
  0x13ef3c, 0x84a037, 0xaa3e21, 0x3d712a, 0xf7020d, 0x604d06, 0x4ed310, 0xd99c1b,
  0xf05087, 0x671f8c, 0x49819a, 0xdece91, 0x14bdb6, 0x83f2bd, 0xad6cab, 0x3a23a0,
  0xaec5ee, 0x398ae5, 0x1714f3, 0x805bf8, 0x4a28df, 0xdd67d4, 0xf3f9c2, 0x64b6c9,
  0xa060fa, 0x372ff1, 0x19b1e7, 0x8efeec, 0x448dcb, 0xd3c2c0, 0xfd5cd6, 0x6a13dd,
  0xfef593, 0x69ba98, 0x47248e, 0xd06b85, 0x1a18a2, 0x8d57a9, 0xa3c9bf, 0x3486b4,
  0x1d4a28, 0x8a0523, 0xa49b35, 0x33d43e, 0xf9a719, 0x6ee812, 0x407604, 0xd7390f,
  0x43df41, 0xd4904a, 0xfa0e5c, 0x6d4157, 0xa73270, 0x307d7b, 0x1ee36d, 0x89ac66,
  0x9af4aa, 0x0dbba1, 0x2325b7, 0xb46abc, 0x7e199b, 0xe95690, 0xc7c886, 0x50878d,
  0xc461c3, 0x532ec8, 0x7db0de, 0xeaffd5, 0x208cf2, 0xb7c3f9, 0x995def, 0x0e12e4,
  0x27de78, 0xb09173, 0x9e0f65, 0x09406e, 0xc33349, 0x547c42, 0x7ae254, 0xedad5f,
  0x794b11, 0xee041a, 0xc09a0c, 0x57d507, 0x9da620, 0x0ae92b, 0x24773d, 0xb33836,
  0x77ee05, 0xe0a10e, 0xce3f18, 0x597013, 0x930334, 0x044c3f, 0x2ad229, 0xbd9d22,
  0x297b6c, 0xbe3467, 0x90aa71, 0x07e57a, 0xcd965d, 0x5ad956, 0x744740, 0xe3084b,
  0xcac4d7, 0x5d8bdc, 0x7315ca, 0xe45ac1, 0x2e29e6, 0xb966ed, 0x97f8fb, 0x00b7f0,
  0x9451be, 0x031eb5, 0x2d80a3, 0xbacfa8, 0x70bc8f, 0xe7f384, 0xc96d92, 0x5e2299,
  0xd78eff, 0x40c1f4, 0x6e5fe2, 0xf910e9, 0x3363ce, 0xa42cc5, 0x8ab2d3, 0x1dfdd8,
  0x891b96, 0x1e549d, 0x30ca8b, 0xa78580, 0x6df6a7, 0xfab9ac, 0xd427ba, 0x4368b1,
  0x6aa42d, 0xfdeb26, 0xd37530, 0x443a3b, 0x8e491c, 0x190617, 0x379801, 0xa0d70a,
  0x343144, 0xa37e4f, 0x8de059, 0x1aaf52, 0xd0dc75, 0x47937e, 0x690d68, 0xfe4263,
  0x3a9450, 0xaddb5b, 0x83454d, 0x140a46, 0xde7961, 0x49366a, 0x67a87c, 0xf0e777,
  0x640139, 0xf34e32, 0xddd024, 0x4a9f2f, 0x80ec08, 0x17a303, 0x393d15, 0xae721e,
  0x87be82, 0x10f189, 0x3e6f9f, 0xa92094, 0x6353b3, 0xf41cb8, 0xda82ae, 0x4dcda5,
  0xd92beb, 0x4e64e0, 0x60faf6, 0xf7b5fd, 0x3dc6da, 0xaa89d1, 0x8417c7, 0x1358cc,
};

/* Definition: crc ^= byte << 16, then 8 times: crc <<= 1, xor TDM_SEGMENT_CRC24_POLY when bit 24 is
 * set. The register's low 16 bits never reach bit 24 in 8 steps, so they just move up a byte. */
uint32_t tdm_crc24(const uint8_t *p, size_t len)
{
  uint32_t crc = TDM_SEGMENT_CRC24_INIT;
  for (size_t i = 0; i < len; i++) crc = ((crc << 8) & 0xFFFF00u) ^ crc24_tab[((crc >> 16) ^ p[i]) & 0xFF];
  return crc;
}

uint32_t tdm_crc32_cql_update(uint32_t crc, const uint8_t *p, size_t n)
{
  /* zlib's crc32 returns a finished CRC and continues from one, so pieces chain without a final step */
  return n ? (uint32_t)crc32_z(crc, p, n) : crc;
}

uint32_t tdm_crc32_cql(const uint8_t *p, size_t len) { return tdm_crc32_cql_update(TDM_SEGMENT_CRC32_INIT, p, len); }

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

void tdm_segment_put_crc32(uint8_t out[TDM_SEGMENT_CRC_BYTES], uint32_t crc) { put_le(out, crc, 4); }

void tdm_segment_plain_header(uint8_t out[TDM_SEGMENT_HEADER_PLAIN], size_t payload_len, bool self_contained)
{
  TDM_ASSERT(payload_len <= TDM_SEGMENT_MAX_PAYLOAD);
  put_header(out, (uint64_t)payload_len | ((uint64_t)self_contained << 17), 3);
}

size_t tdm_segment_seal_plain(uint8_t *seg, size_t payload_len, bool self_contained)
{
  tdm_segment_plain_header(seg, payload_len, self_contained);
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

/* ---- lz4 straight from two pieces (zero-copy v5 output) ---- */

/* Inputs this short never shrink: lz4 emits no match before 13 bytes (a match needs 4 and the last 5
 * bytes of a block are literals), and the token costs a byte of its own. */
#define LZ4_MIN_GAIN_INPUT 13u

_Static_assert(sizeof(((tdm_segment_lz4_t *)0)->state) >= sizeof(LZ4_stream_t),
               "TDM_SEGMENT_LZ4_STATE_WORDS is too small for this lz4's LZ4_stream_t");

tdm_segment_lz4_t *tdm_segment_lz4_new(void) { return calloc(1, sizeof(tdm_segment_lz4_t)); }

void tdm_segment_lz4_free(tdm_segment_lz4_t *z) { free(z); }

/* Bytes an lz4 literal run of n needs after its token (the token's nibble says 15 = "more follow"). */
static size_t lit_len_bytes(size_t n) { return n < 15 ? 0 : 1 + (n - 15) / 255; }

/* src[0..n) as one independent lz4 block in dst[0..cap), or 0 when it does not fit. */
static size_t compress_block(tdm_segment_lz4_t *z, const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
  int c;
  if (z) {
    LZ4_stream_t *stream = (LZ4_stream_t *)z->state;
    if (!z->ready) z->ready = LZ4_initStream(z->state, sizeof(z->state)) != NULL;
    if (!z->ready) return 0; /* cannot happen (the storage is aligned and large enough): send stored */
    /* no history after the reset: the block references only its own bytes, as a segment must; the
     * reset is the cheap one (no 16 KiB memset), which is why the state is kept */
    LZ4_resetStream_fast(stream);
    c = LZ4_compress_fast_continue(stream, (const char *)src, (char *)dst, (int)n, (int)cap, 1);
  } else {
    c = LZ4_compress_default((const char *)src, (char *)dst, (int)n, (int)cap);
  }
  return c > 0 ? (size_t)c : 0;
}

/* Turns the block at blk (clen bytes) into one that decodes to prefix + its old output: the first
 * sequence's literal run grows by plen bytes, written right before its own literals with a new token
 * and length field in front. Literals and everything after them stay where they are. Returns the new
 * block start, which is never below blk - plen - 1 (the length field grows by one byte at most for
 * plen <= TDM_SEGMENT_LZ4_PREFIX_MAX). */
static uint8_t *merge_prefix(uint8_t *blk, size_t clen, const uint8_t *prefix, size_t plen)
{
  uint8_t token = blk[0];
  size_t lit = token >> 4, i = 1;
  if (lit == 15) {
    uint8_t b;
    do {
      b = blk[i++];
      lit += b;
    } while (b == 255 && i < clen);
  }
  uint8_t *lits = blk + i;
  size_t run = lit + plen;
  uint8_t *p = lits - plen - lit_len_bytes(run) - 1;
  TDM_ASSERT(p >= blk - plen - 1);
  p[0] = (uint8_t)((TDM_MIN(run, (size_t)15) << 4) | (token & 0x0Fu));
  if (run >= 15) {
    size_t r = run - 15, k = 1;
    for (; r >= 255; r -= 255) p[k++] = 255;
    p[k] = (uint8_t)r;
  }
  memcpy(lits - plen, prefix, plen);
  return p;
}

size_t tdm_segment_build_lz4(tdm_segment_lz4_t *z, const uint8_t *prefix, size_t plen, const uint8_t *src, size_t n,
                             bool self_contained, uint8_t *out, size_t *start)
{
  size_t total = plen + n;
  TDM_ASSERT(plen <= TDM_SEGMENT_LZ4_PREFIX_MAX && total <= TDM_SEGMENT_MAX_PAYLOAD);
  uint8_t *base = out + TDM_SEGMENT_HEADER_LZ4; /* where a stored payload goes */
  if (n >= LZ4_MIN_GAIN_INPUT) {
    /* The block is written plen + 1 bytes in, so its rewritten start (merge_prefix) is >= base. Its
     * capacity makes the final payload shorter than the stored one: at most n - 2 + plen + 1 bytes
     * (n - 1 without a prefix). Both end before base + total, so the trailer fits in the room too. */
    uint8_t *blk = base + (plen ? plen + 1 : 0);
    size_t clen = compress_block(z, src, n, blk, plen ? n - 2 : n - 1);
    if (clen) {
      uint8_t *payload = plen ? merge_prefix(blk, clen, prefix, plen) : blk;
      size_t plen_out = (size_t)(blk + clen - payload);
      TDM_ASSERT(plen_out < total);
      uint8_t *seg = payload - TDM_SEGMENT_HEADER_LZ4;
      *start = (size_t)(seg - out);
      return finish_lz4(seg, plen_out, total, self_contained);
    }
  }
  if (plen) memcpy(base, prefix, plen);
  if (n) memcpy(base + plen, src, n);
  *start = 0;
  return finish_lz4(out, total, 0, self_contained); /* stored: uncompressed length 0 */
}

size_t tdm_segment_seal_lz4_gathered(tdm_segment_lz4_t *z, uint8_t *out, size_t payload_len, bool self_contained,
                                     size_t *start)
{
  TDM_ASSERT(payload_len <= TDM_SEGMENT_MAX_PAYLOAD);
  uint8_t *plain = out + TDM_SEGMENT_HEADER_LZ4;
  uint8_t *seg = plain + payload_len; /* a compressed segment's header, right after the plain payload */
  size_t clen = payload_len >= LZ4_MIN_GAIN_INPUT
                  ? compress_block(z, plain, payload_len, seg + TDM_SEGMENT_HEADER_LZ4, payload_len - 1)
                  : 0;
  if (clen) {
    *start = TDM_SEGMENT_HEADER_LZ4 + payload_len;
    return finish_lz4(seg, clen, payload_len, self_contained);
  }
  *start = 0;
  return finish_lz4(out, payload_len, 0, self_contained); /* stored; its trailer lands where seg was */
}
