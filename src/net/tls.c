/* The TLS transport: OpenSSL driven through a memory-BIO pair on the connection's uv_tcp_t, behind the
 * same ops table as plain TCP (transport.h), so the connection above sees only plaintext.
 *
 *   socket --ciphertext--> pool block --BIO_write--> rbio --SSL_do_handshake / SSL_read--> conn rbuf
 *                                                                  (tdm_conn_on_alloc + on_read)
 *   conn write(iovecs) --coalesce into 16 KiB--> SSL_write --> wbio --BIO_read--> out --uv_write--> socket
 *
 * Invariants:
 *   - at most one socket write in flight (it uses the conn's write_req); the conn's own write (one at a
 *     time, transport.h) is reported done when the socket write carrying the end of its ciphertext
 *     completes (out_completes), or cancelled from the close callback if it never left; a large
 *     write is encrypted OUT_CHUNK bytes per socket write, so buffers stay small and reused;
 *   - plaintext never stays inside OpenSSL across callbacks: every socket read is decrypted completely
 *     into the conn's buffer, so pausing the conn needs nothing more than stopping the socket;
 *   - the socket is read while the owner wants input, and always while a handshake is under way;
 *   - a failure records its message, stops reading, flushes the alert, then closes with TDM_ETLS_*;
 *   - server role sniffs the first byte: 0x16 proceeds with TLS, anything else is plaintext CQL, handed
 *     to the plain TCP transport (allow_plaintext) or refused;
 *   - the session is freed in the socket's close callback, after any write completion. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <tandem/net/tls.h>
#include <tandem/obs/log.h>

#define STAGE_BYTES 16384 /* plaintext gathered per SSL_write: one full TLS record */
#define OUT_CHUNK 65536   /* plaintext encrypted per socket write (4 records) */

typedef struct tls_sess_s {
  tdm_conn_t *conn;                  /* the connection this session encrypts */
  tdm_tls_ctx_t *ctx;                /* context (one reference), for messages and roles */
  SSL *ssl;                          /* the OpenSSL session; owns rbio and wbio */
  BIO *rbio;                         /* ciphertext from the socket, consumed by OpenSSL */
  BIO *wbio;                         /* ciphertext produced by OpenSSL, sent to the socket */
  tdm_tls_handshake_cb on_handshake; /* owner's completion callback, may be NULL */
  uv_close_cb close_cb;              /* the conn's close callback, called once the socket closed */
  uv_buf_t *wbufs;                   /* the conn write waiting for the handshake / sniff (array copy) */
  unsigned nwbufs;                   /* entries in wbufs */
  unsigned wbufs_cap;                /* capacity of wbufs */
  unsigned wi;                       /* next wbufs entry to encrypt */
  size_t woff;                       /* bytes of wbufs[wi] already encrypted */
  uint8_t *out;                      /* ciphertext of the socket write in flight, NULL when none */
  size_t out_len;                    /* its length */
  int failed;                        /* TDM_ETLS_* once the session failed (0: healthy) */
  int alert;                         /* last fatal alert received from the peer, -1 when none */
  bool sniff;                        /* server role, first byte not yet seen */
  bool allow_plaintext;              /* server role: plaintext CQL may use this port */
  bool hs_started;                   /* the handshake has begun */
  bool hs_done;                      /* the handshake completed */
  bool want_read;                    /* the conn asked for input (read_start without read_stop) */
  bool sock_reading;                 /* uv_read_start is on for the socket */
  bool wpending;                     /* a conn write is accepted and not yet reported */
  bool encrypted;                    /* ... and its plaintext went through SSL_write */
  bool sock_writing;                 /* a socket write is in flight */
  bool out_completes;                /* that socket write carries the end of the pending conn write */
  bool shutdown_wanted;              /* the conn asked for a shutdown (close_notify, then FIN) */
  bool fin_started;                  /* uv_shutdown issued */
  bool peer_close_notify;            /* close_notify received */
  char name[TDM_TLS_NAME_MAX];       /* client role: name sent as SNI / checked */
  char err[TDM_TLS_ERR_MAX];         /* why the session failed */
} tls_sess_t;

