/* core/instance in-process, with fake data and control planes plugged in (core/instance.h): readiness
 * STARTUP -> UP only when both control connections came up (listeners opened on every worker exactly
 * then, not before), DOWN at the failure threshold and back, topology published to every worker and
 * shown per node in /metrics and /api/v1/status (aggregated by STATS_REQ), reload with a restart-class
 * key kept, a rejected reload, the schema-agreement hold across threads (and its cancel), a listener
 * that fails to open, drain completion and the second stop request.
 *
 * Each test drives the instance from a repeating timer on its own loop: `steps` run in order, each
 * returning true when it is done; HTTP checks run on a helper thread so the main loop keeps serving. */
#include <pthread.h>
#include <stdatomic.h>
#include <testlib.h>
#include <tandem/core/instance.h>
#include <tandem/core/worker.h>
#include "../../integration/test_instance_harness.h"

/* ---- fakes ---- */

typedef struct fake_s {
  tdm_control_callbacks_t cb;               /* what the instance gave control_new */
  int controls_new, controls_started, controls_closed, control_confs; /* main loop only */
  atomic_int fe_start, fe_drain, fe_stop, be_new, be_close, be_conf, be_topo, route_close, events;
  atomic_int holds_done, holds_agreed, holds_waited;
  bool fail_listen;                         /* frontend_start fails */
  bool drain_keeps_clients;                 /* frontend_drain leaves the client gauge at 1 */
  bool test_holds;                          /* frontend_start exercises the schema hook */
  const tdm_route_schema_hook_t *hooks[8];  /* per worker, set on the worker thread at init */
} fake_t;

static fake_t fake;
static char fake_ctl[2];

static int f_fe_start(tdm_proxy_worker_t *pw);
static void f_fe_drain(tdm_proxy_worker_t *pw)
{
  atomic_fetch_add(&fake.fe_drain, 1);
  if (!fake.drain_keeps_clients)
    pw->stats.client_connections = 0;
}
static void f_fe_stop(tdm_proxy_worker_t *pw) { atomic_fetch_add(&fake.fe_stop, 1); }
static void f_fe_event(tdm_proxy_worker_t *pw, const char *type, const uint8_t *body, size_t len)
{
  atomic_fetch_add(&fake.events, 1);
}
static int f_be_new(void *loop, tdm_buf_pool_t *pool, tdm_backend_t **out)
{
  atomic_fetch_add(&fake.be_new, 1);
  *out = malloc(8);
  return *out ? 0 : TDM_ENOMEM;
}
static void f_be_close(tdm_backend_t *be)
{
  atomic_fetch_add(&fake.be_close, 1);
  free(be);
}
static void f_be_conf(tdm_backend_t *be, tdm_conf_t *conf) { atomic_fetch_add(&fake.be_conf, 1); }
static void f_be_topo(tdm_backend_t *be, tdm_topology_t *t) { atomic_fetch_add(&fake.be_topo, 1); }
static void f_be_stats(const tdm_backend_t *be, int cluster, size_t node, tdm_backend_node_stats_t *out)
{
  out->connections = 2 + (uint32_t)node;
  out->inflight = 1;
  out->stream_ids = 3;
}
static uint64_t f_be_late(const tdm_backend_t *be, int cluster) { return cluster == 0 ? 5 : 0; }
static void f_route_hook(tdm_proxy_worker_t *pw, const tdm_route_schema_hook_t *hook)
{
  if (hook)
    fake.hooks[pw->index] = hook;
}
static void f_route_close(tdm_proxy_worker_t *pw) { atomic_fetch_add(&fake.route_close, 1); }
static int f_ctl_new(void *loop, int cluster, tdm_conf_t *conf, const tdm_control_callbacks_t *cb, tdm_control_t **out)
{
  fake.cb = *cb;
  fake.controls_new++;
  *out = (tdm_control_t *)&fake_ctl[cluster];
  return 0;
}
static void f_ctl_start(tdm_control_t *c) { fake.controls_started++; }
static void f_ctl_conf(tdm_control_t *c, tdm_conf_t *conf) { fake.control_confs++; }
static void f_ctl_close(tdm_control_t *c) { fake.controls_closed++; }
/* ORIGIN agrees, TARGET does not: the hold must report "not agreed". */
static void f_ctl_schema(tdm_control_t *c, int wait_ms, void (*cb)(void *arg, bool agreed), void *arg)
{
  atomic_fetch_add(&fake.holds_waited, 1);
  cb(arg, c == (tdm_control_t *)&fake_ctl[0]);
}

