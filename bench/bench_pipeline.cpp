// The trainer's epoch loop against the bare training step: does the data pipeline keep up?
// Both run the baseline CNN (64x64x3, 200 classes, SGD momentum 0.9) at the same batch on the same device:
//   step:     forward, cross-entropy, backward and SGD on one batch already on the device, over and over;
//   pipeline: what dyad-tinyimagenet does each step: the next batch from data::Loader (a seeded shuffle of
//             a uint8 data set, random crop with padding 4, flip and normalisation; on a GPU the set is
//             uploaded once and the batch is made by a kernel, prefetched on a background thread), the
//             same step, the loss and predictions kept and read back every 16 steps.
// The step runs through CapturedStep as in the trainer: with graph on, a GPU replays it from a CUDA graph
// (and the loader then makes batches on the calling thread, as the trainer's does).
// One benchmark iteration is one pass of `steps` steps of each; the counters give both rates and
// pipeline_vs_step, the epoch rate as a fraction of the step rate (the trainer's target is >= 0.95).
// Args: device (0 cpu, 1 cuda), batch, steps per pass, graph (0 off, 1 on).
// Run: bench_pipeline --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "bench/common.h"
#include "dyad/dyad.h"

using namespace dyad;

namespace {

using Clock = std::chrono::steady_clock;

data::Dataset random_set(int64_t count, int64_t classes) {
    data::Dataset d;
    std::vector<uint8_t> pixels(static_cast<size_t>(count * 64 * 64 * 3));
    uint32_t s = 12345;
    for (uint8_t& p : pixels) {
        s = s * 1664525u + 1013904223u;
        p = uint8_t(s >> 24);
    }
    std::vector<int32_t> labels(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; i++) labels[size_t(i)] = int32_t((i * 37) % classes);
    d.images = Tensor::from_vector(pixels, {count, 64, 64, 3});
    d.labels = Tensor::from_vector(labels, {count});
    for (int64_t c = 0; c < classes; c++) {
        d.class_ids.push_back(std::to_string(c));
        d.class_names.push_back(std::to_string(c));
    }
    return d;
}

void BM_pipeline(benchmark::State& state) {
    const bool gpu = state.range(0) != 0;
    if (gpu && !bench::require_gpu(state)) return;
    const Device dev = gpu ? Device::cuda(0) : Device::cpu();
    const int64_t batch = state.range(1), steps = state.range(2);
    const bool graph = state.range(3) != 0;
    state.SetLabel(std::string(gpu ? "cuda" : "cpu x" + std::to_string(num_threads())) + " batch " +
                   std::to_string(batch) + (gpu ? (graph ? " graph" : " eager") : ""));

    manual_seed(0);
    auto model = models::baseline_cnn(200, 3, 64);
    model->to(dev);
    optim::SgdOptions so;
    so.lr = 0.01;
    so.momentum = 0.9;
    so.weight_decay = 5e-4;
    optim::Sgd sgd(model->named_parameters(), so);

    data::LoaderOptions lo;
    lo.batch_size = batch;
    lo.drop_last = true;
    lo.augment.pad = 4;
    lo.augment.crop = true;
    lo.augment.flip = true;
    lo.augment.out_h = lo.augment.out_w = 64;
    lo.mean = {0.48f, 0.45f, 0.40f};
    lo.std = {0.28f, 0.27f, 0.28f};
    lo.device = dev;
    if (gpu && graph) lo.prefetch = 0;
    data::Loader loader(random_set(batch * steps, 200), lo);

    CaptureOptions co;
    co.enabled = graph;
    CapturedStep captured(
        [&](const std::vector<Tensor>& in) {
            sgd.zero_grad();
            const Tensor logits = (*model)(in[0]);
            Tensor loss = cross_entropy(logits, in[1]);
            loss.backward();
            sgd.step();
            return std::vector<Tensor>{loss.detach(), argmax(logits.detach(), 1)};
        },
        co);
    auto step = [&](const data::Batch& b) {
        const std::vector<Tensor> out = captured({b.x, b.y});
        return std::make_pair(out[0], out[1]);
    };
    auto wait = [&] {
        if (gpu) synchronize();
    };

    loader.start_epoch(0);
    data::Batch fixed;
    loader.next(fixed);
    for (int i = 0; i < 3; i++) step(fixed);  // warm-up: allocations, cuDNN's algorithm search, the capture
    wait();

    double pipeline_s = 0, step_s = 0;
    int64_t epoch = 1;
    for (auto _ : state) {
        // The trainer's loop.
        auto t0 = Clock::now();
        loader.start_epoch(epoch++);
        data::Batch b;
        std::vector<Tensor> losses, preds;
        double loss_sum = 0;
        while (loader.next(b)) {
            auto [loss, pred] = step(b);
            losses.push_back(loss);
            preds.push_back(pred);
            if (losses.size() == 16) {
                for (const Tensor& l : losses) loss_sum += l.item();
                for (const Tensor& p : preds) benchmark::DoNotOptimize(p.to(Device::cpu()));
                losses.clear(), preds.clear();
            }
        }
        for (const Tensor& l : losses) loss_sum += l.item();
        wait();
        pipeline_s += std::chrono::duration<double>(Clock::now() - t0).count();
        benchmark::DoNotOptimize(loss_sum);

        // The bare step on a batch already on the device.
        t0 = Clock::now();
        for (int64_t i = 0; i < steps; i++) benchmark::DoNotOptimize(step(fixed).first);
        wait();
        step_s += std::chrono::duration<double>(Clock::now() - t0).count();
    }
    const double images = double(batch * steps) * double(state.iterations());
    state.counters["pipeline_img/s"] = images / pipeline_s;
    state.counters["step_img/s"] = images / step_s;
    state.counters["pipeline_vs_step"] = step_s / pipeline_s;
    if (graph && gpu && captured.captures() == 0)
        state.SkipWithError(("the step was not captured: " + captured.fallback_reason()).c_str());
}

}  // namespace

BENCHMARK(BM_pipeline)->Args({0, 128, 8, 0})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_pipeline)
    ->Args({1, 128, 100, 1})
    ->Args({1, 256, 50, 1})
    ->Args({1, 128, 100, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
