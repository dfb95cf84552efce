/* CQL response bodies (ERROR, READY, AUTHENTICATE, SUPPORTED, RESULT, EVENT, AUTH_CHALLENGE, AUTH_SUCCESS)
 * for protocol v2-v5, DSE_V1 and DSE_V2: a full decoder that borrows from the body and records the
 * offsets the proxy rewrites, cheap hot-path peeks, encoders through tdm_writer_t (with a Rows builder
 * for tandem's virtual tables), and the v5 metadata-id rewrite. Nothing here allocates except the writer
 * it is handed. */
#ifndef TANDEM_PROTO_RESPONSE_H
#define TANDEM_PROTO_RESPONSE_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/proto/opcodes.h>
#include <tandem/proto/reader.h>
#include <tandem/proto/writer.h>
#include <tandem/proto/cqltype.h>

/*
 * Conventions shared by every function below.
 *  - body/len is one message body: after the frame header, after decompression, after the tracing id,
 *    warnings and custom payload (tdm_response_strip_prefix finds where the message starts).
 *  - Decoders return 0, TDM_EPROTO_MALFORMED (truncated or negative lengths, counts the remaining bytes
 *    cannot hold, unknown RESULT kind / type id / schema target / event type, trailing bytes),
 *    TDM_EPROTO_VERSION (not v2-v5/DSE_V1/DSE_V2) or TDM_EPROTO_OPCODE (not a response). On failure
 *    *why (when why != NULL) points at a short, stable, static English phrase naming the defect; it is
 *    left untouched on success. Nothing is ever read outside body[0..len).
 *  - Trailing bytes are malformed, except after an ERROR whose code tandem does not know: vendors add
 *    codes with their own fields (Scylla's rate-limit error), so those bodies are accepted whole.
 *  - Decoded structs point into the body: they live as long as the body does. Offsets are byte offsets
 *    from the start of the body.
 *  - Lists, maps and column specs are kept as raw spans and walked with the *_next functions. The same
 *    structs are encoder input: where an encoder finds an array pointer (items, entries, reasons,
 *    columns, pk_indices) it encodes the array, otherwise it copies the raw span, so a decoded message
 *    re-encodes as is.
 *  - Encoders append to the writer and return tdm_writer_error(w) (0, TDM_ENOMEM, TDM_EOVERFLOW), or
 *    TDM_EINVAL (also recorded in the writer) when the input cannot be encoded for that version.
 *  - Iterators return 1 with an item, 0 at the end, <0 when the span is not a decoded one.
 */

/* Whether `version` is one this module handles (v2, v3, v4, v5, DSE_V1, DSE_V2). */
bool tdm_response_version_ok(uint8_t version);
/* Whether `opcode` is a response opcode (ERROR, READY, AUTHENTICATE, SUPPORTED, RESULT, EVENT,
 * AUTH_CHALLENGE, AUTH_SUCCESS). */
bool tdm_response_opcode_ok(uint8_t opcode);

/* ---- shared pieces ---- */

/* A [string list]. */
typedef struct tdm_response_strlist_s {
  uint16_t count;         /* entries */
  const uint8_t *raw;     /* decoded: the entries after the [short] count; NULL when count == 0 */
  size_t raw_len;         /* bytes in raw */
  const tdm_str_t *items; /* encoder input: `count` strings; NULL means copy raw */
} tdm_response_strlist_t;

/* *pos starts at 0. */
TDM_MUSTCHECK int tdm_response_strlist_next(const tdm_response_strlist_t *l, size_t *pos, tdm_str_t *out);

/* ---- ERROR ---- */

/* One entry of a v5 READ_FAILURE / WRITE_FAILURE reason map. */
typedef struct tdm_response_reason_s {
  const uint8_t *addr; /* [inetaddr] bytes, borrowed */
  uint8_t addr_len;    /* 4 or 16 */
  uint16_t code;       /* failure reason code (Cassandra's RequestFailureReason) */
} tdm_response_reason_t;

