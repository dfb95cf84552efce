/* Prepared statements across two clusters (behaviour.md §7): storing the registry entry when PREPARE
 * succeeds on both, the per-cluster EXECUTE and BATCH bodies (TARGET's ids patched in place in a private
 * copy when lengths match, re-encoded otherwise; v5 result_metadata_id translated through the recorded
 * pair), and the transparent re-prepare after an UNPREPARED (§7.3). Invariant: the ORIGIN leg always
 * carries the client's own ids, so an ORIGIN id that changes is never hidden from the driver. */
#include <tandem/obs/log.h>
#include "internal.h"

static bool id_eq(const tdm_prepared_id_t *a, const uint8_t *p, size_t n)
{
  return a->len == n && (n == 0 || memcmp(a->bytes, p, n) == 0);
}

static bool ids_eq(const tdm_prepared_id_t *a, const tdm_prepared_id_t *b) { return id_eq(a, b->bytes, b->len); }

static int open_request(tdm_route_req_t *req, tdm__msg_t *m)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  const tdm_client_view_t *v = tdm_client_view(req->client);
  return tdm__route_msg_open(pw, req->version, req->flags, v->compression, req->body->data + req->body_off,
                             req->body_len, (size_t)req->conf->max_frame_bytes, m);
}

/* The request's own body, shared. */
static tdm_slice_t *share(tdm_route_req_t *req, size_t *off, size_t *len, uint8_t *flags)
{
  *off = req->body_off;
  *len = req->body_len;
  *flags = req->flags;
  return tdm_slice_ref(req->body);
}

/* ---- EXECUTE ---- */

tdm_slice_t *tdm__route_exec_body(tdm_route_req_t *req, int cluster, size_t *off, size_t *len, uint8_t *flags)
{
  const tdm_prepared_entry_t *e = req->entry;
  const tdm_prepared_id_t *want = cluster == TDM_CONF_ORIGIN ? &e->origin_id : &e->target_id;
  bool id_same = ids_eq(want, &e->origin_id);
  /* Same id and no metadata-id pair to translate (v5): the client's body as it is, no decoding. */
  if (id_same && (!tdm_proto_has_metadata_id(req->version) || !e->origin_meta_id.len || !e->target_meta_id.len))
    return share(req, off, len, flags);
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  tdm__msg_t m;
  if (open_request(req, &m) < 0) return NULL;
  const uint8_t *msg = m.buf + m.msg_off;
  size_t msg_len = m.len - m.msg_off;
  tdm_execute_t x;
  tdm_slice_t *s = NULL;
  if (tdm_request_decode_execute(req->version, msg, msg_len, &x, NULL) < 0) goto out;
  /* §7.2: the client's result_metadata_id is translated through the recorded pair, else unchanged. */
  const tdm_prepared_id_t *meta = NULL;
  if (x.has_metadata_id && x.result_metadata_id.len >= 0) {
    const uint8_t *cm = x.result_metadata_id.ptr;
    size_t cl = (size_t)x.result_metadata_id.len;
    if (cluster == TDM_CONF_TARGET && e->target_meta_id.len && id_eq(&e->origin_meta_id, cm, cl) &&
        !id_eq(&e->target_meta_id, cm, cl))
      meta = &e->target_meta_id;
    if (cluster == TDM_CONF_ORIGIN && e->origin_meta_id.len && id_eq(&e->target_meta_id, cm, cl) &&
        !id_eq(&e->origin_meta_id, cm, cl))
      meta = &e->origin_meta_id;
  }
  if (id_same && !meta) {
    tdm__route_msg_close(pw, &m);
    return share(req, off, len, flags);
  }
  bool same_len = want->len == (size_t)x.id.len && (!meta || meta->len == (size_t)x.result_metadata_id.len);
  if (same_len) {
    /* Patched in place, in a private copy (the client's bytes may be shared with the other leg). */
    s = tdm__route_slice_join(pw, m.buf, m.msg_off, msg, msg_len);
    if (s) {
      memcpy(s->data + m.msg_off + x.id_offset, want->bytes, want->len);
      if (meta) memcpy(s->data + m.msg_off + x.metadata_id_offset, meta->bytes, meta->len);
      *len = m.len;
    }
  } else {
    tdm_writer_t w;
    s = tdm__route_slice_writer(pw, m.buf, m.msg_off, msg_len + want->len + (meta ? meta->len : 0), &w);
    if (s && tdm_request_rewrite_execute_id(req->version, msg, msg_len, want->bytes, want->len,
                                            meta ? meta->bytes : NULL, meta ? meta->len : 0, &w, NULL) == 0) {
      *len = m.msg_off + w.len;
    } else {
      tdm_slice_unref(s);
      s = NULL;
    }
  }
  *off = 0;
  *flags = (uint8_t)(req->flags & ~TDM_FLAG_COMPRESSED); /* a rewritten body goes uncompressed (§4.4) */
  if (s) tdm__route_count_body(req, cluster, 0, 1, 1); /* forced: an id patch (the decompression above is a decode) */
out:
  tdm__route_msg_close(pw, &m);
  return s;
}

