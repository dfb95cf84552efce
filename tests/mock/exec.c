/* Default answers to QUERY, PREPARE, EXECUTE and BATCH.
 *
 *   QUERY text | EXECUTE entry -> tdm_mock_stmt_t -> run(): SELECT -> system table | store | empty Rows
 *                                                        INSERT/UPDATE/DELETE/BEGIN BATCH -> store, Void
 *                                                        USE -> SET_KEYSPACE; DDL -> SCHEMA_CHANGE + event
 *   PREPARE -> entry (id = md5(text), bind + result metadata) -> PREPARED
 *
 * Values bound to markers are looked up by marker index; literals are serialized with the column's
 * type into a fixed arena (no reallocation, so the bytes stay put while a statement runs). */
#include <tandem/proto/cqltype.h>
#include <tandem/proto/response.h>

#include "exec.h"
#include "exec_internal.h"
#include "fast.h"
#include "session.h"
#include "stmt.h"
#include "store.h"
#include "systables.h"
#include "values.h"


void tdm__mock_exec_ctx_init(tdm_mock_ctx_t *x, tdm_mock_conn_t *c, int16_t stream, tdm_str_t ks)
{
  memset(x, 0, offsetof(tdm_mock_ctx_t, arena));
  x->c = c;
  x->stream = stream;
  if (ks.len) snprintf(x->ks, sizeof(x->ks), "%.*s", (int)TDM_MIN(ks.len, sizeof(x->ks) - 1), ks.ptr);
  else snprintf(x->ks, sizeof(x->ks), "%s", c->keyspace);
  tdm_writer_init_fixed(&x->arena, x->arena_buf, sizeof(x->arena_buf));
}

static void bind_values(tdm_mock_ctx_t *x, const uint8_t *values, size_t len, uint16_t count, bool named)
{
  tdm_values_iter_t it;
  tdm_str_t name;
  tdm_bytes_t v;
  tdm_values_iter_init(&it, values, len, count, named);
  while (x->n_values < TDM_MOCK_EXEC_MAX_VALUES && tdm_values_next(&it, &name, &v) > 0) x->values[x->n_values++] = v;
}

void tdm__mock_exec_send(tdm_mock_conn_t *c, int16_t stream, uint8_t opcode, tdm_writer_t *w)
{
  int rc = tdm_writer_error(w);
  if (!rc) rc = tdm_mock_conn_send(c, stream, opcode, w->buf, w->len);
  tdm_writer_free(w);
  if (rc && rc != TDM_ECLOSED) tdm_mock_conn_close(c, false);
}

void tdm_mock_exec_void(tdm_mock_conn_t *c, int16_t stream)
{
  if (c->mock->opts.fast && tdm_mock_fast_reply(c, stream, TDM_MOCK_FAST_VOID, 0)) return;
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_encode_void(&w);
  tdm__mock_exec_send(c, stream, TDM_OP_RESULT, &w);
}

void tdm_mock_exec_unprepared(tdm_mock_conn_t *c, int16_t stream, const uint8_t *id, size_t id_len)
{
  char hex[2 * 64 + 1];
  tdm_mock_hex(id, TDM_MIN(id_len, (size_t)64), hex, sizeof(hex));
  char msg[512];
  snprintf(msg, sizeof(msg),
           "Prepared query with ID %s not found (either the query was not prepared on this host (maybe the host has "
           "been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)",
           hex);
  tdm_response_error_t e = { .code = TDM_ERR_UNPREPARED, .message = tdm_str_from(msg),
                             .unprepared_id = { id, (int32_t)id_len } };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_encode_error(&w, c->version, &e);
  tdm__mock_exec_send(c, stream, TDM_OP_ERROR, &w);
}

/* ---- values ---- */

