/* Scripted behaviour: rules chosen per request by node, opcode(s), protocol version and the statement
 * text (substring or POSIX regex; EXECUTE matches its prepared text), with a match count (skip the first
 * K, fire the first N times, or every Nth), an optional delay, and an action: canned Rows or Void, an
 * ERROR with any code and its fields, close (or reset) the connection, garbage bytes, no answer, or
 * UNPREPARED. The first rule (in insertion order) that fires wins; a rule that does not fire this time
 * lets the next one try. Rules are refcounted so a delayed request keeps its rule alive. */
#ifndef TDM_MOCK_RULES_H
#define TDM_MOCK_RULES_H

#include <regex.h>

#include <tandem/common.h>
#include <tandem/proto/response.h>
#include <tandem/proto/writer.h>

#include "args.h"
#include "list.h"
#include "values.h"

struct tdm_mock_s;

#define TDM_MOCK_RULE_MAX_REASONS 8

typedef enum tdm_mock_action {
  TDM_MOCK_ACT_DEFAULT = 0, /* normal behaviour (after the delay) */
  TDM_MOCK_ACT_ROWS,        /* RESULT Rows from the rule's columns and rows */
  TDM_MOCK_ACT_VOID,        /* RESULT Void */
  TDM_MOCK_ACT_ERROR,       /* ERROR with the rule's code, message and fields */
  TDM_MOCK_ACT_CLOSE,       /* close the connection (reset=1: with RST) */
  TDM_MOCK_ACT_GARBAGE,     /* write garbage bytes (and keep going) */
  TDM_MOCK_ACT_NOREPLY,     /* never answer */
  TDM_MOCK_ACT_UNPREPARED,  /* ERROR UNPREPARED with the statement's id */
  TDM_MOCK_ACT_MAX          /* sentinel */
} tdm_mock_action_t;

typedef struct tdm_mock_rule_s {
  tdm_mock_link_t link;                 /* in tdm_mock_rules_t.list while installed */
  unsigned id;                          /* handle for RULE DEL */
  unsigned refs;                        /* the list's reference + one per delayed request */
  int node;                             /* node index, -1 for every node */
  uint64_t ops[4];                      /* opcode bitmap (bit op set = matches) */
  uint8_t version;                      /* protocol version, 0 for any */
  char *match;                          /* substring of the text, or NULL */
  bool icase;                           /* match / regex ignore case */
  bool has_regex;                       /* regex compiled */
  regex_t regex;                        /* compiled regex (REG_EXTENDED | REG_NOSUB) */
  uint64_t skip;                        /* matches ignored before the rule starts firing */
  uint64_t times;                       /* fire at most this often (0 = unlimited) */
  uint64_t every;                       /* fire on every Nth counted match (1 = each) */
  uint32_t delay_ms;                    /* wait before acting */
  tdm_mock_action_t action;             /* what to do */
  /* ERROR */
  tdm_response_error_t error;           /* code and fields; strings point into owned copies below */
  char *msg;                            /* message (heap) */
  char *write_type;                     /* write_type (heap) */
  char *err_ks;                         /* keyspace (heap) */
  char *err_table;                      /* table (heap) */
  char *err_function;                   /* function (heap) */
  tdm_str_t *arg_types;                 /* FUNCTION_FAILURE arg types (point into arg_buf) */
  char *arg_buf;                        /* heap copy of the args field */
  tdm_response_reason_t reasons[TDM_MOCK_RULE_MAX_REASONS]; /* v5 reason map */
  uint8_t reason_addr[4];               /* address used in the reason map */
  /* ROWS */
  tdm_mock_col_t *cols;                 /* columns (names point into col_buf) */
  size_t n_cols;                        /* columns */
  char *col_buf;                        /* heap copy of the columns field */
  tdm_writer_t cells;                   /* rows as [bytes] cells, row-major */
  int32_t n_rows;                       /* rows */
  char *rows_ks;                        /* global table spec keyspace (heap) */
  char *rows_table;                     /* global table spec table (heap) */
  /* others */
  bool reset;                           /* CLOSE: abortive close (RST) */
  size_t garbage;                       /* GARBAGE: byte count */
  /* accounting */
  uint64_t matched;                     /* requests that passed the filters */
  uint64_t fired;                       /* times the action was taken */
  char *line;                           /* the command that added the rule, for RULE LIST */
} tdm_mock_rule_t;

typedef struct tdm_mock_rules_s {
  tdm_mock_link_t list; /* installed rules, in order */
  unsigned next_id;     /* id of the next rule (from 1) */
  size_t count;         /* installed rules */
} tdm_mock_rules_t;

void tdm_mock_rules_init(tdm_mock_rules_t *r);
/* Adds a rule from parsed fields; on error writes a reason into err. *id gets the new rule's id. */
TDM_MUSTCHECK int tdm_mock_rules_add(tdm_mock_rules_t *r, const struct tdm_mock_s *mock, tdm_mock_args_t *args,
                                     tdm_str_t line, unsigned *id, char *err, size_t errcap);
TDM_MUSTCHECK int tdm_mock_rules_del(tdm_mock_rules_t *r, unsigned id);
void tdm_mock_rules_clear(tdm_mock_rules_t *r);
/* The rule that fires for this request (its counters updated), or NULL. Borrowed: take a reference to
 * keep it beyond the current callback. */
tdm_mock_rule_t *tdm_mock_rules_match(tdm_mock_rules_t *r, int node, uint8_t opcode, uint8_t version, tdm_str_t text);
void tdm_mock_rule_ref(tdm_mock_rule_t *rule);
void tdm_mock_rule_unref(tdm_mock_rule_t *rule);
/* JSON array of the installed rules with their counters. */
void tdm_mock_rules_json(const tdm_mock_rules_t *r, tdm_writer_t *w);
const char *tdm_mock_action_name(tdm_mock_action_t a);

/* Opcode by name (QUERY ...) or number; TDM_EINVAL otherwise. */
TDM_MUSTCHECK int tdm_mock_opcode_parse(tdm_str_t s, uint8_t *op);
/* Error code by name (WRITE_TIMEOUT ...) or number. */
TDM_MUSTCHECK int tdm_mock_errcode_parse(tdm_str_t s, uint32_t *code);

#endif
