/* CQL lexer (RT-01, MI-06): token sequences for every token kind, comment forms and unterminated input,
 * name folding and unescaping, and no read past len for every prefix of tricky texts (each prefix is
 * lexed from a heap block of exactly that size, so ASan catches any over-read). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/proto/cql_lexer.h>

/* Renders the token stream of text[0..len) as "KIND[text] KIND[text]"; bytes outside printable ASCII
 * as \xHH. Also checks the stream's structural invariants on the way. */
static void render(const char *text, size_t len, char *out, size_t cap)
{
  tdm_cql_lexer_t lx;
  tdm_cql_token_t tok;
  size_t used = 0, last_end = 0;
  tdm_cql_lexer_init(&lx, text, len);
  out[0] = '\0';
  while (tdm_cql_lexer_next(&lx, &tok) != TDM_CQL_TOK_EOF) {
    assert_true(tok.text.len > 0);
    assert_true(tok.offset >= last_end);
    assert_true(tok.offset + tok.text.len <= len);
    assert_ptr_equal(tok.text.ptr, text + tok.offset);
    last_end = tok.offset + tok.text.len;
    assert_int_equal(lx.pos, last_end);
    int n = snprintf(out + used, cap - used, "%s%s[", used ? " " : "", tdm_cql_tok_kind_name(tok.kind));
    assert_true(n > 0 && (size_t)n < cap - used);
    used += (size_t)n;
    for (size_t i = 0; i < tok.text.len; i++) {
      unsigned char c = (unsigned char)tok.text.ptr[i];
      n = (c >= 0x20 && c < 0x7f) ? snprintf(out + used, cap - used, "%c", c)
                                  : snprintf(out + used, cap - used, "\\x%02x", c);
      assert_true(n > 0 && (size_t)n < cap - used);
      used += (size_t)n;
    }
    n = snprintf(out + used, cap - used, "]");
    assert_true(n > 0 && (size_t)n < cap - used);
    used += (size_t)n;
  }
  /* EOF is sticky and leaves the lexer at len. */
  assert_int_equal(lx.pos, len);
  assert_int_equal(tdm_cql_lexer_next(&lx, &tok), TDM_CQL_TOK_EOF);
  assert_int_equal(tok.text.len, 0);
  assert_int_equal(tok.offset, len);
}

static void check_n(const char *text, size_t len, const char *expect)
{
  char got[2048];
  /* A heap copy of exactly len bytes: nothing after it is readable under ASan. */
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len) memcpy(copy, text, len);
  render(copy, len, got, sizeof(got));
  if (strcmp(got, expect) != 0) fail_msg("lexing <%.*s>\n  got    %s\n  expect %s", (int)len, text, got, expect);
  free(copy);
}
#define CHECK(text, expect) check_n((text), sizeof(text) - 1, (expect))

static void test_words_and_punct(void **state)
{
  CHECK("SELECT * FROM ks.t;", "IDENT[SELECT] PUNCT[*] IDENT[FROM] IDENT[ks] PUNCT[.] IDENT[t] PUNCT[;]");
  CHECK("a_1 _b B9", "IDENT[a_1] IDENT[_b] IDENT[B9]");
  CHECK("(a,b)[c]{d}", "PUNCT[(] IDENT[a] PUNCT[,] IDENT[b] PUNCT[)] PUNCT[[] IDENT[c] PUNCT[]] PUNCT[{] IDENT[d] "
                      "PUNCT[}]");
  CHECK("a=b<c>d<=e>=f!=g+=h-=i+j-k/l%m", "IDENT[a] OP[=] IDENT[b] OP[<] IDENT[c] OP[>] IDENT[d] OP[<=] IDENT[e] "
                                         "OP[>=] IDENT[f] OP[!=] IDENT[g] OP[+=] IDENT[h] OP[-=] IDENT[i] OP[+] "
                                         "IDENT[j] OP[-] IDENT[k] OP[/] IDENT[l] OP[%] IDENT[m]");
  CHECK("!a # @ ~", "OTHER[!] IDENT[a] OTHER[#] OTHER[@] OTHER[~]");
  CHECK("a\x01\x80\xff" "b", "IDENT[a] OTHER[\\x01] OTHER[\\x80] OTHER[\\xff] IDENT[b]");
  check_n("a\0b", 3, "IDENT[a] OTHER[\\x00] IDENT[b]");
}

