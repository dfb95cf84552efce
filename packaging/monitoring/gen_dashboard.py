#!/usr/bin/env python3
"""Generates packaging/monitoring/grafana-dashboard.json, the Grafana dashboard for tandem's metrics
(behaviour.md §13.1). The JSON is committed; packaging/test.sh regenerates it and fails when it differs,
then checks every query against what the daemon exports (tools/check_monitoring.py).

  python3 packaging/monitoring/gen_dashboard.py -o packaging/monitoring/grafana-dashboard.json
"""
import argparse
import json
import sys

S = 'job=~"$job", instance=~"$instance"'  # every query's selector
P = "${prefix}"                              # metrics_prefix, a dashboard variable (tandem or zdm)
R = "[$__rate_interval]"                     # rate window
DS = {"type": "prometheus", "uid": "${datasource}"}


class Dashboard:
    """Panels laid out left to right on Grafana's 24-column grid, a new line when a panel does not fit;
    ids are assigned in order."""

    def __init__(self):
        self.panels = []   # the dashboard's panels, rows included
        self.next_id = 1   # id of the next panel
        self.y = 0         # top of the current line
        self.x = 0         # next free column on the current line
        self.h = 0         # height of the tallest panel on the current line

    def _id(self):
        self.next_id += 1
        return self.next_id - 1

    def _place(self, w, h):
        if self.x + w > 24:
            self.endrow()
        g = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.h = max(self.h, h)
        return g

    def endrow(self):
        self.y += self.h
        self.x = 0
        self.h = 0

    def row(self, title):
        self.endrow()
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def ts(self, title, desc, exprs, unit="short", w=12, h=8, stack=False, bars=False):
        custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 10,
                  "showPoints": "never", "spanNulls": False,
                  "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
        self.panels.append({"type": "timeseries", "title": title, "description": desc, "id": self._id(),
                            "datasource": DS, "gridPos": self._place(w, h),
                            "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
                            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                                   "showLegend": True},
                                        "tooltip": {"mode": "multi", "sort": "desc"}},
                            "targets": targets(exprs)})

    def stat(self, title, desc, exprs, unit="short", w=4, h=4, text_mode="auto"):
        self.panels.append({"type": "stat", "title": title, "description": desc, "id": self._id(),
                            "datasource": DS, "gridPos": self._place(w, h),
                            "fieldConfig": {"defaults": {"unit": unit, "mappings": [],
                                                         "thresholds": {"mode": "absolute", "steps": [
                                                             {"color": "green", "value": None}]}},
                                            "overrides": []},
                            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                                          "values": False},
                                        "colorMode": "value", "graphMode": "none", "textMode": text_mode,
                                        "justifyMode": "auto", "orientation": "auto"},
                            "targets": targets(exprs, instant=True)})

    def timeline(self, title, desc, exprs, mappings, w=12, h=6):
        self.panels.append({"type": "state-timeline", "title": title, "description": desc, "id": self._id(),
                            "datasource": DS, "gridPos": self._place(w, h),
                            "fieldConfig": {"defaults": {"mappings": mappings,
                                                         "custom": {"fillOpacity": 70, "lineWidth": 0},
                                                         "color": {"mode": "thresholds"},
                                                         "thresholds": {"mode": "absolute", "steps": [
                                                             {"color": "blue", "value": None}]}},
                                            "overrides": []},
                            "options": {"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
                                        "legend": {"showLegend": False, "displayMode": "list",
                                                   "placement": "bottom"},
                                        "tooltip": {"mode": "single", "sort": "none"}},
                            "targets": targets(exprs)})


def targets(exprs, instant=False):
    """Queries A, B, ... from (expression, legend) pairs."""
    return [{"datasource": DS, "expr": e, "legendFormat": legend, "refId": chr(ord("A") + i),
             "range": not instant, "instant": instant} for i, (e, legend) in enumerate(exprs)]


def vmap(values):
    """A value mapping {number: text}."""
    return [{"type": "value", "options": {str(k): {"text": v, "index": i}
                                          for i, (k, v) in enumerate(values.items())}}]


