// Softmax, log-softmax and cross-entropy on every kernel set against the naive reference, on the case
// lists of support/loss_cases.h: softmax along every dim of 3-D shapes (rows along the last dim and strided
// columns) and of a non-contiguous view, forward and backward through autograd (the backward also against
// the float64 gradient each set's own forward output implies); cross-entropy for C = 1, 7, 200 and odd N
// with and without label smoothing, of non-contiguous logits, with int64 labels (the int32 results bit for
// bit); the kernels called directly into outputs that start as NaN and the accumulate contract of the
// *_bwd kernels; inf and NaN logits; huge logits. The naive reference is held to the same checks where
// they apply to it. Known values in float64, gradient checks and errors: tests/kernels/test_loss.cpp; a
// bad label found on the GPU: tests/cuda/test_loss.cpp.
//
// Tolerances (support/tolerances.h): the sets work in float (x - max rounds, so exp(x - max) carries a
// relative error up to about |x - max| * 6e-8, |x - max| up to ~25 here) with their own exp within 2 ulp
// and float row sums; naive works in double from the same float inputs. Cross-entropy gradients are
// dloss / N * (p - q): their absolute error scales with 1 / N, and so does their atol.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/loss.h"
#include "support/compare.h"
#include "support/kernel_sets.h"
#include "support/loss_cases.h"
#include "support/random.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::count_nan;
using test::nan_filled;
using test::random_labels;
using test::values;

