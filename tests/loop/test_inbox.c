/* core/inbox: 4 producer threads x 10 000 messages, each delivered exactly once and in per-producer
 * order, with coalesced wake-ups; messages never delivered are released by their free hooks at close
 * (fd closed, config reference dropped, call cancelled); pushes after close fail; a handler closing
 * the inbox mid-batch releases the rest of the batch. Run under TSAN as well. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>
#include <cmocka.h>
#include <tandem/core/inbox.h>

#define PRODUCERS 4
#define PER_PRODUCER 10000

typedef struct many_s {
  uv_loop_t loop;                 /* receiving loop */
  tdm_inbox_t ib;                 /* the inbox under test */
  uint32_t next[PRODUCERS];       /* next sequence number expected per producer */
  uint32_t received;              /* messages delivered */
  _Atomic uint32_t freed;         /* free hooks run */
  int closed_cbs;                 /* inbox close callbacks */
} many_t;

typedef struct producer_s {
  many_t *m;       /* shared fixture */
  uint32_t id;     /* 0..PRODUCERS-1 */
  int failures;    /* pushes that failed */
} producer_t;

/* The inbox never interprets kinds: the payload rides in the stats member (collector = fixture,
 * index = producer << 20 | sequence) and a counting free hook stands in for the default. */
static void counting_free(tdm_msg_t *msg)
{
  many_t *m = msg->u.stats.collector;
  atomic_fetch_add(&m->freed, 1);
  free(msg);
}

static void many_closed(tdm_inbox_t *ib)
{
  many_t *m = ib->data;
  m->closed_cbs++;
}

static void deliver_check(tdm_inbox_t *ib, tdm_msg_t *msg)
{
  many_t *m = ib->data;
  assert_true(msg->delivered);
  uint32_t producer = msg->u.stats.index >> 20, seq = msg->u.stats.index & 0xfffff;
  assert_true(producer < PRODUCERS);
  assert_int_equal(seq, m->next[producer]); /* FIFO per producer, no loss, no duplicate */
  m->next[producer]++;
  m->received++;
  tdm_msg_free(msg);
  if (m->received == PRODUCERS * PER_PRODUCER) tdm_inbox_close(&m->ib, many_closed);
}

static void producer_main(void *arg)
{
  producer_t *p = arg;
  for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
    tdm_msg_t *msg = tdm_msg_new(TDM_MSG_STATS_REQ);
    assert_non_null(msg);
    msg->free_cb = counting_free;
    msg->u.stats.collector = p->m;
    msg->u.stats.index = (p->id << 20) | seq;
    if (tdm_inbox_push(&p->m->ib, msg) != 0) {
      p->failures++;
      free(msg);
    }
  }
}

static void test_four_producers_exactly_once(void **state)
{
  (void)state;
  many_t m;
  memset(&m, 0, sizeof(m));
  assert_int_equal(uv_loop_init(&m.loop), 0);
  assert_int_equal(tdm_inbox_init(&m.ib, &m.loop, deliver_check, &m), 0);
  uv_thread_t th[PRODUCERS];
  producer_t p[PRODUCERS];
  for (uint32_t i = 0; i < PRODUCERS; i++) {
    p[i] = (producer_t){ &m, i, 0 };
    assert_int_equal(uv_thread_create(&th[i], producer_main, &p[i]), 0);
  }
  assert_int_equal(uv_run(&m.loop, UV_RUN_DEFAULT), 0); /* ends when the handler closes the inbox */
  for (int i = 0; i < PRODUCERS; i++) {
    uv_thread_join(&th[i]);
    assert_int_equal(p[i].failures, 0);
    assert_int_equal(m.next[i], PER_PRODUCER);
  }
  assert_int_equal(m.received, PRODUCERS * PER_PRODUCER);
  assert_int_equal(atomic_load(&m.freed), PRODUCERS * PER_PRODUCER);
  assert_int_equal(m.ib.pushed, PRODUCERS * PER_PRODUCER);
  assert_int_equal(m.ib.delivered, PRODUCERS * PER_PRODUCER);
  assert_true(m.ib.wakeups >= 1);
  assert_true(m.ib.wakeups <= m.ib.delivered); /* wake-ups coalesce, never more than messages */
  assert_int_equal(m.closed_cbs, 1);
  assert_int_equal(uv_loop_close(&m.loop), 0);
  tdm_inbox_destroy(&m.ib);
}