/* The bytes a term stands for, serialized for type t (len -1 for null / unknown). */
static tdm_bytes_t term_value(tdm_mock_ctx_t *x, const tdm_mock_term_t *term, const tdm_mock_type_t *t)
{
  if (term->kind == TDM_MOCK_TERM_BIND) {
    size_t i = (size_t)x->bind_base + term->bind;
    if (i < x->n_values && x->values[i].len >= -1) return x->values[i];
    return (tdm_bytes_t){ NULL, -1 };
  }
  if (term->kind != TDM_MOCK_TERM_LITERAL || TDM_CQL_KW(&term->tok, "null")) return (tdm_bytes_t){ NULL, -1 };
  char buf[4096];
  tdm_str_t text;
  if (!tdm_mock_term_text(term, buf, sizeof(buf), &text)) return (tdm_bytes_t){ NULL, -1 };
  tdm_writer_t *w = &x->arena;
  size_t start = w->len;
  if (tdm_mock_value_from_text(t, text, w)) {
    w->len = start; /* not of that type: keep the text's bytes */
    tdm_writer_raw(w, text.ptr, text.len);
  }
  if (tdm_writer_error(w)) return (tdm_bytes_t){ NULL, -1 };
  return (tdm_bytes_t){ w->buf + start, (int32_t)(w->len - start) };
}

void tdm__mock_exec_resolve(const tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st, char *ks, char *table)
{
  tdm_mock_name_cstr(st->ks, ks, 64);
  if (!ks[0]) snprintf(ks, 64, "%s", x->ks);
  tdm_mock_name_cstr(st->table, table, 64);
}

/* ---- Rows ---- */

int tdm__mock_exec_cqltype(const tdm_mock_type_t *t, tdm_cqltype_t *out)
{
  return tdm_cqltype_from_raw(t->opt, t->opt_len, out);
}

/* Starts a Rows answer with the projection's metadata (or none, as the request allows). */
static void rows_begin(tdm_mock_ctx_t *x, tdm_response_rows_builder_t *b, tdm_writer_t *w, const char *ks,
                       const char *table, const tdm_mock_proj_t *p)
{
  tdm_response_rows_options_t o = { .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .keyspace = tdm_str_from(ks),
                                    .table = tdm_str_from(table) };
  bool meta = !x->skip_metadata;
  if (x->prep && tdm_proto_has_metadata_id(x->c->version) &&
      (x->client_metadata_id.len != 16 || memcmp(x->client_metadata_id.ptr, x->prep->metadata_id, 16) != 0)) {
    o.flags |= TDM_RFLAG_METADATA_CHANGED; /* the client's metadata is stale: send ours in full */
    o.new_metadata_id = (tdm_bytes_t){ x->prep->metadata_id, 16 };
    meta = true;
  }
  if (!meta) {
    o.flags = TDM_RFLAG_NO_METADATA;
    o.columns_count = (int32_t)p->n;
  }
  tdm_writer_init(w);
  tdm_response_rows_begin(b, w, x->c->version, &o);
  if (!meta) return;
  for (size_t i = 0; i < p->n; i++) {
    tdm_response_column_t col = { .name = p->cols[i].name };
    if (tdm__mock_exec_cqltype(&p->cols[i].type, &col.type) == 0) tdm_response_rows_column(b, &col);
  }
}

static void rows_send(tdm_mock_ctx_t *x, tdm_response_rows_builder_t *b, tdm_writer_t *w)
{
  int rc = tdm_response_rows_finish(b);
  if (rc) {
    tdm_writer_free(w);
    tdm_mock_session_error(x->c, x->stream, TDM_ERR_SERVER_ERROR, "mock: cannot encode rows (%s)", tdm_strerror(rc));
    return;
  }
  tdm__mock_exec_send(x->c, x->stream, TDM_OP_RESULT, w);
}

