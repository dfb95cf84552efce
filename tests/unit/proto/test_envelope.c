/* v5 envelope reader and writer: round trips (plain and lz4, envelopes of 0 B to 1 MiB, the 131071 /
 * 131072 boundary) fed in pieces, packing of many envelopes per segment, splitting, stored lz4, flag
 * 0x01 handling, the two protocol errors (self-contained segment ending mid-envelope or arriving during
 * a split one), over-limit envelopes, no-copy lifetimes, steal, CRC skipping, and real traffic: segments
 * from the DataStax Python driver and captured Cassandra 5.0 v5 connections, at every split point. */
#include "testlib.h"

#include <tandem/proto/envelope.h>

/* ---- fixtures ---- */

/* A v5 envelope: stream, opcode and a body whose bytes derive from (stream, i). */
static uint8_t *make_env(int16_t stream, uint8_t opcode, uint8_t flags, size_t body_len, size_t *len)
{
  tdm_frame_header_t h = { .version = TDM_PROTO_V5, .flags = flags, .stream = stream, .opcode = opcode,
                           .length = (uint32_t)body_len };
  uint8_t *e = malloc(TDM_ENVELOPE_HEADER + body_len);
  assert_int_equal(tdm_frame_header_encode(&h, e), TDM_ENVELOPE_HEADER);
  for (size_t i = 0; i < body_len; i++) e[TDM_ENVELOPE_HEADER + i] = (uint8_t)(stream * 31 + i / 7);
  *len = TDM_ENVELOPE_HEADER + body_len;
  return e;
}

static bool body_ok(int16_t stream, const uint8_t *body, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (body[i] != (uint8_t)(stream * 31 + i / 7)) return false;
  return true;
}

/* Consumer state for the reader: checks each envelope against the expected list. */
typedef struct rd_ctx_s {
  tdm_envelope_reader_t r; /* reader under test */
  const size_t *bodies;    /* expected body lengths; stream id of envelope i is i + 1 */
  size_t n_expected;       /* how many are expected */
  size_t got;              /* envelopes received */
  size_t too_large;        /* TOO_LARGE reports */
  int16_t too_large_stream; /* stream of the last one */
  int borrowed;            /* envelopes handed out in place */
  bool check_bodies;       /* verify body bytes */
} rd_ctx_t;

static int consume_envelopes(const uint8_t *buf, size_t len, void *vctx)
{
  rd_ctx_t *c = vctx;
  size_t used = 0;
  for (;;) {
    tdm_envelope_t env;
    size_t consumed = 0;
    int rc = tdm_envelope_read(&c->r, buf + used, len - used, &consumed, &env);
    used += consumed;
    if (rc == TDM_EPROTO_TOO_LARGE) {
      c->too_large++;
      c->too_large_stream = env.header.stream;
      assert_null(env.data);
      continue;
    }
    if (rc < 0) return rc;
    if (rc == 0) return (int)used;
    assert_true(c->got < c->n_expected);
    assert_int_equal(env.header.version, TDM_PROTO_V5);
    assert_int_equal(env.header.stream, (int16_t)(c->got + 1));
    assert_int_equal(env.header.length, c->bodies[c->got]);
    assert_int_equal(env.len, TDM_ENVELOPE_HEADER + c->bodies[c->got]);
    assert_ptr_equal(env.body, env.data + TDM_ENVELOPE_HEADER);
    assert_int_equal(env.header.flags & TDM_FLAG_COMPRESSED, 0);
    if (env.borrowed) {
      c->borrowed++;
      /* in place: inside the bytes of this call, beyond what it reported consumed */
      assert_true(env.data >= buf + used && env.data + env.len <= buf + len);
    }
    if (c->check_bodies) assert_true(body_ok(env.header.stream, env.body, env.header.length));
    c->got++;
  }
}

/* Writes envelopes with bodies[i] bytes (stream i + 1) through a writer; returns the wire bytes. */
static uint8_t *write_all(bool lz4, const size_t *bodies, size_t n, uint8_t flags, size_t *wire_len)
{
  tdm_envelope_writer_t w = { .lz4 = lz4 };
  for (size_t i = 0; i < n; i++) {
    size_t len;
    uint8_t *e = make_env((int16_t)(i + 1), TDM_OP_QUERY, flags, bodies[i], &len);
    if (i % 2)
      assert_int_equal(tdm_envelope_writer_add_envelope(&w, e, len), 0);
    else
      assert_int_equal(tdm_envelope_writer_add(&w, e, e + TDM_ENVELOPE_HEADER, bodies[i]), 0);
    free(e);
  }
  uint8_t *out = NULL;
  assert_int_equal(tdm_envelope_writer_take(&w, &out, wire_len), 0);
  assert_non_null(out);
  assert_null(w.buf);
  tdm_envelope_writer_free(&w);
  return out;
}

/* Segment census of a wire buffer. */
typedef struct census_s {
  int segments;       /* total */
  int self_contained; /* self-contained ones */
  int compressed;     /* lz4 blocks (not stored) */
  size_t max_plain;   /* largest uncompressed payload */
} census_t;

