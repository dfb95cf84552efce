/* Sticky-failure builder for CQL message bodies that tandem originates. Writes go to a growable heap
 * buffer or a caller's fixed buffer; the first failure (no memory, fixed buffer full, value out of
 * range) is remembered and every later write is a no-op, so callers check once, at the end. */
#ifndef TANDEM_PROTO_WRITER_H
#define TANDEM_PROTO_WRITER_H

#include <tandem/common.h>
#include <tandem/util/str.h>

typedef struct tdm_writer_s {
  uint8_t *buf;  /* output bytes; owned when growable */
  size_t len;    /* bytes written */
  size_t cap;    /* bytes available in buf */
  bool growable; /* buf is heap memory this writer may realloc and must free */
  int err;       /* first failure, 0 while all writes succeeded */
} tdm_writer_t;

/* An empty growable writer (a zeroed one is a fixed writer of capacity 0: every write fails). */
static inline void tdm_writer_init(tdm_writer_t *w) { memset(w, 0, sizeof(*w)); w->growable = true; }
static inline void tdm_writer_init_fixed(tdm_writer_t *w, void *buf, size_t cap)
{
  w->buf = (uint8_t *)buf;
  w->cap = cap;
  w->len = 0;
  w->growable = false;
  w->err = 0;
}
/* Frees a growable writer's buffer; the writer is then empty again. */
void tdm_writer_free(tdm_writer_t *w);
/* Hands the buffer to the caller (growable only): *out must be freed with free(). */
TDM_MUSTCHECK int tdm_writer_take(tdm_writer_t *w, uint8_t **out, size_t *len);

void tdm_writer_raw(tdm_writer_t *w, const void *p, size_t n);
void tdm_writer_byte(tdm_writer_t *w, uint8_t v);
void tdm_writer_short(tdm_writer_t *w, uint16_t v);
void tdm_writer_int(tdm_writer_t *w, int32_t v);
void tdm_writer_long(tdm_writer_t *w, int64_t v);
void tdm_writer_string(tdm_writer_t *w, tdm_str_t s);      /* fails if longer than 65535 */
void tdm_writer_cstring(tdm_writer_t *w, const char *s);
void tdm_writer_long_string(tdm_writer_t *w, tdm_str_t s);
void tdm_writer_bytes(tdm_writer_t *w, const void *p, int32_t n);       /* n < 0: null */
void tdm_writer_short_bytes(tdm_writer_t *w, const void *p, size_t n);
void tdm_writer_string_list(tdm_writer_t *w, const tdm_str_t *items, size_t n);
/* keys[i] -> values[i] */
void tdm_writer_string_map(tdm_writer_t *w, const tdm_str_t *keys, const tdm_str_t *values, size_t n);
void tdm_writer_inet(tdm_writer_t *w, const uint8_t *addr, uint8_t addr_len, int32_t port);
/* Reserves 4 bytes for an [int] filled in later with tdm_writer_patch_int; returns its offset. */
size_t tdm_writer_reserve_int(tdm_writer_t *w);
void tdm_writer_patch_int(tdm_writer_t *w, size_t offset, int32_t v);
static inline int tdm_writer_error(const tdm_writer_t *w) { return w->err; }

#endif
