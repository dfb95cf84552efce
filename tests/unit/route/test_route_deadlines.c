/* The per-worker deadline list of src/route/deadlines.c, without a loop: ordering under equal and mixed
 * timeouts (ties keep arming order), O(1) removal of head, middle and tail, expiry popping exactly the
 * due entries in order, and the timer decisions (arm only for an earlier head; no re-arm on removal;
 * one empty wake re-arms for the new head). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/common.h>
#include "../../../src/route/deadlines.h"

#define N 8

/* Entries as a request embeds them: the id tells them apart after a pop. */
typedef struct item_s {
  int id;                   /* index in the fixture */
  tdm__route_deadline_t dl; /* the embedded entry */
} item_t;

static int id_of(const tdm__route_deadline_t *d) { return TDM_CONTAINER_OF(d, item_t, dl)->id; }

static void init_items(item_t *it)
{
  memset(it, 0, sizeof(item_t) * N);
  for (int i = 0; i < N; i++) it[i].id = i;
}

/* Asserts the list holds exactly ids[0..n) in that order, with non-decreasing deadlines. */
static void expect_order(const tdm__route_deadlines_t *dl, const int *ids, int n)
{
  assert_int_equal(dl->n, (uint32_t)n);
  int i = 0;
  uint64_t last = 0;
  TDM_LIST_FOREACH(it, &dl->armed) {
    const tdm__route_deadline_t *d = TDM_CONTAINER_OF(it, tdm__route_deadline_t, link);
    assert_true(i < n);
    assert_int_equal(id_of(d), ids[i]);
    assert_true(d->due >= last);
    last = d->due;
    i++;
  }
  assert_int_equal(i, n);
}

static void test_zeroed_is_empty(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  tdm__route_deadline_t d = { 0 };
  uint64_t due = 7;
  assert_true(tdm__route_deadlines_empty(&dl));
  assert_false(tdm__route_deadline_armed(&d));
  assert_false(tdm__route_deadlines_arm(&dl, &due)); /* nothing armed: no timer */
  assert_int_equal(due, 7);
  assert_null(tdm__route_deadlines_pop_due(&dl, UINT64_MAX));
  tdm__route_deadlines_remove(&dl, &d); /* disarming an unarmed entry is harmless */
  assert_int_equal(dl.n, 0);
}

static void test_equal_timeouts_append_in_order(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  /* one timeout (10 s) armed at advancing loop times, several in the same millisecond */
  static const uint64_t now[N] = { 100, 100, 100, 101, 105, 105, 200, 200 };
  for (int i = 0; i < N; i++) tdm__route_deadlines_insert(&dl, &it[i].dl, now[i] + 10000);
  static const int want[N] = { 0, 1, 2, 3, 4, 5, 6, 7 };
  expect_order(&dl, want, N);
  for (int i = 0; i < N; i++) assert_true(tdm__route_deadline_armed(&it[i].dl));
}

static void test_mixed_timeouts_sorted(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  /* a reload shortens the timeout from 10 s to 2 s and lengthens it to 30 s, while others are armed */
  tdm__route_deadlines_insert(&dl, &it[0].dl, 1000 + 10000); /* 11000 */
  tdm__route_deadlines_insert(&dl, &it[1].dl, 1001 + 10000); /* 11001 */
  tdm__route_deadlines_insert(&dl, &it[2].dl, 1002 + 2000);  /*  3002: walks back to the head */
  tdm__route_deadlines_insert(&dl, &it[3].dl, 1003 + 30000); /* 31003: tail */
  tdm__route_deadlines_insert(&dl, &it[4].dl, 9001 + 2000);  /* 11001: equal to 1, after it */
  tdm__route_deadlines_insert(&dl, &it[5].dl, 9000 + 2000);  /* 11000: equal to 0, after it, before 1 */
  tdm__route_deadlines_insert(&dl, &it[6].dl, 1002 + 2000);  /*  3002: equal to the head, after it */
  static const int want[] = { 2, 6, 0, 5, 1, 4, 3 };
  expect_order(&dl, want, 7);
}

