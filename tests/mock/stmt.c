/* Recursive-descent reading of the CQL the mock answers. Every token goes through next(), which counts
 * bind markers wherever they are and names them from the tokens before them ("col = ?", "LIMIT ?"), so
 * PREPARED metadata is right even for clauses the parser skips. Arrays are bounded: extra items are
 * counted or dropped, never written out of bounds. */
#include "stmt.h"

typedef struct parser_s {
  tdm_cql_lexer_t lx;      /* token source */
  tdm_mock_stmt_t *st;     /* statement being filled */
  tdm_cql_token_t prev;    /* last token consumed */
  tdm_cql_token_t prev2;   /* the one before */
  tdm_cql_token_t prev3;   /* and the one before that */
} parser_t;

static bool is_op(const tdm_cql_token_t *t)
{
  if (t->kind != TDM_CQL_TOK_OP) return false;
  return tdm_str_eq(t->text, TDM_STR("=")) || tdm_str_eq(t->text, TDM_STR("<")) || tdm_str_eq(t->text, TDM_STR(">")) ||
         tdm_str_eq(t->text, TDM_STR("<=")) || tdm_str_eq(t->text, TDM_STR(">=")) || tdm_str_eq(t->text, TDM_STR("!="));
}

/* Names bind marker `index` from the tokens before it. */
static void name_bind(parser_t *p, const tdm_cql_token_t *tok, uint16_t index)
{
  tdm_mock_bind_t *b = &p->st->binds[index];
  tdm_str_t body = tdm_cql_token_body(tok);
  if (body.len > 0) { /* :name */
    b->column.text = body;
    b->column.quoted = tok->text.len > 1 && tok->text.ptr[1] == '"';
    return;
  }
  if (TDM_CQL_KW(&p->prev, "limit")) {
    b->special = TDM_CQL_KW(&p->prev2, "partition") ? "[per_partition_limit]" : "[limit]";
  } else if (TDM_CQL_KW(&p->prev, "ttl")) {
    b->special = "[ttl]";
  } else if (TDM_CQL_KW(&p->prev, "timestamp")) {
    b->special = "[timestamp]";
  } else if ((is_op(&p->prev) || TDM_CQL_KW(&p->prev, "in") || TDM_CQL_KW(&p->prev, "contains")) &&
             tdm_cql_token_is_name(&p->prev2)) {
    b->column = tdm_cql_name_from_token(&p->prev2);
  } else if (tdm_cql_token_is_punct(&p->prev, '+') || tdm_cql_token_is_punct(&p->prev, '-')) {
    /* c = c + ? : name it after the assigned column */
    if (tdm_cql_token_is_name(&p->prev2) && is_op(&p->prev3)) b->column = tdm_cql_name_from_token(&p->prev2);
  }
}

static tdm_cql_tok_kind_t next(parser_t *p, tdm_cql_token_t *t)
{
  tdm_cql_tok_kind_t k = tdm_cql_lexer_next(&p->lx, t);
  if (k == TDM_CQL_TOK_BIND) {
    uint16_t i = p->st->n_binds;
    if (i < UINT16_MAX) p->st->n_binds++;
    if (i < TDM_MOCK_STMT_MAX_BINDS) name_bind(p, t, i);
  }
  if (k != TDM_CQL_TOK_EOF) {
    p->prev3 = p->prev2;
    p->prev2 = p->prev;
    p->prev = *t;
  }
  return k;
}

static tdm_cql_tok_kind_t peek(const parser_t *p, tdm_cql_token_t *t) { return tdm_cql_lexer_peek(&p->lx, t); }

static bool accept_kw(parser_t *p, const char *kw)
{
  tdm_cql_token_t t;
  peek(p, &t);
  if (!tdm_cql_token_is_keyword(&t, tdm_str_from(kw))) return false;
  next(p, &t);
  return true;
}

static bool accept_punct(parser_t *p, char c)
{
  tdm_cql_token_t t;
  peek(p, &t);
  if (!tdm_cql_token_is_punct(&t, c)) return false;
  next(p, &t);
  return true;
}

