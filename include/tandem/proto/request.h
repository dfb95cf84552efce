/* CQL request bodies (STARTUP, AUTH_RESPONSE, OPTIONS, QUERY, PREPARE, EXECUTE, BATCH, REGISTER) for
 * protocol v2-v5, DSE_V1 and DSE_V2: decoders that borrow from the body and record the offsets the proxy
 * rewrites, cheap peeks for routing, encoders through tdm_writer_t, and rewrite helpers (prepared ids,
 * per-request keyspace). Nothing here allocates except the writer it is handed. */
#ifndef TANDEM_PROTO_REQUEST_H
#define TANDEM_PROTO_REQUEST_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/proto/opcodes.h>
#include <tandem/proto/reader.h>
#include <tandem/proto/writer.h>

/*
 * Conventions shared by every function below.
 *  - body/len is one message body: after the frame header, after decompression.
 *  - Decoders return 0, TDM_EPROTO_MALFORMED (truncated, negative or inconsistent lengths, undefined
 *    flags, trailing bytes), TDM_EPROTO_VERSION (not v2-v5/DSE_V1/DSE_V2) or TDM_EPROTO_OPCODE (not a
 *    request). On failure *why (when why != NULL) points at a short, stable, static English phrase that
 *    names the defect ("prepared id exceeds the body"), fit for a PROTOCOL_ERROR message; it is left
 *    untouched on success. Decoders never read outside body[0..len).
 *  - Decoded structs point into the body: they live as long as the body does.
 *  - Offsets are byte offsets from the start of the body.
 *  - Encoders append to the writer and return tdm_writer_error(w) (0, TDM_ENOMEM, TDM_EOVERFLOW), or
 *    TDM_EINVAL (also recorded in the writer) when the input cannot be encoded for that version.
 */

/* ---- query parameters (QUERY, EXECUTE, and the tail of BATCH) ---- */

/* <consistency><flags>[values][page_size][paging_state][serial_consistency][timestamp][keyspace]
 * [now_in_seconds][DSE continuous paging]. Which fields are present is decided by flags alone; a field
 * whose flag is clear reads as zero/empty. For BATCH the values fields are unused and, in v2, there is
 * no flags field at all. Encoders read the same struct and ignore every *_offset field. */
typedef struct tdm_query_params_s {
  uint16_t consistency;        /* [consistency] TDM_CL_*; decoders accept 0x0000-0x000B (NODE_LOCAL) */
  uint32_t flags;              /* TDM_QFLAG_* as sent; a v2-v4 [byte] is widened */
  size_t flags_offset;         /* offset of the flags field (v2 BATCH: where it would be) */
  uint8_t flags_size;          /* 1 ([byte], v2-v4), 4 ([int], v5/DSE), 0 (v2 BATCH: absent) */
  uint16_t values_count;       /* bound values (TDM_QFLAG_VALUES), else 0 */
  size_t values_offset;        /* offset of the first value, just after the [short] count */
  const uint8_t *values;       /* the values as on the wire (each preceded by its [string] name with
                                  TDM_QFLAG_NAMES_FOR_VALUES), without the count; NULL when none */
  size_t values_len;           /* bytes in values */
  int32_t page_size;           /* TDM_QFLAG_PAGE_SIZE (rows, or bytes with DSE PAGE_SIZE_BYTES) */
  tdm_bytes_t paging_state;    /* TDM_QFLAG_PAGING_STATE; len -1 (null) when absent */
  uint16_t serial_consistency; /* TDM_QFLAG_SERIAL_CONSISTENCY */
  int64_t default_timestamp;   /* TDM_QFLAG_DEFAULT_TIMESTAMP, microseconds */
  tdm_str_t keyspace;          /* TDM_QFLAG_WITH_KEYSPACE (v5, DSE_V2) */
  size_t keyspace_offset;      /* offset of the [string] keyspace, or where one would be inserted */
  int32_t now_in_seconds;      /* TDM_QFLAG_NOW_IN_SECONDS (v5) */
  int32_t max_pages;           /* DSE continuous paging (TDM_QFLAG_DSE_CONTINUOUS_PAGING) */
  int32_t pages_per_second;    /* DSE continuous paging */
  int32_t next_pages;          /* DSE continuous paging, DSE_V2 only */
  size_t end_offset;           /* offset just past the parameters */
} tdm_query_params_t;

