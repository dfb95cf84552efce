/* Typed cross-thread messages (rule 8): a mutex-protected FIFO plus a uv_async_t on the receiving
 * loop. Any thread pushes; the push holds the lock only to link the message (and to wake the loop
 * when the queue was empty), so it never spins and never waits for the receiver's work. The async
 * callback takes the whole queue at once and delivers every message in order (uv_async_send
 * coalesces wake-ups). Messages left when the inbox closes are released by their free hook. */
#ifndef TANDEM_CORE_INBOX_H
#define TANDEM_CORE_INBOX_H

#include <uv.h>
#include <tandem/common.h>
#include <tandem/net/sockaddr.h>

typedef enum tdm_msg_kind_e {
  TDM_MSG_NEW_CONN = 0, /* an accepted socket for this worker */
  TDM_MSG_CONF_SWAP,    /* a new config snapshot (refcounted, opaque here) */
  TDM_MSG_STATS_REQ,    /* copy your counters and reply (see tdm_worker_stats_collect) */
  TDM_MSG_DRAIN,        /* stop taking new work, finish what is in flight */
  TDM_MSG_STOP,         /* close everything now and leave the loop */
  TDM_MSG_CALL,         /* run fn(arg) on the receiving thread */
  TDM_MSG_KIND_MAX      /* sentinel */
} tdm_msg_kind_t;

typedef struct tdm_msg_s tdm_msg_t;
typedef void (*tdm_msg_free_cb)(tdm_msg_t *m);

struct tdm_msg_s {
  tdm_msg_t *next;          /* queue link, NULL at the tail */
  tdm_msg_kind_t kind;      /* which member of u is meaningful */
  bool delivered;           /* set just before the handler runs; false in a free hook = never delivered */
  tdm_msg_free_cb free_cb;  /* releases what the message still holds and the message; NULL = default */
  union {
    struct {
      uv_os_sock_t fd;      /* the socket; the handler sets -1 once it owns it */
      tdm_sockaddr_t peer;  /* remote address */
    } conn;                 /* NEW_CONN */
    struct {
      void *ptr;                 /* the snapshot (one reference); the handler sets NULL once it owns it */
      void (*release)(void *ptr); /* drops that reference */
    } conf;                      /* CONF_SWAP */
    struct {
      void *collector;      /* the request being aggregated (core/worker.c) */
      uint32_t index;       /* this worker's slot in it */
    } stats;                /* STATS_REQ */
    struct {
      uint64_t timeout_ms;  /* longest drain before a forced stop (0 = owner's default) */
    } drain;                /* DRAIN */
    struct {
      void (*fn)(void *arg);     /* run on the receiving thread */
      void *arg;                 /* its argument */
      void (*cancel)(void *arg); /* run instead when never delivered (may be NULL) */
    } call;                      /* CALL */
  } u;
};

/* calloc'd message of a kind (NEW_CONN gets fd -1); NULL when out of memory. */
tdm_msg_t *tdm_msg_new(tdm_msg_kind_t kind);
tdm_msg_t *tdm_msg_new_conn(uv_os_sock_t fd, const tdm_sockaddr_t *peer);
tdm_msg_t *tdm_msg_new_conf(void *ptr, void (*release)(void *ptr));
tdm_msg_t *tdm_msg_new_call(void (*fn)(void *arg), void *arg, void (*cancel)(void *arg));
/* Runs the free hook: closes a NEW_CONN fd still >= 0, releases a CONF_SWAP pointer still set,
 * cancels an undelivered CALL, then frees the memory. */
void tdm_msg_free(tdm_msg_t *m);
/* The default hook (for custom hooks that extend it). */
void tdm_msg_free_default(tdm_msg_t *m);
const char *tdm_msg_kind_name(tdm_msg_kind_t kind);

typedef struct tdm_inbox_s tdm_inbox_t;
/* Receives one message on the loop thread and owns it (must tdm_msg_free or pass it on). */
typedef void (*tdm_inbox_cb)(tdm_inbox_t *ib, tdm_msg_t *m);

struct tdm_inbox_s {
  uv_async_t async;        /* wakes the receiving loop */
  uv_mutex_t lock;         /* guards head, tail, closed, pushed */
  tdm_msg_t *head;         /* oldest queued message */
  tdm_msg_t *tail;         /* newest queued message */
  bool closed;             /* pushes now fail with TDM_ECLOSED */
  bool inited;             /* lock and async exist (for tdm_inbox_destroy) */
  tdm_inbox_cb on_msg;     /* receiver's handler */
  void *data;              /* receiver's pointer */
  uint64_t pushed;         /* messages accepted (under lock) */
  uint64_t delivered;      /* messages handed to on_msg (loop thread) */
  uint64_t wakeups;        /* async callbacks run (loop thread) */
  void (*close_cb)(tdm_inbox_t *ib); /* after the async handle closed */
};

/* On the receiving loop's thread. 0 or UV_E*. */
int tdm_inbox_init(tdm_inbox_t *ib, uv_loop_t *loop, tdm_inbox_cb on_msg, void *data);
/* Any thread. 0, or TDM_ECLOSED when the inbox is closed (the caller still owns m). */
int tdm_inbox_push(tdm_inbox_t *ib, tdm_msg_t *m);
/* Loop thread: refuses further pushes, releases undelivered messages (delivered = false) and closes
 * the async handle; cb (may be NULL) runs when it is closed. Safe inside on_msg. */
void tdm_inbox_close(tdm_inbox_t *ib, void (*cb)(tdm_inbox_t *ib));
/* Frees the lock once no thread can push any more (e.g. after joining the receiver). */
void tdm_inbox_destroy(tdm_inbox_t *ib);

#endif
