/* The control connection of one cluster (main thread): rounds over the contact points, version
 * negotiation, authentication with the configured credentials, discovery, events, heartbeats and
 * reconnection with jittered backoff. Version negotiation and SASL are in control_handshake.c,
 * discovery rows and snapshots in control_topology.c, schema agreement in control_schema.c.
 *
 *   round: candidate i (contact points in order, then known nodes) ──connect (≤ min(5 s, budget))──┐
 *     ┌──────────────────────────────────────────────────────────────────────────────────────────┘
 *     └─> OPTIONS(v4) ─SUPPORTED─┬─ PROTOCOL_VERSIONS: STARTUP(highest accepted ≤ max) on it
 *                                 └─ none: probe DSE_V2 → DSE_V1 → v5 → v4 → v3 from the max, one
 *                                    connection per refused version (refusals at DEBUG)
 *         STARTUP ─READY / AUTHENTICATE→SASL─> system.local ─> system.peers_v2 (else peers) ─> REGISTER ─> UP
 *   failure: next candidate at once; a round with none left counts a failure, then backoff
 *   UP: OPTIONS every heartbeat_interval_ms (no SUPPORTED in 10 s = failure); EVENTs refresh the view
 * Every change publishes a new snapshot through on_topology, and on_health follows each change.
 * With a TLS context (tdm_control_set_tls), every attempt runs its TLS handshake inside the same
 * budget before OPTIONS leaves; a TLS failure's message (tdm_tls_error) becomes last_error. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <tandem/obs/log.h>
#include "internal.h"

static void start_round(tdm_control_t *c);
static void try_candidate(tdm_control_t *c);
static void on_retry(uv_timer_t *t);

static const char *cname(const tdm_control_t *c) { return tdm__cluster_name(c->cluster); }
static const tdm_conf_backend_t *bconf(const tdm_control_t *c) { return &c->conf->cluster[c->cluster]; }

/* ---- lifetime ---- */

static void maybe_free(tdm_control_t *c)
{
  if (!c->closing || c->handles) return;
  tdm__rows_free(&c->local);
  tdm__rows_free(&c->peers);
  tdm__rows_free(&c->poll_local);
  tdm_topology_unref(c->topo);
  tdm_tls_ctx_unref(c->tls);
  tdm_conf_unref(c->conf);
  free(c);
}

static void handle_closed(uv_handle_t *h)
{
  tdm_control_t *c = h->data;
  c->handles--;
  maybe_free(c);
}

static void net_closed(tdm_conn_ctx_t *ctx)
{
  tdm_control_t *c = TDM_CONTAINER_OF(ctx, tdm_control_t, net);
  c->handles--;
  maybe_free(c);
}

int tdm_control_new(void *loop, int cluster, tdm_conf_t *conf, const tdm_control_callbacks_t *cb, tdm_control_t **out)
{
  *out = NULL;
  if (!conf || cluster < 0 || cluster >= TDM_CONF_CLUSTER_MAX || !cb) return TDM_EINVAL;
  tdm_control_t *c = calloc(1, sizeof(*c));
  if (!c) return TDM_ENOMEM;
  c->loop = loop;
  c->cluster = cluster;
  c->conf = tdm_conf_ref(conf);
  c->cb = *cb;
  int rc = tdm_topology_new(cluster, &c->topo);
  if (rc == 0) rc = tdm_conn_ctx_init(&c->net, c->loop);
  if (rc < 0) {
    tdm_topology_unref(c->topo);
    tdm_conf_unref(c->conf);
    free(c);
    return rc;
  }
  uv_timer_init(c->loop, &c->retry);
  uv_timer_init(c->loop, &c->timer);
  uv_timer_init(c->loop, &c->poll);
  c->retry.data = c->timer.data = c->poll.data = c;
  c->handles = 4; /* three timers + the net ctx */
  tdm_list_init(&c->waiters);
  c->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)c << 17) ^ 0x9e3779b97f4a7c15ull;
  c->backoff = (uint64_t)TDM_MAX(1, conf->heartbeat_retry_interval_min_ms);
  *out = c;
  return 0;
}

