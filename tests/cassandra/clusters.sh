#!/usr/bin/env bash
# tandem: the two real Cassandra 5.0 clusters of the end-to-end tests and the demo.
#
#   clusters.sh up       start (or reuse) origin and target; waits until both serve CQL
#   clusters.sh down     stop every node of ours; no JVM of ours is left behind
#   clusters.sh status   one line per node; exit 0 when the requested layout is up and healthy
#
#   cluster  seed node          2nd node (TANDEM_CLUSTER_NODES=2)   CQL
#   origin   origin 127.0.0.2   origin2 127.0.0.4                   :9042
#   target   target 127.0.0.3   target2 127.0.0.5                   :9042
#
# Environment:
#   TANDEM_CLUSTER_NODES=1|2  nodes per cluster (default 1)
#   TANDEM_CLUSTER_AUTH=1     PasswordAuthenticator with different roles on each cluster:
#                               origin: origin_admin/origin_pw (superuser), origin_app/origin_app_pw
#                               target: target_admin/target_pw (superuser), target_app/target_app_pw
#                             app roles have ALL PERMISSIONS ON ALL KEYSPACES; the default
#                             cassandra/cassandra superuser is left with LOGIN = false on both.
#   TANDEM_CLUSTER_TLS=1      client TLS on 9042; clients trust build/cassandra/tls/node.crt
#   TANDEM_CLUSTER_FRESH=1    never reuse running nodes: restart them with empty data
# Local JMX for nodetool (cass-node.sh nodetool NODE ...) on 127.0.0.1: origin 7199, target 7299,
# origin2 7399, target2 7499.
#   plus the CASS_* variables of cass-node.sh (CASS_HEAP, CASS_JIT, CASS_WAIT, ...).
#
# `up` reuses nodes that run, answer CQL and have the requested auth/TLS mode, so it costs
# about a second when the clusters are already up. It writes build/cassandra/clusters.env
# (shell syntax) describing what runs. A node that fails makes `up` stop what it started,
# print the end of that node's log and exit non-zero.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CASS_WORK=${CASS_WORK:-$ROOT/build/cassandra}
mkdir -p "$CASS_WORK"
WORK=$(cd "$CASS_WORK" && pwd)
N="$HERE/cass-node.sh"

NODES=${TANDEM_CLUSTER_NODES:-1}
AUTH=${TANDEM_CLUSTER_AUTH:-0}
TLS=${TANDEM_CLUSTER_TLS:-0}
case $NODES in 1|2) ;; *) echo "clusters: TANDEM_CLUSTER_NODES must be 1 or 2" >&2; exit 64 ;; esac
case $AUTH in 0|1) ;; *) echo "clusters: TANDEM_CLUSTER_AUTH must be 0 or 1" >&2; exit 64 ;; esac
case $TLS in 0|1) ;; *) echo "clusters: TANDEM_CLUSTER_TLS must be 0 or 1" >&2; exit 64 ;; esac

ALL_NODES="origin target origin2 target2"
addr_of() { case $1 in origin) echo 127.0.0.2 ;; target) echo 127.0.0.3 ;;
                       origin2) echo 127.0.0.4 ;; target2) echo 127.0.0.5 ;; esac; }
cluster_of() { echo "${1%2}"; }
seed_of() { addr_of "$(cluster_of "$1")"; }
jmx_of() { case $1 in origin) echo 7199 ;; target) echo 7299 ;; origin2) echo 7399 ;; target2) echo 7499 ;; esac; }
token_of() { case $1 in *2) echo -9223372036854775808 ;; *) echo 0 ;; esac; }
admin_user() { echo "$1_admin"; }
admin_pass() { echo "$1_pw"; }

wanted_nodes() { if [ "$NODES" = 2 ]; then echo "$ALL_NODES"; else echo "origin target"; fi; }

PY=""
for c in ${TANDEM_PYTHON:-} /usr/bin/python3 "$(command -v python3 || true)"; do
  if [ -n "$c" ] && [ -x "$c" ]; then PY=$c; break; fi
done
[ -n "$PY" ] || { echo "clusters: python3 is needed" >&2; exit 1; }

# cql CLUSTER [user pass] -e STMT...: runs statements on the cluster's seed node
cql() {
  local cluster=$1; shift
  CQLPROBE_TLS=$TLS "$PY" "$HERE/cqlprobe.py" query "$(addr_of "$cluster")" 9042 "$@"
}
cql_as_admin() {
  local cluster=$1; shift
  if [ "$AUTH" = 1 ]; then
    cql "$cluster" -u "$(admin_user "$cluster")" -p "$(admin_pass "$cluster")" "$@"
  else
    cql "$cluster" "$@"
  fi
}

# pids of JVMs whose config lives under our work folder (also those whose pid file is gone)
our_jvms() {
  local p
  for p in $(pgrep -f -- "-Dcassandra.config=file://$WORK/" || true); do
    [ "$p" != "$$" ] && tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null |
      grep -q -- "^-Dcassandra.config=file://$WORK/" && echo "$p"
  done
  return 0
}

