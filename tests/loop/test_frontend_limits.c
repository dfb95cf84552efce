/* Client limits and malformed input on a real loop (behaviour.md §4.4, §8, §10, §11.2, §11.3, §14):
 * negative and duplicate stream ids with the original completing (SI-03); an oversized frame answered
 * and skipped without buffering, the next request working, a decompression bomb and corrupt lz4
 * (FR-09); response-direction bit, unknown opcode, REVISE_REQUEST, malformed REGISTER, a route refusal
 * (MI-08/09) closing only that connection; 64-frame yields; the connection limit (LC-02); a client
 * that stops reading is paused (LC-05); drain (LC-04 shape); events; rpc_address per connected
 * address (VT-05). */
#include "test_frontend_harness.h"

static void test_stream_ids(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  h.route = ROUTE_HOLD;
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  cli_handshake(&c, 4, NULL);
  uint8_t b[128];
  size_t n = query_body(b, sizeof(b), 4, "SELECT * FROM ks.t");
  cli_send(&c, 4, 0, -3, TDM_OP_QUERY, b, n);
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, -3);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Invalid stream id -3: client stream ids must be non-negative");
  cli_send(&c, 4, 0, 5, TDM_OP_QUERY, b, n);
  h_until(h.nheld == 1, 1000);
  cli_send(&c, 4, 0, 5, TDM_OP_QUERY, b, n);
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 5);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "stream id 5 already in use");
  assert_int_equal(h.nheld, 1);
  assert_int_equal(tdm_client_view(h.held[0].c)->inflight, 1);
  h_release(0); /* the original completes */
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_RESULT);
  assert_int_equal(f->h.stream, 5);
  cli_send(&c, 4, 0, 5, TDM_OP_QUERY, b, n); /* and the id is free again */
  h_until(h.nheld == 2, 1000);
  h_release(1);
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 5);
  assert_int_equal(h.pw.stats.frames_bad_stream_id, 2);
  free(f);
  cli_close(&c);
  h_teardown(&h);
}

static void test_oversized(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h.pw.conf->max_frame_bytes = 1024;
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  cli_handshake(&c, 4, "lz4");
  /* 5000 bytes declared, sent in pieces: answered at the header, the body dropped as it arrives */
  uint8_t hdr[9];
  tdm_frame_header_t fh = { .version = 4, .stream = 11, .opcode = TDM_OP_QUERY, .length = 5000 };
  tdm_frame_header_encode(&fh, hdr);
  cli_send_raw(&c, hdr, 9);
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 11);
  assert_error(f, TDM_ERR_INVALID, "Request is too big: length 5000 exceeds maximum allowed length 1024.");
  uint8_t junk[1000];
  memset(junk, 0x07, sizeof(junk));
  for (int i = 0; i < 5; i++) {
    cli_send_raw(&c, junk, sizeof(junk));
    h_pump(2);
  }
  uint8_t b[128];
  size_t n = query_body(b, sizeof(b), 4, "SELECT * FROM ks.t");
  cli_send(&c, 4, 0, 12, TDM_OP_QUERY, b, n);
  cli_recv(&c, f);
  assert_int_equal(f->h.opcode, TDM_OP_RESULT);
  assert_int_equal(f->h.stream, 12);
  assert_int_equal(h.dispatched, 1);

  /* a decompression bomb: a 1000-byte lz4 body declaring 200000, refused before decompression */
  uint8_t *big = calloc(1, 200000);
  uint8_t *packed;
  size_t plen;
  assert_int_equal(tdm_body_compress(TDM_COMPRESSION_LZ4, big, 200000, &packed, &plen), 0);
  assert_true(plen < 1024);
  cli_send(&c, 4, TDM_FLAG_COMPRESSED, 13, TDM_OP_QUERY, packed, plen);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_INVALID, "Request is too big: length 200000 exceeds maximum allowed length 1024.");
  assert_int_equal(h.dispatched, 1);
  free(packed);
  free(big);
  assert_int_equal(h.pw.stats.frames_too_large, 2);

  /* a compressed REGISTER whose lz4 block is corrupt: PROTOCOL_ERROR, then close */
  uint8_t bad[12] = { 0, 0, 0, 20, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4 };
  cli_send(&c, 4, TDM_FLAG_COMPRESSED, 14, TDM_OP_REGISTER, bad, sizeof(bad));
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 14);
  assert_int_equal(f->h.opcode, TDM_OP_ERROR);
  cli_wait_eof(&c);
  free(f);
  cli_close(&c);
  h_teardown(&h);
}

