#!/usr/bin/env bash
# tandem: start / wait for / stop one Apache Cassandra 5.0.x node, run straight from the jars that
# tests/cassandra/fetch.sh copies out of Maven Central (one JVM per node, no tarball, no Docker).
# Works from any directory; node folders live in <repo>/build/cassandra/NODE.
#
#   cass-node.sh start  NODE ADDR   fresh node folder, JVM in the background, returns at once
#   cass-node.sh wait   NODE        until ADDR:9042 answers CQL OPTIONS (+ superuser with auth)
#   cass-node.sh stop   NODE        SIGTERM, SIGKILL after CASS_STOP_TIMEOUT s; only our own pid
#   cass-node.sh status NODE        exit 0 if the node runs and answers CQL, 3 if it runs only
#   cass-node.sh tls                self-signed PKCS12 keystore + PEM cert in $CASS_WORK/tls
#   cass-node.sh lib                print the jar folder in use
#   cass-node.sh nodetool NODE ARGS...  nodetool against the node (needs CASS_JMX_PORT at start)
#
# Optional environment:
#   CASS_JAVA      java of JDK 11 or 17 (default: $JAVA_HOME, Debian's JDK 17, java on PATH:
#                  the first that is 11 or 17). Cassandra 5.0 does not run on JDK 18+.
#   CASS_LIB       jars folder (default: the newest complete $TANDEM_CACHE/cassandra-5.0.*/lib,
#                  or the one of CASSANDRA_VERSION; TANDEM_CACHE defaults to ~/.cache/tandem)
#   CASS_WORK      parent of node folders (default <repo>/build/cassandra)
#   CASS_CLUSTER   cluster_name (default NODE); all nodes of one cluster share it
#   CASS_SEED      seed address (default ADDR, i.e. a one-node cluster)
#   CASS_TOKEN     initial_token (default 0)
#   CASS_HEAP      -Xms/-Xmx (default 512m)
#   CASS_JIT       c1 (default: -XX:TieredStopAtLevel=1, faster boot on 2 cores) or full
#   CASS_JMX_PORT  local JMX on 127.0.0.1:PORT for nodetool; must differ per node
#   CASS_AUTH=1    PasswordAuthenticator + CassandraAuthorizer (superuser cassandra/cassandra)
#   CASS_TLS=1     client TLS on 9042 ($CASS_WORK/tls/node.p12, made on demand)
#   CASS_TLS_OPTIONAL=1  same port accepts TLS and plaintext
#   CASS_KEEP=1    reuse the node's data instead of wiping it
#   CASS_JVM_OPTS  extra JVM options (word-split)
#   CASS_WAIT      seconds `wait` allows (default 180)
#   CASS_STOP_TIMEOUT  seconds `stop` waits after SIGTERM before SIGKILL (default 30)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${CASS_WORK:-$ROOT/build/cassandra}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

usage() { sed -n '6,12p' "${BASH_SOURCE[0]}" >&2; exit 64; }
die() { echo "cass-node: $*" >&2; exit 1; }

# The readiness probe is stdlib-only Python; Debian's interpreter starts fastest (no pyenv shim).
pick_python() {
  local c
  for c in ${TANDEM_PYTHON:-} /usr/bin/python3 "$(command -v python3 || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return; }
  done
  die "python3 is needed for the CQL readiness probe"
}

java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p'
}

pick_java() {
  local c
  if [ -n "${CASS_JAVA:-}" ]; then
    case $(java_major "$CASS_JAVA") in 11|17) echo "$CASS_JAVA"; return ;; esac
    die "CASS_JAVA=$CASS_JAVA is not JDK 11 or 17"
  fi
  for c in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} /usr/lib/jvm/java-17-openjdk-*/bin/java \
           "$(command -v java || true)"; do
    [ -x "$c" ] || continue
    case $(java_major "$c") in 11|17) echo "$c"; return ;; esac
  done
  die "no JDK 11 or 17 found (Cassandra 5.0 refuses 18+): install openjdk-17-jdk-headless or set CASS_JAVA"
}

