#!/usr/bin/env bash
# Builds, on this machine (no GPU needed: the CUDA toolkit, cuBLAS and cuDNN only compile and link here),
# what a run on the GPU machine needs, and puts it into one git-ignored folder that travels with the
# working tree: the CUDA test executable, the fault test, the trainer, the training-step and pipeline
# benchmarks (what scripts/compare.sh runs), libdyad (the trainer's), Google Benchmark's library (Debian's
# soname is not Ubuntu's), a trimmed Fashion-MNIST, and a manifest (commit, flags, sizes,
# the dependency check). scripts/gpu_run.sh runs it there, stage by stage, with no build.
#
#   bash scripts/gpu_pack.sh [--arch "90"] [--pack DIR] [--build DIR] [--train-images N] [--offline]
#
# --arch: CUDA architectures (default 90: H100/H200; "80;90" adds the A100). --pack: the folder (default
# gpu-pack). --build: the build folder (default build-pack). --train-images: Fashion-MNIST training images
# kept (default 20000; the 10,000 test images are kept whole). The dependency check
# (scripts/gpu_pack_check.py) also proves that every cuDNN, cuBLAS and CUDA runtime function the pack
# imports exists in the releases the GPU machine has (cuDNN 9.14, the CUDA 13.0 cuBLAS and runtime; the
# pack is built against the newer headers here), reading those libraries from NVIDIA's wheels on PyPI;
# --offline skips that part. Exit status 0 when the build and the dependency check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=90
pack=gpu-pack
build=build-pack
train_images=20000
# The oldest releases the GPU machine may have (../shared/guide/gpu-machine.md: cuDNN 9.14, CUDA 13.0).
against=(--against nvidia-cudnn-cu13==9.14.0.64 --against nvidia-cublas==13.0.0.19
  --against nvidia-cuda-runtime==13.0.48)
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift ;;
    --pack) pack=$2; shift ;;
    --build) build=$2; shift ;;
    --train-images) train_images=$2; shift ;;
    --offline) against=() ;;
    *) echo "gpu_pack.sh: unknown argument '$1' (see the comment at the top of scripts/gpu_pack.sh)" >&2; exit 2 ;;
  esac
  shift
done
start=$(date +%s)
log() { echo "[$(($(date +%s) - start)) s] $*"; }

# The executables a GPU run uses (scripts/gpu_run.sh, scripts/compare.sh).
# The tests and benchmarks link dyad statically (they reach internal kernels), so each carries the GPU code
# (about 6 MiB for sm_90): the pack holds the ones a GPU run uses, not every per-family benchmark.
targets=(dyad_cuda_tests dyad_cuda_fault_test dyad-tinyimagenet bench_train_step bench_pipeline)

# Every binary finds libdyad and Google Benchmark in the pack's lib/ ($ORIGIN/../lib), and the CUDA
# libraries where the GPU machine's loader finds them.
log "configuring $build (CUDA architectures $arch)"
flags=(-DCMAKE_BUILD_TYPE=Release -DDYAD_WITH_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch"
  -DCMAKE_CUDA_RUNTIME_LIBRARY=Shared -DDYAD_WERROR=ON -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON
  '-DCMAKE_INSTALL_RPATH=$ORIGIN/../lib')
mkdir -p "$build"
cmake -S . -B "$build" "${flags[@]}" >"$build/pack-configure.log" 2>&1 || { tail -20 "$build/pack-configure.log"; exit 1; }
log "building ${#targets[@]} targets"
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >"$build/pack-build.log" 2>&1 ||
  { grep -m 20 -E "error|Error" "$build/pack-build.log"; exit 1; }

log "packing into $pack"
rm -rf "$pack"
mkdir -p "$pack/bin" "$pack/lib" "$pack/data/fashion-mnist"
for t in "${targets[@]}"; do cp "$build/bin/$t" "$pack/bin/"; done
# Real files under their sonames (links may not travel).
cp -L "$build/lib/libdyad.so.0" "$pack/lib/libdyad.so.0"
bench_lib=$(ldd "$build/bin/bench_train_step" | awk '/libbenchmark/ {print $3}')
cp -L "$bench_lib" "$pack/lib/$(basename "$bench_lib")"
strip --strip-debug "$pack"/bin/* "$pack"/lib/*

# Fashion-MNIST, trimmed: the first N training images and labels, all test images.
fashion=/usr/share/datasets/fashion-mnist
if [ -d "$fashion" ]; then
  python3 - "$fashion" "$pack/data/fashion-mnist" "$train_images" <<'EOF'
import gzip, shutil, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for stem, per_item in (("train-images-idx3-ubyte", 28 * 28), ("train-labels-idx1-ubyte", 1)):
    with gzip.open(f"{src}/{stem}.gz", "rb") as f:
        data = f.read()
    header = 16 if per_item > 1 else 8
    count = struct.unpack(">I", data[4:8])[0]
    keep = min(n, count)
    out = data[:4] + struct.pack(">I", keep) + data[8:header] + data[header:header + keep * per_item]
    with open(f"{dst}/{stem}.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(out)
for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
    shutil.copyfile(f"{src}/{stem}.gz", f"{dst}/{stem}.gz")
EOF
else
  log "no Fashion-MNIST at $fashion (bash scripts/setup.sh installs it): the pack has no data set"
  rmdir "$pack/data/fashion-mnist"
fi

# The manifest: what was built, from which commit, with which flags, and the dependency check.
manifest=$pack/MANIFEST.md
{
  echo "# dyad GPU pack"
  echo
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  echo "- made: $(date -u '+%Y-%m-%d %H:%M UTC') on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "- compilers: $(g++ --version | head -1); $(nvcc --version | tail -2 | head -1)"
  echo "- CUDA headers: CUDA $(awk '/define CUDART_VERSION/ {printf "%d.%d", $3 / 1000, ($3 % 1000) / 10}' /usr/local/cuda/include/cuda_runtime_api.h), cuBLAS $(awk '/define CUBLAS_VER_(MAJOR|MINOR|PATCH) / {printf "%s%s", sep, $3; sep="."}' /usr/local/cuda/include/cublas_api.h), cuDNN $(awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) / {printf "%s%s", sep, $3; sep="."}' /usr/local/cuda/include/cudnn_version.h)"
  echo "- CMake flags: ${flags[*]}"
  echo "- targets: ${targets[*]}"
  echo "- data: $(ls "$pack/data/fashion-mnist" 2>/dev/null | tr '\n' ' ')(Fashion-MNIST, first $train_images training images)"
  echo "- total size: $(du -sb "$pack" | cut -f1 | awk '{printf "%.1f MiB", $1 / 1048576}')"
  echo
} >"$manifest"
status=0
python3 scripts/gpu_pack_check.py "$pack" "${against[@]}" >>"$manifest" || status=1
echo >>"$manifest"
echo "Run on the GPU machine from the repository root: bash scripts/gpu_run.sh smoke|tests|sanitize|perf|compile" >>"$manifest"
cat "$manifest"
log "done: $pack ($(du -sh "$pack" | cut -f1))"
exit $status
