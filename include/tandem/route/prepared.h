/* The prepared-statement registry shared by all workers: ORIGIN's prepared id -> what tandem needs to
 * run that statement on both clusters (TARGET's id, both v5 result_metadata_ids, the text and keyspace
 * for re-prepares, the statement class). Bounded LRU, sharded by id hash; each shard has one mutex,
 * held only for a lookup or an insert. Entries are immutable and refcounted, so a worker may keep
 * using an entry that another thread evicts or replaces. */
#ifndef TANDEM_ROUTE_PREPARED_H
#define TANDEM_ROUTE_PREPARED_H

#include <stdatomic.h>
#include <tandem/common.h>
#include <tandem/util/str.h>

#define TDM_PREPARED_SHARDS 16
#define TDM_PREPARED_ID_MAX 64 /* longest prepared or metadata id stored (Cassandra's are 16-byte md5) */

typedef struct tdm_prepared_id_s {
  uint8_t len;                       /* bytes used */
  uint8_t bytes[TDM_PREPARED_ID_MAX]; /* the id */
} tdm_prepared_id_t;

typedef struct tdm_prepared_entry_s {
  tdm_prepared_id_t origin_id;       /* key: the id clients use (ORIGIN's) */
  tdm_prepared_id_t target_id;       /* TARGET's id for the same text */
  tdm_prepared_id_t origin_meta_id;  /* v5 result_metadata_id from ORIGIN (len 0 if none) */
  tdm_prepared_id_t target_meta_id;  /* v5 result_metadata_id from TARGET (len 0 if none) */
  int kind;                          /* statement class (tdm classification kind, opaque here) */
  uint32_t flags;                    /* statement flags from the classifier (opaque here) */
  char *query;                       /* NUL-terminated text as prepared */
  size_t query_len;                  /* strlen(query) */
  char *keyspace;                    /* keyspace it was prepared under, "" if none */
  /* internal */
  _Atomic int refs;                  /* the registry's reference + one per holder */
  struct tdm_prepared_entry_s *hnext; /* hash chain within the shard */
  struct tdm_prepared_entry_s *lru_prev, *lru_next; /* shard LRU list, most recent at head */
} tdm_prepared_entry_t;

typedef struct tdm_prepared_registry_s tdm_prepared_registry_t;

typedef struct tdm_prepared_stats_s {
  uint64_t entries;   /* entries held now */
  uint64_t misses;    /* lookups that found nothing */
  uint64_t evictions; /* entries evicted by the bound */
} tdm_prepared_stats_t;

/* max_entries >= 1; the bound is split evenly over shards, so eviction is LRU per shard. */
TDM_MUSTCHECK int tdm_prepared_registry_new(size_t max_entries, tdm_prepared_registry_t **out);
void tdm_prepared_registry_free(tdm_prepared_registry_t *reg);
/* Changes the bound (a reload of prepared_cache_max_entries); shrinking evicts at once. */
void tdm_prepared_registry_set_max(tdm_prepared_registry_t *reg, size_t max_entries);

/* Builds an entry (refs = 1, owned by the caller) from the given fields; copies everything. */
TDM_MUSTCHECK int tdm_prepared_entry_new(const uint8_t *origin_id, size_t origin_len, const uint8_t *target_id,
                                         size_t target_len, tdm_str_t query, tdm_str_t keyspace, int kind,
                                         uint32_t flags, tdm_prepared_entry_t **out);
void tdm_prepared_entry_set_meta_ids(tdm_prepared_entry_t *e, const uint8_t *origin_meta, size_t olen,
                                     const uint8_t *target_meta, size_t tlen);
void tdm_prepared_entry_ref(tdm_prepared_entry_t *e);
void tdm_prepared_entry_unref(tdm_prepared_entry_t *e);

/* Inserts e (replacing an entry with the same origin id) and takes over the caller's reference. */
void tdm_prepared_registry_put(tdm_prepared_registry_t *reg, tdm_prepared_entry_t *e);
/* Finds origin_id, refreshes its LRU position and returns it with a reference the caller must drop
 * with tdm_prepared_entry_unref; NULL on a miss (counted). */
tdm_prepared_entry_t *tdm_prepared_registry_get(tdm_prepared_registry_t *reg, const uint8_t *origin_id, size_t len);
void tdm_prepared_registry_stats(tdm_prepared_registry_t *reg, tdm_prepared_stats_t *out);
/* The shard an id belongs to (tests use it to build same-shard LRU sequences). */
unsigned tdm_prepared_registry_shard_of(const uint8_t *id, size_t len);

#endif