/* [IF [NOT] EXISTS] */
static void skip_if_exists(parser_t *p)
{
  tdm_cql_token_t t, t2;
  peek(p, &t);
  if (!TDM_CQL_KW(&t, "if")) return;
  tdm_cql_lexer_t save = p->lx;
  next(p, &t);
  peek(p, &t2);
  if (TDM_CQL_KW(&t2, "not") || TDM_CQL_KW(&t2, "exists")) {
    accept_kw(p, "not");
    accept_kw(p, "exists");
  } else {
    p->lx = save; /* an IF condition (LWT), not ours */
  }
}

/* name [. name] into ks/table (a single name goes to table). */
static bool parse_qualified(parser_t *p, tdm_cql_name_t *ks, tdm_cql_name_t *table)
{
  tdm_cql_token_t t;
  peek(p, &t);
  if (!tdm_cql_token_is_name(&t)) return false;
  next(p, &t);
  tdm_cql_name_t first = tdm_cql_name_from_token(&t);
  if (accept_punct(p, '.')) {
    peek(p, &t);
    if (!tdm_cql_token_is_name(&t)) return false;
    next(p, &t);
    *ks = first;
    *table = tdm_cql_name_from_token(&t);
  } else {
    *table = first;
  }
  return true;
}

/* Skips a balanced run up to a delimiter at depth 0: ',' ';' an unmatched ')' or one of the clause
 * keywords; the delimiter is not consumed. */
static void skip_expr(parser_t *p)
{
  int depth = 0;
  tdm_cql_token_t t;
  for (;;) {
    tdm_cql_tok_kind_t k = peek(p, &t);
    if (k == TDM_CQL_TOK_EOF) return;
    if (depth == 0) {
      if (tdm_cql_token_is_punct(&t, ',') || tdm_cql_token_is_punct(&t, ';') || tdm_cql_token_is_punct(&t, ')'))
        return;
      if (TDM_CQL_KW(&t, "where") || TDM_CQL_KW(&t, "and") || TDM_CQL_KW(&t, "if") || TDM_CQL_KW(&t, "using") ||
          TDM_CQL_KW(&t, "limit") || TDM_CQL_KW(&t, "allow") || TDM_CQL_KW(&t, "from") || TDM_CQL_KW(&t, "as") ||
          TDM_CQL_KW(&t, "apply") || TDM_CQL_KW(&t, "per") || TDM_CQL_KW(&t, "group") || TDM_CQL_KW(&t, "order"))
        return;
    }
    next(p, &t);
    if (tdm_cql_token_is_punct(&t, '(') || tdm_cql_token_is_punct(&t, '[') || tdm_cql_token_is_punct(&t, '{')) depth++;
    if ((tdm_cql_token_is_punct(&t, ')') || tdm_cql_token_is_punct(&t, ']') || tdm_cql_token_is_punct(&t, '}')) &&
        depth > 0)
      depth--;
  }
}

static void parse_term(parser_t *p, tdm_mock_term_t *term)
{
  tdm_cql_token_t t, t2;
  memset(term, 0, sizeof(*term));
  tdm_cql_tok_kind_t k = peek(p, &t);
  tdm_cql_lexer_t save = p->lx;
  bool neg = false;
  if (k == TDM_CQL_TOK_OP && tdm_str_eq(t.text, TDM_STR("-"))) {
    next(p, &t);
    neg = true;
    k = peek(p, &t);
  }
  if (k == TDM_CQL_TOK_BIND && !neg) {
    next(p, &t);
    term->kind = TDM_MOCK_TERM_BIND;
    term->bind = (uint16_t)(p->st->n_binds - 1);
  } else if (k == TDM_CQL_TOK_STRING || k == TDM_CQL_TOK_DOLLAR_STRING || k == TDM_CQL_TOK_NUMBER ||
             (k == TDM_CQL_TOK_IDENT && !neg &&
              (TDM_CQL_KW(&t, "true") || TDM_CQL_KW(&t, "false") || TDM_CQL_KW(&t, "null")))) {
    next(p, &t);
    term->kind = TDM_MOCK_TERM_LITERAL;
    term->tok = t;
    term->negative = neg;
  } else {
    p->lx = save;
    term->kind = TDM_MOCK_TERM_COMPLEX;
    skip_expr(p);
    return;
  }
  /* A literal followed by more expression (1 + 2, f(x)) is complex. */
  peek(p, &t2);
  if (!(t2.kind == TDM_CQL_TOK_EOF || tdm_cql_token_is_punct(&t2, ',') || tdm_cql_token_is_punct(&t2, ')') ||
        tdm_cql_token_is_punct(&t2, ';') || t2.kind == TDM_CQL_TOK_IDENT)) {
    term->kind = TDM_MOCK_TERM_COMPLEX;
    skip_expr(p);
  }
}

