/* Helpers for the instance and admin tests (header-only, static inline): free loopback ports, a
 * blocking HTTP/1.0 client, files, running build/tandem as a child process with its log captured, an
 * sd_notify listening socket, and polling with deadlines. Failures fail the calling cmocka test. */
#ifndef TDM_TEST_INSTANCE_HARNESS_H
#define TDM_TEST_INSTANCE_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <testlib.h>
#include <tandem/proto/reader.h> /* tdm_bytes_t, used by mockctl.h */
#include <mockctl.h>

extern char **environ;

static inline uint64_t tdm_it_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void tdm_it_sleep_ms(unsigned ms)
{
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* A loopback TCP port that was free a moment ago. */
static inline uint16_t tdm_it_free_port(void)
{
  /* Ports below the kernel's ephemeral range (32768+ by default): a port the kernel handed out for
   * bind(0) is also a candidate for any outgoing connection, so another process's connect() could
   * take it between this check and tandem's bind (seen under ctest -j2). Each process walks its own
   * pid-seeded sequence and skips ports that cannot be bound now. */
  static uint32_t next;
  if (!next) next = 20000u + ((uint32_t)getpid() * 7919u) % 12000u;
  for (int tries = 0; tries < 12000; tries++) {
    uint16_t port = (uint16_t)(20000u + (next++ - 20000u) % 12000u);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0) return port;
  }
  fail_msg("no free port in 20000-31999");
  return 0;
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static inline bool tdm_it_port_open(uint16_t port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  close(fd);
  return ok;
}

typedef struct tdm_it_http_s {
  int status;        /* HTTP status, 0 when the request failed */
  char headers[2048]; /* response headers (truncated) */
  char *body;        /* NUL-terminated body (heap), NULL when the request failed */
  size_t len;        /* body length */
} tdm_it_http_t;

static inline void tdm_it_http_free(tdm_it_http_t *r)
{
  free(r->body);
  memset(r, 0, sizeof(*r));
}

/* One request to 127.0.0.1:port (Connection: close), waiting up to timeout_ms. 0, or -1 when no
 * response came (connection refused, timeout). */
static inline int tdm_it_http_timed(uint16_t port, const char *method, const char *path, const char *auth,
                                 int timeout_ms, tdm_it_http_t *out)
{
  memset(out, 0, sizeof(*out));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  char req[1024];
  int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%sContent-Length: 0\r\n\r\n",
                   method, path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return -1;
  }
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  uint64_t deadline = tdm_it_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    uint64_t now = tdm_it_now_ms();
    if (now >= deadline)
      break;
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, (int)(deadline - now)) <= 0)
      break;
    if (len + 4096 > cap)
      buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  char *sep = strstr(buf, "\r\n\r\n");
  if (!sep || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
    free(buf);
    out->status = 0;
    return -1;
  }
  size_t hlen = (size_t)(sep - buf);
  snprintf(out->headers, sizeof(out->headers), "%.*s", (int)TDM_MIN(hlen, sizeof(out->headers) - 1), buf);
  out->len = len - hlen - 4;
  out->body = malloc(out->len + 1);
  memcpy(out->body, sep + 4, out->len);
  out->body[out->len] = '\0';
  free(buf);
  return 0;
}

static inline int tdm_it_http(uint16_t port, const char *method, const char *path, const char *auth, tdm_it_http_t *out)
{
  return tdm_it_http_timed(port, method, path, auth, 10000, out);
}

/* GETs path until it answers `status` (or timeout_ms passes); true when it did. */
static inline bool tdm_it_wait_status(uint16_t port, const char *path, int status, int timeout_ms)
{
  uint64_t deadline = tdm_it_now_ms() + (uint64_t)timeout_ms;
  do {
    tdm_it_http_t r;
    if (tdm_it_http_timed(port, "GET", path, NULL, 2000, &r) == 0 && r.status == status) {
      tdm_it_http_free(&r);
      return true;
    }
    tdm_it_http_free(&r);
    tdm_it_sleep_ms(20);
  } while (tdm_it_now_ms() < deadline);
  return false;
}

/* ---- files ---- */

static inline void tdm_it_write_file(const char *path, const char *text)
{
  /* Write then rename, so a reload never reads a half-written file. */
  char tmp[1100];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rename(tmp, path), 0);
}