/* The union of every code's fields; a field a code does not carry stays zero. */
typedef struct tdm_response_error_s {
  uint32_t code;                         /* TDM_ERR_* (unknown codes are kept as received) */
  tdm_str_t message;                     /* [string] */
  uint16_t consistency;                  /* UNAVAILABLE, *_TIMEOUT, *_FAILURE, CAS_WRITE_UNKNOWN */
  int32_t required;                      /* UNAVAILABLE */
  int32_t alive;                         /* UNAVAILABLE */
  int32_t received;                      /* *_TIMEOUT, *_FAILURE, CAS_WRITE_UNKNOWN */
  int32_t block_for;                     /* *_TIMEOUT, *_FAILURE, CAS_WRITE_UNKNOWN */
  tdm_str_t write_type;                  /* WRITE_TIMEOUT, WRITE_FAILURE ("SIMPLE", "CAS", ...) */
  uint8_t data_present;                  /* READ_TIMEOUT, READ_FAILURE: the byte as sent (0 = absent) */
  bool has_contentions;                  /* WRITE_TIMEOUT with write_type "CAS" in v5+ carried it */
  uint16_t contentions;                  /* ... the [short] number of contentions */
  int32_t failures;                      /* *_FAILURE: numfailures (v3/v4), entries in the reason map (v5+) */
  const uint8_t *reason_map;             /* *_FAILURE v5+: the `failures` pairs after the [int] count */
  size_t reason_map_len;                 /* bytes in reason_map */
  const tdm_response_reason_t *reasons;  /* encoder input, v5+: `failures` entries; NULL: copy reason_map */
  tdm_str_t keyspace;                    /* FUNCTION_FAILURE, ALREADY_EXISTS */
  tdm_str_t table;                       /* ALREADY_EXISTS ("" for a keyspace) */
  tdm_str_t function;                    /* FUNCTION_FAILURE */
  tdm_response_strlist_t arg_types;      /* FUNCTION_FAILURE */
  tdm_bytes_t unprepared_id;             /* UNPREPARED [short bytes] */
  const uint8_t *extra;                  /* unknown code: the bytes after the message, kept as is */
  size_t extra_len;                      /* bytes in extra */
} tdm_response_error_t;

/* Walks a decoded reason map; *pos starts at 0. */
TDM_MUSTCHECK int tdm_response_reason_next(const tdm_response_error_t *e, size_t *pos, tdm_response_reason_t *out);
/* Whether READ_FAILURE / WRITE_FAILURE carry a reason map rather than a bare count in `version`: v5 and
 * the DSE versions (numbered above 5), as Cassandra and the DataStax drivers decide. */
static inline bool tdm_response_has_reason_map(uint8_t version) { return version >= TDM_PROTO_V5; }

/* ---- SUPPORTED ---- */

/* One multimap entry (encoder input). */
typedef struct tdm_response_option_s {
  tdm_str_t key;                /* option name */
  tdm_response_strlist_t values; /* its values */
} tdm_response_option_t;

typedef struct tdm_response_supported_s {
  uint16_t count;                           /* keys in the multimap */
  const uint8_t *raw;                       /* decoded: the entries after the [short] count */
  size_t raw_len;                           /* bytes in raw */
  const tdm_response_option_t *entries;     /* encoder input: `count` entries; NULL: copy raw */
  tdm_response_strlist_t protocol_versions; /* PROTOCOL_VERSIONS ("3/v3", "5/v5") when present */
  tdm_response_strlist_t compression;       /* COMPRESSION when present */
  tdm_response_strlist_t cql_version;       /* CQL_VERSION when present */
  bool has_protocol_versions;               /* the key was there (Cassandra 4.0+) */
  bool has_compression;                     /* the key was there */
  bool has_cql_version;                     /* the key was there */
} tdm_response_supported_t;

/* Walks every entry; *pos starts at 0. */
TDM_MUSTCHECK int tdm_response_supported_next(const tdm_response_supported_t *s, size_t *pos, tdm_str_t *key,
                                              tdm_response_strlist_t *values);
/* First entry whose key matches case-insensitively: 0, or TDM_ENOTFOUND. */
TDM_MUSTCHECK int tdm_response_supported_get(const tdm_response_supported_t *s, tdm_str_t key,
                                             tdm_response_strlist_t *values);

/* ---- metadata (Rows, Prepared) ---- */

/* Which metadata layout: a result set's (Rows, and a PREPARED's result metadata) or a PREPARED's bind
 * variables (pk indices in v4+, only the global-tables flag). */
typedef enum tdm_response_meta_kind {
  TDM_RESPONSE_META_ROWS = 0,
  TDM_RESPONSE_META_VARIABLES = 1,
} tdm_response_meta_kind_t;

/* One column spec. */
typedef struct tdm_response_column_s {
  tdm_str_t keyspace; /* the global keyspace when the spec is global */
  tdm_str_t table;    /* the global table when the spec is global */
  tdm_str_t name;     /* column name or alias (bind marker name for variables) */
  tdm_cqltype_t type; /* validated [option] */
} tdm_response_column_t;

