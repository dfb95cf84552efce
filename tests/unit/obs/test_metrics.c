/* obs/metrics: exact exposition text for a known snapshot (prefix tandem, and the same text under
 * prefix zdm), the zdm-proxy-compatible series list under `metrics_prefix: zdm` (golden list from
 * behaviour.md §13.1), number formatting, histogram arithmetic, label escaping and the process
 * collectors read from /proc/self. */
#include <math.h>
#include <time.h>
#include <unistd.h>
#include <testlib.h>
#include <tandem/obs/metrics.h>

/* ---- the known snapshot ---- */

static double ob[] = { 1, 10 }, tb[] = { 5 }, ab[] = { 2.5 };
static tdm_conf_doubles_t obk = { ob, 2 }, tbk = { tb, 1 }, abk = { ab, 1 };

static void fill(tdm_proxy_stats_t *s)
{
  memset(s, 0, sizeof(*s));
  s->failed_connections_origin = 1;
  s->failed_connections_target = 2;
  s->failed_connections_async = 3;
  s->failed_reads_origin = 4;
  s->failed_reads_target = 5;
  s->failed_writes_origin = 6;
  s->failed_writes_target = 7;
  s->failed_writes_both = 8;
  tdm_hist_observe(&s->proxy_latency[0], &obk, 0.5);
  tdm_hist_observe(&s->proxy_latency[0], &obk, 1.0);
  tdm_hist_observe(&s->proxy_latency[0], &obk, 7);
  tdm_hist_observe(&s->proxy_latency[0], &obk, 20);
  tdm_hist_observe(&s->proxy_latency[1], &tbk, 3);
  tdm_hist_observe(&s->proxy_latency[2], &obk, 12.5);
  s->reads_inflight_origin = 9;
  s->reads_inflight_target = 10;
  s->writes_inflight = 11;
  s->pscache_misses = 12;
  s->client_connections = 13;
  s->requests_failed[0][TDM_REQERR_read_timeout] = 14;
  s->requests_failed[1][TDM_REQERR_other] = 15;
  s->requests_failed[2][TDM_REQERR_unprepared] = 16;
  tdm_hist_observe(&s->cluster_latency[0][0], &obk, 2);
  tdm_hist_observe(&s->cluster_latency[1][1], &tbk, 6);
  tdm_hist_observe(&s->cluster_latency[2][0], &abk, 1);
  s->async_inflight = 17;
  s->client_refused_max_connections = 18;
  s->client_refused_draining = 19;
  s->client_refused_tls = 20;
  s->client_refused_handshake_timeout = 21;
  s->handshakes_ok = 22;
  s->handshakes_auth_failed = 23;
  s->handshakes_version_refused = 24;
  s->handshakes_backend_failed = 25;
  s->client_versions[2] = 26;
  s->client_versions[3] = 27;
  s->client_versions[5] = 28;
  s->frames_too_large = 29;
  s->frames_malformed = 30;
  s->frames_crc = 31;
  s->frames_bad_version = 32;
  s->frames_bad_stream_id = 33;
  s->late_responses_origin = 34;
  s->late_responses_target = 35;
  tdm_hist_observe(&s->pool_queue_wait, &obk, 0.25);
  s->backpressure_pauses_client = 36;
  s->backpressure_pauses_backend = 37;
  s->read_yields = 38;
  s->bytes_client_in = 39;
  s->bytes_client_out = 40;
  s->bytes_origin_in = 41;
  s->bytes_origin_out = 42;
  s->bytes_target_in = 43;
  s->bytes_target_out = 44;
  s->bytes_async_in = 45;
  s->bytes_async_out = 46;
  s->pscache_reprepares_ok_origin = 47;
  s->pscache_reprepares_failed_origin = 48;
  s->pscache_reprepares_ok_target = 49;
  s->pscache_reprepares_failed_target = 50;
  s->async_reads_dropped_queue_full = 51;
  s->async_reads_dropped_no_connection = 52;
  s->async_reads_sampled_out = 53;
  s->write_divergence[0][0] = 54;
  s->write_divergence[1][1] = 55;
  s->write_divergence[2][0] = 56;
  s->divergence_journal_dropped = 57;
  s->lwt_applied_mismatch = 58;
  s->schema_waits_agreed = 59;
  s->schema_waits_timeout = 60;
  s->request_bodies_forwarded_origin = 67;
  s->request_bodies_forwarded_target = 68;
  s->request_bodies_forwarded_async = 69;
  s->request_body_copies_origin = 70;
  s->request_body_copies_target = 71;
  s->request_body_copies_async = 72;
  s->request_body_copies_forced_origin = 73;
  s->request_body_copies_forced_target = 74;
  s->request_body_copies_forced_async = 75;
}

/* async pools go to the secondary (ORIGIN here: the primary is TARGET); TARGET's node still holds async
 * connections (as after a primary flip), so it gets async rows too */
static const tdm_metrics_node_t nodes[3] = {
  { "10.0.0.1:9042", 0, 2, 3, 4, 11, 12 },
  { "[::1]:9043", 0, 5, 6, 7, 0, 0 },
  { "10.0.1.1:9042", 1, 8, 9, 10, 13, 14 },
};
static const tdm_metrics_process_t proc = { 1.5, 4096, 8192, 7, 1024, 1700000000.25 };

