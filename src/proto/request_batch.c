/* BATCH bodies: <type><n><child>*n<params>. Decoding validates every child once (the parameters can
 * only be found by walking past them) and records where they start and end; tdm_batch_next_child then
 * re-walks them without copying or allocating. Encoding writes children from tdm_batch_child_t. */
#include "request_internal.h"

/* Smallest child on the wire: kind (1) + empty [short bytes] id (2) + [short] value count (2). */
#define BATCH_CHILD_MIN 5

/* Reads one child at r's cursor; offsets are relative to r->buf. */
static int read_child(tdm_reader_t *r, uint16_t index, tdm_batch_child_t *c, const char **why)
{
  memset(c, 0, sizeof(*c));
  c->index = index;
  c->offset = r->pos;
  if (tdm__request_u8(r, &c->kind, why, TDM__REQUEST_TRUNC("BATCH child kind"))) return TDM_EPROTO_MALFORMED;
  if (c->kind == TDM_REQUEST_BATCH_KIND_QUERY) {
    if (TDM__REQUEST_LONG_STRING(r, &c->query, why, "BATCH query string")) return TDM_EPROTO_MALFORMED;
  } else if (c->kind == TDM_REQUEST_BATCH_KIND_PREPARED) {
    if (TDM__REQUEST_SHORT_BYTES(r, &c->id, why, "BATCH prepared id")) return TDM_EPROTO_MALFORMED;
    c->id_offset = r->pos - (size_t)c->id.len;
  } else {
    return tdm__request_fail(why, "invalid BATCH child kind");
  }
  if (tdm__request_u16(r, &c->values_count, why, TDM__REQUEST_TRUNC("BATCH value count"))) return TDM_EPROTO_MALFORMED;
  c->values_offset = r->pos;
  if (tdm__request_skip_values(r, c->values_count, false, why)) return TDM_EPROTO_MALFORMED;
  c->values_len = r->pos - c->values_offset;
  c->values = c->values_len ? r->buf + c->values_offset : NULL;
  c->end_offset = r->pos;
  return 0;
}

int tdm_request_decode_batch(uint8_t version, const void *body, size_t len, tdm_batch_t *out, const char **why)
{
  int err = tdm__request_check_version(version, why);
  if (err) return err;
  tdm_reader_t r;
  tdm_reader_init(&r, body, len);
  memset(out, 0, sizeof(*out));
  out->body = body;
  out->len = len;
  if (tdm__request_u8(&r, &out->type, why, TDM__REQUEST_TRUNC("BATCH type"))) return TDM_EPROTO_MALFORMED;
  if (out->type > TDM_BATCH_COUNTER) return tdm__request_fail(why, "invalid BATCH type");
  if (tdm__request_u16(&r, &out->count, why, TDM__REQUEST_TRUNC("BATCH child count"))) return TDM_EPROTO_MALFORMED;
  /* Refuse a count the body cannot hold before walking anything. */
  if ((size_t)out->count * BATCH_CHILD_MIN > tdm_reader_left(&r))
    return tdm__request_fail(why, "BATCH child count exceeds the body");
  out->children_offset = r.pos;
  for (uint16_t i = 0; i < out->count; i++) {
    tdm_batch_child_t c;
    if (read_child(&r, i, &c, why)) return TDM_EPROTO_MALFORMED;
    if (c.kind == TDM_REQUEST_BATCH_KIND_PREPARED) out->prepared_count++;
  }
  out->children_end = r.pos;
  if ((err = tdm_request_decode_params(version, TDM_OP_BATCH, &r, &out->params, why))) return err;
  return tdm__request_check_end(&r, why);
}

void tdm_batch_iter_init(tdm_batch_iter_t *it, const tdm_batch_t *batch)
{
  it->batch = batch;
  it->pos = batch->children_offset;
  it->next = 0;
}

int tdm_batch_next_child(tdm_batch_iter_t *it, tdm_batch_child_t *child)
{
  const tdm_batch_t *b = it->batch;
  if (it->next >= b->count) return 0;
  /* The reader spans the whole body so offsets stay body-relative; children_end bounds the walk. */
  if (b->children_end > b->len || it->pos > b->children_end) return TDM_EPROTO_MALFORMED;
  tdm_reader_t r;
  tdm_reader_init(&r, b->body, b->children_end);
  r.pos = it->pos;
  if (read_child(&r, it->next, child, NULL)) return TDM_EPROTO_MALFORMED;
  it->pos = r.pos;
  it->next++;
  return 1;
}

int tdm_request_encode_batch(tdm_writer_t *w, uint8_t version, uint8_t type, const tdm_batch_child_t *children,
                             size_t n, const tdm_query_params_t *p)
{
  if (!tdm_request_version_ok(version) || type > TDM_BATCH_COUNTER || n > UINT16_MAX) return tdm__request_invalid(w);
  for (size_t i = 0; i < n; i++) {
    const tdm_batch_child_t *c = &children[i];
    if (c->kind > TDM_REQUEST_BATCH_KIND_PREPARED) return tdm__request_invalid(w);
    if (c->kind == TDM_REQUEST_BATCH_KIND_PREPARED && c->id.len < 0) return tdm__request_invalid(w);
    if (c->values_len && !c->values) return tdm__request_invalid(w);
  }
  tdm_writer_byte(w, type);
  tdm_writer_short(w, (uint16_t)n);
  for (size_t i = 0; i < n; i++) {
    const tdm_batch_child_t *c = &children[i];
    tdm_writer_byte(w, c->kind);
    if (c->kind == TDM_REQUEST_BATCH_KIND_QUERY)
      tdm_writer_long_string(w, c->query);
    else
      tdm_writer_short_bytes(w, c->id.ptr, (size_t)c->id.len);
    tdm_writer_short(w, c->values_count);
    tdm_writer_raw(w, c->values, c->values_len);
  }
  return tdm_request_encode_params(w, version, TDM_OP_BATCH, p);
}
