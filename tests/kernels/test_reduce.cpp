// Reduce family (sum, mean, max, argmax, min, argmin) on the CPU kernel sets: hand-checked values and the tie
// and NaN conventions in naive and omp, omp's sums independent of the thread count, float64 gradient checks,
// and errors. Parity of every kernel set with naive: tests/ops/reduce.cpp.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/reduce.h"  // omp:: kernels, ReduceShape
#include "support/compare.h"
#include "support/random.h"
#include "support/reduce_cases.h"
#include "support/unwritten.h"

using namespace dyad;
using test::count_nan;
using test::Layout;
using test::nan_filled;
using test::same_bits;
using test::values;

namespace {

const CpuKernels kBothSets[] = {CpuKernels::naive, CpuKernels::omp};
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

Tensor arange_shaped(const Shape& shape) { return Tensor::arange(0, double(shape_numel(shape))).reshape(shape); }

std::vector<int32_t> indices(const Tensor& t) {
    REQUIRE(t.dtype() == DType::int32);
    return t.contiguous().to_vector<int32_t>();
}

// Same float bits (so NaN == NaN, and -0 != +0).
}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("sum and mean of hand-checked tensors", "[reduce][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO("kernels " << cpu_kernels_name(k));
        const Tensor x = arange_shaped({2, 3, 4});  // x[i, j, k] = 12 i + 4 j + k

        const Tensor all = sum(x);
        REQUIRE(all.shape() == Shape{});
        REQUIRE(all.item() == 276);
        REQUIRE(mean(x).item() == 11.5);

        Tensor y = sum(x, {0});  // 12 + 8 j + 2 k
        REQUIRE(y.shape() == Shape{3, 4});
        REQUIRE(values(y) == std::vector<double>{12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
        y = sum(x, {1});  // 36 i + 12 + 3 k
        REQUIRE(y.shape() == Shape{2, 4});
        REQUIRE(values(y) == std::vector<double>{12, 15, 18, 21, 48, 51, 54, 57});
        y = sum(x, {-1});  // 48 i + 16 j + 6
        REQUIRE(y.shape() == Shape{2, 3});
        REQUIRE(values(y) == std::vector<double>{6, 22, 38, 54, 70, 86});
        y = sum(x, {-1}, true);
        REQUIRE(y.shape() == Shape{2, 3, 1});
        REQUIRE(values(y) == std::vector<double>{6, 22, 38, 54, 70, 86});

        // Non-adjacent dims: 60 + 32 j.
        y = sum(x, {0, 2});
        REQUIRE(y.shape() == Shape{3});
        REQUIRE(values(y) == std::vector<double>{60, 92, 124});
        y = sum(x, {2, -3}, true);
        REQUIRE(y.shape() == Shape{1, 3, 1});
        REQUIRE(values(y) == std::vector<double>{60, 92, 124});
        y = sum(x, {1, 2}, true);
        REQUIRE(y.shape() == Shape{2, 1, 1});
        REQUIRE(values(y) == std::vector<double>{66, 210});
        y = sum(x, {0, 1, 2}, true);
        REQUIRE(y.shape() == Shape{1, 1, 1});
        REQUIRE(values(y) == std::vector<double>{276});

        y = mean(x, {0, 2});
        REQUIRE(y.shape() == Shape{3});
        REQUIRE(values(y) == std::vector<double>{7.5, 11.5, 15.5});
        y = mean(x, {-1}, true);
        REQUIRE(y.shape() == Shape{2, 3, 1});
        REQUIRE(values(y) == std::vector<double>{1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
        y = mean(x, {1});
        REQUIRE(values(y) == std::vector<double>{4, 5, 6, 7, 16, 17, 18, 19});

        // Over (N, H, W) like batch norm: x[n, c, h, w] = 8 n + 4 c + 2 h + w sums to 44 + 32 c.
        y = sum(arange_shaped({2, 2, 2, 2}), {0, 2, 3});
        REQUIRE(values(y) == std::vector<double>{44, 76});

        // One-element and empty inputs: a sum over nothing is 0.
        REQUIRE(sum(Tensor::full({}, 2.5)).item() == 2.5);
        REQUIRE(max(Tensor::full({}, -1.5)).item() == -1.5);
        const Tensor scalar = Tensor::full({}, 4.0);  // a 0-d tensor takes dim 0 or -1
        REQUIRE(sum(scalar, {0}).shape() == Shape{});
        REQUIRE(sum(scalar, {0}).item() == 4);
        REQUIRE(mean(scalar, {-1}, true).item() == 4);
        REQUIRE(max(scalar, {0}).item() == 4);
        REQUIRE(indices(argmax(scalar, -1)) == std::vector<int32_t>{0});
        REQUIRE(sum(Tensor::zeros({0})).item() == 0);
        y = sum(Tensor::ones({2, 0}), {1});
        REQUIRE(y.shape() == Shape{2});
        REQUIRE(values(y) == std::vector<double>{0, 0});
        REQUIRE(max(Tensor::zeros({0, 3}), {1}).shape() == Shape{0});
        REQUIRE(sum(Tensor::zeros({3, 0}), {0}).shape() == Shape{0});
    }
}

TEST_CASE("max and argmax of hand-checked tensors", "[reduce][naive][omp]") {
    // x[i, j, k] of shape (2, 3, 2)
    const Tensor x = Tensor::from_vector(std::vector<float>{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}, {2, 3, 2});
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO("kernels " << cpu_kernels_name(k));
        REQUIRE(max(x).shape() == Shape{});
        REQUIRE(max(x).item() == 9);
        const Tensor a = argmax(x);
        REQUIRE(a.shape() == Shape{});
        REQUIRE(indices(a) == std::vector<int32_t>{5});

        REQUIRE(values(max(x, {0})) == std::vector<double>{3, 6, 5, 3, 5, 9});
        REQUIRE(values(max(x, {1})) == std::vector<double>{5, 9, 5, 8});
        REQUIRE(values(max(x, {-1})) == std::vector<double>{3, 4, 9, 6, 5, 8});
        Tensor y = max(x, {0, 2});
        REQUIRE(y.shape() == Shape{3});
        REQUIRE(values(y) == std::vector<double>{6, 5, 9});
        y = max(x, {0, 2}, true);
        REQUIRE(y.shape() == Shape{1, 3, 1});
        REQUIRE(values(y) == std::vector<double>{6, 5, 9});
        y = max(x, {-2, -1}, true);
        REQUIRE(y.shape() == Shape{2, 1, 1});
        REQUIRE(values(y) == std::vector<double>{9, 8});

        REQUIRE(indices(argmax(x, 0)) == std::vector<int32_t>{0, 1, 1, 1, 0, 0});  // 5 vs 5: the first
        REQUIRE(indices(argmax(x, 1)) == std::vector<int32_t>{2, 2, 1, 2});        // 2, 5, 5: the first 5
        REQUIRE(indices(argmax(x, -1)) == std::vector<int32_t>{0, 0, 1, 1, 0, 1});
        REQUIRE(argmax(x, 1).shape() == Shape{2, 2});
        REQUIRE(argmax(x, 1, true).shape() == Shape{2, 1, 2});
        REQUIRE(argmax(x, -1, true).shape() == Shape{2, 3, 1});
    }
}

TEST_CASE("min and argmin of hand-checked tensors", "[reduce][naive][omp]") {
    // x[i, j, k] of shape (2, 3, 2), the same as max's test
    const Tensor x = Tensor::from_vector(std::vector<float>{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}, {2, 3, 2});
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO("kernels " << cpu_kernels_name(k));
        REQUIRE(min(x).shape() == Shape{});
        REQUIRE(min(x).item() == 1);
        REQUIRE(indices(argmin(x)) == std::vector<int32_t>{1});  // 1 at flat 1 and 3: the first

        REQUIRE(values(min(x, {0})) == std::vector<double>{2, 1, 4, 1, 5, 8});
        REQUIRE(values(min(x, {1})) == std::vector<double>{3, 1, 2, 3});
        REQUIRE(values(min(x, {-1})) == std::vector<double>{1, 1, 5, 2, 3, 5});
        Tensor y = min(x, {0, 2}, true);
        REQUIRE(y.shape() == Shape{1, 3, 1});
        REQUIRE(values(y) == std::vector<double>{1, 1, 5});
        REQUIRE(values(min(x, {-2, -1})) == std::vector<double>{1, 2});

        REQUIRE(indices(argmin(x, 0)) == std::vector<int32_t>{1, 0, 0, 0, 0, 1});  // 5 vs 5: the first
        REQUIRE(indices(argmin(x, 1)) == std::vector<int32_t>{0, 0, 0, 1});        // 1, 1, 9: the first 1
        REQUIRE(indices(argmin(x, -1)) == std::vector<int32_t>{1, 1, 0, 0, 1, 0});
        REQUIRE(argmin(x, 1, true).shape() == Shape{2, 1, 2});
        REQUIRE(min(Tensor::full({}, -1.5)).item() == -1.5);
        REQUIRE(min(Tensor::zeros({0, 3}), {1}).shape() == Shape{0});
    }
}

TEST_CASE("min ties send the gradient to the first minimum, NaN wins, -0 ties with +0", "[reduce][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO("kernels " << cpu_kernels_name(k));
        Tensor x = Tensor::from_vector(std::vector<float>{4, 1, 1, 2}, {4}).requires_grad_();
        min(x).backward();
        REQUIRE(values(x.grad()) == std::vector<double>{0, 1, 0, 0});
        const std::vector<float> v = {3, 1, 1, 2, 5, 5, 5, 5};
        Tensor rows = Tensor::from_vector(v, {2, 4}).requires_grad_();
        min(rows, {1}).backward(Tensor::from_vector(std::vector<float>{10, 20}, {2}));
        REQUIRE(values(rows.grad()) == std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0});
        Tensor cols = Tensor::from_vector(v, {2, 4}).t().contiguous().detach().requires_grad_();  // (4, 2)
        min(cols, {0}).backward(Tensor::from_vector(std::vector<float>{10, 20}, {2}));
        REQUIRE(values(cols.grad()) == std::vector<double>{0, 20, 10, 0, 0, 0, 0, 0});
        REQUIRE(indices(argmin(cols, 0)) == std::vector<int32_t>{1, 0});

        const Tensor n = Tensor::from_vector(std::vector<float>{1, kNaN, -7, kNaN}, {4});
        REQUIRE(std::isnan(min(n).item()));
        REQUIRE(indices(argmin(n)) == std::vector<int32_t>{1});
        const Tensor m = Tensor::from_vector(std::vector<float>{1, 2, kNaN, 4, 5, kNaN}, {3, 2});
        REQUIRE(indices(argmin(m, 0)) == std::vector<int32_t>{1, 2});
        REQUIRE(indices(argmin(m, 1)) == std::vector<int32_t>{0, 0, 1});
        const Tensor z = Tensor::from_vector(std::vector<float>{0.0f, -0.0f, 1.0f}, {3});
        REQUIRE(indices(argmin(z)) == std::vector<int32_t>{0});  // +0 first: -0 does not beat it
        REQUIRE_FALSE(std::signbit(min(z).item()));
        REQUIRE(min(Tensor::from_vector(std::vector<float>{kInf, kInf}, {2})).item() == kInf);
    }
}

