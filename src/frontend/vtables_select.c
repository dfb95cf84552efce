/* The SELECT subset of the virtual tables (behaviour.md §9.1), parsed from the CQL lexer's tokens:
 *
 *   SELECT ( * | sel [AS alias] {, sel [AS alias]} ) FROM [ks.]table
 *     [WHERE cond {AND cond}] { LIMIT n|? | ALLOW FILTERING | USING TIMEOUT d } [;]
 *   sel  = column | count(*) | count(1) | now()
 *   cond = key = 'local' | peer = <inet>|? | peer_port = <n>|? | anything else (ignored, markers counted)
 *
 * The table comes from the classifier (the same decision the route module made), so a statement that
 * is not a SELECT on a virtual table is TDM_ENOTFOUND however it is written; anything outside the
 * subset (JSON, DISTINCT, other functions, ORDER/GROUP BY, PER PARTITION LIMIT, ...) is TDM_EINVAL. */
#include <tandem/frontend/vtables.h>
#include <tandem/proto/classify.h>

typedef struct parser_s {
  tdm_cql_lexer_t lx;   /* token source */
  tdm_cql_token_t tok;  /* current token */
  tdm_vselect_t *out;   /* result */
} parser_t;

static void advance(parser_t *p) { tdm_cql_lexer_next(&p->lx, &p->tok); }

static bool is_kw(const parser_t *p, const char *kw) { return tdm_cql_token_is_keyword(&p->tok, tdm_str_from(kw)); }

static bool is_punct(const parser_t *p, char c) { return tdm_cql_token_is_punct(&p->tok, c); }

/* True when the token after the current one is punctuation c. */
static bool next_is_punct(const parser_t *p, char c)
{
  tdm_cql_token_t t;
  tdm_cql_lexer_peek(&p->lx, &t);
  return tdm_cql_token_is_punct(&t, c);
}

static bool next_is_kw(const parser_t *p, const char *kw)
{
  tdm_cql_token_t t;
  tdm_cql_lexer_peek(&p->lx, &t);
  return tdm_cql_token_is_keyword(&t, tdm_str_from(kw));
}

/* Records the current BIND token as a marker compared with `column` (absent: none). */
static int add_marker(parser_t *p, tdm_cql_name_t column, bool limit)
{
  tdm_vselect_t *s = p->out;
  if (s->n_markers == TDM_VSELECT_MAX_MARKERS) return TDM_EINVAL;
  tdm_vsel_marker_t *m = &s->markers[s->n_markers];
  m->column = column;
  m->name = tdm_cql_token_body(&p->tok);
  m->limit = limit;
  return (int)s->n_markers++;
}

/* One selector, the current token being its first. */
static int parse_selector(parser_t *p)
{
  tdm_vselect_t *s = p->out;
  if (s->n_items == TDM_VSELECT_MAX_ITEMS) return TDM_EINVAL;
  tdm_vsel_item_t *it = &s->items[s->n_items];
  memset(it, 0, sizeof(*it));
  if (!tdm_cql_token_is_name(&p->tok)) return TDM_EINVAL;
  bool call = p->tok.kind == TDM_CQL_TOK_IDENT && next_is_punct(p, '(');
  if (call && is_kw(p, "count")) {
    advance(p); /* ( */
    advance(p);
    bool star = is_punct(p, '*');
    bool one = p->tok.kind == TDM_CQL_TOK_NUMBER && tdm_str_eq_cstr(p->tok.text, "1");
    if (!star && !one) return TDM_EINVAL;
    advance(p);
    if (!is_punct(p, ')')) return TDM_EINVAL;
    it->kind = TDM_VSEL_COUNT;
  } else if (call && is_kw(p, "now")) {
    advance(p); /* ( */
    advance(p);
    if (!is_punct(p, ')')) return TDM_EINVAL;
    it->kind = TDM_VSEL_NOW;
  } else if (call) {
    return TDM_EINVAL; /* any other function: writetime, ttl, token, cast, tojson, ... */
  } else {
    it->kind = TDM_VSEL_COLUMN;
    it->name = tdm_cql_name_from_token(&p->tok);
  }
  advance(p);
  if (is_kw(p, "as")) {
    advance(p);
    if (!tdm_cql_token_is_name(&p->tok)) return TDM_EINVAL;
    it->alias = tdm_cql_name_from_token(&p->tok);
    advance(p);
  }
  s->n_items++;
  return 0;
}

