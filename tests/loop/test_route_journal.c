/* The route's divergence journal and metrics (behaviour.md §6.2, §7.3, §13.1), with the fake client and
 * backend and a real journal writing to a temporary file: one exact line per divergent QUERY (values
 * only with write_divergence_log_values), an unreachable secondary under PRIMARY_WINS, EXECUTE and BATCH
 * lines naming prepared ids and the registry's text, LWT [applied] mismatches, nothing when the journal
 * is off, drops counted when its queue is full; pool_queue_wait for legs the backend queued; a
 * re-prepare that times out counts as failed. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test_route_fakes.h"
#include <tandem/obs/log.h>
#include <tandem/proto/classify.h>
#include <tandem/route/journal.h>

static const char *INSERT = "INSERT INTO ks.t (k, v) VALUES (?, ?)";

typedef struct jfix_s {
  char dir[128];     /* private directory */
  char path[200];    /* journal file */
  tdm_journal_t *j;  /* the journal */
} jfix_t;

static void jfix_init(jfix_t *f, harness_t *hs, const tdm_journal_options_t *o)
{
  snprintf(f->dir, sizeof(f->dir), "/tmp/tdm-rjournal-%d-XXXXXX", (int)getpid());
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/divergence.jsonl", f->dir);
  assert_int_equal(tdm_journal_new(o, &f->j), 0);
  tdm_journal_configure(f->j, f->path, 1 << 20);
  free(hs->pw.conf->write_divergence_log);
  hs->pw.conf->write_divergence_log = strdup(f->path);
  hs->pw.conf->epoch = 4;
  hs->pw.journal = f->j;
}

/* Everything written so far (heap string). */
static char *jfix_read(jfix_t *f)
{
  tdm_journal_flush(f->j);
  FILE *fp = fopen(f->path, "r");
  char *buf = calloc(1, 1 << 16);
  if (fp) {
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
  }
  return buf;
}

static void jfix_free(jfix_t *f)
{
  tdm_journal_free(f->j);
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
  assert_int_equal(system(cmd), 0);
}

static int sent_to(harness_t *hs, int cluster)
{
  for (int i = hs->be.nsent - 1; i >= 0; i--)
    if (hs->be.sent[i].cluster == cluster) return i;
  fail_msg("no leg sent to cluster %d", cluster);
  return -1;
}

static void reply_ok(harness_t *hs, int i) { reply(hs, i, TDM_OP_RESULT, 0, (const uint8_t *)"\0\0\0\1", 4); }

static void reply_error(harness_t *hs, int i, uint32_t code, const char *msg)
{
  buf_t b = error_body(hs->client.view.version, code, msg);
  reply(hs, i, TDM_OP_ERROR, 0, b.p, b.n);
  free(b.p);
}

/* INSERT with two values ('k1', null) and a client timestamp, at QUORUM. */
static buf_t insert_body(void)
{
  tdm_writer_t vw;
  tdm_writer_init(&vw);
  tdm_writer_bytes(&vw, "k1", 2);
  tdm_writer_bytes(&vw, NULL, -1);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_query_params_t p = { .consistency = TDM_CL_QUORUM, .flags = TDM_QFLAG_VALUES | TDM_QFLAG_DEFAULT_TIMESTAMP,
                           .values_count = 2, .values = vw.buf, .values_len = vw.len,
                           .paging_state = { NULL, -1 }, .default_timestamp = 1700000000000001LL };
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_V4, tdm_str_from(INSERT), &p), 0);
  tdm_writer_free(&vw);
  return take(&w);
}

/* The line without its "ts" member (the only field that depends on the clock). */
static void strip_ts(char *line)
{
  char *p = strstr(line, "{\"ts\":\"");
  assert_non_null(p);
  char *e = strstr(p, "\",\"epoch\"");
  assert_non_null(e);
  memmove(p + 1, e + 2, strlen(e + 2) + 1);
}

