/* systemd notifications (obs/notify.h): one datagram of "KEY=value\n" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a leading '@' means the Linux abstract namespace). Called on the main loop
 * only, so it must never block: the datagram is sent with MSG_DONTWAIT and dropped when the receiver's
 * queue is full. That is why libsystemd's sd_notify() is not used even when it is linked
 * (TDM_HAVE_SYSTEMD): it sends on a blocking socket, and a receiver that reads slowly (its queue holds
 * ten datagrams) then stalls the whole main loop, signals and admin API included. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <tandem/obs/notify.h>

int tdm_notify_plain(const char *socket_path, const char *state)
{
  if (!socket_path || !*socket_path)
    return 0;
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  size_t plen = strlen(socket_path);
  if (plen >= sizeof(sun.sun_path) || (socket_path[0] != '/' && socket_path[0] != '@'))
    return -EINVAL;
  memcpy(sun.sun_path, socket_path, plen);
  if (sun.sun_path[0] == '@')
    sun.sun_path[0] = '\0'; /* abstract namespace: the name is not NUL-terminated */
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (socket_path[0] == '/' ? 1 : 0));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sun, alen);
  int rc = n < 0 ? -errno : 1;
  close(fd);
  return rc;
}

int tdm_notify(const char *state)
{
  return tdm_notify_plain(getenv("NOTIFY_SOCKET"), state);
}

int tdm_notify_ready(const char *status)
{
  char msg[512];
  if (status)
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
  else
    snprintf(msg, sizeof(msg), "READY=1");
  return tdm_notify(msg);
}

int tdm_notify_reloading(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
  char msg[96];
  snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)usec);
  return tdm_notify(msg);
}

int tdm_notify_stopping(void)
{
  return tdm_notify("STOPPING=1");
}
