/* core/proxy_stats: summing the per-worker counters generated from TDM_PROXY_COUNTERS (every field,
 * arrays and histograms included) and histogram observation against the configured bounds
 * (Prometheus `le` semantics: a value equal to a bound belongs to that bound's bucket). */
#include <testlib.h>
#include <tandem/core/proxy.h>

/* Fills every uint64 of the struct by walking it as words: counters, arrays and histogram counts. The
 * double sum_ms fields are set separately. */
static void fill_words(tdm_proxy_stats_t *s, uint64_t base)
{
  memset(s, 0, sizeof(*s));
#define SET(name) s->name = base + __LINE__;
  TDM_PROXY_COUNTERS(SET)
#undef SET
  for (int k = 0; k < 3; k++)
    for (int e = 0; e < TDM_REQERR_MAX; e++)
      s->requests_failed[k][e] = base + 100 + (uint64_t)(k * 10 + e);
  for (int v = 0; v < 8; v++)
    s->client_versions[v] = base + 200 + (uint64_t)v;
  for (int k = 0; k < 3; k++)
    for (int f = 0; f < 2; f++)
      s->write_divergence[k][f] = base + 300 + (uint64_t)(k * 2 + f);
  tdm_hist_t *h[10] = { &s->proxy_latency[0], &s->proxy_latency[1], &s->proxy_latency[2], &s->pool_queue_wait };
  int nh = 4;
  for (int c = 0; c < 3; c++)
    for (int t = 0; t < 2; t++)
      h[nh++] = &s->cluster_latency[c][t];
  for (int i = 0; i < nh; i++) {
    for (int b = 0; b <= TDM_HIST_MAX_BUCKETS; b++)
      h[i]->counts[b] = base + 400 + (uint64_t)(i * 40 + b);
    h[i]->count = base + 900 + (uint64_t)i;
    h[i]->sum_ms = (double)base + 0.5 * i;
  }
}

/* Every word of a + b must be the sum of the two words (uint64 counters, array entries, bucket
 * counts); the only exceptions allowed are the ten histograms' sum_ms doubles, summed as doubles. A
 * field the generated code forgot would keep a's value and fail both checks. */
static void test_add_every_field(void **state)
{
  tdm_proxy_stats_t a, x, y;
  fill_words(&a, 1000);
  fill_words(&x, 1000);
  fill_words(&y, 5000);
  tdm_proxy_stats_add(&a, &y);
  const uint64_t *px = (const uint64_t *)&x, *py = (const uint64_t *)&y, *pa = (const uint64_t *)&a;
  size_t words = sizeof(tdm_proxy_stats_t) / sizeof(uint64_t), as_int = 0, as_double = 0;
  for (size_t i = 0; i < words; i++) {
    if (px[i] + py[i] == pa[i]) {
      as_int++;
      continue;
    }
    double dx, dy, da;
    memcpy(&dx, &px[i], 8);
    memcpy(&dy, &py[i], 8);
    memcpy(&da, &pa[i], 8);
    if (da != dx + dy)
      fail_msg("word %zu: %llu + %llu != %llu", i, (unsigned long long)px[i], (unsigned long long)py[i],
               (unsigned long long)pa[i]);
    as_double++;
  }
  assert_int_equal(as_double, 10);
  assert_int_equal(as_int + as_double, words);
  assert_true(a.cluster_latency[2][1].sum_ms == 1000 + 5000 + 2 * 0.5 * 9);
}

static void test_add_to_zero_is_copy(void **state)
{
  tdm_proxy_stats_t z, b;
  memset(&z, 0, sizeof(z));
  fill_words(&b, 77);
  tdm_proxy_stats_add(&z, &b);
  assert_memory_equal(&z, &b, sizeof(z));
}

static void test_observe_bounds(void **state)
{
  double v[] = { 1, 4, 7, 10 };
  tdm_conf_doubles_t b = { v, 4 };
  tdm_hist_t h;
  memset(&h, 0, sizeof(h));
  const double obs[] = { 0, 0.999, 1, 1.0001, 4, 6.9, 7, 9.99, 10, 10.01, 1e9 };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(obs); i++)
    tdm_hist_observe(&h, &b, obs[i]);
  assert_int_equal(h.counts[0], 3); /* 0, 0.999, 1 */
  assert_int_equal(h.counts[1], 2); /* 1.0001, 4 */
  assert_int_equal(h.counts[2], 2); /* 6.9, 7 */
  assert_int_equal(h.counts[3], 2); /* 9.99, 10 */
  assert_int_equal(h.counts[4], 2); /* +Inf: 10.01, 1e9 */
  assert_int_equal(h.count, TDM_ARRAY_SIZE(obs));
  double sum = 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(obs); i++)
    sum += obs[i];
  assert_true(h.sum_ms == sum);
}

static void test_observe_without_bounds(void **state)
{
  tdm_hist_t h;
  memset(&h, 0, sizeof(h));
  tdm_conf_doubles_t none = { NULL, 0 };
  tdm_hist_observe(&h, &none, 3);
  tdm_hist_observe(&h, NULL, 4);
  assert_int_equal(h.counts[0], 2); /* the only bucket is +Inf */
  assert_int_equal(h.count, 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_add_every_field),
    cmocka_unit_test(test_add_to_zero_is_copy),
    cmocka_unit_test(test_observe_bounds),
    cmocka_unit_test(test_observe_without_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
