// The thread contract on a GPU: two threads training two models at once (each with its own cuBLAS and cuDNN
// handles and workspaces, on the device's one stream) give the same bits as the same runs alone, in
// deterministic mode (where cuDNN's algorithms give the same bits run to run).
#include "support/catch.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"

using namespace dyad;

namespace {

struct GpuRun {
    std::vector<std::vector<float>> params;
    std::vector<float> losses;
};

// The baseline CNN at 16x16 (convolutions through cuDNN, linear layers through cuBLAS) trained for a few
// steps on the GPU from manual_seed(seed) on the calling thread, AdamW, dropout on the logits.
GpuRun train_gpu(uint64_t seed, int steps) {
    manual_seed(seed);
    auto model = models::baseline_cnn(5, 3, 16);
    model->to(Device::cuda());
    optim::AdamWOptions o;
    o.lr = 3e-3;
    optim::AdamW opt(optim::decay_groups(model->named_parameters(), 0.01), o);
    GpuRun r;
    for (int s = 0; s < steps; s++) {
        const Tensor x = Tensor::randn({8, 3, 16, 16}).to(Device::cuda());
        std::vector<int32_t> labels(8);
        for (size_t i = 0; i < labels.size(); i++) labels[i] = int32_t((3 * i + size_t(s) + seed) % 5);
        opt.zero_grad();
        const Tensor loss =
            cross_entropy(dropout(model(x), 0.2, true), Tensor::from_vector(labels, {8}, Device::cuda()));
        loss.backward();
        opt.step();
        r.losses.push_back(float(loss.item()));
    }
    for (const Tensor& p : model->parameters()) r.params.push_back(p.to(Device::cpu()).to_vector<float>());
    synchronize();
    return r;
}

}  // namespace

TEST_CASE("cuda: two models trained on two threads at once give the bits of the same runs alone", "[cuda][threads]") {
    const bool det = deterministic();
    set_deterministic(true);
    struct Restore {
        bool det;
        ~Restore() { set_deterministic(det); }
    } restore{det};
    const GpuRun a_alone = train_gpu(3, 5), b_alone = train_gpu(4, 5);
    REQUIRE_FALSE(test::same_bits(a_alone.losses, b_alone.losses));
    GpuRun a, b;
    std::thread ta([&] { a = train_gpu(3, 5); });
    std::thread tb([&] { b = train_gpu(4, 5); });
    ta.join();
    tb.join();
    REQUIRE(test::same_bits(a.losses, a_alone.losses));
    REQUIRE(test::same_bits(b.losses, b_alone.losses));
    for (size_t i = 0; i < a.params.size(); i++) {
        INFO("parameter " << i);
        REQUIRE(test::same_bits(a.params[i], a_alone.params[i]));
        REQUIRE(test::same_bits(b.params[i], b_alone.params[i]));
    }
}
