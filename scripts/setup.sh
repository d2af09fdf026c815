#!/usr/bin/env bash
# Installs what dyad needs to build and test on Debian 12, from Debian's packages only.
#   bash scripts/setup.sh [--sanitize]
# Idempotent: when everything is present it only checks (well under a second).
# The CUDA toolkit and cuDNN are not Debian packages here; the build detects them (DYAD_WITH_CUDA=AUTO).
set -euo pipefail

packages=(g++ make cmake pkg-config catch2 libstb-dev nlohmann-json3-dev libbenchmark-dev zlib1g-dev dataset-fashion-mnist)
# --sanitize: also what the sanitize and tsan presets need (clang, its sanitizer and libFuzzer runtimes,
# LLVM's OpenMP with the Archer tool).
if [ "${1:-}" = "--sanitize" ]; then
  packages+=(clang libclang-rt-dev libomp-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all build dependencies are installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
