/* build/tandem reloads on SIGHUP (behaviour.md §1.4; test-scenarios CF-05, CF-06, LC-11): a valid
 * file publishes epoch N+1 (status, metrics, one INFO line with old→new, systemd RELOADING=1 with
 * MONOTONIC_USEC then READY=1); an invalid file is rejected (epoch kept, counted, error in the
 * status); a changed restart-class key is kept and listed in pending_restart while the live keys of
 * the same file apply; 100 SIGHUPs within one second are serialized and the final state is the last
 * file; SIGUSR1 reopens the log file; the client connection opened before all of this still works. */
#include "test_instance_harness.h"

static char *status_body(tdm_it_env_t *e)
{
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e->metrics, "GET", "/api/v1/status", NULL, &r), 0);
  assert_int_equal(r.status, 200);
  char *b = r.body;
  r.body = NULL;
  tdm_it_http_free(&r);
  return b;
}

static long epoch_of(tdm_it_env_t *e)
{
  char *b = status_body(e), v[64];
  assert_true(tdm_it_json_raw(b, "epoch", v, sizeof(v)));
  free(b);
  return strtol(v, NULL, 10);
}

static bool wait_epoch(tdm_it_env_t *e, long epoch, int timeout_ms)
{
  uint64_t deadline = tdm_it_now_ms() + (uint64_t)timeout_ms;
  do {
    if (epoch_of(e) == epoch)
      return true;
    tdm_it_sleep_ms(20);
  } while (tdm_it_now_ms() < deadline);
  return false;
}

static char *metrics_body(tdm_it_env_t *e)
{
  tdm_it_http_t r;
  assert_int_equal(tdm_it_http(e->metrics, "GET", "/metrics", NULL, &r), 0);
  assert_int_equal(r.status, 200);
  char *b = r.body;
  r.body = NULL;
  tdm_it_http_free(&r);
  return b;
}

static void expect_in(const char *body, const char *needle)
{
  if (!strstr(body, needle))
    fail_msg("missing %s in:\n%.3000s", needle, body);
}

/* The value after the last "proxy_request_timeout_ms A→B" of the log, -1 if none. */
static long last_timeout(const char *log)
{
  char *text = tdm_it_read_file(log);
  const char *last = NULL;
  for (const char *p = text; (p = strstr(p, "proxy_request_timeout_ms ")) != NULL; p++)
    last = p;
  long v = -1;
  const char *arrow = last ? strstr(last, "→") : NULL;
  if (arrow)
    v = strtol(arrow + strlen("→"), NULL, 10);
  free(text);
  return v;
}

