// Softmax, log-softmax and cross-entropy: known values, omp-vs-naive parity on odd shapes (softmax along
// every dim of 3-D tensors, cross-entropy with C = 1, 7, 200) through the frontend and on the kernels
// (outputs that start as NaN), stability with huge logits, inf and NaN logits, float64 gradient checks,
// the fused cross-entropy against the same loss built from existing ops, and errors.
//
// Tolerances (omp against naive, float32): the omp kernels work in float (x - max rounds, so exp(x - max)
// carries a relative error up to about |x - max| * 6e-8) and use their own vectorisable exp (about 2 ulp);
// naive works in double from the same float inputs. On these cases (|x - max| up to ~25) the worst
// difference seen is 1.1e-6 relative for probabilities and 1.9e-6 absolute for log-probabilities, so
// rtol 1e-5 leaves a factor of about 10 and still catches any wrong index or formula (those are off by
// whole percent). atol 1e-6 covers values near 0, whose error is absolute.
#include "support/catch.h"

#include <cmath>
#include <limits>
#include <regex>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/loss.h"
#include "support/compare.h"
#include "support/loss_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::count_nan;
using test::make;
using test::nan_filled;
using test::random_labels;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
constexpr DType kFloatTypes[] = {DType::float32, DType::float64};
constexpr double kParityRtol = 1e-5, kParityAtol = 1e-6;

// q = (1 - eps) * onehot(labels) + eps / c as a float64 tensor (n, c).
Tensor smoothed_targets(const Tensor& labels, int64_t c, double eps) {
    const std::vector<int32_t> lab = labels.to_vector<int32_t>();
    std::vector<double> q(lab.size() * size_t(c), eps / double(c));
    for (size_t i = 0; i < lab.size(); i++) q[i * size_t(c) + size_t(lab[i])] += 1.0 - eps;
    return Tensor::from_vector(q, {int64_t(lab.size()), c});
}

// The loss from existing differentiable ops: -mean over rows of sum_c q * log_softmax(x).
Tensor composite_cross_entropy(const Tensor& x, const Tensor& labels, double eps) {
    const Tensor q = smoothed_targets(labels, x.size(1), eps).to(x.dtype());
    return neg(mean(sum(mul(q, log_softmax(x, 1)), {1})));
}

enum class Which { softmax, log_softmax };
Tensor run(Which w, const Tensor& x, int64_t dim) {
    return w == Which::softmax ? softmax(x, dim) : log_softmax(x, dim);
}
const char* name(Which w) { return w == Which::softmax ? "softmax" : "log_softmax"; }

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("softmax and log_softmax: known values in both kernel sets", "[loss][naive][omp]") {
    const std::vector<double> sm = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
    const std::vector<double> lsm = {-2.40760596444438, -1.4076059644443801, -0.40760596444438013};
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const double rtol = dt == DType::float32 ? 1e-6 : 1e-14;
            // Along the last dim, and along dim 0 of the transpose (the same numbers, strided input).
            const Tensor x = make({1, 2, 3, 11, 12, 13}, {2, 3}, dt);
            const Tensor y = softmax(x);
            REQUIRE(y.shape() == Shape{2, 3});
            REQUIRE(y.dtype() == dt);
            REQUIRE_THAT(values(y), AllClose(std::vector<double>{sm[0], sm[1], sm[2], sm[0], sm[1], sm[2]}).rtol(rtol));
            REQUIRE_THAT(values(softmax(x.t(), 0).t()), AllClose(values(y)).rtol(rtol));
            REQUIRE_THAT(values(log_softmax(x, -1)),
                         AllClose(std::vector<double>{lsm[0], lsm[1], lsm[2], lsm[0], lsm[1], lsm[2]}).rtol(rtol));
            // Along dim 0: two rows, columns differ by 10.
            const double a = 1 / (1 + std::exp(10.0));
            REQUIRE_THAT(values(softmax(x, 0)), AllClose(std::vector<double>{a, a, a, 1 - a, 1 - a, 1 - a}).rtol(rtol));
            // A 0-d tensor is one row of one element.
            REQUIRE(values(softmax(make({5}, {}, dt)))[0] == 1.0);
            REQUIRE(values(log_softmax(make({5}, {}, dt)))[0] == 0.0);
        }
    }
}