# healthy NODE: runs, answers CQL, and has the requested mode (and roles, with auth)
healthy() {
  local node=$1 dir="$WORK/$1"
  [ -f "$dir/node.env" ] || return 1
  grep -qx "AUTH=$AUTH" "$dir/node.env" && grep -qx "TLS=$TLS" "$dir/node.env" || return 1
  grep -qx "CLUSTER=$(cluster_of "$node")" "$dir/node.env" || return 1
  if [ "$AUTH" = 1 ] && [ "$node" = "$(cluster_of "$node")" ] && [ ! -f "$dir/roles.done" ]; then
    return 1
  fi
  bash "$N" status "$node" >/dev/null 2>&1
}

# stop_nodes NODE...: stop through the pid files, then any JVM of ours still running one of
# these node folders (a lost pid file); both only ever signal JVMs of this work folder.
stop_nodes() {
  local n p pids=() strays=""
  for n in "$@"; do bash "$N" stop "$n" & pids+=($!); done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" || true; done
  for p in $(our_jvms); do
    for n in "$@"; do
      if tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "-Dcassandra.config=file://$WORK/$n/cassandra.yaml"; then
        strays="$strays $p"
      fi
    done
  done
  [ -n "$strays" ] || return 0
  echo "clusters: stopping JVMs of $WORK whose pid file was lost:$strays" >&2
  for p in $strays; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for p in $strays; do [ -d "/proc/$p" ] && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for p in $strays; do kill -KILL "$p" 2>/dev/null || true; done
  sleep 0.5
}

FAILED=0
# start_and_wait NODE...: parallel start, parallel wait; sets FAILED=1 when one fails
start_and_wait() {
  local n pids=() names=() i
  for n in "$@"; do
    CASS_CLUSTER=$(cluster_of "$n") CASS_SEED=$(seed_of "$n") CASS_TOKEN=$(token_of "$n") \
      CASS_JMX_PORT=$(jmx_of "$n") CASS_AUTH=$AUTH CASS_TLS=$TLS bash "$N" start "$n" "$(addr_of "$n")" || { FAILED=1; return; }
  done
  for n in "$@"; do bash "$N" wait "$n" & pids+=($!); names+=("$n"); done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "clusters: node ${names[$i]} failed to start (logs in $WORK/${names[$i]}/logs)" >&2
      FAILED=1
    fi
  done
}

# wait_peers CLUSTER: the seed lists the second node in system.peers_v2
wait_peers() {
  local cluster=$1 other t0=$SECONDS
  other=$(addr_of "${1}2")
  while (( SECONDS - t0 < 60 )); do
    if cql_as_admin "$cluster" -e "SELECT peer FROM system.peers_v2" 2>/dev/null | grep -qx "$other"; then
      return 0
    fi
    sleep 0.5
  done
  echo "clusters: $cluster's seed does not list $other in system.peers_v2 after 60 s" >&2
  return 1
}

setup_roles() {
  local cluster=$1 dir="$WORK/$1" t0=$SECONDS
  [ -f "$dir/roles.done" ] && return 0
  # the default superuser can need a moment after CQL opens; retry the first login
  until cql "$cluster" -u cassandra -p cassandra -e "SELECT role FROM system_auth.roles" >/dev/null 2>&1; do
    if (( SECONDS - t0 >= 30 )); then
      echo "clusters: cannot log in to $cluster as cassandra/cassandra" >&2
      cql "$cluster" -u cassandra -p cassandra -e "SELECT role FROM system_auth.roles" || true
      return 1
    fi
    sleep 0.5
  done
  cql "$cluster" -u cassandra -p cassandra \
    -e "CREATE ROLE IF NOT EXISTS $(admin_user "$cluster") WITH PASSWORD = '$(admin_pass "$cluster")' AND SUPERUSER = true AND LOGIN = true" \
    -e "CREATE ROLE IF NOT EXISTS ${cluster}_app WITH PASSWORD = '${cluster}_app_pw' AND LOGIN = true" \
    -e "GRANT ALL PERMISSIONS ON ALL KEYSPACES TO ${cluster}_app" >/dev/null
  cql "$cluster" -u "$(admin_user "$cluster")" -p "$(admin_pass "$cluster")" \
    -e "ALTER ROLE cassandra WITH LOGIN = false" >/dev/null
  touch "$dir/roles.done"
}

