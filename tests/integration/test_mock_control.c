/* The mock's control interface and counters (tests/mock): exact per-node, per-opcode and per-statement
 * counts (EXECUTE counted under its prepared text, BATCH under its children), STATS and CONNS JSON,
 * RESET, KILL of a node's connections, STOP/START of a node (refused connections while down), PREPARED
 * CLEAR provoking a real UNPREPARED, pushed EVENTs, and errors for bad commands. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "mockctl.h"

#define TIMEOUT 5000

static const char *const two_nodes[] = { "--node", "127.0.0.1:0", "--node", "127.0.0.2:0", NULL };

static void spawn(tdm_mockctl_t *m, const char *const *args) { assert_int_equal(tdm_mockctl_spawn(m, args, 20000), 0); }
static void stop(tdm_mockctl_t *m) { assert_int_equal(tdm_mockctl_stop(m, 10000), 0); }

static void q(tdm_mockctl_cql_t *c, int16_t stream, const char *cql)
{
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_query(c, stream, cql, &f, TIMEOUT), 0);
  assert_int_equal(f.h.opcode, TDM_OP_RESULT);
  tdm_mockctl_frame_free(&f);
}

static void prepare(tdm_mockctl_cql_t *c, const char *cql, uint8_t id[16])
{
  tdm_writer_t w;
  tdm_mockctl_frame_t f;
  tdm_response_prepared_ids_t ids;
  tdm_writer_init(&w);
  tdm_request_encode_prepare(&w, c->version, tdm_str_from(cql), NULL);
  assert_int_equal(tdm_mockctl_cql_request(c, 90, TDM_OP_PREPARE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(tdm_response_peek_prepared_ids(f.h.version, f.body, f.len, &ids), 0);
  assert_int_equal(ids.id.len, 16);
  memcpy(id, ids.id.ptr, 16);
  tdm_mockctl_frame_free(&f);
}

/* EXECUTE without values; returns the answer's opcode and, for errors, the code. */
static uint8_t execute(tdm_mockctl_cql_t *c, int16_t stream, const uint8_t id[16], uint32_t *code)
{
  tdm_writer_t w;
  tdm_mockctl_frame_t f;
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  tdm_writer_init(&w);
  tdm_request_encode_execute(&w, c->version, (tdm_bytes_t){ id, 16 }, (tdm_bytes_t){ NULL, 0 }, &p);
  assert_int_equal(tdm_mockctl_cql_request(c, stream, TDM_OP_EXECUTE, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  uint8_t op = f.h.opcode;
  if (op == TDM_OP_ERROR && code) assert_int_equal(tdm_mockctl_error_code(&f, code, NULL, 0), 0);
  tdm_mockctl_frame_free(&f);
  return op;
}

static void test_counters(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t a, b;
  spawn(&m, two_nodes);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &a), 0);
  assert_int_equal(tdm_mockctl_cql_open(&m, 1, TDM_PROTO_V5, NULL, &b), 0);
  q(&a, 1, "INSERT INTO ks.t (k, v) VALUES ('a', 'x')");
  q(&a, 2, "INSERT INTO ks.t (k, v) VALUES ('a', 'x')");
  q(&b, 1, "INSERT INTO ks.t (k, v) VALUES ('a', 'x')");
  q(&b, 2, "SELECT v FROM ks.t WHERE k = 'a'");
  uint8_t id[16];
  prepare(&a, "UPDATE ks.t SET v = 'y' WHERE k = 'b'", id);
  assert_int_equal(execute(&a, 3, id, NULL), TDM_OP_RESULT);
  assert_int_equal(execute(&a, 4, id, NULL), TDM_OP_RESULT);
  /* a BATCH of one simple and one prepared child */
  tdm_batch_child_t kids[2] = {
    { .kind = TDM_REQUEST_BATCH_KIND_QUERY, .query = TDM_STR("DELETE FROM ks.t WHERE k = 'z'") },
    { .kind = TDM_REQUEST_BATCH_KIND_PREPARED, .id = { id, 16 } },
  };
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  tdm_writer_t w;
  tdm_mockctl_frame_t f;
  tdm_writer_init(&w);
  tdm_request_encode_batch(&w, 4, TDM_BATCH_LOGGED, kids, 2, &p);
  assert_int_equal(tdm_mockctl_cql_request(&a, 5, TDM_OP_BATCH, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_RESULT);
  tdm_mockctl_frame_free(&f);

  assert_int_equal(tdm_mockctl_count(&m, "op=QUERY match=\"INSERT INTO ks.t\""), 3);
  assert_int_equal(tdm_mockctl_count(&m, "node=0 op=QUERY match=\"INSERT INTO ks.t\""), 2);
  assert_int_equal(tdm_mockctl_count(&m, "node=1 op=QUERY"), 2);
  assert_int_equal(tdm_mockctl_count(&m, "op=QUERY text=\"SELECT v FROM ks.t WHERE k = 'a'\""), 1);
  assert_int_equal(tdm_mockctl_count(&m, "op=QUERY text=\"SELECT v FROM ks.t\""), 0);
  assert_int_equal(tdm_mockctl_count(&m, "op=EXECUTE match=\"UPDATE ks.t\""), 2);
  assert_int_equal(tdm_mockctl_count(&m, "op=PREPARE"), 1);
  assert_int_equal(tdm_mockctl_count(&m, "op=BATCH match=\"DELETE FROM ks.t\""), 1);
  assert_int_equal(tdm_mockctl_count(&m, "op=BATCH match=\"UPDATE ks.t\""), 1);
  assert_int_equal(tdm_mockctl_count(&m, "match=\"UPDATE ks.t\""), 4); /* PREPARE, 2 EXECUTE, BATCH */
  assert_int_equal(tdm_mockctl_count(&m, "regex=\"^INSERT .*'x'\\\\)$\""), 3);
  assert_int_equal(tdm_mockctl_count(&m, "op=STARTUP"), 2);
  assert_int_equal(tdm_mockctl_count(&m, "what=connections node=1"), 1);
  /* every request: 2 STARTUP + 4 QUERY + 1 PREPARE + 2 EXECUTE + 1 BATCH */
  assert_int_equal(tdm_mockctl_count(&m, "what=requests"), 10);

  char reply[8192];
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "STATS node=0"), 0);
  assert_non_null(strstr(reply, "\"opcodes\":{\"STARTUP\":1,\"QUERY\":2,\"PREPARE\":1,\"EXECUTE\":2,\"BATCH\":1}"));
  assert_non_null(strstr(reply, "\"connections_open\":1"));
  assert_null(strstr(reply, "\"node\":1")); /* filtered */
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "CONNS node=1"), 0);
  assert_non_null(strstr(reply, "\"version\":5"));
  assert_non_null(strstr(reply, "\"requests\":3"));

  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RESET"), 0);
  assert_int_equal(tdm_mockctl_count(&m, "what=requests"), 0);
  q(&b, 3, "INSERT INTO ks.t (k, v) VALUES ('a', 'x')");
  assert_int_equal(tdm_mockctl_count(&m, "op=QUERY"), 1);
  tdm_mockctl_cql_close(&a);
  tdm_mockctl_cql_close(&b);
  stop(&m);
}

