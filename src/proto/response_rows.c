/* Rows builder: RESULT Rows bodies tandem originates (virtual system.local / system.peers tables, mock
 * nodes, benchmarks). Counts are reserved as placeholders and patched at finish, so callers stream
 * columns and cells without knowing the totals. Invariant: 0 <= cells < columns while rows are open;
 * misuse is remembered in b->err and reported by finish. */
#include <tandem/proto/response.h>

#define TDM_RESPONSE_ROWS_FLAGS \
  (TDM_RFLAG_GLOBAL_TABLES_SPEC | TDM_RFLAG_HAS_MORE_PAGES | TDM_RFLAG_NO_METADATA | TDM_RFLAG_METADATA_CHANGED)

static void misuse(tdm_response_rows_builder_t *b)
{
  if (!b->err) b->err = TDM_EINVAL;
}

void tdm_response_rows_begin(tdm_response_rows_builder_t *b, tdm_writer_t *w, uint8_t version,
                             const tdm_response_rows_options_t *opts)
{
  static const tdm_response_rows_options_t none = { 0 };
  if (!opts) opts = &none;
  memset(b, 0, sizeof(*b));
  b->w = w;
  b->version = version;
  b->flags = opts->flags & TDM_RESPONSE_ROWS_FLAGS;
  if (!tdm_response_has_metadata_id(version)) b->flags &= ~(uint32_t)TDM_RFLAG_METADATA_CHANGED;
  if (!tdm_response_version_ok(version)) misuse(b);
  tdm_writer_int(w, TDM_RESULT_ROWS);
  tdm_writer_int(w, (int32_t)b->flags);
  b->columns_offset = tdm_writer_reserve_int(w);
  if (b->flags & TDM_RFLAG_HAS_MORE_PAGES) tdm_writer_bytes(w, opts->paging_state.ptr, opts->paging_state.len);
  if (b->flags & TDM_RFLAG_METADATA_CHANGED) {
    if (opts->new_metadata_id.len < 0) misuse(b);
    else tdm_writer_short_bytes(w, opts->new_metadata_id.ptr, (size_t)opts->new_metadata_id.len);
  }
  if (b->flags & TDM_RFLAG_NO_METADATA) {
    if (opts->columns_count < 0) misuse(b);
    b->columns = opts->columns_count;
  } else if (b->flags & TDM_RFLAG_GLOBAL_TABLES_SPEC) {
    tdm_writer_string(w, opts->keyspace);
    tdm_writer_string(w, opts->table);
  }
}

void tdm_response_rows_column(tdm_response_rows_builder_t *b, const tdm_response_column_t *col)
{
  if (b->in_rows || (b->flags & TDM_RFLAG_NO_METADATA) || !col->type.raw || col->type.len < 2 ||
      b->columns == INT32_MAX) {
    misuse(b);
    return;
  }
  if (!(b->flags & TDM_RFLAG_GLOBAL_TABLES_SPEC)) {
    tdm_writer_string(b->w, col->keyspace);
    tdm_writer_string(b->w, col->table);
  }
  tdm_writer_string(b->w, col->name);
  tdm_cqltype_write(b->w, &col->type);
  b->columns++;
}

void tdm_response_rows_column_named(tdm_response_rows_builder_t *b, tdm_str_t name, tdm_str_t type_text)
{
  uint8_t buf[256]; /* a column type of tandem's own tables is a few bytes */
  tdm_response_column_t col = { .name = name };
  if (tdm_cqltype_parse(type_text, buf, sizeof(buf), &col.type)) {
    misuse(b);
    return;
  }
  tdm_response_rows_column(b, &col);
}

/* Opens the rows section on the first cell; false when the cell must not be written. */
static bool cell_begin(tdm_response_rows_builder_t *b)
{
  if (b->err) return false;
  if (!b->in_rows) {
    if (b->columns == 0) {
      misuse(b);
      return false;
    }
    b->rows_offset = tdm_writer_reserve_int(b->w);
    b->in_rows = true;
  }
  if (b->rows == INT32_MAX) {
    misuse(b);
    return false;
  }
  return true;
}

