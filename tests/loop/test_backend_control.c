/* The control connection against the mock cluster: discovery of a 3-node cluster (nodes, DC, schema
 * version, raw local row), v5 from PROTOCOL_VERSIONS without probes, probing after refusals, the
 * configured credentials (PasswordAuthenticator and the DSE PLAIN dance), the missing-username and
 * bad-credentials failures, reconnection after the mock kills connections, heartbeats (sent, and a
 * silent node failing them), events (STATUS_CHANGE, TOPOLOGY_CHANGE, SCHEMA_CHANGE), peers fallback
 * and schema agreement. Every test ends with uv_loop_close() == 0. */
#include <tandem/proto/response.h>

#include "test_backend_util.h"

typedef struct ctl_test_s {
  tb_fixture_t f;           /* loop + mock + conf */
  tdm_control_t *ctl;       /* the control connection under test */
  tdm_topology_t *topo;     /* last snapshot (own reference) */
  int topologies;           /* on_topology calls */
  int health_up;            /* on_health(up) calls */
  int health_down;          /* on_health(down) calls */
  int failures;             /* last failure count */
  char last_error[256];     /* last error given with a down */
  int schema_events;        /* on_schema_event calls */
  uint8_t event_version;    /* version given with the last one */
  int agreed[2];            /* schema agreement answers: [false], [true] */
} ctl_test_t;

static void on_topology(void *arg, int cluster, tdm_topology_t *t)
{
  ctl_test_t *x = arg;
  assert_int_equal(cluster, TDM_CONF_ORIGIN);
  assert_int_equal(t->cluster, TDM_CONF_ORIGIN);
  if (x->topo) assert_true(t->generation > x->topo->generation);
  tdm_topology_unref(x->topo);
  x->topo = tdm_topology_ref(t);
  x->topologies++;
}

static void on_health(void *arg, int cluster, bool up, int failures, const char *last_error)
{
  ctl_test_t *x = arg;
  assert_int_equal(cluster, TDM_CONF_ORIGIN);
  if (up) {
    x->health_up++;
    assert_int_equal(failures, 0);
  } else {
    x->health_down++;
    assert_true(failures > 0);
    snprintf(x->last_error, sizeof(x->last_error), "%s", last_error ? last_error : "");
  }
  x->failures = failures;
}

static void on_schema_event(void *arg, int cluster, const uint8_t *body, size_t len, uint8_t version)
{
  ctl_test_t *x = arg;
  assert_non_null(body);
  assert_true(len > 0);
  x->schema_events++;
  x->event_version = version;
}

static void start_control(ctl_test_t *x)
{
  tdm_control_callbacks_t cb = { .on_topology = on_topology, .on_schema_event = on_schema_event,
                                 .on_health = on_health, .arg = x };
  assert_int_equal(tdm_control_new(&x->f.loop, TDM_CONF_ORIGIN, x->f.conf, &cb, &x->ctl), 0);
  tdm_control_start(x->ctl);
}

static bool is_up(void *arg)
{
  ctl_test_t *x = arg;
  return x->topo && x->topo->up;
}

static bool is_down(void *arg)
{
  ctl_test_t *x = arg;
  return x->health_down > 0;
}

static void finish(ctl_test_t *x)
{
  tdm_control_close(x->ctl);
  tdm_topology_unref(x->topo);
  x->topo = NULL;
  tb_finish(&x->f);
}

static void setup(ctl_test_t *x, int nodes, const char *const *mock_args, const char *yaml)
{
  memset(x, 0, sizeof(*x));
  tb_init(&x->f);
  tb_mock_start(&x->f, nodes, mock_args);
  x->f.conf = tb_conf(&x->f, 0, yaml);
}

/* Which mock protocol version the control connection's socket uses (from CONNS). */
static int control_conn_version(ctl_test_t *x)
{
  char reply[8192];
  assert_int_equal(tdm_mockctl_cmd(&x->f.mock, reply, sizeof(reply), "CONNS"), 0);
  const char *p = strstr(reply, "\"version\":");
  return p ? atoi(p + 10) : -1;
}