TEST_CASE("cross_entropy: known values and gradient, with and without smoothing", "[loss][naive][omp]") {
    const double lse = 3.40760596444438;  // log(e + e^2 + e^3)
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const double rtol = dt == DType::float32 ? 1e-6 : 1e-14;
            const Tensor labels = Tensor::from_vector(std::vector<int32_t>{2, 0}, {2});
            Tensor x = make({1, 2, 3, 1, 2, 3}, {2, 3}, dt).requires_grad_();
            Tensor loss = cross_entropy(x, labels);
            REQUIRE(loss.shape() == Shape{});
            REQUIRE(loss.dtype() == dt);
            // rows: lse - 3 and lse - 1
            REQUIRE_THAT(values(loss), AllClose(std::vector<double>{lse - 2}).rtol(rtol));
            loss.backward();
            const double p0 = 0.09003057317038046, p1 = 0.24472847105479767, p2 = 0.6652409557748219;
            REQUIRE_THAT(values(x.grad()),
                         AllClose(std::vector<double>{p0 / 2, p1 / 2, (p2 - 1) / 2, (p0 - 1) / 2, p1 / 2, p2 / 2})
                             .rtol(rtol)
                             .atol(1e-7));
            // Smoothing 0.3 with labels {2, 2}: row loss = lse - 0.7 * 3 - 0.1 * (1 + 2 + 3).
            x.zero_grad();
            loss = cross_entropy(x, Tensor::from_vector(std::vector<int32_t>{2, 2}, {2}), 0.3);
            REQUIRE_THAT(values(loss), AllClose(std::vector<double>{lse - 2.1 - 0.6}).rtol(rtol));
            loss.backward(make({4}, {}, dt));  // incoming gradient 4: dx = 4 / 2 * (p - q)
            REQUIRE_THAT(values(x.grad()), AllClose(std::vector<double>{2 * (p0 - 0.1), 2 * (p1 - 0.1), 2 * (p2 - 0.8),
                                                                        2 * (p0 - 0.1), 2 * (p1 - 0.1), 2 * (p2 - 0.8)})
                                               .rtol(rtol)
                                               .atol(1e-7));
        }
    }
}

TEST_CASE("cross_entropy with one class is 0 and label smoothing 1 ignores the labels", "[loss][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        Tensor x = make({3, -7, 100}, {3, 1}, DType::float32).requires_grad_();
        Tensor loss = cross_entropy(x, Tensor::zeros({3}, DType::int32));
        REQUIRE(loss.item() == 0.0);
        loss.backward();
        REQUIRE(values(x.grad()) == std::vector<double>{0, 0, 0});
        // eps = 1: q is uniform, so the labels do not matter.
        const Tensor y = make({1, 2, 3, 4, 0, -1}, {2, 3}, DType::float32);
        const double a = cross_entropy(y, Tensor::from_vector(std::vector<int32_t>{0, 1}, {2}), 1.0).item();
        const double b = cross_entropy(y, Tensor::from_vector(std::vector<int32_t>{2, 2}, {2}), 1.0).item();
        REQUIRE(a == b);
    }
}

