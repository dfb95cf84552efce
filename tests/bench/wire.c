/* tdm-bench wire codec. Output layout, invariant: out[0..out_len) is whole frames or sealed segments,
 * ready for the socket; when seg_open, an unsealed segment follows at out + out_len: its header room
 * (6 or 8 bytes), then seg_payload bytes of envelopes. Sealing writes header and CRC around the payload
 * in place (lz4 compresses there), so each request byte is written once before the socket copy. */
#include <tandem/proto/segment.h>

#include "wire.h"

void tdm_bench_wire_init(tdm_bench_wire_t *w, uint8_t version, tdm_compression_t compression)
{
  memset(w, 0, sizeof(*w));
  w->version = version;
  w->compression = compression;
  w->reader.max_frame_bytes = TDM_BENCH_WIRE_MAX_BODY;
  w->reader.lz4 = version == TDM_PROTO_V5 && compression == TDM_COMPRESSION_LZ4;
}

void tdm_bench_wire_free(tdm_bench_wire_t *w)
{
  free(w->out);
  free(w->scratch);
  free(w->plain);
  tdm_envelope_reader_free(&w->reader);
  w->out = w->scratch = w->plain = NULL;
  w->out_len = w->out_cap = w->scratch_cap = 0;
  w->seg_open = false;
}

void tdm_bench_wire_start(tdm_bench_wire_t *w)
{
  if (tdm_proto_has_segments(w->version)) w->framed = true;
  else w->compress_bodies = w->compression != TDM_COMPRESSION_NONE;
}

static bool seg_lz4(const tdm_bench_wire_t *w) { return w->compression == TDM_COMPRESSION_LZ4; }
static size_t seg_header(const tdm_bench_wire_t *w) { return seg_lz4(w) ? TDM_SEGMENT_HEADER_LZ4 : TDM_SEGMENT_HEADER_PLAIN; }

/* Room an open segment of payload bytes needs from its start to be sealed in place. */
static size_t seg_room(const tdm_bench_wire_t *w, size_t payload)
{
  return seg_lz4(w) ? TDM_SEGMENT_SEAL_LZ4_ROOM(payload) : TDM_SEGMENT_HEADER_PLAIN + payload + TDM_SEGMENT_CRC_BYTES;
}

static bool reserve(uint8_t **buf, size_t *cap, size_t need)
{
  if (need <= *cap) return true;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  uint8_t *p = realloc(*buf, n);
  if (!p) return false;
  *buf = p;
  *cap = n;
  return true;
}

int tdm_bench_wire_seal(tdm_bench_wire_t *w)
{
  if (!w->seg_open) return 0;
  uint8_t *seg = w->out + w->out_len;
  size_t n = seg_lz4(w) ? tdm_segment_seal_lz4(seg, w->seg_payload, true) : tdm_segment_seal_plain(seg, w->seg_payload, true);
  w->out_len += n;
  w->seg_open = false;
  w->seg_payload = 0;
  return 0;
}

static void put_header(uint8_t *p, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode, size_t len)
{
  tdm_frame_header_t h = { .version = version, .flags = flags, .stream = stream, .opcode = opcode,
                           .length = (uint32_t)len };
  (void)tdm_frame_header_encode(&h, p);
}

