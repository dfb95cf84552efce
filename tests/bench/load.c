/* The load of one worker thread: closed loop (each connection keeps up to --inflight requests out,
 * refilled after every read in groups of --pipeline) or open loop (requests scheduled every
 * 1/rate seconds by a timerfd; a request that finds no free stream id waits in a backlog, and its
 * latency still counts from its scheduled time, so a stall is not hidden: no coordinated omission).
 *
 *   worker thread:  connect + handshake --B1--> (main sets the clock) --B2--> load until stopped and
 *                   drained --B3--> (main samples /proc) --B4--> close everything, exit
 *
 * A 2 ms ticker moves the phases (measuring from t_measure, stopping at t_stop, the drain deadline)
 * even when no response arrives. */
#include <errno.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "load.h"

#define TICK_MS 2

static void mark_dirty(tdm_bench_worker_t *w, tdm_bench_conn_t *c)
{
  if (c->dirty) return;
  c->dirty = true;
  c->next_dirty = w->dirty;
  w->dirty = c;
}

static void flush_dirty(tdm_bench_worker_t *w)
{
  while (w->dirty) {
    tdm_bench_conn_t *c = w->dirty;
    w->dirty = c->next_dirty;
    c->dirty = false;
    c->next_dirty = NULL;
    tdm_bench_conn_flush(c);
  }
}

static void finish(tdm_bench_worker_t *w)
{
  if (w->done) return;
  w->done = true;
  uv_stop(&w->loop);
}

static void set_stopping(tdm_bench_worker_t *w, uint64_t now)
{
  if (w->stopping) return;
  w->stopping = true;
  w->t_stopped = now;
}

/* May another request start now? Stops the requests mode once the quota is out. */
static bool may_start(tdm_bench_worker_t *w)
{
  if (w->stopping) return false;
  if (w->o->requests && w->measuring && w->started_measured >= w->quota) {
    set_stopping(w, uv_hrtime());
    return false;
  }
  return true;
}

static void check_time(tdm_bench_worker_t *w, uint64_t now)
{
  const tdm_bench_run_t *run = w->run;
  if (!w->measuring && now >= run->t_measure) w->measuring = true;
  if (!w->stopping && now >= run->t_stop) set_stopping(w, now);
  if (w->stopping && w->inflight == 0) {
    finish(w);
    return;
  }
  /* t_stopped may be a little later than now (may_start reads the clock itself) */
  if (w->stopping && now > w->t_stopped && now - w->t_stopped >= (uint64_t)(w->o->drain_timeout * 1e9)) {
    w->lost = w->inflight; /* never answered: reported, and the run is flagged */
    finish(w);
  }
}

static void started(tdm_bench_worker_t *w)
{
  if (w->measuring) w->started_measured++;
}

/* Closed loop: refill c's free stream ids, in multiples of the pipeline group, in one write. */
static void fill(tdm_bench_worker_t *w, tdm_bench_conn_t *c, uint64_t now)
{
  uint32_t k = w->o->pipeline, n = c->n_free / k * k;
  for (uint32_t i = 0; i < n && may_start(w); i++) {
    int rc = tdm_bench_conn_send(c, now);
    if (rc) {
      tdm_bench_worker_fail(w, rc, "cannot encode a request: %s", tdm_strerror(rc));
      return;
    }
    started(w);
  }
  tdm_bench_conn_flush(c);
}

/* Open loop: starts every request whose scheduled time has come, as stream ids allow. */
static void dispatch(tdm_bench_worker_t *w, uint64_t now)
{
  uint64_t t0 = w->rate_t0;
  uint64_t due = now < t0 ? 0 : (now - t0) / w->rate_interval + 1;
  while (w->rate_next < due && !w->done) {
    uint64_t t = t0 + w->rate_next * w->rate_interval;
    if (t >= w->run->t_stop) {
      set_stopping(w, now);
      break;
    }
    if (!may_start(w)) break;
    tdm_bench_conn_t *c = NULL;
    for (uint32_t i = 0; i < w->n_conns; i++) {
      tdm_bench_conn_t *cand = &w->conns[(w->rr + i) % w->n_conns];
      if (cand->n_free > 0) {
        c = cand;
        w->rr = (w->rr + i + 1) % w->n_conns;
        break;
      }
    }
    if (!c) break; /* backlog: every stream id is busy; retried after the next response */
    int rc = tdm_bench_conn_send(c, t);
    if (rc) {
      tdm_bench_worker_fail(w, rc, "cannot encode a request: %s", tdm_strerror(rc));
      return;
    }
    started(w);
    w->rate_next++;
    mark_dirty(w, c);
  }
  flush_dirty(w);
}

