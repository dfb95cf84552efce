/* Aggregation decision (behaviour.md §6.1, §6.2) and the texts of the errors tandem originates for a
 * request (§6.3, §7.2, §14). Pure: the same outcomes always give the same answer, so the whole matrix
 * is unit-tested (tests/unit/route/test_aggregate.c). Invariant: a decision other than WAIT names
 * exactly one answer, and an outcome that is still PENDING is never reported as failed or applied. */
#include <stdarg.h>
#include <tandem/route/aggregate.h>

bool tdm_agg_is_not_executed(uint32_t code)
{
  return code == TDM_ERR_UNAVAILABLE || code == TDM_ERR_OVERLOADED || code == TDM_ERR_IS_BOOTSTRAPPING ||
         code == TDM_ERR_UNPREPARED;
}

const char *tdm_agg_cluster_name(int cluster)
{
  return cluster == TDM_CONF_ORIGIN ? "ORIGIN" : cluster == TDM_CONF_TARGET ? "TARGET" : "?";
}

static bool is_timeout(tdm_agg_outcome_t o) { return o == TDM_AGG_SILENT || o == TDM_AGG_LOST; }

static void init_decision(const tdm_agg_input_t *in, tdm_agg_decision_t *out)
{
  memset(out, 0, sizeof(*out));
  out->cluster = -1;
  out->ok_cluster = -1;
  bool complete = true;
  for (int c = 0; c < 2; c++) {
    tdm_agg_outcome_t o = in->leg[c].outcome;
    if (o == TDM_AGG_PENDING) complete = false;
    if (o == TDM_AGG_OK) out->applied |= TDM_AGG_BIT(c);
    if (o == TDM_AGG_ERROR || is_timeout(o)) out->failed |= TDM_AGG_BIT(c);
    if (o == TDM_AGG_SILENT) out->silent |= TDM_AGG_BIT(c);
    if (o == TDM_AGG_LOST) out->lost |= TDM_AGG_BIT(c);
  }
  out->complete = complete;
  out->divergent = complete && out->applied && out->failed;
}

static void forward(tdm_agg_decision_t *out, int c)
{
  out->action = TDM_AGG_FORWARD;
  out->cluster = c;
}

static void rewrite(tdm_agg_decision_t *out, int failed, int ok)
{
  out->action = TDM_AGG_REWRITE;
  out->cluster = failed;
  out->ok_cluster = ok;
}

/* One present leg: its outcome is the answer. */
static void single(const tdm_agg_leg_t *l, int c, tdm_agg_decision_t *out)
{
  if (l->outcome == TDM_AGG_PENDING) return; /* WAIT */
  if (is_timeout(l->outcome))
    out->action = TDM_AGG_TIMEOUT;
  else
    forward(out, c);
}

/* Both legs, write_divergence_policy FAIL (zdm-proxy semantics plus the rewrite). */
static void dual_fail(const tdm_agg_input_t *in, int p, int s, tdm_agg_decision_t *out)
{
  const tdm_agg_leg_t *P = &in->leg[p], *S = &in->leg[s];
  if (P->outcome == TDM_AGG_PENDING) return;
  /* Early answer: the primary failed in a way no secondary outcome can change. */
  if (P->outcome == TDM_AGG_ERROR && !tdm_agg_is_not_executed(P->code)) {
    forward(out, p);
    return;
  }
  if (S->outcome == TDM_AGG_PENDING) return;
  if (P->outcome == TDM_AGG_OK && S->outcome == TDM_AGG_OK) {
    forward(out, in->success_cluster);
  } else if (is_timeout(P->outcome) || is_timeout(S->outcome)) {
    out->action = TDM_AGG_TIMEOUT; /* a leg may or may not have run: only a timeout says so */
  } else if (P->outcome == TDM_AGG_ERROR && S->outcome == TDM_AGG_ERROR) {
    forward(out, p); /* both failed: the primary's error (zdm-proxy returned ORIGIN's) */
  } else if (P->outcome == TDM_AGG_ERROR) {
    rewrite(out, p, s); /* P's code is a not-executed one (others were answered early) */
  } else if (tdm_agg_is_not_executed(S->code)) {
    rewrite(out, s, p);
  } else {
    forward(out, s);
  }
}

/* Both legs, PRIMARY_WINS: the primary's success answers at once; its failure aggregates as under FAIL;
 * the secondary's failure never fails the client. */
static void dual_primary_wins(const tdm_agg_input_t *in, int p, int s, tdm_agg_decision_t *out)
{
  const tdm_agg_leg_t *P = &in->leg[p], *S = &in->leg[s];
  switch (P->outcome) {
  case TDM_AGG_OK:
    forward(out, p);
    return;
  case TDM_AGG_ERROR:
    if (!tdm_agg_is_not_executed(P->code)) {
      forward(out, p);
    } else if (S->outcome == TDM_AGG_OK) {
      rewrite(out, p, s);
    } else if (S->outcome != TDM_AGG_PENDING) {
      forward(out, p);
    }
    return;
  case TDM_AGG_SILENT:
  case TDM_AGG_LOST:
    if (S->outcome != TDM_AGG_PENDING) out->action = TDM_AGG_TIMEOUT;
    return;
  default: /* PENDING */
    return;
  }
}

void tdm_agg_decide(const tdm_agg_input_t *in, tdm_agg_decision_t *out)
{
  init_decision(in, out);
  bool has[2] = { in->leg[0].outcome != TDM_AGG_NONE, in->leg[1].outcome != TDM_AGG_NONE };
  if (has[0] != has[1]) {
    int c = has[0] ? 0 : 1;
    single(&in->leg[c], c, out);
    return;
  }
  if (!has[0]) return; /* no leg at all: nothing to decide (callers never ask) */
  int p = in->primary == TDM_CONF_TARGET ? TDM_CONF_TARGET : TDM_CONF_ORIGIN;
  int s = 1 - p;
  if (in->policy == TDM_CONF_DIVERGENCE_PRIMARY_WINS)
    dual_primary_wins(in, p, s, out);
  else
    dual_fail(in, p, s, out);
}

