// dyad against PyTorch: reference values written by scripts/make_golden.py (computed in float64 from
// float32 starting values, stored as float32) for the baseline CNN (logits, loss, every gradient, the
// weights after three SGD steps), a BasicBlock in training and eval mode, and cross-entropy with label
// smoothing. Each check runs in float64 through the functional ops (naive kernels) and in float32
// through the modules on both CPU kernel sets. DYAD_GOLDEN_REPORT=1 prints every error measured.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "dyad/dyad.h"

using namespace dyad;

namespace {

const std::string kGolden = DYAD_GOLDEN_DIR;

std::map<std::string, Tensor> load_golden(const std::string& file) {
    std::map<std::string, Tensor> out;
    for (auto& [name, t] : io::load_tensors(kGolden + "/" + file)) out[name] = t;
    return out;
}

const Tensor& get(const std::map<std::string, Tensor>& m, const std::string& name) {
    auto it = m.find(name);
    if (it == m.end()) FAIL("golden file has no tensor " << name);
    return it->second;
}

// Entries "<prefix>name" with the prefix stripped.
nn::NamedTensors with_prefix(const std::map<std::string, Tensor>& m, const std::string& prefix) {
    nn::NamedTensors out;
    for (const auto& [name, t] : m)
        if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), t);
    return out;
}

// Passes when max |actual - expected| <= tol * max(1, max |expected|): the tolerance is relative to the
// tensor's scale, because errors of sums come from the largest terms, not from the element's own size.
void check_close(const std::string& what, const Tensor& actual, const Tensor& expected, double tol) {
    INFO(what);
    REQUIRE(actual.shape() == expected.shape());
    const std::vector<double> a = actual.detach().to(DType::float64).contiguous().to_vector<double>();
    const std::vector<double> e = expected.detach().to(DType::float64).contiguous().to_vector<double>();
    double err = 0, scale = 0;
    for (size_t i = 0; i < a.size(); i++) {
        REQUIRE(std::isfinite(a[i]));
        err = std::max(err, std::abs(a[i] - e[i]));
        scale = std::max(scale, std::abs(e[i]));
    }
    const double rel = err / std::max(1.0, scale);
    if (std::getenv("DYAD_GOLDEN_REPORT"))
        std::printf("golden %-44s max abs err %.3g, relative to scale %.3g\n", what.c_str(), err, rel);
    INFO("max abs err " << err << " scale " << scale << " tolerance " << tol);
    REQUIRE(rel <= tol);
}

// float64 results can only differ from the reference by its float32 rounding (2^-24 relative to each
// value; the reference value itself bounds the scale) plus float64 noise.
constexpr double kTol64 = 1e-7;
// float32 runs accumulate rounding over sums of up to 1152 products (the first linear layer) and through
// four layers: observed errors are ~1e-6 of the scale; 2e-5 leaves room for other summation orders
// while still catching any real defect (a wrong index or a missing term shows as >= 1e-3).
constexpr double kTol32 = 2e-5;

const char* kernels_name(CpuKernels k) { return k == CpuKernels::naive ? "naive" : "omp"; }

}  // namespace

TEST_CASE("golden baseline CNN forward, gradients and SGD steps in float64", "[golden][gradcheck]") {
    const auto g = load_golden("baseline_cnn.safetensors");
    std::map<std::string, Tensor> p;
    for (auto& [name, t] : with_prefix(g, "param.")) p[name] = t.to(DType::float64).requires_grad_();
    const Tensor x = get(g, "input").to(DType::float64);
    const Tensor labels = get(g, "labels");
    auto forward = [&](std::map<std::string, Tensor>& w) {
        Tensor h = max_pool2d(relu(conv2d(x, w["0.weight"], w["0.bias"], 1, 1)), 2);
        h = max_pool2d(relu(conv2d(h, w["3.weight"], w["3.bias"], 1, 1)), 2);
        h = max_pool2d(relu(conv2d(h, w["6.weight"], w["6.bias"], 1, 1)), 2);
        h = relu(linear(flatten(h, 1), w["10.weight"], w["10.bias"]));
        return linear(h, w["12.weight"], w["12.bias"]);
    };
    const Tensor logits = forward(p);
    check_close("baseline f64 logits", logits, get(g, "logits"), kTol64);
    Tensor loss = cross_entropy(logits, labels);
    check_close("baseline f64 loss", loss, get(g, "loss"), kTol64);
    loss.backward();
    for (auto& [name, t] : p) check_close("baseline f64 grad " + name, t.grad(), get(g, "grad." + name), kTol64);
}

