/* The control interface: a line protocol on a TCP port (one command per line, one reply line "OK ..."
 * or "ERR ...") for rules, counters, connections and node up/down, documented in tests/mock/README.md.
 * --script files run the same commands at start-up. */
#ifndef TDM_MOCK_CONTROL_H
#define TDM_MOCK_CONTROL_H

#include <tandem/proto/writer.h>

#include "mock.h"

/* Listens on "host:port" (port 0 picks one; mock->control_name gets the real address). */
TDM_MUSTCHECK int tdm_mock_control_start(tdm_mock_t *mock, const char *addr);
/* Closes the listener and every control client. */
void tdm_mock_control_stop(tdm_mock_t *mock);
/* Runs one command; the reply (without newline) is appended to reply. Returns 0 for OK. */
int tdm_mock_control_exec(tdm_mock_t *mock, const char *line, size_t len, tdm_writer_t *reply);

#endif
