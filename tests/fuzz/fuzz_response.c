/* libFuzzer target for response decoding. The first byte picks the protocol version (bits 0-2), the
 * opcode (bits 3-5) and the frame flags for the prefix stripper (bits 6-7); the rest is the body, copied
 * into its own heap block so any over-read trips ASan. On a successful decode every list, column type,
 * row and cell is walked, the message is re-encoded and re-decoded (the encoding must be stable), and
 * the peeks must agree with the full decode. The body is also tried as CQL type text. Violations abort. */
#include <tandem/proto/response.h>

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "fuzz_response: check failed at line %d: %s\n", __LINE__, #cond); \
      abort();                                                                      \
    }                                                                               \
  } while (0)

static const uint8_t versions[8] = { TDM_PROTO_V2, TDM_PROTO_V3, TDM_PROTO_V4, TDM_PROTO_V5,
                                     TDM_PROTO_DSE_V1, TDM_PROTO_DSE_V2, TDM_PROTO_V4, TDM_PROTO_V5 };
static const uint8_t opcodes[8] = { TDM_OP_ERROR, TDM_OP_READY, TDM_OP_AUTHENTICATE, TDM_OP_SUPPORTED,
                                    TDM_OP_RESULT, TDM_OP_EVENT, TDM_OP_AUTH_CHALLENGE, TDM_OP_RESULT };

static void walk_strlist(const tdm_response_strlist_t *l)
{
  size_t pos = 0, n = 0;
  tdm_str_t s;
  int rc;
  while ((rc = tdm_response_strlist_next(l, &pos, &s)) == 1) n++;
  CHECK(rc == 0 && n == l->count);
}

static void walk_type(const tdm_cqltype_t *t, unsigned depth)
{
  tdm_cqltype_iter_t it;
  tdm_cqltype_t child;
  tdm_str_t name;
  size_t n = 0;
  int rc;
  char buf[64];
  CHECK(depth <= TDM_CQLTYPE_MAX_DEPTH);
  (void)tdm_cqltype_format(t, buf, sizeof(buf));
  tdm_cqltype_iter_init(&it, t);
  size_t want = it.left;
  while ((rc = tdm_cqltype_next(&it, &child, &name)) == 1) {
    walk_type(&child, depth + 1);
    n++;
  }
  CHECK(rc == 0 && n == want);
}

static void walk_metadata(const tdm_response_metadata_t *m)
{
  size_t pos = 0;
  int32_t n = 0;
  tdm_response_column_t c;
  int rc;
  for (uint32_t i = 0; i < m->pk_count; i++) (void)tdm_response_pk_index(m, i);
  while ((rc = tdm_response_column_next(m, &pos, &c)) == 1) {
    walk_type(&c.type, 1);
    n++;
  }
  CHECK(rc == 0);
  CHECK(m->specs == NULL || n == m->columns_count);
}

static void walk_rows(const tdm_response_rows_t *rows)
{
  tdm_response_rows_iter_t it;
  tdm_bytes_t cell;
  int64_t cells = 0, nrows = 0;
  int rc;
  walk_metadata(&rows->metadata);
  tdm_response_rows_iter_init(&it, rows);
  while ((rc = tdm_response_rows_next_row(&it)) == 1) {
    int c;
    nrows++;
    while ((c = tdm_response_rows_next_cell(&it, &cell)) == 1) cells++;
    CHECK(c == 0);
  }
  CHECK(rc == 0 && nrows == rows->rows_count);
  CHECK(cells == (int64_t)rows->rows_count * rows->metadata.columns_count);
}

static void walk(const tdm_response_t *r)
{
  size_t pos = 0;
  switch (r->opcode) {
  case TDM_OP_ERROR: {
    tdm_response_reason_t x;
    int rc;
    while ((rc = tdm_response_reason_next(&r->error, &pos, &x)) == 1) {}
    CHECK(rc == 0);
    walk_strlist(&r->error.arg_types);
    break;
  }
  case TDM_OP_SUPPORTED: {
    tdm_str_t key;
    tdm_response_strlist_t values;
    size_t n = 0;
    int rc;
    while ((rc = tdm_response_supported_next(&r->supported, &pos, &key, &values)) == 1) {
      walk_strlist(&values);
      n++;
    }
    CHECK(rc == 0 && n == r->supported.count);
    break;
  }
  case TDM_OP_RESULT:
    if (r->result.kind == TDM_RESULT_ROWS) walk_rows(&r->result.rows);
    if (r->result.kind == TDM_RESULT_PREPARED) {
      walk_metadata(&r->result.prepared.variables);
      walk_metadata(&r->result.prepared.result);
    }
    if (r->result.kind == TDM_RESULT_SCHEMA_CHANGE) walk_strlist(&r->result.schema_change.arg_types);
    break;
  case TDM_OP_EVENT:
    walk_strlist(&r->event.schema.arg_types);
    break;
  default:
    break;
  }
}