// ---------------------------------------------------------------------------- parity
TEST_CASE("softmax and log_softmax along every dim: omp matches naive", "[loss][naive][omp]") {
    for (const Shape& shape : test::softmax_shapes()) {
        const Tensor x = test::random_tensor(shape, 41) * 3.0;
        const Tensor dy = test::random_tensor(shape, 42);
        for (Which w : {Which::softmax, Which::log_softmax}) {
            for (int64_t dim = -1; dim < 3; dim++) {
                INFO(name(w) << " " << shape_str(shape) << " dim " << dim);
                Tensor y[2], dx[2];
                for (int i = 0; i < 2; i++) {
                    CpuKernelsGuard guard(kKernelSets[i]);
                    Tensor xl = x.detach().requires_grad_();
                    y[i] = run(w, xl, dim);
                    y[i].backward(dy);
                    dx[i] = xl.grad();
                }
                REQUIRE_THAT(values(y[1]), AllClose(values(y[0])).rtol(kParityRtol).atol(kParityAtol));
                // The backward passes are compared with the gradient each set's own forward output implies,
                // computed in float64: comparing the two sets' gradients directly would also compare their
                // forward outputs, whose float rounding the backward multiplies by a row sum of dy (up to
                // about 14 for rows of 200).
                for (int i = 0; i < 2; i++) {
                    INFO("kernels " << (i == 0 ? "naive" : "omp"));
                    NoGradGuard ng;
                    const Tensor y64 = y[i].detach().to(DType::float64), dy64 = dy.to(DType::float64);
                    const Tensor expected = w == Which::softmax ? mul(y64, sub(dy64, sum(mul(dy64, y64), {dim}, true)))
                                                                : sub(dy64, mul(exp(y64), sum(dy64, {dim}, true)));
                    REQUIRE_THAT(values(dx[i]), AllClose(values(expected)).rtol(kParityRtol).atol(kParityAtol));
                }
            }
        }
    }
}

TEST_CASE("cross_entropy: omp matches naive for C = 1, 7, 200 and odd N", "[loss][naive][omp]") {
    for (int64_t c : test::cross_entropy_classes()) {
        for (int64_t n : test::cross_entropy_batches()) {
            const Tensor x = test::random_tensor({n, c}, uint64_t(n * 1000 + c)) * 4.0;
            const Tensor labels = random_labels(n, c, uint64_t(n + c));
            for (double eps : {0.0, 0.1}) {
                INFO("N " << n << " C " << c << " smoothing " << eps);
                Tensor loss[2], dx[2];
                for (int i = 0; i < 2; i++) {
                    CpuKernelsGuard guard(kKernelSets[i]);
                    Tensor xl = x.detach().requires_grad_();
                    loss[i] = cross_entropy(xl, labels, eps);
                    loss[i].backward(make({0.5}, {}, DType::float32));
                    dx[i] = xl.grad();
                }
                REQUIRE_THAT(values(loss[1]), AllClose(values(loss[0])).rtol(kParityRtol));
                // Gradients are (p - q) * 0.5 / n: absolute errors scale with 1 / n.
                REQUIRE_THAT(values(dx[1]), AllClose(values(dx[0])).rtol(kParityRtol).atol(kParityAtol / double(n)));
            }
        }
    }
}

TEST_CASE("cross_entropy with int64 labels gives the int32 results bit for bit", "[loss][naive][omp]") {
    // The label only picks a column, so the dtype that carries it cannot change a bit of the result.
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            for (int64_t c : test::cross_entropy_classes()) {
                const int64_t n = 7;
                INFO(cpu_kernels_name(k) << " " << dtype_name(dt) << " C " << c);
                const Tensor x = (test::random_tensor({n, c}, uint64_t(c), test::Layout::contiguous, dt) * 4.0);
                const Tensor l32 = random_labels(n, c, uint64_t(c + 1));
                const Tensor l64 = l32.to(DType::int64);
                REQUIRE(l64.dtype() == DType::int64);
                for (double eps : {0.0, 0.1}) {
                    Tensor loss[2], dx[2];
                    const Tensor lab[2] = {l32, l64};
                    for (int i = 0; i < 2; i++) {
                        Tensor xl = x.detach().requires_grad_();
                        loss[i] = cross_entropy(xl, lab[i], eps);
                        loss[i].backward();
                        dx[i] = xl.grad();
                    }
                    test::require_identical(loss[0], loss[1]);
                    test::require_identical(dx[0], dx[1]);
                }
            }
        }
    }
    // The kernels directly, both label types.
    const std::vector<float> x = {1, 2, 3, -1, 0, 5};
    const std::vector<int32_t> l32 = {2, 0};
    const std::vector<int64_t> l64 = {2, 0};
    float loss32, loss64, lse32[2], lse64[2];
    omp::cross_entropy_fwd(2, 3, &loss32, lse32, x.data(), l32.data(), 0.0f);
    omp::cross_entropy_fwd(2, 3, &loss64, lse64, x.data(), l64.data(), 0.0f);
    REQUIRE(loss32 == loss64);
    std::vector<float> d32(6, 0.5f), d64(6, 0.5f);
    const float one = 1;
    omp::cross_entropy_bwd(2, 3, d32.data(), &one, x.data(), lse32, l32.data(), 0.1f);
    omp::cross_entropy_bwd(2, 3, d64.data(), &one, x.data(), lse64, l64.data(), 0.1f);
    REQUIRE(test::same_bits(d32, d64));
    double dloss, dlse[2];
    const std::vector<double> xd(x.begin(), x.end());
    naive::cross_entropy_fwd<double>(2, 3, &dloss, dlse, xd.data(), l64.data(), 0.0);
    REQUIRE(float(dloss) == Approx(loss64).epsilon(1e-6));  // float vs double: rounding only
}

