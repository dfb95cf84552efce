/* Dual writes that applied on one cluster only, and LWTs whose [applied] differ (behaviour.md §6.2):
 * counted in write_divergence_total{kind,failed_on} / lwt_applied_mismatch_total, logged at WARN
 * (rate-limited per call site), and journaled when the request's epoch sets write_divergence_log.
 *
 *   request.c complete() ── divergent ──> tdm__route_divergence ─┬─ count, WARN
 *                        ── [applied] differ ─> tdm__route_lwt_mismatch ─┤
 *                                                                        └─ journal: re-open the client's
 *     body (the request still holds it), decode QUERY / EXECUTE / BATCH, classify for keyspace and
 *     table, format one line (route/journal.h), submit; a full queue counts write_divergence_log_dropped
 *
 * Nothing is recorded per request on the fast path: only a divergent request pays for the decoding. */
#include <time.h>
#include <tandem/obs/log.h>
#include <tandem/proto/classify.h>
#include <tandem/route/journal.h>
#include "internal.h"

/* write_divergence kind: [write, counter, lwt] (core/proxy.h). */
static int kind_of(const tdm_route_req_t *req)
{
  return (req->cflags & TDM_CLASSIFY_F_LWT) ? 2 : req->batch_type == TDM_BATCH_COUNTER ? 1 : 0;
}

static const char *const kind_names[3] = { "write", "counter", "lwt" };

/* Storage behind the borrowed fields of a record. */
typedef struct described_s {
  tdm_journal_stmt_t one;    /* QUERY / EXECUTE */
  tdm_journal_stmt_t *many;  /* BATCH children (heap), NULL otherwise */
  char ks[TDM__ROUTE_KS_MAX]; /* canonical keyspace */
  char table[TDM__ROUTE_KS_MAX]; /* canonical table */
} described_t;

