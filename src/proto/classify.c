/* Statement classifier on top of the CQL lexer. The first token decides the kind; a few tokens more give
 * the object, keyspace and table. SELECT stops after the name that follows its first depth-0 FROM (the
 * hot path reads only the select clause), writes are scanned to the end for a top-level IF and for
 * calls of non-deterministic functions. Nothing here can turn a text that starts with SELECT into
 * anything but a read: the kind is fixed before any further token is looked at. */
#include <tandem/proto/classify.h>

typedef struct cursor_s {
  tdm_cql_lexer_t lx;   /* position after tok */
  tdm_cql_token_t tok;  /* current token (EOF once the text is exhausted) */
  tdm_cql_token_t prev; /* token before tok (zeroed at the start): spots `name (` calls */
} cursor_t;

static void advance(cursor_t *c)
{
  c->prev = c->tok;
  (void)tdm_cql_lexer_next(&c->lx, &c->tok);
}

static inline bool at_eof(const cursor_t *c) { return c->tok.kind == TDM_CQL_TOK_EOF; }
static inline bool kw(const cursor_t *c, tdm_str_t k) { return tdm_cql_token_is_keyword(&c->tok, k); }
#define KW(c, lit) kw((c), TDM_STR(lit))
/* TDM_STR for static tables: a brace initializer, which C11 accepts where a compound literal is not. */
#define LIT(s) { (s), sizeof(s) - 1 }

/* Prefix test on a name's canonical form without copying (unquoted names fold to lower case). A head
 * that cuts a "" escape in half ends in a lone quote, which matches no byte of a quote-free prefix. */
static bool name_has_prefix(tdm_cql_name_t n, tdm_str_t prefix)
{
  if (n.text.len < prefix.len) return false;
  tdm_cql_name_t head = { { n.text.ptr, prefix.len }, n.quoted };
  return tdm_cql_name_eq(head, prefix);
}

static bool name_is_system(tdm_cql_name_t n)
{
  return tdm_cql_name_eq(n, TDM_STR("system")) || name_has_prefix(n, TDM_STR("system_")) ||
         name_has_prefix(n, TDM_STR("dse_"));
}

static bool str_has_prefix(tdm_str_t s, tdm_str_t prefix)
{
  return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

bool tdm_classify_is_system_keyspace(tdm_str_t ks)
{
  return tdm_str_eq(ks, TDM_STR("system")) || str_has_prefix(ks, TDM_STR("system_")) ||
         str_has_prefix(ks, TDM_STR("dse_"));
}

/* Functions whose value differs between the two clusters (a dual write would store different data). */
static bool is_nondet_function(const tdm_cql_token_t *t)
{
  static const tdm_str_t names[] = {
    LIT("now"),          LIT("uuid"),         LIT("currenttimestamp"),  LIT("currentdate"),
    LIT("currenttime"),  LIT("currenttimeuuid"), LIT("current_timestamp"), LIT("current_date"),
    LIT("current_time"), LIT("current_timeuuid"),
  };
  if (t->kind != TDM_CQL_TOK_IDENT) return false;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(names); i++)
    if (tdm_cql_token_is_keyword(t, names[i])) return true;
  return false;
}

/* Bookkeeping shared by every scan: bracket depth (never below 0, so a stray closer cannot hide a
 * later FROM or IF) and `fn(` detection. Call once per token before looking at it. */
static void track(const cursor_t *c, size_t *depth, tdm_classification_t *out)
{
  if (c->tok.kind != TDM_CQL_TOK_PUNCT) return;
  switch (c->tok.text.ptr[0]) {
  case '(':
    if (is_nondet_function(&c->prev)) out->flags |= TDM_CLASSIFY_F_NONDET;
    (*depth)++;
    break;
  case '[':
  case '{':
    (*depth)++;
    break;
  case ')':
  case ']':
  case '}':
    if (*depth > 0) (*depth)--;
    break;
  default:
    break;
  }
}

