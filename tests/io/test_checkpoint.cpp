// Checkpoints: bit-identical model round trips, checkpoints of other models rejected before anything
// changes, the metadata, and a training run resumed from a checkpoint that continues bit for bit as if
// it had never stopped (weights, momentum buffers, step count, learning rate, random stream).
#include "support/catch.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include "dyad/dyad.h"

using namespace dyad;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

std::string out_path(const std::string& name) {
    static const std::string dir = [] {
        const std::string d = std::string(DYAD_TEST_OUTPUT_DIR) + "/io_checkpoint";
        fs::create_directories(d);
        return d;
    }();
    return dir + "/" + name;
}

// Every tensor's bytes, in state_dict order.
std::vector<std::string> bits(const nn::Module& m) {
    std::vector<std::string> out;
    for (const auto& [name, t] : m.state_dict()) {
        const Tensor c = t.detach().contiguous();
        out.emplace_back(static_cast<const char*>(c.raw_data()), size_t(c.numel()) * dtype_size(c.dtype()));
    }
    return out;
}

optim::SgdOptions sgd_options() {
    optim::SgdOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    o.nesterov = true;
    o.weight_decay = 1e-3;
    return o;
}

// A small model whose training draws from the generator: dropout masks.
std::shared_ptr<nn::Sequential> small_model() {
    auto m = std::make_shared<nn::Sequential>();
    m->push_back(std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1));
    m->push_back(std::make_shared<nn::BatchNorm2d>(4));
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<nn::Flatten>());
    m->push_back(std::make_shared<nn::Dropout>(0.3));
    m->push_back(std::make_shared<nn::Linear>(4 * 4 * 4, 3));
    return m;
}

// One step on a batch drawn from the generator (so the data depends on the random state too).
void train_step(nn::Module& m, optim::Optimizer& opt) {
    const Tensor x = Tensor::randn({6, 1, 8, 8});
    const std::vector<float> u = Tensor::rand({6}).to_vector<float>();
    std::vector<int32_t> labels;
    for (float v : u) labels.push_back(int32_t(v * 3));
    opt.zero_grad();
    Tensor loss = cross_entropy(m(x), Tensor::from_vector(labels, {6}));
    loss.backward();
    opt.step();
}

}  // namespace

TEST_CASE("checkpoint round trip into a differently seeded model is bit-identical", "[checkpoint]") {
    manual_seed(1);
    auto a = models::baseline_cnn(10, 3, 16);
    const std::string path = out_path("cnn.safetensors");
    io::save(path, *a, nullptr, {{"epoch", "4"}, {"note", "hello"}});
    manual_seed(2);
    auto b = models::baseline_cnn(10, 3, 16);
    REQUIRE(bits(*b) != bits(*a));
    const io::Metadata meta = io::load(path, *b);
    REQUIRE(bits(*b) == bits(*a));
    REQUIRE(meta.at("format") == "dyad");
    REQUIRE(meta.at("epoch") == "4");
    REQUIRE(meta.at("note") == "hello");
    REQUIRE(meta.at("rng").size() == 4 * 16 + 3);
    REQUIRE(meta.count("optimizer.step") == 0);
    for (const auto& [name, t] : b->named_parameters()) REQUIRE(t.requires_grad());

    // The file is a plain safetensors file with the state_dict's names (what PyTorch's load_state_dict
    // expects), in state_dict order.
    const nn::NamedTensors raw = io::load_tensors(path);
    REQUIRE(raw.size() == 10);
    REQUIRE(raw[0].first == "0.weight");
    REQUIRE(raw[9].first == "12.bias");

    // Batch-norm buffers (int32 num_batches_tracked included) round trip too.
    manual_seed(3);
    auto r = models::resnet18_small(10);
    (void)(*r)(Tensor::randn({2, 3, 8, 8}));  // moves the running statistics and the counters
    io::save(out_path("resnet.safetensors"), *r);
    manual_seed(4);
    auto r2 = models::resnet18_small(10);
    io::load(out_path("resnet.safetensors"), *r2);
    REQUIRE(bits(*r2) == bits(*r));
}

TEST_CASE("checkpoint of another model is rejected and changes nothing", "[checkpoint][errors]") {
    manual_seed(5);
    io::save(out_path("resnet_other.safetensors"), *models::resnet18_small(10));
    auto m = models::baseline_cnn(10, 3, 16);
    const auto before = bits(*m);
    const RngState rng_before = rng_state();
    try {
        io::load(out_path("resnet_other.safetensors"), *m);
        FAIL("no exception");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains("resnet_other.safetensors"));
        CHECK_THAT(msg, Contains("nothing was changed"));
        CHECK_THAT(msg, Contains("missing from the file (10): 0.weight, 0.bias, 3.weight"));
        CHECK_THAT(msg, Contains("unexpected in the file (122): conv1.weight, bn1.weight"));
        CHECK_THAT(msg, Contains("(102 more)"));
    }
    REQUIRE(bits(*m) == before);
    const RngState rng_after = rng_state();
    REQUIRE(std::memcmp(&rng_before, &rng_after, sizeof(RngState)) == 0);  // the generator is untouched too
}

