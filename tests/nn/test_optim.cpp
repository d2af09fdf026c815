// optim::Sgd, Adam/AdamW and the learning-rate schedules: Sgd against an independent re-implementation of
// torch.optim.SGD's rule in plain double arithmetic for every combination of momentum, dampening, Nesterov
// and weight decay, parameters without a gradient, check_finite, option errors, state_dict()/load_state_dict()
// round trips, the float64 adam_step against the rule written out in doubles, parameter groups,
// clip_grad_norm_'s known values, and each schedule's rate sequence. The sgd_step and adam_step kernels,
// Sgd, AdamW and clip_grad_norm_ on every kernel set against naive: tests/ops/optim.cpp.
#include "support/catch.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/optim.h"
#include "support/compare.h"
#include "support/optim_cases.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::describe;
using test::same_bits;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};

// torch.optim.SGD's step for one parameter, written out in doubles (the code under test is not used):
//   d_p = grad + weight_decay * p
//   buf = d_p on the first step, else momentum * buf + (1 - dampening) * d_p
//   d_p = d_p + momentum * buf (Nesterov) or buf
//   p = p - lr * d_p
struct RefParam {
    std::vector<double> p, buf;
    bool started = false;
};

void ref_step(RefParam& r, const std::vector<double>& grad, const optim::SgdOptions& o) {
    if (o.momentum != 0 && !r.started) r.buf.assign(r.p.size(), 0.0);
    for (size_t i = 0; i < r.p.size(); i++) {
        double d = grad[i];
        if (o.weight_decay != 0) d += o.weight_decay * r.p[i];
        if (o.momentum != 0) {
            r.buf[i] = r.started ? o.momentum * r.buf[i] + (1 - o.dampening) * d : d;
            d = o.nesterov ? d + o.momentum * r.buf[i] : r.buf[i];
        }
        r.p[i] -= o.lr * d;
    }
    if (o.momentum != 0) r.started = true;
}

// A deterministic gradient for step `t` of parameter `k`: varies with the element, the step and the value.
std::vector<double> make_grad(const std::vector<double>& p, int t, int k) {
    std::vector<double> g(p.size());
    for (size_t i = 0; i < p.size(); i++) g[i] = std::sin(0.7 * double(i) + 1.3 * t + k) + 0.25 * p[i];
    return g;
}

optim::Sgd make_sgd(double lr, std::vector<Tensor>& keep) {
    keep = {Tensor::zeros({2})};
    optim::SgdOptions o;
    o.lr = lr;
    return optim::Sgd(keep, o);
}

}  // namespace

// ---------------------------------------------------------------------------- Sgd against the rule
TEST_CASE("Sgd matches torch.optim.SGD's rule for every option combination", "[optim][naive][omp]") {
    const std::vector<Shape> shapes = {{3, 4}, {5}, {1}};
    for (const optim::SgdOptions& o : test::sgd_option_sets()) {
        for (DType dt : {DType::float64, DType::float32}) {
            for (CpuKernels k : kKernelSets) {
                CpuKernelsGuard guard(k);
                INFO(describe(o) << " " << dtype_name(dt) << " " << cpu_kernels_name(k));
                std::vector<Tensor> params;
                std::vector<RefParam> ref;
                for (size_t j = 0; j < shapes.size(); j++) {
                    const Tensor t = test::random_tensor(shapes[j], 80 + j, test::Layout::contiguous, DType::float64);
                    ref.push_back({t.to_vector<double>(), {}, false});
                    params.push_back(t.to(dt).requires_grad_());
                    ref.back().p = values(params.back());  // the start values after rounding to dt
                }
                optim::Sgd opt(params, o);
                optim::SgdOptions ro = o;
                for (int t = 0; t < 6; t++) {
                    if (t == 4) {  // a rate change mid-way (what a schedule does)
                        opt.set_lr(0.03);
                        ro.lr = 0.03;
                    }
                    for (size_t j = 0; j < params.size(); j++) {
                        const std::vector<double> g = make_grad(ref[j].p, t, int(j));
                        params[j].set_grad(Tensor::from_vector(g, shapes[j]).to(dt));
                        ref_step(ref[j], g, ro);
                    }
                    opt.step();
                    REQUIRE(opt.step_count() == t + 1);
                    for (size_t j = 0; j < params.size(); j++) {
                        // float64: the same operations in the same order, up to the last bit or two.
                        // float32: each step rounds to float; 6 steps of values ~1 stay within 1e-5.
                        const double rtol = dt == DType::float64 ? 1e-13 : 1e-5;
                        REQUIRE_THAT(values(params[j]), AllClose(ref[j].p).rtol(rtol).atol(rtol));
                    }
                    opt.zero_grad();
                    for (const Tensor& p : params) REQUIRE_FALSE(p.grad().defined());
                }
                REQUIRE(opt.state_dict().size() == (o.momentum != 0 ? shapes.size() : 0));
            }
        }
    }
}