/* A name, or `ks.name`, starting at the current token. On success the cursor is past it. A dangling
 * `ks.` records nothing. */
static bool take_qualified(cursor_t *c, tdm_cql_name_t *ks, tdm_cql_name_t *name)
{
  if (!tdm_cql_token_is_name(&c->tok)) return false;
  tdm_cql_name_t first = tdm_cql_name_from_token(&c->tok);
  advance(c);
  if (!tdm_cql_token_is_punct(&c->tok, '.')) {
    *name = first;
    return true;
  }
  advance(c);
  if (!tdm_cql_token_is_name(&c->tok)) return false;
  *ks = first;
  *name = tdm_cql_name_from_token(&c->tok);
  advance(c);
  return true;
}

/* Advances to the first depth-0 occurrence of keyword k and past it; false at the end of text or at a
 * depth-0 `;` (what follows belongs to another statement, which Cassandra would reject anyway). */
static bool skip_to_keyword(cursor_t *c, tdm_str_t k, tdm_classification_t *out)
{
  size_t depth = 0;
  for (; !at_eof(c); advance(c)) {
    if (depth == 0 && kw(c, k)) {
      advance(c);
      return true;
    }
    if (depth == 0 && tdm_cql_token_is_punct(&c->tok, ';')) return false;
    track(c, &depth, out);
  }
  return false;
}

/* Rest of a write: a depth-0 IF makes it conditional (LWT); calls of now() & co. are flagged. */
static void scan_write_tail(cursor_t *c, tdm_classification_t *out)
{
  size_t depth = 0;
  for (; !at_eof(c); advance(c)) {
    if (depth == 0 && KW(c, "if")) out->flags |= TDM_CLASSIFY_F_LWT;
    track(c, &depth, out);
  }
}

/* JSON and DISTINCT are unreserved: `SELECT json FROM t` selects a column named json. They are the
 * keyword only when a selector follows. */
static bool modifier_applies(const cursor_t *c)
{
  tdm_cql_token_t next;
  switch (tdm_cql_lexer_peek(&c->lx, &next)) {
  case TDM_CQL_TOK_IDENT:
    return !TDM_CQL_KW(&next, "from") && !TDM_CQL_KW(&next, "as");
  case TDM_CQL_TOK_QUOTED_IDENT:
  case TDM_CQL_TOK_STRING:
  case TDM_CQL_TOK_DOLLAR_STRING:
  case TDM_CQL_TOK_NUMBER:
  case TDM_CQL_TOK_BIND:
    return true;
  case TDM_CQL_TOK_PUNCT:
    return tdm_cql_token_is_punct(&next, '*');
  default:
    return false;
  }
}

static void classify_select(cursor_t *c, tdm_classification_t *out)
{
  advance(c);
  if (KW(c, "json") && modifier_applies(c)) {
    out->flags |= TDM_CLASSIFY_F_JSON;
    advance(c);
  }
  if (KW(c, "distinct") && modifier_applies(c)) {
    out->flags |= TDM_CLASSIFY_F_DISTINCT;
    advance(c);
  }
  if (!skip_to_keyword(c, TDM_STR("from"), out)) return;
  if (!take_qualified(c, &out->keyspace, &out->table)) return;
  if (!tdm_cql_name_is_set(out->keyspace)) return;
  if (name_is_system(out->keyspace)) out->flags |= TDM_CLASSIFY_F_SYSTEM_KS;
  if (tdm_classify_virtual_table(out, (tdm_str_t){ NULL, 0 }) != TDM_CLASSIFY_VTABLE_NONE)
    out->flags |= TDM_CLASSIFY_F_VIRTUAL;
}

static void classify_insert(cursor_t *c, tdm_classification_t *out)
{
  advance(c);
  if (KW(c, "into")) advance(c);
  if (take_qualified(c, &out->keyspace, &out->table) && KW(c, "json")) out->flags |= TDM_CLASSIFY_F_JSON;
  scan_write_tail(c, out);
}

