/* The mock node's scripted behaviour (tests/mock): canned Rows, delays (measured), ERRORs with the
 * fields of each code (v4 and v5 layouts), close and reset, garbage bytes, no answer, UNPREPARED; match
 * counts (times, every, skip), node and opcode filters, EXECUTE matched by its prepared text, RULE
 * LIST/DEL/CLEAR, and rules loaded from --script. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "mockctl.h"

#define TIMEOUT 5000

static const char *const one_node[] = { "--node", "127.0.0.1:0", NULL };
static const char *const two_nodes[] = { "--node", "127.0.0.1:0", "--node", "127.0.0.2:0", NULL };

static void spawn(tdm_mockctl_t *m, const char *const *args) { assert_int_equal(tdm_mockctl_spawn(m, args, 20000), 0); }
static void stop(tdm_mockctl_t *m) { assert_int_equal(tdm_mockctl_stop(m, 10000), 0); }

static void rule(tdm_mockctl_t *m, const char *fields)
{
  char reply[512];
  int rc = tdm_mockctl_cmd(m, reply, sizeof(reply), "RULE ADD %s", fields);
  if (rc) fail_msg("RULE ADD %s -> %s", fields, reply);
}

static int64_t ms_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t error_of(const tdm_mockctl_frame_t *f)
{
  uint32_t code = 0xffffffffu;
  assert_int_equal(f->h.opcode, TDM_OP_ERROR);
  assert_int_equal(tdm_mockctl_error_code(f, &code, NULL, 0), 0);
  return code;
}

static int32_t result_kind(const tdm_mockctl_frame_t *f)
{
  int32_t kind = -1;
  assert_int_equal(f->h.opcode, TDM_OP_RESULT);
  assert_int_equal(tdm_response_peek_result_kind(f->body, f->len, &kind), 0);
  return kind;
}

/* QUERY and its answer. */
static void q(tdm_mockctl_cql_t *c, int16_t stream, const char *cql, tdm_mockctl_frame_t *f)
{
  assert_int_equal(tdm_mockctl_cql_query(c, stream, cql, f, TIMEOUT), 0);
}

static void prepare(tdm_mockctl_cql_t *c, const char *cql, uint8_t id[16], uint8_t metadata_id[16])
{
  tdm_writer_t w;
  tdm_mockctl_frame_t f;
  tdm_response_t r;
  tdm_writer_init(&w);
  tdm_request_encode_prepare(&w, c->version, tdm_str_from(cql), NULL);
  assert_int_equal(tdm_mockctl_cql_request(c, 90, TDM_OP_PREPARE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(result_kind(&f), TDM_RESULT_PREPARED);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.result.prepared.id.len, 16);
  memcpy(id, r.result.prepared.id.ptr, 16);
  if (metadata_id) {
    assert_int_equal(r.result.prepared.result_metadata_id.len, 16);
    memcpy(metadata_id, r.result.prepared.result_metadata_id.ptr, 16);
  }
  tdm_mockctl_frame_free(&f);
}

static void execute(tdm_mockctl_cql_t *c, int16_t stream, const uint8_t id[16], const uint8_t *mid, const char *value,
                    tdm_mockctl_frame_t *f)
{
  tdm_writer_t w, vals;
  tdm_writer_init(&vals);
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  if (value) {
    tdm_request_write_value(&vals, (tdm_bytes_t){ (const uint8_t *)value, (int32_t)strlen(value) });
    p.flags = TDM_QFLAG_VALUES;
    p.values_count = 1;
    p.values = vals.buf;
    p.values_len = vals.len;
  }
  tdm_writer_init(&w);
  tdm_request_encode_execute(&w, c->version, (tdm_bytes_t){ id, 16 }, (tdm_bytes_t){ mid, mid ? 16 : 0 }, &p);
  assert_int_equal(tdm_mockctl_cql_request(c, stream, TDM_OP_EXECUTE, w.buf, w.len, f, TIMEOUT), 0);
  tdm_writer_free(&w);
  tdm_writer_free(&vals);
}

static void test_rows(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  tdm_bytes_t cell;
  uint16_t type;
  int32_t n;
  spawn(&m, one_node);
  rule(&m, "op=QUERY,EXECUTE match=\"FROM ks.canned\" action=rows columns=\"k:text,n:int,ok:boolean,s:set<text>\" "
           "rows=\"a,1,true,x|y;b\\,c,null,false,\" ks=ks table=canned");
  for (uint8_t v = 3; v <= 5; v++) {
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, v, NULL, &c), 0);
    q(&c, 1, "SELECT * FROM ks.canned", &f);
    assert_int_equal(tdm_mockctl_rows_count(&f, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "n", &cell, &type), 0);
    assert_int_equal(type, TDM_CQLTYPE_INT);
    assert_int_equal(cell.len, 4);
    assert_int_equal(cell.ptr[3], 1);
    assert_int_equal(tdm_mockctl_rows_cell(&f, 1, "k", &cell, &type), 0);
    assert_int_equal(cell.len, 3);
    assert_memory_equal(cell.ptr, "b,c", 3);
    assert_int_equal(tdm_mockctl_rows_cell(&f, 1, "n", &cell, &type), 0);
    assert_int_equal(cell.len, -1);
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "s", &cell, &type), 0);
    assert_int_equal(type, TDM_CQLTYPE_SET);
    assert_int_equal(cell.len, 4 + 2 * (4 + 1));
    tdm_mockctl_frame_free(&f);
    /* EXECUTE matches the prepared text */
    uint8_t id[16], mid[16];
    prepare(&c, "SELECT k FROM ks.canned WHERE k = ?", id, v == 5 ? mid : NULL);
    execute(&c, 2, id, v == 5 ? mid : NULL, "a", &f);
    assert_int_equal(tdm_mockctl_rows_count(&f, &n), 0);
    assert_int_equal(n, 2);
    tdm_mockctl_frame_free(&f);
    tdm_mockctl_cql_close(&c);
  }
  char reply[64];
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RULE ADD action=rows columns=\"n:int\" rows=\"x\""),
                   TDM_EINVAL);
  assert_non_null(strstr(reply, "ERR"));
  stop(&m);
}

