/* TLS contexts: one SSL_CTX per leg built from PEM files (TLS 1.2 minimum, no renegotiation, no
 * compression), refcounted so existing connections keep the material they started with, and the
 * all-or-nothing rebuild of every context a configuration asks for (start-up and SIGHUP reload).
 * Every failure names the leg, the file and the cause; secrets (key contents) never appear. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tandem/net/tls.h>

static const char *const cluster_leg[TDM_CONF_CLUSTER_MAX] = { "ORIGIN", "TARGET" };

static bool set(const char *s) { return s && s[0]; }

static char *dup_or_empty(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  char *d = malloc(n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

void tdm__tls_queue_reason(char *buf, size_t len)
{
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  size_t used = strlen(buf);
  if (r && used < len) snprintf(buf + used, len - used, "%s", r);
  ERR_clear_error();
}

/* "cannot read <what> '<path>': <errno text>" when the file cannot be opened, so the common mistakes
 * (wrong path, permissions) read as such rather than as an OpenSSL reason. */
static int check_readable(const char *leg, const char *what, const char *path, char *err, size_t errlen)
{
  FILE *f = fopen(path, "r");
  if (f) {
    errno = 0;
    int ch = getc(f); /* a directory opens fine and fails here (EISDIR) */
    bool bad = ch == EOF && ferror(f);
    int e = errno;
    fclose(f);
    if (!bad && ch != EOF) return 0;
    if (!bad) {
      snprintf(err, errlen, "%s TLS: %s '%s' is empty", leg, what, path);
      return TDM_ETLS_FILE;
    }
    errno = e;
  }
  snprintf(err, errlen, "%s TLS: cannot read %s '%s': %s", leg, what, path, strerror(errno));
  return TDM_ETLS_FILE;
}

/* Formats "<prefix>: <openssl reason>" into err. */
static int file_error(char *err, size_t errlen, const char *fmt, const char *leg, const char *path)
{
  snprintf(err, errlen, fmt, leg, path);
  size_t used = strlen(err);
  if (used + 2 < errlen) {
    unsigned long e = ERR_peek_error();
    if (e && ERR_reason_error_string(e)) snprintf(err + used, errlen - used, " (%s)", ERR_reason_error_string(e));
  }
  ERR_clear_error();
  return TDM_ETLS_FILE;
}

static tdm_tls_ctx_t *ctx_alloc(const char *leg, bool server, const char *ca, const char *cert, const char *key)
{
  tdm_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) return NULL;
  atomic_init(&ctx->refs, 1);
  ctx->server = server;
  snprintf(ctx->leg, sizeof(ctx->leg), "%s", leg);
  ctx->ca_path = dup_or_empty(ca);
  ctx->cert_path = dup_or_empty(cert);
  ctx->key_path = dup_or_empty(key);
  ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx->ca_path || !ctx->cert_path || !ctx->key_path || !ctx->ssl) {
    tdm_tls_ctx_unref(ctx);
    return NULL;
  }
  SSL_CTX *s = ctx->ssl;
  /* TLS 1.2 and 1.3 only; TLS 1.2 renegotiation refused in both directions */
  SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
  SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* an idle connection gives its record buffers back */
  SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

void tdm_tls_ctx_unref(tdm_tls_ctx_t *ctx)
{
  if (!ctx) return;
  if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1) return;
  SSL_CTX_free(ctx->ssl);
  free(ctx->ca_path);
  free(ctx->cert_path);
  free(ctx->key_path);
  free(ctx);
}

/* Loads our certificate chain and key, and checks that they belong together. */
static int load_identity(tdm_tls_ctx_t *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
  int rc = check_readable(ctx->leg, "certificate file", cert, err, errlen);
  if (rc == 0) rc = check_readable(ctx->leg, "private key file", key, err, errlen);
  if (rc < 0) return rc;
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert) != 1)
    return file_error(err, errlen, "%s TLS: certificate file '%s' holds no usable PEM certificate", ctx->leg, cert);
  bool loaded = SSL_CTX_use_PrivateKey_file(ctx->ssl, key, SSL_FILETYPE_PEM) == 1;
  unsigned long e = loaded ? 0 : ERR_peek_error();
  bool mismatch = e && ERR_GET_LIB(e) == ERR_LIB_X509 &&
                  (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
  if (!loaded && !mismatch)
    return file_error(err, errlen, "%s TLS: private key file '%s' holds no usable PEM private key", ctx->leg, key);
  if (mismatch || SSL_CTX_check_private_key(ctx->ssl) != 1) {
    ERR_clear_error();
    snprintf(err, errlen, "%s TLS: private key file '%s' does not match certificate file '%s'", ctx->leg, key, cert);
    return TDM_ETLS_FILE;
  }
  return 0;
}

/* Loads the CA file as the trust anchor for the peer's chain. */
static int load_ca(tdm_tls_ctx_t *ctx, const char *ca, char *err, size_t errlen)
{
  int rc = check_readable(ctx->leg, "CA file", ca, err, errlen);
  if (rc < 0) return rc;
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx->ssl, ca, NULL) != 1)
    return file_error(err, errlen, "%s TLS: CA file '%s' holds no usable PEM certificate", ctx->leg, ca);
  return 0;
}

