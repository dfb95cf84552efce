/* Shared foundations: the error-code space (libuv's convention: 0 or a negative code), assertions,
 * attributes, and the poisoning of unbounded string calls. Include it after system headers. */
#ifndef TANDEM_COMMON_H
#define TANDEM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define TDM_MUSTCHECK __attribute__((warn_unused_result))
#define TDM_UNUSED    __attribute__((unused))
#define TDM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TDM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TDM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TDM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* tandem's own codes start at -20000, clear of every UV_E* (which are negated errno values). */
#define TDM_ERRNO_MAP(X)                                                        \
  X(EPROTO_MALFORMED, -20000, "malformed protocol data")                       \
  X(EPROTO_VERSION,   -20001, "unsupported protocol version")                  \
  X(EPROTO_TOO_LARGE, -20002, "frame or envelope exceeds the configured limit") \
  X(EPROTO_CRC,       -20003, "checksum mismatch")                             \
  X(EPROTO_COMPRESS,  -20004, "corrupt compressed data")                       \
  X(EPROTO_OPCODE,    -20005, "unknown opcode")                                \
  X(ENOMEM,           -20006, "out of memory")                                 \
  X(EOVERFLOW,        -20007, "output buffer too small")                       \
  X(ECONF,            -20008, "invalid configuration")                         \
  X(EINVAL,           -20009, "invalid argument")                              \
  X(ENOTFOUND,        -20010, "not found")                                     \
  X(ECLOSED,          -20011, "connection closed")                             \
  X(ETIMEOUT,         -20012, "timed out")                                     \
  X(EUNAVAILABLE,     -20013, "no usable node")                                \
  /* TLS (net/tls.h): a socket refused or dropped for a TLS reason */          \
  X(ETLS_HANDSHAKE,   -20100, "TLS handshake failed")                          \
  X(ETLS_VERIFY,      -20101, "TLS peer certificate rejected")                 \
  X(ETLS_REJECTED,    -20102, "TLS peer rejected our certificate")             \
  X(ETLS_PLAINTEXT,   -20103, "plaintext connection refused: TLS required")    \
  X(ETLS_PROTOCOL,    -20104, "TLS protocol error")                            \
  X(ETLS_FILE,        -20105, "TLS certificate, key or CA file unusable")

enum tdm_errno {
#define TDM_ERRNO_ENUM(name, val, text) TDM_##name = (val),
  TDM_ERRNO_MAP(TDM_ERRNO_ENUM)
#undef TDM_ERRNO_ENUM
};

/* Names a TDM_E* or UV_E* code; never NULL. */
const char *tdm_strerror(int err);

#define TDM_BUG_ON(cond)                                                          \
  do {                                                                            \
    if (__builtin_expect(!!(cond), 0)) {                                          \
      fprintf(stderr, "tandem: bug at %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
      abort();                                                                    \
    }                                                                             \
  } while (0)
#define TDM_ASSERT(cond) TDM_BUG_ON(!(cond))

/* Unbounded string calls are banned: use snprintf / memcpy with explicit lengths. */
#pragma GCC poison strcpy strcat sprintf vsprintf gets

#endif
