// Layer kernels, naive vs omp, on the reference CNN's shapes at batch 64: the 2x2 stride-2 max pools
// after each conv block, a batch norm of the second block, the global average pool of a 512-channel
// head, and the two classifier layers. Pooling and batch norm are memory-bound (a compare or two
// flops per 4 bytes): the rate to watch is bytes/s against bench_elementwise's BM_memcpy. linear is a
// GEMM: GFLOP/s against bench_peak.
// Args: kernels (0 naive, 1 omp), threads (omp only; naive is serial).
// Run: bench_layers --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/norm.h"
#include "kernels/pool.h"

using namespace dyad;
using bench::backends;
using bench::Config;
using bench::configure;
using bench::random_floats;

namespace {

std::string dims(int64_t n, int64_t c, int64_t h, int64_t w) {
    return "(" + std::to_string(n) + ", " + std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) +
           ")";
}

// ---------------------------------------------------------------------------- max pool 2x2/2
// Forward reads x (4 B) and writes y and the int32 index (8 B per output, a quarter of the inputs);
// backward reads dy and the index and adds into dx (read and written). Bytes count that traffic once
// (dx is zeroed outside the timing once; repeated backward calls keep adding into it).
void run_max_pool(benchmark::State& state, int64_t n, int64_t c, int64_t h, int64_t w) {
    const Config cfg = configure(state, "max_pool2d 2x2/2 fwd+bwd " + dims(n, c, h, w));
    Pool2dShape s;
    s.n = n, s.c = c, s.h = h, s.w = w, s.p = h / 2, s.q = w / 2;
    s.kh = s.kw = s.stride_h = s.stride_w = 2;
    const int64_t nx = n * c * h * w, ny = n * c * s.p * s.q;
    const std::vector<float> x = random_floats(nx, 1), dy = random_floats(ny, 2);
    std::vector<float> y(static_cast<size_t>(ny)), dx(static_cast<size_t>(nx), 0.0f);
    std::vector<int32_t> idx(static_cast<size_t>(ny));
    for (auto _ : state) {
        if (cfg.omp) {
            omp::max_pool2d_fwd(s, y.data(), idx.data(), x.data());
            omp::max_pool2d_bwd(s, dx.data(), dy.data(), idx.data());
        } else {
            naive::max_pool2d_fwd<float>(s, y.data(), idx.data(), x.data());
            naive::max_pool2d_bwd<float>(s, dx.data(), dy.data(), idx.data());
        }
        benchmark::ClobberMemory();
    }
    const int64_t bytes = 4 * nx + 8 * ny + 8 * ny + 8 * nx;
    state.SetBytesProcessed(state.iterations() * bytes);
}

// After conv block 1, 2 and 3: 32 MiB, 16 MiB and 8 MiB of input.
void BM_max_pool_64x32x64x64(benchmark::State& state) { run_max_pool(state, 64, 32, 64, 64); }
void BM_max_pool_64x64x32x32(benchmark::State& state) { run_max_pool(state, 64, 64, 32, 32); }
void BM_max_pool_64x128x16x16(benchmark::State& state) { run_max_pool(state, 64, 128, 16, 16); }
BENCHMARK(BM_max_pool_64x32x64x64)->Apply(backends);
BENCHMARK(BM_max_pool_64x64x32x32)->Apply(backends);
BENCHMARK(BM_max_pool_64x128x16x16)->Apply(backends);

// ---------------------------------------------------------------------------- batch norm
// Training forward + backward on (64, 64, 32, 32), 16 MiB per tensor. Forward: x read twice for the
// statistics and once more for y, y written; backward: dy and x read for the sums, again for dx, dx
// read and written. Bytes count each tensor once per kernel: x + y forward, dy + x + dx (twice) backward.
void BM_batch_norm_train(benchmark::State& state) {
    const int64_t n = 64, c = 64, h = 32, w = 32;
    const Config cfg = configure(state, "batch_norm fwd_train+bwd " + dims(n, c, h, w));
    BatchNormShape s;
    s.n = n, s.c = c, s.hw = h * w;
    const int64_t nx = n * c * h * w;
    const std::vector<float> x = random_floats(nx, 1), dy = random_floats(nx, 2);
    const std::vector<float> gamma(static_cast<size_t>(c), 1.5f), beta(static_cast<size_t>(c), 0.25f);
    std::vector<float> y(static_cast<size_t>(nx)), dx(static_cast<size_t>(nx), 0.0f), mean(static_cast<size_t>(c)),
        invstd(static_cast<size_t>(c));
    std::vector<float> rm(static_cast<size_t>(c), 0.0f), rv(static_cast<size_t>(c), 1.0f),
        dgamma(static_cast<size_t>(c), 0.0f), dbeta(static_cast<size_t>(c), 0.0f);
    for (auto _ : state) {
        if (cfg.omp) {
            omp::batch_norm_fwd_train(s, y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(),
                                      gamma.data(), beta.data(), 0.1f, 1e-5f);
            omp::batch_norm_bwd(s, true, dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), mean.data(),
                                invstd.data(), gamma.data());
        } else {
            naive::batch_norm_fwd_train<float>(s, y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(),
                                               gamma.data(), beta.data(), 0.1f, 1e-5f);
            naive::batch_norm_bwd<float>(s, true, dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(),
                                         mean.data(), invstd.data(), gamma.data());
        }
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * nx * int64_t(sizeof(float)) * 6);
}
BENCHMARK(BM_batch_norm_train)->Apply(backends);

