#!/usr/bin/env bash
# scripts/setup.sh's decisions without installing anything (--dry-run), on stand-in os-release files: the
# four supported releases pass, Ubuntu 22.04 with its CMake 3.22 gets a CMake from PyPI, anything else is
# refused with what to install.
#   bash tests/scripts/test_setup.sh SOURCE_DIR WORK_DIR
set -uo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fails=0
release() { # release FILE ID VERSION NAME
  printf 'ID=%s\nVERSION_ID="%s"\nPRETTY_NAME="%s"\n' "$2" "$3" "$4" >"$1"
}
check() { # check WHAT EXPECTED_RC PATTERN [ENV...] -- runs setup.sh --dry-run
  local what=$1 want=$2 pattern=$3
  shift 3
  out=$(env "$@" bash "$src/scripts/setup.sh" --dry-run 2>&1)
  rc=$?
  if [ $rc -eq "$want" ] && echo "$out" | grep -qE "$pattern"; then
    echo "ok: $what"
  else
    echo "FAILED: $what: exit $rc (expected $want), output: $out"
    fails=$((fails + 1))
  fi
}
release "$work/debian12" debian 12 "Debian GNU/Linux 12 (bookworm)"
release "$work/debian13" debian 13 "Debian GNU/Linux 13 (trixie)"
release "$work/ubuntu2204" ubuntu 22.04 "Ubuntu 22.04.5 LTS"
release "$work/ubuntu2404" ubuntu 24.04 "Ubuntu 24.04.3 LTS"
release "$work/fedora" fedora 41 "Fedora Linux 41"
check "Debian 12 is supported" 0 "Debian GNU/Linux 12 .*supported" DYAD_OS_RELEASE="$work/debian12"
check "Debian 13 is supported" 0 "trixie.*supported" DYAD_OS_RELEASE="$work/debian13"
check "Ubuntu 24.04 needs no CMake from PyPI" 0 "24.04.*supported" DYAD_OS_RELEASE="$work/ubuntu2404"
out=$(DYAD_OS_RELEASE="$work/ubuntu2404" bash "$src/scripts/setup.sh" --dry-run 2>&1)
if echo "$out" | grep -q PyPI; then echo "FAILED: Ubuntu 24.04 would get CMake from PyPI"; fails=$((fails + 1)); fi
check "Ubuntu 22.04 with CMake 3.22 gets CMake from PyPI" 0 "CMake >= 3.25 from PyPI" \
  DYAD_OS_RELEASE="$work/ubuntu2204" DYAD_CMAKE_VERSION=3.22.1
check "Ubuntu 22.04 with a new CMake keeps it" 0 "supported" DYAD_OS_RELEASE="$work/ubuntu2204" DYAD_CMAKE_VERSION=3.30.2
out=$(DYAD_OS_RELEASE="$work/ubuntu2204" DYAD_CMAKE_VERSION=3.30.2 bash "$src/scripts/setup.sh" --dry-run 2>&1)
if echo "$out" | grep -q PyPI; then echo "FAILED: a new CMake was replaced"; fails=$((fails + 1)); fi
check "another system is refused with what to install" 1 "Fedora Linux 41 is not supported.*" DYAD_OS_RELEASE="$work/fedora"
check "a missing os-release is refused" 1 "not supported" DYAD_OS_RELEASE="$work/none"
out=$(bash "$src/scripts/setup.sh" --bogus 2>&1)
[ $? -eq 2 ] && echo "ok: a bad argument is named" || { echo "FAILED: bad argument: $out"; fails=$((fails + 1)); }
[ $fails -eq 0 ] && echo "all checks passed" || echo "$fails check(s) failed"
[ $fails -eq 0 ]
