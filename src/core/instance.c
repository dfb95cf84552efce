/* The instance's lifetime and start-up (core/instance.h). Start-up order:
 *
 *   new:  environment snapshot -> configuration (file + env) -> logger -> warnings and the three
 *         deliberate zdm-proxy differences logged
 *   run:  main loop, inbox, timers, signals -> prepared registry -> TLS contexts (a file that cannot
 *         be used ends the start) -> HTTP listeners (metrics, admin) -> worker threads (each: buffer
 *         pool, backend, epoch reference, copy of the TLS contexts) -> both control connections
 *         -> uv_run. Readiness is STARTUP meanwhile.
 *   both control connections up once -> every worker opens its client listener (broadcast with
 *         replies) -> systemd READY=1. A listener that fails to open ends the process (exit 1).
 *
 * The control connections retry with backoff on their own (backend/control.c) until they come up or
 * the instance closes them at shutdown. */
#include <unistd.h>
#include <tandem/obs/log.h>
#include <tandem/obs/notify.h>
#include <tandem/version.h>
#include "instance_internal.h"

static const char *const cluster_name[2] = { "ORIGIN", "TARGET" };

/* ---- configuration and logger ---- */

static char **copy_env(char *const *envp)
{
  size_t n = 0;
  while (envp && envp[n])
    n++;
  char **copy = calloc(n + 1, sizeof(*copy));
  if (!copy)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(envp[i]);
    if (!(copy[i] = malloc(len + 1))) {
      for (size_t j = 0; j < i; j++)
        free(copy[j]);
      free(copy);
      return NULL;
    }
    memcpy(copy[i], envp[i], len + 1);
  }
  return copy;
}

void tdm__instance_apply_log(const tdm_conf_t *conf)
{
  static const tdm_log_level_t levels[] = {
    [TDM_CONF_LOG_PANIC] = TDM_LOG_PANIC, [TDM_CONF_LOG_FATAL] = TDM_LOG_FATAL, [TDM_CONF_LOG_ERROR] = TDM_LOG_ERROR,
    [TDM_CONF_LOG_WARN] = TDM_LOG_WARN,   [TDM_CONF_LOG_INFO] = TDM_LOG_INFO,   [TDM_CONF_LOG_DEBUG] = TDM_LOG_DEBUG,
    [TDM_CONF_LOG_TRACE] = TDM_LOG_TRACE,
  };
  tdm_log_set_level(levels[conf->log_level]);
  tdm_log_set_format(conf->log_format == TDM_CONF_LOG_JSON ? TDM_LOG_JSON : TDM_LOG_TEXT);
}

/* The three deliberate differences from zdm-proxy (behaviour.md §0), by name, at every start. */
static void log_differences(const tdm_conf_t *conf)
{
  tdm_log_info(NULL, "zdm-proxy difference 1/3 (metrics_prefix): series are named %s_* (zdm-proxy: zdm_*); "
                     "set metrics_prefix: zdm to keep zdm-proxy dashboards", conf->metrics_prefix);
  tdm_log_info(NULL, "zdm-proxy difference 2/3 (cluster TLS): node certificates are checked against the host "
                     "name (ORIGIN %s, TARGET %s); zdm-proxy did not check names",
               conf->cluster[0].tls_verify_hostname ? "on" : "off", conf->cluster[1].tls_verify_hostname ? "on" : "off");
  tdm_log_info(NULL, "zdm-proxy difference 3/3 (unsupported features): secure connect bundles and "
                     "replace_cql_functions: true are refused instead of being accepted");
}