static int64_t stat_field(ctl_test_t *x, const char *field)
{
  char reply[16384], key[64];
  assert_int_equal(tdm_mockctl_cmd(&x->f.mock, reply, sizeof(reply), "STATS"), 0);
  snprintf(key, sizeof(key), "\"%s\":", field);
  int64_t sum = 0;
  for (const char *p = strstr(reply, key); p; p = strstr(p + 1, key)) sum += atoll(p + strlen(key));
  return sum;
}

static void test_discovery_v5(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 3, NULL, NULL);
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  const tdm_topology_t *t = x.topo;
  assert_int_equal(t->n_nodes, 3);
  /* the control node first, then its peers: exactly the mock's nodes */
  bool seen[3] = { false, false, false };
  for (size_t i = 0; i < t->n_nodes; i++) {
    assert_string_equal(t->nodes[i].host, "127.0.0.1");
    assert_string_equal(t->nodes[i].dc, "dc1");
    assert_string_equal(t->nodes[i].rack, "rack1");
    assert_string_equal(t->nodes[i].release_version, "5.0.8");
    assert_true(t->nodes[i].local_dc);
    assert_int_equal(t->nodes[i].state, TDM_NODE_UP);
    for (size_t k = 0; k < 3; k++)
      if (t->nodes[i].port == tb_node_port(&x.f, k)) seen[k] = true;
  }
  assert_int_equal(t->nodes[0].port, tb_node_port(&x.f, 0));
  assert_true(seen[0] && seen[1] && seen[2]);
  assert_memory_not_equal(t->nodes[1].host_id, t->nodes[2].host_id, 16);
  /* what the control connection learned */
  assert_int_equal(t->versions_accepted, TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5);
  assert_int_equal(t->versions_refused, 0);
  assert_string_equal(t->compression, "lz4,snappy");
  assert_string_equal(t->cql_version, "3.4.7");
  assert_false(t->auth_required);
  assert_string_equal(t->cluster_name, "mock");
  assert_true(t->has_peers_v2);
  char reply[128];
  assert_int_equal(tdm_mockctl_cmd(&x.f.mock, reply, sizeof(reply), "SCHEMA"), 0);
  assert_string_equal(t->schema_version, reply + 3); /* "OK <uuid>" */
  /* the raw local row, with its real types */
  const tdm_column_t *c = tdm_topology_local_column(t, "cluster_name");
  assert_non_null(c);
  assert_int_equal(c->value_len, 4);
  assert_memory_equal(c->value, "mock", 4);
  assert_int_equal(c->type_len, 2);
  assert_int_equal(c->type[1], 0x0D); /* varchar */
  c = tdm_topology_local_column(t, "schema_version");
  assert_non_null(c);
  assert_int_equal(c->value_len, 16);
  assert_non_null(tdm_topology_local_column(t, "tokens"));
  assert_null(tdm_topology_local_column(t, "no_such_column"));
  /* peers rows are kept per node */
  assert_non_null(tdm_topology_peer_column(t, 1, "native_port"));
  assert_null(tdm_topology_peer_column(t, 0, "native_port"));
  /* v5 straight from PROTOCOL_VERSIONS: no probe was refused, one discovery connection + one in v5 */
  assert_int_equal(control_conn_version(&x), 5);
  assert_int_equal(stat_field(&x, "version_refused"), 0);
  assert_int_equal(tb_count(&x.f, "what=connections"), 2);
  assert_int_equal(x.health_up, 1);
  assert_int_equal(x.health_down, 0);
  /* REGISTER and both discovery queries reached the node */
  assert_int_equal(tb_count(&x.f, "op=REGISTER"), 1);
  assert_int_equal(tb_count(&x.f, "match=system.peers_v2"), 1);
  finish(&x);
}

static void test_max_version_v4(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 1, NULL, "control_conn_max_protocol_version: 4\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  assert_int_equal(x.topo->n_nodes, 1);
  /* v4 is both the discovery version and the chosen one: a single connection */
  assert_int_equal(control_conn_version(&x), 4);
  assert_int_equal(tb_count(&x.f, "what=connections"), 1);
  finish(&x);
}

