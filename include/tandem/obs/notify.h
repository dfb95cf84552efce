/* systemd service notifications (sd_notify protocol): READY=1 at the first readiness UP, RELOADING=1
 * with MONOTONIC_USEC at the start of each reload (as Type=notify-reload requires) then READY=1,
 * STOPPING=1 when the drain begins. One non-blocking datagram to $NOTIFY_SOCKET (path or '@'-abstract
 * address), whether or not libsystemd is linked (see notify.c for why). Without $NOTIFY_SOCKET nothing
 * is sent. */
#ifndef TANDEM_OBS_NOTIFY_H
#define TANDEM_OBS_NOTIFY_H

#include <tandem/common.h>

/* Sends `state` ("KEY=value" lines) to $NOTIFY_SOCKET. Returns 1 when sent, 0 when there is no
 * notification socket, or a negative errno-style code (-EAGAIN: the receiver's queue is full, dropped).
 * Never blocks. */
int tdm_notify(const char *state);
/* The same to an explicit socket path ("/path" or "@abstract"). */
int tdm_notify_plain(const char *socket_path, const char *state);

int tdm_notify_ready(const char *status);  /* READY=1 (+ STATUS=<status> when not NULL) */
int tdm_notify_reloading(void);            /* RELOADING=1 + MONOTONIC_USEC=<CLOCK_MONOTONIC in us> */
int tdm_notify_stopping(void);             /* STOPPING=1 */

#endif
