/* Shared harness of the frontend loop tests (included by tests/loop/test_frontend_*.c, one copy per
 * executable): a real uv loop running one worker's frontend on 127.0.0.1, raw non-blocking client
 * sockets driven from the test thread (each wait pumps the loop), frame and v5 segment codecs for the
 * client side, and link-time test doubles for what the frontend calls in other modules:
 *   tdm_route_dispatch / tdm_route_client_gone     (route module: echo, hold, big answers, vtables)
 *   tdm_backend_session_open / _cancel             (backend: scripted per-cluster session results)
 * Every test ends with frontend stop, context close and uv_loop_close() == 0. */
#ifndef TDM_TEST_FRONTEND_HARNESS_H
#define TDM_TEST_FRONTEND_HARNESS_H

#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tandem/core/proxy.h>
#include <tandem/core/worker.h>
#include <tandem/frontend/client.h>
#include <tandem/frontend/vtables.h>
#include <tandem/obs/log.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/frame.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>
#include <tandem/proto/segment.h>
#include <tandem/route/route.h>

/* ---- scripted doubles ---- */

typedef enum route_mode_e {
  ROUTE_ECHO = 0, /* RESULT Void at once */
  ROUTE_HOLD,     /* keep the request; h_release() answers it */
  ROUTE_BIG,      /* a RESULT of H->big_len bytes at once */
  ROUTE_VTABLES,  /* QUERY / PREPARE / EXECUTE through the virtual tables */
  ROUTE_REFUSE,   /* PROTOCOL_ERROR and a negative return (the route's "close" answer) */
} route_mode_t;

typedef enum sess_mode_e {
  SESS_OK = 0,  /* ready */
  SESS_HOLD,    /* stays pending until h_session_finish() */
  SESS_BADCRED, /* the cluster's BAD_CREDENTIALS */
  SESS_VERSION, /* the node refuses the protocol version */
  SESS_FAIL,    /* no node: a tandem reason, no body */
} sess_mode_t;

typedef struct held_s {
  tdm_client_t *c; /* the client (one reference) */
  int16_t stream;  /* its request's stream */
  uint8_t opcode;  /* request opcode */
} held_t;

typedef struct sess_s {
  tdm_session_cb cb;    /* callback */
  void *arg;            /* its argument */
  int cluster;          /* ORIGIN / TARGET */
  sess_mode_t mode;     /* scripted result */
  bool done;            /* answered or cancelled */
  bool cancelled;       /* cancelled by the frontend */
  bool creds;           /* the key carried client credentials */
  char user[64];        /* ... their user */
  char password[64];    /* ... and password */
  bool verified;        /* ... already verified by the caller (its cache): readiness only */
  uint8_t version;      /* key version */
  tdm_compression_t compression; /* key compression */
} sess_t;

typedef struct harness_s {
  uv_loop_t loop;                 /* the worker's loop */
  tdm_worker_t worker;            /* only .net is used */
  tdm_proxy_worker_t pw;          /* the proxy worker under test */
  tdm_topology_t topo[2];         /* cluster snapshots */
  int backend_dummy;              /* pw.backend points here (the doubles ignore it) */
  uint16_t port;                  /* the listener's port */
  route_mode_t route;             /* route double behaviour */
  size_t big_len;                 /* ROUTE_BIG answer size */
  int dispatched;                 /* tdm_route_dispatch calls */
  int gone;                       /* tdm_route_client_gone calls */
  held_t held[256];               /* ROUTE_HOLD requests */
  int nheld;                      /* entries in held */
  sess_mode_t script[2][16];      /* per cluster: results of the next session opens */
  int nscript[2];                 /* entries in script */
  sess_t sess[64];                /* every session open, in order */
  int nsess;                      /* entries in sess */
  uv_timer_t sess_timer;          /* answers sessions asynchronously (0 ms) */
} harness_t;

static harness_t *H; /* the running harness (tests are single-threaded) */

static const uint8_t k_void[4] = { 0, 0, 0, TDM_RESULT_VOID };

