/* HTTP listener bridged to the main loop (obs/admin.h). MHD runs a listening thread plus one thread
 * per connection; each request is copied into a req_t, queued under `lock`, and the main loop is woken
 * with uv_async_send. The connection thread then waits on `cond` for the answer.
 *
 * Ownership of a req_t: two references, the connection thread's and the main loop's, both counted under
 * `lock`. The main loop drops its own when it answers (or when close answers for it); the connection
 * thread drops its own when it has the answer or gives up (timeout, close). The last one frees.
 * Invariants (under lock): a req is on `queue` (not yet seen by the main loop) or on `handed` (seen,
 * unanswered) or on neither (answered); `done` is set exactly once. */
#include <microhttpd.h>
#include <stdarg.h>
#include <tandem/net/sockaddr.h>
#include <tandem/obs/admin.h>
#include <tandem/obs/log.h>
#include <tandem/util/queue.h>

typedef struct req_s {
  tdm_admin_req_t pub;      /* what the handler sees; first member */
  char *method;             /* owned copy */
  char *path;               /* owned copy */
  char *auth;               /* owned copy, NULL if none */
  tdm_list_t link;          /* on queue or handed (under lock) */
  int refs;                 /* 2 at creation: connection thread + main loop (under lock) */
  bool done;                /* answered (under lock) */
  unsigned status;          /* HTTP status once done */
  const char *ctype;        /* content type once done (static string) */
  char *body;               /* malloc'd body once done; taken by the connection thread */
  size_t len;               /* body length */
  const char *hname[2];     /* extra header names */
  const char *hvalue[2];    /* extra header values */
  uint8_t nheaders;         /* extra headers set */
} req_t;

struct tdm_admin_s {
  struct MHD_Daemon *mhd;    /* the HTTP server (its own threads) */
  uv_async_t async;          /* wakes the main loop for queued requests */
  uv_mutex_t lock;           /* guards queue, handed, closing and every req's shared fields */
  uv_cond_t cond;            /* signalled when a request is answered or the listener closes */
  tdm_list_t queue;          /* requests not yet handed to the main loop */
  tdm_list_t handed;         /* handed to the handler, unanswered */
  bool closing;              /* no new request is accepted; waiters stop waiting */
  tdm_admin_handler_cb cb;   /* owner's handler (main loop) */
  void *arg;                 /* its argument */
  uint16_t port;             /* bound port */
  char name[96];             /* "<name> <addr>" for logs (under lock: MHD's logger reads it) */
  uint64_t answered;         /* requests answered (main loop) */
  void (*close_cb)(tdm_admin_t *a, void *arg); /* after close */
  void *close_arg;           /* its argument */
};

static void req_unref_locked(req_t *r)
{
  if (--r->refs > 0)
    return;
  free(r->method);
  free(r->path);
  free(r->auth);
  free(r->body);
  free(r);
}

/* Marks r answered; caller holds the lock. Takes body. */
static void answer_locked(tdm_admin_t *a, req_t *r, unsigned status, const char *ctype, char *body, size_t len)
{
  TDM_ASSERT(!r->done);
  r->done = true;
  r->status = status;
  r->ctype = ctype ? ctype : "text/plain; charset=utf-8";
  r->body = body;
  r->len = len;
  tdm_list_remove(&r->link);
  uv_cond_broadcast(&a->cond);
  req_unref_locked(r); /* the main loop's reference */
}

static char *dup_or_null(const char *s)
{
  if (!s)
    return NULL;
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d)
    memcpy(d, s, n + 1);
  return d;
}

static enum MHD_Result send_simple(struct MHD_Connection *conn, unsigned status, const char *text)
{
  struct MHD_Response *rsp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!rsp)
    return MHD_NO;
  MHD_add_response_header(rsp, "Content-Type", "text/plain; charset=utf-8");
  enum MHD_Result rc = MHD_queue_response(conn, status, rsp);
  MHD_destroy_response(rsp);
  return rc;
}

