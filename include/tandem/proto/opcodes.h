/* CQL native protocol constants: versions, opcodes, header and query flags, error codes, RESULT kinds,
 * consistency levels, and their names. Header-only; the single source of protocol numbers. */
#ifndef TANDEM_PROTO_OPCODES_H
#define TANDEM_PROTO_OPCODES_H

#include <stdint.h>
#include <stdbool.h>

/* Version byte values (direction bit 0x80 stripped). */
enum tdm_proto_version {
  TDM_PROTO_V1 = 0x01,
  TDM_PROTO_V2 = 0x02,
  TDM_PROTO_V3 = 0x03,
  TDM_PROTO_V4 = 0x04,
  TDM_PROTO_V5 = 0x05,
  TDM_PROTO_DSE_V1 = 0x41,
  TDM_PROTO_DSE_V2 = 0x42,
};
#define TDM_PROTO_DIRECTION_RESPONSE 0x80
#define TDM_PROTO_VERSION_MASK 0x7f

/* v5 and DSE_V2 use [int] query flags; DSE_V1 also does. v5 is the only one with segments. */
static inline bool tdm_proto_int_flags(uint8_t v) { return v == TDM_PROTO_V5 || v == TDM_PROTO_DSE_V1 || v == TDM_PROTO_DSE_V2; }
static inline bool tdm_proto_has_segments(uint8_t v) { return v == TDM_PROTO_V5; }
/* Per-request keyspace (QUERY/PREPARE/BATCH flag): v5 and DSE_V2. */
static inline bool tdm_proto_has_request_keyspace(uint8_t v) { return v == TDM_PROTO_V5 || v == TDM_PROTO_DSE_V2; }
/* result_metadata_id in PREPARED and EXECUTE: v5 and DSE_V2. */
static inline bool tdm_proto_has_metadata_id(uint8_t v) { return v == TDM_PROTO_V5 || v == TDM_PROTO_DSE_V2; }
static inline bool tdm_proto_is_v2_header(uint8_t v) { return v <= TDM_PROTO_V2; }

/* Opcodes. */
#define TDM_OPCODE_MAP(X)        \
  X(ERROR, 0x00)                 \
  X(STARTUP, 0x01)               \
  X(READY, 0x02)                 \
  X(AUTHENTICATE, 0x03)          \
  X(OPTIONS, 0x05)               \
  X(SUPPORTED, 0x06)             \
  X(QUERY, 0x07)                 \
  X(RESULT, 0x08)                \
  X(PREPARE, 0x09)               \
  X(EXECUTE, 0x0A)               \
  X(REGISTER, 0x0B)              \
  X(EVENT, 0x0C)                 \
  X(BATCH, 0x0D)                 \
  X(AUTH_CHALLENGE, 0x0E)        \
  X(AUTH_RESPONSE, 0x0F)         \
  X(AUTH_SUCCESS, 0x10)          \
  X(REVISE_REQUEST, 0xFF)

enum tdm_opcode {
#define TDM_OPCODE_ENUM(name, val) TDM_OP_##name = (val),
  TDM_OPCODE_MAP(TDM_OPCODE_ENUM)
#undef TDM_OPCODE_ENUM
};

static inline const char *tdm_opcode_name(uint8_t op)
{
  switch (op) {
#define TDM_OPCODE_NAME(name, val) case (val): return #name;
  TDM_OPCODE_MAP(TDM_OPCODE_NAME)
#undef TDM_OPCODE_NAME
  default: return "UNKNOWN";
  }
}

/* Frame header flags. */
#define TDM_FLAG_COMPRESSED     0x01
#define TDM_FLAG_TRACING        0x02
#define TDM_FLAG_CUSTOM_PAYLOAD 0x04
#define TDM_FLAG_WARNING        0x08
#define TDM_FLAG_BETA           0x10

