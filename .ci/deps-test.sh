#!/usr/bin/env bash
# tandem: installs what the end-to-end tier (tests/e2e, real Cassandra) needs, on Debian 12 as
# root. Idempotent: every step is skipped when already done, so a second run takes ~1 s.
#   1. apt: openjdk-17-jdk-headless, maven, python3-venv (only the missing ones)
#   2. the Cassandra 5.0.x jars (tests/cassandra/fetch.sh, cached in ~/.cache/tandem)
#   3. build/venv: pytest, cassandra-driver, cqlsh pinned in tests/e2e/requirements.txt
# Environment: TANDEM_PYTHON  interpreter for the venv (default Debian's /usr/bin/python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "deps-test: $*" >&2; }

# --- 1. Debian packages -------------------------------------------------------------------
want=(openjdk-17-jdk-headless maven python3-venv)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then log "missing packages ${missing[*]}: run as root"; exit 1; fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "packages present: ${want[*]}"
fi

# --- 2. Cassandra jars ----------------------------------------------------------------------
# Maven must run on a JDK it likes; Debian's 17 is always fine (another default JDK may not be).
if [ -z "${JAVA_HOME:-}" ]; then
  for j in /usr/lib/jvm/java-17-openjdk-*; do [ -x "$j/bin/java" ] && export JAVA_HOME=$j && break; done
fi
bash tests/cassandra/fetch.sh >/dev/null

# --- 3. Python virtualenv -------------------------------------------------------------------
VENV=$ROOT/build/venv
REQ=$ROOT/tests/e2e/requirements.txt
usable() {   # a python >= 3.10 (cqlsh 6.2 needs it) with a working venv + ensurepip
  [ -n "$1" ] && [ -x "$1" ] &&
    "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}
PY=""
for c in ${TANDEM_PYTHON:-} /usr/bin/python3 "$(command -v python3 || true)"; do
  if usable "$c"; then PY=$c; break; fi
done
[ -n "$PY" ] || { log "no python3 >= 3.10 with venv found (install python3-venv)"; exit 1; }

stamp="$VENV/.tandem-requirements"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null &&
   [ -f "$stamp" ] && cmp -s "$stamp" "$REQ"; then
  log "venv up to date: $VENV"
else
  if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; }; then
    log "creating $VENV with $PY ($("$PY" -V 2>&1))"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
  fi
  log "pip install -r tests/e2e/requirements.txt"
  # a binary wheel exists for cp311; should pip ever build the driver, skip its Cython step
  CASS_DRIVER_NO_CYTHON=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$VENV/bin/python" -m pip install -q --prefer-binary -r "$REQ"
  cp "$REQ" "$stamp"
fi
"$VENV/bin/python" -c 'import cassandra, pytest; print("deps-test: cassandra-driver", cassandra.__version__, "pytest", pytest.__version__)' >&2
log "ready: make clusters-up / make test-e2e"
