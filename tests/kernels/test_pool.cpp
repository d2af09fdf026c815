// Pooling (max_pool2d, avg_pool2d, adaptive_avg_pool2d, and the fused relu_max_pool2d) on the CPU kernel
// sets: hand-checked values in float32 and float64, the tie, NaN and padding conventions of max pooling,
// the reference's fused op equal to max_pool2d(relu(x)) bit for bit, float64 gradient checks, and argument
// errors. Parity of every kernel set with naive (kernels and frontends, accumulation of the backward
// kernels): tests/ops/pool.cpp.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/pool_cases.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::values;
using test::window_cases;
using test::WindowCase;

namespace {

const CpuKernels kBothSets[] = {CpuKernels::naive, CpuKernels::omp};
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

Tensor arange_shaped(const Shape& shape, DType dt = DType::float32) {
    return Tensor::arange(0, double(shape_numel(shape))).reshape(shape).to(dt);
}

// Gradient of sum(w * f(x)) w.r.t. x for float tensors, through the frontend.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& w) {
    Tensor xl = x.detach().requires_grad_();
    f(xl).backward(w);
    return xl.grad();
}

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("max_pool2d of hand-checked tensors, values and gradients", "[pool][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            // x[h, w] = 4 h + w: every 2x2 window's maximum is its bottom-right element.
            Tensor x = arange_shaped({1, 1, 4, 4}, dt).requires_grad_();
            Tensor y = max_pool2d(x, 2);
            REQUIRE(y.shape() == Shape{1, 1, 2, 2});
            REQUIRE(y.dtype() == dt);
            REQUIRE(values(y) == std::vector<double>{5, 7, 13, 15});
            y.backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}).to(dt));
            REQUIRE(values(x.grad()) == std::vector<double>{0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4});

            // 3x3 stride 1 padding 1 on 3x3: every window holds the centre or the larger corner.
            Tensor x3 = arange_shaped({1, 1, 3, 3}, dt).requires_grad_();
            y = max_pool2d(x3, 3, 1, 1);
            REQUIRE(values(y) == std::vector<double>{4, 5, 5, 7, 8, 8, 7, 8, 8});
            sum(y).backward();
            REQUIRE(values(x3.grad()) == std::vector<double>{0, 0, 0, 0, 1, 2, 0, 2, 4});

            // Non-square kernel and stride, floor of the output size: (5, 7) with kernel (2, 3), stride (3, 2).
            y = max_pool2d(arange_shaped({1, 1, 5, 7}, dt), {2, 3}, {3, 2});
            REQUIRE(y.shape() == Shape{1, 1, 2, 3});
            REQUIRE(values(y) == std::vector<double>{9, 11, 13, 30, 32, 34});
        }
    }
}

TEST_CASE("avg_pool2d and adaptive_avg_pool2d of hand-checked tensors", "[pool][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            Tensor x = arange_shaped({1, 1, 4, 4}, dt).requires_grad_();
            Tensor y = avg_pool2d(x, 2);
            REQUIRE(values(y) == std::vector<double>{2.5, 4.5, 10.5, 12.5});
            y.backward(Tensor::from_vector(std::vector<double>{4, 8, 12, 16}, {1, 1, 2, 2}).to(dt));
            REQUIRE(values(x.grad()) == std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});

            // Padding counts as zeros in the divisor (count_include_pad): a ones image, 3x3 stride 1 pad 1.
            Tensor ones = Tensor::ones({1, 1, 3, 3}, dt).requires_grad_();
            y = avg_pool2d(ones, 3, 1, 1);
            REQUIRE_THAT(values(y * 9.0), AllClose(std::vector<double>{4, 6, 4, 6, 9, 6, 4, 6, 4}).rtol(1e-6));
            y = avg_pool2d(ones, 3, 1, 1);
            sum(y * 9.0).backward();  // each input is in as many windows as its output's count
            REQUIRE_THAT(values(ones.grad()), AllClose(std::vector<double>{4, 6, 4, 6, 9, 6, 4, 6, 4}).rtol(1e-6));

            // Adaptive 5 -> 3 rows: windows [0, 2), [1, 4), [3, 5); 4 -> 2 columns: [0, 2), [2, 4).
            Tensor xa = arange_shaped({1, 1, 5, 4}, dt).requires_grad_();
            y = adaptive_avg_pool2d(xa, {3, 2});
            REQUIRE(y.shape() == Shape{1, 1, 3, 2});
            REQUIRE_THAT(values(y), AllClose(std::vector<double>{2.5, 4.5, 8.5, 10.5, 14.5, 16.5}).rtol(1e-6));
            sum(y).backward();
            // Row r is in 1, 2, 1, 2, 1 windows; each window has 4, 6, 4 elements (rows 2, 3, 2 times 2 columns).
            const double a = 1.0 / 4, b = 1.0 / 6;
            const std::vector<double> row_w = {a, a + b, b, b + a, a};
            std::vector<double> expect;
            for (double r : row_w)
                for (int c = 0; c < 4; c++) expect.push_back(r);
            REQUIRE_THAT(values(xa.grad()), AllClose(expect).rtol(1e-6));

            // Global average pooling.
            y = adaptive_avg_pool2d(arange_shaped({2, 3, 2, 2}, dt), 1);
            REQUIRE(y.shape() == Shape{2, 3, 1, 1});
            REQUIRE(values(y) == std::vector<double>{1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
            // Output equal to the input size: the identity.
            const Tensor xi = arange_shaped({1, 2, 3, 3}, dt);
            REQUIRE(values(adaptive_avg_pool2d(xi, {3, 3})) == values(xi));
        }
    }
}

