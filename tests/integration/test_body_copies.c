/* architecture.md §6 "copies of a request body" measured from outside build/tandem: N prepared EXECUTEs
 * and N QUERYs dual-written between two cqlmock clusters (same prepared ids on both: no patch) in v4,
 * v4 lz4, v5 and v5 lz4, with the growth of tandem_request_bodies_forwarded_total,
 * tandem_request_body_copies_total and tandem_request_body_copies_forced_total read from /metrics.
 * A TARGET id that differs cannot be scripted with cqlmock (its ids are md5 of the text on every
 * cluster); tests/loop/test_route_copies.c covers that case. */
#include "test_instance_harness.h"
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#define N 20 /* requests per kind and workload */

static const char *INSERT_PREPARED = "INSERT INTO ks.copies (k, v) VALUES (?, ?)";

/* [forwarded, copies, forced][origin, target, async] from one scrape. */
typedef struct bodies_s {
  uint64_t v[3][3]; /* counter kind x leg */
} bodies_t;

static bodies_t scrape_bodies(const tdm_it_env_t *e)
{
  static const char *const names[3] = { "request_bodies_forwarded_total", "request_body_copies_total",
                                        "request_body_copies_forced_total" };
  static const char *const legs[3] = { "origin", "target", "async" };
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e->metrics, "GET", "/metrics", NULL, &r), 0);
  assert_int_equal(r.status, 200);
  bodies_t b;
  for (int k = 0; k < 3; k++)
    for (int l = 0; l < 3; l++) {
      char needle[160];
      snprintf(needle, sizeof(needle), "\ntandem_%s{leg=\"%s\"} ", names[k], legs[l]);
      const char *p = strstr(r.body, needle);
      if (!p) fail_msg("missing %s in /metrics", needle + 1);
      char *end;
      b.v[k][l] = strtoull(p + strlen(needle), &end, 10);
      assert_true(*end == '\n');
    }
  tdm_it_http_free(&r);
  return b;
}

static void expect_growth(const bodies_t *before, const bodies_t *after, const char *what, const uint64_t want[3][3])
{
  static const char *const kinds[3] = { "forwarded", "copies", "forced" };
  static const char *const legs[3] = { "origin", "target", "async" };
  for (int k = 0; k < 3; k++)
    for (int l = 0; l < 3; l++)
      if (after->v[k][l] - before->v[k][l] != want[k][l])
        fail_msg("%s: %s{leg=%s} grew by %llu, want %llu", what, kinds[k], legs[l],
                 (unsigned long long)(after->v[k][l] - before->v[k][l]), (unsigned long long)want[k][l]);
}

static void expect_ok(int rc, const tdm_mockctl_frame_t *f, uint8_t opcode)
{
  assert_int_equal(rc, 0);
  if (f->h.opcode != opcode) {
    uint32_t code = 0;
    char msg[256] = "";
    if (f->h.opcode == TDM_OP_ERROR && tdm_mockctl_error_code(f, &code, msg, sizeof(msg)) < 0) code = 0;
    fail_msg("opcode 0x%02x, want 0x%02x (error 0x%04x %s)", f->h.opcode, opcode, code, msg);
  }
}

