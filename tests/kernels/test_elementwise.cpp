// Elementwise ops on the CPU kernel sets: known values in float32 and float64 (naive and omp), float64
// gradient checks, the kink conventions and special values, and argument errors. Parity of every kernel
// set with naive: tests/ops/elementwise.cpp. Activations (relu) are in test_activation.cpp.
#include "support/catch.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::BinaryCase;
using test::input;
using test::Layout;
using test::make;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
constexpr DType kFloatTypes[] = {DType::float32, DType::float64};
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Known-value tolerance: 0 where the result is exact in float32 (sums of small integers, products and
// quotients of powers of two); 1e-6 where libm (exp, log, pow) rounds a transcendental result, which is
// within a few float32 ulps (6e-8 each) of the true value.
constexpr double kLibmRtol = 1e-6;

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("binary ops: known values with broadcasting", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
            const Tensor b = make({2, 4, 8}, {3}, dt);
            REQUIRE(values(add(a, b)) == std::vector<double>{3, 6, 11, 6, 9, 14});
            REQUIRE(values(sub(a, b)) == std::vector<double>{-1, -2, -5, 2, 1, -2});
            REQUIRE(values(sub(b, a)) == std::vector<double>{1, 2, 5, -2, -1, 2});
            REQUIRE(values(mul(a, b)) == std::vector<double>{2, 8, 24, 8, 20, 48});
            REQUIRE(values(div(a, b)) == std::vector<double>{0.5, 0.5, 0.375, 2, 1.25, 0.75});
            // Inexact quotients: one float32 rounding is at most 6e-8 relative.
            REQUIRE_THAT(values(div(b, a)), AllClose(std::vector<double>{2, 2, 8.0 / 3, 0.5, 0.8, 8.0 / 6}).rtol(1e-7));

            // Both operands broadcast: (2, 1) with (1, 3) gives (2, 3).
            const Tensor col = make({1, 2}, {2, 1}, dt), row = make({10, 20, 30}, {1, 3}, dt);
            const Tensor outer = add(col, row);
            REQUIRE(outer.shape() == Shape{2, 3});
            REQUIRE(values(outer) == std::vector<double>{11, 21, 31, 12, 22, 32});
            REQUIRE(values(mul(row, col)) == std::vector<double>{10, 20, 30, 20, 40, 60});

            // A one-element tensor against a 3-d one; leading dims are added.
            const Tensor one = make({-1}, {1}, dt);
            const Tensor cube = add(make({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}, dt), one);
            REQUIRE(cube.shape() == Shape{2, 2, 2});
            REQUIRE(values(cube) == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7});

            const Tensor base = make({1, 4, 9, 16, 25, 2}, {2, 3}, dt);
            const Tensor expo = make({0.5, 2, 0}, {3}, dt);
            REQUIRE_THAT(values(pow(base, expo)), AllClose(std::vector<double>{1, 16, 1, 4, 625, 1}).rtol(kLibmRtol));
        }
    }
}

