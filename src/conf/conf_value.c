/* Scalar value types of the key table (string, bool, integers, double, enum, protocol versions and the
 * version list) and the table that maps each tdm_conf_type_t to its parser, renderer and destructor.
 * Parsers store into the field only on success and explain a refusal without quoting a secret. */
#include <errno.h>
#include <inttypes.h>
#include <strings.h>
#include "internal.h"

/* ---- helpers ---- */

static bool parse_i64(const char *buf, int64_t *out)
{
  if (!*buf)
    return false;
  errno = 0;
  char *end = NULL;
  long long v = strtoll(buf, &end, 10);
  if (errno || *end)
    return false;
  *out = v;
  return true;
}

/* ---- STR ---- */

static int str_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                     char *why, size_t whylen, size_t *bad_item)
{
  const tdm__conf_item_t *it;
  *bad_item = 0;
  if (tdm__conf_one_scalar(val, why, whylen, &it))
    return TDM_ECONF;
  char *s = strndup(it->text, it->len);
  if (!s)
    return TDM_ENOMEM;
  char **f = field;
  free(*f);
  *f = s;
  return 0;
}

static void str_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  const char *const *f = field;
  tdm__conf_sb_puts(sb, *f ? *f : "");
}

static void str_destroy(void *field)
{
  char **f = field;
  free(*f);
  *f = NULL;
}

static void nothing_destroy(void *field)
{
}

/* ---- BOOL ---- */

static int bool_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                      char *why, size_t whylen, size_t *bad_item)
{
  /* true/false/yes/no/1/0, plus t/f (Go's ParseBool, which reads zdm-proxy's ZDM_* variables) and on/off
   * (what zdm-proxy's YAML decoder takes for a bool field). */
  static const char *const yes[] = { "true", "yes", "1", "t", "on" };
  static const char *const no[] = { "false", "no", "0", "f", "off" };
  const tdm__conf_item_t *it;
  char buf[16];
  *bad_item = 0;
  if (tdm__conf_one_scalar(val, why, whylen, &it))
    return TDM_ECONF;
  if (tdm__conf_token(it->text, it->len, buf, sizeof(buf))) {
    for (size_t i = 0; i < TDM_ARRAY_SIZE(yes); i++) {
      if (!strcasecmp(buf, yes[i]) || !strcasecmp(buf, no[i])) {
        *(bool *)field = !strcasecmp(buf, yes[i]);
        return 0;
      }
    }
  }
  return tdm__conf_refuse(why, whylen, secret, it->text, it->len,
                          "expected true or false (or yes/no, on/off, 1/0)");
}

static void bool_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  tdm__conf_sb_puts(sb, *(const bool *)field ? "true" : "false");
}

/* ---- INT, I64, DOUBLE ---- */

static int range_refuse(const tdm_conf_key_t *key, const char *kind, bool secret, const char *text,
                        size_t len, char *why, size_t whylen)
{
  char what[128];
  if (key->lo <= -2147483648LL && key->hi >= 2147483647LL)
    snprintf(what, sizeof(what), "expected %s", kind);
  else if (key->hi >= 2147483647LL)
    snprintf(what, sizeof(what), "expected %s >= %" PRId64, kind, key->lo);
  else
    snprintf(what, sizeof(what), "expected %s from %" PRId64 " to %" PRId64, kind, key->lo, key->hi);
  return tdm__conf_refuse(why, whylen, secret, text, len, what);
}

static int int_common(const tdm_conf_key_t *key, const tdm__conf_value_t *val, bool secret, char *why,
                      size_t whylen, size_t *bad_item, int64_t *out)
{
  const tdm__conf_item_t *it;
  char buf[32];
  int64_t v;
  *bad_item = 0;
  if (tdm__conf_one_scalar(val, why, whylen, &it))
    return TDM_ECONF;
  if (!tdm__conf_token(it->text, it->len, buf, sizeof(buf)) || !parse_i64(buf, &v) || v < key->lo ||
      v > key->hi)
    return range_refuse(key, "an integer", secret, it->text, it->len, why, whylen);
  *out = v;
  return 0;
}

static int int_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                     char *why, size_t whylen, size_t *bad_item)
{
  int64_t v;
  TDM_ASSERT(key->lo >= INT32_MIN && key->hi <= INT32_MAX);
  if (int_common(key, val, secret, why, whylen, bad_item, &v))
    return TDM_ECONF;
  *(int *)field = (int)v;
  return 0;
}

