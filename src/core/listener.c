/* Listener: own socket + uv_poll + accept4. Pausing stops the poll, so queued connections wait in
 * the kernel backlog (they are not refused) until accepting resumes. An EMFILE/ENFILE pause is ended
 * by the listener's own timer; every other reason belongs to the owner. */
#include <errno.h>
#include <unistd.h>
#include <tandem/core/listener.h>
#include <tandem/obs/log.h>

static void on_poll(uv_poll_t *h, int status, int events);

static void apply(tdm_listener_t *l)
{
  bool want = !l->closing && l->pause == 0;
  if (want && !l->polling) {
    int rc = uv_poll_start(&l->poll, UV_READABLE, on_poll);
    if (rc < 0) {
      tdm_log_error(l->name, "cannot watch the listening socket: %s", uv_strerror(rc));
      return;
    }
    l->polling = true;
  } else if (!want && l->polling) {
    uv_poll_stop(&l->poll);
    l->polling = false;
  }
}

void tdm_listener_pause(tdm_listener_t *l, uint32_t reasons)
{
  l->pause |= reasons;
  apply(l);
}

void tdm_listener_resume(tdm_listener_t *l, uint32_t reasons)
{
  l->pause &= ~reasons;
  apply(l);
}

static void on_emfile_timer(uv_timer_t *t)
{
  tdm_listener_t *l = t->data;
  tdm_listener_resume(l, TDM_LISTENER_PAUSE_EMFILE);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
  tdm_listener_t *l = h->data;
  (void)events;
  if (status < 0) {
    l->accept_errors++;
    tdm_log_error(l->name, "listening socket error: %s", uv_strerror(status));
    return;
  }
  for (int i = 0; i < TDM_LISTENER_ACCEPT_BATCH && l->pause == 0 && !l->closing; i++) {
    tdm_sockaddr_t peer;
    socklen_t len = sizeof(peer);
    memset(&peer, 0, sizeof(peer));
    int fd = accept4(l->fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        l->emfile_pauses++;
        tdm_log_warn(l->name, "accept: %s; pausing accepts for %u ms", uv_strerror(-err), l->emfile_pause_ms);
        tdm_listener_pause(l, TDM_LISTENER_PAUSE_EMFILE);
        uv_timer_start(&l->timer, on_emfile_timer, l->emfile_pause_ms, 0);
        break;
      }
      l->accept_errors++;
      tdm_log_error(l->name, "accept: %s", uv_strerror(-err));
      break;
    }
    l->accepted++;
    if (l->on_accept(l, fd, &peer) < 0) close(fd);
  }
}

/* Creates, configures, binds and listens; the fd or a negative errno. */
static int make_socket(const tdm_sockaddr_t *addr, int backlog)
{
  int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
      bind(fd, &addr->sa, tdm_sockaddr_len(addr)) < 0 || listen(fd, backlog) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

int tdm_listener_open(tdm_listener_t *l, uv_loop_t *loop, const tdm_sockaddr_t *addr, int backlog,
                      tdm_listener_accept_cb cb, void *data)
{
  memset(l, 0, sizeof(*l));
  l->fd = -1;
  if (!tdm_sockaddr_len(addr) || !cb) return TDM_EINVAL;
  int fd = make_socket(addr, backlog > 0 ? backlog : TDM_LISTENER_BACKLOG);
  if (fd < 0) return fd;
  int rc = uv_poll_init_socket(loop, &l->poll, fd);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  rc = uv_timer_init(loop, &l->timer);
  if (rc < 0) {
    uv_close((uv_handle_t *)&l->poll, NULL); /* caller's memory; nothing to free */
    close(fd);
    return rc;
  }
  l->poll.data = l;
  l->timer.data = l;
  l->handles = 2;
  l->loop = loop;
  l->fd = fd;
  l->on_accept = cb;
  l->data = data;
  l->emfile_pause_ms = TDM_LISTENER_EMFILE_PAUSE_MS;
  if (tdm_sockaddr_local_of(fd, &l->addr) < 0) l->addr = *addr;
  tdm_sockaddr_format(&l->addr, l->name, sizeof(l->name));
  apply(l);
  return 0;
}

int tdm_listener_open_host(tdm_listener_t *l, uv_loop_t *loop, const char *host, uint16_t port, int backlog,
                           tdm_listener_accept_cb cb, void *data)
{
  tdm_sockaddr_t addr;
  int rc = tdm_sockaddr_resolve(host, port, &addr);
  if (rc < 0) {
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    return rc;
  }
  return tdm_listener_open(l, loop, &addr, backlog, cb, data);
}

static void on_closed(uv_handle_t *h)
{
  tdm_listener_t *l = h->data;
  if (--l->handles > 0) return;
  if (l->fd >= 0) close(l->fd); /* uv_poll never closes the socket it watches */
  l->fd = -1;
  if (l->close_cb) l->close_cb(l);
}

void tdm_listener_close(tdm_listener_t *l, void (*cb)(tdm_listener_t *l))
{
  if (l->closing || l->handles == 0) return;
  l->closing = true;
  l->close_cb = cb;
  l->polling = false;
  uv_timer_stop(&l->timer);
  uv_close((uv_handle_t *)&l->poll, on_closed);
  uv_close((uv_handle_t *)&l->timer, on_closed);
}
