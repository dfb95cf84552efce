/* v3/v4 (and DSE) body compression: lz4 (4-byte big-endian uncompressed length + one LZ4 block) and
 * snappy (one raw snappy block, whose varint prefix declares the length). Every decompression reads the
 * declared length first and refuses it against the caller's limit before a byte is allocated, then
 * checks that the block produced exactly that many bytes. */
#include <limits.h>
#include <lz4.h>
#include <snappy-c.h>

#include <tandem/proto/compress.h>

#define TDM_COMPRESS_LZ4_PREFIX 4u /* bytes of the lz4 body's length prefix */

int tdm_compression_parse(tdm_str_t name, tdm_compression_t *out)
{
  if (tdm_str_eq_ci(name, TDM_STR("lz4"))) {
    *out = TDM_COMPRESSION_LZ4;
    return 0;
  }
  if (tdm_str_eq_ci(name, TDM_STR("snappy"))) {
    *out = TDM_COMPRESSION_SNAPPY;
    return 0;
  }
  return TDM_EINVAL;
}

const char *tdm_compression_name(tdm_compression_t c)
{
  switch (c) {
  case TDM_COMPRESSION_NONE: return "none";
  case TDM_COMPRESSION_LZ4: return "lz4";
  case TDM_COMPRESSION_SNAPPY: return "snappy";
  }
  return "unknown";
}

int tdm_body_uncompressed_length(tdm_compression_t c, const uint8_t *in, size_t in_len, size_t *out_len)
{
  switch (c) {
  case TDM_COMPRESSION_NONE:
    *out_len = in_len;
    return 0;
  case TDM_COMPRESSION_LZ4:
    if (in_len < TDM_COMPRESS_LZ4_PREFIX) return TDM_EPROTO_COMPRESS;
    *out_len = ((size_t)in[0] << 24) | ((size_t)in[1] << 16) | ((size_t)in[2] << 8) | in[3];
    return 0;
  case TDM_COMPRESSION_SNAPPY:
    if (snappy_uncompressed_length((const char *)in, in_len, out_len) != SNAPPY_OK) return TDM_EPROTO_COMPRESS;
    return 0;
  }
  return TDM_EINVAL;
}

int tdm_body_decompress_to(tdm_compression_t c, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                           size_t *out_len)
{
  size_t declared;
  int rc = tdm_body_uncompressed_length(c, in, in_len, &declared);
  if (rc) return rc;
  if (declared > cap) return TDM_EPROTO_TOO_LARGE;

  switch (c) {
  case TDM_COMPRESSION_NONE:
    if (in_len) memcpy(out, in, in_len);
    *out_len = in_len;
    return 0;
  case TDM_COMPRESSION_LZ4: {
    size_t block = in_len - TDM_COMPRESS_LZ4_PREFIX;
    /* An empty body may travel as a bare zero prefix; a non-empty block must still decode to nothing. */
    if (declared == 0 && block == 0) {
      *out_len = 0;
      return 0;
    }
    if (declared > (size_t)INT_MAX || block > (size_t)INT_MAX) return TDM_EPROTO_COMPRESS;
    int n = LZ4_decompress_safe((const char *)in + TDM_COMPRESS_LZ4_PREFIX, (char *)out, (int)block, (int)declared);
    if (n < 0 || (size_t)n != declared) return TDM_EPROTO_COMPRESS;
    *out_len = declared;
    return 0;
  }
  case TDM_COMPRESSION_SNAPPY: {
    size_t n = declared;
    /* snappy checks that the block fills exactly the length its own prefix declared. */
    if (snappy_uncompress((const char *)in, in_len, (char *)out, &n) != SNAPPY_OK || n != declared)
      return TDM_EPROTO_COMPRESS;
    *out_len = n;
    return 0;
  }
  }
  return TDM_EINVAL;
}

int tdm_body_decompress(tdm_compression_t c, const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                        size_t *out_len)
{
  size_t declared;
  int rc = tdm_body_uncompressed_length(c, in, in_len, &declared);
  if (rc) return rc;
  if (declared > max_out) return TDM_EPROTO_TOO_LARGE;
  if (c == TDM_COMPRESSION_LZ4 && declared > (size_t)INT_MAX) return TDM_EPROTO_COMPRESS; /* LZ4 cannot make it */

  uint8_t *buf = malloc(declared ? declared : 1); /* never malloc(0): an empty body still gets a pointer */
  if (!buf) return TDM_ENOMEM;
  rc = tdm_body_decompress_to(c, in, in_len, buf, declared, out_len);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  return 0;
}

int tdm_body_compress(tdm_compression_t c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
  uint8_t *buf = NULL;
  switch (c) {
  case TDM_COMPRESSION_NONE:
    buf = malloc(in_len ? in_len : 1);
    if (!buf) return TDM_ENOMEM;
    if (in_len) memcpy(buf, in, in_len);
    *out = buf;
    *out_len = in_len;
    return 0;
  case TDM_COMPRESSION_LZ4: {
    if (in_len > LZ4_MAX_INPUT_SIZE) return TDM_EINVAL;
    int bound = LZ4_compressBound((int)in_len);
    buf = malloc(TDM_COMPRESS_LZ4_PREFIX + (size_t)bound);
    if (!buf) return TDM_ENOMEM;
    buf[0] = (uint8_t)(in_len >> 24);
    buf[1] = (uint8_t)(in_len >> 16);
    buf[2] = (uint8_t)(in_len >> 8);
    buf[3] = (uint8_t)in_len;
    int n = LZ4_compress_default((const char *)in, (char *)buf + TDM_COMPRESS_LZ4_PREFIX, (int)in_len, bound);
    if (n <= 0) {
      free(buf);
      return TDM_EINVAL;
    }
    *out = buf;
    *out_len = TDM_COMPRESS_LZ4_PREFIX + (size_t)n;
    return 0;
  }
  case TDM_COMPRESSION_SNAPPY: {
    size_t n = snappy_max_compressed_length(in_len);
    buf = malloc(n);
    if (!buf) return TDM_ENOMEM;
    if (snappy_compress((const char *)in, in_len, (char *)buf, &n) != SNAPPY_OK) {
      free(buf);
      return TDM_EINVAL;
    }
    *out = buf;
    *out_len = n;
    return 0;
  }
  }
  return TDM_EINVAL;
}
