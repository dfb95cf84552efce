/* Loading a snapshot: defaults, then the YAML file, then ZDM_/TANDEM_ variables, then port resolution and
 * the cross-key rules; every problem is collected into the diag (errors fail the load, warnings are for the
 * core to log). Also `--check` and the diag's own bookkeeping.
 *
 *   defaults (key table) -> conf_yaml.c -> conf_env.c -> resolve + validate (conf_validate.c) -> snapshot */
#include <errno.h>
#include <unistd.h>
#include "internal.h"

#define TDM__CONF_FILE_MAX (16u << 20) /* a configuration file larger than this is refused */

/* ---- diag ---- */

void tdm_conf_diag_free(tdm_conf_diag_t *diag)
{
  if (!diag)
    return;
  for (size_t i = 0; i < diag->nerrors; i++)
    free(diag->errors[i]);
  for (size_t i = 0; i < diag->nwarnings; i++)
    free(diag->warnings[i]);
  free(diag->errors);
  free(diag->warnings);
  free(diag->message);
  memset(diag, 0, sizeof(*diag));
}

/* Appends msg (taken over) to a list; NULL msg means its formatting failed. */
static void push_owned(tdm__conf_loader_t *ld, char ***list, size_t *n, char *msg)
{
  char **nl = msg ? realloc(*list, (*n + 1) * sizeof(*nl)) : NULL;
  if (!nl) {
    free(msg);
    ld->oom = true;
    return;
  }
  nl[*n] = msg;
  *list = nl;
  (*n)++;
}

static void push(tdm__conf_loader_t *ld, char ***list, size_t *n, const char *fmt, va_list ap)
{
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  push_owned(ld, list, n, msg);
}

void tdm__conf_error(tdm__conf_loader_t *ld, const char *fmt, ...)
{
  if (ld->stop)
    return;
  va_list ap;
  va_start(ap, fmt);
  push(ld, &ld->diag->errors, &ld->diag->nerrors, fmt, ap);
  va_end(ap);
  if (ld->diag->nerrors >= TDM__CONF_MAX_ERRORS) {
    /* One last line, then nothing more is collected. */
    char *msg = NULL;
    if (asprintf(&msg, "%s: too many errors, giving up", ld->name ? ld->name : "configuration") < 0)
      msg = NULL;
    push_owned(ld, &ld->diag->errors, &ld->diag->nerrors, msg);
    ld->stop = true;
  }
}

void tdm__conf_warn(tdm__conf_loader_t *ld, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  push(ld, &ld->diag->warnings, &ld->diag->nwarnings, fmt, ap);
  va_end(ap);
}

