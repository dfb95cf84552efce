/* Request intake (tdm_route_dispatch): opens the body (decompressing a v3/v4 body only because routing
 * must look inside), decodes QUERY / PREPARE / EXECUTE / BATCH, classifies, resolves keyspaces, looks
 * up prepared ids, asks the router, and either answers locally (virtual tables, InsightsRpc, registry
 * misses, refusals) or builds a request with one body per leg and starts it (route/request.c).
 * Invariant: every call either answers the stream at once or hands it to a started request. */
#include <tandem/proto/compress.h>
#include <tandem/frontend/vtables.h>
#include "internal.h"

#define TDM__ROUTE_RESP_MAX ((size_t)256 << 20) /* largest response body tandem decompresses to peek */

/* ---- bodies ---- */

static int open_common(tdm_proxy_worker_t *pw, uint8_t version, uint8_t flags, tdm_compression_t comp,
                       const uint8_t *body, size_t len, size_t max, bool response, tdm__msg_t *m)
{
  memset(m, 0, sizeof(*m));
  m->buf = body;
  m->len = len;
  if ((flags & TDM_FLAG_COMPRESSED) && !tdm_proto_has_segments(version)) {
    size_t ulen;
    if (comp == TDM_COMPRESSION_NONE) return TDM_EPROTO_COMPRESS;
    int rc = tdm_body_uncompressed_length(comp, body, len, &ulen);
    if (rc < 0) return TDM_EPROTO_COMPRESS;
    if (ulen > max) {
      m->len = ulen; /* the declared size, for the INVALID text */
      return TDM_EPROTO_TOO_LARGE;
    }
    uint8_t *out = NULL;
    size_t cap = ulen ? ulen : 1;
    bool pooled = pw->buf_pool.block_size >= cap;
    out = pooled ? tdm_buf_pool_get(&pw->buf_pool) : malloc(cap);
    if (!out) return TDM_ENOMEM;
    if (pooled) cap = pw->buf_pool.block_size;
    size_t got;
    rc = tdm_body_decompress_to(comp, body, len, out, cap, &got);
    if (rc < 0 || got != ulen) {
      if (pooled) tdm_buf_pool_put(&pw->buf_pool, out);
      else free(out);
      return TDM_EPROTO_COMPRESS;
    }
    m->buf = out;
    m->len = got;
    m->owned = out;
    m->pooled = pooled;
  }
  if (response) {
    tdm_response_prefix_t pre;
    if (tdm_response_strip_prefix(version, flags, m->buf, m->len, &pre) < 0) {
      tdm__route_msg_close(pw, m);
      return TDM_EPROTO_MALFORMED;
    }
    m->msg_off = pre.message_offset;
  } else if ((flags & TDM_FLAG_CUSTOM_PAYLOAD) && version >= TDM_PROTO_V4) {
    tdm_reader_t r;
    tdm_reader_init(&r, m->buf, m->len);
    if (tdm_reader_skip_bytes_map(&r) < 0) {
      tdm__route_msg_close(pw, m);
      return TDM_EPROTO_MALFORMED;
    }
    m->msg_off = r.pos;
  }
  return 0;
}

int tdm__route_msg_open(tdm_proxy_worker_t *pw, uint8_t version, uint8_t flags, tdm_compression_t comp,
                        const uint8_t *body, size_t len, size_t max, tdm__msg_t *m)
{
  return open_common(pw, version, flags, comp, body, len, max, false, m);
}

void tdm__route_msg_close(tdm_proxy_worker_t *pw, tdm__msg_t *m)
{
  if (m->owned) {
    if (m->pooled) tdm_buf_pool_put(&pw->buf_pool, m->owned);
    else free(m->owned);
  }
  m->owned = NULL;
}

