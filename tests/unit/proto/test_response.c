/* Unit tests for response decoding/encoding of the non-RESULT messages and the simple RESULT kinds:
 * every ERROR code in v3, v4 and v5 (failure reason maps, numfailures, CAS contentions), READY,
 * AUTHENTICATE, SUPPORTED, AUTH_CHALLENGE/SUCCESS, EVENT, Void, Set_keyspace, Schema_change; hand-written
 * wire vectors; every truncation point of every vector fails cleanly (each prefix in its own heap block,
 * so an over-read trips ASan). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <tandem/proto/response.h>

static const uint8_t versions[] = { TDM_PROTO_V3, TDM_PROTO_V4, TDM_PROTO_V5 };

/* ---- helpers ---- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
  size_t n = 0;
  int hi = -1;
  for (const char *p = hex; *p; p++) {
    int v;
    if (*p >= '0' && *p <= '9') v = *p - '0';
    else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
    else continue;
    if (hi < 0) {
      hi = v;
    } else {
      assert_true(n < cap);
      out[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  assert_int_equal(hi, -1);
  return n;
}

/* Every strict prefix of a valid body must be refused as malformed, reading only its own bytes. */
static void check_truncations(uint8_t version, uint8_t opcode, const uint8_t *body, size_t len)
{
  for (size_t k = 0; k < len; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    assert_non_null(copy);
    if (k) memcpy(copy, body, k);
    tdm_response_t r;
    const char *why = NULL;
    int rc = tdm_response_decode(version, opcode, copy, k, &r, &why);
    if (rc != TDM_EPROTO_MALFORMED) fail_msg("prefix %zu/%zu of opcode %u v%u: rc %d", k, len, opcode, version, rc);
    assert_non_null(why);
    free(copy);
  }
}

/* A trailing byte after a complete message is malformed too. */
static void check_trailing(uint8_t version, uint8_t opcode, const uint8_t *body, size_t len)
{
  uint8_t *copy = malloc(len + 1);
  assert_non_null(copy);
  if (len) memcpy(copy, body, len);
  copy[len] = 0;
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(version, opcode, copy, len + 1, &r, NULL), TDM_EPROTO_MALFORMED);
  free(copy);
}

/* Encodes `in`, decodes into *out (borrowing from *buf, which the caller frees), re-encodes the decoded
 * struct and requires the same bytes; then runs the truncation and trailing-byte checks. */
static void roundtrip(const tdm_response_t *in, tdm_response_t *out, uint8_t **buf, size_t *len)
{
  tdm_writer_t w, w2;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode(&w, in), 0);
  assert_int_equal(tdm_writer_take(&w, buf, len), 0);
  const char *why = NULL;
  int rc = tdm_response_decode(in->version, in->opcode, *buf, *len, out, &why);
  if (rc) fail_msg("decode failed: %d (%s)", rc, why ? why : "?");
  tdm_writer_init(&w2);
  assert_int_equal(tdm_response_encode(&w2, out), 0);
  assert_int_equal(w2.len, *len);
  assert_memory_equal(w2.buf, *buf, *len);
  tdm_writer_free(&w2);
  check_truncations(in->version, in->opcode, *buf, *len);
  check_trailing(in->version, in->opcode, *buf, *len);
}

static void assert_str(tdm_str_t s, const char *want)
{
  if (!tdm_str_eq_cstr(s, want)) fail_msg("got '%.*s', want '%s'", (int)s.len, s.ptr ? s.ptr : "", want);
}

