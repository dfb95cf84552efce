/* Prepared statements through the route (PS-01..07, PS-09 at the route level): PREPARE on both and the
 * registry entry, registry misses, TARGET ids patched in place (equal lengths) or re-encoded, the v5
 * result_metadata_id pair, BATCH with mixed children, and the re-prepare flow of §7.3 with its
 * outcomes and counters. */
#include "test_route_fakes.h"
#include <tandem/route/aggregate.h>
#include <tandem/proto/classify.h>

static const uint8_t O1[16] = { 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff };
static const uint8_t T1[16] = { 0x7a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xee };
static const uint8_t T_SHORT[8] = { 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x01 };
static const uint8_t O2[16] = { 0x0b, 0xb0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x02 };

static const char *UPD = "UPDATE t SET v = ? WHERE k = ?";

static int sent_to(harness_t *hs, int cluster)
{
  for (int i = hs->be.nsent - 1; i >= 0; i--)
    if (hs->be.sent[i].cluster == cluster) return i;
  fail_msg("no leg sent to cluster %d", cluster);
  return -1;
}

static void put_entry(harness_t *hs, const uint8_t *o, size_t on, const uint8_t *t, size_t tn, const char *text,
                      tdm_stmt_class_t cls)
{
  tdm_prepared_entry_t *e;
  assert_int_equal(tdm_prepared_entry_new(o, on, t, tn, tdm_str_from(text), TDM_STR("ks"), (int)cls, 0, &e), 0);
  tdm_prepared_registry_put(hs->pw.registry, e);
}

static void reply_ok(harness_t *hs, int i, const char *marker)
{
  reply(hs, i, TDM_OP_RESULT, 0, (const uint8_t *)marker, strlen(marker));
}

static void reply_buf(harness_t *hs, int i, uint8_t opcode, buf_t b)
{
  reply(hs, i, opcode, 0, b.p, b.n);
  free(b.p);
}

static void assert_unprepared_text(tdm_str_t msg, const uint8_t *id, size_t n)
{
  char want[512];
  tdm_agg_format_unprepared(want, sizeof(want), id, n);
  assert_true(msg_is(msg, want));
}

static void test_prepare_stores_origin_id(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->primary_cluster = TDM_CONF_TARGET;
  snprintf(hs.client.keyspace, sizeof(hs.client.keyspace), "ks");
  assert_int_equal(send_req(&hs, TDM_OP_PREPARE, 0, 3, prepare_body(4, "SELECT v FROM t WHERE k = ?")), 0);
  assert_int_equal(hs.be.nsent, 2); /* a SELECT is prepared on both */
  buf_t ob = prepared_body(4, O1, 16, NULL, 0), tb = prepared_body(4, T_SHORT, 8, NULL, 0);
  buf_t keep = { malloc(ob.n), ob.n };
  memcpy(keep.p, ob.p, ob.n);
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_RESULT, tb);
  assert_int_equal(hs.client.nresp, 0);
  reply_buf(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_OP_RESULT, ob);
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(hs.client.resp[0].len, keep.n); /* ORIGIN's PREPARED though TARGET is primary */
  assert_memory_equal(hs.client.resp[0].body, keep.p, keep.n);
  free(keep.p);
  tdm_prepared_entry_t *e = tdm_prepared_registry_get(hs.pw.registry, O1, 16);
  assert_non_null(e);
  assert_int_equal(e->target_id.len, 8);
  assert_memory_equal(e->target_id.bytes, T_SHORT, 8);
  assert_string_equal(e->query, "SELECT v FROM t WHERE k = ?");
  assert_string_equal(e->keyspace, "ks");
  assert_int_equal(e->kind, TDM_CLASSIFY_CLASS_READ);
  tdm_prepared_entry_unref(e);
  assert_int_equal(hs.pw.stats.proxy_latency[0].count + hs.pw.stats.proxy_latency[1].count +
                       hs.pw.stats.proxy_latency[2].count, 0); /* PREPARE is neither a read nor a write */
  harness_free(&hs);
}

