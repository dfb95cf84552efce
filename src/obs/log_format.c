/* Pure parts of logging: level/format names, line formatting (text and JSON with escaping and safe
 * truncation) and the per-call-site rate limiter. No I/O and no shared state: the producer formats on
 * its own stack and the limiter is driven under the logger's lock. */
#include <strings.h>
#include <tandem/obs/log.h>
#include <tandem/util/time.h>

static const char *const level_names[TDM_LOG_LEVEL_MAX] = {
  [TDM_LOG_PANIC] = "PANIC", [TDM_LOG_FATAL] = "FATAL", [TDM_LOG_ERROR] = "ERROR", [TDM_LOG_WARN] = "WARN",
  [TDM_LOG_INFO] = "INFO",   [TDM_LOG_DEBUG] = "DEBUG", [TDM_LOG_TRACE] = "TRACE",
};

const char *tdm_log_level_name(tdm_log_level_t level)
{
  return ((int)level >= 0 && (int)level < TDM_LOG_LEVEL_MAX) ? level_names[level] : "?";
}

int tdm_log_level_parse(const char *name, tdm_log_level_t *out)
{
  for (int i = 0; name && i < TDM_LOG_LEVEL_MAX; i++) {
    if (strcasecmp(name, level_names[i]) == 0) {
      *out = (tdm_log_level_t)i;
      return 0;
    }
  }
  return TDM_EINVAL;
}

int tdm_log_format_parse(const char *name, tdm_log_format_t *out)
{
  if (name && strcasecmp(name, "text") == 0) {
    *out = TDM_LOG_TEXT;
    return 0;
  }
  if (name && strcasecmp(name, "json") == 0) {
    *out = TDM_LOG_JSON;
    return 0;
  }
  return TDM_EINVAL;
}

/* ---- bounded output ---- */

typedef struct out_s {
  char *p;    /* destination */
  size_t len; /* bytes written */
  size_t cap; /* bytes available */
} out_t;

static bool put(out_t *o, const char *s, size_t n, size_t limit)
{
  if (n > limit || o->len > limit - n) return false;
  memcpy(o->p + o->len, s, n);
  o->len += n;
  return true;
}

static bool puts_(out_t *o, const char *s, size_t limit) { return put(o, s, strlen(s), limit); }

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when s[0] does not start one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  size_t k;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    k = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    k = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    k = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < k) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < k; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return k;
}

/* Appends s[0..n) escaped, whole characters only, without passing limit. Returns false when cut. */
static bool put_escaped(out_t *o, const char *s, size_t n, size_t limit, bool json)
{
  const unsigned char *u = (const unsigned char *)s;
  char esc[8];
  size_t i = 0;
  while (i < n) {
    unsigned char c = u[i];
    size_t k = utf8_seq(u + i, n - i);
    const char *rep = NULL;
    size_t rlen = 0;
    if (k == 1 && c >= 0x20 && c != 0x7f && !(json && (c == '"' || c == '\\'))) {
      rep = (const char *)u + i;
      rlen = 1;
    } else if (k > 1) {
      rep = (const char *)u + i;
      rlen = k;
    } else if (k == 0) {
      k = 1;
      rlen = (size_t)snprintf(esc, sizeof(esc), json ? "\\ufffd" : "\\x%02x", c);
      rep = esc;
    } else {
      switch (c) {
      case '\n': rep = "\\n"; break;
      case '\r': rep = "\\r"; break;
      case '\t': rep = "\\t"; break;
      case '"': rep = "\\\""; break;
      case '\\': rep = "\\\\"; break;
      default:
        snprintf(esc, sizeof(esc), json ? "\\u%04x" : "\\x%02x", c);
        rep = esc;
        break;
      }
      rlen = strlen(rep);
    }
    if (!put(o, rep, rlen, limit)) return false;
    i += k;
  }
  return true;
}

/* A text field value needs quotes when empty or when it holds spaces, quotes or '='. */
static bool text_needs_quotes(const char *v)
{
  if (!*v) return true;
  for (; *v; v++)
    if (*v == ' ' || *v == '"' || *v == '=' || (unsigned char)*v < 0x20) return true;
  return false;
}

/* One field appended whole or not at all. */
static bool put_field(out_t *o, tdm_log_format_t format, const tdm_log_field_t *f, size_t limit)
{
  size_t mark = o->len;
  bool ok;
  if (format == TDM_LOG_JSON) {
    ok = put(o, ",\"", 2, limit) && puts_(o, f->key, limit) && put(o, "\":", 2, limit);
    if (ok && !f->value)
      ok = put(o, "null", 4, limit);
    else if (ok && f->raw)
      ok = puts_(o, f->value, limit);
    else if (ok)
      ok = put(o, "\"", 1, limit) && put_escaped(o, f->value, strlen(f->value), limit, true) &&
           put(o, "\"", 1, limit);
  } else {
    const char *v = f->value ? f->value : "-";
    ok = put(o, " ", 1, limit) && puts_(o, f->key, limit) && put(o, "=", 1, limit);
    if (ok && text_needs_quotes(v) && !f->raw)
      ok = put(o, "\"", 1, limit) && put_escaped(o, v, strlen(v), limit, true) && put(o, "\"", 1, limit);
    else if (ok)
      ok = put_escaped(o, v, strlen(v), limit, false);
  }
  if (!ok) o->len = mark;
  return ok;
}

