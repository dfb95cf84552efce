/* Divergence journal (route/journal.h, behaviour.md §6.2): exact JSON lines for QUERY, EXECUTE and BATCH
 * records (every field, values in hex, named values, null and unset, escaping, cuts), and the writer
 * thread: lines in order, rotation to .1 at max_bytes, a new path applied in order with queued lines,
 * a full queue refusing lines without blocking (writer held in open(2) on a FIFO), a journal that is
 * off, a path that cannot be opened. */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>
#include <tandem/conf/conf.h>
#include <tandem/obs/log.h>
#include <tandem/proto/opcodes.h>
#include <tandem/route/journal.h>

/* 2023-11-14T22:13:20.123Z */
#define TS 1700000000123LL

static char *format(const tdm_journal_record_t *r)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_journal_format(r, &w), 0);
  tdm_writer_byte(&w, 0);
  assert_int_equal(tdm_writer_error(&w), 0);
  char *s = (char *)w.buf; /* growable: ours now */
  return s;
}

/* Values as on the wire: [int]len + bytes, optionally preceded by a [string] name. */
static size_t put_value(uint8_t *p, const char *name, int32_t len, const char *bytes)
{
  size_t k = 0;
  if (name) {
    size_t n = strlen(name);
    p[k++] = (uint8_t)(n >> 8);
    p[k++] = (uint8_t)n;
    memcpy(p + k, name, n);
    k += n;
  }
  p[k++] = (uint8_t)((uint32_t)len >> 24);
  p[k++] = (uint8_t)((uint32_t)len >> 16);
  p[k++] = (uint8_t)((uint32_t)len >> 8);
  p[k++] = (uint8_t)len;
  if (len > 0) {
    memcpy(p + k, bytes, (size_t)len);
    k += (size_t)len;
  }
  return k;
}

static void test_format_query(void **state)
{
  uint8_t vals[64];
  size_t n = put_value(vals, NULL, 2, "\x01\xab");
  n += put_value(vals + n, NULL, -1, NULL);
  n += put_value(vals + n, NULL, -2, NULL);
  tdm_journal_stmt_t st = { .query = TDM_STR("INSERT INTO ks.t (k, v, w) VALUES (?, ?, ?)"), .values = vals,
                            .values_len = n, .values_count = 3 };
  tdm_journal_record_t r = { .ts_ms = TS, .epoch = 3, .client = "10.0.0.5:5123", .kind = "write",
                             .ok_on = TDM_CONF_ORIGIN, .failed_on = TDM_CONF_TARGET,
                             .error = "WRITE_TIMEOUT: Operation timed out", .keyspace = TDM_STR("ks"),
                             .table = TDM_STR("t"), .consistency = TDM_CL_LOCAL_QUORUM, .has_timestamp = true,
                             .timestamp = 1700000000123456LL, .batch_type = -1, .stmts = &st, .n_stmts = 1,
                             .values = true };
  char *s = format(&r);
  assert_string_equal(s, "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"epoch\":3,\"client\":\"10.0.0.5:5123\","
                         "\"kind\":\"write\",\"ok_on\":\"ORIGIN\",\"failed_on\":\"TARGET\","
                         "\"error\":\"WRITE_TIMEOUT: Operation timed out\",\"keyspace\":\"ks\",\"table\":\"t\","
                         "\"query\":\"INSERT INTO ks.t (k, v, w) VALUES (?, ?, ?)\",\"consistency\":\"LOCAL_QUORUM\","
                         "\"timestamp\":1700000000123456,\"values\":[\"01ab\",null,\"unset\"]}\n");
  free(s);
  /* the same without write_divergence_log_values, timestamp, keyspace or table: those keys are absent */
  r.values = false;
  r.has_timestamp = false;
  r.keyspace = (tdm_str_t){ 0 };
  r.table = (tdm_str_t){ 0 };
  s = format(&r);
  assert_null(strstr(s, "\"values\""));
  assert_null(strstr(s, "\"timestamp\""));
  assert_null(strstr(s, "\"keyspace\""));
  assert_null(strstr(s, "\"table\""));
  assert_non_null(strstr(s, "\"consistency\":\"LOCAL_QUORUM\"}\n"));
  free(s);
}

