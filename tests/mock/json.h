/* JSON output helpers for the control interface (STATS, CONNS, RULE LIST): strings are escaped so any
 * statement text yields valid one-line JSON. Header-only, appending to a tdm_writer_t. */
#ifndef TDM_MOCK_JSON_H
#define TDM_MOCK_JSON_H

#include <inttypes.h>
#include <stdarg.h>

#include <tandem/common.h>
#include <tandem/proto/writer.h>

static inline void tdm_mock_json_raw(tdm_writer_t *w, const char *s) { tdm_writer_raw(w, s, strlen(s)); }

static inline void tdm_mock_json_str(tdm_writer_t *w, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  tdm_writer_byte(w, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      tdm_writer_byte(w, '\\');
      tdm_writer_byte(w, c);
    } else if (c == '\n') {
      tdm_mock_json_raw(w, "\\n");
    } else if (c == '\t') {
      tdm_mock_json_raw(w, "\\t");
    } else if (c < 0x20 || c == 0x7f) {
      char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
      tdm_writer_raw(w, u, 6);
    } else {
      tdm_writer_byte(w, c);
    }
  }
  tdm_writer_byte(w, '"');
}

static inline void tdm_mock_json_cstr(tdm_writer_t *w, const char *s) { tdm_mock_json_str(w, s, strlen(s)); }

static inline void tdm_mock_json_fmt(tdm_writer_t *w, const char *fmt, ...) TDM_PRINTF(2, 3);
static inline void tdm_mock_json_fmt(tdm_writer_t *w, const char *fmt, ...)
{
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > 0) tdm_writer_raw(w, buf, TDM_MIN((size_t)n, sizeof(buf) - 1));
}

#endif