static void test_strings(void **state)
{
  CHECK("'abc'", "STRING['abc']");
  CHECK("''", "STRING['']");
  CHECK("'it''s' 'x'", "STRING['it''s'] STRING['x']");
  CHECK("''''", "STRING['''']");
  CHECK("'a\"b -- c /* d'", "STRING['a\"b -- c /* d']");
  CHECK("\"Name\" \"\" \"a\"\"b\"", "QUOTED_IDENT[\"Name\"] QUOTED_IDENT[\"\"] QUOTED_IDENT[\"a\"\"b\"]");
  CHECK("\"it's\"", "QUOTED_IDENT[\"it's\"]");
  CHECK("$$a$b$$ $$$$", "DOLLAR_STRING[$$a$b$$] DOLLAR_STRING[$$$$]");
  CHECK("$$ it's \"x\" -- $$x", "DOLLAR_STRING[$$ it's \"x\" -- $$] IDENT[x]");
  CHECK("$x $", "OTHER[$] IDENT[x] OTHER[$]");
}

static void test_unterminated(void **state)
{
  CHECK("a 'abc", "IDENT[a] UNTERMINATED['abc]");
  CHECK("'abc''", "UNTERMINATED['abc'']");
  CHECK("'", "UNTERMINATED[']");
  CHECK("\"ab\"\"", "UNTERMINATED[\"ab\"\"]");
  CHECK("\"", "UNTERMINATED[\"]");
  CHECK("$$abc$", "UNTERMINATED[$$abc$]");
  CHECK("$$$", "UNTERMINATED[$$$]");
  CHECK("$$", "UNTERMINATED[$$]");
  CHECK("x = :\"ab", "IDENT[x] OP[=] UNTERMINATED[:\"ab]");
  CHECK("a /* never closed", "IDENT[a]");
  CHECK("a /* almost *", "IDENT[a]");
  CHECK("a /*", "IDENT[a]");
  CHECK("a /", "IDENT[a] OP[/]");
  CHECK("a -", "IDENT[a] OP[-]");
  CHECK("a -- to the end", "IDENT[a]");
}

static void test_comments(void **state)
{
  CHECK("a -- c\nb", "IDENT[a] IDENT[b]");
  CHECK("a // c\rb", "IDENT[a] IDENT[b]");
  CHECK("a--\n--\nb", "IDENT[a] IDENT[b]");
  CHECK("a/**/b", "IDENT[a] IDENT[b]");
  CHECK("a/***/b", "IDENT[a] IDENT[b]");
  CHECK("a/*/ x */b", "IDENT[a] IDENT[b]");
  CHECK("a/* /* not nested */ b */", "IDENT[a] IDENT[b] PUNCT[*] OP[/]");
  CHECK("a/* -- */b", "IDENT[a] IDENT[b]");
  CHECK("a -- /* \n b */", "IDENT[a] IDENT[b] PUNCT[*] OP[/]");
  CHECK(" \t\r\n\f\v", "");
  CHECK("", "");
  CHECK("1--2", "NUMBER[1]");
  CHECK("*/", "PUNCT[*] OP[/]");
}

static void test_numbers(void **state)
{
  CHECK("1 42 1.5 1.5e-10 2E+3 0xCAFE 0Xbeef", "NUMBER[1] NUMBER[42] NUMBER[1.5] NUMBER[1.5e-10] NUMBER[2E+3] "
                                               "NUMBER[0xCAFE] NUMBER[0Xbeef]");
  CHECK("-1 - 2", "OP[-] NUMBER[1] OP[-] NUMBER[2]");
  CHECK("1h30m 3d 12mo", "NUMBER[1h30m] NUMBER[3d] NUMBER[12mo]");
  CHECK("1. 1.x", "NUMBER[1] PUNCT[.] NUMBER[1] PUNCT[.] IDENT[x]");
  CHECK("123e4567-e89b-12d3-a456-426655440000", "NUMBER[123e4567-e89b-12d3-a456-426655440000]");
  CHECK("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,", "NUMBER[a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11] PUNCT[,]");
  /* Not quite uuids: lexed as their parts. */
  CHECK("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "IDENT[a0eebc99] OP[-] NUMBER[9c0b] OP[-] NUMBER[4ef8] OP[-] "
                                              "IDENT[bb6d] OP[-] NUMBER[6bb9bd380a1]");
  CHECK("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11x", "IDENT[a0eebc99] OP[-] NUMBER[9c0b] OP[-] NUMBER[4ef8] OP[-] "
                                                "IDENT[bb6d] OP[-] NUMBER[6bb9bd380a11x]");
  CHECK("NaN Infinity", "IDENT[NaN] IDENT[Infinity]");
}

