/* Helpers for tests that drive the mock CQL node: process control (fork/exec, ready line, SIGTERM and
 * exit status), the control line protocol, and a blocking raw CQL client that uses tandem's frame,
 * compression and v5 envelope codecs. Everything blocks with explicit timeouts (poll). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tandem/proto/request.h>
#include <tandem/proto/response.h>

#include "mockctl.h"

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_readable(int fd, int64_t deadline)
{
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left < 0) left = 0;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = poll(&p, 1, (int)left);
    if (n > 0) return 0;
    if (n == 0) return TDM_ETIMEOUT;
    if (errno != EINTR) return -errno;
  }
}

static int write_all(int fd, const void *p, size_t n)
{
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

static int connect_to(const char *host, uint16_t port)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    sl = sizeof(*s4);
  } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    sl = sizeof(*s6);
  } else {
    return TDM_EINVAL;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

static int split_addr(const char *addr, char *host, size_t cap, uint16_t *port)
{
  const char *colon = strrchr(addr, ':');
  if (!colon) return TDM_EINVAL;
  const char *h = addr;
  size_t hl = (size_t)(colon - addr);
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl >= cap) return TDM_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  long p = strtol(colon + 1, NULL, 10);
  if (p <= 0 || p > 65535) return TDM_EINVAL;
  *port = (uint16_t)p;
  return 0;
}

/* ---- the mock process ---- */

void tdm_mockctl_binary(char *buf, size_t cap)
{
  const char *dir = getenv("TDM_BUILD_DIR");
  snprintf(buf, cap, "%s/cqlmock", dir && dir[0] ? dir : "build");
}

static int parse_ready(tdm_mockctl_t *m, char *line)
{
  char *ctl = strstr(line, "control=");
  char *nodes = strstr(line, "nodes=");
  if (!ctl || !nodes) return TDM_EPROTO_MALFORMED;
  sscanf(ctl + 8, "%63s", m->control);
  char *list = nodes + 6;
  list[strcspn(list, " \r\n")] = '\0';
  m->n_nodes = 0;
  for (char *save, *tok = strtok_r(list, ",", &save); tok && m->n_nodes < TDM_MOCKCTL_MAX_NODES;
       tok = strtok_r(NULL, ",", &save))
    snprintf(m->nodes[m->n_nodes++], TDM_MOCKCTL_ADDR_MAX, "%s", tok);
  return m->n_nodes ? 0 : TDM_EPROTO_MALFORMED;
}

int tdm_mockctl_spawn(tdm_mockctl_t *m, const char *const *args, int timeout_ms)
{
  char bin[512];
  const char *argv[128];
  size_t n = 0;
  bool has_control = false;
  memset(m, 0, sizeof(*m));
  m->out_fd = m->ctl_fd = -1;
  tdm_mockctl_binary(bin, sizeof(bin));
  argv[n++] = bin;
  for (size_t i = 0; args && args[i] && n < TDM_ARRAY_SIZE(argv) - 3; i++) {
    if (strcmp(args[i], "--control") == 0) has_control = true;
    argv[n++] = args[i];
  }
  if (!has_control) {
    argv[n++] = "--control";
    argv[n++] = "127.0.0.1:0";
  }
  argv[n] = NULL;
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) return -errno;
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    return -errno;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a test that dies (or fails an assertion) takes its mock along */
    dup2(pfd[1], STDOUT_FILENO);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  m->pid = pid;
  m->out_fd = pfd[0];
  char line[2048];
  size_t len = 0;
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    int rc = wait_readable(m->out_fd, deadline);
    ssize_t r = rc ? -1 : read(m->out_fd, line + len, sizeof(line) - 1 - len);
    if (rc || r <= 0) {
      tdm_mockctl_stop(m, 1000);
      return rc ? rc : TDM_ECLOSED;
    }
    len += (size_t)r;
    line[len] = '\0';
    char *nl = strchr(line, '\n');
    if (nl) {
      *nl = '\0';
      rc = strncmp(line, "cqlmock ready", 13) == 0 ? parse_ready(m, line) : TDM_EPROTO_MALFORMED;
      if (rc) tdm_mockctl_stop(m, 1000);
      return rc;
    }
    if (len == sizeof(line) - 1) {
      tdm_mockctl_stop(m, 1000);
      return TDM_EPROTO_MALFORMED;
    }
  }
}

int tdm_mockctl_node(const tdm_mockctl_t *m, size_t i, char *host, size_t cap, uint16_t *port)
{
  if (i >= m->n_nodes) return TDM_EINVAL;
  return split_addr(m->nodes[i], host, cap, port);
}