void tdm_mock_exec_rule_rows(tdm_mock_conn_t *c, int16_t stream, const tdm_mock_rule_t *rule)
{
  tdm_response_rows_builder_t b;
  tdm_writer_t w;
  tdm_response_rows_options_t o = { .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .keyspace = tdm_str_from(rule->rows_ks),
                                    .table = tdm_str_from(rule->rows_table) };
  tdm_writer_init(&w);
  tdm_response_rows_begin(&b, &w, c->version, &o);
  for (size_t i = 0; i < rule->n_cols; i++) {
    tdm_response_column_t col = { .name = rule->cols[i].name };
    if (tdm__mock_exec_cqltype(&rule->cols[i].type, &col.type) == 0) tdm_response_rows_column(&b, &col);
  }
  tdm_reader_t r;
  tdm_bytes_t cell;
  tdm_reader_init(&r, rule->cells.buf, rule->cells.len);
  while (tdm_reader_left(&r) > 0 && tdm_reader_bytes(&r, &cell) == 0) tdm_response_rows_cell(&b, cell.ptr, cell.len);
  tdm_mock_ctx_t x = { .c = c, .stream = stream };
  rows_send(&x, &b, &w);
}

/* Output columns of a SELECT over a table whose columns are cols[0..n) (NULL: unknown table).
 * Unknown names are INVALID for declared tables (strict) and null text columns otherwise. */
int tdm__mock_exec_project(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st, const tdm_mock_col_t *cols, size_t n,
                           bool strict, tdm_mock_proj_t *p, const char *ks, const char *table)
{
  char name[64];
  p->n = 0;
  if (x->prep && x->prep->n_result) { /* EXECUTE: exactly what PREPARED announced */
    for (size_t i = 0; i < x->prep->n_result && p->n < TDM_MOCK_EXEC_MAX_PROJ; i++) {
      p->cols[p->n] = x->prep->result[i];
      p->src[p->n] = -1;
      for (size_t k = 0; k < n; k++)
        if (tdm_str_eq(cols[k].name, x->prep->result[i].name)) p->src[p->n] = (int)k;
      p->n++;
    }
    return 0;
  }
  if (st->json) {
    p->cols[0] = (tdm_mock_col_t){ .name = TDM_STR("[json]"), .type = tdm_mock_type_scalar(TDM_MOCK_T_VARCHAR) };
    p->src[0] = -1;
    p->n = 1;
    return 0;
  }
  if (st->star) {
    for (size_t k = 0; k < n && p->n < TDM_MOCK_EXEC_MAX_PROJ; k++) {
      p->cols[p->n] = cols[k];
      p->src[p->n++] = (int)k;
    }
    if (!cols) {
      p->cols[0] = (tdm_mock_col_t){ .name = TDM_STR("key"), .type = tdm_mock_type_scalar(TDM_MOCK_T_VARCHAR) };
      p->src[0] = -1;
      p->n = 1;
    }
    return 0;
  }
  for (size_t i = 0; i < st->n_cols && p->n < TDM_MOCK_EXEC_MAX_PROJ; i++) {
    tdm_mock_name_cstr(st->src_cols[i], name, sizeof(name));
    int src = -1;
    for (size_t k = 0; k < n && src < 0; k++)
      if (tdm_str_eq_cstr(cols[k].name, name)) src = (int)k;
    if (src < 0 && strict) {
      tdm_mock_session_error(x->c, x->stream, TDM_ERR_INVALID, "Undefined column name %s in table %s.%s",
                             name[0] ? name : "?", ks, table);
      return -1;
    }
    tdm_mock_name_cstr(st->cols[i], p->names[p->n], sizeof(p->names[p->n]));
    p->cols[p->n].name = p->names[p->n][0] ? tdm_str_from(p->names[p->n]) : TDM_STR("expr");
    p->cols[p->n].type = src >= 0 ? cols[src].type : tdm_mock_type_scalar(TDM_MOCK_T_VARCHAR);
    p->src[p->n++] = src;
  }
  return 0;
}

/* WHERE equalities as byte filters on cols; false when a column is unknown (no row can match). */
static bool conditions(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st, const tdm_mock_col_t *cols, size_t n,
                       tdm_mock_cond_t *conds, size_t *n_conds)
{
  char name[64];
  *n_conds = 0;
  for (size_t i = 0; i < st->n_where; i++) {
    tdm_mock_name_cstr(st->where_cols[i], name, sizeof(name));
    size_t k = 0;
    while (k < n && !tdm_str_eq_cstr(cols[k].name, name)) k++;
    if (k == n) return false;
    conds[*n_conds].col = k;
    conds[(*n_conds)++].value = term_value(x, &st->where_vals[i], &cols[k].type);
  }
  return true;
}

