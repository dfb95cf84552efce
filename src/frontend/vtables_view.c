/* The virtual tables' data model (behaviour.md §9.2, §9.3): each table's columns (the real table's,
 * from the system_queries_mode cluster's control node, or Cassandra 4's built-in schema for a table the
 * cluster did not show, plus vendor columns such as DSE's), the instance list (this instance alone or
 * proxy_topology_addresses), each instance's paired real node (i mod H of the local-DC nodes sorted by
 * rack, then host_id), and every cell: tandem's values for addresses, ports, host id, tokens, rack,
 * data_center, partitioner, schema_version, protocol version, key and bootstrapped; anything else is
 * copied from the paired node when its type matches the column's. */
#include <arpa/inet.h>

#include <tandem/frontend/vtables.h>
#include <tandem/proto/cqltype.h>
#include <tandem/proto/response.h>

#include "internal.h"

/* [option] bytes of the types tandem writes itself. */
static const uint8_t T_TEXT[] = { 0x00, 0x0D };
static const uint8_t T_INET[] = { 0x00, 0x10 };
static const uint8_t T_INT[] = { 0x00, 0x09 };
static const uint8_t T_UUID[] = { 0x00, 0x0C };
static const uint8_t T_SET_TEXT[] = { 0x00, 0x22, 0x00, 0x0D };
static const uint8_t T_MAP_UUID_BLOB[] = { 0x00, 0x21, 0x00, 0x0C, 0x00, 0x03 };

typedef struct builtin_s {
  const char *name;     /* column */
  const uint8_t *type;  /* [option] */
  size_t type_len;      /* bytes */
} builtin_t;

#define B(n, t) { n, t, sizeof(t) }
static const builtin_t k_local[] = {
  B("key", T_TEXT), B("bootstrapped", T_TEXT), B("broadcast_address", T_INET), B("broadcast_port", T_INT),
  B("cluster_name", T_TEXT), B("cql_version", T_TEXT), B("data_center", T_TEXT), B("gossip_generation", T_INT),
  B("host_id", T_UUID), B("listen_address", T_INET), B("listen_port", T_INT), B("native_protocol_version", T_TEXT),
  B("partitioner", T_TEXT), B("rack", T_TEXT), B("release_version", T_TEXT), B("rpc_address", T_INET),
  B("rpc_port", T_INT), B("schema_version", T_UUID), B("tokens", T_SET_TEXT), B("truncated_at", T_MAP_UUID_BLOB),
};
static const builtin_t k_peers[] = {
  B("peer", T_INET), B("data_center", T_TEXT), B("host_id", T_UUID), B("preferred_ip", T_INET), B("rack", T_TEXT),
  B("release_version", T_TEXT), B("rpc_address", T_INET), B("schema_version", T_UUID), B("tokens", T_SET_TEXT),
};
static const builtin_t k_peers_v2[] = {
  B("peer", T_INET), B("peer_port", T_INT), B("data_center", T_TEXT), B("host_id", T_UUID),
  B("native_address", T_INET), B("native_port", T_INT), B("preferred_ip", T_INET), B("preferred_port", T_INT),
  B("rack", T_TEXT), B("release_version", T_TEXT), B("schema_version", T_UUID), B("tokens", T_SET_TEXT),
};
#undef B

/* ---- schema ---- */

static bool add_col(tdm__vview_t *v, tdm_str_t name, const uint8_t *type, size_t type_len)
{
  for (size_t i = 0; i < v->ncols; i++)
    if (tdm_str_eq(v->cols[i].name, name)) return true;
  if (v->ncols == TDM__VT_MAX_COLUMNS) return false;
  v->cols[v->ncols++] = (tdm__vcol_t){ name, type, type_len };
  return true;
}

static void add_builtin(tdm__vview_t *v, const builtin_t *b, size_t n)
{
  for (size_t i = 0; i < n; i++) add_col(v, tdm_str_from(b[i].name), b[i].type, b[i].type_len);
}

static bool in_builtin(const builtin_t *b, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(b[i].name, name) == 0) return true;
  return false;
}

/* The first real peers row the snapshot has, or NULL. */
static const tdm_column_t *first_peer_row(const tdm_topology_t *t, size_t *n)
{
  if (!t || !t->peer_rows) return NULL;
  for (size_t k = 1; k < t->n_nodes; k++) {
    if (t->peer_rows[k] && t->n_peer_row && t->n_peer_row[k]) {
      *n = t->n_peer_row[k];
      return t->peer_rows[k];
    }
  }
  return NULL;
}

static bool row_has(const tdm_column_t *row, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(row[i].name, name) == 0) return true;
  return false;
}

/* The columns of v->table: the real ones where the snapshot shows the table, else the built-in schema
 * plus the vendor columns (DSE's dse_version, workload, ...) the real peers rows carry. */
