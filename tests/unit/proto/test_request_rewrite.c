/* Rewrite helpers: EXECUTE prepared id / result_metadata_id substitution (longer, shorter, equal), BATCH
 * child id mapping, and the v5/DSE_V2 per-request keyspace insertion. Each output must decode to the
 * expected content and keep every other byte identical to the input. */
#include <tandem/proto/request.h>
#include "testlib.h"

static const uint8_t paging[] = { 1, 2, 3, 4, 5, 6 };

/* Parameters with values, page size, paging state, serial consistency and timestamp. */
static void params_with_everything(tdm_query_params_t *p, tdm_writer_t *vals, uint8_t version)
{
  memset(p, 0, sizeof(*p));
  tdm_writer_init(vals);
  tdm_request_write_value(vals, (tdm_bytes_t){ (const uint8_t *)"value", 5 });
  tdm_request_write_value(vals, (tdm_bytes_t){ NULL, -1 });
  p->consistency = TDM_CL_QUORUM;
  p->flags = TDM_QFLAG_VALUES | TDM_QFLAG_PAGE_SIZE | TDM_QFLAG_PAGING_STATE | TDM_QFLAG_SERIAL_CONSISTENCY |
             TDM_QFLAG_DEFAULT_TIMESTAMP | TDM_QFLAG_SKIP_METADATA;
  p->values = vals->buf;
  p->values_len = vals->len;
  p->values_count = 2;
  p->page_size = 100;
  p->paging_state = (tdm_bytes_t){ paging, sizeof(paging) };
  p->serial_consistency = TDM_CL_LOCAL_SERIAL;
  p->default_timestamp = 123456789;
  if (version == TDM_PROTO_V5) {
    p->flags |= TDM_QFLAG_NOW_IN_SECONDS;
    p->now_in_seconds = 77;
  }
}