void tdm_control_set_conf(tdm_control_t *c, tdm_conf_t *conf)
{
  tdm_conf_t *old = c->conf;
  c->conf = tdm_conf_ref(conf);
  tdm_conf_unref(old);
}

void tdm_control_set_tls(tdm_control_t *c, const tdm_tls_set_t *tls)
{
  tdm_tls_ctx_t *old = c->tls;
  c->tls = tdm_tls_ctx_ref(tls ? tls->cluster[c->cluster] : NULL);
  tdm_tls_ctx_unref(old);
}

void tdm_control_learn_refused_version(tdm_control_t *c, uint8_t version)
{
  unsigned bit = tdm_conf_version_bit(version);
  if (!bit || (c->refused & bit) || c->closing) return;
  c->refused |= bit;
  tdm_log_info(NULL, "%s refused protocol version %u: not offered to clients until its control connection reconnects",
               cname(c), (unsigned)version);
  tdm__ctl_publish(c);
}

/* ---- requests ---- */

int tdm__ctl_send(tdm_control_t *c, uint8_t opcode, const tdm_writer_t *body, tdm__ctl_reply_fn fn)
{
  if (!c->cc || tdm_conn_is_closing(&c->cc->conn)) return TDM_ECLOSED;
  if (tdm_writer_error(body)) return tdm_writer_error(body);
  int slot = -1;
  for (int i = 0; i < TDM__CTL_SLOTS && slot < 0; i++)
    if (!c->reqs[i]) slot = i;
  if (slot < 0) return TDM_EUNAVAILABLE;
  int rc = tdm__chan_send(&c->cc->chan, (int16_t)(slot + 1), opcode, body->buf, body->len);
  if (rc == 0) rc = tdm__chan_flush(&c->cc->chan, NULL); /* the control connection sends few frames */
  if (rc < 0) return rc;
  c->reqs[slot] = fn;
  return 0;
}

int tdm__ctl_query(tdm_control_t *c, const char *cql, tdm__ctl_reply_fn fn)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm__query_body(&w, c->version, cql);
  if (rc == 0) rc = tdm__ctl_send(c, TDM_OP_QUERY, &w, fn);
  tdm_writer_free(&w);
  return rc;
}

static int send_empty(tdm_control_t *c, uint8_t opcode, tdm__ctl_reply_fn fn)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm__ctl_send(c, opcode, &w, fn);
  tdm_writer_free(&w);
  return rc;
}

/* ---- health and failures ---- */

static void health(tdm_control_t *c)
{
  if (c->cb.on_health) c->cb.on_health(c->cb.arg, c->cluster, c->up, c->failures, c->up ? NULL : c->last_error);
}

void tdm__ctl_fail(tdm_control_t *c, int err, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
  va_end(ap);
  if (c->cc)
    tdm_conn_close(&c->cc->conn, err ? err : TDM_ECLOSED);
  else
    uv_timer_start(&c->retry, on_retry, 0, 0);
}

static uint64_t jitter(tdm_control_t *c, uint64_t ms)
{
  c->rng ^= c->rng << 13;
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  double f = 0.8 + 0.4 * (double)(c->rng >> 11) / (double)(1ull << 53);
  return (uint64_t)((double)ms * f);
}

static void reset_attempt(tdm_control_t *c);

/* Every candidate of the round failed: count it, tell readiness, wait. */
static void round_failed(tdm_control_t *c)
{
  c->failures++;
  uint64_t delay = jitter(c, c->backoff);
  tdm_log_warn(NULL, "%s control connection down (%s); retrying in %llu ms", cname(c), c->last_error,
               (unsigned long long)delay);
  double next = (double)c->backoff * (c->conf->heartbeat_retry_backoff_factor > 1 ? c->conf->heartbeat_retry_backoff_factor : 1);
  uint64_t max = (uint64_t)TDM_MAX(1, c->conf->heartbeat_retry_interval_max_ms);
  c->backoff = next > (double)max ? max : (uint64_t)next;
  c->attempt = 0;
  reset_attempt(c);
  uv_timer_start(&c->retry, on_retry, delay, 0);
  health(c);
}

