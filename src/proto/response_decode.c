/* Response decoding: one function per message, all reading through tdm_reader_t, so nothing is read
 * outside the body and every count is bounded by the bytes left. The decoded struct borrows from the
 * body. Metadata (Rows, Prepared) is read by response_metadata.c; this file assembles the messages. */
#include <tandem/proto/response.h>

#define FAIL(msg)                       \
  do {                                  \
    if (why) *why = (msg);              \
    return TDM_EPROTO_MALFORMED;        \
  } while (0)

bool tdm_response_version_ok(uint8_t v)
{
  return (v >= TDM_PROTO_V2 && v <= TDM_PROTO_V5) || v == TDM_PROTO_DSE_V1 || v == TDM_PROTO_DSE_V2;
}

bool tdm_response_opcode_ok(uint8_t op)
{
  switch (op) {
  case TDM_OP_ERROR: case TDM_OP_READY: case TDM_OP_AUTHENTICATE: case TDM_OP_SUPPORTED:
  case TDM_OP_RESULT: case TDM_OP_EVENT: case TDM_OP_AUTH_CHALLENGE: case TDM_OP_AUTH_SUCCESS:
    return true;
  default:
    return false;
  }
}

/* ---- string lists ---- */

/* Reads a [string list], keeping its entries as a raw span. Cursor unchanged on failure. */
static int read_strlist(tdm_reader_t *r, tdm_response_strlist_t *l)
{
  size_t start = r->pos;
  uint16_t n;
  tdm_str_t s;
  if (tdm_reader_short(r, &n)) return TDM_EPROTO_MALFORMED;
  size_t items = r->pos;
  for (uint16_t i = 0; i < n; i++) {
    if (tdm_reader_string(r, &s)) {
      r->pos = start;
      return TDM_EPROTO_MALFORMED;
    }
  }
  l->count = n;
  l->raw = n ? r->buf + items : NULL;
  l->raw_len = r->pos - items;
  l->items = NULL;
  return 0;
}

int tdm_response_strlist_next(const tdm_response_strlist_t *l, size_t *pos, tdm_str_t *out)
{
  if (l->items) {
    if (*pos >= l->count) return 0;
    *out = l->items[(*pos)++];
    return 1;
  }
  if (*pos >= l->raw_len) return 0;
  tdm_reader_t r;
  tdm_reader_init(&r, l->raw, l->raw_len);
  r.pos = *pos;
  if (tdm_reader_string(&r, out)) return TDM_EPROTO_MALFORMED;
  *pos = r.pos;
  return 1;
}

/* ---- ERROR ---- */

static int read_cl_received_blockfor(tdm_reader_t *r, tdm_response_error_t *e)
{
  if (tdm_reader_short(r, &e->consistency) || tdm_reader_int(r, &e->received) || tdm_reader_int(r, &e->block_for))
    return TDM_EPROTO_MALFORMED;
  return 0;
}

/* <cl><received><blockfor><numfailures | reasonmap>, the part READ_FAILURE and WRITE_FAILURE share. */
static int read_failures(uint8_t v, tdm_reader_t *r, tdm_response_error_t *e, const char **why)
{
  if (read_cl_received_blockfor(r, e) || tdm_reader_int(r, &e->failures)) FAIL("failure error fields truncated");
  if (e->failures < 0) FAIL("negative failure count");
  if (!tdm_response_has_reason_map(v)) return 0;
  /* Each pair is at least 7 bytes ([inetaddr] of 4 + [short]): the count must fit in what is left. */
  if ((size_t)e->failures > tdm_reader_left(r) / 7) FAIL("reason map count exceeds the body");
  size_t start = r->pos;
  for (int32_t i = 0; i < e->failures; i++) {
    const uint8_t *addr;
    uint8_t addr_len;
    uint16_t code;
    if (tdm_reader_inetaddr(r, &addr, &addr_len) || tdm_reader_short(r, &code)) FAIL("reason map truncated");
  }
  e->reason_map = e->failures ? r->buf + start : NULL;
  e->reason_map_len = r->pos - start;
  return 0;
}

