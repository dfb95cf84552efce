/* Per-connection request handling.
 *
 *   frame -> version check -> decode (tdm_request_decode) -> count (node, opcode, text)
 *         -> rule? --delay--> timer (copy of the frame) --+
 *                  \--------------------------------------+-> act: rule action | default
 *   default: OPTIONS -> SUPPORTED; STARTUP -> READY | AUTHENTICATE (v5 framing starts after it);
 *            AUTH_RESPONSE -> SASL PLAIN (DSE: PLAIN -> PLAIN-START -> credentials);
 *            REGISTER -> READY; QUERY/PREPARE/EXECUTE/BATCH -> exec.c
 *
 * Invariant: every frame gets exactly one answer unless a rule says otherwise (noreply, close, garbage)
 * or the connection closes first. */
#include <stdarg.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "exec.h"
#include "session.h"
#include "values.h"

typedef struct delayed_s {
  uv_timer_t timer;          /* fires after the rule's delay */
  tdm_mock_link_t link;      /* in conn->timers */
  tdm_mock_conn_t *conn;     /* referenced until the timer's close callback */
  tdm_mock_rule_t *rule;     /* referenced likewise */
  tdm_frame_header_t header; /* the request's header */
  size_t len;                /* body bytes */
  uint8_t body[];            /* copy of the body */
} delayed_t;

static void act(tdm_mock_conn_t *c, const tdm_frame_header_t *h, const tdm_request_t *req, tdm_str_t text,
                const tdm_mock_rule_t *rule);

static uint8_t highest_plain_version(const tdm_mock_t *mock)
{
  uint8_t best = 0;
  for (size_t i = 0; i < mock->opts.n_versions; i++)
    if (mock->opts.versions[i] <= TDM_PROTO_V5 && mock->opts.versions[i] > best) best = mock->opts.versions[i];
  return best ? best : TDM_PROTO_V4;
}

static bool version_served(const tdm_mock_t *mock, uint8_t v)
{
  for (size_t i = 0; i < mock->opts.n_versions; i++)
    if (mock->opts.versions[i] == v) return true;
  return false;
}

/* "3/v3", "65/dse-v1" */
static void version_label(uint8_t v, char *buf, size_t cap)
{
  if (v == TDM_PROTO_DSE_V1 || v == TDM_PROTO_DSE_V2) snprintf(buf, cap, "%u/dse-v%u", v, v - 0x40);
  else snprintf(buf, cap, "%u/v%u", v, v);
}

static void send_body(tdm_mock_conn_t *c, int16_t stream, uint8_t opcode, tdm_writer_t *w)
{
  int rc = tdm_writer_error(w);
  if (!rc) rc = tdm_mock_conn_send(c, stream, opcode, w->buf, w->len);
  tdm_writer_free(w);
  if (rc && rc != TDM_ECLOSED) tdm_mock_conn_close(c, false);
}

static void send_error(tdm_mock_conn_t *c, int16_t stream, const tdm_response_error_t *e)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_encode_error(&w, c->version, e);
  send_body(c, stream, TDM_OP_ERROR, &w);
}

void tdm_mock_session_error(tdm_mock_conn_t *c, int16_t stream, uint32_t code, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  tdm_response_error_t e = { .code = code, .message = tdm_str_from(msg) };
  if (c->version == 0) c->version = highest_plain_version(c->mock);
  send_error(c, stream, &e);
}

void tdm_mock_session_protocol_error(tdm_mock_conn_t *c, int16_t stream, const char *msg)
{
  c->mock->stats.nodes[c->node->index].protocol_errors++;
  tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "%s", msg);
  c->close_after_flush = true;
}

/* The answer Cassandra gives to a version it does not serve, then close. */
static void refuse_version(tdm_mock_conn_t *c, const tdm_frame_header_t *h)
{
  tdm_mock_t *mock = c->mock;
  char list[256] = "", label[24];
  size_t o = 0;
  for (size_t i = 0; i < mock->opts.n_versions; i++) {
    version_label(mock->opts.versions[i], label, sizeof(label));
    o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", label);
    if (o >= sizeof(list)) break;
  }
  char msg[400];
  snprintf(msg, sizeof(msg), "Invalid or unsupported protocol version (%u); supported versions are (%s)", h->version,
           list);
  uint8_t lowest = mock->opts.n_versions ? mock->opts.versions[0] : TDM_PROTO_V3;
  uint8_t hv = h->version < lowest ? h->version : highest_plain_version(mock);
  tdm_response_error_t e = { .code = TDM_ERR_PROTOCOL_ERROR, .message = tdm_str_from(msg) };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_encode_error(&w, TDM_PROTO_V4, &e);
  mock->stats.nodes[c->node->index].version_refused++;
  tdm_mock_stats_request(&mock->stats, (uint32_t)c->node->index, h->opcode, (tdm_str_t){ 0 });
  int rc = tdm_writer_error(&w);
  if (!rc) rc = tdm_mock_conn_send_unframed(c, hv, 0, TDM_OP_ERROR, w.buf, w.len);
  tdm_writer_free(&w);
  c->close_after_flush = true;
  if (rc) tdm_mock_conn_close(c, false);
}

