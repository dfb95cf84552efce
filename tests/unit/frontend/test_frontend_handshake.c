/* Handshake rules without a connection (behaviour.md §2.1, §2.2 steps 1-2): the SUPPORTED body
 * (compression intersection in TARGET's order, lower CQL_VERSION, PROTOCOL_VERSIONS = the usable
 * set), STARTUP checks with their exact texts, and the credential table's client-auth cluster. */
#include "testlib.h"

#include <tandem/frontend/handshake.h>
#include <tandem/proto/response.h>

static tdm_topology_t topo(const char *compression, const char *cql, bool auth)
{
  tdm_topology_t t;
  memset(&t, 0, sizeof(t));
  snprintf(t.compression, sizeof(t.compression), "%s", compression);
  snprintf(t.cql_version, sizeof(t.cql_version), "%s", cql);
  t.auth_required = auth;
  return t;
}

static void check_algos(const tdm_topology_t *o, const tdm_topology_t *t, const char *want)
{
  char storage[128];
  tdm_str_t items[TDM_HANDSHAKE_MAX_ALGOS];
  size_t n = tdm_handshake_compressions(o, t, storage, items);
  char got[128] = "";
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%.*s", i ? "," : "", (int)items[i].len, items[i].ptr);
  assert_string_equal(got, want);
}

static void test_compressions(void **state)
{
  (void)state;
  tdm_topology_t o = topo("lz4,snappy", "", false), t = topo("LZ4", "", false);
  check_algos(&o, &t, "lz4"); /* FR-07 */
  t = topo("snappy, lz4", "", false);
  check_algos(&o, &t, "snappy,lz4"); /* TARGET's order, lower case */
  o = topo("", "", false);
  check_algos(&o, &t, ""); /* ORIGIN offers none */
  check_algos(NULL, &t, "snappy,lz4");
  check_algos(&t, NULL, "snappy,lz4");
  check_algos(NULL, NULL, "lz4,snappy");
}

static void test_cql_version(void **state)
{
  (void)state;
  tdm_topology_t o = topo("", "3.4.5", false), t = topo("", "3.4.10", false);
  assert_string_equal(tdm_handshake_cql_version(&o, &t), "3.4.5"); /* numeric, not lexicographic */
  o = topo("", "3.4.7", false);
  t = topo("", "3.4.5", false);
  assert_string_equal(tdm_handshake_cql_version(&o, &t), "3.4.5");
  o = topo("", "", false);
  assert_string_equal(tdm_handshake_cql_version(&o, &t), "3.4.5");
  assert_string_equal(tdm_handshake_cql_version(NULL, NULL), TDM_HANDSHAKE_DEFAULT_CQL_VERSION);
  o = topo("", "4.0", false);
  t = topo("", "3.11.2", false);
  assert_string_equal(tdm_handshake_cql_version(&o, &t), "3.11.2");
}

/* Reads one SUPPORTED option's values joined with ','. */
static void option(const tdm_response_supported_t *s, const char *key, char *out, size_t cap)
{
  tdm_response_strlist_t l;
  assert_int_equal(tdm_response_supported_get(s, tdm_str_from(key), &l), 0);
  size_t pos = 0, len = 0;
  tdm_str_t item;
  out[0] = '\0';
  while (tdm_response_strlist_next(&l, &pos, &item) == 1)
    len += (size_t)snprintf(out + len, cap - len, "%s%.*s", len ? "," : "", (int)item.len, item.ptr);
}

static void test_supported_body(void **state)
{
  (void)state;
  tdm_topology_t o = topo("snappy,lz4", "3.4.7", false), t = topo("lz4,snappy", "3.4.5", false);
  tdm_writer_t w;
  tdm_writer_init(&w);
  assert_int_equal(tdm_handshake_supported(&w, &o, &t, TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_DSE_V2), 0);
  tdm_response_t r;
  assert_int_equal(tdm_response_decode(TDM_PROTO_V4, TDM_OP_SUPPORTED, w.buf, w.len, &r, NULL), 0);
  assert_int_equal(r.supported.count, 3);
  char buf[128];
  option(&r.supported, "CQL_VERSION", buf, sizeof(buf));
  assert_string_equal(buf, "3.4.5");
  option(&r.supported, "COMPRESSION", buf, sizeof(buf));
  assert_string_equal(buf, "lz4,snappy");
  option(&r.supported, "PROTOCOL_VERSIONS", buf, sizeof(buf));
  assert_string_equal(buf, "3/v3,4/v4,66/dse-v2");
  tdm_writer_free(&w);
}