static void assert_strlist(const tdm_response_strlist_t *l, const char *const *want, size_t n)
{
  size_t pos = 0, i = 0;
  tdm_str_t s;
  int rc;
  assert_int_equal(l->count, n);
  while ((rc = tdm_response_strlist_next(l, &pos, &s)) == 1) {
    assert_true(i < n);
    assert_str(s, want[i++]);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(i, n);
}

/* ---- ERROR ---- */

static const tdm_str_t fn_args[] = { TDM_STR("int"), TDM_STR("text") };
static const uint8_t addr4[4] = { 10, 0, 0, 7 };
static const uint8_t addr6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const tdm_response_reason_t reasons[] = { { addr4, 4, 0x0001 }, { addr6, 16, 0x0005 } };
static const uint8_t stmt_id[16] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

/* Fills e with every field the code carries, with distinct values. */
static void fill_error(tdm_response_error_t *e, uint32_t code)
{
  memset(e, 0, sizeof(*e));
  e->code = code;
  e->message = TDM_STR("something went wrong");
  switch (code) {
  case TDM_ERR_UNAVAILABLE:
    e->consistency = TDM_CL_LOCAL_QUORUM;
    e->required = 3;
    e->alive = 1;
    break;
  case TDM_ERR_WRITE_TIMEOUT:
    e->consistency = TDM_CL_QUORUM;
    e->received = 1;
    e->block_for = 2;
    e->write_type = TDM_STR("BATCH_LOG");
    break;
  case TDM_ERR_READ_TIMEOUT:
    e->consistency = TDM_CL_ONE;
    e->received = 0;
    e->block_for = 1;
    e->data_present = 1;
    break;
  case TDM_ERR_READ_FAILURE:
  case TDM_ERR_WRITE_FAILURE:
    e->consistency = TDM_CL_ALL;
    e->received = 2;
    e->block_for = 3;
    e->failures = 2;
    e->reasons = reasons;
    e->data_present = code == TDM_ERR_READ_FAILURE ? 1 : 0;
    if (code == TDM_ERR_WRITE_FAILURE) e->write_type = TDM_STR("SIMPLE");
    break;
  case TDM_ERR_FUNCTION_FAILURE:
    e->keyspace = TDM_STR("ks");
    e->function = TDM_STR("my_fn");
    e->arg_types = (tdm_response_strlist_t){ .count = 2, .items = fn_args };
    break;
  case TDM_ERR_ALREADY_EXISTS:
    e->keyspace = TDM_STR("ks");
    e->table = TDM_STR("tbl");
    break;
  case TDM_ERR_UNPREPARED:
    e->unprepared_id = (tdm_bytes_t){ stmt_id, 16 };
    break;
  case TDM_ERR_CAS_WRITE_UNKNOWN:
    e->consistency = TDM_CL_SERIAL;
    e->received = 1;
    e->block_for = 2;
    break;
  default:
    break;
  }
}

static void assert_error_eq(uint8_t v, const tdm_response_error_t *want, const tdm_response_error_t *got)
{
  assert_int_equal(got->code, want->code);
  assert_true(tdm_str_eq(got->message, want->message));
  assert_int_equal(got->consistency, want->consistency);
  assert_int_equal(got->required, want->required);
  assert_int_equal(got->alive, want->alive);
  assert_int_equal(got->received, want->received);
  assert_int_equal(got->block_for, want->block_for);
  assert_true(tdm_str_eq(got->write_type, want->write_type));
  assert_int_equal(got->data_present, want->data_present);
  assert_int_equal(got->failures, want->failures);
  assert_true(tdm_str_eq(got->keyspace, want->keyspace));
  assert_true(tdm_str_eq(got->table, want->table));
  assert_true(tdm_str_eq(got->function, want->function));
  assert_int_equal(got->arg_types.count, want->arg_types.count);
  assert_int_equal(got->unprepared_id.len, want->unprepared_id.len);
  if (want->unprepared_id.len > 0) assert_memory_equal(got->unprepared_id.ptr, want->unprepared_id.ptr, 16);
  if (want->arg_types.count) assert_strlist(&got->arg_types, (const char *const[]){ "int", "text" }, 2);
  /* The reason map exists in v5 only; v3/v4 carry the bare count. */
  size_t pos = 0, i = 0;
  tdm_response_reason_t x;
  int rc;
  while ((rc = tdm_response_reason_next(got, &pos, &x)) == 1) {
    assert_true(tdm_response_has_reason_map(v));
    assert_true(i < (size_t)want->failures);
    assert_int_equal(x.addr_len, want->reasons[i].addr_len);
    assert_memory_equal(x.addr, want->reasons[i].addr, x.addr_len);
    assert_int_equal(x.code, want->reasons[i].code);
    i++;
  }
  assert_int_equal(rc, 0);
  if (tdm_response_has_reason_map(v)) assert_int_equal(i, (size_t)want->failures);
  else assert_int_equal(i, 0);
}

static void test_error_every_code_every_version(void **state)
{
  static const uint32_t codes[] = {
#define CODE(name, val) val,
    TDM_ERRCODE_MAP(CODE)
#undef CODE
  };
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    for (size_t ci = 0; ci < TDM_ARRAY_SIZE(codes); ci++) {
      tdm_response_t in = { .version = versions[vi], .opcode = TDM_OP_ERROR }, out;
      uint8_t *buf;
      size_t len;
      fill_error(&in.error, codes[ci]);
      roundtrip(&in, &out, &buf, &len);
      assert_error_eq(versions[vi], &in.error, &out.error);
      uint32_t code;
      tdm_str_t msg;
      assert_int_equal(tdm_response_peek_error_code(buf, len, &code, &msg), 0);
      assert_int_equal(code, codes[ci]);
      assert_str(msg, "something went wrong");
      free(buf);
    }
  }
}

