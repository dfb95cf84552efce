/* The logger: producers format a whole line on their own stack and copy it into a bounded ring under
 * one short lock; a single writer thread empties the ring with writev, writes rate-limit summaries and
 * drop reports, and reopens the file on request. A full ring drops the line and counts it: a worker
 * never waits for log I/O. Before tdm_log_start and after tdm_log_stop lines go straight to stderr.
 *
 * Ring invariant (under lock): head <= tail <= head + cap; slots [head, tail) hold lines the writer
 * has not finished; producers write only slot tail % cap and only when tail - head < cap, and the
 * writer reads [head, tail) without the lock because nobody else touches those slots until it
 * advances head. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#include <tandem/obs/log.h>
#include <tandem/util/time.h>

#define WRITER_IOV 64       /* lines per writev */
#define SUMMARY_PER_PASS 8  /* rate-limit summaries written per writer pass */
#define TICK_MAX_NS 1000000000ull

typedef struct log_slot_s {
  uint32_t len;                /* bytes of line used */
  char line[TDM_LOG_LINE_MAX]; /* one formatted line ending in '\n' */
} log_slot_t;

typedef struct tdm_logger_s {
  uv_mutex_t lock;         /* guards everything below except fd, path and sbuf */
  uv_cond_t wake;          /* writer waits here for lines, flush, reopen or stop */
  uv_cond_t flushed;       /* flushers wait here for flush_done */
  log_slot_t *ring;        /* cap slots */
  uint32_t cap;            /* ring capacity in lines */
  uint64_t head;           /* first slot not yet written (writer advances it) */
  uint64_t tail;           /* next free slot (producers advance it) */
  uint64_t flush_req;      /* flush requests issued */
  uint64_t flush_done;     /* flush requests the writer has completed */
  uint64_t dropped;        /* lines lost to a full ring since start */
  uint64_t dropped_seen;   /* part of dropped already reported in a log line */
  uint64_t suppressed;     /* lines held back by the rate limiter since start */
  bool stop;               /* writer must write what is left and exit */
  bool reopen;             /* writer must reopen path */
  tdm_log_ratelimit_t rl;  /* per-call-site limiter for WARN and ERROR */
  uint64_t tick_ns;        /* writer's idle wake-up, to publish summaries of ended windows */
  int fd;                  /* output (writer thread only) */
  bool own_fd;             /* fd was opened here and is closed at stop */
  char *path;              /* file to reopen, NULL for stderr or a caller's fd */
  char (*sbuf)[TDM_LOG_LINE_MAX]; /* writer's scratch lines for summaries + the drop report */
  uv_thread_t thread;      /* the writer */
} tdm_logger_t;

/* Process-wide logging state (deviation from rule 15, see log.h): the level and format are read on
 * every call without a lock, the logger pointer is set once at start and cleared at stop, and the
 * crash-path descriptor is read by tdm_log_safe from any context. */
_Atomic int tdm__log_level = TDM_LOG_INFO;
static _Atomic int log_format = TDM_LOG_TEXT;
static tdm_logger_t *_Atomic log_current;
static _Atomic int log_safe_fd = -1;

void tdm_log_set_level(tdm_log_level_t level)
{
  if ((int)level >= 0 && level < TDM_LOG_LEVEL_MAX) atomic_store(&tdm__log_level, (int)level);
}

tdm_log_level_t tdm_log_get_level(void) { return (tdm_log_level_t)atomic_load(&tdm__log_level); }

void tdm_log_set_format(tdm_log_format_t format)
{
  if ((int)format >= 0 && format < TDM_LOG_FORMAT_MAX) atomic_store(&log_format, (int)format);
}

/* Writes iov[0..n) completely (a slow reader stalls only the writer thread). */
static void write_iov(int fd, struct iovec *iov, int n)
{
  while (n > 0) {
    ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        (void)poll(&p, 1, 100);
        continue;
      }
      return; /* nowhere to report it: the log itself is broken */
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
}

static void write_line(int fd, const char *line, size_t len)
{
  struct iovec iov = { (void *)line, len };
  write_iov(fd, &iov, 1);
}

void tdm_log_safe(const char *msg)
{
  struct iovec iov[3] = { { (void *)"tandem: ", 8 }, { (void *)msg, strlen(msg) }, { (void *)"\n", 1 } };
  ssize_t rc = writev(STDERR_FILENO, iov, 3);
  int fd = atomic_load(&log_safe_fd);
  if (fd > STDERR_FILENO) rc = writev(fd, iov, 3);
  (void)rc;
}

