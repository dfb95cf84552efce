/* SASL PLAIN token parsing and the verified-identity cache (behaviour.md §2.2 steps 3-4, HS-03/HS-06
 * at unit level): credentials with and without authzid, the DSE `PLAIN` selection, other mechanisms
 * named in the exact BAD_CREDENTIALS text, malformed tokens; cache hits only for the same password
 * within the TTL, failures never cached, the password never stored. */
#include "testlib.h"

#include <tandem/frontend/auth.h>

static void parse(const char *bytes, size_t len, tdm_sasl_token_t *t) { tdm_sasl_parse((const uint8_t *)bytes, (int32_t)len, t); }

static void test_credentials(void **state)
{
  (void)state;
  tdm_sasl_token_t t;
  parse("\0cassandra\0secret", 17, &t);
  assert_int_equal(t.kind, TDM_SASL_CREDENTIALS);
  assert_int_equal(t.authzid.len, 0);
  assert_true(tdm_str_eq_cstr(t.user, "cassandra"));
  assert_true(tdm_str_eq_cstr(t.password, "secret"));

  parse("admin\0bob\0pw", 12, &t);
  assert_int_equal(t.kind, TDM_SASL_CREDENTIALS);
  assert_true(tdm_str_eq_cstr(t.authzid, "admin"));
  assert_true(tdm_str_eq_cstr(t.user, "bob"));
  assert_true(tdm_str_eq_cstr(t.password, "pw"));

  parse("\0bob\0", 5, &t); /* empty password: syntactically fine, the cluster decides */
  assert_int_equal(t.kind, TDM_SASL_CREDENTIALS);
  assert_int_equal(t.password.len, 0);
}

static void test_mechanisms(void **state)
{
  (void)state;
  tdm_sasl_token_t t;
  char msg[160];
  parse("PLAIN", 5, &t);
  assert_int_equal(t.kind, TDM_SASL_SELECT_PLAIN);

  parse("GSSAPI", 6, &t);
  assert_int_equal(t.kind, TDM_SASL_OTHER);
  tdm_sasl_error_text(&t, msg, sizeof(msg));
  assert_string_equal(msg, "tandem supports only SASL PLAIN; got GSSAPI");

  parse("plain", 5, &t); /* mechanism names are case-sensitive in DSE's exchange */
  assert_int_equal(t.kind, TDM_SASL_OTHER);

  parse("PLAIN\0", 6, &t);
  assert_int_equal(t.kind, TDM_SASL_OTHER);
  tdm_sasl_error_text(&t, msg, sizeof(msg));
  assert_string_equal(msg, "tandem supports only SASL PLAIN; got a malformed PLAIN token");

  parse("\0\0pw", 4, &t); /* empty user */
  assert_int_equal(t.kind, TDM_SASL_OTHER);
  parse("a\0b\0c\0d", 7, &t); /* a NUL in the password */
  assert_int_equal(t.kind, TDM_SASL_OTHER);

  tdm_sasl_parse(NULL, -1, &t);
  assert_int_equal(t.kind, TDM_SASL_OTHER);
  tdm_sasl_error_text(&t, msg, sizeof(msg));
  assert_string_equal(msg, "tandem supports only SASL PLAIN; got an empty token");

  /* unprintable bytes are replaced, long names cut */
  char longmech[200];
  memset(longmech, 'M', sizeof(longmech));
  longmech[1] = '\n';
  parse(longmech, sizeof(longmech), &t);
  assert_int_equal(strlen(t.mechanism), TDM_AUTH_MECHANISM_MAX);
  assert_int_equal(t.mechanism[1], '?');
}