static int vcmd(tdm_mockctl_t *m, char *reply, size_t cap, const char *fmt, va_list ap)
{
  char line[8192];
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  if (n < 0 || (size_t)n >= sizeof(line) - 1) return TDM_EINVAL;
  line[n++] = '\n';
  if (m->ctl_fd < 0) {
    char host[64];
    uint16_t port;
    if (split_addr(m->control, host, sizeof(host), &port)) return TDM_EINVAL;
    int fd = connect_to(host, port);
    if (fd < 0) return fd;
    m->ctl_fd = fd;
  }
  int rc = write_all(m->ctl_fd, line, (size_t)n);
  if (rc) return rc;
  int64_t deadline = now_ms() + 10000;
  for (;;) {
    char *nl = memchr(m->rbuf, '\n', m->rlen);
    if (nl) {
      size_t len = (size_t)(nl - m->rbuf);
      if (reply && cap) snprintf(reply, cap, "%.*s", (int)len, m->rbuf);
      bool ok = len >= 2 && memcmp(m->rbuf, "OK", 2) == 0;
      memmove(m->rbuf, nl + 1, m->rlen - len - 1);
      m->rlen -= len + 1;
      return ok ? 0 : TDM_EINVAL;
    }
    if (m->rlen == sizeof(m->rbuf)) return TDM_EOVERFLOW;
    if ((rc = wait_readable(m->ctl_fd, deadline))) return rc;
    ssize_t r = recv(m->ctl_fd, m->rbuf + m->rlen, sizeof(m->rbuf) - m->rlen, 0);
    if (r <= 0) return TDM_ECLOSED;
    m->rlen += (size_t)r;
  }
}

int tdm_mockctl_cmd(tdm_mockctl_t *m, char *reply, size_t cap, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = vcmd(m, reply, cap, fmt, ap);
  va_end(ap);
  return rc;
}

int64_t tdm_mockctl_count(tdm_mockctl_t *m, const char *fmt, ...)
{
  char fields[4096], reply[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(fields, sizeof(fields), fmt, ap);
  va_end(ap);
  int rc = tdm_mockctl_cmd(m, reply, sizeof(reply), "COUNT %s", fields);
  if (rc) return rc;
  return strtoll(reply + 2, NULL, 10);
}

int tdm_mockctl_stop(tdm_mockctl_t *m, int timeout_ms)
{
  if (m->ctl_fd >= 0) close(m->ctl_fd);
  m->ctl_fd = -1;
  if (m->pid <= 0) return TDM_EINVAL;
  kill(m->pid, SIGTERM);
  int status = 0;
  int64_t deadline = now_ms() + timeout_ms;
  pid_t r;
  while ((r = waitpid(m->pid, &status, WNOHANG)) == 0 && now_ms() < deadline) usleep(10000);
  if (r == 0) {
    kill(m->pid, SIGKILL);
    waitpid(m->pid, &status, 0);
  }
  m->pid = 0;
  if (m->out_fd >= 0) close(m->out_fd);
  m->out_fd = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return TDM_EINVAL;
}

/* ---- raw CQL client ---- */

int tdm_mockctl_cql_connect(tdm_mockctl_cql_t *c, const char *host, uint16_t port, uint8_t version)
{
  memset(c, 0, sizeof(*c));
  c->fd = -1;
  int fd = connect_to(host, port);
  if (fd < 0) return fd;
  c->fd = fd;
  c->version = version;
  return 0;
}

void tdm_mockctl_cql_close(tdm_mockctl_cql_t *c)
{
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_cap = 0;
  tdm_envelope_reader_free(&c->env_in);
  tdm_envelope_writer_free(&c->env_out);
}

int tdm_mockctl_cql_send_raw(tdm_mockctl_cql_t *c, const void *p, size_t n) { return write_all(c->fd, p, n); }

int tdm_mockctl_cql_send(tdm_mockctl_cql_t *c, int16_t stream, uint8_t opcode, const void *body, size_t len)
{
  tdm_frame_header_t h = { .version = c->version, .stream = stream, .opcode = opcode };
  uint8_t hdr[TDM_FRAME_HEADER_MAX], *packed = NULL;
  int rc;
  if (c->framed) {
    h.length = (uint32_t)len;
    tdm_frame_header_encode(&h, hdr);
    uint8_t *out;
    size_t n;
    rc = tdm_envelope_writer_add(&c->env_out, hdr, body, len);
    if (!rc) rc = tdm_envelope_writer_take(&c->env_out, &out, &n);
    if (!rc && out) {
      rc = write_all(c->fd, out, n);
      free(out);
    }
    return rc;
  }
  if (c->compress_on && c->compression != TDM_COMPRESSION_NONE && opcode != TDM_OP_STARTUP) {
    rc = tdm_body_compress(c->compression, body, len, &packed, &len);
    if (rc) return rc;
    body = packed;
    h.flags |= TDM_FLAG_COMPRESSED;
  }
  h.length = (uint32_t)len;
  size_t hl = tdm_frame_header_encode(&h, hdr);
  rc = write_all(c->fd, hdr, hl);
  if (!rc && len) rc = write_all(c->fd, body, len);
  free(packed);
  return rc;
}

/* One frame from the bytes already buffered: 1, 0 (need more) or <0. */
static int take_frame(tdm_mockctl_cql_t *c, tdm_mockctl_frame_t *f)
{
  const uint8_t *body;
  size_t consumed = 0;
  int rc;
  memset(f, 0, sizeof(*f));
  if (c->framed) {
    tdm_envelope_t env;
    rc = tdm_envelope_read(&c->env_in, c->in, c->in_len, &consumed, &env);
    if (rc == 1) {
      f->h = env.header;
      f->len = env.header.length;
      f->body = malloc(f->len ? f->len : 1);
      if (!f->body) return TDM_ENOMEM;
      if (f->len) memcpy(f->body, env.body, f->len);
    }
  } else {
    rc = tdm_frame_decode(c->in, c->in_len, 256u << 20, &f->h, &body);
    if (rc > 0) {
      consumed = (size_t)rc;
      if (f->h.flags & TDM_FLAG_COMPRESSED) {
        rc = tdm_body_decompress(c->compression, body, f->h.length, 256u << 20, &f->body, &f->len);
        if (rc) return rc;
      } else {
        f->len = f->h.length;
        f->body = malloc(f->len ? f->len : 1);
        if (!f->body) return TDM_ENOMEM;
        if (f->len) memcpy(f->body, body, f->len);
      }
      rc = 1;
    }
  }
  if (consumed) {
    memmove(c->in, c->in + consumed, c->in_len - consumed);
    c->in_len -= consumed;
  }
  if (rc == 1 && (f->h.opcode == TDM_OP_READY || f->h.opcode == TDM_OP_AUTHENTICATE)) {
    c->compress_on = true;
    if (tdm_proto_has_segments(c->version) && !c->framed) {
      c->framed = true;
      c->env_in.lz4 = c->env_out.lz4 = c->compression == TDM_COMPRESSION_LZ4;
    }
  }
  return rc;
}

int tdm_mockctl_cql_recv(tdm_mockctl_cql_t *c, int timeout_ms, tdm_mockctl_frame_t *f)
{
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    int rc = take_frame(c, f);
    if (rc == 1) return 0;
    if (rc < 0) return rc;
    if (c->in_cap - c->in_len < 65536) {
      size_t cap = c->in_cap ? c->in_cap * 2 : 262144;
      uint8_t *p = realloc(c->in, cap);
      if (!p) return TDM_ENOMEM;
      c->in = p;
      c->in_cap = cap;
    }
    if ((rc = wait_readable(c->fd, deadline))) return rc;
    ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) return TDM_ECLOSED;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    c->in_len += (size_t)r;
  }
}