static void test_delay(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  spawn(&m, one_node);
  rule(&m, "op=QUERY match=slow_table delay=300");
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_query(&w, 4, TDM_STR("SELECT * FROM ks.slow_table"), &p);
  int64_t t0 = ms_now();
  assert_int_equal(tdm_mockctl_cql_send(&c, 1, TDM_OP_QUERY, w.buf, w.len), 0);
  tdm_writer_free(&w);
  /* a request sent after it is answered first: stream ids let answers overtake */
  q(&c, 2, "INSERT INTO ks.quick (k) VALUES ('x')", &f);
  assert_true(ms_now() - t0 < 300);
  tdm_mockctl_frame_free(&f);
  assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), 0);
  assert_int_equal(f.h.stream, 1);
  assert_true(ms_now() - t0 >= 300);
  assert_int_equal(result_kind(&f), TDM_RESULT_ROWS); /* delay alone keeps the default answer */
  tdm_mockctl_frame_free(&f);
  /* a delayed request whose connection closes meanwhile is dropped cleanly */
  tdm_writer_init(&w);
  tdm_request_encode_query(&w, 4, TDM_STR("SELECT * FROM ks.slow_table"), &p);
  assert_int_equal(tdm_mockctl_cql_send(&c, 3, TDM_OP_QUERY, w.buf, w.len), 0);
  tdm_writer_free(&w);
  tdm_mockctl_cql_close(&c);
  usleep(400 * 1000);
  stop(&m);
}

static void decode_error(const tdm_mockctl_frame_t *f, tdm_response_t *r)
{
  assert_int_equal(f->h.opcode, TDM_OP_ERROR);
  assert_int_equal(tdm_response_decode(f->h.version, f->h.opcode, f->body, f->len, r, NULL), 0);
}

