// The trainer's outputs: per-epoch metrics as CSV and JSON, loss and accuracy charts as standalone SVG, and a
// self-contained HTML report (charts inline, tables, machine and library versions) that opens in a browser
// with no network. Plus the terminal progress line.
#pragma once
#include <cmath>
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
// A vertical dashed line at x in the colour of the series named `series`, labelled at its top (the
// crossover on a speed-up chart).
struct ChartMark {
    std::string series;
    double x = 0;
    std::string label;
};
struct ChartOptions {
    bool log_x = false, log_y = false;  // logarithmic axes (whole decades, labelled with the values; values
                                        // <= 0 are left out)
    std::vector<ChartMark> marks;       // inside the x range (the range grows to hold them)
    double reference_y = std::nan("");  // a grey horizontal line at this y (1 on a speed-up chart); NaN: none
    std::string reference_label;        // written above its right end
};
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series, const ChartOptions& options);
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series, bool log_x = false, bool log_y = false);

// Stacked bars side by side in groups, each group's bars drawn as shares of the group's total so that groups
// far apart in size compare (backends 100x apart): e.g. per backend a forward and a backward bar, each split
// into its layers. Above each bar its total in `unit`, under each group its name and total. One colour per
// segment, in a legend. values: one per segment (missing ones count as 0; negative ones are an error).
struct StackedBar {
    std::string group, label;
    std::vector<double> values;
};
std::string svg_stacked_bars(const std::string& title, const std::string& unit,
                             const std::vector<std::string>& segments, const std::vector<StackedBar>& bars);

// Per-layer times grouped for charts: the leaf layers by name, or by type ("Conv2d", "ReLU", ...) when there
// are more than max_rows of them, plus "rest of the model" (the "whole model" row's time minus the layers',
// when positive: a ResNet's residual additions). Rows in first-appearance order; forward and backward ms per
// row for each entry of `per_backend` (0 where a backend lacks the row).
struct LayerGroups {
    std::vector<std::string> rows;
    std::vector<std::vector<double>> forward, backward;  // [backend][row]
};
LayerGroups group_layers(const std::vector<std::vector<LayerTime>>& per_backend, size_t max_rows = 15);
// The per-layer stacked chart: a forward and a backward bar per backend, split into the layers (grouped as
// group_layers does), each backend's bars as shares of its step.
std::string layer_chart(const std::string& title, const std::vector<std::string>& backends,
                        const std::vector<std::vector<LayerTime>>& per_backend);

// Each backend's speed-up per layer over backends[reference] (its forward + backward ms over theirs, layers
// grouped as group_layers does), as svg_bar_chart bars with a 1x line; series named backend + suffix.
std::string layer_speedup_chart(const std::string& title, const std::vector<std::string>& backends,
                                const std::vector<std::vector<LayerTime>>& per_backend, size_t reference,
                                const std::string& suffix);

// Horizontal bars on a logarithmic axis, one row per label with one bar per series, each bar's value written
// at its end ("12.3x"), and a reference line at `reference` (1 for speed-ups): per-layer speed-ups. Values
// that are not positive and finite get no bar and a "-". A series whose name starts with a backend ("cuda vs
// cpu") has that backend's colour, as in the line charts.
struct BarSeries {
    std::string name;
    std::vector<double> values;  // one per label
};
std::string svg_bar_chart(const std::string& title, const std::string& x_label, const std::vector<std::string>& labels,
                          const std::vector<BarSeries>& series, double reference);
// loss.svg (train and val loss of every backend) and accuracy.svg (train accuracy, val top-1) from the epochs.
void write_charts(const std::string& dir, const std::vector<EpochMetrics>& epochs);
// report.html: title, facts table (machine, GPU and driver, versions, settings), the two charts inline (with a
// note when the backends' curves are identical, since one line then hides the others), the comparison table
// (img/s, time per epoch, final val top-1, speed-up of each backend over "cpu", or over the slowest CPU backend
// without it), the per-layer charts (layer_chart, and when two backends have layer times the speed-up of each
// over the reference per layer) and table (forward/backward ms per backend, speed-ups), the largest curve
// difference. XHTML-clean: parses as XML.
void write_report_html(const std::string& path, const Report& report);

// Whether two or more backends ran and every one's curves (train loss and accuracy, val loss and top-1, at
// every epoch) equal the others' exactly.
bool curves_identical(const std::vector<EpochMetrics>& epochs);

// Pieces of the self-contained XHTML pages (report.html, the study's study.html): text escaped for XML
// (made valid UTF-8 first), the page's start (doctype, head with the shared style sheet, body, an h1 of the
// title), a table whose first row is the header and whose cells from `first_number_column` on are numbers
// (right-aligned), and an SVG document without its XML declaration, for inlining.
std::string xml_escape(const std::string& s);
std::string html_page_start(const std::string& title);
std::string html_table(const std::vector<std::vector<std::string>>& rows, const std::string& cls,
                       size_t first_number_column = 1);
std::string inline_svg(const std::string& svg);

// The comparison table for the terminal (fixed-width columns).
std::string comparison_table(const Report& report);
std::string layer_table(const Report& report);

// A progress line: "cpu  epoch 2/10 [#########.......]  1234/60000  812 img/s  loss 0.4123  acc 0.853  ETA 0:41"
std::string progress_line(const std::string& backend, int epoch, int epochs, int64_t done, int64_t total,
                          double img_per_s, double loss, double acc, double eta_seconds, int bar_width = 24);

}  // namespace dyad::trainer