TEST_CASE("softmax kernels accumulate into dx", "[loss][naive][omp]") {
    // dx starts at 1: the result must be 1 + the gradient, in both kernel sets.
    const ReduceShape s{3, 5, 2};
    const int64_t n = 30;
    std::vector<float> y(n), dy(n, 0.0f);
    const Tensor x = test::random_tensor({n}, 7);
    naive::softmax_fwd<float>(s, y.data(), x.data<float>());
    for (auto bwd : {0, 1, 2, 3}) {
        std::vector<float> dx(n, 1.0f);
        if (bwd == 0) naive::softmax_bwd<float>(s, dx.data(), dy.data(), y.data());
        if (bwd == 1) omp::softmax_bwd(s, dx.data(), dy.data(), y.data());
        if (bwd == 2) naive::log_softmax_bwd<float>(s, dx.data(), dy.data(), y.data());
        if (bwd == 3) omp::log_softmax_bwd(s, dx.data(), dy.data(), y.data());
        REQUIRE(dx == std::vector<float>(n, 1.0f));  // dy = 0 adds nothing
    }
}

TEST_CASE("softmax, log_softmax and cross_entropy kernels: omp matches naive into outputs that start as NaN",
          "[loss][naive][omp]") {
    // Forward outputs (y, the loss, the saved log-sum-exp) start as NaN: an element a kernel does not
    // write fails. The backward kernels accumulate: in each kernel set, dx that starts with values must
    // become those values plus the gradient computed into zeros (one rounding). The softmax backward
    // values across the sets are compared by the frontend test above; the cross-entropy gradients here.
    auto as_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    auto plus = [](const std::vector<float>& a, const std::vector<float>& b) {
        std::vector<double> r(a.size());
        for (size_t i = 0; i < r.size(); i++) r[i] = double(a[i]) + double(b[i]);
        return r;
    };
    for (const Shape& shape : test::softmax_shapes()) {
        const int64_t numel = shape_numel(shape);
        const std::vector<float> x = (test::random_tensor(shape, 43) * 3.0).to_vector<float>();
        const std::vector<float> dy = test::random_tensor(shape, 44).to_vector<float>();
        const std::vector<float> dx0 = test::random_tensor(shape, 45).to_vector<float>();
        for (int64_t dim = 0; dim < 3; dim++) {
            ReduceShape s;
            s.outer = dim == 0 ? 1 : dim == 1 ? shape[0] : shape[0] * shape[1];
            s.reduce = shape[size_t(dim)];
            s.inner = dim == 2 ? 1 : dim == 1 ? shape[2] : shape[1] * shape[2];
            for (Which w : {Which::softmax, Which::log_softmax}) {
                INFO(name(w) << " " << shape_str(shape) << " dim " << dim);
                const bool sm = w == Which::softmax;
                std::vector<float> y[2] = {nan_filled<float>(numel), nan_filled<float>(numel)};
                if (sm) naive::softmax_fwd<float>(s, y[0].data(), x.data());
                if (sm) omp::softmax_fwd(s, y[1].data(), x.data());
                if (!sm) naive::log_softmax_fwd<float>(s, y[0].data(), x.data());
                if (!sm) omp::log_softmax_fwd(s, y[1].data(), x.data());
                REQUIRE(count_nan(y[0]) + count_nan(y[1]) == 0);
                REQUIRE_THAT(y[1], AllClose(y[0]).rtol(kParityRtol).atol(kParityAtol));

                const float* yn = y[0].data();
                std::vector<float> dx[2] = {dx0, dx0}, fresh[2] = {std::vector<float>(size_t(numel), 0.0f),
                                                                   std::vector<float>(size_t(numel), 0.0f)};
                for (std::vector<float>* d : {&dx[0], &fresh[0]}) {
                    if (sm) naive::softmax_bwd<float>(s, d->data(), dy.data(), yn);
                    if (!sm) naive::log_softmax_bwd<float>(s, d->data(), dy.data(), yn);
                }
                for (std::vector<float>* d : {&dx[1], &fresh[1]}) {
                    if (sm) omp::softmax_bwd(s, d->data(), dy.data(), yn);
                    if (!sm) omp::log_softmax_bwd(s, d->data(), dy.data(), yn);
                }
                for (int i = 0; i < 2; i++)
                    REQUIRE_THAT(as_double(dx[i]), AllClose(plus(dx0, fresh[i])).rtol(1e-6).atol(1e-6));
            }
        }
    }
    for (int64_t c : test::cross_entropy_classes()) {
        for (int64_t n : test::cross_entropy_batches()) {
            const std::vector<float> x = (test::random_tensor({n, c}, uint64_t(n * 1000 + c)) * 4.0).to_vector<float>();
            const std::vector<int32_t> labels = random_labels(n, c, uint64_t(n + c)).to_vector<int32_t>();
            const std::vector<float> dx0 = test::random_tensor({n, c}, 46).to_vector<float>(), dloss = {0.5f};
            for (float eps : {0.0f, 0.1f}) {
                INFO("cross_entropy N " << n << " C " << c << " smoothing " << eps);
                std::vector<float> loss[2] = {nan_filled<float>(1), nan_filled<float>(1)},
                                   lse[2] = {nan_filled<float>(n), nan_filled<float>(n)};
                naive::cross_entropy_fwd<float>(n, c, loss[0].data(), lse[0].data(), x.data(), labels.data(), eps);
                omp::cross_entropy_fwd(n, c, loss[1].data(), lse[1].data(), x.data(), labels.data(), eps);
                REQUIRE(count_nan(loss[0]) + count_nan(loss[1]) + count_nan(lse[0]) + count_nan(lse[1]) == 0);
                REQUIRE_THAT(loss[1], AllClose(loss[0]).rtol(kParityRtol));
                REQUIRE_THAT(lse[1], AllClose(lse[0]).rtol(kParityRtol).atol(kParityAtol));

                std::vector<float> dx[2] = {dx0, dx0}, fresh[2] = {std::vector<float>(size_t(n * c), 0.0f),
                                                                   std::vector<float>(size_t(n * c), 0.0f)};
                for (std::vector<float>* d : {&dx[0], &fresh[0]})
                    naive::cross_entropy_bwd<float>(n, c, d->data(), dloss.data(), x.data(), lse[0].data(),
                                                    labels.data(), eps);
                for (std::vector<float>* d : {&dx[1], &fresh[1]})
                    omp::cross_entropy_bwd(n, c, d->data(), dloss.data(), x.data(), lse[0].data(), labels.data(), eps);
                REQUIRE_THAT(fresh[1], AllClose(fresh[0]).rtol(kParityRtol).atol(kParityAtol / double(n)));
                for (int i = 0; i < 2; i++)
                    REQUIRE_THAT(as_double(dx[i]), AllClose(plus(dx0, fresh[i])).rtol(1e-6).atol(1e-6));
            }
        }
    }
}