/* <flags><columns_count>[<pk_count><pk_index>*][<paging_state>][<new_metadata_id>][<page_no>]
 * [<global_table_spec>]<col_spec>*. A part whose flag is clear reads as absent (bytes len -1). */
typedef struct tdm_response_metadata_s {
  uint32_t flags;                      /* TDM_RFLAG_* as sent */
  size_t flags_offset;                 /* offset of the [int] flags */
  int32_t columns_count;               /* columns (bind markers for variables) */
  uint32_t pk_count;                   /* variables, v4+: partition key indices */
  const uint8_t *pk_raw;               /* ... the pk_count [short]s as on the wire */
  const uint16_t *pk_indices;          /* encoder input: pk_count indices; NULL: copy pk_raw */
  tdm_bytes_t paging_state;            /* HAS_MORE_PAGES: [bytes]; len -1 otherwise */
  tdm_bytes_t new_metadata_id;         /* METADATA_CHANGED in v5/DSE_V2: [short bytes]; len -1 otherwise */
  size_t new_metadata_id_offset;       /* offset of its [short] length (valid when len >= 0) */
  int32_t continuous_page;             /* DSE CONTINUOUS_PAGING: the page number */
  tdm_str_t global_keyspace;           /* GLOBAL_TABLES_SPEC */
  tdm_str_t global_table;              /* GLOBAL_TABLES_SPEC */
  const uint8_t *specs;                /* the column specs, validated; NULL with NO_METADATA */
  size_t specs_len;                    /* bytes in specs */
  const tdm_response_column_t *columns; /* encoder input: columns_count specs; NULL: copy specs */
} tdm_response_metadata_t;

/* Whether metadata of `version` carries the METADATA_CHANGED id (v5, DSE_V2). */
static inline bool tdm_response_has_metadata_id(uint8_t version) { return tdm_proto_has_metadata_id(version); }

/* Reads metadata at r's cursor (offsets relative to r->buf) and validates every column spec. */
TDM_MUSTCHECK int tdm_response_metadata_read(tdm_reader_t *r, uint8_t version, tdm_response_meta_kind_t kind,
                                             tdm_response_metadata_t *m, const char **why);
/* Walks the column specs (none with NO_METADATA); *pos starts at 0. */
TDM_MUSTCHECK int tdm_response_column_next(const tdm_response_metadata_t *m, size_t *pos, tdm_response_column_t *out);
/* The i-th partition key index (i < pk_count). */
uint16_t tdm_response_pk_index(const tdm_response_metadata_t *m, uint32_t i);

/* ---- RESULT ---- */

typedef struct tdm_response_rows_s {
  tdm_response_metadata_t metadata; /* result set metadata */
  int32_t rows_count;               /* rows */
  size_t rows_count_offset;         /* offset of the [int] rows_count */
  const uint8_t *content;           /* rows_count * columns_count [bytes], validated */
  size_t content_len;               /* bytes in content */
} tdm_response_rows_t;

typedef struct tdm_response_prepared_s {
  tdm_bytes_t id;                   /* [short bytes] prepared id */
  size_t id_offset;                 /* offset of its [short] length */
  tdm_bytes_t result_metadata_id;   /* v5/DSE_V2 [short bytes]; len -1 in other versions */
  size_t result_metadata_id_offset; /* offset of its [short] length (valid when len >= 0) */
  tdm_response_metadata_t variables; /* bind markers (pk indices v4+) */
  tdm_response_metadata_t result;    /* result set metadata (v2+) */
} tdm_response_prepared_t;

/* Schema change targets. */
typedef enum tdm_response_target {
  TDM_RESPONSE_TARGET_NONE = 0,
  TDM_RESPONSE_TARGET_KEYSPACE, /* <keyspace> */
  TDM_RESPONSE_TARGET_TABLE,    /* <keyspace><name> */
  TDM_RESPONSE_TARGET_TYPE,     /* <keyspace><name> */
  TDM_RESPONSE_TARGET_FUNCTION, /* <keyspace><name><arg types> */
  TDM_RESPONSE_TARGET_AGGREGATE, /* <keyspace><name><arg types> */
} tdm_response_target_t;

/* RESULT Schema_change and EVENT SCHEMA_CHANGE: <change_type><target><options> (v3+); v2 sends
 * <change_type><keyspace><table>, decoded as target KEYSPACE when the table is empty, else TABLE. */
