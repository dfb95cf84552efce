/* STARTUP, AUTH_RESPONSE, OPTIONS and REGISTER bodies, the any-opcode decoder and the routing peeks:
 * golden bytes, round trips, case-insensitive STARTUP keys and iteration, every truncation point, and
 * the defects a PROTOCOL_ERROR must name. */
#include <tandem/proto/request.h>
#include "testlib.h"

static void assert_prefixes_fail(uint8_t opcode, const uint8_t *body, size_t len)
{
  for (size_t k = 0; k < len; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    assert_non_null(copy);
    memcpy(copy, body, k);
    tdm_request_t req;
    const char *why = NULL;
    int rc = tdm_request_decode(TDM_PROTO_V4, opcode, copy, k, &req, &why);
    if (rc != TDM_EPROTO_MALFORMED) fail_msg("prefix %zu of %zu decoded with %d (op %#x)", k, len, rc, opcode);
    assert_non_null(why);
    free(copy);
  }
}

static void test_startup_golden(void **state)
{
  size_t n;
  /* {CQL_VERSION: 3.0.0, compression: lz4, DRIVER_NAME: x, MY_OPT: y} as the Python driver sends it, but
   * with one key in lower case. */
  uint8_t *b = tdm_test_hex("0004"
                            "000b 43514c5f56455253494f4e 0005 332e302e30"
                            "000b 636f6d7072657373696f6e 0003 6c7a34"
                            "000b 4452495645525f4e414d45 0001 78"
                            "0006 4d595f4f5054 0001 79", &n);
  tdm_startup_t s;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_startup(b, n, &s, &why), 0);
  assert_int_equal(s.count, 4);
  assert_true(tdm_str_eq_cstr(s.cql_version, "3.0.0"));
  assert_true(tdm_str_eq_cstr(s.compression, "lz4"));
  assert_true(tdm_str_eq_cstr(s.driver_name, "x"));
  assert_int_equal(s.present, TDM_REQUEST_STARTUP_CQL_VERSION | TDM_REQUEST_STARTUP_COMPRESSION |
                              TDM_REQUEST_STARTUP_DRIVER_NAME);
  assert_int_equal(s.driver_version.len, 0);
  tdm_str_t v;
  assert_true(tdm_startup_get(&s, TDM_STR("my_opt"), &v));
  assert_true(tdm_str_eq_cstr(v, "y"));
  assert_false(tdm_startup_get(&s, TDM_STR("MY_OP"), &v));
  /* Iteration gives every entry in wire order, original spelling. */
  static const char *keys[] = { "CQL_VERSION", "compression", "DRIVER_NAME", "MY_OPT" };
  tdm_startup_iter_t it;
  tdm_str_t k;
  size_t i = 0;
  tdm_startup_iter_init(&it, &s);
  while (tdm_startup_next(&it, &k, &v)) {
    assert_true(i < 4);
    assert_true(tdm_str_eq_cstr(k, keys[i]));
    i++;
  }
  assert_int_equal(i, 4);
  assert_prefixes_fail(TDM_OP_STARTUP, b, n);

  /* Re-encoding from the iteration reproduces the body. */
  tdm_str_t ks[4], vs[4];
  tdm_startup_iter_init(&it, &s);
  for (i = 0; tdm_startup_next(&it, &ks[i], &vs[i]); i++) {}
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_startup(&w, ks, vs, i), 0);
  assert_int_equal(w.len, n);
  assert_memory_equal(w.buf, b, n);
  tdm_writer_free(&w);
  free(b);
}

static void test_startup_all_known_keys(void **state)
{
  static const char *names[] = { "CQL_VERSION", "COMPRESSION", "DRIVER_NAME", "DRIVER_VERSION", "APPLICATION_NAME",
                                 "APPLICATION_VERSION", "CLIENT_ID", "THROW_ON_OVERLOAD", "NO_COMPACT" };
  tdm_str_t ks[9], vs[9];
  char vals[9][16];
  for (int i = 0; i < 9; i++) {
    snprintf(vals[i], sizeof(vals[i]), "v%d", i);
    ks[i] = tdm_str_from(names[i]);
    vs[i] = tdm_str_from(vals[i]);
  }
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_startup(&w, ks, vs, 9), 0);
  tdm_startup_t s;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_startup(w.buf, w.len, &s, &why), 0);
  assert_int_equal(s.present, 0x1ff);
  const tdm_str_t *fields[] = { &s.cql_version, &s.compression, &s.driver_name, &s.driver_version,
                                &s.application_name, &s.application_version, &s.client_id,
                                &s.throw_on_overload, &s.no_compact };
  for (int i = 0; i < 9; i++) assert_true(tdm_str_eq_cstr(*fields[i], vals[i]));
  tdm_writer_free(&w);
}