TEST_CASE("golden baseline CNN module on both CPU kernel sets in float32", "[golden]") {
    const auto g = load_golden("baseline_cnn.safetensors");
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(k);
        const std::string tag = std::string("baseline f32 ") + kernels_name(k) + " ";
        auto model = models::baseline_cnn(10, 3, 8);
        model->load_state_dict(with_prefix(g, "param."));
        const Tensor x = get(g, "input");
        const Tensor labels = get(g, "labels");
        const Tensor logits = (*model)(x);
        check_close(tag + "logits", logits, get(g, "logits"), kTol32);
        Tensor loss = cross_entropy(logits, labels);
        check_close(tag + "loss", loss, get(g, "loss"), kTol32);
        loss.backward();
        for (auto& [name, t] : model->named_parameters())
            check_close(tag + "grad " + name, t.grad(), get(g, "grad." + name), kTol32);

        // Three steps of SGD from the same starting weights, as the generator does.
        model->load_state_dict(with_prefix(g, "param."));
        optim::SgdOptions o;
        o.lr = 0.05;
        o.momentum = 0.9;
        o.weight_decay = 5e-4;
        o.nesterov = true;
        optim::Sgd sgd(model->named_parameters(), o);
        const std::vector<float> losses = get(g, "sgd.losses").to_vector<float>();
        for (int s = 0; s < 3; s++) {
            sgd.zero_grad();
            Tensor l = cross_entropy((*model)(x), labels);
            check_close(tag + "loss before step " + std::to_string(s), l, Tensor::full({}, losses[s]), kTol32);
            l.backward();
            sgd.step();
        }
        for (auto& [name, t] : model->named_parameters())
            check_close(tag + "after 3 steps " + name, t, get(g, "after3." + name), kTol32);
    }
}

TEST_CASE("golden BasicBlock with batch norm and downsample", "[golden]") {
    const auto g = load_golden("basic_block.safetensors");
    for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
        CpuKernelsGuard guard(k);
        const std::string tag = std::string("block f32 ") + kernels_name(k) + " ";
        nn::BasicBlock block(4, 8, 2);
        block.load_state_dict(with_prefix(g, "param."));
        block.train();
        const Tensor x = get(g, "input").clone().requires_grad_();
        const Tensor y = block(x);
        check_close(tag + "output", y, get(g, "output"), kTol32);
        sum(y * get(g, "upstream")).backward();
        check_close(tag + "grad input", x.grad(), get(g, "grad.input"), kTol32);
        for (auto& [name, t] : block.named_parameters())
            check_close(tag + "grad " + name, t.grad(), get(g, "grad." + name), kTol32);
        for (auto& [name, t] : block.state_dict()) {
            if (t.dtype() == DType::int32) {
                REQUIRE(t.to_vector<int32_t>() == get(g, "after." + name).to_vector<int32_t>());
            } else {
                check_close(tag + "after forward " + name, t, get(g, "after." + name), kTol32);
            }
        }
        block.eval();
        NoGradGuard ng;
        check_close(tag + "eval output", block(x), get(g, "eval_output"), kTol32);
    }
}

