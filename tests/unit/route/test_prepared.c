/* Prepared registry (PS-08): bound, LRU eviction order, refresh on use, replace, shrink on reload,
 * entries that outlive eviction, and 8 threads hammering it at once (run it under TSAN too). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>
#include <tandem/route/prepared.h>

static void make_id(uint32_t n, uint8_t id[16])
{
  memset(id, 0, 16);
  memcpy(id, &n, sizeof(n));
  id[15] = 0xAB;
}

static tdm_prepared_entry_t *entry(uint32_t n)
{
  uint8_t o[16], t[16];
  make_id(n, o);
  make_id(n + 1000000u, t);
  tdm_prepared_entry_t *e;
  char q[64];
  int len = snprintf(q, sizeof(q), "SELECT v FROM ks.t WHERE k = %u", n);
  assert_int_equal(tdm_prepared_entry_new(o, 16, t, 16, (tdm_str_t){ q, (size_t)len }, TDM_STR("ks"), 1, 0, &e), 0);
  return e;
}

static bool present(tdm_prepared_registry_t *reg, uint32_t n)
{
  uint8_t id[16];
  make_id(n, id);
  tdm_prepared_entry_t *e = tdm_prepared_registry_get(reg, id, 16);
  if (!e) return false;
  tdm_prepared_entry_unref(e);
  return true;
}

/* Collects `want` ids that all hash to shard 0, so per-shard LRU order is observable. */
static void same_shard_ids(uint32_t *out, int want)
{
  int got = 0;
  for (uint32_t n = 1; got < want; n++) {
    uint8_t id[16];
    make_id(n, id);
    if (tdm_prepared_registry_shard_of(id, 16) == 0) out[got++] = n;
  }
}

static void test_put_get_fields(void **state)
{
  tdm_prepared_registry_t *reg;
  assert_int_equal(tdm_prepared_registry_new(100, &reg), 0);
  tdm_prepared_entry_t *e = entry(7);
  uint8_t om[4] = { 1, 2, 3, 4 }, tm[2] = { 9, 9 };
  tdm_prepared_entry_set_meta_ids(e, om, 4, tm, 2);
  tdm_prepared_registry_put(reg, e);
  uint8_t id[16];
  make_id(7, id);
  tdm_prepared_entry_t *g = tdm_prepared_registry_get(reg, id, 16);
  assert_non_null(g);
  assert_string_equal(g->query, "SELECT v FROM ks.t WHERE k = 7");
  assert_string_equal(g->keyspace, "ks");
  assert_int_equal(g->target_id.len, 16);
  assert_int_equal(g->origin_meta_id.len, 4);
  assert_memory_equal(g->target_meta_id.bytes, tm, 2);
  tdm_prepared_entry_unref(g);
  /* A miss is counted. */
  make_id(8, id);
  assert_null(tdm_prepared_registry_get(reg, id, 16));
  assert_null(tdm_prepared_registry_get(reg, id, 3));
  tdm_prepared_stats_t st;
  tdm_prepared_registry_stats(reg, &st);
  assert_int_equal(st.entries, 1);
  assert_int_equal(st.misses, 2);
  tdm_prepared_registry_free(reg);
}

static void test_lru_order_and_refresh(void **state)
{
  tdm_prepared_registry_t *reg;
  /* 16 shards x 3 entries each. */
  assert_int_equal(tdm_prepared_registry_new(48, &reg), 0);
  uint32_t ids[5];
  same_shard_ids(ids, 5);
  for (int i = 0; i < 3; i++) tdm_prepared_registry_put(reg, entry(ids[i]));
  assert_true(present(reg, ids[0])); /* refresh: ids[1] is now the oldest */
  tdm_prepared_registry_put(reg, entry(ids[3]));
  assert_false(present(reg, ids[1]));
  assert_true(present(reg, ids[0]));
  assert_true(present(reg, ids[2]));
  assert_true(present(reg, ids[3]));
  /* The checks above refreshed ids[0], ids[2], ids[3] in that order: ids[0] is now the oldest. */
  tdm_prepared_registry_put(reg, entry(ids[4]));
  assert_false(present(reg, ids[0]));
  tdm_prepared_stats_t st;
  tdm_prepared_registry_stats(reg, &st);
  assert_int_equal(st.evictions, 2);
  tdm_prepared_registry_free(reg);
}

