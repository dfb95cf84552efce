/* The small request bodies (STARTUP, AUTH_RESPONSE, OPTIONS, REGISTER), the any-opcode decoder, and
 * the routing peeks that read only a body's first fields. QUERY/PREPARE/EXECUTE live in
 * request_query.c, BATCH in request_batch.c, parameters in request_params.c, rewrites in
 * request_rewrite.c. */
#include <stddef.h>
#include "request_internal.h"

/* ---- STARTUP ---- */

/* Options tandem names; the first matching key (case-insensitive) fills the field. */
static const struct {
  const char *key; /* option name as Cassandra spells it */
  uint32_t bit;    /* TDM_REQUEST_STARTUP_* */
  size_t field;    /* offsetof the tdm_str_t in tdm_startup_t */
} startup_keys[] = {
  { "CQL_VERSION", TDM_REQUEST_STARTUP_CQL_VERSION, offsetof(tdm_startup_t, cql_version) },
  { "COMPRESSION", TDM_REQUEST_STARTUP_COMPRESSION, offsetof(tdm_startup_t, compression) },
  { "DRIVER_NAME", TDM_REQUEST_STARTUP_DRIVER_NAME, offsetof(tdm_startup_t, driver_name) },
  { "DRIVER_VERSION", TDM_REQUEST_STARTUP_DRIVER_VERSION, offsetof(tdm_startup_t, driver_version) },
  { "APPLICATION_NAME", TDM_REQUEST_STARTUP_APPLICATION_NAME, offsetof(tdm_startup_t, application_name) },
  { "APPLICATION_VERSION", TDM_REQUEST_STARTUP_APPLICATION_VERSION, offsetof(tdm_startup_t, application_version) },
  { "CLIENT_ID", TDM_REQUEST_STARTUP_CLIENT_ID, offsetof(tdm_startup_t, client_id) },
  { "THROW_ON_OVERLOAD", TDM_REQUEST_STARTUP_THROW_ON_OVERLOAD, offsetof(tdm_startup_t, throw_on_overload) },
  { "NO_COMPACT", TDM_REQUEST_STARTUP_NO_COMPACT, offsetof(tdm_startup_t, no_compact) },
};

int tdm_request_decode_startup(const void *body, size_t len, tdm_startup_t *out, const char **why)
{
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  memset(out, 0, sizeof(*out));
  if (tdm__request_u16(&r, &out->count, why, TDM__REQUEST_TRUNC("STARTUP option count"))) return TDM_EPROTO_MALFORMED;
  if ((size_t)out->count * 4 > tdm_reader_left(&r))
    return tdm__request_fail(why, "STARTUP option count exceeds the body");
  out->map = tdm_reader_cur(&r);
  for (uint16_t i = 0; i < out->count; i++) {
    tdm_str_t k, v;
    if (TDM__REQUEST_STRING(&r, &k, why, "STARTUP option name") ||
        TDM__REQUEST_STRING(&r, &v, why, "STARTUP option value"))
      return TDM_EPROTO_MALFORMED;
    for (size_t j = 0; j < TDM_ARRAY_SIZE(startup_keys); j++) {
      if (!tdm_str_eq_ci(k, tdm_str_from(startup_keys[j].key))) continue;
      if (out->present & startup_keys[j].bit) return tdm__request_fail(why, "duplicate STARTUP option");
      out->present |= startup_keys[j].bit;
      *(tdm_str_t *)((char *)out + startup_keys[j].field) = v;
      break;
    }
  }
  out->map_len = (size_t)(tdm_reader_cur(&r) - out->map);
  return tdm__request_check_end(&r, why);
}

void tdm_startup_iter_init(tdm_startup_iter_t *it, const tdm_startup_t *s)
{
  tdm_reader_init(&it->r, s->map, s->map_len);
  it->left = s->count;
}

bool tdm_startup_next(tdm_startup_iter_t *it, tdm_str_t *key, tdm_str_t *value)
{
  if (!it->left) return false;
  if (tdm_reader_string(&it->r, key) || tdm_reader_string(&it->r, value)) {
    it->left = 0;
    return false;
  }
  it->left--;
  return true;
}