static void test_malformed(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t good, c;
  cli_open(&good);
  cli_handshake(&good, 4, NULL);
  cli_open(&c);
  cli_handshake(&c, 4, NULL);
  cli_send(&c, 4, 0, 1, 0x63, NULL, 0);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Unknown opcode 99"); /* kept */
  cli_send(&c, 4, 0, 2, TDM_OP_REVISE_REQUEST, "\0\0\0\0", 4);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_INVALID, "tandem does not support DSE continuous paging");
  cli_send(&c, 4, 0, 3, TDM_OP_READY, NULL, 0); /* a response opcode sent as a request */
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Unknown opcode 2");
  /* the route module refuses a body: its error, then close */
  h.route = ROUTE_REFUSE;
  uint8_t b[128];
  size_t n = query_body(b, sizeof(b), 4, "SELECT 1");
  cli_send(&c, 4, 0, 4, TDM_OP_QUERY, b, n);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "route refused the body");
  cli_wait_eof(&c);
  cli_close(&c);
  h.route = ROUTE_ECHO;

  /* response-direction bit */
  cli_open(&c);
  cli_handshake(&c, 4, NULL);
  uint8_t fr[9] = { 0x84, 0, 0, 1, TDM_OP_OPTIONS, 0, 0, 0, 0 };
  cli_send_raw(&c, fr, 9);
  cli_recv(&c, f);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Unexpected response-direction frame from a client");
  cli_wait_eof(&c);
  cli_close(&c);

  /* malformed REGISTER (an unknown event type) */
  cli_open(&c);
  cli_handshake(&c, 4, NULL);
  uint8_t reg[] = { 0, 1, 0, 3, 'F', 'O', 'O' };
  cli_send(&c, 4, 0, 9, TDM_OP_REGISTER, reg, sizeof(reg));
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 9);
  assert_int_equal(f->h.opcode, TDM_OP_ERROR);
  cli_wait_eof(&c);
  cli_close(&c);

  /* a truncated header, then the client goes away */
  cli_open(&c);
  cli_send_raw(&c, "\x04\x00\x00", 3);
  h_pump(10);
  cli_close(&c);
  h_until(h.pw.stats.client_connections == 1, 1000);

  /* the other connection never noticed */
  cli_send(&good, 4, 0, 1, TDM_OP_OPTIONS, NULL, 0);
  cli_recv(&good, f);
  assert_int_equal(f->h.opcode, TDM_OP_SUPPORTED);
  assert_true(h.pw.stats.frames_malformed >= 3);
  free(f);
  cli_close(&good);
  h_teardown(&h);
}

static void test_yield(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  cli_t c;
  cli_open(&c);
  cli_handshake(&c, 4, NULL);
  uint8_t frames[200 * 9];
  for (int i = 0; i < 200; i++) encode_frame(frames + 9 * i, 4, 0, (int16_t)i, TDM_OP_OPTIONS, NULL, 0);
  cli_send_raw(&c, frames, sizeof(frames));
  frame_t *f = malloc(sizeof(*f));
  for (int i = 0; i < 200; i++) {
    cli_recv(&c, f);
    assert_int_equal(f->h.stream, i); /* in order */
  }
  assert_true(h.pw.stats.read_yields >= 3);
  free(f);
  cli_close(&c);
  h_teardown(&h);
}