/* ---- candidates and connecting ---- */

/* Candidate i of the round: contact points in order, then the known nodes not listed among them. */
static bool candidate(const tdm_control_t *c, size_t i, char *host, size_t cap, uint16_t *port)
{
  const tdm_conf_backend_t *b = bconf(c);
  if (i < b->contact_points.n) {
    const tdm_conf_hostport_t *hp = &b->contact_points.v[i];
    snprintf(host, cap, "%s", hp->host);
    *port = hp->port_set || hp->port ? hp->port : (uint16_t)b->port;
    return true;
  }
  size_t k = i - b->contact_points.n;
  const tdm_topology_t *t = c->topo;
  for (size_t n = 0; t && n < t->n_nodes; n++) {
    bool listed = false;
    for (size_t j = 0; j < b->contact_points.n && !listed; j++)
      listed = strcmp(b->contact_points.v[j].host, t->nodes[n].host) == 0 && b->contact_points.v[j].port == t->nodes[n].port;
    if (listed) continue;
    if (k-- == 0) {
      snprintf(host, cap, "%s", t->nodes[n].host);
      *port = t->nodes[n].port;
      return true;
    }
  }
  return false;
}

static void on_deadline(uv_timer_t *t);
static void on_connected(tdm_conn_t *conn, int status);
static const tdm_conn_hooks_t ctl_hooks;

static uint8_t discovery_version(const tdm_control_t *c)
{
  int max_idx = tdm__proto_order_index((uint8_t)c->conf->control_conn_max_protocol_version);
  int v4_idx = tdm__proto_order_index(TDM_PROTO_V4);
  if (max_idx < 0) max_idx = 0;
  return max_idx <= v4_idx ? TDM_PROTO_V4 : tdm__proto_order[max_idx];
}

static void start_round(tdm_control_t *c)
{
  c->attempt = 0;
  try_candidate(c);
}

static void reset_attempt(tdm_control_t *c)
{
  c->probing = false;
  c->probe_idx = 0;
  c->have_supported = false;
  c->accepted = 0;
  c->version = discovery_version(c);
}

static void try_candidate(tdm_control_t *c)
{
  char host[256];
  uint16_t port = 0;
  tdm_sockaddr_t addr;
  for (;;) {
    if (!candidate(c, c->attempt, host, sizeof(host), &port)) {
      round_failed(c);
      return;
    }
    int rc = tdm_sockaddr_resolve(host, port, &addr);
    if (rc == 0) break;
    snprintf(c->last_error, sizeof(c->last_error), "%.200s:%u: %s", host, (unsigned)port, tdm_strerror(rc));
    tdm_log_debug(NULL, "%s control connection: %s", cname(c), c->last_error);
    c->attempt++;
  }
  tdm_sockaddr_format(&addr, c->peer, sizeof(c->peer));
  c->addr = addr;
  c->last_error[0] = '\0';
  tdm__ctl_conn_t *cc = calloc(1, sizeof(*cc));
  int rc = cc ? tdm_conn_init(&cc->conn, &c->net, &ctl_hooks, cc) : TDM_ENOMEM;
  if (rc < 0) {
    free(cc);
    snprintf(c->last_error, sizeof(c->last_error), "%s", tdm_strerror(rc));
    round_failed(c);
    return;
  }
  cc->ctl = cc->home = c;
  c->handles++;
  c->cc = cc;
  tdm__chan_init(&cc->chan, &cc->conn, c->version);
  tdm_conn_set_name(&cc->conn, c->cluster == TDM_CONF_TARGET ? 't' : 'o', ++c->next_conn_id);
  c->phase = TDM__CTL_CONNECTING;
  int budget = bconf(c)->connection_timeout_ms > 0 ? bconf(c)->connection_timeout_ms : 30000;
  uv_timer_start(&c->timer, on_deadline, (uint64_t)budget, 0);
  tdm_log_debug(cc->conn.tag, "%s control connection attempt (v%u%s%s)", cname(c), (unsigned)c->version,
                c->probing ? ", probing" : "", c->tls ? ", TLS" : "");
  if (c->tls) {
    /* the name sent as SNI and checked: {c}_tls_server_name, else the candidate's host; the handshake
     * runs inside the budget timer armed above */
    const char *name = tdm_tls_server_name(bconf(c), host);
    rc = tdm_tls_client(&cc->conn, c->tls, name, NULL);
    if (rc < 0) {
      tdm__ctl_fail(c, rc, "%s: %s TLS: cannot start a session for '%s': %s", c->peer, cname(c), name,
                    tdm_strerror(rc));
      return;
    }
  }
  (void)tdm_conn_connect(&cc->conn, &addr, (uint64_t)TDM_MIN(5000, budget), on_connected);
}

