/* Plain TCP transport: libuv stream calls on the connection's uv_tcp_t, with completions forwarded to
 * the connection (tdm_conn_on_*). The one write request and the shutdown request live in the
 * connection; the contract in transport.h allows one of each in flight. */
#include <tandem/net/transport.h>
#include <tandem/net/conn.h>

static void tcp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)suggested; /* the connection sizes its own reservations */
  tdm_conn_on_alloc(h->data, buf);
}

static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  (void)buf; /* the bytes were reserved in the connection's buffer by tcp_alloc_cb */
  tdm_conn_on_read(s->data, nread);
}

static int tcp_read_start(tdm_conn_t *c) { return uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc_cb, tcp_read_cb); }

static int tcp_read_stop(tdm_conn_t *c) { return uv_read_stop((uv_stream_t *)&c->tcp); }

static void tcp_write_cb(uv_write_t *req, int status) { tdm_conn_on_written(req->data, status); }

/* A non-blocking writev first: when the socket takes everything (the common case) the write costs one
 * syscall, no POLLOUT arming (epoll_ctl) and no allocation (uv_write mallocs its buffer array above 4
 * buffers). Only a remainder the kernel did not take goes through uv_write. */
static int tcp_write(tdm_conn_t *c, const uv_buf_t *bufs, unsigned int nbufs)
{
  uv_stream_t *s = (uv_stream_t *)&c->tcp;
  int n = uv_try_write(s, bufs, nbufs);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) return n;
  size_t done = (size_t)n;
  unsigned int i = 0;
  while (i < nbufs && done >= bufs[i].len) done -= bufs[i++].len;
  if (i == nbufs) return TDM_TRANSPORT_WRITTEN;
  c->write_req.data = c;
  if (i == 0 && done == 0) return uv_write(&c->write_req, s, bufs, nbufs, tcp_write_cb);
  /* partial: the rest starts inside bufs[i]; uv_write copies the array, so a stack copy will do */
  uv_buf_t rest[2 * TDM_CONN_BATCH_MAX];
  unsigned int m = nbufs - i;
  TDM_ASSERT(m <= 2 * TDM_CONN_BATCH_MAX);
  memcpy(rest, bufs + i, m * sizeof(*rest));
  rest[0].base += done;
  rest[0].len -= done;
  return uv_write(&c->write_req, s, rest, m, tcp_write_cb);
}

static void tcp_shutdown_cb(uv_shutdown_t *req, int status) { tdm_conn_on_shutdown(req->data, status); }

static int tcp_shutdown(tdm_conn_t *c)
{
  c->shutdown_req.data = c;
  return uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, tcp_shutdown_cb);
}

static void tcp_close(tdm_conn_t *c, uv_close_cb cb) { uv_close((uv_handle_t *)&c->tcp, cb); }

const tdm_transport_t tdm_transport_tcp = {
  .name = "tcp",
  .read_start = tcp_read_start,
  .read_stop = tcp_read_stop,
  .write = tcp_write,
  .shutdown = tcp_shutdown,
  .close = tcp_close,
};