// ---------------------------------------------------------------------------- stability
TEST_CASE("cross_entropy kernels with inf and NaN logits: the loss shows it, other rows stay finite",
          "[loss][naive][omp]") {
    // The expected value of each case, and why, is in tests/support/loss_cases.h.
    const int64_t n = test::kNonFiniteRows, c = test::kNonFiniteClasses;
    const std::vector<int32_t> labels = test::non_finite_labels();
    const std::vector<float> dloss = {1.0f};
    for (const test::NonFiniteLogits& k : test::non_finite_logit_cases()) {
        for (CpuKernels set : kKernelSets) {
            INFO(k.name << ", " << cpu_kernels_name(set));
            const bool naive_set = set == CpuKernels::naive;
            for (bool special : {true, false}) {
                const std::vector<float> x = test::non_finite_logits(k, special);
                std::vector<float> loss = nan_filled<float>(1), lse = nan_filled<float>(n), dx(size_t(n * c), 0.0f);
                if (naive_set) {
                    naive::cross_entropy_fwd<float>(n, c, loss.data(), lse.data(), x.data(), labels.data(), k.eps);
                    naive::cross_entropy_bwd<float>(n, c, dx.data(), dloss.data(), x.data(), lse.data(), labels.data(),
                                                    k.eps);
                } else {
                    omp::cross_entropy_fwd(n, c, loss.data(), lse.data(), x.data(), labels.data(), k.eps);
                    omp::cross_entropy_bwd(n, c, dx.data(), dloss.data(), x.data(), lse.data(), labels.data(), k.eps);
                }
                if (special) {
                    const std::string wrong = test::check_non_finite(k, x, loss[0], lse, dx);
                    INFO(wrong);
                    REQUIRE(wrong.empty());
                } else {  // the same batch without the special value: all finite, the +-1e4 row included
                    REQUIRE(std::isfinite(loss[0]));
                    REQUIRE(all_finite(Tensor::from_vector(lse, {n})));
                    REQUIRE(all_finite(Tensor::from_vector(dx, {n, c})));
                }
            }
        }
    }
}