/* ---- BATCH ---- */

typedef struct batch_map_s {
  tdm_route_req_t *req; /* the batch */
  uint16_t next;        /* index into req->children of the next prepared child */
} batch_map_t;

static int map_child(void *ctx, const tdm_batch_child_t *child, tdm_bytes_t *new_id)
{
  batch_map_t *bm = ctx;
  if (bm->next >= bm->req->n_children) return TDM_EINVAL;
  const tdm_prepared_entry_t *e = bm->req->children[bm->next++];
  if (!id_eq(&e->origin_id, child->id.ptr, (size_t)child->id.len)) return TDM_EINVAL;
  *new_id = (tdm_bytes_t){ e->target_id.bytes, e->target_id.len };
  return 0;
}

tdm_slice_t *tdm__route_batch_body(tdm_route_req_t *req, int cluster, size_t *off, size_t *len, uint8_t *flags)
{
  bool differs = false;
  for (uint16_t i = 0; i < req->n_children && cluster == TDM_CONF_TARGET; i++)
    differs |= !ids_eq(&req->children[i]->target_id, &req->children[i]->origin_id);
  if (!differs) return share(req, off, len, flags);
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  tdm__msg_t m;
  if (open_request(req, &m) < 0) return NULL;
  tdm_writer_t w;
  batch_map_t bm = { req, 0 };
  size_t msg_len = m.len - m.msg_off;
  size_t need = msg_len + (size_t)req->n_children * TDM_PREPARED_ID_MAX; /* ids never grow past that */
  tdm_slice_t *s = tdm__route_slice_writer(pw, m.buf, m.msg_off, need, &w);
  if (s && tdm_request_rewrite_batch_ids(req->version, m.buf + m.msg_off, msg_len, map_child, &bm, &w, NULL) == 0) {
    *off = 0;
    *len = m.msg_off + w.len;
    *flags = (uint8_t)(req->flags & ~TDM_FLAG_COMPRESSED);
    tdm__route_count_body(req, cluster, 0, 1, 1); /* forced: child ids patched */
  } else {
    tdm_slice_unref(s);
    s = NULL;
  }
  tdm__route_msg_close(pw, &m);
  return s;
}

tdm_slice_t *tdm__route_prepared_body(tdm_route_req_t *req, int cluster, size_t *off, size_t *len, uint8_t *flags)
{
  if (req->opcode == TDM_OP_EXECUTE && req->entry) return tdm__route_exec_body(req, cluster, off, len, flags);
  if (req->opcode == TDM_OP_BATCH) return tdm__route_batch_body(req, cluster, off, len, flags);
  return share(req, off, len, flags);
}

/* ---- PREPARE ---- */

static int peek_ids(tdm_route_req_t *req, int cluster, tdm_response_prepared_ids_t *ids, tdm__msg_t *m)
{
  const tdm__route_leg_t *rl = &req->legs[cluster];
  if (rl->resp_opcode != TDM_OP_RESULT || tdm__route_resp_open(req, rl, m) < 0) return TDM_EPROTO_MALFORMED;
  int rc = tdm_response_peek_prepared_ids(req->version, m->buf + m->msg_off, m->len - m->msg_off, ids);
  if (rc < 0) tdm__route_msg_close(tdm__route_pw(req), m);
  return rc;
}

