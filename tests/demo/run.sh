#!/usr/bin/env bash
# tandem demo (make demo): two real Cassandra 5.0 clusters, tandem between them, and a walk through
# migration phases 1, 3, 4 and 5 with a small workload (tests/demo/walk.py), printing what happens
# and where the data is. Brings the clusters up (clusters.sh up) unless they already run, builds a
# config from tests/demo/tandem.yaml.in with free ports, starts build/tandem, runs the walk, then
# stops tandem and the clusters it started (TANDEM_KEEP_CLUSTERS=1 keeps them).
# Needs `make deps` once (jars, venv) and `make all`. Exit status: 0 only if every check passed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
TANDEM=${TANDEM_BIN:-$ROOT/$BUILD/tandem}
PY=$ROOT/build/venv/bin/python
CLUSTERS=$ROOT/tests/cassandra/clusters.sh
# The demo config has no credentials and no TLS: plain one-node clusters.
export TANDEM_CLUSTER_NODES=1 TANDEM_CLUSTER_AUTH=0 TANDEM_CLUSTER_TLS=0
export PYTHONPYCACHEPREFIX=$ROOT/build/pycache PYTHONUNBUFFERED=1

die() { echo "demo: $*" >&2; exit 1; }
[ -x "$TANDEM" ] || die "$TANDEM is not built: run 'make all'"
"$PY" -c 'import cassandra' 2>/dev/null || die "build/venv is missing: run 'make deps'"
bash tests/cassandra/cass-node.sh lib >/dev/null || die "the Cassandra jars are missing: run 'make deps'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tandem-demo.XXXXXX")
started_clusters=0
tandem_pid=""
T0=$SECONDS

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
  if [ -n "$tandem_pid" ] && kill -0 "$tandem_pid" 2>/dev/null; then
    kill -TERM "$tandem_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$tandem_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tandem_pid" 2>/dev/null || true
  fi
  if [ "$started_clusters" = 1 ] && [ "${TANDEM_KEEP_CLUSTERS:-0}" != 1 ]; then
    echo "== Stopping the clusters the demo started"
    bash "$CLUSTERS" down || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== Clusters: ORIGIN 127.0.0.2:9042 and TARGET 127.0.0.3:9042 (Cassandra 5.0)"
if bash "$CLUSTERS" status >/dev/null 2>&1; then
  echo "    already running: reused (and left running)"
else
  started_clusters=1
  bash "$CLUSTERS" up || die "clusters.sh up failed"
fi

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LISTEN=$(free_port); METRICS=$(free_port); ADMIN=$(free_port)
CONFIG=$WORK/tandem.yaml
sed -e "s/@LISTEN_PORT@/$LISTEN/" -e "s/@METRICS_PORT@/$METRICS/" -e "s/@ADMIN_PORT@/$ADMIN/" \
  tests/demo/tandem.yaml.in >"$CONFIG"
"$TANDEM" --check --config="$CONFIG" >/dev/null || die "the generated config does not validate: $CONFIG"

echo "== tandem: listening on 127.0.0.1:$LISTEN, metrics on 127.0.0.1:$METRICS (log: $WORK/tandem.log)"
"$TANDEM" --config="$CONFIG" >"$WORK/tandem.log" 2>&1 &
tandem_pid=$!
ready=0
for _ in $(seq 300); do
  if ! kill -0 "$tandem_pid" 2>/dev/null; then break; fi
  if "$PY" - "$METRICS" <<'EOF' 2>/dev/null; then ready=1; break; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:%s/health/readiness" % sys.argv[1], timeout=1).status == 200 else 1)
EOF
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  tail -n 20 "$WORK/tandem.log" >&2
  die "tandem did not become ready within 30 s"
fi
echo "    readiness UP: both control connections are up"
echo

"$PY" tests/demo/walk.py --pid "$tandem_pid" --config "$CONFIG" --listen "127.0.0.1:$LISTEN" \
  --metrics "127.0.0.1:$METRICS"
status=$?

# walk.py sent SIGTERM in Phase 5; tandem's own exit status is part of the result
rc=0
wait "$tandem_pid" || rc=$?
tandem_pid=""
if [ "$rc" != 0 ]; then
  echo "demo: tandem exited with status $rc; end of its log:" >&2
  tail -n 20 "$WORK/tandem.log" >&2
  [ "$status" != 0 ] || status=1
else
  echo "    tandem exited with status 0; its last lines:"
  grep -E "draining|drain complete|stopped" "$WORK/tandem.log" | sed 's/^/      /' | tail -n 4
fi
echo "demo: finished in $((SECONDS - T0)) s, status $status"
exit "$status"