int tdm_mock_session_on_header(tdm_mock_conn_t *c, const tdm_frame_header_t *h)
{
  if (c->version == 0) {
    if (!version_served(c->mock, h->version)) {
      refuse_version(c, h);
      return -1;
    }
    c->version = h->version;
  }
  if (h->version != c->version) {
    tdm_mock_session_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR,
                           "Invalid message version. Got %u but previous messages on this connection had version %u",
                           h->version, c->version);
    c->close_after_flush = true;
    return -1;
  }
  if (h->response) {
    tdm_mock_session_protocol_error(c, h->stream, "Received a response frame where a request was expected");
    return -1;
  }
  return 0;
}

/* ---- handshake ---- */

static void send_supported(tdm_mock_conn_t *c, int16_t stream)
{
  const tdm_mock_opts_t *o = &c->mock->opts;
  char labels[TDM_MOCK_MAX_VERSIONS][24];
  tdm_str_t versions[TDM_MOCK_MAX_VERSIONS], comp[2], cql[1] = { tdm_str_from(o->cql_version) };
  size_t nv = 0, nc = 0;
  for (size_t i = 0; i < o->n_versions; i++) {
    version_label(o->versions[i], labels[i], sizeof(labels[i]));
    versions[nv++] = tdm_str_from(labels[i]);
  }
  if (o->lz4) comp[nc++] = TDM_STR("lz4");
  if (o->snappy) comp[nc++] = TDM_STR("snappy");
  tdm_response_option_t entries[3] = {
    { .key = TDM_STR("PROTOCOL_VERSIONS"), .values = { .count = (uint16_t)nv, .items = versions } },
    { .key = TDM_STR("COMPRESSION"), .values = { .count = (uint16_t)nc, .items = comp } },
    { .key = TDM_STR("CQL_VERSION"), .values = { .count = 1, .items = cql } },
  };
  tdm_response_supported_t s = { .count = 3, .entries = entries };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_response_encode_supported(&w, &s);
  send_body(c, stream, TDM_OP_SUPPORTED, &w);
}

/* After READY or AUTHENTICATE: v3/v4 bodies may be compressed from now on; v5 switches to segments. */
static void handshake_answered(tdm_mock_conn_t *c)
{
  c->compress_out = true;
  if (tdm_proto_has_segments(c->version)) tdm_mock_conn_start_framing(c);
}

static void startup(tdm_mock_conn_t *c, int16_t stream, const tdm_startup_t *s)
{
  const tdm_mock_opts_t *o = &c->mock->opts;
  if (c->started) {
    tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR,
                           "Unexpected message STARTUP, the connection is already initialized");
    return;
  }
  if (!(s->present & TDM_REQUEST_STARTUP_CQL_VERSION)) {
    tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "Missing value CQL_VERSION in STARTUP message");
    return;
  }
  tdm_compression_t comp = TDM_COMPRESSION_NONE;
  if (s->present & TDM_REQUEST_STARTUP_COMPRESSION) {
    if (tdm_compression_parse(s->compression, &comp) || (comp == TDM_COMPRESSION_LZ4 && !o->lz4) ||
        (comp == TDM_COMPRESSION_SNAPPY && !o->snappy)) {
      tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "Unknown compression algorithm: %.*s",
                             (int)s->compression.len, s->compression.ptr);
      return;
    }
    if (comp == TDM_COMPRESSION_SNAPPY && tdm_proto_has_segments(c->version)) {
      tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "snappy is not supported with protocol v5");
      return;
    }
  }
  c->compression = comp;
  c->started = true;
  tdm_writer_t w;
  tdm_writer_init(&w);
  if (o->auth_class) {
    tdm_response_encode_authenticate(&w, tdm_str_from(o->auth_class));
    c->auth = TDM_MOCK_AUTH_WAIT;
    send_body(c, stream, TDM_OP_AUTHENTICATE, &w);
  } else {
    c->ready = true;
    send_body(c, stream, TDM_OP_READY, &w);
  }
  handshake_answered(c);
}

