/* Control commands and the TCP server that carries them. Replies are single lines: "OK" plus an
 * optional payload (a number, an id, or one line of JSON), or "ERR <reason>". A client may pipeline
 * commands; replies come back in order. */
#include <regex.h>

#include <tandem/proto/opcodes.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "buf.h"
#include "conn.h"
#include "control.h"
#include "exec.h"
#include "json.h"
#include "values.h"

#define MAX_LINE (64u * 1024)

typedef struct client_s {
  uv_tcp_t tcp;         /* control connection */
  tdm_mock_t *mock;     /* instance */
  tdm_mock_link_t link; /* in mock->control_clients */
  tdm_mock_buf_t in;    /* bytes not yet split into lines */
  bool closing;         /* close started */
} client_t;

typedef struct reply_req_s {
  uv_write_t req; /* libuv request */
  uint8_t *data;  /* reply bytes (heap) */
} reply_req_t;

static int ok(tdm_writer_t *w, const char *payload)
{
  tdm_writer_raw(w, "OK", 2);
  if (payload && payload[0]) {
    tdm_writer_byte(w, ' ');
    tdm_writer_raw(w, payload, strlen(payload));
  }
  return 0;
}

static int err(tdm_writer_t *w, const char *fmt, ...) TDM_PRINTF(2, 3);
static int err(tdm_writer_t *w, const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  tdm_writer_raw(w, "ERR ", 4);
  tdm_writer_raw(w, buf, strlen(buf));
  return TDM_EINVAL;
}

static int ok_u64(tdm_writer_t *w, uint64_t v)
{
  char buf[32];
  snprintf(buf, sizeof(buf), "%" PRIu64, v);
  return ok(w, buf);
}

/* node= field: index or -1 (absent or "*"); TDM_ENOTFOUND with an error written. */
static int node_field(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w, bool required)
{
  tdm_str_t v;
  if (!tdm_mock_args_get(a, "node", &v)) {
    if (required) return err(w, "node= is required"), TDM_ENOTFOUND;
    return -1;
  }
  int n = tdm_mock_node_find(mock, v);
  if (n == TDM_ENOTFOUND) err(w, "unknown node '%.*s'", (int)v.len, v.ptr);
  return n;
}

static int check_unused(tdm_mock_args_t *a, tdm_writer_t *w)
{
  char name[64];
  if (tdm_mock_args_unused(a, name, sizeof(name))) return err(w, "unknown field '%s'", name);
  return 0;
}

static size_t open_conns(const tdm_mock_node_t *node)
{
  size_t n = 0;
  for (const tdm_mock_link_t *it = node->conns.next; it != &node->conns; it = it->next) n++;
  return n;
}

static int cmd_count(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w)
{
  tdm_mock_count_filter_t f = { .node = -1, .opcode = -1 };
  tdm_str_t v;
  regex_t re;
  bool has_re = false;
  if ((f.node = node_field(mock, a, w, false)) == TDM_ENOTFOUND) return TDM_EINVAL;
  if (tdm_mock_args_get(a, "what", &v)) {
    static const char *const names[] = { "requests", "connections", "auth_ok", "auth_failed", "protocol_errors" };
    size_t i = 0;
    while (i < TDM_ARRAY_SIZE(names) && !tdm_str_eq_ci(v, tdm_str_from(names[i]))) i++;
    if (i == TDM_ARRAY_SIZE(names)) return err(w, "bad what '%.*s'", (int)v.len, v.ptr);
    f.what = (tdm_mock_count_what_t)i;
  }
  if (tdm_mock_args_get(a, "op", &v)) {
    uint8_t op;
    if (tdm_mock_opcode_parse(v, &op)) return err(w, "bad op '%.*s'", (int)v.len, v.ptr);
    f.opcode = op;
  }
  tdm_mock_args_get(a, "match", &f.match);
  tdm_mock_args_get(a, "user", &f.user);
  if (tdm_mock_args_get(a, "text", &v)) f.exact = v.ptr ? v : TDM_STR("");
  if (tdm_mock_args_get(a, "regex", &v)) {
    char *src = tdm_mock_prep_strdup(v);
    if (!src || regcomp(&re, src, REG_EXTENDED | REG_NOSUB)) {
      free(src);
      return err(w, "bad regex");
    }
    free(src);
    has_re = true;
    f.regex = &re;
  }
  int rc = check_unused(a, w);
  if (!rc) rc = ok_u64(w, tdm_mock_stats_count(&mock->stats, &f));
  if (has_re) regfree(&re);
  return rc;
}