static void test_format_execute_named(void **state)
{
  uint8_t vals[64];
  size_t n = put_value(vals, "k", 1, "a");
  n += put_value(vals + n, "v", 0, "");
  const uint8_t id[4] = { 0xde, 0xad, 0xbe, 0xef };
  tdm_journal_stmt_t st = { .query = TDM_STR("UPDATE t SET v = :v WHERE k = :k"), .prepared_id = { id, 4 },
                            .values = vals, .values_len = n, .values_count = 2, .named = true };
  tdm_journal_record_t r = { .ts_ms = TS, .epoch = 1, .client = "c", .kind = "counter", .ok_on = TDM_CONF_TARGET,
                             .failed_on = TDM_CONF_ORIGIN, .error = "no response from ORIGIN within 10000 ms",
                             .consistency = -1, .batch_type = -1, .stmts = &st, .n_stmts = 1, .values = true };
  char *s = format(&r);
  assert_string_equal(s, "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"epoch\":1,\"client\":\"c\",\"kind\":\"counter\","
                         "\"ok_on\":\"TARGET\",\"failed_on\":\"ORIGIN\","
                         "\"error\":\"no response from ORIGIN within 10000 ms\",\"prepared_id\":\"deadbeef\","
                         "\"query\":\"UPDATE t SET v = :v WHERE k = :k\",\"values\":{\"k\":\"61\",\"v\":\"\"}}\n");
  free(s);
}

static void test_format_batch(void **state)
{
  uint8_t vals[32];
  size_t n = put_value(vals, NULL, 1, "x");
  const uint8_t id[2] = { 0x0a, 0x0b };
  tdm_journal_stmt_t st[2] = {
    { .query = TDM_STR("INSERT INTO ks.a (k) VALUES ('1')") },
    { .prepared_id = { id, 2 }, .values = vals, .values_len = n, .values_count = 1 },
  };
  tdm_journal_record_t r = { .ts_ms = TS, .epoch = 9, .client = "c", .kind = "lwt", .ok_on = TDM_CONF_ORIGIN,
                             .failed_on = TDM_CONF_TARGET, .error = "e", .keyspace = TDM_STR("ks"),
                             .table = TDM_STR("a"), .consistency = TDM_CL_ONE, .batch_type = TDM_BATCH_UNLOGGED,
                             .stmts = st, .n_stmts = 2, .values = true };
  char *s = format(&r);
  assert_string_equal(s, "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"epoch\":9,\"client\":\"c\",\"kind\":\"lwt\","
                         "\"ok_on\":\"ORIGIN\",\"failed_on\":\"TARGET\",\"error\":\"e\",\"keyspace\":\"ks\","
                         "\"table\":\"a\",\"batch_type\":\"UNLOGGED\",\"statements\":["
                         "{\"index\":0,\"query\":\"INSERT INTO ks.a (k) VALUES ('1')\",\"values\":[]},"
                         "{\"index\":1,\"prepared_id\":\"0a0b\",\"values\":[\"78\"]}],\"consistency\":\"ONE\"}\n");
  free(s);
}

static void test_format_escaping_and_cuts(void **state)
{
  /* quotes, backslash, newline, tab, a control byte, valid UTF-8 (é), and an invalid byte */
  const char text[] = "SELECT \"x\" \\ \n\t\x01 caf\xc3\xa9 \xff";
  tdm_journal_stmt_t st = { .query = { text, sizeof(text) - 1 } };
  tdm_journal_record_t r = { .ts_ms = TS, .client = "c\"1", .kind = "write", .error = "a\nb", .consistency = -1,
                             .batch_type = -1, .stmts = &st, .n_stmts = 1 };
  char *s = format(&r);
  assert_non_null(strstr(s, "\"client\":\"c\\\"1\""));
  assert_non_null(strstr(s, "\"error\":\"a\\nb\""));
  assert_non_null(strstr(s, "\"query\":\"SELECT \\\"x\\\" \\\\ \\n\\t\\u0001 caf\xc3\xa9 \\u00ff\"}"));
  assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1); /* one line */
  free(s);
  /* a long text is cut and says so; values too big for a line are left out and counted */
  size_t big = TDM_JOURNAL_TEXT_MAX + 100;
  char *q = malloc(big);
  memset(q, 'a', big);
  size_t vlen = TDM_JOURNAL_LINE_MAX; /* one value of 1 MiB: its hex alone is twice the cap */
  uint8_t *vals = calloc(1, vlen + 4);
  vals[0] = (uint8_t)((vlen - 4) >> 24);
  vals[1] = (uint8_t)((vlen - 4) >> 16);
  vals[2] = (uint8_t)((vlen - 4) >> 8);
  vals[3] = (uint8_t)(vlen - 4);
  tdm_journal_stmt_t st2 = { .query = { q, big }, .values = vals, .values_len = vlen, .values_count = 1 };
  r.stmts = &st2;
  r.values = true;
  s = format(&r);
  assert_non_null(strstr(s, "\",\"query_truncated\":true"));
  assert_non_null(strstr(s, ",\"values_omitted\":1}"));
  assert_true(strlen(s) < TDM_JOURNAL_TEXT_MAX + 1024);
  free(s);
  free(q);
  free(vals);
  assert_string_equal(tdm_journal_consistency_name(TDM_CL_EACH_QUORUM), "EACH_QUORUM");
  assert_string_equal(tdm_journal_consistency_name(99), "UNKNOWN");
}