static void test_local_datacenter(void **state)
{
  (void)state;
  ctl_test_t x;
  const char *args[] = { "--dc", "east", NULL };
  setup(&x, 2, args, "origin_local_datacenter: west\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  /* the configured DC wins over the control node's: no node is local, so none takes legs */
  assert_int_equal(x.topo->n_nodes, 2);
  assert_string_equal(x.topo->nodes[0].dc, "east");
  assert_false(x.topo->nodes[0].local_dc);
  assert_false(x.topo->nodes[1].local_dc);
  finish(&x);
}

static void test_probe_after_refusals(void **state)
{
  (void)state;
  ctl_test_t x;
  const char *args[] = { "--protocols", "3,4", NULL };
  setup(&x, 1, args, NULL);
  /* the discovery OPTIONS (v4) is refused once, so the control connection probes from DSE_V2 down;
   * the mock itself refuses DSE_V2, DSE_V1 and v5 */
  tb_cmd(&x.f, "RULE ADD op=OPTIONS version=4 times=1 action=error code=PROTOCOL_ERROR "
               "msg=\"Invalid or unsupported protocol version (4); supported versions are (3/v3)\"");
  tb_log_t log;
  tb_log_begin(&log, TDM_LOG_DEBUG);
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 15000));
  assert_int_equal(control_conn_version(&x), 4);
  assert_int_equal(stat_field(&x, "version_refused"), 3);
  assert_int_equal(x.topo->versions_accepted, TDM_CONF_PV_V3 | TDM_CONF_PV_V4);
  /* refusals are DEBUG lines, never WARN or ERROR; the result is one INFO line */
  assert_true(tb_log_count(&log, "refused v66") >= 1);
  assert_int_equal(tb_log_count(&log, " WARN "), 0);
  assert_int_equal(tb_log_count(&log, " ERROR "), 0);
  assert_int_equal(tb_log_count(&log, "accepts v3 v4"), 1);
  tb_log_end(&log);
  finish(&x);
}

/* ---- a TCP relay in front of one mock node that hides PROTOCOL_VERSIONS (a pre-4.0 node's SUPPORTED):
 * the first frame of each connection from the node, when it is SUPPORTED, is re-encoded without that
 * key; everything else passes through untouched ---- */

typedef struct px_s {
  uv_tcp_t server;          /* listener */
  struct sockaddr_in target; /* the mock node */
  uint16_t port;            /* listening port */
  int rewritten;            /* SUPPORTED frames rewritten */
} px_t;

typedef struct px_pair_s {
  uv_tcp_t client;          /* accepted from the control connection */
  uv_tcp_t upstream;        /* to the mock node */
  uv_connect_t creq;        /* upstream connect */
  px_t *px;                 /* relay */
  bool connected;           /* upstream is connected */
  bool inspect;             /* node -> client: first frame not seen yet */
  uint8_t *held;            /* bytes held back (client -> node before connect, or the first frame) */
  size_t held_len;          /* bytes in held */
  int open;                 /* handles not yet closed */
} px_pair_t;

static void px_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  (void)h;
  (void)hint;
  buf->base = malloc(65536);
  buf->len = 65536;
}

static void px_written(uv_write_t *req, int status)
{
  (void)status;
  free(req->data);
  free(req);
}

static void px_send(uv_tcp_t *to, const void *p, size_t n)
{
  if (n == 0 || uv_is_closing((uv_handle_t *)to)) return;
  uv_write_t *req = malloc(sizeof(*req));
  req->data = malloc(n);
  memcpy(req->data, p, n);
  uv_buf_t b = uv_buf_init(req->data, (unsigned)n);
  if (uv_write(req, (uv_stream_t *)to, &b, 1, px_written)) px_written(req, 0);
}

static void px_closed(uv_handle_t *h)
{
  px_pair_t *p = h->data;
  if (--p->open == 0) {
    free(p->held);
    free(p);
  }
}

static void px_close(px_pair_t *p)
{
  if (!uv_is_closing((uv_handle_t *)&p->client)) uv_close((uv_handle_t *)&p->client, px_closed);
  if (!uv_is_closing((uv_handle_t *)&p->upstream)) uv_close((uv_handle_t *)&p->upstream, px_closed);
}

static void px_hold(px_pair_t *p, const char *d, size_t n)
{
  p->held = realloc(p->held, p->held_len + n);
  memcpy(p->held + p->held_len, d, n);
  p->held_len += n;
}