lib_dir() {
  local lib=${CASS_LIB:-} cache=${TANDEM_CACHE:-$HOME/.cache/tandem} c
  if [ -z "$lib" ]; then
    if [ -n "${CASSANDRA_VERSION:-}" ]; then
      lib="$cache/cassandra-$CASSANDRA_VERSION/lib"
    else
      # newest complete 5.0.x in the cache (fetch.sh writes .complete last)
      for c in $(compgen -G "$cache/cassandra-5.0.*/lib/.complete" | sort -V); do
        lib=$(dirname "$c")
      done
    fi
  fi
  if [ -z "$lib" ] || [ ! -d "$lib" ] || ! compgen -G "$lib/cassandra-all-*.jar" >/dev/null; then
    die "no cassandra-all jar in ${lib:-$cache/cassandra-5.0.*/lib}: run bash tests/cassandra/fetch.sh"
  fi
  (cd "$lib" && pwd)
}

# true if PID is the JVM of node folder DIR (guards against stale pid files and reused pids)
is_ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "-Dcassandra.config=file://$2/cassandra.yaml"
}

tls() {
  local t="$WORK/tls" keytool
  keytool="$(dirname "$(pick_java)")/keytool"
  mkdir -p "$t"
  rm -f "$t/node.p12" "$t/node.crt"
  "$keytool" -genkeypair -alias node -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=tandem-test-cassandra" \
    -ext "SAN=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4,IP:127.0.0.5,DNS:localhost" \
    -keystore "$t/node.p12" -storetype PKCS12 -storepass cassandra -keypass cassandra 2>/dev/null
  "$keytool" -exportcert -rfc -alias node -keystore "$t/node.p12" -storetype PKCS12 \
    -storepass cassandra -file "$t/node.crt" 2>/dev/null
  echo "$t/node.p12 (password cassandra); clients trust $t/node.crt"
}

