// Captured training steps on a GPU: each test trains a model through CapturedStep and a twin from the same
// weights with the same step called directly, and requires the same bits (losses, parameters, gradients,
// batch-norm statistics) in deterministic mode, where both run the same cuDNN algorithms in the same order.
// Also: replays neither wait for the GPU nor grow memory, keys (batch size, version) get their own graphs,
// the least recently used graph is dropped, and steps a graph cannot reproduce (item(), dropout, a cuDNN
// search) fall back to eager calls with the reason.
#include "support/catch.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "gpu.h"
#include "support/compare.h"

using namespace dyad;
using test::cpu;

// Why the step fell back to eager calls, reported with any assertion that fails after it in the same scope,
// so a first run on a new GPU explains an unexpected fallback ("none" while nothing fell back).
#define INFO_FALLBACK(step) \
    INFO("capture fallback: " << ((step).fallback_reason().empty() ? std::string("none") : (step).fallback_reason()))

namespace {

const optim::SgdOptions kSgd{0.02, 0.9, 0.0, 5e-4, false, false};

// Deterministic cuDNN algorithms for the test, restored to the default after it (also on failure).
struct DeterministicScope {
    explicit DeterministicScope(bool on = true) { set_deterministic(on); }
    ~DeterministicScope() { set_deterministic(false); }
};

struct Batches {
    std::vector<Tensor> xs, ys;  // on the GPU
};

Batches batches(uint64_t seed, int count, int64_t n, int64_t size, int32_t classes) {
    manual_seed(seed);
    Batches b;
    for (int s = 0; s < count; s++) {
        b.xs.push_back(Tensor::randn({n, 3, size, size}).to(Device::cuda()));
        std::vector<int32_t> labels(static_cast<size_t>(n));
        for (size_t i = 0; i < labels.size(); i++) labels[i] = int32_t((7 * i + 3 * size_t(s) + 1) % size_t(classes));
        b.ys.push_back(Tensor::from_vector(labels, {n}, Device::cuda()));
    }
    return b;
}

std::shared_ptr<nn::Module> on_gpu(std::shared_ptr<nn::Module> m) {
    m->to(Device::cuda());
    m->train();
    return m;
}

std::shared_ptr<nn::Module> cnn(uint64_t seed, int64_t image_size = 32) {
    manual_seed(seed);
    return on_gpu(models::baseline_cnn(10, 3, image_size));
}

// One SGD step on (inputs[0], inputs[1]) returning the loss; with dropout_p > 0 the logits go through
// dropout first.
CapturedStep::Fn sgd_step(const std::shared_ptr<nn::Module>& model, optim::Sgd& opt, double dropout_p = 0.0) {
    return [model, &opt, dropout_p](const std::vector<Tensor>& in) {
        opt.zero_grad();
        Tensor logits = (*model)(in[0]);
        if (dropout_p > 0.0) logits = dropout(logits, dropout_p, true);
        Tensor loss = cross_entropy(logits, in[1]);
        loss.backward();
        opt.step();
        return std::vector<Tensor>{loss};
    };
}

// Parameters and buffers (running statistics, batch counters), bit for bit.
void require_same_state(const nn::Module& want, const nn::Module& got) {
    const nn::NamedTensors a = want.state_dict(), b = got.state_dict();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); i++) {
        INFO(a[i].first);
        REQUIRE(a[i].first == b[i].first);
        test::require_identical(cpu(a[i].second), cpu(b[i].second));
    }
}

}  // namespace

