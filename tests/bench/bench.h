/* tdm-bench's runtime objects: a run shared by every thread (its clock edges and barriers), workers
 * (one thread + one uv loop + its connections + its histogram) and client connections (socket,
 * handshake state, stream-id slots). Threads share only tdm_bench_run_t, written by the main thread
 * before the barrier that publishes it. */
#ifndef TDM_BENCH_BENCH_H
#define TDM_BENCH_BENCH_H

#include <pthread.h>
#include <uv.h>

#include "hist.h"
#include "opts.h"
#include "stmt.h"
#include "wire.h"

typedef struct tdm_bench_worker_s tdm_bench_worker_t;

/* Connection states, in order; only conn.c's set_state() writes them. */
typedef enum tdm_bench_conn_state {
  TDM_BENCH_CONN_CONNECTING = 0, /* TCP connect in progress */
  TDM_BENCH_CONN_STARTUP,        /* STARTUP sent, waiting for READY or AUTHENTICATE */
  TDM_BENCH_CONN_AUTH,           /* AUTH_RESPONSE sent, waiting for AUTH_SUCCESS */
  TDM_BENCH_CONN_DDL,            /* setup connection: running the DDL one statement at a time */
  TDM_BENCH_CONN_PREPARE,        /* PREPAREs sent, waiting for both PREPARED */
  TDM_BENCH_CONN_READY,          /* handshake done; load requests may be sent */
  TDM_BENCH_CONN_CLOSING,        /* uv_close called */
  TDM_BENCH_CONN_STATE_MAX       /* sentinel */
} tdm_bench_conn_state_t;

/* What a connection does after STARTUP. */
typedef enum tdm_bench_conn_role {
  TDM_BENCH_ROLE_LOAD = 0, /* PREPARE, then load */
  TDM_BENCH_ROLE_SETUP,    /* DDL, then done */
  TDM_BENCH_ROLE_IDLE,     /* nothing: held open for the memory test */
} tdm_bench_conn_role_t;

typedef struct tdm_bench_conn_s {
  uv_tcp_t tcp;                     /* the socket; data points back to the conn */
  uv_connect_t connect_req;         /* pending connect */
  uv_write_t write_req;             /* the one uv_write in flight (when writing) */
  tdm_bench_worker_t *worker;       /* owner */
  uint32_t index;                   /* position in the worker's array */
  tdm_bench_conn_state_t state;     /* see above */
  tdm_bench_conn_role_t role;       /* see above */
  tdm_bench_wire_t wire;            /* framing and the output buffer */
  uint8_t *rbuf;                    /* read buffer: rbuf[0..rlen) are unconsumed input bytes */
  size_t rlen;                      /* bytes in rbuf */
  size_t rcap;                      /* bytes allocated at rbuf */
  uint8_t *wbuf;                    /* bytes uv_write is sending (slow path only) */
  size_t wcap;                      /* bytes allocated at wbuf */
  bool writing;                     /* a uv_write is in flight; new output waits in wire.out */
  bool open;                        /* tcp was initialised (must be closed) */
  unsigned step;                    /* DDL: statement being run; PREPARE: op after the one outstanding */
  tdm_bench_tmpl_t tmpl[TDM_BENCH_OPS]; /* EXECUTE templates of this connection's prepared ids */
  uint64_t *sent_at;                /* per stream id: start time (ns) of the request using it */
  uint8_t *op;                      /* per stream id: tdm_bench_op_t of that request */
  int16_t *free_ids;                /* stack of unused stream ids in [0, inflight) */
  uint32_t n_free;                  /* entries in free_ids; inflight - n_free requests are outstanding */
  uint64_t rng;                     /* xorshift64 state: keys and mix choices */
  bool dirty;                       /* has unsent output; on the worker's dirty list */
  struct tdm_bench_conn_s *next_dirty; /* dirty list link */
} tdm_bench_conn_t;

