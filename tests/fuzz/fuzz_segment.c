/* libFuzzer target: v5 segments and the envelope reader. The first byte is the mode (bit 0 lz4, bit 1
 * check CRCs, bit 2 feed in two pieces at a split from the second byte, bits 3-4 the envelope limit).
 * Segments are decoded with the CRC on and off; then the envelope reader runs over the same bytes,
 * every envelope it yields is re-encoded by the envelope writer and read back, and the two sequences
 * must match. Without CRC checks random bytes reach reassembly, lz4 and the protocol-error paths. */
#include <tandem/proto/envelope.h>

#define FUZZ_MAX_ENVS 64 /* envelopes compared per input */

typedef struct fuzz_env_s {
  tdm_frame_header_t h; /* header as decoded */
  uint8_t *bytes;       /* copy of header + body */
  size_t len;           /* bytes */
} fuzz_env_t;

/* Runs a reader over in[0..len) in up to two deliveries; copies envelopes out. Returns the count. */
static size_t read_envs(tdm_envelope_reader_t *r, const uint8_t *in, size_t len, size_t split, fuzz_env_t *out)
{
  size_t count = 0, start = 0;
  size_t ends[2] = { split, len };
  for (int piece = 0; piece < 2; piece++) {
    for (;;) {
      tdm_envelope_t env;
      size_t consumed = 0;
      int rc = tdm_envelope_read(r, in + start, ends[piece] - start, &consumed, &env);
      TDM_ASSERT(consumed <= ends[piece] - start);
      start += consumed;
      if (rc == TDM_EPROTO_TOO_LARGE) {
        TDM_ASSERT(env.data == NULL);
        continue;
      }
      if (rc < 0) {
        TDM_ASSERT(rc == TDM_EPROTO_MALFORMED || rc == TDM_EPROTO_CRC || rc == TDM_EPROTO_COMPRESS);
        TDM_ASSERT(tdm_envelope_read(r, in, len, &consumed, &env) == rc); /* sticky */
        return count;
      }
      if (rc == 0) break;
      TDM_ASSERT(env.len == TDM_ENVELOPE_HEADER + env.header.length && env.body == env.data + TDM_ENVELOPE_HEADER);
      TDM_ASSERT((env.header.flags & TDM_FLAG_COMPRESSED) == 0);
      if (env.borrowed) TDM_ASSERT(env.data >= in + start && env.data + env.len <= in + ends[piece]);
      if (count < FUZZ_MAX_ENVS) {
        out[count].h = env.header;
        out[count].len = env.len;
        out[count].bytes = malloc(env.len);
        TDM_ASSERT(out[count].bytes);
        memcpy(out[count].bytes, env.data, env.len);
        count++;
      }
    }
  }
  return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2) return 0;
  uint8_t mode = data[0];
  bool lz4 = mode & 1, crc = mode & 2;
  size_t split = (mode & 4) ? (size_t)data[1] * 97 : SIZE_MAX;
  static const uint32_t limits[4] = { 0, 16, 300, 200000 };
  data += 2;
  size -= 2;
  if (split > size) split = size;

  /* plain segment decoding, CRC on and off */
  static uint8_t plain[TDM_SEGMENT_MAX_PAYLOAD];
  for (int check = 0; check < 2; check++) {
    size_t off = 0;
    while (off < size) {
      tdm_segment_t seg;
      int n = tdm_segment_decode(data + off, size - off, lz4, check, &seg);
      if (n <= 0) break;
      TDM_ASSERT((size_t)n <= size - off && seg.payload_len <= TDM_SEGMENT_MAX_PAYLOAD);
      TDM_ASSERT(seg.uncompressed_len <= TDM_SEGMENT_MAX_PAYLOAD);
      int rc = tdm_segment_payload(&seg, plain, sizeof(plain));
      TDM_ASSERT(rc == 0 || rc == TDM_EPROTO_COMPRESS);
      off += (size_t)n;
    }
  }

  /* the envelope reader, then a writer round trip of whatever it produced */
  static fuzz_env_t first[FUZZ_MAX_ENVS], second[FUZZ_MAX_ENVS];
  tdm_envelope_reader_t r = { .lz4 = lz4, .skip_crc = !crc, .max_frame_bytes = limits[(mode >> 3) & 3] };
  size_t n1 = read_envs(&r, data, size, split, first);
  tdm_envelope_reader_free(&r);

  tdm_envelope_writer_t w = { .lz4 = (mode & 0x20) != 0 };
  for (size_t i = 0; i < n1; i++) TDM_ASSERT(tdm_envelope_writer_add_envelope(&w, first[i].bytes, first[i].len) == 0);
  uint8_t *wire = NULL;
  size_t wire_len = 0;
  TDM_ASSERT(tdm_envelope_writer_take(&w, &wire, &wire_len) == 0);
  tdm_envelope_writer_free(&w);
  tdm_envelope_reader_t r2 = { .lz4 = (mode & 0x20) != 0 };
  size_t n2 = read_envs(&r2, wire ? wire : (const uint8_t *)"", wire_len, wire_len / 2, second);
  tdm_envelope_reader_free(&r2);
  TDM_ASSERT(n2 == n1);
  for (size_t i = 0; i < n1; i++) {
    TDM_ASSERT(second[i].len == first[i].len);
    TDM_ASSERT(second[i].h.stream == first[i].h.stream && second[i].h.opcode == first[i].h.opcode);
    /* identical except flag 0x01, which the writer clears */
    TDM_ASSERT(memcmp(second[i].bytes + 2, first[i].bytes + 2, first[i].len - 2) == 0);
    TDM_ASSERT(second[i].bytes[1] == (first[i].bytes[1] & (uint8_t)~TDM_FLAG_COMPRESSED));
    free(first[i].bytes);
    free(second[i].bytes);
  }
  free(wire);
  return 0;
}
