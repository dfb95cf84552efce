/* Link-time test doubles for the route loop tests (test_route_*.c include this once): a client that
 * records every response, a backend that records every leg and lets the test answer, fail or starve
 * it, and virtual-table stubs. They replace src/frontend and src/backend for these executables only.
 * Also builders for request and response bodies and a harness owning a real uv loop and worker state. */
#ifndef TDM_TEST_ROUTE_FAKES_H
#define TDM_TEST_ROUTE_FAKES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <uv.h>
#include <tandem/frontend/client.h>
#include <tandem/frontend/vtables.h>
#include <tandem/backend/backend.h>
#include <tandem/core/proxy.h>
#include <tandem/route/route.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#define FAKE_MAX 64

/* ---- client ---- */

typedef struct fake_resp_s {
  int16_t stream;       /* client stream id answered */
  uint8_t opcode;       /* response opcode */
  uint8_t flags;        /* frame flags given */
  uint8_t *body;        /* copy of the body */
  size_t len;           /* its length */
  const tdm_slice_t *slice; /* the slice passed to tdm_client_respond (NULL for built bodies) */
} fake_resp_t;

struct tdm_client_s {
  tdm_client_view_t view;            /* what route reads */
  int refs;                          /* tdm_client_ref balance */
  bool closing;                      /* tdm_client_is_closing */
  fake_resp_t resp[FAKE_MAX];        /* responses in order */
  int nresp;                         /* entries in resp */
  char keyspace[256];                /* storage behind view.keyspace */
  int set_keyspace_calls;            /* tdm_client_set_keyspace calls */
  int vt_query, vt_prepare, vt_execute; /* virtual-table calls */
};

const tdm_client_view_t *tdm_client_view(const tdm_client_t *c) { return &c->view; }

TDM_UNUSED static fake_resp_t *record(tdm_client_t *c, int16_t stream, uint8_t opcode, uint8_t flags, const uint8_t *p,
                           size_t n)
{
  assert_true(c->nresp < FAKE_MAX);
  fake_resp_t *r = &c->resp[c->nresp++];
  r->stream = stream;
  r->opcode = opcode;
  r->flags = flags;
  r->body = malloc(n ? n : 1);
  if (n) memcpy(r->body, p, n);
  r->len = n;
  r->slice = NULL;
  return r;
}

int tdm_client_respond(tdm_client_t *c, int16_t stream, uint8_t opcode, uint8_t flags, tdm_slice_t *slice,
                       size_t off, size_t len)
{
  assert_true(off + len <= slice->size);
  record(c, stream, opcode, flags, slice->data + off, len)->slice = slice;
  return 0;
}

int tdm_client_respond_bytes(tdm_client_t *c, int16_t stream, uint8_t opcode, const uint8_t *body, size_t len)
{
  record(c, stream, opcode, 0, body, len);
  return 0;
}

int tdm_client_respond_error(tdm_client_t *c, int16_t stream, const tdm_response_error_t *e)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode_error(&w, c->view.version, e), 0);
  record(c, stream, TDM_OP_ERROR, 0, w.buf, w.len);
  tdm_writer_free(&w);
  return 0;
}

int tdm_client_respond_errorf(tdm_client_t *c, int16_t stream, uint32_t code, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  tdm_response_error_t e = { .code = code, .message = tdm_str_from(msg) };
  return tdm_client_respond_error(c, stream, &e);
}

void tdm_client_set_keyspace(tdm_client_t *c, const char *keyspace, size_t len)
{
  assert_true(len < sizeof(c->keyspace));
  memcpy(c->keyspace, keyspace, len);
  c->keyspace[len] = '\0';
  c->set_keyspace_calls++;
  for (int k = 0; k < 2; k++)
    if (!tdm_proto_has_request_keyspace(c->view.version)) c->view.key[k].keyspace = c->keyspace;
}

void tdm_client_ref(tdm_client_t *c) { c->refs++; }
void tdm_client_unref(tdm_client_t *c)
{
  assert_true(c->refs > 0);
  c->refs--;
}
bool tdm_client_is_closing(const tdm_client_t *c) { return c->closing; }

/* ---- virtual tables ---- */

int tdm_vtables_query_body(tdm_client_t *c, int16_t stream, const uint8_t *body, size_t len, tdm_str_t ks)
{
  c->vt_query++;
  return tdm_client_respond_bytes(c, stream, TDM_OP_RESULT, (const uint8_t *)"VTQ", 3);
}

