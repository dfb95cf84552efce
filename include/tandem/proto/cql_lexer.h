/* Hand-written CQL lexer over a borrowed (ptr, len) text: no allocation, no NUL needed, never reads at
 * or past len. It skips whitespace and `--`, `//`, block comments, and yields identifiers, quoted
 * identifiers, '...' and $$...$$ strings, numbers, bind markers, punctuation and operators. The
 * classifier and the virtual-table SELECT parser are built on this token stream. */
#ifndef TANDEM_PROTO_CQL_LEXER_H
#define TANDEM_PROTO_CQL_LEXER_H

#include <tandem/common.h>
#include <tandem/util/str.h>

typedef enum tdm_cql_tok_kind {
  TDM_CQL_TOK_EOF = 0,       /* end of text; returned forever once reached */
  TDM_CQL_TOK_IDENT,         /* unquoted identifier or keyword: [A-Za-z_][A-Za-z0-9_]*, compare folded */
  TDM_CQL_TOK_QUOTED_IDENT,  /* "..." with "" for a quote; case kept; may be empty ("") */
  TDM_CQL_TOK_STRING,        /* '...' with '' for a quote */
  TDM_CQL_TOK_DOLLAR_STRING, /* $$...$$, no escapes (the body never contains $$) */
  TDM_CQL_TOK_NUMBER,        /* starts with a digit: integer, float, 0x blob, uuid, duration such as 1h30m */
  TDM_CQL_TOK_BIND,          /* ? or :name or :"Name" */
  TDM_CQL_TOK_PUNCT,         /* one byte of . , ( ) [ ] { } ; * : */
  TDM_CQL_TOK_OP,            /* = < > <= >= != + - / % += -= */
  TDM_CQL_TOK_UNTERMINATED,  /* a string, $$ string or quoted identifier cut by the end of text (last token) */
  TDM_CQL_TOK_OTHER,         /* any other single byte (control bytes, non-ASCII, # @ ...) */
  TDM_CQL_TOK_MAX            /* sentinel */
} tdm_cql_tok_kind_t;

typedef struct tdm_cql_token_s {
  tdm_cql_tok_kind_t kind; /* what the bytes are */
  tdm_str_t text;          /* the token as written, quotes and sigils included; borrows the lexed text */
  size_t offset;           /* offset of text.ptr from the start of the lexed text */
} tdm_cql_token_t;

/* Invariant: pos <= len. A zeroed lexer is a valid lexer over the empty text. */
typedef struct tdm_cql_lexer_s {
  const char *text; /* first byte of the statement text (borrowed) */
  size_t len;       /* text length in bytes */
  size_t pos;       /* next byte to examine */
} tdm_cql_lexer_t;

/* An identifier as written: unquoted names compare folded to lower case, quoted names exactly (their
 * "" escapes stand for one quote). A zeroed name is "absent"; `""` is a present, empty quoted name. */
typedef struct tdm_cql_name_s {
  tdm_str_t text; /* unquoted: the bytes; quoted: the bytes between the quotes, "" still doubled */
  bool quoted;    /* true when written in double quotes */
} tdm_cql_name_t;

static inline void tdm_cql_lexer_init(tdm_cql_lexer_t *lx, const char *text, size_t len)
{
  lx->text = text;
  lx->len = text ? len : 0;
  lx->pos = 0;
}

/* Fills *tok with the next token and returns its kind. After the last token every call returns
 * TDM_CQL_TOK_EOF with an empty text at the end. An unterminated block comment skips to the end. */
tdm_cql_tok_kind_t tdm_cql_lexer_next(tdm_cql_lexer_t *lx, tdm_cql_token_t *tok);

/* The token tdm_cql_lexer_next would return, without moving the lexer. */
static inline tdm_cql_tok_kind_t tdm_cql_lexer_peek(const tdm_cql_lexer_t *lx, tdm_cql_token_t *tok)
{
  tdm_cql_lexer_t copy = *lx;
  return tdm_cql_lexer_next(&copy, tok);
}

/* Name of a token kind for logs and test failures; never NULL. */
const char *tdm_cql_tok_kind_name(tdm_cql_tok_kind_t kind);

/* True when tok is an unquoted identifier equal to kw ignoring ASCII case; kw is given in lower case. */
bool tdm_cql_token_is_keyword(const tdm_cql_token_t *tok, tdm_str_t kw);
#define TDM_CQL_KW(tok, lit) tdm_cql_token_is_keyword((tok), TDM_STR(lit))

/* True when tok is the punctuation or operator byte c (single-byte tokens only). */
static inline bool tdm_cql_token_is_punct(const tdm_cql_token_t *tok, char c)
{
  return (tok->kind == TDM_CQL_TOK_PUNCT || tok->kind == TDM_CQL_TOK_OP) && tok->text.len == 1 &&
         tok->text.ptr[0] == c;
}

/* The body of a STRING, DOLLAR_STRING or QUOTED_IDENT (quotes removed, escapes still doubled), the name
 * of a BIND (`:` removed; empty for `?`), or the whole text of any other token. */
tdm_str_t tdm_cql_token_body(const tdm_cql_token_t *tok);

/* True for tokens that can name a keyspace, table or column: IDENT and QUOTED_IDENT. */
static inline bool tdm_cql_token_is_name(const tdm_cql_token_t *tok)
{
  return tok->kind == TDM_CQL_TOK_IDENT || tok->kind == TDM_CQL_TOK_QUOTED_IDENT;
}

/* The name a token spells (zeroed, i.e. absent, unless tdm_cql_token_is_name). */
tdm_cql_name_t tdm_cql_name_from_token(const tdm_cql_token_t *tok);

static inline bool tdm_cql_name_is_set(tdm_cql_name_t n) { return n.text.ptr != NULL; }

/* True when the name denotes `canonical`, a name as Cassandra stores it (case kept): unquoted names
 * match after ASCII lower-casing, quoted ones byte for byte after "" -> ". No copies. */
bool tdm_cql_name_eq(tdm_cql_name_t n, tdm_str_t canonical);

/* Length of the canonical form of n (what tdm_cql_name_copy writes, without the NUL). */
size_t tdm_cql_name_len(tdm_cql_name_t n);

/* Writes the canonical form (folded or unescaped) plus a NUL into buf and its length into *out_len.
 * Returns TDM_EOVERFLOW, writing nothing and setting *out_len to the length needed, when
 * cap < length + 1; TDM_EINVAL when n is absent. */
TDM_MUSTCHECK int tdm_cql_name_copy(tdm_cql_name_t n, char *buf, size_t cap, size_t *out_len);

#endif
