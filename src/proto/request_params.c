/* Query parameters codec shared by QUERY, EXECUTE and the tail of BATCH, per protocol version:
 * [byte] flags in v2-v4, [int] in v5/DSE; keyspace (0x80) in v5/DSE_V2; now_in_seconds (0x100) in v5;
 * DSE continuous paging ints after everything else. Flags a version does not define are refused, so the
 * layout of every accepted body is known to the last byte. */
#include "request_internal.h"

#define QF_DSE_BITS (TDM_QFLAG_DSE_PAGE_SIZE_BYTES | TDM_QFLAG_DSE_CONTINUOUS_PAGING)
/* Bits below 0x10 are QUERY/EXECUTE-only; the spec requires them clear on a BATCH. */
#define QF_QUERY_ONLY (TDM_QFLAG_VALUES | TDM_QFLAG_SKIP_METADATA | TDM_QFLAG_PAGE_SIZE | TDM_QFLAG_PAGING_STATE)

bool tdm_request_version_ok(uint8_t v)
{
  return v == TDM_PROTO_V2 || v == TDM_PROTO_V3 || v == TDM_PROTO_V4 || v == TDM_PROTO_V5 ||
         v == TDM_PROTO_DSE_V1 || v == TDM_PROTO_DSE_V2;
}

/* Flags each version defines for QUERY/EXECUTE (v2 predates default timestamp and named values). */
static uint32_t query_flags_defined(uint8_t v)
{
  switch (v) {
  case TDM_PROTO_V2: return 0x1f;
  case TDM_PROTO_V3:
  case TDM_PROTO_V4: return 0x7f;
  case TDM_PROTO_V5: return 0x1ff;
  case TDM_PROTO_DSE_V1: return 0x7f | QF_DSE_BITS;
  case TDM_PROTO_DSE_V2: return 0xff | QF_DSE_BITS;
  default: return 0;
  }
}

/* Flags each version defines for BATCH (0x40 is defined but refused separately; v2 has no flags). */
static uint32_t batch_flags_defined(uint8_t v)
{
  uint32_t base = TDM_QFLAG_SERIAL_CONSISTENCY | TDM_QFLAG_DEFAULT_TIMESTAMP | TDM_QFLAG_NAMES_FOR_VALUES;
  switch (v) {
  case TDM_PROTO_V3:
  case TDM_PROTO_V4:
  case TDM_PROTO_DSE_V1: return base;
  case TDM_PROTO_V5: return base | TDM_QFLAG_WITH_KEYSPACE | TDM_QFLAG_NOW_IN_SECONDS;
  case TDM_PROTO_DSE_V2: return base | TDM_QFLAG_WITH_KEYSPACE;
  default: return 0;
  }
}

/* Checks flags for (version, opcode); returns the reason they are refused, or NULL. */
static const char *flags_defect(uint8_t version, uint8_t opcode, uint32_t flags)
{
  if (opcode == TDM_OP_BATCH) {
    if (flags & QF_QUERY_ONLY) return "BATCH flags 0x01-0x08 must be zero";
    if (flags & TDM_QFLAG_NAMES_FOR_VALUES) return "BATCH flag 0x40 (names for values) is not supported";
    if (flags & ~batch_flags_defined(version)) return "BATCH flags undefined for this protocol version";
    return NULL;
  }
  if (flags & ~query_flags_defined(version)) return "query flags undefined for this protocol version";
  return NULL;
}

/* Highest consistency code Cassandra accepts: NODE_LOCAL (0x000B, Cassandra 4.0+; not in opcodes.h). */
#define CL_CODE_MAX 0x000B

static int read_consistency(tdm_reader_t *r, uint16_t *cl, const char **why, const char *trunc)
{
  if (tdm__request_u16(r, cl, why, trunc)) return TDM_EPROTO_MALFORMED;
  if (*cl > CL_CODE_MAX) return tdm__request_fail(why, "unknown consistency level");
  return 0;
}

