/* CQL [option] types: recursive validation with a depth limit, allocation-free walking of nested
 * types, formatting as CQL text, and CQL text parsed into an [option]. Invariant of every tdm_cqltype_t
 * this file hands out: its bytes were validated by read_option(), so walking them cannot leave them. */
#include <tandem/proto/cqltype.h>

#include <ctype.h>

/* ---- validation ---- */

static bool is_native(uint16_t id) { return id >= TDM_CQLTYPE_ASCII && id <= TDM_CQLTYPE_DURATION; }

/* Reads one option at depth `depth` (1 = top level). On failure the cursor may have moved; the public
 * entry point restores it. */
static int read_option(tdm_reader_t *r, unsigned depth)
{
  uint16_t id, n;
  tdm_str_t s;
  if (depth > TDM_CQLTYPE_MAX_DEPTH || tdm_reader_short(r, &id)) return TDM_EPROTO_MALFORMED;
  if (is_native(id)) return 0;
  switch (id) {
  case TDM_CQLTYPE_CUSTOM:
    return tdm_reader_string(r, &s);
  case TDM_CQLTYPE_LIST:
  case TDM_CQLTYPE_SET:
    return read_option(r, depth + 1);
  case TDM_CQLTYPE_MAP:
    if (read_option(r, depth + 1)) return TDM_EPROTO_MALFORMED;
    return read_option(r, depth + 1);
  case TDM_CQLTYPE_UDT:
    if (tdm_reader_string(r, &s) || tdm_reader_string(r, &s) || tdm_reader_short(r, &n))
      return TDM_EPROTO_MALFORMED;
    /* Every field takes at least 4 bytes (empty name + id): refuse counts the body cannot hold. */
    if ((size_t)n * 4 > tdm_reader_left(r)) return TDM_EPROTO_MALFORMED;
    for (uint16_t i = 0; i < n; i++)
      if (tdm_reader_string(r, &s) || read_option(r, depth + 1)) return TDM_EPROTO_MALFORMED;
    return 0;
  case TDM_CQLTYPE_TUPLE:
    if (tdm_reader_short(r, &n) || (size_t)n * 2 > tdm_reader_left(r)) return TDM_EPROTO_MALFORMED;
    for (uint16_t i = 0; i < n; i++)
      if (read_option(r, depth + 1)) return TDM_EPROTO_MALFORMED;
    return 0;
  default:
    return TDM_EPROTO_MALFORMED;
  }
}

int tdm_cqltype_read(tdm_reader_t *r, tdm_cqltype_t *out)
{
  size_t start = r->pos;
  if (read_option(r, 1)) {
    r->pos = start;
    return TDM_EPROTO_MALFORMED;
  }
  out->raw = r->buf + start;
  out->len = r->pos - start;
  out->id = (uint16_t)((out->raw[0] << 8) | out->raw[1]);
  return 0;
}

int tdm_cqltype_from_raw(const void *raw, size_t len, tdm_cqltype_t *out)
{
  tdm_reader_t r;
  tdm_reader_init(&r, raw, len);
  if (tdm_cqltype_read(&r, out) || tdm_reader_left(&r) != 0) return TDM_EPROTO_MALFORMED;
  return 0;
}

/* Two-byte options for every native id, indexed by id. */
static const uint8_t native_raw[TDM_CQLTYPE_DURATION + 1][2] = {
  { 0, 0x00 }, { 0, 0x01 }, { 0, 0x02 }, { 0, 0x03 }, { 0, 0x04 }, { 0, 0x05 }, { 0, 0x06 }, { 0, 0x07 },
  { 0, 0x08 }, { 0, 0x09 }, { 0, 0x0A }, { 0, 0x0B }, { 0, 0x0C }, { 0, 0x0D }, { 0, 0x0E }, { 0, 0x0F },
  { 0, 0x10 }, { 0, 0x11 }, { 0, 0x12 }, { 0, 0x13 }, { 0, 0x14 }, { 0, 0x15 },
};

int tdm_cqltype_native(uint16_t id, tdm_cqltype_t *out)
{
  if (!is_native(id)) return TDM_EINVAL;
  out->id = id;
  out->raw = native_raw[id];
  out->len = 2;
  return 0;
}

