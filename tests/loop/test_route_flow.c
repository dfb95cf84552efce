/* Route lifecycle on a real loop with a fake backend and client (RT-*, AG-01..11 at the route level):
 * reads to one cluster, dual writes and their aggregation, early answers, unreachable clusters,
 * PRIMARY_WINS, timeouts (silent, queued, lost), detached clients, USE, v5 keyspaces, local answers,
 * LWT comparison, compressed bodies and metrics. Every test ends with no request in flight, gauges at
 * zero, every client reference returned and uv_loop_close() == 0. */
#include "test_route_fakes.h"
#include <tandem/proto/compress.h>
#include <tandem/route/aggregate.h>

static int sent_to(harness_t *hs, int cluster)
{
  for (int i = hs->be.nsent - 1; i >= 0; i--)
    if (hs->be.sent[i].cluster == cluster) return i;
  fail_msg("no leg sent to cluster %d", cluster);
  return -1;
}

static void reply_bytes(harness_t *hs, int i, const char *marker)
{
  reply(hs, i, TDM_OP_RESULT, 0, (const uint8_t *)marker, strlen(marker));
}

static void reply_error(harness_t *hs, int i, uint32_t code, const char *msg)
{
  buf_t b = error_body(hs->client.view.version, code, msg);
  reply(hs, i, TDM_OP_ERROR, 0, b.p, b.n);
  free(b.p);
}

static void assert_body(const fake_resp_t *r, const char *marker)
{
  assert_int_equal(r->len, strlen(marker));
  assert_memory_equal(r->body, marker, r->len);
}

static const char *INSERT = "INSERT INTO ks.t (k, v) VALUES (1, 2)";
static const char *SELECT = "SELECT v FROM ks.t WHERE k = 1";

static void test_read_goes_to_primary_only(void **state)
{
  for (int primary = 0; primary < 2; primary++) {
    harness_t hs;
    harness_init(&hs, TDM_PROTO_V4);
    hs.pw.conf->primary_cluster = primary;
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, TDM_FLAG_TRACING, 11, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
    assert_int_equal(hs.be.nsent, 1);
    assert_int_equal(hs.be.sent[0].cluster, primary);
    assert_int_equal(hs.be.sent[0].flags, TDM_FLAG_TRACING); /* flags pass through */
    assert_int_equal(hs.pw.stats.reads_inflight_origin + hs.pw.stats.reads_inflight_target, 1);
    reply(&hs, 0, TDM_OP_RESULT, TDM_FLAG_TRACING | TDM_FLAG_WARNING, (const uint8_t *)"ROWS", 4);
    assert_int_equal(hs.client.nresp, 1);
    assert_int_equal(hs.client.resp[0].stream, 11);
    assert_int_equal(hs.client.resp[0].flags, TDM_FLAG_TRACING | TDM_FLAG_WARNING);
    assert_body(&hs.client.resp[0], "ROWS");
    assert_int_equal(hs.pw.stats.proxy_latency[primary].count, 1);
    assert_int_equal(hs.pw.stats.proxy_latency[2].count, 0);
    assert_int_equal(hs.pw.stats.cluster_latency[primary][0].count, 1);
    harness_free(&hs);
  }
}

static void test_dual_write_success_shares_body(void **state)
{
  for (int primary = 0; primary < 2; primary++) {
    harness_t hs;
    harness_init(&hs, TDM_PROTO_V4);
    hs.pw.conf->primary_cluster = primary;
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 3, query_body(4, INSERT, TDM_CL_QUORUM, 0, NULL)), 0);
    assert_int_equal(hs.be.nsent, 2);
    assert_int_equal(hs.be.sent[0].cluster, primary); /* primary first */
    assert_ptr_equal(hs.be.sent[0].slice, hs.be.sent[1].slice); /* one body, no copy */
    assert_int_equal(hs.pw.stats.writes_inflight, 1);
    reply_bytes(&hs, sent_to(&hs, TDM_CONF_TARGET), "T-VOID");
    assert_int_equal(hs.client.nresp, 0); /* waits for both */
    reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O-VOID");
    assert_int_equal(hs.client.nresp, 1);
    assert_body(&hs.client.resp[0], primary ? "T-VOID" : "O-VOID");
    assert_int_equal(hs.pw.stats.proxy_latency[2].count, 1);
    assert_int_equal(hs.pw.stats.failed_writes_origin + hs.pw.stats.failed_writes_target, 0);
    harness_free(&hs);
  }
}

