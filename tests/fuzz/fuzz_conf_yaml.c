/* libFuzzer target for the configuration loader (tdm_conf_load_buffer). The input is a YAML document,
 * optionally followed by a line `%%ENV` and `NAME=value` lines used as the environment. An accepted
 * snapshot is rendered key by key (into a roomy and a tiny buffer) and diffed against the defaults.
 * Nothing may crash, trip a sanitizer or leak. */
#include <string.h>
#include <tandem/conf/conf.h>

#define FUZZ_ENV_MAX 16 /* environment entries taken from one input */

static void on_change(const tdm_conf_key_t *key, const char *old_text, const char *new_text, void *arg)
{
  /* Touch every byte so that a bad string is caught here. */
  *(size_t *)arg += strlen(old_text) + strlen(new_text) + strlen(key->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char marker[] = "\n%%ENV\n";
  const char *text = (const char *)data;
  const char *split = memmem(text, size, marker, sizeof(marker) - 1);
  size_t yaml_len = split ? (size_t)(split - text) : size;

  char *env_buf = NULL;
  char *envp[FUZZ_ENV_MAX + 1] = { NULL };
  if (split) {
    size_t off = yaml_len + sizeof(marker) - 1;
    env_buf = strndup(text + off, size - off); /* stops at a NUL: env strings are C strings */
    if (!env_buf)
      return 0;
    size_t n = 0;
    for (char *line = strtok(env_buf, "\n"); line && n < FUZZ_ENV_MAX; line = strtok(NULL, "\n"))
      envp[n++] = line;
  }

  tdm_conf_t *conf = NULL;
  tdm_conf_diag_t diag = { 0 };
  int rc = tdm_conf_load_buffer("fuzz.yaml", text, yaml_len, envp, &conf, &diag);
  if (rc == 0) {
    tdm_conf_t *defaults = NULL;
    size_t touched = 0;
    char big[4096], tiny[4];
    for (size_t i = 0; i < tdm_conf_key_count(); i++) {
      const tdm_conf_key_t *k = tdm_conf_key_at(i);
      (void)tdm_conf_render(conf, k, big, sizeof(big));
      (void)tdm_conf_render(conf, k, tiny, sizeof(tiny));
    }
    if (tdm_conf_defaults(&defaults) == 0) {
      (void)tdm_conf_diff(defaults, conf, on_change, &touched);
      tdm_conf_unref(defaults);
    }
    tdm_conf_unref(tdm_conf_ref(conf));
    tdm_conf_unref(conf);
  } else if (rc == TDM_ECONF && (!diag.message || diag.nerrors == 0)) {
    __builtin_trap(); /* a refusal always says why */
  }
  tdm_conf_diag_free(&diag);
  free(env_buf);
  return 0;
}
