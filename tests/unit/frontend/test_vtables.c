/* Virtual system tables without a connection (behaviour.md §9, VT-02/03/04/07/08 at unit level): the
 * SELECT subset parser (selectors, aliases, count, now, WHERE, LIMIT, ALLOW FILTERING, USING TIMEOUT,
 * unsupported clauses), and the rows built from a synthetic cluster snapshot: rpc_address = the
 * connected address, host ids and tokens of the instances, data_center of the paired node, copied
 * columns with their real types, Murmur3, count(*), filters, peers_v2 refusal, Prepared metadata. */
#include "testlib.h"

#include <arpa/inet.h>
#include <tandem/frontend/vtables.h>
#include <tandem/proto/response.h>

/* ---- parser ---- */

static int parse(const char *q, const char *ks, tdm_vselect_t *s)
{
  return tdm_vselect_parse(tdm_str_from(q), tdm_str_from(ks), s);
}

static bool name_is(tdm_cql_name_t n, const char *canonical) { return tdm_cql_name_eq(n, tdm_str_from(canonical)); }

static void test_parse_basic(void **state)
{
  (void)state;
  tdm_vselect_t *s = malloc(sizeof(*s));
  assert_int_equal(parse("SELECT * FROM system.local", "", s), 0);
  assert_int_equal(s->table, TDM_VTABLE_LOCAL);
  assert_true(s->star);

  assert_int_equal(parse("select key, rpc_address AS r, count(*), COUNT(1) as c, now(), \"Key\" "
                         "FROM system.local WHERE key='local' LIMIT 1 ALLOW FILTERING USING TIMEOUT 10s;",
                         "", s),
                   0);
  assert_false(s->star);
  assert_int_equal(s->n_items, 6);
  assert_int_equal(s->items[0].kind, TDM_VSEL_COLUMN);
  assert_true(name_is(s->items[0].name, "key"));
  assert_true(name_is(s->items[1].alias, "r"));
  assert_int_equal(s->items[2].kind, TDM_VSEL_COUNT);
  assert_int_equal(s->items[3].kind, TDM_VSEL_COUNT);
  assert_true(name_is(s->items[3].alias, "c"));
  assert_int_equal(s->items[4].kind, TDM_VSEL_NOW);
  assert_true(name_is(s->items[5].name, "Key")); /* quoted: case kept */
  assert_true(s->key.set);
  assert_int_equal(s->key.marker, -1);
  assert_true(s->limit.set);

  /* unqualified table, resolved by the session keyspace */
  assert_int_equal(parse("SELECT peer FROM peers_v2 WHERE peer = ? AND peer_port = ?", "system", s), 0);
  assert_int_equal(s->table, TDM_VTABLE_PEERS_V2);
  assert_int_equal(s->n_markers, 2);
  assert_int_equal(s->peer.marker, 0);
  assert_int_equal(s->peer_port.marker, 1);
  assert_true(name_is(s->markers[1].column, "peer_port"));
  assert_int_equal(parse("SELECT peer FROM peers_v2", "ks", s), TDM_ENOTFOUND);

  /* other conditions are ignored, but their markers count */
  assert_int_equal(parse("SELECT * FROM system.peers WHERE host_id = ? AND peer = :p LIMIT ?", "", s), 0);
  assert_int_equal(s->n_markers, 3);
  assert_true(name_is(s->markers[0].column, "host_id"));
  assert_false(s->markers[0].limit);
  assert_int_equal(s->peer.marker, 1);
  assert_true(tdm_str_eq_cstr(s->markers[1].name, "p"));
  assert_int_equal(s->limit.marker, 2);
  assert_true(s->markers[2].limit);
  assert_int_equal(parse("SELECT * FROM system.peers WHERE token(peer) > 5 AND peer IN ('1.2.3.4')", "", s), 0);
  assert_false(s->peer.set);

  /* a column named json is a column */
  assert_int_equal(parse("SELECT json FROM system.local", "", s), 0);
  assert_int_equal(s->n_items, 1);
  free(s);
}

