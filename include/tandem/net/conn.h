/* The base connection embedded by client and backend connections: a uv_tcp_t behind a transport,
 * an id + tag for logs, a reference held around every callback (a handler may close its own
 * connection), idempotent deferred close with memory released only from the last close callback, a
 * read buffer handed whole to the owner, a write queue flushed with one write per socket per loop
 * iteration, high/low watermarks for backpressure, flush-then-close and connect with a deadline.
 * Everything here runs on the connection's worker loop (rule 7). The flow is drawn in conn.c. */
#ifndef TANDEM_NET_CONN_H
#define TANDEM_NET_CONN_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/net/buf.h>
#include <tandem/net/sockaddr.h>
#include <tandem/net/transport.h>
#include <tandem/util/queue.h>

#define TDM_CONN_INLINE_MAX 48          /* header bytes copied into a write-queue entry */
#define TDM_CONN_BATCH_MAX 256          /* entries gathered into one write */
#define TDM_CONN_READ_BLOCK 16384       /* pool block behind a read buffer */
#define TDM_CONN_READ_MIN 4096          /* smallest read reservation */
#define TDM_CONN_SLICE_BLOCK 2048       /* pool block for small slices (tdm_conn_write_bytes) */
#define TDM_CONN_POOL_KEEP 1024         /* blocks each pool keeps for reuse */
#define TDM_CONN_HIGH_WATER_DEFAULT (4u << 20) /* backpressure_high_water_bytes default; low = half */
#define TDM_CONN_RBUF_MAX_DEFAULT (256u << 20) /* read buffer limit; frames are bounded before that */
#define TDM_CONN_TAG_MAX 80             /* "C-<id> [<v6>]:<port>" */

/* Read pause reasons (a bit mask; reading runs while no bit is set). Owners may use bits 8 and up. */
#define TDM_CONN_PAUSE_OWN_OUTPUT (1u << 0) /* this connection's unsent bytes are above high water */
#define TDM_CONN_PAUSE_PEER_OUTPUT (1u << 1) /* a backend this connection needs is above high water */
#define TDM_CONN_PAUSE_STREAMS (1u << 2)    /* waiting for stream ids */
#define TDM_CONN_PAUSE_OWNER (1u << 3)      /* any other owner reason */

typedef struct tdm_conn_ctx_s tdm_conn_ctx_t;

/* Owner callbacks; a const table per connection kind. Each runs with a reference held. */
typedef struct tdm_conn_hooks_s {
  /* All buffered unread bytes; return how many were consumed (0..len; the rest stays buffered and is
   * offered again with more), or a negative code to close with it. To yield with complete frames
   * still buffered, consume some and call tdm_conn_redeliver(). */
  int (*on_data)(tdm_conn_t *c, const uint8_t *data, size_t len);
  void (*on_high)(tdm_conn_t *c);             /* unsent bytes rose above high (once per crossing) */
  void (*on_low)(tdm_conn_t *c);              /* after a high: unsent bytes fell to low or below */
  void (*on_close)(tdm_conn_t *c, int reason); /* closing began (once): fail what depends on it */
  void (*on_destroy)(tdm_conn_t *c);          /* handles closed, no references: free the memory */
} tdm_conn_hooks_t;

typedef void (*tdm_conn_connect_cb)(tdm_conn_t *c, int status);

/* Per-loop (per-worker) networking state shared by that loop's connections: the flush scheduler
 * (uv_prepare + uv_check + uv_idle, see conn.c), block pools and counters. */
struct tdm_conn_ctx_s {
  uv_loop_t *loop;             /* the loop every connection of this context runs on */
  uv_prepare_t prepare;        /* flush pass before the loop blocks in poll */
  uv_check_t check;            /* flush pass right after poll (same iteration as the reads) */
  uv_idle_t idle;              /* started while redeliveries are due, so poll does not block */
  tdm_list_t pending;          /* connections with a flush or a redelivery due */
  bool armed;                  /* prepare and check are started (pending was non-empty) */
  bool closing;                /* tdm_conn_ctx_close was called */
  uint8_t handles;             /* ctx handles not yet closed */
  tdm_buf_pool_t read_pool;    /* read buffer blocks */
  tdm_buf_pool_t entry_pool;   /* write-queue entries */
  tdm_buf_pool_t slice_pool;   /* small slices */
  size_t high_water;           /* watermark given to new connections (low = half); 0 = none */
  size_t rbuf_max;             /* read buffer limit given to new connections */
  uint32_t nconns;             /* connections initialised and not yet destroyed */
  uint64_t bytes_in;           /* bytes read by all connections */
  uint64_t bytes_out;          /* bytes confirmed written by all connections */
  uint64_t write_calls;        /* transport writes issued */
  uint64_t passes;             /* flush passes run */
  void (*close_cb)(tdm_conn_ctx_t *ctx); /* called when the ctx handles have closed */
  uv_buf_t iov[2 * TDM_CONN_BATCH_MAX]; /* scratch for building one write */
};