static void test_errors(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_frame_t f;
  tdm_response_t r;
  spawn(&m, one_node);
  rule(&m, "op=QUERY match=wt action=error code=WRITE_TIMEOUT cl=QUORUM received=1 blockfor=2 write_type=BATCH "
           "msg=\"Operation timed out\"");
  rule(&m, "op=QUERY match=un action=error code=0x1000 cl=LOCAL_QUORUM required=3 alive=1");
  rule(&m, "op=QUERY match=rt action=error code=READ_TIMEOUT received=0 blockfor=1 data_present=1");
  rule(&m, "op=QUERY match=rf action=error code=READ_FAILURE failures=2 data_present=0");
  rule(&m, "op=QUERY match=ae action=error code=ALREADY_EXISTS ks=ks1 table=t1");
  rule(&m, "op=QUERY match=ff action=error code=FUNCTION_FAILURE ks=ks2 function=f args=\"int,text\"");
  rule(&m, "op=QUERY match=ov action=error code=OVERLOADED msg=\"busy\"");
  for (uint8_t v = 4; v <= 5; v++) {
    tdm_mockctl_cql_t c;
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, v, NULL, &c), 0);
    q(&c, 1, "INSERT INTO wt (k) VALUES (1)", &f);
    decode_error(&f, &r);
    assert_int_equal(r.error.code, TDM_ERR_WRITE_TIMEOUT);
    assert_true(tdm_str_eq_cstr(r.error.message, "Operation timed out"));
    assert_int_equal(r.error.consistency, TDM_CL_QUORUM);
    assert_int_equal(r.error.received, 1);
    assert_int_equal(r.error.block_for, 2);
    assert_true(tdm_str_eq_cstr(r.error.write_type, "BATCH"));
    tdm_mockctl_frame_free(&f);
    q(&c, 2, "SELECT * FROM un", &f);
    decode_error(&f, &r);
    assert_int_equal(r.error.code, TDM_ERR_UNAVAILABLE);
    assert_int_equal(r.error.consistency, TDM_CL_LOCAL_QUORUM);
    assert_int_equal(r.error.required, 3);
    assert_int_equal(r.error.alive, 1);
    tdm_mockctl_frame_free(&f);
    q(&c, 3, "SELECT * FROM rt", &f);
    decode_error(&f, &r);
    assert_int_equal(r.error.code, TDM_ERR_READ_TIMEOUT);
    assert_int_equal(r.error.data_present, 1);
    assert_int_equal(r.error.block_for, 1);
    tdm_mockctl_frame_free(&f);
    q(&c, 4, "SELECT * FROM rf", &f);
    decode_error(&f, &r);
    assert_int_equal(r.error.code, TDM_ERR_READ_FAILURE);
    assert_int_equal(r.error.failures, 2);
    if (v == 5) { /* v5 carries a reason map instead of a count */
      size_t pos = 0;
      tdm_response_reason_t reason;
      assert_int_equal(tdm_response_reason_next(&r.error, &pos, &reason), 1);
      assert_int_equal(reason.addr_len, 4);
    }
    tdm_mockctl_frame_free(&f);
    q(&c, 5, "CREATE TABLE ae (k int PRIMARY KEY)", &f);
    decode_error(&f, &r);
    assert_int_equal(r.error.code, TDM_ERR_ALREADY_EXISTS);
    assert_true(tdm_str_eq_cstr(r.error.keyspace, "ks1"));
    assert_true(tdm_str_eq_cstr(r.error.table, "t1"));
    tdm_mockctl_frame_free(&f);
    q(&c, 6, "SELECT ff(x) FROM t", &f);
    decode_error(&f, &r);
    assert_int_equal(r.error.code, TDM_ERR_FUNCTION_FAILURE);
    assert_true(tdm_str_eq_cstr(r.error.function, "f"));
    assert_int_equal(r.error.arg_types.count, 2);
    tdm_mockctl_frame_free(&f);
    q(&c, 7, "SELECT * FROM ov", &f);
    assert_int_equal(error_of(&f), TDM_ERR_OVERLOADED);
    tdm_mockctl_frame_free(&f);
    tdm_mockctl_cql_close(&c);
  }
  stop(&m);
}

/* A handshake step can be scripted too: here STARTUP in v5 is refused like an older node would. */
static void test_handshake_rules(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  uint32_t code = 0;
  char host[64];
  uint16_t port;
  spawn(&m, one_node);
  rule(&m, "op=STARTUP version=5 action=error code=PROTOCOL_ERROR "
           "msg=\"Beta version of the protocol used (5/v5-beta)\"");
  rule(&m, "op=OPTIONS delay=100");
  assert_int_equal(tdm_mockctl_node(&m, 0, host, sizeof(host), &port), 0);
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V5), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, NULL, NULL, NULL, &code), TDM_EINVAL);
  assert_int_equal(code, TDM_ERR_PROTOCOL_ERROR);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  tdm_mockctl_frame_t f;
  int64_t t0 = ms_now();
  assert_int_equal(tdm_mockctl_cql_request(&c, 1, TDM_OP_OPTIONS, NULL, 0, &f, TIMEOUT), 0);
  assert_int_equal(f.h.opcode, TDM_OP_SUPPORTED);
  assert_true(ms_now() - t0 >= 100);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