void tdm_bench_load_on_ready(tdm_bench_worker_t *w, tdm_bench_conn_t *c)
{
  w->n_ready++;
  if (w->n_connecting) w->n_connecting--;
  /* idle mode opens connections a batch at a time: each one ready lets the next one start */
  if (c->role == TDM_BENCH_ROLE_IDLE && w->n_started < w->n_conns) {
    tdm_bench_conn_t *next = &w->conns[w->n_started++];
    w->n_connecting++;
    int rc = tdm_bench_conn_start(next);
    if (rc) {
      tdm_bench_worker_fail(w, rc, "cannot start connection %u: %s", next->index, tdm_strerror(rc));
      return;
    }
  }
  if (w->n_ready == w->n_conns) uv_stop(&w->loop);
}

void tdm_bench_load_on_responses(tdm_bench_worker_t *w, tdm_bench_conn_t *c, uint64_t now)
{
  check_time(w, now);
  if (w->done) return;
  if (w->rate_fd >= 0) dispatch(w, now);
  else fill(w, c, now);
  check_time(w, now);
}

static void on_tick(uv_timer_t *t)
{
  tdm_bench_worker_t *w = t->data;
  uint64_t now = uv_hrtime();
  check_time(w, now);
  if (!w->done && w->rate_fd < 0 && !w->stopping) {
    for (uint32_t i = 0; i < w->n_conns; i++) /* a pipeline group short of a full slot set */
      if (w->conns[i].n_free >= w->o->pipeline) fill(w, &w->conns[i], now);
  }
}

