// Reduce kernels, naive vs omp, on the shapes the reference CNN reduces: a full sum (a loss), row sums
// (softmax denominators), column sums (the bias gradient of an (N*H*W, C) activation), a batch-norm-style
// sum over (N, H, W) through the frontend, and max/argmax over logits; and ResNet-18's batch-norm
// reduction, the per-channel sum over (N, H, W) of its (32, 64, 64, 64) layer1 activation, through the
// frontend and as the kernel's row sums of the permuted (C, N*H*W) copy. All are memory-bound: one add or
// compare per 4 bytes read, so the rate to watch is bytes/s (input bytes read once per iteration) and
// pct_copy, its fraction of the CPU's copy bandwidth for the same thread count (a 64 MiB copy, read +
// written, measured in the same process, bench/common.h). A kernel that only reads can pass 1: a copy
// also writes. Kernels are called directly on preallocated buffers, except BM_sum_nhw*.
// Args: kernels (0 naive, 1 omp), threads (omp only; naive is serial).
// The BM_cuda_* benchmarks run the CUDA kernels on device buffers on the baseline CNN's activations at
// batch 128 and ResNet-18's layer1 activation at batch 128 (no args; CUDA event timing); their pct_copy
// is against the GPU's device-to-device copy bandwidth.
// Run: bench_reduce --benchmark_min_time=0.2 (GPU only: --benchmark_filter=cuda)
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/reduce.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace dyad;
using bench::backends;
using bench::Config;
using bench::configure;
using bench::random_floats;

namespace {

std::string rs_str(const ReduceShape& s) {
    return "(" + std::to_string(s.outer) + ", " + std::to_string(s.reduce) + ", " + std::to_string(s.inner) + ")";
}

// y = sum over the reduce dim of x viewed as s; bytes = the input read once (the output is small).
void run_sum(benchmark::State& state, const ReduceShape& s) {
    const Config c = configure(state, rs_str(s));
    const int64_t n = s.outer * s.reduce * s.inner;
    const std::vector<float> x = random_floats(n, 1);
    std::vector<float> y(size_t(s.outer * s.inner));
    for (auto _ : state) {
        if (c.omp)
            omp::sum_fwd(y.data(), x.data(), s, 1.0f);
        else
            naive::sum_fwd<float>(y.data(), x.data(), s, 1.0f);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)));
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}

}  // namespace

// ---------------------------------------------------------------------------- sum
// Full sum of 8M floats: 32 MiB read, as large as a 32 MiB L3, so mostly from DRAM; one add per 4
// bytes: memory-bound. The omp kernel splits the single row into 64K-element chunks so every thread
// streams; naive is one double add chain (an add latency per element): about 1 element/ns here.
void BM_sum_all(benchmark::State& state) { run_sum(state, {1, 8 << 20, 1}); }
BENCHMARK(BM_sum_all)->Apply(backends);

// Row sums, (4096, 1024) over the last dim: 16 MiB read (from L3 where it is 32 MiB); memory-bound for
// omp (16 independent lanes), latency-bound for naive (one double add chain per row, as above).
void BM_sum_rows(benchmark::State& state) { run_sum(state, {4096, 1024, 1}); }
BENCHMARK(BM_sum_rows)->Apply(backends);

// Column sums, (1024, 4096) over the first dim: the bias gradient of an (N*H*W, C) activation. 16 MiB
// read; memory-bound. naive walks each column with a 16 KiB stride (a cache line and often a TLB miss
// per element used); omp streams whole rows into a 4 KiB row of partial sums.
void BM_sum_columns(benchmark::State& state) { run_sum(state, {1, 1024, 4096}); }
BENCHMARK(BM_sum_columns)->Apply(backends);