int tdm_tls_server_ctx_new(const char *cert, const char *key, const char *ca, bool require_client_auth,
                           tdm_tls_ctx_t **out, char *err, size_t errlen)
{
  *out = NULL;
  if (errlen) err[0] = '\0';
  if (!set(cert) || !set(key)) {
    snprintf(err, errlen, "client TLS: a certificate file and a private key file are both required");
    return TDM_EINVAL;
  }
  if (require_client_auth && !set(ca)) {
    snprintf(err, errlen, "client TLS: requiring client certificates needs a CA file");
    return TDM_EINVAL;
  }
  tdm_tls_ctx_t *ctx = ctx_alloc("client", true, ca, cert, key);
  if (!ctx) {
    snprintf(err, errlen, "client TLS: out of memory");
    return TDM_ENOMEM;
  }
  ctx->require_client_auth = require_client_auth;
  int rc = load_identity(ctx, cert, key, err, errlen);
  if (rc == 0 && set(ca)) rc = load_ca(ctx, ca, err, errlen);
  if (rc == 0 && require_client_auth) {
    /* the CertificateRequest lists the CA's subject so clients pick the right certificate */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (!names) {
      rc = file_error(err, errlen, "%s TLS: CA file '%s' holds no usable PEM certificate", ctx->leg, ca);
    } else {
      SSL_CTX_set_client_CA_list(ctx->ssl, names);
      SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
  }
  if (rc == 0) {
    /* resumed sessions must carry this context's id (required once peers are verified) */
    static const unsigned char sid[] = "tandem";
    SSL_CTX_set_session_id_context(ctx->ssl, sid, sizeof(sid) - 1);
    *out = ctx;
    return 0;
  }
  tdm_tls_ctx_unref(ctx);
  return rc;
}

int tdm_tls_client_ctx_new(const char *leg, const char *ca, const char *cert, const char *key, bool verify_hostname,
                           tdm_tls_ctx_t **out, char *err, size_t errlen)
{
  *out = NULL;
  if (errlen) err[0] = '\0';
  if (!leg) leg = "cluster";
  if (set(cert) != set(key)) {
    snprintf(err, errlen, "%s TLS: a client certificate and its private key go together", leg);
    return TDM_EINVAL;
  }
  tdm_tls_ctx_t *ctx = ctx_alloc(leg, false, ca, cert, key);
  if (!ctx) {
    snprintf(err, errlen, "%s TLS: out of memory", leg);
    return TDM_ENOMEM;
  }
  ctx->verify_hostname = verify_hostname;
  int rc = 0;
  if (set(ca)) rc = load_ca(ctx, ca, err, errlen);
  if (rc == 0) {
    /* the system store too (behaviour.md §11.4); its absence is not an error */
    if (SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) ERR_clear_error();
    SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
  }
  if (rc == 0 && set(cert)) rc = load_identity(ctx, cert, key, err, errlen);
  if (rc == 0) {
    *out = ctx;
    return 0;
  }
  tdm_tls_ctx_unref(ctx);
  return rc;
}

/* ---- sets ---- */

int tdm_tls_reload(tdm_tls_set_t *set_, const tdm_conf_t *conf, char *err, size_t errlen)
{
  tdm_tls_set_t fresh = { 0 };
  int rc = 0;
  if (errlen) err[0] = '\0';
  if (set(conf->proxy_tls_cert_path) || set(conf->proxy_tls_key_path)) {
    rc = tdm_tls_server_ctx_new(conf->proxy_tls_cert_path, conf->proxy_tls_key_path, conf->proxy_tls_ca_path,
                                conf->proxy_tls_require_client_auth, &fresh.client, err, errlen);
    fresh.allow_plaintext = conf->proxy_tls_allow_plaintext;
  }
  for (int c = 0; rc == 0 && c < TDM_CONF_CLUSTER_MAX; c++) {
    const tdm_conf_backend_t *b = &conf->cluster[c];
    if (!set(b->tls_server_ca_path) && !set(b->tls_client_cert_path) && !set(b->tls_client_key_path)) continue;
    rc = tdm_tls_client_ctx_new(cluster_leg[c], b->tls_server_ca_path, b->tls_client_cert_path,
                                b->tls_client_key_path, b->tls_verify_hostname, &fresh.cluster[c], err, errlen);
  }
  if (rc < 0) {
    tdm_tls_set_clear(&fresh); /* the old material stays */
    return rc;
  }
  tdm_tls_set_clear(set_);
  *set_ = fresh;
  return 0;
}

void tdm_tls_set_copy(tdm_tls_set_t *dst, const tdm_tls_set_t *src)
{
  dst->client = tdm_tls_ctx_ref(src->client);
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) dst->cluster[c] = tdm_tls_ctx_ref(src->cluster[c]);
  dst->allow_plaintext = src->allow_plaintext;
}

void tdm_tls_set_clear(tdm_tls_set_t *s)
{
  tdm_tls_ctx_unref(s->client);
  for (int c = 0; c < TDM_CONF_CLUSTER_MAX; c++) tdm_tls_ctx_unref(s->cluster[c]);
  memset(s, 0, sizeof(*s));
}

/* ---- error names ---- */

const char *tdm_tls_strerror(int err) { return tdm_strerror(err); }

bool tdm_tls_is_error(int err)
{
  switch (err) {
  case TDM_ETLS_HANDSHAKE:
  case TDM_ETLS_VERIFY:
  case TDM_ETLS_REJECTED:
  case TDM_ETLS_PLAINTEXT:
  case TDM_ETLS_PROTOCOL:
  case TDM_ETLS_FILE: return true;
  default: return false;
  }
}
