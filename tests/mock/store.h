/* The mock's optional in-memory tables, so writes can be read back: INSERT/UPDATE upsert a row by its
 * primary key, DELETE removes matching rows, SELECT scans with equality filters. Tables are created by
 * CREATE TABLE (typed columns, declared key) or on first write (text columns, key = first column
 * written). Values are kept as serialized bytes; linear scans, sized for tests rather than benchmarks. */
#ifndef TDM_MOCK_STORE_H
#define TDM_MOCK_STORE_H

#include <tandem/common.h>
#include <tandem/proto/reader.h>

#include "values.h"

#define TDM_MOCK_STORE_NAME_MAX 64
#define TDM_MOCK_STORE_MAX_PK 8

typedef struct tdm_mock_cell_s {
  uint8_t *p;  /* value bytes (heap), NULL for null or empty */
  int32_t len; /* byte count, -1 for null */
} tdm_mock_cell_t;

typedef struct tdm_mock_row_s {
  tdm_mock_cell_t *cells; /* n cells, indexed like the table's columns */
  size_t n;               /* cells allocated (may lag behind columns added later: missing = null) */
} tdm_mock_row_t;

typedef struct tdm_mock_tcol_s {
  char *name;           /* column name, canonical (heap) */
  tdm_mock_type_t type; /* its type (text when undeclared) */
} tdm_mock_tcol_t;

typedef struct tdm_mock_table_s {
  char ks[TDM_MOCK_STORE_NAME_MAX];     /* keyspace, canonical */
  char name[TDM_MOCK_STORE_NAME_MAX];   /* table, canonical */
  bool declared;                        /* created by CREATE TABLE (types and key are real) */
  tdm_mock_tcol_t *cols;                /* columns in declaration / first-write order */
  size_t n_cols;                        /* columns used */
  size_t cap_cols;                      /* columns allocated */
  size_t pk[TDM_MOCK_STORE_MAX_PK];     /* column indexes of the primary key */
  size_t n_pk;                          /* 0 until known */
  tdm_mock_row_t *rows;                 /* rows in insertion order */
  size_t n_rows;                        /* rows used */
  size_t cap_rows;                      /* rows allocated */
} tdm_mock_table_t;

typedef struct tdm_mock_store_s {
  tdm_mock_table_t **tables; /* heap tables */
  size_t n;                  /* tables used */
  size_t cap;                /* tables allocated */
} tdm_mock_store_t;

/* An equality filter on one column. */
typedef struct tdm_mock_cond_s {
  size_t col;        /* column index */
  tdm_bytes_t value; /* bytes to compare (len -1: null) */
} tdm_mock_cond_t;

/* Finds a table; creates an empty undeclared one when create is set. NULL if absent (or no memory). */
tdm_mock_table_t *tdm_mock_store_get(tdm_mock_store_t *s, const char *ks, const char *name, bool create);
/* CREATE TABLE: replaces any table of that name with a declared, empty one. */
tdm_mock_table_t *tdm_mock_store_declare(tdm_mock_store_t *s, const char *ks, const char *name);
void tdm_mock_store_drop_table(tdm_mock_store_t *s, const char *ks, const char *name);
void tdm_mock_store_drop_keyspace(tdm_mock_store_t *s, const char *ks);
void tdm_mock_store_clear(tdm_mock_store_t *s);
size_t tdm_mock_store_rows(const tdm_mock_store_t *s); /* rows in all tables */

/* Column index by canonical name, or -1; with create, adds a column of type *type (text when NULL). */
int tdm_mock_table_col(tdm_mock_table_t *t, const char *name, bool create, const tdm_mock_type_t *type);
/* Sets the primary key (column indexes) if none is known yet. */
void tdm_mock_table_set_pk(tdm_mock_table_t *t, const size_t *cols, size_t n);
/* Upserts: the row whose key columns equal the given key values gets the values; a new row otherwise.
 * Every key column must be among cols. TDM_EINVAL if not, TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_mock_table_upsert(tdm_mock_table_t *t, const size_t *cols, const tdm_bytes_t *vals, size_t n);
bool tdm_mock_table_matches(const tdm_mock_table_t *t, const tdm_mock_row_t *row, const tdm_mock_cond_t *conds,
                            size_t n);
/* Cell of a row (null when the row predates the column). */
tdm_mock_cell_t tdm_mock_row_cell(const tdm_mock_row_t *row, size_t col);
size_t tdm_mock_table_delete(tdm_mock_table_t *t, const tdm_mock_cond_t *conds, size_t n);
void tdm_mock_table_truncate(tdm_mock_table_t *t);

#endif
