/* CQL frame header codec (v2's 8-byte header and the 9-byte header of v3+, DSE included). The decoder
 * is tri-state (need more / header size / error) and refuses a declared body over the caller's limit
 * before anyone allocates or waits for it; the whole-frame decoder points into the input, never copies.
 * Invariant: nothing here reads p[i] for i >= len. */
#include <limits.h>

#include <tandem/proto/frame.h>

static inline uint32_t get_be32(const uint8_t *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* A whole frame's size must fit the int these functions return: the effective body limit is the
 * smaller of max_body and INT_MAX minus the largest header. */
static inline uint32_t effective_limit(uint32_t max_body)
{
  return TDM_MIN(max_body, (uint32_t)INT_MAX - TDM_FRAME_HEADER_MAX);
}

int tdm_frame_header_decode(const uint8_t *p, size_t len, uint32_t max_body, tdm_frame_header_t *h)
{
  if (len == 0) return 0;
  size_t hsize = tdm_frame_header_size(p[0]);
  if (len < hsize) return 0;

  h->version = p[0] & TDM_PROTO_VERSION_MASK;
  h->response = (p[0] & TDM_PROTO_DIRECTION_RESPONSE) != 0;
  h->flags = p[1];
  if (hsize == 8) {
    h->stream = (int16_t)(int8_t)p[2]; /* v1/v2: one signed byte */
    h->opcode = p[3];
    h->length = get_be32(p + 4);
  } else {
    h->stream = (int16_t)(uint16_t)((p[2] << 8) | p[3]);
    h->opcode = p[4];
    h->length = get_be32(p + 5);
  }
  if (h->length > effective_limit(max_body)) return TDM_EPROTO_TOO_LARGE;
  return (int)hsize;
}

size_t tdm_frame_header_encode(const tdm_frame_header_t *h, uint8_t out[TDM_FRAME_HEADER_MAX])
{
  uint8_t version = (uint8_t)((h->version & TDM_PROTO_VERSION_MASK) | (h->response ? TDM_PROTO_DIRECTION_RESPONSE : 0));
  out[0] = version;
  out[1] = h->flags;
  if (tdm_frame_header_size(version) == 8) {
    /* v1/v2 ids are one byte; callers keep them in [-128, 127]. */
    TDM_ASSERT(h->stream >= INT8_MIN && h->stream <= INT8_MAX);
    out[2] = (uint8_t)(int8_t)h->stream;
    out[3] = h->opcode;
    put_be32(out + 4, h->length);
    return 8;
  }
  out[2] = (uint8_t)((uint16_t)h->stream >> 8);
  out[3] = (uint8_t)h->stream;
  out[4] = h->opcode;
  put_be32(out + 5, h->length);
  return 9;
}

int tdm_frame_decode(const uint8_t *p, size_t len, uint32_t max_body, tdm_frame_header_t *h, const uint8_t **body)
{
  int hsize = tdm_frame_header_decode(p, len, max_body, h);
  if (hsize <= 0) return hsize;
  /* hsize + length <= INT_MAX by effective_limit(), so the sum below neither wraps nor overflows. */
  size_t total = (size_t)hsize + h->length;
  if (len < total) return 0;
  *body = p + hsize;
  return (int)total;
}

void tdm_frame_patch_stream(uint8_t *header, int16_t stream)
{
  if (tdm_frame_header_size(header[0]) == 8) {
    TDM_ASSERT(stream >= INT8_MIN && stream <= INT8_MAX);
    header[2] = (uint8_t)(int8_t)stream;
    return;
  }
  header[2] = (uint8_t)((uint16_t)stream >> 8);
  header[3] = (uint8_t)stream;
}
