/* PREPARE for the mock: an entry keyed by md5(query text) with the parsed statement, bind metadata
 * (names from the column each marker sets or compares, types from the table when known, partition key
 * indexes) and result metadata (the SELECT projection, frozen so EXECUTE answers what PREPARED said),
 * a v5 result_metadata_id digesting those columns, then the PREPARED answer. */
#include "exec.h"
#include "exec_internal.h"
#include "session.h"
#include "systables.h"

static tdm_mock_type_t column_type(tdm_mock_t *mock, const char *ks, const char *table, const char *col)
{
  tdm_mock_systable_t sys = tdm_mock_systable_find(ks, table);
  if (sys != TDM_MOCK_SYS_NONE) {
    size_t n;
    const tdm_mock_col_t *cols = tdm_mock_systable_columns(sys, &n);
    int i = tdm_mock_systable_col(sys, col);
    if (i >= 0) return cols[i].type;
  }
  tdm_mock_table_t *t = tdm_mock_store_get(&mock->store, ks, table, false);
  int i = t ? tdm_mock_table_col(t, col, false, NULL) : -1;
  if (i >= 0) return t->cols[i].type;
  return tdm_mock_type_scalar(TDM_MOCK_T_VARCHAR);
}

/* Fills an entry's bind metadata and partition key indexes. */
static int prepare_binds(tdm_mock_t *mock, tdm_mock_prep_t *e, const char *ks, const char *table)
{
  const tdm_mock_stmt_t *st = e->stmt;
  e->n_binds = TDM_MIN(st->n_binds, (uint16_t)TDM_MOCK_STMT_MAX_BINDS);
  e->binds = calloc(e->n_binds ? e->n_binds : 1, sizeof(*e->binds));
  if (!e->binds) return TDM_ENOMEM;
  char name[64];
  for (size_t i = 0; i < e->n_binds; i++) {
    const tdm_mock_bind_t *b = &st->binds[i];
    tdm_mock_name_cstr(b->column, name, sizeof(name));
    if (b->special) snprintf(name, sizeof(name), "%s", b->special);
    else if (!name[0]) snprintf(name, sizeof(name), "arg%zu", i);
    if (b->special) e->binds[i].type = tdm_mock_type_scalar(strcmp(b->special, "[timestamp]") == 0 ? TDM_MOCK_T_BIGINT
                                                                                                   : TDM_MOCK_T_INT);
    else e->binds[i].type = column_type(mock, ks, table, name);
    e->binds[i].name.ptr = tdm_mock_prep_strdup(tdm_str_from(name));
    if (!e->binds[i].name.ptr) return TDM_ENOMEM;
    e->binds[i].name.len = strlen(name);
  }
  /* partition key: every key column must be bound, else no routing information */
  size_t pkc = 0;
  const char *pk_names[TDM_MOCK_PREPARED_MAX_PK];
  tdm_mock_table_t *t = tdm_mock_store_get(&mock->store, ks, table, false);
  tdm_mock_systable_t sys = tdm_mock_systable_find(ks, table);
  if (sys != TDM_MOCK_SYS_NONE) {
    pk_names[pkc++] = sys == TDM_MOCK_SYS_LOCAL ? "key" : "peer";
  } else if (t && t->declared) {
    for (size_t k = 0; k < t->n_pk && pkc < TDM_MOCK_PREPARED_MAX_PK; k++) pk_names[pkc++] = t->cols[t->pk[k]].name;
  }
  for (size_t k = 0; k < pkc; k++) {
    size_t i = 0;
    while (i < e->n_binds && strcmp(e->binds[i].name.ptr, pk_names[k]) != 0) i++;
    if (i == e->n_binds) return 0;
    e->pk[k] = (uint16_t)i;
  }
  e->n_pk = pkc;
  return 0;
}

static void prepare_fail(tdm_mock_conn_t *c, int16_t stream, tdm_mock_prep_t *e, int rc)
{
  tdm_mock_prep_free(e);
  if (rc != -1) tdm_mock_session_error(c, stream, TDM_ERR_SERVER_ERROR, "mock: %s", tdm_strerror(rc));
}