/* Store table columns as metadata columns (names borrow the table). */
size_t tdm__mock_exec_table_cols(const tdm_mock_table_t *t, tdm_mock_col_t *out, size_t cap)
{
  size_t n = TDM_MIN(t->n_cols, cap);
  for (size_t i = 0; i < n; i++)
    out[i] = (tdm_mock_col_t){ .name = tdm_str_from(t->cols[i].name), .type = t->cols[i].type };
  return n;
}

static void run_select(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st)
{
  tdm_mock_t *mock = x->c->mock;
  char ks[64], table[64];
  tdm__mock_exec_resolve(x, st, ks, table);
  tdm_mock_proj_t *p = malloc(sizeof(*p));
  tdm_mock_col_t *tcols = malloc(sizeof(*tcols) * 1024);
  tdm_mock_cond_t conds[TDM_MOCK_STMT_MAX_WHERE];
  size_t n_conds = 0;
  tdm_response_rows_builder_t b;
  tdm_writer_t w;
  if (!p || !tcols) {
    tdm_mock_session_error(x->c, x->stream, TDM_ERR_SERVER_ERROR, "mock: out of memory");
    goto done;
  }
  tdm_mock_systable_t sys = tdm_mock_systable_find(ks, table);
  if (sys == TDM_MOCK_SYS_PEERS_V2 && mock->opts.no_peers_v2) {
    tdm_mock_session_error(x->c, x->stream, TDM_ERR_INVALID, "unconfigured table peers_v2");
    goto done;
  }
  if (sys != TDM_MOCK_SYS_NONE) {
    size_t ncols, idx[TDM_MOCK_EXEC_MAX_PROJ];
    const tdm_mock_col_t *cols = tdm_mock_systable_columns(sys, &ncols);
    if (st->has_function) {
      tdm_mock_session_error(x->c, x->stream, TDM_ERR_INVALID, "mock: functions are not supported on system.%s",
                             table);
      goto done;
    }
    if (tdm__mock_exec_project(x, st, cols, ncols, true, p, ks, table)) goto done;
    bool ok = conditions(x, st, cols, ncols, conds, &n_conds);
    for (size_t i = 0; i < p->n; i++) idx[i] = p->src[i] < 0 ? SIZE_MAX : (size_t)p->src[i];
    rows_begin(x, &b, &w, ks, table, p);
    if (ok) tdm_mock_systable_rows(x->c, sys, idx, p->n, conds, n_conds, &b);
    rows_send(x, &b, &w);
    goto done;
  }
  tdm_mock_table_t *t = mock->opts.store ? tdm_mock_store_get(&mock->store, ks, table, false) : NULL;
  size_t ncols = t ? tdm__mock_exec_table_cols(t, tcols, 1024) : 0;
  if (tdm__mock_exec_project(x, st, t ? tcols : NULL, ncols, t && t->declared, p, ks, table)) goto done;
  rows_begin(x, &b, &w, ks, table, p);
  if (t && conditions(x, st, tcols, ncols, conds, &n_conds)) {
    for (size_t r = 0; r < t->n_rows; r++) {
      if (!tdm_mock_table_matches(t, &t->rows[r], conds, n_conds)) continue;
      for (size_t i = 0; i < p->n; i++) {
        tdm_mock_cell_t cell = p->src[i] < 0 ? (tdm_mock_cell_t){ NULL, -1 }
                                             : tdm_mock_row_cell(&t->rows[r], (size_t)p->src[i]);
        tdm_response_rows_cell(&b, cell.p, cell.len);
      }
    }
  }
  rows_send(x, &b, &w);
done:
  free(p);
  free(tcols);
}

/* ---- writes ---- */

