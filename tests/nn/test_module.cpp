// Modules: PyTorch's state_dict names and order for both models, parameter counts derived by hand,
// PyTorch's default initialisation, train/eval, device moves, load_state_dict's checks, zero_grad,
// registration rules, layer reprs, summary() (with fusion on, the default: every layer is still listed), the
// forward shapes of the models and a BasicBlock, and Sequential's layer fusion (same bits as unfused).
#include "support/catch.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dyad/dyad.h"

using namespace dyad;
using Catch::Contains;

namespace {

std::vector<std::string> names_of(const nn::NamedTensors& t) {
    std::vector<std::string> out;
    for (const auto& entry : t) out.push_back(entry.first);
    return out;
}

const Tensor& find(const nn::NamedTensors& t, const std::string& name) {
    for (const auto& entry : t)
        if (entry.first == name) return entry.second;
    FAIL("no tensor " << name);
    static Tensor none;
    return none;
}

// Snapshot of every value of a state_dict, to prove that a failed call changed nothing.
std::vector<std::vector<double>> snapshot(const nn::Module& m) {
    std::vector<std::vector<double>> out;
    for (const auto& entry : m.state_dict())
        out.push_back(entry.second.detach().to(DType::float64).contiguous().to_vector<double>());
    return out;
}

double mean_of(const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += x;
    return s / double(v.size());
}

double std_of(const std::vector<float>& v) {
    const double m = mean_of(v);
    double s = 0;
    for (float x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size()));
}

// A module that registers things directly (the registration API is protected).
struct Custom : nn::Module {
    Tensor forward(const Tensor& x) override { return x; }
    std::string type_name() const override { return "Custom"; }
    using nn::Module::register_buffer;
    using nn::Module::register_module;
    using nn::Module::register_parameter;
};

}  // namespace

// ---------------------------------------------------------------------------- names and counts
TEST_CASE("baseline_cnn state_dict has PyTorch's names and shapes", "[nn][models]") {
    auto m = models::baseline_cnn();  // 200 classes, 3 channels, 64x64
    const nn::NamedTensors sd = m->state_dict();
    REQUIRE(names_of(sd) == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias",
                                                     "10.weight", "10.bias", "12.weight", "12.bias"});
    const std::vector<Shape> shapes = {{32, 3, 3, 3}, {32},        {64, 32, 3, 3}, {64},       {128, 64, 3, 3},
                                       {128},         {256, 8192}, {256},          {200, 256}, {200}};
    for (size_t i = 0; i < sd.size(); i++) {
        INFO(sd[i].first);
        REQUIRE(sd[i].second.shape() == shapes[i]);
        REQUIRE(sd[i].second.dtype() == DType::float32);
        REQUIRE(sd[i].second.requires_grad());
    }
    REQUIRE(names_of(m->named_parameters()) == names_of(sd));
    REQUIRE(m->named_buffers().empty());
    REQUIRE(m->size() == 13);
    // conv: out * (in * 9 + 1); linear: out * (in + 1).
    const int64_t expected =
        32 * (3 * 9 + 1) + 64 * (32 * 9 + 1) + 128 * (64 * 9 + 1) + 256 * (8192 + 1) + 200 * (256 + 1);
    REQUIRE(expected == 2242056);
    REQUIRE(m->num_parameters() == expected);
    REQUIRE(m->parameters().size() == 10);

    // named_modules: the Sequential itself, then its 13 children.
    const auto mods = m->named_modules();
    REQUIRE(mods.size() == 14);
    REQUIRE(mods[0].first.empty());
    REQUIRE(mods[0].second == m.get());
    REQUIRE(mods[1].first == "0");
    REQUIRE(mods[1].second->type_name() == "Conv2d");
    REQUIRE(mods[10].first == "9");
    REQUIRE(mods[10].second->type_name() == "Flatten");
    REQUIRE(mods[13].first == "12");
    REQUIRE((*m)[12]->type_name() == "Linear");
    REQUIRE_THROWS_WITH((*m)[13], Contains("index 13 is out of range for 13 modules"));

    // Prefixes join with '.'.
    REQUIRE(names_of(m->state_dict("model"))[0] == "model.0.weight");
    REQUIRE(m->named_modules("model")[1].first == "model.0");

    auto small = models::baseline_cnn(10, 1, 32);
    REQUIRE(find(small->state_dict(), "0.weight").shape() == Shape{32, 1, 3, 3});
    REQUIRE(find(small->state_dict(), "10.weight").shape() == Shape{256, 128 * 4 * 4});
    REQUIRE(find(small->state_dict(), "12.bias").shape() == Shape{10});
    REQUIRE_THROWS_WITH(models::baseline_cnn(10, 3, 30), Contains("baseline_cnn") && Contains("multiple of 8"));
    REQUIRE_THROWS_WITH(models::baseline_cnn(0), Contains("baseline_cnn"));
}

