/* Unit tests of the TLS contexts and helpers (no traffic): context creation from good files and every
 * kind of bad one, with the exact message (leg, file, cause); the all-or-nothing tdm_tls_reload() from
 * a configuration snapshot, which keeps the old set on any failure; set copies and their references;
 * the first-byte sniff; the server-name choice; error names; and the argument checks of attaching
 * TLS to a connection. Certificates come from tests/data/tls/gen.sh at test time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <tandem/net/tls.h>
#include "tls_certs.h"

static const char *fmt(const char *f, ...) TDM_PRINTF(1, 2);
static const char *fmt(const char *f, ...)
{
  static char buf[TDM_TLS_ERR_MAX];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof(buf), f, ap);
  va_end(ap);
  return buf;
}

static void test_server_ctx_ok(void **state)
{
  (void)state;
  tdm_tls_ctx_t *ctx = NULL;
  char err[TDM_TLS_ERR_MAX] = "x";
  assert_int_equal(tdm_tls_server_ctx_new(tdm_test_tls_path("server.pem"), tdm_test_tls_path("server.key"), tdm_test_tls_path("ca.pem"), true, &ctx, err,
                                          sizeof(err)), 0);
  assert_string_equal(err, "");
  assert_non_null(ctx);
  assert_non_null(ctx->ssl);
  assert_true(ctx->server);
  assert_true(ctx->require_client_auth);
  assert_string_equal(ctx->leg, "client");
  assert_string_equal(ctx->ca_path, tdm_test_tls_path("ca.pem"));
  assert_string_equal(ctx->cert_path, tdm_test_tls_path("server.pem"));
  assert_int_equal(atomic_load(&ctx->refs), 1);
  assert_ptr_equal(tdm_tls_ctx_ref(ctx), ctx);
  assert_int_equal(atomic_load(&ctx->refs), 2);
  tdm_tls_ctx_unref(ctx);
  tdm_tls_ctx_unref(ctx);
  tdm_tls_ctx_unref(NULL);
  /* no CA: one-way TLS */
  assert_int_equal(tdm_tls_server_ctx_new(tdm_test_tls_path("server.pem"), tdm_test_tls_path("server.key"), "", false, &ctx, err, sizeof(err)),
                   0);
  assert_string_equal(ctx->ca_path, "");
  tdm_tls_ctx_unref(ctx);
}

static void server_fails(const char *cert, const char *key, const char *ca, bool require, int code, const char *msg,
                         bool prefix)
{
  tdm_tls_ctx_t *ctx = (tdm_tls_ctx_t *)1;
  char err[TDM_TLS_ERR_MAX];
  char want[TDM_TLS_ERR_MAX];
  snprintf(want, sizeof(want), "%s", msg);
  assert_int_equal(tdm_tls_server_ctx_new(cert, key, ca, require, &ctx, err, sizeof(err)), code);
  assert_null(ctx);
  if (prefix ? strncmp(err, want, strlen(want)) != 0 : strcmp(err, want) != 0)
    fail_msg("got:  %s\nwant: %s", err, want);
}