static int tls_read_start(tdm_conn_t *c);
static int tls_read_stop(tdm_conn_t *c);
static int tls_write(tdm_conn_t *c, const uv_buf_t *bufs, unsigned int nbufs);
static int tls_shutdown(tdm_conn_t *c);
static void tls_close(tdm_conn_t *c, uv_close_cb cb);

static const tdm_transport_t tls_transport = {
  .name = "tls",
  .read_start = tls_read_start,
  .read_stop = tls_read_stop,
  .write = tls_write,
  .shutdown = tls_shutdown,
  .close = tls_close,
};

static tls_sess_t *sess_of(const tdm_conn_t *c)
{
  return c->transport == &tls_transport ? c->transport_state : NULL;
}

static void sess_free(tls_sess_t *s)
{
  if (s->ssl) SSL_free(s->ssl); /* frees both BIOs */
  tdm_tls_ctx_unref(s->ctx);
  free(s->wbufs);
  free(s->out);
  free(s);
}

static void pump(tdm_conn_t *c, tls_sess_t *s);
static void process(tdm_conn_t *c, tls_sess_t *s);
static int encrypt_pending(tdm_conn_t *c, tls_sess_t *s);

/* ---- failure ---- */

/* Fails the session once: keeps the message, stops reading, sends what OpenSSL queued (the alert
 * that tells the peer why), then closes with code once that has left (see sock_written). */
static void fail(tdm_conn_t *c, tls_sess_t *s, int code)
{
  if (s->failed) return;
  s->failed = code;
  if (!s->err[0]) snprintf(s->err, sizeof(s->err), "%s TLS: %s", s->ctx->leg, tdm_tls_strerror(code));
  tdm_log_debug(c->tag, "%s", s->err);
  if (s->sock_reading) {
    (void)uv_read_stop((uv_stream_t *)&c->tcp);
    s->sock_reading = false;
  }
  pump(c, s);
  if (!s->sock_writing) tdm_conn_close(c, code);
}

/* Fails with the explanation of the OpenSSL state (verification, alert, error queue). */
static void fail_ssl(tdm_conn_t *c, tls_sess_t *s)
{
  if (s->failed) return;
  int code = tdm__tls_explain(s->ctx, s->ssl, s->alert, s->hs_done, s->name, s->err, sizeof(s->err));
  fail(c, s, code);
}

static void info_cb(const SSL *ssl, int where, int ret)
{
  if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_READ)) return; /* alerts we send are not the peer's word */
  tls_sess_t *s = SSL_get_app_data(ssl);
  int desc = ret & 0xff;
  if (s && desc != SSL_AD_CLOSE_NOTIFY) s->alert = desc;
}

/* ---- socket writes ---- */

static void free_out(tdm_conn_t *c, tls_sess_t *s)
{
  if (!s->out) return;
  if (s->out_len <= c->ctx->read_pool.block_size)
    tdm_buf_pool_put(&c->ctx->read_pool, s->out);
  else
    free(s->out);
  s->out = NULL;
  s->out_len = 0;
}

static void fin_done(uv_shutdown_t *req, int status) { tdm_conn_on_shutdown(req->data, status); }

static void start_fin(tdm_conn_t *c, tls_sess_t *s)
{
  s->fin_started = true;
  c->shutdown_req.data = c;
  int rc = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, fin_done);
  if (rc < 0) tdm_conn_close(c, rc);
}