static void build_schema(tdm__vview_t *v)
{
  const tdm_topology_t *t = v->topo;
  if (v->table == TDM_VTABLE_LOCAL) {
    if (t && t->local_row && t->n_local_row) {
      for (size_t i = 0; i < t->n_local_row; i++)
        add_col(v, tdm_str_from(t->local_row[i].name), t->local_row[i].type, t->local_row[i].type_len);
    } else {
      add_builtin(v, k_local, TDM_ARRAY_SIZE(k_local));
    }
    return;
  }
  size_t nrow = 0;
  const tdm_column_t *row = first_peer_row(t, &nrow);
  bool row_is_v2 = row && row_has(row, nrow, "peer_port");
  bool want_v2 = v->table == TDM_VTABLE_PEERS_V2;
  if (row && row_is_v2 == want_v2) {
    for (size_t i = 0; i < nrow; i++) add_col(v, tdm_str_from(row[i].name), row[i].type, row[i].type_len);
    return;
  }
  if (want_v2) add_builtin(v, k_peers_v2, TDM_ARRAY_SIZE(k_peers_v2));
  else add_builtin(v, k_peers, TDM_ARRAY_SIZE(k_peers));
  /* vendor columns of the other variant's rows: everything neither built-in schema names */
  for (size_t i = 0; row && i < nrow; i++) {
    if (in_builtin(k_peers, TDM_ARRAY_SIZE(k_peers), row[i].name) ||
        in_builtin(k_peers_v2, TDM_ARRAY_SIZE(k_peers_v2), row[i].name))
      continue;
    add_col(v, tdm_str_from(row[i].name), row[i].type, row[i].type_len);
  }
}

const tdm__vcol_t *tdm__vview_col(const tdm__vview_t *v, tdm_cql_name_t name)
{
  for (size_t i = 0; i < v->ncols; i++)
    if (tdm_cql_name_eq(name, v->cols[i].name)) return &v->cols[i];
  return NULL;
}

/* ---- instances and pairing ---- */

static void inst_from_sockaddr(const tdm_sockaddr_t *a, tdm__vinst_t *out)
{
  memset(out, 0, sizeof(*out));
  if (a->sa.sa_family == AF_INET6) {
    const uint8_t *b = a->in6.sin6_addr.s6_addr;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(b, mapped, 12) == 0) {
      memcpy(out->addr, b + 12, 4); /* an IPv4 client on a dual-stack socket */
      out->addr_len = 4;
    } else {
      memcpy(out->addr, b, 16);
      out->addr_len = 16;
    }
  } else if (a->sa.sa_family == AF_INET) {
    memcpy(out->addr, &a->in4.sin_addr, 4);
    out->addr_len = 4;
  }
  out->port = tdm_sockaddr_port(a);
}

typedef struct pair_s {
  size_t node;            /* index in topology nodes */
  const tdm_node_t *n;    /* the node */
} pair_t;

static int cmp_pair(const void *a, const void *b)
{
  const tdm_node_t *x = ((const pair_t *)a)->n, *y = ((const pair_t *)b)->n;
  int c = strcmp(x->rack, y->rack);
  if (c) return c;
  return memcmp(x->host_id, y->host_id, 16);
}

/* Instance i pairs with node (i mod H) of the H local-DC nodes sorted by rack, then host_id. */
static void pair_instances(tdm__vview_t *v)
{
  for (uint32_t i = 0; i < v->n && i < TDM__VT_MAX_INSTANCES; i++) v->paired[i] = SIZE_MAX;
  const tdm_topology_t *t = v->topo;
  if (!t || !t->nodes || !t->n_nodes) return;
  pair_t *p = calloc(t->n_nodes, sizeof(*p));
  if (!p) return;
  size_t h = 0;
  for (size_t k = 0; k < t->n_nodes; k++)
    if (t->nodes[k].local_dc) p[h++] = (pair_t){ k, &t->nodes[k] };
  if (h == 0) { /* no DC marked local: every node counts */
    for (size_t k = 0; k < t->n_nodes; k++) p[h++] = (pair_t){ k, &t->nodes[k] };
  }
  qsort(p, h, sizeof(*p), cmp_pair);
  for (uint32_t i = 0; i < v->n && i < TDM__VT_MAX_INSTANCES; i++) v->paired[i] = p[i % h].node;
  free(p);
}

