/* Zero-copy v5 output helpers: the CRC24 table equals the bitwise definition; the CRC32 equals zlib's
 * at every length and, computed in pieces, the one-shot value at every split; the plain segment header
 * equals what tdm_segment_seal_plain writes for lengths 0..131071; lz4 segments built from a prefix +
 * a body decode to exactly those bytes (literal runs around the 15 and 255 length boundaries,
 * incompressible and tiny inputs stored, a reused compressor state); runs of envelopes emitted by
 * reference are byte-identical to the envelope writer's output (shared, full and split segments) and
 * read back intact; lz4 runs (small envelopes gathered per segment, large ones alone or split) read
 * back intact from buffers of exactly the announced sizes. */
#include "testlib.h"

#include <zlib.h>
#include <tandem/proto/envelope.h>
#include <tandem/proto/segment.h>

#define MAX TDM_SEGMENT_MAX_PAYLOAD

/* The table-driven CRC-32 (short inputs) and zlib's (long ones) agree with zlib at every length and
 * alignment, and the prime gives the documented start value. */
static void test_crc32_against_zlib(void **state)
{
  static const uint8_t prime[4] = { 0xFA, 0x2D, 0x55, 0xCA };
  static uint8_t p[3000];
  tdm_test_fill_random(p, sizeof(p), 11);
  assert_int_equal(TDM_SEGMENT_CRC32_INIT, (uint32_t)crc32(0L, prime, 4));
  for (size_t n = 0; n <= 1100; n++) {
    size_t at = n % 13; /* unaligned starts too */
    uint32_t z = (uint32_t)crc32_z(TDM_SEGMENT_CRC32_INIT, p + at, n);
    assert_int_equal(tdm_crc32_cql(p + at, n), z);
    assert_int_equal(tdm_crc32_cql_update(0x12345678u, p + at, n), (uint32_t)crc32_z(0x12345678u, p + at, n));
  }
  assert_int_equal(tdm_crc32_cql(p, sizeof(p)), (uint32_t)crc32_z(TDM_SEGMENT_CRC32_INIT, p, sizeof(p)));
}

/* The table-driven CRC24 against its bitwise definition (init 0x875060, poly 0x1974F0B). */
static void test_crc24_table(void **state)
{
  uint8_t p[64];
  for (uint32_t seed = 0; seed < 2000; seed++) {
    size_t n = seed % 9;
    tdm_test_fill_random(p, n, seed);
    uint32_t want = 0x875060u;
    for (size_t i = 0; i < n; i++) {
      want ^= (uint32_t)p[i] << 16;
      for (int bit = 0; bit < 8; bit++) {
        want <<= 1;
        if (want & 0x1000000u) want ^= 0x1974F0Bu;
      }
    }
    assert_int_equal(tdm_crc24(p, n), want & 0xFFFFFFu);
  }
}

static void test_crc32_pieces(void **state)
{
  static uint8_t p[5000];
  tdm_test_fill_random(p, sizeof(p), 7);
  assert_int_equal(TDM_SEGMENT_CRC32_INIT, tdm_crc32_cql(NULL, 0));
  assert_int_equal(tdm_crc32_cql_update(TDM_SEGMENT_CRC32_INIT, NULL, 0), tdm_crc32_cql(NULL, 0));
  static const size_t lens[] = { 1, 2, 9, 15, 64, 1000, sizeof(p) };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(lens); i++) {
    size_t n = lens[i];
    uint32_t whole = tdm_crc32_cql(p, n);
    for (size_t a = 0; a <= n; a += (n > 100 ? 37 : 1)) {
      /* two pieces, and three with an empty one in the middle */
      uint32_t c = tdm_crc32_cql_update(TDM_SEGMENT_CRC32_INIT, p, a);
      assert_int_equal(tdm_crc32_cql_update(c, p + a, n - a), whole);
      c = tdm_crc32_cql_update(tdm_crc32_cql_update(c, p + a, 0), p + a, n - a);
      assert_int_equal(c, whole);
    }
  }
  /* byte at a time */
  uint32_t c = TDM_SEGMENT_CRC32_INIT;
  for (size_t i = 0; i < 300; i++) c = tdm_crc32_cql_update(c, p + i, 1);
  assert_int_equal(c, tdm_crc32_cql(p, 300));
}