TEST_CASE("resnet18_small state_dict follows torchvision's resnet18 names", "[nn][models]") {
    auto m = models::resnet18_small();
    const nn::NamedTensors sd = m->state_dict();
    // conv1 + bn1 (5 entries: weight, bias, running_mean, running_var, num_batches_tracked) = 6; a block is
    // 2 convs + 2 bns = 12 entries, 18 with a downsample (layer2.0, layer3.0, layer4.0); fc = 2.
    // 6 + 5 * 12 + 3 * 18 + 2 = 122, as torchvision's resnet18().state_dict().
    REQUIRE(sd.size() == 122);
    REQUIRE(m->named_parameters().size() == 62);  // 122 - 20 batch norms * 3 buffers
    REQUIRE(m->named_buffers().size() == 60);
    const std::vector<std::string> names = names_of(sd);
    const std::vector<std::string> head = {"conv1.weight",
                                           "bn1.weight",
                                           "bn1.bias",
                                           "bn1.running_mean",
                                           "bn1.running_var",
                                           "bn1.num_batches_tracked",
                                           "layer1.0.conv1.weight",
                                           "layer1.0.bn1.weight",
                                           "layer1.0.bn1.bias",
                                           "layer1.0.bn1.running_mean",
                                           "layer1.0.bn1.running_var",
                                           "layer1.0.bn1.num_batches_tracked",
                                           "layer1.0.conv2.weight"};
    REQUIRE(std::vector<std::string>(names.begin(), names.begin() + long(head.size())) == head);
    REQUIRE(names[names.size() - 2] == "fc.weight");
    REQUIRE(names.back() == "fc.bias");
    for (const char* n : {"layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                          "layer3.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "layer4.0.conv1.weight"})
        REQUIRE(std::count(names.begin(), names.end(), n) == 1);
    REQUIRE(std::count(names.begin(), names.end(), "layer1.0.downsample.0.weight") == 0);
    REQUIRE(std::count(names.begin(), names.end(), "layer2.1.downsample.0.weight") == 0);
    REQUIRE(find(sd, "layer2.0.downsample.0.weight").shape() == Shape{128, 64, 1, 1});
    REQUIRE(find(sd, "layer4.1.conv2.weight").shape() == Shape{512, 512, 3, 3});
    REQUIRE(find(sd, "conv1.weight").shape() == Shape{64, 3, 3, 3});
    REQUIRE(find(sd, "fc.weight").shape() == Shape{200, 512});
    const Tensor& nbt = find(sd, "layer1.0.bn1.num_batches_tracked");
    REQUIRE(nbt.dtype() == DType::int32);
    REQUIRE(nbt.shape() == Shape{});
    REQUIRE(nbt.item() == 0);
    REQUIRE_FALSE(nbt.requires_grad());

    // torchvision's resnet18 (7x7 stem, 1000 classes) has 11,689,512 parameters. The 3x3 stem has
    // 64 * 3 * 9 = 1,728 weights instead of 64 * 3 * 49 = 9,408 (-7,680), and fc with 200 classes has
    // 512 * 200 + 200 = 102,600 instead of 513,000 (-410,400): 11,689,512 - 7,680 - 410,400 = 11,271,432.
    // The same from the layers: stem 1,728 + 128; layer1 2 * (2 * 36,864 + 256) = 147,968; layer2
    // 73,728 + 147,456 + 512 + (8,192 + 256) + 2 * 147,456 + 512 = 525,568; layer3 2,099,712;
    // layer4 8,393,728; fc 102,600.
    const int64_t expected = 1728 + 128 + 147968 + 525568 + 2099712 + 8393728 + 102600;
    REQUIRE(expected == 11689512 - 7680 - 410400);
    REQUIRE(m->num_parameters() == 11271432);

    const auto mods = m->named_modules();
    std::vector<std::string> mod_names;
    for (const auto& [n, p] : mods) mod_names.push_back(n);
    REQUIRE(mod_names[1] == "conv1");
    REQUIRE(mod_names[2] == "bn1");
    REQUIRE(mod_names[3] == "relu");
    REQUIRE(std::count(mod_names.begin(), mod_names.end(), "layer3.0.downsample.1") == 1);
    REQUIRE(mod_names[mod_names.size() - 2] == "avgpool");
    REQUIRE(mod_names.back() == "fc");
    REQUIRE(m->type_name() == "ResNet");
}

// ---------------------------------------------------------------------------- initialisation
TEST_CASE("layers use PyTorch's default initialisation from the seeded generator", "[nn]") {
    manual_seed(11);
    auto m = models::baseline_cnn();
    const std::vector<std::pair<std::string, int64_t>> fan_in = {
        {"0", 3 * 9}, {"3", 32 * 9}, {"6", 64 * 9}, {"10", 8192}, {"12", 256}};
    for (const auto& [layer, fan] : fan_in) {
        INFO("layer " << layer);
        const double bound = 1.0 / std::sqrt(double(fan));
        for (const char* what : {".weight", ".bias"}) {
            const std::vector<float> v = find(m->state_dict(), layer + what).to_vector<float>();
            const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
            REQUIRE(*lo >= -bound);
            REQUIRE(*hi <= bound);
            if (v.size() < 5000) continue;
            // Uniform on [-b, b]: mean 0, std b / sqrt(3); the range is nearly filled.
            REQUIRE(std::abs(mean_of(v)) < 0.02 * bound);
            REQUIRE(std_of(v) == Approx(bound / std::sqrt(3.0)).epsilon(0.02));
            REQUIRE(*hi > 0.99 * bound);
            REQUIRE(*lo < -0.99 * bound);
        }
    }
    // The same seed gives the same model; another seed another one.
    manual_seed(11);
    auto again = models::baseline_cnn();
    manual_seed(12);
    auto other = models::baseline_cnn();
    REQUIRE(snapshot(*again) == snapshot(*m));
    REQUIRE(snapshot(*other) != snapshot(*m));
}

TEST_CASE("resnet18_small initialises convs like torchvision (kaiming normal, fan_out)", "[nn][models]") {
    manual_seed(5);
    auto m = models::resnet18_small(10);
    const nn::NamedTensors sd = m->state_dict();
    for (const char* name : {"layer1.0.conv1.weight", "layer3.1.conv2.weight", "layer4.0.downsample.0.weight"}) {
        INFO(name);
        const Tensor& w = find(sd, name);
        const double expected = std::sqrt(2.0 / double(w.size(0) * w.size(2) * w.size(3)));
        const std::vector<float> v = w.to_vector<float>();
        REQUIRE(std::abs(mean_of(v)) < 0.05 * expected);
        REQUIRE(std_of(v) == Approx(expected).epsilon(0.05));
    }
    for (const auto& [name, t] : sd) {
        if (name.find("bn") == std::string::npos && name.find("downsample.1") == std::string::npos) continue;
        INFO(name);
        const std::vector<double> v = t.detach().to(DType::float64).contiguous().to_vector<double>();
        const bool ones = name.find("weight") != std::string::npos || name.find("running_var") != std::string::npos;
        for (double x : v) REQUIRE(x == (ones ? 1.0 : 0.0));
    }
    // fc keeps Linear's default: uniform in +-1/sqrt(512).
    const std::vector<float> fc = find(sd, "fc.weight").to_vector<float>();
    const auto [lo, hi] = std::minmax_element(fc.begin(), fc.end());
    REQUIRE(*lo >= -1.0 / std::sqrt(512.0));
    REQUIRE(*hi <= 1.0 / std::sqrt(512.0));
}

