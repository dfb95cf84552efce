/* Events the instance hands to every worker's registered clients (behaviour.md §10): SCHEMA_CHANGE
 * from ORIGIN's control connection (TARGET's are dropped), and the TOPOLOGY_CHANGE events a reload
 * synthesizes when the instance list changes: NEW_NODE per added address, REMOVED_NODE per removed
 * one, MOVED_NODE for every instance when num_tokens or this instance's index changes. Bodies are
 * version-independent EVENT bodies: [string type][string change][inet address]. And one event going
 * the other way: a version refusal a worker learned in a client handshake, for the control connection
 * (§3), which puts it in the next snapshot every worker gets. */
#include <arpa/inet.h>
#include <tandem/obs/log.h>
#include <tandem/proto/writer.h>
#include "instance_internal.h"

void tdm__instance_on_schema_event(void *arg, int cluster, const uint8_t *body, size_t len, uint8_t version)
{
  tdm_instance_t *inst = arg;
  if (inst->closing)
    return;
  if (cluster != TDM_CONF_ORIGIN) {
    tdm_log_debug(NULL, "SCHEMA_CHANGE from TARGET dropped (only ORIGIN's are forwarded)");
    return;
  }
  tdm__instance_publish_event(inst, "SCHEMA_CHANGE", body, len);
}

static void send_topology(tdm_instance_t *inst, const char *change, const tdm_conf_hostport_t *hp)
{
  uint8_t addr[16];
  uint8_t alen;
  if (inet_pton(AF_INET, hp->host, addr) == 1)
    alen = 4;
  else if (inet_pton(AF_INET6, hp->host, addr) == 1)
    alen = 16;
  else
    return; /* proxy_topology_addresses holds IP literals only; nothing else can be announced */
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_writer_cstring(&w, "TOPOLOGY_CHANGE");
  tdm_writer_cstring(&w, change);
  tdm_writer_inet(&w, addr, alen, hp->port);
  uint8_t *body = NULL;
  size_t len = 0;
  if (tdm_writer_take(&w, &body, &len) != 0) {
    tdm_writer_free(&w);
    tdm_log_error(NULL, "out of memory building a TOPOLOGY_CHANGE event");
    return;
  }
  tdm_log_info(NULL, "topology: %s %s:%u sent to registered clients", change, hp->host, (unsigned)hp->port);
  tdm__instance_publish_event(inst, "TOPOLOGY_CHANGE", body, len);
  free(body);
}

static bool contains(const tdm_conf_hostports_t *l, const tdm_conf_hostport_t *hp)
{
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i].port == hp->port && !strcmp(l->v[i].host, hp->host))
      return true;
  return false;
}

void tdm__instance_topology_events(tdm_instance_t *inst, const tdm_conf_t *old_conf, const tdm_conf_t *new_conf)
{
  const tdm_conf_hostports_t *a = &old_conf->proxy_topology_addresses, *b = &new_conf->proxy_topology_addresses;
  for (size_t i = 0; i < b->n; i++)
    if (!contains(a, &b->v[i]))
      send_topology(inst, "NEW_NODE", &b->v[i]);
  for (size_t i = 0; i < a->n; i++)
    if (!contains(b, &a->v[i]))
      send_topology(inst, "REMOVED_NODE", &a->v[i]);
  if (old_conf->proxy_topology_num_tokens != new_conf->proxy_topology_num_tokens ||
      old_conf->proxy_topology_index != new_conf->proxy_topology_index)
    for (size_t i = 0; i < b->n; i++)
      send_topology(inst, "MOVED_NODE", &b->v[i]);
}

/* ---- worker -> main: protocol versions refused during a client handshake (§3) ---- */

typedef struct refusal_job_s {
  tdm_instance_t *inst; /* the instance (outlives every worker) */
  int cluster;          /* which cluster refused */
  uint8_t version;      /* the version it refused */
} refusal_job_t;

/* Main loop. */
static void refusal_run(void *arg)
{
  refusal_job_t *j = arg;
  tdm_instance_t *inst = j->inst;
  if (!inst->closing && inst->control[j->cluster] && inst->plug.control_learn_refused_version)
    inst->plug.control_learn_refused_version(inst->control[j->cluster], j->version);
  free(j);
}

static void refusal_cancel(void *arg)
{
  free(arg);
}

void tdm__instance_version_refused(tdm_proxy_worker_t *pw, int cluster, uint8_t version)
{
  tdm_instance_t *inst = pw->instance;
  if (!inst || cluster < 0 || cluster > 1)
    return;
  refusal_job_t *j = malloc(sizeof(*j));
  tdm_msg_t *m = j ? tdm_msg_new_call(refusal_run, j, refusal_cancel) : NULL;
  if (!m) {
    free(j); /* the worker keeps the refusal locally; other workers learn it when they meet it */
    return;
  }
  j->inst = inst;
  j->cluster = cluster;
  j->version = version;
  if (tdm_inbox_push(&inst->inbox, m) < 0)
    tdm_msg_free(m); /* the main loop is closing: runs refusal_cancel */
}
