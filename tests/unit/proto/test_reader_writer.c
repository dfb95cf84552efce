/* The bounds-checked reader and the sticky-failure writer: each notation type read from hand-made bytes,
 * every truncation of each (MALFORMED with the cursor unmoved), null/unset lengths, collection skipping,
 * string-map lookup, writer round trips, fixed-buffer overflow, range errors, first-error stickiness,
 * reserve/patch, and take/free ownership. */
#include "testlib.h"

#include <tandem/proto/reader.h>
#include <tandem/proto/writer.h>

/* ---- reader ---- */

static void test_integers(void **state)
{
  size_t n;
  uint8_t *p = tdm_test_hex("ab 8001 fffffffe 80000000 0102030405060708 ffffffffffffffff", &n);
  tdm_reader_t r;
  tdm_reader_init(&r, p, n);
  uint8_t b;
  uint16_t s;
  int32_t i;
  uint32_t u;
  int64_t l;
  assert_int_equal(tdm_reader_byte(&r, &b), 0);
  assert_int_equal(b, 0xab);
  assert_int_equal(tdm_reader_short(&r, &s), 0);
  assert_int_equal(s, 0x8001); /* [short] is unsigned */
  assert_int_equal(tdm_reader_int(&r, &i), 0);
  assert_int_equal(i, -2);
  assert_int_equal(tdm_reader_uint(&r, &u), 0);
  assert_int_equal(u, 0x80000000u);
  assert_int_equal(tdm_reader_long(&r, &l), 0);
  assert_true(l == 0x0102030405060708LL);
  assert_int_equal(tdm_reader_long(&r, &l), 0);
  assert_true(l == -1);
  assert_int_equal(tdm_reader_left(&r), 0);
  assert_int_equal(tdm_reader_byte(&r, &b), TDM_EPROTO_MALFORMED);
  assert_int_equal(r.pos, n);
  free(p);

  /* each getter on each too-short buffer fails without moving */
  uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  for (size_t k = 0; k < 8; k++) {
    tdm_reader_init(&r, buf, k);
    if (k < 2) assert_int_equal(tdm_reader_short(&r, &s), TDM_EPROTO_MALFORMED);
    if (k < 4) assert_int_equal(tdm_reader_int(&r, &i), TDM_EPROTO_MALFORMED);
    if (k < 4) assert_int_equal(tdm_reader_uint(&r, &u), TDM_EPROTO_MALFORMED);
    assert_int_equal(tdm_reader_long(&r, &l), TDM_EPROTO_MALFORMED);
    assert_int_equal(r.pos, 0);
  }
}

/* Reads one value of some notation; returns the getter's result. */
typedef int (*read_fn)(tdm_reader_t *r);

static int rd_string(tdm_reader_t *r) { tdm_str_t s; return tdm_reader_string(r, &s); }
static int rd_long_string(tdm_reader_t *r) { tdm_str_t s; return tdm_reader_long_string(r, &s); }
static int rd_bytes(tdm_reader_t *r) { tdm_bytes_t b; return tdm_reader_bytes(r, &b); }
static int rd_value(tdm_reader_t *r) { tdm_bytes_t b; return tdm_reader_value(r, &b); }
static int rd_short_bytes(tdm_reader_t *r) { tdm_bytes_t b; return tdm_reader_short_bytes(r, &b); }
static int rd_uuid(tdm_reader_t *r) { const uint8_t *u; return tdm_reader_uuid(r, &u); }
static int rd_inet(tdm_reader_t *r) { const uint8_t *a; uint8_t al; int32_t port; return tdm_reader_inet(r, &a, &al, &port); }
static int rd_inetaddr(tdm_reader_t *r) { const uint8_t *a; uint8_t al; return tdm_reader_inetaddr(r, &a, &al); }
static int rd_string_map_get(tdm_reader_t *r)
{
  tdm_str_t v;
  bool found;
  return tdm_reader_string_map_get(r, TDM_STR("COMPRESSION"), &v, &found);
}

