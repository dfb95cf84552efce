/* Version negotiation and authentication of the control connection (behaviour.md §2.2 step 6, §3):
 * SUPPORTED is cached; PROTOCOL_VERSIONS, when listed, picks the highest usable version at once;
 * otherwise versions are probed down from control_conn_max_protocol_version (DSE_V2, DSE_V1, v5, v4,
 * v3, v2 when enabled), one connection per refusal, refusals logged at DEBUG and the result at INFO.
 * AUTHENTICATE is answered with the configured credentials (DSE PLAIN dance for DseAuthenticator). */
#include <ctype.h>
#include <tandem/obs/log.h>
#include "internal.h"

static const char *cname(const tdm_control_t *c) { return tdm__cluster_name(c->cluster); }
static const tdm_conf_backend_t *bconf(const tdm_control_t *c) { return &c->conf->cluster[c->cluster]; }

/* Next version to probe after `idx` (v2 only when enabled); -1 when none is left. */
static int next_probe(const tdm_control_t *c, int idx)
{
  for (int i = idx + 1; i < (int)TDM_ARRAY_SIZE(tdm__proto_order); i++) {
    uint8_t v = tdm__proto_order[i];
    if (v == TDM_PROTO_V2 && !c->conf->enable_protocol_v2) continue;
    return i;
  }
  return -1;
}

/* Closes this connection on purpose and reconnects at once to the same candidate with c->version. */
static void reconnect_same(tdm_control_t *c)
{
  c->reconnect_now = true;
  tdm_conn_close(&c->cc->conn, 0);
}

static void log_accepted(tdm_control_t *c)
{
  char list[64];
  tdm_topology_format_versions(c->accepted, list, sizeof(list));
  tdm_log_info(NULL, "%s %s accepts %s", cname(c), c->peer, list);
}

static void on_supported(tdm_control_t *c, const tdm_response_supported_t *s)
{
  c->have_supported = true;
  c->compression[0] = c->cql_version[0] = '\0';
  size_t pos = 0, n = 0;
  tdm_str_t v;
  while (s->has_compression && tdm_response_strlist_next(&s->compression, &pos, &v) == 1) {
    int w = snprintf(c->compression + n, sizeof(c->compression) - n, "%s%.*s", n ? "," : "", (int)v.len, v.ptr);
    if (w < 0 || (size_t)w >= sizeof(c->compression) - n) break;
    for (size_t i = n; i < n + (size_t)w; i++) c->compression[i] = (char)tolower((unsigned char)c->compression[i]);
    n += (size_t)w;
  }
  pos = 0;
  if (s->has_cql_version && tdm_response_strlist_next(&s->cql_version, &pos, &v) == 1)
    snprintf(c->cql_version, sizeof(c->cql_version), "%.*s", (int)v.len, v.ptr);
  int max_idx = tdm__proto_order_index((uint8_t)c->conf->control_conn_max_protocol_version);
  if (max_idx < 0) max_idx = 0;
  if (s->has_protocol_versions) {
    c->probing = false; /* the list answers the question: no (further) probes */
    c->accepted = tdm__parse_protocol_versions(&s->protocol_versions, c->conf->enable_protocol_v2);
    for (int i = max_idx; i < (int)TDM_ARRAY_SIZE(tdm__proto_order); i++) {
      uint8_t pv = tdm__proto_order[i];
      if (c->accepted & tdm_conf_version_bit(pv)) {
        log_accepted(c);
        if (pv == c->version) {
          tdm__ctl_send_startup(c);
          return;
        }
        /* a node may hold a connection to the version of its first frame (the mock does, as Cassandra
         * 3 did): STARTUP goes on a fresh connection in the chosen version. Not a probe: it is listed. */
        c->version = pv;
        reconnect_same(c);
        return;
      }
    }
    tdm__ctl_fail(c, TDM_EPROTO_VERSION, "%s lists no protocol version tandem can use", c->peer);
    return;
  }
  if (!c->probing) {
    c->probing = true;
    c->probe_idx = max_idx;
    if (tdm__proto_order[max_idx] == TDM_PROTO_V2 && !c->conf->enable_protocol_v2) c->probe_idx = next_probe(c, max_idx);
    if (c->probe_idx < 0) {
      tdm__ctl_fail(c, TDM_EPROTO_VERSION, "no protocol version to probe");
      return;
    }
  }
  uint8_t pv = tdm__proto_order[c->probe_idx];
  if (pv == c->version) {
    tdm__ctl_send_startup(c);
    return;
  }
  c->version = pv;
  reconnect_same(c);
}

/* Moves to the next version to probe after a refusal of c->version; false when none is left. */
bool tdm__ctl_probe_advance(tdm_control_t *c)
{
  int from = c->probe_idx;
  if (!c->probing) {
    /* the discovery OPTIONS was refused: probe from the configured maximum, skipping this version */
    c->probing = true;
    from = tdm__proto_order_index((uint8_t)c->conf->control_conn_max_protocol_version) - 1;
  }
  int idx = next_probe(c, from);
  while (idx >= 0 && tdm__proto_order[idx] == c->version && !c->have_supported) idx = next_probe(c, idx);
  if (idx < 0) return false;
  c->probe_idx = idx;
  c->version = tdm__proto_order[idx];
  return true;
}

/* A refusal of c->version (OPTIONS or STARTUP): probe the next version on a fresh connection. */
static void refused_version(tdm_control_t *c, const char *what)
{
  tdm_log_debug(c->cc ? c->cc->conn.tag : NULL, "%s %s refused v%u (%s)", cname(c), c->peer, (unsigned)c->version,
                what);
  if (!tdm__ctl_probe_advance(c)) {
    tdm__ctl_fail(c, TDM_EPROTO_VERSION, "%s accepts none of the protocol versions tandem probes", c->peer);
    return;
  }
  reconnect_same(c);
}

