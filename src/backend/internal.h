/* Cross-file internals of the backend area (rule 2): the framed channel shared by control and pool
 * connections (v3/v4 frames, or v5 segments once the handshake has switched), the handshake helpers
 * (version order and refusals, STARTUP, SASL PLAIN), and the structs of the per-worker backend:
 * cluster -> node -> pool (one session key) -> connection -> stream id -> leg. */
#ifndef TANDEM_BACKEND_INTERNAL_H
#define TANDEM_BACKEND_INTERNAL_H

#include <uv.h>
#include <tandem/backend/backend.h>
#include <tandem/backend/streams.h>
#include <tandem/net/conn.h>
#include <tandem/proto/envelope.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

/* ======================= channel.c: frames over one tdm_conn_t ======================= */

/* Largest response body or envelope accepted from a cluster: the protocol's own 256 MB cap. */
#define TDM__CHAN_MAX_BODY TDM_ENVELOPE_DEFAULT_MAX

/* One frame (or v5 envelope) handed to the channel's owner. */
typedef struct tdm__frame_s {
  tdm_frame_header_t h; /* decoded header (v5: flag 0x01 cleared) */
  const uint8_t *body;  /* body bytes, valid during the callback */
  size_t len;           /* body length */
  bool borrowed;        /* body lies in the connection's read buffer (shareable without a copy) */
} tdm__frame_t;

/* Called per frame; a negative return stops parsing and closes the connection with that code. */
typedef int (*tdm__chan_frame_cb)(void *arg, const tdm__frame_t *f);

/* A v5 envelope waiting for the flush: its header and a reference to its body. */
typedef struct tdm__chan_env_s {
  uint8_t hdr[TDM_ENVELOPE_HEADER]; /* header as built for this connection (stream id, version) */
  tdm_slice_t *slice;               /* body storage (one reference), NULL when len == 0 */
  size_t off;                       /* body offset in slice */
  size_t len;                       /* body length */
} tdm__chan_env_t;

typedef struct tdm__chan_s {
  tdm_conn_t *conn;            /* the connection carrying the frames */
  uint8_t version;             /* protocol version of every frame written */
  bool segments;               /* v5 framing is active in both directions */
  bool lz4;                    /* v5 output is lz4-compressed (segments only) */
  bool dirty;                  /* v5 envelopes wait in `pending` for tdm__chan_flush */
  tdm_envelope_reader_t er;    /* v5 input: segments -> envelopes */
  tdm_segment_lz4_t *z;        /* lz4 compressor state (allocated when lz4 segments start), may be NULL */
  tdm__chan_env_t *pending;    /* v5 output in write order; storage kept between flushes */
  uint32_t npending;           /* entries used in pending; > 0 exactly while dirty */
  uint32_t pending_cap;        /* entries allocated at pending */
} tdm__chan_t;

void tdm__chan_init(tdm__chan_t *ch, tdm_conn_t *conn, uint8_t version);
/* Switches both directions to v5 segments (lz4 when compression is lz4); bytes after the frame being
 * handled are parsed as segments. */
void tdm__chan_start_segments(tdm__chan_t *ch, bool lz4);
/* Parses data[0..len) (all unread bytes) into frames; returns the bytes consumed or a negative code.
 * Stops early when the callback closed the connection. */
int tdm__chan_parse(tdm__chan_t *ch, const uint8_t *data, size_t len, tdm__chan_frame_cb cb, void *arg);
/* Writes one frame: header (built here) + body slice reference. v3/v4 frames go to the connection at
 * once. v5 envelopes keep the reference until tdm__chan_flush (the owner must call it before the loop
 * blocks): uncompressed, the body is never copied; lz4 compresses it into a pooled slice (the one
 * forced copy). */
TDM_MUSTCHECK int tdm__chan_write(tdm__chan_t *ch, const tdm_frame_header_t *h, tdm_slice_t *body, size_t off,
                                  size_t len);
