// The trainer's outputs: per-epoch metrics as CSV and JSON, loss and accuracy charts as standalone SVG, and a
// self-contained HTML report (charts inline, tables, machine and library versions) that opens in a browser
// with no network. Plus the terminal progress line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dyad::trainer {

// One epoch of one backend ("cpu", "naive", "cuda").
struct EpochMetrics {
    std::string backend;
    int epoch = 0;  // 1-based
    double train_loss = 0, train_acc = 0;
    double val_loss = 0, val_top1 = 0, val_top5 = 0;
    double seconds = 0;    // wall time of the epoch's training (not validation)
    double img_per_s = 0;  // training images per second over the epoch
};

// Time of one layer (forward and backward), averaged over the profiled steps, per backend.
struct LayerTime {
    std::string layer;  // "0 Conv2d(3, 32, 3x3)" ...
    double forward_ms = 0, backward_ms = 0;
};

struct BackendSummary {
    std::string backend;
    double img_per_s = 0;      // training throughput over all epochs
    double epoch_seconds = 0;  // mean training time per epoch
    double final_val_top1 = 0;
    std::vector<LayerTime> layers;
    // GPU: training steps replayed from a captured CUDA graph, and why capturing fell back to eager steps
    // ("" when it did not; on the CPU steps are always eager and both stay empty).
    int64_t graph_replays = 0;
    std::string graph_fallback;
    int64_t steps_per_epoch = 0;  // training steps each epoch ran
    std::string note;             // why this backend ran fewer steps than the others (--naive-steps), or ""
};

struct Report {
    std::string title;                                       // "baseline on Fashion-MNIST"
    std::vector<std::pair<std::string, std::string>> facts;  // (key, value): machine, GPU, versions, settings
    std::vector<EpochMetrics> epochs;                        // all backends, in run order
    std::vector<BackendSummary> backends;
    double max_curve_difference = 0;  // largest |loss difference| between backends at the same epoch
};

// metrics.csv: a header line, then one line per EpochMetrics (backend,epoch,train_loss,...); numbers with 9
// significant digits (exact for float32 values, 5e-9 relative for doubles).
void write_metrics_csv(const std::string& path, const std::vector<EpochMetrics>& epochs);
// metrics.json: {"title", "facts": {...}, "epochs": [{...}, ...], "backends": [{..., "layers": [...]}],
// "max_curve_difference"}, members in that order, the facts in theirs (a repeated key keeps its first place
// and takes the last value). Valid JSON: strings escaped, invalid UTF-8 replaced by U+FFFD, numbers with 9
// significant digits, non-finite numbers null.
void write_metrics_json(const std::string& path, const Report& report);

// A line chart: one polyline per series (with markers), shared axes with ticks at round values, axis labels,
// a title and a legend. x and y of each series have the same length; series may differ in length. Returns a
// standalone SVG document (well-formed XML, text escaped).
struct Series {
    std::string name;
    std::vector<double> x, y;
    bool dashed = false;  // e.g. validation curves dashed, training solid
};
// log_x / log_y: logarithmic axes (whole decades, labelled with the values; values <= 0 are left out).
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series, bool log_x = false, bool log_y = false);
// loss.svg (train and val loss of every backend) and accuracy.svg (train accuracy, val top-1) from the epochs.
void write_charts(const std::string& dir, const std::vector<EpochMetrics>& epochs);
// report.html: title, facts table, the two charts inline, the comparison table (img/s, time per epoch, final
// val top-1, speed-up of each backend over "cpu", or over the slowest CPU backend without it), the per-layer table
// (forward/backward ms per backend and the GPU's speed-up per layer when both were run), the largest curve difference.
// XHTML-clean: parses as XML.
void write_report_html(const std::string& path, const Report& report);

// The comparison table for the terminal (fixed-width columns).
std::string comparison_table(const Report& report);
std::string layer_table(const Report& report);

// A progress line: "cpu  epoch 2/10 [#########.......]  1234/60000  812 img/s  loss 0.4123  acc 0.853  ETA 0:41"
std::string progress_line(const std::string& backend, int epoch, int epochs, int64_t done, int64_t total,
                          double img_per_s, double loss, double acc, double eta_seconds, int bar_width = 24);

}  // namespace dyad::trainer
