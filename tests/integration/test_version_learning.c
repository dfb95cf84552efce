/* Protocol versions a node refuses during a client handshake (behaviour.md §3), end to end with two
 * workers: ORIGIN's mock lists v5 in PROTOCOL_VERSIONS but refuses STARTUP in v5 on pool connections
 * (the control connection stays on v4). The first v5 client gets the §3 refusal; from then on every
 * worker, not only the one that met the refusal, leaves v5 out of SUPPORTED and refuses v5 clients
 * without contacting a node, because the refusal went to ORIGIN's control connection and came back to
 * every worker in its next topology snapshot. */
#include "test_instance_harness.h"
#include <tandem/conf/conf.h>
#include <tandem/proto/opcodes.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

static const char *REFUSAL = "Invalid or unsupported protocol version (5); supported versions are (3/v3, 4/v4)";

/* SUPPORTED's PROTOCOL_VERSIONS as one comma-joined string, from a fresh connection (OPTIONS in v4). */
static void supported_versions(tdm_it_env_t *e, char *out, size_t cap)
{
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e->client, 4), 0);
  assert_int_equal(tdm_mockctl_cql_request(&c, 0, TDM_OP_OPTIONS, NULL, 0, &f, 5000), 0);
  assert_int_equal(f.h.opcode, TDM_OP_SUPPORTED);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  out[0] = '\0';
  size_t o = 0, pos = 0;
  tdm_str_t v;
  while (tdm_response_strlist_next(&r.supported.protocol_versions, &pos, &v) > 0)
    o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? "," : "", (int)v.len, v.ptr);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
}

/* A v5 client's STARTUP: the ERROR code it gets (0 when READY). */
static uint32_t startup_v5(tdm_it_env_t *e, char *msg, size_t cap)
{
  tdm_mockctl_cql_t c;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e->client, 5), 0);
  tdm_str_t keys[1] = { TDM_STR("CQL_VERSION") }, vals[1] = { TDM_STR("3.0.0") };
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_startup(&w, keys, vals, 1), 0);
  assert_int_equal(tdm_mockctl_cql_send(&c, 1, TDM_OP_STARTUP, w.buf, w.len), 0);
  tdm_writer_free(&w);
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_recv(&c, 5000, &f), 0);
  uint32_t code = 0;
  if (f.h.opcode == TDM_OP_ERROR)
    assert_int_equal(tdm_mockctl_error_code(&f, &code, msg, cap), 0);
  else
    assert_int_equal(f.h.opcode, TDM_OP_READY);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  return code;
}

/* How many STARTUPs in v5 ORIGIN's refusal rule has seen. */
static int rule_matches(tdm_it_env_t *e)
{
  char reply[4096], n[32];
  assert_int_equal(tdm_mockctl_cmd(&e->mock[0], reply, sizeof(reply), "RULE LIST"), 0);
  assert_true(tdm_it_json_raw(reply, "matched", n, sizeof(n)));
  return atoi(n);
}

static void test_refusal_reaches_every_worker(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "versions");
  tdm_it_env_write_conf(&e, "workers: 2\ncontrol_conn_max_protocol_version: 4\n");
  tdm_it_env_mock(&e, 0);
  tdm_it_env_mock(&e, 1);
  char rule[400];
  snprintf(rule, sizeof(rule), "RULE ADD op=STARTUP version=5 action=error code=PROTOCOL_ERROR msg=\"%s\"", REFUSAL);
  assert_int_equal(tdm_mockctl_cmd(&e.mock[0], NULL, 0, "%s", rule), 0);
  tdm_it_env_tandem(&e);
  assert_true(tdm_it_wait_status(e.metrics, "/health/readiness", 200, 10000));
  char buf[256]; /* READY=1 comes once every worker listens */
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 5000));
  assert_non_null(strstr(buf, "READY=1"));
  char versions[256];
  supported_versions(&e, versions, sizeof(versions));
  assert_non_null(strstr(versions, "5/v5")); /* offered: both clusters list it */
  /* the first v5 client meets ORIGIN's refusal on a pool connection */
  char msg[512];
  assert_int_equal(startup_v5(&e, msg, sizeof(msg)), TDM_ERR_PROTOCOL_ERROR);
  assert_non_null(strstr(msg, "Invalid or unsupported protocol version (5); supported versions are (3/v3, 4/v4)"));
  assert_int_equal(rule_matches(&e), 1);
  assert_true(tdm_it_wait_text(e.log, "ORIGIN refused protocol version 5: not offered to clients", 5000));
  /* every worker: v5 is no longer offered, and v5 clients are refused with no node contacted */
  uint64_t deadline = tdm_it_now_ms() + 3000;
  do {
    supported_versions(&e, versions, sizeof(versions));
  } while (strstr(versions, "5/v5") && tdm_it_now_ms() < deadline);
  for (int i = 0; i < 24; i++) {
    supported_versions(&e, versions, sizeof(versions));
    if (strstr(versions, "5/v5"))
      fail_msg("connection %d still offered v5 (%s): a worker did not learn the refusal", i, versions);
    assert_non_null(strstr(versions, "4/v4"));
  }
  for (int i = 0; i < 12; i++) {
    assert_int_equal(startup_v5(&e, msg, sizeof(msg)), TDM_ERR_PROTOCOL_ERROR);
    assert_non_null(strstr(msg, "supported versions are (3/v3, 4/v4)"));
  }
  assert_int_equal(rule_matches(&e), 1);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_refusal_reaches_every_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
