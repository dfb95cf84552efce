/* TLS for every leg: OpenSSL over a memory-BIO pair behind the transport ops of transport.h, so
 * connection and protocol code never know whether a socket is plain or TLS. Refcounted contexts
 * (client-facing server role, cluster-facing client role) built from files and rebuilt on reload
 * (existing connections keep theirs), per-connection SNI and hostname / IP-SAN checks, the first-byte
 * sniff behind proxy_tls_allow_plaintext, and failures turned into messages a person can act on:
 * which leg, which file, which cause. TLS 1.2 minimum, 1.3 allowed, no renegotiation. */
#ifndef TANDEM_NET_TLS_H
#define TANDEM_NET_TLS_H

#include <stdatomic.h>
#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/net/conn.h>

struct ssl_st;     /* OpenSSL's SSL, opaque here */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX, opaque here */

/* TLS error codes: TDM_ETLS_HANDSHAKE, _VERIFY (we refused the peer's certificate), _REJECTED (the
 * peer refused ours), _PLAINTEXT, _PROTOCOL (after the handshake) and _FILE (context building), -20100
 * and down. They live in TDM_ERRNO_MAP (common.h), so tdm_strerror() names them. */

#define TDM_TLS_ERR_MAX 512   /* longest message, NUL included */
#define TDM_TLS_NAME_MAX 256  /* longest server name (SNI / checked name), NUL included */
#define TDM_TLS_LEG_MAX 16    /* "client", "ORIGIN", "TARGET" */

/* tdm_strerror(), kept for callers of this module. Never NULL. */
const char *tdm_tls_strerror(int err);
/* Whether err is one of TDM_ETLS_* (a socket refused or dropped for a TLS reason). */
bool tdm_tls_is_error(int err);

/* ---- contexts ---- */

/* One immutable OpenSSL context plus what messages need. Shared by every connection made from it, on
 * any worker: the refcount is atomic (taken at connection setup and reload, never per request). A
 * connection holds a reference for its whole life, so a reload never changes an existing session. */
typedef struct tdm_tls_ctx_s {
  _Atomic unsigned refs;          /* holders: the owner's set, workers' copies, live connections */
  struct ssl_ctx_st *ssl;         /* the OpenSSL SSL_CTX (configured once, then read-only) */
  bool server;                    /* server role (client-facing leg) or client role (cluster legs) */
  bool require_client_auth;       /* server role: a client certificate chaining to ca_path is required */
  bool verify_hostname;           /* client role: check the name / IP SAN (the chain is always checked) */
  char leg[TDM_TLS_LEG_MAX];      /* "client", "ORIGIN" or "TARGET": first word of every message */
  char *ca_path;                  /* CA file ("" when none) */
  char *cert_path;                /* our certificate chain ("" when none) */
  char *key_path;                 /* our private key ("" when none) */
} tdm_tls_ctx_t;

/* Client-facing context (server role) for the leg "client". cert and key are required; ca may be NULL
 * or "" unless require_client_auth. On failure *out is NULL and err holds a message naming the file
 * and the cause (unreadable, no PEM certificate / key, key does not match the certificate).
 * 0, TDM_ETLS_FILE, TDM_EINVAL or TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_tls_server_ctx_new(const char *cert, const char *key, const char *ca,
                                         bool require_client_auth, tdm_tls_ctx_t **out, char *err,
                                         size_t errlen);
/* Cluster-facing context (client role) for leg "ORIGIN" / "TARGET". The chain is verified against ca
 * plus the system store; cert and key are both set (mTLS) or both NULL / "". verify_hostname false
 * skips only the name check (the caller logs the WARN). Same returns as above. */
TDM_MUSTCHECK int tdm_tls_client_ctx_new(const char *leg, const char *ca, const char *cert, const char *key,
                                         bool verify_hostname, tdm_tls_ctx_t **out, char *err, size_t errlen);

static inline tdm_tls_ctx_t *tdm_tls_ctx_ref(tdm_tls_ctx_t *ctx)
{
  if (ctx) atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
  return ctx;
}
/* Drops a reference; the last one frees the context. NULL is ignored. Any thread. */
void tdm_tls_ctx_unref(tdm_tls_ctx_t *ctx);

/* Every context a configuration asks for. A zeroed set is valid: no TLS anywhere. */
typedef struct tdm_tls_set_s {
  tdm_tls_ctx_t *client;                        /* client-facing (proxy_tls_*); NULL: plaintext clients */
  tdm_tls_ctx_t *cluster[TDM_CONF_CLUSTER_MAX]; /* per cluster ({c}_tls_*); NULL: plaintext to that cluster */
  bool allow_plaintext;                         /* proxy_tls_allow_plaintext (only meaningful with client) */
} tdm_tls_set_t;

