/* The mock node's handshake (tests/mock): OPTIONS/SUPPORTED, STARTUP on v3/v4/v5 with and without
 * lz4/snappy (v5 segments after READY), DSE versions when listed, Cassandra's refusal of other versions,
 * SASL PLAIN success and failure (with the user recorded per connection), the DSE mechanism dance, and
 * PROTOCOL_ERROR + close for malformed input. Every test ends with a clean (ASan-clean) mock exit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "mockctl.h"

#define TIMEOUT 5000

static void spawn(tdm_mockctl_t *m, const char *const *args)
{
  assert_int_equal(tdm_mockctl_spawn(m, args, 20000), 0);
}

static void stop(tdm_mockctl_t *m) { assert_int_equal(tdm_mockctl_stop(m, 10000), 0); }

/* A SELECT on system.local answered with one row proves the connection is usable. */
static void assert_serves(tdm_mockctl_cql_t *c, int16_t stream)
{
  tdm_mockctl_frame_t f;
  int32_t rows = -1;
  assert_int_equal(tdm_mockctl_cql_query(c, stream, "SELECT * FROM system.local WHERE key='local'", &f, TIMEOUT), 0);
  assert_int_equal(f.h.opcode, TDM_OP_RESULT);
  assert_int_equal(f.h.version, c->version);
  assert_int_equal(tdm_mockctl_rows_count(&f, &rows), 0);
  assert_int_equal(rows, 1);
  tdm_mockctl_frame_free(&f);
}

static void expect_error(tdm_mockctl_cql_t *c, int16_t stream, uint32_t code, const char *msg_prefix)
{
  tdm_mockctl_frame_t f;
  uint32_t got;
  char msg[512];
  assert_int_equal(tdm_mockctl_cql_recv(c, TIMEOUT, &f), 0);
  assert_int_equal(f.h.stream, stream);
  assert_int_equal(tdm_mockctl_error_code(&f, &got, msg, sizeof(msg)), 0);
  assert_int_equal(got, code);
  if (msg_prefix) assert_memory_equal(msg, msg_prefix, strlen(msg_prefix));
  tdm_mockctl_frame_free(&f);
}

static void test_options_supported(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  const char *args[] = { "--node", "127.0.0.1:0", "--compression", "lz4", NULL };
  char host[64];
  uint16_t port;
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_node(&m, 0, host, sizeof(host), &port), 0);
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V4), 0);
  assert_int_equal(tdm_mockctl_cql_request(&c, 3, TDM_OP_OPTIONS, NULL, 0, &f, TIMEOUT), 0);
  assert_int_equal(f.h.opcode, TDM_OP_SUPPORTED);
  tdm_response_t r;
  tdm_response_strlist_t l;
  tdm_str_t s;
  size_t pos = 0;
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(tdm_response_supported_get(&r.supported, TDM_STR("PROTOCOL_VERSIONS"), &l), 0);
  assert_int_equal(l.count, 3);
  assert_int_equal(tdm_response_strlist_next(&l, &pos, &s), 1);
  assert_true(tdm_str_eq_cstr(s, "3/v3"));
  assert_int_equal(tdm_response_supported_get(&r.supported, TDM_STR("COMPRESSION"), &l), 0);
  assert_int_equal(l.count, 1);
  pos = 0;
  assert_int_equal(tdm_response_strlist_next(&l, &pos, &s), 1);
  assert_true(tdm_str_eq_cstr(s, "lz4"));
  assert_int_equal(tdm_response_supported_get(&r.supported, TDM_STR("CQL_VERSION"), &l), 0);
  tdm_mockctl_frame_free(&f);
  /* a request before STARTUP is refused, the connection stays usable */
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_query(&w, TDM_PROTO_V4, TDM_STR("SELECT * FROM system.local"), &p);
  assert_int_equal(tdm_mockctl_cql_send(&c, 4, TDM_OP_QUERY, w.buf, w.len), 0);
  tdm_writer_free(&w);
  expect_error(&c, 4, TDM_ERR_PROTOCOL_ERROR, "Unexpected message QUERY, expecting STARTUP or OPTIONS");
  uint32_t code;
  assert_int_equal(tdm_mockctl_cql_startup(&c, NULL, NULL, NULL, &code), 0);
  assert_serves(&c, 5);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_count(&m, "op=OPTIONS"), 1);
  stop(&m);
}

