/* Aggregation decision (behaviour.md §6.1, §6.2, AG-01..03, AG-07, AG-08 logic) over the full matrix of
 * leg outcomes x primary x write_divergence_policy, and the exact texts and ERROR fields of §6.3/§14. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/route/aggregate.h>

/* Outcome tokens: none pend ok inv (INVALID, not in the rewrite set) wto (WRITE_TIMEOUT from the cluster)
 * una ovl boot unp (the rewrite set) sil lost. */
static tdm_agg_leg_t leg(const char *tok)
{
  static const struct { const char *tok; tdm_agg_outcome_t o; uint32_t code; } map[] = {
    { "none", TDM_AGG_NONE, 0 },   { "pend", TDM_AGG_PENDING, 0 },
    { "ok", TDM_AGG_OK, 0 },       { "inv", TDM_AGG_ERROR, TDM_ERR_INVALID },
    { "wto", TDM_AGG_ERROR, TDM_ERR_WRITE_TIMEOUT },
    { "una", TDM_AGG_ERROR, TDM_ERR_UNAVAILABLE }, { "ovl", TDM_AGG_ERROR, TDM_ERR_OVERLOADED },
    { "boot", TDM_AGG_ERROR, TDM_ERR_IS_BOOTSTRAPPING }, { "unp", TDM_AGG_ERROR, TDM_ERR_UNPREPARED },
    { "sil", TDM_AGG_SILENT, 0 },  { "lost", TDM_AGG_LOST, 0 },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(map); i++)
    if (strcmp(map[i].tok, tok) == 0) return (tdm_agg_leg_t){ map[i].o, map[i].code };
  fail_msg("bad token %s", tok);
  return (tdm_agg_leg_t){ 0 };
}

/* One row: ORIGIN outcome, TARGET outcome, primary (O/T), policy (F = FAIL, W = PRIMARY_WINS), success
 * cluster override (O for PREPARE, '-' = primary), expected action: "wait", "fwd O", "fwd T",
 * "rw O<T" (failed O, applied T), "rw T<O", "tmo"; and expected complete flag. */
typedef struct row_s {
  const char *o;    /* ORIGIN outcome token */
  const char *t;    /* TARGET outcome token */
  char primary;     /* 'O' or 'T' */
  char policy;      /* 'F' FAIL, 'W' PRIMARY_WINS */
  char success;     /* success cluster override, '-' = the primary */
  const char *want; /* expected decision */
  bool complete;    /* expected complete flag */
} row_t;

