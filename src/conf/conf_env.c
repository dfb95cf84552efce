/* The environment stage: ZDM_<KEY> (zdm-proxy keys only), then TANDEM_<KEY> (every key), over the values
 * from defaults and file. A bad value is an error naming the variable; an override of a different file
 * value, an unknown variable with one of our prefixes, or ZDM_ on a tandem-only key is a warning. */
#include "internal.h"

#define TDM__CONF_ENV_NAME_MAX 128 /* longer variable names cannot be keys */

typedef struct env_pass_s {
  const char *prefix; /* variable prefix, upper case with the underscore */
  uint8_t source;     /* tdm_conf_source_t recorded for the keys it sets */
} env_pass_t;

static void upper_name(const char *prefix, const char *key, char *out, size_t outlen)
{
  size_t o = (size_t)snprintf(out, outlen, "%s", prefix);
  for (const char *p = key; *p && o + 1 < outlen; p++)
    out[o++] = (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
  out[TDM_MIN(o, outlen - 1)] = '\0';
}

/* Warns when `var` replaces a value that the file (or ZDM_ under TANDEM_) set differently. */
static void warn_override(tdm__conf_loader_t *ld, const tdm_conf_key_t *key, tdm_conf_origin_t prev,
                          const char *old_text, const char *var)
{
  char newer[TDM__CONF_QUOTE_MAX * 4 + 8], older[TDM__CONF_QUOTE_MAX * 4 + 8];
  tdm__conf_sb_t now = { 0 };
  tdm__conf_render_sb(ld->conf, key, true, &now);
  if (now.oom) {
    ld->oom = true;
    return;
  }
  bool same = strcmp(old_text, tdm__conf_sb_str(&now)) == 0;
  tdm__conf_quote(newer, sizeof(newer), tdm__conf_sb_str(&now), now.len);
  tdm__conf_quote(older, sizeof(older), old_text, strlen(old_text));
  tdm__conf_sb_free(&now);
  if (same)
    return;
  bool secret = (key->flags & TDM_CONF_F_SECRET) != 0;
  if (prev.source == TDM_CONF_SRC_FILE) {
    const char *file = ld->name ? ld->name : "configuration";
    if (secret)
      tdm__conf_warn(ld, "%s:%u:%u: '%s' from the file is overridden by %s", file, (unsigned)prev.line,
                     (unsigned)prev.col, key->name, var);
    else
      tdm__conf_warn(ld, "%s:%u:%u: '%s' from the file (%s) is overridden by %s (%s)", file,
                     (unsigned)prev.line, (unsigned)prev.col, key->name, older, var, newer);
  } else if (prev.source == TDM_CONF_SRC_ENV_ZDM) {
    char zdm[TDM__CONF_ENV_NAME_MAX];
    upper_name("ZDM_", key->name, zdm, sizeof(zdm));
    if (secret)
      tdm__conf_warn(ld, "%s: '%s' is overridden by %s", zdm, key->name, var);
    else
      tdm__conf_warn(ld, "%s: '%s' (%s) is overridden by %s (%s)", zdm, key->name, older, var, newer);
  }
}

static void env_one(tdm__conf_loader_t *ld, const env_pass_t *pass, const char *var)
{
  size_t plen = strlen(pass->prefix);
  const char *eq = strchr(var, '=');
  if (!eq || strncmp(var, pass->prefix, plen) != 0)
    return;
  size_t vlen = (size_t)(eq - var);
  char vname[TDM__CONF_ENV_NAME_MAX], name[TDM__CONF_ENV_NAME_MAX];
  if (vlen >= sizeof(vname)) {
    tdm__conf_quote(vname, sizeof(vname), var, TDM_MIN(vlen, 32));
    tdm__conf_warn(ld, "%s: unknown variable, ignored", vname);
    return;
  }
  memcpy(vname, var, vlen);
  vname[vlen] = '\0';
  for (size_t i = plen; i <= vlen; i++) {
    char c = vname[i];
    name[i - plen] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  }
  const tdm_conf_key_t *key = tdm_conf_key_find(name);
  if (!key) {
    char q[TDM__CONF_ENV_NAME_MAX * 4];
    tdm__conf_quote(q, sizeof(q), vname, vlen);
    const tdm_conf_key_t *near = tdm_conf_key_suggest(name);
    if (near) {
      char sugg[TDM__CONF_ENV_NAME_MAX];
      upper_name(pass->prefix, near->name, sugg, sizeof(sugg));
      tdm__conf_warn(ld, "%s: unknown variable, ignored (did you mean %s?)", q, sugg);
    } else {
      tdm__conf_warn(ld, "%s: unknown variable, ignored", q);
    }
    return;
  }
  if (pass->source == TDM_CONF_SRC_ENV_ZDM && !(key->flags & TDM_CONF_F_ZDM)) {
    char tvar[TDM__CONF_ENV_NAME_MAX];
    upper_name("TANDEM_", key->name, tvar, sizeof(tvar));
    tdm__conf_warn(ld, "%s: ignored: '%s' is a tandem-only key, set %s", vname, key->name, tvar);
    return;
  }
  size_t idx = tdm_conf_key_index(key);
  tdm_conf_origin_t prev = ld->conf->origin[idx];
  tdm__conf_sb_t old = { 0 };
  tdm__conf_render_sb(ld->conf, key, true, &old);
  tdm__conf_item_t item = { eq + 1, strlen(eq + 1), 0, 0 };
  tdm__conf_value_t val = { &item, 1, false };
  char why[TDM__CONF_WHY_MAX];
  size_t bad;
  int rc = old.oom ? TDM_ENOMEM : tdm__conf_set(ld->conf, key, &val, why, sizeof(why), &bad);
  if (rc == TDM_ENOMEM) {
    ld->oom = true;
  } else if (rc) {
    tdm__conf_error(ld, "%s: invalid value for '%s': %s", vname, key->name, why);
  } else {
    warn_override(ld, key, prev, tdm__conf_sb_str(&old), vname);
    ld->conf->origin[idx] = (tdm_conf_origin_t){ pass->source, 0, 0 };
  }
  tdm__conf_sb_free(&old);
}

void tdm__conf_env_apply(tdm__conf_loader_t *ld, char *const *envp)
{
  static const env_pass_t passes[] = {
    { "ZDM_", TDM_CONF_SRC_ENV_ZDM },
    { "TANDEM_", TDM_CONF_SRC_ENV_TANDEM },
  };
  if (!envp)
    return;
  for (size_t p = 0; p < TDM_ARRAY_SIZE(passes); p++)
    for (char *const *e = envp; *e && !ld->oom; e++)
      env_one(ld, &passes[p], *e);
}
