/* Topology snapshots: creation, deep clone (nothing shared with the original), reference counting
 * (also from several threads at once), column and node lookups, version formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <uv.h>

#include <tandem/backend/topology.h>
#include <tandem/conf/conf.h>

static tdm_column_t column(const char *name, const void *value, int32_t len)
{
  static const uint8_t varchar[2] = { 0x00, 0x0D };
  tdm_column_t c = { 0 };
  c.name = strdup(name);
  c.type = malloc(2);
  memcpy(c.type, varchar, 2);
  c.type_len = 2;
  c.value_len = len;
  if (len >= 0) {
    c.value = malloc(len ? (size_t)len : 1);
    memcpy(c.value, value, (size_t)len);
  }
  return c;
}

/* Two nodes, a two-column local row, a one-column peer row for node 1. */
static tdm_topology_t *sample(void)
{
  tdm_topology_t *t = NULL;
  assert_int_equal(tdm_topology_new(TDM_CONF_TARGET, &t), 0);
  t->n_nodes = 2;
  t->nodes = calloc(2, sizeof(*t->nodes));
  snprintf(t->nodes[0].host, sizeof(t->nodes[0].host), "127.0.0.1");
  t->nodes[0].port = 9042;
  snprintf(t->nodes[0].dc, sizeof(t->nodes[0].dc), "dc1");
  snprintf(t->nodes[1].host, sizeof(t->nodes[1].host), "127.0.0.2");
  t->nodes[1].port = 9043;
  t->nodes[1].state = TDM_NODE_DOWN;
  t->n_local_row = 2;
  t->local_row = calloc(2, sizeof(*t->local_row));
  t->local_row[0] = column("cluster_name", "mock", 4);
  t->local_row[1] = column("dse_version", NULL, -1);
  t->peer_rows = calloc(2, sizeof(*t->peer_rows));
  t->n_peer_row = calloc(2, sizeof(*t->n_peer_row));
  t->peer_rows[1] = calloc(1, sizeof(tdm_column_t));
  t->peer_rows[1][0] = column("rack", "r2", 2);
  t->n_peer_row[1] = 1;
  t->versions_accepted = TDM_CONF_PV_V4 | TDM_CONF_PV_V5;
  snprintf(t->schema_version, sizeof(t->schema_version), "a3e1c2d4-0000-4000-8000-000000000001");
  return t;
}

static void test_new_is_empty(void **state)
{
  (void)state;
  tdm_topology_t *t = NULL;
  assert_int_equal(tdm_topology_new(TDM_CONF_ORIGIN, &t), 0);
  assert_non_null(t);
  assert_int_equal(atomic_load(&t->refs), 1);
  assert_int_equal(t->cluster, TDM_CONF_ORIGIN);
  assert_int_equal(t->n_nodes, 0);
  assert_null(t->nodes);
  assert_false(t->up);
  assert_null(tdm_topology_local_column(t, "cluster_name"));
  assert_int_equal(tdm_topology_find_node(t, "127.0.0.1", 9042), -1);
  tdm_topology_unref(t);
}

static void test_clone_is_deep(void **state)
{
  (void)state;
  tdm_topology_t *t = sample();
  tdm_topology_t *c = NULL;
  assert_int_equal(tdm_topology_clone(t, &c), 0);
  assert_int_equal(atomic_load(&c->refs), 1);
  assert_int_equal(c->cluster, TDM_CONF_TARGET);
  assert_int_equal(c->n_nodes, 2);
  assert_ptr_not_equal(c->nodes, t->nodes);
  assert_string_equal(c->nodes[1].host, "127.0.0.2");
  assert_int_equal(c->nodes[1].port, 9043);
  assert_int_equal(c->nodes[1].state, TDM_NODE_DOWN);
  assert_int_equal(c->versions_accepted, TDM_CONF_PV_V4 | TDM_CONF_PV_V5);
  assert_string_equal(c->schema_version, t->schema_version);
  /* columns are copied, not shared */
  const tdm_column_t *a = tdm_topology_local_column(t, "cluster_name");
  const tdm_column_t *b = tdm_topology_local_column(c, "cluster_name");
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a->value, b->value);
  assert_ptr_not_equal(a->name, b->name);
  assert_int_equal(b->value_len, 4);
  assert_memory_equal(b->value, "mock", 4);
  assert_int_equal(b->type_len, 2);
  const tdm_column_t *n = tdm_topology_local_column(c, "dse_version");
  assert_non_null(n);
  assert_int_equal(n->value_len, -1);
  assert_null(n->value);
  /* changing the clone leaves the original alone */
  c->nodes[1].state = TDM_NODE_UP;
  b = tdm_topology_local_column(c, "cluster_name");
  ((tdm_column_t *)b)->value[0] = 'M';
  assert_int_equal(t->nodes[1].state, TDM_NODE_DOWN);
  assert_memory_equal(a->value, "mock", 4);
  /* peer rows too */
  const tdm_column_t *r = tdm_topology_peer_column(c, 1, "rack");
  assert_non_null(r);
  assert_memory_equal(r->value, "r2", 2);
  assert_ptr_not_equal(r->value, tdm_topology_peer_column(t, 1, "rack")->value);
  assert_null(tdm_topology_peer_column(c, 0, "rack"));
  assert_null(tdm_topology_peer_column(c, 5, "rack"));
  tdm_topology_unref(t);
  /* the clone outlives its source */
  assert_string_equal(c->nodes[0].host, "127.0.0.1");
  tdm_topology_unref(c);
}

