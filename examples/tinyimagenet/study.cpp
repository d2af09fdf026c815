// The acceleration study (study.h): sweeps, per backend, with a time budget.
#include "study.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/cases.h"
#include "bench/fma_peak.h"
#include "dyad/dyad.h"
#include "trainer.h"

namespace dyad::trainer {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A backend's kernels, threads, device and precision for the duration of its sweep.
struct BackendScope {
    CpuKernels prev_kernels = cpu_kernels();
    int prev_threads = num_threads();
    Precision prev_precision = precision();
    Device device = Device::cpu();
    int threads = 0;
    BackendScope(const std::string& backend, int all_threads) {
        if (backend.rfind("cuda", 0) == 0) {
            device = Device::cuda();
            set_precision(backend == "cuda-tf32"   ? Precision::tf32
                          : backend == "cuda-bf16" ? Precision::bf16
                                                   : Precision::fp32);
            return;
        }
        set_cpu_kernels(backend == "naive" ? CpuKernels::naive : CpuKernels::omp);
        threads = backend == "cpu" ? all_threads : 1;
        set_num_threads(threads);
    }
    ~BackendScope() {
        set_cpu_kernels(prev_kernels);
        set_num_threads(prev_threads);
        if (device.is_cuda()) set_precision(prev_precision);
    }
};

struct Measured {
    double seconds = 0;  // median of the repeats
    int repeats = 0;
    double first = 0;  // the first run
};

// As bench/ measures: the first run timed apart (wall clock, the GPU waited for); then on the GPU one more
// untimed run (bench/common.h's time_gpu makes two untimed runs in all); then repeats, at least 3 and 0.1 s
// (at most 20), or a single repeat when the first run took over half a second, each timed by the wall clock
// on the CPU and by CUDA events on dyad's stream on the GPU (fn only queues the work there); the median.
Measured measure(const std::function<void()>& fn, bool gpu) {
    Measured m;
    const auto t0 = Clock::now();
    fn();
    if (gpu) synchronize();
    m.first = seconds_since(t0);
    std::unique_ptr<cuda::Timer> timer;
    if (gpu) {
        fn();
        synchronize();
        timer = std::make_unique<cuda::Timer>();
    }
    auto once = [&] {
        if (gpu) {
            timer->start();
            fn();
            timer->stop();
            return timer->elapsed_ms() / 1e3;
        }
        const auto t = Clock::now();
        fn();
        return seconds_since(t);
    };
    std::vector<double> t;
    double total = 0;
    const size_t want = m.first > 0.5 ? 1 : 3;
    while (t.size() < want || (total < 0.1 && t.size() < 20)) {
        t.push_back(once());
        total += t.back();
    }
    std::sort(t.begin(), t.end());
    const size_t n = t.size();
    m.seconds = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    m.repeats = int(n);
    return m;
}

std::string format_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, s < 1 ? "%.2f s" : "%.0f s", s);
    return buf;
}

}  // namespace

std::string study_progress_line(const StudyPoint& p, double elapsed, double budget, int bar_width) {
    char what[64];
    if (p.kind == "sgemm")
        std::snprintf(what, sizeof what, "sgemm n = %lld", static_cast<long long>(p.size));
    else
        std::snprintf(what, sizeof what, "%s %lldpx batch %lld", p.model.c_str(), static_cast<long long>(p.image),
                      static_cast<long long>(p.size));
    const double done = budget > 0 ? std::min(1.0, std::max(0.0, elapsed / budget)) : 1.0;
    const int filled = int(done * bar_width + 0.5);
    const std::string bar = std::string(size_t(filled), '#') + std::string(size_t(bar_width - filled), '.');
    char line[256];
    std::snprintf(line, sizeof line, "study [%s] %s of %s  %-5s %-26s %11.3f ms %8.1f GFLOP/s", bar.c_str(),
                  format_seconds(elapsed).c_str(), format_seconds(budget).c_str(), p.backend.c_str(), what,
                  1e3 * p.seconds, p.gflops());
    return line;
}

std::vector<int64_t> sgemm_sizes(int64_t max_n) {
    std::vector<int64_t> out;
    for (int64_t n = 64; n <= max_n; n *= 2) out.push_back(n);
    return out;
}

double sgemm_flop(int64_t n) { return 2.0 * double(n) * double(n) * double(n); }

