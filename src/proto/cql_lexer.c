/* CQL lexer: one token per call over a borrowed text, no allocation. Invariant: every read is at an
 * index < len (checked before each access), and pos only grows, up to len. Unterminated strings and
 * quoted identifiers become one UNTERMINATED token running to len; an unterminated block comment is
 * skipped to len. Character classes are ASCII only and locale-independent (no <ctype.h>). */
#include <tandem/proto/cql_lexer.h>

static inline bool is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
static inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline bool is_ident_start(char c) { return is_alpha(c) || c == '_'; }
static inline bool is_ident_char(char c) { return is_alpha(c) || is_digit(c) || c == '_'; }
static inline bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static inline char fold(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c; }

static const char *const kind_names[TDM_CQL_TOK_MAX] = {
  [TDM_CQL_TOK_EOF] = "EOF",
  [TDM_CQL_TOK_IDENT] = "IDENT",
  [TDM_CQL_TOK_QUOTED_IDENT] = "QUOTED_IDENT",
  [TDM_CQL_TOK_STRING] = "STRING",
  [TDM_CQL_TOK_DOLLAR_STRING] = "DOLLAR_STRING",
  [TDM_CQL_TOK_NUMBER] = "NUMBER",
  [TDM_CQL_TOK_BIND] = "BIND",
  [TDM_CQL_TOK_PUNCT] = "PUNCT",
  [TDM_CQL_TOK_OP] = "OP",
  [TDM_CQL_TOK_UNTERMINATED] = "UNTERMINATED",
  [TDM_CQL_TOK_OTHER] = "OTHER",
};

const char *tdm_cql_tok_kind_name(tdm_cql_tok_kind_t kind)
{
  if ((unsigned)kind >= TDM_CQL_TOK_MAX || kind_names[kind] == NULL) return "INVALID";
  return kind_names[kind];
}

/* Index just past the closing `q` of a quoted run whose opening quote is at `open`, where a doubled
 * quote is an escape; *closed false and len when the text ends first. */
static size_t scan_quoted(const char *t, size_t len, size_t open, char q, bool *closed)
{
  size_t i = open + 1;
  while (i < len) {
    const char *hit = memchr(t + i, q, len - i);
    if (hit == NULL) break;
    size_t j = (size_t)(hit - t);
    if (j + 1 < len && t[j + 1] == q) {
      i = j + 2; /* doubled quote: part of the body */
      continue;
    }
    *closed = true;
    return j + 1;
  }
  *closed = false;
  return len;
}

/* Index just past the `$$` that closes a dollar string whose body starts at `body`; len if none. */
static size_t scan_dollar(const char *t, size_t len, size_t body, bool *closed)
{
  size_t i = body;
  while (i < len) {
    const char *hit = memchr(t + i, '$', len - i);
    if (hit == NULL) break;
    size_t j = (size_t)(hit - t);
    if (j + 1 < len && t[j + 1] == '$') {
      *closed = true;
      return j + 2;
    }
    i = j + 1;
  }
  *closed = false;
  return len;
}

/* Length of a uuid constant (8-4-4-4-12 hex digits) starting at pos and not followed by an identifier
 * byte, else 0. Uuids may start with a letter, so this is tried before identifiers and numbers. */
static size_t uuid_len(const char *t, size_t len, size_t pos)
{
  static const uint8_t groups[5] = { 8, 4, 4, 4, 12 };
  size_t i = pos;
  for (size_t g = 0; g < 5; g++) {
    if (g > 0) {
      if (i >= len || t[i] != '-') return 0;
      i++;
    }
    for (uint8_t k = 0; k < groups[g]; k++, i++)
      if (i >= len || !is_hex(t[i])) return 0;
  }
  if (i < len && is_ident_char(t[i])) return 0;
  return i - pos;
}

/* End of a number starting with the digit at pos: digits, letters and _ (hex blobs, durations, the
 * exponent letter), a `.` followed by a digit, and a sign right after e/E followed by a digit. */
static size_t scan_number(const char *t, size_t len, size_t pos)
{
  size_t i = pos + 1;
  while (i < len) {
    char c = t[i];
    if (is_ident_char(c)) {
      i++;
    } else if (c == '.' && i + 1 < len && is_digit(t[i + 1])) {
      i++;
    } else if ((c == '+' || c == '-') && (t[i - 1] == 'e' || t[i - 1] == 'E') && i + 1 < len &&
               is_digit(t[i + 1])) {
      i++;
    } else {
      break;
    }
  }
  return i;
}