static const row_t rows[] = {
  /* both succeed: the primary's response; PREPARE always ORIGIN's */
  { "ok", "ok", 'O', 'F', '-', "fwd O", true },
  { "ok", "ok", 'T', 'F', '-', "fwd T", true },
  { "ok", "ok", 'T', 'F', 'O', "fwd O", true },
  { "ok", "ok", 'T', 'W', '-', "fwd T", true },
  /* one side fails outside the rewrite set: that side's error, whatever the primary */
  { "inv", "ok", 'O', 'F', '-', "fwd O", true },
  { "inv", "ok", 'T', 'F', '-', "fwd O", true },
  { "ok", "inv", 'O', 'F', '-', "fwd T", true },
  { "ok", "inv", 'T', 'F', '-', "fwd T", true },
  { "ok", "wto", 'O', 'F', '-', "fwd T", true },
  /* one side fails with a not-executed error while the other applied: rewritten */
  { "una", "ok", 'O', 'F', '-', "rw O<T", true },
  { "una", "ok", 'T', 'F', '-', "rw O<T", true },
  { "ok", "una", 'O', 'F', '-', "rw T<O", true },
  { "ok", "ovl", 'O', 'F', '-', "rw T<O", true },
  { "ok", "ovl", 'T', 'F', '-', "rw T<O", true },
  { "boot", "ok", 'O', 'F', '-', "rw O<T", true },
  { "ok", "boot", 'T', 'F', '-', "rw T<O", true },
  { "unp", "ok", 'O', 'F', '-', "rw O<T", true },
  { "ok", "unp", 'O', 'F', '-', "rw T<O", true },
  /* both fail: the primary's error */
  { "inv", "inv", 'O', 'F', '-', "fwd O", true },
  { "inv", "inv", 'T', 'F', '-', "fwd T", true },
  { "una", "una", 'T', 'F', '-', "fwd T", true },
  { "una", "inv", 'O', 'F', '-', "fwd O", true },
  { "una", "inv", 'T', 'F', '-', "fwd T", true },
  { "inv", "ovl", 'T', 'F', '-', "fwd T", true },
  /* early answer: primary failed outside the rewrite set, secondary still running */
  { "inv", "pend", 'O', 'F', '-', "fwd O", false },
  { "pend", "wto", 'T', 'F', '-', "fwd T", false },
  { "inv", "pend", 'T', 'F', '-', "wait", false },
  { "una", "pend", 'O', 'F', '-', "wait", false },
  { "ok", "pend", 'O', 'F', '-', "wait", false },
  { "pend", "inv", 'O', 'F', '-', "wait", false },
  { "pend", "pend", 'O', 'F', '-', "wait", false },
  /* proxy timeouts and lost connections */
  { "sil", "ok", 'O', 'F', '-', "tmo", true },
  { "ok", "sil", 'O', 'F', '-', "tmo", true },
  { "sil", "sil", 'T', 'F', '-', "tmo", true },
  { "lost", "ok", 'T', 'F', '-', "tmo", true },
  { "una", "sil", 'O', 'F', '-', "tmo", true },
  { "inv", "sil", 'O', 'F', '-', "fwd O", true },
  { "inv", "sil", 'T', 'F', '-', "tmo", true },
  { "lost", "pend", 'O', 'F', '-', "wait", false },
  /* PRIMARY_WINS */
  { "ok", "pend", 'O', 'W', '-', "fwd O", false },
  { "ok", "inv", 'O', 'W', '-', "fwd O", true },
  { "ok", "sil", 'O', 'W', '-', "fwd O", true },
  { "ok", "una", 'O', 'W', '-', "fwd O", true },
  { "inv", "ok", 'T', 'W', '-', "fwd T", true },
  { "inv", "pend", 'O', 'W', '-', "fwd O", false },
  { "una", "pend", 'O', 'W', '-', "wait", false },
  { "una", "ok", 'O', 'W', '-', "rw O<T", true },
  { "una", "inv", 'O', 'W', '-', "fwd O", true },
  { "ok", "una", 'T', 'W', '-', "rw T<O", true },
  { "sil", "ok", 'O', 'W', '-', "tmo", true },
  { "lost", "pend", 'O', 'W', '-', "wait", false },
  { "pend", "ok", 'O', 'W', '-', "wait", false },
  /* one leg only (reads, system reads, PRIMARY_WINS with an unreachable secondary) */
  { "ok", "none", 'O', 'F', '-', "fwd O", true },
  { "none", "inv", 'T', 'F', '-', "fwd T", true },
  { "none", "una", 'O', 'F', '-', "fwd T", true },
  { "sil", "none", 'O', 'F', '-', "tmo", true },
  { "none", "lost", 'T', 'W', '-', "tmo", true },
  { "pend", "none", 'O', 'W', '-', "wait", false },
  { "none", "ok", 'T', 'W', '-', "fwd T", true },
};

static int cl(char c) { return c == 'T' ? TDM_CONF_TARGET : TDM_CONF_ORIGIN; }

static void describe(const tdm_agg_decision_t *d, char *buf, size_t cap)
{
  switch (d->action) {
  case TDM_AGG_WAIT: snprintf(buf, cap, "wait"); break;
  case TDM_AGG_FORWARD: snprintf(buf, cap, "fwd %c", d->cluster == TDM_CONF_TARGET ? 'T' : 'O'); break;
  case TDM_AGG_REWRITE:
    snprintf(buf, cap, "rw %c<%c", d->cluster == TDM_CONF_TARGET ? 'T' : 'O',
             d->ok_cluster == TDM_CONF_TARGET ? 'T' : 'O');
    break;
  case TDM_AGG_TIMEOUT: snprintf(buf, cap, "tmo"); break;
  default: snprintf(buf, cap, "?"); break;
  }
}

