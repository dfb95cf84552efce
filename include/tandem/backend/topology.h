/* What tandem knows about one cluster, as an immutable refcounted snapshot: its nodes (address, DC,
 * rack, host id, state), what its control connection learned (accepted protocol versions, SUPPORTED
 * options, authenticator, schema version) and the control node's system.local row, which feeds the
 * virtual system tables. The control connection (main thread) builds a new snapshot on every change
 * and publishes it to the workers, which swap their pointer; nobody mutates a published snapshot. */
#ifndef TANDEM_BACKEND_TOPOLOGY_H
#define TANDEM_BACKEND_TOPOLOGY_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <tandem/common.h>

#define TDM_TOPOLOGY_NAME_MAX 64

typedef enum tdm_node_state_e {
  TDM_NODE_UP = 0,   /* eligible for new legs */
  TDM_NODE_DOWN = 1, /* STATUS_CHANGE DOWN or a failed connect: skipped until its cooldown ends */
} tdm_node_state_t;

typedef struct tdm_node_s {
  struct sockaddr_storage addr;        /* native transport address and port */
  socklen_t addr_len;                  /* bytes used in addr */
  char host[64];                       /* numeric host text, e.g. "127.0.0.2" */
  uint16_t port;                       /* native port */
  char dc[TDM_TOPOLOGY_NAME_MAX];      /* data_center */
  char rack[TDM_TOPOLOGY_NAME_MAX];    /* rack */
  uint8_t host_id[16];                 /* host_id uuid */
  char release_version[32];            /* release_version */
  bool local_dc;                       /* in the local DC (configured or inferred) */
  tdm_node_state_t state;              /* as the control connection last saw it */
} tdm_node_t;

/* One column of the control node's system.local row, kept raw for the virtual tables. */
typedef struct tdm_column_s {
  char *name;          /* column name */
  uint8_t *type;       /* the column's [option] type spec, as encoded in RESULT metadata */
  size_t type_len;     /* bytes at type */
  uint8_t *value;      /* cell bytes, NULL for null */
  int32_t value_len;   /* -1 for null */
} tdm_column_t;

typedef struct tdm_topology_s {
  atomic_uint refs;                      /* references; freed at zero */
  uint64_t generation;                   /* increases with every new snapshot of this cluster */
  int cluster;                           /* TDM_CONF_ORIGIN or TDM_CONF_TARGET */
  bool up;                               /* the control connection is connected and ready */
  tdm_node_t *nodes;                     /* all known nodes, control node first */
  size_t n_nodes;                        /* entries in nodes */
  unsigned versions_accepted;            /* TDM_CONF_PV_* bits of versions the cluster accepts */
  unsigned versions_refused;             /* learned refusals (§3), cleared on control reconnect */
  char compression[64];                  /* SUPPORTED COMPRESSION, comma-joined, lower case */
  char cql_version[16];                  /* SUPPORTED CQL_VERSION (first entry) */
  bool auth_required;                    /* STARTUP was answered with AUTHENTICATE */
  char authenticator[128];               /* the authenticator class it named */
  char cluster_name[128];                /* system.local cluster_name */
  char partitioner[128];                 /* system.local partitioner (real one) */
  char schema_version[40];               /* current schema_version uuid text */
  bool has_peers_v2;                     /* system.peers_v2 exists */
  tdm_column_t *local_row;               /* control node's system.local row, all columns */
  size_t n_local_row;                    /* entries in local_row */
  tdm_column_t **peer_rows;              /* per node (same order as nodes, [0] NULL) its peers row */
  size_t *n_peer_row;                    /* columns per peer row */
} tdm_topology_t;

tdm_topology_t *tdm_topology_ref(tdm_topology_t *t);
void tdm_topology_unref(tdm_topology_t *t); /* NULL is ignored */
/* A new empty snapshot (refs = 1) for `cluster`. */
TDM_MUSTCHECK int tdm_topology_new(int cluster, tdm_topology_t **out);
/* A deep copy (refs = 1), to derive the next snapshot from the current one. */
TDM_MUSTCHECK int tdm_topology_clone(const tdm_topology_t *t, tdm_topology_t **out);
/* The column `name` of the control node's system.local row, or NULL. */
const tdm_column_t *tdm_topology_local_column(const tdm_topology_t *t, const char *name);
/* The column `name` of node `node`'s system.peers(_v2) row, or NULL (the control node has none). */
const tdm_column_t *tdm_topology_peer_column(const tdm_topology_t *t, size_t node, const char *name);
/* Index of the node with numeric host text `host` and native port `port`, or -1. */
int tdm_topology_find_node(const tdm_topology_t *t, const char *host, uint16_t port);
/* Deep copy of n columns (*out NULL when n is 0). 0 or TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_topology_columns_copy(const tdm_column_t *src, size_t n, tdm_column_t **out);
/* TDM_CONF_PV_* bits as "v3 v4 v5 DSE_V1" into buf (NUL-terminated when cap > 0); returns the full length. */
size_t tdm_topology_format_versions(unsigned bits, char *buf, size_t cap);

#endif
