/* Golden values for the virtual tables' arithmetic (behaviour.md §9.2, VT-01): tokens for N in
 * {1, 2, 3, 7, 12} instances and T in {1, 8, 256} tokens, host ids for IPv4 and IPv6 addresses, and
 * intercepted statement ids. Derivation (independent of the C code), a Python 3 one-off:
 *   token(i, n, t, T) = (2**64 // (T*n)) * (t*n + i) - 2**63            (exact big integers)
 *   host_id(a) = SHA-1(16 zero bytes + IPv6Address(a or '::ffff:'+a).packed)[:16] with
 *                byte 6 = (b & 0x0f) | 0x50 and byte 8 = (b & 0x3f) | 0x80, printed by uuid.UUID
 *   statement id = hashlib.md5(b"tandem:" + keyspace + b":" + query).hexdigest()
 * Go's uuid.NewSHA1(uuid.Nil, net.ParseIP(a)), zdm-proxy's derivation, hashes the same 32 bytes. */
#include "testlib.h"

#include <arpa/inet.h>
#include <tandem/frontend/vtables.h>

typedef struct token_case_s {
  uint32_t n;    /* instances */
  uint32_t T;    /* tokens per instance */
  uint32_t i;    /* instance */
  uint32_t t;    /* token index */
  int64_t want;  /* golden value */
} token_case_t;

