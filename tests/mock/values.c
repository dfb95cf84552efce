/* CQL type text -> [option] bytes, and value text -> serialized bytes, for the mock's metadata, canned
 * rows and CQL literals. Everything is bounds-checked: bad text is TDM_EINVAL, never a crash. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>

#include "values.h"

typedef struct type_name_s {
  const char *name; /* CQL spelling, lower case */
  uint16_t id;      /* option id */
} type_name_t;

static const type_name_t type_names[] = {
  { "ascii", TDM_MOCK_T_ASCII },       { "bigint", TDM_MOCK_T_BIGINT },     { "blob", TDM_MOCK_T_BLOB },
  { "boolean", TDM_MOCK_T_BOOLEAN },   { "counter", TDM_MOCK_T_COUNTER },   { "decimal", TDM_MOCK_T_DECIMAL },
  { "double", TDM_MOCK_T_DOUBLE },     { "float", TDM_MOCK_T_FLOAT },       { "int", TDM_MOCK_T_INT },
  { "timestamp", TDM_MOCK_T_TIMESTAMP }, { "uuid", TDM_MOCK_T_UUID },      { "text", TDM_MOCK_T_VARCHAR },
  { "varchar", TDM_MOCK_T_VARCHAR },   { "varint", TDM_MOCK_T_VARINT },     { "timeuuid", TDM_MOCK_T_TIMEUUID },
  { "inet", TDM_MOCK_T_INET },         { "date", TDM_MOCK_T_DATE },         { "time", TDM_MOCK_T_TIME },
  { "smallint", TDM_MOCK_T_SMALLINT }, { "tinyint", TDM_MOCK_T_TINYINT },   { "duration", TDM_MOCK_T_DURATION },
};

static void put16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

tdm_mock_type_t tdm_mock_type_scalar(uint16_t id)
{
  tdm_mock_type_t t = { .id = id, .opt_len = 2 };
  put16(t.opt, id);
  return t;
}

tdm_mock_type_t tdm_mock_type_collection(uint16_t id, uint16_t key, uint16_t val)
{
  tdm_mock_type_t t = { .id = id, .key = key, .val = val, .opt_len = 4 };
  put16(t.opt, id);
  put16(t.opt + 2, key);
  if (id == TDM_MOCK_T_MAP) {
    put16(t.opt + 4, val);
    t.opt_len = 6;
  }
  return t;
}

static tdm_str_t trim(tdm_str_t s)
{
  while (s.len && isspace((unsigned char)s.ptr[0])) s.ptr++, s.len--;
  while (s.len && isspace((unsigned char)s.ptr[s.len - 1])) s.len--;
  return s;
}

static int scalar_id(tdm_str_t name, uint16_t *id)
{
  name = trim(name);
  for (size_t i = 0; i < TDM_ARRAY_SIZE(type_names); i++) {
    if (tdm_str_eq_ci(name, tdm_str_from(type_names[i].name))) {
      *id = type_names[i].id;
      return 0;
    }
  }
  return TDM_EINVAL;
}

/* Splits "outer<inner>" into outer and inner; false when s has no well-formed angle brackets. */
static bool split_generic(tdm_str_t s, tdm_str_t *outer, tdm_str_t *inner)
{
  const char *lt = memchr(s.ptr, '<', s.len);
  if (!lt || s.len < 3 || s.ptr[s.len - 1] != '>') return false;
  outer->ptr = s.ptr;
  outer->len = (size_t)(lt - s.ptr);
  inner->ptr = lt + 1;
  inner->len = s.len - outer->len - 2;
  *outer = trim(*outer);
  *inner = trim(*inner);
  return true;
}

