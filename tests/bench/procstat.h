/* CPU time and memory of other processes (the proxy, the mock nodes) from /proc, and of tdm-bench
 * itself from getrusage, sampled at the edges of the measured interval. */
#ifndef TDM_BENCH_PROCSTAT_H
#define TDM_BENCH_PROCSTAT_H

#include <tandem/common.h>

typedef struct tdm_bench_proc_sample_s {
  uint64_t cpu_ticks; /* utime + stime from /proc/PID/stat, in clock ticks (all threads) */
  uint64_t cpu_ns;    /* sum over /proc/PID/task/<tid>/schedstat of on-CPU ns (live threads); 0 if unavailable */
  uint64_t rss_kib;   /* VmRSS from /proc/PID/status */
  uint64_t hwm_kib;   /* VmHWM: peak RSS */
} tdm_bench_proc_sample_t;

/* Samples pid; TDM_ENOTFOUND when the process is gone or /proc is unreadable. */
TDM_MUSTCHECK int tdm_bench_proc_sample(int pid, tdm_bench_proc_sample_t *out);
/* CPU seconds between two samples, from the tick counters (the figure /proc/PID/stat gives). */
double tdm_bench_proc_cpu_seconds(const tdm_bench_proc_sample_t *a, const tdm_bench_proc_sample_t *b);
/* User + system seconds of this process so far (all threads). */
double tdm_bench_self_cpu_seconds(void);

#endif