/* The optional fields after the values, in wire order. */
static int read_tail(uint8_t version, tdm_reader_t *r, tdm_query_params_t *p, const char **why)
{
  uint32_t f = p->flags;
  if ((f & TDM_QFLAG_PAGE_SIZE) && tdm__request_i32(r, &p->page_size, why, TDM__REQUEST_TRUNC("page size")))
    return TDM_EPROTO_MALFORMED;
  if (f & TDM_QFLAG_PAGING_STATE) {
    size_t start = r->pos;
    int32_t n;
    if (tdm__request_i32(r, &n, why, TDM__REQUEST_TRUNC("paging state"))) return TDM_EPROTO_MALFORMED;
    r->pos = start;
    if (tdm_reader_bytes(r, &p->paging_state)) return tdm__request_fail(why, TDM__REQUEST_LONG("paging state"));
  }
  if ((f & TDM_QFLAG_SERIAL_CONSISTENCY) &&
      read_consistency(r, &p->serial_consistency, why, TDM__REQUEST_TRUNC("serial consistency")))
    return TDM_EPROTO_MALFORMED;
  if (f & TDM_QFLAG_DEFAULT_TIMESTAMP) {
    if (tdm_reader_long(r, &p->default_timestamp))
      return tdm__request_fail(why, TDM__REQUEST_TRUNC("default timestamp"));
    if (p->default_timestamp == INT64_MIN) return tdm__request_fail(why, "default timestamp out of range");
  }
  p->keyspace_offset = r->pos;
  if ((f & TDM_QFLAG_WITH_KEYSPACE) && TDM__REQUEST_STRING(r, &p->keyspace, why, "keyspace"))
    return TDM_EPROTO_MALFORMED;
  if ((f & TDM_QFLAG_NOW_IN_SECONDS) &&
      tdm__request_i32(r, &p->now_in_seconds, why, TDM__REQUEST_TRUNC("now_in_seconds")))
    return TDM_EPROTO_MALFORMED;
  if (f & TDM_QFLAG_DSE_CONTINUOUS_PAGING) {
    const char *t = TDM__REQUEST_TRUNC("continuous paging options");
    if (tdm__request_i32(r, &p->max_pages, why, t) || tdm__request_i32(r, &p->pages_per_second, why, t))
      return TDM_EPROTO_MALFORMED;
    if (version == TDM_PROTO_DSE_V2 && tdm__request_i32(r, &p->next_pages, why, t)) return TDM_EPROTO_MALFORMED;
  }
  return 0;
}