int tdm_response_reason_next(const tdm_response_error_t *e, size_t *pos, tdm_response_reason_t *out)
{
  if (e->reasons) {
    if (*pos >= (size_t)(e->failures > 0 ? e->failures : 0)) return 0;
    *out = e->reasons[(*pos)++];
    return 1;
  }
  if (*pos >= e->reason_map_len) return 0;
  tdm_reader_t r;
  tdm_reader_init(&r, e->reason_map, e->reason_map_len);
  r.pos = *pos;
  if (tdm_reader_inetaddr(&r, &out->addr, &out->addr_len) || tdm_reader_short(&r, &out->code))
    return TDM_EPROTO_MALFORMED;
  *pos = r.pos;
  return 1;
}

/* Returns 1 when the rest of the body belongs to an unknown code (and was kept), 0 otherwise. */
static int decode_error(uint8_t v, tdm_reader_t *r, tdm_response_error_t *e, const char **why)
{
  if (tdm_reader_uint(r, &e->code) || tdm_reader_string(r, &e->message)) FAIL("error code or message truncated");
  switch (e->code) {
  case TDM_ERR_UNAVAILABLE:
    if (tdm_reader_short(r, &e->consistency) || tdm_reader_int(r, &e->required) || tdm_reader_int(r, &e->alive))
      FAIL("UNAVAILABLE fields truncated");
    return 0;
  case TDM_ERR_WRITE_TIMEOUT:
    if (read_cl_received_blockfor(r, e) || tdm_reader_string(r, &e->write_type)) FAIL("WRITE_TIMEOUT fields truncated");
    /* v5 appends the contention count to CAS timeouts; tolerate its absence (older v5 servers). */
    if (v >= TDM_PROTO_V5 && tdm_str_eq_cstr(e->write_type, "CAS") && tdm_reader_left(r) >= 2) {
      if (tdm_reader_short(r, &e->contentions)) FAIL("WRITE_TIMEOUT contentions truncated");
      e->has_contentions = true;
    }
    return 0;
  case TDM_ERR_READ_TIMEOUT:
    if (read_cl_received_blockfor(r, e) || tdm_reader_byte(r, &e->data_present)) FAIL("READ_TIMEOUT fields truncated");
    return 0;
  case TDM_ERR_READ_FAILURE:
    if (read_failures(v, r, e, why)) return TDM_EPROTO_MALFORMED;
    if (tdm_reader_byte(r, &e->data_present)) FAIL("READ_FAILURE data_present truncated");
    return 0;
  case TDM_ERR_WRITE_FAILURE:
    if (read_failures(v, r, e, why)) return TDM_EPROTO_MALFORMED;
    if (tdm_reader_string(r, &e->write_type)) FAIL("WRITE_FAILURE write type truncated");
    return 0;
  case TDM_ERR_FUNCTION_FAILURE:
    if (tdm_reader_string(r, &e->keyspace) || tdm_reader_string(r, &e->function) || read_strlist(r, &e->arg_types))
      FAIL("FUNCTION_FAILURE fields truncated");
    return 0;
  case TDM_ERR_ALREADY_EXISTS:
    if (tdm_reader_string(r, &e->keyspace) || tdm_reader_string(r, &e->table)) FAIL("ALREADY_EXISTS fields truncated");
    return 0;
  case TDM_ERR_UNPREPARED:
    if (tdm_reader_short_bytes(r, &e->unprepared_id)) FAIL("UNPREPARED id truncated");
    return 0;
  case TDM_ERR_CAS_WRITE_UNKNOWN:
    if (read_cl_received_blockfor(r, e)) FAIL("CAS_WRITE_UNKNOWN fields truncated");
    return 0;
  case TDM_ERR_SERVER_ERROR: case TDM_ERR_PROTOCOL_ERROR: case TDM_ERR_BAD_CREDENTIALS:
  case TDM_ERR_OVERLOADED: case TDM_ERR_IS_BOOTSTRAPPING: case TDM_ERR_TRUNCATE_ERROR:
  case TDM_ERR_CDC_WRITE_FAILURE: case TDM_ERR_SYNTAX_ERROR: case TDM_ERR_UNAUTHORIZED:
  case TDM_ERR_INVALID: case TDM_ERR_CONFIG_ERROR:
    return 0;
  default:
    return 1;
  }
}

