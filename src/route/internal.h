/* Internals shared by the files of src/route: the request object and its legs, the per-worker route
 * state, the decoded view of a request body, and the tdm__route_* calls between dispatch.c (intake),
 * request.c (lifecycle), prepared_flow.c (PREPARE / EXECUTE / BATCH ids, re-prepare) and
 * async_reads.c (mirrored reads). Never included outside src/route. */
#ifndef TANDEM_SRC_ROUTE_INTERNAL_H
#define TANDEM_SRC_ROUTE_INTERNAL_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/core/proxy.h>
#include <tandem/frontend/client.h>
#include <tandem/backend/backend.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>
#include <tandem/route/route.h>
#include <tandem/route/router.h>
#include <tandem/route/aggregate.h>
#include <tandem/route/prepared.h>
#include "deadlines.h"

#define TDM__ROUTE_FREE_MAX 1024  /* recycled request objects kept per worker (plain memory, no handle) */
#define TDM__ROUTE_KS_MAX 256     /* keyspace names tandem keeps (Cassandra allows 48 characters) */
#define TDM__ROUTE_NODE_MAX 80    /* "host:port" of the node a leg reached (host is <= 63 bytes) */
#define TDM__ROUTE_BATCH_INLINE 8 /* prepared BATCH children tracked without an allocation */

/* Bits tandem adds to a registry entry's `flags` above the classifier's TDM_CLASSIFY_F_* (low 16 bits). */
#define TDM__PF_SYSTEM_READ 0x00010000u /* a SELECT of a system keyspace, resolved at PREPARE */
#define TDM__PF_BATCH_SHIFT 20          /* BEGIN [UNLOGGED|COUNTER] BATCH type + 1 in bits 20-21 (0 none) */
#define TDM__PF_BATCH_MASK 0x00300000u
#define TDM__PF_CLASSIFY_MASK 0x0000ffffu

typedef enum tdm__req_kind_e {
  TDM__REQ_FORWARD = 0, /* QUERY / EXECUTE / BATCH: one or two legs, the aggregated answer */
  TDM__REQ_PREPARE,     /* PREPARE on both clusters; success stores a registry entry (§7.1) */
  TDM__REQ_USE,         /* USE on both clusters; success changes the client's keyspace (§5.3) */
  TDM__REQ_ASYNC,       /* a mirrored read (§12): one leg, metrics only, never answers */
} tdm__req_kind_t;

typedef enum tdm__leg_state_e {
  TDM__LEG_IDLE = 0,  /* no leg on this cluster, or not sent yet */
  TDM__LEG_SENT,      /* with the backend; exactly one callback will come unless abandoned */
  TDM__LEG_REPREPARE, /* UNPREPARED came back: the internal PREPARE (§7.3) is with the backend */
  TDM__LEG_DONE,      /* outcome known; the backend holds nothing */
  TDM__LEG_ABANDONED, /* given up (timer, shutdown): the backend was told, no callback will come */
} tdm__leg_state_t;

/* Why tandem made up a leg's ERROR instead of relaying the cluster's. */
typedef enum tdm__synth_e {
  TDM__SYNTH_NONE = 0,     /* the cluster's own response */
  TDM__SYNTH_UNREACHABLE,  /* UNAVAILABLE `no reachable <C> node`: the leg never left */
  TDM__SYNTH_NO_CAPACITY,  /* OVERLOADED `no capacity to <C> within <n> ms`: still queued at the timer */
  TDM__SYNTH_UNPREPARED,   /* UNPREPARED with the client's id: re-prepare failed or a second UNPREPARED */
  TDM__SYNTH_BAD_RESPONSE, /* SERVER_ERROR: the node's answer could not be decoded */
} tdm__synth_t;

typedef struct tdm_route_req_s tdm_route_req_t;
typedef struct tdm_route_worker_s tdm_route_worker_t;