int tdm__route_resp_open(tdm_route_req_t *req, const tdm__route_leg_t *rl, tdm__msg_t *m)
{
  const tdm_client_view_t *v = tdm_client_view(req->client);
  return open_common(tdm__route_pw(req), req->version, rl->resp_flags, v->compression, rl->resp_body, rl->resp_len,
                     TDM__ROUTE_RESP_MAX, true, m);
}

tdm_slice_t *tdm__route_slice_writer(tdm_proxy_worker_t *pw, const uint8_t *prefix, size_t plen, size_t need,
                                     tdm_writer_t *w)
{
  tdm_slice_t *s = tdm_slice_new(&pw->buf_pool, plen + need);
  if (!s) return NULL;
  if (plen) memcpy(s->data, prefix, plen);
  tdm_writer_init_fixed(w, s->data + plen, s->size - plen);
  return s;
}

tdm_slice_t *tdm__route_slice_join(tdm_proxy_worker_t *pw, const uint8_t *prefix, size_t plen, const uint8_t *p,
                                   size_t n)
{
  tdm_slice_t *s = tdm_slice_new(&pw->buf_pool, plen + n);
  if (!s) return NULL;
  if (plen) memcpy(s->data, prefix, plen);
  if (n) memcpy(s->data + plen, p, n);
  return s;
}

/* ---- body accounting (architecture.md §6; docs/internals/route.md "Body copies") ---- */

void tdm__route_count_body(const tdm_route_req_t *req, int cluster, uint64_t forwarded, uint64_t copies,
                           uint64_t forced)
{
  tdm_proxy_stats_t *st = &tdm__route_pw(req)->stats;
  int side = req->kind == TDM__REQ_ASYNC ? 2 : cluster;
  uint64_t *f[3] = { &st->request_bodies_forwarded_origin, &st->request_bodies_forwarded_target,
                     &st->request_bodies_forwarded_async };
  uint64_t *c[3] = { &st->request_body_copies_origin, &st->request_body_copies_target, &st->request_body_copies_async };
  uint64_t *x[3] = { &st->request_body_copies_forced_origin, &st->request_body_copies_forced_target,
                     &st->request_body_copies_forced_async };
  *f[side] += forwarded;
  *c[side] += copies;
  *x[side] += forced;
}

/* Counted at the hand-over because the backend keeps no worker counters. On an lz4 v5 connection
 * backend/channel.c compresses the envelope into a pooled slice (forced); uncompressed v5 segments
 * reference the body, no copy. */
void tdm__route_count_handover(const tdm_route_req_t *req, int cluster)
{
  bool lz4 = tdm_proto_has_segments(req->version) && tdm_client_view(req->client)->compression == TDM_COMPRESSION_LZ4;
  tdm__route_count_body(req, cluster, 1, lz4, lz4);
}

/* ---- intake ---- */

typedef struct intake_s {
  tdm_client_t *client;          /* who asked */
  const tdm_client_view_t *v;    /* its view */
  tdm_proxy_worker_t *pw;        /* its worker */
  tdm_route_worker_t *rw;        /* route state of the worker */
  const tdm_frame_header_t *h;   /* the request header */
  tdm_slice_t *slice;            /* the body's storage */
  size_t off;                    /* body offset */
  size_t len;                    /* body length */
  tdm__msg_t m;                  /* the opened body */
  const uint8_t *msg;            /* message start (after any custom payload) */
  size_t msg_len;                /* message length */
  tdm_route_policy_t policy;     /* the epoch's routing policy */
} intake_t;

static int protocol_error(intake_t *in, int rc, const char *why)
{
  /* The frontend counts frames_malformed when it closes the connection for this return. */
  (void)tdm_client_respond_errorf(in->client, in->h->stream, TDM_ERR_PROTOCOL_ERROR, "%s",
                                  why ? why : "malformed request body");
  return rc < 0 ? rc : TDM_EPROTO_MALFORMED;
}

