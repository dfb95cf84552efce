/* Results of one tdm-bench run and their two renderings: a human summary (stderr) and one JSON object
 * per line (stdout, --json) with the fields tests/bench/run.sh collects into build/bench/results.json. */
#ifndef TDM_BENCH_REPORT_H
#define TDM_BENCH_REPORT_H

#include "hist.h"
#include "opts.h"
#include "procstat.h"

typedef struct tdm_bench_proc_result_s {
  bool ok;                 /* both samples were taken */
  double cpu_s;            /* CPU seconds over the measured interval (/proc/PID/stat ticks) */
  double cpu_sched_s;      /* the same from schedstat (ns resolution, live threads only) */
  uint64_t rss_kib;        /* RSS at the end of the interval */
  uint64_t hwm_kib;        /* peak RSS so far */
} tdm_bench_proc_result_t;

typedef struct tdm_bench_result_s {
  const tdm_bench_opts_t *o;       /* the run's options */
  bool failed;                     /* the run did not complete; failure says why */
  char failure[256];               /* reason, when failed */
  uint64_t completed;              /* measured successful responses */
  uint64_t errors;                 /* measured ERROR responses */
  uint64_t lost;                   /* requests never answered before the drain deadline */
  uint64_t by_op[2];               /* completed INSERTs, SELECTs */
  double elapsed_s;                /* measured interval: t_measure to the last measured response */
  double client_cpu_s;             /* tdm-bench's own CPU seconds over the interval */
  char first_error[256];           /* first ERROR message, if any */
  uint32_t idle;                   /* idle mode: connections held */
  tdm_bench_hist_t hist;           /* latencies, ns */
  tdm_bench_proc_result_t procs[TDM_BENCH_MAX_PIDS]; /* per --sample-pid, same order */
} tdm_bench_result_t;

void tdm_bench_report_text(FILE *out, const tdm_bench_result_t *r);
void tdm_bench_report_json(FILE *out, const tdm_bench_result_t *r);
/* Writes s as a JSON string literal (quotes included). */
void tdm_bench_json_string(FILE *out, const char *s);

#endif