/* ---- walking ---- */

void tdm_cqltype_iter_init(tdm_cqltype_iter_t *it, const tdm_cqltype_t *t)
{
  uint16_t n = 0;
  tdm_str_t s;
  tdm_reader_init(&it->r, t->raw, t->len);
  it->id = t->id;
  it->left = 0;
  if (tdm_reader_skip(&it->r, 2)) return;
  switch (t->id) {
  case TDM_CQLTYPE_LIST:
  case TDM_CQLTYPE_SET:
    it->left = 1;
    break;
  case TDM_CQLTYPE_MAP:
    it->left = 2;
    break;
  case TDM_CQLTYPE_TUPLE:
    if (tdm_reader_short(&it->r, &n) == 0) it->left = n;
    break;
  case TDM_CQLTYPE_UDT:
    if (tdm_reader_string(&it->r, &s) == 0 && tdm_reader_string(&it->r, &s) == 0 && tdm_reader_short(&it->r, &n) == 0)
      it->left = n;
    break;
  default:
    break;
  }
}

int tdm_cqltype_next(tdm_cqltype_iter_t *it, tdm_cqltype_t *out, tdm_str_t *field_name)
{
  tdm_str_t name = { 0 };
  if (it->left == 0) return 0;
  if (it->id == TDM_CQLTYPE_UDT && tdm_reader_string(&it->r, &name)) return TDM_EPROTO_MALFORMED;
  if (tdm_cqltype_read(&it->r, out)) return TDM_EPROTO_MALFORMED;
  if (field_name) *field_name = name;
  it->left--;
  return 1;
}

size_t tdm_cqltype_child_count(const tdm_cqltype_t *t)
{
  tdm_cqltype_iter_t it;
  tdm_cqltype_iter_init(&it, t);
  return it.left;
}

int tdm_cqltype_child(const tdm_cqltype_t *t, size_t i, tdm_cqltype_t *out, tdm_str_t *field_name)
{
  tdm_cqltype_iter_t it;
  tdm_cqltype_iter_init(&it, t);
  if (i >= it.left) return TDM_EINVAL;
  for (size_t k = 0; k <= i; k++)
    if (tdm_cqltype_next(&it, out, field_name) != 1) return TDM_EPROTO_MALFORMED;
  return 0;
}

int tdm_cqltype_custom_class(const tdm_cqltype_t *t, tdm_str_t *cls)
{
  tdm_reader_t r;
  if (t->id != TDM_CQLTYPE_CUSTOM) return TDM_EINVAL;
  tdm_reader_init(&r, t->raw, t->len);
  if (tdm_reader_skip(&r, 2) || tdm_reader_string(&r, cls)) return TDM_EPROTO_MALFORMED;
  return 0;
}

int tdm_cqltype_udt_name(const tdm_cqltype_t *t, tdm_str_t *keyspace, tdm_str_t *name)
{
  tdm_reader_t r;
  if (t->id != TDM_CQLTYPE_UDT) return TDM_EINVAL;
  tdm_reader_init(&r, t->raw, t->len);
  if (tdm_reader_skip(&r, 2) || tdm_reader_string(&r, keyspace) || tdm_reader_string(&r, name))
    return TDM_EPROTO_MALFORMED;
  return 0;
}

const char *tdm_cqltype_id_name(uint16_t id)
{
  switch (id) {
#define TDM_CQLTYPE_NAME(name, val, text) case (val): return text;
  TDM_CQLTYPE_MAP(TDM_CQLTYPE_NAME)
#undef TDM_CQLTYPE_NAME
  default: return "unknown";
  }
}

/* ---- formatting ---- */

/* Bounded text sink: keeps appending what fits, remembers that something did not. */
typedef struct fmt_s {
  char *buf;     /* destination */
  size_t cap;    /* its size, NUL included */
  size_t len;    /* characters written (excluding the NUL) */
  bool overflow; /* something was cut */
} fmt_t;

static void fmt_put(fmt_t *f, const char *p, size_t n)
{
  if (f->cap == 0) {
    f->overflow = f->overflow || n > 0;
    return;
  }
  size_t room = f->cap - 1 - f->len;
  if (n > room) {
    n = room;
    f->overflow = true;
  }
  memcpy(f->buf + f->len, p, n);
  f->len += n;
  f->buf[f->len] = '\0';
}

