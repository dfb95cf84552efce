/* v5 segment codec: CRC24/CRC32 known values (from the DataStax Python driver's codec), header bit
 * layout, uncompressed and lz4 round trips up to 131071 bytes, stored lz4, incompressible payloads sent
 * stored, need-more at every split point and one byte at a time, CRC mismatches, impossible headers,
 * and segments encoded by the driver (tests/data/vectors/drv-seg-*.hex). */
#include "testlib.h"

#include <lz4.h>
#include <tandem/proto/segment.h>

static void test_crc24_known(void **state)
{
  /* header bytes (little-endian wire order) -> CRC24, computed by cassandra/segment.py */
  static const struct { const char *hex; uint32_t crc; } cases[] = {
    { "000000", 0x7de777 },     { "320002", 0xeeffa5 }, /* 50 bytes, self-contained */
    { "ffff03", 0x474025 },     { "ffff01", 0xfe9138 }, { "010000", 0x15876f },
    { "ffffff", 0x7a86ff },     { "9a78563412", 0x40d313 }, { "0000000000", 0xaaac0a },
    { "0100000004", 0x87a506 }, /* lz4 header: compressed 1, self-contained */
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    size_t n;
    uint8_t *p = tdm_test_hex(cases[i].hex, &n);
    assert_int_equal(tdm_crc24(p, n), cases[i].crc);
    free(p);
  }
}

static void test_crc32_known(void **state)
{
  /* zlib CRC-32 primed with FA 2D 55 CA, as cassandra/segment.py computes it */
  assert_int_equal(tdm_crc32_cql(NULL, 0), 0x44777ed3u);
  assert_int_equal(tdm_crc32_cql((const uint8_t *)"123456789", 9), 0xe2a261a7u);
  uint8_t zeros[16] = { 0 }, seq[256];
  for (int i = 0; i < 256; i++) seq[i] = (uint8_t)i;
  assert_int_equal(tdm_crc32_cql(zeros, sizeof(zeros)), 0x486efa56u);
  assert_int_equal(tdm_crc32_cql(seq, sizeof(seq)), 0x214de79bu);
}

static void test_encode_header_layout(void **state)
{
  uint8_t payload[50], out[128];
  memset(payload, 'b', sizeof(payload));
  int n = tdm_segment_encode(payload, 50, true, false, out, sizeof(out));
  assert_int_equal(n, 6 + 50 + 4);
  assert_memory_equal(out, "\x32\x00\x02\xa5\xff\xee", 6); /* 50 | 1 << 17, then CRC24 0xeeffa5 LE */
  n = tdm_segment_encode(payload, 50, false, false, out, sizeof(out));
  assert_memory_equal(out, "\x32\x00\x00", 3);

  /* lz4: compressible, self-contained; header = clen | 50 << 17 | 1 << 34 */
  n = tdm_segment_encode(payload, 50, true, true, out, sizeof(out));
  assert_true(n > 0 && n < 8 + 50 + 4);
  uint64_t bits = 0;
  for (int i = 0; i < 5; i++) bits |= (uint64_t)out[i] << (8 * i);
  size_t clen = bits & 0x1FFFF;
  assert_int_equal(clen, (size_t)n - 12);
  assert_int_equal((bits >> 17) & 0x1FFFF, 50);
  assert_int_equal((bits >> 34) & 1, 1);
  assert_int_equal(bits >> 35, 0);
  assert_int_equal(tdm_crc24(out, 5), out[5] | out[6] << 8 | out[7] << 16);
}

