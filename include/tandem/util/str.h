/* Pointer + length strings that borrow their bytes (never NUL-terminated), with the few helpers the
 * protocol and config code need. A zeroed tdm_str_t is the empty string. */
#ifndef TANDEM_UTIL_STR_H
#define TANDEM_UTIL_STR_H

#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

typedef struct tdm_str_s {
  const char *ptr; /* first byte, or NULL when len == 0 */
  size_t len;      /* length in bytes */
} tdm_str_t;

#define TDM_STR(lit) ((tdm_str_t){ (lit), sizeof(lit) - 1 })

static inline tdm_str_t tdm_str_from(const char *s) { return (tdm_str_t){ s, s ? strlen(s) : 0 }; }
static inline bool tdm_str_eq(tdm_str_t a, tdm_str_t b)
{
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool tdm_str_eq_ci(tdm_str_t a, tdm_str_t b)
{
  return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool tdm_str_eq_cstr(tdm_str_t a, const char *b) { return tdm_str_eq(a, tdm_str_from(b)); }

#endif
