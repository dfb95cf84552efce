/* Protocol v5 outer framing ("segments"), little-endian headers:
 *   uncompressed: 3-byte [payload length (17 bits) | self-contained (bit 17)] + CRC24 of those 3 bytes
 *   lz4:          5-byte [compressed len (17) | uncompressed len (17) | self-contained (bit 34)] + CRC24
 *   then the payload (<= 131071 bytes), then the CRC32 of the (compressed) payload, primed FA 2D 55 CA.
 * CRC24: init 0x875060, poly 0x1974F0B. An lz4 uncompressed length of 0 means "stored as is". */
#ifndef TANDEM_PROTO_SEGMENT_H
#define TANDEM_PROTO_SEGMENT_H

#include <tandem/common.h>

#define TDM_SEGMENT_MAX_PAYLOAD 131071u
#define TDM_SEGMENT_CRC_BYTES 4u
#define TDM_SEGMENT_HEADER_PLAIN 6u /* 3-byte header + CRC24 */
#define TDM_SEGMENT_HEADER_LZ4 8u   /* 5-byte header + CRC24 */
/* Largest segment on the wire; a reader's buffer must hold at least this much to make progress. */
#define TDM_SEGMENT_MAX_ENCODED (TDM_SEGMENT_HEADER_LZ4 + TDM_SEGMENT_MAX_PAYLOAD + TDM_SEGMENT_CRC_BYTES)

uint32_t tdm_crc24(const uint8_t *p, size_t len);
uint32_t tdm_crc32_cql(const uint8_t *p, size_t len);

/* The payload CRC32 computed over pieces that are not contiguous (zero-copy output):
 *   crc = TDM_SEGMENT_CRC32_INIT; crc = tdm_crc32_cql_update(crc, piece, n) for each piece in order;
 * crc is then tdm_crc32_cql(whole payload). There is no final step: each update returns a finished
 * CRC that the next one continues. TDM_SEGMENT_CRC32_INIT is the CRC of the prime FA 2D 55 CA. */
#define TDM_SEGMENT_CRC32_INIT 0x44777ed3u
uint32_t tdm_crc32_cql_update(uint32_t crc, const uint8_t *p, size_t n);
/* Writes crc as the 4-byte little-endian segment trailer. */
void tdm_segment_put_crc32(uint8_t out[TDM_SEGMENT_CRC_BYTES], uint32_t crc);

/* The 6-byte header of an uncompressed segment (3-byte length/flag + CRC24) carrying payload_len
 * (<= TDM_SEGMENT_MAX_PAYLOAD) bytes, for a payload written elsewhere (by reference). */
void tdm_segment_plain_header(uint8_t out[TDM_SEGMENT_HEADER_PLAIN], size_t payload_len, bool self_contained);

typedef struct tdm_segment_s {
  const uint8_t *payload;   /* payload bytes as on the wire (compressed for lz4 unless stored), points into input */
  size_t payload_len;       /* bytes at payload */
  size_t uncompressed_len;  /* length after decompression (== payload_len when not compressed / stored) */
  bool compressed;          /* payload is an lz4 block that must be decompressed */
  bool self_contained;      /* carries whole envelopes only */
} tdm_segment_t;

/* Decodes one segment from p[0..len). Returns its total size (> 0), 0 when more bytes are needed,
 * TDM_EPROTO_CRC on a CRC24/CRC32 mismatch (checked only when check_crc), TDM_EPROTO_MALFORMED on an
 * impossible header. Never reads past len. */
TDM_MUSTCHECK int tdm_segment_decode(const uint8_t *p, size_t len, bool lz4, bool check_crc, tdm_segment_t *out);

/* Writes the segment's plain payload into out[0..cap) (decompressing lz4); returns 0 or an error. */
TDM_MUSTCHECK int tdm_segment_payload(const tdm_segment_t *seg, uint8_t *out, size_t cap);

/* Upper bound of the encoded size of one segment carrying payload_len (<= TDM_SEGMENT_MAX_PAYLOAD) bytes. */
size_t tdm_segment_encode_bound(size_t payload_len, bool lz4);

/* Encodes one segment; with lz4 a payload that would not shrink is sent stored. Returns the bytes
 * written (> 0) or an error (TDM_EOVERFLOW if cap is too small, TDM_EINVAL if payload_len is too large). */
