/* The mock's key/value store and statement answers (tests/mock): writes read back through QUERY,
 * PREPARE/EXECUTE (bind metadata with types and partition key, v5 result_metadata_id and skip_metadata),
 * UPDATE/DELETE, BEGIN BATCH text and the BATCH opcode (UNPREPARED child: nothing applied), USE, and
 * --no-store; --fast answers pipelined requests from its cache with the right stream ids. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "mockctl.h"

#define TIMEOUT 5000

static void spawn(tdm_mockctl_t *m, const char *const *args) { assert_int_equal(tdm_mockctl_spawn(m, args, 20000), 0); }
static void stop(tdm_mockctl_t *m) { assert_int_equal(tdm_mockctl_stop(m, 10000), 0); }

static void q(tdm_mockctl_cql_t *c, const char *cql, tdm_mockctl_frame_t *f)
{
  static int16_t stream = 1;
  stream = (int16_t)(stream % 30000 + 1);
  assert_int_equal(tdm_mockctl_cql_query(c, stream, cql, f, TIMEOUT), 0);
}

static void q_ok(tdm_mockctl_cql_t *c, const char *cql)
{
  tdm_mockctl_frame_t f;
  q(c, cql, &f);
  assert_int_equal(f.h.opcode, TDM_OP_RESULT);
  tdm_mockctl_frame_free(&f);
}

/* The text value of column col in the only row of a QUERY's answer, or NULL when there is no row. */
static char *one_text(tdm_mockctl_cql_t *c, const char *cql, const char *col, char *buf, size_t cap)
{
  tdm_mockctl_frame_t f;
  int32_t n;
  tdm_bytes_t cell;
  q(c, cql, &f);
  assert_int_equal(tdm_mockctl_rows_count(&f, &n), 0);
  assert_true(n <= 1);
  char *out = NULL;
  if (n == 1) {
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, col, &cell, NULL), 0);
    assert_true(cell.len >= 0 && (size_t)cell.len < cap);
    memcpy(buf, cell.ptr, (size_t)cell.len);
    buf[cell.len] = '\0';
    out = buf;
  }
  tdm_mockctl_frame_free(&f);
  return out;
}

