/* A worker's side of both clusters: pools of multiplexed backend connections, node choice, and the
 * one operation the routing core needs, "send this leg". The route module owns legs and requests;
 * the backend owns connections, stream ids and queues, and reports each leg's outcome exactly once
 * through the leg's callbacks, unless the leg was abandoned first.
 *
 *   route ── tdm_backend_send(leg) ──> pool(key) ──> node (healthy, local DC, least in flight)
 *                                        │              └─> connection with a free stream id
 *                                        └─ no id free: grow the pool or queue the leg (FIFO)
 *   backend socket ── response(stream id) ──> leg->on_response   (or on_failure, once) */
#ifndef TANDEM_BACKEND_BACKEND_H
#define TANDEM_BACKEND_BACKEND_H

#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/net/buf.h>
#include <tandem/net/tls.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/frame.h>
#include <tandem/backend/topology.h>
#include <tandem/util/queue.h>

typedef struct tdm_backend_s tdm_backend_t;
typedef struct tdm_backend_conn_s tdm_backend_conn_t;
typedef struct tdm_leg_s tdm_leg_t;

/* Credentials a pool authenticates with: the client's own (client-auth cluster, §2.1) or the
 * configured ones. Pools are keyed by (authzid, user); the password is kept by the pool only. */
typedef struct tdm_credentials_s {
  const char *authzid;   /* SASL authorization id, "" if none */
  const char *user;      /* user name */
  const char *password;  /* password (secret: never logged); NULL: the identity's pools know it */
  bool verified;         /* session_open only: the caller already verified this password (its
                            verified-identity cache, §2.2 step 4), so no login checks it again */
} tdm_credentials_t;

/* What a pool connection must share with the client it serves (architecture §3). */
typedef struct tdm_session_key_s {
  uint8_t version;                /* the client's protocol version: every leg uses it (§3) */
  tdm_compression_t compression;  /* the client's compression: bodies pass as they are */
  const tdm_credentials_t *creds; /* NULL: the cluster's configured credentials (or none) */
  const char *keyspace;           /* v3/v4/DSE_V1 only: pool runs USE <ks> on each connection; NULL/"" none */
  bool async;                     /* dedicated async-read pools (§12) */
} tdm_session_key_t;

/* The response of a leg: header as received (stream id already mapped back) and the body, which stays
 * valid after the callback only through a reference taken on `slice` (body == slice->data + off). */
typedef void (*tdm_leg_response_cb)(tdm_leg_t *leg, const tdm_frame_header_t *h, tdm_slice_t *slice,
                                    const uint8_t *body, size_t len);
/* The leg failed: `written` tells whether any byte reached the node (if not, nothing ran there).
 * err: TDM_ECLOSED (connection lost), TDM_EUNAVAILABLE (no node left), TDM_ETIMEOUT (heartbeat),
 * TDM_EPROTO_MALFORMED (undecodable response). `reason` names the node, e.g. "127.0.0.3:9042". */
typedef void (*tdm_leg_failure_cb)(tdm_leg_t *leg, int err, bool written, const char *reason);

/* One request as sent to one cluster. Set the "in" fields, then call tdm_backend_send. */
struct tdm_leg_s {
  /* in */
  int cluster;                    /* TDM_CONF_ORIGIN or TDM_CONF_TARGET */
  uint8_t opcode;                 /* request opcode */
  uint8_t flags;                  /* frame flags for this leg (TDM_FLAG_COMPRESSED matches the body) */
  tdm_slice_t *body;              /* storage of the body; the backend takes its own reference */
  size_t body_off;                /* body offset within body->data */
  size_t body_len;                /* body length */
  int pin_node;                   /* index into the topology's nodes to force (re-prepare), -1 = choose */
  tdm_leg_response_cb on_response; /* exactly one of the two callbacks runs, unless abandoned */
  tdm_leg_failure_cb on_failure;  /* the other one */
  void *owner;                    /* the route module's request */
  /* out, valid from the first callback on */
  int node;                       /* index of the node that got the leg, -1 before */
  uint64_t sent_at_ms;            /* loop time when written, 0 if never */
  bool queued;                    /* it waited in a pool queue (no free stream id or no READY connection);
                                     set as soon as it is queued, so also valid at abandon time */
  /* backend-private */
  tdm_backend_conn_t *conn;       /* connection it was written to or queued on */
  int32_t stream;                 /* backend stream id, -1 while unassigned */
  uint8_t state;                  /* backend-private lifecycle */
  uint8_t attempts;               /* nodes tried for this leg (re-dispatch bound) */
  tdm_list_t link;                /* pool wait queue or connection write queue */
  void *wait_pool;                /* pool whose wait queue holds it, NULL otherwise */
};

static inline void tdm_leg_init(tdm_leg_t *leg)
{
  memset(leg, 0, sizeof(*leg));
  leg->pin_node = -1;
  leg->node = -1;
  leg->stream = -1;
}

/* One per worker. `loop` is the worker's loop; conf and topologies are swapped in later. The backend's
 * connections get a tdm_conn_ctx_t of their own on that loop (flush scheduler and block pools); `pool`
 * serves the slices it allocates (bodies of decompressed or reassembled v5 envelopes). */
