/* The virtual tables' entry points for the route module (behaviour.md §9): QUERY, PREPARE and EXECUTE
 * of SELECTs on system.local / peers / peers_v2, answered from this connection (rpc_address, version),
 * the configuration (instances) and the system_queries_mode cluster's snapshot. Prepared virtual
 * statements live in a per-worker table (oldest evicted first): an EXECUTE that reaches another worker
 * misses here, gets UNPREPARED from the route module, and the driver re-prepares on that connection. */
#include <tandem/frontend/vtables.h>
#include <tandem/obs/log.h>
#include <tandem/proto/request.h>

#include "internal.h"

static void ctx_of(const tdm_client_t *c, tdm_vtables_ctx_t *ctx)
{
  tdm_proxy_worker_t *pw = c->view.pw;
  memset(ctx, 0, sizeof(*ctx));
  ctx->conf = pw->conf;
  ctx->topology = pw->topology[pw->conf ? pw->conf->system_queries_mode : TDM_CONF_ORIGIN];
  ctx->local = c->local_addr;
  ctx->version = c->view.version;
}

static void log_partitioner(tdm_client_t *c, const tdm_vtables_ctx_t *ctx)
{
  tdm_frontend_t *fe = c->fe;
  const tdm_topology_t *t = ctx->topology;
  if (fe->logged_partitioner || !t || !t->partitioner[0]) return;
  fe->logged_partitioner = true;
  if (strcmp(t->partitioner, "org.apache.cassandra.dht.Murmur3Partitioner") != 0)
    tdm_log_info(NULL, "virtual tables report Murmur3Partitioner; the cluster's real partitioner is %s", t->partitioner);
}

static int unsupported(tdm_client_t *c, int16_t stream, tdm_vtable_t table)
{
  return tdm_client_respond_errorf(c, stream, TDM_ERR_INVALID,
                                   "tandem: unsupported clause in a query on virtual table system.%s",
                                   tdm_vtable_name(table));
}

/* Parses `query`; answers the error itself. 0 with *out set, TDM_EINVAL when not virtual (nothing sent),
 * 1 when an error was answered. */
static int parse(tdm_client_t *c, int16_t stream, tdm_str_t query, tdm_str_t keyspace, tdm_vselect_t **out)
{
  tdm_vselect_t *sel = malloc(sizeof(*sel));
  if (!sel) {
    tdm_client_respond_errorf(c, stream, TDM_ERR_SERVER_ERROR, "tandem: out of memory");
    return 1;
  }
  int rc = tdm_vselect_parse(query, keyspace, sel);
  if (rc == TDM_ENOTFOUND) {
    free(sel);
    return TDM_EINVAL;
  }
  if (rc < 0) {
    unsupported(c, stream, sel->table);
    free(sel);
    return 1;
  }
  *out = sel;
  return 0;
}

/* Answers RESULT Rows for sel, or its INVALID. */
static int answer_rows(tdm_client_t *c, int16_t stream, const tdm_vselect_t *sel, const tdm_vtables_opts_t *opts)
{
  tdm_vtables_ctx_t ctx;
  ctx_of(c, &ctx);
  log_partitioner(c, &ctx);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_vtables_error_t err = { 0 };
  int rc = tdm_vtables_rows(&ctx, sel, opts, &w, &err);
  if (rc == TDM_EINVAL && err.code) rc = tdm_client_respond_errorf(c, stream, err.code, "%s", err.message);
  else if (rc < 0) rc = tdm_client_respond_errorf(c, stream, TDM_ERR_SERVER_ERROR, "tandem: %s", tdm_strerror(rc));
  else rc = tdm_client_respond_bytes(c, stream, TDM_OP_RESULT, w.buf, w.len);
  tdm_writer_free(&w);
  return rc == TDM_ECLOSED ? rc : 0;
}

