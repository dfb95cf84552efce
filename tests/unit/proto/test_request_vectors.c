/* Request decoding of real driver traffic: the client-to-node streams captured from Cassandra 5.0 and
 * the Python driver (tests/data/vectors/<scenario>.c2s.hex, made by tests/data/capture/run.sh). Every
 * request body must decode, re-encode to the same bytes, and the workload's requests must all be seen
 * (skipped while no session has been captured); and the requests inside the v5 segment vectors encoded by
 * the Python driver's segment codec. */
#include <tandem/proto/request.h>
#include <tandem/proto/frame.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/envelope.h>
#include "testlib.h"

/* What one captured stream held. */
struct seen {
  int by_opcode[256];       /* requests per opcode */
  int batch_prepared;       /* prepared children over all BATCHes */
  int batch_simple;         /* simple-statement children over all BATCHes */
  bool startup_cql_version; /* STARTUP carried CQL_VERSION */
  tdm_compression_t comp;   /* from STARTUP's COMPRESSION */
};

/* Re-encodes a decoded request; 1 when this opcode is not re-encoded here. */
static int reencode(tdm_writer_t *w, const tdm_request_t *r)
{
  switch (r->opcode) {
  case TDM_OP_QUERY: return tdm_request_encode_query(w, r->version, r->u.query.query, &r->u.query.params);
  case TDM_OP_PREPARE:
    return tdm_request_encode_prepare(w, r->version, r->u.prepare.query,
                                      (r->u.prepare.flags & TDM_PFLAG_WITH_KEYSPACE) ? &r->u.prepare.keyspace : NULL);
  case TDM_OP_EXECUTE:
    return tdm_request_encode_execute(w, r->version, r->u.execute.id, r->u.execute.result_metadata_id,
                                      &r->u.execute.params);
  case TDM_OP_BATCH: {
    tdm_batch_child_t kids[16];
    tdm_batch_iter_t it;
    size_t n = 0;
    assert_true(r->u.batch.count <= 16);
    tdm_batch_iter_init(&it, &r->u.batch);
    while (tdm_batch_next_child(&it, &kids[n]) > 0) n++;
    return tdm_request_encode_batch(w, r->version, r->u.batch.type, kids, n, &r->u.batch.params);
  }
  default: return 1;
  }
}

static void check_body(uint8_t version, uint8_t opcode, const uint8_t *body, size_t len, struct seen *s)
{
  tdm_request_t r;
  const char *why = NULL;
  int rc = tdm_request_decode(version, opcode, body, len, &r, &why);
  if (rc) fail_msg("v%#x %s body of %zu bytes: %s", version, tdm_opcode_name(opcode), len, why ? why : "?");
  s->by_opcode[opcode]++;
  if (opcode == TDM_OP_STARTUP) {
    s->startup_cql_version = (r.u.startup.present & TDM_REQUEST_STARTUP_CQL_VERSION) != 0;
    if (r.u.startup.present & TDM_REQUEST_STARTUP_COMPRESSION)
      assert_int_equal(tdm_compression_parse(r.u.startup.compression, &s->comp), 0);
  }
  if (opcode == TDM_OP_BATCH) {
    s->batch_prepared += r.u.batch.prepared_count;
    s->batch_simple += r.u.batch.count - r.u.batch.prepared_count;
  }
  tdm_writer_t w;
  tdm_writer_init(&w);
  rc = reencode(&w, &r);
  if (rc == 0) {
    assert_int_equal(w.len, len);
    assert_memory_equal(w.buf, body, len);
  } else {
    assert_int_equal(rc, 1);
  }
  tdm_writer_free(&w);
}

/* Decodes one v2-v4 style frame at p (also v5's unframed handshake); returns its size. */
static size_t one_frame(const uint8_t *p, size_t len, uint8_t version, struct seen *s)
{
  tdm_frame_header_t h;
  const uint8_t *body;
  int n = tdm_frame_decode(p, len, 256u << 20, &h, &body);
  if (n <= 0) fail_msg("incomplete or bad frame header (%d) with %zu bytes left", n, len);
  assert_int_equal(h.version, version);
  assert_false(h.response);
  if (h.flags & TDM_FLAG_COMPRESSED) {
    uint8_t *plain;
    size_t plain_len;
    assert_int_equal(tdm_body_decompress(s->comp, body, h.length, 256u << 20, &plain, &plain_len), 0);
    check_body(version, h.opcode, plain, plain_len, s);
    free(plain);
  } else {
    check_body(version, h.opcode, body, h.length, s);
  }
  return (size_t)n;
}