void tdm_mockctl_frame_free(tdm_mockctl_frame_t *f)
{
  free(f->body);
  f->body = NULL;
  f->len = 0;
}

int tdm_mockctl_error_code(const tdm_mockctl_frame_t *f, uint32_t *code, char *msg, size_t cap)
{
  tdm_str_t m;
  if (f->h.opcode != TDM_OP_ERROR) return TDM_EINVAL;
  int rc = tdm_response_peek_error_code(f->body, f->len, code, &m);
  if (!rc && msg && cap) snprintf(msg, cap, "%.*s", (int)m.len, m.ptr);
  return rc;
}

int tdm_mockctl_cql_startup(tdm_mockctl_cql_t *c, const char *compression, const char *user, const char *pass,
                            uint32_t *err_code)
{
  tdm_str_t keys[2] = { TDM_STR("CQL_VERSION"), TDM_STR("COMPRESSION") };
  tdm_str_t vals[2] = { TDM_STR("3.0.0"), tdm_str_from(compression) };
  tdm_writer_t w;
  tdm_mockctl_frame_t f;
  tdm_writer_init(&w);
  tdm_request_encode_startup(&w, keys, vals, compression ? 2 : 1);
  int rc = tdm_writer_error(&w);
  if (compression && tdm_compression_parse(tdm_str_from(compression), &c->compression))
    c->compression = TDM_COMPRESSION_NONE;
  if (!rc) rc = tdm_mockctl_cql_send(c, 0, TDM_OP_STARTUP, w.buf, w.len);
  tdm_writer_free(&w);
  if (!rc) rc = tdm_mockctl_cql_recv(c, 5000, &f);
  if (rc) return rc;
  for (int round = 0; round < 4; round++) {
    uint8_t op = f.h.opcode;
    if (op == TDM_OP_READY || op == TDM_OP_AUTH_SUCCESS) {
      tdm_mockctl_frame_free(&f);
      return 0;
    }
    if (op == TDM_OP_ERROR) {
      rc = tdm_mockctl_error_code(&f, err_code, NULL, 0);
      tdm_mockctl_frame_free(&f);
      return rc ? rc : TDM_EINVAL;
    }
    tdm_mockctl_frame_free(&f);
    if (op != TDM_OP_AUTHENTICATE && op != TDM_OP_AUTH_CHALLENGE) return TDM_EPROTO_MALFORMED;
    char token[256];
    int n = snprintf(token, sizeof(token), "%c%s%c%s", 0, user ? user : "", 0, pass ? pass : "");
    tdm_writer_init(&w);
    tdm_request_encode_auth_response(&w, token, n);
    rc = tdm_writer_error(&w);
    if (!rc) rc = tdm_mockctl_cql_send(c, 0, TDM_OP_AUTH_RESPONSE, w.buf, w.len);
    tdm_writer_free(&w);
    if (!rc) rc = tdm_mockctl_cql_recv(c, 5000, &f);
    if (rc) return rc;
  }
  tdm_mockctl_frame_free(&f);
  return TDM_EPROTO_MALFORMED;
}