/* Every version and compression pair the mock serves by default. */
static void test_versions_and_compression(void **state)
{
  (void)state;
  static const struct { uint8_t v; const char *comp; } cases[] = {
    { 3, NULL }, { 3, "lz4" }, { 3, "snappy" }, { 4, NULL }, { 4, "lz4" }, { 4, "snappy" }, { 5, NULL }, { 5, "lz4" },
  };
  tdm_mockctl_t m;
  const char *args[] = { "--node", "127.0.0.1:0", NULL };
  spawn(&m, args);
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    tdm_mockctl_cql_t c;
    tdm_mockctl_frame_t f;
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, cases[i].v, cases[i].comp, &c), 0);
    assert_int_equal(c.framed, cases[i].v == 5);
    /* a body big enough to be worth compressing, so the compressed path is taken */
    char cql[600];
    snprintf(cql, sizeof(cql), "SELECT * FROM system.local WHERE key='local' /* %0500d */", 0);
    assert_int_equal(tdm_mockctl_cql_query(&c, 7, cql, &f, TIMEOUT), 0);
    assert_int_equal(f.h.opcode, TDM_OP_RESULT);
    if (cases[i].comp && cases[i].v != 5) assert_true(f.h.flags & TDM_FLAG_COMPRESSED);
    tdm_bytes_t cell;
    uint16_t type;
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "native_protocol_version", &cell, &type), 0);
    assert_int_equal(cell.len, 1);
    assert_int_equal(cell.ptr[0], '0' + cases[i].v);
    tdm_mockctl_frame_free(&f);
    tdm_mockctl_cql_close(&c);
  }
  char reply[64];
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "COUNT what=connections"), 0);
  assert_string_equal(reply, "OK 8");
  stop(&m);
}

static void test_bad_compression(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  uint32_t code = 0;
  const char *args[] = { "--node", "127.0.0.1:0", "--compression", "lz4", NULL };
  char host[64];
  uint16_t port;
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_node(&m, 0, host, sizeof(host), &port), 0);
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V4), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, "snappy", NULL, NULL, &code), TDM_EINVAL);
  assert_int_equal(code, TDM_ERR_PROTOCOL_ERROR);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V5), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, "lz4", NULL, NULL, &code), 0);
  assert_serves(&c, 1);
  tdm_mockctl_cql_close(&c);
  stop(&m);
  /* snappy with v5 is refused even when snappy is enabled */
  const char *args2[] = { "--node", "127.0.0.1:0", NULL };
  spawn(&m, args2);
  assert_int_equal(tdm_mockctl_node(&m, 0, host, sizeof(host), &port), 0);
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V5), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, "snappy", NULL, NULL, &code), TDM_EINVAL);
  assert_int_equal(code, TDM_ERR_PROTOCOL_ERROR);
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

