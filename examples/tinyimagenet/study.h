// The acceleration study (`dyad-tinyimagenet study`): how each backend's speed grows with the size of the
// work, on every backend present: naive, the OpenMP kernels on 1 thread and on all threads, and the GPU.
// Two sweeps per backend: the matrix product (SGEMM, n x n by n x n, n = 64 ... max_n), then the training
// step (forward, cross-entropy, backward, SGD with momentum on random data, 200 classes) of the baseline
// CNN at batch 1 ... 1024 for images of 32, 64 and 128 pixels, and of the ResNet-18 at batch 8 ... 256 for
// 64-pixel images. Each point is measured as bench/ measures (one warm-up run, then repeats until 3 and
// 0.1 s, the median). Every backend gets an equal share of the time budget (what one leaves goes to the
// next), a third of it for SGEMM and the rest split over the step series; a series stops once its next
// point would not fit (predicted from the last point, or for a series' first point from the backend's
// SGEMM speed), so naive never reaches n = 8192. Results go to OUT/study.csv and OUT/study.json, with each
// backend's speed-up over the reference (naive) and the crossover size: the first size at which it is
// faster.
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
    bool steps = true;         // the training-step series after SGEMM (false: SGEMM only)
    int64_t max_batch = 1024;  // the largest training-step batch
    bool quiet = false;
};

// One measured point.
struct StudyPoint {
    std::string kind;     // "sgemm" or "step"
    std::string backend;  // "naive", "cpu1" (OpenMP, 1 thread), "cpu" (OpenMP, all threads), "cuda"
    int threads = 1;      // CPU threads (0 on the GPU)
    std::string model;    // step: "baseline" or "resnet18" ("" for sgemm)
    int64_t image = 0;    // step: the images' side in pixels
    int64_t size = 0;     // sgemm: n; step: the batch
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

// The training-step series: a model, an image size and the batches swept; a step's FLOP is three times the
// forward's (nn::forward_flop, the count bench_train_step's pct_floor uses) times the batch.
struct StepSeries {
    std::string model;
    int64_t image = 0;
    std::vector<int64_t> batches;
};
std::vector<StepSeries> step_series();
double step_flop(const std::string& model, int64_t image, int64_t batch);
// The key of a series' points in speedups()/crossover(): "step baseline 64".
std::string series_kind(const StepSeries& s);

// The backends a study measures: `devices` (checked: naive, cpu1, cpu, cuda), or every one present.
std::vector<std::string> study_backends(const std::vector<std::string>& devices, bool gpu_found);

// Runs the study (progress on stdout unless quiet) and writes OUT/study.csv and OUT/study.json.
StudyResult run_study(const StudyOptions& options);

// backend's speed-up over `reference` at every size both measured (size, ratio of the reference's time to
// the backend's), and the crossover: the first size at which the backend is faster (0 when never).
// `kind` is "sgemm" or a series_kind().
std::vector<std::pair<int64_t, double>> speedups(const StudyResult& r, const std::string& kind,
                                                 const std::string& backend, const std::string& reference);
int64_t crossover(const StudyResult& r, const std::string& kind, const std::string& backend,
                  const std::string& reference);

// The progress line after a point: a bar of the budget spent, then the point:
// "study [######..................] 45 s of 180 s  cpu   sgemm n = 2048  91.000 ms  188.8 GFLOP/s".
std::string study_progress_line(const StudyPoint& p, double elapsed, double budget, int bar_width = 24);

// OUT/sgemm.svg (GFLOP/s against n) and one chart per step series, OUT/step_<model>_<image>.svg (images per
// second against the batch): one line per backend, both axes logarithmic. Returns the files written.
std::vector<std::string> write_study_charts(const std::string& dir, const StudyResult& r);

void write_study_csv(const std::string& path, const StudyResult& r);
void write_study_json(const std::string& path, const StudyResult& r);

}  // namespace dyad::trainer