static void round_trip(size_t len, bool noise, bool lz4, bool self_contained)
{
  uint8_t *payload = malloc(len ? len : 1), *back = malloc(len ? len : 1);
  if (noise) {
    tdm_test_fill_random(payload, len, (uint32_t)len + 1);
  } else {
    for (size_t i = 0; i < len; i++) payload[i] = (uint8_t)"SELECT * FROM t; "[i % 17];
  }
  size_t cap = tdm_segment_encode_bound(len, lz4);
  uint8_t *out = malloc(cap);
  int n = tdm_segment_encode(payload, len, self_contained, lz4, out, cap);
  assert_true(n > 0 && (size_t)n <= cap);

  tdm_segment_t seg;
  /* need more at every split point (exact-size copies so ASan sees over-reads) */
  size_t step = len > 4096 ? 997 : 1;
  for (size_t k = 0; k < (size_t)n; k += step) {
    uint8_t *part = malloc(k ? k : 1);
    memcpy(part, out, k);
    assert_int_equal(tdm_segment_decode(part, k, lz4, true, &seg), 0);
    free(part);
  }
  assert_int_equal(tdm_segment_decode(out, (size_t)n, lz4, true, &seg), n);
  assert_int_equal(seg.self_contained, self_contained);
  assert_int_equal(seg.uncompressed_len, len);
  if (lz4 && (noise || len < 2)) {
    assert_false(seg.compressed); /* would not shrink: stored, uncompressed length 0 on the wire */
    assert_int_equal(seg.payload_len, len);
    uint64_t bits = 0;
    for (int i = 0; i < 5; i++) bits |= (uint64_t)out[i] << (8 * i);
    assert_int_equal((bits >> 17) & 0x1FFFF, 0);
  }
  if (lz4 && !noise && len >= 64) {
    assert_true(seg.compressed);
    assert_true(seg.payload_len < len);
  }
  assert_int_equal(tdm_segment_payload(&seg, back, len), 0);
  if (len) assert_memory_equal(back, payload, len);
  if (len) assert_int_equal(tdm_segment_payload(&seg, back, len - 1), TDM_EOVERFLOW);
  free(out);
  free(back);
  free(payload);
}

static void test_round_trips(void **state)
{
  static const size_t lens[] = { 0, 1, 2, 9, 50, 100, 4096, 65536, TDM_SEGMENT_MAX_PAYLOAD };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(lens); i++) {
    for (int mode = 0; mode < 8; mode++) round_trip(lens[i], mode & 1, mode & 2, mode & 4);
  }
}

static void test_seal_in_place(void **state)
{
  static uint8_t buf[TDM_SEGMENT_SEAL_LZ4_ROOM(TDM_SEGMENT_MAX_PAYLOAD)];
  static uint8_t expect[TDM_SEGMENT_MAX_PAYLOAD], back[TDM_SEGMENT_MAX_PAYLOAD];
  tdm_segment_t seg;
  for (int noise = 0; noise < 2; noise++) {
    size_t len = noise ? 5000 : TDM_SEGMENT_MAX_PAYLOAD;
    if (noise)
      tdm_test_fill_random(expect, len, 3);
    else
      for (size_t i = 0; i < len; i++) expect[i] = (uint8_t)(i % 61);
    /* lz4: compressed in place when it shrinks, else stored */
    memcpy(buf + TDM_SEGMENT_HEADER_LZ4, expect, len);
    size_t n = tdm_segment_seal_lz4(buf, len, noise);
    assert_int_equal(tdm_segment_decode(buf, n, true, true, &seg), (int)n);
    assert_int_equal(seg.compressed, !noise);
    assert_int_equal(seg.self_contained, noise);
    assert_int_equal(seg.uncompressed_len, len);
    assert_int_equal(n, noise ? 8 + len + 4 : 8 + seg.payload_len + 4);
    assert_int_equal(tdm_segment_payload(&seg, back, sizeof(back)), 0);
    assert_memory_equal(back, expect, len);
    /* plain */
    memcpy(buf + TDM_SEGMENT_HEADER_PLAIN, expect, len);
    n = tdm_segment_seal_plain(buf, len, true);
    assert_int_equal(n, 6 + len + 4);
    assert_int_equal(tdm_segment_decode(buf, n, false, true, &seg), (int)n);
    assert_memory_equal(seg.payload, expect, len);
  }
  /* tiny payloads are stored */
  buf[8] = 'z';
  size_t n = tdm_segment_seal_lz4(buf, 1, true);
  assert_int_equal(n, 13);
  assert_int_equal(tdm_segment_decode(buf, n, true, true, &seg), 13);
  assert_false(seg.compressed);
  n = tdm_segment_seal_lz4(buf, 0, true);
  assert_int_equal(n, 12);
  assert_int_equal(tdm_segment_decode(buf, n, true, true, &seg), 12);
  assert_int_equal(seg.uncompressed_len, 0);
}

