/* Statement classifier: RT-01 (the table in tests/data/classify/statements.tsv, each row also fed as
 * every prefix from an exact-size heap block), RT-02 (random texts that start with SELECT after random
 * comments, whitespace and case are always reads), RT-03 (FROM hidden in strings, identifiers, comments
 * and function arguments), and the system / virtual-table helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/proto/classify.h>

/* ---- the table ---- */

typedef struct row_s {
  int line;              /* line in the .tsv, for messages */
  char *text;            /* decoded statement (heap, exactly text_len bytes + a NUL for printing) */
  size_t text_len;       /* decoded length (may contain NUL bytes) */
  const char *field[6];  /* class, kind, object, keyspace, table, flags (point into the file buffer) */
} row_t;

typedef struct table_s {
  char *file;  /* whole file, fields NUL-terminated in place */
  row_t *rows; /* parsed rows */
  size_t n;    /* row count */
} table_t;

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes \n \r \t \\ \xHH into a fresh heap block. */
static char *decode(const char *s, size_t *out_len)
{
  size_t n = strlen(s), j = 0;
  char *out = malloc(n + 1);
  assert_non_null(out);
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\\' || i + 1 >= n) {
      out[j++] = s[i];
      continue;
    }
    char e = s[++i];
    if (e == 'n') out[j++] = '\n';
    else if (e == 'r') out[j++] = '\r';
    else if (e == 't') out[j++] = '\t';
    else if (e == '\\') out[j++] = '\\';
    else if (e == 'x' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      fail_msg("bad escape \\%c in <%s>", e, s);
    }
  }
  out[j] = '\0';
  *out_len = j;
  return out;
}