/* v5 CAS write timeouts carry a contention count; v4 never does. */
static void test_error_cas_contentions(void **state)
{
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    tdm_response_t in = { .version = versions[vi], .opcode = TDM_OP_ERROR }, out;
    uint8_t *buf;
    size_t len;
    fill_error(&in.error, TDM_ERR_WRITE_TIMEOUT);
    in.error.write_type = TDM_STR("CAS");
    in.error.has_contentions = true;
    in.error.contentions = 7;
    tdm_writer_t w;
    tdm_writer_init(&w);
    assert_int_equal(tdm_response_encode(&w, &in), 0);
    assert_int_equal(tdm_writer_take(&w, &buf, &len), 0);
    assert_int_equal(tdm_response_decode(versions[vi], TDM_OP_ERROR, buf, len, &out, NULL), 0);
    bool v5 = versions[vi] == TDM_PROTO_V5;
    assert_int_equal(out.error.has_contentions, v5);
    assert_int_equal(out.error.contentions, v5 ? 7 : 0);
    if (v5) {
      /* Without the count (older v5 servers) the body is still valid, and decodes without it. */
      assert_int_equal(tdm_response_decode(versions[vi], TDM_OP_ERROR, buf, len - 2, &out, NULL), 0);
      assert_false(out.error.has_contentions);
      assert_int_equal(tdm_response_decode(versions[vi], TDM_OP_ERROR, buf, len - 1, &out, NULL),
                       TDM_EPROTO_MALFORMED);
    }
    free(buf);
  }
}

/* Hand-written vectors, independent of the encoder. */
static void test_error_wire_vectors(void **state)
{
  uint8_t b[128];
  tdm_response_t r;
  /* v4 READ_FAILURE: code 0x1300, "rf", cl ONE, received 0, blockfor 1, numfailures 2, data_present 0. */
  size_t n = unhex("00001300 0002 7266 0001 00000000 00000001 00000002 00", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_ERROR, b, n, &r, NULL), 0);
  assert_int_equal(r.error.code, TDM_ERR_READ_FAILURE);
  assert_int_equal(r.error.failures, 2);
  assert_null(r.error.reason_map);
  assert_int_equal(r.error.data_present, 0);
  check_truncations(TDM_PROTO_V4, TDM_OP_ERROR, b, n);
  /* The same bytes in v5 announce two reason pairs that are not there. */
  assert_int_equal(tdm_response_decode(TDM_PROTO_V5, TDM_OP_ERROR, b, n, &r, NULL), TDM_EPROTO_MALFORMED);
  /* v5 WRITE_FAILURE with one pair 127.0.0.1 -> 0x0003, write type "CAS". */
  n = unhex("00001500 0000 0004 00000001 00000002 00000001 04 7f000001 0003 0003 434153", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V5, TDM_OP_ERROR, b, n, &r, NULL), 0);
  assert_int_equal(r.error.consistency, TDM_CL_QUORUM);
  assert_int_equal(r.error.failures, 1);
  size_t pos = 0;
  tdm_response_reason_t x;
  assert_int_equal(tdm_response_reason_next(&r.error, &pos, &x), 1);
  assert_int_equal(x.addr_len, 4);
  assert_int_equal(x.addr[0], 127);
  assert_int_equal(x.code, 3);
  assert_int_equal(tdm_response_reason_next(&r.error, &pos, &x), 0);
  assert_str(r.error.write_type, "CAS");
  check_truncations(TDM_PROTO_V5, TDM_OP_ERROR, b, n);
  /* A bad [inetaddr] size inside the reason map. */
  b[20] = 5; /* the pair's [inetaddr] size byte */
  assert_int_equal(tdm_response_decode(TDM_PROTO_V5, TDM_OP_ERROR, b, n, &r, NULL), TDM_EPROTO_MALFORMED);
  /* A negative failure count. */
  n = unhex("00001300 0000 0001 00000000 00000001 ffffffff 00", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_ERROR, b, n, &r, NULL), TDM_EPROTO_MALFORMED);
  /* A reason map count far beyond the body is refused before any loop. */
  n = unhex("00001300 0000 0001 00000000 00000001 7fffffff 00", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V5, TDM_OP_ERROR, b, n, &r, NULL), TDM_EPROTO_MALFORMED);
  /* UNPREPARED with a 2-byte id. */
  n = unhex("00002500 0001 78 0002 abcd", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V3, TDM_OP_ERROR, b, n, &r, NULL), 0);
  assert_int_equal(r.error.unprepared_id.len, 2);
  assert_int_equal(r.error.unprepared_id.ptr[1], 0xcd);
}

