/* Frontend internals shared by the src/frontend sources and nothing else: the client connection, the client
 * state machine, the per-worker frontend state (listener, deadlines, v5 output sealing, auth cache,
 * virtual statements), and the tdm__ calls the files make on each other.
 *
 *   accept ─> STARTUP ─STARTUP─> AUTHENTICATING ─token─┐        (client-auth cluster requires auth)
 *                  │                   ^               v
 *                  └──────STARTUP────> WAIT_BACKENDS ──both sessions ready──> READY ─drain─> DRAINING
 *                  │   (no auth)          │ (BAD_CREDENTIALS: back to AUTHENTICATING)          │
 *                  └─unusable version─> REFUSED_VERSION <─ a cluster refused the version       v
 *   any state ──────────────────────────── close (error, EOF, timeout, drain done) ──────> CLOSED */
#ifndef TANDEM_FRONTEND_INTERNAL_H
#define TANDEM_FRONTEND_INTERNAL_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/core/listener.h>
#include <tandem/core/proxy.h>
#include <tandem/frontend/auth.h>
#include <tandem/frontend/client.h>
#include <tandem/frontend/vtables.h>
#include <tandem/net/conn.h>
#include <tandem/proto/envelope.h>
#include <tandem/proto/frame.h>
#include <tandem/util/queue.h>

#define TDM_FRONTEND_FRAMES_PER_READ 64   /* frames handled per read callback before yielding (§11.2) */
#define TDM_FRONTEND_LINGER_MS 2000       /* flush-then-close waits this long for the client's FIN */
#define TDM_FRONTEND_REFUSE_MAX 64        /* over-limit sockets answered at once (§11.2) */
#define TDM_FRONTEND_REFUSE_MS 5000       /* an over-limit socket's first frame must come within this */
#define TDM_FRONTEND_REFUSE_BYTES 65536   /* ... and be at most this big */
#define TDM_FRONTEND_WAIT_BUFFER 65536    /* input buffered while READY is held before reading pauses */
#define TDM_FRONTEND_VSTMT_MAX 1024       /* virtual prepared statements kept per worker */
#define TDM_FRONTEND_STREAM_PAGES 32      /* in-flight stream id bitmap: 32 pages of 1024 ids */
#define TDM_FRONTEND_PAUSE_WAIT (1u << 8)     /* owner pause bit: too much input while READY is held */

/* Client states (style rule 4). Only tdm__client_set_state writes client->state. */
enum tdm_client_state {
  TDM_CLIENT_STARTUP = 0,     /* accepted (a zeroed client): OPTIONS and STARTUP expected */
  TDM_CLIENT_AUTHENTICATING,  /* AUTHENTICATE or AUTH_CHALLENGE sent: waiting for the client's token */
  TDM_CLIENT_WAIT_BACKENDS,   /* sessions opening (and credentials verifying): READY/AUTH_SUCCESS held,
                                 later input stays buffered, unparsed, in order */
  TDM_CLIENT_READY,           /* requests go to the route module; OPTIONS/REGISTER answered here */
  TDM_CLIENT_REFUSED_VERSION, /* version refused: every frame gets the same §3 error until close */
  TDM_CLIENT_DRAINING,        /* shutting down: new requests get OVERLOADED; closes when none in flight */
  TDM_CLIENT_CLOSED,          /* closing began: responses are dropped */
  TDM_CLIENT_STATE_MAX        /* sentinel */
};

/* One v5 envelope waiting for the next seal pass (framed output). */
typedef struct tdm__env_out_s {
  uint8_t hdr[TDM_ENVELOPE_HEADER]; /* response header, flag 0x01 clear */
  tdm_slice_t *slice;               /* body storage (one reference), NULL when len == 0 */
  size_t off;                       /* body offset in slice */
  size_t len;                       /* body length */
} tdm__env_out_t;

typedef struct tdm_frontend_s tdm_frontend_t;