/* Builds every context conf asks for (start-up and each reload, on the main thread). All or nothing:
 * on success the old contexts in *set are released and replaced; on any failure *set is untouched (the
 * old material stays in force for new connections) and err holds the message of the first failure.
 * 0, TDM_ETLS_FILE, TDM_EINVAL or TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_tls_reload(tdm_tls_set_t *set, const tdm_conf_t *conf, char *err, size_t errlen);
/* dst = src with a reference on each context (handing a set to a worker). dst must be cleared. */
void tdm_tls_set_copy(tdm_tls_set_t *dst, const tdm_tls_set_t *src);
/* Releases every context and zeroes the set. */
void tdm_tls_set_clear(tdm_tls_set_t *set);

/* The name a cluster connection presents (SNI) and checks: {c}_tls_server_name when set, else the
 * contact host. */
static inline const char *tdm_tls_server_name(const tdm_conf_backend_t *b, const char *contact_host)
{
  return b->tls_server_name && b->tls_server_name[0] ? b->tls_server_name : contact_host;
}

/* ---- connections ---- */

/* Called once when the handshake completes (status 0; also for a connection the sniff found
 * plaintext, where tdm_tls_active() is false). Failures never come here: the connection closes with
 * a TDM_ETLS_* reason and tdm_tls_error() says why. Runs with a reference held. */
typedef void (*tdm_tls_handshake_cb)(tdm_conn_t *c, int status);

/* The first byte a client sends tells TLS from plaintext CQL: a TLS record carrying a ClientHello
 * starts with 0x16 (handshake), a CQL frame with its version byte (0x01..0x05, 0x41, 0x42). */
#define TDM_TLS_RECORD_HANDSHAKE 0x16
static inline bool tdm_tls_sniff_is_tls(uint8_t first_byte) { return first_byte == TDM_TLS_RECORD_HANDSHAKE; }

/* Client-facing: puts an accepted connection behind TLS (server role). Call after tdm_conn_open and
 * before tdm_conn_read_start. The first byte decides: a ClientHello proceeds; anything else is
 * plaintext, kept on the plain TCP transport when allow_plaintext, else refused (TDM_ETLS_PLAINTEXT).
 * 0, TDM_EINVAL (ctx not a server context, or the connection already started), TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_tls_server(tdm_conn_t *c, tdm_tls_ctx_t *ctx, bool allow_plaintext, tdm_tls_handshake_cb cb);
/* Cluster-facing: puts a connection behind TLS (client role). Call after tdm_conn_init and before
 * tdm_conn_connect. server_name is sent as SNI when it is a DNS name (never for an IP literal) and,
 * when the context verifies hostnames, checked against the certificate's DNS or IP SANs. The
 * handshake starts once connected; writes queued meanwhile leave encrypted after it.
 * 0, TDM_EINVAL (not a client context, empty or too long name with verification on), TDM_ENOMEM. */
TDM_MUSTCHECK int tdm_tls_client(tdm_conn_t *c, tdm_tls_ctx_t *ctx, const char *server_name, tdm_tls_handshake_cb cb);

/* What a TLS connection negotiated, for logs, status and tests. Strings are copied. */
typedef struct tdm_tls_info_s {
  bool active;                     /* TLS in use (false: plain transport, or sniffed plaintext) */
  bool established;                /* handshake completed */
  bool peer_close_notify;          /* the peer ended the session with close_notify */
  char version[16];                /* "TLSv1.3", "TLSv1.2" */
  char cipher[64];                 /* negotiated cipher suite */
  char sni[TDM_TLS_NAME_MAX];      /* server role: name the client sent; client role: name we sent */
  char peer_subject[256];          /* peer certificate subject CN ("" when none) */
} tdm_tls_info_t;

/* Fills info (zeroed first). Returns whether the connection uses TLS. */
bool tdm_tls_info(const tdm_conn_t *c, tdm_tls_info_t *info);
/* Whether the connection runs on the TLS transport (false after a plaintext sniff). */
bool tdm_tls_active(const tdm_conn_t *c);
/* Why the TLS layer failed the connection, e.g. "ORIGIN TLS: certificate has expired (server
 * certificate, CA file '/etc/tandem/ca.pem')", or NULL. Valid until the transport closes the
 * socket: read it in on_close. */
const char *tdm_tls_error(const tdm_conn_t *c);

/* ---- internal to src/net/tls*.c (rule 2 wants src/net/internal.h, which is not this module's file) ---- */

/* Formats the cause of a failed handshake or session into err: our verification of the peer (peer_name:
 * the name we checked, may be ""), an alert received from the peer (-1: none), or the OpenSSL error
 * queue (which it drains). Returns a TDM_ETLS_* code. */
int tdm__tls_explain(const tdm_tls_ctx_t *ctx, const struct ssl_st *ssl, int alert_received, bool handshake_done,
                     const char *peer_name, char *err, size_t errlen);
/* Appends the reason of the oldest queued OpenSSL error ("" when none) and clears the queue. */
void tdm__tls_queue_reason(char *buf, size_t len);

#endif