int tdm__vview_build(tdm__vview_t *v, const tdm_vtables_ctx_t *ctx, tdm_vtable_t table)
{
  memset(v, 0, sizeof(*v));
  v->ctx = ctx;
  v->topo = ctx->topology;
  v->table = table;
  const tdm_conf_t *conf = ctx->conf;
  v->num_tokens = conf && conf->proxy_topology_num_tokens > 0 ? (uint32_t)conf->proxy_topology_num_tokens : 8;
  size_t n = conf ? TDM_MIN(conf->proxy_topology_addresses.n, (size_t)TDM__VT_MAX_INSTANCES) : 0;
  v->n = n ? (uint32_t)n : 1;
  v->insts = calloc(v->n, sizeof(tdm__vinst_t));
  if (!v->insts) return TDM_ENOMEM;
  if (n == 0) {
    inst_from_sockaddr(&ctx->local, &v->insts[0]);
  } else {
    for (size_t i = 0; i < n; i++) {
      const tdm_conf_hostport_t *hp = &conf->proxy_topology_addresses.v[i];
      tdm_sockaddr_t sa;
      uint16_t port = hp->port ? hp->port : (uint16_t)conf->proxy_listen_port;
      if (tdm_sockaddr_parse_ip(hp->host, port, &sa) == 0) inst_from_sockaddr(&sa, &v->insts[i]);
      v->insts[i].port = port;
      v->insts[i].index = (uint32_t)i;
    }
  }
  uint32_t self = n && conf->proxy_topology_index >= 0 && (size_t)conf->proxy_topology_index < n
                      ? (uint32_t)conf->proxy_topology_index
                      : 0;
  v->self = v->insts[self];
  inst_from_sockaddr(&ctx->local, &v->conn);
  pair_instances(v);
  build_schema(v);
  return 0;
}

void tdm__vview_free(tdm__vview_t *v) { free(v->insts); }

/* ---- cells ---- */

/* The paired node's value of `name`: its peers row, else the control node's local row. */
static const tdm_column_t *paired_value(const tdm__vview_t *v, const tdm__vinst_t *inst, const char *name)
{
  const tdm_topology_t *t = v->topo;
  if (!t) return NULL;
  size_t k = inst->index < TDM__VT_MAX_INSTANCES ? v->paired[inst->index] : SIZE_MAX;
  if (k != SIZE_MAX && k > 0 && t->peer_rows && t->peer_rows[k] && t->n_peer_row) {
    for (size_t i = 0; i < t->n_peer_row[k]; i++)
      if (strcmp(t->peer_rows[k][i].name, name) == 0) return &t->peer_rows[k][i];
  }
  for (size_t i = 0; t->local_row && i < t->n_local_row; i++)
    if (strcmp(t->local_row[i].name, name) == 0) return &t->local_row[i];
  return NULL;
}

static bool type_is(const tdm__vcol_t *c, uint16_t id)
{
  return c->type_len >= 2 && (((uint16_t)c->type[0] << 8) | c->type[1]) == id;
}

static bool type_is_text(const tdm__vcol_t *c)
{
  return type_is(c, TDM_CQLTYPE_VARCHAR) || type_is(c, TDM_CQLTYPE_TEXT) || type_is(c, TDM_CQLTYPE_ASCII);
}

static void cell_text(tdm_response_rows_builder_t *b, const tdm__vcol_t *c, const char *s)
{
  if (type_is_text(c) && s) tdm_response_rows_cell_text(b, tdm_str_from(s));
  else tdm_response_rows_cell_null(b);
}

static void cell_inet(tdm_response_rows_builder_t *b, const tdm__vcol_t *c, const tdm__vinst_t *i)
{
  if (type_is(c, TDM_CQLTYPE_INET) && i->addr_len) tdm_response_rows_cell_inet(b, i->addr, i->addr_len);
  else tdm_response_rows_cell_null(b);
}

static void cell_port(tdm_response_rows_builder_t *b, const tdm__vcol_t *c, uint16_t port)
{
  if (type_is(c, TDM_CQLTYPE_INT)) tdm_response_rows_cell_int(b, port);
  else tdm_response_rows_cell_null(b);
}