static const token_case_t k_tokens[] = {
  { 1, 1, 0, 0, INT64_MIN },
  { 1, 8, 0, 0, INT64_MIN },
  { 1, 8, 0, 1, -6917529027641081856LL },
  { 1, 8, 0, 4, 0LL },
  { 1, 8, 0, 7, 6917529027641081856LL },
  { 1, 256, 0, 0, INT64_MIN },
  { 1, 256, 0, 1, -9151314442816847872LL },
  { 1, 256, 0, 128, 0LL },
  { 1, 256, 0, 255, 9151314442816847872LL },
  { 2, 1, 0, 0, INT64_MIN },
  { 2, 1, 1, 0, 0LL },
  { 2, 8, 0, 0, INT64_MIN },
  { 2, 8, 0, 1, -6917529027641081856LL },
  { 2, 8, 0, 4, 0LL },
  { 2, 8, 0, 7, 6917529027641081856LL },
  { 2, 8, 1, 0, -8070450532247928832LL },
  { 2, 8, 1, 1, -5764607523034234880LL },
  { 2, 8, 1, 4, 1152921504606846976LL },
  { 2, 8, 1, 7, 8070450532247928832LL },
  { 2, 256, 0, 0, INT64_MIN },
  { 2, 256, 0, 1, -9151314442816847872LL },
  { 2, 256, 0, 128, 0LL },
  { 2, 256, 0, 255, 9151314442816847872LL },
  { 2, 256, 1, 0, -9187343239835811840LL },
  { 2, 256, 1, 1, -9115285645797883904LL },
  { 2, 256, 1, 128, 36028797018963968LL },
  { 2, 256, 1, 255, 9187343239835811840LL },
  { 3, 1, 0, 0, INT64_MIN },
  { 3, 1, 1, 0, -3074457345618258603LL },
  { 3, 1, 2, 0, 3074457345618258602LL },
  { 3, 8, 0, 0, INT64_MIN },
  { 3, 8, 0, 1, -6917529027641081858LL },
  { 3, 8, 0, 4, -8LL },
  { 3, 8, 0, 7, 6917529027641081842LL },
  { 3, 8, 1, 0, -8454757700450211158LL },
  { 3, 8, 1, 1, -6148914691236517208LL },
  { 3, 8, 1, 4, 768614336404564642LL },
  { 3, 8, 1, 7, 7686143364045646492LL },
  { 3, 8, 2, 0, -7686143364045646508LL },
  { 3, 8, 2, 1, -5380300354831952558LL },
  { 3, 8, 2, 4, 1537228672809129292LL },
  { 3, 8, 2, 7, 8454757700450211142LL },
  { 3, 256, 0, 0, INT64_MIN },
  { 3, 256, 0, 1, -9151314442816847873LL },
  { 3, 256, 0, 128, -128LL },
  { 3, 256, 0, 255, 9151314442816847617LL },
  { 3, 256, 1, 0, -9199352838842133163LL },
  { 3, 256, 1, 1, -9127295244804205228LL },
  { 3, 256, 1, 128, 24019198012642517LL },
  { 3, 256, 1, 255, 9175333640829490262LL },
  { 3, 256, 2, 0, -9175333640829490518LL },
  { 3, 256, 2, 1, -9103276046791562583LL },
  { 3, 256, 2, 128, 48038396025285162LL },
  { 3, 256, 2, 255, 9199352838842132907LL },
  { 7, 1, 0, 0, INT64_MIN },
  { 7, 1, 3, 0, -1317624576693539402LL },
  { 7, 1, 6, 0, 6588122883467697004LL },
  { 7, 8, 0, 0, INT64_MIN },
  { 7, 8, 0, 1, -6917529027641081858LL },
  { 7, 8, 0, 4, -8LL },
  { 7, 8, 0, 7, 6917529027641081842LL },
  { 7, 8, 3, 0, -8235153604334621258LL },
  { 7, 8, 3, 1, -5929310595120927308LL },
  { 7, 8, 3, 4, 988218432520154542LL },
  { 7, 8, 3, 7, 7905747460161236392LL },
  { 7, 8, 6, 0, -7246935171814466708LL },
  { 7, 8, 6, 1, -4941092162600772758LL },
  { 7, 8, 6, 4, 1976436865040309092LL },
  { 7, 8, 6, 7, 8893965892681390942LL },
  { 7, 256, 0, 0, INT64_MIN },
  { 7, 256, 0, 1, -9151314442816847876LL },
  { 7, 256, 0, 128, -512LL },
  { 7, 256, 0, 255, 9151314442816846852LL },
  { 7, 256, 3, 0, -9192490210838520980LL },
  { 7, 256, 3, 1, -9120432616800593048LL },
  { 7, 256, 3, 128, 30881826016254316LL },
  { 7, 256, 3, 255, 9182196268833101680LL },
  { 7, 256, 6, 0, -9161608384822266152LL },
  { 7, 256, 6, 1, -9089550790784338220LL },
  { 7, 256, 6, 128, 61763652032509144LL },
  { 7, 256, 6, 255, 9213078094849356508LL },
  { 12, 1, 0, 0, INT64_MIN },
  { 12, 1, 6, 0, -2LL },
  { 12, 1, 11, 0, 7686143364045646503LL },
  { 12, 8, 0, 0, INT64_MIN },
  { 12, 8, 0, 1, -6917529027641081864LL },
  { 12, 8, 0, 4, -32LL },
  { 12, 8, 0, 7, 6917529027641081800LL },
  { 12, 8, 6, 0, -8070450532247928836LL },
  { 12, 8, 6, 1, -5764607523034234892LL },
  { 12, 8, 6, 4, 1152921504606846940LL },
  { 12, 8, 6, 7, 8070450532247928772LL },
  { 12, 8, 11, 0, -7109682611742223026LL },
  { 12, 8, 11, 1, -4803839602528529082LL },
  { 12, 8, 11, 4, 2113689425112552750LL },
  { 12, 8, 11, 7, 9031218452753634582LL },
  { 12, 256, 0, 0, INT64_MIN },
  { 12, 256, 0, 1, -9151314442816847876LL },
  { 12, 256, 0, 128, -512LL },
  { 12, 256, 0, 255, 9151314442816846852LL },
  { 12, 256, 6, 0, -9187343239835811842LL },
  { 12, 256, 6, 1, -9115285645797883910LL },
  { 12, 256, 6, 128, 36028797018963454LL },
  { 12, 256, 6, 255, 9187343239835810818LL },
  { 12, 256, 11, 0, -9157319242320008537LL },
  { 12, 256, 11, 1, -9085261648282080605LL },
  { 12, 256, 11, 128, 66052794534766759LL },
  { 12, 256, 11, 255, 9217367237351614123LL },
};