void tdm_mock_exec_prepare(tdm_mock_conn_t *c, int16_t stream, const tdm_prepare_t *p)
{
  tdm_mock_t *mock = c->mock;
  tdm_mock_prep_t *e = calloc(1, sizeof(*e));
  tdm_mock_ctx_t *x = malloc(sizeof(*x));
  tdm_mock_proj_t *proj = malloc(sizeof(*proj));
  tdm_mock_col_t *tcols = malloc(sizeof(*tcols) * 1024);
  int rc = TDM_ENOMEM;
  char ks[64], table[64];
  if (!e || !x || !proj || !tcols || !(e->text = tdm_mock_prep_strdup(p->query)) ||
      !(e->stmt = malloc(sizeof(*e->stmt))))
    goto fail;
  e->text_len = p->query.len;
  tdm_mock_md5(e->text, e->text_len, e->id);
  tdm_mock_stmt_parse(e->text, e->text_len, e->stmt);
  tdm__mock_exec_ctx_init(x, c, stream, (p->flags & TDM_PFLAG_WITH_KEYSPACE) ? p->keyspace : (tdm_str_t){ 0 });
  snprintf(e->keyspace, sizeof(e->keyspace), "%s", x->ks);
  tdm__mock_exec_resolve(x, e->stmt, ks, table);
  snprintf(e->result_ks, sizeof(e->result_ks), "%s", ks);
  snprintf(e->result_table, sizeof(e->result_table), "%s", table);
  if ((rc = prepare_binds(mock, e, ks, table))) goto fail;
  if (e->stmt->kind == TDM_MOCK_STMT_SELECT) {
    tdm_mock_systable_t sys = tdm_mock_systable_find(ks, table);
    const tdm_mock_col_t *cols = NULL;
    size_t ncols = 0;
    bool strict = false;
    tdm_mock_table_t *t = tdm_mock_store_get(&mock->store, ks, table, false);
    if (sys != TDM_MOCK_SYS_NONE) {
      cols = tdm_mock_systable_columns(sys, &ncols);
      strict = true;
    } else if (t) {
      ncols = tdm__mock_exec_table_cols(t, tcols, 1024);
      cols = tcols;
      strict = t->declared;
    }
    if (tdm__mock_exec_project(x, e->stmt, cols, ncols, strict, proj, ks, table)) {
      rc = -1;
      goto fail;
    }
    e->n_result = proj->n;
    e->result = calloc(proj->n ? proj->n : 1, sizeof(*e->result));
    if (!e->result) goto fail;
    for (size_t i = 0; i < proj->n; i++) {
      e->result[i].type = proj->cols[i].type;
      e->result[i].name.ptr = tdm_mock_prep_strdup(proj->cols[i].name);
      e->result[i].name.len = proj->cols[i].name.len;
      if (!e->result[i].name.ptr) goto fail;
    }
  }
  /* result_metadata_id: a digest of the result columns, so it changes exactly when they do */
  tdm_writer_t md;
  tdm_writer_init(&md);
  for (size_t i = 0; i < e->n_result; i++) {
    tdm_writer_string(&md, e->result[i].name);
    tdm_writer_raw(&md, e->result[i].type.opt, e->result[i].type.opt_len);
  }
  tdm_mock_md5(md.buf ? (const void *)md.buf : "", md.len, e->metadata_id);
  tdm_writer_free(&md);

  /* PREPARED */
  tdm_response_column_t *vcols = calloc(e->n_binds + e->n_result + 1, sizeof(*vcols));
  if (!vcols) goto fail;
  tdm_response_column_t *rcols = vcols + e->n_binds;
  for (size_t i = 0; i < e->n_binds; i++) {
    vcols[i].name = e->binds[i].name;
    (void)tdm__mock_exec_cqltype(&e->binds[i].type, &vcols[i].type);
  }
  for (size_t i = 0; i < e->n_result; i++) {
    rcols[i].name = e->result[i].name;
    (void)tdm__mock_exec_cqltype(&e->result[i].type, &rcols[i].type);
  }
  tdm_response_prepared_t pr = {
    .id = { e->id, 16 },
    .result_metadata_id = { e->metadata_id, 16 },
    .variables = { .flags = e->n_binds ? TDM_RFLAG_GLOBAL_TABLES_SPEC : 0, .columns_count = (int32_t)e->n_binds,
                   .pk_count = (uint32_t)e->n_pk, .pk_indices = e->pk, .global_keyspace = tdm_str_from(e->result_ks),
                   .global_table = tdm_str_from(e->result_table), .columns = vcols },
    .result = { .flags = e->n_result ? TDM_RFLAG_GLOBAL_TABLES_SPEC : TDM_RFLAG_NO_METADATA,
                .columns_count = (int32_t)e->n_result, .global_keyspace = tdm_str_from(e->result_ks),
                .global_table = tdm_str_from(e->result_table), .columns = rcols },
  };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_encode_prepared(&w, c->version, &pr);
  free(vcols);
  if (!tdm_mock_prepared_find(&mock->texts, e->id, 16)) { /* remembered for counting, past any cache clear */
    tdm_mock_prep_t *t = calloc(1, sizeof(*t));
    if (t && (t->text = tdm_mock_prep_strdup((tdm_str_t){ e->text, e->text_len }))) {
      memcpy(t->id, e->id, 16);
      t->text_len = e->text_len;
      tdm_mock_prepared_put(&mock->texts, t);
    } else {
      free(t);
    }
  }
  tdm_mock_prepared_put(&c->node->prepared, e);
  tdm__mock_exec_send(c, stream, TDM_OP_RESULT, &w);
  free(x);
  free(proj);
  free(tcols);
  return;
fail:
  prepare_fail(c, stream, e, rc);
  free(x);
  free(proj);
  free(tcols);
}
