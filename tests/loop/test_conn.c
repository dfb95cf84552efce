/* net/conn on a real loop over loopback sockets: zero-copy echo with many queued entries leaving in
 * ONE write, writes queued by several timers batched the same way, watermarks firing exactly once per
 * crossing, a handler closing its own connection, flush-then-close delivering every byte before the
 * FIN, the flush deadline, yielding with redelivery, and pause/resume with buffered input. Every test
 * ends with uv_loop_close() == 0 (no handle leaked) and exact callback counts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/core/listener.h>
#include <tandem/net/conn.h>

typedef struct env_s env_t;

typedef struct peer_s {
  tdm_conn_t conn;      /* the connection under test */
  env_t *env;           /* back pointer */
  int closes;           /* on_close calls */
  int close_reason;     /* reason given to on_close */
  int destroys;         /* on_destroy calls */
  int data_calls;       /* on_data calls */
  size_t received;      /* bytes consumed by on_data */
  size_t received_at_close; /* received when on_close ran */
  bool heap;            /* allocated by the accept callback */
} peer_t;

struct env_s {
  uv_loop_t loop;                  /* the test's loop */
  tdm_conn_ctx_t ctx;              /* its connection context */
  tdm_listener_t lst;              /* accepts exactly one connection */
  tdm_sockaddr_t addr;             /* where to connect */
  const tdm_conn_hooks_t *server_hooks; /* hooks for the accepted side */
  bool server_reads;               /* start reading on accept */
  peer_t *server;                  /* the accepted connection */
  peer_t client;                   /* the connecting side */
  int destroyed;                   /* connections destroyed */
  int connects;                    /* connect callbacks */
  int connect_status;              /* last connect status */
  /* scenario data */
  uint8_t *expect;                 /* bytes the receiving side must see, in order */
  size_t expect_len;               /* their count */
  tdm_slice_t *body;               /* a shared body slice */
  int highs, lows;                 /* watermark callbacks on the client */
  uv_timer_t timers[3];            /* scenario timers */
  uv_timer_t guard;                /* fails a test that stalls (a loop asleep with work due) */
  int timers_open;                 /* timers not yet closed */
  uint64_t started_ms;             /* loop time at connect */
  uint64_t resumed_ms;             /* loop time when a pause ended */
  int after_resume_len;            /* len offered to on_data after resume */
};

static void maybe_finish(env_t *env)
{
  if (env->destroyed == 2 && !env->ctx.closing) { /* every test has a client and an accepted server */
    uv_close((uv_handle_t *)&env->guard, NULL);
    if (!env->lst.closing) tdm_listener_close(&env->lst, NULL);
    tdm_conn_ctx_close(&env->ctx, NULL);
  }
}

static void on_close(tdm_conn_t *c, int reason)
{
  peer_t *p = (peer_t *)c;
  p->closes++;
  p->close_reason = reason;
  p->received_at_close = p->received;
}

static void on_destroy(tdm_conn_t *c)
{
  peer_t *p = (peer_t *)c;
  env_t *env = p->env;
  p->destroys++;
  env->destroyed++;
  if (p->heap) {
    env->server = NULL;
    free(p);
  }
  maybe_finish(env);
}

static int on_accept(tdm_listener_t *l, uv_os_sock_t fd, const tdm_sockaddr_t *peer)
{
  env_t *env = l->data;
  (void)peer;
  peer_t *p = calloc(1, sizeof(*p));
  assert_non_null(p);
  assert_int_equal(tdm_conn_init(&p->conn, &env->ctx, env->server_hooks, env), 0);
  p->env = env;
  p->heap = true;
  env->server = p;
  tdm_conn_set_name(&p->conn, 'C', 1);
  assert_int_equal(tdm_conn_open(&p->conn, fd), 0);
  assert_int_equal(strncmp(tdm_conn_tag(&p->conn), "C-1 127.0.0.1:", 14), 0);
  if (env->server_reads) assert_int_equal(tdm_conn_read_start(&p->conn), 0);
  tdm_listener_close(l, NULL); /* one connection per test */
  return 0;
}

static void guard_fired(uv_timer_t *t)
{
  (void)t;
  fail_msg("the scenario stalled");
}

