/* Growable byte buffer with a consumed prefix, for socket input and output of the mock. Valid bytes are
 * data[off..len); off <= len <= cap always. A zeroed buffer is a valid empty one. Header-only. */
#ifndef TDM_MOCK_BUF_H
#define TDM_MOCK_BUF_H

#include <tandem/common.h>

typedef struct tdm_mock_buf_s {
  uint8_t *data; /* heap bytes, NULL until the first reserve */
  size_t off;    /* first unconsumed byte */
  size_t len;    /* end of the valid bytes */
  size_t cap;    /* bytes allocated */
} tdm_mock_buf_t;

static inline size_t tdm_mock_buf_size(const tdm_mock_buf_t *b) { return b->len - b->off; }
static inline uint8_t *tdm_mock_buf_head(const tdm_mock_buf_t *b) { return b->data + b->off; }

/* Makes room for n more bytes at data + len (moving the valid bytes to the front first). */
static inline int tdm_mock_buf_reserve(tdm_mock_buf_t *b, size_t n)
{
  if (b->off > 0 && b->cap - b->len < n) {
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
  if (b->cap - b->len >= n) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) return TDM_ENOMEM;
    cap *= 2;
  }
  uint8_t *p = realloc(b->data, cap);
  if (!p) return TDM_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

static inline int tdm_mock_buf_append(tdm_mock_buf_t *b, const void *p, size_t n)
{
  if (n == 0) return 0;
  int rc = tdm_mock_buf_reserve(b, n);
  if (rc) return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static inline void tdm_mock_buf_consume(tdm_mock_buf_t *b, size_t n)
{
  TDM_ASSERT(n <= b->len - b->off);
  b->off += n;
  if (b->off == b->len) b->off = b->len = 0;
}

static inline void tdm_mock_buf_free(tdm_mock_buf_t *b)
{
  free(b->data);
  memset(b, 0, sizeof(*b));
}

#endif