static void sock_written(uv_write_t *req, int status)
{
  tdm_conn_t *c = req->data;
  tls_sess_t *s = c->transport_state;
  tdm_conn_hold(c);
  free_out(c, s);
  s->sock_writing = false;
  bool completes = s->out_completes;
  s->out_completes = false;
  if (s->failed) tdm_conn_close(c, s->failed); /* the alert has gone (or could not) */
  if (status < 0) {
    if (s->wpending) {
      s->wpending = false;
      tdm_conn_on_written(c, status); /* closes with the write error (no-op when already closing) */
    } else {
      tdm_conn_close(c, status);
    }
  } else if (completes) {
    s->wpending = false;
    s->encrypted = false;
    tdm_conn_on_written(c, 0);
  } else if (s->wpending && s->hs_done && !s->encrypted && !c->closing) {
    (void)encrypt_pending(c, s); /* the next part of a large write; a failure closes */
  }
  if (!c->closing) pump(c, s);
  tdm_conn_release(c);
}

/* Sends everything OpenSSL produced, unless a socket write is in flight (its completion calls again).
 * With nothing left to send, a requested shutdown proceeds to the FIN. */
static void pump(tdm_conn_t *c, tls_sess_t *s)
{
  if (s->sock_writing || c->closing) return;
  size_t n = BIO_ctrl_pending(s->wbio);
  bool empty_write = n == 0 && s->wpending && s->encrypted; /* a write of 0 bytes still completes later */
  if (n == 0 && !empty_write) {
    if (s->shutdown_wanted && !s->fin_started && !s->failed) start_fin(c, s);
    return;
  }
  uint8_t *out = n <= c->ctx->read_pool.block_size ? tdm_buf_pool_get(&c->ctx->read_pool) : malloc(n);
  if (!out) {
    tdm_conn_close(c, TDM_ENOMEM);
    return;
  }
  int got = n ? BIO_read(s->wbio, out, (int)n) : 0;
  TDM_ASSERT(got == (int)n); /* a memory BIO hands out everything pending */
  s->out = out;
  s->out_len = n;
  s->out_completes = s->wpending && s->encrypted;
  uv_buf_t b = uv_buf_init((char *)out, (unsigned int)n);
  c->write_req.data = c;
  int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, sock_written);
  if (rc < 0) {
    free_out(c, s);
    s->out_completes = false;
    tdm_conn_close(c, rc);
    return;
  }
  s->sock_writing = true;
}

/* One SSL_write into the memory BIO, which takes all of it (it never blocks). */
static int ssl_write_all(tdm_conn_t *c, tls_sess_t *s, const void *p, size_t len)
{
  size_t done = 0;
  ERR_clear_error();
  if (SSL_write_ex(s->ssl, p, len, &done) == 1 && done == len) return 0;
  fail_ssl(c, s);
  return s->failed ? s->failed : TDM_ETLS_PROTOCOL;
}

/* Encrypts the next part of the pending conn write, at most OUT_CHUNK plaintext bytes, so ciphertext
 * is produced one socket write at a time (bounded buffers, no large reallocations); sock_written asks
 * for the next part. Small buffers are gathered into full records, large ones go straight through
 * (OpenSSL cuts them into 16 KiB records). Sets `encrypted` once the last byte went in. */
static int encrypt_pending(tdm_conn_t *c, tls_sess_t *s)
{
  uint8_t *stage = NULL;
  size_t used = 0, budget = OUT_CHUNK;
  int rc = 0;
  bool pooled = c->ctx->read_pool.block_size >= STAGE_BYTES;
  while (s->wi < s->nwbufs && budget && rc == 0) {
    const uint8_t *p = (const uint8_t *)s->wbufs[s->wi].base + s->woff;
    size_t len = TDM_MIN(s->wbufs[s->wi].len - s->woff, budget);
    if (used == 0 && len >= STAGE_BYTES) {
      rc = ssl_write_all(c, s, p, len);
    } else {
      if (!stage) stage = pooled ? tdm_buf_pool_get(&c->ctx->read_pool) : malloc(STAGE_BYTES);
      if (!stage) {
        rc = TDM_ENOMEM;
        break;
      }
      len = TDM_MIN(len, (size_t)STAGE_BYTES - used);
      memcpy(stage + used, p, len);
      used += len;
      if (used == STAGE_BYTES) {
        rc = ssl_write_all(c, s, stage, used);
        used = 0;
      }
    }
    budget -= len;
    s->woff += len;
    if (s->woff == s->wbufs[s->wi].len) {
      s->wi++;
      s->woff = 0;
    }
  }
  if (rc == 0 && used) rc = ssl_write_all(c, s, stage, used);
  if (stage) {
    if (pooled)
      tdm_buf_pool_put(&c->ctx->read_pool, stage);
    else
      free(stage);
  }
  if (rc == 0 && s->wi == s->nwbufs) {
    s->encrypted = true;
    s->nwbufs = s->wi = 0;
    s->woff = 0;
  }
  return rc;
}

