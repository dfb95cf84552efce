/* Rule parsing, matching and accounting. A rule owns every string its ERROR / Rows answer points at,
 * so an answer can be encoded straight from the rule. Matching order is insertion order; the counters
 * `matched` and `fired` decide skip / every / times deterministically. */
#include <ctype.h>

#include <tandem/proto/opcodes.h>

#include "json.h"
#include "mock.h"
#include "rules.h"

static const char *const action_names[TDM_MOCK_ACT_MAX] = {
  [TDM_MOCK_ACT_DEFAULT] = "default", [TDM_MOCK_ACT_ROWS] = "rows",       [TDM_MOCK_ACT_VOID] = "void",
  [TDM_MOCK_ACT_ERROR] = "error",     [TDM_MOCK_ACT_CLOSE] = "close",     [TDM_MOCK_ACT_GARBAGE] = "garbage",
  [TDM_MOCK_ACT_NOREPLY] = "noreply", [TDM_MOCK_ACT_UNPREPARED] = "unprepared",
};

const char *tdm_mock_action_name(tdm_mock_action_t a)
{
  return (unsigned)a < TDM_MOCK_ACT_MAX ? action_names[a] : "unknown";
}

void tdm_mock_rules_init(tdm_mock_rules_t *r)
{
  tdm_mock_list_init(&r->list);
  r->next_id = 1;
  r->count = 0;
}

static void rule_free(tdm_mock_rule_t *rule)
{
  if (rule->has_regex) regfree(&rule->regex);
  free(rule->match);
  free(rule->msg);
  free(rule->write_type);
  free(rule->err_ks);
  free(rule->err_table);
  free(rule->err_function);
  free(rule->arg_types);
  free(rule->arg_buf);
  free(rule->cols);
  free(rule->col_buf);
  tdm_writer_free(&rule->cells);
  free(rule->rows_ks);
  free(rule->rows_table);
  free(rule->line);
  free(rule);
}

void tdm_mock_rule_ref(tdm_mock_rule_t *rule) { rule->refs++; }

void tdm_mock_rule_unref(tdm_mock_rule_t *rule)
{
  TDM_ASSERT(rule->refs > 0);
  if (--rule->refs == 0) rule_free(rule);
}

int tdm_mock_opcode_parse(tdm_str_t s, uint8_t *op)
{
  int64_t v;
  for (unsigned i = 0; i < 256; i++) {
    const char *name = tdm_opcode_name((uint8_t)i);
    if (strcmp(name, "UNKNOWN") != 0 && tdm_str_eq_ci(s, tdm_str_from(name))) {
      *op = (uint8_t)i;
      return 0;
    }
  }
  if (tdm_mock_parse_int(s, &v) == 0 && v >= 0 && v <= 255) {
    *op = (uint8_t)v;
    return 0;
  }
  return TDM_EINVAL;
}

int tdm_mock_errcode_parse(tdm_str_t s, uint32_t *code)
{
  int64_t v;
  if (tdm_mock_parse_int(s, &v) == 0 && v >= 0 && v <= INT32_MAX) {
    *code = (uint32_t)v;
    return 0;
  }
  for (uint32_t c = 0; c <= 0x2500; c++) {
    const char *name = tdm_error_code_name(c);
    if (strcmp(name, "UNKNOWN_ERROR") != 0 && tdm_str_eq_ci(s, tdm_str_from(name))) {
      *code = c;
      return 0;
    }
  }
  return TDM_EINVAL;
}

static int consistency_parse(tdm_str_t s, uint16_t *out)
{
  static const char *const names[] = { "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL",
                                       "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE" };
  int64_t v;
  for (size_t i = 0; i < TDM_ARRAY_SIZE(names); i++) {
    if (tdm_str_eq_ci(s, tdm_str_from(names[i]))) {
      *out = (uint16_t)i;
      return 0;
    }
  }
  if (tdm_mock_parse_int(s, &v) == 0 && v >= 0 && v <= 0xffff) {
    *out = (uint16_t)v;
    return 0;
  }
  return TDM_EINVAL;
}

