/* Sticky-failure writer: every operation first makes room (grow or fail), then copies. After the first
 * failure nothing more is written, and w->err keeps the first cause. Integers are big-endian. */
#include <tandem/proto/writer.h>

void tdm_writer_free(tdm_writer_t *w)
{
  if (w->growable)
    free(w->buf);
  w->buf = NULL;
  w->len = w->cap = 0;
  w->err = 0;
}

int tdm_writer_take(tdm_writer_t *w, uint8_t **out, size_t *len)
{
  if (w->err) {
    int err = w->err;
    tdm_writer_free(w);
    return err;
  }
  if (!w->growable) return TDM_EINVAL;
  *out = w->buf;
  *len = w->len;
  w->buf = NULL;
  w->len = w->cap = 0;
  return 0;
}

/* Returns a pointer to n writable bytes at the end, or NULL after recording the failure. */
static uint8_t *room(tdm_writer_t *w, size_t n)
{
  if (w->err) return NULL;
  if (w->cap - w->len < n) {
    if (!w->growable) {
      w->err = TDM_EOVERFLOW;
      return NULL;
    }
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < n) {
      if (cap > SIZE_MAX / 2) {
        w->err = TDM_ENOMEM;
        return NULL;
      }
      cap *= 2;
    }
    uint8_t *p = realloc(w->buf, cap);
    if (!p) {
      w->err = TDM_ENOMEM;
      return NULL;
    }
    w->buf = p;
    w->cap = cap;
  }
  uint8_t *p = w->buf + w->len;
  w->len += n;
  return p;
}

void tdm_writer_raw(tdm_writer_t *w, const void *p, size_t n)
{
  if (n == 0) return; /* nothing to place; also keeps room() away from NULL + 0 on an empty writer */
  uint8_t *dst = room(w, n);
  if (dst) memcpy(dst, p, n);
}

void tdm_writer_byte(tdm_writer_t *w, uint8_t v)
{
  uint8_t *p = room(w, 1);
  if (p) p[0] = v;
}

void tdm_writer_short(tdm_writer_t *w, uint16_t v)
{
  uint8_t *p = room(w, 2);
  if (p) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
  }
}

static void put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

void tdm_writer_int(tdm_writer_t *w, int32_t v)
{
  uint8_t *p = room(w, 4);
  if (p) put32(p, (uint32_t)v);
}

void tdm_writer_long(tdm_writer_t *w, int64_t v)
{
  uint8_t *p = room(w, 8);
  if (p) {
    put32(p, (uint32_t)((uint64_t)v >> 32));
    put32(p + 4, (uint32_t)v);
  }
}

void tdm_writer_string(tdm_writer_t *w, tdm_str_t s)
{
  if (s.len > UINT16_MAX) {
    if (!w->err) w->err = TDM_EINVAL;
    return;
  }
  tdm_writer_short(w, (uint16_t)s.len);
  tdm_writer_raw(w, s.ptr, s.len);
}

void tdm_writer_cstring(tdm_writer_t *w, const char *s) { tdm_writer_string(w, tdm_str_from(s)); }

void tdm_writer_long_string(tdm_writer_t *w, tdm_str_t s)
{
  if (s.len > INT32_MAX) {
    if (!w->err) w->err = TDM_EINVAL;
    return;
  }
  tdm_writer_int(w, (int32_t)s.len);
  tdm_writer_raw(w, s.ptr, s.len);
}

void tdm_writer_bytes(tdm_writer_t *w, const void *p, int32_t n)
{
  tdm_writer_int(w, n < 0 ? -1 : n);
  if (n > 0) tdm_writer_raw(w, p, (size_t)n);
}

void tdm_writer_short_bytes(tdm_writer_t *w, const void *p, size_t n)
{
  if (n > UINT16_MAX) {
    if (!w->err) w->err = TDM_EINVAL;
    return;
  }
  tdm_writer_short(w, (uint16_t)n);
  tdm_writer_raw(w, p, n);
}

void tdm_writer_string_list(tdm_writer_t *w, const tdm_str_t *items, size_t n)
{
  if (n > UINT16_MAX) {
    if (!w->err) w->err = TDM_EINVAL;
    return;
  }
  tdm_writer_short(w, (uint16_t)n);
  for (size_t i = 0; i < n; i++) tdm_writer_string(w, items[i]);
}

void tdm_writer_string_map(tdm_writer_t *w, const tdm_str_t *keys, const tdm_str_t *values, size_t n)
{
  if (n > UINT16_MAX) {
    if (!w->err) w->err = TDM_EINVAL;
    return;
  }
  tdm_writer_short(w, (uint16_t)n);
  for (size_t i = 0; i < n; i++) {
    tdm_writer_string(w, keys[i]);
    tdm_writer_string(w, values[i]);
  }
}

void tdm_writer_inet(tdm_writer_t *w, const uint8_t *addr, uint8_t addr_len, int32_t port)
{
  if (addr_len != 4 && addr_len != 16) {
    if (!w->err) w->err = TDM_EINVAL;
    return;
  }
  tdm_writer_byte(w, addr_len);
  tdm_writer_raw(w, addr, addr_len);
  tdm_writer_int(w, port);
}

size_t tdm_writer_reserve_int(tdm_writer_t *w)
{
  size_t off = w->len;
  tdm_writer_int(w, 0);
  return off;
}

void tdm_writer_patch_int(tdm_writer_t *w, size_t offset, int32_t v)
{
  if (w->err) return;
  TDM_ASSERT(offset + 4 <= w->len);
  put32(w->buf + offset, (uint32_t)v);
}