typedef struct trunc_case_s {
  const char *name; /* notation */
  read_fn fn;       /* getter */
  const char *hex;  /* one well-formed value, nothing after it */
} trunc_case_t;

static const trunc_case_t trunc_cases[] = {
  { "string", rd_string, "0003 616263" },
  { "long string", rd_long_string, "00000002 6869" },
  { "bytes", rd_bytes, "00000003 010203" },
  { "null bytes", rd_bytes, "ffffffff" },
  { "value", rd_value, "00000001 ff" },
  { "unset value", rd_value, "fffffffe" },
  { "short bytes", rd_short_bytes, "0002 abcd" },
  { "uuid", rd_uuid, "00112233445566778899aabbccddeeff" },
  { "inet4", rd_inet, "04 7f000001 00002352" },
  { "inet6", rd_inet, "10 00000000000000000000000000000001 00002352" },
  { "inetaddr", rd_inetaddr, "04 0a000001" },
  { "string list", tdm_reader_skip_string_list, "0002 0001 61 0002 6263" },
  { "string map", tdm_reader_skip_string_map, "0001 0001 6b 0001 76" },
  { "string multimap", tdm_reader_skip_string_multimap, "0001 0001 6b 0002 0001 61 0000" },
  { "bytes map", tdm_reader_skip_bytes_map, "0002 0001 61 00000001 ff 0001 62 ffffffff" },
  { "string map get", rd_string_map_get, "0001 000b 434f4d5052455353494f4e 0003 6c7a34" },
};

static void test_every_truncation(void **state)
{
  for (size_t c = 0; c < TDM_ARRAY_SIZE(trunc_cases); c++) {
    size_t n;
    uint8_t *p = tdm_test_hex(trunc_cases[c].hex, &n);
    tdm_reader_t r;
    tdm_reader_init(&r, p, n);
    if (trunc_cases[c].fn(&r) != 0 || r.pos != n) fail_msg("%s: whole value not read", trunc_cases[c].name);
    for (size_t k = 0; k < n; k++) {
      uint8_t *part = malloc(k ? k : 1); /* exact size: ASan sees over-reads */
      memcpy(part, p, k);
      tdm_reader_init(&r, part, k);
      if (trunc_cases[c].fn(&r) != TDM_EPROTO_MALFORMED || r.pos != 0)
        fail_msg("%s: truncation at %zu not refused in place", trunc_cases[c].name, k);
      free(part);
    }
    free(p);
  }
}

static void test_string_and_bytes_values(void **state)
{
  size_t n;
  uint8_t *p = tdm_test_hex("0003 616263 0000 00000002 6869 fffffffd 00000000 fffffffe fffffffd 0000", &n);
  tdm_reader_t r;
  tdm_reader_init(&r, p, n);
  tdm_str_t s;
  tdm_bytes_t b;
  assert_int_equal(tdm_reader_string(&r, &s), 0);
  assert_true(tdm_str_eq_cstr(s, "abc"));
  assert_ptr_equal(s.ptr, p + 2); /* borrowed, not copied */
  assert_int_equal(tdm_reader_string(&r, &s), 0);
  assert_int_equal(s.len, 0);
  assert_int_equal(tdm_reader_long_string(&r, &s), 0);
  assert_true(tdm_str_eq_cstr(s, "hi"));
  /* [bytes]: any negative length is null, normalised to -1 */
  assert_int_equal(tdm_reader_bytes(&r, &b), 0);
  assert_int_equal(b.len, -1);
  assert_null(b.ptr);
  assert_int_equal(tdm_reader_bytes(&r, &b), 0);
  assert_int_equal(b.len, 0);
  /* [value]: -2 is "not set", below -2 is malformed and leaves the cursor */
  assert_int_equal(tdm_reader_value(&r, &b), 0);
  assert_int_equal(b.len, -2);
  assert_null(b.ptr);
  size_t at = r.pos;
  assert_int_equal(tdm_reader_value(&r, &b), TDM_EPROTO_MALFORMED);
  assert_int_equal(r.pos, at);
  assert_int_equal(tdm_reader_skip(&r, 4), 0);
  assert_int_equal(tdm_reader_short_bytes(&r, &b), 0);
  assert_int_equal(b.len, 0);
  assert_int_equal(tdm_reader_left(&r), 0);
  free(p);

  /* a negative [long string] length is malformed */
  p = tdm_test_hex("ffffffff", &n);
  tdm_reader_init(&r, p, n);
  assert_int_equal(tdm_reader_long_string(&r, &s), TDM_EPROTO_MALFORMED);
  assert_int_equal(r.pos, 0);
  free(p);
  /* a length larger than what is left fails without moving (no overflow on 0x7fffffff) */
  p = tdm_test_hex("7fffffff 00", &n);
  tdm_reader_init(&r, p, n);
  assert_int_equal(tdm_reader_bytes(&r, &b), TDM_EPROTO_MALFORMED);
  assert_int_equal(r.pos, 0);
  free(p);
}

