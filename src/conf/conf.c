/* The configuration snapshot: allocation with every default from the key table, reference counting,
 * key lookup and "did you mean" suggestions, value rendering (secrets redacted) and the key-by-key
 * diff the core logs and applies on reload. */
#include <strings.h>
#include "internal.h"

size_t tdm_conf_key_count(void)
{
  return tdm__conf_nkeys;
}

const tdm_conf_key_t *tdm_conf_key_at(size_t i)
{
  return i < tdm__conf_nkeys ? &tdm__conf_keys[i] : NULL;
}

size_t tdm_conf_key_index(const tdm_conf_key_t *key)
{
  TDM_ASSERT(key >= tdm__conf_keys && key < tdm__conf_keys + tdm__conf_nkeys);
  return (size_t)(key - tdm__conf_keys);
}

const tdm_conf_key_t *tdm_conf_key_find(const char *name)
{
  for (size_t i = 0; i < tdm__conf_nkeys; i++)
    if (!strcmp(tdm__conf_keys[i].name, name))
      return &tdm__conf_keys[i];
  return NULL;
}

static char lower(char c)
{
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Levenshtein distance, case-insensitive; names longer than 127 bytes count as far away. */
static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  size_t row[128];
  if (la >= 128 || lb >= 128)
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      size_t best = TDM_MIN(row[j] + 1, row[j - 1] + 1);
      row[j] = TDM_MIN(best, diag + cost);
      diag = up;
    }
  }
  return row[lb];
}

const tdm_conf_key_t *tdm_conf_key_suggest(const char *name)
{
  size_t len = strlen(name);
  size_t limit = TDM_MIN(1 + len / 5, 4);
  size_t best = SIZE_MAX;
  const tdm_conf_key_t *found = NULL;
  for (size_t i = 0; i < tdm__conf_nkeys; i++) {
    size_t klen = strlen(tdm__conf_keys[i].name);
    if ((len > klen ? len - klen : klen - len) > limit)
      continue; /* the distance is at least the length difference */
    size_t d = edit_distance(name, tdm__conf_keys[i].name);
    if (d < best) {
      best = d;
      found = &tdm__conf_keys[i];
    }
  }
  return best <= limit ? found : NULL;
}

const char *tdm_conf_reload_name(tdm_conf_reload_t reload)
{
  switch (reload) {
  case TDM_CONF_LIVE: return "live";
  case TDM_CONF_NEW: return "new";
  case TDM_CONF_RESTART: return "restart";
  }
  return "?";
}

void *tdm__conf_field(tdm_conf_t *conf, const tdm_conf_key_t *key)
{
  return (char *)conf + key->offset;
}

const void *tdm__conf_cfield(const tdm_conf_t *conf, const tdm_conf_key_t *key)
{
  return (const char *)conf + key->offset;
}

int tdm__conf_set(tdm_conf_t *conf, const tdm_conf_key_t *key, const tdm__conf_value_t *val, char *why,
                  size_t whylen, size_t *bad_item)
{
  *bad_item = 0;
  return tdm__conf_types[key->type]->parse(key, tdm__conf_field(conf, key), val,
                                          (key->flags & TDM_CONF_F_SECRET) != 0, why, whylen, bad_item);
}

static void conf_free(tdm_conf_t *conf)
{
  for (size_t i = 0; i < tdm__conf_nkeys; i++) {
    const tdm_conf_key_t *k = &tdm__conf_keys[i];
    tdm__conf_types[k->type]->destroy(tdm__conf_field(conf, k));
  }
  free(conf->path);
  free(conf);
}

int tdm__conf_new_defaults(tdm_conf_t **out)
{
  tdm_conf_t *conf = calloc(1, sizeof(*conf));
  *out = NULL;
  if (!conf)
    return TDM_ENOMEM;
  atomic_init(&conf->refs, 1);
  for (size_t i = 0; i < tdm__conf_nkeys; i++) {
    const tdm_conf_key_t *k = &tdm__conf_keys[i];
    tdm__conf_item_t item = { k->defval, strlen(k->defval), 0, 0 };
    tdm__conf_value_t val = { &item, 1, false };
    char why[TDM__CONF_WHY_MAX];
    size_t bad;
    int rc = tdm__conf_set(conf, k, &val, why, sizeof(why), &bad);
    if (rc == TDM_ENOMEM) {
      conf_free(conf);
      return rc;
    }
    TDM_ASSERT(rc == 0); /* a default the key's own parser refuses is a bug in the table */
  }
  *out = conf;
  return 0;
}

