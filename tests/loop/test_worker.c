/* core/worker: two workers start (init hook on their own thread, signals blocked, current-worker
 * pointer set), run CALL and NEW_CONN messages, answer a stats aggregation through the main loop's
 * inbox, stop and join with uv_loop_close() == 0; a failing init fails the start and still runs fini;
 * a handle the owner forgot is closed by force and counted; a stopped worker contributes zeros to the
 * aggregate instead of hanging it. Assertions run on the main thread (cmocka is not thread-safe). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>
#include <cmocka.h>
#include <tandem/core/worker.h>

typedef struct fixture_s {
  uv_loop_t loop;                 /* main loop */
  tdm_inbox_t inbox;              /* main inbox (replies) */
  tdm_worker_t w[2];              /* the workers */
  tdm_worker_t *wp[2];            /* pointers for stats_collect */
  _Atomic int inits, finis;       /* hook runs */
  _Atomic int bad_thread;         /* a hook ran with the wrong current worker or an open signal mask */
  _Atomic int conns_taken;        /* NEW_CONN hooks that took the socket */
  int probes;                     /* probe replies seen on the main loop */
  int stats_cbs;                  /* aggregation callbacks */
  tdm_worker_stats_t total;       /* last aggregate */
  tdm_worker_stats_t per[2];      /* last per-worker copies */
  uv_timer_t leak[2];             /* handles an owner "forgets" */
  bool fail_init;                 /* init returns an error */
  bool forget_timer;              /* init opens a timer fini does not close */
} fixture_t;

static bool signals_blocked(void)
{
  sigset_t set;
  pthread_sigmask(SIG_BLOCK, NULL, &set);
  return sigismember(&set, SIGTERM) && sigismember(&set, SIGINT) && sigismember(&set, SIGHUP) &&
         sigismember(&set, SIGUSR1) && !sigismember(&set, SIGSEGV);
}

static void never_fires(uv_timer_t *t) { (void)t; }

static int w_init(tdm_worker_t *w)
{
  fixture_t *f = w->data;
  atomic_fetch_add(&f->inits, 1);
  if (tdm_worker_current() != w || !signals_blocked()) atomic_fetch_add(&f->bad_thread, 1);
  w->stats.read_yields = w->id + 1; /* something distinct to aggregate */
  if (f->forget_timer || f->fail_init) {
    uv_timer_init(&w->loop, &f->leak[w->id]);
    uv_timer_start(&f->leak[w->id], never_fires, 100000, 100000);
  }
  return f->fail_init ? TDM_EINVAL : 0;
}

static void w_fini(tdm_worker_t *w)
{
  fixture_t *f = w->data;
  atomic_fetch_add(&f->finis, 1);
  if (tdm_worker_current() != w) atomic_fetch_add(&f->bad_thread, 1);
  if (f->fail_init) uv_close((uv_handle_t *)&f->leak[w->id], NULL); /* a careful owner */
}

static void w_new_conn(tdm_worker_t *w, tdm_msg_t *m)
{
  fixture_t *f = w->data;
  if (m->u.conn.fd < 0 || tdm_worker_current() != w) atomic_fetch_add(&f->bad_thread, 1);
  close(m->u.conn.fd);
  m->u.conn.fd = -1; /* taken: the worker's free must not close it again */
  atomic_fetch_add(&f->conns_taken, 1);
}

static const tdm_worker_hooks_t hooks = {
  .init = w_init,
  .fini = w_fini,
  .on_msg = { [TDM_MSG_NEW_CONN] = w_new_conn },
};

/* main inbox: runs CALL messages (replies from workers) */
static void main_on_msg(tdm_inbox_t *ib, tdm_msg_t *m)
{
  (void)ib;
  assert_int_equal(m->kind, TDM_MSG_CALL);
  m->u.call.fn(m->u.call.arg);
  tdm_msg_free(m);
}

static void fixture_init(fixture_t *f)
{
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(tdm_inbox_init(&f->inbox, &f->loop, main_on_msg, f), 0);
  f->wp[0] = &f->w[0];
  f->wp[1] = &f->w[1];
}

static void fixture_close(fixture_t *f)
{
  tdm_inbox_close(&f->inbox, NULL);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  tdm_inbox_destroy(&f->inbox);
}