static void test_remove_head_middle_tail(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  for (int i = 0; i < 5; i++) tdm__route_deadlines_insert(&dl, &it[i].dl, 100 + (uint64_t)i);
  tdm__route_deadlines_remove(&dl, &it[2].dl); /* middle */
  static const int w1[] = { 0, 1, 3, 4 };
  expect_order(&dl, w1, 4);
  assert_false(tdm__route_deadline_armed(&it[2].dl));
  tdm__route_deadlines_remove(&dl, &it[0].dl); /* head */
  static const int w2[] = { 1, 3, 4 };
  expect_order(&dl, w2, 3);
  tdm__route_deadlines_remove(&dl, &it[4].dl); /* tail */
  static const int w3[] = { 1, 3 };
  expect_order(&dl, w3, 2);
  tdm__route_deadlines_remove(&dl, &it[4].dl); /* twice: a no-op */
  expect_order(&dl, w3, 2);
  /* a removed entry can be armed again, and lands by its new deadline */
  tdm__route_deadlines_insert(&dl, &it[0].dl, 102);
  static const int w4[] = { 1, 0, 3 };
  expect_order(&dl, w4, 3);
  tdm__route_deadlines_remove(&dl, &it[1].dl);
  tdm__route_deadlines_remove(&dl, &it[0].dl);
  tdm__route_deadlines_remove(&dl, &it[3].dl);
  assert_true(tdm__route_deadlines_empty(&dl));
  assert_true(tdm_list_empty(&dl.armed));
}

static void test_insert_armed_entry_moves_it(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  for (int i = 0; i < 3; i++) tdm__route_deadlines_insert(&dl, &it[i].dl, 100 + (uint64_t)i * 10);
  tdm__route_deadlines_insert(&dl, &it[0].dl, 125); /* re-armed later: moves, not duplicated */
  static const int want[] = { 1, 2, 0 };
  expect_order(&dl, want, 3);
}

static void test_pop_due_exactly_in_order(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  static const uint64_t due[N] = { 50, 20, 20, 30, 60, 30, 10, 70 };
  for (int i = 0; i < N; i++) tdm__route_deadlines_insert(&dl, &it[i].dl, due[i]);
  assert_null(tdm__route_deadlines_pop_due(&dl, 9)); /* nothing due yet */
  assert_int_equal(dl.n, N);
  /* at 30: 6 (10), then 1 and 2 (20, arming order), then 3 and 5 (30, inclusive) */
  static const int first[] = { 6, 1, 2, 3, 5 };
  tdm__route_deadline_t *d;
  int k = 0;
  while ((d = tdm__route_deadlines_pop_due(&dl, 30))) {
    assert_true(k < 5);
    assert_int_equal(id_of(d), first[k++]);
    assert_false(tdm__route_deadline_armed(d)); /* detached before its expiry runs */
  }
  assert_int_equal(k, 5);
  static const int rest[] = { 0, 4, 7 };
  expect_order(&dl, rest, 3);
}

/* An expiry may recycle other requests (disarming them) before the caller asks for the next head. */
static void test_pop_with_removals_between(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  for (int i = 0; i < 5; i++) tdm__route_deadlines_insert(&dl, &it[i].dl, 10);
  tdm__route_deadline_t *d = tdm__route_deadlines_pop_due(&dl, 10);
  assert_int_equal(id_of(d), 0);
  tdm__route_deadlines_remove(&dl, &it[1].dl); /* the next head goes away during 0's expiry */
  tdm__route_deadlines_remove(&dl, &it[3].dl);
  d = tdm__route_deadlines_pop_due(&dl, 10);
  assert_int_equal(id_of(d), 2);
  d = tdm__route_deadlines_pop_due(&dl, 10);
  assert_int_equal(id_of(d), 4);
  assert_null(tdm__route_deadlines_pop_due(&dl, 10));
  assert_true(tdm__route_deadlines_empty(&dl));
}

