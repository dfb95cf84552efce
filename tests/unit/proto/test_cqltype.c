/* Unit tests for CQL [option] types: validation (unknown ids, truncation at every point, the depth
 * limit, counts beyond the body), walking nested types, formatting, and CQL type text parsed into
 * options. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <tandem/proto/cqltype.h>

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
  size_t n = 0;
  int hi = -1;
  for (const char *p = hex; *p; p++) {
    int v;
    if (*p >= '0' && *p <= '9') v = *p - '0';
    else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
    else continue;
    if (hi < 0) {
      hi = v;
    } else {
      assert_true(n < cap);
      out[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  return n;
}

static void assert_formats(const tdm_cqltype_t *t, const char *want)
{
  char buf[256];
  int n = tdm_cqltype_format(t, buf, sizeof(buf));
  assert_int_equal(n, (int)strlen(want));
  assert_string_equal(buf, want);
}

/* Parses text, checks the bytes and the formatted form. */
static void check_parse(const char *text, const char *hex, const char *formatted)
{
  uint8_t want[128], buf[128];
  size_t n = unhex(hex, want, sizeof(want));
  tdm_cqltype_t t;
  assert_int_equal(tdm_cqltype_parse(tdm_str_from(text), buf, sizeof(buf), &t), 0);
  assert_int_equal(t.len, n);
  assert_memory_equal(t.raw, want, n);
  assert_formats(&t, formatted);
}

static void test_parse_and_format(void **state)
{
  check_parse("int", "0009", "int");
  check_parse("TEXT", "000d", "text");
  check_parse("varchar", "000d", "text");
  check_parse(" set < text > ", "0022 000d", "set<text>");
  check_parse("map<text,text>", "0021 000d 000d", "map<text, text>");
  check_parse("list<frozen<map<uuid, list<inet>>>>", "0020 0021 000c 0020 0010", "list<map<uuid, list<inet>>>");
  check_parse("tuple<int, bigint, timeuuid>", "0031 0003 0009 0002 000f", "tuple<int, bigint, timeuuid>");
  check_parse("duration", "0015", "duration");
  check_parse("'a.B'", "0000 0003 612e42", "'a.B'");
  static const char *const bad[] = { "", "nope", "map<text>", "list<int", "list<int>>", "tuple<>", "''",
                                     "frozen<>", "int int", "my_udt", "set<'x'" };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(bad); i++) {
    uint8_t buf[64];
    tdm_cqltype_t t;
    if (tdm_cqltype_parse(tdm_str_from(bad[i]), buf, sizeof(buf), &t) != TDM_EINVAL) fail_msg("accepted '%s'", bad[i]);
  }
  /* A buffer that is too small. */
  uint8_t tiny[3];
  tdm_cqltype_t t;
  assert_int_equal(tdm_cqltype_parse(TDM_STR("map<int,int>"), tiny, sizeof(tiny), &t), TDM_EOVERFLOW);
}

static void test_native_and_names(void **state)
{
  tdm_cqltype_t t;
  assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_TIMEUUID, &t), 0);
  assert_int_equal(t.len, 2);
  assert_int_equal(t.id, TDM_CQLTYPE_TIMEUUID);
  assert_formats(&t, "timeuuid");
  assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_LIST, &t), TDM_EINVAL);
  assert_int_equal(tdm_cqltype_native(TDM_CQLTYPE_CUSTOM, &t), TDM_EINVAL);
  assert_string_equal(tdm_cqltype_id_name(0x0016), "unknown");
  assert_string_equal(tdm_cqltype_id_name(TDM_CQLTYPE_VARCHAR), "text");
}

/* UDT ks.addr { street text, tags set<text> } inside a tuple. */
static void test_udt_walk(void **state)
{
  uint8_t b[128];
  size_t n = unhex("0031 0002 0009"
                   "0030 0002 6b73 0004 61646472 0002 0006 737472656574 000d 0004 74616773 0022 000d",
                   b, sizeof(b));
  tdm_cqltype_t t, c, f;
  tdm_str_t name, ks;
  assert_int_equal(tdm_cqltype_from_raw(b, n, &t), 0);
  assert_int_equal(t.len, n);
  assert_formats(&t, "tuple<int, ks.addr>");
  assert_int_equal(tdm_cqltype_child_count(&t), 2);
  assert_int_equal(tdm_cqltype_child(&t, 1, &c, &name), 0);
  assert_int_equal(name.len, 0);
  assert_int_equal(c.id, TDM_CQLTYPE_UDT);
  assert_int_equal(tdm_cqltype_udt_name(&c, &ks, &name), 0);
  assert_true(tdm_str_eq_cstr(ks, "ks") && tdm_str_eq_cstr(name, "addr"));
  tdm_cqltype_iter_t it;
  tdm_cqltype_iter_init(&it, &c);
  assert_int_equal(tdm_cqltype_next(&it, &f, &name), 1);
  assert_true(tdm_str_eq_cstr(name, "street"));
  assert_int_equal(f.id, TDM_CQLTYPE_VARCHAR);
  assert_int_equal(tdm_cqltype_next(&it, &f, &name), 1);
  assert_true(tdm_str_eq_cstr(name, "tags"));
  assert_formats(&f, "set<text>");
  assert_int_equal(tdm_cqltype_next(&it, &f, &name), 0);
  assert_int_equal(tdm_cqltype_child(&t, 2, &c, NULL), TDM_EINVAL);
  assert_int_equal(tdm_cqltype_custom_class(&t, &name), TDM_EINVAL);
  assert_int_equal(tdm_cqltype_udt_name(&t, &ks, &name), TDM_EINVAL);
  /* Every truncation is refused; a trailing byte too. */
  for (size_t k = 0; k < n; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    if (k) memcpy(copy, b, k);
    assert_int_equal(tdm_cqltype_from_raw(copy, k, &t), TDM_EPROTO_MALFORMED);
    free(copy);
  }
  assert_int_equal(tdm_cqltype_from_raw(b, n + 1, &t), TDM_EPROTO_MALFORMED);
}