TEST_CASE("golden cross-entropy with and without label smoothing", "[golden][loss]") {
    const auto g = load_golden("cross_entropy.safetensors");
    const Tensor labels = get(g, "labels");
    for (DType dt : {DType::float64, DType::float32}) {
        for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
            CpuKernelsGuard guard(k);
            for (auto [tag, eps] : {std::pair<const char*, double>{"plain", 0.0}, {"smooth", 0.1}}) {
                const std::string what = std::string("cross_entropy ") + tag +
                                         (dt == DType::float64 ? " f64 " : " f32 ") + kernels_name(k) + " ";
                const Tensor z = get(g, "logits").to(dt).detach().requires_grad_();
                Tensor loss = cross_entropy(z, labels, eps);
                const double tol = dt == DType::float64 ? kTol64 : 1e-6;
                check_close(what + "loss", loss, get(g, std::string(tag) + ".loss"), tol);
                loss.backward();
                check_close(what + "grad", z.grad(), get(g, std::string(tag) + ".grad"), tol);
            }
        }
    }
}

// Writes a dyad checkpoint of `model`, plus an input and the logits dyad computes for it (eval mode), for
// the reverse check in PyTorch (docs/testing.md):
//   python3 scripts/make_golden.py check build/tests/golden_check.safetensors
//   build/tests/golden_check_inputs.safetensors
// and the same for golden_check_resnet*.safetensors. config = {model kind (0 baseline_cnn, 1
// resnet18_small), classes, channels, image size}. The test itself checks what it can without Python:
// the checkpoint loads back into a fresh model and gives the same logits.
template <typename MakeModel>
void write_reverse_check(const std::string& stem, MakeModel make, const std::vector<int32_t>& config) {
    manual_seed(77);
    auto model = make();
    const Tensor x = Tensor::randn({2, config[2], config[3], config[3]});
    NoGradGuard ng;
    // Two training-mode forwards first, so batch-norm running statistics are not the identity.
    for (int i = 0; i < 2; i++) (void)(*model)(Tensor::randn({4, config[2], config[3], config[3]}) * 2.0 + 0.5);
    model->eval();
    const Tensor logits = (*model)(x);
    const std::string dir = DYAD_TEST_OUTPUT_DIR;
    io::save(dir + "/" + stem + ".safetensors", *model);
    io::save_tensors(dir + "/" + stem + "_inputs.safetensors",
                     {{"input", x}, {"logits", logits}, {"config", Tensor::from_vector(config, {4})}});
    manual_seed(78);
    auto again = make();
    again->eval();
    io::load(dir + "/" + stem + ".safetensors", *again);
    REQUIRE((*again)(x).template to_vector<float>() == logits.template to_vector<float>());
}

TEST_CASE("a dyad checkpoint gives PyTorch the same logits", "[golden][checkpoint]") {
    write_reverse_check("golden_check", [] { return models::baseline_cnn(10, 3, 16); }, {0, 10, 3, 16});
}

TEST_CASE("a dyad resnet18_small checkpoint gives torchvision the same logits", "[golden][checkpoint]") {
    write_reverse_check("golden_check_resnet", [] { return models::resnet18_small(10, 3); }, {1, 10, 3, 16});
}

// ---------------------------------------------------------------------------- Adam, AdamW, clipping
namespace {

// The options of one configuration of optim.safetensors, from its metadata.
optim::AdamOptions adam_options(const io::Metadata& meta, const std::string& cfg) {
    auto num = [&](const std::string& key) { return std::stod(meta.at(cfg + "." + key)); };
    optim::AdamOptions o;
    o.lr = num("lr");
    o.beta1 = num("beta1");
    o.beta2 = num("beta2");
    o.eps = num("eps");
    o.weight_decay = num("weight_decay");
    o.amsgrad = meta.at(cfg + ".amsgrad") == "true";
    return o;
}

std::unique_ptr<optim::Adam> make_adam(const std::string& type, optim::NamedTensors params,
                                       const optim::AdamOptions& o) {
    if (type == "AdamW") {
        optim::AdamWOptions w;
        static_cast<optim::AdamOptions&>(w) = o;
        return std::make_unique<optim::AdamW>(std::move(params), w);
    }
    return std::make_unique<optim::Adam>(std::move(params), o);
}

}  // namespace

