/* core/signals with workers running: SIGHUP raised in-process reaches the reload callback once, on
 * the main thread; a process-directed SIGTERM sent from a worker thread (which blocks it) is handled
 * by the main loop as a drain; a second TERM/INT stops at once; later ones are ignored; USR1 reaches
 * the reopen hook; SIGPIPE is ignored. Watchers and workers close with no handle left. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>
#include <tandem/core/signals.h>
#include <tandem/core/worker.h>

typedef struct fixture_s {
  uv_loop_t loop;          /* main loop */
  tdm_signals_t sig;       /* the watchers */
  tdm_worker_t w[2];       /* running workers */
  pthread_t main_thread;   /* where every hook must run */
  uv_timer_t settle;       /* lets a last signal arrive before closing */
  int reloads, reopens, drains, stops; /* hook calls */
  int drain_signum, stop_signum;       /* which signal did it */
  int off_main;            /* hooks that ran on another thread */
  int closed;              /* watcher close callbacks */
} fixture_t;

static void check_thread(fixture_t *f)
{
  if (!pthread_equal(pthread_self(), f->main_thread)) f->off_main++;
}

static void kill_from_worker(void *arg)
{
  (void)arg;
  kill(getpid(), SIGTERM); /* process-directed: only the main thread has it unblocked */
}

static void on_reload(tdm_signals_t *s)
{
  fixture_t *f = s->data;
  check_thread(f);
  f->reloads++;
  assert_int_equal(tdm_worker_send(&f->w[1], tdm_msg_new_call(kill_from_worker, NULL, NULL)), 0);
}

static void on_reopen(tdm_signals_t *s)
{
  fixture_t *f = s->data;
  check_thread(f);
  f->reopens++;
}

static void sig_closed(tdm_signals_t *s)
{
  fixture_t *f = s->data;
  f->closed++;
}

static void settle_done(uv_timer_t *t)
{
  fixture_t *f = t->data;
  uv_close((uv_handle_t *)t, NULL);
  tdm_signals_close(&f->sig, sig_closed);
  tdm_signals_close(&f->sig, sig_closed); /* idempotent */
}

static void on_drain(tdm_signals_t *s, int signum)
{
  fixture_t *f = s->data;
  check_thread(f);
  f->drains++;
  f->drain_signum = signum;
  raise(SIGINT); /* the second signal of a drain */
}

static void on_stop_now(tdm_signals_t *s, int signum)
{
  fixture_t *f = s->data;
  check_thread(f);
  f->stops++;
  f->stop_signum = signum;
  raise(SIGTERM); /* a third one: ignored */
  raise(SIGUSR1);
  uv_timer_init(&f->loop, &f->settle);
  f->settle.data = f;
  uv_timer_start(&f->settle, settle_done, 30, 0);
}

static const tdm_signals_hooks_t hooks = {
  .on_reload = on_reload, .on_reopen = on_reopen, .on_drain = on_drain, .on_stop_now = on_stop_now
};

static void test_signals_on_main_loop(void **state)
{
  (void)state;
  fixture_t f;
  memset(&f, 0, sizeof(f));
  f.main_thread = pthread_self();
  assert_int_equal(uv_loop_init(&f.loop), 0);
  for (uint32_t i = 0; i < 2; i++) assert_int_equal(tdm_worker_start(&f.w[i], i, NULL, &f), 0);
  assert_int_equal(tdm_signals_start(&f.sig, &f.loop, &hooks, &f), 0);
  struct sigaction sa;
  assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_IGN);

  raise(SIGHUP);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);

  assert_int_equal(f.reloads, 1);
  assert_int_equal(f.drains, 1);
  assert_int_equal(f.drain_signum, SIGTERM);
  assert_int_equal(f.stops, 1);
  assert_int_equal(f.stop_signum, SIGINT);
  assert_int_equal(f.reopens, 1);
  assert_int_equal(f.sig.terms, 3); /* the third was seen and ignored */
  assert_true(f.sig.draining);
  assert_int_equal(f.off_main, 0);
  assert_int_equal(f.closed, 1);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(tdm_worker_stop(&f.w[i]), 0);
    assert_int_equal(tdm_worker_join(&f.w[i]), 0);
  }
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

static int external_drain_stops;

static void count_stop(tdm_signals_t *s, int signum)
{
  (void)signum;
  external_drain_stops++;
  tdm_signals_close(s, NULL);
}

static void test_drain_started_elsewhere(void **state)
{
  (void)state;
  uv_loop_t loop;
  tdm_signals_t sig;
  tdm_signals_hooks_t h = { .on_stop_now = count_stop };
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tdm_signals_start(&sig, &loop, &h, NULL), 0);
  tdm_signals_set_draining(&sig); /* e.g. the admin API began the drain */
  raise(SIGTERM);                 /* so the first signal already means "now" */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(external_drain_stops, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_signals_on_main_loop),
    cmocka_unit_test(test_drain_started_elsewhere),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
