/* Client handshake on a real loop (behaviour.md §2, §3, §4.3): v3/v4/v5 handshakes with READY held
 * until both sessions are ready and pipelined requests answered after it, in order (HS-02 shape);
 * OPTIONS before STARTUP; the v5 framing switch (FR-05) with and without SASL; SASL PLAIN (HS-03);
 * the cluster's BAD_CREDENTIALS relayed and a retry; request before STARTUP and a second STARTUP
 * (HS-10); version refusals in a decodable header (PV-03), a version change (PV-07), a node refusing
 * the version (learned); a backend failure (SERVER_ERROR then close); the handshake timeout (MI-11). */
#include "test_frontend_harness.h"

static void test_v4_ready_held(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  h_script(TDM_CONF_TARGET, SESS_HOLD);
  cli_t c;
  cli_open(&c);
  frame_t *f = malloc(sizeof(*f));

  /* OPTIONS before STARTUP: SUPPORTED from tandem itself */
  cli_send(&c, 4, 0, 7, TDM_OP_OPTIONS, NULL, 0);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  assert_int_equal(f->h.stream, 7);
  assert_int_equal(f->h.version, 4);
  assert_true(f->h.response);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(4, TDM_OP_SUPPORTED, f->body, f->len, &r, NULL), 0);
  tdm_response_strlist_t l;
  assert_int_equal(tdm_response_supported_get(&r.supported, TDM_STR("CQL_VERSION"), &l), 0);
  size_t pos = 0;
  tdm_str_t item;
  assert_int_equal(tdm_response_strlist_next(&l, &pos, &item), 1);
  assert_true(tdm_str_eq_cstr(item, "3.4.5")); /* the lower of 3.4.7 and 3.4.5 */
  assert_int_equal(tdm_response_supported_get(&r.supported, TDM_STR("PROTOCOL_VERSIONS"), &l), 0);
  assert_int_equal(l.count, 5);

  /* STARTUP + two pipelined requests: nothing comes back while TARGET's session is pending */
  uint8_t b[256];
  size_t n = startup_body(b, sizeof(b), "lz4");
  cli_send(&c, 4, 0, 1, TDM_OP_STARTUP, b, n);
  n = query_body(b, sizeof(b), 4, "SELECT * FROM ks.t");
  cli_send(&c, 4, 0, 2, TDM_OP_QUERY, b, n);
  cli_send(&c, 4, 0, 3, TDM_OP_OPTIONS, NULL, 0);
  h_until(h.nsess == 2, 1000);
  assert_true(cli_quiet(&c, 50));
  assert_int_equal(h.dispatched, 0);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(h.sess[i].version, 4);
    assert_int_equal(h.sess[i].compression, TDM_COMPRESSION_LZ4);
    assert_false(h.sess[i].creds);
  }
  sess_answer(&h.sess[1], SESS_OK);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_READY);
  assert_int_equal(f->h.stream, 1);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_RESULT);
  assert_int_equal(f->h.stream, 2);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  assert_int_equal(f->h.stream, 3);
  assert_int_equal(h.dispatched, 1);
  assert_int_equal(h.pw.stats.handshakes_ok, 1);
  assert_int_equal(h.pw.stats.client_versions[2], 1);
  free(f);
  cli_close(&c);
  h_until(h.pw.stats.client_connections == 0, 1000);
  assert_int_equal(h.gone, 1);
  h_teardown(&h);
}