int tdm_mock_type_parse(tdm_str_t text, tdm_mock_type_t *out)
{
  tdm_str_t s = trim(text), outer, inner;
  if (s.len == 0) return TDM_EINVAL;
  /* frozen<x> is x on the wire. */
  while (split_generic(s, &outer, &inner) && tdm_str_eq_ci(outer, TDM_STR("frozen"))) s = inner;
  uint16_t id, key, val;
  if (!split_generic(s, &outer, &inner)) {
    if (scalar_id(s, &id)) return TDM_EINVAL;
    *out = tdm_mock_type_scalar(id);
    return 0;
  }
  if (tdm_str_eq_ci(outer, TDM_STR("list")) || tdm_str_eq_ci(outer, TDM_STR("set"))) {
    if (scalar_id(inner, &key)) return TDM_EINVAL;
    *out = tdm_mock_type_collection(tdm_str_eq_ci(outer, TDM_STR("list")) ? TDM_MOCK_T_LIST : TDM_MOCK_T_SET, key, 0);
    return 0;
  }
  if (tdm_str_eq_ci(outer, TDM_STR("map"))) {
    const char *comma = memchr(inner.ptr, ',', inner.len);
    if (!comma) return TDM_EINVAL;
    tdm_str_t k = { inner.ptr, (size_t)(comma - inner.ptr) };
    tdm_str_t v = { comma + 1, inner.len - k.len - 1 };
    if (scalar_id(k, &key) || scalar_id(v, &val)) return TDM_EINVAL;
    *out = tdm_mock_type_collection(TDM_MOCK_T_MAP, key, val);
    return 0;
  }
  return TDM_EINVAL;
}

static const char *scalar_name(uint16_t id)
{
  for (size_t i = 0; i < TDM_ARRAY_SIZE(type_names); i++)
    if (type_names[i].id == id) return id == TDM_MOCK_T_VARCHAR ? "text" : type_names[i].name;
  return "custom";
}

void tdm_mock_type_name(const tdm_mock_type_t *t, char *buf, size_t cap)
{
  switch (t->id) {
  case TDM_MOCK_T_LIST: snprintf(buf, cap, "list<%s>", scalar_name(t->key)); break;
  case TDM_MOCK_T_SET: snprintf(buf, cap, "set<%s>", scalar_name(t->key)); break;
  case TDM_MOCK_T_MAP: snprintf(buf, cap, "map<%s, %s>", scalar_name(t->key), scalar_name(t->val)); break;
  default: snprintf(buf, cap, "%s", scalar_name(t->id)); break;
  }
}

/* Copies s into a NUL-terminated local buffer for the C number parsers. */
static int to_cstr(tdm_str_t s, char *buf, size_t cap)
{
  s = trim(s);
  if (s.len == 0 || s.len >= cap) return TDM_EINVAL;
  memcpy(buf, s.ptr, s.len);
  buf[s.len] = '\0';
  return 0;
}

static int parse_i64(tdm_str_t s, int64_t *out)
{
  char buf[40], *end;
  if (to_cstr(s, buf, sizeof(buf))) return TDM_EINVAL;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  if (errno || *end) return TDM_EINVAL;
  *out = v;
  return 0;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int tdm_mock_uuid_parse(tdm_str_t text, uint8_t out[16])
{
  text = trim(text);
  if (text.len != 36) return TDM_EINVAL;
  size_t o = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text.ptr[i] != '-') return TDM_EINVAL;
      i++;
      continue;
    }
    int hi = hexval(text.ptr[i]), lo = hexval(text.ptr[i + 1]);
    if (hi < 0 || lo < 0) return TDM_EINVAL;
    out[o++] = (uint8_t)(hi << 4 | lo);
    i += 2;
  }
  return 0;
}

void tdm_mock_uuid_format(const uint8_t in[16], char buf[37])
{
  static const char digits[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) buf[o++] = '-';
    buf[o++] = digits[in[i] >> 4];
    buf[o++] = digits[in[i] & 15];
  }
  buf[o] = '\0';
}

void tdm_mock_hex(const uint8_t *p, size_t n, char *buf, size_t cap)
{
  static const char digits[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < n && o + 2 < cap; i++) {
    buf[o++] = digits[p[i] >> 4];
    buf[o++] = digits[p[i] & 15];
  }
  if (cap) buf[o] = '\0';
}