static void test_prepare_failure_stores_nothing(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->write_divergence_policy = TDM_CONF_DIVERGENCE_PRIMARY_WINS; /* PREPARE ignores it */
  assert_int_equal(send_req(&hs, TDM_OP_PREPARE, 0, 3, prepare_body(4, UPD)), 0);
  reply_buf(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_OP_RESULT, prepared_body(4, O1, 16, NULL, 0));
  assert_int_equal(hs.client.nresp, 0);
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR,
            error_body(4, TDM_ERR_INVALID, "unconfigured table t"));
  tdm_response_error_t e = client_error(&hs, 0);
  assert_int_equal(e.code, TDM_ERR_INVALID);
  assert_null(tdm_prepared_registry_get(hs.pw.registry, O1, 16));
  /* a later EXECUTE misses: Cassandra's UNPREPARED with the id, nothing sent */
  int before = hs.be.nsent;
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 4, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  assert_int_equal(hs.be.nsent, before);
  e = client_error(&hs, 1);
  assert_int_equal(e.code, TDM_ERR_UNPREPARED);
  assert_int_equal(e.unprepared_id.len, 16);
  assert_memory_equal(e.unprepared_id.ptr, O1, 16);
  assert_unprepared_text(e.message, O1, 16);
  assert_true(msg_is(e.message, "Prepared query with ID 0a0102030405060708090a0b0c0d0eff not found (either the "
                                "query was not prepared on this host (maybe the host has been restarted?) or you "
                                "have prepared too many queries and it has been evicted from the internal cache)"));
  assert_int_equal(hs.pw.stats.pscache_misses, 1);
  harness_free(&hs);
}

static void test_execute_ids(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE);      /* equal lengths */
  put_entry(&hs, O2, 16, T_SHORT, 8, UPD, TDM_CLASSIFY_CLASS_WRITE);  /* different lengths */
  /* equal lengths: patched in place in a private copy; ORIGIN gets the client's own bytes */
  buf_t b = execute_body(4, O1, 16, NULL, 0, TDM_CL_QUORUM);
  buf_t keep = { malloc(b.n), b.n };
  memcpy(keep.p, b.p, b.n);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, b), 0);
  fake_sent_t *o = &hs.be.sent[sent_to(&hs, TDM_CONF_ORIGIN)], *t = &hs.be.sent[sent_to(&hs, TDM_CONF_TARGET)];
  assert_ptr_not_equal(o->slice, t->slice);
  assert_int_equal(o->len, keep.n);
  assert_memory_equal(o->body, keep.p, keep.n);
  assert_int_equal(t->len, keep.n);
  assert_memory_equal(t->body + 2, T1, 16);
  assert_memory_equal(t->body + 18, keep.p + 18, keep.n - 18);
  free(keep.p);
  reply_ok(&hs, 0, "A");
  reply_ok(&hs, 1, "B");
  /* different lengths: re-encoded, same parameters */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 2, execute_body(4, O2, 16, NULL, 0, TDM_CL_QUORUM)), 0);
  t = &hs.be.sent[sent_to(&hs, TDM_CONF_TARGET)];
  tdm_execute_t x;
  assert_int_equal(tdm_request_decode_execute(4, t->body, t->len, &x, NULL), 0);
  assert_int_equal(x.id.len, 8);
  assert_memory_equal(x.id.ptr, T_SHORT, 8);
  assert_int_equal(x.params.consistency, TDM_CL_QUORUM);
  assert_int_equal(x.params.values_count, 1);
  reply_ok(&hs, 2, "A");
  reply_ok(&hs, 3, "B");
  /* identical ids: one shared body */
  put_entry(&hs, O2, 16, O2, 16, UPD, TDM_CLASSIFY_CLASS_WRITE);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 3, execute_body(4, O2, 16, NULL, 0, TDM_CL_ONE)), 0);
  assert_ptr_equal(hs.be.sent[4].slice, hs.be.sent[5].slice);
  reply_ok(&hs, 4, "A");
  reply_ok(&hs, 5, "B");
  assert_int_equal(hs.client.nresp, 3);
  assert_int_equal(hs.pw.stats.proxy_latency[2].count, 3);
  harness_free(&hs);
}