static void test_not_executed_error_is_rewritten(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 5, query_body(4, INSERT, TDM_CL_QUORUM, 0, NULL)), 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O-VOID");
  reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_UNAVAILABLE, "Cannot achieve consistency level QUORUM");
  assert_int_equal(hs.client.nresp, 1);
  tdm_response_error_t e = client_error(&hs, 0);
  assert_int_equal(e.code, TDM_ERR_SERVER_ERROR);
  assert_true(msg_is(e.message, "tandem: applied on ORIGIN, failed on TARGET: UNAVAILABLE: Cannot achieve "
                                "consistency level QUORUM"));
  assert_int_equal(hs.pw.stats.failed_writes_target, 1);
  assert_int_equal(hs.pw.stats.requests_failed[1][TDM_REQERR_unavailable], 1);
  assert_int_equal(hs.pw.stats.write_divergence[0][TDM_CONF_TARGET], 1);
  harness_free(&hs);
}

static void test_secondary_error_forwarded_and_both_errors(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 5, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O-VOID");
  reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_WRITE_FAILURE, "boom");
  tdm_response_error_t e = client_error(&hs, 0);
  assert_int_equal(e.code, TDM_ERR_WRITE_FAILURE); /* outside the rewrite set: relayed as is */
  assert_true(msg_is(e.message, "boom"));

  /* both fail, primary TARGET: TARGET's error (zdm-proxy returned ORIGIN's) */
  hs.pw.conf->primary_cluster = TDM_CONF_TARGET;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 6, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_error(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_ERR_OVERLOADED, "origin busy");
  assert_int_equal(hs.client.nresp, 1);
  reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_OVERLOADED, "target busy");
  e = client_error(&hs, 1);
  assert_int_equal(e.code, TDM_ERR_OVERLOADED);
  assert_true(msg_is(e.message, "target busy"));
  assert_int_equal(hs.pw.stats.failed_writes_target, 1);
  assert_int_equal(hs.pw.stats.failed_writes_both, 1);
  harness_free(&hs);
}

static void test_early_answer_then_metrics(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 9, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_error(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_ERR_INVALID, "bad column");
  assert_int_equal(hs.client.nresp, 1); /* decided: no waiting for TARGET */
  assert_int_equal(client_error(&hs, 0).code, TDM_ERR_INVALID);
  assert_int_equal(tdm_route_inflight(&hs.pw), 1);
  assert_int_equal(hs.pw.stats.failed_writes_origin, 0); /* recorded once both are known */
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_TARGET), "T-VOID");
  assert_int_equal(hs.client.nresp, 1); /* never a second answer */
  assert_int_equal(hs.pw.stats.failed_writes_origin, 1);
  assert_int_equal(hs.pw.stats.writes_inflight, 0);
  harness_free(&hs);
}

static void test_unreachable_sends_nothing(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.be.unreachable[TDM_CONF_TARGET] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 4, query_body(4, INSERT, TDM_CL_LOCAL_QUORUM, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 0); /* ORIGIN received nothing */
  tdm_response_error_t e = client_error(&hs, 0);
  assert_int_equal(e.code, TDM_ERR_UNAVAILABLE);
  assert_int_equal(e.consistency, TDM_CL_LOCAL_QUORUM);
  assert_int_equal(e.required, 1);
  assert_int_equal(e.alive, 0);
  assert_true(msg_is(e.message, "tandem: no reachable TARGET node"));
  /* a send refused after the other leg went out: that leg is abandoned, same answer */
  hs.be.unreachable[TDM_CONF_TARGET] = false;
  hs.be.refuse_send[TDM_CONF_TARGET] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 5, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 1);
  assert_true(hs.be.sent[0].abandoned);
  assert_true(msg_is(client_error(&hs, 1).message, "tandem: no reachable TARGET node"));
  harness_free(&hs);
}

