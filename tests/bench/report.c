/* Rendering of tdm-bench results. Latencies are reported in microseconds with one decimal; the
 * "spectrum" lists the latency at percentiles 10..90 and then at 1 - 2^-k (HdrHistogram's plot
 * shape), up to the maximum, for the percentile plot of docs/performance.md. */
#include <inttypes.h>

#include <tandem/proto/opcodes.h>

#include "report.h"

static double us(uint64_t ns) { return (double)ns / 1000.0; }

static double throughput(const tdm_bench_result_t *r)
{
  return r->elapsed_s > 0 ? (double)r->completed / r->elapsed_s : 0.0;
}

static double per_req_us(double seconds, uint64_t n) { return n ? seconds * 1e6 / (double)n : 0.0; }

void tdm_bench_json_string(FILE *out, const char *s)
{
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f) fprintf(out, "\\u%04x", *p);
    else fputc(*p, out);
  }
  fputc('"', out);
}

void tdm_bench_report_text(FILE *out, const tdm_bench_result_t *r)
{
  const tdm_bench_opts_t *o = r->o;
  if (r->failed) {
    fprintf(out, "tdm-bench: FAILED: %s\n", r->failure);
    return;
  }
  if (o->idle) {
    fprintf(out, "tdm-bench: %u idle connections held\n", r->idle);
  } else {
    fprintf(out,
            "tdm-bench: %s v%u%s %s x%u inflight %u pipeline %u%s: %" PRIu64 " ok, %" PRIu64 " errors, %" PRIu64
            " lost in %.2f s = %.0f req/s\n",
            tdm_bench_workload_name(o->workload), o->protocol,
            o->compression ? tdm_compression_name(o->compression) : "", o->label, o->connections, o->inflight,
            o->pipeline, o->rate > 0 ? " (open loop)" : "", r->completed, r->errors, r->lost, r->elapsed_s,
            throughput(r));
    const tdm_bench_hist_t *h = &r->hist;
    fprintf(out, "  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
            us(tdm_bench_hist_percentile(h, 50)), us(tdm_bench_hist_percentile(h, 90)),
            us(tdm_bench_hist_percentile(h, 99)), us(tdm_bench_hist_percentile(h, 99.9)), us(h->max),
            tdm_bench_hist_mean(h) / 1000.0);
    fprintf(out, "  client cpu: %.2f us/req\n", per_req_us(r->client_cpu_s, r->completed));
    if (r->first_error[0]) fprintf(out, "  first error: %s\n", r->first_error);
  }
  for (size_t i = 0; i < o->n_pids; i++) {
    const tdm_bench_proc_result_t *p = &r->procs[i];
    if (!p->ok) {
      fprintf(out, "  %s (pid %d): not sampled (gone?)\n", o->pids[i].name, o->pids[i].pid);
      continue;
    }
    fprintf(out, "  %s (pid %d): cpu %.2f us/req (%.2f s), rss %" PRIu64 " KiB\n", o->pids[i].name, o->pids[i].pid,
            per_req_us(p->cpu_s, r->completed), p->cpu_s, p->rss_kib);
  }
}

static void spectrum(FILE *out, const tdm_bench_hist_t *h)
{
  fputs("\"spectrum\":[", out);
  bool first = true;
  for (int p = 10; p <= 90; p += 10) {
    fprintf(out, "%s[%d,%.1f]", first ? "" : ",", p, us(tdm_bench_hist_percentile(h, p)));
    first = false;
  }
  for (int k = 4; k <= 17; k++) {
    double q = 100.0 * (1.0 - 1.0 / (double)(1u << k));
    if ((double)h->total * (1.0 - q / 100.0) < 1.0) break; /* fewer than one value beyond: max says it */
    fprintf(out, ",[%.6g,%.1f]", q, us(tdm_bench_hist_percentile(h, q)));
  }
  fprintf(out, ",[100,%.1f]]", us(h->max));
}

void tdm_bench_report_json(FILE *out, const tdm_bench_result_t *r)
{
  const tdm_bench_opts_t *o = r->o;
  const tdm_bench_hist_t *h = &r->hist;
  fputs("{\"workload\":", out);
  tdm_bench_json_string(out, o->idle ? "idle" : tdm_bench_workload_name(o->workload));
  fprintf(out, ",\"protocol\":%u,\"compression\":\"%s\",\"path\":", o->protocol, tdm_compression_name(o->compression));
  tdm_bench_json_string(out, o->label);
  fprintf(out, ",\"ok\":%s", r->failed ? "false" : "true");
  if (r->failed) {
    fputs(",\"failure\":", out);
    tdm_bench_json_string(out, r->failure);
  }
  if (o->idle) {
    fprintf(out, ",\"idle_connections\":%u", r->idle);
  } else {
    fprintf(out,
            ",\"connections\":%u,\"inflight\":%u,\"pipeline\":%u,\"threads\":%u,\"rate\":%.0f,\"requests\":%" PRIu64
            ",\"errors\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"inserts\":%" PRIu64 ",\"selects\":%" PRIu64
            ",\"elapsed_s\":%.3f,\"throughput_rps\":%.1f",
            o->connections, o->inflight, o->pipeline, o->threads, o->rate, r->completed, r->errors, r->lost,
            r->by_op[0], r->by_op[1], r->elapsed_s, throughput(r));
    fprintf(out, ",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f",
            us(tdm_bench_hist_percentile(h, 50)), us(tdm_bench_hist_percentile(h, 90)),
            us(tdm_bench_hist_percentile(h, 99)), us(tdm_bench_hist_percentile(h, 99.9)), us(h->max),
            tdm_bench_hist_mean(h) / 1000.0);
    fprintf(out, ",\"client_cpu_us_per_req\":%.3f,", per_req_us(r->client_cpu_s, r->completed));
    spectrum(out, h);
    if (r->first_error[0]) {
      fputs(",\"first_error\":", out);
      tdm_bench_json_string(out, r->first_error);
    }
  }
  fputs(",\"procs\":{", out);
  for (size_t i = 0; i < o->n_pids; i++) {
    const tdm_bench_proc_result_t *p = &r->procs[i];
    fprintf(out, "%s", i ? "," : "");
    tdm_bench_json_string(out, o->pids[i].name);
    if (!p->ok) {
      fprintf(out, ":{\"pid\":%d,\"ok\":false}", o->pids[i].pid);
      continue;
    }
    fprintf(out, ":{\"pid\":%d,\"ok\":true,\"rss_kib\":%" PRIu64 ",\"hwm_kib\":%" PRIu64, o->pids[i].pid, p->rss_kib,
            p->hwm_kib);
    if (!o->idle)
      fprintf(out, ",\"cpu_s\":%.3f,\"cpu_sched_s\":%.4f,\"cpu_us_per_req\":%.3f,\"cpu_sched_us_per_req\":%.3f", p->cpu_s,
              p->cpu_sched_s, per_req_us(p->cpu_s, r->completed), per_req_us(p->cpu_sched_s, r->completed));
    fputc('}', out);
  }
  fputs("}}\n", out);
  fflush(out);
}
