/* The server side of SASL PLAIN on a client connection (behaviour.md §2.2 steps 3-5):
 *
 *   AUTHENTICATE <class of the client-auth cluster>        (framing starts here for v5)
 *   <- "PLAIN"                   -> AUTH_CHALLENGE "PLAIN-START"   (DSE mechanism selection)
 *   <- "[authzid]\0user\0pw"     -> verify: cache (salted hash) or a fresh backend login, and
 *                                   both clusters' sessions ready -> AUTH_SUCCESS (null token)
 *   <- anything else             -> BAD_CREDENTIALS `tandem supports only SASL PLAIN; got <m>`
 *
 * The token's password lives in cred_buf only until the handshake ends (success or failure); the
 * identity (authzid, user) stays, as the client-auth cluster's pool key. */
#include <openssl/crypto.h>

#include <tandem/frontend/handshake.h>
#include <tandem/obs/log.h>
#include <tandem/proto/request.h>
#include <tandem/proto/response.h>
#include <tandem/util/time.h>

#include "internal.h"

void tdm__auth_wipe(tdm_client_t *c)
{
  if (c->cred_buf) OPENSSL_cleanse(c->cred_buf, c->cred_len);
  c->creds.password = NULL;
}

int tdm__auth_start(tdm_client_t *c, int16_t stream)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  const tdm_topology_t *t = pw->topology[c->auth_cluster];
  const char *cls = t && t->authenticator[0] ? t->authenticator : TDM_HANDSHAKE_DEFAULT_AUTHENTICATOR;
  uint8_t buf[192];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, buf, sizeof(buf));
  int rc = tdm_response_encode_authenticate(&w, tdm_str_from(cls));
  if (rc < 0) return rc;
  tdm__client_set_state(c, TDM_CLIENT_AUTHENTICATING);
  rc = tdm__client_send_bytes(c, stream, TDM_OP_AUTHENTICATE, w.buf, w.len, false);
  tdm__client_start_framing(c);
  return rc;
}

static void bad_credentials(tdm_client_t *c, int16_t stream, const tdm_sasl_token_t *t)
{
  char msg[160];
  tdm_sasl_error_text(t, msg, sizeof(msg));
  c->view.pw->stats.handshakes_auth_failed++;
  c->plain_started = false;
  tdm__client_send_error(c, stream, TDM_ERR_BAD_CREDENTIALS, "%s", msg);
}

/* Keeps the identity (and, until the handshake ends, the password) for the client-auth pool key. */
static int keep_credentials(tdm_client_t *c, const tdm_sasl_token_t *t)
{
  size_t need = t->authzid.len + t->user.len + t->password.len + 3;
  if (c->cred_buf) OPENSSL_cleanse(c->cred_buf, c->cred_len);
  free(c->cred_buf);
  c->cred_buf = malloc(need);
  c->cred_len = need;
  if (!c->cred_buf) {
    c->cred_len = 0;
    memset(&c->creds, 0, sizeof(c->creds));
    return TDM_ENOMEM;
  }
  char *p = c->cred_buf;
  const tdm_str_t parts[3] = { t->authzid, t->user, t->password };
  const char **dst[3] = { &c->creds.authzid, &c->creds.user, &c->creds.password };
  for (size_t i = 0; i < 3; i++) {
    if (parts[i].len) memcpy(p, parts[i].ptr, parts[i].len);
    p[parts[i].len] = '\0';
    *dst[i] = p;
    p += parts[i].len + 1;
  }
  c->view.key[c->auth_cluster].creds = &c->creds;
  return 0;
}

int tdm__auth_response(tdm_client_t *c, const tdm_frame_header_t *h, const uint8_t *body, size_t len)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  const uint8_t *b;
  size_t blen;
  uint8_t *owned = NULL;
  tdm_bytes_t token;
  const char *why = "malformed AUTH_RESPONSE";
  int rc = tdm__client_body(c, h, body, len, &b, &blen, &owned);
  if (rc < 0) {
    tdm__client_body_failed(c, h, body, len, rc);
    return rc;
  }
  rc = tdm_request_decode_auth_response(b, blen, &token, &why);
  if (rc < 0) {
    free(owned);
    pw->stats.frames_malformed++;
    tdm__client_send_error(c, h->stream, TDM_ERR_PROTOCOL_ERROR, "Malformed AUTH_RESPONSE: %s", why);
    tdm__client_close_after_flush(c);
    return rc;
  }
  tdm_sasl_token_t t;
  tdm_sasl_parse(token.ptr, token.len, &t);
  if (t.kind == TDM_SASL_SELECT_PLAIN && !c->plain_started) {
    static const uint8_t challenge[] = { 0, 0, 0, 11, 'P', 'L', 'A', 'I', 'N', '-', 'S', 'T', 'A', 'R', 'T' };
    c->plain_started = true;
    rc = tdm__client_send_bytes(c, h->stream, TDM_OP_AUTH_CHALLENGE, challenge, sizeof(challenge), false);
  } else if (t.kind != TDM_SASL_CREDENTIALS) {
    if (t.kind == TDM_SASL_SELECT_PLAIN) snprintf(t.mechanism, sizeof(t.mechanism), "PLAIN twice");
    bad_credentials(c, h->stream, &t);
  } else if ((rc = keep_credentials(c, &t)) < 0) {
    tdm__client_send_error(c, h->stream, TDM_ERR_SERVER_ERROR, "tandem: out of memory");
    tdm__client_close_after_flush(c);
  } else {
    uint64_t ttl = pw->conf ? (uint64_t)TDM_MAX(pw->conf->auth_cache_ttl_ms, 0) : 0;
    c->cache_hit = tdm_auth_cache_check(&c->fe->auth, t.authzid, t.user, t.password,
                                        tdm_time_loop_ms(pw->loop), ttl);
    /* a cache hit asks the backend for readiness only: no login checks the password again (§2.2 step 4) */
    c->creds.verified = c->cache_hit;
    tdm_log_debug(c->conn.tag, "SASL PLAIN for '%s'%s", c->creds.user, c->cache_hit ? " (cached)" : "");
    c->plain_started = false;
    c->hs_answer = TDM_OP_AUTH_SUCCESS;
    c->hs_stream = h->stream;
    rc = tdm__hs_open_sessions(c);
  }
  if (owned) OPENSSL_cleanse(owned, blen);
  free(owned);
  return rc;
}