static census_t census(const uint8_t *p, size_t n, bool lz4)
{
  census_t c = { 0 };
  size_t off = 0;
  while (off < n) {
    tdm_segment_t seg;
    int rc = tdm_segment_decode(p + off, n - off, lz4, true, &seg);
    assert_true(rc > 0);
    c.segments++;
    c.self_contained += seg.self_contained;
    c.compressed += seg.compressed;
    c.max_plain = TDM_MAX(c.max_plain, seg.uncompressed_len);
    off += (size_t)rc;
  }
  return c;
}

static void read_back(bool lz4, const uint8_t *wire, size_t n, const size_t *bodies, size_t count, size_t step)
{
  rd_ctx_t c = { .r = { .lz4 = lz4 }, .bodies = bodies, .n_expected = count, .check_bodies = true };
  size_t left = 1;
  assert_int_equal(tdm_test_feed_step(wire, n, step, consume_envelopes, &c, &left), 0);
  assert_int_equal(left, 0);
  assert_int_equal(c.got, count);
  if (!lz4) assert_true(c.borrowed > 0 || bodies[0] + TDM_ENVELOPE_HEADER > TDM_SEGMENT_MAX_PAYLOAD);
  tdm_envelope_reader_free(&c.r);
}

/* ---- writer + reader ---- */

static void test_round_trip_sizes(void **state)
{
  const size_t max_body = TDM_SEGMENT_MAX_PAYLOAD - TDM_ENVELOPE_HEADER; /* envelope of exactly 131071 */
  const size_t cases[][4] = {
    { 0, 10, 200, 0 },
    { max_body, 0, 0, 0 },     /* fills one self-contained segment */
    { max_body + 1, 5, 0, 0 }, /* 131072 bytes: split, then a small one */
    { 1u << 20, 0, 0, 0 },     /* 1 MiB body */
    { 7, 1u << 20, 7, 0 },
  };
  const size_t counts[] = { 3, 1, 2, 1, 3 };
  for (int lz4 = 0; lz4 < 2; lz4++) {
    for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
      size_t n;
      uint8_t *wire = write_all(lz4, cases[i], counts[i], 0, &n);
      read_back(lz4, wire, n, cases[i], counts[i], n);     /* all at once */
      read_back(lz4, wire, n, cases[i], counts[i], 65521); /* odd pieces */
      if (n < 4096) read_back(lz4, wire, n, cases[i], counts[i], 1);
      free(wire);
    }
  }
}

static void test_boundaries(void **state)
{
  const size_t max_body = TDM_SEGMENT_MAX_PAYLOAD - TDM_ENVELOPE_HEADER;
  size_t b131071[] = { max_body }, b131072[] = { max_body + 1 }, b1m[] = { 1u << 20 };
  size_t n;
  uint8_t *wire = write_all(false, b131071, 1, 0, &n);
  census_t c = census(wire, n, false);
  assert_int_equal(c.segments, 1);
  assert_int_equal(c.self_contained, 1);
  assert_int_equal(c.max_plain, TDM_SEGMENT_MAX_PAYLOAD);
  free(wire);

  /* two envelopes that fill a segment exactly share it; one more byte would not fit */
  size_t pair[] = { 1000, TDM_SEGMENT_MAX_PAYLOAD - 1009 - TDM_ENVELOPE_HEADER };
  wire = write_all(false, pair, 2, 0, &n);
  c = census(wire, n, false);
  assert_int_equal(c.segments, 1);
  assert_int_equal(c.max_plain, TDM_SEGMENT_MAX_PAYLOAD);
  free(wire);
  pair[1]++;
  wire = write_all(false, pair, 2, 0, &n);
  c = census(wire, n, false);
  assert_int_equal(c.segments, 2);
  assert_int_equal(c.self_contained, 2);
  free(wire);

  wire = write_all(false, b131072, 1, 0, &n);
  c = census(wire, n, false);
  assert_int_equal(c.segments, 2); /* 131071 + 1 */
  assert_int_equal(c.self_contained, 0);
  free(wire);

  wire = write_all(false, b1m, 1, 0, &n);
  c = census(wire, n, false);
  assert_int_equal(c.segments, (int)((((1u << 20) + 9) + TDM_SEGMENT_MAX_PAYLOAD - 1) / TDM_SEGMENT_MAX_PAYLOAD));
  assert_int_equal(c.self_contained, 0);
  free(wire);
}

static void test_packing(void **state)
{
  size_t bodies[1000];
  for (size_t i = 0; i < 1000; i++) bodies[i] = 100 + i % 50;
  size_t total = 0, n;
  for (size_t i = 0; i < 1000; i++) total += TDM_ENVELOPE_HEADER + bodies[i];
  uint8_t *wire = write_all(false, bodies, 1000, 0, &n);
  census_t c = census(wire, n, false);
  /* several envelopes per segment, only whole envelopes, each segment as full as the next allows */
  assert_int_equal(c.self_contained, c.segments);
  assert_int_equal(c.segments, (int)((total + TDM_SEGMENT_MAX_PAYLOAD - 1) / TDM_SEGMENT_MAX_PAYLOAD));
  assert_int_equal(n, total + (size_t)c.segments * 10);
  read_back(false, wire, n, bodies, 1000, 4093);
  free(wire);

  /* lz4: compressible bodies are compressed, the output is smaller than the input */
  wire = write_all(true, bodies, 1000, 0, &n);
  c = census(wire, n, true);
  assert_int_equal(c.self_contained, c.segments);
  assert_int_equal(c.compressed, c.segments);
  assert_true(n < total / 2);
  read_back(true, wire, n, bodies, 1000, 4093);
  free(wire);
}

