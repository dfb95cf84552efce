/* The HTTP endpoints (behaviour.md §13), answered on the main loop (obs/admin.c carries each request
 * here from MHD's threads). Anything that shows worker data first asks every worker for a copy by
 * STATS_REQ (instance_stats.c) and renders from the sums, so no worker memory is read from here.
 *
 *   metrics listener: GET /metrics, /health/liveness (any method), GET /health/readiness (other
 *                     methods 404, as zdm-proxy), GET /api/v1/status
 *   admin listener:   GET /api/v1/status, POST /api/v1/reload (Bearer token when admin_token_file is
 *                     set): 200 + status when applied, 422 + status when rejected, 401 without token
 *
 * A request whose answer needs a later callback carries an http_ctx_t; if the instance closes first,
 * the callback frees the context without answering (tdm_admin_close answers those with 503). */
#include <tandem/obs/log.h>
#include <tandem/obs/status.h>
#include <tandem/version.h>
#include "instance_internal.h"

#define JSON_TYPE "application/json"

typedef struct http_ctx_s {
  tdm_admin_req_t *req; /* request to answer */
  unsigned status;      /* status to answer with once the stats are in (status documents) */
} http_ctx_t;

static const char *const cluster_names[2] = { "ORIGIN", "TARGET" };

void tdm__instance_health(const tdm_instance_t *inst, tdm_health_t *out)
{
  *out = inst->health;
  for (int c = 0; c < 2; c++)
    out->cluster[c].threshold = inst->conf ? inst->conf->heartbeat_failure_threshold : 1;
  out->draining = inst->draining;
  out->epoch = inst->conf ? inst->conf->epoch : 0;
  out->primary_cluster = inst->conf ? (int)inst->conf->primary_cluster : 0;
  out->read_mode = inst->conf ? (int)inst->conf->read_mode : 0;
  out->version = TDM_VERSION;
}

/* Renders into a malloc'd buffer through a memory stream; answers 500 if the stream fails. */
typedef int (*render_fn)(FILE *f, const void *arg);

static void respond_rendered(tdm_admin_req_t *req, unsigned status, const char *ctype, render_fn fn, const void *arg)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  int rc = f ? fn(f, arg) : TDM_ENOMEM;
  if (f && fclose(f) != 0)
    rc = TDM_ENOMEM;
  if (rc) {
    free(buf);
    tdm_admin_respond_text(req, 500, NULL, "cannot render the response\n");
    return;
  }
  tdm_admin_respond(req, status, ctype, buf, len);
}

/* ---- readiness ---- */

static void answer_readiness(tdm_instance_t *inst, tdm_admin_req_t *req)
{
  tdm_health_t h;
  tdm__instance_health(inst, &h);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    tdm_admin_respond_text(req, 500, NULL, "out of memory\n");
    return;
  }
  unsigned code = tdm_health_readiness_json(f, &h);
  if (fclose(f) != 0) {
    free(buf);
    tdm_admin_respond_text(req, 500, NULL, "out of memory\n");
    return;
  }
  tdm_admin_respond(req, code, JSON_TYPE, buf, len);
}

/* ---- status ---- */

typedef struct status_args_s {
  const tdm_instance_t *inst; /* source */
} status_args_t;

