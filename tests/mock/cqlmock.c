/* cqlmock entry point: parse argv, build the cluster (nodes, control interface, script), print the
 * ready line, run the loop until SIGTERM/SIGINT or SHUTDOWN, then close every handle and free
 * everything so the process exits clean under ASan. Also the instance-wide helpers of mock.h. */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>

#include "conn.h"
#include "control.h"
#include "fast.h"
#include "mock.h"
#include "values.h"

void tdm_mock_log(const tdm_mock_t *mock, const char *fmt, ...)
{
  if (mock && mock->opts.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("cqlmock: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int tdm_mock_parse_addr(const char *s, struct sockaddr_storage *ss, char *host, size_t cap, uint16_t *port)
{
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s) return TDM_EINVAL;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (h[0] == '[') {
    if (hl < 2 || h[hl - 1] != ']') return TDM_EINVAL;
    h++;
    hl -= 2;
  }
  if (hl >= cap) return TDM_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p < 0 || p > 65535 || end == colon + 1) return TDM_EINVAL;
  *port = (uint16_t)p;
  memset(ss, 0, sizeof(*ss));
  if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) == 0) return 0;
  return TDM_EINVAL;
}

uint16_t tdm_mock_bound_port(const uv_tcp_t *h)
{
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len)) return 0;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
}

int tdm_mock_node_find(const tdm_mock_t *mock, tdm_str_t spec)
{
  if (tdm_str_eq(spec, TDM_STR("*")) || tdm_str_eq_ci(spec, TDM_STR("all"))) return -1;
  int64_t idx;
  if (spec.len < 4 && tdm_mock_parse_int(spec, &idx) == 0)
    return idx >= 0 && (size_t)idx < mock->n_nodes ? (int)idx : TDM_ENOTFOUND;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    if (tdm_str_eq_cstr(spec, mock->nodes[i].name) || tdm_str_eq_cstr(spec, mock->nodes[i].host)) return (int)i;
  }
  return TDM_ENOTFOUND;
}

const uint8_t *tdm_mock_schema_bump(tdm_mock_t *mock)
{
  char seed[128];
  int n = snprintf(seed, sizeof(seed), "%s/schema/%" PRIu64, mock->opts.cluster_name, mock->schema_changes++);
  tdm_mock_md5(seed, (size_t)n, mock->schema_version);
  mock->schema_version[6] = (uint8_t)((mock->schema_version[6] & 0x0f) | 0x30); /* version 3 (md5) */
  mock->schema_version[8] = (uint8_t)((mock->schema_version[8] & 0x3f) | 0x80);
  return mock->schema_version;
}

static void on_signal_closed(uv_handle_t *h) { (void)h; }

void tdm_mock_shutdown(tdm_mock_t *mock)
{
  if (mock->stopping) return;
  mock->stopping = true;
  for (size_t i = 0; i < mock->n_nodes; i++) tdm_mock_node_stop(&mock->nodes[i], true);
  tdm_mock_control_stop(mock);
  tdm_mock_conn_flush_all(mock); /* drops the flush references of connections now closing */
  uv_close((uv_handle_t *)&mock->sig_term, on_signal_closed);
  uv_close((uv_handle_t *)&mock->sig_int, on_signal_closed);
  uv_close((uv_handle_t *)&mock->flush_check, on_signal_closed);
}

static void on_signal(uv_signal_t *s, int signum) { tdm_mock_shutdown(s->data); }

static void on_check(uv_check_t *h) { tdm_mock_conn_flush_all(h->data); }

/* ---- options ---- */