static void on_stats(const tdm_worker_stats_t *total, const tdm_worker_stats_t *per, size_t n, void *arg)
{
  fixture_t *f = arg;
  assert_int_equal(n, 2);
  f->stats_cbs++;
  f->total = *total;
  f->per[0] = per[0];
  f->per[1] = per[1];
}

typedef struct probe_s {
  fixture_t *f;            /* fixture */
  tdm_worker_t *expected;  /* the worker that must run the call */
  bool ok;                 /* checks passed on the worker thread */
} probe_t;

static void probe_reply(void *arg)
{
  probe_t *p = arg;
  p->f->probes++;
  if (p->f->probes == 2) {
    /* both workers answered: aggregate, which replies through this same inbox */
    assert_int_equal(tdm_worker_stats_collect(p->f->wp, 2, &p->f->inbox, on_stats, p->f), 0);
  }
}

static void probe_on_worker(void *arg)
{
  probe_t *p = arg;
  p->ok = tdm_worker_current() == p->expected && signals_blocked();
  tdm_msg_t *m = tdm_msg_new_call(probe_reply, p, NULL);
  if (tdm_inbox_push(&p->f->inbox, m) != 0) tdm_msg_free(m);
}

static void stop_when_stats(uv_idle_t *h)
{
  fixture_t *f = h->data;
  if (f->stats_cbs == 0) return;
  uv_close((uv_handle_t *)h, NULL);
  tdm_inbox_close(&f->inbox, NULL);
}

static void test_start_call_stats_stop(void **state)
{
  (void)state;
  fixture_t f;
  fixture_init(&f);
  for (uint32_t i = 0; i < 2; i++) assert_int_equal(tdm_worker_start(&f.w[i], i, &hooks, &f), 0);
  assert_int_equal(atomic_load(&f.inits), 2); /* start returns after init ran */
  assert_null(tdm_worker_current());          /* not a worker thread */

  int p[2];
  assert_int_equal(pipe(p), 0);
  tdm_msg_t *conn = tdm_msg_new_conn(p[0], NULL);
  assert_int_equal(tdm_worker_send(&f.w[1], conn), 0);
  probe_t probes[2] = { { &f, &f.w[0], false }, { &f, &f.w[1], false } };
  for (int i = 0; i < 2; i++) assert_int_equal(tdm_worker_send(&f.w[i], tdm_msg_new_call(probe_on_worker, &probes[i], NULL)), 0);

  uv_idle_t idle;
  uv_idle_init(&f.loop, &idle);
  idle.data = &f;
  uv_idle_start(&idle, stop_when_stats);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);

  assert_true(probes[0].ok);
  assert_true(probes[1].ok);
  assert_int_equal(f.stats_cbs, 1);
  assert_int_equal(f.per[0].read_yields, 1);
  assert_int_equal(f.per[1].read_yields, 2);
  assert_int_equal(f.total.read_yields, 3);
  assert_int_equal(f.per[0].messages, 2); /* the probe, then the stats request */
  assert_int_equal(f.per[1].messages, 3); /* plus NEW_CONN */
  assert_int_equal(f.total.messages, 5);
  assert_int_equal(atomic_load(&f.conns_taken), 1);

  for (int i = 0; i < 2; i++) assert_int_equal(tdm_worker_stop(&f.w[i]), 0);
  assert_int_equal(tdm_worker_stop(&f.w[0]), TDM_ECLOSED); /* once */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(tdm_worker_join(&f.w[i]), 0); /* uv_loop_close() == 0 on the worker */
    assert_int_equal(f.w[i].leaked_handles, 0);
  }
  assert_int_equal(atomic_load(&f.finis), 2);
  assert_int_equal(atomic_load(&f.bad_thread), 0);
  tdm_msg_t *late = tdm_msg_new(TDM_MSG_DRAIN);
  assert_int_equal(tdm_worker_send(&f.w[0], late), TDM_ECLOSED); /* joined: refused, caller keeps it */
  tdm_msg_free(late);
  fixture_close(&f);
  close(p[1]);
}

