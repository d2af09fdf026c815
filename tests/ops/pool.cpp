// Pooling on every kernel set against the naive reference, on the case lists of support/pool_cases.h
// (odd, non-square shapes, every padding up to half the kernel, strides below, at and above the kernel,
// adaptive outputs larger than the input). Max pooling (plain and fused with relu) picks elements by
// naive's rules and every backward kernel adds naive's float expressions in naive's order: values,
// positions and gradients are exact on every set, with ties, NaN, -inf and signed zeros in the data. The
// average forwards differ by rounding only where a set adds in float (tol::pool_avg_fwd). Kernels are
// called directly on the set's memory: forward outputs start as NaN (positions as -1) so an element left
// unwritten fails, and backward gradients start with values the kernel must add to. Every kernel case
// runs twice: on NCHW operands and on channels_last (NHWC) ones, the same case lists and the same claims
// (positions in y's layout, each the position within its input plane). Then the frontends through
// autograd: every case, transposed inputs, and the reference CNN's shapes.
// Known values in float32 and float64, tie and padding conventions, gradient checks and errors:
// tests/kernels/test_pool.cpp.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "kernels/pool.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/kernel_sets.h"
#include "support/pool_cases.h"
#include "support/random.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AdaptiveCase;
using test::WindowCase;

namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) { return test::random_tensor({n}, seed).to_vector<float>(); }

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

std::string window_str(const Pool2dShape& s) {
    std::ostringstream os;
    os << "x (" << s.n << ", " << s.c << ", " << s.h << ", " << s.w << ") k (" << s.kh << ", " << s.kw << ") stride ("
       << s.stride_h << ", " << s.stride_w << ") pad (" << s.pad_h << ", " << s.pad_w << ") out (" << s.p << ", " << s.q
       << ")" << (s.channels_last ? " channels_last" : "");
    return os.str();
}

// Calls f(n, c, o) for every output element: image n, channel c, position o of the p x q plane.
template <typename F>
void for_each_output(const Pool2dShape& s, F f) {
    for (int64_t n = 0; n < s.n; n++)
        for (int64_t c = 0; c < s.c; c++)
            for (int64_t o = 0; o < s.p * s.q; o++) f(n, c, o);
}

// Index outputs on the set's device that start as -1: a position no kernel writes.
Tensor unwritten_indices(const test::KernelSet& ks, int64_t n) {
    return test::buffer_i32(ks, std::vector<int32_t>(static_cast<size_t>(n), test::kUnwrittenIndex));
}

// The output of f and the gradient of sum(w * f(x)) with respect to x (a leaf view of x's layout).
struct Results {
    Tensor y, dx;
};
Results forward_and_grad(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& w) {
    Tensor xl = x.detach().requires_grad_();
    Tensor y = f(xl);
    y.backward(w);
    return {y, xl.grad()};
}

// f through the frontend on the set (x_set: x on the set's device, in x's layout) against naive on the
// CPU: the output within `fwd`, the gradient exact (every pooling backward is exact on every set).
void require_frontend_parity(const test::KernelSet& ks, const std::function<Tensor(const Tensor&)>& f, const Tensor& x,
                             const Tensor& x_set, uint64_t seed, test::Tolerance fwd) {
    const Results expected = test::naive_reference([&] {
        Tensor xl = x.detach().requires_grad_();
        Tensor y = f(xl);
        y.backward(test::random_tensor(y.shape(), seed));
        return Results{y, xl.grad()};
    });
    const Results actual = forward_and_grad(f, x_set, test::on(ks, test::random_tensor(expected.y.shape(), seed)));
    REQUIRE(actual.y.device() == ks.device);
    test::require_close(expected.y, actual.y, fwd);
    test::require_close(expected.dx, actual.dx, test::tol::exact(ks));
}

}  // namespace

