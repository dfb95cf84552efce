/* SASL PLAIN server side, token level (behaviour.md §2.2 step 3), and the per-worker verified-identity
 * cache (step 4). Invariant: the cache never stores a password, only a salted SHA-256 of it, and
 * compares digests in constant time; a lookup never refreshes an entry (only a backend verification
 * does), so an identity is re-verified at least every auth_cache_ttl_ms. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <tandem/frontend/auth.h>

void tdm_sasl_parse(const uint8_t *token, int32_t len, tdm_sasl_token_t *out)
{
  memset(out, 0, sizeof(*out));
  out->kind = TDM_SASL_OTHER;
  if (!token || len <= 0) {
    snprintf(out->mechanism, sizeof(out->mechanism), "an empty token");
    return;
  }
  size_t n = (size_t)len;
  size_t nul[2];
  size_t nuls = 0;
  for (size_t i = 0; i < n; i++) {
    if (token[i] != 0) continue;
    if (nuls < 2) nul[nuls] = i;
    nuls++;
  }
  if (nuls == 0) {
    if (n == 5 && memcmp(token, "PLAIN", 5) == 0) {
      out->kind = TDM_SASL_SELECT_PLAIN;
      return;
    }
    /* a mechanism name: quote it back, printable ASCII only */
    size_t k = TDM_MIN(n, (size_t)TDM_AUTH_MECHANISM_MAX);
    for (size_t i = 0; i < k; i++) out->mechanism[i] = (token[i] >= 0x20 && token[i] < 0x7f) ? (char)token[i] : '?';
    out->mechanism[k] = '\0';
    return;
  }
  /* RFC 4616: exactly two NULs, a non-empty authentication id; passwords contain no NUL */
  if (nuls != 2 || nul[1] == nul[0] + 1) {
    snprintf(out->mechanism, sizeof(out->mechanism), "a malformed PLAIN token");
    return;
  }
  out->kind = TDM_SASL_CREDENTIALS;
  out->authzid = (tdm_str_t){ (const char *)token, nul[0] };
  out->user = (tdm_str_t){ (const char *)token + nul[0] + 1, nul[1] - nul[0] - 1 };
  out->password = (tdm_str_t){ (const char *)token + nul[1] + 1, n - nul[1] - 1 };
  if (out->authzid.len == 0) out->authzid.ptr = NULL;
  if (out->password.len == 0) out->password.ptr = NULL;
}

int tdm_sasl_error_text(const tdm_sasl_token_t *t, char *buf, size_t cap)
{
  return snprintf(buf, cap, "tandem supports only SASL PLAIN; got %s", t->mechanism);
}

/* ---- verified-identity cache ---- */

int tdm_auth_cache_init(tdm_auth_cache_t *c)
{
  memset(c, 0, sizeof(*c));
  return RAND_bytes(c->salt, sizeof(c->salt)) == 1 ? 0 : TDM_ENOMEM;
}

/* SHA-256 over the salt and each part, each part length-prefixed so that no two identities collide. */
static void digest(const tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user, tdm_str_t password,
                   uint8_t out[TDM_AUTH_DIGEST_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int olen = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
            EVP_DigestUpdate(ctx, c->salt, sizeof(c->salt)) == 1;
  const tdm_str_t parts[3] = { authzid, user, password };
  for (size_t i = 0; ok && i < 3; i++) {
    uint8_t len[4] = { (uint8_t)(parts[i].len >> 24), (uint8_t)(parts[i].len >> 16), (uint8_t)(parts[i].len >> 8),
                       (uint8_t)parts[i].len };
    ok = EVP_DigestUpdate(ctx, len, 4) == 1 && (parts[i].len == 0 || EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len) == 1);
  }
  ok = ok && EVP_DigestFinal_ex(ctx, out, &olen) == 1 && olen == TDM_AUTH_DIGEST_LEN;
  /* on failure the digest is random garbage that matches nothing: a lookup misses, a put is useless */
  if (!ok) RAND_bytes(out, TDM_AUTH_DIGEST_LEN);
  EVP_MD_CTX_free(ctx);
}