/* ---- the writer thread ---- */

typedef struct dir_s {
  char path[128]; /* private directory */
} dir_t;

static void dir_make(dir_t *d)
{
  snprintf(d->path, sizeof(d->path), "/tmp/tdm-journal-%d-XXXXXX", (int)getpid());
  assert_non_null(mkdtemp(d->path));
}

static void dir_remove(dir_t *d)
{
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
  assert_int_equal(system(cmd), 0);
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = calloc(1, 65536);
  size_t n = fread(buf, 1, 65535, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void submit(tdm_journal_t *j, const char *line) { assert_int_equal(tdm_journal_submit(j, line, strlen(line)), 0); }

static void test_writer_rotation(void **state)
{
  dir_t d;
  dir_make(&d);
  char path[200], old[210];
  snprintf(path, sizeof(path), "%s/div.jsonl", d.path);
  snprintf(old, sizeof(old), "%s.1", path);
  tdm_journal_t *j;
  assert_int_equal(tdm_journal_new(NULL, &j), 0);
  tdm_journal_configure(j, path, 100);
  /* 40-byte lines: two fit in 100 bytes, the third starts a new file */
  const char *l[4] = { "{\"n\":1,\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaa\"}\n", "{\"n\":2,\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaa\"}\n",
                       "{\"n\":3,\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaa\"}\n", "{\"n\":4,\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaa\"}\n" };
  assert_int_equal(strlen(l[0]), 40);
  for (int i = 0; i < 3; i++) submit(j, l[i]);
  tdm_journal_flush(j);
  char *a = slurp(path), *b = slurp(old);
  assert_non_null(a);
  assert_non_null(b);
  assert_string_equal(b, "{\"n\":1,\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaa\"}\n{\"n\":2,\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaa\"}\n");
  assert_string_equal(a, l[2]);
  free(a);
  free(b);
  /* the next rotation replaces .1 */
  for (int i = 3; i < 4; i++) submit(j, l[i]);
  submit(j, l[0]);
  tdm_journal_flush(j);
  a = slurp(path);
  b = slurp(old);
  assert_string_equal(a, l[0]);
  char want[128];
  snprintf(want, sizeof(want), "%s%s", l[2], l[3]);
  assert_string_equal(b, want);
  free(a);
  free(b);
  tdm_journal_stats_t st;
  tdm_journal_stats(j, &st);
  assert_int_equal(st.written, 5);
  assert_int_equal(st.rotations, 2);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.lost, 0);
  tdm_journal_free(j);
  dir_remove(&d);
}

static void test_writer_reconfigure(void **state)
{
  dir_t d;
  dir_make(&d);
  char pa[200], pb[200];
  snprintf(pa, sizeof(pa), "%s/a.jsonl", d.path);
  snprintf(pb, sizeof(pb), "%s/b.jsonl", d.path);
  tdm_journal_t *j;
  assert_int_equal(tdm_journal_new(NULL, &j), 0);
  /* off: nothing is accepted (and nothing is counted as dropped) */
  assert_int_equal(tdm_journal_submit(j, "x\n", 2), TDM_EUNAVAILABLE);
  tdm_journal_configure(j, pa, 1 << 20);
  submit(j, "1\n");
  submit(j, "2\n");
  /* lines queued before the change go to the old file, the ones after to the new one */
  tdm_journal_configure(j, pb, 1 << 20);
  submit(j, "3\n");
  tdm_journal_configure(j, pb, 1 << 20); /* same path: no reopen, nothing lost */
  submit(j, "4\n");
  tdm_journal_flush(j);
  char *a = slurp(pa), *b = slurp(pb);
  assert_string_equal(a, "1\n2\n");
  assert_string_equal(b, "3\n4\n");
  free(a);
  free(b);
  /* appending to an existing file keeps its contents */
  tdm_journal_configure(j, pa, 1 << 20);
  submit(j, "5\n");
  tdm_journal_configure(j, "", 0);
  assert_int_equal(tdm_journal_submit(j, "6\n", 2), TDM_EUNAVAILABLE);
  tdm_journal_flush(j);
  a = slurp(pa);
  assert_string_equal(a, "1\n2\n5\n");
  free(a);
  tdm_journal_stats_t st;
  tdm_journal_stats(j, &st);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.written, 5);
  tdm_journal_free(j);
  dir_remove(&d);
}

