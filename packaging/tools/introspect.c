/* Packaging helper (not part of the daemon): prints what the packaging files are generated from or
 * checked against, straight from the compiled tables of tandem_core. `keys` writes the configuration key
 * table as tab-separated lines (the source of tandem.yaml(5)); `metrics` writes the Prometheus
 * exposition of a zeroed snapshot (every family the daemon can export, for the dashboard and alert
 * checks). Built and run by packaging/test.sh and packaging/man/gen-tandem-yaml-5.sh. */
#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/obs/metrics.h>

/* Names of tdm_conf_type_t values as the man page shows them; indexed by type. */
static const char *const type_names[TDM_CONF_T_MAX] = {
  [TDM_CONF_T_STR] = "string",        [TDM_CONF_T_BOOL] = "boolean",
  [TDM_CONF_T_INT] = "integer",       [TDM_CONF_T_I64] = "integer",
  [TDM_CONF_T_DOUBLE] = "number",     [TDM_CONF_T_ENUM] = "enum",
  [TDM_CONF_T_VERSION] = "version",   [TDM_CONF_T_VERSIONS] = "versions",
  [TDM_CONF_T_HOSTS] = "hosts",       [TDM_CONF_T_ADDRS] = "addresses",
  [TDM_CONF_T_BUCKETS] = "buckets",
};

/* A field must not contain the separators of the output format; the tables never do, so this only
 * guards against a future help text with a tab or newline (replaced by a space). */
static void put_field(const char *s)
{
  for (; s && *s; s++)
    putchar(*s == '\t' || *s == '\n' ? ' ' : *s);
}

/* One line per key: name, type, default, reload, flags, lo, hi, enums, help. Flags are a comma list of
 * zdm, secret, no_effect ("-" when none); lo and hi are "-" for types without a range; enums lists every
 * accepted spelling, "-" when the key is not an enum. */
static int dump_keys(void)
{
  size_t n = tdm_conf_key_count();
  for (size_t i = 0; i < n; i++) {
    const tdm_conf_key_t *k = tdm_conf_key_at(i);
    if (!k || k->type >= TDM_CONF_T_MAX)
      return 1;
    put_field(k->name);
    putchar('\t');
    put_field(type_names[k->type]);
    putchar('\t');
    put_field(k->defval);
    putchar('\t');
    put_field(tdm_conf_reload_name(k->reload));
    putchar('\t');
    int nflags = 0;
    if (k->flags & TDM_CONF_F_ZDM)
      printf("%szdm", nflags++ ? "," : "");
    if (k->flags & TDM_CONF_F_SECRET)
      printf("%ssecret", nflags++ ? "," : "");
    if (k->flags & TDM_CONF_F_NO_EFFECT)
      printf("%sno_effect", nflags++ ? "," : "");
    if (!nflags)
      putchar('-');
    putchar('\t');
    bool ranged = k->type == TDM_CONF_T_INT || k->type == TDM_CONF_T_I64 || k->type == TDM_CONF_T_DOUBLE;
    if (ranged)
      printf("%lld\t%lld\t", (long long)k->lo, (long long)k->hi);
    else
      printf("-\t-\t");
    if (k->enums) {
      for (const tdm_conf_enum_t *e = k->enums; e->name; e++) {
        if (e != k->enums)
          putchar(',');
        put_field(e->name);
      }
    } else {
      putchar('-');
    }
    putchar('\t');
    put_field(k->help);
    putchar('\n');
  }
  return ferror(stdout) ? 1 : 0;
}

/* Every family with zero values under the default prefix, process collectors included; no node. */
static int dump_metrics(void)
{
  tdm_metrics_process_t process;
  tdm_metrics_input_t in;
  memset(&process, 0, sizeof(process));
  memset(&in, 0, sizeof(in));
  in.process = &process;
  return tdm_metrics_render(stdout, &in) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
  if (argc == 2 && strcmp(argv[1], "keys") == 0)
    return dump_keys();
  if (argc == 2 && strcmp(argv[1], "metrics") == 0)
    return dump_metrics();
  fprintf(stderr, "usage: %s keys|metrics\n", argc > 0 ? argv[0] : "introspect");
  return 2;
}
