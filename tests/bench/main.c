/* tdm-bench entry point: parse the options, run the set-up connection (DDL), start the worker threads,
 * own the run's clock (warm-up, measured interval) and its /proc samples, merge the workers' results
 * and print them. The idle-connection memory test (--idle) runs on the main thread instead. */
#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include "load.h"
#include "report.h"

typedef struct sample_set_s {
  tdm_bench_proc_sample_t procs[TDM_BENCH_MAX_PIDS]; /* per --sample-pid */
  bool ok[TDM_BENCH_MAX_PIDS];                       /* that sample was taken */
  double self_cpu;                                   /* tdm-bench's CPU seconds */
} sample_set_t;

static void sample_all(const tdm_bench_opts_t *o, sample_set_t *s)
{
  for (size_t i = 0; i < o->n_pids; i++) s->ok[i] = tdm_bench_proc_sample(o->pids[i].pid, &s->procs[i]) == 0;
  s->self_cpu = tdm_bench_self_cpu_seconds();
}

static void fill_procs(const tdm_bench_opts_t *o, const sample_set_t *a, const sample_set_t *b, tdm_bench_result_t *r)
{
  for (size_t i = 0; i < o->n_pids; i++) {
    tdm_bench_proc_result_t *p = &r->procs[i];
    p->ok = a->ok[i] && b->ok[i];
    if (!p->ok) continue;
    p->cpu_s = tdm_bench_proc_cpu_seconds(&a->procs[i], &b->procs[i]);
    p->cpu_sched_s = b->procs[i].cpu_ns > a->procs[i].cpu_ns ? (double)(b->procs[i].cpu_ns - a->procs[i].cpu_ns) / 1e9 : 0;
    p->rss_kib = b->procs[i].rss_kib;
    p->hwm_kib = b->procs[i].hwm_kib;
  }
  r->client_cpu_s = b->self_cpu - a->self_cpu;
}

static void sleep_until(uint64_t t)
{
  for (;;) {
    uint64_t now = uv_hrtime();
    if (now >= t) return;
    uint64_t d = t - now;
    struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u) };
    nanosleep(&ts, NULL);
  }
}

