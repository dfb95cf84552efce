/* Counter storage: fixed per-node arrays, an open-addressing hash table (linear probing, grown at 50 %
 * load) of statement counts, and an append-only list of authentication attempts. */
#include "json.h"
#include "stats.h"

#include <tandem/proto/opcodes.h>

static uint64_t hash_of(uint32_t node, uint8_t opcode, tdm_str_t text)
{
  uint64_t h = 1469598103934665603ull ^ ((uint64_t)node << 8 | opcode);
  for (size_t i = 0; i < text.len; i++) {
    h ^= (uint8_t)text.ptr[i];
    h *= 1099511628211ull;
  }
  return h ? h : 1;
}

static tdm_mock_stmt_count_t *slot_for(tdm_mock_stmt_count_t *slots, size_t cap, uint64_t h, uint32_t node,
                                       uint8_t opcode, tdm_str_t text)
{
  for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
    tdm_mock_stmt_count_t *e = &slots[i];
    if (e->hash == 0) return e;
    if (e->hash == h && e->node == node && e->opcode == opcode && e->len == text.len &&
        (text.len == 0 || memcmp(e->text, text.ptr, text.len) == 0))
      return e;
  }
}

static int grow(tdm_mock_stats_t *s)
{
  size_t cap = s->cap ? s->cap * 2 : 256;
  tdm_mock_stmt_count_t *slots = calloc(cap, sizeof(*slots));
  if (!slots) return TDM_ENOMEM;
  for (size_t i = 0; i < s->cap; i++) {
    tdm_mock_stmt_count_t *e = &s->slots[i];
    if (e->hash == 0) continue;
    *slot_for(slots, cap, e->hash, e->node, e->opcode, (tdm_str_t){ e->text, e->len }) = *e;
  }
  free(s->slots);
  s->slots = slots;
  s->cap = cap;
  return 0;
}

void tdm_mock_stats_request(tdm_mock_stats_t *s, uint32_t node, uint8_t opcode, tdm_str_t text)
{
  if (node < TDM_MOCK_STATS_MAX_NODES) {
    s->nodes[node].requests++;
    s->nodes[node].by_opcode[opcode]++;
  }
  if ((s->used + 1) * 2 > s->cap && grow(s)) return;
  uint64_t h = hash_of(node, opcode, text);
  tdm_mock_stmt_count_t *e = slot_for(s->slots, s->cap, h, node, opcode, text);
  if (e->hash == 0) {
    char *copy = malloc(text.len + 1);
    if (!copy) return;
    if (text.len) memcpy(copy, text.ptr, text.len);
    copy[text.len] = '\0';
    *e = (tdm_mock_stmt_count_t){ .hash = h, .node = node, .opcode = opcode, .text = copy, .len = text.len };
    s->used++;
  }
  e->count++;
}

void tdm_mock_stats_auth(tdm_mock_stats_t *s, uint32_t node, uint64_t conn, tdm_str_t user, bool ok)
{
  if (node < TDM_MOCK_STATS_MAX_NODES) {
    if (ok) s->nodes[node].auth_ok++;
    else s->nodes[node].auth_failed++;
  }
  if (s->n_auths == s->cap_auths) {
    size_t cap = s->cap_auths ? s->cap_auths * 2 : 32;
    tdm_mock_auth_rec_t *p = realloc(s->auths, cap * sizeof(*p));
    if (!p) return;
    s->auths = p;
    s->cap_auths = cap;
  }
  tdm_mock_auth_rec_t *r = &s->auths[s->n_auths++];
  r->node = node;
  r->conn = conn;
  r->ok = ok;
  snprintf(r->user, sizeof(r->user), "%.*s", (int)TDM_MIN(user.len, sizeof(r->user) - 1), user.ptr ? user.ptr : "");
}

static bool contains(const char *hay, size_t n, tdm_str_t needle)
{
  if (needle.len == 0) return true;
  for (size_t i = 0; i + needle.len <= n; i++)
    if (memcmp(hay + i, needle.ptr, needle.len) == 0) return true;
  return false;
}

