/* BATCH bodies: golden bytes, round trips for every version and every batch flag combination with
 * query, prepared and mixed children, the child iterator and its offsets, every truncation point, count
 * mismatches, and the flags the spec forbids on a BATCH. */
#include <tandem/proto/request.h>
#include "testlib.h"

static const uint8_t versions[] = { TDM_PROTO_V2, TDM_PROTO_V3, TDM_PROTO_V4, TDM_PROTO_V5, TDM_PROTO_DSE_V1,
                                    TDM_PROTO_DSE_V2 };

static uint32_t batch_flags(uint8_t v)
{
  switch (v) {
  case TDM_PROTO_V2: return 0;
  case TDM_PROTO_V5: return 0x1b0;
  case TDM_PROTO_DSE_V2: return 0xb0;
  default: return 0x30;
  }
}

static void assert_prefixes_fail(uint8_t version, const uint8_t *body, size_t len)
{
  for (size_t k = 0; k < len; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    assert_non_null(copy);
    memcpy(copy, body, k);
    tdm_batch_t b;
    const char *why = NULL;
    int rc = tdm_request_decode_batch(version, copy, k, &b, &why);
    if (rc != TDM_EPROTO_MALFORMED) fail_msg("prefix %zu of %zu decoded with %d (v%#x)", k, len, rc, version);
    assert_non_null(why);
    free(copy);
  }
}

/* Children: a simple statement with two values, a prepared one with none, a prepared one with one. */
static const uint8_t two_values[] = { 0, 0, 0, 1, 0x07, 0xff, 0xff, 0xff, 0xff };
static const uint8_t one_value[] = { 0, 0, 0, 2, 0xab, 0xcd };

static size_t make_children(tdm_batch_child_t *c, int mix)
{
  memset(c, 0, 3 * sizeof(*c));
  c[0].kind = TDM_REQUEST_BATCH_KIND_QUERY;
  c[0].query = TDM_STR("INSERT INTO t (k, v) VALUES (?, ?)");
  c[0].values_count = 2;
  c[0].values = two_values;
  c[0].values_len = sizeof(two_values);
  c[1].kind = TDM_REQUEST_BATCH_KIND_PREPARED;
  c[1].id = (tdm_bytes_t){ (const uint8_t *)"0123456789abcdef", 16 };
  c[2].kind = TDM_REQUEST_BATCH_KIND_PREPARED;
  c[2].id = (tdm_bytes_t){ (const uint8_t *)"xyz", 3 };
  c[2].values_count = 1;
  c[2].values = one_value;
  c[2].values_len = sizeof(one_value);
  switch (mix) {
  case 0: return 0;            /* empty batch */
  case 1: return 1;            /* simple only */
  case 2: c[0] = c[1]; return 1; /* prepared only */
  default: return 3;           /* mixed */
  }
}