static void test_parse_refusals(void **state)
{
  (void)state;
  tdm_vselect_t *s = malloc(sizeof(*s));
  static const char *const unsupported[] = {
    "SELECT JSON * FROM system.local",
    "SELECT DISTINCT key FROM system.local",
    "SELECT writetime(key) FROM system.local",
    "SELECT * FROM system.local ORDER BY key",
    "SELECT * FROM system.peers PER PARTITION LIMIT 1",
    "SELECT * FROM system.local GROUP BY key",
    "SELECT count(key) FROM system.local",
    "SELECT key AS FROM system.local",
    "SELECT * FROM system.local; SELECT 1",
  };
  for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
    int rc = parse(unsupported[i], "", s);
    if (rc != TDM_EINVAL) fail_msg("'%s' parsed with %d", unsupported[i], rc);
    assert_int_not_equal(s->table, TDM_VTABLE_NONE); /* the table is still known, for the error text */
  }
  assert_int_equal(parse("SELECT * FROM ks.tab", "", s), TDM_ENOTFOUND);
  assert_int_equal(parse("INSERT INTO system.local (key) VALUES ('x')", "", s), TDM_ENOTFOUND);
  assert_int_equal(parse("", "", s), TDM_ENOTFOUND);
  assert_int_equal(parse("SELECT * FROM system.size_estimates", "", s), TDM_ENOTFOUND);
  assert_true(tdm_vtables_is_virtual(TDM_STR("system"), TDM_STR("peers_v2")));
  assert_false(tdm_vtables_is_virtual(TDM_STR("system"), TDM_STR("peers_v3")));
  assert_false(tdm_vtables_is_virtual(TDM_STR("System"), TDM_STR("local")));
  free(s);
}

/* ---- a synthetic cluster snapshot ---- */

static const uint8_t T_TEXT[] = { 0, 0x0D }, T_INET[] = { 0, 0x10 }, T_INT[] = { 0, 0x09 }, T_UUID[] = { 0, 0x0C },
                     T_SET[] = { 0, 0x22, 0, 0x0D };

typedef struct fixture_s {
  tdm_conf_t *conf;          /* three instances, this one at index 1, 4 tokens each */
  tdm_topology_t topo;       /* ORIGIN: 3 nodes in dc1 */
  tdm_node_t nodes[3];       /* the nodes */
  tdm_column_t local[8];     /* control node's system.local row */
  tdm_column_t peer1[7];     /* peers rows of nodes 1 and 2 */
  tdm_column_t peer2[7];
  tdm_column_t *peer_rows[3];
  size_t n_peer_row[3];
  uint8_t versions[3][16];   /* release_version values */
} fixture_t;

static tdm_column_t col(const char *name, const uint8_t *type, size_t tlen, const void *value, int32_t vlen)
{
  tdm_column_t c = { (char *)name, (uint8_t *)type, tlen, (uint8_t *)value, vlen };
  return c;
}