/* Renders into a heap string (free it). */
static char *render(const char *prefix, const tdm_proxy_stats_t *s, bool with_process)
{
  tdm_metrics_input_t in = {
    .prefix = prefix,
    .buckets = { &obk, &tbk, &abk },
    .stats = s,
    .nodes = nodes,
    .n_nodes = 3,
    .pscache_entries = 61,
    .pscache_evictions = 62,
    .epoch = 63,
    .reloads_applied = 64,
    .reloads_rejected = 65,
    .pending_restart_keys = 66,
    .primary_cluster = 1,
    .read_mode = 1,
    .process = with_process ? &proc : NULL,
  };
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  assert_int_equal(tdm_metrics_render(f, &in), 0);
  assert_int_equal(fclose(f), 0);
  return buf;
}

/* Reviewed by hand against behaviour.md §13.1: every family, label set and value below follows from
 * fill() (histograms: 0.5 and 1.0 ms fall in le=0.001, 7 ms in le=0.01, 20 ms in +Inf; sum 28.5 ms). */
static const char golden[] =
  "# HELP tandem_proxy_failed_connections_total Backend connections that could not be opened, by cluster\n"
  "# TYPE tandem_proxy_failed_connections_total counter\n"
  "tandem_proxy_failed_connections_total{cluster=\"origin\"} 1\n"
  "tandem_proxy_failed_connections_total{cluster=\"target\"} 2\n"
  "# HELP tandem_proxy_failed_reads_total Forwarded reads that failed, by cluster that served them\n"
  "# TYPE tandem_proxy_failed_reads_total counter\n"
  "tandem_proxy_failed_reads_total{cluster=\"origin\"} 4\n"
  "tandem_proxy_failed_reads_total{cluster=\"target\"} 5\n"
  "# HELP tandem_proxy_failed_writes_total Forwarded writes that failed, by the cluster(s) that failed\n"
  "# TYPE tandem_proxy_failed_writes_total counter\n"
  "tandem_proxy_failed_writes_total{failed_on=\"origin\"} 6\n"
  "tandem_proxy_failed_writes_total{failed_on=\"target\"} 7\n"
  "tandem_proxy_failed_writes_total{failed_on=\"both\"} 8\n"
  "# HELP tandem_proxy_request_duration_seconds Latency of forwarded requests as the client sees it\n"
  "# TYPE tandem_proxy_request_duration_seconds histogram\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"reads_origin\",le=\"0.001\"} 2\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"reads_origin\",le=\"0.01\"} 3\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"reads_origin\",le=\"+Inf\"} 4\n"
  "tandem_proxy_request_duration_seconds_sum{type=\"reads_origin\"} 0.0285\n"
  "tandem_proxy_request_duration_seconds_count{type=\"reads_origin\"} 4\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"reads_target\",le=\"0.005\"} 1\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"reads_target\",le=\"+Inf\"} 1\n"
  "tandem_proxy_request_duration_seconds_sum{type=\"reads_target\"} 0.003\n"
  "tandem_proxy_request_duration_seconds_count{type=\"reads_target\"} 1\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"writes\",le=\"0.001\"} 0\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"writes\",le=\"0.01\"} 0\n"
  "tandem_proxy_request_duration_seconds_bucket{type=\"writes\",le=\"+Inf\"} 1\n"
  "tandem_proxy_request_duration_seconds_sum{type=\"writes\"} 0.0125\n"
  "tandem_proxy_request_duration_seconds_count{type=\"writes\"} 1\n"
  "# HELP tandem_proxy_inflight_requests_total Forwarded requests waiting for their response\n"
  "# TYPE tandem_proxy_inflight_requests_total gauge\n"
  "tandem_proxy_inflight_requests_total{type=\"reads_origin\"} 9\n"
  "tandem_proxy_inflight_requests_total{type=\"reads_target\"} 10\n"
  "tandem_proxy_inflight_requests_total{type=\"writes\"} 11\n"
  "# HELP tandem_pscache_entries_total Entries in the prepared-statement registry\n"
  "# TYPE tandem_pscache_entries_total gauge\n"
  "tandem_pscache_entries_total 61\n"
  "# HELP tandem_pscache_miss_total EXECUTE or BATCH ids not found in the prepared-statement registry\n"
  "# TYPE tandem_pscache_miss_total counter\n"
  "tandem_pscache_miss_total 12\n"
  "# HELP tandem_client_connections_total Open client connections\n"
  "# TYPE tandem_client_connections_total gauge\n"
  "tandem_client_connections_total 13\n"
  "# HELP tandem_origin_requests_failed_total Legs answered with an error or not answered, by error class and node\n"
  "# TYPE tandem_origin_requests_failed_total counter\n"
  "tandem_origin_requests_failed_total{error=\"client_timeout\",node=\"all\"} 0\n"
  "tandem_origin_requests_failed_total{error=\"read_timeout\",node=\"all\"} 14\n"
  "tandem_origin_requests_failed_total{error=\"read_failure\",node=\"all\"} 0\n"
  "tandem_origin_requests_failed_total{error=\"write_timeout\",node=\"all\"} 0\n"
  "tandem_origin_requests_failed_total{error=\"write_failure\",node=\"all\"} 0\n"
  "tandem_origin_requests_failed_total{error=\"overloaded\",node=\"all\"} 0\n"
  "tandem_origin_requests_failed_total{error=\"unavailable\",node=\"all\"} 0\n"
  "tandem_origin_requests_failed_total{error=\"unprepared\",node=\"all\"} 0\n"
  "tandem_origin_requests_failed_total{error=\"other\",node=\"all\"} 0\n"
  "# HELP tandem_target_requests_failed_total Legs answered with an error or not answered, by error class and node\n"
  "# TYPE tandem_target_requests_failed_total counter\n"
  "tandem_target_requests_failed_total{error=\"client_timeout\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"read_timeout\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"read_failure\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"write_timeout\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"write_failure\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"overloaded\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"unavailable\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"unprepared\",node=\"all\"} 0\n"
  "tandem_target_requests_failed_total{error=\"other\",node=\"all\"} 15\n"
  "# HELP tandem_async_requests_failed_total Legs answered with an error or not answered, by error class and node\n"
  "# TYPE tandem_async_requests_failed_total counter\n"
  "tandem_async_requests_failed_total{error=\"client_timeout\",node=\"all\"} 0\n"
  "tandem_async_requests_failed_total{error=\"read_timeout\",node=\"all\"} 0\n"
  "tandem_async_requests_failed_total{error=\"read_failure\",node=\"all\"} 0\n"
  "tandem_async_requests_failed_total{error=\"write_timeout\",node=\"all\"} 0\n"
  "tandem_async_requests_failed_total{error=\"write_failure\",node=\"all\"} 0\n"
  "tandem_async_requests_failed_total{error=\"overloaded\",node=\"all\"} 0\n"
  "tandem_async_requests_failed_total{error=\"unavailable\",node=\"all\"} 0\n"
  "tandem_async_requests_failed_total{error=\"unprepared\",node=\"all\"} 16\n"
  "tandem_async_requests_failed_total{error=\"other\",node=\"all\"} 0\n"
  "# HELP tandem_origin_request_duration_seconds Latency of legs from write to response, by node and request type\n"
  "# TYPE tandem_origin_request_duration_seconds histogram\n"
  "tandem_origin_request_duration_seconds_bucket{node=\"all\",type=\"reads\",le=\"0.001\"} 0\n"
  "tandem_origin_request_duration_seconds_bucket{node=\"all\",type=\"reads\",le=\"0.01\"} 1\n"
  "tandem_origin_request_duration_seconds_bucket{node=\"all\",type=\"reads\",le=\"+Inf\"} 1\n"
  "tandem_origin_request_duration_seconds_sum{node=\"all\",type=\"reads\"} 0.002\n"
  "tandem_origin_request_duration_seconds_count{node=\"all\",type=\"reads\"} 1\n"
  "tandem_origin_request_duration_seconds_bucket{node=\"all\",type=\"writes\",le=\"0.001\"} 0\n"
  "tandem_origin_request_duration_seconds_bucket{node=\"all\",type=\"writes\",le=\"0.01\"} 0\n"
  "tandem_origin_request_duration_seconds_bucket{node=\"all\",type=\"writes\",le=\"+Inf\"} 0\n"
  "tandem_origin_request_duration_seconds_sum{node=\"all\",type=\"writes\"} 0\n"
  "tandem_origin_request_duration_seconds_count{node=\"all\",type=\"writes\"} 0\n"
  "# HELP tandem_target_request_duration_seconds Latency of legs from write to response, by node and request type\n"
  "# TYPE tandem_target_request_duration_seconds histogram\n"
  "tandem_target_request_duration_seconds_bucket{node=\"all\",type=\"reads\",le=\"0.005\"} 0\n"
  "tandem_target_request_duration_seconds_bucket{node=\"all\",type=\"reads\",le=\"+Inf\"} 0\n"
  "tandem_target_request_duration_seconds_sum{node=\"all\",type=\"reads\"} 0\n"
  "tandem_target_request_duration_seconds_count{node=\"all\",type=\"reads\"} 0\n"
  "tandem_target_request_duration_seconds_bucket{node=\"all\",type=\"writes\",le=\"0.005\"} 0\n"
  "tandem_target_request_duration_seconds_bucket{node=\"all\",type=\"writes\",le=\"+Inf\"} 1\n"
  "tandem_target_request_duration_seconds_sum{node=\"all\",type=\"writes\"} 0.006\n"
  "tandem_target_request_duration_seconds_count{node=\"all\",type=\"writes\"} 1\n"
  "# HELP tandem_async_request_duration_seconds Latency of legs from write to response, by node and request type\n"
  "# TYPE tandem_async_request_duration_seconds histogram\n"
  "tandem_async_request_duration_seconds_bucket{node=\"all\",type=\"reads\",le=\"0.0025\"} 1\n"
  "tandem_async_request_duration_seconds_bucket{node=\"all\",type=\"reads\",le=\"+Inf\"} 1\n"
  "tandem_async_request_duration_seconds_sum{node=\"all\",type=\"reads\"} 0.001\n"
  "tandem_async_request_duration_seconds_count{node=\"all\",type=\"reads\"} 1\n"
  "tandem_async_request_duration_seconds_bucket{node=\"all\",type=\"writes\",le=\"0.0025\"} 0\n"
  "tandem_async_request_duration_seconds_bucket{node=\"all\",type=\"writes\",le=\"+Inf\"} 0\n"
  "tandem_async_request_duration_seconds_sum{node=\"all\",type=\"writes\"} 0\n"
  "tandem_async_request_duration_seconds_count{node=\"all\",type=\"writes\"} 0\n"
  "# HELP tandem_origin_connections_total Open backend pool connections, by node\n"
  "# TYPE tandem_origin_connections_total gauge\n"
  "tandem_origin_connections_total{node=\"10.0.0.1:9042\"} 2\n"
  "tandem_origin_connections_total{node=\"[::1]:9043\"} 5\n"
  "# HELP tandem_target_connections_total Open backend pool connections, by node\n"
  "# TYPE tandem_target_connections_total gauge\n"
  "tandem_target_connections_total{node=\"10.0.1.1:9042\"} 8\n"
  "# HELP tandem_async_connections_total Open backend pool connections, by node\n"
  "# TYPE tandem_async_connections_total gauge\n"
  "tandem_async_connections_total{node=\"10.0.0.1:9042\"} 11\n"
  "tandem_async_connections_total{node=\"[::1]:9043\"} 0\n"
  "tandem_async_connections_total{node=\"10.0.1.1:9042\"} 13\n"
  "# HELP tandem_origin_failed_connections_total Backend connections that could not be opened, by node\n"
  "# TYPE tandem_origin_failed_connections_total counter\n"
  "tandem_origin_failed_connections_total{node=\"all\"} 1\n"
  "# HELP tandem_target_failed_connections_total Backend connections that could not be opened, by node\n"
  "# TYPE tandem_target_failed_connections_total counter\n"
  "tandem_target_failed_connections_total{node=\"all\"} 2\n"
  "# HELP tandem_async_failed_connections_total Backend connections that could not be opened, by node\n"
  "# TYPE tandem_async_failed_connections_total counter\n"
  "tandem_async_failed_connections_total{node=\"all\"} 3\n"
  "# HELP tandem_async_inflight_requests_total Mirrored reads waiting for their response, by node\n"
  "# TYPE tandem_async_inflight_requests_total gauge\n"
  "tandem_async_inflight_requests_total{node=\"all\"} 17\n"
  "# HELP tandem_origin_used_stream_ids_total Stream ids in use on backend pool connections, by node\n"
  "# TYPE tandem_origin_used_stream_ids_total gauge\n"
  "tandem_origin_used_stream_ids_total{node=\"10.0.0.1:9042\"} 4\n"
  "tandem_origin_used_stream_ids_total{node=\"[::1]:9043\"} 7\n"
  "# HELP tandem_target_used_stream_ids_total Stream ids in use on backend pool connections, by node\n"
  "# TYPE tandem_target_used_stream_ids_total gauge\n"
  "tandem_target_used_stream_ids_total{node=\"10.0.1.1:9042\"} 10\n"
  "# HELP tandem_async_used_stream_ids_total Stream ids in use on backend pool connections, by node\n"
  "# TYPE tandem_async_used_stream_ids_total gauge\n"
  "tandem_async_used_stream_ids_total{node=\"10.0.0.1:9042\"} 12\n"
  "tandem_async_used_stream_ids_total{node=\"[::1]:9043\"} 0\n"
  "tandem_async_used_stream_ids_total{node=\"10.0.1.1:9042\"} 14\n"
  "# HELP tandem_config_epoch Configuration epoch in use (1 at start, +1 per applied reload)\n"
  "# TYPE tandem_config_epoch gauge\n"
  "tandem_config_epoch 63\n"
  "# HELP tandem_config_reloads_total Configuration reloads by result\n"
  "# TYPE tandem_config_reloads_total counter\n"
  "tandem_config_reloads_total{result=\"applied\"} 64\n"
  "tandem_config_reloads_total{result=\"rejected\"} 65\n"
  "# HELP tandem_config_pending_restart_keys Restart-class keys changed in the file but not applied\n"
  "# TYPE tandem_config_pending_restart_keys gauge\n"
  "tandem_config_pending_restart_keys 66\n"
  "# HELP tandem_primary_cluster 1 for the cluster serving synchronous reads\n"
  "# TYPE tandem_primary_cluster gauge\n"
  "tandem_primary_cluster{cluster=\"origin\"} 0\n"
  "tandem_primary_cluster{cluster=\"target\"} 1\n"
  "# HELP tandem_read_mode 1 for the active read mode\n"
  "# TYPE tandem_read_mode gauge\n"
  "tandem_read_mode{mode=\"PRIMARY_ONLY\"} 0\n"
  "tandem_read_mode{mode=\"DUAL_ASYNC_ON_SECONDARY\"} 1\n"
  "# HELP tandem_client_connections_refused_total Client connections refused or closed early, by reason\n"
  "# TYPE tandem_client_connections_refused_total counter\n"
  "tandem_client_connections_refused_total{reason=\"max_connections\"} 18\n"
  "tandem_client_connections_refused_total{reason=\"draining\"} 19\n"
  "tandem_client_connections_refused_total{reason=\"tls\"} 20\n"
  "tandem_client_connections_refused_total{reason=\"handshake_timeout\"} 21\n"
  "# HELP tandem_client_handshakes_total Client handshakes by result\n"
  "# TYPE tandem_client_handshakes_total counter\n"
  "tandem_client_handshakes_total{result=\"ok\"} 22\n"
  "tandem_client_handshakes_total{result=\"auth_failed\"} 23\n"
  "tandem_client_handshakes_total{result=\"version_refused\"} 24\n"
  "tandem_client_handshakes_total{result=\"backend_failed\"} 25\n"
  "# HELP tandem_client_connections_by_version Open client connections by negotiated protocol version\n"
  "# TYPE tandem_client_connections_by_version gauge\n"
  "tandem_client_connections_by_version{version=\"v2\"} 0\n"
  "tandem_client_connections_by_version{version=\"v3\"} 0\n"
  "tandem_client_connections_by_version{version=\"v4\"} 26\n"
  "tandem_client_connections_by_version{version=\"v5\"} 27\n"
  "tandem_client_connections_by_version{version=\"DseV1\"} 0\n"
  "tandem_client_connections_by_version{version=\"DseV2\"} 28\n"
  "# HELP tandem_frames_rejected_total Client frames refused, by reason\n"
  "# TYPE tandem_frames_rejected_total counter\n"
  "tandem_frames_rejected_total{reason=\"too_large\"} 29\n"
  "tandem_frames_rejected_total{reason=\"malformed\"} 30\n"
  "tandem_frames_rejected_total{reason=\"crc\"} 31\n"
  "tandem_frames_rejected_total{reason=\"bad_version\"} 32\n"
  "tandem_frames_rejected_total{reason=\"bad_stream_id\"} 33\n"
  "# HELP tandem_proxy_late_responses_total Responses that arrived after their request timed out\n"
  "# TYPE tandem_proxy_late_responses_total counter\n"
  "tandem_proxy_late_responses_total{cluster=\"origin\"} 34\n"
  "tandem_proxy_late_responses_total{cluster=\"target\"} 35\n"
  "# HELP tandem_pool_queue_wait_seconds Time legs waited in a pool queue for a stream id\n"
  "# TYPE tandem_pool_queue_wait_seconds histogram\n"
  "tandem_pool_queue_wait_seconds_bucket{le=\"0.001\"} 1\n"
  "tandem_pool_queue_wait_seconds_bucket{le=\"0.01\"} 1\n"
  "tandem_pool_queue_wait_seconds_bucket{le=\"+Inf\"} 1\n"
  "tandem_pool_queue_wait_seconds_sum 0.00025\n"
  "tandem_pool_queue_wait_seconds_count 1\n"
  "# HELP tandem_backpressure_pauses_total Times a client connection stopped being read, by side\n"
  "# TYPE tandem_backpressure_pauses_total counter\n"
  "tandem_backpressure_pauses_total{side=\"client\"} 36\n"
  "tandem_backpressure_pauses_total{side=\"backend\"} 37\n"
  "# HELP tandem_read_yields_total Read callbacks that stopped early to let other connections run\n"
  "# TYPE tandem_read_yields_total counter\n"
  "tandem_read_yields_total 38\n"
  "# HELP tandem_bytes_total Bytes through tandem's sockets, by side and direction\n"
  "# TYPE tandem_bytes_total counter\n"
  "tandem_bytes_total{direction=\"in\",side=\"client\"} 39\n"
  "tandem_bytes_total{direction=\"in\",side=\"origin\"} 41\n"
  "tandem_bytes_total{direction=\"in\",side=\"target\"} 43\n"
  "tandem_bytes_total{direction=\"in\",side=\"async\"} 45\n"
  "tandem_bytes_total{direction=\"out\",side=\"client\"} 40\n"
  "tandem_bytes_total{direction=\"out\",side=\"origin\"} 42\n"
  "tandem_bytes_total{direction=\"out\",side=\"target\"} 44\n"
  "tandem_bytes_total{direction=\"out\",side=\"async\"} 46\n"
  "# HELP tandem_request_bodies_forwarded_total Client request bodies handed to a backend, by leg\n"
  "# TYPE tandem_request_bodies_forwarded_total counter\n"
  "tandem_request_bodies_forwarded_total{leg=\"origin\"} 67\n"
  "tandem_request_bodies_forwarded_total{leg=\"target\"} 68\n"
  "tandem_request_bodies_forwarded_total{leg=\"async\"} 69\n"
  "# HELP tandem_request_body_copies_total Buffers tandem built holding a client request body for a backend, by leg\n"
  "# TYPE tandem_request_body_copies_total counter\n"
  "tandem_request_body_copies_total{leg=\"origin\"} 70\n"
  "tandem_request_body_copies_total{leg=\"target\"} 71\n"
  "tandem_request_body_copies_total{leg=\"async\"} 72\n"
  "# HELP tandem_request_body_copies_forced_total Request body copies forced by a prepared-id rewrite or by "
  "compression, by leg\n"
  "# TYPE tandem_request_body_copies_forced_total counter\n"
  "tandem_request_body_copies_forced_total{leg=\"origin\"} 73\n"
  "tandem_request_body_copies_forced_total{leg=\"target\"} 74\n"
  "tandem_request_body_copies_forced_total{leg=\"async\"} 75\n"
  "# HELP tandem_pscache_evictions_total Prepared-statement registry entries evicted by its bound\n"
  "# TYPE tandem_pscache_evictions_total counter\n"
  "tandem_pscache_evictions_total 62\n"
  "# HELP tandem_pscache_reprepares_total Transparent re-prepares after UNPREPARED, by cluster and result\n"
  "# TYPE tandem_pscache_reprepares_total counter\n"
  "tandem_pscache_reprepares_total{cluster=\"origin\",result=\"ok\"} 47\n"
  "tandem_pscache_reprepares_total{cluster=\"origin\",result=\"failed\"} 48\n"
  "tandem_pscache_reprepares_total{cluster=\"target\",result=\"ok\"} 49\n"
  "tandem_pscache_reprepares_total{cluster=\"target\",result=\"failed\"} 50\n"
  "# HELP tandem_async_reads_dropped_total Mirrored reads dropped before being sent, by reason\n"
  "# TYPE tandem_async_reads_dropped_total counter\n"
  "tandem_async_reads_dropped_total{reason=\"queue_full\"} 51\n"
  "tandem_async_reads_dropped_total{reason=\"no_connection\"} 52\n"
  "# HELP tandem_async_reads_sampled_out_total Eligible reads not mirrored because of sampling\n"
  "# TYPE tandem_async_reads_sampled_out_total counter\n"
  "tandem_async_reads_sampled_out_total 53\n"
  "# HELP tandem_write_divergence_total Dual writes applied on one cluster only, by kind and failed side\n"
  "# TYPE tandem_write_divergence_total counter\n"
  "tandem_write_divergence_total{failed_on=\"origin\",kind=\"write\"} 54\n"
  "tandem_write_divergence_total{failed_on=\"origin\",kind=\"counter\"} 0\n"
  "tandem_write_divergence_total{failed_on=\"origin\",kind=\"lwt\"} 56\n"
  "tandem_write_divergence_total{failed_on=\"target\",kind=\"write\"} 0\n"
  "tandem_write_divergence_total{failed_on=\"target\",kind=\"counter\"} 55\n"
  "tandem_write_divergence_total{failed_on=\"target\",kind=\"lwt\"} 0\n"
  "# HELP tandem_write_divergence_log_dropped_total Divergence journal lines lost to a full queue\n"
  "# TYPE tandem_write_divergence_log_dropped_total counter\n"
  "tandem_write_divergence_log_dropped_total 57\n"
  "# HELP tandem_lwt_applied_mismatch_total LWT writes whose [applied] differed between the clusters\n"
  "# TYPE tandem_lwt_applied_mismatch_total counter\n"
  "tandem_lwt_applied_mismatch_total 58\n"
  "# HELP tandem_schema_agreement_waits_total Schema-change responses held for agreement, by result\n"
  "# TYPE tandem_schema_agreement_waits_total counter\n"
  "tandem_schema_agreement_waits_total{result=\"agreed\"} 59\n"
  "tandem_schema_agreement_waits_total{result=\"timeout\"} 60\n"
  "# HELP process_cpu_seconds_total CPU time used by the process (user + system), seconds\n"
  "# TYPE process_cpu_seconds_total counter\n"
  "process_cpu_seconds_total 1.5\n"
  "# HELP process_max_fds Descriptor limit of the process (RLIMIT_NOFILE soft limit)\n"
  "# TYPE process_max_fds gauge\n"
  "process_max_fds 1024\n"
  "# HELP process_open_fds Descriptors the process has open\n"
  "# TYPE process_open_fds gauge\n"
  "process_open_fds 7\n"
  "# HELP process_resident_memory_bytes Resident set size of the process, bytes\n"
  "# TYPE process_resident_memory_bytes gauge\n"
  "process_resident_memory_bytes 4096\n"
  "# HELP process_start_time_seconds When the process started, seconds since the Unix epoch\n"
  "# TYPE process_start_time_seconds gauge\n"
  "process_start_time_seconds 1700000000.25\n"
  "# HELP process_virtual_memory_bytes Virtual memory size of the process, bytes\n"
  "# TYPE process_virtual_memory_bytes gauge\n"
  "process_virtual_memory_bytes 8192\n";