// ---------------------------------------------------------------------------- ties, NaN, padding
TEST_CASE("max_pool2d ties go to the first maximum, NaN wins, padding is -inf", "[pool][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        SECTION("ties: the first maximum in row-major window order takes the gradient") {
            // Windows: {3, 3 / 1, 3}, {1, 2 / 5, 5}, {7, 0 / 7, 7}, {4, 4 / 4, 4}
            Tensor x =
                Tensor::from_vector(std::vector<float>{3, 3, 1, 2, 1, 3, 5, 5, 7, 0, 4, 4, 7, 7, 4, 4}, {1, 1, 4, 4})
                    .requires_grad_();
            Tensor y = max_pool2d(x, 2);
            REQUIRE(values(y) == std::vector<double>{3, 5, 7, 4});
            y.backward(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {1, 1, 2, 2}));
            REQUIRE(values(x.grad()) == std::vector<double>{1, 0, 0, 0, 0, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 0});
        }
        SECTION("overlapping windows share a maximum: its gradient is the sum") {
            Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 9, 1, 0}, {1, 1, 1, 5}).requires_grad_();
            Tensor y = max_pool2d(x, {1, 3}, 1);
            REQUIRE(values(y) == std::vector<double>{9, 9, 9});
            sum(y).backward();
            REQUIRE(values(x.grad()) == std::vector<double>{0, 0, 3, 0, 0});
        }
        SECTION("NaN wins: the first NaN of the window is the result and takes the gradient") {
            Tensor x =
                Tensor::from_vector(std::vector<float>{1, kNaN, 9, kNaN, 2, 8, 3, 4}, {1, 1, 2, 4}).requires_grad_();
            Tensor y = max_pool2d(x, 2);
            const std::vector<double> v = values(y);
            REQUIRE(std::isnan(v[0]));
            REQUIRE(std::isnan(v[1]));
            sum(y).backward();
            REQUIRE(values(x.grad()) == std::vector<double>{0, 1, 0, 1, 0, 0, 0, 0});
        }
        SECTION("padding is -inf: negative inputs and -inf inputs stay in the result") {
            const Tensor x = Tensor::full({1, 1, 3, 3}, -5.0);
            REQUIRE(values(max_pool2d(x, 3, 1, 1)) == std::vector<double>(9, -5.0));
            Tensor xi = Tensor::full({1, 1, 2, 2}, -double(kInf)).requires_grad_();
            Tensor y = max_pool2d(xi, 2, 1, 1);  // 3x3 output
            REQUIRE(values(y) == std::vector<double>(9, -double(kInf)));
            sum(y).backward();  // every window's first (real) element takes its gradient
            REQUIRE(values(xi.grad()) == std::vector<double>{4, 2, 2, 1});
        }
    }
}

// ---------------------------------------------------------------------------- fused relu + max pool
TEST_CASE("relu_max_pool2d keeps relu's signed zeros and max pooling's first maximum", "[pool][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        // Windows (1x2): {-1, -0} -> relu {+0, -0}: +0 (the first of equal zeros); {-0, -1} -> -0;
        // {NaN, 5} -> NaN; {-3, 2} -> 2, which alone takes the gradient.
        Tensor x = Tensor::from_vector(std::vector<float>{-1, -0.0f, -0.0f, -1, kNaN, 5, -3, 2}, {1, 1, 1, 8})
                       .requires_grad_();
        Tensor y = relu_max_pool2d(x, {1, 2});
        const std::vector<float> v = y.detach().to_vector<float>();
        REQUIRE(v.size() == 4);
        REQUIRE((v[0] == 0 && !std::signbit(v[0])));
        REQUIRE((v[1] == 0 && std::signbit(v[1])));
        REQUIRE(std::isnan(v[2]));
        REQUIRE(v[3] == 2);
        y.backward(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {1, 1, 1, 4}));
        REQUIRE(values(x.grad()) == std::vector<double>{0, 0, 0, 0, 0, 0, 0, 4});
    }
}