TEST_CASE("a PyTorch-style file with int64 batch counters loads into the int32 counters", "[checkpoint]") {
    // PyTorch writes num_batches_tracked as I64; dyad's counter is int32. The value is converted when it
    // fits and the file is rejected, with nothing changed, when it does not.
    manual_seed(11);
    nn::BatchNorm2d src(3);
    nn::NamedTensors state;
    for (const auto& [name, t] : src.state_dict())
        state.emplace_back(name, name == "num_batches_tracked" ? Tensor::full({}, 41, DType::int64) : t);
    io::save_tensors(out_path("torch_bn.safetensors"), state);
    for (const auto& [name, t] : io::load_tensors(out_path("torch_bn.safetensors")))
        if (name == "num_batches_tracked") REQUIRE(t.dtype() == DType::int64);
    nn::BatchNorm2d dst(3);
    io::load(out_path("torch_bn.safetensors"), dst);
    for (const auto& [name, t] : dst.state_dict()) {
        if (name != "num_batches_tracked") continue;
        REQUIRE(t.dtype() == DType::int32);
        REQUIRE(t.item() == 41);
    }

    state[4].second = Tensor::full({}, 5e9, DType::int64);
    io::save_tensors(out_path("torch_bn_big.safetensors"), state);
    const auto before = bits(dst);
    REQUIRE_THROWS_WITH(io::load(out_path("torch_bn_big.safetensors"), dst),
                        Contains("num_batches_tracked") && Contains("value 5000000000") && Contains("int32"));
    REQUIRE(bits(dst) == before);
}

TEST_CASE("checkpoint with a wrong shape names the tensor and both shapes", "[checkpoint][errors]") {
    io::save(out_path("cnn10.safetensors"), *models::baseline_cnn(10, 3, 16));
    auto m = models::baseline_cnn(200, 3, 16);
    const auto before = bits(*m);
    REQUIRE_THROWS_WITH(io::load(out_path("cnn10.safetensors"), *m),
                        Contains("cnn10.safetensors") && Contains("shape mismatch (2)") &&
                            Contains("12.weight (10, 256) in the file vs (200, 256) in the model") &&
                            Contains("12.bias (10) in the file vs (200) in the model"));
    REQUIRE(bits(*m) == before);
}

TEST_CASE("checkpoint metadata: reserved keys, optimizer entries without an optimizer", "[checkpoint][errors]") {
    auto m = small_model();
    optim::Sgd opt(m->named_parameters(), sgd_options());
    REQUIRE_THROWS_WITH(io::save(out_path("reserved.safetensors"), *m, &opt, {{"rng", "x"}}),
                        Contains("'rng' is reserved"));
    manual_seed(6);
    train_step(*m, opt);
    io::save(out_path("with_opt.safetensors"), *m, &opt, {{"epoch", "1"}});
    const nn::NamedTensors raw = io::load_tensors(out_path("with_opt.safetensors"));
    size_t buffers = 0;
    for (const auto& [name, t] : raw) buffers += name.rfind("optimizer.momentum_buffer.", 0) == 0;
    REQUIRE(buffers == m->named_parameters().size());
    REQUIRE(raw.back().first == "optimizer.momentum_buffer.6.bias");

    // A model alone can be restored from a training checkpoint.
    auto plain = small_model();
    const io::Metadata meta = io::load(out_path("with_opt.safetensors"), *plain);
    REQUIRE(bits(*plain) == bits(*m));
    REQUIRE(meta.at("optimizer.step") == "1");
    REQUIRE(meta.at("optimizer.lr") == "0.05");

    // An optimizer whose parameters have other names does not fit the file's buffers.
    auto other = small_model();
    optim::Sgd renamed(other->named_parameters("net"), sgd_options());
    REQUIRE_THROWS_WITH(io::load(out_path("with_opt.safetensors"), *other, &renamed),
                        Contains("optimizer state (6): 'momentum_buffer.0.weight' is not the state of a parameter"));
    // Nor does an optimizer of another kind.
    optim::Adam adam(m->named_parameters());
    REQUIRE_THROWS_WITH(io::load(out_path("with_opt.safetensors"), *small_model(), &adam),
                        Contains("the state of a SGD optimizer, not of Adam") && Contains("nothing was changed"));
}

