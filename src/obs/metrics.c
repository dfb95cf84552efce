/* Prometheus text exposition (0.0.4) of behaviour.md §13.1 from a snapshot (obs/metrics.h): the
 * zdm-proxy-compatible families first, in the spec's order, then tandem's extras, then the process
 * collectors. Label names inside a sample are sorted alphabetically, as zdm-proxy's Go client writes
 * them, with `le` last on histogram buckets. Counters and gauges are printed as integers; seconds and
 * bucket bounds as the shortest decimal that reads back to the same double. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sys/resource.h>
#include <unistd.h>
#include <tandem/obs/metrics.h>

typedef struct render_s {
  FILE *out;                   /* destination */
  const char *p;               /* prefix */
  const tdm_proxy_stats_t *st; /* summed stats (never NULL inside the renderer) */
} render_t;

int tdm_metrics_format_double(char *buf, size_t cap, double v)
{
  if (isnan(v))
    return snprintf(buf, cap, "NaN");
  if (isinf(v))
    return snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
  for (int prec = 1; prec <= 17; prec++) {
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
    if (strtod(tmp, NULL) == v || prec == 17)
      return snprintf(buf, cap, "%s", tmp);
  }
  return 0; /* not reached */
}

/* Label values come from the topology (host names) and fixed tables; escape as the format requires. */
static void put_label_value(FILE *f, const char *v)
{
  for (; *v; v++) {
    if (*v == '\\')
      fputs("\\\\", f);
    else if (*v == '"')
      fputs("\\\"", f);
    else if (*v == '\n')
      fputs("\\n", f);
    else
      fputc(*v, f);
  }
}