static int render_status(FILE *f, const void *arg)
{
  const tdm_instance_t *inst = ((const status_args_t *)arg)->inst;
  const tdm_conf_t *conf = inst->conf;
  tdm_health_t h;
  tdm__instance_health(inst, &h);
  tdm_status_t s = {
    .version = TDM_VERSION,
    .epoch = conf->epoch,
    .config_file = inst->config_path,
    .readiness = tdm_health_status_name(tdm_health_status(&h)),
    .draining = inst->draining,
    .primary_cluster = cluster_names[conf->primary_cluster == TDM_CONF_TARGET],
    .read_mode = conf->read_mode == TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY ? "DUAL_ASYNC_ON_SECONDARY" : "PRIMARY_ONLY",
    .write_divergence_policy = conf->write_divergence_policy == TDM_CONF_DIVERGENCE_PRIMARY_WINS ? "PRIMARY_WINS" : "FAIL",
    .pending_restart = (const char *const *)inst->pending_restart,
    .n_pending_restart = inst->n_pending_restart,
    .last_reload_ms = inst->last_reload_ms,
    .last_reload_result = inst->last_reload_ok ? "applied" : "rejected",
    .last_reload_error = inst->last_reload_ok ? NULL : inst->last_reload_error,
  };
  tdm_status_node_t *nodes[2] = { NULL, NULL };
  char(*names[2])[TDM_METRICS_NODE_NAME_MAX] = { NULL, NULL };
  tdm_status_worker_t *workers = calloc(inst->nstarted ? inst->nstarted : 1, sizeof(*workers));
  int rc = workers ? 0 : TDM_ENOMEM;
  for (int c = 0; c < 2 && rc == 0; c++) {
    const tdm_topology_t *t = inst->topology[c];
    tdm_status_cluster_t *sc = &s.clusters[c];
    bool ever = h.cluster[c].ever_up;
    sc->status = ever ? tdm_health_status_name(tdm_health_cluster_status(&h.cluster[c])) : "STARTUP";
    sc->control_node = h.cluster[c].addr[0] ? h.cluster[c].addr : NULL;
    sc->failures = h.cluster[c].failures;
    sc->last_error = inst->control_error[c];
    if (!t || !t->n_nodes)
      continue;
    nodes[c] = calloc(t->n_nodes, sizeof(tdm_status_node_t));
    names[c] = calloc(t->n_nodes, sizeof(*names[c]));
    if (!nodes[c] || !names[c]) {
      rc = TDM_ENOMEM;
      break;
    }
    for (size_t i = 0; i < t->n_nodes; i++) {
      tdm_status_node_t *n = &nodes[c][i];
      tdm__instance_node_name(&t->nodes[i], names[c][i], sizeof(names[c][i]));
      n->name = names[c][i];
      n->dc = t->nodes[i].dc;
      n->state = t->nodes[i].state == TDM_NODE_UP ? "UP" : "DOWN";
      for (size_t k = 0; k < inst->n_agg_nodes; k++) {
        const tdm_metrics_node_t *g = &inst->agg_nodes[k];
        if (g->cluster == c && !strcmp(g->name, n->name)) {
          n->connections = g->connections;
          n->inflight = g->inflight;
          break;
        }
      }
    }
    sc->nodes = nodes[c];
    sc->n_nodes = t->n_nodes;
  }
  if (rc == 0) {
    for (unsigned w = 0; w < inst->nstarted; w++) {
      const tdm__wsnap_t *snap = &inst->workers[w].snap;
      workers[w].clients = TDM_MAX(snap->clients, snap->stats.client_connections);
      for (int v = 0; v < TDM_STATUS_VERSIONS; v++)
        workers[w].by_version[v] = snap->stats.client_versions[v];
    }
    s.workers = workers;
    s.n_workers = inst->nstarted;
    rc = tdm_status_render(f, &s);
  }
  for (int c = 0; c < 2; c++) {
    free(nodes[c]);
    free(names[c]);
  }
  free(workers);
  return rc;
}

static void status_ready(tdm_instance_t *inst, void *arg, bool ok)
{
  http_ctx_t *ctx = arg;
  if (inst->closing) {
    free(ctx);
    return;
  }
  status_args_t sa = { inst };
  respond_rendered(ctx->req, ctx->status, JSON_TYPE, render_status, &sa);
  free(ctx);
}

static void answer_status(tdm_instance_t *inst, tdm_admin_req_t *req, unsigned status)
{
  http_ctx_t *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) {
    tdm_admin_respond_text(req, 503, NULL, "out of memory\n");
    return;
  }
  ctx->req = req;
  ctx->status = status;
  tdm__instance_stats(inst, status_ready, ctx);
}

/* ---- metrics ---- */

static int render_metrics(FILE *f, const void *arg)
{
  const tdm_instance_t *inst = arg;
  const tdm_conf_t *conf = inst->conf;
  tdm_prepared_stats_t ps = { 0 };
  if (inst->registry)
    tdm_prepared_registry_stats(inst->registry, &ps);
  tdm_metrics_process_t proc;
  bool have_proc = tdm_metrics_process_read(&proc) == 0;
  tdm_metrics_input_t in = {
    .prefix = conf->metrics_prefix,
    .buckets = { &conf->metrics_origin_latency_buckets_ms, &conf->metrics_target_latency_buckets_ms,
                 &conf->metrics_async_read_latency_buckets_ms },
    .stats = &inst->agg,
    .nodes = inst->agg_nodes,
    .n_nodes = inst->n_agg_nodes,
    .pscache_entries = ps.entries,
    .pscache_evictions = ps.evictions,
    .epoch = conf->epoch,
    .reloads_applied = inst->reloads_applied,
    .reloads_rejected = inst->reloads_rejected,
    .pending_restart_keys = inst->n_pending_restart,
    .primary_cluster = (int)conf->primary_cluster,
    .read_mode = (int)conf->read_mode,
    .process = have_proc ? &proc : NULL,
  };
  return tdm_metrics_render(f, &in);
}

