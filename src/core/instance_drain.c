/* Drain and stop (behaviour.md §11.3). The first SIGTERM/SIGINT (or tdm_instance_shutdown) turns
 * readiness DOWN (503, Draining true), tells systemd STOPPING=1 and sends DRAIN to every worker: the
 * frontend closes its listener, answers new requests with OVERLOADED and closes each client once its
 * requests are answered and its bytes flushed. The main loop counts open clients every 50 ms by
 * STATS_REQ and finishes when none is left, or at shutdown_drain_timeout_ms (the workers' STOP then
 * makes the frontend try a last flush and close everything). A second signal finishes at once.
 *
 *   finish: fail HTTP waiters, close control connections and HTTP listeners
 *     phase 1: every worker closes its data plane (frontend_stop: last flush and close of each client;
 *              route requests given up; backend pools closed) and keeps its loop running; the main
 *              loop asks every 10 ms whether any data-plane handle is left (at most 2 s)
 *     phase 2: workers STOP + join; signals, timers, inbox closed; the main loop runs dry and
 *              tdm_instance_run returns. Modules may thus close their handles asynchronously. */
#include <tandem/obs/log.h>
#include <tandem/obs/notify.h>
#include <tandem/util/time.h>
#include "instance_internal.h"

static void close_timer(uv_timer_t *t)
{
  if (!uv_is_closing((uv_handle_t *)t))
    uv_close((uv_handle_t *)t, NULL);
}

/* Phase 2: every worker's data plane has closed (or the grace period ended). */
static void stop_workers(tdm_instance_t *inst)
{
  for (unsigned i = 0; i < inst->nstarted; i++)
    tdm_worker_stop(&inst->workers[i].w);
  for (unsigned i = 0; i < inst->nstarted; i++) {
    int rc = tdm_worker_join(&inst->workers[i].w);
    if (rc != 0)
      tdm_log_error(NULL, "worker %u: its loop closed with handles still open (%s)", i, tdm_strerror(rc));
    inst->workers[i].started = false;
  }
  if (inst->signals_on)
    tdm_signals_close(&inst->signals, NULL);
  inst->signals_on = false;
  if (inst->timers_on) {
    close_timer(&inst->reload_timer);
    close_timer(&inst->drain_timer);
    close_timer(&inst->drain_poll);
  }
  if (inst->inbox_on)
    tdm_inbox_close(&inst->inbox, NULL);
  inst->inbox_on = false;
  if (inst->result == 0)
    tdm_log_info(NULL, "stopped");
}

static void settle_round(uv_timer_t *t);

static void settled(tdm_instance_t *inst, void *arg, int result)
{
  /* result < 0: some worker still has data-plane handles open (or closing). */
  if (result == 0 || tdm_time_mono_ms() >= inst->settle_deadline) {
    if (result != 0)
      tdm_log_warn(NULL, "workers still closing connections after %d ms: stopping them anyway",
                   TDM__INSTANCE_SETTLE_MS);
    uv_timer_stop(&inst->drain_poll);
    stop_workers(inst);
    return;
  }
  uv_timer_start(&inst->drain_poll, settle_round, 10, 0);
}

static void settle_round(uv_timer_t *t)
{
  tdm_instance_t *inst = t->data;
  if (tdm__instance_broadcast_closing(inst, tdm__instance_worker_settled, NULL, settled) < 0)
    settled(inst, NULL, 0); /* out of memory: stop now */
}

static void data_plane_closed(tdm_instance_t *inst, void *arg, int result)
{
  settled(inst, NULL, TDM_EINVAL); /* first check after one more loop iteration of each worker */
}

void tdm__instance_finish(tdm_instance_t *inst, int result)
{
  if (inst->closing)
    return;
  inst->closing = true;
  inst->result = result;
  /* Nothing will answer HTTP waiters any more. */
  tdm__instance_stats_fail_all(inst);
  tdm__instance_reload_fail_all(inst);
  for (int c = 0; c < 2; c++) {
    if (inst->control[c])
      inst->plug.control_close(inst->control[c]);
    inst->control[c] = NULL;
  }
  if (inst->metrics_http)
    tdm_admin_close(inst->metrics_http, NULL, NULL);
  if (inst->admin_http)
    tdm_admin_close(inst->admin_http, NULL, NULL);
  inst->metrics_http = inst->admin_http = NULL;
  if (inst->timers_on) {
    uv_timer_stop(&inst->drain_timer);
    uv_timer_stop(&inst->drain_poll);
    uv_timer_stop(&inst->reload_timer);
  }
  /* Phase 1: each worker closes its listener, clients (after a last flush attempt), requests and pools,
   * and its loop keeps running until their handles have closed; phase 2 then stops the threads. */
  inst->settle_deadline = tdm_time_mono_ms() + TDM__INSTANCE_SETTLE_MS;
  if (inst->nstarted == 0 || !inst->timers_on ||
      tdm__instance_broadcast_closing(inst, tdm__instance_worker_close_plane, NULL, data_plane_closed) < 0)
    stop_workers(inst);
}

static void drain_counted(tdm_instance_t *inst, void *arg, bool ok)
{
  if (!ok || inst->closing)
    return;
  uint64_t open = tdm__instance_open_clients(inst);
  if (open == 0) {
    tdm_log_info(NULL, "drain complete: every client connection is closed");
    tdm__instance_finish(inst, 0);
  }
}

static void on_drain_poll(uv_timer_t *t)
{
  tdm_instance_t *inst = t->data;
  tdm__instance_stats(inst, drain_counted, NULL);
}

static void on_drain_timeout(uv_timer_t *t)
{
  tdm_instance_t *inst = t->data;
  tdm_log_warn(NULL, "drain timeout (%d ms): closing the %llu client connections still open",
               inst->conf->shutdown_drain_timeout_ms, (unsigned long long)tdm__instance_open_clients(inst));
  tdm__instance_finish(inst, 0);
}

void tdm_instance_shutdown(tdm_instance_t *inst)
{
  if (inst->closing)
    return;
  if (inst->draining) {
    tdm_log_warn(NULL, "second stop request during the drain: stopping now");
    tdm__instance_finish(inst, 0);
    return;
  }
  inst->draining = true;
  if (inst->signals_on)
    tdm_signals_set_draining(&inst->signals); /* a drain begun by the API makes the next signal final */
  tdm_notify_stopping();
  if (!inst->listen_requested) {
    tdm_log_info(NULL, "stopping before any client listener opened");
    tdm__instance_finish(inst, 0);
    return;
  }
  int timeout = inst->conf->shutdown_drain_timeout_ms;
  tdm_log_info(NULL, "draining: readiness DOWN, listeners closing, in-flight requests finishing (at most %d ms)",
               timeout);
  tdm__instance_send_drain(inst);
  uv_timer_start(&inst->drain_timer, on_drain_timeout, (uint64_t)timeout, 0);
  uv_timer_start(&inst->drain_poll, on_drain_poll, TDM__INSTANCE_DRAIN_POLL_MS, TDM__INSTANCE_DRAIN_POLL_MS);
}