int tdm_instance_new(const tdm_instance_options_t *opts, tdm_instance_t **out, tdm_conf_diag_t *diag)
{
  *out = NULL;
  tdm_instance_t *inst = calloc(1, sizeof(*inst));
  if (!inst)
    return TDM_ENOMEM;
  static const tdm_instance_plug_t none;
  inst->plug = opts->plug ? *opts->plug : none;
  inst->has_frontend = inst->plug.frontend_start && inst->plug.frontend_drain && inst->plug.frontend_stop &&
                       inst->plug.frontend_broadcast_event;
  inst->has_backend = inst->plug.backend_new && inst->plug.backend_close && inst->plug.backend_set_conf &&
                      inst->plug.backend_set_topology && inst->plug.backend_node_stats;
  inst->has_control = inst->plug.control_new && inst->plug.control_start && inst->plug.control_set_conf &&
                      inst->plug.control_close;
  inst->keep_logger = opts->keep_logger;
  inst->no_signals = opts->no_signals;
  tdm_list_init(&inst->reload_next);
  tdm_list_init(&inst->reload_cur);
  tdm_list_init(&inst->stats_waiters);
  inst->envp = copy_env(opts->envp);
  int rc = TDM_ENOMEM;
  if (!inst->envp)
    goto fail;
  if (opts->config_path) {
    size_t n = strlen(opts->config_path);
    if (!(inst->config_path = malloc(n + 1)))
      goto fail;
    memcpy(inst->config_path, opts->config_path, n + 1);
  }
  tdm_conf_diag_t local = { 0 };
  tdm_conf_diag_t *d = diag ? diag : &local;
  rc = tdm_conf_load(inst->config_path, inst->envp, &inst->conf, d);
  if (rc) {
    tdm_conf_diag_free(&local);
    goto fail;
  }
  inst->conf->epoch = 1;
  if (!inst->keep_logger) {
    tdm_log_options_t lo = { .level = TDM_LOG_INFO, .file = inst->conf->log_file };
    if ((rc = tdm_log_start(&lo)) < 0) {
      fprintf(stderr, "tandem: cannot start logging to '%s': %s\n", inst->conf->log_file, tdm_strerror(rc));
      tdm_conf_diag_free(&local);
      goto fail;
    }
    inst->logger_on = true;
  }
  tdm__instance_apply_log(inst->conf);
  tdm_log_info(NULL, "tandem %s starting (configuration %s, epoch 1)", TDM_VERSION,
               inst->config_path ? inst->config_path : "from the environment only");
  for (size_t i = 0; i < d->nwarnings; i++)
    tdm_log_warn(NULL, "configuration: %s", d->warnings[i]);
  log_differences(inst->conf);
  tdm_conf_diag_free(&local);
  /* The loop exists from here on, so a caller (tests) may put its own handles on it before run. */
  if ((rc = uv_loop_init(&inst->loop)) < 0)
    goto fail;
  inst->loop_inited = true;
  *out = inst;
  return 0;
fail:
  tdm_instance_free(inst);
  return rc;
}

/* ---- control connection callbacks ---- */

static void set_addr(tdm_instance_t *inst, int c)
{
  tdm_health_cluster_t *hc = &inst->health.cluster[c];
  const tdm_topology_t *t = inst->topology[c];
  hc->addr[0] = '\0';
  if (t && t->up && t->n_nodes > 0)
    tdm__instance_node_name(&t->nodes[0], hc->addr, sizeof(hc->addr));
}

static void on_topology(void *arg, int cluster, tdm_topology_t *topology)
{
  tdm_instance_t *inst = arg;
  if (inst->closing || cluster < 0 || cluster > 1 || !topology)
    return;
  tdm_topology_t *old = inst->topology[cluster];
  inst->topology[cluster] = tdm_topology_ref(topology);
  tdm_topology_unref(old);
  set_addr(inst, cluster);
  tdm__instance_publish_topology(inst, cluster, topology);
}

static void listeners_opened(tdm_instance_t *inst, void *arg, int result)
{
  if (result < 0) {
    tdm_log_fatal(NULL, "cannot open the client listener on %s:%d: %s", inst->conf->proxy_listen_address,
                  inst->conf->proxy_listen_port, tdm_strerror(result));
    tdm__instance_finish(inst, result);
    return;
  }
  int port = inst->conf->proxy_listen_port;
  if (inst->nstarted && inst->workers[0].client_port) /* written by worker 0 before its reply */
    port = inst->workers[0].client_port;
  tdm_log_info(NULL, "accepting clients on %s:%d (%u workers)", inst->conf->proxy_listen_address, port,
               inst->nstarted);
  if (!inst->ready_notified && !inst->draining) {
    inst->ready_notified = true;
    tdm_notify_ready("accepting clients");
  }
}

/* Worker thread. */
static void open_listener(tdm_proxy_worker_t *pw, void *arg, int *result)
{
  tdm__wslot_t *slot = TDM_CONTAINER_OF(pw, tdm__wslot_t, pw);
  if (slot->frontend_on || pw->draining)
    return;
  int rc = pw->instance->plug.frontend_start(pw);
  if (rc < 0) {
    *result = rc;
    pw->instance->plug.frontend_stop(pw); /* frees what the failed start built (client.h) */
  } else {
    slot->frontend_on = true;
    if (pw->instance->plug.frontend_port)
      slot->client_port = pw->instance->plug.frontend_port(pw);
  }
}