static const char *default_message(uint32_t code)
{
  switch (code) {
  case TDM_ERR_UNAVAILABLE: return "Cannot achieve consistency level ONE";
  case TDM_ERR_OVERLOADED: return "Server is in overloaded state. Cannot accept more requests at this point";
  case TDM_ERR_IS_BOOTSTRAPPING: return "Cannot read from a bootstrapping node";
  case TDM_ERR_WRITE_TIMEOUT: return "Operation timed out - received only 0 responses.";
  case TDM_ERR_READ_TIMEOUT: return "Operation timed out - received only 0 responses.";
  case TDM_ERR_READ_FAILURE: return "Operation failed - received 0 responses and 1 failures";
  case TDM_ERR_WRITE_FAILURE: return "Operation failed - received 0 responses and 1 failures";
  case TDM_ERR_SYNTAX_ERROR: return "line 1:0 no viable alternative at input";
  case TDM_ERR_UNAUTHORIZED: return "User has no permission";
  case TDM_ERR_INVALID: return "Invalid query";
  case TDM_ERR_ALREADY_EXISTS: return "Table already exists";
  default: return "mock error";
  }
}

static char *dup_str(tdm_str_t s) { return tdm_mock_prep_strdup(s); }

/* Splits s at `sep` occurring at angle-bracket depth 0 (for "a:map<text, int>,b:int"). */
static size_t split_top(char *s, char sep, char **parts, size_t max)
{
  size_t n = 0;
  int depth = 0;
  char *start = s;
  for (char *p = s;; p++) {
    if (*p == '<') depth++;
    if (*p == '>' && depth > 0) depth--;
    if ((*p == sep && depth == 0) || *p == '\0') {
      bool end = *p == '\0';
      *p = '\0';
      if (n < max) parts[n++] = start;
      if (end) break;
      start = p + 1;
    }
  }
  return n;
}

static int parse_columns(tdm_mock_rule_t *rule, tdm_str_t spec, char *err, size_t errcap)
{
  rule->col_buf = dup_str(spec);
  if (!rule->col_buf) return TDM_ENOMEM;
  char *parts[256];
  size_t n = split_top(rule->col_buf, ',', parts, TDM_ARRAY_SIZE(parts));
  rule->cols = calloc(n, sizeof(*rule->cols));
  if (!rule->cols) return TDM_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    char *colon = strchr(parts[i], ':');
    tdm_str_t type_text = colon ? tdm_str_from(colon + 1) : TDM_STR("text");
    if (colon) *colon = '\0';
    while (*parts[i] == ' ') parts[i]++;
    rule->cols[i].name = tdm_str_from(parts[i]);
    if (rule->cols[i].name.len == 0 || tdm_mock_type_parse(type_text, &rule->cols[i].type)) {
      snprintf(err, errcap, "bad column spec '%s'", parts[i]);
      return TDM_EINVAL;
    }
  }
  rule->n_cols = n;
  return 0;
}

/* Next cell of a rows spec: up to an unescaped ',' or ';' (backslash escapes any byte). */
static size_t next_cell(tdm_str_t s, size_t i, char *buf, size_t cap, size_t *out_len, char *delim)
{
  size_t o = 0;
  *delim = '\0';
  while (i < s.len) {
    char c = s.ptr[i++];
    if (c == '\\' && i < s.len) {
      c = s.ptr[i++];
    } else if (c == ',' || c == ';') {
      *delim = c;
      break;
    }
    if (o + 1 < cap) buf[o++] = c;
  }
  buf[o] = '\0';
  *out_len = o;
  return i;
}