// ---------------------------------------------------------------------------- modes, devices, grads
TEST_CASE("train and eval reach every module", "[nn]") {
    auto m = models::resnet18_small(10);
    for (const auto& [name, mod] : m->named_modules()) REQUIRE(mod->is_training());
    m->eval();
    for (const auto& [name, mod] : m->named_modules()) {
        INFO(name);
        REQUIRE_FALSE(mod->is_training());
    }
    m->train();
    for (const auto& [name, mod] : m->named_modules()) REQUIRE(mod->is_training());
    m->train(false);
    REQUIRE_FALSE(m->named_modules().back().second->is_training());
}

TEST_CASE("to(cpu) keeps parameters as grad-requiring leaves", "[nn]") {
    auto m = models::baseline_cnn(10, 3, 8);
    const nn::NamedTensors before = m->state_dict();
    m->to(Device::cpu());
    const nn::NamedTensors after = m->state_dict();
    for (size_t i = 0; i < after.size(); i++) {
        REQUIRE(after[i].second.is_leaf());
        REQUIRE(after[i].second.requires_grad());
        REQUIRE(after[i].second.device() == Device::cpu());
        REQUIRE(after[i].second.is_same(before[i].second));  // already there: nothing moves
    }
    if (cuda_available()) {
        m->to(Device::cuda());
        for (const auto& [name, t] : m->state_dict()) {
            REQUIRE(t.device() == Device::cuda());
            REQUIRE(t.is_leaf());
            REQUIRE(t.requires_grad());
        }
        m->to(Device::cpu());
        REQUIRE(snapshot(*m).size() == before.size());
    }
}

TEST_CASE("zero_grad drops every gradient", "[nn]") {
    auto m = models::resnet18_small(10);
    for (Tensor& p : m->parameters()) p.set_grad(Tensor::ones(p.shape()));
    for (const Tensor& p : m->parameters()) REQUIRE(p.grad().defined());
    m->zero_grad();
    for (const Tensor& p : m->parameters()) REQUIRE_FALSE(p.grad().defined());
}

// ---------------------------------------------------------------------------- load_state_dict
TEST_CASE("load_state_dict copies values into the module's own tensors", "[nn]") {
    manual_seed(1);
    auto a = models::baseline_cnn(10, 3, 8);
    manual_seed(2);
    auto b = models::baseline_cnn(10, 3, 8);
    const nn::NamedTensors handles = b->state_dict();
    b->load_state_dict(a->state_dict());
    REQUIRE(snapshot(*b) == snapshot(*a));
    const nn::NamedTensors now = b->state_dict();
    for (size_t i = 0; i < now.size(); i++) {
        REQUIRE(now[i].second.is_same(handles[i].second));  // same tensors (an optimizer keeps working)
        REQUIRE(now[i].second.requires_grad());
        REQUIRE_FALSE(now[i].second.is_same(find(a->state_dict(), now[i].first)));
    }
    // dtypes are converted; order does not matter.
    nn::NamedTensors f64;
    const nn::NamedTensors sa = a->state_dict();
    for (auto it = sa.rbegin(); it != sa.rend(); ++it) {
        f64.emplace_back(it->first, it->second.detach().to(DType::float64));
    }
    manual_seed(3);
    auto c = models::baseline_cnn(10, 3, 8);
    c->load_state_dict(f64);
    REQUIRE(snapshot(*c) == snapshot(*a));
    REQUIRE(find(c->state_dict(), "0.weight").dtype() == DType::float32);
}

TEST_CASE("load_state_dict checks everything first: missing, unexpected, shapes", "[nn][errors]") {
    manual_seed(1);
    auto m = models::baseline_cnn(10, 3, 8);
    const auto before = snapshot(*m);
    manual_seed(2);
    const nn::NamedTensors good = models::baseline_cnn(10, 3, 8)->state_dict();

    SECTION("missing") {
        nn::NamedTensors s(good.begin() + 1, good.end());  // no 0.weight, but everything else valid
        REQUIRE_THROWS_WITH(m->load_state_dict(s), Contains("load_state_dict") && Contains("missing (1): 0.weight"));
        REQUIRE(snapshot(*m) == before);
        m->load_state_dict(s, false);  // non-strict: the rest is loaded
        REQUIRE(snapshot(*m) != before);
        REQUIRE(snapshot(*m)[0] == before[0]);
    }
    SECTION("unexpected") {
        nn::NamedTensors s = good;
        s.emplace_back("13.weight", Tensor::zeros({2}));
        s.emplace_back("extra", Tensor::zeros({2}));
        REQUIRE_THROWS_WITH(m->load_state_dict(s), Contains("unexpected (2): 13.weight, extra"));
        REQUIRE(snapshot(*m) == before);
        m->load_state_dict(s, false);
        REQUIRE(snapshot(*m) != before);
    }
    SECTION("shape mismatch, also when not strict") {
        nn::NamedTensors s = good;
        s[8].second = Tensor::zeros({200, 256});
        for (bool strict : {true, false}) {
            REQUIRE_THROWS_WITH(m->load_state_dict(s, strict),
                                Contains("12.weight (200, 256) in the state vs (10, 256) in the module"));
            REQUIRE(snapshot(*m) == before);
        }
    }
    SECTION("several problems are listed together") {
        nn::NamedTensors s(good.begin() + 2, good.end());
        s[0].second = Tensor::zeros({1});
        s.emplace_back("x", Tensor::zeros({1}));
        s.emplace_back("x", Tensor::zeros({1}));
        try {
            m->load_state_dict(s);
            FAIL("no exception");
        } catch (const Error& e) {
            const std::string msg = e.what();
            CHECK_THAT(msg, Contains("missing (2): 0.weight, 0.bias"));
            CHECK_THAT(msg, Contains("unexpected (2): x, x"));
            CHECK_THAT(msg, Contains("duplicate names (1): x"));
            CHECK_THAT(msg, Contains("3.weight (1) in the state vs (64, 32, 3, 3) in the module"));
        }
        REQUIRE(snapshot(*m) == before);
    }
}