static void test_plain_header(void **state)
{
  static uint8_t seg[TDM_SEGMENT_HEADER_PLAIN + MAX + TDM_SEGMENT_CRC_BYTES];
  static const size_t lens[] = { 0, 1, 2, 9, 255, 256, 65535, 65536, 65537, MAX - 1, MAX };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(lens); i++) {
    for (int sc = 0; sc < 2; sc++) {
      size_t n = lens[i];
      tdm_test_fill_random(seg + TDM_SEGMENT_HEADER_PLAIN, n, (uint32_t)(n + 1));
      size_t size = tdm_segment_seal_plain(seg, n, sc);
      uint8_t hdr[TDM_SEGMENT_HEADER_PLAIN], tail[TDM_SEGMENT_CRC_BYTES];
      tdm_segment_plain_header(hdr, n, sc);
      assert_memory_equal(hdr, seg, TDM_SEGMENT_HEADER_PLAIN);
      /* the trailer from pieces (header-like prefix + rest) equals the sealed one */
      size_t a = n / 3;
      uint32_t c = tdm_crc32_cql_update(TDM_SEGMENT_CRC32_INIT, seg + TDM_SEGMENT_HEADER_PLAIN, a);
      c = tdm_crc32_cql_update(c, seg + TDM_SEGMENT_HEADER_PLAIN + a, n - a);
      tdm_segment_put_crc32(tail, c);
      assert_memory_equal(tail, seg + size - TDM_SEGMENT_CRC_BYTES, TDM_SEGMENT_CRC_BYTES);
    }
  }
  /* every length: the header is a pure function of (length, flag) and equals the sealed one */
  uint8_t small[TDM_SEGMENT_HEADER_PLAIN + 600 + 4] = { 0 };
  for (size_t n = 0; n <= 600; n++) {
    uint8_t hdr[TDM_SEGMENT_HEADER_PLAIN];
    tdm_segment_seal_plain(small, n, n & 1);
    tdm_segment_plain_header(hdr, n, n & 1);
    assert_memory_equal(hdr, small, TDM_SEGMENT_HEADER_PLAIN);
  }
}

/* Builds an lz4 segment from prefix + src, decodes it (CRCs checked) and compares the payload. */
static bool lz4_case(tdm_segment_lz4_t *z, const uint8_t *prefix, size_t plen, const uint8_t *src, size_t n, bool sc)
{
  size_t room = TDM_SEGMENT_LZ4_ROOM(plen + n);
  uint8_t *out = malloc(room); /* exact size: ASan catches any byte written past the room */
  uint8_t *back = malloc(plen + n + 1);
  size_t start = 99;
  size_t size = tdm_segment_build_lz4(z, prefix, plen, src, n, sc, out, &start);
  assert_true(start <= 1);
  assert_true(start + size <= room);
  tdm_segment_t seg;
  assert_int_equal(tdm_segment_decode(out + start, size, true, true, &seg), (int)size);
  assert_int_equal(seg.self_contained, sc);
  assert_int_equal(seg.uncompressed_len, plen + n);
  if (seg.compressed) assert_true(seg.payload_len < plen + n);
  assert_int_equal(tdm_segment_payload(&seg, back, plen + n + 1), 0);
  if (plen) assert_memory_equal(back, prefix, plen);
  if (n) assert_memory_equal(back + plen, src, n);
  free(out);
  free(back);
  return seg.compressed;
}

static void test_lz4_from_pieces(void **state)
{
  static uint8_t src[MAX];
  uint8_t prefix[TDM_SEGMENT_LZ4_PREFIX_MAX];
  for (size_t i = 0; i < sizeof(prefix); i++) prefix[i] = (uint8_t)(0xA0 + i);
  tdm_segment_lz4_t *z = tdm_segment_lz4_new();
  assert_non_null(z);
  static const size_t plens[] = { 0, 1, 9, TDM_SEGMENT_LZ4_PREFIX_MAX };
  static const size_t lens[] = { 0, 1, 12, 13, 14, 40, 100, 1024, 4096, 65536, 200000 };
  for (size_t pi = 0; pi < TDM_ARRAY_SIZE(plens); pi++) {
    size_t plen = plens[pi];
    for (size_t li = 0; li < TDM_ARRAY_SIZE(lens); li++) {
      size_t n = TDM_MIN(lens[li], MAX - plen);
      for (int kind = 0; kind < 3; kind++) {
        if (kind == 0) tdm_test_fill_random(src, n, (uint32_t)(n + plen));
        if (kind == 1) memset(src, 'x', n);
        if (kind == 2)
          for (size_t i = 0; i < n; i++) src[i] = (uint8_t)("INSERT INTO ks.t (k, v) VALUES "[i % 31]);
        for (int zi = 0; zi < 2; zi++) {
          bool compressed = lz4_case(zi ? z : NULL, prefix, plen, src, n, (li + kind) & 1);
          if (kind == 0 || n < 13) assert_false(compressed); /* noise and tiny inputs go stored */
          if (kind == 1 && n >= 40) assert_true(compressed);
        }
      }
    }
  }
  /* The first literal run of the block around the length-field boundaries (15, 15 + 255, ...): noise
   * of r bytes, then a long repeat, so the block opens with about r literals; the prefix moves the
   * run across the boundary. */
  for (size_t r = 0; r < 560; r++) {
    size_t n = r + 300;
    tdm_test_fill_random(src, r, (uint32_t)r);
    memset(src + r, 'y', 300);
    assert_true(lz4_case(z, prefix, 9, src, n, true));
    assert_true(lz4_case(z, prefix, TDM_SEGMENT_LZ4_PREFIX_MAX, src, n, false));
    assert_true(lz4_case(z, prefix, 1, src, n, true));
  }
  /* the largest payload, compressible, with the envelope-sized prefix */
  memset(src, 'q', MAX);
  assert_true(lz4_case(z, prefix, 9, src, MAX - 9, true));
  assert_true(lz4_case(z, NULL, 0, src, MAX, false));
  tdm_segment_lz4_free(z);
}

