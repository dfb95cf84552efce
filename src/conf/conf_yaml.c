/* The YAML stage: libyaml events over one document that must be a flat map of scalars (a YAML sequence
 * is accepted for list keys). Each key goes through the key table; unknown keys (with the closest known
 * key), duplicates, bad values and syntax errors are reported as `file:line:column: ...`. Aliases,
 * nested maps and several documents are refused. */
#include <yaml.h>
#include "internal.h"

#define TDM__CONF_SEQ_MAX 4096 /* items accepted in one YAML sequence */

typedef struct yctx_s {
  tdm__conf_loader_t *ld; /* loader receiving values and errors */
  yaml_parser_t parser;   /* libyaml parser over the buffer */
  yaml_event_t ev;        /* current event, valid while `have` */
  bool have;              /* ev holds an event to delete */
  bool dead;              /* a syntax or memory error ended parsing */
} yctx_t;

static const char *fname(const yctx_t *y)
{
  return y->ld->name ? y->ld->name : "configuration";
}

static uint32_t ln(yaml_mark_t m)
{
  return (uint32_t)m.line + 1;
}

static uint32_t col(yaml_mark_t m)
{
  return (uint32_t)m.column + 1;
}

/* Moves to the next event; false (with the error reported) when the input is not valid YAML. */
static bool next(yctx_t *y)
{
  if (y->dead)
    return false;
  if (y->have) {
    yaml_event_delete(&y->ev);
    y->have = false;
  }
  if (yaml_parser_parse(&y->parser, &y->ev)) {
    y->have = true;
    return true;
  }
  y->dead = true;
  yaml_parser_t *p = &y->parser;
  const char *problem = p->problem ? p->problem : "invalid YAML";
  switch (p->error) {
  case YAML_MEMORY_ERROR:
    y->ld->oom = true;
    break;
  case YAML_READER_ERROR:
    tdm__conf_error(y->ld, "%s: YAML syntax error: %s at byte offset %zu", fname(y), problem,
                    p->problem_offset);
    break;
  default:
    if (p->context)
      tdm__conf_error(y->ld, "%s:%u:%u: YAML syntax error: %s (%s at line %u)", fname(y), ln(p->problem_mark),
                      col(p->problem_mark), problem, p->context, ln(p->context_mark));
    else
      tdm__conf_error(y->ld, "%s:%u:%u: YAML syntax error: %s", fname(y), ln(p->problem_mark),
                      col(p->problem_mark), problem);
    break;
  }
  return false;
}

/* With a start event current, consumes events up to its matching end. */
static bool skip_node(yctx_t *y)
{
  size_t depth = 0;
  do {
    switch (y->ev.type) {
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
      depth++;
      break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
      depth--;
      break;
    default:
      break;
    }
    if (depth == 0)
      return true;
  } while (next(y));
  return false;
}