static int parse_rows(tdm_mock_rule_t *rule, tdm_str_t spec, char *err, size_t errcap)
{
  tdm_writer_init(&rule->cells);
  if (spec.len == 0) return 0;
  char cell[4096];
  size_t i = 0, col = 0, n;
  char delim;
  for (;;) {
    i = next_cell(spec, i, cell, sizeof(cell), &n, &delim);
    if (col >= rule->n_cols) {
      snprintf(err, errcap, "row %d has more cells than the %zu columns", rule->n_rows + 1, rule->n_cols);
      return TDM_EINVAL;
    }
    if (strcmp(cell, "null") == 0) {
      tdm_writer_int(&rule->cells, -1);
    } else {
      size_t at = tdm_writer_reserve_int(&rule->cells), start = rule->cells.len;
      if (tdm_mock_value_from_text(&rule->cols[col].type, (tdm_str_t){ cell, n }, &rule->cells)) {
        snprintf(err, errcap, "value '%s' does not fit column %.*s", cell, (int)rule->cols[col].name.len,
                 rule->cols[col].name.ptr);
        return TDM_EINVAL;
      }
      tdm_writer_patch_int(&rule->cells, at, (int32_t)(rule->cells.len - start));
    }
    col++;
    if (delim != ',') {
      if (col != rule->n_cols) {
        snprintf(err, errcap, "row %d has %zu cells, expected %zu", rule->n_rows + 1, col, rule->n_cols);
        return TDM_EINVAL;
      }
      rule->n_rows++;
      col = 0;
      if (delim == '\0') break;
    }
  }
  return tdm_writer_error(&rule->cells);
}

static int parse_action(tdm_mock_rule_t *rule, tdm_str_t a)
{
  for (unsigned i = 0; i < TDM_MOCK_ACT_MAX; i++) {
    if (tdm_str_eq_ci(a, tdm_str_from(action_names[i]))) {
      rule->action = (tdm_mock_action_t)i;
      return 0;
    }
  }
  if (tdm_str_eq_ci(a, TDM_STR("delay")) || tdm_str_eq_ci(a, TDM_STR("reply"))) {
    rule->action = TDM_MOCK_ACT_DEFAULT;
    return 0;
  }
  if (tdm_str_eq_ci(a, TDM_STR("never")) || tdm_str_eq_ci(a, TDM_STR("drop"))) {
    rule->action = TDM_MOCK_ACT_NOREPLY;
    return 0;
  }
  return TDM_EINVAL;
}

static int parse_ops(tdm_mock_rule_t *rule, tdm_str_t spec)
{
  memset(rule->ops, 0, sizeof(rule->ops));
  if (tdm_str_eq(spec, TDM_STR("*")) || tdm_str_eq_ci(spec, TDM_STR("any"))) {
    memset(rule->ops, 0xff, sizeof(rule->ops));
    return 0;
  }
  size_t i = 0;
  while (i <= spec.len) {
    const char *comma = memchr(spec.ptr + i, ',', spec.len - i);
    size_t end = comma ? (size_t)(comma - spec.ptr) : spec.len;
    uint8_t op;
    if (tdm_mock_opcode_parse((tdm_str_t){ spec.ptr + i, end - i }, &op)) return TDM_EINVAL;
    rule->ops[op >> 6] |= 1ull << (op & 63);
    i = end + 1;
  }
  return 0;
}

#define FAIL(...) do { snprintf(err, errcap, __VA_ARGS__); rc = TDM_EINVAL; goto fail; } while (0)