/* WHERE a = x AND b = y ...: keeps equalities on plain columns. */
static void parse_where(parser_t *p)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t, op;
  if (!accept_kw(p, "where")) return;
  do {
    peek(p, &t);
    if (!tdm_cql_token_is_name(&t)) {
      st->where_other = true;
      skip_expr(p);
      continue;
    }
    next(p, &t);
    peek(p, &op);
    if (op.kind == TDM_CQL_TOK_OP && tdm_str_eq(op.text, TDM_STR("="))) {
      next(p, &op);
      tdm_mock_term_t term;
      parse_term(p, &term);
      if (st->n_where < TDM_MOCK_STMT_MAX_WHERE && term.kind != TDM_MOCK_TERM_COMPLEX) {
        st->where_cols[st->n_where] = tdm_cql_name_from_token(&t);
        st->where_vals[st->n_where++] = term;
      } else {
        st->where_other = true;
      }
    } else {
      st->where_other = true;
      skip_expr(p);
    }
  } while (accept_kw(p, "and"));
}

/* Consumes every remaining token (so trailing binds are counted). */
static void drain(parser_t *p)
{
  tdm_cql_token_t t;
  while (next(p, &t) != TDM_CQL_TOK_EOF) {
  }
}

static void parse_select(parser_t *p)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t;
  st->kind = TDM_MOCK_STMT_SELECT;
  if (accept_kw(p, "json")) st->json = true;
  accept_kw(p, "distinct");
  if (accept_punct(p, '*')) {
    st->star = true;
  } else {
    do {
      tdm_cql_lexer_t save = p->lx;
      peek(p, &t);
      tdm_cql_name_t col = { 0 };
      if (tdm_cql_token_is_name(&t)) {
        next(p, &t);
        col = tdm_cql_name_from_token(&t);
        tdm_cql_token_t t2;
        peek(p, &t2);
        if (tdm_cql_token_is_punct(&t2, '(')) { /* a function call: count(*), writetime(v) ... */
          st->has_function = true;
          p->lx = save;
          skip_expr(p);
        }
      } else {
        st->has_function = true;
        skip_expr(p);
      }
      tdm_cql_name_t shown = col;
      if (accept_kw(p, "as")) {
        peek(p, &t);
        if (tdm_cql_token_is_name(&t)) {
          next(p, &t);
          shown = tdm_cql_name_from_token(&t);
        }
      }
      if (st->n_cols < TDM_MOCK_STMT_MAX_COLS) {
        st->src_cols[st->n_cols] = col;
        st->cols[st->n_cols++] = shown;
      }
    } while (accept_punct(p, ','));
  }
  /* FROM at depth 0 */
  while (peek(p, &t) != TDM_CQL_TOK_EOF && !TDM_CQL_KW(&t, "from")) next(p, &t);
  if (!accept_kw(p, "from")) return;
  if (!parse_qualified(p, &st->ks, &st->table)) return;
  parse_where(p);
  drain(p);
}

static void parse_insert(parser_t *p)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t;
  st->kind = TDM_MOCK_STMT_INSERT;
  if (!accept_kw(p, "into") || !parse_qualified(p, &st->ks, &st->table)) {
    drain(p);
    return;
  }
  if (accept_kw(p, "json")) {
    st->json = true;
    { drain(p); return; }
  }
  if (!accept_punct(p, '(')) { drain(p); return; }
  size_t n = 0;
  do {
    peek(p, &t);
    if (!tdm_cql_token_is_name(&t)) { drain(p); return; }
    next(p, &t);
    if (n < TDM_MOCK_STMT_MAX_COLS) st->cols[n++] = tdm_cql_name_from_token(&t);
  } while (accept_punct(p, ','));
  st->n_cols = n;
  if (!accept_punct(p, ')') || !accept_kw(p, "values") || !accept_punct(p, '(')) { drain(p); return; }
  size_t i = 0;
  do {
    tdm_mock_term_t term;
    uint16_t before = st->n_binds;
    parse_term(p, &term);
    if (i < n) {
      st->vals[i] = term;
      /* the markers of this value set column i */
      for (uint16_t b = before; b < st->n_binds && b < TDM_MOCK_STMT_MAX_BINDS; b++)
        if (!st->binds[b].column.text.ptr) st->binds[b].column = st->cols[i];
    }
    i++;
  } while (accept_punct(p, ','));
  if (i != n) st->n_cols = TDM_MIN(i, n);
  drain(p);
}