static void test_v3_and_v5_framing(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t c3, c5;
  cli_open(&c3);
  cli_handshake(&c3, 3, NULL);
  uint8_t b[256];
  size_t n = query_body(b, sizeof(b), 3, "INSERT INTO ks.t (a) VALUES (1)");
  cli_send(&c3, 3, 0, 9, TDM_OP_QUERY, b, n);
  cli_recv(&c3, f);
  assert_int_equal(f->h.version, 3);
  assert_int_equal(f->h.stream, 9);

  /* v5, beta flag set (accepted): OPTIONS and STARTUP unframed, READY unframed, then framed both ways */
  cli_open(&c5);
  cli_send(&c5, 5, TDM_FLAG_BETA, 0, TDM_OP_OPTIONS, NULL, 0);
  cli_recv(&c5, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  cli_handshake(&c5, 5, NULL);
  assert_true(c5.framed);
  n = query_body(b, sizeof(b), 5, "SELECT * FROM ks.t");
  cli_send(&c5, 5, 0, 300, TDM_OP_QUERY, b, n);
  cli_send(&c5, 5, 0, 301, TDM_OP_OPTIONS, NULL, 0);
  cli_recv(&c5, f); /* framed: cli_recv reads segments now */
  assert_int_equal(f->h.opcode, TDM_OP_RESULT);
  assert_int_equal(f->h.stream, 300);
  cli_recv(&c5, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  assert_int_equal(f->h.stream, 301);
  assert_int_equal(c5.len, 0); /* nothing left over: every byte was a whole segment */

  /* a large framed answer spans non-self-contained segments */
  h.route = ROUTE_BIG;
  h.big_len = 300000;
  cli_send(&c5, 5, 0, 302, TDM_OP_QUERY, b, n);
  cli_recv(&c5, f);
  assert_int_equal(f->h.stream, 302);
  assert_int_equal(f->len, 300000);
  free(f);
  cli_close(&c3);
  cli_close(&c5);
  h_teardown(&h);
}

static void auth_setup(harness_t *h)
{
  h->topo[TDM_CONF_TARGET].auth_required = true;
  snprintf(h->topo[TDM_CONF_TARGET].authenticator, sizeof(h->topo[0].authenticator),
           "com.datastax.bdp.cassandra.auth.DseAuthenticator");
}

static void send_token(cli_t *c, uint8_t version, int16_t stream, const void *tok, int32_t len)
{
  uint8_t b[256];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, b, sizeof(b));
  assert_int_equal(tdm_request_encode_auth_response(&w, tok, len), 0);
  cli_send(c, version, 0, stream, TDM_OP_AUTH_RESPONSE, b, w.len);
}

static void test_sasl_v5_framing(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  auth_setup(&h);
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  uint8_t b[128];
  size_t n = startup_body(b, sizeof(b), NULL);
  cli_send(&c, 5, 0, 0, TDM_OP_STARTUP, b, n);
  cli_recv(&c, f); /* AUTHENTICATE is unframed */
  assert_int_equal(f->h.opcode, TDM_OP_AUTHENTICATE);
  tdm_reader_t rd;
  tdm_str_t cls;
  tdm_reader_init(&rd, f->body, f->len);
  assert_int_equal(tdm_reader_string(&rd, &cls), 0);
  assert_true(tdm_str_eq_cstr(cls, "com.datastax.bdp.cassandra.auth.DseAuthenticator"));
  c.framed = true; /* everything after AUTHENTICATE is framed */

  /* DSE mechanism selection */
  send_token(&c, 5, 1, "PLAIN", 5);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_AUTH_CHALLENGE);
  assert_int_equal(f->h.stream, 1);
  assert_int_equal(f->len, 4 + 11);
  assert_memory_equal(f->body + 4, "PLAIN-START", 11);
  send_token(&c, 5, 2, "\0bob\0secret", 11);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_AUTH_SUCCESS);
  assert_int_equal(f->h.stream, 2);
  assert_int_equal(f->len, 4);
  assert_memory_equal(f->body, "\xff\xff\xff\xff", 4); /* null token */
  /* TARGET (the client-auth cluster) got the client's identity, ORIGIN the configured credentials */
  assert_int_equal(h.nsess, 2);
  for (int i = 0; i < 2; i++) {
    if (h.sess[i].cluster == TDM_CONF_TARGET) {
      assert_true(h.sess[i].creds);
      assert_string_equal(h.sess[i].user, "bob");
      assert_string_equal(h.sess[i].password, "secret");
    } else {
      assert_false(h.sess[i].creds);
    }
  }
  /* later OPTIONS framed */
  cli_send(&c, 5, 0, 3, TDM_OP_OPTIONS, NULL, 0);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  free(f);
  cli_close(&c);
  h_teardown(&h);
}

static void test_sasl_failures(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  auth_setup(&h);
  h_start(&h);
  h_script(TDM_CONF_TARGET, SESS_BADCRED);
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  uint8_t b[128];
  size_t n = startup_body(b, sizeof(b), NULL);
  cli_send(&c, 4, 0, 0, TDM_OP_STARTUP, b, n);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_AUTHENTICATE);

  /* another mechanism: tandem's exact text, the connection stays */
  send_token(&c, 4, 1, "SCRAM-SHA-256", 13);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_BAD_CREDENTIALS, "tandem supports only SASL PLAIN; got SCRAM-SHA-256");
  /* a request that is not a token */
  n = query_body(b, sizeof(b), 4, "SELECT 1");
  cli_send(&c, 4, 0, 2, TDM_OP_QUERY, b, n);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Unexpected message QUERY, expecting SASL_RESPONSE");
  /* wrong password: the cluster's answer, verbatim */
  send_token(&c, 4, 3, "\0bob\0wrong", 10);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_BAD_CREDENTIALS, "Provided username bob and/or password are incorrect");
  assert_int_equal(f->h.stream, 3);
  /* and a retry with the right one succeeds */
  send_token(&c, 4, 4, "\0bob\0right", 10);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_AUTH_SUCCESS);
  assert_int_equal(h.pw.stats.handshakes_auth_failed, 2);
  assert_int_equal(h.pw.stats.handshakes_ok, 1);
  free(f);
  cli_close(&c);
  h_teardown(&h);
}