// ---------------------------------------------------------------------------- kernels
namespace {

void check_max_pool_kernels(const test::KernelSet& ks, bool channels_last) {
    uint64_t seed = channels_last ? 1001 : 1;
    for (const WindowCase& c : test::window_cases()) {
        for (bool specials : {false, true}) {
            Pool2dShape s = test::window_shape(c);
            s.channels_last = channels_last;
            INFO(window_str(s) << " specials " << specials);
            const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
            const std::vector<float> x = test::tied_values(nx, seed++, specials);
            std::vector<float> y0 = test::nan_filled<float>(ny);
            std::vector<int32_t> i0(static_cast<size_t>(ny), test::kUnwrittenIndex);
            naive::max_pool2d_fwd(s, y0.data(), i0.data(), x.data());
            if (!specials) REQUIRE(test::count_nan(y0) == 0);  // with specials, the scan below checks every index
            REQUIRE(std::all_of(i0.begin(), i0.end(), [](int32_t i) { return i >= 0; }));

            const Tensor xs = test::buffer(ks, x), ys = test::nan_buffer(ks, ny), is = unwritten_indices(ks, ny);
            DYAD_KCALL(ks, max_pool2d_fwd, s, test::ptr(ys), test::ptr<int32_t>(is), test::ptr(xs));
            test::require_close(y0, test::host(ys), test::tol::exact(ks));
            const std::vector<int32_t> idx = test::host_i32(is);
            REQUIRE(idx == i0);
            // The index is the first maximum (or first NaN) of its window: checked against a direct scan.
            for_each_output(s, [&](int64_t n, int64_t ch, int64_t o) {
                const int64_t i = o / s.q, j = o % s.q;
                auto xp = [&](int64_t k) { return x[size_t(s.x_at(n, ch, k))]; };
                int64_t first = -1;
                for (int64_t r = i * s.stride_h - s.pad_h; r < i * s.stride_h - s.pad_h + s.kh; r++)
                    for (int64_t q = j * s.stride_w - s.pad_w; q < j * s.stride_w - s.pad_w + s.kw; q++) {
                        if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
                        const float v = xp(r * s.w + q);
                        if (first < 0) {
                            first = r * s.w + q;
                        } else if (!std::isnan(xp(first)) && (std::isnan(v) || v > xp(first))) {
                            first = r * s.w + q;
                        }
                    }
                REQUIRE(idx[size_t(s.y_at(n, ch, o))] == first);
            });

            // Inference (no positions), plain and fused with relu: the same maxima as with positions.
            for (bool relu : {false, true}) {
                INFO("without positions, relu " << relu);
                std::vector<float> with = test::nan_filled<float>(ny), without = test::nan_filled<float>(ny);
                std::vector<int32_t> scratch(static_cast<size_t>(ny));
                const Tensor yo = test::nan_buffer(ks, ny);
                if (relu) {
                    naive::relu_max_pool2d_fwd(s, with.data(), scratch.data(), x.data());
                    naive::relu_max_pool2d_fwd<float>(s, without.data(), nullptr, x.data());
                    DYAD_KCALL(ks, relu_max_pool2d_fwd, s, test::ptr(yo), nullptr, test::ptr(xs));
                } else {
                    with = y0;
                    naive::max_pool2d_fwd<float>(s, without.data(), nullptr, x.data());
                    DYAD_KCALL(ks, max_pool2d_fwd, s, test::ptr(yo), nullptr, test::ptr(xs));
                }
                test::require_close(with, without, test::tol::exact(ks));
                test::require_close(with, test::host(yo), test::tol::exact(ks));
            }

            // Backward into a gradient that already holds values: it must add, as naive does.
            const std::vector<float> dy = random_floats(ny, seed++);
            const std::vector<float> dx_init = random_floats(nx, seed++);
            std::vector<float> dx0 = dx_init;
            naive::max_pool2d_bwd(s, dx0.data(), dy.data(), i0.data());
            const Tensor dys = test::buffer(ks, dy), dxs = test::buffer(ks, dx_init);
            DYAD_KCALL(ks, max_pool2d_bwd, s, test::ptr(dxs), test::ptr(dys), test::ptr<int32_t>(is));
            const std::vector<float> dx = test::host(dxs);
            test::require_close(dx0, dx, test::tol::exact(ks));
            std::vector<double> expect = as_double(dx_init);
            for_each_output(s, [&](int64_t n, int64_t ch, int64_t o) {
                const size_t yo = size_t(s.y_at(n, ch, o));
                expect[size_t(s.x_at(n, ch, i0[yo]))] += double(dy[yo]);
            });
            test::require_close(expect, as_double(dx), test::tol::few_ulp(ks));
        }
    }
}

}  // namespace

DYAD_KERNEL_TEST("max_pool2d kernels equal naive exactly: first maximum, ties and NaN, inference, accumulate",
                 "[pool]") {
    check_max_pool_kernels(ks, false);
}