typedef struct tdm_response_schema_change_s {
  tdm_str_t change_type;            /* "CREATED", "UPDATED", "DROPPED" */
  tdm_response_target_t target;     /* decoded from the target [string]; encoders write its name */
  tdm_str_t keyspace;               /* every target */
  tdm_str_t name;                   /* table, type, function or aggregate name */
  tdm_response_strlist_t arg_types; /* FUNCTION, AGGREGATE */
} tdm_response_schema_change_t;

typedef struct tdm_response_result_s {
  int32_t kind;      /* TDM_RESULT_* */
  size_t kind_offset; /* offset of the [int] kind: 0, the body starts with it */
  union {
    tdm_response_rows_t rows;                   /* ROWS */
    tdm_str_t keyspace;                         /* SET_KEYSPACE */
    tdm_response_prepared_t prepared;           /* PREPARED */
    tdm_response_schema_change_t schema_change; /* SCHEMA_CHANGE */
  };
} tdm_response_result_t;

/* ---- EVENT ---- */

typedef enum tdm_response_event_kind {
  TDM_RESPONSE_EVENT_NONE = 0,
  TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE, /* change NEW_NODE / REMOVED_NODE / MOVED_NODE + [inet] */
  TDM_RESPONSE_EVENT_STATUS_CHANGE,   /* change UP / DOWN + [inet] */
  TDM_RESPONSE_EVENT_SCHEMA_CHANGE,   /* schema */
} tdm_response_event_kind_t;

typedef struct tdm_response_event_s {
  tdm_response_event_kind_t kind;      /* from the event type [string]; encoders write its name */
  tdm_str_t change;                    /* topology and status events */
  const uint8_t *addr;                 /* [inet] address bytes (topology, status) */
  uint8_t addr_len;                    /* 4 or 16 */
  int32_t port;                        /* [inet] port */
  tdm_response_schema_change_t schema; /* schema events */
} tdm_response_event_t;

/* ---- whole responses ---- */

typedef struct tdm_response_s {
  uint8_t version; /* protocol version the body was decoded (or is encoded) for */
  uint8_t opcode;  /* TDM_OP_* response opcode */
  union {
    tdm_response_error_t error;         /* ERROR */
    tdm_str_t authenticator;            /* AUTHENTICATE: IAuthenticator class */
    tdm_response_supported_t supported; /* SUPPORTED */
    tdm_response_result_t result;       /* RESULT */
    tdm_response_event_t event;         /* EVENT */
    tdm_bytes_t token;                  /* AUTH_CHALLENGE, AUTH_SUCCESS ([bytes], len -1 = null) */
  };
} tdm_response_t;

/* Decodes one response body; *out is zeroed first. READY must have an empty body. */
TDM_MUSTCHECK int tdm_response_decode(uint8_t version, uint8_t opcode, const void *body, size_t len,
                                      tdm_response_t *out, const char **why);

/* Frame-level prefix of a response body: [uuid] tracing id (flag TRACING), [string list] warnings
 * (flag WARNING, v4+), [bytes map] custom payload (flag CUSTOM_PAYLOAD, v4+), in that order. */
typedef struct tdm_response_prefix_s {
  const uint8_t *tracing_id;       /* 16 bytes, or NULL */
  tdm_response_strlist_t warnings; /* count 0 when absent */
  const uint8_t *custom_payload;   /* the [bytes map] including its count, or NULL */
  size_t custom_payload_len;       /* bytes in custom_payload */
  size_t message_offset;           /* where the message body starts */
} tdm_response_prefix_t;

TDM_MUSTCHECK int tdm_response_strip_prefix(uint8_t version, uint8_t frame_flags, const void *body, size_t len,
                                            tdm_response_prefix_t *out);

/* ---- rows ---- */

/* Walks the cells of a decoded Rows result, row by row, without allocating. */
typedef struct tdm_response_rows_iter_s {
  tdm_reader_t r;     /* cursor over the rows content */
  int32_t columns;    /* cells per row */
  int32_t rows_left;  /* rows not yet started */
  int32_t cells_left; /* cells of the current row not yet returned */
} tdm_response_rows_iter_t;

void tdm_response_rows_iter_init(tdm_response_rows_iter_t *it, const tdm_response_rows_t *rows);
/* Moves to the next row (skipping what is left of the current one): 1, or 0 after the last. */
TDM_MUSTCHECK int tdm_response_rows_next_row(tdm_response_rows_iter_t *it);
/* Next cell of the current row (len -1 = null): 1, or 0 at the end of the row. */
TDM_MUSTCHECK int tdm_response_rows_next_cell(tdm_response_rows_iter_t *it, tdm_bytes_t *cell);

