/* Bounds-checked cursor over a CQL message body. Every getter checks the bytes left before it reads,
 * returns 0 or TDM_EPROTO_MALFORMED, and on failure leaves the cursor where it was. Strings and bytes
 * borrow from the body (no copies). Notation types are those of the native protocol spec §3. */
#ifndef TANDEM_PROTO_READER_H
#define TANDEM_PROTO_READER_H

#include <tandem/common.h>
#include <tandem/util/str.h>

typedef struct tdm_reader_s {
  const uint8_t *buf; /* first byte of the body */
  size_t len;         /* body length */
  size_t pos;         /* next byte to read; pos <= len always */
} tdm_reader_t;

/* [bytes] / [value]: len >= 0 is a value, -1 null, -2 not set ([value] only). */
typedef struct tdm_bytes_s {
  const uint8_t *ptr; /* first byte, NULL when len <= 0 */
  int32_t len;        /* byte count, or -1 (null) / -2 (unset) */
} tdm_bytes_t;

static inline void tdm_reader_init(tdm_reader_t *r, const void *buf, size_t len)
{
  r->buf = (const uint8_t *)buf;
  r->len = len;
  r->pos = 0;
}
static inline size_t tdm_reader_left(const tdm_reader_t *r) { return r->len - r->pos; }
static inline const uint8_t *tdm_reader_cur(const tdm_reader_t *r) { return r->buf + r->pos; }

TDM_MUSTCHECK int tdm_reader_byte(tdm_reader_t *r, uint8_t *out);
TDM_MUSTCHECK int tdm_reader_short(tdm_reader_t *r, uint16_t *out);
TDM_MUSTCHECK int tdm_reader_int(tdm_reader_t *r, int32_t *out);
TDM_MUSTCHECK int tdm_reader_uint(tdm_reader_t *r, uint32_t *out);
TDM_MUSTCHECK int tdm_reader_long(tdm_reader_t *r, int64_t *out);
TDM_MUSTCHECK int tdm_reader_raw(tdm_reader_t *r, size_t n, const uint8_t **out);
TDM_MUSTCHECK int tdm_reader_skip(tdm_reader_t *r, size_t n);
TDM_MUSTCHECK int tdm_reader_string(tdm_reader_t *r, tdm_str_t *out);      /* [short] n + n bytes */
TDM_MUSTCHECK int tdm_reader_long_string(tdm_reader_t *r, tdm_str_t *out); /* [int] n + n bytes, n >= 0 */
TDM_MUSTCHECK int tdm_reader_bytes(tdm_reader_t *r, tdm_bytes_t *out);     /* [int] n, n < 0 is null */
TDM_MUSTCHECK int tdm_reader_value(tdm_reader_t *r, tdm_bytes_t *out);     /* [int] n, -1 null, -2 unset */
TDM_MUSTCHECK int tdm_reader_short_bytes(tdm_reader_t *r, tdm_bytes_t *out); /* [short] n + n bytes */
TDM_MUSTCHECK int tdm_reader_uuid(tdm_reader_t *r, const uint8_t **out16);
TDM_MUSTCHECK int tdm_reader_inet(tdm_reader_t *r, const uint8_t **addr, uint8_t *addr_len, int32_t *port);
TDM_MUSTCHECK int tdm_reader_inetaddr(tdm_reader_t *r, const uint8_t **addr, uint8_t *addr_len);
/* [string list] / [string map] / [string multimap] / [bytes map]: skip the whole structure. */
TDM_MUSTCHECK int tdm_reader_skip_string_list(tdm_reader_t *r);
TDM_MUSTCHECK int tdm_reader_skip_string_map(tdm_reader_t *r);
TDM_MUSTCHECK int tdm_reader_skip_string_multimap(tdm_reader_t *r);
TDM_MUSTCHECK int tdm_reader_skip_bytes_map(tdm_reader_t *r);
/* Finds `key` in a [string map] at the cursor and consumes the map; *found tells whether it was there. */
TDM_MUSTCHECK int tdm_reader_string_map_get(tdm_reader_t *r, tdm_str_t key, tdm_str_t *value, bool *found);

#endif