static void test_matrix(void **state)
{
  (void)state;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(rows); i++) {
    const row_t *r = &rows[i];
    tdm_agg_input_t in = { 0 };
    in.primary = cl(r->primary);
    in.policy = r->policy == 'W' ? TDM_CONF_DIVERGENCE_PRIMARY_WINS : TDM_CONF_DIVERGENCE_FAIL;
    in.success_cluster = r->success == '-' ? in.primary : cl(r->success);
    in.leg[0] = leg(r->o);
    in.leg[1] = leg(r->t);
    tdm_agg_decision_t d;
    tdm_agg_decide(&in, &d);
    char got[32];
    describe(&d, got, sizeof(got));
    if (strcmp(got, r->want) != 0 || d.complete != r->complete)
      fail_msg("row %zu (%s/%s primary %c policy %c): want %s complete %d, got %s complete %d", i, r->o, r->t,
               r->primary, r->policy, r->want, r->complete, got, d.complete);
    /* cross-checks that hold on every row */
    if (d.action == TDM_AGG_FORWARD || d.action == TDM_AGG_REWRITE)
      assert_int_not_equal(in.leg[d.cluster].outcome, TDM_AGG_PENDING);
    if (d.action == TDM_AGG_REWRITE) {
      assert_true(tdm_agg_is_not_executed(in.leg[d.cluster].code));
      assert_int_equal(in.leg[d.ok_cluster].outcome, TDM_AGG_OK);
    }
    if (d.action == TDM_AGG_TIMEOUT) assert_true(d.silent | d.lost);
  }
}

/* Every combination gives a legal, consistent decision (no WAIT once every leg is known). */
static void test_exhaustive_properties(void **state)
{
  (void)state;
  static const char *toks[] = { "none", "pend", "ok", "inv", "wto", "una", "ovl", "boot", "unp", "sil", "lost" };
  int n = 0;
  for (size_t a = 0; a < TDM_ARRAY_SIZE(toks); a++)
    for (size_t b = 0; b < TDM_ARRAY_SIZE(toks); b++)
      for (int p = 0; p < 2; p++)
        for (int pol = 0; pol < 2; pol++) {
          tdm_agg_input_t in = { p, pol ? TDM_CONF_DIVERGENCE_PRIMARY_WINS : TDM_CONF_DIVERGENCE_FAIL, p,
                                 { leg(toks[a]), leg(toks[b]) } };
          tdm_agg_decision_t d;
          tdm_agg_decide(&in, &d);
          bool any = a != 0 || b != 0;
          bool pending = a == 1 || b == 1;
          if (any && !pending) assert_int_not_equal(d.action, TDM_AGG_WAIT);
          assert_int_equal(d.complete, !pending);
          assert_true((d.applied & d.failed) == 0);
          if (d.divergent) assert_true(d.applied && d.failed && d.complete);
          /* under FAIL, a success is only returned when every present leg succeeded */
          if (!pol && d.action == TDM_AGG_FORWARD && in.leg[d.cluster].outcome == TDM_AGG_OK)
            assert_int_equal(d.failed, 0);
          n++;
        }
  assert_int_equal(n, 11 * 11 * 4);
}

static void test_masks(void **state)
{
  (void)state;
  tdm_agg_input_t in = { TDM_CONF_ORIGIN, TDM_CONF_DIVERGENCE_FAIL, TDM_CONF_ORIGIN, { leg("ok"), leg("sil") } };
  tdm_agg_decision_t d;
  tdm_agg_decide(&in, &d);
  assert_int_equal(d.applied, TDM_AGG_BIT(TDM_CONF_ORIGIN));
  assert_int_equal(d.silent, TDM_AGG_BIT(TDM_CONF_TARGET));
  assert_int_equal(d.failed, TDM_AGG_BIT(TDM_CONF_TARGET));
  assert_int_equal(d.lost, 0);
  assert_true(d.divergent);
  in.leg[0] = leg("inv");
  in.leg[1] = leg("lost");
  in.primary = TDM_CONF_TARGET;
  tdm_agg_decide(&in, &d);
  assert_int_equal(d.action, TDM_AGG_TIMEOUT);
  assert_int_equal(d.failed, 3u);
  assert_int_equal(d.lost, TDM_AGG_BIT(TDM_CONF_TARGET));
  assert_false(d.divergent);
}

