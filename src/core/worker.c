/* Worker threads: start (thread with signals blocked, loop, inbox, net ctx, owner init), message
 * dispatch by kind, STOP (owner fini, close our handles, force-close leaks so the loop can end), join,
 * and stats aggregation by message. The only thread-local is the current-worker pointer (rule 15). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <tandem/core/worker.h>
#include <tandem/obs/log.h>

static _Thread_local tdm_worker_t *current_worker;

tdm_worker_t *tdm_worker_current(void) { return current_worker; }

/* ---- counters (generated from TDM_WORKER_STATS) ---- */

const char *const tdm_worker_stats_names[TDM_WORKER_STATS_COUNT] = {
#define NAME(name, help) #name,
  TDM_WORKER_STATS(NAME)
#undef NAME
};

const char *const tdm_worker_stats_help[TDM_WORKER_STATS_COUNT] = {
#define HELP(name, help) help,
  TDM_WORKER_STATS(HELP)
#undef HELP
};

void tdm_worker_stats_reset(tdm_worker_stats_t *s) { memset(s, 0, sizeof(*s)); }

void tdm_worker_stats_add(tdm_worker_stats_t *dst, const tdm_worker_stats_t *src)
{
#define ADD(name, help) dst->name += src->name;
  TDM_WORKER_STATS(ADD)
#undef ADD
}

uint64_t tdm_worker_stats_get(const tdm_worker_stats_t *s, size_t i)
{
  size_t k = 0;
#define GET(name, help)                                                                                     \
  if (k++ == i) return s->name;
  TDM_WORKER_STATS(GET)
#undef GET
  TDM_ASSERT(!"counter index out of range");
  return 0;
}

/* ---- stats aggregation ---- */

typedef struct collector_s collector_t;

typedef struct collector_slot_s {
  collector_t *col; /* back pointer (the CALL reply's argument is the slot) */
  uint32_t index;   /* which worker */
} collector_slot_t;

struct collector_s {
  _Atomic uint32_t refs;     /* one per request message still alive (worker or reply side) */
  uint32_t pending;          /* replies not yet run on the reply thread (that thread only) */
  uint32_t n;                /* workers asked */
  tdm_inbox_t *reply_to;     /* where replies go */
  tdm_worker_stats_cb cb;    /* owner's callback */
  void *arg;                 /* its argument */
  tdm_worker_stats_t *per;   /* n copies; slot i is written by worker i before it pushes its reply */
  collector_slot_t *slots;   /* n reply arguments */
};

static void collector_unref(collector_t *col)
{
  if (atomic_fetch_sub(&col->refs, 1) != 1) return;
  free(col->per);
  free(col->slots);
  free(col);
}

/* Reply thread: one worker's answer (or non-answer) arrived. */
static void collector_finish(collector_t *col)
{
  tdm_worker_stats_t total;
  tdm_worker_stats_reset(&total);
  for (uint32_t i = 0; i < col->n; i++) tdm_worker_stats_add(&total, &col->per[i]);
  col->cb(&total, col->per, col->n, col->arg);
}

static void stats_reply_run(void *arg)
{
  collector_slot_t *slot = arg;
  collector_t *col = slot->col;
  if (--col->pending == 0) collector_finish(col);
  collector_unref(col);
}

static void stats_reply_cancel(void *arg)
{
  collector_slot_t *slot = arg;
  collector_unref(slot->col); /* the reply thread's inbox is closed: nobody is waiting any more */
}

/* Turns a STATS_REQ into its CALL reply and sends it back; frees it (dropping its reference) if the
 * reply inbox is closed. Any thread. */
static void stats_send_reply(tdm_msg_t *m)
{
  collector_t *col = m->u.stats.collector;
  uint32_t index = m->u.stats.index;
  m->free_cb = NULL;
  m->kind = TDM_MSG_CALL;
  m->u.call.fn = stats_reply_run;
  m->u.call.arg = &col->slots[index];
  m->u.call.cancel = stats_reply_cancel;
  if (tdm_inbox_push(col->reply_to, m) < 0) tdm_msg_free(m);
}