TEST_CASE("scalar variants and unary ops: known values", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const Tensor a = make({1, 2, 4, -8}, {4}, dt);
            REQUIRE(values(add(a, 2.0)) == std::vector<double>{3, 4, 6, -6});
            REQUIRE(values(sub(a, 2.0)) == std::vector<double>{-1, 0, 2, -10});
            REQUIRE(values(sub(2.0, a)) == std::vector<double>{1, 0, -2, 10});
            REQUIRE(values(mul(a, 3.0)) == std::vector<double>{3, 6, 12, -24});
            REQUIRE(values(div(a, 2.0)) == std::vector<double>{0.5, 1, 2, -4});
            REQUIRE(values(div(2.0, a)) == std::vector<double>{2, 1, 0.5, -0.25});
            REQUIRE_THAT(values(pow(a, 2.0)), AllClose(std::vector<double>{1, 4, 16, 64}).rtol(kLibmRtol));
            REQUIRE_THAT(values(pow(a, 3.0)), AllClose(std::vector<double>{1, 8, 64, -512}).rtol(kLibmRtol));
            REQUIRE_THAT(values(pow(make({4, 9, 0.25}, {3}, dt), 0.5)),
                         AllClose(std::vector<double>{2, 3, 0.5}).rtol(kLibmRtol));
            REQUIRE(values(neg(a)) == std::vector<double>{-1, -2, -4, 8});

            const double e = std::exp(1.0);
            REQUIRE_THAT(values(exp(make({0, 1, -1, -kInf}, {4}, dt))),
                         AllClose(std::vector<double>{1, e, 1 / e, 0}).rtol(kLibmRtol));
            // log of 0 is -inf and of a negative number NaN, like std::log (documented in ops.h).
            REQUIRE_THAT(values(log(make({1, e, 0.5, 0, -1}, {5}, dt))),
                         AllClose(std::vector<double>{0, 1, -std::log(2.0), -kInf, kNaN}).rtol(kLibmRtol));
            REQUIRE(values(sqrt(make({0, 1, 4, 2.25}, {4}, dt))) == std::vector<double>{0, 1, 2, 1.5});
            REQUIRE(std::isnan(values(sqrt(make({-1}, {1}, dt)))[0]));

            // clamp: below, at and above both bounds; NaN passes through.
            const Tensor c = clamp(make({-3, -1, 0, 0.5, 1, 2, kNaN}, {7}, dt), -1, 1);
            REQUIRE_THAT(values(c), AllClose(std::vector<double>{-1, -1, 0, 0.5, 1, 1, kNaN}));
        }
    }
}

TEST_CASE("operators call the named ops", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor a = make({1, 2, 4}, {3}, DType::float32);
        const Tensor b = make({4, 8, 2}, {3}, DType::float32);
        REQUIRE(values(a + b) == std::vector<double>{5, 10, 6});
        REQUIRE(values(a - b) == std::vector<double>{-3, -6, 2});
        REQUIRE(values(a * b) == std::vector<double>{4, 16, 8});
        REQUIRE(values(a / b) == std::vector<double>{0.25, 0.25, 2});
        REQUIRE(values(-a) == std::vector<double>{-1, -2, -4});
        REQUIRE(values(a + 1.0) == std::vector<double>{2, 3, 5});
        REQUIRE(values(1.0 + a) == std::vector<double>{2, 3, 5});
        REQUIRE(values(a - 1.0) == std::vector<double>{0, 1, 3});
        REQUIRE(values(1.0 - a) == std::vector<double>{0, -1, -3});
        REQUIRE(values(a * 2.0) == std::vector<double>{2, 4, 8});
        REQUIRE(values(2.0 * a) == std::vector<double>{2, 4, 8});
        REQUIRE(values(a / 2.0) == std::vector<double>{0.5, 1, 2});
        REQUIRE(values(2.0 / a) == std::vector<double>{2, 1, 0.5});
        REQUIRE(values(a * b + a / 2.0 - 1.0) == std::vector<double>{3.5, 16, 9});
    }
}

TEST_CASE("results are new contiguous tensors, also for strided and empty inputs", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor x = input({3, 5}, 1, Layout::transposed);
        const Tensor y = add(x, 1.0);
        REQUIRE(y.is_contiguous());
        REQUIRE_FALSE(y.is_same(x));
        REQUIRE(add(x, x).is_contiguous());
        const Tensor empty = Tensor::zeros({0, 3});
        REQUIRE(add(empty, Tensor::ones({3})).shape() == Shape{0, 3});
        REQUIRE(exp(empty).numel() == 0);
        REQUIRE(clamp(empty.t(), 0, 1).shape() == Shape{3, 0});
    }
}