static void expect_text(const char *got, const char *want)
{
  if (strcmp(got, want) == 0)
    return;
  size_t line = 1, i = 0;
  while (got[i] && got[i] == want[i]) {
    if (got[i] == '\n')
      line++;
    i++;
  }
  const char *g = got + i, *w = want + i;
  while (g > got && g[-1] != '\n') g--, w--;
  fail_msg("first difference at line %zu:\n got: %.120s\nwant: %.120s", line, g, w);
}

static void test_exact_text_tandem(void **state)
{
  tdm_proxy_stats_t s;
  fill(&s);
  char *got = render("tandem", &s, true);
  expect_text(got, golden);
  free(got);
}

/* Replaces every "tandem_" by "zdm_" (the process collectors carry no prefix). */
static char *as_zdm(const char *text)
{
  size_t n = strlen(text);
  char *out = malloc(n + 1), *o = out;
  assert_non_null(out);
  for (const char *p = text; *p;) {
    if (!strncmp(p, "tandem_", 7)) {
      memcpy(o, "zdm_", 4);
      o += 4;
      p += 7;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  return out;
}

static void test_exact_text_zdm(void **state)
{
  tdm_proxy_stats_t s;
  fill(&s);
  char *got = render("zdm", &s, true);
  char *want = as_zdm(golden);
  expect_text(got, want);
  assert_null(strstr(got, "tandem_"));
  free(want);
  free(got);
}

/* behaviour.md §13.1, zdm-proxy-compatible table, in its order, with metrics_prefix: zdm. */
static const char *const zdm_series[] = {
  "zdm_proxy_failed_connections_total counter",   "zdm_proxy_failed_reads_total counter",
  "zdm_proxy_failed_writes_total counter",        "zdm_proxy_request_duration_seconds histogram",
  "zdm_proxy_inflight_requests_total gauge",      "zdm_pscache_entries_total gauge",
  "zdm_pscache_miss_total counter",               "zdm_client_connections_total gauge",
  "zdm_origin_requests_failed_total counter",     "zdm_target_requests_failed_total counter",
  "zdm_async_requests_failed_total counter",      "zdm_origin_request_duration_seconds histogram",
  "zdm_target_request_duration_seconds histogram", "zdm_async_request_duration_seconds histogram",
  "zdm_origin_connections_total gauge",           "zdm_target_connections_total gauge",
  "zdm_async_connections_total gauge",            "zdm_origin_failed_connections_total counter",
  "zdm_target_failed_connections_total counter",  "zdm_async_failed_connections_total counter",
  "zdm_async_inflight_requests_total gauge",      "zdm_origin_used_stream_ids_total gauge",
  "zdm_target_used_stream_ids_total gauge",       "zdm_async_used_stream_ids_total gauge",
};

/* tandem's extras and the process collectors, after the zdm-proxy series. */
static const char *const extra_series[] = {
  "zdm_config_epoch gauge",
  "zdm_config_reloads_total counter",
  "zdm_config_pending_restart_keys gauge",
  "zdm_primary_cluster gauge",
  "zdm_read_mode gauge",
  "zdm_client_connections_refused_total counter",
  "zdm_client_handshakes_total counter",
  "zdm_client_connections_by_version gauge",
  "zdm_frames_rejected_total counter",
  "zdm_proxy_late_responses_total counter",
  "zdm_pool_queue_wait_seconds histogram",
  "zdm_backpressure_pauses_total counter",
  "zdm_read_yields_total counter",
  "zdm_bytes_total counter",
  "zdm_request_bodies_forwarded_total counter",
  "zdm_request_body_copies_total counter",
  "zdm_request_body_copies_forced_total counter",
  "zdm_pscache_evictions_total counter",
  "zdm_pscache_reprepares_total counter",
  "zdm_async_reads_dropped_total counter",
  "zdm_async_reads_sampled_out_total counter",
  "zdm_write_divergence_total counter",
  "zdm_write_divergence_log_dropped_total counter",
  "zdm_lwt_applied_mismatch_total counter",
  "zdm_schema_agreement_waits_total counter",
  "process_cpu_seconds_total counter",
  "process_max_fds gauge",
  "process_open_fds gauge",
  "process_resident_memory_bytes gauge",
  "process_start_time_seconds gauge",
  "process_virtual_memory_bytes gauge",
};

static void test_zdm_series_list(void **state)
{
  tdm_proxy_stats_t s;
  fill(&s);
  char *got = render("zdm", &s, true);
  size_t want_n = TDM_ARRAY_SIZE(zdm_series) + TDM_ARRAY_SIZE(extra_series), n = 0;
  for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "# TYPE ", 7))
      continue;
    const char *want = n < TDM_ARRAY_SIZE(zdm_series) ? zdm_series[n]
                       : n < want_n                   ? extra_series[n - TDM_ARRAY_SIZE(zdm_series)]
                                                      : "(nothing more)";
    if (strcmp(line + 7, want))
      fail_msg("family %zu: got '%s', want '%s'", n, line + 7, want);
    n++;
  }
  assert_int_equal(n, want_n);
  free(got);
}

