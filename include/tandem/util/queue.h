/* Intrusive doubly-linked circular lists (header-only). A node lives inside the struct it links; a
 * list head is a node whose next/prev point at itself when empty. A zeroed head or node is valid and
 * inert (rule 11): every operation treats next == NULL as "empty / not linked" and initialises lazily.
 * Removal re-links the node to itself, so removing twice, or removing an unlinked node, is harmless. */
#ifndef TANDEM_UTIL_QUEUE_H
#define TANDEM_UTIL_QUEUE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct tdm_list_s {
  struct tdm_list_s *next; /* following node, or the head itself at the end; NULL when never used */
  struct tdm_list_s *prev; /* preceding node, or the head itself at the start; NULL when never used */
} tdm_list_t;

/* The struct of type `type` whose member `field` is at address `ptr`. */
#define TDM_CONTAINER_OF(ptr, type, field) ((type *)(void *)((char *)(ptr) - offsetof(type, field)))

static inline void tdm_list_init(tdm_list_t *h) { h->next = h->prev = h; }

static inline bool tdm_list_empty(const tdm_list_t *h) { return h->next == NULL || h->next == h; }

/* True while node n is on some list (a head with elements also counts as linked). */
static inline bool tdm_list_linked(const tdm_list_t *n) { return n->next != NULL && n->next != n; }

static inline void tdm_list__fix(tdm_list_t *h)
{
  if (h->next == NULL) tdm_list_init(h);
}

static inline void tdm_list_insert_tail(tdm_list_t *h, tdm_list_t *n)
{
  tdm_list__fix(h);
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}

static inline void tdm_list_insert_head(tdm_list_t *h, tdm_list_t *n)
{
  tdm_list__fix(h);
  n->next = h->next;
  n->prev = h;
  h->next->prev = n;
  h->next = n;
}

/* Unlinks n from whatever list holds it (no-op when unlinked) and leaves it self-linked. */
static inline void tdm_list_remove(tdm_list_t *n)
{
  if (n->next == NULL || n->next == n) {
    tdm_list_init(n);
    return;
  }
  n->prev->next = n->next;
  n->next->prev = n->prev;
  tdm_list_init(n);
}

/* First node, or NULL when the list is empty. */
static inline tdm_list_t *tdm_list_first(const tdm_list_t *h) { return tdm_list_empty(h) ? NULL : h->next; }

/* Removes and returns the first node, or NULL when empty. */
static inline tdm_list_t *tdm_list_pop(tdm_list_t *h)
{
  tdm_list_t *n = tdm_list_first(h);
  if (n) tdm_list_remove(n);
  return n;
}

/* Moves every node of `from` to the tail of `to`; `from` ends empty. */
static inline void tdm_list_splice_tail(tdm_list_t *to, tdm_list_t *from)
{
  if (tdm_list_empty(from)) return;
  tdm_list__fix(to);
  from->next->prev = to->prev;
  to->prev->next = from->next;
  from->prev->next = to;
  to->prev = from->prev;
  tdm_list_init(from);
}

/* First node to visit when iterating h (h itself when empty or never used); h may be const. */
#define TDM_LIST__START(h) ((h)->next ? (h)->next : (tdm_list_t *)(uintptr_t)(h))

/* Iterates node pointers; the body must not remove `it` (use TDM_LIST_FOREACH_SAFE for that). */
#define TDM_LIST_FOREACH(it, h) for (tdm_list_t *it = TDM_LIST__START(h); it != (h); it = it->next)

/* Iterates allowing removal of the current node. */
#define TDM_LIST_FOREACH_SAFE(it, tmp, h)                                                                    \
  for (tdm_list_t *it = TDM_LIST__START(h), *tmp = it->next; it != (h); it = tmp, tmp = it->next)

#endif