std::vector<std::string> study_backends(const std::vector<std::string>& devices, bool gpu_found) {
    const std::vector<std::string> cpu{"naive", "cpu1", "cpu"}, gpu{"cuda", "cuda-tf32", "cuda-bf16"};
    auto is_gpu_backend = [&](const std::string& d) { return std::find(gpu.begin(), gpu.end(), d) != gpu.end(); };
    for (const std::string& d : devices)
        DYAD_CHECK(std::find(cpu.begin(), cpu.end(), d) != cpu.end() || is_gpu_backend(d), "study: unknown backend '",
                   d, "' (naive, cpu1, cpu, cuda, cuda-tf32, cuda-bf16)");
    if (!devices.empty()) {
        for (const std::string& d : devices)
            DYAD_CHECK(!is_gpu_backend(d) || gpu_found, "study: --device ", d,
                       ", but no GPU was found; leave the cuda backends out");
        return devices;
    }
    std::vector<std::string> out = cpu;
    if (gpu_found) out.insert(out.end(), gpu.begin(), gpu.end());
    return out;
}

namespace {

// The cost of measuring a point whose one run is predicted to take `predicted` seconds: the warm-up and the
// repeats measure() makes.
double point_cost(double predicted) {
    if (predicted <= 0) return 0;
    return predicted * (predicted > 0.5 ? 2.0 : 2.0 + std::max(3.0, 0.1 / predicted));
}

struct Progress {
    const StudyOptions& o;
    Clock::time_point start;
    bool tty;
    void point(const StudyPoint& p) const {
        if (o.quiet) return;
        const std::string line = study_progress_line(p, seconds_since(start), o.budget);
        std::printf(tty ? "\r%-120s" : "%s\n", line.c_str());
        std::fflush(stdout);
    }
};

// A measured point, added to the result and shown on the progress line.
const StudyPoint& add_point(StudyResult& r, const Progress& progress, const char* kind, const std::string& backend,
                            const BackendScope& scope, const std::string& model, int64_t image, int64_t size,
                            double flop, const Measured& m) {
    StudyPoint p;
    p.kind = kind;
    p.backend = backend;
    p.threads = scope.threads;
    p.model = model;
    p.image = image;
    p.size = size;
    p.flop = flop;
    p.seconds = m.seconds;
    p.repeats = m.repeats;
    p.first_seconds = m.first;
    r.points.push_back(p);
    progress.point(p);
    return r.points.back();
}

// The best SGEMM rate of a sweep and the n it was reached at.
struct SgemmBest {
    double gflops = 0;
    int64_t n = 0;
};

// The SGEMM sweep of one backend within `limit` seconds; returns the best rate it reached (0 if none).
SgemmBest sweep_sgemm(StudyResult& r, const std::string& backend, const BackendScope& scope, double limit,
                      const StudyOptions& o, const Progress& progress) {
    const auto t0 = Clock::now();
    double last_seconds = 0;
    SgemmBest best;
    int64_t last_n = 0;
    for (int64_t n : sgemm_sizes(o.max_n)) {
        if (last_n > 0) {
            const double cost = point_cost(last_seconds * std::pow(double(n) / double(last_n), 3.0));
            if (seconds_since(t0) + cost > limit) {
                r.notes.push_back(backend + ": sgemm stopped after n = " + std::to_string(last_n) +
                                  " (n = " + std::to_string(n) + " would take about " + format_seconds(cost) +
                                  ", over its share of the budget)");
                break;
            }
        }
        NoGradGuard ng;
        manual_seed(uint64_t(n));
        const Tensor a = Tensor::randn({n, n}).to(scope.device), b = Tensor::randn({n, n}).to(scope.device);
        const Measured m = measure([&] { Tensor c = matmul(a, b); }, scope.device.is_cuda());
        const StudyPoint& p = add_point(r, progress, "sgemm", backend, scope, "", 0, n, sgemm_flop(n), m);
        last_seconds = m.seconds, last_n = n;
        if (p.gflops() > best.gflops) best = {p.gflops(), n};
    }
    return best;
}

// Ten steps per timed run on the GPU, as bench_train_step times them.
constexpr int kGpuStepsPerRun = 10;

// One training-step series of one backend within `limit` seconds. A series' first point is predicted from
// the backend's SGEMM speed (gflops; 0: not predicted).
void sweep_steps(StudyResult& r, const std::string& backend, const BackendScope& scope, const StepSeries& series,
                 double limit, double gflops, const Progress& progress) {
    const auto t0 = Clock::now();
    const bool gpu = scope.device.is_cuda();
    manual_seed(1);
    std::shared_ptr<nn::Module> model = make_model(series.model, bench::kTrainStepClasses, 3, series.image);
    model->to(scope.device);
    optim::Sgd sgd(model->named_parameters(), study_sgd());
    double last_seconds = 0;
    int64_t last_batch = 0;
    for (int64_t batch : series.batches) {
        const double flop = step_flop(series.model, series.image, batch);
        const double predicted = last_batch > 0 ? last_seconds * double(batch) / double(last_batch)
                                 : gflops > 0   ? flop / (gflops * 1e9)
                                                : 0;
        const double cost = point_cost(predicted) * (gpu ? kGpuStepsPerRun : 1);
        if (seconds_since(t0) + cost > limit) {
            r.notes.push_back(
                backend + ": " + series_kind(series) + " stopped " +
                (last_batch > 0 ? "after batch " + std::to_string(last_batch) : "before its first point") + " (batch " +
                std::to_string(batch) + " would take about " + format_seconds(cost) +
                ", over its share of the budget)");
            break;
        }
        manual_seed(uint64_t(batch));
        // cuda-bf16: bfloat16 images, so the network runs on bfloat16 activations (the trainer's bf16 mode).
        const Tensor x = Tensor::randn({batch, 3, series.image, series.image})
                             .to(scope.device)
                             .to(backend == "cuda-bf16" ? DType::bfloat16 : DType::float32);
        const Tensor y = Tensor::from_vector(bench::train_step_labels(batch), {batch}).to(scope.device);
        auto step = [&](const std::vector<Tensor>&) {
            sgd.zero_grad();
            Tensor loss = cross_entropy((*model)(x), y);
            loss.backward();
            sgd.step();
            return std::vector<Tensor>{loss};
        };
        Measured m;
        if (gpu) {
            // As the trainer runs it: eager warm-up steps (the first one timed apart as the setup), then the
            // step captured once into a CUDA graph and replayed.
            CapturedStep captured(step);
            const auto t_first = Clock::now();
            captured({x, y});
            synchronize();
            const double first = seconds_since(t_first);
            m = measure(
                [&] {
                    for (int i = 0; i < kGpuStepsPerRun; i++) captured({x, y});
                },
                true);
            m.seconds /= kGpuStepsPerRun;
            m.first = first;
            if (captured.captures() == 0)
                r.notes.push_back(backend + ": " + series_kind(series) + " batch " + std::to_string(batch) +
                                  " ran eagerly: " + captured.fallback_reason());
        } else {
            m = measure([&] { step({}); }, false);
        }
        add_point(r, progress, "step", backend, scope, series.model, series.image, batch, flop, m);
        last_seconds = m.seconds, last_batch = batch;
    }
}

// The per-layer profile of the baseline's step at 64 px within `limit` seconds, predicted from the series'
// point at the profile's batch. The first backend profiled (naive, the slowest) picks the batch: the largest
// it measured up to kProfileBatch; the others use the same, so that their bars compare. Skipped, with a
// note, when the backend has no point at that batch.
void profile_backend(StudyResult& r, const std::string& backend, const BackendScope& scope, double limit,
                     int64_t& batch) {
    const StudyPoint* at = nullptr;
    for (const StudyPoint& p : r.points)
        if (p.kind == "step" && p.backend == backend && p.model == "baseline" && p.image == 64 &&
            (batch > 0 ? p.size == batch : p.size <= kProfileBatch) && (!at || p.size > at->size))
            at = &p;
    if (!at) {
        r.notes.push_back(backend + ": no per-layer profile (the baseline at 64 px has no point at batch " +
                          std::to_string(batch > 0 ? batch : 1) + ")");
        return;
    }
    // Each layer alone, forward and backward, plus the whole model: about two steps per repetition.
    const int reps = backend == "naive" ? 1 : 3;
    const double cost = 2.0 * double(reps + 1) * std::max(at->seconds, 1e-3);
    if (cost > limit) {
        r.notes.push_back(backend + ": no per-layer profile (it would take about " + format_seconds(cost) +
                          ", over what is left of its share)");
        return;
    }
    manual_seed(1);
    std::shared_ptr<nn::Module> model = make_model("baseline", bench::kTrainStepClasses, 3, 64);
    model->to(scope.device);
    manual_seed(2);
    const Tensor x = Tensor::randn({at->size, 3, 64, 64}).to(scope.device);
    batch = at->size;
    r.profiles.push_back({backend, "baseline", 64, at->size, profile_layers(*model, x, scope.device, reps)});
}

// "sgemm" or "step baseline 64": which points compare with which.
std::string point_kind(const StudyPoint& p) {
    return p.kind == "sgemm" ? p.kind : "step " + p.model + " " + std::to_string(p.image);
}

}  // namespace

