/* A worker: one thread running one uv_loop_t, fed only through its inbox (rule 8), owning its
 * connections, pools and counters for life (rule 7). The proxy core plugs in through an init hook,
 * a fini hook and a per-message-kind handler table. Worker threads block asynchronous signals so
 * only the main loop handles them (rule 14). Counters are declared once with TDM_WORKER_STATS and
 * aggregated by message: STATS_REQ to every worker, each copies its own, replies reach the main loop.
 *
 *   main thread                     worker thread (per worker)
 *   tdm_worker_start ── create ──►  loop + inbox + net ctx, init hook, uv_run
 *   tdm_worker_send(msg) ─inbox──►  on_msg[kind](w, msg)
 *   tdm_worker_stop ──── STOP ───►  fini hook, close inbox + net ctx, loop ends
 *   tdm_worker_join ◄── thread exits, uv_loop_close */
#ifndef TANDEM_CORE_WORKER_H
#define TANDEM_CORE_WORKER_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/core/inbox.h>
#include <tandem/net/conn.h>

/* X(name, help): every per-worker counter, in export order (rule 17). */
#define TDM_WORKER_STATS(X)                                                                          \
  X(read_yields, "read callbacks that stopped early to let other connections run")                  \
  X(bytes_in, "bytes read from sockets")                                                            \
  X(bytes_out, "bytes written to sockets")                                                          \
  X(write_calls, "socket writes issued (each carries a batch of queued frames)")                    \
  X(messages, "inbox messages handled")

/* One uint64_t per TDM_WORKER_STATS entry; the help text there documents each field. */
typedef struct tdm_worker_stats_s {
#define TDM_WORKER_STATS_FIELD(name, help) uint64_t name;
  TDM_WORKER_STATS(TDM_WORKER_STATS_FIELD)
#undef TDM_WORKER_STATS_FIELD
} tdm_worker_stats_t;

enum {
#define TDM_WORKER_STATS_COUNT_ONE(name, help) +1
  TDM_WORKER_STATS_COUNT = 0 TDM_WORKER_STATS(TDM_WORKER_STATS_COUNT_ONE)
#undef TDM_WORKER_STATS_COUNT_ONE
};

extern const char *const tdm_worker_stats_names[TDM_WORKER_STATS_COUNT]; /* "read_yields", ... */
extern const char *const tdm_worker_stats_help[TDM_WORKER_STATS_COUNT];
void tdm_worker_stats_reset(tdm_worker_stats_t *s);
void tdm_worker_stats_add(tdm_worker_stats_t *dst, const tdm_worker_stats_t *src);
/* Counter number i (< TDM_WORKER_STATS_COUNT) in declaration order. */
uint64_t tdm_worker_stats_get(const tdm_worker_stats_t *s, size_t i);

typedef struct tdm_worker_s tdm_worker_t;
typedef void (*tdm_worker_msg_cb)(tdm_worker_t *w, tdm_msg_t *m);

/* How the owner plugs in. Message handlers do not own the message: take what you keep by clearing it
 * (conn.fd = -1, conf.ptr = NULL); the worker frees the rest afterwards. */
typedef struct tdm_worker_hooks_s {
  int (*init)(tdm_worker_t *w);  /* worker thread, before any message; < 0 fails tdm_worker_start */
  void (*fini)(tdm_worker_t *w); /* worker thread, on STOP (or failed init): close every owner handle */
  /* Per kind. STATS_REQ: runs before the counters are copied (refresh gauges). CALL is built in
   * (fn(arg)) and STOP runs fini after this hook. A NULL entry just frees the message. */
  tdm_worker_msg_cb on_msg[TDM_MSG_KIND_MAX];
} tdm_worker_hooks_t;

struct tdm_worker_s {
  uint32_t id;                     /* 0..workers-1 */
  uv_thread_t thread;              /* the worker thread */
  uv_loop_t loop;                  /* its loop */
  tdm_inbox_t inbox;               /* its only input from other threads */
  tdm_conn_ctx_t net;              /* flush scheduler and pools for its connections */
  const tdm_worker_hooks_t *hooks; /* owner callbacks */
  void *data;                      /* owner's pointer */
  tdm_worker_stats_t stats;        /* counters, written only by this thread */
  tdm_msg_t *stop_msg;             /* preallocated STOP, so stopping cannot fail for memory */
  uv_sem_t ready;                  /* posted once init has run (start waits on it) */
  int start_err;                   /* init result reported to tdm_worker_start */
  int loop_close_err;              /* uv_loop_close result at exit (0: no handle left) */
  uint32_t leaked_handles;         /* handles still open after fini, closed by force (a bug) */
  bool started;                    /* thread created and init succeeded */
  bool stopping;                   /* STOP handled (worker thread) */
};

/* Creates the thread and waits for the init hook; returns its result (0 or negative). On failure
 * the thread has already exited and been joined. */
int tdm_worker_start(tdm_worker_t *w, uint32_t id, const tdm_worker_hooks_t *hooks, void *data);
/* Any thread: queues m for the worker. 0 or TDM_ECLOSED (the caller keeps m). */
int tdm_worker_send(tdm_worker_t *w, tdm_msg_t *m);
/* The starting thread, once: asks the worker to stop (immediate; send DRAIN first for a graceful end). */
int tdm_worker_stop(tdm_worker_t *w);
/* Waits for the thread; returns its uv_loop_close result (0 = every handle was closed). */
int tdm_worker_join(tdm_worker_t *w);
/* The worker running the calling thread, NULL on other threads. */
tdm_worker_t *tdm_worker_current(void);

/* Receives the aggregated counters on the thread that owns reply_to: the sum and each worker's copy
 * (a worker that could not answer contributes zeros). */
typedef void (*tdm_worker_stats_cb)(const tdm_worker_stats_t *total, const tdm_worker_stats_t *per_worker,
                                    size_t n, void *arg);
/* Sends STATS_REQ to each of workers[0..n); each worker replies with a CALL message on reply_to (the
 * caller's inbox, whose handler must run CALL messages: fn(arg), then free). cb runs once, when the
 * last reply arrives (synchronously when no worker could be asked). 0 or TDM_ENOMEM. */
int tdm_worker_stats_collect(tdm_worker_t *const *workers, size_t n, tdm_inbox_t *reply_to, tdm_worker_stats_cb cb,
                             void *arg);

#endif
