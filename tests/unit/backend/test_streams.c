/* Stream-id allocator (SI-01): O(1) alloc/free, exhaustion, reserved internal ids, v2's 128 ids. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/backend/streams.h>

static int tag[TDM_STREAMS_MAX]; /* distinct owner pointers */

static void test_exhaust_and_reuse(void **state)
{
  tdm_streams_t s;
  assert_int_equal(tdm_streams_init(&s, TDM_STREAMS_MAX), 0);
  assert_int_equal(s.reserved, 16);
  assert_int_equal(s.client_limit, TDM_STREAMS_MAX - 16);
  for (uint32_t i = 0; i < s.client_limit; i++) {
    int id = tdm_streams_alloc(&s, &tag[i]);
    assert_int_equal(id, (int)i);
  }
  assert_int_equal(tdm_streams_alloc(&s, &tag[0]), TDM_EUNAVAILABLE);
  assert_int_equal(tdm_streams_available(&s), 0);
  /* Release a few, they come back most recent first. */
  assert_ptr_equal(tdm_streams_release(&s, 100), &tag[100]);
  assert_ptr_equal(tdm_streams_release(&s, 7), &tag[7]);
  assert_null(tdm_streams_release(&s, 7)); /* double release changes nothing */
  assert_int_equal(tdm_streams_available(&s), 2);
  assert_int_equal(tdm_streams_alloc(&s, &tag[1]), 7);
  assert_int_equal(tdm_streams_alloc(&s, &tag[2]), 100);
  assert_ptr_equal(tdm_streams_owner(&s, 100), &tag[2]);
  tdm_streams_free(&s);
}

static void test_internal_ids(void **state)
{
  tdm_streams_t s;
  assert_int_equal(tdm_streams_init(&s, 1024), 0);
  int ids[16];
  for (int i = 0; i < 16; i++) {
    ids[i] = tdm_streams_alloc_internal(&s, &tag[i]);
    assert_true(tdm_streams_is_internal(&s, ids[i]));
    assert_int_equal(ids[i], 1024 - 16 + i);
  }
  assert_int_equal(tdm_streams_alloc_internal(&s, &tag[0]), TDM_EUNAVAILABLE);
  /* Internal ids never consume client capacity. */
  assert_int_equal(tdm_streams_available(&s), 1024 - 16);
  assert_ptr_equal(tdm_streams_release(&s, ids[3]), &tag[3]);
  assert_int_equal(tdm_streams_alloc_internal(&s, &tag[9]), ids[3]);
  assert_false(tdm_streams_is_internal(&s, 5));
  tdm_streams_free(&s);
}

static void test_v2_and_small(void **state)
{
  tdm_streams_t s;
  assert_int_equal(tdm_streams_init(&s, TDM_STREAMS_MAX_V2), 0);
  assert_int_equal(s.client_limit, 112);
  tdm_streams_free(&s);
  /* proxy_max_stream_ids: 16 leaves 12 client ids and 4 internal ones. */
  assert_int_equal(tdm_streams_init(&s, 16), 0);
  assert_int_equal(s.client_limit, 12);
  for (int i = 0; i < 12; i++) assert_int_equal(tdm_streams_alloc(&s, &tag[i]), i);
  assert_int_equal(tdm_streams_alloc(&s, &tag[0]), TDM_EUNAVAILABLE);
  tdm_streams_free(&s);
  assert_int_equal(tdm_streams_init(&s, 1), TDM_EINVAL);
  assert_int_equal(tdm_streams_init(&s, TDM_STREAMS_MAX + 1), TDM_EINVAL);
}

static void test_bogus_ids(void **state)
{
  tdm_streams_t s;
  assert_int_equal(tdm_streams_init(&s, 256), 0);
  assert_null(tdm_streams_owner(&s, -1));
  assert_null(tdm_streams_owner(&s, 0));
  assert_null(tdm_streams_owner(&s, 255));
  assert_null(tdm_streams_owner(&s, 40000));
  assert_null(tdm_streams_release(&s, -5));
  assert_int_equal(tdm_streams_alloc(&s, &tag[0]), 0);
  assert_null(tdm_streams_owner(&s, 1));
  tdm_streams_free(&s);
}

/* Random alloc/release keeps in_use + nfree == high and never hands out an owned id. */
static void test_random_churn(void **state)
{
  tdm_streams_t s;
  assert_int_equal(tdm_streams_init(&s, 4096), 0);
  static bool held[4096];
  memset(held, 0, sizeof(held));
  unsigned seed = 12345;
  for (int step = 0; step < 200000; step++) {
    seed = seed * 1103515245u + 12345u;
    if ((seed >> 16) & 1) {
      int id = tdm_streams_alloc(&s, &tag[step % 1000]);
      if (id >= 0) {
        assert_false(held[id]);
        held[id] = true;
      } else {
        assert_int_equal(s.in_use, s.client_limit);
      }
    } else {
      int id = (int)((seed >> 8) % s.client_limit);
      void *o = tdm_streams_release(&s, id);
      assert_int_equal(o != NULL, held[id]);
      held[id] = false;
    }
    assert_int_equal(s.in_use + s.nfree, s.high);
  }
  tdm_streams_free(&s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_exhaust_and_reuse), cmocka_unit_test(test_internal_ids),
    cmocka_unit_test(test_v2_and_small),      cmocka_unit_test(test_bogus_ids),
    cmocka_unit_test(test_random_churn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
