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

#include "dyad/dyad.h"
#include "trainer.h"

namespace dyad::trainer {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A backend's kernels, threads and device for the duration of its sweep.
struct BackendScope {
    CpuKernels prev_kernels = cpu_kernels();
    int prev_threads = num_threads();
    Device device = Device::cpu();
    int threads = 0;
    BackendScope(const std::string& backend, int all_threads) {
        if (backend == "cuda") {
            device = Device::cuda();
            return;
        }
        set_cpu_kernels(backend == "naive" ? CpuKernels::naive : CpuKernels::omp);
        threads = backend == "cpu" ? all_threads : 1;
        set_num_threads(threads);
    }
    ~BackendScope() {
        set_cpu_kernels(prev_kernels);
        set_num_threads(prev_threads);
    }
};

// Median seconds of fn over repeats after one warm-up run: at least 3 repeats and 0.1 s (at most 20), or a
// single repeat when one run takes over half a second.
std::pair<double, int> measure(const std::function<void()>& fn) {
    auto once = [&] {
        const auto t0 = Clock::now();
        fn();
        return seconds_since(t0);
    };
    const double warm = once();
    std::vector<double> t;
    double total = 0;
    const size_t want = warm > 0.5 ? 1 : 3;
    while (t.size() < want || (total < 0.1 && t.size() < 20)) {
        t.push_back(once());
        total += t.back();
    }
    std::sort(t.begin(), t.end());
    const size_t n = t.size();
    return {n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]), int(n)};
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
    for (const std::string& d : devices)
        DYAD_CHECK(d == "naive" || d == "cpu1" || d == "cpu" || d == "cuda", "study: unknown backend '", d,
                   "' (naive, cpu1, cpu, cuda)");
    if (!devices.empty()) {
        const bool wants_cuda = std::find(devices.begin(), devices.end(), "cuda") != devices.end();
        DYAD_CHECK(!wants_cuda || gpu_found, "study: --device cuda, but no GPU was found; leave cuda out");
        return devices;
    }
    std::vector<std::string> out{"naive", "cpu1", "cpu"};
    if (gpu_found) out.push_back("cuda");
    return out;
}

namespace {

// The cost of measuring a point whose one run is predicted to take `predicted` seconds: the warm-up and the
// repeats measure() makes.
double point_cost(double predicted) {
    if (predicted <= 0) return 0;
    return predicted * (predicted > 0.5 ? 2.0 : 1.0 + std::max(3.0, 0.1 / predicted));
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

// The SGEMM sweep of one backend within `limit` seconds; returns the best GFLOP/s it reached (0 if none).
double sweep_sgemm(StudyResult& r, const std::string& backend, const BackendScope& scope, double limit,
                   const StudyOptions& o, const Progress& progress) {
    const auto t0 = Clock::now();
    double last_seconds = 0, best = 0;
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
        const auto [seconds, repeats] = measure([&] {
            Tensor c = matmul(a, b);
            if (scope.device.is_cuda()) synchronize();
        });
        StudyPoint p;
        p.kind = "sgemm";
        p.backend = backend;
        p.threads = scope.threads;
        p.size = n;
        p.flop = sgemm_flop(n);
        p.seconds = seconds;
        p.repeats = repeats;
        r.points.push_back(p);
        progress.point(p);
        last_seconds = seconds, last_n = n;
        best = std::max(best, p.gflops());
    }
    return best;
}

// One training-step series of one backend within `limit` seconds. A series' first point is predicted from
// the backend's SGEMM speed (gflops; 0: not predicted).
void sweep_steps(StudyResult& r, const std::string& backend, const BackendScope& scope, const StepSeries& series,
                 double limit, double gflops, const Progress& progress) {
    const auto t0 = Clock::now();
    manual_seed(1);
    std::shared_ptr<nn::Module> model = make_model(series.model, 200, 3, series.image);
    model->to(scope.device);
    optim::SgdOptions so;
    so.lr = 0.01;
    so.momentum = 0.9;
    optim::Sgd sgd(model->parameters(), so);
    double last_seconds = 0;
    int64_t last_batch = 0;
    for (int64_t batch : series.batches) {
        const double flop = step_flop(series.model, series.image, batch);
        const double predicted = last_batch > 0 ? last_seconds * double(batch) / double(last_batch)
                                 : gflops > 0   ? flop / (gflops * 1e9)
                                                : 0;
        const double cost = point_cost(predicted);
        if (seconds_since(t0) + cost > limit) {
            r.notes.push_back(
                backend + ": " + series_kind(series) + " stopped " +
                (last_batch > 0 ? "after batch " + std::to_string(last_batch) : "before its first point") + " (batch " +
                std::to_string(batch) + " would take about " + format_seconds(cost) +
                ", over its share of the budget)");
            break;
        }
        manual_seed(uint64_t(batch));
        const Tensor x = Tensor::randn({batch, 3, series.image, series.image}).to(scope.device);
        std::vector<int32_t> labels(static_cast<size_t>(batch));
        for (int64_t i = 0; i < batch; i++) labels[size_t(i)] = int32_t((i * 37) % 200);
        const Tensor y = Tensor::from_vector(labels, {batch}).to(scope.device);
        const auto [seconds, repeats] = measure([&] {
            sgd.zero_grad();
            cross_entropy((*model)(x), y).backward();
            sgd.step();
            if (scope.device.is_cuda()) synchronize();
        });
        StudyPoint p;
        p.kind = "step";
        p.backend = backend;
        p.threads = scope.threads;
        p.model = series.model;
        p.image = series.image;
        p.size = batch;
        p.flop = flop;
        p.seconds = seconds;
        p.repeats = repeats;
        r.points.push_back(p);
        progress.point(p);
        last_seconds = seconds, last_batch = batch;
    }
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
        std::shared_ptr<nn::Module> m = make_model(model, 200, 3, image);
        it = per_image.emplace(std::make_pair(model, image), nn::forward_flop(*m, {1, 3, image, image})).first;
    }
    return 3.0 * it->second * double(batch);
}

