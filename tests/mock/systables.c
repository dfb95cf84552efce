/* Rows of the three system tables drivers read at connect time and for schema agreement. Cells are
 * produced as serialized bytes per (node, column), so WHERE filters compare bytes like the store does. */
#include <inttypes.h>

#include <tandem/proto/writer.h>

#include "systables.h"

#define T(tid) { (uint8_t)((tid) >> 8), (uint8_t)(tid) }
#define COL(n, tid) { .name = { n, sizeof(n) - 1 }, .type = { .opt = T(tid), .opt_len = 2, .id = tid } }
#define SET_TEXT(n)                                                                                      \
  { .name = { n, sizeof(n) - 1 },                                                                        \
    .type = { .opt = { 0, TDM_MOCK_T_SET, 0, TDM_MOCK_T_VARCHAR }, .opt_len = 4, .id = TDM_MOCK_T_SET,   \
              .key = TDM_MOCK_T_VARCHAR } }

static const tdm_mock_col_t local_cols[] = {
  COL("key", TDM_MOCK_T_VARCHAR),          COL("bootstrapped", TDM_MOCK_T_VARCHAR),
  COL("broadcast_address", TDM_MOCK_T_INET), COL("broadcast_port", TDM_MOCK_T_INT),
  COL("cluster_name", TDM_MOCK_T_VARCHAR), COL("cql_version", TDM_MOCK_T_VARCHAR),
  COL("data_center", TDM_MOCK_T_VARCHAR),  COL("gossip_generation", TDM_MOCK_T_INT),
  COL("host_id", TDM_MOCK_T_UUID),         COL("listen_address", TDM_MOCK_T_INET),
  COL("listen_port", TDM_MOCK_T_INT),      COL("native_protocol_version", TDM_MOCK_T_VARCHAR),
  COL("partitioner", TDM_MOCK_T_VARCHAR),  COL("rack", TDM_MOCK_T_VARCHAR),
  COL("release_version", TDM_MOCK_T_VARCHAR), COL("rpc_address", TDM_MOCK_T_INET),
  COL("rpc_port", TDM_MOCK_T_INT),         COL("schema_version", TDM_MOCK_T_UUID),
  SET_TEXT("tokens"),
  { .name = { "truncated_at", 12 },
    .type = { .opt = { 0, TDM_MOCK_T_MAP, 0, TDM_MOCK_T_UUID, 0, TDM_MOCK_T_BLOB }, .opt_len = 6,
              .id = TDM_MOCK_T_MAP, .key = TDM_MOCK_T_UUID, .val = TDM_MOCK_T_BLOB } },
};

static const tdm_mock_col_t peers_cols[] = {
  COL("peer", TDM_MOCK_T_INET),            COL("data_center", TDM_MOCK_T_VARCHAR),
  COL("host_id", TDM_MOCK_T_UUID),         COL("preferred_ip", TDM_MOCK_T_INET),
  COL("rack", TDM_MOCK_T_VARCHAR),         COL("release_version", TDM_MOCK_T_VARCHAR),
  COL("rpc_address", TDM_MOCK_T_INET),     COL("schema_version", TDM_MOCK_T_UUID),
  SET_TEXT("tokens"),
};

static const tdm_mock_col_t peers_v2_cols[] = {
  COL("peer", TDM_MOCK_T_INET),            COL("peer_port", TDM_MOCK_T_INT),
  COL("data_center", TDM_MOCK_T_VARCHAR),  COL("host_id", TDM_MOCK_T_UUID),
  COL("native_address", TDM_MOCK_T_INET),  COL("native_port", TDM_MOCK_T_INT),
  COL("preferred_ip", TDM_MOCK_T_INET),    COL("preferred_port", TDM_MOCK_T_INT),
  COL("rack", TDM_MOCK_T_VARCHAR),         COL("release_version", TDM_MOCK_T_VARCHAR),
  COL("schema_version", TDM_MOCK_T_UUID),  SET_TEXT("tokens"),
};

#define MAX_COLS TDM_ARRAY_SIZE(local_cols)

tdm_mock_systable_t tdm_mock_systable_find(const char *ks, const char *table)
{
  if (strcmp(ks, "system") != 0) return TDM_MOCK_SYS_NONE;
  if (strcmp(table, "local") == 0) return TDM_MOCK_SYS_LOCAL;
  if (strcmp(table, "peers") == 0) return TDM_MOCK_SYS_PEERS;
  if (strcmp(table, "peers_v2") == 0) return TDM_MOCK_SYS_PEERS_V2;
  return TDM_MOCK_SYS_NONE;
}

const tdm_mock_col_t *tdm_mock_systable_columns(tdm_mock_systable_t t, size_t *n)
{
  switch (t) {
  case TDM_MOCK_SYS_LOCAL: *n = TDM_ARRAY_SIZE(local_cols); return local_cols;
  case TDM_MOCK_SYS_PEERS: *n = TDM_ARRAY_SIZE(peers_cols); return peers_cols;
  case TDM_MOCK_SYS_PEERS_V2: *n = TDM_ARRAY_SIZE(peers_v2_cols); return peers_v2_cols;
  default: *n = 0; return NULL;
  }
}

int tdm_mock_systable_col(tdm_mock_systable_t t, const char *name)
{
  size_t n;
  const tdm_mock_col_t *cols = tdm_mock_systable_columns(t, &n);
  for (size_t i = 0; i < n; i++)
    if (tdm_str_eq_cstr(cols[i].name, name)) return (int)i;
  return -1;
}