static void test_texts(void **state)
{
  (void)state;
  char buf[512];
  size_t n = tdm_agg_format_rewrite(buf, sizeof(buf), TDM_CONF_ORIGIN, TDM_CONF_TARGET, TDM_ERR_UNAVAILABLE,
                                    TDM_STR("Cannot achieve consistency level QUORUM"));
  assert_string_equal(buf, "tandem: applied on ORIGIN, failed on TARGET: UNAVAILABLE: Cannot achieve consistency "
                           "level QUORUM");
  assert_int_equal(n, strlen(buf));
  tdm_agg_format_rewrite(buf, sizeof(buf), TDM_CONF_TARGET, TDM_CONF_ORIGIN, TDM_ERR_IS_BOOTSTRAPPING, TDM_STR(""));
  assert_string_equal(buf, "tandem: applied on TARGET, failed on ORIGIN: IS_BOOTSTRAPPING: ");

  const char *nodes[2] = { "10.0.0.1:9042", "10.0.1.1:9042" };
  tdm_agg_format_timeout(buf, sizeof(buf), TDM_AGG_BIT(1), 0, TDM_AGG_BIT(0), nodes, 10000);
  assert_string_equal(buf, "tandem: no response from TARGET within 10000 ms (applied on ORIGIN)");
  tdm_agg_format_timeout(buf, sizeof(buf), TDM_AGG_BIT(0), 0, 0, NULL, 250);
  assert_string_equal(buf, "tandem: no response from ORIGIN within 250 ms");
  tdm_agg_format_timeout(buf, sizeof(buf), 3u, 0, 0, nodes, 10000);
  assert_string_equal(buf, "tandem: no response from ORIGIN and TARGET within 10000 ms");
  tdm_agg_format_timeout(buf, sizeof(buf), 0, TDM_AGG_BIT(1), TDM_AGG_BIT(0), nodes, 10000);
  assert_string_equal(buf, "tandem: connection to TARGET 10.0.1.1:9042 lost (applied on ORIGIN)");
  tdm_agg_format_timeout(buf, sizeof(buf), TDM_AGG_BIT(1), TDM_AGG_BIT(0), 0, nodes, 10);
  assert_string_equal(buf, "tandem: connection to ORIGIN 10.0.0.1:9042 lost; no response from TARGET within 10 ms");
  tdm_agg_format_timeout(buf, sizeof(buf), 0, TDM_AGG_BIT(0), 0, NULL, 10);
  assert_string_equal(buf, "tandem: connection to ORIGIN lost");

  tdm_agg_format_unreachable(buf, sizeof(buf), TDM_CONF_TARGET);
  assert_string_equal(buf, "tandem: no reachable TARGET node");
  tdm_agg_format_no_capacity(buf, sizeof(buf), TDM_CONF_ORIGIN, 10000);
  assert_string_equal(buf, "tandem: no capacity to ORIGIN within 10000 ms");

  const uint8_t id[4] = { 0x00, 0xAB, 0x0f, 0xF0 };
  tdm_agg_format_unprepared(buf, sizeof(buf), id, sizeof(id));
  assert_string_equal(buf, "Prepared query with ID 00ab0ff0 not found (either the query was not prepared on this "
                           "host (maybe the host has been restarted?) or you have prepared too many queries and "
                           "it has been evicted from the internal cache)");
}