static void usage(FILE *out)
{
  fprintf(out,
          "Usage: cqlmock --node HOST:PORT [--node HOST:PORT ...] [options]\n"
          "Scriptable mock CQL cluster for tandem's tests and benchmarks (one process = one cluster).\n\n"
          "  --node HOST:PORT        a node (repeat; port 0 picks a free port, see the ready line)\n"
          "  --control HOST:PORT     control interface (line protocol, see tests/mock/README.md)\n"
          "  --cluster-name NAME     cluster_name (default mock)\n"
          "  --dc NAME, --rack NAME  data_center (dc1) and rack (rack1) of every node\n"
          "  --auth USER:PASS        require SASL PLAIN; repeat for more users\n"
          "  --auth-class CLASS      authenticator class (default org.apache.cassandra.auth.PasswordAuthenticator)\n"
          "  --protocols LIST        versions served, e.g. 3,4,5,dse_v1,dse_v2 (default 3,4,5)\n"
          "  --compression LIST      lz4,snappy (default) or none\n"
          "  --release-version V     release_version (default 5.0.8)\n"
          "  --cql-version V         CQL_VERSION (default 3.4.7)\n"
          "  --script FILE           control commands run before the ready line ('#' comments)\n"
          "  --fast                  pre-encoded replies for benchmarks (no key/value store)\n"
          "  --no-store              no key/value store\n"
          "  --no-peers-v2           system.peers_v2 is refused, as on Cassandra 3.x\n"
          "  --quiet                 no diagnostics on stderr\n\n"
          "Prints 'cqlmock ready control=HOST:PORT nodes=HOST:PORT,...' once listening; SIGTERM/SIGINT exit 0.\n");
}

static int parse_versions(const char *s, tdm_mock_opts_t *o)
{
  char buf[128];
  snprintf(buf, sizeof(buf), "%s", s);
  o->n_versions = 0;
  for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    uint8_t v;
    if (strcasecmp(tok, "dse_v1") == 0 || strcasecmp(tok, "dsev1") == 0 || strcmp(tok, "65") == 0)
      v = TDM_PROTO_DSE_V1;
    else if (strcasecmp(tok, "dse_v2") == 0 || strcasecmp(tok, "dsev2") == 0 || strcmp(tok, "66") == 0)
      v = TDM_PROTO_DSE_V2;
    else if (strcmp(tok, "3") == 0 || strcasecmp(tok, "v3") == 0) v = TDM_PROTO_V3;
    else if (strcmp(tok, "4") == 0 || strcasecmp(tok, "v4") == 0) v = TDM_PROTO_V4;
    else if (strcmp(tok, "5") == 0 || strcasecmp(tok, "v5") == 0) v = TDM_PROTO_V5;
    else return TDM_EINVAL;
    if (o->n_versions == TDM_MOCK_MAX_VERSIONS) return TDM_EINVAL;
    o->versions[o->n_versions++] = v;
  }
  /* ascending (DSE numbers sort last, as in Cassandra's list format) */
  for (size_t i = 1; i < o->n_versions; i++)
    for (size_t j = i; j > 0 && o->versions[j - 1] > o->versions[j]; j--) {
      uint8_t t = o->versions[j];
      o->versions[j] = o->versions[j - 1];
      o->versions[j - 1] = t;
    }
  return o->n_versions ? 0 : TDM_EINVAL;
}

static int parse_compression(const char *s, tdm_mock_opts_t *o)
{
  char buf[64];
  snprintf(buf, sizeof(buf), "%s", s);
  o->lz4 = o->snappy = false;
  for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (strcasecmp(tok, "lz4") == 0) o->lz4 = true;
    else if (strcasecmp(tok, "snappy") == 0) o->snappy = true;
    else if (strcasecmp(tok, "none") != 0) return TDM_EINVAL;
  }
  return 0;
}