size_t tdm_mock_systable_pk(tdm_mock_systable_t t) { (void)t; return 0; }

/* Serialized cell of column `name` for node n as seen from connection c; false for null. */
static bool cell(tdm_mock_conn_t *c, const tdm_mock_node_t *n, tdm_str_t name, tdm_writer_t *w)
{
  const tdm_mock_t *mock = c->mock;
  const tdm_mock_opts_t *o = &mock->opts;
  char buf[64];
  if (tdm_str_eq_cstr(name, "key")) tdm_writer_raw(w, "local", 5);
  else if (tdm_str_eq_cstr(name, "bootstrapped")) tdm_writer_raw(w, "COMPLETED", 9);
  else if (tdm_str_eq_cstr(name, "broadcast_address") || tdm_str_eq_cstr(name, "listen_address") ||
           tdm_str_eq_cstr(name, "rpc_address") || tdm_str_eq_cstr(name, "peer") ||
           tdm_str_eq_cstr(name, "native_address"))
    tdm_writer_raw(w, n->inet, n->inet_len);
  else if (tdm_str_eq_cstr(name, "broadcast_port") || tdm_str_eq_cstr(name, "listen_port") ||
           tdm_str_eq_cstr(name, "peer_port"))
    tdm_writer_int(w, 7000);
  else if (tdm_str_eq_cstr(name, "rpc_port") || tdm_str_eq_cstr(name, "native_port")) tdm_writer_int(w, n->port);
  else if (tdm_str_eq_cstr(name, "cluster_name")) tdm_writer_raw(w, o->cluster_name, strlen(o->cluster_name));
  else if (tdm_str_eq_cstr(name, "cql_version")) tdm_writer_raw(w, o->cql_version, strlen(o->cql_version));
  else if (tdm_str_eq_cstr(name, "data_center")) tdm_writer_raw(w, o->dc, strlen(o->dc));
  else if (tdm_str_eq_cstr(name, "rack")) tdm_writer_raw(w, o->rack, strlen(o->rack));
  else if (tdm_str_eq_cstr(name, "release_version"))
    tdm_writer_raw(w, o->release_version, strlen(o->release_version));
  else if (tdm_str_eq_cstr(name, "gossip_generation")) tdm_writer_int(w, mock->gossip_generation);
  else if (tdm_str_eq_cstr(name, "host_id")) tdm_writer_raw(w, n->host_id, 16);
  else if (tdm_str_eq_cstr(name, "schema_version")) tdm_writer_raw(w, mock->schema_version, 16);
  else if (tdm_str_eq_cstr(name, "partitioner"))
    tdm_writer_raw(w, "org.apache.cassandra.dht.Murmur3Partitioner", 43);
  else if (tdm_str_eq_cstr(name, "native_protocol_version")) {
    int len = snprintf(buf, sizeof(buf), "%u", c->version);
    tdm_writer_raw(w, buf, (size_t)len);
  } else if (tdm_str_eq_cstr(name, "tokens")) {
    int len = snprintf(buf, sizeof(buf), "%" PRId64, n->token);
    tdm_writer_int(w, 1);
    tdm_writer_int(w, len);
    tdm_writer_raw(w, buf, (size_t)len);
  } else {
    return false; /* preferred_ip, preferred_port, truncated_at: null */
  }
  return true;
}

/* One row for node n: every column's cell, checked against conds, then the projection. */
static bool emit_row(tdm_mock_conn_t *c, const tdm_mock_node_t *n, tdm_mock_systable_t t, const size_t *idx,
                     size_t n_idx, const tdm_mock_cond_t *conds, size_t n_conds, tdm_response_rows_builder_t *b)
{
  size_t ncols;
  const tdm_mock_col_t *cols = tdm_mock_systable_columns(t, &ncols);
  uint8_t scratch[2048];
  tdm_writer_t w;
  size_t off[MAX_COLS];
  int32_t len[MAX_COLS];
  tdm_writer_init_fixed(&w, scratch, sizeof(scratch));
  for (size_t i = 0; i < ncols; i++) {
    off[i] = w.len;
    len[i] = cell(c, n, cols[i].name, &w) ? (int32_t)(w.len - off[i]) : -1;
  }
  if (tdm_writer_error(&w)) return false;
  for (size_t k = 0; k < n_conds; k++) {
    size_t i = conds[k].col;
    tdm_bytes_t v = conds[k].value;
    if (i >= ncols) return false;
    if (len[i] < 0 || v.len < 0) {
      if (!(len[i] < 0 && v.len < 0)) return false;
    } else if (len[i] != v.len || memcmp(scratch + off[i], v.ptr, (size_t)len[i]) != 0) {
      return false;
    }
  }
  for (size_t k = 0; k < n_idx; k++) {
    size_t i = idx[k];
    if (i < ncols && len[i] >= 0) tdm_response_rows_cell(b, scratch + off[i], len[i]);
    else tdm_response_rows_cell_null(b);
  }
  return true;
}

int32_t tdm_mock_systable_rows(tdm_mock_conn_t *c, tdm_mock_systable_t t, const size_t *idx, size_t n,
                               const tdm_mock_cond_t *conds, size_t n_conds, tdm_response_rows_builder_t *b)
{
  int32_t rows = 0;
  tdm_mock_t *mock = c->mock;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    const tdm_mock_node_t *node = &mock->nodes[i];
    bool self = node == c->node;
    if ((t == TDM_MOCK_SYS_LOCAL) != self) continue;
    if (emit_row(c, node, t, idx, n, conds, n_conds, b)) rows++;
  }
  return rows;
}