int tdm__route_prepare_store(tdm_route_req_t *req)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  if (!pw->registry) return 0;
  tdm_response_prepared_ids_t ids[2];
  tdm__msg_t m[2], q;
  if (peek_ids(req, TDM_CONF_ORIGIN, &ids[0], &m[0]) < 0) return TDM_EPROTO_MALFORMED;
  if (peek_ids(req, TDM_CONF_TARGET, &ids[1], &m[1]) < 0) {
    tdm__route_msg_close(pw, &m[0]);
    return TDM_EPROTO_MALFORMED;
  }
  int rc = open_request(req, &q);
  tdm_prepare_t p;
  if (rc == 0) {
    rc = tdm_request_decode_prepare(req->version, q.buf + q.msg_off, q.len - q.msg_off, &p, NULL);
    if (rc < 0) tdm__route_msg_close(pw, &q);
  }
  if (rc == 0) {
    tdm_classification_t c;
    tdm_classify(p.query.ptr, p.query.len, &c);
    tdm_str_t ks = { req->ks, req->ks_len };
    uint32_t flags = c.flags & TDM__PF_CLASSIFY_MASK;
    if (c.cls == TDM_CLASSIFY_CLASS_READ && tdm_classify_reads_system(&c, ks)) flags |= TDM__PF_SYSTEM_READ;
    if (c.kind == TDM_CLASSIFY_KIND_BATCH) flags |= ((uint32_t)c.batch + 1u) << TDM__PF_BATCH_SHIFT;
    tdm_prepared_entry_t *e;
    rc = tdm_prepared_entry_new(ids[0].id.ptr, (size_t)ids[0].id.len, ids[1].id.ptr, (size_t)ids[1].id.len, p.query,
                                ks, (int)c.cls, flags, &e);
    if (rc == 0) {
      if (ids[0].result_metadata_id.len > 0 && ids[1].result_metadata_id.len > 0 &&
          ids[0].result_metadata_id.len <= TDM_PREPARED_ID_MAX && ids[1].result_metadata_id.len <= TDM_PREPARED_ID_MAX)
        tdm_prepared_entry_set_meta_ids(e, ids[0].result_metadata_id.ptr, (size_t)ids[0].result_metadata_id.len,
                                        ids[1].result_metadata_id.ptr, (size_t)ids[1].result_metadata_id.len);
      tdm_prepared_registry_put(pw->registry, e); /* a re-PREPARE of a known id replaces the entry */
    }
    tdm__route_msg_close(pw, &q);
  }
  tdm__route_msg_close(pw, &m[0]);
  tdm__route_msg_close(pw, &m[1]);
  return rc;
}

/* ---- re-prepare (§7.3) ---- */

void tdm__route_unprepared_id(const tdm_route_req_t *req, const tdm__route_leg_t *rl, const uint8_t **id,
                              size_t *len)
{
  const tdm_prepared_entry_t *e = rl->rp_entry ? rl->rp_entry : req->entry ? req->entry
                                  : req->n_children                         ? req->children[0]
                                                                            : NULL;
  *id = e ? e->origin_id.bytes : NULL;
  *len = e ? e->origin_id.len : 0;
}

/* The statement an UNPREPARED names: the EXECUTE's, or the BATCH child whose id (in that cluster's
 * id space) it carries. */
static tdm_prepared_entry_t *unprepared_entry(tdm_route_req_t *req, tdm__route_leg_t *rl)
{
  if (req->entry) return req->entry;
  tdm__msg_t m;
  tdm_prepared_entry_t *found = NULL;
  if (tdm__route_resp_open(req, rl, &m) < 0) return NULL;
  tdm_response_t r;
  if (tdm_response_decode(req->version, TDM_OP_ERROR, m.buf + m.msg_off, m.len - m.msg_off, &r, NULL) == 0 &&
      r.error.unprepared_id.len > 0) {
    for (uint16_t i = 0; i < req->n_children && !found; i++) {
      tdm_prepared_entry_t *e = req->children[i];
      const tdm_prepared_id_t *id = rl->cluster == TDM_CONF_ORIGIN ? &e->origin_id : &e->target_id;
      if (id_eq(id, r.error.unprepared_id.ptr, (size_t)r.error.unprepared_id.len)) found = e;
    }
  }
  tdm__route_msg_close(tdm__route_pw(req), &m);
  return found;
}

