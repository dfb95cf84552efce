/* libFuzzer target for the virtual-table SELECT parser and row builder (MI-06): arbitrary text must
 * parse without a crash or over-read; whatever parses must build a RESULT Rows (or an INVALID) and a
 * RESULT Prepared that tandem's own decoder accepts, in v3, v4 and v5, with fuzzed bound values. The
 * first input byte picks the version and how many bytes of the tail are bound values. */
#include <tandem/frontend/vtables.h>
#include <tandem/proto/response.h>

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "fuzz_vtables: check failed at line %d: %s\n", __LINE__, #cond); \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t T_TEXT[] = { 0, 0x0D }, T_INET[] = { 0, 0x10 }, T_SET[] = { 0, 0x22, 0, 0x0D };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static tdm_conf_t *conf;
  if (!conf && tdm_conf_defaults(&conf) < 0) abort();
  if (size < 1) return 0;
  static const uint8_t versions[3] = { 3, 4, 5 };
  uint8_t version = versions[data[0] % 3];
  size_t nvals = (size_t)(data[0] >> 2) % 4;
  data++;
  size--;
  /* up to 3 values of 4 bytes each from the tail */
  tdm_bytes_t values[TDM_VSELECT_MAX_MARKERS];
  size_t take = TDM_MIN(nvals * 4, size);
  for (size_t i = 0; i < take / 4; i++) values[i] = (tdm_bytes_t){ data + size - take + 4 * i, 4 };
  size -= take;

  tdm_vselect_t sel;
  int rc = tdm_vselect_parse((tdm_str_t){ (const char *)data, size }, TDM_STR("system"), &sel);
  CHECK(rc == 0 || rc == TDM_EINVAL || rc == TDM_ENOTFOUND);
  if (rc == TDM_EINVAL) CHECK(sel.table != TDM_VTABLE_NONE);
  if (rc != 0) return 0;
  CHECK(sel.n_items <= TDM_VSELECT_MAX_ITEMS && sel.n_markers <= TDM_VSELECT_MAX_MARKERS);

  tdm_node_t nodes[2];
  memset(nodes, 0, sizeof(nodes));
  snprintf(nodes[0].dc, sizeof(nodes[0].dc), "dc1");
  snprintf(nodes[1].dc, sizeof(nodes[1].dc), "dc1");
  nodes[0].local_dc = nodes[1].local_dc = true;
  static const uint8_t ip[4] = { 10, 0, 0, 1 };
  tdm_column_t local[3] = { { "key", (uint8_t *)T_TEXT, 2, (uint8_t *)"local", 5 },
                            { "rpc_address", (uint8_t *)T_INET, 2, (uint8_t *)ip, 4 },
                            { "tokens", (uint8_t *)T_SET, 4, NULL, -1 } };
  tdm_column_t peer[2] = { { "peer", (uint8_t *)T_INET, 2, (uint8_t *)ip, 4 },
                           { "data_center", (uint8_t *)T_TEXT, 2, (uint8_t *)"dc1", 3 } };
  tdm_column_t *rows[2] = { NULL, peer };
  size_t nrow[2] = { 0, 2 };
  tdm_topology_t topo;
  memset(&topo, 0, sizeof(topo));
  topo.nodes = nodes;
  topo.n_nodes = 2;
  topo.local_row = local;
  topo.n_local_row = 3;
  topo.peer_rows = rows;
  topo.n_peer_row = nrow;
  topo.has_peers_v2 = true;
  tdm_vtables_ctx_t ctx = { .conf = conf, .topology = &topo, .version = version };
  if (tdm_sockaddr_parse_ip("127.0.0.1", 9042, &ctx.local) < 0) abort();
  tdm_vtables_opts_t opts = { .values = values, .n_values = take / 4 };

  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_vtables_error_t err = { 0 };
  rc = tdm_vtables_rows(&ctx, &sel, &opts, &w, &err);
  CHECK(rc == 0 || (rc == TDM_EINVAL && err.code == TDM_ERR_INVALID && err.message[0]));
  tdm_response_t r;
  if (rc == 0) {
    CHECK(tdm_response_decode(version, TDM_OP_RESULT, w.buf, w.len, &r, NULL) == 0);
    CHECK(r.result.kind == TDM_RESULT_ROWS);
  }
  tdm_writer_free(&w);

  uint8_t id[16];
  tdm_vtables_statement_id(TDM_STR("ks"), (tdm_str_t){ (const char *)data, size }, id);
  tdm_writer_init(&w);
  rc = tdm_vtables_prepared(&ctx, &sel, id, &w, &err);
  CHECK(rc == 0 || rc == TDM_EINVAL);
  if (rc == 0) {
    CHECK(tdm_response_decode(version, TDM_OP_RESULT, w.buf, w.len, &r, NULL) == 0);
    CHECK(r.result.kind == TDM_RESULT_PREPARED && r.result.prepared.variables.columns_count == (int32_t)sel.n_markers);
  }
  tdm_writer_free(&w);
  return 0;
}
