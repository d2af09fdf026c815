// Index kernels, naive vs omp (and CUDA), on the shapes a classifier and an embedding table use: gathering
// each row's target logit ((4096, 1000) -> (4096, 1)), an embedding lookup through index_select (8192 rows
// of a (20000, 256) table) forward and backward, and top-5 of (256, 1000) logits. gather and index_select
// are memory-bound (one load and one store per element moved): the rate is bytes/s of the rows moved (read
// + written). topk is compare-bound: the rate is the logits read once. The embedding backward is the case
// decision 38 (docs/architecture.md) names: 256 columns, each a serial loop over the 8192 indices.
// Args: kernels (0 naive, 1 omp), threads (omp only). BM_cuda_*: the CUDA kernels on device buffers.
// Run: bench_index --benchmark_min_time=0.2 (GPU only: --benchmark_filter=cuda)
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/index.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace dyad;
using bench::backends;
using bench::Config;
using bench::configure;
using bench::random_floats;

namespace {

constexpr int64_t kRows = 8192, kTable = 20000, kWidth = 256;  // the embedding lookup
constexpr int64_t kBatch = 4096, kClasses = 1000;              // the target-logit gather

// Seeded positions in [0, size).
std::vector<int64_t> positions(int64_t n, int64_t size, uint64_t seed) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    uint64_t s = seed * 6364136223846793005ULL + 1;
    for (auto& e : v) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        e = int64_t((s >> 33) % uint64_t(size));
    }
    return v;
}

// index_select(table, 0, index) as a gather: output (kRows, kWidth), index broadcast along dim 1.
GatherShape lookup_shape() {
    GatherShape s;
    s.ndim = 2, s.dim = 0, s.x_dim_size = kTable;
    s.size[0] = kRows, s.size[1] = kWidth;
    s.x_stride[0] = kWidth, s.x_stride[1] = 1;
    s.index_stride[0] = 1, s.index_stride[1] = 0;
    s.index_select = true;
    return s;
}