/* A run of envelopes for tdm_envelope_emit, and the wire it produces. */
typedef struct run_s {
  size_t n;                /* envelopes */
  uint8_t hdr[16][9];      /* their headers */
  uint8_t *body[16];       /* their bodies (NULL when empty) */
  size_t len[16];          /* body lengths */
  uint8_t *wire;           /* pieces laid end to end */
  size_t wire_len;         /* bytes in wire */
  size_t pieces;           /* put calls */
  int fail_at;             /* put returns TDM_ENOMEM on this call (-1: never) */
} run_t;

static void run_get(void *arg, size_t i, const uint8_t **hdr, const uint8_t **body, size_t *len)
{
  run_t *r = arg;
  assert_true(i < r->n);
  *hdr = r->hdr[i];
  *body = r->body[i];
  *len = r->len[i];
}

static int run_put(void *arg, const uint8_t *inl, size_t inl_len, size_t i, size_t off, size_t len)
{
  run_t *r = arg;
  if ((int)r->pieces++ == r->fail_at) return TDM_ENOMEM;
  assert_true(inl_len <= TDM_ENVELOPE_PIECE_INLINE);
  assert_true(inl_len + len > 0);
  if (len) {
    assert_true(i < r->n && off + len <= r->len[i]);
  }
  r->wire = realloc(r->wire, r->wire_len + inl_len + len);
  memcpy(r->wire + r->wire_len, inl, inl_len);
  if (len) memcpy(r->wire + r->wire_len + inl_len, r->body[i] + off, len);
  r->wire_len += inl_len + len;
  return 0;
}

static void run_add(run_t *r, size_t len, int16_t stream)
{
  size_t i = r->n++;
  tdm_frame_header_t h = { .version = TDM_PROTO_V5, .flags = (uint8_t)(stream & 1 ? TDM_FLAG_COMPRESSED | 0x02 : 0),
                           .stream = stream, .opcode = TDM_OP_QUERY, .length = (uint32_t)len };
  assert_int_equal(tdm_frame_header_encode(&h, r->hdr[i]), 9);
  r->len[i] = len;
  r->body[i] = len ? malloc(len) : NULL;
  for (size_t k = 0; k < len; k++) r->body[i][k] = (uint8_t)((k * 7 + (size_t)stream) % 251);
  if (len > 100) tdm_test_fill_random(r->body[i] + len / 2, len / 4, (uint32_t)stream); /* partly noise */
}

static void run_free(run_t *r)
{
  for (size_t i = 0; i < r->n; i++) free(r->body[i]);
  free(r->wire);
  memset(r, 0, sizeof(*r));
}

/* Reads r->wire back with the envelope reader and checks every envelope (header and body) against r. */
static void read_back(const run_t *r, bool lz4)
{
  tdm_envelope_reader_t rd;
  memset(&rd, 0, sizeof(rd));
  rd.lz4 = lz4;
  size_t pos = 0, got = 0;
  while (pos < r->wire_len) {
    size_t used = 0;
    tdm_envelope_t env;
    int rc = tdm_envelope_read(&rd, r->wire + pos, r->wire_len - pos, &used, &env);
    assert_true(rc >= 0);
    pos += used;
    if (rc == 1) {
      assert_true(got < r->n);
      assert_int_equal(env.len, 9 + r->len[got]);
      assert_int_equal(env.data[1], r->hdr[got][1] & ~TDM_FLAG_COMPRESSED);
      assert_memory_equal(env.data + 2, r->hdr[got] + 2, 7);
      if (r->len[got]) assert_memory_equal(env.body, r->body[got], r->len[got]);
      got++;
    } else if (used == 0) {
      break;
    }
  }
  assert_int_equal(pos, r->wire_len);
  assert_int_equal(got, r->n);
  tdm_envelope_reader_free(&rd);
}

