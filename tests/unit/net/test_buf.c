/* net/buf: block pool reuse and bounds, slice refcounts (pool and malloc), read buffer cursors,
 * rewind, compaction, growth and limits, and sharing: shared bytes never move or change while the
 * buffer keeps reading, compacting and growing. ASan checks every free. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/net/buf.h>

static void test_pool_reuse_and_bounds(void **state)
{
  (void)state;
  tdm_buf_pool_t zero = { 0 };
  assert_null(tdm_buf_pool_get(&zero)); /* a zeroed pool is inert */

  tdm_buf_pool_t p;
  tdm_buf_pool_init(&p, 256, 2);
  void *a = tdm_buf_pool_get(&p), *b = tdm_buf_pool_get(&p), *c = tdm_buf_pool_get(&p);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_int_equal(p.handed, 3);
  assert_int_equal(p.reuses, 0);
  tdm_buf_pool_put(&p, a);
  tdm_buf_pool_put(&p, b);
  tdm_buf_pool_put(&p, c); /* freelist full: freed (ASan would flag a leak otherwise) */
  assert_int_equal(p.nfree, 2);
  void *d = tdm_buf_pool_get(&p);
  assert_ptr_equal(d, b); /* LIFO: the most recently returned block, still warm */
  assert_int_equal(p.reuses, 1);
  assert_int_equal(p.nfree, 1);
  tdm_buf_pool_destroy(&p);
  assert_int_equal(p.nfree, 0);
  tdm_buf_pool_put(&p, d); /* after destroy: pass-through free */
  assert_int_equal(p.nfree, 0);
  void *e = tdm_buf_pool_get(&p); /* and pass-through malloc */
  assert_non_null(e);
  tdm_buf_pool_put(&p, e);
  assert_int_equal(p.nfree, 0);
}

static void test_slice_refcounts(void **state)
{
  (void)state;
  tdm_buf_pool_t p;
  tdm_buf_pool_init(&p, 128, 4);
  tdm_slice_t *s = tdm_slice_copy(&p, "hello", 5);
  assert_non_null(s);
  assert_ptr_equal(s->pool, &p);
  assert_int_equal(s->refs, 1);
  assert_int_equal(s->size, tdm_slice_pool_capacity(&p));
  assert_memory_equal(s->data, "hello", 5);
  assert_ptr_equal(tdm_slice_ref(s), s);
  tdm_slice_ref(s);
  assert_int_equal(s->refs, 3);
  tdm_slice_unref(s);
  tdm_slice_unref(s);
  assert_int_equal(p.nfree, 0); /* still held */
  tdm_slice_unref(s);
  assert_int_equal(p.nfree, 1); /* last reference: back to the pool */

  tdm_slice_t *big = tdm_slice_new(&p, 1000); /* larger than a block: malloc */
  assert_non_null(big);
  assert_null(big->pool);
  assert_int_equal(big->size, 1000);
  tdm_slice_unref(big);
  assert_int_equal(p.nfree, 1);
  tdm_slice_t *noalloc = tdm_slice_new(NULL, 0);
  assert_non_null(noalloc);
  tdm_slice_unref(noalloc);
  tdm_slice_unref(NULL);
  tdm_buf_pool_destroy(&p);
}

static void test_zeroed_buffer(void **state)
{
  (void)state;
  tdm_buf_t b = { 0 };
  assert_int_equal(tdm_buf_len(&b), 0);
  assert_int_equal(tdm_buf_cap(&b), 0);
  assert_null(tdm_buf_rptr(&b));
  tdm_buf_release_if_empty(&b);
  tdm_buf_compact(&b);
  assert_int_equal(tdm_buf_append(&b, "abc", 3), 0);
  assert_int_equal(tdm_buf_len(&b), 3);
  assert_memory_equal(tdm_buf_rptr(&b), "abc", 3);
  tdm_buf_free(&b);
  assert_null(b.blk);
}

static void test_cursors(void **state)
{
  (void)state;
  tdm_buf_pool_t p;
  tdm_buf_pool_init(&p, 64 + sizeof(tdm_slice_t), 4);
  tdm_buf_t b;
  tdm_buf_init(&b, &p, 0);
  uint8_t *w;
  size_t n;
  assert_int_equal(tdm_buf_reserve(&b, 10, &w, &n), 0);
  assert_int_equal(n, 64); /* a whole pool block */
  memcpy(w, "0123456789", 10);
  tdm_buf_commit(&b, 10);
  assert_int_equal(b.rpos, 0);
  assert_int_equal(b.wpos, 10);
  tdm_buf_consume(&b, 4);
  assert_int_equal(b.rpos, 4);
  assert_memory_equal(tdm_buf_rptr(&b), "456789", 6);
  assert_int_equal(tdm_buf_space(&b), 54);
  tdm_buf_consume(&b, 6); /* emptied: rewinds, no memmove ever needed */
  assert_int_equal(b.rpos, 0);
  assert_int_equal(b.wpos, 0);
  assert_non_null(b.blk);
  tdm_buf_release_if_empty(&b);
  assert_null(b.blk);
  assert_int_equal(p.nfree, 1); /* the block went back to the pool */

  /* compaction: 50 written, 40 consumed, need 30 -> fits after moving 10 bytes to the front */
  uint8_t data[64];
  for (int i = 0; i < 64; i++) data[i] = (uint8_t)i;
  assert_int_equal(tdm_buf_append(&b, data, 50), 0);
  tdm_slice_t *blk = b.blk;
  tdm_buf_consume(&b, 40);
  assert_int_equal(tdm_buf_reserve(&b, 30, &w, &n), 0);
  assert_ptr_equal(b.blk, blk); /* same block */
  assert_int_equal(b.rpos, 0);
  assert_int_equal(b.wpos, 10);
  assert_memory_equal(tdm_buf_rptr(&b), data + 40, 10);
  assert_int_equal(n, 54);
  tdm_buf_release_if_empty(&b); /* not empty: kept */
  assert_non_null(b.blk);
  tdm_buf_free(&b);
  tdm_buf_pool_destroy(&p);
}