static void test_query_line(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  jfix_t f;
  jfix_init(&f, &hs, NULL);
  hs.pw.conf->write_divergence_policy = TDM_CONF_DIVERGENCE_PRIMARY_WINS;
  /* FAIL or PRIMARY_WINS alike: applied on ORIGIN, WRITE_TIMEOUT on TARGET */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, insert_body()), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN));
  reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_WRITE_TIMEOUT, "Operation timed out");
  char *text = jfix_read(&f);
  assert_non_null(strstr(text, "{\"ts\":\"20"));
  strip_ts(text);
  assert_string_equal(text, "{\"epoch\":4,\"client\":\"127.0.0.1:5000\",\"kind\":\"write\",\"ok_on\":\"ORIGIN\","
                            "\"failed_on\":\"TARGET\",\"error\":\"WRITE_TIMEOUT: Operation timed out\","
                            "\"keyspace\":\"ks\",\"table\":\"t\",\"query\":\"INSERT INTO ks.t (k, v) VALUES (?, ?)\","
                            "\"consistency\":\"QUORUM\",\"timestamp\":1700000000000001}\n");
  free(text);
  /* with write_divergence_log_values, the values in hex; an unreachable secondary is journaled too */
  hs.pw.conf->write_divergence_log_values = true;
  hs.be.unreachable[TDM_CONF_TARGET] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, insert_body()), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN));
  text = jfix_read(&f);
  char *second = strchr(text, '\n') + 1;
  strip_ts(second);
  assert_string_equal(second, "{\"epoch\":4,\"client\":\"127.0.0.1:5000\",\"kind\":\"write\",\"ok_on\":\"ORIGIN\","
                              "\"failed_on\":\"TARGET\",\"error\":\"UNAVAILABLE: tandem: no reachable TARGET node "
                              "(not sent)\",\"keyspace\":\"ks\",\"table\":\"t\","
                              "\"query\":\"INSERT INTO ks.t (k, v) VALUES (?, ?)\",\"consistency\":\"QUORUM\","
                              "\"timestamp\":1700000000000001,\"values\":[\"6b31\",null]}\n");
  free(text);
  assert_int_equal(hs.pw.stats.write_divergence[0][TDM_CONF_TARGET], 2);
  assert_int_equal(hs.pw.stats.divergence_journal_dropped, 0);
  /* off in the request's epoch: counted, not journaled */
  hs.be.unreachable[TDM_CONF_TARGET] = false;
  hs.pw.conf->write_divergence_log[0] = '\0';
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 3, insert_body()), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN));
  reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_WRITE_FAILURE, "x");
  text = jfix_read(&f);
  int lines = 0;
  for (char *p = text; (p = strchr(p, '\n')); p++) lines++;
  assert_int_equal(lines, 2);
  free(text);
  assert_int_equal(hs.pw.stats.write_divergence[0][TDM_CONF_TARGET], 3);
  harness_free(&hs);
  jfix_free(&f);
}

static const uint8_t O1[4] = { 0xca, 0xfe, 0x00, 0x01 };
static const uint8_t T1[4] = { 0xbe, 0xef, 0x00, 0x02 };

static void put_entry(harness_t *hs, const uint8_t *o, const uint8_t *t, const char *text)
{
  tdm_prepared_entry_t *e;
  assert_int_equal(tdm_prepared_entry_new(o, 4, t, 4, tdm_str_from(text), TDM_STR("ks"), (int)TDM_CLASSIFY_CLASS_WRITE,
                                          0, &e), 0);
  tdm_prepared_registry_put(hs->pw.registry, e);
}

