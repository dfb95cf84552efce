/* Handshake pieces shared by the control connection and pool connections: the §3 version order and
 * how a refusal looks, PROTOCOL_VERSIONS parsing, the STARTUP body, internal QUERY bodies, opening a
 * response for decoding (decompression, frame prefix), and the client side of SASL PLAIN with the DSE
 * mechanism dance (§2.2 step 6). */
#include <stdarg.h>
#include <tandem/conf/conf.h>
#include <tandem/proto/compress.h>
#include "internal.h"

const uint8_t tdm__proto_order[6] = { TDM_PROTO_DSE_V2, TDM_PROTO_DSE_V1, TDM_PROTO_V5,
                                      TDM_PROTO_V4,     TDM_PROTO_V3,     TDM_PROTO_V2 };

int tdm__proto_order_index(uint8_t version)
{
  for (int i = 0; i < (int)TDM_ARRAY_SIZE(tdm__proto_order); i++)
    if (tdm__proto_order[i] == version) return i;
  return -1;
}

static bool contains(tdm_str_t hay, const char *needle)
{
  size_t n = strlen(needle);
  if (hay.len < n) return false;
  for (size_t i = 0; i + n <= hay.len; i++)
    if (memcmp(hay.ptr + i, needle, n) == 0) return true;
  return false;
}

bool tdm__is_version_refusal(uint32_t code, tdm_str_t message)
{
  if (code != TDM_ERR_PROTOCOL_ERROR) return false;
  return contains(message, "Invalid or unsupported protocol version") || contains(message, "Beta version") ||
         contains(message, "beta version");
}

unsigned tdm__parse_protocol_versions(const tdm_response_strlist_t *l, bool allow_v2)
{
  unsigned bits = 0;
  size_t pos = 0;
  tdm_str_t s;
  while (tdm_response_strlist_next(l, &pos, &s) == 1) {
    if (contains(s, "beta") || contains(s, "BETA")) continue;
    int v = 0;
    size_t i = 0;
    while (i < s.len && i < 4 && s.ptr[i] >= '0' && s.ptr[i] <= '9') v = v * 10 + (s.ptr[i++] - '0');
    if (i == 0) continue;
    if (v == TDM_PROTO_V2 && !allow_v2) continue;
    bits |= tdm_conf_version_bit(v);
  }
  return bits;
}

void tdm__textf(char *buf, size_t cap, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
}

const char *tdm__cluster_name(int cluster) { return cluster == TDM_CONF_TARGET ? "TARGET" : "ORIGIN"; }
const char *tdm__cluster_key(int cluster) { return cluster == TDM_CONF_TARGET ? "target" : "origin"; }

int tdm__msg_open(const tdm__frame_t *f, tdm_compression_t comp, tdm__msg_t *m)
{
  memset(m, 0, sizeof(*m));
  const uint8_t *body = f->body;
  size_t len = f->len;
  if ((f->h.flags & TDM_FLAG_COMPRESSED) && !tdm_proto_has_segments(f->h.version)) {
    if (comp == TDM_COMPRESSION_NONE) return TDM_EPROTO_COMPRESS;
    size_t out_len = 0;
    int rc = tdm_body_decompress(comp, f->body, f->len, TDM__CHAN_MAX_BODY, &m->owned, &out_len);
    if (rc < 0) return rc;
    body = m->owned;
    len = out_len;
  }
  tdm_response_prefix_t pre;
  int rc = tdm_response_strip_prefix(f->h.version, f->h.flags, body, len, &pre);
  if (rc < 0) {
    tdm__msg_close(m);
    return rc;
  }
  m->body = body + pre.message_offset;
  m->len = len - pre.message_offset;
  return 0;
}

void tdm__msg_close(tdm__msg_t *m)
{
  free(m->owned);
  memset(m, 0, sizeof(*m));
}

int tdm__startup_body(tdm_writer_t *w, const char *cql_version, tdm_compression_t comp)
{
  tdm_str_t keys[3], vals[3];
  size_t n = 0;
  keys[n] = TDM_STR("CQL_VERSION");
  vals[n++] = tdm_str_from(cql_version && *cql_version ? cql_version : "3.0.0");
  if (comp != TDM_COMPRESSION_NONE) {
    keys[n] = TDM_STR("COMPRESSION");
    vals[n++] = tdm_str_from(tdm_compression_name(comp));
  }
  keys[n] = TDM_STR("DRIVER_NAME");
  vals[n++] = TDM_STR("tandem");
  return tdm_request_encode_startup(w, keys, vals, n);
}

int tdm__query_body(tdm_writer_t *w, uint8_t version, const char *query)
{
  tdm_query_params_t p;
  memset(&p, 0, sizeof(p));
  p.consistency = TDM_CL_ONE;
  p.paging_state.len = -1;
  return tdm_request_encode_query(w, version, tdm_str_from(query), &p);
}

void tdm__sasl_start(tdm__sasl_t *s, tdm_str_t authenticator)
{
  memset(s, 0, sizeof(*s));
  s->dse = contains(authenticator, "DseAuthenticator");
}

/* "[authzid]\0user\0password" as one [bytes] token. */
static int credentials_token(tdm_writer_t *w, const char *authzid, const char *user, const char *password)
{
  size_t a = authzid ? strlen(authzid) : 0, u = strlen(user), p = strlen(password);
  size_t n = a + 1 + u + 1 + p;
  if (n > INT32_MAX) return TDM_EINVAL;
  tdm_writer_int(w, (int32_t)n);
  if (a) tdm_writer_raw(w, authzid, a);
  tdm_writer_byte(w, 0);
  tdm_writer_raw(w, user, u);
  tdm_writer_byte(w, 0);
  tdm_writer_raw(w, password, p);
  return tdm_writer_error(w);
}

int tdm__sasl_next(tdm__sasl_t *s, const tdm_bytes_t *challenge, const char *authzid, const char *user,
                   const char *password, tdm_writer_t *body, const char **why)
{
  if (s->rounds >= TDM__SASL_MAX_ROUNDS) {
    *why = "more than 5 SASL rounds";
    return TDM_EINVAL;
  }
  s->rounds++;
  if (s->dse && s->step == 0) {
    s->step = 1;
    tdm_writer_bytes(body, "PLAIN", 5);
    return tdm_writer_error(body);
  }
  if (s->dse && s->step == 1) {
    static const char start[] = "PLAIN-START";
    if (!challenge || challenge->len != (int32_t)(sizeof(start) - 1) ||
        memcmp(challenge->ptr, start, sizeof(start) - 1) != 0) {
      *why = "the DSE authenticator did not answer PLAIN with PLAIN-START";
      return TDM_EINVAL;
    }
  }
  /* PasswordAuthenticator and third-party password authenticators take the credentials at once; a
   * further challenge is answered with them again until the round limit */
  s->step = 2;
  return credentials_token(body, authzid, user, password);
}