static void cell_end(tdm_response_rows_builder_t *b)
{
  if (++b->cells == b->columns) {
    b->cells = 0;
    b->rows++;
  }
}

void tdm_response_rows_cell(tdm_response_rows_builder_t *b, const void *value, int32_t len)
{
  if (!cell_begin(b)) return;
  tdm_writer_bytes(b->w, value, len);
  cell_end(b);
}

void tdm_response_rows_cell_null(tdm_response_rows_builder_t *b) { tdm_response_rows_cell(b, NULL, -1); }

void tdm_response_rows_cell_text(tdm_response_rows_builder_t *b, tdm_str_t s)
{
  if (s.len > INT32_MAX) {
    misuse(b);
    return;
  }
  tdm_response_rows_cell(b, s.ptr, (int32_t)s.len);
}

void tdm_response_rows_cell_int(tdm_response_rows_builder_t *b, int32_t v)
{
  uint8_t p[4] = { (uint8_t)((uint32_t)v >> 24), (uint8_t)((uint32_t)v >> 16), (uint8_t)((uint32_t)v >> 8), (uint8_t)v };
  tdm_response_rows_cell(b, p, 4);
}

void tdm_response_rows_cell_bigint(tdm_response_rows_builder_t *b, int64_t v)
{
  uint8_t p[8];
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
  tdm_response_rows_cell(b, p, 8);
}

void tdm_response_rows_cell_boolean(tdm_response_rows_builder_t *b, bool v)
{
  uint8_t p = v ? 1 : 0;
  tdm_response_rows_cell(b, &p, 1);
}

void tdm_response_rows_cell_uuid(tdm_response_rows_builder_t *b, const uint8_t uuid[16])
{
  tdm_response_rows_cell(b, uuid, 16);
}

void tdm_response_rows_cell_inet(tdm_response_rows_builder_t *b, const uint8_t *addr, uint8_t addr_len)
{
  if (addr_len != 4 && addr_len != 16) {
    misuse(b);
    return;
  }
  tdm_response_rows_cell(b, addr, addr_len);
}

/* Collections: [int] cell length, then [int] n and n (or 2n) [bytes]. The length is patched once the
 * elements are written. */
static void collection(tdm_response_rows_builder_t *b, const tdm_str_t *keys, const tdm_str_t *values, size_t n)
{
  if (n > INT32_MAX) {
    misuse(b);
    return;
  }
  if (!cell_begin(b)) return;
  tdm_writer_t *w = b->w;
  size_t at = tdm_writer_reserve_int(w);
  tdm_writer_int(w, (int32_t)n);
  for (size_t i = 0; i < n; i++) {
    const tdm_str_t *items[2] = { &keys[i], values ? &values[i] : NULL };
    for (int k = 0; k < 2 && items[k]; k++) {
      if (items[k]->len > INT32_MAX) {
        misuse(b);
        return;
      }
      tdm_writer_bytes(w, items[k]->ptr, (int32_t)items[k]->len);
    }
  }
  if (!w->err && w->len - at - 4 > INT32_MAX) {
    misuse(b);
    return;
  }
  tdm_writer_patch_int(w, at, (int32_t)(w->len - at - 4));
  cell_end(b);
}

void tdm_response_rows_cell_text_list(tdm_response_rows_builder_t *b, const tdm_str_t *items, size_t n)
{
  collection(b, items, NULL, n);
}

void tdm_response_rows_cell_text_map(tdm_response_rows_builder_t *b, const tdm_str_t *keys, const tdm_str_t *values,
                                     size_t n)
{
  collection(b, keys, values, n);
}

int tdm_response_rows_finish(tdm_response_rows_builder_t *b)
{
  if (b->err) return b->err;
  if (!b->in_rows) {
    b->rows_offset = tdm_writer_reserve_int(b->w);
    b->in_rows = true;
  }
  if (b->cells != 0) {
    misuse(b);
    return b->err;
  }
  tdm_writer_patch_int(b->w, b->columns_offset, b->columns);
  tdm_writer_patch_int(b->w, b->rows_offset, b->rows);
  return tdm_writer_error(b->w);
}
