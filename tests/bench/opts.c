/* tdm-bench argument parsing and validation: every number is range-checked here so the load code can
 * rely on connections >= 1, 1 <= pipeline <= inflight <= 32768 and a finite run (count or duration). */
#include <errno.h>
#include <getopt.h>
#include <math.h>

#include <tandem/proto/opcodes.h>

#include "opts.h"

static void usage(FILE *out)
{
  fprintf(out,
          "Usage: tdm-bench [options]\n"
          "CQL load generator on tandem's own codec (closed loop or fixed rate), for any CQL endpoint.\n\n"
          "  --host ADDR            numeric address (default 127.0.0.1)\n"
          "  --port N               CQL port (default 9042)\n"
          "  --protocol 3|4|5       native protocol version (default 4)\n"
          "  --compression ALG      none (default), lz4, snappy (v3/v4 only); v5: lz4 segments\n"
          "  --connections N        client connections (default 16)\n"
          "  --inflight M           requests outstanding per connection, closed loop (default 4)\n"
          "  --pipeline K           send requests in groups of K per write syscall (default 1)\n"
          "  --requests N           complete N measured requests, or\n"
          "  --duration S           measure for S seconds (default 10)\n"
          "  --warmup S             unmeasured load before measuring (default 1)\n"
          "  --rate R               open loop: R requests/s scheduled at fixed intervals; latency counts\n"
          "                         from the scheduled time (no coordinated omission)\n"
          "  --threads T            client event loops (default 1)\n"
          "  --workload W           insert | select | mix (default insert)\n"
          "  --keyspace KS          (default tandem_bench)   --table T (default kv)\n"
          "  --value-size B         blob bytes per row (default 64)\n"
          "  --keys N               key space (default 100000)\n"
          "  --consistency CL       ONE (default), LOCAL_ONE, QUORUM, LOCAL_QUORUM, ALL, ANY\n"
          "  --no-setup             do not CREATE the keyspace and table (errors are ignored anyway)\n"
          "  --idle N               open N connections, hold them idle (memory test); prints\n"
          "                         'tdm-bench idle ready N' when all are up\n"
          "  --hold S               idle hold time (default: until stdin closes or SIGTERM/SIGINT)\n"
          "  --user U --password P  SASL PLAIN credentials\n"
          "  --sample-pid NAME=PID  report CPU time per request and RSS of PID over the measured\n"
          "                         interval (repeatable)\n"
          "  --label L              'path' field of the JSON line (default direct)\n"
          "  --json                 print one JSON object on stdout\n"
          "  --drain-timeout S      wait for outstanding responses at the end (default 10)\n"
          "  --connect-timeout S    connect + handshake of every connection (default 60)\n"
          "  --quiet                no progress lines on stderr\n");
}

static int parse_u64(const char *name, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
    fprintf(stderr, "tdm-bench: --%s wants an integer in [%llu, %llu], got '%s'\n", name, (unsigned long long)lo,
            (unsigned long long)hi, s);
    return TDM_EINVAL;
  }
  *out = v;
  return 0;
}

static int parse_u32(const char *name, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
  uint64_t v;
  int rc = parse_u64(name, s, lo, hi, &v);
  if (rc == 0) *out = (uint32_t)v;
  return rc;
}

static int parse_seconds(const char *name, const char *s, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e7) {
    fprintf(stderr, "tdm-bench: --%s wants a non-negative number, got '%s'\n", name, s);
    return TDM_EINVAL;
  }
  *out = v;
  return 0;
}

static int parse_consistency(const char *s, uint16_t *out)
{
  static const struct { const char *name; uint16_t cl; } t[] = {
    { "ANY", TDM_CL_ANY },       { "ONE", TDM_CL_ONE },           { "TWO", TDM_CL_TWO },
    { "QUORUM", TDM_CL_QUORUM }, { "ALL", TDM_CL_ALL },           { "LOCAL_QUORUM", TDM_CL_LOCAL_QUORUM },
    { "LOCAL_ONE", TDM_CL_LOCAL_ONE },
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(t); i++) {
    if (strcasecmp(s, t[i].name) == 0) {
      *out = t[i].cl;
      return 0;
    }
  }
  fprintf(stderr, "tdm-bench: unknown consistency '%s'\n", s);
  return TDM_EINVAL;
}