/* Writes one internal message whose body is body[0..len) (copied into a slice, or inline when empty). */
TDM_MUSTCHECK int tdm__chan_send(tdm__chan_t *ch, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len);
/* v5: queues the waiting envelopes on the connection as segments. Uncompressed, by reference
 * (tdm_envelope_emit: shared self-contained segments, headers and CRC32 inline); lz4, compressed
 * (tdm_envelope_emit_lz4) into slices from the smallest pool that holds them (the connection's slice
 * or read pool, then `pool`, which may be NULL; malloc only past them). No-op when not dirty. */
TDM_MUSTCHECK int tdm__chan_flush(tdm__chan_t *ch, tdm_buf_pool_t *pool);
/* A reference to a frame's body: shared from the read buffer when borrowed, else copied. *off gets the
 * body's offset in the slice. NULL when out of memory. */
tdm_slice_t *tdm__chan_share(tdm__chan_t *ch, const tdm__frame_t *f, tdm_buf_pool_t *pool, size_t *off);
void tdm__chan_free(tdm__chan_t *ch);

/* ======================= handshake.c: versions, STARTUP, SASL ======================= */

/* Probe order of §3, highest first: DSE_V2, DSE_V1, v5, v4, v3, v2. */
extern const uint8_t tdm__proto_order[6];
/* Index of version in tdm__proto_order, or -1. */
int tdm__proto_order_index(uint8_t version);
/* Whether an ERROR (code, message) is a protocol version refusal (§3). */
bool tdm__is_version_refusal(uint32_t code, tdm_str_t message);
/* Parses SUPPORTED PROTOCOL_VERSIONS ("3/v3", "5/v5", "6/v6-beta") into TDM_CONF_PV_* bits; betas are
 * skipped, v2 only with allow_v2. */
unsigned tdm__parse_protocol_versions(const tdm_response_strlist_t *l, bool allow_v2);
/* snprintf for reason texts that may be cut (vsnprintf: truncation is intended, not warned about). */
void tdm__textf(char *buf, size_t cap, const char *fmt, ...) TDM_PRINTF(3, 4);
/* "ORIGIN" / "TARGET"; "origin" / "target". */
const char *tdm__cluster_name(int cluster);
const char *tdm__cluster_key(int cluster);

/* A response message ready to decode: decompressed (v3/v4 flag 0x01) and past the tracing id, warnings
 * and custom payload. `owned` holds the decompressed bytes, if any. */
typedef struct tdm__msg_s {
  const uint8_t *body; /* message body */
  size_t len;          /* its length */
  uint8_t *owned;      /* decompressed copy to free, or NULL */
} tdm__msg_t;

TDM_MUSTCHECK int tdm__msg_open(const tdm__frame_t *f, tdm_compression_t comp, tdm__msg_t *m);
void tdm__msg_close(tdm__msg_t *m);

/* Encodes a STARTUP body (CQL_VERSION, optional COMPRESSION, DRIVER_NAME). */
TDM_MUSTCHECK int tdm__startup_body(tdm_writer_t *w, const char *cql_version, tdm_compression_t comp);
/* Encodes "QUERY <text>" at CL ONE without paging options. */
TDM_MUSTCHECK int tdm__query_body(tdm_writer_t *w, uint8_t version, const char *query);

/* Client side of SASL PLAIN with configured or client credentials (§2.2 step 6). */
#define TDM__SASL_MAX_ROUNDS 5
typedef struct tdm__sasl_s {
  bool dse;       /* authenticator class contains DseAuthenticator: send PLAIN, expect PLAIN-START */
  uint8_t step;   /* 0 nothing sent, 1 "PLAIN" sent, 2 credentials sent */
  uint8_t rounds; /* AUTH_RESPONSEs sent */
} tdm__sasl_t;

void tdm__sasl_start(tdm__sasl_t *s, tdm_str_t authenticator);
/* The next AUTH_RESPONSE body for AUTHENTICATE (challenge NULL) or an AUTH_CHALLENGE. 0, or
 * TDM_EINVAL (more than 5 rounds, or a DSE challenge other than PLAIN-START) with *why set. */
TDM_MUSTCHECK int tdm__sasl_next(tdm__sasl_t *s, const tdm_bytes_t *challenge, const char *authzid, const char *user,
                                 const char *password, tdm_writer_t *body, const char **why);

