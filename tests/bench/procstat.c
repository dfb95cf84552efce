/* /proc sampling. /proc/PID/stat fields 14 and 15 (utime, stime) count every thread of the process,
 * including threads that already exited, at clock-tick resolution (10 ms); schedstat is finer but only
 * covers live threads, so it is reported alongside, never instead. */
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "procstat.h"

static int read_file(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  if (!f) return TDM_ENOTFOUND;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n ? 0 : TDM_ENOTFOUND;
}

static int stat_ticks(int pid, uint64_t *ticks)
{
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  if (read_file(path, buf, sizeof(buf))) return TDM_ENOTFOUND;
  /* the command name (field 2) is in parentheses and may hold spaces: count fields after the last ')' */
  char *p = strrchr(buf, ')');
  if (!p) return TDM_ENOTFOUND;
  p++;
  unsigned long long utime = 0, stime = 0;
  /* after ')': field 3 (state) ... field 14 utime, field 15 stime */
  for (int field = 3; field <= 15 && *p; field++) {
    while (*p == ' ') p++;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (field == 14) utime = v;
    if (field == 15) stime = v;
    while (*p && *p != ' ') p++;
  }
  *ticks = utime + stime;
  return 0;
}

static uint64_t status_kib(const char *status, const char *key)
{
  const char *p = strstr(status, key);
  if (!p) return 0;
  p += strlen(key);
  return strtoull(p, NULL, 10);
}

static uint64_t schedstat_ns(int pid)
{
  char path[96], buf[256];
  snprintf(path, sizeof(path), "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  uint64_t sum = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
    if (read_file(path, buf, sizeof(buf)) == 0) sum += strtoull(buf, NULL, 10);
  }
  closedir(d);
  return sum;
}

int tdm_bench_proc_sample(int pid, tdm_bench_proc_sample_t *out)
{
  char path[64], buf[8192];
  memset(out, 0, sizeof(*out));
  if (stat_ticks(pid, &out->cpu_ticks)) return TDM_ENOTFOUND;
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  if (read_file(path, buf, sizeof(buf))) return TDM_ENOTFOUND;
  out->rss_kib = status_kib(buf, "VmRSS:");
  out->hwm_kib = status_kib(buf, "VmHWM:");
  out->cpu_ns = schedstat_ns(pid);
  return 0;
}

double tdm_bench_proc_cpu_seconds(const tdm_bench_proc_sample_t *a, const tdm_bench_proc_sample_t *b)
{
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return b->cpu_ticks >= a->cpu_ticks ? (double)(b->cpu_ticks - a->cpu_ticks) / (double)hz : 0.0;
}

double tdm_bench_self_cpu_seconds(void)
{
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru)) return 0.0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}