void tdm__conf_where(const tdm__conf_loader_t *ld, const tdm_conf_key_t *key, char *out, size_t outlen)
{
  const tdm_conf_origin_t *o = &ld->conf->origin[tdm_conf_key_index(key)];
  switch (o->source) {
  case TDM_CONF_SRC_FILE:
    snprintf(out, outlen, "%s:%u:%u", ld->name ? ld->name : "configuration", (unsigned)o->line,
             (unsigned)o->col);
    return;
  case TDM_CONF_SRC_ENV_ZDM:
  case TDM_CONF_SRC_ENV_TANDEM: {
    size_t o2 = (size_t)snprintf(out, outlen, "%s", o->source == TDM_CONF_SRC_ENV_ZDM ? "ZDM_" : "TANDEM_");
    for (const char *p = key->name; *p && o2 + 1 < outlen; p++)
      out[o2++] = (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
    out[TDM_MIN(o2, outlen - 1)] = '\0';
    return;
  }
  default:
    snprintf(out, outlen, "%s", ld->name ? ld->name : "configuration");
    return;
  }
}

/* ---- load ---- */

static int finish_message(tdm_conf_diag_t *diag)
{
  tdm__conf_sb_t sb = { 0 };
  for (size_t i = 0; i < diag->nerrors; i++) {
    if (i)
      tdm__conf_sb_putn(&sb, "\n", 1);
    tdm__conf_sb_puts(&sb, diag->errors[i]);
  }
  if (sb.oom) {
    tdm__conf_sb_free(&sb);
    return TDM_ENOMEM;
  }
  diag->message = sb.buf; /* ownership moves to the diag */
  return 0;
}

static int load(const char *name, const char *data, size_t len, char *const *envp, tdm_conf_t **out,
                tdm_conf_diag_t *udiag)
{
  tdm_conf_diag_t local = { 0 };
  tdm__conf_loader_t *ld = calloc(1, sizeof(*ld));
  int rc;
  *out = NULL;
  if (!ld)
    return TDM_ENOMEM;
  ld->diag = udiag ? udiag : &local;
  ld->name = name;
  rc = tdm__conf_new_defaults(&ld->conf);
  if (rc)
    goto fail;
  if (name && !(ld->conf->path = strdup(name))) {
    rc = TDM_ENOMEM;
    goto fail;
  }
  if (data)
    tdm__conf_yaml_apply(ld, data, len);
  tdm__conf_env_apply(ld, envp);
  if (ld->diag->nerrors == 0 && !ld->oom) {
    tdm__conf_resolve(ld->conf);
    tdm__conf_validate(ld);
  }
  if (ld->diag->nerrors == 0 && !ld->oom)
    tdm__conf_warn_effects(ld);
  if (ld->oom) {
    rc = TDM_ENOMEM;
    goto fail;
  }
  if (ld->diag->nerrors) {
    rc = finish_message(ld->diag);
    if (rc == 0)
      rc = TDM_ECONF;
    goto fail;
  }
  *out = ld->conf;
  free(ld);
  tdm_conf_diag_free(&local);
  return 0;
fail:
  tdm_conf_unref(ld->conf);
  free(ld);
  tdm_conf_diag_free(&local);
  return rc;
}

int tdm_conf_load_buffer(const char *name, const char *data, size_t len, char *const *envp, tdm_conf_t **out,
                         tdm_conf_diag_t *diag)
{
  return load(name ? name : "<buffer>", data ? data : "", data ? len : 0, envp, out, diag);
}

/* Reads a whole file, NUL-terminated. Returns 0, a negative errno value, or TDM_EOVERFLOW (too large). */
static int read_file(const char *path, char **data, size_t *len)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  *data = NULL;
  *len = 0;
  if (!f)
    return -errno;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      if (cap > TDM__CONF_FILE_MAX + 8192) {
        rc = TDM_EOVERFLOW;
        goto done;
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        rc = TDM_ENOMEM;
        goto done;
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (n > TDM__CONF_FILE_MAX) {
      rc = TDM_EOVERFLOW;
      goto done;
    }
    if (got == 0) {
      if (ferror(f))
        rc = errno ? -errno : -EIO;
      break;
    }
  }
done:
  fclose(f);
  if (rc) {
    free(buf);
    return rc;
  }
  if (!buf && !(buf = malloc(1)))
    return TDM_ENOMEM;
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return 0;
}

int tdm_conf_load(const char *path, char *const *envp, tdm_conf_t **out, tdm_conf_diag_t *diag)
{
  char *data = NULL;
  size_t len = 0;
  *out = NULL;
  if (path) {
    int rc = read_file(path, &data, &len);
    if (rc == TDM_ENOMEM)
      return rc;
    if (rc) {
      if (diag) {
        tdm__conf_loader_t ld = { .diag = diag, .name = path };
        if (rc == TDM_EOVERFLOW)
          tdm__conf_error(&ld, "%s: configuration file larger than %u bytes", path, TDM__CONF_FILE_MAX);
        else
          tdm__conf_error(&ld, "%s: cannot read the configuration file: %s", path, strerror(-rc));
        if (ld.oom || finish_message(diag))
          return TDM_ENOMEM;
      }
      return TDM_ECONF;
    }
  }
  int rc = load(path, data, len, envp, out, diag);
  free(data);
  return rc;
}

/* ---- --check ---- */

int tdm_conf_check_file_env(const char *path, char *const *envp, FILE *out)
{
  tdm_conf_diag_t diag = { 0 };
  tdm_conf_t *conf = NULL;
  int rc = tdm_conf_load(path, envp, &conf, &diag);
  for (size_t i = 0; i < diag.nwarnings; i++)
    fprintf(out, "warning: %s\n", diag.warnings[i]);
  if (rc == 0) {
    fprintf(out, "OK\n");
  } else if (diag.nerrors) {
    for (size_t i = 0; i < diag.nerrors; i++)
      fprintf(out, "%s\n", diag.errors[i]);
  } else {
    fprintf(out, "%s: %s\n", path ? path : "configuration", tdm_strerror(rc));
  }
  tdm_conf_unref(conf);
  tdm_conf_diag_free(&diag);
  /* Deviation from the TDM_E* convention, at main.c's owner's request: an exit-status style result. */
  return rc == 0 ? 0 : -1;
}

int tdm_conf_check_file(const char *path, FILE *out)
{
  return tdm_conf_check_file_env(path, environ, out);
}