static void test_bind_markers(void **state)
{
  CHECK("a = ? AND b = :b1 AND c = :\"C\"\"x\"", "IDENT[a] OP[=] BIND[?] IDENT[AND] IDENT[b] OP[=] BIND[:b1] "
                                                  "IDENT[AND] IDENT[c] OP[=] BIND[:\"C\"\"x\"]");
  CHECK("v : 'term'", "IDENT[v] PUNCT[:] STRING['term']");
  CHECK("v:'term'", "IDENT[v] PUNCT[:] STRING['term']");
  CHECK(": x", "PUNCT[:] IDENT[x]");
  CHECK("{'a': 1}", "PUNCT[{] STRING['a'] PUNCT[:] NUMBER[1] PUNCT[}]");
  CHECK("?", "BIND[?]");
  CHECK(":", "PUNCT[:]");
}

static tdm_cql_token_t lex_one(const char *text)
{
  tdm_cql_lexer_t lx;
  tdm_cql_token_t tok;
  tdm_cql_lexer_init(&lx, text, strlen(text));
  (void)tdm_cql_lexer_next(&lx, &tok);
  return tok;
}

static void assert_str(tdm_str_t s, const char *expect)
{
  if (s.len != strlen(expect) || (s.len && memcmp(s.ptr, expect, s.len) != 0))
    fail_msg("got <%.*s>, expected <%s>", (int)s.len, s.ptr ? s.ptr : "", expect);
}

static void test_token_helpers(void **state)
{
  tdm_cql_token_t t = lex_one("SeLeCt");
  assert_true(TDM_CQL_KW(&t, "select"));
  assert_false(TDM_CQL_KW(&t, "selec"));
  assert_false(TDM_CQL_KW(&t, "selects"));
  t = lex_one("\"select\"");
  assert_false(TDM_CQL_KW(&t, "select")); /* quoted: never a keyword */
  t = lex_one("'select'");
  assert_false(TDM_CQL_KW(&t, "select"));

  assert_str(tdm_cql_token_body(&(tdm_cql_token_t){ 0 }), "");
  t = lex_one("'it''s'");
  assert_str(tdm_cql_token_body(&t), "it''s");
  t = lex_one("\"A\"\"b\"");
  assert_str(tdm_cql_token_body(&t), "A\"\"b");
  t = lex_one("$$ x $$");
  assert_str(tdm_cql_token_body(&t), " x ");
  t = lex_one("?");
  assert_str(tdm_cql_token_body(&t), "");
  t = lex_one(":name");
  assert_str(tdm_cql_token_body(&t), "name");
  t = lex_one(":\"Na\"\"me\"");
  assert_str(tdm_cql_token_body(&t), "Na\"\"me");
  t = lex_one("'open");
  assert_int_equal(t.kind, TDM_CQL_TOK_UNTERMINATED);
  assert_str(tdm_cql_token_body(&t), "'open");
  t = lex_one("<=");
  assert_str(tdm_cql_token_body(&t), "<=");
  assert_false(tdm_cql_token_is_punct(&t, '<'));
  t = lex_one("(");
  assert_true(tdm_cql_token_is_punct(&t, '('));
  t = lex_one("=");
  assert_true(tdm_cql_token_is_punct(&t, '='));

  assert_string_equal(tdm_cql_tok_kind_name(TDM_CQL_TOK_DOLLAR_STRING), "DOLLAR_STRING");
  assert_string_equal(tdm_cql_tok_kind_name(TDM_CQL_TOK_MAX), "INVALID");
  assert_string_equal(tdm_cql_tok_kind_name((tdm_cql_tok_kind_t)-1), "INVALID");
}

static void test_peek_and_eof(void **state)
{
  tdm_cql_lexer_t lx;
  tdm_cql_token_t a, b;
  tdm_cql_lexer_init(&lx, "x y", 3);
  assert_int_equal(tdm_cql_lexer_peek(&lx, &a), TDM_CQL_TOK_IDENT);
  assert_int_equal(lx.pos, 0);
  assert_int_equal(tdm_cql_lexer_next(&lx, &b), TDM_CQL_TOK_IDENT);
  assert_int_equal(a.offset, b.offset);
  assert_int_equal(tdm_cql_lexer_next(&lx, &b), TDM_CQL_TOK_IDENT);
  assert_int_equal(b.offset, 2);
  for (int i = 0; i < 3; i++) assert_int_equal(tdm_cql_lexer_next(&lx, &b), TDM_CQL_TOK_EOF);

  /* NULL text, zeroed lexer: both are the empty text. */
  tdm_cql_lexer_init(&lx, NULL, 10);
  assert_int_equal(tdm_cql_lexer_next(&lx, &b), TDM_CQL_TOK_EOF);
  tdm_cql_lexer_t zero = { 0 };
  assert_int_equal(tdm_cql_lexer_next(&zero, &b), TDM_CQL_TOK_EOF);
}

