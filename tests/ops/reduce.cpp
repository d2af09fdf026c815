// sum, mean, max, argmax, min and argmin on every kernel set against the naive reference: the frontend
// over every dim set of the shared shapes in every layout (with gradients through autograd), the tie,
// NaN, infinity and signed-zero conventions, empty dims, and the kernels directly on crafted data (ties,
// NaN, infinities, signed zeros) at shapes that reach every path of every set, with outputs that start
// as NaN (indices as -1), the accumulate contract of the backward kernels and run-to-run determinism.
//
// max, argmax, min, argmin and every backward are exact: they select an element or add the same float
// terms as naive. Sums add in float (omp: lanes and chunks; cuda: a tree) where naive adds in double:
// tol::sum. Known values, the thread-count determinism of omp, float64 gradient checks and errors:
// tests/kernels/test_reduce.cpp.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/reduce.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/reduce_cases.h"
#include "support/shapes.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::Layout;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

std::vector<int32_t> indices(const Tensor& t) {
    REQUIRE(t.dtype() == DType::int32);
    return t.to(Device::cpu()).contiguous().to_vector<int32_t>();
}

std::string rs_str(const ReduceShape& s) {
    return "(" + std::to_string(s.outer) + ", " + std::to_string(s.reduce) + ", " + std::to_string(s.inner) + ")";
}

// The flat position in x of reduced element r of output j.
size_t at(const ReduceShape& s, size_t j, int32_t r) {
    return size_t((int64_t(j) / s.inner * s.reduce + r) * s.inner + int64_t(j) % s.inner);
}

}  // namespace

DYAD_KERNEL_TEST("sum, mean, max, argmax, min and argmin equal naive on the shared shapes, every layout", "[reduce]") {
    uint64_t seed = 100;
    int num_cases = 0;
    for (const Shape& shape : test::unary_shapes()) {
        const int64_t nd = int64_t(shape.size());
        const std::vector<std::vector<int64_t>> dim_sets = test::reduce_dim_sets(nd);
        for (Layout layout : test::kLayouts) {
            const Tensor x = test::random_tensor(shape, seed++, layout);
            const Tensor xs = test::same_layout_on(x, layout, ks.device);
            REQUIRE(xs.strides() == x.strides());
            for (size_t s = 0; s <= dim_sets.size(); s++) {
                const bool over_all = s == dim_sets.size();
                const std::vector<int64_t> dims = over_all ? std::vector<int64_t>{} : dim_sets[s];
                const bool keepdim = s % 2 == 1;
                INFO("shape " << shape_str(shape) << " " << test::layout_name(layout) << " dims "
                              << (over_all ? std::string("all") : shape_str(dims)) << " keepdim " << keepdim);
                num_cases++;

                struct Results {
                    Tensor sum, mean, max, min, sum_grad, mean_grad, max_grad, min_grad, argmax, argmin;
                };
                auto run = [&](const Tensor& x0, const Tensor& dy0) {
                    Results r;
                    Tensor xr = x0.detach().requires_grad_();
                    r.sum = over_all ? sum(xr) : sum(xr, dims, keepdim);
                    r.mean = over_all ? mean(xr) : mean(xr, dims, keepdim);
                    r.max = over_all ? max(xr) : max(xr, dims, keepdim);
                    r.min = over_all ? min(xr) : min(xr, dims, keepdim);
                    r.sum.backward(dy0);
                    r.sum_grad = xr.grad();
                    xr.zero_grad();
                    r.mean.backward(dy0);
                    r.mean_grad = xr.grad();
                    xr.zero_grad();
                    r.max.backward(dy0);
                    r.max_grad = xr.grad();
                    xr.zero_grad();
                    r.min.backward(dy0);
                    r.min_grad = xr.grad();
                    if (over_all) {
                        r.argmax = argmax(x0);
                        r.argmin = argmin(x0);
                    } else if (dims.size() == 1) {
                        r.argmax = argmax(x0, dims[0], keepdim);
                        r.argmin = argmin(x0, dims[0], keepdim);
                    }
                    return r;
                };
                const Tensor dy = test::random_tensor((over_all ? sum(x) : sum(x, dims, keepdim)).shape(), seed++);
                const Results e = test::naive_reference([&] { return run(x, dy); });
                const Results a = run(xs, test::on(ks, dy));
                REQUIRE(a.sum.device() == ks.device);
                // The length of each sum: the tolerance's random walk.
                const double n = double(x.numel()) / double(std::max<int64_t>(1, e.sum.numel()));
                test::require_close(e.sum, a.sum, test::tol::sum(ks, n));
                test::require_close(e.mean, a.mean, test::tol::sum(ks, n));
                test::require_close(e.max, a.max, test::tol::exact(ks));
                test::require_close(e.min, a.min, test::tol::exact(ks));
                // The backward kernels compute the same float expressions as naive: exact.
                test::require_close(e.sum_grad, a.sum_grad, test::tol::exact(ks));
                test::require_close(e.mean_grad, a.mean_grad, test::tol::exact(ks));
                test::require_close(e.max_grad, a.max_grad, test::tol::exact(ks));
                test::require_close(e.min_grad, a.min_grad, test::tol::exact(ks));
                REQUIRE(a.argmax.defined() == e.argmax.defined());
                REQUIRE(a.argmin.defined() == e.argmin.defined());
                if (e.argmax.defined()) {
                    test::require_close(e.argmax, a.argmax, test::tol::exact(ks));
                    test::require_close(e.argmin, a.argmin, test::tol::exact(ks));
                }
            }
        }
    }
    REQUIRE(num_cases == 162);  // 54 (shape, dims) pairs in 3 layouts
}

