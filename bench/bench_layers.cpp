// Layer kernels, naive vs omp, on the reference CNN's shapes at batch 64: the 2x2 stride-2 max pools
// after each conv block (alone, and the fused relu_max_pool2d next to the relu + max_pool2d pair it
// replaces), a batch norm of the second block, the global average pool of a 512-channel head, and the
// two classifier layers; the pools and the batch norm also on channels_last (NHWC) operands of the same
// shapes (the *_nhwc benchmarks, next to their NCHW twins). Pooling and batch norm are memory-bound (a compare or two
// flops per 4 bytes): the rate to watch is bytes/s against bench_elementwise's BM_memcpy. linear is a GEMM: GFLOP/s
// against bench_peak. Args: kernels (0 naive, 1 omp), threads (omp only; naive is serial). The BM_cuda_* benchmarks run
// the CUDA kernels on device buffers at batch 128 (no args; timed with CUDA events; without a GPU they report "no CUDA
// device"): bytes/s against the device's memory bandwidth. Run: bench_layers --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "kernels/pool.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

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

// The reference CNN's pool: 2x2 windows, stride 2; NHWC operands when channels_last.
Pool2dShape pool_2x2(int64_t n, int64_t c, int64_t h, int64_t w, bool channels_last = false) {
    Pool2dShape s;
    s.n = n, s.c = c, s.h = h, s.w = w, s.p = h / 2, s.q = w / 2;
    s.kh = s.kw = s.stride_h = s.stride_w = 2;
    s.channels_last = channels_last;
    return s;
}

const char* layout_label(bool channels_last) { return channels_last ? " NHWC" : ""; }