static void test_connection_limit(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h.pw.conf->proxy_max_client_connections = 2;
  h_start(&h);
  cli_t a, b, c;
  cli_open(&a);
  cli_open(&b);
  h_until(h.pw.stats.client_connections == 2, 1000);
  cli_open(&c);
  cli_send(&c, 4, 0, 42, TDM_OP_OPTIONS, NULL, 0);
  frame_t *f = malloc(sizeof(*f));
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 42);
  assert_int_equal(f->h.version, 4);
  assert_error(f, TDM_ERR_OVERLOADED, "tandem: too many client connections (limit 2), retry on another node");
  cli_wait_eof(&c);
  assert_int_equal(h.pw.stats.client_refused_max_connections, 1);
  assert_int_equal(h.nsess, 0); /* nothing opened for it */
  /* an unusable version still gets the §3 answer */
  cli_t d;
  cli_open(&d);
  cli_send(&d, 6, 0, 1, TDM_OP_OPTIONS, NULL, 0);
  cli_recv(&d, f);
  assert_int_equal(f->h.stream, 0);
  assert_int_equal(f->h.opcode, TDM_OP_ERROR);
  cli_wait_eof(&d);
  /* a raised limit admits new clients */
  h.pw.conf->proxy_max_client_connections = 3;
  cli_t e;
  cli_open(&e);
  cli_handshake(&e, 4, NULL);
  free(f);
  cli_close(&a);
  cli_close(&b);
  cli_close(&c);
  cli_close(&d);
  cli_close(&e);
  h_teardown(&h);
}

static void test_backpressure(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h.pw.conf->backpressure_high_water_bytes = 256 * 1024;
  h_start(&h);
  h.route = ROUTE_BIG;
  h.big_len = 64 * 1024;
  cli_t c;
  cli_open(&c);
  cli_handshake(&c, 4, NULL);
  int rcv = 64 * 1024;
  setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
  /* 400 requests of 64 KiB answers (25 MiB) while the client reads nothing */
  uint8_t b[128];
  size_t n = query_body(b, sizeof(b), 4, "SELECT * FROM ks.big");
  uint8_t frame[160];
  size_t fl = encode_frame(frame, 4, 0, 0, TDM_OP_QUERY, b, n);
  for (int i = 0; i < 400; i++) {
    frame[2] = (uint8_t)(i >> 8);
    frame[3] = (uint8_t)i;
    cli_send_raw(&c, frame, fl);
  }
  h_pump(300);
  assert_true(h.pw.stats.backpressure_pauses_client >= 1);
  assert_true(h.dispatched < 400); /* reading stopped: requests wait in the socket */
  /* paused for good: memory is bounded by the watermark, not by what the client sent */
  int stalled = h.dispatched;
  h_pump(200);
  assert_int_equal(h.dispatched, stalled);
  /* the client reads again: everything is answered */
  frame_t *f = malloc(sizeof(*f));
  for (int i = 0; i < 400; i++) {
    cli_recv(&c, f);
    assert_int_equal(f->h.stream, i);
    assert_int_equal(f->len, 64 * 1024);
  }
  assert_int_equal(h.dispatched, 400);
  free(f);
  cli_close(&c);
  h_teardown(&h);
}

