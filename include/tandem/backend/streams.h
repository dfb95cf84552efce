/* Stream ids of one backend connection: an O(1) allocator plus the in-flight table from id to the
 * request leg that owns it. Ids [0, client_limit) serve forwarded requests; the top `reserved` ids
 * serve tandem's internal requests (heartbeats, re-prepares, schema polls), so internal traffic can
 * always get an id and is recognised by its id when the response arrives. */
#ifndef TANDEM_BACKEND_STREAMS_H
#define TANDEM_BACKEND_STREAMS_H

#include <tandem/common.h>

#define TDM_STREAMS_MAX 32768u       /* v3+ stream ids are 0..32767 */
#define TDM_STREAMS_MAX_V2 128u      /* v2 ids are one signed byte */
#define TDM_STREAMS_RESERVED_MAX 16u /* internal ids when the connection has at least 64 */

typedef struct tdm_streams_s {
  void **owner;         /* owner[id] for ids handed out so far; NULL while free */
  uint16_t *free_ids;   /* LIFO stack of released client ids (reuse keeps the table dense) */
  uint32_t nfree;       /* entries on free_ids */
  uint32_t high;        /* client ids [0, high) have been handed out at least once */
  uint32_t cap;         /* slots allocated in owner/free_ids (grows by doubling up to client_limit) */
  uint32_t client_limit;/* client ids are [0, client_limit) */
  uint32_t total;       /* all ids: client_limit + reserved */
  uint32_t in_use;      /* client ids currently owned */
  uint32_t reserved;    /* internal ids: [client_limit, total) */
  uint32_t internal_used; /* bitmask of internal ids in use (bit i = id client_limit + i) */
  void *internal_owner[TDM_STREAMS_RESERVED_MAX]; /* owners of internal ids */
} tdm_streams_t;

/* total ids for the connection (<= 32768; 128 for v2). Reserves min(16, total / 4) internal ids. */
TDM_MUSTCHECK int tdm_streams_init(tdm_streams_t *s, uint32_t total);
void tdm_streams_free(tdm_streams_t *s);

/* Hands out a client id owned by `owner` (non-NULL): >= 0, or TDM_EUNAVAILABLE when all are in use,
 * TDM_ENOMEM if the table could not grow. */
TDM_MUSTCHECK int tdm_streams_alloc(tdm_streams_t *s, void *owner);
/* Same from the internal range. */
TDM_MUSTCHECK int tdm_streams_alloc_internal(tdm_streams_t *s, void *owner);
/* The owner of id, or NULL if the id is not in use (a late or bogus response). */
void *tdm_streams_owner(const tdm_streams_t *s, int32_t id);
/* Releases id and returns its former owner (NULL if it was not in use: nothing changes). */
void *tdm_streams_release(tdm_streams_t *s, int32_t id);
static inline bool tdm_streams_is_internal(const tdm_streams_t *s, int32_t id)
{
  return id >= (int32_t)s->client_limit && id < (int32_t)s->total;
}
static inline uint32_t tdm_streams_available(const tdm_streams_t *s) { return s->client_limit - s->in_use; }

#endif