/* MHD connection thread. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
  static char seen; /* marker: the headers of this request have been seen */
  tdm_admin_t *a = cls;
  if (*con_cls == NULL) {
    *con_cls = &seen;
    return MHD_YES;
  }
  if (*upload_data_size) { /* no endpoint takes a body: discard it */
    *upload_data_size = 0;
    return MHD_YES;
  }
  req_t *r = calloc(1, sizeof(*r));
  if (r) {
    r->method = dup_or_null(method);
    r->path = dup_or_null(url);
    r->auth = dup_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
  }
  if (!r || !r->method || !r->path) {
    if (r) {
      r->refs = 1;
      req_unref_locked(r); /* not shared yet: no lock needed */
    }
    return send_simple(conn, 503, "out of memory\n");
  }
  char *q = strchr(r->path, '?');
  if (q)
    *q = '\0';
  r->pub.method = r->method;
  r->pub.path = r->path;
  r->pub.authorization = r->auth;
  r->pub.server = a;
  r->refs = 2;

  uv_mutex_lock(&a->lock);
  if (a->closing) {
    r->refs = 1;
    req_unref_locked(r);
    uv_mutex_unlock(&a->lock);
    return send_simple(conn, 503, "shutting down\n");
  }
  tdm_list_insert_tail(&a->queue, &r->link);
  uv_mutex_unlock(&a->lock);
  uv_async_send(&a->async);

  uint64_t deadline = uv_hrtime() + (uint64_t)TDM_ADMIN_WAIT_MS * 1000000u;
  uv_mutex_lock(&a->lock);
  while (!r->done && !a->closing) {
    uint64_t now = uv_hrtime();
    if (now >= deadline || uv_cond_timedwait(&a->cond, &a->lock, deadline - now) == UV_ETIMEDOUT)
      if (!r->done)
        break;
  }
  /* Take the answer under the lock, build and queue the MHD response outside it. */
  bool done = r->done;
  unsigned status = r->status;
  const char *ctype = r->ctype;
  char *body = r->body;
  size_t len = r->len;
  const char *hname[2] = { r->hname[0], r->hname[1] }, *hvalue[2] = { r->hvalue[0], r->hvalue[1] };
  uint8_t nheaders = r->nheaders;
  bool closing = a->closing;
  r->body = NULL;
  req_unref_locked(r); /* the connection thread's reference; the main loop may still hold its own */
  uv_mutex_unlock(&a->lock);
  if (!done)
    return send_simple(conn, 503, closing ? "shutting down\n" : "timed out waiting for the main loop\n");
  struct MHD_Response *rsp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!rsp) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(rsp, "Content-Type", ctype);
  for (uint8_t i = 0; i < nheaders; i++)
    MHD_add_response_header(rsp, hname[i], hvalue[i]);
  enum MHD_Result rc = MHD_queue_response(conn, status, rsp);
  MHD_destroy_response(rsp);
  return rc;
}

/* Main loop: hands every queued request to the owner. */
static void on_async(uv_async_t *h)
{
  tdm_admin_t *a = h->data;
  tdm_list_t batch;
  tdm_list_init(&batch);
  uv_mutex_lock(&a->lock);
  tdm_list_splice_tail(&batch, &a->queue);
  uv_mutex_unlock(&a->lock);
  tdm_list_t *n;
  while ((n = tdm_list_first(&batch)) != NULL) {
    req_t *r = TDM_CONTAINER_OF(n, req_t, link);
    uv_mutex_lock(&a->lock);
    tdm_list_remove(n);
    if (a->closing) { /* a handler closed the listener: nobody will answer the rest */
      tdm_list_insert_tail(&a->handed, n);
      answer_locked(a, r, 503, NULL, NULL, 0);
      uv_mutex_unlock(&a->lock);
      continue;
    }
    tdm_list_insert_tail(&a->handed, n);
    uv_mutex_unlock(&a->lock);
    a->cb(a, &r->pub, a->arg);
  }
}

static void on_async_closed(uv_handle_t *h);

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  tdm_admin_t *a = cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  char name[sizeof(a->name)];
  uv_mutex_lock(&a->lock);
  memcpy(name, a->name, sizeof(name));
  uv_mutex_unlock(&a->lock);
  tdm_log_warn(NULL, "%s: %s", name, msg);
}