void tdm_mock_md5(const void *p, size_t n, uint8_t out[16])
{
  unsigned int len = 16;
  if (EVP_Digest(p, n, out, &len, EVP_md5(), NULL) != 1) memset(out, 0, 16);
}

/* Minimal two's-complement big-endian encoding of v (varint, decimal's unscaled part). */
static void write_varint(tdm_writer_t *w, int64_t v)
{
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
  size_t start = 0;
  while (start < 7 && ((b[start] == 0x00 && !(b[start + 1] & 0x80)) || (b[start] == 0xff && (b[start + 1] & 0x80))))
    start++;
  tdm_writer_raw(w, b + start, 8 - start);
}

static int write_decimal(tdm_writer_t *w, tdm_str_t s)
{
  char buf[40], digits[40];
  if (to_cstr(s, buf, sizeof(buf))) return TDM_EINVAL;
  size_t n = 0;
  int32_t scale = 0;
  bool dot = false;
  for (const char *p = buf; *p; p++) {
    if (*p == '.' && !dot) {
      dot = true;
    } else if (isdigit((unsigned char)*p) || (p == buf && *p == '-')) {
      digits[n++] = *p;
      if (dot) scale++;
    } else {
      return TDM_EINVAL;
    }
  }
  digits[n] = '\0';
  int64_t unscaled;
  if (parse_i64(tdm_str_from(digits), &unscaled)) return TDM_EINVAL;
  tdm_writer_int(w, scale);
  write_varint(w, unscaled);
  return 0;
}

static int write_scalar(uint16_t id, tdm_str_t s, tdm_writer_t *w)
{
  int64_t v;
  char buf[64];
  switch (id) {
  case TDM_MOCK_T_ASCII:
  case TDM_MOCK_T_VARCHAR:
  case TDM_MOCK_T_CUSTOM:
    if (s.len) tdm_writer_raw(w, s.ptr, s.len); /* writer.c computes NULL + 0 on an empty writer */
    return 0;
  case TDM_MOCK_T_BIGINT:
  case TDM_MOCK_T_COUNTER:
  case TDM_MOCK_T_TIMESTAMP:
  case TDM_MOCK_T_TIME:
    if (parse_i64(s, &v)) return TDM_EINVAL;
    tdm_writer_long(w, v);
    return 0;
  case TDM_MOCK_T_INT:
  case TDM_MOCK_T_DATE:
    if (parse_i64(s, &v) || v < INT32_MIN || v > (id == TDM_MOCK_T_DATE ? (int64_t)UINT32_MAX : INT32_MAX))
      return TDM_EINVAL;
    tdm_writer_int(w, (int32_t)(uint32_t)v);
    return 0;
  case TDM_MOCK_T_SMALLINT:
    if (parse_i64(s, &v) || v < INT16_MIN || v > INT16_MAX) return TDM_EINVAL;
    tdm_writer_short(w, (uint16_t)(int16_t)v);
    return 0;
  case TDM_MOCK_T_TINYINT:
    if (parse_i64(s, &v) || v < INT8_MIN || v > INT8_MAX) return TDM_EINVAL;
    tdm_writer_byte(w, (uint8_t)(int8_t)v);
    return 0;
  case TDM_MOCK_T_VARINT:
    if (parse_i64(s, &v)) return TDM_EINVAL;
    write_varint(w, v);
    return 0;
  case TDM_MOCK_T_DECIMAL:
    return write_decimal(w, s);
  case TDM_MOCK_T_BOOLEAN:
    s = trim(s);
    if (tdm_str_eq_ci(s, TDM_STR("true")) || tdm_str_eq(s, TDM_STR("1"))) tdm_writer_byte(w, 1);
    else if (tdm_str_eq_ci(s, TDM_STR("false")) || tdm_str_eq(s, TDM_STR("0"))) tdm_writer_byte(w, 0);
    else return TDM_EINVAL;
    return 0;
  case TDM_MOCK_T_DOUBLE:
  case TDM_MOCK_T_FLOAT: {
    char *end;
    if (to_cstr(s, buf, sizeof(buf))) return TDM_EINVAL;
    double d = strtod(buf, &end);
    if (*end) return TDM_EINVAL;
    if (id == TDM_MOCK_T_FLOAT) {
      float f = (float)d;
      uint32_t u;
      memcpy(&u, &f, 4);
      tdm_writer_int(w, (int32_t)u);
    } else {
      uint64_t u;
      memcpy(&u, &d, 8);
      tdm_writer_long(w, (int64_t)u);
    }
    return 0;
  }
  case TDM_MOCK_T_UUID:
  case TDM_MOCK_T_TIMEUUID: {
    uint8_t u[16];
    if (tdm_mock_uuid_parse(s, u)) return TDM_EINVAL;
    tdm_writer_raw(w, u, 16);
    return 0;
  }
  case TDM_MOCK_T_INET: {
    uint8_t a[16];
    if (to_cstr(s, buf, sizeof(buf))) return TDM_EINVAL;
    if (inet_pton(AF_INET, buf, a) == 1) tdm_writer_raw(w, a, 4);
    else if (inet_pton(AF_INET6, buf, a) == 1) tdm_writer_raw(w, a, 16);
    else return TDM_EINVAL;
    return 0;
  }
  case TDM_MOCK_T_BLOB: {
    s = trim(s);
    if (s.len < 2 || s.ptr[0] != '0' || (s.ptr[1] != 'x' && s.ptr[1] != 'X')) {
      if (s.len) tdm_writer_raw(w, s.ptr, s.len); /* not hex: the text's bytes */
      return 0;
    }
    if (s.len % 2) return TDM_EINVAL;
    for (size_t i = 2; i < s.len; i += 2) {
      int hi = hexval(s.ptr[i]), lo = hexval(s.ptr[i + 1]);
      if (hi < 0 || lo < 0) return TDM_EINVAL;
      tdm_writer_byte(w, (uint8_t)(hi << 4 | lo));
    }
    return 0;
  }
  default:
    return TDM_EINVAL;
  }
}

