/* Virtual system tables (behaviour.md §9): SELECTs on system.local, system.peers and system.peers_v2,
 * and their PREPARE/EXECUTE, are answered by tandem itself so drivers see tandem's instances and never
 * a real node. The route module calls the four entry points below; the rest (SELECT subset parser,
 * token ring, host ids, row building) is exposed for unit tests.
 *
 *   route: QUERY/PREPARE/EXECUTE ──> tdm_vtables_* ──> parse (vtables_select.c)
 *          ──> rows from conf (instances) + topology (paired real node) + connection (rpc_address)
 *          ──> RESULT Rows / Prepared, or INVALID with the exact §14 texts ──> tdm_client_respond_bytes */
#ifndef TANDEM_FRONTEND_VTABLES_H
#define TANDEM_FRONTEND_VTABLES_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/conf/conf.h>
#include <tandem/net/sockaddr.h>
#include <tandem/backend/topology.h>
#include <tandem/proto/cql_lexer.h>
#include <tandem/proto/reader.h>
#include <tandem/proto/writer.h>

typedef struct tdm_client_s tdm_client_t;

/* ---- route entry points (worker thread) ---- */

/* Whether keyspace.table (canonical names) is one of the three virtual tables. */
bool tdm_vtables_is_virtual(tdm_str_t keyspace, tdm_str_t table);
/* Answers a QUERY on a virtual table: RESULT Rows or INVALID. `resolved_keyspace` names the keyspace
 * of an unqualified table (per-request keyspace, else the connection's). Bind markers read no values
 * (their filters are not applied); use tdm_vtables_query_body when the QUERY carries values. 0 when a
 * response was sent, TDM_ECLOSED when the client is gone, TDM_EINVAL when the text is not a SELECT on a
 * virtual table (nothing sent). */
int tdm_vtables_query(tdm_client_t *c, int16_t stream, tdm_str_t query, tdm_str_t resolved_keyspace);
/* The same from the whole (decompressed) QUERY body, so `WHERE peer = ?` uses the bound values. */
int tdm_vtables_query_body(tdm_client_t *c, int16_t stream, const uint8_t *body, size_t len,
                           tdm_str_t resolved_keyspace);
/* Answers a PREPARE of a virtual-table SELECT with RESULT Prepared: id = md5("tandem:" + keyspace + ":"
 * + query), bind and result metadata, a result_metadata_id in v5 and DSE_V2. The statement is kept
 * in this worker's table for EXECUTE. Returns as tdm_vtables_query. */
int tdm_vtables_prepare(tdm_client_t *c, int16_t stream, tdm_str_t query, tdm_str_t keyspace);
/* Answers an EXECUTE whose id is a virtual statement of this worker; `body` is the whole
 * (decompressed) EXECUTE body, for the bound values, SKIP_METADATA and the v5 result_metadata_id.
 * False (nothing sent) when the id is not a virtual statement here. */
bool tdm_vtables_execute(tdm_client_t *c, int16_t stream, const uint8_t *id, size_t id_len, const uint8_t *body,
                         size_t len);

/* ---- §9.2: tokens, host ids, statement ids ---- */

/* token(i, t) = floor(2^64 / (T·N)) · (t·N + i) − 2^63 in exact integer arithmetic (zdm-proxy's
 * formula): instance i of n, virtual token t of num_tokens. i < n, t < num_tokens, n·num_tokens >= 1. */
int64_t tdm_vtables_token(uint32_t i, uint32_t n, uint32_t t, uint32_t num_tokens);
/* RFC 4122 version-5 UUID, nil namespace, name = the 16-byte IPv6 form of addr (4 bytes = IPv4,
 * mapped to ::ffff:a.b.c.d; 16 bytes as is). */
void tdm_vtables_host_id(const uint8_t *addr, size_t addr_len, uint8_t out[16]);
/* md5("tandem:" + keyspace + ":" + query). */
void tdm_vtables_statement_id(tdm_str_t keyspace, tdm_str_t query, uint8_t out[16]);

/* ---- the SELECT subset (§9.1) ---- */

typedef enum tdm_vtable_e {
  TDM_VTABLE_NONE = 0,  /* not a virtual table */
  TDM_VTABLE_LOCAL,     /* system.local */
  TDM_VTABLE_PEERS,     /* system.peers */
  TDM_VTABLE_PEERS_V2,  /* system.peers_v2 */
} tdm_vtable_t;

#define TDM_VSELECT_MAX_ITEMS 64   /* selectors per statement */
#define TDM_VSELECT_MAX_MARKERS 32 /* bind markers per statement */

typedef enum tdm_vsel_kind_e {
  TDM_VSEL_COLUMN = 0, /* a column, by name */
  TDM_VSEL_COUNT,      /* count(*) or count(1): rows matching, as bigint */
  TDM_VSEL_NOW,        /* now(): a fresh timeuuid */
} tdm_vsel_kind_t;