/* Free hook of a STATS_REQ: never delivered (the worker's inbox closed first) -> reply with zeros. */
static void stats_req_free(tdm_msg_t *m)
{
  if (m->u.stats.collector) {
    stats_send_reply(m);
    return;
  }
  free(m);
}

int tdm_worker_stats_collect(tdm_worker_t *const *workers, size_t n, tdm_inbox_t *reply_to, tdm_worker_stats_cb cb,
                             void *arg)
{
  collector_t *col = calloc(1, sizeof(*col));
  if (!col) return TDM_ENOMEM;
  col->per = calloc(n ? n : 1, sizeof(*col->per));
  col->slots = calloc(n ? n : 1, sizeof(*col->slots));
  tdm_msg_t **msgs = calloc(n ? n : 1, sizeof(*msgs));
  bool ok = col->per && col->slots && msgs;
  for (size_t i = 0; ok && i < n; i++) ok = (msgs[i] = tdm_msg_new(TDM_MSG_STATS_REQ)) != NULL;
  if (!ok) {
    for (size_t i = 0; msgs && i < n; i++) free(msgs[i]);
    free(msgs);
    free(col->per);
    free(col->slots);
    free(col);
    return TDM_ENOMEM;
  }
  col->n = (uint32_t)n;
  col->reply_to = reply_to;
  col->cb = cb;
  col->arg = arg;
  col->pending = (uint32_t)n;
  atomic_init(&col->refs, (uint32_t)n + 1); /* + the caller's, for the loop below */
  for (size_t i = 0; i < n; i++) {
    col->slots[i].col = col;
    col->slots[i].index = (uint32_t)i;
    tdm_msg_t *m = msgs[i];
    m->free_cb = stats_req_free;
    m->u.stats.collector = col;
    m->u.stats.index = (uint32_t)i;
    if (tdm_worker_send(workers[i], m) < 0) {
      /* worker gone: counts as answered with zeros */
      free(m);
      col->pending--;
      atomic_fetch_sub(&col->refs, 1);
    }
  }
  free(msgs);
  if (col->pending == 0) collector_finish(col);
  collector_unref(col);
  return 0;
}

/* ---- the worker thread ---- */

/* Blocks asynchronous signals in the calling thread (faults stay deliverable); *old gets the mask. */
static void block_signals(sigset_t *old)
{
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  sigdelset(&all, SIGABRT);
  sigdelset(&all, SIGTRAP);
  pthread_sigmask(SIG_BLOCK, &all, old);
}

static void close_leaked(uv_handle_t *h, void *arg)
{
  tdm_worker_t *w = arg;
  if (uv_is_closing(h)) return;
  w->leaked_handles++;
  uv_close(h, NULL);
}

/* Worker thread: STOP, or a failed init. */
static void worker_shutdown(tdm_worker_t *w)
{
  if (w->stopping) return;
  w->stopping = true;
  if (w->hooks->fini) w->hooks->fini(w);
  tdm_inbox_close(&w->inbox, NULL);
  tdm_conn_ctx_close(&w->net, NULL);
  /* whatever is still open now would keep the loop alive forever */
  uv_walk(&w->loop, close_leaked, w);
  if (w->leaked_handles)
    tdm_log_error(NULL, "worker %u: %u handles left open at stop were closed by force", w->id, w->leaked_handles);
}

static void snapshot_stats(tdm_worker_t *w, tdm_worker_stats_t *out)
{
  w->stats.bytes_in = w->net.bytes_in;
  w->stats.bytes_out = w->net.bytes_out;
  w->stats.write_calls = w->net.write_calls;
  *out = w->stats;
}