static int local_error(intake_t *in, tdm_route_local_error_t err)
{
  if (err == TDM_ROUTE_ERR_CONTINUOUS_PAGING)
    (void)tdm_client_respond_errorf(in->client, in->h->stream, TDM_ERR_INVALID,
                                    "tandem does not support DSE continuous paging");
  else if (err == TDM_ROUTE_ERR_UNEXPECTED)
    (void)tdm_client_respond_errorf(in->client, in->h->stream, TDM_ERR_PROTOCOL_ERROR, "Unexpected message %s",
                                    tdm_opcode_name(in->h->opcode));
  else
    (void)tdm_client_respond_errorf(in->client, in->h->stream, TDM_ERR_PROTOCOL_ERROR, "Unknown opcode %u",
                                    (unsigned)in->h->opcode);
  return 0;
}

static int answer_void(intake_t *in)
{
  uint8_t body[8];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, body, sizeof(body));
  (void)tdm_response_encode_void(&w);
  (void)tdm_client_respond_bytes(in->client, in->h->stream, TDM_OP_RESULT, body, w.len);
  return 0;
}

static int out_of_memory(intake_t *in)
{
  (void)tdm_client_respond_errorf(in->client, in->h->stream, TDM_ERR_SERVER_ERROR, "tandem: out of memory");
  return 0;
}

static int answer_unprepared(intake_t *in, const uint8_t *id, size_t n)
{
  char msg[512];
  tdm_agg_format_unprepared(msg, sizeof(msg), id, n);
  tdm_response_error_t e = { .code = TDM_ERR_UNPREPARED, .message = tdm_str_from(msg) };
  e.unprepared_id = (tdm_bytes_t){ id, (int32_t)n };
  in->pw->stats.pscache_misses++;
  (void)tdm_client_respond_error(in->client, in->h->stream, &e);
  return 0;
}

static tdm_agg_class_t agg_class_of(tdm_stmt_class_t cls)
{
  if (cls == TDM_CLASSIFY_CLASS_READ || cls == TDM_CLASSIFY_CLASS_AUTH_READ) return TDM_AGG_CLASS_READ;
  if (cls == TDM_CLASSIFY_CLASS_WRITE) return TDM_AGG_CLASS_WRITE;
  return TDM_AGG_CLASS_OTHER;
}

/* A request for the decision; NULL only on ENOMEM (already answered). */
static tdm_route_req_t *new_request(intake_t *in, tdm__req_kind_t kind, const tdm_route_decision_t *d)
{
  tdm_route_req_t *req = tdm__route_req_new(in->rw, kind, in->client, in->h, in->slice, in->off, in->len);
  if (!req) {
    (void)out_of_memory(in);
    return NULL;
  }
  req->route = *d;
  if (kind != TDM__REQ_PREPARE && (in->h->opcode == TDM_OP_QUERY || in->h->opcode == TDM_OP_EXECUTE ||
                                   in->h->opcode == TDM_OP_BATCH))
    req->metric_type = d->dest == TDM_ROUTE_BOTH ? 2 : d->cluster;
  return req;
}

/* v5 / DSE_V2 (§5.3): a QUERY, PREPARE or BATCH without a keyspace gets the client's. The request's base
 * body becomes that rewrite. 0, or <0 (answered). */