static void json_node(tdm_mock_t *mock, size_t i, tdm_writer_t *w)
{
  const tdm_mock_node_t *node = &mock->nodes[i];
  const tdm_mock_node_stats_t *s = &mock->stats.nodes[i];
  tdm_mock_json_fmt(w, "{\"node\":%zu,\"addr\":", i);
  tdm_mock_json_cstr(w, node->name);
  tdm_mock_json_fmt(w, ",\"listening\":%s,\"connections_open\":%zu,\"connections_opened\":%" PRIu64
                       ",\"requests\":%" PRIu64 ",\"auth_ok\":%" PRIu64 ",\"auth_failed\":%" PRIu64,
                    node->listener ? "true" : "false", open_conns(node), s->connections_opened, s->requests,
                    s->auth_ok, s->auth_failed);
  tdm_mock_json_fmt(w, ",\"protocol_errors\":%" PRIu64 ",\"version_refused\":%" PRIu64 ",\"prepared\":%zu",
                    s->protocol_errors, s->version_refused, node->prepared.count);
  tdm_mock_json_raw(w, ",\"opcodes\":{");
  bool first = true;
  for (unsigned op = 0; op < 256; op++) {
    if (!s->by_opcode[op]) continue;
    const char *name = tdm_opcode_name((uint8_t)op);
    if (strcmp(name, "UNKNOWN") == 0)
      tdm_mock_json_fmt(w, "%s\"0x%02X\":%" PRIu64, first ? "" : ",", op, s->by_opcode[op]);
    else tdm_mock_json_fmt(w, "%s\"%s\":%" PRIu64, first ? "" : ",", name, s->by_opcode[op]);
    first = false;
  }
  tdm_mock_json_raw(w, "}}");
}

static int cmd_stats(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w)
{
  int node = node_field(mock, a, w, false);
  if (node == TDM_ENOTFOUND || check_unused(a, w)) return TDM_EINVAL;
  char uuid[37];
  tdm_mock_uuid_format(mock->schema_version, uuid);
  tdm_writer_raw(w, "OK {\"cluster\":", 14);
  tdm_mock_json_cstr(w, mock->opts.cluster_name);
  tdm_mock_json_fmt(w, ",\"schema_version\":\"%s\",\"rules\":%zu,\"store_rows\":%zu,\"nodes\":[", uuid,
                    mock->rules.count, tdm_mock_store_rows(&mock->store));
  bool first = true;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    if (node >= 0 && (size_t)node != i) continue;
    if (!first) tdm_writer_byte(w, ',');
    json_node(mock, i, w);
    first = false;
  }
  tdm_mock_json_raw(w, "],\"statements\":");
  tdm_mock_stats_json_statements(&mock->stats, w, node);
  tdm_mock_json_raw(w, ",\"auth\":");
  tdm_mock_stats_json_auths(&mock->stats, w, node);
  tdm_writer_byte(w, '}');
  return 0;
}

static int cmd_conns(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w)
{
  int node = node_field(mock, a, w, false);
  if (node == TDM_ENOTFOUND || check_unused(a, w)) return TDM_EINVAL;
  tdm_writer_raw(w, "OK [", 4);
  bool first = true;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    if (node >= 0 && (size_t)node != i) continue;
    for (const tdm_mock_link_t *it = mock->nodes[i].conns.next; it != &mock->nodes[i].conns; it = it->next) {
      const tdm_mock_conn_t *c = TDM_MOCK_CONTAINER(it, tdm_mock_conn_t, link);
      tdm_mock_json_fmt(w, "%s{\"id\":%" PRIu64 ",\"node\":%zu,\"peer\":", first ? "" : ",", c->id, i);
      tdm_mock_json_cstr(w, c->peer);
      tdm_mock_json_fmt(w, ",\"version\":%u,\"compression\":\"%s\",\"ready\":%s,\"requests\":%" PRIu64 ",\"user\":",
                        c->version, tdm_compression_name(c->compression), c->ready ? "true" : "false", c->requests);
      tdm_mock_json_cstr(w, c->user);
      tdm_mock_json_raw(w, ",\"keyspace\":");
      tdm_mock_json_cstr(w, c->keyspace);
      tdm_mock_json_fmt(w, ",\"events\":%u}", c->events);
      first = false;
    }
  }
  tdm_writer_byte(w, ']');
  return 0;
}

