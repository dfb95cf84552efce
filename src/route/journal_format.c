/* One divergence journal line (route/journal.h, behaviour.md §6.2) as a JSON object: pure formatting
 * into a tdm_writer_t, so the worker that saw the divergence pays for it and the writer thread only
 * copies bytes to a file. Invariant: the output is always one valid JSON object on one line (strings
 * escaped, invalid UTF-8 shown as \u00XX), whatever the bytes of the query text or the values. */
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>
#include <tandem/conf/conf.h>
#include <tandem/proto/opcodes.h>
#include <tandem/proto/request.h>
#include <tandem/route/journal.h>

const char *tdm_journal_consistency_name(int consistency)
{
  static const char *const names[] = {
    [TDM_CL_ANY] = "ANY",           [TDM_CL_ONE] = "ONE",
    [TDM_CL_TWO] = "TWO",           [TDM_CL_THREE] = "THREE",
    [TDM_CL_QUORUM] = "QUORUM",     [TDM_CL_ALL] = "ALL",
    [TDM_CL_LOCAL_QUORUM] = "LOCAL_QUORUM", [TDM_CL_EACH_QUORUM] = "EACH_QUORUM",
    [TDM_CL_SERIAL] = "SERIAL",     [TDM_CL_LOCAL_SERIAL] = "LOCAL_SERIAL",
    [TDM_CL_LOCAL_ONE] = "LOCAL_ONE", [TDM_CL_NODE_LOCAL] = "NODE_LOCAL",
  };
  return consistency >= 0 && (size_t)consistency < TDM_ARRAY_SIZE(names) ? names[consistency] : "UNKNOWN";
}

static void put(tdm_writer_t *w, const char *s) { tdm_writer_raw(w, s, strlen(s)); }

static void putf(tdm_writer_t *w, const char *fmt, ...) TDM_PRINTF(2, 3);
static void putf(tdm_writer_t *w, const char *fmt, ...)
{
  char buf[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > 0) tdm_writer_raw(w, buf, TDM_MIN((size_t)n, sizeof(buf) - 1));
}

/* Length of the UTF-8 sequence at p[0..n), 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
  size_t k = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
  if (k == 0 || k > n) return 0;
  for (size_t i = 1; i < k; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return k;
}

/* s as a JSON string, at most `max` bytes of it; true when it was cut. */
static bool json_str(tdm_writer_t *w, tdm_str_t s, size_t max)
{
  bool cut = s.len > max;
  size_t n = cut ? max : s.len;
  const unsigned char *p = (const unsigned char *)s.ptr;
  tdm_writer_byte(w, '"');
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t k = c < 0x80 ? 1 : utf8_len(p + i, n - i);
    if (c == '"' || c == '\\') {
      char e[2] = { '\\', (char)c };
      tdm_writer_raw(w, e, 2);
    } else if (c == '\n') {
      put(w, "\\n");
    } else if (c == '\r') {
      put(w, "\\r");
    } else if (c == '\t') {
      put(w, "\\t");
    } else if (c < 0x20 || c == 0x7f || k == 0) {
      putf(w, "\\u%04x", c); /* a control byte, or a byte that starts no UTF-8 sequence */
      k = 1;
    } else {
      tdm_writer_raw(w, p + i, k);
    }
    i += k ? k : 1;
  }
  tdm_writer_byte(w, '"');
  return cut;
}

static void json_cstr(tdm_writer_t *w, const char *s) { (void)json_str(w, tdm_str_from(s), SIZE_MAX); }

static void hex(tdm_writer_t *w, const uint8_t *p, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  char buf[128];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    buf[k++] = digits[p[i] >> 4];
    buf[k++] = digits[p[i] & 15];
    if (k == sizeof(buf)) {
      tdm_writer_raw(w, buf, k);
      k = 0;
    }
  }
  tdm_writer_raw(w, buf, k);
}

static const char *cluster(int c) { return c == TDM_CONF_ORIGIN ? "ORIGIN" : c == TDM_CONF_TARGET ? "TARGET" : "?"; }