static void test_server_ctx_errors(void **state)
{
  (void)state;
  const char *d = tdm_test_tls_dir();
  server_fails(tdm_test_tls_path("nope.pem"), tdm_test_tls_path("server.key"), NULL, false, TDM_ETLS_FILE,
               fmt("client TLS: cannot read certificate file '%s/nope.pem': No such file or directory", d), false);
  server_fails(tdm_test_tls_path("server.pem"), tdm_test_tls_path("nope.key"), NULL, false, TDM_ETLS_FILE,
               fmt("client TLS: cannot read private key file '%s/nope.key': No such file or directory", d), false);
  server_fails(tdm_test_tls_path("garbage.pem"), tdm_test_tls_path("server.key"), NULL, false, TDM_ETLS_FILE,
               fmt("client TLS: certificate file '%s/garbage.pem' holds no usable PEM certificate", d), true);
  server_fails(tdm_test_tls_path("server.pem"), tdm_test_tls_path("garbage.pem"), NULL, false, TDM_ETLS_FILE,
               fmt("client TLS: private key file '%s/garbage.pem' holds no usable PEM private key", d), true);
  server_fails(tdm_test_tls_path("server.pem"), tdm_test_tls_path("client.key"), NULL, false, TDM_ETLS_FILE,
               fmt("client TLS: private key file '%s/client.key' does not match certificate file '%s/server.pem'",
                   d, d), false);
  server_fails(tdm_test_tls_path("server.pem"), tdm_test_tls_path("server.key"), tdm_test_tls_path("garbage.pem"), true, TDM_ETLS_FILE,
               fmt("client TLS: CA file '%s/garbage.pem' holds no usable PEM certificate", d), true);
  server_fails(tdm_test_tls_path("server.pem"), tdm_test_tls_path("server.key"), tdm_test_tls_path("missing-ca.pem"), true, TDM_ETLS_FILE,
               fmt("client TLS: cannot read CA file '%s/missing-ca.pem': No such file or directory", d), false);
  server_fails(tdm_test_tls_path("server.pem"), tdm_test_tls_path("server.key"), "", true, TDM_EINVAL,
               "client TLS: requiring client certificates needs a CA file", false);
  server_fails("", tdm_test_tls_path("server.key"), NULL, false, TDM_EINVAL,
               "client TLS: a certificate file and a private key file are both required", false);
  FILE *f = fopen(tdm_test_tls_path("empty.pem"), "w");
  assert_non_null(f);
  fclose(f);
  server_fails(tdm_test_tls_path("empty.pem"), tdm_test_tls_path("server.key"), NULL, false, TDM_ETLS_FILE,
               fmt("client TLS: certificate file '%s/empty.pem' is empty", d), false);
  /* a directory is readable by fopen on Linux but is no PEM file */
  server_fails(d, tdm_test_tls_path("server.key"), NULL, false, TDM_ETLS_FILE,
               fmt("client TLS: cannot read certificate file '%s': Is a directory", d), false);
}

static void test_client_ctx(void **state)
{
  (void)state;
  const char *d = tdm_test_tls_dir();
  tdm_tls_ctx_t *ctx = NULL;
  char err[TDM_TLS_ERR_MAX];
  assert_int_equal(tdm_tls_client_ctx_new("ORIGIN", tdm_test_tls_path("ca.pem"), NULL, NULL, true, &ctx, err, sizeof(err)), 0);
  assert_false(ctx->server);
  assert_true(ctx->verify_hostname);
  assert_string_equal(ctx->leg, "ORIGIN");
  assert_string_equal(ctx->cert_path, "");
  tdm_tls_ctx_unref(ctx);
  assert_int_equal(tdm_tls_client_ctx_new("TARGET", tdm_test_tls_path("ca.pem"), tdm_test_tls_path("client.pem"), tdm_test_tls_path("client.key"), false,
                                          &ctx, err, sizeof(err)), 0);
  assert_false(ctx->verify_hostname);
  assert_string_equal(ctx->key_path, tdm_test_tls_path("client.key"));
  tdm_tls_ctx_unref(ctx);

  assert_int_equal(tdm_tls_client_ctx_new("TARGET", tdm_test_tls_path("nope.pem"), NULL, NULL, true, &ctx, err, sizeof(err)),
                   TDM_ETLS_FILE);
  assert_null(ctx);
  assert_string_equal(err, fmt("TARGET TLS: cannot read CA file '%s/nope.pem': No such file or directory", d));
  assert_int_equal(tdm_tls_client_ctx_new("ORIGIN", tdm_test_tls_path("ca.pem"), tdm_test_tls_path("client.pem"), NULL, true, &ctx, err,
                                          sizeof(err)), TDM_EINVAL);
  assert_string_equal(err, "ORIGIN TLS: a client certificate and its private key go together");
  assert_int_equal(tdm_tls_client_ctx_new("ORIGIN", tdm_test_tls_path("ca.pem"), tdm_test_tls_path("client.pem"), tdm_test_tls_path("server.key"), true,
                                          &ctx, err, sizeof(err)), TDM_ETLS_FILE);
  assert_string_equal(err, fmt("ORIGIN TLS: private key file '%s/server.key' does not match certificate file "
                               "'%s/client.pem'", d, d));
}

/* ---- reload from configuration ---- */

static tdm_conf_t *conf(const char *extra)
{
  char yaml[4096];
  snprintf(yaml, sizeof(yaml), "origin_contact_points: 10.0.0.1\ntarget_contact_points: 10.0.1.1\n%s", extra);
  tdm_conf_t *c = NULL;
  tdm_conf_diag_t d = { 0 };
  int rc = tdm_conf_load_buffer("t.yaml", yaml, strlen(yaml), NULL, &c, &d);
  if (rc) fail_msg("conf: %s", d.message ? d.message : tdm_strerror(rc));
  tdm_conf_diag_free(&d);
  return c;
}