static void test_lz4_incompressible_stored(void **state)
{
  tdm_envelope_writer_t w = { .lz4 = true };
  size_t len;
  uint8_t *e = make_env(1, TDM_OP_QUERY, 0, 5000, &len);
  tdm_test_fill_random(e + TDM_ENVELOPE_HEADER, 5000, 7);
  assert_int_equal(tdm_envelope_writer_add_envelope(&w, e, len), 0);
  uint8_t *out;
  size_t n;
  assert_int_equal(tdm_envelope_writer_take(&w, &out, &n), 0);
  assert_int_equal(n, 8 + len + 4); /* stored: payload unchanged */
  tdm_segment_t seg;
  assert_int_equal(tdm_segment_decode(out, n, true, true, &seg), (int)n);
  assert_false(seg.compressed);
  assert_memory_equal(seg.payload, e, len);
  /* the reader hands a stored envelope out in place */
  tdm_envelope_reader_t r = { .lz4 = true };
  tdm_envelope_t env;
  size_t consumed;
  assert_int_equal(tdm_envelope_read(&r, out, n, &consumed, &env), 1);
  assert_true(env.borrowed);
  assert_ptr_equal(env.data, out + 8);
  assert_int_equal(consumed, 0);
  assert_int_equal(tdm_envelope_read(&r, out, n, &consumed, &env), 0);
  assert_int_equal(consumed, n);
  tdm_envelope_reader_free(&r);
  tdm_envelope_writer_free(&w);
  free(out);
  free(e);
}

static void test_flag_cleared(void **state)
{
  size_t bodies[] = { 3, 4 }, n;
  uint8_t *wire = write_all(false, bodies, 2, TDM_FLAG_COMPRESSED | TDM_FLAG_TRACING, &n);
  tdm_segment_t seg;
  assert_true(tdm_segment_decode(wire, n, false, true, &seg) > 0);
  assert_int_equal(seg.payload[1], TDM_FLAG_TRACING); /* 0x01 cleared on output, 0x02 kept */
  assert_int_equal(seg.payload[TDM_ENVELOPE_HEADER + 3 + 1], TDM_FLAG_TRACING);
  free(wire);

  /* on input 0x01 is ignored: the decoded header drops it, the raw bytes keep it */
  size_t len;
  uint8_t *e = make_env(1, TDM_OP_QUERY, TDM_FLAG_COMPRESSED, 2, &len);
  uint8_t seg_bytes[64];
  int sn = tdm_segment_encode(e, len, true, false, seg_bytes, sizeof(seg_bytes));
  tdm_envelope_reader_t r = { 0 };
  tdm_envelope_t env;
  size_t consumed;
  assert_int_equal(tdm_envelope_read(&r, seg_bytes, (size_t)sn, &consumed, &env), 1);
  assert_int_equal(env.header.flags, 0);
  assert_int_equal(env.data[1], TDM_FLAG_COMPRESSED);
  tdm_envelope_reader_free(&r);
  free(e);
}

static void test_writer_rejects_bad_input(void **state)
{
  tdm_envelope_writer_t w = { 0 };
  size_t len;
  uint8_t *e = make_env(1, TDM_OP_QUERY, 0, 10, &len);
  assert_int_equal(tdm_envelope_writer_add(&w, e, e + 9, 9), TDM_EINVAL); /* length field says 10 */
  assert_int_equal(tdm_envelope_writer_add_envelope(&w, e, 8), TDM_EINVAL);
  e[0] = 0x02; /* a v2 header is 8 bytes: not an envelope */
  assert_int_equal(tdm_envelope_writer_add_envelope(&w, e, len), TDM_EINVAL);
  uint8_t *out = (uint8_t *)"x";
  size_t n = 5;
  assert_int_equal(tdm_envelope_writer_take(&w, &out, &n), 0); /* nothing queued: nothing to send */
  assert_null(out);
  assert_int_equal(n, 0);
  assert_int_equal(w.err, 0); /* caller mistakes are not sticky */
  tdm_envelope_writer_free(&w);
  free(e);
}

static void test_flush_keeps_order(void **state)
{
  /* flush between adds closes segments early; the reader sees the same sequence */
  tdm_envelope_writer_t w = { 0 };
  size_t bodies[] = { 1, 2, 3, 200000, 4 };
  for (size_t i = 0; i < 5; i++) {
    size_t len;
    uint8_t *e = make_env((int16_t)(i + 1), TDM_OP_EXECUTE, 0, bodies[i], &len);
    assert_int_equal(tdm_envelope_writer_add_envelope(&w, e, len), 0);
    if (i == 0) assert_int_equal(tdm_envelope_writer_flush(&w), 0);
    free(e);
  }
  assert_int_equal(tdm_envelope_writer_flush(&w), 0);
  census_t c = census(w.buf, w.len, false);
  assert_int_equal(c.segments, 1 + 1 + 2 + 1); /* [1] [2 3] [200000 split in 2] [4] */
  assert_int_equal(c.self_contained, 3);
  read_back(false, w.buf, w.len, bodies, 5, 1000);
  tdm_envelope_writer_free(&w);
  assert_null(w.buf);
}

