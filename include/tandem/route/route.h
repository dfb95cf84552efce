/* The routing core's entry point: a decoded client request (after the handshake) goes in, exactly one
 * response comes out, later, through tdm_client_respond*(). Policy (which clusters, which answer) is in
 * route/router.c; the lifecycle of one request and its legs in route/request.c; prepared statements
 * in route/prepared_flow.c; async mirrored reads in route/async_reads.c. */
#ifndef TANDEM_ROUTE_ROUTE_H
#define TANDEM_ROUTE_ROUTE_H

#include <tandem/common.h>
#include <tandem/net/buf.h>
#include <tandem/proto/frame.h>

typedef struct tdm_client_s tdm_client_t;

/* One request frame from a READY client. `h` is its header (version, flags, client stream id, opcode);
 * the body is body_slice->data[off, off+len) as received (still compressed when h->flags has
 * TDM_FLAG_COMPRESSED); the route module takes its own reference on body_slice if it keeps it.
 * Returns 0 when the request was accepted (a response will follow) or answered at once; <0 only for a
 * protocol error that must close the connection (the route has already queued the PROTOCOL_ERROR). */
TDM_MUSTCHECK int tdm_route_dispatch(tdm_client_t *client, const tdm_frame_header_t *h, tdm_slice_t *body_slice,
                                     size_t off, size_t len);

/* The client is closing: every request it still has in flight is detached (their legs complete or
 * time out without anyone to answer, freeing backend stream ids). */
void tdm_route_client_gone(tdm_client_t *client);

/* ---- additions by the route module (worker lifetime, schema hold) ---- */

typedef struct tdm_proxy_worker_s tdm_proxy_worker_t;

/* Schema-agreement hold (§5.3), provided by the core (the control connections live on the main thread).
 * wait() calls done(req, agreed) exactly once, later, on this worker's thread: agreed=false after
 * wait_ms. cancel() guarantees done is not called for req. Without a hook, DDL is answered at once. */
typedef struct tdm_route_schema_hook_s {
  void (*wait)(void *arg, int wait_ms, void (*done)(void *req, bool agreed), void *req); /* start a hold */
  void (*cancel)(void *arg, void *req);                                               /* drop a hold */
  void *arg;                                                                           /* hook's context */
} tdm_route_schema_hook_t;

/* Installs (or with NULL removes) the schema hook of this worker. */
void tdm_route_set_schema_hook(tdm_proxy_worker_t *pw, const tdm_route_schema_hook_t *hook);

/* Worker shutdown, after every client is gone: gives up on every request still in flight (abandoning
 * its legs), closes the worker's deadline timer and frees the route state once the loop has run its
 * close callback. pw->route is NULL afterwards; a later dispatch would start afresh. */
void tdm_route_worker_close(tdm_proxy_worker_t *pw);

/* Requests (sync and async) this worker has in flight: for drain and tests. */
uint32_t tdm_route_inflight(const tdm_proxy_worker_t *pw);

#endif
