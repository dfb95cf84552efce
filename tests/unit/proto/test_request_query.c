/* QUERY, PREPARE and EXECUTE bodies: golden bytes from the spec for each version, round trips over every
 * combination of the query flags each version defines, every truncation point failing cleanly, the
 * offsets the proxy patches, and the defects a PROTOCOL_ERROR must name. */
#include <tandem/proto/request.h>
#include "testlib.h"

static const uint8_t versions[] = { TDM_PROTO_V2, TDM_PROTO_V3, TDM_PROTO_V4, TDM_PROTO_V5, TDM_PROTO_DSE_V1,
                                    TDM_PROTO_DSE_V2 };

/* Flags each version defines for QUERY/EXECUTE (the spec, per version). */
static uint32_t defined_flags(uint8_t v)
{
  switch (v) {
  case TDM_PROTO_V2: return 0x1f;
  case TDM_PROTO_V3:
  case TDM_PROTO_V4: return 0x7f;
  case TDM_PROTO_V5: return 0x1ff;
  case TDM_PROTO_DSE_V1: return 0x7f | 0xC0000000u;
  default: return 0xff | 0xC0000000u;
  }
}

/* Decodes body[0..k) from an exactly sized heap copy for every k < len: each must fail with a reason. */
static void assert_prefixes_fail(uint8_t version, uint8_t opcode, const uint8_t *body, size_t len)
{
  for (size_t k = 0; k < len; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    assert_non_null(copy);
    memcpy(copy, body, k);
    tdm_request_t req;
    const char *why = NULL;
    int rc = tdm_request_decode(version, opcode, copy, k, &req, &why);
    if (rc != TDM_EPROTO_MALFORMED)
      fail_msg("prefix %zu of %zu decoded with %d (v%#x op %#x)", k, len, rc, version, opcode);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    free(copy);
  }
}

static const char *decode_why(uint8_t version, uint8_t opcode, const uint8_t *body, size_t len, int expect)
{
  tdm_request_t req;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode(version, opcode, body, len, &req, &why), expect);
  return why;
}

/* Three positional or named values: "abc", null, unset. */
static void build_values(tdm_writer_t *w, bool named)
{
  static const char *names[] = { "a", "bb", "c" };
  tdm_bytes_t vals[] = { { (const uint8_t *)"abc", 3 }, { NULL, -1 }, { NULL, -2 } };
  for (int i = 0; i < 3; i++) {
    if (named) tdm_writer_cstring(w, names[i]);
    tdm_request_write_value(w, vals[i]);
  }
}

static const uint8_t paging[] = { 0xde, 0xad, 0xbe, 0xef, 0x01 };