static void test_execute_read_routes_by_stored_class(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->primary_cluster = TDM_CONF_TARGET;
  put_entry(&hs, O1, 16, T_SHORT, 8, "SELECT v FROM t WHERE k = ?", TDM_CLASSIFY_CLASS_READ);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  assert_int_equal(hs.be.nsent, 1);
  assert_int_equal(hs.be.sent[0].cluster, TDM_CONF_TARGET);
  tdm_execute_t x;
  assert_int_equal(tdm_request_decode_execute(4, hs.be.sent[0].body, hs.be.sent[0].len, &x, NULL), 0);
  assert_memory_equal(x.id.ptr, T_SHORT, 8);
  reply_ok(&hs, 0, "ROWS");
  assert_int_equal(hs.pw.stats.proxy_latency[1].count, 1); /* reads_target */
  harness_free(&hs);
}

static void test_v5_metadata_id_translation(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  hs.pw.conf->primary_cluster = TDM_CONF_TARGET;
  static const uint8_t OM[4] = { 0xa1, 0xa2, 0xa3, 0xa4 }, TM[6] = { 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6 };
  static const uint8_t XM[4] = { 9, 9, 9, 9 };
  tdm_prepared_entry_t *e;
  assert_int_equal(tdm_prepared_entry_new(O1, 16, T1, 16, TDM_STR("SELECT v FROM ks.t WHERE k = ?"), TDM_STR("ks"),
                                          TDM_CLASSIFY_CLASS_READ, 0, &e), 0);
  tdm_prepared_entry_set_meta_ids(e, OM, 4, TM, 6);
  tdm_prepared_registry_put(hs.pw.registry, e);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(5, O1, 16, OM, 4, TDM_CL_ONE)), 0);
  tdm_execute_t x;
  assert_int_equal(tdm_request_decode_execute(5, hs.be.sent[0].body, hs.be.sent[0].len, &x, NULL), 0);
  assert_memory_equal(x.id.ptr, T1, 16);
  assert_int_equal(x.result_metadata_id.len, 6); /* the client's ORIGIN value, translated */
  assert_memory_equal(x.result_metadata_id.ptr, TM, 6);
  reply_ok(&hs, 0, "R");
  /* a value without a pair passes unchanged */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 2, execute_body(5, O1, 16, XM, 4, TDM_CL_ONE)), 0);
  assert_int_equal(tdm_request_decode_execute(5, hs.be.sent[1].body, hs.be.sent[1].len, &x, NULL), 0);
  assert_int_equal(x.result_metadata_id.len, 4);
  assert_memory_equal(x.result_metadata_id.ptr, XM, 4);
  reply_ok(&hs, 1, "R");
  harness_free(&hs);
}

static buf_t batch_body(const uint8_t *const *ids, const size_t *lens, size_t n)
{
  tdm_batch_child_t ch[4];
  memset(ch, 0, sizeof(ch));
  ch[0].kind = TDM_REQUEST_BATCH_KIND_QUERY;
  ch[0].query = TDM_STR("INSERT INTO ks.t (k) VALUES (1)");
  for (size_t i = 0; i < n; i++) {
    ch[i + 1].kind = TDM_REQUEST_BATCH_KIND_PREPARED;
    ch[i + 1].id = (tdm_bytes_t){ ids[i], (int32_t)lens[i] };
  }
  tdm_query_params_t p = { .consistency = TDM_CL_ONE, .paging_state = { NULL, -1 } };
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V4, TDM_BATCH_LOGGED, ch, n + 1, &p), 0);
  return take(&w);
}