/* An unknown code (Scylla's rate limit error, 0xF000) keeps its extra fields and re-encodes them. */
static void test_error_unknown_code(void **state)
{
  uint8_t b[64];
  tdm_response_t r;
  size_t n = unhex("0000f000 0002 6869 01 02 03", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_ERROR, b, n, &r, NULL), 0);
  assert_int_equal(r.error.code, 0xf000);
  assert_int_equal(r.error.extra_len, 3);
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode(&w, &r), 0);
  assert_int_equal(w.len, n);
  assert_memory_equal(w.buf, b, n);
  tdm_writer_free(&w);
  /* Truncated inside the message is still malformed. */
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_ERROR, b, 7, &r, NULL), TDM_EPROTO_MALFORMED);
}

/* ---- READY, AUTHENTICATE, AUTH_*, SUPPORTED ---- */

static void test_simple_messages(void **state)
{
  static const uint8_t token[] = { 1, 2, 3 };
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_response_t in, out;
    uint8_t *buf;
    size_t len;

    in = (tdm_response_t){ .version = v, .opcode = TDM_OP_READY };
    roundtrip(&in, &out, &buf, &len);
    assert_int_equal(len, 0);
    free(buf);
    uint8_t junk = 0;
    assert_int_equal(tdm_response_decode(v, TDM_OP_READY, &junk, 1, &out, NULL), TDM_EPROTO_MALFORMED);

    in = (tdm_response_t){ .version = v, .opcode = TDM_OP_AUTHENTICATE,
                           .authenticator = TDM_STR("org.apache.cassandra.auth.PasswordAuthenticator") };
    roundtrip(&in, &out, &buf, &len);
    assert_str(out.authenticator, "org.apache.cassandra.auth.PasswordAuthenticator");
    free(buf);

    in = (tdm_response_t){ .version = v, .opcode = TDM_OP_AUTH_CHALLENGE, .token = { token, 3 } };
    roundtrip(&in, &out, &buf, &len);
    assert_int_equal(out.token.len, 3);
    assert_memory_equal(out.token.ptr, token, 3);
    free(buf);

    in = (tdm_response_t){ .version = v, .opcode = TDM_OP_AUTH_SUCCESS, .token = { NULL, -1 } };
    roundtrip(&in, &out, &buf, &len);
    assert_int_equal(out.token.len, -1);
    free(buf);
  }
}

