/* A per-worker listening socket: created here (socket, SO_REUSEADDR + SO_REUSEPORT, bind, listen;
 * libuv 1.44 has no UV_TCP_REUSEPORT), so every worker binds the same address:port and the kernel
 * spreads connections. Readiness is watched with a uv_poll_t and sockets are taken with accept4(),
 * which lets the listener pause and resume accepting (connection limit, drain) and, on EMFILE /
 * ENFILE, stop for a short time and count it instead of dropping queued connections (libuv's
 * uv_listen can do neither). Accepted sockets go to the owner's callback as non-blocking fds. */
#ifndef TANDEM_CORE_LISTENER_H
#define TANDEM_CORE_LISTENER_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/net/sockaddr.h>

#define TDM_LISTENER_PAUSE_LIMIT (1u << 0)  /* owner: connection limit reached */
#define TDM_LISTENER_PAUSE_EMFILE (1u << 1) /* no descriptors left; the listener clears it by timer */
#define TDM_LISTENER_PAUSE_DRAIN (1u << 2)  /* owner: draining */
#define TDM_LISTENER_EMFILE_PAUSE_MS 100    /* default pause after EMFILE / ENFILE */
#define TDM_LISTENER_ACCEPT_BATCH 32        /* accepts per readiness event (fairness with other work) */
#define TDM_LISTENER_BACKLOG 1024           /* default listen() backlog */

typedef struct tdm_listener_s tdm_listener_t;

/* One accepted socket (non-blocking, close-on-exec). Return 0 when the owner took the fd, or a
 * negative code to have the listener close it. */
typedef int (*tdm_listener_accept_cb)(tdm_listener_t *l, uv_os_sock_t fd, const tdm_sockaddr_t *peer);

struct tdm_listener_s {
  uv_poll_t poll;                  /* readiness of fd */
  uv_timer_t timer;                /* ends an EMFILE pause */
  uv_loop_t *loop;                 /* the worker's loop */
  uv_os_sock_t fd;                 /* the listening socket; -1 when none */
  tdm_sockaddr_t addr;             /* bound address, with the real port when 0 was asked */
  char name[TDM_SOCKADDR_STRLEN];  /* addr formatted, for logs */
  tdm_listener_accept_cb on_accept; /* owner callback */
  void *data;                      /* owner's pointer */
  uint32_t pause;                  /* TDM_LISTENER_PAUSE_* bits; accepting while 0 */
  uint32_t emfile_pause_ms;        /* pause length after EMFILE / ENFILE */
  bool polling;                    /* uv_poll is started */
  bool closing;                    /* tdm_listener_close ran */
  uint8_t handles;                 /* handles not yet closed */
  uint64_t accepted;               /* sockets handed to the owner */
  uint64_t emfile_pauses;          /* pauses for lack of descriptors */
  uint64_t accept_errors;          /* other accept failures */
  void (*close_cb)(tdm_listener_t *l); /* after every handle closed and the socket is closed */
};

/* Binds and listens on addr (port 0 picks one; read it back with tdm_listener_port), then accepts
 * on loop. backlog 0 = TDM_LISTENER_BACKLOG. 0 or a negative errno; after a failure nothing needs
 * closing, but keep l alive until the loop runs once (a handle opened half-way may be closing). */
int tdm_listener_open(tdm_listener_t *l, uv_loop_t *loop, const tdm_sockaddr_t *addr, int backlog,
                      tdm_listener_accept_cb cb, void *data);
/* Same, resolving host first ("localhost", "::1", "0.0.0.0", a name). */
int tdm_listener_open_host(tdm_listener_t *l, uv_loop_t *loop, const char *host, uint16_t port, int backlog,
                           tdm_listener_accept_cb cb, void *data);
/* Adds / removes pause reasons (bit masks); accepting runs while none is set. */
void tdm_listener_pause(tdm_listener_t *l, uint32_t reasons);
void tdm_listener_resume(tdm_listener_t *l, uint32_t reasons);
static inline bool tdm_listener_is_paused(const tdm_listener_t *l) { return l->pause != 0; }
static inline uint16_t tdm_listener_port(const tdm_listener_t *l) { return tdm_sockaddr_port(&l->addr); }
/* Stops accepting and closes; cb (may be NULL) runs once everything is closed. Idempotent. */
void tdm_listener_close(tdm_listener_t *l, void (*cb)(tdm_listener_t *l));

#endif