static void on_rate(uv_poll_t *p, int status, int events)
{
  tdm_bench_worker_t *w = p->data;
  uint64_t expirations;
  if (read(w->rate_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
    {
      tdm_bench_worker_fail(w, -errno, "timerfd read failed: %s", strerror(errno));
      return;
    }
  }
  uint64_t now = uv_hrtime();
  check_time(w, now);
  if (!w->done) dispatch(w, now);
}

static int start_rate(tdm_bench_worker_t *w)
{
  const tdm_bench_opts_t *o = w->o;
  double per_worker = o->rate * ((double)w->n_conns / (double)o->connections);
  w->rate_interval = (uint64_t)(1e9 / per_worker);
  if (w->rate_interval == 0) w->rate_interval = 1;
  /* workers interleave their schedules instead of firing together */
  w->rate_t0 = w->run->t0 + w->rate_interval * w->id / o->threads;
  uint64_t tick = TDM_MAX(w->rate_interval, 10000u); /* >= 10 us between wakeups */
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* fire on time, not up to 50 us late */
  w->rate_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (w->rate_fd < 0) return -errno;
  struct itimerspec its = {
    .it_value = { .tv_sec = (time_t)(w->rate_t0 / 1000000000u), .tv_nsec = (long)(w->rate_t0 % 1000000000u) },
    .it_interval = { .tv_sec = (time_t)(tick / 1000000000u), .tv_nsec = (long)(tick % 1000000000u) },
  };
  if (timerfd_settime(w->rate_fd, TFD_TIMER_ABSTIME, &its, NULL)) return -errno;
  int rc = uv_poll_init(&w->loop, &w->rate_poll, w->rate_fd);
  if (rc) return rc;
  w->rate_poll.data = w;
  w->rate_polling = true;
  return uv_poll_start(&w->rate_poll, UV_READABLE, on_rate);
}

static void start_load(tdm_bench_worker_t *w)
{
  uint64_t now = uv_hrtime();
  w->load = true;
  w->measuring = now >= w->run->t_measure;
  int rc = uv_timer_start(&w->ticker, on_tick, TICK_MS, TICK_MS);
  if (rc) {
      tdm_bench_worker_fail(w, rc, "timer: %s", tdm_strerror(rc));
      return;
    }
  if (w->o->rate > 0) {
    rc = start_rate(w);
    if (rc) {
      tdm_bench_worker_fail(w, rc, "open-loop timer: %s", tdm_strerror(rc));
      return;
    }
    return;
  }
  for (uint32_t i = 0; i < w->n_conns && !w->done; i++) fill(w, &w->conns[i], now);
}

static void on_handshake_timeout(uv_timer_t *t)
{
  tdm_bench_worker_t *w = t->data;
  tdm_bench_worker_fail(w, TDM_ETIMEOUT, "%u of %u connections ready after %.0f s", w->n_ready, w->n_conns,
                        w->o->connect_timeout);
}

int tdm_bench_worker_init(tdm_bench_worker_t *w, tdm_bench_run_t *run, uint32_t id, uint32_t n_conns,
                          uint32_t first_index, tdm_bench_conn_role_t role)
{
  memset(w, 0, sizeof(*w));
  w->run = run;
  w->o = run->o;
  w->id = id;
  w->rate_fd = -1;
  int rc = uv_loop_init(&w->loop);
  if (rc) return rc;
  w->conns = calloc(n_conns ? n_conns : 1, sizeof(*w->conns));
  if (!w->conns) return TDM_ENOMEM;
  w->n_conns = n_conns;
  for (uint32_t i = 0; i < n_conns; i++) {
    w->conns[i].worker = w;
    w->conns[i].index = first_index + i;
    w->conns[i].role = role;
  }
  if ((rc = uv_timer_init(&w->loop, &w->ticker))) return rc;
  w->ticker.data = w;
  return 0;
}

int tdm_bench_worker_connect(tdm_bench_worker_t *w, uint32_t batch)
{
  uv_timer_t *deadline = &w->handshake_timer;
  int rc = uv_timer_init(&w->loop, deadline);
  if (rc) return rc;
  deadline->data = w;
  if ((rc = uv_timer_start(deadline, on_handshake_timeout, (uint64_t)(w->o->connect_timeout * 1000), 0))) return rc;
  uint32_t first = batch && batch < w->n_conns ? batch : w->n_conns;
  for (; w->n_started < first; w->n_started++) {
    w->n_connecting++;
    if ((rc = tdm_bench_conn_start(&w->conns[w->n_started]))) {
      tdm_bench_worker_fail(w, rc, "cannot start connection %u: %s", w->n_started, tdm_strerror(rc));
      return rc;
    }
  }
  if (w->n_conns) uv_run(&w->loop, UV_RUN_DEFAULT); /* until every connection is ready, or a failure */
  uv_timer_stop(deadline);
  return w->err;
}

void *tdm_bench_worker_main(void *arg)
{
  tdm_bench_worker_t *w = arg;
  tdm_bench_run_t *run = w->run;
  if (tdm_bench_worker_connect(w, 0)) {
    /* w->err is set; the main thread reads it after B1 and aborts the run */
  }
  pthread_barrier_wait(&run->barrier); /* B1: every connection is ready (or someone failed) */
  pthread_barrier_wait(&run->barrier); /* B2: the clock is set */
  if (!run->abort && !w->err) {
    w->done = false;
    start_load(w);
    if (!w->done) uv_run(&w->loop, UV_RUN_DEFAULT);
  }
  pthread_barrier_wait(&run->barrier); /* B3: load over; main samples the processes */
  pthread_barrier_wait(&run->barrier); /* B4: close */
  tdm_bench_worker_close(w);
  return NULL;
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

void tdm_bench_worker_close(tdm_bench_worker_t *w)
{
  for (uint32_t i = 0; i < w->n_conns; i++) tdm_bench_conn_close(&w->conns[i]);
  if (!uv_is_closing((uv_handle_t *)&w->ticker)) uv_close((uv_handle_t *)&w->ticker, on_handle_closed);
  if (w->handshake_timer.data && !uv_is_closing((uv_handle_t *)&w->handshake_timer))
    uv_close((uv_handle_t *)&w->handshake_timer, on_handle_closed);
  if (w->rate_polling && !uv_is_closing((uv_handle_t *)&w->rate_poll))
    uv_close((uv_handle_t *)&w->rate_poll, on_handle_closed);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  if (w->rate_fd >= 0) close(w->rate_fd);
  w->rate_fd = -1;
}

void tdm_bench_worker_free(tdm_bench_worker_t *w)
{
  if (w->conns)
    for (uint32_t i = 0; i < w->n_conns; i++) tdm_bench_conn_free(&w->conns[i]);
  free(w->conns);
  w->conns = NULL;
  (void)uv_loop_close(&w->loop);
}
