/* Fixtures shared by the backend loop tests (header-only, static inline): a mock cluster started
 * through tests/lib/mockctl.h, a configuration pointing at it, a loop runner with a deadline (a 10 ms
 * ticker keeps the loop from blocking so conditions are re-checked), a topology built from the mock's
 * nodes, a log capture, and the final check that the loop closes with no handle left. */
#ifndef TDM_TEST_BACKEND_UTIL_H
#define TDM_TEST_BACKEND_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <unistd.h>
#include <uv.h>

#include <tandem/backend/backend.h>
#include <tandem/backend/control.h>
#include <tandem/backend/topology.h>
#include <tandem/conf/conf.h>
#include <tandem/net/sockaddr.h>
#include <tandem/obs/log.h>
#include <tandem/proto/reader.h> /* mockctl.h uses tdm_bytes_t */

#include "mockctl.h"

typedef struct tb_fixture_s {
  uv_loop_t loop;       /* the test's loop */
  uv_timer_t ticker;    /* wakes the loop while a condition is awaited */
  tdm_mockctl_t mock;   /* the mock cluster */
  bool mock_up;         /* mock spawned */
  tdm_conf_t *conf;     /* configuration pointing at the mock */
  tdm_buf_pool_t pool;  /* buffer blocks for the backend */
} tb_fixture_t;

/* Starts a mock of `nodes` nodes on 127.0.0.1 (free ports) with extra args (NULL-terminated list). */
static inline void tb_mock_start(tb_fixture_t *f, int nodes, const char *const *extra)
{
  const char *args[64];
  size_t n = 0;
  for (int i = 0; i < nodes; i++) {
    args[n++] = "--node";
    args[n++] = "127.0.0.1:0";
  }
  args[n++] = "--quiet";
  for (size_t i = 0; extra && extra[i] && n < 62; i++) args[n++] = extra[i];
  args[n] = NULL;
  assert_int_equal(tdm_mockctl_spawn(&f->mock, args, 10000), 0);
  f->mock_up = true;
  assert_int_equal(f->mock.n_nodes, (size_t)nodes);
}

static inline uint16_t tb_node_port(tb_fixture_t *f, size_t i)
{
  char host[64];
  uint16_t port = 0;
  assert_int_equal(tdm_mockctl_node(&f->mock, i, host, sizeof(host), &port), 0);
  return port;
}

/* A configuration with both clusters' contact points at mock node `cp` plus extra YAML lines. */
static inline tdm_conf_t *tb_conf(tb_fixture_t *f, size_t cp, const char *extra_yaml)
{
  char yaml[4096];
  snprintf(yaml, sizeof(yaml),
           "origin_contact_points: 127.0.0.1:%u\ntarget_contact_points: 127.0.0.1:%u\n"
           "origin_connection_timeout_ms: 3000\ntarget_connection_timeout_ms: 3000\n%s",
           (unsigned)tb_node_port(f, cp), (unsigned)tb_node_port(f, cp), extra_yaml ? extra_yaml : "");
  tdm_conf_t *conf = NULL;
  tdm_conf_diag_t diag = { 0 };
  int rc = tdm_conf_load_buffer("test.yaml", yaml, strlen(yaml), NULL, &conf, &diag);
  if (rc) fprintf(stderr, "conf: %s\n", diag.message ? diag.message : "?");
  tdm_conf_diag_free(&diag);
  assert_int_equal(rc, 0);
  return conf;
}

static inline void tb_tick(uv_timer_t *t) { (void)t; }

static inline void tb_init(tb_fixture_t *f)
{
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(uv_timer_init(&f->loop, &f->ticker), 0);
  tdm_buf_pool_init(&f->pool, 16384, 64);
}

/* Runs the loop until cond(arg) holds or timeout_ms passes; returns cond's last value. */
static inline bool tb_run_until(tb_fixture_t *f, bool (*cond)(void *), void *arg, int timeout_ms)
{
  uint64_t end = uv_hrtime() / 1000000u + (uint64_t)timeout_ms;
  uv_timer_start(&f->ticker, tb_tick, 10, 10);
  bool ok = cond(arg);
  while (!ok && uv_hrtime() / 1000000u < end) {
    uv_run(&f->loop, UV_RUN_ONCE);
    ok = cond(arg);
  }
  uv_timer_stop(&f->ticker);
  return ok;
}

