/* CQL types and values for the mock: a type as its wire [option] bytes, parsed from CQL type text
 * ("text", "int", "set<text>", "map<uuid, blob>"), and values converted from their text form (rule
 * rows, CQL literals) to their serialized bytes. Scalars cover what tests use; collections of scalars
 * take elements separated by '|' (map entries as k:v). */
#ifndef TDM_MOCK_VALUES_H
#define TDM_MOCK_VALUES_H

#include <tandem/common.h>
#include <tandem/proto/writer.h>
#include <tandem/util/str.h>

/* Type option ids (native protocol §4.2.5.2). */
enum tdm_mock_type_id {
  TDM_MOCK_T_CUSTOM = 0x0000, TDM_MOCK_T_ASCII = 0x0001, TDM_MOCK_T_BIGINT = 0x0002, TDM_MOCK_T_BLOB = 0x0003,
  TDM_MOCK_T_BOOLEAN = 0x0004, TDM_MOCK_T_COUNTER = 0x0005, TDM_MOCK_T_DECIMAL = 0x0006,
  TDM_MOCK_T_DOUBLE = 0x0007, TDM_MOCK_T_FLOAT = 0x0008, TDM_MOCK_T_INT = 0x0009, TDM_MOCK_T_TIMESTAMP = 0x000B,
  TDM_MOCK_T_UUID = 0x000C, TDM_MOCK_T_VARCHAR = 0x000D, TDM_MOCK_T_VARINT = 0x000E, TDM_MOCK_T_TIMEUUID = 0x000F,
  TDM_MOCK_T_INET = 0x0010, TDM_MOCK_T_DATE = 0x0011, TDM_MOCK_T_TIME = 0x0012, TDM_MOCK_T_SMALLINT = 0x0013,
  TDM_MOCK_T_TINYINT = 0x0014, TDM_MOCK_T_DURATION = 0x0015, TDM_MOCK_T_LIST = 0x0020, TDM_MOCK_T_MAP = 0x0021,
  TDM_MOCK_T_SET = 0x0022,
};

#define TDM_MOCK_TYPE_OPT_MAX 24

/* A type is its [option] encoding; id and the element ids are cached for value conversion. */
typedef struct tdm_mock_type_s {
  uint8_t opt[TDM_MOCK_TYPE_OPT_MAX]; /* [option] bytes as written in metadata */
  uint8_t opt_len;                    /* bytes used in opt */
  uint16_t id;                        /* top-level option id */
  uint16_t key;                       /* list/set element id, or map key id */
  uint16_t val;                       /* map value id */
} tdm_mock_type_t;

/* One column of metadata: a name (borrowed from its owner) and a type. */
typedef struct tdm_mock_col_s {
  tdm_str_t name;       /* column name as sent */
  tdm_mock_type_t type; /* its type */
} tdm_mock_col_t;

/* A scalar type from its id (TDM_MOCK_T_VARCHAR ...). */
tdm_mock_type_t tdm_mock_type_scalar(uint16_t id);
/* list/set of a scalar, map of two scalars. */
tdm_mock_type_t tdm_mock_type_collection(uint16_t id, uint16_t key, uint16_t val);

/* Parses CQL type text; frozen<> is transparent. TDM_EINVAL for anything else (nested collections,
 * UDTs, tuples), which callers usually map to varchar. */
TDM_MUSTCHECK int tdm_mock_type_parse(tdm_str_t text, tdm_mock_type_t *out);
/* CQL name of a type, for JSON and errors ("set<text>"). */
void tdm_mock_type_name(const tdm_mock_type_t *t, char *buf, size_t cap);

/* Serializes the value spelled `text` for type t into w, without the [bytes] length (the caller adds it).
 * Text types take the text as is; blob takes 0x-hex; inet a numeric address; uuid the 36-char form;
 * booleans true/false; timestamps milliseconds. Returns TDM_EINVAL if the text does not fit the type. */
TDM_MUSTCHECK int tdm_mock_value_from_text(const tdm_mock_type_t *t, tdm_str_t text, tdm_writer_t *w);

/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into 16 bytes. */
TDM_MUSTCHECK int tdm_mock_uuid_parse(tdm_str_t text, uint8_t out[16]);
/* Formats 16 bytes as a 36-char UUID plus NUL (buf holds 37). */
void tdm_mock_uuid_format(const uint8_t in[16], char buf[37]);
/* Lower-case hex of n bytes into buf (cap >= 2n + 1). */
void tdm_mock_hex(const uint8_t *p, size_t n, char *buf, size_t cap);
/* md5 of p[0..n) into out (OpenSSL). */
void tdm_mock_md5(const void *p, size_t n, uint8_t out[16]);

#endif
