// The trainer's outputs: metrics.csv and metrics.json, SVG line charts (loss.svg, accuracy.svg), the
// self-contained report.html, the terminal tables and the progress line.
//
// Choices:
// - Numbers in CSV and JSON have 9 significant digits: the metrics come from float32 arithmetic, and 9
//   significant digits round-trip any float exactly (a double to within a relative 5e-9, far below any
//   metric's noise). The CSV prints them with %.9g; the JSON holds the values rounded so (nlohmann/json
//   writes the shortest text that reads back as the rounded value). Non-finite values are
//   "nan"/"inf"/"-inf" in the CSV (strtod reads them back) and null in the JSON.
// - Text is made valid UTF-8 before it is written (invalid bytes become U+FFFD); XML text also loses the
//   control characters XML 1.0 forbids (they become U+FFFD too).
// - Files are written atomically (io::write_file_atomic: a temporary file next to the target, fsync, rename).
// - Charts: 720x420, legend to the right of the plot. Axis ticks are at 1, 2 or 5 x 10^k; the axes span whole
//   ticks around the data. The y range gets 5% headroom each way and is extended down to 0 when all values
//   are >= 0 and the smallest is under half the largest (so loss curves start at 0, accuracy curves that
//   sit near 0.9 keep their detail). When all x are integers (epochs), x ticks are integers. A zero range
//   (one point, equal values) is widened around the value. Points with a non-finite or huge (|v| > 1e150)
//   coordinate are skipped. A series with no plottable point gets no polyline but stays in the legend.
// - Colours follow the first word of the series name (the backend): cpu blue, cuda green, naive orange,
//   anything else from a fixed palette in order of appearance; so a backend keeps its colour across charts.
// - Speed-ups compare against the "cpu" backend when present, else the slowest CPU backend (any backend whose
//   name does not start with "cuda"), else the slowest backend; the column header names the baseline. Ratios
//   print with one decimal (two below 1). Per layer, each backend's speed-up is over the layer reference: "cpu" when
//   it has layer times, else the slowest CPU backend's; (reference fwd + bwd ms) / (backend's fwd + bwd ms).
#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "dyad/error.h"
#include "dyad/io.h"

namespace dyad::trainer {
namespace {

// ---------------------------------------------------------------------------- text helpers

std::string printf_str(const char* fmt, double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), fmt, v);
    return buf;
}

// %.9g, with nan/inf spelled the same way on every platform.
std::string num(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return printf_str("%.9g", v);
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

constexpr uint32_t kReplacement = 0xFFFD;

// Decodes `s` as UTF-8 and calls f(code point) for each character; an invalid byte gives U+FFFD.
template <typename F>
void for_each_code_point(const std::string& s, F f) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const unsigned c = p[i];
        int len = 0;
        uint32_t cp = 0, min = 0;
        if (c < 0x80) {
            f(uint32_t(c));
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        }
        bool ok = len > 0 && i + size_t(len) <= n;
        for (int k = 1; ok && k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) ok = false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
        if (ok) {
            f(cp);
            i += size_t(len);
        } else {
            f(kReplacement);
            i++;
        }
    }
}

// Text for XML content and attribute values (either quote style).
std::string xml(const std::string& s) {
    std::string out;
    for_each_code_point(s, [&](uint32_t cp) {
        switch (cp) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default: {
                const bool allowed =
                    cp == '\t' || cp == '\n' || cp == '\r' || (cp >= 0x20 && cp != 0xFFFE && cp != 0xFFFF);
                append_utf8(out, allowed ? cp : kReplacement);
            }
        }
    });
    return out;
}