static void test_primary_wins(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->write_divergence_policy = TDM_CONF_DIVERGENCE_PRIMARY_WINS;
  /* unreachable secondary: primary only, counted */
  hs.be.unreachable[TDM_CONF_TARGET] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 1);
  reply_bytes(&hs, 0, "O-VOID");
  assert_body(&hs.client.resp[0], "O-VOID");
  assert_int_equal(hs.pw.stats.write_divergence[0][TDM_CONF_TARGET], 1);
  /* secondary slow: the primary's success answers at once; a later secondary error changes nothing */
  hs.be.unreachable[TDM_CONF_TARGET] = false;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O-VOID2");
  assert_int_equal(hs.client.nresp, 2);
  assert_body(&hs.client.resp[1], "O-VOID2");
  reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_WRITE_TIMEOUT, "slow");
  assert_int_equal(hs.client.nresp, 2);
  assert_int_equal(hs.pw.stats.write_divergence[0][TDM_CONF_TARGET], 2);
  assert_int_equal(hs.pw.stats.failed_writes_target, 1);
  harness_free(&hs);
}

static void test_timeouts(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  /* write: TARGET silent after ORIGIN applied */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, INSERT, TDM_CL_QUORUM, 0, NULL)), 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O-VOID");
  int t = sent_to(&hs, TDM_CONF_TARGET);
  run_for(&hs, 80);
  assert_true(hs.be.sent[t].abandoned);
  tdm_response_error_t e = client_error(&hs, 0);
  assert_int_equal(e.code, TDM_ERR_WRITE_TIMEOUT);
  assert_int_equal(e.consistency, TDM_CL_QUORUM);
  assert_int_equal(e.received, 0);
  assert_int_equal(e.block_for, 1);
  assert_true(tdm_str_eq_cstr(e.write_type, "SIMPLE"));
  assert_true(msg_is(e.message, "tandem: no response from TARGET within 40 ms (applied on ORIGIN)"));
  assert_int_equal(hs.pw.stats.requests_failed[1][TDM_REQERR_client_timeout], 1);
  assert_int_equal(hs.pw.stats.failed_writes_target, 1);

  /* read: READ_TIMEOUT */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  run_for(&hs, 80);
  e = client_error(&hs, 1);
  assert_int_equal(e.code, TDM_ERR_READ_TIMEOUT);
  assert_int_equal(e.data_present, 0);
  assert_true(msg_is(e.message, "tandem: no response from ORIGIN within 40 ms"));
  assert_int_equal(hs.pw.stats.failed_reads_origin, 1);

  /* DDL, both silent: SERVER_ERROR naming both */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 3, query_body(4, "CREATE TABLE ks.x (k int PRIMARY KEY)", 0, 0,
                                                                   NULL)), 0);
  run_for(&hs, 80);
  e = client_error(&hs, 2);
  assert_int_equal(e.code, TDM_ERR_SERVER_ERROR);
  assert_true(msg_is(e.message, "tandem: no response from ORIGIN and TARGET within 40 ms"));

  /* still queued (never written) when the timer fires: OVERLOADED, nothing ran */
  hs.be.queue[TDM_CONF_ORIGIN] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 4, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  run_for(&hs, 80);
  e = client_error(&hs, 3);
  assert_int_equal(e.code, TDM_ERR_OVERLOADED);
  assert_true(msg_is(e.message, "tandem: no capacity to ORIGIN within 40 ms"));
  assert_int_equal(hs.client.nresp, 4);
  harness_free(&hs);
}

