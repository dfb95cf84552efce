/* tdm-bench command line: what to connect to, the protocol, the load shape (connections x in-flight,
 * closed loop or fixed rate, request count or duration), the workload, the processes whose CPU and RSS
 * are sampled around the measured interval, and the output format. */
#ifndef TDM_BENCH_OPTS_H
#define TDM_BENCH_OPTS_H

#include <tandem/common.h>
#include <tandem/proto/compress.h>

#define TDM_BENCH_MAX_PIDS 8
#define TDM_BENCH_MAX_INFLIGHT 32768
#define TDM_BENCH_MAX_VALUE 65536

typedef enum tdm_bench_workload {
  TDM_BENCH_INSERT = 0, /* prepared INSERT (a dual write through tandem) */
  TDM_BENCH_SELECT,     /* prepared SELECT by key (a primary read through tandem) */
  TDM_BENCH_MIX,        /* 50 % of each, chosen per request */
} tdm_bench_workload_t;

typedef struct tdm_bench_pid_s {
  char name[32]; /* label in the output ("proxy", "origin", ...) */
  int pid;       /* process sampled through /proc */
} tdm_bench_pid_t;

typedef struct tdm_bench_opts_s {
  const char *host;              /* --host (numeric IPv4/IPv6) */
  int port;                      /* --port */
  uint8_t protocol;              /* --protocol 3|4|5 */
  tdm_compression_t compression; /* --compression none|lz4|snappy (snappy: v3/v4 only) */
  uint32_t connections;          /* --connections */
  uint32_t inflight;             /* --inflight: requests outstanding per connection (closed loop cap) */
  uint32_t pipeline;             /* --pipeline K: requests go out in groups of K per write (>= 1) */
  uint64_t requests;             /* --requests: total to complete (0: run for duration) */
  double duration;               /* --duration seconds of measured load (when requests == 0) */
  double warmup;                 /* --warmup seconds of load before measuring */
  double rate;                   /* --rate requests/s (0: closed loop) */
  uint32_t threads;              /* --threads: event loops, connections spread over them */
  tdm_bench_workload_t workload; /* --workload */
  const char *keyspace;          /* --keyspace */
  const char *table;             /* --table */
  uint32_t value_size;           /* --value-size bytes of the blob column */
  uint64_t keys;                 /* --keys: key space, keys are drawn uniformly from [0, keys) */
  uint16_t consistency;          /* --consistency (TDM_CL_*) */
  bool setup;                    /* create keyspace and table first (--no-setup turns it off) */
  uint32_t idle;                 /* --idle N: open N idle connections and hold them (memory test) */
  double hold;                   /* --hold seconds to hold idle connections (0: until stdin closes or a signal) */
  const char *user;              /* --user for SASL PLAIN, or NULL */
  const char *password;          /* --password */
  const char *label;             /* --label: the "path" field of the JSON line */
  bool json;                     /* --json: one JSON object on stdout */
  bool quiet;                    /* --quiet: no progress on stderr */
  double drain_timeout;          /* --drain-timeout seconds to wait for outstanding responses at the end */
  double connect_timeout;        /* --connect-timeout seconds for connect + handshake of every connection */
  tdm_bench_pid_t pids[TDM_BENCH_MAX_PIDS]; /* --sample-pid NAME=PID */
  size_t n_pids;                 /* entries in pids */
} tdm_bench_opts_t;

/* Parses argv into *o (defaults first). Returns 0, 1 when --help was printed, or TDM_EINVAL after
 * printing the reason on stderr. */
TDM_MUSTCHECK int tdm_bench_opts_parse(int argc, char **argv, tdm_bench_opts_t *o);
const char *tdm_bench_workload_name(tdm_bench_workload_t w);

#endif