static int parse_selection(parser_t *p)
{
  if (is_punct(p, '*')) {
    p->out->star = true;
    advance(p);
    return 0;
  }
  /* JSON / DISTINCT are keywords here unless they name a column (`SELECT json FROM ...`) */
  if ((is_kw(p, "json") || is_kw(p, "distinct")) && !next_is_kw(p, "from") && !next_is_punct(p, ',') &&
      !next_is_kw(p, "as"))
    return TDM_EINVAL;
  for (;;) {
    int rc = parse_selector(p);
    if (rc < 0) return rc;
    if (!is_punct(p, ',')) return 0;
    advance(p);
  }
}

/* A term of a recognised condition or LIMIT: a literal or a marker. */
static int parse_term(parser_t *p, tdm_vsel_term_t *term, tdm_cql_name_t column, bool limit)
{
  term->set = true;
  term->marker = -1;
  if (p->tok.kind == TDM_CQL_TOK_BIND) {
    int m = add_marker(p, column, limit);
    if (m < 0) return m;
    term->marker = m;
  } else if (p->tok.kind == TDM_CQL_TOK_STRING || p->tok.kind == TDM_CQL_TOK_NUMBER) {
    term->literal = p->tok;
  } else {
    return TDM_EINVAL;
  }
  advance(p);
  return 0;
}

static bool ends_condition(const parser_t *p)
{
  return p->tok.kind == TDM_CQL_TOK_EOF || is_punct(p, ';') || is_kw(p, "and") || is_kw(p, "limit") ||
         is_kw(p, "allow") || is_kw(p, "using") || is_kw(p, "order") || is_kw(p, "group") || is_kw(p, "per");
}

/* One WHERE condition. `col = term` on key / peer / peer_port is recognised; any other condition is
 * skipped up to the next top-level AND or clause, its markers recorded against its first column. */
static int parse_condition(parser_t *p)
{
  tdm_vselect_t *s = p->out;
  tdm_cql_name_t col = { 0 };
  if (tdm_cql_token_is_name(&p->tok)) {
    col = tdm_cql_name_from_token(&p->tok);
    tdm_cql_token_t op;
    tdm_cql_lexer_peek(&p->lx, &op);
    if (tdm_cql_token_is_punct(&op, '=')) {
      tdm_vsel_term_t *term = NULL;
      if (tdm_cql_name_eq(col, TDM_STR("key"))) term = &s->key;
      else if (tdm_cql_name_eq(col, TDM_STR("peer"))) term = &s->peer;
      else if (tdm_cql_name_eq(col, TDM_STR("peer_port"))) term = &s->peer_port;
      if (term) {
        advance(p);
        advance(p);
        tdm_cql_lexer_t save = p->lx;
        tdm_cql_token_t save_tok = p->tok;
        size_t save_markers = s->n_markers;
        if (parse_term(p, term, col, false) == 0 && ends_condition(p)) return 0;
        /* not a plain `col = term`: forget it and skip it as an ignored condition */
        memset(term, 0, sizeof(*term));
        s->n_markers = save_markers;
        p->lx = save;
        p->tok = save_tok;
      }
    }
  }
  int depth = 0;
  while (p->tok.kind != TDM_CQL_TOK_EOF && (depth > 0 || !ends_condition(p))) {
    if (p->tok.kind == TDM_CQL_TOK_UNTERMINATED) return TDM_EINVAL;
    if (is_punct(p, '(')) depth++;
    if (is_punct(p, ')') && --depth < 0) return TDM_EINVAL;
    if (p->tok.kind == TDM_CQL_TOK_BIND && add_marker(p, col, false) < 0) return TDM_EINVAL;
    advance(p);
  }
  return depth == 0 ? 0 : TDM_EINVAL;
}