write_env() {
  local origin_hosts=127.0.0.2 target_hosts=127.0.0.3
  if [ "$NODES" = 2 ]; then origin_hosts=127.0.0.2,127.0.0.4 target_hosts=127.0.0.3,127.0.0.5; fi
  {
    echo "# written by tests/cassandra/clusters.sh up; shell syntax"
    echo "TANDEM_CLUSTER_NODES=$NODES"
    echo "TANDEM_CLUSTER_AUTH=$AUTH"
    echo "TANDEM_CLUSTER_TLS=$TLS"
    echo "ORIGIN_HOSTS=$origin_hosts"
    echo "TARGET_HOSTS=$target_hosts"
    echo "CQL_PORT=9042"
    if [ "$TLS" = 1 ]; then echo "TLS_CA=$WORK/tls/node.crt"; else echo "TLS_CA="; fi
    if [ "$AUTH" = 1 ]; then
      echo "ORIGIN_ADMIN_USER=origin_admin ORIGIN_ADMIN_PASSWORD=origin_pw"
      echo "ORIGIN_APP_USER=origin_app ORIGIN_APP_PASSWORD=origin_app_pw"
      echo "TARGET_ADMIN_USER=target_admin TARGET_ADMIN_PASSWORD=target_pw"
      echo "TARGET_APP_USER=target_app TARGET_APP_PASSWORD=target_app_pw"
    fi
  } >"$WORK/clusters.env.tmp"
  mv "$WORK/clusters.env.tmp" "$WORK/clusters.env"
}

report() {
  local c out
  for c in origin target; do
    out=$(cql_as_admin "$c" -e "SELECT cluster_name, release_version FROM system.local") || return 1
    printf '%s: cluster_name %s, release_version %s\n' "$(addr_of "$c")" "${out%%$'\t'*}" "${out##*$'\t'}"
  done
}

fail_up() {
  echo "clusters: up failed; stopping the nodes it started" >&2
  stop_nodes "$@"
  rm -f "$WORK/clusters.env"
  exit 1
}

up() {
  local t0 t1 n c seeds=() joiners=() restart=() started=()
  t0=$(date +%s.%N)
  # A cluster restarts whole (fresh data, roles) when anything about it is off: a node added to
  # or removed from a running cluster would leave a dead token owner or a host-id clash.
  for c in origin target; do
    local redo=0
    if [ "${TANDEM_CLUSTER_FRESH:-0}" = 1 ] || ! healthy "$c"; then redo=1
    elif [ "$NODES" = 2 ] && ! healthy "${c}2"; then redo=1
    elif [ "$NODES" = 1 ] && [ -f "$WORK/${c}2/pid" ]; then redo=1
    fi
    if [ "$redo" = 1 ]; then
      restart+=("$c" "${c}2"); seeds+=("$c")
      [ "$NODES" = 2 ] && joiners+=("${c}2")
    fi
  done
  if [ ${#restart[@]} -gt 0 ]; then stop_nodes "${restart[@]}"; fi
  rm -f "$WORK/clusters.env"
  if [ ${#seeds[@]} -eq 0 ] && [ ${#joiners[@]} -eq 0 ]; then
    echo "clusters: reusing running nodes: $(wanted_nodes)"
  fi
  if [ "$TLS" = 1 ] && [ ! -f "$WORK/tls/node.p12" ]; then bash "$N" tls >/dev/null; fi
  if [ ${#seeds[@]} -gt 0 ]; then
    started+=("${seeds[@]}")
    start_and_wait "${seeds[@]}"
    [ "$FAILED" = 0 ] || fail_up "${started[@]}"
  fi
  if [ ${#joiners[@]} -gt 0 ]; then
    started+=("${joiners[@]}")
    start_and_wait "${joiners[@]}"
    [ "$FAILED" = 0 ] || fail_up "${started[@]}"
  fi
  if [ "$AUTH" = 1 ]; then
    for c in origin target; do setup_roles "$c" || fail_up "${started[@]}"; done
  fi
  if [ "$NODES" = 2 ]; then
    for c in origin target; do wait_peers "$c" || fail_up "${started[@]}"; done
  fi
  report || fail_up "${started[@]}"
  write_env
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v m="nodes=$NODES auth=$AUTH tls=$TLS" \
    'BEGIN { printf "clusters up (%s) in %.1f s\n", m, b - a }'
}

down() {
  local t0 left p
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  stop_nodes $ALL_NODES
  rm -f "$WORK/clusters.env"
  left=$(our_jvms)
  if [ -n "$left" ]; then echo "clusters: JVMs still running: $left" >&2; exit 1; fi
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "clusters down in %.1f s\n", b - a }'
}

status() {
  local n rc=0 s
  for n in $ALL_NODES; do
    s=0; bash "$N" status "$n" >/dev/null 2>&1 || s=$?
    case $s in
      0) printf '%-8s %-10s up (serves CQL)\n' "$n" "$(addr_of "$n")" ;;
      3) printf '%-8s %-10s running, not serving CQL\n' "$n" "$(addr_of "$n")" ;;
      *) printf '%-8s %-10s down\n' "$n" "$(addr_of "$n")" ;;
    esac
  done
  for n in $(wanted_nodes); do healthy "$n" || rc=1; done
  [ -f "$WORK/clusters.env" ] || rc=1
  return "$rc"
}

case ${1:-} in
  up)     up ;;
  down)   down ;;
  status) status ;;
  *)      sed -n '4,6p' "${BASH_SOURCE[0]}" >&2; exit 64 ;;
esac