static bool is_null(const yaml_event_t *ev)
{
  if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  const char *v = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  return len == 0 || (len == 1 && v[0] == '~') ||
         (len == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

/* Sets one key from the file; `vmark` locates the value as a whole. */
static void apply(yctx_t *y, const char *name, yaml_mark_t kmark, const tdm__conf_value_t *val,
                  yaml_mark_t vmark)
{
  tdm__conf_loader_t *ld = y->ld;
  char q[TDM__CONF_QUOTE_MAX * 4 + 8];
  const tdm_conf_key_t *key = tdm_conf_key_find(name);
  if (!key) {
    const tdm_conf_key_t *near = tdm_conf_key_suggest(name);
    tdm__conf_quote(q, sizeof(q), name, strlen(name));
    if (near)
      tdm__conf_error(ld, "%s:%u:%u: unknown key '%s' (did you mean '%s'?)", fname(y), ln(kmark), col(kmark),
                      q, near->name);
    else
      tdm__conf_error(ld, "%s:%u:%u: unknown key '%s'", fname(y), ln(kmark), col(kmark), q);
    return;
  }
  size_t idx = tdm_conf_key_index(key);
  if (ld->seen_line[idx]) {
    tdm__conf_error(ld, "%s:%u:%u: duplicate key '%s' (first set at line %u)", fname(y), ln(kmark), col(kmark),
                    key->name, (unsigned)ld->seen_line[idx]);
    return;
  }
  ld->seen_line[idx] = ln(kmark);
  char why[TDM__CONF_WHY_MAX];
  size_t bad = 0;
  int rc = tdm__conf_set(ld->conf, key, val, why, sizeof(why), &bad);
  if (rc == TDM_ENOMEM) {
    ld->oom = true;
  } else if (rc) {
    uint32_t l = ln(vmark), c = col(vmark);
    if (bad < val->n && val->items[bad].line) {
      l = val->items[bad].line;
      c = val->items[bad].col;
    }
    tdm__conf_error(ld, "%s:%u:%u: invalid value for '%s': %s", fname(y), l, c, key->name, why);
  } else {
    ld->conf->origin[idx] = (tdm_conf_origin_t){ TDM_CONF_SRC_FILE, ln(kmark), col(kmark) };
  }
}

/* The value of key `name` starts at the current event. */
static void value(yctx_t *y, const char *name, yaml_mark_t kmark)
{
  yaml_event_t *ev = &y->ev;
  yaml_mark_t vmark = ev->start_mark;
  char q[TDM__CONF_QUOTE_MAX * 4 + 8]; /* the key, quoted for messages; filled only on error paths */
  switch (ev->type) {
  case YAML_SCALAR_EVENT: {
    tdm__conf_item_t item = { (const char *)ev->data.scalar.value, ev->data.scalar.length, ln(vmark),
                              col(vmark) };
    if (is_null(ev)) {
      /* `key:` or `key: ~` leaves the default (as zdm-proxy's YAML decoder does). */
      const tdm_conf_key_t *key = tdm_conf_key_find(name);
      if (key) {
        item.text = key->defval;
        item.len = strlen(key->defval);
      }
    }
    tdm__conf_value_t val = { &item, 1, false };
    apply(y, name, kmark, &val, vmark);
    return;
  }
  case YAML_SEQUENCE_START_EVENT: {
    tdm__conf_item_t *items = NULL;
    size_t n = 0;
    bool ok = true;
    while (next(y) && ev->type != YAML_SEQUENCE_END_EVENT) {
      if (ev->type != YAML_SCALAR_EVENT) {
        tdm__conf_quote(q, sizeof(q), name, strlen(name));
        if (ok)
          tdm__conf_error(y->ld, "%s:%u:%u: '%s': sequence items must be plain values", fname(y),
                          ln(ev->start_mark), col(ev->start_mark), q);
        ok = false;
        if (ev->type != YAML_ALIAS_EVENT && !skip_node(y))
          break;
        continue;
      }
      if (!ok)
        continue;
      if (n == TDM__CONF_SEQ_MAX) {
        tdm__conf_quote(q, sizeof(q), name, strlen(name));
        tdm__conf_error(y->ld, "%s:%u:%u: '%s': more than %u items", fname(y), ln(vmark), col(vmark), q,
                        TDM__CONF_SEQ_MAX);
        ok = false;
        continue;
      }
      tdm__conf_item_t *ni = realloc(items, (n + 1) * sizeof(*ni));
      if (ni)
        items = ni;
      char *text = ni ? malloc(ev->data.scalar.length + 1) : NULL;
      if (!text) {
        y->ld->oom = true;
        ok = false;
        continue;
      }
      memcpy(text, ev->data.scalar.value, ev->data.scalar.length);
      text[ev->data.scalar.length] = '\0';
      items[n++] = (tdm__conf_item_t){ text, ev->data.scalar.length, ln(ev->start_mark),
                                       col(ev->start_mark) };
    }
    if (ok && !y->dead) {
      tdm__conf_value_t val = { items, n, true };
      apply(y, name, kmark, &val, vmark);
    }
    for (size_t i = 0; i < n; i++)
      free((char *)items[i].text);
    free(items);
    return;
  }
  case YAML_MAPPING_START_EVENT:
    tdm__conf_quote(q, sizeof(q), name, strlen(name));
    tdm__conf_error(y->ld, "%s:%u:%u: '%s' expects a value, not a mapping (the file is a flat map)", fname(y),
                    ln(vmark), col(vmark), q);
    skip_node(y);
    return;
  case YAML_ALIAS_EVENT:
    tdm__conf_quote(q, sizeof(q), name, strlen(name));
    tdm__conf_error(y->ld, "%s:%u:%u: '%s': YAML aliases are not supported", fname(y), ln(vmark), col(vmark),
                    q);
    return;
  default:
    tdm__conf_quote(q, sizeof(q), name, strlen(name));
    tdm__conf_error(y->ld, "%s:%u:%u: '%s': unexpected YAML event", fname(y), ln(vmark), col(vmark), q);
    return;
  }
}

/* The top-level mapping; its MAPPING_START is the current event. */
static void mapping(yctx_t *y)
{
  while (!y->ld->stop && next(y)) {
    yaml_event_t *ev = &y->ev;
    if (ev->type == YAML_MAPPING_END_EVENT)
      return;
    yaml_mark_t kmark = ev->start_mark;
    char *name = NULL;
    if (ev->type == YAML_SCALAR_EVENT) {
      name = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
      if (!name) {
        y->ld->oom = true;
        return;
      }
    } else {
      tdm__conf_error(y->ld, "%s:%u:%u: keys must be plain names", fname(y), ln(kmark), col(kmark));
      if (ev->type != YAML_ALIAS_EVENT && !skip_node(y))
        return;
    }
    if (!next(y)) {
      free(name);
      return;
    }
    if (name)
      value(y, name, kmark);
    else if (y->ev.type == YAML_MAPPING_START_EVENT || y->ev.type == YAML_SEQUENCE_START_EVENT)
      skip_node(y);
    free(name);
  }
}

static void document(yctx_t *y)
{
  if (!next(y) || y->ev.type != YAML_STREAM_START_EVENT)
    return;
  if (!next(y) || y->ev.type == YAML_STREAM_END_EVENT)
    return; /* no document at all: an empty file means every default */
  if (y->ev.type != YAML_DOCUMENT_START_EVENT || !next(y))
    return;
  switch (y->ev.type) {
  case YAML_MAPPING_START_EVENT:
    mapping(y);
    break;
  case YAML_SCALAR_EVENT:
    if (is_null(&y->ev))
      break; /* `---` alone */
    /* fall through */
  default:
    tdm__conf_error(y->ld, "%s:%u:%u: the configuration must be a map of keys to values", fname(y),
                    ln(y->ev.start_mark), col(y->ev.start_mark));
    return;
  }
  if (y->ld->stop || y->ld->oom || !next(y) || y->ev.type != YAML_DOCUMENT_END_EVENT || !next(y))
    return;
  if (y->ev.type == YAML_DOCUMENT_START_EVENT)
    tdm__conf_error(y->ld, "%s:%u:%u: only one YAML document is allowed", fname(y), ln(y->ev.start_mark),
                    col(y->ev.start_mark));
}

void tdm__conf_yaml_apply(tdm__conf_loader_t *ld, const char *data, size_t len)
{
  yctx_t y = { .ld = ld };
  if (!yaml_parser_initialize(&y.parser)) {
    ld->oom = true;
    return;
  }
  yaml_parser_set_input_string(&y.parser, (const unsigned char *)data, len);
  document(&y);
  if (y.have)
    yaml_event_delete(&y.ev);
  yaml_parser_delete(&y.parser);
}
