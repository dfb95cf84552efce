/* obs/log: level and format names, ISO-8601 stamps, exact text and JSON lines, escaping, truncation
 * that keeps JSON valid at every buffer size, the per-call-site rate limiter, and the writer thread
 * end to end (file output, suppression summary, reopen after rename, drop counting, log_safe). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <tandem/obs/log.h>
#include <tandem/util/time.h>

#define TS_MS 1714566896789LL /* 2024-05-01T12:34:56.789Z */

/* ---- a minimal JSON object checker: {"k":"string"|literal,...} on one line ---- */

static const char *json_string(const char *p)
{
  if (*p++ != '"') return NULL;
  while (*p && *p != '"') {
    if ((unsigned char)*p < 0x20) return NULL;
    if (*p == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return NULL;
        p += 4;
      } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
        return NULL;
      }
    }
    p++;
  }
  return *p == '"' ? p + 1 : NULL;
}

static bool json_object_line(const char *line, size_t len)
{
  if (len < 3 || line[len - 1] != '\n' || memchr(line, '\n', len - 1)) return false;
  char buf[4096];
  if (len >= sizeof(buf)) return false;
  memcpy(buf, line, len - 1);
  buf[len - 1] = '\0';
  const char *p = buf;
  if (*p++ != '{') return false;
  for (;;) {
    if (!(p = json_string(p)) || *p++ != ':') return false;
    if (*p == '"') {
      if (!(p = json_string(p))) return false;
    } else {
      const char *s = p;
      while (*p && strchr("0123456789-+.eEtrufalsn", *p)) p++;
      if (p == s) return false;
    }
    if (*p == ',') {
      p++;
      continue;
    }
    return p[0] == '}' && p[1] == '\0';
  }
}

/* ---- names and time ---- */

static void test_names(void **state)
{
  (void)state;
  tdm_log_level_t l;
  assert_int_equal(tdm_log_level_parse("warn", &l), 0);
  assert_int_equal(l, TDM_LOG_WARN);
  assert_int_equal(tdm_log_level_parse("TRACE", &l), 0);
  assert_int_equal(l, TDM_LOG_TRACE);
  assert_int_equal(tdm_log_level_parse("verbose", &l), TDM_EINVAL);
  assert_string_equal(tdm_log_level_name(TDM_LOG_PANIC), "PANIC");
  assert_string_equal(tdm_log_level_name((tdm_log_level_t)42), "?");
  tdm_log_format_t f;
  assert_int_equal(tdm_log_format_parse("JSON", &f), 0);
  assert_int_equal(f, TDM_LOG_JSON);
  assert_int_equal(tdm_log_format_parse("xml", &f), TDM_EINVAL);
}

static void test_iso8601(void **state)
{
  (void)state;
  char b[TDM_TIME_ISO8601_SIZE];
  assert_int_equal(tdm_time_iso8601(b, sizeof(b), TS_MS), 24);
  assert_string_equal(b, "2024-05-01T12:34:56.789Z");
  assert_int_equal(tdm_time_iso8601(b, sizeof(b), 0), 24);
  assert_string_equal(b, "1970-01-01T00:00:00.000Z");
  assert_int_equal(tdm_time_iso8601(b, sizeof(b) - 1, TS_MS), 0);
  assert_int_equal(tdm_time_iso8601(b, sizeof(b), -5), 0);
  assert_string_equal(b, "");
}

/* ---- exact lines ---- */

static void test_text_line(void **state)
{
  (void)state;
  char out[512];
  tdm_log_field_t f[] = { { "stream", "7", true }, { "cluster", "ORIGIN", false }, { "why", "two words", false } };
  const char *msg = "request timed out";
  size_t n = tdm_log_format_line(out, sizeof(out), TDM_LOG_TEXT, TS_MS, TDM_LOG_ERROR, "C-12 10.0.0.5:5123", f, 3,
                                 msg, strlen(msg));
  const char *want =
    "2024-05-01T12:34:56.789Z ERROR [C-12 10.0.0.5:5123] request timed out stream=7 cluster=ORIGIN why=\"two words\"\n";
  assert_int_equal(n, strlen(want));
  assert_memory_equal(out, want, n);

  n = tdm_log_format_line(out, sizeof(out), TDM_LOG_TEXT, TS_MS, TDM_LOG_INFO, NULL, NULL, 0, "up", 2);
  assert_int_equal(n, strlen("2024-05-01T12:34:56.789Z INFO up\n"));
  assert_memory_equal(out, "2024-05-01T12:34:56.789Z INFO up\n", n);
}