int tdm_conf_defaults(tdm_conf_t **out)
{
  int rc = tdm__conf_new_defaults(out);
  if (rc == 0)
    tdm__conf_resolve(*out);
  return rc;
}

tdm_conf_t *tdm_conf_ref(tdm_conf_t *conf)
{
  unsigned prev = atomic_fetch_add_explicit(&conf->refs, 1, memory_order_relaxed);
  TDM_ASSERT(prev > 0);
  return conf;
}

void tdm_conf_unref(tdm_conf_t *conf)
{
  if (!conf)
    return;
  unsigned prev = atomic_fetch_sub_explicit(&conf->refs, 1, memory_order_acq_rel);
  TDM_ASSERT(prev > 0);
  if (prev == 1)
    conf_free(conf);
}

void tdm__conf_render_sb(const tdm_conf_t *conf, const tdm_conf_key_t *key, bool reveal, tdm__conf_sb_t *sb)
{
  if (!reveal && (key->flags & TDM_CONF_F_SECRET)) {
    const char *const *s = tdm__conf_cfield(conf, key);
    tdm__conf_sb_puts(sb, (*s && **s) ? "***" : "");
    return;
  }
  tdm__conf_types[key->type]->render(key, tdm__conf_cfield(conf, key), sb);
}

int tdm_conf_render(const tdm_conf_t *conf, const tdm_conf_key_t *key, char *buf, size_t len)
{
  tdm__conf_sb_t sb = { 0 };
  tdm__conf_render_sb(conf, key, false, &sb);
  if (sb.oom) {
    tdm__conf_sb_free(&sb);
    if (len)
      buf[0] = '\0';
    return TDM_ENOMEM;
  }
  int rc = 0;
  if (len) {
    size_t n = sb.len;
    if (n >= len) {
      n = len - 1;
      rc = TDM_EOVERFLOW;
    }
    memcpy(buf, tdm__conf_sb_str(&sb), n);
    buf[n] = '\0';
  } else {
    rc = TDM_EOVERFLOW;
  }
  tdm__conf_sb_free(&sb);
  return rc;
}

int tdm_conf_render_value(const tdm_conf_t *conf, const char *name, char *buf, size_t len)
{
  const tdm_conf_key_t *key = tdm_conf_key_find(name);
  if (!key) {
    if (len)
      buf[0] = '\0';
    return TDM_ENOTFOUND;
  }
  return tdm_conf_render(conf, key, buf, len);
}

int tdm_conf_diff(const tdm_conf_t *old_conf, const tdm_conf_t *new_conf, tdm_conf_diff_cb cb, void *arg)
{
  int changed = 0, rc = 0;
  for (size_t i = 0; i < tdm__conf_nkeys && rc == 0; i++) {
    const tdm_conf_key_t *k = &tdm__conf_keys[i];
    tdm__conf_sb_t a = { 0 }, b = { 0 };
    tdm__conf_render_sb(old_conf, k, true, &a);
    tdm__conf_render_sb(new_conf, k, true, &b);
    if (a.oom || b.oom) {
      rc = TDM_ENOMEM;
    } else if (strcmp(tdm__conf_sb_str(&a), tdm__conf_sb_str(&b)) != 0) {
      changed++;
      if (k->flags & TDM_CONF_F_SECRET) {
        /* Compared in clear, shown redacted. */
        tdm__conf_sb_free(&a);
        tdm__conf_sb_free(&b);
        tdm__conf_render_sb(old_conf, k, false, &a);
        tdm__conf_render_sb(new_conf, k, false, &b);
      }
      if (a.oom || b.oom)
        rc = TDM_ENOMEM;
      else if (cb)
        cb(k, tdm__conf_sb_str(&a), tdm__conf_sb_str(&b), arg);
    }
    tdm__conf_sb_free(&a);
    tdm__conf_sb_free(&b);
  }
  return rc ? rc : changed;
}

bool tdm_conf_version_blocked(const tdm_conf_t *conf, int version)
{
  unsigned bit = tdm_conf_version_bit(version);
  return bit && (conf->blocked_protocol_versions & bit);
}
