/* Client side of the CQL wire for tdm-bench, on tandem's codecs: requests are appended to one output
 * buffer as v3/v4 frames (body optionally lz4/snappy compressed) or, once v5 framing has started, as
 * envelopes packed into self-contained segments (optionally lz4) that are sealed before each write;
 * responses are cut out of the read buffer as frames or envelopes. One wire per connection. */
#ifndef TDM_BENCH_WIRE_H
#define TDM_BENCH_WIRE_H

#include <tandem/common.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/envelope.h>
#include <tandem/proto/frame.h>

/* Largest response body accepted (Cassandra's default native_transport_max_frame_size). */
#define TDM_BENCH_WIRE_MAX_BODY (16u << 20)

typedef struct tdm_bench_wire_s {
  uint8_t version;               /* protocol version of every frame */
  tdm_compression_t compression; /* negotiated at STARTUP; v5: lz4 segments */
  bool compress_bodies;          /* v3/v4: compress request bodies (set once READY arrived) */
  bool framed;                   /* v5: segments in use, both ways (set once READY/AUTHENTICATE arrived) */
  uint8_t *out;                  /* encoded output: whole frames / sealed segments, then the open segment */
  size_t out_len;                /* bytes in out ready to write, excluding the open segment */
  size_t out_cap;                /* bytes allocated at out */
  bool seg_open;                 /* an open segment starts at out + out_len */
  size_t seg_payload;            /* payload bytes in the open segment */
  uint8_t *scratch;              /* v3/v4 compressed requests: the body before compression */
  size_t scratch_cap;            /* bytes allocated at scratch */
  size_t pending_body;           /* body length announced by the last tdm_bench_wire_begin */
  uint8_t pending_opcode;        /* opcode of that request */
  int16_t pending_stream;        /* stream id of that request */
  tdm_envelope_reader_t reader;  /* v5 input once framed */
  uint8_t *plain;                /* v3/v4: last decompressed response body (freed on the next one) */
} tdm_bench_wire_t;

/* One response cut out of the input. */
typedef struct tdm_bench_msg_s {
  tdm_frame_header_t h;  /* header; v5 envelopes have the compression flag cleared */
  const uint8_t *body;   /* body as on the wire (compressed when h.flags has TDM_FLAG_COMPRESSED) */
  size_t len;            /* bytes at body */
} tdm_bench_msg_t;

void tdm_bench_wire_init(tdm_bench_wire_t *w, uint8_t version, tdm_compression_t compression);
void tdm_bench_wire_free(tdm_bench_wire_t *w);
/* The handshake is over (READY or AUTHENTICATE read): v5 starts framing, v3/v4 start compressing. */
void tdm_bench_wire_start(tdm_bench_wire_t *w);

/* Appends a request of body_len bytes and returns where its body goes (the caller fills exactly
 * body_len bytes, then calls _end), or NULL when out of memory. Bodies of one v5 segment stay below
 * TDM_SEGMENT_MAX_PAYLOAD - 9 bytes. */
uint8_t *tdm_bench_wire_begin(tdm_bench_wire_t *w, uint8_t opcode, int16_t stream, size_t body_len);
TDM_MUSTCHECK int tdm_bench_wire_end(tdm_bench_wire_t *w);
/* Convenience: begin + memcpy + end. */
TDM_MUSTCHECK int tdm_bench_wire_add(tdm_bench_wire_t *w, uint8_t opcode, int16_t stream, const void *body,
                                     size_t len);
/* Seals the open segment so out[0..out_len) holds every request added; then the caller writes and
 * calls tdm_bench_wire_consumed with the bytes it took. */
TDM_MUSTCHECK int tdm_bench_wire_seal(tdm_bench_wire_t *w);
/* Drops n bytes from the front of the sealed output (n <= out_len). */
void tdm_bench_wire_consumed(tdm_bench_wire_t *w, size_t n);

/* Cuts the next response out of in[0..len): 1 with *msg set, 0 when more bytes are needed, <0 on a
 * protocol error. *consumed bytes at the front of in are done with (see tdm_envelope_read for the v5
 * rules: msg stays valid until the input moves or the next call). */
TDM_MUSTCHECK int tdm_bench_wire_next(tdm_bench_wire_t *w, const uint8_t *in, size_t len, size_t *consumed,
                                      tdm_bench_msg_t *msg);
/* The plain body of msg (decompressing a v3/v4 body into the wire's buffer, valid until the next call). */
TDM_MUSTCHECK int tdm_bench_wire_body(tdm_bench_wire_t *w, const tdm_bench_msg_t *msg, const uint8_t **body,
                                      size_t *len);

#endif
