/* The deadline list of src/route/deadlines.c: the armed requests of one route worker in an intrusive
 * list ordered by deadline, served by the worker's single uv_timer_t. These calls are pure bookkeeping
 * with no libuv call, so they are unit-tested without a loop; the timer that runs as
 * tdm__route_deadlines_arm() decides is declared in internal.h. Never included outside src/route and
 * its test. */
#ifndef TANDEM_SRC_ROUTE_DEADLINES_H
#define TANDEM_SRC_ROUTE_DEADLINES_H

#include <stdbool.h>
#include <stdint.h>
#include <tandem/util/queue.h>

/* One armed request (embedded in it). A zeroed entry is valid and not armed. */
typedef struct tdm__route_deadline_s {
  tdm_list_t link; /* place in tdm__route_deadlines_t.armed; self-linked or zeroed while not armed */
  uint64_t due;    /* loop time (ms) at which it expires; meaningful only while armed */
} tdm__route_deadline_t;

/* The list and what the worker timer was last asked to do. A zeroed struct is an empty list with the
 * timer idle. Invariants: `armed` is sorted by `due`, entries with equal `due` in insertion order;
 * `n` counts its entries; whenever `armed` is not empty, timer_on holds and timer_due <= head's due
 * (a later head only costs one early, empty wake that re-arms). */
typedef struct tdm__route_deadlines_s {
  tdm_list_t armed;   /* armed entries, earliest due first */
  uint32_t n;         /* entries in armed */
  bool timer_on;      /* the timer was started for timer_due and has neither fired nor been stopped */
  uint64_t timer_due; /* loop time the timer fires at, while timer_on */
} tdm__route_deadlines_t;

/* Whether the entry is on a list. */
static inline bool tdm__route_deadline_armed(const tdm__route_deadline_t *d) { return tdm_list_linked(&d->link); }

/* Whether no entry is armed. */
static inline bool tdm__route_deadlines_empty(const tdm__route_deadlines_t *dl) { return dl->n == 0; }

/* Arms d to expire at `due` (re-arms it when it already was). Walks back from the tail past entries
 * due strictly later, so one timeout value (the common case) is an O(1) append and equal deadlines
 * expire in the order they were armed. Never touches the timer: call tdm__route_deadlines_arm(). */
void tdm__route_deadlines_insert(tdm__route_deadlines_t *dl, tdm__route_deadline_t *d, uint64_t due);

/* Disarms d in O(1); a no-op when it is not armed. The timer is left as it is (see the invariant). */
void tdm__route_deadlines_remove(tdm__route_deadlines_t *dl, tdm__route_deadline_t *d);

/* The timer decision: true when the timer must be (re)started to fire at *due, which is the head's
 * deadline; records that it is. False when the list is empty or the timer already fires at or before
 * the head's deadline. */
bool tdm__route_deadlines_arm(tdm__route_deadlines_t *dl, uint64_t *due);

/* The timer fired (a one-shot libuv timer is inactive in its callback) or was stopped. */
void tdm__route_deadlines_timer_idle(tdm__route_deadlines_t *dl);

/* Detaches and returns the head when it is due at `now` (due <= now), else NULL. Callers loop on it,
 * running each entry's expiry before asking again, so an expiry that disarms other entries is safe. */
tdm__route_deadline_t *tdm__route_deadlines_pop_due(tdm__route_deadlines_t *dl, uint64_t now);

#endif
