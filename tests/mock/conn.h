/* One client connection of a mock node: the socket, its input buffer turned into frames (v3/v4 frames,
 * or v5 envelopes out of segments once framing starts), and its output, queued per request and written
 * once per loop iteration (v5 envelopes packed into segments at that point). Protocol state lives here
 * too, written only by session.c. Memory is freed when the last reference goes: the handle's own, one
 * per pending delayed request, one while queued for a flush. */
#ifndef TDM_MOCK_CONN_H
#define TDM_MOCK_CONN_H

#include <uv.h>

#include <tandem/common.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/envelope.h>
#include <tandem/proto/frame.h>

#include "buf.h"
#include "list.h"
#include "mock.h"

/* Authentication progress of a connection. */
typedef enum tdm_mock_auth_step {
  TDM_MOCK_AUTH_NONE = 0,     /* no SASL under way */
  TDM_MOCK_AUTH_WAIT,         /* AUTHENTICATE sent: the next AUTH_RESPONSE carries a token */
  TDM_MOCK_AUTH_DSE_CREDS,    /* DSE: PLAIN-START sent, the next token carries credentials */
} tdm_mock_auth_step_t;

struct tdm_mock_conn_s {
  uv_tcp_t tcp;                     /* the socket; tcp.data == this */
  tdm_mock_t *mock;                 /* owning instance */
  tdm_mock_node_t *node;            /* node that accepted it */
  tdm_mock_link_t link;             /* in node->conns while open */
  uint64_t id;                      /* instance-wide id, from 1 */
  char peer[64];                    /* client "ip:port" */
  unsigned refs;                    /* see the file comment; freed at 0 */
  bool closing;                     /* close started: no more input handled, no more output */
  bool read_paused;                 /* reading stopped for backpressure */
  bool close_after_flush;           /* close once queued output is written */
  bool shutdown_sent;               /* close_after_flush is under way (uv_shutdown issued) */
  size_t pending_write;             /* bytes handed to uv_write and not yet completed */
  /* protocol state (session.c) */
  uint8_t version;                  /* protocol version, 0 until the first frame fixes it */
  bool started;                     /* STARTUP accepted */
  bool ready;                       /* READY or AUTH_SUCCESS sent: requests are served */
  tdm_mock_auth_step_t auth;        /* SASL progress */
  bool authenticated;               /* AUTH_SUCCESS sent */
  char user[64];                    /* user the connection authenticated as ("" if none) */
  tdm_compression_t compression;    /* negotiated algorithm (v5: lz4 segments) */
  bool compress_out;                /* v3/v4: compress response bodies (after READY/AUTHENTICATE) */
  bool framed;                      /* v5: segments in both directions */
  uint32_t events;                  /* REGISTERed TDM_REQUEST_EVENT_* bits */
  char keyspace[64];                /* USE keyspace ("" if none) */
  uint64_t requests;                /* frames received */
  /* I/O */
  tdm_mock_buf_t in;                /* bytes read and not yet decoded */
  tdm_envelope_reader_t env_in;     /* v5 segment decoder (valid once framed) */
  tdm_envelope_writer_t env_out;    /* v5 segment builder (valid once framed) */
  tdm_mock_buf_t out;               /* bytes ready for the socket, in order */
  bool dirty;                       /* queued in mock->dirty for this iteration's flush */
  tdm_mock_conn_t *next_dirty;      /* next in mock->dirty */
  tdm_mock_link_t timers;           /* head of session.c's delayed requests */
};

/* Accepts a pending connection on node's listener and starts reading it. */
TDM_MUSTCHECK int tdm_mock_conn_accept(tdm_mock_node_t *node);
/* Closes now (reset: abortive, RST); idempotent. Queued output is dropped. */
void tdm_mock_conn_close(tdm_mock_conn_t *c, bool reset);
void tdm_mock_conn_ref(tdm_mock_conn_t *c);
void tdm_mock_conn_unref(tdm_mock_conn_t *c);

/* Queues a response frame on stream with the connection's version: compressed when negotiated (v3/v4),
 * as an envelope when framed (v5). */
TDM_MUSTCHECK int tdm_mock_conn_send(tdm_mock_conn_t *c, int16_t stream, uint8_t opcode, const uint8_t *body,
                                     size_t len);
/* Queues a whole pre-encoded response frame (9-byte header + body) after patching its stream id. */
TDM_MUSTCHECK int tdm_mock_conn_send_encoded(tdm_mock_conn_t *c, const uint8_t *frame, size_t len, int16_t stream);
/* Queues a frame with an explicit header version, never compressed nor framed (version errors). */
TDM_MUSTCHECK int tdm_mock_conn_send_unframed(tdm_mock_conn_t *c, uint8_t version, int16_t stream, uint8_t opcode,
                                              const uint8_t *body, size_t len);
/* Queues raw bytes after everything queued before them (garbage). */
TDM_MUSTCHECK int tdm_mock_conn_send_raw(tdm_mock_conn_t *c, const void *p, size_t n);
/* Starts v5 framing in both directions (after READY / AUTHENTICATE was queued unframed). */
void tdm_mock_conn_start_framing(tdm_mock_conn_t *c);
/* Writes every dirty connection's queued output (the check handle calls it once per iteration). */
void tdm_mock_conn_flush_all(tdm_mock_t *mock);

#endif
