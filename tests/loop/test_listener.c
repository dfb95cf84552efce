/* core/listener and net/sockaddr: address parsing and formatting; two workers' SO_REUSEPORT
 * listeners on one port both accepting; "localhost" and "::1" listeners; pause (connections wait in
 * the backlog, nothing accepted) and resume; close callbacks once and uv_loop_close() == 0. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <unistd.h>
#include <cmocka.h>
#include <tandem/core/listener.h>
#include <tandem/core/worker.h>

/* ---- addresses ---- */

static void expect_format(const char *text, uint16_t def, const char *want)
{
  tdm_sockaddr_t a;
  char buf[TDM_SOCKADDR_STRLEN];
  assert_int_equal(tdm_sockaddr_parse_hostport(text, def, &a), 0);
  tdm_sockaddr_format(&a, buf, sizeof(buf));
  assert_string_equal(buf, want);
}

static void test_sockaddr_parse_format(void **state)
{
  (void)state;
  expect_format("10.0.0.5:5123", 9042, "10.0.0.5:5123");
  expect_format("10.0.0.5", 9042, "10.0.0.5:9042");
  expect_format("[::1]:9042", 1, "[::1]:9042");
  expect_format("[2001:db8::7]", 9042, "[2001:db8::7]:9042");
  expect_format("2001:db8::7", 9042, "[2001:db8::7]:9042"); /* bare IPv6: no port part */
  expect_format("localhost:9042", 0, "127.0.0.1:9042");
  expect_format("0.0.0.0:0", 9042, "0.0.0.0:0");
  tdm_sockaddr_t a;
  const char *bad[] = { "", "1.2.3.4:70000", "1.2.3.4:", "1.2.3.4:9x", "[::1", "[::1]x", "[::1]:", ":9042",
                        "no-such-host.invalid:9042" };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(bad); i++) assert_true(tdm_sockaddr_parse_hostport(bad[i], 1, &a) < 0);
  assert_int_equal(tdm_sockaddr_parse_hostport("no-such-host.invalid", 1, &a), TDM_ENOTFOUND);
  assert_int_equal(tdm_sockaddr_parse_ip("localhost", 1, &a), TDM_EINVAL); /* numeric only */
  assert_int_equal(tdm_sockaddr_parse_ip("::ffff:10.1.2.3", 7, &a), 0);
  assert_int_equal(a.sa.sa_family, AF_INET6);
  assert_int_equal(tdm_sockaddr_port(&a), 7);
  tdm_sockaddr_set_port(&a, 8);
  assert_int_equal(tdm_sockaddr_port(&a), 8);
  assert_int_equal(tdm_sockaddr_len(&a), sizeof(struct sockaddr_in6));
  tdm_sockaddr_t zero = { 0 };
  char buf[8];
  assert_int_equal(tdm_sockaddr_format(&zero, buf, sizeof(buf)), 1);
  assert_string_equal(buf, "?");
  assert_int_equal(tdm_sockaddr_len(&zero), 0);
}

/* ---- two workers, one port ---- */

#define CLIENTS 64

typedef struct pair_s {
  tdm_listener_t lst[2];        /* one per worker, each on its own loop */
  _Atomic uint16_t port;        /* chosen by worker 0, reused by worker 1 */
  _Atomic int accepted[2];      /* per worker */
  _Atomic int open_errors;      /* listener open failures */
} pair_t;

static int count_and_close(tdm_listener_t *l, uv_os_sock_t fd, const tdm_sockaddr_t *peer)
{
  pair_t *p = l->data;
  int id = (int)(l - p->lst);
  (void)fd;
  (void)peer;
  atomic_fetch_add(&p->accepted[id], 1);
  return -1; /* the listener closes it */
}

static int pair_init(tdm_worker_t *w)
{
  pair_t *p = w->data;
  int rc = tdm_listener_open_host(&p->lst[w->id], &w->loop, "127.0.0.1", atomic_load(&p->port), 128, count_and_close, p);
  if (rc < 0) {
    atomic_fetch_add(&p->open_errors, 1);
    return rc;
  }
  if (w->id == 0) atomic_store(&p->port, tdm_listener_port(&p->lst[0]));
  return 0;
}

static void pair_fini(tdm_worker_t *w)
{
  pair_t *p = w->data;
  tdm_listener_close(&p->lst[w->id], NULL);
}

static const tdm_worker_hooks_t pair_hooks = { .init = pair_init, .fini = pair_fini };

static int raw_connect(const tdm_sockaddr_t *a)
{
  int fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, &a->sa, tdm_sockaddr_len(a)), 0);
  return fd;
}

static void test_reuseport_two_workers(void **state)
{
  (void)state;
  pair_t p;
  memset(&p, 0, sizeof(p));
  tdm_worker_t w[2];
  assert_int_equal(tdm_worker_start(&w[0], 0, &pair_hooks, &p), 0);
  assert_true(atomic_load(&p.port) != 0);
  assert_int_equal(tdm_worker_start(&w[1], 1, &pair_hooks, &p), 0); /* same port: SO_REUSEPORT */
  assert_int_equal(atomic_load(&p.open_errors), 0);
  tdm_sockaddr_t a;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", atomic_load(&p.port), &a), 0);
  for (int i = 0; i < CLIENTS; i++) close(raw_connect(&a)); /* queued in the kernel, then accepted */
  for (int t = 0; t < 500 && atomic_load(&p.accepted[0]) + atomic_load(&p.accepted[1]) < CLIENTS; t++)
    usleep(10 * 1000);
  int a0 = atomic_load(&p.accepted[0]), a1 = atomic_load(&p.accepted[1]);
  assert_int_equal(a0 + a1, CLIENTS);
  assert_true(a0 > 0); /* the kernel spread them: 64 connections all on one socket is 2^-63 */
  assert_true(a1 > 0);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(tdm_worker_stop(&w[i]), 0);
    assert_int_equal(tdm_worker_join(&w[i]), 0);
    assert_int_equal(w[i].leaked_handles, 0);
  }
}