static void test_cache(void **state)
{
  (void)state;
  tdm_auth_cache_t c;
  assert_int_equal(tdm_auth_cache_init(&c), 0);
  tdm_str_t none = { 0 }, bob = TDM_STR("bob"), pw = TDM_STR("secret"), wrong = TDM_STR("Secret");
  assert_false(tdm_auth_cache_check(&c, none, bob, pw, 1000, 30000));
  assert_int_equal(tdm_auth_cache_put(&c, none, bob, pw, 1000, 30000), 0);
  assert_true(tdm_auth_cache_check(&c, none, bob, pw, 2000, 30000));
  assert_false(tdm_auth_cache_check(&c, none, bob, wrong, 2000, 30000));          /* never a wrong password */
  assert_false(tdm_auth_cache_check(&c, TDM_STR("x"), bob, pw, 2000, 30000));     /* other identity */
  assert_false(tdm_auth_cache_check(&c, none, bob, pw, 31000, 30000));            /* expired */
  assert_false(tdm_auth_cache_check(&c, none, bob, pw, 2000, 0));                 /* ttl 0: always verify */
  assert_int_equal(c.hits, 1);

  /* the password is not in the cache's memory */
  for (size_t i = 0; i < c.n; i++) {
    assert_null(memmem(&c.entries[i], sizeof(c.entries[i]), "secret", 6));
    assert_null(strstr(c.entries[i].user, "secret"));
  }
  /* a new verification replaces the old entry (password changed on the cluster) */
  assert_int_equal(tdm_auth_cache_put(&c, none, bob, wrong, 5000, 30000), 0);
  assert_int_equal(c.n, 1);
  assert_false(tdm_auth_cache_check(&c, none, bob, pw, 6000, 30000));
  assert_true(tdm_auth_cache_check(&c, none, bob, wrong, 6000, 30000));
  /* ttl 0 stores nothing; expiry drops the prefix of old entries */
  assert_int_equal(tdm_auth_cache_put(&c, none, TDM_STR("eve"), pw, 7000, 0), 0);
  assert_int_equal(c.n, 1);
  assert_int_equal(tdm_auth_cache_put(&c, none, TDM_STR("amy"), pw, 20000, 30000), 0);
  tdm_auth_cache_expire(&c, 36000, 30000);
  assert_int_equal(c.n, 1);
  assert_true(tdm_auth_cache_check(&c, none, TDM_STR("amy"), pw, 36000, 30000));
  tdm_auth_cache_free(&c);
}

static void test_cache_bound_and_salt(void **state)
{
  (void)state;
  tdm_auth_cache_t a, b;
  assert_int_equal(tdm_auth_cache_init(&a), 0);
  assert_int_equal(tdm_auth_cache_init(&b), 0);
  assert_memory_not_equal(a.salt, b.salt, TDM_AUTH_SALT_LEN); /* per-worker random salt */
  char user[32];
  for (int i = 0; i < TDM_AUTH_CACHE_MAX + 10; i++) {
    snprintf(user, sizeof(user), "u%d", i);
    assert_int_equal(tdm_auth_cache_put(&a, (tdm_str_t){ 0 }, tdm_str_from(user), TDM_STR("p"), (uint64_t)i, 1u << 30), 0);
  }
  assert_int_equal(a.n, TDM_AUTH_CACHE_MAX);
  assert_false(tdm_auth_cache_check(&a, (tdm_str_t){ 0 }, TDM_STR("u0"), TDM_STR("p"), 100, 1u << 30)); /* evicted */
  assert_true(tdm_auth_cache_check(&a, (tdm_str_t){ 0 }, TDM_STR("u1033"), TDM_STR("p"), 2000, 1u << 30));
  /* the same identity in another worker's cache has another digest */
  assert_int_equal(tdm_auth_cache_put(&b, (tdm_str_t){ 0 }, TDM_STR("u1033"), TDM_STR("p"), 0, 1u << 30), 0);
  assert_memory_not_equal(a.entries[a.n - 1].digest, b.entries[0].digest, TDM_AUTH_DIGEST_LEN);
  tdm_auth_cache_free(&a);
  tdm_auth_cache_free(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_credentials),
    cmocka_unit_test(test_mechanisms),
    cmocka_unit_test(test_cache),
    cmocka_unit_test(test_cache_bound_and_salt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
