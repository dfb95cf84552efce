/* Body accounting of the route (architecture.md §6 "copies of a request body"; docs/internals/route.md
 * "Body copies"): request_bodies_forwarded, request_body_copies and request_body_copies_forced per leg,
 * for plain dual writes (v4, v4 lz4, v5, v5 lz4), TARGET prepared ids patched in place or re-encoded,
 * BATCH child ids, the v5 metadata-id translation, the v5 keyspace rewrite, the resend after a
 * re-prepare, and mirrored reads. Each count is checked against what the fake backend really got. */
#include "test_route_fakes.h"
#include <tandem/proto/classify.h>
#include <tandem/proto/compress.h>

#define N 8 /* requests per workload: 2 legs each, 4N legs per harness stay under FAKE_MAX */

static const uint8_t O1[16] = { 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff };
static const uint8_t T1[16] = { 0x7a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xee };
static const uint8_t T_SHORT[8] = { 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x01 };
static const char *UPD = "UPDATE ks.t SET v = ? WHERE k = ?";

/* The nine counters as [forwarded, copies, forced][origin, target, async]. */
typedef struct bodies_s {
  uint64_t v[3][3]; /* counter kind x leg */
} bodies_t;

static bodies_t bodies_of(const harness_t *hs)
{
  const tdm_proxy_stats_t *s = &hs->pw.stats;
  bodies_t b = { { { s->request_bodies_forwarded_origin, s->request_bodies_forwarded_target,
                     s->request_bodies_forwarded_async },
                   { s->request_body_copies_origin, s->request_body_copies_target, s->request_body_copies_async },
                   { s->request_body_copies_forced_origin, s->request_body_copies_forced_target,
                     s->request_body_copies_forced_async } } };
  return b;
}

/* Counter growth since `before` must be exactly fwd / copies / forced (each [origin, target, async]). */
static void expect_growth(const harness_t *hs, const bodies_t *before, const uint64_t fwd[3], const uint64_t copies[3],
                          const uint64_t forced[3])
{
  static const char *const kinds[3] = { "forwarded", "copies", "forced" };
  static const char *const legs[3] = { "origin", "target", "async" };
  const uint64_t *want[3] = { fwd, copies, forced };
  bodies_t now = bodies_of(hs);
  for (int k = 0; k < 3; k++)
    for (int l = 0; l < 3; l++)
      if (now.v[k][l] - before->v[k][l] != want[k][l])
        fail_msg("%s{leg=%s} grew by %llu, want %llu", kinds[k], legs[l],
                 (unsigned long long)(now.v[k][l] - before->v[k][l]), (unsigned long long)want[k][l]);
}

static void put_entry(harness_t *hs, const uint8_t *t, size_t tn, const char *text, tdm_stmt_class_t cls,
                      const uint8_t *om, size_t omn, const uint8_t *tm, size_t tmn)
{
  tdm_prepared_entry_t *e;
  assert_int_equal(tdm_prepared_entry_new(O1, 16, t, tn, tdm_str_from(text), TDM_STR("ks"), (int)cls, 0, &e), 0);
  if (om) tdm_prepared_entry_set_meta_ids(e, om, omn, tm, tmn);
  tdm_prepared_registry_put(hs->pw.registry, e);
}

static void set_compression(harness_t *hs, tdm_compression_t c)
{
  hs->client.view.compression = c;
  for (int k = 0; k < 2; k++) hs->client.view.key[k].compression = c;
}

/* v3/v4 bodies travel compressed when the client compresses: the frame flag says so. */
static buf_t maybe_compress(const harness_t *hs, buf_t b, uint8_t *flags)
{
  *flags = 0;
  if (hs->client.view.compression == TDM_COMPRESSION_NONE || tdm_proto_has_segments(hs->client.view.version)) return b;
  buf_t z;
  assert_int_equal(tdm_body_compress(hs->client.view.compression, b.p, b.n, &z.p, &z.n), 0);
  free(b.p);
  *flags = TDM_FLAG_COMPRESSED;
  return z;
}

/* Sends one request and answers every leg it produced (Void-like marker); returns the first leg's index. */
static int round_trip(harness_t *hs, uint8_t opcode, int16_t stream, buf_t b)
{
  uint8_t flags;
  b = maybe_compress(hs, b, &flags);
  int first = hs->be.nsent, answered = hs->client.nresp;
  assert_int_equal(send_req(hs, opcode, flags, stream, b), 0);
  assert_true(hs->be.nsent > first);
  for (int i = first; i < hs->be.nsent; i++)
    if (!hs->be.sent[i].done) reply(hs, i, TDM_OP_RESULT, 0, (const uint8_t *)"R", 1);
  assert_int_equal(hs->client.nresp, answered + 1);
  return first;
}