TEST_CASE("a captured baseline CNN step replays bit for bit what eager steps compute", "[cuda][capture]") {
    DeterministicScope det;
    const Batches data = batches(1, 6, 8, 32, 10);
    const auto eager = cnn(7), graphed = cnn(7);
    optim::Sgd eager_opt(eager->named_parameters(), kSgd), graphed_opt(graphed->named_parameters(), kSgd);
    const CapturedStep::Fn eager_step = sgd_step(eager, eager_opt);
    CaptureOptions options;
    options.warmup = 2;
    CapturedStep step(sgd_step(graphed, graphed_opt), options);

    std::vector<double> losses;
    for (size_t s = 0; s < data.xs.size(); s++) {
        INFO("step " << s);
        const Tensor want = eager_step({data.xs[s], data.ys[s]})[0];
        const Tensor got = step({data.xs[s], data.ys[s]})[0];
        INFO_FALLBACK(step);
        if (step.last_replayed()) graphed_opt.add_replayed_steps(1);
        // Steps 0 and 1 warm up, step 2 captures (and runs the graph once), steps 3 to 5 replay.
        REQUIRE(step.last_replayed() == (s >= 3));
        REQUIRE(got.device() == Device::cuda());
        test::require_identical(cpu(want), cpu(got));
        losses.push_back(got.item());
    }
    REQUIRE(losses.back() != losses.front());  // the steps trained the model
    INFO_FALLBACK(step);
    REQUIRE(step.captures() == 1);
    REQUIRE(step.replays() == 3);
    REQUIRE(step.fallback_reason().empty());
    REQUIRE(graphed_opt.step_count() == eager_opt.step_count());
    require_same_state(*eager, *graphed);
    // The gradients the parameters hold after a replay (graph allocations made again by each launch) are
    // the last step's.
    const nn::NamedTensors pe = eager->named_parameters(), pg = graphed->named_parameters();
    for (size_t i = 0; i < pe.size(); i++) {
        INFO("gradient of " << pe[i].first);
        REQUIRE(pg[i].second.grad().defined());
        test::require_identical(cpu(pe[i].second.grad()), cpu(pg[i].second.grad()));
    }

    // Replays only queue work: no host wait, and no memory kept from one to the next.
    const Tensor x = data.xs[0], y = data.ys[0];
    const Tensor first = step({x, y})[0];
    INFO_FALLBACK(step);
    REQUIRE(step.last_replayed());
    synchronize();
    const size_t waits = cuda::host_waits();
    const size_t in_use = cuda::memory_stats().in_use;
    Tensor last;
    for (int i = 0; i < 20; i++) {
        last = step({x, y})[0];
        INFO_FALLBACK(step);
        REQUIRE(step.last_replayed());
    }
    last = Tensor();
    REQUIRE(cuda::host_waits() == waits);
    REQUIRE(cuda::memory_stats().in_use == in_use);
    REQUIRE(step.replays() == 24);  // 3 above, then 1 + 20
    INFO_FALLBACK(step);
    REQUIRE(step.captures() == 1);
    const cuda::MemoryStats m = cuda::memory_stats();
    REQUIRE(m.graph_reserved > 0);
    REQUIRE(m.reserved >= m.graph_reserved);
    // The replays kept training on this batch: its loss moved.
    const double after = step({x, y})[0].item();
    REQUIRE(std::isfinite(after));
    REQUIRE(after != first.item());
}