std::string series_kind(const StepSeries& s) { return "step " + s.model + " " + std::to_string(s.image); }

StudyResult run_study(const StudyOptions& o) {
    DYAD_CHECK(o.budget > 0, "study: --budget must be positive, got ", o.budget);
    DYAD_CHECK(o.max_n >= 64, "study: --max-n must be at least 64, got ", o.max_n);
    const std::vector<std::string> backends = study_backends(o.devices, cuda_available());
    const int all_threads = num_threads();
    StudyResult r;
    r.facts = {{"CPU", cpu_model() + ", " + std::to_string(all_threads) + " threads"},
               {"date", today()},
               {"budget", format_seconds(o.budget)}};
    if (cuda_available()) r.facts.push_back({"GPU", cuda_device_name(0)});
    const Progress progress{o, Clock::now(), isatty(1) && !o.quiet};
    DYAD_CHECK(o.max_batch >= 1, "study: --max-batch must be at least 1, got ", o.max_batch);
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
        // (all of it without step series), the rest over the series.
        const double share = (o.budget - seconds_since(progress.start)) / double(backends.size() - bi);
        const auto t_backend = Clock::now();
        const BackendScope scope(backend, all_threads);
        const double gflops = sweep_sgemm(r, backend, scope, series.empty() ? share : share / 3, o, progress);
        for (size_t k = 0; k < series.size(); k++) {
            const double left = (share - seconds_since(t_backend)) / double(series.size() - k);
            sweep_steps(r, backend, scope, series[k], left, gflops, progress);
        }
        if (progress.tty) std::printf("\n");
    }
    for (const std::string& note : r.notes)
        if (!o.quiet) std::printf("%s\n", note.c_str());
    std::filesystem::create_directories(o.out);
    write_study_csv((std::filesystem::path(o.out) / "study.csv").string(), r);
    write_study_json((std::filesystem::path(o.out) / "study.json").string(), r);
    const std::vector<std::string> charts = write_study_charts(o.out, r);
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
        std::printf("wrote %s/{study.csv, study.json%s}\n", o.out.c_str(), names.c_str());
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
    for (const auto& [size, ratio] : speedups(r, kind, backend, reference))
        if (ratio > 1.0) return size;
    return 0;
}

std::vector<std::string> write_study_charts(const std::string& dir, const StudyResult& r) {
    // The kinds and backends in the order they were measured.
    std::vector<std::string> kinds, backends;
    for (const StudyPoint& p : r.points) {
        if (std::find(kinds.begin(), kinds.end(), point_kind(p)) == kinds.end()) kinds.push_back(point_kind(p));
        if (std::find(backends.begin(), backends.end(), p.backend) == backends.end()) backends.push_back(p.backend);
    }
    std::vector<std::string> written;
    for (const std::string& kind : kinds) {
        const bool sgemm = kind == "sgemm";
        std::vector<Series> series;
        for (const std::string& b : backends) {
            Series s;
            s.name = b;
            for (const StudyPoint& p : r.points)
                if (point_kind(p) == kind && p.backend == b) {
                    s.x.push_back(double(p.size));
                    s.y.push_back(sgemm ? p.gflops() : double(p.size) / p.seconds);
                }
            if (!s.x.empty()) series.push_back(s);
        }
        std::string file = kind;
        std::replace(file.begin(), file.end(), ' ', '_');
        const std::string path = (std::filesystem::path(dir) / (file + ".svg")).string();
        const std::string title = sgemm ? "SGEMM, n x n by n x n" : "Training step, " + kind.substr(5) + " px";
        io::write_file_atomic(path,
                              svg_line_chart(title, sgemm ? "n" : "batch", sgemm ? "GFLOP/s" : "images/s", series,
                                             /*log_x=*/true, /*log_y=*/true),
                              "study");
        written.push_back(path);
    }
    return written;
}

void write_study_csv(const std::string& path, const StudyResult& r) {
    std::ostringstream out;
    out << "kind,backend,threads,model,image,size,flop,seconds,repeats,gflops\n";
    char line[256];
    for (const StudyPoint& p : r.points) {
        std::snprintf(line, sizeof line, "%s,%s,%d,%s,%lld,%lld,%.9g,%.9g,%d,%.9g\n", p.kind.c_str(), p.backend.c_str(),
                      p.threads, p.model.c_str(), static_cast<long long>(p.image), static_cast<long long>(p.size),
                      p.flop, p.seconds, p.repeats, p.gflops());
        out << line;
    }
    io::write_file_atomic(path, out.str(), "study");
}

void write_study_json(const std::string& path, const StudyResult& r) {
    nlohmann::ordered_json j;
    j["facts"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : r.facts) j["facts"][k] = v;
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
                               {"gflops", p.gflops()}});
    j["notes"] = r.notes;
    io::write_file_atomic(path, j.dump(1) + "\n", "study");
}

}  // namespace dyad::trainer