static int cmd_auths(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w)
{
  int node = node_field(mock, a, w, false);
  if (node == TDM_ENOTFOUND || check_unused(a, w)) return TDM_EINVAL;
  tdm_writer_raw(w, "OK ", 3);
  tdm_mock_stats_json_auths(&mock->stats, w, node);
  return 0;
}

static int cmd_rule(tdm_mock_t *mock, tdm_mock_args_t *a, const char *line, size_t len, tdm_writer_t *w)
{
  char msg[256] = "";
  if (a->n_words < 2) return err(w, "RULE needs ADD, DEL, CLEAR or LIST");
  tdm_str_t sub = a->words[1];
  if (tdm_str_eq(sub, TDM_STR("ADD"))) {
    unsigned id;
    int rc = tdm_mock_rules_add(&mock->rules, mock, a, (tdm_str_t){ line, len }, &id, msg, sizeof(msg));
    if (rc) return err(w, "%s", msg[0] ? msg : tdm_strerror(rc));
    return ok_u64(w, id);
  }
  if (tdm_str_eq(sub, TDM_STR("DEL"))) {
    int64_t id;
    bool found;
    if (tdm_mock_args_get_int(a, "id", &id, &found) || !found) return err(w, "RULE DEL needs id=");
    if (check_unused(a, w)) return TDM_EINVAL;
    if (tdm_mock_rules_del(&mock->rules, (unsigned)id)) return err(w, "no rule %" PRId64, id);
    return ok(w, NULL);
  }
  if (tdm_str_eq(sub, TDM_STR("CLEAR"))) {
    if (check_unused(a, w)) return TDM_EINVAL;
    tdm_mock_rules_clear(&mock->rules);
    return ok(w, NULL);
  }
  if (tdm_str_eq(sub, TDM_STR("LIST"))) {
    if (check_unused(a, w)) return TDM_EINVAL;
    tdm_writer_raw(w, "OK ", 3);
    tdm_mock_rules_json(&mock->rules, w);
    return 0;
  }
  return err(w, "unknown RULE subcommand '%.*s'", (int)sub.len, sub.ptr);
}

static int cmd_reset(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w)
{
  tdm_str_t what = TDM_STR("counters");
  tdm_mock_args_get(a, "what", &what);
  if (check_unused(a, w)) return TDM_EINVAL;
  bool all = tdm_str_eq_ci(what, TDM_STR("all"));
  bool known = all;
  if (all || tdm_str_eq_ci(what, TDM_STR("counters"))) {
    tdm_mock_stats_reset(&mock->stats);
    known = true;
  }
  if (all || tdm_str_eq_ci(what, TDM_STR("rules"))) {
    tdm_mock_rules_clear(&mock->rules);
    known = true;
  }
  if (all) tdm_mock_prepared_clear(&mock->texts);
  if (all || tdm_str_eq_ci(what, TDM_STR("store"))) {
    tdm_mock_store_clear(&mock->store);
    known = true;
  }
  if (all || tdm_str_eq_ci(what, TDM_STR("prepared"))) {
    for (size_t i = 0; i < mock->n_nodes; i++) tdm_mock_prepared_clear(&mock->nodes[i].prepared);
    known = true;
  }
  if (!known) return err(w, "bad what '%.*s' (counters, rules, store, prepared, all)", (int)what.len, what.ptr);
  return ok(w, NULL);
}

