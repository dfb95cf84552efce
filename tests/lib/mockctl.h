/* Test-side helpers for the mock CQL node (tests/mock): start build/cqlmock and wait for its ready
 * line, send control commands and read their one-line replies, stop it and collect its exit status
 * (non-zero under ASan when it leaked); and a small blocking CQL client over raw sockets, built on
 * tandem's codec, to drive the mock's nodes (handshake, compression, v5 segments, timeouts). */
#ifndef TDM_MOCKCTL_H
#define TDM_MOCKCTL_H

#include <sys/types.h>

#include <tandem/common.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/envelope.h>
#include <tandem/proto/frame.h>
#include <tandem/proto/reader.h>

#define TDM_MOCKCTL_MAX_NODES 16
#define TDM_MOCKCTL_ADDR_MAX 64

/* ---- the mock process ---- */

typedef struct tdm_mockctl_s {
  pid_t pid;                                             /* the mock, 0 when not running */
  int out_fd;                                            /* read end of its stdout, -1 when closed */
  int ctl_fd;                                            /* control connection, -1 until the first command */
  char control[TDM_MOCKCTL_ADDR_MAX];                    /* control "host:port" from the ready line */
  char nodes[TDM_MOCKCTL_MAX_NODES][TDM_MOCKCTL_ADDR_MAX]; /* node "host:port" from the ready line */
  size_t n_nodes;                                        /* nodes */
  char rbuf[65536];                                      /* control bytes read and not yet returned */
  size_t rlen;                                           /* bytes in rbuf */
} tdm_mockctl_t;

/* $TDM_BUILD_DIR/cqlmock, else build/cqlmock. */
void tdm_mockctl_binary(char *buf, size_t cap);
/* Starts the mock with args (NULL-terminated; "--control 127.0.0.1:0" is added when absent) and waits
 * up to timeout_ms for the ready line. 0, or a negative code (the child is reaped on failure). */
TDM_MUSTCHECK int tdm_mockctl_spawn(tdm_mockctl_t *m, const char *const *args, int timeout_ms);
/* Sends one command (printf-style, no newline) and reads its reply line into reply (NUL-terminated,
 * newline removed; reply may be NULL). 0 for "OK ...", TDM_EINVAL for "ERR ...", <0 on I/O errors. */
int tdm_mockctl_cmd(tdm_mockctl_t *m, char *reply, size_t cap, const char *fmt, ...) TDM_PRINTF(4, 5);
/* "COUNT <fields>" as a number, or a negative code. */
int64_t tdm_mockctl_count(tdm_mockctl_t *m, const char *fmt, ...) TDM_PRINTF(2, 3);
/* Node i's host and port. */
TDM_MUSTCHECK int tdm_mockctl_node(const tdm_mockctl_t *m, size_t i, char *host, size_t cap, uint16_t *port);
/* SIGTERM, then SIGKILL after timeout_ms. Returns the exit status (0 = clean), 128 + signal for a
 * signal death, or a negative code. */
int tdm_mockctl_stop(tdm_mockctl_t *m, int timeout_ms);

/* ---- a raw CQL client ---- */

typedef struct tdm_mockctl_frame_s {
  tdm_frame_header_t h; /* response header */
  uint8_t *body;        /* body, decompressed (heap, may be NULL when empty) */
  size_t len;           /* body bytes */
} tdm_mockctl_frame_t;

typedef struct tdm_mockctl_cql_s {
  int fd;                          /* socket, -1 when closed */
  uint8_t version;                 /* protocol version of every frame sent */
  tdm_compression_t compression;   /* asked for in STARTUP */
  bool compress_on;                /* v3/v4: bodies compressed (after READY/AUTHENTICATE) */
  bool framed;                     /* v5: segments in both directions */
  tdm_envelope_reader_t env_in;    /* v5 input */
  tdm_envelope_writer_t env_out;   /* v5 output */
  uint8_t *in;                     /* socket bytes not yet decoded */
  size_t in_len;                   /* bytes in `in` */
  size_t in_cap;                   /* bytes allocated */
} tdm_mockctl_cql_t;

/* Connects (blocking, 5 s) to host:port; frames will carry version. */
TDM_MUSTCHECK int tdm_mockctl_cql_connect(tdm_mockctl_cql_t *c, const char *host, uint16_t port, uint8_t version);
void tdm_mockctl_cql_close(tdm_mockctl_cql_t *c);
/* Sends one request frame (compressed / framed as negotiated so far). */
TDM_MUSTCHECK int tdm_mockctl_cql_send(tdm_mockctl_cql_t *c, int16_t stream, uint8_t opcode, const void *body,
                                       size_t len);
/* Sends bytes as they are. */
TDM_MUSTCHECK int tdm_mockctl_cql_send_raw(tdm_mockctl_cql_t *c, const void *p, size_t n);
/* Receives the next frame within timeout_ms: 0, TDM_ETIMEOUT, TDM_ECLOSED (peer closed) or a decode
 * error. READY / AUTHENTICATE switch a v5 connection to segments and turn compression on. */
TDM_MUSTCHECK int tdm_mockctl_cql_recv(tdm_mockctl_cql_t *c, int timeout_ms, tdm_mockctl_frame_t *f);
void tdm_mockctl_frame_free(tdm_mockctl_frame_t *f);
/* STARTUP (compression NULL or "lz4"/"snappy") and, when the node asks, SASL PLAIN with user/pass.
 * Returns 0 when ready; TDM_EINVAL with *err_code set when the node answered ERROR; other codes for
 * I/O problems. */
TDM_MUSTCHECK int tdm_mockctl_cql_startup(tdm_mockctl_cql_t *c, const char *compression, const char *user,
                                          const char *pass, uint32_t *err_code);
/* QUERY at CL ONE on stream, then waits up to timeout_ms for the answer on that stream. */
TDM_MUSTCHECK int tdm_mockctl_cql_query(tdm_mockctl_cql_t *c, int16_t stream, const char *cql,
                                        tdm_mockctl_frame_t *resp, int timeout_ms);
/* Connects to node `node` of m and completes STARTUP (no credentials). */
TDM_MUSTCHECK int tdm_mockctl_cql_open(tdm_mockctl_t *m, size_t node, uint8_t version, const char *compression,
                                       tdm_mockctl_cql_t *c);
/* Sends a request and waits up to timeout_ms for the answer on its stream (others are dropped). */
TDM_MUSTCHECK int tdm_mockctl_cql_request(tdm_mockctl_cql_t *c, int16_t stream, uint8_t opcode, const void *body,
                                          size_t len, tdm_mockctl_frame_t *resp, int timeout_ms);
/* RESULT Rows: number of rows. TDM_EINVAL when f is not a Rows result. */
TDM_MUSTCHECK int tdm_mockctl_rows_count(const tdm_mockctl_frame_t *f, int32_t *rows);
/* RESULT Rows: the cell of row `row` in column `column` (len -1 = null), and the column's type id. */
TDM_MUSTCHECK int tdm_mockctl_rows_cell(const tdm_mockctl_frame_t *f, int32_t row, const char *column,
                                        tdm_bytes_t *cell, uint16_t *type_id);
/* ERROR frame: its code and message (msg may be NULL). */
TDM_MUSTCHECK int tdm_mockctl_error_code(const tdm_mockctl_frame_t *f, uint32_t *code, char *msg, size_t cap);

#endif
