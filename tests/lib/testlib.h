/* Helpers shared by tandem's C tests: hex vectors (inline or from tests/data), deterministic filler
 * bytes, and stream feeding that delivers a byte vector to an incremental decoder in pieces (at a given
 * split point, at every cut of a list, or a few bytes at a time) as a socket would. Failures inside
 * these helpers fail the calling cmocka test. */
#ifndef TDM_TESTLIB_H
#define TDM_TESTLIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <cmocka.h>

/* Decodes hex text into a new buffer (free() it). Whitespace is skipped and '#' starts a comment that
 * runs to the end of the line. A bad digit or an odd digit count fails the test. */
uint8_t *tdm_test_hex(const char *hex, size_t *len);

/* Reads a hex file (format as tdm_test_hex) whose path is relative to $TDM_SOURCE_DIR, or to the working
 * directory when that is unset. Returns NULL, without failing, when the file does not exist. */
uint8_t *tdm_test_hex_file(const char *relpath, size_t *len);

/* Fills p[0..n) with xorshift bytes from seed: deterministic and incompressible. */
void tdm_test_fill_random(uint8_t *p, size_t n, uint32_t seed);

/* An incremental consumer: sees every byte delivered and not yet consumed, in a heap copy of exactly
 * len bytes made for this call (so ASan reports any read past them, and bytes move between calls, as in
 * a compacting socket buffer). It processes all it can and returns the number of bytes it consumed
 * (0..len) or a negative error, which stops the feed. */
typedef int (*tdm_test_consume_fn)(const uint8_t *buf, size_t len, void *ctx);

/* Delivers p[0..len) in pieces ending at each of cuts[0..ncuts) (ascending, each < len; duplicates and 0
 * are allowed and give empty deliveries), then the rest, calling fn after every piece. *left (may be
 * NULL) receives the bytes fn never consumed. Returns 0 or fn's error. */
int tdm_test_feed_cuts(const uint8_t *p, size_t len, const size_t *cuts, size_t ncuts, tdm_test_consume_fn fn,
                       void *ctx, size_t *left);

/* Two pieces: p[0..split) then p[split..len). Loop split over 0..len for "every split point". */
int tdm_test_feed_split(const uint8_t *p, size_t len, size_t split, tdm_test_consume_fn fn, void *ctx, size_t *left);

/* Pieces of step bytes (the last may be shorter); step 1 delivers one byte at a time. */
int tdm_test_feed_step(const uint8_t *p, size_t len, size_t step, tdm_test_consume_fn fn, void *ctx, size_t *left);

#endif