static void test_text_truncation(void **state)
{
  (void)state;
  char small[16];
  memset(small, 'x', sizeof(small));
  size_t full = tdm_agg_format_timeout(small, sizeof(small), 3u, 3u, 0, NULL, 10000);
  char big[256];
  assert_int_equal(full, tdm_agg_format_timeout(big, sizeof(big), 3u, 3u, 0, NULL, 10000));
  assert_int_equal(full, strlen(big));
  assert_int_equal(strlen(small), sizeof(small) - 1);
  assert_memory_equal(small, big, sizeof(small) - 1);
  assert_int_equal(tdm_agg_format_unreachable(NULL, 0, TDM_CONF_ORIGIN), strlen("tandem: no reachable ORIGIN node"));
}

static void test_error_fields(void **state)
{
  (void)state;
  tdm_response_error_t e;
  static const struct { int batch; const char *wt; } wts[] = {
    { -1, "SIMPLE" }, { TDM_BATCH_LOGGED, "BATCH" }, { TDM_BATCH_UNLOGGED, "UNLOGGED_BATCH" },
    { TDM_BATCH_COUNTER, "COUNTER" },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(wts); i++) {
    tdm_agg_timeout_error(TDM_AGG_CLASS_WRITE, TDM_CL_LOCAL_QUORUM, wts[i].batch, TDM_STR("m"), &e);
    assert_int_equal(e.code, TDM_ERR_WRITE_TIMEOUT);
    assert_int_equal(e.consistency, TDM_CL_LOCAL_QUORUM);
    assert_int_equal(e.received, 0);
    assert_int_equal(e.block_for, 1);
    assert_true(tdm_str_eq_cstr(e.write_type, wts[i].wt));
    assert_true(tdm_str_eq_cstr(e.message, "m"));
  }
  tdm_agg_timeout_error(TDM_AGG_CLASS_READ, TDM_CL_ONE, -1, TDM_STR("r"), &e);
  assert_int_equal(e.code, TDM_ERR_READ_TIMEOUT);
  assert_int_equal(e.consistency, TDM_CL_ONE);
  assert_int_equal(e.block_for, 1);
  assert_int_equal(e.data_present, 0);
  assert_int_equal(e.write_type.len, 0);
  tdm_agg_timeout_error(TDM_AGG_CLASS_OTHER, TDM_CL_ONE, -1, TDM_STR("o"), &e);
  assert_int_equal(e.code, TDM_ERR_SERVER_ERROR);
  assert_int_equal(e.consistency, 0);
  tdm_agg_unavailable_error(TDM_CL_QUORUM, TDM_STR("tandem: no reachable TARGET node"), &e);
  assert_int_equal(e.code, TDM_ERR_UNAVAILABLE);
  assert_int_equal(e.consistency, TDM_CL_QUORUM);
  assert_int_equal(e.required, 1);
  assert_int_equal(e.alive, 0);

  /* the ERROR encodes as Cassandra's field order (code, message, CL, required, alive) */
  uint8_t out[128];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, out, sizeof(out));
  assert_int_equal(tdm_response_encode_error(&w, TDM_PROTO_V4, &e), 0);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_ERROR, out, w.len, &r, NULL), 0);
  assert_int_equal(r.error.code, TDM_ERR_UNAVAILABLE);
  assert_int_equal(r.error.required, 1);
  assert_int_equal(r.error.alive, 0);
  assert_true(tdm_str_eq_cstr(r.error.message, "tandem: no reachable TARGET node"));
}

static void test_names(void **state)
{
  (void)state;
  assert_string_equal(tdm_agg_cluster_name(TDM_CONF_ORIGIN), "ORIGIN");
  assert_string_equal(tdm_agg_cluster_name(TDM_CONF_TARGET), "TARGET");
  assert_string_equal(tdm_agg_cluster_name(7), "?");
  assert_true(tdm_agg_is_not_executed(TDM_ERR_UNPREPARED));
  assert_false(tdm_agg_is_not_executed(TDM_ERR_WRITE_TIMEOUT));
  assert_false(tdm_agg_is_not_executed(TDM_ERR_SERVER_ERROR));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_matrix),        cmocka_unit_test(test_exhaustive_properties),
    cmocka_unit_test(test_masks),         cmocka_unit_test(test_texts),
    cmocka_unit_test(test_text_truncation), cmocka_unit_test(test_error_fields),
    cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