int tdm_route_dispatch(tdm_client_t *client, const tdm_frame_header_t *h, tdm_slice_t *body_slice, size_t off,
                       size_t len)
{
  H->dispatched++;
  const uint8_t *body = body_slice->data + off;
  switch (H->route) {
  case ROUTE_HOLD:
    assert_true(H->nheld < 256);
    tdm_client_ref(client);
    H->held[H->nheld++] = (held_t){ client, h->stream, h->opcode };
    return 0;
  case ROUTE_BIG: {
    uint8_t *big = calloc(1, H->big_len);
    big[3] = TDM_RESULT_VOID;
    tdm_client_respond_bytes(client, h->stream, TDM_OP_RESULT, big, H->big_len);
    free(big);
    return 0;
  }
  case ROUTE_VTABLES: {
    const tdm_client_view_t *v = tdm_client_view(client);
    tdm_str_t q;
    if (h->opcode == TDM_OP_QUERY && tdm_vtables_query_body(client, h->stream, body, len, TDM_STR("")) == 0) return 0;
    if (h->opcode == TDM_OP_PREPARE && tdm_request_peek_query(v->version, body, len, &q) == 0 &&
        tdm_vtables_prepare(client, h->stream, q, TDM_STR("")) == 0)
      return 0;
    tdm_bytes_t id;
    if (h->opcode == TDM_OP_EXECUTE && tdm_request_peek_execute_id(v->version, body, len, &id, NULL) == 0 &&
        tdm_vtables_execute(client, h->stream, id.ptr, (size_t)id.len, body, len))
      return 0;
    tdm_client_respond_bytes(client, h->stream, TDM_OP_RESULT, k_void, 4);
    return 0;
  }
  case ROUTE_REFUSE:
    tdm_client_respond_errorf(client, h->stream, TDM_ERR_PROTOCOL_ERROR, "route refused the body");
    return TDM_EPROTO_MALFORMED;
  default: tdm_client_respond_bytes(client, h->stream, TDM_OP_RESULT, k_void, 4); return 0;
  }
}

void tdm_route_client_gone(tdm_client_t *client)
{
  (void)client;
  H->gone++;
}

/* Answers held request i with RESULT Void and drops its reference. */
TDM_UNUSED static void h_release(int i)
{
  held_t *x = &H->held[i];
  assert_non_null(x->c);
  tdm_client_respond_bytes(x->c, x->stream, TDM_OP_RESULT, k_void, 4);
  tdm_client_unref(x->c);
  x->c = NULL;
}

TDM_UNUSED static void sess_answer(sess_t *s, sess_mode_t mode)
{
  if (s->done) return;
  s->done = true;
  static const uint8_t badcred[] = { 0, 0, 1, 0, 0, 51, 'P', 'r', 'o', 'v', 'i', 'd', 'e', 'd', ' ', 'u', 's', 'e',
                                     'r', 'n', 'a', 'm', 'e', ' ', 'b', 'o', 'b', ' ', 'a', 'n', 'd', '/', 'o', 'r', ' ',
                                     'p', 'a', 's', 's', 'w', 'o', 'r', 'd', ' ', 'a', 'r', 'e', ' ', 'i', 'n', 'c', 'o',
                                     'r', 'r', 'e', 'c', 't' };
  static const char vmsg[] = "Invalid or unsupported protocol version (5); supported versions are (3/v3, 4/v4)";
  uint8_t vbody[128];
  switch (mode) {
  case SESS_OK: s->cb(s->arg, 0, NULL, 0, NULL); break;
  case SESS_BADCRED: s->cb(s->arg, TDM_EINVAL, badcred, sizeof(badcred), NULL); break;
  case SESS_VERSION:
    vbody[0] = vbody[1] = vbody[2] = 0;
    vbody[3] = 0x0a;
    vbody[4] = 0;
    vbody[5] = (uint8_t)(sizeof(vmsg) - 1);
    memcpy(vbody + 6, vmsg, sizeof(vmsg) - 1);
    s->cb(s->arg, TDM_EPROTO_VERSION, vbody, 6 + sizeof(vmsg) - 1, NULL);
    break;
  case SESS_FAIL:
    s->cb(s->arg, TDM_ECLOSED, NULL, 0, "tandem: cannot open a session to TARGET (127.0.0.3:9042): connection refused");
    break;
  default: s->done = false; break;
  }
}

TDM_UNUSED static void sess_timer_cb(uv_timer_t *t)
{
  (void)t;
  for (int i = 0; i < H->nsess; i++)
    if (!H->sess[i].done && H->sess[i].mode != SESS_HOLD) sess_answer(&H->sess[i], H->sess[i].mode);
}