static void env_init(env_t *env, const tdm_conn_hooks_t *server_hooks, bool server_reads)
{
  memset(env, 0, sizeof(*env));
  assert_int_equal(uv_loop_init(&env->loop), 0);
  assert_int_equal(tdm_conn_ctx_init(&env->ctx, &env->loop), 0);
  assert_int_equal(tdm_listener_open_host(&env->lst, &env->loop, "127.0.0.1", 0, 16, on_accept, env), 0);
  assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", tdm_listener_port(&env->lst), &env->addr), 0);
  env->server_hooks = server_hooks;
  env->server_reads = server_reads;
  env->client.env = env;
  uv_timer_init(&env->loop, &env->guard);
  uv_timer_start(&env->guard, guard_fired, 10000, 0);
}

static void client_start(env_t *env, const tdm_conn_hooks_t *hooks, tdm_conn_connect_cb cb)
{
  assert_int_equal(tdm_conn_init(&env->client.conn, &env->ctx, hooks, env), 0);
  tdm_conn_set_name(&env->client.conn, 'O', 7);
  assert_string_equal(tdm_conn_tag(&env->client.conn), "O-7");
  assert_int_equal(tdm_conn_connect(&env->client.conn, &env->addr, 2000, cb), 0);
  env->started_ms = uv_now(&env->loop);
}

static void env_run_and_close(env_t *env)
{
  assert_int_equal(uv_run(&env->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env->ctx.nconns, 0);
  assert_int_equal(uv_loop_close(&env->loop), 0);
  free(env->expect);
  tdm_slice_unref(env->body);
}

/* ---- echo, zero-copy, one write for many entries ---- */

static int echo_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  peer_t *p = (peer_t *)c;
  size_t off;
  tdm_slice_t *s = tdm_conn_share_input(c, data, len, &off);
  int rc = tdm_conn_write(c, NULL, 0, s, off, len); /* the bytes go back out of the read buffer */
  tdm_slice_unref(s);
  p->data_calls++;
  p->received += len;
  return rc < 0 ? rc : (int)len;
}

static const tdm_conn_hooks_t echo_hooks = { .on_data = echo_data, .on_close = on_close, .on_destroy = on_destroy };

static int collect_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  peer_t *p = (peer_t *)c;
  env_t *env = p->env;
  p->data_calls++;
  assert_true(p->received + len <= env->expect_len);
  assert_memory_equal(data, env->expect + p->received, len);
  p->received += len;
  if (p->received == env->expect_len) tdm_conn_close(c, 0);
  return (int)len;
}

static const tdm_conn_hooks_t collect_hooks = { .on_data = collect_data, .on_close = on_close, .on_destroy = on_destroy };

#define ENTRIES 200
#define BODY 100

static void queue_entries(env_t *env, int first, int count)
{
  for (int i = first; i < first + count; i++) {
    char hdr[24];
    snprintf(hdr, sizeof(hdr), "HDR%05d:", i % 100000); /* 9 bytes, like a frame header */
    assert_int_equal(tdm_conn_write(&env->client.conn, hdr, 9, env->body, (size_t)i * BODY, BODY), 0);
  }
}

static void build_expect(env_t *env, int count)
{
  env->body = tdm_slice_new(NULL, (size_t)count * BODY);
  for (size_t i = 0; i < (size_t)count * BODY; i++) env->body->data[i] = (uint8_t)(i * 31 + 7);
  env->expect_len = (size_t)count * (9 + BODY);
  env->expect = malloc(env->expect_len);
  for (int i = 0; i < count; i++) {
    char hdr[24];
    snprintf(hdr, sizeof(hdr), "HDR%05d:", i % 100000);
    memcpy(env->expect + (size_t)i * (9 + BODY), hdr, 9);
    memcpy(env->expect + (size_t)i * (9 + BODY) + 9, env->body->data + (size_t)i * BODY, BODY);
  }
}

static void echo_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  env->connect_status = status;
  assert_int_equal(status, 0);
  queue_entries(env, 0, ENTRIES);
  assert_int_equal(c->write_calls, 0); /* nothing leaves inside the callback */
  assert_int_equal(tdm_conn_unsent(c), env->expect_len);
  assert_int_equal(env->body->refs, 1 + ENTRIES);
  assert_int_equal(tdm_conn_read_start(c), 0);
}