static int setup(void **state)
{
  fixture_t *f = calloc(1, sizeof(*f));
  static const char yaml[] = "origin_contact_points: 127.0.0.1\n"
                             "target_contact_points: 127.0.0.2\n"
                             "proxy_listen_port: 9042\n"
                             "proxy_topology_addresses: 10.0.0.1, 10.0.0.2, 10.0.0.3:9043\n"
                             "proxy_topology_index: 1\n"
                             "proxy_topology_num_tokens: 4\n";
  tdm_conf_diag_t diag = { 0 };
  int rc = tdm_conf_load_buffer("test.yaml", yaml, sizeof(yaml) - 1, NULL, &f->conf, &diag);
  if (rc) fail_msg("conf: %s", diag.message ? diag.message : "?");
  tdm_conf_diag_free(&diag);
  /* nodes sorted by (rack, host_id) pair with instances 0, 1, 2: n2 (r1, 0x01..), n0 (r1, 0x02..), n1 (r2) */
  static const char *const dcs[3] = { "dc1", "dc1", "dc1" };
  static const char *const racks[3] = { "r1", "r2", "r1" };
  static const uint8_t ids[3] = { 0x02, 0x03, 0x01 };
  for (int i = 0; i < 3; i++) {
    snprintf(f->nodes[i].dc, sizeof(f->nodes[i].dc), "%s", dcs[i]);
    snprintf(f->nodes[i].rack, sizeof(f->nodes[i].rack), "%s", racks[i]);
    memset(f->nodes[i].host_id, ids[i], 16);
    f->nodes[i].local_dc = true;
    snprintf((char *)f->versions[i], sizeof(f->versions[i]), "5.0.%u", (unsigned)i % 10u);
  }
  f->nodes[1].dc[2] = '2'; /* node 1 claims dc2 as its DC: instance 2 reports it */
  static const uint8_t rpc[4] = { 192, 168, 0, 1 };
  f->local[0] = col("key", T_TEXT, 2, "local", 5);
  f->local[1] = col("cluster_name", T_TEXT, 2, "Test Cluster", 12);
  f->local[2] = col("data_center", T_TEXT, 2, "dc1", 3);
  f->local[3] = col("host_id", T_UUID, 2, "0123456789abcdef", 16);
  f->local[4] = col("rpc_address", T_INET, 2, rpc, 4);
  f->local[5] = col("release_version", T_TEXT, 2, f->versions[0], 5);
  f->local[6] = col("tokens", T_SET, 4, NULL, -1);
  f->local[7] = col("rpc_port", T_INT, 2, "\0\0\x23\x52", 4);
  f->peer1[0] = col("peer", T_INET, 2, rpc, 4);
  f->peer1[1] = col("data_center", T_TEXT, 2, "dc2", 3);
  f->peer1[2] = col("release_version", T_TEXT, 2, f->versions[1], 5);
  f->peer1[3] = col("tokens", T_SET, 4, NULL, -1);
  f->peer1[4] = col("workload", T_TEXT, 2, "Cassandra", 9); /* a vendor column */
  f->peer1[5] = col("rpc_address", T_INET, 2, rpc, 4);
  f->peer1[6] = col("rack", T_TEXT, 2, "r9", 2);
  memcpy(f->peer2, f->peer1, sizeof(f->peer1));
  f->peer2[2] = col("release_version", T_TEXT, 2, f->versions[2], 5);
  f->peer_rows[1] = f->peer1;
  f->peer_rows[2] = f->peer2;
  f->n_peer_row[1] = f->n_peer_row[2] = 7;
  f->topo.nodes = f->nodes;
  f->topo.n_nodes = 3;
  f->topo.local_row = f->local;
  f->topo.n_local_row = 8;
  f->topo.peer_rows = f->peer_rows;
  f->topo.n_peer_row = f->n_peer_row;
  snprintf(f->topo.schema_version, sizeof(f->topo.schema_version), "11111111-2222-3333-4444-555555555555");
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  fixture_t *f = *state;
  tdm_conf_unref(f->conf);
  free(f);
  return 0;
}

static void ctx_for(fixture_t *f, tdm_vtables_ctx_t *ctx, const char *local_ip, uint8_t version)
{
  memset(ctx, 0, sizeof(*ctx));
  ctx->conf = f->conf;
  ctx->topology = &f->topo;
  ctx->version = version;
  assert_int_equal(tdm_sockaddr_parse_ip(local_ip, 9042, &ctx->local), 0);
}

/* A decoded Rows answer. */
typedef struct rows_s {
  tdm_writer_t w;                 /* the body */
  tdm_response_t r;               /* decoded */
  tdm_response_column_t cols[64]; /* metadata */
  size_t ncols;                   /* columns */
} rows_t;