/* ---- pieces ---- */

static void test_format_double(void **state)
{
  static const struct { double v; const char *text; } cases[] = {
    { 0.001, "0.001" }, { 0.004, "0.004" }, { 0.025, "0.025" }, { 0.1, "0.1" }, { 2.5, "2.5" }, { 15, "15" },
    { 0, "0" }, { 1e-05, "1e-05" }, { 0.0285, "0.0285" }, { 1700000000.25, "1700000000.25" },
    { 123456789012, "123456789012" }, { INFINITY, "+Inf" }, { -INFINITY, "-Inf" },
  };
  char buf[40];
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    tdm_metrics_format_double(buf, sizeof(buf), cases[i].v);
    assert_string_equal(buf, cases[i].text);
  }
  tdm_metrics_format_double(buf, sizeof(buf), NAN);
  assert_string_equal(buf, "NaN");
  /* Every default bucket bound, in seconds, reads back exactly. */
  static const double ms[] = { 1, 4, 7, 10, 25, 40, 60, 80, 100, 150, 250, 500, 1000, 2500, 5000, 10000, 15000 };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(ms); i++) {
    tdm_metrics_format_double(buf, sizeof(buf), ms[i] / 1000.0);
    assert_true(strtod(buf, NULL) == ms[i] / 1000.0);
    assert_true(strlen(buf) <= 5);
  }
}

