/* Async dual reads through the route (AR-01, AR-03..07 at the route level): which reads are mirrored,
 * the copy's session (async pool, tracing cleared, the secondary's prepared id), isolation from the
 * client, sampling, the per-worker cap, an unreachable secondary, the copy's own timeout, and its
 * re-prepare. */
#include "test_route_fakes.h"
#include <tandem/proto/classify.h>

static const char *SELECT = "SELECT v FROM ks.t WHERE k = 1";

static harness_t *async_harness(harness_t *hs, uint8_t version)
{
  harness_init(hs, version);
  hs->pw.conf->read_mode = TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY;
  return hs;
}

static void reply_ok(harness_t *hs, int i, const char *marker)
{
  reply(hs, i, TDM_OP_RESULT, 0, (const uint8_t *)marker, strlen(marker));
}

static void test_read_is_mirrored(void **state)
{
  harness_t hs;
  async_harness(&hs, TDM_PROTO_V4);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, TDM_FLAG_TRACING, 4, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 2);
  fake_sent_t *sync = &hs.be.sent[0], *copy = &hs.be.sent[1];
  assert_int_equal(sync->cluster, TDM_CONF_ORIGIN);
  assert_false(sync->key.async);
  assert_int_equal(sync->flags, TDM_FLAG_TRACING);
  assert_int_equal(copy->cluster, TDM_CONF_TARGET);
  assert_true(copy->key.async);
  assert_int_equal(copy->flags, 0);                /* tracing cleared on the copy's own header */
  assert_ptr_equal(copy->slice, sync->slice);      /* the body is shared */
  assert_int_equal(hs.pw.stats.async_inflight, 1);
  /* the copy's error never reaches the client */
  buf_t eb = error_body(4, TDM_ERR_READ_TIMEOUT, "slow");
  reply(&hs, 1, TDM_OP_ERROR, 0, eb.p, eb.n);
  free(eb.p);
  assert_int_equal(hs.client.nresp, 0);
  reply_ok(&hs, 0, "ROWS");
  assert_int_equal(hs.client.nresp, 1);
  assert_memory_equal(hs.client.resp[0].body, "ROWS", 4);
  assert_int_equal(hs.pw.stats.async_reads_sent, 1);
  assert_int_equal(hs.pw.stats.async_failed, 1);
  assert_int_equal(hs.pw.stats.requests_failed[2][TDM_REQERR_read_timeout], 1);
  assert_int_equal(hs.pw.stats.requests_failed[0][TDM_REQERR_read_timeout], 0);
  assert_int_equal(hs.pw.stats.cluster_latency[2][0].count, 1);
  /* the client's answer does not wait for the copy either */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 5, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  reply_ok(&hs, 2, "ROWS2");
  assert_int_equal(hs.client.nresp, 2);
  reply_ok(&hs, 3, "COPY");
  assert_int_equal(hs.client.nresp, 2);
  assert_int_equal(hs.pw.stats.async_failed, 1);
  harness_free(&hs);
}

static void test_not_mirrored(void **state)
{
  static const char *texts[] = {
    "INSERT INTO ks.t (k) VALUES (1)", "SELECT * FROM system_schema.tables", "USE ks", "LIST ROLES",
  };
  harness_t hs;
  async_harness(&hs, TDM_PROTO_V4);
  int expect = 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(texts); i++) {
    tdm_classification_t c;
    tdm_classify(texts[i], strlen(texts[i]), &c);
    int before = hs.be.nsent;
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, (int16_t)i, query_body(4, texts[i], TDM_CL_ONE, 0, NULL)), 0);
    int legs = hs.be.nsent - before;
    assert_int_equal(legs, c.cls == TDM_CLASSIFY_CLASS_WRITE || c.cls == TDM_CLASSIFY_CLASS_USE ? 2 : 1);
    for (int k = before; k < hs.be.nsent; k++) {
      assert_false(hs.be.sent[k].key.async);
      reply_ok(&hs, k, "R");
    }
    expect++;
  }
  /* a follow-up page belongs to the primary */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 9, query_body(4, SELECT, TDM_CL_ONE, TDM_QFLAG_PAGING_STATE, NULL)),
                   0);
  assert_false(hs.be.sent[hs.be.nsent - 1].key.async);
  reply_ok(&hs, hs.be.nsent - 1, "P2");
  /* PREPARE of a read, and virtual tables */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 10, query_body(4, "SELECT * FROM system.local", 1, 0, NULL)), 0);
  assert_int_equal(hs.client.vt_query, 1);
  assert_int_equal(hs.pw.stats.async_reads_sent, 0);
  assert_int_equal(hs.client.nresp, expect + 2);
  harness_free(&hs);
}

/* Answers every pending leg and forgets the recorded sends. */
static void drain(harness_t *hs)
{
  for (int i = 0; i < hs->be.nsent; i++)
    if (!hs->be.sent[i].done && !hs->be.sent[i].abandoned) reply_ok(hs, i, "R");
  for (int i = 0; i < hs->be.nsent; i++) free(hs->be.sent[i].body);
  hs->be.nsent = 0;
  for (int i = 0; i < hs->client.nresp; i++) free(hs->client.resp[i].body);
  hs->client.nresp = 0;
}