static void test_tokens_golden(void **state)
{
  (void)state;
  for (size_t k = 0; k < sizeof(k_tokens) / sizeof(k_tokens[0]); k++) {
    const token_case_t *c = &k_tokens[k];
    int64_t got = tdm_vtables_token(c->i, c->n, c->t, c->T);
    if (got != c->want) fail_msg("token(i=%u, n=%u, t=%u, T=%u) = %lld, want %lld", c->i, c->n, c->t, c->T,
                                 (long long)got, (long long)c->want);
  }
}

/* Property over every (i, t): ring position k = t*N + i gives strictly increasing tokens, evenly spaced
 * by floor(2^64 / (T*N)), starting at -2^63. */
static void test_tokens_ring(void **state)
{
  (void)state;
  static const uint32_t ns[] = { 1, 2, 3, 7, 12 };
  static const uint32_t ts[] = { 1, 8, 256 };
  for (size_t a = 0; a < 5; a++) {
    for (size_t b = 0; b < 3; b++) {
      uint32_t n = ns[a], T = ts[b];
      int64_t prev = 0;
      for (uint32_t k = 0; k < n * T; k++) {
        int64_t tok = tdm_vtables_token(k % n, n, k / n, T);
        if (k == 0) {
          assert_true(tok == INT64_MIN);
        } else {
          assert_true(tok > prev);
          /* spacing is the same step every time: (tok - prev) computed without overflow */
          uint64_t d = (uint64_t)tok - (uint64_t)prev;
          uint64_t first = (uint64_t)tdm_vtables_token(1 % n, n, 1 / n, T) - (uint64_t)INT64_MIN;
          if (n * T > 1) assert_true(d == first);
        }
        prev = tok;
      }
    }
  }
}

static const struct {
  const char *addr; /* instance address */
  const char *want; /* golden host_id */
} k_host_ids[] = {
  { "127.0.0.1", "70ce2f37-9d6d-5010-98d8-80fe51a498ed" },
  { "127.0.0.2", "3d89fc3f-6076-51b1-9580-24975aa4ba0a" },
  { "10.0.0.5", "0bbffdb5-2106-55e3-ac2d-c4b78b107ffa" },
  { "192.168.1.254", "6bbef5bf-5036-5ab7-a4d0-b2d3befb7839" },
  { "::1", "e7d363ef-9120-5276-96dc-a4a107a82c62" },
  { "2001:db8::7", "959d2d3b-cb6b-565a-bbaa-e2c0385e3921" },
  { "fe80::1:2:3:4", "2f2718cd-1b9d-5b85-930a-0cefe535a2d1" },
};

static void format_uuid(const uint8_t u[16], char out[37])
{
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
           u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static void test_host_ids(void **state)
{
  (void)state;
  for (size_t k = 0; k < sizeof(k_host_ids) / sizeof(k_host_ids[0]); k++) {
    uint8_t addr[16], id[16];
    size_t len = 4;
    if (inet_pton(AF_INET, k_host_ids[k].addr, addr) != 1) {
      assert_int_equal(inet_pton(AF_INET6, k_host_ids[k].addr, addr), 1);
      len = 16;
    }
    tdm_vtables_host_id(addr, len, id);
    char got[37];
    format_uuid(id, got);
    assert_string_equal(got, k_host_ids[k].want);
  }
  /* an IPv4 address and its IPv4-mapped IPv6 form name the same host */
  uint8_t v4[4] = { 127, 0, 0, 1 }, v6[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1 };
  uint8_t a[16], b[16];
  tdm_vtables_host_id(v4, 4, a);
  tdm_vtables_host_id(v6, 16, b);
  assert_memory_equal(a, b, 16);
}

static void test_statement_ids(void **state)
{
  (void)state;
  uint8_t id[16];
  char hex[33];
  tdm_vtables_statement_id(TDM_STR("ks"), TDM_STR("SELECT * FROM system.local"), id);
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
  assert_string_equal(hex, "ab4802cb2320b15184a6cc30ce2dce90");
  tdm_vtables_statement_id(TDM_STR(""), TDM_STR("SELECT key FROM system.local WHERE key = ?"), id);
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
  assert_string_equal(hex, "c1ca7ba267d50fb4145c4bc95ab4353b");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tokens_golden),
    cmocka_unit_test(test_tokens_ring),
    cmocka_unit_test(test_host_ids),
    cmocka_unit_test(test_statement_ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