static void on_retry(uv_timer_t *t)
{
  tdm_control_t *c = t->data;
  if (c->closing || c->cc) return;
  try_candidate(c);
}

void tdm_control_start(tdm_control_t *c)
{
  if (c->started || c->closing) return;
  c->started = true;
  reset_attempt(c);
  start_round(c);
}

/* ---- discovery ---- */

static void on_register_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err);
static void on_peers_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err);
static void on_peers_v2_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err);

static void on_local_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  tdm__rows_t rows = { 0 };
  if (err < 0 || !r || tdm__rows_parse(c->version, r, &rows) < 0 || rows.n != 1) {
    tdm__rows_free(&rows);
    tdm__ctl_fail(c, err ? err : TDM_EPROTO_MALFORMED, "system.local query failed");
    return;
  }
  tdm__rows_free(&c->local);
  c->local = rows;
  c->phase = TDM__CTL_PEERS;
  int rc = tdm__ctl_query(c, "SELECT * FROM system.peers_v2", on_peers_v2_reply);
  if (rc < 0) tdm__ctl_fail(c, rc, "cannot query system.peers_v2: %s", tdm_strerror(rc));
}

static void peers_received(tdm_control_t *c, const tdm_response_t *r, bool v2)
{
  tdm__rows_t rows = { 0 };
  if (tdm__rows_parse(c->version, r, &rows) < 0) {
    tdm__ctl_fail(c, TDM_EPROTO_MALFORMED, "undecodable system.peers%s rows", v2 ? "_v2" : "");
    return;
  }
  tdm__rows_free(&c->peers);
  c->peers = rows;
  c->peers_v2 = v2;
  c->phase = TDM__CTL_REGISTER;
  static const tdm_str_t events[] = { TDM_STR("TOPOLOGY_CHANGE"), TDM_STR("STATUS_CHANGE"), TDM_STR("SCHEMA_CHANGE") };
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm_request_encode_register(&w, events, TDM_ARRAY_SIZE(events));
  if (rc == 0) rc = tdm__ctl_send(c, TDM_OP_REGISTER, &w, on_register_reply);
  tdm_writer_free(&w);
  if (rc < 0) tdm__ctl_fail(c, rc, "cannot send REGISTER: %s", tdm_strerror(rc));
}

static void on_peers_v2_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  if (err < 0 || !r) {
    tdm__ctl_fail(c, err ? err : TDM_EPROTO_MALFORMED, "system.peers_v2 query failed");
    return;
  }
  if (r->opcode == TDM_OP_ERROR) {
    /* a 3.x node: the table does not exist */
    int rc = tdm__ctl_query(c, "SELECT * FROM system.peers", on_peers_reply);
    if (rc < 0) tdm__ctl_fail(c, rc, "cannot query system.peers: %s", tdm_strerror(rc));
    return;
  }
  peers_received(c, r, true);
}