// ---------------------------------------------------------------------------- ties and NaN
TEST_CASE("max ties send the gradient to the first maximum, and NaN wins", "[reduce][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO("kernels " << cpu_kernels_name(k));
        SECTION("over all elements") {
            Tensor x = Tensor::from_vector(std::vector<float>{1, 3, 3, 2}, {4}).requires_grad_();
            max(x).backward();
            REQUIRE(values(x.grad()) == std::vector<double>{0, 1, 0, 0});
            REQUIRE(indices(argmax(x)) == std::vector<int32_t>{1});
        }
        SECTION("along the last dim (contiguous rows) and along the first (columns)") {
            const std::vector<float> v = {1, 3, 3, 2, 5, 5, 5, 5};
            Tensor rows = Tensor::from_vector(v, {2, 4}).requires_grad_();
            max(rows, {1}).backward(Tensor::from_vector(std::vector<float>{10, 20}, {2}));
            REQUIRE(values(rows.grad()) == std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0});
            REQUIRE(indices(argmax(rows, 1)) == std::vector<int32_t>{1, 0});

            Tensor cols = Tensor::from_vector(v, {2, 4}).t().contiguous().detach().requires_grad_();  // (4, 2)
            max(cols, {0}).backward(Tensor::from_vector(std::vector<float>{10, 20}, {2}));
            REQUIRE(values(cols.grad()) == std::vector<double>{0, 20, 10, 0, 0, 0, 0, 0});
            REQUIRE(indices(argmax(cols, 0)) == std::vector<int32_t>{1, 0});
        }
        SECTION("NaN: max is NaN, argmax the index of the first NaN") {
            const Tensor x = Tensor::from_vector(std::vector<float>{1, kNaN, 7, kNaN}, {4});
            REQUIRE(std::isnan(max(x).item()));
            REQUIRE(indices(argmax(x)) == std::vector<int32_t>{1});
            const Tensor m = Tensor::from_vector(std::vector<float>{1, 2, kNaN, 4, 5, kNaN}, {3, 2});
            const std::vector<double> col_max = values(max(m, {0}));
            REQUIRE(std::isnan(col_max[0]));
            REQUIRE(std::isnan(col_max[1]));
            REQUIRE(indices(argmax(m, 0)) == std::vector<int32_t>{1, 2});
            REQUIRE(indices(argmax(m, 1)) == std::vector<int32_t>{1, 0, 1});
        }
        SECTION("infinities and signed zeros") {
            const Tensor x = Tensor::from_vector(std::vector<float>{-kInf, -kInf, -kInf}, {3});
            REQUIRE(max(x).item() == -kInf);
            REQUIRE(indices(argmax(x)) == std::vector<int32_t>{0});
            const Tensor z = Tensor::from_vector(std::vector<float>{-0.0f, 0.0f, -1.0f}, {3});
            REQUIRE(indices(argmax(z)) == std::vector<int32_t>{0});  // -0 == +0: the first
            REQUIRE(std::signbit(max(z).item()));
        }
    }
}