static void int_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  tdm__conf_sb_printf(sb, "%d", *(const int *)field);
}

static int i64_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                     char *why, size_t whylen, size_t *bad_item)
{
  int64_t v;
  if (int_common(key, val, secret, why, whylen, bad_item, &v))
    return TDM_ECONF;
  *(int64_t *)field = v;
  return 0;
}

static void i64_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  tdm__conf_sb_printf(sb, "%" PRId64, *(const int64_t *)field);
}

static int double_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                        char *why, size_t whylen, size_t *bad_item)
{
  const tdm__conf_item_t *it;
  char buf[64];
  double v;
  *bad_item = 0;
  if (tdm__conf_one_scalar(val, why, whylen, &it))
    return TDM_ECONF;
  if (!tdm__conf_token(it->text, it->len, buf, sizeof(buf)) || !tdm__conf_parse_double(buf, &v) ||
      v < (double)key->lo || v > (double)key->hi)
    return range_refuse(key, "a number", secret, it->text, it->len, why, whylen);
  *(double *)field = v;
  return 0;
}

static void double_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  tdm__conf_put_double(sb, *(const double *)field);
}

/* ---- ENUM ---- */

static int enum_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                      char *why, size_t whylen, size_t *bad_item)
{
  const tdm__conf_item_t *it;
  char buf[64];
  *bad_item = 0;
  if (tdm__conf_one_scalar(val, why, whylen, &it))
    return TDM_ECONF;
  if (tdm__conf_token(it->text, it->len, buf, sizeof(buf))) {
    for (const tdm_conf_enum_t *e = key->enums; e->name; e++) {
      if (!strcasecmp(buf, e->name)) {
        int v = e->value;
        memcpy(field, &v, sizeof(v));
        return 0;
      }
    }
  }
  /* "expected one of A, B or C": canonical names only (the first spelling of each value). */
  char what[TDM__CONF_WHY_MAX];
  size_t o = (size_t)snprintf(what, sizeof(what), "expected ");
  size_t ncanon = 0, total = 0;
  for (const tdm_conf_enum_t *e = key->enums; e->name; e++) {
    bool canon = true;
    for (const tdm_conf_enum_t *f = key->enums; f < e; f++)
      canon = canon && f->value != e->value;
    total += canon;
  }
  for (const tdm_conf_enum_t *e = key->enums; e->name && o < sizeof(what); e++) {
    bool canon = true;
    for (const tdm_conf_enum_t *f = key->enums; f < e; f++)
      canon = canon && f->value != e->value;
    if (!canon)
      continue;
    ncanon++;
    const char *sep = ncanon == 1 ? "" : ncanon == total ? " or " : ", ";
    o += (size_t)snprintf(what + o, sizeof(what) - o, "%s%s", sep, e->name);
  }
  return tdm__conf_refuse(why, whylen, secret, it->text, it->len, what);
}

static void enum_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  int v;
  memcpy(&v, field, sizeof(v));
  for (const tdm_conf_enum_t *e = key->enums; e->name; e++) {
    if (e->value == v) {
      tdm__conf_sb_puts(sb, e->name);
      return;
    }
  }
  tdm__conf_sb_printf(sb, "%d", v);
}

/* ---- VERSION, VERSIONS ---- */

static const struct {
  const char *spelling; /* accepted spelling, any case */
  int version;          /* protocol version byte */
} version_names[] = {
  { "2", 2 },        { "v2", 2 },        { "3", 3 },         { "v3", 3 },    { "4", 4 },
  { "v4", 4 },       { "5", 5 },         { "v5", 5 },        { "DseV1", 0x41 }, { "Dse_V1", 0x41 },
  { "65", 0x41 },    { "DseV2", 0x42 },  { "Dse_V2", 0x42 }, { "66", 0x42 },
};

static int version_of(const char *p, size_t len)
{
  char buf[16];
  if (!tdm__conf_token(p, len, buf, sizeof(buf)))
    return 0;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(version_names); i++)
    if (!strcasecmp(buf, version_names[i].spelling))
      return version_names[i].version;
  return 0;
}