static void test_bad_options(void **state)
{
  uint8_t b[64];
  tdm_cqltype_t t;
  size_t n = unhex("000a", b, sizeof(b)); /* v1 text: payload-free, accepted */
  assert_int_equal(tdm_cqltype_from_raw(b, n, &t), 0);
  static const char *const bad[] = {
    "0016",           /* unknown id */
    "0023 0009",      /* unknown collection id */
    "0040",           /* unknown */
    "0031 ffff 0009", /* tuple count beyond the body */
    "0030 0000 0000 7fff", /* UDT field count beyond the body */
    "0021 0009",      /* map without value type */
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(bad); i++) {
    n = unhex(bad[i], b, sizeof(b));
    tdm_reader_t r;
    tdm_reader_init(&r, b, n);
    if (tdm_cqltype_read(&r, &t) != TDM_EPROTO_MALFORMED) fail_msg("accepted %s", bad[i]);
    assert_int_equal(r.pos, 0); /* cursor restored */
  }
}

/* list<list<...<int>>>: depth TDM_CQLTYPE_MAX_DEPTH is accepted, one more is refused. */
static void test_depth_limit(void **state)
{
  uint8_t b[2 * (TDM_CQLTYPE_MAX_DEPTH + 2)];
  for (int depth = TDM_CQLTYPE_MAX_DEPTH; depth <= TDM_CQLTYPE_MAX_DEPTH + 1; depth++) {
    size_t n = 0;
    for (int i = 0; i < depth - 1; i++) {
      b[n++] = 0x00;
      b[n++] = 0x20;
    }
    b[n++] = 0x00;
    b[n++] = 0x09;
    tdm_cqltype_t t;
    int rc = tdm_cqltype_from_raw(b, n, &t);
    assert_int_equal(rc, depth <= TDM_CQLTYPE_MAX_DEPTH ? 0 : TDM_EPROTO_MALFORMED);
  }
  /* Text nesting follows the same limit; frozen<> adds no protocol depth. */
  char text[512] = "";
  size_t len = 0;
  for (int i = 0; i < TDM_CQLTYPE_MAX_DEPTH - 1; i++) len += (size_t)snprintf(text + len, sizeof(text) - len, "frozen<list<");
  len += (size_t)snprintf(text + len, sizeof(text) - len, "int");
  for (int i = 0; i < TDM_CQLTYPE_MAX_DEPTH - 1; i++) len += (size_t)snprintf(text + len, sizeof(text) - len, ">>");
  uint8_t out[128];
  tdm_cqltype_t t;
  assert_int_equal(tdm_cqltype_parse((tdm_str_t){ text, len }, out, sizeof(out), &t), 0);
  assert_int_equal(t.len, 2 * TDM_CQLTYPE_MAX_DEPTH);
  char deeper[600];
  int dn = snprintf(deeper, sizeof(deeper), "list<%.*s>", (int)len, text);
  assert_int_equal(tdm_cqltype_parse((tdm_str_t){ deeper, (size_t)dn }, out, sizeof(out), &t), TDM_EINVAL);
}

static void test_format_overflow(void **state)
{
  uint8_t b[16];
  tdm_cqltype_t t;
  assert_int_equal(tdm_cqltype_parse(TDM_STR("map<text, int>"), b, sizeof(b), &t), 0);
  char buf[8];
  assert_int_equal(tdm_cqltype_format(&t, buf, sizeof(buf)), TDM_EOVERFLOW);
  assert_string_equal(buf, "map<tex");
  assert_int_equal(tdm_cqltype_format(&t, buf, 0), TDM_EOVERFLOW);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_and_format),
    cmocka_unit_test(test_native_and_names),
    cmocka_unit_test(test_udt_walk),
    cmocka_unit_test(test_bad_options),
    cmocka_unit_test(test_depth_limit),
    cmocka_unit_test(test_format_overflow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
