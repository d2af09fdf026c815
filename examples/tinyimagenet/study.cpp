// The acceleration study (study.h): sweeps, per backend, with a time budget.
#include "study.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
    const bool tty = isatty(1) && !o.quiet;
    const auto start = Clock::now();
    const std::vector<int64_t> sizes = sgemm_sizes(o.max_n);
    for (size_t bi = 0; bi < backends.size(); bi++) {
        const std::string& backend = backends[bi];
        // This backend's share: what is left, split over the backends still to run.
        const double share = (o.budget - seconds_since(start)) / double(backends.size() - bi);
        const auto t_backend = Clock::now();
        BackendScope scope(backend, all_threads);
        double last_seconds = 0;
        int64_t last_n = 0;
        for (int64_t n : sizes) {
            if (last_n > 0) {
                // The next point's cost, from the last one's time and the n^3 work: a warm-up and its repeats.
                const double predicted = last_seconds * std::pow(double(n) / double(last_n), 3.0);
                const double cost = predicted * (predicted > 0.5 ? 2.0 : 1.0 + std::max(3.0, 0.1 / predicted));
                if (seconds_since(t_backend) + cost > share) {
                    r.notes.push_back(backend + ": stopped after n = " + std::to_string(last_n) +
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
            last_seconds = seconds, last_n = n;
            if (!o.quiet) {
                char line[160];
                std::snprintf(line, sizeof line, "study: sgemm %-5s n = %-5lld %10.3f ms  %8.1f GFLOP/s   [%s of %s]",
                              backend.c_str(), static_cast<long long>(n), 1e3 * seconds, p.gflops(),
                              format_seconds(seconds_since(start)).c_str(), format_seconds(o.budget).c_str());
                std::printf(tty ? "\r%s" : "%s\n", line);
                std::fflush(stdout);
            }
        }
        if (tty) std::printf("\n");
    }
    for (const std::string& note : r.notes)
        if (!o.quiet) std::printf("%s\n", note.c_str());
    std::filesystem::create_directories(o.out);
    write_study_csv((std::filesystem::path(o.out) / "study.csv").string(), r);
    write_study_json((std::filesystem::path(o.out) / "study.json").string(), r);
    if (!o.quiet) {
        for (const std::string& b : backends)
            if (b != "naive") {
                const auto s = speedups(r, "sgemm", b, "naive");
                if (s.empty()) continue;
                const int64_t x = crossover(r, "sgemm", b, "naive");
                std::printf("sgemm: %s over naive: %.1fx at n = %lld (the largest both ran); faster from n = %lld\n",
                            b.c_str(), s.back().second, static_cast<long long>(s.back().first),
                            static_cast<long long>(x));
            }
        std::printf("wrote %s/{study.csv, study.json}\n", o.out.c_str());
    }
    return r;
}

std::vector<std::pair<int64_t, double>> speedups(const StudyResult& r, const std::string& kind,
                                                 const std::string& backend, const std::string& reference) {
    std::vector<std::pair<int64_t, double>> out;
    for (const StudyPoint& p : r.points) {
        if (p.kind != kind || p.backend != backend) continue;
        for (const StudyPoint& q : r.points)
            if (q.kind == kind && q.backend == reference && q.size == p.size && p.seconds > 0)
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

void write_study_csv(const std::string& path, const StudyResult& r) {
    std::ostringstream out;
    out << "kind,backend,threads,size,flop,seconds,repeats,gflops\n";
    char line[256];
    for (const StudyPoint& p : r.points) {
        std::snprintf(line, sizeof line, "%s,%s,%d,%lld,%.9g,%.9g,%d,%.9g\n", p.kind.c_str(), p.backend.c_str(),
                      p.threads, static_cast<long long>(p.size), p.flop, p.seconds, p.repeats, p.gflops());
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
                               {"size", p.size},
                               {"flop", p.flop},
                               {"seconds", p.seconds},
                               {"repeats", p.repeats},
                               {"gflops", p.gflops()}});
    j["notes"] = r.notes;
    io::write_file_atomic(path, j.dump(1) + "\n", "study");
}

}  // namespace dyad::trainer