/* Parameters with every field that `flags` selects set to a distinctive value. */
static void fill_params(tdm_query_params_t *p, uint32_t flags, tdm_writer_t *vals)
{
  memset(p, 0, sizeof(*p));
  p->consistency = TDM_CL_LOCAL_QUORUM;
  p->flags = flags;
  p->paging_state.len = -1;
  if (flags & TDM_QFLAG_VALUES) {
    tdm_writer_init(vals);
    build_values(vals, (flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0);
    assert_int_equal(tdm_writer_error(vals), 0);
    p->values = vals->buf;
    p->values_len = vals->len;
    p->values_count = 3;
  }
  if (flags & TDM_QFLAG_PAGE_SIZE) p->page_size = 5000;
  if (flags & TDM_QFLAG_PAGING_STATE) p->paging_state = (tdm_bytes_t){ paging, sizeof(paging) };
  if (flags & TDM_QFLAG_SERIAL_CONSISTENCY) p->serial_consistency = TDM_CL_LOCAL_SERIAL;
  if (flags & TDM_QFLAG_DEFAULT_TIMESTAMP) p->default_timestamp = 1700000000123456LL;
  if (flags & TDM_QFLAG_WITH_KEYSPACE) p->keyspace = TDM_STR("ks_one");
  if (flags & TDM_QFLAG_NOW_IN_SECONDS) p->now_in_seconds = 1700000000;
  if (flags & TDM_QFLAG_DSE_CONTINUOUS_PAGING) {
    p->max_pages = 7;
    p->pages_per_second = 3;
    p->next_pages = 2;
  }
}

/* Compares decoded params with the ones encoded, and checks the recorded offsets against the body. */
static void assert_params(uint8_t version, const tdm_query_params_t *want, const tdm_query_params_t *got,
                          const uint8_t *body)
{
  assert_int_equal(got->consistency, want->consistency);
  assert_int_equal(got->flags, want->flags);
  assert_int_equal(got->flags_size, tdm_proto_int_flags(version) ? 4 : 1);
  if (got->flags_size == 4) {
    uint32_t f = (uint32_t)body[got->flags_offset] << 24 | (uint32_t)body[got->flags_offset + 1] << 16 |
                 (uint32_t)body[got->flags_offset + 2] << 8 | body[got->flags_offset + 3];
    assert_int_equal(f, want->flags);
  } else {
    assert_int_equal(body[got->flags_offset], want->flags);
  }
  assert_int_equal(got->values_count, want->values_count);
  assert_int_equal(got->values_len, want->values_len);
  if (want->values_len) {
    assert_ptr_equal(got->values, body + got->values_offset);
    assert_memory_equal(got->values, want->values, want->values_len);
  } else {
    assert_null(got->values);
  }
  assert_int_equal(got->page_size, want->page_size);
  assert_int_equal(got->paging_state.len, want->paging_state.len);
  if (want->paging_state.len > 0) assert_memory_equal(got->paging_state.ptr, paging, sizeof(paging));
  assert_int_equal(got->serial_consistency, want->serial_consistency);
  assert_true(got->default_timestamp == want->default_timestamp);
  assert_true(tdm_str_eq(got->keyspace, want->keyspace));
  if (want->flags & TDM_QFLAG_WITH_KEYSPACE) {
    assert_int_equal(body[got->keyspace_offset] << 8 | body[got->keyspace_offset + 1], want->keyspace.len);
    assert_ptr_equal(got->keyspace.ptr, (const char *)body + got->keyspace_offset + 2);
  }
  assert_int_equal(got->now_in_seconds, want->now_in_seconds);
  assert_int_equal(got->max_pages, want->max_pages);
  assert_int_equal(got->pages_per_second, want->pages_per_second);
  assert_int_equal(got->next_pages, version == TDM_PROTO_DSE_V2 ? want->next_pages : 0);
}

/* Every subset of each version's flags: QUERY and EXECUTE encode, decode to the same fields, re-encode
 * to the same bytes, and fail at every truncation point. */
static void test_params_every_flag_combination(void **state)
{
  size_t combos = 0;
  for (size_t vi = 0; vi < sizeof(versions); vi++) {
    uint8_t v = versions[vi];
    uint32_t defined = defined_flags(v);
    /* Enumerate subsets of `defined` with the standard submask walk. */
    uint32_t sub = 0;
    do {
      tdm_writer_t vals = { 0 }, w, again;
      tdm_query_params_t p;
      fill_params(&p, sub, &vals);
      for (int op = 0; op < 2; op++) {
        tdm_writer_init(&w);
        tdm_writer_init(&again);
        tdm_request_t req;
        const char *why = NULL;
        const tdm_query_params_t *got;
        if (op == 0) {
          assert_int_equal(tdm_request_encode_query(&w, v, TDM_STR("SELECT * FROM t WHERE k = ?"), &p), 0);
          assert_int_equal(tdm_request_decode(v, TDM_OP_QUERY, w.buf, w.len, &req, &why), 0);
          assert_true(tdm_str_eq_cstr(req.u.query.query, "SELECT * FROM t WHERE k = ?"));
          got = &req.u.query.params;
          assert_int_equal(tdm_request_encode_query(&again, v, req.u.query.query, got), 0);
        } else {
          tdm_bytes_t id = { (const uint8_t *)"0123456789abcdef", 16 }, md = { (const uint8_t *)"md5!", 4 };
          assert_int_equal(tdm_request_encode_execute(&w, v, id, md, &p), 0);
          assert_int_equal(tdm_request_decode(v, TDM_OP_EXECUTE, w.buf, w.len, &req, &why), 0);
          assert_int_equal(req.u.execute.id.len, 16);
          assert_memory_equal(req.u.execute.id.ptr, "0123456789abcdef", 16);
          assert_int_equal(req.u.execute.has_metadata_id, tdm_proto_has_metadata_id(v));
          got = &req.u.execute.params;
          assert_int_equal(tdm_request_encode_execute(&again, v, req.u.execute.id, req.u.execute.result_metadata_id,
                                                      got), 0);
        }
        assert_params(v, &p, got, w.buf);
        assert_int_equal(got->end_offset, w.len);
        assert_int_equal(again.len, w.len);
        assert_memory_equal(again.buf, w.buf, w.len);
        assert_prefixes_fail(v, op == 0 ? TDM_OP_QUERY : TDM_OP_EXECUTE, w.buf, w.len);
        tdm_writer_free(&w);
        tdm_writer_free(&again);
      }
      tdm_writer_free(&vals);
      combos++;
      sub = (sub - defined) & defined;
    } while (sub != 0);
  }
  /* 2^5 + 2 * 2^7 + 2^9 + 2^9 + 2^10 subsets. */
  assert_int_equal(combos, 32 + 128 + 128 + 512 + 512 + 1024);
}

/* Golden bytes written by hand from the spec, so encoder and decoder cannot agree on a wrong layout. */
static void test_query_golden(void **state)
{
  size_t n;
  /* v4: "SELECT 1", ONE, flags 0x25 = values | page size | timestamp; one value 0x2a; page 100. */
  uint8_t *b = tdm_test_hex("00000008 53454c4543542031  0001 25  0001 00000001 2a  00000064"
                            "  0005f5e0ff1c2a00", &n);
  tdm_query_t q;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V4, b, n, &q, &why), 0);
  assert_true(tdm_str_eq_cstr(q.query, "SELECT 1"));
  assert_int_equal(q.params.consistency, TDM_CL_ONE);
  assert_int_equal(q.params.flags, 0x25);
  assert_int_equal(q.params.flags_offset, 14);
  assert_int_equal(q.params.values_count, 1);
  assert_int_equal(q.params.values_offset, 17);
  assert_int_equal(q.params.values_len, 5);
  assert_int_equal(q.params.page_size, 100);
  assert_true(q.params.default_timestamp == 0x0005f5e0ff1c2a00LL);
  assert_int_equal(q.params.keyspace_offset, n);
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_V4, q.query, &q.params), 0);
  assert_int_equal(w.len, n);
  assert_memory_equal(w.buf, b, n);
  tdm_writer_free(&w);
  /* The same body is not a v5 body ([int] flags). */
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V5, b, n, &q, &why), TDM_EPROTO_MALFORMED);
  free(b);

  /* v5: keyspace + now_in_seconds: flags 0x00000180. */
  b = tdm_test_hex("00000008 53454c4543542031  000a 00000180  0002 6b73  6553f100", &n);
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V5, b, n, &q, &why), 0);
  assert_int_equal(q.params.consistency, TDM_CL_LOCAL_ONE);
  assert_int_equal(q.params.flags_size, 4);
  assert_true(tdm_str_eq_cstr(q.params.keyspace, "ks"));
  assert_int_equal(q.params.keyspace_offset, 18);
  assert_int_equal(q.params.now_in_seconds, 0x6553f100);
  /* DSE_V2 defines the keyspace but not now_in_seconds. */
  why = NULL;
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_DSE_V2, b, n, &q, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "query flags undefined for this protocol version");
  free(b);

  /* NODE_LOCAL (0x000B, Cassandra 4.0+) is the highest consistency code accepted. */
  b = tdm_test_hex("00000000 000b 00", &n);
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V4, b, n, &q, &why), 0);
  assert_int_equal(q.params.consistency, 0x000b);
  free(b);
}