/* Bound values in marker order: positional as sent, named ones matched to :name markers. */
static int collect_values(const tdm_vselect_t *sel, const tdm_query_params_t *p, bool named, tdm_bytes_t *out,
                          size_t *n)
{
  *n = 0;
  if (!(p->flags & TDM_QFLAG_VALUES) || !p->values_count) return 0;
  tdm_values_iter_t it;
  tdm_values_iter_init(&it, p->values, p->values_len, p->values_count, named);
  tdm_str_t name;
  tdm_bytes_t v;
  size_t k = 0;
  int r;
  for (size_t i = 0; i < sel->n_markers; i++) out[i] = (tdm_bytes_t){ NULL, -1 };
  while ((r = tdm_values_next(&it, &name, &v)) == 1) {
    if (!named) {
      if (k < sel->n_markers) out[k] = v;
      k++;
      continue;
    }
    for (size_t i = 0; i < sel->n_markers; i++)
      if (tdm_str_eq_ci(sel->markers[i].name, name)) out[i] = v;
  }
  *n = sel->n_markers;
  return r < 0 ? r : 0;
}

int tdm_vtables_query(tdm_client_t *c, int16_t stream, tdm_str_t query, tdm_str_t resolved_keyspace)
{
  if (tdm_client_is_closing(c)) return tdm_client_respond_errorf(c, stream, TDM_ERR_SERVER_ERROR, "closing");
  tdm_vselect_t *sel = NULL;
  int rc = parse(c, stream, query, resolved_keyspace, &sel);
  if (rc != 0) return rc < 0 ? rc : 0;
  rc = answer_rows(c, stream, sel, NULL);
  free(sel);
  return rc;
}