static void test_batch_timeout_write_type(void **state)
{
  static const struct { uint8_t type; const char *wt; } cases[] = {
    { TDM_BATCH_LOGGED, "BATCH" }, { TDM_BATCH_UNLOGGED, "UNLOGGED_BATCH" }, { TDM_BATCH_COUNTER, "COUNTER" },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    harness_t hs;
    harness_init(&hs, TDM_PROTO_V4);
    tdm_batch_child_t ch = { .kind = TDM_REQUEST_BATCH_KIND_QUERY, .query = TDM_STR("UPDATE ks.c SET n = n + 1 WHERE k = 1") };
    tdm_query_params_t p = { .consistency = TDM_CL_TWO, .paging_state = { NULL, -1 } };
    tdm_writer_t w;
    tdm_writer_init(&w);
    assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V4, cases[i].type, &ch, 1, &p), 0);
    assert_int_equal(send_req(&hs, TDM_OP_BATCH, 0, 8, take(&w)), 0);
    assert_int_equal(hs.be.nsent, 2);
    reply_bytes(&hs, sent_to(&hs, TDM_CONF_TARGET), "T");
    run_for(&hs, 80);
    tdm_response_error_t e = client_error(&hs, 0);
    assert_int_equal(e.code, TDM_ERR_WRITE_TIMEOUT);
    assert_int_equal(e.consistency, TDM_CL_TWO);
    assert_true(tdm_str_eq_cstr(e.write_type, cases[i].wt));
    assert_true(msg_is(e.message, "tandem: no response from ORIGIN within 40 ms (applied on TARGET)"));
    if (cases[i].type == TDM_BATCH_COUNTER) assert_int_equal(hs.pw.stats.write_divergence[1][TDM_CONF_ORIGIN], 1);
    harness_free(&hs);
  }
}

static void test_connection_lost(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  fail_leg(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ECLOSED, true, "10.0.1.1:9042");
  tdm_response_error_t e = client_error(&hs, 0);
  assert_int_equal(e.code, TDM_ERR_WRITE_TIMEOUT);
  assert_true(msg_is(e.message, "tandem: connection to TARGET 10.0.1.1:9042 lost (applied on ORIGIN)"));
  /* a failure before the write means nothing ran there: UNAVAILABLE, rewritten since ORIGIN applied */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  fail_leg(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_EUNAVAILABLE, false, "10.0.1.1:9042");
  e = client_error(&hs, 1);
  assert_int_equal(e.code, TDM_ERR_SERVER_ERROR);
  assert_true(msg_is(e.message, "tandem: applied on ORIGIN, failed on TARGET: UNAVAILABLE: tandem: no reachable "
                                "TARGET node"));
  harness_free(&hs);
}

static void test_client_gone(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.client.refs, 2); /* one per request */
  tdm_route_client_gone(&hs.client);
  reply_bytes(&hs, 0, "O");
  reply_bytes(&hs, 1, "T");
  run_for(&hs, 80); /* the read times out unanswered */
  assert_int_equal(hs.client.nresp, 0);
  assert_int_equal(hs.be.abandons, 1);
  assert_int_equal(hs.client.refs, 0);
  harness_free(&hs);
}

static void test_use(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->primary_cluster = TDM_CONF_TARGET;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, "USE \"MyKs\"", 0, 0, NULL)), 0);
  assert_int_equal(hs.be.nsent, 2);
  assert_string_equal(hs.be.sent[0].ks, "MyKs"); /* v4: the pool of the new keyspace */
  assert_string_equal(hs.be.sent[1].ks, "MyKs");
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O-SETKS");
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_TARGET), "T-SETKS");
  assert_body(&hs.client.resp[0], "T-SETKS");
  assert_int_equal(hs.client.set_keyspace_calls, 1);
  assert_string_equal(hs.client.keyspace, "MyKs");
  /* either side fails: the aggregated error, keyspace unchanged, even under PRIMARY_WINS */
  hs.pw.conf->write_divergence_policy = TDM_CONF_DIVERGENCE_PRIMARY_WINS;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, "USE other", 0, 0, NULL)), 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_TARGET), "T-SETKS");
  assert_int_equal(hs.client.nresp, 1);
  reply_error(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_ERR_INVALID, "Keyspace 'other' does not exist");
  assert_int_equal(client_error(&hs, 1).code, TDM_ERR_INVALID);
  assert_int_equal(hs.client.set_keyspace_calls, 1);
  assert_string_equal(hs.client.keyspace, "MyKs");
  harness_free(&hs);
}