std::vector<StepSeries> step_series() {
    std::vector<int64_t> b1;
    for (int64_t b = 1; b <= 1024; b *= 2) b1.push_back(b);
    std::vector<int64_t> b8;
    for (int64_t b = 8; b <= 256; b *= 2) b8.push_back(b);
    return {{"baseline", 32, b1}, {"baseline", 64, b1}, {"baseline", 128, b1}, {"resnet18", 64, b8}};
}

double step_flop(const std::string& model, int64_t image, int64_t batch) {
    static std::map<std::pair<std::string, int64_t>, double> per_image;  // forward FLOP of one image
    auto it = per_image.find({model, image});
    if (it == per_image.end()) {
        manual_seed(1);
        std::shared_ptr<nn::Module> m = make_model(model, bench::kTrainStepClasses, 3, image);
        it = per_image.emplace(std::make_pair(model, image), nn::forward_flop(*m, {1, 3, image, image})).first;
    }
    return 3.0 * it->second * double(batch);
}

std::string series_kind(const StepSeries& s) { return "step " + s.model + " " + std::to_string(s.image); }

optim::SgdOptions study_sgd() { return bench::train_step_sgd(); }

double StudyResult::ceiling(const std::string& backend) const {
    for (const StudyCeiling& c : ceilings)
        if (c.backend == backend) return c.gflops;
    return 0;
}