static void parse_update(parser_t *p)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t, op;
  st->kind = TDM_MOCK_STMT_UPDATE;
  if (!parse_qualified(p, &st->ks, &st->table)) { drain(p); return; }
  if (accept_kw(p, "using")) {
    while (peek(p, &t) != TDM_CQL_TOK_EOF && !TDM_CQL_KW(&t, "set")) next(p, &t);
  }
  if (!accept_kw(p, "set")) { drain(p); return; }
  do {
    peek(p, &t);
    if (!tdm_cql_token_is_name(&t)) {
      skip_expr(p);
      continue;
    }
    next(p, &t);
    peek(p, &op);
    if (!(op.kind == TDM_CQL_TOK_OP && tdm_str_eq(op.text, TDM_STR("=")))) {
      skip_expr(p); /* m['k'] = v, l[0] = v ... */
      continue;
    }
    next(p, &op);
    tdm_mock_term_t term;
    parse_term(p, &term);
    if (st->n_cols < TDM_MOCK_STMT_MAX_COLS) {
      st->cols[st->n_cols] = tdm_cql_name_from_token(&t);
      st->vals[st->n_cols++] = term;
    }
  } while (accept_punct(p, ','));
  parse_where(p);
  drain(p);
}

static void parse_delete(parser_t *p)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t;
  st->kind = TDM_MOCK_STMT_DELETE;
  while (peek(p, &t) != TDM_CQL_TOK_EOF && !TDM_CQL_KW(&t, "from")) next(p, &t);
  if (!accept_kw(p, "from") || !parse_qualified(p, &st->ks, &st->table)) { drain(p); return; }
  if (accept_kw(p, "using")) {
    while (peek(p, &t) != TDM_CQL_TOK_EOF && !TDM_CQL_KW(&t, "where")) next(p, &t);
  }
  parse_where(p);
  drain(p);
}

/* ( name type [STATIC] [PRIMARY KEY], ..., PRIMARY KEY ((a, b), c) ) */
static void parse_table_defs(parser_t *p)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t;
  if (!accept_punct(p, '(')) return;
  st->ddl_create_table = true;
  do {
    peek(p, &t);
    if (TDM_CQL_KW(&t, "primary")) {
      next(p, &t);
      accept_kw(p, "key");
      if (!accept_punct(p, '(')) break;
      int depth = 1;
      st->n_pk = 0;
      while (depth > 0 && next(p, &t) != TDM_CQL_TOK_EOF) {
        if (tdm_cql_token_is_punct(&t, '(')) depth++;
        else if (tdm_cql_token_is_punct(&t, ')')) depth--;
        else if (tdm_cql_token_is_name(&t) && st->n_pk < TDM_MOCK_STMT_MAX_PK)
          st->pk[st->n_pk++] = tdm_cql_name_from_token(&t);
      }
      continue;
    }
    if (!tdm_cql_token_is_name(&t)) break;
    next(p, &t);
    tdm_cql_name_t name = tdm_cql_name_from_token(&t);
    /* the type runs to ',' or ')' outside angle brackets, minus STATIC / PRIMARY KEY */
    size_t start = SIZE_MAX, end = 0;
    int angle = 0;
    bool inline_pk = false;
    for (;;) {
      tdm_cql_tok_kind_t k = peek(p, &t);
      if (k == TDM_CQL_TOK_EOF) break;
      if (angle == 0 && (tdm_cql_token_is_punct(&t, ',') || tdm_cql_token_is_punct(&t, ')'))) break;
      next(p, &t);
      if (TDM_CQL_KW(&t, "static")) continue;
      if (TDM_CQL_KW(&t, "primary")) {
        accept_kw(p, "key");
        inline_pk = true;
        continue;
      }
      if (t.kind == TDM_CQL_TOK_OP && t.text.len >= 1 && t.text.ptr[0] == '<') angle++;
      if (t.kind == TDM_CQL_TOK_OP && t.text.len >= 1 && t.text.ptr[0] == '>') angle -= (int)t.text.len;
      if (start == SIZE_MAX) start = t.offset;
      end = t.offset + t.text.len;
    }
    if (st->n_defs < TDM_MOCK_STMT_MAX_COLS && start != SIZE_MAX) {
      st->def_names[st->n_defs] = name;
      st->def_types[st->n_defs++] = (tdm_str_t){ p->lx.text + start, end - start };
    }
    if (inline_pk) {
      st->pk[0] = name;
      st->n_pk = 1;
    }
  } while (accept_punct(p, ','));
}