static const char *version_name(int version)
{
  switch (version) {
  case 2: return "2";
  case 3: return "3";
  case 4: return "4";
  case 5: return "5";
  case 0x41: return "DseV1";
  case 0x42: return "DseV2";
  default: return "?";
  }
}

unsigned tdm_conf_version_bit(int version)
{
  switch (version) {
  case 2: return TDM_CONF_PV_V2;
  case 3: return TDM_CONF_PV_V3;
  case 4: return TDM_CONF_PV_V4;
  case 5: return TDM_CONF_PV_V5;
  case 0x41: return TDM_CONF_PV_DSE_V1;
  case 0x42: return TDM_CONF_PV_DSE_V2;
  default: return 0;
  }
}

#define VERSION_CHOICES "2-5, v2-v5, DseV1 (Dse_V1, 65) or DseV2 (Dse_V2, 66)"

static int version_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                         char *why, size_t whylen, size_t *bad_item)
{
  const tdm__conf_item_t *it;
  *bad_item = 0;
  if (tdm__conf_one_scalar(val, why, whylen, &it))
    return TDM_ECONF;
  int v = version_of(it->text, it->len);
  if (!v)
    return tdm__conf_refuse(why, whylen, secret, it->text, it->len,
                            "expected a protocol version: " VERSION_CHOICES);
  *(int *)field = v;
  return 0;
}

static void version_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  tdm__conf_sb_puts(sb, version_name(*(const int *)field));
}

static int versions_parse(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
                          char *why, size_t whylen, size_t *bad_item)
{
  tdm__conf_elem_t *el;
  size_t n;
  unsigned mask = 0;
  int rc = tdm__conf_split(val, &el, &n, why, whylen, bad_item);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++) {
    int v = version_of(el[i].p, el[i].len);
    if (!v) {
      *bad_item = el[i].item;
      rc = tdm__conf_refuse(why, whylen, secret, el[i].p, el[i].len,
                  "unknown protocol version (expected a comma list of " VERSION_CHOICES ")");
      free(el);
      return rc;
    }
    mask |= tdm_conf_version_bit(v);
  }
  free(el);
  *(unsigned *)field = mask;
  return 0;
}

static void versions_render(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb)
{
  static const int order[] = { 2, 3, 4, 5, 0x41, 0x42 };
  unsigned mask = *(const unsigned *)field;
  bool first = true;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(order); i++) {
    if (mask & tdm_conf_version_bit(order[i])) {
      tdm__conf_sb_printf(sb, "%s%s", first ? "" : ",", version_name(order[i]));
      first = false;
    }
  }
}

/* ---- the type table ---- */

static const tdm__conf_type_ops_t str_ops = { str_parse, str_render, str_destroy };
static const tdm__conf_type_ops_t bool_ops = { bool_parse, bool_render, nothing_destroy };
static const tdm__conf_type_ops_t int_ops = { int_parse, int_render, nothing_destroy };
static const tdm__conf_type_ops_t i64_ops = { i64_parse, i64_render, nothing_destroy };
static const tdm__conf_type_ops_t double_ops = { double_parse, double_render, nothing_destroy };
static const tdm__conf_type_ops_t enum_ops = { enum_parse, enum_render, nothing_destroy };
static const tdm__conf_type_ops_t version_ops = { version_parse, version_render, nothing_destroy };
static const tdm__conf_type_ops_t versions_ops = { versions_parse, versions_render, nothing_destroy };

const tdm__conf_type_ops_t *const tdm__conf_types[TDM_CONF_T_MAX] = {
  [TDM_CONF_T_STR] = &str_ops,
  [TDM_CONF_T_BOOL] = &bool_ops,
  [TDM_CONF_T_INT] = &int_ops,
  [TDM_CONF_T_I64] = &i64_ops,
  [TDM_CONF_T_DOUBLE] = &double_ops,
  [TDM_CONF_T_ENUM] = &enum_ops,
  [TDM_CONF_T_VERSION] = &version_ops,
  [TDM_CONF_T_VERSIONS] = &versions_ops,
  [TDM_CONF_T_HOSTS] = &tdm__conf_hosts_ops,
  [TDM_CONF_T_ADDRS] = &tdm__conf_addrs_ops,
  [TDM_CONF_T_BUCKETS] = &tdm__conf_buckets_ops,
};