static void test_names(void **state)
{
  tdm_cql_token_t t = lex_one("MyTable");
  tdm_cql_name_t n = tdm_cql_name_from_token(&t);
  assert_true(tdm_cql_name_is_set(n));
  assert_false(n.quoted);
  assert_true(tdm_cql_name_eq(n, TDM_STR("mytable")));
  assert_false(tdm_cql_name_eq(n, TDM_STR("MyTable"))); /* unquoted MyTable is mytable */
  assert_false(tdm_cql_name_eq(n, TDM_STR("mytabl")));
  assert_int_equal(tdm_cql_name_len(n), 7);

  t = lex_one("\"My\"\"Table\"");
  n = tdm_cql_name_from_token(&t);
  assert_true(n.quoted);
  assert_true(tdm_cql_name_eq(n, TDM_STR("My\"Table")));
  assert_false(tdm_cql_name_eq(n, TDM_STR("my\"table")));
  assert_false(tdm_cql_name_eq(n, TDM_STR("My\"Tabl")));
  assert_false(tdm_cql_name_eq(n, TDM_STR("My\"Tablex")));
  assert_int_equal(tdm_cql_name_len(n), 8);

  char buf[16];
  size_t len = 99;
  assert_int_equal(tdm_cql_name_copy(n, buf, sizeof(buf), &len), 0);
  assert_int_equal(len, 8);
  assert_string_equal(buf, "My\"Table");
  assert_int_equal(tdm_cql_name_copy(n, buf, 8, &len), TDM_EOVERFLOW); /* no room for the NUL */
  assert_int_equal(len, 8);
  assert_int_equal(tdm_cql_name_copy(n, buf, 9, &len), 0);

  t = lex_one("ABC_d");
  assert_int_equal(tdm_cql_name_copy(tdm_cql_name_from_token(&t), buf, sizeof(buf), &len), 0);
  assert_string_equal(buf, "abc_d");

  /* "" is a present, empty quoted name; a non-name token gives an absent one. */
  t = lex_one("\"\"");
  n = tdm_cql_name_from_token(&t);
  assert_true(tdm_cql_name_is_set(n));
  assert_true(tdm_cql_name_eq(n, TDM_STR("")));
  assert_int_equal(tdm_cql_name_copy(n, buf, 1, &len), 0);
  assert_int_equal(len, 0);
  t = lex_one("'str'");
  n = tdm_cql_name_from_token(&t);
  assert_false(tdm_cql_name_is_set(n));
  assert_int_equal(tdm_cql_name_copy(n, buf, sizeof(buf), &len), TDM_EINVAL);
  assert_false(tdm_cql_token_is_name(&t));
}

/* Every prefix of every text, lexed from an exact-size heap block: structural checks in render(),
 * over-reads caught by ASan. */
static void test_every_prefix(void **state)
{
  static const char *const texts[] = {
    "SELECT \"a\"\"b\", 'c''d', $$e$f$$ FROM ks.t -- x\n/* y */ WHERE k = :k AND v : 'z' // w\r",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 1.5e-10 0xff 1h30m <= >= != += -= :\"q\"\"r\" ?",
    "/* a * b */ /*/ */ -- \r // \n $$ $ $$ '' \"\" ''''",
  };
  char got[4096];
  for (size_t k = 0; k < TDM_ARRAY_SIZE(texts); k++) {
    size_t full = strlen(texts[k]);
    for (size_t n = 0; n <= full; n++) {
      char *copy = malloc(n ? n : 1);
      assert_non_null(copy);
      memcpy(copy, texts[k], n);
      render(copy, n, got, sizeof(got));
      free(copy);
    }
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_words_and_punct), cmocka_unit_test(test_strings),      cmocka_unit_test(test_unterminated),
    cmocka_unit_test(test_comments),        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_bind_markers),
    cmocka_unit_test(test_token_helpers),   cmocka_unit_test(test_peek_and_eof), cmocka_unit_test(test_names),
    cmocka_unit_test(test_every_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