/* ---- texts ---- */

/* A bounded appender: len counts every byte asked for, buf holds what fits (always NUL-terminated). */
typedef struct text_s {
  char *buf;  /* destination */
  size_t cap; /* bytes at buf */
  size_t len; /* full length so far */
} text_t;

static void append(text_t *t, const char *fmt, ...) TDM_PRINTF(2, 3);
static void append(text_t *t, const char *fmt, ...)
{
  char *dst = NULL; /* NULL once the buffer is full: vsnprintf then only measures */
  size_t room = 0;
  if (t->len + 1 < t->cap) {
    dst = t->buf + t->len;
    room = t->cap - t->len;
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) t->len += (size_t)n;
}

static text_t text_start(char *buf, size_t cap)
{
  if (cap) buf[0] = '\0';
  return (text_t){ buf, cap, 0 };
}

size_t tdm_agg_format_rewrite(char *buf, size_t cap, int ok_cluster, int failed_cluster, uint32_t code,
                              tdm_str_t message)
{
  text_t t = text_start(buf, cap);
  append(&t, "tandem: applied on %s, failed on %s: %s: %.*s", tdm_agg_cluster_name(ok_cluster),
         tdm_agg_cluster_name(failed_cluster), tdm_error_code_name(code), (int)message.len,
         message.ptr ? message.ptr : "");
  return t.len;
}

size_t tdm_agg_format_timeout(char *buf, size_t cap, unsigned silent, unsigned lost, unsigned applied,
                              const char *const node[2], int timeout_ms)
{
  text_t t = text_start(buf, cap);
  append(&t, "tandem: ");
  bool first = true;
  for (int c = 0; c < 2; c++) {
    if (!(lost & TDM_AGG_BIT(c))) continue;
    const char *n = node && node[c] && node[c][0] ? node[c] : NULL;
    append(&t, "%sconnection to %s%s%s lost", first ? "" : "; ", tdm_agg_cluster_name(c), n ? " " : "",
           n ? n : "");
    first = false;
  }
  if (silent) {
    append(&t, "%sno response from ", first ? "" : "; ");
    if ((silent & 3u) == 3u)
      append(&t, "ORIGIN and TARGET");
    else
      append(&t, "%s", tdm_agg_cluster_name((silent & 1u) ? TDM_CONF_ORIGIN : TDM_CONF_TARGET));
    append(&t, " within %d ms", timeout_ms);
  }
  for (int c = 0; c < 2; c++)
    if (applied & TDM_AGG_BIT(c)) append(&t, " (applied on %s)", tdm_agg_cluster_name(c));
  return t.len;
}

size_t tdm_agg_format_unreachable(char *buf, size_t cap, int cluster)
{
  text_t t = text_start(buf, cap);
  append(&t, "tandem: no reachable %s node", tdm_agg_cluster_name(cluster));
  return t.len;
}

size_t tdm_agg_format_no_capacity(char *buf, size_t cap, int cluster, int timeout_ms)
{
  text_t t = text_start(buf, cap);
  append(&t, "tandem: no capacity to %s within %d ms", tdm_agg_cluster_name(cluster), timeout_ms);
  return t.len;
}

size_t tdm_agg_format_unprepared(char *buf, size_t cap, const uint8_t *id, size_t id_len)
{
  static const char hex[] = "0123456789abcdef";
  text_t t = text_start(buf, cap);
  append(&t, "Prepared query with ID ");
  for (size_t i = 0; i < id_len; i++) append(&t, "%c%c", hex[id[i] >> 4], hex[id[i] & 15]);
  append(&t, " not found (either the query was not prepared on this host (maybe the host has been "
             "restarted?) or you have prepared too many queries and it has been evicted from the internal "
             "cache)");
  return t.len;
}

/* ---- ERROR fields ---- */

void tdm_agg_timeout_error(tdm_agg_class_t cls, uint16_t consistency, int batch_type, tdm_str_t message,
                           tdm_response_error_t *e)
{
  memset(e, 0, sizeof(*e));
  e->message = message;
  switch (cls) {
  case TDM_AGG_CLASS_WRITE:
    e->code = TDM_ERR_WRITE_TIMEOUT;
    e->consistency = consistency;
    e->received = 0;
    e->block_for = 1;
    e->write_type = batch_type == TDM_BATCH_LOGGED     ? TDM_STR("BATCH")
                    : batch_type == TDM_BATCH_UNLOGGED ? TDM_STR("UNLOGGED_BATCH")
                    : batch_type == TDM_BATCH_COUNTER  ? TDM_STR("COUNTER")
                                                       : TDM_STR("SIMPLE");
    break;
  case TDM_AGG_CLASS_READ:
    e->code = TDM_ERR_READ_TIMEOUT;
    e->consistency = consistency;
    e->received = 0;
    e->block_for = 1;
    e->data_present = 0;
    break;
  default:
    e->code = TDM_ERR_SERVER_ERROR;
    break;
  }
}

void tdm_agg_unavailable_error(uint16_t consistency, tdm_str_t message, tdm_response_error_t *e)
{
  memset(e, 0, sizeof(*e));
  e->code = TDM_ERR_UNAVAILABLE;
  e->consistency = consistency;
  e->required = 1;
  e->alive = 0;
  e->message = message;
}
