/* v5 bodies through build/tandem, both directions, uncompressed and lz4: values of 1 byte, 1 KiB and
 * 200 KiB (an envelope split over two segments each way) written by a prepared INSERT (the request:
 * dual-written, each cqlmock cluster decodes tandem's segments with their CRCs checked), then read back
 * through tandem (the response: segmented again by tandem, decoded by the client's own reader), and
 * read from each cluster directly. The 200 KiB value is half repetitive, half noise, so with lz4 one
 * segment goes compressed and the other stored. */
#include "test_instance_harness.h"
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#define TIMEOUT 10000

static const size_t SIZES[] = { 1, 1024, 200 * 1024 };

static uint8_t *make_value(size_t n, uint32_t seed)
{
  uint8_t *v = malloc(n);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++) v[i] = (uint8_t)("tandem round trip "[i % 18]);
  if (n > 1024) tdm_test_fill_random(v + n / 2, n - n / 2, seed);
  return v;
}

static void expect_opcode(const tdm_mockctl_frame_t *f, uint8_t opcode)
{
  if (f->h.opcode == opcode) return;
  uint32_t code = 0;
  char msg[256] = "";
  if (f->h.opcode == TDM_OP_ERROR && tdm_mockctl_error_code(f, &code, msg, sizeof(msg)) < 0) code = 0;
  fail_msg("opcode 0x%02x, want 0x%02x (error 0x%04x %s)", f->h.opcode, opcode, code, msg);
}

/* SELECTs the value of key over c and compares it with want[0..n). */
static void check_value(tdm_mockctl_cql_t *c, const char *key, const uint8_t *want, size_t n, const char *what)
{
  char q[128];
  snprintf(q, sizeof(q), "SELECT v FROM ks.rt WHERE k = '%s'", key);
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_query(c, 9, q, &f, TIMEOUT), 0);
  expect_opcode(&f, TDM_OP_RESULT);
  int32_t rows = 0;
  tdm_bytes_t cell;
  assert_int_equal(tdm_mockctl_rows_count(&f, &rows), 0);
  if (rows != 1) fail_msg("%s: %d rows for %s", what, rows, key);
  assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "v", &cell, NULL), 0);
  if (cell.len != (int32_t)n || memcmp(cell.ptr, want, n) != 0)
    fail_msg("%s: value of %s differs (%d bytes, want %zu)", what, key, cell.len, n);
  tdm_mockctl_frame_free(&f);
}

static void run(tdm_it_env_t *e, const char *compression)
{
  const char *what = compression ? "v5-lz4" : "v5";
  tdm_mockctl_cql_t c;
  uint32_t code = 0;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e->client, TDM_PROTO_V5), 0);
  if (tdm_mockctl_cql_startup(&c, compression, NULL, NULL, &code) != 0)
    fail_msg("%s: STARTUP failed (0x%x)", what, code);

  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_query(&c, 1, "CREATE TABLE IF NOT EXISTS ks.rt (k text PRIMARY KEY, v blob)", &f,
                                         TIMEOUT),
                   0);
  expect_opcode(&f, TDM_OP_RESULT);
  tdm_mockctl_frame_free(&f);

  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(
    tdm_request_encode_prepare(&w, TDM_PROTO_V5, tdm_str_from("INSERT INTO ks.rt (k, v) VALUES (?, ?)"), NULL), 0);
  assert_int_equal(tdm_mockctl_cql_request(&c, 2, TDM_OP_PREPARE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  expect_opcode(&f, TDM_OP_RESULT);
  tdm_response_prepared_ids_t ids;
  assert_int_equal(tdm_response_peek_prepared_ids(TDM_PROTO_V5, f.body, f.len, &ids), 0);
  uint8_t id[64], meta[64];
  size_t id_len = (size_t)ids.id.len;
  size_t meta_len = ids.result_metadata_id.len > 0 ? (size_t)ids.result_metadata_id.len : 0;
  assert_true(id_len <= sizeof(id) && meta_len <= sizeof(meta));
  memcpy(id, ids.id.ptr, id_len);
  if (meta_len) memcpy(meta, ids.result_metadata_id.ptr, meta_len);
  tdm_mockctl_frame_free(&f);

  for (size_t i = 0; i < TDM_ARRAY_SIZE(SIZES); i++) {
    size_t n = SIZES[i];
    char key[64];
    snprintf(key, sizeof(key), "%s-%zu", what, n);
    uint8_t *value = make_value(n, (uint32_t)(n + (compression != NULL)));

    /* the request: a prepared INSERT carrying the value (dual write) */
    tdm_writer_t vw;
    tdm_writer_init(&vw);
    tdm_writer_bytes(&vw, key, strlen(key));
    tdm_writer_bytes(&vw, value, n);
    tdm_query_params_t p = { .consistency = TDM_CL_ONE, .flags = TDM_QFLAG_VALUES, .values_count = 2,
                             .values = vw.buf, .values_len = vw.len, .paging_state = { NULL, -1 } };
    tdm_writer_init(&w);
    assert_int_equal(tdm_request_encode_execute(&w, TDM_PROTO_V5, (tdm_bytes_t){ id, (int32_t)id_len },
                                                (tdm_bytes_t){ meta, (int32_t)meta_len }, &p),
                     0);
    assert_true(w.len > n);
    assert_int_equal(tdm_mockctl_cql_request(&c, 3, TDM_OP_EXECUTE, w.buf, w.len, &f, TIMEOUT), 0);
    expect_opcode(&f, TDM_OP_RESULT);
    tdm_mockctl_frame_free(&f);
    tdm_writer_free(&w);
    tdm_writer_free(&vw);

    /* the response, through tandem (from ORIGIN, the primary) */
    check_value(&c, key, value, n, what);
    /* each cluster stored exactly the bytes the client sent */
    for (int m = 0; m < 2; m++) {
      tdm_mockctl_cql_t d;
      assert_int_equal(tdm_mockctl_cql_open(&e->mock[m], 0, TDM_PROTO_V4, NULL, &d), 0);
      check_value(&d, key, value, n, m ? "TARGET" : "ORIGIN");
      tdm_mockctl_cql_close(&d);
    }
    free(value);
  }
  tdm_mockctl_cql_close(&c);
  for (int m = 0; m < 2; m++) assert_int_equal(tdm_mockctl_count(&e->mock[m], "what=protocol_errors"), 0);
}

static void test_v5_round_trip(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "v5-round-trip");
  tdm_it_env_write_conf(&e, NULL);
  tdm_it_env_up(&e);
  run(&e, NULL);
  run(&e, "lz4");
  /* tandem is still healthy: it counted no protocol error and stops cleanly */
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_v5_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
