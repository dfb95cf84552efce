/* Body compression: algorithm names, hand-made lz4/snappy bodies, round trips (empty, small, 1 MiB,
 * incompressible), decompression bombs refused before any allocation or write, corrupt blocks and
 * declared-length mismatches. */
#include "testlib.h"

#include <tandem/proto/compress.h>

static void test_parse_and_names(void **state)
{
  tdm_compression_t c = TDM_COMPRESSION_NONE;
  assert_int_equal(tdm_compression_parse(TDM_STR("lz4"), &c), 0);
  assert_int_equal(c, TDM_COMPRESSION_LZ4);
  assert_int_equal(tdm_compression_parse(TDM_STR("SnApPy"), &c), 0);
  assert_int_equal(c, TDM_COMPRESSION_SNAPPY);
  assert_int_equal(tdm_compression_parse(TDM_STR("LZ4"), &c), 0);
  assert_int_equal(c, TDM_COMPRESSION_LZ4);
  c = TDM_COMPRESSION_SNAPPY;
  assert_int_equal(tdm_compression_parse(TDM_STR("none"), &c), TDM_EINVAL);
  assert_int_equal(tdm_compression_parse(TDM_STR(""), &c), TDM_EINVAL);
  assert_int_equal(tdm_compression_parse(TDM_STR("lz4hc"), &c), TDM_EINVAL);
  assert_int_equal(tdm_compression_parse(TDM_STR("deflate"), &c), TDM_EINVAL);
  assert_int_equal(c, TDM_COMPRESSION_SNAPPY); /* untouched on failure */
  assert_string_equal(tdm_compression_name(TDM_COMPRESSION_NONE), "none");
  assert_string_equal(tdm_compression_name(TDM_COMPRESSION_LZ4), "lz4");
  assert_string_equal(tdm_compression_name(TDM_COMPRESSION_SNAPPY), "snappy");
}

/* Decompresses hex and compares with the expected text. */
static void expect_plain(tdm_compression_t c, const char *hex, const char *want, size_t want_len)
{
  size_t n, out_len = 999, declared = 999;
  uint8_t *in = tdm_test_hex(hex, &n);
  uint8_t *out = NULL;
  assert_int_equal(tdm_body_uncompressed_length(c, in, n, &declared), 0);
  assert_int_equal(declared, want_len);
  assert_int_equal(tdm_body_decompress(c, in, n, 1024, &out, &out_len), 0);
  assert_non_null(out);
  assert_int_equal(out_len, want_len);
  assert_memory_equal(out, want, want_len);
  free(out);
  free(in);
}

static void test_known_bodies(void **state)
{
  /* lz4: BE length 5, then a block of one sequence: token 0x50 (5 literals), "hello" */
  expect_plain(TDM_COMPRESSION_LZ4, "00000005 50 68656c6c6f", "hello", 5);
  /* lz4 with a match: 3 literals "abc" + a 9-byte match at offset 3 (token 0x35: 3 << 4 | 9 - 4), then
   * the 5 literals every block ends with: "abcabcabcabc" + "abcab" */
  expect_plain(TDM_COMPRESSION_LZ4, "00000011 35 616263 0300 50 6162636162", "abcabcabcabcabcab", 17);
  /* snappy: varint 5, literal tag ((5-1) << 2), "hello" */
  expect_plain(TDM_COMPRESSION_SNAPPY, "05 10 68656c6c6f", "hello", 5);
  /* empty bodies: lz4 as a bare zero prefix or with an empty block; snappy as a zero varint */
  expect_plain(TDM_COMPRESSION_LZ4, "00000000", "", 0);
  expect_plain(TDM_COMPRESSION_LZ4, "00000000 00", "", 0);
  expect_plain(TDM_COMPRESSION_SNAPPY, "00", "", 0);
  expect_plain(TDM_COMPRESSION_NONE, "616263", "abc", 3);
}