static void classify_update(cursor_t *c, tdm_classification_t *out)
{
  advance(c);
  (void)take_qualified(c, &out->keyspace, &out->table);
  scan_write_tail(c, out);
}

static void classify_delete(cursor_t *c, tdm_classification_t *out)
{
  advance(c);
  if (skip_to_keyword(c, TDM_STR("from"), out)) (void)take_qualified(c, &out->keyspace, &out->table);
  scan_write_tail(c, out);
}

/* BEGIN [UNLOGGED | COUNTER | LOGGED] BATCH ... APPLY BATCH; anything else after BEGIN (e.g. Accord's
 * BEGIN TRANSACTION) stays UNKNOWN. */
static void classify_begin(cursor_t *c, tdm_classification_t *out)
{
  enum tdm_batch_type type = TDM_BATCH_LOGGED;
  advance(c);
  if (KW(c, "unlogged")) {
    type = TDM_BATCH_UNLOGGED;
    advance(c);
  } else if (KW(c, "counter")) {
    type = TDM_BATCH_COUNTER;
    advance(c);
  } else if (KW(c, "logged")) {
    advance(c);
  }
  if (!KW(c, "batch")) return;
  out->kind = TDM_CLASSIFY_KIND_BATCH;
  out->cls = TDM_CLASSIFY_CLASS_WRITE;
  out->batch = type;
  advance(c);
  scan_write_tail(c, out);
}

static void classify_use(cursor_t *c, tdm_classification_t *out)
{
  advance(c);
  if (tdm_cql_token_is_name(&c->tok)) out->keyspace = tdm_cql_name_from_token(&c->tok);
}

/* The object keyword(s) after CREATE / ALTER / DROP (and CREATE OR REPLACE); the cursor ends past them. */
static tdm_stmt_object_t take_object(cursor_t *c)
{
  static const struct {
    tdm_str_t word;        /* first object keyword */
    tdm_str_t second;      /* required second keyword, or empty */
    tdm_stmt_object_t obj; /* resulting object */
  } table[] = {
    { LIT("table"), LIT(""), TDM_CLASSIFY_OBJ_TABLE },
    { LIT("keyspace"), LIT(""), TDM_CLASSIFY_OBJ_KEYSPACE },
    { LIT("index"), LIT(""), TDM_CLASSIFY_OBJ_INDEX },
    { LIT("type"), LIT(""), TDM_CLASSIFY_OBJ_TYPE },
    { LIT("function"), LIT(""), TDM_CLASSIFY_OBJ_FUNCTION },
    { LIT("aggregate"), LIT(""), TDM_CLASSIFY_OBJ_AGGREGATE },
    { LIT("trigger"), LIT(""), TDM_CLASSIFY_OBJ_TRIGGER },
    { LIT("role"), LIT(""), TDM_CLASSIFY_OBJ_ROLE },
    { LIT("user"), LIT(""), TDM_CLASSIFY_OBJ_USER },
    { LIT("columnfamily"), LIT(""), TDM_CLASSIFY_OBJ_TABLE },
    { LIT("schema"), LIT(""), TDM_CLASSIFY_OBJ_KEYSPACE },
    { LIT("materialized"), LIT("view"), TDM_CLASSIFY_OBJ_MATERIALIZED_VIEW },
    { LIT("custom"), LIT("index"), TDM_CLASSIFY_OBJ_CUSTOM_INDEX },
    { LIT("search"), LIT("index"), TDM_CLASSIFY_OBJ_SEARCH_INDEX },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(table); i++) {
    if (!kw(c, table[i].word)) continue;
    advance(c);
    if (table[i].second.len == 0) return table[i].obj;
    if (!kw(c, table[i].second)) return TDM_CLASSIFY_OBJ_UNKNOWN;
    advance(c);
    return table[i].obj;
  }
  return TDM_CLASSIFY_OBJ_UNKNOWN;
}