TEST_CASE("training resumed from a checkpoint continues bit for bit", "[checkpoint]") {
    constexpr int k = 3, m_steps = 3;
    const std::string path = out_path("resume.safetensors");

    // Run A: k steps, checkpoint, m more steps.
    manual_seed(7);
    auto a = small_model();
    optim::Sgd opt_a(a->named_parameters(), sgd_options());
    for (int s = 0; s < k; s++) train_step(*a, opt_a);
    opt_a.set_lr(0.03);  // a schedule changed the rate: the checkpoint keeps it
    io::save(path, *a, &opt_a, {{"epoch", std::to_string(k)}});
    for (int s = 0; s < m_steps; s++) train_step(*a, opt_a);

    // Run B: a new model and optimizer from another seed, restored from the checkpoint, m steps.
    manual_seed(99);
    auto b = small_model();
    optim::Sgd opt_b(b->named_parameters(), sgd_options());
    (void)Tensor::randn({17});  // move the generator elsewhere
    const io::Metadata meta = io::load(path, *b, &opt_b, /*restore_rng=*/true);
    REQUIRE(meta.at("epoch") == std::to_string(k));
    REQUIRE(opt_b.step_count() == k);
    REQUIRE(opt_b.lr() == 0.03);
    for (int s = 0; s < m_steps; s++) train_step(*b, opt_b);

    REQUIRE(bits(*b) == bits(*a));
    REQUIRE(opt_b.step_count() == opt_a.step_count());
    const auto sa = opt_a.state_dict(), sb = opt_b.state_dict();
    REQUIRE(sa.size() == sb.size());
    for (size_t i = 0; i < sa.size(); i++) {
        REQUIRE(sa[i].first == sb[i].first);
        REQUIRE(sa[i].second.to_vector<float>() == sb[i].second.to_vector<float>());
    }
    // Without the generator state the runs part: dropout masks and batches differ.
    manual_seed(7);
    auto c = small_model();
    optim::Sgd opt_c(c->named_parameters(), sgd_options());
    manual_seed(1234);
    const RngState before = rng_state();
    io::load(path, *c, &opt_c);  // without restore_rng the generator is left alone
    const RngState after = rng_state();
    REQUIRE(std::equal(std::begin(before.s), std::end(before.s), std::begin(after.s)));
    for (int s = 0; s < m_steps; s++) train_step(*c, opt_c);
    REQUIRE(bits(*c) != bits(*a));
}

TEST_CASE("an AdamW run resumed from a checkpoint continues bit for bit, groups and amsgrad included",
          "[checkpoint][optim]") {
    const std::string path = out_path("adamw.safetensors");
    optim::AdamWOptions o;
    o.lr = 0.01;
    o.amsgrad = true;
    // Two groups with their own rates: the checkpoint keeps each.
    auto groups = [](const nn::Module& m) {
        std::vector<optim::ParamGroup> g = optim::decay_groups(m.named_parameters(), 0.02);
        g[1].lr = 0.003;
        return g;
    };
    manual_seed(21);
    auto a = small_model();
    optim::AdamW opt_a(groups(*a), o);
    for (int s = 0; s < 3; s++) train_step(*a, opt_a);
    io::save(path, *a, &opt_a, {{"epoch", "3"}});
    for (int s = 0; s < 3; s++) train_step(*a, opt_a);

    manual_seed(77);
    auto b = small_model();
    optim::AdamW opt_b(groups(*b), o);
    opt_b.set_lr(0.5);  // overwritten by the checkpoint's rates
    io::load(path, *b, &opt_b, /*restore_rng=*/true);
    REQUIRE(opt_b.lr(1) == 0.003);
    REQUIRE(opt_b.lr(0) == 0.01);
    REQUIRE(opt_b.step_count() == 3);
    for (int s = 0; s < 3; s++) train_step(*b, opt_b);
    REQUIRE(bits(*b) == bits(*a));
    const auto sa = opt_a.state_dict(), sb = opt_b.state_dict();
    REQUIRE(sa.size() == sb.size());
    for (size_t i = 0; i < sa.size(); i++) {
        INFO(sa[i].first);
        REQUIRE(sa[i].first == sb[i].first);
        REQUIRE(sa[i].second.to(DType::float64).to_vector<double>() ==
                sb[i].second.to(DType::float64).to_vector<double>());
    }
    // The file says which optimizer wrote it.
    io::Metadata meta;
    io::load_tensors(path, &meta);
    REQUIRE(meta.at("optimizer.type") == "AdamW");
    REQUIRE(meta.at("optimizer.lr.1") == "0.003");
}