// The definition, through the public API on the naive kernels (the reference of every set) in float32
// and float64 (which every CPU set runs on naive): values and the gradient of a weighted sum equal those
// of max_pool2d(relu(x)) bit for bit, on every window case, on tied data with NaN, -inf and -0.0. The
// same on every kernel set, and each set against naive: tests/ops/pool.cpp.
TEST_CASE("relu_max_pool2d equals max_pool2d of relu bit for bit, values and gradients", "[pool][naive]") {
    uint64_t seed = 70;
    CpuKernelsGuard guard(CpuKernels::naive);
    for (DType dt : {DType::float32, DType::float64}) {
        for (const WindowCase& c : window_cases()) {
            for (bool specials : {false, true}) {
                INFO(dtype_name(dt) << " x " << shape_str(c.x) << " k (" << c.k.h << ", " << c.k.w << ") stride ("
                                    << c.s.h << ", " << c.s.w << ") pad (" << c.p.h << ", " << c.p.w << ") specials "
                                    << specials);
                const Tensor x =
                    Tensor::from_vector(test::signed_zero_tied_values(shape_numel(c.x), seed++, specials), c.x).to(dt);
                auto fused = [&](const Tensor& t) { return relu_max_pool2d(t, c.k, c.s, c.p); };
                auto pair = [&](const Tensor& t) { return max_pool2d(relu(t), c.k, c.s, c.p); };
                const Tensor y_ref = pair(x);
                const Tensor w = test::random_tensor(y_ref.shape(), seed++, test::Layout::contiguous, dt);
                const Tensor y = fused(x);
                test::require_identical(y_ref, y);
                test::require_identical(grad_of(pair, x, w), grad_of(fused, x, w));
            }
        }
    }
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("pooling gradients (float64)", "[pool][gradcheck]") {
    // Max pooling needs a clear gap between each window's largest value and the runner-up (no ties within
    // the finite-difference step): a shuffled ramp with steps of 0.01.
    const Shape shape = {2, 3, 5, 7};
    std::vector<double> ramp(size_t(shape_numel(shape)));
    for (size_t i = 0; i < ramp.size(); i++) ramp[i] = 0.01 * double(i) - 1.0;
    std::shuffle(ramp.begin(), ramp.end(), std::mt19937(7));
    const Tensor xm = Tensor::from_vector(ramp, shape).requires_grad_();
    const Tensor x = test::random_tensor(shape, 400, test::Layout::contiguous, DType::float64).requires_grad_();
    // The fused relu + max pool also needs every input away from relu's kink at 0: the ramp shifted by half
    // a step, so every value is at least 0.005 from 0 and from every other value.
    for (double& v : ramp) v -= 0.005;
    const Tensor xr = Tensor::from_vector(ramp, shape).requires_grad_();

    for (const WindowCase& c : {WindowCase{shape, 2, 0, 0}, WindowCase{shape, 3, 2, 1},
                                WindowCase{shape, {3, 2}, {1, 2}, {1, 1}}, WindowCase{shape, {2, 4}, 1, {0, 2}}}) {
        INFO("k (" << c.k.h << ", " << c.k.w << ") stride (" << c.s.h << ", " << c.s.w << ") pad (" << c.p.h << ", "
                   << c.p.w << ")");
        GradcheckResult r =
            gradcheck([&](const std::vector<Tensor>& v) { return max_pool2d(v[0], c.k, c.s, c.p); }, {xm});
        INFO("max_pool2d: " << r.report);
        REQUIRE(r.ok);
        r = gradcheck([&](const std::vector<Tensor>& v) { return relu_max_pool2d(v[0], c.k, c.s, c.p); }, {xr});
        INFO("relu_max_pool2d: " << r.report);
        REQUIRE(r.ok);
        r = gradcheck([&](const std::vector<Tensor>& v) { return avg_pool2d(v[0], c.k, c.s, c.p); }, {x});
        INFO("avg_pool2d: " << r.report);
        REQUIRE(r.ok);
    }
    for (Size2 out : {Size2(1), Size2(2, 3), Size2(4, 9)}) {
        INFO("adaptive output (" << out.h << ", " << out.w << ")");
        const GradcheckResult r =
            gradcheck([&](const std::vector<Tensor>& v) { return adaptive_avg_pool2d(v[0], out); }, {x});
        INFO(r.report);
        REQUIRE(r.ok);
    }
    // Composition: pooling a transposed view, then pooling again.
    GradcheckResult r = gradcheck(
        [](const std::vector<Tensor>& v) { return adaptive_avg_pool2d(max_pool2d(v[0].transpose(2, 3), 2, 1), 2); },
        {xm});
    INFO(r.report);
    REQUIRE(r.ok);
    r = gradcheck(
        [](const std::vector<Tensor>& v) {
            return adaptive_avg_pool2d(relu_max_pool2d(v[0].transpose(2, 3), 2, 1), 2);
        },
        {xr});
    INFO("relu_max_pool2d: " << r.report);
    REQUIRE(r.ok);
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("pooling argument errors name the op and the sizes", "[pool][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({2, 3, 4, 4});
    for (int i = 0; i < 3; i++) {
        const char* op = i == 0 ? "max_pool2d" : i == 1 ? "avg_pool2d" : "relu_max_pool2d";
        auto pool = [i](const Tensor& t, Size2 k, Size2 s, Size2 p) {
            return i == 0 ? max_pool2d(t, k, s, p) : i == 1 ? avg_pool2d(t, k, s, p) : relu_max_pool2d(t, k, s, p);
        };
        INFO(op);
        REQUIRE_THROWS_WITH(pool(Tensor::zeros({3, 4, 4}), 2, 0, 0),
                            Contains(op) && Contains("4-D") && Contains("(3, 4, 4)"));
        REQUIRE_THROWS_WITH(pool(x, 0, 0, 0),
                            Contains(op) && Contains("kernel size must be >= 1") && Contains("(0, 0)"));
        REQUIRE_THROWS_WITH(pool(x, {2, -1}, 0, 0), Contains(op) && Contains("kernel") && Contains("(2, -1)"));
        REQUIRE_THROWS_WITH(pool(x, 2, -1, 0), Contains(op) && Contains("stride") && Contains("(-1, -1)"));
        REQUIRE_THROWS_WITH(pool(x, 2, 1, {0, -1}),
                            Contains(op) && Contains("padding must be >= 0") && Contains("(0, -1)"));
        REQUIRE_THROWS_WITH(pool(x, 2, 1, 2), Contains(op) && Contains("at most half the kernel") &&
                                                  Contains("(2, 2)") && Contains("(2, 3, 4, 4)"));
        REQUIRE_THROWS_WITH(pool(x, {3, 5}, 1, {2, 1}), Contains(op) && Contains("at most half"));
        REQUIRE_THROWS_WITH(pool(x, {7, 2}, 1, {1, 0}), Contains(op) && Contains("kernel 7x2") &&
                                                            Contains("larger than the padded input 6x4") &&
                                                            Contains("(2, 3, 4, 4)"));
        REQUIRE_THROWS_WITH(pool(Tensor::zeros({0, 3, 4, 4}), 2, 0, 0),
                            Contains(op) && Contains("empty batch") && Contains("(0, 3, 4, 4)"));
        REQUIRE_THROWS_WITH(pool(Tensor::zeros({1, 3, 0, 4}), 1, 0, 0), Contains(op) && Contains("(1, 3, 0, 4)"));
        REQUIRE_THROWS_WITH(pool(Tensor::zeros({1, 1, 4, 4}, DType::int32), 2, 0, 0),
                            Contains(op) && Contains("int32"));
        REQUIRE_THROWS_WITH(pool(Tensor(), 2, 0, 0), Contains(op) && Contains("undefined"));
    }
    REQUIRE_THROWS_WITH(adaptive_avg_pool2d(x, {0, 2}), Contains("adaptive_avg_pool2d") &&
                                                            Contains("output size must be >= 1") &&
                                                            Contains("(0, 2)") && Contains("(2, 3, 4, 4)"));
    REQUIRE_THROWS_WITH(adaptive_avg_pool2d(Tensor::zeros({3, 4}), 1),
                        Contains("adaptive_avg_pool2d") && Contains("4-D") && Contains("(3, 4)"));
    REQUIRE_THROWS_WITH(adaptive_avg_pool2d(Tensor::zeros({0, 2, 4, 4}), 1),
                        Contains("adaptive_avg_pool2d") && Contains("empty batch"));
    // Error messages start with the source file and line.
    try {
        (void)max_pool2d(x, 5);
        FAIL("no exception");
    } catch (const Error& e) {
        REQUIRE(std::string(e.what()).rfind("pool.cpp:", 0) == 0);
    }
}
