/* Hot-path reads of a response body: RESULT kind, ERROR code, PREPARED ids, the LWT [applied] cell, the
 * v5 metadata id and its rewrite, and the frame-level prefix (tracing id, warnings, custom payload).
 * Each reads only as far as what it returns, through the bounds-checked reader; none allocates except
 * the rewrite, into the caller's writer. */
#include <tandem/proto/response.h>

static bool kind_known(int32_t kind) { return kind >= TDM_RESULT_VOID && kind <= TDM_RESULT_SCHEMA_CHANGE; }

int tdm_response_peek_result_kind(const void *body, size_t len, int32_t *kind)
{
  tdm_reader_t r;
  int32_t k;
  tdm_reader_init(&r, body, len);
  if (tdm_reader_int(&r, &k) || !kind_known(k)) return TDM_EPROTO_MALFORMED;
  *kind = k;
  return 0;
}

int tdm_response_peek_error_code(const void *body, size_t len, uint32_t *code, tdm_str_t *message)
{
  tdm_reader_t r;
  tdm_str_t msg;
  tdm_reader_init(&r, body, len);
  if (tdm_reader_uint(&r, code)) return TDM_EPROTO_MALFORMED;
  if (message) {
    if (tdm_reader_string(&r, &msg)) return TDM_EPROTO_MALFORMED;
    *message = msg;
  }
  return 0;
}

int tdm_response_peek_prepared_ids(uint8_t version, const void *body, size_t len, tdm_response_prepared_ids_t *out)
{
  tdm_reader_t r;
  int32_t kind;
  tdm_reader_init(&r, body, len);
  if (tdm_reader_int(&r, &kind) || !kind_known(kind)) return TDM_EPROTO_MALFORMED;
  if (kind != TDM_RESULT_PREPARED) return TDM_EINVAL;
  memset(out, 0, sizeof(*out));
  out->result_metadata_id.len = -1;
  out->id_offset = r.pos;
  if (tdm_reader_short_bytes(&r, &out->id)) return TDM_EPROTO_MALFORMED;
  if (tdm_response_has_metadata_id(version)) {
    out->result_metadata_id_offset = r.pos;
    if (tdm_reader_short_bytes(&r, &out->result_metadata_id)) return TDM_EPROTO_MALFORMED;
  }
  return 0;
}

int tdm_response_peek_metadata_id(uint8_t version, const void *body, size_t len, tdm_bytes_t *id, size_t *offset)
{
  tdm_reader_t r;
  int32_t kind, flags, count;
  tdm_bytes_t skip;
  tdm_reader_init(&r, body, len);
  if (tdm_reader_int(&r, &kind) || !kind_known(kind)) return TDM_EPROTO_MALFORMED;
  if (!tdm_response_has_metadata_id(version)) return TDM_ENOTFOUND;
  if (kind == TDM_RESULT_PREPARED) {
    if (tdm_reader_short_bytes(&r, &skip)) return TDM_EPROTO_MALFORMED;
  } else if (kind == TDM_RESULT_ROWS) {
    if (tdm_reader_int(&r, &flags) || tdm_reader_int(&r, &count) || count < 0) return TDM_EPROTO_MALFORMED;
    if ((flags & TDM_RFLAG_HAS_MORE_PAGES) && tdm_reader_bytes(&r, &skip)) return TDM_EPROTO_MALFORMED;
    if (!(flags & TDM_RFLAG_METADATA_CHANGED)) return TDM_ENOTFOUND;
  } else {
    return TDM_ENOTFOUND;
  }
  *offset = r.pos;
  if (tdm_reader_short_bytes(&r, id)) return TDM_EPROTO_MALFORMED;
  return 0;
}