/* One collection element as [int length][bytes]. */
static int write_element(uint16_t id, tdm_str_t s, tdm_writer_t *w)
{
  size_t at = tdm_writer_reserve_int(w);
  size_t start = w->len;
  int rc = write_scalar(id, s, w);
  if (rc) return rc;
  tdm_writer_patch_int(w, at, (int32_t)(w->len - start));
  return 0;
}

static int write_collection(const tdm_mock_type_t *t, tdm_str_t s, tdm_writer_t *w)
{
  size_t count_at = tdm_writer_reserve_int(w);
  int32_t n = 0;
  s = trim(s);
  size_t i = 0;
  while (s.len && i <= s.len) {
    const char *bar = memchr(s.ptr + i, '|', s.len - i);
    size_t end = bar ? (size_t)(bar - s.ptr) : s.len;
    tdm_str_t item = { s.ptr + i, end - i };
    if (t->id == TDM_MOCK_T_MAP) {
      const char *colon = memchr(item.ptr, ':', item.len);
      if (!colon) return TDM_EINVAL;
      tdm_str_t k = { item.ptr, (size_t)(colon - item.ptr) };
      tdm_str_t v = { colon + 1, item.len - k.len - 1 };
      if (write_element(t->key, trim(k), w) || write_element(t->val, trim(v), w)) return TDM_EINVAL;
    } else if (write_element(t->key, trim(item), w)) {
      return TDM_EINVAL;
    }
    n++;
    i = end + 1;
  }
  tdm_writer_patch_int(w, count_at, n);
  return 0;
}

int tdm_mock_value_from_text(const tdm_mock_type_t *t, tdm_str_t text, tdm_writer_t *w)
{
  if (t->id == TDM_MOCK_T_LIST || t->id == TDM_MOCK_T_SET || t->id == TDM_MOCK_T_MAP)
    return write_collection(t, text, w);
  return write_scalar(t->id, text, w);
}
