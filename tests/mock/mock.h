/* The mock cluster: command-line options, the instance that owns the one uv loop, and its nodes. One
 * process is one cluster; each --node is a node with its own listener, connections and prepared-statement
 * cache, while rules, counters, the key/value store and the schema version are shared by the cluster.
 * Every module reaches the shared parts through tdm_mock_t; nothing is global. */
#ifndef TDM_MOCK_MOCK_H
#define TDM_MOCK_MOCK_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <tandem/common.h>
#include <tandem/util/str.h>

#include "list.h"
#include "prepared.h"
#include "rules.h"
#include "stats.h"
#include "store.h"

#define TDM_MOCK_MAX_NODES 16
#define TDM_MOCK_MAX_CREDS 16
#define TDM_MOCK_MAX_VERSIONS 8
#define TDM_MOCK_NAME_MAX 64
/* Largest request body the mock accepts, as Cassandra's native_transport_max_frame_size default. */
#define TDM_MOCK_MAX_FRAME (256u << 20)

typedef struct tdm_mock_s tdm_mock_t;
typedef struct tdm_mock_node_s tdm_mock_node_t;
typedef struct tdm_mock_conn_s tdm_mock_conn_t;

typedef struct tdm_mock_cred_s {
  char user[TDM_MOCK_NAME_MAX]; /* user name accepted by PasswordAuthenticator */
  char pass[TDM_MOCK_NAME_MAX]; /* its password */
} tdm_mock_cred_t;

/* Options as parsed from argv; strings borrow from argv (which lives as long as the process). */
typedef struct tdm_mock_opts_s {
  const char *nodes[TDM_MOCK_MAX_NODES];      /* --node host:port, in order (index = node id) */
  size_t n_nodes;                             /* count of nodes */
  const char *control;                        /* --control host:port, NULL = no control interface */
  const char *cluster_name;                   /* --cluster-name */
  const char *dc;                             /* --dc */
  const char *rack;                           /* --rack */
  const char *release_version;                /* --release-version */
  const char *cql_version;                    /* CQL_VERSION advertised in SUPPORTED and system.local */
  const char *auth_class;                     /* authenticator class; NULL when auth is off */
  tdm_mock_cred_t creds[TDM_MOCK_MAX_CREDS];  /* --auth user:pass (repeatable) */
  size_t n_creds;                             /* count of creds */
  uint8_t versions[TDM_MOCK_MAX_VERSIONS];    /* --protocols, ascending, DSE ones last */
  size_t n_versions;                          /* count of versions */
  bool lz4;                                   /* --compression lists lz4 */
  bool snappy;                                /* --compression lists snappy */
  const char *script;                         /* --script FILE of control commands, or NULL */
  bool fast;                                  /* --fast: pre-encoded replies, no store */
  bool store;                                 /* in-memory key/value store on (off with --no-store, --fast) */
  bool quiet;                                 /* --quiet: no diagnostics on stderr */
  bool no_peers_v2;                           /* --no-peers-v2: answer system.peers_v2 like a 3.x node */
} tdm_mock_opts_t;

struct tdm_mock_node_s {
  tdm_mock_t *mock;                /* owning instance */
  size_t index;                    /* position in --node order */
  char host[TDM_MOCK_NAME_MAX];    /* numeric address as given */
  uint16_t port;                   /* port; the real one after binding port 0 */
  char name[TDM_MOCK_NAME_MAX + 8]; /* "host:port" for logs, JSON and node= selectors */
  struct sockaddr_storage addr;    /* listen address (port filled in after the first bind) */
  uint8_t inet[16];                /* address bytes for [inet] / inet cells */
  uint8_t inet_len;                /* 4 or 16 */
  uv_tcp_t *listener;              /* NULL while stopped; heap, freed in its close callback */
  uint8_t host_id[16];             /* stable per (cluster, address) */
  int64_t token;                   /* the node's one Murmur3 token */
  tdm_mock_link_t conns;           /* head of this node's tdm_mock_conn_t list */
  tdm_mock_prepared_t prepared;    /* this node's prepared statements */
};