static void test_supported(void **state)
{
  static const tdm_str_t pv[] = { TDM_STR("3/v3"), TDM_STR("4/v4"), TDM_STR("5/v5") };
  static const tdm_str_t comp[] = { TDM_STR("lz4"), TDM_STR("snappy") };
  static const tdm_str_t cql[] = { TDM_STR("3.4.7") };
  const tdm_response_option_t entries[] = {
    { TDM_STR("PROTOCOL_VERSIONS"), { .count = 3, .items = pv } },
    { TDM_STR("COMPRESSION"), { .count = 2, .items = comp } },
    { TDM_STR("CQL_VERSION"), { .count = 1, .items = cql } },
    { TDM_STR("EMPTY"), { .count = 0 } },
  };
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    tdm_response_t in = { .version = versions[vi], .opcode = TDM_OP_SUPPORTED,
                          .supported = { .count = 4, .entries = entries } }, out;
    uint8_t *buf;
    size_t len;
    roundtrip(&in, &out, &buf, &len);
    const tdm_response_supported_t *s = &out.supported;
    assert_true(s->has_protocol_versions && s->has_compression && s->has_cql_version);
    assert_strlist(&s->protocol_versions, (const char *const[]){ "3/v3", "4/v4", "5/v5" }, 3);
    assert_strlist(&s->compression, (const char *const[]){ "lz4", "snappy" }, 2);
    assert_strlist(&s->cql_version, (const char *const[]){ "3.4.7" }, 1);
    size_t pos = 0, keys = 0;
    tdm_str_t key;
    tdm_response_strlist_t vals;
    int rc;
    while ((rc = tdm_response_supported_next(s, &pos, &key, &vals)) == 1) {
      assert_true(tdm_str_eq(key, entries[keys].key));
      assert_int_equal(vals.count, entries[keys].values.count);
      keys++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(keys, 4);
    assert_int_equal(tdm_response_supported_get(s, TDM_STR("compression"), &vals), 0);
    assert_int_equal(vals.count, 2);
    assert_int_equal(tdm_response_supported_get(s, TDM_STR("NOPE"), &vals), TDM_ENOTFOUND);
    free(buf);
  }
  /* Cassandra 3.x omits PROTOCOL_VERSIONS. */
  uint8_t b[64];
  tdm_response_t r;
  size_t n = unhex("0001 000b 43514c5f56455253494f4e 0001 0005 332e342e34", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_SUPPORTED, b, n, &r, NULL), 0);
  assert_false(r.supported.has_protocol_versions);
  assert_true(r.supported.has_cql_version);
  assert_strlist(&r.supported.cql_version, (const char *const[]){ "3.4.4" }, 1);
}

/* ---- EVENT, Schema_change, Void, Set_keyspace ---- */

static void test_events(void **state)
{
  static const tdm_str_t args[] = { TDM_STR("int"), TDM_STR("frozen<list<text>>") };
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    uint8_t v = versions[vi];
    tdm_response_t in, out;
    uint8_t *buf;
    size_t len;

    in = (tdm_response_t){ .version = v, .opcode = TDM_OP_EVENT,
                           .event = { .kind = TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE, .change = TDM_STR("NEW_NODE"),
                                      .addr = addr6, .addr_len = 16, .port = 9042 } };
    roundtrip(&in, &out, &buf, &len);
    assert_int_equal(out.event.kind, TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE);
    assert_str(out.event.change, "NEW_NODE");
    assert_int_equal(out.event.addr_len, 16);
    assert_memory_equal(out.event.addr, addr6, 16);
    assert_int_equal(out.event.port, 9042);
    free(buf);

    in.event = (tdm_response_event_t){ .kind = TDM_RESPONSE_EVENT_STATUS_CHANGE, .change = TDM_STR("DOWN"),
                                       .addr = addr4, .addr_len = 4, .port = 19042 };
    roundtrip(&in, &out, &buf, &len);
    assert_int_equal(out.event.kind, TDM_RESPONSE_EVENT_STATUS_CHANGE);
    assert_str(out.event.change, "DOWN");
    assert_memory_equal(out.event.addr, addr4, 4);
    assert_int_equal(out.event.port, 19042);
    free(buf);

    for (int t = TDM_RESPONSE_TARGET_KEYSPACE; t <= TDM_RESPONSE_TARGET_AGGREGATE; t++) {
      tdm_response_schema_change_t sc = { .change_type = TDM_STR("CREATED"), .target = (tdm_response_target_t)t,
                                          .keyspace = TDM_STR("ks") };
      if (t != TDM_RESPONSE_TARGET_KEYSPACE) sc.name = TDM_STR("obj");
      if (t >= TDM_RESPONSE_TARGET_FUNCTION) sc.arg_types = (tdm_response_strlist_t){ .count = 2, .items = args };
      in.event = (tdm_response_event_t){ .kind = TDM_RESPONSE_EVENT_SCHEMA_CHANGE, .schema = sc };
      roundtrip(&in, &out, &buf, &len);
      assert_int_equal(out.event.kind, TDM_RESPONSE_EVENT_SCHEMA_CHANGE);
      assert_int_equal(out.event.schema.target, t);
      assert_str(out.event.schema.change_type, "CREATED");
      assert_str(out.event.schema.keyspace, "ks");
      assert_str(out.event.schema.name, t == TDM_RESPONSE_TARGET_KEYSPACE ? "" : "obj");
      if (t >= TDM_RESPONSE_TARGET_FUNCTION)
        assert_strlist(&out.event.schema.arg_types, (const char *const[]){ "int", "frozen<list<text>>" }, 2);
      free(buf);

      /* The same change as a RESULT. */
      tdm_response_t rin = { .version = v, .opcode = TDM_OP_RESULT,
                             .result = { .kind = TDM_RESULT_SCHEMA_CHANGE, .schema_change = sc } };
      roundtrip(&rin, &out, &buf, &len);
      assert_int_equal(out.result.kind, TDM_RESULT_SCHEMA_CHANGE);
      assert_int_equal(out.result.schema_change.target, t);
      int32_t kind;
      assert_int_equal(tdm_response_peek_result_kind(buf, len, &kind), 0);
      assert_int_equal(kind, TDM_RESULT_SCHEMA_CHANGE);
      free(buf);
    }
  }
}