static void test_json_line(void **state)
{
  (void)state;
  char out[512];
  tdm_log_field_t f[] = { { "stream", "7", true }, { "cluster", "ORIGIN", false }, { "node", NULL, false } };
  const char *msg = "say \"hi\"\\";
  size_t n = tdm_log_format_line(out, sizeof(out), TDM_LOG_JSON, TS_MS, TDM_LOG_WARN, "O-3 127.0.0.2:9042", f, 3, msg,
                                 strlen(msg));
  const char *want = "{\"ts\":\"2024-05-01T12:34:56.789Z\",\"level\":\"WARN\",\"conn\":\"O-3 127.0.0.2:9042\","
                     "\"msg\":\"say \\\"hi\\\"\\\\\",\"stream\":7,\"cluster\":\"ORIGIN\",\"node\":null}\n";
  assert_int_equal(n, strlen(want));
  assert_memory_equal(out, want, n);
  assert_true(json_object_line(out, n));

  /* no tag: no conn member */
  n = tdm_log_format_line(out, sizeof(out), TDM_LOG_JSON, TS_MS, TDM_LOG_INFO, NULL, NULL, 0, "x", 1);
  const char *want2 = "{\"ts\":\"2024-05-01T12:34:56.789Z\",\"level\":\"INFO\",\"msg\":\"x\"}\n";
  assert_int_equal(n, strlen(want2));
  assert_memory_equal(out, want2, n);
}

static void test_escaping(void **state)
{
  (void)state;
  char out[512];
  /* newline, tab, a control byte, DEL, valid UTF-8 (é, €, 😀), a stray continuation byte, a truncated
   * sequence and an encoded surrogate */
  const char msg[] = "a\nb\tc\x01" "d\x7f" "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "\x80" "\xe2\x82" "\xed\xa0\x80" "z";
  size_t mlen = sizeof(msg) - 1;
  size_t n = tdm_log_format_line(out, sizeof(out), TDM_LOG_JSON, TS_MS, TDM_LOG_INFO, NULL, NULL, 0, msg, mlen);
  assert_true(json_object_line(out, n));
  out[n] = '\0';
  assert_non_null(strstr(out, "\"msg\":\"a\\nb\\tc\\u0001d\\u007f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                              "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffdz\""));

  n = tdm_log_format_line(out, sizeof(out), TDM_LOG_TEXT, TS_MS, TDM_LOG_INFO, NULL, NULL, 0, msg, mlen);
  out[n] = '\0';
  assert_non_null(strstr(out, " a\\nb\\tc\\x01d\\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\x80\\xe2\\x82\\xed\\xa0\\x80z\n"));
  assert_ptr_equal(strchr(out, '\n'), out + n - 1); /* one line, whatever the message held */
}