static void family(const render_t *r, const char *name, const char *type, const char *help)
{
  fprintf(r->out, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", r->p, name, help, r->p, name, type);
}

/* One sample with up to two labels (k2 NULL for one, k1 NULL for none); keys given in sorted order. */
static void sample2(const render_t *r, const char *name, const char *k1, const char *v1, const char *k2,
                    const char *v2, uint64_t value)
{
  fprintf(r->out, "%s_%s", r->p, name);
  if (k1) {
    fprintf(r->out, "{%s=\"", k1);
    put_label_value(r->out, v1);
    fputc('"', r->out);
    if (k2) {
      fprintf(r->out, ",%s=\"", k2);
      put_label_value(r->out, v2);
      fputc('"', r->out);
    }
    fputc('}', r->out);
  }
  fprintf(r->out, " %" PRIu64 "\n", value);
}

static void sample1(const render_t *r, const char *name, const char *k, const char *v, uint64_t value)
{
  sample2(r, name, k, v, NULL, NULL, value);
}

static void sample0(const render_t *r, const char *name, uint64_t value)
{
  sample2(r, name, NULL, NULL, NULL, NULL, value);
}

/* Labels before `le`, e.g. node="a",type="reads", already sorted; NULL keys are skipped. */
typedef struct labels_s {
  const char *k[2]; /* names */
  const char *v[2]; /* values */
} labels_t;

static void put_labels(FILE *f, const labels_t *l, bool trailing_comma)
{
  bool first = true;
  for (int i = 0; i < 2; i++) {
    if (!l || !l->k[i])
      continue;
    fprintf(f, "%s%s=\"", first ? "" : ",", l->k[i]);
    put_label_value(f, l->v[i]);
    fputc('"', f);
    first = false;
  }
  if (trailing_comma && !first)
    fputc(',', f);
}

/* Cumulative buckets in seconds; observations were recorded with the same bounds (core/proxy.h). */
static void histogram(const render_t *r, const char *name, const labels_t *l, const tdm_hist_t *h,
                      const tdm_conf_doubles_t *b)
{
  size_t n = b ? TDM_MIN(b->n, (size_t)TDM_HIST_MAX_BUCKETS) : 0;
  uint64_t cum = 0;
  char num[40];
  for (size_t i = 0; i < n; i++) {
    cum += h->counts[i];
    tdm_metrics_format_double(num, sizeof(num), b->v[i] / 1000.0);
    fprintf(r->out, "%s_%s_bucket{", r->p, name);
    put_labels(r->out, l, true);
    fprintf(r->out, "le=\"%s\"} %" PRIu64 "\n", num, cum);
  }
  fprintf(r->out, "%s_%s_bucket{", r->p, name);
  put_labels(r->out, l, true);
  fprintf(r->out, "le=\"+Inf\"} %" PRIu64 "\n", h->count);
  tdm_metrics_format_double(num, sizeof(num), h->sum_ms / 1000.0);
  fprintf(r->out, "%s_%s_sum", r->p, name);
  if (l && l->k[0]) {
    fputc('{', r->out);
    put_labels(r->out, l, false);
    fputc('}', r->out);
  }
  fprintf(r->out, " %s\n%s_%s_count", num, r->p, name);
  if (l && l->k[0]) {
    fputc('{', r->out);
    put_labels(r->out, l, false);
    fputc('}', r->out);
  }
  fprintf(r->out, " %" PRIu64 "\n", h->count);
}

static const char *const cluster_label[3] = { "origin", "target", "async" };
static const char *const reqerr_label[TDM_REQERR_MAX] = {
#define TDM_REQERR_NAME(name) #name,
  TDM_REQUEST_ERRORS(TDM_REQERR_NAME)
#undef TDM_REQERR_NAME
};

/* ---- zdm-proxy-compatible families ---- */

static void render_proxy(const render_t *r, const tdm_metrics_input_t *in)
{
  const tdm_proxy_stats_t *s = r->st;
  family(r, "proxy_failed_connections_total", "counter", "Backend connections that could not be opened, by cluster");
  sample1(r, "proxy_failed_connections_total", "cluster", "origin", s->failed_connections_origin);
  sample1(r, "proxy_failed_connections_total", "cluster", "target", s->failed_connections_target);

  family(r, "proxy_failed_reads_total", "counter", "Forwarded reads that failed, by cluster that served them");
  sample1(r, "proxy_failed_reads_total", "cluster", "origin", s->failed_reads_origin);
  sample1(r, "proxy_failed_reads_total", "cluster", "target", s->failed_reads_target);

  family(r, "proxy_failed_writes_total", "counter", "Forwarded writes that failed, by the cluster(s) that failed");
  sample1(r, "proxy_failed_writes_total", "failed_on", "origin", s->failed_writes_origin);
  sample1(r, "proxy_failed_writes_total", "failed_on", "target", s->failed_writes_target);
  sample1(r, "proxy_failed_writes_total", "failed_on", "both", s->failed_writes_both);

  static const char *const types[3] = { "reads_origin", "reads_target", "writes" };
  static const int type_buckets[3] = { 0, 1, 0 }; /* core/proxy.h: which bounds each one uses */
  family(r, "proxy_request_duration_seconds", "histogram", "Latency of forwarded requests as the client sees it");
  for (int t = 0; t < 3; t++) {
    labels_t l = { { "type", NULL }, { types[t], NULL } };
    histogram(r, "proxy_request_duration_seconds", &l, &s->proxy_latency[t], in->buckets[type_buckets[t]]);
  }

  family(r, "proxy_inflight_requests_total", "gauge", "Forwarded requests waiting for their response");
  sample1(r, "proxy_inflight_requests_total", "type", "reads_origin", s->reads_inflight_origin);
  sample1(r, "proxy_inflight_requests_total", "type", "reads_target", s->reads_inflight_target);
  sample1(r, "proxy_inflight_requests_total", "type", "writes", s->writes_inflight);

  family(r, "pscache_entries_total", "gauge", "Entries in the prepared-statement registry");
  sample0(r, "pscache_entries_total", in->pscache_entries);
  family(r, "pscache_miss_total", "counter", "EXECUTE or BATCH ids not found in the prepared-statement registry");
  sample0(r, "pscache_miss_total", s->pscache_misses);

  family(r, "client_connections_total", "gauge", "Open client connections");
  sample0(r, "client_connections_total", s->client_connections);
}

/* Whether a node gets {p}_async_* rows: every node of the secondary cluster (where mirrored reads go,
 * §12), and any other node still holding async-pool connections or ids (after a primary flip). */
static bool async_row(const tdm_metrics_input_t *in, const tdm_metrics_node_t *n)
{
  return n->cluster == 1 - in->primary_cluster || n->async_connections || n->async_stream_ids;
}

static void render_nodes(const render_t *r, const tdm_metrics_input_t *in)
{
  const tdm_proxy_stats_t *s = r->st;
  char name[64];
  for (int c = 0; c < 3; c++) {
    snprintf(name, sizeof(name), "%s_requests_failed_total", cluster_label[c]);
    family(r, name, "counter", "Legs answered with an error or not answered, by error class and node");
    for (int e = 0; e < TDM_REQERR_MAX; e++)
      sample2(r, name, "error", reqerr_label[e], "node", TDM_METRICS_NODE_ALL, s->requests_failed[c][e]);
  }
  static const char *const rw[2] = { "reads", "writes" };
  for (int c = 0; c < 3; c++) {
    snprintf(name, sizeof(name), "%s_request_duration_seconds", cluster_label[c]);
    family(r, name, "histogram", "Latency of legs from write to response, by node and request type");
    for (int t = 0; t < 2; t++) {
      labels_t l = { { "node", "type" }, { TDM_METRICS_NODE_ALL, rw[t] } };
      histogram(r, name, &l, &s->cluster_latency[c][t], in->buckets[c]);
    }
  }
  for (int c = 0; c < 3; c++) {
    snprintf(name, sizeof(name), "%s_connections_total", cluster_label[c]);
    family(r, name, "gauge", "Open backend pool connections, by node");
    for (size_t i = 0; i < in->n_nodes; i++)
      if (c < 2 ? in->nodes[i].cluster == c : async_row(in, &in->nodes[i]))
        sample1(r, name, "node", in->nodes[i].name, c < 2 ? in->nodes[i].connections : in->nodes[i].async_connections);
  }
  const uint64_t failed[3] = { s->failed_connections_origin, s->failed_connections_target,
                               s->failed_connections_async };
  for (int c = 0; c < 3; c++) {
    snprintf(name, sizeof(name), "%s_failed_connections_total", cluster_label[c]);
    family(r, name, "counter", "Backend connections that could not be opened, by node");
    sample1(r, name, "node", TDM_METRICS_NODE_ALL, failed[c]);
  }
  family(r, "async_inflight_requests_total", "gauge", "Mirrored reads waiting for their response, by node");
  sample1(r, "async_inflight_requests_total", "node", TDM_METRICS_NODE_ALL, s->async_inflight);
  for (int c = 0; c < 3; c++) {
    snprintf(name, sizeof(name), "%s_used_stream_ids_total", cluster_label[c]);
    family(r, name, "gauge", "Stream ids in use on backend pool connections, by node");
    for (size_t i = 0; i < in->n_nodes; i++)
      if (c < 2 ? in->nodes[i].cluster == c : async_row(in, &in->nodes[i]))
        sample1(r, name, "node", in->nodes[i].name, c < 2 ? in->nodes[i].stream_ids : in->nodes[i].async_stream_ids);
  }
}

/* ---- tandem extras ---- */

static void render_config(const render_t *r, const tdm_metrics_input_t *in)
{
  family(r, "config_epoch", "gauge", "Configuration epoch in use (1 at start, +1 per applied reload)");
  sample0(r, "config_epoch", in->epoch);
  family(r, "config_reloads_total", "counter", "Configuration reloads by result");
  sample1(r, "config_reloads_total", "result", "applied", in->reloads_applied);
  sample1(r, "config_reloads_total", "result", "rejected", in->reloads_rejected);
  family(r, "config_pending_restart_keys", "gauge", "Restart-class keys changed in the file but not applied");
  sample0(r, "config_pending_restart_keys", in->pending_restart_keys);
  family(r, "primary_cluster", "gauge", "1 for the cluster serving synchronous reads");
  sample1(r, "primary_cluster", "cluster", "origin", in->primary_cluster == TDM_CONF_ORIGIN);
  sample1(r, "primary_cluster", "cluster", "target", in->primary_cluster == TDM_CONF_TARGET);
  family(r, "read_mode", "gauge", "1 for the active read mode");
  sample1(r, "read_mode", "mode", "PRIMARY_ONLY", in->read_mode == TDM_CONF_READ_PRIMARY_ONLY);
  sample1(r, "read_mode", "mode", "DUAL_ASYNC_ON_SECONDARY", in->read_mode == TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY);
}

static void render_clients(const render_t *r)
{
  const tdm_proxy_stats_t *s = r->st;
  family(r, "client_connections_refused_total", "counter", "Client connections refused or closed early, by reason");
  sample1(r, "client_connections_refused_total", "reason", "max_connections", s->client_refused_max_connections);
  sample1(r, "client_connections_refused_total", "reason", "draining", s->client_refused_draining);
  sample1(r, "client_connections_refused_total", "reason", "tls", s->client_refused_tls);
  sample1(r, "client_connections_refused_total", "reason", "handshake_timeout", s->client_refused_handshake_timeout);
  family(r, "client_handshakes_total", "counter", "Client handshakes by result");
  sample1(r, "client_handshakes_total", "result", "ok", s->handshakes_ok);
  sample1(r, "client_handshakes_total", "result", "auth_failed", s->handshakes_auth_failed);
  sample1(r, "client_handshakes_total", "result", "version_refused", s->handshakes_version_refused);
  sample1(r, "client_handshakes_total", "result", "backend_failed", s->handshakes_backend_failed);
  static const char *const versions[6] = { "v2", "v3", "v4", "v5", "DseV1", "DseV2" };
  family(r, "client_connections_by_version", "gauge", "Open client connections by negotiated protocol version");
  for (int v = 0; v < 6; v++)
    sample1(r, "client_connections_by_version", "version", versions[v], s->client_versions[v]);
  family(r, "frames_rejected_total", "counter", "Client frames refused, by reason");
  sample1(r, "frames_rejected_total", "reason", "too_large", s->frames_too_large);
  sample1(r, "frames_rejected_total", "reason", "malformed", s->frames_malformed);
  sample1(r, "frames_rejected_total", "reason", "crc", s->frames_crc);
  sample1(r, "frames_rejected_total", "reason", "bad_version", s->frames_bad_version);
  sample1(r, "frames_rejected_total", "reason", "bad_stream_id", s->frames_bad_stream_id);
}

static void render_backends(const render_t *r, const tdm_metrics_input_t *in)
{
  const tdm_proxy_stats_t *s = r->st;
  family(r, "proxy_late_responses_total", "counter", "Responses that arrived after their request timed out");
  sample1(r, "proxy_late_responses_total", "cluster", "origin", s->late_responses_origin);
  sample1(r, "proxy_late_responses_total", "cluster", "target", s->late_responses_target);
  family(r, "pool_queue_wait_seconds", "histogram", "Time legs waited in a pool queue for a stream id");
  histogram(r, "pool_queue_wait_seconds", NULL, &s->pool_queue_wait, in->buckets[0]);
  family(r, "backpressure_pauses_total", "counter", "Times a client connection stopped being read, by side");
  sample1(r, "backpressure_pauses_total", "side", "client", s->backpressure_pauses_client);
  sample1(r, "backpressure_pauses_total", "side", "backend", s->backpressure_pauses_backend);
  family(r, "read_yields_total", "counter", "Read callbacks that stopped early to let other connections run");
  sample0(r, "read_yields_total", s->read_yields);
  family(r, "bytes_total", "counter", "Bytes through tandem's sockets, by side and direction");
  const uint64_t bytes[4][2] = { { s->bytes_client_in, s->bytes_client_out },
                                 { s->bytes_origin_in, s->bytes_origin_out },
                                 { s->bytes_target_in, s->bytes_target_out },
                                 { s->bytes_async_in, s->bytes_async_out } };
  static const char *const sides[4] = { "client", "origin", "target", "async" };
  for (int d = 0; d < 2; d++)
    for (int i = 0; i < 4; i++)
      sample2(r, "bytes_total", "direction", d ? "out" : "in", "side", sides[i], bytes[i][d]);
}

/* architecture.md §6 "copies of a request body": bodies per leg, and the buffers built holding them
 * (copies_forced <= copies; the budget counts copies - copies_forced). */
static void render_bodies(const render_t *r)
{
  const tdm_proxy_stats_t *s = r->st;
  const uint64_t v[3][3] = {
    { s->request_bodies_forwarded_origin, s->request_bodies_forwarded_target, s->request_bodies_forwarded_async },
    { s->request_body_copies_origin, s->request_body_copies_target, s->request_body_copies_async },
    { s->request_body_copies_forced_origin, s->request_body_copies_forced_target, s->request_body_copies_forced_async },
  };
  static const char *const names[3] = { "request_bodies_forwarded_total", "request_body_copies_total",
                                        "request_body_copies_forced_total" };
  static const char *const help[3] = {
    "Client request bodies handed to a backend, by leg",
    "Buffers tandem built holding a client request body for a backend, by leg",
    "Request body copies forced by a prepared-id rewrite or by compression, by leg",
  };
  for (int k = 0; k < 3; k++) {
    family(r, names[k], "counter", help[k]);
    for (int l = 0; l < 3; l++)
      sample1(r, names[k], "leg", cluster_label[l], v[k][l]);
  }
}

static void render_prepared_async(const render_t *r, const tdm_metrics_input_t *in)
{
  const tdm_proxy_stats_t *s = r->st;
  family(r, "pscache_evictions_total", "counter", "Prepared-statement registry entries evicted by its bound");
  sample0(r, "pscache_evictions_total", in->pscache_evictions);
  family(r, "pscache_reprepares_total", "counter", "Transparent re-prepares after UNPREPARED, by cluster and result");
  sample2(r, "pscache_reprepares_total", "cluster", "origin", "result", "ok", s->pscache_reprepares_ok_origin);
  sample2(r, "pscache_reprepares_total", "cluster", "origin", "result", "failed", s->pscache_reprepares_failed_origin);
  sample2(r, "pscache_reprepares_total", "cluster", "target", "result", "ok", s->pscache_reprepares_ok_target);
  sample2(r, "pscache_reprepares_total", "cluster", "target", "result", "failed", s->pscache_reprepares_failed_target);
  family(r, "async_reads_dropped_total", "counter", "Mirrored reads dropped before being sent, by reason");
  sample1(r, "async_reads_dropped_total", "reason", "queue_full", s->async_reads_dropped_queue_full);
  sample1(r, "async_reads_dropped_total", "reason", "no_connection", s->async_reads_dropped_no_connection);
  family(r, "async_reads_sampled_out_total", "counter", "Eligible reads not mirrored because of sampling");
  sample0(r, "async_reads_sampled_out_total", s->async_reads_sampled_out);
}

static void render_divergence(const render_t *r)
{
  const tdm_proxy_stats_t *s = r->st;
  static const char *const kinds[3] = { "write", "counter", "lwt" };
  family(r, "write_divergence_total", "counter", "Dual writes applied on one cluster only, by kind and failed side");
  for (int f = 0; f < 2; f++)
    for (int k = 0; k < 3; k++)
      sample2(r, "write_divergence_total", "failed_on", cluster_label[f], "kind", kinds[k], s->write_divergence[k][f]);
  family(r, "write_divergence_log_dropped_total", "counter", "Divergence journal lines lost to a full queue");
  sample0(r, "write_divergence_log_dropped_total", s->divergence_journal_dropped);
  family(r, "lwt_applied_mismatch_total", "counter", "LWT writes whose [applied] differed between the clusters");
  sample0(r, "lwt_applied_mismatch_total", s->lwt_applied_mismatch);
  family(r, "schema_agreement_waits_total", "counter", "Schema-change responses held for agreement, by result");
  sample1(r, "schema_agreement_waits_total", "result", "agreed", s->schema_waits_agreed);
  sample1(r, "schema_agreement_waits_total", "result", "timeout", s->schema_waits_timeout);
}

static void process_metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
  char num[40];
  tdm_metrics_format_double(num, sizeof(num), v);
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name, num);
}

