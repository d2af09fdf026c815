// The thread contract (docs/architecture.md): separate models on separate threads are safe and independent.
// Two threads training two models at once give the same bits as the same runs one after the other; each
// thread has its own random generator (initial weights, dropout masks), grad mode and CPU kernel override.
// scripts/tsan.sh runs these under ThreadSanitizer ("[threads]").
#include "support/catch.h"

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"

using namespace dyad;

namespace {

// A short training run seeded on the calling thread: a small CNN from manual_seed(seed), batches from the
// same generator, dropout on the logits (a draw per step), SGD with momentum. Returns every parameter's
// values after `steps` steps, and the losses.
struct RunResult {
    std::vector<std::vector<float>> params;
    std::vector<float> losses;
};

RunResult train(uint64_t seed, int steps, CpuKernels kernels) {
    CpuKernelsGuard kg(kernels);
    manual_seed(seed);
    auto model = models::baseline_cnn(4, 1, 8);
    optim::SgdOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    optim::Sgd opt(model->named_parameters(), o);
    RunResult r;
    for (int s = 0; s < steps; s++) {
        const Tensor x = Tensor::randn({6, 1, 8, 8});
        std::vector<int32_t> labels(6);
        for (size_t i = 0; i < labels.size(); i++) labels[i] = int32_t((i + size_t(s) + seed) % 4);
        opt.zero_grad();
        const Tensor logits = dropout(model(x), 0.25, true);
        const Tensor loss = cross_entropy(logits, Tensor::from_vector(labels, {6}));
        loss.backward();
        opt.step();
        r.losses.push_back(float(loss.item()));
    }
    for (const Tensor& p : model->parameters()) r.params.push_back(p.to_vector<float>());
    return r;
}

void require_same(const RunResult& a, const RunResult& b) {
    REQUIRE(test::same_bits(a.losses, b.losses));
    REQUIRE(a.params.size() == b.params.size());
    for (size_t i = 0; i < a.params.size(); i++) {
        INFO("parameter " << i);
        REQUIRE(test::same_bits(a.params[i], b.params[i]));
    }
}

}  // namespace

TEST_CASE("two models trained on two threads at once give the bits of the same runs alone", "[threads]") {
    // Alone, one after the other; then the same two runs concurrently (one on the naive kernels, so a
    // thread's kernel override is its own too).
    const RunResult a_alone = train(11, 6, CpuKernels::omp), b_alone = train(22, 6, CpuKernels::naive);
    REQUIRE_FALSE(test::same_bits(a_alone.losses, b_alone.losses));  // two different runs
    for (int round = 0; round < 2; round++) {
        INFO("round " << round);
        RunResult a, b;
        std::thread ta([&] { a = train(11, 6, CpuKernels::omp); });
        std::thread tb([&] { b = train(22, 6, CpuKernels::naive); });
        ta.join();
        tb.join();
        require_same(a, a_alone);
        require_same(b, b_alone);
    }
}

TEST_CASE("each thread has its own generator, grad mode and kernel override", "[threads]") {
    manual_seed(5);
    const std::vector<float> want = Tensor::randn({8}).to_vector<float>();
    manual_seed(5);
    // Another thread seeds and draws meanwhile: this thread's stream does not move.
    std::vector<float> other;
    std::thread t([&] {
        manual_seed(99);
        other = Tensor::randn({8}).to_vector<float>();
        // A fresh thread starts from the default seed whatever other threads did.
    });
    t.join();
    REQUIRE(Tensor::randn({8}).to_vector<float>() == want);
    REQUIRE(other != want);

    std::vector<float> first, second;
    std::thread t1([&] { first = Tensor::randn({4}).to_vector<float>(); });
    t1.join();
    std::thread t2([&] { second = Tensor::randn({4}).to_vector<float>(); });
    t2.join();
    REQUIRE(first == second);

    NoGradGuard ng;
    CpuKernelsGuard kg(CpuKernels::naive);
    bool grad_there = false;
    CpuKernels kernels_there = CpuKernels::naive;
    std::thread t3([&] {
        grad_there = is_grad_enabled();
        kernels_there = cpu_kernels();
    });
    t3.join();
    REQUIRE(grad_there);                          // grad mode is per thread
    REQUIRE(kernels_there == CpuKernels::omp);    // the guard is this thread's
    REQUIRE(cpu_kernels() == CpuKernels::naive);  // and still holds here
}