/* The peeks must agree with the full decode of a valid RESULT. */
static void check_peeks(uint8_t v, const uint8_t *body, size_t len, const tdm_response_t *r)
{
  int32_t kind;
  CHECK(tdm_response_peek_result_kind(body, len, &kind) == 0 && kind == r->result.kind);
  tdm_response_applied_t applied;
  CHECK(tdm_response_peek_rows_applied(v, body, len, &applied) == 0);
  tdm_bytes_t id;
  size_t off;
  int rc = tdm_response_peek_metadata_id(v, body, len, &id, &off);
  CHECK(rc == 0 || rc == TDM_ENOTFOUND);
  if (kind == TDM_RESULT_PREPARED) {
    tdm_response_prepared_ids_t ids;
    CHECK(tdm_response_peek_prepared_ids(v, body, len, &ids) == 0);
    CHECK(ids.id.len == r->result.prepared.id.len && ids.id_offset == r->result.prepared.id_offset);
    CHECK(ids.result_metadata_id.len == r->result.prepared.result_metadata_id.len);
  }
  if (rc == 0) {
    /* Rewriting the id keeps the body decodable, with the new id in place. */
    static const uint8_t nid[5] = { 1, 2, 3, 4, 5 };
    tdm_writer_t w;
    tdm_response_t r2;
    tdm_bytes_t id2;
    size_t off2;
    tdm_writer_init(&w);
    CHECK(tdm_response_rewrite_metadata_id(v, body, len, nid, sizeof(nid), &w) == 0);
    CHECK(tdm_response_decode(v, TDM_OP_RESULT, w.buf, w.len, &r2, NULL) == 0);
    CHECK(tdm_response_peek_metadata_id(v, w.buf, w.len, &id2, &off2) == 0);
    CHECK(off2 == off && id2.len == 5 && memcmp(id2.ptr, nid, 5) == 0);
    tdm_writer_free(&w);
  }
}

/* CQL type text: whatever parses must validate as an option, format, and parse back to the same bytes. */
static void check_type_text(const uint8_t *data, size_t size)
{
  uint8_t buf[512], again[512];
  char text[4096];
  tdm_cqltype_t t, t2;
  if (size > 256 || tdm_cqltype_parse((tdm_str_t){ (const char *)data, size }, buf, sizeof(buf), &t) != 0) return;
  CHECK(tdm_cqltype_from_raw(t.raw, t.len, &t2) == 0 && t2.len == t.len);
  int n = tdm_cqltype_format(&t, text, sizeof(text));
  CHECK(n > 0);
  CHECK(tdm_cqltype_parse((tdm_str_t){ text, (size_t)n }, again, sizeof(again), &t2) == 0);
  CHECK(tdm_cqltype_eq(&t, &t2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  uint8_t sel = data[0];
  uint8_t version = versions[sel & 7];
  uint8_t opcode = opcodes[(sel >> 3) & 7];
  static const uint8_t prefix_flags[4] = { 0, TDM_FLAG_TRACING, TDM_FLAG_WARNING | TDM_FLAG_CUSTOM_PAYLOAD,
                                           TDM_FLAG_TRACING | TDM_FLAG_WARNING | TDM_FLAG_CUSTOM_PAYLOAD };
  size_t len = size - 1;
  uint8_t *body = malloc(len ? len : 1);
  if (!body) return 0;
  memcpy(body, data + 1, len);
  check_type_text(body, len);

  tdm_response_prefix_t prefix;
  if (tdm_response_strip_prefix(version, prefix_flags[sel >> 6], body, len, &prefix) == 0) {
    CHECK(prefix.message_offset <= len);
    walk_strlist(&prefix.warnings);
  }
  uint32_t code;
  tdm_str_t msg;
  (void)tdm_response_peek_error_code(body, len, &code, &msg);

  tdm_response_t r;
  const char *why = NULL;
  int rc = tdm_response_decode(version, opcode, body, len, &r, &why);
  if (rc != 0) {
    CHECK(rc == TDM_EPROTO_MALFORMED && why != NULL);
    free(body);
    return 0;
  }
  walk(&r);
  if (opcode == TDM_OP_RESULT) check_peeks(version, body, len, &r);
  if (opcode == TDM_OP_ERROR) CHECK(tdm_response_peek_error_code(body, len, &code, &msg) == 0 && code == r.error.code);

  /* Encoding a decoded message gives a body that decodes and re-encodes to the same bytes. The first
   * encoding may differ from the input only where the wire allows several spellings of one value (a
   * null [bytes] with a length below -1). */
  tdm_writer_t w1, w2;
  tdm_response_t r1;
  tdm_writer_init(&w1);
  CHECK(tdm_response_encode(&w1, &r) == 0);
  CHECK(w1.len == len);
  CHECK(tdm_response_decode(version, opcode, w1.buf, w1.len, &r1, &why) == 0);
  tdm_writer_init(&w2);
  CHECK(tdm_response_encode(&w2, &r1) == 0);
  CHECK(w2.len == w1.len && (w1.len == 0 || memcmp(w1.buf, w2.buf, w1.len) == 0));
  tdm_writer_free(&w1);
  tdm_writer_free(&w2);
  free(body);
  return 0;
}