static void test_drain(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  h.route = ROUTE_HOLD;
  frame_t *f = malloc(sizeof(*f));
  cli_t busy, idle, fresh;
  cli_open(&busy);
  cli_handshake(&busy, 4, NULL);
  cli_open(&idle);
  cli_handshake(&idle, 4, NULL);
  cli_open(&fresh); /* accepted, no STARTUP yet */
  h_until(h.pw.stats.client_connections == 3, 1000);
  uint8_t b[128];
  size_t n = query_body(b, sizeof(b), 4, "UPDATE ks.t SET a = 1 WHERE k = 1");
  cli_send(&busy, 4, 0, 1, TDM_OP_QUERY, b, n);
  h_until(h.nheld == 1, 1000);

  tdm_frontend_drain(&h.pw);
  assert_true(h.pw.draining);
  cli_wait_eof(&idle);  /* nothing in flight: flushed and closed */
  cli_wait_eof(&fresh);
  /* the listener is closed */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(h.port) };
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_true(connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0);
  close(fd);
  /* a new request on the busy connection is refused; the in-flight one completes; then close */
  cli_send(&busy, 4, 0, 2, TDM_OP_QUERY, b, n);
  cli_recv(&busy, f);
  assert_int_equal(f->h.stream, 2);
  assert_error(f, TDM_ERR_OVERLOADED, "Shutting down, please retry on next host.");
  assert_false(busy.eof);
  h_release(0);
  cli_recv(&busy, f);
  assert_int_equal(f->h.stream, 1);
  assert_int_equal(f->h.opcode, TDM_OP_RESULT);
  cli_wait_eof(&busy);
  free(f);
  cli_close(&busy);
  cli_close(&idle);
  cli_close(&fresh);
  h_until(h.pw.stats.client_connections == 0, 1000); /* each closes on its client's FIN */
  h_teardown(&h);
}

static void test_events(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t reg, other, v5;
  cli_open(&reg);
  cli_handshake(&reg, 4, "snappy");
  cli_open(&other);
  cli_handshake(&other, 4, NULL);
  cli_open(&v5);
  cli_handshake(&v5, 5, NULL);
  uint8_t body[64];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, body, sizeof(body));
  tdm_str_t ev = TDM_STR("SCHEMA_CHANGE");
  tdm_writer_string_list(&w, &ev, 1);
  cli_send(&reg, 4, 0, 1, TDM_OP_REGISTER, body, w.len);
  cli_recv(&reg, f);
  assert_int_equal(f->h.opcode, TDM_OP_READY);
  cli_send(&v5, 5, 0, 1, TDM_OP_REGISTER, body, w.len);
  cli_recv(&v5, f);
  assert_int_equal(f->h.opcode, TDM_OP_READY);
  /* a SCHEMA_CHANGE to registered clients only; TOPOLOGY_CHANGE to nobody */
  tdm_response_event_t e = { .kind = TDM_RESPONSE_EVENT_SCHEMA_CHANGE };
  e.schema.change_type = TDM_STR("CREATED");
  e.schema.target = TDM_RESPONSE_TARGET_KEYSPACE;
  e.schema.keyspace = TDM_STR("ks");
  uint8_t eb[128];
  tdm_writer_init_fixed(&w, eb, sizeof(eb));
  assert_int_equal(tdm_response_encode_event(&w, 4, &e), 0);
  tdm_frontend_broadcast_event(&h.pw, "TOPOLOGY_CHANGE", eb, w.len);
  tdm_frontend_broadcast_event(&h.pw, "SCHEMA_CHANGE", eb, w.len);
  cli_recv(&reg, f);
  assert_int_equal(f->h.opcode, TDM_OP_EVENT);
  assert_int_equal(f->h.stream, -1);
  assert_true(f->h.flags & TDM_FLAG_COMPRESSED); /* in the client's compression (cli_take decompressed it) */
  assert_int_equal(f->len, w.len);
  assert_memory_equal(f->body, eb, w.len);
  cli_recv(&v5, f); /* framed */
  assert_int_equal(f->h.stream, -1);
  assert_int_equal(f->len, w.len);
  assert_true(cli_quiet(&other, 30));
  assert_true(cli_quiet(&reg, 0));
  free(f);
  cli_close(&reg);
  cli_close(&other);
  cli_close(&v5);
  h_teardown(&h);
}

