/* Line tokenizer for control commands and script files. Invariant: buf_len <= TDM_MOCK_ARGS_BUF; every
 * tdm_str_t in the struct points into buf, so the struct is self-contained and may be copied. */
#include <ctype.h>
#include <errno.h>

#include "args.h"

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool put(tdm_mock_args_t *a, char c)
{
  if (a->buf_len >= TDM_MOCK_ARGS_BUF) return false;
  a->buf[a->buf_len++] = c;
  return true;
}

int tdm_mock_args_parse(const char *line, size_t len, tdm_mock_args_t *a, const char **why)
{
  a->n = a->n_words = a->buf_len = 0;
  size_t i = 0;
  while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n')) len--;
  for (;;) {
    while (i < len && isspace((unsigned char)line[i])) i++;
    if (i >= len) return 0;
    /* a token: key=value, or a bare word */
    size_t start = i;
    while (i < len && !isspace((unsigned char)line[i]) && line[i] != '=') i++;
    if (i >= len || line[i] != '=') {
      while (i < len && !isspace((unsigned char)line[i])) i++;
      if (a->n > 0) return (*why = "bare word after a key=value field", TDM_EINVAL);
      if (a->n_words == TDM_MOCK_ARGS_WORDS) return (*why = "too many words", TDM_EINVAL);
      char *w = a->buf + a->buf_len;
      for (size_t k = start; k < i; k++)
        if (!put(a, (char)toupper((unsigned char)line[k]))) return (*why = "line too long", TDM_EINVAL);
      a->words[a->n_words++] = (tdm_str_t){ w, i - start };
      continue;
    }
    if (a->n == TDM_MOCK_ARGS_MAX) return (*why = "too many fields", TDM_EINVAL);
    if (i == start) return (*why = "empty field name", TDM_EINVAL);
    tdm_mock_arg_t *arg = &a->items[a->n++];
    char *k = a->buf + a->buf_len;
    for (size_t j = start; j < i; j++)
      if (!put(a, (char)tolower((unsigned char)line[j]))) return (*why = "line too long", TDM_EINVAL);
    arg->key = (tdm_str_t){ k, i - start };
    arg->used = false;
    i++; /* '=' */
    char *v = a->buf + a->buf_len;
    size_t vstart = a->buf_len;
    if (i < len && (line[i] == '"' || line[i] == '\'')) {
      char q = line[i++];
      bool closed = false;
      while (i < len) {
        char c = line[i++];
        if (c == q) {
          closed = true;
          break;
        }
        if (c == '\\' && q == '"' && i < len) {
          char e = line[i++];
          switch (e) {
          case 'n': c = '\n'; break;
          case 't': c = '\t'; break;
          case 'r': c = '\r'; break;
          case 'x': {
            int hi = i < len ? hexval(line[i]) : -1, lo = i + 1 < len ? hexval(line[i + 1]) : -1;
            if (hi < 0 || lo < 0) return (*why = "bad \\x escape", TDM_EINVAL);
            c = (char)(hi << 4 | lo);
            i += 2;
            break;
          }
          case '"':
          case '\\': c = e; break;
          default: /* not an escape: the backslash stays (rows specs use \, and \;) */
            if (!put(a, '\\')) return (*why = "line too long", TDM_EINVAL);
            c = e;
            break;
          }
        }
        if (!put(a, c)) return (*why = "line too long", TDM_EINVAL);
      }
      if (!closed) return (*why = "unterminated quoted value", TDM_EINVAL);
    } else {
      while (i < len && !isspace((unsigned char)line[i]))
        if (!put(a, line[i++])) return (*why = "line too long", TDM_EINVAL);
    }
    arg->value = (tdm_str_t){ v, a->buf_len - vstart };
  }
}

bool tdm_mock_args_get(tdm_mock_args_t *a, const char *key, tdm_str_t *out)
{
  tdm_str_t k = tdm_str_from(key);
  for (size_t i = 0; i < a->n; i++) {
    if (tdm_str_eq(a->items[i].key, k)) {
      a->items[i].used = true;
      *out = a->items[i].value;
      return true;
    }
  }
  return false;
}

int tdm_mock_parse_int(tdm_str_t s, int64_t *out)
{
  char buf[32], *end;
  if (s.len == 0 || s.len >= sizeof(buf)) return TDM_EINVAL;
  memcpy(buf, s.ptr, s.len);
  buf[s.len] = '\0';
  errno = 0;
  long long v = strtoll(buf, &end, 0);
  if (errno || *end) return TDM_EINVAL;
  *out = v;
  return 0;
}

int tdm_mock_args_get_int(tdm_mock_args_t *a, const char *key, int64_t *out, bool *found)
{
  tdm_str_t v;
  *found = tdm_mock_args_get(a, key, &v);
  if (!*found) return 0;
  return tdm_mock_parse_int(v, out);
}

const char *tdm_mock_args_unused(const tdm_mock_args_t *a, char *buf, size_t cap)
{
  for (size_t i = 0; i < a->n; i++) {
    if (!a->items[i].used) {
      snprintf(buf, cap, "%.*s", (int)a->items[i].key.len, a->items[i].key.ptr);
      return buf;
    }
  }
  return NULL;
}