/* ---- reader specifics ---- */

static void test_deferred_consumption_and_lifetimes(void **state)
{
  size_t bodies[] = { 4, 5 }, n;
  uint8_t *wire = write_all(false, bodies, 2, 0, &n);
  tdm_envelope_reader_t r = { 0 };
  tdm_envelope_t env;
  size_t consumed = 99;
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 1);
  assert_int_equal(consumed, 0);
  assert_ptr_equal(env.data, wire + 6); /* no copy: right after the segment header */
  assert_true(env.borrowed);
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 1);
  assert_int_equal(consumed, 0); /* the segment holding this envelope is not released yet */
  assert_ptr_equal(env.data, wire + 6 + 13);
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 0);
  assert_int_equal(consumed, n);
  tdm_envelope_reader_free(&r);

  /* stop after the first envelope, move the bytes, continue: the reader keeps offsets, not pointers */
  uint8_t *moved = malloc(n + 3);
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 1);
  memcpy(moved + 3, wire, n);
  memset(wire, 0xEE, n);
  assert_int_equal(tdm_envelope_read(&r, moved + 3, n, &consumed, &env), 1);
  assert_int_equal(env.header.stream, 2);
  assert_true(body_ok(2, env.body, 5));
  assert_ptr_equal(env.data, moved + 3 + 6 + 13);
  tdm_envelope_reader_free(&r);
  free(moved);
  free(wire);
}

static void test_lz4_envelopes_owned(void **state)
{
  size_t bodies[] = { 300, 300 }, n;
  uint8_t *wire = write_all(true, bodies, 2, 0, &n);
  tdm_envelope_reader_t r = { .lz4 = true };
  tdm_envelope_t env;
  size_t consumed;
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 1);
  assert_false(env.borrowed);
  assert_ptr_equal(env.data, r.plain);
  /* Not consumed yet although decompressed: callers loop while input is left, so the segment must
   * stay unconsumed until its last envelope has been handed out. */
  assert_int_equal(consumed, 0);
  tdm_envelope_reader_trim(&r); /* envelope 2 still waits in plain: kept */
  assert_non_null(r.plain);
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 1);
  assert_int_equal(consumed, 0);
  assert_int_equal(env.header.stream, 2);
  assert_true(body_ok(2, env.body, 300));
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 0);
  assert_int_equal(consumed, n); /* now the whole segment is done with */
  assert_int_equal(tdm_envelope_read(&r, NULL, 0, &consumed, &env), 0);
  tdm_envelope_reader_trim(&r); /* idle: released */
  assert_null(r.plain);
  tdm_envelope_reader_free(&r);
  assert_null(r.plain);
  assert_true(r.lz4); /* configuration survives free */
  free(wire);
}

/* Two readers sharing a spare slot: the idle buffer moves between them instead of malloc/free, and a
 * reader with a decompressed envelope still pending keeps its own. */
static void test_lz4_spare_slot_shared(void **state)
{
  size_t bodies[] = { 300, 300 }, n;
  uint8_t *wire = write_all(true, bodies, 2, 0, &n);
  uint8_t *spare = NULL;
  tdm_envelope_reader_t a = { .lz4 = true, .spare = &spare }, b = { .lz4 = true, .spare = &spare };
  tdm_envelope_t env;
  size_t consumed;
  assert_int_equal(tdm_envelope_read(&a, wire, n, &consumed, &env), 1);
  uint8_t *buf = a.plain;
  assert_non_null(buf);
  tdm_envelope_reader_trim(&a); /* envelope 2 pending: a keeps its buffer, the slot stays empty */
  assert_ptr_equal(a.plain, buf);
  assert_null(spare);
  assert_int_equal(tdm_envelope_read(&a, wire, n, &consumed, &env), 1);
  assert_int_equal(tdm_envelope_read(&a, wire, n, &consumed, &env), 0);
  tdm_envelope_reader_trim(&a); /* idle: into the slot */
  assert_null(a.plain);
  assert_ptr_equal(spare, buf);
  assert_int_equal(tdm_envelope_read(&b, wire, n, &consumed, &env), 1); /* b takes it */
  assert_ptr_equal(b.plain, buf);
  assert_null(spare);
  assert_true(body_ok(1, env.body, 300));
  tdm_envelope_reader_free(&b); /* free never fills the slot */
  assert_null(spare);
  assert_ptr_equal(b.spare, &spare); /* configuration survives free */
  tdm_envelope_reader_free(&a);
  free(wire);
}

