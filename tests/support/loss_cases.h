// Softmax and cross-entropy case lists of the kernel-set tests (tests/ops/loss.cpp) and the CPU tests
// (tests/kernels/test_loss.cpp): 3-D shapes to run softmax along every dim of, (outer, reduce, inner)
// shapes for the kernels called directly, the cross-entropy class counts and batch sizes, the
// cross-entropy kernel cases, deterministic labels, and logits with inf and NaN.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/shapes.h"

namespace dyad::test {

// Softmax and log-softmax run along every dim of these: rows of 1, odd lengths, long and short rows,
// and the reference CNN's (64, 200) logits as a slice.
inline const std::vector<Shape>& softmax_shapes() {
    static const std::vector<Shape> s = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {2, 300, 65}, {64, 3, 200}, {129, 2, 3}};
    return s;
}

// Cross-entropy: class counts (1, odd, the reference CNN's 200) and batch sizes (odd, above a block).
inline const std::vector<int64_t>& cross_entropy_classes() {
    static const std::vector<int64_t> c = {1, 7, 200};
    return c;
}
inline const std::vector<int64_t>& cross_entropy_batches() {
    static const std::vector<int64_t> n = {1, 3, 65, 1027};
    return n;
}

// The softmax kernels called directly on (outer, reduce, inner) shapes, beyond softmax_shapes() along each
// dim: rows along the last dim (inner 1) and strided columns (inner 4 and 2).
inline const std::vector<ReduceShape>& softmax_kernel_shapes() {
    static const std::vector<ReduceShape> s = {{7, 33, 1}, {3, 5, 4}, {3, 5, 2}};
    return s;
}

// The cross-entropy kernels called directly: every class count and batch size above with and without
// smoothing (logits scaled by 4, incoming gradient 0.5), and an incoming gradient other than 0.5 and 1.
struct CrossEntropyKernelCase {
    int64_t n, c;
    float eps, dloss;
    uint64_t x_seed;
    double x_scale;
    uint64_t label_seed, dx_seed;  // dx_seed: the values the backward kernel adds to
};
inline const std::vector<CrossEntropyKernelCase>& cross_entropy_kernel_cases() {
    static const std::vector<CrossEntropyKernelCase> k = [] {
        std::vector<CrossEntropyKernelCase> v;
        for (int64_t c : cross_entropy_classes())
            for (int64_t n : cross_entropy_batches())
                for (float eps : {0.0f, 0.1f})
                    v.push_back({n, c, eps, 0.5f, uint64_t(n * 1000 + c), 4.0, uint64_t(n + c), 46});
        v.push_back({9, 13, 0.1f, 2.0f, 83, 1.0, 84, 85});
        return v;
    }();
    return k;
}

// Labels in [0, c), deterministic (a small LCG: the values depend only on the seed).
inline Tensor random_labels(int64_t n, int64_t c, uint64_t seed) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (auto& l : v) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        l = int32_t((s >> 33) % uint64_t(c));
    }
    return Tensor::from_vector(v, {n});
}

// ---------------------------------------------------------------------------- non-finite logits
// Cross-entropy of a batch of 3 rows of 5 classes (labels 0, 2, 4) whose row 1 holds one special value,
// at its label or at class 3; row 2 holds logits of +-1e4 (finite: its loss and gradient must stay
// finite). What is mathematically right for row 1 (row loss lse - (1 - eps) x[label] - eps / C sum x):
//   NaN anywhere: the loss is NaN and so is every gradient element of the row.
//   +inf at the label: lse - x[label] is inf - inf, which has no value: the loss is NaN. The softmax of
//     the row is inf / inf (x - max is inf - inf), so the row's gradient is not finite either.
//   +inf elsewhere: the loss tends to +inf as the logit grows, but at +inf the softmax is inf / inf as
//     above: NaN and +inf are both accepted for the loss, and the row's gradient is not finite.
//   -inf elsewhere, no smoothing: that class has probability exactly 0, which is how classes are masked:
//     the loss and the whole gradient are finite, and the gradient of the masked class is exactly 0.
//   -inf elsewhere with smoothing, or at the label: the loss is +inf (a target weight on log 0) while
//     the gradient, softmax - q, stays finite.
// The other rows' losses (from their saved log-sum-exp) and gradients are finite in every case; the
// batch loss is their mean, so it carries row 1's value.
enum class ExpectLoss { nan, nan_or_inf, inf, finite };
struct NonFiniteLogits {
    const char* name;
    float value;  // placed in row 1
    bool at_label;
    float eps;  // label smoothing
    ExpectLoss loss;
    bool grad_finite;  // row 1's gradient
};

constexpr int64_t kNonFiniteRows = 3, kNonFiniteClasses = 5;