double StudyResult::pct_of_ceiling(const StudyPoint& p) const {
    const double c = ceiling(p.backend);
    return c > 0 ? 100.0 * p.gflops() / c : 0;
}

StudyResult run_study(const StudyOptions& options) {
    DYAD_CHECK(options.budget >= 0, "study: --budget must be positive, got ", options.budget);
    StudyOptions o = options;
    if (o.budget == 0) o.budget = cuda_available() ? 120 : 180;
    DYAD_CHECK(o.max_n >= 64, "study: --max-n must be at least 64, got ", o.max_n);
    DYAD_CHECK(o.max_batch >= 1, "study: --max-batch must be at least 1, got ", o.max_batch);
    const std::vector<std::string> backends = study_backends(o.devices, cuda_available());
    const int all_threads = num_threads();
    StudyResult r;
    r.backends = backends;
    r.facts = machine_facts(all_threads);
    r.facts.push_back({"date", today()});
    r.facts.push_back({"budget", format_seconds(o.budget)});
    const Progress progress{o, Clock::now(), isatty(1) && !o.quiet};
    // The CPU ceilings first (a fraction of a second each), while nothing else runs.
    for (const std::string& b : backends) {
        if (b.rfind("cuda", 0) == 0) continue;
        const int threads = b == "cpu" ? all_threads : 1;
        r.ceilings.push_back({b, bench::cpu_peak_gflops(threads),
                              "FP32 FMA peak on " + std::to_string(threads) + (threads == 1 ? " thread" : " threads")});
    }
    int64_t profile_batch = 0;  // picked by the first backend profiled
    std::vector<StepSeries> series;
    if (o.steps)
        for (StepSeries s : step_series()) {
            s.batches.erase(
                std::remove_if(s.batches.begin(), s.batches.end(), [&](int64_t b) { return b > o.max_batch; }),
                s.batches.end());
            if (!s.batches.empty()) series.push_back(s);
        }
    for (size_t bi = 0; bi < backends.size(); bi++) {
        const std::string& backend = backends[bi];
        // This backend's share: what is left, split over the backends still to run; a third of it for SGEMM
        // (all of it without step series), 90% of the rest over the series, then the profile.
        const double share = (o.budget - seconds_since(progress.start)) / double(backends.size() - bi);
        const auto t_backend = Clock::now();
        const BackendScope scope(backend, all_threads);
        const SgemmBest sgemm = sweep_sgemm(r, backend, scope, series.empty() ? share : share / 3, o, progress);
        const double steps_end = o.profile ? share * 0.9 : share;
        for (size_t k = 0; k < series.size(); k++) {
            const double left = (steps_end - seconds_since(t_backend)) / double(series.size() - k);
            sweep_steps(r, backend, scope, series[k], left, sgemm.gflops, progress);
        }
        if (o.profile && o.steps) profile_backend(r, backend, scope, share - seconds_since(t_backend), profile_batch);
        if (scope.device.is_cuda() && sgemm.gflops > 0)
            r.ceilings.push_back({backend, sgemm.gflops,
                                  "best cuBLAS SGEMM rate in " + std::string(precision_name(precision())) +
                                      " in this study (n = " + std::to_string(sgemm.n) + ")"});
        if (progress.tty) std::printf("\n");
    }
    for (const std::string& note : r.notes)
        if (!o.quiet) std::printf("%s\n", note.c_str());
    std::filesystem::create_directories(o.out);
    write_study_csv((std::filesystem::path(o.out) / "study.csv").string(), r);
    write_study_json((std::filesystem::path(o.out) / "study.json").string(), r);
    const std::vector<std::string> charts = write_study_charts(o.out, r);
    write_study_html((std::filesystem::path(o.out) / "study.html").string(), r);
    if (!o.quiet) {
        std::vector<std::string> kinds{"sgemm"};
        for (const StepSeries& s : series) kinds.push_back(series_kind(s));
        for (const std::string& kind : kinds)
            for (const std::string& b : backends) {
                if (b == "naive") continue;
                const auto s = speedups(r, kind, b, "naive");
                if (s.empty()) continue;
                std::printf("%s: %s over naive: %.1fx at %lld (the largest both ran); faster from %lld\n", kind.c_str(),
                            b.c_str(), s.back().second, static_cast<long long>(s.back().first),
                            static_cast<long long>(crossover(r, kind, b, "naive")));
            }
        std::string names;
        for (const std::string& c : charts) names += ", " + std::filesystem::path(c).filename().string();
        std::printf("wrote %s/{study.html, study.csv, study.json%s}\n", o.out.c_str(), names.c_str());
    }
    return r;
}