static void raise_fd_limit(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* The set-up connection: CREATE KEYSPACE / TABLE IF NOT EXISTS; their errors are reported, not fatal
 * (a mock node may refuse DDL), but a connection or handshake failure is. */
static int run_setup(tdm_bench_run_t *run, tdm_bench_result_t *r)
{
  tdm_bench_worker_t *w = calloc(1, sizeof(*w));
  if (!w) return TDM_ENOMEM;
  int rc = tdm_bench_worker_init(w, run, 0, 1, 0, TDM_BENCH_ROLE_SETUP);
  if (rc == 0) rc = tdm_bench_worker_connect(w, 0);
  if (rc) snprintf(r->failure, sizeof(r->failure), "setup: %.200s", w->err_text[0] ? w->err_text : tdm_strerror(rc));
  tdm_bench_worker_close(w);
  tdm_bench_worker_free(w);
  free(w);
  return rc;
}

/* ---- idle connections (memory per connection) ---- */

typedef struct idle_ctx_s {
  uv_signal_t sig_term; /* SIGTERM ends the hold */
  uv_signal_t sig_int;  /* SIGINT ends the hold */
  uv_timer_t hold;      /* --hold deadline */
} idle_ctx_t;

static void on_idle_end(uv_handle_t *h) { uv_stop(h->loop); }
static void on_idle_signal(uv_signal_t *s, int signum) { on_idle_end((uv_handle_t *)s); }
static void on_idle_timer(uv_timer_t *t) { on_idle_end((uv_handle_t *)t); }
static void on_closed(uv_handle_t *h) { (void)h; }

static int run_idle(tdm_bench_run_t *run, tdm_bench_result_t *r)
{
  const tdm_bench_opts_t *o = run->o;
  tdm_bench_worker_t *w = calloc(1, sizeof(*w));
  idle_ctx_t x;
  if (!w) return TDM_ENOMEM;
  int rc = tdm_bench_worker_init(w, run, 0, o->idle, 0, TDM_BENCH_ROLE_IDLE);
  if (rc == 0) rc = tdm_bench_worker_connect(w, 256); /* at most 256 handshakes at once */
  if (rc) {
    snprintf(r->failure, sizeof(r->failure), "%s", w->err_text[0] ? w->err_text : tdm_strerror(rc));
    r->failed = true;
  } else {
    r->idle = w->n_ready;
    printf("tdm-bench idle ready %u\n", w->n_ready);
    fflush(stdout);
    uv_signal_init(&w->loop, &x.sig_term);
    uv_signal_init(&w->loop, &x.sig_int);
    uv_timer_init(&w->loop, &x.hold);
    uv_signal_start(&x.sig_term, on_idle_signal, SIGTERM);
    uv_signal_start(&x.sig_int, on_idle_signal, SIGINT);
    if (o->hold > 0) uv_timer_start(&x.hold, on_idle_timer, (uint64_t)(o->hold * 1000), 0);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (w->err) { /* a held connection died */
      snprintf(r->failure, sizeof(r->failure), "%s", w->err_text);
      r->failed = true;
    }
    sample_set_t s;
    sample_all(o, &s);
    fill_procs(o, &s, &s, r);
    uv_close((uv_handle_t *)&x.sig_term, on_closed);
    uv_close((uv_handle_t *)&x.sig_int, on_closed);
    uv_close((uv_handle_t *)&x.hold, on_closed);
  }
  tdm_bench_worker_close(w);
  tdm_bench_worker_free(w);
  free(w);
  return r->failed ? TDM_EINVAL : 0;
}

/* ---- the measured run ---- */

static int run_load(tdm_bench_run_t *run, tdm_bench_result_t *r)
{
  const tdm_bench_opts_t *o = run->o;
  uint32_t t = o->threads;
  tdm_bench_worker_t *ws = calloc(t, sizeof(*ws));
  if (!ws) return TDM_ENOMEM;
  if (pthread_barrier_init(&run->barrier, NULL, t + 1)) {
    free(ws);
    return TDM_ENOMEM;
  }
  uint32_t first = 0, started = 0;
  int rc = 0;
  for (uint32_t i = 0; i < t && rc == 0; i++) {
    uint32_t n = o->connections / t + (i < o->connections % t ? 1 : 0);
    rc = tdm_bench_worker_init(&ws[i], run, i, n, first, TDM_BENCH_ROLE_LOAD);
    /* requests mode: each worker completes its share, in proportion to its connections */
    if (o->requests) ws[i].quota = o->requests / o->connections * n + (i == 0 ? o->requests % o->connections : 0);
    first += n;
  }
  for (uint32_t i = 0; i < t && rc == 0; i++) {
    if (pthread_create(&ws[i].thread, NULL, tdm_bench_worker_main, &ws[i])) rc = TDM_ENOMEM;
    else started++;
  }
  if (started < t) {
    /* cannot happen in practice; the started threads would wait at the barrier forever */
    fprintf(stderr, "tdm-bench: cannot start threads\n");
    exit(1);
  }
  sample_set_t a, b;
  pthread_barrier_wait(&run->barrier); /* B1 */
  for (uint32_t i = 0; i < t; i++) {
    if (ws[i].err) {
      run->abort = true;
      r->failed = true;
      snprintf(r->failure, sizeof(r->failure), "%s", ws[i].err_text);
      break;
    }
  }
  run->t0 = uv_hrtime();
  run->t_measure = run->t0 + (uint64_t)(o->warmup * 1e9);
  run->t_stop = o->requests ? UINT64_MAX : run->t_measure + (uint64_t)(o->duration * 1e9);
  if (!o->quiet && !run->abort)
    fprintf(stderr, "tdm-bench: %u connections ready; load starts (%.1f s warm-up)\n", o->connections, o->warmup);
  pthread_barrier_wait(&run->barrier); /* B2 */
  sleep_until(run->t_measure);
  sample_all(o, &a);
  pthread_barrier_wait(&run->barrier); /* B3 */
  sample_all(o, &b);
  pthread_barrier_wait(&run->barrier); /* B4 */
  uint64_t t_last = run->t_measure;
  for (uint32_t i = 0; i < t; i++) {
    pthread_join(ws[i].thread, NULL);
    tdm_bench_worker_t *w = &ws[i];
    if (w->err && !r->failed) {
      r->failed = true;
      snprintf(r->failure, sizeof(r->failure), "%s", w->err_text);
    }
    tdm_bench_hist_merge(&r->hist, &w->hist);
    r->completed += w->completed;
    r->errors += w->errors;
    r->lost += w->lost;
    r->by_op[0] += w->by_op[0];
    r->by_op[1] += w->by_op[1];
    if (w->t_last > t_last) t_last = w->t_last;
    if (!r->first_error[0] && w->first_error[0]) snprintf(r->first_error, sizeof(r->first_error), "%s", w->first_error);
    tdm_bench_worker_free(w);
  }
  r->elapsed_s = (double)(t_last - run->t_measure) / 1e9;
  fill_procs(o, &a, &b, r);
  pthread_barrier_destroy(&run->barrier);
  free(ws);
  return r->failed ? TDM_EINVAL : 0;
}

int main(int argc, char **argv)
{
  tdm_bench_opts_t o;
  int rc = tdm_bench_opts_parse(argc, argv, &o);
  if (rc) return rc > 0 ? 0 : 2;
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  tdm_bench_run_t run = { .o = &o, .t_stop = UINT64_MAX };
  tdm_bench_result_t *r = calloc(1, sizeof(*r));
  if (!r) return 1;
  r->o = &o;
  if (o.idle) {
    rc = run_idle(&run, r);
  } else {
    rc = o.setup ? run_setup(&run, r) : 0;
    if (rc) r->failed = true;
    else rc = run_load(&run, r);
  }
  if (o.json) {
    if (!o.quiet || r->failed) tdm_bench_report_text(stderr, r);
    tdm_bench_report_json(stdout, r);
  } else {
    tdm_bench_report_text(r->failed ? stderr : stdout, r);
  }
  int status = r->failed ? 1 : (r->lost ? 3 : 0);
  free(r);
  return status;
}
