#!/usr/bin/env bash
# `make deb`: builds the Debian binary package. dpkg-buildpackage wants debian/ at the source root, so
# the source tree is staged under build/deb/tandem-<version>/ with packaging/debian/ as its debian/,
# the unit from packaging/systemd/, and the conffile made from config/tandem.yaml with empty contact
# points (an unconfigured proxy must fail `tandem --check`, not dial 127.0.0.2). Output: build/deb/*.deb.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${DEB_OUT:-$root/build/deb}"
cd "$root"

ver=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
upstream="${ver%-*}"
cmake_ver=$(sed -n 's/^project(tandem VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if [ "$upstream" != "$cmake_ver" ]; then
  echo "build-deb: packaging/debian/changelog is at $upstream but CMakeLists.txt at $cmake_ver" >&2
  exit 1
fi

stage="$out/tandem-$upstream"
rm -rf "$stage"
rm -f "$out"/tandem_* "$out"/tandem-dbgsym_*
mkdir -p "$stage"
tar -C "$root" --exclude=./build --exclude='./build-*' --exclude=./.git --exclude='__pycache__' \
    --exclude=.pytest_cache -cf - . | tar -C "$stage" -xf -
rm -rf "$stage/debian"
cp -r packaging/debian "$stage/debian"
cp packaging/systemd/tandem.service "$stage/debian/tandem.service"

# The packaged conffile: the annotated example with its sample contact points blanked.
sed -e 's/^origin_contact_points:.*/origin_contact_points: ""  # required: set before starting tandem/' \
    -e 's/^target_contact_points:.*/target_contact_points: ""  # required: set before starting tandem/' \
    -e 's/^# This example uses .* as contact points;.*/# The contact points are empty and must be set; every other value shown is the default./' \
    config/tandem.yaml > "$stage/debian/tandem.yaml"
for c in origin target; do
  grep -q "^${c}_contact_points: \"\"  # required" "$stage/debian/tandem.yaml" || {
    echo "build-deb: config/tandem.yaml has no '${c}_contact_points:' line to blank" >&2
    exit 1
  }
done

# The full build output (compiler lines included) goes to build/deb/build.log; its end is shown on failure.
log="$out/build.log"
cd "$stage"
if ! DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}" dpkg-buildpackage -b -us -uc >"$log" 2>&1; then
  grep -v '^\[[0-9]*/[0-9]*\] ' "$log" | tail -40 >&2
  echo "build-deb: dpkg-buildpackage failed; full output in $log" >&2
  exit 1
fi
ls -l "$out"/*.deb "$out"/*.changes