/* CREATE / ALTER / DROP: object kind, IF [NOT] EXISTS, and the keyspace / table the object lives in. */
static void classify_ddl(cursor_t *c, tdm_classification_t *out)
{
  bool is_drop = out->kind == TDM_CLASSIFY_KIND_DROP;
  advance(c);
  if (out->kind == TDM_CLASSIFY_KIND_CREATE && KW(c, "or")) {
    advance(c);
    if (KW(c, "replace")) advance(c);
  }
  out->object = take_object(c);
  bool is_dcl = out->object == TDM_CLASSIFY_OBJ_ROLE || out->object == TDM_CLASSIFY_OBJ_USER;
  out->cls = is_dcl ? TDM_CLASSIFY_CLASS_DCL : TDM_CLASSIFY_CLASS_SCHEMA;
  if (KW(c, "if")) {
    advance(c);
    if (KW(c, "not")) advance(c);
    if (KW(c, "exists")) {
      out->flags |= TDM_CLASSIFY_F_IF_EXISTS;
      advance(c);
    }
  }
  tdm_cql_name_t ignored = { { NULL, 0 }, false };
  switch (out->object) {
  case TDM_CLASSIFY_OBJ_KEYSPACE:
    if (tdm_cql_token_is_name(&c->tok)) out->keyspace = tdm_cql_name_from_token(&c->tok);
    break;
  case TDM_CLASSIFY_OBJ_TABLE:
  case TDM_CLASSIFY_OBJ_MATERIALIZED_VIEW:
    (void)take_qualified(c, &out->keyspace, &out->table);
    break;
  case TDM_CLASSIFY_OBJ_TYPE:
  case TDM_CLASSIFY_OBJ_FUNCTION:
  case TDM_CLASSIFY_OBJ_AGGREGATE:
    (void)take_qualified(c, &out->keyspace, &ignored);
    break;
  case TDM_CLASSIFY_OBJ_INDEX:
    if (is_drop) {
      (void)take_qualified(c, &out->keyspace, &ignored); /* DROP INDEX [ks.]name: no table in the text */
      break;
    }
    if (skip_to_keyword(c, TDM_STR("on"), out)) (void)take_qualified(c, &out->keyspace, &out->table);
    break;
  case TDM_CLASSIFY_OBJ_CUSTOM_INDEX: /* CREATE ... [name] ON [ks.]table; DROP SEARCH INDEX ON, DROP TRIGGER t ON */
  case TDM_CLASSIFY_OBJ_SEARCH_INDEX:
  case TDM_CLASSIFY_OBJ_TRIGGER:
    if (skip_to_keyword(c, TDM_STR("on"), out)) (void)take_qualified(c, &out->keyspace, &out->table);
    break;
  default:
    break; /* roles, users and unknown objects name no keyspace or table */
  }
}

static void classify_truncate(cursor_t *c, tdm_classification_t *out)
{
  out->object = TDM_CLASSIFY_OBJ_TABLE;
  advance(c);
  if (KW(c, "table") || KW(c, "columnfamily")) advance(c);
  (void)take_qualified(c, &out->keyspace, &out->table);
}

/* GRANT/REVOKE <permission> ON <resource> TO/FROM <role>, or GRANT/REVOKE <role> TO/FROM <role>: the
 * first of ON or TO/FROM at depth 0 tells which. */
static void classify_grant(cursor_t *c, tdm_classification_t *out)
{
  tdm_str_t towards = out->kind == TDM_CLASSIFY_KIND_GRANT ? TDM_STR("to") : TDM_STR("from");
  size_t depth = 0;
  out->object = TDM_CLASSIFY_OBJ_UNKNOWN;
  for (advance(c); !at_eof(c); advance(c)) {
    if (depth == 0 && KW(c, "on")) {
      out->object = TDM_CLASSIFY_OBJ_PERMISSION;
      return;
    }
    if (depth == 0 && kw(c, towards)) {
      out->object = TDM_CLASSIFY_OBJ_ROLE;
      return;
    }
    track(c, &depth, out);
  }
}

