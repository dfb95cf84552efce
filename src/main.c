/* tandem daemon entry point: parse argv, build the instance, run it, map the result to an exit code. */
#include <getopt.h>
#include <tandem/common.h>
#include <tandem/version.h>

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
  int c;
  while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
    case 'k':
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
  fprintf(stderr, "tandem: the proxy is not wired yet\n");
  return 1;
}
