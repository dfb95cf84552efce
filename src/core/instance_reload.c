/* Configuration reload (behaviour.md §1.4), for SIGHUP and POST /api/v1/reload alike.
 *
 *   IDLE ──request──► SCHEDULED (zero timer: every request until it fires joins this reload)
 *   SCHEDULED ──timer──► RUNNING: parse file + environment snapshot, validate; keep restart-class
 *        values; build every TLS context it asks for (re-reading the files; any failure rejects the
 *        reload and the old contexts stay); publish epoch N+1 (the TLS contexts, then CONF_SWAP, to
 *        every worker; the control connections get theirs), then wait for each worker's ack
 *   RUNNING ──acks (or rejection)──► IDLE, or SCHEDULED again when requests arrived while RUNNING:
 *        however many arrived, exactly one more reload runs.
 *
 * Restart-class keys: the new snapshot carries the OLD values. It is built by loading a second time
 * with the running values of the changed restart-class keys forced through TANDEM_<KEY> overrides (the
 * highest precedence), so every worker reads one snapshot with consistent values and no module needs
 * to know which snapshot is the boot one. The file's wishes are reported (WARN) and listed in
 * `pending_restart` until a restart (or a file that agrees again) clears them. */
#include <errno.h>
#include <unistd.h>
#include <tandem/obs/log.h>
#include <tandem/obs/notify.h>
#include <tandem/util/time.h>
#include "instance_internal.h"

void tdm_instance_reload(tdm_instance_t *inst)
{
  tdm__instance_reload_request(inst, NULL, NULL);
}

static char *dup_text(const char *s)
{
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d)
    memcpy(d, s, n + 1);
  return d;
}

/* ---- building the next snapshot ---- */

typedef struct restart_diff_s {
  const tdm_conf_key_t *keys[TDM_CONF_KEY_MAX]; /* changed restart-class keys */
  size_t n;                                     /* entries */
} restart_diff_t;

static void collect_restart(const tdm_conf_key_t *key, const char *old_text, const char *new_text, void *arg)
{
  restart_diff_t *d = arg;
  if (key->reload != TDM_CONF_RESTART || d->n >= TDM_CONF_KEY_MAX)
    return;
  d->keys[d->n++] = key;
  tdm_log_warn(NULL, "reload: '%s' changed (%s→%s) but takes effect only at a restart; %s is kept", key->name,
               old_text, new_text, old_text[0] ? old_text : "\"\"");
}