TEST_CASE("huge logits give finite softmax and cross_entropy", "[loss][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        Tensor x = make({1e4, -1e4, 0, -1e4, 1e4, 5e3}, {2, 3}, DType::float32).requires_grad_();
        const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 0}, {2});
        Tensor loss = cross_entropy(x, labels);
        REQUIRE(std::isfinite(loss.item()));
        REQUIRE(loss.item() == Approx(2e4).epsilon(1e-6));  // each row: lse = 1e4, x[label] = -1e4
        loss.backward();
        REQUIRE(all_finite(x.grad()));
        REQUIRE_THAT(values(x.grad()), AllClose(std::vector<double>{0.5, -0.5, 0, -0.5, 0.5, 0}).atol(1e-6));
        REQUIRE(std::isfinite(cross_entropy(x, labels, 0.2).item()));
        REQUIRE_THAT(values(softmax(x)), AllClose(std::vector<double>{1, 0, 0, 0, 1, 0}).atol(1e-6));
        const std::vector<double> ls = values(log_softmax(x));
        REQUIRE_THAT(ls, AllClose(std::vector<double>{0, -2e4, -1e4, -2e4, 0, -5e3}).rtol(1e-6));
    }
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("softmax and log_softmax: gradcheck along every dim", "[loss][gradcheck]") {
    manual_seed(51);
    const Tensor x = (Tensor::randn({3, 4, 5}, DType::float64) * 2.0).requires_grad_();
    for (Which w : {Which::softmax, Which::log_softmax}) {
        for (int64_t dim : {0, 1, 2, -1}) {
            INFO(name(w) << " dim " << dim);
            const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return run(w, in[0], dim); }, {x});
            INFO(r.report);
            REQUIRE(r.ok);
        }
    }
}

TEST_CASE("cross_entropy: gradcheck with and without label smoothing", "[loss][gradcheck]") {
    manual_seed(52);
    const Tensor x = (Tensor::randn({5, 7}, DType::float64) * 2.0).requires_grad_();
    const Tensor labels = random_labels(5, 7, 3);
    for (double eps : {0.0, 0.25, 1.0}) {
        INFO("smoothing " << eps);
        const GradcheckResult r =
            gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], labels, eps); }, {x});
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

