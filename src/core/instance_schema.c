/* The schema-agreement hold the route module asks for after a DDL (behaviour.md §5.3): the control
 * connections live on the main loop, the request on a worker, so a hold crosses threads twice.
 *
 *   worker: hook.wait(req) ── CALL ──► main: wait on each control connection (both clusters)
 *   worker: done(req, agreed) ◄── CALL ── main: last cluster answered (agreed = both agreed)
 *   worker: hook.cancel(req) marks the hold cancelled; its answer, when it comes, is dropped.
 *
 * A hold belongs to the worker's list until its answer arrives (worker thread); its `pending` and
 * `agreed` fields are the main loop's between the two CALLs. */
#include <tandem/obs/log.h>
#include "instance_internal.h"

typedef struct hold_s {
  tdm_list_t link;                    /* slot->holds (worker thread) */
  tdm__wslot_t *slot;                 /* worker it came from */
  void (*done)(void *req, bool agreed); /* route's callback */
  void *req;                          /* route's request */
  int wait_ms;                        /* schema_agreement_wait_ms of the request's epoch */
  bool cancelled;                     /* worker thread: the route gave up on it */
  bool agreed;                        /* main loop: every cluster asked agreed so far */
  unsigned pending;                   /* main loop: clusters not yet answered */
} hold_t;

/* ---- back on the worker ---- */

static void hold_finish(void *arg)
{
  hold_t *h = arg;
  tdm_list_remove(&h->link);
  if (!h->cancelled)
    h->done(h->req, h->agreed);
  free(h);
}

static void hold_lost(void *arg)
{
  hold_t *h = arg; /* the worker is stopping: tdm__instance_schema_holds_drop already unlinked it */
  free(h);
}

/* ---- main loop ---- */

static void send_back(hold_t *h)
{
  tdm_msg_t *m = tdm_msg_new_call(hold_finish, h, hold_lost);
  if (!m) {
    /* Cannot answer: the route's request timer still bounds the hold. Leaked only under OOM. */
    tdm_log_error(NULL, "out of memory answering a schema hold");
    return;
  }
  if (tdm_worker_send(&h->slot->w, m) < 0)
    tdm_msg_free(m); /* runs hold_lost */
}

static void cluster_answered(void *arg, bool agreed)
{
  hold_t *h = arg;
  h->agreed = h->agreed && agreed;
  if (--h->pending == 0)
    send_back(h);
}

static void hold_start(void *arg)
{
  hold_t *h = arg;
  tdm_instance_t *inst = h->slot->pw.instance;
  h->agreed = true;
  h->pending = 1; /* held by this function until every cluster was asked */
  for (int c = 0; c < 2; c++) {
    if (!inst->control[c] || !inst->plug.control_wait_schema_agreement || inst->closing)
      continue;
    h->pending++;
    inst->plug.control_wait_schema_agreement(inst->control[c], h->wait_ms, cluster_answered, h);
  }
  cluster_answered(h, true);
}

static void hold_start_lost(void *arg)
{
  hold_t *h = arg; /* main inbox closed: answer "not agreed" so the route is not left waiting */
  h->agreed = false;
  send_back(h);
}

/* ---- the hook (worker thread) ---- */

static void hook_wait(void *arg, int wait_ms, void (*done)(void *req, bool agreed), void *req)
{
  tdm__wslot_t *slot = arg;
  hold_t *h = calloc(1, sizeof(*h));
  tdm_msg_t *m = h ? tdm_msg_new_call(hold_start, h, hold_start_lost) : NULL;
  if (!m) {
    free(h);
    done(req, false); /* "exactly once, later": the route tolerates an early answer only as a failure */
    return;
  }
  h->slot = slot;
  h->done = done;
  h->req = req;
  h->wait_ms = wait_ms;
  tdm_list_insert_tail(&slot->holds, &h->link);
  if (tdm_inbox_push(&slot->pw.instance->inbox, m) < 0)
    tdm_msg_free(m); /* runs hold_start_lost, which sends the answer back to this worker */
}

static void hook_cancel(void *arg, void *req)
{
  tdm__wslot_t *slot = arg;
  TDM_LIST_FOREACH(it, &slot->holds)
  {
    hold_t *h = TDM_CONTAINER_OF(it, hold_t, link);
    if (h->req == req && !h->cancelled) {
      h->cancelled = true;
      return;
    }
  }
}

void tdm__instance_schema_hook_init(tdm__wslot_t *slot)
{
  slot->schema_hook.wait = hook_wait;
  slot->schema_hook.cancel = hook_cancel;
  slot->schema_hook.arg = slot;
  slot->pw.instance->plug.route_set_schema_hook(&slot->pw, &slot->schema_hook);
}

void tdm__instance_schema_holds_drop(tdm__wslot_t *slot)
{
  /* Requests are gone (route closed or about to): their answers, if they come, must not be delivered.
   * The hold memory stays with the main loop's message, which frees it. */
  tdm_list_t *n;
  while ((n = tdm_list_pop(&slot->holds)) != NULL)
    TDM_CONTAINER_OF(n, hold_t, link)->cancelled = true;
}
