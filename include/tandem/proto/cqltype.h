/* CQL column types as the native protocol carries them: an [option] (a [short] id, then for collections,
 * UDTs, tuples and custom types a payload that may nest further options). A decoded type is a view of
 * the option's bytes in the body, so walking nested types allocates nothing. Also: type names for logs
 * and tests, and CQL type text ("map<text, frozen<list<int>>>") encoded into an [option]. */
#ifndef TANDEM_PROTO_CQLTYPE_H
#define TANDEM_PROTO_CQLTYPE_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/proto/reader.h>
#include <tandem/proto/writer.h>

/* [option] ids (native protocol §4.2.5.2). 0x000A is v1's "text"; later versions send varchar. */
#define TDM_CQLTYPE_MAP(X)             \
  X(CUSTOM, 0x0000, "custom")          \
  X(ASCII, 0x0001, "ascii")            \
  X(BIGINT, 0x0002, "bigint")          \
  X(BLOB, 0x0003, "blob")              \
  X(BOOLEAN, 0x0004, "boolean")        \
  X(COUNTER, 0x0005, "counter")        \
  X(DECIMAL, 0x0006, "decimal")        \
  X(DOUBLE, 0x0007, "double")          \
  X(FLOAT, 0x0008, "float")            \
  X(INT, 0x0009, "int")                \
  X(TEXT, 0x000A, "text")              \
  X(TIMESTAMP, 0x000B, "timestamp")    \
  X(UUID, 0x000C, "uuid")              \
  X(VARCHAR, 0x000D, "text")           \
  X(VARINT, 0x000E, "varint")          \
  X(TIMEUUID, 0x000F, "timeuuid")      \
  X(INET, 0x0010, "inet")              \
  X(DATE, 0x0011, "date")              \
  X(TIME, 0x0012, "time")              \
  X(SMALLINT, 0x0013, "smallint")      \
  X(TINYINT, 0x0014, "tinyint")        \
  X(DURATION, 0x0015, "duration")      \
  X(LIST, 0x0020, "list")              \
  X(MAP, 0x0021, "map")                \
  X(SET, 0x0022, "set")                \
  X(UDT, 0x0030, "udt")                \
  X(TUPLE, 0x0031, "tuple")

enum tdm_cqltype_id {
#define TDM_CQLTYPE_ENUM(name, val, text) TDM_CQLTYPE_##name = (val),
  TDM_CQLTYPE_MAP(TDM_CQLTYPE_ENUM)
#undef TDM_CQLTYPE_ENUM
};

/* Nesting limit: a type deeper than this is malformed (decoding) or refused (encoding a name). The top
 * level counts as depth 1, so list<int> has depth 2. Real schemas stay far below it; the limit exists so
 * hostile input cannot drive the recursion. */
#define TDM_CQLTYPE_MAX_DEPTH 16

/* A validated [option]. Invariant: raw[0..len) is one complete option whose nested options all lie
 * inside it and respect TDM_CQLTYPE_MAX_DEPTH; id == the [short] at raw[0]. */
typedef struct tdm_cqltype_s {
  uint16_t id;        /* TDM_CQLTYPE_* */
  const uint8_t *raw; /* first byte of the option (its id), borrowed */
  size_t len;         /* bytes of the whole option, payload and nested options included */
} tdm_cqltype_t;

/* Reads and validates one [option] at the cursor (recursively), leaving the cursor after it. An unknown
 * id, a truncated payload or too deep a nesting is TDM_EPROTO_MALFORMED; the cursor is then unchanged. */
TDM_MUSTCHECK int tdm_cqltype_read(tdm_reader_t *r, tdm_cqltype_t *out);
/* Validates raw[0..len) as exactly one option (no trailing bytes). */
TDM_MUSTCHECK int tdm_cqltype_from_raw(const void *raw, size_t len, tdm_cqltype_t *out);
/* A view of a native (payload-free) type backed by a static table; TDM_EINVAL for other ids. */
TDM_MUSTCHECK int tdm_cqltype_native(uint16_t id, tdm_cqltype_t *out);

static inline bool tdm_cqltype_is_collection(uint16_t id)
{
  return id == TDM_CQLTYPE_LIST || id == TDM_CQLTYPE_SET || id == TDM_CQLTYPE_MAP;
}

/* Nested types: list/set 1, map 2 (key, value), tuple and UDT one per component, others 0. */
size_t tdm_cqltype_child_count(const tdm_cqltype_t *t);

/* Walks the nested types of t in order. Each step re-reads only the component it returns, so visiting
 * every component costs one pass over t's bytes. */
typedef struct tdm_cqltype_iter_s {
  tdm_reader_t r; /* cursor over t's payload, at the next component (a UDT field starts with its name) */
  uint16_t id;    /* the parent's id */
  size_t left;    /* components not yet returned */
} tdm_cqltype_iter_t;

void tdm_cqltype_iter_init(tdm_cqltype_iter_t *it, const tdm_cqltype_t *t);
/* Returns 1 with the next component (for a UDT *field_name, when not NULL, is the field's name; for other
 * types it is cleared), 0 after the last, <0 when t was not a validated option. */
TDM_MUSTCHECK int tdm_cqltype_next(tdm_cqltype_iter_t *it, tdm_cqltype_t *out, tdm_str_t *field_name);
/* Component i (O(i): it walks the earlier ones); TDM_EINVAL when i is out of range. */
TDM_MUSTCHECK int tdm_cqltype_child(const tdm_cqltype_t *t, size_t i, tdm_cqltype_t *out, tdm_str_t *field_name);
/* The class name of a custom type (TDM_EINVAL for other types). */
TDM_MUSTCHECK int tdm_cqltype_custom_class(const tdm_cqltype_t *t, tdm_str_t *cls);
/* Keyspace and name of a UDT (TDM_EINVAL for other types). */
TDM_MUSTCHECK int tdm_cqltype_udt_name(const tdm_cqltype_t *t, tdm_str_t *keyspace, tdm_str_t *name);
/* Whether two types are the same option byte for byte. */
static inline bool tdm_cqltype_eq(const tdm_cqltype_t *a, const tdm_cqltype_t *b)
{
  return a->len == b->len && memcmp(a->raw, b->raw, a->len) == 0;
}

/* Name of an id as CQL spells it ("text" for varchar), "unknown" otherwise. */
const char *tdm_cqltype_id_name(uint16_t id);
/* Formats t as CQL type text into buf (always NUL-terminated when cap > 0): "map<text, list<int>>",
 * "tuple<int, text>", UDTs as "ks.name", custom types as a quoted class name. Returns the length written
 * or TDM_EOVERFLOW when buf was too small (the text is then cut). */
int tdm_cqltype_format(const tdm_cqltype_t *t, char *buf, size_t cap);

/* Appends t's option bytes. */
void tdm_cqltype_write(tdm_writer_t *w, const tdm_cqltype_t *t);
/* Parses CQL type text and appends the [option]: native names (case-insensitive; "text" and "varchar"
 * both give varchar), list<T>, set<T>, map<K, V>, tuple<T, ...>, frozen<T> (transparent: the protocol
 * does not carry frozenness) and a quoted custom class 'a.b.C'. UDTs cannot be named this way (their
 * fields are not in the text): TDM_EINVAL, as for any syntax error. Returns the writer's error otherwise. */
int tdm_cqltype_write_name(tdm_writer_t *w, tdm_str_t text);
/* Same, into a caller buffer, returning a view of it in *out. */
TDM_MUSTCHECK int tdm_cqltype_parse(tdm_str_t text, uint8_t *buf, size_t cap, tdm_cqltype_t *out);

#endif