static void reprepare_count(tdm_route_req_t *req, int cluster, bool ok)
{
  tdm_proxy_stats_t *st = &tdm__route_pw(req)->stats;
  if (ok)
    (*(cluster == TDM_CONF_ORIGIN ? &st->pscache_reprepares_ok_origin : &st->pscache_reprepares_ok_target))++;
  else
    (*(cluster == TDM_CONF_ORIGIN ? &st->pscache_reprepares_failed_origin : &st->pscache_reprepares_failed_target))++;
}

bool tdm__route_reprepare(tdm_route_req_t *req, tdm__route_leg_t *rl)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  tdm_prepared_entry_t *e = unprepared_entry(req, rl);
  int node = rl->leg.node;
  rl->reprepared = true;
  if (!e) {
    tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED);
    return false;
  }
  /* The statement text, under the keyspace it was prepared in: v5/DSE_V2 name it in the PREPARE, other
   * versions use a connection of that keyspace's pool (tdm__route_leg_send). */
  tdm_str_t ks = tdm_str_from(e->keyspace);
  bool in_body = tdm_proto_has_request_keyspace(req->version) && ks.len > 0;
  tdm_writer_t w;
  tdm_writer_init(&w);
  int rc = tdm_request_encode_prepare(&w, req->version, (tdm_str_t){ e->query, e->query_len }, in_body ? &ks : NULL);
  tdm_slice_t *s = rc == 0 ? tdm__route_slice_join(pw, NULL, 0, w.buf, w.len) : NULL;
  size_t n = w.len;
  tdm_writer_free(&w);
  tdm_prepared_entry_ref(e);
  rl->rp_entry = e;
  rl->rp_node = node;
  if (s) {
    rl->rp_body = s;
    rl->rp_len = n;
    tdm_slice_unref(rl->resp);
    rl->resp = NULL;
    if (tdm__route_leg_send(req, rl, TDM_OP_PREPARE, node) == 0) return true;
  }
  reprepare_count(req, rl->cluster, false);
  tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED);
  return false;
}

/* TARGET gave a new id for a stored statement: the registry and this request use it from now on. */
static tdm_prepared_entry_t *replace_target_id(tdm_route_req_t *req, tdm_prepared_entry_t *old,
                                               const tdm_response_prepared_ids_t *ids)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  tdm_prepared_entry_t *e;
  if (ids->id.len <= 0 || ids->id.len > TDM_PREPARED_ID_MAX ||
      tdm_prepared_entry_new(old->origin_id.bytes, old->origin_id.len, ids->id.ptr, (size_t)ids->id.len,
                             (tdm_str_t){ old->query, old->query_len }, tdm_str_from(old->keyspace), old->kind,
                             old->flags, &e) < 0)
    return NULL;
  bool new_meta = ids->result_metadata_id.len > 0 && ids->result_metadata_id.len <= TDM_PREPARED_ID_MAX;
  tdm_prepared_entry_set_meta_ids(e, old->origin_meta_id.bytes, old->origin_meta_id.len,
                                  new_meta ? ids->result_metadata_id.ptr : old->target_meta_id.bytes,
                                  new_meta ? (size_t)ids->result_metadata_id.len : old->target_meta_id.len);
  if (pw->registry) {
    tdm_prepared_entry_ref(e);
    tdm_prepared_registry_put(pw->registry, e);
  }
  /* The request holds one reference per place the statement appears. */
  if (req->entry == old) {
    tdm_prepared_entry_ref(e);
    tdm_prepared_entry_unref(req->entry);
    req->entry = e;
  }
  for (uint16_t i = 0; i < req->n_children; i++) {
    if (req->children[i] != old) continue;
    tdm_prepared_entry_ref(e);
    tdm_prepared_entry_unref(req->children[i]);
    req->children[i] = e;
  }
  return e; /* the caller's reference */
}

