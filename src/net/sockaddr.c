/* Address parsing, resolution and formatting. Parsing is strict: a port is 1-5 decimal digits no
 * larger than 65535, an IPv6 address with a port must be bracketed, and a name must resolve. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <tandem/net/sockaddr.h>
#include <tandem/common.h>

#define HOST_MAX 255 /* longest DNS name */

int tdm_sockaddr_parse_ip(const char *ip, uint16_t port, tdm_sockaddr_t *out)
{
  char tmp[INET6_ADDRSTRLEN + 2];
  size_t n = ip ? strlen(ip) : 0;
  memset(out, 0, sizeof(*out));
  if (n == 0 || n >= sizeof(tmp)) return TDM_EINVAL;
  if (ip[0] == '[') {
    if (n < 3 || ip[n - 1] != ']') return TDM_EINVAL;
    memcpy(tmp, ip + 1, n - 2);
    tmp[n - 2] = '\0';
    if (inet_pton(AF_INET6, tmp, &out->in6.sin6_addr) != 1) return TDM_EINVAL;
    out->in6.sin6_family = AF_INET6;
    out->in6.sin6_port = htons(port);
    return 0;
  }
  if (inet_pton(AF_INET, ip, &out->in4.sin_addr) == 1) {
    out->in4.sin_family = AF_INET;
    out->in4.sin_port = htons(port);
    return 0;
  }
  if (inet_pton(AF_INET6, ip, &out->in6.sin6_addr) == 1) {
    out->in6.sin6_family = AF_INET6;
    out->in6.sin6_port = htons(port);
    return 0;
  }
  memset(out, 0, sizeof(*out));
  return TDM_EINVAL;
}

int tdm_sockaddr_resolve(const char *host, uint16_t port, tdm_sockaddr_t *out)
{
  size_t n = host ? strlen(host) : 0;
  if (n == 0 || n > HOST_MAX) return TDM_EINVAL;
  if (tdm_sockaddr_parse_ip(host, port, out) == 0) return 0;
  struct addrinfo hints = { 0 }, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return TDM_ENOTFOUND;
  const struct addrinfo *pick = NULL;
  for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
    if (ai->ai_family == AF_INET6 && !pick) pick = ai;
  }
  int rc = TDM_ENOTFOUND;
  if (pick && pick->ai_addrlen <= sizeof(*out)) {
    memset(out, 0, sizeof(*out));
    memcpy(out, pick->ai_addr, pick->ai_addrlen);
    tdm_sockaddr_set_port(out, port);
    rc = 0;
  }
  freeaddrinfo(res);
  return rc;
}

/* Parses 1-5 decimal digits into a port; -1 when not a valid port. */
static long parse_port(const char *p)
{
  long v = 0;
  size_t i = 0;
  for (; p[i]; i++) {
    if (p[i] < '0' || p[i] > '9' || i >= 5) return -1;
    v = v * 10 + (p[i] - '0');
  }
  return (i == 0 || v > 65535) ? -1 : v;
}

int tdm_sockaddr_parse_hostport(const char *text, uint16_t default_port, tdm_sockaddr_t *out)
{
  char host[HOST_MAX + 1];
  size_t n = text ? strlen(text) : 0;
  long port = default_port;
  memset(out, 0, sizeof(*out));
  if (n == 0 || n > HOST_MAX + 7) return TDM_EINVAL;
  const char *colon = strrchr(text, ':');
  size_t hlen = n;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close) return TDM_EINVAL;
    hlen = (size_t)(close - text) + 1; /* keep the brackets: parse_ip accepts them */
    if (close[1] == ':') {
      if ((port = parse_port(close + 2)) < 0) return TDM_EINVAL;
    } else if (close[1] != '\0') {
      return TDM_EINVAL;
    }
  } else if (colon && strchr(text, ':') == colon) {
    /* exactly one colon: host:port */
    hlen = (size_t)(colon - text);
    if ((port = parse_port(colon + 1)) < 0) return TDM_EINVAL;
  }
  /* more than one colon without brackets: a bare IPv6 address, default port */
  if (hlen == 0 || hlen > HOST_MAX) return TDM_EINVAL;
  memcpy(host, text, hlen);
  host[hlen] = '\0';
  return tdm_sockaddr_resolve(host, (uint16_t)port, out);
}

size_t tdm_sockaddr_format(const tdm_sockaddr_t *addr, char *buf, size_t cap)
{
  char ip[INET6_ADDRSTRLEN];
  int n;
  if (addr->sa.sa_family == AF_INET && inet_ntop(AF_INET, &addr->in4.sin_addr, ip, sizeof(ip)))
    n = snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(addr->in4.sin_port));
  else if (addr->sa.sa_family == AF_INET6 && inet_ntop(AF_INET6, &addr->in6.sin6_addr, ip, sizeof(ip)))
    n = snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(addr->in6.sin6_port));
  else
    n = snprintf(buf, cap, "?");
  return n < 0 ? 0 : (size_t)n;
}

socklen_t tdm_sockaddr_len(const tdm_sockaddr_t *addr)
{
  switch (addr->sa.sa_family) {
  case AF_INET:
    return sizeof(struct sockaddr_in);
  case AF_INET6:
    return sizeof(struct sockaddr_in6);
  default:
    return 0;
  }
}

uint16_t tdm_sockaddr_port(const tdm_sockaddr_t *addr)
{
  switch (addr->sa.sa_family) {
  case AF_INET:
    return ntohs(addr->in4.sin_port);
  case AF_INET6:
    return ntohs(addr->in6.sin6_port);
  default:
    return 0;
  }
}

void tdm_sockaddr_set_port(tdm_sockaddr_t *addr, uint16_t port)
{
  if (addr->sa.sa_family == AF_INET)
    addr->in4.sin_port = htons(port);
  else if (addr->sa.sa_family == AF_INET6)
    addr->in6.sin6_port = htons(port);
}

int tdm_sockaddr_peer_of(int fd, tdm_sockaddr_t *out)
{
  socklen_t len = sizeof(*out);
  memset(out, 0, sizeof(*out));
  return getpeername(fd, &out->sa, &len) == 0 ? 0 : -errno;
}

int tdm_sockaddr_local_of(int fd, tdm_sockaddr_t *out)
{
  socklen_t len = sizeof(*out);
  memset(out, 0, sizeof(*out));
  return getsockname(fd, &out->sa, &len) == 0 ? 0 : -errno;
}