static void test_reload(void **state)
{
  (void)state;
  const char *d = tdm_test_tls_dir();
  char err[TDM_TLS_ERR_MAX];
  char yaml[8192]; /* six paths of up to 512 bytes each fit with room to spare */
  tdm_tls_set_t set = { 0 };

  /* nothing configured: no contexts */
  tdm_conf_t *none = conf("");
  assert_int_equal(tdm_tls_reload(&set, none, err, sizeof(err)), 0);
  assert_null(set.client);
  assert_null(set.cluster[TDM_CONF_ORIGIN]);
  assert_null(set.cluster[TDM_CONF_TARGET]);

  snprintf(yaml, sizeof(yaml),
           "proxy_tls_cert_path: %s/server.pem\nproxy_tls_key_path: %s/server.key\nproxy_tls_ca_path: %s/ca.pem\n"
           "proxy_tls_require_client_auth: true\nproxy_tls_allow_plaintext: true\n"
           "target_tls_server_ca_path: %s/ca.pem\ntarget_tls_client_cert_path: %s/client.pem\n"
           "target_tls_client_key_path: %s/client.key\ntarget_tls_verify_hostname: false\n",
           d, d, d, d, d, d);
  tdm_conf_t *full = conf(yaml);
  assert_int_equal(tdm_tls_reload(&set, full, err, sizeof(err)), 0);
  assert_non_null(set.client);
  assert_true(set.client->require_client_auth);
  assert_true(set.allow_plaintext);
  assert_null(set.cluster[TDM_CONF_ORIGIN]);
  assert_non_null(set.cluster[TDM_CONF_TARGET]);
  assert_string_equal(set.cluster[TDM_CONF_TARGET]->leg, "TARGET");
  assert_false(set.cluster[TDM_CONF_TARGET]->verify_hostname);

  /* a bad file anywhere rejects the whole reload; the set is untouched */
  tdm_tls_set_t before = set;
  snprintf(yaml, sizeof(yaml),
           "proxy_tls_cert_path: %s/server2.pem\nproxy_tls_key_path: %s/server2.key\n"
           "origin_tls_server_ca_path: %s/gone.pem\n", d, d, d);
  tdm_conf_t *bad = conf(yaml);
  assert_int_equal(tdm_tls_reload(&set, bad, err, sizeof(err)), TDM_ETLS_FILE);
  assert_string_equal(err, fmt("ORIGIN TLS: cannot read CA file '%s/gone.pem': No such file or directory", d));
  assert_memory_equal(&set, &before, sizeof(set));
  assert_int_equal(atomic_load(&set.client->refs), 1); /* the half-built new contexts were released */

  /* a worker's copy shares the contexts */
  tdm_tls_set_t copy = { 0 };
  tdm_tls_set_copy(&copy, &set);
  assert_ptr_equal(copy.client, set.client);
  assert_int_equal(atomic_load(&set.client->refs), 2);
  assert_int_equal(atomic_load(&set.cluster[TDM_CONF_TARGET]->refs), 2);
  assert_true(copy.allow_plaintext);

  /* back to nothing: the old contexts survive in the copy only */
  assert_int_equal(tdm_tls_reload(&set, none, err, sizeof(err)), 0);
  assert_null(set.client);
  assert_int_equal(atomic_load(&copy.client->refs), 1);
  tdm_tls_set_clear(&copy);
  assert_null(copy.client);
  tdm_tls_set_clear(&set);
  tdm_conf_unref(none);
  tdm_conf_unref(full);
  tdm_conf_unref(bad);
}

static void test_helpers(void **state)
{
  (void)state;
  assert_true(tdm_tls_sniff_is_tls(0x16));
  static const uint8_t cql[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x41, 0x42, 0x84, 0x00 };
  for (size_t i = 0; i < sizeof(cql); i++) assert_false(tdm_tls_sniff_is_tls(cql[i]));

  tdm_conf_backend_t b = { 0 };
  assert_string_equal(tdm_tls_server_name(&b, "10.0.0.1"), "10.0.0.1");
  b.tls_server_name = "";
  assert_string_equal(tdm_tls_server_name(&b, "db1.example"), "db1.example");
  b.tls_server_name = "cassandra.internal";
  assert_string_equal(tdm_tls_server_name(&b, "10.0.0.1"), "cassandra.internal");

  assert_string_equal(tdm_tls_strerror(TDM_ETLS_VERIFY), "TLS peer certificate rejected");
  assert_string_equal(tdm_tls_strerror(TDM_ETLS_PLAINTEXT), "plaintext connection refused: TLS required");
  assert_string_equal(tdm_tls_strerror(TDM_ENOMEM), tdm_strerror(TDM_ENOMEM));
  assert_string_equal(tdm_tls_strerror(UV_ECONNRESET), uv_strerror(UV_ECONNRESET));
  assert_true(tdm_tls_is_error(TDM_ETLS_HANDSHAKE));
  assert_true(tdm_tls_is_error(TDM_ETLS_FILE));
  assert_false(tdm_tls_is_error(TDM_ETIMEOUT));
  assert_false(tdm_tls_is_error(UV_EOF));
  assert_false(tdm_tls_is_error(0));
}