static void test_close_and_reset(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  spawn(&m, one_node);
  rule(&m, "op=QUERY match=hangup action=close");
  rule(&m, "op=QUERY match=rst action=close reset=1");
  const char *texts[] = { "SELECT * FROM hangup", "SELECT * FROM rst" };
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
    q(&c, 1, "SELECT * FROM ok", &f); /* an earlier answer still arrives */
    tdm_mockctl_frame_free(&f);
    assert_int_equal(tdm_mockctl_cql_query(&c, 2, texts[i], &f, TIMEOUT), TDM_ECLOSED);
    tdm_mockctl_cql_close(&c);
  }
  char reply[256];
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "CONNS"), 0);
  assert_string_equal(reply, "OK []");
  stop(&m);
}

static void test_garbage(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  spawn(&m, one_node);
  rule(&m, "op=QUERY match=junk action=garbage bytes=48");
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_query(&w, 4, TDM_STR("SELECT * FROM junk"), &p);
  assert_int_equal(tdm_mockctl_cql_send(&c, 1, TDM_OP_QUERY, w.buf, w.len), 0);
  tdm_writer_free(&w);
  uint8_t buf[128];
  size_t got = 0;
  int64_t deadline = ms_now() + TIMEOUT;
  while (got < 48 && ms_now() < deadline) {
    ssize_t r = recv(c.fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
    if (r > 0) got += (size_t)r;
    else usleep(5000);
  }
  assert_int_equal(got, 48);
  assert_int_equal(buf[0], 0xff); /* never a valid version byte */
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

static void test_noreply(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  spawn(&m, one_node);
  rule(&m, "op=QUERY match=blackhole action=noreply");
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V5, "lz4", &c), 0);
  assert_int_equal(tdm_mockctl_cql_query(&c, 1, "SELECT * FROM blackhole", &f, 300), TDM_ETIMEOUT);
  q(&c, 2, "SELECT * FROM fine", &f); /* the connection still serves */
  assert_int_equal(f.h.stream, 2);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_count(&m, "op=QUERY match=blackhole"), 1);
  stop(&m);
}

static void test_unprepared(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  tdm_response_t r;
  uint8_t id[16], mid[16];
  spawn(&m, one_node);
  rule(&m, "op=EXECUTE match=\"INSERT INTO ks.p\" action=unprepared times=1");
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V5, NULL, &c), 0);
  prepare(&c, "INSERT INTO ks.p (k) VALUES (?)", id, mid);
  execute(&c, 1, id, mid, "a", &f);
  decode_error(&f, &r);
  assert_int_equal(r.error.code, TDM_ERR_UNPREPARED);
  assert_int_equal(r.error.unprepared_id.len, 16);
  assert_memory_equal(r.error.unprepared_id.ptr, id, 16);
  tdm_mockctl_frame_free(&f);
  execute(&c, 2, id, mid, "a", &f); /* times=1: the second one runs */
  assert_int_equal(result_kind(&f), TDM_RESULT_VOID);
  tdm_mockctl_frame_free(&f);
  /* an id the node never prepared */
  uint8_t bogus[16] = { 1, 2, 3 };
  execute(&c, 3, bogus, mid, NULL, &f);
  decode_error(&f, &r);
  assert_int_equal(r.error.code, TDM_ERR_UNPREPARED);
  assert_memory_equal(r.error.unprepared_id.ptr, bogus, 16);
  assert_true(tdm_str_eq_cstr(r.error.message,
                              "Prepared query with ID 01020300000000000000000000000000 not found (either the query was "
                              "not prepared on this host (maybe the host has been restarted?) or you have prepared too "
                              "many queries and it has been evicted from the internal cache)"));
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_count(&m, "op=EXECUTE match=\"INSERT INTO ks.p\""), 2);
  stop(&m);
}