/* The first frame from the node is complete in held: rewrite it if it is SUPPORTED, then pass all on. */
static void px_first_frame(px_pair_t *p)
{
  tdm_frame_header_t h;
  const uint8_t *body;
  int n = tdm_frame_decode(p->held, p->held_len, 1u << 20, &h, &body);
  if (n == 0) return;
  p->inspect = false;
  size_t from = 0;
  if (n > 0 && h.opcode == TDM_OP_SUPPORTED) {
    tdm_response_t r;
    assert_int_equal(tdm_response_decode(h.version, TDM_OP_SUPPORTED, body, h.length, &r, NULL), 0);
    tdm_response_option_t opts[8];
    uint16_t k = 0;
    size_t pos = 0;
    tdm_str_t key;
    tdm_response_strlist_t vals;
    while (k < 8 && tdm_response_supported_next(&r.supported, &pos, &key, &vals) == 1) {
      if (tdm_str_eq_cstr(key, "PROTOCOL_VERSIONS")) continue;
      opts[k].key = key;
      opts[k++].values = vals;
    }
    tdm_response_supported_t s = { .count = k, .entries = opts };
    tdm_writer_t w;
    tdm_writer_init(&w);
    assert_int_equal(tdm_response_encode_supported(&w, &s), 0);
    uint8_t hdr[TDM_FRAME_HEADER_MAX];
    h.length = (uint32_t)w.len;
    size_t hl = tdm_frame_header_encode(&h, hdr);
    hdr[0] |= 0x80;
    px_send(&p->client, hdr, hl);
    px_send(&p->client, w.buf, w.len);
    tdm_writer_free(&w);
    p->px->rewritten++;
    from = (size_t)n;
  }
  px_send(&p->client, p->held + from, p->held_len - from);
  p->held_len = 0;
}

static void px_on_upstream_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
  px_pair_t *p = st->data;
  if (n < 0) {
    px_close(p);
  } else if (n > 0) {
    if (p->inspect) {
      px_hold(p, buf->base, (size_t)n);
      px_first_frame(p);
    } else {
      px_send(&p->client, buf->base, (size_t)n);
    }
  }
  free(buf->base);
}

static void px_on_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
  px_pair_t *p = st->data;
  if (n < 0) {
    px_close(p);
  } else if (n > 0) {
    if (p->connected)
      px_send(&p->upstream, buf->base, (size_t)n);
    else
      px_hold(p, buf->base, (size_t)n);
  }
  free(buf->base);
}

static void px_on_upstream(uv_connect_t *req, int status)
{
  px_pair_t *p = req->data;
  if (status < 0) {
    px_close(p);
    return;
  }
  p->connected = true;
  px_send(&p->upstream, p->held, p->held_len);
  p->held_len = 0;
  uv_read_start((uv_stream_t *)&p->upstream, px_alloc, px_on_upstream_read);
}

static void px_on_connection(uv_stream_t *server, int status)
{
  px_t *px = server->data;
  assert_int_equal(status, 0);
  px_pair_t *p = calloc(1, sizeof(*p));
  p->px = px;
  p->inspect = true;
  uv_tcp_init(server->loop, &p->client);
  uv_tcp_init(server->loop, &p->upstream);
  p->client.data = p->upstream.data = p->creq.data = p;
  p->open = 2;
  assert_int_equal(uv_accept(server, (uv_stream_t *)&p->client), 0);
  uv_read_start((uv_stream_t *)&p->client, px_alloc, px_on_client_read);
  assert_int_equal(uv_tcp_connect(&p->creq, &p->upstream, (const struct sockaddr *)&px->target, px_on_upstream), 0);
}

