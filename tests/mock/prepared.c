/* Per-node prepared-statement cache: chained buckets indexed by the first id byte (ids are md5s, so
 * evenly spread). Entries own their text, parse and metadata names. */
#include "prepared.h"

tdm_mock_prep_t *tdm_mock_prepared_find(const tdm_mock_prepared_t *pc, const uint8_t *id, size_t id_len)
{
  if (id_len != 16 || !id) return NULL;
  for (tdm_mock_prep_t *e = pc->buckets[id[0]]; e; e = e->next)
    if (memcmp(e->id, id, 16) == 0) return e;
  return NULL;
}

void tdm_mock_prep_free(tdm_mock_prep_t *e)
{
  if (!e) return;
  for (size_t i = 0; i < e->n_binds; i++) free((char *)e->binds[i].name.ptr);
  for (size_t i = 0; i < e->n_result; i++) free((char *)e->result[i].name.ptr);
  free(e->binds);
  free(e->result);
  free(e->stmt);
  free(e->text);
  free(e);
}

void tdm_mock_prepared_put(tdm_mock_prepared_t *pc, tdm_mock_prep_t *e)
{
  tdm_mock_prep_t **pp = &pc->buckets[e->id[0]];
  for (; *pp; pp = &(*pp)->next) {
    if (memcmp((*pp)->id, e->id, 16) == 0) {
      tdm_mock_prep_t *old = *pp;
      e->next = old->next;
      *pp = e;
      tdm_mock_prep_free(old);
      return;
    }
  }
  e->next = NULL;
  *pp = e;
  pc->count++;
}

void tdm_mock_prepared_clear(tdm_mock_prepared_t *pc)
{
  for (size_t b = 0; b < TDM_MOCK_PREPARED_BUCKETS; b++) {
    tdm_mock_prep_t *e = pc->buckets[b];
    while (e) {
      tdm_mock_prep_t *next = e->next;
      tdm_mock_prep_free(e);
      e = next;
    }
    pc->buckets[b] = NULL;
  }
  pc->count = 0;
}

char *tdm_mock_prep_strdup(tdm_str_t s)
{
  char *p = malloc(s.len + 1);
  if (!p) return NULL;
  if (s.len) memcpy(p, s.ptr, s.len);
  p[s.len] = '\0';
  return p;
}
