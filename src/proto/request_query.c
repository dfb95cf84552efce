/* QUERY, PREPARE and EXECUTE bodies: decode (borrowing, with the offsets the proxy patches) and encode.
 * QUERY = <query><params>; PREPARE = <query>[<flags>[<keyspace>]] (flags in v5/DSE_V2);
 * EXECUTE = <id>[<result_metadata_id>]<params> (metadata id in v5/DSE_V2). */
#include "request_internal.h"

int tdm_request_decode_query(uint8_t version, const void *body, size_t len, tdm_query_t *out, const char **why)
{
  int err = tdm__request_check_version(version, why);
  if (err) return err;
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  memset(out, 0, sizeof(*out));
  if (TDM__REQUEST_LONG_STRING(&r, &out->query, why, "query string")) return TDM_EPROTO_MALFORMED;
  if ((err = tdm_request_decode_params(version, TDM_OP_QUERY, &r, &out->params, why))) return err;
  return tdm__request_check_end(&r, why);
}

int tdm_request_decode_prepare(uint8_t version, const void *body, size_t len, tdm_prepare_t *out,
                               const char **why)
{
  int err = tdm__request_check_version(version, why);
  if (err) return err;
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  memset(out, 0, sizeof(*out));
  if (TDM__REQUEST_LONG_STRING(&r, &out->query, why, "query string")) return TDM_EPROTO_MALFORMED;
  out->flags_offset = r.pos;
  if (tdm_proto_has_request_keyspace(version)) {
    if (tdm_reader_uint(&r, &out->flags)) return tdm__request_fail(why, TDM__REQUEST_TRUNC("PREPARE flags"));
    if (out->flags & ~(uint32_t)TDM_PFLAG_WITH_KEYSPACE) return tdm__request_fail(why, "undefined PREPARE flags");
  }
  out->keyspace_offset = r.pos;
  if ((out->flags & TDM_PFLAG_WITH_KEYSPACE) && TDM__REQUEST_STRING(&r, &out->keyspace, why, "keyspace"))
    return TDM_EPROTO_MALFORMED;
  return tdm__request_check_end(&r, why);
}

int tdm_request_decode_execute(uint8_t version, const void *body, size_t len, tdm_execute_t *out,
                               const char **why)
{
  int err = tdm__request_check_version(version, why);
  if (err) return err;
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  memset(out, 0, sizeof(*out));
  if (TDM__REQUEST_SHORT_BYTES(&r, &out->id, why, "prepared id")) return TDM_EPROTO_MALFORMED;
  out->id_offset = 2;
  if (tdm_proto_has_metadata_id(version)) {
    out->has_metadata_id = true;
    if (TDM__REQUEST_SHORT_BYTES(&r, &out->result_metadata_id, why, "result metadata id")) return TDM_EPROTO_MALFORMED;
    out->metadata_id_offset = r.pos - (size_t)out->result_metadata_id.len;
  }
  if ((err = tdm_request_decode_params(version, TDM_OP_EXECUTE, &r, &out->params, why))) return err;
  return tdm__request_check_end(&r, why);
}

int tdm_request_encode_query(tdm_writer_t *w, uint8_t version, tdm_str_t query, const tdm_query_params_t *p)
{
  if (!tdm_request_version_ok(version)) return tdm__request_invalid(w);
  tdm_writer_long_string(w, query);
  return tdm_request_encode_params(w, version, TDM_OP_QUERY, p);
}

int tdm_request_encode_prepare(tdm_writer_t *w, uint8_t version, tdm_str_t query, const tdm_str_t *keyspace)
{
  if (!tdm_request_version_ok(version)) return tdm__request_invalid(w);
  bool flags = tdm_proto_has_request_keyspace(version);
  if (keyspace && !flags) return tdm__request_invalid(w);
  tdm_writer_long_string(w, query);
  if (flags) {
    tdm_writer_int(w, keyspace ? TDM_PFLAG_WITH_KEYSPACE : 0);
    if (keyspace) tdm_writer_string(w, *keyspace);
  }
  return tdm_writer_error(w);
}

int tdm_request_encode_execute(tdm_writer_t *w, uint8_t version, tdm_bytes_t id, tdm_bytes_t metadata_id,
                               const tdm_query_params_t *p)
{
  if (!tdm_request_version_ok(version)) return tdm__request_invalid(w);
  bool md = tdm_proto_has_metadata_id(version);
  if (id.len < 0 || (md && metadata_id.len < 0)) return tdm__request_invalid(w);
  tdm_writer_short_bytes(w, id.ptr, (size_t)id.len);
  if (md) tdm_writer_short_bytes(w, metadata_id.ptr, (size_t)metadata_id.len);
  return tdm_request_encode_params(w, version, TDM_OP_EXECUTE, p);
}