std::vector<std::pair<int64_t, double>> speedups(const StudyResult& r, const std::string& kind,
                                                 const std::string& backend, const std::string& reference) {
    std::vector<std::pair<int64_t, double>> out;
    for (const StudyPoint& p : r.points) {
        if (point_kind(p) != kind || p.backend != backend) continue;
        for (const StudyPoint& q : r.points)
            if (point_kind(q) == kind && q.backend == reference && q.size == p.size && p.seconds > 0)
                out.push_back({p.size, q.seconds / p.seconds});
    }
    return out;
}

int64_t crossover(const StudyResult& r, const std::string& kind, const std::string& backend,
                  const std::string& reference) {
    // The first size from which the ratio stays above 1: a backend that wins at small sizes and loses at
    // large ones (one thread against two on a small step) never crosses over.
    int64_t from = 0;
    for (const auto& [size, ratio] : speedups(r, kind, backend, reference)) {
        if (ratio <= 1.0)
            from = 0;
        else if (from == 0)
            from = size;
    }
    return from;
}

namespace {

// The kinds and backends of the points in the order they were measured.
std::vector<std::string> point_kinds(const StudyResult& r) {
    std::vector<std::string> kinds;
    for (const StudyPoint& p : r.points)
        if (std::find(kinds.begin(), kinds.end(), point_kind(p)) == kinds.end()) kinds.push_back(point_kind(p));
    return kinds;
}

std::vector<std::string> point_backends(const StudyResult& r) {
    std::vector<std::string> backends = r.backends;
    for (const StudyPoint& p : r.points)
        if (std::find(backends.begin(), backends.end(), p.backend) == backends.end()) backends.push_back(p.backend);
    return backends;
}

bool has_points(const StudyResult& r, const std::string& kind, const std::string& backend) {
    for (const StudyPoint& p : r.points)
        if (point_kind(p) == kind && p.backend == backend) return true;
    return false;
}

std::string size_name(const std::string& kind) { return kind == "sgemm" ? "n" : "batch"; }

std::string kind_title(const std::string& kind) {
    return kind == "sgemm" ? "SGEMM, n x n by n x n" : "Training step, " + kind.substr(5) + " px";
}

std::string file_name(const std::string& kind) {
    std::string file = kind;
    std::replace(file.begin(), file.end(), ' ', '_');
    return file;
}

std::string rate_chart(const StudyResult& r, const std::string& kind) {
    const bool sgemm = kind == "sgemm";
    std::vector<Series> series;
    for (const std::string& b : point_backends(r)) {
        Series s;
        s.name = b;
        for (const StudyPoint& p : r.points)
            if (point_kind(p) == kind && p.backend == b) {
                s.x.push_back(double(p.size));
                s.y.push_back(sgemm ? p.gflops() : double(p.size) / p.seconds);
            }
        if (!s.x.empty()) series.push_back(s);
    }
    return svg_line_chart(kind_title(kind), size_name(kind), sgemm ? "GFLOP/s" : "images/s", series,
                          /*log_x=*/true, /*log_y=*/true);
}

std::string rate_text(double gflops) {
    char buf[32];
    std::snprintf(buf, sizeof buf, gflops >= 100 ? "%.0f" : gflops >= 10 ? "%.1f" : "%.2f", gflops);
    return buf;
}

std::string ratio(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, x >= 100 ? "%.0fx" : x >= 1 ? "%.1fx" : "%.2fx", x);
    return buf;
}

}  // namespace