static void timestamp(tdm_writer_t *w, int64_t ms)
{
  int64_t rem = ms % 1000, whole = ms / 1000;
  if (rem < 0) { /* before 1970: the milliseconds still count up from the second */
    rem += 1000;
    whole--;
  }
  time_t secs = (time_t)whole;
  struct tm tm;
  char buf[40];
  if (!gmtime_r(&secs, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    put(w, "null");
    return;
  }
  putf(w, "\"%s.%03dZ\"", buf, (int)rem);
}

/* Upper bound of what the values take in the line: hex doubles, names and punctuation add a little. */
static size_t values_cost(const tdm_journal_stmt_t *s) { return 2 * s->values_len + 16u * s->values_count + 16; }

/* "values":[...] or {...}; values that would make the line longer than TDM_JOURNAL_LINE_MAX, or that do
 * not parse, are left out and their number given as "values_omitted". */
static void values(tdm_writer_t *w, const tdm_journal_stmt_t *s)
{
  tdm_values_iter_t it;
  tdm_str_t name;
  tdm_bytes_t v;
  int rc = 0;
  bool ok = w->len + values_cost(s) <= TDM_JOURNAL_LINE_MAX;
  tdm_values_iter_init(&it, s->values, s->values_len, s->values_count, s->named);
  while (ok && (rc = tdm_values_next(&it, &name, &v)) > 0) {}
  if (!ok || rc < 0) {
    putf(w, ",\"values_omitted\":%u", (unsigned)s->values_count);
    return;
  }
  put(w, s->named ? ",\"values\":{" : ",\"values\":[");
  tdm_values_iter_init(&it, s->values, s->values_len, s->values_count, s->named);
  for (unsigned i = 0; tdm_values_next(&it, &name, &v) > 0; i++) {
    if (i) tdm_writer_byte(w, ',');
    if (s->named) {
      (void)json_str(w, name, SIZE_MAX);
      tdm_writer_byte(w, ':');
    }
    if (v.len == -1) {
      put(w, "null");
    } else if (v.len < 0) {
      put(w, "\"unset\"");
    } else {
      tdm_writer_byte(w, '"');
      hex(w, (const uint8_t *)v.ptr, (size_t)v.len);
      tdm_writer_byte(w, '"');
    }
  }
  put(w, s->named ? "}" : "]");
}

/* The statement's own fields, each preceded by a comma. */
static void statement(tdm_writer_t *w, const tdm_journal_stmt_t *s, bool with_values)
{
  if (s->prepared_id.len > 0) {
    put(w, ",\"prepared_id\":\"");
    hex(w, (const uint8_t *)s->prepared_id.ptr, (size_t)s->prepared_id.len);
    tdm_writer_byte(w, '"');
  }
  if (s->query.len) {
    put(w, ",\"query\":");
    if (json_str(w, s->query, TDM_JOURNAL_TEXT_MAX)) put(w, ",\"query_truncated\":true");
  }
  if (with_values) values(w, s);
}

int tdm_journal_format(const tdm_journal_record_t *r, tdm_writer_t *w)
{
  static const char *const batch_names[] = { "LOGGED", "UNLOGGED", "COUNTER" };
  put(w, "{\"ts\":");
  timestamp(w, r->ts_ms);
  putf(w, ",\"epoch\":%" PRIu64 ",\"client\":", r->epoch);
  json_cstr(w, r->client ? r->client : "");
  put(w, ",\"kind\":");
  json_cstr(w, r->kind ? r->kind : "write");
  putf(w, ",\"ok_on\":\"%s\",\"failed_on\":\"%s\",\"error\":", cluster(r->ok_on), cluster(r->failed_on));
  json_cstr(w, r->error ? r->error : "");
  if (r->keyspace.len) {
    put(w, ",\"keyspace\":");
    (void)json_str(w, r->keyspace, SIZE_MAX);
  }
  if (r->table.len) {
    put(w, ",\"table\":");
    (void)json_str(w, r->table, SIZE_MAX);
  }
  if (r->batch_type >= 0) {
    put(w, ",\"batch_type\":");
    json_cstr(w, (size_t)r->batch_type < TDM_ARRAY_SIZE(batch_names) ? batch_names[r->batch_type] : "UNKNOWN");
    put(w, ",\"statements\":[");
    for (size_t i = 0; i < r->n_stmts; i++) {
      put(w, i ? ",{\"index\":" : "{\"index\":");
      putf(w, "%zu", i);
      statement(w, &r->stmts[i], r->values);
      tdm_writer_byte(w, '}');
    }
    tdm_writer_byte(w, ']');
  } else if (r->n_stmts) {
    statement(w, &r->stmts[0], false);
  }
  if (r->consistency >= 0) putf(w, ",\"consistency\":\"%s\"", tdm_journal_consistency_name(r->consistency));
  if (r->has_timestamp) putf(w, ",\"timestamp\":%" PRId64, r->timestamp);
  if (r->batch_type < 0 && r->n_stmts && r->values) values(w, &r->stmts[0]);
  put(w, "}\n");
  return tdm_writer_error(w);
}
