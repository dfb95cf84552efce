/* The divergence journal end to end (behaviour.md §6.2, §13.1): build/tandem between two mocks, TARGET
 * failing writes to ks.t with WRITE_TIMEOUT, write_divergence_policy PRIMARY_WINS. The client gets
 * ORIGIN's success; the journal gets one JSON line with every field of §6.2 (values included, as asked);
 * a reload that changes write_divergence_log reopens the journal at the new path; /metrics counts the
 * divergences and no drop. */
#include <arpa/inet.h>
#include "test_instance_harness.h"
#include <tandem/proto/opcodes.h>
#include <tandem/proto/request.h>

static const char *INSERT = "INSERT INTO ks.t (k, v) VALUES (?, ?)";

static void expect_in(const char *body, const char *needle)
{
  if (!strstr(body, needle))
    fail_msg("missing %s in:\n%.3000s", needle, body);
}

/* The INSERT with values ('k1', 'v1'), client timestamp `ts`, at LOCAL_QUORUM; the answer must be a RESULT. */
static void divergent_write(tdm_mockctl_cql_t *c, int16_t stream, int64_t ts)
{
  tdm_writer_t vw, w;
  tdm_writer_init(&vw);
  tdm_writer_bytes(&vw, "k1", 2);
  tdm_writer_bytes(&vw, "v1", 2);
  tdm_writer_init(&w);
  tdm_query_params_t p = { .consistency = TDM_CL_LOCAL_QUORUM, .flags = TDM_QFLAG_VALUES | TDM_QFLAG_DEFAULT_TIMESTAMP,
                           .values_count = 2, .values = vw.buf, .values_len = vw.len,
                           .paging_state = { NULL, -1 }, .default_timestamp = ts };
  assert_int_equal(tdm_request_encode_query(&w, 4, tdm_str_from(INSERT), &p), 0);
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_request(c, stream, TDM_OP_QUERY, w.buf, w.len, &f, 5000), 0);
  assert_int_equal(f.h.opcode, TDM_OP_RESULT); /* PRIMARY_WINS: ORIGIN's success */
  tdm_mockctl_frame_free(&f);
  tdm_writer_free(&w);
  tdm_writer_free(&vw);
}

static size_t lines(const char *text)
{
  size_t n = 0;
  for (const char *p = text; (p = strchr(p, '\n')); p++)
    n++;
  return n;
}

static void test_journal_line_and_reopen(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "journal");
  char path1[400], path2[400], conf[1200];
  snprintf(path1, sizeof(path1), "%s/divergence.jsonl", e.dir);
  snprintf(path2, sizeof(path2), "%s/moved.jsonl", e.dir);
  snprintf(conf, sizeof(conf), "write_divergence_policy: PRIMARY_WINS\nwrite_divergence_log: %s\n"
                               "write_divergence_log_values: true\n", path1);
  tdm_it_env_write_conf(&e, conf);
  tdm_it_env_up(&e);
  assert_int_equal(tdm_mockctl_cmd(&e.mock[1], NULL, 0,
                                   "RULE ADD op=QUERY match=\"INSERT INTO ks.t\" action=error code=WRITE_TIMEOUT "
                                   "msg=\"timed out\" cl=LOCAL_QUORUM received=0 blockfor=1 write_type=SIMPLE"),
                   0);
  tdm_mockctl_cql_t c;
  uint32_t code;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e.client, 4), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, NULL, NULL, NULL, &code), 0);
  struct sockaddr_in me;
  socklen_t mlen = sizeof(me);
  assert_int_equal(getsockname(c.fd, (struct sockaddr *)&me, &mlen), 0);
  divergent_write(&c, 1, 1700000000000042LL);
  assert_true(tdm_it_wait_text(path1, "\n", 5000));
  char *text = tdm_it_read_file(path1);
  assert_int_equal(lines(text), 1);
  /* every field of §6.2 */
  assert_true(strncmp(text, "{\"ts\":\"20", 9) == 0);
  char want[200];
  expect_in(text, "Z\",\"epoch\":1,");
  snprintf(want, sizeof(want), "\"client\":\"127.0.0.1:%u\",", (unsigned)ntohs(me.sin_port));
  expect_in(text, want);
  expect_in(text, "\"kind\":\"write\",\"ok_on\":\"ORIGIN\",\"failed_on\":\"TARGET\",");
  expect_in(text, "\"error\":\"WRITE_TIMEOUT: timed out\",");
  expect_in(text, "\"keyspace\":\"ks\",\"table\":\"t\",");
  expect_in(text, "\"query\":\"INSERT INTO ks.t (k, v) VALUES (?, ?)\",");
  expect_in(text, "\"consistency\":\"LOCAL_QUORUM\",\"timestamp\":1700000000000042,");
  expect_in(text, "\"values\":[\"6b31\",\"7631\"]}\n");
  free(text);
  /* a reload that moves the journal: the next line lands in the new file, the old one keeps its line */
  snprintf(conf, sizeof(conf), "write_divergence_policy: PRIMARY_WINS\nwrite_divergence_log: %s\n", path2);
  tdm_it_env_write_conf(&e, conf);
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e.admin, "POST", "/api/v1/reload", NULL, &r), 0);
  assert_int_equal(r.status, 200);
  tdm_it_http_free(&r);
  divergent_write(&c, 2, 1700000000000043LL);
  assert_true(tdm_it_wait_text(path2, "\n", 5000));
  text = tdm_it_read_file(path2);
  assert_int_equal(lines(text), 1);
  expect_in(text, "\"epoch\":2,");
  expect_in(text, "\"timestamp\":1700000000000043}\n"); /* values off in epoch 2 */
  assert_null(strstr(text, "\"values\""));
  free(text);
  text = tdm_it_read_file(path1);
  assert_int_equal(lines(text), 1);
  free(text);
  /* counted on /metrics, nothing dropped */
  assert_int_equal(tdm_it_http(e.metrics, "GET", "/metrics", NULL, &r), 0);
  expect_in(r.body, "\ntandem_write_divergence_total{failed_on=\"target\",kind=\"write\"} 2\n");
  expect_in(r.body, "\ntandem_write_divergence_log_dropped_total 0\n");
  expect_in(r.body, "\ntandem_proxy_failed_writes_total{failed_on=\"target\"} 2\n");
  tdm_it_http_free(&r);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_journal_line_and_reopen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