/* ---- SUPPORTED ---- */

static void note_option(tdm_response_supported_t *s, tdm_str_t key, const tdm_response_strlist_t *values)
{
  if (!s->has_protocol_versions && tdm_str_eq_ci(key, TDM_STR("PROTOCOL_VERSIONS"))) {
    s->protocol_versions = *values;
    s->has_protocol_versions = true;
  } else if (!s->has_compression && tdm_str_eq_ci(key, TDM_STR("COMPRESSION"))) {
    s->compression = *values;
    s->has_compression = true;
  } else if (!s->has_cql_version && tdm_str_eq_ci(key, TDM_STR("CQL_VERSION"))) {
    s->cql_version = *values;
    s->has_cql_version = true;
  }
}

static int decode_supported(tdm_reader_t *r, tdm_response_supported_t *s, const char **why)
{
  uint16_t n;
  if (tdm_reader_short(r, &n)) FAIL("SUPPORTED count truncated");
  size_t start = r->pos;
  for (uint16_t i = 0; i < n; i++) {
    tdm_str_t key;
    tdm_response_strlist_t values;
    if (tdm_reader_string(r, &key) || read_strlist(r, &values)) FAIL("SUPPORTED multimap truncated");
    note_option(s, key, &values);
  }
  s->count = n;
  s->raw = n ? r->buf + start : NULL;
  s->raw_len = r->pos - start;
  return 0;
}

int tdm_response_supported_next(const tdm_response_supported_t *s, size_t *pos, tdm_str_t *key,
                                tdm_response_strlist_t *values)
{
  if (s->entries) {
    if (*pos >= s->count) return 0;
    *key = s->entries[*pos].key;
    *values = s->entries[*pos].values;
    (*pos)++;
    return 1;
  }
  if (*pos >= s->raw_len) return 0;
  tdm_reader_t r;
  tdm_reader_init(&r, s->raw, s->raw_len);
  r.pos = *pos;
  if (tdm_reader_string(&r, key) || read_strlist(&r, values)) return TDM_EPROTO_MALFORMED;
  *pos = r.pos;
  return 1;
}

int tdm_response_supported_get(const tdm_response_supported_t *s, tdm_str_t key, tdm_response_strlist_t *values)
{
  size_t pos = 0;
  tdm_str_t k;
  tdm_response_strlist_t v;
  int rc;
  while ((rc = tdm_response_supported_next(s, &pos, &k, &v)) == 1) {
    if (tdm_str_eq_ci(k, key)) {
      *values = v;
      return 0;
    }
  }
  return rc < 0 ? rc : TDM_ENOTFOUND;
}

/* ---- schema changes and events ---- */

static const char *const target_names[] = {
  [TDM_RESPONSE_TARGET_KEYSPACE] = "KEYSPACE", [TDM_RESPONSE_TARGET_TABLE] = "TABLE",
  [TDM_RESPONSE_TARGET_TYPE] = "TYPE",         [TDM_RESPONSE_TARGET_FUNCTION] = "FUNCTION",
  [TDM_RESPONSE_TARGET_AGGREGATE] = "AGGREGATE",
};

const char *tdm_response_target_name(tdm_response_target_t t)
{
  return (unsigned)t < TDM_ARRAY_SIZE(target_names) ? target_names[t] : NULL;
}