/* ---- socket reads ---- */

static void sock_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)suggested; /* ciphertext goes through a pool block; the conn sizes its own plaintext buffer */
  tdm_conn_t *c = h->data;
  tls_sess_t *s = c->transport_state;
  if (s->sniff) {
    tdm_conn_on_alloc(c, buf); /* the first bytes may turn out to be plaintext CQL: read them in place */
    return;
  }
  void *p = tdm_buf_pool_get(&c->ctx->read_pool);
  *buf = p ? uv_buf_init(p, (unsigned int)c->ctx->read_pool.block_size) : uv_buf_init(NULL, 0);
}

static void handshake_finished(tdm_conn_t *c, tls_sess_t *s);

/* Hands a sniffed plaintext connection to the plain TCP transport; s is freed. */
static void switch_to_plain(tdm_conn_t *c, tls_sess_t *s)
{
  (void)uv_read_stop((uv_stream_t *)&c->tcp);
  c->transport = &tdm_transport_tcp;
  c->transport_state = NULL;
  tdm_tls_handshake_cb cb = s->on_handshake;
  int rc = s->want_read ? c->transport->read_start(c) : 0;
  if (rc == 0 && s->wpending) rc = c->transport->write(c, s->wbufs, s->nwbufs); /* bytes still the conn's */
  sess_free(s);
  tdm_log_debug(c->tag, "plaintext client on the TLS port (allowed)");
  if (rc < 0) {
    tdm_conn_close(c, rc);
    return;
  }
  if (rc == TDM_TRANSPORT_WRITTEN) tdm_conn_on_written(c, 0); /* the held write went out at once */
  if (cb) cb(c, 0);
}

/* The first read of a server-role session, made into the conn's own buffer. */
static void sniff_read(tdm_conn_t *c, tls_sess_t *s, ssize_t nread, const uv_buf_t *buf)
{
  if (nread <= 0) {
    tdm_conn_on_read(c, nread); /* nothing yet, or the peer left before saying anything: not a TLS failure */
    return;
  }
  if (tdm_tls_sniff_is_tls((uint8_t)buf->base[0])) {
    s->sniff = false;
    s->hs_started = true;
    int w = BIO_write(s->rbio, buf->base, (int)nread);
    tdm_conn_on_read(c, 0); /* the reservation is given back uncommitted: those bytes were ciphertext */
    if (w != (int)nread) {
      tdm_conn_close(c, TDM_ENOMEM);
      return;
    }
    process(c, s);
    return;
  }
  if (s->allow_plaintext) {
    tdm_conn_hold(c);
    switch_to_plain(c, s);
    if (!c->closing) tdm_conn_on_read(c, nread); /* commits the bytes read in place and delivers them */
    tdm_conn_release(c);
    return;
  }
  tdm_conn_on_read(c, 0);
  snprintf(s->err, sizeof(s->err),
           "%s TLS: plaintext connection refused: TLS is required on this port (proxy_tls_allow_plaintext is off)",
           s->ctx->leg);
  fail(c, s, TDM_ETLS_PLAINTEXT);
}