static void metrics_ready(tdm_instance_t *inst, void *arg, bool ok)
{
  http_ctx_t *ctx = arg;
  if (inst->closing) {
    free(ctx);
    return;
  }
  if (!ok)
    tdm_admin_respond_text(ctx->req, 503, NULL, "counters unavailable\n");
  else
    respond_rendered(ctx->req, 200, TDM_METRICS_CONTENT_TYPE, render_metrics, inst);
  free(ctx);
}

/* ---- reload ---- */

/* Constant-time comparison of the whole strings (length leaks, content does not). */
static bool same_secret(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  for (size_t i = 0; i < la && i < lb; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

/* 0 when allowed; otherwise the request was answered (401 / 500). The token file is read on every
 * request, so a changed token applies at once (admin_token_file reloads live). */
static int authorize(tdm_instance_t *inst, tdm_admin_req_t *req)
{
  const char *path = inst->conf->admin_token_file;
  if (!path || !path[0])
    return 0;
  char token[1024];
  FILE *f = fopen(path, "re");
  size_t n = f ? fread(token, 1, sizeof(token) - 1, f) : 0;
  if (f)
    fclose(f);
  token[n] = '\0';
  while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' ' || token[n - 1] == '\t'))
    token[--n] = '\0';
  if (!f || n == 0) {
    tdm_log_error(NULL, "admin: cannot read a token from admin_token_file '%s': refusing POST requests", path);
    tdm_admin_set_header(req, "WWW-Authenticate", "Bearer realm=\"tandem\"");
    tdm_admin_respond_text(req, 401, NULL, "unauthorized\n");
    return -1;
  }
  const char *h = req->authorization;
  bool ok = h && strncmp(h, "Bearer ", 7) == 0 && same_secret(h + 7, token);
  memset(token, 0, sizeof(token));
  if (!ok) {
    tdm_log_warn(NULL, "admin: %s %s refused: %s bearer token", req->method, req->path, h ? "wrong" : "no");
    tdm_admin_set_header(req, "WWW-Authenticate", "Bearer realm=\"tandem\"");
    tdm_admin_respond_text(req, 401, NULL, "unauthorized\n");
    return -1;
  }
  return 0;
}

static void reload_done(tdm_instance_t *inst, void *arg, int result)
{
  http_ctx_t *ctx = arg;
  if (inst->closing || result < 0) {
    if (!inst->closing)
      tdm_admin_respond_text(ctx->req, 503, NULL, "shutting down\n");
    free(ctx);
    return;
  }
  ctx->status = result > 0 ? 200 : 422;
  tdm__instance_stats(inst, status_ready, ctx);
}

/* ---- routing ---- */

static bool is(const char *a, const char *b) { return strcmp(a, b) == 0; }

static void method_not_allowed(tdm_admin_req_t *req, const char *allow)
{
  tdm_admin_set_header(req, "Allow", allow);
  tdm_admin_respond_text(req, 405, NULL, "method not allowed\n");
}

void tdm__instance_on_http(tdm_admin_t *a, tdm_admin_req_t *req, void *arg)
{
  tdm_instance_t *inst = arg;
  bool admin = a == inst->admin_http;
  bool get = is(req->method, "GET") || is(req->method, "HEAD");
  const char *p = req->path;
  if (!admin && is(p, "/health/liveness")) {
    tdm_admin_respond_text(req, 200, NULL, "OK");
  } else if (!admin && is(p, "/health/readiness")) {
    if (!get)
      tdm_admin_respond_text(req, 404, NULL, "404 page not found\n");
    else
      answer_readiness(inst, req);
  } else if (!admin && is(p, "/metrics")) {
    if (!get) {
      method_not_allowed(req, "GET");
      return;
    }
    http_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
      tdm_admin_respond_text(req, 503, NULL, "out of memory\n");
      return;
    }
    ctx->req = req;
    tdm__instance_stats(inst, metrics_ready, ctx);
  } else if (is(p, "/api/v1/status")) {
    if (!get)
      method_not_allowed(req, "GET");
    else
      answer_status(inst, req, 200);
  } else if (admin && is(p, "/api/v1/reload")) {
    if (!is(req->method, "POST")) {
      method_not_allowed(req, "POST");
      return;
    }
    if (authorize(inst, req) < 0)
      return;
    http_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
      tdm_admin_respond_text(req, 503, NULL, "out of memory\n");
      return;
    }
    ctx->req = req;
    tdm_log_info(NULL, "admin: POST /api/v1/reload: reloading the configuration");
    tdm__instance_reload_request(inst, reload_done, ctx);
  } else {
    tdm_admin_respond_text(req, 404, NULL, "404 page not found\n");
  }
}
