/* Virtual-table results (behaviour.md §9.1, §9.3): WHERE filters (key, peer, peer_port, literal or
 * bound), LIMIT, the selection resolved against the table's columns (unknown column: the exact INVALID
 * text), aggregates (count(*) makes one row), now(), and the RESULT Rows / Prepared bodies with their
 * metadata. The cells themselves come from vtables_view.c. */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <tandem/frontend/vtables.h>
#include <tandem/proto/cqltype.h>
#include <tandem/proto/response.h>
#include <tandem/util/time.h>

#include "internal.h"

static const uint8_t T_INT[] = { 0x00, 0x09 };
static const uint8_t T_BIGINT[] = { 0x00, 0x02 };
static const uint8_t T_TIMEUUID[] = { 0x00, 0x0F };
static const uint8_t T_BLOB[] = { 0x00, 0x03 };

/* ---- filters ---- */

/* The bytes a term compares with: a bound value, or NULL (unbound: the filter is not applied). */
static bool term_bytes(const tdm_vsel_term_t *t, const tdm_vtables_opts_t *o, tdm_bytes_t *out)
{
  if (t->marker < 0 || !o || !o->values || (size_t)t->marker >= o->n_values) return false;
  *out = o->values[t->marker];
  return out->len >= 0;
}

static bool match_key(const tdm_vsel_term_t *t, const tdm_vtables_opts_t *o)
{
  if (!t->set) return true;
  if (t->marker < 0) {
    tdm_str_t body = tdm_cql_token_body(&t->literal);
    return t->literal.kind == TDM_CQL_TOK_STRING && tdm_str_eq_cstr(body, "local");
  }
  tdm_bytes_t b;
  if (!term_bytes(t, o, &b)) return true;
  return b.len == 5 && memcmp(b.ptr, "local", 5) == 0;
}

static bool match_peer(const tdm_vsel_term_t *t, const tdm_vtables_opts_t *o, const tdm__vinst_t *i)
{
  if (!t->set) return true;
  uint8_t addr[16];
  size_t len = 0;
  if (t->marker < 0) {
    tdm_str_t body = tdm_cql_token_body(&t->literal);
    char text[64];
    if (t->literal.kind != TDM_CQL_TOK_STRING || body.len >= sizeof(text)) return false;
    memcpy(text, body.ptr, body.len);
    text[body.len] = '\0';
    if (inet_pton(AF_INET, text, addr) == 1) len = 4;
    else if (inet_pton(AF_INET6, text, addr) == 1) len = 16;
    else return false;
  } else {
    tdm_bytes_t b;
    if (!term_bytes(t, o, &b)) return true;
    if (b.len != 4 && b.len != 16) return false;
    memcpy(addr, b.ptr, (size_t)b.len);
    len = (size_t)b.len;
  }
  return len == i->addr_len && memcmp(addr, i->addr, len) == 0;
}

static bool match_port(const tdm_vsel_term_t *t, const tdm_vtables_opts_t *o, const tdm__vinst_t *i)
{
  if (!t->set) return true;
  long port;
  if (t->marker < 0) {
    char text[16];
    if (t->literal.kind != TDM_CQL_TOK_NUMBER || t->literal.text.len >= sizeof(text)) return false;
    memcpy(text, t->literal.text.ptr, t->literal.text.len);
    text[t->literal.text.len] = '\0';
    char *end;
    port = strtol(text, &end, 10);
    if (*end) return false;
  } else {
    tdm_bytes_t b;
    if (!term_bytes(t, o, &b)) return true;
    if (b.len != 4) return false;
    port = (long)(int32_t)(((uint32_t)b.ptr[0] << 24) | ((uint32_t)b.ptr[1] << 16) | ((uint32_t)b.ptr[2] << 8) | b.ptr[3]);
  }
  return port == i->port;
}

