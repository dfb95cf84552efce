/* Response decoding against real Cassandra 5.0 sessions recorded in tests/data/vectors (NAME.s2c.hex; see
 * tests/data/capture/README.md): every server message of every capture (v3, v4, v5; uncompressed, lz4,
 * snappy) must decode, re-encode to the very same bytes, agree with the peeks, and fail cleanly at every
 * truncation; the recorded workload's answers (SUPPORTED, Rows, Prepared, a syntax ERROR) must be there.
 * Skipped while the captures do not exist. */
#include <testlib.h>

#include <tandem/proto/response.h>
#include <tandem/proto/frame.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/envelope.h>

typedef struct capture_s {
  const char *name;        /* stem under tests/data/vectors */
  uint8_t version;         /* protocol version of the session */
  tdm_compression_t comp;  /* negotiated compression */
} capture_t;

typedef struct stats_s {
  int messages;            /* responses decoded */
  int by_opcode[256];      /* per opcode */
  int by_kind[8];          /* RESULT kinds */
  int rows_with_data;      /* Rows results with at least one row */
  int prepared_ok;         /* PREPARED with the expected shape */
  int syntax_errors;       /* ERROR SYNTAX_ERROR */
  uint8_t first_opcode;    /* opcode of the first response */
} stats_t;

/* One message body (after decompression): decode, compare, peek, truncate. */
static void check_message(uint8_t version, uint8_t opcode, uint8_t flags, const uint8_t *body, size_t len,
                          stats_t *st)
{
  tdm_response_prefix_t prefix;
  assert_int_equal(tdm_response_strip_prefix(version, flags, body, len, &prefix), 0);
  const uint8_t *msg = body + prefix.message_offset;
  size_t mlen = len - prefix.message_offset;
  tdm_response_t r;
  const char *why = NULL;
  int rc = tdm_response_decode(version, opcode, msg, mlen, &r, &why);
  if (rc) fail_msg("v%u opcode %u (%zu bytes): %d (%s)", version, opcode, mlen, rc, why ? why : "?");
  if (st->messages++ == 0) st->first_opcode = opcode;
  st->by_opcode[opcode]++;

  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode(&w, &r), 0);
  assert_int_equal(w.len, mlen);
  if (mlen) assert_memory_equal(w.buf, msg, mlen);
  tdm_writer_free(&w);

  if (opcode == TDM_OP_RESULT) {
    int32_t kind;
    assert_int_equal(tdm_response_peek_result_kind(msg, mlen, &kind), 0);
    assert_int_equal(kind, r.result.kind);
    st->by_kind[kind & 7]++;
    if (kind == TDM_RESULT_ROWS && r.result.rows.rows_count > 0) {
      tdm_response_rows_iter_t it;
      tdm_bytes_t cell;
      int cells = 0;
      tdm_response_rows_iter_init(&it, &r.result.rows);
      while (tdm_response_rows_next_row(&it) == 1)
        while (tdm_response_rows_next_cell(&it, &cell) == 1) cells++;
      assert_int_equal(cells, r.result.rows.rows_count * r.result.rows.metadata.columns_count);
      st->rows_with_data++;
    }
    if (kind == TDM_RESULT_PREPARED) {
      const tdm_response_prepared_t *p = &r.result.prepared;
      tdm_response_prepared_ids_t ids;
      assert_int_equal(tdm_response_peek_prepared_ids(version, msg, mlen, &ids), 0);
      assert_int_equal(ids.id_offset, p->id_offset);
      assert_int_equal(ids.id.len, 16); /* Cassandra's ids are MD5 digests */
      assert_int_equal(p->result_metadata_id.len, version == TDM_PROTO_V5 ? 16 : -1);
      /* INSERT INTO kv (k, v) VALUES (?, ?): two markers, k the partition key. */
      assert_int_equal(p->variables.columns_count, 2);
      if (version >= TDM_PROTO_V4) {
        assert_int_equal(p->variables.pk_count, 1);
        assert_int_equal(tdm_response_pk_index(&p->variables, 0), 0);
      }
      st->prepared_ok++;
    }
  }
  if (opcode == TDM_OP_ERROR && r.error.code == TDM_ERR_SYNTAX_ERROR) st->syntax_errors++;

  if (mlen <= 4096) {
    for (size_t k = 0; k < mlen; k++) {
      uint8_t *copy = malloc(k ? k : 1);
      assert_non_null(copy);
      if (k) memcpy(copy, msg, k);
      assert_int_equal(tdm_response_decode(version, opcode, copy, k, &r, NULL), TDM_EPROTO_MALFORMED);
      free(copy);
    }
  }
}

