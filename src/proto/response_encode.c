/* Response encoders: the mirror of response_decode.c / response_metadata.c, writing through the
 * sticky-failure writer. Each takes the decoded struct, so decode -> encode reproduces a body; arrays in
 * the struct (items, entries, reasons, columns, pk_indices) take precedence over raw spans, which is how
 * tandem builds messages of its own. Inconsistent input is TDM_EINVAL, recorded in the writer. */
#include <tandem/proto/response.h>

static int fail(tdm_writer_t *w, int err)
{
  if (!w->err) w->err = err;
  return w->err;
}

static bool is_dse(uint8_t v) { return v == TDM_PROTO_DSE_V1 || v == TDM_PROTO_DSE_V2; }

static void write_strlist(tdm_writer_t *w, const tdm_response_strlist_t *l)
{
  if (l->items) {
    tdm_writer_string_list(w, l->items, l->count);
    return;
  }
  if (l->count && !l->raw) {
    fail(w, TDM_EINVAL);
    return;
  }
  tdm_writer_short(w, l->count);
  tdm_writer_raw(w, l->raw, l->raw_len);
}

static void write_short_bytes(tdm_writer_t *w, tdm_bytes_t b)
{
  if (b.len < 0) {
    fail(w, TDM_EINVAL);
    return;
  }
  tdm_writer_short_bytes(w, b.ptr, (size_t)b.len);
}

/* ---- ERROR ---- */

static void write_reasons(tdm_writer_t *w, const tdm_response_error_t *e)
{
  if (e->reasons) {
    for (int32_t i = 0; i < e->failures; i++) {
      const tdm_response_reason_t *x = &e->reasons[i];
      if (x->addr_len != 4 && x->addr_len != 16) {
        fail(w, TDM_EINVAL);
        return;
      }
      tdm_writer_byte(w, x->addr_len);
      tdm_writer_raw(w, x->addr, x->addr_len);
      tdm_writer_short(w, x->code);
    }
    return;
  }
  if (e->failures > 0 && !e->reason_map) {
    fail(w, TDM_EINVAL);
    return;
  }
  tdm_writer_raw(w, e->reason_map, e->reason_map_len);
}

static void write_cl_received_blockfor(tdm_writer_t *w, const tdm_response_error_t *e)
{
  tdm_writer_short(w, e->consistency);
  tdm_writer_int(w, e->received);
  tdm_writer_int(w, e->block_for);
}

int tdm_response_encode_error(tdm_writer_t *w, uint8_t version, const tdm_response_error_t *e)
{
  if (!tdm_response_version_ok(version)) return fail(w, TDM_EINVAL);
  tdm_writer_int(w, (int32_t)e->code);
  tdm_writer_string(w, e->message);
  switch (e->code) {
  case TDM_ERR_UNAVAILABLE:
    tdm_writer_short(w, e->consistency);
    tdm_writer_int(w, e->required);
    tdm_writer_int(w, e->alive);
    break;
  case TDM_ERR_WRITE_TIMEOUT:
    write_cl_received_blockfor(w, e);
    tdm_writer_string(w, e->write_type);
    if (e->has_contentions && version >= TDM_PROTO_V5 && tdm_str_eq_cstr(e->write_type, "CAS"))
      tdm_writer_short(w, e->contentions);
    break;
  case TDM_ERR_READ_TIMEOUT:
    write_cl_received_blockfor(w, e);
    tdm_writer_byte(w, e->data_present);
    break;
  case TDM_ERR_READ_FAILURE:
  case TDM_ERR_WRITE_FAILURE:
    if (e->failures < 0) return fail(w, TDM_EINVAL);
    write_cl_received_blockfor(w, e);
    tdm_writer_int(w, e->failures);
    if (tdm_response_has_reason_map(version)) write_reasons(w, e);
    if (e->code == TDM_ERR_READ_FAILURE)
      tdm_writer_byte(w, e->data_present);
    else
      tdm_writer_string(w, e->write_type);
    break;
  case TDM_ERR_FUNCTION_FAILURE:
    tdm_writer_string(w, e->keyspace);
    tdm_writer_string(w, e->function);
    write_strlist(w, &e->arg_types);
    break;
  case TDM_ERR_ALREADY_EXISTS:
    tdm_writer_string(w, e->keyspace);
    tdm_writer_string(w, e->table);
    break;
  case TDM_ERR_UNPREPARED:
    write_short_bytes(w, e->unprepared_id);
    break;
  case TDM_ERR_CAS_WRITE_UNKNOWN:
    write_cl_received_blockfor(w, e);
    break;
  default:
    tdm_writer_raw(w, e->extra, e->extra_len); /* unknown or message-only codes: extra_len is 0 for the latter */
    break;
  }
  return tdm_writer_error(w);
}

/* ---- simple messages ---- */