static void test_echo_one_write_for_many_entries(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &echo_hooks, true);
  build_expect(&env, ENTRIES);
  client_start(&env, &collect_hooks, echo_connected);
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.connects, 1);
  assert_int_equal(env.client.conn.write_calls, 0 + 1); /* 200 entries, 400 iovecs, one uv_write */
  assert_int_equal(env.client.received, env.expect_len);
  assert_int_equal(env.client.closes, 1);
  assert_int_equal(env.client.close_reason, 0);
  assert_int_equal(env.client.destroys, 1);
  assert_int_equal(env.destroyed, 2);
  assert_int_equal(env.body->refs, 1); /* every entry dropped its reference */
  assert_int_equal(env.ctx.bytes_out, 2 * env.expect_len); /* client out + echo out */
  assert_int_equal(env.ctx.bytes_in, 2 * env.expect_len);
  assert_int_equal(env.ctx.nconns, 0);
  assert_int_equal(uv_loop_close(&env.loop), 0);
  free(env.expect);
  tdm_slice_unref(env.body);
}

/* ---- writes from three timers of one iteration: still one write ---- */

static void timer_write(uv_timer_t *t)
{
  env_t *env = t->data;
  int idx = (int)(t - env->timers);
  queue_entries(env, idx * 10, 10);
}

static void timer_closed(uv_handle_t *h)
{
  env_t *env = h->data;
  env->timers_open--;
}

static void timers_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  for (int i = 0; i < 3; i++) {
    uv_timer_init(&env->loop, &env->timers[i]);
    env->timers[i].data = env;
    uv_timer_start(&env->timers[i], timer_write, 5, 0); /* same due time: same iteration */
    env->timers_open++;
  }
  assert_int_equal(tdm_conn_read_start(c), 0);
}

static void close_timers_data(tdm_conn_t *c, int reason)
{
  env_t *env = ((peer_t *)c)->env;
  on_close(c, reason);
  for (int i = 0; i < 3; i++) uv_close((uv_handle_t *)&env->timers[i], timer_closed);
}

static const tdm_conn_hooks_t timers_client_hooks = {
  .on_data = collect_data, .on_close = close_timers_data, .on_destroy = on_destroy
};

static void test_timer_writes_batched(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &echo_hooks, true);
  build_expect(&env, 30);
  client_start(&env, &timers_client_hooks, timers_connected);
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.client.conn.write_calls, 1); /* 30 entries from 3 timer callbacks, one write */
  assert_int_equal(env.client.received, env.expect_len);
  assert_int_equal(env.timers_open, 0);
  assert_int_equal(env.destroyed, 2);
  env_run_and_close(&env);
}

/* ---- watermarks ---- */

#define MIB (1u << 20)

static int discard_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  peer_t *p = (peer_t *)c;
  (void)data;
  p->data_calls++;
  p->received += len;
  return (int)len;
}

static const tdm_conn_hooks_t discard_hooks = { .on_data = discard_data, .on_close = on_close, .on_destroy = on_destroy };

static void wm_high(tdm_conn_t *c)
{
  env_t *env = c->data;
  env->highs++;
}

static void wm_low(tdm_conn_t *c)
{
  env_t *env = c->data;
  env->lows++;
  assert_true(tdm_conn_unsent(c) <= 512 * 1024);
  if (env->lows == 1) {
    for (int i = 0; i < 2; i++) assert_int_equal(tdm_conn_write(c, NULL, 0, env->body, 0, MIB), 0);
    assert_int_equal(env->highs, 2); /* crossing again fires again, synchronously */
  } else {
    tdm_conn_close(c, 0);
  }
}

static int never_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  (void)c;
  (void)data;
  (void)len;
  fail_msg("unexpected input");
  return 0;
}

static const tdm_conn_hooks_t wm_hooks = {
  .on_data = never_data, .on_high = wm_high, .on_low = wm_low, .on_close = on_close, .on_destroy = on_destroy
};

