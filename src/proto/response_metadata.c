/* Result-set and bind-variable metadata of RESULT Rows / Prepared: reading (every column spec and
 * nested type validated once, so the walkers below cannot leave the span), column spec walking, pk
 * indices, and the allocation-free row/cell iterator. Counts are checked against the bytes left before
 * any loop runs. */
#include <tandem/proto/response.h>

#define FAIL(msg)                \
  do {                           \
    if (why) *why = (msg);       \
    r->pos = start;              \
    return TDM_EPROTO_MALFORMED; \
  } while (0)

static bool is_dse(uint8_t v) { return v == TDM_PROTO_DSE_V1 || v == TDM_PROTO_DSE_V2; }

/* One column spec: (<ksname><tablename>)?<name><type>. */
static int read_column(tdm_reader_t *r, bool global, tdm_response_column_t *c)
{
  if (!global && (tdm_reader_string(r, &c->keyspace) || tdm_reader_string(r, &c->table)))
    return TDM_EPROTO_MALFORMED;
  if (tdm_reader_string(r, &c->name) || tdm_cqltype_read(r, &c->type)) return TDM_EPROTO_MALFORMED;
  return 0;
}

int tdm_response_metadata_read(tdm_reader_t *r, uint8_t version, tdm_response_meta_kind_t kind,
                               tdm_response_metadata_t *m, const char **why)
{
  size_t start = r->pos;
  int32_t flags, count;
  memset(m, 0, sizeof(*m));
  m->paging_state.len = -1;
  m->new_metadata_id.len = -1;
  m->flags_offset = r->pos;
  if (tdm_reader_int(r, &flags) || tdm_reader_int(r, &count)) FAIL("metadata flags or column count truncated");
  if (count < 0) FAIL("negative column count");
  m->flags = (uint32_t)flags;
  m->columns_count = count;

  if (kind == TDM_RESPONSE_META_VARIABLES) {
    if (version >= TDM_PROTO_V4) {
      int32_t pk;
      const uint8_t *raw;
      if (tdm_reader_int(r, &pk)) FAIL("pk count truncated");
      if (pk < 0 || (size_t)pk > tdm_reader_left(r) / 2 || tdm_reader_raw(r, (size_t)pk * 2, &raw))
        FAIL("pk count exceeds the body");
      m->pk_count = (uint32_t)pk;
      m->pk_raw = pk ? raw : NULL;
    }
  } else {
    if ((m->flags & TDM_RFLAG_HAS_MORE_PAGES) && tdm_reader_bytes(r, &m->paging_state)) FAIL("paging state truncated");
    if ((m->flags & TDM_RFLAG_METADATA_CHANGED) && tdm_response_has_metadata_id(version)) {
      m->new_metadata_id_offset = r->pos;
      if (tdm_reader_short_bytes(r, &m->new_metadata_id)) FAIL("new metadata id truncated");
    }
    if (is_dse(version) && (m->flags & TDM_RFLAG_CONTINUOUS_PAGING) && tdm_reader_int(r, &m->continuous_page))
      FAIL("continuous page number truncated");
  }

  /* NO_METADATA applies to result sets only; bind-variable metadata always carries its specs. */
  if (kind == TDM_RESPONSE_META_ROWS && (m->flags & TDM_RFLAG_NO_METADATA)) return 0;
  bool global = (m->flags & TDM_RFLAG_GLOBAL_TABLES_SPEC) != 0;
  if (global && (tdm_reader_string(r, &m->global_keyspace) || tdm_reader_string(r, &m->global_table)))
    FAIL("global table spec truncated");
  /* A spec takes at least 4 bytes (empty name + type id), 8 with its own keyspace and table. */
  if ((size_t)count > tdm_reader_left(r) / (global ? 4 : 8)) FAIL("column count exceeds the body");
  size_t specs = r->pos;
  for (int32_t i = 0; i < count; i++) {
    tdm_response_column_t c;
    if (read_column(r, global, &c)) FAIL("column spec truncated or has a bad type");
  }
  m->specs = count ? r->buf + specs : NULL;
  m->specs_len = r->pos - specs;
  return 0;
}

int tdm_response_column_next(const tdm_response_metadata_t *m, size_t *pos, tdm_response_column_t *out)
{
  bool global = (m->flags & TDM_RFLAG_GLOBAL_TABLES_SPEC) != 0;
  if (m->columns) {
    if (*pos >= (size_t)m->columns_count) return 0;
    *out = m->columns[(*pos)++];
  } else {
    if (*pos >= m->specs_len) return 0;
    tdm_reader_t r;
    tdm_reader_init(&r, m->specs, m->specs_len);
    r.pos = *pos;
    if (read_column(&r, global, out)) return TDM_EPROTO_MALFORMED;
    *pos = r.pos;
  }
  if (global) {
    out->keyspace = m->global_keyspace;
    out->table = m->global_table;
  }
  return 1;
}

uint16_t tdm_response_pk_index(const tdm_response_metadata_t *m, uint32_t i)
{
  TDM_ASSERT(i < m->pk_count);
  if (m->pk_indices) return m->pk_indices[i];
  return (uint16_t)((m->pk_raw[2 * i] << 8) | m->pk_raw[2 * i + 1]);
}

/* ---- rows ---- */

void tdm_response_rows_iter_init(tdm_response_rows_iter_t *it, const tdm_response_rows_t *rows)
{
  tdm_reader_init(&it->r, rows->content, rows->content_len);
  it->columns = rows->metadata.columns_count;
  it->rows_left = rows->rows_count;
  it->cells_left = 0;
}

int tdm_response_rows_next_row(tdm_response_rows_iter_t *it)
{
  tdm_bytes_t cell;
  while (it->cells_left > 0) {
    if (tdm_reader_bytes(&it->r, &cell)) return TDM_EPROTO_MALFORMED;
    it->cells_left--;
  }
  if (it->rows_left <= 0) return 0;
  it->rows_left--;
  it->cells_left = it->columns;
  return 1;
}

int tdm_response_rows_next_cell(tdm_response_rows_iter_t *it, tdm_bytes_t *cell)
{
  if (it->cells_left <= 0) return 0;
  if (tdm_reader_bytes(&it->r, cell)) return TDM_EPROTO_MALFORMED;
  it->cells_left--;
  return 1;
}
