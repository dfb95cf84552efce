/* In-memory tables for the mock: rows of serialized cells, upsert by primary key, scans with equality
 * filters. Invariants: every row has at most n_cols cells; pk[] indexes are < n_cols; a table's memory
 * is released only by drop/clear. */
#include "store.h"

static void row_free(tdm_mock_row_t *r)
{
  for (size_t i = 0; i < r->n; i++) free(r->cells[i].p);
  free(r->cells);
  r->cells = NULL;
  r->n = 0;
}

static void table_free(tdm_mock_table_t *t)
{
  if (!t) return;
  for (size_t i = 0; i < t->n_rows; i++) row_free(&t->rows[i]);
  for (size_t i = 0; i < t->n_cols; i++) free(t->cols[i].name);
  free(t->rows);
  free(t->cols);
  free(t);
}

static tdm_mock_table_t *table_new(const char *ks, const char *name)
{
  tdm_mock_table_t *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  snprintf(t->ks, sizeof(t->ks), "%s", ks);
  snprintf(t->name, sizeof(t->name), "%s", name);
  return t;
}

static ssize_t find(const tdm_mock_store_t *s, const char *ks, const char *name)
{
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->tables[i]->ks, ks) == 0 && strcmp(s->tables[i]->name, name) == 0) return (ssize_t)i;
  return -1;
}

static tdm_mock_table_t *add(tdm_mock_store_t *s, tdm_mock_table_t *t)
{
  if (!t) return NULL;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    tdm_mock_table_t **p = realloc(s->tables, cap * sizeof(*p));
    if (!p) {
      table_free(t);
      return NULL;
    }
    s->tables = p;
    s->cap = cap;
  }
  s->tables[s->n++] = t;
  return t;
}

tdm_mock_table_t *tdm_mock_store_get(tdm_mock_store_t *s, const char *ks, const char *name, bool create)
{
  ssize_t i = find(s, ks, name);
  if (i >= 0) return s->tables[i];
  return create ? add(s, table_new(ks, name)) : NULL;
}

static void remove_at(tdm_mock_store_t *s, size_t i)
{
  table_free(s->tables[i]);
  s->tables[i] = s->tables[--s->n];
}

tdm_mock_table_t *tdm_mock_store_declare(tdm_mock_store_t *s, const char *ks, const char *name)
{
  ssize_t i = find(s, ks, name);
  if (i >= 0) remove_at(s, (size_t)i);
  tdm_mock_table_t *t = add(s, table_new(ks, name));
  if (t) t->declared = true;
  return t;
}

void tdm_mock_store_drop_table(tdm_mock_store_t *s, const char *ks, const char *name)
{
  ssize_t i = find(s, ks, name);
  if (i >= 0) remove_at(s, (size_t)i);
}

void tdm_mock_store_drop_keyspace(tdm_mock_store_t *s, const char *ks)
{
  for (size_t i = 0; i < s->n;) {
    if (strcmp(s->tables[i]->ks, ks) == 0) remove_at(s, i);
    else i++;
  }
}

void tdm_mock_store_clear(tdm_mock_store_t *s)
{
  for (size_t i = 0; i < s->n; i++) table_free(s->tables[i]);
  free(s->tables);
  memset(s, 0, sizeof(*s));
}

size_t tdm_mock_store_rows(const tdm_mock_store_t *s)
{
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) n += s->tables[i]->n_rows;
  return n;
}

int tdm_mock_table_col(tdm_mock_table_t *t, const char *name, bool create, const tdm_mock_type_t *type)
{
  for (size_t i = 0; i < t->n_cols; i++)
    if (strcmp(t->cols[i].name, name) == 0) return (int)i;
  if (!create || !name[0] || t->n_cols >= 1024) return -1;
  if (t->n_cols == t->cap_cols) {
    size_t cap = t->cap_cols ? t->cap_cols * 2 : 8;
    tdm_mock_tcol_t *p = realloc(t->cols, cap * sizeof(*p));
    if (!p) return -1;
    t->cols = p;
    t->cap_cols = cap;
  }
  char *copy = strdup(name);
  if (!copy) return -1;
  t->cols[t->n_cols].name = copy;
  t->cols[t->n_cols].type = type ? *type : tdm_mock_type_scalar(TDM_MOCK_T_VARCHAR);
  return (int)t->n_cols++;
}