int tdm_response_rewrite_metadata_id(uint8_t version, const void *body, size_t len, const void *id, size_t id_len,
                                     tdm_writer_t *out)
{
  tdm_bytes_t old;
  size_t off;
  int rc = tdm_response_peek_metadata_id(version, body, len, &old, &off);
  if (rc) return rc;
  if (id_len > UINT16_MAX) return TDM_EINVAL;
  const uint8_t *p = body;
  size_t tail = off + 2 + (size_t)old.len; /* within len: the peek read the whole old id */
  tdm_writer_raw(out, p, off);
  tdm_writer_short_bytes(out, id, id_len);
  tdm_writer_raw(out, p + tail, len - tail);
  return tdm_writer_error(out);
}

int tdm_response_peek_rows_applied(uint8_t version, const void *body, size_t len, tdm_response_applied_t *out)
{
  tdm_reader_t r;
  int32_t kind, rows;
  tdm_response_metadata_t m;
  tdm_response_column_t first;
  tdm_bytes_t cell;
  size_t pos = 0;
  *out = TDM_RESPONSE_APPLIED_NONE;
  tdm_reader_init(&r, body, len);
  if (tdm_reader_int(&r, &kind) || !kind_known(kind)) return TDM_EPROTO_MALFORMED;
  if (kind != TDM_RESULT_ROWS) return 0;
  if (tdm_response_metadata_read(&r, version, TDM_RESPONSE_META_ROWS, &m, NULL)) return TDM_EPROTO_MALFORMED;
  if (m.columns_count == 0) return 0;
  if (m.flags & TDM_RFLAG_NO_METADATA) {
    *out = TDM_RESPONSE_APPLIED_UNKNOWN;
    return 0;
  }
  if (tdm_response_column_next(&m, &pos, &first) != 1) return TDM_EPROTO_MALFORMED;
  if (!tdm_str_eq_cstr(first.name, "[applied]") || first.type.id != TDM_CQLTYPE_BOOLEAN) return 0;
  if (tdm_reader_int(&r, &rows) || rows < 0) return TDM_EPROTO_MALFORMED;
  *out = TDM_RESPONSE_APPLIED_UNKNOWN;
  if (rows == 0) return 0;
  if (tdm_reader_bytes(&r, &cell)) return TDM_EPROTO_MALFORMED;
  if (cell.len >= 1) *out = cell.ptr[0] ? TDM_RESPONSE_APPLIED_TRUE : TDM_RESPONSE_APPLIED_FALSE;
  return 0;
}

int tdm_response_strip_prefix(uint8_t version, uint8_t frame_flags, const void *body, size_t len,
                              tdm_response_prefix_t *out)
{
  tdm_reader_t r;
  memset(out, 0, sizeof(*out));
  tdm_reader_init(&r, body, len);
  if ((frame_flags & TDM_FLAG_TRACING) && tdm_reader_uuid(&r, &out->tracing_id)) return TDM_EPROTO_MALFORMED;
  /* Warnings and custom payloads exist from v4 on; in v3 those flag bits carry nothing. */
  if (version >= TDM_PROTO_V4 && (frame_flags & TDM_FLAG_WARNING)) {
    uint16_t n;
    tdm_str_t s;
    if (tdm_reader_short(&r, &n)) return TDM_EPROTO_MALFORMED;
    size_t start = r.pos;
    for (uint16_t i = 0; i < n; i++)
      if (tdm_reader_string(&r, &s)) return TDM_EPROTO_MALFORMED;
    out->warnings.count = n;
    out->warnings.raw = n ? r.buf + start : NULL;
    out->warnings.raw_len = r.pos - start;
  }
  if (version >= TDM_PROTO_V4 && (frame_flags & TDM_FLAG_CUSTOM_PAYLOAD)) {
    size_t start = r.pos;
    if (tdm_reader_skip_bytes_map(&r)) return TDM_EPROTO_MALFORMED;
    out->custom_payload = r.buf + start;
    out->custom_payload_len = r.pos - start;
  }
  out->message_offset = r.pos;
  return 0;
}
