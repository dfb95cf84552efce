/* Body compression for protocol v3/v4 (and DSE): lz4 = 4-byte big-endian uncompressed length + one
 * LZ4 block; snappy = one raw snappy block. Declared uncompressed sizes are checked against a limit
 * before anything is allocated (decompression bombs are refused). */
#ifndef TANDEM_PROTO_COMPRESS_H
#define TANDEM_PROTO_COMPRESS_H

#include <tandem/common.h>
#include <tandem/util/str.h>

typedef enum tdm_compression {
  TDM_COMPRESSION_NONE = 0,
  TDM_COMPRESSION_LZ4,
  TDM_COMPRESSION_SNAPPY,
} tdm_compression_t;

/* Parses a STARTUP COMPRESSION value (case-insensitive "lz4" / "snappy"); TDM_EINVAL otherwise. */
TDM_MUSTCHECK int tdm_compression_parse(tdm_str_t name, tdm_compression_t *out);
const char *tdm_compression_name(tdm_compression_t c); /* "none", "lz4", "snappy" */

/* Reads the declared uncompressed length of a compressed body without decompressing it. */
TDM_MUSTCHECK int tdm_body_uncompressed_length(tdm_compression_t c, const uint8_t *in, size_t in_len, size_t *out_len);

/* Decompresses into a new malloc'd buffer. TDM_EPROTO_TOO_LARGE if the declared length > max_out
 * (nothing allocated); TDM_EPROTO_COMPRESS on corrupt input or a length mismatch. */
TDM_MUSTCHECK int tdm_body_decompress(tdm_compression_t c, const uint8_t *in, size_t in_len, size_t max_out,
                                      uint8_t **out, size_t *out_len);

/* As tdm_body_decompress, into the caller's out[0..cap) (a pooled buffer): TDM_EPROTO_TOO_LARGE when
 * the declared length > cap, before anything is written. */
TDM_MUSTCHECK int tdm_body_decompress_to(tdm_compression_t c, const uint8_t *in, size_t in_len, uint8_t *out,
                                         size_t cap, size_t *out_len);

/* Compresses into a new malloc'd buffer in the body format of algorithm c. */
TDM_MUSTCHECK int tdm_body_compress(tdm_compression_t c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

#endif
