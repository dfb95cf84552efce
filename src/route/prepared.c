/* Prepared-statement registry: TDM_PREPARED_SHARDS shards, each a chained hash table plus an LRU list
 * under one mutex. Invariants per shard: every entry is in exactly one hash chain and in the LRU list;
 * count == list length <= max; the registry holds one reference on each entry it contains. */
#include <pthread.h>
#include <tandem/route/prepared.h>

#define TDM_PREPARED_BUCKETS 1024 /* per shard; chains stay short up to ~50k entries in all */

typedef struct shard_s {
  pthread_mutex_t lock;                              /* guards everything below */
  tdm_prepared_entry_t *buckets[TDM_PREPARED_BUCKETS]; /* hash chains */
  tdm_prepared_entry_t *lru_head, *lru_tail;         /* most / least recently used */
  size_t count;                                      /* entries in this shard */
  size_t max;                                        /* bound for this shard */
  uint64_t misses, evictions;                        /* counters */
} shard_t;

struct tdm_prepared_registry_s {
  shard_t shards[TDM_PREPARED_SHARDS]; /* independent shards */
};

static uint64_t hash_id(const uint8_t *p, size_t n)
{
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static size_t shard_max(size_t max_entries)
{
  size_t per = (max_entries + TDM_PREPARED_SHARDS - 1) / TDM_PREPARED_SHARDS;
  return per ? per : 1;
}

int tdm_prepared_registry_new(size_t max_entries, tdm_prepared_registry_t **out)
{
  if (max_entries == 0) return TDM_EINVAL;
  tdm_prepared_registry_t *reg = calloc(1, sizeof(*reg));
  if (!reg) return TDM_ENOMEM;
  for (int i = 0; i < TDM_PREPARED_SHARDS; i++) {
    pthread_mutex_init(&reg->shards[i].lock, NULL);
    reg->shards[i].max = shard_max(max_entries);
  }
  *out = reg;
  return 0;
}

static void set_id(tdm_prepared_id_t *id, const uint8_t *p, size_t n)
{
  id->len = (uint8_t)n;
  if (n) memcpy(id->bytes, p, n);
}

int tdm_prepared_entry_new(const uint8_t *origin_id, size_t origin_len, const uint8_t *target_id,
                           size_t target_len, tdm_str_t query, tdm_str_t keyspace, int kind, uint32_t flags,
                           tdm_prepared_entry_t **out)
{
  if (origin_len == 0 || origin_len > TDM_PREPARED_ID_MAX || target_len > TDM_PREPARED_ID_MAX) return TDM_EINVAL;
  tdm_prepared_entry_t *e = calloc(1, sizeof(*e));
  if (!e) return TDM_ENOMEM;
  e->query = malloc(query.len + 1);
  e->keyspace = malloc(keyspace.len + 1);
  if (!e->query || !e->keyspace) {
    free(e->query);
    free(e->keyspace);
    free(e);
    return TDM_ENOMEM;
  }
  if (query.len) memcpy(e->query, query.ptr, query.len);
  e->query[query.len] = '\0';
  e->query_len = query.len;
  if (keyspace.len) memcpy(e->keyspace, keyspace.ptr, keyspace.len);
  e->keyspace[keyspace.len] = '\0';
  set_id(&e->origin_id, origin_id, origin_len);
  set_id(&e->target_id, target_id, target_len);
  e->kind = kind;
  e->flags = flags;
  atomic_init(&e->refs, 1);
  *out = e;
  return 0;
}

void tdm_prepared_entry_set_meta_ids(tdm_prepared_entry_t *e, const uint8_t *origin_meta, size_t olen,
                                     const uint8_t *target_meta, size_t tlen)
{
  TDM_ASSERT(olen <= TDM_PREPARED_ID_MAX && tlen <= TDM_PREPARED_ID_MAX);
  set_id(&e->origin_meta_id, origin_meta, olen);
  set_id(&e->target_meta_id, target_meta, tlen);
}

void tdm_prepared_entry_ref(tdm_prepared_entry_t *e) { atomic_fetch_add(&e->refs, 1); }

void tdm_prepared_entry_unref(tdm_prepared_entry_t *e)
{
  if (!e) return;
  if (atomic_fetch_sub(&e->refs, 1) == 1) {
    free(e->query);
    free(e->keyspace);
    free(e);
  }
}

static shard_t *shard_of(tdm_prepared_registry_t *reg, const uint8_t *id, size_t n, size_t *bucket)
{
  uint64_t h = hash_id(id, n);
  *bucket = (size_t)((h >> 8) % TDM_PREPARED_BUCKETS);
  return &reg->shards[h % TDM_PREPARED_SHARDS];
}

static void lru_unlink(shard_t *s, tdm_prepared_entry_t *e)
{
  if (e->lru_prev) e->lru_prev->lru_next = e->lru_next; else s->lru_head = e->lru_next;
  if (e->lru_next) e->lru_next->lru_prev = e->lru_prev; else s->lru_tail = e->lru_prev;
  e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(shard_t *s, tdm_prepared_entry_t *e)
{
  e->lru_prev = NULL;
  e->lru_next = s->lru_head;
  if (s->lru_head) s->lru_head->lru_prev = e; else s->lru_tail = e;
  s->lru_head = e;
}

/* Unlinks the entry with this id from its chain and the LRU; returns it (caller drops the ref). */
static tdm_prepared_entry_t *detach(shard_t *s, size_t bucket, const uint8_t *id, size_t n)
{
  for (tdm_prepared_entry_t **pp = &s->buckets[bucket]; *pp; pp = &(*pp)->hnext) {
    tdm_prepared_entry_t *e = *pp;
    if (e->origin_id.len == n && memcmp(e->origin_id.bytes, id, n) == 0) {
      *pp = e->hnext;
      e->hnext = NULL;
      lru_unlink(s, e);
      s->count--;
      return e;
    }
  }
  return NULL;
}

/* Evicts least recently used entries until the shard fits its bound; returns them chained by hnext. */
static tdm_prepared_entry_t *evict_to_fit(shard_t *s)
{
  tdm_prepared_entry_t *victims = NULL;
  while (s->count > s->max && s->lru_tail) {
    tdm_prepared_entry_t *v = s->lru_tail;
    size_t bucket = (size_t)((hash_id(v->origin_id.bytes, v->origin_id.len) >> 8) % TDM_PREPARED_BUCKETS);
    tdm_prepared_entry_t *got = detach(s, bucket, v->origin_id.bytes, v->origin_id.len);
    TDM_ASSERT(got == v);
    v->hnext = victims;
    victims = v;
    s->evictions++;
  }
  return victims;
}

static void release_chain(tdm_prepared_entry_t *e)
{
  while (e) {
    tdm_prepared_entry_t *next = e->hnext;
    tdm_prepared_entry_unref(e);
    e = next;
  }
}

void tdm_prepared_registry_put(tdm_prepared_registry_t *reg, tdm_prepared_entry_t *e)
{
  size_t bucket;
  shard_t *s = shard_of(reg, e->origin_id.bytes, e->origin_id.len, &bucket);
  pthread_mutex_lock(&s->lock);
  tdm_prepared_entry_t *old = detach(s, bucket, e->origin_id.bytes, e->origin_id.len);
  e->hnext = s->buckets[bucket];
  s->buckets[bucket] = e;
  lru_push_front(s, e);
  s->count++;
  tdm_prepared_entry_t *victims = evict_to_fit(s);
  pthread_mutex_unlock(&s->lock);
  /* Frees happen outside the lock. */
  tdm_prepared_entry_unref(old);
  release_chain(victims);
}

tdm_prepared_entry_t *tdm_prepared_registry_get(tdm_prepared_registry_t *reg, const uint8_t *id, size_t n)
{
  size_t bucket;
  shard_t *s = shard_of(reg, id, n, &bucket);
  pthread_mutex_lock(&s->lock);
  tdm_prepared_entry_t *e = s->buckets[bucket];
  while (e && !(e->origin_id.len == n && memcmp(e->origin_id.bytes, id, n) == 0)) e = e->hnext;
  if (e) {
    lru_unlink(s, e);
    lru_push_front(s, e);
    tdm_prepared_entry_ref(e);
  } else {
    s->misses++;
  }
  pthread_mutex_unlock(&s->lock);
  return e;
}

void tdm_prepared_registry_set_max(tdm_prepared_registry_t *reg, size_t max_entries)
{
  if (max_entries == 0) max_entries = 1;
  for (int i = 0; i < TDM_PREPARED_SHARDS; i++) {
    shard_t *s = &reg->shards[i];
    pthread_mutex_lock(&s->lock);
    s->max = shard_max(max_entries);
    tdm_prepared_entry_t *victims = evict_to_fit(s);
    pthread_mutex_unlock(&s->lock);
    release_chain(victims);
  }
}

void tdm_prepared_registry_stats(tdm_prepared_registry_t *reg, tdm_prepared_stats_t *out)
{
  memset(out, 0, sizeof(*out));
  for (int i = 0; i < TDM_PREPARED_SHARDS; i++) {
    shard_t *s = &reg->shards[i];
    pthread_mutex_lock(&s->lock);
    out->entries += s->count;
    out->misses += s->misses;
    out->evictions += s->evictions;
    pthread_mutex_unlock(&s->lock);
  }
}

void tdm_prepared_registry_free(tdm_prepared_registry_t *reg)
{
  if (!reg) return;
  for (int i = 0; i < TDM_PREPARED_SHARDS; i++) {
    shard_t *s = &reg->shards[i];
    tdm_prepared_entry_t *e = s->lru_head;
    while (e) {
      tdm_prepared_entry_t *next = e->lru_next;
      tdm_prepared_entry_unref(e);
      e = next;
    }
    pthread_mutex_destroy(&s->lock);
  }
  free(reg);
}

unsigned tdm_prepared_registry_shard_of(const uint8_t *id, size_t len)
{
  return (unsigned)(hash_id(id, len) % TDM_PREPARED_SHARDS);
}