static void px_start(px_t *px, uv_loop_t *loop, uint16_t target_port)
{
  memset(px, 0, sizeof(*px));
  assert_int_equal(uv_ip4_addr("127.0.0.1", target_port, &px->target), 0);
  struct sockaddr_in any;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &any), 0);
  assert_int_equal(uv_tcp_init(loop, &px->server), 0);
  px->server.data = px;
  assert_int_equal(uv_tcp_bind(&px->server, (const struct sockaddr *)&any, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&px->server, 16, px_on_connection), 0);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  assert_int_equal(uv_tcp_getsockname(&px->server, (struct sockaddr *)&ss, &len), 0);
  px->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void test_probe_without_protocol_versions(void **state)
{
  (void)state;
  ctl_test_t x;
  memset(&x, 0, sizeof(x));
  tb_init(&x.f);
  const char *args[] = { "--protocols", "3,4,5", NULL };
  tb_mock_start(&x.f, 1, args);
  px_t px;
  px_start(&px, &x.f.loop, tb_node_port(&x.f, 0));
  /* the control connection's contact point is the relay */
  char yaml[256];
  snprintf(yaml, sizeof(yaml), "origin_contact_points: 127.0.0.1:%u\ntarget_contact_points: 127.0.0.1:%u\n",
           (unsigned)px.port, (unsigned)px.port);
  assert_int_equal(tdm_conf_load_buffer("relay.yaml", yaml, strlen(yaml), NULL, &x.f.conf, NULL), 0);
  tb_log_t log;
  tb_log_begin(&log, TDM_LOG_DEBUG);
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 15000));
  /* the discovery OPTIONS saw no list: STARTUP probes DSE_V2, DSE_V1 (both refused), then v5 */
  assert_true(px.rewritten >= 1);
  assert_int_equal(control_conn_version(&x), 5);
  assert_int_equal(stat_field(&x, "version_refused"), 2);
  assert_int_equal(tb_count(&x.f, "op=STARTUP"), 3);
  /* the first accepted version and every later one in the order count as accepted */
  assert_int_equal(x.topo->versions_accepted, TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5);
  assert_int_equal(tb_log_count(&log, "refused v66 (STARTUP)"), 1);
  assert_int_equal(tb_log_count(&log, "refused v65 (STARTUP)"), 1);
  assert_int_equal(tb_log_count(&log, " WARN "), 0);
  assert_int_equal(tb_log_count(&log, " ERROR "), 0);
  assert_int_equal(tb_log_count(&log, "accepts v3 v4 v5"), 1);
  tb_log_end(&log);
  tdm_control_close(x.ctl);
  uv_close((uv_handle_t *)&px.server, NULL);
  tdm_topology_unref(x.topo);
  x.topo = NULL;
  tb_finish(&x.f);
}