struct tdm_client_s {
  tdm_conn_t conn;                   /* socket, buffers, write queue (net/conn.h) */
  tdm_client_view_t view;            /* what the route module reads */
  tdm_frontend_t *fe;                /* this worker's frontend; never touched once closing began */
  enum tdm_client_state state;       /* written only by tdm__client_set_state */
  tdm_list_t link;                   /* pw->clients */
  tdm_list_t hs_link;                /* fe->handshaking until READY (deadline order = accept order) */
  tdm_list_t seal_link;              /* fe->sealing while framed output awaits the seal pass */
  uint64_t accepted_ms;              /* loop time of accept (handshake deadline) */
  char peer[TDM_SOCKADDR_STRLEN];    /* "ip:port" of the client */
  char local[TDM_SOCKADDR_STRLEN];   /* "ip:port" it connected to */
  tdm_sockaddr_t local_addr;         /* the same, as an address (virtual tables' rpc_address) */
  char keyspace[256];                /* current keyspace ("" none), also the v3/v4 pool keys' keyspace */
  bool version_set;                  /* the first usable frame fixed view.version */
  bool framed;                       /* v5 framing started (READY or AUTHENTICATE written) */
  bool counted_version;              /* counted in stats.client_versions */
  uint8_t refused_version;           /* REFUSED_VERSION: the version byte the client asked for */
  uint32_t discard;                  /* v3/v4 body bytes of an over-limit frame still to drop */
  uint32_t events;                   /* TDM_REQUEST_EVENT_* bits from REGISTER */
  tdm_envelope_reader_t reader;      /* v5 input once framed */
  tdm__env_out_t *out;               /* v5 envelopes waiting for the seal pass */
  size_t nout;                       /* entries used in out */
  size_t out_cap;                    /* entries allocated in out */
  uint64_t *streams[TDM_FRONTEND_STREAM_PAGES]; /* in-flight ids: 1024-bit pages, allocated on use */
  /* handshake */
  int16_t hs_stream;                 /* stream of the STARTUP / AUTH_RESPONSE whose answer is held */
  uint8_t hs_answer;                 /* TDM_OP_READY or TDM_OP_AUTH_SUCCESS, sent when both are ready */
  uint8_t sessions_pending;          /* bit per cluster: tdm_backend_session_open outstanding */
  int auth_cluster;                  /* the client-auth cluster, -1 when nobody checks credentials */
  bool plain_started;                /* PLAIN-START sent: the next token must carry credentials */
  bool cache_hit;                    /* the identity was verified from the cache */
  tdm_credentials_t creds;           /* client identity for the client-auth cluster's pool key */
  char *cred_buf;                    /* authzid\0user\0password\0; the password is wiped at READY */
  size_t cred_len;                   /* bytes at cred_buf */
  const char *driver;                /* DRIVER_NAME/VERSION for logs (points into driver_buf) */
  char driver_buf[96];               /* "name version" */
};

/* Virtual prepared statement (EXECUTE answered locally). */
typedef struct tdm__vstmt_s {
  uint8_t id[16];   /* md5("tandem:" + keyspace + ":" + query) */
  char *query;      /* text */
  size_t query_len; /* bytes */
  char *keyspace;   /* keyspace it was prepared under */
} tdm__vstmt_t;

/* Over-limit socket being answered (§11.2). */
typedef struct tdm__refusal_s {
  tdm_conn_t conn;          /* its connection */
  tdm_frontend_t *fe;       /* owner; NULL once the frontend is gone */
  tdm_list_t link;          /* fe->refusals */
  uint64_t accepted_ms;     /* loop time of accept */
  bool answered;            /* the refusal was queued */
} tdm__refusal_t;