static int add_keyspace(intake_t *in, tdm_route_req_t *req, bool has_keyspace)
{
  if (has_keyspace || !tdm_proto_has_request_keyspace(in->h->version) || !in->v->keyspace || !in->v->keyspace[0])
    return 0;
  tdm_str_t ks = tdm_str_from(in->v->keyspace);
  tdm_writer_t w;
  const char *why = NULL;
  /* The rewrite is the message plus a [string]: it is written straight into a pooled slice. */
  tdm_slice_t *s = tdm__route_slice_writer(in->pw, in->m.buf, in->m.msg_off, in->msg_len + 2 + ks.len, &w);
  int rc = s ? tdm_request_add_keyspace(in->h->version, in->h->opcode, in->msg, in->msg_len, ks, &w, &why) : TDM_ENOMEM;
  size_t n = in->m.msg_off + w.len;
  if (rc < 0) {
    tdm_slice_unref(s);
    tdm__route_req_discard(req);
    if (rc == TDM_ENOMEM) {
      (void)out_of_memory(in);
      return TDM_ENOMEM;
    }
    (void)tdm_client_respond_errorf(in->client, in->h->stream, TDM_ERR_SERVER_ERROR,
                                    "tandem: cannot add the keyspace to the request: %s", why ? why : "invalid");
    return TDM_EINVAL;
  }
  tdm_slice_unref(req->body);
  req->body = s;
  req->body_off = 0;
  req->body_len = n;
  req->flags &= (uint8_t)~TDM_FLAG_COMPRESSED;
  /* one copy on each leg that will carry it; not forced: v5 pools are not keyed by keyspace */
  for (int c = 0; c < 2; c++)
    if (req->route.dest == TDM_ROUTE_BOTH || req->route.cluster == c) tdm__route_count_body(req, c, 0, 1, 0);
  return 0;
}

/* Gives each leg the request's base body (QUERY, PREPARE, USE) and starts. */
static void start_shared(tdm_route_req_t *req)
{
  for (int c = 0; c < 2; c++)
    if (req->route.dest == TDM_ROUTE_BOTH || req->route.cluster == c) {
      tdm__route_leg_set_body(&req->legs[c], req->body, req->body_off, req->body_len, req->flags);
      tdm__route_count_handover(req, c);
    }
  tdm__route_req_start(req);
}

/* EXECUTE and BATCH: each leg gets its cluster's ids. */
static int start_prepared(intake_t *in, tdm_route_req_t *req)
{
  for (int c = 0; c < 2; c++) {
    if (req->route.dest != TDM_ROUTE_BOTH && req->route.cluster != c) continue;
    size_t off, len;
    uint8_t flags;
    tdm_slice_t *s = tdm__route_prepared_body(req, c, &off, &len, &flags);
    if (!s) {
      tdm__route_req_discard(req);
      return out_of_memory(in);
    }
    tdm__route_leg_set_body(&req->legs[c], s, off, len, flags);
    tdm_slice_unref(s);
  }
  for (int c = 0; c < 2; c++)
    if (req->route.dest == TDM_ROUTE_BOTH || req->route.cluster == c) tdm__route_count_handover(req, c);
  tdm__route_req_start(req);
  return 0;
}

static int copy_keyspace(tdm_route_req_t *req, tdm_str_t ks)
{
  if (ks.len >= sizeof(req->ks)) return TDM_EOVERFLOW;
  if (ks.len) memcpy(req->ks, ks.ptr, ks.len);
  req->ks[ks.len] = '\0';
  req->ks_len = ks.len;
  return 0;
}

