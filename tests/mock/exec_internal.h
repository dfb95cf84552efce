/* Internals shared by exec.c (statements) and prepare.c (PREPARE): the execution context of one
 * statement, projections of SELECT columns, and the helpers both use. Included by those two files only. */
#ifndef TDM_MOCK_EXEC_INTERNAL_H
#define TDM_MOCK_EXEC_INTERNAL_H

#include <tandem/proto/cqltype.h>
#include <tandem/proto/response.h>

#include "conn.h"
#include "stmt.h"
#include "store.h"
#include "values.h"

#define TDM_MOCK_EXEC_MAX_VALUES TDM_MOCK_STMT_MAX_BINDS
#define TDM_MOCK_EXEC_MAX_PROJ (TDM_MOCK_STMT_MAX_COLS + 32)

typedef struct tdm_mock_ctx_s {
  tdm_mock_conn_t *c;               /* connection answered */
  int16_t stream;                   /* request stream */
  char ks[64];                      /* keyspace for unqualified names ("" if none) */
  tdm_bytes_t values[TDM_MOCK_EXEC_MAX_VALUES];   /* bound values by marker index */
  size_t n_values;                  /* bound values */
  uint16_t bind_base;               /* first marker of the statement being run (BEGIN BATCH parts) */
  bool skip_metadata;               /* EXECUTE asked for Rows without metadata */
  const tdm_mock_prep_t *prep;      /* EXECUTE: the prepared entry */
  tdm_bytes_t client_metadata_id;   /* EXECUTE v5: the client's result_metadata_id */
  tdm_writer_t arena;               /* literal values, fixed buffer */
  uint8_t arena_buf[16384];         /* its bytes */
} tdm_mock_ctx_t;

/* A projection: output columns and where each comes from. */
typedef struct tdm_mock_proj_s {
  size_t n;                       /* columns */
  tdm_mock_col_t cols[TDM_MOCK_EXEC_MAX_PROJ];  /* output name and type */
  int src[TDM_MOCK_EXEC_MAX_PROJ];              /* source column index, -1 for null */
  char names[TDM_MOCK_EXEC_MAX_PROJ][64];       /* canonical output names the cols may point at */
} tdm_mock_proj_t;

/* Resets x for one statement on c / stream; ks is the per-request keyspace (empty: the session's). */
void tdm__mock_exec_ctx_init(tdm_mock_ctx_t *x, tdm_mock_conn_t *c, int16_t stream, tdm_str_t ks);
/* Canonical keyspace (explicit or the context's) and table of st into 64-byte buffers. */
void tdm__mock_exec_resolve(const tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st, char *ks, char *table);
/* Output columns of a SELECT over cols[0..n) (NULL: unknown table); 0, or -1 with INVALID sent. */
int tdm__mock_exec_project(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st, const tdm_mock_col_t *cols, size_t n,
                           bool strict, tdm_mock_proj_t *p, const char *ks, const char *table);
/* A store table's columns as metadata columns (names borrow the table). */
size_t tdm__mock_exec_table_cols(const tdm_mock_table_t *t, tdm_mock_col_t *out, size_t cap);
/* Sends w's body as opcode on stream and frees w; closes the connection if that fails. */
void tdm__mock_exec_send(tdm_mock_conn_t *c, int16_t stream, uint8_t opcode, tdm_writer_t *w);
/* A type's [option] as a tdm_cqltype_t view. */
int tdm__mock_exec_cqltype(const tdm_mock_type_t *t, tdm_cqltype_t *out);

#endif
