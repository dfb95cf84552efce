/* The mock cluster's system tables (tests/mock): on a 3-node mock, system.local describes the node
 * connected to and system.peers / peers_v2 list the two others, with Cassandra 5.0's column types;
 * WHERE filters, projections and unknown columns; schema_version agreement and its change after DDL
 * (with a SCHEMA_CHANGE event to registered connections); --no-peers-v2 answers like a 3.x node. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "mockctl.h"

#define TIMEOUT 5000

static const char *const three_nodes[] = { "--node", "127.0.0.1:0", "--node", "127.0.0.2:0", "--node", "127.0.0.3:0",
                                           "--cluster-name", "origin", "--dc", "dc7", NULL };

static void spawn(tdm_mockctl_t *m, const char *const *args) { assert_int_equal(tdm_mockctl_spawn(m, args, 20000), 0); }
static void stop(tdm_mockctl_t *m) { assert_int_equal(tdm_mockctl_stop(m, 10000), 0); }

static void query(tdm_mockctl_cql_t *c, const char *cql, tdm_mockctl_frame_t *f)
{
  static int16_t stream = 1;
  assert_int_equal(tdm_mockctl_cql_query(c, stream, cql, f, TIMEOUT), 0);
  stream = (int16_t)(stream % 1000 + 1);
}

static void assert_text(const tdm_mockctl_frame_t *f, int32_t row, const char *col, const char *want)
{
  tdm_bytes_t cell;
  uint16_t type;
  assert_int_equal(tdm_mockctl_rows_cell(f, row, col, &cell, &type), 0);
  assert_int_equal(type, TDM_CQLTYPE_VARCHAR);
  assert_int_equal(cell.len, (int32_t)strlen(want));
  assert_memory_equal(cell.ptr, want, strlen(want));
}

static void assert_inet(const tdm_mockctl_frame_t *f, int32_t row, const char *col, const char *ip)
{
  tdm_bytes_t cell;
  uint16_t type;
  uint8_t a[4];
  assert_int_equal(inet_pton(AF_INET, ip, a), 1);
  assert_int_equal(tdm_mockctl_rows_cell(f, row, col, &cell, &type), 0);
  assert_int_equal(type, TDM_CQLTYPE_INET);
  assert_int_equal(cell.len, 4);
  assert_memory_equal(cell.ptr, a, 4);
}

static int32_t cell_int(const tdm_mockctl_frame_t *f, int32_t row, const char *col)
{
  tdm_bytes_t cell;
  uint16_t type;
  assert_int_equal(tdm_mockctl_rows_cell(f, row, col, &cell, &type), 0);
  assert_int_equal(type, TDM_CQLTYPE_INT);
  assert_int_equal(cell.len, 4);
  return (int32_t)((uint32_t)cell.ptr[0] << 24 | (uint32_t)cell.ptr[1] << 16 | (uint32_t)cell.ptr[2] << 8 |
                   cell.ptr[3]);
}

static void cell_uuid(const tdm_mockctl_frame_t *f, int32_t row, const char *col, uint8_t out[16])
{
  tdm_bytes_t cell;
  uint16_t type;
  assert_int_equal(tdm_mockctl_rows_cell(f, row, col, &cell, &type), 0);
  assert_int_equal(type, TDM_CQLTYPE_UUID);
  assert_int_equal(cell.len, 16);
  memcpy(out, cell.ptr, 16);
}

static int32_t rows_of(const tdm_mockctl_frame_t *f)
{
  int32_t n = -1;
  assert_int_equal(tdm_mockctl_rows_count(f, &n), 0);
  return n;
}

static void test_local_and_peers(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  spawn(&m, three_nodes);
  assert_int_equal(m.n_nodes, 3);
  uint8_t schema[3][16], host_ids[3][16];
  for (size_t n = 0; n < 3; n++) {
    tdm_mockctl_cql_t c;
    tdm_mockctl_frame_t f;
    char host[64], ip[3][64];
    uint16_t port, ports[3];
    for (size_t k = 0; k < 3; k++) assert_int_equal(tdm_mockctl_node(&m, k, ip[k], sizeof(ip[k]), &ports[k]), 0);
    assert_int_equal(tdm_mockctl_node(&m, n, host, sizeof(host), &port), 0);
    assert_int_equal(tdm_mockctl_cql_open(&m, n, TDM_PROTO_V4, NULL, &c), 0);

    query(&c, "SELECT * FROM system.local WHERE key='local'", &f);
    assert_int_equal(rows_of(&f), 1);
    assert_text(&f, 0, "key", "local");
    assert_text(&f, 0, "cluster_name", "origin");
    assert_text(&f, 0, "data_center", "dc7");
    assert_text(&f, 0, "rack", "rack1");
    assert_text(&f, 0, "release_version", "5.0.8");
    assert_text(&f, 0, "partitioner", "org.apache.cassandra.dht.Murmur3Partitioner");
    assert_inet(&f, 0, "rpc_address", host);
    assert_inet(&f, 0, "broadcast_address", host);
    assert_int_equal(cell_int(&f, 0, "rpc_port"), port);
    cell_uuid(&f, 0, "schema_version", schema[n]);
    cell_uuid(&f, 0, "host_id", host_ids[n]);
    tdm_bytes_t tokens;
    uint16_t type;
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "tokens", &tokens, &type), 0);
    assert_int_equal(type, TDM_CQLTYPE_SET);
    assert_true(tokens.len > 8);
    tdm_mockctl_frame_free(&f);

    query(&c, "SELECT peer, rpc_address, data_center, host_id, schema_version, tokens FROM system.peers", &f);
    assert_int_equal(rows_of(&f), 2);
    for (int32_t r = 0; r < 2; r++) {
      uint8_t sv[16];
      cell_uuid(&f, r, "schema_version", sv);
      assert_memory_equal(sv, schema[n], 16);
      assert_text(&f, r, "data_center", "dc7");
    }
    assert_int_equal(tdm_mockctl_rows_cell(&f, 0, "release_version", &tokens, &type), TDM_ENOTFOUND); /* projected */
    tdm_mockctl_frame_free(&f);

    query(&c, "SELECT * FROM system.peers_v2", &f);
    assert_int_equal(rows_of(&f), 2);
    size_t seen = 0;
    for (int32_t r = 0; r < 2; r++) {
      int32_t p = cell_int(&f, r, "native_port");
      for (size_t k = 0; k < 3; k++) {
        if (k == n || p != ports[k]) continue;
        assert_inet(&f, r, "native_address", ip[k]);
        assert_inet(&f, r, "peer", ip[k]);
        seen |= 1u << k;
      }
    }
    assert_int_equal(seen, 7u & ~(1u << n)); /* exactly the two other nodes */
    tdm_mockctl_frame_free(&f);

    /* WHERE on a peer address keeps one row */
    char cql[128];
    snprintf(cql, sizeof(cql), "SELECT peer FROM system.peers WHERE peer = '%s'", ip[(n + 1) % 3]);
    query(&c, cql, &f);
    assert_int_equal(rows_of(&f), 1);
    assert_inet(&f, 0, "peer", ip[(n + 1) % 3]);
    tdm_mockctl_frame_free(&f);
    tdm_mockctl_cql_close(&c);
  }
  assert_memory_equal(schema[0], schema[1], 16);
  assert_memory_equal(schema[0], schema[2], 16);
  assert_memory_not_equal(host_ids[0], host_ids[1], 16);
  assert_int_equal(tdm_mockctl_count(&m, "op=QUERY match=system.peers_v2"), 3);
  assert_int_equal(tdm_mockctl_count(&m, "node=1 op=QUERY match=system.peers_v2"), 1);
  stop(&m);
}