static void test_execute_and_batch_lines(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  jfix_t f;
  jfix_init(&f, &hs, NULL);
  hs.pw.conf->write_divergence_log_values = true;
  put_entry(&hs, O1, T1, "UPDATE cnt SET n = n + 1 WHERE k = ?");
  /* EXECUTE: TARGET applied, ORIGIN's connection lost after the write */
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 4, NULL, 0, TDM_CL_LOCAL_ONE)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_TARGET));
  fail_leg(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_ECLOSED, true, "10.0.0.1:9042");
  char *text = jfix_read(&f);
  strip_ts(text);
  assert_string_equal(text, "{\"epoch\":4,\"client\":\"127.0.0.1:5000\",\"kind\":\"write\",\"ok_on\":\"TARGET\","
                            "\"failed_on\":\"ORIGIN\",\"error\":\"connection to ORIGIN 10.0.0.1:9042 lost\","
                            "\"keyspace\":\"ks\",\"table\":\"cnt\",\"prepared_id\":\"cafe0001\","
                            "\"query\":\"UPDATE cnt SET n = n + 1 WHERE k = ?\",\"consistency\":\"LOCAL_ONE\","
                            "\"values\":[\"0000002a\"]}\n");
  free(text);
  /* COUNTER BATCH of a simple child and a prepared one: kind counter, every statement listed */
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_writer_t vw;
  tdm_writer_init(&vw);
  tdm_writer_bytes(&vw, "z", 1);
  tdm_batch_child_t ch[2] = {
    { .kind = TDM_REQUEST_BATCH_KIND_QUERY, .query = TDM_STR("UPDATE other.c SET n = n + 1 WHERE k = 'a'") },
    { .kind = TDM_REQUEST_BATCH_KIND_PREPARED, .id = { O1, 4 }, .values_count = 1, .values = vw.buf,
      .values_len = vw.len },
  };
  tdm_query_params_t p = { .consistency = TDM_CL_ONE, .paging_state = { NULL, -1 } };
  assert_int_equal(tdm_request_encode_batch(&w, TDM_PROTO_V4, TDM_BATCH_COUNTER, ch, 2, &p), 0);
  tdm_writer_free(&vw);
  assert_int_equal(send_req(&hs, TDM_OP_BATCH, 0, 2, take(&w)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN));
  reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_WRITE_TIMEOUT, "t/o");
  text = jfix_read(&f);
  char *second = strchr(text, '\n') + 1;
  strip_ts(second);
  assert_string_equal(second, "{\"epoch\":4,\"client\":\"127.0.0.1:5000\",\"kind\":\"counter\",\"ok_on\":\"ORIGIN\","
                              "\"failed_on\":\"TARGET\",\"error\":\"WRITE_TIMEOUT: t/o\",\"keyspace\":\"other\","
                              "\"table\":\"c\",\"batch_type\":\"COUNTER\",\"statements\":["
                              "{\"index\":0,\"query\":\"UPDATE other.c SET n = n + 1 WHERE k = 'a'\",\"values\":[]},"
                              "{\"index\":1,\"prepared_id\":\"cafe0001\",\"query\":\"UPDATE cnt SET n = n + 1 WHERE k = ?\","
                              "\"values\":[\"7a\"]}],\"consistency\":\"ONE\"}\n");
  free(text);
  assert_int_equal(hs.pw.stats.write_divergence[0][TDM_CONF_ORIGIN], 1);
  assert_int_equal(hs.pw.stats.write_divergence[1][TDM_CONF_TARGET], 1);
  harness_free(&hs);
  jfix_free(&f);
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

static void test_lwt_mismatch_line(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  jfix_t f;
  jfix_init(&f, &hs, NULL);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, "UPDATE ks.t SET v = 1 WHERE k = 1 IF v = 0",
                                                                   TDM_CL_ONE, 0, NULL)), 0);
  buf_t a = applied_rows(false), b = applied_rows(true);
  reply(&hs, sent_to(&hs, TDM_CONF_ORIGIN), TDM_OP_RESULT, 0, a.p, a.n);
  reply(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_RESULT, 0, b.p, b.n);
  free(a.p);
  free(b.p);
  char *text = jfix_read(&f);
  strip_ts(text);
  assert_string_equal(text, "{\"epoch\":4,\"client\":\"127.0.0.1:5000\",\"kind\":\"lwt_mismatch\",\"ok_on\":\"TARGET\","
                            "\"failed_on\":\"ORIGIN\",\"error\":\"[applied] false on ORIGIN, true on TARGET\","
                            "\"keyspace\":\"ks\",\"table\":\"t\","
                            "\"query\":\"UPDATE ks.t SET v = 1 WHERE k = 1 IF v = 0\",\"consistency\":\"ONE\"}\n");
  free(text);
  assert_int_equal(hs.pw.stats.lwt_applied_mismatch, 1);
  harness_free(&hs);
  jfix_free(&f);
}

/* A journal whose writer is stuck (a FIFO nobody reads) and whose queue holds one line: the second
 * divergence is dropped and counted, and the worker never waits. */
