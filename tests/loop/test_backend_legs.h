/* Leg fixtures shared by the backend pool loop tests (header-only, static inline): a backend on the
 * test loop with a topology of the mock's nodes, QUERY legs built with the public codec (compressed
 * for v3/v4 when asked), callbacks that record the outcome and keep a decompressed copy of the
 * response, and helpers to read a Rows cell back. */
#ifndef TDM_TEST_BACKEND_LEGS_H
#define TDM_TEST_BACKEND_LEGS_H

#include <tandem/proto/compress.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "test_backend_util.h"

typedef struct bt_s bt_t;

typedef struct tleg_s {
  tdm_leg_t leg;        /* the leg under test */
  bt_t *t;              /* its test */
  int idx;              /* position in the test's array */
  int responses;        /* on_response calls */
  int failures;         /* on_failure calls */
  int err;              /* failure code */
  bool written;         /* failure: written flag */
  char reason[160];     /* failure: reason */
  uint8_t opcode;       /* response opcode */
  uint8_t rversion;     /* response header version */
  int16_t rstream;      /* response header stream */
  uint8_t *body;        /* response body, decompressed (heap) */
  size_t len;           /* its length */
} tleg_t;

struct bt_s {
  tb_fixture_t f;                /* loop + mock + conf */
  tdm_backend_t *be;             /* backend under test */
  tdm_topology_t *topo;          /* topology given to it */
  tdm_session_key_t key;         /* session key of the legs */
  int done;                      /* callbacks so far */
};

static inline void bt_on_response(tdm_leg_t *leg, const tdm_frame_header_t *h, tdm_slice_t *slice, const uint8_t *body,
                                  size_t len)
{
  tleg_t *l = TDM_CONTAINER_OF(leg, tleg_t, leg);
  assert_non_null(slice);
  assert_true(body >= slice->data && body + len <= slice->data + slice->size); /* a reference, not a copy */
  l->responses++;
  l->opcode = h->opcode;
  l->rversion = h->version;
  l->rstream = h->stream;
  free(l->body);
  l->body = NULL;
  l->len = 0;
  if ((h->flags & TDM_FLAG_COMPRESSED) && h->version != TDM_PROTO_V5) {
    assert_int_equal(tdm_body_decompress(l->t->key.compression, body, len, 256u << 20, &l->body, &l->len), 0);
  } else {
    l->body = malloc(len ? len : 1);
    memcpy(l->body, body, len);
    l->len = len;
  }
  /* strip the frame prefix (tracing, warnings) so tests see the message */
  tdm_response_prefix_t pre;
  assert_int_equal(tdm_response_strip_prefix(h->version, h->flags, l->body, l->len, &pre), 0);
  memmove(l->body, l->body + pre.message_offset, l->len - pre.message_offset);
  l->len -= pre.message_offset;
  l->t->done++;
}

static inline void bt_on_failure(tdm_leg_t *leg, int err, bool written, const char *reason)
{
  tleg_t *l = TDM_CONTAINER_OF(leg, tleg_t, leg);
  l->failures++;
  l->err = err;
  l->written = written;
  snprintf(l->reason, sizeof(l->reason), "%s", reason ? reason : "");
  l->t->done++;
}

static inline void bt_init(bt_t *t, int nodes, const char *const *mock_args, const char *yaml)
{
  memset(t, 0, sizeof(*t));
  tb_init(&t->f);
  tb_mock_start(&t->f, nodes, mock_args);
  t->f.conf = tb_conf(&t->f, 0, yaml);
  assert_int_equal(tdm_backend_new(&t->f.loop, &t->f.pool, &t->be), 0);
  tdm_backend_set_conf(t->be, t->f.conf);
  t->topo = tb_topology(&t->f, TDM_CONF_ORIGIN);
  tdm_backend_set_topology(t->be, t->topo);
  t->key.version = TDM_PROTO_V4;
}

static inline void bt_finish(bt_t *t)
{
  tdm_backend_close(t->be);
  tdm_topology_unref(t->topo);
  tb_finish(&t->f);
}

/* Builds leg l as QUERY `cql` with `count` bound values (values[0..len), each [bytes]) for the test's
 * key; the body is compressed when the key asks (v3/v4). */