std::string study_speedup_chart(const StudyResult& r, const std::string& kind, const std::string& reference) {
    ChartOptions options;
    options.log_x = options.log_y = true;
    options.reference_y = 1;
    options.reference_label = "as fast as " + reference;
    std::vector<Series> series;
    for (const std::string& b : point_backends(r)) {
        if (b == reference) continue;
        Series s;
        s.name = b;
        for (const auto& [size, x] : speedups(r, kind, b, reference)) {
            s.x.push_back(double(size));
            s.y.push_back(x);
        }
        if (s.x.empty()) continue;
        series.push_back(s);
        const int64_t at = crossover(r, kind, b, reference);
        if (at > 0) options.marks.push_back({b, double(at), b + " faster from " + std::to_string(at)});
    }
    return svg_line_chart(kind_title(kind) + ": speed-up over " + reference, size_name(kind),
                          "speed-up over " + reference + " (x)", series, options);
}

std::string study_ceiling_chart(const StudyResult& r, const std::string& kind) {
    std::vector<Series> series;
    for (const std::string& b : point_backends(r)) {
        if (r.ceiling(b) <= 0) continue;
        Series s;
        s.name = b;
        for (const StudyPoint& p : r.points)
            if (point_kind(p) == kind && p.backend == b) {
                s.x.push_back(double(p.size));
                s.y.push_back(r.pct_of_ceiling(p));
            }
        if (!s.x.empty()) series.push_back(s);
    }
    ChartOptions options;
    options.log_x = true;
    options.reference_y = 100;
    options.reference_label = "the ceiling";
    return svg_line_chart(kind_title(kind) + ": fraction of the ceiling", size_name(kind), "% of the backend's ceiling",
                          series, options);
}

std::vector<std::string> write_study_charts(const std::string& dir, const StudyResult& r) {
    std::vector<std::string> written;
    for (const std::string& kind : point_kinds(r)) {
        const std::string path = (std::filesystem::path(dir) / (file_name(kind) + ".svg")).string();
        io::write_file_atomic(path, rate_chart(r, kind), "study");
        written.push_back(path);
        if (has_points(r, kind, "naive")) {
            const std::string sp = (std::filesystem::path(dir) / ("speedup_" + file_name(kind) + ".svg")).string();
            io::write_file_atomic(sp, study_speedup_chart(r, kind, "naive"), "study");
            written.push_back(sp);
        }
    }
    return written;
}

void write_study_csv(const std::string& path, const StudyResult& r) {
    std::ostringstream out;
    out << "kind,backend,threads,model,image,size,flop,seconds,repeats,gflops,first_seconds,pct_ceiling\n";
    char line[320];
    for (const StudyPoint& p : r.points) {
        std::snprintf(line, sizeof line, "%s,%s,%d,%s,%lld,%lld,%.9g,%.9g,%d,%.9g,%.9g,%.9g\n", p.kind.c_str(),
                      p.backend.c_str(), p.threads, p.model.c_str(), static_cast<long long>(p.image),
                      static_cast<long long>(p.size), p.flop, p.seconds, p.repeats, p.gflops(), p.first_seconds,
                      r.pct_of_ceiling(p));
        out << line;
    }
    io::write_file_atomic(path, out.str(), "study");
}

void write_study_json(const std::string& path, const StudyResult& r) {
    nlohmann::ordered_json j;
    j["facts"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : r.facts) j["facts"][k] = v;
    j["backends"] = r.backends;
    j["ceilings"] = nlohmann::ordered_json::array();
    for (const StudyCeiling& c : r.ceilings)
        j["ceilings"].push_back({{"backend", c.backend}, {"gflops", c.gflops}, {"what", c.what}});
    j["points"] = nlohmann::ordered_json::array();
    for (const StudyPoint& p : r.points)
        j["points"].push_back({{"kind", p.kind},
                               {"backend", p.backend},
                               {"threads", p.threads},
                               {"model", p.model},
                               {"image", p.image},
                               {"size", p.size},
                               {"flop", p.flop},
                               {"seconds", p.seconds},
                               {"repeats", p.repeats},
                               {"gflops", p.gflops()},
                               {"first_seconds", p.first_seconds}});
    j["profiles"] = nlohmann::ordered_json::array();
    for (const StudyProfile& pr : r.profiles) {
        nlohmann::ordered_json layers = nlohmann::ordered_json::array();
        for (const LayerTime& l : pr.layers)
            layers.push_back({{"layer", l.layer}, {"forward_ms", l.forward_ms}, {"backward_ms", l.backward_ms}});
        j["profiles"].push_back({{"backend", pr.backend},
                                 {"model", pr.model},
                                 {"image", pr.image},
                                 {"batch", pr.batch},
                                 {"layers", layers}});
    }
    j["notes"] = r.notes;
    io::write_file_atomic(path, j.dump(1) + "\n", "study");
}