static void prepare(tdm_mockctl_cql_t *c, const char *cql, uint8_t id[16], uint8_t mid[16], tdm_mockctl_frame_t *out)
{
  tdm_writer_t w;
  tdm_mockctl_frame_t f;
  tdm_response_t r;
  tdm_writer_init(&w);
  tdm_request_encode_prepare(&w, c->version, tdm_str_from(cql), NULL);
  assert_int_equal(tdm_mockctl_cql_request(c, 77, TDM_OP_PREPARE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.result.kind, TDM_RESULT_PREPARED);
  memcpy(id, r.result.prepared.id.ptr, 16);
  if (mid) memcpy(mid, r.result.prepared.result_metadata_id.ptr, 16);
  if (out) *out = f;
  else tdm_mockctl_frame_free(&f);
}

static void execute(tdm_mockctl_cql_t *c, const uint8_t id[16], const uint8_t *mid, uint32_t flags,
                    const char *const *values, size_t n, tdm_mockctl_frame_t *f)
{
  tdm_writer_t w, vals;
  tdm_writer_init(&vals);
  for (size_t i = 0; i < n; i++)
    tdm_request_write_value(&vals, (tdm_bytes_t){ (const uint8_t *)values[i], (int32_t)strlen(values[i]) });
  tdm_query_params_t p = { .consistency = TDM_CL_ONE, .flags = flags | (n ? TDM_QFLAG_VALUES : 0),
                           .values_count = (uint16_t)n, .values = vals.buf, .values_len = vals.len };
  tdm_writer_init(&w);
  tdm_request_encode_execute(&w, c->version, (tdm_bytes_t){ id, 16 }, (tdm_bytes_t){ mid, mid ? 16 : 0 }, &p);
  assert_int_equal(tdm_mockctl_cql_request(c, 78, TDM_OP_EXECUTE, w.buf, w.len, f, TIMEOUT), 0);
  tdm_writer_free(&w);
  tdm_writer_free(&vals);
}

static void test_literal_round_trips(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  char buf[64];
  const char *args[] = { "--node", "127.0.0.1:0", NULL };
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, "lz4", &c), 0);
  assert_null(one_text(&c, "SELECT v FROM ks.t WHERE k = 'a'", "v", buf, sizeof(buf)));
  q_ok(&c, "INSERT INTO ks.t (k, v) VALUES ('a', 'it''s')");
  q_ok(&c, "INSERT INTO ks.t (k, v) VALUES ('b', 'bee')");
  assert_string_equal(one_text(&c, "SELECT v FROM ks.t WHERE k = 'a'", "v", buf, sizeof(buf)), "it's");
  q_ok(&c, "UPDATE ks.t SET v = 'new' WHERE k = 'a'");
  assert_string_equal(one_text(&c, "select V from KS.T where K = 'a'", "v", buf, sizeof(buf)), "new");
  q_ok(&c, "DELETE FROM ks.t WHERE k = 'a'");
  assert_null(one_text(&c, "SELECT v FROM ks.t WHERE k = 'a'", "v", buf, sizeof(buf)));
  assert_string_equal(one_text(&c, "SELECT v FROM ks.t WHERE k = 'b'", "v", buf, sizeof(buf)), "bee");
  q_ok(&c, "BEGIN UNLOGGED BATCH INSERT INTO ks.t (k, v) VALUES ('c', 'sea'); "
           "UPDATE ks.t SET v = 'dee' WHERE k = 'd' APPLY BATCH");
  assert_string_equal(one_text(&c, "SELECT v FROM ks.t WHERE k = 'c'", "v", buf, sizeof(buf)), "sea");
  assert_string_equal(one_text(&c, "SELECT v FROM ks.t WHERE k = 'd'", "v", buf, sizeof(buf)), "dee");
  /* USE makes unqualified names resolve */
  q_ok(&c, "USE ks");
  assert_string_equal(one_text(&c, "SELECT v FROM t WHERE k = 'b'", "v", buf, sizeof(buf)), "bee");
  tdm_mockctl_frame_t f;
  int32_t n;
  q(&c, "SELECT * FROM t", &f);
  assert_int_equal(tdm_mockctl_rows_count(&f, &n), 0);
  assert_int_equal(n, 3);
  tdm_mockctl_frame_free(&f);
  q_ok(&c, "TRUNCATE t");
  assert_null(one_text(&c, "SELECT v FROM ks.t WHERE k = 'b'", "v", buf, sizeof(buf)));
  tdm_mockctl_cql_close(&c);
  char reply[1024];
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "STATS"), 0);
  assert_non_null(strstr(reply, "\"store_rows\":0"));
  stop(&m);
}