/* Decodes parameters at r's cursor for `opcode` (QUERY and EXECUTE share the rules; BATCH has its own
 * flag set) and leaves the cursor after them. Offsets are relative to r->buf. */
TDM_MUSTCHECK int tdm_request_decode_params(uint8_t version, uint8_t opcode, tdm_reader_t *r,
                                           tdm_query_params_t *p, const char **why);
/* Encodes parameters for `opcode` (QUERY, EXECUTE or BATCH). */
int tdm_request_encode_params(tdm_writer_t *w, uint8_t version, uint8_t opcode, const tdm_query_params_t *p);
/* Writes one [value]: len >= 0 bytes, -1 null, -2 unset (anything below -2 is TDM_EINVAL). */
void tdm_request_write_value(tdm_writer_t *w, tdm_bytes_t v);
/* Whether `version` is one this module decodes (v2, v3, v4, v5, DSE_V1, DSE_V2). */
bool tdm_request_version_ok(uint8_t version);

/* Walks a values span from a decoded message (already validated, so errors mean a foreign span). */
typedef struct tdm_values_iter_s {
  tdm_reader_t r; /* cursor over the span */
  uint16_t left;  /* values not yet returned */
  bool named;     /* each value is preceded by a [string] name */
} tdm_values_iter_t;

void tdm_values_iter_init(tdm_values_iter_t *it, const uint8_t *values, size_t len, uint16_t count, bool named);
/* Returns 1 with the next value (name empty when unnamed), 0 at the end, <0 if the span is malformed. */
TDM_MUSTCHECK int tdm_values_next(tdm_values_iter_t *it, tdm_str_t *name, tdm_bytes_t *value);

/* ---- STARTUP, AUTH_RESPONSE, OPTIONS, REGISTER ---- */

/* Presence bits of the STARTUP options tandem knows (keys match case-insensitively). */
#define TDM_REQUEST_STARTUP_CQL_VERSION         0x0001u
#define TDM_REQUEST_STARTUP_COMPRESSION         0x0002u
#define TDM_REQUEST_STARTUP_DRIVER_NAME         0x0004u
#define TDM_REQUEST_STARTUP_DRIVER_VERSION      0x0008u
#define TDM_REQUEST_STARTUP_APPLICATION_NAME    0x0010u
#define TDM_REQUEST_STARTUP_APPLICATION_VERSION 0x0020u
#define TDM_REQUEST_STARTUP_CLIENT_ID           0x0040u
#define TDM_REQUEST_STARTUP_THROW_ON_OVERLOAD   0x0080u
#define TDM_REQUEST_STARTUP_NO_COMPACT          0x0100u

/* STARTUP [string map]. A known key given twice (in any case) is malformed; unknown keys are kept for
 * iteration only. */
typedef struct tdm_startup_s {
  tdm_str_t cql_version;         /* CQL_VERSION */
  tdm_str_t compression;         /* COMPRESSION, as sent (case not folded) */
  tdm_str_t driver_name;         /* DRIVER_NAME */
  tdm_str_t driver_version;      /* DRIVER_VERSION */
  tdm_str_t application_name;    /* APPLICATION_NAME */
  tdm_str_t application_version; /* APPLICATION_VERSION */
  tdm_str_t client_id;           /* CLIENT_ID */
  tdm_str_t throw_on_overload;   /* THROW_ON_OVERLOAD (v5) */
  tdm_str_t no_compact;          /* NO_COMPACT */
  uint32_t present;              /* TDM_REQUEST_STARTUP_* bits of the options above that were sent */
  uint16_t count;                /* entries in the map */
  const uint8_t *map;            /* the entries, after the [short] count */
  size_t map_len;                /* bytes in map */
} tdm_startup_t;