#define CLOSING_RESERVE 8 /* room kept for '...', '"', '}' and '\n' */

size_t tdm_log_format_line(char *out, size_t cap, tdm_log_format_t format, int64_t wall_ms,
                           tdm_log_level_t level, const char *tag, const tdm_log_field_t *fields,
                           size_t nfields, const char *msg, size_t msg_len)
{
  TDM_ASSERT(cap >= 128);
  out_t o = { out, 0, cap };
  size_t limit = cap - CLOSING_RESERVE;
  char ts[TDM_TIME_ISO8601_SIZE];
  if (tdm_time_iso8601(ts, sizeof(ts), wall_ms) == 0) snprintf(ts, sizeof(ts), "-");
  const char *lvl = tdm_log_level_name(level);
  bool json = format == TDM_LOG_JSON;

  /* The head (ts, level, tag) always fits: ts and level are short and the tag is cut to 1/4 of cap. */
  size_t tag_limit = limit / 4;
  if (json) {
    put(&o, "{\"ts\":\"", 7, limit);
    puts_(&o, ts, limit);
    put(&o, "\",\"level\":\"", 11, limit);
    puts_(&o, lvl, limit);
    put(&o, "\"", 1, limit);
    if (tag) {
      put(&o, ",\"conn\":\"", 9, limit);
      put_escaped(&o, tag, strlen(tag), o.len + tag_limit, true);
      put(&o, "\"", 1, limit);
    }
    put(&o, ",\"msg\":\"", 8, limit);
  } else {
    puts_(&o, ts, limit);
    put(&o, " ", 1, limit);
    puts_(&o, lvl, limit);
    if (tag) {
      put(&o, " [", 2, limit);
      put_escaped(&o, tag, strlen(tag), o.len + tag_limit, false);
      put(&o, "]", 1, limit);
    }
    put(&o, " ", 1, limit);
  }

  /* The message may use what the fields leave, but at least half of the rest. */
  size_t fields_len = 0;
  for (size_t i = 0; i < nfields; i++)
    fields_len += strlen(fields[i].key) + (fields[i].value ? strlen(fields[i].value) : 4) + 6;
  size_t rest = limit - o.len;
  size_t msg_limit = o.len + (fields_len < rest / 2 ? rest - fields_len : rest / 2);
  if (!put_escaped(&o, msg ? msg : "", msg ? msg_len : 0, msg_limit, json)) put(&o, "...", 3, cap);
  if (json) put(&o, "\"", 1, cap);

  bool cut = false;
  for (size_t i = 0; i < nfields && !cut; i++)
    if (!put_field(&o, format, &fields[i], limit)) cut = true;
  if (cut && !json) put(&o, " ...", 4, cap);
  if (json) put(&o, "}", 1, cap);
  put(&o, "\n", 1, cap);
  return o.len;
}

/* ---- rate limiter ---- */

#define RL_PROBES 8

void tdm_log_ratelimit_init(tdm_log_ratelimit_t *rl, uint32_t burst, uint32_t window_ms)
{
  memset(rl, 0, sizeof(*rl));
  rl->burst = burst;
  rl->window_ms = window_ms;
}

static void rl_open_window(tdm_log_rl_entry_t *e, uint64_t key, uint64_t now_ms)
{
  memset(e, 0, sizeof(*e));
  e->key = key;
  e->window_start_ms = now_ms;
}

bool tdm_log_ratelimit_allow(tdm_log_ratelimit_t *rl, uint64_t key, tdm_log_level_t level, const char *msg,
                             uint64_t now_ms, tdm_log_rl_entry_t *report)
{
  TDM_ASSERT(key != 0);
  report->suppressed = 0;
  tdm_log_rl_entry_t *e = NULL, *free_slot = NULL;
  for (size_t i = 0; i < RL_PROBES; i++) {
    tdm_log_rl_entry_t *s = &rl->slots[(key + i) % TDM_LOG_RL_SLOTS];
    if (s->key == key) {
      e = s;
      break;
    }
    if (s->key == 0 && !free_slot) free_slot = s;
  }
  if (!e) {
    if (!free_slot) return true; /* table full: let it through rather than lose it */
    e = free_slot;
    rl_open_window(e, key, now_ms);
  } else if (now_ms - e->window_start_ms >= rl->window_ms) {
    if (e->suppressed) *report = *e;
    rl_open_window(e, key, now_ms);
  }
  if (e->passed < rl->burst) {
    e->passed++;
    return true;
  }
  if (e->suppressed++ == 0) {
    e->level = level;
    snprintf(e->sample, sizeof(e->sample), "%s", msg ? msg : "");
  }
  return false;
}

bool tdm_log_ratelimit_expired(tdm_log_ratelimit_t *rl, uint64_t now_ms, tdm_log_rl_entry_t *out)
{
  for (size_t i = 0; i < TDM_LOG_RL_SLOTS; i++) {
    tdm_log_rl_entry_t *s = &rl->slots[i];
    if (s->key == 0 || now_ms - s->window_start_ms < rl->window_ms) continue;
    bool had = s->suppressed > 0;
    if (had) *out = *s;
    memset(s, 0, sizeof(*s));
    if (had) return true;
  }
  return false;
}