static int parse_args(int argc, char **argv, tdm_mock_opts_t *o)
{
  enum { O_NODE = 256, O_CONTROL, O_CLUSTER, O_DC, O_RACK, O_AUTH, O_AUTH_CLASS, O_PROTOCOLS, O_COMPRESSION,
         O_RELEASE, O_CQL, O_SCRIPT, O_FAST, O_NO_STORE, O_NO_PEERS_V2, O_QUIET, O_HELP };
  static const struct option opts[] = {
    { "node", required_argument, NULL, O_NODE },         { "control", required_argument, NULL, O_CONTROL },
    { "cluster-name", required_argument, NULL, O_CLUSTER }, { "dc", required_argument, NULL, O_DC },
    { "rack", required_argument, NULL, O_RACK },         { "auth", required_argument, NULL, O_AUTH },
    { "auth-class", required_argument, NULL, O_AUTH_CLASS }, { "protocols", required_argument, NULL, O_PROTOCOLS },
    { "compression", required_argument, NULL, O_COMPRESSION },
    { "release-version", required_argument, NULL, O_RELEASE }, { "cql-version", required_argument, NULL, O_CQL },
    { "script", required_argument, NULL, O_SCRIPT },     { "fast", no_argument, NULL, O_FAST },
    { "no-store", no_argument, NULL, O_NO_STORE },       { "no-peers-v2", no_argument, NULL, O_NO_PEERS_V2 },
    { "quiet", no_argument, NULL, O_QUIET },             { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
  };
  *o = (tdm_mock_opts_t){ .cluster_name = "mock", .dc = "dc1", .rack = "rack1", .release_version = "5.0.8",
                          .cql_version = "3.4.7", .versions = { 3, 4, 5 }, .n_versions = 3, .lz4 = true,
                          .snappy = true, .store = true };
  const char *auth_class = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_NODE:
      if (o->n_nodes == TDM_MOCK_MAX_NODES) return fprintf(stderr, "cqlmock: too many nodes\n"), 2;
      o->nodes[o->n_nodes++] = optarg;
      break;
    case O_CONTROL: o->control = optarg; break;
    case O_CLUSTER: o->cluster_name = optarg; break;
    case O_DC: o->dc = optarg; break;
    case O_RACK: o->rack = optarg; break;
    case O_AUTH: {
      const char *colon = strchr(optarg, ':');
      if (!colon || o->n_creds == TDM_MOCK_MAX_CREDS || (size_t)(colon - optarg) >= TDM_MOCK_NAME_MAX ||
          strlen(colon + 1) >= TDM_MOCK_NAME_MAX)
        return fprintf(stderr, "cqlmock: bad --auth '%s' (USER:PASS)\n", optarg), 2;
      tdm_mock_cred_t *cr = &o->creds[o->n_creds++];
      snprintf(cr->user, sizeof(cr->user), "%.*s", (int)(colon - optarg), optarg);
      snprintf(cr->pass, sizeof(cr->pass), "%s", colon + 1);
      break;
    }
    case O_AUTH_CLASS: auth_class = optarg; break;
    case O_PROTOCOLS:
      if (parse_versions(optarg, o)) return fprintf(stderr, "cqlmock: bad --protocols '%s'\n", optarg), 2;
      break;
    case O_COMPRESSION:
      if (parse_compression(optarg, o)) return fprintf(stderr, "cqlmock: bad --compression '%s'\n", optarg), 2;
      break;
    case O_RELEASE: o->release_version = optarg; break;
    case O_CQL: o->cql_version = optarg; break;
    case O_SCRIPT: o->script = optarg; break;
    case O_FAST: o->fast = true; break;
    case O_NO_STORE: o->store = false; break;
    case O_NO_PEERS_V2: o->no_peers_v2 = true; break;
    case O_QUIET: o->quiet = true; break;
    case O_HELP: case 'h': usage(stdout); return 1;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) return fprintf(stderr, "cqlmock: unexpected argument '%s'\n", argv[optind]), 2;
  if (o->n_nodes == 0) return fprintf(stderr, "cqlmock: at least one --node is required\n"), 2;
  if (o->fast) o->store = false;
  if (o->n_creds || auth_class)
    o->auth_class = auth_class ? auth_class : "org.apache.cassandra.auth.PasswordAuthenticator";
  return 0;
}