TEST_CASE("each batch size and each version gets its own graph, and an eager twin agrees", "[cuda][capture]") {
    DeterministicScope det;
    const Batches big = batches(2, 1, 8, 32, 10), small = batches(3, 1, 4, 32, 10);
    const auto eager = cnn(9), graphed = cnn(9);
    optim::Sgd eager_opt(eager->named_parameters(), kSgd), graphed_opt(graphed->named_parameters(), kSgd);
    const CapturedStep::Fn eager_step = sgd_step(eager, eager_opt);
    CapturedStep step(sgd_step(graphed, graphed_opt));  // warmup 2, up to 4 graphs

    struct Call {
        const Batches* data;
        uint64_t version;
        bool replayed;
        size_t captures;
    };
    const std::vector<Call> calls = {
        {&big, 0, false, 0},   {&big, 0, false, 0},   {&big, 0, false, 1},    // warm-up, warm-up, capture
        {&big, 0, true, 1},                                                   // replay
        {&small, 0, false, 1}, {&small, 0, false, 1}, {&small, 0, false, 2},  // a new key: its own graph
        {&small, 0, true, 2},  {&big, 0, true, 2},    {&small, 0, true, 2},   // both keys replay
        {&big, 0, true, 2},    {&big, 1, false, 2},   {&big, 1, false, 2},    // a new version warms up
        {&big, 1, false, 3},   {&big, 1, true, 3},    {&big, 0, true, 3},     // and captures afresh
    };
    for (size_t i = 0; i < calls.size(); i++) {
        INFO("call " << i);
        const Call& c = calls[i];
        const Tensor want = eager_step({c.data->xs[0], c.data->ys[0]})[0];
        const Tensor got = step({c.data->xs[0], c.data->ys[0]}, c.version)[0];
        INFO_FALLBACK(step);
        if (step.last_replayed()) graphed_opt.add_replayed_steps(1);
        REQUIRE(step.last_replayed() == c.replayed);
        REQUIRE(step.captures() == c.captures);
        test::require_identical(cpu(want), cpu(got));
    }
    REQUIRE(step.replays() == 7);
    REQUIRE(step.fallback_reason().empty());
    REQUIRE(graphed_opt.step_count() == eager_opt.step_count());
    require_same_state(*eager, *graphed);
}

TEST_CASE("a workspace that grows after a capture stays valid for the graph that uses the old one", "[cuda][capture]") {
    // The small batch is captured first; the big one then warms up, which may grow the convolution workspace
    // (the old block must outlive the small graph, which replays afterwards).
    DeterministicScope det;
    const Batches small = batches(4, 1, 2, 32, 10), big = batches(5, 1, 32, 32, 10);
    const auto eager = cnn(12), graphed = cnn(12);
    optim::Sgd eager_opt(eager->named_parameters(), kSgd), graphed_opt(graphed->named_parameters(), kSgd);
    const CapturedStep::Fn eager_step = sgd_step(eager, eager_opt);
    CapturedStep step(sgd_step(graphed, graphed_opt));
    const std::vector<const Batches*> order = {&small, &small, &small, &small, &big, &big, &big, &small, &big, &small};
    for (size_t i = 0; i < order.size(); i++) {
        INFO("call " << i);
        const Tensor want = eager_step({order[i]->xs[0], order[i]->ys[0]})[0];
        const Tensor got = step({order[i]->xs[0], order[i]->ys[0]})[0];
        INFO_FALLBACK(step);
        if (step.last_replayed()) graphed_opt.add_replayed_steps(1);
        test::require_identical(cpu(want), cpu(got));
    }
    INFO_FALLBACK(step);
    REQUIRE(step.captures() == 2);
    REQUIRE(step.replays() == 4);
    REQUIRE(step.fallback_reason().empty());
    require_same_state(*eager, *graphed);
}

TEST_CASE("at most max_graphs graphs are kept, the least recently used is dropped", "[cuda][capture]") {
    DeterministicScope det;
    const Batches big = batches(4, 1, 8, 32, 10), small = batches(5, 1, 4, 32, 10);
    const auto eager = cnn(13), graphed = cnn(13);
    optim::Sgd eager_opt(eager->named_parameters(), kSgd), graphed_opt(graphed->named_parameters(), kSgd);
    const CapturedStep::Fn eager_step = sgd_step(eager, eager_opt);
    CaptureOptions options;
    options.warmup = 1;
    options.max_graphs = 1;
    CapturedStep step(sgd_step(graphed, graphed_opt), options);
    struct Call {
        const Batches* data;
        bool replayed;
        size_t captures;
    };
    const std::vector<Call> calls = {
        {&big, false, 0},   {&big, false, 1},   {&big, true, 1},   // warm-up, capture, replay
        {&small, false, 1}, {&small, false, 2},                    // capturing small drops big's graph
        {&small, true, 2},  {&big, false, 2},   {&big, false, 3},  // big warms up and captures again
        {&big, true, 3},    {&small, false, 3},                    // and small's graph is gone
    };
    for (size_t i = 0; i < calls.size(); i++) {
        INFO("call " << i);
        const Call& c = calls[i];
        const Tensor want = eager_step({c.data->xs[0], c.data->ys[0]})[0];
        const Tensor got = step({c.data->xs[0], c.data->ys[0]})[0];
        INFO_FALLBACK(step);
        if (step.last_replayed()) graphed_opt.add_replayed_steps(1);
        REQUIRE(step.last_replayed() == c.replayed);
        REQUIRE(step.captures() == c.captures);
        test::require_identical(cpu(want), cpu(got));
    }
    REQUIRE(graphed_opt.step_count() == eager_opt.step_count());
    require_same_state(*eager, *graphed);
    // reset() drops the graph: the next call warms up again.
    step.reset();
    const Tensor after_reset = step({big.xs[0], big.ys[0]})[0];
    INFO_FALLBACK(step);
    REQUIRE_FALSE(step.last_replayed());
    REQUIRE(std::isfinite(after_reset.item()));
}