/* N dual-write QUERYs and N EXECUTEs of O1; each request's two legs checked for sharing the client's
 * body (same slice) or not. */
static void workload(harness_t *hs, bool execute_shared, const uint8_t *om, size_t omn)
{
  uint8_t v = hs->client.view.version;
  for (int i = 0; i < N; i++) {
    char q[80];
    snprintf(q, sizeof(q), "INSERT INTO ks.t (k, v) VALUES (%d, 'x')", i);
    int l = round_trip(hs, TDM_OP_QUERY, (int16_t)i, query_body(v, q, TDM_CL_ONE, 0, NULL));
    assert_ptr_equal(hs->be.sent[l].slice, hs->be.sent[l + 1].slice);
    l = round_trip(hs, TDM_OP_EXECUTE, (int16_t)(N + i), execute_body(v, O1, 16, om, omn, TDM_CL_ONE));
    if (execute_shared)
      assert_ptr_equal(hs->be.sent[l].slice, hs->be.sent[l + 1].slice);
    else
      assert_ptr_not_equal(hs->be.sent[l].slice, hs->be.sent[l + 1].slice);
  }
}

/* v4, same ids on both clusters: 2N bodies per leg, not one copy; both legs carry the client's slice. */
static void test_v4_no_patch(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  workload(&hs, true, NULL, 0);
  expect_growth(&hs, &before, (uint64_t[3]){ 2 * N, 2 * N, 0 }, (uint64_t[3]){ 0, 0, 0 }, (uint64_t[3]){ 0, 0, 0 });
  harness_free(&hs);
}