def quantile(p, cluster):
    """The p-quantile of a cluster's leg latency (origin, target or async)."""
    return f"histogram_quantile({p}, sum by (le) (rate({P}_{cluster}_request_duration_seconds_bucket{{{S}}}{R})))"


def build():
    d = Dashboard()
    # ---- overview
    d.row("Overview")
    d.stat("Instances scraped", "Instances whose /metrics Prometheus reaches (job=$job).",
           [(f'count(up{{{S}}} == 1)', "")])
    d.stat("Instances ready", "Instances whose /health/readiness answers 200, from the blackbox probe job $readiness_job. "
           "No data means that job is not configured (see prometheus.yml in /usr/share/tandem/monitoring).",
           [(f'sum(probe_success{{job=~"$readiness_job", instance=~"$instance"}})', "")])
    d.stat("Config epoch", "Configuration epoch per instance: 1 at start, +1 per applied reload. Instances of one fleet "
           "normally show the same epoch when they were started together and reloaded together.",
           [(f'{P}_config_epoch{{{S}}}', "{{instance}}")])
    d.stat("Primary cluster", "Number of instances serving synchronous reads from each cluster. More than one cluster "
           "shown means the fleet disagrees (alert TandemFleetDisagreesOnPrimary).",
           [(f'sum by (cluster) ({P}_primary_cluster{{{S}}} == 1)', "{{cluster}}")], text_mode="value_and_name")
    d.stat("Read mode", "Number of instances in each read mode.",
           [(f'sum by (mode) ({P}_read_mode{{{S}}} == 1)', "{{mode}}")], text_mode="value_and_name")
    d.stat("Client connections", "Open client connections, all selected instances.",
           [(f'sum({P}_client_connections_total{{{S}}})', "")])
    d.endrow()

    # ---- requests
    d.row("Requests")
    d.ts("Request rate by cluster", "Forwarded QUERY/EXECUTE/BATCH requests per second as clients see them (reads by the "
         "cluster that served them, dual writes), and the legs sent to each cluster (handshakes, PREPARE and "
         "intercepted queries are not counted).",
         [(f'sum by (type) (rate({P}_proxy_request_duration_seconds_count{{{S}}}{R}))', "client {{type}}"),
          (f'sum by (type) (rate({P}_origin_request_duration_seconds_count{{{S}}}{R}))', "ORIGIN legs {{type}}"),
          (f'sum by (type) (rate({P}_target_request_duration_seconds_count{{{S}}}{R}))', "TARGET legs {{type}}")],
         unit="reqps")
    d.ts("Latency per cluster", "Leg latency from write to response, per cluster (p50 and p99).",
         [(quantile("0.5", "origin"), "ORIGIN p50"), (quantile("0.99", "origin"), "ORIGIN p99"),
          (quantile("0.5", "target"), "TARGET p50"), (quantile("0.99", "target"), "TARGET p99")], unit="s")
    d.ts("Client-visible latency by request type (p99)", "Latency of forwarded requests as the client sees it, by type: "
         "reads served by ORIGIN, reads served by TARGET, dual writes (both legs).",
         [(f'histogram_quantile(0.99, sum by (le, type) (rate({P}_proxy_request_duration_seconds_bucket{{{S}}}{R})))',
           "{{type}} p99"),
          (f'histogram_quantile(0.5, sum by (le, type) (rate({P}_proxy_request_duration_seconds_bucket{{{S}}}{R})))',
           "{{type}} p50")], unit="s")
    d.ts("Request rate per instance", "Client requests per second on each instance: a skew means drivers do not spread "
         "load over the instances (check proxy_topology_addresses and the drivers' local DC).",
         [(f'sum by (instance) (rate({P}_proxy_request_duration_seconds_count{{{S}}}{R}))', "{{instance}}")],
         unit="reqps")
    d.endrow()

    # ---- errors
    d.row("Errors")
    d.ts("Failed requests by cluster", "Legs answered with an error or not answered, per cluster and error class.",
         [(f'sum by (error) (rate({P}_origin_requests_failed_total{{{S}}}{R}))', "ORIGIN {{error}}"),
          (f'sum by (error) (rate({P}_target_requests_failed_total{{{S}}}{R}))', "TARGET {{error}}")], unit="reqps")
    d.ts("Error ratio by cluster", "Failed legs over answered legs, per cluster (alerts TandemOriginErrorRateHigh and "
         "TandemTargetErrorRateHigh fire above 5 %).",
         [(f'sum(rate({P}_origin_requests_failed_total{{{S}}}{R})) / sum(rate({P}_origin_request_duration_seconds_count{{{S}}}{R}))', "ORIGIN"),
          (f'sum(rate({P}_target_requests_failed_total{{{S}}}{R})) / sum(rate({P}_target_request_duration_seconds_count{{{S}}}{R}))', "TARGET")],
         unit="percentunit")
    d.ts("Client-visible failures", "Forwarded reads that failed, by the cluster that served them, and writes that "
         "failed, by the cluster(s) that failed.",
         [(f'sum by (cluster) (rate({P}_proxy_failed_reads_total{{{S}}}{R}))', "reads failed on {{cluster}}"),
          (f'sum by (failed_on) (rate({P}_proxy_failed_writes_total{{{S}}}{R}))', "writes failed on {{failed_on}}")],
         unit="reqps")
    d.ts("Write divergence", "Dual writes applied on one cluster only (by kind and failed side), LWT [applied] "
         "mismatches, and divergence journal lines lost. Each one is a row that differs between the clusters.",
         [(f'sum by (kind, failed_on) (rate({P}_write_divergence_total{{{S}}}{R}))', "{{kind}} failed on {{failed_on}}"),
          (f'sum(rate({P}_lwt_applied_mismatch_total{{{S}}}{R}))', "LWT [applied] mismatch"),
          (f'sum(rate({P}_write_divergence_log_dropped_total{{{S}}}{R}))', "journal lines dropped")], unit="ops")
    d.ts("Rejected frames and handshakes", "Client frames refused by reason, and client handshakes that did not succeed.",
         [(f'sum by (reason) (rate({P}_frames_rejected_total{{{S}}}{R}))', "frame {{reason}}"),
          (f'sum by (result) (rate({P}_client_handshakes_total{{{S}, result!="ok"}}{R}))', "handshake {{result}}")],
         unit="ops")
    d.ts("Late responses and re-prepares", "Responses that arrived after their request timed out, and transparent "
         "re-prepares after UNPREPARED.",
         [(f'sum by (cluster) (rate({P}_proxy_late_responses_total{{{S}}}{R}))', "late {{cluster}}"),
          (f'sum by (cluster, result) (rate({P}_pscache_reprepares_total{{{S}}}{R}))', "re-prepare {{cluster}} {{result}}")],
         unit="ops")
    d.endrow()

    # ---- in flight
    d.row("In flight")
    d.ts("In-flight requests", "Forwarded requests waiting for their response, by type, and mirrored reads in flight.",
         [(f'sum by (type) ({P}_proxy_inflight_requests_total{{{S}}})', "{{type}}"),
          (f'sum({P}_async_inflight_requests_total{{{S}}})', "async reads")])
    d.ts("Stream ids in use", "Stream ids held on backend pool connections, per cluster and node. They return to 0 "
         "when idle.",
         [(f'sum by (node) ({P}_origin_used_stream_ids_total{{{S}}})', "ORIGIN {{node}}"),
          (f'sum by (node) ({P}_target_used_stream_ids_total{{{S}}})', "TARGET {{node}}"),
          (f'sum by (node) ({P}_async_used_stream_ids_total{{{S}}})', "async {{node}}")])
    d.ts("Pool queue wait (p99)", "Time legs waited in a pool queue for a stream id.",
         [(f'histogram_quantile(0.99, sum by (le) (rate({P}_pool_queue_wait_seconds_bucket{{{S}}}{R})))', "p99"),
          (f'sum(rate({P}_pool_queue_wait_seconds_count{{{S}}}{R}))', "legs queued per second")], unit="s")
    d.ts("Backpressure and yields", "Times a client connection stopped being read (by side), and read callbacks that "
         "yielded to other connections.",
         [(f'sum by (side) (rate({P}_backpressure_pauses_total{{{S}}}{R}))', "paused by {{side}}"),
          (f'sum(rate({P}_read_yields_total{{{S}}}{R}))', "read yields")], unit="ops")
    d.endrow()

    # ---- async reads
    d.row("Async reads")
    d.ts("Mirrored reads", "Reads mirrored to the secondary cluster (read_mode DUAL_ASYNC_ON_SECONDARY): answered, "
         "failed, dropped (queue full or no connection) and sampled out (async_read_sample_percent).",
         [(f'sum(rate({P}_async_request_duration_seconds_count{{{S}}}{R}))', "answered"),
          (f'sum(rate({P}_async_requests_failed_total{{{S}}}{R}))', "failed"),
          (f'sum by (reason) (rate({P}_async_reads_dropped_total{{{S}}}{R}))', "dropped {{reason}}"),
          (f'sum(rate({P}_async_reads_sampled_out_total{{{S}}}{R}))', "sampled out")], unit="reqps")
    d.ts("Async read latency", "Latency of mirrored reads on the secondary cluster (p50 and p99), to compare with the "
         "primary's before flipping.",
         [(quantile("0.5", "async"), "p50"), (quantile("0.99", "async"), "p99")], unit="s")
    d.ts("Async read failures by error", "Mirrored reads answered with an error or not answered, by error class. They "
         "never reach clients.",
         [(f'sum by (error) (rate({P}_async_requests_failed_total{{{S}}}{R}))', "{{error}}")], unit="reqps")
    d.endrow()

    # ---- connections
    d.row("Connections")
    d.ts("Client connections", "Open client connections per instance.",
         [(f'sum by (instance) ({P}_client_connections_total{{{S}}})', "{{instance}}")])
    d.ts("Client connections by protocol version", "Open client connections by negotiated protocol version.",
         [(f'sum by (version) ({P}_client_connections_by_version{{{S}}})', "{{version}}")], stack=True)
    d.ts("Backend pool connections", "Open backend pool connections per cluster and node.",
         [(f'sum by (node) ({P}_origin_connections_total{{{S}}})', "ORIGIN {{node}}"),
          (f'sum by (node) ({P}_target_connections_total{{{S}}})', "TARGET {{node}}"),
          (f'sum by (node) ({P}_async_connections_total{{{S}}})', "async {{node}}")])
    d.ts("Refused and failed connections", "Client connections refused or closed early, by reason, and backend "
         "connections that could not be opened, by cluster.",
         [(f'sum by (reason) (rate({P}_client_connections_refused_total{{{S}}}{R}))', "client refused: {{reason}}"),
          (f'sum by (cluster) (rate({P}_proxy_failed_connections_total{{{S}}}{R}))', "backend failed: {{cluster}}"),
          (f'sum(rate({P}_async_failed_connections_total{{{S}}}{R}))', "backend failed: async")], unit="ops")
    d.endrow()

    # ---- configuration
    d.row("Configuration")
    d.ts("Config epoch", "Configuration epoch per instance; each applied reload adds one.",
         [(f'{P}_config_epoch{{{S}}}', "{{instance}}")], w=8)
    d.ts("Reloads", "Configuration reloads per instance and result (rejected reloads keep the previous epoch; alert "
         "TandemReloadFailed).",
         [(f'sum by (instance, result) (increase({P}_config_reloads_total{{{S}}}[$__rate_interval]))', "{{instance}} {{result}}")],
         w=8, bars=True)
    d.ts("Keys pending a restart", "Restart-class keys changed in the file but not applied (GET /api/v1/status lists "
         "them).",
         [(f'{P}_config_pending_restart_keys{{{S}}}', "{{instance}}")], w=8)
    d.timeline("Primary cluster per instance", "Which cluster serves synchronous reads on each instance.",
               [(f'max by (instance) ({P}_primary_cluster{{{S}, cluster="target"}})', "{{instance}}")],
               vmap({0: "ORIGIN", 1: "TARGET"}))
    d.timeline("Read mode per instance", "PRIMARY_ONLY, or DUAL_ASYNC_ON_SECONDARY (reads mirrored to the secondary).",
               [(f'max by (instance) ({P}_read_mode{{{S}, mode="DUAL_ASYNC_ON_SECONDARY"}})', "{{instance}}")],
               vmap({0: "PRIMARY_ONLY", 1: "DUAL_ASYNC_ON_SECONDARY"}))
    d.endrow()

    # ---- process
    d.row("Process")
    d.ts("CPU", "CPU seconds per second used by each tandem process.",
         [(f'rate(process_cpu_seconds_total{{{S}}}{R})', "{{instance}}")], unit="percentunit", w=6)
    d.ts("Resident memory", "Resident memory of each tandem process.",
         [(f'process_resident_memory_bytes{{{S}}}', "{{instance}}")], unit="bytes", w=6)
    d.ts("File descriptors used", "Open file descriptors over the limit (LimitNOFILE in the unit).",
         [(f'process_open_fds{{{S}}} / process_max_fds{{{S}}}', "{{instance}}")], unit="percentunit", w=6)
    d.ts("Throughput", "Bytes through tandem's sockets per side and direction.",
         [(f'sum by (side, direction) (rate({P}_bytes_total{{{S}}}{R}))', "{{side}} {{direction}}")], unit="Bps", w=6)
    d.endrow()

    templating = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
        {"name": "prefix", "label": "Metrics prefix", "type": "custom", "query": "tandem,zdm",
         "description": "metrics_prefix of the instances: tandem (default) or zdm",
         "current": {"selected": True, "text": "tandem", "value": "tandem"}, "hide": 0,
         "options": [{"selected": True, "text": "tandem", "value": "tandem"},
                     {"selected": False, "text": "zdm", "value": "zdm"}]},
        {"name": "job", "label": "Job", "type": "query", "datasource": DS,
         "definition": "label_values(${prefix}_config_epoch, job)",
         "query": {"query": "label_values(${prefix}_config_epoch, job)", "refId": "job"},
         "refresh": 2, "includeAll": True, "multi": True, "allValue": ".+",
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "sort": 1, "options": [],
         "regex": ""},
        {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
         "definition": 'label_values(${prefix}_config_epoch{job=~"$job"}, instance)',
         "query": {"query": 'label_values(${prefix}_config_epoch{job=~"$job"}, instance)', "refId": "instance"},
         "refresh": 2, "includeAll": True, "multi": True, "allValue": ".+",
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "sort": 1, "options": [],
         "regex": ""},
        {"name": "readiness_job", "label": "Readiness probe job", "type": "textbox", "query": "tandem-readiness",
         "description": "Prometheus job of the blackbox_exporter probes of /health/readiness",
         "current": {"text": "tandem-readiness", "value": "tandem-readiness"}, "hide": 0,
         "options": [{"selected": True, "text": "tandem-readiness", "value": "tandem-readiness"}]},
    ]

    return {
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
             "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"},
            {"datasource": DS, "enable": True, "iconColor": "orange", "name": "Configuration reloads",
             "expr": f'changes({P}_config_epoch{{{S}}}[2m]) > 0', "step": "1m",
             "titleFormat": "epoch change", "textFormat": "{{instance}}", "useValueForTime": False},
        ]},
        "description": "tandem CQL migration proxy: requests, latency and errors per cluster, in-flight requests, async "
                       "reads, connections and configuration (behaviour.md §13).",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "liveNow": False,
        "panels": d.panels,
        "refresh": "30s",
        "schemaVersion": 38,
        "style": "dark",
        "tags": ["tandem", "cassandra", "migration"],
        "templating": {"list": templating},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": "tandem",
        "uid": "tandem-proxy",
        "version": 1,
        "weekStart": "",
    }


def main():
    ap = argparse.ArgumentParser(description="writes tandem's Grafana dashboard JSON")
    ap.add_argument("-o", "--output", help="output file (default: stdout)")
    args = ap.parse_args()
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