static inline void bt_leg_values(bt_t *t, tleg_t *l, const char *cql, const uint8_t *values, size_t values_len,
                                 uint16_t count)
{
  free(l->body);
  memset(l, 0, sizeof(*l));
  l->t = t;
  tdm_leg_init(&l->leg);
  l->leg.cluster = TDM_CONF_ORIGIN;
  l->leg.opcode = TDM_OP_QUERY;
  l->leg.on_response = bt_on_response;
  l->leg.on_failure = bt_on_failure;
  l->leg.owner = t;
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_query_params_t p;
  memset(&p, 0, sizeof(p));
  p.consistency = TDM_CL_ONE;
  p.paging_state.len = -1;
  if (count) {
    p.flags |= TDM_QFLAG_VALUES;
    p.values_count = count;
    p.values = values;
    p.values_len = values_len;
  }
  assert_int_equal(tdm_request_encode_query(&w, t->key.version, tdm_str_from(cql), &p), 0);
  const uint8_t *body = w.buf;
  size_t len = w.len;
  uint8_t *z = NULL;
  if (t->key.compression != TDM_COMPRESSION_NONE && t->key.version != TDM_PROTO_V5) {
    assert_int_equal(tdm_body_compress(t->key.compression, w.buf, w.len, &z, &len), 0);
    body = z;
    l->leg.flags |= TDM_FLAG_COMPRESSED;
  }
  l->leg.body = tdm_slice_copy(&t->f.pool, body, len);
  assert_non_null(l->leg.body);
  l->leg.body_len = len;
  free(z);
  tdm_writer_free(&w);
}

/* Builds leg l as QUERY `cql` without values. */
static inline void bt_leg(bt_t *t, tleg_t *l, const char *cql) { bt_leg_values(t, l, cql, NULL, 0, 0); }

/* Sends the leg and drops the test's body reference (the backend keeps what it needs). */
static inline int bt_send(bt_t *t, tleg_t *l)
{
  int rc = tdm_backend_send(t->be, &t->key, &l->leg);
  tdm_slice_unref(l->leg.body); /* still valid: a queued leg holds a reference, the write queue another */
  return rc;
}

static inline void bt_free_legs(tleg_t *legs, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(legs[i].body);
    legs[i].body = NULL;
  }
}

typedef struct bt_wait_s {
  bt_t *t;  /* test */
  int want; /* callbacks awaited */
} bt_wait_t;

static inline bool bt_done_cond(void *arg)
{
  bt_wait_t *w = arg;
  return w->t->done >= w->want;
}

static inline bool bt_wait(bt_t *t, int want, int timeout_ms)
{
  bt_wait_t w = { t, want };
  return tb_run_until(&t->f, bt_done_cond, &w, timeout_ms);
}

/* The response's ERROR code, or -1 when it is not an ERROR. */
static inline int64_t bt_error_code(const tleg_t *l)
{
  if (l->opcode != TDM_OP_ERROR) return -1;
  uint32_t code;
  assert_int_equal(tdm_response_peek_error_code(l->body, l->len, &code, NULL), 0);
  return code;
}

/* RESULT kind of the response, or -1. */
static inline int32_t bt_result_kind(const tleg_t *l)
{
  if (l->opcode != TDM_OP_RESULT) return -1;
  int32_t kind;
  assert_int_equal(tdm_response_peek_result_kind(l->body, l->len, &kind), 0);
  return kind;
}

/* First cell of the first row of a Rows response as text (NUL-terminated in buf); false when none. */
static inline bool bt_cell(const tleg_t *l, char *buf, size_t cap)
{
  tdm_response_t r;
  if (l->opcode != TDM_OP_RESULT) return false;
  assert_int_equal(tdm_response_decode(l->rversion, TDM_OP_RESULT, l->body, l->len, &r, NULL), 0);
  if (r.result.kind != TDM_RESULT_ROWS || r.result.rows.rows_count < 1) return false;
  tdm_response_rows_iter_t it;
  tdm_response_rows_iter_init(&it, &r.result.rows);
  tdm_bytes_t cell;
  if (tdm_response_rows_next_row(&it) != 1 || tdm_response_rows_next_cell(&it, &cell) != 1 || cell.len < 0) return false;
  size_t n = TDM_MIN((size_t)cell.len, cap - 1);
  memcpy(buf, cell.ptr, n);
  buf[n] = '\0';
  return true;
}

static inline tdm_backend_node_stats_t bt_stats(bt_t *t, size_t node)
{
  tdm_backend_node_stats_t s;
  tdm_backend_node_stats(t->be, TDM_CONF_ORIGIN, node, &s);
  return s;
}

#endif
