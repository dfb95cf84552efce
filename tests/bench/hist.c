/* Log-linear latency histogram. Bucket layout (k = TDM_BENCH_HIST_SUB_BITS):
 *   v < 2^k:            bucket v (exact)
 *   2^m <= v < 2^(m+1), m >= k:  e = m - k, bucket (e + 1) * 2^k + ((v >> e) - 2^k)
 * so bucket b >= 2^k covers [(2^k + b % 2^k) << e, that + 2^e - 1] with e = b / 2^k - 1, and the
 * bucket width is at most 1/2^k of the values it holds. */
#include "hist.h"

size_t tdm_bench_hist_bucket(uint64_t v)
{
  const unsigned k = TDM_BENCH_HIST_SUB_BITS;
  if (v < TDM_BENCH_HIST_SUB) return (size_t)v;
  if (v >> TDM_BENCH_HIST_MAX_BITS) return TDM_BENCH_HIST_BUCKETS - 1;
  unsigned m = 63u - (unsigned)__builtin_clzll(v); /* v >= 2^k, so m >= k */
  unsigned e = m - k;
  return (size_t)(e + 1u) * TDM_BENCH_HIST_SUB + (size_t)((v >> e) - TDM_BENCH_HIST_SUB);
}

uint64_t tdm_bench_hist_bucket_low(size_t b)
{
  if (b < TDM_BENCH_HIST_SUB) return b;
  unsigned e = (unsigned)(b / TDM_BENCH_HIST_SUB) - 1u;
  return ((uint64_t)TDM_BENCH_HIST_SUB + b % TDM_BENCH_HIST_SUB) << e;
}

uint64_t tdm_bench_hist_bucket_high(size_t b)
{
  if (b < TDM_BENCH_HIST_SUB) return b;
  unsigned e = (unsigned)(b / TDM_BENCH_HIST_SUB) - 1u;
  return tdm_bench_hist_bucket_low(b) + (((uint64_t)1 << e) - 1u);
}

void tdm_bench_hist_reset(tdm_bench_hist_t *h) { memset(h, 0, sizeof(*h)); }

void tdm_bench_hist_record(tdm_bench_hist_t *h, uint64_t v)
{
  h->counts[tdm_bench_hist_bucket(v)]++;
  if (h->total == 0 || v < h->min) h->min = v;
  if (v > h->max) h->max = v;
  if (v >> TDM_BENCH_HIST_MAX_BITS) h->saturated++;
  h->total++;
  h->sum += v;
}

void tdm_bench_hist_merge(tdm_bench_hist_t *dst, const tdm_bench_hist_t *src)
{
  if (src->total == 0) return;
  for (size_t i = 0; i < TDM_BENCH_HIST_BUCKETS; i++) dst->counts[i] += src->counts[i];
  if (dst->total == 0 || src->min < dst->min) dst->min = src->min;
  if (src->max > dst->max) dst->max = src->max;
  dst->total += src->total;
  dst->sum += src->sum;
  dst->saturated += src->saturated;
}

uint64_t tdm_bench_hist_percentile(const tdm_bench_hist_t *h, double q)
{
  if (h->total == 0) return 0;
  if (q >= 100.0) return h->max;
  if (q < 0.0) q = 0.0;
  /* rank of the value wanted, 1-based: ceil(q / 100 * total), at least 1 */
  double want = q / 100.0 * (double)h->total;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want) rank++;
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t b = 0; b < TDM_BENCH_HIST_BUCKETS; b++) {
    seen += h->counts[b];
    if (seen >= rank) {
      uint64_t v = tdm_bench_hist_bucket_high(b);
      if (v > h->max) v = h->max;
      if (v < h->min) v = h->min;
      return v;
    }
  }
  return h->max; /* unreachable while total == sum of counts */
}

double tdm_bench_hist_mean(const tdm_bench_hist_t *h)
{
  return h->total ? (double)h->sum / (double)h->total : 0.0;
}
