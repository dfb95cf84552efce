/* What the control connection learns from system.local and system.peers(_v2), turned into topology
 * snapshots: rows are copied cell by cell (the raw local row feeds the virtual tables), nodes get their
 * native address (native_address/native_port, else rpc_address + the configured port; the control
 * node is the address it connected to), DC, rack, host id and release version; the local DC is
 * {c}_local_datacenter or the control node's. Refreshes on events re-query peers or schema_version and
 * publish only what changed. */
#include <arpa/inet.h>
#include <tandem/obs/log.h>
#include "internal.h"

/* ---- rows ---- */

static void row_free(tdm_column_t *cols, size_t n)
{
  if (!cols) return;
  for (size_t i = 0; i < n; i++) {
    free(cols[i].name);
    free(cols[i].type);
    free(cols[i].value);
  }
  free(cols);
}

void tdm__rows_free(tdm__rows_t *rows)
{
  for (size_t i = 0; i < rows->n; i++) row_free(rows->rows[i], rows->ncols);
  free(rows->rows);
  memset(rows, 0, sizeof(*rows));
}

int tdm__rows_parse(uint8_t version, const tdm_response_t *r, tdm__rows_t *out)
{
  (void)version;
  memset(out, 0, sizeof(*out));
  if (r->opcode != TDM_OP_RESULT || r->result.kind != TDM_RESULT_ROWS) return TDM_EINVAL;
  const tdm_response_rows_t *rows = &r->result.rows;
  const tdm_response_metadata_t *m = &rows->metadata;
  if ((m->flags & TDM_RFLAG_NO_METADATA) || m->columns_count < 0 || rows->rows_count < 0) return TDM_EPROTO_MALFORMED;
  size_t nc = (size_t)m->columns_count, nr = (size_t)rows->rows_count;
  tdm_response_column_t *specs = nc ? calloc(nc, sizeof(*specs)) : NULL;
  if (nc && !specs) return TDM_ENOMEM;
  size_t pos = 0;
  for (size_t i = 0; i < nc; i++) {
    if (tdm_response_column_next(m, &pos, &specs[i]) != 1) {
      free(specs);
      return TDM_EPROTO_MALFORMED;
    }
  }
  int rc = 0;
  out->ncols = nc;
  out->rows = nr ? calloc(nr, sizeof(*out->rows)) : NULL;
  if (nr && !out->rows) rc = TDM_ENOMEM;
  tdm_response_rows_iter_t it;
  tdm_response_rows_iter_init(&it, rows);
  for (size_t i = 0; rc == 0 && i < nr; i++) {
    if (tdm_response_rows_next_row(&it) != 1) {
      rc = TDM_EPROTO_MALFORMED;
      break;
    }
    tdm_column_t *cols = calloc(nc ? nc : 1, sizeof(*cols));
    if (!cols) {
      rc = TDM_ENOMEM;
      break;
    }
    out->rows[i] = cols;
    out->n = i + 1;
    for (size_t k = 0; k < nc; k++) {
      tdm_bytes_t cell;
      if (tdm_response_rows_next_cell(&it, &cell) != 1) {
        rc = TDM_EPROTO_MALFORMED;
        break;
      }
      tdm_column_t *col = &cols[k];
      col->name = strndup(specs[k].name.ptr ? specs[k].name.ptr : "", specs[k].name.len);
      col->type = malloc(specs[k].type.len ? specs[k].type.len : 1);
      col->type_len = specs[k].type.len;
      col->value_len = cell.len < 0 ? -1 : cell.len;
      col->value = cell.len >= 0 ? malloc(cell.len ? (size_t)cell.len : 1) : NULL;
      if (!col->name || !col->type || (cell.len >= 0 && !col->value)) {
        rc = TDM_ENOMEM;
        break;
      }
      if (specs[k].type.len) memcpy(col->type, specs[k].type.raw, specs[k].type.len);
      if (cell.len > 0) memcpy(col->value, cell.ptr, (size_t)cell.len);
    }
  }
  free(specs);
  if (rc < 0) tdm__rows_free(out);
  return rc;
}

const tdm_column_t *tdm__rows_col(const tdm__rows_t *rows, size_t row, const char *name)
{
  if (row >= rows->n) return NULL;
  for (size_t i = 0; i < rows->ncols; i++)
    if (rows->rows[row][i].name && strcmp(rows->rows[row][i].name, name) == 0) return &rows->rows[row][i];
  return NULL;
}

void tdm__cell_text(const tdm_column_t *col, char *buf, size_t cap)
{
  if (!cap) return;
  buf[0] = '\0';
  if (!col || !col->value || col->value_len <= 0) return;
  size_t n = TDM_MIN((size_t)col->value_len, cap - 1);
  memcpy(buf, col->value, n);
  buf[n] = '\0';
}

