/* Statement classifier for QUERY and PREPARE text (behaviour.md §5.1): first keyword -> statement kind
 * and routing class, plus what routing, virtual tables and the journal need (keyspace, table, LWT,
 * batch type, JSON/DISTINCT, non-deterministic calls). Policy-free, allocation-free; it reads only as
 * far as it must. Invariant: text whose first token is the keyword SELECT is always a read. */
#ifndef TANDEM_PROTO_CLASSIFY_H
#define TANDEM_PROTO_CLASSIFY_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/proto/opcodes.h>
#include <tandem/proto/cql_lexer.h>

/* Statement kind: the first keyword (two for BEGIN BATCH). */
#define TDM_CLASSIFY_KIND_MAP(X) \
  X(UNKNOWN)                     \
  X(SELECT)                      \
  X(INSERT)                      \
  X(UPDATE)                      \
  X(DELETE)                      \
  X(BATCH)                       \
  X(USE)                         \
  X(CREATE)                      \
  X(ALTER)                       \
  X(DROP)                        \
  X(TRUNCATE)                    \
  X(GRANT)                       \
  X(REVOKE)                      \
  X(LIST)                        \
  X(CALL)

typedef enum tdm_stmt_kind {
#define TDM_CLASSIFY_KIND_ENUM(name) TDM_CLASSIFY_KIND_##name,
  TDM_CLASSIFY_KIND_MAP(TDM_CLASSIFY_KIND_ENUM)
#undef TDM_CLASSIFY_KIND_ENUM
  TDM_CLASSIFY_KIND_MAX /* sentinel */
} tdm_stmt_kind_t;

/* Routing class (behaviour.md §5.2): what the router decides on. */
#define TDM_CLASSIFY_CLASS_MAP(X) \
  X(UNKNOWN)   /* other or unparseable text not starting with SELECT: both clusters */ \
  X(READ)      /* SELECT, parseable or not: never both */                               \
  X(WRITE)     /* INSERT, UPDATE, DELETE, BEGIN ... APPLY BATCH */                     \
  X(USE)       /* USE <ks> */                                                           \
  X(SCHEMA)    /* CREATE / ALTER / DROP / TRUNCATE of data objects */                   \
  X(DCL)       /* GRANT, REVOKE, CREATE / ALTER / DROP ROLE or USER */                  \
  X(AUTH_READ) /* LIST ROLES / USERS / PERMISSIONS: primary only */                     \
  X(CALL)      /* CALL; see TDM_CLASSIFY_F_INSIGHTS */

typedef enum tdm_stmt_class {
#define TDM_CLASSIFY_CLASS_ENUM(name) TDM_CLASSIFY_CLASS_##name,
  TDM_CLASSIFY_CLASS_MAP(TDM_CLASSIFY_CLASS_ENUM)
#undef TDM_CLASSIFY_CLASS_ENUM
  TDM_CLASSIFY_CLASS_MAX /* sentinel */
} tdm_stmt_class_t;

/* Object of CREATE / ALTER / DROP / TRUNCATE / GRANT / REVOKE / LIST. */
#define TDM_CLASSIFY_OBJ_MAP(X)                                              \
  X(NONE)              /* not a DDL/DCL/LIST statement */                    \
  X(UNKNOWN)           /* DDL/DCL whose object was not recognised */         \
  X(KEYSPACE)          /* KEYSPACE or SCHEMA */                              \
  X(TABLE)             /* TABLE or COLUMNFAMILY (TRUNCATE too) */            \
  X(INDEX)             /* INDEX */                                           \
  X(CUSTOM_INDEX)      /* CREATE CUSTOM INDEX */                             \
  X(SEARCH_INDEX)      /* DSE SEARCH INDEX */                                \
  X(TYPE)              /* user-defined TYPE */                               \
  X(FUNCTION)          /* [OR REPLACE] FUNCTION */                           \
  X(AGGREGATE)         /* [OR REPLACE] AGGREGATE */                          \
  X(MATERIALIZED_VIEW) /* MATERIALIZED VIEW */                               \
  X(TRIGGER)           /* TRIGGER */                                         \
  X(ROLE)              /* ROLE; GRANT/REVOKE of a role; LIST ROLES */        \
  X(USER)              /* USER; LIST USERS */                                \
  X(PERMISSION)        /* GRANT/REVOKE <permission> ON; LIST [ALL] PERMISSIONS */