static void test_rpc_address(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  free(h.pw.conf->proxy_listen_address);
  h.pw.conf->proxy_listen_address = strdup("0.0.0.0");
  h_start(&h);
  h.route = ROUTE_VTABLES;
  frame_t *f = malloc(sizeof(*f));
  static const char *const ips[2] = { "127.0.0.1", "127.0.0.7" };
  for (int i = 0; i < 2; i++) {
    cli_t c;
    memset(&c, 0, sizeof(c));
    c.fd = h_connect_to(ips[i]);
    cli_handshake(&c, 4, NULL);
    uint8_t b[128];
    size_t n = query_body(b, sizeof(b), 4, "SELECT rpc_address FROM system.local");
    cli_send(&c, 4, 0, 1, TDM_OP_QUERY, b, n);
    cli_recv(&c, f);
    tdm_response_t r;
    assert_int_equal(tdm_response_decode(4, TDM_OP_RESULT, f->body, f->len, &r, NULL), 0);
    assert_int_equal(r.result.kind, TDM_RESULT_ROWS);
    assert_int_equal(r.result.rows.rows_count, 1);
    uint8_t want[4];
    inet_pton(AF_INET, ips[i], want);
    assert_int_equal(r.result.rows.content_len, 4 + 4);
    assert_memory_equal(r.result.rows.content + 4, want, 4);
    /* unsupported clause: the exact text */
    n = query_body(b, sizeof(b), 4, "SELECT JSON * FROM system.local");
    cli_send(&c, 4, 0, 2, TDM_OP_QUERY, b, n);
    cli_recv(&c, f);
    assert_error(f, TDM_ERR_INVALID, "tandem: unsupported clause in a query on virtual table system.local");
    cli_close(&c);
  }
  free(f);
  h_teardown(&h);
}

/* MI-10: a v5 segment with a bad CRC32 gets a best-effort PROTOCOL_ERROR, then the connection closes;
 * DSE continuous paging is refused with its INVALID text and never reaches the route module. */
static void test_v5_crc_and_dse_paging(void **state)
{
  (void)state;
  harness_t h;
  h_setup(&h);
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t c;
  cli_open(&c);
  cli_handshake(&c, 5, NULL);
  uint8_t env[9], seg[32];
  encode_frame(env, 5, 0, 1, TDM_OP_OPTIONS, NULL, 0);
  int n = tdm_segment_encode(env, 9, true, false, seg, sizeof(seg));
  assert_true(n > 0);
  seg[n - 1] ^= 0x55; /* CRC32 trailer */
  cli_send_raw(&c, seg, (size_t)n);
  cli_recv(&c, f);
  assert_int_equal(f->h.stream, 0);
  assert_error(f, TDM_ERR_PROTOCOL_ERROR, "Checksum mismatch in a protocol v5 segment");
  cli_wait_eof(&c);
  assert_int_equal(h.pw.stats.frames_crc, 1);
  cli_close(&c);

  cli_t d;
  cli_open(&d);
  cli_handshake(&d, TDM_PROTO_DSE_V2, NULL);
  uint8_t b[256];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, b, sizeof(b));
  tdm_query_params_t p = { .consistency = TDM_CL_ONE, .flags = TDM_QFLAG_DSE_CONTINUOUS_PAGING | TDM_QFLAG_PAGE_SIZE };
  p.page_size = 100;
  p.max_pages = 0;
  p.pages_per_second = 0;
  p.next_pages = 0;
  assert_int_equal(tdm_request_encode_query(&w, TDM_PROTO_DSE_V2, TDM_STR("SELECT * FROM ks.t"), &p), 0);
  cli_send(&d, TDM_PROTO_DSE_V2, 0, 4, TDM_OP_QUERY, b, w.len);
  cli_recv(&d, f);
  assert_error(f, TDM_ERR_INVALID, "tandem does not support DSE continuous paging");
  assert_int_equal(h.dispatched, 0);
  free(f);
  cli_close(&d);
  h_teardown(&h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stream_ids),   cmocka_unit_test(test_oversized),        cmocka_unit_test(test_malformed),
    cmocka_unit_test(test_yield),        cmocka_unit_test(test_connection_limit), cmocka_unit_test(test_backpressure),
    cmocka_unit_test(test_drain),        cmocka_unit_test(test_events),           cmocka_unit_test(test_rpc_address),
    cmocka_unit_test(test_v5_crc_and_dse_paging),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