static void test_event_vectors(void **state)
{
  uint8_t b[128];
  tdm_response_t r;
  /* STATUS_CHANGE UP 127.0.0.1:9042 */
  size_t n = unhex("000d 5354415455535f4348414e4745 0002 5550 04 7f000001 00002352", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_EVENT, b, n, &r, NULL), 0);
  assert_int_equal(r.event.kind, TDM_RESPONSE_EVENT_STATUS_CHANGE);
  assert_str(r.event.change, "UP");
  assert_int_equal(r.event.port, 9042);
  check_truncations(TDM_PROTO_V4, TDM_OP_EVENT, b, n);
  /* Unknown event type. */
  n = unhex("0003 464f4f", b, sizeof(b));
  const char *why = NULL;
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_EVENT, b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "unknown event type");
  /* SCHEMA_CHANGE with an unknown target. */
  n = unhex("000d 534348454d415f4348414e4745 0007 43524541544544 0005 494e444558 0002 6b73", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_EVENT, b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "unknown schema change target");
  /* v2 layout: <change><keyspace><table>. */
  n = unhex("00000005 0007 44524f50504544 0002 6b73 0000", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V2, TDM_OP_RESULT, b, n, &r, NULL), 0);
  assert_int_equal(r.result.schema_change.target, TDM_RESPONSE_TARGET_KEYSPACE);
  assert_str(r.result.schema_change.keyspace, "ks");
}

static void test_void_and_set_keyspace(void **state)
{
  for (size_t vi = 0; vi < TDM_ARRAY_SIZE(versions); vi++) {
    tdm_response_t in = { .version = versions[vi], .opcode = TDM_OP_RESULT, .result = { .kind = TDM_RESULT_VOID } }, out;
    uint8_t *buf;
    size_t len;
    roundtrip(&in, &out, &buf, &len);
    assert_int_equal(len, 4);
    assert_int_equal(out.result.kind, TDM_RESULT_VOID);
    free(buf);
    in.result = (tdm_response_result_t){ .kind = TDM_RESULT_SET_KEYSPACE, .keyspace = TDM_STR("shop") };
    roundtrip(&in, &out, &buf, &len);
    assert_str(out.result.keyspace, "shop");
    assert_int_equal(out.result.kind_offset, 0);
    free(buf);
  }
}

static void test_bad_kind_version_opcode(void **state)
{
  uint8_t b[8];
  tdm_response_t r;
  const char *why = NULL;
  int32_t kind;
  size_t n = unhex("00000006", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_RESULT, b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "unknown RESULT kind");
  assert_int_equal(tdm_response_peek_result_kind(b, n, &kind), TDM_EPROTO_MALFORMED);
  n = unhex("00000000", b, sizeof(b));
  assert_int_equal(tdm_response_peek_result_kind(b, n, &kind), TDM_EPROTO_MALFORMED);
  n = unhex("00000001", b, sizeof(b));
  assert_int_equal(tdm_response_decode(TDM_PROTO_V1, TDM_OP_RESULT, b, n, &r, NULL), TDM_EPROTO_VERSION);
  assert_int_equal(tdm_response_decode(6, TDM_OP_RESULT, b, n, &r, NULL), TDM_EPROTO_VERSION);
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_QUERY, b, n, &r, NULL), TDM_EPROTO_OPCODE);
  assert_int_equal(tdm_response_decode(TDM_PROTO_DSE_V2, TDM_OP_RESULT, b, n, &r, NULL), 0);
}