/* Both control connections have been up once: open the client listeners (§13.2). */
static void first_up(tdm_instance_t *inst)
{
  inst->ever_ready = true;
  tdm_log_info(NULL, "both clusters reached: readiness %s",
               tdm_health_status_name(tdm_instance_readiness(inst)));
  if (inst->draining || inst->listen_requested)
    return;
  inst->listen_requested = true;
  if (!inst->has_frontend) {
    tdm_log_warn(NULL, "no frontend linked into this build: no client listener opens");
    if (!inst->ready_notified) {
      inst->ready_notified = true;
      tdm_notify_ready("no client listener");
    }
    return;
  }
  if (tdm__instance_broadcast(inst, open_listener, NULL, listeners_opened) < 0) {
    tdm_log_fatal(NULL, "out of memory opening the client listeners");
    tdm__instance_finish(inst, TDM_ENOMEM);
  }
}

static void on_health(void *arg, int cluster, bool up, int failures, const char *last_error)
{
  tdm_instance_t *inst = arg;
  if (inst->closing || cluster < 0 || cluster > 1)
    return;
  tdm_health_cluster_t *hc = &inst->health.cluster[cluster];
  int threshold = inst->conf->heartbeat_failure_threshold;
  bool was_down = hc->ever_up && hc->failures >= threshold;
  if (up && !hc->ever_up)
    tdm_log_info(NULL, "%s control connection is up", cluster_name[cluster]);
  hc->ever_up = hc->ever_up || up;
  hc->failures = failures < 0 ? 0 : failures;
  if (up)
    set_addr(inst, cluster);
  else
    hc->addr[0] = '\0';
  free(inst->control_error[cluster]);
  inst->control_error[cluster] = NULL;
  if (last_error) {
    size_t n = strlen(last_error);
    if ((inst->control_error[cluster] = malloc(n + 1)) != NULL)
      memcpy(inst->control_error[cluster], last_error, n + 1);
  }
  bool is_down = hc->ever_up && hc->failures >= threshold;
  if (is_down && !was_down)
    tdm_log_warn(NULL, "%s control connection: %d consecutive failures (threshold %d): readiness DOWN%s%s",
                 cluster_name[cluster], hc->failures, threshold, last_error ? ": " : "", last_error ? last_error : "");
  else if (was_down && !is_down)
    tdm_log_info(NULL, "%s control connection recovered", cluster_name[cluster]);
  if (!inst->ever_ready && inst->health.cluster[0].ever_up && inst->health.cluster[1].ever_up)
    first_up(inst);
}

/* ---- TLS ---- */

static void describe_cluster_tls(const tdm_conf_backend_t *b, const tdm_tls_ctx_t *ctx, char *out, size_t cap)
{
  if (!ctx) {
    snprintf(out, cap, "off");
    return;
  }
  const char *name = b->tls_server_name && b->tls_server_name[0] ? b->tls_server_name : NULL;
  snprintf(out, cap, "on (%s%s%s%s%s)", ctx->cert_path[0] ? "mutual, " : "",
           b->tls_verify_hostname ? "names checked" : "names NOT checked", name ? ", name '" : "", name ? name : "",
           name ? "'" : "");
}

void tdm__instance_log_tls(const tdm_conf_t *conf, const tdm_tls_set_t *tls)
{
  char legs[TDM_CONF_CLUSTER_MAX][320];
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++)
    describe_cluster_tls(&conf->cluster[c], tls->cluster[c], legs[c], sizeof(legs[c]));
  const char *clients = !tls->client                      ? "off"
                        : tls->client->require_client_auth ? "on (client certificates required)"
                        : tls->allow_plaintext            ? "on (plaintext also accepted)"
                                                          : "on";
  tdm_log_info(NULL, "TLS: clients %s; ORIGIN %s; TARGET %s", clients, legs[0], legs[1]);
}

/* The first epoch's TLS contexts (behaviour.md §11.4); a file that cannot be used stops the start with
 * the module's message (which names the leg, the file and the cause). The WARN for
 * {c}_tls_verify_hostname: false comes from the configuration's own warnings (logged above, at every
 * start and reload). */
static int start_tls(tdm_instance_t *inst)
{
  char err[TDM_TLS_ERR_MAX];
  int rc = tdm_tls_reload(&inst->tls, inst->conf, err, sizeof(err));
  if (rc < 0) {
    tdm_log_fatal(NULL, "%s", err[0] ? err : tdm_strerror(rc));
    return rc;
  }
  if (inst->tls.client || inst->tls.cluster[0] || inst->tls.cluster[1])
    tdm__instance_log_tls(inst->conf, &inst->tls);
  return 0;
}

/* ---- start-up ---- */

static void on_inbox(tdm_inbox_t *ib, tdm_msg_t *m)
{
  if (m->kind == TDM_MSG_CALL && m->u.call.fn)
    m->u.call.fn(m->u.call.arg);
  tdm_msg_free(m);
}