static void test_v5_keyspace_added(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  snprintf(hs.client.keyspace, sizeof(hs.client.keyspace), "ks1");
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(5, "INSERT INTO t (k) VALUES (1)", TDM_CL_ONE, 0,
                                                                   NULL)), 0);
  assert_int_equal(hs.be.nsent, 2);
  for (int i = 0; i < 2; i++) {
    tdm_query_t q;
    assert_int_equal(tdm_request_decode_query(5, hs.be.sent[i].body, hs.be.sent[i].len, &q, NULL), 0);
    assert_true(q.params.flags & TDM_QFLAG_WITH_KEYSPACE);
    assert_true(tdm_str_eq_cstr(q.params.keyspace, "ks1"));
    assert_string_equal(hs.be.sent[i].ks, ""); /* v5 pools are not keyed by keyspace */
  }
  assert_ptr_equal(hs.be.sent[0].slice, hs.be.sent[1].slice);
  reply_bytes(&hs, 0, "A");
  reply_bytes(&hs, 1, "B");
  /* a request naming its own keyspace is left alone */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(5, SELECT, TDM_CL_ONE, TDM_QFLAG_WITH_KEYSPACE,
                                                                   "other")), 0);
  tdm_query_t q;
  assert_int_equal(tdm_request_decode_query(5, hs.be.sent[2].body, hs.be.sent[2].len, &q, NULL), 0);
  assert_true(tdm_str_eq_cstr(q.params.keyspace, "other"));
  reply_bytes(&hs, 2, "C");
  assert_int_equal(hs.client.nresp, 2);
  harness_free(&hs);
}

static void test_local_answers(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, "CALL InsightsRpc.reportInsight('x')", 1, 0,
                                                                   NULL)), 0);
  buf_t v = void_body();
  assert_int_equal(hs.client.resp[0].opcode, TDM_OP_RESULT);
  assert_int_equal(hs.client.resp[0].len, v.n);
  assert_memory_equal(hs.client.resp[0].body, v.p, v.n);
  free(v.p);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, "SELECT * FROM system.peers", 1, 0, NULL)), 0);
  assert_int_equal(hs.client.vt_query, 1);
  assert_int_equal(send_req(&hs, TDM_OP_PREPARE, 0, 3, prepare_body(4, "SELECT * FROM system.local")), 0);
  assert_int_equal(hs.client.vt_prepare, 1);
  static const uint8_t vid[2] = { 0x7e, 0x7e };
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 4, execute_body(4, vid, 2, NULL, 0, 1)), 0);
  assert_int_equal(hs.client.vt_execute, 1);
  buf_t empty = { malloc(1), 0 };
  assert_int_equal(send_req(&hs, 0x42, 0, 5, empty), 0);
  assert_true(msg_is(client_error(&hs, 4).message, "Unknown opcode 66"));
  assert_int_equal(client_error(&hs, 4).code, TDM_ERR_PROTOCOL_ERROR);
  buf_t empty2 = { malloc(1), 0 };
  assert_int_equal(send_req(&hs, TDM_OP_REVISE_REQUEST, 0, 6, empty2), 0);
  assert_int_equal(client_error(&hs, 5).code, TDM_ERR_INVALID);
  assert_true(msg_is(client_error(&hs, 5).message, "tandem does not support DSE continuous paging"));
  /* system keyspace reads go to system_queries_mode, whatever the primary */
  hs.pw.conf->primary_cluster = TDM_CONF_TARGET;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 7, query_body(4, "SELECT * FROM system_schema.tables", 1, 0,
                                                                   NULL)), 0);
  assert_int_equal(hs.be.nsent, 1);
  assert_int_equal(hs.be.sent[0].cluster, TDM_CONF_ORIGIN);
  reply_bytes(&hs, 0, "SCHEMA");
  assert_body(&hs.client.resp[6], "SCHEMA");
  /* draining */
  hs.pw.draining = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 8, query_body(4, SELECT, 1, 0, NULL)), 0);
  assert_int_equal(client_error(&hs, 7).code, TDM_ERR_OVERLOADED);
  assert_true(msg_is(client_error(&hs, 7).message, "Shutting down, please retry on next host."));
  assert_int_equal(hs.be.nsent, 1);
  harness_free(&hs);
}

