// linear on the CPU kernel sets: hand-checked values, agreement with the composite matmul(x, w.t()) + b
// (outputs and gradients) on odd shapes, 1-D and 3-D inputs, a transposed weight view, gradient
// accumulation, float64 gradient checks and argument errors. Parity of every kernel set with naive on the
// reference CNN's classifier shapes: tests/ops/linear.cpp.
#include "support/catch.h"

#include <cmath>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::values;

namespace {

const CpuKernels kBothSets[] = {CpuKernels::naive, CpuKernels::omp};

// The test_gemm tolerance: rtol 1e-5, atol 1e-6 * sqrt(k) for float32 dot products of length k (the
// summation orders differ, and rounding errors grow like a random walk).
double gemm_atol(int64_t k) { return 1e-6 * std::sqrt(double(std::max<int64_t>(k, 1))); }

struct Grads {
    Tensor y, dx, dw, db;
};

// Output and gradients of f(x, w, b) for the upstream gradient dy.
template <typename F>
Grads run(F f, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy) {
    Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_();
    Tensor bl = b.defined() ? b.detach().requires_grad_() : Tensor();
    Grads g;
    g.y = f(xl, wl, bl);
    g.y.backward(dy);
    g.dx = xl.grad(), g.dw = wl.grad();
    if (b.defined()) g.db = bl.grad();
    return g;
}

Tensor composite(const Tensor& x, const Tensor& w, const Tensor& b) {
    const Tensor y = matmul(x.reshape({-1, x.size(-1)}), w.t());
    Shape shape = x.shape();
    shape.back() = w.size(0);
    return (b.defined() ? y + b : y).reshape(shape);
}

Tensor fused(const Tensor& x, const Tensor& w, const Tensor& b) { return linear(x, w, b); }

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("linear of hand-checked tensors, values and gradients", "[linear][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, -1, 0, 2}, {2, 3}).to(dt).requires_grad_();
            Tensor w = Tensor::from_vector(std::vector<double>{1, 0, -1, 2, 1, 0.5}, {2, 3}).to(dt).requires_grad_();
            Tensor b = Tensor::from_vector(std::vector<double>{10, -10}, {2}).to(dt).requires_grad_();
            Tensor y = linear(x, w, b);
            REQUIRE(y.shape() == Shape{2, 2});
            REQUIRE(y.dtype() == dt);
            // rows: x0 . w0 = -2, x0 . w1 = 5.5, x1 . w0 = -3, x1 . w1 = -1
            REQUIRE(values(y) == std::vector<double>{8, -4.5, 7, -11});
            REQUIRE(values(linear(x, w)) == std::vector<double>{-2, 5.5, -3, -1});
            y.backward(Tensor::from_vector(std::vector<double>{1, 2, -1, 3}, {2, 2}).to(dt));
            // dx = dy W, dW = dy^T x, db = column sums of dy
            REQUIRE(values(x.grad()) == std::vector<double>{5, 2, 0, 5, 3, 2.5});
            REQUIRE(values(w.grad()) == std::vector<double>{2, 2, 1, -1, 4, 12});
            REQUIRE(values(b.grad()) == std::vector<double>{0, 5});

            // 1-D input: one sample.
            const Tensor y1 = linear(Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).to(dt), w, b);
            REQUIRE(y1.shape() == Shape{2});
            REQUIRE(values(y1) == std::vector<double>{8, -4.5});
        }
    }
}