void tdm__route_reprepared(tdm_route_req_t *req, tdm__route_leg_t *rl)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  tdm_prepared_entry_t *e = rl->rp_entry;
  tdm_slice_unref(rl->rp_body);
  rl->rp_body = NULL;
  tdm_response_prepared_ids_t ids;
  tdm__msg_t m;
  if (rl->agg.outcome != TDM_AGG_OK || peek_ids(req, rl->cluster, &ids, &m) < 0) {
    reprepare_count(req, rl->cluster, false);
    tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED);
    return;
  }
  reprepare_count(req, rl->cluster, true);
  bool same = id_eq(rl->cluster == TDM_CONF_ORIGIN ? &e->origin_id : &e->target_id, ids.id.ptr, (size_t)ids.id.len);
  if (!same && rl->cluster == TDM_CONF_ORIGIN) {
    /* ORIGIN's id is the client's: a new one must reach the driver, which re-prepares (§7.3). */
    tdm__route_msg_close(pw, &m);
    tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED);
    return;
  }
  if (!same) {
    tdm_prepared_entry_t *ne = replace_target_id(req, e, &ids);
    tdm__route_msg_close(pw, &m);
    size_t off, len;
    uint8_t flags;
    tdm_slice_t *s = ne ? tdm__route_prepared_body(req, rl->cluster, &off, &len, &flags) : NULL;
    if (!s) {
      tdm_prepared_entry_unref(ne);
      tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED);
      return;
    }
    tdm__route_leg_set_body(rl, s, off, len, flags);
    tdm_slice_unref(s);
    tdm_prepared_entry_unref(rl->rp_entry);
    rl->rp_entry = ne;
  } else {
    tdm__route_msg_close(pw, &m);
  }
  /* The one retry, on the node that was re-prepared, while the other leg's response is held. */
  tdm_slice_unref(rl->resp);
  rl->resp = NULL;
  tdm__route_count_handover(req, rl->cluster); /* the body goes out again */
  if (tdm__route_leg_send(req, rl, req->opcode, rl->rp_node) < 0) tdm__route_leg_synth(rl, TDM__SYNTH_UNPREPARED);
}

/* ---- v5 result metadata ids (§7.2) ---- */

void tdm__route_record_metadata_ids(tdm_route_req_t *req)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  tdm_prepared_entry_t *old = req->entry;
  if (!old || !pw->registry || !tdm_proto_has_metadata_id(req->version)) return;
  tdm_bytes_t id[2];
  tdm__msg_t m[2];
  int opened = 0;
  bool ok = true;
  for (int c = 0; c < 2 && ok; c++) {
    const tdm__route_leg_t *rl = &req->legs[c];
    size_t at;
    ok = rl->resp_opcode == TDM_OP_RESULT && tdm__route_resp_open(req, rl, &m[c]) == 0;
    if (!ok) break;
    opened++;
    ok = tdm_response_peek_metadata_id(req->version, m[c].buf + m[c].msg_off, m[c].len - m[c].msg_off, &id[c], &at) ==
             0 &&
         id[c].len > 0 && id[c].len <= TDM_PREPARED_ID_MAX;
  }
  if (ok && !(id_eq(&old->origin_meta_id, id[0].ptr, (size_t)id[0].len) &&
              id_eq(&old->target_meta_id, id[1].ptr, (size_t)id[1].len))) {
    tdm_prepared_entry_t *e;
    if (tdm_prepared_entry_new(old->origin_id.bytes, old->origin_id.len, old->target_id.bytes, old->target_id.len,
                               (tdm_str_t){ old->query, old->query_len }, tdm_str_from(old->keyspace), old->kind,
                               old->flags, &e) == 0) {
      tdm_prepared_entry_set_meta_ids(e, id[0].ptr, (size_t)id[0].len, id[1].ptr, (size_t)id[1].len);
      tdm_prepared_registry_put(pw->registry, e);
    }
  }
  for (int c = 0; c < opened; c++) tdm__route_msg_close(pw, &m[c]);
}
