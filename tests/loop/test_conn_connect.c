/* tdm_conn_connect: refused (a bound port nobody listens on), timed out (a listener whose accept queue
 * is full drops our SYN), cancelled by a close while connecting, and a success that writes queued
 * before the connection completed. The connect callback runs exactly once in every case, a failed
 * connection closes and destroys itself, and the loop closes with no handle left. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <cmocka.h>
#include <tandem/net/conn.h>

typedef struct fixture_s {
  uv_loop_t loop;       /* the test's loop */
  tdm_conn_ctx_t ctx;   /* its context */
  tdm_conn_t conn;      /* the connection under test */
  int connects;         /* connect callbacks */
  int status;           /* the status they reported */
  int closes;           /* on_close calls */
  int close_reason;     /* its reason */
  int destroys;         /* on_destroy calls */
  uint64_t t0;          /* loop time at connect */
  uint64_t elapsed;     /* ms until the connect callback */
} fixture_t;

static int no_data(tdm_conn_t *c, const uint8_t *d, size_t n)
{
  (void)c;
  (void)d;
  return (int)n;
}

static void on_close(tdm_conn_t *c, int reason)
{
  fixture_t *f = c->data;
  f->closes++;
  f->close_reason = reason;
}

static void on_destroy(tdm_conn_t *c)
{
  fixture_t *f = c->data;
  f->destroys++;
  tdm_conn_ctx_close(&f->ctx, NULL);
}

static const tdm_conn_hooks_t hooks = { .on_data = no_data, .on_close = on_close, .on_destroy = on_destroy };

static void on_connect(tdm_conn_t *c, int status)
{
  fixture_t *f = c->data;
  f->connects++;
  f->status = status;
  f->elapsed = uv_now(&f->loop) - f->t0;
}

static void fixture_init(fixture_t *f)
{
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(tdm_conn_ctx_init(&f->ctx, &f->loop), 0);
  assert_int_equal(tdm_conn_init(&f->conn, &f->ctx, &hooks, f), 0);
  tdm_conn_set_name(&f->conn, 'T', 4);
}

