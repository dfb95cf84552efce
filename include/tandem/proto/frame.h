/* CQL frame header codec for v2 (8 bytes, 1-byte stream id) and v3, v4, v5, DSE_V1, DSE_V2 (9 bytes):
 * version(1) flags(1) stream(1|2, signed BE) opcode(1) length(4, BE). Decoding is incremental and
 * checks the declared body length against a limit before anyone allocates or waits for the body. */
#ifndef TANDEM_PROTO_FRAME_H
#define TANDEM_PROTO_FRAME_H

#include <tandem/common.h>
#include <tandem/proto/opcodes.h>

#define TDM_FRAME_HEADER_MAX 9

typedef struct tdm_frame_header_s {
  uint8_t version;  /* version byte with the direction bit removed */
  bool response;    /* direction bit 0x80 was set */
  uint8_t flags;    /* TDM_FLAG_* */
  int16_t stream;   /* stream id (v2: sign-extended 1-byte id) */
  uint8_t opcode;   /* TDM_OP_* (unchecked: unknown opcodes are the caller's business) */
  uint32_t length;  /* declared body length */
} tdm_frame_header_t;

/* 8 for v1/v2 header versions, 9 for every other version byte. */
static inline size_t tdm_frame_header_size(uint8_t version) { return tdm_proto_is_v2_header(version & TDM_PROTO_VERSION_MASK) ? 8 : 9; }

/* Decodes a header from p[0..len). Returns the header size (> 0) when complete, 0 when more bytes are
 * needed. Returns TDM_EPROTO_TOO_LARGE, with *h filled in, when length > max_body: the caller answers
 * on h->stream and discards the body as it arrives. Never reads past len. */
TDM_MUSTCHECK int tdm_frame_header_decode(const uint8_t *p, size_t len, uint32_t max_body, tdm_frame_header_t *h);

/* Writes the header for h->version into out (8 or 9 bytes) and returns the size written. */
size_t tdm_frame_header_encode(const tdm_frame_header_t *h, uint8_t out[TDM_FRAME_HEADER_MAX]);

/* Whole frame: when header and body are both in p[0..len), sets *h and *body (pointing into p) and
 * returns header + body size; 0 when more bytes are needed; <0 as tdm_frame_header_decode. */
TDM_MUSTCHECK int tdm_frame_decode(const uint8_t *p, size_t len, uint32_t max_body, tdm_frame_header_t *h,
                                   const uint8_t **body);

/* Rewrites the stream id of an encoded header in place (the hot path's only header edit). */
void tdm_frame_patch_stream(uint8_t *header, int16_t stream);

#endif
