/* An HTTP listener (libmicrohttpd) whose requests are answered on the main loop. MHD runs its own
 * threads; this module carries each request to the main loop through a locked queue and a uv_async_t,
 * and the MHD thread that received it waits until the main loop answers (or the listener closes, or a
 * timeout passes). So the owner's handler runs on the main loop only and may answer later, e.g. after
 * asking every worker for its counters by inbox message: no MHD thread ever reads tandem's state.
 *
 *   MHD connection thread                 main loop
 *   on_request: copy method/path/auth ──► async: handler(req)  (may answer at once or later)
 *     wait (cond, ≤ 30 s)          ◄────  tdm_admin_respond(req, status, body)
 *   send the answer */
#ifndef TANDEM_OBS_ADMIN_H
#define TANDEM_OBS_ADMIN_H

#include <uv.h>
#include <tandem/common.h>

#define TDM_ADMIN_WAIT_MS 30000 /* longest an HTTP request waits for the main loop before a 503 */

typedef struct tdm_admin_s tdm_admin_t;

/* One HTTP request, readable by the handler until it is answered. */
typedef struct tdm_admin_req_s {
  const char *method;        /* "GET", "POST", ... */
  const char *path;          /* request path without the query string */
  const char *authorization; /* Authorization header value, NULL when absent */
  tdm_admin_t *server;       /* listener it arrived on */
} tdm_admin_req_t;

/* Runs on the main loop once per request; the request must be answered exactly once with
 * tdm_admin_respond (now or later, on the main loop, before the listener closes). */
typedef void (*tdm_admin_handler_cb)(tdm_admin_t *a, tdm_admin_req_t *req, void *arg);

/* Listens on host:port (port 0 picks one) on the main loop. 0, TDM_EINVAL (unknown host),
 * TDM_ENOMEM, or a negative errno (address in use...). *out is NULL on failure. */
int tdm_admin_start(uv_loop_t *loop, const char *name, const char *host, uint16_t port,
                    tdm_admin_handler_cb cb, void *arg, tdm_admin_t **out);
/* The bound port. */
uint16_t tdm_admin_port(const tdm_admin_t *a);
/* "metrics 127.0.0.1:14001": the name given to start and the bound address. */
const char *tdm_admin_name(const tdm_admin_t *a);
/* Requests answered since start (any status). */
uint64_t tdm_admin_answered(const tdm_admin_t *a);

/* Adds a response header (name and value must stay valid until respond; at most 2 per request). */
void tdm_admin_set_header(tdm_admin_req_t *req, const char *name, const char *value);
/* Answers req with `status` and body[0..len) (malloc'd; taken, freed here). content_type may be NULL
 * (text/plain). Main loop only. */
void tdm_admin_respond(tdm_admin_req_t *req, unsigned status, const char *content_type, char *body, size_t len);
/* The same with a copy of a NUL-terminated text. */
void tdm_admin_respond_text(tdm_admin_req_t *req, unsigned status, const char *content_type, const char *text);

/* Main loop: stops accepting, answers every request not yet answered with 503, stops the MHD threads
 * (joins them) and closes the async handle; cb (may be NULL) runs once the memory can go, which this
 * module frees itself right after cb. */
void tdm_admin_close(tdm_admin_t *a, void (*cb)(tdm_admin_t *a, void *arg), void *arg);

#endif
