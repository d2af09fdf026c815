// Loss, optimizer and dropout kernels, naive vs omp, on the reference CNN's shapes: cross-entropy
// forward + backward over (64, 200) and (1024, 200) logits, log-softmax over (64, 200), the fused SGD
// update over the CNN's 2.2M parameters and dropout over a (64, 256) activation and 4M elements.
// ResNet-18 ends in the same 200-class logits, so the loss shapes cover it too (its SGD update is in
// bench_optim). Kernels are called directly on preallocated buffers. Softmax and cross-entropy are bound
// by the exponentials (naive: one double std::exp per element; omp: a vectorised float exp), so their
// rate to watch is elements/s; the SGD update and dropout are memory-bound, so theirs is bytes/s. Every
// benchmark also reports bytes/s (each buffer counted once per pass) and pct_copy, its fraction of the
// copy bandwidth for the same thread count (CPU: a 64 MiB copy; GPU: a 256 MiB device-to-device copy;
// both measured in the same process, bench/common.h): low for the exponential-bound ones by design.
// Args: kernels (0 naive, 1 omp), threads (omp only; naive is serial).
// Run: bench_loss --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"
#include "kernels/loss.h"
#include "kernels/optim.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace dyad;
using bench::backends;
using bench::Config;
using bench::configure;
using bench::random_floats;

namespace {

// Cross-entropy forward then backward (what one training step runs), labels i * 7 mod c.
void run_cross_entropy(benchmark::State& state, int64_t n, int64_t c) {
    const Config cfg = configure(state, "(" + std::to_string(n) + ", " + std::to_string(c) + ")");
    const std::vector<float> x = random_floats(n * c, 1, 3.0);
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) labels[size_t(i)] = int32_t(i * 7 % c);
    std::vector<float> lse(static_cast<size_t>(n)), dx(static_cast<size_t>(n * c), 0.0f);
    float loss = 0, dloss = 1;
    for (auto _ : state) {
        if (cfg.omp) {
            omp::cross_entropy_fwd(n, c, &loss, lse.data(), x.data(), labels.data(), 0.1f);
            omp::cross_entropy_bwd(n, c, dx.data(), &dloss, x.data(), lse.data(), labels.data(), 0.1f);
        } else {
            naive::cross_entropy_fwd<float>(n, c, &loss, lse.data(), x.data(), labels.data(), 0.1f);
            naive::cross_entropy_bwd<float>(n, c, dx.data(), &dloss, x.data(), lse.data(), labels.data(), 0.1f);
        }
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n * c);
    // Forward reads the logits; backward reads them again and reads and writes dlogits.
    state.SetBytesProcessed(state.iterations() * n * c * int64_t(sizeof(float)) * 4);
    bench::set_pct_copy(state, cfg.omp ? int(state.range(1)) : 1);
}

}  // namespace

// ---------------------------------------------------------------------------- cross-entropy
// The reference CNN's loss: batch 64, 200 classes (Tiny ImageNet). 51 KB of logits stay in L1/L2: bound
// by the exponentials (two per element: forward and backward). Too small to gain from a second thread.
void BM_cross_entropy_64x200(benchmark::State& state) { run_cross_entropy(state, 64, 200); }
BENCHMARK(BM_cross_entropy_64x200)->Apply(backends);

// A large evaluation batch: 1024 x 200 (800 KB), split over the threads by rows.
void BM_cross_entropy_1024x200(benchmark::State& state) { run_cross_entropy(state, 1024, 200); }
BENCHMARK(BM_cross_entropy_1024x200)->Apply(backends);