static void on_sig_reload(tdm_signals_t *s) { tdm_instance_reload(s->data); }
static void on_sig_drain(tdm_signals_t *s, int signum) { tdm_instance_shutdown(s->data); }
static void on_sig_stop(tdm_signals_t *s, int signum) { tdm_instance_shutdown(s->data); }

static const tdm_signals_hooks_t signal_hooks = {
  .on_reload = on_sig_reload,
  .on_drain = on_sig_drain,
  .on_stop_now = on_sig_stop,
};

static int start_http(tdm_instance_t *inst)
{
  const tdm_conf_t *c = inst->conf;
  int rc;
  if (c->metrics_enabled) {
    rc = tdm_admin_start(&inst->loop, "metrics", c->metrics_address, (uint16_t)c->metrics_port,
                         tdm__instance_on_http, inst, &inst->metrics_http);
    if (rc) {
      tdm_log_fatal(NULL, "cannot listen for metrics on %s:%d: %s", c->metrics_address, c->metrics_port,
                    tdm_strerror(rc));
      return rc;
    }
    inst->metrics_port = tdm_admin_port(inst->metrics_http);
    tdm_log_info(NULL, "%s: /metrics /health/liveness /health/readiness /api/v1/status",
                 tdm_admin_name(inst->metrics_http));
  }
  if (c->admin_port != 0) {
    rc = tdm_admin_start(&inst->loop, "admin", c->admin_address, (uint16_t)c->admin_port, tdm__instance_on_http,
                         inst, &inst->admin_http);
    if (rc) {
      tdm_log_fatal(NULL, "cannot listen for the admin API on %s:%d: %s", c->admin_address, c->admin_port,
                    tdm_strerror(rc));
      return rc;
    }
    inst->admin_port = tdm_admin_port(inst->admin_http);
    tdm_log_info(NULL, "%s: GET /api/v1/status, POST /api/v1/reload%s", tdm_admin_name(inst->admin_http),
                 c->admin_token_file[0] ? " (bearer token)" : "");
  }
  return 0;
}

static int start_workers(tdm_instance_t *inst)
{
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned n = inst->conf->workers > 0 ? (unsigned)inst->conf->workers : (unsigned)(online > 0 ? online : 1);
  inst->workers = calloc(n, sizeof(*inst->workers));
  inst->wptrs = calloc(n, sizeof(*inst->wptrs));
  if (!inst->workers || !inst->wptrs)
    return TDM_ENOMEM;
  inst->nworkers = n;
  for (unsigned i = 0; i < n; i++) {
    tdm__wslot_t *s = &inst->workers[i];
    s->pw.instance = inst;
    s->pw.index = i;
    s->pw.registry = inst->registry;
    s->pw.conf = tdm_conf_ref(inst->conf); /* the thread's creation orders these writes before its reads */
    tdm_tls_set_copy(&s->pw.tls, &inst->tls);
    int rc = tdm_worker_start(&s->w, i, &tdm__instance_worker_hooks, &s->pw);
    if (rc < 0) {
      tdm_conf_unref(s->pw.conf); /* init failed before taking it over, or fini already dropped it */
      s->pw.conf = NULL;
      tdm_tls_set_clear(&s->pw.tls); /* the same (the thread was joined) */
      tdm_log_fatal(NULL, "cannot start worker %u: %s", i, tdm_strerror(rc));
      return rc;
    }
    s->started = true;
    inst->wptrs[inst->nstarted++] = &s->w;
  }
  tdm_log_info(NULL, "%u worker threads started", n);
  return 0;
}

static int start_control(tdm_instance_t *inst)
{
  if (!inst->has_control) {
    tdm_log_warn(NULL, "no control connection linked into this build: readiness stays STARTUP");
    return 0;
  }
  static const tdm_control_callbacks_t proto = {
    .on_topology = on_topology,
    .on_schema_event = tdm__instance_on_schema_event,
    .on_health = on_health,
  };
  tdm_control_callbacks_t cb = proto;
  cb.arg = inst;
  for (int c = 0; c < 2; c++) {
    int rc = inst->plug.control_new(&inst->loop, c, inst->conf, &cb, &inst->control[c]);
    if (rc < 0) {
      tdm_log_fatal(NULL, "cannot create the %s control connection: %s", cluster_name[c], tdm_strerror(rc));
      return rc;
    }
    if (inst->plug.control_set_tls)
      inst->plug.control_set_tls(inst->control[c], &inst->tls);
  }
  for (int c = 0; c < 2; c++)
    inst->plug.control_start(inst->control[c]);
  return 0;
}