static void sock_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
  tdm_conn_t *c = stream->data;
  tls_sess_t *s = c->transport_state;
  if (s->sniff) {
    sniff_read(c, s, nread, buf);
    return;
  }
  int w = nread > 0 ? BIO_write(s->rbio, buf->base, (int)nread) : 0;
  if (buf->base) tdm_buf_pool_put(&c->ctx->read_pool, buf->base);
  if (nread == 0 || s->failed) return;
  if (nread < 0) {
    if (!s->hs_done) {
      snprintf(s->err, sizeof(s->err), "%s TLS: %s during the handshake", s->ctx->leg,
               nread == UV_EOF ? "connection closed by the peer" : uv_strerror((int)nread));
      fail(c, s, TDM_ETLS_HANDSHAKE);
      return;
    }
    /* EOF without close_notify is accepted: CQL frames carry their own lengths, a cut one is visible */
    tdm_conn_on_read(c, nread == UV_ENOBUFS ? TDM_ENOMEM : nread);
    return;
  }
  if (w != (int)nread) {
    tdm_conn_close(c, TDM_ENOMEM);
    return;
  }
  process(c, s);
}

/* Socket reading follows the owner's wish, plus whatever a handshake in progress needs. */
static int read_update(tdm_conn_t *c, tls_sess_t *s)
{
  bool need = !s->failed && !c->closing && (s->want_read || (s->hs_started && !s->hs_done));
  if (need && !s->sock_reading) {
    int rc = uv_read_start((uv_stream_t *)&c->tcp, sock_alloc, sock_read);
    if (rc < 0) return rc;
    s->sock_reading = true;
  } else if (!need && s->sock_reading) {
    (void)uv_read_stop((uv_stream_t *)&c->tcp);
    s->sock_reading = false;
  }
  return 0;
}

/* ---- the handshake and the plaintext stream ---- */

static void handshake_finished(tdm_conn_t *c, tls_sess_t *s)
{
  s->hs_done = true;
  if (tdm_log_enabled(TDM_LOG_DEBUG)) {
    tdm_tls_info_t info;
    (void)tdm_tls_info(c, &info);
    tdm_log_debug(c->tag, "TLS established: %s %s, peer '%s', name '%s'", info.version, info.cipher,
                  info.peer_subject, info.sni);
  }
  int rc = read_update(c, s);
  if (rc < 0) {
    tdm_conn_close(c, rc);
    return;
  }
  if (s->on_handshake) s->on_handshake(c, 0);
  if (!c->closing && s->wpending && !s->encrypted) (void)encrypt_pending(c, s); /* a failure closes */
}

/* Advances the handshake, then decrypts everything buffered into the conn, then sends what OpenSSL
 * produced meanwhile (handshake messages, tickets, alerts). */
static void process(tdm_conn_t *c, tls_sess_t *s)
{
  tdm_conn_hold(c);
  if (!s->hs_done) {
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
      handshake_finished(c, s);
    } else {
      int e = SSL_get_error(s->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) fail_ssl(c, s);
    }
  }
  while (s->hs_done && !s->failed && !c->closing) {
    uv_buf_t b;
    tdm_conn_on_alloc(c, &b);
    if (b.len == 0) {
      tdm_conn_on_read(c, UV_ENOBUFS); /* the conn closes with the reason its reservation failed */
      break;
    }
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(s->ssl, b.base, b.len, &got) == 1) {
      tdm_conn_on_read(c, (ssize_t)got);
      continue;
    }
    tdm_conn_on_read(c, 0); /* gives the reservation back */
    int e = SSL_get_error(s->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      s->peer_close_notify = true;
      tdm_conn_on_read(c, UV_EOF); /* close_notify: the peer's orderly end */
      break;
    }
    fail_ssl(c, s);
  }
  if (!s->failed && !c->closing) pump(c, s);
  tdm_conn_release(c);
}

