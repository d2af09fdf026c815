// Reduce kernels, naive vs omp, on the shapes the reference CNN reduces: a full sum (a loss), row sums
// (softmax denominators), column sums (the bias gradient of an (N*H*W, C) activation), a batch-norm-style
// sum over (N, H, W) through the frontend, and max/argmax over logits. All are memory-bound: one add or
// compare per 4 bytes read, so the rate to watch is bytes/s (input bytes read once per iteration) against
// bench_elementwise's BM_memcpy. Kernels are called directly on preallocated buffers, except BM_sum_nhw.
// Args: kernels (0 naive, 1 omp), threads (omp only; naive is serial).
// Run: bench_reduce --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/reduce.h"

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

// Batch-norm statistics: dyad::sum(x, {0, 2, 3}) of (32, 64, 32, 32), through the frontend. 8 MiB of
// input; dims 0 and 2, 3 are not adjacent, so the frontend first copies x permuted to (C, N, H, W)
// (8 MiB read + 8 MiB written), then row-sums it (8 MiB read). Bytes count the input once: the rate is
// an effective one, about a third of the traffic.
void BM_sum_nhw(benchmark::State& state) {
    const Shape shape = {32, 64, 32, 32};
    configure(state, "sum(x, {0, 2, 3}) " + shape_str(shape));
    manual_seed(1);
    const Tensor x = Tensor::randn(shape);
    for (auto _ : state) {
        const Tensor y = sum(x, {0, 2, 3});
        benchmark::DoNotOptimize(y.raw_data());
    }
    state.SetBytesProcessed(state.iterations() * shape_numel(shape) * int64_t(sizeof(float)));
}
BENCHMARK(BM_sum_nhw)->Apply(backends);

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
}
BENCHMARK(BM_max_rows)->Apply(backends);

BENCHMARK_MAIN();
