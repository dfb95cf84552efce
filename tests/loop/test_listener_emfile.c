/* core/listener under descriptor exhaustion: with RLIMIT_NOFILE lowered and every descriptor in use,
 * accept fails with EMFILE; the listener pauses (counted) instead of dropping the queued connections,
 * retries after its pause, and accepts each waiting connection as soon as a descriptor is free. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>
#include <tandem/core/listener.h>

#define FILLERS_MAX 64

typedef struct fixture_s {
  uv_loop_t loop;               /* the test's loop */
  tdm_listener_t lst;           /* the listener under test */
  uv_timer_t step;              /* frees descriptors over time */
  int fillers[FILLERS_MAX];     /* descriptors that use up the limit */
  int nfillers;                 /* how many */
  int accepted_fds[4];          /* sockets the owner kept (so descriptors stay scarce) */
  int accepted;                 /* accept callbacks */
  uint64_t emfile_at_first_accept; /* pauses counted before anything could be accepted */
  int steps;                    /* step timer runs */
} fixture_t;

static int keep_fd(tdm_listener_t *l, uv_os_sock_t fd, const tdm_sockaddr_t *peer)
{
  fixture_t *f = l->data;
  (void)peer;
  if (f->accepted == 0) f->emfile_at_first_accept = l->emfile_pauses;
  assert_true(f->accepted < 4);
  f->accepted_fds[f->accepted++] = fd;
  return 0;
}

static void on_step(uv_timer_t *t)
{
  fixture_t *f = t->data;
  f->steps++;
  if (f->steps == 1) {
    assert_true(f->lst.emfile_pauses >= 1); /* accept hit EMFILE and paused */
    assert_int_equal(f->accepted, 0);
  }
  if (f->nfillers > 0 && f->accepted < 2) {
    close(f->fillers[--f->nfillers]); /* one descriptor becomes free */
    return;
  }
  if (f->accepted == 2) {
    uv_close((uv_handle_t *)t, NULL);
    tdm_listener_close(&f->lst, NULL);
  }
}

static void test_emfile_pauses_then_recovers(void **state)
{
  (void)state;
  fixture_t f;
  memset(&f, 0, sizeof(f));
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(tdm_listener_open_host(&f.lst, &f.loop, "127.0.0.1", 0, 16, keep_fd, &f), 0);
  f.lst.emfile_pause_ms = 20;
  uv_timer_init(&f.loop, &f.step);
  f.step.data = &f;

  /* two clients waiting in the backlog before descriptors run out */
  int c[2];
  for (int i = 0; i < 2; i++) {
    c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c[i], &f.lst.addr.sa, tdm_sockaddr_len(&f.lst.addr)), 0);
  }

  struct rlimit saved, low;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int probe = dup(0);
  assert_true(probe >= 0);
  close(probe);
  low = saved;
  low.rlim_cur = (rlim_t)probe + 8; /* a few above what is open now */
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  int fd;
  while (f.nfillers < FILLERS_MAX && (fd = dup(0)) >= 0) f.fillers[f.nfillers++] = fd;
  assert_int_equal(errno, EMFILE); /* every descriptor below the limit is taken */
  assert_true(f.nfillers >= 2);

  uv_timer_start(&f.step, on_step, 50, 50);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);

  assert_int_equal(f.accepted, 2); /* nothing dropped: both waiting clients got through */
  assert_int_equal(f.emfile_at_first_accept >= 1, 1);
  assert_true(f.lst.emfile_pauses >= 2); /* it ran dry again after the first freed descriptor */
  assert_int_equal(f.lst.accept_errors, 0);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  for (int i = 0; i < f.nfillers; i++) close(f.fillers[i]);
  for (int i = 0; i < f.accepted; i++) close(f.accepted_fds[i]);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);

  /* the accepted sockets were the waiting clients: closing ours gives them EOF */
  for (int i = 0; i < 2; i++) {
    char b;
    assert_int_equal(read(c[i], &b, 1), 0);
    close(c[i]);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_emfile_pauses_then_recovers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