/* Encoders refuse what they cannot express. */
static void test_encoder_refusals(void **state)
{
  tdm_writer_t w;
  tdm_response_schema_change_t sc = { .change_type = TDM_STR("CREATED"), .target = TDM_RESPONSE_TARGET_TYPE,
                                      .keyspace = TDM_STR("ks"), .name = TDM_STR("t") };
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode_schema_change(&w, TDM_PROTO_V2, &sc), TDM_EINVAL);
  tdm_writer_free(&w);
  sc.target = TDM_RESPONSE_TARGET_NONE;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode_schema_change(&w, TDM_PROTO_V4, &sc), TDM_EINVAL);
  tdm_writer_free(&w);
  tdm_response_event_t ev = { .kind = TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE, .change = TDM_STR("NEW_NODE"),
                              .addr = addr4, .addr_len = 5 };
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode_event(&w, TDM_PROTO_V4, &ev), TDM_EINVAL);
  tdm_writer_free(&w);
  tdm_response_error_t e;
  fill_error(&e, TDM_ERR_READ_FAILURE);
  tdm_response_reason_t bad = { addr4, 3, 1 };
  e.reasons = &bad;
  e.failures = 1;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode_error(&w, TDM_PROTO_V5, &e), TDM_EINVAL);
  tdm_writer_free(&w);
  /* A fixed buffer that is too small reports overflow. */
  uint8_t small[4];
  tdm_writer_init_fixed(&w, small, sizeof(small));
  assert_int_equal(tdm_response_encode_set_keyspace(&w, TDM_STR("keyspace")), TDM_EOVERFLOW);
}

/* The frame-level prefix: tracing id, warnings, custom payload, then the message. */
static void test_strip_prefix(void **state)
{
  uint8_t b[128];
  tdm_response_prefix_t p;
  size_t n = unhex("000102030405060708090a0b0c0d0e0f"   /* tracing id */
                   "0001 0004 7761726e"                 /* warnings: ["warn"] */
                   "0001 0001 6b 00000002 abcd"         /* custom payload: {k: abcd} */
                   "00000001",                          /* RESULT Void */
                   b, sizeof(b));
  uint8_t flags = TDM_FLAG_TRACING | TDM_FLAG_WARNING | TDM_FLAG_CUSTOM_PAYLOAD;
  assert_int_equal(tdm_response_strip_prefix(TDM_PROTO_V4, flags, b, n, &p), 0);
  assert_int_equal(p.message_offset, n - 4);
  assert_ptr_equal(p.tracing_id, b);
  assert_strlist(&p.warnings, (const char *const[]){ "warn" }, 1);
  assert_int_equal(p.custom_payload_len, 11);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_RESULT, b + p.message_offset, n - p.message_offset, &r,
                                       NULL), 0);
  for (size_t k = 0; k < n - 4; k++)
    assert_int_equal(tdm_response_strip_prefix(TDM_PROTO_V4, flags, b, k, &p), TDM_EPROTO_MALFORMED);
  /* v3 has no warnings or custom payloads: only the tracing id is skipped. */
  assert_int_equal(tdm_response_strip_prefix(TDM_PROTO_V3, flags, b, n, &p), 0);
  assert_int_equal(p.message_offset, 16);
  assert_int_equal(tdm_response_strip_prefix(TDM_PROTO_V4, 0, b, n, &p), 0);
  assert_int_equal(p.message_offset, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_error_every_code_every_version),
    cmocka_unit_test(test_error_cas_contentions),
    cmocka_unit_test(test_error_wire_vectors),
    cmocka_unit_test(test_error_unknown_code),
    cmocka_unit_test(test_simple_messages),
    cmocka_unit_test(test_supported),
    cmocka_unit_test(test_events),
    cmocka_unit_test(test_event_vectors),
    cmocka_unit_test(test_void_and_set_keyspace),
    cmocka_unit_test(test_bad_kind_version_opcode),
    cmocka_unit_test(test_encoder_refusals),
    cmocka_unit_test(test_strip_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