/* Sends OPTIONS in `version` and checks Cassandra's refusal: stream 0, the header version, the text. */
static void expect_refusal(tdm_mockctl_t *m, uint8_t version, uint8_t header_version, const char *list)
{
  char host[64], want[256], msg[512];
  uint16_t port;
  uint8_t raw[9] = { version, 0, 0, 9, TDM_OP_OPTIONS, 0, 0, 0, 0 };
  size_t raw_len = 9;
  if (version <= 2) { /* v1/v2: 8-byte header with a one-byte stream */
    uint8_t v2[8] = { version, 0, 9, TDM_OP_OPTIONS, 0, 0, 0, 0 };
    memcpy(raw, v2, 8);
    raw_len = 8;
  }
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  uint32_t code;
  assert_int_equal(tdm_mockctl_node(m, 0, host, sizeof(host), &port), 0);
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, version), 0);
  assert_int_equal(tdm_mockctl_cql_send_raw(&c, raw, raw_len), 0);
  assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), 0);
  assert_int_equal(f.h.version, header_version);
  assert_true(f.h.response);
  assert_int_equal(f.h.stream, 0);
  assert_int_equal(tdm_mockctl_error_code(&f, &code, msg, sizeof(msg)), 0);
  assert_int_equal(code, TDM_ERR_PROTOCOL_ERROR);
  snprintf(want, sizeof(want), "Invalid or unsupported protocol version (%u); supported versions are (%s)", version,
           list);
  assert_string_equal(msg, want);
  tdm_mockctl_frame_free(&f);
  assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), TDM_ECLOSED); /* and the node hangs up */
  tdm_mockctl_cql_close(&c);
}

static void test_version_refused(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  const char *args[] = { "--node", "127.0.0.1:0", NULL };
  spawn(&m, args);
  expect_refusal(&m, 6, 5, "3/v3, 4/v4, 5/v5");
  expect_refusal(&m, 0x42, 5, "3/v3, 4/v4, 5/v5");
  expect_refusal(&m, 2, 2, "3/v3, 4/v4, 5/v5");
  char reply[2048];
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "STATS"), 0);
  assert_non_null(strstr(reply, "\"version_refused\":3"));
  stop(&m);
  const char *args2[] = { "--node", "127.0.0.1:0", "--protocols", "3,4", NULL };
  spawn(&m, args2);
  expect_refusal(&m, 5, 4, "3/v3, 4/v4");
  stop(&m);
}

static void test_dse_versions(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  const char *args[] = { "--node", "127.0.0.1:0", "--protocols", "4,dse_v1,dse_v2,5", NULL };
  spawn(&m, args);
  const uint8_t versions[] = { TDM_PROTO_DSE_V1, TDM_PROTO_DSE_V2 };
  for (size_t i = 0; i < 2; i++) {
    tdm_mockctl_cql_t c;
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, versions[i], "lz4", &c), 0);
    assert_false(c.framed); /* DSE versions have no segments */
    assert_serves(&c, 2);
    tdm_mockctl_cql_close(&c);
  }
  expect_refusal(&m, 3, 3, "4/v4, 5/v5, 65/dse-v1, 66/dse-v2");
  stop(&m);
}

static void test_auth(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  uint32_t code = 0;
  char host[64], reply[1024];
  uint16_t port;
  const char *args[] = { "--node", "127.0.0.1:0", "--auth", "alice:secret", "--auth", "bob:hunter2", NULL };
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_node(&m, 0, host, sizeof(host), &port), 0);
  for (uint8_t v = 3; v <= 5; v++) {
    assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, v), 0);
    assert_int_equal(tdm_mockctl_cql_startup(&c, v == 5 ? "lz4" : NULL, "alice", "secret", &code), 0);
    assert_serves(&c, 1);
    tdm_mockctl_cql_close(&c);
  }
  /* wrong password: BAD_CREDENTIALS, the connection stays open and a retry succeeds */
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V5), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, NULL, "bob", "wrong", &code), TDM_EINVAL);
  assert_int_equal(code, TDM_ERR_BAD_CREDENTIALS);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_auth_response(&w, "\0bob\0hunter2", 12);
  assert_int_equal(tdm_mockctl_cql_request(&c, 9, TDM_OP_AUTH_RESPONSE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_AUTH_SUCCESS);
  tdm_mockctl_frame_free(&f);
  assert_serves(&c, 2);
  /* the connection list shows who each connection authenticated as */
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "CONNS"), 0);
  assert_non_null(strstr(reply, "\"user\":\"bob\""));
  tdm_mockctl_cql_close(&c);
  /* a query before authentication is refused */
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V4), 0);
  tdm_writer_init(&w);
  tdm_str_t k = TDM_STR("CQL_VERSION"), v = TDM_STR("3.0.0");
  tdm_request_encode_startup(&w, &k, &v, 1);
  assert_int_equal(tdm_mockctl_cql_request(&c, 0, TDM_OP_STARTUP, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_AUTHENTICATE);
  tdm_mockctl_frame_free(&f);
  assert_int_equal(tdm_mockctl_cql_query(&c, 1, "SELECT * FROM system.local", &f, TIMEOUT), 0);
  assert_int_equal(tdm_mockctl_error_code(&f, &code, NULL, 0), 0);
  assert_int_equal(code, TDM_ERR_PROTOCOL_ERROR);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_count(&m, "what=auth_ok user=alice"), 3);
  assert_int_equal(tdm_mockctl_count(&m, "what=auth_ok user=bob"), 1);
  assert_int_equal(tdm_mockctl_count(&m, "what=auth_failed"), 1);
  assert_int_equal(tdm_mockctl_count(&m, "op=AUTH_RESPONSE match=bob"), 2);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "AUTHS"), 0);
  assert_non_null(strstr(reply, "\"ok\":false,\"user\":\"bob\""));
  stop(&m);
}