typedef enum tdm_stmt_object {
#define TDM_CLASSIFY_OBJ_ENUM(name) TDM_CLASSIFY_OBJ_##name,
  TDM_CLASSIFY_OBJ_MAP(TDM_CLASSIFY_OBJ_ENUM)
#undef TDM_CLASSIFY_OBJ_ENUM
  TDM_CLASSIFY_OBJ_MAX /* sentinel */
} tdm_stmt_object_t;

/* Flags (tdm_classification_t.flags). */
#define TDM_CLASSIFY_F_LWT       0x0001u /* INSERT/UPDATE/DELETE/BATCH with a top-level IF (EXISTS, NOT EXISTS, cond) */
#define TDM_CLASSIFY_F_NONDET    0x0002u /* calls now(), uuid(), currentTimestamp()...: differs per cluster */
#define TDM_CLASSIFY_F_JSON      0x0004u /* SELECT JSON / INSERT ... JSON */
#define TDM_CLASSIFY_F_DISTINCT  0x0008u /* SELECT DISTINCT */
#define TDM_CLASSIFY_F_SYSTEM_KS 0x0010u /* explicit keyspace is a system keyspace (SELECT only) */
#define TDM_CLASSIFY_F_VIRTUAL   0x0020u /* explicit system.local / system.peers / system.peers_v2 (SELECT only) */
#define TDM_CLASSIFY_F_INSIGHTS  0x0040u /* CALL InsightsRpc.* : answered locally with RESULT Void */
#define TDM_CLASSIFY_F_IF_EXISTS 0x0080u /* DDL/DCL with IF [NOT] EXISTS (not an LWT) */

/* Virtual tables tandem answers itself (behaviour.md §9.1). */
typedef enum tdm_stmt_vtable {
  TDM_CLASSIFY_VTABLE_NONE = 0, /* not a virtual table */
  TDM_CLASSIFY_VTABLE_LOCAL,    /* system.local */
  TDM_CLASSIFY_VTABLE_PEERS,    /* system.peers */
  TDM_CLASSIFY_VTABLE_PEERS_V2, /* system.peers_v2 */
} tdm_stmt_vtable_t;

/* The result borrows the classified text (names point into it): keep the text or copy the names
 * (tdm_cql_name_copy) before the text goes. A zeroed struct is an UNKNOWN statement. */
typedef struct tdm_classification_s {
  tdm_stmt_kind_t kind;       /* first keyword */
  tdm_stmt_class_t cls;       /* routing class derived from kind and object */
  tdm_stmt_object_t object;   /* DDL/DCL/LIST object; NONE otherwise */
  enum tdm_batch_type batch;  /* BATCH only: LOGGED (default), UNLOGGED, COUNTER */
  uint32_t flags;             /* TDM_CLASSIFY_F_* */
  tdm_cql_name_t keyspace;    /* explicit keyspace (ks.table, USE ks, DDL on a keyspace); absent if none */
  tdm_cql_name_t table;       /* SELECT/INSERT/UPDATE/DELETE/TRUNCATE table; DDL table, view, or the table of
                                 CREATE INDEX / TRIGGER ... ON; absent if none */
} tdm_classification_t;

/* Classifies text[0..len) into *out (always fully written) and returns out->kind. Never allocates,
 * never fails, never reads past len; empty or comment-only text is UNKNOWN. A SELECT is read only up to
 * the name after its first depth-0 FROM; writes are read to the end (top-level IF, function calls). */
tdm_stmt_kind_t tdm_classify(const char *text, size_t len, tdm_classification_t *out);

/* `system`, or a name starting with `system_` or `dse_` (canonical names, case-sensitive). */
bool tdm_classify_is_system_keyspace(tdm_str_t keyspace);

/* For a SELECT: the virtual table it reads, using its explicit keyspace, else `session_keyspace` (the
 * per-request keyspace or the connection's current one, canonical; empty when there is none). */
tdm_stmt_vtable_t tdm_classify_virtual_table(const tdm_classification_t *c, tdm_str_t session_keyspace);

/* For a SELECT: whether it reads a system keyspace, resolving an implicit keyspace as above. */
bool tdm_classify_reads_system(const tdm_classification_t *c, tdm_str_t session_keyspace);

/* Names for logs and test tables; never NULL. */
const char *tdm_classify_kind_name(tdm_stmt_kind_t kind);
const char *tdm_classify_class_name(tdm_stmt_class_t cls);
const char *tdm_classify_object_name(tdm_stmt_object_t obj);

#endif