int tdm_response_encode_ready(tdm_writer_t *w) { return tdm_writer_error(w); }

int tdm_response_encode_authenticate(tdm_writer_t *w, tdm_str_t authenticator)
{
  tdm_writer_string(w, authenticator);
  return tdm_writer_error(w);
}

int tdm_response_encode_supported(tdm_writer_t *w, const tdm_response_supported_t *s)
{
  if (s->entries) {
    tdm_writer_short(w, s->count);
    for (uint16_t i = 0; i < s->count; i++) {
      tdm_writer_string(w, s->entries[i].key);
      write_strlist(w, &s->entries[i].values);
    }
    return tdm_writer_error(w);
  }
  if (s->count && !s->raw) return fail(w, TDM_EINVAL);
  tdm_writer_short(w, s->count);
  tdm_writer_raw(w, s->raw, s->raw_len);
  return tdm_writer_error(w);
}

int tdm_response_encode_auth_token(tdm_writer_t *w, tdm_bytes_t token)
{
  tdm_writer_bytes(w, token.ptr, token.len);
  return tdm_writer_error(w);
}

int tdm_response_encode_void(tdm_writer_t *w)
{
  tdm_writer_int(w, TDM_RESULT_VOID);
  return tdm_writer_error(w);
}

int tdm_response_encode_set_keyspace(tdm_writer_t *w, tdm_str_t keyspace)
{
  tdm_writer_int(w, TDM_RESULT_SET_KEYSPACE);
  tdm_writer_string(w, keyspace);
  return tdm_writer_error(w);
}

/* ---- schema changes and events ---- */

/* <change_type><target><options> (v3+) or <change_type><keyspace><table> (v2). */
static int write_change(tdm_writer_t *w, uint8_t version, const tdm_response_schema_change_t *sc)
{
  const char *target = tdm_response_target_name(sc->target);
  if (!target) return fail(w, TDM_EINVAL);
  tdm_writer_string(w, sc->change_type);
  if (version < TDM_PROTO_V3) {
    if (sc->target != TDM_RESPONSE_TARGET_KEYSPACE && sc->target != TDM_RESPONSE_TARGET_TABLE)
      return fail(w, TDM_EINVAL);
    tdm_writer_string(w, sc->keyspace);
    tdm_writer_string(w, sc->target == TDM_RESPONSE_TARGET_TABLE ? sc->name : (tdm_str_t){ 0 });
    return tdm_writer_error(w);
  }
  tdm_writer_cstring(w, target);
  tdm_writer_string(w, sc->keyspace);
  if (sc->target == TDM_RESPONSE_TARGET_KEYSPACE) return tdm_writer_error(w);
  tdm_writer_string(w, sc->name);
  if (sc->target == TDM_RESPONSE_TARGET_FUNCTION || sc->target == TDM_RESPONSE_TARGET_AGGREGATE)
    write_strlist(w, &sc->arg_types);
  return tdm_writer_error(w);
}

int tdm_response_encode_schema_change(tdm_writer_t *w, uint8_t version, const tdm_response_schema_change_t *sc)
{
  if (!tdm_response_version_ok(version)) return fail(w, TDM_EINVAL);
  tdm_writer_int(w, TDM_RESULT_SCHEMA_CHANGE);
  return write_change(w, version, sc);
}

int tdm_response_encode_event(tdm_writer_t *w, uint8_t version, const tdm_response_event_t *ev)
{
  const char *name = tdm_response_event_name(ev->kind);
  if (!name || !tdm_response_version_ok(version)) return fail(w, TDM_EINVAL);
  tdm_writer_cstring(w, name);
  if (ev->kind == TDM_RESPONSE_EVENT_SCHEMA_CHANGE) return write_change(w, version, &ev->schema);
  tdm_writer_string(w, ev->change);
  tdm_writer_inet(w, ev->addr, ev->addr_len, ev->port);
  return tdm_writer_error(w);
}

/* ---- metadata, Rows, Prepared ---- */

static void write_column(tdm_writer_t *w, bool global, const tdm_response_column_t *c)
{
  if (!global) {
    tdm_writer_string(w, c->keyspace);
    tdm_writer_string(w, c->table);
  }
  tdm_writer_string(w, c->name);
  if (!c->type.raw || c->type.len < 2) {
    fail(w, TDM_EINVAL);
    return;
  }
  tdm_cqltype_write(w, &c->type);
}

