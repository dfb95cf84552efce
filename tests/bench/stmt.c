/* Benchmark statements and request bodies. Every body is produced by tandem's own encoders
 * (src/proto/request.c), so the generator exercises the same codec the proxy uses. The value column
 * carries a deterministic, mildly compressible pattern, as real rows do. */
#include <tandem/proto/request.h>

#include "stmt.h"

void tdm_bench_stmt_text(const tdm_bench_opts_t *o, tdm_bench_op_t op, char *buf, size_t cap)
{
  if (op == TDM_BENCH_OP_INSERT) snprintf(buf, cap, "INSERT INTO %s.%s (k, v) VALUES (?, ?)", o->keyspace, o->table);
  else snprintf(buf, cap, "SELECT k, v FROM %s.%s WHERE k = ?", o->keyspace, o->table);
}

bool tdm_bench_stmt_ddl(const tdm_bench_opts_t *o, unsigned i, char *buf, size_t cap)
{
  switch (i) {
  case 0:
    snprintf(buf, cap,
             "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', "
             "'replication_factor': 1}",
             o->keyspace);
    return true;
  case 1:
    snprintf(buf, cap, "CREATE TABLE IF NOT EXISTS %s.%s (k bigint PRIMARY KEY, v blob)", o->keyspace, o->table);
    return true;
  default: return false;
  }
}

int tdm_bench_stmt_startup(tdm_writer_t *w, const tdm_bench_opts_t *o)
{
  tdm_str_t keys[3] = { TDM_STR("CQL_VERSION"), TDM_STR("DRIVER_NAME"), TDM_STR("COMPRESSION") };
  tdm_str_t values[3] = { TDM_STR("3.0.0"), TDM_STR("tdm-bench"), tdm_str_from(tdm_compression_name(o->compression)) };
  return tdm_request_encode_startup(w, keys, values, o->compression == TDM_COMPRESSION_NONE ? 2 : 3);
}

int tdm_bench_stmt_auth(tdm_writer_t *w, const tdm_bench_opts_t *o)
{
  char token[512];
  size_t ul = strlen(o->user), pl = strlen(o->password);
  if (ul + pl + 2 > sizeof(token)) return TDM_EINVAL;
  token[0] = '\0';
  memcpy(token + 1, o->user, ul);
  token[1 + ul] = '\0';
  memcpy(token + 2 + ul, o->password, pl);
  return tdm_request_encode_auth_response(w, token, (int32_t)(ul + pl + 2));
}

int tdm_bench_stmt_query(tdm_writer_t *w, const tdm_bench_opts_t *o, const char *text)
{
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  return tdm_request_encode_query(w, o->protocol, tdm_str_from(text), &p);
}

int tdm_bench_stmt_prepare(tdm_writer_t *w, const tdm_bench_opts_t *o, const char *text)
{
  return tdm_request_encode_prepare(w, o->protocol, tdm_str_from(text), NULL);
}

int tdm_bench_stmt_template(const tdm_bench_opts_t *o, tdm_bench_op_t op, tdm_bytes_t id, tdm_bytes_t metadata_id,
                            tdm_bench_tmpl_t *out)
{
  tdm_writer_t vw, w;
  tdm_writer_init(&vw);
  tdm_writer_init(&w);
  int rc;
  /* values: [bigint key] and, for INSERT, [blob v] */
  tdm_writer_bytes(&vw, "\0\0\0\0\0\0\0\0", 8);
  uint16_t n = 1;
  if (op == TDM_BENCH_OP_INSERT) {
    uint8_t *v = malloc(o->value_size ? o->value_size : 1);
    if (!v) {
      rc = TDM_ENOMEM;
      goto fail;
    }
    for (uint32_t i = 0; i < o->value_size; i++) v[i] = (uint8_t)("tandem-bench-value"[i % 18] ^ (i / 18));
    tdm_writer_bytes(&vw, v, (int32_t)o->value_size);
    free(v);
    n = 2;
  }
  if ((rc = tdm_writer_error(&vw))) goto fail;
  tdm_query_params_t p = { .consistency = o->consistency, .flags = TDM_QFLAG_VALUES, .values_count = n,
                           .values = vw.buf, .values_len = vw.len };
  if (op == TDM_BENCH_OP_SELECT) p.flags |= TDM_QFLAG_SKIP_METADATA; /* as drivers do for prepared reads */
  if (metadata_id.len < 0) metadata_id = (tdm_bytes_t){ NULL, 0 };
  if ((rc = tdm_request_encode_execute(&w, o->protocol, id, metadata_id, &p))) goto fail;
  tdm_execute_t e;
  const char *why = NULL;
  if ((rc = tdm_request_decode_execute(o->protocol, w.buf, w.len, &e, &why))) {
    fprintf(stderr, "tdm-bench: EXECUTE template does not decode: %s\n", why ? why : tdm_strerror(rc));
    goto fail;
  }
  TDM_ASSERT(e.params.values_count == n && e.params.values_offset + 12 <= w.len);
  out->key_off = e.params.values_offset + 4; /* skip the key's [int] length */
  if ((rc = tdm_writer_take(&w, &out->body, &out->len))) goto fail;
  tdm_writer_free(&vw);
  return 0;
fail:
  tdm_writer_free(&vw);
  tdm_writer_free(&w);
  return rc;
}

void tdm_bench_tmpl_free(tdm_bench_tmpl_t *t)
{
  free(t->body);
  *t = (tdm_bench_tmpl_t){ 0 };
}