static void test_prepared_round_trips(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  const char *args[] = { "--node", "127.0.0.1:0", NULL };
  spawn(&m, args);
  for (uint8_t v = 3; v <= 5; v++) {
    tdm_mockctl_cql_t c;
    tdm_mockctl_frame_t f;
    tdm_response_t r;
    uint8_t ins[16], sel[16], mid[16];
    char key[16];
    snprintf(key, sizeof(key), "key%u", v);
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, v, v == 5 ? "lz4" : NULL, &c), 0);
    q_ok(&c, "CREATE TABLE IF NOT EXISTS ks.kv (k text PRIMARY KEY, v blob, n int)");
    prepare(&c, "INSERT INTO ks.kv (k, v, n) VALUES (?, ?, 5)", ins, NULL, &f);
    /* bind metadata: names and types from the table, the partition key's index (v4+) */
    assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
    const tdm_response_metadata_t *vars = &r.result.prepared.variables;
    assert_int_equal(vars->columns_count, 2);
    tdm_response_column_t col;
    size_t pos = 0;
    assert_int_equal(tdm_response_column_next(vars, &pos, &col), 1);
    assert_true(tdm_str_eq_cstr(col.name, "k"));
    assert_int_equal(col.type.id, TDM_CQLTYPE_VARCHAR);
    assert_int_equal(tdm_response_column_next(vars, &pos, &col), 1);
    assert_true(tdm_str_eq_cstr(col.name, "v"));
    assert_int_equal(col.type.id, TDM_CQLTYPE_BLOB);
    if (v >= 4) {
      assert_int_equal(vars->pk_count, 1);
      assert_int_equal(tdm_response_pk_index(vars, 0), 0);
    }
    assert_true(r.result.prepared.result.flags & TDM_RFLAG_NO_METADATA);
    tdm_mockctl_frame_free(&f);
    const char *vals[2] = { key, "\x01\x02\x03" };
    execute(&c, ins, NULL, 0, vals, 2, &f);
    assert_int_equal(f.h.opcode, TDM_OP_RESULT);
    tdm_mockctl_frame_free(&f);

    prepare(&c, "SELECT v, n FROM ks.kv WHERE k = ?", sel, v == 5 ? mid : NULL, NULL);
    execute(&c, sel, v == 5 ? mid : NULL, 0, vals, 1, &f);
    tdm_bytes_t cell;
    uint16_t type;
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "v", &cell, &type), 0);
    assert_int_equal(type, TDM_CQLTYPE_BLOB);
    assert_int_equal(cell.len, 3);
    assert_memory_equal(cell.ptr, "\x01\x02\x03", 3);
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "n", &cell, &type), 0);
    assert_int_equal(type, TDM_CQLTYPE_INT);
    assert_int_equal(cell.len, 4);
    assert_int_equal(cell.ptr[3], 5); /* the literal, serialized as the column's int */
    tdm_mockctl_frame_free(&f);
    /* skip_metadata: rows without metadata (v5: only while the client's metadata id is current) */
    execute(&c, sel, v == 5 ? mid : NULL, TDM_QFLAG_SKIP_METADATA, vals, 1, &f);
    assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
    assert_true(r.result.rows.metadata.flags & TDM_RFLAG_NO_METADATA);
    assert_int_equal(r.result.rows.rows_count, 1);
    tdm_mockctl_frame_free(&f);
    if (v == 5) {
      uint8_t stale[16] = { 9 };
      execute(&c, sel, stale, TDM_QFLAG_SKIP_METADATA, vals, 1, &f);
      assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
      assert_true(r.result.rows.metadata.flags & TDM_RFLAG_METADATA_CHANGED);
      assert_int_equal(r.result.rows.metadata.new_metadata_id.len, 16);
      assert_memory_equal(r.result.rows.metadata.new_metadata_id.ptr, mid, 16);
      tdm_mockctl_frame_free(&f);
    }
    tdm_mockctl_cql_close(&c);
  }
  stop(&m);
}