DYAD_KERNEL_TEST("max_pool2d kernels on channels_last operands equal naive exactly: positions, inference, accumulate",
                 "[pool][channels_last]") {
    check_max_pool_kernels(ks, true);
}

// The fused relu + max pool against its definition at the kernel level: naive's fused forward equals
// naive's max pool of naive's relu (values bit for bit, positions equal), the set equals naive exactly,
// and the fused backward equals max_pool2d_bwd then relu_bwd when both start from zeros; into a gradient
// that already holds values it adds (only outputs > 0 pass their gradient). Tied data with NaN, -inf and
// -0.0.
namespace {

void check_relu_max_pool_kernels(const test::KernelSet& ks, bool channels_last) {
    uint64_t seed = channels_last ? 1050 : 50;
    int64_t neg_zero = 0, pos_zero = 0, nan = 0, passed = 0;  // what the data reached, over every case
    for (const WindowCase& c : test::window_cases()) {
        for (bool specials : {false, true}) {
            Pool2dShape s = test::window_shape(c);
            s.channels_last = channels_last;
            INFO(window_str(s) << " specials " << specials);
            const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
            const std::vector<float> x = test::signed_zero_tied_values(nx, seed++, specials);
            // The definition: relu, then max pool.
            std::vector<float> r = test::nan_filled<float>(nx), y_ref = test::nan_filled<float>(ny);
            std::vector<int32_t> i_ref(static_cast<size_t>(ny), test::kUnwrittenIndex);
            naive::relu_fwd(r.data(), x.data(), nx);
            naive::max_pool2d_fwd(s, y_ref.data(), i_ref.data(), r.data());
            // The fused kernels, outputs NaN-filled (positions -1).
            std::vector<float> y0 = test::nan_filled<float>(ny);
            std::vector<int32_t> i0(static_cast<size_t>(ny), test::kUnwrittenIndex);
            naive::relu_max_pool2d_fwd(s, y0.data(), i0.data(), x.data());
            REQUIRE(test::same_bits(y0, y_ref));
            REQUIRE(i0 == i_ref);
            if (!specials) REQUIRE(test::count_nan(y0) == 0);
            REQUIRE(std::all_of(i0.begin(), i0.end(), [](int32_t i) { return i >= 0; }));
            const Tensor xs = test::buffer(ks, x), ys = test::nan_buffer(ks, ny), is = unwritten_indices(ks, ny);
            DYAD_KCALL(ks, relu_max_pool2d_fwd, s, test::ptr(ys), test::ptr<int32_t>(is), test::ptr(xs));
            test::require_close(y0, test::host(ys), test::tol::exact(ks));
            REQUIRE(test::host_i32(is) == i0);
            // Where the output is > 0, the position is max_pool2d's own position on x.
            std::vector<float> ym = test::nan_filled<float>(ny);
            std::vector<int32_t> im(static_cast<size_t>(ny), test::kUnwrittenIndex);
            naive::max_pool2d_fwd(s, ym.data(), im.data(), x.data());
            for (size_t o = 0; o < size_t(ny); o++) {
                if (y0[o] > 0) {
                    REQUIRE(i0[o] == im[o]);
                    passed++;
                }
                neg_zero += y0[o] == 0 && std::signbit(y0[o]) ? 1 : 0;
                pos_zero += y0[o] == 0 && !std::signbit(y0[o]) ? 1 : 0;
                nan += std::isnan(y0[o]) ? 1 : 0;
            }

            // Backward from zeros: the composition's gradient, bit for bit (the set's y and positions).
            const std::vector<float> dy = random_floats(ny, seed++);
            std::vector<float> g(static_cast<size_t>(nx), 0.0f), dx_ref(static_cast<size_t>(nx), 0.0f);
            naive::max_pool2d_bwd(s, g.data(), dy.data(), i_ref.data());
            naive::relu_bwd(dx_ref.data(), g.data(), x.data(), nx);
            std::vector<float> dz0(static_cast<size_t>(nx), 0.0f);
            naive::relu_max_pool2d_bwd(s, dz0.data(), dy.data(), i0.data(), y0.data());
            REQUIRE(test::same_bits(dz0, dx_ref));
            const Tensor dys = test::buffer(ks, dy), dzs = test::buffer(ks, std::vector<float>(size_t(nx), 0.0f));
            DYAD_KCALL(ks, relu_max_pool2d_bwd, s, test::ptr(dzs), test::ptr(dys), test::ptr<int32_t>(is),
                       test::ptr(ys));
            test::require_close(dz0, test::host(dzs), test::tol::exact(ks));
            // Backward into a gradient that already holds values: it must add, as naive does.
            const std::vector<float> dx_init = random_floats(nx, seed++);
            std::vector<float> dx0 = dx_init;
            naive::relu_max_pool2d_bwd(s, dx0.data(), dy.data(), i0.data(), y0.data());
            const Tensor dxs = test::buffer(ks, dx_init);
            DYAD_KCALL(ks, relu_max_pool2d_bwd, s, test::ptr(dxs), test::ptr(dys), test::ptr<int32_t>(is),
                       test::ptr(ys));
            const std::vector<float> dx = test::host(dxs);
            test::require_close(dx0, dx, test::tol::exact(ks));
            REQUIRE(test::added_to(dx, dx_init, dz0));
        }
    }
    // The data reached every kind of output: positive (gradient passed), +0, -0 and NaN.
    REQUIRE(passed > 0);
    REQUIRE(pos_zero > 0);
    REQUIRE(neg_zero > 0);
    REQUIRE(nan > 0);
}

}  // namespace