static void test_dse_continuous_paging(void **state)
{
  size_t n;
  tdm_query_t q;
  const char *why = NULL;
  /* DSE_V1: flags 0xC0000004 (continuous paging, page size in bytes, page size); max 10, rate 2. */
  uint8_t *b = tdm_test_hex("00000001 2a 0001 c0000004 00010000 0000000a 00000002", &n);
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_DSE_V1, b, n, &q, &why), 0);
  assert_true(q.params.flags & TDM_QFLAG_DSE_CONTINUOUS_PAGING);
  assert_true(q.params.flags & TDM_QFLAG_DSE_PAGE_SIZE_BYTES);
  assert_int_equal(q.params.page_size, 65536);
  assert_int_equal(q.params.max_pages, 10);
  assert_int_equal(q.params.pages_per_second, 2);
  /* DSE_V2 also sends next_pages, so the same body is one int short there. */
  why = NULL;
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_DSE_V2, b, n, &q, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "continuous paging options truncated");
  /* v4 and v5 do not define the DSE bits. */
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V5, b, n, &q, &why), TDM_EPROTO_MALFORMED);
  free(b);
  b = tdm_test_hex("00000001 2a 0001 80000000 0000000a 00000002 00000001", &n);
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_DSE_V2, b, n, &q, &why), 0);
  assert_int_equal(q.params.next_pages, 1);
  free(b);
}

