/* The last stages of a load: default ports filled into host lists, the cross-key rules of behaviour.md
 * §1.1 (each error located at the key that breaks the rule), and the findings that only warrant a WARN
 * (compat keys without effect, hostname verification off). Single-key ranges live in the key table. */
#include "internal.h"

#define WHERE_MAX 160 /* room for "file:line:col" or a variable name */

static const tdm_conf_key_t *ckey(const char *prefix, const char *suffix)
{
  char name[96];
  snprintf(name, sizeof(name), "%s_%s", prefix, suffix);
  const tdm_conf_key_t *k = tdm_conf_key_find(name);
  TDM_ASSERT(k);
  return k;
}

static const tdm_conf_key_t *key(const char *name)
{
  const tdm_conf_key_t *k = tdm_conf_key_find(name);
  TDM_ASSERT(k);
  return k;
}

static bool set(const char *s)
{
  return s && *s;
}

#define ERR(ld, k, fmt, ...)                                   \
  do {                                                         \
    char where_[WHERE_MAX];                                    \
    tdm__conf_where((ld), (k), where_, sizeof(where_));        \
    tdm__conf_error((ld), "%s: " fmt, where_, __VA_ARGS__);    \
  } while (0)

#define WARN(ld, k, fmt, ...)                                  \
  do {                                                         \
    char where_[WHERE_MAX];                                    \
    tdm__conf_where((ld), (k), where_, sizeof(where_));        \
    tdm__conf_warn((ld), "%s: " fmt, where_, __VA_ARGS__);     \
  } while (0)

static const char *const cluster_prefix[TDM_CONF_CLUSTER_MAX] = { "origin", "target" };
static const char *const cluster_label[TDM_CONF_CLUSTER_MAX] = { "ORIGIN", "TARGET" };

void tdm__conf_resolve(tdm_conf_t *conf)
{
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) {
    tdm_conf_backend_t *b = &conf->cluster[c];
    for (size_t i = 0; i < b->contact_points.n; i++)
      if (!b->contact_points.v[i].port_set)
        b->contact_points.v[i].port = (uint16_t)b->port;
  }
  for (size_t i = 0; i < conf->proxy_topology_addresses.n; i++)
    if (!conf->proxy_topology_addresses.v[i].port_set)
      conf->proxy_topology_addresses.v[i].port = (uint16_t)conf->proxy_listen_port;
}

static void validate_cluster(tdm__conf_loader_t *ld, int c)
{
  const tdm_conf_backend_t *b = &ld->conf->cluster[c];
  const char *p = cluster_prefix[c];
  const tdm_conf_key_t *kb = ckey(p, "secure_connect_bundle_path");
  const tdm_conf_key_t *kcp = ckey(p, "contact_points");
  const tdm_conf_key_t *kdc = ckey(p, "local_datacenter");
  bool ca = set(b->tls_server_ca_path), cert = set(b->tls_client_cert_path), tkey = set(b->tls_client_key_path);

  if (set(b->secure_connect_bundle_path)) {
    bool clash = false;
    if (b->contact_points.n) {
      ERR(ld, kb, "'%s' and '%s' are mutually exclusive", kb->name, kcp->name);
      clash = true;
    }
    if (set(b->local_datacenter)) {
      ERR(ld, kb, "'%s' and '%s' are mutually exclusive", kb->name, kdc->name);
      clash = true;
    }
    if (ca || cert || tkey) {
      ERR(ld, kb, "'%s' excludes custom TLS files ('%s_tls_*_path')", kb->name, p);
      clash = true;
    }
    if (!clash)
      ERR(ld, kb, "'%s': secure connect bundles are not supported yet; use '%s' (and '%s_tls_*' for TLS)",
          kb->name, kcp->name, p);
    return;
  }

  if (b->contact_points.n == 0)
    ERR(ld, kcp, "'%s' is required: %s has no contact points", kcp->name, cluster_label[c]);
  for (size_t i = 0; i < b->contact_points.n; i++) {
    if (!b->contact_points.v[i].port_set && b->port == 0) {
      const tdm_conf_key_t *kp = ckey(p, "port");
      ERR(ld, kp, "'%s' is 0 but contact point '%s' has no port of its own", kp->name,
          b->contact_points.v[i].host);
      break;
    }
  }
  if (set(b->local_datacenter) && !b->enable_host_assignment)
    ERR(ld, kdc, "'%s' needs '%s_enable_host_assignment: true'", kdc->name, p);

  if ((cert || tkey) && !(ca && cert && tkey)) {
    const tdm_conf_key_t *at = ckey(p, cert ? "tls_client_cert_path" : "tls_client_key_path");
    ERR(ld, at,
        "incomplete TLS for %s: set '%s_tls_server_ca_path' alone (one-way TLS) or with "
        "'%s_tls_client_cert_path' and '%s_tls_client_key_path' (mutual TLS)",
        cluster_label[c], p, p, p);
  }
}

