/* libFuzzer target: v4 body (de)compression. The first byte picks the algorithm and the output limit;
 * the rest is decompressed as a body (allocating and into a fixed buffer, which must agree) and also
 * compressed, then decompressed again: the round trip must give the input back. */
#include <tandem/proto/compress.h>

#define FUZZ_LIMIT (64u * 1024u) /* small, so bombs are refused early */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  static const tdm_compression_t algs[3] = { TDM_COMPRESSION_LZ4, TDM_COMPRESSION_SNAPPY, TDM_COMPRESSION_NONE };
  tdm_compression_t c = algs[(data[0] & 0x7F) % 3];
  size_t limit = (data[0] & 0x80) ? 256 : FUZZ_LIMIT;
  data++;
  size--;

  uint8_t *out = NULL;
  size_t out_len = 0, declared = 0;
  int rc = tdm_body_decompress(c, data, size, limit, &out, &out_len);
  int lrc = tdm_body_uncompressed_length(c, data, size, &declared);
  if (rc == 0) {
    TDM_ASSERT(lrc == 0 && out_len == declared && out_len <= limit);
  } else {
    TDM_ASSERT(out == NULL);
    TDM_ASSERT(rc == TDM_EPROTO_COMPRESS || rc == TDM_EPROTO_TOO_LARGE);
    if (rc == TDM_EPROTO_TOO_LARGE) TDM_ASSERT(lrc == 0 && declared > limit);
  }

  static uint8_t fixed[FUZZ_LIMIT];
  size_t fixed_len = 0;
  int frc = tdm_body_decompress_to(c, data, size, fixed, limit, &fixed_len);
  TDM_ASSERT(frc == rc);
  if (rc == 0) {
    TDM_ASSERT(fixed_len == out_len && (out_len == 0 || memcmp(fixed, out, out_len) == 0));
  }
  free(out);

  /* compress -> decompress is the identity */
  uint8_t *z = NULL, *back = NULL;
  size_t zn = 0, bn = 0;
  TDM_ASSERT(tdm_body_compress(c, data, size, &z, &zn) == 0);
  TDM_ASSERT(tdm_body_decompress(c, z, zn, size, &back, &bn) == 0);
  TDM_ASSERT(bn == size && (size == 0 || memcmp(back, data, size) == 0));
  free(z);
  free(back);
  return 0;
}