/* One client session: PREPARE, then N EXECUTEs and N QUERYs, each a dual write answered Void. */
static void run_workload(tdm_it_env_t *e, uint8_t version, const char *compression, const char *what)
{
  tdm_mockctl_cql_t c;
  uint32_t code = 0;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e->client, version), 0);
  if (tdm_mockctl_cql_startup(&c, compression, NULL, NULL, &code) != 0)
    fail_msg("%s: STARTUP failed (0x%x)", what, code);

  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_prepare(&w, version, tdm_str_from(INSERT_PREPARED), NULL), 0);
  tdm_mockctl_frame_t f;
  expect_ok(tdm_mockctl_cql_request(&c, 1, TDM_OP_PREPARE, w.buf, w.len, &f, 5000), &f, TDM_OP_RESULT);
  tdm_writer_free(&w);
  tdm_response_prepared_ids_t ids;
  assert_int_equal(tdm_response_peek_prepared_ids(version, f.body, f.len, &ids), 0);
  uint8_t id[64], meta[64];
  size_t id_len = (size_t)ids.id.len;
  size_t meta_len = ids.result_metadata_id.len > 0 ? (size_t)ids.result_metadata_id.len : 0;
  assert_true(id_len <= sizeof(id) && meta_len <= sizeof(meta));
  memcpy(id, ids.id.ptr, id_len);
  if (meta_len) memcpy(meta, ids.result_metadata_id.ptr, meta_len);
  tdm_mockctl_frame_free(&f);

  bodies_t before = scrape_bodies(e);
  for (int i = 0; i < N; i++) {
    char key[16], q[96];
    snprintf(key, sizeof(key), "%s-%d", what, i);
    tdm_writer_t vw;
    tdm_writer_init(&vw);
    tdm_writer_bytes(&vw, key, strlen(key));
    tdm_writer_bytes(&vw, "copies", 6);
    tdm_query_params_t p = { .consistency = TDM_CL_ONE, .flags = TDM_QFLAG_VALUES, .values_count = 2,
                             .values = vw.buf, .values_len = vw.len, .paging_state = { NULL, -1 } };
    tdm_writer_init(&w);
    assert_int_equal(tdm_request_encode_execute(&w, version, (tdm_bytes_t){ id, (int32_t)id_len },
                                                (tdm_bytes_t){ meta, (int32_t)meta_len }, &p),
                     0);
    expect_ok(tdm_mockctl_cql_request(&c, (int16_t)(2 + i), TDM_OP_EXECUTE, w.buf, w.len, &f, 5000), &f,
              TDM_OP_RESULT);
    tdm_mockctl_frame_free(&f);
    tdm_writer_free(&w);
    tdm_writer_free(&vw);
    snprintf(q, sizeof(q), "INSERT INTO ks.copies (k, v) VALUES ('%s-q', 'copies')", key);
    expect_ok(tdm_mockctl_cql_query(&c, (int16_t)(100 + i), q, &f, 5000), &f, TDM_OP_RESULT);
    tdm_mockctl_frame_free(&f);
  }
  bodies_t after = scrape_bodies(e);
  tdm_mockctl_cql_close(&c);

  /* Both clusters really ran every request: each is one dual write. */
  for (int m = 0; m < 2; m++) {
    assert_int_equal(tdm_mockctl_count(&e->mock[m], "op=EXECUTE"), N);
    assert_int_equal(tdm_mockctl_count(&e->mock[m], "op=QUERY match=\"INSERT INTO ks.copies\""), N);
    assert_int_equal(tdm_mockctl_cmd(&e->mock[m], NULL, 0, "RESET"), 0);
  }
  /* v3/v4 bodies are forwarded as received, compressed or not; uncompressed v5 segments reference the
   * body (no copy); lz4 v5 compresses it into the segment, one forced copy per leg. */
  bool v5 = version == TDM_PROTO_V5, lz4 = compression != NULL;
  uint64_t copies = v5 && lz4 ? 2 * N : 0;
  const uint64_t want[3][3] = { { 2 * N, 2 * N, 0 }, { copies, copies, 0 }, { copies, copies, 0 } };
  expect_growth(&before, &after, what, want);
}

static void test_body_copies(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "body-copies");
  tdm_it_env_write_conf(&e, NULL);
  tdm_it_env_up(&e);
  run_workload(&e, TDM_PROTO_V4, NULL, "v4");
  run_workload(&e, TDM_PROTO_V4, "lz4", "v4-lz4");
  run_workload(&e, TDM_PROTO_V5, NULL, "v5");
  run_workload(&e, TDM_PROTO_V5, "lz4", "v5-lz4");
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_body_copies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