/* The frontend's per-worker state (pw->frontend). */
struct tdm_frontend_s {
  tdm_proxy_worker_t *pw;         /* owner */
  tdm_conn_ctx_t *net;            /* the worker's connection context */
  tdm_listener_t listener;        /* client port (SO_REUSEPORT) */
  bool listening;                 /* listener open */
  bool draining;                  /* tdm_frontend_drain ran */
  bool stopping;                  /* tdm_frontend_stop ran */
  bool logged_partitioner;        /* the real partitioner was logged once */
  uint8_t handles;                /* timer + idle not yet closed */
  uint64_t next_id;               /* connection ids (C-<id>) */
  uint32_t admitted;              /* open client connections (counted against the limit) */
  uint32_t states[TDM_CLIENT_STATE_MAX]; /* clients per state */
  tdm_list_t handshaking;         /* clients before READY, oldest first */
  tdm_list_t refusals;            /* over-limit sockets, oldest first */
  uint32_t nrefusals;             /* entries in refusals */
  uv_timer_t timer;               /* next handshake / refusal deadline */
  uv_idle_t idle;                 /* seal pass for v5 output (runs while sealing is non-empty) */
  bool idle_on;                   /* idle started */
  tdm_list_t sealing;             /* framed clients with envelopes waiting */
  tdm_segment_lz4_t lz4;          /* compressor state of the seal pass's lz4 segments (zeroed = set up on use) */
  uint8_t *lz4_spare;             /* idle lz4 decompression buffer shared by the clients' readers (trimmed
                                     after each read callback, so a v5+lz4 client holds none while idle) */
  tdm_auth_cache_t auth;          /* verified identities */
  unsigned learned_refused[2];    /* versions a cluster refused during a handshake, per cluster */
  uint64_t learned_gen[2];        /* topology generation those refusals were learned under */
  tdm__vstmt_t *vstmts;           /* virtual prepared statements, oldest first */
  size_t nvstmts;                 /* entries used */
};

static inline tdm_client_t *tdm__client_of(tdm_conn_t *c) { return (tdm_client_t *)c->data; }
static inline bool tdm__client_alive(const tdm_client_t *c) { return !c->conn.closing && !c->conn.flush_close; }

/* ---- client.c ---- */
void tdm__client_set_state(tdm_client_t *c, enum tdm_client_state to);
const char *tdm__client_state_name(enum tdm_client_state s);
int tdm__client_accept(tdm_frontend_t *fe, uv_os_sock_t fd);
/* Seals pending framed output, then flushes and closes (input discarded). */
void tdm__client_close_after_flush(tdm_client_t *c);
bool tdm__stream_busy(const tdm_client_t *c, int16_t stream);
int tdm__stream_take(tdm_client_t *c, int16_t stream);
void tdm__stream_free(tdm_client_t *c, int16_t stream);
/* Fixes the connection's version once its first usable frame arrived (pool keys, version gauge). */
void tdm__client_set_version(tdm_client_t *c, uint8_t version);
/* Leaves the handshake list (READY, refusal, close). */
void tdm__client_handshake_done(tdm_client_t *c);

/* ---- client_write.c ---- */
/* Queues one response frame in the client's version and framing; takes its own slice reference. */
int tdm__client_send(tdm_client_t *c, int16_t stream, uint8_t opcode, uint8_t flags, tdm_slice_t *slice, size_t off,
                     size_t len);
/* The same with a copy of body (compressed for v3/v4 clients that negotiated compression when
 * `compress` is set). */
int tdm__client_send_bytes(tdm_client_t *c, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len,
                           bool compress);
int tdm__client_send_error(tdm_client_t *c, int16_t stream, uint32_t code, const char *fmt, ...) TDM_PRINTF(4, 5);
/* Unframed bytes straight to the socket (the version refusal), after any sealed output. */
int tdm__client_send_raw(tdm_client_t *c, const uint8_t *p, size_t n);
/* Seal pass: turns every waiting envelope of c into segments and queues them (client_write.c). */
void tdm__client_seal(tdm_client_t *c);
void tdm__frontend_seal_all(tdm_frontend_t *fe);
/* fe->idle's callback (frontend.c): the seal pass, then the idle stops. */
void tdm__frontend_on_idle(uv_idle_t *h);
void tdm__client_out_free(tdm_client_t *c);
/* v5: every byte after tandem's READY or AUTHENTICATE is framed, both ways (§4.3). */
void tdm__client_start_framing(tdm_client_t *c);

