/* A client connection as the rest of the proxy sees it: what the route module needs to build legs
 * (protocol version, compression, keyspace, the session key per cluster) and the calls that answer a
 * request. Everything else about the client (state machine, handshake, auth, framing, backpressure,
 * events) is private to src/frontend. Each response carries the client's stream id and frees it, so a
 * stream id is "in flight" from its request until exactly one tdm_client_respond*() call. */
#ifndef TANDEM_FRONTEND_CLIENT_H
#define TANDEM_FRONTEND_CLIENT_H

#include <tandem/common.h>
#include <tandem/core/proxy.h>
#include <tandem/net/buf.h>
#include <tandem/backend/backend.h>
#include <tandem/proto/response.h>

typedef struct tdm_client_s tdm_client_t;

/* The part of a client the route module reads. The frontend keeps it current; route never writes it
 * except through tdm_client_set_keyspace(). */
typedef struct tdm_client_view_s {
  tdm_proxy_worker_t *pw;          /* the worker that owns this client */
  uint64_t id;                     /* connection id (logs: C-<id>) */
  const char *peer;                /* "ip:port" of the client */
  const char *local;               /* "ip:port" the client connected to (virtual tables' rpc_address) */
  uint8_t version;                 /* negotiated protocol version */
  tdm_compression_t compression;   /* negotiated compression (v3/v4 bodies) */
  const char *keyspace;            /* current keyspace after USE, "" if none */
  tdm_session_key_t key[2];        /* session key per cluster (ORIGIN, TARGET) for sync legs */
  uint32_t inflight;               /* requests dispatched and not yet answered */
} tdm_client_view_t;

const tdm_client_view_t *tdm_client_view(const tdm_client_t *c);

/* Answers stream `stream` with `opcode` and the body slice->data[off, off+len), sent as it is: `flags`
 * must describe it (TDM_FLAG_COMPRESSED only if the body is compressed with the client's algorithm;
 * tracing/warning/custom-payload flags as the backend sent them). Takes its own slice reference.
 * Frees the client stream id. Returns 0, or TDM_ECLOSED if the client is gone (nothing sent). */
int tdm_client_respond(tdm_client_t *c, int16_t stream, uint8_t opcode, uint8_t flags, tdm_slice_t *slice,
                       size_t off, size_t len);
/* Answers with a body the proxy built (uncompressed; the frontend compresses it for v3/v4 clients
 * that negotiated compression). Copies the bytes. */
int tdm_client_respond_bytes(tdm_client_t *c, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len);
/* Answers with an ERROR built from e (response.h), in the client's version. */
int tdm_client_respond_error(tdm_client_t *c, int16_t stream, const tdm_response_error_t *e);
/* Shorthand: ERROR with only a code and a printf-style message. */
int tdm_client_respond_errorf(tdm_client_t *c, int16_t stream, uint32_t code, const char *fmt, ...)
    TDM_PRINTF(4, 5);
/* USE succeeded on both clusters (§5.3): the client's keyspace (and its v3/v4 pool keys) change. */
void tdm_client_set_keyspace(tdm_client_t *c, const char *keyspace, size_t len);
/* Keeps a client alive across an asynchronous step (a request holds one while in flight). */
void tdm_client_ref(tdm_client_t *c);
void tdm_client_unref(tdm_client_t *c);
/* True once the connection is closing: responses are dropped (and the stream id freed). */
bool tdm_client_is_closing(const tdm_client_t *c);

/* The route module found that a backend connection this client's next request needs is above its
 * high watermark (true) or back below the low one (false): reading pauses / resumes (§11.2). */
void tdm_client_pause_for_backend(tdm_client_t *c, bool paused);

/* Worker-level frontend (called on the worker thread). */
TDM_MUSTCHECK int tdm_frontend_start(tdm_proxy_worker_t *pw);  /* opens this worker's listener */
void tdm_frontend_drain(tdm_proxy_worker_t *pw);               /* SIGTERM (§11.3) */
void tdm_frontend_stop(tdm_proxy_worker_t *pw);                /* closes listener and every client */
/* The port this worker's listener is bound to (the real one when 0 was configured), 0 when none. */
uint16_t tdm_frontend_port(const tdm_proxy_worker_t *pw);
/* Adopts a socket accepted elsewhere (TDM_MSG_NEW_CONN, acceptor mode): the same admission rules as the
 * worker's own listener (limit, draining). Takes the fd in every case. 0 or a negative code. */
int tdm_frontend_adopt(tdm_proxy_worker_t *pw, uv_os_sock_t fd);
/* Delivers an EVENT body (SCHEMA_CHANGE from ORIGIN, synthesized TOPOLOGY_CHANGE) to every client
 * registered for `type` ("SCHEMA_CHANGE", "TOPOLOGY_CHANGE", "STATUS_CHANGE"). */
void tdm_frontend_broadcast_event(tdm_proxy_worker_t *pw, const char *type, const uint8_t *body, size_t len);

#endif