/* ---- hot-path peeks (read only what they return) ---- */

/* RESULT kind; an unknown kind is TDM_EPROTO_MALFORMED. */
TDM_MUSTCHECK int tdm_response_peek_result_kind(const void *body, size_t len, int32_t *kind);
/* ERROR code and, when message != NULL, its message. */
TDM_MUSTCHECK int tdm_response_peek_error_code(const void *body, size_t len, uint32_t *code, tdm_str_t *message);

typedef struct tdm_response_prepared_ids_s {
  tdm_bytes_t id;                   /* prepared id */
  size_t id_offset;                 /* offset of its [short] length */
  tdm_bytes_t result_metadata_id;   /* v5/DSE_V2; len -1 otherwise */
  size_t result_metadata_id_offset; /* offset of its [short] length (valid when len >= 0) */
} tdm_response_prepared_ids_t;

/* RESULT Prepared ids; TDM_EINVAL when the kind is not PREPARED. */
TDM_MUSTCHECK int tdm_response_peek_prepared_ids(uint8_t version, const void *body, size_t len,
                                                 tdm_response_prepared_ids_t *out);

/* LWT outcome of a RESULT. */
typedef enum tdm_response_applied {
  TDM_RESPONSE_APPLIED_NONE = 0, /* not Rows, or the first column is not a boolean named [applied] */
  TDM_RESPONSE_APPLIED_TRUE,     /* [applied] = true in the first row */
  TDM_RESPONSE_APPLIED_FALSE,    /* [applied] = false in the first row */
  TDM_RESPONSE_APPLIED_UNKNOWN,  /* NO_METADATA (names not sent), no row, or a null/empty value */
} tdm_response_applied_t;

TDM_MUSTCHECK int tdm_response_peek_rows_applied(uint8_t version, const void *body, size_t len,
                                                 tdm_response_applied_t *out);

/* The v5/DSE_V2 metadata id of a RESULT: a Rows' new_metadata_id (METADATA_CHANGED) or a Prepared's
 * result_metadata_id, with the offset of its [short] length. TDM_ENOTFOUND when there is none. */
TDM_MUSTCHECK int tdm_response_peek_metadata_id(uint8_t version, const void *body, size_t len, tdm_bytes_t *id,
                                                size_t *offset);
/* Writes a copy of the RESULT body with that metadata id replaced by id[0..id_len) (any length). Same
 * errors as the peek; on error nothing useful is in the writer. Same-length ids can instead be patched
 * in place at offset + 2. */
TDM_MUSTCHECK int tdm_response_rewrite_metadata_id(uint8_t version, const void *body, size_t len, const void *id,
                                                   size_t id_len, tdm_writer_t *out);

/* ---- encoders ---- */

/* Any decoded (or filled-in) response, by r->opcode and r->version. */
int tdm_response_encode(tdm_writer_t *w, const tdm_response_t *r);
int tdm_response_encode_error(tdm_writer_t *w, uint8_t version, const tdm_response_error_t *e);
/* READY: the body is empty; present so callers need not special-case it. */
int tdm_response_encode_ready(tdm_writer_t *w);
int tdm_response_encode_authenticate(tdm_writer_t *w, tdm_str_t authenticator);
int tdm_response_encode_supported(tdm_writer_t *w, const tdm_response_supported_t *s);
/* AUTH_CHALLENGE and AUTH_SUCCESS: one [bytes] token (len < 0 = null). */
int tdm_response_encode_auth_token(tdm_writer_t *w, tdm_bytes_t token);
int tdm_response_encode_void(tdm_writer_t *w);
int tdm_response_encode_set_keyspace(tdm_writer_t *w, tdm_str_t keyspace);
int tdm_response_encode_schema_change(tdm_writer_t *w, uint8_t version, const tdm_response_schema_change_t *sc);
int tdm_response_encode_prepared(tdm_writer_t *w, uint8_t version, const tdm_response_prepared_t *p);
/* RESULT Rows from decoded parts: metadata, then rows_count and the raw content. */
int tdm_response_encode_rows(tdm_writer_t *w, uint8_t version, const tdm_response_rows_t *rows);
int tdm_response_encode_event(tdm_writer_t *w, uint8_t version, const tdm_response_event_t *ev);
/* Metadata alone (flags decide which parts are written, as for decoding). */
int tdm_response_encode_metadata(tdm_writer_t *w, uint8_t version, tdm_response_meta_kind_t kind,
                                 const tdm_response_metadata_t *m);