static void test_batch_mixed_children(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE);
  put_entry(&hs, O2, 16, T_SHORT, 8, UPD, TDM_CLASSIFY_CLASS_WRITE);
  const uint8_t *ids[2] = { O1, O2 };
  size_t lens[2] = { 16, 16 };
  buf_t b = batch_body(ids, lens, 2);
  buf_t keep = { malloc(b.n), b.n };
  memcpy(keep.p, b.p, b.n);
  assert_int_equal(send_req(&hs, TDM_OP_BATCH, 0, 1, b), 0);
  fake_sent_t *o = &hs.be.sent[sent_to(&hs, TDM_CONF_ORIGIN)], *t = &hs.be.sent[sent_to(&hs, TDM_CONF_TARGET)];
  assert_int_equal(o->len, keep.n);
  assert_memory_equal(o->body, keep.p, keep.n);
  free(keep.p);
  tdm_batch_t bt;
  assert_int_equal(tdm_request_decode_batch(4, t->body, t->len, &bt, NULL), 0);
  tdm_batch_iter_t it;
  tdm_batch_child_t c;
  tdm_batch_iter_init(&it, &bt);
  assert_int_equal(tdm_batch_next_child(&it, &c), 1);
  assert_true(tdm_str_eq_cstr(c.query, "INSERT INTO ks.t (k) VALUES (1)"));
  assert_int_equal(tdm_batch_next_child(&it, &c), 1);
  assert_int_equal(c.id.len, 16);
  assert_memory_equal(c.id.ptr, T1, 16);
  assert_int_equal(tdm_batch_next_child(&it, &c), 1);
  assert_int_equal(c.id.len, 8);
  assert_memory_equal(c.id.ptr, T_SHORT, 8);
  assert_int_equal(tdm_batch_next_child(&it, &c), 0);
  reply_ok(&hs, 0, "A");
  reply_ok(&hs, 1, "B");
  /* one unknown child: UNPREPARED for that child, nothing sent */
  static const uint8_t UNKNOWN[4] = { 1, 2, 3, 4 };
  const uint8_t *ids2[2] = { O1, UNKNOWN };
  size_t lens2[2] = { 16, 4 };
  assert_int_equal(send_req(&hs, TDM_OP_BATCH, 0, 2, batch_body(ids2, lens2, 2)), 0);
  assert_int_equal(hs.be.nsent, 2);
  tdm_response_error_t e = client_error(&hs, 1);
  assert_int_equal(e.code, TDM_ERR_UNPREPARED);
  assert_memory_equal(e.unprepared_id.ptr, UNKNOWN, 4);
  assert_unprepared_text(e.message, UNKNOWN, 4);
  harness_free(&hs);
}

static void test_reprepare_target_same_id(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O-VOID"); /* held while TARGET recovers */
  int t = sent_to(&hs, TDM_CONF_TARGET);
  uint8_t first_target[64];
  memcpy(first_target, hs.be.sent[t].body, hs.be.sent[t].len);
  size_t first_len = hs.be.sent[t].len;
  reply_buf(&hs, t, TDM_OP_ERROR, unprepared_body(4, T1, 16));
  assert_int_equal(hs.client.nresp, 0);
  /* the PREPARE goes to the node that answered, on the stored keyspace's pool */
  fake_sent_t *p = &hs.be.sent[hs.be.nsent - 1];
  assert_int_equal(p->opcode, TDM_OP_PREPARE);
  assert_int_equal(p->cluster, TDM_CONF_TARGET);
  assert_int_equal(p->pin, 11);
  assert_string_equal(p->ks, "ks");
  tdm_prepare_t pr;
  assert_int_equal(tdm_request_decode_prepare(4, p->body, p->len, &pr, NULL), 0);
  assert_true(tdm_str_eq_cstr(pr.query, UPD));
  reply_buf(&hs, hs.be.nsent - 1, TDM_OP_RESULT, prepared_body(4, T1, 16, NULL, 0));
  /* the retry, pinned, with the same body */
  fake_sent_t *r = &hs.be.sent[hs.be.nsent - 1];
  assert_int_equal(r->opcode, TDM_OP_EXECUTE);
  assert_int_equal(r->pin, 11);
  assert_int_equal(r->len, first_len);
  assert_memory_equal(r->body, first_target, first_len);
  assert_int_equal(hs.client.nresp, 0);
  reply_ok(&hs, hs.be.nsent - 1, "T-VOID");
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(hs.client.resp[0].len, 6);
  assert_memory_equal(hs.client.resp[0].body, "O-VOID", 6);
  assert_int_equal(hs.pw.stats.pscache_reprepares_ok_target, 1);
  assert_int_equal(hs.pw.stats.requests_failed[1][TDM_REQERR_unprepared], 1);
  harness_free(&hs);
}

