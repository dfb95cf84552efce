/* Logging: levels PANIC..TRACE changeable at run time, text or JSON lines tagged with the connection
 * ("C-12 10.0.0.5:5123", "O-3 ...", "T-4 ..."), a bounded queue to one writer thread so no worker
 * ever blocks on log I/O (overflow is counted and reported), WARN/ERROR rate-limited per call site,
 * file reopen for SIGUSR1, and tdm_log_safe() for crash paths. Secrets are the caller's business.
 *
 *   worker/main thread                           writer thread
 *   tdm_log_error(tag, fmt, ...)
 *     level check (relaxed atomic load)
 *     format the whole line on the stack
 *     lock: rate limit, copy into ring  ──────►  take [head, tail), write them with writev,
 *           (full ring: count a drop)            then summaries of suppressed and dropped lines
 */
#ifndef TANDEM_OBS_LOG_H
#define TANDEM_OBS_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <tandem/common.h>

typedef enum tdm_log_level_e {
  TDM_LOG_PANIC = 0, /* the process cannot continue and is about to abort */
  TDM_LOG_FATAL,     /* the process is about to exit with an error */
  TDM_LOG_ERROR,     /* an operation failed; rate-limited */
  TDM_LOG_WARN,      /* something is wrong but handled; rate-limited */
  TDM_LOG_INFO,      /* lifecycle: start, reload, drain, stop */
  TDM_LOG_DEBUG,     /* per connection events */
  TDM_LOG_TRACE,     /* per frame events */
  TDM_LOG_LEVEL_MAX  /* sentinel */
} tdm_log_level_t;

typedef enum tdm_log_format_e {
  TDM_LOG_TEXT = 0, /* "<ts> <LEVEL> [<tag>] <msg> key=value ..." */
  TDM_LOG_JSON,     /* {"ts":..,"level":..,"conn":..,"msg":..,<fields>} ("conn" only when tagged) */
  TDM_LOG_FORMAT_MAX /* sentinel */
} tdm_log_format_t;

/* An extra key/value of a line: a JSON member, or " key=value" in text. */
typedef struct tdm_log_field_s {
  const char *key;   /* plain identifier, not escaped */
  const char *value; /* escaped as needed; NULL prints as null / - */
  bool raw;          /* JSON: emit value unquoted (numbers, true/false); caller guarantees validity */
} tdm_log_field_t;

typedef struct tdm_log_options_s {
  tdm_log_level_t level;   /* initial level (zeroed options: PANIC; callers normally set INFO) */
  tdm_log_format_t format; /* text or json */
  const char *file;        /* append to this file; NULL or "" = standard error */
  int fd;                  /* with use_fd: write to this descriptor (not closed; reopen is a no-op) */
  bool use_fd;             /* take fd instead of file / stderr (tests, pipes) */
  uint32_t queue_lines;    /* ring capacity in lines; 0 = TDM_LOG_QUEUE_DEFAULT */
  uint32_t burst;          /* WARN/ERROR lines per call site per window; 0 = TDM_LOG_BURST_DEFAULT */
  uint32_t window_ms;      /* rate-limit window; 0 = TDM_LOG_WINDOW_DEFAULT_MS */
} tdm_log_options_t;

#define TDM_LOG_LINE_MAX 2048           /* longest line including '\n'; longer messages are cut "..." */
#define TDM_LOG_QUEUE_DEFAULT 1024
#define TDM_LOG_BURST_DEFAULT 20
#define TDM_LOG_WINDOW_DEFAULT_MS 10000

/* Levels above this are compiled out (their arguments are type-checked, never evaluated). */
#ifndef TDM_LOG_COMPILED_LEVEL
#define TDM_LOG_COMPILED_LEVEL 6 /* TDM_LOG_TRACE */
#endif

/* The current level. Deviation from rule 15 (no mutable globals): a logger is process-wide by nature,
 * and the level check must be one relaxed load. Written only by tdm_log_start / tdm_log_set_level. */
extern _Atomic int tdm__log_level;

static inline bool tdm_log_enabled(tdm_log_level_t level)
{
  return (int)level <= atomic_load_explicit(&tdm__log_level, memory_order_relaxed);
}

/* Starts the writer thread; before that (and after tdm_log_stop) lines are written synchronously to
 * standard error. 0, TDM_EINVAL (already started, bad option), TDM_ENOMEM, or a negative errno from
 * opening the file. Call from the main thread before starting workers. */
int tdm_log_start(const tdm_log_options_t *opts);
/* Writes everything queued and joins the writer. Call after every other thread that logs has stopped. */
void tdm_log_stop(void);
void tdm_log_set_level(tdm_log_level_t level);
tdm_log_level_t tdm_log_get_level(void);
void tdm_log_set_format(tdm_log_format_t format);
/* Asks the writer to reopen the file (SIGUSR1, after logrotate moved it); returns at once. */
void tdm_log_reopen(void);
/* Blocks until every line queued before the call (and any due summary) has been written. */
void tdm_log_flush(void);
/* Lines lost because the queue was full / suppressed by the rate limiter, since start. */
uint64_t tdm_log_dropped(void);
uint64_t tdm_log_suppressed(void);

/* Crash path: async-signal-safe; writes "tandem: <msg>\n" with write(2) to stderr and to the log
 * file, bypassing the queue. No formatting. */
void tdm_log_safe(const char *msg);

void tdm_log_write(tdm_log_level_t level, const char *tag, const char *fmt, ...) TDM_PRINTF(3, 4);
void tdm_log_fields(tdm_log_level_t level, const char *tag, const tdm_log_field_t *fields, size_t nfields,
                    const char *fmt, ...) TDM_PRINTF(5, 6);