static void walk_stream(const uint8_t *p, size_t len, uint8_t version, struct seen *s)
{
  size_t pos = 0;
  if (version != TDM_PROTO_V5) {
    while (pos < len) pos += one_frame(p + pos, len - pos, version, s);
    return;
  }
  /* v5: frames are unframed up to and including STARTUP, then carried in segments. */
  while (pos < len && !s->by_opcode[TDM_OP_STARTUP]) pos += one_frame(p + pos, len - pos, version, s);
  tdm_envelope_reader_t rd = { 0 };
  rd.lz4 = s->comp == TDM_COMPRESSION_LZ4;
  /* The reader may hand out the envelopes of a segment it has already consumed: call until it wants more. */
  for (;;) {
    size_t consumed = 0;
    tdm_envelope_t env;
    int rc = tdm_envelope_read(&rd, p + pos, len - pos, &consumed, &env);
    if (rc < 0) fail_msg("segment error %d at stream offset %zu", rc, pos);
    pos += consumed;
    if (rc == 1) {
      assert_int_equal(env.header.version, version);
      check_body(version, env.header.opcode, env.body, env.header.length, s);
      continue;
    }
    if (pos >= len) break;
    if (consumed == 0) fail_msg("stream ends inside a segment at offset %zu", pos);
  }
  tdm_envelope_reader_free(&rd);
}

static void test_captured_client_streams(void **state)
{
  static const struct {
    const char *name; /* scenario of tests/data/capture/run.sh */
    uint8_t version;  /* protocol it negotiated */
  } scenarios[] = {
    { "v3-none", TDM_PROTO_V3 }, { "v4-none", TDM_PROTO_V4 }, { "v4-lz4", TDM_PROTO_V4 },
    { "v4-snappy", TDM_PROTO_V4 }, { "v5-none", TDM_PROTO_V5 }, { "v5-lz4", TDM_PROTO_V5 },
  };
  int found = 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(scenarios); i++) {
    char path[128];
    size_t len;
    snprintf(path, sizeof(path), "tests/data/vectors/%s.c2s.hex", scenarios[i].name);
    uint8_t *p = tdm_test_hex_file(path, &len);
    if (!p) continue;
    found++;
    struct seen s;
    memset(&s, 0, sizeof(s));
    walk_stream(p, len, scenarios[i].version, &s);
    print_message("%s: %d STARTUP, %d QUERY, %d PREPARE, %d EXECUTE, %d BATCH\n", scenarios[i].name,
                  s.by_opcode[TDM_OP_STARTUP], s.by_opcode[TDM_OP_QUERY], s.by_opcode[TDM_OP_PREPARE],
                  s.by_opcode[TDM_OP_EXECUTE], s.by_opcode[TDM_OP_BATCH]);
    /* drive.py: handshake, DDL and INSERTs and a SELECT and a bad query as QUERY, one PREPARE, one
     * EXECUTE, one BATCH of a prepared and a simple statement. */
    assert_true(s.by_opcode[TDM_OP_STARTUP] == 1 && s.startup_cql_version);
    assert_true(s.by_opcode[TDM_OP_QUERY] >= 6);
    assert_true(s.by_opcode[TDM_OP_PREPARE] >= 1);
    assert_true(s.by_opcode[TDM_OP_EXECUTE] >= 1);
    assert_int_equal(s.by_opcode[TDM_OP_BATCH], 1);
    assert_int_equal(s.batch_prepared, 1);
    assert_int_equal(s.batch_simple, 1);
    free(p);
  }
  if (!found) skip(); /* nothing captured yet */
}

/* v5 segments written by the Python driver's segment codec (tests/data/vectors/make_driver_segments.py):
 * the requests they carry were laid out independently of tandem, from the spec. */
static void test_driver_segment_vectors(void **state)
{
  static const struct {
    const char *file; /* under tests/data/vectors */
    bool lz4;         /* segment format */
    int options;      /* OPTIONS carried */
    int queries;      /* QUERY carried */
    int prepares;     /* PREPARE carried */
  } files[] = {
    { "drv-seg-plain.hex", false, 1, 1, 1 },
    { "drv-seg-lz4.hex", true, 1, 2, 1 },
    { "drv-seg-lz4-stored.hex", true, 1, 0, 0 },
    { "drv-seg-lz4-split.hex", true, 0, 1, 0 },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(files); i++) {
    char path[128];
    size_t len;
    snprintf(path, sizeof(path), "tests/data/vectors/%s", files[i].file);
    uint8_t *p = tdm_test_hex_file(path, &len);
    if (!p) fail_msg("missing %s", path);
    struct seen s;
    memset(&s, 0, sizeof(s));
    s.by_opcode[TDM_OP_STARTUP] = 1; /* these streams are all framed */
    s.comp = files[i].lz4 ? TDM_COMPRESSION_LZ4 : TDM_COMPRESSION_NONE;
    walk_stream(p, len, TDM_PROTO_V5, &s);
    assert_int_equal(s.by_opcode[TDM_OP_OPTIONS], files[i].options);
    assert_int_equal(s.by_opcode[TDM_OP_QUERY], files[i].queries);
    assert_int_equal(s.by_opcode[TDM_OP_PREPARE], files[i].prepares);
    free(p);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_captured_client_streams),
    cmocka_unit_test(test_driver_segment_vectors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