/* ======================= the per-worker backend ======================= */

/* One pool connection's life (rule 4); only tdm__server_set_state writes conn->state. */
typedef enum tdm_server_state_e {
  TDM_SERVER_CONNECTING = 0, /* TCP connect (then the TLS handshake, with TLS) in flight */
  TDM_SERVER_STARTUP,        /* STARTUP written, waiting for READY or AUTHENTICATE */
  TDM_SERVER_AUTH,           /* SASL exchange under way */
  TDM_SERVER_USE,            /* USE "<ks>" written (v2/v3/v4/DSE_V1 keyspace pools) */
  TDM_SERVER_READY,          /* carries legs */
  TDM_SERVER_DRAINING,       /* takes no new legs (recycled, idle, node gone); closes when empty */
  TDM_SERVER_CLOSED,         /* closing: every id failed or released; memory goes in on_destroy */
  TDM_SERVER_STATE_MAX       /* sentinel */
} tdm_server_state_t;

const char *tdm__server_state_name(tdm_server_state_t s);

/* Leg lifecycle (tdm_leg_t.state). */
enum {
  TDM__LEG_NEW = 0,       /* not yet given to the backend (or given back after a failure) */
  TDM__LEG_QUEUED = 1,    /* on a pool's wait queue: nothing sent */
  TDM__LEG_WRITTEN = 2,   /* owns a stream id on a connection */
  TDM__LEG_DONE = 3,      /* its callback ran */
  TDM__LEG_ABANDONED = 4, /* tdm_backend_abandon ran: no callback will follow */
};

/* Owners of internal stream ids (the streams table stores these markers' addresses). */
enum {
  TDM__INTERNAL_HANDSHAKE = 0, /* STARTUP, AUTH_RESPONSE, USE */
  TDM__INTERNAL_HEARTBEAT,     /* OPTIONS after heartbeat_interval_ms without writes */
  TDM__INTERNAL_ORPHAN,        /* client id held by an abandoned leg (late response counted) */
  TDM__INTERNAL_MAX
};

typedef struct tdm__node_s tdm__node_t;
typedef struct tdm__pool_s tdm__pool_t;

/* Per (node, session key) pool of connections. */
struct tdm__pool_s {
  tdm_list_t link;               /* node->pools */
  tdm__node_t *node;             /* the node it connects to */
  tdm_backend_t *be;             /* owning backend */
  int cluster;                   /* TDM_CONF_ORIGIN / TDM_CONF_TARGET */
  uint8_t version;               /* protocol version of every connection */
  tdm_compression_t compression; /* STARTUP COMPRESSION */
  bool async;                    /* async-read pool (§12) */
  bool client_creds;             /* keyed by client credentials (else the configured ones) */
  char *authzid;                 /* client creds: SASL authzid ("" none) */
  char *user;                    /* client creds: user */
  char *password;                /* client creds: password (secret; wiped at free) */
  char *keyspace;                /* USE keyspace for versions without per-request keyspace; "" none */
  tdm_list_t conns;              /* tdm_backend_conn_t.link, any state but CLOSED */
  uint32_t nconns;               /* entries in conns */
  uint32_t nstate[TDM_SERVER_STATE_MAX]; /* connections per state (the setter keeps it exact) */
  tdm_list_t waitq;              /* legs waiting for a stream id, FIFO (tdm_leg_t.link) */
  uint32_t nwait;                /* entries in waitq */
  tdm_list_t sessions;           /* tdm__session_t waiting for a READY connection */
  uint32_t failures;             /* consecutive handshake failures (reset on READY) */
  bool pinned;                   /* being retired: connections closing inside must not free it */
};