static void test_sampling(void **state)
{
  harness_t hs;
  async_harness(&hs, TDM_PROTO_V4);
  hs.pw.conf->async_read_sample_percent = 0;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 1);
  assert_int_equal(hs.pw.stats.async_reads_sampled_out, 1);
  drain(&hs);
  /* 50 %: about half of 400 reads are mirrored */
  hs.pw.conf->async_read_sample_percent = 50;
  int copies = 0;
  for (int i = 0; i < 400; i++) {
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
    for (int k = 0; k < hs.be.nsent; k++) copies += hs.be.sent[k].key.async;
    drain(&hs);
  }
  assert_true(copies > 120 && copies < 280);
  assert_int_equal(hs.pw.stats.async_reads_sent, (uint64_t)copies);
  assert_int_equal(hs.pw.stats.async_reads_sampled_out, 1 + 400 - (uint64_t)copies);
  /* 100 %: every one */
  hs.pw.conf->async_read_sample_percent = 100;
  for (int i = 0; i < 20; i++) {
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 3, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
    assert_int_equal(hs.be.nsent, 2);
    drain(&hs);
  }
  harness_free(&hs);
}

static void test_cap_and_reachability(void **state)
{
  harness_t hs;
  async_harness(&hs, TDM_PROTO_V4);
  hs.pw.conf->async_connector_write_queue_size_frames = 2;
  for (int i = 0; i < 3; i++)
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, (int16_t)i, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 5); /* 3 reads + 2 copies */
  assert_int_equal(hs.pw.stats.async_reads_dropped_queue_full, 1);
  assert_int_equal(hs.pw.stats.async_inflight, 2);
  drain(&hs);
  assert_int_equal(hs.pw.stats.async_inflight, 0);
  /* the cap frees up as copies finish */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 4, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 2);
  drain(&hs);
  /* unreachable secondary, or a refused send: dropped as no_connection, the read itself proceeds */
  hs.be.unreachable[TDM_CONF_TARGET] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 5, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  hs.be.unreachable[TDM_CONF_TARGET] = false;
  hs.be.refuse_send[TDM_CONF_TARGET] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 6, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 2);
  assert_int_equal(hs.pw.stats.async_reads_dropped_no_connection, 2);
  drain(&hs);
  harness_free(&hs);
}

static void test_copy_timeout(void **state)
{
  harness_t hs;
  async_harness(&hs, TDM_PROTO_V4);
  hs.pw.conf->primary_cluster = TDM_CONF_TARGET;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.sent[1].cluster, TDM_CONF_ORIGIN);
  reply_ok(&hs, 0, "R");
  run_for(&hs, 80);
  assert_true(hs.be.sent[1].abandoned);
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(hs.pw.stats.requests_failed[2][TDM_REQERR_client_timeout], 1);
  assert_int_equal(hs.pw.stats.async_failed, 1);
  harness_free(&hs);
}

static void test_copy_reprepare(void **state)
{
  static const uint8_t O1[4] = { 1, 1, 1, 1 }, T1[6] = { 2, 2, 2, 2, 2, 2 };
  harness_t hs;
  async_harness(&hs, TDM_PROTO_V4);
  tdm_prepared_entry_t *e;
  assert_int_equal(tdm_prepared_entry_new(O1, 4, T1, 6, TDM_STR("SELECT v FROM t WHERE k = ?"), TDM_STR("ks"),
                                          TDM_CLASSIFY_CLASS_READ, 0, &e), 0);
  tdm_prepared_registry_put(hs.pw.registry, e);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 4, NULL, 0, TDM_CL_ONE)), 0);
  assert_int_equal(hs.be.nsent, 2);
  tdm_execute_t x;
  assert_int_equal(tdm_request_decode_execute(4, hs.be.sent[1].body, hs.be.sent[1].len, &x, NULL), 0);
  assert_memory_equal(x.id.ptr, T1, 6); /* the copy carries TARGET's id */
  reply_ok(&hs, 0, "ROWS");
  buf_t u = unprepared_body(4, T1, 6);
  reply(&hs, 1, TDM_OP_ERROR, 0, u.p, u.n);
  free(u.p);
  fake_sent_t *p = &hs.be.sent[2];
  assert_int_equal(p->opcode, TDM_OP_PREPARE);
  assert_true(p->key.async);
  assert_int_equal(p->pin, 11);
  buf_t pb = prepared_body(4, T1, 6, NULL, 0);
  reply(&hs, 2, TDM_OP_RESULT, 0, pb.p, pb.n);
  free(pb.p);
  assert_int_equal(hs.be.sent[3].opcode, TDM_OP_EXECUTE);
  assert_true(hs.be.sent[3].key.async);
  reply_ok(&hs, 3, "COPY");
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(hs.pw.stats.pscache_reprepares_ok_target, 1);
  assert_int_equal(hs.pw.stats.async_failed, 0);
  harness_free(&hs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_read_is_mirrored),
    cmocka_unit_test(test_not_mirrored),
    cmocka_unit_test(test_sampling),
    cmocka_unit_test(test_cap_and_reachability),
    cmocka_unit_test(test_copy_timeout),
    cmocka_unit_test(test_copy_reprepare),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