static void test_truncation_every_size(void **state)
{
  (void)state;
  char msg[3000];
  size_t m = 0;
  while (m + 8 < sizeof(msg)) {
    memcpy(msg + m, "\xe2\x82\xac\"q\\\n", 7); /* multi-byte, quote, letter, backslash, newline */
    m += 7;
  }
  tdm_log_field_t f[] = { { "stream", "12345", true }, { "cluster", "TARGET", false } };
  for (size_t cap = 128; cap <= 700; cap++) {
    char out[800];
    memset(out, 'X', sizeof(out));
    for (int fmt = 0; fmt < 2; fmt++) {
      size_t n = tdm_log_format_line(out, cap, (tdm_log_format_t)fmt, TS_MS, TDM_LOG_ERROR, "C-1 10.0.0.1:1", f, 2, msg,
                                     m);
      assert_true(n <= cap);
      assert_int_equal(out[n - 1], '\n');
      assert_int_equal(out[cap], 'X'); /* nothing written past cap */
      if (fmt == TDM_LOG_JSON) {
        assert_true(json_object_line(out, n));
      } else {
        assert_ptr_equal(memchr(out, '\n', n), out + n - 1);
      }
      out[n] = '\0';
      assert_non_null(strstr(out, "..."));
    }
  }
  /* a message that fits is never cut, and a field that does not fit is left out whole */
  char out[200];
  tdm_log_field_t big[] = { { "k", "v", false }, { "huge", msg, false } };
  size_t n = tdm_log_format_line(out, sizeof(out), TDM_LOG_JSON, TS_MS, TDM_LOG_INFO, NULL, big, 2, "short", 5);
  assert_true(json_object_line(out, n));
  out[n] = '\0';
  assert_non_null(strstr(out, "\"msg\":\"short\",\"k\":\"v\"}"));
  assert_null(strstr(out, "huge"));
}

/* ---- rate limiter ---- */

static void test_ratelimit_window(void **state)
{
  (void)state;
  tdm_log_ratelimit_t rl;
  tdm_log_rl_entry_t rep;
  tdm_log_ratelimit_init(&rl, 3, 1000);
  int passed = 0;
  for (int i = 0; i < 10; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "boom %d", i);
    if (tdm_log_ratelimit_allow(&rl, 77, TDM_LOG_ERROR, msg, 5000 + (uint64_t)i, &rep)) passed++;
    assert_int_equal(rep.suppressed, 0);
  }
  assert_int_equal(passed, 3);
  /* another key is independent */
  assert_true(tdm_log_ratelimit_allow(&rl, 78, TDM_LOG_WARN, "other", 5000, &rep));
  /* still inside the window (opened at 5000) */
  assert_false(tdm_log_ratelimit_allow(&rl, 77, TDM_LOG_ERROR, "late", 5999, &rep));
  assert_int_equal(rep.suppressed, 0);
  /* the window ended: the line passes and the previous window is reported once */
  assert_true(tdm_log_ratelimit_allow(&rl, 77, TDM_LOG_ERROR, "again", 6000, &rep));
  assert_int_equal(rep.suppressed, 8);
  assert_int_equal(rep.level, TDM_LOG_ERROR);
  assert_string_equal(rep.sample, "boom 3"); /* the first suppressed line */
  assert_true(tdm_log_ratelimit_allow(&rl, 77, TDM_LOG_ERROR, "again", 6001, &rep));
  assert_int_equal(rep.suppressed, 0);
}

static void test_ratelimit_expired_scan(void **state)
{
  (void)state;
  tdm_log_ratelimit_t rl;
  tdm_log_rl_entry_t rep, out;
  tdm_log_ratelimit_init(&rl, 1, 100);
  assert_true(tdm_log_ratelimit_allow(&rl, 5, TDM_LOG_WARN, "a", 0, &rep));
  assert_false(tdm_log_ratelimit_allow(&rl, 5, TDM_LOG_WARN, "b", 1, &rep));
  assert_false(tdm_log_ratelimit_allow(&rl, 5, TDM_LOG_WARN, "c", 2, &rep));
  assert_true(tdm_log_ratelimit_allow(&rl, 6, TDM_LOG_WARN, "quiet", 0, &rep)); /* nothing suppressed */
  assert_false(tdm_log_ratelimit_expired(&rl, 99, &out));                      /* window not over */
  assert_true(tdm_log_ratelimit_expired(&rl, 100, &out));
  assert_int_equal(out.key, 5);
  assert_int_equal(out.suppressed, 2);
  assert_string_equal(out.sample, "b");
  assert_false(tdm_log_ratelimit_expired(&rl, 100, &out)); /* key 6 freed silently, key 5 reported once */
  /* a freed key starts a fresh window */
  assert_true(tdm_log_ratelimit_allow(&rl, 5, TDM_LOG_WARN, "d", 150, &rep));
  assert_int_equal(rep.suppressed, 0);
}

