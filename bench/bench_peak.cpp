// The CPU's FP32 FMA peak: the ceiling that bench_gemm's FLOP/s are compared with. Each thread runs 12
// independent chains of vector FMAs (acc = acc * x + y), enough to cover the FMA latency times the
// number of FMA pipes on current x86 cores (Zen 3: 2 pipes x 4 cycles = 8 in flight), with no loads or
// stores in the loop, so the FMA pipes are the only limit.
#include <benchmark/benchmark.h>
#include <immintrin.h>  // AVX2/AVX-512 intrinsics, compiled per function with target attributes
#include <omp.h>

#include <cstdint>
#include <cstdio>

namespace {

constexpr int kChains = 12;          // the a0 ... a11 below
constexpr int64_t kSteps = 1 << 16;  // loop trips per call: 12.6 MFLOP with AVX2, short enough to repeat

// x < 1 and y > 0 make every chain converge to y / (1 - x) = 1: no overflow, no denormals (which would
// slow the FMAs down). Passed in at run time so the compiler cannot fold the loop.
volatile float g_x = 0.999999f, g_y = 1e-6f;

// kSteps x 12 chains x 8 lanes x 2 FLOP. Returns the sum of the chains so the work is observable.
__attribute__((target("avx2,fma"))) float fma_chains_avx2(int64_t steps) {
    const __m256 x = _mm256_set1_ps(g_x), y = _mm256_set1_ps(g_y);
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

// The same with 16-float vectors: kSteps x 12 x 16 lanes x 2 FLOP.
__attribute__((target("avx512f"))) float fma_chains_avx512(int64_t steps) {
    const __m512 x = _mm512_set1_ps(g_x), y = _mm512_set1_ps(g_y);
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

using ChainFn = float (*)(int64_t);

// Runs fn on `threads` threads at once (1: on the calling thread) and reports FLOP/s over all of them.
void run_peak(benchmark::State& state, ChainFn fn, int lanes, int threads) {
    for (auto _ : state) {
        float result = 0;
        if (threads == 1) {
            result = fn(kSteps);
        } else {
#pragma omp parallel num_threads(threads) reduction(+ : result)
            result += fn(kSteps);
        }
        benchmark::DoNotOptimize(result);
    }
    const double flops = double(kSteps) * kChains * lanes * 2.0 * threads;
    state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["threads"] = threads;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    __builtin_cpu_init();
    const int all = omp_get_max_threads();
    // Compute-bound by construction: 2 FLOP per lane per FMA, 2 FMA pipes per core (Zen 3, Skylake-SP).
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        benchmark::RegisterBenchmark("peak_fma_avx2/threads:1", run_peak, fma_chains_avx2, 8, 1)->UseRealTime();
        benchmark::RegisterBenchmark(("peak_fma_avx2/threads:" + std::to_string(all)).c_str(), run_peak,
                                     fma_chains_avx2, 8, all)
            ->UseRealTime();
    } else {
        std::fprintf(stderr, "no AVX2+FMA on this CPU: AVX2 peak skipped\n");
    }
    if (__builtin_cpu_supports("avx512f")) {
        benchmark::RegisterBenchmark("peak_fma_avx512/threads:1", run_peak, fma_chains_avx512, 16, 1)->UseRealTime();
        benchmark::RegisterBenchmark(("peak_fma_avx512/threads:" + std::to_string(all)).c_str(), run_peak,
                                     fma_chains_avx512, 16, all)
            ->UseRealTime();
    } else {
        std::fprintf(stderr, "no AVX-512 on this CPU: AVX-512 peak skipped\n");
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
