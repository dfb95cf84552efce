/* The client handshake on one connection (behaviour.md §2.2, §2.3): OPTIONS answered locally, STARTUP
 * checked, then READY (or AUTH_SUCCESS, auth.c) held until each cluster has a ready session for this
 * client's key:
 *
 *   STARTUP ok ─> [auth.c: AUTHENTICATE ... token] ─> WAIT_BACKENDS: session_open(ORIGIN), (TARGET)
 *     both ok ─────────────> READY / AUTH_SUCCESS, framing starts (v5), buffered requests resume
 *     client-auth cluster BAD_CREDENTIALS ─> relayed verbatim, back to AUTHENTICATING
 *     configured credentials refused ─────> BAD_CREDENTIALS `tandem: <C> rejected ...`, stays open
 *     version refused by a node ──────────> §3 error, learned, REFUSED_VERSION
 *     anything else ──────────────────────> SERVER_ERROR `tandem: cannot open a session ...`, close
 *
 * A pending session holds a reference on the client; a close cancels what is still pending. */
#include <openssl/crypto.h>

#include <tandem/frontend/handshake.h>
#include <tandem/frontend/versions.h>
#include <tandem/obs/log.h>
#include <tandem/proto/response.h>
#include <tandem/util/time.h>

#include "internal.h"

static const char *cluster_name(int k) { return k == TDM_CONF_ORIGIN ? "ORIGIN" : "TARGET"; }

unsigned tdm__frontend_usable(tdm_frontend_t *fe)
{
  tdm_proxy_worker_t *pw = fe->pw;
  unsigned learned = 0;
  for (int k = 0; k < TDM_CONF_CLUSTER_MAX; k++) {
    /* a newer snapshot carries what its control connection knows: refusals learned here under an
     * older one are forgotten, and relearned if the node refuses again */
    if (fe->learned_refused[k] && pw->topology[k] && pw->topology[k]->generation != fe->learned_gen[k])
      fe->learned_refused[k] = 0;
    learned |= fe->learned_refused[k];
  }
  return tdm_versions_usable(pw->conf, pw->topology[TDM_CONF_ORIGIN], pw->topology[TDM_CONF_TARGET], learned);
}

int tdm__hs_options(tdm_client_t *c, int16_t stream)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm_handshake_supported(&w, pw->topology[TDM_CONF_ORIGIN], pw->topology[TDM_CONF_TARGET],
                                   tdm__frontend_usable(c->fe));
  if (rc == 0) rc = tdm__client_send_bytes(c, stream, TDM_OP_SUPPORTED, w.buf, w.len, true);
  tdm_writer_free(&w);
  return rc;
}

/* ---- sessions ---- */

static void on_session(tdm_client_t *c, int k, int err, const uint8_t *body, size_t len, const char *reason);
static void on_session_origin(void *arg, int err, const uint8_t *body, size_t len, const char *reason)
{
  on_session(arg, TDM_CONF_ORIGIN, err, body, len, reason);
}
static void on_session_target(void *arg, int err, const uint8_t *body, size_t len, const char *reason)
{
  on_session(arg, TDM_CONF_TARGET, err, body, len, reason);
}
static const tdm_session_cb k_session_cb[TDM_CONF_CLUSTER_MAX] = { on_session_origin, on_session_target };

void tdm__hs_cancel(tdm_client_t *c)
{
  tdm_backend_t *be = c->view.pw->backend;
  for (int k = 0; k < TDM_CONF_CLUSTER_MAX; k++) {
    if (!(c->sessions_pending & (1u << k))) continue;
    c->sessions_pending &= (uint8_t)~(1u << k);
    if (be) tdm_backend_session_cancel(be, k_session_cb[k], c);
    tdm_client_unref(c);
  }
}

/* Wipes the plaintext password: from here on only the pool holds it (§2.2 step 4). */
static void drop_password(tdm_client_t *c)
{
  if (!c->creds.password) return;
  OPENSSL_cleanse((void *)c->creds.password, strlen(c->creds.password));
  c->creds.password = NULL;
}