static void test_ratelimit_table_full(void **state)
{
  (void)state;
  tdm_log_ratelimit_t rl;
  tdm_log_rl_entry_t rep;
  tdm_log_ratelimit_init(&rl, 1, 1000);
  /* keys k * 64 + 1 all probe from the same slot: 8 probes, so the 9th key is untracked */
  for (uint64_t k = 0; k < 8; k++) assert_true(tdm_log_ratelimit_allow(&rl, k * 64 + 1, TDM_LOG_ERROR, "x", 0, &rep));
  for (uint64_t k = 0; k < 8; k++) assert_false(tdm_log_ratelimit_allow(&rl, k * 64 + 1, TDM_LOG_ERROR, "x", 1, &rep));
  for (int i = 0; i < 5; i++) assert_true(tdm_log_ratelimit_allow(&rl, 8 * 64 + 1, TDM_LOG_ERROR, "y", 2, &rep));
}

/* ---- the writer thread ---- */

static char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 20);
  *len = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  return buf;
}

static size_t count_substr(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static void log_same_site(int i) { tdm_log_error("C-1 1.2.3.4:5", "backend reset, attempt %d", i); }

static void test_writer_file_summary_reopen(void **state)
{
  (void)state;
  char path[] = "/tmp/tdm-test-log-XXXXXX";
  int tmp = mkstemp(path);
  assert_true(tmp >= 0);
  close(tmp);
  tdm_log_options_t o = { .level = TDM_LOG_INFO, .format = TDM_LOG_JSON, .file = path, .burst = 2, .window_ms = 200 };
  assert_int_equal(tdm_log_start(&o), 0);
  assert_int_equal(tdm_log_start(&o), TDM_EINVAL); /* once */
  for (int i = 0; i < 7; i++) log_same_site(i);
  tdm_log_info(NULL, "plain %s", "info");
  int evaluated = 0;
  tdm_log_debug(NULL, "never %d", ++evaluated); /* level INFO: arguments not evaluated */
  assert_int_equal(evaluated, 0);
  tdm_log_flush();
  assert_int_equal(tdm_log_suppressed(), 5);
  usleep(300 * 1000); /* the window ends; the writer publishes the summary on its tick or at flush */
  tdm_log_flush();

  size_t len;
  char *text = slurp(path, &len);
  assert_non_null(text);
  assert_int_equal(count_substr(text, "backend reset"), 3); /* 2 lines + the summary's sample */
  assert_non_null(strstr(text, "\"msg\":\"5 similar messages suppressed in the last 1 s, first: backend reset, attempt 2\""));
  assert_non_null(strstr(text, "\"suppressed\":5"));
  assert_non_null(strstr(text, "\"conn\":\"C-1 1.2.3.4:5\""));
  assert_int_equal(count_substr(text, "plain info"), 1);
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    assert_true(json_object_line(line, (size_t)(nl - line) + 1));
    line = nl + 1;
  }
  free(text);

  /* logrotate: move the file away, reopen, the next lines land in a new file */
  char rotated[sizeof(path) + 4];
  snprintf(rotated, sizeof(rotated), "%s.1", path);
  assert_int_equal(rename(path, rotated), 0);
  tdm_log_reopen();
  tdm_log_flush();
  tdm_log_set_format(TDM_LOG_TEXT);
  tdm_log_warn(NULL, "after rotation");
  tdm_log_flush();
  text = slurp(path, &len);
  assert_non_null(text);
  assert_non_null(strstr(text, " WARN after rotation\n"));
  free(text);
  text = slurp(rotated, &len);
  assert_null(strstr(text, "after rotation"));
  free(text);
  tdm_log_stop();
  tdm_log_set_level(TDM_LOG_INFO);
  unlink(path);
  unlink(rotated);
}

typedef struct reader_s {
  int fd;      /* pipe read end */
  char *buf;   /* everything read */
  size_t len;  /* bytes read */
  size_t cap;  /* buf size */
} reader_t;

