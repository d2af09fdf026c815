// The models end to end: a backward pass through resnet18_small reaches every parameter, the baseline
// CNN in other sizes, batch-norm bookkeeping through a whole ResNet, and the errors bad inputs give.
#include "support/catch.h"

#include <cmath>
#include <string>
#include <vector>

#include "dyad/dyad.h"

using namespace dyad;
using Catch::Contains;

namespace {

Tensor random_labels(int64_t n, int64_t classes) {
    const std::vector<float> u = Tensor::rand({n}).to_vector<float>();
    std::vector<int32_t> labels;
    for (float v : u) labels.push_back(int32_t(v * float(classes)));
    return Tensor::from_vector(labels, {n});
}

}  // namespace

TEST_CASE("resnet18_small backward at 16x16 gives every parameter a gradient", "[models]") {
    manual_seed(21);
    auto m = models::resnet18_small(10);
    // 16 -> layer2 8 -> layer3 4 -> layer4 2 -> avgpool 1.
    const Tensor x = Tensor::randn({2, 3, 16, 16});
    const Tensor logits = (*m)(x);
    REQUIRE(logits.shape() == Shape{2, 10});
    Tensor loss = cross_entropy(logits, random_labels(2, 10));
    REQUIRE(std::isfinite(loss.item()));
    loss.backward();
    int64_t checked = 0;
    for (const auto& [name, p] : m->named_parameters()) {
        INFO(name);
        const Tensor g = p.grad();
        REQUIRE(g.defined());
        REQUIRE(g.shape() == p.shape());
        REQUIRE(all_finite(g));
        REQUIRE(max(g * g).item() > 0);
        checked++;
    }
    REQUIRE(checked == 62);
    // Buffers never get gradients; one training forward was counted by every batch norm.
    for (const auto& [name, b] : m->named_buffers()) {
        REQUIRE_FALSE(b.requires_grad());
        if (name.find("num_batches_tracked") != std::string::npos) REQUIRE(b.item() == 1);
    }
}

TEST_CASE("resnet18_small eval mode is deterministic and uses running statistics", "[models]") {
    manual_seed(22);
    auto m = models::resnet18_small(5, 1);
    const Tensor x = Tensor::randn({2, 1, 8, 8});  // 8 -> 4 -> 2 -> 1 -> avgpool 1
    (void)(*m)(x);                                 // training: updates the running statistics
    m->eval();
    NoGradGuard ng;
    const std::vector<float> a = (*m)(x).to_vector<float>();
    const std::vector<float> b = (*m)(x).to_vector<float>();
    REQUIRE(a == b);
    // Per-sample in eval: the first sample alone gives the same logits.
    const std::vector<float> first = (*m)(x.slice(0, 0, 1)).to_vector<float>();
    for (size_t i = 0; i < first.size(); i++) REQUIRE(first[i] == Approx(a[i]).margin(1e-5));
}

TEST_CASE("baseline_cnn with image_size 32 and one channel", "[models]") {
    manual_seed(23);
    auto m = models::baseline_cnn(7, 1, 32);
    const Tensor x = Tensor::randn({3, 1, 32, 32});
    const Tensor logits = (*m)(x);
    REQUIRE(logits.shape() == Shape{3, 7});
    Tensor loss = cross_entropy(logits, random_labels(3, 7));
    loss.backward();
    for (const auto& [name, p] : m->named_parameters()) {
        INFO(name);
        REQUIRE(p.grad().defined());
        REQUIRE(p.grad().shape() == p.shape());
    }
    // The functional ops on the same weights give the same logits.
    const nn::NamedTensors w = m->state_dict();
    NoGradGuard ng;
    Tensor h = max_pool2d(relu(conv2d(x, w[0].second, w[1].second, 1, 1)), 2);
    h = max_pool2d(relu(conv2d(h, w[2].second, w[3].second, 1, 1)), 2);
    h = max_pool2d(relu(conv2d(h, w[4].second, w[5].second, 1, 1)), 2);
    h = linear(relu(linear(flatten(h, 1), w[6].second, w[7].second)), w[8].second, w[9].second);
    REQUIRE(h.to_vector<float>() == logits.detach().to_vector<float>());
}

TEST_CASE("models reject bad inputs with the op's shapes", "[models][errors]") {
    auto m = models::baseline_cnn();  // 3 channels, 64x64
    REQUIRE_THROWS_WITH((*m)(Tensor::zeros({1, 1, 64, 64})),
                        Contains("conv2d") && Contains("(1, 1, 64, 64)") && Contains("(32, 3, 3, 3)"));
    REQUIRE_THROWS_WITH((*m)(Tensor::zeros({3, 64, 64})), Contains("conv2d") && Contains("(3, 64, 64)"));
    // A 32x32 image reaches the first linear layer with 128 * 4 * 4 features instead of 8192.
    REQUIRE_THROWS_WITH((*m)(Tensor::zeros({1, 3, 32, 32})), Contains("2048") && Contains("8192"));
    auto r = models::resnet18_small(10);
    REQUIRE_THROWS_WITH((*r)(Tensor::zeros({1, 4, 16, 16})), Contains("conv2d") && Contains("(64, 3, 3, 3)"));
    REQUIRE_THROWS_WITH(models::resnet18_small(0), Contains("resnet18_small"));
}