static int parse_error_fields(tdm_mock_rule_t *rule, tdm_mock_args_t *args, char *err, size_t errcap)
{
  int rc = 0;
  tdm_str_t v;
  int64_t n;
  bool found;
  tdm_response_error_t *e = &rule->error;
  if (!tdm_mock_args_get(args, "code", &v)) FAIL("action=error needs code=");
  if (tdm_mock_errcode_parse(v, &e->code)) FAIL("bad code '%.*s'", (int)v.len, v.ptr);
  rule->msg = dup_str(tdm_mock_args_get(args, "msg", &v) ? v : tdm_str_from(default_message(e->code)));
  e->consistency = TDM_CL_ONE;
  if (tdm_mock_args_get(args, "cl", &v) && consistency_parse(v, &e->consistency)) FAIL("bad cl");
  e->received = 0;
  e->block_for = 1;
  e->required = 1;
  e->alive = 0;
  struct { const char *key; int32_t *field; } ints[] = {
    { "received", &e->received }, { "blockfor", &e->block_for }, { "required", &e->required }, { "alive", &e->alive },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(ints); i++) {
    if (tdm_mock_args_get_int(args, ints[i].key, &n, &found) || (found && (n < INT32_MIN || n > INT32_MAX)))
      FAIL("bad %s", ints[i].key);
    if (found) *ints[i].field = (int32_t)n;
  }
  if (tdm_mock_args_get_int(args, "data_present", &n, &found)) FAIL("bad data_present");
  e->data_present = found ? (uint8_t)(n != 0) : 0;
  if (tdm_mock_args_get_int(args, "failures", &n, &found) || (found && (n < 0 || n > TDM_MOCK_RULE_MAX_REASONS)))
    FAIL("bad failures (0..%d)", TDM_MOCK_RULE_MAX_REASONS);
  e->failures = found ? (int32_t)n : (e->code == TDM_ERR_READ_FAILURE || e->code == TDM_ERR_WRITE_FAILURE);
  rule->reason_addr[0] = 127;
  rule->reason_addr[3] = 1;
  for (int32_t i = 0; i < e->failures; i++)
    rule->reasons[i] = (tdm_response_reason_t){ .addr = rule->reason_addr, .addr_len = 4, .code = 0 };
  e->reasons = rule->reasons;
  if (tdm_mock_args_get_int(args, "contentions", &n, &found)) FAIL("bad contentions");
  if (found) {
    e->has_contentions = true;
    e->contentions = (uint16_t)n;
  }
  rule->write_type = dup_str(tdm_mock_args_get(args, "write_type", &v) ? v : TDM_STR("SIMPLE"));
  rule->err_ks = dup_str(tdm_mock_args_get(args, "ks", &v) ? v : TDM_STR("ks"));
  rule->err_table = dup_str(tdm_mock_args_get(args, "table", &v) ? v : TDM_STR(""));
  rule->err_function = dup_str(tdm_mock_args_get(args, "function", &v) ? v : TDM_STR("f"));
  rule->arg_buf = dup_str(tdm_mock_args_get(args, "args", &v) ? v : TDM_STR(""));
  if (!rule->msg || !rule->write_type || !rule->err_ks || !rule->err_table || !rule->err_function || !rule->arg_buf)
    return TDM_ENOMEM;
  e->message = tdm_str_from(rule->msg);
  e->write_type = tdm_str_from(rule->write_type);
  e->keyspace = tdm_str_from(rule->err_ks);
  e->table = tdm_str_from(rule->err_table);
  e->function = tdm_str_from(rule->err_function);
  char *parts[32];
  size_t nargs = rule->arg_buf[0] ? split_top(rule->arg_buf, ',', parts, TDM_ARRAY_SIZE(parts)) : 0;
  rule->arg_types = calloc(nargs + 1, sizeof(tdm_str_t));
  if (!rule->arg_types) return TDM_ENOMEM;
  for (size_t i = 0; i < nargs; i++) rule->arg_types[i] = tdm_str_from(parts[i]);
  e->arg_types.count = (uint16_t)nargs;
  e->arg_types.items = rule->arg_types;
fail:
  return rc;
}