typedef struct tdm_startup_iter_s {
  tdm_reader_t r; /* cursor over the entries */
  uint16_t left;  /* entries not yet returned */
} tdm_startup_iter_t;

/* REGISTER event types. */
#define TDM_REQUEST_EVENT_TOPOLOGY_CHANGE 0x1u
#define TDM_REQUEST_EVENT_STATUS_CHANGE   0x2u
#define TDM_REQUEST_EVENT_SCHEMA_CHANGE   0x4u

/* REGISTER [string list]; an event type other than the three above is malformed (as in Cassandra). */
typedef struct tdm_register_s {
  uint16_t count;      /* entries in the list */
  uint32_t events;     /* TDM_REQUEST_EVENT_* bits */
  const uint8_t *list; /* the entries, after the [short] count */
  size_t list_len;     /* bytes in list */
} tdm_register_t;

TDM_MUSTCHECK int tdm_request_decode_startup(const void *body, size_t len, tdm_startup_t *out, const char **why);
void tdm_startup_iter_init(tdm_startup_iter_t *it, const tdm_startup_t *s);
/* Next option in wire order; false at the end. */
bool tdm_startup_next(tdm_startup_iter_t *it, tdm_str_t *key, tdm_str_t *value);
/* Looks up any option, case-insensitively (first match). */
bool tdm_startup_get(const tdm_startup_t *s, tdm_str_t key, tdm_str_t *value);

/* AUTH_RESPONSE [bytes]: token->len -1 for a null token. */
TDM_MUSTCHECK int tdm_request_decode_auth_response(const void *body, size_t len, tdm_bytes_t *token, const char **why);
/* OPTIONS: the body must be empty. */
TDM_MUSTCHECK int tdm_request_decode_options(const void *body, size_t len, const char **why);
TDM_MUSTCHECK int tdm_request_decode_register(const void *body, size_t len, tdm_register_t *out, const char **why);
/* Walks a decoded REGISTER list: *pos starts at 0; returns false at the end. */
bool tdm_register_next(const tdm_register_t *reg, size_t *pos, tdm_str_t *event);

/* ---- QUERY, PREPARE, EXECUTE ---- */

typedef struct tdm_query_s {
  tdm_str_t query;           /* CQL text ([long string] at offset 0) */
  tdm_query_params_t params; /* everything after the text */
} tdm_query_t;

/* PREPARE: <query>, then in v5 and DSE_V2 <flags>[<keyspace>]. */
typedef struct tdm_prepare_s {
  tdm_str_t query;        /* CQL text ([long string] at offset 0) */
  uint32_t flags;         /* TDM_PFLAG_* (v5, DSE_V2), else 0 */
  size_t flags_offset;    /* offset of the [int] flags (v5, DSE_V2), else the body length */
  tdm_str_t keyspace;     /* TDM_PFLAG_WITH_KEYSPACE */
  size_t keyspace_offset; /* offset of the [string] keyspace, or where one would be inserted */
} tdm_prepare_t;

/* EXECUTE: <id>[<result_metadata_id> (v5, DSE_V2)]<query_parameters>. Each id's [short] length sits
 * just before its bytes (id_offset - 2), so an id of equal length can be patched in place. */
typedef struct tdm_execute_s {
  tdm_bytes_t id;                 /* prepared statement id */
  size_t id_offset;               /* offset of the id bytes (always 2) */
  bool has_metadata_id;           /* the version carries result_metadata_id (v5, DSE_V2) */
  tdm_bytes_t result_metadata_id; /* when has_metadata_id */
  size_t metadata_id_offset;      /* offset of its bytes, when has_metadata_id */
  tdm_query_params_t params;      /* everything after the ids */
} tdm_execute_t;

TDM_MUSTCHECK int tdm_request_decode_query(uint8_t version, const void *body, size_t len, tdm_query_t *out,
                                          const char **why);
TDM_MUSTCHECK int tdm_request_decode_prepare(uint8_t version, const void *body, size_t len, tdm_prepare_t *out,
                                            const char **why);