static const tdm_instance_plug_t full_plug = {
  .frontend_start = f_fe_start,
  .frontend_drain = f_fe_drain,
  .frontend_stop = f_fe_stop,
  .frontend_broadcast_event = f_fe_event,
  .backend_new = f_be_new,
  .backend_close = f_be_close,
  .backend_set_conf = f_be_conf,
  .backend_set_topology = f_be_topo,
  .backend_node_stats = f_be_stats,
  .backend_late_responses = f_be_late,
  .route_set_schema_hook = f_route_hook,
  .route_worker_close = f_route_close,
  .control_new = f_ctl_new,
  .control_start = f_ctl_start,
  .control_set_conf = f_ctl_conf,
  .control_close = f_ctl_close,
  .control_wait_schema_agreement = f_ctl_schema,
};

static void hold_done(void *req, bool agreed)
{
  assert_non_null(tdm_worker_current()); /* answered on the worker thread */
  atomic_fetch_add(&fake.holds_done, 1);
  if (agreed)
    atomic_fetch_add(&fake.holds_agreed, 1);
}

static int f_fe_start(tdm_proxy_worker_t *pw)
{
  atomic_fetch_add(&fake.fe_start, 1);
  assert_non_null(tdm_worker_current());
  if (fake.fail_listen)
    return UV_EADDRINUSE;
  pw->stats.client_connections = 1;
  pw->stats.client_versions[2] = 1; /* v4 */
  if (fake.test_holds) {
    const tdm_route_schema_hook_t *h = fake.hooks[pw->index];
    assert_non_null(h);
    static char req1, req2;
    h->wait(h->arg, 500, hold_done, &req1);
    h->wait(h->arg, 500, hold_done, &req2);
    h->cancel(h->arg, &req2); /* its answer must never be delivered */
  }
  return 0;
}

/* ---- the step driver ---- */

typedef struct run_s run_t;
typedef bool (*step_fn)(run_t *r);

struct run_s {
  tdm_instance_t *inst;   /* instance under test */
  uv_timer_t timer;       /* drives the steps */
  const step_fn *steps;   /* NULL-terminated */
  size_t at;              /* current step */
  uint64_t step_started;  /* when the current step began (ms) */
  char dir[256];          /* temp dir */
  char conf_path[300];    /* configuration file */
  /* HTTP on a helper thread */
  pthread_t thread;       /* the helper */
  atomic_bool http_done;  /* the helper finished */
  bool http_running;      /* a helper was started */
  uint16_t http_port;     /* where */
  const char *http_path;  /* what */
  const char *http_method; /* how */
  tdm_it_http_t http;     /* the answer */
};

static void *http_thread(void *arg)
{
  run_t *r = arg;
  tdm_it_http(r->http_port, r->http_method, r->http_path, NULL, &r->http);
  atomic_store(&r->http_done, true);
  return NULL;
}

static void http_start(run_t *r, uint16_t port, const char *method, const char *path)
{
  tdm_it_http_free(&r->http);
  r->http_port = port;
  r->http_method = method;
  r->http_path = path;
  atomic_store(&r->http_done, false);
  r->http_running = true;
  assert_int_equal(pthread_create(&r->thread, NULL, http_thread, r), 0);
}

static bool http_finished(run_t *r)
{
  if (!atomic_load(&r->http_done))
    return false;
  pthread_join(r->thread, NULL);
  r->http_running = false;
  return true;
}

static void on_tick(uv_timer_t *t)
{
  run_t *r = t->data;
  if (!r->steps[r->at]) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    return;
  }
  if (tdm_it_now_ms() - r->step_started > 8000)
    fail_msg("step %zu did not finish within 8 s", r->at);
  if (r->steps[r->at](r)) {
    r->at++;
    r->step_started = tdm_it_now_ms();
  }
}

static void setup_run(run_t *r, const char *yaml, const tdm_instance_plug_t *plug)
{
  memset(r, 0, sizeof(*r));
  tdm_it_tmpdir(r->dir, sizeof(r->dir), "instance");
  snprintf(r->conf_path, sizeof(r->conf_path), "%s/tandem.yaml", r->dir);
  tdm_it_write_file(r->conf_path, yaml);
  char *env[] = { NULL };
  tdm_instance_options_t o = { .config_path = r->conf_path, .envp = env, .plug = plug, .no_signals = true };
  tdm_conf_diag_t d = { 0 };
  int rc = tdm_instance_new(&o, &r->inst, &d);
  if (rc)
    fail_msg("tdm_instance_new: %s", d.message ? d.message : tdm_strerror(rc));
  tdm_conf_diag_free(&d);
}