// ---------------------------------------------------------------------------- max pool 2x2/2
// Forward reads x (4 B) and writes y and the int32 index (8 B per output, a quarter of the inputs);
// backward reads dy and the index and adds into dx (read and written). Bytes count that traffic once
// (dx is zeroed outside the timing once; repeated backward calls keep adding into it).
void run_max_pool(benchmark::State& state, int64_t n, int64_t c, int64_t h, int64_t w, bool channels_last = false) {
    const Config cfg = configure(state, "max_pool2d 2x2/2 fwd+bwd " + dims(n, c, h, w) + layout_label(channels_last));
    const Pool2dShape s = pool_2x2(n, c, h, w, channels_last);
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
// The same on NHWC operands (the logical shapes above; x stored (n, h, w, c)).
void BM_max_pool_nhwc_64x32x64x64(benchmark::State& state) { run_max_pool(state, 64, 32, 64, 64, true); }
void BM_max_pool_nhwc_64x64x32x32(benchmark::State& state) { run_max_pool(state, 64, 64, 32, 32, true); }
void BM_max_pool_nhwc_64x128x16x16(benchmark::State& state) { run_max_pool(state, 64, 128, 16, 16, true); }
BENCHMARK(BM_max_pool_nhwc_64x32x64x64)->Apply(backends);
BENCHMARK(BM_max_pool_nhwc_64x64x32x32)->Apply(backends);
BENCHMARK(BM_max_pool_nhwc_64x128x16x16)->Apply(backends);

// Forward only, as inference runs it (InferenceModeGuard or NoGradGuard: no argmax is made) against the
// forward of training (argmax written): per input element 4 B read, per output 4 B (inference) or 8 B
// (training) written. The ratio of the two times is what inference saves.
void run_max_pool_fwd(benchmark::State& state, int64_t n, int64_t c, int64_t h, int64_t w, bool keep_argmax) {
    const Config cfg =
        configure(state, std::string("max_pool2d 2x2/2 fwd, ") +
                             (keep_argmax ? "with argmax (training) " : "no argmax (inference) ") + dims(n, c, h, w));
    const Pool2dShape s = pool_2x2(n, c, h, w);
    const int64_t nx = n * c * h * w, ny = n * c * s.p * s.q;
    const std::vector<float> x = random_floats(nx, 1);
    std::vector<float> y(static_cast<size_t>(ny));
    std::vector<int32_t> idx(static_cast<size_t>(ny));
    int32_t* ip = keep_argmax ? idx.data() : nullptr;
    for (auto _ : state) {
        if (cfg.omp)
            omp::max_pool2d_fwd(s, y.data(), ip, x.data());
        else
            naive::max_pool2d_fwd<float>(s, y.data(), ip, x.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * (4 * nx + (keep_argmax ? 8 : 4) * ny));
}
void BM_max_pool_fwd_train_64x32x64x64(benchmark::State& state) { run_max_pool_fwd(state, 64, 32, 64, 64, true); }
void BM_max_pool_fwd_infer_64x32x64x64(benchmark::State& state) { run_max_pool_fwd(state, 64, 32, 64, 64, false); }
BENCHMARK(BM_max_pool_fwd_train_64x32x64x64)->Apply(backends);
BENCHMARK(BM_max_pool_fwd_infer_64x32x64x64)->Apply(backends);

// ---------------------------------------------------------------------------- relu + max pool 2x2/2
// The fused relu_max_pool2d against the pair it replaces, relu then max_pool2d, forward and backward, on
// the same shapes as the max pools above. The pair runs what autograd runs for it: relu writes r (the
// size of x), the max pool reads r; backward zeroes r's gradient g, the max pool scatters into g, and
// relu's backward reads g and x and adds into dx. The fused op never writes r or g: its forward reads x
// once, its backward reads y to skip outputs that are not > 0. Bytes count each tensor once per kernel
// (dx and g read and written, as in run_max_pool); the time ratio of the two benchmarks is the gain.
void run_relu_max_pool(benchmark::State& state, int64_t n, int64_t c, int64_t h, int64_t w, bool fused) {
    const Config cfg = configure(
        state, std::string(fused ? "relu_max_pool2d" : "relu + max_pool2d") + " 2x2/2 fwd+bwd " + dims(n, c, h, w));
    const Pool2dShape s = pool_2x2(n, c, h, w);
    const int64_t nx = n * c * h * w, ny = n * c * s.p * s.q;
    const std::vector<float> x = random_floats(nx, 1), dy = random_floats(ny, 2);
    std::vector<float> y(static_cast<size_t>(ny)), dx(static_cast<size_t>(nx), 0.0f);
    std::vector<float> r(static_cast<size_t>(fused ? 0 : nx)), g(static_cast<size_t>(fused ? 0 : nx));
    std::vector<int32_t> idx(static_cast<size_t>(ny));
    for (auto _ : state) {
        if (fused && cfg.omp) {
            omp::relu_max_pool2d_fwd(s, y.data(), idx.data(), x.data());
            omp::relu_max_pool2d_bwd(s, dx.data(), dy.data(), idx.data(), y.data());
        } else if (fused) {
            naive::relu_max_pool2d_fwd<float>(s, y.data(), idx.data(), x.data());
            naive::relu_max_pool2d_bwd<float>(s, dx.data(), dy.data(), idx.data(), y.data());
        } else if (cfg.omp) {
            omp::relu_fwd(r.data(), x.data(), nx);
            omp::max_pool2d_fwd(s, y.data(), idx.data(), r.data());
            omp::fill<float>(g.data(), 0.0f, nx);
            omp::max_pool2d_bwd(s, g.data(), dy.data(), idx.data());
            omp::relu_bwd(dx.data(), g.data(), x.data(), nx);
        } else {
            naive::relu_fwd<float>(r.data(), x.data(), nx);
            naive::max_pool2d_fwd<float>(s, y.data(), idx.data(), r.data());
            naive::fill<float>(g.data(), 0.0f, nx);
            naive::max_pool2d_bwd<float>(s, g.data(), dy.data(), idx.data());
            naive::relu_bwd<float>(dx.data(), g.data(), x.data(), nx);
        }
        benchmark::ClobberMemory();
    }
    // Fused: x; y and idx; dy, idx and y; dx. Pair: x and r; r, y and idx; g; dy, idx and g; g, x and dx.
    const int64_t bytes =
        fused ? 4 * nx + 8 * ny + 12 * ny + 8 * nx : 8 * nx + 4 * nx + 8 * ny + 4 * nx + 8 * ny + 8 * nx + 16 * nx;
    state.SetBytesProcessed(state.iterations() * bytes);
}

void BM_relu_max_pool_64x32x64x64(benchmark::State& state) { run_relu_max_pool(state, 64, 32, 64, 64, true); }
void BM_relu_then_max_pool_64x32x64x64(benchmark::State& state) { run_relu_max_pool(state, 64, 32, 64, 64, false); }
void BM_relu_max_pool_64x64x32x32(benchmark::State& state) { run_relu_max_pool(state, 64, 64, 32, 32, true); }
void BM_relu_then_max_pool_64x64x32x32(benchmark::State& state) { run_relu_max_pool(state, 64, 64, 32, 32, false); }
void BM_relu_max_pool_64x128x16x16(benchmark::State& state) { run_relu_max_pool(state, 64, 128, 16, 16, true); }
void BM_relu_then_max_pool_64x128x16x16(benchmark::State& state) { run_relu_max_pool(state, 64, 128, 16, 16, false); }
BENCHMARK(BM_relu_max_pool_64x32x64x64)->Apply(backends);
BENCHMARK(BM_relu_then_max_pool_64x32x64x64)->Apply(backends);
BENCHMARK(BM_relu_max_pool_64x64x32x32)->Apply(backends);
BENCHMARK(BM_relu_then_max_pool_64x64x32x32)->Apply(backends);
BENCHMARK(BM_relu_max_pool_64x128x16x16)->Apply(backends);
BENCHMARK(BM_relu_then_max_pool_64x128x16x16)->Apply(backends);

// ---------------------------------------------------------------------------- batch norm
// Training forward + backward on (64, 64, 32, 32), 16 MiB per tensor. Forward: x read twice for the
// statistics and once more for y, y written; backward: dy and x read for the sums, again for dx, dx
// read and written. Bytes count each tensor once per kernel: x + y forward, dy + x + dx (twice) backward.
// The operands of a batch-norm benchmark on (n, c, h, w): x and dy random, gamma 1.5, beta 0.25, the
// statistics and the gradients' buffers.
struct BnOperands {
    BatchNormShape s;
    int64_t nx;
    std::vector<float> x, dy, gamma, beta, y, dx, mean, invstd, rm, rv, dgamma, dbeta;
    BnOperands(int64_t n, int64_t c, int64_t h, int64_t w) : nx(n * c * h * w) {
        s.n = n, s.c = c, s.hw = h * w;
        const size_t cs = static_cast<size_t>(c), xs = static_cast<size_t>(nx);
        x = random_floats(nx, 1), dy = random_floats(nx, 2);
        gamma.assign(cs, 1.5f), beta.assign(cs, 0.25f), y.assign(xs, 0.0f), dx.assign(xs, 0.0f);
        mean.assign(cs, 0.0f), invstd.assign(cs, 0.0f), rm.assign(cs, 0.0f), rv.assign(cs, 1.0f);
        dgamma.assign(cs, 0.0f), dbeta.assign(cs, 0.0f);
    }
};

void run_batch_norm_train(benchmark::State& state, bool channels_last) {
    const int64_t n = 64, c = 64, h = 32, w = 32;
    const Config cfg = configure(state, "batch_norm fwd_train+bwd " + dims(n, c, h, w) + layout_label(channels_last));
    BnOperands o(n, c, h, w);
    o.s.channels_last = channels_last;
    const BatchNormShape& s = o.s;
    const int64_t nx = o.nx;
    auto &x = o.x, &dy = o.dy, &gamma = o.gamma, &beta = o.beta, &y = o.y, &dx = o.dx, &mean = o.mean,
         &invstd = o.invstd, &rm = o.rm, &rv = o.rv, &dgamma = o.dgamma, &dbeta = o.dbeta;
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
void BM_batch_norm_train(benchmark::State& state) { run_batch_norm_train(state, false); }
void BM_batch_norm_train_nhwc(benchmark::State& state) { run_batch_norm_train(state, true); }
BENCHMARK(BM_batch_norm_train)->Apply(backends);
BENCHMARK(BM_batch_norm_train_nhwc)->Apply(backends);

// Batch norm followed by ReLU, training forward + backward on the ResNet-18's layer1 activation (32, 64, 64,
// 64; 32 MiB per tensor): the fused kernels (the ReLU applied as y is written, its mask read in the
// backward's passes) against the pair of ops as autograd runs them (batch norm into r, relu into y; relu's
// backward into a zeroed g, batch norm's backward from g). The time ratio of the two is the fusion's gain.
void run_batch_norm_relu(benchmark::State& state, bool fused) {
    const int64_t n = 32, c = 64, h = 64, w = 64;
    const Config cfg = configure(
        state, std::string(fused ? "batch_norm_relu" : "batch_norm + relu") + " fwd_train+bwd " + dims(n, c, h, w));
    BnOperands o(n, c, h, w);
    const BatchNormShape& s = o.s;
    const int64_t nx = o.nx;
    auto &x = o.x, &dy = o.dy, &gamma = o.gamma, &beta = o.beta, &y = o.y, &dx = o.dx, &mean = o.mean,
         &invstd = o.invstd, &dgamma = o.dgamma, &dbeta = o.dbeta;
    std::vector<float> r(static_cast<size_t>(fused ? 0 : nx)), g(static_cast<size_t>(fused ? 0 : nx));
    for (auto _ : state) {
        if (fused && !cfg.omp) {
            naive::batch_norm_relu_fwd_train<float>(s, y.data(), mean.data(), invstd.data(), nullptr, nullptr, x.data(),
                                                    gamma.data(), beta.data(), 0.1f, 1e-5f);
            naive::batch_norm_relu_bwd<float>(s, true, dx.data(), dgamma.data(), dbeta.data(), dy.data(), y.data(),
                                              x.data(), mean.data(), invstd.data(), gamma.data());
        } else if (!cfg.omp) {
            naive::batch_norm_fwd_train<float>(s, r.data(), mean.data(), invstd.data(), nullptr, nullptr, x.data(),
                                               gamma.data(), beta.data(), 0.1f, 1e-5f);
            naive::relu_fwd<float>(y.data(), r.data(), nx);
            naive::fill<float>(g.data(), 0.0f, nx);
            naive::relu_bwd<float>(g.data(), dy.data(), r.data(), nx);
            naive::batch_norm_bwd<float>(s, true, dx.data(), dgamma.data(), dbeta.data(), g.data(), x.data(),
                                         mean.data(), invstd.data(), gamma.data());
        } else if (fused) {
            omp::batch_norm_relu_fwd_train(s, y.data(), mean.data(), invstd.data(), nullptr, nullptr, x.data(),
                                           gamma.data(), beta.data(), 0.1f, 1e-5f);
            omp::batch_norm_relu_bwd(s, true, dx.data(), dgamma.data(), dbeta.data(), dy.data(), y.data(), x.data(),
                                     mean.data(), invstd.data(), gamma.data());
        } else {
            omp::batch_norm_fwd_train(s, r.data(), mean.data(), invstd.data(), nullptr, nullptr, x.data(), gamma.data(),
                                      beta.data(), 0.1f, 1e-5f);
            omp::relu_fwd(y.data(), r.data(), nx);
            omp::fill<float>(g.data(), 0.0f, nx);
            omp::relu_bwd(g.data(), dy.data(), r.data(), nx);
            omp::batch_norm_bwd(s, true, dx.data(), dgamma.data(), dbeta.data(), g.data(), x.data(), mean.data(),
                                invstd.data(), gamma.data());
        }
        benchmark::ClobberMemory();
    }
}
void BM_batch_norm_relu_fused(benchmark::State& state) { run_batch_norm_relu(state, true); }
void BM_batch_norm_then_relu(benchmark::State& state) { run_batch_norm_relu(state, false); }
BENCHMARK(BM_batch_norm_relu_fused)->Apply(backends);
BENCHMARK(BM_batch_norm_then_relu)->Apply(backends);

// ---------------------------------------------------------------------------- adaptive avg pool
// Global average pool of (64, 512, 8, 8): 8 MiB read, 128 KiB written; forward + backward (dx, the
// same size as x, read and written).
void run_adaptive_avg_pool(benchmark::State& state, bool channels_last) {
    const int64_t n = 64, c = 512, h = 8, w = 8;
    const Config cfg =
        configure(state, "adaptive_avg_pool2d 1x1 fwd+bwd " + dims(n, c, h, w) + layout_label(channels_last));
    Pool2dShape s;
    s.n = n, s.c = c, s.h = h, s.w = w, s.p = 1, s.q = 1;
    s.channels_last = channels_last;
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
void BM_adaptive_avg_pool(benchmark::State& state) { run_adaptive_avg_pool(state, false); }
void BM_adaptive_avg_pool_nhwc(benchmark::State& state) { run_adaptive_avg_pool(state, true); }
BENCHMARK(BM_adaptive_avg_pool)->Apply(backends);
BENCHMARK(BM_adaptive_avg_pool_nhwc)->Apply(backends);

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

// ---------------------------------------------------------------------------- CUDA, batch 128
// Kernels called directly on device buffers (no allocation or autograd in the timing). Bytes count each
// tensor a kernel touches once: what it must move at the least.

#if DYAD_WITH_CUDA
// A device tensor of n seeded normal values.
Tensor device_randn(int64_t n, uint64_t seed) {
    return Tensor::from_vector(random_floats(n, seed), {n}).to(Device::cuda());
}
#endif

// Max pool 2x2/2. Forward: x read, y and the int32 index written (8 B per output). Backward (one thread
// per input gathering its window's gradient): dy and the index read, dx read and written.
void run_cuda_max_pool(benchmark::State& state, int64_t c, int64_t h, int64_t w, bool backward) {
    if (!bench::require_gpu(state)) return;
    const int64_t n = 128;
    const Pool2dShape s = pool_2x2(n, c, h, w);
    const int64_t nx = n * c * h * w, ny = n * c * s.p * s.q;
    const std::string what = std::string("max_pool2d 2x2/2 ") + (backward ? "bwd " : "fwd ") + dims(n, c, h, w);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(nx, 1), dy = device_randn(ny, 2);
    const Tensor y = Tensor::empty({ny}, DType::float32, Device::cuda());
    const Tensor idx = Tensor::empty({ny}, DType::int32, Device::cuda());
    const Tensor dx = Tensor::zeros({nx}, DType::float32, Device::cuda());
    cuda::max_pool2d_fwd(s, y.data<float>(), idx.data<int32_t>(), x.data<float>());
    bench::time_gpu(state, what, [&] {
        if (backward)
            cuda::max_pool2d_bwd(s, dx.data<float>(), dy.data<float>(), idx.data<int32_t>());
        else
            cuda::max_pool2d_fwd(s, y.data<float>(), idx.data<int32_t>(), x.data<float>());
    });
#else
    (void)s, (void)what;
#endif
    state.SetBytesProcessed(state.iterations() * (backward ? 8 * nx + 8 * ny : 4 * nx + 8 * ny));
}

// After conv block 1, 2 and 3 at batch 128: 64 MiB, 32 MiB and 16 MiB of input.
void BM_cuda_max_pool_fwd_128x32x64x64(benchmark::State& state) { run_cuda_max_pool(state, 32, 64, 64, false); }
void BM_cuda_max_pool_bwd_128x32x64x64(benchmark::State& state) { run_cuda_max_pool(state, 32, 64, 64, true); }
void BM_cuda_max_pool_fwd_128x64x32x32(benchmark::State& state) { run_cuda_max_pool(state, 64, 32, 32, false); }
void BM_cuda_max_pool_bwd_128x64x32x32(benchmark::State& state) { run_cuda_max_pool(state, 64, 32, 32, true); }
void BM_cuda_max_pool_fwd_128x128x16x16(benchmark::State& state) { run_cuda_max_pool(state, 128, 16, 16, false); }
void BM_cuda_max_pool_bwd_128x128x16x16(benchmark::State& state) { run_cuda_max_pool(state, 128, 16, 16, true); }
BENCHMARK(BM_cuda_max_pool_fwd_128x32x64x64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_max_pool_bwd_128x32x64x64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_max_pool_fwd_128x64x32x32)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_max_pool_bwd_128x64x32x32)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_max_pool_fwd_128x128x16x16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_max_pool_bwd_128x128x16x16)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Fused relu_max_pool2d 2x2/2 forward + backward against relu then max_pool2d (forward and backward, with
// the zeroing of relu's output gradient g that autograd does), as in run_relu_max_pool. Bytes: fused, x
// read, y and idx written, then dy, idx and y read and dx read and written (the gather reads each
// input's windows); pair, relu (x read, r written), the pool (r read, y and idx written), g zeroed, the
// pool's backward (dy and idx read, g read and written), relu's backward (g and x read, dx read and
// written).
void run_cuda_relu_max_pool(benchmark::State& state, int64_t c, int64_t h, int64_t w, bool fused) {
    if (!bench::require_gpu(state)) return;
    const int64_t n = 128;
    const Pool2dShape s = pool_2x2(n, c, h, w);
    const int64_t nx = n * c * h * w, ny = n * c * s.p * s.q;
    const std::string what =
        std::string(fused ? "relu_max_pool2d" : "relu + max_pool2d") + " 2x2/2 fwd+bwd " + dims(n, c, h, w);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(nx, 1), dy = device_randn(ny, 2);
    const Tensor y = Tensor::empty({ny}, DType::float32, Device::cuda());
    const Tensor idx = Tensor::empty({ny}, DType::int32, Device::cuda());
    const Tensor dx = Tensor::zeros({nx}, DType::float32, Device::cuda());
    const Tensor r = Tensor::empty({fused ? 0 : nx}, DType::float32, Device::cuda());
    const Tensor g = Tensor::empty({fused ? 0 : nx}, DType::float32, Device::cuda());
    bench::time_gpu(state, what, [&] {
        if (fused) {
            cuda::relu_max_pool2d_fwd(s, y.data<float>(), idx.data<int32_t>(), x.data<float>());
            cuda::relu_max_pool2d_bwd(s, dx.data<float>(), dy.data<float>(), idx.data<int32_t>(), y.data<float>());
        } else {
            cuda::relu_fwd(r.data<float>(), x.data<float>(), nx);
            cuda::max_pool2d_fwd(s, y.data<float>(), idx.data<int32_t>(), r.data<float>());
            cuda::fill<float>(g.data<float>(), 0.0f, nx);
            cuda::max_pool2d_bwd(s, g.data<float>(), dy.data<float>(), idx.data<int32_t>());
            cuda::relu_bwd(dx.data<float>(), g.data<float>(), x.data<float>(), nx);
        }
    });
#else
    (void)s, (void)what;
#endif
    const int64_t bytes =
        fused ? 4 * nx + 8 * ny + 12 * ny + 8 * nx : 8 * nx + 4 * nx + 8 * ny + 4 * nx + 8 * ny + 8 * nx + 16 * nx;
    state.SetBytesProcessed(state.iterations() * bytes);
}

void BM_cuda_relu_max_pool_128x32x64x64(benchmark::State& state) { run_cuda_relu_max_pool(state, 32, 64, 64, true); }
void BM_cuda_relu_then_max_pool_128x32x64x64(benchmark::State& state) {
    run_cuda_relu_max_pool(state, 32, 64, 64, false);
}
void BM_cuda_relu_max_pool_128x64x32x32(benchmark::State& state) { run_cuda_relu_max_pool(state, 64, 32, 32, true); }
void BM_cuda_relu_then_max_pool_128x64x32x32(benchmark::State& state) {
    run_cuda_relu_max_pool(state, 64, 32, 32, false);
}
void BM_cuda_relu_max_pool_128x128x16x16(benchmark::State& state) { run_cuda_relu_max_pool(state, 128, 16, 16, true); }
void BM_cuda_relu_then_max_pool_128x128x16x16(benchmark::State& state) {
    run_cuda_relu_max_pool(state, 128, 16, 16, false);
}
BENCHMARK(BM_cuda_relu_max_pool_128x32x64x64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_relu_then_max_pool_128x32x64x64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_relu_max_pool_128x64x32x32)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_relu_then_max_pool_128x64x32x32)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_relu_max_pool_128x128x16x16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_relu_then_max_pool_128x128x16x16)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Batch norm, training. Forward: x read twice (the statistics, then y) and y written. Backward (dx,
// dgamma, dbeta): dy and x read for the sums, then dy, x and dx read and dx written.
void run_cuda_batch_norm(benchmark::State& state, int64_t c, int64_t h, int64_t w, bool backward) {
    if (!bench::require_gpu(state)) return;
    const int64_t n = 128;
    BatchNormShape s;
    s.n = n, s.c = c, s.hw = h * w;
    const int64_t nx = n * c * h * w;
    const std::string what = std::string("batch_norm ") + (backward ? "bwd " : "fwd_train ") + dims(n, c, h, w);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(nx, 1), dy = device_randn(nx, 2);
    const Tensor gamma = Tensor::full({c}, 1.5, DType::float32, Device::cuda());
    const Tensor beta = Tensor::full({c}, 0.25, DType::float32, Device::cuda());
    const Tensor rm = Tensor::zeros({c}, DType::float32, Device::cuda());
    const Tensor rv = Tensor::ones({c}, DType::float32, Device::cuda());
    const Tensor y = Tensor::empty({nx}, DType::float32, Device::cuda());
    const Tensor dx = Tensor::zeros({nx}, DType::float32, Device::cuda());
    const Tensor mean = Tensor::empty({c}, DType::float32, Device::cuda());
    const Tensor invstd = Tensor::empty({c}, DType::float32, Device::cuda());
    const Tensor dgamma = Tensor::zeros({c}, DType::float32, Device::cuda());
    const Tensor dbeta = Tensor::zeros({c}, DType::float32, Device::cuda());
    auto forward = [&] {
        cuda::batch_norm_fwd_train(s, y.data<float>(), mean.data<float>(), invstd.data<float>(), rm.data<float>(),
                                   rv.data<float>(), x.data<float>(), gamma.data<float>(), beta.data<float>(), 0.1f,
                                   1e-5f);
    };
    forward();
    bench::time_gpu(state, what, [&] {
        if (backward)
            cuda::batch_norm_bwd(s, true, dx.data<float>(), dgamma.data<float>(), dbeta.data<float>(), dy.data<float>(),
                                 x.data<float>(), mean.data<float>(), invstd.data<float>(), gamma.data<float>());
        else
            forward();
    });
#else
    (void)s, (void)what;
#endif
    state.SetBytesProcessed(state.iterations() * nx * int64_t(sizeof(float)) * (backward ? 6 : 3));
}

// The first two conv blocks at batch 128: 64 MiB and 32 MiB per tensor.
void BM_cuda_batch_norm_fwd_128x32x64x64(benchmark::State& state) { run_cuda_batch_norm(state, 32, 64, 64, false); }
void BM_cuda_batch_norm_bwd_128x32x64x64(benchmark::State& state) { run_cuda_batch_norm(state, 32, 64, 64, true); }
void BM_cuda_batch_norm_fwd_128x64x32x32(benchmark::State& state) { run_cuda_batch_norm(state, 64, 32, 32, false); }
void BM_cuda_batch_norm_bwd_128x64x32x32(benchmark::State& state) { run_cuda_batch_norm(state, 64, 32, 32, true); }
BENCHMARK(BM_cuda_batch_norm_fwd_128x32x64x64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_batch_norm_bwd_128x32x64x64)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_batch_norm_fwd_128x64x32x32)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_batch_norm_bwd_128x64x32x32)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Global average pool of (128, 512, 8, 8): 16 MiB read, 256 KiB written; backward: dy read, dx (the size
// of x) read and written.
void run_cuda_adaptive_avg_pool(benchmark::State& state, bool backward) {
    if (!bench::require_gpu(state)) return;
    const int64_t n = 128, c = 512, h = 8, w = 8;
    Pool2dShape s;
    s.n = n, s.c = c, s.h = h, s.w = w, s.p = 1, s.q = 1;
    const int64_t nx = n * c * h * w, ny = n * c;
    const std::string what = std::string("adaptive_avg_pool2d 1x1 ") + (backward ? "bwd " : "fwd ") + dims(n, c, h, w);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_randn(nx, 1), dy = device_randn(ny, 2);
    const Tensor y = Tensor::empty({ny}, DType::float32, Device::cuda());
    const Tensor dx = Tensor::zeros({nx}, DType::float32, Device::cuda());
    bench::time_gpu(state, what, [&] {
        if (backward)
            cuda::adaptive_avg_pool2d_bwd(s, dx.data<float>(), dy.data<float>());
        else
            cuda::adaptive_avg_pool2d_fwd(s, y.data<float>(), x.data<float>());
    });
#else
    (void)s, (void)what;
#endif
    state.SetBytesProcessed(state.iterations() * int64_t(sizeof(float)) * (backward ? 2 * nx + ny : nx + ny));
}
void BM_cuda_adaptive_avg_pool_fwd(benchmark::State& state) { run_cuda_adaptive_avg_pool(state, false); }
void BM_cuda_adaptive_avg_pool_bwd(benchmark::State& state) { run_cuda_adaptive_avg_pool(state, true); }
BENCHMARK(BM_cuda_adaptive_avg_pool_fwd)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_adaptive_avg_pool_bwd)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
