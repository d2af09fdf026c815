// One whole training step of the baseline CNN (models::baseline_cnn: 64x64x3 input, 200 classes):
// forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4), on random data already in
// memory, as bench/pytorch_train_step.py does in PyTorch. Reports img/s.
// Args: kernels (0 naive, 1 omp), threads, batch. The naive step runs once (it takes seconds).
// Run: bench_train_step --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <string>

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

}  // namespace

BENCHMARK(BM_train_step)->Args({1, 1, 64})->Args({1, 2, 64})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_train_step)->Args({0, 1, 64})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

BENCHMARK_MAIN();