/* KILL / STOP / START / PREPARED CLEAR on one node or all. */
static int cmd_nodes(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_str_t verb, tdm_writer_t *w)
{
  int node = node_field(mock, a, w, true);
  int64_t kill = 1;
  bool found;
  if (node == TDM_ENOTFOUND) return TDM_EINVAL;
  if (tdm_str_eq(verb, TDM_STR("STOP")) && tdm_mock_args_get_int(a, "kill", &kill, &found)) return err(w, "bad kill");
  if (check_unused(a, w)) return TDM_EINVAL;
  uint64_t n = 0;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    if (node >= 0 && (size_t)node != i) continue;
    tdm_mock_node_t *nd = &mock->nodes[i];
    if (tdm_str_eq(verb, TDM_STR("KILL"))) {
      n += tdm_mock_node_kill(nd);
    } else if (tdm_str_eq(verb, TDM_STR("STOP"))) {
      tdm_mock_node_stop(nd, kill != 0);
    } else if (tdm_str_eq(verb, TDM_STR("START"))) {
      int rc = tdm_mock_node_start(nd);
      if (rc) return err(w, "cannot listen on %s: %s", nd->name, tdm_strerror(rc));
    } else {
      n += nd->prepared.count;
      tdm_mock_prepared_clear(&nd->prepared);
    }
  }
  return ok_u64(w, n);
}

