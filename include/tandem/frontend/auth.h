/* Client authentication pieces that need no connection (behaviour.md §2.2 steps 3-4): the server side
 * of SASL PLAIN token parsing (`[authzid]\0user\0password`, the DSE `PLAIN` mechanism selection,
 * anything else named for the BAD_CREDENTIALS text) and the per-worker verified-identity cache. The
 * cache keeps (authzid, user), an expiry and SHA-256(salt || identity || password) with a random
 * per-worker salt: never the password. Failures are never cached (callers only put successes). */
#ifndef TANDEM_FRONTEND_AUTH_H
#define TANDEM_FRONTEND_AUTH_H

#include <tandem/common.h>
#include <tandem/util/str.h>

#define TDM_AUTH_CACHE_MAX 1024     /* identities kept per worker; the oldest goes first */
#define TDM_AUTH_DIGEST_LEN 32      /* SHA-256 */
#define TDM_AUTH_SALT_LEN 16        /* random per worker */
#define TDM_AUTH_MECHANISM_MAX 64   /* bytes of an unknown mechanism quoted back to the client */

typedef enum tdm_sasl_kind_e {
  TDM_SASL_CREDENTIALS = 0, /* a PLAIN token: authzid (may be empty), user (non-empty), password */
  TDM_SASL_SELECT_PLAIN,    /* exactly "PLAIN": DSE mechanism selection, answer PLAIN-START */
  TDM_SASL_OTHER,           /* anything else: BAD_CREDENTIALS naming `mechanism` */
} tdm_sasl_kind_t;

typedef struct tdm_sasl_token_s {
  tdm_sasl_kind_t kind;                      /* what the token is */
  tdm_str_t authzid;                         /* CREDENTIALS: authorization id (borrowed from the token) */
  tdm_str_t user;                            /* CREDENTIALS: authentication id (borrowed) */
  tdm_str_t password;                        /* CREDENTIALS: password (borrowed; secret) */
  char mechanism[TDM_AUTH_MECHANISM_MAX + 1]; /* OTHER: printable description for the error text */
} tdm_sasl_token_t;

/* Classifies one AUTH_RESPONSE token (len < 0: a null token). Never fails; never reads past len. */
void tdm_sasl_parse(const uint8_t *token, int32_t len, tdm_sasl_token_t *out);

/* BAD_CREDENTIALS text for an OTHER token: `tandem supports only SASL PLAIN; got <mechanism>`. */
int tdm_sasl_error_text(const tdm_sasl_token_t *t, char *buf, size_t cap);

typedef struct tdm_auth_entry_s {
  char *authzid;                       /* authorization id ("" if none) */
  char *user;                          /* user */
  uint8_t digest[TDM_AUTH_DIGEST_LEN]; /* SHA-256(salt, authzid, user, password) */
  uint64_t verified_ms;                /* loop time of the verification */
} tdm_auth_entry_t;

/* A zeroed cache is valid but has an all-zero salt: call tdm_auth_cache_init before use. */
typedef struct tdm_auth_cache_s {
  uint8_t salt[TDM_AUTH_SALT_LEN]; /* random, per worker, never leaves the process */
  tdm_auth_entry_t *entries;       /* oldest first */
  size_t n;                        /* entries used */
  size_t cap;                      /* entries allocated */
  uint64_t hits;                   /* verifications answered from the cache */
  uint64_t misses;                 /* lookups that needed a backend round trip */
} tdm_auth_cache_t;

/* Draws the salt (OpenSSL RAND_bytes). 0 or TDM_ENOMEM when no randomness is available. */
TDM_MUSTCHECK int tdm_auth_cache_init(tdm_auth_cache_t *c);
/* True when (authzid, user) was verified less than ttl_ms before now_ms with this very password. */
bool tdm_auth_cache_check(tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user, tdm_str_t password,
                          uint64_t now_ms, uint64_t ttl_ms);
/* Records a successful verification (replacing the identity's previous entry). ttl_ms 0 stores
 * nothing. 0 or TDM_ENOMEM (the cache is then unchanged). */
int tdm_auth_cache_put(tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user, tdm_str_t password,
                       uint64_t now_ms, uint64_t ttl_ms);
/* Drops the identity's entry, if any (the cluster refused what the cache vouched for). */
void tdm_auth_cache_forget(tdm_auth_cache_t *c, tdm_str_t authzid, tdm_str_t user);
/* Drops entries older than ttl_ms. */
void tdm_auth_cache_expire(tdm_auth_cache_t *c, uint64_t now_ms, uint64_t ttl_ms);
void tdm_auth_cache_free(tdm_auth_cache_t *c);

#endif