// ---------------------------------------------------------------------------- composite and parity
TEST_CASE("linear equals matmul(x, w.t()) + b, outputs and gradients", "[linear][naive][omp]") {
    struct Case {
        Shape x;
        int64_t out;
        bool bias;
    };
    const Case cases[] = {
        {{1, 1}, 1, true},    {{3, 5}, 7, true},       {{7, 5}, 3, false},    {{17, 33}, 9, true},
        {{2, 3, 5}, 4, true}, {{3, 1, 17}, 33, false}, {{65, 129}, 31, true}, {{64, 256}, 200, true},
    };
    uint64_t seed = 10;
    for (const Case& c : cases) {
        for (CpuKernels k : kBothSets) {
            CpuKernelsGuard guard(k);
            const int64_t in = c.x.back();
            INFO(cpu_kernels_name(k) << " x " << shape_str(c.x) << " out " << c.out << " bias " << c.bias);
            const Tensor x = test::random_tensor(c.x, seed);
            const Tensor w = test::random_tensor({c.out, in}, seed + 1);
            const Tensor b = c.bias ? test::random_tensor({c.out}, seed + 2) : Tensor();
            Shape ys = c.x;
            ys.back() = c.out;
            const Tensor dy = test::random_tensor(ys, seed + 3);
            const Grads f = run(fused, x, w, b, dy), e = run(composite, x, w, b, dy);
            REQUIRE(f.y.shape() == ys);
            const int64_t rows = shape_numel(c.x) / in;
            REQUIRE_THAT(values(f.y), AllClose(values(e.y)).rtol(1e-5).atol(gemm_atol(in)));
            REQUIRE_THAT(values(f.dx), AllClose(values(e.dx)).rtol(1e-5).atol(gemm_atol(c.out)));
            REQUIRE_THAT(values(f.dw), AllClose(values(e.dw)).rtol(1e-5).atol(gemm_atol(rows)));
            if (c.bias) REQUIRE_THAT(values(f.db), AllClose(values(e.db)).rtol(1e-5).atol(gemm_atol(rows)));
        }
        seed += 4;
    }
}

TEST_CASE("linear with a 3-D input equals linear of the flattened rows", "[linear][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor x = test::random_tensor({2, 3, 5}, 30), w = test::random_tensor({4, 5}, 31);
        const Tensor b = test::random_tensor({4}, 32), dy = test::random_tensor({2, 3, 4}, 33);
        const Grads g3 = run(fused, x, w, b, dy);
        const Grads g2 = run(fused, x.reshape({6, 5}), w, b, dy.reshape({6, 4}));
        REQUIRE(g3.y.shape() == Shape{2, 3, 4});
        REQUIRE(g3.dx.shape() == Shape{2, 3, 5});
        REQUIRE(values(g3.y) == values(g2.y));
        REQUIRE(values(g3.dx) == values(g2.dx));
        REQUIRE(values(g3.dw) == values(g2.dw));
        REQUIRE(values(g3.db) == values(g2.db));
    }
}

TEST_CASE("linear reads a transposed weight view and a strided x as they are", "[linear][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor x = test::random_tensor({7, 9}, 40), b = test::random_tensor({5}, 41);
        const Tensor w = test::random_tensor({5, 9}, 42), dy = test::random_tensor({7, 5}, 43);
        const Tensor wt = w.t().contiguous().t();  // (5, 9) stored column-major
        const Tensor xs = test::random_tensor({7, 9}, 40, test::Layout::strided);
        REQUIRE(!wt.is_contiguous());
        const Grads ref = run(fused, x, w, b, dy);
        for (const auto& pair : {std::make_pair(x, wt), std::make_pair(xs, w), std::make_pair(xs, wt)}) {
            const Grads g = run(fused, pair.first, pair.second, b, dy);
            REQUIRE_THAT(values(g.y), AllClose(values(ref.y)).rtol(1e-6).atol(1e-6));
            REQUIRE_THAT(values(g.dx), AllClose(values(ref.dx)).rtol(1e-6).atol(1e-6));
            REQUIRE_THAT(values(g.dw), AllClose(values(ref.dw)).rtol(1e-6).atol(1e-6));
            REQUIRE_THAT(values(g.db), AllClose(values(ref.db)).rtol(1e-6).atol(1e-6));
        }
    }
}

TEST_CASE("linear gradients accumulate across uses and backward calls", "[linear][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        Tensor x = test::random_tensor({4, 6}, 50).requires_grad_();
        Tensor w = test::random_tensor({3, 6}, 51).requires_grad_();
        Tensor b = test::random_tensor({3}, 52).requires_grad_();
        sum(linear(x, w, b)).backward();
        const std::vector<double> dx1 = values(x.grad()), dw1 = values(w.grad()), db1 = values(b.grad());
        // Twice in one graph, then once more: three times the single gradient.
        sum(linear(x, w, b) + linear(x, w, b)).backward();
        std::vector<double> e;
        for (double v : dx1) e.push_back(3 * v);
        REQUIRE_THAT(values(x.grad()), AllClose(e).rtol(1e-5).atol(1e-5));
        e.clear();
        for (double v : dw1) e.push_back(3 * v);
        REQUIRE_THAT(values(w.grad()), AllClose(e).rtol(1e-5).atol(1e-5));
        REQUIRE(values(b.grad()) == std::vector<double>{3 * db1[0], 3 * db1[1], 3 * db1[2]});
        REQUIRE(db1 == std::vector<double>{4, 4, 4});
    }
}