static int cmd_event(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w)
{
  tdm_str_t type, change, v;
  if (!tdm_mock_args_get(a, "type", &type) || !tdm_mock_args_get(a, "change", &change))
    return err(w, "EVENT needs type= and change=");
  if (tdm_str_eq_ci(type, TDM_STR("SCHEMA_CHANGE"))) {
    tdm_response_schema_change_t sc = { .change_type = change, .target = TDM_RESPONSE_TARGET_KEYSPACE };
    static const char *const targets[] = { "", "KEYSPACE", "TABLE", "TYPE", "FUNCTION", "AGGREGATE" };
    if (tdm_mock_args_get(a, "target", &v)) {
      size_t i = 1;
      while (i < TDM_ARRAY_SIZE(targets) && !tdm_str_eq_ci(v, tdm_str_from(targets[i]))) i++;
      if (i == TDM_ARRAY_SIZE(targets)) return err(w, "bad target");
      sc.target = (tdm_response_target_t)i;
    }
    tdm_mock_args_get(a, "ks", &sc.keyspace);
    tdm_mock_args_get(a, "name", &sc.name);
    if (check_unused(a, w)) return TDM_EINVAL;
    tdm_mock_exec_schema_event(mock, &sc);
    return ok(w, NULL);
  }
  tdm_response_event_t ev = { .change = change };
  uint32_t bit;
  if (tdm_str_eq_ci(type, TDM_STR("TOPOLOGY_CHANGE"))) {
    ev.kind = TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE;
    bit = TDM_REQUEST_EVENT_TOPOLOGY_CHANGE;
  } else if (tdm_str_eq_ci(type, TDM_STR("STATUS_CHANGE"))) {
    ev.kind = TDM_RESPONSE_EVENT_STATUS_CHANGE;
    bit = TDM_REQUEST_EVENT_STATUS_CHANGE;
  } else {
    return err(w, "bad type '%.*s'", (int)type.len, type.ptr);
  }
  struct sockaddr_storage ss;
  char host[64];
  uint16_t port = 0;
  int node = node_field(mock, a, w, false);
  if (node == TDM_ENOTFOUND) return TDM_EINVAL;
  if (node >= 0) {
    ev.addr = mock->nodes[node].inet;
    ev.addr_len = mock->nodes[node].inet_len;
    ev.port = mock->nodes[node].port;
  } else if (tdm_mock_args_get(a, "addr", &v)) {
    char buf[96];
    snprintf(buf, sizeof(buf), "%.*s", (int)v.len, v.ptr);
    if (tdm_mock_parse_addr(buf, &ss, host, sizeof(host), &port)) return err(w, "bad addr");
    ev.addr = ss.ss_family == AF_INET6 ? (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                       : (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
    ev.addr_len = ss.ss_family == AF_INET6 ? 16 : 4;
    ev.port = port;
  } else {
    return err(w, "EVENT needs node= or addr=");
  }
  if (check_unused(a, w)) return TDM_EINVAL;
  uint64_t sent = 0;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    tdm_mock_link_t *it, *tmp;
    TDM_MOCK_LIST_EACH(it, tmp, &mock->nodes[i].conns)
    {
      tdm_mock_conn_t *c = TDM_MOCK_CONTAINER(it, tdm_mock_conn_t, link);
      if (!c->ready || !(c->events & bit)) continue;
      tdm_writer_t ew;
      tdm_writer_init(&ew);
      tdm_response_encode_event(&ew, c->version, &ev);
      if (!tdm_writer_error(&ew) && tdm_mock_conn_send(c, -1, TDM_OP_EVENT, ew.buf, ew.len) == 0) sent++;
      tdm_writer_free(&ew);
    }
  }
  return ok_u64(w, sent);
}

static int cmd_schema(tdm_mock_t *mock, tdm_mock_args_t *a, tdm_writer_t *w)
{
  tdm_str_t v;
  char uuid[37];
  if (tdm_mock_args_get(a, "version", &v)) {
    uint8_t id[16];
    if (tdm_mock_uuid_parse(v, id)) return err(w, "bad version uuid");
    memcpy(mock->schema_version, id, 16);
  } else if (a->n_words > 1 && tdm_str_eq(a->words[1], TDM_STR("BUMP"))) {
    tdm_mock_schema_bump(mock);
  }
  if (check_unused(a, w)) return TDM_EINVAL;
  tdm_mock_uuid_format(mock->schema_version, uuid);
  return ok(w, uuid);
}

int tdm_mock_control_exec(tdm_mock_t *mock, const char *line, size_t len, tdm_writer_t *w)
{
  tdm_mock_args_t *a = malloc(sizeof(*a));
  const char *why = NULL;
  int rc;
  if (!a) return err(w, "out of memory");
  if (tdm_mock_args_parse(line, len, a, &why)) {
    rc = err(w, "%s", why);
    goto done;
  }
  if (a->n_words == 0) {
    rc = err(w, "empty command");
    goto done;
  }
  tdm_str_t verb = a->words[0];
  if (tdm_str_eq(verb, TDM_STR("PING"))) rc = ok(w, "pong");
  else if (tdm_str_eq(verb, TDM_STR("RULE"))) rc = cmd_rule(mock, a, line, len, w);
  else if (tdm_str_eq(verb, TDM_STR("COUNT"))) rc = cmd_count(mock, a, w);
  else if (tdm_str_eq(verb, TDM_STR("STATS"))) rc = cmd_stats(mock, a, w);
  else if (tdm_str_eq(verb, TDM_STR("CONNS"))) rc = cmd_conns(mock, a, w);
  else if (tdm_str_eq(verb, TDM_STR("AUTHS"))) rc = cmd_auths(mock, a, w);
  else if (tdm_str_eq(verb, TDM_STR("RESET"))) rc = cmd_reset(mock, a, w);
  else if (tdm_str_eq(verb, TDM_STR("KILL")) || tdm_str_eq(verb, TDM_STR("STOP")) || tdm_str_eq(verb, TDM_STR("START")))
    rc = cmd_nodes(mock, a, verb, w);
  else if (tdm_str_eq(verb, TDM_STR("PREPARED")) && a->n_words > 1 && tdm_str_eq(a->words[1], TDM_STR("CLEAR")))
    rc = cmd_nodes(mock, a, a->words[1], w);
  else if (tdm_str_eq(verb, TDM_STR("EVENT"))) rc = cmd_event(mock, a, w);
  else if (tdm_str_eq(verb, TDM_STR("SCHEMA"))) rc = cmd_schema(mock, a, w);
  else if (tdm_str_eq(verb, TDM_STR("SHUTDOWN"))) {
    rc = ok(w, NULL);
    mock->shutdown_requested = true; /* acted on after the reply is written */
  } else rc = err(w, "unknown command '%.*s'", (int)verb.len, verb.ptr);
done:
  free(a);
  return rc;
}

/* ---- server ---- */

static void on_client_close(uv_handle_t *h)
{
  client_t *cl = h->data;
  tdm_mock_buf_free(&cl->in);
  free(cl);
}

static void client_close(client_t *cl)
{
  if (cl->closing) return;
  cl->closing = true;
  tdm_mock_list_remove(&cl->link);
  uv_close((uv_handle_t *)&cl->tcp, on_client_close);
}

static void on_reply_written(uv_write_t *req, int status)
{
  reply_req_t *r = (reply_req_t *)req;
  free(r->data);
  free(r);
}

static void reply(client_t *cl, tdm_writer_t *w)
{
  tdm_writer_byte(w, '\n');
  reply_req_t *r = malloc(sizeof(*r));
  if (!r || tdm_writer_error(w)) {
    free(r);
    tdm_writer_free(w);
    client_close(cl);
    return;
  }
  r->data = w->buf;
  uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)w->len);
  w->buf = NULL;
  tdm_writer_free(w);
  int sent = uv_try_write((uv_stream_t *)&cl->tcp, &b, 1);
  if (sent == (int)b.len) {
    free(r->data);
    free(r);
    return;
  }
  if (sent > 0) {
    b.base += sent;
    b.len -= (unsigned)sent;
  }
  if (uv_write(&r->req, (uv_stream_t *)&cl->tcp, &b, 1, on_reply_written)) {
    free(r->data);
    free(r);
    client_close(cl);
  }
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  client_t *cl = h->data;
  if (tdm_mock_buf_reserve(&cl->in, 4096)) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init((char *)cl->in.data + cl->in.len, (unsigned)(cl->in.cap - cl->in.len));
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  client_t *cl = s->data;
  if (nread < 0) {
    client_close(cl);
    return;
  }
  cl->in.len += (size_t)nread;
  for (;;) {
    const char *p = (const char *)tdm_mock_buf_head(&cl->in);
    size_t n = tdm_mock_buf_size(&cl->in);
    const char *nl = memchr(p, '\n', n);
    if (!nl) {
      if (n > MAX_LINE) client_close(cl);
      return;
    }
    size_t len = (size_t)(nl - p);
    tdm_writer_t w;
    tdm_writer_init(&w);
    bool quit = len >= 4 && strncasecmp(p, "QUIT", 4) == 0;
    if (quit) ok(&w, "bye");
    else tdm_mock_control_exec(cl->mock, p, len, &w);
    tdm_mock_buf_consume(&cl->in, len + 1);
    if (cl->closing) {
      tdm_writer_free(&w);
      return;
    }
    reply(cl, &w);
    if (cl->mock->shutdown_requested) {
      tdm_mock_shutdown(cl->mock);
      return;
    }
    if (quit) {
      client_close(cl);
      return;
    }
  }
}