static void test_reprepare_target_new_id(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR, unprepared_body(4, T1, 16));
  reply_buf(&hs, hs.be.nsent - 1, TDM_OP_RESULT, prepared_body(4, T_SHORT, 8, NULL, 0));
  tdm_execute_t x;
  fake_sent_t *r = &hs.be.sent[hs.be.nsent - 1];
  assert_int_equal(tdm_request_decode_execute(4, r->body, r->len, &x, NULL), 0);
  assert_int_equal(x.id.len, 8);
  assert_memory_equal(x.id.ptr, T_SHORT, 8);
  tdm_prepared_entry_t *e = tdm_prepared_registry_get(hs.pw.registry, O1, 16);
  assert_int_equal(e->target_id.len, 8); /* the registry follows TARGET */
  tdm_prepared_entry_unref(e);
  reply_ok(&hs, hs.be.nsent - 1, "T");
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  assert_int_equal(hs.client.nresp, 1);
  assert_memory_equal(hs.client.resp[0].body, "O", 1);
  harness_free(&hs);
}

static void test_reprepare_origin(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T1, 16, "SELECT v FROM t WHERE k = ?", TDM_CLASSIFY_CLASS_READ);
  /* same id: retried, the client never sees the UNPREPARED */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  reply_buf(&hs, 0, TDM_OP_ERROR, unprepared_body(4, O1, 16));
  reply_buf(&hs, 1, TDM_OP_RESULT, prepared_body(4, O1, 16, NULL, 0));
  assert_int_equal(hs.be.sent[2].opcode, TDM_OP_EXECUTE);
  reply_ok(&hs, 2, "ROWS");
  assert_memory_equal(hs.client.resp[0].body, "ROWS", 4);
  /* a new ORIGIN id: the client gets UNPREPARED with its own id and re-prepares */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 2, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  reply_buf(&hs, 3, TDM_OP_ERROR, unprepared_body(4, O1, 16));
  reply_buf(&hs, 4, TDM_OP_RESULT, prepared_body(4, O2, 16, NULL, 0));
  assert_int_equal(hs.be.nsent, 5); /* no retry */
  tdm_response_error_t e = client_error(&hs, 1);
  assert_int_equal(e.code, TDM_ERR_UNPREPARED);
  assert_memory_equal(e.unprepared_id.ptr, O1, 16);
  assert_unprepared_text(e.message, O1, 16);
  assert_int_equal(hs.pw.stats.pscache_reprepares_ok_origin, 2);
  harness_free(&hs);
}