TDM_MUSTCHECK int tdm_request_decode_execute(uint8_t version, const void *body, size_t len, tdm_execute_t *out,
                                            const char **why);

/* ---- BATCH ---- */

/* <type><n><child_1>...<child_n><consistency><flags>[serial][timestamp][keyspace][now_in_seconds].
 * Children are <kind><query [long string] | id [short bytes]><[short] n><[value]>*n; they carry no
 * names: flag 0x40 on a BATCH is refused (the spec marks it unusable, CASSANDRA-10246). Decoding
 * validates every child; tdm_batch_next_child then walks them without copying. */
typedef struct tdm_batch_s {
  const uint8_t *body;       /* the body, for tdm_batch_next_child */
  size_t len;                /* body length */
  uint8_t type;              /* TDM_BATCH_LOGGED / UNLOGGED / COUNTER */
  uint16_t count;            /* children */
  uint16_t prepared_count;   /* children of kind 1 (prepared id) */
  size_t children_offset;    /* offset of the first child (3) */
  size_t children_end;       /* offset just past the last child, where the consistency starts */
  tdm_query_params_t params; /* consistency onwards; the values fields are unused */
} tdm_batch_t;

#define TDM_REQUEST_BATCH_KIND_QUERY    0
#define TDM_REQUEST_BATCH_KIND_PREPARED 1

/* One child. For encoding fill kind, query or id, values_count, values and values_len. */
typedef struct tdm_batch_child_s {
  uint16_t index;         /* position in the batch, from 0 */
  uint8_t kind;           /* TDM_REQUEST_BATCH_KIND_* */
  tdm_str_t query;        /* kind QUERY: the CQL text */
  tdm_bytes_t id;         /* kind PREPARED: the prepared id */
  size_t offset;          /* offset of the kind byte */
  size_t id_offset;       /* kind PREPARED: offset of the id bytes ([short] length at id_offset - 2) */
  uint16_t values_count;  /* bound values */
  size_t values_offset;   /* offset of the first value, after the [short] count */
  const uint8_t *values;  /* the values as on the wire, without the count; NULL when none */
  size_t values_len;      /* bytes in values */
  size_t end_offset;      /* offset just past this child */
} tdm_batch_child_t;

typedef struct tdm_batch_iter_s {
  const tdm_batch_t *batch; /* the decoded batch */
  size_t pos;               /* offset of the next child */
  uint16_t next;            /* index of the next child */
} tdm_batch_iter_t;

TDM_MUSTCHECK int tdm_request_decode_batch(uint8_t version, const void *body, size_t len, tdm_batch_t *out,
                                          const char **why);
void tdm_batch_iter_init(tdm_batch_iter_t *it, const tdm_batch_t *batch);
/* Returns 1 with the next child, 0 after the last one, <0 only if the batch was not decoded by
 * tdm_request_decode_batch (the walk is bounds-checked all the same). */
TDM_MUSTCHECK int tdm_batch_next_child(tdm_batch_iter_t *it, tdm_batch_child_t *child);

/* ---- any request ---- */

typedef struct tdm_request_s {
  uint8_t version; /* protocol version of the frame */
  uint8_t opcode;  /* TDM_OP_* request opcode; selects the member of u */
  union {
    tdm_startup_t startup;   /* STARTUP */
    tdm_bytes_t auth_token;  /* AUTH_RESPONSE */
    tdm_query_t query;       /* QUERY */
    tdm_prepare_t prepare;   /* PREPARE */
    tdm_execute_t execute;   /* EXECUTE */
    tdm_batch_t batch;       /* BATCH */
    tdm_register_t reg;      /* REGISTER */
  } u;                       /* OPTIONS has no member */
} tdm_request_t;

/* Decodes any request opcode; other opcodes give TDM_EPROTO_OPCODE. */
TDM_MUSTCHECK int tdm_request_decode(uint8_t version, uint8_t opcode, const void *body, size_t len,
                                    tdm_request_t *out, const char **why);

