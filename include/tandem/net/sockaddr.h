/* Socket addresses: one union big enough for IPv4 and IPv6, parsing of "ip", "[v6]", "host:port" and
 * "[v6]:port", name resolution for start-up ("localhost", hostnames; blocking, never on a worker's hot
 * path), and formatting as "10.0.0.5:5123" / "[::1]:9042" for log tags and status output. */
#ifndef TANDEM_NET_SOCKADDR_H
#define TANDEM_NET_SOCKADDR_H

#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* Longest formatted address: "[" + INET6_ADDRSTRLEN-1 + "]:" + 5 digits + NUL, rounded up. */
#define TDM_SOCKADDR_STRLEN 64

typedef union tdm_sockaddr_u {
  struct sockaddr sa;          /* family-independent view; sa_family == 0 means "unset" */
  struct sockaddr_in in4;      /* AF_INET */
  struct sockaddr_in6 in6;     /* AF_INET6 */
  struct sockaddr_storage ss;  /* size and alignment for any family */
} tdm_sockaddr_t;

/* Numeric IPv4 or IPv6 ("::1" or "[::1]") only; no name lookup. 0 or TDM_EINVAL. */
int tdm_sockaddr_parse_ip(const char *ip, uint16_t port, tdm_sockaddr_t *out);

/* Numeric address, else getaddrinfo() (blocking: for start-up and reload on the main thread). When a
 * name has IPv4 and IPv6 addresses the first IPv4 one wins ("localhost" -> 127.0.0.1).
 * 0, TDM_EINVAL (empty or too long) or TDM_ENOTFOUND. */
int tdm_sockaddr_resolve(const char *host, uint16_t port, tdm_sockaddr_t *out);

/* "host:port", "[v6]:port", "host" or a bare IPv6 address; a missing port takes default_port, and a
 * port of 0 in the text is allowed (bind to any port). Resolves like tdm_sockaddr_resolve.
 * 0, TDM_EINVAL (bad syntax or port) or TDM_ENOTFOUND. */
int tdm_sockaddr_parse_hostport(const char *text, uint16_t default_port, tdm_sockaddr_t *out);

/* "a.b.c.d:port" or "[v6]:port" into buf (NUL-terminated, truncated to cap). Returns the untruncated
 * length, like snprintf; an unset or unknown family formats as "?". */
size_t tdm_sockaddr_format(const tdm_sockaddr_t *addr, char *buf, size_t cap);

/* Length to pass to bind()/connect() for this family (0 when unset). */
socklen_t tdm_sockaddr_len(const tdm_sockaddr_t *addr);

uint16_t tdm_sockaddr_port(const tdm_sockaddr_t *addr);
void tdm_sockaddr_set_port(tdm_sockaddr_t *addr, uint16_t port);

/* getpeername / getsockname of a socket into out. 0 or a negative UV-style errno. */
int tdm_sockaddr_peer_of(int fd, tdm_sockaddr_t *out);
int tdm_sockaddr_local_of(int fd, tdm_sockaddr_t *out);

#endif