int tdm_backend_session_open(tdm_backend_t *be, int cluster, const tdm_session_key_t *key, tdm_session_cb cb,
                             void *arg)
{
  (void)be;
  assert_true(H->nsess < 64);
  sess_t *s = &H->sess[H->nsess++];
  memset(s, 0, sizeof(*s));
  s->cb = cb;
  s->arg = arg;
  s->cluster = cluster;
  s->version = key->version;
  s->compression = key->compression;
  if (key->creds) {
    s->creds = true;
    snprintf(s->user, sizeof(s->user), "%s", key->creds->user ? key->creds->user : "");
    snprintf(s->password, sizeof(s->password), "%s", key->creds->password ? key->creds->password : "");
    s->verified = key->creds->verified;
  }
  int k = cluster;
  s->mode = H->nscript[k] ? H->script[k][0] : SESS_OK;
  if (H->nscript[k]) {
    memmove(&H->script[k][0], &H->script[k][1], (size_t)(H->nscript[k] - 1) * sizeof(H->script[k][0]));
    H->nscript[k]--;
  }
  uv_timer_start(&H->sess_timer, sess_timer_cb, 0, 0); /* answers come later, as the backend's do */
  return 0;
}

void tdm_backend_session_cancel(tdm_backend_t *be, tdm_session_cb cb, void *arg)
{
  (void)be;
  for (int i = 0; i < H->nsess; i++) {
    sess_t *s = &H->sess[i];
    if (!s->done && s->cb == cb && s->arg == arg) {
      s->done = true;
      s->cancelled = true;
      return;
    }
  }
}

TDM_UNUSED static void h_script(int cluster, sess_mode_t mode)
{
  assert_true(H->nscript[cluster] < 16);
  H->script[cluster][H->nscript[cluster]++] = mode;
}

/* ---- the loop ---- */

TDM_UNUSED static void h_pump(int ms)
{
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  do {
    uv_run(&H->loop, UV_RUN_NOWAIT);
    if (ms) usleep(200);
  } while (uv_hrtime() < end);
}

/* Runs the loop until cond(arg) or timeout_ms; fails the test on timeout. */
#define h_until(cond, timeout_ms)                                                                                      \
  do {                                                                                                                 \
    uint64_t h_end_ = uv_hrtime() + (uint64_t)(timeout_ms) * 1000000u;                                                 \
    while (!(cond)) {                                                                                                  \
      if (uv_hrtime() > h_end_) fail_msg("timed out waiting for %s", #cond);                                           \
      uv_run(&H->loop, UV_RUN_NOWAIT);                                                                                 \
      usleep(100);                                                                                                     \
    }                                                                                                                  \
  } while (0)

TDM_UNUSED static void h_setup(harness_t *h)
{
  memset(h, 0, sizeof(*h));
  H = h;
  if (!getenv("TDM_TEST_DEBUG")) tdm_log_set_level(TDM_LOG_FATAL);
  else tdm_log_set_level(TDM_LOG_TRACE);
  assert_int_equal(uv_loop_init(&h->loop), 0);
  assert_int_equal(tdm_conn_ctx_init(&h->worker.net, &h->loop), 0);
  assert_int_equal(uv_timer_init(&h->loop, &h->sess_timer), 0);
  tdm_conf_t *conf;
  assert_int_equal(tdm_conf_defaults(&conf), 0);
  free(conf->proxy_listen_address);
  conf->proxy_listen_address = strdup("127.0.0.1");
  conf->proxy_listen_port = 0;
  h->pw.conf = conf;
  h->pw.loop = &h->loop;
  h->pw.worker = &h->worker;
  h->pw.backend = (tdm_backend_t *)(void *)&h->backend_dummy;
  for (int k = 0; k < 2; k++) {
    h->topo[k].cluster = k;
    h->topo[k].up = true;
    h->topo[k].versions_accepted =
        TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V1 | TDM_CONF_PV_DSE_V2;
    snprintf(h->topo[k].compression, sizeof(h->topo[k].compression), "lz4,snappy");
    snprintf(h->topo[k].cql_version, sizeof(h->topo[k].cql_version), "3.4.%d", 7 - 2 * k);
    h->pw.topology[k] = &h->topo[k];
  }
}

TDM_UNUSED static void h_start(harness_t *h)
{
  assert_int_equal(tdm_frontend_start(&h->pw), 0);
  h->port = tdm_frontend_port(&h->pw);
  assert_true(h->port != 0);
}

TDM_UNUSED static void ctx_closed(tdm_conn_ctx_t *ctx) { (void)ctx; }

TDM_UNUSED static void h_teardown(harness_t *h)
{
  for (int i = 0; i < h->nheld; i++)
    if (h->held[i].c) {
      tdm_client_respond_bytes(h->held[i].c, h->held[i].stream, TDM_OP_RESULT, k_void, 4);
      tdm_client_unref(h->held[i].c);
      h->held[i].c = NULL;
    }
  tdm_frontend_stop(&h->pw);
  assert_null(h->pw.frontend);
  h_pump(20);
  for (int i = 0; i < h->nsess; i++)
    if (!h->sess[i].done) fail_msg("session %d (cluster %d) never answered nor cancelled", i, h->sess[i].cluster);
  assert_int_equal(h->pw.stats.client_connections, 0);
  assert_int_equal(h->worker.net.nconns, 0);
  tdm_conn_ctx_close(&h->worker.net, ctx_closed);
  uv_close((uv_handle_t *)&h->sess_timer, NULL);
  h_pump(5);
  assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&h->loop), 0);
  tdm_conf_unref(h->pw.conf);
  H = NULL;
}