static void test_malformed_and_too_large(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  buf_t junk = { malloc(3), 3 };
  memcpy(junk.p, "\x00\x00\xff", 3);
  assert_true(send_req(&hs, TDM_OP_QUERY, 0, 1, junk) < 0);
  assert_int_equal(client_error(&hs, 0).code, TDM_ERR_PROTOCOL_ERROR);
  /* lz4 body declaring more than max_frame_bytes: INVALID, connection continues */
  hs.client.view.compression = TDM_COMPRESSION_LZ4;
  hs.pw.conf->max_frame_bytes = 1000;
  buf_t big = { malloc(8), 8 };
  memcpy(big.p, "\x00\x01\x00\x00\x00\x00\x00\x00", 8); /* declares 65536 bytes */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, TDM_FLAG_COMPRESSED, 2, big), 0);
  tdm_response_error_t e = client_error(&hs, 1);
  assert_int_equal(e.code, TDM_ERR_INVALID);
  assert_true(msg_is(e.message, "Request is too big: length 65536 exceeds maximum allowed length 1000."));
  assert_int_equal(hs.be.nsent, 0);
  harness_free(&hs);
}

static void test_compressed_body_passes_as_is(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.client.view.compression = TDM_COMPRESSION_LZ4;
  buf_t q = query_body(4, INSERT, TDM_CL_ONE, 0, NULL);
  uint8_t *z;
  size_t zn;
  assert_int_equal(tdm_body_compress(TDM_COMPRESSION_LZ4, q.p, q.n, &z, &zn), 0);
  free(q.p);
  uint8_t *keep = malloc(zn);
  memcpy(keep, z, zn);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, TDM_FLAG_COMPRESSED, 1, (buf_t){ z, zn }), 0);
  assert_int_equal(hs.be.nsent, 2); /* classified as a write after decompression */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(hs.be.sent[i].flags, TDM_FLAG_COMPRESSED);
    assert_int_equal(hs.be.sent[i].len, zn);
    assert_memory_equal(hs.be.sent[i].body, keep, zn);
  }
  free(keep);
  reply(&hs, 0, TDM_OP_RESULT, TDM_FLAG_COMPRESSED, (const uint8_t *)"zz", 2);
  reply(&hs, 1, TDM_OP_RESULT, TDM_FLAG_COMPRESSED, (const uint8_t *)"yy", 2);
  assert_int_equal(hs.client.resp[0].flags, TDM_FLAG_COMPRESSED);
  /* a compressed ERROR is decompressed to be aggregated */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  buf_t eb = error_body(4, TDM_ERR_UNAVAILABLE, "down");
  uint8_t *ez;
  size_t ezn;
  assert_int_equal(tdm_body_compress(TDM_COMPRESSION_LZ4, eb.p, eb.n, &ez, &ezn), 0);
  free(eb.p);
  reply(&hs, 2, TDM_OP_ERROR, TDM_FLAG_COMPRESSED, ez, ezn);
  free(ez);
  reply(&hs, 3, TDM_OP_RESULT, 0, (const uint8_t *)"ok", 2);
  assert_true(msg_is(client_error(&hs, 1).message, "tandem: applied on TARGET, failed on ORIGIN: UNAVAILABLE: down"));
  harness_free(&hs);
}

