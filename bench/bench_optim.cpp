// Benchmarks: optim kernels.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
