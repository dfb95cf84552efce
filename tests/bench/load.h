/* Worker threads of tdm-bench: set-up of a worker and its connections, the connect + handshake phase
 * (also used on the main thread for the set-up connection and the idle-connection test), the thread
 * body that runs the measured load between the run's barriers, and teardown. */
#ifndef TDM_BENCH_LOAD_H
#define TDM_BENCH_LOAD_H

#include "bench.h"

/* Prepares w with n_conns connections numbered from first_index, all of one role. */
TDM_MUSTCHECK int tdm_bench_worker_init(tdm_bench_worker_t *w, tdm_bench_run_t *run, uint32_t id, uint32_t n_conns,
                                        uint32_t first_index, tdm_bench_conn_role_t role);
/* Connects and runs every connection's handshake on the calling thread, at most batch at a time
 * (0: all at once). Returns when all are ready: 0, or the first failure (w->err_text says which). */
TDM_MUSTCHECK int tdm_bench_worker_connect(tdm_bench_worker_t *w, uint32_t batch);
/* Thread body: connect, barrier B1, B2, load, B3, B4, close. */
void *tdm_bench_worker_main(void *arg);
/* Closes every handle of w and runs its loop until they are gone. */
void tdm_bench_worker_close(tdm_bench_worker_t *w);
/* Frees what init and the connections allocated; after close. */
void tdm_bench_worker_free(tdm_bench_worker_t *w);

#endif