static void startup(tdm_startup_t *s, tdm_writer_t *w, const char *cql, const char *compression)
{
  tdm_str_t keys[2], values[2];
  size_t n = 0;
  if (cql) {
    keys[n] = TDM_STR("CQL_VERSION");
    values[n++] = tdm_str_from(cql);
  }
  if (compression) {
    keys[n] = TDM_STR("COMPRESSION");
    values[n++] = tdm_str_from(compression);
  }
  tdm_writer_init(w);
  assert_int_equal(tdm_request_encode_startup(w, keys, values, n), 0);
  assert_int_equal(tdm_request_decode_startup(w->buf, w->len, s, NULL), 0);
}

static void test_startup_checks(void **state)
{
  (void)state;
  tdm_topology_t o = topo("lz4,snappy", "3.4.5", false), t = topo("lz4", "3.4.5", false);
  tdm_startup_t s;
  tdm_writer_t w;
  tdm_compression_t c;
  char msg[160];

  startup(&s, &w, "3.0.0", NULL);
  assert_int_equal(tdm_handshake_check_startup(&s, 4, &o, &t, &c, msg, sizeof(msg)), 0);
  assert_int_equal(c, TDM_COMPRESSION_NONE);
  tdm_writer_free(&w);

  startup(&s, &w, "3.0.0", "LZ4");
  assert_int_equal(tdm_handshake_check_startup(&s, 4, &o, &t, &c, msg, sizeof(msg)), 0);
  assert_int_equal(c, TDM_COMPRESSION_LZ4);
  tdm_writer_free(&w);

  startup(&s, &w, "3.0.0", "snappy"); /* ORIGIN has it, TARGET not */
  assert_int_equal(tdm_handshake_check_startup(&s, 4, &o, &t, &c, msg, sizeof(msg)), TDM_EINVAL);
  assert_string_equal(msg, "Unknown compression algorithm: snappy");
  assert_int_equal(tdm_handshake_check_startup(&s, 5, &o, &t, &c, msg, sizeof(msg)), TDM_EINVAL);
  assert_string_equal(msg, "snappy is not supported with protocol v5");
  tdm_writer_free(&w);

  startup(&s, &w, "3.0.0", "deflate");
  assert_int_equal(tdm_handshake_check_startup(&s, 4, NULL, NULL, &c, msg, sizeof(msg)), TDM_EINVAL);
  assert_string_equal(msg, "Unknown compression algorithm: deflate");
  tdm_writer_free(&w);

  startup(&s, &w, NULL, "lz4");
  assert_int_equal(tdm_handshake_check_startup(&s, 4, &o, &t, &c, msg, sizeof(msg)), TDM_EINVAL);
  assert_string_equal(msg, "Missing value CQL_VERSION in STARTUP message");
  tdm_writer_free(&w);
}

static void test_auth_cluster(void **state)
{
  (void)state;
  tdm_conf_t *conf;
  assert_int_equal(tdm_conf_defaults(&conf), 0);
  tdm_topology_t on = topo("", "", false), oa = topo("", "", true), tn = topo("", "", false), ta = topo("", "", true);
  for (int fwd = 0; fwd < 2; fwd++) {
    conf->forward_client_credentials_to_origin = fwd;
    assert_int_equal(tdm_handshake_auth_cluster(conf, &on, &tn), -1);
    assert_int_equal(tdm_handshake_auth_cluster(conf, &oa, &tn), TDM_CONF_ORIGIN);
    assert_int_equal(tdm_handshake_auth_cluster(conf, &on, &ta), TDM_CONF_TARGET);
    assert_int_equal(tdm_handshake_auth_cluster(conf, &oa, &ta), fwd ? TDM_CONF_ORIGIN : TDM_CONF_TARGET);
  }
  assert_int_equal(tdm_handshake_auth_cluster(conf, NULL, NULL), -1);
  tdm_conf_unref(conf);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_compressions),   cmocka_unit_test(test_cql_version),  cmocka_unit_test(test_supported_body),
    cmocka_unit_test(test_startup_checks), cmocka_unit_test(test_auth_cluster),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