/* What the backend knows about one node of a cluster, across topology snapshots (keyed by address). */
struct tdm__node_s {
  tdm_list_t link;            /* cluster->all */
  int cluster;                /* owning cluster */
  char host[64];              /* numeric host text */
  uint16_t port;              /* native port */
  tdm_sockaddr_t addr;        /* connect address */
  char name[TDM_SOCKADDR_STRLEN]; /* "host:port" for logs and failure reasons */
  int index;                  /* index in the current topology, -1 once removed */
  bool local_dc;              /* in the local DC */
  bool down;                  /* the topology says DOWN (STATUS_CHANGE) */
  uint64_t cooldown_until;    /* loop ms: skipped after a connect failure until then */
  uint32_t inflight;          /* legs written to its connections and still awaited (orphans excluded) */
  uint32_t queued;            /* legs waiting in its pools' queues (counts as load for the choice) */
  uint32_t conns;             /* connections of its sync pools not CLOSED */
  uint32_t stream_ids;        /* client stream ids in use on its sync pools' connections, orphans included */
  uint32_t async_conns;       /* the same two for its async-read pools (§12), kept apart for metrics */
  uint32_t async_stream_ids;  /* (see conns / stream_ids) */
  tdm_list_t pools;           /* tdm__pool_t.link */
  bool pinned;                /* a walk over its pools is under way: not freed until it ends */
};

typedef struct tdm__cluster_s {
  tdm_topology_t *topo;       /* current snapshot (own reference), NULL until known */
  tdm__node_t **nodes;        /* by topology index */
  size_t n_nodes;             /* entries in nodes */
  tdm_list_t all;             /* every node state, removed ones included while they drain */
  uint32_t rr;                /* rotates ties in node selection */
  uint64_t late_responses;    /* responses to abandoned legs */
  uint64_t failed_conns[2];   /* pool connections that failed before READY: [sync, async] */
} tdm__cluster_t;

/* A pending tdm_backend_session_open. */
typedef struct tdm__session_s {
  tdm_list_t link;          /* pool->sessions, or be->done when its result is ready */
  char *password;           /* credentials being verified (client creds), NULL otherwise; wiped */
  tdm_backend_t *be;        /* owner */
  tdm__pool_t *pool;        /* pool it waits on (NULL once done) */
  tdm_backend_conn_t *conn; /* verification connection it is bound to (client credentials), or NULL */
  tdm_session_cb cb;        /* result callback */
  void *arg;                /* its argument */
  uint32_t attempts;        /* nodes tried */
  int err;                  /* result: 0 or an error */
  uint8_t *body;            /* the cluster's ERROR body, or NULL */
  size_t body_len;          /* bytes at body */
  char reason[TDM_TLS_ERR_MAX + 128]; /* tandem's reason text when body is NULL (prefix + fail_reason) */
} tdm__session_t;

struct tdm_backend_conn_s {
  tdm_conn_t conn;             /* socket, read buffer, write queue (freed in on_destroy) */
  tdm__chan_t chan;            /* framing */
  tdm__pool_t *pool;           /* owning pool; NULL after CLOSED */
  tdm_backend_t *be;           /* owning backend */
  tdm__node_t *node;           /* node (kept for stats until destroy) */
  bool async;                  /* of an async-read pool: counted in the node's async gauges */
  tdm_list_t link;             /* pool->conns */
  tdm_list_t dirty_link;       /* be->dirty while v5 envelopes wait for a flush */
  tdm_server_state_t state;    /* written only by tdm__server_set_state */
  tdm_streams_t streams;       /* stream ids -> legs / internal markers */
  uint32_t inflight;           /* client ids in use (legs and orphans) */
  uint32_t orphans;            /* client ids held by abandoned legs */
  uint64_t last_write;         /* loop ms of the last frame written (heartbeat idleness) */
  uint64_t last_active;        /* loop ms when inflight last dropped to 0 (idle close) */
  uint64_t deadline;           /* loop ms: handshake budget, or drain limit; 0 none */
  int32_t hb_stream;           /* internal id of the heartbeat in flight, -1 none */
  uint64_t hb_sent;            /* loop ms the heartbeat was written */
  tdm__sasl_t sasl;            /* SASL progress */
  bool ever_ready;             /* reached READY */
  bool refused;                /* the cluster answered the handshake with an ERROR */
  int fail_err;                /* why the connection failed (before close) */
  char fail_reason[TDM_TLS_ERR_MAX]; /* tandem's text for that failure (a TLS message fits whole) */
  char *password;               /* credentials being verified (session_open with client creds), or NULL */
  tdm__session_t *session;     /* the verification session waiting on this connection, or NULL */
  int32_t hs_stream;           /* internal id of the handshake request in flight, -1 none */
  uint8_t *err_body;           /* the cluster's ERROR body during the handshake, or NULL */
  size_t err_len;              /* bytes at err_body */
};

