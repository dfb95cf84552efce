#!/usr/bin/env bash
# tandem: fetch Apache Cassandra 5.0.x (org.apache.cassandra:cassandra-all from Maven Central)
# and its runtime jars into a cache outside the source tree. Idempotent: a complete cache is
# reused without touching the network.
#
#   bash tests/cassandra/fetch.sh          prints the lib folder on its last stdout line
#
# Environment:
#   CASSANDRA_VERSION  version to fetch (default: try 5.0.8, then 5.0.7, then 5.0.6)
#   TANDEM_CACHE       cache root (default $HOME/.cache/tandem); jars go to
#                      $TANDEM_CACHE/cassandra-<ver>/lib
#   MVN                maven command (default mvn); Maven's own ~/.m2 is used and reused
#   MVN_ARGS           extra maven arguments (e.g. -Dmaven.repo.local=/somewhere)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${TANDEM_CACHE:-$HOME/.cache/tandem}
MVN=${MVN:-mvn}
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1

log() { echo "fetch: $*" >&2; }

# complete LIB VER: the folder holds every jar its marker lists, and the server jar
complete() {
  local lib=$1 ver=$2 jar
  [ -f "$lib/.complete" ] && [ -f "$lib/cassandra-all-$ver.jar" ] || return 1
  while IFS= read -r jar; do
    [ -f "$lib/$jar" ] || return 1
  done <"$lib/.complete"
}

fetch_one() {
  local ver=$1 lib="$CACHE/cassandra-$1/lib" tmp
  if complete "$lib" "$ver"; then
    log "cassandra $ver already complete in $lib"
    echo "$lib"
    return 0
  fi
  command -v "$MVN" >/dev/null || { log "maven ($MVN) not found: run .ci/deps-test.sh"; return 2; }
  mkdir -p "$CACHE/cassandra-$ver"
  rm -rf "$CACHE/cassandra-$ver"/lib.partial.*     # left by an interrupted run
  tmp=$(mktemp -d "$CACHE/cassandra-$ver/lib.partial.XXXXXX")
  log "resolving org.apache.cassandra:cassandra-all:$ver with maven into $lib"
  # -q hides progress; errors still print. The output goes to a log for the failure case.
  # shellcheck disable=SC2086  # MVN_ARGS is meant to be word-split
  if ! "$MVN" -B -q -f "$HERE/pom.xml" ${MVN_ARGS:-} "$DEP_PLUGIN:copy-dependencies" \
        -Dcassandra.version="$ver" -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$tmp.log" 2>&1; then
    log "maven could not fetch $ver; its output ends with:"
    tail -n 15 "$tmp.log" >&2 || true
    rm -rf "$tmp" "$tmp.log"
    rmdir "$CACHE/cassandra-$ver" 2>/dev/null || true
    return 1
  fi
  rm -f "$tmp.log"
  local missing=0 want
  for want in "cassandra-all-$ver.jar" 'jamm-*.jar' 'jna-[0-9]*.jar' 'netty-all-*.jar' \
              'logback-classic-*.jar' 'snakeyaml-*.jar'; do
    compgen -G "$tmp/$want" >/dev/null || { log "missing $want after copy"; missing=1; }
  done
  if [ "$missing" = 1 ]; then rm -rf "$tmp"; return 1; fi
  (cd "$tmp" && ls -1 -- *.jar) >"$tmp/.complete"
  rm -rf "$lib"
  mv "$tmp" "$lib"
  log "cassandra $ver: $(wc -l <"$lib/.complete") jars, $(du -sh "$lib" | cut -f1) in $lib"
  echo "$lib"
}

if [ -n "${CASSANDRA_VERSION:-}" ]; then
  fetch_one "$CASSANDRA_VERSION"
  exit
fi
VERSIONS="5.0.8 5.0.7 5.0.6"
for v in $VERSIONS; do      # a cached one wins without any network
  if complete "$CACHE/cassandra-$v/lib" "$v"; then fetch_one "$v"; exit; fi
done
for v in $VERSIONS; do
  rc=0
  fetch_one "$v" || rc=$?
  [ "$rc" = 0 ] && exit 0
  [ "$rc" = 2 ] && exit 1
  log "falling back from $v"
done
log "no Cassandra 5.0.x could be fetched"
exit 1