TEST_CASE("golden Adam and AdamW steps against torch.optim, float64 and float32", "[golden][optim]") {
    io::Metadata meta;
    std::map<std::string, Tensor> g;
    for (auto& [name, t] : io::load_tensors(kGolden + "/optim.safetensors", &meta)) g[name] = t;
    const int steps = std::stoi(meta.at("steps"));
    // float32 runs: each step's update is lr * m / (sqrt(v) + eps) with every factor rounded once, about
    // 1e-7 relative, and the rounding compounds over five steps (observed worst: 1.2e-7 of the parameters'
    // scale, about 2). 2e-6 leaves room for another operation order and stays far below a wrong term (a
    // missing bias correction moves the first step by 90%, a wrong weight decay by 5% of lr).
    constexpr double kAdamTol32 = 2e-6;
    for (const char* cfg : {"adam", "adam_l2", "adamw", "adamw_amsgrad", "adam_low_beta"}) {
        const std::string type = meta.at(std::string(cfg) + ".type");
        REQUIRE((type == "Adam" || type == "AdamW"));
        for (const DType dt : {DType::float64, DType::float32}) {
            for (CpuKernels k : {CpuKernels::naive, CpuKernels::omp}) {
                if (dt == DType::float64 && k == CpuKernels::omp) continue;  // float64 runs naive
                CpuKernelsGuard kg(k);
                optim::NamedTensors params;
                for (const char* n : {"a", "b", "c"})
                    params.emplace_back(n, get(g, std::string("start.") + n).to(dt).clone().requires_grad_());
                auto opt = make_adam(type, params, adam_options(meta, cfg));
                REQUIRE(opt->name() == type);
                for (int s = 0; s < steps; s++) {
                    for (auto& [n, p] : params) {
                        // c has no gradient at odd steps: its own step count lags behind.
                        const bool none = n == "c" && s % 2 == 1;
                        p.set_grad(none ? Tensor() : get(g, "grad" + std::to_string(s) + "." + n).to(dt));
                    }
                    opt->step();
                    for (auto& [n, p] : params)
                        check_close(std::string(cfg) + " " + dtype_name(dt) + " " + kernels_name(k) + " step " +
                                        std::to_string(s) + " " + n,
                                    p, get(g, std::string(cfg) + ".step" + std::to_string(s) + "." + n),
                                    dt == DType::float64 ? kTol64 : kAdamTol32);
                }
            }
        }
    }
}

TEST_CASE("golden clip_grad_norm_ against torch.nn.utils, both norm types", "[golden][optim]") {
    const auto g = load_golden("optim.safetensors");
    for (const char* kind : {"l2", "inf"}) {
        for (const DType dt : {DType::float64, DType::float32}) {
            std::vector<Tensor> params;
            for (const char* n : {"a", "b", "c"}) {
                Tensor p = get(g, std::string("start.") + n).to(dt).clone().requires_grad_();
                p.set_grad(get(g, std::string("grad0.") + n).to(dt).clone());  // clip scales it in place
                params.push_back(p);
            }
            const double norm_type = std::string(kind) == "l2" ? 2.0 : INFINITY;
            const Tensor total = optim::clip_grad_norm_(params, 0.5, norm_type);
            // The norm in double, rounded once; the clipped gradients are one multiply by the coefficient.
            const double tol = dt == DType::float64 ? kTol64 : 1e-6;
            check_close(std::string("clip ") + kind + " total " + dtype_name(dt), total.reshape({1}),
                        get(g, std::string("clip.") + kind + ".total"), tol);
            const char* names[] = {"a", "b", "c"};
            for (size_t i = 0; i < params.size(); i++)
                check_close(std::string("clip ") + kind + " " + names[i] + " " + dtype_name(dt), params[i].grad(),
                            get(g, std::string("clip.") + kind + "." + names[i]), tol);
        }
    }
}