int tdm_mock_rules_add(tdm_mock_rules_t *r, const tdm_mock_t *mock, tdm_mock_args_t *args, tdm_str_t line,
                       unsigned *id, char *err, size_t errcap)
{
  int rc = 0;
  tdm_str_t v;
  int64_t n;
  bool found;
  char unknown[64];
  tdm_mock_rule_t *rule = calloc(1, sizeof(*rule));
  if (!rule) return TDM_ENOMEM;
  rule->refs = 1;
  rule->node = -1;
  rule->every = 1;
  memset(rule->ops, 0xff, sizeof(rule->ops));
  tdm_writer_init(&rule->cells);
  if (tdm_mock_args_get(args, "node", &v)) {
    rule->node = tdm_mock_node_find(mock, v);
    if (rule->node == TDM_ENOTFOUND) FAIL("unknown node '%.*s'", (int)v.len, v.ptr);
  }
  if (tdm_mock_args_get(args, "op", &v) && parse_ops(rule, v)) FAIL("bad op '%.*s'", (int)v.len, v.ptr);
  if (tdm_mock_args_get_int(args, "version", &n, &found) || (found && (n < 0 || n > 0x7f))) FAIL("bad version");
  rule->version = found ? (uint8_t)n : 0;
  int64_t icase = 0;
  if (tdm_mock_args_get_int(args, "icase", &icase, &found)) FAIL("bad icase");
  rule->icase = icase != 0;
  if (tdm_mock_args_get(args, "match", &v) && !(rule->match = dup_str(v))) {
    rc = TDM_ENOMEM;
    goto fail;
  }
  if (tdm_mock_args_get(args, "regex", &v)) {
    char *src = dup_str(v);
    if (!src) {
      rc = TDM_ENOMEM;
      goto fail;
    }
    int rerr = regcomp(&rule->regex, src, REG_EXTENDED | REG_NOSUB | (rule->icase ? REG_ICASE : 0));
    free(src);
    if (rerr) FAIL("bad regex '%.*s'", (int)v.len, v.ptr);
    rule->has_regex = true;
  }
  struct { const char *key; uint64_t *field; } counts[] = {
    { "skip", &rule->skip }, { "after", &rule->skip }, { "times", &rule->times }, { "every", &rule->every },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(counts); i++) {
    if (tdm_mock_args_get_int(args, counts[i].key, &n, &found) || (found && n < 0)) FAIL("bad %s", counts[i].key);
    if (found) *counts[i].field = (uint64_t)n;
  }
  if (rule->every == 0) FAIL("every must be >= 1");
  if (tdm_mock_args_get_int(args, "delay", &n, &found) || (found && (n < 0 || n > 3600000))) FAIL("bad delay");
  if (found) rule->delay_ms = (uint32_t)n;
  if (tdm_mock_args_get_int(args, "ms", &n, &found) || (found && (n < 0 || n > 3600000))) FAIL("bad ms");
  if (found) rule->delay_ms = (uint32_t)n;
  if (tdm_mock_args_get(args, "action", &v) && parse_action(rule, v)) FAIL("bad action '%.*s'", (int)v.len, v.ptr);
  switch (rule->action) {
  case TDM_MOCK_ACT_ERROR:
    if ((rc = parse_error_fields(rule, args, err, errcap))) goto fail;
    break;
  case TDM_MOCK_ACT_ROWS: {
    tdm_str_t rows = { 0 };
    if (!tdm_mock_args_get(args, "columns", &v)) FAIL("action=rows needs columns=");
    if ((rc = parse_columns(rule, v, err, errcap))) goto fail;
    tdm_mock_args_get(args, "rows", &rows);
    if ((rc = parse_rows(rule, rows, err, errcap))) goto fail;
    rule->rows_ks = dup_str(tdm_mock_args_get(args, "ks", &v) ? v : TDM_STR("mock"));
    rule->rows_table = dup_str(tdm_mock_args_get(args, "table", &v) ? v : TDM_STR("mock"));
    if (!rule->rows_ks || !rule->rows_table) {
      rc = TDM_ENOMEM;
      goto fail;
    }
    break;
  }
  case TDM_MOCK_ACT_CLOSE:
    if (tdm_mock_args_get_int(args, "reset", &n, &found)) FAIL("bad reset");
    rule->reset = found && n != 0;
    break;
  case TDM_MOCK_ACT_GARBAGE:
    if (tdm_mock_args_get_int(args, "bytes", &n, &found) || (found && (n < 1 || n > (1 << 20)))) FAIL("bad bytes");
    rule->garbage = found ? (size_t)n : 64;
    break;
  default:
    break;
  }
  if (tdm_mock_args_unused(args, unknown, sizeof(unknown))) FAIL("unknown field '%s'", unknown);
  rule->line = dup_str(line);
  if (!rule->line) {
    rc = TDM_ENOMEM;
    goto fail;
  }
  rule->id = r->next_id++;
  tdm_mock_list_push(&r->list, &rule->link);
  r->count++;
  *id = rule->id;
  return 0;
fail:
  rule_free(rule);
  return rc ? rc : TDM_EINVAL;
}