/* LIMIT: -1 when none; 0 when invalid (not strictly positive). */
static int64_t limit_of(const tdm_vselect_t *s, const tdm_vtables_opts_t *o)
{
  if (!s->limit.set) return -1;
  if (s->limit.marker < 0) {
    char text[24];
    tdm_str_t t = s->limit.literal.text;
    if (t.len >= sizeof(text)) return 0;
    memcpy(text, t.ptr, t.len);
    text[t.len] = '\0';
    char *end;
    long long n = strtoll(text, &end, 10);
    return *end || n <= 0 ? 0 : (int64_t)n;
  }
  tdm_bytes_t b;
  if (!term_bytes(&s->limit, o, &b)) return -1;
  if (b.len != 4) return 0;
  int32_t n = (int32_t)(((uint32_t)b.ptr[0] << 24) | ((uint32_t)b.ptr[1] << 16) | ((uint32_t)b.ptr[2] << 8) | b.ptr[3]);
  return n <= 0 ? 0 : n;
}

/* ---- result metadata ---- */

/* One output column: its name and type. */
typedef struct outcol_s {
  tdm_str_t name;          /* alias or column name */
  char buf[128];           /* canonical copy of a quoted or folded name */
  const tdm__vcol_t *col;        /* COLUMN: the table column; NULL for count / now */
  tdm_vsel_kind_t kind;    /* what it is */
} outcol_t;

static void set_name(outcol_t *o, tdm_cql_name_t n)
{
  size_t len = 0;
  if (tdm_cql_name_copy(n, o->buf, sizeof(o->buf), &len) == 0) o->name = (tdm_str_t){ o->buf, len };
}

/* Resolves the selection into output columns (heap array). TDM_EINVAL with err for an unknown column. */
static int resolve(const tdm__vview_t *v, const tdm_vselect_t *s, outcol_t **out, size_t *n, tdm_vtables_error_t *err)
{
  size_t count = s->star ? v->ncols : s->n_items;
  outcol_t *o = calloc(count ? count : 1, sizeof(*o));
  if (!o) return TDM_ENOMEM;
  for (size_t i = 0; i < count; i++) {
    if (s->star) {
      o[i].kind = TDM_VSEL_COLUMN;
      o[i].col = &v->cols[i];
      o[i].name = v->cols[i].name;
      continue;
    }
    const tdm_vsel_item_t *it = &s->items[i];
    o[i].kind = it->kind;
    if (it->kind == TDM_VSEL_COLUMN) {
      o[i].col = tdm__vview_col(v, it->name);
      if (!o[i].col) {
        char name[128];
        size_t len = 0;
        if (tdm_cql_name_copy(it->name, name, sizeof(name), &len) < 0) snprintf(name, sizeof(name), "?");
        err->code = TDM_ERR_INVALID;
        snprintf(err->message, sizeof(err->message), "Undefined column name %s", name);
        free(o);
        return TDM_EINVAL;
      }
      o[i].name = o[i].col->name;
    } else if (it->kind == TDM_VSEL_COUNT) {
      o[i].name = TDM_STR("count");
    } else {
      o[i].name = TDM_STR("system.now()");
    }
    if (tdm_cql_name_is_set(it->alias)) set_name(&o[i], it->alias);
  }
  *out = o;
  *n = count;
  return 0;
}

/* A validated view of raw, or blob when raw is not one well-formed [option]. */
static void type_or_blob(const uint8_t *raw, size_t len, tdm_cqltype_t *t)
{
  if (tdm_cqltype_from_raw(raw, len, t) == 0) return;
  int rc = tdm_cqltype_native(TDM_CQLTYPE_BLOB, t);
  TDM_ASSERT(rc == 0);
}

static void out_type(const outcol_t *o, tdm_cqltype_t *t)
{
  const uint8_t *raw = o->kind == TDM_VSEL_COUNT ? T_BIGINT : o->kind == TDM_VSEL_NOW ? T_TIMEUUID : o->col->type;
  size_t len = o->kind == TDM_VSEL_COLUMN ? o->col->type_len : 2;
  type_or_blob(raw, len, t);
}