bool tdm_startup_get(const tdm_startup_t *s, tdm_str_t key, tdm_str_t *value)
{
  tdm_startup_iter_t it;
  tdm_str_t k, v;
  tdm_startup_iter_init(&it, s);
  while (tdm_startup_next(&it, &k, &v)) {
    if (tdm_str_eq_ci(k, key)) {
      *value = v;
      return true;
    }
  }
  return false;
}

int tdm_request_encode_startup(tdm_writer_t *w, const tdm_str_t *keys, const tdm_str_t *values, size_t n)
{
  tdm_writer_string_map(w, keys, values, n);
  return tdm_writer_error(w);
}

/* ---- AUTH_RESPONSE, OPTIONS ---- */

int tdm_request_decode_auth_response(const void *body, size_t len, tdm_bytes_t *token, const char **why)
{
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  if (tdm_reader_left(&r) < 4) return tdm__request_fail(why, TDM__REQUEST_TRUNC("token"));
  if (tdm_reader_bytes(&r, token)) return tdm__request_fail(why, TDM__REQUEST_LONG("token"));
  return tdm__request_check_end(&r, why);
}

int tdm_request_encode_auth_response(tdm_writer_t *w, const void *token, int32_t len)
{
  tdm_writer_bytes(w, token, len);
  return tdm_writer_error(w);
}

int tdm_request_decode_options(const void *body, size_t len, const char **why)
{
  (void)body;
  return len ? tdm__request_fail(why, "OPTIONS body must be empty") : 0;
}

int tdm_request_encode_options(tdm_writer_t *w) { return tdm_writer_error(w); }

/* ---- REGISTER ---- */

static uint32_t event_bit(tdm_str_t name)
{
  if (tdm_str_eq_cstr(name, "TOPOLOGY_CHANGE")) return TDM_REQUEST_EVENT_TOPOLOGY_CHANGE;
  if (tdm_str_eq_cstr(name, "STATUS_CHANGE")) return TDM_REQUEST_EVENT_STATUS_CHANGE;
  if (tdm_str_eq_cstr(name, "SCHEMA_CHANGE")) return TDM_REQUEST_EVENT_SCHEMA_CHANGE;
  return 0;
}

int tdm_request_decode_register(const void *body, size_t len, tdm_register_t *out, const char **why)
{
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  memset(out, 0, sizeof(*out));
  if (tdm__request_u16(&r, &out->count, why, TDM__REQUEST_TRUNC("event type count"))) return TDM_EPROTO_MALFORMED;
  if ((size_t)out->count * 2 > tdm_reader_left(&r)) return tdm__request_fail(why, "event type count exceeds the body");
  out->list = tdm_reader_cur(&r);
  for (uint16_t i = 0; i < out->count; i++) {
    tdm_str_t ev;
    if (TDM__REQUEST_STRING(&r, &ev, why, "event type")) return TDM_EPROTO_MALFORMED;
    uint32_t bit = event_bit(ev);
    if (!bit) return tdm__request_fail(why, "unknown event type");
    out->events |= bit;
  }
  out->list_len = (size_t)(tdm_reader_cur(&r) - out->list);
  return tdm__request_check_end(&r, why);
}

bool tdm_register_next(const tdm_register_t *reg, size_t *pos, tdm_str_t *event)
{
  tdm_reader_t r;
  tdm_reader_init(&r, reg->list, reg->list_len);
  if (*pos >= reg->list_len) return false;
  r.pos = *pos;
  if (tdm_reader_string(&r, event)) return false;
  *pos = r.pos;
  return true;
}

int tdm_request_encode_register(tdm_writer_t *w, const tdm_str_t *events, size_t n)
{
  tdm_writer_string_list(w, events, n);
  return tdm_writer_error(w);
}

/* ---- any request ---- */