static int run(fixture_t *f, const char *local_ip, uint8_t version, const char *q, const tdm_vtables_opts_t *opts,
               rows_t *out, tdm_vtables_error_t *err)
{
  tdm_vtables_ctx_t ctx;
  ctx_for(f, &ctx, local_ip, version);
  tdm_vselect_t sel;
  assert_int_equal(tdm_vselect_parse(tdm_str_from(q), TDM_STR(""), &sel), 0);
  memset(out, 0, sizeof(*out));
  tdm_writer_init(&out->w);
  memset(err, 0, sizeof(*err));
  int rc = tdm_vtables_rows(&ctx, &sel, opts, &out->w, err);
  if (rc) return rc;
  assert_int_equal(tdm_response_decode(version, TDM_OP_RESULT, out->w.buf, out->w.len, &out->r, NULL), 0);
  assert_int_equal(out->r.result.kind, TDM_RESULT_ROWS);
  size_t pos = 0;
  while (out->ncols < 64 && tdm_response_column_next(&out->r.result.rows.metadata, &pos, &out->cols[out->ncols]) == 1)
    out->ncols++;
  return 0;
}

/* The cell (row r, column named `name`). */
static tdm_bytes_t cell(rows_t *rs, int32_t row, const char *name)
{
  size_t ci = SIZE_MAX;
  for (size_t i = 0; i < rs->ncols; i++)
    if (tdm_str_eq_cstr(rs->cols[i].name, name)) ci = i;
  if (ci == SIZE_MAX) fail_msg("no column %s", name);
  tdm_response_rows_iter_t it;
  tdm_response_rows_iter_init(&it, &rs->r.result.rows);
  tdm_bytes_t b = { 0 };
  for (int32_t r = 0; r <= row; r++) assert_int_equal(tdm_response_rows_next_row(&it), 1);
  for (size_t i = 0; i <= ci; i++) assert_int_equal(tdm_response_rows_next_cell(&it, &b), 1);
  return b;
}

static void assert_text(tdm_bytes_t b, const char *want)
{
  assert_int_equal(b.len, (int32_t)strlen(want));
  assert_memory_equal(b.ptr, want, strlen(want));
}

static void assert_inet(tdm_bytes_t b, const char *ip)
{
  uint8_t a[16];
  int len = 4;
  if (inet_pton(AF_INET, ip, a) != 1) {
    assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
    len = 16;
  }
  assert_int_equal(b.len, len);
  assert_memory_equal(b.ptr, a, (size_t)len);
}

/* The first token of a set<text> cell. */
static void assert_first_token(tdm_bytes_t b, int64_t want, int32_t count)
{
  tdm_reader_t r;
  tdm_reader_init(&r, b.ptr, (size_t)b.len);
  int32_t n;
  tdm_bytes_t e;
  assert_int_equal(tdm_reader_int(&r, &n), 0);
  assert_int_equal(n, count);
  assert_int_equal(tdm_reader_bytes(&r, &e), 0);
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld", (long long)want);
  assert_text(e, buf);
}

