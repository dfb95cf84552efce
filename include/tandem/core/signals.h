/* Process signals, handled on the main loop only (rule 14) through uv_signal_t: HUP reloads, USR1
 * reopens the log file, TERM/INT start a graceful drain, and a second TERM/INT during the drain asks
 * to stop at once. Nothing runs inside a raw signal handler; worker threads block these signals.
 * Starting also ignores SIGPIPE (a peer closing mid-write must be an error code, not a kill). */
#ifndef TANDEM_CORE_SIGNALS_H
#define TANDEM_CORE_SIGNALS_H

#include <uv.h>
#include <tandem/common.h>

typedef struct tdm_signals_s tdm_signals_t;

/* Owner callbacks, run on the main loop. A NULL entry ignores the signal, except on_reopen whose
 * default is tdm_log_reopen(). */
typedef struct tdm_signals_hooks_s {
  void (*on_reload)(tdm_signals_t *s);              /* SIGHUP */
  void (*on_reopen)(tdm_signals_t *s);              /* SIGUSR1 */
  void (*on_drain)(tdm_signals_t *s, int signum);   /* first SIGTERM / SIGINT */
  void (*on_stop_now)(tdm_signals_t *s, int signum); /* SIGTERM / SIGINT while draining (once) */
} tdm_signals_hooks_t;

struct tdm_signals_s {
  uv_signal_t hup;                  /* SIGHUP watcher */
  uv_signal_t usr1;                 /* SIGUSR1 watcher */
  uv_signal_t term;                 /* SIGTERM watcher */
  uv_signal_t intr;                 /* SIGINT watcher */
  const tdm_signals_hooks_t *hooks; /* owner callbacks */
  void *data;                       /* owner's pointer */
  bool draining;                    /* a drain began (by signal or tdm_signals_set_draining) */
  bool stopped;                     /* on_stop_now ran */
  bool closing;                     /* tdm_signals_close ran */
  uint8_t handles;                  /* watchers not yet closed */
  uint32_t reloads;                 /* SIGHUPs seen */
  uint32_t reopens;                 /* SIGUSR1s seen */
  uint32_t terms;                   /* SIGTERM + SIGINT seen */
  void (*close_cb)(tdm_signals_t *s); /* after every watcher closed */
};

/* On the main loop's thread. 0 or UV_E*; on failure the watchers opened so far are already closing, so
 * keep s alive until the loop has run once more. */
int tdm_signals_start(tdm_signals_t *s, uv_loop_t *loop, const tdm_signals_hooks_t *hooks, void *data);
/* A drain started another way (admin API, systemd): the next TERM/INT means stop now. */
void tdm_signals_set_draining(tdm_signals_t *s);
/* Stops watching and closes the watchers; cb (may be NULL) runs when they are closed. */
void tdm_signals_close(tdm_signals_t *s, void (*cb)(tdm_signals_t *s));

#endif
