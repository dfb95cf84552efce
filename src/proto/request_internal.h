/* Field readers shared by the request_*.c files: tdm_reader_t getters that also name the defect, so a
 * PROTOCOL_ERROR can say "negative length of query string" rather than "malformed". Static inline on
 * purpose: private to src/proto/request*.c, no cross-file symbols. Never include it from elsewhere. */
#ifndef TANDEM_SRC_PROTO_REQUEST_INTERNAL_H
#define TANDEM_SRC_PROTO_REQUEST_INTERNAL_H

#include <tandem/proto/request.h>

/* Reason phrases built from a field name by literal concatenation; all are static strings. */
#define TDM__REQUEST_TRUNC(field) field " truncated"
#define TDM__REQUEST_LONG(field)  field " exceeds the body"
#define TDM__REQUEST_NEG(field)   "negative length of " field

static inline int tdm__request_fail(const char **why, const char *reason)
{
  if (why) *why = reason;
  return TDM_EPROTO_MALFORMED;
}

static inline int tdm__request_u8(tdm_reader_t *r, uint8_t *v, const char **why, const char *trunc)
{
  return tdm_reader_byte(r, v) ? tdm__request_fail(why, trunc) : 0;
}

static inline int tdm__request_u16(tdm_reader_t *r, uint16_t *v, const char **why, const char *trunc)
{
  return tdm_reader_short(r, v) ? tdm__request_fail(why, trunc) : 0;
}

static inline int tdm__request_i32(tdm_reader_t *r, int32_t *v, const char **why, const char *trunc)
{
  return tdm_reader_int(r, v) ? tdm__request_fail(why, trunc) : 0;
}

/* [long string]: distinguishes a missing length, a negative one and one past the end. */
static inline int tdm__request_long_string(tdm_reader_t *r, tdm_str_t *out, const char **why, const char *trunc,
                                       const char *neg, const char *toolong)
{
  size_t start = r->pos;
  int32_t n;
  if (tdm_reader_int(r, &n)) return tdm__request_fail(why, trunc);
  r->pos = start;
  if (n < 0) return tdm__request_fail(why, neg);
  if (tdm_reader_long_string(r, out)) return tdm__request_fail(why, toolong);
  return 0;
}
#define TDM__REQUEST_LONG_STRING(r, out, why, field) \
  tdm__request_long_string((r), (out), (why), TDM__REQUEST_TRUNC(field), TDM__REQUEST_NEG(field), \
                           TDM__REQUEST_LONG(field))

/* [string] and [short bytes]: the length cannot be negative, only missing or too long. */
static inline int tdm__request_string(tdm_reader_t *r, tdm_str_t *out, const char **why, const char *trunc,
                                  const char *toolong)
{
  if (tdm_reader_left(r) < 2) return tdm__request_fail(why, trunc);
  return tdm_reader_string(r, out) ? tdm__request_fail(why, toolong) : 0;
}
#define TDM__REQUEST_STRING(r, out, why, field) \
  tdm__request_string((r), (out), (why), TDM__REQUEST_TRUNC(field), TDM__REQUEST_LONG(field))

static inline int tdm__request_short_bytes(tdm_reader_t *r, tdm_bytes_t *out, const char **why, const char *trunc,
                                       const char *toolong)
{
  if (tdm_reader_left(r) < 2) return tdm__request_fail(why, trunc);
  return tdm_reader_short_bytes(r, out) ? tdm__request_fail(why, toolong) : 0;
}
#define TDM__REQUEST_SHORT_BYTES(r, out, why, field) \
  tdm__request_short_bytes((r), (out), (why), TDM__REQUEST_TRUNC(field), TDM__REQUEST_LONG(field))

/* [value]: -1 null and -2 unset are legal, anything lower is not. */
static inline int tdm__request_value(tdm_reader_t *r, tdm_bytes_t *out, const char **why)
{
  size_t start = r->pos;
  int32_t n;
  if (tdm_reader_int(r, &n)) return tdm__request_fail(why, "value truncated");
  r->pos = start;
  if (n < -2) return tdm__request_fail(why, "value length below -2");
  if (tdm_reader_value(r, out)) return tdm__request_fail(why, "value exceeds the body");
  return 0;
}

/* Skips `count` values (each after a [string] name when `named`). The count is checked against the
 * bytes left first (a value takes at least 4 bytes), so a huge count fails at once. */
static inline int tdm__request_skip_values(tdm_reader_t *r, uint16_t count, bool named, const char **why)
{
  size_t min = named ? 6 : 4;
  if ((size_t)count * min > tdm_reader_left(r)) return tdm__request_fail(why, "value count exceeds the body");
  for (uint16_t i = 0; i < count; i++) {
    tdm_str_t name;
    tdm_bytes_t v;
    if (named && TDM__REQUEST_STRING(r, &name, why, "value name")) return TDM_EPROTO_MALFORMED;
    if (tdm__request_value(r, &v, why)) return TDM_EPROTO_MALFORMED;
  }
  return 0;
}

static inline int tdm__request_check_end(const tdm_reader_t *r, const char **why)
{
  return tdm_reader_left(r) ? tdm__request_fail(why, "trailing bytes after the message") : 0;
}

static inline int tdm__request_check_version(uint8_t version, const char **why)
{
  if (tdm_request_version_ok(version)) return 0;
  if (why) *why = "unsupported protocol version";
  return TDM_EPROTO_VERSION;
}

/* Records TDM_EINVAL in the writer (sticky) and returns the writer's first error. */
static inline int tdm__request_invalid(tdm_writer_t *w)
{
  if (!w->err) w->err = TDM_EINVAL;
  return w->err;
}

#endif