static void test_steal(void **state)
{
  size_t bodies[] = { 200000, 3 }, n;
  uint8_t *wire = write_all(false, bodies, 2, 0, &n);
  tdm_envelope_reader_t r = { 0 };
  tdm_envelope_t env;
  size_t consumed, used = 0;
  assert_null(tdm_envelope_reader_steal(&r));
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 1);
  used += consumed;
  assert_false(env.borrowed);
  uint8_t *mine = tdm_envelope_reader_steal(&r);
  assert_ptr_equal(mine, env.data);
  assert_null(tdm_envelope_reader_steal(&r));
  assert_int_equal(tdm_envelope_read(&r, wire + used, n - used, &consumed, &env), 1);
  assert_int_equal(env.header.stream, 2);
  used += consumed;
  assert_int_equal(tdm_envelope_read(&r, wire + used, n - used, &consumed, &env), 0);
  used += consumed;
  assert_int_equal(used, n);
  assert_true(body_ok(1, mine + TDM_ENVELOPE_HEADER, 200000)); /* still ours after later calls */
  free(mine);
  tdm_envelope_reader_free(&r);
  free(wire);
}

/* Encodes raw payload bytes as one segment. */
static size_t seg_of(uint8_t *out, size_t cap, const uint8_t *payload, size_t len, bool self_contained)
{
  int n = tdm_segment_encode(payload, len, self_contained, false, out, cap);
  assert_true(n > 0);
  return (size_t)n;
}

static int read_all(tdm_envelope_reader_t *r, const uint8_t *wire, size_t n, int *envelopes)
{
  size_t used = 0, consumed;
  tdm_envelope_t env;
  for (;;) {
    int rc = tdm_envelope_read(r, wire + used, n - used, &consumed, &env);
    used += consumed;
    if (rc <= 0) return rc;
    (*envelopes)++;
  }
}

static void test_protocol_errors(void **state)
{
  size_t len, n;
  uint8_t *e = make_env(1, TDM_OP_QUERY, 0, 20, &len);
  uint8_t *wire = malloc(4 * TDM_SEGMENT_MAX_ENCODED);
  int envs;

  /* 1a. self-contained segment ending inside an envelope body */
  n = seg_of(wire, TDM_SEGMENT_MAX_ENCODED, e, len - 1, true);
  tdm_envelope_reader_t r = { 0 };
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), TDM_EPROTO_MALFORMED);
  /* sticky */
  size_t consumed;
  tdm_envelope_t env;
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), TDM_EPROTO_MALFORMED);
  tdm_envelope_reader_free(&r);

  /* 1b. ... inside an envelope header, after a whole envelope */
  uint8_t payload[64];
  memcpy(payload, e, len);
  memcpy(payload + len, e, 5);
  n = seg_of(wire, TDM_SEGMENT_MAX_ENCODED, payload, len + 5, true);
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), TDM_EPROTO_MALFORMED);
  assert_int_equal(envs, 1);
  tdm_envelope_reader_free(&r);

  /* 2. a self-contained segment while a split envelope is incomplete */
  size_t big_len;
  uint8_t *big = make_env(2, TDM_OP_QUERY, 0, 150000, &big_len);
  n = seg_of(wire, 2 * TDM_SEGMENT_MAX_ENCODED, big, TDM_SEGMENT_MAX_PAYLOAD, false);
  n += seg_of(wire + n, TDM_SEGMENT_MAX_ENCODED, e, len, true);
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), TDM_EPROTO_MALFORMED);
  assert_int_equal(envs, 0);
  tdm_envelope_reader_free(&r);
  /* ... also while only part of the split header has arrived */
  n = seg_of(wire, TDM_SEGMENT_MAX_ENCODED, big, 4, false);
  n += seg_of(wire + n, TDM_SEGMENT_MAX_ENCODED, e, len, true);
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), TDM_EPROTO_MALFORMED);
  tdm_envelope_reader_free(&r);

  /* 3. a non-self-contained segment carrying bytes past its envelope */
  n = seg_of(wire, TDM_SEGMENT_MAX_ENCODED, big, TDM_SEGMENT_MAX_PAYLOAD, false);
  uint8_t *tail = malloc(big_len - TDM_SEGMENT_MAX_PAYLOAD + 9);
  memcpy(tail, big + TDM_SEGMENT_MAX_PAYLOAD, big_len - TDM_SEGMENT_MAX_PAYLOAD);
  memcpy(tail + big_len - TDM_SEGMENT_MAX_PAYLOAD, e, 9);
  n += seg_of(wire + n, TDM_SEGMENT_MAX_ENCODED, tail, big_len - TDM_SEGMENT_MAX_PAYLOAD + 9, false);
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), TDM_EPROTO_MALFORMED);
  tdm_envelope_reader_free(&r);

  /* 4. an envelope with an 8-byte (v2) header inside a segment */
  memcpy(payload, e, len);
  payload[0] = 0x02;
  n = seg_of(wire, TDM_SEGMENT_MAX_ENCODED, payload, len, true);
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), TDM_EPROTO_MALFORMED);
  tdm_envelope_reader_free(&r);

  /* 5. a split envelope whose header arrives over two segments is fine (4 + rest) */
  n = seg_of(wire, TDM_SEGMENT_MAX_ENCODED, big, 4, false);
  n += seg_of(wire + n, TDM_SEGMENT_MAX_ENCODED, big + 4, TDM_SEGMENT_MAX_PAYLOAD, false);
  n += seg_of(wire + n, TDM_SEGMENT_MAX_ENCODED, big + 4 + TDM_SEGMENT_MAX_PAYLOAD, big_len - 4 - TDM_SEGMENT_MAX_PAYLOAD, false);
  n += seg_of(wire + n, TDM_SEGMENT_MAX_ENCODED, NULL, 0, true); /* an empty one is harmless */
  n += seg_of(wire + n, TDM_SEGMENT_MAX_ENCODED, e, len, true);
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), 0);
  assert_int_equal(envs, 2);
  tdm_envelope_reader_free(&r);

  free(tail);
  free(big);
  free(wire);
  free(e);
}