static void parse_ddl(parser_t *p, const char *change)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t;
  tdm_cql_name_t ks = { 0 }, name = { 0 };
  if (accept_kw(p, "or")) accept_kw(p, "replace");
  accept_kw(p, "custom");
  peek(p, &t);
  if (TDM_CQL_KW(&t, "role") || TDM_CQL_KW(&t, "user")) {
    st->kind = TDM_MOCK_STMT_OTHER;
    { drain(p); return; }
  }
  st->kind = TDM_MOCK_STMT_DDL;
  st->ddl_change = change;
  if (accept_kw(p, "keyspace") || accept_kw(p, "schema")) {
    st->ddl_target = TDM_RESPONSE_TARGET_KEYSPACE;
    skip_if_exists(p);
    parse_qualified(p, &ks, &name);
    st->ddl_name = name;
    { drain(p); return; }
  }
  if (accept_kw(p, "table") || accept_kw(p, "columnfamily")) {
    st->ddl_target = TDM_RESPONSE_TARGET_TABLE;
    skip_if_exists(p);
    parse_qualified(p, &st->ks, &st->table);
    st->ddl_name = st->table;
    if (change[0] == 'C') parse_table_defs(p);
    { drain(p); return; }
  }
  if (accept_kw(p, "type")) st->ddl_target = TDM_RESPONSE_TARGET_TYPE;
  else if (accept_kw(p, "function")) st->ddl_target = TDM_RESPONSE_TARGET_FUNCTION;
  else if (accept_kw(p, "aggregate")) st->ddl_target = TDM_RESPONSE_TARGET_AGGREGATE;
  if (st->ddl_target != TDM_RESPONSE_TARGET_NONE) {
    skip_if_exists(p);
    parse_qualified(p, &st->ks, &name);
    st->ddl_name = name;
    { drain(p); return; }
  }
  /* INDEX, MATERIALIZED VIEW, TRIGGER: reported as an update of (or on) a table */
  st->ddl_target = TDM_RESPONSE_TARGET_TABLE;
  if (accept_kw(p, "materialized")) {
    accept_kw(p, "view");
    skip_if_exists(p);
    parse_qualified(p, &st->ks, &st->table);
    st->ddl_name = st->table;
    { drain(p); return; }
  }
  st->ddl_change = "UPDATED";
  while (peek(p, &t) != TDM_CQL_TOK_EOF && !TDM_CQL_KW(&t, "on")) next(p, &t);
  if (accept_kw(p, "on")) parse_qualified(p, &st->ks, &st->table);
  st->ddl_name = st->table;
  drain(p);
}

static void parse_batch(parser_t *p)
{
  tdm_mock_stmt_t *st = p->st;
  tdm_cql_token_t t;
  st->kind = TDM_MOCK_STMT_BATCH;
  size_t open = SIZE_MAX;
  for (;;) {
    tdm_cql_tok_kind_t k = next(p, &t);
    bool starts = TDM_CQL_KW(&t, "insert") || TDM_CQL_KW(&t, "update") || TDM_CQL_KW(&t, "delete");
    bool ends = k == TDM_CQL_TOK_EOF || starts || TDM_CQL_KW(&t, "apply") || tdm_cql_token_is_punct(&t, ';');
    if (ends && open != SIZE_MAX && st->n_parts < TDM_MOCK_STMT_MAX_PARTS) {
      size_t end = k == TDM_CQL_TOK_EOF ? p->lx.len : t.offset;
      st->part_off[st->n_parts] = open;
      st->part_len[st->n_parts++] = end - open;
      open = SIZE_MAX;
    }
    if (starts) open = t.offset;
    if (k == TDM_CQL_TOK_EOF) break;
  }
}

