// End to end on the CPU: a two-layer perceptron trained by SGD with autograd learns a toy problem, on
// both CPU kernel sets, in well under a second.
#include <catch2/catch.hpp>

#include "dyad/dyad.h"

using namespace dyad;

// Returns (first loss, last loss, accuracy) after `steps` full-batch SGD steps.
static std::tuple<double, double, double> train(CpuKernels kernels, int steps) {
    CpuKernelsGuard guard(kernels);
    manual_seed(5);
    const int64_t n = 200;
    // Two classes: points inside / outside a circle of radius 1 (not linearly separable).
    Tensor x = Tensor::rand({n, 2}) * 4.0 - 2.0;
    Tensor r2 = sum(x * x, {1}, true);
    Tensor y = clamp((1.0 - r2) * 1e6, 0.0, 1.0);  // 1 inside, 0 outside
    Tensor w1 = (Tensor::randn({2, 32}) * 0.7).requires_grad_();
    Tensor b1 = Tensor::zeros({32}).requires_grad_();
    Tensor w2 = (Tensor::randn({32, 1}) * 0.3).requires_grad_();
    Tensor b2 = Tensor::zeros({1}).requires_grad_();
    double first = 0, last = 0;
    Tensor out;
    for (int s = 0; s < steps; s++) {
        out = matmul(relu(matmul(x, w1) + b1), w2) + b2;
        Tensor loss = mean(pow(out - y, 2.0));
        zero_grad({w1, b1, w2, b2});
        loss.backward();
        NoGradGuard ng;
        for (Tensor p : {w1, b1, w2, b2}) p.add_(p.grad(), -0.1);
        (s == 0 ? first : last) = loss.item();
    }
    NoGradGuard ng;
    const double acc = mean(clamp((out - 0.5) * (y - 0.5) * 1e6, 0.0, 1.0)).item();
    return {first, last, acc};
}

TEST_CASE("a small MLP learns on the CPU with both kernel sets", "[integration]") {
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        INFO(cpu_kernels_name(k));
        const auto [first, last, acc] = train(k, 300);
        REQUIRE(last < first * 0.5);
        REQUIRE(acc > 0.85);
    }
    // Both kernel sets train the same model to nearly the same loss (only summation order differs).
    const auto [f1, l1, a1] = train(CpuKernels::naive, 50);
    const auto [f2, l2, a2] = train(CpuKernels::omp, 50);
    REQUIRE(f1 == Approx(f2).epsilon(1e-5));
    REQUIRE(l1 == Approx(l2).epsilon(1e-3));
}
