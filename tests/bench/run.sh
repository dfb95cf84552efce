#!/usr/bin/env bash
# `make bench`: the benchmark suite. Builds nothing (make bench depends on all); runs tests/bench/bench.py,
# which starts two `cqlmock --fast` nodes, measures the direct and the tandem path, the idle-connection
# memory, then the real clusters when they are up, and writes $BUILD/bench/results.json.
# Usage: bash tests/bench/run.sh [BUILD_DIR]   (knobs: BENCH_* variables, listed in tests/bench/bench.py)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
cd "$ROOT"
# 10000 idle clients need 10000 descriptors in tdm-bench and as many in tandem
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PY=$(command -v python3 || true)
[ -n "$PY" ] || { echo "bench: python3 is required" >&2; exit 1; }
exec "$PY" "$ROOT/tests/bench/bench.py" "$BUILD"
