/* libFuzzer target for the SASL PLAIN token parser and the verified-identity cache (MI-07): any token
 * classifies without a crash or over-read; credentials borrow from the token and round-trip through
 * the cache (same password hits, any other misses); error texts stay bounded and printable. */
#include <tandem/frontend/auth.h>

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "fuzz_sasl: check failed at line %d: %s\n", __LINE__, #cond); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(tdm_str_t s, const uint8_t *data, size_t size)
{
  return s.len == 0 || ((const uint8_t *)s.ptr >= data && (const uint8_t *)s.ptr + s.len <= data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static tdm_auth_cache_t cache;
  static bool ready;
  if (!ready) {
    if (tdm_auth_cache_init(&cache) < 0) abort();
    ready = true;
  }
  if (size > INT32_MAX) return 0;
  tdm_sasl_token_t t;
  tdm_sasl_parse(data, (int32_t)size, &t);
  CHECK(t.kind == TDM_SASL_CREDENTIALS || t.kind == TDM_SASL_SELECT_PLAIN || t.kind == TDM_SASL_OTHER);
  if (t.kind == TDM_SASL_CREDENTIALS) {
    CHECK(inside(t.authzid, data, size) && inside(t.user, data, size) && inside(t.password, data, size));
    CHECK(t.user.len > 0 && t.authzid.len + t.user.len + t.password.len + 2 == size);
    CHECK(memchr(t.password.ptr ? t.password.ptr : "", 0, t.password.len) == NULL);
    CHECK(tdm_auth_cache_put(&cache, t.authzid, t.user, t.password, 1000, 60000) == 0);
    CHECK(tdm_auth_cache_check(&cache, t.authzid, t.user, t.password, 2000, 60000));
    tdm_str_t other = { "x", 1 };
    if (!tdm_str_eq(other, t.password)) CHECK(!tdm_auth_cache_check(&cache, t.authzid, t.user, other, 2000, 60000));
    if (cache.n > 100) tdm_auth_cache_expire(&cache, 1u << 30, 1);
  } else if (t.kind == TDM_SASL_SELECT_PLAIN) {
    CHECK(size == 5 && memcmp(data, "PLAIN", 5) == 0);
  } else {
    size_t len = strlen(t.mechanism);
    CHECK(len > 0 && len <= TDM_AUTH_MECHANISM_MAX);
    for (size_t i = 0; i < len; i++) CHECK(t.mechanism[i] >= 0x20 && t.mechanism[i] < 0x7f);
    char msg[160];
    CHECK(tdm_sasl_error_text(&t, msg, sizeof(msg)) > 0);
  }
  return 0;
}
