/* Inbox: mutex FIFO + uv_async_t. Invariants: a message is on at most one inbox; head == NULL iff
 * tail == NULL; once closed is set (under the lock) no message is ever linked again, and every push
 * that saw it unset has finished its uv_async_send before the lock is released, so the handle is never
 * signalled after tdm_inbox_close. The wake-up is sent only when the queue goes from empty to
 * non-empty: a non-empty queue always has a wake-up pending, since the callback empties it whole. */
#include <unistd.h>
#include <tandem/core/inbox.h>

static const char *const kind_names[TDM_MSG_KIND_MAX] = {
  [TDM_MSG_NEW_CONN] = "NEW_CONN", [TDM_MSG_CONF_SWAP] = "CONF_SWAP", [TDM_MSG_STATS_REQ] = "STATS_REQ",
  [TDM_MSG_DRAIN] = "DRAIN",       [TDM_MSG_STOP] = "STOP",           [TDM_MSG_CALL] = "CALL",
};

const char *tdm_msg_kind_name(tdm_msg_kind_t kind)
{
  return ((int)kind >= 0 && kind < TDM_MSG_KIND_MAX) ? kind_names[kind] : "?";
}

tdm_msg_t *tdm_msg_new(tdm_msg_kind_t kind)
{
  tdm_msg_t *m = calloc(1, sizeof(*m));
  if (!m) return NULL;
  m->kind = kind;
  if (kind == TDM_MSG_NEW_CONN) m->u.conn.fd = -1;
  return m;
}

tdm_msg_t *tdm_msg_new_conn(uv_os_sock_t fd, const tdm_sockaddr_t *peer)
{
  tdm_msg_t *m = tdm_msg_new(TDM_MSG_NEW_CONN);
  if (!m) return NULL;
  m->u.conn.fd = fd;
  if (peer) m->u.conn.peer = *peer;
  return m;
}

tdm_msg_t *tdm_msg_new_conf(void *ptr, void (*release)(void *ptr))
{
  tdm_msg_t *m = tdm_msg_new(TDM_MSG_CONF_SWAP);
  if (!m) return NULL;
  m->u.conf.ptr = ptr;
  m->u.conf.release = release;
  return m;
}

tdm_msg_t *tdm_msg_new_call(void (*fn)(void *arg), void *arg, void (*cancel)(void *arg))
{
  tdm_msg_t *m = tdm_msg_new(TDM_MSG_CALL);
  if (!m) return NULL;
  m->u.call.fn = fn;
  m->u.call.arg = arg;
  m->u.call.cancel = cancel;
  return m;
}

void tdm_msg_free_default(tdm_msg_t *m)
{
  switch (m->kind) {
  case TDM_MSG_NEW_CONN:
    if (m->u.conn.fd >= 0) close(m->u.conn.fd);
    break;
  case TDM_MSG_CONF_SWAP:
    if (m->u.conf.ptr && m->u.conf.release) m->u.conf.release(m->u.conf.ptr);
    break;
  case TDM_MSG_CALL:
    if (!m->delivered && m->u.call.cancel) m->u.call.cancel(m->u.call.arg);
    break;
  default:
    break;
  }
  free(m);
}

void tdm_msg_free(tdm_msg_t *m)
{
  if (!m) return;
  if (m->free_cb)
    m->free_cb(m);
  else
    tdm_msg_free_default(m);
}

static void on_async(uv_async_t *h)
{
  tdm_inbox_t *ib = h->data;
  uv_mutex_lock(&ib->lock);
  tdm_msg_t *m = ib->head;
  ib->head = ib->tail = NULL;
  uv_mutex_unlock(&ib->lock);
  ib->wakeups++;
  while (m) {
    tdm_msg_t *next = m->next;
    m->next = NULL;
    if (ib->closed) {
      tdm_msg_free(m); /* the handler closed the inbox: the rest is undelivered */
    } else {
      m->delivered = true;
      ib->delivered++;
      ib->on_msg(ib, m);
    }
    m = next;
  }
}

int tdm_inbox_init(tdm_inbox_t *ib, uv_loop_t *loop, tdm_inbox_cb on_msg, void *data)
{
  memset(ib, 0, sizeof(*ib));
  ib->on_msg = on_msg;
  ib->data = data;
  int rc = uv_mutex_init(&ib->lock);
  if (rc < 0) return rc;
  rc = uv_async_init(loop, &ib->async, on_async);
  if (rc < 0) {
    uv_mutex_destroy(&ib->lock);
    return rc;
  }
  ib->async.data = ib;
  ib->inited = true;
  return 0;
}

int tdm_inbox_push(tdm_inbox_t *ib, tdm_msg_t *m)
{
  m->next = NULL;
  m->delivered = false;
  uv_mutex_lock(&ib->lock);
  if (ib->closed) {
    uv_mutex_unlock(&ib->lock);
    return TDM_ECLOSED;
  }
  bool was_empty = ib->head == NULL;
  if (ib->tail)
    ib->tail->next = m;
  else
    ib->head = m;
  ib->tail = m;
  ib->pushed++;
  /* under the lock, so the handle cannot be closed between the check and the send */
  if (was_empty) uv_async_send(&ib->async);
  uv_mutex_unlock(&ib->lock);
  return 0;
}

static void on_async_closed(uv_handle_t *h)
{
  tdm_inbox_t *ib = h->data;
  if (ib->close_cb) ib->close_cb(ib);
}

void tdm_inbox_close(tdm_inbox_t *ib, void (*cb)(tdm_inbox_t *ib))
{
  uv_mutex_lock(&ib->lock);
  if (ib->closed) {
    uv_mutex_unlock(&ib->lock);
    return;
  }
  ib->closed = true;
  tdm_msg_t *m = ib->head;
  ib->head = ib->tail = NULL;
  uv_mutex_unlock(&ib->lock);
  while (m) {
    tdm_msg_t *next = m->next;
    m->next = NULL;
    tdm_msg_free(m);
    m = next;
  }
  ib->close_cb = cb;
  uv_close((uv_handle_t *)&ib->async, on_async_closed);
}

void tdm_inbox_destroy(tdm_inbox_t *ib)
{
  if (!ib->inited) return;
  ib->inited = false;
  uv_mutex_destroy(&ib->lock);
}
