/* The divergence journal's queue and writer thread (route/journal.h, behaviour.md §6.2):
 *
 *   worker: format line ─ submit: copy, lock, bounds? ─ no ──> dropped (caller counts it)
 *                                        │ yes
 *   main:   configure(path, max) ────────┴──> FIFO [line line conf line ...] ── wake
 *   writer: take the FIFO up to and including its first configuration node; for each entry in order:
 *           line: rotate to <path>.1 if it would pass max_bytes, write(2) it whole
 *           conf: close, open the new path (O_APPEND), size = what the file holds
 *
 * Invariants: `lines`/`bytes` count exactly the line nodes in the FIFO (configuration nodes are never
 * refused and never counted); lines are written in submission order, each to the file configured when
 * it was submitted; the queue lock is held only to link or unlink nodes, never across I/O, so a submit
 * never waits for the disk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <tandem/obs/log.h>
#include <tandem/route/journal.h>

typedef struct jnode_s {
  struct jnode_s *next; /* FIFO link */
  bool conf;            /* a configuration change: data holds the NUL-terminated path */
  int64_t max_bytes;    /* conf: rotation size */
  size_t len;           /* line bytes (conf: path length) */
  char data[];          /* the line, or the path */
} jnode_t;

struct tdm_journal_s {
  uv_mutex_t lock;          /* guards the fields down to `stats` */
  uv_cond_t wake;           /* writer: work arrived, or stop */
  uv_cond_t idle;           /* flush: the writer has nothing in hand */
  jnode_t *head;            /* FIFO, oldest first */
  jnode_t *tail;            /* its last node */
  size_t lines;             /* line nodes in the FIFO */
  size_t bytes;             /* their bytes */
  size_t max_lines;         /* bound on lines */
  size_t max_queue_bytes;   /* bound on bytes */
  bool enabled;             /* the last configuration names a path: submit accepts lines */
  bool busy;                /* the writer holds a batch taken from the FIFO */
  bool stopping;            /* tdm_journal_free ran: write what is queued, then exit */
  tdm_journal_stats_t stats; /* counters */
  uv_thread_t thread;       /* the writer */
  /* writer thread only */
  int fd;                   /* the open file, -1 when none */
  char *path;               /* configured path, NULL when off */
  int64_t max_file;         /* rotation size */
  uint64_t size;            /* bytes in the open file */
  bool open_failed;         /* the last open of `path` failed (logged once per configuration) */
};

static void count(tdm_journal_t *j, uint64_t *field)
{
  uv_mutex_lock(&j->lock);
  (*field)++;
  uv_mutex_unlock(&j->lock);
}

/* ---- writer thread ---- */

static void close_file(tdm_journal_t *j)
{
  if (j->fd >= 0) close(j->fd);
  j->fd = -1;
  j->size = 0;
}