// gather(logits, 1, targets (kBatch, 1)).
GatherShape target_shape() {
    GatherShape s;
    s.ndim = 2, s.dim = 1, s.x_dim_size = kClasses;
    s.size[0] = kBatch, s.size[1] = 1;
    s.x_stride[0] = kClasses, s.x_stride[1] = 1;
    s.index_stride[0] = 1, s.index_stride[1] = 1;
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------- CPU
// Embedding lookup: 8192 rows of 1 KiB copied (8 MiB read + 8 MiB written). Memory-bound.
void BM_index_select_rows(benchmark::State& state) {
    const Config c = configure(state, "index_select (20000, 256)[8192]");
    const std::vector<float> table = random_floats(kTable * kWidth, 1);
    const std::vector<int64_t> index = positions(kRows, kTable, 2);
    std::vector<float> out(size_t(kRows * kWidth));
    const GatherShape s = lookup_shape();
    for (auto _ : state) {
        if (c.omp)
            omp::gather_fwd(out.data(), table.data(), index.data(), s);
        else
            naive::gather_fwd<float>(out.data(), table.data(), index.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 2 * kRows * kWidth * int64_t(sizeof(float)));
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
BENCHMARK(BM_index_select_rows)->Apply(backends);

// Its backward: 8192 rows of dy added into the table's gradient (dy read, dx read and written). omp gives
// each of the 256 columns to one thread, in naive's order.
void BM_index_select_rows_bwd(benchmark::State& state) {
    const Config c = configure(state, "index_select backward (20000, 256)[8192]");
    const std::vector<float> dy = random_floats(kRows * kWidth, 3);
    const std::vector<int64_t> index = positions(kRows, kTable, 2);
    std::vector<float> dx(size_t(kTable * kWidth), 0.0f);
    const GatherShape s = lookup_shape();
    for (auto _ : state) {
        if (c.omp)
            omp::gather_bwd(dx.data(), dy.data(), index.data(), s);
        else
            naive::gather_bwd<float>(dx.data(), dy.data(), index.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 3 * kRows * kWidth * int64_t(sizeof(float)));
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
BENCHMARK(BM_index_select_rows_bwd)->Apply(backends);

// One logit per row: 4096 scattered 4-byte reads (a cache line each), so latency-bound; bytes count the
// elements moved.
void BM_gather_targets(benchmark::State& state) {
    const Config c = configure(state, "gather (4096, 1000) -> (4096, 1)");
    const std::vector<float> logits = random_floats(kBatch * kClasses, 4);
    const std::vector<int64_t> index = positions(kBatch, kClasses, 5);
    std::vector<float> out(static_cast<size_t>(kBatch));
    const GatherShape s = target_shape();
    for (auto _ : state) {
        if (c.omp)
            omp::gather_fwd(out.data(), logits.data(), index.data(), s);
        else
            naive::gather_fwd<float>(out.data(), logits.data(), index.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 2 * kBatch * int64_t(sizeof(float)));
}
BENCHMARK(BM_gather_targets)->Apply(backends);

// Top-5 of 1000 classes for 256 rows: 1 MiB read; a partial sort per row (about n log k compares).
void BM_topk_logits(benchmark::State& state) {
    const Config c = configure(state, "topk k=5 of (256, 1000)");
    const std::vector<float> logits = random_floats(256 * kClasses, 6);
    std::vector<float> values(256 * 5);
    std::vector<int64_t> indices(256 * 5);
    const ReduceShape s{256, kClasses, 1};
    for (auto _ : state) {
        if (c.omp)
            omp::topk_fwd(values.data(), indices.data(), logits.data(), s, 5, true);
        else
            naive::topk_fwd<float>(values.data(), indices.data(), logits.data(), s, 5, true);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 256 * kClasses * int64_t(sizeof(float)));
}
BENCHMARK(BM_topk_logits)->Apply(backends);

// ---------------------------------------------------------------------------- CUDA
#if DYAD_WITH_CUDA
void BM_cuda_index_select_rows(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    cuda::use_device(0);
    const Tensor table = Tensor::from_vector(random_floats(kTable * kWidth, 1), {kTable * kWidth}).to(Device::cuda());
    const Tensor index = Tensor::from_vector(positions(kRows, kTable, 2), {kRows}).to(Device::cuda());
    const Tensor out = Tensor::empty({kRows * kWidth}, DType::float32, Device::cuda());
    const GatherShape s = lookup_shape();
    bench::time_gpu(state, "index_select (20000, 256)[8192]",
                    [&] { cuda::gather_fwd(out.data<float>(), table.data<float>(), index.data<int64_t>(), s); });
    state.SetBytesProcessed(state.iterations() * 2 * kRows * kWidth * int64_t(sizeof(float)));
    bench::set_pct_copy(state, 1, true);
}
BENCHMARK(BM_cuda_index_select_rows)->UseManualTime()->Unit(benchmark::kMicrosecond);

// One thread per column: 256 threads each add 8192 rows in order (decision 38's serial case).
void BM_cuda_index_select_rows_bwd(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    cuda::use_device(0);
    const Tensor dy = Tensor::from_vector(random_floats(kRows * kWidth, 3), {kRows * kWidth}).to(Device::cuda());
    const Tensor index = Tensor::from_vector(positions(kRows, kTable, 2), {kRows}).to(Device::cuda());
    const Tensor dx = Tensor::zeros({kTable * kWidth}, DType::float32, Device::cuda());
    const GatherShape s = lookup_shape();
    bench::time_gpu(state, "index_select backward (20000, 256)[8192]",
                    [&] { cuda::gather_bwd(dx.data<float>(), dy.data<float>(), index.data<int64_t>(), s); });
    state.SetBytesProcessed(state.iterations() * 3 * kRows * kWidth * int64_t(sizeof(float)));
    bench::set_pct_copy(state, 1, true);
}
BENCHMARK(BM_cuda_index_select_rows_bwd)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Rank counting with early exit (decision 39): about k * n * (1 + log(n / k)) compares per row.
void BM_cuda_topk_logits(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    cuda::use_device(0);
    const Tensor logits = Tensor::from_vector(random_floats(256 * kClasses, 6), {256 * kClasses}).to(Device::cuda());
    const Tensor values = Tensor::empty({256 * 5}, DType::float32, Device::cuda());
    const Tensor indices = Tensor::empty({256 * 5}, DType::int64, Device::cuda());
    const ReduceShape s{256, kClasses, 1};
    bench::time_gpu(state, "topk k=5 of (256, 1000)", [&] {
        cuda::topk_fwd(values.data<float>(), indices.data<int64_t>(), logits.data<float>(), s, 5, true);
    });
    state.SetBytesProcessed(state.iterations() * 256 * kClasses * int64_t(sizeof(float)));
}
BENCHMARK(BM_cuda_topk_logits)->UseManualTime()->Unit(benchmark::kMicrosecond);
#endif

BENCHMARK_MAIN();
