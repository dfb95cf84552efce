/* The worker's deadline list on a real loop (src/route/deadlines.c): requests keep their epoch's timeout,
 * the one timer re-arms for the next head after a completion, many due requests expire in one wake in
 * deadline order, and an empty list holds no loop reference. Timeouts leave >= 50 ms of margin, so a
 * descheduled test process cannot reorder the expiries. */
#include "test_route_fakes.h"

static const char *INSERT = "INSERT INTO ks.t (k, v) VALUES (1, 2)";

static void reply_bytes(harness_t *hs, int i, const char *marker)
{
  reply(hs, i, TDM_OP_RESULT, 0, (const uint8_t *)marker, strlen(marker));
}

/* a request keeps its epoch's timeout; a shorter one dispatched later expires first */
static void test_mixed_epochs(void **state)
{
  (void)state;
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->proxy_request_timeout_ms = 300;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  tdm_conf_t *old = hs.pw.conf;
  assert_int_equal(tdm_conf_defaults(&hs.pw.conf), 0);
  hs.pw.conf->proxy_request_timeout_ms = 30;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  assert_true(uv_loop_alive(&hs.loop));
  run_for(&hs, 60);
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(hs.client.resp[0].stream, 2);
  tdm_response_error_t e = client_error(&hs, 0);
  assert_true(msg_is(e.message, "tandem: no response from ORIGIN and TARGET within 30 ms"));
  assert_int_equal(tdm_route_inflight(&hs.pw), 1);
  assert_true(uv_loop_alive(&hs.loop)); /* request 1 still armed */
  reply_bytes(&hs, 0, "A");
  reply_bytes(&hs, 1, "B");
  assert_int_equal(hs.client.nresp, 2);
  assert_int_equal(hs.client.resp[1].stream, 1);
  assert_false(uv_loop_alive(&hs.loop)); /* nothing armed: the timer holds no reference */
  tdm_conf_unref(old);
  harness_free(&hs);
}

/* the head completes before its deadline: the one wake re-arms for the next one, which still expires */
static void test_head_completes_then_wake(void **state)
{
  (void)state;
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  hs.pw.conf->proxy_request_timeout_ms = 200;
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 1, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  run_for(&hs, 100);
  assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, 2, query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_bytes(&hs, 0, "A");
  reply_bytes(&hs, 1, "B");
  assert_int_equal(hs.client.nresp, 1);
  run_for(&hs, 150); /* past request 1's deadline (200), before request 2's (300): nothing expires */
  assert_int_equal(hs.client.nresp, 1);
  assert_int_equal(tdm_route_inflight(&hs.pw), 1);
  run_for(&hs, 150); /* past request 2's */
  assert_int_equal(hs.client.nresp, 2);
  assert_int_equal(hs.client.resp[1].stream, 2);
  assert_int_equal(tdm_route_inflight(&hs.pw), 0);
  assert_false(uv_loop_alive(&hs.loop));
  harness_free(&hs);
}

/* many at once: all expire in one wake, in order */
static void test_many_expire(void **state)
{
  (void)state;
  harness_t hs;
  harness_init(&hs, TDM_PROTO_V4);
  for (int i = 0; i < 20; i++)
    assert_int_equal(send_req(&hs, TDM_OP_QUERY, 0, (int16_t)(10 + i), query_body(4, INSERT, TDM_CL_ONE, 0, NULL)), 0);
  reply_bytes(&hs, 10, "A"); /* request 15's ORIGIN leg */
  run_for(&hs, 60);
  assert_int_equal(hs.client.nresp, 20);
  for (int i = 0; i < 20; i++) assert_int_equal(hs.client.resp[i].stream, 10 + i);
  assert_int_equal(tdm_route_inflight(&hs.pw), 0);
  harness_free(&hs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_mixed_epochs),
    cmocka_unit_test(test_head_completes_then_wake),
    cmocka_unit_test(test_many_expire),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