/* Client role: the first read_start or write (both come only once connected) sends the ClientHello. */
static void start_client_handshake(tdm_conn_t *c, tls_sess_t *s)
{
  if (s->hs_started || s->ctx->server) return;
  s->hs_started = true;
  int rc = read_update(c, s);
  if (rc < 0) {
    tdm_conn_close(c, rc);
    return;
  }
  process(c, s);
}

/* ---- the ops ---- */

static int tls_read_start(tdm_conn_t *c)
{
  tls_sess_t *s = c->transport_state;
  s->want_read = true;
  if (s->failed) return 0; /* the close is under way */
  if (!s->hs_started && !s->ctx->server) {
    start_client_handshake(c, s);
    return 0;
  }
  return read_update(c, s);
}

static int tls_read_stop(tdm_conn_t *c)
{
  tls_sess_t *s = c->transport_state;
  s->want_read = false;
  return read_update(c, s);
}

static int tls_write(tdm_conn_t *c, const uv_buf_t *bufs, unsigned int nbufs)
{
  tls_sess_t *s = c->transport_state;
  TDM_ASSERT(!s->wpending); /* one conn write at a time (transport.h) */
  if (s->failed) return s->failed;
  if (nbufs > s->wbufs_cap) {
    uv_buf_t *nb = realloc(s->wbufs, nbufs * sizeof(*nb));
    if (!nb) return TDM_ENOMEM;
    s->wbufs = nb;
    s->wbufs_cap = nbufs;
  }
  memcpy(s->wbufs, bufs, nbufs * sizeof(*bufs));
  s->nwbufs = nbufs;
  s->wi = 0;
  s->woff = 0;
  s->wpending = true;
  s->encrypted = false;
  if (s->sniff) return 0; /* server role before the client's first byte: wait for the sniff */
  if (!s->hs_started) {
    start_client_handshake(c, s);
    return 0;
  }
  if (s->hs_done) {
    int rc = encrypt_pending(c, s);
    if (rc < 0) return 0; /* fail() closed the connection; the close callback cancels the write */
  }
  pump(c, s);
  return 0;
}

static int tls_shutdown(tdm_conn_t *c)
{
  tls_sess_t *s = c->transport_state;
  s->shutdown_wanted = true;
  if (s->hs_done && !s->failed) {
    ERR_clear_error();
    (void)SSL_shutdown(s->ssl); /* queues close_notify; we do not wait for the peer's */
    ERR_clear_error();
  }
  pump(c, s);
  return 0;
}

static void tls_closed(uv_handle_t *h)
{
  tdm_conn_t *c = h->data;
  tls_sess_t *s = c->transport_state;
  if (s->wpending) { /* it never left: report it like a cancelled socket write */
    s->wpending = false;
    tdm_conn_on_written(c, UV_ECANCELED);
  }
  uv_close_cb cb = s->close_cb;
  c->transport_state = NULL;
  sess_free(s);
  cb(h);
}

static void tls_close(tdm_conn_t *c, uv_close_cb cb)
{
  tls_sess_t *s = c->transport_state;
  s->close_cb = cb;
  s->sock_reading = false;
  uv_close((uv_handle_t *)&c->tcp, tls_closed);
}

/* ---- attaching ---- */