/* One leg of a request. Invariant: state SENT or REPREPARE <=> the backend owns a callback on `leg`. */
typedef struct tdm__route_leg_s {
  tdm_leg_t leg;                 /* the backend leg; leg.owner is the request */
  int cluster;                   /* TDM_CONF_ORIGIN or TDM_CONF_TARGET */
  uint8_t state;                 /* tdm__leg_state_t */
  tdm_agg_leg_t agg;             /* the outcome as aggregation sees it */
  uint8_t synth;                 /* tdm__synth_t of a made-up ERROR */
  tdm_slice_t *resp;             /* storage of the response body (own reference), NULL before */
  const uint8_t *resp_body;      /* the response body within resp (as received, maybe compressed) */
  size_t resp_len;               /* its length */
  uint8_t resp_opcode;           /* response opcode */
  uint8_t resp_flags;            /* response frame flags */
  tdm_slice_t *body;             /* what this leg sends: the client's slice or a private rewrite (own ref) */
  size_t body_off;               /* body offset within `body` */
  size_t body_len;               /* body length */
  uint8_t body_flags;            /* frame flags that describe that body */
  uint64_t sent_ms;              /* loop time the leg was handed to the backend */
  char node[TDM__ROUTE_NODE_MAX]; /* a failed leg: the backend's reason (node text); "" otherwise (see node_text) */
  bool reprepared;               /* the single re-prepare of §7.3 is used up */
  tdm_prepared_entry_t *rp_entry; /* the statement being re-prepared (own reference) */
  int rp_node;                   /* node the re-prepare and the retry are pinned to */
  tdm_slice_t *rp_body;          /* the internal PREPARE body while it is in flight (own reference) */
  size_t rp_len;                 /* its length (a pooled slice is bigger than its contents) */
} tdm__route_leg_t;

/* One client request (or one mirrored copy). Lives on rw->live from dispatch to completion, then on
 * rw->free, disarmed. Invariants: a sync request answers its client at most once (`answered`); it
 * completes (metrics, free) only when no leg is SENT or REPREPARE and no hold runs; it is on
 * rw->deadlines from tdm__route_timer_start until it expires or is recycled, never on rw->free. */
struct tdm_route_req_s {
  tdm_list_t link;               /* rw->live or rw->free */
  tdm_route_worker_t *rw;        /* owner */
  tdm__route_deadline_t deadline; /* its place in rw->deadlines while armed; fields from here on are
                                    reset per use */
  uint8_t kind;                  /* tdm__req_kind_t */
  uint8_t opcode;                /* client opcode */
  uint8_t version;               /* client protocol version */
  uint8_t flags;                 /* client frame flags */
  int16_t stream;                /* client stream id */
  tdm_client_t *client;          /* one client reference, held until the request is recycled */
  bool answered;                 /* the client has its response, or never gets one (detached, async) */
  bool detached;                 /* the client went away */
  bool timer_fired;              /* its deadline passed: pending legs were given up */
  bool holding;                  /* a schema-agreement hold runs (§5.3) */
  bool hold_starting;            /* inside hook.wait(): a done() now must not answer or complete */
  bool secondary_skipped;        /* PRIMARY_WINS sent to the primary only (secondary unreachable) */
  bool completed;                /* metrics recorded, about to be recycled */
  uint8_t busy;                  /* nested entry points using the request (tdm__route_enter/leave) */
  bool settle;                   /* an outcome arrived while busy: aggregate at the outermost leave */
  tdm_conf_t *conf;              /* the epoch the request was dispatched under (own reference) */
  uint64_t start_ms;             /* loop time of dispatch */
  uint64_t answer_ms;            /* loop time of the answer (0 before) */
  tdm_slice_t *body;             /* the client's body as received (own reference) */
  size_t body_off;               /* its offset in body */
  size_t body_len;               /* its length */
  tdm_route_decision_t route;    /* where it goes */
  tdm_agg_class_t agg_class;     /* what a timeout looks like (§6.3) */
  int batch_type;                /* BATCH / BEGIN BATCH type 0..2, or -1 */
  uint16_t consistency;          /* the request's CL (0 when it has none) */
  uint32_t cflags;               /* TDM_CLASSIFY_F_* of the statement (LWT for metrics) */
  int metric_type;               /* proxy_latency index: 0 reads_origin, 1 reads_target, 2 writes; -1 none */
  tdm_conf_divergence_t policy;  /* the epoch's policy; FAIL for PREPARE and USE */
  int success_cluster;           /* whose success answers: the primary; ORIGIN for PREPARE */
  tdm_agg_decision_t held;       /* the decision a schema hold delays */
  tdm_prepared_entry_t *entry;   /* EXECUTE: the statement (own reference) */
  tdm_prepared_entry_t **children; /* BATCH: entry per prepared child, in order (own references) */
  uint16_t n_children;           /* entries in children */
  tdm_prepared_entry_t *children_inline[TDM__ROUTE_BATCH_INLINE]; /* storage for small batches */
  char ks[TDM__ROUTE_KS_MAX];    /* USE: the new keyspace; PREPARE: the keyspace it is prepared under */
  size_t ks_len;                 /* bytes in ks */
  tdm__route_leg_t legs[2];      /* [TDM_CONF_ORIGIN], [TDM_CONF_TARGET] */
};

