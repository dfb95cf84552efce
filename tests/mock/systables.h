/* system.local, system.peers and system.peers_v2 as Cassandra 5.0 defines them (the columns drivers
 * read, with their real types and SELECT * order), filled from the mock cluster: local describes the
 * node the client is connected to, peers the other nodes of the process. */
#ifndef TDM_MOCK_SYSTABLES_H
#define TDM_MOCK_SYSTABLES_H

#include <tandem/proto/response.h>

#include "conn.h"
#include "stmt.h"
#include "store.h"
#include "values.h"

typedef enum tdm_mock_systable {
  TDM_MOCK_SYS_NONE = 0, /* not a system table the mock answers */
  TDM_MOCK_SYS_LOCAL,    /* system.local */
  TDM_MOCK_SYS_PEERS,    /* system.peers */
  TDM_MOCK_SYS_PEERS_V2, /* system.peers_v2 */
  TDM_MOCK_SYS_MAX       /* sentinel */
} tdm_mock_systable_t;

/* Which system table keyspace.table names (ks already resolved, canonical). */
tdm_mock_systable_t tdm_mock_systable_find(const char *ks, const char *table);
/* The table's columns in SELECT * order. */
const tdm_mock_col_t *tdm_mock_systable_columns(tdm_mock_systable_t t, size_t *n);
/* Index of a column by canonical name, or -1. */
int tdm_mock_systable_col(tdm_mock_systable_t t, const char *name);
/* Index of the partition key column (key / peer). */
size_t tdm_mock_systable_pk(tdm_mock_systable_t t);
/* Appends the rows the client sees (cells of columns idx[0..n), in that order), keeping rows whose
 * cells equal every condition (column indexes of the table). Returns rows written. */
int32_t tdm_mock_systable_rows(tdm_mock_conn_t *c, tdm_mock_systable_t t, const size_t *idx, size_t n,
                               const tdm_mock_cond_t *conds, size_t n_conds, tdm_response_rows_builder_t *b);

#endif