/* QUERY / EXECUTE / BATCH parameter flags ([byte] in v3/v4, [int] in v5/DSE). */
#define TDM_QFLAG_VALUES             0x0001
#define TDM_QFLAG_SKIP_METADATA      0x0002
#define TDM_QFLAG_PAGE_SIZE          0x0004
#define TDM_QFLAG_PAGING_STATE       0x0008
#define TDM_QFLAG_SERIAL_CONSISTENCY 0x0010
#define TDM_QFLAG_DEFAULT_TIMESTAMP  0x0020
#define TDM_QFLAG_NAMES_FOR_VALUES   0x0040
#define TDM_QFLAG_WITH_KEYSPACE      0x0080
#define TDM_QFLAG_NOW_IN_SECONDS     0x0100
/* DSE only: continuous paging (DSE_V1/V2), page size in bytes. */
#define TDM_QFLAG_DSE_PAGE_SIZE_BYTES 0x40000000u
#define TDM_QFLAG_DSE_CONTINUOUS_PAGING 0x80000000u

/* PREPARE flags (v5): keyspace. */
#define TDM_PFLAG_WITH_KEYSPACE 0x01

/* RESULT kinds. */
enum tdm_result_kind {
  TDM_RESULT_VOID = 0x0001,
  TDM_RESULT_ROWS = 0x0002,
  TDM_RESULT_SET_KEYSPACE = 0x0003,
  TDM_RESULT_PREPARED = 0x0004,
  TDM_RESULT_SCHEMA_CHANGE = 0x0005,
};

/* Rows metadata flags. */
#define TDM_RFLAG_GLOBAL_TABLES_SPEC 0x0001
#define TDM_RFLAG_HAS_MORE_PAGES     0x0002
#define TDM_RFLAG_NO_METADATA        0x0004
#define TDM_RFLAG_METADATA_CHANGED   0x0008
#define TDM_RFLAG_CONTINUOUS_PAGING  0x40000000u
#define TDM_RFLAG_LAST_CONTINUOUS_PAGE 0x80000000u

/* ERROR codes. */
#define TDM_ERRCODE_MAP(X)                   \
  X(SERVER_ERROR, 0x0000)                   \
  X(PROTOCOL_ERROR, 0x000A)                 \
  X(BAD_CREDENTIALS, 0x0100)                \
  X(UNAVAILABLE, 0x1000)                    \
  X(OVERLOADED, 0x1001)                     \
  X(IS_BOOTSTRAPPING, 0x1002)               \
  X(TRUNCATE_ERROR, 0x1003)                 \
  X(WRITE_TIMEOUT, 0x1100)                  \
  X(READ_TIMEOUT, 0x1200)                   \
  X(READ_FAILURE, 0x1300)                   \
  X(FUNCTION_FAILURE, 0x1400)               \
  X(WRITE_FAILURE, 0x1500)                  \
  X(CDC_WRITE_FAILURE, 0x1600)              \
  X(CAS_WRITE_UNKNOWN, 0x1700)              \
  X(SYNTAX_ERROR, 0x2000)                   \
  X(UNAUTHORIZED, 0x2100)                   \
  X(INVALID, 0x2200)                        \
  X(CONFIG_ERROR, 0x2300)                   \
  X(ALREADY_EXISTS, 0x2400)                 \
  X(UNPREPARED, 0x2500)

enum tdm_error_code {
#define TDM_ERRCODE_ENUM(name, val) TDM_ERR_##name = (val),
  TDM_ERRCODE_MAP(TDM_ERRCODE_ENUM)
#undef TDM_ERRCODE_ENUM
};

static inline const char *tdm_error_code_name(uint32_t code)
{
  switch (code) {
#define TDM_ERRCODE_NAME(name, val) case (val): return #name;
  TDM_ERRCODE_MAP(TDM_ERRCODE_NAME)
#undef TDM_ERRCODE_NAME
  default: return "UNKNOWN_ERROR";
  }
}

/* Consistency levels. */
enum tdm_consistency {
  TDM_CL_ANY = 0x0000, TDM_CL_ONE = 0x0001, TDM_CL_TWO = 0x0002, TDM_CL_THREE = 0x0003,
  TDM_CL_QUORUM = 0x0004, TDM_CL_ALL = 0x0005, TDM_CL_LOCAL_QUORUM = 0x0006,
  TDM_CL_EACH_QUORUM = 0x0007, TDM_CL_SERIAL = 0x0008, TDM_CL_LOCAL_SERIAL = 0x0009,
  TDM_CL_LOCAL_ONE = 0x000A, TDM_CL_NODE_LOCAL = 0x000B,
};

/* BATCH types. */
enum tdm_batch_type { TDM_BATCH_LOGGED = 0, TDM_BATCH_UNLOGGED = 1, TDM_BATCH_COUNTER = 2 };

#endif