struct tdm_backend_s {
  uv_loop_t *loop;             /* the worker's loop */
  tdm_buf_pool_t *pool;        /* the worker's buffer blocks (slices of copied bodies) */
  tdm_conn_ctx_t net;          /* flush scheduler of the pool connections */
  tdm_conf_t *conf;            /* current epoch (own reference), NULL until set */
  tdm_tls_set_t tls;           /* contexts for new connections (own references); zeroed: plaintext */
  tdm__cluster_t cl[TDM_CONF_CLUSTER_MAX]; /* per cluster */
  uv_timer_t tick;             /* heartbeats, idle close, deadlines */
  uv_idle_t idle;              /* deferred work: v5 flushes and session results */
  tdm_list_t dirty;            /* connections with v5 envelopes to flush */
  tdm_list_t done;             /* sessions whose callback is due */
  uint64_t next_conn_id;       /* ids for connection tags */
  uint8_t markers[TDM__INTERNAL_MAX]; /* addresses used as internal stream owners */
  uint32_t handles;            /* own handles not yet closed (tick, idle, net ctx) */
  uint32_t live_conns;         /* connections not yet destroyed */
  bool closing;                /* tdm_backend_close ran */
};

static inline void *tdm__marker(tdm_backend_t *be, int which) { return &be->markers[which]; }

/* ---- server.c ---- */
/* Opens a pool connection. With `password`, a verification connection for session `s` (bound both
 * ways before the connect starts, so even a synchronous failure reaches the session). <0 only when
 * no connection was created; later failures arrive through the pool. */
TDM_MUSTCHECK int tdm__server_open_ex(tdm__pool_t *pool, const char *password, tdm__session_t *s);
static inline int tdm__server_open(tdm__pool_t *pool) { return tdm__server_open_ex(pool, NULL, NULL); }
void tdm__server_set_state(tdm_backend_conn_t *bc, tdm_server_state_t to);
/* Writes leg on bc (a free client id must exist). */
void tdm__server_write_leg(tdm_backend_conn_t *bc, tdm_leg_t *leg);
/* The tick's per-connection work: heartbeats, deadlines, idle and drain closes. */
void tdm__server_tick(tdm_backend_conn_t *bc, uint64_t now);
void tdm__server_drain(tdm_backend_conn_t *bc);
void tdm__server_close(tdm_backend_conn_t *bc, int err);
bool tdm__server_usable(const tdm_backend_conn_t *bc);
/* Flushes pending v5 envelopes (idle callback). */
void tdm__server_flush(tdm_backend_conn_t *bc);

/* ---- pool.c ---- */
/* The pool for (node, key), created when absent (NULL when out of memory). */
tdm__pool_t *tdm__pool_get(tdm_backend_t *be, tdm__node_t *node, const tdm_session_key_t *key);
/* A client-identity pool that holds no password yet takes this one (a password the caller verified);
 * a pool that has one keeps it: it is what the cluster last accepted on that pool. */
