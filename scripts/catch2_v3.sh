#!/usr/bin/env bash
# Builds Catch2 v3 into a private prefix on a Debian 12 machine, to check that dyad's tests build and pass
# with v3 (Debian 13 and Ubuntu 24.04 ship v3; Debian 12 ships v2). Debian 13's binary package is built
# with GCC 14 and does not link with Debian 12's GCC 12, so its source package is fetched (through a
# private apt configuration with a trixie deb-src line: the machine's own sources are left alone) and
# built here.
#
#   bash scripts/catch2_v3.sh PREFIX        (then configure dyad with -DDYAD_CATCH2=3 -DCMAKE_PREFIX_PATH=PREFIX)
#
# Does nothing when PREFIX already holds a Catch2 v3. Needs network access to deb.debian.org, dpkg-dev
# (dpkg-source), CMake and a C++ compiler. About two minutes on two cores.
set -euo pipefail
prefix=$(realpath -m "${1:?usage: bash scripts/catch2_v3.sh PREFIX}")
if compgen -G "$prefix/lib*/cmake/Catch2/Catch2ConfigVersion.cmake" >/dev/null &&
  grep -q 'PACKAGE_VERSION "3\.' "$prefix"/lib*/cmake/Catch2/Catch2ConfigVersion.cmake; then
  echo "catch2_v3: $prefix already holds Catch2 v3"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src http://deb.debian.org/debian trixie main" >"$work/sources.list"
opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root" -qq)
apt-get "${opts[@]}" update
(cd "$work" && apt-get "${opts[@]}" source --download-only catch2)
dsc=$(ls "$work"/catch2_*.dsc | head -1)
dpkg-source --no-check -x "$dsc" "$work/src" >/dev/null
version=$(sed -n 's/^Version: //p' "$dsc")
case $version in 3.*) ;; *) echo "catch2_v3: trixie's catch2 is $version, not v3" >&2; exit 1 ;; esac
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCATCH_BUILD_TESTING=OFF \
  -DCATCH_INSTALL_DOCS=OFF -DCATCH_INSTALL_EXTRAS=ON -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$work/build" -j "$(nproc)" >/dev/null
cmake --install "$work/build" >/dev/null
echo "catch2_v3: Catch2 $version installed in $prefix"