// ---------------------------------------------------------------------------- log-softmax
// Log-softmax forward over the last dim of (64, 200): one exponential per element plus a max and a sum.
void BM_log_softmax_64x200(benchmark::State& state) {
    const ReduceShape s{64, 200, 1};
    const Config c = configure(state, "(64, 200)");
    const int64_t n = s.outer * s.reduce * s.inner;
    const std::vector<float> x = random_floats(n, 2, 3.0);
    std::vector<float> y(static_cast<size_t>(n));
    for (auto _ : state) {
        if (c.omp)
            omp::log_softmax_fwd(s, y.data(), x.data());
        else
            naive::log_softmax_fwd<float>(s, y.data(), x.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n);
    state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * 2);  // x read, y written
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
BENCHMARK(BM_log_softmax_64x200)->Apply(backends);

// ---------------------------------------------------------------------------- sgd
// One SGD step with momentum 0.9 and weight decay 5e-4 over the reference CNN's 2.2M parameters (one
// flat array standing for all of them). Reads param, grad, buffer (and param again for the decay: 4
// array reads counted) and writes param and buffer: 6 x 8.8 MB per step, from DRAM or L3. Memory-bound.
void BM_sgd_step(benchmark::State& state) {
    const int64_t n = 2200000;
    const Config c = configure(state, "momentum + weight decay, 2.2M floats");
    std::vector<float> param = random_floats(n, 3), grad = random_floats(n, 4), buf = random_floats(n, 5);
    SgdParams p;
    p.lr = 1e-6;  // small, so the values stay finite over many iterations
    p.momentum = 0.9;
    p.weight_decay = 5e-4;
    p.first_step = false;
    for (auto _ : state) {
        if (c.omp)
            omp::sgd_step(n, param.data(), grad.data(), buf.data(), p);
        else
            naive::sgd_step<float>(n, param.data(), grad.data(), buf.data(), p);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * 6);
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}
BENCHMARK(BM_sgd_step)->Apply(backends);

// ---------------------------------------------------------------------------- dropout
// Dropout forward (p = 0.5): reads x, writes y and the uint8 mask (9 bytes per element), plus a 32-bit
// hash per element (three multiplies, vectorised): bound by the hash in cache, by memory for 4M elements.
void run_dropout(benchmark::State& state, int64_t n) {
    const Config c = configure(state, std::to_string(n) + " elements");
    const std::vector<float> x = random_floats(n, 6);
    std::vector<float> y(static_cast<size_t>(n));
    std::vector<uint8_t> mask(static_cast<size_t>(n));
    uint64_t seed = 1;
    for (auto _ : state) {
        if (c.omp)
            omp::dropout_fwd(n, y.data(), mask.data(), x.data(), 0.5, seed++);
        else
            naive::dropout_fwd<float>(n, y.data(), mask.data(), x.data(), 0.5, seed++);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * n * int64_t(2 * sizeof(float) + 1));
    bench::set_pct_copy(state, c.omp ? int(state.range(1)) : 1);
}

// The reference CNN's classifier activation: (64, 256) = 16K elements, in L1/L2.
void BM_dropout_64x256(benchmark::State& state) { run_dropout(state, 64 * 256); }
BENCHMARK(BM_dropout_64x256)->Apply(backends);

// 4M elements (36 MB of traffic): from DRAM.
void BM_dropout_4M(benchmark::State& state) { run_dropout(state, 4 << 20); }
BENCHMARK(BM_dropout_4M)->Apply(backends);

// ---------------------------------------------------------------------------- CUDA
// The CUDA kernels on device buffers at the reference CNN's training batch, 128 x 200 (no args; timed with
// CUDA events; without a GPU they report "no CUDA device"). At 100 KB these are bound by launch latency
// and one block per row, not by bandwidth: elements/s and bytes/s (each buffer counted once) both show.
namespace {

#if DYAD_WITH_CUDA
Tensor device_floats(const std::vector<float>& v) {
    return Tensor::from_vector(v, {int64_t(v.size())}).to(Device::cuda());
}
#endif

// Cross-entropy forward (per-row log-sum-exp, loss) then backward (dlogits += ...), as one training step.
void BM_cuda_cross_entropy_128x200(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const int64_t n = 128, c = 200;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) labels[size_t(i)] = int32_t(i * 7 % c);
    const Tensor x = device_floats(random_floats(n * c, 1, 3.0));
    const Tensor lab = Tensor::from_vector(labels, {n}).to(Device::cuda());
    const Tensor loss = Tensor::empty({}, DType::float32, Device::cuda());
    const Tensor lse = Tensor::empty({n}, DType::float32, Device::cuda());
    const Tensor dloss = Tensor::ones({}, DType::float32, Device::cuda());
    const Tensor dx = Tensor::zeros({n, c}, DType::float32, Device::cuda());
    bench::time_gpu(state, "cross_entropy fwd+bwd (128, 200)", [&] {
        cuda::cross_entropy_fwd(n, c, loss.data<float>(), lse.data<float>(), x.data<float>(), lab.data<int32_t>(),
                                0.1f);
        cuda::cross_entropy_bwd(n, c, dx.data<float>(), dloss.data<float>(), x.data<float>(), lse.data<float>(),
                                lab.data<int32_t>(), 0.1f);
    });
#endif
    state.SetItemsProcessed(state.iterations() * n * c);
    // Forward reads the logits; backward reads them again and reads and writes dlogits.
    state.SetBytesProcessed(state.iterations() * n * c * int64_t(sizeof(float)) * 4);
    bench::set_pct_copy(state, 1, true);
}
BENCHMARK(BM_cuda_cross_entropy_128x200)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Log-softmax forward over the last dim of (128, 200): x read, y written.
void BM_cuda_log_softmax_128x200(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const ReduceShape s{128, 200, 1};
    const int64_t n = s.outer * s.reduce * s.inner;
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    const Tensor x = device_floats(random_floats(n, 2, 3.0));
    const Tensor y = Tensor::empty({n}, DType::float32, Device::cuda());
    bench::time_gpu(state, "log_softmax (128, 200)",
                    [&] { cuda::log_softmax_fwd(s, y.data<float>(), x.data<float>()); });
#else
    (void)s;
#endif
    state.SetItemsProcessed(state.iterations() * n);
    state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * 2);
    bench::set_pct_copy(state, 1, true);
}
BENCHMARK(BM_cuda_log_softmax_128x200)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