void tdm__pool_offer_password(tdm__pool_t *pool, const char *password);
/* Finds a pool of another node with the same key as `like` (created when absent). */
tdm__pool_t *tdm__pool_sibling(tdm__pool_t *like, tdm__node_t *node);
/* Writes the leg on a connection with a free id, or queues it (growing the pool as allowed). */
void tdm__pool_submit(tdm__pool_t *pool, tdm_leg_t *leg);
/* Moves waiting legs onto connections with free ids. */
void tdm__pool_drain_waitq(tdm__pool_t *pool);
/* Opens a connection when waiting work exceeds what the connections being opened will take. */
void tdm__pool_grow(tdm__pool_t *pool, bool force);
/* A connection reached READY / failed its handshake / closed: sessions and waiting legs follow. */
void tdm__pool_conn_ready(tdm__pool_t *pool, tdm_backend_conn_t *bc);
void tdm__pool_conn_failed(tdm__pool_t *pool, tdm_backend_conn_t *bc, bool connect_failure);
/* Frees the pool when it holds nothing; returns true if it was freed. */
bool tdm__pool_maybe_free(tdm__pool_t *pool);
/* The node left the topology or the backend closes: drain connections, move waiting work away. */
void tdm__pool_retire(tdm__pool_t *pool, int err);
/* Sends every waiting leg elsewhere (another node, same key) or fails it with written=false. */
void tdm__pool_redispatch(tdm__pool_t *pool, const char *reason);
void tdm__session_finish(tdm__session_t *s, int err, const uint8_t *body, size_t len, const char *reason);
/* A connection of the pool was lost after READY: reopen if work waits and nothing else is left. */
void tdm__pool_conn_lost(tdm__pool_t *pool);
/* Takes a QUEUED leg off the pool's wait queue (abandon). */
void tdm__pool_unqueue(tdm__pool_t *pool, tdm_leg_t *leg);
bool tdm__pool_key_match(const tdm__pool_t *p, const tdm_session_key_t *key);

/* ---- node_select.c ---- */
/* Rebuilds the node states of a cluster from a new snapshot (nodes that left are retired). */
TDM_MUSTCHECK int tdm__nodes_update(tdm_backend_t *be, int cluster, tdm_topology_t *topo);
/* Healthy local-DC node with the fewest legs in flight, skipping `avoid` (may be NULL); NULL if none. */
tdm__node_t *tdm__node_select(tdm_backend_t *be, int cluster, const tdm__node_t *avoid);
bool tdm__node_eligible(const tdm_backend_t *be, const tdm__node_t *n, uint64_t now);
void tdm__node_cooldown(tdm_backend_t *be, tdm__node_t *n);
void tdm__node_maybe_free(tdm__node_t *n);
void tdm__nodes_free(tdm_backend_t *be, int cluster);

/* ---- backend.c ---- */
void tdm__backend_schedule(tdm_backend_t *be);   /* starts the idle handle for deferred work */
void tdm__backend_tick_start(tdm_backend_t *be); /* starts the tick while connections exist */
void tdm__backend_conn_gone(tdm_backend_t *be);  /* a connection was destroyed */
/* Dispatches a leg (node choice, pool); TDM_EUNAVAILABLE when no node could take it. */
TDM_MUSTCHECK int tdm__backend_dispatch(tdm_backend_t *be, const tdm_session_key_t *key, tdm_leg_t *leg,
                                        const tdm__node_t *avoid);
/* Runs a leg's failure callback once (state DONE first). */
void tdm__leg_fail(tdm_leg_t *leg, int err, bool written, const char *reason);
/* The configured credentials of a cluster (user "" when none). */
void tdm__backend_conf_creds(const tdm_backend_t *be, int cluster, const char **user, const char **password);
/* Budget for one connection attempt: min(5000, {c}_connection_timeout_ms) for TCP; the whole
 * handshake gets {c}_connection_timeout_ms (async pools: async_handshake_timeout_ms). */
uint64_t tdm__backend_connect_timeout(const tdm_backend_t *be, int cluster);
uint64_t tdm__backend_handshake_timeout(const tdm_backend_t *be, int cluster, bool async);

/* ======================= control*.c: the control connection (main thread) ======================= */

#include <tandem/backend/control.h>

#define TDM__CTL_SLOTS 32            /* request slots; stream id = slot + 1 */
#define TDM__CTL_HEARTBEAT_REPLY_MS 10000 /* no SUPPORTED within this = failure (§11.1) */
#define TDM__CTL_SCHEMA_POLL_MS 200  /* schema agreement polling period (§5.3) */

typedef struct tdm__ctl_conn_s tdm__ctl_conn_t;

/* A reply handler: f is the frame, r its decoded message (NULL with err < 0 when the connection went
 * before the reply, or the reply could not be decoded). */
typedef void (*tdm__ctl_reply_fn)(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err);