// ---------------------------------------------------------------------------- gradients
namespace {

// A float64 leaf of normal values passed through `map`, requiring grad.
Tensor leaf(const Shape& shape, uint64_t seed, const std::function<double(double)>& map = nullptr) {
    manual_seed(seed);
    std::vector<double> v = Tensor::randn(shape, DType::float64).to_vector<double>();
    if (map)
        for (double& e : v) e = map(e);
    return Tensor::from_vector(v, shape).requires_grad_();
}

// Domains that keep each op's gradient smooth near the inputs.
double positive(double x) { return 0.5 + std::abs(x); }         // log, sqrt, pow bases, divisors
double nonzero(double x) { return x < 0 ? x - 0.5 : x + 0.5; }  // divisors of either sign
double away_from_clamp(double x) {                              // clamp(-0.5, 0.8)
    for (double bound : {-0.5, 0.8})
        if (std::abs(x - bound) < 1e-3) x = bound + (x < bound ? -0.01 : 0.01);
    return x;
}

void require_gradcheck(const std::string& what, const GradFn& fn, const std::vector<Tensor>& inputs) {
    INFO(what);
    const GradcheckResult r = gradcheck(fn, inputs);
    INFO(r.report);
    REQUIRE(r.ok);
}

}  // namespace

TEST_CASE("binary ops: gradcheck with and without broadcasting", "[elementwise][gradcheck]") {
    const std::pair<Shape, Shape> pairs[] = {
        {{2, 3}, {2, 3}},     // same shape
        {{2, 3}, {3}},        // b broadcast over a leading dim
        {{3}, {2, 3}},        // a broadcast
        {{3, 1}, {1, 5}},     // both broadcast
        {{2, 1, 4}, {3, 1}},  // both, with a dim added in front of b
    };
    for (const auto& [sa, sb] : pairs) {
        const std::string shapes = shape_str(sa) + " " + shape_str(sb);
        const Tensor a = leaf(sa, 1), b = leaf(sb, 2);
        require_gradcheck("add " + shapes, [](const std::vector<Tensor>& x) { return add(x[0], x[1]); }, {a, b});
        require_gradcheck("sub " + shapes, [](const std::vector<Tensor>& x) { return sub(x[0], x[1]); }, {a, b});
        require_gradcheck("mul " + shapes, [](const std::vector<Tensor>& x) { return mul(x[0], x[1]); }, {a, b});
        require_gradcheck("div " + shapes, [](const std::vector<Tensor>& x) { return div(x[0], x[1]); },
                          {a, leaf(sb, 3, nonzero)});
        require_gradcheck("pow " + shapes, [](const std::vector<Tensor>& x) { return pow(x[0], x[1]); },
                          {leaf(sa, 4, positive), b});
    }
}

TEST_CASE("binary ops: gradcheck with one operand held constant", "[elementwise][gradcheck]") {
    // Only the operand that requires grad gets a gradient buffer; the other's branch must be skipped.
    // Both positive, so every op (pow's base, div's divisor) is smooth in either order.
    const Tensor a = leaf({2, 3}, 5, positive);
    const Tensor b = Tensor::from_vector(std::vector<double>{0.5, 1.5, 2}, {3});
    for (const BinaryCase& op : test::binary_cases()) {
        const std::string name = op.name;
        require_gradcheck(name + "(a, const)", [&](const std::vector<Tensor>& x) { return op.fn(x[0], b); }, {a});
        require_gradcheck(name + "(const, a)", [&](const std::vector<Tensor>& x) { return op.fn(b, x[0]); }, {a});
    }
}

