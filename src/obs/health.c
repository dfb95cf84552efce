/* Readiness decision and document (obs/health.h). The members and their order are zdm-proxy's
 * (OriginStatus, TargetStatus, Status; inside each: Addr, CurrentFailureCount, FailureCountThreshold,
 * Status) followed by tandem's own member:
 *   "Tandem":{"Epoch":3,"PrimaryCluster":"TARGET","ReadMode":"PRIMARY_ONLY","Draining":false,"Version":"x"} */
#include <inttypes.h>
#include <tandem/conf/conf.h>
#include <tandem/obs/health.h>
#include <tandem/obs/status.h>

const char *tdm_health_status_name(tdm_health_status_t s)
{
  switch (s) {
  case TDM_HEALTH_STARTUP: return "STARTUP";
  case TDM_HEALTH_UP: return "UP";
  case TDM_HEALTH_DOWN: return "DOWN";
  }
  return "DOWN";
}

tdm_health_status_t tdm_health_cluster_status(const tdm_health_cluster_t *c)
{
  return c->failures >= c->threshold ? TDM_HEALTH_DOWN : TDM_HEALTH_UP;
}

tdm_health_status_t tdm_health_status(const tdm_health_t *h)
{
  if (!h->cluster[0].ever_up || !h->cluster[1].ever_up)
    return TDM_HEALTH_STARTUP;
  if (h->draining)
    return TDM_HEALTH_DOWN;
  for (int c = 0; c < 2; c++)
    if (tdm_health_cluster_status(&h->cluster[c]) != TDM_HEALTH_UP)
      return TDM_HEALTH_DOWN;
  return TDM_HEALTH_UP;
}

static void put_cluster(FILE *out, const tdm_health_cluster_t *c)
{
  fputs("{\"Addr\":", out);
  tdm_status_json_string(out, c->addr[0] ? c->addr : "NOT_CONNECTED");
  fprintf(out, ",\"CurrentFailureCount\":%d,\"FailureCountThreshold\":%d,\"Status\":\"%s\"}", c->failures,
          c->threshold, tdm_health_status_name(tdm_health_cluster_status(c)));
}

unsigned tdm_health_readiness_json(FILE *out, const tdm_health_t *h)
{
  tdm_health_status_t st = tdm_health_status(h);
  fputs("{\"OriginStatus\":", out);
  if (st == TDM_HEALTH_STARTUP)
    fputs("null", out);
  else
    put_cluster(out, &h->cluster[0]);
  fputs(",\"TargetStatus\":", out);
  if (st == TDM_HEALTH_STARTUP)
    fputs("null", out);
  else
    put_cluster(out, &h->cluster[1]);
  fprintf(out, ",\"Status\":\"%s\",\"Tandem\":{\"Epoch\":%" PRIu64 ",\"PrimaryCluster\":\"%s\",\"ReadMode\":\"%s\","
               "\"Draining\":%s,\"Version\":",
          tdm_health_status_name(st), h->epoch, h->primary_cluster == TDM_CONF_TARGET ? "TARGET" : "ORIGIN",
          h->read_mode == TDM_CONF_READ_DUAL_ASYNC_ON_SECONDARY ? "DUAL_ASYNC_ON_SECONDARY" : "PRIMARY_ONLY",
          h->draining ? "true" : "false");
  tdm_status_json_string(out, h->version ? h->version : "");
  fputs("}}", out);
  return st == TDM_HEALTH_UP ? 200 : 503;
}