static int run_steps(run_t *r, const step_fn *steps)
{
  r->steps = steps;
  r->step_started = tdm_it_now_ms();
  uv_timer_init(tdm_instance_loop(r->inst), &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_tick, 5, 10);
  return tdm_instance_run(r->inst);
}

static void teardown_run(run_t *r)
{
  if (r->http_running)
    pthread_join(r->thread, NULL);
  tdm_it_http_free(&r->http);
  tdm_instance_free(r->inst);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
  assert_int_equal(system(cmd), 0);
}

#define YAML_BASE                                                                                         \
  "origin_contact_points: 127.0.0.1:1\ntarget_contact_points: 127.0.0.1:2\nworkers: 2\nmetrics_port: 0\n"    \
  "admin_port: 0\nheartbeat_failure_threshold: 1\nlog_level: WARN\n"

/* ---- startup, readiness, topology, metrics, drain ---- */

static bool s_startup(run_t *r)
{
  assert_int_equal(tdm_instance_workers(r->inst), 2);
  assert_int_equal(fake.controls_new, 2);
  assert_int_equal(fake.controls_started, 2);
  assert_int_equal(atomic_load(&fake.be_new), 2);
  assert_int_equal(tdm_instance_readiness(r->inst), TDM_HEALTH_STARTUP);
  assert_false(tdm_instance_listening(r->inst));
  fake.cb.on_health(fake.cb.arg, TDM_CONF_ORIGIN, true, 0, NULL);
  return true;
}

static bool s_one_up(run_t *r)
{
  assert_int_equal(tdm_instance_readiness(r->inst), TDM_HEALTH_STARTUP);
  assert_false(tdm_instance_listening(r->inst));
  assert_int_equal(atomic_load(&fake.fe_start), 0); /* no listener before both clusters are up */
  http_start(r, tdm_instance_metrics_port(r->inst), "GET", "/health/readiness");
  return true;
}

static bool s_check_startup_http(run_t *r)
{
  if (!http_finished(r))
    return false;
  assert_int_equal(r->http.status, 503);
  assert_non_null(strstr(r->http.body, "\"OriginStatus\":null,\"TargetStatus\":null,\"Status\":\"STARTUP\""));
  fake.cb.on_health(fake.cb.arg, TDM_CONF_TARGET, true, 0, NULL);
  return true;
}

static bool s_listening(run_t *r)
{
  if (atomic_load(&fake.fe_start) < 2)
    return false;
  assert_int_equal(atomic_load(&fake.fe_start), 2);
  assert_true(tdm_instance_listening(r->inst));
  assert_int_equal(tdm_instance_readiness(r->inst), TDM_HEALTH_UP);
  tdm_topology_t *t;
  assert_int_equal(tdm_topology_new(TDM_CONF_ORIGIN, &t), 0);
  t->up = true;
  t->n_nodes = 2;
  t->nodes = calloc(2, sizeof(tdm_node_t));
  snprintf(t->nodes[0].host, sizeof(t->nodes[0].host), "10.9.9.1");
  t->nodes[0].port = 9042;
  snprintf(t->nodes[0].dc, sizeof(t->nodes[0].dc), "dc1");
  snprintf(t->nodes[1].host, sizeof(t->nodes[1].host), "::1");
  t->nodes[1].port = 9043;
  t->nodes[1].state = TDM_NODE_DOWN;
  fake.cb.on_topology(fake.cb.arg, TDM_CONF_ORIGIN, t);
  tdm_topology_unref(t); /* the instance took its own references */
  return true;
}

static bool s_topology_published(run_t *r)
{
  if (atomic_load(&fake.be_topo) < 2)
    return false;
  http_start(r, tdm_instance_metrics_port(r->inst), "GET", "/metrics");
  return true;
}