/* Applies INSERT / UPDATE / DELETE to the store; 0, or an INVALID already sent (<0). */
static int apply_write(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st)
{
  tdm_mock_t *mock = x->c->mock;
  if (!mock->opts.store || !st->table.text.len) return 0;
  char ks[64], table[64], name[64];
  tdm__mock_exec_resolve(x, st, ks, table);
  if (!ks[0]) return 0;
  tdm_mock_table_t *t = tdm_mock_store_get(&mock->store, ks, table, st->kind != TDM_MOCK_STMT_DELETE);
  if (!t) return 0;
  size_t cols[TDM_MOCK_STMT_MAX_COLS + TDM_MOCK_STMT_MAX_WHERE];
  tdm_bytes_t vals[TDM_MOCK_STMT_MAX_COLS + TDM_MOCK_STMT_MAX_WHERE];
  size_t n = 0;
  const tdm_cql_name_t *names[2] = { st->cols, st->where_cols };
  const tdm_mock_term_t *terms[2] = { st->vals, st->where_vals };
  size_t counts[2] = { st->kind == TDM_MOCK_STMT_DELETE ? 0 : st->n_cols, st->n_where };
  for (int part = 0; part < 2; part++) {
    for (size_t i = 0; i < counts[part]; i++) {
      tdm_mock_name_cstr(names[part][i], name, sizeof(name));
      int col = tdm_mock_table_col(t, name, !t->declared, NULL);
      if (col < 0) {
        if (!t->declared) return 0;
        tdm_mock_session_error(x->c, x->stream, TDM_ERR_INVALID, "Undefined column name %s in table %s.%s", name, ks,
                               table);
        return -1;
      }
      cols[n] = (size_t)col;
      vals[n++] = term_value(x, &terms[part][i], &t->cols[col].type);
    }
  }
  if (st->kind == TDM_MOCK_STMT_DELETE) {
    tdm_mock_cond_t conds[TDM_MOCK_STMT_MAX_WHERE];
    for (size_t i = 0; i < n; i++) conds[i] = (tdm_mock_cond_t){ cols[i], vals[i] };
    tdm_mock_table_delete(t, conds, n);
    return 0;
  }
  if (n == 0) return 0;
  tdm_mock_table_set_pk(t, cols, 1); /* undeclared table: the first column written is the key */
  int rc = tdm_mock_table_upsert(t, cols, vals, n);
  if (rc == TDM_EINVAL) {
    tdm_mock_session_error(x->c, x->stream, TDM_ERR_INVALID, "Some partition key parts are missing: %s",
                           t->cols[t->pk[0]].name);
    return -1;
  }
  return 0;
}

static int apply_batch_text(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st, const char *text)
{
  tdm_mock_stmt_t *part = malloc(sizeof(*part));
  if (!part) return 0;
  uint16_t base = x->bind_base;
  int rc = 0;
  for (size_t i = 0; i < st->n_parts && rc == 0; i++) {
    tdm_mock_stmt_parse(text + st->part_off[i], st->part_len[i], part);
    rc = apply_write(x, part);
    x->bind_base = (uint16_t)(x->bind_base + part->n_binds);
  }
  x->bind_base = base;
  free(part);
  return rc;
}

/* ---- DDL ---- */

void tdm_mock_exec_schema_event(tdm_mock_t *mock, const tdm_response_schema_change_t *sc)
{
  tdm_response_event_t ev = { .kind = TDM_RESPONSE_EVENT_SCHEMA_CHANGE, .schema = *sc };
  for (size_t i = 0; i < mock->n_nodes; i++) {
    tdm_mock_link_t *it, *tmp;
    TDM_MOCK_LIST_EACH(it, tmp, &mock->nodes[i].conns)
    {
      tdm_mock_conn_t *c = TDM_MOCK_CONTAINER(it, tdm_mock_conn_t, link);
      if (!c->ready || !(c->events & TDM_REQUEST_EVENT_SCHEMA_CHANGE)) continue;
      tdm_writer_t w;
      tdm_writer_init(&w);
      tdm_response_encode_event(&w, c->version, &ev);
      tdm__mock_exec_send(c, -1, TDM_OP_EVENT, &w);
    }
  }
}

