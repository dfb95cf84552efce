/* Prometheus text exposition (format 0.0.4) of behaviour.md §13.1: every series under the configured
 * prefix (`zdm` reproduces zdm-proxy's names and labels), histograms in seconds with the configured
 * buckets, and the standard process_* collectors (no prefix) read from /proc/self. Rendering is a pure
 * function of a snapshot the instance assembles on the main loop from the workers' copies of their
 * counters (rule 17), so it can be tested with exact text and never reads another thread's memory. */
#ifndef TANDEM_OBS_METRICS_H
#define TANDEM_OBS_METRICS_H

#include <stdio.h>
#include <tandem/common.h>
#include <tandem/conf/conf.h>
#include <tandem/core/proxy.h>

#define TDM_METRICS_NODE_NAME_MAX 72 /* "host:port" / "[v6]:port" plus the NUL */
#define TDM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* `node` label of series the workers count per cluster rather than per node (requests failed, request
 * durations, failed connections, async in flight): the sum over every node of that cluster. */
#define TDM_METRICS_NODE_ALL "all"

/* Gauges of one backend node, summed over the workers (from tdm_backend_node_stats). */
typedef struct tdm_metrics_node_s {
  char name[TDM_METRICS_NODE_NAME_MAX]; /* `node` label: "host:port" from the topology */
  int cluster;                          /* TDM_CONF_ORIGIN or TDM_CONF_TARGET */
  uint64_t connections;                 /* open connections of the synchronous pools */
  uint64_t inflight;                    /* legs written and not answered */
  uint64_t stream_ids;                  /* stream ids in use on the synchronous pools, orphans included */
  uint64_t async_connections;           /* open connections of the async-read pools ({p}_async_*) */
  uint64_t async_stream_ids;            /* stream ids in use on the async-read pools */
} tdm_metrics_node_t;

/* The standard process collectors, read from /proc/self (Linux). */
typedef struct tdm_metrics_process_s {
  double cpu_seconds;        /* process_cpu_seconds_total: user + system time */
  double resident_bytes;     /* process_resident_memory_bytes */
  double virtual_bytes;      /* process_virtual_memory_bytes */
  double open_fds;           /* process_open_fds */
  double max_fds;            /* process_max_fds: RLIMIT_NOFILE soft limit */
  double start_time_seconds; /* process_start_time_seconds: since the Unix epoch */
} tdm_metrics_process_t;

/* Everything one scrape shows. A zeroed input renders every family with zero values (prefix
 * "tandem", no bucket, no node, no process collectors). */
typedef struct tdm_metrics_input_s {
  const char *prefix;                    /* metrics_prefix; NULL = "tandem" */
  const tdm_conf_doubles_t *buckets[3];  /* bounds in ms: origin, target, async_read (NULL = none) */
  const tdm_proxy_stats_t *stats;        /* summed over workers; NULL = all zero */
  const tdm_metrics_node_t *nodes;       /* per-node gauges, in display order */
  size_t n_nodes;                        /* entries in nodes */
  uint64_t pscache_entries;              /* prepared registry entries now */
  uint64_t pscache_evictions;            /* prepared registry evictions since start */
  uint64_t epoch;                        /* current configuration epoch */
  uint64_t reloads_applied;              /* successful reloads since start */
  uint64_t reloads_rejected;             /* rejected reloads since start */
  uint64_t pending_restart_keys;         /* restart-class keys changed in the file but not applied */
  int primary_cluster;                   /* TDM_CONF_ORIGIN / TDM_CONF_TARGET */
  int read_mode;                         /* tdm_conf_read_mode_t */
  const tdm_metrics_process_t *process;  /* NULL = no process_* series */
} tdm_metrics_input_t;

/* Writes the exposition to out. 0, or TDM_ENOMEM when the stream failed (ferror). */
int tdm_metrics_render(FILE *out, const tdm_metrics_input_t *in);
/* Reads the process collectors of the calling process. 0 or a negative errno-style code. */
int tdm_metrics_process_read(tdm_metrics_process_t *out);
/* Formats a double as Prometheus does: shortest text that reads back to the same value ("0.001",
 * "2.5", "15", "+Inf", "NaN"). Returns the length (like snprintf). */
int tdm_metrics_format_double(char *buf, size_t cap, double v);

#endif