static void test_inet(void **state)
{
  size_t n;
  uint8_t *p = tdm_test_hex("04 7f000001 00002352 05 0102030405 00000001", &n);
  tdm_reader_t r;
  tdm_reader_init(&r, p, n);
  const uint8_t *addr;
  uint8_t al;
  int32_t port;
  assert_int_equal(tdm_reader_inet(&r, &addr, &al, &port), 0);
  assert_int_equal(al, 4);
  assert_memory_equal(addr, "\x7f\x00\x00\x01", 4);
  assert_int_equal(port, 9042);
  size_t at = r.pos;
  assert_int_equal(tdm_reader_inet(&r, &addr, &al, &port), TDM_EPROTO_MALFORMED); /* 5-byte address */
  assert_int_equal(r.pos, at);
  free(p);
}

static void test_collections(void **state)
{
  size_t n;
  /* STARTUP-like map with the key in another case, then a trailing byte */
  uint8_t *p = tdm_test_hex("0002 000b 43514c5f56455253494f4e 0005 332e302e30 000b 636f6d7072657373696f6e 0006 736e61707079 ee",
                            &n);
  tdm_reader_t r;
  tdm_reader_init(&r, p, n);
  tdm_str_t v = { 0 };
  bool found = false;
  assert_int_equal(tdm_reader_string_map_get(&r, TDM_STR("COMPRESSION"), &v, &found), 0);
  assert_true(found); /* keys compare case-insensitively */
  assert_true(tdm_str_eq_cstr(v, "snappy"));
  assert_int_equal(tdm_reader_left(&r), 1); /* the whole map was consumed */
  tdm_reader_init(&r, p, n);
  assert_int_equal(tdm_reader_string_map_get(&r, TDM_STR("DRIVER_NAME"), &v, &found), 0);
  assert_false(found);
  tdm_reader_init(&r, p, n);
  assert_int_equal(tdm_reader_skip_string_map(&r), 0);
  assert_int_equal(tdm_reader_left(&r), 1);
  free(p);

  /* an empty list and an empty map */
  p = tdm_test_hex("0000 0000", &n);
  tdm_reader_init(&r, p, n);
  assert_int_equal(tdm_reader_skip_string_list(&r), 0);
  assert_int_equal(tdm_reader_skip_string_map(&r), 0);
  assert_int_equal(tdm_reader_left(&r), 0);
  free(p);

  /* a map whose count promises more pairs than there are */
  p = tdm_test_hex("0003 0001 61 0001 62", &n);
  tdm_reader_init(&r, p, n);
  found = true;
  assert_int_equal(tdm_reader_string_map_get(&r, TDM_STR("a"), &v, &found), TDM_EPROTO_MALFORMED);
  assert_false(found);
  assert_int_equal(r.pos, 0);
  free(p);
}

/* ---- writer ---- */