/* ---- peeks: only what routing needs, without decoding the rest ---- */

/* QUERY or PREPARE text (the leading [long string]). */
TDM_MUSTCHECK int tdm_request_peek_query(uint8_t version, const void *body, size_t len, tdm_str_t *query);
/* EXECUTE prepared id and, in v5/DSE_V2, result_metadata_id (metadata_id may be NULL; it reads len 0 in
 * versions without one). */
TDM_MUSTCHECK int tdm_request_peek_execute_id(uint8_t version, const void *body, size_t len, tdm_bytes_t *id,
                                             tdm_bytes_t *metadata_id);
/* Consistency of a QUERY, EXECUTE or BATCH (BATCH skips over its children); TDM_EINVAL for other opcodes. */
TDM_MUSTCHECK int tdm_request_peek_consistency(uint8_t version, uint8_t opcode, const void *body, size_t len,
                                              uint16_t *consistency);

/* ---- encoders ---- */

int tdm_request_encode_startup(tdm_writer_t *w, const tdm_str_t *keys, const tdm_str_t *values, size_t n);
/* len < 0 writes a null token. */
int tdm_request_encode_auth_response(tdm_writer_t *w, const void *token, int32_t len);
int tdm_request_encode_options(tdm_writer_t *w);
int tdm_request_encode_register(tdm_writer_t *w, const tdm_str_t *events, size_t n);
int tdm_request_encode_query(tdm_writer_t *w, uint8_t version, tdm_str_t query, const tdm_query_params_t *p);
/* keyspace NULL: none. A keyspace needs v5 or DSE_V2. */
int tdm_request_encode_prepare(tdm_writer_t *w, uint8_t version, tdm_str_t query, const tdm_str_t *keyspace);
/* metadata_id is written in v5/DSE_V2 only (ignored otherwise). */
int tdm_request_encode_execute(tdm_writer_t *w, uint8_t version, tdm_bytes_t id, tdm_bytes_t metadata_id,
                               const tdm_query_params_t *p);
int tdm_request_encode_batch(tdm_writer_t *w, uint8_t version, uint8_t type, const tdm_batch_child_t *children,
                             size_t n, const tdm_query_params_t *p);

/* ---- rewrites: a new body appended to `out`; every byte not named is copied unchanged. On any error
 * `out` holds no usable body (discard it). ---- */

/* EXECUTE with another prepared id and, in v5/DSE_V2, another result_metadata_id (new_metadata_id
 * NULL keeps the original). When lengths are equal a caller may instead patch in place at id_offset /
 * metadata_id_offset. */
TDM_MUSTCHECK int tdm_request_rewrite_execute_id(uint8_t version, const void *body, size_t len, const void *new_id,
                                                size_t new_id_len, const void *new_metadata_id,
                                                size_t new_metadata_id_len, tdm_writer_t *out, const char **why);

/* Called for each prepared child: *new_id starts as child->id; change it to substitute (the bytes must
 * stay valid until tdm_request_rewrite_batch_ids returns). A negative return aborts the rewrite and is
 * returned as is (e.g. TDM_ENOTFOUND for a registry miss). */
typedef int (*tdm_batch_id_map_fn)(void *ctx, const tdm_batch_child_t *child, tdm_bytes_t *new_id);

TDM_MUSTCHECK int tdm_request_rewrite_batch_ids(uint8_t version, const void *body, size_t len,
                                               tdm_batch_id_map_fn map, void *ctx, tdm_writer_t *out,
                                               const char **why);

/* v5/DSE_V2 QUERY, PREPARE or BATCH without a keyspace: the same body with the keyspace flag set and
 * `keyspace` inserted at keyspace_offset. TDM_EINVAL (with *why) for another version or opcode, or a
 * request that already names a keyspace; nothing is written then. */
TDM_MUSTCHECK int tdm_request_add_keyspace(uint8_t version, uint8_t opcode, const void *body, size_t len,
                                          tdm_str_t keyspace, tdm_writer_t *out, const char **why);

#endif