// dyad::sum(x, {0, 2, 3}) through the frontend (batch-norm statistics, the conv bias gradient). Dims 0
// and 2, 3 are not adjacent, so the frontend first copies x permuted to (C, N, H, W) (read + write), then
// row-sums it (read). Bytes count the input once: the rate is an effective one, about a third of the
// traffic.
void run_sum_nhw(benchmark::State& state, const Shape& shape) {
    const Config c = configure(state, "sum(x, {0, 2, 3}) " + shape_str(shape));
    manual_seed(1);
    const Tensor x = Tensor::randn(shape);
    for (auto _ : state) {
        const Tensor y = sum(x, {0, 2, 3});
        benchmark::DoNotOptimize(y.raw_data());
    }
    state.SetBytesProcessed(state.iterations() * shape_numel(shape) * int64_t(sizeof(float)));
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}

// The baseline CNN: (32, 64, 32, 32), 8 MiB of input.
void BM_sum_nhw(benchmark::State& state) { run_sum_nhw(state, {32, 64, 32, 32}); }
BENCHMARK(BM_sum_nhw)->Apply(backends);

// ResNet-18's batch norms in layer1: (32, 64, 64, 64), 32 MiB of input (from DRAM here).
void BM_sum_nhw_resnet(benchmark::State& state) { run_sum_nhw(state, {32, 64, 64, 64}); }
BENCHMARK(BM_sum_nhw_resnet)->Apply(backends);

// The row-sum half of the above for ResNet-18's layer1: 64 rows of 32*64*64 = 128K floats, (C, N*H*W)
// after the permuting copy. 32 MiB read; few long rows, which the omp kernel splits into chunks.
void BM_sum_channels_resnet(benchmark::State& state) { run_sum(state, {64, 32 * 64 * 64, 1}); }
BENCHMARK(BM_sum_channels_resnet)->Apply(backends);

// ---------------------------------------------------------------------------- max
// Max and argmax over the last dim of (4096, 200) logits (the predicted class): 3.2 MB read, about the
// size of L2 + L3 here; one compare per 4 bytes. naive's compare-and-branch chain is serial; omp finds
// the maximum in 16 lanes, then the first element equal to it (a second pass over a row still in L1).
void BM_max_rows(benchmark::State& state) {
    const ReduceShape s{4096, 200, 1};
    const Config c = configure(state, rs_str(s));
    const int64_t n = s.outer * s.reduce * s.inner;
    const std::vector<float> x = random_floats(n, 1);
    std::vector<float> y(size_t(s.outer * s.inner));
    std::vector<int32_t> idx(y.size());
    for (auto _ : state) {
        if (c.omp)
            omp::max_fwd(y.data(), idx.data(), x.data(), s);
        else
            naive::max_fwd<float>(y.data(), idx.data(), x.data(), s);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)));
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
BENCHMARK(BM_max_rows)->Apply(backends);

// ---------------------------------------------------------------------------- CUDA, batch 128
// Bytes: the input read once (the outputs are small), so the rate compares with a copy's read half.
namespace {

// The baseline CNN's activations at batch 128: (N, C, H, W) after conv1, conv2 and conv3; then ResNet-18's
// layer1 activation at batch 128 (128 MiB), whose batch norms reduce it per channel.
const Shape kCudaShapes[] = {{128, 32, 64, 64}, {128, 64, 32, 32}, {128, 128, 16, 16}, {128, 64, 64, 64}};

// Runs cuda::sum_fwd (or max_fwd) on x viewed as s: a device tensor of seeded normal values.
void run_cuda_reduce(benchmark::State& state, const ReduceShape& s, const std::string& what, bool is_max) {
    if (!bench::require_gpu(state)) return;
    const int64_t n = s.outer * s.reduce * s.inner, m = s.outer * s.inner;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = Tensor::from_vector(random_floats(n, 1), {n}).to(Device::cuda());
    const Tensor y = Tensor::empty({m}, DType::float32, Device::cuda());
    const Tensor idx = Tensor::empty({m}, DType::int32, Device::cuda());
    bench::time_gpu(state, what + " " + rs_str(s), [&] {
        if (is_max)
            cuda::max_fwd(y.data<float>(), idx.data<int32_t>(), x.data<float>(), s);
        else
            cuda::sum_fwd(y.data<float>(), x.data<float>(), s, 1.0f);
    });
#else
    (void)what, (void)is_max, (void)m;
#endif
    state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)));
    bench::set_pct_copy(state, 1, true);
}

