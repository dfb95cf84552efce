/* The benchmark's CQL: statement texts, request bodies encoded with tandem's request encoders
 * (STARTUP, AUTH_RESPONSE, QUERY, PREPARE), and EXECUTE templates: a body encoded once per prepared
 * statement, in which each request only overwrites the 8-byte key. */
#ifndef TDM_BENCH_STMT_H
#define TDM_BENCH_STMT_H

#include <tandem/common.h>
#include <tandem/proto/writer.h>
#include <tandem/proto/reader.h>

#include "opts.h"

#define TDM_BENCH_STMT_TEXT 512

typedef enum tdm_bench_op {
  TDM_BENCH_OP_INSERT = 0, /* INSERT INTO ks.t (k, v) VALUES (?, ?) */
  TDM_BENCH_OP_SELECT,     /* SELECT k, v FROM ks.t WHERE k = ? */
  TDM_BENCH_OPS            /* sentinel */
} tdm_bench_op_t;

/* An EXECUTE body ready to copy: the bigint key's 8 bytes sit at key_off. */
typedef struct tdm_bench_tmpl_s {
  uint8_t *body;  /* heap, len bytes; NULL until the statement is prepared */
  size_t len;     /* body length */
  size_t key_off; /* offset of the key's bytes (after its [int] length) */
} tdm_bench_tmpl_t;

/* Statement text of op for o's keyspace and table. */
void tdm_bench_stmt_text(const tdm_bench_opts_t *o, tdm_bench_op_t op, char *buf, size_t cap);
/* The DDL of the setup phase: i = 0 keyspace, 1 table; false past the last. */
bool tdm_bench_stmt_ddl(const tdm_bench_opts_t *o, unsigned i, char *buf, size_t cap);

int tdm_bench_stmt_startup(tdm_writer_t *w, const tdm_bench_opts_t *o);
int tdm_bench_stmt_auth(tdm_writer_t *w, const tdm_bench_opts_t *o);
int tdm_bench_stmt_query(tdm_writer_t *w, const tdm_bench_opts_t *o, const char *text);
int tdm_bench_stmt_prepare(tdm_writer_t *w, const tdm_bench_opts_t *o, const char *text);

/* Builds op's EXECUTE template from a PREPARED body's ids (metadata_id: v5, may be len -1). The key
 * offset is found by decoding the template with tandem's EXECUTE decoder, which also proves the body
 * well formed. */
TDM_MUSTCHECK int tdm_bench_stmt_template(const tdm_bench_opts_t *o, tdm_bench_op_t op, tdm_bytes_t id,
                                          tdm_bytes_t metadata_id, tdm_bench_tmpl_t *out);
void tdm_bench_tmpl_free(tdm_bench_tmpl_t *t);

/* Writes key big-endian into a copy of the template's body. */
static inline void tdm_bench_tmpl_put_key(const tdm_bench_tmpl_t *t, uint8_t *body, uint64_t key)
{
  uint8_t *p = body + t->key_off;
  for (int i = 7; i >= 0; i--, key >>= 8) p[i] = (uint8_t)key;
}

#endif