typedef struct tdm_vsel_item_s {
  tdm_vsel_kind_t kind;  /* what is selected */
  tdm_cql_name_t name;   /* COLUMN: the column as written */
  tdm_cql_name_t alias;  /* AS alias; absent when none */
} tdm_vsel_item_t;

/* A recognised WHERE condition or LIMIT: a literal token or a bind marker. */
typedef struct tdm_vsel_term_s {
  bool set;              /* the condition is present */
  int marker;            /* index of its bind marker, -1 for a literal */
  tdm_cql_token_t literal; /* the literal (STRING, NUMBER, ...) when marker < 0 */
} tdm_vsel_term_t;

/* One bind marker, in text order. */
typedef struct tdm_vsel_marker_s {
  tdm_cql_name_t column; /* column compared with it; absent for LIMIT ? */
  tdm_str_t name;        /* :name of a named marker, empty for ? */
  bool limit;            /* the LIMIT marker ("[limit]", int) */
} tdm_vsel_marker_t;

/* A parsed SELECT; names and tokens borrow from the query text. */
typedef struct tdm_vselect_s {
  tdm_vtable_t table;                            /* the virtual table read */
  bool star;                                     /* SELECT * */
  tdm_vsel_item_t items[TDM_VSELECT_MAX_ITEMS];  /* selectors in order (none with star) */
  size_t n_items;                                /* entries in items */
  tdm_vsel_term_t key;                           /* WHERE key = ... */
  tdm_vsel_term_t peer;                          /* WHERE peer = ... */
  tdm_vsel_term_t peer_port;                     /* WHERE peer_port = ... */
  tdm_vsel_term_t limit;                         /* LIMIT ... */
  tdm_vsel_marker_t markers[TDM_VSELECT_MAX_MARKERS]; /* every bind marker, also in ignored conditions */
  size_t n_markers;                              /* entries in markers */
} tdm_vselect_t;

/* Parses query. 0 on success; TDM_ENOTFOUND when the text is not a SELECT on a virtual table
 * (session_keyspace resolves an unqualified table); TDM_EINVAL when it is one but uses something outside
 * the subset (out->table is then set, for the error text). Never reads past the text. */
int tdm_vselect_parse(tdm_str_t query, tdm_str_t session_keyspace, tdm_vselect_t *out);

/* "local", "peers", "peers_v2". */
const char *tdm_vtable_name(tdm_vtable_t t);

/* ---- rows (§9.3) ---- */

/* What a result depends on besides the statement. */
typedef struct tdm_vtables_ctx_s {
  const tdm_conf_t *conf;         /* instances, index, num_tokens, listen port */
  const tdm_topology_t *topology; /* the system_queries_mode cluster; NULL while unknown */
  tdm_sockaddr_t local;           /* the address and port the client connected to */
  uint8_t version;                /* the connection's protocol version */
} tdm_vtables_ctx_t;

/* An INVALID answer: the exact §14 text. */
typedef struct tdm_vtables_error_s {
  uint32_t code;      /* TDM_ERR_INVALID */
  char message[256];  /* `Undefined column name <x>`, `tandem: unsupported clause ...`, ... */
} tdm_vtables_error_t;

/* Options of one Rows answer. */
typedef struct tdm_vtables_opts_s {
  const tdm_bytes_t *values;  /* bound values, one per marker (NULL: none bound) */
  size_t n_values;            /* entries in values */
  bool skip_metadata;         /* EXECUTE asked for NO_METADATA (and, in v5, its metadata id is current) */
  bool metadata_changed;      /* v5 EXECUTE with a stale result_metadata_id: send METADATA_CHANGED */
} tdm_vtables_opts_t;

/* Appends a RESULT Rows body for sel. 0, TDM_EINVAL with *err filled (unknown column, peers_v2 the
 * cluster lacks), or a writer error. */
int tdm_vtables_rows(const tdm_vtables_ctx_t *ctx, const tdm_vselect_t *sel, const tdm_vtables_opts_t *opts,
                     tdm_writer_t *w, tdm_vtables_error_t *err);
/* Appends a RESULT Prepared body (id given) with variables and result metadata. Same returns. */
int tdm_vtables_prepared(const tdm_vtables_ctx_t *ctx, const tdm_vselect_t *sel, const uint8_t id[16],
                         tdm_writer_t *w, tdm_vtables_error_t *err);
/* md5 of the encoded result metadata: the v5 result_metadata_id. Same returns. */
int tdm_vtables_metadata_id(const tdm_vtables_ctx_t *ctx, const tdm_vselect_t *sel, uint8_t out[16],
                            tdm_vtables_error_t *err);

#endif