static void test_auth_password(void **state)
{
  (void)state;
  ctl_test_t x;
  const char *args[] = { "--auth", "alice:secret", NULL };
  setup(&x, 3, args, "origin_username: alice\norigin_password: secret\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  assert_true(x.topo->auth_required);
  assert_string_equal(x.topo->authenticator, "org.apache.cassandra.auth.PasswordAuthenticator");
  assert_int_equal(x.topo->n_nodes, 3);
  assert_int_equal(tb_count(&x.f, "what=auth_ok user=alice"), 1);
  assert_int_equal(tb_count(&x.f, "what=auth_failed"), 0);
  finish(&x);
}

static void test_auth_dse(void **state)
{
  (void)state;
  ctl_test_t x;
  const char *args[] = { "--auth", "bob:pw", "--auth-class", "com.datastax.bdp.cassandra.auth.DseAuthenticator", NULL };
  setup(&x, 1, args, "origin_username: bob\norigin_password: pw\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  assert_string_equal(x.topo->authenticator, "com.datastax.bdp.cassandra.auth.DseAuthenticator");
  /* PLAIN, then the credentials: two AUTH_RESPONSEs */
  assert_int_equal(tb_count(&x.f, "op=AUTH_RESPONSE"), 2);
  assert_int_equal(tb_count(&x.f, "what=auth_ok user=bob"), 1);
  finish(&x);
}

static void test_auth_missing_username(void **state)
{
  (void)state;
  ctl_test_t x;
  const char *args[] = { "--auth", "alice:secret", NULL };
  setup(&x, 1, args, "heartbeat_retry_interval_min_ms: 50\nheartbeat_retry_interval_max_ms: 100\n");
  tb_log_t log;
  tb_log_begin(&log, TDM_LOG_INFO);
  start_control(&x);
  tb_run_for(&x.f, 700);
  /* stays down and says why on every retry */
  assert_true(x.topo == NULL || !x.topo->up);
  assert_true(x.health_down >= 2);
  assert_int_equal(x.health_up, 0);
  assert_true(x.failures >= 2);
  assert_string_equal(x.last_error, "ORIGIN requires authentication but origin_username is not set");
  int lines = tb_log_count(&log, "ORIGIN requires authentication but origin_username is not set");
  assert_true(lines >= 2);
  assert_true(lines >= x.health_down);
  assert_int_equal(tb_count(&x.f, "op=AUTH_RESPONSE"), 0);
  tb_log_end(&log);
  finish(&x);
}

static void test_auth_bad_credentials(void **state)
{
  (void)state;
  ctl_test_t x;
  const char *args[] = { "--auth", "alice:secret", NULL };
  setup(&x, 1, args, "origin_username: alice\norigin_password: wrong\nheartbeat_retry_interval_min_ms: 5000\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_down, &x, 5000));
  assert_int_equal(x.failures, 1);
  assert_non_null(strstr(x.last_error, "ORIGIN rejected the configured credentials for 'alice'"));
  assert_null(strstr(x.last_error, "wrong")); /* never the password */
  assert_int_equal(tb_count(&x.f, "what=auth_failed"), 1);
  finish(&x);
}

static bool up_again(void *arg)
{
  ctl_test_t *x = arg;
  return x->health_up >= 2;
}

static void test_reconnect_after_kill(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 3, NULL, "heartbeat_retry_interval_min_ms: 50\nheartbeat_retry_interval_max_ms: 200\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  uint64_t gen = x.topo->generation;
  tb_cmd(&x.f, "KILL node=*");
  assert_true(tb_run_until(&x.f, is_down, &x, 5000));
  assert_int_equal(x.failures, 1);
  assert_true(tb_run_until(&x.f, up_again, &x, 10000));
  assert_true(x.topo->up);
  assert_true(x.topo->generation > gen + 1); /* a down snapshot, then an up one */
  assert_int_equal(x.topo->n_nodes, 3);
  /* the first node stopped: the next round reaches the cluster through another node */
  x.health_down = 0;
  x.health_up = 0;
  tb_cmd(&x.f, "STOP node=0");
  assert_true(tb_run_until(&x.f, is_down, &x, 5000));
  assert_false(x.topo->up);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  assert_int_equal(x.health_up, 1);
  assert_true(x.topo->nodes[0].port != tb_node_port(&x.f, 0));
  finish(&x);
}

static void test_heartbeat(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 1, NULL, "heartbeat_interval_ms: 100\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  int64_t before = tb_count(&x.f, "op=OPTIONS");
  tb_run_for(&x.f, 1000);
  int64_t sent = tb_count(&x.f, "op=OPTIONS") - before;
  assert_true(sent >= 5);  /* one per 100 ms, after each reply */
  assert_true(sent <= 11);
  assert_int_equal(x.health_down, 0);
  finish(&x);
}

static void test_heartbeat_silence(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 1, NULL, "heartbeat_interval_ms: 200\nheartbeat_retry_interval_min_ms: 50\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  tb_cmd(&x.f, "RULE ADD op=OPTIONS action=noreply times=1");
  uint64_t t0 = uv_now(&x.f.loop);
  assert_true(tb_run_until(&x.f, is_down, &x, 15000));
  uint64_t waited = uv_now(&x.f.loop) - t0;
  assert_true(waited >= 10000); /* no SUPPORTED within 10 s */
  assert_true(waited < 13000);
  assert_non_null(strstr(x.last_error, "no heartbeat reply"));
  assert_true(tb_run_until(&x.f, up_again, &x, 10000));
  finish(&x);
}

static bool node1_down(void *arg)
{
  ctl_test_t *x = arg;
  int i = tdm_topology_find_node(x->topo, "127.0.0.1", (uint16_t)x->failures);
  return i >= 0 && x->topo->nodes[i].state == TDM_NODE_DOWN;
}

static bool got_schema_event(void *arg) { return ((ctl_test_t *)arg)->schema_events > 0; }

typedef struct wait_s {
  ctl_test_t *x;      /* test */
  char uuid[40];      /* schema version awaited */
} wait_t;

static bool schema_is(void *arg)
{
  wait_t *w = arg;
  return strcmp(w->x->topo->schema_version, w->uuid) == 0;
}

static void test_events(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 3, NULL, NULL);
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  /* STATUS_CHANGE DOWN marks the node (failures doubles as the port for node1_down) */
  uint16_t p1 = tb_node_port(&x.f, 1);
  x.failures = p1;
  tb_cmd(&x.f, "EVENT type=STATUS_CHANGE change=DOWN node=1");
  assert_true(tb_run_until(&x.f, node1_down, &x, 5000));
  int i = tdm_topology_find_node(x.topo, "127.0.0.1", p1);
  assert_true(x.topo->up);
  assert_int_equal(x.topo->nodes[0].state, TDM_NODE_UP);
  tb_cmd(&x.f, "EVENT type=STATUS_CHANGE change=UP node=1");
  tb_run_for(&x.f, 300);
  i = tdm_topology_find_node(x.topo, "127.0.0.1", p1);
  assert_true(i >= 0);
  assert_int_equal(x.topo->nodes[i].state, TDM_NODE_UP);
  /* TOPOLOGY_CHANGE re-reads the peers */
  int64_t peers = tb_count(&x.f, "match=system.peers_v2");
  tb_cmd(&x.f, "EVENT type=TOPOLOGY_CHANGE change=NEW_NODE node=2");
  tb_run_for(&x.f, 300);
  assert_true(tb_count(&x.f, "match=system.peers_v2") > peers);
  assert_int_equal(x.topo->n_nodes, 3);
  /* SCHEMA_CHANGE goes to the owner and refreshes schema_version */
  char reply[128];
  assert_int_equal(tdm_mockctl_cmd(&x.f.mock, reply, sizeof(reply), "SCHEMA BUMP"), 0);
  wait_t w = { .x = &x };
  snprintf(w.uuid, sizeof(w.uuid), "%.36s", reply + 3);
  assert_string_not_equal(x.topo->schema_version, w.uuid);
  tb_cmd(&x.f, "EVENT type=SCHEMA_CHANGE change=CREATED target=KEYSPACE ks=ks1");
  assert_true(tb_run_until(&x.f, got_schema_event, &x, 5000));
  assert_int_equal(x.event_version, 5);
  assert_true(tb_run_until(&x.f, schema_is, &w, 5000));
  assert_int_equal(x.schema_events, 1);
  finish(&x);
}

static void test_peers_fallback(void **state)
{
  (void)state;
  ctl_test_t x;
  const char *args[] = { "--no-peers-v2", NULL };
  setup(&x, 2, args, NULL);
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  assert_false(x.topo->has_peers_v2);
  /* system.peers has rpc_address only: the peer is reached on the configured port (9042 here) */
  assert_int_equal(x.topo->n_nodes, 2);
  assert_int_equal(x.topo->nodes[1].port, 9042);
  assert_non_null(tdm_topology_peer_column(x.topo, 1, "rpc_address"));
  assert_int_equal(tb_count(&x.f, "text=\"SELECT * FROM system.peers\""), 1);
  assert_int_equal(tb_count(&x.f, "text=\"SELECT * FROM system.peers_v2\""), 1);
  finish(&x);
}

static void on_agreed(void *arg, bool agreed)
{
  ctl_test_t *x = arg;
  x->agreed[agreed ? 1 : 0]++;
}

static bool answered(void *arg)
{
  ctl_test_t *x = arg;
  return x->agreed[0] + x->agreed[1] > 0;
}

static void test_schema_agreement(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 3, NULL, NULL);
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  /* agreed at once */
  tdm_control_wait_schema_agreement(x.ctl, 5000, on_agreed, &x);
  assert_int_equal(x.agreed[0] + x.agreed[1], 0); /* never synchronous */
  assert_true(tb_run_until(&x.f, answered, &x, 3000));
  assert_int_equal(x.agreed[1], 1);
  /* a peer reporting another version for three polls: agreement about 600 ms later */
  char rule[512];
  snprintf(rule, sizeof(rule),
           "RULE ADD op=QUERY match=system.peers_v2 times=3 action=rows "
           "columns=peer:inet,native_address:inet,native_port:int,schema_version:uuid "
           "rows=127.0.0.1,127.0.0.1,%u,11111111-1111-1111-1111-111111111111",
           (unsigned)tb_node_port(&x.f, 1));
  tb_cmd(&x.f, rule);
  x.agreed[0] = x.agreed[1] = 0;
  uint64_t t0 = uv_now(&x.f.loop);
  tdm_control_wait_schema_agreement(x.ctl, 5000, on_agreed, &x);
  assert_true(tb_run_until(&x.f, answered, &x, 5000));
  assert_int_equal(x.agreed[1], 1);
  assert_true(uv_now(&x.f.loop) - t0 >= 400);
  /* endless disagreement: false at the wait's end */
  tb_cmd(&x.f, "RULE CLEAR");
  snprintf(rule, sizeof(rule),
           "RULE ADD op=QUERY match=system.peers_v2 action=rows "
           "columns=peer:inet,native_address:inet,native_port:int,schema_version:uuid "
           "rows=127.0.0.1,127.0.0.1,%u,11111111-1111-1111-1111-111111111111",
           (unsigned)tb_node_port(&x.f, 1));
  tb_cmd(&x.f, rule);
  x.agreed[0] = x.agreed[1] = 0;
  t0 = uv_now(&x.f.loop);
  tdm_control_wait_schema_agreement(x.ctl, 500, on_agreed, &x);
  assert_true(tb_run_until(&x.f, answered, &x, 3000));
  assert_int_equal(x.agreed[0], 1);
  assert_int_equal(x.agreed[1], 0);
  assert_true(uv_now(&x.f.loop) - t0 >= 500);
  /* a waiter still pending when the control connection closes hears false */
  x.agreed[0] = 0;
  tdm_control_wait_schema_agreement(x.ctl, 5000, on_agreed, &x);
  tdm_control_close(x.ctl);
  assert_int_equal(x.agreed[0], 1);
  tdm_topology_unref(x.topo);
  x.topo = NULL;
  tb_finish(&x.f);
}

static void test_learn_refused(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 1, NULL, "heartbeat_retry_interval_min_ms: 50\n");
  start_control(&x);
  assert_true(tb_run_until(&x.f, is_up, &x, 10000));
  int before = x.topologies;
  tdm_control_learn_refused_version(x.ctl, TDM_PROTO_V5);
  assert_int_equal(x.topologies, before + 1);
  assert_int_equal(x.topo->versions_refused, TDM_CONF_PV_V5);
  tdm_control_learn_refused_version(x.ctl, TDM_PROTO_V5); /* already known: no new snapshot */
  assert_int_equal(x.topologies, before + 1);
  /* cleared when the control connection reconnects */
  tb_cmd(&x.f, "KILL node=*");
  assert_true(tb_run_until(&x.f, is_down, &x, 5000));
  assert_true(tb_run_until(&x.f, up_again, &x, 10000));
  assert_int_equal(x.topo->versions_refused, 0);
  finish(&x);
}