static void round_trip(tdm_compression_t c, const uint8_t *in, size_t n)
{
  uint8_t *z = NULL, *back = NULL;
  size_t zn = 0, bn = 0, declared = 0;
  assert_int_equal(tdm_body_compress(c, in, n, &z, &zn), 0);
  assert_non_null(z);
  assert_int_equal(tdm_body_uncompressed_length(c, z, zn, &declared), 0);
  assert_int_equal(declared, n);
  assert_int_equal(tdm_body_decompress(c, z, zn, n, &back, &bn), 0); /* limit == size is accepted */
  assert_int_equal(bn, n);
  if (n) assert_memory_equal(back, in, n);
  free(back);
  if (n) {
    /* one byte under the size is a bomb */
    back = NULL;
    assert_int_equal(tdm_body_decompress(c, z, zn, n - 1, &back, &bn), TDM_EPROTO_TOO_LARGE);
    assert_null(back);
  }
  if (c == TDM_COMPRESSION_LZ4) { /* the v4 lz4 body starts with the big-endian length */
    assert_int_equal(z[0], (uint8_t)(n >> 24));
    assert_int_equal(z[3], (uint8_t)n);
  }
  free(z);
}

static void test_round_trips(void **state)
{
  static const tdm_compression_t algs[] = { TDM_COMPRESSION_NONE, TDM_COMPRESSION_LZ4, TDM_COMPRESSION_SNAPPY };
  const size_t big = 1u << 20;
  uint8_t *text = malloc(big), *noise = malloc(big);
  for (size_t i = 0; i < big; i++) text[i] = (uint8_t)"INSERT INTO ks.t (k, v) VALUES (?, ?);"[i % 38];
  tdm_test_fill_random(noise, big, 42);
  for (size_t a = 0; a < TDM_ARRAY_SIZE(algs); a++) {
    round_trip(algs[a], text, 0);
    round_trip(algs[a], text, 1);
    round_trip(algs[a], text, 100);
    round_trip(algs[a], text, big);
    round_trip(algs[a], noise, big);
  }
  /* compressible input really shrinks */
  uint8_t *z = NULL;
  size_t zn = 0;
  assert_int_equal(tdm_body_compress(TDM_COMPRESSION_LZ4, text, big, &z, &zn), 0);
  assert_true(zn < big / 20);
  free(z);
  assert_int_equal(tdm_body_compress(TDM_COMPRESSION_SNAPPY, text, big, &z, &zn), 0);
  assert_true(zn < big / 10);
  free(z);
  free(text);
  free(noise);
}

static void test_bomb_refused(void **state)
{
  size_t n, out_len = 7;
  uint8_t *out = (uint8_t *)"sentinel";
  /* lz4 declaring 2 GiB in a 9-byte body */
  uint8_t *in = tdm_test_hex("80000000 50 68656c6c6f", &n);
  assert_int_equal(tdm_body_decompress(TDM_COMPRESSION_LZ4, in, n, 1u << 20, &out, &out_len), TDM_EPROTO_TOO_LARGE);
  assert_string_equal((char *)out, "sentinel"); /* nothing allocated or handed out */
  assert_int_equal(out_len, 7);
  free(in);
  /* declared 0xFFFFFFFF with no practical limit is still refused: it cannot be an int for LZ4 */
  in = tdm_test_hex("ffffffff 50 68656c6c6f", &n);
  assert_int_equal(tdm_body_decompress(TDM_COMPRESSION_LZ4, in, n, SIZE_MAX, &out, &out_len), TDM_EPROTO_COMPRESS);
  assert_string_equal((char *)out, "sentinel");
  free(in);
  /* snappy varint declaring 0x0FFFFFFF */
  in = tdm_test_hex("ffffff7f 10 68656c6c6f", &n);
  assert_int_equal(tdm_body_decompress(TDM_COMPRESSION_SNAPPY, in, n, 1u << 20, &out, &out_len), TDM_EPROTO_TOO_LARGE);
  assert_string_equal((char *)out, "sentinel");
  free(in);

  /* into a caller's buffer: refused before a byte is written */
  uint8_t buf[4] = { 0xAA, 0xAA, 0xAA, 0xAA };
  in = tdm_test_hex("00000005 50 68656c6c6f", &n);
  assert_int_equal(tdm_body_decompress_to(TDM_COMPRESSION_LZ4, in, n, buf, sizeof(buf), &out_len), TDM_EPROTO_TOO_LARGE);
  assert_memory_equal(buf, "\xAA\xAA\xAA\xAA", 4);
  free(in);
  in = tdm_test_hex("05 10 68656c6c6f", &n);
  assert_int_equal(tdm_body_decompress_to(TDM_COMPRESSION_SNAPPY, in, n, buf, sizeof(buf), &out_len), TDM_EPROTO_TOO_LARGE);
  assert_memory_equal(buf, "\xAA\xAA\xAA\xAA", 4);
  free(in);
  in = tdm_test_hex("0102030405", &n);
  assert_int_equal(tdm_body_decompress_to(TDM_COMPRESSION_NONE, in, n, buf, sizeof(buf), &out_len), TDM_EPROTO_TOO_LARGE);
  assert_memory_equal(buf, "\xAA\xAA\xAA\xAA", 4);
  free(in);
}

