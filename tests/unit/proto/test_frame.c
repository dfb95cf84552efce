/* Frame header codec: every header version (v2's 8 bytes, v3/v4/v5/DSE's 9), both directions, negative
 * stream ids, the body limit (TOO_LARGE with the header filled), need-more at every split point, stream
 * patching, a multi-frame stream fed at every split point, and captured v3/v4 Cassandra traffic (every
 * frame's opcode and direction, lz4/snappy bodies decompressed) fed at every split point. */
#include "testlib.h"

#include <tandem/proto/compress.h>
#include <tandem/proto/frame.h>

/* ---- header codec ---- */

typedef struct hdr_case_s {
  const char *hex;         /* wire bytes */
  tdm_frame_header_t want; /* decoded form */
} hdr_case_t;

static const hdr_case_t hdr_cases[] = {
  /* v2 request, 1-byte stream id */
  { "02 00 05 07 00000010", { TDM_PROTO_V2, false, 0x00, 5, TDM_OP_QUERY, 16 } },
  /* v2 response, stream -1 (event) */
  { "82 00 ff 0c 00000000", { TDM_PROTO_V2, true, 0x00, -1, TDM_OP_EVENT, 0 } },
  /* v2 stream -128 */
  { "82 08 80 08 00000004", { TDM_PROTO_V2, true, 0x08, -128, TDM_OP_RESULT, 4 } },
  /* v3 request */
  { "03 00 00 01 01 00000016", { TDM_PROTO_V3, false, 0x00, 1, TDM_OP_STARTUP, 22 } },
  /* v4 request with tracing + compression, stream 0x7fff */
  { "04 03 7f ff 07 00000100", { TDM_PROTO_V4, false, 0x03, 32767, TDM_OP_QUERY, 256 } },
  /* v4 response, stream -1 */
  { "84 00 ff ff 0c 00000020", { TDM_PROTO_V4, true, 0x00, -1, TDM_OP_EVENT, 32 } },
  /* v5 request, stream -32768 */
  { "05 10 80 00 05 00000000", { TDM_PROTO_V5, false, 0x10, -32768, TDM_OP_OPTIONS, 0 } },
  /* v5 response with warning */
  { "85 08 01 02 08 0001e240", { TDM_PROTO_V5, true, 0x08, 0x0102, TDM_OP_RESULT, 123456 } },
  /* DSE_V1 request */
  { "41 00 00 2a 0a 00000008", { TDM_PROTO_DSE_V1, false, 0x00, 42, TDM_OP_EXECUTE, 8 } },
  /* DSE_V2 response */
  { "c2 04 12 34 00 00000009", { TDM_PROTO_DSE_V2, true, 0x04, 0x1234, TDM_OP_ERROR, 9 } },
};

static void assert_header_eq(const tdm_frame_header_t *a, const tdm_frame_header_t *b)
{
  assert_int_equal(a->version, b->version);
  assert_int_equal(a->response, b->response);
  assert_int_equal(a->flags, b->flags);
  assert_int_equal(a->stream, b->stream);
  assert_int_equal(a->opcode, b->opcode);
  assert_int_equal(a->length, b->length);
}

static void test_header_versions(void **state)
{
  for (size_t i = 0; i < TDM_ARRAY_SIZE(hdr_cases); i++) {
    size_t n;
    uint8_t *wire = tdm_test_hex(hdr_cases[i].hex, &n);
    tdm_frame_header_t h;
    memset(&h, 0xAB, sizeof(h));
    assert_int_equal(tdm_frame_header_decode(wire, n, UINT32_MAX, &h), (int)n);
    assert_int_equal(n, tdm_frame_header_size(wire[0]));
    assert_header_eq(&h, &hdr_cases[i].want);

    uint8_t out[TDM_FRAME_HEADER_MAX];
    assert_int_equal(tdm_frame_header_encode(&hdr_cases[i].want, out), n);
    assert_memory_equal(out, wire, n);

    /* need-more at every split point, and never a read past len (ASan: exact-size copy) */
    for (size_t k = 0; k < n; k++) {
      uint8_t *part = malloc(k ? k : 1);
      memcpy(part, wire, k);
      assert_int_equal(tdm_frame_header_decode(part, k, UINT32_MAX, &h), 0);
      free(part);
    }
    free(wire);
  }
}

