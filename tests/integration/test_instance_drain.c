/* Drain of build/tandem (behaviour.md §11.3; test-scenarios LC-04 and LC-11): on SIGTERM readiness
 * turns 503 with Draining true, systemd hears STOPPING=1, the client listener closes, a request in
 * flight still gets its answer, and tandem exits 0 once the client is gone; a second SIGTERM during a
 * drain held up by a request that never completes exits at once (well before
 * shutdown_drain_timeout_ms); and the drain timeout itself ends a drain that cannot finish. */
#include <pthread.h>
#include "test_instance_harness.h"

typedef struct query_s {
  tdm_mockctl_cql_t *c;   /* connection */
  const char *cql;        /* statement */
  int rc;                 /* tdm_mockctl_cql_query result */
  uint8_t opcode;         /* response opcode */
} query_t;

static void *query_thread(void *arg)
{
  query_t *q = arg;
  tdm_mockctl_frame_t f;
  q->rc = tdm_mockctl_cql_query(q->c, 3, q->cql, &f, 10000);
  if (q->rc == 0) {
    q->opcode = f.h.opcode;
    tdm_mockctl_frame_free(&f);
  }
  return NULL;
}

static void open_client(tdm_it_env_t *e, tdm_mockctl_cql_t *c)
{
  uint32_t code;
  assert_int_equal(tdm_mockctl_cql_connect(c, "127.0.0.1", e->client, 4), 0);
  assert_int_equal(tdm_mockctl_cql_startup(c, NULL, NULL, NULL, &code), 0);
}

static void test_drain_finishes_in_flight(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "drain");
  tdm_it_env_write_conf(&e, NULL);
  tdm_it_env_up(&e);
  for (int m = 0; m < 2; m++)
    assert_int_equal(tdm_mockctl_cmd(&e.mock[m], NULL, 0, "RULE ADD op=QUERY match=slow-insert delay=1500"), 0);
  tdm_mockctl_cql_t c;
  open_client(&e, &c);
  query_t q = { &c, "INSERT INTO ks.t (k, v) VALUES (1, 'slow-insert')", -1, 0 };
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, query_thread, &q), 0);
  tdm_it_sleep_ms(300); /* the request is at the mocks now */
  uint64_t t0 = tdm_it_now_ms();
  assert_int_equal(kill(e.pid, SIGTERM), 0);
  assert_true(tdm_it_wait_status(e.metrics, "/health/readiness", 503, 1000));
  tdm_it_http_t r;
  if (tdm_it_http(e.metrics, "GET", "/health/readiness", NULL, &r) == 0) { /* still draining */
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"Status\":\"DOWN\""));
    assert_non_null(strstr(r.body, "\"Draining\":true"));
  }
  tdm_it_http_free(&r);
  char buf[128];
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 1000));
  assert_string_equal(buf, "STOPPING=1");
  uint64_t deadline = tdm_it_now_ms() + 1000; /* each worker closes its listener when DRAIN arrives */
  while (tdm_it_port_open(e.client) && tdm_it_now_ms() < deadline)
    tdm_it_sleep_ms(10);
  assert_false(tdm_it_port_open(e.client));
  pthread_join(t, NULL);
  assert_int_equal(q.rc, 0);             /* the in-flight request was answered */
  assert_int_equal(q.opcode, 0x08);      /* RESULT */
  int st = tdm_it_wait_exit(e.pid, 10000);
  assert_int_equal(st, 0);
  e.pid = 0;
  assert_true(tdm_it_now_ms() - t0 >= 1000); /* it waited for the answer */
  assert_true(tdm_it_now_ms() - t0 < 8000);  /* and not for the drain timeout */
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_it_count_text(e.log, " ERROR "), 0);
  tdm_it_env_fini(&e);
}

static void test_second_signal_stops_at_once(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "drain2");
  tdm_it_env_write_conf(&e, "proxy_request_timeout_ms: 60000\nshutdown_drain_timeout_ms: 60000\n");
  tdm_it_env_up(&e);
  for (int m = 0; m < 2; m++)
    assert_int_equal(tdm_mockctl_cmd(&e.mock[m], NULL, 0, "RULE ADD op=QUERY match=never-answered action=never"), 0);
  tdm_mockctl_cql_t c;
  open_client(&e, &c);
  query_t q = { &c, "INSERT INTO ks.t (k, v) VALUES (2, 'never-answered')", -1, 0 };
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, query_thread, &q), 0);
  tdm_it_sleep_ms(300);
  assert_int_equal(kill(e.pid, SIGTERM), 0);
  assert_int_equal(tdm_it_wait_exit(e.pid, 700), -1); /* held by the request */
  uint64_t t0 = tdm_it_now_ms();
  int st = tdm_it_env_signal_wait(&e, SIGTERM, 5000);
  assert_int_equal(st, 0);
  assert_true(tdm_it_now_ms() - t0 < 3000);
  assert_true(tdm_it_wait_text(e.log, "during the drain: stopping now", 1000));
  pthread_join(t, NULL); /* the client saw its connection close (or an error), never a hang */
  tdm_mockctl_cql_close(&c);
  tdm_it_env_fini(&e);
}

static void test_drain_timeout(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "drain3");
  tdm_it_env_write_conf(&e, "proxy_request_timeout_ms: 60000\nshutdown_drain_timeout_ms: 800\n");
  tdm_it_env_up(&e);
  for (int m = 0; m < 2; m++)
    assert_int_equal(tdm_mockctl_cmd(&e.mock[m], NULL, 0, "RULE ADD op=QUERY match=never-answered action=never"), 0);
  tdm_mockctl_cql_t c;
  open_client(&e, &c);
  query_t q = { &c, "INSERT INTO ks.t (k, v) VALUES (3, 'never-answered')", -1, 0 };
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, query_thread, &q), 0);
  tdm_it_sleep_ms(300);
  uint64_t t0 = tdm_it_now_ms();
  int st = tdm_it_env_signal_wait(&e, SIGTERM, 5000);
  assert_int_equal(st, 0);
  uint64_t took = tdm_it_now_ms() - t0;
  assert_true(took >= 700 && took < 4000);
  assert_true(tdm_it_wait_text(e.log, "drain timeout (800 ms)", 1000));
  pthread_join(t, NULL);
  tdm_mockctl_cql_close(&c);
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_drain_finishes_in_flight),
    cmocka_unit_test(test_second_signal_stops_at_once),
    cmocka_unit_test(test_drain_timeout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