static void on_peers_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  if (err < 0 || !r || r->opcode != TDM_OP_RESULT) {
    tdm__ctl_fail(c, err ? err : TDM_EPROTO_MALFORMED, "system.peers query failed");
    return;
  }
  peers_received(c, r, false);
}

static void on_heartbeat(uv_timer_t *t);

static void arm_heartbeat(tdm_control_t *c)
{
  uint64_t ms = c->conf->heartbeat_interval_ms > 0 ? (uint64_t)c->conf->heartbeat_interval_ms : 30000u;
  uv_timer_start(&c->timer, on_heartbeat, ms, 0);
}

static void on_register_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  if (err < 0 || !r || r->opcode != TDM_OP_READY) {
    tdm__ctl_fail(c, err ? err : TDM_EPROTO_MALFORMED, "REGISTER refused");
    return;
  }
  c->phase = TDM__CTL_UP;
  c->up = c->ever_up = true;
  c->failures = 0;
  c->last_error[0] = '\0';
  c->refused = 0; /* learned refusals hold until the control connection reconnects (§3) */
  c->backoff = (uint64_t)TDM_MAX(1, c->conf->heartbeat_retry_interval_min_ms);
  c->reset_states = true;
  tdm__ctl_publish(c);
  const tdm_topology_t *t = c->topo;
  tdm_log_info(c->cc->conn.tag, "%s control connection up: v%u, cluster '%s', %zu node(s), local DC '%s'%s", cname(c),
               (unsigned)c->version, t->cluster_name, t->n_nodes, t->n_nodes ? t->nodes[0].dc : "",
               c->auth_required ? ", authenticated" : "");
  arm_heartbeat(c);
  health(c);
  if (!tdm_list_empty(&c->waiters)) tdm__ctl_schema_poll(c);
}

void tdm__ctl_discovered(tdm_control_t *c)
{
  c->phase = TDM__CTL_LOCAL;
  int rc = tdm__ctl_query(c, "SELECT * FROM system.local WHERE key='local'", on_local_reply);
  if (rc < 0) tdm__ctl_fail(c, rc, "cannot query system.local: %s", tdm_strerror(rc));
}

/* ---- heartbeats and deadlines ---- */

static void on_heartbeat_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  if (err < 0) return;
  c->hb_pending = false;
  arm_heartbeat(c);
}

static void on_heartbeat(uv_timer_t *t)
{
  tdm_control_t *c = t->data;
  if (!c->up || !c->cc) return;
  if (c->hb_pending) {
    tdm__ctl_fail(c, TDM_ETIMEOUT, "no heartbeat reply within %d ms", TDM__CTL_HEARTBEAT_REPLY_MS);
    return;
  }
  int rc = send_empty(c, TDM_OP_OPTIONS, on_heartbeat_reply);
  if (rc < 0) {
    tdm__ctl_fail(c, rc, "cannot send the heartbeat: %s", tdm_strerror(rc));
    return;
  }
  c->hb_pending = true;
  uv_timer_start(&c->timer, on_heartbeat, TDM__CTL_HEARTBEAT_REPLY_MS, 0);
}

static void on_deadline(uv_timer_t *t)
{
  tdm_control_t *c = t->data;
  if (c->up || !c->cc) return;
  tdm__ctl_fail(c, TDM_ETIMEOUT, "%s: handshake not done within %d ms", c->peer, bconf(c)->connection_timeout_ms);
}

/* ---- connection callbacks ---- */

static void on_connected(tdm_conn_t *conn, int status)
{
  tdm__ctl_conn_t *cc = conn->data;
  tdm_control_t *c = cc->ctl;
  if (!c) return;
  if (status < 0) {
    snprintf(c->last_error, sizeof(c->last_error), "%s: %s", c->peer,
             status == TDM_ETIMEOUT ? "connect timed out" : tdm_strerror(status));
    return; /* conn.c closes the connection now; on_close moves on */
  }
  int rc = tdm_conn_read_start(conn);
  if (rc < 0) return;
  if (c->have_supported) {
    tdm__ctl_send_startup(c);
    return;
  }
  c->phase = TDM__CTL_OPTIONS;
  rc = send_empty(c, TDM_OP_OPTIONS, tdm__ctl_on_options_reply);
  if (rc < 0) tdm__ctl_fail(c, rc, "cannot send OPTIONS: %s", tdm_strerror(rc));
}