/* ---- undelivered messages at close ---- */

static int conf_released, calls_cancelled, calls_run, handled;

static void conf_release(void *ptr)
{
  assert_ptr_equal(ptr, &conf_released);
  conf_released++;
}

static void call_cancel(void *arg)
{
  (void)arg;
  calls_cancelled++;
}

static void call_fn(void *arg)
{
  (void)arg;
  calls_run++;
}

static void unexpected(tdm_inbox_t *ib, tdm_msg_t *msg)
{
  (void)ib;
  handled++;
  tdm_msg_free(msg);
}

static void test_close_releases_undelivered(void **state)
{
  (void)state;
  uv_loop_t loop;
  tdm_inbox_t ib;
  conf_released = calls_cancelled = calls_run = handled = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tdm_inbox_init(&ib, &loop, unexpected, NULL), 0);
  int p[2];
  assert_int_equal(pipe(p), 0);
  tdm_sockaddr_t peer;
  assert_int_equal(tdm_sockaddr_parse_ip("10.0.0.5", 5123, &peer), 0);
  tdm_msg_t *conn = tdm_msg_new_conn(p[0], &peer);
  assert_int_equal(conn->u.conn.peer.in4.sin_port, htons(5123));
  assert_int_equal(tdm_inbox_push(&ib, conn), 0);
  assert_int_equal(tdm_inbox_push(&ib, tdm_msg_new_conf(&conf_released, conf_release)), 0);
  assert_int_equal(tdm_inbox_push(&ib, tdm_msg_new_call(call_fn, NULL, call_cancel)), 0);
  assert_int_equal(tdm_inbox_push(&ib, tdm_msg_new(TDM_MSG_DRAIN)), 0);
  assert_int_equal(ib.pushed, 4);
  tdm_inbox_close(&ib, NULL); /* before the loop ever ran: nothing was delivered */
  assert_int_equal(handled, 0);
  assert_int_equal(conf_released, 1);
  assert_int_equal(calls_cancelled, 1);
  assert_int_equal(calls_run, 0);
  assert_int_equal(fcntl(p[0], F_GETFD), -1); /* the socket of NEW_CONN was closed */
  assert_int_equal(errno, EBADF);
  tdm_msg_t *late = tdm_msg_new(TDM_MSG_STOP);
  assert_int_equal(tdm_inbox_push(&ib, late), TDM_ECLOSED);
  tdm_msg_free(late);
  tdm_inbox_close(&ib, NULL); /* idempotent */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  tdm_inbox_destroy(&ib);
  close(p[1]);
  assert_string_equal(tdm_msg_kind_name(TDM_MSG_CONF_SWAP), "CONF_SWAP");
}

/* ---- a handler that closes the inbox in the middle of a batch ---- */

static void close_on_first(tdm_inbox_t *ib, tdm_msg_t *msg)
{
  handled++;
  if (msg->kind == TDM_MSG_CALL) msg->u.call.fn(msg->u.call.arg);
  tdm_msg_free(msg);
  tdm_inbox_close(ib, NULL);
}

static void test_close_inside_handler(void **state)
{
  (void)state;
  uv_loop_t loop;
  tdm_inbox_t ib;
  conf_released = calls_cancelled = calls_run = handled = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tdm_inbox_init(&ib, &loop, close_on_first, NULL), 0);
  assert_int_equal(tdm_inbox_push(&ib, tdm_msg_new_call(call_fn, NULL, call_cancel)), 0);
  assert_int_equal(tdm_inbox_push(&ib, tdm_msg_new_call(call_fn, NULL, call_cancel)), 0);
  assert_int_equal(tdm_inbox_push(&ib, tdm_msg_new_conf(&conf_released, conf_release)), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(handled, 1);
  assert_int_equal(calls_run, 1);
  assert_int_equal(calls_cancelled, 1); /* the second call was never delivered */
  assert_int_equal(conf_released, 1);
  assert_int_equal(ib.delivered, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  tdm_inbox_destroy(&ib);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_four_producers_exactly_once),
    cmocka_unit_test(test_close_releases_undelivered),
    cmocka_unit_test(test_close_inside_handler),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