DYAD_KERNEL_TEST("max and argmax equal naive on ties, NaN, infinities and signed zeros", "[reduce]") {
    const Tensor ties = Tensor::from_vector(std::vector<float>{1, 3, 3, 2, 5, 5, 5, 5}, {2, 4});
    const Tensor nans = Tensor::from_vector(std::vector<float>{1, 2, kNaN, 4, 5, kNaN}, {3, 2});
    const Tensor flat_nan = Tensor::from_vector(std::vector<float>{1, kNaN, 7, kNaN}, {4});
    const Tensor infs = Tensor::from_vector(std::vector<float>{-kInf, -kInf, -kInf}, {3});
    const Tensor zeros = Tensor::from_vector(std::vector<float>{-0.0f, 0.0f, -1.0f}, {3});
    for (const Tensor& x : {ties, nans, flat_nan, infs, zeros}) {
        INFO(x.str());
        const Tensor xs = test::on(ks, x);
        // max selects an element: NaN payloads and the sign of zero come through byte for byte.
        test::require_close(test::naive_reference([&] { return max(x); }), max(xs), test::tol::exact(ks));
        test::require_close(test::naive_reference([&] { return argmax(x); }), argmax(xs), test::tol::exact(ks));
        for (int64_t d = 0; d < x.dim(); d++) {
            test::require_close(test::naive_reference([&] { return max(x, {d}); }), max(xs, {d}), test::tol::exact(ks));
            test::require_close(test::naive_reference([&] { return argmax(x, d); }), argmax(xs, d),
                                test::tol::exact(ks));
        }
    }
    REQUIRE(indices(argmax(test::on(ks, ties), 1)) == std::vector<int32_t>{1, 0});
    REQUIRE(indices(argmax(test::on(ks, nans), 0)) == std::vector<int32_t>{1, 2});
    REQUIRE(indices(argmax(test::on(ks, flat_nan))) == std::vector<int32_t>{1});
    REQUIRE(indices(argmax(test::on(ks, infs))) == std::vector<int32_t>{0});
    REQUIRE(indices(argmax(test::on(ks, zeros))) == std::vector<int32_t>{0});
    REQUIRE(std::signbit(max(test::on(ks, zeros)).item()));
    // The gradient goes to the first maximum only.
    Tensor r = test::on(ks, ties).requires_grad_();
    max(r, {1}).backward(test::on(ks, Tensor::from_vector(std::vector<float>{10, 20}, {2})));
    REQUIRE(test::values(r.grad()) == std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0});
}

DYAD_KERNEL_TEST("min and argmin equal naive on ties, NaN, infinities and signed zeros", "[reduce]") {
    const Tensor ties = Tensor::from_vector(std::vector<float>{3, 1, 1, 2, 5, 5, 5, 5}, {2, 4});
    const Tensor nans = Tensor::from_vector(std::vector<float>{1, 2, kNaN, 4, 5, kNaN}, {3, 2});
    const Tensor infs = Tensor::from_vector(std::vector<float>{kInf, kInf, kInf}, {3});
    const Tensor zeros = Tensor::from_vector(std::vector<float>{0.0f, -0.0f, 1.0f}, {3});
    for (const Tensor& x : {ties, nans, infs, zeros}) {
        INFO(x.str());
        const Tensor xs = test::on(ks, x);
        test::require_close(test::naive_reference([&] { return min(x); }), min(xs), test::tol::exact(ks));
        test::require_close(test::naive_reference([&] { return argmin(x); }), argmin(xs), test::tol::exact(ks));
        for (int64_t d = 0; d < x.dim(); d++) {
            test::require_close(test::naive_reference([&] { return min(x, {d}); }), min(xs, {d}), test::tol::exact(ks));
            test::require_close(test::naive_reference([&] { return argmin(x, d); }), argmin(xs, d),
                                test::tol::exact(ks));
        }
    }
    REQUIRE(indices(argmin(test::on(ks, ties), 1)) == std::vector<int32_t>{1, 0});
    REQUIRE(indices(argmin(test::on(ks, nans), 0)) == std::vector<int32_t>{1, 2});
    REQUIRE(indices(argmin(test::on(ks, zeros))) == std::vector<int32_t>{0});
    REQUIRE_FALSE(std::signbit(min(test::on(ks, zeros)).item()));
    Tensor r = test::on(ks, ties).requires_grad_();
    min(r, {1}).backward(test::on(ks, Tensor::from_vector(std::vector<float>{10, 20}, {2})));
    REQUIRE(test::values(r.grad()) == std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0});
}