static int dispatch_query(intake_t *in)
{
  tdm_query_t q;
  const char *why = NULL;
  int rc = tdm_request_decode_query(in->h->version, in->msg, in->msg_len, &q, &why);
  if (rc < 0) return protocol_error(in, rc, why);
  tdm_classification_t c;
  tdm_classify(q.query.ptr, q.query.len, &c);
  bool has_ks = (q.params.flags & TDM_QFLAG_WITH_KEYSPACE) != 0;
  tdm_str_t ks = has_ks ? q.params.keyspace : tdm_str_from(in->v->keyspace);
  tdm_route_info_t info = { .opcode = TDM_OP_QUERY, .cls = c.cls, .cflags = c.flags };
  info.paging_state = (q.params.flags & TDM_QFLAG_PAGING_STATE) != 0;
  info.continuous_paging = (q.params.flags & TDM_QFLAG_DSE_CONTINUOUS_PAGING) != 0;
  if (c.cls == TDM_CLASSIFY_CLASS_READ) {
    info.is_virtual = tdm_classify_virtual_table(&c, ks) != TDM_CLASSIFY_VTABLE_NONE;
    info.reads_system = tdm_classify_reads_system(&c, ks);
  }
  tdm_route_decision_t d;
  tdm_router_decide(&info, &in->policy, &d);
  if (d.dest == TDM_ROUTE_LOCAL_VIRTUAL) {
    rc = tdm_vtables_query_body(in->client, in->h->stream, in->msg, in->msg_len, ks);
    if (rc != TDM_EINVAL) return 0;
    /* The frontend's parser disagrees with the classifier: let the system cluster answer. */
    d.dest = TDM_ROUTE_SYSTEM_CLUSTER;
    d.cluster = in->policy.system_cluster;
  }
  if (d.dest == TDM_ROUTE_LOCAL_VOID) return answer_void(in);
  if (d.dest == TDM_ROUTE_LOCAL_ERROR) return local_error(in, d.error);
  bool use = c.cls == TDM_CLASSIFY_CLASS_USE;
  tdm_route_req_t *req = new_request(in, use ? TDM__REQ_USE : TDM__REQ_FORWARD, &d);
  if (!req) return 0;
  req->consistency = q.params.consistency;
  req->cflags = c.flags;
  req->agg_class = agg_class_of(c.cls);
  req->batch_type = c.kind == TDM_CLASSIFY_KIND_BATCH ? (int)c.batch : -1;
  if (use) {
    req->policy = TDM_CONF_DIVERGENCE_FAIL; /* a keyspace is changed on both or on neither */
    size_t n = 0;
    if (tdm_cql_name_is_set(c.keyspace) && tdm_cql_name_copy(c.keyspace, req->ks, sizeof(req->ks), &n) == 0)
      req->ks_len = n;
  } else if (add_keyspace(in, req, has_ks) < 0) {
    return 0;
  }
  start_shared(req);
  return 0;
}

static int dispatch_prepare(intake_t *in)
{
  tdm_prepare_t p;
  const char *why = NULL;
  int rc = tdm_request_decode_prepare(in->h->version, in->msg, in->msg_len, &p, &why);
  if (rc < 0) return protocol_error(in, rc, why);
  tdm_classification_t c;
  tdm_classify(p.query.ptr, p.query.len, &c);
  bool has_ks = (p.flags & TDM_PFLAG_WITH_KEYSPACE) != 0;
  tdm_str_t ks = has_ks ? p.keyspace : tdm_str_from(in->v->keyspace);
  tdm_route_info_t info = { .opcode = TDM_OP_PREPARE, .cls = c.cls, .cflags = c.flags };
  if (c.cls == TDM_CLASSIFY_CLASS_READ) info.is_virtual = tdm_classify_virtual_table(&c, ks) != TDM_CLASSIFY_VTABLE_NONE;
  tdm_route_decision_t d;
  tdm_router_decide(&info, &in->policy, &d);
  if (d.dest == TDM_ROUTE_LOCAL_VIRTUAL) {
    rc = tdm_vtables_prepare(in->client, in->h->stream, p.query, ks);
    if (rc != TDM_EINVAL) return 0;
    d.dest = TDM_ROUTE_BOTH; /* not one the frontend answers after all: prepare it on both */
  }
  tdm_route_req_t *req = new_request(in, TDM__REQ_PREPARE, &d);
  if (!req) return 0;
  req->policy = TDM_CONF_DIVERGENCE_FAIL;  /* an id must exist on both clusters before a client gets it */
  req->success_cluster = TDM_CONF_ORIGIN; /* ids stay stable across primary flips (§7.1) */
  req->agg_class = TDM_AGG_CLASS_OTHER;
  req->cflags = c.flags;
  if (copy_keyspace(req, ks) < 0) {
    tdm__route_req_discard(req);
    (void)tdm_client_respond_errorf(in->client, in->h->stream, TDM_ERR_INVALID, "tandem: keyspace name too long");
    return 0;
  }
  if (add_keyspace(in, req, has_ks) < 0) return 0;
  start_shared(req);
  return 0;
}