// ---------------------------------------------------------------------------- registration
TEST_CASE("registration: unique names without dots, stable handles", "[nn][errors]") {
    Custom c;
    Tensor& w = c.register_parameter("w", Tensor::zeros({2}));
    REQUIRE(w.requires_grad());
    REQUIRE(w.is_leaf());
    c.register_buffer("b", Tensor::ones({3}));
    c.register_module("child", std::make_shared<nn::Linear>(2, 3));
    REQUIRE_THROWS_WITH(c.register_parameter("w", Tensor::zeros({1})), Contains("'w' is already registered"));
    REQUIRE_THROWS_WITH(c.register_buffer("child", Tensor::zeros({1})), Contains("'child' is already registered"));
    REQUIRE_THROWS_WITH(c.register_parameter("a.b", Tensor::zeros({1})), Contains("contains '.'"));
    REQUIRE_THROWS_WITH(c.register_parameter("", Tensor::zeros({1})), Contains("empty"));
    REQUIRE_THROWS_WITH(c.register_parameter("u", Tensor()), Contains("undefined"));
    REQUIRE_THROWS_WITH(c.register_parameter("i", Tensor::zeros({1}, DType::int32)), Contains("floating"));
    REQUIRE(names_of(c.state_dict()) == std::vector<std::string>{"w", "b", "child.weight", "child.bias"});
    REQUIRE(names_of(c.named_buffers()) == std::vector<std::string>{"b"});

    // Handles returned by registration stay valid however many entries follow (layers keep pointers).
    std::vector<Tensor*> handles = {&w};
    for (int i = 0; i < 200; i++)
        handles.push_back(&c.register_parameter("p" + std::to_string(i), Tensor::full({1}, double(i))));
    const nn::NamedTensors params = c.named_parameters();
    REQUIRE(handles[0]->is_same(params[0].second));
    for (int i = 0; i < 200; i++) REQUIRE(handles[size_t(i) + 1]->is_same(params[size_t(i) + 1].second));
}

TEST_CASE("layer arguments are checked and printed like PyTorch", "[nn][errors]") {
    REQUIRE(nn::Conv2d(3, 32, 3, 1, 1).extra_repr() == "3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)");
    REQUIRE(nn::Conv2d(64, 128, 1, 2, 0, false).extra_repr() ==
            "64, 128, kernel_size=(1, 1), stride=(2, 2), bias=False");
    REQUIRE(nn::Conv2d(2, 4, {3, 5}, {1, 2}, {0, 1}).extra_repr() ==
            "2, 4, kernel_size=(3, 5), stride=(1, 2), padding=(0, 1)");
    REQUIRE(nn::Linear(8192, 256).extra_repr() == "in_features=8192, out_features=256, bias=True");
    REQUIRE(nn::Linear(4, 2, false).extra_repr() == "in_features=4, out_features=2, bias=False");
    REQUIRE_FALSE(nn::Linear(4, 2, false).bias().defined());
    REQUIRE(nn::Linear(4, 2, false).state_dict().size() == 1);
    REQUIRE(nn::MaxPool2d(2).extra_repr() == "kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False");
    REQUIRE(nn::AvgPool2d(3, 2, 1).extra_repr() == "kernel_size=3, stride=2, padding=1");
    REQUIRE(nn::AdaptiveAvgPool2d(1).extra_repr() == "output_size=1");
    REQUIRE(nn::AdaptiveAvgPool2d({2, 3}).extra_repr() == "output_size=(2, 3)");
    REQUIRE(nn::Dropout(0.5).extra_repr() == "p=0.5, inplace=False");
    REQUIRE(nn::Dropout(0.25).extra_repr() == "p=0.25, inplace=False");
    REQUIRE(nn::Flatten().extra_repr() == "start_dim=1, end_dim=-1");
    REQUIRE(nn::BatchNorm2d(64).extra_repr() == "64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True");
    REQUIRE(nn::BatchNorm2d(8, 1e-3, 0.01, false).extra_repr() ==
            "8, eps=0.001, momentum=0.01, affine=False, track_running_stats=True");
    REQUIRE(names_of(nn::BatchNorm2d(8, 1e-3, 0.01, false).state_dict()) ==
            std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
    REQUIRE(nn::ReLU().extra_repr().empty());

    REQUIRE_THROWS_WITH(nn::Conv2d(0, 4, 3), Contains("Conv2d") && Contains("channels"));
    REQUIRE_THROWS_WITH(nn::Conv2d(1, 4, 3, 0), Contains("Conv2d") && Contains("stride"));
    REQUIRE_THROWS_WITH(nn::Conv2d(1, 4, 3, 1, -1), Contains("Conv2d") && Contains("padding"));
    REQUIRE_THROWS_WITH(nn::Linear(3, 0), Contains("Linear"));
    REQUIRE_THROWS_WITH(nn::Dropout(1.0), Contains("Dropout") && Contains("[0, 1)"));
    REQUIRE_THROWS_WITH(nn::BatchNorm2d(0), Contains("BatchNorm2d"));
    REQUIRE_THROWS_WITH(nn::MaxPool2d(0), Contains("MaxPool2d") && Contains("kernel_size"));
    REQUIRE_THROWS_WITH(nn::BasicBlock(4, 8, 0), Contains("BasicBlock") && Contains("stride"));
}

// ---------------------------------------------------------------------------- forward
TEST_CASE("BasicBlock with and without downsample", "[nn]") {
    manual_seed(4);
    nn::BasicBlock down(4, 8, 2);
    REQUIRE(names_of(down.state_dict()) ==
            std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                     "bn1.num_batches_tracked", "conv2.weight", "bn2.weight", "bn2.bias",
                                     "bn2.running_mean", "bn2.running_var", "bn2.num_batches_tracked",
                                     "downsample.0.weight", "downsample.1.weight", "downsample.1.bias",
                                     "downsample.1.running_mean", "downsample.1.running_var",
                                     "downsample.1.num_batches_tracked"});
    REQUIRE(find(down.state_dict(), "conv1.weight").shape() == Shape{8, 4, 3, 3});
    REQUIRE(find(down.state_dict(), "downsample.0.weight").shape() == Shape{8, 4, 1, 1});
    nn::BasicBlock same(8, 8, 1);
    REQUIRE(same.state_dict().size() == 12);
    nn::BasicBlock wider(4, 8, 1);  // the width changes: a 1x1 downsample with stride 1
    REQUIRE(wider.state_dict().size() == 18);

    const Tensor x = Tensor::randn({2, 4, 9, 9});
    const Tensor y = down(x);
    REQUIRE(y.shape() == Shape{2, 8, 5, 5});
    REQUIRE(find(down.state_dict(), "bn1.num_batches_tracked").item() == 1);
    REQUIRE(find(down.state_dict(), "downsample.1.num_batches_tracked").item() == 1);
    REQUIRE(same(y).shape() == Shape{2, 8, 5, 5});
    REQUIRE(wider(x).shape() == Shape{2, 8, 9, 9});
    for (double v : y.detach().to(DType::float64).to_vector<double>()) REQUIRE(v >= 0);  // ends in relu

    // Eval: running statistics, no counting, and the identity skip really is x when nothing else adds up.
    same.eval();
    NoGradGuard ng;
    const Tensor z = same(y);
    REQUIRE(find(same.state_dict(), "bn1.num_batches_tracked").item() == 1);
    REQUIRE(z.shape() == y.shape());
}

