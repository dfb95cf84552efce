/* A small CQL statement parser for the mock, on tandem's lexer: the statement kind, its keyspace and
 * table, SELECT columns, INSERT/UPDATE assignments, simple WHERE equalities, the bind markers (counted
 * everywhere, named where the context says which column they set), DDL targets and CREATE TABLE column
 * definitions. It understands what the mock answers and skips the rest; any input is safe. */
#ifndef TDM_MOCK_STMT_H
#define TDM_MOCK_STMT_H

#include <tandem/common.h>
#include <tandem/proto/cql_lexer.h>
#include <tandem/proto/response.h>

#define TDM_MOCK_STMT_MAX_COLS 64
#define TDM_MOCK_STMT_MAX_WHERE 16
#define TDM_MOCK_STMT_MAX_BINDS 128
#define TDM_MOCK_STMT_MAX_PK 8
#define TDM_MOCK_STMT_MAX_PARTS 64

typedef enum tdm_mock_stmt_kind {
  TDM_MOCK_STMT_OTHER = 0, /* anything else: answered Void */
  TDM_MOCK_STMT_SELECT,    /* Rows */
  TDM_MOCK_STMT_INSERT,    /* Void (store write) */
  TDM_MOCK_STMT_UPDATE,    /* Void (store write) */
  TDM_MOCK_STMT_DELETE,    /* Void (store delete) */
  TDM_MOCK_STMT_BATCH,     /* BEGIN ... APPLY BATCH: Void, parts applied one by one */
  TDM_MOCK_STMT_USE,       /* SET_KEYSPACE */
  TDM_MOCK_STMT_DDL,       /* CREATE/ALTER/DROP of a schema object: SCHEMA_CHANGE */
  TDM_MOCK_STMT_TRUNCATE,  /* Void (store truncate) */
  TDM_MOCK_STMT_LIST,      /* LIST ROLES/USERS/PERMISSIONS: empty Rows */
  TDM_MOCK_STMT_MAX        /* sentinel */
} tdm_mock_stmt_kind_t;

typedef enum tdm_mock_term_kind {
  TDM_MOCK_TERM_NONE = 0, /* absent */
  TDM_MOCK_TERM_LITERAL,  /* a constant: tok is a STRING, DOLLAR_STRING, NUMBER or IDENT (true/false/null) */
  TDM_MOCK_TERM_BIND,     /* a bind marker: bind is its index */
  TDM_MOCK_TERM_COMPLEX,  /* an expression the mock does not evaluate */
} tdm_mock_term_kind_t;

typedef struct tdm_mock_term_s {
  tdm_mock_term_kind_t kind; /* what the term is */
  tdm_cql_token_t tok;       /* LITERAL: the constant's token */
  bool negative;             /* LITERAL: a '-' preceded the number */
  uint16_t bind;             /* BIND: marker index in the statement */
} tdm_mock_term_t;

/* What a bind marker stands for, for PREPARED metadata. */
typedef struct tdm_mock_bind_s {
  tdm_cql_name_t column; /* the column it is compared with or assigned to (absent if unknown) */
  const char *special;   /* "[limit]", "[ttl]", "[timestamp]" ..., or NULL */
} tdm_mock_bind_t;

typedef struct tdm_mock_stmt_s {
  tdm_mock_stmt_kind_t kind;                           /* the statement's class */
  tdm_cql_name_t ks;                                   /* explicit keyspace (absent: the session's) */
  tdm_cql_name_t table;                                /* table (USE: absent, ks holds the keyspace) */
  bool star;                                           /* SELECT * */
  bool has_function;                                   /* SELECT list holds a call (count(*) ...) */
  bool json;                                           /* SELECT JSON / INSERT JSON */
  size_t n_cols;                                       /* entries in cols/vals */
  tdm_cql_name_t cols[TDM_MOCK_STMT_MAX_COLS];         /* SELECT items (alias if any), INSERT or SET columns */
  tdm_cql_name_t src_cols[TDM_MOCK_STMT_MAX_COLS];     /* SELECT: the selected column before AS */
  tdm_mock_term_t vals[TDM_MOCK_STMT_MAX_COLS];        /* INSERT VALUES / UPDATE SET values */
  size_t n_where;                                      /* WHERE col = term conditions kept */
  tdm_cql_name_t where_cols[TDM_MOCK_STMT_MAX_WHERE];  /* their columns */
  tdm_mock_term_t where_vals[TDM_MOCK_STMT_MAX_WHERE]; /* their values */
  bool where_other;                                    /* WHERE had conditions other than equalities */
  uint16_t n_binds;                                    /* bind markers in the whole text */
  tdm_mock_bind_t binds[TDM_MOCK_STMT_MAX_BINDS];      /* the first TDM_MOCK_STMT_MAX_BINDS of them */
  /* DDL */
  tdm_response_target_t ddl_target;                    /* KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE */
  const char *ddl_change;                              /* "CREATED", "UPDATED", "DROPPED" */
  tdm_cql_name_t ddl_name;                             /* object name (keyspace name for KEYSPACE) */
  bool ddl_create_table;                               /* CREATE TABLE with column definitions below */
  size_t n_defs;                                       /* column definitions */
  tdm_cql_name_t def_names[TDM_MOCK_STMT_MAX_COLS];    /* their names */
  tdm_str_t def_types[TDM_MOCK_STMT_MAX_COLS];         /* their CQL type text */
  size_t n_pk;                                         /* primary key columns (partition then clustering) */
  tdm_cql_name_t pk[TDM_MOCK_STMT_MAX_PK];             /* their names */
  /* BEGIN BATCH: the spans of the INSERT/UPDATE/DELETE parts inside */
  size_t n_parts;                                      /* parts found */
  size_t part_off[TDM_MOCK_STMT_MAX_PARTS];            /* offset of each part in the text */
  size_t part_len[TDM_MOCK_STMT_MAX_PARTS];            /* its length */
} tdm_mock_stmt_t;

/* Parses text[0..len). Never fails: unknown text is TDM_MOCK_STMT_OTHER. Names and tokens borrow text. */
void tdm_mock_stmt_parse(const char *text, size_t len, tdm_mock_stmt_t *out);

const char *tdm_mock_stmt_kind_name(tdm_mock_stmt_kind_t kind);

/* Copies a name's canonical form into buf (lower-cased unless quoted); "" when absent or too long. */
void tdm_mock_name_cstr(tdm_cql_name_t name, char *buf, size_t cap);

/* The literal text of a term (string body with '' unescaped into buf, or the token text, with a leading
 * '-' for negative numbers); false for non-literals or when buf is too small. */
bool tdm_mock_term_text(const tdm_mock_term_t *term, char *buf, size_t cap, tdm_str_t *out);

#endif
