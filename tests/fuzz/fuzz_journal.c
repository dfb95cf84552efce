/* libFuzzer target for the divergence journal's line format (route/journal.h): any query text, any
 * values span (well-formed or not, named or not) and any names give exactly one line of valid JSON:
 * printable UTF-8 only, strings closed, brackets balanced, ending in "}\n"; a values span that does not
 * parse is left out (values_omitted), never read past its end. */
#include <tandem/route/journal.h>

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "fuzz_journal: check failed at line %d: %s\n", __LINE__, #cond); \
      abort();                                                                          \
    }                                                                                   \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Length of a valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_ok(const uint8_t *p, size_t n)
{
  size_t k = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
  if (k == 0 || k > n) return 0;
  for (size_t i = 1; i < k; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return k;
}

/* A small structural JSON check: strings closed and escaped, brackets balanced, one trailing newline. */
static void check_json_line(const uint8_t *s, size_t n)
{
  CHECK(n >= 3 && s[0] == '{' && s[n - 2] == '}' && s[n - 1] == '\n');
  int depth = 0;
  bool in_str = false;
  for (size_t i = 0; i + 1 < n;) {
    uint8_t c = s[i];
    CHECK(c >= 0x20 && c != 0x7f); /* no raw control byte, no second line */
    if (c >= 0x80) {
      size_t k = utf8_ok(s + i, n - 1 - i);
      CHECK(k > 0 && in_str);
      i += k;
      continue;
    }
    if (in_str) {
      if (c == '\\') {
        CHECK(i + 2 < n);
        uint8_t e = s[i + 1];
        CHECK(e == '"' || e == '\\' || e == 'n' || e == 'r' || e == 't' || e == 'u');
        i += e == 'u' ? 6 : 2;
        continue;
      }
      if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      depth--;
      CHECK(depth >= 0);
    }
    i++;
  }
  CHECK(!in_str && depth == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 4) return 0;
  uint8_t mode = data[0];
  uint16_t count = (uint16_t)(data[1] | data[2] << 8);
  size_t split = size > 4 ? 4 + data[3] % (size - 3) : 4;
  if (split > size) split = size;
  /* the values span is copied so that ASan sees any read past its end */
  size_t vlen = size - split;
  uint8_t *values = malloc(vlen ? vlen : 1);
  if (!values) return 0;
  memcpy(values, data + split, vlen);
  tdm_journal_stmt_t st[2] = {
    { .query = { (const char *)data + 4, split - 4 }, .values = values, .values_len = vlen, .values_count = count,
      .named = (mode & 1) != 0 },
    { .prepared_id = { data, (int32_t)(size < 16 ? size : 16) }, .values = values, .values_len = vlen,
      .values_count = (uint16_t)(count & 7) },
  };
  tdm_journal_record_t r = {
    .ts_ms = (int64_t)(mode & 0x80 ? -1 : 1) * (int64_t)count * 86400000,
    .epoch = count,
    .client = (const char *)"10.0.0.1:9042",
    .kind = "write",
    .ok_on = mode & 2 ? 1 : 0,
    .failed_on = mode & 2 ? 0 : 1,
    .error = "WRITE_TIMEOUT: x",
    .keyspace = { (const char *)data + 4, (split - 4) / 2 },
    .consistency = (int)(mode >> 3) - 2,
    .has_timestamp = (mode & 4) != 0,
    .timestamp = (int64_t)count << 40,
    .batch_type = mode & 8 ? (int)(mode >> 4) % 4 - 1 : -1,
    .stmts = st,
    .n_stmts = mode & 8 ? 2 : 1,
    .values = (mode & 0x40) != 0,
  };
  tdm_writer_t w;
  tdm_writer_init(&w);
  CHECK(tdm_journal_format(&r, &w) == 0);
  check_json_line(w.buf, w.len);
  tdm_writer_free(&w);
  free(values);
  return 0;
}
