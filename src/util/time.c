/* Clocks: monotonic readings for code without a loop and ISO-8601 UTC formatting for log lines.
 * gmtime_r is thread-safe and never touches the TZ database, so formatting never blocks on I/O. */
#include <time.h>
#include <tandem/util/time.h>
#include <tandem/common.h>

uint64_t tdm_time_mono_ns(void) { return uv_hrtime(); }

uint64_t tdm_time_mono_ms(void) { return uv_hrtime() / 1000000u; }

int64_t tdm_time_wall_ms(void)
{
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t tdm_time_iso8601(char *buf, size_t cap, int64_t wall_ms)
{
  if (cap > 0) buf[0] = '\0';
  if (cap < TDM_TIME_ISO8601_SIZE || wall_ms < 0) return 0;
  time_t secs = (time_t)(wall_ms / 1000);
  int ms = (int)(wall_ms % 1000);
  struct tm tm;
  if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999) return 0;
  int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  if (n < 0 || (size_t)n >= cap) {
    buf[0] = '\0';
    return 0;
  }
  return (size_t)n;
}