/* A call site's key for the rate limiter: its format string and level; never 0. */
static uint64_t site_key(const char *fmt, tdm_log_level_t level)
{
  uint64_t x = (uint64_t)(uintptr_t)fmt ^ ((uint64_t)level << 56);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x ? x : 1;
}

/* Formats the "N similar messages suppressed" line for a closed window into out. */
static size_t format_summary(tdm_logger_t *lg, char *out, const tdm_log_rl_entry_t *e)
{
  char n[24], msg[TDM_LOG_RL_SAMPLE + 96];
  snprintf(n, sizeof(n), "%u", e->suppressed);
  int m = snprintf(msg, sizeof(msg), "%u similar messages suppressed in the last %u s, first: %s", e->suppressed,
                   (lg->rl.window_ms + 999) / 1000, e->sample);
  tdm_log_field_t f = { "suppressed", n, true };
  return tdm_log_format_line(out, TDM_LOG_LINE_MAX, (tdm_log_format_t)atomic_load(&log_format),
                             tdm_time_wall_ms(), e->level, NULL, &f, 1, msg,
                             m < 0 ? 0 : TDM_MIN((size_t)m, sizeof(msg) - 1));
}

/* Appends one line to the ring; the caller holds the lock. */
static void ring_push(tdm_logger_t *lg, const char *line, size_t len)
{
  if (lg->tail - lg->head >= lg->cap) {
    lg->dropped++;
    return;
  }
  log_slot_t *s = &lg->ring[lg->tail % lg->cap];
  memcpy(s->line, line, len);
  s->len = (uint32_t)len;
  if (lg->tail++ == lg->head) uv_cond_signal(&lg->wake);
}

void tdm_log_vwrite(tdm_log_level_t level, const char *tag, const tdm_log_field_t *fields, size_t nfields,
                    const char *fmt, va_list ap)
{
  if (!tdm_log_enabled(level)) return;
  char msg[TDM_LOG_LINE_MAX], line[TDM_LOG_LINE_MAX];
  int m = vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t mlen = m < 0 ? 0 : TDM_MIN((size_t)m, sizeof(msg) - 1);
  size_t len = tdm_log_format_line(line, sizeof(line), (tdm_log_format_t)atomic_load(&log_format),
                                   tdm_time_wall_ms(), level, tag, fields, nfields, msg, mlen);
  tdm_logger_t *lg = atomic_load_explicit(&log_current, memory_order_acquire);
  if (!lg) {
    write_line(STDERR_FILENO, line, len);
    return;
  }
  uv_mutex_lock(&lg->lock);
  if (level == TDM_LOG_WARN || level == TDM_LOG_ERROR) {
    tdm_log_rl_entry_t report;
    bool pass = tdm_log_ratelimit_allow(&lg->rl, site_key(fmt, level), level, msg, tdm_time_mono_ms(), &report);
    if (report.suppressed && lg->tail - lg->head < lg->cap) {
      /* the summary goes straight into the next slot */
      log_slot_t *s = &lg->ring[lg->tail % lg->cap];
      s->len = (uint32_t)format_summary(lg, s->line, &report);
      if (lg->tail++ == lg->head) uv_cond_signal(&lg->wake);
    }
    if (!pass) {
      lg->suppressed++;
      uv_mutex_unlock(&lg->lock);
      return;
    }
  }
  ring_push(lg, line, len);
  uv_mutex_unlock(&lg->lock);
}

void tdm_log_write(tdm_log_level_t level, const char *tag, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  tdm_log_vwrite(level, tag, NULL, 0, fmt, ap);
  va_end(ap);
}

void tdm_log_fields(tdm_log_level_t level, const char *tag, const tdm_log_field_t *fields, size_t nfields,
                    const char *fmt, ...)
{
  if (!tdm_log_enabled(level)) return;
  va_list ap;
  va_start(ap, fmt);
  tdm_log_vwrite(level, tag, fields, nfields, fmt, ap);
  va_end(ap);
}

/* Opens path for appending; the descriptor or a negative errno. */
static int open_log_file(const char *path)
{
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  return fd < 0 ? -errno : fd;
}