static void test_journal_full_counts_drops(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  jfix_t f;
  tdm_journal_options_t o = { .queue_lines = 1 };
  jfix_init(&f, &hs, &o);
  char fifo[220];
  snprintf(fifo, sizeof(fifo), "%s/fifo", f.dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  tdm_journal_configure(f.j, fifo, 1 << 20);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, (int16_t)i, insert_body()), 0);
    reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN));
    reply_error(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_ERR_WRITE_TIMEOUT, "x");
  }
  assert_int_equal(hs.pw.stats.write_divergence[0][TDM_CONF_TARGET], 3);
  assert_int_equal(hs.pw.stats.divergence_journal_dropped, 2);
  int rfd = open(fifo, O_RDONLY); /* lets the writer finish */
  assert_true(rfd >= 0);
  tdm_journal_flush(f.j);
  char buf[4096];
  ssize_t n = read(rfd, buf, sizeof(buf) - 1);
  assert_true(n > 0);
  buf[n] = '\0';
  assert_non_null(strstr(buf, "\"failed_on\":\"TARGET\""));
  harness_free(&hs);
  jfix_free(&f);
  close(rfd);
}

static void test_pool_queue_wait(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->proxy_request_timeout_ms = 60;
  /* written at once: not observed */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, "SELECT v FROM ks.t", TDM_CL_ONE, 0, NULL)), 0);
  reply_ok(&hs, 0);
  assert_int_equal(hs.pw.stats.pool_queue_wait.count, 0);
  /* queued by the backend, written 7 ms after the hand-over */
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, "SELECT v FROM ks.t", TDM_CL_ONE, 0, NULL)), 0);
  tdm_leg_t *leg = hs.be.sent[1].leg;
  leg->queued = true;
  leg->sent_at_ms = uv_now(&hs.loop) + 7;
  reply_ok(&hs, 1);
  assert_int_equal(hs.pw.stats.pool_queue_wait.count, 1);
  assert_true(hs.pw.stats.pool_queue_wait.sum_ms == 7.0);
  /* still queued when the timer fires: observed with the whole wait */
  hs.be.queue[TDM_CONF_ORIGIN] = true;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 3, query_body(4, "SELECT v FROM ks.t", TDM_CL_ONE, 0, NULL)), 0);
  hs.be.sent[2].leg->queued = true;
  run_for(&hs, 100);
  assert_int_equal(hs.client.nresp, 3);
  assert_int_equal(client_error(&hs, 2).code, TDM_ERR_OVERLOADED);
  assert_int_equal(hs.pw.stats.pool_queue_wait.count, 2);
  assert_true(hs.pw.stats.pool_queue_wait.sum_ms >= 7.0 + 60.0);
  harness_free(&hs);
}

static void test_reprepare_timeout_counted(void **state)
{
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  put_entry(&hs, O1, T1, "UPDATE t SET v = ? WHERE k = ?");
  assert_int_equal(send_req(&hs, TDM_OP_EXECUTE, 0, 1, execute_body(4, O1, 4, NULL, 0, TDM_CL_ONE)), 0);
  reply_ok(&hs, sent_to(&hs, TDM_CONF_ORIGIN));
  buf_t u;
  {
    tdm_writer_t w;
    tdm_writer_init(&w);
    tdm_response_error_t e = { .code = TDM_ERR_UNPREPARED, .message = TDM_STR("unknown"), .unprepared_id = { T1, 4 } };
    assert_int_equal(tdm_response_encode_error(&w, TDM_PROTO_V4, &e), 0);
    u = take(&w);
  }
  reply(&hs, sent_to(&hs, TDM_CONF_TARGET), TDM_OP_ERROR, 0, u.p, u.n);
  free(u.p);
  assert_int_equal(hs.be.sent[hs.be.nsent - 1].opcode, TDM_OP_PREPARE); /* the re-prepare is out... */
  run_for(&hs, 80);                                                     /* ...and never answered */
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(hs.pw.stats.pscache_reprepares_failed_target, 1);
  assert_int_equal(hs.pw.stats.pscache_reprepares_ok_target, 0);
  harness_free(&hs);
}

int main(void)
{
  tdm_log_set_level(TDM_LOG_FATAL);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_query_line),
    cmocka_unit_test(test_execute_and_batch_lines),
    cmocka_unit_test(test_lwt_mismatch_line),
    cmocka_unit_test(test_journal_full_counts_drops),
    cmocka_unit_test(test_pool_queue_wait),
    cmocka_unit_test(test_reprepare_timeout_counted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