/* ---- attaching to a connection (no traffic) ---- */

static int no_data(tdm_conn_t *c, const uint8_t *d, size_t n)
{
  (void)c;
  (void)d;
  (void)n;
  return 0;
}

static int destroyed;
static void on_destroy(tdm_conn_t *c)
{
  (void)c;
  destroyed++;
}

static const tdm_conn_hooks_t hooks = { .on_data = no_data, .on_destroy = on_destroy };

static void test_attach_checks(void **state)
{
  (void)state;
  uv_loop_t loop;
  tdm_conn_ctx_t cctx;
  tdm_conn_t conn;
  char err[TDM_TLS_ERR_MAX];
  tdm_tls_ctx_t *sctx, *cl, *noverify;
  assert_int_equal(tdm_tls_server_ctx_new(tdm_test_tls_path("server.pem"), tdm_test_tls_path("server.key"), NULL, false, &sctx, err,
                                          sizeof(err)), 0);
  assert_int_equal(tdm_tls_client_ctx_new("ORIGIN", tdm_test_tls_path("ca.pem"), NULL, NULL, true, &cl, err, sizeof(err)), 0);
  assert_int_equal(tdm_tls_client_ctx_new("ORIGIN", tdm_test_tls_path("ca.pem"), NULL, NULL, false, &noverify, err,
                                          sizeof(err)), 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tdm_conn_ctx_init(&cctx, &loop), 0);
  assert_int_equal(tdm_conn_init(&conn, &cctx, &hooks, NULL), 0);

  assert_false(tdm_tls_active(&conn));
  tdm_tls_info_t info;
  assert_false(tdm_tls_info(&conn, &info));
  assert_false(info.active);
  assert_null(tdm_tls_error(&conn));

  assert_int_equal(tdm_tls_client(&conn, sctx, "localhost", NULL), TDM_EINVAL); /* wrong role */
  assert_int_equal(tdm_tls_server(&conn, cl, false, NULL), TDM_EINVAL);
  assert_int_equal(tdm_tls_client(&conn, cl, "", NULL), TDM_EINVAL);         /* nothing to verify against */
  assert_int_equal(tdm_tls_client(&conn, cl, NULL, NULL), TDM_EINVAL);
  char longname[TDM_TLS_NAME_MAX + 1];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(tdm_tls_client(&conn, cl, longname, NULL), TDM_EINVAL);
  assert_false(tdm_tls_active(&conn));

  assert_int_equal(tdm_tls_client(&conn, noverify, NULL, NULL), 0); /* no name needed without the check */
  assert_true(tdm_tls_active(&conn));
  assert_int_equal(atomic_load(&noverify->refs), 2); /* the session's reference */
  assert_true(tdm_tls_info(&conn, &info));
  assert_true(info.active);
  assert_false(info.established);
  assert_int_equal(tdm_tls_client(&conn, cl, "localhost", NULL), TDM_EINVAL); /* already attached */

  tdm_conn_close(&conn, 0);
  tdm_conn_ctx_close(&cctx, NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(destroyed, 1);
  assert_int_equal(atomic_load(&noverify->refs), 1); /* released with the socket */
  assert_int_equal(uv_loop_close(&loop), 0);
  tdm_tls_ctx_unref(sctx);
  tdm_tls_ctx_unref(cl);
  tdm_tls_ctx_unref(noverify);
}

int main(void)
{
  (void)tdm_test_tls_dir();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_server_ctx_ok), cmocka_unit_test(test_server_ctx_errors),
    cmocka_unit_test(test_client_ctx),    cmocka_unit_test(test_reload),
    cmocka_unit_test(test_helpers),       cmocka_unit_test(test_attach_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