static int start(tdm_instance_t *inst)
{
  int rc;
  if ((rc = tdm_inbox_init(&inst->inbox, &inst->loop, on_inbox, inst)) < 0)
    return rc;
  inst->inbox_on = true;
  uv_timer_init(&inst->loop, &inst->reload_timer);
  uv_timer_init(&inst->loop, &inst->drain_timer);
  uv_timer_init(&inst->loop, &inst->drain_poll);
  inst->reload_timer.data = inst->drain_timer.data = inst->drain_poll.data = inst;
  inst->timers_on = true;
  if (!inst->no_signals) {
    if ((rc = tdm_signals_start(&inst->signals, &inst->loop, &signal_hooks, inst)) < 0)
      return rc;
    inst->signals_on = true;
  }
  if ((rc = tdm_prepared_registry_new((size_t)inst->conf->prepared_cache_max_entries, &inst->registry)) < 0)
    return rc;
  /* The divergence journal's writer thread runs from here to tdm_instance_free (after the workers). */
  if ((rc = tdm_journal_new(NULL, &inst->journal)) < 0)
    return rc;
  tdm_journal_configure(inst->journal, inst->conf->write_divergence_log, inst->conf->write_divergence_log_max_bytes);
  if ((rc = start_tls(inst)) < 0)
    return rc;
  if ((rc = start_http(inst)) < 0)
    return rc;
  if ((rc = start_workers(inst)) < 0)
    return rc;
  return start_control(inst);
}

int tdm_instance_run(tdm_instance_t *inst)
{
  int rc = start(inst);
  if (rc < 0) {
    tdm_log_fatal(NULL, "start-up failed: %s", tdm_strerror(rc));
    tdm__instance_finish(inst, rc);
    uv_run(&inst->loop, UV_RUN_DEFAULT);
    return rc;
  }
  uv_run(&inst->loop, UV_RUN_DEFAULT);
  return inst->result;
}

static void close_leftover(uv_handle_t *h, void *arg)
{
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void tdm_instance_free(tdm_instance_t *inst)
{
  if (!inst)
    return;
  if (inst->loop_inited) {
    if (!inst->closing)
      tdm__instance_finish(inst, 0);
    uv_run(&inst->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&inst->loop) != 0) {
      uv_walk(&inst->loop, close_leftover, NULL);
      uv_run(&inst->loop, UV_RUN_DEFAULT);
      uv_loop_close(&inst->loop);
    }
  }
  if (inst->inbox.inited)
    tdm_inbox_destroy(&inst->inbox);
  tdm__instance_stats_free(inst);
  tdm__instance_reload_free(inst);
  free(inst->workers);
  free(inst->wptrs);
  for (int c = 0; c < 2; c++) {
    tdm_topology_unref(inst->topology[c]);
    free(inst->control_error[c]);
  }
  if (inst->registry)
    tdm_prepared_registry_free(inst->registry);
  tdm_journal_free(inst->journal); /* writes what is queued; every worker has been joined */
  tdm_tls_set_clear(&inst->tls);
  tdm_conf_unref(inst->conf);
  for (char **e = inst->envp; e && *e; e++)
    free(*e);
  free(inst->envp);
  free(inst->config_path);
  if (inst->logger_on)
    tdm_log_stop();
  free(inst);
}

/* ---- accessors (main loop) ---- */

uv_loop_t *tdm_instance_loop(tdm_instance_t *inst)
{
  return &inst->loop;
}

tdm_health_status_t tdm_instance_readiness(const tdm_instance_t *inst)
{
  tdm_health_t h;
  tdm__instance_health(inst, &h);
  return tdm_health_status(&h);
}

uint64_t tdm_instance_epoch(const tdm_instance_t *inst) { return inst->conf ? inst->conf->epoch : 0; }
const tdm_conf_t *tdm_instance_conf(const tdm_instance_t *inst) { return inst->conf; }
uint16_t tdm_instance_metrics_port(const tdm_instance_t *inst) { return inst->metrics_port; }
uint16_t tdm_instance_admin_port(const tdm_instance_t *inst) { return inst->admin_port; }
unsigned tdm_instance_workers(const tdm_instance_t *inst) { return inst->nstarted; }
bool tdm_instance_listening(const tdm_instance_t *inst) { return inst->listen_requested; }

void tdm_instance_reload_counts(const tdm_instance_t *inst, uint64_t *applied, uint64_t *rejected)
{
  *applied = inst->reloads_applied;
  *rejected = inst->reloads_rejected;
}
