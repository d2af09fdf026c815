// The CPU's FP32 FMA peak: the ceiling that bench_gemm's and bench_conv's FLOP/s are compared with. Each
// thread runs 12 independent chains of vector FMAs with no loads or stores (the chain kernels live in
// bench/common.h, which the other benchmarks use to measure the same peak in-process for pct_peak).
// Also the copy bandwidth of a 64 MiB buffer (bench/common.h's cpu_copy_gbs), the ceiling of the
// memory-bound kernels' pct_copy, on 1 and all threads.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/common.h"

namespace {

using dyad::bench::FmaChainFn;
using dyad::bench::kFmaWindowSteps;

// Runs fn on `threads` threads at once (1: on the calling thread), one window of about 5 ms per
// iteration, and reports FLOP/s over all of them.
void run_peak(benchmark::State& state, FmaChainFn fn, int lanes, int threads) {
    for (auto _ : state) benchmark::DoNotOptimize(dyad::bench::run_fma_chains(fn, kFmaWindowSteps, threads));
    state.counters["FLOP/s"] = benchmark::Counter(dyad::bench::fma_chains_flop(kFmaWindowSteps, lanes, threads),
                                                  benchmark::Counter::kIsIterationInvariantRate);
    state.counters["threads"] = threads;
}

// Copies 64 MiB on `threads` threads (read + written bytes): what cpu_copy_gbs measures, as a benchmark
// on the same clock (the calling thread's CPU time, Google Benchmark's default).
void run_copy(benchmark::State& state, int threads) {
    const int64_t n = int64_t(64) << 20;
    std::vector<char> src(size_t(n), 1), dst(size_t(n), 0);
    dyad::bench::parallel_memcpy(dst.data(), src.data(), n, threads);
    for (auto _ : state) {
        dyad::bench::parallel_memcpy(dst.data(), src.data(), n, threads);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 2 * n);
    state.counters["threads"] = threads;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const int all = omp_get_max_threads();
    const std::vector<int> thread_counts = all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
#if DYAD_BENCH_X86
    __builtin_cpu_init();
    // Compute-bound by construction: 2 FLOP per lane per FMA, 2 FMA pipes per core (Zen 3, Skylake-SP).
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        for (int threads : thread_counts)
            benchmark::RegisterBenchmark(("peak_fma_avx2/threads:" + std::to_string(threads)).c_str(), run_peak,
                                         dyad::bench::fma_chains_avx2, 8, threads)
                ->UseRealTime();
    } else {
        std::fprintf(stderr, "no AVX2+FMA on this CPU: AVX2 peak skipped\n");
    }
    if (__builtin_cpu_supports("avx512f")) {
        for (int threads : thread_counts)
            benchmark::RegisterBenchmark(("peak_fma_avx512/threads:" + std::to_string(threads)).c_str(), run_peak,
                                         dyad::bench::fma_chains_avx512, 16, threads)
                ->UseRealTime();
    } else {
        std::fprintf(stderr, "no AVX-512 on this CPU: AVX-512 peak skipped\n");
    }
#else
    std::fprintf(stderr, "not an x86 CPU: FMA peaks skipped\n");
#endif
    // Memory-bound by construction: 64 MiB source and destination, twice the reference machine's L3.
    for (int threads : thread_counts)
        benchmark::RegisterBenchmark(("copy_64MiB/threads:" + std::to_string(threads)).c_str(), run_copy, threads)
            ->Unit(benchmark::kMillisecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