/* v4 lz4: the bodies pass compressed, as received; decompressing them to route is a decode, not a copy. */
static void test_v4_lz4_no_patch(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  set_compression(&hs, TDM_COMPRESSION_LZ4);
  put_entry(&hs, O1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  workload(&hs, true, NULL, 0);
  for (int i = 0; i < hs.be.nsent; i++) assert_int_equal(hs.be.sent[i].flags, TDM_FLAG_COMPRESSED);
  expect_growth(&hs, &before, (uint64_t[3]){ 2 * N, 2 * N, 0 }, (uint64_t[3]){ 0, 0, 0 }, (uint64_t[3]){ 0, 0, 0 });
  harness_free(&hs);
}

/* v5, same ids and (as cqlmock and Cassandra answer a write) the same metadata id on both: the route
 * shares the body, and the backend's segments reference it (header and CRC inline): no copy. */
static void test_v5_no_patch(void **state)
{
  static const uint8_t M[16] = { 0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
                                 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e };
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  put_entry(&hs, O1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, M, 16, M, 16);
  bodies_t before = bodies_of(&hs);
  workload(&hs, true, M, 16);
  expect_growth(&hs, &before, (uint64_t[3]){ 2 * N, 2 * N, 0 }, (uint64_t[3]){ 0, 0, 0 }, (uint64_t[3]){ 0, 0, 0 });
  harness_free(&hs);
}

/* v5 lz4: compressing the envelope into its segment is the one copy per leg, and it is forced. */
static void test_v5_lz4(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  set_compression(&hs, TDM_COMPRESSION_LZ4);
  put_entry(&hs, O1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  workload(&hs, true, NULL, 0);
  expect_growth(&hs, &before, (uint64_t[3]){ 2 * N, 2 * N, 0 }, (uint64_t[3]){ 2 * N, 2 * N, 0 },
                (uint64_t[3]){ 2 * N, 2 * N, 0 });
  harness_free(&hs);
}

/* TARGET's id differs: one forced copy per EXECUTE on the TARGET leg only, patched in place (equal
 * lengths) or re-encoded; the QUERYs stay uncopied. */
static void test_v4_target_id_differs(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  workload(&hs, false, NULL, 0);
  expect_growth(&hs, &before, (uint64_t[3]){ 2 * N, 2 * N, 0 }, (uint64_t[3]){ 0, N, 0 }, (uint64_t[3]){ 0, N, 0 });
  harness_free(&hs);

  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, T_SHORT, 8, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  before = bodies_of(&hs);
  workload(&hs, false, NULL, 0);
  expect_growth(&hs, &before, (uint64_t[3]){ 2 * N, 2 * N, 0 }, (uint64_t[3]){ 0, N, 0 }, (uint64_t[3]){ 0, N, 0 });
  harness_free(&hs);
}

/* v4 lz4 with a patched id: still one copy (the TARGET body is rebuilt uncompressed, never recompressed);
 * ORIGIN keeps the client's compressed bytes. */
static void test_v4_lz4_target_id_differs(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  set_compression(&hs, TDM_COMPRESSION_LZ4);
  put_entry(&hs, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  workload(&hs, false, NULL, 0);
  for (int i = 0; i < hs.be.nsent; i++) {
    const fake_sent_t *s = &hs.be.sent[i];
    bool rebuilt = s->opcode == TDM_OP_EXECUTE && s->cluster == TDM_CONF_TARGET;
    assert_int_equal(s->flags, rebuilt ? 0 : TDM_FLAG_COMPRESSED);
  }
  expect_growth(&hs, &before, (uint64_t[3]){ 2 * N, 2 * N, 0 }, (uint64_t[3]){ 0, N, 0 }, (uint64_t[3]){ 0, N, 0 });
  harness_free(&hs);
}

/* v5 metadata id: the client's ORIGIN value is translated on the TARGET leg only (forced); with lz4
 * each leg adds its forced compression copy. */
static void metadata_id_case(bool lz4)
{
  static const uint8_t OM[4] = { 0xa1, 0xa2, 0xa3, 0xa4 }, TM[4] = { 0xb1, 0xb2, 0xb3, 0xb4 };
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  if (lz4) set_compression(&hs, TDM_COMPRESSION_LZ4);
  put_entry(&hs, O1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, OM, 4, TM, 4);
  bodies_t before = bodies_of(&hs);
  int l = round_trip(&hs, TDM_OP_EXECUTE, 1, execute_body(5, O1, 16, OM, 4, TDM_CL_ONE));
  int t = hs.be.sent[l].cluster == TDM_CONF_TARGET ? l : l + 1;
  tdm_execute_t x;
  assert_int_equal(tdm_request_decode_execute(5, hs.be.sent[t].body, hs.be.sent[t].len, &x, NULL), 0);
  assert_memory_equal(x.result_metadata_id.ptr, TM, 4);
  uint64_t z = lz4;
  expect_growth(&hs, &before, (uint64_t[3]){ 1, 1, 0 }, (uint64_t[3]){ z, 1 + z, 0 }, (uint64_t[3]){ z, 1 + z, 0 });
  harness_free(&hs);
}

static void test_v5_metadata_id(void **state) { metadata_id_case(false); }
static void test_v5_lz4_metadata_id(void **state) { metadata_id_case(true); }

/* v5 session keyspace: a QUERY naming none is rewritten once, and each leg carries the rewrite (an
 * avoidable copy: v5 pools are not keyed by keyspace); the segments reference the rewrite. */
static void test_v5_keyspace_rewrite(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  snprintf(hs.client.keyspace, sizeof(hs.client.keyspace), "ks");
  bodies_t before = bodies_of(&hs);
  int l = round_trip(&hs, TDM_OP_QUERY, 1, query_body(5, "INSERT INTO t (k) VALUES (1)", TDM_CL_ONE, 0, NULL));
  assert_ptr_equal(hs.be.sent[l].slice, hs.be.sent[l + 1].slice); /* one rewrite, shared by both legs */
  tdm_query_t q;
  assert_int_equal(tdm_request_decode_query(5, hs.be.sent[l].body, hs.be.sent[l].len, &q, NULL), 0);
  assert_true(tdm_str_eq_cstr(q.params.keyspace, "ks"));
  expect_growth(&hs, &before, (uint64_t[3]){ 1, 1, 0 }, (uint64_t[3]){ 1, 1, 0 }, (uint64_t[3]){ 0, 0, 0 });
  harness_free(&hs);
}

static buf_t batch_of_o1(void)
{
  tdm_batch_child_t ch[2];
  memset(ch, 0, sizeof(ch));
  ch[0].kind = TDM_REQUEST_BATCH_KIND_QUERY;
  ch[0].query = TDM_STR("INSERT INTO ks.t (k) VALUES (1)");
  ch[1].kind = TDM_REQUEST_BATCH_KIND_PREPARED;
  ch[1].id = (tdm_bytes_t){ O1, 16 };
  tdm_query_params_t p = { .consistency = TDM_CL_ONE, .paging_state = { NULL, -1 } };
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V4, TDM_BATCH_LOGGED, ch, 2, &p), 0);
  return take(&w);
}

/* BATCH: a prepared child whose TARGET id differs costs the TARGET leg one forced copy; same ids none. */
static void test_batch_child_ids(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  int l = round_trip(&hs, TDM_OP_BATCH, 1, batch_of_o1());
  assert_ptr_equal(hs.be.sent[l].slice, hs.be.sent[l + 1].slice);
  expect_growth(&hs, &before, (uint64_t[3]){ 1, 1, 0 }, (uint64_t[3]){ 0, 0, 0 }, (uint64_t[3]){ 0, 0, 0 });
  put_entry(&hs, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0); /* replaces the entry */
  before = bodies_of(&hs);
  l = round_trip(&hs, TDM_OP_BATCH, 2, batch_of_o1());
  assert_ptr_not_equal(hs.be.sent[l].slice, hs.be.sent[l + 1].slice);
  expect_growth(&hs, &before, (uint64_t[3]){ 1, 1, 0 }, (uint64_t[3]){ 0, 1, 0 }, (uint64_t[3]){ 0, 1, 0 });
  harness_free(&hs);
}

/* UNPREPARED from TARGET, re-prepared under a new id: the internal PREPARE is not a client body; the
 * resend is one more forwarded body, rebuilt for the new id (one more forced copy). */
static void test_reprepare_resend(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  int o = hs.be.sent[0].cluster == TDM_CONF_ORIGIN ? 0 : 1, t = 1 - o;
  reply(&hs, o, TDM_OP_RESULT, 0, (const uint8_t *)"O", 1);
  buf_t u = unprepared_body(4, T1, 16);
  reply(&hs, t, TDM_OP_ERROR, 0, u.p, u.n);
  free(u.p);
  assert_int_equal(hs.be.sent[hs.be.nsent - 1].opcode, TDM_OP_PREPARE);
  expect_growth(&hs, &before, (uint64_t[3]){ 1, 1, 0 }, (uint64_t[3]){ 0, 1, 0 }, (uint64_t[3]){ 0, 1, 0 });
  buf_t p = prepared_body(4, T_SHORT, 8, NULL, 0);
  reply(&hs, hs.be.nsent - 1, TDM_OP_RESULT, 0, p.p, p.n);
  free(p.p);
  assert_int_equal(hs.be.sent[hs.be.nsent - 1].opcode, TDM_OP_EXECUTE);
  reply(&hs, hs.be.nsent - 1, TDM_OP_RESULT, 0, (const uint8_t *)"T", 1);
  assert_int_equal(hs.client.nresp, 1);
  expect_growth(&hs, &before, (uint64_t[3]){ 1, 2, 0 }, (uint64_t[3]){ 0, 2, 0 }, (uint64_t[3]){ 0, 2, 0 });
  harness_free(&hs);
}

/* Mirrored reads: the copy is its own leg (async); it shares the client's body unless the secondary's
 * id differs, and then its rewrite is a forced copy of the async leg. */
static void test_async_reads(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->read_mode = TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY;
  put_entry(&hs, T1, 16, "SELECT v FROM ks.t WHERE k = ?", TDM_CLASSIFY_CLASS_READ, NULL, 0, NULL, 0);
  bodies_t before = bodies_of(&hs);
  int l = round_trip(&hs, TDM_OP_QUERY, 1, query_body(4, "SELECT v FROM ks.t WHERE k = 1", TDM_CL_ONE, 0, NULL));
  assert_true(hs.be.sent[l + 1].key.async);
  assert_ptr_equal(hs.be.sent[l].slice, hs.be.sent[l + 1].slice);
  l = round_trip(&hs, TDM_OP_EXECUTE, 2, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE));
  assert_true(hs.be.sent[l + 1].key.async);
  assert_ptr_not_equal(hs.be.sent[l].slice, hs.be.sent[l + 1].slice);
  expect_growth(&hs, &before, (uint64_t[3]){ 2, 0, 2 }, (uint64_t[3]){ 0, 0, 1 }, (uint64_t[3]){ 0, 0, 1 });
  harness_free(&hs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_v4_no_patch),
    cmocka_unit_test(test_v4_lz4_no_patch),
    cmocka_unit_test(test_v5_no_patch),
    cmocka_unit_test(test_v5_lz4),
    cmocka_unit_test(test_v4_target_id_differs),
    cmocka_unit_test(test_v4_lz4_target_id_differs),
    cmocka_unit_test(test_v5_metadata_id),
    cmocka_unit_test(test_v5_lz4_metadata_id),
    cmocka_unit_test(test_v5_keyspace_rewrite),
    cmocka_unit_test(test_batch_child_ids),
    cmocka_unit_test(test_reprepare_resend),
    cmocka_unit_test(test_async_reads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