/* A v3/v4 frame, or an unframed v5 one: decompress when flagged, then check. */
static void check_frame(const capture_t *cap, const tdm_frame_header_t *h, const uint8_t *body, stats_t *st)
{
  assert_true(h->response);
  assert_int_equal(h->version, cap->version);
  if (!(h->flags & TDM_FLAG_COMPRESSED) || cap->version == TDM_PROTO_V5) {
    check_message(h->version, h->opcode, h->flags, body, h->length, st);
    return;
  }
  uint8_t *plain;
  size_t plain_len;
  assert_int_equal(tdm_body_decompress(cap->comp, body, h->length, 1u << 24, &plain, &plain_len), 0);
  check_message(h->version, h->opcode, h->flags, plain, plain_len, st);
  free(plain);
}

static bool check_capture(const capture_t *cap)
{
  char path[256];
  size_t n, used = 0;
  snprintf(path, sizeof(path), "tests/data/vectors/%s.s2c.hex", cap->name);
  uint8_t *wire = tdm_test_hex_file(path, &n);
  if (!wire) return false;
  stats_t st = { 0 };
  bool framed = false;
  while (used < n && !framed) {
    tdm_frame_header_t h;
    const uint8_t *body;
    int rc = tdm_frame_decode(wire + used, n - used, 1u << 28, &h, &body);
    assert_true(rc > 0);
    check_frame(cap, &h, body, &st);
    used += (size_t)rc;
    /* v5 switches to segments after READY or AUTHENTICATE. */
    framed = cap->version == TDM_PROTO_V5 && (h.opcode == TDM_OP_READY || h.opcode == TDM_OP_AUTHENTICATE);
  }
  if (framed) {
    tdm_envelope_reader_t rd = { .lz4 = cap->comp == TDM_COMPRESSION_LZ4 };
    for (;;) {
      tdm_envelope_t env;
      size_t consumed;
      int rc = tdm_envelope_read(&rd, wire + used, n - used, &consumed, &env);
      used += consumed;
      assert_true(rc >= 0);
      if (rc == 0) break;
      check_frame(cap, &env.header, env.body, &st);
    }
    tdm_envelope_reader_free(&rd);
  }
  assert_int_equal(used, n);
  /* The recorded workload: OPTIONS, STARTUP, DDL, INSERTs, a SELECT of two rows, PREPARE + EXECUTE,
   * a BATCH and a syntax error. */
  assert_int_equal(st.first_opcode, TDM_OP_SUPPORTED);
  assert_true(st.by_opcode[TDM_OP_READY] + st.by_opcode[TDM_OP_AUTHENTICATE] == 1);
  assert_true(st.rows_with_data >= 1);
  assert_true(st.prepared_ok >= 1);
  assert_true(st.syntax_errors >= 1);
  assert_true(st.by_kind[TDM_RESULT_VOID] >= 3);
  free(wire);
  return true;
}

static void test_cassandra_captures(void **state)
{
  static const capture_t caps[] = {
    { "v3-none", TDM_PROTO_V3, TDM_COMPRESSION_NONE },   { "v4-none", TDM_PROTO_V4, TDM_COMPRESSION_NONE },
    { "v4-lz4", TDM_PROTO_V4, TDM_COMPRESSION_LZ4 },     { "v4-snappy", TDM_PROTO_V4, TDM_COMPRESSION_SNAPPY },
    { "v5-none", TDM_PROTO_V5, TDM_COMPRESSION_NONE },   { "v5-lz4", TDM_PROTO_V5, TDM_COMPRESSION_LZ4 },
  };
  int found = 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(caps); i++) found += check_capture(&caps[i]);
  if (found == 0) skip(); /* not captured yet: see tests/data/capture/README.md */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cassandra_captures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