static void test_dse_auth_dance(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  tdm_writer_t w;
  const char *args[] = { "--node", "127.0.0.1:0", "--auth", "dse:pw", "--auth-class",
                         "com.datastax.bdp.cassandra.auth.DseAuthenticator", NULL };
  char host[64];
  uint16_t port;
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_node(&m, 0, host, sizeof(host), &port), 0);
  assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V4), 0);
  tdm_writer_init(&w);
  tdm_str_t k = TDM_STR("CQL_VERSION"), v = TDM_STR("3.0.0");
  tdm_request_encode_startup(&w, &k, &v, 1);
  assert_int_equal(tdm_mockctl_cql_request(&c, 0, TDM_OP_STARTUP, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_AUTHENTICATE);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_true(tdm_str_eq_cstr(r.authenticator, "com.datastax.bdp.cassandra.auth.DseAuthenticator"));
  tdm_mockctl_frame_free(&f);
  tdm_writer_init(&w);
  tdm_request_encode_auth_response(&w, "PLAIN", 5);
  assert_int_equal(tdm_mockctl_cql_request(&c, 0, TDM_OP_AUTH_RESPONSE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_AUTH_CHALLENGE);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.token.len, 11);
  assert_memory_equal(r.token.ptr, "PLAIN-START", 11);
  tdm_mockctl_frame_free(&f);
  tdm_writer_init(&w);
  tdm_request_encode_auth_response(&w, "\0dse\0pw", 7);
  assert_int_equal(tdm_mockctl_cql_request(&c, 0, TDM_OP_AUTH_RESPONSE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_AUTH_SUCCESS);
  tdm_mockctl_frame_free(&f);
  assert_serves(&c, 3);
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

static void test_malformed_input(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  const char *args[] = { "--node", "127.0.0.1:0", NULL };
  spawn(&m, args);
  /* a QUERY whose [long string] claims more bytes than the body holds */
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  const uint8_t body[] = { 0, 0, 0x10, 0, 'S', 'E', 'L' };
  assert_int_equal(tdm_mockctl_cql_send(&c, 11, TDM_OP_QUERY, body, sizeof(body)), 0);
  expect_error(&c, 11, TDM_ERR_PROTOCOL_ERROR, NULL);
  assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), TDM_ECLOSED);
  tdm_mockctl_cql_close(&c);
  /* v5: a segment with a bad CRC after framing started */
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V5, NULL, &c), 0);
  const uint8_t junk[16] = { 0x09, 0x00, 0x02, 0xde, 0xad, 0xbe, 0xef };
  assert_int_equal(tdm_mockctl_cql_send_raw(&c, junk, sizeof(junk)), 0);
  int rc;
  while ((rc = tdm_mockctl_cql_recv(&c, TIMEOUT, &f)) == 0) tdm_mockctl_frame_free(&f); /* a best-effort error */
  assert_true(rc == TDM_ECLOSED || rc == TDM_EPROTO_CRC || rc == TDM_EPROTO_MALFORMED);
  tdm_mockctl_cql_close(&c);
  /* a response frame sent as a request */
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  const uint8_t resp[9] = { 0x84, 0, 0, 1, TDM_OP_READY, 0, 0, 0, 0 };
  assert_int_equal(tdm_mockctl_cql_send_raw(&c, resp, sizeof(resp)), 0);
  expect_error(&c, 1, TDM_ERR_PROTOCOL_ERROR, NULL);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_count(&m, "what=protocol_errors"), 3);
  /* the node still serves */
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  assert_serves(&c, 1);
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