void tdm_log_vwrite(tdm_log_level_t level, const char *tag, const tdm_log_field_t *fields, size_t nfields,
                    const char *fmt, va_list ap) TDM_PRINTF(5, 0);

/* Lower-case function-like macros (deviation from rule 2's TDM_ macro names, as rule 16 spells them):
 * the level is checked before any argument is evaluated. tag may be NULL. */
#define TDM_LOG_AT(level, tag, ...)                                                                          \
  do {                                                                                                       \
    if (tdm_log_enabled(level)) tdm_log_write((level), (tag), __VA_ARGS__);                                  \
  } while (0)
#define TDM_LOG_OFF(level, tag, ...)                                                                         \
  do {                                                                                                       \
    if (0) tdm_log_write((level), (tag), __VA_ARGS__);                                                       \
  } while (0)

#define tdm_log_panic(tag, ...) TDM_LOG_AT(TDM_LOG_PANIC, tag, __VA_ARGS__)
#define tdm_log_fatal(tag, ...) TDM_LOG_AT(TDM_LOG_FATAL, tag, __VA_ARGS__)
#define tdm_log_error(tag, ...) TDM_LOG_AT(TDM_LOG_ERROR, tag, __VA_ARGS__)
#define tdm_log_warn(tag, ...) TDM_LOG_AT(TDM_LOG_WARN, tag, __VA_ARGS__)
#define tdm_log_info(tag, ...) TDM_LOG_AT(TDM_LOG_INFO, tag, __VA_ARGS__)
#if TDM_LOG_COMPILED_LEVEL >= 5
#define tdm_log_debug(tag, ...) TDM_LOG_AT(TDM_LOG_DEBUG, tag, __VA_ARGS__)
#else
#define tdm_log_debug(tag, ...) TDM_LOG_OFF(TDM_LOG_DEBUG, tag, __VA_ARGS__)
#endif
#if TDM_LOG_COMPILED_LEVEL >= 6
#define tdm_log_trace(tag, ...) TDM_LOG_AT(TDM_LOG_TRACE, tag, __VA_ARGS__)
#else
#define tdm_log_trace(tag, ...) TDM_LOG_OFF(TDM_LOG_TRACE, tag, __VA_ARGS__)
#endif

/* ---- names ---- */

/* "PANIC", ..., "TRACE"; "?" for out-of-range values. */
const char *tdm_log_level_name(tdm_log_level_t level);
/* Case-insensitive level name -> *out. 0 or TDM_EINVAL. */
int tdm_log_level_parse(const char *name, tdm_log_level_t *out);
/* "text" / "json" (case-insensitive) -> *out. 0 or TDM_EINVAL. */
int tdm_log_format_parse(const char *name, tdm_log_format_t *out);

/* ---- building blocks (pure; used by the writer and exercised by unit tests) ---- */

/* Formats one complete line ending in '\n' into out (cap >= 128). The message is escaped (control
 * bytes, and for JSON quotes, backslashes and invalid UTF-8), cut with "..." when the line would
 * exceed cap, and a JSON line always stays one valid object. Returns the line length. */
size_t tdm_log_format_line(char *out, size_t cap, tdm_log_format_t format, int64_t wall_ms,
                           tdm_log_level_t level, const char *tag, const tdm_log_field_t *fields,
                           size_t nfields, const char *msg, size_t msg_len);

#define TDM_LOG_RL_SLOTS 64   /* call sites tracked at once; beyond that lines pass unthrottled */
#define TDM_LOG_RL_SAMPLE 160 /* bytes of the first suppressed message kept for the summary */

typedef struct tdm_log_rl_entry_s {
  uint64_t key;                   /* call-site key; 0 = free slot */
  uint64_t window_start_ms;       /* when the current window opened */
  uint32_t passed;                /* lines let through in this window (<= burst) */
  uint32_t suppressed;            /* lines held back in this window */
  tdm_log_level_t level;          /* level of the first suppressed line */
  char sample[TDM_LOG_RL_SAMPLE]; /* first suppressed message, NUL-terminated, possibly cut */
} tdm_log_rl_entry_t;

/* At most `burst` lines per key per window; the rest are counted, and reported once the window ends
 * (by the next line of that key, or by tdm_log_ratelimit_expired). */
typedef struct tdm_log_ratelimit_s {
  tdm_log_rl_entry_t slots[TDM_LOG_RL_SLOTS]; /* open-addressed by key, short probe */
  uint32_t burst;                             /* lines allowed per window */
  uint32_t window_ms;                         /* window length */
} tdm_log_ratelimit_t;

void tdm_log_ratelimit_init(tdm_log_ratelimit_t *rl, uint32_t burst, uint32_t window_ms);
/* Decides one line of `key` at now_ms: true = write it. When the key's previous window ended with
 * suppressed lines, *report receives that window's entry (report->suppressed > 0) so the caller can
 * write the summary first; otherwise report->suppressed is 0. msg is kept as the sample when the line
 * is suppressed first in its window. key must not be 0. */
bool tdm_log_ratelimit_allow(tdm_log_ratelimit_t *rl, uint64_t key, tdm_log_level_t level, const char *msg,
                             uint64_t now_ms, tdm_log_rl_entry_t *report);
/* Frees slots whose window ended; returns true and fills *out for the first of them that suppressed
 * lines. Call until it returns false. */
bool tdm_log_ratelimit_expired(tdm_log_ratelimit_t *rl, uint64_t now_ms, tdm_log_rl_entry_t *out);

#endif