void tdm_mock_stmt_parse(const char *text, size_t len, tdm_mock_stmt_t *out)
{
  memset(out, 0, sizeof(*out));
  parser_t p = { .st = out };
  tdm_cql_lexer_init(&p.lx, text, len);
  tdm_cql_token_t t;
  next(&p, &t);
  if (TDM_CQL_KW(&t, "select")) parse_select(&p);
  else if (TDM_CQL_KW(&t, "insert")) parse_insert(&p);
  else if (TDM_CQL_KW(&t, "update")) parse_update(&p);
  else if (TDM_CQL_KW(&t, "delete")) parse_delete(&p);
  else if (TDM_CQL_KW(&t, "begin")) parse_batch(&p);
  else if (TDM_CQL_KW(&t, "create")) parse_ddl(&p, "CREATED");
  else if (TDM_CQL_KW(&t, "alter")) parse_ddl(&p, "UPDATED");
  else if (TDM_CQL_KW(&t, "drop")) parse_ddl(&p, "DROPPED");
  else if (TDM_CQL_KW(&t, "list")) {
    out->kind = TDM_MOCK_STMT_LIST;
    drain(&p);
  } else if (TDM_CQL_KW(&t, "truncate")) {
    out->kind = TDM_MOCK_STMT_TRUNCATE;
    accept_kw(&p, "table");
    parse_qualified(&p, &out->ks, &out->table);
    drain(&p);
  } else if (TDM_CQL_KW(&t, "use")) {
    out->kind = TDM_MOCK_STMT_USE;
    tdm_cql_token_t k;
    peek(&p, &k);
    if (tdm_cql_token_is_name(&k)) {
      next(&p, &k);
      out->ks = tdm_cql_name_from_token(&k);
    }
    drain(&p);
  } else {
    drain(&p);
  }
}

const char *tdm_mock_stmt_kind_name(tdm_mock_stmt_kind_t kind)
{
  static const char *const names[TDM_MOCK_STMT_MAX] = {
    [TDM_MOCK_STMT_OTHER] = "OTHER",   [TDM_MOCK_STMT_SELECT] = "SELECT", [TDM_MOCK_STMT_INSERT] = "INSERT",
    [TDM_MOCK_STMT_UPDATE] = "UPDATE", [TDM_MOCK_STMT_DELETE] = "DELETE", [TDM_MOCK_STMT_BATCH] = "BATCH",
    [TDM_MOCK_STMT_USE] = "USE",       [TDM_MOCK_STMT_DDL] = "DDL",       [TDM_MOCK_STMT_TRUNCATE] = "TRUNCATE",
    [TDM_MOCK_STMT_LIST] = "LIST",
  };
  return (unsigned)kind < TDM_MOCK_STMT_MAX ? names[kind] : "OTHER";
}

void tdm_mock_name_cstr(tdm_cql_name_t name, char *buf, size_t cap)
{
  size_t n;
  if (cap == 0) return;
  buf[0] = '\0';
  if (!tdm_cql_name_is_set(name) || tdm_cql_name_copy(name, buf, cap, &n)) buf[0] = '\0';
}

bool tdm_mock_term_text(const tdm_mock_term_t *term, char *buf, size_t cap, tdm_str_t *out)
{
  if (term->kind != TDM_MOCK_TERM_LITERAL || cap == 0) return false;
  const tdm_cql_token_t *t = &term->tok;
  tdm_str_t body = tdm_cql_token_body(t);
  size_t o = 0;
  if (term->negative) buf[o++] = '-';
  for (size_t i = 0; i < body.len; i++) {
    if (o + 1 >= cap) return false;
    buf[o++] = body.ptr[i];
    if (t->kind == TDM_CQL_TOK_STRING && body.ptr[i] == '\'' && i + 1 < body.len && body.ptr[i + 1] == '\'') i++;
  }
  buf[o] = '\0';
  out->ptr = buf;
  out->len = o;
  return true;
}