static void test_local_row(void **state)
{
  fixture_t *f = *state;
  rows_t rs;
  tdm_vtables_error_t err;
  assert_int_equal(run(f, "127.0.0.7", TDM_PROTO_V4, "SELECT * FROM system.local", NULL, &rs, &err), 0);
  assert_int_equal(rs.r.result.rows.rows_count, 1);
  assert_int_equal(rs.ncols, 8); /* the real table's columns only (no partitioner column there) */
  assert_true(tdm_str_eq_cstr(rs.r.result.rows.metadata.global_table, "local"));
  assert_text(cell(&rs, 0, "key"), "local");
  assert_inet(cell(&rs, 0, "rpc_address"), "127.0.0.7"); /* the connected address (VT-05) */
  assert_text(cell(&rs, 0, "cluster_name"), "Test Cluster");
  /* instance 1 pairs with node 0 (sorted: n2, n0, n1): its DC, its release_version */
  assert_text(cell(&rs, 0, "data_center"), "dc1");
  assert_text(cell(&rs, 0, "release_version"), "5.0.0");
  tdm_bytes_t port = cell(&rs, 0, "rpc_port");
  assert_int_equal(port.len, 4);
  assert_int_equal((port.ptr[2] << 8) | port.ptr[3], 9042);
  uint8_t addr[4] = { 10, 0, 0, 2 }, id[16];
  tdm_vtables_host_id(addr, 4, id);
  tdm_bytes_t h = cell(&rs, 0, "host_id");
  assert_int_equal(h.len, 16);
  assert_memory_equal(h.ptr, id, 16);
  assert_first_token(cell(&rs, 0, "tokens"), tdm_vtables_token(1, 3, 0, 4), 4);
  tdm_writer_free(&rs.w);
}

static void test_local_selection(void **state)
{
  fixture_t *f = *state;
  rows_t rs;
  tdm_vtables_error_t err;
  assert_int_equal(run(f, "::1", TDM_PROTO_V5,
                       "SELECT rpc_address AS addr, count(*), now(), cluster_name FROM system.local WHERE key = 'local'",
                       NULL, &rs, &err),
                   0);
  assert_int_equal(rs.ncols, 4);
  assert_true(tdm_str_eq_cstr(rs.cols[0].name, "addr"));
  assert_true(tdm_str_eq_cstr(rs.cols[1].name, "count"));
  assert_int_equal(rs.cols[1].type.id, TDM_CQLTYPE_BIGINT);
  assert_int_equal(rs.cols[2].type.id, TDM_CQLTYPE_TIMEUUID);
  assert_inet(cell(&rs, 0, "addr"), "::1");
  tdm_bytes_t n = cell(&rs, 0, "count");
  assert_int_equal(n.len, 8);
  assert_int_equal(n.ptr[7], 1);
  tdm_bytes_t u = cell(&rs, 0, "system.now()");
  assert_int_equal(u.len, 16);
  assert_int_equal(u.ptr[6] >> 4, 1); /* version-1 uuid */
  tdm_writer_free(&rs.w);

  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT key FROM system.local WHERE key = 'remote'", NULL, &rs, &err),
                   0);
  assert_int_equal(rs.r.result.rows.rows_count, 0);
  tdm_writer_free(&rs.w);

  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT dsa, key, asd FROM system.local", NULL, &rs, &err), TDM_EINVAL);
  assert_int_equal(err.code, TDM_ERR_INVALID);
  assert_string_equal(err.message, "Undefined column name dsa");
  tdm_writer_free(&rs.w);
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT \"Key\" FROM system.local", NULL, &rs, &err), TDM_EINVAL);
  assert_string_equal(err.message, "Undefined column name Key");
  tdm_writer_free(&rs.w);
}