/* [authzid] NUL user NUL password */
static bool split_plain(tdm_bytes_t token, tdm_str_t *user, tdm_str_t *pass)
{
  if (token.len < 2) return false;
  const char *p = (const char *)token.ptr;
  const char *nul1 = memchr(p, '\0', (size_t)token.len);
  if (!nul1) return false;
  size_t rest = (size_t)token.len - (size_t)(nul1 + 1 - p);
  const char *nul2 = memchr(nul1 + 1, '\0', rest);
  if (!nul2) return false;
  *user = (tdm_str_t){ nul1 + 1, (size_t)(nul2 - nul1 - 1) };
  *pass = (tdm_str_t){ nul2 + 1, (size_t)token.len - (size_t)(nul2 + 1 - p) };
  return true;
}

static void auth_response(tdm_mock_conn_t *c, int16_t stream, tdm_bytes_t token)
{
  tdm_mock_t *mock = c->mock;
  tdm_writer_t w;
  tdm_writer_init(&w);
  if (c->auth == TDM_MOCK_AUTH_NONE) {
    tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "Unexpected message AUTH_RESPONSE");
    return;
  }
  bool dse = strstr(mock->opts.auth_class, "DseAuthenticator") != NULL;
  if (dse && c->auth == TDM_MOCK_AUTH_WAIT && token.len == 5 && memcmp(token.ptr, "PLAIN", 5) == 0) {
    tdm_response_encode_auth_token(&w, (tdm_bytes_t){ (const uint8_t *)"PLAIN-START", 11 });
    c->auth = TDM_MOCK_AUTH_DSE_CREDS;
    send_body(c, stream, TDM_OP_AUTH_CHALLENGE, &w);
    return;
  }
  tdm_str_t user = { 0 }, pass = { 0 };
  bool ok = false;
  if (split_plain(token, &user, &pass)) {
    for (size_t i = 0; i < mock->opts.n_creds && !ok; i++)
      ok = tdm_str_eq_cstr(user, mock->opts.creds[i].user) && tdm_str_eq_cstr(pass, mock->opts.creds[i].pass);
  }
  tdm_mock_stats_auth(&mock->stats, (uint32_t)c->node->index, c->id, user, ok);
  if (!ok) {
    c->auth = TDM_MOCK_AUTH_WAIT;
    tdm_mock_session_error(c, stream, TDM_ERR_BAD_CREDENTIALS, "Provided username %.*s and/or password are incorrect",
                           (int)user.len, user.ptr ? user.ptr : "");
    return;
  }
  c->auth = TDM_MOCK_AUTH_NONE;
  c->authenticated = c->ready = true;
  snprintf(c->user, sizeof(c->user), "%.*s", (int)TDM_MIN(user.len, sizeof(c->user) - 1), user.ptr);
  tdm_response_encode_auth_token(&w, (tdm_bytes_t){ NULL, -1 });
  send_body(c, stream, TDM_OP_AUTH_SUCCESS, &w);
}

/* ---- dispatch ---- */

static void dispatch(tdm_mock_conn_t *c, const tdm_frame_header_t *h, const tdm_request_t *req)
{
  int16_t stream = h->stream;
  switch (h->opcode) {
  case TDM_OP_OPTIONS: send_supported(c, stream); return;
  case TDM_OP_STARTUP: startup(c, stream, &req->u.startup); return;
  case TDM_OP_AUTH_RESPONSE: auth_response(c, stream, req->u.auth_token); return;
  default: break;
  }
  if (!c->started) {
    tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "Unexpected message %s, expecting STARTUP or OPTIONS",
                           tdm_opcode_name(h->opcode));
    return;
  }
  if (!c->ready) {
    tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "Unexpected message %s, expecting AUTH_RESPONSE",
                           tdm_opcode_name(h->opcode));
    return;
  }
  switch (h->opcode) {
  case TDM_OP_REGISTER: {
    tdm_writer_t w;
    tdm_writer_init(&w);
    c->events |= req->u.reg.events;
    send_body(c, stream, TDM_OP_READY, &w);
    return;
  }
  case TDM_OP_QUERY: tdm_mock_exec_query(c, stream, &req->u.query); return;
  case TDM_OP_PREPARE: tdm_mock_exec_prepare(c, stream, &req->u.prepare); return;
  case TDM_OP_EXECUTE: tdm_mock_exec_execute(c, stream, &req->u.execute); return;
  case TDM_OP_BATCH: tdm_mock_exec_batch(c, stream, &req->u.batch); return;
  default:
    tdm_mock_session_error(c, stream, TDM_ERR_PROTOCOL_ERROR, "Unknown opcode %u", h->opcode);
    return;
  }
}

