/* libFuzzer target: CQL frame headers and whole frames. Decodes the input as a stream of frames under a
 * limit taken from the first byte, checks the tri-state contract (need-more for every prefix shorter
 * than a frame, TOO_LARGE with the header filled, sizes within the input) and that encode(decode(h))
 * reproduces the header bytes, and stream patching changes only the stream id. */
#include <tandem/proto/frame.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  static const uint32_t limits[4] = { 0, 64, 4096, UINT32_MAX };
  uint32_t limit = limits[data[0] & 3];
  data++;
  size--;

  size_t off = 0;
  while (off < size) {
    tdm_frame_header_t h;
    const uint8_t *body = NULL;
    int n = tdm_frame_decode(data + off, size - off, limit, &h, &body);
    if (n == 0) {
      /* need more: the header alone must say the same about this prefix */
      int hn = tdm_frame_header_decode(data + off, size - off, limit, &h);
      TDM_ASSERT(hn >= 0);
      break;
    }
    if (n < 0) {
      TDM_ASSERT(n == TDM_EPROTO_TOO_LARGE);
      TDM_ASSERT(h.length > limit || h.length > (uint32_t)INT32_MAX - TDM_FRAME_HEADER_MAX);
      break;
    }
    size_t hsize = tdm_frame_header_size(data[off]);
    TDM_ASSERT((size_t)n == hsize + h.length && (size_t)n <= size - off);
    TDM_ASSERT(body == data + off + hsize);
    /* every shorter prefix needs more */
    TDM_ASSERT(tdm_frame_decode(data + off, (size_t)n - 1, limit, &h, &body) == 0);
    TDM_ASSERT(tdm_frame_decode(data + off, (size_t)n, limit, &h, &body) == n);

    uint8_t enc[TDM_FRAME_HEADER_MAX];
    TDM_ASSERT(tdm_frame_header_encode(&h, enc) == hsize);
    TDM_ASSERT(memcmp(enc, data + off, hsize) == 0);

    int16_t other = hsize == 8 ? (int16_t)(int8_t)(h.stream ^ 0x55) : (int16_t)(h.stream ^ 0x5A5A);
    tdm_frame_patch_stream(enc, other);
    tdm_frame_header_t p;
    TDM_ASSERT(tdm_frame_header_decode(enc, hsize, UINT32_MAX, &p) == (int)hsize);
    TDM_ASSERT(p.stream == other && p.opcode == h.opcode && p.length == h.length && p.flags == h.flags &&
               p.version == h.version && p.response == h.response);
    off += (size_t)n;
  }
  return 0;
}