static void test_writer_round_trip(void **state)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  static const tdm_str_t keys[] = { TDM_STR("CQL_VERSION"), TDM_STR("COMPRESSION") };
  static const tdm_str_t vals[] = { TDM_STR("3.0.0"), TDM_STR("lz4") };
  static const uint8_t addr[4] = { 10, 0, 0, 1 };
  tdm_writer_byte(&w, 0x7f);
  tdm_writer_short(&w, 0xfffe);
  tdm_writer_int(&w, -3);
  tdm_writer_long(&w, -5);
  tdm_writer_cstring(&w, "hello");
  tdm_writer_long_string(&w, TDM_STR("long"));
  tdm_writer_bytes(&w, "xyz", 3);
  tdm_writer_bytes(&w, NULL, -7);
  tdm_writer_short_bytes(&w, "\x01\x02", 2);
  tdm_writer_string_list(&w, keys, 2);
  tdm_writer_string_map(&w, keys, vals, 2);
  tdm_writer_inet(&w, addr, 4, 9042);
  size_t slot = tdm_writer_reserve_int(&w);
  tdm_writer_raw(&w, "tail", 4);
  tdm_writer_patch_int(&w, slot, 4);
  assert_int_equal(tdm_writer_error(&w), 0);

  tdm_reader_t r;
  tdm_reader_init(&r, w.buf, w.len);
  uint8_t b;
  uint16_t s;
  int32_t i;
  int64_t l;
  tdm_str_t str;
  tdm_bytes_t by;
  assert_int_equal(tdm_reader_byte(&r, &b), 0);
  assert_int_equal(b, 0x7f);
  assert_int_equal(tdm_reader_short(&r, &s), 0);
  assert_int_equal(s, 0xfffe);
  assert_int_equal(tdm_reader_int(&r, &i), 0);
  assert_int_equal(i, -3);
  assert_int_equal(tdm_reader_long(&r, &l), 0);
  assert_true(l == -5);
  assert_int_equal(tdm_reader_string(&r, &str), 0);
  assert_true(tdm_str_eq_cstr(str, "hello"));
  assert_int_equal(tdm_reader_long_string(&r, &str), 0);
  assert_true(tdm_str_eq_cstr(str, "long"));
  assert_int_equal(tdm_reader_bytes(&r, &by), 0);
  assert_int_equal(by.len, 3);
  assert_memory_equal(by.ptr, "xyz", 3);
  assert_int_equal(tdm_reader_bytes(&r, &by), 0);
  assert_int_equal(by.len, -1); /* any negative count is written as null (-1) */
  assert_int_equal(tdm_reader_short_bytes(&r, &by), 0);
  assert_int_equal(by.len, 2);
  assert_int_equal(tdm_reader_skip_string_list(&r), 0);
  tdm_str_t v;
  bool found;
  assert_int_equal(tdm_reader_string_map_get(&r, TDM_STR("compression"), &v, &found), 0);
  assert_true(found);
  assert_true(tdm_str_eq_cstr(v, "lz4"));
  const uint8_t *a;
  uint8_t al;
  int32_t port;
  assert_int_equal(tdm_reader_inet(&r, &a, &al, &port), 0);
  assert_int_equal(port, 9042);
  assert_memory_equal(a, addr, 4);
  assert_int_equal(tdm_reader_int(&r, &i), 0);
  assert_int_equal(i, 4);
  const uint8_t *tail;
  assert_int_equal(tdm_reader_raw(&r, 4, &tail), 0);
  assert_memory_equal(tail, "tail", 4);
  assert_int_equal(tdm_reader_left(&r), 0);

  uint8_t *out = NULL;
  size_t len = 0, expect = w.len;
  assert_int_equal(tdm_writer_take(&w, &out, &len), 0);
  assert_int_equal(len, expect);
  assert_null(w.buf); /* ownership moved */
  assert_int_equal(w.len, 0);
  free(out);
  tdm_writer_free(&w);
}