/* "TANDEM_<KEY>=<running value>" (malloc'd). */
static char *override_var(const tdm_conf_t *cur, const tdm_conf_key_t *key)
{
  size_t cap = 256;
  for (;;) {
    char *v = malloc(cap);
    if (!v)
      return NULL;
    int o = snprintf(v, cap, "TANDEM_");
    for (const char *p = key->name; *p && (size_t)o + 2 < cap; p++)
      v[o++] = (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
    v[o++] = '=';
    int rc = tdm_conf_render(cur, key, v + o, cap - (size_t)o);
    if (rc == 0)
      return v;
    free(v);
    if (rc != TDM_EOVERFLOW || cap > (1u << 20))
      return NULL;
    cap *= 4;
  }
}

/* Loads again with the changed restart-class keys forced to their running values. */
static int load_keeping(tdm_instance_t *inst, const restart_diff_t *rd, tdm_conf_t **out, char **err)
{
  size_t nenv = 0;
  while (inst->envp[nenv])
    nenv++;
  char **env = calloc(nenv + rd->n + 1, sizeof(*env));
  int rc = TDM_ENOMEM;
  if (!env)
    goto done;
  memcpy(env, inst->envp, nenv * sizeof(*env));
  for (size_t i = 0; i < rd->n; i++) {
    if (rd->keys[i]->flags & TDM_CONF_F_SECRET) { /* rendered as *** : cannot be carried over */
      *err = dup_text("a secret restart-class key changed; restart tandem to apply it");
      rc = TDM_ECONF;
      goto done;
    }
    if (!(env[nenv + i] = override_var(inst->conf, rd->keys[i])))
      goto done;
  }
  tdm_conf_diag_t d = { 0 };
  rc = tdm_conf_load(inst->config_path, env, out, &d);
  if (rc)
    *err = dup_text(d.message ? d.message : tdm_strerror(rc));
  tdm_conf_diag_free(&d);
done:
  for (size_t i = 0; env && i < rd->n; i++)
    free(env[nenv + i]);
  free(env);
  if (rc == TDM_ENOMEM && !*err)
    *err = dup_text("out of memory");
  return rc;
}

/* TLS material and the admin token are read by new connections / requests: a file that cannot be
 * read rejects the reload instead of failing later (§1.4 (4)). */
static int check_files(const tdm_conf_t *c, char **err)
{
  static const char *const keys[] = {
    "proxy_tls_ca_path",          "proxy_tls_cert_path",          "proxy_tls_key_path",
    "origin_tls_server_ca_path",  "origin_tls_client_cert_path",  "origin_tls_client_key_path",
    "target_tls_server_ca_path",  "target_tls_client_cert_path",  "target_tls_client_key_path",
    "admin_token_file",
  };
  for (size_t i = 0; i < TDM_ARRAY_SIZE(keys); i++) {
    char path[4096];
    if (tdm_conf_render_value(c, keys[i], path, sizeof(path)) != 0 || !path[0])
      continue;
    if (access(path, R_OK) != 0) {
      char msg[4300];
      snprintf(msg, sizeof(msg), "'%s': cannot read '%s': %s", keys[i], path, strerror(errno));
      *err = dup_text(msg);
      return TDM_ECONF;
    }
  }
  return 0;
}

static int build(tdm_instance_t *inst, tdm_conf_t **out, char **err, restart_diff_t *rd)
{
  tdm_conf_diag_t d = { 0 };
  tdm_conf_t *fresh = NULL, *final = NULL;
  int rc = tdm_conf_load(inst->config_path, inst->envp, &fresh, &d);
  if (rc) {
    *err = dup_text(d.message ? d.message : tdm_strerror(rc));
    tdm_conf_diag_free(&d);
    return rc;
  }
  for (size_t i = 0; i < d.nwarnings; i++)
    tdm_log_warn(NULL, "configuration: %s", d.warnings[i]);
  tdm_conf_diag_free(&d);
  rd->n = 0;
  if ((rc = tdm_conf_diff(inst->conf, fresh, collect_restart, rd)) < 0)
    goto fail;
  if (rd->n == 0) {
    final = fresh;
    fresh = NULL;
  } else {
    if ((rc = load_keeping(inst, rd, &final, err)) != 0)
      goto fail;
    restart_diff_t check = { .n = 0 };
    /* Belt and braces: the overrides must have restored every restart-class value exactly. */
    for (size_t i = 0; i < tdm_conf_key_count(); i++) {
      const tdm_conf_key_t *k = tdm_conf_key_at(i);
      char a[512], b[512];
      if (k->reload != TDM_CONF_RESTART)
        continue;
      if (tdm_conf_render(inst->conf, k, a, sizeof(a)) == 0 && tdm_conf_render(final, k, b, sizeof(b)) == 0 &&
          strcmp(a, b) != 0)
        check.keys[check.n++] = k;
    }
    if (check.n) {
      char msg[256];
      snprintf(msg, sizeof(msg), "internal: the running value of '%s' could not be kept", check.keys[0]->name);
      *err = dup_text(msg);
      rc = TDM_ECONF;
      goto fail;
    }
  }
  if ((rc = check_files(final, err)) != 0)
    goto fail;
  tdm_conf_unref(fresh);
  *out = final;
  return 0;
fail:
  if (!*err)
    *err = dup_text(tdm_strerror(rc));
  tdm_conf_unref(fresh);
  tdm_conf_unref(final);
  return rc < 0 ? rc : TDM_ECONF;
}

/* ---- the INFO line ---- */

typedef struct change_log_s {
  FILE *f;   /* memstream */
  size_t n;  /* changes written */
} change_log_t;

static void log_change(const tdm_conf_key_t *key, const char *old_text, const char *new_text, void *arg)
{
  change_log_t *cl = arg;
  fprintf(cl->f, "%s%s %s→%s", cl->n++ ? ", " : "", key->name, old_text[0] ? old_text : "\"\"",
          new_text[0] ? new_text : "\"\"");
}

static void log_applied(const tdm_conf_t *old_conf, const tdm_conf_t *new_conf)
{
  char *text = NULL;
  size_t len = 0;
  change_log_t cl = { open_memstream(&text, &len), 0 };
  if (cl.f) {
    tdm_conf_diff(old_conf, new_conf, log_change, &cl); /* secrets come back redacted */
    fclose(cl.f);
  }
  tdm_log_info(NULL, "reload: epoch %llu applied: %s", (unsigned long long)new_conf->epoch,
               cl.n ? text : "no key changed");
  free(text);
}

/* ---- the state machine ---- */

static void run_reload(uv_timer_t *t);

static void finish_reload(tdm_instance_t *inst, int result)
{
  if (inst->ready_notified)
    tdm_notify_ready(NULL);
  inst->reload_state = TDM__RELOAD_IDLE;
  tdm_list_t batch;
  tdm_list_init(&batch);
  tdm_list_splice_tail(&batch, &inst->reload_cur);
  tdm_list_t *n;
  while ((n = tdm_list_pop(&batch)) != NULL) {
    tdm__waiter_t *w = TDM_CONTAINER_OF(n, tdm__waiter_t, link);
    w->reload_cb(inst, w->arg, result);
    free(w);
  }
  if (inst->reload_again && !inst->closing) {
    inst->reload_again = false;
    inst->reload_state = TDM__RELOAD_SCHEDULED;
    uv_timer_start(&inst->reload_timer, run_reload, 0, 0);
  }
}

static void ack_noop(tdm_proxy_worker_t *pw, void *arg, int *result)
{
  /* FIFO inbox: this runs after the worker swapped in the epoch sent just before it. */
}

static void acked(tdm_instance_t *inst, void *arg, int result)
{
  finish_reload(inst, 1);
}

static void set_pending(tdm_instance_t *inst, const restart_diff_t *rd)
{
  free(inst->pending_restart);
  inst->pending_restart = NULL;
  inst->n_pending_restart = 0;
  if (!rd->n || !(inst->pending_restart = calloc(rd->n, sizeof(char *))))
    return;
  for (size_t i = 0; i < rd->n; i++)
    inst->pending_restart[i] = (char *)rd->keys[i]->name; /* the key table is static */
  inst->n_pending_restart = rd->n;
}

/* The reload failed: the current epoch (and its TLS contexts) stay; err (malloc'd, may be NULL) is kept
 * for the status. */
static void reject(tdm_instance_t *inst, char *err)
{
  inst->reloads_rejected++;
  inst->last_reload_ok = false;
  free(inst->last_reload_error);
  inst->last_reload_error = err;
  tdm_log_error(NULL, "reload rejected, epoch %llu kept: %s", (unsigned long long)inst->conf->epoch, err ? err : "?");
  finish_reload(inst, 0);
}

static void run_reload(uv_timer_t *t)
{
  tdm_instance_t *inst = t->data;
  if (inst->closing)
    return;
  inst->reload_state = TDM__RELOAD_RUNNING;
  tdm_list_splice_tail(&inst->reload_cur, &inst->reload_next);
  if (inst->ready_notified)
    tdm_notify_reloading();
  inst->last_reload_ms = tdm_time_wall_ms();
  char *err = NULL;
  tdm_conf_t *next = NULL;
  restart_diff_t rd = { .n = 0 };
  if (build(inst, &next, &err, &rd) != 0) {
    reject(inst, err);
    return;
  }
  /* TLS material is re-read at every reload (rotation in place); all or nothing (net/tls.h) */
  char tls_err[TDM_TLS_ERR_MAX];
  if (tdm_tls_reload(&inst->tls, next, tls_err, sizeof(tls_err)) < 0) {
    tdm_conf_unref(next);
    reject(inst, dup_text(tls_err[0] ? tls_err : "the TLS contexts could not be built"));
    return;
  }
  tdm_conf_t *old = inst->conf;
  next->epoch = old->epoch + 1;
  log_applied(old, next);
  set_pending(inst, &rd);
  inst->conf = next;
  inst->reloads_applied++;
  inst->last_reload_ok = true;
  free(inst->last_reload_error);
  inst->last_reload_error = NULL;
  /* Main-loop side effects; the workers apply theirs when CONF_SWAP arrives. */
  tdm__instance_apply_log(next);
  if (inst->journal && (strcmp(old->write_divergence_log, next->write_divergence_log) != 0 ||
                        old->write_divergence_log_max_bytes != next->write_divergence_log_max_bytes))
    tdm_journal_configure(inst->journal, next->write_divergence_log, next->write_divergence_log_max_bytes);
  if (inst->registry)
    tdm_prepared_registry_set_max(inst->registry, (size_t)next->prepared_cache_max_entries);
  for (int c = 0; c < 2; c++) {
    if (!inst->control[c])
      continue;
    inst->plug.control_set_conf(inst->control[c], next);
    if (inst->plug.control_set_tls)
      inst->plug.control_set_tls(inst->control[c], &inst->tls);
  }
  if (inst->tls.client || inst->tls.cluster[0] || inst->tls.cluster[1])
    tdm__instance_log_tls(next, &inst->tls);
  tdm__instance_publish_tls(inst); /* before the CONF_SWAP: a worker sees both together */
  tdm__instance_publish_conf(inst, next);
  tdm__instance_topology_events(inst, old, next);
  tdm_conf_unref(old);
  if (tdm__instance_broadcast(inst, ack_noop, NULL, acked) < 0)
    finish_reload(inst, 1); /* published anyway; only the acknowledgement could not be asked for */
}

void tdm__instance_reload_request(tdm_instance_t *inst, tdm__reload_cb cb, void *arg)
{
  if (inst->closing) {
    if (cb)
      cb(inst, arg, -1);
    return;
  }
  if (cb) {
    tdm__waiter_t *w = calloc(1, sizeof(*w));
    if (!w) {
      cb(inst, arg, -1);
      return;
    }
    w->reload_cb = cb;
    w->arg = arg;
    tdm_list_insert_tail(&inst->reload_next, &w->link);
  }
  switch (inst->reload_state) {
  case TDM__RELOAD_IDLE:
    inst->reload_state = TDM__RELOAD_SCHEDULED;
    uv_timer_start(&inst->reload_timer, run_reload, 0, 0);
    break;
  case TDM__RELOAD_SCHEDULED:
    break; /* joins the reload about to run: it reads the newest file anyway */
  case TDM__RELOAD_RUNNING:
    inst->reload_again = true;
    break;
  }
}

static void fail_list(tdm_instance_t *inst, tdm_list_t *l)
{
  tdm_list_t *n;
  while ((n = tdm_list_pop(l)) != NULL) {
    tdm__waiter_t *w = TDM_CONTAINER_OF(n, tdm__waiter_t, link);
    w->reload_cb(inst, w->arg, -1);
    free(w);
  }
}

void tdm__instance_reload_fail_all(tdm_instance_t *inst)
{
  fail_list(inst, &inst->reload_cur);
  fail_list(inst, &inst->reload_next);
}

void tdm__instance_reload_free(tdm_instance_t *inst)
{
  free(inst->pending_restart);
  inst->pending_restart = NULL;
  free(inst->last_reload_error);
  inst->last_reload_error = NULL;
}