static bool same(const char *s, tdm_str_t t) { return tdm_str_eq(tdm_str_from(s), t); }

static tdm_auth_entry_t *find(tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user)
{
  for (size_t i = 0; i < c->n; i++)
    if (same(c->entries[i].authzid, authzid) && same(c->entries[i].user, user)) return &c->entries[i];
  return NULL;
}

static void drop(tdm_auth_cache_t *c, size_t i)
{
  free(c->entries[i].authzid);
  free(c->entries[i].user);
  memmove(&c->entries[i], &c->entries[i + 1], (c->n - i - 1) * sizeof(c->entries[0]));
  c->n--;
}

bool tdm_auth_cache_check(tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user, tdm_str_t password,
                          uint64_t now_ms, uint64_t ttl_ms)
{
  tdm_auth_entry_t *e = ttl_ms ? find(c, authzid, user) : NULL;
  if (!e || now_ms >= e->verified_ms + ttl_ms) {
    c->misses++;
    return false;
  }
  uint8_t d[TDM_AUTH_DIGEST_LEN];
  digest(c, authzid, user, password, d);
  bool ok = CRYPTO_memcmp(d, e->digest, sizeof(d)) == 0;
  OPENSSL_cleanse(d, sizeof(d));
  if (ok) c->hits++;
  else c->misses++;
  return ok;
}

static char *dup_str(tdm_str_t s)
{
  char *p = malloc(s.len + 1);
  if (!p) return NULL;
  if (s.len) memcpy(p, s.ptr, s.len);
  p[s.len] = '\0';
  return p;
}

int tdm_auth_cache_put(tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user, tdm_str_t password,
                       uint64_t now_ms, uint64_t ttl_ms)
{
  if (!ttl_ms) return 0;
  tdm_auth_entry_t *old = find(c, authzid, user);
  if (old) drop(c, (size_t)(old - c->entries));
  tdm_auth_cache_expire(c, now_ms, ttl_ms);
  if (c->n == TDM_AUTH_CACHE_MAX) drop(c, 0);
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 8;
    tdm_auth_entry_t *e = realloc(c->entries, cap * sizeof(*e));
    if (!e) return TDM_ENOMEM;
    c->entries = e;
    c->cap = cap;
  }
  tdm_auth_entry_t *e = &c->entries[c->n];
  e->authzid = dup_str(authzid);
  e->user = dup_str(user);
  if (!e->authzid || !e->user) {
    free(e->authzid);
    free(e->user);
    return TDM_ENOMEM;
  }
  digest(c, authzid, user, password, e->digest);
  e->verified_ms = now_ms;
  c->n++;
  return 0;
}

void tdm_auth_cache_forget(tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user)
{
  tdm_auth_entry_t *e = find(c, authzid, user);
  if (e) drop(c, (size_t)(e - c->entries));
}

void tdm_auth_cache_expire(tdm_auth_cache_t *c, uint64_t now_ms, uint64_t ttl_ms)
{
  /* entries are in verification order, so the expired ones are a prefix */
  size_t k = 0;
  while (k < c->n && now_ms >= c->entries[k].verified_ms + ttl_ms) k++;
  if (k == 0) return;
  for (size_t i = 0; i < k; i++) {
    free(c->entries[i].authzid);
    free(c->entries[i].user);
  }
  memmove(c->entries, c->entries + k, (c->n - k) * sizeof(c->entries[0]));
  c->n -= k;
}

void tdm_auth_cache_free(tdm_auth_cache_t *c)
{
  for (size_t i = 0; i < c->n; i++) {
    free(c->entries[i].authzid);
    free(c->entries[i].user);
  }
  free(c->entries);
  OPENSSL_cleanse(c, sizeof(*c));
}