static void test_out_of_order_requests(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  uint8_t b[128];
  size_t n = query_body(b, sizeof(b), 4, "SELECT 1");
  cli_send(&c, 4, 0, 5, TDM_OP_QUERY, b, n);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Unexpected message QUERY, expecting STARTUP or OPTIONS");
  assert_int_equal(f->h.stream, 5);
  cli_handshake(&c, 4, NULL); /* still usable */
  n = startup_body(b, sizeof(b), NULL);
  cli_send(&c, 4, 0, 6, TDM_OP_STARTUP, b, n);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Unexpected message STARTUP, the connection is already initialized");
  cli_send(&c, 4, 0, 7, TDM_OP_OPTIONS, NULL, 0);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  /* bad compression and missing CQL_VERSION (STARTUP checks) on a fresh connection */
  cli_t d;
  cli_open(&d);
  n = startup_body(b, sizeof(b), "zstd");
  cli_send(&d, 4, 0, 1, TDM_OP_STARTUP, b, n);
  cli_recv(&d, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Unknown compression algorithm: zstd");
  n = startup_body(b, sizeof(b), "snappy");
  cli_send(&d, 5, 0, 2, TDM_OP_STARTUP, b, n);
  cli_recv(&d, f); /* the connection's version is v4 now: a v5 frame is a version change */
  assert_error(f, TDM_ERR_PROTOCOL_ERROR,
               "Invalid message version. Got 5 but previous messages on this connection had version 4");
  free(f);
  cli_close(&c);
  cli_close(&d);
  h_teardown(&h);
}

/* PV-03: the refusal in a header its sender decodes; later frames get the same error. */
static void expect_refusal(uint8_t version_byte, size_t want_hsize, uint8_t want_version, const char *msg)
{
  cli_t c;
  cli_open(&c);
  uint8_t frame[16] = { version_byte, 0, 0, 0, TDM_OP_OPTIONS, 0, 0, 0, 0 };
  if (tdm_frame_header_size(version_byte) == 8) { /* v1/v2 layout: 1-byte stream */
    frame[2] = 0;
    frame[3] = TDM_OP_OPTIONS;
    memset(frame + 4, 0, 4);
  }
  for (int round = 0; round < 2; round++) {
    cli_send_raw(&c, frame, tdm_frame_header_size(version_byte));
    uint64_t end = uv_hrtime() + 3000000000ull;
    while (c.len < want_hsize + 6) {
      cli_fill(&c);
      if (uv_hrtime() > end) fail_msg("no refusal for version byte 0x%02x", version_byte);
      uv_run(&H->loop, UV_RUN_NOWAIT);
      usleep(100);
    }
    assert_int_equal(c.buf[0], 0x80 | want_version);
    assert_int_equal(tdm_frame_header_size(c.buf[0]), want_hsize);
    uint32_t blen = ((uint32_t)c.buf[want_hsize - 4] << 24) | ((uint32_t)c.buf[want_hsize - 3] << 16) |
                    ((uint32_t)c.buf[want_hsize - 2] << 8) | c.buf[want_hsize - 1];
    while (c.len < want_hsize + blen) {
      cli_fill(&c);
      uv_run(&H->loop, UV_RUN_NOWAIT);
    }
    uint32_t code;
    tdm_str_t m;
    assert_int_equal(tdm_response_peek_error_code(c.buf + want_hsize, blen, &code, &m), 0);
    assert_int_equal(code, TDM_ERR_PROTOCOL_ERROR);
    if (!tdm_str_eq_cstr(m, msg)) fail_msg("got '%.*s'", (int)m.len, m.ptr);
    assert_int_equal(c.buf[2], 0); /* stream 0 */
    c.len = 0;
  }
  cli_close(&c);
}

static void test_version_refusals(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h.topo[TDM_CONF_ORIGIN].versions_accepted = TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5;
  h_start(&h);
  const char *list = "supported versions are (3/v3, 4/v4, 5/v5)";
  char msg[160];
  snprintf(msg, sizeof(msg), "Invalid or unsupported protocol version (1); %s", list);
  expect_refusal(0x01, 8, 1, msg);
  snprintf(msg, sizeof(msg), "Invalid or unsupported protocol version (2); %s", list);
  expect_refusal(0x02, 8, 2, msg); /* v2 is disabled */
  snprintf(msg, sizeof(msg), "Invalid or unsupported protocol version (6); %s", list);
  expect_refusal(0x06, 9, 5, msg);
  snprintf(msg, sizeof(msg), "Invalid or unsupported protocol version (66); %s", list); /* DSE_V2: ORIGIN lacks it */
  expect_refusal(0x42, 9, 5, msg);
  snprintf(msg, sizeof(msg), "Invalid or unsupported protocol version (60); %s", list);
  expect_refusal(0x3c, 9, 5, msg);
  assert_int_equal(h.pw.stats.handshakes_version_refused, 5);
  assert_int_equal(h.nsess, 0); /* no backend contact */
  h_teardown(&h);
}

/* A node refuses v5 during the handshake: the §3 answer, learned for the next client. */
static void test_backend_version_refusal(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  h_script(TDM_CONF_ORIGIN, SESS_VERSION);
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  uint8_t b[128];
  size_t n = startup_body(b, sizeof(b), NULL);
  cli_send(&c, 5, 0, 1, TDM_OP_STARTUP, b, n);
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 0);
  assert_int_equal(f->h.version, 4); /* v5 is no longer usable */
  assert_error(f, TDM_ERR_PROTOCOL_ERROR,
               "Invalid or unsupported protocol version (5); supported versions are (3/v3, 4/v4, 65/dse-v1, 66/dse-v2)");
  int before = h.nsess;
  cli_t d;
  cli_open(&d);
  cli_send(&d, 5, 0, 1, TDM_OP_STARTUP, b, n);
  cli_recv(&d, f);
  assert_int_equal(f->h.opcode, TDM_OP_ERROR);
  assert_int_equal(h.nsess, before); /* refused with no backend traffic */
  /* a new snapshot of that cluster forgets the learned refusal */
  h.topo[TDM_CONF_ORIGIN].generation++;
  cli_t e;
  cli_open(&e);
  cli_handshake(&e, 5, NULL);
  free(f);
  cli_close(&c);
  cli_close(&d);
  cli_close(&e);
  h_teardown(&h);
}