static void test_reloads(void **state)
{
  tdm_it_env_t e;
  char logfile[280], extra[1024], buf[256];
  tdm_it_env_init(&e, "reload");
  snprintf(logfile, sizeof(logfile), "%s/tandem.log", e.dir);
  snprintf(extra, sizeof(extra), "log_file: %s\n", logfile);
  tdm_it_env_write_conf(&e, extra);
  tdm_it_env_up(&e);
  snprintf(e.log, sizeof(e.log), "%s", logfile); /* from here on, tandem's lines go to log_file */

  /* A client connected before every reload, used again at the end. */
  tdm_mockctl_cql_t c;
  uint32_t code;
  assert_int_equal(tdm_mockctl_cql_connect(&c, "127.0.0.1", e.client, 4), 0);
  assert_int_equal(tdm_mockctl_cql_startup(&c, NULL, NULL, NULL, &code), 0);

  /* 1. A valid change: epoch 2, INFO line old→new, RELOADING=1 + MONOTONIC_USEC, then READY=1. */
  snprintf(extra, sizeof(extra), "log_file: %s\nprimary_cluster: TARGET\nproxy_request_timeout_ms: 4000\n", logfile);
  tdm_it_env_write_conf(&e, extra);
  assert_int_equal(kill(e.pid, SIGHUP), 0);
  assert_true(wait_epoch(&e, 2, 5000));
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 2000));
  unsigned long long usec = 0;
  assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
  assert_true(usec > 0);
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 2000));
  assert_string_equal(buf, "READY=1");
  assert_true(tdm_it_wait_text(e.log, "reload: epoch 2 applied: primary_cluster ORIGIN→TARGET, "
                                      "proxy_request_timeout_ms 10000→4000", 2000));
  char *b = status_body(&e);
  expect_in(b, "\"primary_cluster\":\"TARGET\"");
  expect_in(b, "\"pending_restart\":[]");
  expect_in(b, "\"result\":\"applied\",\"error\":null}");
  free(b);

  /* 2. An invalid file: rejected, epoch 2 kept, counted, error shown with file:line:column. */
  tdm_it_env_write_conf(&e, "primary_cluster: SIDEWAYS\n");
  assert_int_equal(kill(e.pid, SIGHUP), 0);
  assert_true(tdm_it_wait_text(e.log, "reload rejected, epoch 2 kept", 5000));
  assert_int_equal(epoch_of(&e), 2);
  b = status_body(&e);
  expect_in(b, "\"result\":\"rejected\",\"error\":\"");
  expect_in(b, "tandem.yaml:12:18: invalid value for 'primary_cluster'");
  expect_in(b, "\"primary_cluster\":\"TARGET\""); /* unchanged */
  free(b);
  b = metrics_body(&e);
  expect_in(b, "\ntandem_config_reloads_total{result=\"applied\"} 1\n");
  expect_in(b, "\ntandem_config_reloads_total{result=\"rejected\"} 1\n");
  expect_in(b, "\ntandem_config_epoch 2\n");
  free(b);
  /* RELOADING=1 then READY=1 for the rejected attempt too. */
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 2000));
  assert_non_null(strstr(buf, "RELOADING=1"));
  assert_true(tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 2000));
  assert_string_equal(buf, "READY=1");

  /* 3. Restart-class keys changed with a live one: the live one applies, the others are kept and listed. */
  snprintf(extra, sizeof(extra),
           "log_file: %s\nprimary_cluster: TARGET\nproxy_request_timeout_ms: 4000\nmetrics_prefix: zdm\n"
           "workers: 3\nread_mode: DUAL_ASYNC_ON_SECONDARY\n", logfile);
  tdm_it_env_write_conf(&e, extra);
  assert_int_equal(kill(e.pid, SIGHUP), 0);
  assert_true(wait_epoch(&e, 3, 5000));
  assert_true(tdm_it_wait_text(e.log, "reload: 'workers' changed (2→3) but takes effect only at a restart", 2000));
  b = status_body(&e);
  expect_in(b, "\"read_mode\":\"DUAL_ASYNC_ON_SECONDARY\"");
  expect_in(b, "\"pending_restart\":[\"metrics_prefix\",\"workers\"]");
  expect_in(b, "\"by_worker\":[{\"worker\":0,"); /* still two workers */
  assert_null(strstr(b, "\"worker\":2"));
  free(b);
  b = metrics_body(&e);
  expect_in(b, "\ntandem_config_pending_restart_keys 2\n"); /* the prefix did not change */
  expect_in(b, "\ntandem_read_mode{mode=\"DUAL_ASYNC_ON_SECONDARY\"} 1\n");
  free(b);
  while (tdm_it_notify_recv(e.notify_fd, buf, sizeof(buf), 200)) {
  }

  /* 4. SIGUSR1 reopens the log file: move it away, reopen, the next line lands in a new file. */
  char moved[420];
  snprintf(moved, sizeof(moved), "%s.1", logfile);
  assert_int_equal(rename(logfile, moved), 0);
  assert_int_equal(kill(e.pid, SIGUSR1), 0);
  tdm_it_sleep_ms(200);
  assert_int_equal(kill(e.pid, SIGHUP), 0); /* produces log lines */
  assert_true(wait_epoch(&e, 4, 5000));
  assert_true(tdm_it_wait_text(logfile, "reload: epoch 4 applied", 3000));
  assert_int_equal(tdm_it_count_text(moved, "epoch 4"), 0);

  /* 5. 100 SIGHUPs within a second, each after a new file: serialized, the last file wins. Nobody reads
   * the notification socket meanwhile: its queue fills, and tandem must not stall on it. */
  long before = epoch_of(&e);
  for (int i = 0; i < 100; i++) {
    snprintf(extra, sizeof(extra),
             "log_file: %s\nprimary_cluster: %s\nproxy_request_timeout_ms: %d\nmetrics_prefix: zdm\nworkers: 3\n"
             "read_mode: DUAL_ASYNC_ON_SECONDARY\n",
             logfile, i % 2 ? "TARGET" : "ORIGIN", 5000 + i);
    tdm_it_env_write_conf(&e, extra);
    assert_int_equal(kill(e.pid, SIGHUP), 0);
    tdm_it_sleep_ms(9);
  }
  /* The last file (timeout 5099, TARGET) must be the state once the reloads stop. */
  uint64_t deadline = tdm_it_now_ms() + 10000;
  bool final = false;
  while (!final && tdm_it_now_ms() < deadline) {
    tdm_it_sleep_ms(100);
    final = last_timeout(logfile) == 5099;
  }
  assert_true(final);
  tdm_it_sleep_ms(300); /* a reload still due would show up now */
  assert_int_equal(last_timeout(logfile), 5099);
  b = status_body(&e);
  expect_in(b, "\"primary_cluster\":\"TARGET\"");
  free(b);
  long after = epoch_of(&e);
  assert_true(after > before && after <= before + 100);
  /* Serialized: one "applied" line per epoch, in order, none skipped or repeated. */
  for (long ep = before + 1; ep <= after; ep++) {
    char line[64];
    snprintf(line, sizeof(line), "reload: epoch %ld applied", ep);
    assert_int_equal(tdm_it_count_text(logfile, line), 1);
  }
  b = metrics_body(&e);
  char want[128];
  snprintf(want, sizeof(want), "\ntandem_config_reloads_total{result=\"applied\"} %ld\n", after - 1);
  expect_in(b, want); /* every epoch after 1 came from an applied reload */
  free(b);
  /* Only step 2 was rejected (its line is in the file moved away at step 4). */
  assert_int_equal(tdm_it_count_text(logfile, "reload rejected") + tdm_it_count_text(moved, "reload rejected"), 1);

  /* The connection opened at the start is still usable. */
  tdm_mockctl_frame_t f;
  assert_int_equal(tdm_mockctl_cql_query(&c, 7, "INSERT INTO ks.t (k) VALUES (42)", &f, 5000), 0);
  assert_int_equal(f.h.opcode, 0x08);
  tdm_mockctl_frame_free(&f);
  tdm_mockctl_cql_close(&c);

  assert_int_equal(tdm_it_env_signal_wait(&e, SIGTERM, 10000), 0);
  tdm_it_env_fini(&e);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reloads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