int tdm_admin_start(uv_loop_t *loop, const char *name, const char *host, uint16_t port, tdm_admin_handler_cb cb,
                    void *arg, tdm_admin_t **out)
{
  *out = NULL;
  tdm_sockaddr_t sa;
  int rc = tdm_sockaddr_resolve(host, port, &sa);
  if (rc)
    return rc;
  tdm_admin_t *a = calloc(1, sizeof(*a));
  if (!a)
    return TDM_ENOMEM;
  a->cb = cb;
  a->arg = arg;
  tdm_list_init(&a->queue);
  tdm_list_init(&a->handed);
  snprintf(a->name, sizeof(a->name), "%s", name);
  if ((rc = uv_mutex_init(&a->lock)) < 0) {
    free(a);
    return rc;
  }
  if ((rc = uv_cond_init(&a->cond)) < 0) {
    uv_mutex_destroy(&a->lock);
    free(a);
    return rc;
  }
  /* The async handle must exist before MHD's threads can take a connection and wake it. */
  if ((rc = uv_async_init(loop, &a->async, on_async)) < 0) {
    uv_cond_destroy(&a->cond);
    uv_mutex_destroy(&a->lock);
    free(a);
    return rc;
  }
  a->async.data = a;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
  if (sa.sa.sa_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  errno = 0;
  a->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
                            MHD_OPTION_SOCK_ADDR, &sa.sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                            (unsigned)1, MHD_OPTION_END);
  if (!a->mhd) {
    rc = errno ? -errno : UV_EADDRINUSE;
    uv_close((uv_handle_t *)&a->async, on_async_closed); /* frees a on the loop's next turn */
    return rc;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
  a->port = info ? info->port : port;
  tdm_sockaddr_set_port(&sa, a->port);
  char addr[TDM_SOCKADDR_STRLEN];
  tdm_sockaddr_format(&sa, addr, sizeof(addr));
  uv_mutex_lock(&a->lock); /* mhd_log may read the name from MHD's threads */
  snprintf(a->name, sizeof(a->name), "%s %s", name, addr);
  uv_mutex_unlock(&a->lock);
  *out = a;
  return 0;
}

uint16_t tdm_admin_port(const tdm_admin_t *a) { return a->port; }
const char *tdm_admin_name(const tdm_admin_t *a) { return a->name; }
uint64_t tdm_admin_answered(const tdm_admin_t *a) { return a->answered; }

void tdm_admin_set_header(tdm_admin_req_t *req, const char *name, const char *value)
{
  req_t *r = (req_t *)req;
  if (r->nheaders < TDM_ARRAY_SIZE(r->hname)) {
    r->hname[r->nheaders] = name;
    r->hvalue[r->nheaders] = value;
    r->nheaders++;
  }
}

void tdm_admin_respond(tdm_admin_req_t *req, unsigned status, const char *content_type, char *body, size_t len)
{
  req_t *r = (req_t *)req;
  tdm_admin_t *a = req->server;
  a->answered++;
  uv_mutex_lock(&a->lock);
  answer_locked(a, r, status, content_type, body, len);
  uv_mutex_unlock(&a->lock);
}

void tdm_admin_respond_text(tdm_admin_req_t *req, unsigned status, const char *content_type, const char *text)
{
  size_t n = strlen(text);
  char *body = malloc(n + 1);
  if (body)
    memcpy(body, text, n + 1);
  tdm_admin_respond(req, status, content_type, body, body ? n : 0);
}

static void on_async_closed(uv_handle_t *h)
{
  tdm_admin_t *a = h->data;
  if (a->close_cb)
    a->close_cb(a, a->close_arg);
  uv_cond_destroy(&a->cond);
  uv_mutex_destroy(&a->lock);
  free(a);
}

void tdm_admin_close(tdm_admin_t *a, void (*cb)(tdm_admin_t *a, void *arg), void *arg)
{
  a->close_cb = cb;
  a->close_arg = arg;
  uv_mutex_lock(&a->lock);
  a->closing = true;
  /* Nobody will hand these to the owner any more, or the owner gave up on them. */
  tdm_list_t *n;
  while ((n = tdm_list_first(&a->queue)) != NULL)
    answer_locked(a, TDM_CONTAINER_OF(n, req_t, link), 503, NULL, NULL, 0);
  while ((n = tdm_list_first(&a->handed)) != NULL)
    answer_locked(a, TDM_CONTAINER_OF(n, req_t, link), 503, NULL, NULL, 0);
  uv_cond_broadcast(&a->cond);
  uv_mutex_unlock(&a->lock);
  MHD_stop_daemon(a->mhd); /* joins the connection threads, which no longer wait */
  a->mhd = NULL;
  uv_close((uv_handle_t *)&a->async, on_async_closed);
}