TEST_CASE("scalar variants and unary ops: gradcheck", "[elementwise][gradcheck]") {
    const Shape shape{3, 4};
    const Tensor any = leaf(shape, 6), pos = leaf(shape, 7, positive), nz = leaf(shape, 8, nonzero);
    struct Case {
        const char* name;
        std::function<Tensor(const Tensor&)> fn;
        Tensor x;
    };
    const Case cases[] = {
        {"add(x, 1.5)", [](const Tensor& x) { return add(x, 1.5); }, any},
        {"sub(x, 0.25)", [](const Tensor& x) { return sub(x, 0.25); }, any},
        {"sub(2, x)", [](const Tensor& x) { return sub(2.0, x); }, any},
        {"mul(x, -3)", [](const Tensor& x) { return mul(x, -3.0); }, any},
        {"div(x, 7)", [](const Tensor& x) { return div(x, 7.0); }, any},
        {"div(2, x)", [](const Tensor& x) { return div(2.0, x); }, nz},
        {"pow(x, 2.5)", [](const Tensor& x) { return pow(x, 2.5); }, pos},
        {"pow(x, -1.5)", [](const Tensor& x) { return pow(x, -1.5); }, pos},
        {"pow(x, 3)", [](const Tensor& x) { return pow(x, 3.0); }, any},  // integer exponent: any sign
        {"neg", [](const Tensor& x) { return neg(x); }, any},
        {"exp", [](const Tensor& x) { return exp(x); }, any},
        {"log", [](const Tensor& x) { return log(x); }, pos},
        {"sqrt", [](const Tensor& x) { return sqrt(x); }, pos},
        {"operator-", [](const Tensor& x) { return -x; }, any},
        {"1 - x / 2", [](const Tensor& x) { return 1.0 - x / 2.0; }, any},
        {"abs", [](const Tensor& x) { return abs(x); }, nz},  // |x| >= 0.5: away from the kink
        {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, any},
        {"sigmoid(4x)", [](const Tensor& x) { return sigmoid(mul(x, 4.0)); }, any},  // both branches, far out
        {"tanh", [](const Tensor& x) { return tanh(x); }, any},
        {"tanh(3x)", [](const Tensor& x) { return tanh(mul(x, 3.0)); }, any},
    };
    for (const Case& c : cases) {
        require_gradcheck(c.name, [&](const std::vector<Tensor>& x) { return c.fn(x[0]); }, {c.x});
    }
}

TEST_CASE("clamp: gradcheck away from the bounds", "[elementwise][gradcheck]") {
    // Normal values with lo = -0.5, hi = 0.8: about half inside, half clamped, none within 1e-3 of a
    // bound (the finite-difference step is 1e-6).
    const Tensor x = leaf({4, 6}, 9, away_from_clamp);
    require_gradcheck("clamp", [](const std::vector<Tensor>& v) { return clamp(v[0], -0.5, 0.8); }, {x});
}

TEST_CASE("a tensor used twice: gradcheck of x * x + x and of broadcasting reuse", "[elementwise][gradcheck]") {
    require_gradcheck("x * x + x", [](const std::vector<Tensor>& v) { return v[0] * v[0] + v[0]; }, {leaf({2, 5}, 10)});
    // x (3, 1) broadcast against y (1, 4) twice, and y through a division.
    require_gradcheck("(x * y - x) / (y * y + 1)",
                      [](const std::vector<Tensor>& v) { return (v[0] * v[1] - v[0]) / (v[1] * v[1] + 1.0); },
                      {leaf({3, 1}, 11), leaf({1, 4}, 12)});
}

// ---------------------------------------------------------------------------- kinks and special values
TEST_CASE("clamp gradient is 1 on [lo, hi] (bounds included) and 0 outside", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            Tensor x = make({-2, -1, -0.5, 0, 1, 1.5}, {6}, dt).requires_grad_();
            sum(clamp(x, -1, 1)).backward();
            REQUIRE(values(x.grad()) == std::vector<double>{0, 1, 1, 1, 1, 0});
            // Degenerate interval lo == hi: the gradient passes only at exactly that point.
            Tensor y = make({-1, 0.25, 2}, {3}, dt).requires_grad_();
            sum(clamp(y, 0.25, 0.25)).backward();
            REQUIRE(values(y.grad()) == std::vector<double>{0, 1, 0});
        }
    }
}

