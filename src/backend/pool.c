/* Pools: one per (node, session key) of a worker. A pool owns its connections, the FIFO of legs that
 * wait for a stream id, and the sessions (handshake support) that wait for a READY connection.
 *
 *   submit(leg) ── queue empty and a READY connection has a free id? ──yes──> write on it
 *        │no
 *        └──> waitq (FIFO) ──> grow: open a connection while the waiting legs exceed what the
 *             connections being opened will take, up to backend_pool_max_connections_per_node
 *   a response frees an id / a connection turns READY ──> drain the waitq in order
 *   a handshake fails ──> cluster refusal: fail waiting legs and sessions with it
 *                         transport failure: node cooldown, legs and sessions move to another node
 *
 * Invariants: nwait == length of waitq; every leg on waitq has state QUEUED and wait_pool == pool;
 * node->queued sums nwait over the node's pools. A leg is never on a waitq and holding an id. */
#include <tandem/obs/log.h>
#include "internal.h"

static char *dup_str(const char *s) { return strdup(s ? s : ""); }

static void wipe_free(char *s)
{
  if (!s) return;
  for (volatile char *p = s; *p; p++) *p = 0;
  free(s);
}

static bool keyspace_keyed(uint8_t version) { return !tdm_proto_has_request_keyspace(version); }

bool tdm__pool_key_match(const tdm__pool_t *p, const tdm_session_key_t *key)
{
  if (p->version != key->version || p->compression != key->compression || p->async != key->async) return false;
  if ((key->creds != NULL) != p->client_creds) return false;
  if (key->creds) {
    if (strcmp(p->authzid, key->creds->authzid ? key->creds->authzid : "") != 0) return false;
    if (strcmp(p->user, key->creds->user ? key->creds->user : "") != 0) return false;
  }
  const char *ks = keyspace_keyed(key->version) && key->keyspace ? key->keyspace : "";
  return strcmp(p->keyspace, ks) == 0;
}

/* The password another pool of the same client identity (cluster, authzid, user) holds, or NULL. A pool
 * made for a leg after the handshake gets no password from its key (the frontend wiped it), yet must be
 * able to log in: it borrows the identity's (§2.2 step 4: the password lives only in the identity's pools). */
static const char *identity_password(tdm_backend_t *be, int cluster, const tdm_credentials_t *creds)
{
  const char *authzid = creds->authzid ? creds->authzid : "", *user = creds->user ? creds->user : "";
  TDM_LIST_FOREACH(it, &be->cl[cluster].all)
  {
    const tdm__node_t *n = TDM_CONTAINER_OF(it, tdm__node_t, link);
    TDM_LIST_FOREACH(pit, &n->pools)
    {
      const tdm__pool_t *p = TDM_CONTAINER_OF(pit, tdm__pool_t, link);
      if (p->client_creds && p->password[0] && !strcmp(p->authzid, authzid) && !strcmp(p->user, user))
        return p->password;
    }
  }
  return NULL;
}

static tdm__pool_t *pool_new(tdm_backend_t *be, tdm__node_t *node, const tdm_session_key_t *key)
{
  const char *password = key->creds ? key->creds->password : "";
  if (key->creds && (!password || !password[0])) password = identity_password(be, node->cluster, key->creds);
  tdm__pool_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->be = be;
  p->node = node;
  p->cluster = node->cluster;
  p->version = key->version;
  p->compression = key->compression;
  p->async = key->async;
  p->client_creds = key->creds != NULL;
  p->authzid = dup_str(key->creds ? key->creds->authzid : "");
  p->user = dup_str(key->creds ? key->creds->user : "");
  p->password = dup_str(password);
  p->keyspace = dup_str(keyspace_keyed(key->version) ? key->keyspace : "");
  if (!p->authzid || !p->user || !p->password || !p->keyspace) {
    free(p->authzid);
    free(p->user);
    wipe_free(p->password);
    free(p->keyspace);
    free(p);
    return NULL;
  }
  tdm_list_init(&p->conns);
  tdm_list_init(&p->waitq);
  tdm_list_init(&p->sessions);
  tdm_list_insert_tail(&node->pools, &p->link);
  return p;
}

void tdm__pool_offer_password(tdm__pool_t *pool, const char *password)
{
  if (!pool->client_creds || pool->password[0] || !password || !password[0]) return;
  char *p = strdup(password);
  if (!p) return; /* the pool keeps its empty password: its next login fails and is reported */
  wipe_free(pool->password);
  pool->password = p;
}

tdm__pool_t *tdm__pool_get(tdm_backend_t *be, tdm__node_t *node, const tdm_session_key_t *key)
{
  TDM_LIST_FOREACH(it, &node->pools)
  {
    tdm__pool_t *p = TDM_CONTAINER_OF(it, tdm__pool_t, link);
    if (tdm__pool_key_match(p, key)) return p;
  }
  return pool_new(be, node, key);
}