static void column_specs(tdm_response_column_t *specs, const outcol_t *o, size_t n, tdm_str_t table)
{
  for (size_t i = 0; i < n; i++) {
    specs[i].keyspace = TDM_STR("system");
    specs[i].table = table;
    specs[i].name = o[i].name;
    out_type(&o[i], &specs[i].type);
  }
}

/* A fresh version-1 timeuuid for now(): 100 ns intervals since 1582-10-15, random clock and node. */
static void timeuuid_now(uint8_t out[16])
{
  uint64_t ts = (uint64_t)tdm_time_wall_ms() * 10000u + 0x01B21DD213814000ull;
  uint8_t rnd[8] = { 0 };
  (void)RAND_bytes(rnd, sizeof(rnd)); /* on failure the clock sequence and node are zero: still valid */
  out[0] = (uint8_t)(ts >> 24);
  out[1] = (uint8_t)(ts >> 16);
  out[2] = (uint8_t)(ts >> 8);
  out[3] = (uint8_t)ts;
  out[4] = (uint8_t)(ts >> 40);
  out[5] = (uint8_t)(ts >> 32);
  out[6] = (uint8_t)(((ts >> 56) & 0x0f) | 0x10);
  out[7] = (uint8_t)(ts >> 48);
  out[8] = (uint8_t)((rnd[0] & 0x3f) | 0x80);
  out[9] = rnd[1];
  memcpy(out + 10, rnd + 2, 6);
  out[10] |= 0x01; /* multicast bit: a random node id */
}

/* ---- entry points ---- */

static int check_table(const tdm__vview_t *v, tdm_vtables_error_t *err)
{
  if (v->table == TDM_VTABLE_PEERS_V2 && v->topo && !v->topo->has_peers_v2) {
    err->code = TDM_ERR_INVALID;
    snprintf(err->message, sizeof(err->message), "unconfigured table peers_v2");
    return TDM_EINVAL;
  }
  return 0;
}

int tdm_vtables_rows(const tdm_vtables_ctx_t *ctx, const tdm_vselect_t *sel, const tdm_vtables_opts_t *opts,
                     tdm_writer_t *w, tdm_vtables_error_t *err)
{
  tdm__vview_t v;
  outcol_t *o = NULL;
  size_t no = 0;
  tdm_response_column_t *specs = NULL;
  tdm__vinst_t **rows = NULL;
  int rc = tdm__vview_build(&v, ctx, sel->table);
  if (rc == 0) rc = check_table(&v, err);
  if (rc == 0) rc = resolve(&v, sel, &o, &no, err);
  if (rc < 0) goto done;
  int64_t limit = limit_of(sel, opts);
  if (limit == 0) {
    err->code = TDM_ERR_INVALID;
    snprintf(err->message, sizeof(err->message), "LIMIT must be strictly positive");
    rc = TDM_EINVAL;
    goto done;
  }

  /* matching instance rows */
  rows = calloc(v.n, sizeof(*rows));
  specs = calloc(no ? no : 1, sizeof(*specs));
  if (!rows || !specs) {
    rc = TDM_ENOMEM;
    goto done;
  }
  size_t nrows = 0;
  if (sel->table == TDM_VTABLE_LOCAL) {
    if (match_key(&sel->key, opts)) rows[nrows++] = &v.self;
  } else {
    for (uint32_t i = 0; i < v.n; i++) {
      if (v.insts[i].index == v.self.index) continue;
      if (!match_peer(&sel->peer, opts, &v.insts[i])) continue;
      if (sel->table == TDM_VTABLE_PEERS_V2 && !match_port(&sel->peer_port, opts, &v.insts[i])) continue;
      rows[nrows++] = &v.insts[i];
    }
  }
  bool aggregate = false;
  for (size_t i = 0; i < no; i++) aggregate |= o[i].kind == TDM_VSEL_COUNT;
  size_t nout = aggregate ? 1 : nrows;
  if (limit > 0 && (uint64_t)limit < nout) nout = (size_t)limit;

  tdm_str_t table = tdm_str_from(tdm_vtable_name(sel->table));
  tdm_response_rows_options_t ro = { 0 };
  ro.flags = TDM_RFLAG_GLOBAL_TABLES_SPEC;
  ro.keyspace = TDM_STR("system");
  ro.table = table;
  uint8_t mid[16];
  if (opts && opts->metadata_changed && tdm_proto_has_metadata_id(ctx->version)) {
    rc = tdm_vtables_metadata_id(ctx, sel, mid, err);
    if (rc < 0) goto done;
    ro.flags |= TDM_RFLAG_METADATA_CHANGED;
    ro.new_metadata_id = (tdm_bytes_t){ mid, 16 };
  } else if (opts && opts->skip_metadata) {
    ro.flags = TDM_RFLAG_NO_METADATA;
    ro.columns_count = (int32_t)no;
  }
  tdm_response_rows_builder_t b;
  tdm_response_rows_begin(&b, w, ctx->version, &ro);
  if (!(ro.flags & TDM_RFLAG_NO_METADATA)) {
    column_specs(specs, o, no, table);
    for (size_t i = 0; i < no; i++) tdm_response_rows_column(&b, &specs[i]);
  }
  for (size_t r = 0; r < nout && rc == 0; r++) {
    const tdm__vinst_t *inst = r < nrows ? rows[r] : NULL; /* an aggregate over no row has null columns */
    for (size_t i = 0; i < no && rc == 0; i++) {
      if (o[i].kind == TDM_VSEL_COUNT) {
        tdm_response_rows_cell_bigint(&b, (int64_t)nrows);
      } else if (o[i].kind == TDM_VSEL_NOW) {
        uint8_t u[16];
        timeuuid_now(u);
        tdm_response_rows_cell_uuid(&b, u);
      } else if (!inst) {
        tdm_response_rows_cell_null(&b);
      } else {
        rc = tdm__vview_cell(&b, &v, o[i].col, inst);
      }
    }
  }
  if (rc == 0) rc = tdm_response_rows_finish(&b);
done:
  free(rows);
  free(specs);
  free(o);
  tdm__vview_free(&v);
  return rc;
}

