#!/usr/bin/env bash
# Builds packaging/tools/introspect.c against a CMake build's libtandem_core.a (same compiler, same
# sanitizers) and runs it: `introspect.sh BUILD_DIR keys|metrics`. The binary lands in
# BUILD_DIR/packaging/ and is rebuilt when the library or the source is newer.
set -euo pipefail
src_dir="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:?usage: introspect.sh BUILD_DIR keys|metrics}"
what="${2:?usage: introspect.sh BUILD_DIR keys|metrics}"
lib="$build/src/libtandem_core.a"
[ -f "$lib" ] || { echo "introspect: $lib not found; build first (make)" >&2; exit 1; }

cache="$build/CMakeCache.txt"
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$cache" 2>/dev/null || true)
bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache" 2>/dev/null || true)
cc="${cc:-cc}"
san=()
case "${bt,,}" in
  asan) san=(-fsanitize=address,undefined) ;;
  tsan) san=(-fsanitize=thread) ;;
esac
# The fuzz build adds -fsanitize=fuzzer-no-link to every object; a plain main() then needs the
# fuzzer's runtime hooks too, so link that build's objects the same way.
if grep -q 'fuzzer-no-link' "$cache" 2>/dev/null; then san+=(-fsanitize=fuzzer-no-link); fi

out="$build/packaging/introspect"
mkdir -p "$build/packaging"
if [ ! -x "$out" ] || [ "$lib" -nt "$out" ] || [ "$src_dir/packaging/tools/introspect.c" -nt "$out" ]; then
  pcs=(libuv openssl yaml-0.1 liblz4 zlib libmicrohttpd)
  pkg-config --exists libsystemd && pcs+=(libsystemd)
  # shellcheck disable=SC2046 # word splitting of pkg-config output is intended
  "$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -g "${san[@]}" \
    -I "$src_dir/include" -I "$build/generated" \
    "$src_dir/packaging/tools/introspect.c" "$lib" \
    $(pkg-config --libs "${pcs[@]}") -lsnappy -lpthread -lm -o "$out"
fi
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" exec "$out" "$what"