// Display width in characters (code points), for aligning terminal columns.
size_t text_width(const std::string& s) {
    size_t n = 0;
    for_each_code_point(s, [&](uint32_t) { n++; });
    return n;
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

// ---------------------------------------------------------------------------- files

// Every output file is replaced atomically; errors name the writer and the path.
void write_file_atomic(const char* op, const std::string& path, const std::string& text) {
    io::write_file_atomic(path, text, op);
}

// ---------------------------------------------------------------------------- tables

enum class Align { left, right };

// Fixed-width text table: columns separated by two spaces, no trailing spaces.
std::string text_table(const std::vector<std::vector<std::string>>& rows, const std::vector<Align>& align) {
    std::vector<size_t> width;
    for (const auto& row : rows) {
        if (width.size() < row.size()) width.resize(row.size(), 0);
        for (size_t c = 0; c < row.size(); c++) width[c] = std::max(width[c], text_width(row[c]));
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (size_t c = 0; c < row.size(); c++) {
            const size_t pad = width[c] - text_width(row[c]);
            const bool right = c < align.size() && align[c] == Align::right;
            if (c > 0) line += "  ";
            if (right) line.append(pad, ' ');
            line += row[c];
            if (!right) line.append(pad, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

std::string fixed(double v, int decimals) {
    if (!std::isfinite(v)) return "-";
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    return buf;
}

std::string ratio_text(double num_, double den) {
    if (!(std::isfinite(num_) && std::isfinite(den) && num_ > 0 && den > 0)) return "-";
    const double r = num_ / den;
    return fixed(r, r < 1 ? 2 : 1) + "x";  // two decimals below 1, so that 0.08x does not read 0.1x
}

bool is_gpu(const std::string& backend) { return backend.rfind("cuda", 0) == 0; }

// The backend the speed-ups compare against (see the file comment); nullptr when there is none.
const BackendSummary* speedup_baseline(const Report& r) {
    for (const auto& b : r.backends)
        if (b.backend == "cpu") return &b;
    const BackendSummary* slowest = nullptr;
    for (int pass = 0; pass < 2 && !slowest; pass++) {
        for (const auto& b : r.backends) {
            if (pass == 0 && is_gpu(b.backend)) continue;
            if (!(std::isfinite(b.img_per_s) && b.img_per_s > 0)) continue;
            if (!slowest || b.img_per_s < slowest->img_per_s) slowest = &b;
        }
    }
    return slowest;
}

std::vector<std::vector<std::string>> comparison_rows(const Report& r) {
    const BackendSummary* base = speedup_baseline(r);
    std::vector<std::vector<std::string>> rows;
    rows.push_back(
        {"backend", "img/s", "s/epoch", "val top-1", base ? "speed-up vs " + base->backend : std::string("speed-up")});
    for (const auto& b : r.backends) {
        const std::string name =
            b.backend + (b.note.empty() ? "" : " (" + std::to_string(b.steps_per_epoch) + " steps/epoch)");
        rows.push_back({name, fixed(b.img_per_s, 0), fixed(b.epoch_seconds, 2), fixed(b.final_val_top1, 4),
                        base ? ratio_text(b.img_per_s, base->img_per_s) : "-"});
    }
    return rows;
}

// The backend the per-layer speed-ups compare against: "cpu" when it has layer times, else the CPU backend
// with layer times whose whole model is slowest, else the first backend with layer times; nullptr if none.
const BackendSummary* layer_reference(const Report& r) {
    auto whole_ms = [](const BackendSummary& b) {
        double t = 0;
        for (const auto& l : b.layers)
            if (l.layer == "whole model") t = l.forward_ms + l.backward_ms;
        return t;
    };
    const BackendSummary* ref = nullptr;
    for (const auto& b : r.backends) {
        if (b.layers.empty()) continue;
        if (b.backend == "cpu") return &b;
        if (!ref || (is_gpu(ref->backend) && !is_gpu(b.backend)) ||
            (is_gpu(ref->backend) == is_gpu(b.backend) && whole_ms(b) > whole_ms(*ref)))
            ref = &b;
    }
    return ref;
}

const LayerTime* find_layer(const BackendSummary& b, const std::string& name) {
    for (const auto& l : b.layers)
        if (l.layer == name) return &l;
    return nullptr;
}

// One row per layer name (first-appearance order), forward/backward ms for each backend, and each other
// backend's speed-up over the reference (layer_reference) per layer: reference (fwd + bwd ms) / backend's.
std::vector<std::vector<std::string>> layer_rows(const Report& r) {
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (const auto& b : r.backends)
        for (const auto& l : b.layers)
            if (seen.insert(l.layer).second) names.push_back(l.layer);
    if (names.empty()) return {};
    const BackendSummary* ref = layer_reference(r);
    std::vector<const BackendSummary*> timed, compared;
    for (const auto& b : r.backends) {
        if (b.layers.empty()) continue;
        timed.push_back(&b);
        if (&b != ref) compared.push_back(&b);
    }
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header{"layer"};
    for (const BackendSummary* b : timed) {
        header.push_back(b->backend + " fwd ms");
        header.push_back(b->backend + " bwd ms");
    }
    for (const BackendSummary* b : compared) header.push_back(b->backend + " vs " + ref->backend);
    rows.push_back(header);
    for (const auto& name : names) {
        std::vector<std::string> row{name};
        for (const BackendSummary* b : timed) {
            const LayerTime* l = find_layer(*b, name);
            row.push_back(l ? fixed(l->forward_ms, 3) : "-");
            row.push_back(l ? fixed(l->backward_ms, 3) : "-");
        }
        for (const BackendSummary* b : compared) {
            const LayerTime* a = find_layer(*ref, name);
            const LayerTime* g = find_layer(*b, name);
            row.push_back(a && g ? ratio_text(a->forward_ms + a->backward_ms, g->forward_ms + g->backward_ms) : "-");
        }
        rows.push_back(row);
    }
    return rows;
}

// ---------------------------------------------------------------------------- charts

constexpr int kWidth = 720, kHeight = 420;
constexpr double kHuge = 1e150;

bool plottable(double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && std::fabs(x) <= kHuge && std::fabs(y) <= kHuge;
}

// Round step: 1, 2 or 5 x 10^k, at least raw.
double nice_step(double raw) {
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p >= raw * (1 - 1e-12)) return m * p;
    return 10 * p;
}

struct Axis {
    double lo = 0, hi = 1, step = 0.2;
    int ticks = 6;  // lo, lo + step, ..., hi
};

// An axis of whole ticks covering [lo, hi] (lo < hi), about `target` intervals.
Axis make_axis(double lo, double hi, bool integer_steps, int target = 5) {
    Axis a;
    a.step = nice_step((hi - lo) / target);
    if (integer_steps) a.step = std::max(a.step, 1.0);
    a.lo = std::floor(lo / a.step + 1e-9) * a.step;
    a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
    if (a.hi <= a.lo) a.hi = a.lo + a.step;
    a.ticks = int(std::lround((a.hi - a.lo) / a.step)) + 1;
    return a;
}

// Widens a zero (or vanishing) range around its value.
void ensure_range(double& lo, double& hi) {
    const double mag = std::max(std::fabs(lo), std::fabs(hi));
    if (hi - lo <= mag * 1e-9) {
        const double pad = mag > 0 ? mag * 0.1 : 1.0;
        lo -= pad;
        hi += pad;
    }
}

std::string tick_label(double v, double step) {
    if (std::fabs(v) < step * 1e-6) v = 0;
    const double mag = std::fabs(v);
    if (step >= 1e-4 && mag < 1e7) {
        const int decimals = step >= 1 ? 0 : int(-std::floor(std::log10(step) + 1e-9));
        return fixed(v, decimals);
    }
    return printf_str("%.6g", v);
}

std::string coord(double v) { return printf_str("%.2f", v); }

// The start of a standalone SVG document: declaration, size, title and the white background with the title
// written at the top.
std::string svg_open(int width, int height, const std::string& title) {
    std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
         std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    o += "<title>" + xml(title) + "</title>\n";
    o += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(width) + "\" height=\"" + std::to_string(height) +
         "\" fill=\"#ffffff\"/>\n";
    o += "<text x=\"" + coord(width / 2.0) +
         "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">" + xml(title) + "</text>\n";
    return o;
}

std::string series_key(const std::string& name) { return name.substr(0, name.find(' ')); }

// A backend's colour in every chart, "" for a name that is not a backend.
std::string backend_colour(const std::string& backend) {
    static const std::map<std::string, std::string> kKnown{{"cpu", "#1f77b4"},       {"cuda", "#2ca02c"},
                                                           {"naive", "#ff7f0e"},     {"cpu1", "#17becf"},
                                                           {"cuda-tf32", "#bcbd22"}, {"cuda-bf16", "#8c564b"}};
    const auto it = kKnown.find(backend);
    return it == kKnown.end() ? "" : it->second;
}

// Truncates to at most `max` characters (never inside a UTF-8 sequence), with "..." when cut.
std::string shorten(const std::string& s, size_t max) {
    if (text_width(s) <= max) return s;
    std::string out;
    size_t n = 0;
    for_each_code_point(s, [&](uint32_t cp) {
        if (n++ < max - 3) append_utf8(out, cp);
    });
    return out + "...";
}

}  // namespace

// ---------------------------------------------------------------------------- public

std::string xml_escape(const std::string& s) { return xml(s); }

std::string html_page_start(const std::string& title) {
    std::string o;
    o += "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n";
    o += "<meta charset=\"utf-8\"/>\n<title>" + xml(title) + "</title>\n";
    o += "<style>\n"
         "body { font-family: sans-serif; margin: 2em auto; max-width: 1500px; color: #222; }\n"
         "h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; }\n"
         "table { border-collapse: collapse; margin: 0.5em 0; }\n"
         "th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }\n"
         "th { background: #f2f2f2; }\n"
         "td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
         ".charts { display: flex; flex-wrap: wrap; gap: 1em; }\n"
         ".charts svg { border: 1px solid #ddd; }\n"
         "p.note { background: #fff6d5; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }\n"
         "</style>\n</head>\n<body>\n";
    return o + "<h1>" + xml(title) + "</h1>\n";
}

std::string html_table(const std::vector<std::vector<std::string>>& rows, const std::string& cls,
                       size_t first_number_column) {
    std::string out = "<table class=\"" + xml(cls) + "\">\n";
    for (size_t i = 0; i < rows.size(); i++) {
        const char* cell = i == 0 ? "th" : "td";
        out += "<tr>";
        for (size_t c = 0; c < rows[i].size(); c++) {
            out += std::string("<") + cell + (i > 0 && c >= first_number_column ? " class=\"num\"" : "") + ">" +
                   xml(rows[i][c]) + "</" + cell + ">";
        }
        out += "</tr>\n";
    }
    return out + "</table>\n";
}

std::string inline_svg(const std::string& svg) {
    const size_t start = svg.find("<svg");
    return start == std::string::npos ? svg : svg.substr(start);
}

void write_metrics_csv(const std::string& path, const std::vector<EpochMetrics>& epochs) {
    std::string out = "backend,epoch,train_loss,train_acc,val_loss,val_top1,val_top5,seconds,img_per_s\n";
    for (const auto& e : epochs) {
        out += csv_field(e.backend) + "," + std::to_string(e.epoch);
        for (double v : {e.train_loss, e.train_acc, e.val_loss, e.val_top1, e.val_top5, e.seconds, e.img_per_s})
            out += "," + num(v);
        out += "\n";
    }
    write_file_atomic("write_metrics_csv", path, out);
}

void write_metrics_json(const std::string& path, const Report& report) {
    using Json = nlohmann::ordered_json;  // members in the order given
    // A metric rounded to 9 significant digits (written as the shortest text that reads back as it); null
    // when not finite.
    auto metric = [](double v) -> Json {
        if (!std::isfinite(v)) return nullptr;
        return std::strtod(printf_str("%.9g", v).c_str(), nullptr);
    };
    Json facts = Json::object();
    for (const auto& [key, value] : report.facts) facts[key] = value;
    Json epochs = Json::array();
    for (const auto& e : report.epochs) {
        epochs.push_back({{"backend", e.backend},
                          {"epoch", e.epoch},
                          {"train_loss", metric(e.train_loss)},
                          {"train_acc", metric(e.train_acc)},
                          {"val_loss", metric(e.val_loss)},
                          {"val_top1", metric(e.val_top1)},
                          {"val_top5", metric(e.val_top5)},
                          {"seconds", metric(e.seconds)},
                          {"img_per_s", metric(e.img_per_s)}});
    }
    Json backends = Json::array();
    for (const auto& b : report.backends) {
        Json layers = Json::array();
        for (const auto& l : b.layers) {
            layers.push_back(
                {{"layer", l.layer}, {"forward_ms", metric(l.forward_ms)}, {"backward_ms", metric(l.backward_ms)}});
        }
        backends.push_back({{"backend", b.backend},
                            {"img_per_s", metric(b.img_per_s)},
                            {"epoch_seconds", metric(b.epoch_seconds)},
                            {"final_val_top1", metric(b.final_val_top1)},
                            {"layers", std::move(layers)}});
    }
    const Json doc = {{"title", report.title},
                      {"facts", std::move(facts)},
                      {"epochs", std::move(epochs)},
                      {"backends", std::move(backends)},
                      {"max_curve_difference", metric(report.max_curve_difference)}};
    // Invalid UTF-8 in the text becomes U+FFFD.
    write_file_atomic("write_metrics_json", path, doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
}

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& input, bool log_x, bool log_y) {
    ChartOptions options;
    options.log_x = log_x;
    options.log_y = log_y;
    return svg_line_chart(title, x_label, y_label, input, options);
}

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& input, const ChartOptions& options) {
    const bool log_x = options.log_x, log_y = options.log_y;
    for (const auto& s : input) {
        DYAD_CHECK(s.x.size() == s.y.size(), "svg_line_chart: series '", s.name, "' has ", s.x.size(), " x values but ",
                   s.y.size(), " y values");
    }
    // A log axis plots log10 of the values (ticks at whole decades, labelled with the values); values that are
    // not positive have no place on it and are left out.
    std::vector<Series> series = input;
    for (Series& s : series)
        for (size_t i = 0; i < s.x.size(); i++) {
            if (log_x) s.x[i] = s.x[i] > 0 ? std::log10(s.x[i]) : NAN;
            if (log_y) s.y[i] = s.y[i] > 0 ? std::log10(s.y[i]) : NAN;
        }
    auto label = [](double v, double step, bool log) {
        return log ? printf_str("%g", std::pow(10.0, v)) : tick_label(v, step);
    };
    // Data range over the plottable points.
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    bool integer_x = true;
    for (const auto& s : series) {
        for (size_t i = 0; i < s.x.size(); i++) {
            if (!plottable(s.x[i], s.y[i])) continue;
            xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
            ymin = std::min(ymin, s.y[i]), ymax = std::max(ymax, s.y[i]);
            if (s.x[i] != std::floor(s.x[i]) || log_x) integer_x = log_x;
        }
    }
    const bool has_data = xmin <= xmax;
    // The reference line and the marks widen the range to hold them (where they have a place on the axis).
    const double ref_y =
        log_y ? (options.reference_y > 0 ? std::log10(options.reference_y) : NAN) : options.reference_y;
    std::vector<std::pair<double, const ChartMark*>> marks;
    if (has_data) {
        if (std::isfinite(ref_y)) ymin = std::min(ymin, ref_y), ymax = std::max(ymax, ref_y);
        for (const ChartMark& m : options.marks) {
            const double x = log_x ? (m.x > 0 ? std::log10(m.x) : NAN) : m.x;
            if (!plottable(x, 0)) continue;
            marks.push_back({x, &m});
            xmin = std::min(xmin, x), xmax = std::max(xmax, x);
        }
    }
    Axis ax, ay;

    // Layout: legend to the right of the plot, sized to the longest name.
    constexpr size_t kMaxName = 32;
    size_t longest = 0;
    for (const auto& s : series) longest = std::max(longest, text_width(shorten(s.name, kMaxName)));
    const double legend_w = series.empty() ? 0 : 48 + 7.0 * double(longest);
    const double left = 72, top = 44, bottom = kHeight - 56;
    const double right = kWidth - 16 - (series.empty() ? 0 : legend_w + 12);
    const double pw = right - left, ph = bottom - top;
    auto px = [&](double x) { return left + (x - ax.lo) / (ax.hi - ax.lo) * pw; };
    auto py = [&](double y) { return bottom - (y - ay.lo) / (ay.hi - ay.lo) * ph; };

    std::string o = svg_open(kWidth, kHeight, title);
    // Axis labels.
    o += "<text x=\"" + coord(left + pw / 2) + "\" y=\"" + coord(kHeight - 14.0) + "\" text-anchor=\"middle\">" +
         xml(x_label) + "</text>\n";
    o += "<text x=\"18\" y=\"" + coord(top + ph / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " +
         coord(top + ph / 2) + ")\">" + xml(y_label) + "</text>\n";

    if (!has_data) {
        o += "<rect x=\"" + coord(left) + "\" y=\"" + coord(top) + "\" width=\"" + coord(pw) + "\" height=\"" +
             coord(ph) + "\" fill=\"none\" stroke=\"#888888\"/>\n";
        o += "<text x=\"" + coord(left + pw / 2) + "\" y=\"" + coord(top + ph / 2) +
             "\" text-anchor=\"middle\" font-size=\"14\" fill=\"#666666\">no data</text>\n";
    } else {
        double ylo = ymin, yhi = ymax;
        if (!log_y && ylo >= 0 && ylo < 0.5 * yhi) ylo = 0;
        ensure_range(ylo, yhi);
        const double head = 0.05 * (yhi - ylo);
        yhi += head;
        if (ylo != 0) ylo -= head;
        double xlo = xmin, xhi = xmax;
        if (xhi - xlo <= std::max(std::fabs(xlo), std::fabs(xhi)) * 1e-9) {
            if (integer_x) {
                xlo -= 1, xhi += 1;
            } else {
                ensure_range(xlo, xhi);
            }
        }
        ax = make_axis(xlo, xhi, integer_x);
        ay = make_axis(ylo, yhi, log_y);

        // Grid, ticks and tick labels.
        o += "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n";
        for (int i = 0; i < ay.ticks; i++) {
            const std::string y = coord(py(ay.lo + i * ay.step));
            o += "<line x1=\"" + coord(left) + "\" y1=\"" + y + "\" x2=\"" + coord(right) + "\" y2=\"" + y + "\"/>\n";
        }
        for (int i = 0; i < ax.ticks; i++) {
            const std::string x = coord(px(ax.lo + i * ax.step));
            o += "<line x1=\"" + x + "\" y1=\"" + coord(top) + "\" x2=\"" + x + "\" y2=\"" + coord(bottom) + "\"/>\n";
        }
        o += "</g>\n<g fill=\"#333333\">\n";
        for (int i = 0; i < ay.ticks; i++) {
            const double v = ay.lo + i * ay.step;
            o += "<text x=\"" + coord(left - 6) + "\" y=\"" + coord(py(v) + 4) + "\" text-anchor=\"end\">" +
                 xml(label(v, ay.step, log_y)) + "</text>\n";
        }
        for (int i = 0; i < ax.ticks; i++) {
            const double v = ax.lo + i * ax.step;
            o += "<text x=\"" + coord(px(v)) + "\" y=\"" + coord(bottom + 18) + "\" text-anchor=\"middle\">" +
                 xml(label(v, ax.step, log_x)) + "</text>\n";
        }
        o += "</g>\n";
        o += "<path d=\"M" + coord(left) + " " + coord(top) + " V" + coord(bottom) + " H" + coord(right) +
             "\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>\n";
    }

    // Colours by backend (first word of the name).
    static const char* const kPalette[] = {"#d62728", "#9467bd", "#e377c2", "#7f7f7f"};
    std::map<std::string, std::string> colour;
    size_t next = 0;
    auto colour_of = [&](const std::string& name) {
        const std::string key = series_key(name);
        const std::string known = backend_colour(key);
        if (!known.empty()) return known;
        auto [pos, added] = colour.emplace(key, "");
        if (added) pos->second = kPalette[next++ % (sizeof(kPalette) / sizeof(kPalette[0]))];
        return pos->second;
    };
    const std::string dash = " stroke-dasharray=\"6 4\"";

    if (has_data && std::isfinite(ref_y)) {
        const std::string y = coord(py(ref_y));
        o += "<g class=\"reference\">\n<line x1=\"" + coord(left) + "\" y1=\"" + y + "\" x2=\"" + coord(right) +
             "\" y2=\"" + y + "\" stroke=\"#777777\" stroke-width=\"1.5\"/>\n";
        if (!options.reference_label.empty())
            o += "<text x=\"" + coord(right - 4) + "\" y=\"" + coord(py(ref_y) - 5) +
                 "\" text-anchor=\"end\" fill=\"#555555\">" + xml(options.reference_label) + "</text>\n";
        o += "</g>\n";
    }
    for (size_t i = 0; i < marks.size() && has_data; i++) {
        const std::string c = colour_of(marks[i].second->series), x = coord(px(marks[i].first));
        // Labels stack downwards so that marks at the same x stay readable.
        const double label_y = top + 14 + 14.0 * double(i);
        o += "<g class=\"mark\">\n<line x1=\"" + x + "\" y1=\"" + coord(top) + "\" x2=\"" + x + "\" y2=\"" +
             coord(bottom) + "\" stroke=\"" + c + "\" stroke-width=\"1.5\"" + dash + "/>\n<text x=\"" +
             coord(px(marks[i].first) + 4) + "\" y=\"" + coord(label_y) + "\" fill=\"" + c + "\">" +
             xml(marks[i].second->label) + "</text>\n</g>\n";
    }

    if (has_data) {
        for (const auto& s : series) {
            std::string points, markers;
            const std::string c = colour_of(s.name);
            for (size_t i = 0; i < s.x.size(); i++) {
                if (!plottable(s.x[i], s.y[i])) continue;
                const std::string x = coord(px(s.x[i])), y = coord(py(s.y[i]));
                points += (points.empty() ? "" : " ") + x + "," + y;
                markers += "<circle cx=\"" + x + "\" cy=\"" + y + "\" r=\"3\"/>";
            }
            if (points.empty()) continue;
            o += "<g class=\"series\">\n<polyline points=\"" + points + "\" fill=\"none\" stroke=\"" + c +
                 "\" stroke-width=\"2\"" + (s.dashed ? dash : "") + "/>\n<g fill=\"" + c + "\">" + markers +
                 "</g>\n</g>\n";
        }
    }

    // Legend.
    if (!series.empty()) {
        const double lx = kWidth - 16 - legend_w, ly = top;
        const double lh = 12 + 20.0 * double(series.size());
        o += "<g class=\"legend\">\n<rect x=\"" + coord(lx) + "\" y=\"" + coord(ly) + "\" width=\"" + coord(legend_w) +
             "\" height=\"" + coord(lh) + "\" fill=\"#ffffff\" stroke=\"#999999\"/>\n";
        for (size_t i = 0; i < series.size(); i++) {
            const std::string c = colour_of(series[i].name);
            const double y = ly + 16 + 20.0 * double(i);
            o += "<line x1=\"" + coord(lx + 8) + "\" y1=\"" + coord(y) + "\" x2=\"" + coord(lx + 36) + "\" y2=\"" +
                 coord(y) + "\" stroke=\"" + c + "\" stroke-width=\"2\"" + (series[i].dashed ? dash : "") + "/>";
            o += "<circle cx=\"" + coord(lx + 22) + "\" cy=\"" + coord(y) + "\" r=\"3\" fill=\"" + c + "\"/>";
            o += "<text x=\"" + coord(lx + 42) + "\" y=\"" + coord(y + 4) + "\">" +
                 xml(shorten(series[i].name, kMaxName)) + "</text>\n";
        }
        o += "</g>\n";
    }
    o += "</svg>\n";
    return o;
}

namespace {

// Segment colours of the bar charts: sixteen (group_layers' row limit), then repeated.
const char* segment_colour(size_t i) {
    static const char* const kColours[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                                           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#2f4b7c", "#a05195",
                                           "#d45087", "#665191", "#7fbf7b", "#ffa600"};
    return kColours[i % 16];
}

// "812 ms", "3.41 ms", "0.052 ms": three significant digits.
std::string amount(double v, const std::string& unit) {
    return printf_str(v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : v >= 1 ? "%.2f" : "%.3g", v) + " " + unit;
}

// The legend box of a bar chart at (x, y): one square of colour per name.
std::string swatch_legend(double x, double y, double w, const std::vector<std::string>& names,
                          const std::vector<std::string>& colours) {
    std::string o = "<g class=\"legend\">\n<rect x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" width=\"" + coord(w) +
                    "\" height=\"" + coord(12 + 18.0 * double(names.size())) +
                    "\" fill=\"#ffffff\" stroke=\"#999999\"/>\n";
    for (size_t i = 0; i < names.size(); i++) {
        const double row = y + 10 + 18.0 * double(i);
        o += "<rect x=\"" + coord(x + 8) + "\" y=\"" + coord(row) + "\" width=\"12\" height=\"12\" fill=\"" +
             colours[i] + "\"/><text x=\"" + coord(x + 26) + "\" y=\"" + coord(row + 10) + "\">" +
             xml(shorten(names[i], 36)) + "</text>\n";
    }
    return o + "</g>\n";
}

}  // namespace

std::string svg_stacked_bars(const std::string& title, const std::string& unit,
                             const std::vector<std::string>& segments, const std::vector<StackedBar>& bars) {
    for (const StackedBar& b : bars)
        for (double v : b.values)
            DYAD_CHECK(!(v < 0), "svg_stacked_bars: bar '", b.group, " ", b.label, "' has a negative value ", v);
    auto total_of = [](const StackedBar& b) {
        double t = 0;
        for (double v : b.values)
            if (std::isfinite(v)) t += v;
        return t;
    };
    // Groups in order of appearance, with their totals.
    std::vector<std::string> groups;
    std::map<std::string, double> group_total;
    for (const StackedBar& b : bars) {
        if (!group_total.count(b.group)) groups.push_back(b.group);
        group_total[b.group] += total_of(b);
    }
    size_t longest = 0;
    for (const std::string& name : segments) longest = std::max(longest, text_width(shorten(name, 36)));
    const double legend_w = segments.empty() ? 0 : 40 + 7.0 * double(longest);
    const int height = std::max(kHeight, int(100 + 18 * segments.size()));
    const double left = 64, top = 56, bottom = height - 64.0;
    const double right = kWidth - 16 - (segments.empty() ? 0 : legend_w + 12);
    const double ph = bottom - top;
    std::string o = svg_open(kWidth, height, title);
    o += "<text x=\"18\" y=\"" + coord(top + ph / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " +
         coord(top + ph / 2) + ")\">share of the group's time (%)</text>\n";
    // The share axis: 0, 25, ..., 100 %.
    o += "<g stroke=\"#e4e4e4\">\n";
    for (int pct = 0; pct <= 100; pct += 25) {
        const std::string y = coord(bottom - ph * pct / 100.0);
        o += "<line x1=\"" + coord(left) + "\" y1=\"" + y + "\" x2=\"" + coord(right) + "\" y2=\"" + y + "\"/>\n";
    }
    o += "</g>\n<g fill=\"#333333\">\n";
    for (int pct = 0; pct <= 100; pct += 25)
        o += "<text x=\"" + coord(left - 6) + "\" y=\"" + coord(bottom - ph * pct / 100.0 + 4) +
             "\" text-anchor=\"end\">" + std::to_string(pct) + "</text>\n";
    o += "</g>\n";
    if (bars.empty()) {
        o += "<text x=\"" + coord((left + right) / 2) + "\" y=\"" + coord(top + ph / 2) +
             "\" text-anchor=\"middle\" font-size=\"14\" fill=\"#666666\">no data</text>\n";
    }
    // Slots: one per bar, plus one empty slot between groups.
    const double slots = double(bars.size() + (groups.empty() ? 0 : groups.size() - 1));
    const double slot = slots > 0 ? (right - left) / slots : 0, bar_w = slot * 0.8;
    double x = left;
    for (size_t g = 0; g < groups.size(); g++) {
        const double group_x = x;
        const double total = group_total[groups[g]];
        for (const StackedBar& b : bars) {
            if (b.group != groups[g]) continue;
            double y = bottom;
            o += "<g class=\"bar\">\n";
            for (size_t k = 0; k < segments.size(); k++) {
                const double v = k < b.values.size() && std::isfinite(b.values[k]) ? b.values[k] : 0;
                if (v <= 0 || total <= 0) continue;
                const double h = ph * v / total;
                o += "<rect x=\"" + coord(x + (slot - bar_w) / 2) + "\" y=\"" + coord(y - h) + "\" width=\"" +
                     coord(bar_w) + "\" height=\"" + coord(h) + "\" fill=\"" + segment_colour(k) + "\"><title>" +
                     xml(segments[k] + ": " + amount(v, unit)) + "</title></rect>\n";
                y -= h;
            }
            o += "<text x=\"" + coord(x + slot / 2) + "\" y=\"" + coord(y - 4) + "\" text-anchor=\"middle\">" +
                 xml(amount(total_of(b), unit)) + "</text>\n";
            o += "<text x=\"" + coord(x + slot / 2) + "\" y=\"" + coord(bottom + 14) + "\" text-anchor=\"middle\">" +
                 xml(b.label) + "</text>\n</g>\n";
            x += slot;
        }
        o += "<text class=\"group\" x=\"" + coord((group_x + x) / 2) + "\" y=\"" + coord(bottom + 32) +
             "\" text-anchor=\"middle\" font-weight=\"bold\">" + xml(groups[g]) + "</text>\n";
        o += "<text x=\"" + coord((group_x + x) / 2) + "\" y=\"" + coord(bottom + 48) +
             "\" text-anchor=\"middle\" fill=\"#555555\">" + xml(amount(total, unit)) + "</text>\n";
        x += slot;
    }
    o += "<path d=\"M" + coord(left) + " " + coord(top) + " V" + coord(bottom) + " H" + coord(right) +
         "\" fill=\"none\" stroke=\"#333333\"/>\n";
    std::vector<std::string> colours;
    for (size_t k = 0; k < segments.size(); k++) colours.push_back(segment_colour(k));
    if (!segments.empty()) o += swatch_legend(kWidth - 16 - legend_w, top, legend_w, segments, colours);
    return o + "</svg>\n";
}

std::string svg_bar_chart(const std::string& title, const std::string& x_label, const std::vector<std::string>& labels,
                          const std::vector<BarSeries>& series, double reference) {
    for (const BarSeries& s : series)
        DYAD_CHECK(s.values.size() == labels.size(), "svg_bar_chart: series '", s.name, "' has ", s.values.size(),
                   " values for ", labels.size(), " labels");
    auto ok = [](double v) { return std::isfinite(v) && v > 0 && v < kHuge; };
    double lo = ok(reference) ? reference : INFINITY, hi = ok(reference) ? reference : -INFINITY;
    for (const BarSeries& s : series)
        for (double v : s.values)
            if (ok(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(lo <= hi)) lo = hi = 1;
    // Whole decades around the values (the bars start at the left edge).
    Axis ax = make_axis(std::log10(lo), std::log10(hi), true);
    if (ax.lo >= std::log10(lo) - 1e-9) ax.lo -= ax.step, ax.ticks += 1;
    size_t longest = 0;
    for (const std::string& l : labels) longest = std::max(longest, text_width(shorten(l, 34)));
    const double row_h = 8 + 14.0 * double(std::max<size_t>(1, series.size()));
    const double top = 44, left = 16 + 6.5 * double(longest);
    const int height = int(top + row_h * double(labels.size()) + 60);
    size_t longest_name = 0;
    for (const BarSeries& s : series) longest_name = std::max(longest_name, text_width(shorten(s.name, 36)));
    const double legend_w = series.size() > 1 ? 40 + 7.0 * double(longest_name) : 0;
    const double right = kWidth - 60 - (legend_w > 0 ? legend_w + 12 : 0), bottom = top + row_h * double(labels.size());
    auto px = [&](double v) { return left + (std::log10(v) - ax.lo) / (ax.hi - ax.lo) * (right - left); };
    // A series named after a backend ("cuda vs cpu": cuda) takes the backend's colour.
    std::vector<std::string> colours;
    for (size_t k = 0; k < series.size(); k++) {
        const std::string known = backend_colour(series_key(series[k].name));
        colours.push_back(known.empty() ? segment_colour(k) : known);
    }
    std::string o = svg_open(kWidth, height, title);
    o += "<g stroke=\"#e4e4e4\">\n";
    for (int i = 0; i < ax.ticks; i++) {
        const std::string x = coord(left + (right - left) * i / std::max(1, ax.ticks - 1));
        o += "<line x1=\"" + x + "\" y1=\"" + coord(top) + "\" x2=\"" + x + "\" y2=\"" + coord(bottom) + "\"/>\n";
    }
    o += "</g>\n<g fill=\"#333333\">\n";
    for (int i = 0; i < ax.ticks; i++)
        o += "<text x=\"" + coord(left + (right - left) * i / std::max(1, ax.ticks - 1)) + "\" y=\"" +
             coord(bottom + 16) + "\" text-anchor=\"middle\">" +
             xml(printf_str("%g", std::pow(10.0, ax.lo + i * ax.step))) + "</text>\n";
    o += "</g>\n<text x=\"" + coord((left + right) / 2) + "\" y=\"" + coord(bottom + 36) +
         "\" text-anchor=\"middle\">" + xml(x_label) + "</text>\n";
    for (size_t r = 0; r < labels.size(); r++) {
        const double y0 = top + row_h * double(r);
        o += "<text x=\"" + coord(left - 6) + "\" y=\"" + coord(y0 + row_h / 2 + 4) + "\" text-anchor=\"end\">" +
             xml(shorten(labels[r], 34)) + "</text>\n";
        for (size_t k = 0; k < series.size(); k++) {
            const double v = series[k].values[r], y = y0 + 4 + 14.0 * double(k);
            o += "<g class=\"bar\">";
            if (ok(v)) {
                o += "<rect x=\"" + coord(left) + "\" y=\"" + coord(y) + "\" width=\"" + coord(px(v) - left) +
                     "\" height=\"11\" fill=\"" + colours[k] + "\"/>";
                o += "<text x=\"" + coord(px(v) + 4) + "\" y=\"" + coord(y + 10) + "\">" + xml(ratio_text(v, 1)) +
                     "</text>";
            } else {
                o += "<text x=\"" + coord(left + 4) + "\" y=\"" + coord(y + 10) + "\" fill=\"#666666\">-</text>";
            }
            o += "</g>\n";
        }
    }
    if (ok(reference)) {
        const std::string x = coord(px(reference));
        o += "<line class=\"reference\" x1=\"" + x + "\" y1=\"" + coord(top - 4) + "\" x2=\"" + x + "\" y2=\"" +
             coord(bottom) + "\" stroke=\"#555555\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\n";
    }
    o += "<path d=\"M" + coord(left) + " " + coord(top) + " V" + coord(bottom) + " H" + coord(right) +
         "\" fill=\"none\" stroke=\"#333333\"/>\n";
    if (series.size() > 1) {
        std::vector<std::string> names;
        for (const BarSeries& bs : series) names.push_back(bs.name);
        o += swatch_legend(kWidth - 16 - legend_w, top, legend_w, names, colours);
    }
    return o + "</svg>\n";
}

LayerGroups group_layers(const std::vector<std::vector<LayerTime>>& per_backend, size_t max_rows) {
    std::vector<std::string> leaves;
    std::set<std::string> seen;
    for (const auto& layers : per_backend)
        for (const auto& l : layers)
            if (l.layer != "whole model" && seen.insert(l.layer).second) leaves.push_back(l.layer);
    const bool by_type = leaves.size() > max_rows;
    // "layer1.0.conv1 Conv2d(64, 64, 3x3) call 2" -> "Conv2d".
    auto row_of = [&](const std::string& layer) {
        if (!by_type) return layer;
        const size_t a = layer.find(' ');
        const std::string rest = a == std::string::npos ? layer : layer.substr(a + 1);
        return rest.substr(0, rest.find_first_of("( "));
    };
    LayerGroups g;
    std::map<std::string, size_t> index;
    for (const std::string& leaf : leaves)
        if (index.emplace(row_of(leaf), g.rows.size()).second) g.rows.push_back(row_of(leaf));
    const size_t rest = g.rows.size();
    g.rows.push_back("rest of the model");
    bool rest_used = false;
    for (const auto& layers : per_backend) {
        std::vector<double> f(g.rows.size(), 0.0), b(g.rows.size(), 0.0);
        double whole_f = -1, whole_b = -1, sum_f = 0, sum_b = 0;
        for (const auto& l : layers) {
            if (l.layer == "whole model") {
                whole_f = l.forward_ms, whole_b = l.backward_ms;
                continue;
            }
            const size_t row = index.at(row_of(l.layer));
            f[row] += l.forward_ms, b[row] += l.backward_ms;
            sum_f += l.forward_ms, sum_b += l.backward_ms;
        }
        f[rest] = std::max(0.0, whole_f - sum_f), b[rest] = std::max(0.0, whole_b - sum_b);
        rest_used = rest_used || f[rest] > 0 || b[rest] > 0;
        g.forward.push_back(f), g.backward.push_back(b);
    }
    if (!rest_used) {
        g.rows.pop_back();
        for (auto& v : g.forward) v.pop_back();
        for (auto& v : g.backward) v.pop_back();
    }
    return g;
}

std::string layer_chart(const std::string& title, const std::vector<std::string>& backends,
                        const std::vector<std::vector<LayerTime>>& per_backend) {
    DYAD_CHECK(backends.size() == per_backend.size(), "layer_chart: ", backends.size(), " backend names for ",
               per_backend.size(), " sets of layer times");
    const LayerGroups g = group_layers(per_backend);
    std::vector<StackedBar> bars;
    for (size_t i = 0; i < backends.size(); i++) {
        bars.push_back({backends[i], "fwd", g.forward[i]});
        bars.push_back({backends[i], "bwd", g.backward[i]});
    }
    return svg_stacked_bars(title, "ms", g.rows, bars);
}

std::string layer_speedup_chart(const std::string& title, const std::vector<std::string>& backends,
                                const std::vector<std::vector<LayerTime>>& per_backend, size_t reference,
                                const std::string& suffix) {
    DYAD_CHECK(backends.size() == per_backend.size() && reference < backends.size(),
               "layer_speedup_chart: ", backends.size(), " backend names for ", per_backend.size(),
               " sets of layer times, reference ", reference);
    const LayerGroups g = group_layers(per_backend);
    std::vector<BarSeries> series;
    for (size_t i = 0; i < backends.size(); i++) {
        if (i == reference) continue;
        BarSeries bs{backends[i] + suffix, {}};
        for (size_t row = 0; row < g.rows.size(); row++) {
            const double mine = g.forward[i][row] + g.backward[i][row];
            const double theirs = g.forward[reference][row] + g.backward[reference][row];
            bs.values.push_back(mine > 0 ? theirs / mine : NAN);
        }
        series.push_back(bs);
    }
    return svg_bar_chart(title, "speed-up (forward + backward)", g.rows, series, 1.0);
}

bool curves_identical(const std::vector<EpochMetrics>& epochs) {
    std::map<std::string, std::map<int, const EpochMetrics*>> by;
    for (const auto& e : epochs) by[e.backend][e.epoch] = &e;
    if (by.size() < 2) return false;
    const auto& first = by.begin()->second;
    for (const auto& [backend, runs] : by) {
        if (runs.size() != first.size()) return false;
        for (const auto& [epoch, e] : runs) {
            const auto it = first.find(epoch);
            if (it == first.end()) return false;
            const EpochMetrics* f = it->second;
            if (e->train_loss != f->train_loss || e->train_acc != f->train_acc || e->val_loss != f->val_loss ||
                e->val_top1 != f->val_top1)
                return false;
        }
    }
    return true;
}

namespace {

// The charts' series from the epochs: per backend (in order of first appearance), sorted by epoch.
std::vector<std::vector<const EpochMetrics*>> by_backend(const std::vector<EpochMetrics>& epochs) {
    std::vector<std::vector<const EpochMetrics*>> groups;
    std::map<std::string, size_t> index;
    for (const auto& e : epochs) {
        auto [it, added] = index.emplace(e.backend, groups.size());
        if (added) groups.emplace_back();
        groups[it->second].push_back(&e);
    }
    for (auto& g : groups)
        std::stable_sort(g.begin(), g.end(),
                         [](const EpochMetrics* a, const EpochMetrics* b) { return a->epoch < b->epoch; });
    return groups;
}

std::vector<Series> make_series(const std::vector<EpochMetrics>& epochs, double EpochMetrics::*train,
                                double EpochMetrics::*val, const std::string& val_suffix) {
    std::vector<Series> out;
    for (const auto& g : by_backend(epochs)) {
        Series t{g.front()->backend + " train", {}, {}, false};
        Series v{g.front()->backend + " " + val_suffix, {}, {}, true};
        for (const EpochMetrics* e : g) {
            t.x.push_back(e->epoch), t.y.push_back(e->*train);
            v.x.push_back(e->epoch), v.y.push_back(e->*val);
        }
        out.push_back(std::move(t));
        out.push_back(std::move(v));
    }
    return out;
}

std::string loss_chart(const std::vector<EpochMetrics>& epochs) {
    return svg_line_chart("Loss", "epoch", "loss",
                          make_series(epochs, &EpochMetrics::train_loss, &EpochMetrics::val_loss, "val"));
}

std::string accuracy_chart(const std::vector<EpochMetrics>& epochs) {
    return svg_line_chart("Accuracy", "epoch", "accuracy",
                          make_series(epochs, &EpochMetrics::train_acc, &EpochMetrics::val_top1, "val top-1"));
}

std::string format_eta(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e9) return "--:--";
    const int64_t s = std::llround(seconds);
    char buf[48];
    if (s < 3600) {
        std::snprintf(buf, sizeof(buf), "%d:%02d", int(s / 60), int(s % 60));
    } else {
        std::snprintf(buf, sizeof(buf), "%lld:%02d:%02d", static_cast<long long>(s / 3600), int(s / 60 % 60),
                      int(s % 60));
    }
    return buf;
}

}  // namespace

void write_charts(const std::string& dir, const std::vector<EpochMetrics>& epochs) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    DYAD_CHECK(!ec, "write_charts: cannot create the directory '", dir, "': ", ec.message());
    write_file_atomic("write_charts", dir + "/loss.svg", loss_chart(epochs));
    write_file_atomic("write_charts", dir + "/accuracy.svg", accuracy_chart(epochs));
}

void write_report_html(const std::string& path, const Report& report) {
    const std::string title = report.title.empty() ? std::string("Training report") : report.title;
    std::string o = html_page_start(title);
    if (!report.facts.empty()) {
        o += "<h2>Setup</h2>\n<table class=\"facts\">\n";
        for (const auto& [k, v] : report.facts) o += "<tr><th>" + xml(k) + "</th><td>" + xml(v) + "</td></tr>\n";
        o += "</table>\n";
    }
    o += "<h2>Curves</h2>\n";
    if (curves_identical(report.epochs))
        o += "<p class=\"note\"><strong>The backends' curves are identical</strong>: every backend computed the same "
             "losses and accuracies at every epoch, so each line lies exactly on the others and only the last one "
             "drawn shows.</p>\n";
    o += "<div class=\"charts\">\n" + inline_svg(loss_chart(report.epochs)) +
         inline_svg(accuracy_chart(report.epochs)) + "</div>\n";
    o += "<h2>Backends</h2>\n";
    if (report.backends.empty()) {
        o += "<p>No backend was run.</p>\n";
    } else {
        o += html_table(comparison_rows(report), "comparison");
        for (const auto& b : report.backends)
            if (!b.note.empty()) o += "<p>" + xml(b.note) + ".</p>\n";
    }
    o += "<p>Largest difference between the backends' loss curves at the same epoch: " +
         xml(num(report.max_curve_difference)) + "</p>\n";
    o += "<h2>Time per layer</h2>\n";
    const auto layers = layer_rows(report);
    if (layers.empty()) {
        o += "<p>No per-layer times were measured.</p>\n";
    } else {
        std::vector<std::string> names;
        std::vector<std::vector<LayerTime>> per_backend;
        for (const auto& b : report.backends)
            if (!b.layers.empty()) names.push_back(b.backend), per_backend.push_back(b.layers);
        o += "<p>Milliseconds per step, averaged over the profiled steps: each layer run alone on the input it "
             "receives in the model, forward and backward.</p>\n<div class=\"charts\">\n" +
             inline_svg(layer_chart("Where the step's time goes", names, per_backend));
        const BackendSummary* ref = layer_reference(report);
        if (names.size() >= 2 && ref) {
            const size_t ref_index = size_t(std::find(names.begin(), names.end(), ref->backend) - names.begin());
            o += inline_svg(layer_speedup_chart("Speed-up per layer over " + ref->backend, names, per_backend,
                                                ref_index, " vs " + ref->backend));
        }
        o += "</div>\n" + html_table(layers, "layers");
    }
    if (!report.epochs.empty()) {
        std::vector<std::vector<std::string>> rows{
            {"backend", "epoch", "train loss", "train acc", "val loss", "val top-1", "val top-5", "seconds", "img/s"}};
        for (const auto& e : report.epochs) {
            rows.push_back({e.backend, std::to_string(e.epoch), fixed(e.train_loss, 4), fixed(e.train_acc, 4),
                            fixed(e.val_loss, 4), fixed(e.val_top1, 4), fixed(e.val_top5, 4), fixed(e.seconds, 2),
                            fixed(e.img_per_s, 0)});
        }
        o += "<h2>Epochs</h2>\n" + html_table(rows, "epochs");
    }
    o += "</body>\n</html>\n";
    write_file_atomic("write_report_html", path, o);
}

std::string comparison_table(const Report& report) {
    if (report.backends.empty()) return "no backend was run\n";
    std::string notes;
    for (const auto& b : report.backends)
        if (!b.note.empty()) notes += b.note + ".\n";
    return text_table(comparison_rows(report), {Align::left, Align::right, Align::right, Align::right, Align::right}) +
           notes;
}

std::string layer_table(const Report& report) {
    const auto rows = layer_rows(report);
    if (rows.empty()) return "no per-layer times\n";
    std::vector<Align> align(rows.front().size(), Align::right);
    align[0] = Align::left;
    return text_table(rows, align);
}

std::string progress_line(const std::string& backend, int epoch, int epochs, int64_t done, int64_t total,
                          double img_per_s, double loss, double acc, double eta_seconds, int bar_width) {
    std::string o = backend + "  epoch " + std::to_string(epoch) + "/" + std::to_string(epochs);
    if (bar_width > 0) {
        const double frac = total > 0 ? std::clamp(double(done) / double(total), 0.0, 1.0) : 0.0;
        const int filled = std::clamp(int(std::floor(frac * bar_width + 1e-9)), 0, bar_width);
        o += " [" + std::string(size_t(filled), '#') + std::string(size_t(bar_width - filled), '.') + "]";
    }
    o += "  " + std::to_string(done) + "/" + std::to_string(total);
    o += "  " + fixed(img_per_s, 0) + " img/s";
    o += "  loss " + fixed(loss, 4) + "  acc " + fixed(acc, 3) + "  ETA " + format_eta(eta_seconds);
    return o;
}

}  // namespace dyad::trainer