/* The result metadata of sel, encoded (shared by Prepared and the metadata id). */
static int encode_result_metadata(const tdm__vview_t *v, const tdm_vselect_t *sel, uint8_t version, tdm_writer_t *w,
                                  tdm_vtables_error_t *err)
{
  outcol_t *o = NULL;
  size_t no = 0;
  int rc = resolve(v, sel, &o, &no, err);
  if (rc < 0) return rc;
  tdm_response_column_t *specs = calloc(no ? no : 1, sizeof(*specs));
  if (!specs) {
    free(o);
    return TDM_ENOMEM;
  }
  tdm_str_t table = tdm_str_from(tdm_vtable_name(sel->table));
  column_specs(specs, o, no, table);
  tdm_response_metadata_t m;
  memset(&m, 0, sizeof(m));
  m.flags = TDM_RFLAG_GLOBAL_TABLES_SPEC;
  m.columns_count = (int32_t)no;
  m.global_keyspace = TDM_STR("system");
  m.global_table = table;
  m.columns = specs;
  rc = tdm_response_encode_metadata(w, version, TDM_RESPONSE_META_ROWS, &m);
  free(specs);
  free(o);
  return rc;
}

int tdm_vtables_metadata_id(const tdm_vtables_ctx_t *ctx, const tdm_vselect_t *sel, uint8_t out[16],
                            tdm_vtables_error_t *err)
{
  tdm__vview_t v;
  int rc = tdm__vview_build(&v, ctx, sel->table);
  tdm_writer_t w;
  tdm_writer_init(&w);
  if (rc == 0) rc = encode_result_metadata(&v, sel, ctx->version, &w, err);
  if (rc == 0) {
    unsigned int len = 0;
    uint8_t md[EVP_MAX_MD_SIZE];
    if (EVP_Digest(w.buf, w.len, md, &len, EVP_md5(), NULL) != 1 || len != 16) rc = TDM_ENOMEM;
    else memcpy(out, md, 16);
  }
  tdm_writer_free(&w);
  tdm__vview_free(&v);
  return rc;
}