/* ---- the client side ---- */

typedef struct cli_s {
  int fd;            /* non-blocking socket */
  uint8_t *buf;      /* received, not yet parsed (segments when framed) */
  size_t len;        /* bytes in buf */
  size_t cap;        /* bytes allocated */
  uint8_t *env;      /* framed: envelopes extracted from segments */
  size_t env_len;    /* bytes in env */
  bool framed;       /* the connection switched to v5 framing */
  bool eof;          /* the server closed */
  tdm_compression_t compression; /* negotiated: compressed bodies are decompressed on receipt */
} cli_t;

/* A received frame (body copied). */
typedef struct frame_s {
  tdm_frame_header_t h; /* header */
  uint8_t body[1 << 16]; /* the first 64 KiB of the body */
  size_t len;           /* full body length */
} frame_t;

TDM_UNUSED static int h_connect_to(const char *ip)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(H->port) };
  inet_pton(AF_INET, ip, &a.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

TDM_UNUSED static void cli_open(cli_t *c)
{
  memset(c, 0, sizeof(*c));
  c->fd = h_connect_to("127.0.0.1");
}

TDM_UNUSED static void cli_close(cli_t *c)
{
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  free(c->buf);
  free(c->env);
  c->buf = c->env = NULL;
  c->len = c->env_len = c->cap = 0;
}

TDM_UNUSED static void cli_send_raw(cli_t *c, const void *p, size_t n)
{
  const uint8_t *b = p;
  while (n) {
    ssize_t k = send(c->fd, b, n, MSG_NOSIGNAL);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      h_pump(1);
      continue;
    }
    assert_true(k > 0);
    b += k;
    n -= (size_t)k;
  }
}

TDM_UNUSED static size_t encode_frame(uint8_t *out, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode,
                           const void *body, size_t len)
{
  tdm_frame_header_t h = { .version = version, .flags = flags, .stream = stream, .opcode = opcode,
                           .length = (uint32_t)len };
  size_t hl = tdm_frame_header_encode(&h, out);
  if (len) memcpy(out + hl, body, len);
  return hl + len;
}

/* Sends one request frame (as one v5 self-contained segment once framed). */
TDM_UNUSED static void cli_send(cli_t *c, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode, const void *body,
                     size_t len)
{
  uint8_t *f = malloc(len + 16);
  size_t n = encode_frame(f, version, flags, stream, opcode, body, len);
  if (!c->framed) {
    cli_send_raw(c, f, n);
  } else {
    assert_true(n <= TDM_SEGMENT_MAX_PAYLOAD);
    uint8_t *seg = malloc(n + 16);
    int sn = tdm_segment_encode(f, n, true, false, seg, n + 16);
    assert_true(sn > 0);
    cli_send_raw(c, seg, (size_t)sn);
    free(seg);
  }
  free(f);
}

/* Reads what the socket has. */
TDM_UNUSED static void cli_fill(cli_t *c)
{
  for (;;) {
    if (c->cap - c->len < 65536) {
      c->cap = c->cap * 2 + 65536;
      c->buf = realloc(c->buf, c->cap);
    }
    ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (k > 0) {
      c->len += (size_t)k;
      continue;
    }
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) c->eof = true;
    return;
  }
}

/* Moves whole segments' payloads to c->env. */
TDM_UNUSED static void cli_unsegment(cli_t *c)
{
  for (;;) {
    tdm_segment_t seg;
    int n = tdm_segment_decode(c->buf, c->len, false, true, &seg);
    assert_true(n >= 0);
    if (n == 0) return;
    c->env = realloc(c->env, c->env_len + seg.uncompressed_len + 1);
    memcpy(c->env + c->env_len, seg.payload, seg.payload_len);
    c->env_len += seg.payload_len;
    memmove(c->buf, c->buf + n, c->len - (size_t)n);
    c->len -= (size_t)n;
  }
}