/* A zeroed input is valid: prefix tandem, zero values, no node samples, no process series. */
static void test_zeroed_input(void **state)
{
  tdm_metrics_input_t in = { 0 };
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(tdm_metrics_render(f, &in), 0);
  fclose(f);
  assert_non_null(strstr(buf, "\ntandem_client_connections_total 0\n"));
  assert_non_null(strstr(buf, "\ntandem_proxy_request_duration_seconds_bucket{type=\"writes\",le=\"+Inf\"} 0\n"));
  assert_non_null(strstr(buf, "\ntandem_read_mode{mode=\"PRIMARY_ONLY\"} 1\n"));
  assert_non_null(strstr(buf, "\ntandem_primary_cluster{cluster=\"origin\"} 1\n"));
  assert_null(strstr(buf, "process_"));
  assert_null(strstr(buf, "tandem_origin_connections_total{"));
  free(buf);
}

static void test_label_escaping(void **state)
{
  tdm_metrics_node_t odd = { "we\"ird\\host\n:1", 0, 1, 0, 0, 0, 0 };
  tdm_metrics_input_t in = { .nodes = &odd, .n_nodes = 1 };
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(tdm_metrics_render(f, &in), 0);
  fclose(f);
  assert_non_null(strstr(buf, "\ntandem_origin_connections_total{node=\"we\\\"ird\\\\host\\n:1\"} 1\n"));
  free(buf);
}