/* Everything the main thread decides for all workers; read-only once the second barrier passed. */
typedef struct tdm_bench_run_s {
  const tdm_bench_opts_t *o;   /* options */
  pthread_barrier_t barrier;   /* threads + main: handshake done / go / load done / close */
  uint64_t t0;                 /* load start (ns, uv_hrtime clock) */
  uint64_t t_measure;          /* end of warm-up: measuring starts */
  uint64_t t_stop;             /* duration mode: no request is started at or after this; else UINT64_MAX */
  bool abort;                  /* a worker failed during the handshake: skip the load */
} tdm_bench_run_t;

struct tdm_bench_worker_s {
  uv_loop_t loop;             /* this worker's loop */
  pthread_t thread;           /* its thread (not used by the setup worker, which runs on main) */
  tdm_bench_run_t *run;       /* shared run */
  const tdm_bench_opts_t *o;  /* == run->o */
  uint32_t id;                /* worker number */
  tdm_bench_conn_t *conns;    /* n_conns connections */
  uint32_t n_conns;           /* connections of this worker */
  uint32_t n_ready;           /* connections in READY (or done, for setup) */
  uint32_t n_connecting;      /* connects + handshakes in progress (idle mode limits them) */
  uint32_t n_started;         /* connections whose connect was started */
  uint32_t n_open;            /* tcp handles not yet closed */
  int err;                    /* first failure; the run is void when set */
  char err_text[256];         /* its description */
  bool load;                  /* load phase: responses are timed and slots refilled */
  bool stopping;              /* no more requests are started */
  bool measuring;             /* past t_measure: responses are recorded */
  uint64_t quota;             /* requests mode: measured requests this worker completes; 0 = duration */
  uint64_t started_measured;  /* requests started since measuring began */
  uint64_t inflight;          /* requests outstanding over all connections */
  uint64_t completed;         /* measured successful responses */
  uint64_t errors;            /* measured ERROR responses */
  uint64_t by_op[TDM_BENCH_OPS]; /* measured successful responses per operation */
  uint64_t lost;              /* requests without a response at the drain deadline */
  uint64_t t_last;            /* time of the last measured response */
  uint64_t t_stopped;         /* when stopping was set: the drain deadline counts from here */
  char first_error[256];      /* first ERROR message seen during the load */
  tdm_bench_hist_t hist;      /* latency of measured successful responses, ns */
  uv_timer_t ticker;          /* 2 ms: measuring start, stop and drain deadline checks */
  uv_timer_t handshake_timer; /* connect + handshake deadline (data != NULL once initialised) */
  uv_poll_t rate_poll;        /* open loop: readable when the timerfd fires */
  bool rate_polling;          /* rate_poll was initialised (must be closed) */
  uint64_t rate_t0;           /* open loop: scheduled time of this worker's request 0 */
  int rate_fd;                /* open loop: timerfd, -1 otherwise */
  uint64_t rate_interval;     /* open loop: ns between this worker's scheduled requests */
  uint64_t rate_next;         /* open loop: index of the next scheduled request */
  uint32_t rr;                /* open loop: next connection to try */
  tdm_bench_conn_t *dirty;    /* connections with output to flush */
  bool done;                  /* load finished (or failed); the loop was stopped */
};

/* conn.c */
TDM_MUSTCHECK int tdm_bench_conn_start(tdm_bench_conn_t *c);
/* Starts one load request on c with start time t (ns); the caller guarantees a free stream id. */
TDM_MUSTCHECK int tdm_bench_conn_send(tdm_bench_conn_t *c, uint64_t t);
/* Writes what c has queued (one write syscall). */
void tdm_bench_conn_flush(tdm_bench_conn_t *c);
void tdm_bench_conn_close(tdm_bench_conn_t *c);
void tdm_bench_conn_free(tdm_bench_conn_t *c);
/* Marks the worker failed with a message (first failure wins) and stops its loop. */
void tdm_bench_worker_fail(tdm_bench_worker_t *w, int err, const char *fmt, ...) TDM_PRINTF(3, 4);

/* load.c: hooks the connections call. */
void tdm_bench_load_on_ready(tdm_bench_worker_t *w, tdm_bench_conn_t *c);
/* After c processed a batch of responses (at time now). */
void tdm_bench_load_on_responses(tdm_bench_worker_t *w, tdm_bench_conn_t *c, uint64_t now);

#endif
