/* The frontend's verified-identity cache (behaviour.md §2.2 step 4) with scripted backend sessions: the
 * first login asks the backend to verify the password; a second login with the same password within
 * auth_cache_ttl_ms asks for readiness only (the key's credentials say `verified`); a different password
 * is verified again; a cached identity the cluster then refuses is forgotten, so the client's retry is
 * verified afresh; auth_cache_ttl_ms 0 never caches. */
#include "test_frontend_harness.h"

static void auth_setup(harness_t *h)
{
  h->topo[TDM_CONF_TARGET].auth_required = true;
  snprintf(h->topo[TDM_CONF_TARGET].authenticator, sizeof(h->topo[0].authenticator),
           "org.apache.cassandra.auth.PasswordAuthenticator");
}

static void send_token(cli_t *c, int16_t stream, const char *user, const char *pass)
{
  char tok[128];
  int n = snprintf(tok, sizeof(tok), "%c%s%c%s", 0, user, 0, pass);
  uint8_t b[256];
  tdm_writer_t w;
  tdm_writer_init_fixed(&w, b, sizeof(b));
  assert_int_equal(tdm_request_encode_auth_response(&w, tok, n), 0);
  cli_send(c, 4, 0, stream, TDM_OP_AUTH_RESPONSE, b, w.len);
}

/* The TARGET session of the last login (the client-auth cluster's). */
static sess_t *last_target(harness_t *h)
{
  for (int i = h->nsess - 1; i >= 0; i--)
    if (h->sess[i].cluster == TDM_CONF_TARGET) return &h->sess[i];
  fail_msg("no TARGET session");
  return NULL;
}

/* A connection through STARTUP and AUTHENTICATE; the caller sends the token. */
static void begin(cli_t *c, frame_t *f)
{
  cli_open(c);
  uint8_t b[128];
  size_t n = startup_body(b, sizeof(b), NULL);
  cli_send(c, 4, 0, 0, TDM_OP_STARTUP, b, n);
  cli_recv(c, f);
  assert_int_equal(f->h.opcode, TDM_OP_AUTHENTICATE);
}

static void login_ok(cli_t *c, frame_t *f, const char *user, const char *pass)
{
  begin(c, f);
  send_token(c, 1, user, pass);
  cli_recv(c, f);
  assert_int_equal(f->h.opcode, TDM_OP_AUTH_SUCCESS);
}

static void test_cache_asks_for_readiness_only(void **state)
{
  harness_t h;
  h_setup(&h);
  auth_setup(&h);
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t c[5];
  login_ok(&c[0], f, "bob", "secret");
  assert_true(last_target(&h)->creds);
  assert_false(last_target(&h)->verified); /* the first login is verified by TARGET */
  assert_string_equal(last_target(&h)->password, "secret");
  login_ok(&c[1], f, "bob", "secret");
  assert_true(last_target(&h)->verified); /* cached: readiness only */
  assert_string_equal(last_target(&h)->user, "bob");
  login_ok(&c[2], f, "bob", "other");
  assert_false(last_target(&h)->verified); /* another password is never vouched for */
  /* the cluster refuses what the cache vouched for (the password changed): the retry logs in afresh */
  h_script(TDM_CONF_TARGET, SESS_BADCRED);
  begin(&c[3], f);
  send_token(&c[3], 1, "bob", "other");
  cli_recv(&c[3], f);
  assert_error(f, TDM_ERR_BAD_CREDENTIALS, "Provided username bob and/or password are incorrect");
  assert_true(last_target(&h)->verified);
  send_token(&c[3], 2, "bob", "other");
  cli_recv(&c[3], f);
  assert_int_equal(f->h.opcode, TDM_OP_AUTH_SUCCESS);
  assert_false(last_target(&h)->verified);
  login_ok(&c[4], f, "bob", "other");
  assert_true(last_target(&h)->verified); /* cached again after that verification */
  for (int i = 0; i < 5; i++) cli_close(&c[i]);
  free(f);
  h_teardown(&h);
}

static void test_ttl_zero_never_caches(void **state)
{
  harness_t h;
  h_setup(&h);
  auth_setup(&h);
  h.pw.conf->auth_cache_ttl_ms = 0;
  h_start(&h);
  frame_t *f = malloc(sizeof(*f));
  cli_t c[2];
  login_ok(&c[0], f, "bob", "secret");
  login_ok(&c[1], f, "bob", "secret");
  assert_false(last_target(&h)->verified);
  for (int i = 0; i < 2; i++) cli_close(&c[i]);
  free(f);
  h_teardown(&h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cache_asks_for_readiness_only),
    cmocka_unit_test(test_ttl_zero_never_caches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