TEST_CASE("NaN propagates through binary and unary ops", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor a = make({1, kNaN, 3}, {3}, DType::float32);
        const Tensor b = make({kNaN, 2}, {2, 1}, DType::float32);  // broadcast: NaN fills a whole row
        REQUIRE_THAT(values(add(a, b)), AllClose(std::vector<double>{kNaN, kNaN, kNaN, 3, kNaN, 5}));
        REQUIRE_THAT(values(add(a, 1.0)), AllClose(std::vector<double>{2, kNaN, 4}));
        REQUIRE_THAT(values(mul(a, 0.0)), AllClose(std::vector<double>{0, kNaN, 0}));
        REQUIRE_THAT(values(exp(a)), AllClose(std::vector<double>{std::exp(1.0), kNaN, std::exp(3.0)}).rtol(kLibmRtol));
    }
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("elementwise argument errors name the op and the offending values", "[elementwise][errors]") {
    using Catch::Contains;
    const Tensor a = Tensor::ones({2, 3}), c = Tensor::ones({4});
    for (const BinaryCase& op : test::binary_cases()) {
        INFO(op.name);
        REQUIRE_THROWS_WITH(op.fn(a, c), Contains(std::string(op.name) + ": shapes (2, 3) and (4) do not broadcast"));
    }
    REQUIRE_THROWS_WITH(a + Tensor::ones({3, 2}), Contains("add") && Contains("(2, 3)") && Contains("(3, 2)"));
    REQUIRE_THROWS_WITH(add(a, Tensor::ones({2, 3}, DType::float64)),
                        Contains("add") && Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_WITH(mul(Tensor::ones({2}, DType::float64), Tensor::ones({2})),
                        Contains("mul") && Contains("float64") && Contains("float32"));
    REQUIRE_THROWS_WITH(exp(Tensor::ones({3}, DType::int32)), Contains("exp") && Contains("int32"));
    REQUIRE_THROWS_WITH(add(Tensor::ones({3}, DType::uint8), Tensor::ones({3}, DType::uint8)),
                        Contains("add") && Contains("uint8"));
    REQUIRE_THROWS_WITH(clamp(a, 0.75, -0.5), Contains("clamp") && Contains("0.75") && Contains("-0.5"));
    REQUIRE_THROWS_WITH(Tensor::ones({3}).add_(a), Contains("add_") && Contains("(2, 3)") && Contains("(3)"));
    REQUIRE_THROWS_WITH(Tensor::ones({3}).copy_(a), Contains("copy_") && Contains("(2, 3)") && Contains("(3)"));
    Tensor w = Tensor::ones({3}).requires_grad_();
    REQUIRE_THROWS_WITH(w.fill_(0), Contains("fill_") && Contains("requires grad"));
    REQUIRE_THROWS_WITH(w.mul_(2), Contains("mul_") && Contains("requires grad"));
}

// ---------------------------------------------------------------------------- abs, sigmoid, tanh
TEST_CASE("abs, sigmoid and tanh: known values, extremes, NaN", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const Tensor a = abs(make({-2, -0.0, 0, 3.5, -kInf, kNaN}, {6}, dt));
            REQUIRE_THAT(values(a), AllClose(std::vector<double>{2, 0, 0, 3.5, kInf, kNaN}));
            REQUIRE_FALSE(std::signbit(values(a)[1]));  // |-0| is +0
            // sigmoid: exact at 0 and at the infinities; both branches far out give 0 or 1 without NaN,
            // and the small tail keeps its relative accuracy (e^-30 / (1 + e^-30), not 1 - (1 - e^-30)).
            const double e30 = std::exp(-30.0);
            const Tensor sg = sigmoid(make({0, 1, -1, 30, -30, 1000, -1000, kInf, -kInf, kNaN}, {10}, dt));
            REQUIRE_THAT(values(sg),
                         AllClose(std::vector<double>{0.5, 1 / (1 + std::exp(-1.0)), 1 / (1 + std::exp(1.0)),
                                                      1 / (1 + e30), e30 / (1 + e30), 1, 0, 1, 0, kNaN})
                             .rtol(kLibmRtol));
            const Tensor th = tanh(make({0, 0.5, -0.5, 20, -20, kInf, -kInf, kNaN}, {8}, dt));
            REQUIRE_THAT(
                values(th),
                AllClose(std::vector<double>{0, std::tanh(0.5), -std::tanh(0.5), 1, -1, 1, -1, kNaN}).rtol(kLibmRtol));
        }
    }
}