TEST_CASE("BatchNorm2d counts training batches and updates running stats like PyTorch", "[nn]") {
    nn::BatchNorm2d bn(3, 1e-5, 0.25);
    manual_seed(9);
    const Tensor x = Tensor::randn({4, 3, 5, 5}) * 2.0 + 1.0;
    (void)bn(x);
    (void)bn(x);
    const nn::NamedTensors sd = bn.state_dict();
    REQUIRE(find(sd, "num_batches_tracked").item() == 2);
    // Two updates with the same batch: running = (1 - (1 - m)^2) * batch_stat + (1 - m)^2 * initial.
    const double keep = 0.75 * 0.75;
    const std::vector<float> batch_mean = mean(x, {0, 2, 3}).to_vector<float>();
    const Tensor centred = x - mean(x, {0, 2, 3}, true);
    const std::vector<float> unbiased = (sum(centred * centred, {0, 2, 3}) / 99.0).to_vector<float>();
    const std::vector<float> rm = find(sd, "running_mean").to_vector<float>();
    const std::vector<float> rv = find(sd, "running_var").to_vector<float>();
    for (size_t c = 0; c < 3; c++) {
        REQUIRE(rm[c] == Approx((1 - keep) * batch_mean[c]).epsilon(1e-4));
        REQUIRE(rv[c] == Approx((1 - keep) * unbiased[c] + keep).epsilon(1e-4));
    }
    bn.eval();
    (void)bn(x);
    REQUIRE(find(bn.state_dict(), "num_batches_tracked").item() == 2);
}

TEST_CASE("forward output shapes of both models", "[nn][models]") {
    manual_seed(6);
    NoGradGuard ng;
    auto cnn = models::baseline_cnn();
    REQUIRE((*cnn)(Tensor::randn({2, 3, 64, 64})).shape() == Shape{2, 200});
    auto small = models::baseline_cnn(10, 1, 32);
    REQUIRE((*small)(Tensor::randn({3, 1, 32, 32})).shape() == Shape{3, 10});
    auto resnet = models::resnet18_small(200);
    resnet->eval();
    REQUIRE((*resnet)(Tensor::randn({2, 3, 32, 32})).shape() == Shape{2, 200});
    REQUIRE((*resnet)(Tensor::randn({1, 3, 16, 16})).shape() == Shape{1, 200});
}

// ---------------------------------------------------------------------------- summary
TEST_CASE("summary lists every leaf layer with its output shape and the totals", "[nn]") {
    auto m = models::baseline_cnn();
    (*m)[3]->eval();  // a mixed mode, restored afterwards
    const std::string s = nn::summary(*m, {1, 3, 64, 64});
    INFO(s);
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"Conv2d", "(1, 32, 64, 64)"},  {"ReLU", "(1, 32, 64, 64)"},  {"MaxPool2d", "(1, 32, 32, 32)"},
        {"Conv2d", "(1, 64, 32, 32)"},  {"ReLU", "(1, 64, 32, 32)"},  {"MaxPool2d", "(1, 64, 16, 16)"},
        {"Conv2d", "(1, 128, 16, 16)"}, {"ReLU", "(1, 128, 16, 16)"}, {"MaxPool2d", "(1, 128, 8, 8)"},
        {"Flatten", "(1, 8192)"},       {"Linear", "(1, 256)"},       {"ReLU", "(1, 256)"},
        {"Linear", "(1, 200)"}};
    // One line per layer, in order: name, type, shape.
    size_t at = 0;
    for (size_t i = 0; i < rows.size(); i++) {
        const size_t line = s.find("\n" + std::to_string(i) + " ", at);
        REQUIRE(line != std::string::npos);
        const size_t end = s.find('\n', line + 1);
        const std::string text = s.substr(line + 1, end - line - 1);
        INFO(text);
        REQUIRE_THAT(text, Contains(rows[i].first) && Contains(rows[i].second));
        at = end;
    }
    REQUIRE_THAT(s, Contains("  896\n"));        // 0: 32 * (27 + 1)
    REQUIRE_THAT(s, Contains("  2,097,408\n"));  // 10: 256 * (8192 + 1)
    REQUIRE_THAT(s, Contains("Total params: 2,242,056"));
    REQUIRE_THAT(s, Contains("Trainable params: 2,242,056"));
    REQUIRE_THAT(s, Contains("Non-trainable params: 0"));
    REQUIRE_THAT(s, Contains("Forward activations:") && Contains("MiB"));
    // Activations: every leaf's output (conv and relu outputs have the same size), float32.
    const int64_t elems = 2 * 32 * 64 * 64 + 32 * 32 * 32 + 2 * 64 * 32 * 32 + 64 * 16 * 16 + 2 * 128 * 16 * 16 +
                          128 * 8 * 8 + 8192 + 2 * 256 + 200;
    char buf[64];
    std::snprintf(buf, sizeof buf, "Forward activations: %.2f MiB", double(elems * 4) / (1024.0 * 1024.0));
    REQUIRE_THAT(s, Contains(buf));
    REQUIRE(m->is_training());
    REQUIRE_FALSE((*m)[3]->is_training());
    REQUIRE((*m)[4]->is_training());

    // ResNet: nested names, and a module called twice is listed twice but counted once.
    auto r = models::resnet18_small(10);
    const std::string rs = nn::summary(*r, {1, 3, 16, 16});
    INFO(rs);
    REQUIRE_THAT(rs, Contains("layer2.0.downsample.0") && Contains("(1, 128, 8, 8)"));
    REQUIRE_THAT(rs, Contains("fc") && Contains("(1, 10)"));
    REQUIRE_THAT(rs, Contains("Total params: ") && Contains("11,173,962"));  // 11,271,432 - 513 * 190
}