static void test_clone_of_empty(void **state)
{
  (void)state;
  tdm_topology_t *t = NULL, *c = NULL;
  assert_int_equal(tdm_topology_new(TDM_CONF_ORIGIN, &t), 0);
  t->generation = 7;
  t->up = true;
  assert_int_equal(tdm_topology_clone(t, &c), 0);
  assert_int_equal(c->generation, 7);
  assert_true(c->up);
  assert_null(c->nodes);
  assert_null(c->local_row);
  assert_null(c->peer_rows);
  tdm_topology_unref(t);
  tdm_topology_unref(c);
}

static void test_refcount(void **state)
{
  (void)state;
  tdm_topology_t *t = sample();
  assert_ptr_equal(tdm_topology_ref(t), t);
  assert_ptr_equal(tdm_topology_ref(t), t);
  assert_int_equal(atomic_load(&t->refs), 3);
  tdm_topology_unref(t);
  tdm_topology_unref(t);
  assert_int_equal(atomic_load(&t->refs), 1);
  assert_null(tdm_topology_ref(NULL));
  tdm_topology_unref(NULL); /* ignored */
  tdm_topology_unref(t);    /* frees; ASan reports a leak or double free otherwise */
}

#define THREADS 4
#define ROUNDS 20000

static void hammer(void *arg)
{
  tdm_topology_t *t = arg;
  for (int i = 0; i < ROUNDS; i++) {
    tdm_topology_ref(t);
    tdm_topology_unref(t);
  }
}

static void test_refcount_threads(void **state)
{
  (void)state;
  tdm_topology_t *t = sample();
  uv_thread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(uv_thread_create(&th[i], hammer, t), 0);
  for (int i = 0; i < THREADS; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  assert_int_equal(atomic_load(&t->refs), 1);
  tdm_topology_unref(t);
}

static void test_lookups(void **state)
{
  (void)state;
  tdm_topology_t *t = sample();
  assert_int_equal(tdm_topology_find_node(t, "127.0.0.2", 9043), 1);
  assert_int_equal(tdm_topology_find_node(t, "127.0.0.1", 9042), 0);
  assert_int_equal(tdm_topology_find_node(t, "127.0.0.2", 9042), -1);
  assert_int_equal(tdm_topology_find_node(t, NULL, 9042), -1);
  assert_null(tdm_topology_local_column(t, "nope"));
  assert_null(tdm_topology_local_column(t, NULL));
  assert_null(tdm_topology_local_column(NULL, "cluster_name"));
  tdm_topology_unref(t);
}

static void test_columns_copy_empty(void **state)
{
  (void)state;
  tdm_column_t *out = (tdm_column_t *)1;
  assert_int_equal(tdm_topology_columns_copy(NULL, 0, &out), 0);
  assert_null(out);
}

static void test_format_versions(void **state)
{
  (void)state;
  char buf[64];
  assert_int_equal(tdm_topology_format_versions(TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5, buf, sizeof(buf)), 8);
  assert_string_equal(buf, "v3 v4 v5");
  tdm_topology_format_versions(TDM_CONF_PV_V4 | TDM_CONF_PV_DSE_V1 | TDM_CONF_PV_DSE_V2, buf, sizeof(buf));
  assert_string_equal(buf, "v4 DSE_V1 DSE_V2");
  assert_int_equal(tdm_topology_format_versions(0, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "");
  /* truncated output stays terminated and the full length is reported */
  char small[5];
  assert_int_equal(tdm_topology_format_versions(TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5, small, sizeof(small)), 8);
  assert_string_equal(small, "v3 v");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_new_is_empty),      cmocka_unit_test(test_clone_is_deep),
    cmocka_unit_test(test_clone_of_empty),    cmocka_unit_test(test_refcount),
    cmocka_unit_test(test_refcount_threads),  cmocka_unit_test(test_lookups),
    cmocka_unit_test(test_columns_copy_empty), cmocka_unit_test(test_format_versions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