static void test_rewrite_execute_id(void **state)
{
  static const uint8_t versions[] = { TDM_PROTO_V3, TDM_PROTO_V4, TDM_PROTO_V5, TDM_PROTO_DSE_V1, TDM_PROTO_DSE_V2 };
  static const char *new_ids[] = { "0123456789ABCDEF", "short", "a-considerably-longer-target-id" };
  for (size_t vi = 0; vi < sizeof(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_writer_t vals, orig;
    tdm_query_params_t p;
    params_with_everything(&p, &vals, v);
    tdm_writer_init(&orig);
    tdm_bytes_t id = { (const uint8_t *)"0123456789abcdef", 16 }, md = { (const uint8_t *)"meta-origin", 11 };
    assert_int_equal(tdm_request_encode_execute(&orig, v, id, md, &p), 0);
    tdm_execute_t before;
    const char *why = NULL;
    assert_int_equal(tdm_request_decode_execute(v, orig.buf, orig.len, &before, &why), 0);
    size_t tail_at = before.has_metadata_id ? before.metadata_id_offset + 11 : before.id_offset + 16;
    for (size_t ni = 0; ni < TDM_ARRAY_SIZE(new_ids); ni++) {
      for (int new_md = 0; new_md < 2; new_md++) {
        tdm_writer_t out;
        tdm_writer_init(&out);
        const char *nid = new_ids[ni];
        assert_int_equal(tdm_request_rewrite_execute_id(v, orig.buf, orig.len, nid, strlen(nid),
                                                        new_md ? "meta-target" : NULL, new_md ? 11 : 0, &out, &why), 0);
        tdm_execute_t after;
        assert_int_equal(tdm_request_decode_execute(v, out.buf, out.len, &after, &why), 0);
        assert_int_equal(after.id.len, strlen(nid));
        assert_memory_equal(after.id.ptr, nid, strlen(nid));
        if (after.has_metadata_id) {
          assert_int_equal(after.result_metadata_id.len, 11);
          assert_memory_equal(after.result_metadata_id.ptr, new_md ? "meta-target" : "meta-origin", 11);
        }
        /* Everything after the ids is byte-identical. */
        size_t out_tail = after.has_metadata_id ? after.metadata_id_offset + 11 : after.id_offset + strlen(nid);
        assert_int_equal(out.len - out_tail, orig.len - tail_at);
        assert_memory_equal(out.buf + out_tail, orig.buf + tail_at, orig.len - tail_at);
        assert_int_equal(after.params.values_count, 2);
        assert_int_equal(after.params.page_size, 100);
        /* Equal lengths: the same result as patching in place at the recorded offsets. */
        if (strlen(nid) == 16) {
          uint8_t *patched = malloc(orig.len);
          assert_non_null(patched);
          memcpy(patched, orig.buf, orig.len);
          memcpy(patched + before.id_offset, nid, 16);
          if (new_md && before.has_metadata_id) memcpy(patched + before.metadata_id_offset, "meta-target", 11);
          assert_int_equal(out.len, orig.len);
          assert_memory_equal(out.buf, patched, orig.len);
          free(patched);
        }
        tdm_writer_free(&out);
      }
    }
    tdm_writer_free(&orig);
    tdm_writer_free(&vals);
  }
}

static void test_rewrite_execute_refusals(void **state)
{
  uint8_t bad[] = { 0, 5, 1, 2 };
  tdm_writer_t out;
  const char *why = NULL;
  tdm_writer_init(&out);
  assert_int_equal(tdm_request_rewrite_execute_id(TDM_PROTO_V4, bad, sizeof(bad), "x", 1, NULL, 0, &out, &why),
                   TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "prepared id exceeds the body");
  assert_int_equal(out.len, 0);
  uint8_t ok[] = { 0, 1, 0xaa, 0, 1, 0 };
  static uint8_t big[70000];
  assert_int_equal(tdm_request_rewrite_execute_id(TDM_PROTO_V4, ok, sizeof(ok), big, sizeof(big), NULL, 0, &out, &why),
                   TDM_EINVAL);
  tdm_writer_free(&out);
}

/* Maps ids through a small table; counts calls; optionally fails on one id. */
struct id_map {
  int calls;            /* prepared children seen */
  const char *fail_on;  /* id that is "not in the registry", or NULL */
};

static int map_ids(void *ctx, const tdm_batch_child_t *child, tdm_bytes_t *new_id)
{
  struct id_map *m = ctx;
  m->calls++;
  assert_int_equal(child->kind, TDM_REQUEST_BATCH_KIND_PREPARED);
  assert_memory_equal(new_id->ptr, child->id.ptr, (size_t)child->id.len); /* starts as the original */
  size_t fl = m->fail_on ? strlen(m->fail_on) : 0;
  if (m->fail_on && (size_t)child->id.len == fl && !memcmp(child->id.ptr, m->fail_on, fl))
    return TDM_ENOTFOUND;
  if (child->id.len == 3) *new_id = (tdm_bytes_t){ (const uint8_t *)"TARGET-ID-MUCH-LONGER", 21 };
  else if (child->id.len == 16) *new_id = (tdm_bytes_t){ (const uint8_t *)"fedcba9876543210", 16 };
  /* other ids are left unchanged */
  return 0;
}

static void test_rewrite_batch_ids(void **state)
{
  static const uint8_t versions[] = { TDM_PROTO_V2, TDM_PROTO_V4, TDM_PROTO_V5, TDM_PROTO_DSE_V2 };
  static const uint8_t vals[] = { 0, 0, 0, 1, 9 };
  for (size_t vi = 0; vi < sizeof(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_batch_child_t kids[4] = { 0 };
    kids[0].kind = TDM_REQUEST_BATCH_KIND_PREPARED;
    kids[0].id = (tdm_bytes_t){ (const uint8_t *)"abc", 3 };
    kids[0].values_count = 1;
    kids[0].values = vals;
    kids[0].values_len = sizeof(vals);
    kids[1].kind = TDM_REQUEST_BATCH_KIND_QUERY;
    kids[1].query = TDM_STR("UPDATE t SET v = 1 WHERE k = 2");
    kids[2].kind = TDM_REQUEST_BATCH_KIND_PREPARED;
    kids[2].id = (tdm_bytes_t){ (const uint8_t *)"0123456789abcdef", 16 };
    kids[3].kind = TDM_REQUEST_BATCH_KIND_PREPARED;
    kids[3].id = (tdm_bytes_t){ (const uint8_t *)"keep-me", 7 };
    kids[3].values_count = 1;
    kids[3].values = vals;
    kids[3].values_len = sizeof(vals);
    tdm_query_params_t p = { 0 };
    p.consistency = TDM_CL_ALL;
    if (v != TDM_PROTO_V2) {
      p.flags = TDM_QFLAG_DEFAULT_TIMESTAMP;
      p.default_timestamp = 5;
    }
    tdm_writer_t orig, out;
    tdm_writer_init(&orig);
    assert_int_equal(tdm_request_encode_batch(&orig, v, TDM_BATCH_LOGGED, kids, 4, &p), 0);
    struct id_map m = { 0, NULL };
    const char *why = NULL;
    tdm_writer_init(&out);
    assert_int_equal(tdm_request_rewrite_batch_ids(v, orig.buf, orig.len, map_ids, &m, &out, &why), 0);
    assert_int_equal(m.calls, 3);

    tdm_batch_t a, b;
    assert_int_equal(tdm_request_decode_batch(v, orig.buf, orig.len, &a, &why), 0);
    assert_int_equal(tdm_request_decode_batch(v, out.buf, out.len, &b, &why), 0);
    assert_int_equal(out.len, orig.len + (21 - 3));
    assert_int_equal(b.count, 4);
    /* The parameters are byte-identical. */
    assert_int_equal(out.len - b.children_end, orig.len - a.children_end);
    assert_memory_equal(out.buf + b.children_end, orig.buf + a.children_end, orig.len - a.children_end);
    static const char *want[] = { "TARGET-ID-MUCH-LONGER", NULL, "fedcba9876543210", "keep-me" };
    tdm_batch_iter_t ia, ib;
    tdm_batch_child_t ca, cb;
    tdm_batch_iter_init(&ia, &a);
    tdm_batch_iter_init(&ib, &b);
    for (int i = 0; i < 4; i++) {
      assert_int_equal(tdm_batch_next_child(&ia, &ca), 1);
      assert_int_equal(tdm_batch_next_child(&ib, &cb), 1);
      assert_int_equal(cb.kind, ca.kind);
      if (want[i]) {
        assert_int_equal(cb.id.len, strlen(want[i]));
        assert_memory_equal(cb.id.ptr, want[i], strlen(want[i]));
      } else {
        /* A simple statement child is copied whole. */
        assert_int_equal(cb.end_offset - cb.offset, ca.end_offset - ca.offset);
        assert_memory_equal(out.buf + cb.offset, orig.buf + ca.offset, ca.end_offset - ca.offset);
      }
      assert_int_equal(cb.values_len, ca.values_len);
      if (ca.values_len) assert_memory_equal(cb.values, ca.values, ca.values_len);
    }
    tdm_writer_free(&out);

    /* A registry miss aborts with the callback's error. */
    m = (struct id_map){ 0, "0123456789abcdef" };
    tdm_writer_init(&out);
    assert_int_equal(tdm_request_rewrite_batch_ids(v, orig.buf, orig.len, map_ids, &m, &out, &why), TDM_ENOTFOUND);
    assert_int_equal(m.calls, 2);
    tdm_writer_free(&out);
    /* A malformed batch never reaches the callback. */
    m = (struct id_map){ 0, NULL };
    tdm_writer_init(&out);
    assert_int_equal(tdm_request_rewrite_batch_ids(v, orig.buf, orig.len - 1, map_ids, &m, &out, &why),
                     TDM_EPROTO_MALFORMED);
    assert_int_equal(m.calls, 0);
    tdm_writer_free(&out);
    tdm_writer_free(&orig);
  }
}

/* out must equal body with the flag bit set and [string] ks inserted at ks_off. */
static void assert_inserted(const tdm_writer_t *out, const uint8_t *body, size_t len, size_t flags_off,
                            uint32_t bit, size_t ks_off, const char *ks)
{
  size_t kl = strlen(ks);
  assert_int_equal(out->len, len + 2 + kl);
  assert_memory_equal(out->buf, body, flags_off);
  uint32_t f0 = (uint32_t)body[flags_off] << 24 | (uint32_t)body[flags_off + 1] << 16 |
                (uint32_t)body[flags_off + 2] << 8 | body[flags_off + 3];
  uint32_t f1 = (uint32_t)out->buf[flags_off] << 24 | (uint32_t)out->buf[flags_off + 1] << 16 |
                (uint32_t)out->buf[flags_off + 2] << 8 | out->buf[flags_off + 3];
  assert_int_equal(f1, f0 | bit);
  assert_memory_equal(out->buf + flags_off + 4, body + flags_off + 4, ks_off - flags_off - 4);
  assert_int_equal(out->buf[ks_off] << 8 | out->buf[ks_off + 1], kl);
  assert_memory_equal(out->buf + ks_off + 2, ks, kl);
  assert_memory_equal(out->buf + ks_off + 2 + kl, body + ks_off, len - ks_off);
}

static void test_add_keyspace(void **state)
{
  static const uint8_t versions[] = { TDM_PROTO_V5, TDM_PROTO_DSE_V2 };
  for (size_t vi = 0; vi < sizeof(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_writer_t vals, body, out;
    tdm_query_params_t p;
    const char *why = NULL;
    params_with_everything(&p, &vals, v);

    /* QUERY */
    tdm_writer_init(&body);
    assert_int_equal(tdm_request_encode_query(&body, v, TDM_STR("SELECT v FROM t"), &p), 0);
    tdm_query_t q0, q1;
    assert_int_equal(tdm_request_decode_query(v, body.buf, body.len, &q0, &why), 0);
    tdm_writer_init(&out);
    assert_int_equal(tdm_request_add_keyspace(v, TDM_OP_QUERY, body.buf, body.len, TDM_STR("store"), &out, &why), 0);
    assert_int_equal(tdm_request_decode_query(v, out.buf, out.len, &q1, &why), 0);
    assert_true(tdm_str_eq_cstr(q1.params.keyspace, "store"));
    assert_int_equal(q1.params.flags, q0.params.flags | TDM_QFLAG_WITH_KEYSPACE);
    assert_int_equal(q1.params.now_in_seconds, q0.params.now_in_seconds);
    assert_int_equal(q1.params.page_size, 100);
    assert_inserted(&out, body.buf, body.len, q0.params.flags_offset, TDM_QFLAG_WITH_KEYSPACE,
                    q0.params.keyspace_offset, "store");
    /* A second insertion is refused and writes nothing. */
    tdm_writer_t again;
    tdm_writer_init(&again);
    assert_int_equal(tdm_request_add_keyspace(v, TDM_OP_QUERY, out.buf, out.len, TDM_STR("x"), &again, &why),
                     TDM_EINVAL);
    assert_string_equal(why, "request already names a keyspace");
    assert_int_equal(again.len, 0);
    tdm_writer_free(&again);
    tdm_writer_free(&out);
    tdm_writer_free(&body);

    /* PREPARE */
    tdm_writer_init(&body);
    assert_int_equal(tdm_request_encode_prepare(&body, v, TDM_STR("SELECT v FROM t WHERE k = ?"), NULL), 0);
    tdm_prepare_t p0, p1;
    assert_int_equal(tdm_request_decode_prepare(v, body.buf, body.len, &p0, &why), 0);
    tdm_writer_init(&out);
    assert_int_equal(tdm_request_add_keyspace(v, TDM_OP_PREPARE, body.buf, body.len, TDM_STR("store"), &out, &why), 0);
    assert_int_equal(tdm_request_decode_prepare(v, out.buf, out.len, &p1, &why), 0);
    assert_true(tdm_str_eq_cstr(p1.keyspace, "store"));
    assert_int_equal(p1.flags, TDM_PFLAG_WITH_KEYSPACE);
    assert_inserted(&out, body.buf, body.len, p0.flags_offset, TDM_PFLAG_WITH_KEYSPACE, p0.keyspace_offset, "store");
    tdm_writer_free(&out);
    tdm_writer_free(&body);

    /* BATCH (v5 also with now_in_seconds after the keyspace) */
    tdm_batch_child_t kid = { 0 };
    kid.kind = TDM_REQUEST_BATCH_KIND_QUERY;
    kid.query = TDM_STR("DELETE FROM t WHERE k = 1");
    tdm_query_params_t bp = { 0 };
    bp.consistency = TDM_CL_ONE;
    bp.flags = TDM_QFLAG_SERIAL_CONSISTENCY | (v == TDM_PROTO_V5 ? TDM_QFLAG_NOW_IN_SECONDS : 0);
    bp.serial_consistency = TDM_CL_SERIAL;
    bp.now_in_seconds = 5;
    tdm_writer_init(&body);
    assert_int_equal(tdm_request_encode_batch(&body, v, TDM_BATCH_LOGGED, &kid, 1, &bp), 0);
    tdm_batch_t b0, b1;
    assert_int_equal(tdm_request_decode_batch(v, body.buf, body.len, &b0, &why), 0);
    tdm_writer_init(&out);
    assert_int_equal(tdm_request_add_keyspace(v, TDM_OP_BATCH, body.buf, body.len, TDM_STR("store"), &out, &why), 0);
    assert_int_equal(tdm_request_decode_batch(v, out.buf, out.len, &b1, &why), 0);
    assert_true(tdm_str_eq_cstr(b1.params.keyspace, "store"));
    assert_int_equal(b1.params.now_in_seconds, b0.params.now_in_seconds);
    assert_inserted(&out, body.buf, body.len, b0.params.flags_offset, TDM_QFLAG_WITH_KEYSPACE,
                    b0.params.keyspace_offset, "store");
    tdm_writer_free(&out);
    tdm_writer_free(&body);
    tdm_writer_free(&vals);
  }
}

static void test_add_keyspace_refusals(void **state)
{
  uint8_t q4[] = { 0, 0, 0, 1, '*', 0, 1, 0 };
  tdm_writer_t out;
  const char *why = NULL;
  tdm_writer_init(&out);
  assert_int_equal(tdm_request_add_keyspace(TDM_PROTO_V4, TDM_OP_QUERY, q4, sizeof(q4), TDM_STR("k"), &out, &why),
                   TDM_EINVAL);
  assert_string_equal(why, "protocol version has no per-request keyspace");
  assert_int_equal(tdm_request_add_keyspace(TDM_PROTO_DSE_V1, TDM_OP_QUERY, q4, sizeof(q4), TDM_STR("k"), &out, &why),
                   TDM_EINVAL);
  uint8_t ex5[] = { 0, 1, 0xaa, 0, 0, 0, 1, 0, 0, 0, 0 };
  assert_int_equal(tdm_request_add_keyspace(TDM_PROTO_V5, TDM_OP_EXECUTE, ex5, sizeof(ex5), TDM_STR("k"), &out, &why),
                   TDM_EINVAL);
  assert_string_equal(why, "only QUERY, PREPARE and BATCH take a keyspace");
  /* A malformed body is reported as such. */
  assert_int_equal(tdm_request_add_keyspace(TDM_PROTO_V5, TDM_OP_QUERY, q4, sizeof(q4), TDM_STR("k"), &out, &why),
                   TDM_EPROTO_MALFORMED);
  assert_int_equal(out.len, 0);
  tdm_writer_free(&out);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rewrite_execute_id),
    cmocka_unit_test(test_rewrite_execute_refusals),
    cmocka_unit_test(test_rewrite_batch_ids),
    cmocka_unit_test(test_add_keyspace),
    cmocka_unit_test(test_add_keyspace_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