int tdm_vtables_prepare(tdm_client_t *c, int16_t stream, tdm_str_t query, tdm_str_t keyspace)
{
  c->vt_prepare++;
  return tdm_client_respond_bytes(c, stream, TDM_OP_RESULT, (const uint8_t *)"VTP", 3);
}

bool tdm_vtables_execute(tdm_client_t *c, int16_t stream, const uint8_t *id, size_t id_len, const uint8_t *body,
                         size_t len)
{
  if (!(id_len == 2 && id[0] == 0x7e && id[1] == 0x7e)) return false; /* the one "virtual" id of these tests */
  c->vt_execute++;
  tdm_client_respond_bytes(c, stream, TDM_OP_RESULT, (const uint8_t *)"VTE", 3);
  return true;
}

/* ---- backend ---- */

typedef struct fake_sent_s {
  tdm_leg_t *leg;          /* the leg (owned by route) */
  int cluster;             /* its cluster */
  uint8_t opcode;          /* opcode sent */
  uint8_t flags;           /* frame flags sent */
  const tdm_slice_t *slice; /* body storage */
  uint8_t *body;           /* copy of the body */
  size_t len;              /* its length */
  tdm_session_key_t key;   /* session key */
  char ks[256];            /* key.keyspace copied */
  int pin;                 /* pin_node */
  bool abandoned;          /* tdm_backend_abandon was called */
  bool done;               /* a callback was delivered */
} fake_sent_t;

struct tdm_backend_s {
  bool unreachable[2];     /* tdm_backend_reachable answers false */
  bool refuse_send[2];     /* tdm_backend_send answers TDM_EUNAVAILABLE */
  bool queue[2];           /* legs are "queued": sent_at_ms stays 0 */
  bool fail_inline[2];     /* the leg fails (not written) from inside tdm_backend_send */
  fake_sent_t sent[FAKE_MAX]; /* every leg, in order */
  int nsent;               /* entries in sent */
  int abandons;            /* tdm_backend_abandon calls */
  uint64_t now;            /* value given to sent_at_ms */
};

bool tdm_backend_reachable(const tdm_backend_t *be, int cluster) { return !be->unreachable[cluster]; }

int tdm_backend_send(tdm_backend_t *be, const tdm_session_key_t *key, tdm_leg_t *leg)
{
  if (be->unreachable[leg->cluster] || be->refuse_send[leg->cluster]) return TDM_EUNAVAILABLE;
  assert_true(be->nsent < FAKE_MAX);
  assert_true(leg->body_off + leg->body_len <= leg->body->size);
  fake_sent_t *s = &be->sent[be->nsent++];
  memset(s, 0, sizeof(*s));
  s->leg = leg;
  s->cluster = leg->cluster;
  s->opcode = leg->opcode;
  s->flags = leg->flags;
  s->slice = leg->body;
  s->len = leg->body_len;
  s->body = malloc(s->len ? s->len : 1);
  memcpy(s->body, leg->body->data + leg->body_off, s->len);
  s->key = *key;
  snprintf(s->ks, sizeof(s->ks), "%s", key->keyspace ? key->keyspace : "");
  s->pin = leg->pin_node;
  leg->node = leg->pin_node >= 0 ? leg->pin_node : leg->cluster * 10 + 1;
  leg->sent_at_ms = be->queue[leg->cluster] ? 0 : be->now + 1;
  if (be->fail_inline[leg->cluster]) {
    s->done = true;
    leg->sent_at_ms = 0;
    leg->on_failure(leg, TDM_EUNAVAILABLE, false, "10.9.9.9:9042");
  }
  return 0;
}

static tdm_backend_t *g_be; /* the harness's backend, for tdm_backend_abandon */

void tdm_backend_abandon(tdm_leg_t *leg)
{
  g_be->abandons++;
  for (int i = g_be->nsent - 1; i >= 0; i--) {
    fake_sent_t *s = &g_be->sent[i];
    if (s->leg != leg || s->done || s->abandoned) continue;
    s->abandoned = true;
    return;
  }
  fail_msg("abandon of a leg with no pending send");
}

/* ---- harness ---- */

typedef struct harness_s {
  uv_loop_t loop;            /* a real loop: timers run */
  tdm_proxy_worker_t pw;     /* worker state route uses */
  tdm_backend_t be;          /* the fake backend */
  tdm_client_t client;       /* one fake client */
  tdm_credentials_t creds;   /* unused identity */
} harness_t;