/* Control connection phases, in handshake order. */
typedef enum tdm__ctl_phase_e {
  TDM__CTL_IDLE = 0,   /* no connection; retry timer may be armed */
  TDM__CTL_CONNECTING, /* TCP connect (then the TLS handshake) in flight */
  TDM__CTL_OPTIONS,    /* OPTIONS written */
  TDM__CTL_STARTUP,    /* STARTUP written */
  TDM__CTL_AUTH,       /* SASL under way */
  TDM__CTL_LOCAL,      /* system.local queried */
  TDM__CTL_PEERS,      /* system.peers(_v2) queried */
  TDM__CTL_REGISTER,   /* REGISTER written */
  TDM__CTL_UP,         /* ready: heartbeats, events, refreshes */
} tdm__ctl_phase_t;

/* Parsed rows of one RESULT (every cell copied). */
typedef struct tdm__rows_s {
  tdm_column_t **rows; /* per row, its columns */
  size_t ncols;        /* columns per row */
  size_t n;            /* rows */
} tdm__rows_t;

typedef struct tdm__schema_waiter_s {
  tdm_list_t link;              /* c->waiters */
  uint64_t deadline;            /* loop ms when it answers false */
  void (*cb)(void *arg, bool agreed); /* result */
  void *arg;                    /* its argument */
} tdm__schema_waiter_t;

struct tdm_control_s {
  uv_loop_t *loop;               /* the main loop */
  int cluster;                   /* TDM_CONF_ORIGIN / TDM_CONF_TARGET */
  tdm_conf_t *conf;              /* current epoch (own reference) */
  tdm_tls_ctx_t *tls;            /* context for new connections (own reference), NULL: plaintext */
  tdm_control_callbacks_t cb;    /* owner callbacks */
  tdm_conn_ctx_t net;            /* flush scheduler for the one connection */
  tdm__ctl_conn_t *cc;           /* current connection, NULL when none */
  uv_timer_t retry;              /* backoff before the next round */
  uv_timer_t timer;              /* handshake deadline, then heartbeat interval / reply deadline */
  uv_timer_t poll;               /* schema agreement polling */
  uint32_t handles;              /* handles (and the net ctx) not yet closed */
  bool started;                  /* tdm_control_start ran */
  bool closing;                  /* tdm_control_close ran */
  tdm__ctl_phase_t phase;        /* where the current connection is */
  size_t attempt;                /* candidate index within the current round */
  char peer[TDM_SOCKADDR_STRLEN]; /* "host:port" of the current connection */
  tdm_sockaddr_t addr;           /* its address (the control node's, once up) */
  uint8_t version;               /* version of the current connection's frames */
  bool probing;                  /* no PROTOCOL_VERSIONS: probing down the order */
  int probe_idx;                 /* index in tdm__proto_order being probed */
  bool probe_next;               /* the current connection is closing for the next probe */
  bool reconnect_now;            /* the current connection is closing on purpose: no failure */
  unsigned accepted;             /* TDM_CONF_PV_* accepted by the cluster (as learned) */
  unsigned refused;              /* versions learned as refused since this connection came up */
  bool have_supported;           /* SUPPORTED seen on this round */
  char compression[64];          /* SUPPORTED COMPRESSION, comma-joined, lower case */
  char cql_version[16];          /* SUPPORTED CQL_VERSION (first) */
  bool auth_required;            /* STARTUP got AUTHENTICATE */
  char authenticator[128];       /* its class */
  tdm__sasl_t sasl;              /* SASL progress */
  bool up;                       /* handshake and discovery done */
  bool ever_up;                  /* came up at least once */
  int failures;                  /* consecutive failures (readiness) */
  char last_error[TDM_SOCKADDR_STRLEN + TDM_TLS_ERR_MAX]; /* the last failure, for on_health ("peer: why") */
  uint64_t backoff;              /* next retry delay, ms (before jitter) */
  uint64_t rng;                  /* xorshift state for the jitter */
  tdm_topology_t *topo;          /* last published snapshot (own reference) */
  uint64_t generation;           /* generation of the next snapshot */
  tdm__rows_t local;             /* system.local row of the current connection */
  tdm__rows_t peers;             /* system.peers(_v2) rows of the current connection */
  bool peers_v2;                 /* peers came from system.peers_v2 */
  bool reset_states;             /* the next snapshot starts every node UP (fresh connection) */
  uint64_t next_conn_id;         /* ids for connection tags */
  tdm__ctl_reply_fn reqs[TDM__CTL_SLOTS]; /* in-flight requests by slot (stream id - 1) */
  bool hb_pending;               /* heartbeat OPTIONS written, SUPPORTED not yet read */
  bool peers_inflight;           /* a peers refresh is in flight */
  bool peers_again;              /* another refresh was asked for meanwhile */
  bool schema_inflight;          /* a schema_version refresh is in flight */
  bool schema_again;             /* another schema refresh was asked for meanwhile */
  bool poll_inflight;            /* a schema agreement poll is in flight */
  tdm__rows_t poll_local;        /* the poll's system.local part, while peers are asked */
  tdm_list_t waiters;            /* tdm__schema_waiter_t */
};