void tdm__cell_uuid(const tdm_column_t *col, char *buf, size_t cap)
{
  if (!cap) return;
  buf[0] = '\0';
  if (!col || !col->value || col->value_len != 16 || cap < 37) return;
  const uint8_t *u = col->value;
  snprintf(buf, cap, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
           u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* An inet cell as numeric text; false when null or not an address. */
static bool cell_inet(const tdm_column_t *col, char *buf, size_t cap)
{
  if (!col || !col->value || (col->value_len != 4 && col->value_len != 16)) return false;
  return inet_ntop(col->value_len == 4 ? AF_INET : AF_INET6, col->value, buf, (socklen_t)cap) != NULL;
}

static bool cell_int(const tdm_column_t *col, int32_t *out)
{
  if (!col || !col->value || col->value_len != 4) return false;
  const uint8_t *p = col->value;
  *out = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
  return true;
}

static bool wildcard(const char *host) { return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0; }

int tdm__peer_address(const tdm__rows_t *rows, size_t row, uint16_t default_port, char *host, size_t cap,
                      uint16_t *port)
{
  int32_t p;
  if (cell_inet(tdm__rows_col(rows, row, "native_address"), host, cap)) {
    *port = cell_int(tdm__rows_col(rows, row, "native_port"), &p) && p > 0 && p < 65536 ? (uint16_t)p : default_port;
    return 0;
  }
  if (cell_inet(tdm__rows_col(rows, row, "rpc_address"), host, cap) && !wildcard(host)) {
    *port = default_port;
    return 0;
  }
  if (cell_inet(tdm__rows_col(rows, row, "peer"), host, cap)) {
    *port = default_port;
    return 0;
  }
  return TDM_ENOTFOUND;
}

/* ---- snapshots ---- */

static void node_fields(tdm_node_t *n, const tdm__rows_t *rows, size_t row)
{
  tdm__cell_text(tdm__rows_col(rows, row, "data_center"), n->dc, sizeof(n->dc));
  tdm__cell_text(tdm__rows_col(rows, row, "rack"), n->rack, sizeof(n->rack));
  tdm__cell_text(tdm__rows_col(rows, row, "release_version"), n->release_version, sizeof(n->release_version));
  const tdm_column_t *id = tdm__rows_col(rows, row, "host_id");
  if (id && id->value && id->value_len == 16) memcpy(n->host_id, id->value, 16);
}

static void node_address(tdm_node_t *n, const char *host, uint16_t port)
{
  snprintf(n->host, sizeof(n->host), "%s", host);
  n->port = port;
  tdm_sockaddr_t sa;
  if (tdm_sockaddr_parse_ip(host, port, &sa) == 0) {
    memcpy(&n->addr, &sa.ss, sizeof(n->addr));
    n->addr_len = tdm_sockaddr_len(&sa);
  }
}

int tdm__ctl_build(tdm_control_t *c, const tdm__rows_t *peers, bool peers_v2, tdm_topology_t **out)
{
  *out = NULL;
  tdm_topology_t *t = NULL;
  int rc;
  if (c->local.n == 0) {
    /* nothing discovered on this connection yet: the last view with the current flags */
    rc = tdm_topology_clone(c->topo, &t);
    if (rc < 0) return rc;
  } else {
    rc = tdm_topology_new(c->cluster, &t);
    if (rc < 0) return rc;
    const tdm__rows_t *local = &c->local;
    tdm__cell_text(tdm__rows_col(local, 0, "cluster_name"), t->cluster_name, sizeof(t->cluster_name));
    tdm__cell_text(tdm__rows_col(local, 0, "partitioner"), t->partitioner, sizeof(t->partitioner));
    tdm__cell_uuid(tdm__rows_col(local, 0, "schema_version"), t->schema_version, sizeof(t->schema_version));
    t->has_peers_v2 = peers_v2;
    rc = tdm_topology_columns_copy(local->rows[0], local->ncols, &t->local_row);
    if (rc < 0) goto fail;
    t->n_local_row = local->ncols;
    size_t cap = 1 + peers->n;
    t->nodes = calloc(cap, sizeof(*t->nodes));
    t->peer_rows = calloc(cap, sizeof(*t->peer_rows));
    t->n_peer_row = calloc(cap, sizeof(*t->n_peer_row));
    if (!t->nodes || !t->peer_rows || !t->n_peer_row) {
      rc = TDM_ENOMEM;
      goto fail;
    }
    char host[64];
    tdm_sockaddr_t sa = c->addr;
    if (sa.sa.sa_family == AF_INET6)
      inet_ntop(AF_INET6, &sa.in6.sin6_addr, host, sizeof(host));
    else
      inet_ntop(AF_INET, &sa.in4.sin_addr, host, sizeof(host));
    node_address(&t->nodes[0], host, tdm_sockaddr_port(&sa));
    node_fields(&t->nodes[0], local, 0);
    t->n_nodes = 1;
    uint16_t def_port = (uint16_t)c->conf->cluster[c->cluster].port;
    for (size_t i = 0; i < peers->n; i++) {
      uint16_t port;
      if (tdm__peer_address(peers, i, def_port, host, sizeof(host), &port) < 0) continue;
      if (tdm_topology_find_node(t, host, port) >= 0) continue;
      tdm_node_t *n = &t->nodes[t->n_nodes];
      node_address(n, host, port);
      node_fields(n, peers, i);
      rc = tdm_topology_columns_copy(peers->rows[i], peers->ncols, &t->peer_rows[t->n_nodes]);
      if (rc < 0) goto fail;
      t->n_peer_row[t->n_nodes] = peers->ncols;
      t->n_nodes++;
    }
    const char *dc = c->conf->cluster[c->cluster].local_datacenter;
    if (!dc || !dc[0]) dc = t->nodes[0].dc;
    for (size_t i = 0; i < t->n_nodes; i++) {
      t->nodes[i].local_dc = strcmp(t->nodes[i].dc, dc) == 0;
      /* STATUS_CHANGE states carry over between snapshots of one connection */
      int prev = c->reset_states ? -1 : tdm_topology_find_node(c->topo, t->nodes[i].host, t->nodes[i].port);
      t->nodes[i].state = prev >= 0 ? c->topo->nodes[prev].state : TDM_NODE_UP;
    }
  }
  t->up = c->up;
  t->versions_accepted = c->accepted ? c->accepted : t->versions_accepted;
  t->versions_refused = c->refused;
  snprintf(t->compression, sizeof(t->compression), "%s", c->compression);
  snprintf(t->cql_version, sizeof(t->cql_version), "%s", c->cql_version);
  t->auth_required = c->auth_required;
  snprintf(t->authenticator, sizeof(t->authenticator), "%s", c->authenticator);
  *out = t;
  return 0;
fail:
  tdm_topology_unref(t);
  return rc;
}

void tdm__ctl_publish(tdm_control_t *c)
{
  tdm_topology_t *t = NULL;
  int rc = tdm__ctl_build(c, &c->peers, c->peers_v2, &t);
  if (rc < 0) {
    tdm_log_error(NULL, "%s topology snapshot not built: %s", tdm__cluster_name(c->cluster), tdm_strerror(rc));
    return;
  }
  c->reset_states = false;
  t->generation = ++c->generation;
  tdm_topology_unref(c->topo);
  c->topo = t;
  if (c->cb.on_topology) c->cb.on_topology(c->cb.arg, c->cluster, t);
}

/* ---- refreshes ---- */

static void on_refresh_peers(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  c->peers_inflight = false;
  if (err < 0 || !r) return;
  tdm__rows_t rows = { 0 };
  if (tdm__rows_parse(c->version, r, &rows) == 0) {
    tdm__rows_free(&c->peers);
    c->peers = rows;
    tdm__ctl_publish(c);
  }
  if (c->peers_again) {
    c->peers_again = false;
    tdm__ctl_refresh_peers(c);
  }
}

void tdm__ctl_refresh_peers(tdm_control_t *c)
{
  if (!c->up) return;
  if (c->peers_inflight) {
    c->peers_again = true;
    return;
  }
  int rc = tdm__ctl_query(c, c->peers_v2 ? "SELECT * FROM system.peers_v2" : "SELECT * FROM system.peers",
                          on_refresh_peers);
  if (rc == 0) c->peers_inflight = true;
}

/* Replaces the schema_version cell of the local row; true when it changed. */
static bool set_local_schema(tdm_control_t *c, const tdm_column_t *v)
{
  tdm_column_t *col = (tdm_column_t *)tdm__rows_col(&c->local, 0, "schema_version");
  if (!col || !v || !v->value || v->value_len != 16) return false;
  if (col->value && col->value_len == 16 && memcmp(col->value, v->value, 16) == 0) return false;
  uint8_t *copy = malloc(16);
  if (!copy) return false;
  memcpy(copy, v->value, 16);
  free(col->value);
  col->value = copy;
  col->value_len = 16;
  return true;
}

bool tdm__ctl_note_schema(tdm_control_t *c, const tdm_column_t *v)
{
  if (!set_local_schema(c, v)) return false;
  tdm__ctl_publish(c);
  tdm_log_debug(NULL, "%s schema version now %s", tdm__cluster_name(c->cluster), c->topo->schema_version);
  return true;
}

static void on_refresh_schema(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  c->schema_inflight = false;
  tdm__rows_t rows = { 0 };
  if (err == 0 && r && tdm__rows_parse(c->version, r, &rows) == 0 && rows.n == 1)
    (void)tdm__ctl_note_schema(c, tdm__rows_col(&rows, 0, "schema_version"));
  tdm__rows_free(&rows);
  if (c->schema_again) {
    c->schema_again = false;
    tdm__ctl_refresh_schema(c);
  }
}

void tdm__ctl_refresh_schema(tdm_control_t *c)
{
  if (!c->up) return;
  if (c->schema_inflight) {
    c->schema_again = true;
    return;
  }
  int rc = tdm__ctl_query(c, "SELECT schema_version FROM system.local WHERE key='local'", on_refresh_schema);
  if (rc == 0) c->schema_inflight = true;
}