/* Per-worker route state (pw->route). Invariant: the timer is referenced (keeps the loop alive)
 * exactly while some request is armed, as the per-request timers it replaces did. */
struct tdm_route_worker_s {
  tdm_proxy_worker_t *pw;        /* the worker */
  tdm_list_t live;               /* requests in flight, sync and async */
  tdm_list_t free;               /* recycled objects: plain memory */
  uint32_t nlive;                /* entries in live */
  uint32_t nfree;                /* entries in free */
  uint32_t async_live;           /* mirrored reads queued or in flight (cap §12) */
  tdm__route_deadlines_t deadlines; /* armed requests by deadline, and what `timer` was asked to do */
  uv_timer_t timer;              /* the one request timer of this worker; data = this */
  bool timer_open;               /* timer initialised (on the first armed request), not yet closed */
  bool closing;                  /* tdm_route_worker_close ran: recycled objects are freed, and the
                                    timer's close callback frees this */
  uint64_t rng;                  /* xorshift64 state for async sampling */
  tdm_route_schema_hook_t hook;  /* schema hold; hook.wait NULL = none */
};

/* A request body opened for inspection: decompressed when it came compressed, and with the custom
 * payload prefix (flag 0x04, v4+) located. */
typedef struct tdm__msg_s {
  const uint8_t *buf;  /* the whole body, uncompressed */
  size_t len;          /* its length */
  size_t msg_off;      /* where the message starts (after the custom payload) */
  uint8_t *owned;      /* decompressed bytes to release, NULL when buf borrows the client's */
  bool pooled;         /* owned is a block of the worker's buffer pool */
} tdm__msg_t;

/* ---- request.c ---- */
tdm_route_worker_t *tdm__route_worker(tdm_proxy_worker_t *pw); /* creates it on first use; NULL on ENOMEM */
tdm_route_req_t *tdm__route_req_new(tdm_route_worker_t *rw, tdm__req_kind_t kind, tdm_client_t *client,
                                    const tdm_frame_header_t *h, tdm_slice_t *body, size_t off, size_t len);
/* Sends the request's legs (route decides which) and starts its timer; answers UNAVAILABLE itself when a
 * needed cluster is unreachable. The request belongs to request.c afterwards. */
void tdm__route_req_start(tdm_route_req_t *req);
/* Sends legs[c] with its body on the client's session (pinned to `node` when >= 0). 0 or <0 (unsent). */
int tdm__route_leg_send(tdm_route_req_t *req, tdm__route_leg_t *rl, uint8_t opcode, int node);
/* Gives the leg a body (takes a reference on slice). */
void tdm__route_leg_set_body(tdm__route_leg_t *rl, tdm_slice_t *slice, size_t off, size_t len, uint8_t flags);
/* A leg's outcome is known: aggregate, maybe answer, maybe complete (deferred while busy). */
void tdm__route_progress(tdm_route_req_t *req);
/* Re-entrancy guard. The backend may invoke a leg callback from inside tdm_backend_send; every entry
 * point (dispatch start, leg callbacks, timer, hold, async start) brackets its work with enter/leave,
 * and aggregation or completion runs only at the outermost leave, so no caller ever holds a request
 * that was recycled under it. */
