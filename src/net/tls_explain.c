/* Why a TLS session failed, in words an operator can act on: "<leg> TLS: <cause> (<which certificate,
 * which file>)". Sources, in order of precedence: the server's "no client certificate" error, our own
 * verification of the peer's chain and name, an alert the peer sent (it rejected us), then the OpenSSL
 * error queue (protocol version, not TLS at all, ...). */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <tandem/net/tls.h>

/* The trust anchors named in messages about the peer's certificate. */
static void ca_desc(const tdm_tls_ctx_t *ctx, char *buf, size_t len)
{
  if (ctx->ca_path && ctx->ca_path[0])
    snprintf(buf, len, "CA file '%s'", ctx->ca_path);
  else
    snprintf(buf, len, "system CA store");
}

/* Our certificate, named in messages about the peer rejecting it. */
static void own_desc(const tdm_tls_ctx_t *ctx, char *buf, size_t len)
{
  if (ctx->cert_path && ctx->cert_path[0])
    snprintf(buf, len, "our certificate file '%s'", ctx->cert_path);
  else
    snprintf(buf, len, "no client certificate configured");
}

/* Our verification of the peer failed with X509 code v. */
static int explain_verify(const tdm_tls_ctx_t *ctx, long v, const char *peer_name, char *err, size_t errlen)
{
  const char *whose = ctx->server ? "client certificate" : "server certificate";
  char ca[300];
  ca_desc(ctx, ca, sizeof(ca));
  switch (v) {
  case X509_V_ERR_CERT_HAS_EXPIRED:
    snprintf(err, errlen, "%s TLS: certificate has expired (%s, %s)", ctx->leg, whose, ca);
    break;
  case X509_V_ERR_CERT_NOT_YET_VALID:
    snprintf(err, errlen, "%s TLS: certificate is not yet valid (%s, %s)", ctx->leg, whose, ca);
    break;
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
  case X509_V_ERR_CERT_UNTRUSTED:
    snprintf(err, errlen, "%s TLS: unknown CA (%s, %s)", ctx->leg, whose, ca);
    break;
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH:
    snprintf(err, errlen, "%s TLS: hostname mismatch: certificate is not valid for '%s' (%s, %s)", ctx->leg,
             peer_name ? peer_name : "", whose, ca);
    break;
  default:
    snprintf(err, errlen, "%s TLS: %s (%s, %s)", ctx->leg, X509_verify_cert_error_string(v), whose, ca);
    break;
  }
  return TDM_ETLS_VERIFY;
}

/* The peer sent a fatal alert: it refused our certificate, or the handshake as a whole. */
static int explain_alert(const tdm_tls_ctx_t *ctx, int alert, char *err, size_t errlen)
{
  char own[300];
  own_desc(ctx, own, sizeof(own));
  switch (alert) {
  case SSL_AD_CERTIFICATE_EXPIRED:
    snprintf(err, errlen, "%s TLS: peer rejected our certificate: certificate has expired (%s)", ctx->leg, own);
    return TDM_ETLS_REJECTED;
  case SSL_AD_UNKNOWN_CA:
    snprintf(err, errlen, "%s TLS: peer rejected our certificate: unknown CA (%s)", ctx->leg, own);
    return TDM_ETLS_REJECTED;
  case SSL_AD_BAD_CERTIFICATE:
  case SSL_AD_UNSUPPORTED_CERTIFICATE:
  case SSL_AD_CERTIFICATE_REVOKED:
  case SSL_AD_CERTIFICATE_UNKNOWN:
  case SSL_AD_UNRECOGNIZED_NAME:
    snprintf(err, errlen, "%s TLS: peer rejected our certificate: %s (%s)", ctx->leg, SSL_alert_desc_string_long(alert),
             own);
    return TDM_ETLS_REJECTED;
  case SSL_AD_CERTIFICATE_REQUIRED:
    snprintf(err, errlen, "%s TLS: peer requires a client certificate (%s)", ctx->leg, own);
    return TDM_ETLS_REJECTED;
  case SSL_AD_PROTOCOL_VERSION:
    snprintf(err, errlen, "%s TLS: peer refused the protocol version (tandem offers TLS 1.2 and 1.3 only)", ctx->leg);
    return TDM_ETLS_HANDSHAKE;
  case SSL_AD_HANDSHAKE_FAILURE:
    if (!ctx->server && !(ctx->cert_path && ctx->cert_path[0])) {
      /* TLS 1.2 servers answer a missing client certificate this way */
      snprintf(err, errlen, "%s TLS: peer aborted the handshake (handshake failure; %s: does it require one?)",
               ctx->leg, own);
      return TDM_ETLS_REJECTED;
    }
    snprintf(err, errlen, "%s TLS: peer aborted the handshake (handshake failure: no common cipher or parameters)",
             ctx->leg);
    return TDM_ETLS_HANDSHAKE;
  default:
    snprintf(err, errlen, "%s TLS: peer sent alert '%s'", ctx->leg, SSL_alert_desc_string_long(alert));
    return TDM_ETLS_HANDSHAKE;
  }
}

int tdm__tls_explain(const tdm_tls_ctx_t *ctx, const SSL *ssl, int alert_received, bool handshake_done,
                     const char *peer_name, char *err, size_t errlen)
{
  unsigned long e = ERR_peek_error();
  int reason = e ? ERR_GET_REASON(e) : 0;

  if (ctx->server && reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    char ca[300];
    ca_desc(ctx, ca, sizeof(ca));
    snprintf(err, errlen, "%s TLS: peer did not return a certificate (client certificates are required, %s)",
             ctx->leg, ca);
    ERR_clear_error();
    return TDM_ETLS_VERIFY;
  }
  long v = SSL_get_verify_result(ssl);
  if (v != X509_V_OK) {
    ERR_clear_error();
    return explain_verify(ctx, v, peer_name, err, errlen);
  }
  if (alert_received >= 0) {
    ERR_clear_error();
    return explain_alert(ctx, alert_received, err, errlen);
  }
  int code = handshake_done ? TDM_ETLS_PROTOCOL : TDM_ETLS_HANDSHAKE;
  switch (reason) {
  case SSL_R_WRONG_VERSION_NUMBER:
  case SSL_R_HTTP_REQUEST:
  case SSL_R_HTTPS_PROXY_REQUEST:
  case SSL_R_PACKET_LENGTH_TOO_LONG:
    snprintf(err, errlen, "%s TLS: peer is not speaking TLS (is TLS enabled on both sides?)", ctx->leg);
    break;
  case SSL_R_UNSUPPORTED_PROTOCOL:
  case SSL_R_NO_PROTOCOLS_AVAILABLE:
  case SSL_R_VERSION_TOO_LOW:
    snprintf(err, errlen, "%s TLS: protocol version not accepted (tandem accepts TLS 1.2 and 1.3 only)", ctx->leg);
    break;
  case SSL_R_NO_SHARED_CIPHER:
    snprintf(err, errlen, "%s TLS: no cipher suite in common with the peer", ctx->leg);
    break;
  case SSL_R_NO_RENEGOTIATION:
    snprintf(err, errlen, "%s TLS: peer attempted a renegotiation, which tandem refuses", ctx->leg);
    code = TDM_ETLS_PROTOCOL;
    break;
  default: {
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "%s TLS: %s failed: %s", ctx->leg, handshake_done ? "session" : "handshake",
             r ? r : "unexpected error");
    break;
  }
  }
  ERR_clear_error();
  return code;
}