TEST_CASE("a step that reads its loss inside falls back to eager calls and names the wait", "[cuda][capture]") {
    DeterministicScope det;
    const Batches data = batches(6, 4, 8, 32, 10);
    const auto eager = cnn(15), graphed = cnn(15);
    optim::Sgd eager_opt(eager->named_parameters(), kSgd), graphed_opt(graphed->named_parameters(), kSgd);
    std::vector<double> eager_seen, graphed_seen;
    int calls = 0;
    auto reading = [](const std::shared_ptr<nn::Module>& model, optim::Sgd& opt, std::vector<double>& seen) {
        return [model, &opt, &seen](const std::vector<Tensor>& in) {
            opt.zero_grad();
            Tensor loss = cross_entropy((*model)(in[0]), in[1]);
            loss.backward();
            seen.push_back(loss.item());  // waits for the GPU: cannot be captured
            opt.step();
            return std::vector<Tensor>{loss};
        };
    };
    const CapturedStep::Fn eager_step = reading(eager, eager_opt, eager_seen);
    const CapturedStep::Fn graphed_fn = reading(graphed, graphed_opt, graphed_seen);
    CapturedStep step([&](const std::vector<Tensor>& in) {
        calls++;
        return graphed_fn(in);
    });
    for (size_t s = 0; s < data.xs.size(); s++) {
        INFO("step " << s);
        const Tensor want = eager_step({data.xs[s], data.ys[s]})[0];
        const Tensor got = step({data.xs[s], data.ys[s]})[0];
        INFO_FALLBACK(step);
        REQUIRE_FALSE(step.last_replayed());
        test::require_identical(cpu(want), cpu(got));
        if (s < 2) REQUIRE(step.fallback_reason().empty());
    }
    REQUIRE_THAT(step.fallback_reason(), Catch::Contains("wait for the GPU") && Catch::Contains("item()"));
    // Two warm-ups, the capture that failed, its eager rerun, then eager only (no second attempt).
    REQUIRE(calls == 5);
    INFO_FALLBACK(step);
    REQUIRE(step.captures() == 0);
    REQUIRE(step.replays() == 0);
    REQUIRE(graphed_seen == eager_seen);
    REQUIRE(graphed_opt.step_count() == eager_opt.step_count());
    require_same_state(*eager, *graphed);
}