static void test_too_large(void **state)
{
  /* in a self-contained segment: reported on its stream, skipped, the next one still comes */
  size_t bodies[] = { 10, 100, 20 }, n;
  uint8_t *wire = write_all(false, bodies, 3, TDM_FLAG_TRACING, &n);
  wire[6 + 19 + 1] |= TDM_FLAG_COMPRESSED; /* envelope 2's flags (CRC is not the point here) */
  tdm_envelope_reader_t small = { .max_frame_bytes = 50, .skip_crc = true };
  tdm_envelope_t e1;
  size_t c1;
  assert_int_equal(tdm_envelope_read(&small, wire, n, &c1, &e1), 1);
  assert_int_equal(e1.header.stream, 1);
  assert_int_equal(tdm_envelope_read(&small, wire, n, &c1, &e1), TDM_EPROTO_TOO_LARGE);
  assert_int_equal(e1.header.stream, 2);
  assert_int_equal(e1.header.length, 100);
  assert_int_equal(e1.header.flags, TDM_FLAG_TRACING); /* 0x01 dropped here too */
  assert_null(e1.data);
  assert_int_equal(tdm_envelope_read(&small, wire, n, &c1, &e1), 1); /* not sticky */
  assert_int_equal(e1.header.stream, 3);
  assert_true(body_ok(3, e1.body, 20));
  assert_int_equal(tdm_envelope_read(&small, wire, n, &c1, &e1), 0);
  assert_int_equal(c1, n);
  tdm_envelope_reader_free(&small);
  free(wire);

  /* split over the limit: refused at its header, nothing allocated, the rest of it discarded */
  size_t split_bodies[] = { 300000, 7 };
  wire = write_all(false, split_bodies, 2, 0, &n);
  tdm_envelope_reader_t r = { .max_frame_bytes = 200000 };
  tdm_envelope_t env;
  size_t consumed, used = 0;
  int rc = tdm_envelope_read(&r, wire, n, &consumed, &env);
  used += consumed;
  assert_int_equal(rc, TDM_EPROTO_TOO_LARGE);
  assert_int_equal(env.header.stream, 1);
  assert_int_equal(env.header.length, 300000);
  assert_null(env.data);
  assert_null(r.big);
  assert_int_equal(tdm_envelope_read(&r, wire + used, n - used, &consumed, &env), 1);
  used += consumed;
  assert_int_equal(env.header.stream, 2);
  assert_true(body_ok(2, env.body, 7));
  assert_int_equal(tdm_envelope_read(&r, wire + used, n - used, &consumed, &env), 0);
  assert_int_equal(used + consumed, n);
  tdm_envelope_reader_free(&r);
  free(wire);

  /* an over-limit split envelope may not share its segments with anything else either */
  size_t len;
  uint8_t *e = make_env(1, TDM_OP_QUERY, 0, 300, &len);
  uint8_t *buf = malloc(len + 16), seg_bytes[1024];
  memcpy(buf, e, len);
  memcpy(buf + len, e, 9); /* 9 stray bytes after it */
  for (int where = 0; where < 2; where++) {
    tdm_envelope_reader_t lim = { .max_frame_bytes = 100 };
    size_t sn;
    if (where == 0) { /* the whole envelope plus the stray bytes in its first segment */
      sn = seg_of(seg_bytes, sizeof(seg_bytes), buf, len + 9, false);
    } else { /* in its last segment, after the header was refused */
      sn = seg_of(seg_bytes, sizeof(seg_bytes), buf, 100, false);
      sn += seg_of(seg_bytes + sn, sizeof(seg_bytes) - sn, buf + 100, len - 100 + 9, false);
    }
    size_t u = 0;
    int rc2 = tdm_envelope_read(&lim, seg_bytes, sn, &consumed, &env);
    if (where == 1) {
      assert_int_equal(rc2, TDM_EPROTO_TOO_LARGE);
      u += consumed;
      rc2 = tdm_envelope_read(&lim, seg_bytes + u, sn - u, &consumed, &env);
    }
    assert_int_equal(rc2, TDM_EPROTO_MALFORMED);
    tdm_envelope_reader_free(&lim);
  }
  free(buf);
  free(e);
}