/* The session key a pool was made from (strings borrowed from the pool). */
static void pool_key(const tdm__pool_t *p, tdm_session_key_t *key, tdm_credentials_t *creds)
{
  memset(key, 0, sizeof(*key));
  key->version = p->version;
  key->compression = p->compression;
  key->async = p->async;
  key->keyspace = p->keyspace;
  if (p->client_creds) {
    creds->authzid = p->authzid;
    creds->user = p->user;
    creds->password = p->password;
    key->creds = creds;
  }
}

tdm__pool_t *tdm__pool_sibling(tdm__pool_t *like, tdm__node_t *node)
{
  tdm_session_key_t key;
  tdm_credentials_t creds;
  pool_key(like, &key, &creds);
  return tdm__pool_get(like->be, node, &key);
}

bool tdm__pool_maybe_free(tdm__pool_t *pool)
{
  if (pool->pinned || pool->nconns || pool->nwait || !tdm_list_empty(&pool->sessions)) return false;
  if (pool->node->index >= 0 && !pool->be->closing) return false; /* kept: its node is still in use */
  tdm__node_t *node = pool->node;
  tdm_list_remove(&pool->link);
  free(pool->authzid);
  free(pool->user);
  wipe_free(pool->password);
  free(pool->keyspace);
  free(pool);
  tdm__node_maybe_free(node);
  return true;
}

/* First READY connection with a free client id (first fit: spare connections stay idle and close). */
static tdm_backend_conn_t *pick_conn(tdm__pool_t *pool)
{
  TDM_LIST_FOREACH(it, &pool->conns)
  {
    tdm_backend_conn_t *bc = TDM_CONTAINER_OF(it, tdm_backend_conn_t, link);
    if (tdm__server_usable(bc) && tdm_streams_available(&bc->streams) > 0) return bc;
  }
  return NULL;
}

/* A queued leg holds a reference on its body: the route module may drop its own meanwhile. */
static void waitq_push(tdm__pool_t *pool, tdm_leg_t *leg)
{
  if (leg->body) tdm_slice_ref(leg->body);
  leg->state = TDM__LEG_QUEUED;
  leg->queued = true;
  leg->wait_pool = pool;
  leg->conn = NULL;
  tdm_list_insert_tail(&pool->waitq, &leg->link);
  pool->nwait++;
  pool->node->queued++;
}

static tdm_leg_t *waitq_pop(tdm__pool_t *pool)
{
  tdm_list_t *n = tdm_list_pop(&pool->waitq);
  if (!n) return NULL;
  tdm_leg_t *leg = TDM_CONTAINER_OF(n, tdm_leg_t, link);
  pool->nwait--;
  pool->node->queued--;
  leg->wait_pool = NULL;
  leg->state = TDM__LEG_NEW;
  return leg; /* still holding the queue's body reference: the caller drops it once done with the leg */
}

void tdm__pool_unqueue(tdm__pool_t *pool, tdm_leg_t *leg)
{
  TDM_ASSERT(leg->wait_pool == pool && leg->state == TDM__LEG_QUEUED);
  tdm_list_remove(&leg->link);
  pool->nwait--;
  pool->node->queued--;
  leg->wait_pool = NULL;
  if (leg->body) tdm_slice_unref(leg->body);
}

void tdm__pool_submit(tdm__pool_t *pool, tdm_leg_t *leg)
{
  leg->node = pool->node->index;
  if (pool->nwait == 0) {
    tdm_backend_conn_t *bc = pick_conn(pool);
    if (bc) {
      tdm__server_write_leg(bc, leg);
      return;
    }
  }
  waitq_push(pool, leg);
  tdm__pool_grow(pool, false);
}

void tdm__pool_drain_waitq(tdm__pool_t *pool)
{
  while (pool->nwait > 0) {
    tdm_backend_conn_t *bc = pick_conn(pool);
    if (!bc) break;
    tdm_leg_t *leg = waitq_pop(pool);
    tdm_slice_t *body = leg->body; /* the write queue takes its own reference first */
    tdm__server_write_leg(bc, leg);
    tdm_slice_unref(body);
  }
}

static int pool_max(const tdm__pool_t *pool)
{
  const tdm_conf_t *conf = pool->be->conf;
  return conf && conf->backend_pool_max_connections_per_node > 0 ? conf->backend_pool_max_connections_per_node : 4;
}