static void test_writer_exact_bytes(void **state)
{
  uint8_t buf[32];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, buf, sizeof(buf));
  tdm_writer_short(&w, 0x000a);
  tdm_writer_cstring(&w, "ok");
  tdm_writer_int(&w, 0x01020304);
  size_t n;
  uint8_t *want = tdm_test_hex("000a 0002 6f6b 01020304", &n);
  assert_int_equal(w.len, n);
  assert_memory_equal(buf, want, n);
  free(want);
}

static void test_writer_fixed_overflow_sticky(void **state)
{
  uint8_t buf[6];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, buf, sizeof(buf));
  tdm_writer_int(&w, 1);
  tdm_writer_int(&w, 2); /* does not fit */
  assert_int_equal(tdm_writer_error(&w), TDM_EOVERFLOW);
  assert_int_equal(w.len, 4); /* nothing of the failed write */
  tdm_writer_byte(&w, 9); /* would fit, but the writer has failed */
  assert_int_equal(w.len, 4);
  tdm_writer_string(&w, (tdm_str_t){ "x", 70000 }); /* a later, different failure does not replace the first */
  assert_int_equal(tdm_writer_error(&w), TDM_EOVERFLOW);
  uint8_t *out;
  size_t len;
  assert_int_equal(tdm_writer_take(&w, &out, &len), TDM_EOVERFLOW);
}

static void test_writer_range_errors(void **state)
{
  static const uint8_t addr[5] = { 0 };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_writer_string(&w, (tdm_str_t){ "x", 65536 });
  assert_int_equal(tdm_writer_error(&w), TDM_EINVAL);
  assert_int_equal(w.len, 0);
  tdm_writer_free(&w);

  tdm_writer_init(&w);
  tdm_writer_short_bytes(&w, "x", 65536);
  assert_int_equal(tdm_writer_error(&w), TDM_EINVAL);
  tdm_writer_free(&w);

  tdm_writer_init(&w);
  tdm_writer_inet(&w, addr, 5, 1);
  assert_int_equal(tdm_writer_error(&w), TDM_EINVAL);
  uint8_t *out = NULL;
  size_t len;
  assert_int_equal(tdm_writer_take(&w, &out, &len), TDM_EINVAL);
  assert_null(out);

  /* a string of exactly 65535 bytes is fine */
  char *big = malloc(65535);
  memset(big, 'a', 65535);
  tdm_writer_init(&w);
  tdm_writer_string(&w, (tdm_str_t){ big, 65535 });
  assert_int_equal(tdm_writer_error(&w), 0);
  assert_int_equal(w.len, 65537);
  assert_int_equal(w.buf[0], 0xff);
  assert_int_equal(w.buf[1], 0xff);
  tdm_writer_free(&w);
  free(big);
}

static void test_writer_growth(void **state)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  for (int i = 0; i < 100000; i++) tdm_writer_int(&w, i);
  assert_int_equal(tdm_writer_error(&w), 0);
  assert_int_equal(w.len, 400000);
  assert_true(w.cap >= w.len);
  tdm_reader_t r;
  tdm_reader_init(&r, w.buf, w.len);
  for (int i = 0; i < 100000; i++) {
    int32_t v;
    assert_int_equal(tdm_reader_int(&r, &v), 0);
    if (v != i) fail_msg("int %d read back as %d", i, v);
  }
  tdm_writer_free(&w);
  assert_null(w.buf);
  /* the fixed writer cannot be taken (the buffer is not the writer's) */
  uint8_t buf[4];
  tdm_writer_init_fixed(&w, buf, sizeof(buf));
  uint8_t *out;
  size_t len;
  assert_int_equal(tdm_writer_take(&w, &out, &len), TDM_EINVAL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_integers),
    cmocka_unit_test(test_every_truncation),
    cmocka_unit_test(test_string_and_bytes_values),
    cmocka_unit_test(test_inet),
    cmocka_unit_test(test_collections),
    cmocka_unit_test(test_writer_round_trip),
    cmocka_unit_test(test_writer_exact_bytes),
    cmocka_unit_test(test_writer_fixed_overflow_sticky),
    cmocka_unit_test(test_writer_range_errors),
    cmocka_unit_test(test_writer_growth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
