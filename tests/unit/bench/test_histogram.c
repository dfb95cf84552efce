/* tdm-bench's latency histogram (tests/bench/hist.c, compiled in here): bucket bounds cover every value
 * with at most 1/128 relative width, percentiles follow the ceil(q * n) rank rule exactly in the exact
 * range and within the bucket width above it, and merging equals recording everything in one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../bench/hist.c"

static tdm_bench_hist_t *new_hist(void)
{
  tdm_bench_hist_t *h = calloc(1, sizeof(*h)); /* zeroed = empty (and too big for the stack budget) */
  assert_non_null(h);
  return h;
}

/* Every value lies inside its bucket; buckets are ordered and no wider than 1/128 of their values. */
static void test_bucket_bounds(void **state)
{
  (void)state;
  uint64_t probes[4096];
  size_t n = 0;
  for (uint64_t v = 0; v < 300; v++) probes[n++] = v;
  for (unsigned b = 7; b < 40; b++) {
    uint64_t p = (uint64_t)1 << b;
    probes[n++] = p - 1;
    probes[n++] = p;
    probes[n++] = p + 1;
    probes[n++] = p + p / 3;
  }
  uint32_t x = 12345;
  while (n < TDM_ARRAY_SIZE(probes)) {
    x = x * 1103515245u + 12345u;
    probes[n++] = ((uint64_t)x << 8) >> (x % 24);
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t v = probes[i];
    size_t b = tdm_bench_hist_bucket(v);
    assert_true(b < TDM_BENCH_HIST_BUCKETS);
    assert_true(tdm_bench_hist_bucket_low(b) <= v);
    assert_true(v <= tdm_bench_hist_bucket_high(b));
    uint64_t width = tdm_bench_hist_bucket_high(b) - tdm_bench_hist_bucket_low(b) + 1;
    if (v < 128) assert_int_equal(width, 1);
    else assert_true(width * 128 <= tdm_bench_hist_bucket_low(b));
  }
  /* consecutive buckets tile the range with no gap and no overlap */
  for (size_t b = 1; b < TDM_BENCH_HIST_BUCKETS; b++)
    assert_int_equal(tdm_bench_hist_bucket_low(b), tdm_bench_hist_bucket_high(b - 1) + 1);
}

/* 1..100 (all exact buckets): the rank rule ceil(q/100 * n) gives these exact answers. */
static void test_percentiles_exact_range(void **state)
{
  (void)state;
  tdm_bench_hist_t *h = new_hist();
  for (uint64_t v = 100; v >= 1; v--) tdm_bench_hist_record(h, v); /* order must not matter */
  assert_int_equal(h->total, 100);
  assert_int_equal(tdm_bench_hist_percentile(h, 1), 1);
  assert_int_equal(tdm_bench_hist_percentile(h, 50), 50);
  assert_int_equal(tdm_bench_hist_percentile(h, 50.5), 51);
  assert_int_equal(tdm_bench_hist_percentile(h, 90), 90);
  assert_int_equal(tdm_bench_hist_percentile(h, 99), 99);
  assert_int_equal(tdm_bench_hist_percentile(h, 99.9), 100);
  assert_int_equal(tdm_bench_hist_percentile(h, 100), 100);
  assert_int_equal(tdm_bench_hist_percentile(h, 0), 1);
  assert_true(tdm_bench_hist_mean(h) == 50.5);
  free(h);
}

/* Latencies of 1..100000 us in ns, each once: percentiles within one bucket width (0.8 %) above the
 * true value, never below it; max and mean exact. */
static void test_percentiles_log_range(void **state)
{
  (void)state;
  tdm_bench_hist_t *h = new_hist();
  for (uint64_t us = 1; us <= 100000; us++) tdm_bench_hist_record(h, us * 1000);
  const double qs[] = { 10, 50, 90, 99, 99.9, 99.99 };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(qs); i++) {
    uint64_t truth = (uint64_t)(qs[i] * 1000.0 + 0.5) * 1000; /* rank q% of 100000 values, in ns */
    uint64_t got = tdm_bench_hist_percentile(h, qs[i]);
    assert_true(got >= truth);
    assert_true((double)(got - truth) <= (double)truth / 128.0);
  }
  assert_int_equal(tdm_bench_hist_percentile(h, 100), 100000000);
  assert_int_equal(h->max, 100000000);
  assert_int_equal(h->min, 1000);
  assert_true(tdm_bench_hist_mean(h) == 50000500.0);
  free(h);
}

