#!/usr/bin/env bash
# tandem: records the protocol vectors of tests/data/vectors from a real Cassandra node.
#   bash tests/data/capture/run.sh [HOST:PORT]       (default 127.0.0.2:9042, the origin of clusters.sh)
# Needs a Python with cassandra-driver, lz4 and python-snappy: $CAPTURE_PYTHON, else build/venv/bin/python.
# Each scenario's session connection (the driver's second: the first is its control connection) is kept.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
UPSTREAM=${1:-127.0.0.2:9042}
PY=${CAPTURE_PYTHON:-$ROOT/build/venv/bin/python}
OUT=${CAPTURE_OUT:-$ROOT/tests/data/vectors}
AUTH=()
if [ -n "${CAPTURE_USER:-}" ]; then AUTH=(--user "$CAPTURE_USER" --password "$CAPTURE_PASSWORD"); fi

"$PY" -c 'import cassandra, lz4, snappy' || { echo "capture: $PY lacks cassandra-driver, lz4 or python-snappy" >&2; exit 1; }
for scenario in v4-none v4-lz4 v4-snappy v5-none v5-lz4 v3-none; do
  proto=${scenario%%-*}; proto=${proto#v}; comp=${scenario#*-}
  python3 "$HERE/capture.py" --upstream "$UPSTREAM" --out "$OUT" --name "$scenario" --conn 2 \
    --note "protocol v$proto, compression $comp, Python driver $("$PY" -c 'import cassandra; print(cassandra.__version__)')" \
    -- "$PY" "$HERE/drive.py" --protocol "$proto" --compression "$comp" "${AUTH[@]}"
done