TEST_CASE("abs gradient is sign(x), 0 at either zero and at NaN, and sigmoid and tanh gradients come from y",
          "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            Tensor x = make({-2, -0.0, 0, 1e-30, 3, kNaN}, {6}, dt).requires_grad_();
            abs(x).backward(make({10, 20, 30, 40, 50, 60}, {6}, dt));
            REQUIRE(values(x.grad()) == std::vector<double>{-10, 0, 0, 40, 50, 0});
            // sigmoid' = y (1 - y): 1/4 at 0, 0 at the infinities (no NaN from inf * 0).
            Tensor s = make({0, kInf, -kInf, -1000}, {4}, dt).requires_grad_();
            sum(sigmoid(s)).backward();
            REQUIRE(values(s.grad()) == std::vector<double>{0.25, 0, 0, 0});
            Tensor t = make({0, kInf, -kInf, 0.5}, {4}, dt).requires_grad_();
            sum(tanh(t)).backward();
            const double th = std::tanh(0.5);
            REQUIRE_THAT(values(t.grad()), AllClose(std::vector<double>{1, 0, 0, 1 - th * th}).rtol(kLibmRtol));
        }
    }
}

// ---------------------------------------------------------------------------- comparisons
TEST_CASE("comparisons: known values, broadcasting, NaN and signed zeros", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            // a (2, 3) against b (3): b broadcast over the rows.
            const Tensor a = make({1, 2, 3, kNaN, -0.0, 5}, {2, 3}, dt);
            const Tensor b = make({1, 0, 4}, {3}, dt);
            const std::vector<std::pair<Tensor, std::vector<double>>> expected = {
                {eq(a, b), {1, 0, 0, 0, 1, 0}},  // -0 == +0; NaN equals nothing
                {ne(a, b), {0, 1, 1, 1, 0, 1}},  // NaN != anything
                {lt(a, b), {0, 0, 1, 0, 0, 0}}, {le(a, b), {1, 0, 1, 0, 1, 0}},
                {gt(a, b), {0, 1, 0, 0, 0, 1}}, {ge(a, b), {1, 1, 0, 0, 1, 1}},
            };
            for (const auto& [m, v] : expected) {
                REQUIRE(m.dtype() == DType::uint8);
                REQUIRE(m.shape() == Shape{2, 3});
                REQUIRE(values(m) == v);
            }
            // Scalars, a strided view, and the other side of the broadcast.
            REQUIRE(values(gt(a.t(), 1.5)) == std::vector<double>{0, 0, 1, 0, 1, 1});
            REQUIRE(values(eq(make({0.1}, {1}, dt), 0.1)) == std::vector<double>{1});  // the scalar in a's dtype
            REQUIRE(values(le(b, a)) == values(ge(a, b)));
            REQUIRE(values(eq(make({1, 2}, {2, 1}, dt), make({1, 2, 3}, {3}, dt))) ==
                    std::vector<double>{1, 0, 0, 0, 1, 0});
        }
    }
}