static void fmt_cstr(fmt_t *f, const char *s) { fmt_put(f, s, strlen(s)); }

static void format_type(fmt_t *f, const tdm_cqltype_t *t)
{
  tdm_str_t a, b;
  if (t->id == TDM_CQLTYPE_CUSTOM) {
    if (tdm_cqltype_custom_class(t, &a)) return;
    fmt_cstr(f, "'");
    fmt_put(f, a.ptr, a.len);
    fmt_cstr(f, "'");
    return;
  }
  if (t->id == TDM_CQLTYPE_UDT) {
    if (tdm_cqltype_udt_name(t, &a, &b)) return;
    fmt_put(f, a.ptr, a.len);
    fmt_cstr(f, ".");
    fmt_put(f, b.ptr, b.len);
    return;
  }
  fmt_cstr(f, tdm_cqltype_id_name(t->id));
  if (!tdm_cqltype_is_collection(t->id) && t->id != TDM_CQLTYPE_TUPLE) return;
  /* Recursion depth is bounded by TDM_CQLTYPE_MAX_DEPTH: t was validated. */
  tdm_cqltype_iter_t it;
  tdm_cqltype_t child;
  bool first = true;
  tdm_cqltype_iter_init(&it, t);
  fmt_cstr(f, "<");
  while (tdm_cqltype_next(&it, &child, NULL) == 1) {
    if (!first) fmt_cstr(f, ", ");
    first = false;
    format_type(f, &child);
  }
  fmt_cstr(f, ">");
}

int tdm_cqltype_format(const tdm_cqltype_t *t, char *buf, size_t cap)
{
  fmt_t f = { buf, cap, 0, false };
  if (cap > 0) buf[0] = '\0';
  format_type(&f, t);
  if (f.overflow) return TDM_EOVERFLOW;
  return (int)f.len;
}

/* ---- encoding from CQL text ---- */

void tdm_cqltype_write(tdm_writer_t *w, const tdm_cqltype_t *t) { tdm_writer_raw(w, t->raw, t->len); }

typedef struct parser_s {
  const char *p;   /* next character */
  const char *end; /* one past the last */
  tdm_writer_t *w; /* output */
} parser_t;

static const struct {
  const char *name; /* CQL spelling, lower case */
  uint16_t id;      /* option id it encodes to */
} native_names[] = {
  { "ascii", TDM_CQLTYPE_ASCII },       { "bigint", TDM_CQLTYPE_BIGINT },     { "blob", TDM_CQLTYPE_BLOB },
  { "boolean", TDM_CQLTYPE_BOOLEAN },   { "counter", TDM_CQLTYPE_COUNTER },   { "decimal", TDM_CQLTYPE_DECIMAL },
  { "double", TDM_CQLTYPE_DOUBLE },     { "float", TDM_CQLTYPE_FLOAT },       { "int", TDM_CQLTYPE_INT },
  { "text", TDM_CQLTYPE_VARCHAR },      { "varchar", TDM_CQLTYPE_VARCHAR },   { "timestamp", TDM_CQLTYPE_TIMESTAMP },
  { "uuid", TDM_CQLTYPE_UUID },         { "varint", TDM_CQLTYPE_VARINT },     { "timeuuid", TDM_CQLTYPE_TIMEUUID },
  { "inet", TDM_CQLTYPE_INET },         { "date", TDM_CQLTYPE_DATE },         { "time", TDM_CQLTYPE_TIME },
  { "smallint", TDM_CQLTYPE_SMALLINT }, { "tinyint", TDM_CQLTYPE_TINYINT },   { "duration", TDM_CQLTYPE_DURATION },
};

static void skip_ws(parser_t *ps)
{
  while (ps->p < ps->end && isspace((unsigned char)*ps->p)) ps->p++;
}

static bool expect(parser_t *ps, char c)
{
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == c) {
    ps->p++;
    return true;
  }
  return false;
}

/* Parses one type. `depth` is the protocol nesting (frozen<> adds none), `calls` bounds the recursion
 * itself so that frozen<frozen<...>> cannot exhaust the stack. */
