// Printing: nested brackets like NumPy, summarised with "..." past 1000 elements (3 items each end).
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "dyad/tensor.h"

namespace dyad {

namespace {

constexpr int64_t kSummarizeOver = 1000;
constexpr int64_t kEdgeItems = 3;

struct Printer {
    std::vector<double> values;  // whole tensor, row-major, as double (floating dtypes)
    std::vector<int64_t> ints;   // the same for integer dtypes, exactly (int64 beyond 2^53 included)
    Shape shape;
    bool floating = true;
    bool summarize = false;
    int width = 1;
    bool sci = false;

    std::string fmt(size_t i) const {
        std::ostringstream os;
        if (!floating) {
            os << ints[i];
            return os.str();
        }
        const double v = values[i];
        if (std::isnan(v)) {
            os << "nan";
        } else if (std::isinf(v)) {
            os << (v < 0 ? "-inf" : "inf");
        } else if (sci) {
            os << std::scientific << std::setprecision(4) << v;
        } else {
            os << std::fixed << std::setprecision(4) << v;
        }
        return os.str();
    }

    void rec(std::ostream& os, size_t d, int64_t base, int indent) const {
        if (shape.empty()) {
            os << fmt(0);
            return;
        }
        const int64_t n = shape[d];
        int64_t stride = 1;
        for (size_t k = d + 1; k < shape.size(); k++) stride *= shape[k];
        os << "[";
        for (int64_t i = 0; i < n; i++) {
            if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
                os << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(size_t(indent + 1), ' '));
                i = n - kEdgeItems - 1;
                continue;
            }
            if (d + 1 == shape.size()) {
                os << std::setw(width) << fmt(size_t(base + i));
            } else {
                rec(os, d + 1, base + i * stride, indent + 1);
            }
            if (i + 1 < n) {
                os << ",";
                if (d + 1 == shape.size()) {
                    os << " ";
                } else {
                    os << std::string(shape.size() - d - 1, '\n') << std::string(size_t(indent + 1), ' ');
                }
            }
        }
        os << "]";
    }
};

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
    if (!t.defined()) return os << "tensor(undefined)";
    Printer p;
    p.shape = t.shape();
    p.floating = is_floating(t.dtype());
    p.summarize = t.numel() > kSummarizeOver;
    const Tensor h = t.detach().to(Device::cpu());
    if (p.floating)
        p.values = h.to(DType::float64).contiguous().to_vector<double>();
    else
        p.ints = h.to(DType::int64).contiguous().to_vector<int64_t>();
    double maxabs = 0, minabs = INFINITY;
    for (double v : p.values)
        if (std::isfinite(v) && v != 0) maxabs = std::max(maxabs, std::abs(v)), minabs = std::min(minabs, std::abs(v));
    p.sci = p.floating && (maxabs >= 1e8 || (minabs < 1e-4 && maxabs > 0));
    for (size_t i = 0, n = size_t(t.numel()); i < n; i++) p.width = std::max(p.width, int(p.fmt(i).size()));
    os << "tensor(";
    if (t.numel() == 0)
        os << "[]";
    else
        p.rec(os, 0, 0, 7);
    os << ", shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype()) << ", device=" << t.device().str();
    if (t.requires_grad()) os << ", requires_grad";
    return os << ")";
}

}  // namespace dyad