static void load_table(table_t *t)
{
  const char *dir = getenv("TDM_SOURCE_DIR");
  char path[4096];
  int pn = snprintf(path, sizeof(path), "%s/tests/data/classify/statements.tsv", dir ? dir : ".");
  assert_true(pn > 0 && (size_t)pn < sizeof(path));
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  assert_true(size > 0);
  rewind(f);
  t->file = malloc((size_t)size + 1);
  assert_non_null(t->file);
  assert_int_equal(fread(t->file, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  t->file[size] = '\0';
  t->rows = calloc((size_t)size, sizeof(row_t)); /* at most one row per byte */
  assert_non_null(t->rows);
  t->n = 0;
  int line = 0;
  for (char *p = t->file; *p;) {
    char *eol = strchr(p, '\n');
    if (eol) *eol = '\0';
    line++;
    if (*p != '#' && *p != '\0') {
      row_t *r = &t->rows[t->n++];
      char *cols[7], *tab;
      int nc = 0;
      cols[nc++] = p;
      while (nc < 7 && (tab = strchr(cols[nc - 1], '\t')) != NULL) {
        *tab = '\0';
        cols[nc++] = tab + 1;
      }
      if (nc != 7 || strchr(cols[6], '\t')) fail_msg("line %d: want 7 tab-separated columns", line);
      r->line = line;
      r->text = decode(cols[0], &r->text_len);
      for (int i = 0; i < 6; i++) r->field[i] = cols[i + 1];
    }
    if (!eol) break;
    p = eol + 1;
  }
}

static void free_table(table_t *t)
{
  for (size_t i = 0; i < t->n; i++) free(t->rows[i].text);
  free(t->rows);
  free(t->file);
}

static uint32_t parse_flags(const char *s, int line, enum tdm_batch_type *batch, bool *has_batch)
{
  static const struct {
    const char *name; /* token in the flags column */
    uint32_t bit;     /* TDM_CLASSIFY_F_* */
  } names[] = {
    { "lwt", TDM_CLASSIFY_F_LWT },           { "nondet", TDM_CLASSIFY_F_NONDET },
    { "json", TDM_CLASSIFY_F_JSON },         { "distinct", TDM_CLASSIFY_F_DISTINCT },
    { "system", TDM_CLASSIFY_F_SYSTEM_KS },  { "virtual", TDM_CLASSIFY_F_VIRTUAL },
    { "insights", TDM_CLASSIFY_F_INSIGHTS }, { "ifexists", TDM_CLASSIFY_F_IF_EXISTS },
  };
  uint32_t flags = 0;
  *has_batch = false;
  if (strcmp(s, "-") == 0) return 0;
  const char *p = s;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    bool known = false;
    for (size_t i = 0; i < TDM_ARRAY_SIZE(names); i++) {
      if (strlen(names[i].name) == n && memcmp(names[i].name, p, n) == 0) {
        flags |= names[i].bit;
        known = true;
      }
    }
    static const char *const batches[] = { "logged", "unlogged", "counter" };
    for (int b = 0; b < 3; b++) {
      if (strlen(batches[b]) == n && memcmp(batches[b], p, n) == 0) {
        *batch = (enum tdm_batch_type)b;
        *has_batch = true;
        known = true;
      }
    }
    if (!known) fail_msg("line %d: unknown flag <%.*s>", line, (int)n, p);
    p += n + (e ? 1 : 0);
  }
  return flags;
}

/* The canonical name, or "-" when absent. */
static void name_text(tdm_cql_name_t n, char *buf, size_t cap)
{
  size_t len;
  if (!tdm_cql_name_is_set(n)) {
    snprintf(buf, cap, "-");
    return;
  }
  assert_int_equal(tdm_cql_name_copy(n, buf, cap, &len), 0);
}

/* Checks one row; returns the number of mismatches (printed). */
static int check_row(const row_t *r)
{
  tdm_classification_t c;
  char *copy = malloc(r->text_len ? r->text_len : 1);
  assert_non_null(copy);
  memcpy(copy, r->text, r->text_len);
  tdm_stmt_kind_t k = tdm_classify(copy, r->text_len, &c);
  assert_int_equal(k, c.kind);

  char ks[256], tb[256];
  name_text(c.keyspace, ks, sizeof(ks));
  name_text(c.table, tb, sizeof(tb));
  enum tdm_batch_type batch = TDM_BATCH_LOGGED;
  bool has_batch;
  uint32_t flags = parse_flags(r->field[5], r->line, &batch, &has_batch);
  int bad = 0;
  bad += strcmp(tdm_classify_class_name(c.cls), r->field[0]) != 0;
  bad += strcmp(tdm_classify_kind_name(c.kind), r->field[1]) != 0;
  bad += strcmp(tdm_classify_object_name(c.object), r->field[2]) != 0;
  bad += strcmp(ks, r->field[3]) != 0;
  bad += strcmp(tb, r->field[4]) != 0;
  bad += c.flags != flags;
  bad += (c.kind == TDM_CLASSIFY_KIND_BATCH) != has_batch;
  bad += has_batch && c.batch != batch;
  if (bad) {
    fprintf(stderr,
            "line %d <%s>:\n  got    %s %s %s ks=%s table=%s flags=0x%x batch=%d\n"
            "  expect %s %s %s ks=%s table=%s flags=0x%x (%s)\n",
            r->line, r->text, tdm_classify_class_name(c.cls), tdm_classify_kind_name(c.kind),
            tdm_classify_object_name(c.object), ks, tb, c.flags, (int)c.batch, r->field[0], r->field[1],
            r->field[2], r->field[3], r->field[4], flags, r->field[5]);
  }
  free(copy);
  return bad ? 1 : 0;
}

static void test_table(void **state)
{
  table_t t;
  load_table(&t);
  assert_true(t.n >= 200);
  int failures = 0;
  for (size_t i = 0; i < t.n; i++) failures += check_row(&t.rows[i]);
  if (failures) fail_msg("%d of %zu rows differ", failures, t.n);
  free_table(&t);
}

static bool name_within(tdm_cql_name_t n, const char *buf, size_t len)
{
  if (!tdm_cql_name_is_set(n)) return true;
  return n.text.ptr >= buf && n.text.ptr + n.text.len <= buf + len;
}

/* Every prefix of every row, from an exact-size heap block: no over-read (ASan), names inside the
 * block, and a SELECT stays a SELECT as soon as its first token is complete. */
static void test_table_prefixes(void **state)
{
  table_t t;
  load_table(&t);
  for (size_t i = 0; i < t.n; i++) {
    const row_t *r = &t.rows[i];
    tdm_classification_t full;
    (void)tdm_classify(r->text, r->text_len, &full);
    /* End of the first token: every prefix at least this long starts with the same complete keyword. */
    tdm_cql_lexer_t lx;
    tdm_cql_token_t first;
    tdm_cql_lexer_init(&lx, r->text, r->text_len);
    (void)tdm_cql_lexer_next(&lx, &first);
    size_t first_end = first.offset + first.text.len;
    for (size_t n = 0; n <= r->text_len; n++) {
      char *copy = malloc(n ? n : 1);
      assert_non_null(copy);
      memcpy(copy, r->text, n);
      tdm_classification_t c;
      (void)tdm_classify(copy, n, &c);
      assert_true(name_within(c.keyspace, copy, n));
      assert_true(name_within(c.table, copy, n));
      if (full.kind == TDM_CLASSIFY_KIND_SELECT && n >= first_end) {
        if (c.kind != TDM_CLASSIFY_KIND_SELECT || c.cls != TDM_CLASSIFY_CLASS_READ)
          fail_msg("line %d: prefix of %zu bytes is %s", r->line, n, tdm_classify_kind_name(c.kind));
      }
      free(copy);
    }
  }
  free_table(&t);
}

/* ---- RT-02: random SELECT-first texts ---- */

typedef struct rng_s {
  uint64_t s; /* xorshift64* state, never 0 */
} rng_t;

static uint32_t rnd(rng_t *r, uint32_t n)
{
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return (uint32_t)((r->s * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

typedef struct buf_s {
  char b[1024]; /* generated text */
  size_t n;     /* bytes used */
} buf_t;

static void put(buf_t *b, const char *s)
{
  size_t n = strlen(s);
  if (b->n + n <= sizeof(b->b)) {
    memcpy(b->b + b->n, s, n);
    b->n += n;
  }
}

static void put_byte(buf_t *b, char c)
{
  if (b->n < sizeof(b->b)) b->b[b->n++] = c;
}

/* Words that tempt a classifier: keywords, quotes, comment openers, brackets. */
static const char *const tempting[] = {
  "FROM", "from", "INSERT", "DELETE", "UPDATE", "BEGIN BATCH", "APPLY BATCH", "IF", "NOT EXISTS", "USE", "DROP",
  "system.local", ".", ";", "(", ")", "[", "]", "{", "}", "'", "''", "\"", "\"\"", "$$", "$", "--", "//", "/*",
  "*/", "*", "?", ":x", ":", "\n", "\r", " ", "\t", "now()", "JSON", "DISTINCT", "0x1f", "1.5e-3", "\\",
};

/* Whitespace and comments that must not change the first keyword. */
static void random_blank(rng_t *r, buf_t *b)
{
  static const char *const spaces[] = { " ", "\t", "\n", "\r", "\f", "\v", "\r\n" };
  static const char *const filler[] = { "SELECT", "insert", "FROM", "'", "\"", "$$", "(", ";", "x", " ", "--", "/" };
  for (uint32_t items = rnd(r, 5); items > 0; items--) {
    switch (rnd(r, 4)) {
    case 0:
      put(b, spaces[rnd(r, TDM_ARRAY_SIZE(spaces))]);
      break;
    case 1: /* -- or // comment: anything but a line end inside */
      put(b, rnd(r, 2) ? "--" : "//");
      for (uint32_t k = rnd(r, 4); k > 0; k--) put(b, filler[rnd(r, TDM_ARRAY_SIZE(filler))]);
      put(b, rnd(r, 2) ? "\n" : "\r");
      break;
    default: /* block comment: anything but its closer inside */
      put(b, "/*");
      for (uint32_t k = rnd(r, 4); k > 0; k--) put(b, filler[rnd(r, TDM_ARRAY_SIZE(filler))]);
      put(b, "*/");
      break;
    }
  }
}

static void random_case(rng_t *r, buf_t *b, const char *word)
{
  for (const char *p = word; *p; p++) put_byte(b, rnd(r, 2) ? (char)(*p - 'a' + 'A') : *p);
}

/* Something that ends the keyword token: a blank, a comment, a non-identifier byte; false when the
 * text is to end right after the keyword instead. */
static bool random_boundary(rng_t *r, buf_t *b)
{
  static const char *const cuts[] = { " ", "\n", "\t", "/**/", "--\n", "//", "*", "(", "\"", "'", "$$", ",",
                                      ";", ")", "-", "/", "?", ":", "\x01", "\xff", "." };
  if (rnd(r, 8) == 0) return false;
  put(b, cuts[rnd(r, TDM_ARRAY_SIZE(cuts))]);
  return true;
}

static void random_tail(rng_t *r, buf_t *b)
{
  for (uint32_t items = rnd(r, 24); items > 0; items--) {
    if (rnd(r, 3) == 0)
      put_byte(b, (char)rnd(r, 256));
    else
      put(b, tempting[rnd(r, TDM_ARRAY_SIZE(tempting))]);
    if (rnd(r, 2)) put_byte(b, ' ');
  }
}

static tdm_classification_t classify_exact(const buf_t *b)
{
  tdm_classification_t c;
  char *copy = malloc(b->n ? b->n : 1);
  assert_non_null(copy);
  memcpy(copy, b->b, b->n);
  (void)tdm_classify(copy, b->n, &c);
  free(copy);
  return c;
}

static void test_property_select_is_read(void **state)
{
  rng_t r = { 0x9E3779B97F4A7C15ULL };
  for (int i = 0; i < 20000; i++) {
    buf_t b = { .n = 0 };
    random_blank(&r, &b);
    random_case(&r, &b, "select");
    if (random_boundary(&r, &b)) random_tail(&r, &b);
    tdm_classification_t c = classify_exact(&b);
    if (c.kind != TDM_CLASSIFY_KIND_SELECT || c.cls != TDM_CLASSIFY_CLASS_READ)
      fail_msg("iteration %d: <%.*s> classified %s/%s", i, (int)b.n, b.b, tdm_classify_kind_name(c.kind),
               tdm_classify_class_name(c.cls));
    assert_int_equal(c.flags & (TDM_CLASSIFY_F_LWT | TDM_CLASSIFY_F_INSIGHTS | TDM_CLASSIFY_F_IF_EXISTS), 0);
  }
}

/* The same generator with other first keywords gives their class; glued identifier bytes defeat
 * every keyword (`selectx` is an identifier, so UNKNOWN). */
static void test_property_other_first_keywords(void **state)
{
  static const struct {
    const char *word;     /* lower-case first keyword */
    tdm_stmt_class_t cls; /* its class whatever follows */
  } cases[] = {
    { "insert", TDM_CLASSIFY_CLASS_WRITE }, { "update", TDM_CLASSIFY_CLASS_WRITE },
    { "delete", TDM_CLASSIFY_CLASS_WRITE }, { "use", TDM_CLASSIFY_CLASS_USE },
    { "truncate", TDM_CLASSIFY_CLASS_SCHEMA }, { "list", TDM_CLASSIFY_CLASS_AUTH_READ },
    { "call", TDM_CLASSIFY_CLASS_CALL },
  };
  rng_t r = { 0xD1B54A32D192ED03ULL };
  for (int i = 0; i < 5000; i++) {
    size_t k = rnd(&r, TDM_ARRAY_SIZE(cases));
    buf_t b = { .n = 0 };
    random_blank(&r, &b);
    random_case(&r, &b, cases[k].word);
    if (random_boundary(&r, &b)) random_tail(&r, &b);
    tdm_classification_t c = classify_exact(&b);
    if (c.cls != cases[k].cls) fail_msg("iteration %d: <%.*s> is %s", i, (int)b.n, b.b, tdm_classify_class_name(c.cls));

    buf_t g = { .n = 0 };
    random_blank(&r, &g);
    random_case(&r, &g, rnd(&r, 2) ? "select" : cases[k].word);
    put_byte(&g, "x_9Z"[rnd(&r, 4)]);
    random_tail(&r, &g);
    c = classify_exact(&g);
    if (c.kind != TDM_CLASSIFY_KIND_UNKNOWN) fail_msg("iteration %d: <%.*s> is not UNKNOWN", i, (int)g.n, g.b);
  }
}

/* ---- RT-03 and helpers ---- */

static void expect_table(const char *q, const char *ks, const char *table)
{
  tdm_classification_t c;
  char got_ks[128], got_tb[128];
  assert_int_equal(tdm_classify(q, strlen(q), &c), TDM_CLASSIFY_KIND_SELECT);
  name_text(c.keyspace, got_ks, sizeof(got_ks));
  name_text(c.table, got_tb, sizeof(got_tb));
  if (strcmp(got_ks, ks) != 0 || strcmp(got_tb, table) != 0)
    fail_msg("<%s>: got %s.%s, expected %s.%s", q, got_ks, got_tb, ks, table);
}

static void test_from_detection(void **state)
{
  expect_table("SELECT \"from\" FROM ks.t", "ks", "t");
  expect_table("SELECT fn(x) FROM t WHERE a = 'from x'", "-", "t");
  expect_table("SELECT fn(x, y FROM z) FROM a.b", "a", "b");
  expect_table("SELECT 'FROM x.y', $$FROM x.y$$, \"FROM\" FROM a.b", "a", "b");
  expect_table("SELECT /* FROM x.y */ -- FROM x.y\n // FROM x.y\r * FROM a.b", "a", "b");
  expect_table("SELECT * FROM a.b WHERE c IN (SELECT * FROM x.y)", "a", "b");
  expect_table("SELECT [x FROM y], {z FROM w} FROM a.b", "a", "b");
  expect_table("SELECT a FROM \"Ks\".\"FROM\"", "Ks", "FROM");
  expect_table("SELECT a FROM FROM", "-", "from"); /* nonsense, but the first FROM decides */
}

static void test_empty_quoted_names(void **state)
{
  tdm_classification_t c;
  const char *q = "SELECT * FROM \"\".\"\"";
  assert_int_equal(tdm_classify(q, strlen(q), &c), TDM_CLASSIFY_KIND_SELECT);
  assert_true(tdm_cql_name_is_set(c.keyspace) && c.keyspace.quoted && c.keyspace.text.len == 0);
  assert_true(tdm_cql_name_is_set(c.table) && c.table.quoted && c.table.text.len == 0);
  assert_int_equal(c.flags, 0);
  assert_false(tdm_classify_reads_system(&c, TDM_STR("system")));
}

static void test_null_and_zero(void **state)
{
  tdm_classification_t c;
  memset(&c, 0xab, sizeof(c));
  assert_int_equal(tdm_classify(NULL, 0, &c), TDM_CLASSIFY_KIND_UNKNOWN);
  assert_int_equal(c.cls, TDM_CLASSIFY_CLASS_UNKNOWN);
  assert_int_equal(c.object, TDM_CLASSIFY_OBJ_NONE);
  assert_int_equal(c.flags, 0);
  assert_false(tdm_cql_name_is_set(c.keyspace));
  assert_false(tdm_cql_name_is_set(c.table));
  /* Classifying a prefix: "SELECT * FROM ks.t" cut after "ks" keeps only what lies inside. */
  const char *q = "SELECT * FROM ks.t";
  assert_int_equal(tdm_classify(q, 16, &c), TDM_CLASSIFY_KIND_SELECT);
  assert_false(tdm_cql_name_is_set(c.keyspace));
  assert_true(tdm_cql_name_eq(c.table, TDM_STR("ks")));
  assert_ptr_equal(c.table.text.ptr, q + 14); /* borrowed, not copied */
}

static void test_system_keyspace(void **state)
{
  assert_true(tdm_classify_is_system_keyspace(TDM_STR("system")));
  assert_true(tdm_classify_is_system_keyspace(TDM_STR("system_auth")));
  assert_true(tdm_classify_is_system_keyspace(TDM_STR("system_")));
  assert_true(tdm_classify_is_system_keyspace(TDM_STR("dse_system")));
  assert_false(tdm_classify_is_system_keyspace(TDM_STR("")));
  assert_false(tdm_classify_is_system_keyspace(TDM_STR("sys")));
  assert_false(tdm_classify_is_system_keyspace(TDM_STR("System")));
  assert_false(tdm_classify_is_system_keyspace(TDM_STR("systemx")));
  assert_false(tdm_classify_is_system_keyspace(TDM_STR("dse")));
  assert_false(tdm_classify_is_system_keyspace(TDM_STR("ks_system")));
  assert_false(tdm_classify_is_system_keyspace((tdm_str_t){ NULL, 0 }));
}

static void test_virtual_table_resolution(void **state)
{
  static const struct {
    const char *q;          /* statement */
    const char *session;    /* resolved session keyspace ("" for none) */
    tdm_stmt_vtable_t want; /* expected virtual table */
    bool system;            /* expected tdm_classify_reads_system */
  } cases[] = {
    { "SELECT * FROM local", "system", TDM_CLASSIFY_VTABLE_LOCAL, true },
    { "SELECT * FROM PEERS", "system", TDM_CLASSIFY_VTABLE_PEERS, true },
    { "SELECT * FROM \"peers_v2\"", "system", TDM_CLASSIFY_VTABLE_PEERS_V2, true },
    { "SELECT * FROM local", "ks", TDM_CLASSIFY_VTABLE_NONE, false },
    { "SELECT * FROM local", "", TDM_CLASSIFY_VTABLE_NONE, false },
    { "SELECT * FROM local", "System", TDM_CLASSIFY_VTABLE_NONE, false },
    { "SELECT * FROM tables", "system_schema", TDM_CLASSIFY_VTABLE_NONE, true },
    { "SELECT * FROM ks.local", "system", TDM_CLASSIFY_VTABLE_NONE, false }, /* explicit wins */
    { "SELECT * FROM system.local", "ks", TDM_CLASSIFY_VTABLE_LOCAL, true },
    { "SELECT * FROM system.\"Local\"", "ks", TDM_CLASSIFY_VTABLE_NONE, true },
    { "SELECT * FROM dse_auth.roles", "", TDM_CLASSIFY_VTABLE_NONE, true },
    { "SELECT", "system", TDM_CLASSIFY_VTABLE_NONE, true }, /* no table: only the keyspace is known */
    { "INSERT INTO local (a) VALUES (1)", "system", TDM_CLASSIFY_VTABLE_NONE, false },
    { "USE system", "system", TDM_CLASSIFY_VTABLE_NONE, false },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    tdm_classification_t c;
    (void)tdm_classify(cases[i].q, strlen(cases[i].q), &c);
    tdm_str_t session = tdm_str_from(cases[i].session);
    if (tdm_classify_virtual_table(&c, session) != cases[i].want)
      fail_msg("<%s> in %s: virtual table %d", cases[i].q, cases[i].session, tdm_classify_virtual_table(&c, session));
    if (tdm_classify_reads_system(&c, session) != cases[i].system)
      fail_msg("<%s> in %s: reads_system wrong", cases[i].q, cases[i].session);
  }
}

static void test_names_of_enums(void **state)
{
  for (int k = 0; k < TDM_CLASSIFY_KIND_MAX; k++) assert_string_not_equal(tdm_classify_kind_name(k), "INVALID");
  for (int k = 0; k < TDM_CLASSIFY_CLASS_MAX; k++) assert_string_not_equal(tdm_classify_class_name(k), "INVALID");
  for (int k = 0; k < TDM_CLASSIFY_OBJ_MAX; k++) assert_string_not_equal(tdm_classify_object_name(k), "INVALID");
  assert_string_equal(tdm_classify_kind_name(TDM_CLASSIFY_KIND_MAX), "INVALID");
  assert_string_equal(tdm_classify_class_name(TDM_CLASSIFY_CLASS_MAX), "INVALID");
  assert_string_equal(tdm_classify_object_name(TDM_CLASSIFY_OBJ_MAX), "INVALID");
  assert_string_equal(tdm_classify_object_name(TDM_CLASSIFY_OBJ_MATERIALIZED_VIEW), "MATERIALIZED_VIEW");
  assert_string_equal(tdm_classify_class_name(TDM_CLASSIFY_CLASS_AUTH_READ), "AUTH_READ");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table),
    cmocka_unit_test(test_table_prefixes),
    cmocka_unit_test(test_property_select_is_read),
    cmocka_unit_test(test_property_other_first_keywords),
    cmocka_unit_test(test_from_detection),
    cmocka_unit_test(test_empty_quoted_names),
    cmocka_unit_test(test_null_and_zero),
    cmocka_unit_test(test_system_keyspace),
    cmocka_unit_test(test_virtual_table_resolution),
    cmocka_unit_test(test_names_of_enums),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