TEST_CASE("Sgd skips parameters without a gradient and starts their momentum later", "[optim]") {
    optim::SgdOptions o;
    o.lr = 0.5;
    o.momentum = 0.9;
    o.dampening = 0.5;
    Tensor a = Tensor::from_vector(std::vector<double>{1, 2}, {2}).requires_grad_();
    Tensor b = Tensor::from_vector(std::vector<double>{3, 4, 5}, {3}).requires_grad_();
    optim::Sgd opt({{"a", a}, {"b", b}}, o);
    a.set_grad(Tensor::from_vector(std::vector<double>{1, 1}, {2}));
    opt.step();  // a: buf = g = 1, a -= 0.5
    REQUIRE(values(a) == std::vector<double>{0.5, 1.5});
    REQUIRE(values(b) == std::vector<double>{3, 4, 5});
    auto st = opt.state_dict();
    REQUIRE(st.size() == 1);
    REQUIRE(st[0].first == "momentum_buffer.a");
    // b's first step: its buffer starts as its gradient (no dampening on the first step); a's continues.
    b.set_grad(Tensor::from_vector(std::vector<double>{2, 2, 2}, {3}));
    opt.step();  // a: buf = 0.9 * 1 + 0.5 * 1 = 1.4, a -= 0.7; b: buf = 2, b -= 1
    REQUIRE_THAT(values(a), AllClose(std::vector<double>{-0.2, 0.8}).rtol(1e-15));
    REQUIRE(values(b) == std::vector<double>{2, 3, 4});
    st = opt.state_dict();
    REQUIRE(st.size() == 2);
    REQUIRE(st[1].first == "momentum_buffer.b");
    REQUIRE(values(st[1].second) == std::vector<double>{2, 2, 2});
}

TEST_CASE("Sgd check_finite throws naming the parameter and changes nothing", "[optim][errors]") {
    for (double bad : {std::nan(""), double(INFINITY), -double(INFINITY)}) {
        optim::SgdOptions o;
        o.lr = 0.1;
        o.momentum = 0.9;
        o.check_finite = true;
        Tensor w = Tensor::ones({4}).requires_grad_(), bias = Tensor::ones({3}).requires_grad_();
        optim::Sgd opt({{"fc.weight", w}, {"fc.bias", bias}}, o);
        w.set_grad(Tensor::full({4}, 0.5));
        bias.set_grad(Tensor::from_vector(std::vector<float>{1, float(bad), 1}, {3}));
        INFO("bad value " << bad);
        REQUIRE_THROWS_WITH(opt.step(), Catch::Contains("fc.bias") && Catch::Contains("non-finite"));
        REQUIRE(values(w) == std::vector<double>{1, 1, 1, 1});  // checked before anything was updated
        REQUIRE(values(bias) == std::vector<double>{1, 1, 1});
        REQUIRE(opt.state_dict().empty());
        REQUIRE(opt.step_count() == 0);
        // Without the check the step goes through.
        bias.set_grad(Tensor::ones({3}));
        opt.step();
        REQUIRE_THAT(values(w), AllClose(std::vector<double>{0.95, 0.95, 0.95, 0.95}).rtol(1e-7));
    }
}

