#!/usr/bin/env bash
# tandem: runs the end-to-end tier (make test-e2e) with build/venv's pytest.
#
#   bash tests/e2e/run.sh              the passes in TANDEM_E2E_MODES (default "plain secure"):
#                                        plain   every test, clusters as the environment asks
#                                                (default 1 node each, no auth, no TLS)
#                                        secure  tests marked auth or tls, on clusters with
#                                                TANDEM_CLUSTER_AUTH=1 TANDEM_CLUSTER_TLS=1
#   bash tests/e2e/run.sh ARGS...      one pass, ARGS passed to pytest (e.g. -k independent)
#
# Timeouts: each test TANDEM_E2E_TEST_TIMEOUT s (default 300, fixture setup included, via
# pytest-timeout); the whole run TANDEM_E2E_TIMEOUT s (default 1500 = 25 min), after which
# pytest is terminated. Clusters this script found down are down again when it exits
# (even after a crash or a timeout) unless TANDEM_KEEP_CLUSTERS=1.
#
# Exit status: pytest's. Its "no tests collected" (5) counts as a failure when tests should
# have run (a plain pass while test files exist, or explicit ARGS), and as success for a
# secure pass that finds no test marked auth or tls.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
VENV=$ROOT/build/venv
CLUSTERS=$ROOT/tests/cassandra/clusters.sh

if [ ! -x "$VENV/bin/pytest" ] || ! "$VENV/bin/python" -c 'import cassandra, pytest_timeout' 2>/dev/null; then
  echo "e2e: $VENV is missing or incomplete: run 'make deps' (or 'bash .ci/deps-test.sh')" >&2
  exit 1
fi
if ! bash tests/cassandra/cass-node.sh lib >/dev/null; then
  echo "e2e: the Cassandra jars are missing: run 'make deps' (or 'bash tests/cassandra/fetch.sh')" >&2
  exit 1
fi

export PYTHONPYCACHEPREFIX=$ROOT/build/pycache       # keep __pycache__ out of the source tree
export PYTHONUNBUFFERED=1
TEST_TIMEOUT=${TANDEM_E2E_TEST_TIMEOUT:-300}
TOTAL=${TANDEM_E2E_TIMEOUT:-1500}
T0=$SECONDS

# Whatever this run starts, it stops: note which nodes were up before.
was_up=0
if pgrep -f -- "-Dcassandra.config=file://$ROOT/build/cassandra/" >/dev/null; then was_up=1; fi
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
  if [ "$was_up" = 0 ] && [ "${TANDEM_KEEP_CLUSTERS:-0}" != 1 ] &&
     pgrep -f -- "-Dcassandra.config=file://$ROOT/build/cassandra/" >/dev/null; then
    echo "e2e: stopping the clusters this run left behind" >&2
    bash "$CLUSTERS" down >&2 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pass NAME EMPTY_OK ENV... -- PYTEST_ARGS...: one pytest run; returns its (adjusted) status
pass() {
  local name=$1 empty_ok=$2 envs=() rc left
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  left=$(( TOTAL - (SECONDS - T0) ))
  if (( left <= 30 )); then
    echo "e2e: no time left for the $name pass (TANDEM_E2E_TIMEOUT=$TOTAL)" >&2
    return 1
  fi
  echo "=== e2e pass: $name ${envs[*]:-} (up to $left s)"
  env ${envs[@]+"${envs[@]}"} timeout --signal=TERM --kill-after=30 "$left" \
    "$VENV/bin/pytest" tests/e2e -v --timeout="$TEST_TIMEOUT" "$@"
  rc=$?
  case $rc in
    124|137) echo "e2e: the $name pass hit the TANDEM_E2E_TIMEOUT of $TOTAL s" >&2; rc=1 ;;
    5) if [ "$empty_ok" = 1 ]; then
         echo "e2e: the $name pass selected no tests; nothing needed it"; rc=0
       else
         echo "e2e: the $name pass collected no tests although there should be some" >&2
       fi ;;
  esac
  return "$rc"
}

status=0
if [ $# -gt 0 ]; then
  pass args 0 -- "$@" || status=$?
else
  have_tests=0
  compgen -G "tests/e2e/test_*.py" >/dev/null && have_tests=1
  for mode in ${TANDEM_E2E_MODES:-plain secure}; do
    rc=0
    case $mode in
      plain)  pass plain "$((1 - have_tests))" -- || rc=$? ;;
      secure) pass secure 1 TANDEM_CLUSTER_AUTH=1 TANDEM_CLUSTER_TLS=1 -- -m "auth or tls" || rc=$? ;;
      *)      echo "e2e: unknown mode '$mode' in TANDEM_E2E_MODES" >&2; rc=64 ;;
    esac
    [ "$status" != 0 ] || status=$rc
  done
fi
echo "e2e: done in $((SECONDS - T0)) s, status $status"
exit "$status"