void tdm__route_enter(tdm_route_req_t *req);
void tdm__route_leave(tdm_route_req_t *req);
/* Records the final outcome of a leg from its response (takes a reference on slice). */
void tdm__route_leg_response(tdm_route_req_t *req, tdm__route_leg_t *rl, const tdm_frame_header_t *h,
                             tdm_slice_t *slice, const uint8_t *body, size_t len);
/* Marks a leg as failed with a made-up error. */
void tdm__route_leg_synth(tdm__route_leg_t *rl, tdm__synth_t why);
/* Drops a request that was never started (setup failed), or a finished mirrored read. */
void tdm__route_req_discard(tdm_route_req_t *req);
/* The request's deadline passed (deadlines.c has already taken it off the list): gives up the schema
 * hold and every SENT / REPREPARE leg (SILENT when written, OVERLOADED when still queued), sets
 * timer_fired and aggregates; may complete and recycle the request. */
void tdm__route_expire(tdm_route_req_t *req);
/* Whether a leg is still with the backend. */
bool tdm__route_any_active(const tdm_route_req_t *req);
/* The session key of a leg: the client's for `cluster`, async when asked, keyspace overridden when ks is
 * not NULL (v3/v4/DSE_V1 pools are keyed by keyspace). */
void tdm__route_session_key(const tdm_route_req_t *req, int cluster, const char *ks, tdm_session_key_t *out);

/* ---- dispatch.c: body accounting (architecture.md §6; docs/internals/route.md "Body copies") ---- */
/* For leg `cluster` of req, or its mirrored copy (async requests count on the async side): `forwarded`
 * bodies handed to the backend, `copies` buffers built holding its body, `forced` of them by an id
 * rewrite or by compression. */
void tdm__route_count_body(const tdm_route_req_t *req, int cluster, uint64_t forwarded, uint64_t copies,
                           uint64_t forced);
/* One body handed to leg `cluster`'s backend, with the compression copy an lz4 v5 connection makes. */
void tdm__route_count_handover(const tdm_route_req_t *req, int cluster);

/* ---- deadlines.c (the worker timer; the list itself is in deadlines.h) ---- */
/* Arms the request's deadline: now + proxy_request_timeout_ms of the request's epoch, on the worker's
 * deadline list; tdm__route_expire runs from the worker timer once it passes. Re-arms when armed. In
 * steady state (one timeout value, the timer already armed early enough) no uv_timer_* call is made. */
void tdm__route_timer_start(tdm_route_req_t *req);
/* Takes the request off the list in O(1) (no-op when not armed). The timer is not stopped or
 * restarted: if the request was the head, the next fire finds nothing due and re-arms. */
void tdm__route_timer_disarm(tdm_route_req_t *req);
/* Worker close, after every request was recycled: closes the timer, whose close callback frees rw
 * (or frees rw now when the timer was never opened). */
void tdm__route_timer_close(tdm_route_worker_t *rw);

/* ---- dispatch.c ---- */
/* Opens a (maybe compressed) request body; 0, TDM_EPROTO_TOO_LARGE (declared size over max_frame_bytes),
 * TDM_EPROTO_COMPRESS or TDM_EPROTO_MALFORMED (custom payload does not fit). */
int tdm__route_msg_open(tdm_proxy_worker_t *pw, uint8_t version, uint8_t flags, tdm_compression_t comp,
                        const uint8_t *body, size_t len, size_t max, tdm__msg_t *m);
void tdm__route_msg_close(tdm_proxy_worker_t *pw, tdm__msg_t *m);
/* A response body with its compression undone and its tracing/warning/payload prefix skipped. */
int tdm__route_resp_open(tdm_route_req_t *req, const tdm__route_leg_t *rl, tdm__msg_t *m);
/* A new slice (pooled when it fits) starting with prefix, and a fixed writer over the `need` (or more)
 * bytes after it: rewrites go straight into the body a leg sends. NULL on ENOMEM. */
tdm_slice_t *tdm__route_slice_writer(tdm_proxy_worker_t *pw, const uint8_t *prefix, size_t plen, size_t need,
                                     tdm_writer_t *w);
