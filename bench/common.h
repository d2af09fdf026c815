// Scaffolding shared by the kernel benchmarks that take the args (kernels, threads): kernels 0 = naive
// (serial), 1 = omp at the given thread count. Also the ceilings every result is read against, measured
// in the same process once per thread count and cached: the CPU's FP32 FMA peak (independent FMA chains,
// the technique of bench_peak), the CPU's copy bandwidth and the GPU's device-to-device copy bandwidth,
// and the ratio counters built from them (pct_peak, pct_copy, vs_cudnn, vs_cublas).
#pragma once
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "bench/fma_peak.h"
#include "dyad/dyad.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace dyad::bench {

struct Config {
    bool omp;
};

// Reads the benchmark's args, sets the thread count and the CPU kernel set, and labels the run
// "omp x2 <what>" or "naive <what>".
inline Config configure(benchmark::State& state, const std::string& what) {
    const Config c{state.range(0) != 0};
    set_num_threads(int(state.range(1)));
    set_cpu_kernels(c.omp ? CpuKernels::omp : CpuKernels::naive);
    state.SetLabel(std::string(c.omp ? "omp x" + std::to_string(state.range(1)) : "naive") + " " + what);
    return c;
}

// naive, omp on 1 thread, omp on 2 threads; times in microseconds.
inline void backends(benchmark::internal::Benchmark* b) {
    b->ArgNames({"omp", "threads"});
    b->Args({0, 1});
    b->Args({1, 1});
    b->Args({1, 2});
    b->Unit(benchmark::kMicrosecond);
}

// ---------------------------------------------------------------- GPU
// GPU benchmarks take no args. Without a GPU they report an error line instead of a time.
inline bool require_gpu(benchmark::State& state) {
    if (cuda_available()) return true;
    state.SkipWithError("no CUDA device");
    return false;
}

// Times fn() with CUDA events on dyad's stream (manual time: register with ->UseManualTime()). Two
// untimed calls first, so handle creation, cuDNN's algorithm search and the pool's first allocations are
// not in the measurement. Label: "cuda <what>". Returns the total measured seconds (for rates).
template <typename F>
double time_gpu(benchmark::State& state, const std::string& what, F&& fn) {
    fn();
    fn();
    synchronize();
    cuda::Timer timer;
    double total = 0;
    for (auto _ : state) {
        timer.start();
        fn();
        timer.stop();
        const double seconds = timer.elapsed_ms() / 1e3;
        state.SetIterationTime(seconds);
        total += seconds;
    }
    state.SetLabel("cuda " + what);
    return total;
}

// ---------------------------------------------------------------- CPU FMA peak: bench/fma_peak.h

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------- copy bandwidth
// Copies n bytes from src to dst on `threads` threads (1: the calling thread), each a contiguous slice with
// libc memcpy inside an OpenMP parallel region, like the omp kernels (same pool, same fork/join cost).
inline void parallel_memcpy(void* dst, const void* src, int64_t n, int threads) {
    if (threads == 1) {
        std::memcpy(dst, src, size_t(n));
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        const int64_t t = omp_get_thread_num(), chunk = (n + threads - 1) / threads;
        const int64_t lo = std::min(n, t * chunk), hi = std::min(n, lo + chunk);
        std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, size_t(hi - lo));
    }
}

// CPU time of the calling thread in seconds: the clock Google Benchmark's rates use unless a benchmark
// asks for real time (every pct_copy benchmark on the CPU uses it).
inline double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// CPU copy bandwidth in GB/s (1e9 bytes, read + written) of a 64 MiB buffer, twice the L3 of the
// reference machine, so from DRAM: one untimed copy (page faults), then the best of five copies. Timed
// on the calling thread's CPU clock, like the benchmarks it is the ceiling of, so that both rates lose
// the same time when other processes share the machine (on an idle one it equals the wall-clock rate).
// Once per thread count, cached. The ceiling of every memory-bound CPU kernel ("pct_copy").
inline double cpu_copy_gbs(int threads) {
    static std::map<int, double> cache;
    const auto it = cache.find(threads);
    if (it != cache.end()) return it->second;
    const int64_t n = int64_t(64) << 20;
    std::vector<char> src(size_t(n), 1), dst(size_t(n), 0);
    parallel_memcpy(dst.data(), src.data(), n, threads);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = thread_cpu_seconds();
        parallel_memcpy(dst.data(), src.data(), n, threads);
        benchmark::ClobberMemory();
        best = std::max(best, 2.0 * double(n) / (thread_cpu_seconds() - t0));
    }
    return cache[threads] = best / 1e9;
}