static void test_peers(void **state)
{
  fixture_t *f = *state;
  rows_t rs;
  tdm_vtables_error_t err;
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT * FROM system.peers", NULL, &rs, &err), 0);
  assert_int_equal(rs.r.result.rows.rows_count, 2); /* N - 1 */
  assert_inet(cell(&rs, 0, "peer"), "10.0.0.1");
  assert_inet(cell(&rs, 1, "peer"), "10.0.0.3");
  assert_inet(cell(&rs, 1, "rpc_address"), "10.0.0.3");
  /* instance 0 pairs with node 2 (dc1, 5.0.2), instance 2 with node 1 (dc2, 5.0.1) */
  assert_text(cell(&rs, 0, "data_center"), "dc1");
  assert_text(cell(&rs, 0, "release_version"), "5.0.2");
  assert_text(cell(&rs, 1, "data_center"), "dc2");
  assert_text(cell(&rs, 1, "release_version"), "5.0.1");
  assert_text(cell(&rs, 1, "workload"), "Cassandra");
  assert_text(cell(&rs, 0, "rack"), "rack0");
  assert_first_token(cell(&rs, 1, "tokens"), tdm_vtables_token(2, 3, 0, 4), 4);
  tdm_writer_free(&rs.w);

  /* filters: literal, then bound values */
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT peer, count(*) FROM system.peers WHERE peer = '10.0.0.3'",
                       NULL, &rs, &err),
                   0);
  assert_int_equal(rs.r.result.rows.rows_count, 1);
  assert_inet(cell(&rs, 0, "peer"), "10.0.0.3");
  assert_int_equal(cell(&rs, 0, "count").ptr[7], 1);
  tdm_writer_free(&rs.w);

  f->topo.has_peers_v2 = true;
  uint8_t ip[4] = { 10, 0, 0, 3 }, port[4] = { 0, 0, 0x23, 0x53 }, badport[4] = { 0, 0, 0x23, 0x52 };
  tdm_bytes_t vals[2] = { { ip, 4 }, { port, 4 } };
  tdm_vtables_opts_t o = { .values = vals, .n_values = 2 };
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V5,
                       "SELECT peer, peer_port, native_port FROM system.peers_v2 WHERE peer = ? AND peer_port = ?", &o, &rs,
                       &err),
                   0);
  assert_int_equal(rs.r.result.rows.rows_count, 1);
  tdm_bytes_t pp = cell(&rs, 0, "peer_port");
  assert_int_equal((pp.ptr[2] << 8) | pp.ptr[3], 9043);
  tdm_writer_free(&rs.w);
  vals[1] = (tdm_bytes_t){ badport, 4 };
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V5,
                       "SELECT peer FROM system.peers_v2 WHERE peer = ? AND peer_port = ?", &o, &rs, &err),
                   0);
  assert_int_equal(rs.r.result.rows.rows_count, 0);
  tdm_writer_free(&rs.w);

  /* LIMIT */
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT peer FROM system.peers LIMIT 1", NULL, &rs, &err), 0);
  assert_int_equal(rs.r.result.rows.rows_count, 1);
  tdm_writer_free(&rs.w);
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT peer FROM system.peers LIMIT 0", NULL, &rs, &err), TDM_EINVAL);
  tdm_writer_free(&rs.w);

  /* a cluster without peers_v2 */
  f->topo.has_peers_v2 = false;
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V4, "SELECT * FROM system.peers_v2", NULL, &rs, &err), TDM_EINVAL);
  assert_string_equal(err.message, "unconfigured table peers_v2");
  tdm_writer_free(&rs.w);
}

static void test_single_instance(void **state)
{
  fixture_t *f = *state;
  tdm_conf_t *conf;
  assert_int_equal(tdm_conf_defaults(&conf), 0);
  tdm_conf_t *saved = f->conf;
  f->conf = conf;
  rows_t rs;
  tdm_vtables_error_t err;
  assert_int_equal(run(f, "127.0.0.9", TDM_PROTO_V4, "SELECT count(*) FROM system.peers", NULL, &rs, &err), 0);
  assert_int_equal(rs.r.result.rows.rows_count, 1);
  assert_int_equal(cell(&rs, 0, "count").ptr[7], 0);
  tdm_writer_free(&rs.w);
  assert_int_equal(run(f, "127.0.0.9", TDM_PROTO_V4, "SELECT host_id, tokens FROM system.local", NULL, &rs, &err), 0);
  uint8_t addr[4] = { 127, 0, 0, 9 }, id[16];
  tdm_vtables_host_id(addr, 4, id); /* derived from the connected address */
  assert_memory_equal(cell(&rs, 0, "host_id").ptr, id, 16);
  assert_first_token(cell(&rs, 0, "tokens"), INT64_MIN, 8);
  tdm_writer_free(&rs.w);
  f->conf = saved;
  tdm_conf_unref(conf);
}

