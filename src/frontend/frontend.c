/* The frontend of one worker: its SO_REUSEPORT listener, admission (limit, draining), the per-worker
 * handles (deadline timer, v5 seal pass) and the lifecycle calls of client.h: start, drain (stop
 * listening; new requests get OVERLOADED; in-flight ones finish; each connection flushes, then
 * closes) and stop (close everything now). Memory: pw->frontend is cleared at stop and freed once the
 * listener and both handles have closed; clients never touch it after their close began. */
#include <unistd.h>

#include <tandem/core/worker.h>
#include <tandem/frontend/client.h>
#include <tandem/obs/log.h>

#include "internal.h"

static int admit(tdm_frontend_t *fe, uv_os_sock_t fd)
{
  const tdm_conf_t *conf = fe->pw->conf;
  int limit = conf ? conf->proxy_max_client_connections : 0;
  if (limit > 0 && fe->admitted >= (uint32_t)limit) return tdm__refusal_accept(fe, fd);
  return tdm__client_accept(fe, fd);
}

static int on_accept(tdm_listener_t *l, uv_os_sock_t fd, const tdm_sockaddr_t *peer)
{
  (void)peer;
  (void)admit(l->data, fd); /* the fd is taken (or closed) in every case */
  return 0;
}

void tdm__frontend_on_idle(uv_idle_t *h)
{
  tdm_frontend_t *fe = h->data;
  tdm__frontend_seal_all(fe);
  if (tdm_list_empty(&fe->sealing)) {
    uv_idle_stop(&fe->idle);
    fe->idle_on = false;
  }
}

static void maybe_free(tdm_frontend_t *fe)
{
  if (fe->handles) return;
  tdm_auth_cache_free(&fe->auth);
  tdm__vstmts_free(fe);
  free(fe->lz4_spare);
  free(fe);
}

static void on_handle_closed(uv_handle_t *h)
{
  tdm_frontend_t *fe = h->data;
  fe->handles--;
  maybe_free(fe);
}

static void on_listener_closed(tdm_listener_t *l)
{
  tdm_frontend_t *fe = l->data;
  fe->handles--;
  maybe_free(fe);
}

static void stop_listening(tdm_frontend_t *fe)
{
  if (!fe->listening) return;
  fe->listening = false;
  fe->handles++; /* the listener's close callback is the last word on its memory */
  tdm_listener_close(&fe->listener, on_listener_closed);
}

int tdm_frontend_start(tdm_proxy_worker_t *pw)
{
  TDM_ASSERT(pw->frontend == NULL && pw->worker != NULL);
  tdm_frontend_t *fe = calloc(1, sizeof(*fe));
  if (!fe) return TDM_ENOMEM;
  fe->pw = pw;
  fe->net = &pw->worker->net;
  tdm_list_init(&fe->handshaking);
  tdm_list_init(&fe->refusals);
  tdm_list_init(&fe->sealing);
  tdm_list_init(&pw->clients);
  int rc = tdm_auth_cache_init(&fe->auth);
  if (rc < 0) {
    free(fe);
    return rc;
  }
  rc = uv_timer_init(pw->loop, &fe->timer);
  if (rc < 0) {
    tdm_auth_cache_free(&fe->auth);
    free(fe);
    return rc;
  }
  fe->timer.data = fe;
  fe->handles = 1;
  rc = uv_idle_init(pw->loop, &fe->idle);
  if (rc < 0) {
    uv_close((uv_handle_t *)&fe->timer, on_handle_closed);
    return rc;
  }
  fe->idle.data = fe;
  fe->handles++;
  pw->frontend = fe;
  const tdm_conf_t *conf = pw->conf;
  const char *host = conf && conf->proxy_listen_address ? conf->proxy_listen_address : "localhost";
  int port = conf ? conf->proxy_listen_port : 14002;
  rc = tdm_listener_open_host(&fe->listener, pw->loop, host, (uint16_t)port, 0, on_accept, fe);
  if (rc < 0) {
    tdm_log_error(NULL, "worker %u: cannot listen on %s:%d: %s", pw->index, host, port, tdm_strerror(rc));
    return rc; /* the caller stops the frontend, which frees it */
  }
  fe->listening = true;
  tdm_log_debug(NULL, "worker %u: listening on %s", pw->index, fe->listener.name);
  return 0;
}

uint16_t tdm_frontend_port(const tdm_proxy_worker_t *pw)
{
  const tdm_frontend_t *fe = pw->frontend;
  return fe && fe->listening ? tdm_listener_port(&fe->listener) : 0;
}

int tdm_frontend_adopt(tdm_proxy_worker_t *pw, uv_os_sock_t fd)
{
  tdm_frontend_t *fe = pw->frontend;
  if (!fe || fe->stopping) {
    close(fd);
    return TDM_ECLOSED;
  }
  if (fe->draining) {
    pw->stats.client_refused_draining++;
    close(fd);
    return 0;
  }
  return admit(fe, fd);
}

void tdm_frontend_drain(tdm_proxy_worker_t *pw)
{
  tdm_frontend_t *fe = pw->frontend;
  if (!fe || fe->draining) return;
  fe->draining = true;
  pw->draining = true;
  stop_listening(fe);
  tdm_log_info(NULL, "worker %u: draining %u client connection(s)", pw->index, fe->admitted);
  TDM_LIST_FOREACH_SAFE(it, tmp, &pw->clients)
  {
    tdm_client_t *c = TDM_CONTAINER_OF(it, tdm_client_t, link);
    if (!tdm__client_alive(c)) continue;
    switch (c->state) {
    case TDM_CLIENT_WAIT_BACKENDS:
      /* the held handshake request is answered now: it will not become READY */
      tdm__hs_cancel(c);
      tdm__client_send_error(c, c->hs_stream, TDM_ERR_OVERLOADED, "Shutting down, please retry on next host.");
      tdm__client_set_state(c, TDM_CLIENT_DRAINING);
      break;
    case TDM_CLIENT_REFUSED_VERSION: tdm__client_close_after_flush(c); continue;
    case TDM_CLIENT_CLOSED:
    case TDM_CLIENT_DRAINING: continue;
    default: tdm__client_set_state(c, TDM_CLIENT_DRAINING); break;
    }
    tdm__client_drain_check(c);
  }
}

void tdm_frontend_stop(tdm_proxy_worker_t *pw)
{
  tdm_frontend_t *fe = pw->frontend;
  if (!fe) return;
  fe->stopping = true;
  stop_listening(fe);
  TDM_LIST_FOREACH_SAFE(it, tmp, &pw->clients)
  {
    tdm_client_t *c = TDM_CONTAINER_OF(it, tdm_client_t, link);
    tdm_conn_close(&c->conn, TDM_ECLOSED);
  }
  tdm__refusals_close_all(fe);
  pw->frontend = NULL;
  uv_timer_stop(&fe->timer);
  uv_close((uv_handle_t *)&fe->timer, on_handle_closed);
  uv_idle_stop(&fe->idle);
  uv_close((uv_handle_t *)&fe->idle, on_handle_closed);
}