void write_study_html(const std::string& path, const StudyResult& r) {
    const std::vector<std::string> kinds = point_kinds(r), backends = point_backends(r);
    const bool gpu =
        std::any_of(backends.begin(), backends.end(), [](const std::string& b) { return b.rfind("cuda", 0) == 0; });
    std::string o = html_page_start("dyad acceleration study");
    o += "<p>How each backend's speed grows with the size of the work: the matrix product (SGEMM) and the "
         "training step, measured as bench/ measures them (the first run apart, then the median of timed "
         "repeats; CUDA events on the GPU). naive is the reference every speed-up is over; cpu1 is the OpenMP "
         "kernels on one thread, cpu on all threads" +
         std::string(gpu ? "; cuda, cuda-tf32 and cuda-bf16 the GPU in each precision mode" : "") +
         ". Rates are read against each backend's ceiling (below). A training step's FLOP count is that of direct "
         "convolutions, three times the forward's (as bench_train_step counts it); the OpenMP backend's Winograd "
         "convolutions do fewer operations, so a step can pass 100% of the ceiling.</p>\n";
    o += "<h2>Machine</h2>\n<table>\n";
    for (const auto& [k, v] : r.facts) o += "<tr><th>" + xml_escape(k) + "</th><td>" + xml_escape(v) + "</td></tr>\n";
    for (const StudyCeiling& c : r.ceilings)
        o += "<tr><th>ceiling of " + xml_escape(c.backend) + "</th><td>" + xml_escape(rate_text(c.gflops)) +
             " GFLOP/s (" + xml_escape(c.what) + ")</td></tr>\n";
    o += "</table>\n";

    // Summary: per sweep and backend.
    std::vector<std::vector<std::string>> rows{{"work", "backend", "largest size", "best rate", "% of ceiling",
                                                "vs naive (at size)", "faster than naive from", "vs cpu (at size)",
                                                "faster than cpu from"}};
    for (const std::string& kind : kinds)
        for (const std::string& b : backends) {
            if (!has_points(r, kind, b)) continue;
            int64_t largest = 0;
            double best = 0, best_pct = 0;
            for (const StudyPoint& p : r.points)
                if (point_kind(p) == kind && p.backend == b) {
                    largest = std::max(largest, p.size);
                    const double rate = kind == "sgemm" ? p.gflops() : double(p.size) / p.seconds;
                    best = std::max(best, rate);
                    best_pct = std::max(best_pct, r.pct_of_ceiling(p));
                }
            auto vs = [&](const std::string& ref, std::string* from) {
                const auto s = speedups(r, kind, b, ref);
                if (b == ref || s.empty()) {
                    *from = "-";
                    return std::string("-");
                }
                const int64_t x = crossover(r, kind, b, ref);
                *from = x > 0 ? size_name(kind) + " = " + std::to_string(x) : "never";
                return ratio(s.back().second) + " (" + std::to_string(s.back().first) + ")";
            };
            std::string from_naive, from_cpu;
            const std::string v_naive = vs("naive", &from_naive), v_cpu = vs("cpu", &from_cpu);
            rows.push_back({kind, b, size_name(kind) + " = " + std::to_string(largest),
                            rate_text(best) + (kind == "sgemm" ? " GFLOP/s" : " img/s"),
                            r.ceiling(b) > 0 ? rate_text(best_pct) + "%" : "-", v_naive, from_naive, v_cpu, from_cpu});
        }
    o += "<h2>Summary</h2>\n" + html_table(rows, "summary", 2);

    for (const std::string& kind : kinds) {
        o +=
            "<h2>" + xml_escape(kind_title(kind)) + "</h2>\n<div class=\"charts\">\n" + inline_svg(rate_chart(r, kind));
        if (has_points(r, kind, "naive")) o += inline_svg(study_speedup_chart(r, kind, "naive"));
        if (gpu && has_points(r, kind, "cpu")) o += inline_svg(study_speedup_chart(r, kind, "cpu"));
        o += inline_svg(study_ceiling_chart(r, kind)) + "</div>\n";
        // The times side by side, one row per size and one column per backend (torch.utils.benchmark's
        // Compare layout).
        std::vector<int64_t> sizes;
        std::vector<std::string> header{size_name(kind)}, with;
        for (const std::string& b : backends)
            if (has_points(r, kind, b)) header.push_back(b + " (ms)"), with.push_back(b);
        for (const StudyPoint& p : r.points)
            if (point_kind(p) == kind && std::find(sizes.begin(), sizes.end(), p.size) == sizes.end())
                sizes.push_back(p.size);
        std::sort(sizes.begin(), sizes.end());
        std::vector<std::vector<std::string>> times{header};
        for (int64_t n : sizes) {
            std::vector<std::string> row{std::to_string(n)};
            for (const std::string& b : with) {
                std::string cell = "-";
                for (const StudyPoint& p : r.points)
                    if (point_kind(p) == kind && p.backend == b && p.size == n) {
                        char buf[32];
                        std::snprintf(buf, sizeof buf, "%.4g", 1e3 * p.seconds);
                        cell = buf;
                    }
                row.push_back(cell);
            }
            times.push_back(row);
        }
        o += "<p>Median time of one " + std::string(kind == "sgemm" ? "product" : "step") + ":</p>\n" +
             html_table(times, "times", 0);
    }

    o += "<h2>Where the step's time goes</h2>\n";
    if (r.profiles.empty()) {
        o += "<p>No per-layer profile was measured.</p>\n";
    } else {
        const StudyProfile& first = r.profiles.front();
        o += "<p>The " + xml_escape(first.model) + " CNN's step at " + std::to_string(first.image) + " px, batch " +
             std::to_string(first.batch) +
             ": each layer run alone on the input it receives in the model, forward and backward.</p>\n";
        std::vector<std::string> names;
        std::vector<std::vector<LayerTime>> per_backend;
        for (const StudyProfile& pr : r.profiles) names.push_back(pr.backend), per_backend.push_back(pr.layers);
        o += "<div class=\"charts\">\n" +
             inline_svg(layer_chart("Share of each layer, per backend", names, per_backend));
        const size_t ref = size_t(std::find(names.begin(), names.end(), "naive") - names.begin());
        if (ref < names.size() && names.size() >= 2)
            o += inline_svg(layer_speedup_chart("Speed-up per layer over naive", names, per_backend, ref, ""));
        o += "</div>\n";
    }

    o += "<h2>Setup: the first run of each sweep</h2>\n<p>The first run of a point pays for what later runs reuse "
         "(cuDNN's algorithm search, library handles, first allocations, page faults); it is timed apart and "
         "left out of every figure above.</p>\n";
    std::vector<std::vector<std::string>> setup{
        {"work", "backend", "size", "first run (ms)", "median (ms)", "setup (ms)"}};
    for (const std::string& kind : kinds)
        for (const std::string& b : backends)
            for (const StudyPoint& p : r.points)
                if (point_kind(p) == kind && p.backend == b) {
                    char f[32], m[32], d[32];
                    std::snprintf(f, sizeof f, "%.3f", 1e3 * p.first_seconds);
                    std::snprintf(m, sizeof m, "%.3f", 1e3 * p.seconds);
                    std::snprintf(d, sizeof d, "%.3f", 1e3 * std::max(0.0, p.first_seconds - p.seconds));
                    setup.push_back({kind, b, std::to_string(p.size), f, m, d});
                    break;  // the sweep's first point
                }
    o += html_table(setup, "setup", 2);

    if (!r.notes.empty()) {
        o += "<h2>Notes</h2>\n<ul>\n";
        for (const std::string& n : r.notes) o += "<li>" + xml_escape(n) + "</li>\n";
        o += "</ul>\n";
    }
    std::vector<std::vector<std::string>> all{
        {"work", "backend", "threads", "size", "seconds (median)", "repeats", "GFLOP/s", "first run (s)"}};
    for (const StudyPoint& p : r.points) {
        char sec[32], gf[32], first[32];
        std::snprintf(sec, sizeof sec, "%.6g", p.seconds);
        std::snprintf(gf, sizeof gf, "%.1f", p.gflops());
        std::snprintf(first, sizeof first, "%.6g", p.first_seconds);
        all.push_back({point_kind(p), p.backend, std::to_string(p.threads), std::to_string(p.size), sec,
                       std::to_string(p.repeats), gf, first});
    }
    o += "<h2>Every point</h2>\n<details><summary>" + std::to_string(r.points.size()) +
         " points (also in study.csv and study.json)</summary>\n" + html_table(all, "points", 2) + "</details>\n";
    o += "</body>\n</html>\n";
    io::write_file_atomic(path, o, "study");
}

}  // namespace dyad::trainer