static void test_match_counts(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  char reply[2048];
  spawn(&m, one_node);
  rule(&m, "op=QUERY match=first2 action=error code=0x1001 times=2");
  rule(&m, "op=QUERY match=third action=error code=0x1001 every=3");
  rule(&m, "op=QUERY match=second action=error code=0x1001 skip=1 times=1");
  rule(&m, "op=QUERY regex=\"^DELETE FROM ks\\\\.r[0-9]+$\" action=error code=0x2200");
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  int fired[3][7] = { { 0 } };
  const char *texts[3] = { "SELECT * FROM first2", "SELECT * FROM third", "SELECT * FROM second" };
  for (int t = 0; t < 3; t++) {
    for (int i = 1; i <= 6; i++) {
      q(&c, (int16_t)(t * 10 + i), texts[t], &f);
      fired[t][i] = f.h.opcode == TDM_OP_ERROR;
      tdm_mockctl_frame_free(&f);
    }
  }
  const int want[3][7] = { { 0, 1, 1, 0, 0, 0, 0 }, { 0, 0, 0, 1, 0, 0, 1 }, { 0, 0, 1, 0, 0, 0, 0 } };
  assert_memory_equal(fired, want, sizeof(want));
  q(&c, 40, "DELETE FROM ks.r12", &f);
  assert_int_equal(error_of(&f), TDM_ERR_INVALID);
  tdm_mockctl_frame_free(&f);
  q(&c, 41, "DELETE FROM ks.rx", &f);
  assert_int_equal(result_kind(&f), TDM_RESULT_VOID);
  tdm_mockctl_frame_free(&f);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RULE LIST"), 0);
  assert_non_null(strstr(reply, "\"id\":1,\"action\":\"error\",\"matched\":6,\"fired\":2"));
  assert_non_null(strstr(reply, "\"id\":2,\"action\":\"error\",\"matched\":6,\"fired\":2"));
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RULE DEL id=2"), 0);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RULE DEL id=2"), TDM_EINVAL);
  q(&c, 50, "SELECT * FROM third", &f); /* would have been the 9th match: deleted, so default */
  assert_int_equal(result_kind(&f), TDM_RESULT_ROWS);
  tdm_mockctl_frame_free(&f);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RULE CLEAR"), 0);
  q(&c, 51, "DELETE FROM ks.r12", &f);
  assert_int_equal(result_kind(&f), TDM_RESULT_VOID);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RULE ADD op=NOPE action=void"), TDM_EINVAL);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RULE ADD action=void colour=red"), TDM_EINVAL);
  assert_string_equal(reply, "ERR unknown field 'colour'");
  stop(&m);
}

static void test_node_filter(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_frame_t f;
  spawn(&m, two_nodes);
  char rule_text[128];
  snprintf(rule_text, sizeof(rule_text), "node=%s op=QUERY action=error code=0x1000", m.nodes[1]);
  rule(&m, rule_text);
  for (size_t n = 0; n < 2; n++) {
    tdm_mockctl_cql_t c;
    assert_int_equal(tdm_mockctl_cql_open(&m, n, TDM_PROTO_V4, NULL, &c), 0);
    q(&c, 1, "INSERT INTO ks.t (k) VALUES ('a')", &f);
    assert_int_equal(f.h.opcode, n == 1 ? TDM_OP_ERROR : TDM_OP_RESULT);
    tdm_mockctl_frame_free(&f);
    tdm_mockctl_cql_close(&c);
  }
  stop(&m);
}

static void test_script(void **state)
{
  (void)state;
  char path[] = "/tmp/tdm-mock-script-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char script[] = "# scripted from the start\n"
                        "RULE ADD op=QUERY match=\"FROM ks.boot\" action=rows columns=\"v:text\" rows=\"hello\"\n"
                        "\n   RULE ADD op=PREPARE action=error code=SYNTAX_ERROR msg=\"no\"\n";
  assert_int_equal(write(fd, script, sizeof(script) - 1), (ssize_t)(sizeof(script) - 1));
  close(fd);
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  const char *args[] = { "--node", "127.0.0.1:0", "--script", path, NULL };
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  q(&c, 1, "SELECT v FROM ks.boot", &f);
  tdm_bytes_t cell;
  assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "v", &cell, NULL), 0);
  assert_int_equal(cell.len, 5);
  tdm_mockctl_frame_free(&f);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_prepare(&w, 4, TDM_STR("SELECT 1"), NULL);
  assert_int_equal(tdm_mockctl_cql_request(&c, 2, TDM_OP_PREPARE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(error_of(&f), TDM_ERR_SYNTAX_ERROR);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  stop(&m);
  /* a bad script line stops start-up: no ready line */
  fd = open(path, O_WRONLY | O_TRUNC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "RULE ADD action=explode\n", 24), 24);
  close(fd);
  assert_true(tdm_mockctl_spawn(&m, args, 20000) < 0);
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rows),         cmocka_unit_test(test_delay),         cmocka_unit_test(test_errors),
    cmocka_unit_test(test_handshake_rules), cmocka_unit_test(test_close_and_reset), cmocka_unit_test(test_garbage),
    cmocka_unit_test(test_noreply),      cmocka_unit_test(test_unprepared),    cmocka_unit_test(test_match_counts),
    cmocka_unit_test(test_node_filter),  cmocka_unit_test(test_script),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