static inline bool tb_never(void *arg)
{
  (void)arg;
  return false;
}

/* Runs the loop for ms (lets timers and sockets do their work). */
static inline void tb_run_for(tb_fixture_t *f, int ms) { (void)tb_run_until(f, tb_never, NULL, ms); }

/* Closes what is left, runs the loop dry and checks that it closes with no handle left. */
static inline void tb_finish(tb_fixture_t *f)
{
  uv_close((uv_handle_t *)&f->ticker, NULL);
  for (int i = 0; i < 200 && uv_run(&f->loop, UV_RUN_NOWAIT); i++) usleep(5000);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  tdm_conf_unref(f->conf);
  f->conf = NULL;
  tdm_buf_pool_destroy(&f->pool);
  if (f->mock_up) {
    assert_int_equal(tdm_mockctl_stop(&f->mock, 5000), 0); /* non-zero when the mock leaked under ASan */
    f->mock_up = false;
  }
}

/* A snapshot of the mock's nodes as the control connection would publish it (node order kept). */
static inline tdm_topology_t *tb_topology(tb_fixture_t *f, int cluster)
{
  tdm_topology_t *t = NULL;
  assert_int_equal(tdm_topology_new(cluster, &t), 0);
  t->nodes = calloc(f->mock.n_nodes, sizeof(*t->nodes));
  assert_non_null(t->nodes);
  for (size_t i = 0; i < f->mock.n_nodes; i++) {
    tdm_node_t *n = &t->nodes[i];
    snprintf(n->host, sizeof(n->host), "127.0.0.1");
    n->port = tb_node_port(f, i);
    tdm_sockaddr_t sa;
    assert_int_equal(tdm_sockaddr_parse_ip("127.0.0.1", n->port, &sa), 0);
    memcpy(&n->addr, &sa.ss, sizeof(n->addr));
    n->addr_len = tdm_sockaddr_len(&sa);
    snprintf(n->dc, sizeof(n->dc), "dc1");
    n->local_dc = true;
  }
  t->n_nodes = f->mock.n_nodes;
  t->up = true;
  snprintf(t->cql_version, sizeof(t->cql_version), "3.4.7");
  return t;
}

/* Mock counters. */
static inline int64_t tb_count(tb_fixture_t *f, const char *filter)
{
  int64_t n = tdm_mockctl_count(&f->mock, "COUNT %s", filter);
  assert_true(n >= 0);
  return n;
}

static inline void tb_cmd(tb_fixture_t *f, const char *cmd)
{
  char reply[4096];
  int rc = tdm_mockctl_cmd(&f->mock, reply, sizeof(reply), "%s", cmd);
  if (rc) fprintf(stderr, "mock command '%s' -> %s\n", cmd, reply);
  assert_int_equal(rc, 0);
}

/* ---- log capture: lines go to a temporary file that tests read back ---- */

typedef struct tb_log_s {
  char path[64]; /* the temporary file */
  int fd;        /* its descriptor (given to the logger) */
} tb_log_t;

static inline void tb_log_begin(tb_log_t *l, tdm_log_level_t level)
{
  snprintf(l->path, sizeof(l->path), "/tmp/tdm-backend-log-XXXXXX");
  l->fd = mkstemp(l->path);
  assert_true(l->fd >= 0);
  tdm_log_options_t o = { .level = level, .format = TDM_LOG_TEXT, .use_fd = true, .fd = l->fd };
  assert_int_equal(tdm_log_start(&o), 0);
}

/* Occurrences of needle in what was logged so far. */
static inline int tb_log_count(tb_log_t *l, const char *needle)
{
  tdm_log_flush();
  FILE *fp = fopen(l->path, "r");
  assert_non_null(fp);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof(line), fp))
    if (strstr(line, needle)) n++;
  fclose(fp);
  return n;
}

static inline void tb_log_end(tb_log_t *l)
{
  tdm_log_stop();
  tdm_log_set_level(TDM_LOG_INFO);
  close(l->fd);
  unlink(l->path);
}

#endif