inline const std::vector<NonFiniteLogits>& non_finite_logit_cases() {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    static const std::vector<NonFiniteLogits> c = {
        {"NaN at the label", nan, true, 0.0f, ExpectLoss::nan, false},
        {"NaN elsewhere, smoothing 0.1", nan, false, 0.1f, ExpectLoss::nan, false},
        {"+inf at the label", inf, true, 0.0f, ExpectLoss::nan, false},
        {"+inf elsewhere", inf, false, 0.0f, ExpectLoss::nan_or_inf, false},
        {"+inf elsewhere, smoothing 0.1", inf, false, 0.1f, ExpectLoss::nan_or_inf, false},
        {"-inf elsewhere", -inf, false, 0.0f, ExpectLoss::finite, true},
        {"-inf elsewhere, smoothing 0.1", -inf, false, 0.1f, ExpectLoss::inf, true},
        {"-inf at the label", -inf, true, 0.0f, ExpectLoss::inf, true},
    };
    return c;
}

inline std::vector<int32_t> non_finite_labels() { return {0, 2, 4}; }

// Row-major (3, 5) logits of case k; with special false, row 1 is left finite (the clean batch).
inline std::vector<float> non_finite_logits(const NonFiniteLogits& k, bool special = true) {
    std::vector<float> x = {0.5f, -1.25f, 2.0f,  0.25f, -0.75f,  // ordinary
                            1.0f, 0.125f, -0.5f, 1.5f,  -2.0f,   // row 1: gets the special value
                            1e4f, -1e4f,  0.0f,  5e3f,  -1e4f};  // +-1e4, the label's logit -1e4: loss 2e4
    if (special) x[size_t(kNonFiniteClasses + (k.at_label ? 2 : 3))] = k.value;
    return x;
}

// Row r's loss from the log-sum-exp the forward kernel saved, in double.
inline double non_finite_row_loss(const std::vector<float>& x, const std::vector<float>& lse, int64_t r, float eps) {
    const int64_t c = kNonFiniteClasses;
    const int32_t label = non_finite_labels()[size_t(r)];
    double sum_x = 0;
    for (int64_t j = 0; j < c; j++) sum_x += double(x[size_t(r * c + j)]);
    const double e = double(eps);
    return double(lse[size_t(r)]) - (1 - e) * double(x[size_t(r * c + label)]) - (e != 0 ? e / double(c) * sum_x : 0.0);
}

// Checks the kernels' results for case k against the rules above; returns what is wrong (empty: nothing).
inline std::string check_non_finite(const NonFiniteLogits& k, const std::vector<float>& x, float loss,
                                    const std::vector<float>& lse, const std::vector<float>& dlogits) {
    std::ostringstream os;
    auto loss_ok = [&](double v) {
        switch (k.loss) {
            case ExpectLoss::nan:
                return std::isnan(v);
            case ExpectLoss::nan_or_inf:
                return std::isnan(v) || v == std::numeric_limits<double>::infinity();
            case ExpectLoss::inf:
                return v == std::numeric_limits<double>::infinity();
            case ExpectLoss::finite:
                return std::isfinite(v);
        }
        return false;
    };
    const char* want[] = {"NaN", "NaN or +inf", "+inf", "finite"};
    if (!loss_ok(double(loss))) os << "batch loss " << loss << ", expected " << want[int(k.loss)] << "; ";
    const int64_t c = kNonFiniteClasses;
    for (int64_t r = 0; r < kNonFiniteRows; r++) {
        const double row_loss = non_finite_row_loss(x, lse, r, k.eps);
        int64_t finite = 0, nan = 0;
        for (int64_t j = 0; j < c; j++) {
            finite += std::isfinite(dlogits[size_t(r * c + j)]) ? 1 : 0;
            nan += std::isnan(dlogits[size_t(r * c + j)]) ? 1 : 0;
        }
        if (r != 1) {
            if (!std::isfinite(row_loss)) os << "row " << r << " loss " << row_loss << ", expected finite; ";
            if (finite != c) os << "row " << r << ": " << c - finite << " non-finite gradient elements; ";
            continue;
        }
        if (!loss_ok(row_loss)) os << "row 1 loss " << row_loss << ", expected " << want[int(k.loss)] << "; ";
        if (k.grad_finite && finite != c) os << "row 1: " << c - finite << " non-finite gradient elements; ";
        if (!k.grad_finite && finite == c) os << "row 1: gradient finite, expected non-finite; ";
        if (std::isnan(k.value) && nan != c) os << "row 1: " << c - nan << " gradient elements not NaN; ";
        if (k.grad_finite && !k.at_label && k.eps == 0 && dlogits[size_t(c + 3)] != 0.0f)
            os << "row 1: gradient of the -inf class " << dlogits[size_t(c + 3)] << ", expected 0; ";
    }
    return os.str();
}

}  // namespace dyad::test