DYAD_KERNEL_TEST("sums over empty dims are 0 and empty results stay empty", "[reduce]") {
    const Tensor e = Tensor::ones({2, 0}, DType::float32, ks.device);
    const Tensor y = sum(e, {1});
    REQUIRE(y.device() == ks.device);
    REQUIRE(y.shape() == Shape{2});
    REQUIRE(test::values(y) == std::vector<double>{0, 0});
    REQUIRE(sum(Tensor::zeros({0}, DType::float32, ks.device)).item() == 0);
    REQUIRE(sum(Tensor::zeros({3, 0}, DType::float32, ks.device), {0}).shape() == Shape{0});
    REQUIRE(max(Tensor::zeros({0, 3}, DType::float32, ks.device), {1}).shape() == Shape{0});
    REQUIRE(sum(Tensor::full({}, 2.5, DType::float32, ks.device)).item() == 2.5);
    REQUIRE(max(Tensor::full({}, -1.5, DType::float32, ks.device)).item() == -1.5);
}

// The kernels directly. Outputs start as NaN (indices as -1): an element a kernel does not write cannot
// pass. The backward kernels accumulate, so their dx starts with values.
DYAD_KERNEL_TEST("reduce kernels equal naive on crafted data", "[reduce]") {
    std::mt19937 gen(7);
    for (const ReduceShape& s : test::crafted_reduce_shapes()) {
        const int64_t n = s.outer * s.reduce * s.inner, m = s.outer * s.inner;
        for (test::ReduceData kind : test::kReduceData) {
            INFO("shape " << rs_str(s) << " data " << test::reduce_data_name(kind));
            std::normal_distribution<float> normal;
            const std::vector<float> x = test::crafted_reduce_data(kind, size_t(n), gen, normal);
            const std::vector<int32_t> unwritten(size_t(m), test::kUnwrittenIndex);
            const Tensor xs = test::buffer(ks, x);

            // max_fwd, with values and indices and with indices only (argmax).
            std::vector<float> y_naive = test::nan_filled<float>(m);
            std::vector<int32_t> i_naive = unwritten;
            naive::max_fwd<float>(y_naive.data(), i_naive.data(), x.data(), s);
            const Tensor ys = test::nan_buffer(ks, m);
            const Tensor is = test::buffer_i32(ks, unwritten), is_only = test::buffer_i32(ks, unwritten);
            DYAD_KCALL(ks, max_fwd, test::ptr(ys), test::ptr<int32_t>(is), test::ptr(xs), s);
            DYAD_KCALL(ks, max_fwd, nullptr, test::ptr<int32_t>(is_only), test::ptr(xs), s);
            test::require_close(y_naive, test::host(ys), test::tol::exact(ks));
            REQUIRE(test::host_i32(is) == i_naive);
            REQUIRE(test::host_i32(is_only) == i_naive);
            // Every index is written (in [0, reduce)); a maximum is NaN only where its index points at a NaN.
            int64_t bad = 0;
            for (size_t j = 0; j < size_t(m); j++) {
                const int32_t r = i_naive[j];
                if (r < 0 || r >= s.reduce) {
                    bad++;
                    continue;
                }
                bad += std::isnan(y_naive[j]) != std::isnan(x[at(s, j, r)]);
            }
            REQUIRE(bad == 0);

            // min_fwd: the same checks, and each index points at the minimum (or at a NaN).
            std::vector<float> mn_naive = test::nan_filled<float>(m);
            std::vector<int32_t> j_naive = unwritten;
            naive::min_fwd<float>(mn_naive.data(), j_naive.data(), x.data(), s);
            const Tensor mns = test::nan_buffer(ks, m);
            const Tensor js = test::buffer_i32(ks, unwritten), js_only = test::buffer_i32(ks, unwritten);
            DYAD_KCALL(ks, min_fwd, test::ptr(mns), test::ptr<int32_t>(js), test::ptr(xs), s);
            DYAD_KCALL(ks, min_fwd, nullptr, test::ptr<int32_t>(js_only), test::ptr(xs), s);
            test::require_close(mn_naive, test::host(mns), test::tol::exact(ks));
            REQUIRE(test::host_i32(js) == j_naive);
            REQUIRE(test::host_i32(js_only) == j_naive);
            for (size_t j = 0; j < size_t(m); j++) {
                const int32_t r = j_naive[j];
                if (r < 0 || r >= s.reduce) {
                    bad++;
                    continue;
                }
                // The value at the index, bit for bit.
                bad += std::memcmp(&mn_naive[j], &x[at(s, j, r)], sizeof(float)) != 0;
                bad += !std::isnan(mn_naive[j]) && mn_naive[j] > y_naive[j];
            }
            REQUIRE(bad == 0);

            // max_bwd (with the set's own indices) then sum_bwd, into a dx that already holds values.
            std::vector<float> dy(static_cast<size_t>(m)), dx0(static_cast<size_t>(n));
            for (auto& v : dy) v = normal(gen);
            for (auto& v : dx0) v = normal(gen);
            // What the two backward kernels must add to the values dx starts with.
            std::vector<double> expect(dx0.begin(), dx0.end());
            for (int64_t o = 0; o < s.outer; o++)
                for (int64_t i = 0; i < s.inner; i++) {
                    const size_t j = size_t(o * s.inner + i);
                    expect[size_t((o * s.reduce + i_naive[j]) * s.inner + i)] += double(dy[j]);
                    for (int64_t r = 0; r < s.reduce; r++)
                        expect[size_t((o * s.reduce + r) * s.inner + i)] += 0.25 * double(dy[j]);
                }
            std::vector<float> dx_naive = dx0;
            const Tensor dys = test::buffer(ks, dy), dxs = test::buffer(ks, dx0);
            naive::max_bwd<float>(dx_naive.data(), dy.data(), i_naive.data(), s);
            DYAD_KCALL(ks, max_bwd, test::ptr(dxs), test::ptr(dys), test::ptr<int32_t>(is), s);
            test::require_close(dx_naive, test::host(dxs), test::tol::exact(ks));
            naive::sum_bwd<float>(dx_naive.data(), dy.data(), s, 0.25f);
            DYAD_KCALL(ks, sum_bwd, test::ptr(dxs), test::ptr(dys), s, 0.25f);
            const std::vector<float> dx = test::host(dxs);
            test::require_close(dx_naive, dx, test::tol::exact(ks));
            test::require_close(expect, std::vector<double>(dx.begin(), dx.end()), test::tol::few_ulp(ks));

            if (kind != test::ReduceData::normal && kind != test::ReduceData::ties) continue;
            y_naive = test::nan_filled<float>(m);
            naive::sum_fwd<float>(y_naive.data(), x.data(), s, 0.5f);
            REQUIRE(test::count_nan(y_naive) == 0);
            const Tensor ss = test::nan_buffer(ks, m);
            DYAD_KCALL(ks, sum_fwd, test::ptr(ss), test::ptr(xs), s, 0.5f);
            test::require_close(y_naive, test::host(ss), test::tol::sum(ks, double(s.reduce)));
        }
    }
}