static bool is_ip_literal(const char *name)
{
  unsigned char tmp[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
}

static int attach(tdm_conn_t *c, tdm_tls_ctx_t *ctx, tdm_tls_handshake_cb cb, tls_sess_t **out)
{
  if (c->transport != &tdm_transport_tcp || c->transport_state || c->reading || c->closing || c->inflight)
    return TDM_EINVAL;
  tls_sess_t *s = calloc(1, sizeof(*s));
  if (!s) return TDM_ENOMEM;
  s->ssl = SSL_new(ctx->ssl);
  s->rbio = BIO_new(BIO_s_mem());
  s->wbio = BIO_new(BIO_s_mem());
  if (!s->ssl || !s->rbio || !s->wbio) {
    BIO_free(s->rbio);
    BIO_free(s->wbio);
    s->rbio = s->wbio = NULL;
    sess_free(s);
    ERR_clear_error();
    return TDM_ENOMEM;
  }
  BIO_set_mem_eof_return(s->rbio, -1); /* empty means "want more", not EOF */
  BIO_set_mem_eof_return(s->wbio, -1);
  SSL_set_bio(s->ssl, s->rbio, s->wbio);
  SSL_set_app_data(s->ssl, s);
  SSL_set_info_callback(s->ssl, info_cb);
  s->conn = c;
  s->ctx = tdm_tls_ctx_ref(ctx);
  s->on_handshake = cb;
  s->alert = -1;
  *out = s;
  return 0;
}

static void install(tdm_conn_t *c, tls_sess_t *s)
{
  c->transport = &tls_transport;
  c->transport_state = s;
}

int tdm_tls_server(tdm_conn_t *c, tdm_tls_ctx_t *ctx, bool allow_plaintext, tdm_tls_handshake_cb cb)
{
  if (!ctx || !ctx->server) return TDM_EINVAL;
  tls_sess_t *s;
  int rc = attach(c, ctx, cb, &s);
  if (rc < 0) return rc;
  SSL_set_accept_state(s->ssl);
  s->sniff = true;
  s->allow_plaintext = allow_plaintext;
  install(c, s);
  return 0;
}

int tdm_tls_client(tdm_conn_t *c, tdm_tls_ctx_t *ctx, const char *server_name, tdm_tls_handshake_cb cb)
{
  if (!ctx || ctx->server) return TDM_EINVAL;
  size_t n = server_name ? strlen(server_name) : 0;
  if (n >= TDM_TLS_NAME_MAX || (n == 0 && ctx->verify_hostname)) return TDM_EINVAL;
  tls_sess_t *s;
  int rc = attach(c, ctx, cb, &s);
  if (rc < 0) return rc;
  SSL_set_connect_state(s->ssl);
  if (n) memcpy(s->name, server_name, n + 1);
  bool ok = true;
  if (n && is_ip_literal(server_name)) {
    /* RFC 6066: no SNI for addresses; the certificate needs an IP SAN */
    if (ctx->verify_hostname) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), server_name) == 1;
  } else if (n) {
    ok = SSL_set_tlsext_host_name(s->ssl, server_name) == 1;
    if (ok && ctx->verify_hostname) {
      SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = SSL_set1_host(s->ssl, server_name) == 1;
    }
  }
  if (!ok) {
    ERR_clear_error();
    sess_free(s);
    return TDM_EINVAL;
  }
  install(c, s);
  return 0;
}

/* ---- queries ---- */

bool tdm_tls_active(const tdm_conn_t *c) { return sess_of(c) != NULL; }

const char *tdm_tls_error(const tdm_conn_t *c)
{
  const tls_sess_t *s = sess_of(c);
  return s && s->err[0] ? s->err : NULL;
}

bool tdm_tls_info(const tdm_conn_t *c, tdm_tls_info_t *info)
{
  memset(info, 0, sizeof(*info));
  const tls_sess_t *s = sess_of(c);
  if (!s) return false;
  info->active = true;
  info->established = s->hs_done;
  info->peer_close_notify = s->peer_close_notify;
  if (!s->hs_done) return true;
  snprintf(info->version, sizeof(info->version), "%s", SSL_get_version(s->ssl));
  snprintf(info->cipher, sizeof(info->cipher), "%s", SSL_get_cipher_name(s->ssl));
  const char *sni = s->ctx->server ? SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name) : s->name;
  snprintf(info->sni, sizeof(info->sni), "%s", sni ? sni : "");
  X509 *peer = SSL_get0_peer_certificate(s->ssl);
  if (peer) {
    int r = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, info->peer_subject,
                                      (int)sizeof(info->peer_subject));
    if (r < 0) info->peer_subject[0] = '\0';
  }
  return true;
}