TEST_CASE("Sgd option errors read like PyTorch's", "[optim][errors]") {
    using Catch::Contains;
    std::vector<Tensor> p = {Tensor::zeros({2})};
    auto with = [](double lr, double momentum, double dampening, double wd, bool nesterov) {
        optim::SgdOptions o;
        o.lr = lr, o.momentum = momentum, o.dampening = dampening, o.weight_decay = wd, o.nesterov = nesterov;
        return o;
    };
    REQUIRE_THROWS_WITH(optim::Sgd(p, with(-0.1, 0, 0, 0, false)), Contains("Invalid learning rate: -0.1"));
    REQUIRE_THROWS_WITH(optim::Sgd(p, with(0.1, -0.5, 0, 0, false)), Contains("Invalid momentum value: -0.5"));
    REQUIRE_THROWS_WITH(optim::Sgd(p, with(0.1, 0, 0, -1, false)), Contains("Invalid weight_decay value: -1"));
    REQUIRE_THROWS_WITH(optim::Sgd(p, with(0.1, 0, 0, 0, true)),
                        Contains("Nesterov momentum requires a momentum and zero dampening"));
    REQUIRE_THROWS_WITH(optim::Sgd(p, with(0.1, 0.9, 0.1, 0, true)), Contains("Nesterov") && Contains("0.1"));
    REQUIRE_NOTHROW(optim::Sgd(p, with(0, 0.9, 0, 0.1, true)));
    optim::Sgd ok(p, with(0.1, 0, 0, 0, false));
    REQUIRE_THROWS_WITH(ok.set_lr(-1), Contains("Invalid learning rate: -1"));
    REQUIRE(ok.lr() == 0.1);
    REQUIRE(ok.params()[0].first == "0");
    REQUIRE_THROWS_WITH(optim::Sgd({{"w", Tensor()}}, with(0.1, 0, 0, 0, false)), Contains("'w'"));
    REQUIRE_THROWS_WITH(optim::Sgd({{"w", p[0]}, {"w", p[0]}}, with(0.1, 0, 0, 0, false)), Contains("twice"));
}

TEST_CASE("Sgd state and load_state: a restored optimizer continues identically", "[optim]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        optim::SgdOptions o;
        o.lr = 0.05;
        o.momentum = 0.9;
        o.nesterov = true;
        o.weight_decay = 0.01;
        const Shape sw = {4, 3}, sb = {3};
        Tensor w = test::random_tensor(sw, 91).requires_grad_(), b = test::random_tensor(sb, 92).requires_grad_();
        optim::Sgd opt({{"w", w}, {"b", b}}, o);
        auto set_grads = [&](Tensor& tw, Tensor& tb, int t) {
            tw.set_grad(test::random_tensor(sw, 100 + uint64_t(t)));
            if (t != 1)
                tb.set_grad(test::random_tensor(sb, 200 + uint64_t(t)));  // step 1: no grad for b
            else
                tb.zero_grad();
        };
        for (int t = 0; t < 3; t++) {
            set_grads(w, b, t);
            opt.step();
        }
        // Checkpoint, then keep going with the original.
        const auto state = opt.state_dict();
        REQUIRE(state.size() == 2);
        Tensor w2 = w.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
        optim::Sgd restored({{"w", w2}, {"b", b2}}, o);
        restored.load_state_dict(state, opt.step_count());
        REQUIRE(restored.step_count() == 3);
        for (int t = 3; t < 6; t++) {
            set_grads(w, b, t);
            set_grads(w2, b2, t);
            opt.step();
            restored.step();
        }
        REQUIRE(same_bits(w.to_vector<float>(), w2.to_vector<float>()));
        REQUIRE(same_bits(b.to_vector<float>(), b2.to_vector<float>()));
        // state() hands out copies: the saved buffers did not move with the later steps.
        REQUIRE_FALSE(same_bits(state[0].second.to_vector<float>(), opt.state_dict()[0].second.to_vector<float>()));
        // A missing buffer means "not started": loading only w's restarts b's momentum from its gradient.
        optim::Sgd partial({{"w", w2.detach().clone()}, {"b", b2.detach().clone()}}, o);
        partial.load_state_dict({state[0]}, 3);
        REQUIRE(partial.state_dict().size() == 1);
    }
}

TEST_CASE("Sgd load_state checks everything before changing anything", "[optim][errors]") {
    using Catch::Contains;
    optim::SgdOptions o;
    o.momentum = 0.9;
    Tensor w = Tensor::ones({2, 3}).requires_grad_();
    optim::Sgd opt({{"w", w}}, o);
    w.set_grad(Tensor::ones({2, 3}));
    opt.step();
    const auto before = opt.state_dict();
    REQUIRE_THROWS_WITH(opt.load_state_dict({{"momentum_buffer.w", Tensor::zeros({3, 2})}}, 9),
                        Contains("(3, 2)") && Contains("(2, 3)") && Contains("'w'"));
    REQUIRE_THROWS_WITH(opt.load_state_dict({{"momentum_buffer.v", Tensor::zeros({2, 3})}}, 9),
                        Contains("is not the state of a parameter"));
    REQUIRE_THROWS_WITH(opt.load_state_dict({{"velocity.w", Tensor::zeros({2, 3})}}, 9),
                        Contains("'velocity.w' is not the state of a parameter"));
    REQUIRE_THROWS_WITH(opt.load_state_dict({}, -1), Contains("negative step count"));
    REQUIRE(opt.step_count() == 1);
    REQUIRE(values(opt.state_dict()[0].second) == values(before[0].second));
}

