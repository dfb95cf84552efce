/* Intrusive circular doubly-linked list for the mock's connections, timers and control clients.
 * A head is a link whose prev/next point at itself when empty; an unlinked node has NULL pointers.
 * Header-only: tiny, and shared by every module of the mock. */
#ifndef TDM_MOCK_LIST_H
#define TDM_MOCK_LIST_H

#include <stddef.h>
#include <stdbool.h>

typedef struct tdm_mock_link_s {
  struct tdm_mock_link_s *prev; /* previous node, or the head */
  struct tdm_mock_link_s *next; /* next node, or the head */
} tdm_mock_link_t;

#define TDM_MOCK_CONTAINER(ptr, type, field) ((type *)(void *)((char *)(ptr) - offsetof(type, field)))

static inline void tdm_mock_list_init(tdm_mock_link_t *head) { head->prev = head->next = head; }
static inline bool tdm_mock_list_empty(const tdm_mock_link_t *head) { return head->next == head; }
static inline bool tdm_mock_list_linked(const tdm_mock_link_t *l) { return l->next != NULL; }

static inline void tdm_mock_list_push(tdm_mock_link_t *head, tdm_mock_link_t *l)
{
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}

static inline void tdm_mock_list_remove(tdm_mock_link_t *l)
{
  if (!l->next) return;
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = NULL;
}

/* Iterates with a saved successor, so the body may unlink (but not free the successor of) the node. */
#define TDM_MOCK_LIST_EACH(it, tmp, head) \
  for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); (it) = (tmp), (tmp) = (it)->next)

#endif