static void test_reprepare_failures(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE);
  char want[1024], unp[512];
  tdm_agg_format_unprepared(unp, sizeof(unp), O1, 16);
  tdm_agg_format_rewrite(want, sizeof(want), TDM_CONF_ORIGIN, TDM_CONF_TARGET, TDM_ERR_UNPREPARED, tdm_str_from(unp));
  /* the re-prepare fails: UNPREPARED (client's id) on TARGET, applied on ORIGIN -> rewritten */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR, unprepared_body(4, T1, 16));
  reply_buf(&hs, hs.be.nsent - 1, TDM_OP_ERROR, error_body(4, TDM_ERR_SYNTAX_ERROR, "no"));
  tdm_response_error_t e = client_error(&hs, 0);
  assert_int_equal(e.code, TDM_ERR_SERVER_ERROR);
  assert_true(msg_is(e.message, want));
  assert_int_equal(hs.pw.stats.pscache_reprepares_failed_target, 1);
  /* the retry is UNPREPARED again: same answer */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 2, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR, unprepared_body(4, T1, 16));
  reply_buf(&hs, hs.be.nsent - 1, TDM_OP_RESULT, prepared_body(4, T1, 16, NULL, 0));
  reply_buf(&hs, hs.be.nsent - 1, TDM_OP_ERROR, unprepared_body(4, T1, 16));
  assert_true(msg_is(client_error(&hs, 1).message, want));
  /* the connection carrying the re-prepare fails: same */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 3, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR, unprepared_body(4, T1, 16));
  fail_leg(&hs, hs.be.nsent - 1, TDM_ECLOSED, true, "10.0.1.1:9042");
  assert_true(msg_is(client_error(&hs, 2).message, want));
  assert_int_equal(hs.pw.stats.pscache_reprepares_failed_target, 2);
  assert_int_equal(hs.client.nresp, 3);
  harness_free(&hs);
}

static void test_reprepare_batch_child(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T1, 16, "UPDATE t SET a = ? WHERE k = ?", TDM_CLASSIFY_CLASS_WRITE);
  put_entry(&hs, O2, 16, T_SHORT, 8, "UPDATE t SET b = ? WHERE k = ?", TDM_CLASSIFY_CLASS_WRITE);
  const uint8_t *ids[2] = { O1, O2 };
  size_t lens[2] = { 16, 16 };
  assert_int_equal(send_req(&hs, TDM_OP_BATCH, 0, 1, batch_body(ids, lens, 2)), 0);
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR, unprepared_body(4, T_SHORT, 8));
  fake_sent_t *p = &hs.be.sent[hs.be.nsent - 1];
  tdm_prepare_t pr;
  assert_int_equal(tdm_request_decode_prepare(4, p->body, p->len, &pr, NULL), 0);
  assert_true(tdm_str_eq_cstr(pr.query, "UPDATE t SET b = ? WHERE k = ?")); /* the child TARGET named */
  reply_buf(&hs, hs.be.nsent - 1, TDM_OP_RESULT, prepared_body(4, T_SHORT, 8, NULL, 0));
  assert_int_equal(hs.be.sent[hs.be.nsent - 1].opcode, TDM_OP_BATCH);
  reply_ok(&hs, hs.be.nsent - 1, "T");
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  assert_memory_equal(hs.client.resp[0].body, "O", 1);
  harness_free(&hs);
}