DYAD_KERNEL_TEST("relu_max_pool2d kernels equal max pool of relu and naive exactly, signed zeros and NaN included",
                 "[pool]") {
    check_relu_max_pool_kernels(ks, false);
}

DYAD_KERNEL_TEST("relu_max_pool2d kernels on channels_last operands equal max pool of relu and naive exactly",
                 "[pool][channels_last]") {
    check_relu_max_pool_kernels(ks, true);
}

namespace {

// avg_pool2d or adaptive_avg_pool2d (the same contract) on one shape: the forward against naive in float32
// and in float64, the backward exactly, and the backward adding to what dx held.
void check_avg_pool_kernels(const test::KernelSet& ks, const Pool2dShape& s, bool adaptive, uint64_t& seed) {
    auto naive_fwd = [&](auto* y, const auto* x) {
        adaptive ? naive::adaptive_avg_pool2d_fwd(s, y, x) : naive::avg_pool2d_fwd(s, y, x);
    };
    auto naive_bwd = [&](float* dx, const float* dy) {
        adaptive ? naive::adaptive_avg_pool2d_bwd(s, dx, dy) : naive::avg_pool2d_bwd(s, dx, dy);
    };
    const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
    const std::vector<float> x = random_floats(nx, seed++);
    std::vector<float> y0 = test::nan_filled<float>(ny);
    naive_fwd(y0.data(), x.data());
    REQUIRE(test::count_nan(y0) == 0);
    const Tensor xs = test::buffer(ks, x), ys = test::nan_buffer(ks, ny);
    if (adaptive)
        DYAD_KCALL(ks, adaptive_avg_pool2d_fwd, s, test::ptr(ys), test::ptr(xs));
    else
        DYAD_KCALL(ks, avg_pool2d_fwd, s, test::ptr(ys), test::ptr(xs));
    const std::vector<float> y = test::host(ys);
    test::require_close(y0, y, test::tol::pool_avg_fwd(ks));
    // float64 naive as the reference of every set.
    std::vector<double> xd = as_double(x), yd = test::nan_filled<double>(ny);
    naive_fwd(yd.data(), xd.data());
    REQUIRE(test::count_nan(yd) == 0);
    test::require_close(yd, as_double(y), test::tol::avg_pool(ks));

    const std::vector<float> dy = random_floats(ny, seed++);
    const std::vector<float> dx_init = random_floats(nx, seed++);
    std::vector<float> dx0 = dx_init;
    naive_bwd(dx0.data(), dy.data());
    const Tensor dys = test::buffer(ks, dy), dxs = test::buffer(ks, dx_init);
    if (adaptive)
        DYAD_KCALL(ks, adaptive_avg_pool2d_bwd, s, test::ptr(dxs), test::ptr(dys));
    else
        DYAD_KCALL(ks, avg_pool2d_bwd, s, test::ptr(dxs), test::ptr(dys));
    const std::vector<float> dx = test::host(dxs);
    test::require_close(dx0, dx, test::tol::exact(ks));
    // Accumulates: the result minus the initial values is the gradient into zeros.
    std::vector<float> dz(static_cast<size_t>(nx), 0.0f);
    naive_bwd(dz.data(), dy.data());
    std::vector<double> expect = as_double(dx_init);
    for (size_t i = 0; i < expect.size(); i++) expect[i] += double(dz[i]);
    test::require_close(expect, as_double(dx), test::tol::few_ulp(ks));
}

void check_avg_pool_cases(const test::KernelSet& ks, bool channels_last) {
    uint64_t seed = channels_last ? 1100 : 100;
    for (const WindowCase& c : test::window_cases()) {
        Pool2dShape s = test::window_shape(c);
        s.channels_last = channels_last;
        INFO(window_str(s));
        check_avg_pool_kernels(ks, s, false, seed);
    }
}

void check_adaptive_avg_pool_cases(const test::KernelSet& ks, bool channels_last) {
    uint64_t seed = channels_last ? 1200 : 200;
    for (const AdaptiveCase& c : test::adaptive_cases()) {
        Pool2dShape s = test::adaptive_shape(c);
        s.channels_last = channels_last;
        INFO("x " << shape_str(c.x) << " output (" << s.p << ", " << s.q << ")"
                  << (channels_last ? " channels_last" : ""));
        check_avg_pool_kernels(ks, s, true, seed);
    }
}

}  // namespace