void tdm__ctl_on_options_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  if (err < 0 || !r) {
    refused_version(c, "undecodable reply");
    return;
  }
  if (r->opcode == TDM_OP_SUPPORTED) {
    on_supported(c, &r->supported);
    return;
  }
  if (r->opcode == TDM_OP_ERROR && tdm__is_version_refusal(r->error.code, r->error.message)) {
    refused_version(c, "OPTIONS");
    return;
  }
  tdm__ctl_fail(c, TDM_EPROTO_MALFORMED, "unexpected %s to OPTIONS", tdm_opcode_name(f->h.opcode));
}

static void on_auth_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err);

static void send_auth(tdm_control_t *c, const tdm_bytes_t *challenge)
{
  const char *why = NULL;
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm__sasl_next(&c->sasl, challenge, "", bconf(c)->username, bconf(c)->password, &w, &why);
  if (rc == 0) rc = tdm__ctl_send(c, TDM_OP_AUTH_RESPONSE, &w, on_auth_reply);
  tdm_writer_free(&w);
  if (rc < 0) tdm__ctl_fail(c, rc, "authentication failed: %s", why ? why : tdm_strerror(rc));
}

static void on_auth_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  if (err < 0 || !r) {
    tdm__ctl_fail(c, err ? err : TDM_EPROTO_MALFORMED, "undecodable reply during authentication");
    return;
  }
  switch (r->opcode) {
  case TDM_OP_AUTH_CHALLENGE:
    send_auth(c, &r->token);
    return;
  case TDM_OP_AUTH_SUCCESS:
    tdm__ctl_discovered(c);
    return;
  case TDM_OP_ERROR:
    tdm_log_error(NULL, "%s rejected the configured credentials for '%s': %.*s", cname(c), bconf(c)->username,
                  (int)r->error.message.len, r->error.message.ptr ? r->error.message.ptr : "");
    tdm__ctl_fail(c, TDM_EINVAL, "%s rejected the configured credentials for '%s': %.*s", cname(c),
                  bconf(c)->username, (int)r->error.message.len, r->error.message.ptr ? r->error.message.ptr : "");
    return;
  default:
    tdm__ctl_fail(c, TDM_EPROTO_MALFORMED, "unexpected %s during authentication", tdm_opcode_name(f->h.opcode));
  }
}

void tdm__ctl_on_startup_reply(tdm_control_t *c, const tdm__frame_t *f, const tdm_response_t *r, int err)
{
  if (err < 0 || !r) {
    if (c->probing) {
      refused_version(c, "undecodable reply");
      return;
    }
    tdm__ctl_fail(c, err ? err : TDM_EPROTO_MALFORMED, "undecodable reply to STARTUP");
    return;
  }
  bool v5 = tdm_proto_has_segments(c->version);
  if (r->opcode == TDM_OP_READY || r->opcode == TDM_OP_AUTHENTICATE) {
    if (c->probing) {
      /* the first version accepted, and every later one in the order, count as accepted (§3) */
      c->accepted = 0;
      for (int i = c->probe_idx; i >= 0 && i < (int)TDM_ARRAY_SIZE(tdm__proto_order); i = next_probe(c, i))
        c->accepted |= tdm_conf_version_bit(tdm__proto_order[i]);
      log_accepted(c);
    }
    if (v5) tdm__chan_start_segments(&c->cc->chan, false);
  }
  switch (r->opcode) {
  case TDM_OP_READY:
    c->auth_required = false;
    c->authenticator[0] = '\0';
    tdm__ctl_discovered(c);
    return;
  case TDM_OP_AUTHENTICATE:
    c->auth_required = true;
    snprintf(c->authenticator, sizeof(c->authenticator), "%.*s", (int)r->authenticator.len,
             r->authenticator.ptr ? r->authenticator.ptr : "");
    if (!bconf(c)->username[0]) {
      tdm_log_error(NULL, "%s requires authentication but %s_username is not set", cname(c), tdm__cluster_key(c->cluster));
      tdm__ctl_fail(c, TDM_ECONF, "%s requires authentication but %s_username is not set", cname(c),
                    tdm__cluster_key(c->cluster));
      return;
    }
    c->phase = TDM__CTL_AUTH;
    tdm__sasl_start(&c->sasl, r->authenticator);
    send_auth(c, NULL);
    return;
  case TDM_OP_ERROR:
    if (tdm__is_version_refusal(r->error.code, r->error.message) && c->probing) {
      refused_version(c, "STARTUP");
      return;
    }
    tdm__ctl_fail(c, TDM_EINVAL, "STARTUP refused: %s: %.*s", tdm_error_code_name(r->error.code),
                  (int)r->error.message.len, r->error.message.ptr ? r->error.message.ptr : "");
    return;
  default:
    tdm__ctl_fail(c, TDM_EPROTO_MALFORMED, "unexpected %s to STARTUP", tdm_opcode_name(f->h.opcode));
  }
}

void tdm__ctl_send_startup(tdm_control_t *c)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm__startup_body(&w, c->cql_version, TDM_COMPRESSION_NONE);
  if (rc == 0) rc = tdm__ctl_send(c, TDM_OP_STARTUP, &w, tdm__ctl_on_startup_reply);
  tdm_writer_free(&w);
  if (rc < 0) {
    tdm__ctl_fail(c, rc, "cannot send STARTUP: %s", tdm_strerror(rc));
    return;
  }
  c->phase = TDM__CTL_STARTUP;
}