TEST_CASE("comparisons of integer and mixed dtypes promote like PyTorch", "[elementwise][naive][omp]") {
    const Tensor i32 = Tensor::from_vector(std::vector<int32_t>{-1, 2, 300}, {3});
    const Tensor i64 = Tensor::from_vector(std::vector<int64_t>{-1, 3, int64_t(1) << 40}, {3});
    const Tensor u8 = Tensor::from_vector(std::vector<uint8_t>{255, 2, 44}, {3});
    const Tensor f32 = Tensor::from_vector(std::vector<float>{-1, 2.5f, 300}, {3});
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        REQUIRE(values(eq(i32, i64)) == std::vector<double>{1, 0, 0});  // in int64: 2^40 is not 300
        REQUIRE(values(lt(i32, i64)) == std::vector<double>{0, 1, 1});
        REQUIRE(values(eq(i32, u8)) == std::vector<double>{0, 1, 0});  // 255 stays 255 in int32
        REQUIRE(values(gt(u8, i32)) == std::vector<double>{1, 0, 0});
        REQUIRE(values(eq(i32, f32)) == std::vector<double>{1, 0, 1});  // in float32
        REQUIRE(values(lt(i32, f32)) == std::vector<double>{0, 1, 0});
        // argmax (int32) against int64 labels: the accuracy idiom.
        const Tensor logits = Tensor::from_vector(std::vector<float>{0, 3, 1, 5, 2, 0}, {2, 3});
        const Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 2}, {2});
        REQUIRE(values(eq(argmax(logits, 1), labels)) == std::vector<double>{1, 0});
        // Scalars: integral and in range stays in the tensor's dtype; otherwise float64.
        REQUIRE(values(eq(i32, 2.0)) == std::vector<double>{0, 1, 0});
        REQUIRE(values(lt(i32, 2.5)) == std::vector<double>{1, 1, 0});
        REQUIRE(values(eq(i32, 2.5)) == std::vector<double>{0, 0, 0});
        REQUIRE(values(lt(u8, 300.0)) == std::vector<double>{1, 1, 1});  // 300 does not wrap to 44
        REQUIRE(values(eq(u8, 300.0 - 256.0)) == std::vector<double>{0, 0, 1});
        REQUIRE(values(ge(i64, 1099511627776.0)) == std::vector<double>{0, 0, 1});
        REQUIRE(values(ne(u8, -1.0)) == std::vector<double>{1, 1, 1});  // -1 does not wrap to 255
    }
}

// ---------------------------------------------------------------------------- where
TEST_CASE("where: known values, broadcasting, scalar forms, any dtype", "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor c = Tensor::from_vector(std::vector<uint8_t>{1, 0, 7}, {3});  // 7 counts as true
        const Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3}, DType::float32);
        const Tensor b = make({-1, -2}, {2, 1}, DType::float32);
        REQUIRE(values(where(c, a, b)) == std::vector<double>{1, -1, 3, 4, -2, 6});
        REQUIRE(values(where(c, a, 0.5)) == std::vector<double>{1, 0.5, 3, 4, 0.5, 6});
        REQUIRE(values(where(c, 9.0, b)) == std::vector<double>{9, -1, 9, 9, -2, 9});
        REQUIRE(values(where(c.reshape({3, 1}), b.reshape({1, 2}), a.t())) ==
                std::vector<double>{-1, -2, 2, 5, -1, -2});
        // Integer operands and a mask from a comparison.
        const Tensor i = Tensor::from_vector(std::vector<int64_t>{5, -6, 7}, {3});
        REQUIRE(where(gt(i, 0.0), i, Tensor::zeros({}, DType::int64)).to_vector<int64_t>() ==
                std::vector<int64_t>{5, 0, 7});
        // The side not taken may hold inf or NaN: it is never read into the result.
        REQUIRE(values(where(c, make({1, kNaN, 3}, {3}, DType::float64), make({kInf, 2, kNaN}, {3}, DType::float64))) ==
                std::vector<double>{1, 2, 3});
    }
}