static void render_process(FILE *f, const tdm_metrics_process_t *p)
{
  process_metric(f, "process_cpu_seconds_total", "counter", "CPU time used by the process (user + system), seconds",
                 p->cpu_seconds);
  process_metric(f, "process_max_fds", "gauge", "Descriptor limit of the process (RLIMIT_NOFILE soft limit)", p->max_fds);
  process_metric(f, "process_open_fds", "gauge", "Descriptors the process has open", p->open_fds);
  process_metric(f, "process_resident_memory_bytes", "gauge", "Resident set size of the process, bytes", p->resident_bytes);
  process_metric(f, "process_start_time_seconds", "gauge", "When the process started, seconds since the Unix epoch",
                 p->start_time_seconds);
  process_metric(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size of the process, bytes", p->virtual_bytes);
}

int tdm_metrics_render(FILE *out, const tdm_metrics_input_t *in)
{
  static const tdm_proxy_stats_t zero;
  render_t r = { out, in->prefix && *in->prefix ? in->prefix : "tandem", in->stats ? in->stats : &zero };
  render_proxy(&r, in);
  render_nodes(&r, in);
  render_config(&r, in);
  render_clients(&r);
  render_backends(&r, in);
  render_bodies(&r);
  render_prepared_async(&r, in);
  render_divergence(&r);
  if (in->process)
    render_process(out, in->process);
  return ferror(out) ? TDM_ENOMEM : 0;
}

/* ---- process collectors ---- */

static int read_file(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "re");
  if (!f)
    return -errno;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (int)n;
}