void tdm__pool_grow(tdm__pool_t *pool, bool force)
{
  tdm_backend_t *be = pool->be;
  if (be->closing || pool->node->index < 0) return;
  uint32_t opening = 0, open = 0;
  uint64_t capacity = 0;
  TDM_LIST_FOREACH(it, &pool->conns)
  {
    tdm_backend_conn_t *bc = TDM_CONTAINER_OF(it, tdm_backend_conn_t, link);
    if (bc->state == TDM_SERVER_DRAINING || bc->password) continue;
    open++;
    if (bc->state < TDM_SERVER_READY) {
      opening++;
      capacity += bc->streams.client_limit;
    }
  }
  bool sessions = !tdm_list_empty(&pool->sessions) && pool->nstate[TDM_SERVER_READY] == 0;
  bool want = force || pool->nwait > capacity || (sessions && opening == 0);
  if (!want) return;
  if (!force && open >= (uint32_t)pool_max(pool)) return;
  int rc = tdm__server_open(pool);
  if (rc < 0)
    tdm_log_debug(NULL, "%s pool connection to %s not opened: %s", tdm__cluster_name(pool->cluster),
                  pool->node->name, tdm_strerror(rc));
}

static void session_format_reason(tdm__session_t *s, int cluster, const char *node, const char *why)
{
  tdm__textf(s->reason, sizeof(s->reason), "tandem: cannot open a session to %s (%s): %s", tdm__cluster_name(cluster),
           node, why);
}

void tdm__session_finish(tdm__session_t *s, int err, const uint8_t *body, size_t len, const char *reason)
{
  tdm_list_remove(&s->link);
  if (s->conn) s->conn->session = NULL;
  s->conn = NULL;
  s->pool = NULL;
  s->err = err;
  if (body && len) {
    s->body = malloc(len);
    if (s->body) {
      memcpy(s->body, body, len);
      s->body_len = len;
    }
  }
  if (reason) tdm__textf(s->reason, sizeof(s->reason), "%s", reason);
  tdm_list_insert_tail(&s->be->done, &s->link);
  tdm__backend_schedule(s->be);
}

/* Moves a session (on no list) to the same key on another node after a transport failure. Returns
 * false, with the session untouched, when no other node is left. */
static bool session_move(tdm__session_t *s, tdm__pool_t *from)
{
  tdm_backend_t *be = s->be;
  if (be->closing || ++s->attempts > be->cl[from->cluster].n_nodes) return false;
  tdm__node_t *node = tdm__node_select(be, from->cluster, from->node);
  if (!node) return false;
  tdm__pool_t *to = tdm__pool_sibling(from, node);
  if (!to) return false;
  if (s->conn) s->conn->session = NULL;
  s->conn = NULL;
  s->pool = to;
  tdm_list_insert_tail(&to->sessions, &s->link);
  if (s->password) {
    /* a verification: a fresh connection with the credentials being checked */
    int rc = tdm__server_open_ex(to, s->password, s);
    if (rc < 0) tdm__session_finish(s, rc, NULL, 0, NULL);
    return true;
  }
  if (to->nstate[TDM_SERVER_READY] > 0)
    tdm__session_finish(s, 0, NULL, 0, NULL);
  else
    tdm__pool_grow(to, false);
  return true;
}

/* Connections of the pool that are READY or on their way there (verifications excluded). */
static uint32_t live_conns(const tdm__pool_t *pool)
{
  uint32_t n = 0;
  TDM_LIST_FOREACH(it, &pool->conns)
  {
    const tdm_backend_conn_t *bc = TDM_CONTAINER_OF(it, tdm_backend_conn_t, link);
    if (bc->state <= TDM_SERVER_READY && !bc->password) n++;
  }
  return n;
}

void tdm__pool_conn_ready(tdm__pool_t *pool, tdm_backend_conn_t *bc)
{
  pool->failures = 0;
  TDM_LIST_FOREACH_SAFE(it, tmp, &pool->sessions)
  {
    tdm__session_t *s = TDM_CONTAINER_OF(it, tdm__session_t, link);
    if (!s->conn || s->conn == bc) tdm__session_finish(s, 0, NULL, 0, NULL);
  }
  tdm__pool_drain_waitq(pool);
}

static void fail_waiting(tdm__pool_t *pool, int err, const char *reason)
{
  tdm_list_t legs;
  tdm_list_init(&legs);
  tdm_leg_t *leg;
  while ((leg = waitq_pop(pool))) tdm_list_insert_tail(&legs, &leg->link);
  tdm_list_t *n;
  while ((n = tdm_list_pop(&legs))) {
    leg = TDM_CONTAINER_OF(n, tdm_leg_t, link);
    tdm_slice_t *body = leg->body; /* the callback may free the leg */
    tdm__leg_fail(leg, err, false, reason);
    tdm_slice_unref(body);
  }
}