static void test_header_sizes(void **state)
{
  assert_int_equal(tdm_frame_header_size(0x01), 8);
  assert_int_equal(tdm_frame_header_size(0x82), 8);
  assert_int_equal(tdm_frame_header_size(0x03), 9);
  assert_int_equal(tdm_frame_header_size(0x85), 9);
  assert_int_equal(tdm_frame_header_size(0x42), 9);
  assert_int_equal(tdm_frame_header_size(0xC1), 9);
}

static void test_header_too_large(void **state)
{
  size_t n;
  uint8_t *wire = tdm_test_hex("04 00 00 07 07 00000101", &n);
  tdm_frame_header_t h;
  assert_int_equal(tdm_frame_header_decode(wire, n, 256, &h), TDM_EPROTO_TOO_LARGE);
  /* the caller answers on the right stream, so the header is filled */
  assert_int_equal(h.stream, 7);
  assert_int_equal(h.opcode, TDM_OP_QUERY);
  assert_int_equal(h.length, 257);
  assert_int_equal(tdm_frame_header_decode(wire, n, 257, &h), 9);
  /* whole-frame decode refuses before waiting for the body */
  const uint8_t *body = NULL;
  assert_int_equal(tdm_frame_decode(wire, n, 256, &h, &body), TDM_EPROTO_TOO_LARGE);
  assert_null(body);
  free(wire);

  /* v2 header, limit exceeded */
  wire = tdm_test_hex("02 00 03 07 00010000", &n);
  assert_int_equal(tdm_frame_header_decode(wire, n, 0xFFFF, &h), TDM_EPROTO_TOO_LARGE);
  assert_int_equal(h.stream, 3);
  assert_int_equal(h.length, 0x10000);
  free(wire);

  /* A length whose frame would not fit an int is refused even with no configured limit. */
  wire = tdm_test_hex("04 00 00 01 07 ffffffff", &n);
  assert_int_equal(tdm_frame_header_decode(wire, n, UINT32_MAX, &h), TDM_EPROTO_TOO_LARGE);
  assert_int_equal(h.length, 0xFFFFFFFFu);
  free(wire);
}

static void test_encode_direction_bit(void **state)
{
  tdm_frame_header_t h = { .version = TDM_PROTO_V4, .response = true, .stream = 3, .opcode = TDM_OP_READY };
  uint8_t out[TDM_FRAME_HEADER_MAX];
  assert_int_equal(tdm_frame_header_encode(&h, out), 9);
  assert_int_equal(out[0], 0x84);
  /* a version byte carrying the direction bit is normalised by the response field */
  h.version = 0x84;
  h.response = false;
  assert_int_equal(tdm_frame_header_encode(&h, out), 9);
  assert_int_equal(out[0], 0x04);
}

static void test_frame_decode_body(void **state)
{
  size_t n;
  uint8_t *wire = tdm_test_hex("84 00 00 05 02 00000003 aabbcc dd", &n); /* one trailing byte of the next frame */
  tdm_frame_header_t h;
  const uint8_t *body = NULL;
  for (size_t k = 0; k < 12; k++) assert_int_equal(tdm_frame_decode(wire, k, 100, &h, &body), 0);
  assert_int_equal(tdm_frame_decode(wire, 12, 100, &h, &body), 12);
  assert_ptr_equal(body, wire + 9);
  assert_int_equal(tdm_frame_decode(wire, n, 100, &h, &body), 12);
  assert_int_equal(h.opcode, TDM_OP_READY);
  free(wire);

  /* v2: body right after the 8-byte header */
  wire = tdm_test_hex("02 00 7f 07 00000002 0102", &n);
  assert_int_equal(tdm_frame_decode(wire, n, 100, &h, &body), 10);
  assert_ptr_equal(body, wire + 8);
  assert_int_equal(h.stream, 127);
  free(wire);
}

static void test_patch_stream(void **state)
{
  size_t n;
  uint8_t *wire = tdm_test_hex("04 00 00 01 07 00000000", &n);
  tdm_frame_header_t h;
  tdm_frame_patch_stream(wire, -2);
  assert_int_equal(wire[2], 0xff);
  assert_int_equal(wire[3], 0xfe);
  assert_int_equal(tdm_frame_header_decode(wire, n, 0, &h), 9);
  assert_int_equal(h.stream, -2);
  tdm_frame_patch_stream(wire, 0x1234);
  assert_int_equal(tdm_frame_header_decode(wire, n, 0, &h), 9);
  assert_int_equal(h.stream, 0x1234);
  assert_int_equal(h.opcode, TDM_OP_QUERY);
  free(wire);

  wire = tdm_test_hex("02 00 01 07 00000000", &n);
  tdm_frame_patch_stream(wire, -5);
  assert_int_equal(tdm_frame_header_decode(wire, n, 0, &h), 8);
  assert_int_equal(h.stream, -5);
  assert_int_equal(wire[3], TDM_OP_QUERY); /* the opcode byte is untouched */
  free(wire);
}