/* Boot time (btime of /proc/stat), seconds since the epoch. */
static double boot_time(void)
{
  char buf[8192];
  if (read_file("/proc/stat", buf, sizeof(buf)) <= 0)
    return 0;
  const char *p = strstr(buf, "\nbtime ");
  return p ? strtod(p + 7, NULL) : 0;
}

int tdm_metrics_process_read(tdm_metrics_process_t *out)
{
  char buf[4096];
  memset(out, 0, sizeof(*out));
  int n = read_file("/proc/self/stat", buf, sizeof(buf));
  if (n <= 0)
    return n < 0 ? n : -EIO;
  /* Fields after "(comm)": comm may hold spaces and parentheses, so start after the last ')'. */
  const char *p = strrchr(buf, ')');
  if (!p)
    return -EIO;
  p++;
  unsigned long long field[64] = { 0 };
  int idx = 3; /* field 3 (state) comes first */
  char *end;
  while (*p && idx < 30) {
    while (*p == ' ')
      p++;
    if (idx == 3) { /* state is a letter */
      p++;
    } else {
      field[idx] = strtoull(p, &end, 10);
      if (end == p)
        break;
      p = end;
    }
    idx++;
  }
  double tck = (double)sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  if (tck <= 0)
    tck = 100;
  out->cpu_seconds = (double)(field[14] + field[15]) / tck; /* utime + stime */
  out->virtual_bytes = (double)field[23];                   /* vsize, bytes */
  out->resident_bytes = (double)field[24] * (double)page;   /* rss, pages */
  out->start_time_seconds = boot_time() + (double)field[22] / tck;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    out->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    struct dirent *e;
    unsigned fds = 0;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.')
        fds++;
    closedir(d);
    out->open_fds = fds > 0 ? fds - 1 : 0; /* the directory stream's own descriptor is not ours */
  }
  return 0;
}