namespace {

enum class Which { softmax, log_softmax };
Tensor run(Which w, const Tensor& x, int64_t dim) {
    return w == Which::softmax ? softmax(x, dim) : log_softmax(x, dim);
}
const char* name(Which w) { return w == Which::softmax ? "softmax" : "log_softmax"; }

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// What a *_bwd kernel that accumulates must leave in a buffer that held `before`: before plus `fresh`
// (the same kernel run into zeros), added in double.
std::vector<double> plus(const std::vector<float>& before, const std::vector<float>& fresh) {
    std::vector<double> r(before.size());
    for (size_t i = 0; i < r.size(); i++) r[i] = double(before[i]) + double(fresh[i]);
    return r;
}

// ---------------------------------------------------------------------------- frontend
// Output and input gradient (the backward of sum(dy * y)) of softmax or log_softmax along dim, for x (a
// leaf view of x's layout) on its device.
struct SoftmaxResults {
    Tensor y, dx;
};
SoftmaxResults softmax_and_grad(Which w, const Tensor& x, int64_t dim, const Tensor& dy) {
    Tensor xl = x.detach().requires_grad_();
    Tensor y = run(w, xl, dim);
    y.backward(dy);
    return {y, xl.grad()};
}

// The gradient that an output y implies for upstream gradient dy, in float64.
std::vector<double> implied_gradient(Which w, const Tensor& y, const Tensor& dy, int64_t dim) {
    NoGradGuard ng;
    const Tensor y64 = y.detach().to(Device::cpu()).to(DType::float64), dy64 = dy.to(DType::float64);
    return values(w == Which::softmax ? mul(y64, sub(dy64, sum(mul(dy64, y64), {dim}, true)))
                                      : sub(dy64, mul(exp(y64), sum(dy64, {dim}, true))));
}

// softmax or log_softmax along dim of x (on the CPU; xs: the same values and layout on the set's device)
// against naive, forward and backward. Each backward is also compared with the gradient its own forward
// output implies (in float64): that comparison leaves out the forward's rounding, which the backward
// multiplies by a row sum of dy (up to about 14 for rows of 200).
void require_softmax_parity(const test::KernelSet& ks, Which w, const Tensor& x, const Tensor& xs, int64_t dim,
                            const Tensor& dy) {
    const SoftmaxResults expected = test::naive_reference([&] { return softmax_and_grad(w, x, dim, dy); });
    const SoftmaxResults actual = softmax_and_grad(w, xs, dim, test::on(ks, dy));
    REQUIRE(actual.y.device() == ks.device);
    REQUIRE(actual.dx.device() == ks.device);
    test::require_close(expected.y, actual.y, test::tol::softmax(ks));
    test::require_close(expected.dx, actual.dx, test::tol::softmax_grad(ks));
    for (const SoftmaxResults* r : {&expected, &actual}) {
        INFO("backward of " << (r == &expected ? "naive" : ks.name) << " against its forward's gradient");
        test::require_close(implied_gradient(w, r->y, dy, dim), values(r->dx), test::tol::softmax(ks));
    }
}

// Loss and logits gradient (incoming gradient dloss) of cross_entropy for logits and labels on one device.
struct LossResults {
    Tensor loss, dx;
};
LossResults cross_entropy_and_grad(const Tensor& x, const Tensor& labels, double eps, double dloss) {
    Tensor xl = x.detach().requires_grad_();
    Tensor loss = cross_entropy(xl, labels, eps);
    loss.backward(test::make({dloss}, {}, x.dtype()).to(x.device()));
    return {loss, xl.grad()};
}

// cross_entropy of x and labels (on the CPU) on the set against naive: loss and gradient.
void require_cross_entropy_parity(const test::KernelSet& ks, const Tensor& x, const Tensor& xs, const Tensor& labels,
                                  double eps) {
    const int64_t n = x.size(0);
    const LossResults expected = test::naive_reference([&] { return cross_entropy_and_grad(x, labels, eps, 0.5); });
    const LossResults actual = cross_entropy_and_grad(xs, test::on(ks, labels), eps, 0.5);
    REQUIRE(actual.loss.device() == ks.device);
    test::require_close(expected.loss, actual.loss, test::tol::cross_entropy_loss(ks));
    test::require_close(expected.dx, actual.dx, test::tol::cross_entropy_grad(ks, n));
}

// ---------------------------------------------------------------------------- kernels
// (outer, reduce, inner) of a shape around dim.
ReduceShape along(const Shape& shape, int64_t dim) {
    ReduceShape s;
    for (size_t k = 0; k < shape.size(); k++) {
        const int64_t d = int64_t(k);
        (d < dim ? s.outer : d == dim ? s.reduce : s.inner) *= shape[k];
    }
    return s;
}

void softmax_fwd_naive(Which w, const ReduceShape& s, float* y, const float* x) {
    if (w == Which::softmax)
        naive::softmax_fwd<float>(s, y, x);
    else
        naive::log_softmax_fwd<float>(s, y, x);
}
void softmax_bwd_naive(Which w, const ReduceShape& s, float* dx, const float* dy, const float* y) {
    if (w == Which::softmax)
        naive::softmax_bwd<float>(s, dx, dy, y);
    else
        naive::log_softmax_bwd<float>(s, dx, dy, y);
}
void softmax_fwd_on(const test::KernelSet& ks, Which w, const ReduceShape& s, const Tensor& y, const Tensor& x) {
    if (w == Which::softmax)
        DYAD_KCALL(ks, softmax_fwd, s, test::ptr(y), test::ptr(x));
    else
        DYAD_KCALL(ks, log_softmax_fwd, s, test::ptr(y), test::ptr(x));
}
void softmax_bwd_on(const test::KernelSet& ks, Which w, const ReduceShape& s, const Tensor& dx, const Tensor& dy,
                    const Tensor& y) {
    if (w == Which::softmax)
        DYAD_KCALL(ks, softmax_bwd, s, test::ptr(dx), test::ptr(dy), test::ptr(y));
    else
        DYAD_KCALL(ks, log_softmax_bwd, s, test::ptr(dx), test::ptr(dy), test::ptr(y));
}

// The softmax or log_softmax kernels of the set on x of shape s against naive's: the forward into an
// output that starts as NaN; the backward (on naive's output) into initial values dx0, into zeros, and
// with dy = 0 into ones, which must stay exactly ones.
void require_softmax_kernels(const test::KernelSet& ks, Which w, const ReduceShape& s, const std::vector<float>& x,
                             const std::vector<float>& dy, const std::vector<float>& dx0) {
    const int64_t numel = s.outer * s.reduce * s.inner;
    std::vector<float> y_ref = nan_filled<float>(numel);
    softmax_fwd_naive(w, s, y_ref.data(), x.data());
    REQUIRE(count_nan(y_ref) == 0);
    const Tensor xs = test::buffer(ks, x), ys = test::nan_buffer(ks, numel);
    softmax_fwd_on(ks, w, s, ys, xs);
    const std::vector<float> y = test::host(ys);
    REQUIRE(count_nan(y) == 0);
    test::require_close(y_ref, y, test::tol::softmax(ks));

    const std::vector<float> zeros(size_t(numel), 0.0f), ones(size_t(numel), 1.0f);
    std::vector<float> acc_ref = dx0, fresh_ref = zeros, ones_ref = ones;
    softmax_bwd_naive(w, s, acc_ref.data(), dy.data(), y_ref.data());
    softmax_bwd_naive(w, s, fresh_ref.data(), dy.data(), y_ref.data());
    softmax_bwd_naive(w, s, ones_ref.data(), zeros.data(), y_ref.data());
    const Tensor yrs = test::buffer(ks, y_ref), dys = test::buffer(ks, dy), zs = test::buffer(ks, zeros);
    const Tensor accs = test::buffer(ks, dx0), freshs = test::buffer(ks, zeros), oness = test::buffer(ks, ones);
    softmax_bwd_on(ks, w, s, accs, dys, yrs);
    softmax_bwd_on(ks, w, s, freshs, dys, yrs);
    softmax_bwd_on(ks, w, s, oness, zs, yrs);
    {
        INFO("naive");
        test::require_close(plus(dx0, fresh_ref), as_double(acc_ref), test::tol::few_ulp(ks));
        REQUIRE(ones_ref == ones);  // dy = 0 adds nothing
    }
    test::require_close(plus(dx0, test::host(freshs)), as_double(test::host(accs)), test::tol::few_ulp(ks));
    REQUIRE(test::host(oness) == ones);
}

Tensor buffer_i64(const test::KernelSet& ks, const std::vector<int64_t>& v) {
    return Tensor::from_vector(v, {int64_t(v.size())}).to(ks.device);
}

// The cross-entropy kernels on raw buffers: the forward into a loss and log-sum-exp that start as NaN, the
// backward (incoming gradient dloss) added to dx.
struct CrossEntropyOut {
    std::vector<float> loss, lse, dx;
};
CrossEntropyOut cross_entropy_kernels_naive(int64_t n, int64_t c, const std::vector<float>& x,
                                            const std::vector<int32_t>& labels, float eps, float dloss,
                                            std::vector<float> dx) {
    CrossEntropyOut r{nan_filled<float>(1), nan_filled<float>(n), std::move(dx)};
    naive::cross_entropy_fwd<float>(n, c, r.loss.data(), r.lse.data(), x.data(), labels.data(), eps);
    naive::cross_entropy_bwd<float>(n, c, r.dx.data(), &dloss, x.data(), r.lse.data(), labels.data(), eps);
    return r;
}
CrossEntropyOut cross_entropy_kernels_on(const test::KernelSet& ks, int64_t n, int64_t c, const std::vector<float>& x,
                                         const std::vector<int32_t>& labels, float eps, float dloss,
                                         const std::vector<float>& dx) {
    const Tensor xs = test::buffer(ks, x), ls = test::buffer_i32(ks, labels), gs = test::buffer(ks, {dloss});
    const Tensor loss = test::nan_buffer(ks, 1), lse = test::nan_buffer(ks, n), dxs = test::buffer(ks, dx);
    DYAD_KCALL(ks, cross_entropy_fwd, n, c, test::ptr(loss), test::ptr(lse), test::ptr(xs), test::ptr<int32_t>(ls),
               eps);
    DYAD_KCALL(ks, cross_entropy_bwd, n, c, test::ptr(dxs), test::ptr(gs), test::ptr(xs), test::ptr(lse),
               test::ptr<int32_t>(ls), eps);
    return {test::host(loss), test::host(lse), test::host(dxs)};
}

}  // namespace