/* Skips whitespace and comments from pos; returns the index of the next token byte, or len. */
static size_t skip_blank(const char *t, size_t len, size_t pos)
{
  while (pos < len) {
    char c = t[pos];
    if (is_space(c)) {
      pos++;
      continue;
    }
    if (pos + 1 >= len) break;
    char d = t[pos + 1];
    if ((c == '-' && d == '-') || (c == '/' && d == '/')) {
      pos += 2; /* line comment: ends at \n or \r (either), like Cassandra's lexer */
      while (pos < len && t[pos] != '\n' && t[pos] != '\r') pos++;
      continue;
    }
    if (c == '/' && d == '*') {
      size_t i = pos + 2; /* block comment, not nested: the first star-slash closes it */
      pos = len;
      while (i + 1 < len) {
        const char *hit = memchr(t + i, '*', len - 1 - i);
        if (hit == NULL) break;
        size_t j = (size_t)(hit - t);
        if (t[j + 1] == '/') {
          pos = j + 2;
          break;
        }
        i = j + 1;
      }
      continue;
    }
    break;
  }
  return pos;
}

static tdm_cql_tok_kind_t emit(tdm_cql_lexer_t *lx, tdm_cql_token_t *tok, tdm_cql_tok_kind_t kind, size_t start,
                               size_t end)
{
  TDM_ASSERT(start < end && end <= lx->len);
  tok->kind = kind;
  tok->text.ptr = lx->text + start;
  tok->text.len = end - start;
  tok->offset = start;
  lx->pos = end;
  return kind;
}

tdm_cql_tok_kind_t tdm_cql_lexer_next(tdm_cql_lexer_t *lx, tdm_cql_token_t *tok)
{
  const char *t = lx->text;
  size_t len = lx->len;
  size_t pos = skip_blank(t, len, lx->pos);

  if (pos >= len) {
    lx->pos = len;
    tok->kind = TDM_CQL_TOK_EOF;
    tok->text.ptr = NULL;
    tok->text.len = 0;
    tok->offset = len;
    return TDM_CQL_TOK_EOF;
  }

  char c = t[pos];
  bool has_next = pos + 1 < len;
  char d = has_next ? t[pos + 1] : '\0';
  size_t end;

  if (is_hex(c) && (end = uuid_len(t, len, pos)) > 0) return emit(lx, tok, TDM_CQL_TOK_NUMBER, pos, pos + end);
  if (is_ident_start(c)) {
    end = pos + 1;
    while (end < len && is_ident_char(t[end])) end++;
    return emit(lx, tok, TDM_CQL_TOK_IDENT, pos, end);
  }
  if (is_digit(c)) return emit(lx, tok, TDM_CQL_TOK_NUMBER, pos, scan_number(t, len, pos));

  switch (c) {
  case '\'':
  case '"': {
    bool closed;
    end = scan_quoted(t, len, pos, c, &closed);
    tdm_cql_tok_kind_t k = c == '"' ? TDM_CQL_TOK_QUOTED_IDENT : TDM_CQL_TOK_STRING;
    return emit(lx, tok, closed ? k : TDM_CQL_TOK_UNTERMINATED, pos, end);
  }
  case '$':
    if (d == '$') {
      bool closed;
      end = scan_dollar(t, len, pos + 2, &closed);
      return emit(lx, tok, closed ? TDM_CQL_TOK_DOLLAR_STRING : TDM_CQL_TOK_UNTERMINATED, pos, end);
    }
    return emit(lx, tok, TDM_CQL_TOK_OTHER, pos, pos + 1);
  case '?':
    return emit(lx, tok, TDM_CQL_TOK_BIND, pos, pos + 1);
  case ':':
    if (has_next && is_ident_start(d)) {
      end = pos + 2;
      while (end < len && is_ident_char(t[end])) end++;
      return emit(lx, tok, TDM_CQL_TOK_BIND, pos, end);
    }
    if (d == '"') {
      bool closed;
      end = scan_quoted(t, len, pos + 1, '"', &closed);
      return emit(lx, tok, closed ? TDM_CQL_TOK_BIND : TDM_CQL_TOK_UNTERMINATED, pos, end);
    }
    return emit(lx, tok, TDM_CQL_TOK_PUNCT, pos, pos + 1);
  case '.':
  case ',':
  case '(':
  case ')':
  case '[':
  case ']':
  case '{':
  case '}':
  case ';':
  case '*':
    return emit(lx, tok, TDM_CQL_TOK_PUNCT, pos, pos + 1);
  case '<':
  case '>':
  case '+':
  case '-':
    return emit(lx, tok, TDM_CQL_TOK_OP, pos, pos + (d == '=' ? 2 : 1));
  case '!':
    if (d == '=') return emit(lx, tok, TDM_CQL_TOK_OP, pos, pos + 2);
    return emit(lx, tok, TDM_CQL_TOK_OTHER, pos, pos + 1);
  case '=':
  case '/':
  case '%':
    return emit(lx, tok, TDM_CQL_TOK_OP, pos, pos + 1);
  default:
    return emit(lx, tok, TDM_CQL_TOK_OTHER, pos, pos + 1);
  }
}