static void on_event(tdm_control_t *c, const tdm__frame_t *f)
{
  tdm__msg_t m;
  tdm_response_t r;
  if (tdm__msg_open(f, TDM_COMPRESSION_NONE, &m) < 0) return;
  if (tdm_response_decode(f->h.version, TDM_OP_EVENT, m.body, m.len, &r, NULL) < 0) {
    tdm__msg_close(&m);
    return;
  }
  switch (r.event.kind) {
  case TDM_RESPONSE_EVENT_SCHEMA_CHANGE:
    if (c->cb.on_schema_event) c->cb.on_schema_event(c->cb.arg, c->cluster, m.body, m.len, f->h.version);
    tdm__ctl_refresh_schema(c);
    break;
  case TDM_RESPONSE_EVENT_STATUS_CHANGE: {
    char host[64] = "";
    if (r.event.addr_len == 4 || r.event.addr_len == 16)
      inet_ntop(r.event.addr_len == 4 ? AF_INET : AF_INET6, r.event.addr, host, sizeof(host));
    bool up = tdm_str_eq_cstr(r.event.change, "UP");
    tdm_topology_t *t = c->topo;
    int idx = tdm_topology_find_node(t, host, (uint16_t)r.event.port);
    for (size_t i = 0; idx < 0 && i < t->n_nodes; i++)
      if (strcmp(t->nodes[i].host, host) == 0) idx = (int)i;
    tdm_log_info(NULL, "%s node %s:%d is %s", cname(c), host, (int)r.event.port, up ? "UP" : "DOWN");
    if (idx < 0) {
      tdm__ctl_refresh_peers(c);
      break;
    }
    tdm_topology_t *n = NULL;
    if (tdm_topology_clone(t, &n) == 0) {
      n->nodes[idx].state = up ? TDM_NODE_UP : TDM_NODE_DOWN;
      n->generation = ++c->generation;
      tdm_topology_unref(c->topo);
      c->topo = n;
      if (c->cb.on_topology) c->cb.on_topology(c->cb.arg, c->cluster, n);
    }
    if (up) tdm__ctl_refresh_peers(c);
    break;
  }
  case TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE:
    tdm__ctl_refresh_peers(c);
    break;
  default:
    break;
  }
  tdm__msg_close(&m);
}

static int on_frame(void *arg, const tdm__frame_t *f)
{
  tdm__ctl_conn_t *cc = arg;
  tdm_control_t *c = cc->ctl;
  if (!c) return 0;
  if (f->h.stream < 0) {
    if (f->h.opcode == TDM_OP_EVENT && c->up) on_event(c, f);
    return 0;
  }
  int slot = f->h.stream - 1;
  /* a version refusal may come back on stream 0 */
  if (f->h.stream == 0 && f->h.opcode == TDM_OP_ERROR) {
    for (int i = 0; i < TDM__CTL_SLOTS; i++)
      if (c->reqs[i] == tdm__ctl_on_options_reply || c->reqs[i] == tdm__ctl_on_startup_reply) slot = i;
  }
  if (slot < 0 || slot >= TDM__CTL_SLOTS || !c->reqs[slot]) return 0;
  tdm__ctl_reply_fn fn = c->reqs[slot];
  c->reqs[slot] = NULL;
  tdm__msg_t m;
  tdm_response_t r;
  int rc = tdm__msg_open(f, TDM_COMPRESSION_NONE, &m);
  if (rc == 0) rc = tdm_response_decode(f->h.version, f->h.opcode, m.body, m.len, &r, NULL);
  fn(c, f, rc == 0 ? &r : NULL, rc);
  tdm__msg_close(&m);
  return 0;
}