int tdm_response_encode_metadata(tdm_writer_t *w, uint8_t version, tdm_response_meta_kind_t kind,
                                 const tdm_response_metadata_t *m)
{
  if (m->columns_count < 0) return fail(w, TDM_EINVAL);
  tdm_writer_int(w, (int32_t)m->flags);
  tdm_writer_int(w, m->columns_count);
  if (kind == TDM_RESPONSE_META_VARIABLES) {
    if (version >= TDM_PROTO_V4) {
      if (m->pk_count > INT32_MAX || (m->pk_count && !m->pk_indices && !m->pk_raw)) return fail(w, TDM_EINVAL);
      tdm_writer_int(w, (int32_t)m->pk_count);
      for (uint32_t i = 0; i < m->pk_count; i++) tdm_writer_short(w, tdm_response_pk_index(m, i));
    }
  } else {
    if (m->flags & TDM_RFLAG_HAS_MORE_PAGES) tdm_writer_bytes(w, m->paging_state.ptr, m->paging_state.len);
    if ((m->flags & TDM_RFLAG_METADATA_CHANGED) && tdm_response_has_metadata_id(version))
      write_short_bytes(w, m->new_metadata_id);
    if (is_dse(version) && (m->flags & TDM_RFLAG_CONTINUOUS_PAGING)) tdm_writer_int(w, m->continuous_page);
  }
  if (kind == TDM_RESPONSE_META_ROWS && (m->flags & TDM_RFLAG_NO_METADATA)) return tdm_writer_error(w);
  bool global = (m->flags & TDM_RFLAG_GLOBAL_TABLES_SPEC) != 0;
  if (global) {
    tdm_writer_string(w, m->global_keyspace);
    tdm_writer_string(w, m->global_table);
  }
  if (m->columns) {
    for (int32_t i = 0; i < m->columns_count; i++) write_column(w, global, &m->columns[i]);
  } else {
    if (m->columns_count && !m->specs) return fail(w, TDM_EINVAL);
    tdm_writer_raw(w, m->specs, m->specs_len);
  }
  return tdm_writer_error(w);
}

int tdm_response_encode_rows(tdm_writer_t *w, uint8_t version, const tdm_response_rows_t *rows)
{
  if (!tdm_response_version_ok(version) || rows->rows_count < 0) return fail(w, TDM_EINVAL);
  if (rows->rows_count && !rows->content) return fail(w, TDM_EINVAL);
  tdm_writer_int(w, TDM_RESULT_ROWS);
  tdm_response_encode_metadata(w, version, TDM_RESPONSE_META_ROWS, &rows->metadata);
  tdm_writer_int(w, rows->rows_count);
  tdm_writer_raw(w, rows->content, rows->content_len);
  return tdm_writer_error(w);
}

int tdm_response_encode_prepared(tdm_writer_t *w, uint8_t version, const tdm_response_prepared_t *p)
{
  if (!tdm_response_version_ok(version)) return fail(w, TDM_EINVAL);
  tdm_writer_int(w, TDM_RESULT_PREPARED);
  write_short_bytes(w, p->id);
  if (tdm_response_has_metadata_id(version)) write_short_bytes(w, p->result_metadata_id);
  tdm_response_encode_metadata(w, version, TDM_RESPONSE_META_VARIABLES, &p->variables);
  tdm_response_encode_metadata(w, version, TDM_RESPONSE_META_ROWS, &p->result);
  return tdm_writer_error(w);
}

/* ---- any response ---- */

static int encode_result(tdm_writer_t *w, uint8_t version, const tdm_response_result_t *res)
{
  switch (res->kind) {
  case TDM_RESULT_VOID:
    return tdm_response_encode_void(w);
  case TDM_RESULT_ROWS:
    return tdm_response_encode_rows(w, version, &res->rows);
  case TDM_RESULT_SET_KEYSPACE:
    return tdm_response_encode_set_keyspace(w, res->keyspace);
  case TDM_RESULT_PREPARED:
    return tdm_response_encode_prepared(w, version, &res->prepared);
  case TDM_RESULT_SCHEMA_CHANGE:
    return tdm_response_encode_schema_change(w, version, &res->schema_change);
  default:
    return fail(w, TDM_EINVAL);
  }
}

int tdm_response_encode(tdm_writer_t *w, const tdm_response_t *r)
{
  if (!tdm_response_version_ok(r->version)) return fail(w, TDM_EINVAL);
  switch (r->opcode) {
  case TDM_OP_ERROR:
    return tdm_response_encode_error(w, r->version, &r->error);
  case TDM_OP_READY:
    return tdm_response_encode_ready(w);
  case TDM_OP_AUTHENTICATE:
    return tdm_response_encode_authenticate(w, r->authenticator);
  case TDM_OP_SUPPORTED:
    return tdm_response_encode_supported(w, &r->supported);
  case TDM_OP_RESULT:
    return encode_result(w, r->version, &r->result);
  case TDM_OP_EVENT:
    return tdm_response_encode_event(w, r->version, &r->event);
  case TDM_OP_AUTH_CHALLENGE:
  case TDM_OP_AUTH_SUCCESS:
    return tdm_response_encode_auth_token(w, r->token);
  default:
    return fail(w, TDM_EINVAL);
  }
}
