// The acceleration study (`dyad-tinyimagenet study`): how each backend's speed grows with the size of the
// work. This version sweeps the matrix product (SGEMM, n x n by n x n, n = 64 ... max_n) on every backend
// present: naive, the OpenMP kernels on 1 thread and on all threads, and the GPU. Each point is measured as
// bench/ measures (one warm-up run, then repeats until 3 and 0.1 s, the median); a backend stops once its
// next point would not fit its share of the time budget (naive never reaches 8192). Results go to
// OUT/study.csv and OUT/study.json, with each backend's speed-up over the reference (naive) and the
// crossover size: the first size at which it is faster than the reference.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dyad::trainer {

struct StudyOptions {
    std::string out = "dyad-study";
    double budget = 180;               // seconds for the whole study
    std::vector<std::string> devices;  // naive, cpu1, cpu, cuda; empty: all present
    int64_t max_n = 8192;
    bool quiet = false;
};

// One measured point.
struct StudyPoint {
    std::string kind;     // "sgemm"
    std::string backend;  // "naive", "cpu1" (OpenMP, 1 thread), "cpu" (OpenMP, all threads), "cuda"
    int threads = 1;      // CPU threads (0 on the GPU)
    int64_t size = 0;     // n
    double flop = 0;      // floating-point operations of one run
    double seconds = 0;   // median of the repeats
    int repeats = 0;
    double gflops() const { return seconds > 0 ? flop / seconds * 1e-9 : 0; }
};

struct StudyResult {
    std::vector<std::pair<std::string, std::string>> facts;  // machine, date, budget
    std::vector<StudyPoint> points;
    std::vector<std::string> notes;  // where a backend stopped, and why
};

// The SGEMM sizes swept: 64, 128, ..., up to max_n (powers of two), and one run's FLOP (2 n^3, the count
// bench_gemm reports GFLOP/s with).
std::vector<int64_t> sgemm_sizes(int64_t max_n);
double sgemm_flop(int64_t n);

// The backends a study measures: `devices` (checked: naive, cpu1, cpu, cuda), or every one present.
std::vector<std::string> study_backends(const std::vector<std::string>& devices, bool gpu_found);

// Runs the study (progress on stdout unless quiet) and writes OUT/study.csv and OUT/study.json.
StudyResult run_study(const StudyOptions& options);

// backend's speed-up over `reference` at every size both measured (size, ratio of the reference's time to
// the backend's), and the crossover: the first size at which the backend is faster (0 when never).
std::vector<std::pair<int64_t, double>> speedups(const StudyResult& r, const std::string& kind,
                                                 const std::string& backend, const std::string& reference);
int64_t crossover(const StudyResult& r, const std::string& kind, const std::string& backend,
                  const std::string& reference);

void write_study_csv(const std::string& path, const StudyResult& r);
void write_study_json(const std::string& path, const StudyResult& r);

}  // namespace dyad::trainer