// ---------------------------------------------------------------------------- schedules
TEST_CASE("StepLr: base * gamma^(epoch / step_size)", "[schedule]") {
    std::vector<Tensor> keep;
    optim::Sgd opt = make_sgd(0.1, keep);
    optim::StepLr s(opt, 3, 0.5);
    REQUIRE(s.base_lr() == 0.1);
    const std::vector<double> expect = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125};
    for (size_t e = 0; e < expect.size(); e++) {
        INFO("epoch " << e);
        REQUIRE(s.last_epoch() == int64_t(e));
        REQUIRE(opt.lr() == Approx(expect[e]).epsilon(1e-15));
        REQUIRE(s.lr_at(int64_t(e)) == opt.lr());
        s.step();
    }
    REQUIRE_THROWS_WITH(optim::StepLr(opt, 0), Catch::Contains("step_size"));
}

TEST_CASE("MultiStepLr: base * gamma^(milestones passed)", "[schedule]") {
    std::vector<Tensor> keep;
    optim::Sgd opt = make_sgd(1.0, keep);
    optim::MultiStepLr s(opt, {2, 5, 6}, 0.1);
    // bisect_right: the rate changes at the milestone epoch itself.
    const std::vector<double> expect = {1, 1, 0.1, 0.1, 0.1, 0.01, 0.001, 0.001, 0.001};
    for (size_t e = 0; e < expect.size(); e++) {
        INFO("epoch " << e);
        REQUIRE(opt.lr() == Approx(expect[e]).epsilon(1e-15));
        s.step();
    }
    REQUIRE_THROWS_WITH(optim::MultiStepLr(opt, {5, 2}), Catch::Contains("milestones must increase"));
    REQUIRE_THROWS_WITH(optim::MultiStepLr(opt, {3, 3}), Catch::Contains("milestones must increase"));
}

TEST_CASE("CosineWarmupLr: linear warm-up, cosine to min_lr, then min_lr", "[schedule]") {
    std::vector<Tensor> keep;
    optim::Sgd opt = make_sgd(0.1, keep);
    optim::CosineWarmupLr s(opt, 2, 6, 0.01, 0.1);
    // Warm-up: 0.1 * (0.1 + 0.9 * e / 2) for e < 2; then 0.01 + 0.09 * (1 + cos(pi * (e - 2) / 4)) / 2.
    const double c = std::cos(3.14159265358979323846 / 4);
    const std::vector<double> expect = {0.01, 0.055, 0.1, 0.01 + 0.045 * (1 + c), 0.055, 0.01 + 0.045 * (1 - c),
                                        0.01, 0.01,  0.01};
    for (size_t e = 0; e < expect.size(); e++) {
        INFO("epoch " << e);
        REQUIRE(opt.lr() == Approx(expect[e]).epsilon(1e-14));
        s.step();
    }
    REQUIRE_THROWS_WITH(optim::CosineWarmupLr(opt, 5, 5), Catch::Contains("total_epochs"));
    REQUIRE_THROWS_WITH(optim::CosineWarmupLr(opt, -1, 5), Catch::Contains("warmup_epochs"));
    // No warm-up: epoch 0 runs at the base rate.
    optim::Sgd opt2 = make_sgd(0.2, keep);
    optim::CosineWarmupLr s2(opt2, 0, 4);
    REQUIRE(opt2.lr() == Approx(0.2));
}

TEST_CASE("ReduceLrOnPlateau: patience, cooldown, min_lr and the eps rule (mode min)", "[schedule]") {
    std::vector<Tensor> keep;
    optim::Sgd opt = make_sgd(0.1, keep);
    // factor 0.5, patience 2, threshold 0.1 (rel: better means < best * 0.9), cooldown 1, min_lr 0.02.
    optim::ReduceLrOnPlateau s(opt, optim::ReduceLrOnPlateau::Mode::min, 0.5, 2, 0.1, 1, 0.02);
    struct Row {
        double metric, lr;
        int64_t bad;
    };
    const std::vector<Row> rows = {
        {10.0, 0.1, 0},   // better than inf: best 10
        {9.5, 0.1, 1},    // not below 9: bad 1
        {9.2, 0.1, 2},    // bad 2
        {9.1, 0.05, 0},   // bad 3 > patience 2: lr 0.05, cooldown 1, bad reset
        {9.5, 0.05, 0},   // bad 1, but in cooldown: cooldown 0, bad 0
        {9.6, 0.05, 1},   // bad 1
        {8.0, 0.05, 0},   // 8 < 9: best 8
        {8.0, 0.05, 1},   // bad 1
        {7.5, 0.05, 2},   // 7.5 is not below 7.2: bad 2
        {8.0, 0.025, 0},  // bad 3: lr 0.025
        {8.0, 0.025, 0},  // cooldown
        {8.0, 0.025, 1},  //
        {8.0, 0.025, 2},  //
        {8.0, 0.02, 0},   // lr max(0.0125, 0.02) = 0.02
        {8.0, 0.02, 0},   // cooldown
        {8.0, 0.02, 1},   //
        {8.0, 0.02, 2},   //
        {8.0, 0.02, 0},   // bad 3: max(0.01, 0.02) = 0.02, no change (0.02 - 0.02 <= 1e-8)
        {7.19, 0.02, 0},  // cooldown (and better: best 7.19)
        {-1.0, 0.02, 0},  // better
    };
    for (size_t e = 0; e < rows.size(); e++) {
        s.step(rows[e].metric);
        INFO("epoch " << e + 1 << " metric " << rows[e].metric);
        REQUIRE(opt.lr() == Approx(rows[e].lr).epsilon(1e-15));
        REQUIRE(s.num_bad_epochs() == rows[e].bad);
    }
    REQUIRE(s.best() == -1.0);
}

