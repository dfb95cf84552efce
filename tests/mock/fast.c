/* The --fast reply cache. Entries are whole frames (header with stream 0 + body, compressed for v3/v4
 * connections that negotiated compression; v5 gets plain envelopes, segments are compressed later). */
#include <tandem/proto/response.h>

#include "fast.h"

#define VERSIONS 8 /* v3, v4, v5, DSE_V1, DSE_V2 mapped by slot() */
#define COMPRESSIONS 3

typedef struct frame_s {
  uint8_t *data; /* header + body (heap), NULL until built */
  size_t len;    /* bytes */
} frame_t;

struct tdm_mock_fast_s {
  frame_t frames[VERSIONS][COMPRESSIONS][TDM_MOCK_FAST_KINDS][TDM_MOCK_FAST_MAX_COLS + 1]; /* [v][c][kind][ncols] */
};

static int slot(uint8_t v)
{
  switch (v) {
  case TDM_PROTO_V3: return 0;
  case TDM_PROTO_V4: return 1;
  case TDM_PROTO_V5: return 2;
  case TDM_PROTO_DSE_V1: return 3;
  case TDM_PROTO_DSE_V2: return 4;
  default: return -1;
  }
}

static int build(tdm_mock_conn_t *c, tdm_mock_fast_kind_t kind, size_t ncols, bool compress, frame_t *f)
{
  tdm_writer_t w;
  tdm_writer_init(&w);
  if (kind == TDM_MOCK_FAST_VOID) {
    tdm_response_encode_void(&w);
  } else {
    tdm_response_rows_builder_t b;
    tdm_response_rows_options_t o = { .flags = TDM_RFLAG_GLOBAL_TABLES_SPEC, .keyspace = TDM_STR("mock"),
                                      .table = TDM_STR("mock") };
    if (kind == TDM_MOCK_FAST_NOMETA) {
      o.flags = TDM_RFLAG_NO_METADATA;
      o.columns_count = (int32_t)ncols;
    }
    tdm_response_rows_begin(&b, &w, c->version, &o);
    if (kind == TDM_MOCK_FAST_ROWS) tdm_response_rows_column_named(&b, TDM_STR("key"), TDM_STR("text"));
    int rc = tdm_response_rows_finish(&b);
    if (rc) {
      tdm_writer_free(&w);
      return rc;
    }
  }
  int rc = tdm_writer_error(&w);
  uint8_t *body = w.buf, *packed = NULL;
  size_t len = w.len;
  tdm_frame_header_t h = { .version = c->version, .response = true, .opcode = TDM_OP_RESULT };
  if (!rc && compress) {
    rc = tdm_body_compress(c->compression, body, len, &packed, &len);
    body = packed;
    h.flags = TDM_FLAG_COMPRESSED;
  }
  if (!rc) {
    h.length = (uint32_t)len;
    f->data = malloc(TDM_FRAME_HEADER_MAX + len);
    if (!f->data) rc = TDM_ENOMEM;
  }
  if (!rc) {
    size_t hl = tdm_frame_header_encode(&h, f->data);
    memcpy(f->data + hl, body, len);
    f->len = hl + len;
  }
  free(packed);
  tdm_writer_free(&w);
  return rc;
}

bool tdm_mock_fast_reply(tdm_mock_conn_t *c, int16_t stream, tdm_mock_fast_kind_t kind, size_t ncols)
{
  tdm_mock_t *mock = c->mock;
  int v = slot(c->version);
  if (v < 0 || ncols > TDM_MOCK_FAST_MAX_COLS || kind >= TDM_MOCK_FAST_KINDS) return false;
  if (kind != TDM_MOCK_FAST_NOMETA) ncols = 0;
  if (!mock->fast && !(mock->fast = calloc(1, sizeof(*mock->fast)))) return false;
  bool compress = !c->framed && c->compress_out && c->compression != TDM_COMPRESSION_NONE;
  size_t comp = compress ? (size_t)c->compression : 0;
  frame_t *f = &mock->fast->frames[v][comp][kind][ncols];
  if (!f->data && build(c, kind, ncols, compress, f)) return false;
  if (tdm_mock_conn_send_encoded(c, f->data, f->len, stream)) tdm_mock_conn_close(c, false);
  return true;
}

void tdm_mock_fast_free(tdm_mock_t *mock)
{
  if (!mock->fast) return;
  frame_t *all = &mock->fast->frames[0][0][0][0];
  size_t n = sizeof(mock->fast->frames) / sizeof(frame_t);
  for (size_t i = 0; i < n; i++) free(all[i].data);
  free(mock->fast);
  mock->fast = NULL;
}