static void test_split_memory_follows_arrival(void **state)
{
  /* a 200 MB envelope (under the default limit) announced by one full segment: the reader commits
   * memory for what arrived, not for the announcement */
  uint8_t *payload = calloc(1, TDM_SEGMENT_MAX_PAYLOAD);
  tdm_frame_header_t h = { .version = TDM_PROTO_V5, .stream = 9, .opcode = TDM_OP_QUERY, .length = 200u << 20 };
  assert_int_equal(tdm_frame_header_encode(&h, payload), 9);
  uint8_t *wire = malloc(TDM_SEGMENT_MAX_ENCODED);
  size_t n = seg_of(wire, TDM_SEGMENT_MAX_ENCODED, payload, TDM_SEGMENT_MAX_PAYLOAD, false);
  tdm_envelope_reader_t r = { 0 };
  tdm_envelope_t env;
  size_t consumed;
  assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 0);
  assert_int_equal(consumed, n);
  assert_int_equal(r.big_need, 9 + (200u << 20));
  assert_int_equal(r.big_len, TDM_SEGMENT_MAX_PAYLOAD);
  assert_true(r.big_cap <= 2 * TDM_SEGMENT_MAX_PAYLOAD);
  /* more segments grow it geometrically, never past the envelope */
  for (int i = 0; i < 8; i++) assert_int_equal(tdm_envelope_read(&r, wire, n, &consumed, &env), 0);
  assert_int_equal(r.big_len, 9 * (size_t)TDM_SEGMENT_MAX_PAYLOAD);
  assert_true(r.big_cap >= r.big_len && r.big_cap <= 2 * r.big_len);
  tdm_envelope_reader_free(&r);
  assert_null(r.big);
  free(wire);
  free(payload);
}

static void test_skip_crc(void **state)
{
  size_t bodies[] = { 30 }, n;
  uint8_t *wire = write_all(false, bodies, 1, 0, &n);
  wire[n - 1] ^= 0x40; /* CRC32 trailer */
  tdm_envelope_reader_t r = { 0 };
  int envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), TDM_EPROTO_CRC);
  tdm_envelope_reader_free(&r);
  r.skip_crc = true;
  envs = 0;
  assert_int_equal(read_all(&r, wire, n, &envs), 0);
  assert_int_equal(envs, 1);
  tdm_envelope_reader_free(&r);
  free(wire);
}

/* ---- real traffic ---- */

typedef struct drv_expect_s {
  const char *file;     /* vector under tests/data/vectors */
  bool lz4;             /* segment format */
  int count;            /* envelopes */
  uint8_t opcodes[4];   /* per envelope */
  int16_t streams[4];   /* per envelope */
  uint32_t lengths[4];  /* body lengths */
} drv_expect_t;

typedef struct log_ctx_s {
  tdm_envelope_reader_t r; /* reader under test */
  int count;               /* envelopes received */
  uint8_t opcodes[64];     /* their opcodes */
  int16_t streams[64];     /* their streams */
  uint32_t lengths[64];    /* their body lengths */
  int owned;               /* envelopes not handed out in place (lz4-decompressed or reassembled) */
  /* unframed prefix (captures): frames before the switch to segments */
  bool unframed;           /* still before the switch */
  bool response;           /* direction: server to client */
  int frames;              /* unframed frames seen */
  uint8_t frame_ops[8];    /* their opcodes */
} log_ctx_t;

static int consume_logged(const uint8_t *buf, size_t len, void *vctx)
{
  log_ctx_t *c = vctx;
  size_t used = 0;
  while (c->unframed) {
    /* v5 connections start unframed: OPTIONS/SUPPORTED, STARTUP, then READY or AUTHENTICATE */
    tdm_frame_header_t h;
    const uint8_t *body;
    int rc = tdm_frame_decode(buf + used, len - used, 1u << 20, &h, &body);
    if (rc < 0) return rc;
    if (rc == 0) return (int)used;
    assert_true(c->frames < 8);
    c->frame_ops[c->frames++] = h.opcode;
    used += (size_t)rc;
    if ((!c->response && h.opcode == TDM_OP_STARTUP) ||
        (c->response && (h.opcode == TDM_OP_READY || h.opcode == TDM_OP_AUTHENTICATE)))
      c->unframed = false;
  }
  for (;;) {
    tdm_envelope_t env;
    size_t consumed;
    int rc = tdm_envelope_read(&c->r, buf + used, len - used, &consumed, &env);
    used += consumed;
    if (rc < 0) return rc;
    if (rc == 0) return (int)used;
    assert_true(c->count < 64);
    assert_int_equal(env.header.version, TDM_PROTO_V5);
    assert_int_equal(env.header.response, c->response);
    c->opcodes[c->count] = env.header.opcode;
    c->streams[c->count] = env.header.stream;
    c->lengths[c->count] = env.header.length;
    c->owned += !env.borrowed;
    c->count++;
  }
}