static int dispatch_execute(intake_t *in)
{
  tdm_execute_t e;
  const char *why = NULL;
  int rc = tdm_request_decode_execute(in->h->version, in->msg, in->msg_len, &e, &why);
  if (rc < 0) return protocol_error(in, rc, why);
  if (tdm_vtables_execute(in->client, in->h->stream, e.id.ptr, (size_t)e.id.len, in->msg, in->msg_len)) return 0;
  tdm_prepared_entry_t *entry =
      in->pw->registry ? tdm_prepared_registry_get(in->pw->registry, e.id.ptr, (size_t)e.id.len) : NULL;
  if (!entry) return answer_unprepared(in, e.id.ptr, (size_t)e.id.len);
  tdm_route_info_t info = { .opcode = TDM_OP_EXECUTE, .cls = (tdm_stmt_class_t)entry->kind };
  info.cflags = entry->flags & TDM__PF_CLASSIFY_MASK;
  info.reads_system = (entry->flags & TDM__PF_SYSTEM_READ) != 0;
  info.paging_state = (e.params.flags & TDM_QFLAG_PAGING_STATE) != 0;
  info.continuous_paging = (e.params.flags & TDM_QFLAG_DSE_CONTINUOUS_PAGING) != 0;
  tdm_route_decision_t d;
  tdm_router_decide(&info, &in->policy, &d);
  if (d.dest == TDM_ROUTE_LOCAL_VOID || d.dest == TDM_ROUTE_LOCAL_ERROR || d.dest == TDM_ROUTE_LOCAL_VIRTUAL) {
    tdm_prepared_entry_unref(entry);
    if (d.dest == TDM_ROUTE_LOCAL_ERROR) return local_error(in, d.error);
    if (d.dest == TDM_ROUTE_LOCAL_VOID) return answer_void(in);
    return answer_unprepared(in, e.id.ptr, (size_t)e.id.len); /* virtual statements live in vtables */
  }
  bool use = info.cls == TDM_CLASSIFY_CLASS_USE;
  tdm_route_req_t *req = new_request(in, use ? TDM__REQ_USE : TDM__REQ_FORWARD, &d);
  if (!req) {
    tdm_prepared_entry_unref(entry);
    return 0;
  }
  req->entry = entry;
  req->consistency = e.params.consistency;
  req->cflags = info.cflags;
  req->agg_class = agg_class_of(info.cls);
  uint32_t bt = (entry->flags & TDM__PF_BATCH_MASK) >> TDM__PF_BATCH_SHIFT;
  req->batch_type = bt ? (int)bt - 1 : -1;
  if (use) {
    /* A prepared USE: the keyspace comes from the stored text. */
    tdm_classification_t c;
    size_t n = 0;
    tdm_classify(entry->query, entry->query_len, &c);
    if (tdm_cql_name_is_set(c.keyspace) && tdm_cql_name_copy(c.keyspace, req->ks, sizeof(req->ks), &n) == 0)
      req->ks_len = n;
    req->policy = TDM_CONF_DIVERGENCE_FAIL;
  }
  return start_prepared(in, req);
}

