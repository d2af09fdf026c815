// One whole training step: forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4), on random
// data already in memory, as bench/pytorch_train_step.py does in PyTorch. Reports img/s. Models: 0 the baseline
// CNN (models::baseline_cnn, 64x64x3, 200 classes), 1 the ResNet-18 for small images (models::resnet18_small,
// 64x64x3, 200 classes, batch norm in training mode).
// CPU args: kernels (0 naive, 1 omp), threads, batch, model, fuse (layer fusion on or off, nn::set_fuse_layers:
// the lever's gain; in the ResNet it is batch norm + ReLU). pct_floor: the step's rate over its compute floor
// (see BM_train_step). The naive step runs once (it takes seconds).
// GPU (BM_train_step_cuda) args: batch, precision (0 fp32, 1 tf32, 2 bf16: bfloat16 images and activations,
// float32 weights and loss), model, graph (CapturedStep on or
// off), fuse, nhwc (channels_last images); timed with CUDA events, with the peak GPU memory of model, data,
// activations, gradients and optimizer state since the model was made (peak_MiB, which includes the eager warm-up
// steps), the CUDA graph's own memory (graph_MiB) and what the replayed step holds (steady_MiB). BM_train_step_format:
// the CPU step fed channels_last or bfloat16 images next to the NCHW float32 one (args threads, batch, model,
// nhwc, bf16; on the CPU bfloat16 runs the float32 kernels on widened copies: it measures that cost).
// scripts/compare.sh runs these next to PyTorch and writes the comparison table. Run: bench_train_step
// --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/cases.h"
#include "bench/common.h"
#include "dyad/dyad.h"

using namespace dyad;

namespace {

using bench::train_step_model_name;

// The model, its optimizer and one batch of random data on `device`.
struct StepSetup {
    std::shared_ptr<nn::Module> model;
    std::unique_ptr<optim::Sgd> sgd;
    Tensor x, y;

    // channels_last: images and convolution weights laid out NHWC, as the trainer's --memory-format does.
    // bf16: bfloat16 images, so the network runs on bfloat16 activations (the trainer's --precision bf16).
    StepSetup(int64_t model_id, int64_t batch, Device device, bool channels_last = false, bool bf16 = false) {
        manual_seed(0);
        model = bench::train_step_model(model_id);
        model->to(device);
        if (channels_last) model->to(MemoryFormat::channels_last);
        sgd = std::make_unique<optim::Sgd>(model->named_parameters(), bench::train_step_sgd());
        x = Tensor::randn({batch, 3, bench::kTrainStepImage, bench::kTrainStepImage}).to(device);
        if (channels_last) x = x.contiguous(MemoryFormat::channels_last);
        if (bf16) x = x.to(DType::bfloat16);
        y = Tensor::from_vector(bench::train_step_labels(batch), {batch}).to(device);
    }