static void test_columns_and_errors(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  uint32_t code;
  char msg[256];
  spawn(&m, three_nodes);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V5, "lz4", &c), 0);
  query(&c, "SELECT release_version AS rv, \"cluster_name\" FROM system.local", &f);
  assert_text(&f, 0, "rv", "5.0.8");
  assert_text(&f, 0, "cluster_name", "origin");
  tdm_mockctl_frame_free(&f);
  query(&c, "SELECT nope FROM system.local", &f);
  assert_int_equal(tdm_mockctl_error_code(&f, &code, msg, sizeof(msg)), 0);
  assert_int_equal(code, TDM_ERR_INVALID);
  assert_string_equal(msg, "Undefined column name nope in table system.local");
  tdm_mockctl_frame_free(&f);
  /* an unknown table answers empty Rows */
  query(&c, "SELECT a, b FROM ks.unknown WHERE a = 1", &f);
  assert_int_equal(rows_of(&f), 0);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  stop(&m);

  const char *args[] = { "--node", "127.0.0.1:0", "--no-peers-v2", "--release-version", "3.11.17", NULL };
  spawn(&m, args);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  query(&c, "SELECT * FROM system.peers_v2", &f);
  assert_int_equal(tdm_mockctl_error_code(&f, &code, msg, sizeof(msg)), 0);
  assert_int_equal(code, TDM_ERR_INVALID);
  assert_string_equal(msg, "unconfigured table peers_v2");
  tdm_mockctl_frame_free(&f);
  query(&c, "SELECT * FROM system.peers", &f);
  assert_int_equal(rows_of(&f), 0); /* a single node has no peers */
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