// ---------------------------------------------------------------------------- omp threads
TEST_CASE("omp sums give the same bits for any thread count", "[reduce][omp]") {
    // Work is split by shape, never by thread count, and partial sums are combined in a fixed order.
    const int threads_before = num_threads();
    for (const ReduceShape& s : test::split_sum_shapes()) {
        const Tensor x = test::random_tensor({s.outer * s.reduce * s.inner}, 11);
        std::vector<float> first;
        for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            std::vector<float> y = nan_filled<float>(s.outer * s.inner);
            omp::sum_fwd(y.data(), x.data<float>(), s, 1.0f);
            if (first.empty()) first = y;
            INFO("reduce " << s.reduce << " threads " << threads);
            REQUIRE(same_bits(y, first));
            REQUIRE(count_nan(y) == 0);
        }
    }
    set_num_threads(threads_before);
}

// ---------------------------------------------------------------------------- gradcheck
TEST_CASE("sum, mean and max gradients (float64)", "[reduce][gradcheck]") {
    const Tensor x = test::random_tensor({3, 4, 5}, 21, Layout::contiguous, DType::float64).requires_grad_();
    // max needs a clear gap between the largest and the runner-up of each reduction (no ties within
    // the finite-difference step): a shuffled ramp with steps of 0.01.
    std::vector<double> ramp(60);
    for (size_t i = 0; i < ramp.size(); i++) ramp[i] = 0.01 * double(i) - 0.3;
    std::shuffle(ramp.begin(), ramp.end(), std::mt19937(5));
    const Tensor xm = Tensor::from_vector(ramp, {3, 4, 5}).requires_grad_();

    struct Case {
        const char* name;
        std::vector<int64_t> dims;  // empty: over all elements
        bool keepdim;
    };
    const Case cases[] = {
        {"all", {}, false},           {"dim 0", {0}, false},        {"dim -1 keepdim", {-1}, true},
        {"dim 1", {1}, true},         {"dims 0, 2", {0, 2}, false}, {"dims 2, 0 keepdim", {2, 0}, true},
        {"dims 1, 2", {1, 2}, false},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const bool all = c.dims.empty();
        const std::vector<int64_t> dims = c.dims;
        const bool keep = c.keepdim;
        auto f_sum = [&](const std::vector<Tensor>& v) { return all ? sum(v[0]) : sum(v[0], dims, keep); };
        auto f_mean = [&](const std::vector<Tensor>& v) { return all ? mean(v[0]) : mean(v[0], dims, keep); };
        auto f_max = [&](const std::vector<Tensor>& v) { return all ? max(v[0]) : max(v[0], dims, keep); };
        auto f_min = [&](const std::vector<Tensor>& v) { return all ? min(v[0]) : min(v[0], dims, keep); };
        GradcheckResult r = gradcheck(f_sum, {x});
        INFO("sum: " << r.report);
        REQUIRE(r.ok);
        r = gradcheck(f_mean, {x});
        INFO("mean: " << r.report);
        REQUIRE(r.ok);
        r = gradcheck(f_max, {xm});
        INFO("max: " << r.report);
        REQUIRE(r.ok);
        r = gradcheck(f_min, {xm});  // the ramp's gaps separate the smallest from the runner-up too
        INFO("min: " << r.report);
        REQUIRE(r.ok);
    }
    // Composition: a reduction of a reduction, and a reduction feeding an elementwise op.
    const GradcheckResult r =
        gradcheck([](const std::vector<Tensor>& v) { return mean(max(v[1], {2}) * sum(v[0], {2}), {0}); }, {x, xm});
    INFO(r.report);
    REQUIRE(r.ok);
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("reduce errors name the op and the values", "[reduce][errors]") {
    const Tensor x = Tensor::zeros({2, 3, 4});
    REQUIRE_THROWS_WITH(sum(x, {1, 1}),
                        Catch::Contains("sum") && Catch::Contains("dim listed twice") && Catch::Contains("(2, 3, 4)"));
    REQUIRE_THROWS_WITH(max(x, {0, -3}), Catch::Contains("max") && Catch::Contains("dim listed twice"));
    REQUIRE_THROWS_WITH(mean(x, {2, -1}, true), Catch::Contains("mean") && Catch::Contains("twice"));

    REQUIRE_THROWS_WITH(sum(x, {3}), Catch::Contains("sum: dim 3 is out of range") && Catch::Contains("3 dims"));
    REQUIRE_THROWS_WITH(mean(x, {0, -4}), Catch::Contains("mean: dim -4") && Catch::Contains("3 dims"));
    REQUIRE_THROWS_WITH(max(x, {7}), Catch::Contains("max: dim 7") && Catch::Contains("3 dims"));
    REQUIRE_THROWS_WITH(argmax(x, -5), Catch::Contains("argmax: dim -5") && Catch::Contains("3 dims"));
    REQUIRE_THROWS_WITH(min(x, {0, 3}), Catch::Contains("min: dim 3") && Catch::Contains("3 dims"));
    REQUIRE_THROWS_WITH(min(x, {1, -2}), Catch::Contains("min") && Catch::Contains("dim listed twice"));
    REQUIRE_THROWS_WITH(argmin(x, 4), Catch::Contains("argmin: dim 4") && Catch::Contains("3 dims"));
    REQUIRE_THROWS_WITH(min(Tensor::zeros({0})), Catch::Contains("min") && Catch::Contains("zero elements"));
    REQUIRE_THROWS_WITH(min(Tensor::zeros({2}, DType::int64)), Catch::Contains("min") && Catch::Contains("int64"));
    REQUIRE_THROWS_WITH(argmin(Tensor::zeros({0, 2})), Catch::Contains("argmin: empty tensor (0, 2)"));
    REQUIRE_THROWS_WITH(argmin(Tensor::zeros({3, 0}), 1), Catch::Contains("argmin: dim 1") && Catch::Contains("empty"));

    const Tensor ints = Tensor::zeros({2, 3}, DType::int32);
    REQUIRE_THROWS_WITH(sum(ints), Catch::Contains("sum") && Catch::Contains("int32"));
    REQUIRE_THROWS_WITH(mean(ints, {0}), Catch::Contains("mean") && Catch::Contains("int32"));
    REQUIRE_THROWS_WITH(max(ints), Catch::Contains("max") && Catch::Contains("int32"));
    REQUIRE_THROWS_WITH(argmax(ints, 1), Catch::Contains("argmax") && Catch::Contains("int32"));
    REQUIRE_THROWS_WITH(argmax(Tensor::zeros({2}, DType::uint8)),
                        Catch::Contains("argmax") && Catch::Contains("uint8"));

    REQUIRE_THROWS_WITH(max(Tensor::zeros({0})), Catch::Contains("max") && Catch::Contains("zero elements"));
    REQUIRE_THROWS_WITH(max(Tensor::zeros({3, 0}), {1}), Catch::Contains("max") && Catch::Contains("(3, 0)"));
    REQUIRE_THROWS_WITH(argmax(Tensor::zeros({0, 2})), Catch::Contains("argmax: empty tensor (0, 2)"));
    REQUIRE_THROWS_WITH(argmax(Tensor::zeros({3, 0}), 1), Catch::Contains("argmax: dim 1") && Catch::Contains("empty"));

    REQUIRE_THROWS_WITH(mean(Tensor::zeros({0})), Catch::Contains("mean over zero elements of (0)"));
    REQUIRE_THROWS_WITH(mean(Tensor::zeros({0, 3}), {0}), Catch::Contains("mean over zero elements of (0, 3)"));
}