TDM_UNUSED static void harness_init(harness_t *hs, uint8_t version)
{
  memset(hs, 0, sizeof(*hs));
  assert_int_equal(uv_loop_init(&hs->loop), 0);
  hs->pw.loop = &hs->loop;
  assert_int_equal(tdm_conf_defaults(&hs->pw.conf), 0);
  hs->pw.conf->proxy_request_timeout_ms = 40;
  hs->pw.backend = &hs->be;
  g_be = &hs->be;
  assert_int_equal(tdm_prepared_registry_new(1000, &hs->pw.registry), 0);
  tdm_buf_pool_init(&hs->pw.buf_pool, 4096, 16);
  hs->client.view.pw = &hs->pw;
  hs->client.view.id = 7;
  hs->client.view.peer = "127.0.0.1:5000";
  hs->client.view.version = version;
  hs->client.view.keyspace = hs->client.keyspace;
  for (int c = 0; c < 2; c++) {
    hs->client.view.key[c].version = version;
    hs->client.view.key[c].keyspace = "";
  }
}

/* Sends leg i's response. */
TDM_UNUSED static void reply(harness_t *hs, int i, uint8_t opcode, uint8_t flags, const uint8_t *body, size_t len)
{
  fake_sent_t *s = &hs->be.sent[i];
  assert_false(s->done);
  assert_false(s->abandoned);
  s->done = true;
  tdm_slice_t *sl = tdm_slice_copy(NULL, body, len);
  tdm_frame_header_t h = { .version = hs->client.view.version, .response = true, .flags = flags,
                           .stream = 100, .opcode = opcode, .length = (uint32_t)len };
  s->leg->on_response(s->leg, &h, sl, sl->data, len);
  tdm_slice_unref(sl);
}

TDM_UNUSED static void fail_leg(harness_t *hs, int i, int err, bool written, const char *reason)
{
  fake_sent_t *s = &hs->be.sent[i];
  assert_false(s->done);
  s->done = true;
  s->leg->on_failure(s->leg, err, written, reason);
}

TDM_UNUSED static void harness_free(harness_t *hs)
{
  assert_int_equal(tdm_route_inflight(&hs->pw), 0);
  tdm_route_worker_close(&hs->pw);
  assert_null(hs->pw.route);
  uv_run(&hs->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&hs->loop), 0);
  assert_int_equal(hs->client.refs, 0);
  for (int i = 0; i < hs->client.nresp; i++) free(hs->client.resp[i].body);
  for (int i = 0; i < hs->be.nsent; i++) free(hs->be.sent[i].body);
  tdm_prepared_registry_free(hs->pw.registry);
  tdm_conf_unref(hs->pw.conf);
  tdm_buf_pool_destroy(&hs->pw.buf_pool);
  tdm_proxy_stats_t *st = &hs->pw.stats;
  assert_int_equal(st->reads_inflight_origin + st->reads_inflight_target + st->writes_inflight, 0);
  assert_int_equal(st->async_inflight, 0);
}

/* Runs the loop until timers due within ms have fired. */
TDM_UNUSED static void run_for(harness_t *hs, int ms)
{
  uint64_t end = uv_now(&hs->loop) + (uint64_t)ms;
  while (uv_now(&hs->loop) < end) {
    uv_run(&hs->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&hs->loop);
  }
  uv_run(&hs->loop, UV_RUN_NOWAIT);
}

/* ---- bodies ---- */

typedef struct buf_s {
  uint8_t *p; /* bytes (malloc'd) */
  size_t n;   /* length */
} buf_t;

TDM_UNUSED static buf_t take(tdm_writer_t *w)
{
  assert_int_equal(tdm_writer_error(w), 0);
  buf_t b;
  assert_int_equal(tdm_writer_take(w, &b.p, &b.n), 0);
  return b;
}

TDM_UNUSED static buf_t query_body(uint8_t version, const char *text, uint16_t cl, uint32_t flags, const char *ks)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_query_params_t p = { .consistency = cl, .flags = flags, .paging_state = { NULL, -1 } };
  if (flags & TDM_QFLAG_PAGING_STATE) p.paging_state = (tdm_bytes_t){ (const uint8_t *)"PS", 2 };
  if (ks) p.keyspace = tdm_str_from(ks);
  assert_int_equal(tdm_request_encode_query(&w, version, tdm_str_from(text), &p), 0);
  return take(&w);
}

