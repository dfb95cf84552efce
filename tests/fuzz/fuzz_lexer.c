/* libFuzzer target for the CQL lexer and statement classifier (MI-06): arbitrary bytes must lex into
 * in-bounds, ordered tokens and classify without a crash or over-read; text that starts with the word
 * SELECT after whitespace must classify as a read. */
#include <tandem/proto/classify.h>

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "fuzz_lexer: check failed at line %d: %s\n", __LINE__, #cond); \
      abort();                                                                    \
    }                                                                             \
  } while (0)

static bool ident_byte(uint8_t c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* True when data is blanks, the word select in any case, then a non-identifier byte or the end. */
static bool starts_with_select(const uint8_t *data, size_t size)
{
  size_t i = 0;
  while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r' || data[i] == '\f' ||
                      data[i] == '\v'))
    i++;
  static const char word[] = "select";
  for (size_t k = 0; k < sizeof(word) - 1; k++, i++)
    if (i >= size || (data[i] | 0x20) != word[k]) return false;
  return i == size || !ident_byte(data[i]);
}

static void check_name(tdm_cql_name_t n, const char *text, size_t size)
{
  if (!tdm_cql_name_is_set(n)) return;
  CHECK(n.text.ptr >= text && n.text.ptr + n.text.len <= text + size);
  char small[8];
  size_t len = 0;
  int rc = tdm_cql_name_copy(n, small, sizeof(small), &len);
  CHECK(rc == 0 || rc == TDM_EOVERFLOW);
  CHECK(len == tdm_cql_name_len(n));
  CHECK(rc != 0 || (len < sizeof(small) && small[len] == '\0'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;

  tdm_cql_lexer_t lx;
  tdm_cql_token_t tok;
  size_t last_end = 0;
  tdm_cql_lexer_init(&lx, text, size);
  while (tdm_cql_lexer_next(&lx, &tok) != TDM_CQL_TOK_EOF) {
    CHECK(tok.kind > TDM_CQL_TOK_EOF && tok.kind < TDM_CQL_TOK_MAX);
    CHECK(tok.text.len > 0 && tok.offset >= last_end && tok.offset + tok.text.len <= size);
    CHECK(tok.text.ptr == text + tok.offset);
    tdm_str_t body = tdm_cql_token_body(&tok);
    CHECK(body.len <= tok.text.len);
    if (body.len) CHECK(body.ptr >= tok.text.ptr && body.ptr + body.len <= tok.text.ptr + tok.text.len);
    if (tdm_cql_token_is_name(&tok)) check_name(tdm_cql_name_from_token(&tok), text, size);
    last_end = tok.offset + tok.text.len;
    /* Nothing may follow an unterminated token. */
    if (tok.kind == TDM_CQL_TOK_UNTERMINATED) CHECK(last_end == size);
  }
  CHECK(lx.pos == size);

  tdm_classification_t c;
  tdm_stmt_kind_t kind = tdm_classify(text, size, &c);
  CHECK(kind == c.kind && kind < TDM_CLASSIFY_KIND_MAX && c.cls < TDM_CLASSIFY_CLASS_MAX);
  check_name(c.keyspace, text, size);
  check_name(c.table, text, size);
  if (starts_with_select(data, size)) CHECK(c.kind == TDM_CLASSIFY_KIND_SELECT && c.cls == TDM_CLASSIFY_CLASS_READ);
  if (c.kind == TDM_CLASSIFY_KIND_SELECT) CHECK(c.cls == TDM_CLASSIFY_CLASS_READ);
  if (c.cls == TDM_CLASSIFY_CLASS_READ) CHECK(c.kind == TDM_CLASSIFY_KIND_SELECT);
  (void)tdm_classify_virtual_table(&c, TDM_STR("system"));
  (void)tdm_classify_reads_system(&c, TDM_STR("system_auth"));
  CHECK(tdm_classify_kind_name(c.kind) != NULL && tdm_classify_object_name(c.object) != NULL);
  return 0;
}