TEST_CASE("cross_entropy equals -mean(sum(q * log_softmax)) from existing ops", "[loss][gradcheck]") {
    manual_seed(53);
    const Tensor x0 = Tensor::randn({9, 6}, DType::float64) * 3.0;
    const Tensor labels = random_labels(9, 6, 5);
    for (double eps : {0.0, 0.1, 0.6}) {
        INFO("smoothing " << eps);
        Tensor a = x0.clone().requires_grad_(), b = x0.clone().requires_grad_();
        const Tensor fused = cross_entropy(a, labels, eps), composite = composite_cross_entropy(b, labels, eps);
        REQUIRE_THAT(values(fused), AllClose(values(composite)).rtol(1e-13));
        fused.backward();
        composite.backward();
        REQUIRE_THAT(values(a.grad()), AllClose(values(b.grad())).rtol(1e-12).atol(1e-15));
    }
    // The same in float32 with the omp kernels: only float rounding apart.
    CpuKernelsGuard guard(CpuKernels::omp);
    const Tensor xf = x0.to(DType::float32);
    REQUIRE(cross_entropy(xf, labels, 0.1).item() ==
            Approx(composite_cross_entropy(xf, labels, 0.1).item()).epsilon(1e-6));
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("cross_entropy argument errors name the op and the values", "[loss][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({4, 5});
    const Tensor labels = Tensor::from_vector(std::vector<int32_t>{0, 4, 5, 1}, {4});
    try {
        (void)cross_entropy(x, labels);
        FAIL("no exception");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        REQUIRE(std::regex_search(msg, std::regex(R"(^[a-z_]+\.cpp:[0-9]+: cross_entropy: )")));
        REQUIRE_THAT(msg, Contains("label 5") && Contains("index 2") && Contains("5 classes"));
    }
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector(std::vector<int32_t>{0, 0, 0, -1}, {4})),
                        Contains("label -1") && Contains("index 3"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4})),
                        Contains("cross_entropy") && Contains("int32 or int64") && Contains("float32"));
    // int64 labels are checked the same way, with their full value (beyond int32 too).
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector(std::vector<int64_t>{0, 4, 5, 1}, {4})),
                        Contains("label 5") && Contains("index 2") && Contains("5 classes"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector(std::vector<int64_t>{0, int64_t(1) << 32, 0, 1}, {4})),
                        Contains("label 4294967296") && Contains("index 1"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}, DType::uint8)), Contains("uint8"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({3}, DType::int32)),
                        Contains("(4, 5)") && Contains("(3)") && Contains("N"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({20}), Tensor::zeros({4}, DType::int32)),
                        Contains("(N, C)") && Contains("(20)"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4, 1}, DType::int32)), Contains("(4, 1)"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({4, 5}, DType::int32), Tensor::zeros({4}, DType::int32)),
                        Contains("logits") && Contains("int32"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({0, 5}), Tensor::zeros({0}, DType::int32)),
                        Contains("empty batch"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({4, 0}), Tensor::zeros({4}, DType::int32)), Contains("no classes"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}, DType::int32), 1.5),
                        Contains("label_smoothing") && Contains("1.5"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}, DType::int32), -0.1), Contains("label_smoothing"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor(), labels), Contains("cross_entropy") && Contains("undefined"));
}

TEST_CASE("softmax argument errors name the op", "[loss][errors]") {
    using Catch::Contains;
    REQUIRE_THROWS_WITH(softmax(Tensor::zeros({2, 3}), 2), Contains("softmax") && Contains("dim 2"));
    REQUIRE_THROWS_WITH(log_softmax(Tensor::zeros({2, 3}), -3), Contains("log_softmax") && Contains("-3"));
    REQUIRE_THROWS_WITH(softmax(Tensor::zeros({2}, DType::int32)), Contains("softmax") && Contains("int32"));
    REQUIRE_THROWS_WITH(log_softmax(Tensor()), Contains("undefined"));
}