static int dispatch_batch(intake_t *in)
{
  tdm_batch_t b;
  const char *why = NULL;
  int rc = tdm_request_decode_batch(in->h->version, in->msg, in->msg_len, &b, &why);
  if (rc < 0) return protocol_error(in, rc, why);
  tdm_route_info_t info = { .opcode = TDM_OP_BATCH };
  tdm_route_decision_t d;
  tdm_router_decide(&info, &in->policy, &d);
  tdm_route_req_t *req = new_request(in, TDM__REQ_FORWARD, &d);
  if (!req) return 0;
  req->consistency = b.params.consistency;
  req->batch_type = b.type;
  req->agg_class = TDM_AGG_CLASS_WRITE;
  if (b.prepared_count > TDM__ROUTE_BATCH_INLINE) {
    req->children = calloc(b.prepared_count, sizeof(*req->children));
    if (!req->children) {
      req->children = req->children_inline;
      tdm__route_req_discard(req);
      return out_of_memory(in);
    }
  }
  /* Every prepared child must be known before anything is sent (§7.2). */
  tdm_batch_iter_t it;
  tdm_batch_child_t ch;
  tdm_batch_iter_init(&it, &b);
  while (tdm_batch_next_child(&it, &ch) > 0) {
    if (ch.kind == TDM_REQUEST_BATCH_KIND_QUERY) {
      tdm_classification_t c;
      tdm_classify(ch.query.ptr, ch.query.len, &c);
      req->cflags |= c.flags & TDM_CLASSIFY_F_LWT;
      continue;
    }
    tdm_prepared_entry_t *e =
        in->pw->registry ? tdm_prepared_registry_get(in->pw->registry, ch.id.ptr, (size_t)ch.id.len) : NULL;
    if (!e) {
      tdm__route_req_discard(req);
      return answer_unprepared(in, ch.id.ptr, (size_t)ch.id.len);
    }
    req->cflags |= e->flags & TDM_CLASSIFY_F_LWT;
    req->children[req->n_children++] = e;
  }
  if (add_keyspace(in, req, (b.params.flags & TDM_QFLAG_WITH_KEYSPACE) != 0) < 0) return 0;
  return start_prepared(in, req);
}

int tdm_route_dispatch(tdm_client_t *client, const tdm_frame_header_t *h, tdm_slice_t *body_slice, size_t off,
                       size_t len)
{
  intake_t in = { .client = client, .v = tdm_client_view(client), .h = h, .slice = body_slice, .off = off, .len = len };
  in.pw = in.v->pw;
  if (in.pw->draining) {
    (void)tdm_client_respond_errorf(client, h->stream, TDM_ERR_OVERLOADED, "Shutting down, please retry on next host.");
    return 0;
  }
  in.rw = tdm__route_worker(in.pw);
  if (!in.rw) return out_of_memory(&in);
  tdm_router_policy(in.pw->conf, &in.policy);
  if (h->opcode != TDM_OP_QUERY && h->opcode != TDM_OP_PREPARE && h->opcode != TDM_OP_EXECUTE &&
      h->opcode != TDM_OP_BATCH) {
    tdm_route_info_t info = { .opcode = h->opcode };
    tdm_route_decision_t d;
    tdm_router_decide(&info, &in.policy, &d);
    return local_error(&in, d.error);
  }
  size_t max = (size_t)in.pw->conf->max_frame_bytes;
  int rc = tdm__route_msg_open(in.pw, h->version, h->flags, in.v->compression, body_slice->data + off, len, max,
                               &in.m);
  if (rc == TDM_EPROTO_TOO_LARGE) {
    in.pw->stats.frames_too_large++;
    (void)tdm_client_respond_errorf(client, h->stream, TDM_ERR_INVALID,
                                    "Request is too big: length %zu exceeds maximum allowed length %zu.", in.m.len, max);
    return 0;
  }
  if (rc == TDM_ENOMEM) return out_of_memory(&in);
  if (rc < 0)
    return protocol_error(&in, rc, rc == TDM_EPROTO_COMPRESS ? "corrupt compressed body" : "malformed custom payload");
  in.msg = in.m.buf + in.m.msg_off;
  in.msg_len = in.m.len - in.m.msg_off;
  switch (h->opcode) {
  case TDM_OP_QUERY: rc = dispatch_query(&in); break;
  case TDM_OP_PREPARE: rc = dispatch_prepare(&in); break;
  case TDM_OP_EXECUTE: rc = dispatch_execute(&in); break;
  default: rc = dispatch_batch(&in); break;
  }
  tdm__route_msg_close(in.pw, &in.m);
  return rc;
}