/* ---- rules ---- */

static void garbage(tdm_mock_conn_t *c, const tdm_mock_rule_t *rule)
{
  uint8_t *p = malloc(rule->garbage);
  if (!p) return;
  uint32_t x = 2463534242u ^ (rule->id * 2654435761u) ^ (uint32_t)rule->fired;
  for (size_t i = 0; i < rule->garbage; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (uint8_t)x;
  }
  p[0] = 0xff; /* never a valid version byte */
  if (tdm_mock_conn_send_raw(c, p, rule->garbage)) tdm_mock_conn_close(c, false);
  free(p);
}

static void act(tdm_mock_conn_t *c, const tdm_frame_header_t *h, const tdm_request_t *req, tdm_str_t text,
                const tdm_mock_rule_t *rule)
{
  int16_t stream = h->stream;
  switch (rule->action) {
  case TDM_MOCK_ACT_DEFAULT: dispatch(c, h, req); return;
  case TDM_MOCK_ACT_ROWS: tdm_mock_exec_rule_rows(c, stream, rule); return;
  case TDM_MOCK_ACT_VOID: tdm_mock_exec_void(c, stream); return;
  case TDM_MOCK_ACT_ERROR: send_error(c, stream, &rule->error); return;
  case TDM_MOCK_ACT_CLOSE:
    tdm_mock_conn_flush_all(c->mock); /* answers queued before this request still leave */
    tdm_mock_conn_close(c, rule->reset);
    return;
  case TDM_MOCK_ACT_GARBAGE: garbage(c, rule); return;
  case TDM_MOCK_ACT_NOREPLY: return;
  case TDM_MOCK_ACT_UNPREPARED: {
    uint8_t md5[16];
    if (h->opcode == TDM_OP_EXECUTE) {
      tdm_mock_exec_unprepared(c, stream, req->u.execute.id.ptr, (size_t)TDM_MAX(req->u.execute.id.len, 0));
      return;
    }
    tdm_mock_md5(text.ptr, text.len, md5);
    tdm_mock_exec_unprepared(c, stream, md5, sizeof(md5));
    return;
  }
  case TDM_MOCK_ACT_MAX: break;
  }
}

static tdm_str_t request_text(tdm_mock_conn_t *c, const tdm_frame_header_t *h, const tdm_request_t *req,
                              tdm_writer_t *scratch);

static void on_delay_closed(uv_handle_t *h)
{
  delayed_t *d = h->data;
  tdm_mock_rule_unref(d->rule);
  tdm_mock_conn_unref(d->conn);
  free(d);
}

static void on_delay(uv_timer_t *t)
{
  delayed_t *d = t->data;
  tdm_mock_conn_t *c = d->conn;
  tdm_mock_list_remove(&d->link);
  tdm_request_t req;
  tdm_writer_t scratch;
  memset(&req, 0, sizeof(req));
  tdm_writer_init(&scratch);
  /* The body decoded before it was copied, so it decodes again (unknown opcodes have no members). */
  int rc = tdm_request_decode(d->header.version, d->header.opcode, d->body, d->len, &req, NULL);
  if (!c->closing && (rc == 0 || rc == TDM_EPROTO_OPCODE)) {
    tdm_str_t text = rc ? (tdm_str_t){ 0 } : request_text(c, &d->header, &req, &scratch);
    act(c, &d->header, &req, text, d->rule);
  }
  tdm_writer_free(&scratch);
  uv_close((uv_handle_t *)&d->timer, on_delay_closed);
}

static void delay(tdm_mock_conn_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len,
                  tdm_mock_rule_t *rule)
{
  delayed_t *d = malloc(sizeof(*d) + len);
  if (!d) return;
  if (uv_timer_init(&c->mock->loop, &d->timer)) {
    free(d);
    return;
  }
  d->timer.data = d;
  d->conn = c;
  d->rule = rule;
  d->header = *h;
  d->len = len;
  if (len) memcpy(d->body, body, len);
  tdm_mock_conn_ref(c);
  tdm_mock_rule_ref(rule);
  tdm_mock_list_push(&c->timers, &d->link);
  uv_timer_start(&d->timer, on_delay, rule->delay_ms, 0);
}

void tdm_mock_session_close(tdm_mock_conn_t *c)
{
  tdm_mock_link_t *it, *tmp;
  TDM_MOCK_LIST_EACH(it, tmp, &c->timers)
  {
    delayed_t *d = TDM_MOCK_CONTAINER(it, delayed_t, link);
    tdm_mock_list_remove(&d->link);
    uv_close((uv_handle_t *)&d->timer, on_delay_closed);
  }
}