static void run_ddl(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st)
{
  tdm_mock_t *mock = x->c->mock;
  char ks[64], name[64];
  tdm_mock_name_cstr(st->ddl_name, name, sizeof(name));
  if (st->ddl_target == TDM_RESPONSE_TARGET_KEYSPACE) {
    snprintf(ks, sizeof(ks), "%s", name);
  } else {
    tdm_mock_name_cstr(st->ks, ks, sizeof(ks));
    if (!ks[0]) snprintf(ks, sizeof(ks), "%s", x->ks);
    if (!ks[0]) {
      tdm_mock_session_error(x->c, x->stream, TDM_ERR_INVALID,
                             "No keyspace has been specified. USE a keyspace, or explicitly specify "
                             "keyspace.tablename");
      return;
    }
  }
  if (mock->opts.store) {
    bool drop = st->ddl_change[0] == 'D';
    if (st->ddl_target == TDM_RESPONSE_TARGET_KEYSPACE && drop) tdm_mock_store_drop_keyspace(&mock->store, ks);
    if (st->ddl_target == TDM_RESPONSE_TARGET_TABLE && drop && tdm_str_eq(st->ddl_name.text, st->table.text))
      tdm_mock_store_drop_table(&mock->store, ks, name);
    if (st->ddl_create_table && st->n_defs) {
      tdm_mock_table_t *t = tdm_mock_store_declare(&mock->store, ks, name);
      size_t pk[TDM_MOCK_STMT_MAX_PK], n_pk = 0;
      char col[64];
      for (size_t i = 0; t && i < st->n_defs; i++) {
        tdm_mock_type_t type;
        if (tdm_mock_type_parse(st->def_types[i], &type)) type = tdm_mock_type_scalar(TDM_MOCK_T_VARCHAR);
        tdm_mock_name_cstr(st->def_names[i], col, sizeof(col));
        (void)tdm_mock_table_col(t, col, true, &type);
      }
      for (size_t i = 0; t && i < st->n_pk; i++) {
        tdm_mock_name_cstr(st->pk[i], col, sizeof(col));
        int idx = tdm_mock_table_col(t, col, false, NULL);
        if (idx >= 0) pk[n_pk++] = (size_t)idx;
      }
      if (t && n_pk == 0 && t->n_cols) pk[n_pk++] = 0;
      if (t) tdm_mock_table_set_pk(t, pk, n_pk);
    }
  }
  tdm_mock_schema_bump(mock);
  tdm_response_schema_change_t sc = { .change_type = tdm_str_from(st->ddl_change), .target = st->ddl_target,
                                      .keyspace = tdm_str_from(ks) };
  if (st->ddl_target != TDM_RESPONSE_TARGET_KEYSPACE) sc.name = tdm_str_from(name);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_encode_schema_change(&w, x->c->version, &sc);
  tdm__mock_exec_send(x->c, x->stream, TDM_OP_RESULT, &w);
  tdm_mock_exec_schema_event(mock, &sc);
}

/* ---- statements ---- */