static void test_stats_names_and_sum(void **state)
{
  (void)state;
  assert_int_equal(TDM_WORKER_STATS_COUNT, 5);
  assert_string_equal(tdm_worker_stats_names[0], "read_yields");
  assert_string_equal(tdm_worker_stats_names[TDM_WORKER_STATS_COUNT - 1], "messages");
  tdm_worker_stats_t a = { .read_yields = 1, .bytes_in = 10, .messages = 7 }, b = { .read_yields = 2, .bytes_out = 5 };
  tdm_worker_stats_add(&a, &b);
  assert_int_equal(tdm_worker_stats_get(&a, 0), 3);
  assert_int_equal(tdm_worker_stats_get(&a, 1), 10);
  assert_int_equal(tdm_worker_stats_get(&a, 2), 5);
  assert_int_equal(tdm_worker_stats_get(&a, 4), 7);
  tdm_worker_stats_reset(&a);
  for (size_t i = 0; i < TDM_WORKER_STATS_COUNT; i++) assert_int_equal(tdm_worker_stats_get(&a, i), 0);
}

static void test_init_failure(void **state)
{
  (void)state;
  fixture_t f;
  fixture_init(&f);
  f.fail_init = true;
  assert_int_equal(tdm_worker_start(&f.w[0], 0, &hooks, &f), TDM_EINVAL);
  assert_int_equal(atomic_load(&f.inits), 1);
  assert_int_equal(atomic_load(&f.finis), 1); /* fini cleans up after a failed init */
  assert_int_equal(f.w[0].loop_close_err, 0);
  assert_int_equal(f.w[0].leaked_handles, 0);
  assert_int_equal(tdm_worker_stop(&f.w[0]), TDM_ECLOSED);
  assert_int_equal(tdm_worker_join(&f.w[0]), TDM_EINVAL);
  fixture_close(&f);
}

static void test_forgotten_handle_closed_by_force(void **state)
{
  (void)state;
  fixture_t f;
  fixture_init(&f);
  f.forget_timer = true;
  assert_int_equal(tdm_worker_start(&f.w[0], 0, &hooks, &f), 0);
  assert_int_equal(tdm_worker_stop(&f.w[0]), 0);
  assert_int_equal(tdm_worker_join(&f.w[0]), 0);
  assert_int_equal(f.w[0].leaked_handles, 1);
  fixture_close(&f);
}

static void test_stopped_worker_contributes_zeros(void **state)
{
  (void)state;
  fixture_t f;
  fixture_init(&f);
  for (uint32_t i = 0; i < 2; i++) assert_int_equal(tdm_worker_start(&f.w[i], i, &hooks, &f), 0);
  assert_int_equal(tdm_worker_stop(&f.w[1]), 0);
  /* the request may reach worker 1 after its STOP (released unanswered: replies zeros) or be
   * refused because its inbox is already closed (counted as zeros at once): same outcome */
  assert_int_equal(tdm_worker_stats_collect(f.wp, 2, &f.inbox, on_stats, &f), 0);
  uv_idle_t idle;
  uv_idle_init(&f.loop, &idle);
  idle.data = &f;
  uv_idle_start(&idle, stop_when_stats);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f.stats_cbs, 1);
  assert_int_equal(f.per[0].read_yields, 1);
  assert_int_equal(f.per[1].read_yields, 0);
  assert_int_equal(f.per[1].messages, 0);
  assert_int_equal(f.total.read_yields, 1);
  assert_int_equal(tdm_worker_join(&f.w[1]), 0);
  assert_int_equal(tdm_worker_stop(&f.w[0]), 0);
  assert_int_equal(tdm_worker_join(&f.w[0]), 0);

  /* collecting from joined workers only: the callback runs at once */
  f.stats_cbs = 0;
  assert_int_equal(tdm_worker_stats_collect(f.wp, 2, &f.inbox, on_stats, &f), 0);
  assert_int_equal(f.stats_cbs, 1);
  assert_int_equal(f.total.read_yields, 0);
  fixture_close(&f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_start_call_stats_stop),
    cmocka_unit_test(test_stats_names_and_sum),
    cmocka_unit_test(test_init_failure),
    cmocka_unit_test(test_forgotten_handle_closed_by_force),
    cmocka_unit_test(test_stopped_worker_contributes_zeros),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