/* The run's wire equals the envelope writer's bytes for the same envelopes, and reads back intact. */
static void check_run(run_t *r)
{
  r->fail_at = -1;
  assert_int_equal(tdm_envelope_emit(r->n, run_get, run_put, r), 0);
  tdm_envelope_writer_t w;
  memset(&w, 0, sizeof(w));
  for (size_t i = 0; i < r->n; i++) assert_int_equal(tdm_envelope_writer_add(&w, r->hdr[i], r->body[i], r->len[i]), 0);
  uint8_t *ref = NULL;
  size_t ref_len = 0;
  assert_int_equal(tdm_envelope_writer_take(&w, &ref, &ref_len), 0);
  assert_int_equal(r->wire_len, ref_len);
  if (ref_len) assert_memory_equal(r->wire, ref, ref_len);
  free(ref);

  read_back(r, false);
}

static void test_emit_single(void **state)
{
  static const size_t lens[] = { 0, 1, 1024, MAX - 10, MAX - 9, MAX - 8, MAX, 200 * 1024, 2 * MAX - 9, 2 * MAX + 5 };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(lens); i++) {
    run_t r;
    memset(&r, 0, sizeof(r));
    run_add(&r, lens[i], (int16_t)i);
    check_run(&r);
    /* one piece per segment plus the last trailer */
    assert_int_equal(r.pieces, tdm_envelope_segments(lens[i]) + 1);
    assert_int_equal(tdm_envelope_segments(lens[i]), (9 + lens[i] + MAX - 1) / MAX);
    run_free(&r);
  }
}

static void test_emit_runs(void **state)
{
  /* small envelopes share segments; a segment closes where the next would not fit; large ones go alone */
  static const size_t runs[][8] = {
    { 4, 0, 100, 13, 1, 0, 0, 0 },                      /* one shared segment */
    { 70000, 70000, 4, 0, 0, 0, 0, 0 },                 /* the second does not fit the first's segment */
    { 4, 200 * 1024, 4, 0, 0, 0, 0, 0 },                /* split one between two shared ones */
    { MAX - 9, 0, 5, MAX - 18, 0, 0, 0, 0 },            /* exactly full segments */
    { 1, 2, 3, 2 * MAX, 300000, 7, 1024, 65536 },
  };
  static const size_t counts[] = { 5, 3, 3, 4, 8 };
  for (size_t k = 0; k < TDM_ARRAY_SIZE(runs); k++) {
    run_t r;
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < counts[k]; i++) run_add(&r, runs[k][i], (int16_t)(i + 10 * k));
    check_run(&r);
    run_free(&r);
  }
  /* an empty run writes nothing */
  run_t r;
  memset(&r, 0, sizeof(r));
  check_run(&r);
  assert_int_equal(r.pieces, 0);
  /* put's error stops the run at once and is returned */
  for (int at = 0; at < 4; at++) {
    memset(&r, 0, sizeof(r));
    run_add(&r, 10, 1);
    run_add(&r, 200 * 1024, 2);
    r.fail_at = at;
    assert_int_equal(tdm_envelope_emit(r.n, run_get, run_put, &r), TDM_ENOMEM);
    assert_int_equal(r.pieces, (size_t)at + 1);
    run_free(&r);
  }
}

/* lz4 runs: each buffer is allocated at exactly the size asked (ASan catches a byte past it), each
 * segment lies inside its buffer; the wire reads back to the same envelopes. */
typedef struct lz4_out_s {
  run_t *r;          /* the run (wire collects the segments) */
  uint8_t *buf;      /* buffer handed out last */
  size_t buf_len;    /* its size */
  size_t segments;   /* segments queued */
  size_t gathered;   /* of which compressed or stored from a gathered payload (start 0 or past it) */
} lz4_out_t;

static void lz4_get(void *arg, size_t i, const uint8_t **hdr, const uint8_t **body, size_t *len)
{
  run_get(((lz4_out_t *)arg)->r, i, hdr, body, len);
}

static uint8_t *lz4_buf(void *arg, size_t n)
{
  lz4_out_t *o = arg;
  assert_null(o->buf);
  o->buf = malloc(n);
  o->buf_len = n;
  return o->buf;
}