static void test_prepare(void **state)
{
  for (size_t vi = 0; vi < sizeof(versions); vi++) {
    uint8_t v = versions[vi];
    bool ks_ok = tdm_proto_has_request_keyspace(v);
    for (int with_ks = 0; with_ks < 2; with_ks++) {
      tdm_writer_t w;
      tdm_writer_init(&w);
      tdm_str_t ks = TDM_STR("shop");
      int rc = tdm_request_encode_prepare(&w, v, TDM_STR("INSERT INTO t (k) VALUES (?)"), with_ks ? &ks : NULL);
      if (with_ks && !ks_ok) {
        assert_int_equal(rc, TDM_EINVAL);
        tdm_writer_free(&w);
        continue;
      }
      assert_int_equal(rc, 0);
      assert_int_equal(w.len, 4 + 28 + (ks_ok ? 4 : 0) + (with_ks ? 6 : 0));
      tdm_prepare_t p;
      const char *why = NULL;
      assert_int_equal(tdm_request_decode_prepare(v, w.buf, w.len, &p, &why), 0);
      assert_true(tdm_str_eq_cstr(p.query, "INSERT INTO t (k) VALUES (?)"));
      assert_int_equal(p.flags, with_ks ? TDM_PFLAG_WITH_KEYSPACE : 0);
      assert_int_equal(p.flags_offset, 32);
      assert_int_equal(p.keyspace_offset, ks_ok ? 36 : 32);
      assert_true(tdm_str_eq_cstr(p.keyspace, with_ks ? "shop" : ""));
      tdm_str_t peek;
      assert_int_equal(tdm_request_peek_query(v, w.buf, w.len, &peek), 0);
      assert_true(tdm_str_eq(peek, p.query));
      assert_prefixes_fail(v, TDM_OP_PREPARE, w.buf, w.len);
      tdm_writer_free(&w);
    }
  }
  size_t n;
  uint8_t *b = tdm_test_hex("00000001 2a 00000002", &n);
  assert_string_equal(decode_why(TDM_PROTO_V5, TDM_OP_PREPARE, b, n, TDM_EPROTO_MALFORMED), "undefined PREPARE flags");
  assert_string_equal(decode_why(TDM_PROTO_V4, TDM_OP_PREPARE, b, n, TDM_EPROTO_MALFORMED),
                      "trailing bytes after the message");
  free(b);
}

static void test_execute_offsets_and_peek(void **state)
{
  size_t n;
  /* v5: id 3 bytes, metadata id 2 bytes, QUORUM, flags 0. */
  uint8_t *b = tdm_test_hex("0003 aabbcc 0002 dddd 0004 00000000", &n);
  tdm_execute_t e;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_execute(TDM_PROTO_V5, b, n, &e, &why), 0);
  assert_int_equal(e.id_offset, 2);
  assert_int_equal(e.id.len, 3);
  assert_ptr_equal(e.id.ptr, b + 2);
  assert_true(e.has_metadata_id);
  assert_int_equal(e.metadata_id_offset, 7);
  assert_int_equal(e.result_metadata_id.len, 2);
  assert_int_equal(e.params.flags_offset, 11);
  assert_int_equal(e.params.keyspace_offset, n);
  tdm_bytes_t id, md;
  uint16_t cl;
  assert_int_equal(tdm_request_peek_execute_id(TDM_PROTO_V5, b, n, &id, &md), 0);
  assert_ptr_equal(id.ptr, b + 2);
  assert_ptr_equal(md.ptr, b + 7);
  assert_int_equal(tdm_request_peek_consistency(TDM_PROTO_V5, TDM_OP_EXECUTE, b, n, &cl), 0);
  assert_int_equal(cl, TDM_CL_QUORUM);
  /* In v4 the same bytes mean: id aabbcc, consistency 0x0002, flags 0xdd (undefined bits). */
  assert_string_equal(decode_why(TDM_PROTO_V4, TDM_OP_EXECUTE, b, n, TDM_EPROTO_MALFORMED),
                      "query flags undefined for this protocol version");
  assert_int_equal(tdm_request_peek_execute_id(TDM_PROTO_V4, b, n, &id, &md), 0);
  assert_int_equal(md.len, 0);
  free(b);
}