int tdm_mock_rules_del(tdm_mock_rules_t *r, unsigned id)
{
  tdm_mock_link_t *it, *tmp;
  TDM_MOCK_LIST_EACH(it, tmp, &r->list)
  {
    tdm_mock_rule_t *rule = TDM_MOCK_CONTAINER(it, tdm_mock_rule_t, link);
    if (rule->id == id) {
      tdm_mock_list_remove(&rule->link);
      r->count--;
      tdm_mock_rule_unref(rule);
      return 0;
    }
  }
  return TDM_ENOTFOUND;
}

void tdm_mock_rules_clear(tdm_mock_rules_t *r)
{
  tdm_mock_link_t *it, *tmp;
  TDM_MOCK_LIST_EACH(it, tmp, &r->list)
  {
    tdm_mock_rule_t *rule = TDM_MOCK_CONTAINER(it, tdm_mock_rule_t, link);
    tdm_mock_list_remove(&rule->link);
    tdm_mock_rule_unref(rule);
  }
  r->count = 0;
}

static bool contains(tdm_str_t hay, const char *needle, bool icase)
{
  size_t n = strlen(needle);
  if (n == 0) return true;
  for (size_t i = 0; i + n <= hay.len; i++) {
    if (icase ? strncasecmp(hay.ptr + i, needle, n) == 0 : memcmp(hay.ptr + i, needle, n) == 0) return true;
  }
  return false;
}

static bool text_matches(tdm_mock_rule_t *rule, tdm_str_t text)
{
  if (rule->match && !contains(text, rule->match, rule->icase)) return false;
  if (rule->has_regex) {
    char *z = tdm_mock_prep_strdup(text);
    if (!z) return false;
    bool ok = regexec(&rule->regex, z, 0, NULL, 0) == 0;
    free(z);
    if (!ok) return false;
  }
  return true;
}

tdm_mock_rule_t *tdm_mock_rules_match(tdm_mock_rules_t *r, int node, uint8_t opcode, uint8_t version, tdm_str_t text)
{
  tdm_mock_link_t *it, *tmp;
  TDM_MOCK_LIST_EACH(it, tmp, &r->list)
  {
    tdm_mock_rule_t *rule = TDM_MOCK_CONTAINER(it, tdm_mock_rule_t, link);
    if (rule->node >= 0 && rule->node != node) continue;
    if (!(rule->ops[opcode >> 6] & (1ull << (opcode & 63)))) continue;
    if (rule->version && rule->version != version) continue;
    if (!text_matches(rule, text)) continue;
    rule->matched++;
    if (rule->matched <= rule->skip) continue;
    if ((rule->matched - rule->skip) % rule->every != 0) continue;
    if (rule->times && rule->fired >= rule->times) continue;
    rule->fired++;
    return rule;
  }
  return NULL;
}

void tdm_mock_rules_json(const tdm_mock_rules_t *r, tdm_writer_t *w)
{
  const tdm_mock_link_t *it;
  bool first = true;
  tdm_writer_byte(w, '[');
  for (it = r->list.next; it != &r->list; it = it->next) {
    const tdm_mock_rule_t *rule = TDM_MOCK_CONTAINER(it, tdm_mock_rule_t, link);
    tdm_mock_json_fmt(w, "%s{\"id\":%u,\"action\":\"%s\",\"matched\":%" PRIu64 ",\"fired\":%" PRIu64 ",\"line\":",
                      first ? "" : ",", rule->id, tdm_mock_action_name(rule->action), rule->matched, rule->fired);
    tdm_mock_json_cstr(w, rule->line);
    tdm_writer_byte(w, '}');
    first = false;
  }
  tdm_writer_byte(w, ']');
}
