// Scaffolding shared by the kernel benchmarks that take the args (kernels, threads): kernels 0 = naive
// (serial), 1 = omp at the given thread count.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dyad/dyad.h"

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

// n seeded normal values times `scale`.
inline std::vector<float> random_floats(int64_t n, uint64_t seed, double scale = 1.0) {
    manual_seed(seed);
    return (Tensor::randn({n}) * scale).to_vector<float>();
}

}  // namespace dyad::bench
