#!/usr/bin/env bash
# `make test-packaging`: unit (systemd-analyze verify, security), alert rules (promtool check + unit
# tests), scrape config, dashboard (in sync with its generator, required panels, queries parsed, series
# exported), man pages (tandem.yaml(5) in sync with the key table, no groff warnings), `make deb` +
# lintian (errors fail, warnings listed) and, as root without a tandem installation, install / run /
# reload / remove / purge. Needs BUILD (default build/) with tandem and src/libtandem_core.a.
# SKIP_DEB=1 skips the package build and install.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

pass=0
fail=0
skips=()
failed=()
ok() { pass=$((pass + 1)); echo "ok    $1"; }
ko() { fail=$((fail + 1)); failed+=("$1"); echo "FAIL  $1"; [ -n "${2:-}" ] && sed 's/^/      /' <<<"$2"; }
skip() { skips+=("$1: $2"); echo "skip  $1 ($2)"; }
# check NAME CMD...: passes when CMD exits 0; its output is shown on failure.
check() {
  local name="$1" out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else ko "$name" "$out"; fi
}

for f in "$build/tandem" "$build/src/libtandem_core.a"; do
  [ -e "$f" ] || { echo "test.sh: $f not found: build first (make, or BUILD=<dir>)" >&2; exit 1; }