static void test_startup_defects(void **state)
{
  static const struct {
    const char *hex; /* body bytes */
    const char *why; /* expected reason */
  } cases[] = {
    { "00", "STARTUP option count truncated" },
    { "0100 0001 41", "STARTUP option count exceeds the body" },
    { "0002 0001 41 0003 424242 00", "STARTUP option name truncated" },
    { "0001 0001 41 0009 42", "STARTUP option value exceeds the body" },
    { "0002 000b 434f4d5052455353494f4e 0003 6c7a34 000b 436f6d7072657373696f6e 0006 736e61707079",
      "duplicate STARTUP option" },
    { "0000 00", "trailing bytes after the message" },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    size_t n;
    uint8_t *b = tdm_test_hex(cases[i].hex, &n);
    tdm_startup_t s;
    const char *why = NULL;
    assert_int_equal(tdm_request_decode_startup(b, n, &s, &why), TDM_EPROTO_MALFORMED);
    if (!why || strcmp(why, cases[i].why))
      fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].why, why ? why : "");
    free(b);
  }
}

static void test_auth_response(void **state)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  static const char token[] = "\0cassandra\0cassandra";
  assert_int_equal(tdm_request_encode_auth_response(&w, token, (int32_t)sizeof(token) - 1), 0);
  assert_int_equal(w.len, 4 + 20);
  tdm_bytes_t t;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_auth_response(w.buf, w.len, &t, &why), 0);
  assert_int_equal(t.len, 20);
  assert_memory_equal(t.ptr, token, 20);
  assert_prefixes_fail(TDM_OP_AUTH_RESPONSE, w.buf, w.len);
  tdm_writer_free(&w);
  /* Null token (any negative length), empty token, and defects. */
  uint8_t null_tok[] = { 0xff, 0xff, 0xff, 0xfe };
  assert_int_equal(tdm_request_decode_auth_response(null_tok, 4, &t, &why), 0);
  assert_int_equal(t.len, -1);
  uint8_t empty[] = { 0, 0, 0, 0 };
  assert_int_equal(tdm_request_decode_auth_response(empty, 4, &t, &why), 0);
  assert_int_equal(t.len, 0);
  uint8_t toolong[] = { 0, 0, 0, 9, 'x' };
  assert_int_equal(tdm_request_decode_auth_response(toolong, 5, &t, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "token exceeds the body");
  uint8_t extra[] = { 0, 0, 0, 0, 1 };
  assert_int_equal(tdm_request_decode_auth_response(extra, 5, &t, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "trailing bytes after the message");
}

static void test_options(void **state)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_options(&w), 0);
  assert_int_equal(w.len, 0);
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_options(NULL, 0, &why), 0);
  uint8_t one = 0;
  assert_int_equal(tdm_request_decode_options(&one, 1, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "OPTIONS body must be empty");
  tdm_request_t req;
  assert_int_equal(tdm_request_decode(TDM_PROTO_V5, TDM_OP_OPTIONS, NULL, 0, &req, NULL), 0);
  assert_int_equal(req.opcode, TDM_OP_OPTIONS);
}

static void test_register(void **state)
{
  size_t n;
  uint8_t *b = tdm_test_hex("0003 000f 544f504f4c4f47595f4348414e4745 000d 5354415455535f4348414e4745"
                            " 000d 534348454d415f4348414e4745", &n);
  tdm_register_t r;
  const char *why = NULL;
  assert_int_equal(tdm_request_decode_register(b, n, &r, &why), 0);
  assert_int_equal(r.count, 3);
  assert_int_equal(r.events, TDM_REQUEST_EVENT_TOPOLOGY_CHANGE | TDM_REQUEST_EVENT_STATUS_CHANGE |
                             TDM_REQUEST_EVENT_SCHEMA_CHANGE);
  tdm_str_t ev[3];
  size_t pos = 0, i = 0;
  while (i < 3 && tdm_register_next(&r, &pos, &ev[i])) i++;
  assert_int_equal(i, 3);
  assert_false(tdm_register_next(&r, &pos, &ev[0]));
  assert_true(tdm_str_eq_cstr(ev[1], "STATUS_CHANGE"));
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_register(&w, ev, 3), 0);
  assert_int_equal(w.len, n);
  assert_memory_equal(w.buf, b, n);
  tdm_writer_free(&w);
  assert_prefixes_fail(TDM_OP_REGISTER, b, n);
  free(b);

  b = tdm_test_hex("0001 000d 534348454d415f4348414e4745", &n);
  assert_int_equal(tdm_request_decode_register(b, n, &r, &why), 0);
  assert_int_equal(r.events, TDM_REQUEST_EVENT_SCHEMA_CHANGE);
  b[4] = 's'; /* event names are case-sensitive, as in Cassandra */
  assert_int_equal(tdm_request_decode_register(b, n, &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "unknown event type");
  free(b);
  uint8_t huge[] = { 0xff, 0xff, 0, 0 };
  assert_int_equal(tdm_request_decode_register(huge, sizeof(huge), &r, &why), TDM_EPROTO_MALFORMED);
  assert_string_equal(why, "event type count exceeds the body");
}