static void validate_proxy_tls(tdm__conf_loader_t *ld)
{
  const tdm_conf_t *cf = ld->conf;
  bool ca = set(cf->proxy_tls_ca_path), cert = set(cf->proxy_tls_cert_path), tkey = set(cf->proxy_tls_key_path);
  if (cert != tkey) {
    const tdm_conf_key_t *at = key(cert ? "proxy_tls_cert_path" : "proxy_tls_key_path");
    ERR(ld, at, "'%s' and '%s' go together", "proxy_tls_cert_path", "proxy_tls_key_path");
  } else if (ca && !cert) {
    ERR(ld, key("proxy_tls_ca_path"), "'%s' needs '%s' and '%s' (client TLS is off without them)",
        "proxy_tls_ca_path", "proxy_tls_cert_path", "proxy_tls_key_path");
  }
  if (cf->proxy_tls_require_client_auth && !ca)
    ERR(ld, key("proxy_tls_require_client_auth"), "'%s' needs '%s'", "proxy_tls_require_client_auth",
        "proxy_tls_ca_path");
}

static void validate_topology(tdm__conf_loader_t *ld)
{
  const tdm_conf_t *cf = ld->conf;
  const tdm_conf_key_t *ki = key("proxy_topology_index");
  size_t n = cf->proxy_topology_addresses.n;
  size_t idx = (size_t)cf->proxy_topology_index;
  if (n == 0 && idx != 0)
    ERR(ld, ki, "'%s' is %zu but '%s' is empty (the index must be 0)", ki->name, idx,
        "proxy_topology_addresses");
  else if (n && idx >= n)
    ERR(ld, ki, "'%s' is %zu but '%s' lists %zu address%s (the index must be 0 to %zu)", ki->name, idx,
        "proxy_topology_addresses", n, n == 1 ? "" : "es", n - 1);
}

static void validate_versions(tdm__conf_loader_t *ld)
{
  const tdm_conf_t *cf = ld->conf;
  if (cf->control_conn_max_protocol_version == 2 && !cf->enable_protocol_v2)
    ERR(ld, key("control_conn_max_protocol_version"), "'%s' is 2 but protocol v2 is off (set '%s: true')",
        "control_conn_max_protocol_version", "enable_protocol_v2");
  unsigned usable = TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V1 | TDM_CONF_PV_DSE_V2 |
                    (cf->enable_protocol_v2 ? TDM_CONF_PV_V2 : 0);
  if ((usable & ~cf->blocked_protocol_versions) == 0)
    ERR(ld, key("blocked_protocol_versions"), "'%s' blocks every supported protocol version",
        "blocked_protocol_versions");
}

static bool prometheus_name(const char *s)
{
  if (!set(s))
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(p != s && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

void tdm__conf_validate(tdm__conf_loader_t *ld)
{
  const tdm_conf_t *cf = ld->conf;
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++)
    validate_cluster(ld, c);
  validate_proxy_tls(ld);
  validate_topology(ld);
  validate_versions(ld);
  if (cf->replace_cql_functions)
    ERR(ld, key("replace_cql_functions"), "'%s: true' is not supported yet", "replace_cql_functions");
  if (cf->heartbeat_retry_interval_min_ms > cf->heartbeat_retry_interval_max_ms)
    ERR(ld, key("heartbeat_retry_interval_min_ms"), "'%s' (%d) exceeds '%s' (%d)",
        "heartbeat_retry_interval_min_ms", cf->heartbeat_retry_interval_min_ms,
        "heartbeat_retry_interval_max_ms", cf->heartbeat_retry_interval_max_ms);
  if (!prometheus_name(cf->metrics_prefix))
    ERR(ld, key("metrics_prefix"), "'%s' must be a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
        "metrics_prefix");
}

void tdm__conf_warn_effects(tdm__conf_loader_t *ld)
{
  const tdm_conf_t *cf = ld->conf;
  for (size_t i = 0; i < tdm__conf_nkeys; i++) {
    const tdm_conf_key_t *k = &tdm__conf_keys[i];
    if ((k->flags & TDM_CONF_F_NO_EFFECT) && cf->origin[i].source != TDM_CONF_SRC_DEFAULT)
      WARN(ld, k, "'%s' is a zdm-proxy tuning key without effect in tandem; ignored", k->name);
  }
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) {
    if (!cf->cluster[c].tls_verify_hostname) {
      const tdm_conf_key_t *k = ckey(cluster_prefix[c], "tls_verify_hostname");
      WARN(ld, k, "'%s' is false: %s node certificates are not checked against the host name", k->name,
           cluster_label[c]);
    }
  }
  if (cf->proxy_tls_allow_plaintext && !set(cf->proxy_tls_cert_path))
    WARN(ld, key("proxy_tls_allow_plaintext"), "'%s' has no effect without client TLS",
         "proxy_tls_allow_plaintext");
}
