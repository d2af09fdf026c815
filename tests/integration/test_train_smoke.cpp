// End to end on the CPU: a two-layer perceptron trained by SGD with autograd learns a toy problem, on
// both CPU kernel sets, in well under a second; and a CNN training step reuses cached host memory.
#include "support/catch.h"

#include <cstdint>
#include <vector>

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

TEST_CASE("after its first step a CPU training step takes every large block from the host cache", "[integration]") {
    // The baseline CNN at batch 8, 64x64x3: every activation and gradient of the three conv stages is over
    // the cache's 256 KiB threshold. From the second step on, each such request must be a cache hit: no
    // page faults or zeroing of fresh memory inside a step.
    manual_seed(3);
    auto model = models::baseline_cnn(200, 3, 64);
    optim::SgdOptions o;
    o.lr = 0.01;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    optim::Sgd sgd(model->named_parameters(), o);
    const Tensor x = Tensor::randn({8, 3, 64, 64});
    const Tensor y = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}, {8});
    auto step = [&] {
        sgd.zero_grad();
        Tensor loss = cross_entropy((*model)(x), y);
        loss.backward();
        sgd.step();
        return loss.item();
    };
    step();
    step();  // the momentum buffers exist from the first step on; the second settles the cache
    const HostCacheStats before = host_cache_stats();
    for (int i = 0; i < 3; i++) step();
    const HostCacheStats after = host_cache_stats();
    CHECK(after.misses == before.misses);
    CHECK(after.hits > before.hits + 3 * 10);  // at least ten large blocks per step
}