int tdm_vtables_query_body(tdm_client_t *c, int16_t stream, const uint8_t *body, size_t len,
                           tdm_str_t resolved_keyspace)
{
  if (tdm_client_is_closing(c)) return tdm_client_respond_errorf(c, stream, TDM_ERR_SERVER_ERROR, "closing");
  tdm_query_t q;
  const char *why = "malformed QUERY";
  if (tdm_request_decode_query(c->view.version, body, len, &q, &why) < 0) return TDM_EINVAL;
  tdm_vselect_t *sel = NULL;
  int rc = parse(c, stream, q.query, resolved_keyspace, &sel);
  if (rc != 0) return rc < 0 ? rc : 0;
  tdm_bytes_t values[TDM_VSELECT_MAX_MARKERS];
  tdm_vtables_opts_t opts = { .values = values };
  if (collect_values(sel, &q.params, (q.params.flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0, values, &opts.n_values) < 0)
    opts.n_values = 0;
  rc = answer_rows(c, stream, sel, &opts);
  free(sel);
  return rc;
}

/* ---- prepared virtual statements ---- */

static tdm__vstmt_t *vstmt_find(tdm_frontend_t *fe, const uint8_t *id, size_t len)
{
  if (len != 16) return NULL;
  for (size_t i = 0; i < fe->nvstmts; i++)
    if (memcmp(fe->vstmts[i].id, id, 16) == 0) return &fe->vstmts[i];
  return NULL;
}

static void vstmt_drop(tdm_frontend_t *fe, size_t i)
{
  free(fe->vstmts[i].query);
  free(fe->vstmts[i].keyspace);
  memmove(&fe->vstmts[i], &fe->vstmts[i + 1], (fe->nvstmts - i - 1) * sizeof(fe->vstmts[0]));
  fe->nvstmts--;
}

static void vstmt_put(tdm_frontend_t *fe, const uint8_t id[16], tdm_str_t query, tdm_str_t keyspace)
{
  if (vstmt_find(fe, id, 16)) return; /* same id: same keyspace and text */
  if (!fe->vstmts && !(fe->vstmts = calloc(TDM_FRONTEND_VSTMT_MAX, sizeof(*fe->vstmts)))) return;
  if (fe->nvstmts == TDM_FRONTEND_VSTMT_MAX) vstmt_drop(fe, 0);
  tdm__vstmt_t *s = &fe->vstmts[fe->nvstmts];
  s->query = malloc(query.len + 1);
  s->keyspace = malloc(keyspace.len + 1);
  if (!s->query || !s->keyspace) {
    free(s->query);
    free(s->keyspace);
    return; /* not kept: an EXECUTE gets UNPREPARED and the driver prepares again */
  }
  memcpy(s->id, id, 16);
  if (query.len) memcpy(s->query, query.ptr, query.len);
  s->query[query.len] = '\0';
  s->query_len = query.len;
  if (keyspace.len) memcpy(s->keyspace, keyspace.ptr, keyspace.len);
  s->keyspace[keyspace.len] = '\0';
  fe->nvstmts++;
}

void tdm__vstmts_free(tdm_frontend_t *fe)
{
  while (fe->nvstmts) vstmt_drop(fe, fe->nvstmts - 1);
  free(fe->vstmts);
  fe->vstmts = NULL;
}

int tdm_vtables_prepare(tdm_client_t *c, int16_t stream, tdm_str_t query, tdm_str_t keyspace)
{
  if (tdm_client_is_closing(c)) return tdm_client_respond_errorf(c, stream, TDM_ERR_SERVER_ERROR, "closing");
  tdm_vselect_t *sel = NULL;
  int rc = parse(c, stream, query, keyspace, &sel);
  if (rc != 0) return rc < 0 ? rc : 0;
  uint8_t id[16];
  tdm_vtables_statement_id(keyspace, query, id);
  tdm_vtables_ctx_t ctx;
  ctx_of(c, &ctx);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_vtables_error_t err = { 0 };
  rc = tdm_vtables_prepared(&ctx, sel, id, &w, &err);
  if (rc == TDM_EINVAL && err.code) {
    rc = tdm_client_respond_errorf(c, stream, err.code, "%s", err.message);
  } else if (rc < 0) {
    rc = tdm_client_respond_errorf(c, stream, TDM_ERR_SERVER_ERROR, "tandem: %s", tdm_strerror(rc));
  } else {
    vstmt_put(c->fe, id, query, keyspace);
    rc = tdm_client_respond_bytes(c, stream, TDM_OP_RESULT, w.buf, w.len);
  }
  tdm_writer_free(&w);
  free(sel);
  return rc == TDM_ECLOSED ? rc : 0;
}

bool tdm_vtables_execute(tdm_client_t *c, int16_t stream, const uint8_t *id, size_t id_len, const uint8_t *body,
                         size_t len)
{
  if (tdm_client_is_closing(c)) return false;
  tdm__vstmt_t *st = vstmt_find(c->fe, id, id_len);
  if (!st) return false;
  tdm_execute_t ex;
  const char *why = "malformed EXECUTE";
  if (tdm_request_decode_execute(c->view.version, body, len, &ex, &why) < 0) {
    tdm_client_respond_errorf(c, stream, TDM_ERR_PROTOCOL_ERROR, "Malformed EXECUTE: %s", why);
    return true;
  }
  tdm_vselect_t *sel = NULL;
  tdm_str_t query = { st->query, st->query_len };
  int rc = parse(c, stream, query, tdm_str_from(st->keyspace), &sel);
  if (rc != 0) {
    if (rc < 0) tdm_client_respond_errorf(c, stream, TDM_ERR_SERVER_ERROR, "tandem: virtual statement lost");
    return true;
  }
  tdm_bytes_t values[TDM_VSELECT_MAX_MARKERS];
  tdm_vtables_opts_t opts = { .values = values };
  if (collect_values(sel, &ex.params, (ex.params.flags & TDM_QFLAG_NAMES_FOR_VALUES) != 0, values, &opts.n_values) < 0)
    opts.n_values = 0;
  opts.skip_metadata = (ex.params.flags & TDM_QFLAG_SKIP_METADATA) != 0;
  if (ex.has_metadata_id) {
    /* v5: metadata may be skipped only when the client's id is current; a stale one gets it again */
    tdm_vtables_ctx_t ctx;
    ctx_of(c, &ctx);
    uint8_t mid[16];
    tdm_vtables_error_t err = { 0 };
    if (tdm_vtables_metadata_id(&ctx, sel, mid, &err) == 0 &&
        (ex.result_metadata_id.len != 16 || memcmp(ex.result_metadata_id.ptr, mid, 16) != 0)) {
      opts.metadata_changed = true;
      opts.skip_metadata = false;
    }
  }
  answer_rows(c, stream, sel, &opts);
  free(sel);
  return true;
}
