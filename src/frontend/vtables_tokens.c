/* §9.2 arithmetic of the virtual tables: the token ring tandem's instances advertise (zdm-proxy's
 * formula, so mixed fleets agree), host ids derived from instance addresses (RFC 4122 v5, SHA-1, nil
 * namespace) and the ids of intercepted prepared statements (md5). Invariant for tokens: every
 * intermediate fits in 64 unsigned bits (step · k < 2^64 because k < T·N), so no 128-bit type is
 * needed and the result is exact. */
#include <openssl/evp.h>

#include <tandem/frontend/vtables.h>

/* floor(2^64 / m) for m >= 2, from UINT64_MAX = 2^64 - 1 = q·m + r: when r == m - 1, m divides 2^64
 * and the quotient is one more. */
static uint64_t step_of(uint64_t m)
{
  uint64_t q = UINT64_MAX / m;
  uint64_t r = UINT64_MAX % m;
  return r == m - 1 ? q + 1 : q;
}

int64_t tdm_vtables_token(uint32_t i, uint32_t n, uint32_t t, uint32_t num_tokens)
{
  TDM_ASSERT(n >= 1 && num_tokens >= 1 && i < n && t < num_tokens);
  uint64_t m = (uint64_t)n * num_tokens;
  uint64_t k = (uint64_t)t * n + i; /* < m */
  /* m == 1: the step is 2^64 but k is 0, so the product is 0 */
  uint64_t x = m == 1 ? 0 : step_of(m) * k;
  /* x - 2^63 as a signed value, without converting an out-of-range unsigned */
  const uint64_t half = (uint64_t)1 << 63;
  if (x >= half) return (int64_t)(x - half);
  return -(int64_t)(half - x - 1) - 1;
}

void tdm_vtables_host_id(const uint8_t *addr, size_t addr_len, uint8_t out[16])
{
  uint8_t name[16] = { 0 };
  if (addr_len == 4) {
    name[10] = 0xff;
    name[11] = 0xff;
    memcpy(name + 12, addr, 4);
  } else if (addr_len == 16) {
    memcpy(name, addr, 16);
  }
  static const uint8_t nil_ns[16] = { 0 };
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(ctx, nil_ns, 16) == 1 &&
            EVP_DigestUpdate(ctx, name, 16) == 1 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 16;
  EVP_MD_CTX_free(ctx);
  TDM_BUG_ON(!ok); /* SHA-1 of 32 bytes cannot fail short of OpenSSL being unusable */
  memcpy(out, md, 16);
  out[6] = (uint8_t)((out[6] & 0x0f) | 0x50); /* version 5 */
  out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void tdm_vtables_statement_id(tdm_str_t keyspace, tdm_str_t query, uint8_t out[16])
{
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, "tandem:", 7) == 1 &&
            (keyspace.len == 0 || EVP_DigestUpdate(ctx, keyspace.ptr, keyspace.len) == 1) &&
            EVP_DigestUpdate(ctx, ":", 1) == 1 && (query.len == 0 || EVP_DigestUpdate(ctx, query.ptr, query.len) == 1) &&
            EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 16;
  EVP_MD_CTX_free(ctx);
  TDM_BUG_ON(!ok);
  memcpy(out, md, 16);
}