static bool s_check_metrics(run_t *r)
{
  if (!http_finished(r))
    return false;
  assert_int_equal(r->http.status, 200);
  assert_non_null(strstr(r->http.headers, "text/plain; version=0.0.4"));
  const char *b = r->http.body;
  /* Two workers, each reporting 2 + index connections per node. */
  assert_non_null(strstr(b, "\ntandem_origin_connections_total{node=\"10.9.9.1:9042\"} 4\n"));
  assert_non_null(strstr(b, "\ntandem_origin_connections_total{node=\"[::1]:9043\"} 6\n"));
  assert_non_null(strstr(b, "\ntandem_origin_used_stream_ids_total{node=\"10.9.9.1:9042\"} 6\n"));
  assert_non_null(strstr(b, "\ntandem_client_connections_total 2\n"));
  assert_non_null(strstr(b, "\ntandem_client_connections_by_version{version=\"v4\"} 2\n"));
  assert_non_null(strstr(b, "\ntandem_proxy_late_responses_total{cluster=\"origin\"} 10\n"));
  assert_non_null(strstr(b, "\ntandem_config_epoch 1\n"));
  assert_non_null(strstr(b, "\nprocess_open_fds "));
  http_start(r, tdm_instance_metrics_port(r->inst), "GET", "/api/v1/status");
  return true;
}

static bool s_check_status(run_t *r)
{
  if (!http_finished(r))
    return false;
  assert_int_equal(r->http.status, 200);
  const char *b = r->http.body;
  assert_non_null(strstr(b, "\"readiness\":\"UP\""));
  assert_non_null(strstr(b, "\"nodes\":[{\"node\":\"10.9.9.1:9042\",\"dc\":\"dc1\",\"state\":\"UP\",\"connections\":4,"
                            "\"in_flight\":2},{\"node\":\"[::1]:9043\",\"dc\":\"\",\"state\":\"DOWN\",\"connections\":6,"
                            "\"in_flight\":2}]"));
  assert_non_null(strstr(b, "\"clients\":{\"total\":2,\"by_version\":{\"v4\":2},\"by_worker\":[{\"worker\":0,"
                            "\"connections\":1,\"by_version\":{\"v4\":1}},{\"worker\":1,\"connections\":1,"));
  /* A failing TARGET control connection: DOWN at the threshold (1), UP again when it recovers. */
  fake.cb.on_health(fake.cb.arg, TDM_CONF_TARGET, false, 1, "connection refused");
  assert_int_equal(tdm_instance_readiness(r->inst), TDM_HEALTH_DOWN);
  fake.cb.on_health(fake.cb.arg, TDM_CONF_TARGET, true, 0, NULL);
  assert_int_equal(tdm_instance_readiness(r->inst), TDM_HEALTH_UP);
  /* SCHEMA_CHANGE from TARGET is dropped, from ORIGIN it goes to every worker. */
  static const uint8_t body[] = { 0, 13, 'S', 'C', 'H', 'E', 'M', 'A', '_', 'C', 'H', 'A', 'N', 'G', 'E' };
  fake.cb.on_schema_event(fake.cb.arg, TDM_CONF_TARGET, body, sizeof(body), 4);
  fake.cb.on_schema_event(fake.cb.arg, TDM_CONF_ORIGIN, body, sizeof(body), 4);
  return true;
}

static bool s_events_then_drain(run_t *r)
{
  if (atomic_load(&fake.events) < 2)
    return false;
  assert_int_equal(atomic_load(&fake.events), 2);
  tdm_instance_shutdown(r->inst);
  assert_int_equal(tdm_instance_readiness(r->inst), TDM_HEALTH_DOWN);
  return true;
}

static const step_fn startup_steps[] = {
  s_startup, s_one_up, s_check_startup_http, s_listening, s_topology_published, s_check_metrics, s_check_status,
  s_events_then_drain, NULL,
};

static void test_startup_readiness_drain(void **state)
{
  memset(&fake, 0, sizeof(fake));
  run_t r;
  setup_run(&r, YAML_BASE, &full_plug);
  uint64_t t0 = tdm_it_now_ms();
  assert_int_equal(run_steps(&r, startup_steps), 0);
  assert_true(tdm_it_now_ms() - t0 < 8000); /* the drain ended as soon as no client was left */
  assert_int_equal(atomic_load(&fake.fe_drain), 2);
  assert_int_equal(atomic_load(&fake.fe_stop), 2);
  assert_int_equal(atomic_load(&fake.route_close), 2);
  assert_int_equal(atomic_load(&fake.be_close), 2);
  assert_int_equal(fake.controls_closed, 2);
  teardown_run(&r);
}

/* ---- reload ---- */

