/* The mock's counters: per node (connections opened, requests, requests by opcode, auth outcomes,
 * protocol errors), per (node, opcode, statement text) for "this write reached each cluster exactly
 * once" assertions, and one record per authentication attempt (which user each connection presented).
 * Read over the control interface as COUNT numbers or STATS JSON. */
#ifndef TDM_MOCK_STATS_H
#define TDM_MOCK_STATS_H

#include <regex.h>

#include <tandem/common.h>
#include <tandem/proto/writer.h>
#include <tandem/util/str.h>

#define TDM_MOCK_STATS_MAX_NODES 16

typedef struct tdm_mock_node_stats_s {
  uint64_t connections_opened; /* accepted client connections */
  uint64_t requests;           /* frames received (every opcode) */
  uint64_t by_opcode[256];     /* frames received by opcode */
  uint64_t auth_ok;            /* successful SASL exchanges */
  uint64_t auth_failed;        /* BAD_CREDENTIALS answers */
  uint64_t protocol_errors;    /* malformed input answered with PROTOCOL_ERROR */
  uint64_t version_refused;    /* frames refused for their protocol version */
} tdm_mock_node_stats_t;

typedef struct tdm_mock_stmt_count_s {
  uint64_t hash;   /* hash of (node, opcode, text); 0 = empty slot */
  uint32_t node;   /* node index */
  uint8_t opcode;  /* request opcode */
  char *text;      /* statement text (heap, NUL-terminated) */
  size_t len;      /* its length */
  uint64_t count;  /* requests */
} tdm_mock_stmt_count_t;

typedef struct tdm_mock_auth_rec_s {
  uint32_t node;  /* node index */
  uint64_t conn;  /* connection id */
  char user[64];  /* user name presented */
  bool ok;        /* accepted */
} tdm_mock_auth_rec_t;

typedef struct tdm_mock_stats_s {
  tdm_mock_node_stats_t nodes[TDM_MOCK_STATS_MAX_NODES]; /* per node */
  tdm_mock_stmt_count_t *slots;                          /* open-addressing table of statement counts */
  size_t cap;                                            /* slots (power of two, or 0) */
  size_t used;                                           /* filled slots */
  tdm_mock_auth_rec_t *auths;                            /* authentication attempts in order */
  size_t n_auths;                                        /* records */
  size_t cap_auths;                                      /* records allocated */
} tdm_mock_stats_t;

/* What COUNT sums. */
typedef enum tdm_mock_count_what {
  TDM_MOCK_COUNT_REQUESTS = 0, /* requests matching node / op / text */
  TDM_MOCK_COUNT_CONNECTIONS,  /* connections opened */
  TDM_MOCK_COUNT_AUTH_OK,      /* successful logins (user= filters) */
  TDM_MOCK_COUNT_AUTH_FAILED,  /* failed logins (user= filters) */
  TDM_MOCK_COUNT_PROTOCOL_ERRORS, /* PROTOCOL_ERROR answers to malformed input */
} tdm_mock_count_what_t;

typedef struct tdm_mock_count_filter_s {
  tdm_mock_count_what_t what; /* quantity */
  int node;                   /* node index or -1 */
  int opcode;                 /* opcode or -1 */
  tdm_str_t match;            /* substring of the text (empty: any) */
  tdm_str_t exact;            /* whole text (ptr NULL: any) */
  const regex_t *regex;       /* regex on the text, or NULL */
  tdm_str_t user;             /* auth counts: user (empty: any) */
} tdm_mock_count_filter_t;

void tdm_mock_stats_request(tdm_mock_stats_t *s, uint32_t node, uint8_t opcode, tdm_str_t text);
void tdm_mock_stats_auth(tdm_mock_stats_t *s, uint32_t node, uint64_t conn, tdm_str_t user, bool ok);
uint64_t tdm_mock_stats_count(const tdm_mock_stats_t *s, const tdm_mock_count_filter_t *f);
/* "statements" and "auth" JSON members (without braces) for STATS. */
void tdm_mock_stats_json_statements(const tdm_mock_stats_t *s, tdm_writer_t *w, int node);
void tdm_mock_stats_json_auths(const tdm_mock_stats_t *s, tdm_writer_t *w, int node);
void tdm_mock_stats_reset(tdm_mock_stats_t *s);

#endif