/* A new slice holding prefix (the custom payload, maybe empty) + the writer's bytes; NULL on ENOMEM. */
tdm_slice_t *tdm__route_slice_join(tdm_proxy_worker_t *pw, const uint8_t *prefix, size_t plen, const uint8_t *p,
                                   size_t n);

/* ---- prepared_flow.c ---- */
/* EXECUTE: the body leg `cluster` sends (ids and v5 metadata id of that cluster), as a slice reference
 * the caller owns: the client's own slice when nothing changes. NULL on ENOMEM or malformed input. */
tdm_slice_t *tdm__route_exec_body(tdm_route_req_t *req, int cluster, size_t *off, size_t *len, uint8_t *flags);
/* BATCH: the same for a batch whose prepared children are in req->children. */
tdm_slice_t *tdm__route_batch_body(tdm_route_req_t *req, int cluster, size_t *off, size_t *len, uint8_t *flags);
/* The body for `cluster` of an EXECUTE or BATCH request (dispatches to the two above). */
tdm_slice_t *tdm__route_prepared_body(tdm_route_req_t *req, int cluster, size_t *off, size_t *len,
                                      uint8_t *flags);
/* An UNPREPARED (held in rl->resp) came back on rl: starts the one re-prepare of §7.3 and returns true,
 * or returns false (no statement to re-prepare, or it could not be sent) and the caller records the
 * outcome. */
bool tdm__route_reprepare(tdm_route_req_t *req, tdm__route_leg_t *rl);
/* The internal PREPARE answered (rl->resp / rl->agg hold it): resends the statement once (the leg is SENT
 * again) or gives up with a made-up UNPREPARED (the leg is DONE). */
void tdm__route_reprepared(tdm_route_req_t *req, tdm__route_leg_t *rl);
/* PREPARE succeeded on both: stores the registry entry. 0, or <0 when a PREPARED could not be read. */
int tdm__route_prepare_store(tdm_route_req_t *req);
/* The id a made-up UNPREPARED names: the client's id of the statement the leg ran. */
void tdm__route_unprepared_id(const tdm_route_req_t *req, const tdm__route_leg_t *rl, const uint8_t **id,
                              size_t *len);
/* Records a new v5 metadata-id pair when both legs of an EXECUTE returned METADATA_CHANGED (§7.2). */
void tdm__route_record_metadata_ids(tdm_route_req_t *req);

/* ---- async_reads.c ---- */
/* A primary-routed read was started: mirror it to the secondary when sampling, the cap and the
 * secondary's reachability allow (§12). `sync` is the request being mirrored. */
void tdm__route_async_maybe(tdm_route_req_t *sync);
/* Leg outcome of a mirrored read (metrics only). */
void tdm__route_async_done(tdm_route_req_t *req);

/* ---- metrics (request.c) ---- */
tdm_request_error_t tdm__route_error_class(uint32_t code);
/* What went wrong on a leg, for logs and the journal: "<CODE>: <message>" of its ERROR (made-up ones
 * included), "no response from <C> within <n> ms", "connection to <C> <node> lost", or, for a secondary
 * PRIMARY_WINS never sent, "UNAVAILABLE: tandem: no reachable <C> node (not sent)". */
void tdm__route_leg_error_text(tdm_route_req_t *req, const tdm__route_leg_t *rl, char *buf, size_t cap);

/* ---- divergence.c ---- */
/* A dual write applied on one cluster and failed (or, under PRIMARY_WINS, was not sent) on `failed`:
 * write_divergence_total{kind,failed_on}, a WARN line, and a journal line when the epoch asks for one. */
void tdm__route_divergence(tdm_route_req_t *req, int failed);
/* Both legs of an LWT returned [applied] and the values differ: lwt_applied_mismatch_total, WARN, and
 * a journal line of kind lwt_mismatch. */
void tdm__route_lwt_mismatch(tdm_route_req_t *req, bool origin_applied);

static inline tdm_proxy_worker_t *tdm__route_pw(const tdm_route_req_t *req) { return req->rw->pw; }
static inline uint64_t tdm__route_now(const tdm_route_req_t *req) { return uv_now(req->rw->pw->loop); }

#endif
