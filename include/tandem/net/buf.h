/* Bytes owned by one worker: a freelist pool of fixed-size blocks, refcounted immutable slices, and the
 * growable read buffer whose storage is itself a slice, so a frame body can be forwarded to two
 * backends straight from the bytes the socket read (a reference, not a copy).
 *
 *   tdm_buf_t:   blk->data [0 ........ rpos ........ wpos ........ size)
 *                           consumed    unread bytes   free space
 *   invariants:  0 <= rpos <= wpos <= blk->size; no blk means rpos == wpos == 0;
 *                bytes below wpos never change while blk->refs > 1 (someone shares them), so a
 *                shared block is never compacted in place: new space means a new block.
 *
 * Nothing here is thread-safe, on purpose: pools, buffers and slices belong to one worker (rule 7);
 * a slice's refcount is a plain integer and a slice never crosses threads. */
#ifndef TANDEM_NET_BUF_H
#define TANDEM_NET_BUF_H

#include <tandem/common.h>

/* Recycles blocks of one size. A zeroed pool is valid: block_size 0 means every get fails. After
 * tdm_buf_pool_destroy the pool stays usable as a pass-through (get = malloc, put = free), so blocks
 * released late (by connections closing after their worker's pool) need no special casing. */
typedef struct tdm_buf_pool_s {
  size_t block_size;  /* bytes per block (>= sizeof(void *)); 0 = not initialised */
  uint32_t max_free;  /* most blocks kept for reuse; 0 = pass-through */
  uint32_t nfree;     /* blocks now on the freelist; nfree <= max_free */
  void *free_head;    /* freelist, linked through each block's first word */
  uint64_t handed;    /* blocks handed out */
  uint64_t reuses;    /* handed out from the freelist instead of malloc */
} tdm_buf_pool_t;

void tdm_buf_pool_init(tdm_buf_pool_t *pool, size_t block_size, uint32_t max_free);
/* A block of pool->block_size bytes (uninitialised), or NULL when out of memory or not initialised. */
void *tdm_buf_pool_get(tdm_buf_pool_t *pool);
/* Takes back a block from tdm_buf_pool_get of this pool; frees it when the freelist is full. */
void tdm_buf_pool_put(tdm_buf_pool_t *pool, void *block);
/* Frees the cached blocks and turns the pool into a pass-through. */
void tdm_buf_pool_destroy(tdm_buf_pool_t *pool);

/* Refcounted immutable bytes: written by its creator while refs == 1, read-only once shared. */
typedef struct tdm_slice_s {
  uint32_t refs;          /* holders; freed (or returned to pool) when it drops to 0 */
  size_t size;            /* usable bytes at data */
  tdm_buf_pool_t *pool;   /* pool the memory came from, NULL when malloc'd */
  uint8_t data[];         /* the bytes */
} tdm_slice_t;

/* Largest slice size a pool block holds. */
static inline size_t tdm_slice_pool_capacity(const tdm_buf_pool_t *pool)
{
  return pool && pool->block_size > sizeof(tdm_slice_t) ? pool->block_size - sizeof(tdm_slice_t) : 0;
}

/* A slice of `size` uninitialised bytes with refs = 1, from pool when it fits (pool may be NULL),
 * else from malloc. NULL when out of memory. */
tdm_slice_t *tdm_slice_new(tdm_buf_pool_t *pool, size_t size);
/* tdm_slice_new + memcpy of n bytes. */
tdm_slice_t *tdm_slice_copy(tdm_buf_pool_t *pool, const void *bytes, size_t n);

static inline tdm_slice_t *tdm_slice_ref(tdm_slice_t *s)
{
  TDM_ASSERT(s->refs > 0);
  s->refs++;
  return s;
}
/* Drops one reference; the last one frees the slice. NULL is ignored. */
void tdm_slice_unref(tdm_slice_t *s);

/* The growable read buffer. A zeroed tdm_buf_t is valid and empty (no pool, no limit). */
typedef struct tdm_buf_s {
  tdm_slice_t *blk;       /* storage (refcounted so frames can be shared), NULL when released */
  size_t rpos;            /* first unread byte in blk->data */
  size_t wpos;            /* end of the unread bytes; the free space starts here */
  size_t max;             /* largest storage size allowed; 0 = no limit */
  tdm_buf_pool_t *pool;   /* source of pool-sized blocks, NULL = malloc only */
} tdm_buf_t;

void tdm_buf_init(tdm_buf_t *b, tdm_buf_pool_t *pool, size_t max);

static inline size_t tdm_buf_len(const tdm_buf_t *b) { return b->wpos - b->rpos; }
static inline size_t tdm_buf_cap(const tdm_buf_t *b) { return b->blk ? b->blk->size : 0; }
static inline size_t tdm_buf_space(const tdm_buf_t *b) { return tdm_buf_cap(b) - b->wpos; }
/* First unread byte (NULL when the buffer holds no storage). */
static inline const uint8_t *tdm_buf_rptr(const tdm_buf_t *b) { return b->blk ? b->blk->data + b->rpos : NULL; }

/* Makes at least `want` (>= 1) bytes writable at the write position: uses free space, else compacts
 * (only when nobody shares the block), else moves the unread bytes to a bigger block (a pool block
 * when it fits). *p / *n receive the whole writable region (n >= want).
 * 0, TDM_EOVERFLOW (unread + want would exceed max) or TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_buf_reserve(tdm_buf_t *b, size_t want, uint8_t **p, size_t *n);
/* Marks n bytes written at the write position (n <= tdm_buf_space). */
void tdm_buf_commit(tdm_buf_t *b, size_t n);
/* Marks n unread bytes consumed (n <= tdm_buf_len); an emptied buffer rewinds to offset 0 when the
 * block is not shared, so steady request/response traffic never compacts. */
void tdm_buf_consume(tdm_buf_t *b, size_t n);
/* Moves the unread bytes to offset 0 (no-op when the block is shared or already compact). */
void tdm_buf_compact(tdm_buf_t *b);
/* reserve + memcpy + commit. */
TDM_MUSTCHECK int tdm_buf_append(tdm_buf_t *b, const void *bytes, size_t n);
/* A new reference to the storage holding p[0..n), which must lie within the unread bytes; *off gets
 * p's offset in the slice. The bytes stay valid in the slice however the buffer moves on. */
tdm_slice_t *tdm_buf_share(tdm_buf_t *b, const uint8_t *p, size_t n, size_t *off);
/* Drops the storage when no unread bytes remain (an idle connection then holds no buffer). */
void tdm_buf_release_if_empty(tdm_buf_t *b);
/* Drops the storage and any unread bytes; the buffer is empty and reusable. */
void tdm_buf_free(tdm_buf_t *b);

#endif