uint8_t *tdm_bench_wire_begin(tdm_bench_wire_t *w, uint8_t opcode, int16_t stream, size_t body_len)
{
  w->pending_body = body_len;
  w->pending_opcode = opcode;
  w->pending_stream = stream;
  if (w->framed) {
    size_t env = TDM_ENVELOPE_HEADER + body_len;
    if (env > TDM_SEGMENT_MAX_PAYLOAD) return NULL; /* the benchmark never sends multi-segment requests */
    if (w->seg_open && w->seg_payload + env > TDM_SEGMENT_MAX_PAYLOAD && tdm_bench_wire_seal(w)) return NULL;
    if (!reserve(&w->out, &w->out_cap, w->out_len + seg_room(w, w->seg_payload + env))) return NULL;
    if (!w->seg_open) {
      w->seg_open = true;
      w->seg_payload = 0;
    }
    uint8_t *p = w->out + w->out_len + seg_header(w) + w->seg_payload;
    put_header(p, w->version, 0, stream, opcode, body_len);
    w->seg_payload += env;
    return p + TDM_ENVELOPE_HEADER;
  }
  if (w->compress_bodies) {
    if (!reserve(&w->scratch, &w->scratch_cap, body_len ? body_len : 1)) return NULL;
    return w->scratch;
  }
  if (!reserve(&w->out, &w->out_cap, w->out_len + TDM_FRAME_HEADER_MAX + body_len)) return NULL;
  uint8_t *p = w->out + w->out_len;
  put_header(p, w->version, 0, stream, opcode, body_len);
  w->out_len += TDM_FRAME_HEADER_MAX + body_len;
  return p + TDM_FRAME_HEADER_MAX;
}

int tdm_bench_wire_end(tdm_bench_wire_t *w)
{
  if (w->framed || !w->compress_bodies) return 0;
  uint8_t *packed = NULL;
  size_t len = 0;
  int rc = tdm_body_compress(w->compression, w->scratch, w->pending_body, &packed, &len);
  if (rc) return rc;
  if (!reserve(&w->out, &w->out_cap, w->out_len + TDM_FRAME_HEADER_MAX + len)) {
    free(packed);
    return TDM_ENOMEM;
  }
  put_header(w->out + w->out_len, w->version, TDM_FLAG_COMPRESSED, w->pending_stream, w->pending_opcode, len);
  memcpy(w->out + w->out_len + TDM_FRAME_HEADER_MAX, packed, len);
  w->out_len += TDM_FRAME_HEADER_MAX + len;
  free(packed);
  return 0;
}

int tdm_bench_wire_add(tdm_bench_wire_t *w, uint8_t opcode, int16_t stream, const void *body, size_t len)
{
  uint8_t *p = tdm_bench_wire_begin(w, opcode, stream, len);
  if (!p) return TDM_ENOMEM;
  if (len) memcpy(p, body, len);
  return tdm_bench_wire_end(w);
}

void tdm_bench_wire_consumed(tdm_bench_wire_t *w, size_t n)
{
  TDM_ASSERT(n <= w->out_len);
  size_t keep = w->out_len - n + (w->seg_open ? seg_room(w, w->seg_payload) : 0);
  if (n && keep) memmove(w->out, w->out + n, keep);
  w->out_len -= n;
}

int tdm_bench_wire_next(tdm_bench_wire_t *w, const uint8_t *in, size_t len, size_t *consumed, tdm_bench_msg_t *msg)
{
  *consumed = 0;
  if (w->framed) {
    tdm_envelope_t env;
    int rc = tdm_envelope_read(&w->reader, in, len, consumed, &env);
    if (rc <= 0) return rc;
    msg->h = env.header;
    msg->body = env.body;
    msg->len = env.header.length;
    return 1;
  }
  const uint8_t *body;
  int rc = tdm_frame_decode(in, len, TDM_BENCH_WIRE_MAX_BODY, &msg->h, &body);
  if (rc <= 0) return rc;
  if (msg->h.version != w->version) return TDM_EPROTO_VERSION;
  msg->body = body;
  msg->len = msg->h.length;
  *consumed = (size_t)rc;
  return 1;
}

int tdm_bench_wire_body(tdm_bench_wire_t *w, const tdm_bench_msg_t *msg, const uint8_t **body, size_t *len)
{
  if (w->framed || !(msg->h.flags & TDM_FLAG_COMPRESSED) || w->compression == TDM_COMPRESSION_NONE) {
    *body = msg->body;
    *len = msg->len;
    return 0;
  }
  free(w->plain);
  w->plain = NULL;
  int rc = tdm_body_decompress(w->compression, msg->body, msg->len, TDM_BENCH_WIRE_MAX_BODY, &w->plain, len);
  if (rc) return rc;
  *body = w->plain;
  return 0;
}