static void test_encode_errors(void **state)
{
  static uint8_t payload[TDM_SEGMENT_MAX_PAYLOAD + 1];
  uint8_t out[64];
  assert_int_equal(tdm_segment_encode(payload, sizeof(payload), true, false, out, sizeof(out)), TDM_EINVAL);
  assert_int_equal(tdm_segment_encode(payload, sizeof(payload), true, true, out, sizeof(out)), TDM_EINVAL);
  assert_int_equal(tdm_segment_encode(payload, 60, true, false, out, sizeof(out)), TDM_EOVERFLOW);
  assert_int_equal(tdm_segment_encode(payload, 53, true, true, out, sizeof(out)), TDM_EOVERFLOW);
  assert_int_equal(tdm_segment_encode(payload, 54, true, false, out, sizeof(out)), 64);
  assert_int_equal(tdm_segment_encode_bound(100, false), 110);
  assert_int_equal(tdm_segment_encode_bound(100, true), 112);
  assert_int_equal(TDM_SEGMENT_MAX_ENCODED, 131083);
}

/* Builds a segment with arbitrary header bits and a valid CRC24 (and CRC32 over payload). */
static size_t build(uint8_t *out, uint64_t bits, bool lz4, const uint8_t *payload, size_t n)
{
  size_t flen = lz4 ? 5 : 3;
  for (size_t i = 0; i < flen; i++) out[i] = (uint8_t)(bits >> (8 * i));
  uint32_t c24 = tdm_crc24(out, flen);
  for (size_t i = 0; i < 3; i++) out[flen + i] = (uint8_t)(c24 >> (8 * i));
  memcpy(out + flen + 3, payload, n);
  uint32_t c32 = tdm_crc32_cql(payload, n);
  for (size_t i = 0; i < 4; i++) out[flen + 3 + n + i] = (uint8_t)(c32 >> (8 * i));
  return flen + 3 + n + 4;
}

static void test_crc_mismatch(void **state)
{
  uint8_t payload[20], seg_bytes[64], copy[64];
  memset(payload, 'x', sizeof(payload));
  tdm_segment_t seg;
  for (int lz4 = 0; lz4 < 2; lz4++) {
    int n = tdm_segment_encode(payload, sizeof(payload), true, lz4, seg_bytes, sizeof(seg_bytes));
    assert_true(n > 0);
    size_t hlen = lz4 ? 8 : 6;
    for (int i = 0; i < n; i++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(copy, seg_bytes, (size_t)n);
        copy[i] ^= (uint8_t)(1 << bit);
        int rc = tdm_segment_decode(copy, (size_t)n, lz4, true, &seg);
        /* a header flip is caught by CRC24 before the length is trusted; later flips by CRC32 */
        assert_int_equal(rc, TDM_EPROTO_CRC);
        if ((size_t)i >= hlen) { /* payload or trailer: without CRC checks the segment decodes */
          assert_int_equal(tdm_segment_decode(copy, (size_t)n, lz4, false, &seg), n);
        }
      }
    }
  }
}

static void test_malformed_headers(void **state)
{
  uint8_t out[64], payload[8] = "abcdefgh";
  tdm_segment_t seg;
  /* lz4: uncompressed length 5 from zero compressed bytes */
  size_t n = build(out, (uint64_t)5 << 17 | (uint64_t)1 << 34, true, payload, 0);
  assert_int_equal(tdm_segment_decode(out, n, true, true, &seg), TDM_EPROTO_MALFORMED);
  assert_int_equal(tdm_segment_decode(out, n, true, false, &seg), TDM_EPROTO_MALFORMED);
  /* lz4: a block that does not decode to its declared length (CRC fine) */
  n = build(out, 8 | (uint64_t)100 << 17 | (uint64_t)1 << 34, true, payload, 8);
  assert_int_equal(tdm_segment_decode(out, n, true, true, &seg), (int)n);
  assert_true(seg.compressed);
  uint8_t plain[TDM_SEGMENT_MAX_PAYLOAD];
  assert_int_equal(tdm_segment_payload(&seg, plain, sizeof(plain)), TDM_EPROTO_COMPRESS);
  /* lz4: a valid 5-literal block declared as 4 bytes */
  uint8_t block[6] = { 0x50, 'h', 'e', 'l', 'l', 'o' };
  n = build(out, 6 | (uint64_t)4 << 17, true, block, 6);
  assert_int_equal(tdm_segment_decode(out, n, true, true, &seg), (int)n);
  assert_int_equal(tdm_segment_payload(&seg, plain, sizeof(plain)), TDM_EPROTO_COMPRESS);
  n = build(out, 6 | (uint64_t)5 << 17, true, block, 6);
  assert_int_equal(tdm_segment_decode(out, n, true, true, &seg), (int)n);
  assert_int_equal(tdm_segment_payload(&seg, plain, sizeof(plain)), 0);
  assert_memory_equal(plain, "hello", 5);
  /* padding bits above the flag are ignored, as Cassandra does (they are still under the CRC24) */
  n = build(out, 8 | 1 << 17 | (uint64_t)0x3F << 18, false, payload, 8);
  assert_int_equal(tdm_segment_decode(out, n, false, true, &seg), (int)n);
  assert_int_equal(seg.payload_len, 8);
  assert_true(seg.self_contained);
  /* a header whose length runs past the buffer only asks for more */
  n = build(out, 8, false, payload, 8);
  assert_int_equal(tdm_segment_decode(out, n - 1, false, true, &seg), 0);
}