/* One frame if complete. */
TDM_UNUSED static bool cli_take(cli_t *c, frame_t *f)
{
  uint8_t *p = c->framed ? c->env : c->buf;
  size_t *len = c->framed ? &c->env_len : &c->len;
  if (c->framed) cli_unsegment(c);
  p = c->framed ? c->env : c->buf;
  tdm_frame_header_t h;
  int hl = tdm_frame_header_decode(p, *len, UINT32_MAX, &h);
  if (hl <= 0 || *len < (size_t)hl + h.length) return false;
  f->h = h;
  f->len = h.length;
  if ((h.flags & TDM_FLAG_COMPRESSED) && !c->framed && c->compression != TDM_COMPRESSION_NONE) {
    uint8_t *plain;
    size_t plen;
    assert_int_equal(tdm_body_decompress(c->compression, p + hl, h.length, 1u << 30, &plain, &plen), 0);
    f->len = plen;
    memcpy(f->body, plain, TDM_MIN(plen, sizeof(f->body)));
    free(plain);
  } else {
    memcpy(f->body, p + hl, TDM_MIN((size_t)h.length, sizeof(f->body)));
  }
  memmove(p, p + hl + h.length, *len - (size_t)hl - h.length);
  *len -= (size_t)hl + h.length;
  return true;
}

/* Waits for the next frame (fails after 3 s). */
TDM_UNUSED static void cli_recv(cli_t *c, frame_t *f)
{
  uint64_t end = uv_hrtime() + 3000000000ull;
  for (;;) {
    cli_fill(c);
    if (cli_take(c, f)) return;
    if (c->eof) fail_msg("connection closed while waiting for a frame");
    if (uv_hrtime() > end) fail_msg("no frame within 3 s");
    uv_run(&H->loop, UV_RUN_NOWAIT);
    usleep(100);
  }
}

/* True when nothing arrives within ms. */
TDM_UNUSED static bool cli_quiet(cli_t *c, int ms)
{
  h_pump(ms);
  cli_fill(c);
  frame_t *f = malloc(sizeof(*f));
  bool got = cli_take(c, f);
  free(f);
  return !got;
}

TDM_UNUSED static void cli_wait_eof(cli_t *c)
{
  uint64_t end = uv_hrtime() + 5000000000ull;
  while (!c->eof) {
    cli_fill(c);
    if (uv_hrtime() > end) fail_msg("the server did not close");
    uv_run(&H->loop, UV_RUN_NOWAIT);
    usleep(100);
  }
}

/* The ERROR message of f (which must be an ERROR with `code`). */
TDM_UNUSED static void assert_error(const frame_t *f, uint32_t code, const char *msg)
{
  assert_int_equal(f->h.opcode, TDM_OP_ERROR);
  uint32_t got;
  tdm_str_t m;
  assert_int_equal(tdm_response_peek_error_code(f->body, f->len, &got, &m), 0);
  if (got != code || !tdm_str_eq_cstr(m, msg))
    fail_msg("got error 0x%04x '%.*s', want 0x%04x '%s'", got, (int)m.len, m.ptr, code, msg);
}

TDM_UNUSED static size_t startup_body(uint8_t *out, size_t cap, const char *compression)
{
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, out, cap);
  tdm_str_t keys[2] = { TDM_STR("CQL_VERSION"), TDM_STR("COMPRESSION") };
  tdm_str_t values[2] = { TDM_STR("3.0.0"), tdm_str_from(compression ? compression : "") };
  assert_int_equal(tdm_request_encode_startup(&w, keys, values, compression ? 2 : 1), 0);
  return w.len;
}

TDM_UNUSED static size_t query_body(uint8_t *out, size_t cap, uint8_t version, const char *q)
{
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, out, cap);
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  assert_int_equal(tdm_request_encode_query(&w, version, tdm_str_from(q), &p), 0);
  return w.len;
}

/* STARTUP (no auth configured) through READY; sessions answer as scripted (default ok). */
TDM_UNUSED static void cli_handshake(cli_t *c, uint8_t version, const char *compression)
{
  uint8_t b[128];
  size_t n = startup_body(b, sizeof(b), compression);
  cli_send(c, version, 0, 0, TDM_OP_STARTUP, b, n);
  frame_t *f = malloc(sizeof(*f));
  cli_recv(c, f);
  assert_int_equal(f->h.opcode, TDM_OP_READY);
  assert_int_equal(f->h.version, version);
  free(f);
  if (version == TDM_PROTO_V5) c->framed = true;
  if (compression) assert_int_equal(tdm_compression_parse(tdm_str_from(compression), &c->compression), 0);
}

#endif