static void on_msg(tdm_inbox_t *ib, tdm_msg_t *m)
{
  tdm_worker_t *w = ib->data;
  tdm_worker_msg_cb hook = ((int)m->kind >= 0 && m->kind < TDM_MSG_KIND_MAX) ? w->hooks->on_msg[m->kind] : NULL;
  w->stats.messages++;
  switch (m->kind) {
  case TDM_MSG_CALL:
    if (m->u.call.fn) m->u.call.fn(m->u.call.arg);
    break;
  case TDM_MSG_STATS_REQ: {
    if (hook) hook(w, m);
    collector_t *col = m->u.stats.collector;
    snapshot_stats(w, &col->per[m->u.stats.index]);
    stats_send_reply(m); /* the message goes back as the reply */
    return;
  }
  case TDM_MSG_STOP:
    if (hook) hook(w, m);
    worker_shutdown(w);
    break;
  default:
    if (hook) hook(w, m);
    break;
  }
  tdm_msg_free(m);
}

/* Tears down what worker_main set up when the loop cannot run; handles close through one more run. */
static void worker_main(void *arg)
{
  tdm_worker_t *w = arg;
  sigset_t unused;
  block_signals(&unused); /* inherited already; repeated in case the creator's mask changed */
  current_worker = w;
  int rc = uv_loop_init(&w->loop);
  if (rc < 0) {
    w->start_err = rc;
    uv_sem_post(&w->ready);
    current_worker = NULL;
    return;
  }
  bool inbox_ok = false, net_ok = false;
  rc = tdm_inbox_init(&w->inbox, &w->loop, on_msg, w);
  if (rc == 0) {
    inbox_ok = true;
    rc = tdm_conn_ctx_init(&w->net, &w->loop);
    net_ok = rc == 0;
  }
  if (rc == 0 && w->hooks->init) rc = w->hooks->init(w);
  w->start_err = rc;
  if (rc < 0) {
    if (inbox_ok && net_ok) {
      worker_shutdown(w);
    } else {
      if (inbox_ok) tdm_inbox_close(&w->inbox, NULL);
      uv_walk(&w->loop, close_leaked, w);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    w->loop_close_err = uv_loop_close(&w->loop);
    uv_sem_post(&w->ready);
    current_worker = NULL;
    return;
  }
  uv_sem_post(&w->ready);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  w->loop_close_err = uv_loop_close(&w->loop);
  current_worker = NULL;
}

int tdm_worker_start(tdm_worker_t *w, uint32_t id, const tdm_worker_hooks_t *hooks, void *data)
{
  static const tdm_worker_hooks_t no_hooks;
  memset(w, 0, sizeof(*w));
  w->id = id;
  w->hooks = hooks ? hooks : &no_hooks;
  w->data = data;
  w->stop_msg = tdm_msg_new(TDM_MSG_STOP);
  if (!w->stop_msg) return TDM_ENOMEM;
  int rc = uv_sem_init(&w->ready, 0);
  if (rc < 0) goto fail;
  sigset_t old;
  block_signals(&old);
  rc = uv_thread_create(&w->thread, worker_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc < 0) {
    uv_sem_destroy(&w->ready);
    goto fail;
  }
  uv_sem_wait(&w->ready);
  uv_sem_destroy(&w->ready);
  if (w->start_err < 0) {
    rc = w->start_err;
    uv_thread_join(&w->thread);
    tdm_inbox_destroy(&w->inbox);
    goto fail;
  }
  w->started = true;
  return 0;
fail:
  tdm_msg_free(w->stop_msg);
  w->stop_msg = NULL;
  return rc;
}

int tdm_worker_send(tdm_worker_t *w, tdm_msg_t *m)
{
  if (!w->started) return TDM_ECLOSED;
  return tdm_inbox_push(&w->inbox, m);
}

int tdm_worker_stop(tdm_worker_t *w)
{
  if (!w->started || !w->stop_msg) return TDM_ECLOSED;
  tdm_msg_t *m = w->stop_msg;
  w->stop_msg = NULL;
  int rc = tdm_inbox_push(&w->inbox, m);
  if (rc < 0) tdm_msg_free(m);
  return rc;
}

int tdm_worker_join(tdm_worker_t *w)
{
  if (!w->started) return TDM_EINVAL;
  uv_thread_join(&w->thread);
  w->started = false;
  tdm_inbox_destroy(&w->inbox);
  tdm_msg_free(w->stop_msg);
  w->stop_msg = NULL;
  return w->loop_close_err;
}