int tdm_request_decode(uint8_t version, uint8_t opcode, const void *body, size_t len, tdm_request_t *out,
                       const char **why)
{
  int err = tdm__request_check_version(version, why);
  if (err) return err;
  memset(out, 0, sizeof(*out));
  out->version = version;
  out->opcode = opcode;
  switch (opcode) {
  case TDM_OP_STARTUP: return tdm_request_decode_startup(body, len, &out->u.startup, why);
  case TDM_OP_AUTH_RESPONSE: return tdm_request_decode_auth_response(body, len, &out->u.auth_token, why);
  case TDM_OP_OPTIONS: return tdm_request_decode_options(body, len, why);
  case TDM_OP_QUERY: return tdm_request_decode_query(version, body, len, &out->u.query, why);
  case TDM_OP_PREPARE: return tdm_request_decode_prepare(version, body, len, &out->u.prepare, why);
  case TDM_OP_EXECUTE: return tdm_request_decode_execute(version, body, len, &out->u.execute, why);
  case TDM_OP_BATCH: return tdm_request_decode_batch(version, body, len, &out->u.batch, why);
  case TDM_OP_REGISTER: return tdm_request_decode_register(body, len, &out->u.reg, why);
  default:
    if (why) *why = "not a request opcode";
    return TDM_EPROTO_OPCODE;
  }
}

/* ---- peeks ---- */

int tdm_request_peek_query(uint8_t version, const void *body, size_t len, tdm_str_t *query)
{
  (void)version; /* the text leads the body in every version */
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  return tdm_reader_long_string(&r, query);
}

/* Reads the EXECUTE ids and leaves r at the parameters. */
static int read_execute_ids(uint8_t version, tdm_reader_t *r, tdm_bytes_t *id, tdm_bytes_t *md)
{
  if (tdm_reader_short_bytes(r, id)) return TDM_EPROTO_MALFORMED;
  *md = (tdm_bytes_t){ NULL, 0 };
  if (tdm_proto_has_metadata_id(version) && tdm_reader_short_bytes(r, md)) return TDM_EPROTO_MALFORMED;
  return 0;
}

int tdm_request_peek_execute_id(uint8_t version, const void *body, size_t len, tdm_bytes_t *id,
                                tdm_bytes_t *metadata_id)
{
  tdm_reader_t r;
  tdm_bytes_t md;
  tdm_reader_init(&r, body, len);
  if (read_execute_ids(version, &r, id, &md)) return TDM_EPROTO_MALFORMED;
  if (metadata_id) *metadata_id = md;
  return 0;
}

/* Skips BATCH children: [byte] type, [short] n, then n children. */
static int skip_batch_children(tdm_reader_t *r)
{
  uint8_t type;
  uint16_t n;
  if (tdm_reader_byte(r, &type) || tdm_reader_short(r, &n)) return TDM_EPROTO_MALFORMED;
  for (uint16_t i = 0; i < n; i++) {
    uint8_t kind;
    uint16_t nv;
    tdm_str_t q;
    tdm_bytes_t id;
    if (tdm_reader_byte(r, &kind)) return TDM_EPROTO_MALFORMED;
    if (kind == TDM_REQUEST_BATCH_KIND_QUERY ? tdm_reader_long_string(r, &q)
        : kind == TDM_REQUEST_BATCH_KIND_PREPARED ? tdm_reader_short_bytes(r, &id)
        : TDM_EPROTO_MALFORMED)
      return TDM_EPROTO_MALFORMED;
    if (tdm_reader_short(r, &nv) || tdm__request_skip_values(r, nv, false, NULL)) return TDM_EPROTO_MALFORMED;
  }
  return 0;
}

int tdm_request_peek_consistency(uint8_t version, uint8_t opcode, const void *body, size_t len,
                                 uint16_t *consistency)
{
  tdm_reader_t r;
  tdm_str_t q;
  tdm_bytes_t id, md;
  tdm_reader_init(&r, body, len);
  switch (opcode) {
  case TDM_OP_QUERY:
    if (tdm_reader_long_string(&r, &q)) return TDM_EPROTO_MALFORMED;
    break;
  case TDM_OP_EXECUTE:
    if (read_execute_ids(version, &r, &id, &md)) return TDM_EPROTO_MALFORMED;
    break;
  case TDM_OP_BATCH:
    if (skip_batch_children(&r)) return TDM_EPROTO_MALFORMED;
    break;
  default:
    return TDM_EINVAL;
  }
  return tdm_reader_short(&r, consistency);
}