// ---------------------------------------------------------------------------- softmax
DYAD_KERNEL_TEST("softmax and log_softmax along every dim equal naive, forward and backward", "[loss]") {
    for (const Shape& shape : test::softmax_shapes()) {
        const Tensor x = test::random_tensor(shape, 41) * 3.0;
        const Tensor dy = test::random_tensor(shape, 42);
        const Tensor xs = test::on(ks, x);
        for (Which w : {Which::softmax, Which::log_softmax}) {
            for (int64_t dim = -1; dim < 3; dim++) {
                INFO(name(w) << " " << shape_str(shape) << " dim " << dim);
                require_softmax_parity(ks, w, x, xs, dim, dy);
            }
        }
    }
}

DYAD_KERNEL_TEST("softmax and log_softmax of non-contiguous inputs equal naive", "[loss]") {
    // The same transposed view on both devices; softmax along each of its dims.
    const Tensor base = test::random_tensor({9, 7, 33}, 60) * 3.0;
    const Tensor x = base.transpose(0, 2), xs = test::on(ks, base).transpose(0, 2);
    REQUIRE_FALSE(xs.is_contiguous());
    for (Which w : {Which::softmax, Which::log_softmax}) {
        for (int64_t dim = 0; dim < 3; dim++) {
            INFO(name(w) << " dim " << dim);
            require_softmax_parity(ks, w, x, xs, dim, test::random_tensor(x.shape(), uint64_t(61 + dim)));
        }
    }
}