TEST_CASE("where gradient: dy to the side taken, exactly 0 to the other, summed over broadcast dims",
          "[elementwise][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor c = Tensor::from_vector(std::vector<uint8_t>{1, 0, 1, 0, 0, 1}, {2, 3});
        Tensor a = make({1, 2, 3}, {3}, DType::float64).requires_grad_();        // broadcast over rows
        Tensor b = make({kInf, kNaN}, {2, 1}, DType::float64).requires_grad_();  // over columns
        where(c, a, b).backward(make({1, 2, 4, 8, 16, 32}, {2, 3}, DType::float64));
        REQUIRE(values(a.grad()) == std::vector<double>{1, 0, 36});
        REQUIRE(values(b.grad()) == std::vector<double>{2, 24});
        // A mask computed from x itself: each element's gradient comes from the branch it took.
        Tensor x = make({4, -1}, {2}, DType::float64).requires_grad_();
        sum(where(gt(x, 0.0), x * 2.0, x * -3.0)).backward();
        REQUIRE(values(x.grad()) == std::vector<double>{2, -3});
    }
}

TEST_CASE("where: gradcheck with broadcasting in every operand", "[elementwise][gradcheck]") {
    const Tensor c = Tensor::from_vector(std::vector<uint8_t>{1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1}, {3, 1, 4});
    const Tensor a = leaf({2, 4}, 35), b = leaf({3, 2, 1}, 36);
    require_gradcheck("where(c, a, b)", [&](const std::vector<Tensor>& v) { return where(c, v[0], v[1]); }, {a, b});
    require_gradcheck("where(c, a * a, 2)", [&](const std::vector<Tensor>& v) { return where(c, v[0] * v[0], 2.0); },
                      {a});
    // A mask computed from the input itself: piecewise, away from the switch (|x| >= 0.5).
    require_gradcheck("where(x > 0, x^2, -x)",
                      [](const std::vector<Tensor>& v) { return where(gt(v[0], 0.0), v[0] * v[0], neg(v[0])); },
                      {leaf({4, 5}, 37, nonzero)});
}

TEST_CASE("comparison and where argument errors name the op and the values", "[elementwise][errors]") {
    using Catch::Contains;
    const Tensor a = Tensor::ones({2, 3}), c = Tensor::ones({4});
    for (const test::CompareCase& op : test::compare_cases()) {
        INFO(op.name);
        REQUIRE_THROWS_WITH(op.fn(a, c), Contains(std::string(op.name) + ": shapes (2, 3) and (4) do not broadcast"));
        REQUIRE_THROWS_WITH(op.fn(Tensor(), c), Contains(op.name) && Contains("undefined"));
        REQUIRE_THROWS_WITH(op.scalar_fn(Tensor(), 1.0), Contains(op.name) && Contains("undefined"));
    }
    const Tensor m = Tensor::ones({2, 3}, DType::uint8);
    REQUIRE_THROWS_WITH(where(Tensor::ones({2, 3}), a, a),
                        Contains("where") && Contains("uint8") && Contains("float32"));
    REQUIRE_THROWS_WITH(where(m, a, Tensor::ones({2, 3}, DType::float64)),
                        Contains("where") && Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_WITH(where(Tensor::ones({5}, DType::uint8), a, a),
                        Contains("where") && Contains("(5)") && Contains("(2, 3)"));
    REQUIRE_THROWS_WITH(where(m, a, c), Contains("where") && Contains("(2, 3)") && Contains("(4)"));
    REQUIRE_THROWS_WITH(where(Tensor(), a, a), Contains("where") && Contains("cond") && Contains("undefined"));
    REQUIRE_THROWS_WITH(abs(Tensor::ones({2}, DType::int64)), Contains("abs") && Contains("int64"));
    REQUIRE_THROWS_WITH(sigmoid(Tensor::ones({2}, DType::uint8)), Contains("sigmoid") && Contains("uint8"));
    REQUIRE_THROWS_WITH(tanh(Tensor()), Contains("tanh") && Contains("undefined"));
}