static void test_kill_stop_start(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t a, b, c;
  tdm_mockctl_frame_t f;
  char reply[4096], host[64];
  uint16_t port;
  spawn(&m, two_nodes);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &a), 0);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &b), 0);
  assert_int_equal(tdm_mockctl_cql_open(&m, 1, TDM_PROTO_V4, NULL, &c), 0);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "KILL node=0"), 0);
  assert_string_equal(reply, "OK 2");
  assert_int_equal(tdm_mockctl_cql_recv(&a, TIMEOUT, &f), TDM_ECLOSED);
  assert_int_equal(tdm_mockctl_cql_recv(&b, TIMEOUT, &f), TDM_ECLOSED);
  q(&c, 1, "SELECT * FROM system.local"); /* the other node is untouched */
  tdm_mockctl_cql_close(&a);
  tdm_mockctl_cql_close(&b);

  /* STOP: connections dropped and new ones refused, until START on the same address */
  snprintf(reply, sizeof(reply), "STOP node=%s", m.nodes[1]);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "%s", reply), 0);
  assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), TDM_ECLOSED);
  tdm_mockctl_cql_close(&c);
  assert_int_equal(tdm_mockctl_node(&m, 1, host, sizeof(host), &port), 0);
  assert_true(tdm_mockctl_cql_connect(&c, host, port, TDM_PROTO_V4) < 0);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "STATS"), 0);
  assert_non_null(strstr(reply, "\"node\":1,\"addr\""));
  assert_non_null(strstr(reply, "\"listening\":false"));
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "START node=1"), 0);
  assert_int_equal(tdm_mockctl_cql_open(&m, 1, TDM_PROTO_V4, NULL, &c), 0);
  q(&c, 2, "SELECT * FROM system.local");
  tdm_mockctl_cql_close(&c);
  /* STOP kill=0 keeps established connections */
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &a), 0);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "STOP node=0 kill=0"), 0);
  q(&a, 3, "SELECT * FROM system.local");
  tdm_mockctl_cql_close(&a);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "START node=*"), 0);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "START node=9"), TDM_EINVAL);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "KILL"), TDM_EINVAL);
  stop(&m);
}