/* A bimodal distribution: 99 % fast, 1 % slow. p99 is still fast, p99.5 slow. */
static void test_percentiles_bimodal(void **state)
{
  (void)state;
  tdm_bench_hist_t *h = new_hist();
  for (int i = 0; i < 9900; i++) tdm_bench_hist_record(h, 50000);   /* 50 us */
  for (int i = 0; i < 100; i++) tdm_bench_hist_record(h, 5000000);  /* 5 ms */
  assert_true(tdm_bench_hist_percentile(h, 99) <= 50000 + 50000 / 128);
  assert_true(tdm_bench_hist_percentile(h, 99.5) >= 5000000);
  assert_int_equal(tdm_bench_hist_percentile(h, 99.5), 5000000); /* clamped to the max */
  free(h);
}

static void test_empty_and_single(void **state)
{
  (void)state;
  tdm_bench_hist_t *h = new_hist();
  assert_int_equal(tdm_bench_hist_percentile(h, 50), 0);
  assert_true(tdm_bench_hist_mean(h) == 0.0);
  tdm_bench_hist_record(h, 123456789);
  /* one value: every percentile is that value (bucket bound clamped to min and max) */
  assert_int_equal(tdm_bench_hist_percentile(h, 0.1), 123456789);
  assert_int_equal(tdm_bench_hist_percentile(h, 50), 123456789);
  assert_int_equal(tdm_bench_hist_percentile(h, 100), 123456789);
  tdm_bench_hist_reset(h);
  assert_int_equal(h->total, 0);
  assert_int_equal(tdm_bench_hist_percentile(h, 50), 0);
  free(h);
}

static void test_saturation(void **state)
{
  (void)state;
  tdm_bench_hist_t *h = new_hist();
  uint64_t huge = (uint64_t)1 << 50;
  tdm_bench_hist_record(h, 10);
  tdm_bench_hist_record(h, huge);
  assert_int_equal(h->saturated, 1);
  assert_int_equal(h->counts[TDM_BENCH_HIST_BUCKETS - 1], 1);
  assert_int_equal(tdm_bench_hist_percentile(h, 100), huge);
  assert_int_equal(tdm_bench_hist_percentile(h, 50), 10);
  free(h);
}

/* Two halves merged equal one histogram that saw everything, bucket for bucket. */
static void test_merge(void **state)
{
  (void)state;
  tdm_bench_hist_t *all = new_hist(), *a = new_hist(), *b = new_hist(), *empty = new_hist();
  uint32_t x = 7;
  for (int i = 0; i < 20000; i++) {
    x = x * 1664525u + 1013904223u;
    uint64_t v = 1000 + x % 3000000;
    tdm_bench_hist_record(all, v);
    tdm_bench_hist_record(i % 3 ? a : b, v);
  }
  tdm_bench_hist_merge(empty, b); /* into an empty one: min must come from src */
  tdm_bench_hist_merge(empty, a);
  assert_memory_equal(empty->counts, all->counts, sizeof(all->counts));
  assert_int_equal(empty->total, all->total);
  assert_int_equal(empty->sum, all->sum);
  assert_int_equal(empty->min, all->min);
  assert_int_equal(empty->max, all->max);
  assert_int_equal(tdm_bench_hist_percentile(empty, 99.9), tdm_bench_hist_percentile(all, 99.9));
  free(all);
  free(a);
  free(b);
  free(empty);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bucket_bounds),        cmocka_unit_test(test_percentiles_exact_range),
    cmocka_unit_test(test_percentiles_log_range), cmocka_unit_test(test_percentiles_bimodal),
    cmocka_unit_test(test_empty_and_single),     cmocka_unit_test(test_saturation),
    cmocka_unit_test(test_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