static void run(tdm_mock_ctx_t *x, const tdm_mock_stmt_t *st, const char *text)
{
  tdm_mock_conn_t *c = x->c;
  tdm_writer_t w;
  switch (st->kind) {
  case TDM_MOCK_STMT_SELECT: run_select(x, st); return;
  case TDM_MOCK_STMT_INSERT:
  case TDM_MOCK_STMT_UPDATE:
  case TDM_MOCK_STMT_DELETE:
    if (apply_write(x, st) == 0) tdm_mock_exec_void(c, x->stream);
    return;
  case TDM_MOCK_STMT_BATCH:
    if (apply_batch_text(x, st, text) == 0) tdm_mock_exec_void(c, x->stream);
    return;
  case TDM_MOCK_STMT_TRUNCATE: {
    char ks[64], table[64];
    tdm__mock_exec_resolve(x, st, ks, table);
    tdm_mock_table_t *t = tdm_mock_store_get(&c->mock->store, ks, table, false);
    if (t) tdm_mock_table_truncate(t);
    tdm_mock_exec_void(c, x->stream);
    return;
  }
  case TDM_MOCK_STMT_USE: {
    char ks[64];
    tdm_mock_name_cstr(st->ks, ks, sizeof(ks));
    if (!ks[0]) {
      tdm_mock_session_error(c, x->stream, TDM_ERR_SYNTAX_ERROR, "line 1:4 no viable alternative at input 'USE'");
      return;
    }
    snprintf(c->keyspace, sizeof(c->keyspace), "%s", ks);
    tdm_writer_init(&w);
    tdm_response_encode_set_keyspace(&w, tdm_str_from(ks));
    tdm__mock_exec_send(c, x->stream, TDM_OP_RESULT, &w);
    return;
  }
  case TDM_MOCK_STMT_DDL: run_ddl(x, st); return;
  case TDM_MOCK_STMT_LIST: {
    tdm_mock_proj_t p = { .n = 1 };
    p.cols[0] = (tdm_mock_col_t){ .name = TDM_STR("role"), .type = tdm_mock_type_scalar(TDM_MOCK_T_VARCHAR) };
    tdm_response_rows_builder_t b;
    rows_begin(x, &b, &w, "system_auth", "roles", &p);
    rows_send(x, &b, &w);
    return;
  }
  case TDM_MOCK_STMT_OTHER:
  case TDM_MOCK_STMT_MAX:
    tdm_mock_exec_void(c, x->stream);
    return;
  }
}

/* --fast EXECUTE: the prepared statement kinds that have a cached answer. */
static bool fast_execute(tdm_mock_conn_t *c, int16_t stream, const tdm_mock_stmt_t *st, const tdm_mock_prep_t *prep,
                         bool skip_metadata)
{
  switch (st->kind) {
  case TDM_MOCK_STMT_INSERT:
  case TDM_MOCK_STMT_UPDATE:
  case TDM_MOCK_STMT_DELETE:
  case TDM_MOCK_STMT_BATCH:
  case TDM_MOCK_STMT_OTHER:
    return tdm_mock_fast_reply(c, stream, TDM_MOCK_FAST_VOID, 0);
  case TDM_MOCK_STMT_SELECT:
    if (tdm_str_eq_ci(st->ks.text, TDM_STR("system"))) return false;
    return skip_metadata && !tdm_proto_has_metadata_id(c->version) &&
           tdm_mock_fast_reply(c, stream, TDM_MOCK_FAST_NOMETA, prep->n_result);
  default:
    return false;
  }
}

/* --fast QUERY: classified by its first keyword alone (no parse, no allocation). */
static bool fast_query(tdm_mock_conn_t *c, int16_t stream, tdm_str_t text)
{
  tdm_cql_lexer_t lx;
  tdm_cql_token_t t;
  tdm_cql_lexer_init(&lx, text.ptr, text.len);
  tdm_cql_lexer_next(&lx, &t);
  if (TDM_CQL_KW(&t, "select")) {
    for (size_t i = 0; i + 7 <= text.len; i++) /* system tables keep their real answers */
      if (strncasecmp(text.ptr + i, "system.", 7) == 0) return false;
    return tdm_mock_fast_reply(c, stream, TDM_MOCK_FAST_ROWS, 0);
  }
  if (TDM_CQL_KW(&t, "insert") || TDM_CQL_KW(&t, "update") || TDM_CQL_KW(&t, "delete") || TDM_CQL_KW(&t, "begin"))
    return tdm_mock_fast_reply(c, stream, TDM_MOCK_FAST_VOID, 0);
  return false;
}