static int parse_tail(parser_t *p)
{
  tdm_vselect_t *s = p->out;
  if (is_kw(p, "where")) {
    advance(p);
    for (;;) {
      int rc = parse_condition(p);
      if (rc < 0) return rc;
      if (!is_kw(p, "and")) break;
      advance(p);
    }
  }
  for (;;) {
    if (p->tok.kind == TDM_CQL_TOK_EOF) return 0;
    if (is_punct(p, ';')) {
      advance(p);
      return p->tok.kind == TDM_CQL_TOK_EOF ? 0 : TDM_EINVAL;
    }
    if (is_kw(p, "limit") && !s->limit.set) {
      advance(p);
      tdm_cql_name_t none = { 0 };
      int rc = parse_term(p, &s->limit, none, true);
      if (rc < 0 || (s->limit.marker < 0 && s->limit.literal.kind != TDM_CQL_TOK_NUMBER)) return TDM_EINVAL;
    } else if (is_kw(p, "allow")) {
      advance(p);
      if (!is_kw(p, "filtering")) return TDM_EINVAL;
      advance(p);
    } else if (is_kw(p, "using")) {
      advance(p);
      if (!is_kw(p, "timeout")) return TDM_EINVAL;
      advance(p);
      if (p->tok.kind == TDM_CQL_TOK_BIND) {
        tdm_cql_name_t none = { 0 };
        if (add_marker(p, none, false) < 0) return TDM_EINVAL;
      } else if (p->tok.kind != TDM_CQL_TOK_NUMBER) {
        return TDM_EINVAL;
      }
      advance(p);
    } else {
      return TDM_EINVAL;
    }
  }
}

int tdm_vselect_parse(tdm_str_t query, tdm_str_t session_keyspace, tdm_vselect_t *out)
{
  memset(out, 0, sizeof(*out));
  tdm_classification_t cls;
  if (tdm_classify(query.ptr, query.len, &cls) != TDM_CLASSIFY_KIND_SELECT) return TDM_ENOTFOUND;
  switch (tdm_classify_virtual_table(&cls, session_keyspace)) {
  case TDM_CLASSIFY_VTABLE_LOCAL: out->table = TDM_VTABLE_LOCAL; break;
  case TDM_CLASSIFY_VTABLE_PEERS: out->table = TDM_VTABLE_PEERS; break;
  case TDM_CLASSIFY_VTABLE_PEERS_V2: out->table = TDM_VTABLE_PEERS_V2; break;
  default: return TDM_ENOTFOUND;
  }
  parser_t p = { .out = out };
  tdm_cql_lexer_init(&p.lx, query.ptr, query.len);
  advance(&p);
  if (!is_kw(&p, "select")) return TDM_ENOTFOUND;
  advance(&p);
  int rc = parse_selection(&p);
  if (rc == 0 && !is_kw(&p, "from")) rc = TDM_EINVAL;
  if (rc == 0) {
    advance(&p); /* the table (and keyspace): already resolved by the classifier */
    if (!tdm_cql_token_is_name(&p.tok)) rc = TDM_EINVAL;
    else advance(&p);
    if (rc == 0 && is_punct(&p, '.')) {
      advance(&p);
      if (!tdm_cql_token_is_name(&p.tok)) rc = TDM_EINVAL;
      else advance(&p);
    }
  }
  if (rc == 0) rc = parse_tail(&p);
  if (rc < 0) {
    tdm_vtable_t t = out->table;
    memset(out, 0, sizeof(*out));
    out->table = t;
    return TDM_EINVAL;
  }
  return 0;
}

const char *tdm_vtable_name(tdm_vtable_t t)
{
  switch (t) {
  case TDM_VTABLE_LOCAL: return "local";
  case TDM_VTABLE_PEERS: return "peers";
  case TDM_VTABLE_PEERS_V2: return "peers_v2";
  default: return "?";
  }
}

bool tdm_vtables_is_virtual(tdm_str_t keyspace, tdm_str_t table)
{
  return tdm_str_eq_cstr(keyspace, "system") &&
         (tdm_str_eq_cstr(table, "local") || tdm_str_eq_cstr(table, "peers") || tdm_str_eq_cstr(table, "peers_v2"));
}