static void start_server_reading(uv_timer_t *t)
{
  env_t *env = t->data;
  assert_non_null(env->server);
  assert_int_equal(env->lows, 0); /* nobody read yet: still above low */
  assert_int_equal(tdm_conn_read_start(&env->server->conn), 0);
  uv_close((uv_handle_t *)t, timer_closed);
}

static void wm_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  tdm_conn_set_watermarks(c, MIB, 512 * 1024);
  assert_int_equal(tdm_conn_write(c, NULL, 0, env->body, 0, MIB), 0);
  assert_int_equal(env->highs, 0); /* exactly at high is not above it */
  for (int i = 1; i < 16; i++) assert_int_equal(tdm_conn_write(c, NULL, 0, env->body, 0, MIB), 0);
  assert_int_equal(env->highs, 1); /* once per crossing, not once per write */
  uv_timer_init(&env->loop, &env->timers[0]);
  env->timers[0].data = env;
  env->timers_open++;
  uv_timer_start(&env->timers[0], start_server_reading, 50, 0);
}

static void test_watermarks_once_per_crossing(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &discard_hooks, false);
  env.body = tdm_slice_new(NULL, MIB);
  memset(env.body->data, 'w', MIB);
  client_start(&env, &wm_hooks, wm_connected);
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.highs, 2);
  assert_int_equal(env.lows, 2);
  assert_int_equal(env.client.closes, 1);
  assert_int_equal(env.client.conn.bytes_out, 18u * MIB);
  assert_int_equal(env.destroyed, 2);
  assert_int_equal(env.timers_open, 0);
  assert_int_equal(uv_loop_close(&env.loop), 0);
  assert_int_equal(env.body->refs, 1);
  tdm_slice_unref(env.body);
}

/* ---- a handler closing its own connection ---- */

static int self_close_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  peer_t *p = (peer_t *)c;
  (void)data;
  p->data_calls++;
  p->received += len;
  tdm_conn_close(c, 0);
  tdm_conn_close(c, TDM_EINVAL); /* idempotent: no second on_close, reason kept */
  assert_true(tdm_conn_is_closing(c));
  assert_int_equal(tdm_conn_write_bytes(c, "late", 4), TDM_ECLOSED);
  assert_int_equal(p->destroys, 0); /* still referenced: memory valid until we return */
  return (int)len;
}

static void hello_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  assert_int_equal(tdm_conn_write_bytes(c, "hello", 5), 0);
  assert_int_equal(tdm_conn_read_start(c), 0);
}

static int server_closes, server_close_reason, server_destroys;

static void count_server_close(tdm_conn_t *c, int reason)
{
  (void)c;
  server_closes++;
  server_close_reason = reason;
}

static void count_server_destroy(tdm_conn_t *c)
{
  server_destroys++;
  on_destroy(c);
}

static const tdm_conn_hooks_t self_close_counted = {
  .on_data = self_close_data, .on_close = count_server_close, .on_destroy = count_server_destroy
};

static void test_close_inside_own_callback(void **state)
{
  (void)state;
  env_t env;
  server_closes = server_destroys = 0;
  env_init(&env, &self_close_counted, true);
  client_start(&env, &discard_hooks, hello_connected);
  env_run_and_close(&env);
  assert_int_equal(server_closes, 1);
  assert_int_equal(server_close_reason, 0);
  assert_int_equal(server_destroys, 1);
  assert_int_equal(env.client.closes, 1);
  assert_int_equal(env.client.close_reason, UV_EOF); /* the peer went away */
  assert_int_equal(env.client.destroys, 1);
}

/* ---- flush then close ---- */

#define FLUSH_BYTES (4u * MIB)
#define FLUSH_CHUNK (64u * 1024)

static int verify_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  peer_t *p = (peer_t *)c;
  env_t *env = p->env;
  p->data_calls++;
  assert_true(p->received + len <= env->expect_len);
  assert_memory_equal(data, env->expect + p->received, len);
  p->received += len;
  return (int)len;
}

static void server_eof_closes(tdm_conn_t *c, int reason)
{
  on_close(c, reason);
  assert_int_equal(reason, UV_EOF); /* the FIN arrived... */
  peer_t *p = (peer_t *)c;
  assert_int_equal(p->received, FLUSH_BYTES); /* ...after every byte */
}

