/* Routing policy (behaviour.md §5.2, RT-*): every row of the routing table, fed through the real
 * classifier, checked under primary_cluster {ORIGIN, TARGET} x system_queries_mode {ORIGIN, TARGET} x
 * read_mode {PRIMARY_ONLY, DUAL_ASYNC_ON_SECONDARY}. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/route/router.h>

enum want_cluster { W_NONE, W_PRIMARY, W_SYSTEM };

typedef struct row_s {
  uint8_t opcode;          /* request opcode */
  const char *text;        /* statement text (QUERY, PREPARE, EXECUTE's stored text), or NULL */
  const char *session_ks;  /* the connection's keyspace ("" none) */
  bool paging;             /* carries a paging state */
  bool continuous;         /* DSE continuous paging */
  tdm_route_dest_t dest;   /* expected destination */
  enum want_cluster which; /* expected cluster */
  bool mirrorable;         /* mirrored when read_mode is DUAL_ASYNC_ON_SECONDARY */
  tdm_route_local_error_t err; /* expected local error */
} row_t;

static const row_t rows[] = {
  /* handshake opcodes and REGISTER are the frontend's: never routed */
  { TDM_OP_OPTIONS, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false, TDM_ROUTE_ERR_UNEXPECTED },
  { TDM_OP_STARTUP, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false, TDM_ROUTE_ERR_UNEXPECTED },
  { TDM_OP_AUTH_RESPONSE, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false, TDM_ROUTE_ERR_UNEXPECTED },
  { TDM_OP_REGISTER, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false, TDM_ROUTE_ERR_UNEXPECTED },
  /* virtual tables */
  { TDM_OP_QUERY, "SELECT * FROM system.local", "", false, false, TDM_ROUTE_LOCAL_VIRTUAL, W_NONE, false, 0 },
  { TDM_OP_QUERY, "select peer from SYSTEM.peers", "", false, false, TDM_ROUTE_LOCAL_VIRTUAL, W_NONE, false, 0 },
  { TDM_OP_QUERY, "SELECT * FROM peers_v2", "system", false, false, TDM_ROUTE_LOCAL_VIRTUAL, W_NONE, false, 0 },
  { TDM_OP_QUERY, "SELECT * FROM system.local USING TIMEOUT 5s", "", false, false, TDM_ROUTE_LOCAL_VIRTUAL, W_NONE,
    false, 0 },
  /* other system keyspaces */
  { TDM_OP_QUERY, "SELECT * FROM system_schema.tables", "", false, false, TDM_ROUTE_SYSTEM_CLUSTER, W_SYSTEM, false,
    0 },
  { TDM_OP_QUERY, "SELECT * FROM size_estimates", "system", false, false, TDM_ROUTE_SYSTEM_CLUSTER, W_SYSTEM, false,
    0 },
  { TDM_OP_QUERY, "SELECT * FROM dse_insights.tokens", "", false, false, TDM_ROUTE_SYSTEM_CLUSTER, W_SYSTEM, false,
    0 },
  /* any other SELECT, parseable or not */
  { TDM_OP_QUERY, "SELECT v FROM ks.t WHERE k = 1", "", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, true, 0 },
  { TDM_OP_QUERY, "SELECT v FROM t", "ks", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, true, 0 },
  { TDM_OP_QUERY, "SELECT ((( garbage", "", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, true, 0 },
  { TDM_OP_QUERY, "SELECT v FROM ks.t", "", true, false, TDM_ROUTE_PRIMARY, W_PRIMARY, false, 0 },
  /* USE, writes, LWT, batches, DDL, DCL */
  { TDM_OP_QUERY, "USE ks", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "INSERT INTO ks.t (k, v) VALUES (1, 2)", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "UPDATE t SET v = 1 WHERE k = 1 IF v = 0", "ks", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "DELETE FROM system.local WHERE k = 1", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "BEGIN UNLOGGED BATCH INSERT INTO t (k) VALUES (1) APPLY BATCH", "ks", false, false,
    TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "CREATE TABLE ks.t (k int PRIMARY KEY)", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "ALTER TABLE ks.t ADD v int", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "DROP KEYSPACE ks", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "TRUNCATE ks.t", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "GRANT SELECT ON ks.t TO bob", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "REVOKE SELECT ON ks.t FROM bob", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "CREATE ROLE bob WITH LOGIN = true", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "ALTER USER bob WITH PASSWORD 'x'", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "DROP ROLE bob", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  /* LIST: a read of auth metadata, primary only, never mirrored */
  { TDM_OP_QUERY, "LIST ROLES", "", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, false, 0 },
  { TDM_OP_QUERY, "LIST USERS", "", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, false, 0 },
  { TDM_OP_QUERY, "LIST ALL PERMISSIONS OF bob", "", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, false, 0 },
  /* CALL */
  { TDM_OP_QUERY, "CALL InsightsRpc.reportInsight('x')", "", false, false, TDM_ROUTE_LOCAL_VOID, W_NONE, false, 0 },
  { TDM_OP_QUERY, "CALL Other.proc()", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  /* unknown or unparseable text that is not a SELECT may write */
  { TDM_OP_QUERY, "FROBNICATE everything", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_QUERY, "", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  /* continuous paging */
  { TDM_OP_QUERY, "SELECT v FROM ks.t", "", false, true, TDM_ROUTE_LOCAL_ERROR, W_NONE, false,
    TDM_ROUTE_ERR_CONTINUOUS_PAGING },
  { TDM_OP_REVISE_REQUEST, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false,
    TDM_ROUTE_ERR_CONTINUOUS_PAGING },
  /* PREPARE: virtual SELECT locally, everything else on both (SELECTs and system reads included) */
  { TDM_OP_PREPARE, "SELECT * FROM system.peers WHERE peer = ?", "", false, false, TDM_ROUTE_LOCAL_VIRTUAL, W_NONE,
    false, 0 },
  { TDM_OP_PREPARE, "SELECT v FROM ks.t WHERE k = ?", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_PREPARE, "SELECT * FROM system_schema.keyspaces", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_PREPARE, "INSERT INTO ks.t (k) VALUES (?)", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  /* EXECUTE: by the stored class */
  { TDM_OP_EXECUTE, "SELECT v FROM ks.t WHERE k = ?", "", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, true, 0 },
  { TDM_OP_EXECUTE, "SELECT v FROM ks.t WHERE k = ?", "", true, false, TDM_ROUTE_PRIMARY, W_PRIMARY, false, 0 },
  { TDM_OP_EXECUTE, "SELECT * FROM system_schema.tables", "", false, false, TDM_ROUTE_SYSTEM_CLUSTER, W_SYSTEM,
    false, 0 },
  { TDM_OP_EXECUTE, "UPDATE ks.t SET v = ? WHERE k = ?", "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  { TDM_OP_EXECUTE, "LIST ROLES", "", false, false, TDM_ROUTE_PRIMARY, W_PRIMARY, false, 0 },
  { TDM_OP_EXECUTE, "SELECT v FROM ks.t", "", false, true, TDM_ROUTE_LOCAL_ERROR, W_NONE, false,
    TDM_ROUTE_ERR_CONTINUOUS_PAGING },
  /* BATCH opcode */
  { TDM_OP_BATCH, NULL, "", false, false, TDM_ROUTE_BOTH, W_NONE, false, 0 },
  /* any other opcode */
  { 0x04, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false, TDM_ROUTE_ERR_UNKNOWN_OPCODE },
  { TDM_OP_RESULT, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false, TDM_ROUTE_ERR_UNKNOWN_OPCODE },
  { 0x42, NULL, "", false, false, TDM_ROUTE_LOCAL_ERROR, W_NONE, false, TDM_ROUTE_ERR_UNKNOWN_OPCODE },
};

/* The facts route/dispatch.c gathers for a request. */
static void facts(const row_t *r, tdm_route_info_t *in)
{
  memset(in, 0, sizeof(*in));
  in->opcode = r->opcode;
  in->paging_state = r->paging;
  in->continuous_paging = r->continuous;
  if (!r->text) return;
  tdm_classification_t c;
  tdm_classify(r->text, strlen(r->text), &c);
  in->cls = c.cls;
  in->cflags = c.flags;
  if (c.cls == TDM_CLASSIFY_CLASS_READ) {
    tdm_str_t ks = tdm_str_from(r->session_ks);
    in->is_virtual = tdm_classify_virtual_table(&c, ks) != TDM_CLASSIFY_VTABLE_NONE;
    in->reads_system = tdm_classify_reads_system(&c, ks);
  }
}

static void test_table(void **state)
{
  (void)state;
  int checked = 0;
  for (int primary = 0; primary < 2; primary++)
    for (int sqm = 0; sqm < 2; sqm++)
      for (int mode = 0; mode < 2; mode++) {
        tdm_route_policy_t pol = { primary, sqm, mode == 1 };
        for (size_t i = 0; i < TDM_ARRAY_SIZE(rows); i++) {
          const row_t *r = &rows[i];
          tdm_route_info_t in;
          tdm_route_decision_t d;
          facts(r, &in);
          tdm_router_decide(&in, &pol, &d);
          int want = r->which == W_PRIMARY ? primary : r->which == W_SYSTEM ? sqm : -1;
          if (d.dest != r->dest || d.cluster != want || d.mirror != (r->mirrorable && mode == 1) ||
              d.error != r->err)
            fail_msg("row %zu (%s) primary=%d sqm=%d async=%d: got %s cluster %d mirror %d err %d", i,
                     r->text ? r->text : tdm_opcode_name(r->opcode), primary, sqm, mode,
                     tdm_router_dest_name(d.dest), d.cluster, d.mirror, d.error);
          /* a READ never goes to both clusters (§5.1) */
          if (in.cls == TDM_CLASSIFY_CLASS_READ && r->opcode != TDM_OP_PREPARE)
            assert_int_not_equal(d.dest, TDM_ROUTE_BOTH);
          checked++;
        }
      }
  assert_int_equal(checked, 8 * (int)TDM_ARRAY_SIZE(rows));
}

static void test_policy_from_conf(void **state)
{
  (void)state;
  tdm_conf_t *conf;
  assert_int_equal(tdm_conf_defaults(&conf), 0);
  tdm_route_policy_t p;
  tdm_router_policy(conf, &p);
  assert_int_equal(p.primary, TDM_CONF_ORIGIN);
  assert_int_equal(p.system_cluster, TDM_CONF_ORIGIN);
  assert_false(p.async_reads);
  conf->primary_cluster = TDM_CONF_TARGET;
  conf->system_queries_mode = TDM_CONF_TARGET;
  conf->read_mode = TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY;
  tdm_router_policy(conf, &p);
  assert_int_equal(p.primary, TDM_CONF_TARGET);
  assert_int_equal(p.system_cluster, TDM_CONF_TARGET);
  assert_true(p.async_reads);
  tdm_conf_unref(conf);
}

static void test_zeroed_info_and_names(void **state)
{
  (void)state;
  tdm_route_info_t in = { 0 };
  tdm_route_policy_t pol = { TDM_CONF_TARGET, TDM_CONF_ORIGIN, true };
  tdm_route_decision_t d;
  tdm_router_decide(&in, &pol, &d); /* opcode 0 is ERROR, a response: unknown as a request */
  assert_int_equal(d.dest, TDM_ROUTE_LOCAL_ERROR);
  assert_int_equal(d.error, TDM_ROUTE_ERR_UNKNOWN_OPCODE);
  assert_string_equal(tdm_router_dest_name(TDM_ROUTE_SYSTEM_CLUSTER), "SYSTEM_CLUSTER");
  assert_string_equal(tdm_router_dest_name(TDM_ROUTE_DEST_MAX), "?");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table),
    cmocka_unit_test(test_policy_from_conf),
    cmocka_unit_test(test_zeroed_info_and_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