// Sum over each (n, c) plane's H*W positions (global average pooling): rows of H*W, one block (4096 or
// 1024 elements) or one warp (256) per row.
void BM_cuda_sum_rows(benchmark::State& state) {
    const Shape& x = kCudaShapes[state.range(0)];
    run_cuda_reduce(state, {x[0] * x[1], x[2] * x[3], 1}, "sum rows", false);
}

// Sum over the batch, (N, C*H*W) -> (C*H*W): the column kernel (threads along the contiguous inner dim).
void BM_cuda_sum_batch(benchmark::State& state) {
    const Shape& x = kCudaShapes[state.range(0)];
    run_cuda_reduce(state, {1, x[0], x[1] * x[2] * x[3]}, "sum over N", false);
}

// Per-channel sums once x is (C, N*H*W) (what sum(x, {0, 2, 3}) reduces after its permuting copy): few
// long rows, each split into chunks across blocks, then a second pass over the partial sums.
void BM_cuda_sum_channels_permuted(benchmark::State& state) {
    const Shape& x = kCudaShapes[state.range(0)];
    run_cuda_reduce(state, {x[1], x[0] * x[2] * x[3], 1}, "sum per channel of (C, NHW)", false);
}

// The full sum of every element: one row split over about a thousand blocks.
void BM_cuda_sum_all(benchmark::State& state) {
    run_cuda_reduce(state, {1, shape_numel(kCudaShapes[state.range(0)]), 1}, "sum all", false);
}

// Max and argmax over each plane's H*W positions (global max pooling).
void BM_cuda_max_rows(benchmark::State& state) {
    const Shape& x = kCudaShapes[state.range(0)];
    run_cuda_reduce(state, {x[0] * x[1], x[2] * x[3], 1}, "max rows", true);
}

// dyad::sum(x, {0, 2, 3}) through the frontend, as batch norm and the conv bias gradient use it: a
// permuting copy to (C, N, H, W) (read + write), then the per-channel row sums, plus the allocations.
// Bytes count the input once: an effective rate.
void BM_cuda_sum_nhw(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const Shape shape = kCudaShapes[state.range(0)];
#if DYAD_WITH_CUDA
    const Tensor x = Tensor::from_vector(random_floats(shape_numel(shape), 1), shape).to(Device::cuda());
    bench::time_gpu(state, "sum(x, {0, 2, 3}) " + shape_str(shape), [&] {
        benchmark::DoNotOptimize(sum(x, {0, 2, 3}).raw_data());
    });
#endif
    state.SetBytesProcessed(state.iterations() * shape_numel(shape) * int64_t(sizeof(float)));
    bench::set_pct_copy(state, 1, true);
}

// The baseline CNN's shapes (0-2); all_cuda_shapes adds ResNet-18's (3).
void cuda_shapes(benchmark::internal::Benchmark* b) {
    b->ArgName("shape")->DenseRange(0, 2)->UseManualTime()->Unit(benchmark::kMicrosecond);
}
void all_cuda_shapes(benchmark::internal::Benchmark* b) {
    b->ArgName("shape")->DenseRange(0, 3)->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_cuda_sum_rows)->Apply(cuda_shapes);
BENCHMARK(BM_cuda_sum_batch)->Apply(cuda_shapes);
BENCHMARK(BM_cuda_sum_channels_permuted)->Apply(all_cuda_shapes);
BENCHMARK(BM_cuda_sum_all)->Apply(cuda_shapes);
BENCHMARK(BM_cuda_max_rows)->Apply(cuda_shapes);
BENCHMARK(BM_cuda_sum_nhw)->Apply(all_cuda_shapes);

BENCHMARK_MAIN();