struct tdm__ctl_conn_s {
  tdm_conn_t conn;               /* socket (freed in on_destroy) */
  tdm__chan_t chan;              /* framing */
  tdm_control_t *ctl;            /* owner; NULL once detached */
  tdm_control_t *home;           /* owner for the final accounting (never NULL) */
};

/* control.c */
TDM_MUSTCHECK int tdm__ctl_send(tdm_control_t *c, uint8_t opcode, const tdm_writer_t *body, tdm__ctl_reply_fn fn);
TDM_MUSTCHECK int tdm__ctl_query(tdm_control_t *c, const char *cql, tdm__ctl_reply_fn fn);
/* The connection failed (or must go): closes it; a failure counts toward readiness. */
void tdm__ctl_fail(tdm_control_t *c, int err, const char *fmt, ...) TDM_PRINTF(3, 4);
/* Builds and publishes a snapshot of what is known now. */
void tdm__ctl_publish(tdm_control_t *c);

/* The handshake is done: query system.local, peers, then REGISTER. */
void tdm__ctl_discovered(tdm_control_t *c);

/* control_handshake.c */
void tdm__ctl_send_startup(tdm_control_t *c);
void tdm__ctl_on_options_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err);
void tdm__ctl_on_startup_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err);
/* Moves to the next version to probe after a refusal of c->version; false when none is left. */
bool tdm__ctl_probe_advance(tdm_control_t *c);

/* control_topology.c */
TDM_MUSTCHECK int tdm__rows_parse(uint8_t version, const tdm_response_t *r, tdm__rows_t *out);
void tdm__rows_free(tdm__rows_t *rows);
const tdm_column_t *tdm__rows_col(const tdm__rows_t *rows, size_t row, const char *name);
/* Text of a text cell into buf ("" when null or absent). */
void tdm__cell_text(const tdm_column_t *col, char *buf, size_t cap);
/* uuid cell as text ("" when null). */
void tdm__cell_uuid(const tdm_column_t *col, char *buf, size_t cap);
/* The native address of a peers row: native_address/native_port, else rpc_address (peer when it is
 * the wildcard) + default_port. 0 or TDM_ENOTFOUND. */
TDM_MUSTCHECK int tdm__peer_address(const tdm__rows_t *rows, size_t row, uint16_t default_port, char *host,
                                    size_t cap, uint16_t *port);
/* Builds a snapshot from the control node's row, the peers rows and the current state. */
TDM_MUSTCHECK int tdm__ctl_build(tdm_control_t *c, const tdm__rows_t *peers, bool peers_v2, tdm_topology_t **out);
/* Queries system.peers_v2 (or system.peers) and publishes the result (also used on events). */
void tdm__ctl_refresh_peers(tdm_control_t *c);
/* Records a schema_version cell of the control node; publishes and returns true when it changed. */
bool tdm__ctl_note_schema(tdm_control_t *c, const tdm_column_t *v);
/* Queries schema_version of system.local and publishes when it changed. */
void tdm__ctl_refresh_schema(tdm_control_t *c);

/* control_schema.c */
void tdm__ctl_schema_poll(tdm_control_t *c);
void tdm__ctl_schema_fail_all(tdm_control_t *c);

#endif