done
version=$(sed -n 's/^project(tandem VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

# ---- what the daemon exports and accepts, from the compiled tables ----
if ! bash packaging/tools/introspect.sh "$build" keys >"$work/keys.tsv" 2>"$work/introspect.err" ||
   ! bash packaging/tools/introspect.sh "$build" metrics >"$work/metrics.txt" 2>>"$work/introspect.err"; then
  cat "$work/introspect.err" >&2
  echo "test.sh: cannot build or run packaging/tools/introspect.c against $build" >&2
  exit 1
fi
keydefault() { awk -F'\t' -v k="$1" '$1 == k { print $3 }' "$work/keys.tsv"; }

# ---- systemd unit ----
unit=packaging/systemd/tandem.service
sed "s#/usr/sbin/tandem#$build/tandem#g" "$unit" >"$work/tandem.service"
# verify exits 0 on unknown keys and other warnings: any output is a failure. Documentation= man pages
# are checked on the installed unit below, where they exist.
check "systemd-analyze verify $unit" bash -c '
  out=$(systemd-analyze verify --man=no "$1" 2>&1); rc=$?
  [ -n "$out" ] && echo "$out"; [ $rc -eq 0 ] && [ -z "$out" ]' _ "$work/tandem.service"
if security=$(systemd-analyze security --offline=yes --no-pager "$work/tandem.service" 2>&1); then
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$security")
  echo "      systemd-analyze security: exposure ${score:-?} (0 = locked down, 10 = exposed)"
  check "unit exposure level ${score:-?} <= 2.0" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'
else
  ko "systemd-analyze security --offline" "$security"
fi
unit_has() { grep -qxF "$1" "$unit" || { echo "missing line: $1"; return 1; }; }
check "unit: Type=notify, reload by SIGHUP, drain by SIGTERM" bash -c "
  $(declare -f unit_has); unit=$unit
  unit_has Type=notify && unit_has 'ExecReload=/bin/kill -HUP \$MAINPID' && unit_has KillSignal=SIGTERM &&
  unit_has User=tandem && unit_has LimitNOFILE=1048576 && unit_has ProtectSystem=strict &&
  unit_has NoNewPrivileges=yes && unit_has CapabilityBoundingSet= && unit_has Restart=on-failure &&
  unit_has 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' && unit_has MemoryDenyWriteExecute=yes &&
  unit_has SystemCallFilter=@system-service"
drain_ms=$(keydefault shutdown_drain_timeout_ms)
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
check "unit: TimeoutStopSec=${stop_s:-?}s > shutdown_drain_timeout_ms default ${drain_ms:-?} ms" \
  test -n "$stop_s" -a -n "$drain_ms" -a "$((${stop_s:-0} * 1000))" -gt "${drain_ms:-0}"

# ---- Prometheus rules, their unit tests, the example scrape config ----
check "promtool check rules alerts.yml" promtool check rules packaging/monitoring/alerts.yml
check "promtool test rules alerts.test.yml" promtool test rules packaging/monitoring/alerts.test.yml
check "promtool check config prometheus.yml" promtool check config packaging/monitoring/prometheus.yml
for a in TandemNotReady TandemTargetErrorRateHigh TandemReloadFailed; do
  check "alert $a defined and unit-tested" bash -c \
    "grep -q 'alert: $a\$' packaging/monitoring/alerts.yml && grep -q 'alertname: $a\$' packaging/monitoring/alerts.test.yml"
done

# ---- Grafana dashboard and alert series against the exposition ----
check "grafana-dashboard.json in sync with gen_dashboard.py (regenerate: python3 packaging/monitoring/gen_dashboard.py -o packaging/monitoring/grafana-dashboard.json)" \
  bash -c 'python3 packaging/monitoring/gen_dashboard.py -o "$1" && diff -u packaging/monitoring/grafana-dashboard.json "$1"' \
  _ "$work/dashboard.json"
check "dashboard + alerts: JSON, required panels, queries parse, series exported" \
  python3 packaging/tools/check_monitoring.py --exposition "$work/metrics.txt" \
    --dashboard packaging/monitoring/grafana-dashboard.json --alerts packaging/monitoring/alerts.yml

# ---- man pages ----
check "tandem.yaml(5) in sync with the key table (regenerate: python3 packaging/man/gen_tandem_yaml_5.py --build $build -o packaging/man/tandem.yaml.5)" \
  bash -c 'python3 packaging/man/gen_tandem_yaml_5.py --keys "$1" -o "$2" && diff -u packaging/man/tandem.yaml.5 "$2"' \
  _ "$work/keys.tsv" "$work/tandem.yaml.5"
check "tandem.yaml(5) lists all $(wc -l <"$work/keys.tsv") keys" bash -c '
  while IFS=$(printf "\t") read -r name _; do
    grep -qxF ".B $name" packaging/man/tandem.yaml.5 || { echo "no entry for $name"; exit 1; }
  done <"$1"' _ "$work/keys.tsv"
for page in packaging/man/tandem.8 packaging/man/tandem.yaml.5; do
  check "man --warnings $page" bash -c '
    out=$(LC_ALL=C.UTF-8 MANROFFSEQ="" MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$1" 2>&1 >/dev/null)
    [ -z "$out" ] || { echo "$out"; exit 1; }' _ "$page"
done
check "tandem(8) and tandem.yaml(5) carry version $version" bash -c "
  grep -q '^\.TH TANDEM 8 .*\"tandem $version\"' packaging/man/tandem.8 &&
  grep -q '^\.TH TANDEM.YAML 5 .*\"tandem $version\"' packaging/man/tandem.yaml.5"
check "tandem(8) documents every option of tandem --help" bash -c '
  opts=$("$1" --help | grep -o -- "--[a-z][a-z-]*" | sort -u)
  [ -n "$opts" ] || { echo "no options in --help"; exit 1; }
  for o in $opts; do
    grep -q -- "\\\\-\\\\-${o#--}" packaging/man/tandem.8 || { echo "tandem(8) lacks $o"; exit 1; }
  done' _ "$build/tandem"

# ---- Debian package ----
if [ "${SKIP_DEB:-0}" = 1 ]; then
  skip "make deb, lintian, install" "SKIP_DEB=1"
else
  debdir="$root/build/deb"
  if out=$(make --no-print-directory deb 2>&1); then
    ok "make deb"
  else
    ko "make deb" "$(tail -40 <<<"$out")"
  fi
  deb=$(ls "$debdir"/tandem_"$version"-*_*.deb 2>/dev/null | head -1)
  changes=$(ls "$debdir"/tandem_"$version"-*_*.changes 2>/dev/null | head -1)
  if [ -n "$deb" ] && [ -n "$changes" ]; then
    lint=$(lintian --fail-on error --tag-display-limit 0 -I "$changes" 2>&1)
    lrc=$?
    if [ $lrc -eq 0 ]; then ok "lintian: no errors"; else ko "lintian: errors" "$lint"; fi
    if grep -q '^[WIP]:' <<<"$lint"; then
      echo "      lintian warnings and notes:"
      grep '^[WIP]:' <<<"$lint" | sed 's/^/        /'
    fi
    check "package contents" bash -c '
      list=$(dpkg-deb -c "$1"); conff=$(dpkg-deb -f "$1" Package >/dev/null && dpkg-deb -I "$1" conffiles)
      for p in ./usr/sbin/tandem ./lib/systemd/system/tandem.service ./etc/tandem/tandem.yaml \
               ./usr/share/man/man8/tandem.8.gz ./usr/share/man/man5/tandem.yaml.5.gz \
               ./etc/logrotate.d/tandem ./usr/share/tandem/monitoring/grafana-dashboard.json \
               ./usr/share/tandem/monitoring/alerts.yml; do
        grep -q " $p\$\| $p -> " <<<"$list" || { echo "missing $p"; exit 1; }
      done
      grep -q " ./usr/share/doc/tandem/operations.md" <<<"$list" || { echo "missing operations.md"; exit 1; }
      grep -qx "/etc/tandem/tandem.yaml" <<<"$conff" || { echo "conffiles: $conff"; exit 1; }
      [ "$(grep -cx "/etc/tandem/tandem.yaml" <<<"$conff")" = 1 ] || { echo "duplicate conffile"; exit 1; }
      dpkg-deb --fsys-tarfile "$1" | tar -xO ./etc/tandem/tandem.yaml | grep -q "^origin_contact_points: \"\"" ||
        { echo "packaged tandem.yaml keeps sample contact points"; exit 1; }' _ "$deb"
  else
    ko "make deb produced $debdir/tandem_${version}-*.deb and .changes"
  fi

  # ---- install, reinstall, remove, purge (root only; never on a machine that has tandem already) ----
  if [ "$(id -u)" != 0 ]; then
    skip "dpkg -i / -r / -P" "not root"
  elif [ -z "$deb" ]; then
    skip "dpkg -i / -r / -P" "no package"
  elif dpkg-query -W -f='${Status}' tandem 2>/dev/null | grep -q installed || getent passwd tandem >/dev/null; then
    skip "dpkg -i / -r / -P" "a tandem package or user already exists on this machine"
  else
    check "dpkg -i" dpkg -i "$deb"
    check "installed: user, group, unit, binary, man pages" bash -c '
      getent passwd tandem | grep -q ":/var/lib/tandem:/usr/sbin/nologin$" || { getent passwd tandem; exit 1; }
      getent group tandem >/dev/null && test -f /lib/systemd/system/tandem.service &&
      /usr/sbin/tandem --version | grep -q "$1" && man -w tandem.8 >/dev/null && man -w tandem.yaml.5 >/dev/null' \
      _ "$version"
    check "installed unit: systemd-analyze verify (man pages included)" bash -c '
      out=$(systemd-analyze verify /lib/systemd/system/tandem.service 2>&1); rc=$?
      [ -n "$out" ] && echo "$out"; [ $rc -eq 0 ] && [ -z "$out" ]'
    check "conffile: root:tandem 0640, readable by tandem, not by others" bash -c '
      [ "$(stat -c "%U:%G %a" /etc/tandem/tandem.yaml)" = "root:tandem 640" ] || stat -c "%U:%G %a" /etc/tandem/tandem.yaml
      [ "$(stat -c "%U:%G %a" /etc/tandem/tandem.yaml)" = "root:tandem 640" ] &&
      runuser -u tandem -- test -r /etc/tandem/tandem.yaml && runuser -u nobody -- test ! -r /etc/tandem/tandem.yaml &&
      dpkg-query -W -f="\${Conffiles}\n" tandem | grep -q "^ /etc/tandem/tandem.yaml [0-9a-f]\{32\}$"'
    if command -v logrotate >/dev/null; then
      check "logrotate -d /etc/logrotate.d/tandem" logrotate -d /etc/logrotate.d/tandem
    else
      skip "logrotate -d" "logrotate not installed"
    fi
    # `tandem --check` as the unit's ExecReload runs it: a configured copy must pass, the packaged
    # conffile (empty contact points) must fail and name them.
    sed 's/^origin_contact_points:.*/origin_contact_points: 127.0.0.2/; s/^target_contact_points:.*/target_contact_points: 127.0.0.3/' \
      /etc/tandem/tandem.yaml >"$work/configured.yaml"
    chmod 0644 "$work/configured.yaml"
    chmod 0755 "$work"
    if runuser -u tandem -- /usr/sbin/tandem --check --config="$work/configured.yaml" >"$work/check.out" 2>&1; then
      check "tandem --check rejects the packaged conffile (no contact points)" bash -c '
        out=$(runuser -u tandem -- /usr/sbin/tandem --check --config=/etc/tandem/tandem.yaml 2>&1) && exit 1
        grep -q contact_points <<<"$out" || { echo "$out"; exit 1; }'
    else
      skip "tandem --check of the conffile" "this build's --check rejects a valid file: $(head -1 "$work/check.out")"
    fi
    # The installed daemon driven as systemd would drive it, without systemd: started as the unit's
    # user with a NOTIFY_SOCKET we listen on, reloaded with the unit's own ExecReload lines, drained
    # with its KillSignal. Clusters are unreachable ports, so readiness stays STARTUP (no READY=1).
    # GET a URL: the body on stdout, exit 0 only for HTTP 200 (python3, since curl may be absent).
    hget() {
      python3 -c 'import sys, urllib.request
try:
    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except Exception as e:
    sys.exit(1)' "$1"
    }
    daemon_cycle() {
      set -u
      local w="$1" ports pid i
      ports=$(python3 -c 'import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
      read -r p_metrics p_admin p_listen p_origin p_target <<<"$ports"
      sed -e "s/^origin_contact_points:.*/origin_contact_points: 127.0.0.1:$p_origin/" \
          -e "s/^target_contact_points:.*/target_contact_points: 127.0.0.1:$p_target/" \
          -e "s/^metrics_port:.*/metrics_port: $p_metrics/" -e "s/^admin_port:.*/admin_port: $p_admin/" \
          -e "s/^proxy_listen_port:.*/proxy_listen_port: $p_listen/" /etc/tandem/tandem.yaml >"$w/run.yaml"
      chmod 0644 "$w/run.yaml"
      python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode() + "\n"); out.flush()' "$w/notify.sock" "$w/notify.log" &
      local listener=$!
      for i in $(seq 50); do [ -S "$w/notify.sock" ] && break; sleep 0.1; done
      setpriv --reuid=tandem --regid=tandem --init-groups env NOTIFY_SOCKET="$w/notify.sock" \
        /usr/sbin/tandem --config="$w/run.yaml" >"$w/daemon.log" 2>&1 &
      pid=$!
      local status_url="http://127.0.0.1:$p_metrics/api/v1/status" rc=0
      for i in $(seq 100); do hget "http://127.0.0.1:$p_metrics/health/liveness" >/dev/null && break; sleep 0.1; done
      hget "http://127.0.0.1:$p_metrics/health/liveness" >/dev/null || { echo "no liveness"; rc=1; }
      # A valid change: the unit's ExecReload lines (check, then SIGHUP) succeed and epoch 2 is applied.
      sed -i 's/^log_level:.*/log_level: DEBUG/' "$w/run.yaml"
      while read -r cmd; do
        cmd="${cmd//\/etc\/tandem\/tandem.yaml/$w/run.yaml}"
        cmd="${cmd//\$MAINPID/$pid}"
        # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
        setpriv --reuid=tandem --regid=tandem --init-groups $cmd >>"$w/reload.log" 2>&1 || { echo "ExecReload failed: $cmd"; rc=1; }
      done < <(sed -n 's/^ExecReload=//p' /lib/systemd/system/tandem.service)
      for i in $(seq 50); do hget "$status_url" | grep -q '"epoch":2,' && break; sleep 0.1; done
      hget "$status_url" | grep -q '"epoch":2,.*"last_reload":{"time":"[^"]*","result":"applied"' ||
        { echo "reload not applied:"; hget "$status_url"; rc=1; }
      # An invalid change: the unit's check step fails (systemctl reload would fail) and a SIGHUP is
      # rejected, keeping epoch 2.
      echo "log_levle: INFO" >>"$w/run.yaml"
      if setpriv --reuid=tandem --regid=tandem --init-groups /usr/sbin/tandem --check --config="$w/run.yaml" >"$w/check2.log" 2>&1; then
        echo "tandem --check accepted an unknown key"; rc=1
      fi
      grep -q "log_levle" "$w/check2.log" || { echo "--check output does not name the key:"; cat "$w/check2.log"; rc=1; }
      kill -HUP "$pid"
      for i in $(seq 50); do hget "http://127.0.0.1:$p_metrics/metrics" | grep -q 'config_reloads_total{result="rejected"} 1' && break; sleep 0.1; done
      hget "http://127.0.0.1:$p_metrics/metrics" | grep -q 'tandem_config_reloads_total{result="rejected"} 1' ||
        { echo "rejected reload not counted"; rc=1; }
      hget "http://127.0.0.1:$p_metrics/metrics" | grep -qx 'tandem_config_epoch 2' || { echo "epoch changed"; rc=1; }
      # KillSignal: one SIGTERM drains and exits 0 within TimeoutStopSec, after STOPPING=1.
      kill -TERM "$pid"
      local stop_s
      stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' /lib/systemd/system/tandem.service)
      for i in $(seq $((stop_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "still running ${stop_s}s after SIGTERM"; kill -KILL "$pid"; rc=1
      fi
      wait "$pid" || { echo "exit status $? after SIGTERM"; rc=1; }
      sleep 0.2
      kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
      grep -qx "STOPPING=1" "$w/notify.log" || { echo "no STOPPING=1 notification"; rc=1; }
      if [ $rc -ne 0 ]; then
        echo "--- daemon log"; tail -20 "$w/daemon.log"; echo "--- reload log"; cat "$w/reload.log"
        echo "--- notifications"; cat "$w/notify.log"
      fi
      return $rc
    }
    mkdir -p "$work/cycle" && chmod 0755 "$work/cycle"
    if out=$(daemon_cycle "$work/cycle" 2>&1); then
      ok "installed daemon: liveness, ExecReload applies a change, bad file rejected, SIGTERM drains (STOPPING=1, exit 0)"
    else
      ko "installed daemon: start, reload, drain" "$out"
    fi
    # A local change to the conffile survives a reinstall (dpkg keeps the admin's version).
    echo "# local change" >>/etc/tandem/tandem.yaml
    check "dpkg -i again keeps a modified conffile" bash -c '
      dpkg -i --force-confold "$1" >/dev/null && tail -1 /etc/tandem/tandem.yaml | grep -qx "# local change" &&
      [ "$(stat -c "%G %a" /etc/tandem/tandem.yaml)" = "tandem 640" ]' _ "$deb"
    if [ -d /run/systemd/system ]; then
      check "systemd knows the unit, not enabled" bash -c '
        systemctl daemon-reload && [ "$(systemctl is-enabled tandem.service)" = disabled ]'
    else
      skip "systemctl is-enabled" "systemd is not running here"
    fi
    check "dpkg -r: binary gone, conffile and user kept" bash -c '
      dpkg -r tandem >/dev/null && test ! -e /usr/sbin/tandem && test ! -e /lib/systemd/system/tandem.service &&
      test -f /etc/tandem/tandem.yaml && getent passwd tandem >/dev/null'
    check "dpkg -P: conffile, user, group, statoverride gone" bash -c '
      dpkg -P tandem >/dev/null && test ! -e /etc/tandem/tandem.yaml && test ! -e /etc/logrotate.d/tandem &&
      ! getent passwd tandem >/dev/null && ! getent group tandem >/dev/null &&
      ! dpkg-statoverride --list /etc/tandem/tandem.yaml >/dev/null &&
      ! dpkg-query -W tandem >/dev/null 2>&1'
  fi
fi

echo
echo "packaging: $pass passed, $fail failed, ${#skips[@]} skipped"
for s in "${skips[@]}"; do echo "  skipped: $s"; done
for f in "${failed[@]}"; do echo "  FAILED: $f"; done
[ "$fail" -eq 0 ]