/* RESULT Rows with one boolean column [applied]. */
static buf_t applied_rows(bool v)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_rows_builder_t b;
  tdm_response_rows_options_t o = { .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .keyspace = TDM_STR("ks"),
                                    .table = TDM_STR("t"), .paging_state = { NULL, -1 } };
  tdm_response_rows_begin(&b, &w, TDM_PROTO_V4, &o);
  tdm_response_rows_column_named(&b, TDM_STR("[applied]"), TDM_STR("boolean"));
  tdm_response_rows_cell_boolean(&b, v);
  assert_int_equal(tdm_response_rows_finish(&b), 0);
  return take(&w);
}

static void test_lwt_applied_mismatch(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  for (int round = 0; round < 2; round++) {
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, "UPDATE ks.t SET v = 1 WHERE k = 1 IF v = 0",
                                                                     TDM_CL_ONE, 0, NULL)), 0);
    buf_t a = applied_rows(true), b = applied_rows(round == 0);
    reply(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_OP_RESULT, 0, a.p, a.n);
    reply(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_RESULT, 0, b.p, b.n);
    assert_int_equal(hs.client.resp[round].len, a.n); /* the primary's row */
    assert_memory_equal(hs.client.resp[round].body, a.p, a.n);
    free(a.p);
    free(b.p);
    assert_int_equal(hs.pw.stats.lwt_applied_mismatch, (uint64_t)round);
  }
  harness_free(&hs);
}

/* A schema hook that records the hold and lets the test finish it. */
typedef struct hold_s {
  int waits, cancels;         /* calls */
  int wait_ms;                /* last wait asked */
  void (*done)(void *, bool); /* pending completion */
  void *req;                  /* its request */
} hold_t;

static void hold_wait(void *arg, int wait_ms, void (*done)(void *, bool), void *req)
{
  hold_t *h = arg;
  h->waits++;
  h->wait_ms = wait_ms;
  h->done = done;
  h->req = req;
}

/* A hook that can only answer at once (its main loop is gone): "not agreed", from inside wait(). */
static void hold_wait_now(void *arg, int wait_ms, void (*done)(void *, bool), void *req)
{
  hold_t *h = arg;
  h->waits++;
  done(req, false);
}

static void hold_cancel(void *arg, void *req)
{
  hold_t *h = arg;
  h->cancels++;
  h->done = NULL;
}

static buf_t schema_change_body(void)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_schema_change_t sc = { .change_type = TDM_STR("CREATED"), .target = TDM_RESPONSE_TARGET_TABLE,
                                      .keyspace = TDM_STR("ks"), .name = TDM_STR("x") };
  tdm_writer_int(&w, TDM_RESULT_SCHEMA_CHANGE);
  assert_int_equal(tdm_response_encode_schema_change(&w, TDM_PROTO_V4, &sc), 0);
  return take(&w);
}

