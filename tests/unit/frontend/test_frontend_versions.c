/* Protocol version rules (behaviour.md §3, PV-02): the usable set (supported − blocked − refused by
 * either cluster − learned), Cassandra's list format, the header-version rule, and golden bytes of the
 * refusal frame. The golden frames were written out by hand from the spec (header fields, [int] code,
 * [short]-prefixed message), with the hex produced by a Python struct.pack one-off. */
#include "testlib.h"

#include <tandem/frontend/versions.h>

static const unsigned ALL = TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V1 | TDM_CONF_PV_DSE_V2;

static void test_supported(void **state)
{
  (void)state;
  tdm_conf_t *conf;
  assert_int_equal(tdm_conf_defaults(&conf), 0);
  assert_int_equal(tdm_versions_supported(conf), ALL);
  conf->enable_protocol_v2 = true;
  assert_int_equal(tdm_versions_supported(conf), ALL | TDM_CONF_PV_V2);
  assert_int_equal(tdm_versions_supported(NULL), ALL);
  tdm_conf_unref(conf);
}

static void test_usable(void **state)
{
  (void)state;
  tdm_conf_t *conf;
  assert_int_equal(tdm_conf_defaults(&conf), 0);
  tdm_topology_t o, t;
  memset(&o, 0, sizeof(o));
  memset(&t, 0, sizeof(t));
  /* unknown clusters restrict nothing */
  assert_int_equal(tdm_versions_usable(conf, NULL, NULL, 0), ALL);
  assert_int_equal(tdm_versions_usable(conf, &o, &t, 0), ALL);
  /* blocked */
  conf->blocked_protocol_versions = TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V1;
  assert_int_equal(tdm_versions_usable(conf, NULL, NULL, 0), TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_DSE_V2);
  conf->blocked_protocol_versions = 0;
  /* each cluster removes what it does not accept, and what it is known to refuse */
  o.versions_accepted = TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5;
  t.versions_accepted = ALL;
  t.versions_refused = TDM_CONF_PV_V5;
  assert_int_equal(tdm_versions_usable(conf, &o, &t, 0), TDM_CONF_PV_V3 | TDM_CONF_PV_V4);
  /* refusals learned by the worker */
  assert_int_equal(tdm_versions_usable(conf, &o, NULL, TDM_CONF_PV_V4), TDM_CONF_PV_V3 | TDM_CONF_PV_V5);
  /* v2 only when enabled, even if a cluster accepts it */
  o.versions_accepted = TDM_CONF_PV_V2 | TDM_CONF_PV_V3;
  assert_int_equal(tdm_versions_usable(conf, &o, NULL, 0), TDM_CONF_PV_V3);
  conf->enable_protocol_v2 = true;
  assert_int_equal(tdm_versions_usable(conf, &o, NULL, 0), TDM_CONF_PV_V2 | TDM_CONF_PV_V3);
  tdm_conf_unref(conf);
}

static void test_format(void **state)
{
  (void)state;
  char buf[96];
  assert_int_equal(tdm_versions_format(ALL, buf, sizeof(buf)), strlen("3/v3, 4/v4, 5/v5, 65/dse-v1, 66/dse-v2"));
  assert_string_equal(buf, "3/v3, 4/v4, 5/v5, 65/dse-v1, 66/dse-v2");
  tdm_versions_format(TDM_CONF_PV_V2 | TDM_CONF_PV_V4, buf, sizeof(buf));
  assert_string_equal(buf, "2/v2, 4/v4");
  tdm_versions_format(0, buf, sizeof(buf));
  assert_string_equal(buf, "");
  /* truncation reports the full length and stays terminated */
  assert_int_equal(tdm_versions_format(ALL, buf, 8), strlen("3/v3, 4/v4, 5/v5, 65/dse-v1, 66/dse-v2"));
  assert_int_equal(strlen(buf), 7);
  tdm_str_t items[6];
  assert_int_equal(tdm_versions_list(TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V2 | TDM_CONF_PV_V3, items), 3);
  assert_true(tdm_str_eq_cstr(items[0], "3/v3"));
  assert_true(tdm_str_eq_cstr(items[1], "5/v5"));
  assert_true(tdm_str_eq_cstr(items[2], "66/dse-v2"));
  assert_null(tdm_versions_name(0x06));
  assert_true(tdm_versions_has(ALL, 0x42));
  assert_false(tdm_versions_has(ALL, 0x06));
  assert_false(tdm_versions_has(~0u, 0x7f));
}

