/* Client protocol versions (behaviour.md §3): the versions tandem supports, the usable set of a
 * connection (supported − blocked_protocol_versions − versions either cluster is known to refuse),
 * Cassandra's list format ("3/v3, 4/v4, 5/v5, 65/dse-v1, 66/dse-v2") and the exact refusal frame:
 * stream 0, PROTOCOL_ERROR, always unframed, header version chosen as Cassandra does. Pure functions;
 * sets are bit masks of TDM_CONF_PV_* (conf.h). */
#ifndef TANDEM_FRONTEND_VERSIONS_H
#define TANDEM_FRONTEND_VERSIONS_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/conf/conf.h>
#include <tandem/backend/topology.h>

/* Largest refusal frame: 9-byte header + [int] code + [string] of the message (list of six versions). */
#define TDM_VERSIONS_ERROR_MAX 256

/* v3, v4, v5, DSE_V1, DSE_V2, plus v2 with enable_protocol_v2 (conf may be NULL: defaults). */
unsigned tdm_versions_supported(const tdm_conf_t *conf);

/* supported − blocked − refused: a cluster whose snapshot is known (versions_accepted != 0) removes
 * every version it does not accept and every version in its versions_refused; `learned` holds
 * refusals seen by this worker that no snapshot carries yet. Topologies may be NULL (unknown). */
unsigned tdm_versions_usable(const tdm_conf_t *conf, const tdm_topology_t *origin, const tdm_topology_t *target,
                             unsigned learned);

/* Whether version byte v (direction bit stripped) is in the set. Unknown bytes never are. */
static inline bool tdm_versions_has(unsigned set, uint8_t v)
{
  unsigned bit = tdm_conf_version_bit(v);
  return bit != 0 && (set & bit) != 0;
}

/* Cassandra's spelling of one version: "3/v3", "65/dse-v1"; NULL for versions tandem does not know. */
const char *tdm_versions_name(uint8_t v);

/* The set ascending (v2, v3, v4, v5, DSE_V1, DSE_V2) as static strings into items[0..6); returns the
 * count. Feeds SUPPORTED's PROTOCOL_VERSIONS. */
size_t tdm_versions_list(unsigned set, tdm_str_t items[6]);

/* "3/v3, 4/v4" into buf (NUL-terminated when cap > 0); returns the untruncated length. */
size_t tdm_versions_format(unsigned set, char *buf, size_t cap);

/* Header version of the refusal: `requested` itself when it is below tandem's lowest supported version
 * (its sender then reads an 8-byte v1/v2 header), else the highest non-DSE version in `usable`. With no
 * non-DSE version usable, v4 (a 9-byte header every driver decodes). */
uint8_t tdm_versions_error_header_version(uint8_t requested, unsigned usable, unsigned supported);

/* The whole refusal frame for a client that sent version `requested` (direction bit stripped):
 * response header (8 or 9 bytes, stream 0, flags 0, opcode ERROR) + PROTOCOL_ERROR `Invalid or
 * unsupported protocol version (<n>); supported versions are (<list>)`. Returns the frame size, or
 * TDM_EOVERFLOW when cap is too small. */
int tdm_versions_error_frame(uint8_t requested, unsigned usable, unsigned supported, uint8_t *out, size_t cap);

#endif