namespace {

// Output and every parameter gradient of model(x), weighted by w, with Sequential's fusion on or off.
std::vector<std::vector<float>> run_fused(nn::Module& model, const Tensor& x, const Tensor& w, bool fuse) {
    const bool prev = nn::fuse_layers();
    nn::set_fuse_layers(fuse);
    model.zero_grad();
    const Tensor y = model(x);
    sum(y * w).backward();
    nn::set_fuse_layers(prev);
    std::vector<std::vector<float>> out{y.to_vector<float>()};
    for (const auto& [name, p] : model.named_parameters()) out.push_back(p.grad().to_vector<float>());
    return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](float u, float v) {
               uint32_t ub, vb;
               std::memcpy(&ub, &u, 4);
               std::memcpy(&vb, &v, 4);
               return ub == vb;
           });
}

}  // namespace

TEST_CASE("Sequential fuses ReLU + MaxPool2d and Conv2d + ReLU with the same bits", "[nn][fusion]") {
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard kg(k);
        manual_seed(7);
        // The baseline CNN (three ReLU + pool pairs) and a Sequential with a Conv2d + ReLU pair and no pool.
        auto cnn = models::baseline_cnn(10, 3, 16);
        auto conv_relu = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
            std::make_shared<nn::Conv2d>(3, 5, 3, 1, 1), std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(),
            std::make_shared<nn::Linear>(5 * 9 * 7, 4)});
        struct Case {
            nn::Module* model;
            Shape x;
            Shape y;
        };
        for (const Case& c : {Case{cnn.get(), {3, 3, 16, 16}, {3, 10}}, Case{conv_relu.get(), {2, 3, 9, 7}, {2, 4}}}) {
            const Tensor x = Tensor::randn(c.x);
            const Tensor w = Tensor::randn(c.y);
            const auto fused = run_fused(*c.model, x, w, true);
            const auto plain = run_fused(*c.model, x, w, false);
            REQUIRE(fused.size() == plain.size());
            for (size_t i = 0; i < fused.size(); i++) {
                INFO("kernels " << cpu_kernels_name(k) << ", output/gradient " << i);
                CHECK(same_bits(fused[i], plain[i]));
            }
            // Not all zero: the comparison above compared something.
            CHECK(std::any_of(fused[1].begin(), fused[1].end(), [](float v) { return v != 0.0f; }));
        }
    }
    CHECK(nn::fuse_layers());
}

// ---------------------------------------------------------------------------- moves keep handles
namespace {

// A user module that keeps the handle register_parameter returned, as a member.
struct Affine : nn::Module {
    Tensor w, b;
    Affine() {
        w = register_parameter("w", Tensor::from_vector(std::vector<float>{0.5f, -1.0f, 2.0f}, {3}));
        b = register_parameter("b", Tensor::from_vector(std::vector<float>{0.1f}, {1}));
    }
    Tensor forward(const Tensor& x) override { return add(mul(x, w), b); }
    std::string type_name() const override { return "Affine"; }
};

}  // namespace

TEST_CASE("Module::to keeps every handle: an optimizer built before a move trains the moved model", "[nn][optim]") {
    // On the CPU the move that exists is a dtype conversion; on a GPU the device move is checked too.
    manual_seed(3);
    auto model = std::make_shared<Affine>();
    const nn::NamedTensors before = model->named_parameters();
    optim::Sgd sgd(model->named_parameters(), optim::SgdOptions{0.1, 0.9, 0.0, 0.0, false, false});
    // One float32 step first, so the momentum buffers exist when the model is converted.
    const Tensor x32 = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    sum(pow((*model)(x32), 2.0)).backward();
    sgd.step();

    model->to(DType::float64);
    for (size_t i = 0; i < before.size(); i++) {
        INFO(before[i].first);
        // The optimizer's handle, the member and the module's entry are one tensor, now float64.
        REQUIRE(sgd.params()[i].second.is_same(before[i].second));
        REQUIRE(before[i].second.dtype() == DType::float64);
        REQUIRE(before[i].second.requires_grad());
        REQUIRE(before[i].second.is_leaf());
        // The gradient moved with it.
        REQUIRE(before[i].second.grad().defined());
        REQUIRE(before[i].second.grad().dtype() == DType::float64);
    }
    REQUIRE(model->w.dtype() == DType::float64);
    REQUIRE(model->w.is_same(before[0].second));

    const std::vector<double> w0 = model->w.to_vector<double>();
    sgd.zero_grad();
    sum(pow((*model)(x32.to(DType::float64)), 2.0)).backward();
    sgd.step();  // the float32 momentum buffers follow their parameters
    const std::vector<double> w1 = model->w.to_vector<double>();
    REQUIRE(w1 != w0);  // the step trained the moved parameters

    // And back: float32 again, still one tensor.
    model->to(DType::float32);
    REQUIRE(model->w.dtype() == DType::float32);
    REQUIRE(sgd.params()[0].second.is_same(model->w));

    if (cuda_available()) {
        model->to(Device::cuda());
        REQUIRE(sgd.params()[0].second.device() == Device::cuda());
        const std::vector<float> g0 = model->w.to_vector<float>();
        sgd.zero_grad();
        sum(pow((*model)(x32.to(Device::cuda())), 2.0)).backward();
        sgd.step();
        REQUIRE(model->w.to_vector<float>() != g0);
    }
}