TEST_CASE("ReduceLrOnPlateau: mode max, the 1e-8 eps rule and option errors", "[schedule][errors]") {
    std::vector<Tensor> keep;
    optim::Sgd opt = make_sgd(1.0, keep);
    optim::ReduceLrOnPlateau s(opt, optim::ReduceLrOnPlateau::Mode::max, 0.1, 0, 0.0, 0, 0.0);
    s.step(1.0);  // better than -inf
    REQUIRE(opt.lr() == 1.0);
    s.step(2.0);  // better
    REQUIRE(opt.lr() == 1.0);
    s.step(2.0);  // not above 2 * (1 + 0): bad 1 > patience 0
    REQUIRE(opt.lr() == Approx(0.1).epsilon(1e-15));
    s.step(1.0);
    REQUIRE(opt.lr() == Approx(0.01).epsilon(1e-15));
    REQUIRE(s.best() == 2.0);
    // A reduction smaller than 1e-8 is skipped: 1.5e-8 * 0.5 differs by 7.5e-9.
    optim::Sgd small = make_sgd(1.5e-8, keep);
    optim::ReduceLrOnPlateau t(small, optim::ReduceLrOnPlateau::Mode::min, 0.5, 0);
    t.step(1.0);
    t.step(1.0);
    REQUIRE(small.lr() == 1.5e-8);
    // 3e-8 * 0.5 differs by 1.5e-8: reduced.
    optim::Sgd larger = make_sgd(3e-8, keep);
    optim::ReduceLrOnPlateau u(larger, optim::ReduceLrOnPlateau::Mode::min, 0.5, 0);
    u.step(1.0);
    u.step(1.0);
    REQUIRE(larger.lr() == Approx(1.5e-8).epsilon(1e-15));
    using Catch::Contains;
    REQUIRE_THROWS_WITH(optim::ReduceLrOnPlateau(opt, optim::ReduceLrOnPlateau::Mode::min, 1.0),
                        Contains("factor should be < 1.0"));
    REQUIRE_THROWS_WITH(optim::ReduceLrOnPlateau(opt, optim::ReduceLrOnPlateau::Mode::min, 0.1, -1),
                        Contains("patience"));
    REQUIRE_THROWS_WITH(optim::ReduceLrOnPlateau(opt, optim::ReduceLrOnPlateau::Mode::min, 0.1, 1, 1e-4, 0, -1.0),
                        Contains("min_lr"));
}

// ---------------------------------------------------------------------------- Adam kernel in float64
TEST_CASE("adam_step float64 follows the rule written out in doubles", "[optim][naive]") {
    // The same rule, spelled independently (no shared code), for one element per mode.
    for (const AdamParams& ap : test::adam_kernel_params()) {
        INFO(test::describe(ap));
        double p = 0.7, g = -0.3, m = 0.05, v = 0.02, vmax = 0.03;
        double pe = p, ge = g;
        if (ap.weight_decay != 0) {
            if (ap.decoupled)
                pe = p * (1 - ap.lr * ap.weight_decay);
            else
                ge = g + ap.weight_decay * p;
        }
        const double me = m + (1 - ap.beta1) * (ge - m);
        const double ve = ap.beta2 * v + (1 - ap.beta2) * ge * ge;
        const double se = ap.amsgrad ? std::max(vmax, ve) : ve;
        pe -= ap.lr / ap.bias_correction1 * me / (std::sqrt(se) / std::sqrt(ap.bias_correction2) + ap.eps);
        naive::adam_step<double>(1, &p, &g, &m, &v, ap.amsgrad ? &vmax : nullptr, ap);
        // The lerp's two forms and the operation order differ from the spelled-out rule by a few ulp.
        REQUIRE(p == Approx(pe).epsilon(1e-14).margin(1e-15));
        REQUIRE(m == Approx(me).epsilon(1e-14).margin(1e-15));
        REQUIRE(v == Approx(ve).epsilon(1e-14));
    }
}