static void test_batch_round_trips(void **state)
{
  size_t runs = 0;
  for (size_t vi = 0; vi < sizeof(versions); vi++) {
    uint8_t v = versions[vi];
    uint32_t defined = batch_flags(v), sub = 0;
    do {
      for (int mix = 0; mix < 4; mix++) {
        tdm_batch_child_t kids[3];
        size_t n = make_children(kids, mix);
        tdm_query_params_t p = { 0 };
        p.consistency = TDM_CL_EACH_QUORUM;
        p.flags = sub;
        p.serial_consistency = (sub & TDM_QFLAG_SERIAL_CONSISTENCY) ? TDM_CL_SERIAL : 0;
        p.default_timestamp = (sub & TDM_QFLAG_DEFAULT_TIMESTAMP) ? 42 : 0;
        p.keyspace = (sub & TDM_QFLAG_WITH_KEYSPACE) ? TDM_STR("inventory") : (tdm_str_t){ 0 };
        p.now_in_seconds = (sub & TDM_QFLAG_NOW_IN_SECONDS) ? 99 : 0;
        p.paging_state.len = -1;
        tdm_writer_t w, again;
        tdm_writer_init(&w);
        assert_int_equal(tdm_request_encode_batch(&w, v, TDM_BATCH_UNLOGGED, kids, n, &p), 0);

        tdm_batch_t b;
        const char *why = NULL;
        assert_int_equal(tdm_request_decode_batch(v, w.buf, w.len, &b, &why), 0);
        assert_int_equal(b.type, TDM_BATCH_UNLOGGED);
        assert_int_equal(b.count, n);
        assert_int_equal(b.children_offset, 3);
        assert_int_equal(b.params.consistency, TDM_CL_EACH_QUORUM);
        assert_int_equal(b.params.flags, sub);
        assert_int_equal(b.params.flags_offset, b.children_end + 2);
        assert_int_equal(b.params.flags_size, v == TDM_PROTO_V2 ? 0 : tdm_proto_int_flags(v) ? 4 : 1);
        assert_int_equal(b.params.serial_consistency, p.serial_consistency);
        assert_true(b.params.default_timestamp == p.default_timestamp);
        assert_true(tdm_str_eq(b.params.keyspace, p.keyspace));
        assert_int_equal(b.params.now_in_seconds, p.now_in_seconds);
        assert_int_equal(b.params.end_offset, w.len);

        /* Walk the children and compare them with what was encoded. */
        tdm_batch_iter_t it;
        tdm_batch_child_t c, out[3];
        size_t seen = 0, prepared = 0;
        int rc;
        tdm_batch_iter_init(&it, &b);
        while ((rc = tdm_batch_next_child(&it, &c)) > 0) {
          assert_true(seen < n);
          assert_int_equal(c.index, seen);
          assert_int_equal(c.kind, kids[seen].kind);
          if (c.kind == TDM_REQUEST_BATCH_KIND_QUERY) {
            assert_true(tdm_str_eq(c.query, kids[seen].query));
          } else {
            prepared++;
            assert_int_equal(c.id.len, kids[seen].id.len);
            assert_ptr_equal(c.id.ptr, w.buf + c.id_offset);
            assert_int_equal(w.buf[c.id_offset - 2] << 8 | w.buf[c.id_offset - 1], kids[seen].id.len);
            assert_memory_equal(c.id.ptr, kids[seen].id.ptr, (size_t)c.id.len);
          }
          assert_int_equal(c.values_count, kids[seen].values_count);
          assert_int_equal(c.values_len, kids[seen].values_len);
          if (c.values_len) assert_memory_equal(c.values, kids[seen].values, c.values_len);
          assert_int_equal(w.buf[c.offset], c.kind);
          out[seen++] = c;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(seen, n);
        assert_int_equal(b.prepared_count, prepared);
        assert_int_equal(tdm_batch_next_child(&it, &c), 0); /* stays at the end */

        /* Re-encoding the decoded form gives the same bytes. */
        tdm_writer_init(&again);
        assert_int_equal(tdm_request_encode_batch(&again, v, b.type, out, seen, &b.params), 0);
        assert_int_equal(again.len, w.len);
        assert_memory_equal(again.buf, w.buf, w.len);
        uint16_t cl;
        assert_int_equal(tdm_request_peek_consistency(v, TDM_OP_BATCH, w.buf, w.len, &cl), 0);
        assert_int_equal(cl, TDM_CL_EACH_QUORUM);
        assert_prefixes_fail(v, w.buf, w.len);
        tdm_writer_free(&w);
        tdm_writer_free(&again);
        runs++;
      }
      sub = (sub - defined) & defined;
    } while (sub != 0);
  }
  /* (1 + 4 + 4 + 16 + 4 + 8 flag subsets) x 4 child mixes. */
  assert_int_equal(runs, (1 + 4 + 4 + 16 + 4 + 8) * 4);
}

static void test_batch_golden(void **state)
{
  size_t n;
  /* v4 logged batch: child 0 "Q" with one value 0x01; child 1 id beef no values; QUORUM, flags 0x20,
   * timestamp 1. */
  uint8_t *body = tdm_test_hex("00 0002"
                               "00 00000001 51 0001 00000001 01"
                               "01 0002 beef 0000"
                               "0004 20 0000000000000001", &n);
  tdm_batch_t b;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_batch(TDM_PROTO_V4, body, n, &b, &why), 0);
  assert_int_equal(b.type, TDM_BATCH_LOGGED);
  assert_int_equal(b.count, 2);
  assert_int_equal(b.prepared_count, 1);
  assert_int_equal(b.children_end, 23);
  assert_int_equal(b.params.flags_offset, 25);
  assert_int_equal(b.params.keyspace_offset, n);
  tdm_batch_iter_t it;
  tdm_batch_child_t c;
  tdm_batch_iter_init(&it, &b);
  assert_int_equal(tdm_batch_next_child(&it, &c), 1);
  assert_int_equal(c.offset, 3);
  assert_true(tdm_str_eq_cstr(c.query, "Q"));
  assert_int_equal(c.values_offset, 11);
  assert_int_equal(c.end_offset, 16);
  assert_int_equal(tdm_batch_next_child(&it, &c), 1);
  assert_int_equal(c.offset, 16);
  assert_int_equal(c.id_offset, 19);
  assert_int_equal(c.id.len, 2);
  assert_null(c.values);
  assert_int_equal(tdm_batch_next_child(&it, &c), 0);
  /* The same bytes are not a v5 batch ([int] flags). */
  assert_int_equal(tdm_request_decode_batch(TDM_PROTO_V5, body, n, &b, &why), TDM_EPROTO_MALFORMED);
  free(body);
  /* v2: no flags after the consistency. */
  body = tdm_test_hex("01 0001 01 0001 aa 0000 0001", &n);
  assert_int_equal(tdm_request_decode_batch(TDM_PROTO_V2, body, n, &b, &why), 0);
  assert_int_equal(b.params.flags_size, 0);
  assert_int_equal(b.params.end_offset, n);
  assert_int_equal(tdm_request_decode_batch(TDM_PROTO_V3, body, n, &b, &why), TDM_EPROTO_MALFORMED);
  free(body);
}