static void test_decode_dispatch(void **state)
{
  tdm_request_t req;
  const char *why = NULL;
  uint8_t body[] = { 0, 0, 0, 1, '*', 0, 1, 0 };
  assert_int_equal(tdm_request_decode(TDM_PROTO_V4, TDM_OP_QUERY, body, sizeof(body), &req, &why), 0);
  assert_int_equal(req.version, TDM_PROTO_V4);
  assert_true(tdm_str_eq_cstr(req.u.query.query, "*"));
  /* Responses and unknown opcodes are not requests. */
  static const uint8_t not_requests[] = { TDM_OP_ERROR, TDM_OP_READY, TDM_OP_AUTHENTICATE, TDM_OP_SUPPORTED,
                                          TDM_OP_RESULT, TDM_OP_EVENT, TDM_OP_AUTH_CHALLENGE, TDM_OP_AUTH_SUCCESS,
                                          TDM_OP_REVISE_REQUEST, 0x04, 0x11, 0x7f };
  for (size_t i = 0; i < sizeof(not_requests); i++) {
    why = NULL;
    assert_int_equal(tdm_request_decode(TDM_PROTO_V4, not_requests[i], body, sizeof(body), &req, &why),
                     TDM_EPROTO_OPCODE);
    assert_string_equal(why, "not a request opcode");
  }
  assert_int_equal(tdm_request_decode(TDM_PROTO_V1, TDM_OP_QUERY, body, sizeof(body), &req, &why), TDM_EPROTO_VERSION);
}

static void test_peeks(void **state)
{
  uint8_t q[] = { 0, 0, 0, 3, 'U', 'S', 'E', 0, 4, 0 };
  tdm_str_t text;
  uint16_t cl;
  assert_int_equal(tdm_request_peek_query(TDM_PROTO_V4, q, sizeof(q), &text), 0);
  assert_true(tdm_str_eq_cstr(text, "USE"));
  assert_int_equal(tdm_request_peek_consistency(TDM_PROTO_V4, TDM_OP_QUERY, q, sizeof(q), &cl), 0);
  assert_int_equal(cl, TDM_CL_QUORUM);
  /* Peeks read only what they need: a truncated tail does not matter, a truncated head does. */
  assert_int_equal(tdm_request_peek_query(TDM_PROTO_V4, q, 7, &text), 0);
  assert_int_equal(tdm_request_peek_query(TDM_PROTO_V4, q, 6, &text), TDM_EPROTO_MALFORMED);
  assert_int_equal(tdm_request_peek_consistency(TDM_PROTO_V4, TDM_OP_QUERY, q, 8, &cl), TDM_EPROTO_MALFORMED);
  assert_int_equal(tdm_request_peek_consistency(TDM_PROTO_V4, TDM_OP_PREPARE, q, sizeof(q), &cl), TDM_EINVAL);
  uint8_t neg[] = { 0xff, 0xff, 0xff, 0xff, 0 };
  assert_int_equal(tdm_request_peek_query(TDM_PROTO_V4, neg, sizeof(neg), &text), TDM_EPROTO_MALFORMED);
  tdm_bytes_t id;
  uint8_t ex[] = { 0, 9, 1, 2 };
  assert_int_equal(tdm_request_peek_execute_id(TDM_PROTO_V4, ex, sizeof(ex), &id, NULL), TDM_EPROTO_MALFORMED);
  /* A BATCH peek skips children; a count past the children fails. */
  uint8_t batch[] = { 0, 0, 1, 0, 0, 0, 0, 1, 'Q', 0, 0, 0, 6, 0 };
  assert_int_equal(tdm_request_peek_consistency(TDM_PROTO_V4, TDM_OP_BATCH, batch, sizeof(batch), &cl), 0);
  assert_int_equal(cl, TDM_CL_LOCAL_QUORUM);
  batch[2] = 2;
  assert_int_equal(tdm_request_peek_consistency(TDM_PROTO_V4, TDM_OP_BATCH, batch, sizeof(batch), &cl),
                   TDM_EPROTO_MALFORMED);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_startup_golden),
    cmocka_unit_test(test_startup_all_known_keys),
    cmocka_unit_test(test_startup_defects),
    cmocka_unit_test(test_auth_response),
    cmocka_unit_test(test_options),
    cmocka_unit_test(test_register),
    cmocka_unit_test(test_decode_dispatch),
    cmocka_unit_test(test_peeks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