static void fixture_finish(fixture_t *f)
{
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->connects, 1);
  assert_int_equal(f->destroys, 1);
  assert_int_equal(f->ctx.nconns, 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* A TCP socket bound to 127.0.0.1 on a free port; listens with `backlog` unless it is < 0. */
static int raw_socket(int backlog, uint16_t *port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  tdm_sockaddr_t a;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", 0, &a), 0);
  assert_int_equal(bind(fd, &a.sa, tdm_sockaddr_len(&a)), 0);
  if (backlog >= 0) assert_int_equal(listen(fd, backlog), 0);
  assert_int_equal(tdm_sockaddr_local_of(fd, &a), 0);
  *port = tdm_sockaddr_port(&a);
  return fd;
}

static void test_connect_refused(void **state)
{
  (void)state;
  fixture_t f;
  uint16_t port;
  int fd = raw_socket(-1, &port); /* bound, not listening: the kernel answers RST */
  fixture_init(&f);
  tdm_sockaddr_t a;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", port, &a), 0);
  f.t0 = uv_now(&f.loop);
  assert_int_equal(tdm_conn_connect(&f.conn, &a, 1000, on_connect), 0);
  char want[32];
  snprintf(want, sizeof(want), "T-4 127.0.0.1:%u", port);
  assert_string_equal(tdm_conn_tag(&f.conn), want);
  fixture_finish(&f);
  assert_int_equal(f.status, UV_ECONNREFUSED);
  assert_int_equal(f.closes, 1);
  assert_int_equal(f.close_reason, UV_ECONNREFUSED);
  close(fd);
}

static void test_connect_timeout_full_backlog(void **state)
{
  (void)state;
  uint16_t port;
  int lfd = raw_socket(0, &port); /* accept queue of one, never accepted */
  tdm_sockaddr_t a;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", port, &a), 0);
  int fill[3];
  for (int i = 0; i < 3; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = connect(fill[i], &a.sa, tdm_sockaddr_len(&a));
    assert_true(rc == 0 || errno == EINPROGRESS);
  }
  struct pollfd p = { .fd = fill[0], .events = POLLOUT };
  assert_int_equal(poll(&p, 1, 1000), 1); /* the first one is established: the queue is now full */

  fixture_t f;
  fixture_init(&f);
  f.t0 = uv_now(&f.loop);
  assert_int_equal(tdm_conn_connect(&f.conn, &a, 150, on_connect), 0);
  fixture_finish(&f);
  assert_int_equal(f.status, TDM_ETIMEOUT);
  assert_true(f.elapsed >= 150);
  assert_true(f.elapsed < 1000);
  assert_int_equal(f.closes, 1);
  assert_int_equal(f.close_reason, TDM_ETIMEOUT);
  for (int i = 0; i < 3; i++) close(fill[i]);
  close(lfd);
}

static void close_soon(uv_timer_t *t)
{
  fixture_t *f = t->data;
  tdm_conn_close(&f->conn, 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_close_while_connecting(void **state)
{
  (void)state;
  uint16_t port;
  int lfd = raw_socket(0, &port);
  tdm_sockaddr_t a;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", port, &a), 0);
  int fill = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(connect(fill, &a.sa, tdm_sockaddr_len(&a)), 0);

  fixture_t f;
  fixture_init(&f);
  uv_timer_t t;
  uv_timer_init(&f.loop, &t);
  t.data = &f;
  uv_timer_start(&t, close_soon, 20, 0);
  assert_int_equal(tdm_conn_connect(&f.conn, &a, 0, on_connect), 0);
  fixture_finish(&f);
  assert_int_equal(f.status, UV_ECANCELED);
  assert_int_equal(f.closes, 1);
  assert_int_equal(f.close_reason, 0); /* the owner's reason, not the cancellation */
  close(fill);
  close(lfd);
}

typedef struct echo_srv_s {
  int lfd;      /* listening socket (non-blocking) */
  int fd;       /* the accepted socket, 0 until then */
  char got[16]; /* what the client sent */
} echo_srv_t;

static int got_reply;

static int reply_data(tdm_conn_t *c, const uint8_t *d, size_t n)
{
  if (n < 4) return 0;
  assert_memory_equal(d, "pong", 4);
  got_reply = 1;
  tdm_conn_close(c, 0);
  return 4;
}

static const tdm_conn_hooks_t reply_hooks = { .on_data = reply_data, .on_close = on_close, .on_destroy = on_destroy };

/* A scripted peer on plain sockets, polled from a timer so it never blocks the loop. */
static void server_turn(uv_timer_t *t)
{
  echo_srv_t *s = t->data;
  if (s->fd <= 0 && (s->fd = accept(s->lfd, NULL, NULL)) < 0) return; /* not yet */
  ssize_t n = recv(s->fd, s->got, 4, MSG_DONTWAIT | MSG_PEEK);
  if (n < 4) return; /* the ping has not arrived yet */
  assert_int_equal(recv(s->fd, s->got, 4, 0), 4);
  assert_int_equal(write(s->fd, "pong", 4), 4);
  close(s->fd);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_connect_success_writes_queued_early(void **state)
{
  (void)state;
  uint16_t port;
  echo_srv_t srv = { 0 };
  srv.lfd = raw_socket(4, &port);
  assert_int_equal(fcntl(srv.lfd, F_SETFL, O_NONBLOCK), 0);
  fixture_t f;
  memset(&f, 0, sizeof(f));
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(tdm_conn_ctx_init(&f.ctx, &f.loop), 0);
  assert_int_equal(tdm_conn_init(&f.conn, &f.ctx, &reply_hooks, &f), 0);
  tdm_sockaddr_t a;
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", port, &a), 0);
  assert_int_equal(tdm_conn_connect(&f.conn, &a, 1000, on_connect), 0);
  assert_int_equal(tdm_conn_write_bytes(&f.conn, "ping", 4), 0); /* queued before the connect completes */
  assert_int_equal(tdm_conn_read_start(&f.conn), 0);               /* starts once connected */
  uv_timer_t t;
  uv_timer_init(&f.loop, &t);
  t.data = &srv;
  uv_timer_start(&t, server_turn, 1, 1);
  got_reply = 0;
  fixture_finish(&f);
  assert_int_equal(f.status, 0);
  assert_memory_equal(srv.got, "ping", 4);
  assert_int_equal(got_reply, 1);
  assert_int_equal(f.close_reason, 0);
  close(srv.lfd);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_connect_refused),
    cmocka_unit_test(test_connect_timeout_full_backlog),
    cmocka_unit_test(test_close_while_connecting),
    cmocka_unit_test(test_connect_success_writes_queued_early),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