int tdm_mockctl_cql_open(tdm_mockctl_t *m, size_t node, uint8_t version, const char *compression, tdm_mockctl_cql_t *c)
{
  char host[64];
  uint16_t port;
  uint32_t code = 0;
  int rc = tdm_mockctl_node(m, node, host, sizeof(host), &port);
  if (!rc) rc = tdm_mockctl_cql_connect(c, host, port, version);
  if (!rc) rc = tdm_mockctl_cql_startup(c, compression, NULL, NULL, &code);
  return rc;
}

int tdm_mockctl_cql_request(tdm_mockctl_cql_t *c, int16_t stream, uint8_t opcode, const void *body, size_t len,
                            tdm_mockctl_frame_t *resp, int timeout_ms)
{
  int rc = tdm_mockctl_cql_send(c, stream, opcode, body, len);
  int64_t deadline = now_ms() + timeout_ms;
  while (!rc) {
    rc = tdm_mockctl_cql_recv(c, (int)TDM_MAX(deadline - now_ms(), 0), resp);
    if (rc) break;
    if (resp->h.stream == stream) return 0;
    tdm_mockctl_frame_free(resp); /* events and other streams */
  }
  return rc;
}

int tdm_mockctl_rows_count(const tdm_mockctl_frame_t *f, int32_t *rows)
{
  tdm_response_t r;
  if (f->h.opcode != TDM_OP_RESULT || tdm_response_decode(f->h.version, f->h.opcode, f->body, f->len, &r, NULL) ||
      r.result.kind != TDM_RESULT_ROWS)
    return TDM_EINVAL;
  *rows = r.result.rows.rows_count;
  return 0;
}

int tdm_mockctl_rows_cell(const tdm_mockctl_frame_t *f, int32_t row, const char *column, tdm_bytes_t *cell,
                          uint16_t *type_id)
{
  tdm_response_t r;
  if (f->h.opcode != TDM_OP_RESULT || tdm_response_decode(f->h.version, f->h.opcode, f->body, f->len, &r, NULL) ||
      r.result.kind != TDM_RESULT_ROWS)
    return TDM_EINVAL;
  const tdm_response_rows_t *rows = &r.result.rows;
  tdm_response_column_t col;
  size_t pos = 0;
  int idx = -1, i = 0;
  while (idx < 0 && tdm_response_column_next(&rows->metadata, &pos, &col) == 1) {
    if (tdm_str_eq_cstr(col.name, column)) {
      idx = i;
      if (type_id) *type_id = col.type.id;
    }
    i++;
  }
  if (idx < 0 || row < 0 || row >= rows->rows_count) return TDM_ENOTFOUND;
  tdm_response_rows_iter_t it;
  tdm_response_rows_iter_init(&it, rows);
  for (int32_t k = 0; k <= row; k++)
    if (tdm_response_rows_next_row(&it) != 1) return TDM_EPROTO_MALFORMED;
  for (int k = 0; k <= idx; k++)
    if (tdm_response_rows_next_cell(&it, cell) != 1) return TDM_EPROTO_MALFORMED;
  return 0;
}

int tdm_mockctl_cql_query(tdm_mockctl_cql_t *c, int16_t stream, const char *cql, tdm_mockctl_frame_t *resp,
                          int timeout_ms)
{
  tdm_query_params_t p = { .consistency = TDM_CL_ONE };
  tdm_writer_t w;
  tdm_writer_init(&w);
  tdm_request_encode_query(&w, c->version, tdm_str_from(cql), &p);
  int rc = tdm_writer_error(&w);
  if (!rc) rc = tdm_mockctl_cql_request(c, stream, TDM_OP_QUERY, w.buf, w.len, resp, timeout_ms);
  tdm_writer_free(&w);
  return rc;
}
