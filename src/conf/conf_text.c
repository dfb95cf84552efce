/* Text helpers of the conf module: a growable buffer for rendering, quoting of values in messages, and
 * the pieces every value parser shares (trimming, the single scalar of a value, comma splitting of list
 * values, refusals that never quote a secret). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include "internal.h"

/* ---- text buffer ---- */

static bool sb_reserve(tdm__conf_sb_t *sb, size_t extra)
{
  if (sb->oom)
    return false;
  if (sb->len + extra + 1 <= sb->cap)
    return true;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < sb->len + extra + 1)
    cap *= 2;
  char *nb = realloc(sb->buf, cap);
  if (!nb) {
    sb->oom = true;
    return false;
  }
  sb->buf = nb;
  sb->cap = cap;
  return true;
}

void tdm__conf_sb_putn(tdm__conf_sb_t *sb, const char *s, size_t n)
{
  if (!sb_reserve(sb, n))
    return;
  if (n)
    memcpy(sb->buf + sb->len, s, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
}

void tdm__conf_sb_puts(tdm__conf_sb_t *sb, const char *s)
{
  tdm__conf_sb_putn(sb, s, strlen(s));
}

void tdm__conf_sb_printf(tdm__conf_sb_t *sb, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !sb_reserve(sb, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
}

const char *tdm__conf_sb_str(const tdm__conf_sb_t *sb)
{
  return sb->buf ? sb->buf : "";
}

void tdm__conf_sb_free(tdm__conf_sb_t *sb)
{
  free(sb->buf);
  memset(sb, 0, sizeof(*sb));
}

void tdm__conf_quote(char *out, size_t outlen, const char *s, size_t len)
{
  size_t o = 0;
  TDM_ASSERT(outlen >= 8);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
    if (o + need + 4 > outlen || i >= TDM__CONF_QUOTE_MAX) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (need == 1)
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
  }
  out[o] = '\0';
}

/* ---- parsing helpers shared by the value types ---- */

/* Writes `what` to why, followed by ", got '<value>'" unless the key is secret. */
int tdm__conf_refuse(char *why, size_t whylen, bool secret, const char *text, size_t len, const char *what)
{
  if (secret) {
    snprintf(why, whylen, "%s", what);
  } else {
    char q[TDM__CONF_QUOTE_MAX * 4 + 8];
    tdm__conf_quote(q, sizeof(q), text, len);
    snprintf(why, whylen, "%s, got '%s'", what, q);
  }
  return TDM_ECONF;
}

static bool is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static void trim(const char **p, size_t *len)
{
  while (*len && is_space(**p)) {
    (*p)++;
    (*len)--;
  }
  while (*len && is_space((*p)[*len - 1]))
    (*len)--;
}

/* The single scalar of a non-list value, or a refusal. */
int tdm__conf_one_scalar(const tdm__conf_value_t *val, char *why, size_t whylen, const tdm__conf_item_t **out)
{
  if (val->is_seq || val->n != 1) {
    snprintf(why, whylen, "expected a single value, not a sequence");
    return TDM_ECONF;
  }
  if (strlen(val->items[0].text) != val->items[0].len) {
    snprintf(why, whylen, "value contains a NUL byte");
    return TDM_ECONF;
  }
  *out = &val->items[0];
  return 0;
}

/* Copies a trimmed token into buf (NUL-terminated); false if it does not fit. */
bool tdm__conf_token(const char *p, size_t len, char *buf, size_t buflen)
{
  trim(&p, &len);
  if (len + 1 > buflen)
    return false;
  memcpy(buf, p, len);
  buf[len] = '\0';
  return true;
}

bool tdm__conf_parse_double(const char *buf, double *out)
{
  if (!*buf)
    return false;
  errno = 0;
  char *end = NULL;
  double v = strtod(buf, &end);
  if (errno || *end || !isfinite(v))
    return false;
  *out = v;
  return true;
}

/* Splits every item at commas; empty pieces are skipped. *out is malloc'd (NULL when none). */
int tdm__conf_split(const tdm__conf_value_t *val, tdm__conf_elem_t **out, size_t *n, char *why, size_t whylen,
                       size_t *bad_item)
{
  size_t cap = 0, cnt = 0;
  tdm__conf_elem_t *v = NULL;
  *out = NULL;
  *n = 0;
  for (size_t i = 0; i < val->n; i++) {
    const tdm__conf_item_t *it = &val->items[i];
    if (strlen(it->text) != it->len) {
      free(v);
      *bad_item = i;
      snprintf(why, whylen, "value contains a NUL byte");
      return TDM_ECONF;
    }
    const char *p = it->text, *end = it->text + it->len;
    while (p <= end) {
      const char *comma = memchr(p, ',', (size_t)(end - p));
      const char *stop = comma ? comma : end;
      const char *s = p;
      size_t len = (size_t)(stop - p);
      trim(&s, &len);
      if (len) {
        if (cnt == cap) {
          size_t ncap = cap ? cap * 2 : 8;
          tdm__conf_elem_t *nv = realloc(v, ncap * sizeof(*nv));
          if (!nv) {
            free(v);
            return TDM_ENOMEM;
          }
          v = nv;
          cap = ncap;
        }
        v[cnt++] = (tdm__conf_elem_t){ s, len, i };
      }
      p = stop + 1;
    }
  }
  *out = v;
  *n = cnt;
  return 0;
}

/* Shortest %g form that reads back to the same double. */
void tdm__conf_put_double(tdm__conf_sb_t *sb, double v)
{
  char buf[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof(buf), "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  tdm__conf_sb_puts(sb, buf);
}