static void test_arm_decisions(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  uint64_t due = 0;
  /* first armed request: start the timer for it */
  tdm__route_deadlines_insert(&dl, &it[0].dl, 1000);
  assert_true(tdm__route_deadlines_arm(&dl, &due));
  assert_int_equal(due, 1000);
  assert_true(dl.timer_on);
  /* later or equal deadlines: the timer already fires early enough (steady state: no timer call) */
  tdm__route_deadlines_insert(&dl, &it[1].dl, 1000);
  assert_false(tdm__route_deadlines_arm(&dl, &due));
  tdm__route_deadlines_insert(&dl, &it[2].dl, 1500);
  assert_false(tdm__route_deadlines_arm(&dl, &due));
  /* the head completes: no re-arm, the timer stays at 1000 */
  tdm__route_deadlines_remove(&dl, &it[0].dl);
  assert_false(tdm__route_deadlines_arm(&dl, &due));
  assert_int_equal(dl.timer_due, 1000);
  /* an earlier deadline (a shorter timeout after a reload) becomes the head: re-arm earlier */
  tdm__route_deadlines_insert(&dl, &it[3].dl, 400);
  assert_true(tdm__route_deadlines_arm(&dl, &due));
  assert_int_equal(due, 400);
  assert_int_equal(dl.timer_due, 400);
  /* fires at 400: pops 3, then re-arms for the new head 1 (1000) */
  tdm__route_deadlines_timer_idle(&dl);
  tdm__route_deadline_t *d = tdm__route_deadlines_pop_due(&dl, 400);
  assert_int_equal(id_of(d), 3);
  assert_null(tdm__route_deadlines_pop_due(&dl, 400));
  assert_true(tdm__route_deadlines_arm(&dl, &due));
  assert_int_equal(due, 1000);
  /* both at 1000 complete before it fires: the one wake finds 2 not due and re-arms for 1500 */
  tdm__route_deadlines_remove(&dl, &it[1].dl);
  tdm__route_deadlines_timer_idle(&dl);
  assert_null(tdm__route_deadlines_pop_due(&dl, 1000));
  assert_true(tdm__route_deadlines_arm(&dl, &due));
  assert_int_equal(due, 1500);
  /* the last one completes; the wake at 1500 finds the list empty and leaves the timer idle */
  tdm__route_deadlines_remove(&dl, &it[2].dl);
  tdm__route_deadlines_timer_idle(&dl);
  assert_null(tdm__route_deadlines_pop_due(&dl, 1500));
  assert_false(tdm__route_deadlines_arm(&dl, &due));
  assert_false(dl.timer_on);
  /* idle timer and a new request: armed again */
  tdm__route_deadlines_insert(&dl, &it[4].dl, 2100);
  assert_true(tdm__route_deadlines_arm(&dl, &due));
  assert_int_equal(due, 2100);
  tdm__route_deadlines_remove(&dl, &it[4].dl);
}

/* Many equal timeouts in steady state: one timer start for the whole run. */
static void test_steady_state_one_start(void **state)
{
  (void)state;
  tdm__route_deadlines_t dl = { 0 };
  item_t it[N];
  init_items(it);
  uint64_t due;
  int starts = 0;
  for (uint64_t now = 0; now < 1000; now++) {
    item_t *x = &it[now % N];
    tdm__route_deadlines_remove(&dl, &x->dl); /* the request of N ms ago completed */
    tdm__route_deadlines_insert(&dl, &x->dl, now + 5000);
    if (tdm__route_deadlines_arm(&dl, &due)) starts++;
  }
  assert_int_equal(starts, 1);
  assert_int_equal(dl.n, N);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_zeroed_is_empty),
    cmocka_unit_test(test_equal_timeouts_append_in_order),
    cmocka_unit_test(test_mixed_timeouts_sorted),
    cmocka_unit_test(test_remove_head_middle_tail),
    cmocka_unit_test(test_insert_armed_entry_moves_it),
    cmocka_unit_test(test_pop_due_exactly_in_order),
    cmocka_unit_test(test_pop_with_removals_between),
    cmocka_unit_test(test_arm_decisions),
    cmocka_unit_test(test_steady_state_one_start),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
