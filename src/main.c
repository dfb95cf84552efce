/* tandem daemon entry point: parse argv, build the instance, run it, map the result to an exit code.
 * The plug below hands the instance the data-plane and control-plane entry points (core/instance.h). */
#include <getopt.h>
#include <tandem/common.h>
#include <tandem/core/instance.h>
#include <tandem/frontend/client.h>
#include <tandem/route/route.h>
#include <tandem/version.h>

extern char **environ;

/* Data plane and control plane entry points (core/instance.h). */
static const tdm_instance_plug_t plug = {
  TDM_INSTANCE_PLUG_FRONTEND,
  TDM_INSTANCE_PLUG_BACKEND,
  TDM_INSTANCE_PLUG_ROUTE,
  TDM_INSTANCE_PLUG_CONTROL,
};

static void usage(FILE *out)
{
  fprintf(out,
          "Usage: tandem [--config=FILE] [--check] [--version] [--help]\n"
          "Zero-downtime migration proxy for Cassandra-compatible databases.\n\n"
          "  -c, --config=FILE  YAML configuration (ZDM_* and TANDEM_* environment variables override it)\n"
          "      --check        validate the configuration and exit (0 when valid)\n"
          "  -V, --version      print the version and exit\n"
          "  -h, --help         print this help and exit\n\n"
          "Signals: HUP reloads the configuration, TERM/INT drain and exit, USR1 reopens the log file.\n");
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "check", no_argument, NULL, 'k' },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *config = NULL;
  bool check = false;
  int c;
  while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      config = optarg;
      break;
    case 'k':
      check = true;
      break;
    case 'V':
      printf("tandem %s\n", TDM_VERSION);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "tandem: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (check) {
    if (!config) {
      fprintf(stderr, "tandem: --check needs --config=FILE\n");
      return 2;
    }
    return tdm_conf_check_file(config, stdout) == 0 ? 0 : 1;
  }

  tdm_instance_options_t o = { .config_path = config, .envp = environ, .plug = &plug };
  tdm_conf_diag_t diag = { 0 };
  tdm_instance_t *inst = NULL;
  int rc = tdm_instance_new(&o, &inst, &diag);
  if (rc) {
    if (diag.message)
      fprintf(stderr, "tandem: invalid configuration:\n%s\n", diag.message);
    else
      fprintf(stderr, "tandem: cannot start: %s\n", tdm_strerror(rc));
    tdm_conf_diag_free(&diag);
    return TDM_INSTANCE_EXIT_FAIL;
  }
  tdm_conf_diag_free(&diag);
  rc = tdm_instance_run(inst);
  tdm_instance_free(inst);
  return rc == 0 ? TDM_INSTANCE_EXIT_OK : TDM_INSTANCE_EXIT_FAIL;
}