DYAD_KERNEL_TEST("sum_fwd over an empty reduce dim writes scaled zeros", "[reduce]") {
    const ReduceShape s{3, 0, 2};
    std::vector<float> y_naive(6, 5.0f);
    const float x0 = 0;  // never read
    naive::sum_fwd<float>(y_naive.data(), &x0, s, 0.5f);
    const Tensor ys = test::buffer(ks, std::vector<float>(6, 5.0f)), xs = test::buffer(ks, {0.0f});
    DYAD_KCALL(ks, sum_fwd, test::ptr(ys), test::ptr(xs), s, 0.5f);
    REQUIRE(test::values(ys) == std::vector<double>(6, 0.0));
    test::require_close(y_naive, test::host(ys), test::tol::exact(ks));
}

DYAD_KERNEL_TEST("sums give the same bits from run to run", "[reduce]") {
    // Splits depend on the shape only and every combine happens in a fixed order.
    for (const ReduceShape& s : test::split_sum_shapes()) {
        INFO("shape " << rs_str(s));
        const Tensor xs = test::on(ks, test::random_tensor({s.outer * s.reduce * s.inner}, 11));
        const Tensor y1 = test::nan_buffer(ks, s.outer * s.inner), y2 = test::nan_buffer(ks, s.outer * s.inner);
        DYAD_KCALL(ks, sum_fwd, test::ptr(y1), test::ptr(xs), s, 1.0f);
        DYAD_KCALL(ks, sum_fwd, test::ptr(y2), test::ptr(xs), s, 1.0f);
        REQUIRE(test::count_nan(test::host(y1)) == 0);
        REQUIRE(test::same_bits(test::host(y1), test::host(y2)));
    }
}