/* ---- robustness: random frames and random CQL never bring a node down ---- */

static uint32_t rnd(uint32_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* CQL-looking text from a vocabulary that reaches every branch of the mock's statement parser. */
static size_t random_cql(uint32_t *x, char *buf, size_t cap)
{
  static const char *const words[] = {
    "SELECT", "INSERT", "INTO", "VALUES", "(", ")", ",", "?", ":name", "'str'", "'it''s'", "\"Q\"", "123", "-4",
    "0xff", "FROM", "WHERE", "=", "AND", "ks.t", "t", "system.local", "system.peers_v2", "CREATE", "TABLE", "KEYSPACE",
    "PRIMARY", "KEY", "<", ">", "text", "int", "map<text,", "set<int>", "frozen<", "BEGIN", "UNLOGGED", "BATCH",
    "APPLY", "UPDATE", "SET", "DELETE", "USE", "LIMIT", "TTL", "USING", "TIMESTAMP", ";", "$$x$$", "/*", "*/", "--",
    "'open", "*", "AS", "count(*)", "JSON", "IF", "NOT", "EXISTS", "DROP", "ALTER", "INDEX", "ON", "+", "null",
    "true", "k", "v", "\"", ".", "IN", "[", "]", "{", "}", "TRUNCATE", "LIST", "ROLES", "MATERIALIZED", "VIEW",
  };
  size_t n = 0, count = 1 + rnd(x) % 40;
  for (size_t i = 0; i < count; i++) {
    const char *w = words[rnd(x) % TDM_ARRAY_SIZE(words)];
    size_t l = strlen(w);
    if (n + l + 2 >= cap) break;
    memcpy(buf + n, w, l);
    n += l;
    if (rnd(x) % 4) buf[n++] = ' ';
  }
  return n;
}

static void test_random_input(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  const char *args[] = { "--node", "127.0.0.1:0", "--protocols", "3,4,5,dse_v1,dse_v2", "--quiet", NULL };
  spawn(&m, args);
  uint32_t x = 0x9e3779b9u;
  static const uint8_t versions[] = { 3, 4, 5, TDM_PROTO_DSE_V1, TDM_PROTO_DSE_V2 };
  for (int round = 0; round < 60; round++) {
    tdm_mockctl_cql_t c;
    uint8_t v = versions[round % TDM_ARRAY_SIZE(versions)];
    assert_int_equal(tdm_mockctl_cql_open(&m, 0, v, round % 3 == 0 ? "lz4" : NULL, &c), 0);
    for (int i = 0; i < 40; i++) {
      char cql[512];
      size_t len = random_cql(&x, cql, sizeof(cql));
      tdm_writer_t w;
      tdm_writer_init(&w);
      tdm_query_params_t p = { .consistency = TDM_CL_ONE };
      tdm_writer_t vals;
      tdm_writer_init(&vals);
      for (int k = 0; k < 3; k++)
        tdm_request_write_value(&vals, (tdm_bytes_t){ (const uint8_t *)cql, (int32_t)(rnd(&x) % 5) });
      p.flags = TDM_QFLAG_VALUES;
      p.values_count = 3;
      p.values = vals.buf;
      p.values_len = vals.len;
      uint8_t op;
      if (i % 3 == 0) {
        tdm_request_encode_query(&w, v, (tdm_str_t){ cql, len }, &p);
        op = TDM_OP_QUERY;
      } else if (i % 3 == 1) {
        tdm_request_encode_prepare(&w, v, (tdm_str_t){ cql, len }, NULL);
        op = TDM_OP_PREPARE;
      } else { /* EXECUTE of what was just prepared (its id is md5 of the text) or of a random id */
        uint8_t id[16];
        tdm_mockctl_frame_t pf;
        tdm_writer_t pw;
        tdm_writer_init(&pw);
        tdm_request_encode_prepare(&pw, v, (tdm_str_t){ cql, len }, NULL);
        assert_int_equal(tdm_mockctl_cql_request(&c, 30000, TDM_OP_PREPARE, pw.buf, pw.len, &pf, TIMEOUT), 0);
        tdm_writer_free(&pw);
        tdm_response_prepared_ids_t ids;
        if (pf.h.opcode == TDM_OP_RESULT && tdm_response_peek_prepared_ids(v, pf.body, pf.len, &ids) == 0 &&
            ids.id.len == 16)
          memcpy(id, ids.id.ptr, 16);
        else
          for (int k = 0; k < 16; k++) id[k] = (uint8_t)rnd(&x);
        tdm_mockctl_frame_free(&pf);
        tdm_request_encode_execute(&w, v, (tdm_bytes_t){ id, 16 }, (tdm_bytes_t){ id, 16 }, &p);
        op = TDM_OP_EXECUTE;
      }
      tdm_writer_free(&vals);
      tdm_mockctl_frame_t f;
      assert_int_equal(tdm_mockctl_cql_request(&c, (int16_t)(i + 1), op, w.buf, w.len, &f, TIMEOUT), 0);
      assert_true(f.h.opcode == TDM_OP_RESULT || f.h.opcode == TDM_OP_ERROR);
      tdm_mockctl_frame_free(&f);
      tdm_writer_free(&w);
    }
    /* then a frame with a random opcode and random body: answered or the connection closed */
    uint8_t body[64];
    for (size_t k = 0; k < sizeof(body); k++) body[k] = (uint8_t)rnd(&x);
    assert_int_equal(tdm_mockctl_cql_send(&c, 99, (uint8_t)rnd(&x), body, rnd(&x) % sizeof(body)), 0);
    tdm_mockctl_frame_t f;
    int rc = tdm_mockctl_cql_recv(&c, TIMEOUT, &f);
    assert_true(rc == 0 || rc == TDM_ECLOSED);
    if (rc == 0) tdm_mockctl_frame_free(&f);
    tdm_mockctl_cql_close(&c);
  }
  /* raw garbage on fresh connections */
  for (int round = 0; round < 30; round++) {
    tdm_mockctl_cql_t c;
    char host[64];
    uint16_t port;
    uint8_t junk[300];
    assert_int_equal(tdm_mockctl_node(&m, 0, host, sizeof(host), &port), 0);
    assert_int_equal(tdm_mockctl_cql_connect(&c, host, port, 4), 0);
    for (size_t k = 0; k < sizeof(junk); k++) junk[k] = (uint8_t)rnd(&x);
    junk[0] = versions[round % TDM_ARRAY_SIZE(versions)];
    int sent = tdm_mockctl_cql_send_raw(&c, junk, 9 + rnd(&x) % (sizeof(junk) - 9));
    assert_true(sent == 0 || sent == -EPIPE || sent == -ECONNRESET); /* the node may hang up first */
    tdm_mockctl_cql_close(&c);
  }
  tdm_mockctl_cql_t c;
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  assert_serves(&c, 1);
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_options_supported), cmocka_unit_test(test_versions_and_compression),
    cmocka_unit_test(test_bad_compression),   cmocka_unit_test(test_version_refused),
    cmocka_unit_test(test_dse_versions),      cmocka_unit_test(test_auth),
    cmocka_unit_test(test_dse_auth_dance),    cmocka_unit_test(test_malformed_input),
    cmocka_unit_test(test_random_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