static inline char *tdm_it_read_file(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return calloc(1, 1);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (len + 1 == cap)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

/* A private directory under /tmp for one test run. */
static inline void tdm_it_tmpdir(char *out, size_t cap, const char *name)
{
  snprintf(out, cap, "/tmp/tdm-%s-%d-XXXXXX", name, (int)getpid());
  assert_non_null(mkdtemp(out));
}

static inline void tdm_it_binary(char *out, size_t cap, const char *name)
{
  const char *dir = getenv("TDM_BUILD_DIR");
  snprintf(out, cap, "%s/%s", dir && *dir ? dir : "build", name);
}

/* ---- the tandem process ---- */

/* Starts build/tandem with argv[1..] = args (NULL-terminated), the test's environment plus `env`
 * (NULL-terminated "NAME=value", may be NULL), stdout and stderr appended to log_path. */
static inline pid_t tdm_it_spawn(const char *const *args, const char *const *env, const char *log_path)
{
  char bin[1024];
  tdm_it_binary(bin, sizeof(bin), "tandem");
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    for (const char *const *e = env; e && *e; e++)
      putenv((char *)*e);
    const char *argv[16] = { bin };
    size_t n = 1;
    for (const char *const *a = args; a && *a && n < 15; a++)
      argv[n++] = *a;
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

/* Waits for the child: its exit status (0..255), 128 + signal, or -1 on timeout (child left running). */
static inline int tdm_it_wait_exit(pid_t pid, int timeout_ms)
{
  uint64_t deadline = tdm_it_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (tdm_it_now_ms() >= deadline)
      return -1;
    tdm_it_sleep_ms(10);
  }
}

/* Kills a child still running (test clean-up) and reaps it. */
static inline void tdm_it_kill(pid_t pid)
{
  if (pid <= 0)
    return;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* Waits until the file at path contains `needle` (e.g. a log line); true when it did. */
static inline bool tdm_it_wait_text(const char *path, const char *needle, int timeout_ms)
{
  uint64_t deadline = tdm_it_now_ms() + (uint64_t)timeout_ms;
  do {
    char *text = tdm_it_read_file(path);
    bool found = strstr(text, needle) != NULL;
    free(text);
    if (found)
      return true;
    tdm_it_sleep_ms(20);
  } while (tdm_it_now_ms() < deadline);
  return false;
}

/* Number of occurrences of needle in the file. */
static inline size_t tdm_it_count_text(const char *path, const char *needle)
{
  char *text = tdm_it_read_file(path);
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  free(text);
  return n;
}

/* ---- sd_notify ---- */

/* A datagram socket bound at path (for NOTIFY_SOCKET). */
static inline int tdm_it_notify_listen(const char *path)
{
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  assert_true(fd >= 0 && strlen(path) < sizeof(sun.sun_path));
  memcpy(sun.sun_path, path, strlen(path));
  unlink(path);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  return fd;
}

/* Next datagram within timeout_ms into buf; false on timeout. */
static inline bool tdm_it_notify_recv(int fd, char *buf, size_t cap, int timeout_ms)
{
  struct pollfd p = { fd, POLLIN, 0 };
  if (poll(&p, 1, timeout_ms) <= 0)
    return false;
  ssize_t n = recv(fd, buf, cap - 1, 0);
  if (n < 0)
    return false;
  buf[n] = '\0';
  return true;
}

/* ---- a whole set-up: two mock clusters, tandem between them ---- */

typedef struct tdm_it_env_s {
  char dir[256];            /* private temp dir */
  char conf[300];           /* tandem.yaml */
  char log[300];            /* tandem's stdout + stderr */
  char notify_path[300];    /* NOTIFY_SOCKET */
  int notify_fd;            /* bound to notify_path */
  uint16_t port[2];         /* ORIGIN and TARGET mock node ports */
  uint16_t metrics;         /* metrics listener */
  uint16_t admin;           /* admin listener */
  uint16_t client;          /* client listener */
  tdm_mockctl_t mock[2];    /* the mocks */
  bool mock_on[2];          /* running */
  pid_t pid;                /* tandem, 0 when not running */
} tdm_it_env_t;

static inline void tdm_it_env_init(tdm_it_env_t *e, const char *name)
{
  memset(e, 0, sizeof(*e));
  tdm_it_tmpdir(e->dir, sizeof(e->dir), name);
  snprintf(e->conf, sizeof(e->conf), "%s/tandem.yaml", e->dir);
  snprintf(e->log, sizeof(e->log), "%s/tandem.out", e->dir);
  snprintf(e->notify_path, sizeof(e->notify_path), "%s/notify.sock", e->dir);
  e->notify_fd = tdm_it_notify_listen(e->notify_path);
  e->port[0] = tdm_it_free_port();
  e->port[1] = tdm_it_free_port();
  e->metrics = tdm_it_free_port();
  e->admin = tdm_it_free_port();
  e->client = tdm_it_free_port();
}

/* Whether the YAML text sets `key` at the start of one of its lines. */
static inline bool tdm_it_sets_key(const char *yaml, const char *key)
{
  size_t n = strlen(key);
  for (const char *p = yaml; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (!strncmp(p, key, n) && p[n] == ':')
      return true;
  return false;
}

/* The base configuration (fast reconnects, loopback listeners, 2 workers), minus the keys `extra`
 * sets, followed by `extra`. */
static inline void tdm_it_env_write_conf(tdm_it_env_t *e, const char *extra)
{
  char base[16][96];
  int n = 0;
  snprintf(base[n++], 96, "origin_contact_points: 127.0.0.1:%u", e->port[0]);
  snprintf(base[n++], 96, "target_contact_points: 127.0.0.1:%u", e->port[1]);
  snprintf(base[n++], 96, "proxy_listen_address: 127.0.0.1");
  snprintf(base[n++], 96, "proxy_listen_port: %u", e->client);
  snprintf(base[n++], 96, "metrics_address: 127.0.0.1");
  snprintf(base[n++], 96, "metrics_port: %u", e->metrics);
  snprintf(base[n++], 96, "admin_address: 127.0.0.1");
  snprintf(base[n++], 96, "admin_port: %u", e->admin);
  snprintf(base[n++], 96, "workers: 2");
  snprintf(base[n++], 96, "heartbeat_retry_interval_min_ms: 50");
  snprintf(base[n++], 96, "heartbeat_retry_interval_max_ms: 200");
  char text[8192];
  size_t o = 0;
  for (int i = 0; i < n; i++) {
    char key[64];
    snprintf(key, sizeof(key), "%.*s", (int)(strchr(base[i], ':') - base[i]), base[i]);
    if (!extra || !tdm_it_sets_key(extra, key))
      o += (size_t)snprintf(text + o, sizeof(text) - o, "%s\n", base[i]);
  }
  snprintf(text + o, sizeof(text) - o, "%s", extra ? extra : "");
  tdm_it_write_file(e->conf, text);
}

static inline void tdm_it_env_mock(tdm_it_env_t *e, int c)
{
  char node[64];
  snprintf(node, sizeof(node), "127.0.0.1:%u", e->port[c]);
  const char *args[] = { "--node", node, "--cluster-name", c ? "target" : "origin", "--quiet", NULL };
  int rc = tdm_mockctl_spawn(&e->mock[c], args, 5000);
  if (rc)
    fail_msg("cannot start the %s mock on %s: %s", c ? "TARGET" : "ORIGIN", node, tdm_strerror(rc));
  e->mock_on[c] = true;
}

static inline void tdm_it_env_tandem(tdm_it_env_t *e)
{
  char conf_arg[320], notify[320];
  snprintf(conf_arg, sizeof(conf_arg), "--config=%s", e->conf);
  snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", e->notify_path);
  const char *args[] = { conf_arg, NULL };
  const char *env[] = { notify, NULL };
  e->pid = tdm_it_spawn(args, env, e->log);
}

/* Both mocks, then tandem, then readiness UP and READY=1. */
static inline void tdm_it_env_up(tdm_it_env_t *e)
{
  tdm_it_env_mock(e, 0);
  tdm_it_env_mock(e, 1);
  tdm_it_env_tandem(e);
  if (!tdm_it_wait_status(e->metrics, "/health/readiness", 200, 10000)) {
    char *log = tdm_it_read_file(e->log);
    fail_msg("tandem did not become ready; its output:\n%s", log);
  }
  char buf[256];
  assert_true(tdm_it_notify_recv(e->notify_fd, buf, sizeof(buf), 5000));
  assert_non_null(strstr(buf, "READY=1"));
}

/* Sends sig and returns the exit status within timeout_ms (-1: still running). */
static inline int tdm_it_env_signal_wait(tdm_it_env_t *e, int sig, int timeout_ms)
{
  assert_int_equal(kill(e->pid, sig), 0);
  int st = tdm_it_wait_exit(e->pid, timeout_ms);
  if (st >= 0)
    e->pid = 0;
  return st;
}

static inline void tdm_it_env_fini(tdm_it_env_t *e)
{
  tdm_it_kill(e->pid);
  e->pid = 0;
  for (int c = 0; c < 2; c++)
    if (e->mock_on[c])
      tdm_mockctl_stop(&e->mock[c], 3000);
  if (e->notify_fd > 0)
    close(e->notify_fd);
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  if (system(cmd) != 0)
    print_message("could not remove %s\n", e->dir);
}

/* The value of a JSON member `"name":` (number or string, raw text up to , or }) in body. */
static inline bool tdm_it_json_raw(const char *body, const char *name, char *out, size_t cap)
{
  char key[128];
  snprintf(key, sizeof(key), "\"%s\":", name);
  const char *p = strstr(body, key);
  if (!p)
    return false;
  p += strlen(key);
  size_t n = 0;
  bool in_str = *p == '"';
  for (const char *q = p; *q && n + 1 < cap; q++) {
    if (!in_str && (*q == ',' || *q == '}'))
      break;
    if (in_str && q != p && *q == '"' && q[-1] != '\\') {
      out[n++] = *q;
      break;
    }
    out[n++] = *q;
  }
  out[n] = '\0';
  return true;
}

#endif