    Tensor step() {
        sgd->zero_grad();
        Tensor loss = cross_entropy((*model)(x), y);
        loss.backward();
        sgd->step();
        return loss;
    }
};

void BM_train_step(benchmark::State& state) {
    const bool omp = state.range(0) != 0;
    const int threads = int(state.range(1));
    const int64_t batch = state.range(2);
    const int64_t model = state.range(3);
    const bool fuse = state.range(4) != 0;
    nn::set_fuse_layers(fuse);
    set_num_threads(threads);
    set_cpu_kernels(omp ? CpuKernels::omp : CpuKernels::naive);
    state.SetLabel(std::string(omp ? "omp x" + std::to_string(threads) : "naive") + " " + train_step_model_name(model) +
                   " batch " + std::to_string(batch) + (fuse ? "" : " unfused"));
    StepSetup s(model, batch, Device::cpu());
    s.step();  // warm-up: first-touch allocations
    for (auto _ : state) benchmark::DoNotOptimize(s.step());
    state.counters["img/s"] =
        benchmark::Counter(double(batch) * double(state.iterations()), benchmark::Counter::kIsRate);
    // The compute floor: a training step is three passes of the forward's FLOP (forward, backward data,
    // backward weights; the first layer's backward data is not needed and is counted anyway), at the FMA
    // peak of the thread count. pct_floor: the step's rate over that floor's.
    const double step_flop = bench::train_step_flop(*s.model, batch);
    state.counters["pct_floor"] = bench::fraction_of(step_flop, bench::cpu_peak_gflops(omp ? threads : 1) * 1e9);
    set_cpu_kernels(CpuKernels::omp);
    nn::set_fuse_layers(true);
}

// The same step fed channels_last (NHWC) images, interleaved with the NCHW step in the same run: every
// layer then runs its NHWC kernels (omp: im2col convolutions where NCHW has Winograd) and the gradients
// stay channels_last; the convolutions' weights are channels_last too (Module::to), as in the trainer.
// Args: threads, batch, model, nhwc (0: the NCHW step, as a reference in the same run).
void BM_train_step_format(benchmark::State& state) {
    const int threads = int(state.range(0));
    const int64_t batch = state.range(1);
    const int64_t model = state.range(2);
    const bool nhwc = state.range(3) != 0;
    const bool bf16 = state.range(4) != 0;
    set_num_threads(threads);
    set_cpu_kernels(CpuKernels::omp);
    state.SetLabel("omp x" + std::to_string(threads) + " " + train_step_model_name(model) + " batch " +
                   std::to_string(batch) + (nhwc ? " channels_last" : " contiguous") + (bf16 ? " bfloat16" : ""));
    StepSetup s(model, batch, Device::cpu(), nhwc, bf16);
    s.step();
    for (auto _ : state) benchmark::DoNotOptimize(s.step());
    state.counters["img/s"] =
        benchmark::Counter(double(batch) * double(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_train_step_cuda(benchmark::State& state) {
    if (!bench::require_gpu(state)) return;
    const int64_t batch = state.range(0);
    const Precision precision = state.range(1) == 0   ? Precision::fp32
                                : state.range(1) == 1 ? Precision::tf32
                                                      : Precision::bf16;
    const int64_t model = state.range(2);
    const bool graph = state.range(3) != 0;
    const bool fuse = state.range(4) != 0;
    const bool nhwc = state.range(5) != 0;
    set_precision(precision);
    nn::set_fuse_layers(fuse);
    synchronize();
    cuda::empty_cache();
    cuda::reset_peak_memory_stats();
    const size_t base = cuda::memory_stats().in_use;
    StepSetup s(model, batch, Device::cuda(), nhwc, precision == Precision::bf16);
    // As the trainer runs it: through CapturedStep, which with graph on captures the step after two eager
    // calls (inside time_gpu's untimed warm-up) and replays it; with graph off it calls the step.
    CaptureOptions co;
    co.enabled = graph;
    CapturedStep captured([&s](const std::vector<Tensor>&) { return std::vector<Tensor>{s.step()}; }, co);
    // Ten steps per timed iteration: the loss is never read, so nothing waits inside (as in the PyTorch
    // script).
    constexpr int kSteps = 10;
    const std::string what = std::string(train_step_model_name(model)) + " batch " + std::to_string(batch) + " " +
                             precision_name(precision) + (graph ? " graph" : " eager") + (fuse ? "" : " unfused") +
                             (nhwc ? " channels_last" : "");
    const double seconds = bench::time_gpu(state, what, [&] {
        for (int i = 0; i < kSteps; i++) captured({s.x, s.y});
    });
    nn::set_fuse_layers(true);
    set_precision(Precision::fp32);
    if (graph && captured.captures() == 0) {
        state.SkipWithError(("the step was not captured: " + captured.fallback_reason()).c_str());
        return;
    }
    state.counters["img/s"] = double(batch) * kSteps * double(state.iterations()) / seconds;
    const cuda::MemoryStats m = cuda::memory_stats();
    state.counters["peak_MiB"] = double(m.peak - base) / (1024.0 * 1024.0);
    state.counters["graph_MiB"] = double(m.graph_reserved) / (1024.0 * 1024.0);
    // What a replayed step holds: the live tensors (model, data, optimizer state, the graph's outputs and
    // gradients, counted twice with the graph's memory, so this errs high) plus the graph's own memory.
    state.counters["steady_MiB"] = double(m.in_use - base + m.graph_reserved) / (1024.0 * 1024.0);
}

}  // namespace

// Every configuration with the trainer's defaults (graph and fusion on), then the levers one at a time:
// the same step without the CUDA graph, and without layer fusion; and fed channels_last images (nhwc 1: NHWC
// kernels and cuDNN's NHWC algorithms from the first layer on).
BENCHMARK(BM_train_step_cuda)
    ->ArgNames({"batch", "precision", "model", "graph", "fuse", "nhwc"})
    ->Args({128, 0, 0, 1, 1, 0})
    ->Args({256, 0, 0, 1, 1, 0})
    ->Args({1024, 0, 0, 1, 1, 0})
    ->Args({128, 1, 0, 1, 1, 0})
    ->Args({256, 1, 0, 1, 1, 0})
    ->Args({256, 2, 0, 1, 1, 0})
    ->Args({256, 0, 1, 1, 1, 0})
    ->Args({256, 1, 1, 1, 1, 0})
    ->Args({256, 2, 1, 1, 1, 0})
    ->Args({128, 0, 0, 0, 1, 0})
    ->Args({256, 0, 0, 0, 1, 0})
    ->Args({256, 0, 1, 0, 1, 0})
    ->Args({128, 0, 0, 1, 0, 0})
    ->Args({256, 0, 0, 1, 0, 0})
    ->Args({256, 0, 0, 1, 1, 1})
    ->Args({256, 1, 0, 1, 1, 1})
    ->Args({256, 2, 0, 1, 1, 1})
    ->Args({256, 2, 1, 1, 1, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_train_step)
    ->ArgNames({"omp", "threads", "batch", "model", "fuse"})
    ->Args({1, 1, 64, 0, 1})
    ->Args({1, 2, 64, 0, 1})
    ->Args({1, 2, 64, 0, 0})
    ->Args({1, 1, 32, 1, 1})
    ->Args({1, 2, 32, 1, 1})
    ->Args({1, 2, 32, 1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_train_step_format)
    ->ArgNames({"threads", "batch", "model", "nhwc", "bf16"})
    ->Args({2, 64, 0, 0, 0})
    ->Args({2, 64, 0, 1, 0})
    ->Args({2, 64, 0, 0, 1})
    ->Args({2, 32, 1, 0, 0})
    ->Args({2, 32, 1, 1, 0})
    ->Args({2, 32, 1, 0, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_train_step)
    ->ArgNames({"omp", "threads", "batch", "model", "fuse"})
    ->Args({0, 1, 64, 0, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

// Google Benchmark's main plus the versions the comparison table names (JSON "context").
int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("dyad_cpu_kernels_threads", std::to_string(num_threads()));
    benchmark::AddCustomContext("dyad_cuda_versions", cuda_built() ? cuda::versions() : "not built");
    if (cuda_available()) benchmark::AddCustomContext("dyad_gpu", cuda_device_name(0));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
