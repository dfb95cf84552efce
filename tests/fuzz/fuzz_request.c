/* libFuzzer target for the request decoders. Input byte 0 picks the version (b % 6) and the request
 * opcode ((b / 6) % 8); the rest is the body. A body that decodes must re-encode to the same fields
 * (and, lengths of null [bytes] aside, the same bytes), agree with the peeks, and survive the rewrite
 * helpers with everything else unchanged. Any disagreement aborts. */
#include <tandem/proto/request.h>

static const uint8_t fz_versions[] = { TDM_PROTO_V3, TDM_PROTO_V4, TDM_PROTO_V5, TDM_PROTO_DSE_V1,
                                       TDM_PROTO_DSE_V2, TDM_PROTO_V2 };
static const uint8_t fz_opcodes[] = { TDM_OP_STARTUP, TDM_OP_AUTH_RESPONSE, TDM_OP_OPTIONS, TDM_OP_QUERY,
                                      TDM_OP_PREPARE, TDM_OP_EXECUTE, TDM_OP_BATCH, TDM_OP_REGISTER };

#define CHECK(c)                                                             \
  do {                                                                       \
    if (!(c)) {                                                              \
      fprintf(stderr, "fuzz_request: check failed at line %d: %s\n", __LINE__, #c); \
      abort();                                                               \
    }                                                                        \
  } while (0)

static bool bytes_eq(tdm_bytes_t a, tdm_bytes_t b)
{
  return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static bool span_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
  return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void check_params(const tdm_query_params_t *a, const tdm_query_params_t *b)
{
  CHECK(a->consistency == b->consistency && a->flags == b->flags && a->flags_size == b->flags_size);
  CHECK(a->values_count == b->values_count && span_eq(a->values, a->values_len, b->values, b->values_len));
  CHECK(a->page_size == b->page_size && bytes_eq(a->paging_state, b->paging_state));
  CHECK(a->serial_consistency == b->serial_consistency && a->default_timestamp == b->default_timestamp);
  CHECK(tdm_str_eq(a->keyspace, b->keyspace) && a->now_in_seconds == b->now_in_seconds);
  CHECK(a->max_pages == b->max_pages && a->pages_per_second == b->pages_per_second && a->next_pages == b->next_pages);
}

/* Values spans of a decoded message iterate to exactly values_count entries. */
static void check_values(const tdm_query_params_t *p)
{
  tdm_values_iter_t it;
  tdm_str_t name;
  tdm_bytes_t v;
  int rc, n = 0;
  tdm_values_iter_init(&it, p->values, p->values_len, p->values_count, (p->flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0);
  while ((rc = tdm_values_next(&it, &name, &v)) > 0) n++;
  CHECK(rc == 0 && n == p->values_count && tdm_reader_left(&it.r) == 0);
}

/* Re-encodes a decoded request into w. */
static int encode(tdm_writer_t *w, const tdm_request_t *r)
{
  switch (r->opcode) {
  case TDM_OP_STARTUP: {
    tdm_str_t k[64], v[64];
    tdm_startup_iter_t it;
    size_t n = 0;
    if (r->u.startup.count > 64) return 1; /* not re-encoded: too many for the stack arrays */
    tdm_startup_iter_init(&it, &r->u.startup);
    while (tdm_startup_next(&it, &k[n], &v[n])) n++;
    CHECK(n == r->u.startup.count);
    return tdm_request_encode_startup(w, k, v, n);
  }
  case TDM_OP_AUTH_RESPONSE: return tdm_request_encode_auth_response(w, r->u.auth_token.ptr, r->u.auth_token.len);
  case TDM_OP_OPTIONS: return tdm_request_encode_options(w);
  case TDM_OP_QUERY: return tdm_request_encode_query(w, r->version, r->u.query.query, &r->u.query.params);
  case TDM_OP_PREPARE:
    return tdm_request_encode_prepare(w, r->version, r->u.prepare.query,
                                      (r->u.prepare.flags & TDM_PFLAG_WITH_KEYSPACE) ? &r->u.prepare.keyspace : NULL);
  case TDM_OP_EXECUTE:
    return tdm_request_encode_execute(w, r->version, r->u.execute.id, r->u.execute.result_metadata_id,
                                      &r->u.execute.params);
  case TDM_OP_BATCH: {
    tdm_batch_child_t kids[64];
    tdm_batch_iter_t it;
    size_t n = 0;
    if (r->u.batch.count > 64) return 1;
    tdm_batch_iter_init(&it, &r->u.batch);
    while (tdm_batch_next_child(&it, &kids[n]) > 0) n++;
    CHECK(n == r->u.batch.count);
    return tdm_request_encode_batch(w, r->version, r->u.batch.type, kids, n, &r->u.batch.params);
  }
  case TDM_OP_REGISTER: {
    tdm_str_t ev[64];
    size_t pos = 0, n = 0;
    if (r->u.reg.count > 64) return 1;
    while (tdm_register_next(&r->u.reg, &pos, &ev[n])) n++;
    CHECK(n == r->u.reg.count);
    return tdm_request_encode_register(w, ev, n);
  }
  default: CHECK(0);
  }
  return -1;
}

static void check_same(const tdm_request_t *a, const tdm_request_t *b)
{
  CHECK(a->opcode == b->opcode && a->version == b->version);
  switch (a->opcode) {
  case TDM_OP_STARTUP:
    CHECK(a->u.startup.count == b->u.startup.count && a->u.startup.present == b->u.startup.present);
    CHECK(tdm_str_eq(a->u.startup.compression, b->u.startup.compression));
    CHECK(tdm_str_eq(a->u.startup.cql_version, b->u.startup.cql_version));
    break;
  case TDM_OP_AUTH_RESPONSE: CHECK(bytes_eq(a->u.auth_token, b->u.auth_token)); break;
  case TDM_OP_QUERY:
    CHECK(tdm_str_eq(a->u.query.query, b->u.query.query));
    check_params(&a->u.query.params, &b->u.query.params);
    break;
  case TDM_OP_PREPARE:
    CHECK(tdm_str_eq(a->u.prepare.query, b->u.prepare.query) && a->u.prepare.flags == b->u.prepare.flags);
    CHECK(tdm_str_eq(a->u.prepare.keyspace, b->u.prepare.keyspace));
    break;
  case TDM_OP_EXECUTE:
    CHECK(bytes_eq(a->u.execute.id, b->u.execute.id));
    CHECK(bytes_eq(a->u.execute.result_metadata_id, b->u.execute.result_metadata_id));
    check_params(&a->u.execute.params, &b->u.execute.params);
    break;
  case TDM_OP_BATCH:
    CHECK(a->u.batch.type == b->u.batch.type && a->u.batch.count == b->u.batch.count);
    CHECK(a->u.batch.prepared_count == b->u.batch.prepared_count);
    check_params(&a->u.batch.params, &b->u.batch.params);
    break;
  case TDM_OP_REGISTER: CHECK(a->u.reg.count == b->u.reg.count && a->u.reg.events == b->u.reg.events); break;
  default: break;
  }
}

static void check_peeks(const tdm_request_t *r, const uint8_t *body, size_t len)
{
  tdm_str_t q;
  tdm_bytes_t id, md;
  uint16_t cl;
  switch (r->opcode) {
  case TDM_OP_QUERY:
    CHECK(tdm_request_peek_query(r->version, body, len, &q) == 0 && tdm_str_eq(q, r->u.query.query));
    CHECK(tdm_request_peek_consistency(r->version, r->opcode, body, len, &cl) == 0);
    CHECK(cl == r->u.query.params.consistency);
    check_values(&r->u.query.params);
    break;
  case TDM_OP_PREPARE:
    CHECK(tdm_request_peek_query(r->version, body, len, &q) == 0 && tdm_str_eq(q, r->u.prepare.query));
    break;
  case TDM_OP_EXECUTE:
    CHECK(tdm_request_peek_execute_id(r->version, body, len, &id, &md) == 0);
    CHECK(bytes_eq(id, r->u.execute.id) && bytes_eq(md, r->u.execute.result_metadata_id));
    CHECK(tdm_request_peek_consistency(r->version, r->opcode, body, len, &cl) == 0);
    CHECK(cl == r->u.execute.params.consistency);
    check_values(&r->u.execute.params);
    break;
  case TDM_OP_BATCH:
    CHECK(tdm_request_peek_consistency(r->version, r->opcode, body, len, &cl) == 0);
    CHECK(cl == r->u.batch.params.consistency);
    break;
  default: break;
  }
}

static int map_to_fixed(void *ctx, const tdm_batch_child_t *child, tdm_bytes_t *new_id)
{
  (void)ctx;
  /* Odd children get a fixed id; even ones keep theirs. */
  if (child->index & 1) *new_id = (tdm_bytes_t){ (const uint8_t *)"target-id", 9 };
  return 0;
}

static void check_rewrites(const tdm_request_t *r, const uint8_t *body, size_t len)
{
  tdm_writer_t out;
  tdm_request_t again;
  const char *why = NULL;
  tdm_writer_init(&out);
  if (r->opcode == TDM_OP_EXECUTE) {
    CHECK(tdm_request_rewrite_execute_id(r->version, body, len, "new-id", 6, "md", 2, &out, &why) == 0);
    CHECK(tdm_request_decode(r->version, r->opcode, out.buf, out.len, &again, &why) == 0);
    CHECK(again.u.execute.id.len == 6 && memcmp(again.u.execute.id.ptr, "new-id", 6) == 0);
    check_params(&r->u.execute.params, &again.u.execute.params);
  } else if (r->opcode == TDM_OP_BATCH) {
    CHECK(tdm_request_rewrite_batch_ids(r->version, body, len, map_to_fixed, NULL, &out, &why) == 0);
    CHECK(tdm_request_decode(r->version, r->opcode, out.buf, out.len, &again, &why) == 0);
    CHECK(again.u.batch.count == r->u.batch.count && again.u.batch.prepared_count == r->u.batch.prepared_count);
    check_params(&r->u.batch.params, &again.u.batch.params);
  }
  tdm_writer_free(&out);
  if ((r->opcode == TDM_OP_QUERY || r->opcode == TDM_OP_PREPARE || r->opcode == TDM_OP_BATCH)) {
    tdm_writer_init(&out);
    int rc = tdm_request_add_keyspace(r->version, r->opcode, body, len, TDM_STR("fuzz_ks"), &out, &why);
    bool had_ks = r->opcode == TDM_OP_QUERY     ? (r->u.query.params.flags & TDM_QFLAG_WITH_KEYSPACE) != 0
                  : r->opcode == TDM_OP_PREPARE ? (r->u.prepare.flags & TDM_PFLAG_WITH_KEYSPACE) != 0
                                                : (r->u.batch.params.flags & TDM_QFLAG_WITH_KEYSPACE) != 0;
    CHECK((rc == 0) == (tdm_proto_has_request_keyspace(r->version) && !had_ks));
    if (rc == 0) {
      CHECK(out.len == len + 2 + 7);
      CHECK(tdm_request_decode(r->version, r->opcode, out.buf, out.len, &again, &why) == 0);
      tdm_str_t ks = r->opcode == TDM_OP_QUERY     ? again.u.query.params.keyspace
                     : r->opcode == TDM_OP_PREPARE ? again.u.prepare.keyspace
                                                   : again.u.batch.params.keyspace;
      CHECK(tdm_str_eq_cstr(ks, "fuzz_ks"));
      if (r->opcode == TDM_OP_QUERY) {
        CHECK(tdm_str_eq(again.u.query.query, r->u.query.query));
        CHECK(again.u.query.params.now_in_seconds == r->u.query.params.now_in_seconds);
        CHECK(span_eq(again.u.query.params.values, again.u.query.params.values_len, r->u.query.params.values,
                      r->u.query.params.values_len));
      }
    } else {
      CHECK(rc == TDM_EINVAL && out.len == 0);
    }
    tdm_writer_free(&out);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  uint8_t version = fz_versions[data[0] % sizeof(fz_versions)];
  uint8_t opcode = fz_opcodes[(data[0] / sizeof(fz_versions)) % sizeof(fz_opcodes)];
  const uint8_t *body = data + 1;
  size_t len = size - 1;

  tdm_request_t req;
  const char *why = NULL;
  int rc = tdm_request_decode(version, opcode, body, len, &req, &why);
  if (rc) {
    CHECK(rc == TDM_EPROTO_MALFORMED && why != NULL && why[0] != '\0');
    return 0;
  }
  check_peeks(&req, body, len);

  tdm_writer_t w, w2;
  tdm_writer_init(&w);
  rc = encode(&w, &req);
  if (rc == 0) {
    /* Same length always; same bytes unless a null [bytes] had a length other than -1. */
    CHECK(w.len == len);
    tdm_request_t back;
    CHECK(tdm_request_decode(version, opcode, w.buf, w.len, &back, &why) == 0);
    check_same(&req, &back);
    tdm_writer_init(&w2);
    CHECK(encode(&w2, &back) == 0 && span_eq(w.buf, w.len, w2.buf, w2.len));
    tdm_writer_free(&w2);
  } else {
    CHECK(rc == 1);
  }
  tdm_writer_free(&w);
  check_rewrites(&req, body, len);
  return 0;
}
