#!/usr/bin/env bash
# Installs what dyad needs to build and test, from the distribution's packages.
#   bash scripts/setup.sh [--sanitize] [--dry-run]
# Supported: Debian 12 and 13, Ubuntu 22.04 and 24.04 (other systems: it says what to install and stops).
# Ubuntu 22.04's CMake (3.22) is older than the 3.25 the presets need: there a CMake from PyPI is installed
# into /usr/local/bin, ahead of /usr/bin on the PATH. Idempotent: when everything is present it only checks
# (well under a second). --dry-run prints what it would do and changes nothing. The CUDA toolkit and cuDNN
# are not distribution packages here; the build detects them (DYAD_WITH_CUDA=AUTO).
set -euo pipefail

sanitize=0
dry_run=0
for arg in "$@"; do
  case $arg in
    --sanitize) sanitize=1 ;;
    --dry-run) dry_run=1 ;;
    *) echo "setup: unknown argument '$arg' (--sanitize, --dry-run)" >&2; exit 2 ;;
  esac
done

# Build tools, the test framework (Catch2 v2 or v3, whichever the release ships), stb, Google Benchmark,
# zlib, nlohmann/json, CLI11, Open MPI (the distributed API and its 2- and 3-rank tests), and Fashion-MNIST
# for the trainer's default run.
packages=(g++ make cmake pkg-config catch2 libstb-dev libbenchmark-dev zlib1g-dev nlohmann-json3-dev libcli11-dev
  openmpi-bin libopenmpi-dev dataset-fashion-mnist)
# --sanitize: also what the sanitize and tsan presets need (clang, its sanitizer and libFuzzer runtimes,
# LLVM's OpenMP with the Archer tool).
if [ $sanitize -eq 1 ]; then
  packages+=(clang libclang-rt-dev libomp-dev)
fi

# Which system this is (DYAD_OS_RELEASE points elsewhere for tests of this script).
os_release=${DYAD_OS_RELEASE:-/etc/os-release}
id=unknown
version=""
name="an unknown system"
if [ -r "$os_release" ]; then
  id=$(. "$os_release" && echo "${ID:-unknown}")
  version=$(. "$os_release" && echo "${VERSION_ID:-}")
  name=$(. "$os_release" && echo "${PRETTY_NAME:-$id $version}")
fi
case "$id $version" in
  "debian 12" | "debian 13" | "ubuntu 22.04" | "ubuntu 24.04") ;;
  *)
    echo "setup: $name is not supported by this script (Debian 12 or 13, Ubuntu 22.04 or 24.04)." >&2
    echo "setup: install by hand: a C++17 compiler, CMake >= 3.25, Catch2 (v2 or v3), stb, Google Benchmark," >&2
    echo "setup: zlib, nlohmann/json, CLI11 and OpenMP; Fashion-MNIST's four IDX files for the default run." >&2
    exit 1
    ;;
esac

# CMake >= 3.25 (cmake --workflow and the presets' version). Only Ubuntu 22.04 ships an older one.
cmake_from_pypi=0
if [ "$id $version" = "ubuntu 22.04" ]; then
  # (DYAD_CMAKE_VERSION stands in for the installed version in tests of this script.)
  have=${DYAD_CMAKE_VERSION:-$(cmake --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' || echo 0)}
  if [ "$(printf '%s\n' 3.25 "$have" | sort -V | head -1)" != 3.25 ]; then
    cmake_from_pypi=1
    packages+=(python3-pip)
  fi
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ $dry_run -eq 1 ]; then
  echo "setup: $name: supported"
  echo "setup: would install: ${missing[*]:-(nothing)}"
  [ $cmake_from_pypi -eq 1 ] && echo "setup: would install CMake >= 3.25 from PyPI into /usr/local/bin"
  exit 0
fi

if [ ${#missing[@]} -eq 0 ] && [ $cmake_from_pypi -eq 0 ]; then
  echo "setup: all build dependencies are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $cmake_from_pypi -eq 1 ]; then
  echo "setup: $name ships CMake $(cmake --version | head -1 | grep -o '[0-9][0-9.]*'): installing CMake >= 3.25 from PyPI"
  $sudo python3 -m pip install -q 'cmake>=3.25,<4'
  hash -r
  new=$(cmake --version | head -1 | grep -o '[0-9][0-9.]*')
  if [ "$(printf '%s\n' 3.25 "$new" | sort -V | head -1)" != 3.25 ]; then
    echo "setup: cmake on the PATH is still $new: put /usr/local/bin before /usr/bin and run again" >&2
    exit 1
  fi
fi
echo "setup: done"