static int parse_type(parser_t *ps, unsigned depth, unsigned calls)
{
  if (depth > TDM_CQLTYPE_MAX_DEPTH || calls > 2 * TDM_CQLTYPE_MAX_DEPTH) return TDM_EINVAL;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '\'') {
    const char *start = ++ps->p;
    while (ps->p < ps->end && *ps->p != '\'') ps->p++;
    if (ps->p == ps->end || ps->p == start) return TDM_EINVAL;
    tdm_writer_short(ps->w, TDM_CQLTYPE_CUSTOM);
    tdm_writer_string(ps->w, (tdm_str_t){ start, (size_t)(ps->p - start) });
    ps->p++;
    return 0;
  }
  const char *start = ps->p;
  while (ps->p < ps->end && (isalnum((unsigned char)*ps->p) || *ps->p == '_')) ps->p++;
  tdm_str_t word = { start, (size_t)(ps->p - start) };
  if (word.len == 0) return TDM_EINVAL;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(native_names); i++) {
    if (tdm_str_eq_ci(word, tdm_str_from(native_names[i].name))) {
      tdm_writer_short(ps->w, native_names[i].id);
      return 0;
    }
  }
  if (tdm_str_eq_ci(word, TDM_STR("frozen"))) {
    if (!expect(ps, '<') || parse_type(ps, depth, calls + 1) || !expect(ps, '>')) return TDM_EINVAL;
    return 0;
  }
  if (tdm_str_eq_ci(word, TDM_STR("list")) || tdm_str_eq_ci(word, TDM_STR("set"))) {
    tdm_writer_short(ps->w, tdm_str_eq_ci(word, TDM_STR("set")) ? TDM_CQLTYPE_SET : TDM_CQLTYPE_LIST);
    if (!expect(ps, '<') || parse_type(ps, depth + 1, calls + 1) || !expect(ps, '>')) return TDM_EINVAL;
    return 0;
  }
  if (tdm_str_eq_ci(word, TDM_STR("map"))) {
    tdm_writer_short(ps->w, TDM_CQLTYPE_MAP);
    if (!expect(ps, '<') || parse_type(ps, depth + 1, calls + 1) || !expect(ps, ',') ||
        parse_type(ps, depth + 1, calls + 1) || !expect(ps, '>'))
      return TDM_EINVAL;
    return 0;
  }
  if (tdm_str_eq_ci(word, TDM_STR("tuple"))) {
    tdm_writer_short(ps->w, TDM_CQLTYPE_TUPLE);
    size_t count_at = ps->w->len;
    uint16_t n = 0;
    tdm_writer_short(ps->w, 0); /* patched below */
    if (!expect(ps, '<')) return TDM_EINVAL;
    do {
      if (n == UINT16_MAX || parse_type(ps, depth + 1, calls + 1)) return TDM_EINVAL;
      n++;
    } while (expect(ps, ','));
    if (!expect(ps, '>')) return TDM_EINVAL;
    if (!ps->w->err) {
      ps->w->buf[count_at] = (uint8_t)(n >> 8);
      ps->w->buf[count_at + 1] = (uint8_t)n;
    }
    return 0;
  }
  return TDM_EINVAL; /* a UDT name, or not a type */
}

int tdm_cqltype_write_name(tdm_writer_t *w, tdm_str_t text)
{
  parser_t ps = { text.ptr, text.ptr + text.len, w };
  size_t start = w->len;
  if (w->err) return w->err;
  if (text.len == 0 || parse_type(&ps, 1, 0) || (skip_ws(&ps), ps.p != ps.end)) {
    if (!w->err) {
      w->len = start; /* drop the partial option */
      w->err = TDM_EINVAL;
    }
    return w->err;
  }
  return w->err;
}

int tdm_cqltype_parse(tdm_str_t text, uint8_t *buf, size_t cap, tdm_cqltype_t *out)
{
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, buf, cap);
  int rc = tdm_cqltype_write_name(&w, text);
  if (rc) return rc;
  return tdm_cqltype_from_raw(buf, w.len, out) ? TDM_EINVAL : 0;
}