DYAD_KERNEL_TEST("avg_pool2d kernels equal naive, against float64 too, backward exactly, and it accumulates",
                 "[pool]") {
    check_avg_pool_cases(ks, false);
}

DYAD_KERNEL_TEST("avg_pool2d kernels on channels_last operands equal naive, against float64 too, backward exactly",
                 "[pool][channels_last]") {
    check_avg_pool_cases(ks, true);
}

DYAD_KERNEL_TEST("adaptive_avg_pool2d kernels equal naive, against float64 too, backward exactly, and it accumulates",
                 "[pool]") {
    check_adaptive_avg_pool_cases(ks, false);
}

DYAD_KERNEL_TEST("adaptive_avg_pool2d kernels on channels_last operands equal naive, float64 too, backward exactly",
                 "[pool][channels_last]") {
    check_adaptive_avg_pool_cases(ks, true);
}

// ---------------------------------------------------------------------------- frontends
DYAD_KERNEL_TEST("pooling frontends: outputs and autograd gradients equal naive on every case", "[pool]") {
    uint64_t seed = 300;
    for (const WindowCase& c : test::window_cases()) {
        INFO("x " << shape_str(c.x) << " k (" << c.k.h << ", " << c.k.w << ") stride (" << c.s.h << ", " << c.s.w
                  << ") pad (" << c.p.h << ", " << c.p.w << ")");
        // Tied values with NaN and -inf for max pooling; normal values for the average.
        const Tensor xt = Tensor::from_vector(test::tied_values(shape_numel(c.x), seed++, true), c.x);
        const Tensor xr = test::random_tensor(c.x, seed++);
        require_frontend_parity(
            ks, [&](const Tensor& t) { return max_pool2d(t, c.k, c.s, c.p); }, xt, test::on(ks, xt), seed++,
            test::tol::exact(ks));
        require_frontend_parity(
            ks, [&](const Tensor& t) { return avg_pool2d(t, c.k, c.s, c.p); }, xr, test::on(ks, xr), seed++,
            test::tol::pool_avg_fwd(ks));
    }
    for (const AdaptiveCase& c : test::adaptive_cases()) {
        INFO("adaptive x " << shape_str(c.x) << " output (" << c.out.h << ", " << c.out.w << ")");
        const Tensor x = test::random_tensor(c.x, seed++);
        require_frontend_parity(
            ks, [&](const Tensor& t) { return adaptive_avg_pool2d(t, c.out); }, x, test::on(ks, x), seed++,
            test::tol::pool_avg_fwd(ks));
    }
}