/* ---- segments encoded by the DataStax Python driver ---- */

typedef struct segs_ctx_s {
  bool lz4;           /* segment format */
  int count;          /* segments decoded */
  size_t plain_total; /* sum of uncompressed payload lengths */
  int self_contained; /* how many were self-contained */
  int compressed;     /* how many carried an lz4 block */
  uint8_t first[16];  /* first plain bytes of the first segment */
} segs_ctx_t;

static int consume_segments(const uint8_t *buf, size_t len, void *vctx)
{
  segs_ctx_t *c = vctx;
  size_t used = 0;
  static uint8_t plain[TDM_SEGMENT_MAX_PAYLOAD];
  for (;;) {
    tdm_segment_t seg;
    int rc = tdm_segment_decode(buf + used, len - used, c->lz4, true, &seg);
    if (rc < 0) return rc;
    if (rc == 0) return (int)used;
    assert_int_equal(tdm_segment_payload(&seg, plain, sizeof(plain)), 0);
    if (c->count == 0) memcpy(c->first, plain, TDM_MIN(seg.uncompressed_len, sizeof(c->first)));
    c->count++;
    c->plain_total += seg.uncompressed_len;
    c->self_contained += seg.self_contained;
    c->compressed += seg.compressed;
    used += (size_t)rc;
  }
}

static void check_driver_vector(const char *name, bool lz4, int count, size_t plain_total, int self_contained,
                                int compressed)
{
  char path[256];
  size_t n, left;
  snprintf(path, sizeof(path), "tests/data/vectors/%s", name);
  uint8_t *wire = tdm_test_hex_file(path, &n);
  assert_non_null(wire);
  for (size_t split = 0; split <= n; split += (n > 2000 ? 7 : 1)) {
    segs_ctx_t c = { .lz4 = lz4 };
    assert_int_equal(tdm_test_feed_split(wire, n, split, consume_segments, &c, &left), 0);
    assert_int_equal(left, 0);
    assert_int_equal(c.count, count);
    assert_int_equal(c.plain_total, plain_total);
    assert_int_equal(c.self_contained, self_contained);
    assert_int_equal(c.compressed, compressed);
    /* every segment of these vectors starts with a v5 request envelope header */
    assert_int_equal(c.first[0], 0x05);
  }
  segs_ctx_t c = { .lz4 = lz4 };
  assert_int_equal(tdm_test_feed_step(wire, n, 1, consume_segments, &c, &left), 0);
  assert_int_equal(c.count, count);
  /* decoding with the other format's header size fails the CRC24 */
  segs_ctx_t other = { .lz4 = !lz4 };
  assert_int_equal(tdm_test_feed_step(wire, n, n, consume_segments, &other, &left), TDM_EPROTO_CRC);
  free(wire);
}

static void test_driver_vectors(void **state)
{
  /* OPTIONS (9) + QUERY (9+4+40+6) + PREPARE (9+4+37+4) */
  check_driver_vector("drv-seg-plain.hex", false, 1, 9 + 59 + 54, 1, 0);
  /* ... + QUERY with a 600-byte literal (9 + 4 + 631 + 6) */
  check_driver_vector("drv-seg-lz4.hex", true, 1, 9 + 59 + 54 + 650, 1, 1);
  check_driver_vector("drv-seg-lz4-stored.hex", true, 1, 9, 1, 0);
  /* one 210057-byte envelope over two non-self-contained segments */
  check_driver_vector("drv-seg-lz4-split.hex", true, 2, 210057, 0, 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_crc24_known),
    cmocka_unit_test(test_crc32_known),
    cmocka_unit_test(test_encode_header_layout),
    cmocka_unit_test(test_round_trips),
    cmocka_unit_test(test_seal_in_place),
    cmocka_unit_test(test_encode_errors),
    cmocka_unit_test(test_crc_mismatch),
    cmocka_unit_test(test_malformed_headers),
    cmocka_unit_test(test_driver_vectors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
