/* The pure handshake rules (behaviour.md §2.1, §2.2 steps 1-2): SUPPORTED contents built from the two
 * clusters' snapshots and the usable version set, STARTUP option checks, and the choice of the
 * client-auth cluster. No connection state here, so every rule is unit-tested directly. */
#include <ctype.h>

#include <tandem/frontend/handshake.h>
#include <tandem/frontend/versions.h>
#include <tandem/proto/response.h>

/* Splits a comma list (the snapshot's "lz4,snappy") into trimmed, lower-cased items stored in buf. */
static size_t split_list(const char *list, char *buf, size_t cap, tdm_str_t *items, size_t max)
{
  size_t n = 0, used = 0;
  const char *p = list ? list : "";
  while (*p && n < max) {
    while (*p == ' ' || *p == ',') p++;
    const char *start = p;
    while (*p && *p != ',') p++;
    size_t len = (size_t)(p - start);
    while (len && start[len - 1] == ' ') len--;
    if (!len || used + len + 1 > cap) continue;
    for (size_t i = 0; i < len; i++) buf[used + i] = (char)tolower((unsigned char)start[i]);
    buf[used + len] = '\0';
    items[n++] = (tdm_str_t){ buf + used, len };
    used += len + 1;
  }
  return n;
}

size_t tdm_handshake_compressions(const tdm_topology_t *origin, const tdm_topology_t *target,
                                  char storage[128], tdm_str_t items[TDM_HANDSHAKE_MAX_ALGOS])
{
  static const char both[] = "lz4,snappy";
  const char *first = target ? target->compression : origin ? origin->compression : both;
  const tdm_topology_t *other = target ? origin : NULL;
  size_t n = split_list(first, storage, 64, items, TDM_HANDSHAKE_MAX_ALGOS);
  if (!other) return n;
  char obuf[64];
  tdm_str_t oitems[TDM_HANDSHAKE_MAX_ALGOS];
  size_t on = split_list(other->compression, obuf, sizeof(obuf), oitems, TDM_HANDSHAKE_MAX_ALGOS);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    bool found = false;
    for (size_t j = 0; j < on && !found; j++) found = tdm_str_eq(items[i], oitems[j]);
    if (found) items[kept++] = items[i];
  }
  return kept;
}

/* Compares dotted version numbers ("3.4.5" < "3.4.10"); missing parts count as 0. */
static int cmp_version(const char *a, const char *b)
{
  while (*a || *b) {
    unsigned long x = strtoul(a, (char **)&a, 10);
    unsigned long y = strtoul(b, (char **)&b, 10);
    if (x != y) return x < y ? -1 : 1;
    while (*a && *a != '.') a++;
    while (*b && *b != '.') b++;
    if (*a == '.') a++;
    if (*b == '.') b++;
  }
  return 0;
}

const char *tdm_handshake_cql_version(const tdm_topology_t *origin, const tdm_topology_t *target)
{
  const char *o = origin && origin->cql_version[0] ? origin->cql_version : NULL;
  const char *t = target && target->cql_version[0] ? target->cql_version : NULL;
  if (!o && !t) return TDM_HANDSHAKE_DEFAULT_CQL_VERSION;
  if (!o) return t;
  if (!t) return o;
  return cmp_version(o, t) <= 0 ? o : t;
}

int tdm_handshake_supported(tdm_writer_t *w, const tdm_topology_t *origin, const tdm_topology_t *target,
                            unsigned usable)
{
  char storage[128];
  tdm_str_t algos[TDM_HANDSHAKE_MAX_ALGOS];
  size_t nalgos = tdm_handshake_compressions(origin, target, storage, algos);
  tdm_str_t cql = tdm_str_from(tdm_handshake_cql_version(origin, target));
  tdm_str_t versions[6];
  size_t nversions = tdm_versions_list(usable, versions);

  tdm_response_option_t opts[3];
  memset(opts, 0, sizeof(opts));
  opts[0].key = TDM_STR("CQL_VERSION");
  opts[0].values.count = 1;
  opts[0].values.items = &cql;
  opts[1].key = TDM_STR("COMPRESSION");
  opts[1].values.count = (uint16_t)nalgos;
  opts[1].values.items = algos;
  opts[2].key = TDM_STR("PROTOCOL_VERSIONS");
  opts[2].values.count = (uint16_t)nversions;
  opts[2].values.items = versions;
  tdm_response_supported_t s;
  memset(&s, 0, sizeof(s));
  s.count = 3;
  s.entries = opts;
  return tdm_response_encode_supported(w, &s);
}

int tdm_handshake_check_startup(const tdm_startup_t *s, uint8_t version, const tdm_topology_t *origin,
                                const tdm_topology_t *target, tdm_compression_t *out, char *msg, size_t cap)
{
  *out = TDM_COMPRESSION_NONE;
  if (!(s->present & TDM_REQUEST_STARTUP_CQL_VERSION)) {
    snprintf(msg, cap, "Missing value CQL_VERSION in STARTUP message");
    return TDM_EINVAL;
  }
  if (!(s->present & TDM_REQUEST_STARTUP_COMPRESSION)) return 0;
  tdm_str_t name = s->compression;
  int cname = (int)TDM_MIN(name.len, (size_t)64);
  if (version == TDM_PROTO_V5 && tdm_str_eq_ci(name, TDM_STR("snappy"))) {
    snprintf(msg, cap, "snappy is not supported with protocol v5");
    return TDM_EINVAL;
  }
  char storage[128];
  tdm_str_t algos[TDM_HANDSHAKE_MAX_ALGOS];
  size_t n = tdm_handshake_compressions(origin, target, storage, algos);
  bool offered = false;
  for (size_t i = 0; i < n && !offered; i++) offered = tdm_str_eq_ci(algos[i], name);
  tdm_compression_t c;
  if (!offered || tdm_compression_parse(name, &c) < 0) {
    snprintf(msg, cap, "Unknown compression algorithm: %.*s", cname, name.ptr ? name.ptr : "");
    return TDM_EINVAL;
  }
  *out = c;
  return 0;
}

int tdm_handshake_auth_cluster(const tdm_conf_t *conf, const tdm_topology_t *origin, const tdm_topology_t *target)
{
  bool o = origin && origin->auth_required;
  bool t = target && target->auth_required;
  if (o && t) return conf && conf->forward_client_credentials_to_origin ? TDM_CONF_ORIGIN : TDM_CONF_TARGET;
  if (o) return TDM_CONF_ORIGIN;
  if (t) return TDM_CONF_TARGET;
  return -1;
}