static bool s_reload_1(run_t *r)
{
  assert_int_equal(tdm_instance_epoch(r->inst), 1);
  /* `workers` twice (line 1 and in YAML_BASE): a duplicate key, so the reload is rejected. */
  tdm_it_write_file(r->conf_path, "workers: 3\n" YAML_BASE "primary_cluster: TARGET\n");
  tdm_instance_reload(r->inst);
  return true;
}

static bool s_reload_3(run_t *r)
{
  uint64_t applied, rejected;
  tdm_instance_reload_counts(r->inst, &applied, &rejected);
  if (rejected == 0)
    return false;
  assert_int_equal(applied, 0);
  assert_int_equal(tdm_instance_epoch(r->inst), 1);
  tdm_it_write_file(r->conf_path, "origin_contact_points: 127.0.0.1:1\ntarget_contact_points: 127.0.0.1:2\n"
                                  "workers: 3\nmetrics_port: 0\nadmin_port: 0\nlog_level: WARN\n"
                                  "primary_cluster: TARGET\nproxy_request_timeout_ms: 5000\nproxy_listen_port: 14555\n");
  tdm_instance_reload(r->inst);
  tdm_instance_reload(r->inst); /* joins the scheduled one */
  return true;
}

static bool s_reload_4(run_t *r)
{
  uint64_t applied, rejected;
  tdm_instance_reload_counts(r->inst, &applied, &rejected);
  if (applied == 0)
    return false;
  assert_int_equal(applied, 1);
  assert_int_equal(rejected, 1);
  const tdm_conf_t *c = tdm_instance_conf(r->inst);
  assert_int_equal(c->epoch, 2);
  assert_int_equal(c->primary_cluster, TDM_CONF_TARGET);      /* live: applied */
  assert_int_equal(c->proxy_request_timeout_ms, 5000);       /* live: applied */
  assert_int_equal(c->workers, 2);                           /* restart: kept */
  assert_int_equal(c->proxy_listen_port, 14002);             /* restart: kept */
  assert_int_equal(fake.control_confs, 2);
  http_start(r, tdm_instance_metrics_port(r->inst), "GET", "/api/v1/status");
  return true;
}

static bool s_reload_5(run_t *r)
{
  if (!http_finished(r))
    return false;
  assert_int_equal(r->http.status, 200);
  assert_non_null(strstr(r->http.body, "\"epoch\":2,"));
  assert_non_null(strstr(r->http.body, "\"primary_cluster\":\"TARGET\""));
  assert_non_null(strstr(r->http.body, "\"pending_restart\":[\"proxy_listen_port\",\"workers\"]"));
  assert_non_null(strstr(r->http.body, "\"result\":\"applied\",\"error\":null}"));
  /* Each worker got the new epoch (backend_set_conf: once at init, once for epoch 2). */
  if (atomic_load(&fake.be_conf) < 4)
    return false;
  tdm_instance_shutdown(r->inst);
  return true;
}

static const step_fn reload_steps[] = { s_reload_1, s_reload_3, s_reload_4, s_reload_5, NULL };

static void test_reload(void **state)
{
  memset(&fake, 0, sizeof(fake));
  run_t r;
  setup_run(&r, YAML_BASE, &full_plug);
  assert_int_equal(run_steps(&r, reload_steps), 0);
  teardown_run(&r);
}

/* ---- schema holds ---- */

static bool s_holds_up(run_t *r)
{
  fake.cb.on_health(fake.cb.arg, TDM_CONF_ORIGIN, true, 0, NULL);
  fake.cb.on_health(fake.cb.arg, TDM_CONF_TARGET, true, 0, NULL);
  return true;
}

static bool s_holds_done(run_t *r)
{
  /* Two workers, two holds each: one cancelled. Each live hold asked both clusters. */
  if (atomic_load(&fake.holds_waited) < 8 || atomic_load(&fake.holds_done) < 2)
    return false;
  return true;
}

static bool s_holds_settle(run_t *r)
{
  if (tdm_it_now_ms() - r->step_started < 100)
    return false; /* give a wrongly delivered cancelled hold the time to show up */
  assert_int_equal(atomic_load(&fake.holds_done), 2);
  assert_int_equal(atomic_load(&fake.holds_agreed), 0); /* TARGET did not agree */
  tdm_instance_shutdown(r->inst);
  return true;
}

static const step_fn hold_steps[] = { s_holds_up, s_holds_done, s_holds_settle, NULL };

