/* Client protocol versions (behaviour.md §3): supported and usable sets, Cassandra's list format and
 * the version refusal frame. The refusal is always unframed, on stream 0, flags 0, and carries the
 * usable list so that gocql (which retries with the header version) and the Java/Python drivers
 * (which key on the message prefix) both find a version that works. */
#include <tandem/frontend/versions.h>
#include <tandem/proto/frame.h>
#include <tandem/proto/writer.h>

/* Every version tandem knows, ascending as Cassandra lists them. */
static const struct {
  uint8_t version;  /* version byte */
  const char *name; /* Cassandra's spelling */
} k_versions[] = {
  { TDM_PROTO_V2, "2/v2" },         { TDM_PROTO_V3, "3/v3" },         { TDM_PROTO_V4, "4/v4" },
  { TDM_PROTO_V5, "5/v5" },         { TDM_PROTO_DSE_V1, "65/dse-v1" }, { TDM_PROTO_DSE_V2, "66/dse-v2" },
};

unsigned tdm_versions_supported(const tdm_conf_t *conf)
{
  unsigned set = TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V1 | TDM_CONF_PV_DSE_V2;
  if (conf && conf->enable_protocol_v2) set |= TDM_CONF_PV_V2;
  return set;
}

/* What a cluster snapshot allows: everything while unknown. */
static unsigned cluster_allows(const tdm_topology_t *t)
{
  if (!t || t->versions_accepted == 0) return ~0u;
  return t->versions_accepted & ~t->versions_refused;
}

unsigned tdm_versions_usable(const tdm_conf_t *conf, const tdm_topology_t *origin, const tdm_topology_t *target,
                             unsigned learned)
{
  unsigned set = tdm_versions_supported(conf);
  if (conf) set &= ~conf->blocked_protocol_versions;
  set &= cluster_allows(origin) & cluster_allows(target);
  return set & ~learned;
}

const char *tdm_versions_name(uint8_t v)
{
  for (size_t i = 0; i < TDM_ARRAY_SIZE(k_versions); i++)
    if (k_versions[i].version == v) return k_versions[i].name;
  return NULL;
}

size_t tdm_versions_list(unsigned set, tdm_str_t items[6])
{
  size_t n = 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(k_versions); i++)
    if (tdm_versions_has(set, k_versions[i].version)) items[n++] = tdm_str_from(k_versions[i].name);
  return n;
}

size_t tdm_versions_format(unsigned set, char *buf, size_t cap)
{
  size_t len = 0;
  if (cap) buf[0] = '\0';
  for (size_t i = 0; i < TDM_ARRAY_SIZE(k_versions); i++) {
    if (!tdm_versions_has(set, k_versions[i].version)) continue;
    int n = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s%s", len ? ", " : "",
                     k_versions[i].name);
    len += (size_t)(n > 0 ? n : 0);
  }
  return len;
}

uint8_t tdm_versions_error_header_version(uint8_t requested, unsigned usable, unsigned supported)
{
  uint8_t lowest = (supported & TDM_CONF_PV_V2) ? TDM_PROTO_V2 : TDM_PROTO_V3;
  if (requested < lowest) return requested;
  static const uint8_t plain[] = { TDM_PROTO_V5, TDM_PROTO_V4, TDM_PROTO_V3, TDM_PROTO_V2 };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(plain); i++)
    if (tdm_versions_has(usable, plain[i])) return plain[i];
  return TDM_PROTO_V4;
}

int tdm_versions_error_frame(uint8_t requested, unsigned usable, unsigned supported, uint8_t *out, size_t cap)
{
  char list[96];
  char msg[192];
  tdm_versions_format(usable, list, sizeof(list));
  int mlen = snprintf(msg, sizeof(msg), "Invalid or unsupported protocol version (%u); supported versions are (%s)",
                      (unsigned)requested, list);
  if (mlen < 0 || (size_t)mlen >= sizeof(msg)) return TDM_EOVERFLOW;

  tdm_frame_header_t h = { 0 };
  h.version = tdm_versions_error_header_version(requested, usable, supported);
  h.response = true;
  h.stream = 0;
  h.opcode = TDM_OP_ERROR;
  h.length = 4 + 2 + (uint32_t)mlen;
  uint8_t hdr[TDM_FRAME_HEADER_MAX];
  size_t hlen = tdm_frame_header_encode(&h, hdr);
  if (hlen + h.length > cap) return TDM_EOVERFLOW;

  tdm_writer_t w;
  tdm_writer_init_fixed(&w, out, cap);
  tdm_writer_raw(&w, hdr, hlen);
  tdm_writer_int(&w, TDM_ERR_PROTOCOL_ERROR);
  tdm_writer_string(&w, (tdm_str_t){ msg, (size_t)mlen });
  if (tdm_writer_error(&w)) return tdm_writer_error(&w);
  return (int)w.len;
}
