// Data-parallel training steps under mpirun (scripts/bench_dist.sh launches it): forward, cross-entropy,
// backward with DataParallel's gradient all-reduce, SGD, on random data (64x64x3, 200 classes, as
// bench_train_step). Every rank runs the same fixed number of iterations (Google Benchmark's adaptive count
// would differ between ranks, and every rank must call the same collectives); a step's time is the slowest
// rank's. Rank 0 reports; the other ranks print nothing.
//
// BM_dist_step/model/batch: steps with the all-reduce overlapped with backward; img/s over all ranks
//   (batch is per rank). Run with 1 rank x 1 thread, 2 ranks x 1 thread and 1 rank x 2 threads for scaling.
// BM_dist_overlap/model/batch/cap_kib: three kinds of step interleaved (each iteration runs one of each): without
//   communication (no_sync), with the all-reduce overlapped with backward, and with it after backward.
//   Counters: the medians of each (none_ms, overlap_ms, after_ms), the overlapped step's cost over the
//   step without communication (overhead_pct), and the wait that backward did not hide (wait_ms).
//   With DYAD_BENCH_DIST_PROFILE=FILE, rank 0 writes the buckets' sizes and when each bucket's gradients
//   were complete, relative to the start of backward, for scripts/dist_model.py.
// Models: 0 the baseline CNN, 1 the ResNet-18 for small images. DYAD_BENCH_DIST_STEPS sets the iterations
// (default 12; the ResNet's default 4).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "dyad/dyad.h"

using namespace dyad;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t steps_for(int64_t model) {
    if (const char* v = std::getenv("DYAD_BENCH_DIST_STEPS"); v && *v) return std::max(1, std::atoi(v));
    return model == 0 ? 12 : 4;
}

struct Setup {
    std::shared_ptr<nn::Module> model;
    std::unique_ptr<dist::DataParallel> dp;
    std::unique_ptr<optim::Sgd> sgd;
    Tensor x, y;

    Setup(int64_t model_id, int64_t batch, bool overlap, size_t bucket_cap_bytes = size_t(25) << 20) {
        manual_seed(0);
        model = model_id == 0 ? std::shared_ptr<nn::Module>(models::baseline_cnn(200, 3, 64))
                              : std::shared_ptr<nn::Module>(models::resnet18_small(200, 3));
        dist::DataParallelOptions o;
        o.overlap = overlap;
        o.bucket_cap_bytes = bucket_cap_bytes;
        dp = std::make_unique<dist::DataParallel>(*model, o);
        optim::SgdOptions so;
        so.lr = 0.01;
        so.momentum = 0.9;
        so.weight_decay = 5e-4;
        sgd = std::make_unique<optim::Sgd>(model->named_parameters(), so);
        manual_seed(uint64_t(1 + dist::rank()));
        x = Tensor::randn({batch, 3, 64, 64});
        std::vector<int32_t> labels(static_cast<size_t>(batch));
        for (int64_t i = 0; i < batch; i++) labels[size_t(i)] = int32_t((i * 37 + dist::rank()) % 200);
        y = Tensor::from_vector(labels, {batch});
    }