/* Names for encoders and logs. */
const char *tdm_response_target_name(tdm_response_target_t t);        /* "KEYSPACE" ... or NULL */
const char *tdm_response_event_name(tdm_response_event_kind_t k);     /* "TOPOLOGY_CHANGE" ... or NULL */

/* ---- Rows builder ----
 *
 *   tdm_response_rows_begin(&b, w, version, &opts);          kind, flags, paging state, global spec
 *   tdm_response_rows_column(&b, &col) ...                   one per column (skip with NO_METADATA)
 *   tdm_response_rows_cell_text(&b, ...) ...                 row-major, columns cells per row
 *   rc = tdm_response_rows_finish(&b);                       patches both counts; 0 or first error
 *
 * Misuse (a column after a cell, a partial last row, ...) is TDM_EINVAL at finish. */
typedef struct tdm_response_rows_options_s {
  uint32_t flags;              /* TDM_RFLAG_GLOBAL_TABLES_SPEC / HAS_MORE_PAGES / NO_METADATA / METADATA_CHANGED */
  tdm_str_t keyspace;          /* global table spec (GLOBAL_TABLES_SPEC) */
  tdm_str_t table;             /* global table spec (GLOBAL_TABLES_SPEC) */
  tdm_bytes_t paging_state;    /* HAS_MORE_PAGES */
  tdm_bytes_t new_metadata_id; /* METADATA_CHANGED (v5/DSE_V2; ignored in other versions) */
  int32_t columns_count;       /* NO_METADATA: the number of cells per row */
} tdm_response_rows_options_t;

typedef struct tdm_response_rows_builder_s {
  tdm_writer_t *w;          /* output, RESULT body from its kind on */
  uint8_t version;          /* protocol version */
  uint32_t flags;           /* flags written */
  size_t columns_offset;    /* where columns_count is patched */
  size_t rows_offset;       /* where rows_count is patched (valid once in_rows) */
  int32_t columns;          /* columns declared so far (or the NO_METADATA count) */
  int32_t rows;             /* complete rows */
  int32_t cells;            /* cells written in the current row */
  bool in_rows;             /* metadata closed, rows_count reserved */
  int err;                  /* first misuse (TDM_EINVAL); the writer keeps its own errors */
} tdm_response_rows_builder_t;

void tdm_response_rows_begin(tdm_response_rows_builder_t *b, tdm_writer_t *w, uint8_t version,
                             const tdm_response_rows_options_t *opts);
/* Keyspace and table are ignored with a global table spec. */
void tdm_response_rows_column(tdm_response_rows_builder_t *b, const tdm_response_column_t *col);
/* Same, with the type given as CQL text ("set<text>"). */
void tdm_response_rows_column_named(tdm_response_rows_builder_t *b, tdm_str_t name, tdm_str_t type_text);
/* One cell from its serialized value (len < 0 = null). */
void tdm_response_rows_cell(tdm_response_rows_builder_t *b, const void *value, int32_t len);
void tdm_response_rows_cell_null(tdm_response_rows_builder_t *b);
void tdm_response_rows_cell_text(tdm_response_rows_builder_t *b, tdm_str_t s);   /* text, varchar, ascii */
void tdm_response_rows_cell_int(tdm_response_rows_builder_t *b, int32_t v);
void tdm_response_rows_cell_bigint(tdm_response_rows_builder_t *b, int64_t v);    /* also counter, timestamp */
void tdm_response_rows_cell_boolean(tdm_response_rows_builder_t *b, bool v);
void tdm_response_rows_cell_uuid(tdm_response_rows_builder_t *b, const uint8_t uuid[16]); /* uuid, timeuuid */
void tdm_response_rows_cell_inet(tdm_response_rows_builder_t *b, const uint8_t *addr, uint8_t addr_len);
/* list<text> and set<text> share one encoding. */
void tdm_response_rows_cell_text_list(tdm_response_rows_builder_t *b, const tdm_str_t *items, size_t n);
void tdm_response_rows_cell_text_map(tdm_response_rows_builder_t *b, const tdm_str_t *keys, const tdm_str_t *values,
                                     size_t n);
int tdm_response_rows_finish(tdm_response_rows_builder_t *b);

#endif
