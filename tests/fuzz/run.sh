#!/usr/bin/env bash
# tandem: runs every libFuzzer target in a directory for a fixed time and prints one summary line each.
#   bash tests/fuzz/run.sh <dir-with-fuzz_*-binaries> <seconds>
# Each target fuzzes a corpus directory build/fuzz-corpus/<name> (override the parent with
# TDM_FUZZ_CORPUS_DIR), seeded from tests/fuzz/corpus/<name>/ when that exists; its log goes to
# build/fuzz-corpus/<name>.log. Exits non-zero if any target crashes, leaks, times out or fails to run;
# crash inputs are left in build/fuzz-corpus/artifacts/.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <dir-with-fuzz-binaries> <seconds>" >&2
  exit 64
fi
BIN_DIR=$1
SECONDS_EACH=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CORPUS_ROOT=${TDM_FUZZ_CORPUS_DIR:-$ROOT/build/fuzz-corpus}
ARTIFACTS=$CORPUS_ROOT/artifacts
mkdir -p "$CORPUS_ROOT" "$ARTIFACTS"

shopt -s nullglob
targets=("$BIN_DIR"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz_* binaries in $BIN_DIR" >&2
  exit 1
fi

failed=0
for bin in "${targets[@]}"; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus=$CORPUS_ROOT/$name
  log=$CORPUS_ROOT/$name.log
  mkdir -p "$corpus"
  if [ -d "$HERE/corpus/$name" ]; then
    cp -n "$HERE/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  fi
  dict=()
  if [ -f "$HERE/$name.dict" ]; then dict=(-dict="$HERE/$name.dict"); fi
  # -timeout: one input may take at most 10 s; -rss_limit_mb: decoders must not balloon.
  "$bin" "$corpus" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$name-" "${dict[@]}" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^Done \([0-9][0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9][0-9]* runs in \([0-9][0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  files=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ] && [ -n "$runs" ]; then
    printf 'fuzz: %-16s ok     %12s executions in %ss, coverage %s, corpus %s files\n' \
      "$name" "$runs" "${secs:-?}" "${cov:-?}" "$files"
  else
    failed=1
    printf 'fuzz: %-16s FAILED (exit %d) after %s executions; see %s\n' "$name" "$rc" "${runs:-?}" "$log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY:|tandem: bug at|artifact_prefix|Test unit written)' "$log" | head -n 8 | sed 's/^/fuzz:   /'
  fi
done
exit $failed