static void test_batch_defects(void **state)
{
  static const struct {
    uint8_t version; /* protocol version to decode with */
    const char *hex; /* body bytes */
    const char *why; /* NULL: any reason */
  } cases[] = {
    /* Count claims more children than the body can hold: refused before walking. */
    { TDM_PROTO_V4, "00 ffff 00 00000000 0000 0001 00", "BATCH child count exceeds the body" },
    /* Count 4, two children present: 4 children need at least 20 bytes and 17 are left. */
    { TDM_PROTO_V4, "00 0004 01 0001 aa 0000 01 0001 bb 0000 0001 00", "BATCH child count exceeds the body" },
    /* Count 3, two children present: the walk runs into the consistency. */
    { TDM_PROTO_V4, "00 0003 01 0001 aa 0000 01 0001 bb 0000 0001 00", NULL },
    /* Count 1, two children present: the second child is read as parameters. */
    { TDM_PROTO_V4, "00 0001 01 0001 aa 0000 01 0001 bb 0000 0001 00", NULL },
    { TDM_PROTO_V4, "03 0000 0001 00", "invalid BATCH type" },
    { TDM_PROTO_V4, "00 0001 02 0001 aa 0000 0001 00", "invalid BATCH child kind" },
    { TDM_PROTO_V4, "00 0001 01 0009 aa 0000 0001 00", "BATCH prepared id exceeds the body" },
    { TDM_PROTO_V4, "00 0001 00 ffffffff 0000 0001 00", "negative length of BATCH query string" },
    { TDM_PROTO_V4, "00 0001 01 0001 aa 0001 fffffff0 0001 00", "value length below -2" },
    { TDM_PROTO_V4, "00 0001 01 0001 aa 0100 00000000 0001 00", "value count exceeds the body" },
    { TDM_PROTO_V4, "00 0000 0001 01", "BATCH flags 0x01-0x08 must be zero" },
    { TDM_PROTO_V4, "00 0000 0001 40", "BATCH flag 0x40 (names for values) is not supported" },
    { TDM_PROTO_V4, "00 0000 0001 80 0000", "BATCH flags undefined for this protocol version" },
    { TDM_PROTO_DSE_V2, "00 0000 0001 00000100 00000000", "BATCH flags undefined for this protocol version" },
    { TDM_PROTO_DSE_V1, "00 0000 0001 80000000", "BATCH flags undefined for this protocol version" },
    { TDM_PROTO_V5, "00 0000 0001 00000004 00000010", "BATCH flags 0x01-0x08 must be zero" },
    { TDM_PROTO_V5, "00 0000 0001 00000000 00", "trailing bytes after the message" },
    { TDM_PROTO_V2, "00 0000 0001 00", "trailing bytes after the message" },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    size_t n;
    uint8_t *body = tdm_test_hex(cases[i].hex, &n);
    tdm_batch_t b;
    const char *why = NULL;
    assert_int_equal(tdm_request_decode_batch(cases[i].version, body, n, &b, &why), TDM_EPROTO_MALFORMED);
    assert_non_null(why);
    if (cases[i].why && strcmp(why, cases[i].why) != 0)
      fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].why, why);
    free(body);
  }
}

/* The iterator stays inside the body even over a batch that was never validated. */
static void test_iterator_on_foreign_batch(void **state)
{
  uint8_t junk[64];
  tdm_test_fill_random(junk, sizeof(junk), 7);
  junk[3] = 1; /* a prepared child whose id length is huge */
  junk[4] = 0xff;
  tdm_batch_t b = { 0 };
  b.body = junk;
  b.len = sizeof(junk);
  b.count = 9;
  b.children_offset = 3;
  b.children_end = sizeof(junk);
  tdm_batch_iter_t it;
  tdm_batch_child_t c;
  tdm_batch_iter_init(&it, &b);
  assert_int_equal(tdm_batch_next_child(&it, &c), TDM_EPROTO_MALFORMED);
  b.children_end = sizeof(junk) + 1; /* an inconsistent struct is refused, not followed */
  tdm_batch_iter_init(&it, &b);
  assert_int_equal(tdm_batch_next_child(&it, &c), TDM_EPROTO_MALFORMED);
}

static void test_encode_refusals(void **state)
{
  tdm_batch_child_t kids[3];
  size_t n = make_children(kids, 3);
  tdm_query_params_t p = { 0 };
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V4, 3, kids, n, &p), TDM_EINVAL);
  tdm_writer_free(&w);
  kids[1].kind = 2;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V4, 0, kids, n, &p), TDM_EINVAL);
  tdm_writer_free(&w);
  n = make_children(kids, 3);
  p.flags = TDM_QFLAG_PAGE_SIZE;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V4, 0, kids, n, &p), TDM_EINVAL);
  tdm_writer_free(&w);
  p.flags = TDM_QFLAG_SERIAL_CONSISTENCY;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V2, 0, kids, n, &p), TDM_EINVAL);
  tdm_writer_free(&w);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_batch_round_trips),
    cmocka_unit_test(test_batch_golden),
    cmocka_unit_test(test_batch_defects),
    cmocka_unit_test(test_iterator_on_foreign_batch),
    cmocka_unit_test(test_encode_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