static void test_schema_hold(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->proxy_request_timeout_ms = 200;
  hold_t hold = { 0 };
  tdm_route_schema_hook_t hook = { hold_wait, hold_cancel, &hold };
  tdm_route_set_schema_hook(&hs.pw, &hook);
  buf_t sc = schema_change_body();
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, "CREATE TABLE ks.x (k int PRIMARY KEY)", 0, 0,
                                                                   NULL)), 0);
  reply(&hs, 0, TDM_OP_RESULT, 0, sc.p, sc.n);
  reply(&hs, 1, TDM_OP_RESULT, 0, sc.p, sc.n);
  assert_int_equal(hold.waits, 1);
  assert_true(hold.wait_ms > 0 && hold.wait_ms <= 200);
  assert_int_equal(hs.client.nresp, 0); /* held */
  hold.done(hold.req, true);
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(hs.client.resp[0].len, sc.n);
  assert_int_equal(hs.pw.stats.schema_waits_agreed, 1);
  /* the request timer ends a hold that outlasts it: the DDL applied, so its result goes out */
  hs.pw.conf->proxy_request_timeout_ms = 30;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, "DROP TABLE ks.x", 0, 0, NULL)), 0);
  reply(&hs, 2, TDM_OP_RESULT, 0, sc.p, sc.n);
  reply(&hs, 3, TDM_OP_RESULT, 0, sc.p, sc.n);
  assert_int_equal(hold.waits, 2);
  run_for(&hs, 60);
  assert_int_equal(hold.cancels, 1);
  assert_int_equal(hs.client.nresp, 2);
  assert_int_equal(hs.client.resp[1].opcode, TDM_OP_RESULT);
  assert_int_equal(hs.pw.stats.schema_waits_timeout, 1);
  /* done() called from inside wait(): answered once, right away */
  hook.wait = hold_wait_now;
  tdm_route_set_schema_hook(&hs.pw, &hook);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 3, query_body(4, "DROP TABLE ks.y", 0, 0, NULL)), 0);
  reply(&hs, 4, TDM_OP_RESULT, 0, sc.p, sc.n);
  reply(&hs, 5, TDM_OP_RESULT, 0, sc.p, sc.n);
  assert_int_equal(hold.waits, 3);
  assert_int_equal(hs.client.nresp, 3);
  assert_int_equal(hs.client.resp[2].stream, 3);
  assert_int_equal(hs.pw.stats.schema_waits_timeout, 2);
  assert_int_equal(tdm_route_inflight(&hs.pw), 0);
  free(sc.p);
  harness_free(&hs);
}

/* The backend may fail a leg from inside tdm_backend_send: nothing is used after it is recycled. */
static void test_inline_failure(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  /* a single-leg read fails at once: UNAVAILABLE, answered after the send returned */
  hs.be.fail_inline[TDM_CONF_ORIGIN] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.client.nresp, 1);
  assert_true(msg_is(client_error(&hs, 0).message, "tandem: no reachable ORIGIN node"));
  assert_int_equal(tdm_route_inflight(&hs.pw), 0);
  /* the second leg of a dual write fails at once: the first one still decides, then the rewrite */
  hs.be.fail_inline[TDM_CONF_ORIGIN] = false;
  hs.be.fail_inline[TDM_CONF_TARGET] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.client.nresp, 1);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  assert_true(msg_is(client_error(&hs, 1).message, "tandem: applied on ORIGIN, failed on TARGET: UNAVAILABLE: "
                                                   "tandem: no reachable TARGET node"));
  /* a mirrored copy failing at once is counted and gone */
  hs.be.fail_inline[TDM_CONF_TARGET] = true;
  hs.pw.conf->read_mode = TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 3, query_body(4, SELECT, TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(hs.pw.stats.async_failed, 1);
  assert_int_equal(hs.pw.stats.async_inflight, 0);
  reply_bytes(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "R");
  assert_int_equal(hs.client.nresp, 3);
  harness_free(&hs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_read_goes_to_primary_only),
    cmocka_unit_test(test_dual_write_success_shares_body),
    cmocka_unit_test(test_not_executed_error_is_rewritten),
    cmocka_unit_test(test_secondary_error_forwarded_and_both_errors),
    cmocka_unit_test(test_early_answer_then_metrics),
    cmocka_unit_test(test_unreachable_sends_nothing),
    cmocka_unit_test(test_primary_wins),
    cmocka_unit_test(test_timeouts),
    cmocka_unit_test(test_batch_timeout_write_type),
    cmocka_unit_test(test_connection_lost),
    cmocka_unit_test(test_client_gone),
    cmocka_unit_test(test_use),
    cmocka_unit_test(test_v5_keyspace_added),
    cmocka_unit_test(test_local_answers),
    cmocka_unit_test(test_malformed_and_too_large),
    cmocka_unit_test(test_compressed_body_passes_as_is),
    cmocka_unit_test(test_lwt_applied_mismatch),
    cmocka_unit_test(test_schema_hold),
    cmocka_unit_test(test_inline_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