TEST_CASE("linear with an empty batch or zero in_features", "[linear][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor b = Tensor::from_vector(std::vector<float>{1, 2}, {2});
        Tensor x = Tensor::zeros({0, 3}).requires_grad_();
        Tensor w = Tensor::ones({2, 3}).requires_grad_();
        const Tensor y = linear(x, w, b);
        REQUIRE(y.shape() == Shape{0, 2});
        sum(y).backward();
        REQUIRE(values(w.grad()) == std::vector<double>(6, 0.0));
        // No input features: the output is the bias (or zeros).
        REQUIRE(values(linear(Tensor::zeros({3, 0}), Tensor::zeros({2, 0}), b)) ==
                std::vector<double>{1, 2, 1, 2, 1, 2});
        REQUIRE(values(linear(Tensor::zeros({3, 0}), Tensor::zeros({2, 0}))) == std::vector<double>(6, 0.0));
    }
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("linear gradients (float64)", "[linear][gradcheck]") {
    const DType f64 = DType::float64;
    const Tensor w = test::random_tensor({4, 5}, 60, test::Layout::contiguous, f64).requires_grad_();
    const Tensor b = test::random_tensor({4}, 61, test::Layout::contiguous, f64).requires_grad_();
    for (const Shape& xs : {Shape{5}, Shape{3, 5}, Shape{2, 3, 5}}) {
        INFO("x " << shape_str(xs));
        const Tensor x = test::random_tensor(xs, 62, test::Layout::contiguous, f64).requires_grad_();
        GradcheckResult r = gradcheck([](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); }, {x, w, b});
        INFO("with bias: " << r.report);
        REQUIRE(r.ok);
        r = gradcheck([](const std::vector<Tensor>& v) { return linear(v[0], v[1]); }, {x, w});
        INFO("without bias: " << r.report);
        REQUIRE(r.ok);
    }
    // A transposed weight view and a two-layer composition.
    const Tensor x = test::random_tensor({3, 5}, 63, test::Layout::contiguous, f64).requires_grad_();
    const Tensor w2 = test::random_tensor({2, 4}, 64, test::Layout::contiguous, f64).requires_grad_();
    const GradcheckResult r = gradcheck(
        [](const std::vector<Tensor>& v) { return linear(relu(linear(v[0], v[1].t().contiguous().t(), v[2])), v[3]); },
        {x, w, b, w2});
    INFO(r.report);
    REQUIRE(r.ok);
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("linear argument errors name the op and the shapes", "[linear][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({2, 3}), w = Tensor::zeros({4, 3});
    REQUIRE_THROWS_WITH(linear(Tensor::full({}, 1.0), w),
                        Contains("linear") && Contains("at least 1 dim") && Contains("()"));
    REQUIRE_THROWS_WITH(linear(Tensor::zeros({2, 5}), w),
                        Contains("linear") && Contains("mismatch") && Contains("(2, 5)") && Contains("(4, 3)"));
    REQUIRE_THROWS_WITH(linear(x, w, Tensor::zeros({3})),
                        Contains("linear") && Contains("bias must have shape (4)") && Contains("(3)"));
    REQUIRE_THROWS_WITH(linear(x, w, Tensor::zeros({1, 4})), Contains("bias") && Contains("(1, 4)"));
    REQUIRE_THROWS_WITH(linear(x, Tensor::zeros({3})), Contains("linear") && Contains("2-D") && Contains("(3)"));
    REQUIRE_THROWS_WITH(linear(x, Tensor::zeros({4, 3}, DType::float64)),
                        Contains("linear") && Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_WITH(linear(Tensor::zeros({2, 3}, DType::int32), Tensor::zeros({4, 3}, DType::int32)),
                        Contains("linear") && Contains("int32"));
    REQUIRE_THROWS_WITH(linear(Tensor(), w), Contains("linear") && Contains("undefined"));
}