static int lz4_seg(void *arg, size_t start, size_t size)
{
  lz4_out_t *o = arg;
  assert_true(start + size <= o->buf_len);
  run_t *r = o->r;
  r->wire = realloc(r->wire, r->wire_len + size);
  memcpy(r->wire + r->wire_len, o->buf + start, size);
  r->wire_len += size;
  free(o->buf);
  o->buf = NULL;
  o->segments++;
  return 0;
}

static void check_lz4_run(run_t *r, tdm_segment_lz4_t *z, size_t want_segments)
{
  lz4_out_t o = { .r = r };
  assert_int_equal(tdm_envelope_emit_lz4(z, r->n, lz4_get, lz4_buf, lz4_seg, &o), 0);
  assert_null(o.buf);
  if (want_segments) assert_int_equal(o.segments, want_segments);
  read_back(r, true);
}

static void test_emit_lz4(void **state)
{
  static const size_t lens[] = { 0, 1, 1024, 2039, 2040, MAX - 10, MAX - 9, MAX - 8, MAX, 200 * 1024, 2 * MAX + 5 };
  tdm_segment_lz4_t *z = tdm_segment_lz4_new();
  /* one envelope: one segment, or its split segments */
  for (size_t i = 0; i < TDM_ARRAY_SIZE(lens); i++) {
    for (int zi = 0; zi < 2; zi++) {
      run_t r;
      memset(&r, 0, sizeof(r));
      run_add(&r, lens[i], 3);
      check_lz4_run(&r, zi ? z : NULL, tdm_envelope_segments(lens[i]));
      run_free(&r);
    }
  }
  /* small ones share a segment up to the run limit; a large one ends the run and goes alone */
  static const size_t runs[][8] = {
    { 4, 100, 100, 100, 13, 0, 0, 0 },          /* 1 segment */
    { 2000, 2000, 2000, 2000, 2000, 0, 0, 0 },  /* 8000-byte runs: 3 + 2 envelopes -> 2 segments */
    { 4, 5000, 4, 200 * 1024, 4, 0, 0, 0 },     /* 1 + 1 + 1 + 2 + 1 */
    { 1, 2, 3, 2039, 2040, 7, 1024, 65536 },    /* 2039 + 9 = 2048 gathers; 2040 does not */
  };
  static const size_t counts[] = { 5, 5, 5, 8 };
  static const size_t segments[] = { 1, 2, 6, 4 };
  for (size_t k = 0; k < TDM_ARRAY_SIZE(runs); k++) {
    run_t r;
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < counts[k]; i++) run_add(&r, runs[k][i], (int16_t)(i + 10 * k));
    check_lz4_run(&r, z, segments[k]);
    run_free(&r);
  }
  tdm_segment_lz4_free(z);
}

/* A gathered payload: compressed segments start right after it, stored ones at 0; both decode. */
static void test_seal_gathered(void **state)
{
  static const size_t lens[] = { 0, 1, 12, 13, 100, 8000, MAX };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(lens); i++) {
    for (int noise = 0; noise < 2; noise++) {
      size_t n = lens[i], room = TDM_SEGMENT_LZ4_GATHER_ROOM(n), start;
      uint8_t *out = malloc(room), *want = malloc(n + 1), *back = malloc(n + 1);
      if (noise)
        tdm_test_fill_random(want, n, (uint32_t)n);
      else
        memset(want, 'g', n);
      if (n) memcpy(out + TDM_SEGMENT_HEADER_LZ4, want, n);
      size_t size = tdm_segment_seal_lz4_gathered(NULL, out, n, true, &start);
      assert_true(start + size <= room);
      tdm_segment_t seg;
      assert_int_equal(tdm_segment_decode(out + start, size, true, true, &seg), (int)size);
      assert_int_equal(seg.compressed, !noise && n >= 13);
      assert_int_equal(start, seg.compressed ? TDM_SEGMENT_HEADER_LZ4 + n : 0);
      assert_int_equal(tdm_segment_payload(&seg, back, n + 1), 0);
      if (n) assert_memory_equal(back, want, n);
      free(out);
      free(want);
      free(back);
    }
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_crc24_table),
    cmocka_unit_test(test_crc32_against_zlib),
    cmocka_unit_test(test_crc32_pieces),
    cmocka_unit_test(test_plain_header),
    cmocka_unit_test(test_lz4_from_pieces),
    cmocka_unit_test(test_emit_single),
    cmocka_unit_test(test_emit_runs),
    cmocka_unit_test(test_emit_lz4),
    cmocka_unit_test(test_seal_gathered),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