int tdm_request_decode_params(uint8_t version, uint8_t opcode, tdm_reader_t *r, tdm_query_params_t *p,
                              const char **why)
{
  int err = tdm__request_check_version(version, why);
  if (err) return err;
  memset(p, 0, sizeof(*p));
  p->paging_state.len = -1;
  if (read_consistency(r, &p->consistency, why, TDM__REQUEST_TRUNC("consistency"))) return TDM_EPROTO_MALFORMED;
  p->flags_offset = r->pos;
  if (opcode == TDM_OP_BATCH && version == TDM_PROTO_V2) {
    /* v2 BATCH ends with its consistency: no flags, nothing optional. */
    p->keyspace_offset = p->end_offset = r->pos;
    return 0;
  }
  if (tdm_proto_int_flags(version)) {
    if (tdm_reader_uint(r, &p->flags)) return tdm__request_fail(why, TDM__REQUEST_TRUNC("flags"));
    p->flags_size = 4;
  } else {
    uint8_t b;
    if (tdm__request_u8(r, &b, why, TDM__REQUEST_TRUNC("flags"))) return TDM_EPROTO_MALFORMED;
    p->flags = b;
    p->flags_size = 1;
  }
  const char *defect = flags_defect(version, opcode, p->flags);
  if (defect) return tdm__request_fail(why, defect);

  p->values_offset = r->pos;
  if (p->flags & TDM_QFLAG_VALUES) {
    if (tdm__request_u16(r, &p->values_count, why, TDM__REQUEST_TRUNC("value count"))) return TDM_EPROTO_MALFORMED;
    p->values_offset = r->pos;
    if (tdm__request_skip_values(r, p->values_count, (p->flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0, why))
      return TDM_EPROTO_MALFORMED;
    p->values_len = r->pos - p->values_offset;
    p->values = p->values_len ? r->buf + p->values_offset : NULL;
  }
  if (read_tail(version, r, p, why)) return TDM_EPROTO_MALFORMED;
  p->end_offset = r->pos;
  return 0;
}

void tdm_request_write_value(tdm_writer_t *w, tdm_bytes_t v)
{
  if (v.len < -2) {
    tdm__request_invalid(w);
    return;
  }
  tdm_writer_int(w, v.len);
  if (v.len > 0) tdm_writer_raw(w, v.ptr, (size_t)v.len);
}

int tdm_request_encode_params(tdm_writer_t *w, uint8_t version, uint8_t opcode, const tdm_query_params_t *p)
{
  if (!tdm_request_version_ok(version)) return tdm__request_invalid(w);
  bool batch = opcode == TDM_OP_BATCH;
  if (batch && version == TDM_PROTO_V2) {
    if (p->flags) return tdm__request_invalid(w);
    tdm_writer_short(w, p->consistency);
    return tdm_writer_error(w);
  }
  uint32_t f = p->flags;
  if (flags_defect(version, opcode, f)) return tdm__request_invalid(w);
  if (!(f & TDM_QFLAG_VALUES) && (p->values_count || p->values_len)) return tdm__request_invalid(w);
  if (p->values_len && !p->values) return tdm__request_invalid(w);
  if ((f & TDM_QFLAG_PAGING_STATE) && p->paging_state.len > 0 && !p->paging_state.ptr) return tdm__request_invalid(w);

  tdm_writer_short(w, p->consistency);
  if (tdm_proto_int_flags(version))
    tdm_writer_int(w, (int32_t)f);
  else
    tdm_writer_byte(w, (uint8_t)f);
  if (f & TDM_QFLAG_VALUES) {
    tdm_writer_short(w, p->values_count);
    tdm_writer_raw(w, p->values, p->values_len);
  }
  if (f & TDM_QFLAG_PAGE_SIZE) tdm_writer_int(w, p->page_size);
  if (f & TDM_QFLAG_PAGING_STATE) tdm_writer_bytes(w, p->paging_state.ptr, p->paging_state.len);
  if (f & TDM_QFLAG_SERIAL_CONSISTENCY) tdm_writer_short(w, p->serial_consistency);
  if (f & TDM_QFLAG_DEFAULT_TIMESTAMP) tdm_writer_long(w, p->default_timestamp);
  if (f & TDM_QFLAG_WITH_KEYSPACE) tdm_writer_string(w, p->keyspace);
  if (f & TDM_QFLAG_NOW_IN_SECONDS) tdm_writer_int(w, p->now_in_seconds);
  if (f & TDM_QFLAG_DSE_CONTINUOUS_PAGING) {
    tdm_writer_int(w, p->max_pages);
    tdm_writer_int(w, p->pages_per_second);
    if (version == TDM_PROTO_DSE_V2) tdm_writer_int(w, p->next_pages);
  }
  return tdm_writer_error(w);
}

void tdm_values_iter_init(tdm_values_iter_t *it, const uint8_t *values, size_t len, uint16_t count, bool named)
{
  tdm_reader_init(&it->r, values, len);
  it->left = count;
  it->named = named;
}

int tdm_values_next(tdm_values_iter_t *it, tdm_str_t *name, tdm_bytes_t *value)
{
  if (!it->left) return 0;
  *name = (tdm_str_t){ 0 };
  if (it->named && tdm_reader_string(&it->r, name)) return TDM_EPROTO_MALFORMED;
  if (tdm_reader_value(&it->r, value)) return TDM_EPROTO_MALFORMED;
  it->left--;
  return 1;
}