static void classify_list(cursor_t *c, tdm_classification_t *out)
{
  advance(c);
  if (KW(c, "roles"))
    out->object = TDM_CLASSIFY_OBJ_ROLE;
  else if (KW(c, "users"))
    out->object = TDM_CLASSIFY_OBJ_USER;
  else if (at_eof(c))
    out->object = TDM_CLASSIFY_OBJ_UNKNOWN;
  else
    out->object = TDM_CLASSIFY_OBJ_PERMISSION; /* LIST ALL [PERMISSIONS], LIST <permission> [ON ...] */
}

/* CALL InsightsRpc.<method>(...): DSE drivers' insights reports (the class name is matched ignoring case,
 * quoted or not). */
static void classify_call(cursor_t *c, tdm_classification_t *out)
{
  advance(c);
  if (!tdm_cql_token_is_name(&c->tok) || !tdm_str_eq_ci(tdm_cql_token_body(&c->tok), TDM_STR("insightsrpc")))
    return;
  advance(c);
  if (tdm_cql_token_is_punct(&c->tok, '.')) out->flags |= TDM_CLASSIFY_F_INSIGHTS;
}

tdm_stmt_kind_t tdm_classify(const char *text, size_t len, tdm_classification_t *out)
{
  static const struct {
    tdm_str_t word;        /* first keyword, lower case */
    tdm_stmt_kind_t kind;  /* kind it starts */
    tdm_stmt_class_t cls;  /* class before refinement by the handler */
    void (*handler)(cursor_t *, tdm_classification_t *); /* reads the rest */
  } first[] = {
    /* SELECT first: the hot path, and the invariant's anchor. */
    { LIT("select"), TDM_CLASSIFY_KIND_SELECT, TDM_CLASSIFY_CLASS_READ, classify_select },
    { LIT("insert"), TDM_CLASSIFY_KIND_INSERT, TDM_CLASSIFY_CLASS_WRITE, classify_insert },
    { LIT("update"), TDM_CLASSIFY_KIND_UPDATE, TDM_CLASSIFY_CLASS_WRITE, classify_update },
    { LIT("delete"), TDM_CLASSIFY_KIND_DELETE, TDM_CLASSIFY_CLASS_WRITE, classify_delete },
    { LIT("begin"), TDM_CLASSIFY_KIND_UNKNOWN, TDM_CLASSIFY_CLASS_UNKNOWN, classify_begin },
    { LIT("use"), TDM_CLASSIFY_KIND_USE, TDM_CLASSIFY_CLASS_USE, classify_use },
    { LIT("create"), TDM_CLASSIFY_KIND_CREATE, TDM_CLASSIFY_CLASS_SCHEMA, classify_ddl },
    { LIT("alter"), TDM_CLASSIFY_KIND_ALTER, TDM_CLASSIFY_CLASS_SCHEMA, classify_ddl },
    { LIT("drop"), TDM_CLASSIFY_KIND_DROP, TDM_CLASSIFY_CLASS_SCHEMA, classify_ddl },
    { LIT("truncate"), TDM_CLASSIFY_KIND_TRUNCATE, TDM_CLASSIFY_CLASS_SCHEMA, classify_truncate },
    { LIT("grant"), TDM_CLASSIFY_KIND_GRANT, TDM_CLASSIFY_CLASS_DCL, classify_grant },
    { LIT("revoke"), TDM_CLASSIFY_KIND_REVOKE, TDM_CLASSIFY_CLASS_DCL, classify_grant },
    { LIT("list"), TDM_CLASSIFY_KIND_LIST, TDM_CLASSIFY_CLASS_AUTH_READ, classify_list },
    { LIT("call"), TDM_CLASSIFY_KIND_CALL, TDM_CLASSIFY_CLASS_CALL, classify_call },
  };
  cursor_t c;
  memset(out, 0, sizeof(*out));
  memset(&c, 0, sizeof(c));
  tdm_cql_lexer_init(&c.lx, text, len);
  advance(&c);
  if (c.tok.kind != TDM_CQL_TOK_IDENT) return out->kind;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(first); i++) {
    if (!kw(&c, first[i].word)) continue;
    out->kind = first[i].kind;
    out->cls = first[i].cls;
    first[i].handler(&c, out);
    /* The invariant, re-checked: no handler may demote a SELECT. */
    TDM_ASSERT(first[i].kind != TDM_CLASSIFY_KIND_SELECT ||
               (out->kind == TDM_CLASSIFY_KIND_SELECT && out->cls == TDM_CLASSIFY_CLASS_READ));
    break;
  }
  return out->kind;
}