static void test_schema_holds(void **state)
{
  memset(&fake, 0, sizeof(fake));
  fake.test_holds = true;
  run_t r;
  setup_run(&r, YAML_BASE, &full_plug);
  assert_int_equal(run_steps(&r, hold_steps), 0);
  teardown_run(&r);
}

/* ---- failures and stop ---- */

static bool s_wait_forever(run_t *r)
{
  return false; /* the instance ends by itself; the timer is closed with the loop's last handles */
}

static void close_timer_cb(uv_handle_t *h) {}

static void test_listener_failure(void **state)
{
  memset(&fake, 0, sizeof(fake));
  fake.fail_listen = true;
  run_t r;
  setup_run(&r, YAML_BASE, &full_plug);
  static const step_fn steps[] = { s_holds_up, s_wait_forever, NULL };
  r.steps = steps;
  r.step_started = tdm_it_now_ms();
  uv_timer_init(tdm_instance_loop(r.inst), &r.timer);
  r.timer.data = &r;
  uv_timer_start(&r.timer, on_tick, 5, 10);
  uv_unref((uv_handle_t *)&r.timer); /* must not keep the loop alive once the instance closed */
  int rc = tdm_instance_run(r.inst);
  assert_int_equal(rc, UV_EADDRINUSE);
  assert_int_equal(atomic_load(&fake.fe_start), 2);
  assert_int_equal(atomic_load(&fake.fe_stop), 4); /* after each failed start, and at the workers' stop */
  uv_close((uv_handle_t *)&r.timer, close_timer_cb);
  teardown_run(&r);
}

static bool s_drain_hangs(run_t *r)
{
  tdm_instance_shutdown(r->inst);
  return true;
}

static bool s_second_stop(run_t *r)
{
  if (atomic_load(&fake.fe_drain) < 2 || tdm_it_now_ms() - r->step_started < 200)
    return false; /* the drain is waiting for the client that never closes */
  tdm_instance_shutdown(r->inst);
  return true;
}

static void test_second_stop(void **state)
{
  memset(&fake, 0, sizeof(fake));
  fake.drain_keeps_clients = true;
  run_t r;
  setup_run(&r, YAML_BASE, &full_plug);
  static const step_fn steps[] = { s_holds_up, s_listening, s_drain_hangs, s_second_stop, NULL };
  uint64_t t0 = tdm_it_now_ms();
  assert_int_equal(run_steps(&r, steps), 0);
  assert_true(tdm_it_now_ms() - t0 < 5000); /* far below shutdown_drain_timeout_ms (15 s) */
  assert_int_equal(atomic_load(&fake.fe_stop), 2);
  teardown_run(&r);
}

static bool s_no_control(run_t *r)
{
  if (tdm_it_now_ms() - r->step_started < 100)
    return false;
  assert_int_equal(tdm_instance_readiness(r->inst), TDM_HEALTH_STARTUP);
  assert_false(tdm_instance_listening(r->inst));
  tdm_instance_shutdown(r->inst); /* nothing to drain: stops at once */
  return true;
}

static void test_without_planes(void **state)
{
  run_t r;
  setup_run(&r, YAML_BASE, NULL);
  static const step_fn steps[] = { s_no_control, NULL };
  assert_int_equal(run_steps(&r, steps), 0);
  teardown_run(&r);
}

static void test_invalid_config(void **state)
{
  char dir[256], path[300];
  tdm_it_tmpdir(dir, sizeof(dir), "instance-bad");
  snprintf(path, sizeof(path), "%s/bad.yaml", dir);
  tdm_it_write_file(path, "origin_contact_points: 127.0.0.1\ntarget_contact_points: 127.0.0.1\nworkerz: 2\n");
  char *env[] = { NULL };
  tdm_instance_options_t o = { .config_path = path, .envp = env, .no_signals = true };
  tdm_conf_diag_t d = { 0 };
  tdm_instance_t *inst = (tdm_instance_t *)1;
  assert_int_equal(tdm_instance_new(&o, &inst, &d), TDM_ECONF);
  assert_null(inst);
  assert_non_null(strstr(d.message, "workerz"));
  assert_non_null(strstr(d.message, "workers")); /* the suggestion */
  tdm_conf_diag_free(&d);
  unlink(path);
  rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_startup_readiness_drain),
    cmocka_unit_test(test_reload),
    cmocka_unit_test(test_schema_holds),
    cmocka_unit_test(test_listener_failure),
    cmocka_unit_test(test_second_stop),
    cmocka_unit_test(test_without_planes),
    cmocka_unit_test(test_invalid_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
