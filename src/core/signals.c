/* Signal watchers on the main loop. libuv turns each signal into a callback in the loop (its own
 * handler only writes to a pipe), so every hook here runs as ordinary loop code. */
#include <signal.h>
#include <tandem/core/signals.h>
#include <tandem/obs/log.h>

static void on_signal(uv_signal_t *h, int signum)
{
  tdm_signals_t *s = h->data;
  const tdm_signals_hooks_t *k = s->hooks;
  switch (signum) {
  case SIGHUP:
    s->reloads++;
    tdm_log_info(NULL, "SIGHUP: reloading the configuration");
    if (k->on_reload) k->on_reload(s);
    break;
  case SIGUSR1:
    s->reopens++;
    if (k->on_reopen)
      k->on_reopen(s);
    else
      tdm_log_reopen();
    break;
  case SIGTERM:
  case SIGINT:
    s->terms++;
    if (!s->draining) {
      s->draining = true;
      tdm_log_info(NULL, "%s: draining (send it again to stop at once)", signum == SIGTERM ? "SIGTERM" : "SIGINT");
      if (k->on_drain) k->on_drain(s, signum);
    } else if (!s->stopped) {
      s->stopped = true;
      tdm_log_info(NULL, "%s during the drain: stopping now", signum == SIGTERM ? "SIGTERM" : "SIGINT");
      if (k->on_stop_now) k->on_stop_now(s, signum);
    }
    break;
  default:
    break;
  }
}

static void on_closed(uv_handle_t *h)
{
  tdm_signals_t *s = h->data;
  if (--s->handles == 0 && s->close_cb) s->close_cb(s);
}

int tdm_signals_start(tdm_signals_t *s, uv_loop_t *loop, const tdm_signals_hooks_t *hooks, void *data)
{
  static const tdm_signals_hooks_t none;
  memset(s, 0, sizeof(*s));
  s->hooks = hooks ? hooks : &none;
  s->data = data;
  uv_signal_t *const watchers[] = { &s->hup, &s->usr1, &s->term, &s->intr };
  const int signums[] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
  int rc = 0;
  size_t i = 0;
  for (; i < TDM_ARRAY_SIZE(watchers); i++) {
    if ((rc = uv_signal_init(loop, watchers[i])) < 0) break;
    watchers[i]->data = s;
    s->handles++;
    if ((rc = uv_signal_start(watchers[i], on_signal, signums[i])) < 0) {
      i++;
      break;
    }
  }
  if (rc < 0) {
    /* close what was opened (the close completes on the next loop run) */
    for (size_t j = 0; j < i && j < s->handles; j++) uv_close((uv_handle_t *)watchers[j], NULL);
    s->handles = 0;
    return rc;
  }
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

void tdm_signals_set_draining(tdm_signals_t *s) { s->draining = true; }

void tdm_signals_close(tdm_signals_t *s, void (*cb)(tdm_signals_t *s))
{
  if (s->closing || s->handles == 0) return;
  s->closing = true;
  s->close_cb = cb;
  uv_close((uv_handle_t *)&s->hup, on_closed);
  uv_close((uv_handle_t *)&s->usr1, on_closed);
  uv_close((uv_handle_t *)&s->term, on_closed);
  uv_close((uv_handle_t *)&s->intr, on_closed);
}