static void writer_reopen(tdm_logger_t *lg)
{
  if (!lg->path) return;
  int fd = open_log_file(lg->path);
  if (fd < 0) {
    char line[TDM_LOG_LINE_MAX], msg[512];
    int m = snprintf(msg, sizeof(msg), "cannot reopen log file %s: %s; still writing to the old one", lg->path,
                     uv_strerror(fd));
    size_t len = tdm_log_format_line(line, sizeof(line), (tdm_log_format_t)atomic_load(&log_format),
                                     tdm_time_wall_ms(), TDM_LOG_ERROR, NULL, NULL, 0, msg,
                                     TDM_MIN((size_t)(m < 0 ? 0 : m), sizeof(msg) - 1));
    write_line(lg->fd, line, len);
    return;
  }
  int old = lg->fd;
  lg->fd = fd;
  atomic_store(&log_safe_fd, fd);
  close(old);
}

/* Writes ring slots [from, to) (not under the lock, see the ring invariant). */
static void writer_drain(tdm_logger_t *lg, uint64_t from, uint64_t to)
{
  struct iovec iov[WRITER_IOV];
  while (from < to) {
    int n = 0;
    for (; from < to && n < WRITER_IOV; from++, n++) {
      log_slot_t *s = &lg->ring[from % lg->cap];
      iov[n].iov_base = s->line;
      iov[n].iov_len = s->len;
    }
    write_iov(lg->fd, iov, n);
  }
}

static void writer_main(void *arg)
{
  tdm_logger_t *lg = arg;
  uv_mutex_lock(&lg->lock);
  for (;;) {
    if (lg->head == lg->tail && !lg->stop && !lg->reopen && lg->flush_req == lg->flush_done)
      (void)uv_cond_timedwait(&lg->wake, &lg->lock, lg->tick_ns);
    uint64_t from = lg->head, to = lg->tail, freq = lg->flush_req;
    bool reopen = lg->reopen, stopping = lg->stop;
    lg->reopen = false;
    /* summaries of ended windows (all of them at stop), then the drop report */
    size_t nsum = 0;
    tdm_log_rl_entry_t e;
    uint64_t now = stopping ? UINT64_MAX / 2 : tdm_time_mono_ms();
    size_t lens[SUMMARY_PER_PASS + 1];
    while (nsum < SUMMARY_PER_PASS && tdm_log_ratelimit_expired(&lg->rl, now, &e)) {
      lens[nsum] = format_summary(lg, lg->sbuf[nsum], &e);
      nsum++;
    }
    if (lg->dropped != lg->dropped_seen) {
      char msg[128], n[24];
      uint64_t d = lg->dropped - lg->dropped_seen;
      snprintf(n, sizeof(n), "%llu", (unsigned long long)d);
      int m = snprintf(msg, sizeof(msg), "log queue full: %llu lines dropped", (unsigned long long)d);
      tdm_log_field_t f = { "dropped", n, true };
      lens[nsum] = tdm_log_format_line(lg->sbuf[nsum], TDM_LOG_LINE_MAX, (tdm_log_format_t)atomic_load(&log_format),
                                       tdm_time_wall_ms(), TDM_LOG_WARN, NULL, &f, 1, msg, (size_t)m);
      nsum++;
      lg->dropped_seen = lg->dropped;
    }
    uv_mutex_unlock(&lg->lock);

    if (reopen) writer_reopen(lg);
    writer_drain(lg, from, to);
    for (size_t i = 0; i < nsum; i++) write_line(lg->fd, lg->sbuf[i], lens[i]);

    uv_mutex_lock(&lg->lock);
    lg->head = to;
    if (lg->flush_done != freq) {
      lg->flush_done = freq;
      uv_cond_broadcast(&lg->flushed);
    }
    if (stopping && lg->head == lg->tail && nsum == 0) break;
  }
  uv_mutex_unlock(&lg->lock);
}

/* Blocks every asynchronous signal in the calling thread (faults stay deliverable) and returns the
 * previous mask in *old; threads created meanwhile inherit the blocked mask (rule 14). */
static void block_signals(sigset_t *old)
{
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  sigdelset(&all, SIGABRT);
  sigdelset(&all, SIGTRAP);
  pthread_sigmask(SIG_BLOCK, &all, old);
}

static void logger_free(tdm_logger_t *lg)
{
  if (lg->own_fd && lg->fd >= 0) close(lg->fd);
  free(lg->path);
  free(lg->ring);
  free(lg->sbuf);
  free(lg);
}