void tdm__pool_redispatch(tdm__pool_t *pool, const char *reason)
{
  tdm_backend_t *be = pool->be;
  tdm_list_t legs;
  tdm_list_init(&legs);
  tdm_leg_t *leg;
  while ((leg = waitq_pop(pool))) tdm_list_insert_tail(&legs, &leg->link);
  tdm_session_key_t key;
  tdm_credentials_t creds;
  pool_key(pool, &key, &creds);
  tdm_list_t *n;
  while ((n = tdm_list_pop(&legs))) {
    leg = TDM_CONTAINER_OF(n, tdm_leg_t, link);
    tdm_slice_t *body = leg->body; /* held until the leg is queued or written again, or has failed */
    if (be->closing)
      tdm__leg_fail(leg, TDM_ECLOSED, false, reason);
    else if (++leg->attempts > be->cl[pool->cluster].n_nodes + 1 ||
             tdm__backend_dispatch(be, &key, leg, pool->node) < 0) /* never sent: another node may run it */
      tdm__leg_fail(leg, TDM_EUNAVAILABLE, false, reason);
    tdm_slice_unref(body);
  }
}

void tdm__pool_conn_failed(tdm__pool_t *pool, tdm_backend_conn_t *bc, bool transport)
{
  char why[sizeof(bc->fail_reason)];
  tdm__textf(why, sizeof(why), "%s", bc->fail_reason[0] ? bc->fail_reason : tdm_strerror(bc->fail_err));
  pool->failures++;
  /* sessions: the verification bound to bc, and the others once no connection is left to wait for.
   * They are taken off the pool first, so whatever runs below cannot disturb this walk. */
  bool none_left = live_conns(pool) == 0;
  tdm_list_t affected;
  tdm_list_init(&affected);
  TDM_LIST_FOREACH_SAFE(it, tmp, &pool->sessions)
  {
    tdm__session_t *s = TDM_CONTAINER_OF(it, tdm__session_t, link);
    if (s->conn ? s->conn != bc : !none_left) continue;
    tdm_list_remove(&s->link);
    tdm_list_insert_tail(&affected, &s->link);
  }
  tdm_list_t *n;
  while ((n = tdm_list_pop(&affected))) {
    tdm__session_t *s = TDM_CONTAINER_OF(n, tdm__session_t, link);
    if (bc->refused) {
      tdm__session_finish(s, bc->fail_err, bc->err_body, bc->err_len, NULL);
      if (!bc->err_body) session_format_reason(s, pool->cluster, pool->node->name, why);
    } else if (!transport || !session_move(s, pool)) {
      tdm__session_finish(s, bc->fail_err ? bc->fail_err : TDM_EUNAVAILABLE, NULL, 0, NULL);
      session_format_reason(s, pool->cluster, pool->node->name, why);
    }
  }
  if (!none_left || pool->nwait == 0 || bc->password) return;
  char reason[TDM_SOCKADDR_STRLEN + sizeof(why) + 4];
  tdm__textf(reason, sizeof(reason), "%s: %s", pool->node->name, why);
  if (bc->refused || !transport)
    fail_waiting(pool, TDM_EUNAVAILABLE, reason);
  else
    tdm__pool_redispatch(pool, reason);
}

void tdm__pool_conn_lost(tdm__pool_t *pool)
{
  if (live_conns(pool) > 0) return;
  if (pool->nwait > 0 || !tdm_list_empty(&pool->sessions)) tdm__pool_grow(pool, false);
}

void tdm__pool_retire(tdm__pool_t *pool, int err)
{
  tdm_backend_t *be = pool->be;
  const char *why = err ? tdm_strerror(err) : "node left the topology";
  pool->pinned = true;
  char reason[160];
  tdm__textf(reason, sizeof(reason), "%s: %s", pool->node->name, why);
  tdm_list_t affected;
  tdm_list_init(&affected);
  tdm_list_splice_tail(&affected, &pool->sessions);
  tdm_list_t *n;
  while ((n = tdm_list_pop(&affected))) {
    tdm__session_t *s = TDM_CONTAINER_OF(n, tdm__session_t, link);
    if (be->closing || !session_move(s, pool)) {
      tdm__session_finish(s, err ? err : TDM_EUNAVAILABLE, NULL, 0, NULL);
      session_format_reason(s, pool->cluster, pool->node->name, why);
    }
  }
  tdm__pool_redispatch(pool, reason);
  TDM_LIST_FOREACH_SAFE(it, tmp, &pool->conns)
  {
    tdm_backend_conn_t *bc = TDM_CONTAINER_OF(it, tdm_backend_conn_t, link);
    if (err)
      tdm__server_close(bc, err);
    else
      tdm__server_drain(bc);
  }
  pool->pinned = false;
  tdm__pool_maybe_free(pool);
}