DYAD_KERNEL_TEST("softmax and log_softmax kernels: outputs that start as NaN, backward kernels that accumulate",
                 "[loss]") {
    // Forward outputs start as NaN: an element a kernel does not write fails. The backward kernels add:
    // dx that starts with values must become those values plus the gradient computed into zeros (one
    // rounding), and dy = 0 must leave dx exactly as it was.
    for (const Shape& shape : test::softmax_shapes()) {
        const std::vector<float> x = (test::random_tensor(shape, 43) * 3.0).to_vector<float>();
        const std::vector<float> dy = test::random_tensor(shape, 44).to_vector<float>();
        const std::vector<float> dx0 = test::random_tensor(shape, 45).to_vector<float>();
        for (int64_t dim = 0; dim < 3; dim++) {
            for (Which w : {Which::softmax, Which::log_softmax}) {
                INFO(name(w) << " " << shape_str(shape) << " dim " << dim);
                require_softmax_kernels(ks, w, along(shape, dim), x, dy, dx0);
            }
        }
    }
    for (const ReduceShape& s : test::softmax_kernel_shapes()) {
        const int64_t n = s.outer * s.reduce * s.inner;
        const std::vector<float> x = test::random_tensor({n}, 80).to_vector<float>();
        const std::vector<float> dy = test::random_tensor({n}, 81).to_vector<float>();
        const std::vector<float> dx0 = test::random_tensor({n}, 82).to_vector<float>();
        for (Which w : {Which::softmax, Which::log_softmax}) {
            INFO(name(w) << " outer " << s.outer << " reduce " << s.reduce << " inner " << s.inner);
            require_softmax_kernels(ks, w, s, x, dy, dx0);
        }
    }
}

// ---------------------------------------------------------------------------- cross-entropy
DYAD_KERNEL_TEST("cross_entropy equals naive for C = 1, 7, 200 and odd N, with and without smoothing", "[loss]") {
    for (int64_t c : test::cross_entropy_classes()) {
        for (int64_t n : test::cross_entropy_batches()) {
            const Tensor x = test::random_tensor({n, c}, uint64_t(n * 1000 + c)) * 4.0;
            const Tensor labels = random_labels(n, c, uint64_t(n + c));
            const Tensor xs = test::on(ks, x);
            for (double eps : {0.0, 0.1}) {
                INFO("N " << n << " C " << c << " smoothing " << eps);
                require_cross_entropy_parity(ks, x, xs, labels, eps);
            }
        }
    }
}

DYAD_KERNEL_TEST("cross_entropy of non-contiguous logits equals naive", "[loss]") {
    // Logits (65, 200) viewed from memory laid out (200, 65).
    const Tensor base = test::random_tensor({200, 65}, 70) * 4.0;
    const Tensor xs = test::on(ks, base).t();
    REQUIRE_FALSE(xs.is_contiguous());
    require_cross_entropy_parity(ks, base.t(), xs, random_labels(65, 200, 71), 0.1);
}

