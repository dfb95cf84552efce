/* Implementation of the shared test helpers declared in testlib.h: hex decoding, vector files, filler
 * bytes, and piecewise stream feeding with an exactly-sized copy of the pending bytes per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static int hex_digit(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint8_t *tdm_test_hex(const char *hex, size_t *len)
{
  size_t cap = strlen(hex) / 2 + 1, n = 0;
  uint8_t *out = malloc(cap);
  int hi = -1;
  assert_non_null(out);
  for (const char *s = hex; *s; s++) {
    if (*s == '#') {
      while (*s && *s != '\n') s++;
      if (!*s) break;
      continue;
    }
    if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') continue;
    int d = hex_digit(*s);
    if (d < 0) fail_msg("bad hex digit '%c' at offset %zu", *s, (size_t)(s - hex));
    if (hi < 0) {
      hi = d;
    } else {
      out[n++] = (uint8_t)(hi << 4 | d);
      hi = -1;
    }
  }
  if (hi >= 0) fail_msg("odd number of hex digits");
  *len = n;
  return out;
}

uint8_t *tdm_test_hex_file(const char *relpath, size_t *len)
{
  char path[4096];
  const char *root = getenv("TDM_SOURCE_DIR");
  snprintf(path, sizeof(path), "%s%s%s", root ? root : "", root ? "/" : "", relpath);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *text = malloc(cap + 1);
  assert_non_null(text);
  for (;;) {
    size_t got = fread(text + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    cap *= 2;
    text = realloc(text, cap + 1);
    assert_non_null(text);
  }
  fclose(f);
  text[n] = '\0';
  uint8_t *out = tdm_test_hex(text, len);
  free(text);
  return out;
}

void tdm_test_fill_random(uint8_t *p, size_t n, uint32_t seed)
{
  uint32_t x = seed ? seed : 0x9E3779B9u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (uint8_t)(x >> 24);
  }
}

int tdm_test_feed_cuts(const uint8_t *p, size_t len, const size_t *cuts, size_t ncuts, tdm_test_consume_fn fn,
                       void *ctx, size_t *left)
{
  size_t start = 0;     /* first byte not consumed */
  size_t delivered = 0; /* bytes handed over so far */
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    assert_true(end >= delivered && end <= len);
    delivered = end;
    size_t pending = delivered - start;
    uint8_t *copy = malloc(pending ? pending : 1);
    assert_non_null(copy);
    if (pending) memcpy(copy, p + start, pending);
    int rc = fn(copy, pending, ctx);
    free(copy);
    if (rc < 0) {
      if (left) *left = len - start;
      return rc;
    }
    assert_true((size_t)rc <= pending);
    start += (size_t)rc;
  }
  if (left) *left = len - start;
  return 0;
}

int tdm_test_feed_split(const uint8_t *p, size_t len, size_t split, tdm_test_consume_fn fn, void *ctx, size_t *left)
{
  assert_true(split <= len);
  return tdm_test_feed_cuts(p, len, &split, 1, fn, ctx, left);
}

int tdm_test_feed_step(const uint8_t *p, size_t len, size_t step, tdm_test_consume_fn fn, void *ctx, size_t *left)
{
  assert_true(step > 0);
  size_t ncuts = len / step;
  size_t *cuts = malloc((ncuts ? ncuts : 1) * sizeof(*cuts));
  assert_non_null(cuts);
  for (size_t i = 0; i < ncuts; i++) cuts[i] = (i + 1) * step;
  if (ncuts && cuts[ncuts - 1] == len) ncuts--; /* the final delivery covers it */
  int rc = tdm_test_feed_cuts(p, len, cuts, ncuts, fn, ctx, left);
  free(cuts);
  return rc;
}