// ---------------------------------------------------------------------------- Adam, AdamW
TEST_CASE("AdamW and Adam: options, errors and names as in torch.optim", "[optim][errors]") {
    using Catch::Contains;
    std::vector<Tensor> p = {Tensor::ones({2}).requires_grad_()};
    REQUIRE(optim::AdamW(p).options().weight_decay == 0.01);
    REQUIRE(optim::Adam(p).options().weight_decay == 0.0);
    REQUIRE(optim::AdamW(p).name() == "AdamW");
    REQUIRE(optim::Adam(p).name() == "Adam");
    optim::AdamOptions bad;
    bad.beta2 = 1.0;
    REQUIRE_THROWS_WITH(optim::Adam(p, bad), Contains("Invalid beta parameter at index 1: 1"));
    bad = {};
    bad.beta1 = -0.1;
    REQUIRE_THROWS_WITH(optim::Adam(p, bad), Contains("Invalid beta parameter at index 0: -0.1"));
    bad = {};
    bad.eps = -1;
    REQUIRE_THROWS_WITH(optim::Adam(p, bad), Contains("Invalid epsilon value: -1"));
    bad = {};
    bad.lr = -1;
    REQUIRE_THROWS_WITH(optim::AdamW(p, optim::AdamWOptions()).set_lr(-1), Contains("Invalid learning rate: -1"));
    REQUIRE_THROWS_WITH(optim::Adam(p).step(), Contains("none of the 1 parameters has a gradient"));
}

TEST_CASE("Adam state_dict round trip: a restored optimizer continues bit for bit", "[optim]") {
    for (bool amsgrad : {false, true}) {
        INFO("amsgrad " << amsgrad);
        optim::AdamWOptions o;
        o.lr = 0.05;
        o.amsgrad = amsgrad;
        auto make = [](uint64_t seed) {
            manual_seed(seed);
            return optim::NamedTensors{{"w", Tensor::randn({3, 4}).requires_grad_()},
                                       {"b", Tensor::randn({4}).requires_grad_()}};
        };
        auto grads = [](const optim::NamedTensors& ps, int s) {
            for (const auto& [n, p] : ps) {
                Tensor q = p;
                q.set_grad(mul(Tensor::ones(p.shape()), std::sin(double(s) + double(n.size()))));
            }
        };
        optim::NamedTensors a = make(1), b = make(1);
        optim::AdamW opt_a(a, o), opt_b(b, o);
        for (int s = 0; s < 3; s++) {
            grads(a, s);
            opt_a.step();
        }
        // b: three steps replaced by loading a's state (and its values).
        {
            NoGradGuard ng;
            for (size_t i = 0; i < a.size(); i++) b[i].second.copy_(a[i].second);
        }
        const optim::NamedTensors st = opt_a.state_dict();
        REQUIRE(st.size() == (amsgrad ? 8u : 6u));
        REQUIRE(opt_b.check_state_dict(st).empty());
        opt_b.load_state_dict(st, opt_a.step_count());
        for (int s = 3; s < 6; s++) {
            grads(a, s);
            grads(b, s);
            opt_a.step();
            opt_b.step();
        }
        for (size_t i = 0; i < a.size(); i++)
            REQUIRE(same_bits(a[i].second.to_vector<float>(), b[i].second.to_vector<float>()));
        REQUIRE(opt_b.step_count() == 6);
    }
}