static const char *const event_names[] = {
  [TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE] = "TOPOLOGY_CHANGE",
  [TDM_RESPONSE_EVENT_STATUS_CHANGE] = "STATUS_CHANGE",
  [TDM_RESPONSE_EVENT_SCHEMA_CHANGE] = "SCHEMA_CHANGE",
};

const char *tdm_response_event_name(tdm_response_event_kind_t k)
{
  return (unsigned)k < TDM_ARRAY_SIZE(event_names) ? event_names[k] : NULL;
}

static int decode_schema_change(uint8_t v, tdm_reader_t *r, tdm_response_schema_change_t *sc, const char **why)
{
  tdm_str_t target;
  if (tdm_reader_string(r, &sc->change_type)) FAIL("schema change type truncated");
  if (v < TDM_PROTO_V3) {
    if (tdm_reader_string(r, &sc->keyspace) || tdm_reader_string(r, &sc->name)) FAIL("schema change truncated");
    sc->target = sc->name.len ? TDM_RESPONSE_TARGET_TABLE : TDM_RESPONSE_TARGET_KEYSPACE;
    return 0;
  }
  if (tdm_reader_string(r, &target)) FAIL("schema change target truncated");
  sc->target = TDM_RESPONSE_TARGET_NONE;
  for (size_t i = 1; i < TDM_ARRAY_SIZE(target_names); i++)
    if (tdm_str_eq_cstr(target, target_names[i])) sc->target = (tdm_response_target_t)i;
  if (sc->target == TDM_RESPONSE_TARGET_NONE) FAIL("unknown schema change target");
  if (tdm_reader_string(r, &sc->keyspace)) FAIL("schema change keyspace truncated");
  if (sc->target == TDM_RESPONSE_TARGET_KEYSPACE) return 0;
  if (tdm_reader_string(r, &sc->name)) FAIL("schema change name truncated");
  if (sc->target == TDM_RESPONSE_TARGET_TABLE || sc->target == TDM_RESPONSE_TARGET_TYPE) return 0;
  if (read_strlist(r, &sc->arg_types)) FAIL("schema change argument types truncated");
  return 0;
}

static int decode_event(uint8_t v, tdm_reader_t *r, tdm_response_event_t *ev, const char **why)
{
  tdm_str_t type;
  if (tdm_reader_string(r, &type)) FAIL("event type truncated");
  ev->kind = TDM_RESPONSE_EVENT_NONE;
  for (size_t i = 1; i < TDM_ARRAY_SIZE(event_names); i++)
    if (tdm_str_eq_cstr(type, event_names[i])) ev->kind = (tdm_response_event_kind_t)i;
  switch (ev->kind) {
  case TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE:
  case TDM_RESPONSE_EVENT_STATUS_CHANGE:
    if (tdm_reader_string(r, &ev->change) || tdm_reader_inet(r, &ev->addr, &ev->addr_len, &ev->port))
      FAIL("event change or address truncated");
    return 0;
  case TDM_RESPONSE_EVENT_SCHEMA_CHANGE:
    return decode_schema_change(v, r, &ev->schema, why);
  default:
    FAIL("unknown event type");
  }
}

/* ---- RESULT ---- */

static int decode_rows(uint8_t v, tdm_reader_t *r, tdm_response_rows_t *rows, const char **why)
{
  if (tdm_response_metadata_read(r, v, TDM_RESPONSE_META_ROWS, &rows->metadata, why)) return TDM_EPROTO_MALFORMED;
  rows->rows_count_offset = r->pos;
  if (tdm_reader_int(r, &rows->rows_count)) FAIL("rows count truncated");
  if (rows->rows_count < 0) FAIL("negative rows count");
  int32_t cols = rows->metadata.columns_count;
  if (cols == 0 && rows->rows_count > 0) FAIL("rows without columns");
  /* Every cell takes at least 4 bytes: refuse counts the body cannot hold before walking them. */
  uint64_t cells = (uint64_t)rows->rows_count * (uint64_t)cols;
  if (cells > tdm_reader_left(r) / 4) FAIL("rows count exceeds the body");
  size_t start = r->pos;
  for (uint64_t i = 0; i < cells; i++) {
    tdm_bytes_t cell;
    if (tdm_reader_bytes(r, &cell)) FAIL("row cell truncated");
  }
  rows->content = r->buf + start;
  rows->content_len = r->pos - start;
  return 0;
}