// ---------------------------------------------------------------------------- adaptive avg pool
// Global average pool of (64, 512, 8, 8): 8 MiB read, 128 KiB written; forward + backward (dx, the
// same size as x, read and written).
void BM_adaptive_avg_pool(benchmark::State& state) {
    const int64_t n = 64, c = 512, h = 8, w = 8;
    const Config cfg = configure(state, "adaptive_avg_pool2d 1x1 fwd+bwd " + dims(n, c, h, w));
    Pool2dShape s;
    s.n = n, s.c = c, s.h = h, s.w = w, s.p = 1, s.q = 1;
    const int64_t nx = n * c * h * w, ny = n * c;
    const std::vector<float> x = random_floats(nx, 1), dy = random_floats(ny, 2);
    std::vector<float> y(static_cast<size_t>(ny)), dx(static_cast<size_t>(nx), 0.0f);
    for (auto _ : state) {
        if (cfg.omp) {
            omp::adaptive_avg_pool2d_fwd(s, y.data(), x.data());
            omp::adaptive_avg_pool2d_bwd(s, dx.data(), dy.data());
        } else {
            naive::adaptive_avg_pool2d_fwd<float>(s, y.data(), x.data());
            naive::adaptive_avg_pool2d_bwd<float>(s, dx.data(), dy.data());
        }
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * (nx * 3 + ny * 2) * int64_t(sizeof(float)));
}
BENCHMARK(BM_adaptive_avg_pool)->Apply(backends);

// ---------------------------------------------------------------------------- linear
// Through the frontend (allocation, bias prefill, the GEMM; backward: two GEMMs and a column sum).
// FLOPs: 2 * m * n * k forward, twice that backward. naive's triple loop makes the 8192-wide layer slow:
// it runs few iterations.
void run_linear(benchmark::State& state, int64_t m, int64_t in, int64_t out, bool backward) {
    configure(state, std::string("linear ") + (backward ? "fwd+bwd" : "fwd") + " x (" + std::to_string(m) + ", " +
                         std::to_string(in) + ") w (" + std::to_string(out) + ", " + std::to_string(in) + ")");
    manual_seed(1);
    Tensor x = Tensor::randn({m, in}), w = Tensor::randn({out, in}), b = Tensor::randn({out});
    const Tensor dy = Tensor::randn({m, out});
    if (backward) {
        x.requires_grad_(), w.requires_grad_(), b.requires_grad_();
    }
    for (auto _ : state) {
        const Tensor y = linear(x, w, b);
        if (backward) y.backward(dy);
        benchmark::DoNotOptimize(y.raw_data());
    }
    const double flops = 2.0 * double(m) * double(in) * double(out) * (backward ? 3.0 : 1.0);
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}

void BM_linear_fwd_8192_256(benchmark::State& state) { run_linear(state, 64, 8192, 256, false); }
void BM_linear_fwdbwd_8192_256(benchmark::State& state) { run_linear(state, 64, 8192, 256, true); }
void BM_linear_fwd_256_200(benchmark::State& state) { run_linear(state, 64, 256, 200, false); }
void BM_linear_fwdbwd_256_200(benchmark::State& state) { run_linear(state, 64, 256, 200, true); }
BENCHMARK(BM_linear_fwd_8192_256)->Apply(backends);
BENCHMARK(BM_linear_fwdbwd_8192_256)->Apply(backends);
BENCHMARK(BM_linear_fwd_256_200)->Apply(backends);
BENCHMARK(BM_linear_fwdbwd_256_200)->Apply(backends);

}  // namespace

BENCHMARK_MAIN();