TEST_CASE("an optimizer step in which no parameter has a gradient is an error", "[nn][optim][errors]") {
    auto model = std::make_shared<Affine>();
    optim::Sgd sgd(model->named_parameters(), optim::SgdOptions{});
    REQUIRE_THROWS_WITH(sgd.step(), Contains("none of the 2 parameters has a gradient") && Contains("backward()"));
    // One gradient is enough (frozen parameters are skipped, as in PyTorch).
    sum(mul(model->w, 2.0)).backward();
    const std::vector<float> b0 = model->b.to_vector<float>();
    sgd.step();
    REQUIRE(model->b.to_vector<float>() == b0);
}

TEST_CASE("set_data checks its arguments", "[nn][errors]") {
    Tensor p = Tensor::ones({2}).requires_grad_();
    REQUIRE_THROWS_WITH(p.set_data(Tensor::zeros({2}, DType::int32)), Contains("must be floating"));
    Tensor y = mul(p, 2.0);
    REQUIRE_THROWS_WITH(y.set_data(Tensor::zeros({2})), Contains("only leaves"));
    sum(y).backward();
    REQUIRE_THROWS_WITH(p.set_data(Tensor::zeros({3})), Contains("keep its shape"));
    Tensor q = p;  // another handle
    p.set_data(Tensor::full({2}, 5.0, DType::float64));
    REQUIRE(q.dtype() == DType::float64);
    REQUIRE(q.to_vector<double>() == std::vector<double>{5.0, 5.0});
    REQUIRE(q.grad().to_vector<double>() == std::vector<double>{2.0, 2.0});
}

TEST_CASE("Sequential fuses only the exact layer classes, never a subclass that overrides forward", "[nn][fusion]") {
    // A ReLU subclass that leaks negatives: fused into conv2d_relu or relu_max_pool2d it would be skipped.
    struct LeakyReLU : nn::ReLU {
        Tensor forward(const Tensor& x) override { return sub(relu(x), mul(relu(neg(x)), 0.1)); }
    };
    struct MyPool : nn::MaxPool2d {
        MyPool() : nn::MaxPool2d(2) {}
        Tensor forward(const Tensor& x) override { return mul(nn::MaxPool2d::forward(x), 2.0); }
    };
    manual_seed(5);
    auto conv = std::make_shared<nn::Conv2d>(2, 3, 3, 1, 1);
    const Tensor x = Tensor::randn({2, 2, 6, 6});
    for (int variant = 0; variant < 3; variant++) {
        INFO("variant " << variant);
        nn::ModulePtr act = variant == 0 ? nn::ModulePtr(std::make_shared<LeakyReLU>()) : std::make_shared<nn::ReLU>();
        nn::ModulePtr pool =
            variant == 2 ? nn::ModulePtr(std::make_shared<MyPool>()) : std::make_shared<nn::MaxPool2d>(2);
        nn::Sequential seq{conv, act, pool};
        nn::Sequential conv_act{conv, act};
        const Tensor want_pool = (*pool)((*act)((*conv)(x)));
        const Tensor want_act = (*act)((*conv)(x));
        REQUIRE(seq(x).to_vector<float>() == want_pool.to_vector<float>());
        REQUIRE(conv_act(x).to_vector<float>() == want_act.to_vector<float>());
    }
}

// ---------------------------------------------------------------------------- ergonomics
namespace {

// Two inputs: a * w + b.
struct ScaleShift : nn::Module {
    Tensor w;
    ScaleShift() { w = register_parameter("w", Tensor::full({1}, 2.0)); }
    Tensor forward(const std::vector<Tensor>& in) override {
        DYAD_CHECK(in.size() == 2, "ScaleShift takes two inputs");
        return add(mul(in[0], w), in[1]);
    }
};

struct Counting : nn::Module {
    int trained = 0, evaluated = 0;
    Tensor forward(const Tensor& x) override { return x; }
    void train(bool on) override {
        (on ? trained : evaluated)++;
        nn::Module::train(on);
    }
};

struct NoForward : nn::Module {};

}  // namespace

TEST_CASE("a module holder is called like a function and converts to shared pointers", "[nn]") {
    manual_seed(2);
    nn::ModuleHolder<nn::Sequential> model = models::baseline_cnn(10, 1, 8);
    const Tensor x = Tensor::randn({2, 1, 8, 8});
    const Tensor a = model(x), b = (*model)(x);
    REQUIRE(a.to_vector<float>() == b.to_vector<float>());
    REQUIRE(model->size() == 13);
    const std::shared_ptr<nn::Module> base = model;  // converts to a base's shared_ptr
    REQUIRE(base.get() == model.get());
    auto conv = nn::make<nn::Conv2d>(1, 2, 3, 1, 1);
    REQUIRE(conv(x).shape() == Shape{2, 2, 8, 8});
    nn::Sequential seq{conv, nn::make<nn::ReLU>()};  // holders go where a ModulePtr goes
    REQUIRE(seq(x).shape() == Shape{2, 2, 8, 8});
    nn::ModuleHolder<nn::Module> generic = conv;  // a holder of a derived module converts to a base's
    REQUIRE(generic(x).shape() == Shape{2, 2, 8, 8});
}