/* The defects MI-09 and the proxy's PROTOCOL_ERROR texts rely on. */
static void test_defects_named(void **state)
{
  static const struct {
    uint8_t version; /* protocol version to decode with */
    uint8_t opcode;  /* request opcode */
    const char *hex; /* body bytes */
    const char *why; /* expected reason */
  } cases[] = {
    { TDM_PROTO_V4, TDM_OP_EXECUTE, "0010 aabbcc", "prepared id exceeds the body" },
    { TDM_PROTO_V4, TDM_OP_EXECUTE, "00", "prepared id truncated" },
    { TDM_PROTO_V5, TDM_OP_EXECUTE, "0001 aa 0009 bb", "result metadata id exceeds the body" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "ffffffff 0001 00", "negative length of query string" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "7fffffff 0001 00", "query string exceeds the body" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "000000", "query string truncated" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 01 0001 fffffffd", "value length below -2" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 01 0001 00000005 00", "value exceeds the body" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 01 ffff 00000000", "value count exceeds the body" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 41 0001 0009 61 00000000", "value name exceeds the body" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 000c 00", "unknown consistency level" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 10 000c", "unknown consistency level" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 80 0002 6b73", "query flags undefined for this protocol version" },
    { TDM_PROTO_V3, TDM_OP_QUERY, "00000000 0001 00 00", "trailing bytes after the message" },
    { TDM_PROTO_V2, TDM_OP_QUERY, "00000000 0001 20 0000000000000001",
      "query flags undefined for this protocol version" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 20 8000000000000000", "default timestamp out of range" },
    { TDM_PROTO_V4, TDM_OP_QUERY, "00000000 0001 08 00000010 00", "paging state exceeds the body" },
    { TDM_PROTO_V5, TDM_OP_QUERY, "00000000 0001 00000080 0010 6b", "keyspace exceeds the body" },
    { TDM_PROTO_V5, TDM_OP_QUERY, "00000000 0001 00000100 0000", "now_in_seconds truncated" },
    { TDM_PROTO_V5, TDM_OP_QUERY, "00000000 0001 000001", "flags truncated" },
    { TDM_PROTO_V5, TDM_OP_QUERY, "00000000 0001 80000000", "query flags undefined for this protocol version" },
    { TDM_PROTO_V5, TDM_OP_QUERY, "00000000 0001 00000200", "query flags undefined for this protocol version" },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    size_t n;
    uint8_t *b = tdm_test_hex(cases[i].hex, &n);
    const char *why = decode_why(cases[i].version, cases[i].opcode, b, n, TDM_EPROTO_MALFORMED);
    if (!why || strcmp(why, cases[i].why) != 0)
      fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].why, why ? why : "(null)");
    free(b);
  }
}

/* Negative [bytes] lengths mean null for the paging state; -1 and -2 values are kept apart. */
static void test_negative_lengths_that_are_legal(void **state)
{
  size_t n;
  uint8_t *b = tdm_test_hex("00000000 0001 09 0002 ffffffff fffffffe 80000000", &n);
  tdm_query_t q;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V4, b, n, &q, &why), 0);
  assert_int_equal(q.params.paging_state.len, -1);
  assert_null(q.params.paging_state.ptr);
  tdm_values_iter_t it;
  tdm_str_t name;
  tdm_bytes_t v;
  tdm_values_iter_init(&it, q.params.values, q.params.values_len, q.params.values_count, false);
  assert_int_equal(tdm_values_next(&it, &name, &v), 1);
  assert_int_equal(v.len, -1);
  assert_int_equal(tdm_values_next(&it, &name, &v), 1);
  assert_int_equal(v.len, -2);
  assert_int_equal(tdm_values_next(&it, &name, &v), 0);
  free(b);
}