static void open_file(tdm_journal_t *j)
{
  if (!j->path || j->fd >= 0) return;
  j->fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (j->fd < 0) {
    if (!j->open_failed)
      tdm_log_error(NULL, "write_divergence_log: cannot open '%s': %s; divergences are counted but not journaled",
                    j->path, strerror(errno));
    j->open_failed = true;
    return;
  }
  struct stat st;
  j->size = fstat(j->fd, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
  if (j->open_failed) tdm_log_info(NULL, "write_divergence_log: '%s' is open again", j->path);
  j->open_failed = false;
}

static void apply_conf(tdm_journal_t *j, const jnode_t *n)
{
  bool same = j->path && n->len && strcmp(j->path, n->data) == 0;
  j->max_file = n->max_bytes;
  if (same) return; /* only the size changed */
  close_file(j);
  free(j->path);
  j->path = n->len ? strdup(n->data) : NULL;
  j->open_failed = false;
  open_file(j);
}

/* Moves the file to <path>.1 (replacing it) and starts an empty one. */
static void rotate(tdm_journal_t *j)
{
  size_t n = strlen(j->path) + 3;
  char *old = malloc(n);
  if (!old) return; /* keep appending: better a long file than a lost line */
  snprintf(old, n, "%s.1", j->path);
  close_file(j);
  if (rename(j->path, old) < 0)
    tdm_log_error(NULL, "write_divergence_log: cannot rotate '%s' to '%s': %s", j->path, old, strerror(errno));
  else
    count(j, &j->stats.rotations);
  free(old);
  open_file(j);
}

static bool write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

static void write_line(tdm_journal_t *j, const jnode_t *n)
{
  open_file(j); /* retried for every line while the path cannot be opened */
  if (j->fd >= 0 && j->size > 0 && j->max_file > 0 && j->size + n->len > (uint64_t)j->max_file) rotate(j);
  if (j->fd < 0) {
    count(j, &j->stats.lost);
    return;
  }
  if (!write_all(j->fd, n->data, n->len)) {
    tdm_log_error(NULL, "write_divergence_log: cannot write to '%s': %s", j->path, strerror(errno));
    count(j, &j->stats.lost);
    return;
  }
  j->size += n->len;
  count(j, &j->stats.written);
}

static void writer_main(void *arg)
{
  tdm_journal_t *j = arg;
  uv_mutex_lock(&j->lock);
  for (;;) {
    if (!j->head) {
      if (j->stopping) break;
      uv_cond_broadcast(&j->idle);
      uv_cond_wait(&j->wake, &j->lock);
      continue;
    }
    /* Take a batch: everything up to and including the first configuration node, so a new path is
     * opened before the lines submitted after it are even taken. */
    jnode_t *batch = j->head, *last = j->head;
    while (!last->conf && last->next) last = last->next;
    j->head = last->next;
    if (!j->head) j->tail = NULL;
    last->next = NULL;
    for (jnode_t *n = batch; n; n = n->next) {
      if (n->conf) continue;
      j->lines--;
      j->bytes -= n->len;
    }
    j->busy = true;
    uv_mutex_unlock(&j->lock);
    while (batch) {
      jnode_t *n = batch;
      batch = n->next;
      if (n->conf)
        apply_conf(j, n);
      else
        write_line(j, n);
      free(n);
    }
    uv_mutex_lock(&j->lock);
    j->busy = false;
  }
  uv_cond_broadcast(&j->idle);
  uv_mutex_unlock(&j->lock);
  close_file(j);
  free(j->path);
  j->path = NULL;
}

/* ---- any thread ---- */

static void push(tdm_journal_t *j, jnode_t *n)
{
  n->next = NULL;
  if (j->tail)
    j->tail->next = n;
  else
    j->head = n;
  j->tail = n;
  uv_cond_signal(&j->wake);
}

int tdm_journal_new(const tdm_journal_options_t *opts, tdm_journal_t **out)
{
  *out = NULL;
  tdm_journal_t *j = calloc(1, sizeof(*j));
  if (!j) return TDM_ENOMEM;
  j->fd = -1;
  j->max_lines = opts && opts->queue_lines ? opts->queue_lines : TDM_JOURNAL_QUEUE_LINES;
  j->max_queue_bytes = opts && opts->queue_bytes ? opts->queue_bytes : TDM_JOURNAL_QUEUE_BYTES;
  int rc = uv_mutex_init(&j->lock);
  if (rc < 0) {
    free(j);
    return rc;
  }
  if ((rc = uv_cond_init(&j->wake)) < 0) goto fail_wake;
  if ((rc = uv_cond_init(&j->idle)) < 0) goto fail_idle;
  /* The writer starts with every asynchronous signal blocked: signals belong to the main loop (rule 14). */
  static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP }; /* stay deliverable */
  sigset_t all, old;
  sigfillset(&all);
  for (size_t i = 0; i < TDM_ARRAY_SIZE(faults); i++) sigdelset(&all, faults[i]);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  rc = uv_thread_create(&j->thread, writer_main, j);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc < 0) goto fail_thread;
  *out = j;
  return 0;
fail_thread:
  uv_cond_destroy(&j->idle);
fail_idle:
  uv_cond_destroy(&j->wake);
fail_wake:
  uv_mutex_destroy(&j->lock);
  free(j);
  return rc;
}

void tdm_journal_configure(tdm_journal_t *j, const char *path, int64_t max_bytes)
{
  size_t len = path ? strlen(path) : 0;
  jnode_t *n = malloc(sizeof(*n) + len + 1);
  if (!n) {
    tdm_log_error(NULL, "write_divergence_log: out of memory applying the configuration; the journal keeps its file");
    return;
  }
  n->conf = true;
  n->max_bytes = max_bytes;
  n->len = len;
  if (len) memcpy(n->data, path, len);
  n->data[len] = '\0';
  uv_mutex_lock(&j->lock);
  j->enabled = len > 0;
  push(j, n);
  uv_mutex_unlock(&j->lock);
}

int tdm_journal_submit(tdm_journal_t *j, const void *line, size_t len)
{
  jnode_t *n = malloc(sizeof(*n) + len);
  if (!n) return TDM_ENOMEM;
  n->conf = false;
  n->max_bytes = 0;
  n->len = len;
  memcpy(n->data, line, len);
  int rc = 0;
  uv_mutex_lock(&j->lock);
  if (!j->enabled) {
    rc = TDM_EUNAVAILABLE;
  } else if (j->lines >= j->max_lines || j->bytes + len > j->max_queue_bytes) {
    j->stats.dropped++;
    rc = TDM_EOVERFLOW;
  } else {
    j->lines++;
    j->bytes += len;
    push(j, n);
  }
  uv_mutex_unlock(&j->lock);
  if (rc < 0) free(n);
  return rc;
}

void tdm_journal_flush(tdm_journal_t *j)
{
  uv_mutex_lock(&j->lock);
  while (j->head || j->busy) uv_cond_wait(&j->idle, &j->lock);
  uv_mutex_unlock(&j->lock);
}

void tdm_journal_stats(tdm_journal_t *j, tdm_journal_stats_t *out)
{
  uv_mutex_lock(&j->lock);
  *out = j->stats;
  uv_mutex_unlock(&j->lock);
}

void tdm_journal_free(tdm_journal_t *j)
{
  if (!j) return;
  uv_mutex_lock(&j->lock);
  j->stopping = true;
  uv_cond_signal(&j->wake);
  uv_mutex_unlock(&j->lock);
  uv_thread_join(&j->thread);
  uv_cond_destroy(&j->idle);
  uv_cond_destroy(&j->wake);
  uv_mutex_destroy(&j->lock);
  free(j);
}