static void test_driver_segments(void **state)
{
  static const drv_expect_t cases[] = {
    { "drv-seg-plain.hex", false, 3, { TDM_OP_OPTIONS, TDM_OP_QUERY, TDM_OP_PREPARE }, { 1, 2, 3 }, { 0, 50, 45 } },
    { "drv-seg-lz4.hex", true, 4, { TDM_OP_OPTIONS, TDM_OP_QUERY, TDM_OP_PREPARE, TDM_OP_QUERY }, { 1, 2, 3, 4 },
      { 0, 50, 45, 641 } },
    { "drv-seg-lz4-stored.hex", true, 1, { TDM_OP_OPTIONS }, { 1 }, { 0 } },
    { "drv-seg-lz4-split.hex", true, 1, { TDM_OP_QUERY }, { 5 }, { 210048 } },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(cases); i++) {
    char path[256];
    size_t n, left;
    snprintf(path, sizeof(path), "tests/data/vectors/%s", cases[i].file);
    uint8_t *wire = tdm_test_hex_file(path, &n);
    assert_non_null(wire);
    for (size_t split = 0; split <= n; split++) {
      log_ctx_t c = { .r = { .lz4 = cases[i].lz4 } };
      assert_int_equal(tdm_test_feed_split(wire, n, split, consume_logged, &c, &left), 0);
      assert_int_equal(left, 0);
      assert_int_equal(c.count, cases[i].count);
      for (int k = 0; k < c.count; k++) {
        assert_int_equal(c.opcodes[k], cases[i].opcodes[k]);
        assert_int_equal(c.streams[k], cases[i].streams[k]);
        assert_int_equal(c.lengths[k], cases[i].lengths[k]);
      }
      tdm_envelope_reader_free(&c.r);
    }
    free(wire);
  }
}

typedef struct cap_file_s {
  const char *name; /* capture stem under tests/data/vectors */
  bool lz4;         /* negotiated segment format */
} cap_file_t;

static void check_capture(const cap_file_t *cf, bool response, int *files)
{
  char path[256];
  size_t n, left;
  snprintf(path, sizeof(path), "tests/data/vectors/%s.%s.hex", cf->name, response ? "s2c" : "c2s");
  uint8_t *wire = tdm_test_hex_file(path, &n);
  if (!wire) return;
  (*files)++;
  log_ctx_t whole = { .r = { .lz4 = cf->lz4 }, .unframed = true, .response = response };
  assert_int_equal(tdm_test_feed_split(wire, n, n, consume_logged, &whole, &left), 0);
  assert_int_equal(left, 0);
  assert_false(whole.unframed);
  int seen[256] = { 0 };
  for (int k = 0; k < whole.count; k++) seen[whole.opcodes[k]]++;
  if (response) {
    assert_int_equal(whole.frame_ops[0], TDM_OP_SUPPORTED);
    assert_true(seen[TDM_OP_RESULT] >= 4);
    assert_true(seen[TDM_OP_ERROR] >= 1);
  } else {
    assert_int_equal(whole.frame_ops[0], TDM_OP_OPTIONS);
    assert_int_equal(whole.frame_ops[whole.frames - 1], TDM_OP_STARTUP);
    assert_true(seen[TDM_OP_QUERY] >= 3);
    assert_true(seen[TDM_OP_PREPARE] >= 1);
    assert_true(seen[TDM_OP_EXECUTE] >= 1);
    assert_true(seen[TDM_OP_BATCH] >= 1);
  }
  if (cf->lz4)
    assert_true(whole.owned >= 1); /* some segments carried real lz4 blocks */
  else
    assert_int_equal(whole.owned, 0); /* uncompressed: every envelope in place */
  tdm_envelope_reader_free(&whole.r);
  for (size_t split = 0; split <= n; split++) {
    log_ctx_t c = { .r = { .lz4 = cf->lz4 }, .unframed = true, .response = response };
    assert_int_equal(tdm_test_feed_split(wire, n, split, consume_logged, &c, &left), 0);
    assert_int_equal(left, 0);
    assert_int_equal(c.count, whole.count);
    assert_int_equal(c.frames, whole.frames);
    assert_memory_equal(c.streams, whole.streams, sizeof(c.streams));
    assert_memory_equal(c.lengths, whole.lengths, sizeof(c.lengths));
    tdm_envelope_reader_free(&c.r);
  }
  free(wire);
}

static void test_captured_v5(void **state)
{
  static const cap_file_t files[] = { { "v5-none", false }, { "v5-lz4", true } };
  int found = 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(files); i++) {
    check_capture(&files[i], false, &found);
    check_capture(&files[i], true, &found);
  }
  if (found == 0) skip(); /* not captured yet: see tests/data/capture/README.md */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip_sizes),
    cmocka_unit_test(test_boundaries),
    cmocka_unit_test(test_packing),
    cmocka_unit_test(test_lz4_incompressible_stored),
    cmocka_unit_test(test_flag_cleared),
    cmocka_unit_test(test_writer_rejects_bad_input),
    cmocka_unit_test(test_flush_keeps_order),
    cmocka_unit_test(test_deferred_consumption_and_lifetimes),
    cmocka_unit_test(test_lz4_envelopes_owned), cmocka_unit_test(test_lz4_spare_slot_shared),
    cmocka_unit_test(test_steal),
    cmocka_unit_test(test_protocol_errors),
    cmocka_unit_test(test_too_large),
    cmocka_unit_test(test_split_memory_follows_arrival),
    cmocka_unit_test(test_skip_crc),
    cmocka_unit_test(test_driver_segments),
    cmocka_unit_test(test_captured_v5),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
