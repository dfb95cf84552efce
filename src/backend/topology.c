/* Topology snapshots: creation, deep copy, reference counting and lookups. A snapshot is built by the
 * control connection on the main thread and then only read, by any thread, until its last reference
 * goes; the refcount is the only field touched after publication (atomically). */
#include <tandem/backend/topology.h>
#include <tandem/conf/conf.h>

tdm_topology_t *tdm_topology_ref(tdm_topology_t *t)
{
  if (t) atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  return t;
}

static void columns_free(tdm_column_t *cols, size_t n)
{
  if (!cols) return;
  for (size_t i = 0; i < n; i++) {
    free(cols[i].name);
    free(cols[i].type);
    free(cols[i].value);
  }
  free(cols);
}

static void topology_free(tdm_topology_t *t)
{
  columns_free(t->local_row, t->n_local_row);
  if (t->peer_rows) {
    for (size_t i = 0; i < t->n_nodes; i++) columns_free(t->peer_rows[i], t->n_peer_row ? t->n_peer_row[i] : 0);
  }
  free(t->peer_rows);
  free(t->n_peer_row);
  free(t->nodes);
  free(t);
}

void tdm_topology_unref(tdm_topology_t *t)
{
  if (!t) return;
  /* acq_rel: the last holder must see every write made before the others let go */
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) topology_free(t);
}

int tdm_topology_new(int cluster, tdm_topology_t **out)
{
  *out = NULL;
  tdm_topology_t *t = calloc(1, sizeof(*t));
  if (!t) return TDM_ENOMEM;
  atomic_init(&t->refs, 1);
  t->cluster = cluster;
  *out = t;
  return 0;
}

static void *dup_bytes(const void *p, size_t n)
{
  void *q = malloc(n ? n : 1);
  if (q && n) memcpy(q, p, n);
  return q;
}

int tdm_topology_columns_copy(const tdm_column_t *src, size_t n, tdm_column_t **out)
{
  *out = NULL;
  if (n == 0) return 0;
  tdm_column_t *cols = calloc(n, sizeof(*cols));
  if (!cols) return TDM_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const tdm_column_t *s = &src[i];
    tdm_column_t *d = &cols[i];
    d->name = dup_bytes(s->name, strlen(s->name) + 1);
    d->type = dup_bytes(s->type, s->type_len);
    d->type_len = s->type_len;
    d->value_len = s->value_len;
    d->value = s->value ? dup_bytes(s->value, s->value_len > 0 ? (size_t)s->value_len : 0) : NULL;
    if (!d->name || !d->type || (s->value && !d->value)) {
      columns_free(cols, i + 1);
      return TDM_ENOMEM;
    }
  }
  *out = cols;
  return 0;
}

int tdm_topology_clone(const tdm_topology_t *t, tdm_topology_t **out)
{
  *out = NULL;
  tdm_topology_t *c = malloc(sizeof(*c));
  if (!c) return TDM_ENOMEM;
  memcpy(c, t, sizeof(*c));
  atomic_init(&c->refs, 1);
  c->nodes = NULL;
  c->local_row = NULL;
  c->n_local_row = 0;
  c->peer_rows = NULL;
  c->n_peer_row = NULL;
  c->n_nodes = 0;
  if (t->n_nodes) {
    c->nodes = dup_bytes(t->nodes, t->n_nodes * sizeof(*t->nodes));
    if (!c->nodes) goto fail;
  }
  c->n_nodes = t->n_nodes;
  if (tdm_topology_columns_copy(t->local_row, t->n_local_row, &c->local_row) < 0) goto fail;
  c->n_local_row = t->n_local_row;
  if (t->peer_rows && t->n_nodes) {
    c->peer_rows = calloc(t->n_nodes, sizeof(*c->peer_rows));
    c->n_peer_row = calloc(t->n_nodes, sizeof(*c->n_peer_row));
    if (!c->peer_rows || !c->n_peer_row) goto fail;
    for (size_t i = 0; i < t->n_nodes; i++) {
      size_t n = t->n_peer_row ? t->n_peer_row[i] : 0;
      if (tdm_topology_columns_copy(t->peer_rows[i], n, &c->peer_rows[i]) < 0) goto fail;
      c->n_peer_row[i] = n;
    }
  }
  *out = c;
  return 0;
fail:
  topology_free(c);
  return TDM_ENOMEM;
}

const tdm_column_t *tdm_topology_local_column(const tdm_topology_t *t, const char *name)
{
  if (!t || !name) return NULL;
  for (size_t i = 0; i < t->n_local_row; i++) {
    if (strcmp(t->local_row[i].name, name) == 0) return &t->local_row[i];
  }
  return NULL;
}

const tdm_column_t *tdm_topology_peer_column(const tdm_topology_t *t, size_t node, const char *name)
{
  if (!t || !name || node >= t->n_nodes || !t->peer_rows || !t->n_peer_row) return NULL;
  for (size_t i = 0; i < t->n_peer_row[node]; i++) {
    if (strcmp(t->peer_rows[node][i].name, name) == 0) return &t->peer_rows[node][i];
  }
  return NULL;
}

int tdm_topology_find_node(const tdm_topology_t *t, const char *host, uint16_t port)
{
  if (!t || !host) return -1;
  for (size_t i = 0; i < t->n_nodes; i++) {
    if (t->nodes[i].port == port && strcmp(t->nodes[i].host, host) == 0) return (int)i;
  }
  return -1;
}

size_t tdm_topology_format_versions(unsigned bits, char *buf, size_t cap)
{
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {
    { TDM_CONF_PV_V2, "v2" },         { TDM_CONF_PV_V3, "v3" },         { TDM_CONF_PV_V4, "v4" },
    { TDM_CONF_PV_V5, "v5" },         { TDM_CONF_PV_DSE_V1, "DSE_V1" }, { TDM_CONF_PV_DSE_V2, "DSE_V2" },
  };
  size_t len = 0;
  if (cap) buf[0] = '\0';
  for (size_t i = 0; i < TDM_ARRAY_SIZE(names); i++) {
    if (!(bits & names[i].bit)) continue;
    char *at = len < cap ? buf + len : NULL;
    int n = snprintf(at, at ? cap - len : 0, "%s%s", len ? " " : "", names[i].name);
    if (n > 0) len += (size_t)n;
  }
  return len;
}
