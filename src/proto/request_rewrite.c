/* Rewrites of request bodies for a backend leg: EXECUTE with the TARGET's prepared id (and v5
 * result_metadata_id), BATCH with every prepared child id mapped, and a v5/DSE_V2 QUERY/PREPARE/BATCH
 * given the client's keyspace. Each decodes (validates) the whole body first, then copies the spans it
 * does not change byte for byte, so only the named fields differ in the output. */
#include "request_internal.h"

/* Appends body[from..to). */
static void copy_span(tdm_writer_t *out, const uint8_t *body, size_t from, size_t to)
{
  TDM_ASSERT(from <= to);
  tdm_writer_raw(out, body + from, to - from);
}

int tdm_request_rewrite_execute_id(uint8_t version, const void *body, size_t len, const void *new_id,
                                   size_t new_id_len, const void *new_metadata_id, size_t new_metadata_id_len,
                                   tdm_writer_t *out, const char **why)
{
  tdm_execute_t e;
  int err = tdm_request_decode_execute(version, body, len, &e, why);
  if (err) return err;
  if (new_id_len > UINT16_MAX || (new_metadata_id && new_metadata_id_len > UINT16_MAX)) {
    if (why) *why = "prepared id longer than 65535 bytes";
    return tdm__request_invalid(out);
  }
  const uint8_t *b = body;
  size_t rest = e.id_offset + (size_t)e.id.len;
  tdm_writer_short_bytes(out, new_id, new_id_len);
  if (e.has_metadata_id) {
    if (new_metadata_id)
      tdm_writer_short_bytes(out, new_metadata_id, new_metadata_id_len);
    else
      tdm_writer_short_bytes(out, e.result_metadata_id.ptr, (size_t)e.result_metadata_id.len);
    rest = e.metadata_id_offset + (size_t)e.result_metadata_id.len;
  }
  copy_span(out, b, rest, len);
  return tdm_writer_error(out);
}

int tdm_request_rewrite_batch_ids(uint8_t version, const void *body, size_t len, tdm_batch_id_map_fn map,
                                  void *ctx, tdm_writer_t *out, const char **why)
{
  tdm_batch_t batch;
  int err = tdm_request_decode_batch(version, body, len, &batch, why);
  if (err) return err;
  const uint8_t *b = body;
  size_t copied = 0; /* body[0..copied) has been written */
  tdm_batch_iter_t it;
  tdm_batch_child_t c;
  tdm_batch_iter_init(&it, &batch);
  while ((err = tdm_batch_next_child(&it, &c)) > 0) {
    if (c.kind != TDM_REQUEST_BATCH_KIND_PREPARED) continue;
    tdm_bytes_t id = c.id;
    if ((err = map(ctx, &c, &id)) < 0) return err;
    if (id.len < 0 || id.len > UINT16_MAX || (id.len > 0 && !id.ptr)) {
      if (why) *why = "mapped prepared id is invalid";
      return tdm__request_invalid(out);
    }
    copy_span(out, b, copied, c.id_offset - 2);
    tdm_writer_short_bytes(out, id.ptr, (size_t)id.len);
    copied = c.id_offset + (size_t)c.id.len;
  }
  TDM_ASSERT(err == 0); /* the batch was validated above */
  copy_span(out, b, copied, len);
  return tdm_writer_error(out);
}

/* Writes body with flags |= flag_bit at flags_offset and [string] keyspace at ks_offset. */
static int insert_keyspace(tdm_writer_t *out, const uint8_t *body, size_t len, size_t flags_offset,
                           uint32_t flags, uint32_t flag_bit, size_t ks_offset, tdm_str_t keyspace)
{
  copy_span(out, body, 0, flags_offset);
  tdm_writer_int(out, (int32_t)(flags | flag_bit));
  copy_span(out, body, flags_offset + 4, ks_offset);
  tdm_writer_string(out, keyspace);
  copy_span(out, body, ks_offset, len);
  return tdm_writer_error(out);
}

int tdm_request_add_keyspace(uint8_t version, uint8_t opcode, const void *body, size_t len, tdm_str_t keyspace,
                             tdm_writer_t *out, const char **why)
{
  int err;
  if (!tdm_proto_has_request_keyspace(version)) {
    if (why) *why = "protocol version has no per-request keyspace";
    return TDM_EINVAL;
  }
  if (keyspace.len > UINT16_MAX) {
    if (why) *why = "keyspace longer than 65535 bytes";
    return TDM_EINVAL;
  }
  const char *has_ks = "request already names a keyspace";
  switch (opcode) {
  case TDM_OP_QUERY: {
    tdm_query_t q;
    if ((err = tdm_request_decode_query(version, body, len, &q, why))) return err;
    if (q.params.flags & TDM_QFLAG_WITH_KEYSPACE) break;
    return insert_keyspace(out, body, len, q.params.flags_offset, q.params.flags, TDM_QFLAG_WITH_KEYSPACE,
                           q.params.keyspace_offset, keyspace);
  }
  case TDM_OP_PREPARE: {
    tdm_prepare_t p;
    if ((err = tdm_request_decode_prepare(version, body, len, &p, why))) return err;
    if (p.flags & TDM_PFLAG_WITH_KEYSPACE) break;
    return insert_keyspace(out, body, len, p.flags_offset, p.flags, TDM_PFLAG_WITH_KEYSPACE, p.keyspace_offset,
                           keyspace);
  }
  case TDM_OP_BATCH: {
    tdm_batch_t bt;
    if ((err = tdm_request_decode_batch(version, body, len, &bt, why))) return err;
    if (bt.params.flags & TDM_QFLAG_WITH_KEYSPACE) break;
    return insert_keyspace(out, body, len, bt.params.flags_offset, bt.params.flags, TDM_QFLAG_WITH_KEYSPACE,
                           bt.params.keyspace_offset, keyspace);
  }
  default:
    has_ks = "only QUERY, PREPARE and BATCH take a keyspace";
    break;
  }
  if (why) *why = has_ks;
  return TDM_EINVAL;
}