static void test_prepared_clear(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t a, b;
  uint8_t id[16];
  uint32_t code = 0;
  char reply[128];
  spawn(&m, two_nodes);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &a), 0);
  assert_int_equal(tdm_mockctl_cql_open(&m, 1, TDM_PROTO_V4, NULL, &b), 0);
  prepare(&a, "SELECT * FROM ks.t", id);
  assert_int_equal(execute(&a, 1, id, NULL), TDM_OP_RESULT);
  /* prepared statements live per node, as in Cassandra */
  assert_int_equal(execute(&b, 1, id, &code), TDM_OP_ERROR);
  assert_int_equal(code, TDM_ERR_UNPREPARED);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "PREPARED CLEAR node=0"), 0);
  assert_string_equal(reply, "OK 1");
  assert_int_equal(execute(&a, 2, id, &code), TDM_OP_ERROR);
  assert_int_equal(code, TDM_ERR_UNPREPARED);
  prepare(&a, "SELECT * FROM ks.t", id); /* the driver's answer to UNPREPARED */
  assert_int_equal(execute(&a, 3, id, NULL), TDM_OP_RESULT);
  tdm_mockctl_cql_close(&a);
  tdm_mockctl_cql_close(&b);
  stop(&m);
}

static void test_events(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  tdm_mockctl_cql_t c;
  tdm_mockctl_frame_t f;
  tdm_response_t r;
  char reply[128];
  spawn(&m, two_nodes);
  assert_int_equal(tdm_mockctl_cql_open(&m, 0, TDM_PROTO_V4, NULL, &c), 0);
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_str_t evs[2] = { TDM_STR("STATUS_CHANGE"), TDM_STR("TOPOLOGY_CHANGE") };
  tdm_request_encode_register(&w, evs, 2);
  assert_int_equal(tdm_mockctl_cql_request(&c, 1, TDM_OP_REGISTER, w.buf, w.len, &f, TIMEOUT), 0);
  tdm_writer_free(&w);
  assert_int_equal(f.h.opcode, TDM_OP_READY);
  tdm_mockctl_frame_free(&f);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "EVENT type=STATUS_CHANGE change=DOWN node=1"), 0);
  assert_string_equal(reply, "OK 1");
  assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), 0);
  assert_int_equal(f.h.stream, -1);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.event.kind, TDM_RESPONSE_EVENT_STATUS_CHANGE);
  assert_true(tdm_str_eq_cstr(r.event.change, "DOWN"));
  assert_int_equal(r.event.addr_len, 4);
  assert_int_equal(r.event.addr[3], 2); /* 127.0.0.2 */
  tdm_mockctl_frame_free(&f);
  assert_int_equal(
    tdm_mockctl_cmd(&m, reply, sizeof(reply), "EVENT type=TOPOLOGY_CHANGE change=NEW_NODE addr=10.0.0.9:9042"), 0);
  assert_int_equal(tdm_mockctl_cql_recv(&c, TIMEOUT, &f), 0);
  assert_int_equal(tdm_response_decode(f.h.version, f.h.opcode, f.body, f.len, &r, NULL), 0);
  assert_int_equal(r.event.kind, TDM_RESPONSE_EVENT_TOPOLOGY_CHANGE);
  assert_int_equal(r.event.port, 9042);
  tdm_mockctl_frame_free(&f);
  /* not registered for schema changes: nothing arrives */
  assert_int_equal(
    tdm_mockctl_cmd(&m, reply, sizeof(reply), "EVENT type=SCHEMA_CHANGE change=CREATED target=KEYSPACE ks=x"), 0);
  assert_int_equal(tdm_mockctl_cql_recv(&c, 200, &f), TDM_ETIMEOUT);
  tdm_mockctl_cql_close(&c);
  stop(&m);
}

static void test_bad_commands(void **state)
{
  (void)state;
  tdm_mockctl_t m;
  char reply[256];
  spawn(&m, two_nodes);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "PING"), 0);
  assert_string_equal(reply, "OK pong");
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "FROB"), TDM_EINVAL);
  assert_string_equal(reply, "ERR unknown command 'FROB'");
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "COUNT op=QUERY match=\"unterminated"), TDM_EINVAL);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "COUNT node=7"), TDM_EINVAL);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "COUNT what=bananas"), TDM_EINVAL);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RESET what=everything"), TDM_EINVAL);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "SCHEMA version=not-a-uuid"), TDM_EINVAL);
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "SCHEMA version=11111111-2222-3333-4444-555555555555"), 0);
  assert_string_equal(reply, "OK 11111111-2222-3333-4444-555555555555");
  assert_int_equal(tdm_mockctl_cmd(&m, reply, sizeof(reply), "RESET what=all"), 0);
  stop(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_counters),       cmocka_unit_test(test_kill_stop_start),
    cmocka_unit_test(test_prepared_clear), cmocka_unit_test(test_events),
    cmocka_unit_test(test_bad_commands),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