static void test_batch_opcode(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  uint8_t ins[16];
  char buf[32];
  const char *args[] = { "--node", "127.0.0.1:0", NULL };
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V5, NULL, &c), 0);
  prepare(&c, "INSERT INTO ks.b (k, v) VALUES (?, ?)", ins, NULL, NULL);
  tdm_writer_t vals, w;
  tdm_writer_init(&vals);
  tdm_request_write_value(&vals, (tdm_bytes_t){ (const uint8_t *)"p", 1 });
  tdm_request_write_value(&vals, (tdm_bytes_t){ (const uint8_t *)"pv", 2 });
  uint8_t unknown[16] = { 0xaa };
  tdm_batch_child_t kids[3] = {
    { .kind = TDM_REQUEST_BATCH_KIND_QUERY, .query = TDM_STR("INSERT INTO ks.b (k, v) VALUES ('q', 'qv')") },
    { .kind = TDM_REQUEST_BATCH_KIND_PREPARED, .id = { ins, 16 }, .values_count = 2, .values = vals.buf,
      .values_len = vals.len },
    { .kind = TDM_REQUEST_BATCH_KIND_PREPARED, .id = { unknown, 16 } },
  };
  tdm_query_params_t p = { .consistency = TDM_CL_QUORUM };
  /* with an unknown child: UNPREPARED for that id, nothing applied */
  tdm_writer_init(&w);
  tdm_request_encode_batch(&w, 5, TDM_BATCH_UNLOGGED, kids, 3, &p);
  assert_int_equal(tdm_mockctl_cql_request(&c, 5, TDM_OP_BATCH, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.error.code, TDM_ERR_UNPREPARED);
  assert_memory_equal(r.error.unprepared_id.ptr, unknown, 16);
  tdm_mockctl_frame_free(&f);
  assert_null(one_text(&c, "SELECT v FROM ks.b WHERE k = 'q'", "v", buf, sizeof(buf)));
  /* without it: both applied */
  tdm_writer_init(&w);
  tdm_request_encode_batch(&w, 5, TDM_BATCH_LOGGED, kids, 2, &p);
  assert_int_equal(tdm_mockctl_cql_request(&c, 6, TDM_OP_BATCH, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_RESULT);
  tdm_mockctl_frame_free(&f);
  tdm_writer_free(&vals);
  assert_string_equal(one_text(&c, "SELECT v FROM ks.b WHERE k = 'q'", "v", buf, sizeof(buf)), "qv");
  assert_string_equal(one_text(&c, "SELECT v FROM ks.b WHERE k = 'p'", "v", buf, sizeof(buf)), "pv");
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

static void test_no_store(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  char buf[32];
  const char *args[] = { "--node", "127.0.0.1:0", "--no-store", NULL };
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  q_ok(&c, "INSERT INTO ks.t (k, v) VALUES ('a', 'b')");
  assert_null(one_text(&c, "SELECT v FROM ks.t WHERE k = 'a'", "v", buf, sizeof(buf)));
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

/* --fast: 2000 pipelined requests of three kinds, every answer on its own stream, counters exact. */
static void test_fast(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  const char *args[] = { "--node", "127.0.0.1:0", "--fast", NULL };
  spawn(&m, args);
  for (uint8_t v = 4; v <= 5; v++) {
    tdm_mockctl_cql_t c;
    tdm_mockctl_frame_t f;
    uint8_t sel[16];
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, v, "lz4", &c), 0);
    prepare(&c, "SELECT a, b FROM ks.f WHERE k = ?", sel, NULL, NULL);
    tdm_writer_t batch;
    tdm_writer_init(&batch);
    tdm_query_params_t p = { .consistency = TDM_CL_ONE };
    for (int i = 0; i < 2000; i++) {
      tdm_writer_t w;
      tdm_writer_init(&w);
      int16_t stream = (int16_t)(i + 1);
      if (i % 3 == 0) {
        tdm_request_encode_query(&w, v, TDM_STR("INSERT INTO ks.f (k) VALUES ('x')"), &p);
        assert_int_equal(tdm_mockctl_cql_send(&c, stream, TDM_OP_QUERY, w.buf, w.len), 0);
      } else if (i % 3 == 1) {
        tdm_request_encode_query(&w, v, TDM_STR("SELECT * FROM ks.f"), &p);
        assert_int_equal(tdm_mockctl_cql_send(&c, stream, TDM_OP_QUERY, w.buf, w.len), 0);
      } else {
        tdm_query_params_t e = { .consistency = TDM_CL_ONE, .flags = TDM_QFLAG_SKIP_METADATA };
        tdm_request_encode_execute(&w, v, (tdm_bytes_t){ sel, 16 }, (tdm_bytes_t){ NULL, 0 }, &e);
        assert_int_equal(tdm_mockctl_cql_send(&c, stream, TDM_OP_EXECUTE, w.buf, w.len), 0);
      }
      tdm_writer_free(&w);
    }
    tdm_writer_free(&batch);
    static bool seen[2001];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < 2000; i++) {
      assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), 0);
      assert_true(f.h.stream >= 1 && f.h.stream <= 2000);
      assert_false(seen[f.h.stream]);
      seen[f.h.stream] = true;
      int k = (f.h.stream - 1) % 3;
      int32_t kind = -1;
      assert_int_equal(f.h.opcode, TDM_OP_RESULT);
      assert_int_equal(tdm_response_peek_result_kind(f.body, f.len, &kind), 0);
      assert_int_equal(kind, k == 0 ? TDM_RESULT_VOID : TDM_RESULT_ROWS);
      if (k == 2 && v == 4) {
        tdm_response_t r;
        assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
        assert_true(r.result.rows.metadata.flags & TDM_RFLAG_NO_METADATA);
        assert_int_equal(r.result.rows.metadata.columns_count, 2);
      }
      tdm_mockctl_frame_free(&f);
    }
    tdm_mockctl_cql_close(&c);
  }
  assert_int_equal(tdm_mockctl_count(&m, "op=QUERY match=INSERT"), 2 * 667);
  assert_int_equal(tdm_mockctl_count(&m, "op=EXECUTE"), 2 * 666);
  stop(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_literal_round_trips), cmocka_unit_test(test_prepared_round_trips),
    cmocka_unit_test(test_batch_opcode),        cmocka_unit_test(test_no_store),
    cmocka_unit_test(test_fast),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