static int on_data(tdm_conn_t *conn, const uint8_t *data, size_t len)
{
  tdm__ctl_conn_t *cc = conn->data;
  return tdm__chan_parse(&cc->chan, data, len, on_frame, cc);
}

static void on_close(tdm_conn_t *conn, int reason)
{
  tdm__ctl_conn_t *cc = conn->data;
  tdm_control_t *c = cc->ctl;
  if (!c) return;
  cc->ctl = NULL;
  c->cc = NULL;
  uv_timer_stop(&c->timer);
  memset(c->reqs, 0, sizeof(c->reqs));
  c->hb_pending = c->peers_inflight = c->peers_again = c->schema_inflight = c->poll_inflight = false;
  bool was_up = c->up;
  tdm__ctl_phase_t was = c->phase;
  c->up = false;
  c->phase = TDM__CTL_IDLE;
  if (c->closing) return;
  if (!c->reconnect_now && c->probing && reason == UV_EOF && (was == TDM__CTL_OPTIONS || was == TDM__CTL_STARTUP)) {
    /* a node that hangs up on a version it does not speak refused it (§3: "or an undecodable reply") */
    tdm_log_debug(NULL, "%s %s closed the connection on v%u: refused", cname(c), c->peer, (unsigned)c->version);
    c->reconnect_now = tdm__ctl_probe_advance(c);
  }
  if (c->reconnect_now) {
    c->reconnect_now = false;
    uv_timer_start(&c->retry, on_retry, 0, 0);
    return;
  }
  const char *tls_err = tdm_tls_error(conn); /* "<CLUSTER> TLS: <cause> (<certificate, file>)" */
  if (tls_err && !c->last_error[0])
    snprintf(c->last_error, sizeof(c->last_error), "%s: %s", c->peer, tls_err);
  else if (!c->last_error[0] || reason == UV_EOF)
    snprintf(c->last_error, sizeof(c->last_error), "%s: %s", c->peer,
             reason == UV_EOF ? "connection closed by the node" : tdm_strerror(reason));
  if (was_up) {
    c->failures++;
    tdm_log_warn(NULL, "%s control connection to %s lost: %s", cname(c), c->peer, c->last_error);
    tdm__ctl_publish(c);
    health(c);
    c->attempt = 0;
    reset_attempt(c);
    uv_timer_start(&c->retry, on_retry, jitter(c, c->backoff), 0);
    return;
  }
  tdm_log_debug(NULL, "%s control connection attempt to %s failed: %s", cname(c), c->peer, c->last_error);
  if (reason == TDM_ECONF || reason == TDM_EINVAL) {
    /* the cluster answered (credentials, configuration): other nodes would say the same */
    round_failed(c);
    return;
  }
  c->attempt++;
  reset_attempt(c);
  uv_timer_start(&c->retry, on_retry, 0, 0);
}

static void on_destroy(tdm_conn_t *conn)
{
  tdm__ctl_conn_t *cc = conn->data;
  tdm_control_t *c = cc->home;
  tdm__chan_free(&cc->chan);
  free(cc);
  c->handles--;
  maybe_free(c);
}

static const tdm_conn_hooks_t ctl_hooks = {
  .on_data = on_data,
  .on_close = on_close,
  .on_destroy = on_destroy,
};

void tdm_control_close(tdm_control_t *c)
{
  if (!c || c->closing) return;
  c->closing = true;
  tdm__ctl_schema_fail_all(c);
  if (c->cc) tdm_conn_close(&c->cc->conn, TDM_ECLOSED);
  uv_close((uv_handle_t *)&c->retry, handle_closed);
  uv_close((uv_handle_t *)&c->timer, handle_closed);
  uv_close((uv_handle_t *)&c->poll, handle_closed);
  tdm_conn_ctx_close(&c->net, net_closed);
}