static const tdm_conn_hooks_t verify_hooks = { .on_data = verify_data, .on_close = server_eof_closes, .on_destroy = on_destroy };

static void flush_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  for (size_t off = 0; off < FLUSH_BYTES; off += FLUSH_CHUNK)
    assert_int_equal(tdm_conn_write(c, NULL, 0, env->body, off, FLUSH_CHUNK), 0);
  assert_int_equal(tdm_conn_read_start(c), 0);
  tdm_conn_close_after_flush(c, 5000);
  assert_false(tdm_conn_is_closing(c));
  assert_int_equal(tdm_conn_write_bytes(c, "x", 1), TDM_ECLOSED);
}

static void test_flush_then_close_delivers_everything(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &verify_hooks, true);
  env.body = tdm_slice_new(NULL, FLUSH_BYTES);
  for (size_t i = 0; i < FLUSH_BYTES; i++) env.body->data[i] = (uint8_t)(i ^ (i >> 9));
  env.expect_len = FLUSH_BYTES;
  env.expect = malloc(FLUSH_BYTES);
  memcpy(env.expect, env.body->data, FLUSH_BYTES);
  client_start(&env, &discard_hooks, flush_connected);
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.client.closes, 1);
  assert_int_equal(env.client.close_reason, 0); /* clean: FIN sent, peer's EOF seen */
  assert_int_equal(env.client.data_calls, 0);
  assert_int_equal(env.client.conn.bytes_out, FLUSH_BYTES);
  assert_int_equal(env.destroyed, 2);
  assert_int_equal(uv_loop_close(&env.loop), 0);
  free(env.expect);
  tdm_slice_unref(env.body);
}

/* ---- flush then close with a peer that never reads: the deadline ---- */

static void deadline_client_close(tdm_conn_t *c, int reason)
{
  env_t *env = ((peer_t *)c)->env;
  on_close(c, reason);
  assert_true(uv_now(&env->loop) - env->started_ms >= 200);
  if (env->server) tdm_conn_close(&env->server->conn, 0);
}

static const tdm_conn_hooks_t deadline_hooks = {
  .on_data = never_data, .on_close = deadline_client_close, .on_destroy = on_destroy
};

static void deadline_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  for (int i = 0; i < 64; i++) assert_int_equal(tdm_conn_write(c, NULL, 0, env->body, 0, MIB), 0);
  env->started_ms = uv_now(&env->loop);
  tdm_conn_close_after_flush(c, 200);
}

static void test_flush_close_deadline(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &discard_hooks, false); /* the server never reads */
  env.body = tdm_slice_new(NULL, MIB);
  memset(env.body->data, 'd', MIB);
  client_start(&env, &deadline_hooks, deadline_connected);
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.client.closes, 1);
  assert_int_equal(env.client.close_reason, TDM_ETIMEOUT);
  assert_true(env.client.conn.bytes_out < 64u * MIB);
  assert_int_equal(env.destroyed, 2);
  assert_int_equal(uv_loop_close(&env.loop), 0);
  assert_int_equal(env.body->refs, 1); /* queued entries released on close */
  tdm_slice_unref(env.body);
}

/* ---- yield: consume 10 bytes per call and ask for redelivery ---- */

static int yield_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  peer_t *p = (peer_t *)c;
  env_t *env = p->env;
  (void)data;
  p->data_calls++;
  if (len < 10) return 0; /* wait for a whole "frame" */
  p->received += 10;
  if (len > 10) tdm_conn_redeliver(c);
  if (p->received == env->expect_len) tdm_conn_close(c, 0);
  return 10;
}

static const tdm_conn_hooks_t yield_hooks = { .on_data = yield_data, .on_close = on_close, .on_destroy = on_destroy };

static void thousand_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  assert_int_equal(tdm_conn_write_bytes(c, env->expect, env->expect_len), 0);
  assert_int_equal(tdm_conn_read_start(c), 0);
}

