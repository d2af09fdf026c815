// Benchmarks: image kernels.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