void tdm_mock_table_set_pk(tdm_mock_table_t *t, const size_t *cols, size_t n)
{
  if (t->n_pk || n == 0) return;
  t->n_pk = TDM_MIN(n, (size_t)TDM_MOCK_STORE_MAX_PK);
  memcpy(t->pk, cols, t->n_pk * sizeof(*cols));
}

tdm_mock_cell_t tdm_mock_row_cell(const tdm_mock_row_t *row, size_t col)
{
  if (col < row->n) return row->cells[col];
  return (tdm_mock_cell_t){ NULL, -1 };
}

static bool cell_eq(tdm_mock_cell_t c, tdm_bytes_t v)
{
  if (c.len < 0 || v.len < 0) return c.len < 0 && v.len < 0;
  return c.len == v.len && (c.len == 0 || memcmp(c.p, v.ptr, (size_t)c.len) == 0);
}

bool tdm_mock_table_matches(const tdm_mock_table_t *t, const tdm_mock_row_t *row, const tdm_mock_cond_t *conds,
                            size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!cell_eq(tdm_mock_row_cell(row, conds[i].col), conds[i].value)) return false;
  return true;
}

static int cell_set(tdm_mock_row_t *row, size_t col, tdm_bytes_t v)
{
  if (col >= row->n) {
    tdm_mock_cell_t *p = realloc(row->cells, (col + 1) * sizeof(*p));
    if (!p) return TDM_ENOMEM;
    for (size_t i = row->n; i <= col; i++) p[i] = (tdm_mock_cell_t){ NULL, -1 };
    row->cells = p;
    row->n = col + 1;
  }
  uint8_t *copy = NULL;
  if (v.len > 0) {
    copy = malloc((size_t)v.len);
    if (!copy) return TDM_ENOMEM;
    memcpy(copy, v.ptr, (size_t)v.len);
  }
  free(row->cells[col].p);
  row->cells[col].p = copy;
  row->cells[col].len = v.len < 0 ? -1 : v.len; /* unset (-2) counts as null here */
  return 0;
}

int tdm_mock_table_upsert(tdm_mock_table_t *t, const size_t *cols, const tdm_bytes_t *vals, size_t n)
{
  tdm_mock_cond_t key[TDM_MOCK_STORE_MAX_PK];
  if (t->n_pk == 0) return TDM_EINVAL;
  for (size_t k = 0; k < t->n_pk; k++) {
    size_t j = 0;
    while (j < n && cols[j] != t->pk[k]) j++;
    if (j == n) return TDM_EINVAL;
    key[k].col = t->pk[k];
    key[k].value = vals[j];
  }
  tdm_mock_row_t *row = NULL;
  for (size_t r = 0; r < t->n_rows && !row; r++)
    if (tdm_mock_table_matches(t, &t->rows[r], key, t->n_pk)) row = &t->rows[r];
  if (!row) {
    if (t->n_rows == t->cap_rows) {
      size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
      tdm_mock_row_t *p = realloc(t->rows, cap * sizeof(*p));
      if (!p) return TDM_ENOMEM;
      t->rows = p;
      t->cap_rows = cap;
    }
    row = &t->rows[t->n_rows++];
    memset(row, 0, sizeof(*row));
  }
  for (size_t j = 0; j < n; j++) {
    int rc = cell_set(row, cols[j], vals[j]);
    if (rc) return rc;
  }
  return 0;
}

size_t tdm_mock_table_delete(tdm_mock_table_t *t, const tdm_mock_cond_t *conds, size_t n)
{
  size_t removed = 0, w = 0;
  for (size_t r = 0; r < t->n_rows; r++) {
    if (tdm_mock_table_matches(t, &t->rows[r], conds, n)) {
      row_free(&t->rows[r]);
      removed++;
    } else {
      t->rows[w++] = t->rows[r];
    }
  }
  t->n_rows = w;
  return removed;
}

void tdm_mock_table_truncate(tdm_mock_table_t *t)
{
  for (size_t r = 0; r < t->n_rows; r++) row_free(&t->rows[r]);
  t->n_rows = 0;
}