/* The writer is stuck in open(2) on a FIFO nobody reads: the queue fills and refuses lines at once. */
static void test_writer_queue_full(void **state)
{
  dir_t d;
  dir_make(&d);
  char fifo[200];
  snprintf(fifo, sizeof(fifo), "%s/fifo", d.path);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  tdm_journal_options_t o = { .queue_lines = 4 };
  tdm_journal_t *j;
  assert_int_equal(tdm_journal_new(&o, &j), 0);
  tdm_journal_configure(j, fifo, 1 << 20);
  int accepted = 0, dropped = 0;
  for (int i = 0; i < 10; i++) {
    char line[16];
    int n = snprintf(line, sizeof(line), "%d\n", i);
    int rc = tdm_journal_submit(j, line, (size_t)n);
    if (rc == 0) accepted++;
    else if (rc == TDM_EOVERFLOW) dropped++;
    else fail_msg("submit: %s", tdm_strerror(rc));
  }
  assert_int_equal(accepted, 4);
  assert_int_equal(dropped, 6);
  /* a byte bound refuses a line that would not fit even when few lines wait */
  tdm_journal_stats_t st;
  tdm_journal_stats(j, &st);
  assert_int_equal(st.dropped, 6);
  /* a reader lets the writer go on: the four accepted lines arrive, in order */
  int rfd = open(fifo, O_RDONLY);
  assert_true(rfd >= 0);
  tdm_journal_flush(j);
  char buf[64] = { 0 };
  size_t got = 0;
  while (got < 8) {
    ssize_t r = read(rfd, buf + got, sizeof(buf) - 1 - got);
    assert_true(r > 0);
    got += (size_t)r;
  }
  assert_string_equal(buf, "0\n1\n2\n3\n");
  tdm_journal_free(j);
  close(rfd);
  dir_remove(&d);
}

static void test_writer_bytes_bound_and_open_failure(void **state)
{
  tdm_journal_options_t o = { .queue_bytes = 8 };
  tdm_journal_t *j;
  assert_int_equal(tdm_journal_new(&o, &j), 0);
  tdm_journal_configure(j, "/nonexistent-dir-tdm/journal.jsonl", 1 << 20);
  assert_int_equal(tdm_journal_submit(j, "0123456789\n", 11), TDM_EOVERFLOW); /* longer than the whole queue */
  submit(j, "ab\n");
  tdm_journal_flush(j);
  tdm_journal_stats_t st;
  tdm_journal_stats(j, &st);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.lost, 1); /* accepted, but no file could be opened */
  assert_int_equal(st.written, 0);
  tdm_journal_free(j);
  tdm_journal_free(NULL);
}

int main(void)
{
  tdm_log_set_level(TDM_LOG_FATAL); /* the open failure is logged on purpose */
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_format_query),
    cmocka_unit_test(test_format_execute_named),
    cmocka_unit_test(test_format_batch),
    cmocka_unit_test(test_format_escaping_and_cuts),
    cmocka_unit_test(test_writer_rotation),
    cmocka_unit_test(test_writer_reconfigure),
    cmocka_unit_test(test_writer_queue_full),
    cmocka_unit_test(test_writer_bytes_bound_and_open_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
