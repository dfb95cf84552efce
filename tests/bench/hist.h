/* Latency histogram of the load generator, HdrHistogram-style log-linear buckets over nanoseconds:
 * values below 2^SUB_BITS are exact, above that each power of two is cut into 2^SUB_BITS equal
 * buckets, so a reported percentile is within 1/2^SUB_BITS (0.8 %) of the true value. Fixed size,
 * no allocation: recording is an index computation and an increment. A zeroed struct is empty. */
#ifndef TDM_BENCH_HIST_H
#define TDM_BENCH_HIST_H

#include <tandem/common.h>

#define TDM_BENCH_HIST_SUB_BITS 7u
#define TDM_BENCH_HIST_SUB (1u << TDM_BENCH_HIST_SUB_BITS)
/* Largest value kept exactly in its bucket: 2^40 ns (about 18 minutes); larger ones land in the last
 * bucket and count as saturated (max stays exact). */
#define TDM_BENCH_HIST_MAX_BITS 40u
#define TDM_BENCH_HIST_BUCKETS ((TDM_BENCH_HIST_MAX_BITS - TDM_BENCH_HIST_SUB_BITS + 1u) * TDM_BENCH_HIST_SUB)

typedef struct tdm_bench_hist_s {
  uint64_t counts[TDM_BENCH_HIST_BUCKETS]; /* values recorded per bucket */
  uint64_t total;                          /* sum of counts */
  uint64_t sum;                            /* sum of values (mean); wraps only past 2^64 ns in total */
  uint64_t min;                            /* smallest value; meaningless while total == 0 */
  uint64_t max;                            /* largest value; 0 while empty */
  uint64_t saturated;                      /* values above 2^TDM_BENCH_HIST_MAX_BITS - 1 */
} tdm_bench_hist_t;

/* Bucket of a value; always < TDM_BENCH_HIST_BUCKETS. */
size_t tdm_bench_hist_bucket(uint64_t v);
/* Smallest and largest value that fall into bucket b. */
uint64_t tdm_bench_hist_bucket_low(size_t b);
uint64_t tdm_bench_hist_bucket_high(size_t b);

void tdm_bench_hist_reset(tdm_bench_hist_t *h);
void tdm_bench_hist_record(tdm_bench_hist_t *h, uint64_t v);
/* Adds every value of src to dst. */
void tdm_bench_hist_merge(tdm_bench_hist_t *dst, const tdm_bench_hist_t *src);

/* Value at percentile q (0 < q <= 100): the highest value of the bucket holding the ceil(q% * total)-th
 * smallest value, clamped to [min, max]; q >= 100 gives max. 0 for an empty histogram. */
uint64_t tdm_bench_hist_percentile(const tdm_bench_hist_t *h, double q);
/* Mean value (exact: from the sum, not the buckets); 0 when empty. */
double tdm_bench_hist_mean(const tdm_bench_hist_t *h);

#endif