struct tdm_mock_s {
  uv_loop_t loop;                          /* the mock's only loop */
  tdm_mock_opts_t opts;                    /* parsed options */
  tdm_mock_node_t nodes[TDM_MOCK_MAX_NODES]; /* opts.n_nodes of them */
  size_t n_nodes;                          /* == opts.n_nodes */
  uv_tcp_t *control;                       /* control listener, NULL when off or closed */
  char control_name[TDM_MOCK_NAME_MAX + 8]; /* "host:port" of the control listener */
  tdm_mock_link_t control_clients;         /* head of the control clients list */
  tdm_mock_rules_t rules;                  /* scripted behaviour */
  tdm_mock_stats_t stats;                  /* counters */
  tdm_mock_store_t store;                  /* key/value tables */
  tdm_mock_prepared_t texts;               /* every id ever prepared -> its text (no parse): EXECUTEs of ids a
                                              node forgot are still counted under their statement */
  struct tdm_mock_fast_s *fast;            /* --fast reply cache, NULL otherwise */
  uint8_t schema_version[16];              /* current schema version, changed by every DDL */
  uint64_t schema_changes;                 /* DDL statements applied */
  uint64_t next_conn_id;                   /* id of the next accepted connection (from 1) */
  int32_t gossip_generation;               /* start time in seconds, system.local gossip_generation */
  uv_check_t flush_check;                  /* flushes dirty connections once per loop iteration */
  tdm_mock_conn_t *dirty;                  /* singly linked list of connections with queued output */
  uv_signal_t sig_term;                    /* SIGTERM: shut down */
  uv_signal_t sig_int;                     /* SIGINT: shut down */
  bool stopping;                           /* shutdown started; no new work */
  bool shutdown_requested;                 /* SHUTDOWN command seen; shut down after replying */
};

/* Formats a diagnostic on stderr (prefix "cqlmock: ") unless --quiet. */
void tdm_mock_log(const tdm_mock_t *mock, const char *fmt, ...) TDM_PRINTF(2, 3);

/* Node selector of control commands: "*" or "all" -> -1, a decimal index, or "host:port" / "host".
 * Returns the index, -1 for all, or TDM_ENOTFOUND. */
int tdm_mock_node_find(const tdm_mock_t *mock, tdm_str_t spec);

/* node.c: binds and listens (again after a stop); idempotent while listening. */
TDM_MUSTCHECK int tdm_mock_node_start(tdm_mock_node_t *node);
/* Closes the listener; with kill, also closes every client connection of the node. */
void tdm_mock_node_stop(tdm_mock_node_t *node, bool kill);
/* Closes every client connection of the node; returns how many. */
size_t tdm_mock_node_kill(tdm_mock_node_t *node);
/* Fills identity fields (address bytes, host id, token) from the option string; no sockets. */
TDM_MUSTCHECK int tdm_mock_node_init(tdm_mock_t *mock, size_t index, const char *addr);
void tdm_mock_node_free(tdm_mock_node_t *node);

/* Starts an orderly shutdown: listeners, connections, control, signals and the check handle close, so
 * uv_run returns once everything is closed. Idempotent. */
void tdm_mock_shutdown(tdm_mock_t *mock);

/* Parses "ip:port" or "[ipv6]:port" (numeric only) into ss, host and port. */
TDM_MUSTCHECK int tdm_mock_parse_addr(const char *s, struct sockaddr_storage *ss, char *host, size_t cap,
                                      uint16_t *port);
/* The port a bound handle got (after binding port 0). */
uint16_t tdm_mock_bound_port(const uv_tcp_t *h);

/* Installs a fresh schema version (after DDL) and returns it. */
const uint8_t *tdm_mock_schema_bump(tdm_mock_t *mock);

#endif