// The definition through the public API on the set: the fused op equals naive's, and max_pool2d(relu(x))
// on the same set bit for bit, values and the gradient of a weighted sum, on tied data with NaN, -inf and
// -0.0. (naive's own fused op against its pair, in float32 and float64: tests/kernels/test_pool.cpp.)
DYAD_KERNEL_TEST("relu_max_pool2d frontend equals naive and max_pool2d of relu on the set", "[pool]") {
    uint64_t seed = 700;
    for (const WindowCase& c : test::window_cases()) {
        for (bool specials : {false, true}) {
            INFO("x " << shape_str(c.x) << " k (" << c.k.h << ", " << c.k.w << ") stride (" << c.s.h << ", " << c.s.w
                      << ") pad (" << c.p.h << ", " << c.p.w << ") specials " << specials);
            const Tensor x =
                Tensor::from_vector(test::signed_zero_tied_values(shape_numel(c.x), seed++, specials), c.x);
            auto fused = [&](const Tensor& t) { return relu_max_pool2d(t, c.k, c.s, c.p); };
            auto pair = [&](const Tensor& t) { return max_pool2d(relu(t), c.k, c.s, c.p); };
            const Tensor xs = test::on(ks, x);
            require_frontend_parity(ks, fused, x, xs, seed++, test::tol::exact(ks));
            const Pool2dShape s = test::window_shape(c);
            const Tensor w = test::on(ks, test::random_tensor({s.n, s.c, s.p, s.q}, seed++));
            const Results expected = forward_and_grad(pair, xs, w);
            const Results actual = forward_and_grad(fused, xs, w);
            REQUIRE(actual.y.device() == ks.device);
            test::require_close(expected.y, actual.y, test::tol::exact(ks));
            test::require_close(expected.dx, actual.dx, test::tol::exact(ks));
        }
    }
}

DYAD_KERNEL_TEST("pooling frontends on transposed (non-contiguous) inputs equal naive", "[pool]") {
    // (3, 5, 9, 11) viewed from memory laid out (3, 5, 11, 9): the frontend packs it with contiguous().
    const Tensor x = test::random_tensor({3, 5, 9, 11}, 300, test::Layout::transposed);
    const Tensor xs = test::same_layout_on(x, test::Layout::transposed, ks.device);
    REQUIRE_FALSE(xs.is_contiguous());
    REQUIRE(xs.strides() == x.strides());
    using Fn = std::function<Tensor(const Tensor&)>;
    struct Case {
        const char* name;
        Fn f;
        Shape out;
        test::Tolerance fwd;
    };
    const Fn f_max = [](const Tensor& t) { return max_pool2d(t, {3, 2}, 2, 1); };
    const Fn f_avg = [](const Tensor& t) { return avg_pool2d(t, {3, 2}, 2, 1); };
    const Fn f_ada = [](const Tensor& t) { return adaptive_avg_pool2d(t, {4, 5}); };
    const Fn f_rmax = [](const Tensor& t) { return relu_max_pool2d(t, {3, 2}, 2, 1); };
    const Case cases[] = {
        {"max_pool2d", f_max, {3, 5, 5, 6}, test::tol::exact(ks)},
        {"avg_pool2d", f_avg, {3, 5, 5, 6}, test::tol::pool_avg_fwd(ks)},
        {"adaptive_avg_pool2d", f_ada, {3, 5, 4, 5}, test::tol::pool_avg_fwd(ks)},
        {"relu_max_pool2d", f_rmax, {3, 5, 5, 6}, test::tol::exact(ks)},
    };
    uint64_t seed = 301;
    for (const Case& c : cases) {
        INFO(c.name);
        REQUIRE(c.f(xs).shape() == c.out);
        require_frontend_parity(ks, c.f, x, xs, seed++, c.fwd);
    }
}

DYAD_KERNEL_TEST("pooling on the reference CNN's shapes equals naive", "[pool]") {
    // The 2x2/2 max pool after the first conv block (omp's vectorised path), batch 8, and the global
    // average pool of the head.
    const Tensor x1 = test::random_tensor({8, 32, 64, 64}, 500);
    const Tensor x1s = test::on(ks, x1);
    require_frontend_parity(
        ks, [](const Tensor& t) { return max_pool2d(t, 2); }, x1, x1s, 501, test::tol::exact(ks));
    require_frontend_parity(
        ks, [](const Tensor& t) { return relu_max_pool2d(t, 2); }, x1, x1s, 504, test::tol::exact(ks));
    const Tensor x2 = test::random_tensor({8, 512, 8, 8}, 502);
    require_frontend_parity(
        ks, [](const Tensor& t) { return adaptive_avg_pool2d(t, 1); }, x2, test::on(ks, x2), 503,
        test::tol::pool_avg_fwd(ks));
}