static void test_v5_prepare_and_reprepare_keyspace(void **state)
{
  static const uint8_t OM[3] = { 0xc1, 0xc2, 0xc3 }, TM[3] = { 0xd1, 0xd2, 0xd3 };
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  snprintf(hs.client.keyspace, sizeof(hs.client.keyspace), "ks_a");
  assert_int_equal(send_req(&hs, TDM_OP_PREPARE, 0, 1, prepare_body(5, UPD)), 0);
  tdm_prepare_t pr;
  assert_int_equal(tdm_request_decode_prepare(5, hs.be.sent[0].body, hs.be.sent[0].len, &pr, NULL), 0);
  assert_true(tdm_str_eq_cstr(pr.keyspace, "ks_a")); /* v5: the client's keyspace rides in the PREPARE */
  reply_buf(&hs, 0, TDM_OP_RESULT, prepared_body(5, O1, 16, OM, 3));
  reply_buf(&hs, 1, TDM_OP_RESULT, prepared_body(5, T1, 16, TM, 3));
  tdm_prepared_entry_t *e = tdm_prepared_registry_get(hs.pw.registry, O1, 16);
  assert_non_null(e);
  assert_string_equal(e->keyspace, "ks_a");
  assert_memory_equal(e->origin_meta_id.bytes, OM, 3);
  assert_memory_equal(e->target_meta_id.bytes, TM, 3);
  tdm_prepared_entry_unref(e);
  /* the client moves to another keyspace; a re-prepare still uses the stored one (PS-06) */
  snprintf(hs.client.keyspace, sizeof(hs.client.keyspace), "ks_b");
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 2, execute_body(5, O1, 16, OM, 3, TDM_CL_ONE)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN), "O");
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR, unprepared_body(5, T1, 16));
  fake_sent_t *p = &hs.be.sent[hs.be.nsent - 1];
  assert_int_equal(p->opcode, TDM_OP_PREPARE);
  assert_int_equal(tdm_request_decode_prepare(5, p->body, p->len, &pr, NULL), 0);
  assert_true(tdm_str_eq_cstr(pr.keyspace, "ks_a"));
  assert_true(tdm_str_eq_cstr(pr.query, UPD));
  reply_buf(&hs, hs.be.nsent - 1, TDM_OP_RESULT, prepared_body(5, T1, 16, TM, 3));
  reply_ok(&hs, hs.be.nsent - 1, "T");
  assert_int_equal(hs.client.nresp, 2);
  harness_free(&hs);
}

/* RESULT Rows (no rows) announcing METADATA_CHANGED with a new id. */
static buf_t rows_metadata_changed(const uint8_t *id, size_t n)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_rows_builder_t b;
  tdm_response_rows_options_t o = { .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC | TDM_RFLAG_METADATA_CHANGED,
                                    .keyspace = TDM_STR("ks"), .table = TDM_STR("t"), .paging_state = { NULL, -1 },
                                    .new_metadata_id = { id, (int32_t)n } };
  tdm_response_rows_begin(&b, &w, TDM_PROTO_V5, &o);
  tdm_response_rows_column_named(&b, TDM_STR("[applied]"), TDM_STR("boolean"));
  tdm_response_rows_cell_boolean(&b, true);
  assert_int_equal(tdm_response_rows_finish(&b), 0);
  return take(&w);
}

static void test_v5_metadata_changed_pair_recorded(void **state)
{
  static const uint8_t OM[3] = { 1, 1, 1 }, TM[3] = { 2, 2, 2 }, ON[4] = { 3, 3, 3, 3 }, TN[5] = { 4, 4, 4, 4, 4 };
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V5);
  tdm_prepared_entry_t *e;
  assert_int_equal(tdm_prepared_entry_new(O1, 16, T1, 16, TDM_STR("UPDATE ks.t SET v = ? WHERE k = ? IF v = 1"),
                                          TDM_STR("ks"), TDM_CLASSIFY_CLASS_WRITE, TDM_CLASSIFY_F_LWT, &e), 0);
  tdm_prepared_entry_set_meta_ids(e, OM, 3, TM, 3);
  tdm_prepared_registry_put(hs.pw.registry, e);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(5, O1, 16, OM, 3, TDM_CL_ONE)), 0);
  reply_buf(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_OP_RESULT, rows_metadata_changed(ON, 4));
  reply_buf(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_RESULT, rows_metadata_changed(TN, 5));
  e = tdm_prepared_registry_get(hs.pw.registry, O1, 16);
  assert_int_equal(e->origin_meta_id.len, 4);
  assert_memory_equal(e->origin_meta_id.bytes, ON, 4);
  assert_int_equal(e->target_meta_id.len, 5);
  assert_memory_equal(e->target_meta_id.bytes, TN, 5);
  assert_int_equal(e->target_id.len, 16);
  tdm_prepared_entry_unref(e);
  assert_int_equal(hs.pw.stats.lwt_applied_mismatch, 0);
  /* the next EXECUTE with the new ORIGIN value is translated for TARGET */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 2, execute_body(5, O1, 16, ON, 4, TDM_CL_ONE)), 0);
  tdm_execute_t x;
  fake_sent_t *t = &hs.be.sent[sent_to(&hs, TDM_CONF_TARGET)];
  assert_int_equal(tdm_request_decode_execute(5, t->body, t->len, &x, NULL), 0);
  assert_int_equal(x.result_metadata_id.len, 5);
  assert_memory_equal(x.result_metadata_id.ptr, TN, 5);
  reply_ok(&hs, 2, "A");
  reply_ok(&hs, 3, "B");
  harness_free(&hs);
}