/* ---- a multi-frame stream through a consumer, at every split point ---- */

typedef struct frames_ctx_s {
  uint32_t max_body;    /* limit passed to the decoder */
  int count;            /* frames decoded */
  int16_t streams[16];  /* their stream ids */
  uint8_t opcodes[16];  /* their opcodes */
  uint32_t lengths[16]; /* their body lengths */
  uint8_t startup_body[4]; /* first bytes of the second frame's body (copied: buffers move) */
} frames_ctx_t;

static int consume_frames(const uint8_t *buf, size_t len, void *vctx)
{
  frames_ctx_t *c = vctx;
  size_t used = 0;
  for (;;) {
    tdm_frame_header_t h;
    const uint8_t *body;
    int rc = tdm_frame_decode(buf + used, len - used, c->max_body, &h, &body);
    if (rc < 0) return rc;
    if (rc == 0) return (int)used;
    assert_true(c->count < 16);
    if (c->count == 1) memcpy(c->startup_body, body, TDM_MIN(h.length, 4u));
    c->streams[c->count] = h.stream;
    c->opcodes[c->count] = h.opcode;
    c->lengths[c->count] = h.length;
    c->count++;
    used += (size_t)rc;
  }
}

static const char *stream_hex =
  "04 00 00 00 05 00000000"                         /* OPTIONS */
  "04 00 00 01 01 00000016 0001 000b 43514c5f56455253494f4e 0005 332e302e30" /* STARTUP */
  "84 00 ff ff 0c 00000002 beef"                    /* EVENT, stream -1 */
  "84 00 00 01 02 00000000";                        /* READY */

static void test_stream_every_split(void **state)
{
  size_t n;
  uint8_t *wire = tdm_test_hex(stream_hex, &n);
  for (size_t split = 0; split <= n; split++) {
    frames_ctx_t c = { .max_body = 1024 };
    size_t left = 99;
    assert_int_equal(tdm_test_feed_split(wire, n, split, consume_frames, &c, &left), 0);
    assert_int_equal(left, 0);
    assert_int_equal(c.count, 4);
    assert_int_equal(c.opcodes[0], TDM_OP_OPTIONS);
    assert_int_equal(c.opcodes[1], TDM_OP_STARTUP);
    assert_int_equal(c.lengths[1], 22);
    assert_memory_equal(c.startup_body, "\x00\x01\x00\x0b", 4);
    assert_int_equal(c.streams[2], -1);
    assert_int_equal(c.opcodes[3], TDM_OP_READY);
  }
  /* and one byte at a time */
  frames_ctx_t c = { .max_body = 1024 };
  assert_int_equal(tdm_test_feed_step(wire, n, 1, consume_frames, &c, NULL), 0);
  assert_int_equal(c.count, 4);
  /* a limit below STARTUP's body stops the feed with the error, the header already filled */
  frames_ctx_t small = { .max_body = 10 };
  assert_int_equal(tdm_test_feed_step(wire, n, 3, consume_frames, &small, NULL), TDM_EPROTO_TOO_LARGE);
  assert_int_equal(small.count, 1);
  free(wire);
}

/* ---- captured v3/v4 traffic (tests/data/vectors, recorded from Cassandra 5.0) ---- */

typedef struct vec_ctx_s {
  tdm_compression_t comp;  /* negotiated compression, applied to frames after STARTUP */
  bool response;           /* direction of the file */
  uint8_t version;         /* expected protocol version */
  int frames;              /* frames decoded */
  int compressed;          /* frames with flag 0x01 whose body decompressed */
  int opcode_seen[256];    /* count per opcode */
  int bad;                 /* frames with the wrong version or direction */
} vec_ctx_t;