TDM_MUSTCHECK int tdm_segment_encode(const uint8_t *payload, size_t payload_len, bool self_contained, bool lz4,
                                     uint8_t *out, size_t cap);

/* Uncompressed segment built in place: seg[TDM_SEGMENT_HEADER_PLAIN, +payload_len) already holds the
 * payload (<= TDM_SEGMENT_MAX_PAYLOAD); writes the header before it and the CRC32 after it (the caller
 * owns payload_len + 10 bytes at seg). Returns the segment size. Saves the envelope writer a copy. */
size_t tdm_segment_seal_plain(uint8_t *seg, size_t payload_len, bool self_contained);

/* The lz4 counterpart: seg[TDM_SEGMENT_HEADER_LZ4, +payload_len) holds the plain payload and the caller
 * owns TDM_SEGMENT_SEAL_LZ4_ROOM(payload_len) bytes at seg (the room past the payload is the
 * compressor's scratch). Compresses in place, or leaves the payload stored when it would not shrink.
 * Returns the segment size. */
#define TDM_SEGMENT_SEAL_LZ4_ROOM(n) (TDM_SEGMENT_HEADER_LZ4 + 2 * (size_t)(n) + TDM_SEGMENT_CRC_BYTES)
size_t tdm_segment_seal_lz4(uint8_t *seg, size_t payload_len, bool self_contained);

/* lz4 segments built straight from a payload in two pieces, prefix[0..plen) (plen <=
 * TDM_SEGMENT_LZ4_PREFIX_MAX: an envelope header) and src[0..n), without gathering them first: src is
 * compressed into out and the prefix joins the block's first literal run (a valid lz4 block of
 * prefix + src; match offsets are relative, so they are unchanged). Stored, with both pieces copied,
 * when compression would not shrink the payload. out must hold TDM_SEGMENT_LZ4_ROOM(plen + n) bytes
 * (the stored size: nothing more is ever needed); the segment lands at out + *start (0 or 1), so the
 * caller references [*start, *start + size) and nothing moves. z is a reusable compressor state (one
 * per worker or connection: it saves lz4 a 16 KiB reset per call), or NULL for a one-off state.
 * Returns the segment size. */
#define TDM_SEGMENT_LZ4_PREFIX_MAX 16u
#define TDM_SEGMENT_LZ4_ROOM(n) (TDM_SEGMENT_HEADER_LZ4 + (size_t)(n) + TDM_SEGMENT_CRC_BYTES)
/* The compressor state: embeddable, and a zeroed one is valid (it is set up on first use). Its storage
 * holds an LZ4_stream_t (segment.c checks the size against the lz4 it is built with). */
#define TDM_SEGMENT_LZ4_STATE_WORDS 2052 /* 16416 bytes: lz4 1.9's LZ4_STREAM_MINSIZE */
typedef struct tdm_segment_lz4_s {
  bool ready;                                 /* state holds an initialised LZ4_stream_t */
  uint64_t state[TDM_SEGMENT_LZ4_STATE_WORDS]; /* the LZ4_stream_t (8-byte aligned, as lz4 requires) */
} tdm_segment_lz4_t;
tdm_segment_lz4_t *tdm_segment_lz4_new(void); /* a heap one; NULL when out of memory */
void tdm_segment_lz4_free(tdm_segment_lz4_t *z);
size_t tdm_segment_build_lz4(tdm_segment_lz4_t *z, const uint8_t *prefix, size_t plen, const uint8_t *src, size_t n,
                             bool self_contained, uint8_t *out, size_t *start);

/* lz4 segment of a payload the caller gathered at out + TDM_SEGMENT_HEADER_LZ4 (payload_len bytes) in a
 * buffer of TDM_SEGMENT_LZ4_GATHER_ROOM(payload_len) bytes: compressed into the room after it, or
 * stored in place; nothing moves (a compressed segment starts right after the plain payload, a stored
 * one at 0). *start gets the segment's offset in out; returns its size. z as above. */
#define TDM_SEGMENT_LZ4_GATHER_ROOM(n) (2 * TDM_SEGMENT_HEADER_LZ4 + 2 * (size_t)(n) + TDM_SEGMENT_CRC_BYTES)
size_t tdm_segment_seal_lz4_gathered(tdm_segment_lz4_t *z, uint8_t *out, size_t payload_len, bool self_contained,
                                     size_t *start);

#endif
