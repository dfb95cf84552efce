/* build/tandem's command line: `--check` exit codes and messages (valid, invalid with file:line:column
 * and a suggestion, unreadable, environment overrides applied, missing --config), `--version`, `--help`,
 * a bad option or argument (2), and a daemon start with an invalid configuration (1, errors on stderr,
 * nothing listening). */
#include "test_instance_harness.h"

typedef struct run_s {
  int status;  /* exit status */
  char *out;   /* stdout + stderr */
} run_t;

static run_t run(const char *dir, const char *const *args, const char *const *env)
{
  char log[400];
  static int seq;
  snprintf(log, sizeof(log), "%s/run-%d.out", dir, seq++);
  pid_t pid = tdm_it_spawn(args, env, log);
  run_t r = { tdm_it_wait_exit(pid, 10000), NULL };
  if (r.status < 0) {
    tdm_it_kill(pid);
    fail_msg("tandem did not exit");
  }
  r.out = tdm_it_read_file(log);
  return r;
}

static void expect_in(const char *text, const char *needle)
{
  if (!strstr(text, needle))
    fail_msg("missing '%s' in:\n%s", needle, text);
}

static void test_check(void **state)
{
  char dir[256], good[300], bad[300], arg[320];
  tdm_it_tmpdir(dir, sizeof(dir), "check");
  snprintf(good, sizeof(good), "%s/good.yaml", dir);
  snprintf(bad, sizeof(bad), "%s/bad.yaml", dir);
  tdm_it_write_file(good, "origin_contact_points: 10.0.0.1\ntarget_contact_points: 10.0.1.1\nwrite_max_workers: 4\n");
  tdm_it_write_file(bad, "origin_contact_points: 10.0.0.1\ntarget_contact_points: 10.0.1.1\nprimary_clustr: TARGET\n"
                         "proxy_listen_port: 70000\n");

  snprintf(arg, sizeof(arg), "--config=%s", good);
  const char *a1[] = { "--check", arg, NULL };
  run_t r = run(dir, a1, NULL);
  assert_int_equal(r.status, 0);
  expect_in(r.out, "warning: ");
  expect_in(r.out, "'write_max_workers' is a zdm-proxy tuning key without effect in tandem; ignored");
  expect_in(r.out, "OK\n");
  free(r.out);

  snprintf(arg, sizeof(arg), "--config=%s", bad);
  const char *a2[] = { arg, "--check", NULL }; /* order does not matter */
  r = run(dir, a2, NULL);
  assert_int_equal(r.status, 1);
  char want[400];
  snprintf(want, sizeof(want), "%s:3:1: unknown key 'primary_clustr' (did you mean 'primary_cluster'?)", bad);
  expect_in(r.out, want);
  snprintf(want, sizeof(want), "%s:4:20: invalid value for 'proxy_listen_port'", bad);
  expect_in(r.out, want);
  assert_null(strstr(r.out, "OK\n"));
  free(r.out);

  /* The environment is part of the check: a bad override fails a good file. */
  snprintf(arg, sizeof(arg), "--config=%s", good);
  const char *a3[] = { "--check", arg, NULL };
  const char *env[] = { "TANDEM_READ_MODE=SOMETIMES", NULL };
  r = run(dir, a3, env);
  assert_int_equal(r.status, 1);
  expect_in(r.out, "TANDEM_READ_MODE: invalid value for 'read_mode'");
  free(r.out);

  const char *a4[] = { "--check", "--config=/nonexistent/tandem.yaml", NULL };
  r = run(dir, a4, NULL);
  assert_int_equal(r.status, 1);
  expect_in(r.out, "/nonexistent/tandem.yaml");
  free(r.out);

  const char *a5[] = { "--check", NULL };
  r = run(dir, a5, NULL);
  assert_int_equal(r.status, 2);
  expect_in(r.out, "--check needs --config=FILE");
  free(r.out);

  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_version_help_usage(void **state)
{
  char dir[256];
  tdm_it_tmpdir(dir, sizeof(dir), "cli");
  const char *a1[] = { "--version", NULL };
  run_t r = run(dir, a1, NULL);
  assert_int_equal(r.status, 0);
  assert_int_equal(strncmp(r.out, "tandem ", 7), 0);
  free(r.out);
  const char *a2[] = { "--help", NULL };
  r = run(dir, a2, NULL);
  assert_int_equal(r.status, 0);
  expect_in(r.out, "Usage: tandem [--config=FILE] [--check] [--version] [--help]");
  free(r.out);
  const char *a3[] = { "--bogus", NULL };
  r = run(dir, a3, NULL);
  assert_int_equal(r.status, 2);
  expect_in(r.out, "Usage: tandem");
  free(r.out);
  const char *a4[] = { "--config=x.yaml", "stray", NULL };
  r = run(dir, a4, NULL);
  assert_int_equal(r.status, 2);
  expect_in(r.out, "unexpected argument 'stray'");
  free(r.out);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_daemon_with_invalid_config(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "badstart");
  tdm_it_env_write_conf(&e, "replace_cql_functions: true\n");
  tdm_it_env_tandem(&e);
  int st = tdm_it_wait_exit(e.pid, 10000);
  e.pid = 0;
  assert_int_equal(st, 1);
  char *out = tdm_it_read_file(e.log);
  expect_in(out, "tandem: invalid configuration:");
  expect_in(out, "replace_cql_functions");
  free(out);
  assert_false(tdm_it_port_open(e.metrics));
  tdm_it_env_fini(&e);
}

/* The metrics port is taken: start-up fails with exit 1 and says why. */
static void test_daemon_port_in_use(void **state)
{
  tdm_it_env_t e;
  tdm_it_env_init(&e, "busyport");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(e.metrics), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(fd, 1), 0);
  tdm_it_env_write_conf(&e, NULL);
  tdm_it_env_tandem(&e);
  int st = tdm_it_wait_exit(e.pid, 10000);
  e.pid = 0;
  close(fd);
  assert_int_equal(st, 1);
  char want[120];
  snprintf(want, sizeof(want), "cannot listen for metrics on 127.0.0.1:%u", e.metrics);
  assert_true(tdm_it_wait_text(e.log, want, 1000));
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_check),
    cmocka_unit_test(test_version_help_usage),
    cmocka_unit_test(test_daemon_with_invalid_config),
    cmocka_unit_test(test_daemon_port_in_use),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
