/* The byte transport under a connection: an ops table (start/stop reading, write iovecs, shutdown,
 * close) with a plain TCP implementation. TLS will be a second table with the same contract, so
 * connection and protocol code never call uv_read_start / uv_write / uv_shutdown themselves.
 *
 * Contract, for every implementation:
 *   read_start   plaintext arrives through tdm_conn_on_alloc() + tdm_conn_on_read()
 *   write        at most one write in flight per connection; returns TDM_TRANSPORT_WRITTEN when every
 *                byte reached the kernel before it returned (no completion follows: the caller completes
 *                the write itself), 0 when the write is queued: its completion (also ECANCELED on
 *                close) is reported once through tdm_conn_on_written(); the bufs array may be reused as
 *                soon as write returns, the bytes must stay valid until completion
 *   shutdown     sends FIN after everything written; completion through tdm_conn_on_shutdown()
 *   close        closes the socket handle and calls cb(handle) once, after any write completion */
#ifndef TANDEM_NET_TRANSPORT_H
#define TANDEM_NET_TRANSPORT_H

#include <uv.h>

typedef struct tdm_conn_s tdm_conn_t;

/* write's answer when the whole write went out synchronously */
#define TDM_TRANSPORT_WRITTEN 1

typedef struct tdm_transport_s {
  const char *name;                                                     /* "tcp", later "tls" */
  int (*read_start)(tdm_conn_t *c);                                     /* 0 or UV_E* */
  int (*read_stop)(tdm_conn_t *c);                                      /* 0 or UV_E* */
  int (*write)(tdm_conn_t *c, const uv_buf_t *bufs, unsigned int nbufs); /* 0, WRITTEN or UV_E* */
  int (*shutdown)(tdm_conn_t *c);                                       /* 0 or UV_E* */
  void (*close)(tdm_conn_t *c, uv_close_cb cb);                         /* never fails */
} tdm_transport_t;

/* Plain TCP over the connection's uv_tcp_t. */
extern const tdm_transport_t tdm_transport_tcp;

#endif