struct tdm_conn_s {
  uv_tcp_t tcp;                    /* the socket */
  uv_timer_t timer;                /* connect or flush-close deadline; initialised on first use */
  uv_connect_t connect_req;        /* the connect in flight */
  uv_write_t write_req;            /* the write in flight (transport-owned) */
  uv_shutdown_t shutdown_req;      /* the shutdown in flight (transport-owned) */
  tdm_conn_ctx_t *ctx;             /* loop-wide state */
  const tdm_transport_t *transport; /* tcp now, tls later */
  void *transport_state;           /* the transport's per-connection state (TLS session) */
  const tdm_conn_hooks_t *hooks;   /* owner callbacks */
  void *data;                      /* owner's pointer */
  uint64_t id;                     /* owner-assigned id, for the tag */
  tdm_sockaddr_t peer;             /* remote address (set on open / connect) */
  char tag[TDM_CONN_TAG_MAX];      /* "C-12 10.0.0.5:5123", passed to tdm_log_* */
  char kind;                       /* tag letter: 'C' client, 'O' origin, 'T' target, ... */
  tdm_buf_t rbuf;                  /* unread input */
  size_t read_want;                /* bytes the owner needs buffered (sizes the next reservation) */
  int alloc_err;                   /* why the last read reservation failed */
  tdm_list_t wq;                   /* write entries, oldest first; the first `inflight` are being written */
  uint32_t wq_len;                 /* entries in wq */
  uint32_t inflight;               /* entries in the write in flight (0: none) */
  size_t unsent;                   /* bytes queued or in flight, not yet confirmed written */
  size_t high;                     /* high watermark; 0 disables the callbacks */
  size_t low;                      /* low watermark, <= high */
  tdm_list_t pending_link;         /* membership in ctx->pending */
  uint8_t pending;                 /* CONN_DUE_* bits of that membership */
  uint8_t handles;                 /* handles not yet closed (tcp, timer) */
  uint32_t refs;                   /* 1 for the open handles + one per hold */
  uint32_t read_pause;             /* TDM_CONN_PAUSE_* bits */
  int close_reason;                /* reason given to the first tdm_conn_close */
  tdm_conn_connect_cb connect_cb;  /* pending connect's callback */
  uint64_t bytes_in;               /* bytes read */
  uint64_t bytes_out;              /* bytes confirmed written */
  uint64_t write_calls;            /* transport writes issued */
  bool read_on;                    /* owner called tdm_conn_read_start */
  bool reading;                    /* the transport is reading */
  bool timer_inited;               /* timer handle initialised (and must be closed) */
  bool connecting;                 /* a connect is in flight and not yet reported */
  bool above_high;                 /* unsent crossed high and has not yet fallen to low */
  bool flush_close;                /* flush-then-close requested: no more writes, input discarded */
  bool flush_deadline;             /* the flush-close has a deadline (so it may wait for the peer's EOF) */
  bool shutdown_sent;              /* FIN requested */
  bool fin_done;                   /* FIN sent: everything queued was written */
  bool closing;                    /* tdm_conn_close ran; no new work accepted */
};

/* ---- the per-loop context ---- */

/* Initialises ctx on loop (call on the loop's thread). 0 or UV_E*. */
int tdm_conn_ctx_init(tdm_conn_ctx_t *ctx, uv_loop_t *loop);
/* Closes the scheduler handles; cb (may be NULL) runs when they are closed. Close every connection
 * first: connections still alive afterwards can neither flush nor redeliver. */
void tdm_conn_ctx_close(tdm_conn_ctx_t *ctx, void (*cb)(tdm_conn_ctx_t *ctx));

/* A slice of n bytes from the smallest of the context's pools whose blocks hold it (small slices, then
 * read blocks), else from `fallback` (NULL or a pool whose blocks are too small: malloc'd). NULL when
 * out of memory. */
tdm_slice_t *tdm_conn_ctx_slice(tdm_conn_ctx_t *ctx, tdm_buf_pool_t *fallback, size_t n);

/* ---- lifecycle ---- */

/* Initialises c (any prior contents are overwritten) with the TCP transport and the ctx defaults.
 * On failure nothing needs closing. 0 or UV_E*. */
