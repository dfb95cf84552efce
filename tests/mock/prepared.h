/* A node's prepared statements, keyed by id (md5 of the query text, as the spec of the mock says): the
 * text and keyspace it was prepared with, its parsed form, and the bind and result metadata sent in
 * PREPARED, so EXECUTE answers exactly what PREPARE promised. Per node, like Cassandra's cache, so a
 * test can clear one node's cache and provoke a real UNPREPARED. */
#ifndef TDM_MOCK_PREPARED_H
#define TDM_MOCK_PREPARED_H

#include <tandem/common.h>

#include "stmt.h"
#include "values.h"

#define TDM_MOCK_PREPARED_BUCKETS 256
#define TDM_MOCK_PREPARED_MAX_PK 8

typedef struct tdm_mock_prep_s {
  struct tdm_mock_prep_s *next;           /* bucket chain */
  uint8_t id[16];                         /* prepared id */
  uint8_t metadata_id[16];                /* v5 result_metadata_id: md5 of the result metadata */
  char *text;                             /* query text (heap, NUL-terminated) */
  size_t text_len;                        /* its length */
  char keyspace[64];                      /* keyspace in force at PREPARE ("" if none) */
  tdm_mock_stmt_t *stmt;                  /* parsed text (heap; borrows text) */
  tdm_mock_col_t *binds;                  /* bind marker metadata (names are heap strings) */
  size_t n_binds;                         /* markers */
  uint16_t pk[TDM_MOCK_PREPARED_MAX_PK];  /* bind indexes of the partition key (v4+ metadata) */
  size_t n_pk;                            /* 0 when unknown */
  tdm_mock_col_t *result;                 /* result columns (names are heap strings) */
  size_t n_result;                        /* 0: no result metadata (not a SELECT) */
  char result_ks[64];                     /* keyspace of the result/bind table spec */
  char result_table[64];                  /* table of the result/bind table spec */
  uint64_t executions;                    /* EXECUTEs answered with this entry */
} tdm_mock_prep_t;

typedef struct tdm_mock_prepared_s {
  tdm_mock_prep_t *buckets[TDM_MOCK_PREPARED_BUCKETS]; /* chains by id[0] */
  size_t count;                                         /* entries */
} tdm_mock_prepared_t;

tdm_mock_prep_t *tdm_mock_prepared_find(const tdm_mock_prepared_t *pc, const uint8_t *id, size_t id_len);
/* Takes ownership of e, replacing an entry with the same id. */
void tdm_mock_prepared_put(tdm_mock_prepared_t *pc, tdm_mock_prep_t *e);
void tdm_mock_prepared_clear(tdm_mock_prepared_t *pc);
/* Frees one entry that is not (or no longer) in a cache. */
void tdm_mock_prep_free(tdm_mock_prep_t *e);
/* Copies a name into a heap string for an entry's metadata; NULL on no memory. */
char *tdm_mock_prep_strdup(tdm_str_t s);

#endif