static void test_backend_failure(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  h_script(TDM_CONF_TARGET, SESS_FAIL);
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  uint8_t b[128];
  size_t n = startup_body(b, sizeof(b), NULL);
  cli_send(&c, 4, 0, 3, TDM_OP_STARTUP, b, n);
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 3);
  assert_error(f, TDM_ERR_SERVER_ERROR, "tandem: cannot open a session to TARGET (127.0.0.3:9042): connection refused");
  cli_wait_eof(&c); /* flushed, then closed */
  assert_int_equal(h.pw.stats.handshakes_backend_failed, 1);
  free(f);
  cli_close(&c);
  h_teardown(&h);
}

static void test_handshake_timeout(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h.pw.conf->client_handshake_timeout_ms = 300;
  h_start(&h);
  cli_t silent, slow, ready;
  cli_open(&silent);
  cli_open(&slow);
  cli_open(&ready);
  cli_handshake(&ready, 4, NULL);
  uint8_t b[128];
  size_t n = startup_body(b, sizeof(b), NULL);
  uint8_t frame[160];
  size_t fl = encode_frame(frame, 4, 0, 0, TDM_OP_STARTUP, b, n);
  uint64_t start = uv_hrtime();
  for (size_t i = 0; i < fl && !slow.eof; i++) { /* slowloris: one byte every 40 ms */
    cli_send_raw(&slow, frame + i, 1);
    h_pump(40);
    cli_fill(&slow);
  }
  cli_wait_eof(&slow);
  cli_wait_eof(&silent);
  uint64_t ms = (uv_hrtime() - start) / 1000000u;
  assert_true(ms >= 250 && ms < 3000);
  assert_int_equal(h.pw.stats.client_refused_handshake_timeout, 2);
  assert_false(cli_quiet(&ready, 0) && ready.eof); /* the READY client stays */
  cli_send(&ready, 4, 0, 1, TDM_OP_OPTIONS, NULL, 0);
  frame_t *f = malloc(sizeof(*f));
  cli_recv(&ready, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  free(f);
  cli_close(&silent);
  cli_close(&slow);
  cli_close(&ready);
  h_teardown(&h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_v4_ready_held),       cmocka_unit_test(test_v3_and_v5_framing),
    cmocka_unit_test(test_sasl_v5_framing),     cmocka_unit_test(test_sasl_failures),
    cmocka_unit_test(test_out_of_order_requests), cmocka_unit_test(test_version_refusals),
    cmocka_unit_test(test_backend_version_refusal), cmocka_unit_test(test_backend_failure),
    cmocka_unit_test(test_handshake_timeout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