/* The text a request is counted and matched by: QUERY/PREPARE text, EXECUTE's prepared text, BATCH
 * children joined by newlines, AUTH_RESPONSE's user name. */
static tdm_str_t request_text(tdm_mock_conn_t *c, const tdm_frame_header_t *h, const tdm_request_t *req,
                              tdm_writer_t *scratch)
{
  tdm_str_t user, pass;
  switch (h->opcode) {
  case TDM_OP_QUERY: return req->u.query.query;
  case TDM_OP_PREPARE: return req->u.prepare.query;
  case TDM_OP_EXECUTE: {
    const tdm_mock_prep_t *e = tdm_mock_prepared_find(&c->mock->texts, req->u.execute.id.ptr,
                                                      (size_t)TDM_MAX(req->u.execute.id.len, 0));
    return e ? (tdm_str_t){ e->text, e->text_len } : (tdm_str_t){ 0 };
  }
  case TDM_OP_BATCH: {
    tdm_batch_iter_t it;
    tdm_batch_child_t child;
    tdm_batch_iter_init(&it, &req->u.batch);
    while (tdm_batch_next_child(&it, &child) > 0) {
      if (scratch->len) tdm_writer_byte(scratch, '\n');
      if (child.kind == TDM_REQUEST_BATCH_KIND_QUERY) {
        if (child.query.len) tdm_writer_raw(scratch, child.query.ptr, child.query.len);
      } else {
        const tdm_mock_prep_t *e = tdm_mock_prepared_find(&c->mock->texts, child.id.ptr,
                                                          (size_t)TDM_MAX(child.id.len, 0));
        if (e && e->text_len) tdm_writer_raw(scratch, e->text, e->text_len);
      }
    }
    return tdm_writer_error(scratch) ? (tdm_str_t){ 0 } : (tdm_str_t){ (const char *)scratch->buf, scratch->len };
  }
  case TDM_OP_AUTH_RESPONSE:
    if (split_plain(req->u.auth_token, &user, &pass)) return user;
    if (req->u.auth_token.len > 0)
      return (tdm_str_t){ (const char *)req->u.auth_token.ptr, (size_t)req->u.auth_token.len };
    return (tdm_str_t){ 0 };
  default: return (tdm_str_t){ 0 };
  }
}

void tdm_mock_session_on_frame(tdm_mock_conn_t *c, const tdm_frame_header_t *hdr, const uint8_t *body, size_t len)
{
  tdm_mock_t *mock = c->mock;
  tdm_frame_header_t h = *hdr;
  if (h.version != c->version) {
    tdm_mock_session_error(c, h.stream, TDM_ERR_PROTOCOL_ERROR,
                           "Invalid message version. Got %u but previous messages on this connection had version %u",
                           h.version, c->version);
    c->close_after_flush = true;
    return;
  }
  c->requests++;
  if ((h.flags & TDM_FLAG_CUSTOM_PAYLOAD) && h.version >= TDM_PROTO_V4) {
    tdm_reader_t r;
    tdm_reader_init(&r, body, len);
    if (tdm_reader_skip_bytes_map(&r)) {
      tdm_mock_session_protocol_error(c, h.stream, "malformed custom payload");
      return;
    }
    body += r.pos;
    len -= r.pos;
  }
  tdm_request_t req;
  const char *why = "malformed request";
  memset(&req, 0, sizeof(req));
  int rc = tdm_request_decode(h.version, h.opcode, body, len, &req, &why);
  bool unknown_op = rc == TDM_EPROTO_OPCODE;
  if (rc && !unknown_op) {
    tdm_mock_stats_request(&mock->stats, (uint32_t)c->node->index, h.opcode, (tdm_str_t){ 0 });
    tdm_mock_session_protocol_error(c, h.stream, why);
    return;
  }
  tdm_writer_t scratch;
  tdm_writer_init(&scratch);
  tdm_str_t text = unknown_op ? (tdm_str_t){ 0 } : request_text(c, &h, &req, &scratch);
  tdm_mock_stats_request(&mock->stats, (uint32_t)c->node->index, h.opcode, text);
  tdm_mock_rule_t *rule = NULL;
  if (mock->rules.count) rule = tdm_mock_rules_match(&mock->rules, (int)c->node->index, h.opcode, h.version, text);
  if (rule && rule->delay_ms) delay(c, &h, body, len, rule);
  else if (rule) act(c, &h, &req, text, rule);
  else dispatch(c, &h, &req);
  tdm_writer_free(&scratch);
}