tdm_stmt_vtable_t tdm_classify_virtual_table(const tdm_classification_t *c, tdm_str_t session_keyspace)
{
  if (c->kind != TDM_CLASSIFY_KIND_SELECT || !tdm_cql_name_is_set(c->table)) return TDM_CLASSIFY_VTABLE_NONE;
  bool in_system = tdm_cql_name_is_set(c->keyspace) ? tdm_cql_name_eq(c->keyspace, TDM_STR("system"))
                                                    : tdm_str_eq(session_keyspace, TDM_STR("system"));
  if (!in_system) return TDM_CLASSIFY_VTABLE_NONE;
  if (tdm_cql_name_eq(c->table, TDM_STR("local"))) return TDM_CLASSIFY_VTABLE_LOCAL;
  if (tdm_cql_name_eq(c->table, TDM_STR("peers"))) return TDM_CLASSIFY_VTABLE_PEERS;
  if (tdm_cql_name_eq(c->table, TDM_STR("peers_v2"))) return TDM_CLASSIFY_VTABLE_PEERS_V2;
  return TDM_CLASSIFY_VTABLE_NONE;
}

bool tdm_classify_reads_system(const tdm_classification_t *c, tdm_str_t session_keyspace)
{
  if (c->kind != TDM_CLASSIFY_KIND_SELECT) return false;
  if (tdm_cql_name_is_set(c->keyspace)) return name_is_system(c->keyspace);
  return tdm_classify_is_system_keyspace(session_keyspace);
}

const char *tdm_classify_kind_name(tdm_stmt_kind_t kind)
{
  static const char *const names[] = {
#define TDM_CLASSIFY_KIND_STR(name) #name,
    TDM_CLASSIFY_KIND_MAP(TDM_CLASSIFY_KIND_STR)
#undef TDM_CLASSIFY_KIND_STR
  };
  return (unsigned)kind < TDM_ARRAY_SIZE(names) ? names[kind] : "INVALID";
}

const char *tdm_classify_class_name(tdm_stmt_class_t cls)
{
  static const char *const names[] = {
#define TDM_CLASSIFY_CLASS_STR(name) #name,
    TDM_CLASSIFY_CLASS_MAP(TDM_CLASSIFY_CLASS_STR)
#undef TDM_CLASSIFY_CLASS_STR
  };
  return (unsigned)cls < TDM_ARRAY_SIZE(names) ? names[cls] : "INVALID";
}

const char *tdm_classify_object_name(tdm_stmt_object_t obj)
{
  static const char *const names[] = {
#define TDM_CLASSIFY_OBJ_STR(name) #name,
    TDM_CLASSIFY_OBJ_MAP(TDM_CLASSIFY_OBJ_STR)
#undef TDM_CLASSIFY_OBJ_STR
  };
  return (unsigned)obj < TDM_ARRAY_SIZE(names) ? names[obj] : "INVALID";
}