void tdm__hs_finish(tdm_client_t *c)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  if (c->auth_cluster >= 0 && !c->cache_hit && c->creds.user) {
    tdm_auth_cache_put(&c->fe->auth, tdm_str_from(c->creds.authzid), tdm_str_from(c->creds.user),
                       tdm_str_from(c->creds.password), tdm_time_loop_ms(pw->loop),
                       pw->conf ? (uint64_t)TDM_MAX(pw->conf->auth_cache_ttl_ms, 0) : 0);
  }
  drop_password(c);
  tdm__client_set_state(c, TDM_CLIENT_READY);
  tdm__client_handshake_done(c);
  pw->stats.handshakes_ok++;
  if (c->hs_answer == TDM_OP_AUTH_SUCCESS) {
    uint8_t null_token[4] = { 0xff, 0xff, 0xff, 0xff }; /* [bytes] null */
    tdm__client_send_bytes(c, c->hs_stream, TDM_OP_AUTH_SUCCESS, null_token, 4, false);
  } else {
    tdm__client_send_bytes(c, c->hs_stream, TDM_OP_READY, NULL, 0, false);
    tdm__client_start_framing(c);
  }
  tdm_log_debug(c->conn.tag, "ready: v%u, %s%s%s", (unsigned)c->view.version, tdm_compression_name(c->view.compression),
                c->creds.user ? ", user " : "", c->creds.user ? c->creds.user : "");
  /* requests pipelined behind the handshake were left in the buffer: parse them now */
  tdm_conn_read_resume(&c->conn, TDM_FRONTEND_PAUSE_WAIT);
  tdm_conn_redeliver(&c->conn);
}

/* The ERROR body's code and message (a relayed cluster error). */
static bool error_of(const uint8_t *body, size_t len, uint32_t *code, tdm_str_t *msg)
{
  return body && tdm_response_peek_error_code(body, len, code, msg) == 0;
}

static bool is_version_refusal(int err, uint32_t code, tdm_str_t msg, bool have)
{
  if (err == TDM_EPROTO_VERSION) return true;
  if (!have || code != TDM_ERR_PROTOCOL_ERROR) return false;
  static const char *const needles[] = { "Invalid or unsupported protocol version", "Beta version of the protocol used" };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(needles); i++) {
    size_t nl = strlen(needles[i]);
    for (size_t p = 0; p + nl <= msg.len; p++)
      if (memcmp(msg.ptr + p, needles[i], nl) == 0) return true;
  }
  return false;
}

static void session_failed(tdm_client_t *c, int k, int err, const uint8_t *body, size_t len, const char *reason)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  tdm__hs_cancel(c); /* the other cluster's session no longer matters */
  uint32_t code = 0;
  tdm_str_t msg = { 0 };
  bool have = error_of(body, len, &code, &msg);
  if (is_version_refusal(err, code, msg, have)) {
    unsigned bit = tdm_conf_version_bit(c->view.version);
    tdm_topology_t *t = pw->topology[k];
    c->fe->learned_refused[k] |= bit;
    c->fe->learned_gen[k] = t ? t->generation : 0;
    tdm_log_info(c->conn.tag, "%s refused protocol version %u during a client handshake", cluster_name(k),
                 (unsigned)c->view.version);
    /* this worker stops offering it now; the control connection publishes it to every worker (§3) */
    if (pw->version_refused) pw->version_refused(pw, k, c->view.version);
    tdm__client_refuse_version(c, c->view.version);
    return;
  }
  if (have && code == TDM_ERR_BAD_CREDENTIALS) {
    pw->stats.handshakes_auth_failed++;
    drop_password(c);
    c->plain_started = false;
    if (k == c->auth_cluster) {
      /* the client's own credentials: the cluster's answer, verbatim; the client may retry. A cached
       * identity the cluster now refuses (password changed) is forgotten: the retry logs in afresh. */
      if (c->cache_hit && c->creds.user)
        tdm_auth_cache_forget(&c->fe->auth, tdm_str_from(c->creds.authzid), tdm_str_from(c->creds.user));
      c->cache_hit = false;
      tdm__client_send_bytes(c, c->hs_stream, TDM_OP_ERROR, body, len, false);
      tdm__client_set_state(c, TDM_CLIENT_AUTHENTICATING);
      return;
    }
    const char *user = pw->conf ? pw->conf->cluster[k].username : "";
    tdm_log_error(c->conn.tag, "%s rejected the configured credentials for '%s': %.*s", cluster_name(k),
                  user ? user : "", (int)msg.len, msg.ptr ? msg.ptr : "");
    tdm__client_send_error(c, c->hs_stream, TDM_ERR_BAD_CREDENTIALS,
                           "tandem: %s rejected the configured credentials for '%s': %.*s", cluster_name(k),
                           user ? user : "", (int)msg.len, msg.ptr ? msg.ptr : "");
    tdm__client_set_state(c, c->auth_cluster >= 0 ? TDM_CLIENT_AUTHENTICATING : TDM_CLIENT_STARTUP);
    return;
  }
  pw->stats.handshakes_backend_failed++;
  char why[512]; /* a TLS reason names its file: room for it (tdm__client_send_error's cap) */
  if (reason && strncmp(reason, "tandem: ", 8) == 0)
    snprintf(why, sizeof(why), "%s", reason);
  else if (have)
    snprintf(why, sizeof(why), "tandem: cannot open a session to %s (%s): %s: %.*s", cluster_name(k), "node",
             tdm_error_code_name(code), (int)msg.len, msg.ptr ? msg.ptr : "");
  else
    snprintf(why, sizeof(why), "tandem: cannot open a session to %s (%s): %s", cluster_name(k), "no node",
             reason ? reason : tdm_strerror(err));
  tdm_log_warn(c->conn.tag, "%s", why);
  tdm__client_send_error(c, c->hs_stream, TDM_ERR_SERVER_ERROR, "%s", why);
  tdm__client_close_after_flush(c);
}