static int consume_vector(const uint8_t *buf, size_t len, void *vctx)
{
  vec_ctx_t *c = vctx;
  size_t used = 0;
  for (;;) {
    tdm_frame_header_t h;
    const uint8_t *body;
    int rc = tdm_frame_decode(buf + used, len - used, 256u << 20, &h, &body);
    if (rc < 0) return rc;
    if (rc == 0) return (int)used;
    if (h.version != c->version || h.response != c->response) c->bad++;
    c->opcode_seen[h.opcode]++;
    c->frames++;
    if (h.flags & TDM_FLAG_COMPRESSED) {
      uint8_t *plain = NULL;
      size_t plain_len = 0;
      size_t declared = 0;
      assert_int_not_equal(c->comp, TDM_COMPRESSION_NONE);
      assert_int_equal(tdm_body_uncompressed_length(c->comp, body, h.length, &declared), 0);
      assert_int_equal(tdm_body_decompress(c->comp, body, h.length, 1u << 24, &plain, &plain_len), 0);
      assert_int_equal(plain_len, declared);
      free(plain);
      c->compressed++;
    }
    used += (size_t)rc;
  }
}

typedef struct vec_file_s {
  const char *name;       /* vector file stem under tests/data/vectors */
  uint8_t version;        /* protocol version */
  tdm_compression_t comp; /* compression negotiated */
} vec_file_t;

static const vec_file_t vec_files[] = {
  { "v4-none", TDM_PROTO_V4, TDM_COMPRESSION_NONE },
  { "v4-lz4", TDM_PROTO_V4, TDM_COMPRESSION_LZ4 },
  { "v4-snappy", TDM_PROTO_V4, TDM_COMPRESSION_SNAPPY },
  { "v3-none", TDM_PROTO_V3, TDM_COMPRESSION_NONE },
};

static void check_vector(const vec_file_t *vf, bool response, int *files)
{
  char path[256];
  size_t n;
  snprintf(path, sizeof(path), "tests/data/vectors/%s.%s.hex", vf->name, response ? "s2c" : "c2s");
  uint8_t *wire = tdm_test_hex_file(path, &n);
  if (!wire) return;
  (*files)++;

  vec_ctx_t whole = { .comp = vf->comp, .response = response, .version = vf->version };
  size_t left = 1;
  assert_int_equal(tdm_test_feed_split(wire, n, n, consume_vector, &whole, &left), 0);
  assert_int_equal(left, 0);
  assert_int_equal(whole.bad, 0);
  assert_true(whole.frames >= 6);
  if (response) {
    assert_true(whole.opcode_seen[TDM_OP_SUPPORTED] >= 1);
    assert_true(whole.opcode_seen[TDM_OP_READY] >= 1);
    assert_true(whole.opcode_seen[TDM_OP_RESULT] >= 4);
    assert_true(whole.opcode_seen[TDM_OP_ERROR] >= 1); /* the bad query */
  } else {
    assert_true(whole.opcode_seen[TDM_OP_OPTIONS] >= 1);
    assert_true(whole.opcode_seen[TDM_OP_STARTUP] >= 1);
    assert_true(whole.opcode_seen[TDM_OP_QUERY] >= 3);
    assert_true(whole.opcode_seen[TDM_OP_PREPARE] >= 1);
    assert_true(whole.opcode_seen[TDM_OP_EXECUTE] >= 1);
    assert_true(whole.opcode_seen[TDM_OP_BATCH] >= 1);
  }
  if (vf->comp != TDM_COMPRESSION_NONE) assert_true(whole.compressed >= 1);

  /* every split point gives the same frames */
  for (size_t split = 0; split <= n; split++) {
    vec_ctx_t c = { .comp = vf->comp, .response = response, .version = vf->version };
    assert_int_equal(tdm_test_feed_split(wire, n, split, consume_vector, &c, &left), 0);
    assert_int_equal(left, 0);
    assert_int_equal(c.frames, whole.frames);
    assert_int_equal(c.compressed, whole.compressed);
  }
  free(wire);
}

static void test_captured_vectors(void **state)
{
  int files = 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(vec_files); i++) {
    check_vector(&vec_files[i], false, &files);
    check_vector(&vec_files[i], true, &files);
  }
  if (files == 0) skip(); /* vectors not captured yet: see tests/data/capture/README.md */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_header_versions),
    cmocka_unit_test(test_header_sizes),
    cmocka_unit_test(test_header_too_large),
    cmocka_unit_test(test_encode_direction_bit),
    cmocka_unit_test(test_frame_decode_body),
    cmocka_unit_test(test_patch_stream),
    cmocka_unit_test(test_stream_every_split),
    cmocka_unit_test(test_captured_vectors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