static int parse_pid(const char *s, tdm_bench_opts_t *o)
{
  const char *eq = strchr(s, '=');
  if (!eq || eq == s || (size_t)(eq - s) >= sizeof(o->pids[0].name) || o->n_pids == TDM_BENCH_MAX_PIDS) {
    fprintf(stderr, "tdm-bench: --sample-pid wants NAME=PID (at most %d), got '%s'\n", TDM_BENCH_MAX_PIDS, s);
    return TDM_EINVAL;
  }
  uint64_t pid;
  if (parse_u64("sample-pid", eq + 1, 1, 0x7fffffff, &pid)) return TDM_EINVAL;
  tdm_bench_pid_t *p = &o->pids[o->n_pids++];
  memcpy(p->name, s, (size_t)(eq - s));
  p->name[eq - s] = '\0';
  p->pid = (int)pid;
  return 0;
}

const char *tdm_bench_workload_name(tdm_bench_workload_t w)
{
  switch (w) {
  case TDM_BENCH_INSERT: return "insert";
  case TDM_BENCH_SELECT: return "select";
  case TDM_BENCH_MIX: return "mix";
  }
  return "?";
}

int tdm_bench_opts_parse(int argc, char **argv, tdm_bench_opts_t *o)
{
  enum { O_HOST = 256, O_PORT, O_PROTO, O_COMP, O_CONNS, O_INFLIGHT, O_PIPE, O_REQS, O_DUR, O_WARM, O_RATE,
         O_THREADS, O_WORK, O_KS, O_TABLE, O_VSIZE, O_KEYS, O_CL, O_NOSETUP, O_IDLE, O_HOLD, O_USER, O_PASS,
         O_PID, O_LABEL, O_JSON, O_DRAIN, O_CONNTO, O_QUIET, O_HELP };
  static const struct option lo[] = {
    { "host", required_argument, NULL, O_HOST },         { "port", required_argument, NULL, O_PORT },
    { "protocol", required_argument, NULL, O_PROTO },    { "compression", required_argument, NULL, O_COMP },
    { "connections", required_argument, NULL, O_CONNS }, { "inflight", required_argument, NULL, O_INFLIGHT },
    { "pipeline", required_argument, NULL, O_PIPE },     { "requests", required_argument, NULL, O_REQS },
    { "duration", required_argument, NULL, O_DUR },      { "warmup", required_argument, NULL, O_WARM },
    { "rate", required_argument, NULL, O_RATE },         { "threads", required_argument, NULL, O_THREADS },
    { "workload", required_argument, NULL, O_WORK },     { "keyspace", required_argument, NULL, O_KS },
    { "table", required_argument, NULL, O_TABLE },       { "value-size", required_argument, NULL, O_VSIZE },
    { "keys", required_argument, NULL, O_KEYS },         { "consistency", required_argument, NULL, O_CL },
    { "no-setup", no_argument, NULL, O_NOSETUP },        { "idle", required_argument, NULL, O_IDLE },
    { "hold", required_argument, NULL, O_HOLD },         { "user", required_argument, NULL, O_USER },
    { "password", required_argument, NULL, O_PASS },     { "sample-pid", required_argument, NULL, O_PID },
    { "label", required_argument, NULL, O_LABEL },       { "json", no_argument, NULL, O_JSON },
    { "drain-timeout", required_argument, NULL, O_DRAIN }, { "quiet", no_argument, NULL, O_QUIET },
    { "connect-timeout", required_argument, NULL, O_CONNTO },
    { "help", no_argument, NULL, O_HELP },               { NULL, 0, NULL, 0 },
  };
  *o = (tdm_bench_opts_t){ .host = "127.0.0.1", .port = 9042, .protocol = TDM_PROTO_V4, .connections = 16,
                           .inflight = 4, .pipeline = 1, .duration = 10, .warmup = 1, .threads = 1,
                           .keyspace = "tandem_bench", .table = "kv", .value_size = 64, .keys = 100000,
                           .consistency = TDM_CL_ONE, .setup = true, .label = "direct", .drain_timeout = 10,
                           .connect_timeout = 60 };
  int c, rc = 0;
  uint32_t u32 = 0;
  optind = 1;
  while (rc == 0 && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
    case O_HOST: o->host = optarg; break;
    case O_PORT: rc = parse_u32("port", optarg, 1, 65535, &u32); o->port = (int)u32; break;
    case O_PROTO:
      rc = parse_u32("protocol", optarg, 3, 5, &u32);
      o->protocol = (uint8_t)u32;
      break;
    case O_COMP:
      if (strcasecmp(optarg, "none") == 0) o->compression = TDM_COMPRESSION_NONE;
      else if (tdm_compression_parse(tdm_str_from(optarg), &o->compression)) {
        fprintf(stderr, "tdm-bench: unknown compression '%s'\n", optarg);
        rc = TDM_EINVAL;
      }
      break;
    case O_CONNS: rc = parse_u32("connections", optarg, 1, 100000, &o->connections); break;
    case O_INFLIGHT: rc = parse_u32("inflight", optarg, 1, TDM_BENCH_MAX_INFLIGHT, &o->inflight); break;
    case O_PIPE: rc = parse_u32("pipeline", optarg, 1, TDM_BENCH_MAX_INFLIGHT, &o->pipeline); break;
    case O_REQS: rc = parse_u64("requests", optarg, 1, UINT64_MAX / 2, &o->requests); break;
    case O_DUR: rc = parse_seconds("duration", optarg, &o->duration); break;
    case O_WARM: rc = parse_seconds("warmup", optarg, &o->warmup); break;
    case O_RATE: rc = parse_seconds("rate", optarg, &o->rate); break;
    case O_THREADS: rc = parse_u32("threads", optarg, 1, 64, &o->threads); break;
    case O_WORK:
      if (strcmp(optarg, "insert") == 0) o->workload = TDM_BENCH_INSERT;
      else if (strcmp(optarg, "select") == 0) o->workload = TDM_BENCH_SELECT;
      else if (strcmp(optarg, "mix") == 0) o->workload = TDM_BENCH_MIX;
      else {
        fprintf(stderr, "tdm-bench: unknown workload '%s' (insert, select, mix)\n", optarg);
        rc = TDM_EINVAL;
      }
      break;
    case O_KS: o->keyspace = optarg; break;
    case O_TABLE: o->table = optarg; break;
    case O_VSIZE: rc = parse_u32("value-size", optarg, 0, TDM_BENCH_MAX_VALUE, &o->value_size); break;
    case O_KEYS: rc = parse_u64("keys", optarg, 1, UINT64_MAX / 2, &o->keys); break;
    case O_CL: rc = parse_consistency(optarg, &o->consistency); break;
    case O_NOSETUP: o->setup = false; break;
    case O_IDLE: rc = parse_u32("idle", optarg, 1, 1000000, &o->idle); break;
    case O_HOLD: rc = parse_seconds("hold", optarg, &o->hold); break;
    case O_USER: o->user = optarg; break;
    case O_PASS: o->password = optarg; break;
    case O_PID: rc = parse_pid(optarg, o); break;
    case O_LABEL: o->label = optarg; break;
    case O_JSON: o->json = true; break;
    case O_DRAIN: rc = parse_seconds("drain-timeout", optarg, &o->drain_timeout); break;
    case O_CONNTO: rc = parse_seconds("connect-timeout", optarg, &o->connect_timeout); break;
    case O_QUIET: o->quiet = true; break;
    case O_HELP:
    case 'h': usage(stdout); return 1;
    default: usage(stderr); return TDM_EINVAL;
    }
  }
  if (rc) return rc;
  if (optind < argc) {
    fprintf(stderr, "tdm-bench: unexpected argument '%s'\n", argv[optind]);
    return TDM_EINVAL;
  }
  if (o->pipeline > o->inflight) {
    fprintf(stderr, "tdm-bench: --pipeline %u exceeds --inflight %u\n", o->pipeline, o->inflight);
    return TDM_EINVAL;
  }
  if (o->compression == TDM_COMPRESSION_SNAPPY && o->protocol == TDM_PROTO_V5) {
    fprintf(stderr, "tdm-bench: snappy is not supported with protocol v5\n");
    return TDM_EINVAL;
  }
  if (o->requests == 0 && o->duration <= 0 && o->idle == 0) {
    fprintf(stderr, "tdm-bench: give --requests or a positive --duration\n");
    return TDM_EINVAL;
  }
  if ((o->user == NULL) != (o->password == NULL)) {
    fprintf(stderr, "tdm-bench: --user and --password go together\n");
    return TDM_EINVAL;
  }
  if (o->threads > o->connections && o->idle == 0) o->threads = o->connections;
  return 0;
}
