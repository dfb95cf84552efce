/* Per-worker request deadlines: one ordered intrusive list of armed requests behind the worker's single
 * timer, replacing a libuv timer per request (a heap insert and delete each). The list (first half) is
 * pure: insert appends in O(1) when timeouts are equal and walks back from the tail otherwise; removal
 * is an O(1) unlink that never touches the timer. The worker timer (second half) is started only for an
 * earlier head or after it fired, and runs request.c's expiry for each request found due. */
#include "internal.h"

/* ---- the list ---- */

void tdm__route_deadlines_insert(tdm__route_deadlines_t *dl, tdm__route_deadline_t *d, uint64_t due)
{
  tdm__route_deadlines_remove(dl, d);
  d->due = due;
  /* Walk back past the entries due strictly later: `at` ends on the last entry due at or before `due`
   * (or on the list head itself), and d goes right after it. Bounded by the entries armed. */
  tdm_list_t *h = &dl->armed;
  tdm_list_t *at = tdm_list_empty(h) ? h : h->prev;
  while (at != h && TDM_CONTAINER_OF(at, tdm__route_deadline_t, link)->due > due) at = at->prev;
  tdm_list_insert_head(at, &d->link); /* links d right after `at` */
  dl->n++;
}

void tdm__route_deadlines_remove(tdm__route_deadlines_t *dl, tdm__route_deadline_t *d)
{
  if (!tdm__route_deadline_armed(d)) return;
  TDM_ASSERT(dl->n > 0);
  tdm_list_remove(&d->link);
  dl->n--;
}

bool tdm__route_deadlines_arm(tdm__route_deadlines_t *dl, uint64_t *due)
{
  tdm_list_t *first = tdm_list_first(&dl->armed);
  if (!first) return false;
  uint64_t head = TDM_CONTAINER_OF(first, tdm__route_deadline_t, link)->due;
  if (dl->timer_on && dl->timer_due <= head) return false;
  dl->timer_on = true;
  dl->timer_due = head;
  *due = head;
  return true;
}

void tdm__route_deadlines_timer_idle(tdm__route_deadlines_t *dl) { dl->timer_on = false; }

tdm__route_deadline_t *tdm__route_deadlines_pop_due(tdm__route_deadlines_t *dl, uint64_t now)
{
  tdm_list_t *first = tdm_list_first(&dl->armed);
  if (!first) return NULL;
  tdm__route_deadline_t *d = TDM_CONTAINER_OF(first, tdm__route_deadline_t, link);
  if (d->due > now) return NULL;
  tdm__route_deadlines_remove(dl, d);
  return d;
}

/* ---- the worker timer ---- */

static void on_worker_timer(uv_timer_t *t);

/* Starts the timer when the list says the head is due before it would fire (or it is idle). */
static void arm(tdm_route_worker_t *rw, uint64_t now)
{
  uint64_t due;
  if (tdm__route_deadlines_arm(&rw->deadlines, &due))
    uv_timer_start(&rw->timer, on_worker_timer, due > now ? due - now : 0, 0);
}

/* Fires at (or after) the earliest deadline it was armed for, which may belong to a request that has
 * completed since: then nothing is due and it only re-arms for the current head. Each due request is
 * detached before its expiry runs, and the head is read again after each, because an expiry may
 * complete and recycle that request (or, through its callbacks, disarm others). */
static void on_worker_timer(uv_timer_t *t)
{
  tdm_route_worker_t *rw = t->data;
  uint64_t now = uv_now(rw->pw->loop);
  tdm__route_deadlines_timer_idle(&rw->deadlines);
  tdm__route_deadline_t *d;
  while ((d = tdm__route_deadlines_pop_due(&rw->deadlines, now))) {
    if (tdm__route_deadlines_empty(&rw->deadlines)) uv_unref((uv_handle_t *)&rw->timer);
    tdm__route_expire(TDM_CONTAINER_OF(d, tdm_route_req_t, deadline));
  }
  arm(rw, now);
}

void tdm__route_timer_start(tdm_route_req_t *req)
{
  tdm_route_worker_t *rw = req->rw;
  uint64_t now = uv_now(rw->pw->loop);
  if (!rw->timer_open) {
    uv_timer_init(rw->pw->loop, &rw->timer);
    rw->timer.data = rw;
    rw->timer_open = true;
    uv_unref((uv_handle_t *)&rw->timer); /* referenced below while a request is armed */
  }
  tdm__route_timer_disarm(req);
  if (tdm__route_deadlines_empty(&rw->deadlines)) uv_ref((uv_handle_t *)&rw->timer);
  tdm__route_deadlines_insert(&rw->deadlines, &req->deadline, now + (uint64_t)req->conf->proxy_request_timeout_ms);
  arm(rw, now);
}

void tdm__route_timer_disarm(tdm_route_req_t *req)
{
  tdm_route_worker_t *rw = req->rw;
  if (!tdm__route_deadline_armed(&req->deadline)) return;
  tdm__route_deadlines_remove(&rw->deadlines, &req->deadline);
  if (tdm__route_deadlines_empty(&rw->deadlines)) uv_unref((uv_handle_t *)&rw->timer);
}

static void timer_closed(uv_handle_t *h) { free(h->data); }

void tdm__route_timer_close(tdm_route_worker_t *rw)
{
  TDM_ASSERT(tdm__route_deadlines_empty(&rw->deadlines));
  if (rw->timer_open)
    uv_close((uv_handle_t *)&rw->timer, timer_closed); /* closing also stops it */
  else
    free(rw);
}