int tdm_conn_init(tdm_conn_t *c, tdm_conn_ctx_t *ctx, const tdm_conn_hooks_t *hooks, void *data);
/* Names the connection for logs: kind letter + id, plus the peer once known. */
void tdm_conn_set_name(tdm_conn_t *c, char kind, uint64_t id);
/* Adopts an accepted socket (takes ownership of fd in all cases). On failure the connection is
 * already closing. 0 or UV_E*. */
int tdm_conn_open(tdm_conn_t *c, uv_os_sock_t fd);
/* Connects to addr; cb runs exactly once: 0, a UV_E* (UV_ECANCELED when closed meanwhile) or
 * TDM_ETIMEOUT after timeout_ms (0 = no deadline). After a failure the connection closes itself.
 * A synchronous failure is returned (the connection is then closing) and cb is not called. */
int tdm_conn_connect(tdm_conn_t *c, const tdm_sockaddr_t *addr, uint64_t timeout_ms, tdm_conn_connect_cb cb);
/* Closes once (later calls return at once): on_close(reason), stop everything, close the handles;
 * queued writes are dropped. Memory goes back in on_destroy after the last handle and reference. */
void tdm_conn_close(tdm_conn_t *c, int reason);
/* Stops accepting writes, writes everything queued, sends FIN, then closes on the peer's EOF (input
 * meanwhile is discarded so the close never resets), or after timeout_ms from now (0: no deadline;
 * close right after the FIN). Reason 0 once the FIN went out (even if the peer then never closed),
 * TDM_ETIMEOUT when the deadline came first, or the write error. */
void tdm_conn_close_after_flush(tdm_conn_t *c, uint64_t timeout_ms);

static inline void tdm_conn_hold(tdm_conn_t *c) { c->refs++; }
/* Drops a reference; the last one (after the handles have closed) destroys the connection. */
void tdm_conn_release(tdm_conn_t *c);

static inline bool tdm_conn_is_closing(const tdm_conn_t *c) { return c->closing; }
static inline const char *tdm_conn_tag(const tdm_conn_t *c) { return c->tag; }
static inline size_t tdm_conn_unsent(const tdm_conn_t *c) { return c->unsent; }

/* ---- reading ---- */

/* Starts delivering input to on_data (unless paused). 0 or UV_E*. */
int tdm_conn_read_start(tdm_conn_t *c);
/* Adds / removes pause reasons; reading runs while none is set. Resuming with input buffered
 * schedules a delivery. */
void tdm_conn_read_pause(tdm_conn_t *c, uint32_t reasons);
void tdm_conn_read_resume(tdm_conn_t *c, uint32_t reasons);
/* Offers the buffered input again in this or the next loop iteration (after a yield). */
void tdm_conn_redeliver(tdm_conn_t *c);
/* The owner needs `total` bytes buffered (a partial frame's full size): the next reservation grows
 * the buffer once instead of in steps. 0 resets. */
static inline void tdm_conn_read_hint(tdm_conn_t *c, size_t total) { c->read_want = total; }
/* A reference to input bytes p[0..n) (within what on_data was given) for forwarding without a copy. */
static inline tdm_slice_t *tdm_conn_share_input(tdm_conn_t *c, const uint8_t *p, size_t n, size_t *off)
{
  return tdm_buf_share(&c->rbuf, p, n, off);
}

/* ---- writing ---- */

/* Queues hdr[0..hlen) (copied, hlen <= TDM_CONN_INLINE_MAX) followed by slice bytes [off, off+len)
 * (a reference is taken; slice may be NULL when len is 0). Fires on_high synchronously when this
 * crosses the high watermark. 0, TDM_ECLOSED (closing or flush-closing), TDM_EINVAL or TDM_ENOMEM. */
int tdm_conn_write(tdm_conn_t *c, const void *hdr, size_t hlen, tdm_slice_t *slice, size_t off, size_t len);
/* Queues a copy of p[0..n) (inline when short, else in a new slice). */
int tdm_conn_write_bytes(tdm_conn_t *c, const void *p, size_t n);
/* Sets the watermarks (low <= high; high 0 disables them). */
void tdm_conn_set_watermarks(tdm_conn_t *c, size_t high, size_t low);

/* ---- for transport implementations only ---- */

void tdm_conn_on_alloc(tdm_conn_t *c, uv_buf_t *buf);
void tdm_conn_on_read(tdm_conn_t *c, ssize_t nread);
void tdm_conn_on_written(tdm_conn_t *c, int status);
void tdm_conn_on_shutdown(tdm_conn_t *c, int status);

#endif