static void test_no_contact_point(void **state)
{
  (void)state;
  ctl_test_t x;
  setup(&x, 1, NULL, "heartbeat_retry_interval_min_ms: 100\nheartbeat_retry_interval_max_ms: 400\n");
  tb_cmd(&x.f, "STOP node=0");
  start_control(&x);
  tb_run_for(&x.f, 1200);
  /* 100, ~200, ~400 ms apart (±20 %): three or four rounds in 1.2 s, each counted */
  assert_true(x.health_down >= 3);
  assert_true(x.health_down <= 5);
  assert_int_equal(x.failures, x.health_down);
  assert_non_null(strstr(x.last_error, "connection refused"));
  tb_cmd(&x.f, "START node=0");
  assert_true(tb_run_until(&x.f, is_up, &x, 5000));
  assert_int_equal(x.health_up, 1);
  finish(&x);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_discovery_v5),         cmocka_unit_test(test_max_version_v4),
    cmocka_unit_test(test_local_datacenter),
    cmocka_unit_test(test_probe_after_refusals), cmocka_unit_test(test_probe_without_protocol_versions),
    cmocka_unit_test(test_auth_password),
    cmocka_unit_test(test_auth_dse),             cmocka_unit_test(test_auth_missing_username),
    cmocka_unit_test(test_auth_bad_credentials), cmocka_unit_test(test_reconnect_after_kill),
    cmocka_unit_test(test_heartbeat),            cmocka_unit_test(test_heartbeat_silence),
    cmocka_unit_test(test_events),               cmocka_unit_test(test_peers_fallback),
    cmocka_unit_test(test_schema_agreement),     cmocka_unit_test(test_learn_refused),
    cmocka_unit_test(test_no_contact_point),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
