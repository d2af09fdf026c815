// The acceleration study (`dyad-tinyimagenet study`): how each backend's speed grows with the size of the
// work, on every backend present: naive, the OpenMP kernels on 1 thread and on all threads, and the GPU in
// each precision mode (cuda: strict fp32, cuda-tf32, cuda-bf16). Two sweeps per backend: the matrix product
// (SGEMM, n x n by n x n, n = 64 ... max_n), then the training step (forward, cross-entropy, backward, SGD
// with momentum and weight decay on random data, 200 classes) of the baseline CNN at batch 1 ... 1024 for
// images of 32, 64 and 128 pixels, and of the ResNet-18 at batch 8 ... 256 for 64-pixel images; then a
// per-layer profile of the baseline's step (64 px, batch 32 or the largest the slowest backend reached). The
// work is bench_gemm's and bench_train_step's (bench/cases.h; a test checks they agree) and it is measured as
// they measure it: on the CPU one warm-up run, then repeats until 3 and 0.1 s, the median; on the GPU two untimed runs,
// then the same repeats each timed with CUDA events (the step as the trainer runs it, replayed from a CUDA graph, ten
// steps per timed run). The first run of every point (cuDNN's algorithm search, handles, first allocations) is timed
// apart and reported as the setup, never in the medians. Each point's rate is read against its backend's ceiling: the
// CPU's FMA peak on its threads (bench/fma_peak.h, measured in the process), the GPU's best SGEMM rate in that
// precision in this study (cuBLAS, the ceiling bench_gemm's vs_cublas uses). Every backend gets an equal share of the
// time budget (what one leaves goes to the next): a third of it for SGEMM, most of the rest split over the step series,
// the remainder for the profile; a series stops once its next point would not fit (predicted from the last point, or
// for a series' first point from the backend's SGEMM speed), so naive never reaches n = 8192. Results go to
// OUT/study.csv, OUT/study.json, one SVG chart per sweep and OUT/study.html, which gathers the charts: rate, speed-up
// over naive (and over the OpenMP backend when a GPU ran) with the crossover sizes marked, fraction of the ceiling,
// per-layer stacked bars.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "report.h"

namespace dyad::trainer {

struct StudyOptions {
    std::string out = "dyad-study";
    double budget = 0;                 // seconds for the whole study; 0: 180, or 120 with a GPU
    std::vector<std::string> devices;  // naive, cpu1, cpu, cuda; empty: all present
    int64_t max_n = 8192;
    bool steps = true;         // the training-step series after SGEMM (false: SGEMM only)
    int64_t max_batch = 1024;  // the largest training-step batch
    bool profile = true;       // the per-layer profile of the baseline's step
    bool quiet = false;
};

// One measured point.
struct StudyPoint {
    std::string kind;     // "sgemm" or "step"
    std::string backend;  // "naive", "cpu1" (OpenMP, 1 thread), "cpu" (OpenMP, all threads), "cuda",
                          // "cuda-tf32", "cuda-bf16"
    int threads = 1;      // CPU threads (0 on the GPU)
    std::string model;    // step: "baseline" or "resnet18" ("" for sgemm)
    int64_t image = 0;    // step: the images' side in pixels
    int64_t size = 0;     // sgemm: n; step: the batch
    double flop = 0;      // floating-point operations of one run
    double seconds = 0;   // median of the repeats
    int repeats = 0;
    double first_seconds = 0;  // the first run (setup: algorithm search, handles, allocations), not in seconds
    double gflops() const { return seconds > 0 ? flop / seconds * 1e-9 : 0; }
};

// The rate a backend's points are read against.
struct StudyCeiling {
    std::string backend;
    double gflops = 0;
    std::string what;  // "FMA peak, 2 threads" or "best cuBLAS SGEMM in this study (n = 8192)"
};

// The per-layer profile of one backend (trainer's profile_layers).
struct StudyProfile {
    std::string backend;
    std::string model;
    int64_t image = 0, batch = 0;
    std::vector<LayerTime> layers;
};

struct StudyResult {
    std::vector<std::pair<std::string, std::string>> facts;  // machine, date, budget
    std::vector<std::string> backends;                       // in the order they ran
    std::vector<StudyPoint> points;
    std::vector<StudyCeiling> ceilings;
    std::vector<StudyProfile> profiles;
    std::vector<std::string> notes;                    // where a backend stopped, and why
    double ceiling(const std::string& backend) const;  // 0 when unknown
    double pct_of_ceiling(const StudyPoint& p) const;  // p's rate over its backend's ceiling, %; 0 when unknown
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
// The optimizer of every measured step (bench_train_step's).
optim::SgdOptions study_sgd();
// The largest batch the per-layer profile uses (baseline, 64 px): the slowest backend's largest measured
// batch up to this one, the same for every backend.
constexpr int64_t kProfileBatch = 32;
// The key of a series' points in speedups()/crossover(): "step baseline 64".
std::string series_kind(const StepSeries& s);

// The backends a study measures: `devices` (checked: naive, cpu1, cpu, cuda, cuda-tf32, cuda-bf16), or every
// one present (the three cuda ones with a GPU).
std::vector<std::string> study_backends(const std::vector<std::string>& devices, bool gpu_found);

// Runs the study (progress on stdout unless quiet) and writes OUT/study.csv, OUT/study.json, the charts and
// OUT/study.html.
StudyResult run_study(const StudyOptions& options);

// backend's speed-up over `reference` at every size both measured (size, ratio of the reference's time to
// the backend's), and the crossover: the first size from which the backend is faster at that size and every
// larger one both measured (0 when there is none).
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

// The speed-up chart of one kind ("sgemm" or a series_kind): each backend's speed-up over `reference` against
// the size, log axes, a line at 1x, and each backend's crossover (crossover())
// marked with a dashed line labelled "cpu1 faster from 64".
std::string study_speedup_chart(const StudyResult& r, const std::string& kind, const std::string& reference);
// Each point's rate over its backend's ceiling (percent) against the size, one line per backend.
std::string study_ceiling_chart(const StudyResult& r, const std::string& kind);

// study.csv: kind,backend,threads,model,image,size,flop,seconds,repeats,gflops,first_seconds,pct_ceiling.
void write_study_csv(const std::string& path, const StudyResult& r);
void write_study_json(const std::string& path, const StudyResult& r);
// study.html: the facts and ceilings, a summary table (per sweep and backend: the largest size, best rate and
// fraction of the ceiling, the speed-up over naive and over cpu at the largest size both ran, the crossover
// sizes), per sweep the rate, speed-up and ceiling charts, the per-layer charts, the setup times, the notes
// and every point. Self-contained (charts inline, no script, no link), XHTML-clean.
void write_study_html(const std::string& path, const StudyResult& r);

}  // namespace dyad::trainer
