/* Block pool, refcounted slices and the read buffer (see buf.h for the cursor picture). The one rule
 * that keeps sharing safe: bytes below wpos are never rewritten while the block has other holders;
 * growth or compaction of a shared block copies the unread bytes into a fresh block instead. */
#include <tandem/net/buf.h>

#define BUF_MIN_MALLOC 4096 /* smallest malloc'd storage, so tiny reserves do not thrash */

void tdm_buf_pool_init(tdm_buf_pool_t *pool, size_t block_size, uint32_t max_free)
{
  TDM_ASSERT(block_size >= sizeof(void *));
  memset(pool, 0, sizeof(*pool));
  pool->block_size = block_size;
  pool->max_free = max_free;
}

void *tdm_buf_pool_get(tdm_buf_pool_t *pool)
{
  if (pool->block_size == 0) return NULL;
  pool->handed++;
  if (pool->free_head) {
    void *blk = pool->free_head;
    memcpy(&pool->free_head, blk, sizeof(void *));
    pool->nfree--;
    pool->reuses++;
    return blk;
  }
  return malloc(pool->block_size);
}

void tdm_buf_pool_put(tdm_buf_pool_t *pool, void *block)
{
  if (!block) return;
  if (pool->nfree >= pool->max_free) {
    free(block);
    return;
  }
  memcpy(block, &pool->free_head, sizeof(void *));
  pool->free_head = block;
  pool->nfree++;
}

void tdm_buf_pool_destroy(tdm_buf_pool_t *pool)
{
  while (pool->free_head) {
    void *blk = pool->free_head;
    memcpy(&pool->free_head, blk, sizeof(void *));
    free(blk);
  }
  pool->nfree = 0;
  pool->max_free = 0;
}

tdm_slice_t *tdm_slice_new(tdm_buf_pool_t *pool, size_t size)
{
  tdm_slice_t *s;
  if (pool && size <= tdm_slice_pool_capacity(pool)) {
    s = tdm_buf_pool_get(pool);
    if (!s) return NULL;
    s->pool = pool;
    s->size = tdm_slice_pool_capacity(pool);
  } else {
    if (size > SIZE_MAX - sizeof(tdm_slice_t)) return NULL;
    s = malloc(sizeof(tdm_slice_t) + size);
    if (!s) return NULL;
    s->pool = NULL;
    s->size = size;
  }
  s->refs = 1;
  return s;
}

tdm_slice_t *tdm_slice_copy(tdm_buf_pool_t *pool, const void *bytes, size_t n)
{
  tdm_slice_t *s = tdm_slice_new(pool, n);
  if (s && n) memcpy(s->data, bytes, n);
  return s;
}

void tdm_slice_unref(tdm_slice_t *s)
{
  if (!s) return;
  TDM_ASSERT(s->refs > 0);
  if (--s->refs > 0) return;
  if (s->pool)
    tdm_buf_pool_put(s->pool, s);
  else
    free(s);
}

void tdm_buf_init(tdm_buf_t *b, tdm_buf_pool_t *pool, size_t max)
{
  memset(b, 0, sizeof(*b));
  b->pool = pool;
  b->max = max;
}

/* Smallest power of two >= n (n > 0), or n itself when doubling would overflow. */
static size_t round_up_pow2(size_t n)
{
  size_t c = BUF_MIN_MALLOC;
  while (c < n) {
    if (c > SIZE_MAX / 2) return n;
    c *= 2;
  }
  return c;
}

/* Moves the unread bytes into a new block of at least `need` bytes. */
static int move_to_new_block(tdm_buf_t *b, size_t need)
{
  size_t len = tdm_buf_len(b);
  tdm_slice_t *nb;
  if (b->pool && need <= tdm_slice_pool_capacity(b->pool)) {
    nb = tdm_slice_new(b->pool, need);
  } else {
    size_t size = round_up_pow2(need);
    if (b->max && size > b->max) size = need > b->max ? need : b->max;
    nb = tdm_slice_new(NULL, size);
  }
  if (!nb) return TDM_ENOMEM;
  if (len) memcpy(nb->data, b->blk->data + b->rpos, len);
  tdm_slice_unref(b->blk);
  b->blk = nb;
  b->rpos = 0;
  b->wpos = len;
  return 0;
}

int tdm_buf_reserve(tdm_buf_t *b, size_t want, uint8_t **p, size_t *n)
{
  TDM_ASSERT(want > 0);
  size_t len = tdm_buf_len(b);
  if (want > SIZE_MAX - len) return TDM_EOVERFLOW;
  size_t need = len + want;
  if (b->max && need > b->max) return TDM_EOVERFLOW;
  if (tdm_buf_space(b) < want) {
    if (b->blk && b->blk->refs == 1 && b->blk->size >= need) {
      tdm_buf_compact(b);
    } else {
      int rc = move_to_new_block(b, need);
      if (rc < 0) return rc;
    }
  }
  TDM_ASSERT(tdm_buf_space(b) >= want);
  *p = b->blk->data + b->wpos;
  *n = tdm_buf_space(b);
  return 0;
}

void tdm_buf_commit(tdm_buf_t *b, size_t n)
{
  TDM_ASSERT(n <= tdm_buf_space(b));
  b->wpos += n;
}

void tdm_buf_consume(tdm_buf_t *b, size_t n)
{
  TDM_ASSERT(n <= tdm_buf_len(b));
  b->rpos += n;
  if (b->rpos == b->wpos && b->blk && b->blk->refs == 1) b->rpos = b->wpos = 0;
}

void tdm_buf_compact(tdm_buf_t *b)
{
  if (!b->blk || b->rpos == 0 || b->blk->refs != 1) return;
  size_t len = tdm_buf_len(b);
  memmove(b->blk->data, b->blk->data + b->rpos, len);
  b->rpos = 0;
  b->wpos = len;
}

int tdm_buf_append(tdm_buf_t *b, const void *bytes, size_t n)
{
  if (n == 0) return 0;
  uint8_t *p;
  size_t room;
  int rc = tdm_buf_reserve(b, n, &p, &room);
  if (rc < 0) return rc;
  memcpy(p, bytes, n);
  tdm_buf_commit(b, n);
  return 0;
}

tdm_slice_t *tdm_buf_share(tdm_buf_t *b, const uint8_t *p, size_t n, size_t *off)
{
  TDM_ASSERT(b->blk != NULL);
  TDM_ASSERT(p >= b->blk->data + b->rpos && p <= b->blk->data + b->wpos);
  TDM_ASSERT(n <= (size_t)(b->blk->data + b->wpos - p));
  *off = (size_t)(p - b->blk->data);
  return tdm_slice_ref(b->blk);
}

void tdm_buf_release_if_empty(tdm_buf_t *b)
{
  if (b->blk && b->rpos == b->wpos) tdm_buf_free(b);
}

void tdm_buf_free(tdm_buf_t *b)
{
  tdm_slice_unref(b->blk);
  b->blk = NULL;
  b->rpos = b->wpos = 0;
}