static void test_yield_and_redeliver(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &yield_hooks, true);
  env.expect_len = 1000;
  env.expect = calloc(1, 1000);
  client_start(&env, &discard_hooks, thousand_connected);
  uint64_t passes_before = env.ctx.passes;
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.destroyed, 2);
  assert_true(env.ctx.passes - passes_before >= 100); /* one frame per pass: the loop kept turning */
  assert_int_equal(uv_loop_close(&env.loop), 0);
  free(env.expect);
}

/* ---- pause with input buffered, resume from a timer: the rest is offered without new input ---- */

static void resume_timer(uv_timer_t *t)
{
  env_t *env = t->data;
  env->resumed_ms = uv_now(&env->loop);
  tdm_conn_read_resume(&env->server->conn, TDM_CONN_PAUSE_OWNER);
  uv_close((uv_handle_t *)t, timer_closed);
}

static int pause_data(tdm_conn_t *c, const uint8_t *data, size_t len)
{
  peer_t *p = (peer_t *)c;
  env_t *env = p->env;
  (void)data;
  p->data_calls++;
  if (p->data_calls == 1) {
    assert_int_equal(len, 100);
    tdm_conn_read_pause(c, TDM_CONN_PAUSE_OWNER);
    tdm_conn_redeliver(c); /* paused: must not deliver until resumed */
    uv_timer_init(&env->loop, &env->timers[0]);
    env->timers[0].data = env;
    env->timers_open++;
    uv_timer_start(&env->timers[0], resume_timer, 20, 0);
    p->received += 40;
    return 40;
  }
  assert_int_equal(p->data_calls, 2);
  assert_true(env->resumed_ms > 0);
  env->after_resume_len = (int)len;
  p->received += len;
  tdm_conn_close(c, 0);
  return (int)len;
}

static const tdm_conn_hooks_t pause_hooks = { .on_data = pause_data, .on_close = on_close, .on_destroy = on_destroy };

static void hundred_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  uint8_t buf[100];
  memset(buf, 'p', sizeof(buf));
  assert_int_equal(tdm_conn_write_bytes(c, buf, sizeof(buf)), 0);
  assert_int_equal(tdm_conn_read_start(c), 0);
}

static void test_pause_resume_redelivers_buffered(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &pause_hooks, true);
  client_start(&env, &discard_hooks, hundred_connected);
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.after_resume_len, 60);
  assert_int_equal(env.timers_open, 0);
  assert_int_equal(env.destroyed, 2);
  assert_int_equal(uv_loop_close(&env.loop), 0);
}

/* ---- a write queued from a close callback (after the check phase) leaves before the loop sleeps ---- */

static void late_write_closed(uv_handle_t *h)
{
  env_t *env = h->data;
  env->timers_open--;
  queue_entries(env, 0, 5); /* closing phase: only the prepare pass can flush this before poll */
}

static void close_from_timer(uv_timer_t *t)
{
  uv_close((uv_handle_t *)t, late_write_closed);
}

static void late_connected(tdm_conn_t *c, int status)
{
  env_t *env = c->data;
  env->connects++;
  assert_int_equal(status, 0);
  assert_int_equal(tdm_conn_read_start(c), 0);
  uv_timer_init(&env->loop, &env->timers[0]);
  env->timers[0].data = env;
  env->timers_open++;
  uv_timer_start(&env->timers[0], close_from_timer, 5, 0);
}

static void test_write_from_close_callback(void **state)
{
  (void)state;
  env_t env;
  env_init(&env, &echo_hooks, true);
  build_expect(&env, 5);
  client_start(&env, &collect_hooks, late_connected);
  assert_int_equal(uv_run(&env.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(env.client.received, env.expect_len);
  assert_int_equal(env.client.conn.write_calls, 1);
  assert_int_equal(env.timers_open, 0);
  env_run_and_close(&env);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_echo_one_write_for_many_entries),
    cmocka_unit_test(test_timer_writes_batched),
    cmocka_unit_test(test_watermarks_once_per_crossing),
    cmocka_unit_test(test_close_inside_own_callback),
    cmocka_unit_test(test_flush_then_close_delivers_everything),
    cmocka_unit_test(test_flush_close_deadline),
    cmocka_unit_test(test_yield_and_redeliver),
    cmocka_unit_test(test_pause_resume_redelivers_buffered),
    cmocka_unit_test(test_write_from_close_callback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
