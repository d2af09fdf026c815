// CapturedStep where no graph is captured: CPU inputs and enabled == false run the step as it is (the same
// bits as calling it directly), argument checks, and Sgd::add_replayed_steps. The GPU side is in
// tests/cuda/test_capture.cpp.
#include "support/catch.h"

#include <memory>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"

using namespace dyad;

namespace {

// One SGD step of `model` on (inputs[0], inputs[1]); returns the loss.
CapturedStep::Fn training_step(const std::shared_ptr<nn::Sequential>& model, optim::Sgd& opt) {
    return [model, &opt](const std::vector<Tensor>& in) {
        opt.zero_grad();
        Tensor loss = cross_entropy((*model)(in[0]), in[1]);
        loss.backward();
        opt.step();
        return std::vector<Tensor>{loss};
    };
}

const optim::SgdOptions kSgd{0.05, 0.9, 0.0, 5e-4, false, false};

}  // namespace

TEST_CASE("CapturedStep on the CPU runs the step as it is, bit for bit", "[capture]") {
    manual_seed(1);
    std::vector<Tensor> xs, ys;
    for (int s = 0; s < 4; s++) {
        xs.push_back(Tensor::randn({4, 3, 16, 16}));
        ys.push_back(Tensor::from_vector(std::vector<int32_t>{s % 10, 7, 2, 9 - s}, {4}));
    }
    manual_seed(7);
    const auto direct_model = models::baseline_cnn(10, 3, 16);
    manual_seed(7);
    const auto captured_model = models::baseline_cnn(10, 3, 16);
    optim::Sgd direct_opt(direct_model->named_parameters(), kSgd);
    optim::Sgd captured_opt(captured_model->named_parameters(), kSgd);
    const CapturedStep::Fn direct = training_step(direct_model, direct_opt);
    CapturedStep captured(training_step(captured_model, captured_opt));

    std::vector<double> losses;
    for (size_t s = 0; s < xs.size(); s++) {
        INFO("step " << s);
        const Tensor a = direct({xs[s], ys[s]})[0];
        const Tensor b = captured({xs[s], ys[s]})[0];
        REQUIRE_FALSE(captured.last_replayed());
        REQUIRE(b.device() == Device::cpu());
        test::require_identical(a, b);
        losses.push_back(b.item());
    }
    // The steps did something, and both models took the same ones.
    REQUIRE(losses.back() != losses.front());
    const nn::NamedTensors pa = direct_model->named_parameters(), pb = captured_model->named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); i++) {
        INFO(pa[i].first);
        test::require_identical(pa[i].second, pb[i].second);
    }
    REQUIRE(captured.captures() == 0);
    REQUIRE(captured.replays() == 0);
    REQUIRE(captured.fallback_reason().empty());
    REQUIRE(captured_opt.step_count() == int64_t(xs.size()));
    REQUIRE(captured_opt.step_count() == direct_opt.step_count());
}

TEST_CASE("CapturedStep passes calls through when disabled, with no inputs, and returns the step's tensors",
          "[capture]") {
    int calls = 0;
    Tensor last;
    CapturedStep::Fn fn = [&](const std::vector<Tensor>& in) {
        calls++;
        last = in.empty() ? Tensor::zeros({}) : in[0] * 2.0;
        return std::vector<Tensor>{last};
    };
    CaptureOptions off;
    off.enabled = false;
    CapturedStep disabled(fn, off);
    const Tensor x = Tensor::from_vector(std::vector<float>{1.0f, -2.5f}, {2});
    for (int i = 0; i < 5; i++) {
        const Tensor y = disabled({x}, uint64_t(i % 2))[0];
        REQUIRE(y.is_same(last));  // the step's own tensor, not a copy
        REQUIRE_FALSE(disabled.last_replayed());
    }
    REQUIRE(calls == 5);
    REQUIRE(test::values(last) == std::vector<double>{2.0, -5.0});
    REQUIRE(disabled.captures() == 0);
    REQUIRE(disabled.replays() == 0);

    CapturedStep enabled(fn);
    const Tensor z = enabled({})[0];
    REQUIRE(calls == 6);
    REQUIRE(z.is_same(last));
    enabled.reset();  // nothing to drop: still callable
    REQUIRE(enabled({x})[0].is_same(last));
    REQUIRE(calls == 7);
}

TEST_CASE("CapturedStep checks its options and inputs", "[capture]") {
    int calls = 0;
    CapturedStep::Fn fn = [&](const std::vector<Tensor>& in) {
        calls++;
        return std::vector<Tensor>{in[0]};
    };
    CaptureOptions no_warmup;
    no_warmup.warmup = 0;
    REQUIRE_THROWS_WITH(CapturedStep(fn, no_warmup), Catch::Contains("warmup must be at least 1"));
    CaptureOptions no_graphs;
    no_graphs.max_graphs = 0;
    REQUIRE_THROWS_WITH(CapturedStep(fn, no_graphs), Catch::Contains("max_graphs"));
    REQUIRE_THROWS_WITH(CapturedStep(CapturedStep::Fn{}), Catch::Contains("empty"));

    CapturedStep step(fn);
    REQUIRE_THROWS_WITH(step({Tensor::zeros({2}), Tensor()}), Catch::Contains("input 1 is an undefined tensor"));
    REQUIRE(calls == 0);
}

TEST_CASE("CapturedStep refuses inputs on two devices", "[capture]") {
    if (!cuda_available()) {
        WARN("skipped: needs a CUDA build with a usable GPU");
        return;
    }
    int calls = 0;
    CapturedStep step([&](const std::vector<Tensor>& in) {
        calls++;
        return std::vector<Tensor>{in[0]};
    });
    const Tensor host = Tensor::zeros({2});
    const Tensor gpu = Tensor::zeros({2}, DType::float32, Device::cuda());
    REQUIRE_THROWS_WITH(step({host, gpu}), Catch::Contains("one device") && Catch::Contains("cuda:0"));
    REQUIRE_THROWS_WITH(step({gpu, host}), Catch::Contains("one device") && Catch::Contains("cpu"));
    REQUIRE(calls == 0);
    REQUIRE(step.captures() == 0);
}

TEST_CASE("Sgd::add_replayed_steps adds to the step count", "[capture]") {
    Tensor w = Tensor::ones({3});
    w.requires_grad_();
    optim::Sgd opt(std::vector<Tensor>{w}, kSgd);
    REQUIRE(opt.step_count() == 0);
    opt.add_replayed_steps(3);
    REQUIRE(opt.step_count() == 3);
    // A real step counts as before, on top of the replayed ones.
    sum(w * w).backward();
    opt.step();
    REQUIRE(opt.step_count() == 4);
    opt.add_replayed_steps(0);
    REQUIRE(opt.step_count() == 4);
    REQUIRE_THROWS_WITH(opt.add_replayed_steps(-1), Catch::Contains("negative"));
    REQUIRE(opt.step_count() == 4);
    // The count is what checkpoints save.
    opt.load_state_dict(opt.state_dict(), opt.step_count() + 2);
    REQUIRE(opt.step_count() == 6);
}