static void *reader_main(void *arg)
{
  reader_t *r = arg;
  for (;;) {
    if (r->len == r->cap) {
      r->cap *= 2;
      r->buf = realloc(r->buf, r->cap);
    }
    ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
    if (n <= 0) break;
    r->len += (size_t)n;
  }
  return NULL;
}

static void test_writer_drops_when_output_stalls(void **state)
{
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  (void)fcntl(p[1], F_SETPIPE_SZ, 4096);
  tdm_log_options_t o = { .level = TDM_LOG_INFO, .format = TDM_LOG_TEXT, .fd = p[1], .use_fd = true, .queue_lines = 4 };
  assert_int_equal(tdm_log_start(&o), 0);
  char pad[1001];
  memset(pad, 'p', 1000);
  pad[1000] = '\0';
  const int total = 200;
  for (int i = 0; i < total; i++) tdm_log_info(NULL, "line %03d %s", i, pad); /* nobody reads the pipe yet */
  uint64_t dropped = tdm_log_dropped();
  assert_true(dropped > 0);
  assert_true(dropped < (uint64_t)total);
  reader_t r = { p[0], malloc(1 << 16), 0, 1 << 16 };
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
  tdm_log_flush();
  assert_int_equal(tdm_log_dropped(), dropped); /* nothing more was lost */
  tdm_log_stop();
  close(p[1]);
  pthread_join(th, NULL);
  close(p[0]);
  r.buf = realloc(r.buf, r.len + 1);
  r.buf[r.len] = '\0';
  size_t lines = count_substr(r.buf, " INFO line ");
  assert_int_equal(lines + dropped, (size_t)total); /* every line written or counted, once */
  /* the writer reports losses as it notices them: the reports add up to the count */
  unsigned long long reported = 0;
  size_t reports = 0;
  for (const char *q = r.buf; (q = strstr(q, " lines dropped dropped=")); reports++) {
    q += strlen(" lines dropped dropped=");
    reported += strtoull(q, NULL, 10);
  }
  assert_true(reports >= 1);
  assert_int_equal(reported, dropped);
  free(r.buf);
}

static void test_log_safe(void **state)
{
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(p[1], STDERR_FILENO) >= 0);
  tdm_log_safe("crashed in the test");
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  close(p[1]);
  char buf[128] = { 0 };
  ssize_t n = read(p[0], buf, sizeof(buf) - 1);
  close(p[0]);
  assert_int_equal(n, (ssize_t)strlen("tandem: crashed in the test\n"));
  assert_string_equal(buf, "tandem: crashed in the test\n");
}

static void test_level_changes(void **state)
{
  (void)state;
  tdm_log_set_level(TDM_LOG_ERROR);
  assert_false(tdm_log_enabled(TDM_LOG_WARN));
  assert_true(tdm_log_enabled(TDM_LOG_ERROR));
  assert_true(tdm_log_enabled(TDM_LOG_PANIC));
  int evaluated = 0;
  tdm_log_warn(NULL, "%d", ++evaluated);
  tdm_log_trace(NULL, "%d", ++evaluated);
  assert_int_equal(evaluated, 0);
  tdm_log_set_level(TDM_LOG_TRACE);
  assert_true(tdm_log_enabled(TDM_LOG_TRACE));
  tdm_log_set_level((tdm_log_level_t)99); /* ignored */
  assert_int_equal(tdm_log_get_level(), TDM_LOG_TRACE);
  tdm_log_set_level(TDM_LOG_INFO);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_iso8601),
    cmocka_unit_test(test_text_line),
    cmocka_unit_test(test_json_line),
    cmocka_unit_test(test_escaping),
    cmocka_unit_test(test_truncation_every_size),
    cmocka_unit_test(test_ratelimit_window),
    cmocka_unit_test(test_ratelimit_expired_scan),
    cmocka_unit_test(test_ratelimit_table_full),
    cmocka_unit_test(test_writer_file_summary_reopen),
    cmocka_unit_test(test_writer_drops_when_output_stalls),
    cmocka_unit_test(test_log_safe),
    cmocka_unit_test(test_level_changes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