static void test_custom_payload_kept_in_rewrite(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, 16, T_SHORT, 8, UPD, TDM_CLASSIFY_CLASS_WRITE);
  /* [bytes map] with one entry: "k" -> "v" */
  static const uint8_t payload[] = { 0, 1, 0, 1, 'k', 0, 0, 0, 1, 'v' };
  buf_t ex = execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE);
  buf_t b = { malloc(sizeof(payload) + ex.n), sizeof(payload) + ex.n };
  memcpy(b.p, payload, sizeof(payload));
  memcpy(b.p + sizeof(payload), ex.p, ex.n);
  free(ex.p);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, TDM_FLAG_CUSTOM_PAYLOAD, 1, b), 0);
  fake_sent_t *t = &hs.be.sent[sent_to(&hs, TDM_CONF_TARGET)];
  assert_int_equal(t->flags, TDM_FLAG_CUSTOM_PAYLOAD);
  assert_memory_equal(t->body, payload, sizeof(payload));
  tdm_execute_t x;
  assert_int_equal(tdm_request_decode_execute(4, t->body + sizeof(payload), t->len - sizeof(payload), &x, NULL), 0);
  assert_memory_equal(x.id.ptr, T_SHORT, 8);
  reply_ok(&hs, 0, "A");
  reply_ok(&hs, 1, "B");
  harness_free(&hs);
}

static void test_worker_close_with_requests_in_flight(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->read_mode = TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY;
  put_entry(&hs, O1, 16, T1, 16, UPD, TDM_CLASSIFY_CLASS_WRITE);
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 16, NULL, 0, TDM_CL_ONE)), 0);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, "SELECT v FROM ks.t", TDM_CL_ONE, 0, NULL)), 0);
  assert_int_equal(tdm_route_inflight(&hs.pw), 3); /* a write, a read and its copy */
  tdm_route_worker_close(&hs.pw);
  assert_int_equal(hs.be.abandons, 4);
  assert_int_equal(hs.client.nresp, 0);
  harness_free(&hs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_prepare_stores_origin_id),
    cmocka_unit_test(test_prepare_failure_stores_nothing),
    cmocka_unit_test(test_execute_ids),
    cmocka_unit_test(test_execute_read_routes_by_stored_class),
    cmocka_unit_test(test_v5_metadata_id_translation),
    cmocka_unit_test(test_batch_mixed_children),
    cmocka_unit_test(test_reprepare_target_same_id),
    cmocka_unit_test(test_reprepare_target_new_id),
    cmocka_unit_test(test_reprepare_origin),
    cmocka_unit_test(test_reprepare_failures),
    cmocka_unit_test(test_reprepare_batch_child),
    cmocka_unit_test(test_v5_prepare_and_reprepare_keyspace),
    cmocka_unit_test(test_v5_metadata_changed_pair_recorded),
    cmocka_unit_test(test_custom_payload_kept_in_rewrite),
    cmocka_unit_test(test_worker_close_with_requests_in_flight),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