int tdm_log_start(const tdm_log_options_t *opts)
{
  if (atomic_load(&log_current)) return TDM_EINVAL;
  if ((int)opts->level < 0 || opts->level >= TDM_LOG_LEVEL_MAX || (int)opts->format < 0 ||
      opts->format >= TDM_LOG_FORMAT_MAX)
    return TDM_EINVAL;
  tdm_logger_t *lg = calloc(1, sizeof(*lg));
  if (!lg) return TDM_ENOMEM;
  int rc = TDM_ENOMEM;
  lg->fd = -1;
  lg->cap = opts->queue_lines ? opts->queue_lines : TDM_LOG_QUEUE_DEFAULT;
  lg->ring = calloc(lg->cap, sizeof(*lg->ring));
  lg->sbuf = calloc(SUMMARY_PER_PASS + 1, sizeof(*lg->sbuf));
  if (!lg->ring || !lg->sbuf) goto fail;
  uint32_t window = opts->window_ms ? opts->window_ms : TDM_LOG_WINDOW_DEFAULT_MS;
  tdm_log_ratelimit_init(&lg->rl, opts->burst ? opts->burst : TDM_LOG_BURST_DEFAULT, window);
  lg->tick_ns = TDM_MIN(TICK_MAX_NS, (uint64_t)window * 1000000ull / 4);
  if (opts->use_fd) {
    lg->fd = opts->fd;
  } else if (opts->file && opts->file[0]) {
    if (!(lg->path = strdup(opts->file))) goto fail;
    if ((lg->fd = open_log_file(lg->path)) < 0) {
      rc = lg->fd;
      goto fail;
    }
    lg->own_fd = true;
  } else {
    lg->fd = STDERR_FILENO;
  }
  if (uv_mutex_init(&lg->lock) != 0) goto fail;
  if (uv_cond_init(&lg->wake) != 0) {
    uv_mutex_destroy(&lg->lock);
    goto fail;
  }
  if (uv_cond_init(&lg->flushed) != 0) {
    uv_cond_destroy(&lg->wake);
    uv_mutex_destroy(&lg->lock);
    goto fail;
  }
  sigset_t old;
  block_signals(&old);
  rc = uv_thread_create(&lg->thread, writer_main, lg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    uv_cond_destroy(&lg->flushed);
    uv_cond_destroy(&lg->wake);
    uv_mutex_destroy(&lg->lock);
    goto fail;
  }
  atomic_store(&tdm__log_level, (int)opts->level);
  atomic_store(&log_format, (int)opts->format);
  atomic_store(&log_safe_fd, lg->fd);
  atomic_store_explicit(&log_current, lg, memory_order_release);
  return 0;
fail:
  if (lg->fd < 0) lg->own_fd = false;
  logger_free(lg);
  return rc;
}

void tdm_log_stop(void)
{
  tdm_logger_t *lg = atomic_exchange(&log_current, NULL);
  if (!lg) return;
  uv_mutex_lock(&lg->lock);
  lg->stop = true;
  uv_cond_signal(&lg->wake);
  uv_mutex_unlock(&lg->lock);
  uv_thread_join(&lg->thread);
  atomic_store(&log_safe_fd, -1);
  uv_cond_destroy(&lg->flushed);
  uv_cond_destroy(&lg->wake);
  uv_mutex_destroy(&lg->lock);
  logger_free(lg);
}

void tdm_log_reopen(void)
{
  tdm_logger_t *lg = atomic_load(&log_current);
  if (!lg) return;
  uv_mutex_lock(&lg->lock);
  lg->reopen = true;
  uv_cond_signal(&lg->wake);
  uv_mutex_unlock(&lg->lock);
}

void tdm_log_flush(void)
{
  tdm_logger_t *lg = atomic_load(&log_current);
  if (!lg) return;
  uv_mutex_lock(&lg->lock);
  uint64_t mine = ++lg->flush_req;
  uv_cond_signal(&lg->wake);
  while (lg->flush_done < mine) uv_cond_wait(&lg->flushed, &lg->lock);
  uv_mutex_unlock(&lg->lock);
}

uint64_t tdm_log_dropped(void)
{
  tdm_logger_t *lg = atomic_load(&log_current);
  if (!lg) return 0;
  uv_mutex_lock(&lg->lock);
  uint64_t v = lg->dropped;
  uv_mutex_unlock(&lg->lock);
  return v;
}

uint64_t tdm_log_suppressed(void)
{
  tdm_logger_t *lg = atomic_load(&log_current);
  if (!lg) return 0;
  uv_mutex_lock(&lg->lock);
  uint64_t v = lg->suppressed;
  uv_mutex_unlock(&lg->lock);
  return v;
}