TEST_CASE("modules: default type_name, virtual train, apply, several inputs", "[nn]") {
    REQUIRE(Affine().type_name() == "Affine");
    REQUIRE(nn::Conv2d(1, 1, 1).type_name() == "Conv2d");

    auto counting = std::make_shared<Counting>();
    nn::Sequential seq{counting, std::make_shared<nn::ReLU>()};
    seq.eval();  // through the base: the override runs
    seq.train();
    REQUIRE(counting->evaluated == 1);
    REQUIRE(counting->trained == 1);

    std::vector<std::string> order;
    seq.apply([&](nn::Module& m) { order.push_back(m.type_name()); });
    REQUIRE(order == std::vector<std::string>{"Counting", "ReLU", "Sequential"});  // children first

    ScaleShift ss;
    const Tensor a = Tensor::full({3}, 1.5), b = Tensor::full({3}, 0.25);
    REQUIRE(ss(a, b).to_vector<float>() == std::vector<float>(3, 3.25f));
    REQUIRE(ss({a, b}).to_vector<float>() == std::vector<float>(3, 3.25f));
    // A one-input call reaches forward(inputs) with one input.
    REQUIRE_THROWS_WITH(ss(a), Catch::Contains("ScaleShift takes two inputs"));
    // Gradients flow through the multi-input forward.
    sum(ss(a, b)).backward();
    REQUIRE(ss.w.grad().to_vector<float>() == std::vector<float>{4.5f});

    NoForward nf;
    REQUIRE_THROWS_WITH(nf(a), Catch::Contains("NoForward: forward is not implemented for 1 input"));
    REQUIRE_THROWS_WITH(nf(a, b), Catch::Contains("for 2 inputs"));
}

TEST_CASE("nn::init: torch.nn.init's bounds, moments and fans", "[nn]") {
    using namespace nn::init;
    REQUIRE(calculate_gain(Nonlinearity::relu) == Approx(std::sqrt(2.0)));
    REQUIRE(calculate_gain(Nonlinearity::tanh) == Approx(5.0 / 3.0));
    REQUIRE(calculate_gain(Nonlinearity::leaky_relu, 0.2) == Approx(std::sqrt(2.0 / 1.04)));
    REQUIRE(calculate_gain(Nonlinearity::sigmoid) == 1.0);
    const Tensor conv_w = Tensor::zeros({64, 32, 3, 3});
    REQUIRE(calculate_fan_in_and_fan_out(conv_w) == std::pair<int64_t, int64_t>{288, 576});
    REQUIRE_THROWS_WITH(calculate_fan_in_and_fan_out(Tensor::zeros({5})), Catch::Contains("fewer than 2 dimensions"));

    // Sample moments over 18,432 values: the standard error of a standard deviation is about 0.5% of it,
    // of a mean about 0.7% of the deviation; 5% bounds fail only for a wrong formula.
    auto moments = [](const Tensor& t) {
        const std::vector<double> v = t.to(DType::float64).to_vector<double>();
        double m = 0, q = 0, lo = v[0], hi = v[0];
        for (double e : v) m += e, lo = std::min(lo, e), hi = std::max(hi, e);
        m /= double(v.size());
        for (double e : v) q += (e - m) * (e - m);
        return std::array<double, 4>{m, std::sqrt(q / double(v.size())), lo, hi};
    };
    manual_seed(3);
    Tensor w = Tensor::zeros({64, 32, 3, 3}).requires_grad_();  // a parameter: filled without recording
    kaiming_normal_(w, 0.0, FanMode::fan_out, Nonlinearity::relu);
    auto m = moments(w);
    REQUIRE(std::abs(m[0]) < 0.05 * std::sqrt(2.0 / 576));
    REQUIRE(m[1] == Approx(std::sqrt(2.0 / 576)).epsilon(0.05));
    REQUIRE(w.requires_grad());
    REQUIRE(w.is_leaf());
    kaiming_uniform_(w);  // a = 0, fan_in, leaky_relu: bound = sqrt(2 / 1.0001) * sqrt(3 / 288)
    m = moments(w);
    const double bound = std::sqrt(2.0 / (1 + 0.01 * 0.01)) * std::sqrt(3.0 / 288);
    REQUIRE(m[2] >= -bound);
    REQUIRE(m[3] <= bound);
    REQUIRE(m[3] > 0.99 * bound);
    REQUIRE(m[1] == Approx(bound / std::sqrt(3.0)).epsilon(0.05));
    xavier_uniform_(w, 2.0);
    m = moments(w);
    REQUIRE(m[3] <= 2.0 * std::sqrt(6.0 / (288 + 576)));
    xavier_normal_(w);
    REQUIRE(moments(w)[1] == Approx(std::sqrt(2.0 / (288 + 576))).epsilon(0.05));
    normal_(w, 3.0, 0.5);
    m = moments(w);
    REQUIRE(m[0] == Approx(3.0).epsilon(0.01));
    REQUIRE(m[1] == Approx(0.5).epsilon(0.05));
    uniform_(w, -2.0, -1.0);
    m = moments(w);
    REQUIRE(m[2] >= -2.0);
    REQUIRE(m[3] < -1.0);
    ones_(w);
    REQUIRE(moments(w)[2] == 1.0);
    zeros_(w);
    REQUIRE(moments(w)[3] == 0.0);
    constant_(w, 0.25);
    REQUIRE(moments(w)[0] == 0.25);
    // The same seed gives the same values on any dtype (drawn in float64, then converted).
    manual_seed(9);
    Tensor d = Tensor::zeros({4, 4}, DType::float64);
    normal_(d);
    manual_seed(9);
    Tensor f = Tensor::zeros({4, 4});
    normal_(f);
    REQUIRE(d.to(DType::float32).to_vector<float>() == f.to_vector<float>());
    REQUIRE_THROWS_WITH(uniform_(w, 1.0, 0.0), Catch::Contains("exceeds"));
    Tensor labels = Tensor::zeros({3}, DType::int32);
    REQUIRE_THROWS_WITH(normal_(labels), Catch::Contains("must be floating"));
}
