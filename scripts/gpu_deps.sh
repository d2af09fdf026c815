#!/usr/bin/env bash
# Downloads the Debian packages a bare GPU machine lacks (Catch2 v2, stb, nlohmann/json, Google Benchmark,
# zlib headers) into .deps/ (git-ignored), so scripts/gpu_check.sh can unpack them there without a network.
# Run on a Debian 12 machine with network: bash scripts/gpu_deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
cd .deps
apt-get download catch2 libstb-dev libstb0 nlohmann-json3-dev libbenchmark-dev libbenchmark1debian zlib1g-dev \
  dataset-fashion-mnist >/dev/null
ls -1 *.deb
