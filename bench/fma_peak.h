// The CPU's FP32 FMA peak, the ceiling that compute-bound CPU work is read against: independent chains of
// vector FMAs on every thread, no loads or stores. Shared by the benchmarks (bench/common.h: pct_peak,
// pct_floor; bench_peak reports it) and the acceleration study of the example program (its fraction-of-peak
// chart), so both read their rates against the same measurement. Needs OpenMP; no Google Benchmark.
#pragma once
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // AVX2/AVX-512 intrinsics, compiled per function with target attributes
#define DYAD_BENCH_X86 1
#else
#define DYAD_BENCH_X86 0
#endif

namespace dyad::bench {

// Each thread runs kFmaChains independent chains of vector FMAs (acc = acc * x + y), enough to cover the
// FMA latency times the number of FMA pipes on current x86 cores (Zen 3: 2 pipes x 4 cycles = 8 in
// flight), with no loads or stores in the loop, so the FMA pipes are the only limit.
constexpr int kFmaChains = 12;          // the a0 ... a11 below
constexpr int64_t kFmaSteps = 1 << 16;  // loop trips per call: 12.6 MFLOP with AVX2

// x < 1 and y > 0 make every chain converge to y / (1 - x) = 1: no overflow, no denormals (which would
// slow the FMAs down). Read at run time so the compiler cannot fold the loop.
inline volatile float g_fma_x = 0.999999f, g_fma_y = 1e-6f;

// A chain kernel: runs `steps` trips and returns the sum of the chains so the work is observable.
using FmaChainFn = float (*)(int64_t steps);

#if DYAD_BENCH_X86
// steps x 12 chains x 8 lanes x 2 FLOP.
__attribute__((target("avx2,fma"))) inline float fma_chains_avx2(int64_t steps) {
    const __m256 x = _mm256_set1_ps(g_fma_x), y = _mm256_set1_ps(g_fma_y);
    // Twelve named registers, not an array: the asm barrier below would pin an array to memory.
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3);
    __m256 a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7);
    __m256 a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    for (int64_t s = 0; s < steps; s++) {
        a0 = _mm256_fmadd_ps(a0, x, y), a1 = _mm256_fmadd_ps(a1, x, y), a2 = _mm256_fmadd_ps(a2, x, y);
        a3 = _mm256_fmadd_ps(a3, x, y), a4 = _mm256_fmadd_ps(a4, x, y), a5 = _mm256_fmadd_ps(a5, x, y);
        a6 = _mm256_fmadd_ps(a6, x, y), a7 = _mm256_fmadd_ps(a7, x, y), a8 = _mm256_fmadd_ps(a8, x, y);
        a9 = _mm256_fmadd_ps(a9, x, y), a10 = _mm256_fmadd_ps(a10, x, y), a11 = _mm256_fmadd_ps(a11, x, y);
        // Opaque to the optimiser: the chains stay 12 separate FMAs per trip (no folding or reassociation).
        __asm__ volatile(""
                         : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7), "+x"(a8),
                           "+x"(a9), "+x"(a10), "+x"(a11));
    }
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                                   _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7))),
                                     _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, sum);
    float total = 0;
    for (float v : lanes) total += v;
    return total;
}

// The same with 16-float vectors: steps x 12 x 16 lanes x 2 FLOP.
__attribute__((target("avx512f"))) inline float fma_chains_avx512(int64_t steps) {
    const __m512 x = _mm512_set1_ps(g_fma_x), y = _mm512_set1_ps(g_fma_y);
    __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2), a3 = _mm512_set1_ps(3);
    __m512 a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5), a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7);
    __m512 a8 = _mm512_set1_ps(8), a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
    for (int64_t s = 0; s < steps; s++) {
        a0 = _mm512_fmadd_ps(a0, x, y), a1 = _mm512_fmadd_ps(a1, x, y), a2 = _mm512_fmadd_ps(a2, x, y);
        a3 = _mm512_fmadd_ps(a3, x, y), a4 = _mm512_fmadd_ps(a4, x, y), a5 = _mm512_fmadd_ps(a5, x, y);
        a6 = _mm512_fmadd_ps(a6, x, y), a7 = _mm512_fmadd_ps(a7, x, y), a8 = _mm512_fmadd_ps(a8, x, y);
        a9 = _mm512_fmadd_ps(a9, x, y), a10 = _mm512_fmadd_ps(a10, x, y), a11 = _mm512_fmadd_ps(a11, x, y);
        __asm__ volatile(""
                         : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7), "+v"(a8),
                           "+v"(a9), "+v"(a10), "+v"(a11));
    }
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                                   _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
                                     _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    alignas(64) float lanes[16];  // not _mm512_reduce_add_ps: GCC 12's version warns -Wuninitialized
    _mm512_store_ps(lanes, sum);
    float total = 0;
    for (float v : lanes) total += v;
    return total;
}
#endif

// Runs fn(steps) on `threads` threads at once (1: on the calling thread); returns the chains' sum.
inline float run_fma_chains(FmaChainFn fn, int64_t steps, int threads) {
    float result = 0;
    if (threads == 1) {
        result = fn(steps);
    } else {
#pragma omp parallel num_threads(threads) reduction(+ : result)
        result += fn(steps);
    }
    return result;
}

// FLOP of one run_fma_chains call.
inline double fma_chains_flop(int64_t steps, int lanes, int threads) {
    return double(steps) * kFmaChains * lanes * 2.0 * threads;
}

// The widest chain kernel this CPU runs (AVX-512, else AVX2 + FMA) and its lanes; {nullptr, 0} without.
struct FmaKernel {
    FmaChainFn fn;
    int lanes;
};
inline FmaKernel widest_fma_kernel() {
#if DYAD_BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return {fma_chains_avx512, 16};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {fma_chains_avx2, 8};
#endif
    return {nullptr, 0};
}

// Where the peak windows leave their results, so that the chains are observable work.
inline volatile float g_fma_sink = 0;

// Trips of one measurement window: 40 calls' worth, about 5 ms, so that the fork and join of the parallel
// region cost nothing and a thread preempted by another process spoils one window, not the measurement.
constexpr int64_t kFmaWindowSteps = kFmaSteps * 40;

// The FP32 FMA peak in GFLOP/s on `threads` threads with the widest vectors: one untimed window (wakes
// the threads and the clock), then ten windows of about 5 ms, each one parallel region, the best of
// them (a shared machine only ever slows a window down). Measured once per thread count and cached; 0 on
// a CPU without AVX2 + FMA.
inline double cpu_peak_gflops(int threads) {
    static std::map<int, double> cache;
    const auto it = cache.find(threads);
    if (it != cache.end()) return it->second;
    const FmaKernel k = widest_fma_kernel();
    double best = 0;
    if (k.fn) {
        g_fma_sink = run_fma_chains(k.fn, kFmaWindowSteps, threads);
        for (int window = 0; window < 10; window++) {
            const auto t0 = std::chrono::steady_clock::now();
            g_fma_sink = run_fma_chains(k.fn, kFmaWindowSteps, threads);
            best = std::max(best, fma_chains_flop(kFmaWindowSteps, k.lanes, threads) /
                                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
    }
    return cache[threads] = best / 1e9;
}

}  // namespace dyad::bench