static int decode_prepared(uint8_t v, tdm_reader_t *r, tdm_response_prepared_t *p, const char **why)
{
  p->id_offset = r->pos;
  if (tdm_reader_short_bytes(r, &p->id)) FAIL("prepared id truncated");
  p->result_metadata_id.len = -1;
  if (tdm_response_has_metadata_id(v)) {
    p->result_metadata_id_offset = r->pos;
    if (tdm_reader_short_bytes(r, &p->result_metadata_id)) FAIL("result metadata id truncated");
  }
  if (tdm_response_metadata_read(r, v, TDM_RESPONSE_META_VARIABLES, &p->variables, why) ||
      tdm_response_metadata_read(r, v, TDM_RESPONSE_META_ROWS, &p->result, why))
    return TDM_EPROTO_MALFORMED;
  return 0;
}

static int decode_result(uint8_t v, tdm_reader_t *r, tdm_response_result_t *res, const char **why)
{
  res->kind_offset = r->pos;
  if (tdm_reader_int(r, &res->kind)) FAIL("RESULT kind truncated");
  switch (res->kind) {
  case TDM_RESULT_VOID:
    return 0;
  case TDM_RESULT_ROWS:
    return decode_rows(v, r, &res->rows, why);
  case TDM_RESULT_SET_KEYSPACE:
    if (tdm_reader_string(r, &res->keyspace)) FAIL("keyspace truncated");
    return 0;
  case TDM_RESULT_PREPARED:
    return decode_prepared(v, r, &res->prepared, why);
  case TDM_RESULT_SCHEMA_CHANGE:
    return decode_schema_change(v, r, &res->schema_change, why);
  default:
    FAIL("unknown RESULT kind");
  }
}

/* ---- entry point ---- */

int tdm_response_decode(uint8_t version, uint8_t opcode, const void *body, size_t len, tdm_response_t *out,
                        const char **why)
{
  tdm_reader_t r;
  int rc = 0;
  memset(out, 0, sizeof(*out));
  out->version = version;
  out->opcode = opcode;
  if (!tdm_response_version_ok(version)) {
    if (why) *why = "unsupported protocol version";
    return TDM_EPROTO_VERSION;
  }
  tdm_reader_init(&r, body, len);
  switch (opcode) {
  case TDM_OP_ERROR:
    rc = decode_error(version, &r, &out->error, why);
    if (rc == 1) {
      /* Unknown code: keep whatever follows the message for re-encoding. */
      out->error.extra = tdm_reader_cur(&r);
      out->error.extra_len = tdm_reader_left(&r);
      return 0;
    }
    break;
  case TDM_OP_READY:
    break;
  case TDM_OP_AUTHENTICATE:
    if (tdm_reader_string(&r, &out->authenticator)) FAIL("authenticator truncated");
    break;
  case TDM_OP_SUPPORTED:
    rc = decode_supported(&r, &out->supported, why);
    break;
  case TDM_OP_RESULT:
    rc = decode_result(version, &r, &out->result, why);
    break;
  case TDM_OP_EVENT:
    rc = decode_event(version, &r, &out->event, why);
    break;
  case TDM_OP_AUTH_CHALLENGE:
  case TDM_OP_AUTH_SUCCESS:
    if (tdm_reader_bytes(&r, &out->token)) FAIL("token truncated");
    break;
  default:
    if (why) *why = "not a response opcode";
    return TDM_EPROTO_OPCODE;
  }
  if (rc) return rc;
  if (tdm_reader_left(&r) != 0) FAIL("trailing bytes after the message");
  return 0;
}
