/* The verified-identity cache end to end (behaviour.md §2.2 step 4, test-scenarios HS-06): build/tandem
 * between two mock clusters that both require auth (TARGET checks the client's credentials, ORIGIN runs
 * as the configured user). Within auth_cache_ttl_ms a second login of the same identity costs TARGET no
 * AUTH_RESPONSE (the mock's counters say so), and the session it gets works; a wrong password is never
 * accepted from the cache (TARGET checks it and refuses it); after the TTL the identity logs in afresh. */
#include "test_instance_harness.h"
#include <tandem/conf/conf.h>
#include <tandem/proto/opcodes.h>

/* Starts mock c with the harness's arguments plus extra (NULL-terminated). */
static void mock_with(tdm_it_env_t *e, int c, const char *const *extra)
{
  char node[64];
  snprintf(node, sizeof(node), "127.0.0.1:%u", e->port[c]);
  const char *args[24] = { "--node", node, "--cluster-name", c ? "target" : "origin", "--quiet" };
  size_t n = 5;
  for (size_t i = 0; extra && extra[i] && n < 23; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  int rc = tdm_mockctl_spawn(&e->mock[c], args, 5000);
  if (rc)
    fail_msg("cannot start the %s mock on %s: %s", c ? "TARGET" : "ORIGIN", node, tdm_strerror(rc));
  e->mock_on[c] = true;
}

static void up_with(tdm_it_env_t *e, const char *const *extra)
{
  mock_with(e, 0, extra);
  mock_with(e, 1, extra);
  tdm_it_env_tandem(e);
  if (!tdm_it_wait_status(e->metrics, "/health/readiness", 200, 10000)) {
    char *log = tdm_it_read_file(e->log);
    fail_msg("tandem did not become ready; its output:\n%s", log);
  }
  char buf[256]; /* READY=1 comes once every worker listens */
  assert_true(tdm_it_notify_recv(e->notify_fd, buf, sizeof(buf), 5000));
  assert_non_null(strstr(buf, "READY=1"));
}

static int64_t count(tdm_it_env_t *e, int c, const char *what)
{
  int64_t n = tdm_mockctl_count(&e->mock[c], "COUNT %s", what);
  assert_true(n >= 0);
  return n;
}

/* One client login through tandem; 0 when ready, else the ERROR code it got. Runs one write on success
 * so the session is known to work. */
static uint32_t login(tdm_it_env_t *e, const char *user, const char *pass)
{
  tdm_mockctl_cql_t c;
  uint32_t code = 0;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e->client, 4), 0);
  int rc = tdm_mockctl_cql_startup(&c, NULL, user, pass, &code);
  if (rc == 0) {
    tdm_mockctl_frame_t f;
    assert_int_equal(tdm_mockctl_cql_query(&c, 1, "INSERT INTO ks.t (k, v) VALUES ('a', 'b')", &f, 5000), 0);
    assert_int_equal(f.h.opcode, TDM_OP_RESULT);
    tdm_mockctl_frame_free(&f);
  } else {
    assert_int_equal(rc, TDM_EINVAL);
    assert_true(code != 0);
  }
  tdm_mockctl_cql_close(&c);
  return rc == 0 ? 0 : code;
}

static void test_cache_hit_costs_no_login(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "auth-cache");
  /* one worker: the cache is per worker, so every login meets the same one */
  tdm_it_env_write_conf(&e, "workers: 1\nauth_cache_ttl_ms: 1500\n"
                            "origin_username: svc\norigin_password: svcpw\n"
                            "target_username: svc\ntarget_password: svcpw\n");
  const char *auth[] = { "--auth", "alice:secret", "--auth", "svc:svcpw", NULL };
  up_with(&e, auth);
  const int T = TDM_CONF_TARGET;
  assert_int_equal(login(&e, "alice", "secret"), 0);
  assert_int_equal(count(&e, T, "what=auth_ok user=alice"), 1);
  assert_int_equal(count(&e, TDM_CONF_ORIGIN, "what=auth_ok user=alice"), 0); /* ORIGIN runs as svc */
  /* within the TTL: verified from the cache, and the identity's ready pool serves it: no AUTH on TARGET */
  for (int i = 0; i < 3; i++)
    assert_int_equal(login(&e, "alice", "secret"), 0);
  assert_int_equal(count(&e, T, "what=auth_ok user=alice"), 1);
  char auths[8192];
  assert_int_equal(tdm_mockctl_cmd(&e.mock[T], auths, sizeof(auths), "AUTHS"), 0);
  size_t n = 0;
  for (const char *p = auths; (p = strstr(p, "\"user\":\"alice\"")); p++)
    n++;
  assert_int_equal(n, 1);
  /* a wrong password is never accepted from the cache: TARGET checks it and says no */
  assert_int_equal(login(&e, "alice", "wrong"), TDM_ERR_BAD_CREDENTIALS);
  assert_int_equal(count(&e, T, "what=auth_failed user=alice"), 1);
  assert_int_equal(login(&e, "alice", "secret"), 0); /* the right one is still cached */
  assert_int_equal(count(&e, T, "what=auth_ok user=alice"), 1);
  /* after the TTL the identity is verified again */
  tdm_it_sleep_ms(1700);
  assert_int_equal(login(&e, "alice", "secret"), 0);
  assert_int_equal(count(&e, T, "what=auth_ok user=alice"), 2);
  assert_int_equal(login(&e, "alice", "secret"), 0);
  assert_int_equal(count(&e, T, "what=auth_ok user=alice"), 2);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

/* auth_cache_ttl_ms: 0 verifies every login. */
static void test_ttl_zero_verifies_every_login(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "auth-nocache");
  tdm_it_env_write_conf(&e, "workers: 1\nauth_cache_ttl_ms: 0\n"
                            "origin_username: svc\norigin_password: svcpw\n"
                            "target_username: svc\ntarget_password: svcpw\n");
  const char *auth[] = { "--auth", "alice:secret", "--auth", "svc:svcpw", NULL };
  up_with(&e, auth);
  for (int i = 0; i < 3; i++)
    assert_int_equal(login(&e, "alice", "secret"), 0);
  assert_int_equal(count(&e, TDM_CONF_TARGET, "what=auth_ok user=alice"), 3);
  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cache_hit_costs_no_login),
    cmocka_unit_test(test_ttl_zero_verifies_every_login),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
