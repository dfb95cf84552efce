/* Per-worker proxy counters (core/proxy.h): summing for aggregation on the main thread, and latency
 * histogram observation with the configured bucket bounds. Pure functions on plain structs; they never
 * touch another thread's memory (the caller holds copies made by each worker, rule 17). */
#include <tandem/core/proxy.h>

static void hist_add(tdm_hist_t *a, const tdm_hist_t *b)
{
  for (size_t i = 0; i < TDM_ARRAY_SIZE(a->counts); i++)
    a->counts[i] += b->counts[i];
  a->count += b->count;
  a->sum_ms += b->sum_ms;
}

void tdm_proxy_stats_add(tdm_proxy_stats_t *a, const tdm_proxy_stats_t *b)
{
#define TDM_PROXY_STATS_ADD(name) a->name += b->name;
  TDM_PROXY_COUNTERS(TDM_PROXY_STATS_ADD)
#undef TDM_PROXY_STATS_ADD
  for (size_t k = 0; k < TDM_ARRAY_SIZE(a->requests_failed); k++)
    for (size_t e = 0; e < TDM_REQERR_MAX; e++)
      a->requests_failed[k][e] += b->requests_failed[k][e];
  for (size_t v = 0; v < TDM_ARRAY_SIZE(a->client_versions); v++)
    a->client_versions[v] += b->client_versions[v];
  for (size_t t = 0; t < TDM_ARRAY_SIZE(a->proxy_latency); t++)
    hist_add(&a->proxy_latency[t], &b->proxy_latency[t]);
  for (size_t c = 0; c < TDM_ARRAY_SIZE(a->cluster_latency); c++)
    for (size_t t = 0; t < 2; t++)
      hist_add(&a->cluster_latency[c][t], &b->cluster_latency[c][t]);
  for (size_t k = 0; k < TDM_ARRAY_SIZE(a->write_divergence); k++)
    for (size_t f = 0; f < 2; f++)
      a->write_divergence[k][f] += b->write_divergence[k][f];
  hist_add(&a->pool_queue_wait, &b->pool_queue_wait);
}

/* Invariant: counts[i] for i < n holds observations in (bound[i-1], bound[i]]; counts[n] the rest,
 * where n = min(bounds->n, TDM_HIST_MAX_BUCKETS). Bounds past the cap are not tracked: their
 * observations land in +Inf, and obs/metrics renders only the first TDM_HIST_MAX_BUCKETS bounds. */
void tdm_hist_observe(tdm_hist_t *h, const tdm_conf_doubles_t *bounds, double ms)
{
  size_t n = bounds ? TDM_MIN(bounds->n, (size_t)TDM_HIST_MAX_BUCKETS) : 0;
  size_t i = 0;
  /* Bounds are few (17 by default) and ascending: a linear scan beats a branchy binary search. */
  while (i < n && ms > bounds->v[i])
    i++;
  h->counts[i]++;
  h->count++;
  h->sum_ms += ms;
}