TEST_CASE("Adam check_state_dict names every problem and load changes nothing", "[optim][errors]") {
    using Catch::Contains;
    Tensor w = Tensor::ones({2, 3}).requires_grad_();
    optim::Adam opt({{"w", w}});
    w.set_grad(Tensor::ones({2, 3}));
    opt.step();
    const optim::NamedTensors good = opt.state_dict();
    auto without = [&](const std::string& key) {
        optim::NamedTensors out;
        for (const auto& e : good)
            if (e.first != key) out.push_back(e);
        return out;
    };
    REQUIRE_THROWS_WITH(opt.load_state_dict(without("exp_avg_sq.w"), 3), Contains("state of 'w' is incomplete"));
    optim::NamedTensors extra = good;
    extra.emplace_back("max_exp_avg_sq.w", Tensor::zeros({2, 3}));
    REQUIRE_THROWS_WITH(opt.load_state_dict(extra, 3), Contains("amsgrad is off"));
    optim::NamedTensors shaped = good;
    shaped[1].second = Tensor::zeros({3, 2});
    REQUIRE_THROWS_WITH(opt.load_state_dict(shaped, 3), Contains("(3, 2)") && Contains("'w'"));
    optim::NamedTensors bad_step = good;
    bad_step[0].second = Tensor::full({}, -2.0, DType::float64);
    REQUIRE_THROWS_WITH(opt.load_state_dict(bad_step, 3), Contains("is not a step count"));
    REQUIRE_THROWS_WITH(opt.load_state_dict({{"momentum_buffer.w", Tensor::zeros({2, 3})}}, 3),
                        Contains("is not the state of a parameter"));
    REQUIRE(opt.step_count() == 1);
    REQUIRE(values(opt.state_dict()[1].second) == values(good[1].second));
}

// ---------------------------------------------------------------------------- parameter groups
TEST_CASE("parameter groups: each group steps with its own lr, weight decay and momentum", "[optim]") {
    // Two groups of one parameter each, against two single-group optimizers with the same options.
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard kg(k);
        auto param = [](uint64_t seed) {
            manual_seed(seed);
            return Tensor::randn({5, 3}).requires_grad_();
        };
        Tensor a = param(1), b = param(2), a1 = param(1), b1 = param(2);
        optim::SgdOptions base;
        base.lr = 0.1;
        base.momentum = 0.9;
        std::vector<optim::ParamGroup> groups;
        groups.emplace_back(optim::NamedTensors{{"a", a}});
        groups.emplace_back(optim::NamedTensors{{"b", b}}, 0.01, 0.2, 0.5);
        optim::Sgd grouped(groups, base);
        REQUIRE(grouped.num_groups() == 2);
        REQUIRE(grouped.lr(1) == 0.01);
        REQUIRE(grouped.weight_decay(1) == 0.2);
        REQUIRE(grouped.momentum(1) == 0.5);
        REQUIRE(grouped.momentum(0) == 0.9);
        optim::SgdOptions second = base;
        second.lr = 0.01, second.weight_decay = 0.2, second.momentum = 0.5;
        optim::Sgd only_a({{"a", a1}}, base), only_b({{"b", b1}}, second);
        for (int s = 0; s < 3; s++) {
            for (Tensor* t : {&a, &b, &a1, &b1}) t->set_grad(mul(Tensor::ones({5, 3}), 0.3 * (s + 1)));
            grouped.step();
            only_a.step();
            only_b.step();
        }
        REQUIRE(same_bits(a.to_vector<float>(), a1.to_vector<float>()));
        REQUIRE(same_bits(b.to_vector<float>(), b1.to_vector<float>()));
        REQUIRE(values(a) != values(b));
    }
}

TEST_CASE("decay_groups exempts biases and norm parameters from weight decay", "[optim]") {
    auto model = models::resnet18_small(10, 3);
    const std::vector<optim::ParamGroup> g = optim::decay_groups(model->named_parameters(), 5e-4);
    REQUIRE(g.size() == 2);
    REQUIRE(g[0].weight_decay == 5e-4);
    REQUIRE(g[1].weight_decay == 0.0);
    for (const auto& [n, p] : g[0].params) REQUIRE(p.dim() >= 2);
    for (const auto& [n, p] : g[1].params) REQUIRE(p.dim() < 2);
    REQUIRE(g[0].params.size() + g[1].params.size() == model->named_parameters().size());
    optim::AdamW opt(g);
    REQUIRE(opt.weight_decay(0) == 5e-4);
    REQUIRE(opt.weight_decay(1) == 0.0);
    REQUIRE(opt.params().size() == model->named_parameters().size());
}