    // One step; returns the slowest rank's seconds (the reduction of the times is outside the timing).
    // *backward_start: when this rank's backward began.
    double step(bool communicate, Clock::time_point* backward_start = nullptr) {
        const auto t0 = Clock::now();
        sgd->zero_grad();
        Tensor loss = cross_entropy((*dp)(x), y);
        if (backward_start) *backward_start = Clock::now();
        if (communicate) {
            loss.backward();
        } else {
            const auto guard = dp->no_sync();
            loss.backward();
        }
        sgd->step();
        const double mine = since(t0);
        return dist::all_reduce(mine, dist::ReduceOp::max);
    }
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void BM_dist_step(benchmark::State& state) {
    const int64_t model = state.range(0), batch = state.range(1);
    Setup s(model, batch, true);
    s.step(true);  // warm-up: first-touch allocations, the conv workspaces
    std::vector<double> times;
    for (auto _ : state) {
        const double t = s.step(true);
        times.push_back(t);
        state.SetIterationTime(t);
    }
    const int world = dist::world_size();
    const double med = median(times);
    state.counters["img/s"] = double(batch * world) / med;
    state.counters["ranks"] = world;
    state.counters["threads"] = num_threads();
    state.counters["step_ms"] = 1e3 * med;
    state.SetLabel(std::string(model == 0 ? "baseline" : "resnet18") + ", batch " + std::to_string(batch) +
                   " per rank");
}

void write_profile(const std::string& path, Setup& s, int64_t model, int64_t batch, Clock::time_point bwd0,
                   double none_ms) {
    const auto& ready = s.dp->last_bucket_ready_times();
    const auto bytes = s.dp->bucket_bytes();
    const double origin = std::chrono::duration<double>(bwd0.time_since_epoch()).count();
    std::ofstream out(path);
    out << "{\"model\": \"" << (model == 0 ? "baseline" : "resnet18") << "\", \"batch_per_rank\": " << batch
        << ", \"threads\": " << num_threads() << ", \"ranks\": " << dist::world_size()
        << ", \"step_ms_without_communication\": " << none_ms << ", \"buckets\": [";
    for (size_t i = 0; i < bytes.size(); i++)
        out << (i ? ", " : "") << "{\"bytes\": " << bytes[i]
            << ", \"ready_ms_after_backward_start\": " << 1e3 * (ready[i] - origin) << "}";
    out << "]}\n";
}

void BM_dist_overlap(benchmark::State& state) {
    const int64_t model = state.range(0), batch = state.range(1);
    const size_t cap = size_t(state.range(2)) << 10;
    Setup overlapped(model, batch, true, cap), after(model, batch, false, cap);
    overlapped.step(true);
    after.step(true);
    std::vector<double> none, over, late, wait;
    Clock::time_point bwd0;
    for (auto _ : state) {
        none.push_back(overlapped.step(false));
        over.push_back(overlapped.step(true));
        wait.push_back(dist::all_reduce(overlapped.dp->last_wait_seconds(), dist::ReduceOp::max));
        late.push_back(after.step(true, &bwd0));
        state.SetIterationTime(over.back());
    }
    const double n = median(none), o = median(over), a = median(late);
    state.counters["none_ms"] = 1e3 * n;
    state.counters["overlap_ms"] = 1e3 * o;
    state.counters["after_ms"] = 1e3 * a;
    state.counters["wait_ms"] = 1e3 * median(wait);
    state.counters["overhead_pct"] = 100.0 * (o / n - 1.0);
    state.counters["after_overhead_pct"] = 100.0 * (a / n - 1.0);
    state.counters["ranks"] = dist::world_size();
    state.counters["buckets"] = double(overlapped.dp->bucket_bytes().size());
    state.SetLabel(std::string(model == 0 ? "baseline" : "resnet18") + ", batch " + std::to_string(batch) +
                   " per rank");
    if (const char* path = std::getenv("DYAD_BENCH_DIST_PROFILE"); path && *path && dist::rank() == 0)
        write_profile(std::string(path) + "." + (model == 0 ? "baseline" : "resnet18") + ".cap" +
                          std::to_string(state.range(2)) + "k.json",
                      after, model, batch, bwd0, 1e3 * n);
}

void args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"model", "batch"})->UseManualTime()->Unit(benchmark::kMillisecond);
}
void overlap_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"model", "batch", "cap_kib"})->UseManualTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_dist_step)->Apply(args)->Args({0, 64})->Iterations(steps_for(0));
BENCHMARK(BM_dist_step)->Apply(args)->Args({0, 128})->Iterations(steps_for(0));
BENCHMARK(BM_dist_step)->Apply(args)->Args({1, 16})->Iterations(steps_for(1));
BENCHMARK(BM_dist_step)->Apply(args)->Args({1, 32})->Iterations(steps_for(1));
// Buckets of PyTorch's default cap (25 MiB), and of 1 MiB: finer buckets let more of the reduction run
// while backward goes on.
BENCHMARK(BM_dist_overlap)->Apply(overlap_args)->Args({0, 64, 25600})->Iterations(steps_for(0));
BENCHMARK(BM_dist_overlap)->Apply(overlap_args)->Args({0, 64, 1024})->Iterations(steps_for(0));
BENCHMARK(BM_dist_overlap)->Apply(overlap_args)->Args({1, 16, 25600})->Iterations(steps_for(1));
BENCHMARK(BM_dist_overlap)->Apply(overlap_args)->Args({1, 16, 1024})->Iterations(steps_for(1));

// Every rank runs the benchmarks (the same iterations, so the same collectives); only rank 0 reports.
int main(int argc, char** argv) {
    dist::init();
    // Only rank 0 writes --benchmark_out (another rank opening the file would truncate it).
    std::vector<char*> kept;
    for (int i = 0; i < argc; i++)
        if (dist::rank() == 0 || std::string(argv[i]).rfind("--benchmark_out", 0) != 0) kept.push_back(argv[i]);
    argc = int(kept.size());
    kept.push_back(nullptr);
    argv = kept.data();
    benchmark::Initialize(&argc, argv);
    if (dist::rank() == 0) {
        benchmark::RunSpecifiedBenchmarks();
    } else {
        struct Silent : benchmark::BenchmarkReporter {
            bool ReportContext(const Context&) override { return true; }
            void ReportRuns(const std::vector<Run>&) override {}
        } silent;
        benchmark::RunSpecifiedBenchmarks(&silent);
    }
    benchmark::Shutdown();
    dist::finalize();
    return 0;
}