/* More bounds than TDM_HIST_MAX_BUCKETS: the extra ones are neither tracked nor rendered, and the
 * count stays consistent (+Inf = count). */
static void test_bucket_cap(void **state)
{
  double many[40];
  for (int i = 0; i < 40; i++)
    many[i] = i + 1;
  tdm_conf_doubles_t b = { many, 40 };
  tdm_proxy_stats_t s;
  memset(&s, 0, sizeof(s));
  tdm_hist_observe(&s.proxy_latency[0], &b, 35); /* beyond bound 32: +Inf */
  tdm_hist_observe(&s.proxy_latency[0], &b, 32);
  assert_int_equal(s.proxy_latency[0].counts[31], 1);
  assert_int_equal(s.proxy_latency[0].counts[TDM_HIST_MAX_BUCKETS], 1);
  tdm_metrics_input_t in = { .buckets = { &b, &b, &b }, .stats = &s };
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(tdm_metrics_render(f, &in), 0);
  fclose(f);
  assert_non_null(strstr(buf, "{type=\"reads_origin\",le=\"0.032\"} 1\n"));
  assert_null(strstr(buf, "{type=\"reads_origin\",le=\"0.033\"}"));
  assert_non_null(strstr(buf, "{type=\"reads_origin\",le=\"+Inf\"} 2\n"));
  free(buf);
}

static void test_process_read(void **state)
{
  tdm_metrics_process_t p;
  assert_int_equal(tdm_metrics_process_read(&p), 0);
  assert_true(p.resident_bytes > 0);
  assert_true(p.virtual_bytes >= p.resident_bytes);
  assert_true(p.open_fds >= 3); /* stdin, stdout, stderr at least */
  assert_true(p.max_fds >= p.open_fds);
  double now = (double)time(NULL);
  assert_true(p.start_time_seconds <= now + 1 && p.start_time_seconds > now - 3600);
  assert_true(p.cpu_seconds >= 0 && p.cpu_seconds < 3600);
  /* One more descriptor shows up. */
  int fd = dup(0);
  tdm_metrics_process_t q;
  assert_int_equal(tdm_metrics_process_read(&q), 0);
  close(fd);
  assert_true(q.open_fds == p.open_fds + 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_exact_text_tandem),
    cmocka_unit_test(test_exact_text_zdm),
    cmocka_unit_test(test_zdm_series_list),
    cmocka_unit_test(test_format_double),
    cmocka_unit_test(test_zeroed_input),
    cmocka_unit_test(test_label_escaping),
    cmocka_unit_test(test_bucket_cap),
    cmocka_unit_test(test_process_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