static void test_prepared(void **state)
{
  fixture_t *f = *state;
  tdm_vtables_ctx_t ctx;
  ctx_for(f, &ctx, "127.0.0.1", TDM_PROTO_V5);
  f->topo.has_peers_v2 = true;
  tdm_vselect_t sel;
  const char *q = "SELECT peer, tokens FROM system.peers_v2 WHERE peer = ? AND peer_port = ? LIMIT ?";
  assert_int_equal(tdm_vselect_parse(tdm_str_from(q), TDM_STR(""), &sel), 0);
  uint8_t id[16];
  tdm_vtables_statement_id(TDM_STR("ks"), tdm_str_from(q), id);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_vtables_error_t err = { 0 };
  assert_int_equal(tdm_vtables_prepared(&ctx, &sel, id, &w, &err), 0);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(TDM_PROTO_V5, TDM_OP_RESULT, w.buf, w.len, &r, NULL), 0);
  assert_int_equal(r.result.kind, TDM_RESULT_PREPARED);
  assert_int_equal(r.result.prepared.id.len, 16);
  assert_memory_equal(r.result.prepared.id.ptr, id, 16);
  uint8_t mid[16];
  assert_int_equal(tdm_vtables_metadata_id(&ctx, &sel, mid, &err), 0);
  assert_int_equal(r.result.prepared.result_metadata_id.len, 16);
  assert_memory_equal(r.result.prepared.result_metadata_id.ptr, mid, 16);
  const tdm_response_metadata_t *v = &r.result.prepared.variables;
  assert_int_equal(v->columns_count, 3);
  assert_int_equal(v->pk_count, 2); /* peer, peer_port: the whole partition key is bound */
  assert_int_equal(tdm_response_pk_index(v, 0), 0);
  assert_int_equal(tdm_response_pk_index(v, 1), 1);
  tdm_response_column_t c;
  size_t pos = 0;
  assert_int_equal(tdm_response_column_next(v, &pos, &c), 1);
  assert_true(tdm_str_eq_cstr(c.name, "peer"));
  assert_int_equal(c.type.id, TDM_CQLTYPE_INET);
  assert_int_equal(tdm_response_column_next(v, &pos, &c), 1);
  assert_int_equal(c.type.id, TDM_CQLTYPE_INT);
  assert_int_equal(tdm_response_column_next(v, &pos, &c), 1);
  assert_true(tdm_str_eq_cstr(c.name, "[limit]"));
  assert_int_equal(r.result.prepared.result.columns_count, 2);
  tdm_writer_free(&w);

  /* NO_METADATA and METADATA_CHANGED answers */
  rows_t rs;
  tdm_vtables_opts_t o = { .skip_metadata = true };
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V5, "SELECT peer FROM system.peers_v2", &o, &rs, &err), 0);
  assert_true(rs.r.result.rows.metadata.flags & TDM_RFLAG_NO_METADATA);
  assert_int_equal(rs.r.result.rows.metadata.columns_count, 1);
  tdm_writer_free(&rs.w);
  o = (tdm_vtables_opts_t){ .metadata_changed = true };
  assert_int_equal(run(f, "127.0.0.1", TDM_PROTO_V5, "SELECT peer FROM system.peers_v2", &o, &rs, &err), 0);
  assert_true(rs.r.result.rows.metadata.flags & TDM_RFLAG_METADATA_CHANGED);
  assert_int_equal(rs.r.result.rows.metadata.new_metadata_id.len, 16);
  tdm_writer_free(&rs.w);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_basic),
    cmocka_unit_test(test_parse_refusals),
    cmocka_unit_test_setup_teardown(test_local_row, setup, teardown),
    cmocka_unit_test_setup_teardown(test_local_selection, setup, teardown),
    cmocka_unit_test_setup_teardown(test_peers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_single_instance, setup, teardown),
    cmocka_unit_test_setup_teardown(test_prepared, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