start() {
  local node=$1 addr=$2 dir="$WORK/$1" java lib jamm pid
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    ! is_ours "$pid" "$dir" || die "$node already running (pid $pid)"
  fi
  java=$(pick_java)
  lib=$(lib_dir)
  jamm=$(compgen -G "$lib/jamm-*.jar" | head -n 1) || die "no jamm jar in $lib"

  local fresh=1
  if [ "${CASS_KEEP:-0}" = 1 ] && [ -d "$dir/data" ]; then fresh=0; else rm -rf "$dir"; fi
  mkdir -p "$dir/data" "$dir/logs" "$dir/tmp"

  local seed=${CASS_SEED:-$addr} authn=AllowAllAuthenticator authz=AllowAllAuthorizer
  if [ "${CASS_AUTH:-0}" = 1 ]; then authn=PasswordAuthenticator authz=CassandraAuthorizer; fi
  sed -e "s|@CLUSTER@|${CASS_CLUSTER:-$node}|g" -e "s|@ADDR@|$addr|g" -e "s|@SEED@|$seed|g" \
      -e "s|@TOKEN@|${CASS_TOKEN:-0}|g" -e "s|@AUTHENTICATOR@|$authn|g" \
      -e "s|@AUTHORIZER@|$authz|g" "$HERE/node.yaml.in" >"$dir/cassandra.yaml"
  if [ "${CASS_TLS:-0}" = 1 ]; then
    [ -f "$WORK/tls/node.p12" ] || tls >/dev/null
    cat >>"$dir/cassandra.yaml" <<EOF
client_encryption_options:
  enabled: true
  optional: $([ "${CASS_TLS_OPTIONAL:-0}" = 1 ] && echo true || echo false)
  keystore: $WORK/tls/node.p12
  keystore_password: cassandra
  store_type: PKCS12
  require_client_auth: false
EOF
  fi
  # A joining (non-seed) node needs its seed up, and a shadow round longer than 1 s.
  local ring=1000
  [ "$seed" = "$addr" ] || ring=5000
  local heap=${CASS_HEAP:-512m} jit=${CASS_JIT:-c1}
  cat >"$dir/node.env" <<EOF
ADDR=$addr
CLUSTER=${CASS_CLUSTER:-$node}
SEED=$seed
TLS=${CASS_TLS:-0}
AUTH=${CASS_AUTH:-0}
FRESH=$fresh
LIB=$lib
JMX=${CASS_JMX_PORT:-}
EOF

  local jvm=(
    "-Xms$heap" "-Xmx$heap" -Xss256k
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
    -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError
    -ea -da:net.openhft...
    -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true
    -Dio.netty.tryReflectionSetAccessible=true -Dio.netty.allocator.useCacheForAllThreads=true
    -Dio.netty.allocator.maxOrder=11 -Dchronicle.analytics.disable=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.management/com.sun.jmx.remote.security=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    "-javaagent:$jamm"
  )
  case $jit in
    c1)   jvm+=(-XX:TieredStopAtLevel=1) ;;   # measured: see tests/cassandra/README.md
    full) ;;
    *)    die "CASS_JIT must be c1 or full" ;;
  esac
  local props=(
    "-Dcassandra.config=file://$dir/cassandra.yaml"
    "-Dcassandra.storagedir=$dir/data"
    "-Dcassandra.logdir=$dir/logs"
    "-Dlogback.configurationFile=$HERE/logback.xml"
    -Dcassandra-foreground=yes
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    "-Dcassandra.ring_delay_ms=$ring"
    -Dcassandra.load_ring_state=false
    -Dcassandra.superuser_setup_delay_ms=0
    -Dcassandra.unsafesystem=true
    -Dcassandra.test.flush_local_schema_changes=false
    -Dcassandra.auth_bcrypt_gensalt_log2_rounds=4
    # stop in < 1 s instead of ~5 s: no 2 s shutdown announcement, no 2 s messaging quiesce
    -Dcassandra.shutdown_announce_in_ms=100
    -Dcassandra.test.messagingService.nonGracefulShutdown=true
    # natives (JNA, netty, zstd, lz4, snappy) unpack here, not in a possibly noexec /tmp
    "-Djava.io.tmpdir=$dir/tmp" "-Djna.tmpdir=$dir/tmp" "-Dio.netty.native.workdir=$dir/tmp"
  )
  if [ -n "${CASS_JMX_PORT:-}" ]; then
    props+=("-Dcassandra.jmx.local.port=$CASS_JMX_PORT" -Dcom.sun.management.jmxremote.authenticate=false)
  fi
  # shellcheck disable=SC2206  # CASS_JVM_OPTS is meant to be word-split
  local extra=(${CASS_JVM_OPTS:-})

  (cd "$dir" && MALLOC_ARENA_MAX=4 exec "$java" "${jvm[@]}" "${props[@]}" ${extra[@]+"${extra[@]}"} \
     -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon) \
     >"$dir/logs/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/pid"
  date +%s.%N >"$dir/started"
  # wait until the subshell has exec'd into java, so that `wait` and `stop` recognise it
  for _ in $(seq 50); do is_ours "$pid" "$dir" || ! kill -0 "$pid" 2>/dev/null && break; sleep 0.1; done
  echo "$node: pid $pid, $addr:9042, cluster ${CASS_CLUSTER:-$node}, logs in $dir/logs"
}

# CQL OPTIONS in a v4 frame; ready when the reply is a SUPPORTED frame.
probe() {
  CQLPROBE_TLS=$2 CQLPROBE_TIMEOUT=3 "$(pick_python)" "$HERE/cqlprobe.py" ready "$1" 9042
}