TDM_MUSTCHECK int tdm_backend_new(void *loop, tdm_buf_pool_t *pool, tdm_backend_t **out);
/* Closes every pool connection; legs still pending fail with TDM_ECLOSED; frees when all are closed. */
void tdm_backend_close(tdm_backend_t *be);
/* A new epoch (live keys: pool sizes, heartbeat interval, idle timeout) or topology snapshot. The
 * backend takes its own references. Nodes that left drain their connections; new nodes are used
 * after their first successful connection. */
void tdm_backend_set_conf(tdm_backend_t *be, tdm_conf_t *conf);
void tdm_backend_set_topology(tdm_backend_t *be, tdm_topology_t *topology);
/* The TLS contexts new pool connections use (a reference on each; the worker's copy of the instance's
 * set, swapped on reload). A connection keeps the context it was opened with. A cluster without a
 * context in the set is reached in plaintext; nothing changes for plaintext connections. */
void tdm_backend_set_tls(tdm_backend_t *be, const tdm_tls_set_t *tls);

/* Whether `cluster` has at least one node a leg could go to now (all-or-nothing dispatch, §6.1). */
bool tdm_backend_reachable(const tdm_backend_t *be, int cluster);
/* Queues or writes the leg on a connection of the pool for `key`. 0: a callback will follow.
 * TDM_EUNAVAILABLE: no reachable node, nothing was sent, no callback follows. */
TDM_MUSTCHECK int tdm_backend_send(tdm_backend_t *be, const tdm_session_key_t *key, tdm_leg_t *leg);
/* The request gave up on this leg (timeout, client gone): a queued leg is removed, a written one is
 * orphaned (its late response frees the stream id and is counted). No callback follows. */
void tdm_backend_abandon(tdm_leg_t *leg);

/* Handshake support (§2.2): makes sure the pool for `key` on `cluster` has a ready connection,
 * authenticating with key->creds when given. cb(arg, 0, NULL, 0) once ready; otherwise cb with an
 * error and, when the cluster refused, its ERROR body (e.g. BAD_CREDENTIALS, to relay verbatim), or
 * NULL with a tandem reason text in `reason`.
 * The callback always runs later from the loop, never inside session_open. With key->creds, a new
 * connection checks exactly those credentials (a pool never vouches for a password it has not just seen
 * accepted); on success the pool adopts them. With key->creds->verified (a cache hit of the caller),
 * nothing is checked: a READY connection of the identity's pool on any eligible node answers at once,
 * otherwise one more pool connection opens with the password the pool already holds (a new pool takes
 * key->creds->password), and its refusal (e.g. a changed password) is reported like any other. Errors:
 *   TDM_EPROTO_VERSION  the node refused the version (PROTOCOL_ERROR "Invalid or unsupported protocol
 *                       version" / "Beta version", body = that ERROR), or sent an undecodable reply (no body)
 *   TDM_EINVAL          the cluster refused with another ERROR (BAD_CREDENTIALS, USE failed): body set
 *   TDM_ECONF           the cluster requires auth and no username is configured (reason set)
 *   other (UV_E*, TDM_ETIMEOUT, TDM_EUNAVAILABLE, TDM_ECLOSED)  reason = "tandem: cannot open a session to
 *                       <CLUSTER> (<node>): <why>", ready to be sent as a SERVER_ERROR message
 * Returns 0 (the callback follows), TDM_ECLOSED (backend closing), TDM_EINVAL or TDM_ENOMEM. */
typedef void (*tdm_session_cb)(void *arg, int err, const uint8_t *error_body, size_t error_len,
                               const char *reason);
TDM_MUSTCHECK int tdm_backend_session_open(tdm_backend_t *be, int cluster, const tdm_session_key_t *key,
                                           tdm_session_cb cb, void *arg);
/* Cancels a pending session_open callback (the client went away). */
void tdm_backend_session_cancel(tdm_backend_t *be, tdm_session_cb cb, void *arg);

/* Gauges for metrics: pool connections, in-flight legs and used stream ids per node of a cluster, with
 * the dedicated async-read pools (§12) apart ({p}_async_connections_total, _async_used_stream_ids_total). */
typedef struct tdm_backend_node_stats_s {
  uint32_t connections;       /* open connections of the synchronous pools */
  uint32_t inflight;          /* legs written and not answered (abandoned ones excluded), sync + async */
  uint32_t stream_ids;        /* stream ids held by legs of the synchronous pools, abandoned ones included;
                                 internal ids excluded, so an idle node reads 0 even while a heartbeat is out */
  uint32_t async_connections; /* open connections of the async-read pools */
  uint32_t async_stream_ids;  /* stream ids held by legs of the async-read pools (same rules) */
} tdm_backend_node_stats_t;
void tdm_backend_node_stats(const tdm_backend_t *be, int cluster, size_t node, tdm_backend_node_stats_t *out);
/* Pool connections to `cluster` that failed before READY ({p}_proxy_failed_connections_total,
 * {p}_{origin,target,async}_failed_connections_total): connect refused or timed out, TLS or handshake
 * failure, handshake timeout, a refusal by the cluster. Not counted: a client's own credentials
 * rejected during verification (the connection worked; the password did not), and connections closed
 * on purpose (node left, backend closing). `async` selects the async-read pools instead of the sync ones. */
uint64_t tdm_backend_failed_connections(const tdm_backend_t *be, int cluster, bool async);
/* Responses that arrived for abandoned legs (proxy_late_responses_total{cluster}). */
uint64_t tdm_backend_late_responses(const tdm_backend_t *be, int cluster);

#endif