uint64_t tdm_mock_stats_count(const tdm_mock_stats_t *s, const tdm_mock_count_filter_t *f)
{
  uint64_t total = 0;
  switch (f->what) {
  case TDM_MOCK_COUNT_CONNECTIONS:
  case TDM_MOCK_COUNT_PROTOCOL_ERRORS:
    for (int n = 0; n < TDM_MOCK_STATS_MAX_NODES; n++)
      if (f->node < 0 || f->node == n)
        total += f->what == TDM_MOCK_COUNT_CONNECTIONS ? s->nodes[n].connections_opened : s->nodes[n].protocol_errors;
    return total;
  case TDM_MOCK_COUNT_AUTH_OK:
  case TDM_MOCK_COUNT_AUTH_FAILED:
    for (size_t i = 0; i < s->n_auths; i++) {
      const tdm_mock_auth_rec_t *r = &s->auths[i];
      if ((f->node >= 0 && (uint32_t)f->node != r->node) || r->ok != (f->what == TDM_MOCK_COUNT_AUTH_OK)) continue;
      if (f->user.len && !tdm_str_eq(f->user, tdm_str_from(r->user))) continue;
      total++;
    }
    return total;
  case TDM_MOCK_COUNT_REQUESTS:
    break;
  }
  for (size_t i = 0; i < s->cap; i++) {
    const tdm_mock_stmt_count_t *e = &s->slots[i];
    if (e->hash == 0) continue;
    if (f->node >= 0 && (uint32_t)f->node != e->node) continue;
    if (f->opcode >= 0 && f->opcode != e->opcode) continue;
    if (!contains(e->text, e->len, f->match)) continue;
    if (f->exact.ptr && !tdm_str_eq(f->exact, (tdm_str_t){ e->text, e->len })) continue;
    if (f->regex && regexec(f->regex, e->text, 0, NULL, 0) != 0) continue;
    total += e->count;
  }
  return total;
}

void tdm_mock_stats_json_statements(const tdm_mock_stats_t *s, tdm_writer_t *w, int node)
{
  bool first = true;
  tdm_writer_byte(w, '[');
  for (size_t i = 0; i < s->cap; i++) {
    const tdm_mock_stmt_count_t *e = &s->slots[i];
    if (e->hash == 0 || e->len == 0 || (node >= 0 && (uint32_t)node != e->node)) continue;
    tdm_mock_json_fmt(w, "%s{\"node\":%u,\"op\":\"%s\",\"count\":%" PRIu64 ",\"text\":", first ? "" : ",", e->node,
                      tdm_opcode_name(e->opcode), e->count);
    tdm_mock_json_str(w, e->text, e->len);
    tdm_writer_byte(w, '}');
    first = false;
  }
  tdm_writer_byte(w, ']');
}

void tdm_mock_stats_json_auths(const tdm_mock_stats_t *s, tdm_writer_t *w, int node)
{
  bool first = true;
  tdm_writer_byte(w, '[');
  for (size_t i = 0; i < s->n_auths; i++) {
    const tdm_mock_auth_rec_t *r = &s->auths[i];
    if (node >= 0 && (uint32_t)node != r->node) continue;
    tdm_mock_json_fmt(w, "%s{\"node\":%u,\"conn\":%" PRIu64 ",\"ok\":%s,\"user\":", first ? "" : ",", r->node, r->conn,
                      r->ok ? "true" : "false");
    tdm_mock_json_cstr(w, r->user);
    tdm_writer_byte(w, '}');
    first = false;
  }
  tdm_writer_byte(w, ']');
}

void tdm_mock_stats_reset(tdm_mock_stats_t *s)
{
  for (size_t i = 0; i < s->cap; i++) free(s->slots[i].text);
  free(s->slots);
  free(s->auths);
  memset(s, 0, sizeof(*s));
}