// GPU copy bandwidth in GB/s (read + written): device-to-device copies of 256 MiB on dyad's stream, two
// untimed, then three windows of five copies timed with cuda::Timer, the best window. Cached; call only
// when cuda_available() (0 in a build without CUDA). The ceiling of every memory-bound GPU kernel.
inline double gpu_copy_gbs() {
    static double cached = -1;
    if (cached >= 0) return cached;
    cached = 0;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const int64_t floats = int64_t(64) << 20, n = floats * int64_t(sizeof(float));  // 256 MiB
    const Tensor src = Tensor::zeros({floats}, DType::float32, Device::cuda());
    const Tensor dst = Tensor::empty({floats}, DType::float32, Device::cuda());
    const auto copy = [&] { cuda::memcpy_d2d(dst.raw_data(), src.raw_data(), size_t(n), 0); };
    copy();
    copy();
    synchronize();
    cuda::Timer timer;
    for (int window = 0; window < 3; window++) {
        timer.start();
        for (int i = 0; i < 5; i++) copy();
        timer.stop();
        cached = std::max(cached, 5 * 2.0 * double(n) / (timer.elapsed_ms() / 1e3) / 1e9);
    }
#endif
    return cached;
}

// ---------------------------------------------------------------- ratio counters
// A counter that reads achieved rate / ceiling: `per_iteration` units of work (FLOP, bytes) per iteration
// against `ceiling_per_second` of the same units. As a rate counter it is divided by the same time as the
// benchmark's own rates (real, manual or CPU time), so it equals their ratio exactly. 0 without a ceiling.
inline benchmark::Counter fraction_of(double per_iteration, double ceiling_per_second) {
    return benchmark::Counter(ceiling_per_second > 0 ? per_iteration / ceiling_per_second : 0.0,
                              benchmark::Counter::kIsIterationInvariantRate);
}

// "pct_peak": `flop` per iteration against the CPU's FMA peak on `threads` threads.
inline void set_pct_peak(benchmark::State& state, double flop, int threads) {
    state.counters["pct_peak"] = fraction_of(flop, cpu_peak_gflops(threads) * 1e9);
}

// "pct_copy" from the bytes_per_second counter set by SetBytesProcessed (call after it): against the CPU
// copy bandwidth on `threads` threads, or with gpu, the GPU's.
inline void set_pct_copy(benchmark::State& state, int threads, bool gpu = false) {
    const auto it = state.counters.find("bytes_per_second");
    if (it == state.counters.end()) return;
    const double ceiling = (gpu ? gpu_copy_gbs() : cpu_copy_gbs(threads)) * 1e9;
    state.counters["pct_copy"] =
        benchmark::Counter(ceiling > 0 ? it->second.value / ceiling : 0.0, benchmark::Counter::kIsRate);
}

// Mean seconds per call of fn on the GPU (a reference rate for vs_cudnn / vs_cublas): two untimed calls,
// then `calls` calls between one pair of CUDA events.
template <typename F>
double gpu_seconds_per_call(F&& fn, int calls = 10) {
    fn();
    fn();
    synchronize();
    cuda::Timer timer;
    timer.start();
    for (int i = 0; i < calls; i++) fn();
    timer.stop();
    return timer.elapsed_ms() / 1e3 / calls;
}

// n seeded normal values times `scale`. Generated once per (n, seed, scale) and cached: Google Benchmark
// calls a benchmark function several times (to size its iterations), and drawing tens of millions of
// normals each time would take longer than the measurement.
inline std::vector<float> random_floats(int64_t n, uint64_t seed, double scale = 1.0) {
    static std::map<std::tuple<int64_t, uint64_t, double>, std::vector<float>> cache;
    const auto key = std::make_tuple(n, seed, scale);
    const auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    manual_seed(seed);
    return cache[key] = (Tensor::randn({n}) * scale).to_vector<float>();
}

}  // namespace dyad::bench
