// One whole training step of the baseline CNN (models::baseline_cnn: 64x64x3 input, 200 classes):
// forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4), on random data already in
// memory, as bench/pytorch_train_step.py does in PyTorch. Reports img/s.
// CPU args: kernels (0 naive, 1 omp), threads, batch. The naive step runs once (it takes seconds).
// GPU (BM_train_step_cuda) args: batch, precision (0 fp32, 1 tf32, 2 bf16); timed with CUDA events, with
// the peak GPU memory of model, data, activations, gradients and optimizer state since the model was made.
// Run: bench_train_step --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <string>

#include "bench/common.h"
#include "dyad/dyad.h"

using namespace dyad;

namespace {

void BM_train_step(benchmark::State& state) {
    const bool omp = state.range(0) != 0;
    const int threads = int(state.range(1));
    const int64_t batch = state.range(2);
    set_num_threads(threads);
    set_cpu_kernels(omp ? CpuKernels::omp : CpuKernels::naive);
    state.SetLabel(std::string(omp ? "omp x" + std::to_string(threads) : "naive") + " batch " + std::to_string(batch));
    manual_seed(0);
    auto model = models::baseline_cnn(200, 3, 64);
    optim::SgdOptions o;
    o.lr = 0.01;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    optim::Sgd sgd(model->named_parameters(), o);
    const Tensor x = Tensor::randn({batch, 3, 64, 64});
    std::vector<int32_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; i++) labels[size_t(i)] = int32_t((i * 37) % 200);
    const Tensor y = Tensor::from_vector(labels, {batch});
    auto step = [&] {
        sgd.zero_grad();
        Tensor loss = cross_entropy((*model)(x), y);
        loss.backward();
        sgd.step();
        return loss;
    };
    step();  // warm-up: first-touch allocations
    for (auto _ : state) benchmark::DoNotOptimize(step());
    state.counters["img/s"] =
        benchmark::Counter(double(batch) * double(state.iterations()), benchmark::Counter::kIsRate);
    set_cpu_kernels(CpuKernels::omp);
}

void BM_train_step_cuda(benchmark::State& state) {
    if (!cuda_available()) {
        state.SkipWithError("no CUDA device");
        return;
    }
    const int64_t batch = state.range(0);
    const Precision precision = state.range(1) == 0   ? Precision::fp32
                                : state.range(1) == 1 ? Precision::tf32
                                                      : Precision::bf16;
    set_precision(precision);
    synchronize();
    cuda::empty_cache();
    cuda::reset_peak_memory_stats();
    const size_t base = cuda::memory_stats().in_use;
    manual_seed(0);
    auto model = models::baseline_cnn(200, 3, 64);
    model->to(Device::cuda());
    optim::SgdOptions o;
    o.lr = 0.01;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    optim::Sgd sgd(model->named_parameters(), o);
    const Tensor x = Tensor::randn({batch, 3, 64, 64}).to(Device::cuda());
    std::vector<int32_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; i++) labels[size_t(i)] = int32_t((i * 37) % 200);
    const Tensor y = Tensor::from_vector(labels, {batch}).to(Device::cuda());
    auto step = [&] {
        sgd.zero_grad();
        Tensor loss = cross_entropy((*model)(x), y);
        loss.backward();
        sgd.step();
    };
    // Ten steps per timed iteration: the loss is never read, so nothing waits inside (as in the PyTorch
    // script).
    constexpr int kSteps = 10;
    const double seconds =
        bench::time_gpu(state, "batch " + std::to_string(batch) + " " + precision_name(precision), [&] {
            for (int i = 0; i < kSteps; i++) step();
        });
    state.counters["img/s"] = double(batch) * kSteps * double(state.iterations()) / seconds;
    state.counters["peak_MiB"] = double(cuda::memory_stats().peak - base) / (1024.0 * 1024.0);
    set_precision(Precision::fp32);
}

}  // namespace

BENCHMARK(BM_train_step_cuda)
    ->ArgNames({"batch", "precision"})
    ->Args({128, 0})
    ->Args({256, 0})
    ->Args({1024, 0})
    ->Args({128, 1})
    ->Args({256, 1})
    ->Args({256, 2})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_train_step)->Args({1, 1, 64})->Args({1, 2, 64})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_train_step)->Args({0, 1, 64})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

BENCHMARK_MAIN();