wait_ready() {
  local node=$1 dir="$WORK/$1" pid ADDR TLS AUTH FRESH
  if [ ! -f "$dir/node.env" ] || [ ! -f "$dir/pid" ]; then die "$node was not started"; fi
  # shellcheck disable=SC1091
  . "$dir/node.env"
  pid=$(cat "$dir/pid")
  local limit=${CASS_WAIT:-180} t0=$SECONDS
  while (( SECONDS - t0 < limit )); do
    if ! is_ours "$pid" "$dir"; then
      echo "cass-node: $node exited during startup; end of $dir/logs/stdout.log:" >&2
      tail -n 30 "$dir/logs/stdout.log" >&2 || true
      exit 2
    fi
    if probe "$ADDR" "$TLS"; then
      if [ "$AUTH" != 1 ] || [ "$FRESH" != 1 ] ||
         grep -q "Created default superuser role" "$dir/logs/system.log" 2>/dev/null; then
        local boot=""
        [ -f "$dir/started" ] && boot=$(awk -v a="$(cat "$dir/started")" -v b="$(date +%s.%N)" \
                                          'BEGIN { printf " (%.1f s after start)", b - a }')
        echo "$node ready on $ADDR:9042$boot"
        return 0
      fi
    fi
    sleep 0.5
  done
  echo "cass-node: $node not ready after $limit s; end of $dir/logs/system.log:" >&2
  tail -n 30 "$dir/logs/system.log" >&2 || true
  exit 1
}

status() {
  local node=$1 dir="$WORK/$1" pid ADDR TLS
  [ -f "$dir/pid" ] && [ -f "$dir/node.env" ] || return 1
  pid=$(cat "$dir/pid")
  is_ours "$pid" "$dir" || return 1
  # shellcheck disable=SC1091
  . "$dir/node.env"
  probe "$ADDR" "$TLS" || return 3
}

stop() {
  local node=$1 dir="$WORK/$1" pid limit
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  limit=$(( ${CASS_STOP_TIMEOUT:-30} * 10 ))
  if is_ours "$pid" "$dir"; then
    kill -TERM "$pid" 2>/dev/null || true      # shutdown hook drains and exits
    for _ in $(seq "$limit"); do is_ours "$pid" "$dir" || break; sleep 0.1; done
    if is_ours "$pid" "$dir"; then
      echo "cass-node: $node ignored SIGTERM for ${CASS_STOP_TIMEOUT:-30} s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do is_ours "$pid" "$dir" || break; sleep 0.1; done
    fi
  fi
  rm -f "$dir/pid"
}

# nodetool runs from the same jars; on JDK 17 it needs a few of the server's module flags.
nodetool() {
  local node=$1 dir="$WORK/$1" JMX=""
  shift
  [ -f "$dir/node.env" ] || die "$node was not started"
  # shellcheck disable=SC1091
  . "$dir/node.env"
  [ -n "$JMX" ] || die "$node was started without CASS_JMX_PORT: no JMX for nodetool"
  mkdir -p "$dir/tmp"
  "$(pick_java)" -Xmx128m -XX:TieredStopAtLevel=1 \
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED \
    --add-exports java.base/jdk.internal.ref=ALL-UNNAMED \
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
    --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/jdk.internal.ref=ALL-UNNAMED \
    "-Dcassandra.logdir=$dir/tmp" "-Dlogback.configurationFile=$HERE/logback.xml" \
    -cp "$(lib_dir)/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$JMX" "$@"
}

cmd=${1:-}
case $cmd in
  start)  [ $# -eq 3 ] || usage; start "$2" "$3" ;;
  wait)   [ $# -ge 2 ] || usage; wait_ready "$2" ;;
  stop)   [ $# -ge 2 ] || usage; stop "$2" ;;
  status) [ $# -ge 2 ] || usage; rc=0; status "$2" || rc=$?; exit "$rc" ;;
  tls)    tls ;;
  lib)    lib_dir ;;
  nodetool) [ $# -ge 3 ] || usage; shift; nodetool "$@" ;;
  *)      usage ;;
esac