static int hexval(char ch)
{
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" -> 16 bytes. */
static bool parse_uuid(const char *s, uint8_t out[16])
{
  size_t k = 0;
  for (size_t i = 0; s[i] && k < 32; i++) {
    if (s[i] == '-') continue;
    int h = hexval(s[i]);
    if (h < 0) return false;
    if (k % 2 == 0) out[k / 2] = (uint8_t)(h << 4);
    else out[k / 2] |= (uint8_t)h;
    k++;
  }
  return k == 32;
}

static int cell_tokens(tdm_response_rows_builder_t *b, const tdm__vcol_t *c, const tdm__vview_t *v, const tdm__vinst_t *i)
{
  if (!(c->type_len == sizeof(T_SET_TEXT) && memcmp(c->type, T_SET_TEXT, sizeof(T_SET_TEXT)) == 0) &&
      !(c->type_len == 4 && c->type[1] == 0x22 && c->type[2] == 0 && (c->type[3] == 0x0A || c->type[3] == 0x01))) {
    tdm_response_rows_cell_null(b);
    return 0;
  }
  char *buf = malloc((size_t)v->num_tokens * 21);
  tdm_str_t *items = calloc(v->num_tokens, sizeof(*items));
  if (!buf || !items) {
    free(buf);
    free(items);
    return TDM_ENOMEM;
  }
  for (uint32_t t = 0; t < v->num_tokens; t++) {
    char *p = buf + (size_t)t * 21;
    int len = snprintf(p, 21, "%lld", (long long)tdm_vtables_token(i->index, v->n, t, v->num_tokens));
    items[t] = (tdm_str_t){ p, (size_t)len };
  }
  tdm_response_rows_cell_text_list(b, items, v->num_tokens);
  free(buf);
  free(items);
  return 0;
}

static void cell_copy(tdm_response_rows_builder_t *b, const tdm__vcol_t *c, const tdm_column_t *src)
{
  /* copied only when the type matches: a cell must decode as the column's declared type */
  if (src && src->type_len == c->type_len && memcmp(src->type, c->type, c->type_len) == 0)
    tdm_response_rows_cell(b, src->value, src->value ? src->value_len : -1);
  else
    tdm_response_rows_cell_null(b);
}

/* The cell of column c for instance i (i is v->self for the local row). */
int tdm__vview_cell(tdm_response_rows_builder_t *b, const tdm__vview_t *v, const tdm__vcol_t *c, const tdm__vinst_t *i)
{
  bool local = v->table == TDM_VTABLE_LOCAL;
  tdm_str_t n = c->name;
  const tdm__vinst_t *conn = &v->conn;
  if (local && tdm_str_eq_cstr(n, "key")) cell_text(b, c, "local");
  else if (local && tdm_str_eq_cstr(n, "bootstrapped")) cell_text(b, c, "COMPLETED");
  else if (local && (tdm_str_eq_cstr(n, "rpc_address") || tdm_str_eq_cstr(n, "broadcast_address") ||
                     tdm_str_eq_cstr(n, "listen_address")))
    cell_inet(b, c, conn);
  else if (local && (tdm_str_eq_cstr(n, "rpc_port") || tdm_str_eq_cstr(n, "native_port")))
    cell_port(b, c, conn->port);
  else if (!local && (tdm_str_eq_cstr(n, "peer") || tdm_str_eq_cstr(n, "preferred_ip") ||
                      tdm_str_eq_cstr(n, "native_address") || tdm_str_eq_cstr(n, "rpc_address")))
    cell_inet(b, c, i);
  else if (!local && (tdm_str_eq_cstr(n, "peer_port") || tdm_str_eq_cstr(n, "native_port") ||
                      tdm_str_eq_cstr(n, "preferred_port") || tdm_str_eq_cstr(n, "rpc_port")))
    cell_port(b, c, i->port);
  else if (tdm_str_eq_cstr(n, "host_id")) {
    if (!type_is(c, TDM_CQLTYPE_UUID)) {
      tdm_response_rows_cell_null(b);
    } else {
      uint8_t id[16];
      tdm_vtables_host_id(i->addr, i->addr_len, id);
      tdm_response_rows_cell_uuid(b, id);
    }
  } else if (tdm_str_eq_cstr(n, "tokens")) {
    return cell_tokens(b, c, v, i);
  } else if (tdm_str_eq_cstr(n, "rack")) {
    cell_text(b, c, "rack0");
  } else if (tdm_str_eq_cstr(n, "data_center")) {
    size_t k = i->index < TDM__VT_MAX_INSTANCES ? v->paired[i->index] : SIZE_MAX;
    if (k != SIZE_MAX && v->topo->nodes[k].dc[0]) cell_text(b, c, v->topo->nodes[k].dc);
    else cell_copy(b, c, paired_value(v, i, "data_center"));
  } else if (local && tdm_str_eq_cstr(n, "partitioner")) {
    cell_text(b, c, "org.apache.cassandra.dht.Murmur3Partitioner");
  } else if (tdm_str_eq_cstr(n, "schema_version")) {
    uint8_t id[16];
    if (type_is(c, TDM_CQLTYPE_UUID) && v->topo && parse_uuid(v->topo->schema_version, id))
      tdm_response_rows_cell_uuid(b, id);
    else
      cell_copy(b, c, paired_value(v, i, "schema_version"));
  } else if (local && tdm_str_eq_cstr(n, "native_protocol_version")) {
    char s[8];
    snprintf(s, sizeof(s), "%u", (unsigned)v->ctx->version);
    cell_text(b, c, s);
  } else {
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)TDM_MIN(n.len, (size_t)127), n.ptr);
    cell_copy(b, c, paired_value(v, i, name));
  }
  return 0;
}

