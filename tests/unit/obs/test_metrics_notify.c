/* obs/notify: the sd_notify datagrams tandem sends (READY=1, RELOADING=1 with MONOTONIC_USEC, STOPPING=1)
 * reach a listening AF_UNIX datagram socket named by a path or an abstract '@' name, directly and through
 * $NOTIFY_SOCKET; no socket means 0; a receiver that does not read never blocks the sender. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <testlib.h>
#include <tandem/obs/notify.h>

static int listen_dgram(const char *name, bool abstract)
{
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  size_t n = strlen(name);
  memcpy(sun.sun_path + (abstract ? 1 : 0), name, n);
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  if (!abstract)
    unlink(name);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
  struct timeval tv = { 2, 0 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

static void recv_text(int fd, char *buf, size_t cap)
{
  ssize_t n = recv(fd, buf, cap - 1, 0);
  assert_true(n > 0);
  buf[n] = '\0';
}

static void test_plain_path(void **state)
{
  char path[108];
  snprintf(path, sizeof(path), "/tmp/tdm-notify-%d.sock", (int)getpid());
  int fd = listen_dgram(path, false);
  char buf[256];
  assert_int_equal(tdm_notify_plain(path, "READY=1"), 1);
  recv_text(fd, buf, sizeof(buf));
  assert_string_equal(buf, "READY=1");
  close(fd);
  unlink(path);
  /* Nobody listening any more: an error code, not a crash. */
  assert_true(tdm_notify_plain(path, "READY=1") < 0);
}

static void test_plain_abstract_and_none(void **state)
{
  char name[64];
  snprintf(name, sizeof(name), "tdm-notify-abstract-%d", (int)getpid());
  /* An abstract address is the name without a trailing NUL, as tdm_notify_plain sends it. */
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path + 1, name, strlen(name));
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))), 0);
  struct timeval tv = { 2, 0 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char at[70], buf[256];
  snprintf(at, sizeof(at), "@%s", name);
  assert_int_equal(tdm_notify_plain(at, "STOPPING=1"), 1);
  recv_text(fd, buf, sizeof(buf));
  assert_string_equal(buf, "STOPPING=1");
  close(fd);
  assert_int_equal(tdm_notify_plain(NULL, "READY=1"), 0);
  assert_int_equal(tdm_notify_plain("", "READY=1"), 0);
  assert_true(tdm_notify_plain("relative/path", "READY=1") < 0);
}

static void test_messages_through_env(void **state)
{
  char path[108], buf[256];
  snprintf(path, sizeof(path), "/tmp/tdm-notify-env-%d.sock", (int)getpid());
  int fd = listen_dgram(path, false);
  setenv("NOTIFY_SOCKET", path, 1);
  assert_int_equal(tdm_notify_ready("accepting clients"), 1);
  recv_text(fd, buf, sizeof(buf));
  assert_string_equal(buf, "READY=1\nSTATUS=accepting clients");
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long before = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
  assert_int_equal(tdm_notify_reloading(), 1);
  recv_text(fd, buf, sizeof(buf));
  unsigned long long usec = 0;
  assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
  assert_true(usec >= before && usec < before + 5000000ull);
  assert_int_equal(tdm_notify_stopping(), 1);
  recv_text(fd, buf, sizeof(buf));
  assert_string_equal(buf, "STOPPING=1");
  assert_int_equal(tdm_notify_ready(NULL), 1);
  recv_text(fd, buf, sizeof(buf));
  assert_string_equal(buf, "READY=1");
  unsetenv("NOTIFY_SOCKET");
  assert_int_equal(tdm_notify_ready(NULL), 0);
  close(fd);
  unlink(path);
}

/* The receiver's queue fills up (it never reads): sends fail with -EAGAIN at once instead of blocking
 * the main loop. */
static void test_never_blocks(void **state)
{
  char path[108];
  snprintf(path, sizeof(path), "/tmp/tdm-notify-full-%d.sock", (int)getpid());
  int fd = listen_dgram(path, false);
  int sent = 0, full = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < 200; i++) {
    int rc = tdm_notify_plain(path, "RELOADING=1\nMONOTONIC_USEC=1");
    if (rc == 1)
      sent++;
    else if (rc == -EAGAIN)
      full++;
    else
      fail_msg("unexpected %d", rc);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_true(sent >= 1);
  assert_true(full >= 1);
  assert_true(t1.tv_sec - t0.tv_sec < 2);
  close(fd);
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_plain_path),
    cmocka_unit_test(test_plain_abstract_and_none),
    cmocka_unit_test(test_messages_through_env),
    cmocka_unit_test(test_never_blocks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