static void on_session(tdm_client_t *c, int k, int err, const uint8_t *body, size_t len, const char *reason)
{
  if (!(c->sessions_pending & (1u << k))) return; /* cancelled */
  c->sessions_pending &= (uint8_t)~(1u << k);
  if (tdm__client_alive(c) && c->state == TDM_CLIENT_WAIT_BACKENDS) {
    if (err) session_failed(c, k, err, body, len, reason);
    else if (c->sessions_pending == 0) tdm__hs_finish(c);
  }
  tdm_client_unref(c); /* the session's reference, dropped last */
}

int tdm__hs_open_sessions(tdm_client_t *c)
{
  tdm_backend_t *be = c->view.pw->backend;
  tdm__client_set_state(c, TDM_CLIENT_WAIT_BACKENDS);
  if (!be) {
    session_failed(c, TDM_CONF_ORIGIN, TDM_EUNAVAILABLE, NULL, 0, "tandem: no backend on this worker");
    return 0;
  }
  /* both bits first: a callback that runs synchronously must not see the other one as done */
  tdm_client_ref(c);
  tdm_client_ref(c);
  c->sessions_pending = 3;
  for (int k = 0; k < TDM_CONF_CLUSTER_MAX; k++) {
    if (!(c->sessions_pending & (1u << k))) continue; /* a synchronous failure cancelled it */
    int rc = tdm_backend_session_open(be, k, &c->view.key[k], k_session_cb[k], c);
    if (rc < 0) on_session(c, k, rc, NULL, 0, NULL);
  }
  return 0;
}

int tdm__hs_startup(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  tdm_startup_t s;
  const char *why = "malformed STARTUP";
  if (h->flags & TDM_FLAG_COMPRESSED) {
    c->view.pw->stats.frames_malformed++;
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "STARTUP must not be compressed");
    tdm__client_close_after_flush(c);
    return TDM_EPROTO_MALFORMED;
  }
  if (tdm_request_decode_startup(body, len, &s, &why) < 0) {
    c->view.pw->stats.frames_malformed++;
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "Malformed STARTUP: %s", why);
    tdm__client_close_after_flush(c);
    return TDM_EPROTO_MALFORMED;
  }
  char msg[160];
  tdm_compression_t comp;
  if (tdm_handshake_check_startup(&s, h->version, pw->topology[TDM_CONF_ORIGIN], pw->topology[TDM_CONF_TARGET], &comp,
                                  msg, sizeof(msg)) < 0) {
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "%s", msg);
    return 0;
  }
  snprintf(c->driver_buf, sizeof(c->driver_buf), "%.*s %.*s", (int)TDM_MIN(s.driver_name.len, (size_t)48),
           s.driver_name.ptr ? s.driver_name.ptr : "", (int)TDM_MIN(s.driver_version.len, (size_t)40),
           s.driver_version.ptr ? s.driver_version.ptr : "");
  c->driver = c->driver_buf;
  c->view.compression = comp;
  for (int k = 0; k < TDM_CONF_CLUSTER_MAX; k++) c->view.key[k].compression = comp;
  c->hs_stream = h->stream;
  c->auth_cluster = tdm_handshake_auth_cluster(pw->conf, pw->topology[TDM_CONF_ORIGIN], pw->topology[TDM_CONF_TARGET]);
  tdm_log_debug(c->conn.tag, "STARTUP v%u %s, driver %s, auth %s", (unsigned)h->version, tdm_compression_name(comp),
                c->driver, c->auth_cluster < 0 ? "none" : cluster_name(c->auth_cluster));
  if (c->auth_cluster >= 0) return tdm__auth_start(c, h->stream);
  c->hs_answer = TDM_OP_READY;
  return tdm__hs_open_sessions(c);
}
