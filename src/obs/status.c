/* The status document of GET /api/v1/status and POST /api/v1/reload (obs/status.h), rendered from a
 * snapshot. Member order is fixed so the output is stable for tests and diffs:
 *   {"version","epoch","config_file","readiness","draining","primary_cluster","read_mode",
 *    "write_divergence_policy","pending_restart":[..],"last_reload":{"time","result","error"},
 *    "clusters":{"origin":{..},"target":{..}},"clients":{"total","by_version":{..},"by_worker":[..]}} */
#include <inttypes.h>
#include <tandem/obs/status.h>
#include <tandem/util/time.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
  unsigned c = p[0];
  size_t n;
  unsigned min;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  unsigned cp = c & (0x7f >> n);
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

void tdm_status_json_string(FILE *out, const char *s)
{
  if (!s) {
    fputs("null", out);
    return;
  }
  fputc('"', out);
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      fputc('\\', out);
      fputc(c, out);
      p++;
    } else if (c == '\n') {
      fputs("\\n", out);
      p++;
    } else if (c == '\t') {
      fputs("\\t", out);
      p++;
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(out, "\\u%04x", c);
      p++;
    } else {
      size_t n = utf8_len(p);
      if (n == 0) { /* not UTF-8: keep the byte visible, keep the JSON valid */
        fprintf(out, "\\u%04x", c);
        p++;
      } else {
        fwrite(p, 1, n, out);
        p += n;
      }
    }
  }
  fputc('"', out);
}

static const char *const version_names[TDM_STATUS_VERSIONS] = { "v2", "v3", "v4", "v5", "DseV1", "DseV2" };

static void put_versions(FILE *out, const uint64_t *by_version)
{
  fputc('{', out);
  bool first = true;
  for (int v = 0; v < TDM_STATUS_VERSIONS; v++) {
    if (!by_version[v])
      continue;
    fprintf(out, "%s\"%s\":%" PRIu64, first ? "" : ",", version_names[v], by_version[v]);
    first = false;
  }
  fputc('}', out);
}

static void put_cluster(FILE *out, const char *name, const tdm_status_cluster_t *c)
{
  fprintf(out, "\"%s\":{\"status\":", name);
  tdm_status_json_string(out, c->status ? c->status : "STARTUP");
  fputs(",\"control_node\":", out);
  tdm_status_json_string(out, c->control_node);
  fprintf(out, ",\"failures\":%d,\"last_error\":", c->failures);
  tdm_status_json_string(out, c->last_error);
  fputs(",\"nodes\":[", out);
  for (size_t i = 0; i < c->n_nodes; i++) {
    const tdm_status_node_t *n = &c->nodes[i];
    fputs(i ? ",{\"node\":" : "{\"node\":", out);
    tdm_status_json_string(out, n->name);
    fputs(",\"dc\":", out);
    tdm_status_json_string(out, n->dc ? n->dc : "");
    fputs(",\"state\":", out);
    tdm_status_json_string(out, n->state);
    fprintf(out, ",\"connections\":%" PRIu64 ",\"in_flight\":%" PRIu64 "}", n->connections, n->inflight);
  }
  fputs("]}", out);
}

int tdm_status_render(FILE *out, const tdm_status_t *s)
{
  fputs("{\"version\":", out);
  tdm_status_json_string(out, s->version);
  fprintf(out, ",\"epoch\":%" PRIu64 ",\"config_file\":", s->epoch);
  tdm_status_json_string(out, s->config_file);
  fputs(",\"readiness\":", out);
  tdm_status_json_string(out, s->readiness);
  fprintf(out, ",\"draining\":%s,\"primary_cluster\":", s->draining ? "true" : "false");
  tdm_status_json_string(out, s->primary_cluster);
  fputs(",\"read_mode\":", out);
  tdm_status_json_string(out, s->read_mode);
  fputs(",\"write_divergence_policy\":", out);
  tdm_status_json_string(out, s->write_divergence_policy);
  fputs(",\"pending_restart\":[", out);
  for (size_t i = 0; i < s->n_pending_restart; i++) {
    if (i)
      fputc(',', out);
    tdm_status_json_string(out, s->pending_restart[i]);
  }
  fputs("],\"last_reload\":", out);
  if (s->last_reload_ms > 0) {
    char ts[TDM_TIME_ISO8601_SIZE];
    tdm_time_iso8601(ts, sizeof(ts), s->last_reload_ms);
    fputs("{\"time\":", out);
    tdm_status_json_string(out, ts);
    fputs(",\"result\":", out);
    tdm_status_json_string(out, s->last_reload_result);
    fputs(",\"error\":", out);
    tdm_status_json_string(out, s->last_reload_error);
    fputc('}', out);
  } else {
    fputs("{\"time\":null,\"result\":null,\"error\":null}", out);
  }
  fputs(",\"clusters\":{", out);
  put_cluster(out, "origin", &s->clusters[0]);
  fputc(',', out);
  put_cluster(out, "target", &s->clusters[1]);
  uint64_t total = 0, by_version[TDM_STATUS_VERSIONS] = { 0 };
  for (size_t w = 0; w < s->n_workers; w++) {
    total += s->workers[w].clients;
    for (int v = 0; v < TDM_STATUS_VERSIONS; v++)
      by_version[v] += s->workers[w].by_version[v];
  }
  fprintf(out, "},\"clients\":{\"total\":%" PRIu64 ",\"by_version\":", total);
  put_versions(out, by_version);
  fputs(",\"by_worker\":[", out);
  for (size_t w = 0; w < s->n_workers; w++) {
    fprintf(out, "%s{\"worker\":%zu,\"connections\":%" PRIu64 ",\"by_version\":", w ? "," : "", w,
            s->workers[w].clients);
    put_versions(out, s->workers[w].by_version);
    fputc('}', out);
  }
  fputs("]}}", out);
  return ferror(out) ? TDM_ENOMEM : 0;
}