static void test_header_version(void **state)
{
  (void)state;
  unsigned supported = ALL;
  /* below the lowest supported version: the requested one (its sender reads an 8-byte header) */
  assert_int_equal(tdm_versions_error_header_version(1, ALL, supported), 1);
  assert_int_equal(tdm_versions_error_header_version(2, ALL, supported), 2);
  assert_int_equal(tdm_versions_error_header_version(0, ALL, supported), 0);
  /* v2 enabled: v2 is no longer below the lowest, so it gets the highest usable non-DSE version */
  assert_int_equal(tdm_versions_error_header_version(2, ALL, supported | TDM_CONF_PV_V2), 5);
  /* too high, or a blocked / refused version: the highest non-DSE usable version */
  assert_int_equal(tdm_versions_error_header_version(6, ALL, supported), 5);
  assert_int_equal(tdm_versions_error_header_version(0x42, TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_DSE_V1,
                                                     supported),
                   4);
  assert_int_equal(tdm_versions_error_header_version(5, TDM_CONF_PV_V3, supported), 3);
  assert_int_equal(tdm_versions_error_header_version(0x7f, ALL, supported), 5);
  /* nothing but DSE usable: a v4 header */
  assert_int_equal(tdm_versions_error_header_version(6, TDM_CONF_PV_DSE_V1, supported), 4);
}

static void check_frame(uint8_t requested, unsigned usable, unsigned supported, const char *hex)
{
  size_t n;
  uint8_t *want = tdm_test_hex(hex, &n);
  uint8_t got[TDM_VERSIONS_ERROR_MAX];
  int len = tdm_versions_error_frame(requested, usable, supported, got, sizeof(got));
  assert_int_equal(len, (int)n);
  assert_memory_equal(got, want, n);
  /* a buffer one byte short is refused */
  assert_int_equal(tdm_versions_error_frame(requested, usable, supported, got, n - 1), TDM_EOVERFLOW);
  free(want);
}

static void test_golden_frames(void **state)
{
  (void)state;
  /* v6 (too high): v5 header, stream 0, flags 0, ERROR, PROTOCOL_ERROR, every version listed */
  check_frame(6, ALL, ALL,
              "85 00 0000 00 00000072 0000000a 006c"
              "496e76616c6964206f7220756e737570706f727465642070726f746f636f6c2076657273696f6e202836293b2073"
              "7570706f727465642076657273696f6e73206172652028332f76332c20342f76342c20352f76352c2036352f6473"
              "652d76312c2036362f6473652d763229");
  /* v1 (too low): 8-byte v1 header; clusters accepting only v3 and v4 */
  check_frame(1, TDM_CONF_PV_V3 | TDM_CONF_PV_V4, ALL,
              "81 00 00 00 00000056 0000000a 0050"
              "496e76616c6964206f7220756e737570706f727465642070726f746f636f6c2076657273696f6e202831293b2073"
              "7570706f727465642076657273696f6e73206172652028332f76332c20342f763429");
}

/* The message itself for the remaining shapes (blocked DSE_V2, v2 disabled). */
static void test_messages(void **state)
{
  (void)state;
  uint8_t f[TDM_VERSIONS_ERROR_MAX];
  int len = tdm_versions_error_frame(0x42, TDM_CONF_PV_V3 | TDM_CONF_PV_V4 | TDM_CONF_PV_V5 | TDM_CONF_PV_DSE_V1, ALL, f,
                                     sizeof(f));
  assert_true(len > 9 + 6);
  assert_int_equal(f[0], 0x85);
  const char *want = "Invalid or unsupported protocol version (66); supported versions are (3/v3, 4/v4, 5/v5, 65/dse-v1)";
  assert_int_equal(((f[13] << 8) | f[14]), strlen(want));
  assert_memory_equal(f + 15, want, strlen(want));
  len = tdm_versions_error_frame(2, TDM_CONF_PV_V4, ALL, f, sizeof(f));
  assert_int_equal(f[0], 0x82);
  assert_int_equal(f[3], 0x00); /* opcode ERROR at offset 3 of the 8-byte header */
  want = "Invalid or unsupported protocol version (2); supported versions are (4/v4)";
  assert_int_equal(len, 8 + 4 + 2 + (int)strlen(want));
  assert_memory_equal(f + 14, want, strlen(want));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_supported),   cmocka_unit_test(test_usable),        cmocka_unit_test(test_format),
    cmocka_unit_test(test_header_version), cmocka_unit_test(test_golden_frames), cmocka_unit_test(test_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
