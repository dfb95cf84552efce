/* The divergence journal (behaviour.md §6.2): one JSON line per dual write that applied on one cluster
 * and failed or timed out on the other, and per LWT [applied] mismatch, appended to
 * write_divergence_log by a writer thread of its own. A worker formats its line on its own thread
 * (tdm_journal_format) and hands it over through a bounded queue that never blocks: when the queue is
 * full the line is dropped and the caller counts it in write_divergence_log_dropped_total. The writer
 * rotates the file to `<path>.1` when the next line would take it past write_divergence_log_max_bytes.
 * The instance owns the journal: created at start-up, reconfigured on reload (a new path reopens, in
 * order with the lines already queued), freed after the workers have stopped. */
#ifndef TANDEM_ROUTE_JOURNAL_H
#define TANDEM_ROUTE_JOURNAL_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/proto/reader.h>
#include <tandem/proto/writer.h>

#define TDM_JOURNAL_QUEUE_LINES 4096             /* lines waiting for the writer, default bound */
#define TDM_JOURNAL_QUEUE_BYTES (16u << 20)      /* and their bytes, default bound */
#define TDM_JOURNAL_LINE_MAX (1u << 20)          /* values that would make a line longer are left out */
#define TDM_JOURNAL_TEXT_MAX 65536               /* query text kept per statement (longer is cut) */

typedef struct tdm_journal_s tdm_journal_t;

/* One statement of a journaled request: QUERY text, or an EXECUTE / BATCH child prepared id (with the
 * text the registry knows, when it does), and its bound values as on the wire. */
typedef struct tdm_journal_stmt_s {
  tdm_str_t query;          /* CQL text; empty when unknown */
  tdm_bytes_t prepared_id;  /* prepared id; len <= 0 when not a prepared statement */
  const uint8_t *values;    /* [value]s as on the wire (each after its [string] name when named) */
  size_t values_len;        /* bytes at values */
  uint16_t values_count;    /* values */
  bool named;               /* values carry names (QUERY/EXECUTE flag 0x40) */
} tdm_journal_stmt_t;

/* What one line says. Strings are borrowed; empty ones (and a consistency of -1, has_timestamp false,
 * batch_type -1) are left out of the line. */
typedef struct tdm_journal_record_s {
  int64_t ts_ms;                   /* wall clock, ms since the Unix epoch (`ts`, ISO-8601 UTC) */
  uint64_t epoch;                  /* configuration epoch the request ran under */
  const char *client;              /* "ip:port" of the client */
  const char *kind;                /* "write", "counter", "lwt" or "lwt_mismatch" */
  int ok_on;                       /* TDM_CONF_ORIGIN / TDM_CONF_TARGET: the cluster that applied */
  int failed_on;                   /* the cluster that failed (or, for lwt_mismatch, did not apply) */
  const char *error;               /* what failed there: "<CODE>: <message>", a timeout, a lost connection */
  tdm_str_t keyspace;              /* when known */
  tdm_str_t table;                 /* when known */
  int consistency;                 /* the request's CL (TDM_CL_*), -1 when none */
  bool has_timestamp;              /* the client sent a default timestamp */
  int64_t timestamp;               /* that timestamp, microseconds */
  int batch_type;                  /* BATCH: TDM_BATCH_*; -1 otherwise */
  const tdm_journal_stmt_t *stmts; /* one statement, or a BATCH's children in order */
  size_t n_stmts;                  /* entries in stmts */
  bool values;                     /* write_divergence_log_values: bound values in hex */
} tdm_journal_record_t;

/* Appends one JSON object and '\n' to w:
 *   {"ts","epoch","client","kind","ok_on","failed_on","error","keyspace","table",
 *    "query" | "prepared_id" (+ "query" when known), "consistency","timestamp","values"}
 * a BATCH has "batch_type" and "statements":[{"query"|"prepared_id",...,"values"}] instead of the
 * statement fields. values: hex strings, null for a null value, "unset" for an unset one; an object
 * keyed by name when named. Returns tdm_writer_error(w). */
TDM_MUSTCHECK int tdm_journal_format(const tdm_journal_record_t *r, tdm_writer_t *w);

/* Consistency level name ("LOCAL_QUORUM"), "UNKNOWN" for other values. */
const char *tdm_journal_consistency_name(int consistency);

typedef struct tdm_journal_options_s {
  size_t queue_lines; /* bound on queued lines; 0 = TDM_JOURNAL_QUEUE_LINES */
  size_t queue_bytes; /* bound on their bytes; 0 = TDM_JOURNAL_QUEUE_BYTES */
} tdm_journal_options_t;

typedef struct tdm_journal_stats_s {
  uint64_t written;   /* lines written to a file */
  uint64_t dropped;   /* lines refused because the queue was full */
  uint64_t lost;      /* lines accepted but not written (no file could be opened, write error) */
  uint64_t rotations; /* files moved to .1 */
} tdm_journal_stats_t;

/* Starts the writer thread (with every asynchronous signal blocked); no file is open until configured.
 * opts may be NULL. 0, TDM_ENOMEM or a UV_E* code. */
TDM_MUSTCHECK int tdm_journal_new(const tdm_journal_options_t *opts, tdm_journal_t **out);
/* Sets the path ("" or NULL: off) and the rotation size. Applied by the writer in order with the lines
 * already queued: those go to the previous file. The same path again only changes the size. An open
 * failure is logged and the lines that cannot be written are counted as lost. */
void tdm_journal_configure(tdm_journal_t *j, const char *path, int64_t max_bytes);
/* Any thread. Copies the line into the queue. 0; TDM_EOVERFLOW when the queue is full (the caller counts
 * the drop); TDM_EUNAVAILABLE when the journal is off (nothing to count); TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_journal_submit(tdm_journal_t *j, const void *line, size_t len);
/* Waits until everything queued so far has been written (tests, shutdown). */
void tdm_journal_flush(tdm_journal_t *j);
void tdm_journal_stats(tdm_journal_t *j, tdm_journal_stats_t *out);
/* Writes what is queued, stops the thread, closes the file, frees. NULL is a no-op. */
void tdm_journal_free(tdm_journal_t *j);

#endif
