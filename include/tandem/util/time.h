/* Time for the event loops and the logs: the loop's cached monotonic milliseconds (uv_now, updated
 * once per loop iteration, so reading it costs nothing), a fresh monotonic clock for code without a
 * loop, and wall-clock ISO-8601 UTC timestamps with millisecond precision for log lines. */
#ifndef TANDEM_UTIL_TIME_H
#define TANDEM_UTIL_TIME_H

#include <stdint.h>
#include <stddef.h>
#include <uv.h>

/* "2024-05-01T12:34:56.789Z" plus the NUL. */
#define TDM_TIME_ISO8601_SIZE 25

/* The loop's cached time in ms (monotonic; refreshed by libuv before timers run each iteration). */
static inline uint64_t tdm_time_loop_ms(const uv_loop_t *loop) { return uv_now(loop); }

/* Monotonic ms / ns read from the clock now (for threads without a loop, e.g. the log writer). */
uint64_t tdm_time_mono_ms(void);
uint64_t tdm_time_mono_ns(void);

/* Wall-clock ms since the Unix epoch. */
int64_t tdm_time_wall_ms(void);

/* Writes wall_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into buf. Returns the length written (24), or 0
 * when cap < TDM_TIME_ISO8601_SIZE or the time is negative or past year 9999; buf is always
 * NUL-terminated when cap > 0. */
size_t tdm_time_iso8601(char *buf, size_t cap, int64_t wall_ms);

#endif
