/* The pure parts of the client handshake (behaviour.md §2.1, §2.2): the SUPPORTED tandem answers to
 * OPTIONS (COMPRESSION = both clusters' intersection, lower case, in TARGET's order; CQL_VERSION = the
 * lower of the two; PROTOCOL_VERSIONS = the usable set), the STARTUP checks, and which cluster checks
 * the client's credentials. The connection-level flow (READY held until both sessions are ready) lives
 * in src/frontend/handshake.c. */
#ifndef TANDEM_FRONTEND_HANDSHAKE_H
#define TANDEM_FRONTEND_HANDSHAKE_H

#include <tandem/common.h>
#include <tandem/util/str.h>
#include <tandem/conf/conf.h>
#include <tandem/backend/topology.h>
#include <tandem/proto/compress.h>
#include <tandem/proto/request.h>
#include <tandem/proto/writer.h>

/* CQL_VERSION advertised when neither cluster reported one. */
#define TDM_HANDSHAKE_DEFAULT_CQL_VERSION "3.4.5"
/* Authenticator named in AUTHENTICATE when the cluster's snapshot has none. */
#define TDM_HANDSHAKE_DEFAULT_AUTHENTICATOR "org.apache.cassandra.auth.PasswordAuthenticator"
#define TDM_HANDSHAKE_MAX_ALGOS 8 /* compression algorithms kept from one SUPPORTED list */

/* The lower-cased compression algorithms both clusters offer, in TARGET's order (a NULL snapshot
 * restricts nothing; with both NULL: lz4, snappy). Items point into `storage`. Returns the count. */
size_t tdm_handshake_compressions(const tdm_topology_t *origin, const tdm_topology_t *target,
                                  char storage[128], tdm_str_t items[TDM_HANDSHAKE_MAX_ALGOS]);

/* The lower of the two CQL_VERSION values, compared as dotted numbers; an empty value loses. */
const char *tdm_handshake_cql_version(const tdm_topology_t *origin, const tdm_topology_t *target);

/* Appends the SUPPORTED body: CQL_VERSION, COMPRESSION, PROTOCOL_VERSIONS. Returns the writer error. */
int tdm_handshake_supported(tdm_writer_t *w, const tdm_topology_t *origin, const tdm_topology_t *target,
                            unsigned usable);

/* STARTUP checks (§2.2 step 2) for a client speaking `version`. On success *out is the negotiated
 * compression and 0 is returned; otherwise TDM_EINVAL with the exact PROTOCOL_ERROR text in msg
 * (`Unknown compression algorithm: <x>`, `snappy is not supported with protocol v5`, or Cassandra's
 * `Missing value CQL_VERSION in STARTUP message`). */
int tdm_handshake_check_startup(const tdm_startup_t *s, uint8_t version, const tdm_topology_t *origin,
                                const tdm_topology_t *target, tdm_compression_t *out, char *msg, size_t cap);

/* The client-auth cluster (§2.1): TDM_CONF_ORIGIN or TDM_CONF_TARGET, or -1 when neither cluster
 * requires authentication. */
int tdm_handshake_auth_cluster(const tdm_conf_t *conf, const tdm_topology_t *origin, const tdm_topology_t *target);

#endif