static void test_named_values_iterate(void **state)
{
  tdm_writer_t vals, w;
  tdm_query_params_t p;
  fill_params(&p, TDM_QFLAG_VALUES | TDM_QFLAG_NAMES_FOR_VALUES, &vals);
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_V4, TDM_STR("UPDATE t SET v = :bb WHERE k = :a"), &p), 0);
  tdm_query_t q;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V4, w.buf, w.len, &q, &why), 0);
  tdm_values_iter_t it;
  tdm_str_t name;
  tdm_bytes_t v;
  tdm_values_iter_init(&it, q.params.values, q.params.values_len, q.params.values_count, true);
  assert_int_equal(tdm_values_next(&it, &name, &v), 1);
  assert_true(tdm_str_eq_cstr(name, "a"));
  assert_int_equal(v.len, 3);
  assert_memory_equal(v.ptr, "abc", 3);
  assert_int_equal(tdm_values_next(&it, &name, &v), 1);
  assert_true(tdm_str_eq_cstr(name, "bb"));
  assert_int_equal(tdm_values_next(&it, &name, &v), 1);
  assert_true(tdm_str_eq_cstr(name, "c"));
  assert_int_equal(v.len, -2);
  assert_int_equal(tdm_values_next(&it, &name, &v), 0);
  /* Iterating a named span as unnamed misreads it, and the iterator notices rather than overruns. */
  tdm_values_iter_init(&it, q.params.values, q.params.values_len, 5, false);
  int rc;
  while ((rc = tdm_values_next(&it, &name, &v)) > 0) {}
  assert_int_equal(rc, TDM_EPROTO_MALFORMED);
  tdm_writer_free(&w);
  tdm_writer_free(&vals);
}

static void test_encode_refusals(void **state)
{
  tdm_writer_t w;
  tdm_query_params_t p = { 0 };
  p.flags = TDM_QFLAG_WITH_KEYSPACE;
  p.keyspace = TDM_STR("ks");
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_V4, TDM_STR("x"), &p), TDM_EINVAL);
  tdm_writer_free(&w);
  /* Values without the flag. */
  p = (tdm_query_params_t){ 0 };
  p.values_count = 1;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_V5, TDM_STR("x"), &p), TDM_EINVAL);
  tdm_writer_free(&w);
  /* An unsupported version and an id that is no [short bytes]. */
  p = (tdm_query_params_t){ 0 };
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_V1, TDM_STR("x"), &p), TDM_EINVAL);
  tdm_writer_free(&w);
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_execute(&w, TDM_PROTO_V4, (tdm_bytes_t){ NULL, -1 }, (tdm_bytes_t){ 0 }, &p),
                   TDM_EINVAL);
  tdm_writer_free(&w);
  /* A fixed buffer too small reports overflow. */
  uint8_t small[8];
  tdm_writer_init_fixed(&w, small, sizeof(small));
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_V4, TDM_STR("SELECT 1"), &p), TDM_EOVERFLOW);
}

static void test_versions_refused(void **state)
{
  uint8_t body[] = { 0, 0, 0, 0, 0, 1, 0 };
  tdm_query_t q;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V1, body, sizeof(body), &q, &why), TDM_EPROTO_VERSION);
  assert_string_equal(why, "unsupported protocol version");
  assert_int_equal(tdm_request_decode_query(6, body, sizeof(body), &q, NULL), TDM_EPROTO_VERSION);
  assert_int_equal(tdm_request_decode_query(0x43, body, sizeof(body), &q, NULL), TDM_EPROTO_VERSION);
  assert_int_equal(tdm_request_decode_query(TDM_PROTO_V3, body, sizeof(body), &q, NULL), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_params_every_flag_combination),
    cmocka_unit_test(test_query_golden),
    cmocka_unit_test(test_dse_continuous_paging),
    cmocka_unit_test(test_prepare),
    cmocka_unit_test(test_execute_offsets_and_peek),
    cmocka_unit_test(test_defects_named),
    cmocka_unit_test(test_negative_lengths_that_are_legal),
    cmocka_unit_test(test_named_values_iterate),
    cmocka_unit_test(test_encode_refusals),
    cmocka_unit_test(test_versions_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