TEST_CASE("a step with dropout falls back to eager calls and names dropout", "[cuda][capture]") {
    DeterministicScope det;
    const Batches data = batches(7, 4, 8, 32, 10);
    // Each model trains alone from the same generator state: the masks come from the global generator.
    std::vector<Tensor> want, got;
    const auto eager = cnn(17);
    optim::Sgd eager_opt(eager->named_parameters(), kSgd);
    const CapturedStep::Fn eager_step = sgd_step(eager, eager_opt, 0.3);
    manual_seed(1234);
    for (size_t s = 0; s < data.xs.size(); s++) want.push_back(eager_step({data.xs[s], data.ys[s]})[0]);

    const auto graphed = cnn(17);
    optim::Sgd graphed_opt(graphed->named_parameters(), kSgd);
    CapturedStep step(sgd_step(graphed, graphed_opt, 0.3));
    manual_seed(1234);
    for (size_t s = 0; s < data.xs.size(); s++) {
        got.push_back(step({data.xs[s], data.ys[s]})[0]);
        INFO_FALLBACK(step);
        REQUIRE_FALSE(step.last_replayed());
    }
    REQUIRE_THAT(step.fallback_reason(), Catch::Contains("dropout"));
    INFO_FALLBACK(step);
    REQUIRE(step.captures() == 0);
    // The failed capture drew no seed: the eager calls drew the same masks as the twin.
    for (size_t s = 0; s < want.size(); s++) {
        INFO("step " << s);
        test::require_identical(cpu(want[s]), cpu(got[s]));
    }
    require_same_state(*eager, *graphed);
}

TEST_CASE("captured ResNet-18 steps with batch norm match eager ones, running statistics included", "[cuda][capture]") {
    DeterministicScope det;
    const Batches data = batches(8, 4, 4, 32, 10);
    manual_seed(11);
    const auto eager = on_gpu(models::resnet18_small(10, 3));
    manual_seed(11);
    const auto graphed = on_gpu(models::resnet18_small(10, 3));
    optim::Sgd eager_opt(eager->named_parameters(), kSgd), graphed_opt(graphed->named_parameters(), kSgd);
    const CapturedStep::Fn eager_step = sgd_step(eager, eager_opt);
    CapturedStep step(sgd_step(graphed, graphed_opt));
    for (size_t s = 0; s < data.xs.size(); s++) {
        INFO("step " << s);
        const Tensor want = eager_step({data.xs[s], data.ys[s]})[0];
        const Tensor got = step({data.xs[s], data.ys[s]})[0];
        INFO_FALLBACK(step);
        if (step.last_replayed()) graphed_opt.add_replayed_steps(1);
        REQUIRE(step.last_replayed() == (s == 3));
        test::require_identical(cpu(want), cpu(got));
    }
    INFO_FALLBACK(step);
    REQUIRE(step.captures() == 1);
    REQUIRE(step.replays() == 1);
    REQUIRE(step.fallback_reason().empty());
    REQUIRE(graphed_opt.step_count() == eager_opt.step_count());
    // Parameters, running means and variances, and num_batches_tracked (4 on both).
    require_same_state(*eager, *graphed);
    bool counted = false;
    for (const auto& [name, t] : graphed->named_buffers())
        if (name == "bn1.num_batches_tracked") {
            REQUIRE(test::values(t) == std::vector<double>{4.0});
            counted = true;
        }
    REQUIRE(counted);
}

TEST_CASE("a cuDNN algorithm search that would start inside a capture falls back", "[cuda][capture]") {
    // A shape no other test uses, warmed up with deterministic mode off; the capture call then runs with it
    // on (without a new version, which would have warmed up again): the plan for that setting has not
    // searched yet, and the search refuses to run inside the capture.
    DeterministicScope det(false);
    const Batches data = batches(9, 2, 3, 40, 10);
    const auto model = cnn(19, 40);
    optim::Sgd opt(model->named_parameters(), kSgd);
    CaptureOptions options;
    options.warmup = 1;
    CapturedStep step(sgd_step(model, opt), options);
    step({data.xs[0], data.ys[0]});
    INFO_FALLBACK(step);
    REQUIRE(step.fallback_reason().empty());
    set_deterministic(true);
    const Tensor loss = step({data.xs[1], data.ys[1]})[0];
    INFO_FALLBACK(step);
    REQUIRE_FALSE(step.last_replayed());
    REQUIRE(step.captures() == 0);
    REQUIRE_THAT(step.fallback_reason(), Catch::Contains("algorithm search"));
    REQUIRE(std::isfinite(loss.item()));
}