bool tdm_cql_token_is_keyword(const tdm_cql_token_t *tok, tdm_str_t kw)
{
  if (tok->kind != TDM_CQL_TOK_IDENT || tok->text.len != kw.len) return false;
  for (size_t i = 0; i < kw.len; i++)
    if (fold(tok->text.ptr[i]) != kw.ptr[i]) return false;
  return true;
}

tdm_str_t tdm_cql_token_body(const tdm_cql_token_t *tok)
{
  tdm_str_t s = tok->text;
  switch (tok->kind) {
  case TDM_CQL_TOK_STRING:
  case TDM_CQL_TOK_QUOTED_IDENT:
    return (tdm_str_t){ s.ptr + 1, s.len - 2 };
  case TDM_CQL_TOK_DOLLAR_STRING:
    return (tdm_str_t){ s.ptr + 2, s.len - 4 };
  case TDM_CQL_TOK_BIND:
    if (s.len == 1) return (tdm_str_t){ s.ptr + 1, 0 }; /* `?` */
    if (s.ptr[1] == '"') return (tdm_str_t){ s.ptr + 2, s.len - 3 };
    return (tdm_str_t){ s.ptr + 1, s.len - 1 };
  default:
    return s;
  }
}

tdm_cql_name_t tdm_cql_name_from_token(const tdm_cql_token_t *tok)
{
  tdm_cql_name_t n = { { NULL, 0 }, false };
  if (tok->kind == TDM_CQL_TOK_IDENT) {
    n.text = tok->text;
  } else if (tok->kind == TDM_CQL_TOK_QUOTED_IDENT) {
    n.text = tdm_cql_token_body(tok);
    n.quoted = true;
  }
  return n;
}

bool tdm_cql_name_eq(tdm_cql_name_t n, tdm_str_t canonical)
{
  if (!n.quoted) {
    if (n.text.len != canonical.len) return false;
    for (size_t i = 0; i < n.text.len; i++)
      if (fold(n.text.ptr[i]) != canonical.ptr[i]) return false;
    return true;
  }
  size_t i = 0, j = 0;
  while (i < n.text.len) {
    if (j >= canonical.len || n.text.ptr[i] != canonical.ptr[j]) return false;
    /* A quote in the body is always doubled by the lexer; a lone one (hand-made name) counts once. */
    i += (n.text.ptr[i] == '"' && i + 1 < n.text.len && n.text.ptr[i + 1] == '"') ? 2 : 1;
    j++;
  }
  return j == canonical.len;
}

size_t tdm_cql_name_len(tdm_cql_name_t n)
{
  if (!n.quoted) return n.text.len;
  size_t out = 0;
  for (size_t i = 0; i < n.text.len; out++)
    i += (n.text.ptr[i] == '"' && i + 1 < n.text.len && n.text.ptr[i + 1] == '"') ? 2 : 1;
  return out;
}

int tdm_cql_name_copy(tdm_cql_name_t n, char *buf, size_t cap, size_t *out_len)
{
  if (!tdm_cql_name_is_set(n)) return TDM_EINVAL;
  size_t need = tdm_cql_name_len(n);
  *out_len = need;
  if (cap < need + 1) return TDM_EOVERFLOW;
  size_t j = 0;
  for (size_t i = 0; i < n.text.len; j++) {
    char c = n.text.ptr[i];
    if (n.quoted) {
      buf[j] = c;
      i += (c == '"' && i + 1 < n.text.len && n.text.ptr[i + 1] == '"') ? 2 : 1;
    } else {
      buf[j] = fold(c);
      i++;
    }
  }
  TDM_ASSERT(j == need);
  buf[j] = '\0';
  return 0;
}