/* ---- single-loop listeners ---- */

typedef struct single_s {
  tdm_listener_t lst;     /* the listener */
  int accepted;           /* accept callbacks */
  tdm_sockaddr_t peer;    /* last peer */
  int closed;             /* close callbacks */
} single_t;

static int keep_peer(tdm_listener_t *l, uv_os_sock_t fd, const tdm_sockaddr_t *peer)
{
  single_t *s = l->data;
  s->accepted++;
  s->peer = *peer;
  close(fd);
  return 0;
}

static void single_closed(tdm_listener_t *l)
{
  single_t *s = l->data;
  s->closed++;
}

static void run_until_accepted(uv_loop_t *loop, single_t *s, int want)
{
  for (int i = 0; i < 100 && s->accepted < want; i++) uv_run(loop, UV_RUN_ONCE);
  assert_int_equal(s->accepted, want);
}

static void listen_connect_close(const char *host, int family)
{
  uv_loop_t loop;
  single_t s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(uv_loop_init(&loop), 0);
  int rc = tdm_listener_open_host(&s.lst, &loop, host, 0, 0, keep_peer, &s);
  if (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT) {
    assert_int_equal(uv_loop_close(&loop), 0);
    skip(); /* no IPv6 in this sandbox */
  }
  assert_int_equal(rc, 0);
  assert_int_equal(s.lst.addr.sa.sa_family, family);
  assert_true(tdm_listener_port(&s.lst) != 0);
  int fd = raw_connect(&s.lst.addr);
  run_until_accepted(&loop, &s, 1);
  assert_int_equal(s.peer.sa.sa_family, family);
  tdm_listener_close(&s.lst, single_closed);
  tdm_listener_close(&s.lst, single_closed);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.closed, 1);
  assert_int_equal(s.lst.fd, -1);
  assert_int_equal(uv_loop_close(&loop), 0);
  close(fd);
}

static void test_localhost(void **state)
{
  (void)state;
  listen_connect_close("localhost", AF_INET);
}

static void test_ipv6_loopback(void **state)
{
  (void)state;
  listen_connect_close("::1", AF_INET6);
}

static void tick(uv_timer_t *t) { (void)t; }

static void test_pause_resume(void **state)
{
  (void)state;
  uv_loop_t loop;
  single_t s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tdm_listener_open_host(&s.lst, &loop, "127.0.0.1", 0, 0, keep_peer, &s), 0);
  tdm_listener_pause(&s.lst, TDM_LISTENER_PAUSE_LIMIT);
  tdm_listener_pause(&s.lst, TDM_LISTENER_PAUSE_DRAIN);
  assert_true(tdm_listener_is_paused(&s.lst));
  int c1 = raw_connect(&s.lst.addr); /* completes: the kernel queues it */
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, tick, 30, 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* only the timer keeps it alive */
  assert_int_equal(s.accepted, 0);
  tdm_listener_resume(&s.lst, TDM_LISTENER_PAUSE_LIMIT);
  assert_true(tdm_listener_is_paused(&s.lst)); /* still draining */
  uv_timer_start(&t, tick, 30, 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.accepted, 0);
  tdm_listener_resume(&s.lst, TDM_LISTENER_PAUSE_DRAIN);
  run_until_accepted(&loop, &s, 1);
  assert_int_equal(s.lst.accepted, 1);
  uv_close((uv_handle_t *)&t, NULL);
  tdm_listener_close(&s.lst, single_closed);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  close(c1);
}

static void test_bind_conflict(void **state)
{
  (void)state;
  uv_loop_t loop;
  single_t s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(uv_loop_init(&loop), 0);
  /* a plain socket (no SO_REUSEPORT) holds the port: our bind must fail cleanly */
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  tdm_sockaddr_t a;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", 0, &a), 0);
  assert_int_equal(bind(fd, &a.sa, tdm_sockaddr_len(&a)), 0);
  assert_int_equal(listen(fd, 1), 0);
  assert_int_equal(tdm_sockaddr_local_of(fd, &a), 0);
  assert_int_equal(tdm_listener_open(&s.lst, &loop, &a, 0, keep_peer, &s), UV_EADDRINUSE);
  assert_int_equal(tdm_listener_open_host(&s.lst, &loop, "no-such-host.invalid", 1, 0, keep_peer, &s), TDM_ENOTFOUND);
  tdm_listener_close(&s.lst, single_closed); /* nothing was opened: no-op */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.closed, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  close(fd);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sockaddr_parse_format),
    cmocka_unit_test(test_reuseport_two_workers),
    cmocka_unit_test(test_localhost),
    cmocka_unit_test(test_ipv6_loopback),
    cmocka_unit_test(test_pause_resume),
    cmocka_unit_test(test_bind_conflict),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