DYAD_KERNEL_TEST("cross_entropy with int64 labels gives the int32 results bit for bit", "[loss]") {
    // The label only picks a column, so the dtype that carries it cannot change a bit of the result.
    struct Batch {
        int64_t n;
        uint64_t x_seed, label_seed;  // added to C
        double dloss;
    };
    for (const Batch& bt : {Batch{7, 0, 1, 1.0}, Batch{33, 5, 6, 0.5}}) {
        for (int64_t c : test::cross_entropy_classes()) {
            INFO("N " << bt.n << " C " << c);
            const Tensor x = test::on(ks, test::random_tensor({bt.n, c}, uint64_t(c) + bt.x_seed) * 4.0);
            const Tensor l32 = random_labels(bt.n, c, uint64_t(c) + bt.label_seed);
            const Tensor l64 = l32.to(DType::int64);
            REQUIRE(l64.dtype() == DType::int64);
            for (double eps : {0.0, 0.1}) {
                INFO("smoothing " << eps);
                const LossResults r32 = cross_entropy_and_grad(x, test::on(ks, l32), eps, bt.dloss);
                const LossResults r64 = cross_entropy_and_grad(x, test::on(ks, l64), eps, bt.dloss);
                test::require_close(r32.loss, r64.loss, test::tol::exact(ks));
                test::require_close(r32.dx, r64.dx, test::tol::exact(ks));
            }
        }
    }
    // The kernels directly, both label types.
    const std::vector<float> x = {1, 2, 3, -1, 0, 5};
    const std::vector<int64_t> labels = {2, 0};
    const Tensor xs = test::buffer(ks, x), l32 = test::buffer_i32(ks, {2, 0}), l64 = buffer_i64(ks, labels);
    const Tensor loss32 = test::nan_buffer(ks, 1), lse32 = test::nan_buffer(ks, 2);
    const Tensor loss64 = test::nan_buffer(ks, 1), lse64 = test::nan_buffer(ks, 2);
    DYAD_KCALL(ks, cross_entropy_fwd, 2, 3, test::ptr(loss32), test::ptr(lse32), test::ptr(xs), test::ptr<int32_t>(l32),
               0.0f);
    DYAD_KCALL(ks, cross_entropy_fwd, 2, 3, test::ptr(loss64), test::ptr(lse64), test::ptr(xs), test::ptr<int64_t>(l64),
               0.0f);
    test::require_close(test::host(loss32), test::host(loss64), test::tol::exact(ks));
    test::require_close(test::host(lse32), test::host(lse64), test::tol::exact(ks));
    const Tensor d32 = test::buffer(ks, std::vector<float>(6, 0.5f)),
                 d64 = test::buffer(ks, std::vector<float>(6, 0.5f));
    const Tensor one = test::buffer(ks, {1.0f});
    DYAD_KCALL(ks, cross_entropy_bwd, 2, 3, test::ptr(d32), test::ptr(one), test::ptr(xs), test::ptr(lse32),
               test::ptr<int32_t>(l32), 0.1f);
    DYAD_KCALL(ks, cross_entropy_bwd, 2, 3, test::ptr(d64), test::ptr(one), test::ptr(xs), test::ptr(lse64),
               test::ptr<int64_t>(l64), 0.1f);
    test::require_close(test::host(d32), test::host(d64), test::tol::exact(ks));
    double dloss, dlse[2];
    const std::vector<double> xd(x.begin(), x.end());
    naive::cross_entropy_fwd<double>(2, 3, &dloss, dlse, xd.data(), labels.data(), 0.0);
    REQUIRE(float(dloss) == Approx(test::host(loss64)[0]).epsilon(1e-6));  // float vs double: rounding only
}

DYAD_KERNEL_TEST("cross_entropy kernels: outputs that start as NaN, a backward that accumulates", "[loss]") {
    // The loss and the saved log-sum-exp start as NaN: an element a kernel does not write fails. The
    // backward runs on naive's log-sum-exp, into initial values and into zeros: the first must be the
    // initial values plus the second (one rounding), and the second naive's gradient.
    for (const test::CrossEntropyKernelCase& k : test::cross_entropy_kernel_cases()) {
        const int64_t n = k.n, c = k.c;
        INFO("N " << n << " C " << c << " smoothing " << k.eps << " incoming gradient " << k.dloss);
        const std::vector<float> x = (test::random_tensor({n, c}, k.x_seed) * k.x_scale).to_vector<float>();
        const std::vector<int32_t> labels = random_labels(n, c, k.label_seed).to_vector<int32_t>();
        const std::vector<float> dx0 = test::random_tensor({n, c}, k.dx_seed).to_vector<float>();
        const std::vector<float> zeros(size_t(n * c), 0.0f);

        std::vector<float> loss_ref = nan_filled<float>(1), lse_ref = nan_filled<float>(n);
        naive::cross_entropy_fwd<float>(n, c, loss_ref.data(), lse_ref.data(), x.data(), labels.data(), k.eps);
        REQUIRE(count_nan(loss_ref) + count_nan(lse_ref) == 0);
        std::vector<float> acc_ref = dx0, fresh_ref = zeros;
        for (std::vector<float>* d : {&acc_ref, &fresh_ref})
            naive::cross_entropy_bwd<float>(n, c, d->data(), &k.dloss, x.data(), lse_ref.data(), labels.data(), k.eps);
        {
            INFO("naive");
            test::require_close(plus(dx0, fresh_ref), as_double(acc_ref), test::tol::few_ulp(ks));
        }

        const Tensor xs = test::buffer(ks, x), ls = test::buffer_i32(ks, labels), gs = test::buffer(ks, {k.dloss});
        const Tensor loss = test::nan_buffer(ks, 1), lse = test::nan_buffer(ks, n);
        DYAD_KCALL(ks, cross_entropy_fwd, n, c, test::ptr(loss), test::ptr(lse), test::ptr(xs), test::ptr<int32_t>(ls),
                   k.eps);
        REQUIRE(count_nan(test::host(loss)) + count_nan(test::host(lse)) == 0);
        test::require_close(loss_ref, test::host(loss), test::tol::cross_entropy_loss(ks));
        test::require_close(lse_ref, test::host(lse), test::tol::softmax(ks));

        const Tensor lse_refs = test::buffer(ks, lse_ref);
        const Tensor acc = test::buffer(ks, dx0), fresh = test::buffer(ks, zeros);
        for (const Tensor* d : {&acc, &fresh})
            DYAD_KCALL(ks, cross_entropy_bwd, n, c, test::ptr(*d), test::ptr(gs), test::ptr(xs), test::ptr(lse_refs),
                       test::ptr<int32_t>(ls), k.eps);
        test::require_close(fresh_ref, test::host(fresh), test::tol::cross_entropy_grad(ks, n));
        test::require_close(plus(dx0, test::host(fresh)), as_double(test::host(acc)), test::tol::few_ulp(ks));
    }
}