static void expect_corrupt(tdm_compression_t c, const char *hex)
{
  size_t n, out_len = 0;
  uint8_t *in = tdm_test_hex(hex, &n);
  uint8_t *out = NULL;
  assert_int_equal(tdm_body_decompress(c, in, n, 1u << 20, &out, &out_len), TDM_EPROTO_COMPRESS);
  assert_null(out);
  free(in);
}

static void test_corrupt_and_mismatch(void **state)
{
  /* lz4: shorter than its length prefix */
  expect_corrupt(TDM_COMPRESSION_LZ4, "");
  expect_corrupt(TDM_COMPRESSION_LZ4, "000005");
  size_t declared;
  uint8_t three[3] = { 0, 0, 5 };
  assert_int_equal(tdm_body_uncompressed_length(TDM_COMPRESSION_LZ4, three, 3, &declared), TDM_EPROTO_COMPRESS);
  /* lz4: block says 5 literals, only 3 present */
  expect_corrupt(TDM_COMPRESSION_LZ4, "00000005 50 68656c");
  /* lz4: match offset before the start of the output */
  expect_corrupt(TDM_COMPRESSION_LZ4, "00000010 14 61 0500 50 6161616161");
  /* lz4: declared 9, block gives 5 (mismatch); declared 3, block gives 5 (would overflow) */
  expect_corrupt(TDM_COMPRESSION_LZ4, "00000009 50 68656c6c6f");
  expect_corrupt(TDM_COMPRESSION_LZ4, "00000003 50 68656c6c6f");
  /* lz4: declared 0 with a block that is not empty */
  expect_corrupt(TDM_COMPRESSION_LZ4, "00000000 50 68656c6c6f");
  /* snappy: declared 9 (varint), literal of 5 */
  expect_corrupt(TDM_COMPRESSION_SNAPPY, "09 10 68656c6c6f");
  /* snappy: declared 3, literal of 5 */
  expect_corrupt(TDM_COMPRESSION_SNAPPY, "03 10 68656c6c6f");
  /* snappy: truncated literal, bad varint, copy before the start */
  expect_corrupt(TDM_COMPRESSION_SNAPPY, "05 10 6865");
  expect_corrupt(TDM_COMPRESSION_SNAPPY, "ffffffffff");
  expect_corrupt(TDM_COMPRESSION_SNAPPY, "08 01 05");
  expect_corrupt(TDM_COMPRESSION_SNAPPY, "");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_and_names),
    cmocka_unit_test(test_known_bodies),
    cmocka_unit_test(test_round_trips),
    cmocka_unit_test(test_bomb_refused),
    cmocka_unit_test(test_corrupt_and_mismatch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