TDM_UNUSED static buf_t prepare_body(uint8_t version, const char *text)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_request_encode_prepare(&w, version, tdm_str_from(text), NULL), 0);
  return take(&w);
}

TDM_UNUSED static buf_t execute_body(uint8_t version, const uint8_t *id, size_t n, const uint8_t *meta, size_t mn, uint16_t cl)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  static const uint8_t v1[4] = { 0, 0, 0, 42 };
  tdm_query_params_t p = { .consistency = cl, .flags = TDM_QFLAG_VALUES, .paging_state = { NULL, -1 } };
  tdm_writer_t vw;
  tdm_writer_init(&vw);
  tdm_writer_bytes(&vw, v1, 4);
  p.values_count = 1;
  p.values = vw.buf;
  p.values_len = vw.len;
  assert_int_equal(tdm_request_encode_execute(&w, version, (tdm_bytes_t){ id, (int32_t)n },
                                              (tdm_bytes_t){ meta, (int32_t)mn }, &p),
                   0);
  tdm_writer_free(&vw);
  return take(&w);
}

TDM_UNUSED static buf_t error_body(uint8_t version, uint32_t code, const char *msg)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_error_t e = { .code = code, .message = tdm_str_from(msg) };
  if (code == TDM_ERR_UNAVAILABLE) {
    e.consistency = TDM_CL_QUORUM;
    e.required = 2;
    e.alive = 1;
  }
  if (code == TDM_ERR_WRITE_TIMEOUT) e.write_type = TDM_STR("SIMPLE");
  assert_int_equal(tdm_response_encode_error(&w, version, &e), 0);
  return take(&w);
}

TDM_UNUSED static buf_t unprepared_body(uint8_t version, const uint8_t *id, size_t n)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_error_t e = { .code = TDM_ERR_UNPREPARED, .message = TDM_STR("unknown id"),
                             .unprepared_id = { id, (int32_t)n } };
  assert_int_equal(tdm_response_encode_error(&w, version, &e), 0);
  return take(&w);
}

TDM_UNUSED static buf_t prepared_body(uint8_t version, const uint8_t *id, size_t n, const uint8_t *meta, size_t mn)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_prepared_t p;
  memset(&p, 0, sizeof(p));
  p.id = (tdm_bytes_t){ id, (int32_t)n };
  p.result_metadata_id = meta ? (tdm_bytes_t){ meta, (int32_t)mn } : (tdm_bytes_t){ NULL, -1 };
  p.variables.paging_state = (tdm_bytes_t){ NULL, -1 };
  p.variables.new_metadata_id = (tdm_bytes_t){ NULL, -1 };
  p.result.flags = TDM_RFLAG_NO_METADATA;
  p.result.paging_state = (tdm_bytes_t){ NULL, -1 };
  p.result.new_metadata_id = (tdm_bytes_t){ NULL, -1 };
  assert_int_equal(tdm_response_encode_prepared(&w, version, &p), 0);
  return take(&w);
}

TDM_UNUSED static buf_t void_body(void)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_response_encode_void(&w), 0);
  return take(&w);
}

/* Decodes the ERROR the client got in response i. */
TDM_UNUSED static tdm_response_error_t client_error(harness_t *hs, int i)
{
  fake_resp_t *r = &hs->client.resp[i];
  assert_int_equal(r->opcode, TDM_OP_ERROR);
  tdm_response_t out;
  assert_int_equal(tdm_response_decode(hs->client.view.version, TDM_OP_ERROR, r->body, r->len, &out, NULL), 0);
  return out.error;
}

TDM_UNUSED static bool msg_is(tdm_str_t s, const char *want)
{
  if (tdm_str_eq_cstr(s, want)) return true;
  print_error("message: got \"%.*s\", want \"%s\"\n", (int)s.len, s.ptr ? s.ptr : "", want);
  return false;
}

/* Dispatches body b on stream `stream` with opcode and flags; frees b. Returns dispatch's result. */
TDM_UNUSED static int send_req(harness_t *hs, uint8_t opcode, uint8_t flags, int16_t stream, buf_t b)
{
  tdm_slice_t *sl = tdm_slice_copy(NULL, b.p, b.n);
  free(b.p);
  tdm_frame_header_t h = { .version = hs->client.view.version, .flags = flags, .stream = stream, .opcode = opcode,
                           .length = (uint32_t)b.n };
  int rc = tdm_route_dispatch(&hs->client, &h, sl, 0, b.n);
  tdm_slice_unref(sl);
  return rc;
}

#endif
