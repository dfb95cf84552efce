/* The control connection of one cluster (main thread, behaviour.md §0, §3, §11.1, §13.2): connects to
 * a contact point, negotiates the protocol version (PROTOCOL_VERSIONS when SUPPORTED lists it, else a
 * probe down from control_conn_max_protocol_version), authenticates with the configured credentials,
 * reads system.local and system.peers(_v2), registers for TOPOLOGY/STATUS/SCHEMA events, sends a
 * heartbeat every heartbeat_interval_ms, reconnects with jittered backoff, and polls schema agreement
 * on request. Every change produces a new tdm_topology_t snapshot handed to `on_topology`. */
#ifndef TANDEM_BACKEND_CONTROL_H
#define TANDEM_BACKEND_CONTROL_H

#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/backend/topology.h>
#include <tandem/net/tls.h>

typedef struct tdm_control_s tdm_control_t;

typedef struct tdm_control_callbacks_s {
  /* A new snapshot (the callee takes its own reference if it keeps it). */
  void (*on_topology)(void *arg, int cluster, tdm_topology_t *topology); /* every change, down included */
  /* A SCHEMA_CHANGE event body (v-independent EVENT body bytes) to forward to clients (§10). */
  void (*on_schema_event)(void *arg, int cluster, const uint8_t *event_body, size_t len,
                          uint8_t version); /* body after the frame prefix; version of that frame */
  /* Health for readiness: up or down, and the consecutive failure count (§13.2). */
  void (*on_health)(void *arg, int cluster, bool up, int failures,
                    const char *last_error); /* last_error NULL when up; never holds a password */
  void *arg; /* passed to every callback */
} tdm_control_callbacks_t;

TDM_MUSTCHECK int tdm_control_new(void *loop, int cluster, tdm_conf_t *conf, const tdm_control_callbacks_t *cb,
                                  tdm_control_t **out);
/* Starts connecting (retries with backoff until it succeeds or tdm_control_close). */
void tdm_control_start(tdm_control_t *c);
/* A new epoch: live keys (heartbeat interval, backoff) apply at once. */
void tdm_control_set_conf(tdm_control_t *c, tdm_conf_t *conf);
/* The TLS context of this cluster in `tls` (a reference is taken) for the next connection attempts;
 * the connection in use keeps its own. No context: plaintext. Call before start and on each reload. */
void tdm_control_set_tls(tdm_control_t *c, const tdm_tls_set_t *tls);
/* Schema agreement (§5.3): cb(arg, agreed) once every live node reports one schema_version, polled
 * every 200 ms, or with agreed=false after wait_ms. */
void tdm_control_wait_schema_agreement(tdm_control_t *c, int wait_ms, void (*cb)(void *arg, bool agreed), void *arg);
/* Records that a node refused a client protocol version (§3): the next snapshot carries it. */
void tdm_control_learn_refused_version(tdm_control_t *c, uint8_t version);
void tdm_control_close(tdm_control_t *c);

#endif