static void test_growth_and_limit(void **state)
{
  (void)state;
  tdm_buf_pool_t p;
  tdm_buf_pool_init(&p, 64 + sizeof(tdm_slice_t), 4);
  tdm_buf_t b;
  tdm_buf_init(&b, &p, 10000);
  uint8_t data[9000];
  for (size_t i = 0; i < sizeof(data); i++) data[i] = (uint8_t)(i * 7);
  assert_int_equal(tdm_buf_append(&b, data, 60), 0);
  assert_ptr_equal(b.blk->pool, &p);
  tdm_buf_consume(&b, 5);
  assert_int_equal(tdm_buf_append(&b, data + 60, 8000), 0); /* outgrows the pool block */
  assert_null(b.blk->pool);
  assert_true(tdm_buf_cap(&b) >= 8055 && tdm_buf_cap(&b) <= 10000);
  assert_int_equal(p.nfree, 1); /* old block returned */
  assert_memory_equal(tdm_buf_rptr(&b), data + 5, 8055);
  uint8_t *w;
  size_t n;
  assert_int_equal(tdm_buf_reserve(&b, 10000 - 8055 + 1, &w, &n), TDM_EOVERFLOW);
  assert_int_equal(tdm_buf_reserve(&b, 10000 - 8055, &w, &n), 0);
  assert_int_equal(tdm_buf_len(&b), 8055); /* a failed reserve changes nothing */
  assert_memory_equal(tdm_buf_rptr(&b), data + 5, 8055);
  tdm_buf_free(&b);
  tdm_buf_pool_destroy(&p);
}

static void test_share_survives_buffer_moves(void **state)
{
  (void)state;
  tdm_buf_pool_t p;
  tdm_buf_pool_init(&p, 64 + sizeof(tdm_slice_t), 4);
  tdm_buf_t b;
  tdm_buf_init(&b, &p, 0);
  assert_int_equal(tdm_buf_append(&b, "HEADERbody-one|tail", 19), 0);
  const uint8_t *body = tdm_buf_rptr(&b) + 6;
  size_t off;
  tdm_slice_t *s1 = tdm_buf_share(&b, body, 8, &off);
  tdm_slice_t *s2 = tdm_buf_share(&b, body, 8, &off); /* two legs of a dual write */
  assert_ptr_equal(s1, b.blk);
  assert_int_equal(off, 6);
  assert_int_equal(b.blk->refs, 3);
  tdm_buf_consume(&b, 15);
  assert_int_equal(b.rpos, 15); /* shared: no rewind */
  /* needing more than the free space must not compact the shared block in place */
  uint8_t *w;
  size_t n;
  assert_int_equal(tdm_buf_reserve(&b, 60, &w, &n), 0);
  assert_ptr_not_equal(b.blk, s1);
  assert_memory_equal(tdm_buf_rptr(&b), "tail", 4);
  memset(w, 'Z', n);
  tdm_buf_commit(&b, n);
  assert_memory_equal(s1->data + off, "body-one", 8); /* intact */
  assert_int_equal(s1->refs, 2);                      /* the buffer let go of it */
  tdm_slice_unref(s1);
  assert_memory_equal(s2->data + off, "body-one", 8);
  tdm_slice_unref(s2); /* last holder: the old block goes back to the pool */
  assert_int_equal(p.nfree, 1);

  /* consume-all on a shared block does not rewind either, and compact refuses */
  tdm_buf_free(&b);
  assert_int_equal(tdm_buf_append(&b, "abcdef", 6), 0);
  tdm_slice_t *s3 = tdm_buf_share(&b, tdm_buf_rptr(&b) + 2, 2, &off);
  tdm_buf_consume(&b, 6);
  assert_int_equal(b.rpos, 6);
  tdm_buf_compact(&b);
  assert_int_equal(b.rpos, 6);
  assert_int_equal(tdm_buf_append(&b, "xy", 2), 0); /* appends after wpos: shared bytes untouched */
  assert_memory_equal(s3->data + off, "cd", 2);
  tdm_buf_release_if_empty(&b); /* not empty */
  tdm_buf_consume(&b, 2);
  tdm_buf_release_if_empty(&b);
  assert_null(b.blk);
  assert_memory_equal(s3->data + off, "cd", 2); /* the slice keeps the block alive */
  tdm_slice_unref(s3);
  tdm_buf_pool_destroy(&p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pool_reuse_and_bounds),
    cmocka_unit_test(test_slice_refcounts),
    cmocka_unit_test(test_zeroed_buffer),
    cmocka_unit_test(test_cursors),
    cmocka_unit_test(test_growth_and_limit),
    cmocka_unit_test(test_share_survives_buffer_moves),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