/* ---- client_read.c ---- */
int tdm__client_on_data(tdm_conn_t *conn, const uint8_t *data, size_t len);
/* The body of a frame, decompressed when needed into *owned (free it); TDM_EPROTO_* on failure. */
int tdm__client_body(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len,
                     const uint8_t **out, size_t *out_len, uint8_t **owned);
/* Reports a failed tdm__client_body: over the limit -> INVALID (the connection goes on); otherwise
 * PROTOCOL_ERROR, then close. */
void tdm__client_body_failed(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len, int rc);
/* Answers with the §3 refusal for `requested` and enters REFUSED_VERSION. */
void tdm__client_refuse_version(tdm_client_t *c, uint8_t requested);

/* ---- handshake.c ---- */
unsigned tdm__frontend_usable(tdm_frontend_t *fe);
int tdm__hs_options(tdm_client_t *c, int16_t stream);
int tdm__hs_startup(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len);
/* Enters WAIT_BACKENDS and opens a session on both clusters for this client's keys. */
int tdm__hs_open_sessions(tdm_client_t *c);
void tdm__hs_cancel(tdm_client_t *c);
void tdm__hs_finish(tdm_client_t *c);

/* ---- auth.c ---- */
int tdm__auth_start(tdm_client_t *c, int16_t stream);
int tdm__auth_response(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len);
void tdm__auth_wipe(tdm_client_t *c);

/* ---- events.c ---- */
int tdm__events_register(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len);

/* ---- limits.c ---- */
int tdm__refusal_accept(tdm_frontend_t *fe, uv_os_sock_t fd);
void tdm__frontend_arm_timer(tdm_frontend_t *fe);
void tdm__refusals_close_all(tdm_frontend_t *fe);
/* Draining: the client ends once nothing is in flight. */
void tdm__client_drain_check(tdm_client_t *c);

/* ---- vtables (vtables_view.c) ---- */
#define TDM__VT_MAX_INSTANCES 256 /* proxy_topology_addresses entries used */
#define TDM__VT_MAX_COLUMNS 64    /* columns of one virtual table */

typedef struct tdm__vcol_s {
  tdm_str_t name;       /* canonical column name */
  const uint8_t *type;  /* [option] bytes */
  size_t type_len;      /* bytes at type */
} tdm__vcol_t;

typedef struct tdm__vinst_s {
  uint8_t addr[16];  /* address bytes */
  uint8_t addr_len;  /* 4 or 16 */
  uint16_t port;     /* native port */
  uint32_t index;    /* position in the instance list */
} tdm__vinst_t;

/* Everything one result is computed from. */
typedef struct tdm__vview_s {
  const tdm_vtables_ctx_t *ctx;         /* caller's context */
  const tdm_topology_t *topo;           /* may be NULL */
  tdm_vtable_t table;                   /* table read */
  tdm__vcol_t cols[TDM__VT_MAX_COLUMNS]; /* the table's columns, in the real table's order */
  size_t ncols;                         /* entries in cols */
  tdm__vinst_t self;                    /* this instance (the local row) */
  tdm__vinst_t conn;                    /* the address the client connected to */
  tdm__vinst_t *insts;                  /* every instance (heap) */
  uint32_t n;                           /* instances */
  uint32_t num_tokens;                  /* virtual tokens per instance */
  size_t paired[TDM__VT_MAX_INSTANCES]; /* topology node paired with instance i (SIZE_MAX: none) */
} tdm__vview_t;

int tdm__vview_build(tdm__vview_t *v, const tdm_vtables_ctx_t *ctx, tdm_vtable_t table);
void tdm__vview_free(tdm__vview_t *v);
const tdm__vcol_t *tdm__vview_col(const tdm__vview_t *v, tdm_cql_name_t name);
int tdm__vview_cell(tdm_response_rows_builder_t *b, const tdm__vview_t *v, const tdm__vcol_t *c,
                    const tdm__vinst_t *i);

/* ---- vtables.c ---- */
void tdm__vstmts_free(tdm_frontend_t *fe);

#endif
