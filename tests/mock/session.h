/* Request handling of one connection: version checks, the handshake (OPTIONS, STARTUP, SASL PLAIN with
 * the optional DSE mechanism dance, REGISTER), counting, rule lookup, delayed requests, and dispatch of
 * served requests to exec.c. Everything a connection answers goes through here. */
#ifndef TDM_MOCK_SESSION_H
#define TDM_MOCK_SESSION_H

#include <tandem/proto/frame.h>

#include "conn.h"

/* A frame header arrived (unframed input): refuses versions not served. Returns 0 to go on, or <0 when
 * the connection was answered and is closing. */
int tdm_mock_session_on_header(tdm_mock_conn_t *c, const tdm_frame_header_t *h);
/* A whole request (body decompressed; body valid for this call only). */
void tdm_mock_session_on_frame(tdm_mock_conn_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len);
/* Input that cannot be decoded: best-effort PROTOCOL_ERROR on stream, then close after flushing. */
void tdm_mock_session_protocol_error(tdm_mock_conn_t *c, int16_t stream, const char *msg);
/* An ERROR with a code and message on stream (helper for exec.c and session.c). */
void tdm_mock_session_error(tdm_mock_conn_t *c, int16_t stream, uint32_t code, const char *fmt, ...) TDM_PRINTF(4, 5);
/* The connection is closing: cancels its delayed requests. */
void tdm_mock_session_close(tdm_mock_conn_t *c);

#endif