TEST_CASE("schedules set every group's rate from its own base rate", "[schedule]") {
    Tensor a = Tensor::zeros({2}).requires_grad_(), b = Tensor::zeros({2}).requires_grad_();
    std::vector<optim::ParamGroup> groups;
    groups.emplace_back(optim::NamedTensors{{"a", a}});
    groups.emplace_back(optim::NamedTensors{{"b", b}}, 0.01);
    optim::Adam opt(groups, optim::AdamOptions());
    optim::StepLr sched(opt, 2, 0.5);
    REQUIRE(sched.base_lr(0) == 1e-3);
    REQUIRE(sched.base_lr(1) == 0.01);
    for (int e = 0; e < 5; e++) sched.step();
    REQUIRE(opt.lr(0) == Approx(1e-3 * 0.25));
    REQUIRE(opt.lr(1) == Approx(0.01 * 0.25));
    optim::ReduceLrOnPlateau plateau(opt, optim::ReduceLrOnPlateau::Mode::min, 0.1, 0);
    plateau.step(1.0);
    plateau.step(1.0);  // no improvement: both groups drop
    REQUIRE(opt.lr(0) == Approx(1e-3 * 0.25 * 0.1));
    REQUIRE(opt.lr(1) == Approx(0.01 * 0.25 * 0.1));
}

// ---------------------------------------------------------------------------- clip_grad_norm_
TEST_CASE("clip_grad_norm_ scales gradients above the norm and leaves the others", "[optim]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard kg(k);
        Tensor a = Tensor::zeros({2}).requires_grad_(), b = Tensor::zeros({1}).requires_grad_();
        Tensor frozen = Tensor::zeros({3}).requires_grad_();  // no gradient: skipped
        a.set_grad(Tensor::from_vector(std::vector<float>{3, 0}, {2}));
        b.set_grad(Tensor::from_vector(std::vector<float>{-4}, {1}));
        // Norm 5: within 10 nothing changes, at 1 everything shrinks by 1 / (5 + 1e-6).
        REQUIRE(optim::clip_grad_norm_({a, b, frozen}, 10.0).item() == 5.0);
        REQUIRE(a.grad().to_vector<float>() == std::vector<float>{3, 0});
        const Tensor total = optim::clip_grad_norm_({a, b, frozen}, 1.0);
        REQUIRE(total.item() == 5.0);
        const float c = 1.0f / (5.0f + 1e-6f);
        REQUIRE(a.grad().to_vector<float>() == std::vector<float>{3 * c, 0});
        REQUIRE(b.grad().to_vector<float>() == std::vector<float>{-4 * c});
        // The largest absolute value with norm_type infinity.
        REQUIRE(optim::clip_grad_norm_({a, b}, 100.0, INFINITY).item() == Approx(4 * c));
        // Large gradients, summed in double: no overflow of a float sum of squares.
        Tensor big = Tensor::zeros({100003}).requires_grad_();
        big.set_grad(Tensor::full({100003}, 1e20));
        REQUIRE(optim::clip_grad_norm_({big}, 1.0).item() == Approx(1e20 * std::sqrt(100003.0)).epsilon(1e-6));
    }
}

TEST_CASE("clip_grad_norm_ errors and edge cases", "[optim][errors]") {
    using Catch::Contains;
    Tensor a = Tensor::zeros({2}).requires_grad_();
    REQUIRE(optim::clip_grad_norm_({a}, 1.0).item() == 0.0);  // no gradient at all
    a.set_grad(Tensor::ones({2}));
    REQUIRE_THROWS_WITH(optim::clip_grad_norm_({a}, -1.0), Contains("max_norm"));
    REQUIRE_THROWS_WITH(optim::clip_grad_norm_({a}, 1.0, 1.0), Contains("norm_type must be 2 or infinity"));
    Tensor d = Tensor::zeros({2}, DType::float64).requires_grad_();
    d.set_grad(Tensor::ones({2}, DType::float64));
    REQUIRE_THROWS_WITH(optim::clip_grad_norm_({a, d}, 1.0), Contains("share one device and dtype"));
}

TEST_CASE("Sgd and Adam are one interface: schedulers and the step loop take any optimizer", "[optim]") {
    std::vector<std::unique_ptr<optim::Optimizer>> opts;
    std::vector<Tensor> ws;
    for (int i = 0; i < 3; i++) ws.push_back(Tensor::ones({4}).requires_grad_());
    opts.push_back(std::make_unique<optim::Sgd>(std::vector<Tensor>{ws[0]}, optim::SgdOptions()));
    opts.push_back(std::make_unique<optim::Adam>(std::vector<Tensor>{ws[1]}));
    opts.push_back(std::make_unique<optim::AdamW>(std::vector<Tensor>{ws[2]}));
    for (size_t i = 0; i < opts.size(); i++) {
        optim::Optimizer& o = *opts[i];
        optim::CosineWarmupLr sched(o, 1, 4);
        o.zero_grad();
        sum(mul(ws[i], ws[i])).backward();
        o.step();
        sched.step();
        REQUIRE(o.step_count() == 1);
        REQUIRE(ws[i].to_vector<float>() != std::vector<float>(4, 1.0f));
    }
}