static void params_into(tdm_journal_record_t *r, tdm_journal_stmt_t *s, const tdm_query_params_t *p)
{
  r->consistency = p->consistency;
  r->has_timestamp = (p->flags & TDM_QFLAG_DEFAULT_TIMESTAMP) != 0;
  r->timestamp = p->default_timestamp;
  if (!s) return;
  s->values = p->values;
  s->values_len = p->values_len;
  s->values_count = p->values_count;
  s->named = (p->flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0;
}

/* Keyspace and table of `text`: its explicit keyspace, else the first fallback that is set. True when
 * the statement names a table. */
static bool where(described_t *d, tdm_journal_record_t *r, tdm_str_t text, tdm_str_t ks1, tdm_str_t ks2,
                  tdm_str_t ks3)
{
  tdm_classification_t c;
  size_t n = 0;
  tdm_classify(text.ptr, text.len, &c);
  if (!tdm_cql_name_is_set(c.table)) return false;
  if (tdm_cql_name_copy(c.table, d->table, sizeof(d->table), &n) == 0) r->table = (tdm_str_t){ d->table, n };
  if (tdm_cql_name_is_set(c.keyspace) && tdm_cql_name_copy(c.keyspace, d->ks, sizeof(d->ks), &n) == 0) {
    r->keyspace = (tdm_str_t){ d->ks, n };
  } else {
    tdm_str_t ks = ks1.len ? ks1 : ks2.len ? ks2 : ks3;
    n = TDM_MIN(ks.len, sizeof(d->ks) - 1);
    if (n) memcpy(d->ks, ks.ptr, n);
    r->keyspace = (tdm_str_t){ d->ks, n };
  }
  return true;
}

static tdm_str_t entry_text(const tdm_prepared_entry_t *e)
{
  return e ? (tdm_str_t){ e->query, e->query_len } : (tdm_str_t){ NULL, 0 };
}

static tdm_str_t entry_ks(const tdm_prepared_entry_t *e) { return e ? tdm_str_from(e->keyspace) : (tdm_str_t){ 0 }; }

/* Fills the statement part of r from the client's body (msg[0..len), uncompressed). */
static void describe(tdm_route_req_t *req, const uint8_t *msg, size_t len, described_t *d, tdm_journal_record_t *r)
{
  tdm_str_t session = tdm_str_from(tdm_client_view(req->client)->keyspace);
  if (req->opcode == TDM_OP_QUERY) {
    tdm_query_t q;
    if (tdm_request_decode_query(req->version, msg, len, &q, NULL) < 0) return;
    d->one.query = q.query;
    params_into(r, &d->one, &q.params);
    r->stmts = &d->one;
    r->n_stmts = 1;
    (void)where(d, r, q.query, q.params.keyspace, session, (tdm_str_t){ 0 });
  } else if (req->opcode == TDM_OP_EXECUTE) {
    tdm_execute_t e;
    if (tdm_request_decode_execute(req->version, msg, len, &e, NULL) < 0) return;
    d->one.prepared_id = e.id;
    d->one.query = entry_text(req->entry);
    params_into(r, &d->one, &e.params);
    r->stmts = &d->one;
    r->n_stmts = 1;
    (void)where(d, r, d->one.query, entry_ks(req->entry), e.params.keyspace, session);
  } else if (req->opcode == TDM_OP_BATCH) {
    tdm_batch_t b;
    if (tdm_request_decode_batch(req->version, msg, len, &b, NULL) < 0) return;
    params_into(r, NULL, &b.params);
    r->batch_type = b.type;
    if (!b.count || !(d->many = calloc(b.count, sizeof(*d->many)))) return;
    tdm_batch_iter_t it;
    tdm_batch_child_t ch;
    uint16_t prepared = 0;
    bool located = false;
    tdm_batch_iter_init(&it, &b);
    while (r->n_stmts < b.count && tdm_batch_next_child(&it, &ch) > 0) {
      tdm_journal_stmt_t *s = &d->many[r->n_stmts++];
      const tdm_prepared_entry_t *e = NULL;
      if (ch.kind == TDM_REQUEST_BATCH_KIND_PREPARED) {
        e = prepared < req->n_children ? req->children[prepared] : NULL;
        prepared++;
        s->prepared_id = ch.id;
        s->query = entry_text(e);
      } else {
        s->query = ch.query;
      }
      s->values = ch.values;
      s->values_len = ch.values_len;
      s->values_count = ch.values_count;
      if (!located) located = where(d, r, s->query, entry_ks(e), b.params.keyspace, session);
    }
    r->stmts = d->many;
  }
}

/* Formats and submits one line when the request's epoch journals divergences. */
static void journal(tdm_route_req_t *req, const char *kind, int ok_on, int failed_on, const char *error)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  const tdm_conf_t *conf = req->conf;
  if (!pw->journal || !conf->write_divergence_log || !conf->write_divergence_log[0]) return;
  const tdm_client_view_t *v = tdm_client_view(req->client);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  tdm_journal_record_t r = {
    .ts_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
    .epoch = conf->epoch,
    .client = v->peer,
    .kind = kind,
    .ok_on = ok_on,
    .failed_on = failed_on,
    .error = error,
    .consistency = -1,
    .batch_type = -1,
    .values = conf->write_divergence_log_values,
  };
  described_t d;
  memset(&d, 0, sizeof(d));
  tdm__msg_t m;
  bool opened = tdm__route_msg_open(pw, req->version, req->flags, v->compression, req->body->data + req->body_off,
                                    req->body_len, (size_t)conf->max_frame_bytes, &m) == 0;
  if (opened) describe(req, m.buf + m.msg_off, m.len - m.msg_off, &d, &r);
  tdm_writer_t w;
  tdm_writer_init(&w);
  if (tdm_journal_format(&r, &w) == 0 && tdm_journal_submit(pw->journal, w.buf, w.len) == TDM_EOVERFLOW)
    pw->stats.divergence_journal_dropped++;
  tdm_writer_free(&w);
  free(d.many);
  if (opened) tdm__route_msg_close(pw, &m);
}

void tdm__route_divergence(tdm_route_req_t *req, int failed)
{
  int kind = kind_of(req);
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  pw->stats.write_divergence[kind][failed]++;
  char error[768];
  tdm__route_leg_error_text(req, &req->legs[failed], error, sizeof(error));
  const tdm_client_view_t *v = tdm_client_view(req->client);
  tdm_log_warn(NULL, "C-%llu divergent %s: applied on %s, failed on %s: %s (epoch %llu)", (unsigned long long)v->id,
               kind_names[kind], tdm_agg_cluster_name(1 - failed), tdm_agg_cluster_name(failed), error,
               (unsigned long long)req->conf->epoch);
  journal(req, kind_names[kind], 1 - failed, failed, error);
}

void tdm__route_lwt_mismatch(tdm_route_req_t *req, bool origin_applied)
{
  tdm_proxy_worker_t *pw = tdm__route_pw(req);
  pw->stats.lwt_applied_mismatch++;
  const char *o = origin_applied ? "true" : "false", *t = origin_applied ? "false" : "true";
  const tdm_client_view_t *v = tdm_client_view(req->client);
  tdm_log_warn(NULL, "C-%llu lwt_mismatch: [applied] %s on ORIGIN, %s on TARGET", (unsigned long long)v->id, o, t);
  char error[64];
  snprintf(error, sizeof(error), "[applied] %s on ORIGIN, %s on TARGET", o, t);
  /* ok_on is the cluster that applied the conditional write, failed_on the one whose condition failed */
  int applied = origin_applied ? TDM_CONF_ORIGIN : TDM_CONF_TARGET;
  journal(req, "lwt_mismatch", applied, 1 - applied, error);
}
