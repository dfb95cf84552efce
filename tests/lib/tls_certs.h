/* Test certificates for the TLS tests: generated once per process by tests/data/tls/gen.sh into
 * $TDM_BUILD_DIR/tls-test (idempotent, nothing committed), and paths of files in that directory. */
#ifndef TANDEM_TEST_TLS_CERTS_H
#define TANDEM_TEST_TLS_CERTS_H

#include <stdio.h>
#include <stdlib.h>

/* The certificate directory; generates the certificates on first use (fails the test if it cannot). */
static inline const char *tdm_test_tls_dir(void)
{
  static char dir[512];
  if (dir[0]) return dir;
  const char *src = getenv("TDM_SOURCE_DIR");
  const char *bld = getenv("TDM_BUILD_DIR");
  char cmd[1200];
  snprintf(dir, sizeof(dir), "%s/tls-test", bld ? bld : "build");
  snprintf(cmd, sizeof(cmd), "sh '%s/tests/data/tls/gen.sh' '%s'", src ? src : ".", dir);
  if (system(cmd) != 0) fail_msg("certificate generation failed: %s", cmd);
  return dir;
}

/* dir/name in a small rotation of buffers, so one call may take several paths. */
static inline const char *tdm_test_tls_path(const char *name)
{
  static char bufs[8][600];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, sizeof(bufs[0]), "%s/%s", tdm_test_tls_dir(), name);
  return b;
}

#endif