/* Runs every command of the script; the first ERR aborts start-up. */
static int run_script(tdm_mock_t *mock, const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f) return fprintf(stderr, "cqlmock: cannot open script %s\n", path), TDM_EINVAL;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int lineno = 0, rc = 0;
  while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    size_t i = 0;
    while (i < (size_t)n && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == (size_t)n || line[i] == '#' || line[i] == '\n' || line[i] == '\r') continue;
    tdm_writer_t w;
    tdm_writer_init(&w);
    if (tdm_mock_control_exec(mock, line + i, (size_t)n - i, &w)) {
      fprintf(stderr, "cqlmock: %s:%d: %.*s\n", path, lineno, (int)w.len, w.buf ? (const char *)w.buf : "");
      rc = TDM_EINVAL;
    }
    tdm_writer_free(&w);
  }
  free(line);
  fclose(f);
  return rc;
}

/* Order matters to clients that wait for a node port rather than the ready line: the control port and
 * the script's rules are in place before any node accepts a connection. */
static int start(tdm_mock_t *mock)
{
  int rc;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    if ((rc = tdm_mock_node_init(mock, i, mock->opts.nodes[i])))
      return fprintf(stderr, "cqlmock: bad --node '%s'\n", mock->opts.nodes[i]), rc;
  }
  if (mock->opts.control && (rc = tdm_mock_control_start(mock, mock->opts.control)))
    return fprintf(stderr, "cqlmock: cannot listen on control %s: %s\n", mock->opts.control, tdm_strerror(rc)), rc;
  if (mock->opts.script && (rc = run_script(mock, mock->opts.script))) return rc;
  for (size_t i = 0; i < mock->n_nodes; i++) {
    if ((rc = tdm_mock_node_start(&mock->nodes[i])))
      return fprintf(stderr, "cqlmock: cannot listen on %s: %s\n", mock->nodes[i].name, tdm_strerror(rc)), rc;
  }
  printf("cqlmock ready control=%s nodes=", mock->control ? mock->control_name : "-");
  for (size_t i = 0; i < mock->n_nodes; i++) printf("%s%s", i ? "," : "", mock->nodes[i].name);
  printf("\n");
  fflush(stdout);
  return 0;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL); /* only reached after a failed start */
}

int main(int argc, char **argv)
{
  tdm_mock_t *mock = calloc(1, sizeof(*mock));
  if (!mock) return 1;
  int rc = parse_args(argc, argv, &mock->opts);
  if (rc) {
    free(mock);
    return rc == 1 ? 0 : rc;
  }
  signal(SIGPIPE, SIG_IGN);
  mock->n_nodes = mock->opts.n_nodes;
  mock->next_conn_id = 1;
  mock->gossip_generation = (int32_t)time(NULL);
  tdm_mock_list_init(&mock->control_clients);
  tdm_mock_rules_init(&mock->rules);
  tdm_mock_schema_bump(mock);
  uv_loop_init(&mock->loop);
  uv_check_init(&mock->loop, &mock->flush_check);
  mock->flush_check.data = mock;
  uv_check_start(&mock->flush_check, on_check);
  uv_signal_init(&mock->loop, &mock->sig_term);
  uv_signal_init(&mock->loop, &mock->sig_int);
  mock->sig_term.data = mock->sig_int.data = mock;
  uv_signal_start(&mock->sig_term, on_signal, SIGTERM);
  uv_signal_start(&mock->sig_int, on_signal, SIGINT);
  int exit_code = 0;
  if (start(mock)) {
    exit_code = 1;
    tdm_mock_shutdown(mock);
  }
  if (mock->shutdown_requested) tdm_mock_shutdown(mock);
  uv_run(&mock->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&mock->loop) == UV_EBUSY) {
    uv_walk(&mock->loop, on_walk_close, NULL);
    uv_run(&mock->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&mock->loop)) exit_code = 1;
  }
  for (size_t i = 0; i < mock->n_nodes; i++) tdm_mock_node_free(&mock->nodes[i]);
  tdm_mock_rules_clear(&mock->rules);
  tdm_mock_stats_reset(&mock->stats);
  tdm_mock_store_clear(&mock->store);
  tdm_mock_prepared_clear(&mock->texts);
  tdm_mock_fast_free(mock);
  free(mock);
  return exit_code;
}