static void test_schema_change(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t ddl, listener;
  tdm_mockctl_frame_t f;
  uint8_t before[16], after[16], peer_after[16];
  spawn(&m, three_nodes);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &ddl), 0);
  assert_int_equal(tdm_mockctl_cql_open(&m, 1, TDM_PROTO_V5, NULL, &listener), 0);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_str_t ev = TDM_STR("SCHEMA_CHANGE");
  tdm_request_encode_register(&w, &ev, 1);
  assert_int_equal(tdm_mockctl_cql_request(&listener, 1, TDM_OP_REGISTER, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_READY);
  tdm_mockctl_frame_free(&f);

  query(&ddl, "SELECT schema_version FROM system.local", &f);
  cell_uuid(&f, 0, "schema_version", before);
  tdm_mockctl_frame_free(&f);
  query(&ddl, "CREATE TABLE IF NOT EXISTS ks.t (k text PRIMARY KEY, v int)", &f);
  tdm_response_t r;
  assert_int_equal(f.h.opcode, TDM_OP_RESULT);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.result.kind, TDM_RESULT_SCHEMA_CHANGE);
  assert_true(tdm_str_eq_cstr(r.result.schema_change.change_type, "CREATED"));
  assert_int_equal(r.result.schema_change.target, TDM_RESPONSE_TARGET_TABLE);
  assert_true(tdm_str_eq_cstr(r.result.schema_change.keyspace, "ks"));
  assert_true(tdm_str_eq_cstr(r.result.schema_change.name, "t"));
  tdm_mockctl_frame_free(&f);

  /* the registered connection on another node gets the event (stream -1) */
  assert_int_equal(tdm_mockctl_cql_recv(&listener, TIMEOUT, &f), 0);
  assert_int_equal(f.h.opcode, TDM_OP_EVENT);
  assert_int_equal(f.h.stream, -1);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.event.kind, TDM_RESPONSE_EVENT_SCHEMA_CHANGE);
  assert_true(tdm_str_eq_cstr(r.event.schema.name, "t"));
  tdm_mockctl_frame_free(&f);

  query(&ddl, "SELECT schema_version FROM system.local", &f);
  cell_uuid(&f, 0, "schema_version", after);
  tdm_mockctl_frame_free(&f);
  assert_memory_not_equal(before, after, 16);
  query(&listener, "SELECT schema_version FROM system.peers", &f);
  cell_uuid(&f, 0, "schema_version", peer_after);
  tdm_mockctl_frame_free(&f);
  assert_memory_equal(after, peer_after, 16); /* the cluster agrees */

  query(&ddl, "DROP KEYSPACE ks", &f);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.result.schema_change.target, TDM_RESPONSE_TARGET_KEYSPACE);
  assert_true(tdm_str_eq_cstr(r.result.schema_change.change_type, "DROPPED"));
  tdm_mockctl_frame_free(&f);
  query(&ddl, "USE other", &f);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.result.kind, TDM_RESULT_SET_KEYSPACE);
  assert_true(tdm_str_eq_cstr(r.result.keyspace, "other"));
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&ddl);
  tdm_mockctl_cql_close(&listener);
  char reply[128];
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "SCHEMA"), 0);
  stop(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_local_and_peers),
    cmocka_unit_test(test_columns_and_errors),
    cmocka_unit_test(test_schema_change),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