void tdm_mock_exec_query(tdm_mock_conn_t *c, int16_t stream, const tdm_query_t *q)
{
  if (c->mock->opts.fast && fast_query(c, stream, q->query)) return;
  tdm_mock_stmt_t *st = malloc(sizeof(*st));
  tdm_mock_ctx_t *x = malloc(sizeof(*x));
  if (!st || !x) {
    tdm_mock_session_error(c, stream, TDM_ERR_SERVER_ERROR, "mock: out of memory");
    goto done;
  }
  tdm_mock_stmt_parse(q->query.ptr, q->query.len, st);
  tdm__mock_exec_ctx_init(x, c, stream, q->params.keyspace);
  bind_values(x, q->params.values, q->params.values_len, q->params.values_count,
              (q->params.flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0);
  run(x, st, q->query.ptr);
done:
  free(st);
  free(x);
}

void tdm_mock_exec_execute(tdm_mock_conn_t *c, int16_t stream, const tdm_execute_t *e)
{
  tdm_mock_prep_t *prep = tdm_mock_prepared_find(&c->node->prepared, e->id.ptr, (size_t)TDM_MAX(e->id.len, 0));
  if (!prep) {
    tdm_mock_exec_unprepared(c, stream, e->id.ptr, (size_t)TDM_MAX(e->id.len, 0));
    return;
  }
  prep->executions++;
  bool skip = (e->params.flags & TDM_QFLAG_SKIP_METADATA) != 0;
  if (c->mock->opts.fast && fast_execute(c, stream, prep->stmt, prep, skip)) return;
  tdm_mock_ctx_t *x = malloc(sizeof(*x));
  if (!x) {
    tdm_mock_session_error(c, stream, TDM_ERR_SERVER_ERROR, "mock: out of memory");
    return;
  }
  tdm__mock_exec_ctx_init(x, c, stream, tdm_str_from(prep->keyspace));
  x->prep = prep;
  x->skip_metadata = skip;
  if (e->has_metadata_id) x->client_metadata_id = e->result_metadata_id;
  bind_values(x, e->params.values, e->params.values_len, e->params.values_count,
              (e->params.flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0);
  run(x, prep->stmt, prep->text);
  free(x);
}

void tdm_mock_exec_batch(tdm_mock_conn_t *c, int16_t stream, const tdm_batch_t *b)
{
  tdm_batch_iter_t it;
  tdm_batch_child_t child;
  /* every prepared child must be known before anything is applied */
  tdm_batch_iter_init(&it, b);
  while (tdm_batch_next_child(&it, &child) > 0) {
    if (child.kind != TDM_REQUEST_BATCH_KIND_PREPARED) continue;
    if (!tdm_mock_prepared_find(&c->node->prepared, child.id.ptr, (size_t)TDM_MAX(child.id.len, 0))) {
      tdm_mock_exec_unprepared(c, stream, child.id.ptr, (size_t)TDM_MAX(child.id.len, 0));
      return;
    }
  }
  if (c->mock->opts.fast || !c->mock->opts.store) {
    tdm_mock_exec_void(c, stream);
    return;
  }
  tdm_mock_ctx_t *x = malloc(sizeof(*x));
  tdm_mock_stmt_t *st = malloc(sizeof(*st));
  int rc = 0;
  tdm_batch_iter_init(&it, b);
  while (x && st && rc == 0 && tdm_batch_next_child(&it, &child) > 0) {
    const tdm_mock_stmt_t *use = st;
    const char *text;
    tdm_mock_prep_t *prep = NULL;
    if (child.kind == TDM_REQUEST_BATCH_KIND_PREPARED) {
      prep = tdm_mock_prepared_find(&c->node->prepared, child.id.ptr, (size_t)child.id.len);
      use = prep->stmt;
      text = prep->text;
    } else {
      tdm_mock_stmt_parse(child.query.ptr, child.query.len, st);
      text = child.query.ptr;
    }
    tdm__mock_exec_ctx_init(x, c, stream, prep ? tdm_str_from(prep->keyspace) : b->params.keyspace);
    bind_values(x, child.values, child.values_len, child.values_count, false);
    if (use->kind == TDM_MOCK_STMT_BATCH) rc = apply_batch_text(x, use, text);
    else rc = apply_write(x, use);
  }
  if (rc == 0) tdm_mock_exec_void(c, stream);
  free(x);
  free(st);
}