static void on_control_connection(uv_stream_t *server, int status)
{
  tdm_mock_t *mock = server->data;
  if (status < 0) return;
  client_t *cl = calloc(1, sizeof(*cl));
  if (!cl) return;
  cl->mock = mock;
  if (uv_tcp_init(&mock->loop, &cl->tcp)) {
    free(cl);
    return;
  }
  cl->tcp.data = cl;
  tdm_mock_list_push(&mock->control_clients, &cl->link);
  if (uv_accept(server, (uv_stream_t *)&cl->tcp) ||
      uv_read_start((uv_stream_t *)&cl->tcp, on_client_alloc, on_client_read))
    client_close(cl);
}

static void on_listener_closed(uv_handle_t *h) { free(h); }

int tdm_mock_control_start(tdm_mock_t *mock, const char *addr)
{
  struct sockaddr_storage ss;
  char host[64];
  uint16_t port;
  int rc = tdm_mock_parse_addr(addr, &ss, host, sizeof(host), &port);
  if (rc) return rc;
  uv_tcp_t *l = malloc(sizeof(*l));
  if (!l) return TDM_ENOMEM;
  if ((rc = uv_tcp_init(&mock->loop, l))) {
    free(l);
    return rc;
  }
  l->data = mock;
  rc = uv_tcp_bind(l, (struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)l, 64, on_control_connection);
  if (rc) {
    uv_close((uv_handle_t *)l, on_listener_closed);
    return rc;
  }
  mock->control = l;
  snprintf(mock->control_name, sizeof(mock->control_name), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
           tdm_mock_bound_port(l));
  return 0;
}

void tdm_mock_control_stop(tdm_mock_t *mock)
{
  if (mock->control) {
    uv_close((uv_handle_t *)mock->control, on_listener_closed);
    mock->control = NULL;
  }
  tdm_mock_link_t *it, *tmp;
  TDM_MOCK_LIST_EACH(it, tmp, &mock->control_clients)
  client_close(TDM_MOCK_CONTAINER(it, client_t, link));
}
