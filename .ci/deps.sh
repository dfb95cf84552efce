#!/usr/bin/env bash
# Installs everything tandem's build and tests need on a fresh Debian 12 machine (run as root, or with
# sudo available). Idempotent: packages already present are not reinstalled. Called by `make deps`.
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
            libuv1-dev libssl-dev libyaml-dev liblz4-dev libsnappy-dev zlib1g-dev libcmocka-dev
            libmicrohttpd-dev libsystemd-dev python3 python3-venv openssl
            prometheus gnuplot-nox gdb haproxy lintian debhelper fakeroot dpkg-dev logrotate)
# prometheus: promtool checks of /metrics and the alert rules; gnuplot-nox: the benchmark plot;
# gdb: the benchmark's allocation count; haproxy: the benchmark's reference TCP relay (low-load latency);
# lintian, debhelper, fakeroot, dpkg-dev: `make deb`.

missing=()
for p in "${build_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "deps: build packages present"
fi

# The end-to-end tier: JDK 17 + Maven + Cassandra jars, and the Python test virtualenv.
bash .ci/deps-test.sh