int tdm_vtables_prepared(const tdm_vtables_ctx_t *ctx, const tdm_vselect_t *sel, const uint8_t id[16],
                         tdm_writer_t *w, tdm_vtables_error_t *err)
{
  tdm__vview_t v;
  int rc = tdm__vview_build(&v, ctx, sel->table);
  if (rc == 0) rc = check_table(&v, err);
  uint8_t mid[16];
  if (rc == 0 && tdm_proto_has_metadata_id(ctx->version)) rc = tdm_vtables_metadata_id(ctx, sel, mid, err);
  if (rc < 0) {
    tdm__vview_free(&v);
    return rc;
  }
  /* bind variables: one per marker, typed by the column it is compared with */
  tdm_response_column_t vars[TDM_VSELECT_MAX_MARKERS];
  char names[TDM_VSELECT_MAX_MARKERS][128];
  for (size_t i = 0; i < sel->n_markers; i++) {
    const tdm_vsel_marker_t *m = &sel->markers[i];
    tdm_response_column_t *c = &vars[i];
    memset(c, 0, sizeof(*c));
    c->keyspace = TDM_STR("system");
    c->table = tdm_str_from(tdm_vtable_name(sel->table));
    const tdm__vcol_t *col = tdm_cql_name_is_set(m->column) ? tdm__vview_col(&v, m->column) : NULL;
    const uint8_t *type = m->limit ? T_INT : col ? col->type : T_BLOB;
    size_t tlen = m->limit ? 2 : col ? col->type_len : 2;
    type_or_blob(type, tlen, &c->type);
    size_t len = 0;
    if (m->name.len) c->name = m->name;
    else if (m->limit) c->name = TDM_STR("[limit]");
    else if (tdm_cql_name_is_set(m->column) && tdm_cql_name_copy(m->column, names[i], sizeof(names[i]), &len) == 0)
      c->name = (tdm_str_t){ names[i], len };
    else c->name = TDM_STR("expr");
  }
  /* partition key indices: when every key column of the table is bound by a marker */
  static const char *const pk_local[] = { "key" }, *const pk_peers[] = { "peer" },
                           *const pk_v2[] = { "peer", "peer_port" };
  const char *const *pk = sel->table == TDM_VTABLE_LOCAL ? pk_local : sel->table == TDM_VTABLE_PEERS ? pk_peers : pk_v2;
  size_t npk = sel->table == TDM_VTABLE_PEERS_V2 ? 2 : 1;
  uint16_t pk_idx[2];
  size_t found = 0;
  for (size_t k = 0; k < npk; k++) {
    for (size_t i = 0; i < sel->n_markers; i++) {
      if (!sel->markers[i].limit && tdm_cql_name_eq(sel->markers[i].column, tdm_str_from(pk[k]))) {
        pk_idx[found++] = (uint16_t)i;
        break;
      }
    }
  }
  tdm_response_prepared_t p;
  memset(&p, 0, sizeof(p));
  tdm_writer_int(w, TDM_RESULT_PREPARED);
  tdm_writer_short_bytes(w, id, 16);
  if (tdm_proto_has_metadata_id(ctx->version)) tdm_writer_short_bytes(w, mid, 16);
  p.variables.flags = TDM_RFLAG_GLOBAL_TABLES_SPEC;
  p.variables.columns_count = (int32_t)sel->n_markers;
  p.variables.global_keyspace = TDM_STR("system");
  p.variables.global_table = tdm_str_from(tdm_vtable_name(sel->table));
  p.variables.columns = vars;
  p.variables.pk_count = found == npk ? (uint32_t)npk : 0;
  p.variables.pk_indices = pk_idx;
  rc = tdm_response_encode_metadata(w, ctx->version, TDM_RESPONSE_META_VARIABLES, &p.variables);
  if (rc == 0) rc = encode_result_metadata(&v, sel, ctx->version, w, err);
  tdm__vview_free(&v);
  return rc;
}
