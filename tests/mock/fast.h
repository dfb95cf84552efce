/* --fast: answers for the benchmark path from pre-encoded frames, one per (version, compression,
 * answer kind), so a QUERY/EXECUTE/BATCH costs a lookup, a memcpy and a stream-id patch. Only plain
 * answers are cached (Void, an empty Rows with one text column, metadata-less Rows of n columns);
 * everything else takes the normal path. */
#ifndef TDM_MOCK_FAST_H
#define TDM_MOCK_FAST_H

#include "conn.h"

typedef enum tdm_mock_fast_kind {
  TDM_MOCK_FAST_VOID = 0,  /* RESULT Void */
  TDM_MOCK_FAST_ROWS,      /* RESULT Rows: one text column "key", no rows */
  TDM_MOCK_FAST_NOMETA,    /* RESULT Rows: NO_METADATA with ncols columns, no rows */
  TDM_MOCK_FAST_KINDS      /* sentinel */
} tdm_mock_fast_kind_t;

#define TDM_MOCK_FAST_MAX_COLS 32

/* Answers on stream from the cache (built on first use). False when this answer is not cacheable or
 * memory ran out: the caller then answers the normal way. */
bool tdm_mock_fast_reply(tdm_mock_conn_t *c, int16_t stream, tdm_mock_fast_kind_t kind, size_t ncols);
void tdm_mock_fast_free(tdm_mock_t *mock);

#endif