static void test_replace_and_outlive(void **state)
{
  tdm_prepared_registry_t *reg;
  assert_int_equal(tdm_prepared_registry_new(16, &reg), 0); /* one per shard */
  uint32_t ids[2];
  same_shard_ids(ids, 2);
  tdm_prepared_registry_put(reg, entry(ids[0]));
  uint8_t id[16];
  make_id(ids[0], id);
  tdm_prepared_entry_t *held = tdm_prepared_registry_get(reg, id, 16);
  assert_non_null(held);
  /* Evicted while held: the holder's copy stays valid. */
  tdm_prepared_registry_put(reg, entry(ids[1]));
  assert_false(present(reg, ids[0]));
  assert_string_equal(held->keyspace, "ks");
  tdm_prepared_entry_unref(held);
  /* Re-PREPARE of a known id replaces the entry, count unchanged. */
  tdm_prepared_registry_put(reg, entry(ids[1]));
  tdm_prepared_stats_t st;
  tdm_prepared_registry_stats(reg, &st);
  assert_int_equal(st.entries, 1);
  tdm_prepared_registry_free(reg);
}

static void test_shrink_on_reload(void **state)
{
  tdm_prepared_registry_t *reg;
  assert_int_equal(tdm_prepared_registry_new(16000, &reg), 0);
  for (uint32_t n = 0; n < 5000; n++) tdm_prepared_registry_put(reg, entry(n));
  tdm_prepared_stats_t st;
  tdm_prepared_registry_stats(reg, &st);
  assert_int_equal(st.entries, 5000);
  tdm_prepared_registry_set_max(reg, 160);
  tdm_prepared_registry_stats(reg, &st);
  assert_true(st.entries <= 160);
  assert_int_equal(st.evictions, 5000 - st.entries);
  /* The most recent insert of each shard survives. */
  assert_true(present(reg, 4999));
  tdm_prepared_registry_free(reg);
}

typedef struct {
  tdm_prepared_registry_t *reg;
  uint32_t base;
} worker_arg_t;

static void *hammer(void *p)
{
  worker_arg_t *a = p;
  for (uint32_t i = 0; i < 20000; i++) {
    uint32_t n = (a->base * 7919u + i) % 3000u;
    if (i % 3 == 0) {
      tdm_prepared_registry_put(a->reg, entry(n));
    } else {
      uint8_t id[16];
      make_id(n, id);
      tdm_prepared_entry_t *e = tdm_prepared_registry_get(a->reg, id, 16);
      if (e) {
        if (strncmp(e->query, "SELECT v FROM ks.t", 18) != 0) abort();
        tdm_prepared_entry_unref(e);
      }
    }
  }
  return NULL;
}

static void test_concurrent(void **state)
{
  tdm_prepared_registry_t *reg;
  assert_int_equal(tdm_prepared_registry_new(1000, &reg), 0);
  pthread_t th[8];
  worker_arg_t args[8];
  for (int i = 0; i < 8; i++) {
    args[i] = (worker_arg_t){ reg, (uint32_t)i };
    assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
  }
  for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
  tdm_prepared_stats_t st;
  tdm_prepared_registry_stats(reg, &st);
  assert_true(st.entries <= 16 * ((1000 + 15) / 16));
  assert_true(st.entries > 0);
  tdm_prepared_registry_free(reg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_put_get_fields), cmocka_unit_test(test_lru_order_and_refresh),
    cmocka_unit_test(test_replace_and_outlive), cmocka_unit_test(test_shrink_on_reload),
    cmocka_unit_test(test_concurrent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
