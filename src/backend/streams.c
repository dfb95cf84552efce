/* Stream-id allocator. Invariants: every client id < high is either owned (owner[id] != NULL) or on the
 * free stack exactly once; in_use + nfree == high; ids >= high were never handed out. alloc pops the
 * free stack or takes `high`, release pushes, so both are O(1) (amortised for the doubling growth). */
#include <tandem/backend/streams.h>

int tdm_streams_init(tdm_streams_t *s, uint32_t total)
{
  memset(s, 0, sizeof(*s));
  if (total < 2 || total > TDM_STREAMS_MAX) return TDM_EINVAL;
  s->total = total;
  s->reserved = TDM_MIN(TDM_STREAMS_RESERVED_MAX, total / 4);
  if (s->reserved == 0) s->reserved = 1;
  s->client_limit = total - s->reserved;
  return 0;
}

void tdm_streams_free(tdm_streams_t *s)
{
  free(s->owner);
  free(s->free_ids);
  memset(s, 0, sizeof(*s));
}

static int grow(tdm_streams_t *s)
{
  uint32_t cap = s->cap ? s->cap * 2 : 64;
  if (cap > s->client_limit) cap = s->client_limit;
  void **owner = realloc(s->owner, cap * sizeof(*owner));
  if (!owner) return TDM_ENOMEM;
  s->owner = owner;
  memset(owner + s->cap, 0, (cap - s->cap) * sizeof(*owner));
  uint16_t *ids = realloc(s->free_ids, cap * sizeof(*ids));
  if (!ids) return TDM_ENOMEM;
  s->free_ids = ids;
  s->cap = cap;
  return 0;
}

int tdm_streams_alloc(tdm_streams_t *s, void *owner)
{
  TDM_ASSERT(owner != NULL);
  uint32_t id;
  if (s->nfree > 0) {
    id = s->free_ids[--s->nfree];
  } else if (s->high < s->client_limit) {
    if (s->high == s->cap && grow(s)) return TDM_ENOMEM;
    id = s->high++;
  } else {
    return TDM_EUNAVAILABLE;
  }
  TDM_ASSERT(s->owner[id] == NULL);
  s->owner[id] = owner;
  s->in_use++;
  return (int)id;
}

int tdm_streams_alloc_internal(tdm_streams_t *s, void *owner)
{
  TDM_ASSERT(owner != NULL);
  for (uint32_t i = 0; i < s->reserved; i++) {
    if (!(s->internal_used & (1u << i))) {
      s->internal_used |= 1u << i;
      s->internal_owner[i] = owner;
      return (int)(s->client_limit + i);
    }
  }
  return TDM_EUNAVAILABLE;
}

void *tdm_streams_owner(const tdm_streams_t *s, int32_t id)
{
  if (id < 0) return NULL;
  if (tdm_streams_is_internal(s, id)) {
    uint32_t i = (uint32_t)id - s->client_limit;
    return (s->internal_used & (1u << i)) ? s->internal_owner[i] : NULL;
  }
  if ((uint32_t)id >= s->high) return NULL;
  return s->owner[id];
}

void *tdm_streams_release(tdm_streams_t *s, int32_t id)
{
  void *owner = tdm_streams_owner(s, id);
  if (!owner) return NULL;
  if (tdm_streams_is_internal(s, id)) {
    uint32_t i = (uint32_t)id - s->client_limit;
    s->internal_used &= ~(1u << i);
    s->internal_owner[i] = NULL;
    return owner;
  }
  s->owner[id] = NULL;
  s->free_ids[s->nfree++] = (uint16_t)id;
  s->in_use--;
  return owner;
}
