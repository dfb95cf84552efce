/* List value types of the key table: host[:port] lists (contact points; IPv6 as [addr]:port or bare),
 * IP-only address lists (proxy topology) and latency buckets (positive, strictly ascending). Each takes a
 * comma string, a YAML sequence, or a sequence of comma strings. */
#include <arpa/inet.h>
#include "internal.h"

/* ---- HOSTS, ADDRS ---- */

static bool is_ip(const char *host)
{
  unsigned char tmp[16];
  return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

static bool is_hostname(const char *host)
{
  size_t len = strlen(host);
  if (len == 0 || len > 253)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = host[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.' || c == '_'))
      return false;
  }
  return true;
}

static bool parse_port(const char *p, size_t len, uint16_t *out)
{
  if (len == 0 || len > 5)
    return false;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return false;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if (v < 1 || v > 65535)
    return false;
  *out = (uint16_t)v;
  return true;
}

/* host | host:port | ip | ip:port | [ipv6] | [ipv6]:port | bare ipv6. */
static int hostport_parse(const char *p, size_t len, bool ip_only, bool secret, tdm_conf_hostport_t *hp,
                          char *why, size_t whylen)
{
  char host[256];
  const char *h = p, *port = NULL;
  size_t hlen = len, plen = 0;
  bool bracket = false;
  if (len && p[0] == '[') {
    const char *close = memchr(p, ']', len);
    if (!close)
      return tdm__conf_refuse(why, whylen, secret, p, len, "missing ']' after an IPv6 address");
    h = p + 1;
    hlen = (size_t)(close - h);
    bracket = true;
    size_t rest = len - (size_t)(close + 1 - p);
    if (rest) {
      if (close[1] != ':')
        return tdm__conf_refuse(why, whylen, secret, p, len, "expected ':port' after ']'");
      port = close + 2;
      plen = rest - 1;
    }
  } else {
    const char *colon = memchr(p, ':', len);
    if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - p))) {
      hlen = (size_t)(colon - p);
      port = colon + 1;
      plen = len - hlen - 1;
    }
  }
  if (hlen == 0 || hlen >= sizeof(host))
    return tdm__conf_refuse(why, whylen, secret, p, len,
                            ip_only ? "expected ip or ip:port" : "expected host or host:port");
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  unsigned char tmp[16];
  bool v6 = inet_pton(AF_INET6, host, tmp) == 1;
  if ((bracket || strchr(host, ':')) && !v6)
    return tdm__conf_refuse(why, whylen, secret, p, len, "invalid IPv6 address");
  if (ip_only && !is_ip(host))
    return tdm__conf_refuse(why, whylen, secret, p, len, "expected an IP address, optionally with :port");
  if (!ip_only && !v6 && !is_hostname(host))
    return tdm__conf_refuse(why, whylen, secret, p, len, "invalid host name");
  uint16_t pv = 0;
  if (port && !parse_port(port, plen, &pv))
    return tdm__conf_refuse(why, whylen, secret, p, len, "invalid port (expected 1 to 65535)");
  hp->host = strdup(host);
  if (!hp->host)
    return TDM_ENOMEM;
  hp->port = pv;
  hp->port_set = port != NULL;
  return 0;
}

static void hostports_destroy(void *field)
{
  tdm_conf_hostports_t *l = field;
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i].host);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int hostports_common(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val,
                            bool secret, char *why, size_t whylen, size_t *bad_item, bool ip_only)
{
  tdm__conf_elem_t *el;
  size_t n;
  int rc = tdm__conf_split(val, &el, &n, why, whylen, bad_item);
  if (rc)
    return rc;
  tdm_conf_hostports_t l = { NULL, 0 };
  if (n) {
    l.v = calloc(n, sizeof(*l.v));
    if (!l.v) {
      free(el);
      return TDM_ENOMEM;
    }
  }
  for (size_t i = 0; i < n; i++) {
    rc = hostport_parse(el[i].p, el[i].len, ip_only, secret, &l.v[i], why, whylen);
    if (rc) {
      *bad_item = el[i].item;
      hostports_destroy(&l);
      free(el);
      return rc;
    }
    l.n++;
  }
  free(el);
  hostports_destroy(field);
  *(tdm_conf_hostports_t *)field = l;
  return 0;
}

static int hosts_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                       char *why, size_t whylen, size_t *bad_item)
{
  return hostports_common(key, field, val, secret, why, whylen, bad_item, false);
}

static int addrs_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                       char *why, size_t whylen, size_t *bad_item)
{
  return hostports_common(key, field, val, secret, why, whylen, bad_item, true);
}

static void hostports_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  const tdm_conf_hostports_t *l = field;
  for (size_t i = 0; i < l->n; i++) {
    const tdm_conf_hostport_t *hp = &l->v[i];
    const char *sep = i ? "," : "";
    if (!hp->port_set)
      tdm__conf_sb_printf(sb, "%s%s", sep, hp->host);
    else if (strchr(hp->host, ':'))
      tdm__conf_sb_printf(sb, "%s[%s]:%u", sep, hp->host, (unsigned)hp->port);
    else
      tdm__conf_sb_printf(sb, "%s%s:%u", sep, hp->host, (unsigned)hp->port);
  }
}

/* ---- BUCKETS ---- */

static int buckets_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                         char *why, size_t whylen, size_t *bad_item)
{
  tdm__conf_elem_t *el;
  size_t n;
  char buf[64];
  int rc = tdm__conf_split(val, &el, &n, why, whylen, bad_item);
  if (rc)
    return rc;
  if (n == 0) {
    free(el);
    *bad_item = 0;
    snprintf(why, whylen, "at least one bucket is required");
    return TDM_ECONF;
  }
  double *v = calloc(n, sizeof(*v));
  if (!v) {
    free(el);
    return TDM_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    *bad_item = el[i].item;
    if (!tdm__conf_token(el[i].p, el[i].len, buf, sizeof(buf)) || !tdm__conf_parse_double(buf, &v[i]) ||
        v[i] <= 0) {
      rc = tdm__conf_refuse(why, whylen, secret, el[i].p, el[i].len, "expected positive numbers (ms)");
      goto fail;
    }
    if (i && v[i] <= v[i - 1]) {
      rc = tdm__conf_refuse(why, whylen, secret, el[i].p, el[i].len, "buckets must be strictly ascending");
      goto fail;
    }
  }
  free(el);
  tdm_conf_doubles_t *f = field;
  free(f->v);
  f->v = v;
  f->n = n;
  return 0;
fail:
  free(el);
  free(v);
  return rc;
}

static void buckets_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  const tdm_conf_doubles_t *l = field;
  for (size_t i = 0; i < l->n; i++) {
    if (i)
      tdm__conf_sb_putn(sb, ",", 1);
    tdm__conf_put_double(sb, l->v[i]);
  }
}

static void buckets_destroy(void *field)
{
  tdm_conf_doubles_t *l = field;
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* ---- ops ---- */

const tdm__conf_type_ops_t tdm__conf_hosts_ops = { hosts_parse, hostports_render, hostports_destroy };
const tdm__conf_type_ops_t tdm__conf_addrs_ops = { addrs_parse, hostports_render, hostports_destroy };
const tdm__conf_type_ops_t tdm__conf_buckets_ops = { buckets_parse, buckets_render, buckets_destroy };