DYAD_KERNEL_TEST("cross_entropy kernels with inf and NaN logits: the loss shows it, other rows stay finite", "[loss]") {
    // The cases and the expected value of each, and why, are in tests/support/loss_cases.h. Each case also
    // runs without its special value: then everything is finite, the +-1e4 row included.
    const int64_t n = test::kNonFiniteRows, c = test::kNonFiniteClasses;
    const std::vector<int32_t> labels = test::non_finite_labels();
    const std::vector<float> zeros(size_t(n * c), 0.0f);
    for (const test::NonFiniteLogits& k : test::non_finite_logit_cases()) {
        for (bool special : {true, false}) {
            INFO(k.name << (special ? "" : ", without the special value"));
            const std::vector<float> x = test::non_finite_logits(k, special);
            const CrossEntropyOut outs[2] = {cross_entropy_kernels_naive(n, c, x, labels, k.eps, 1.0f, zeros),
                                             cross_entropy_kernels_on(ks, n, c, x, labels, k.eps, 1.0f, zeros)};
            for (int i = 0; i < 2; i++) {
                INFO((i == 0 ? "naive" : ks.name));
                const CrossEntropyOut& o = outs[i];
                if (special) {
                    const std::string wrong = test::check_non_finite(k, x, o.loss[0], o.lse, o.dx);
                    INFO(wrong);
                    REQUIRE(wrong.empty());
                } else {
                    REQUIRE(std::isfinite(o.loss[0]));
                    REQUIRE(all_finite(Tensor::from_vector(o.lse, {n})));
                    REQUIRE(all_finite(Tensor::from_vector(o.dx, {n, c})));
                }
            }
        }
    }
}

DYAD_KERNEL_TEST("huge logits give finite softmax and cross_entropy", "[loss]") {
    // Known values: each row's log-sum-exp is its largest logit.
    auto check = [](Device device) {
        Tensor x = test::make({1e4, -1e4, 0, -1e4, 1e4, 5e3}, {2, 3}, DType::float32).to(device).requires_grad_();
        const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 0}, {2}).to(device);
        Tensor loss = cross_entropy(x, labels);
        REQUIRE(std::isfinite(loss.item()));
        REQUIRE(loss.item() == Approx(2e4).epsilon(1e-6));  // each row: lse = 1e4, x[label] = -1e4
        loss.backward();
        REQUIRE(all_finite(x.grad()));
        REQUIRE_THAT(values(x.grad()), test::AllClose(std::vector<double>{0.5, -0.5, 0, -0.5, 0.5, 0}).atol(1e-6));
        REQUIRE(std::isfinite(cross_entropy(x, labels, 0.2).item()));
        REQUIRE_THAT(values(softmax(x)), test::AllClose(std::vector<double>{1, 0, 0, 0, 1, 0}).atol(1e-6));
        REQUIRE_THAT(values(log_softmax(x)),
                     test::AllClose(std::vector<double>{0, -2e4, -1e4, -2e4, 0, -5e3}).rtol(1e-6));
        return 0;
    };
    {
        INFO("naive");
        test::naive_reference([&] { return check(Device::cpu()); });
    }
    check(ks.device);
}
