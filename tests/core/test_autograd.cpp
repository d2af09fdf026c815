// The tape: leaf gradients, accumulation, reuse, diamonds, grad mode, detach, lifetime, and gradcheck
// itself (it must catch a wrong gradient, a backward that does not repeat bit for bit, and one that is not
// zero for a zero incoming gradient, and name the op and the check).
#include "support/catch.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "lib/autograd/node.h"
#include "lib/tensor/impl.h"
#include "support/compare.h"

using namespace dyad;
using test::AllClose;
using test::values;

static Tensor vec(std::vector<double> v) {
    const int64_t n = int64_t(v.size());
    return Tensor::from_vector(std::move(v), {n});
}

TEST_CASE("leaf gradients of a small expression", "[autograd]") {
    Tensor x = vec({1, 2, 3}).requires_grad_();
    Tensor y = vec({4, 5, 6}).requires_grad_();
    Tensor f = sum(x * y + x);
    REQUIRE(f.requires_grad());
    REQUIRE_FALSE(f.is_leaf());
    f.backward();
    REQUIRE(values(x.grad()) == std::vector<double>{5, 6, 7});
    REQUIRE(values(y.grad()) == std::vector<double>{1, 2, 3});
}

TEST_CASE("gradients accumulate across backward calls until zero_grad", "[autograd]") {
    Tensor x = vec({1, 2}).requires_grad_();
    sum(x * 3.0).backward();
    sum(x * 3.0).backward();
    REQUIRE(values(x.grad()) == std::vector<double>{6, 6});
    x.zero_grad();
    REQUIRE_FALSE(x.grad().defined());
    sum(x * 3.0).backward();
    REQUIRE(values(x.grad()) == std::vector<double>{3, 3});
}

TEST_CASE("post-accumulate gradient hooks see the final gradient once per pass, and queued callbacks run last",
          "[autograd]") {
    Tensor x = vec({1, 2}).requires_grad_();
    Tensor y = vec({3, 4}).requires_grad_();
    std::vector<std::string> log;
    const int64_t hx = x.register_post_accumulate_grad_hook([&](const Tensor& t) {
        // x is used twice: the hook runs once, after both contributions are in.
        REQUIRE(t.is_same(x));
        log.push_back("x " + std::to_string(values(t.grad())[0]));
        autograd::queue_callback([&] { log.push_back("callback " + std::to_string(values(x.grad())[1])); });
    });
    x.register_post_accumulate_grad_hook([&](const Tensor&) { log.push_back("x second"); });
    y.register_post_accumulate_grad_hook([&](const Tensor&) { log.push_back("y"); });
    sum(x * y + x * 2.0).backward();
    REQUIRE(log.size() == 4);
    REQUIRE(log[3] == "callback 6.000000");  // after every hook of the pass
    REQUIRE(std::count(log.begin(), log.end(), "x 5.000000") == 1);
    REQUIRE(std::count(log.begin(), log.end(), "x second") == 1);
    REQUIRE(std::count(log.begin(), log.end(), "y") == 1);
    // Hooks run again on the next pass (after accumulation: 5 + 5) until removed.
    log.clear();
    sum(x * y + x * 2.0).backward();
    REQUIRE(std::count(log.begin(), log.end(), "x 10.000000") == 1);
    x.remove_post_accumulate_grad_hook(hx);
    x.remove_post_accumulate_grad_hook(12345);  // unknown: nothing
    log.clear();
    sum(x * 1.0).backward();
    REQUIRE(log == std::vector<std::string>{"x second"});
    // Only leaves that require grad accumulate; callbacks only during backward.
    Tensor z = x * 2.0;
    REQUIRE_THROWS_WITH(z.register_post_accumulate_grad_hook([](const Tensor&) {}), Catch::Contains("not a leaf"));
    REQUIRE_THROWS_WITH(vec({1}).register_post_accumulate_grad_hook([](const Tensor&) {}),
                        Catch::Contains("not a leaf that requires grad"));
    REQUIRE_THROWS_WITH(autograd::queue_callback([] {}), Catch::Contains("no backward pass is running"));
}

TEST_CASE("a tensor used twice receives the sum of both gradients", "[autograd]") {
    Tensor x = vec({2, -3}).requires_grad_();
    sum(x * x).backward();  // d/dx x^2 = 2x, through both operands of one mul
    REQUIRE(values(x.grad()) == std::vector<double>{4, -6});
}

TEST_CASE("diamond graphs sum every path", "[autograd]") {
    // a -> b = 2a, c = a^2 -> d = b * c = 2a^3: dd/da = 6a^2.
    Tensor a = vec({1, 2, 3}).requires_grad_();
    Tensor b = a * 2.0;
    Tensor c = pow(a, 2.0);
    sum(b * c).backward();
    REQUIRE_THAT(values(a.grad()), AllClose(std::vector<double>{6, 24, 54}).rtol(1e-15));
}

TEST_CASE("backward with an explicit gradient", "[autograd]") {
    Tensor x = vec({1, 2, 3}).requires_grad_();
    Tensor y = x * 2.0;
    y.backward(vec({1, 10, 100}));
    REQUIRE(values(x.grad()) == std::vector<double>{2, 20, 200});
    // backward on a leaf: its gradient is the seed
    Tensor z = vec({0, 0}).requires_grad_();
    z.backward(vec({3, 4}));
    REQUIRE(values(z.grad()) == std::vector<double>{3, 4});
}

TEST_CASE("inputs that do not require grad get none", "[autograd]") {
    Tensor x = vec({1, 2}).requires_grad_();
    Tensor c = vec({5, 5});
    sum(x * c).backward();
    REQUIRE_FALSE(c.grad().defined());
    REQUIRE_FALSE(c.requires_grad());
}

TEST_CASE("NoGradGuard records nothing and restores the mode", "[autograd]") {
    Tensor x = vec({1, 2}).requires_grad_();
    REQUIRE(is_grad_enabled());
    {
        NoGradGuard ng;
        REQUIRE_FALSE(is_grad_enabled());
        Tensor y = x * 2.0;
        REQUIRE_FALSE(y.requires_grad());
        REQUIRE(y.is_leaf());
    }
    REQUIRE(is_grad_enabled());
    REQUIRE((x * 2.0).requires_grad());
}

TEST_CASE("detach cuts the graph but shares storage", "[autograd]") {
    Tensor x = vec({1, 2}).requires_grad_();
    Tensor y = x * 2.0;
    Tensor d = y.detach();
    REQUIRE_FALSE(d.requires_grad());
    REQUIRE(d.impl()->storage == y.impl()->storage);
    Tensor f = sum(d * x);  // only x's direct use contributes
    f.backward();
    REQUIRE(values(x.grad()) == std::vector<double>{2, 4});
}

TEST_CASE("in-place updates of tensors that require grad need NoGradGuard", "[autograd]") {
    Tensor w = vec({1, 2}).requires_grad_();
    REQUIRE_THROWS_WITH(w.add_(vec({1, 1})), Catch::Contains("NoGradGuard"));
    sum(w * w).backward();
    {
        NoGradGuard ng;
        w.add_(w.grad(), -0.5);  // an SGD step
    }
    REQUIRE(values(w) == std::vector<double>{0, 0});
}

TEST_CASE("misuse of the autograd API is a clear error", "[autograd][errors]") {
    Tensor x = vec({1, 2}).requires_grad_();
    Tensor y = x * 2.0;
    REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("backward") && Catch::Contains("2 elements"));
    REQUIRE_THROWS_WITH(y.requires_grad_(false), Catch::Contains("only leaves"));
    REQUIRE_THROWS_WITH(vec({1}).backward(), Catch::Contains("does not require grad"));
    REQUIRE_THROWS_WITH(y.backward(vec({1, 2, 3})), Catch::Contains("must match"));
    REQUIRE_THROWS_WITH(Tensor::ones({2}, DType::int32).requires_grad_(), Catch::Contains("floating"));
}

TEST_CASE("the graph holds no reference cycles: tensors are freed", "[autograd]") {
    std::weak_ptr<detail::TensorImpl> leaf, mid, out;
    std::weak_ptr<autograd::Node> node;
    {
        Tensor x = Tensor::randn({4, 3}).requires_grad_();
        Tensor w = Tensor::randn({3, 2}).requires_grad_();
        Tensor h = exp(matmul(x, w));  // exp saves its output: must not cycle
        Tensor f = sum(h * h);
        f.backward();
        leaf = x.impl(), mid = h.impl(), out = f.impl(), node = f.impl()->grad_fn;
        REQUIRE_FALSE(node.expired());
    }
    REQUIRE(leaf.expired());
    REQUIRE(mid.expired());
    REQUIRE(out.expired());
    REQUIRE(node.expired());
}

TEST_CASE("backward through a long chain does not overflow the stack", "[autograd]") {
    Tensor x = vec({1.0}).requires_grad_();
    Tensor y = x;
    for (int i = 0; i < 20000; i++) y = y + 1.0;
    y.backward(vec({1.0}));
    REQUIRE(values(x.grad()) == std::vector<double>{1.0});
}

TEST_CASE("gradcheck passes a correct gradient and catches a wrong one", "[autograd][gradcheck]") {
    Tensor x = Tensor::randn({3, 2}, DType::float64).requires_grad_();
    const GradcheckResult good = gradcheck([](const std::vector<Tensor>& v) { return exp(v[0]) * v[0]; }, {x});
    INFO(good.report);
    REQUIRE(good.ok);

    // An op whose recorded backward is off by a factor of 2.
    auto wrong_square = [](const std::vector<Tensor>& v) {
        Tensor y;
        {
            NoGradGuard ng;
            y = v[0] * v[0];
        }
        autograd::record("wrong_square", {v[0]}, y, [xd = v[0].detach()](const Tensor& dy, autograd::GradSink& g) {
            Tensor gx = g.grad(0);
            gx.add_(dy * xd, 4.0);  // should be 2
        });
        return y;
    };
    const GradcheckResult bad = gradcheck(wrong_square, {x});
    REQUIRE_FALSE(bad.ok);
    REQUIRE_THAT(bad.report, Catch::Contains("input 0") && Catch::Contains("6 of 6"));
    REQUIRE_THAT(bad.report, Catch::Contains("op wrong_square") && Catch::Contains("finite differences"));
    // gradcheck does not disturb the caller's gradients
    REQUIRE_FALSE(x.grad().defined());
}

TEST_CASE("gradcheck catches a backward that does not repeat or is not zero for a zero gradient",
          "[autograd][gradcheck]") {
    using Catch::Contains;
    Tensor x = Tensor::randn({3, 2}, DType::float64).requires_grad_();
    // The right gradient, scaled by 1 + 1e-12 * (number of backward passes so far): far inside the
    // finite-difference tolerance, but a different bit pattern each pass.
    auto passes = std::make_shared<int>(0);
    auto drifting_square = [passes](const std::vector<Tensor>& v) {
        Tensor y;
        {
            NoGradGuard ng;
            y = v[0] * v[0];
        }
        autograd::record("drifting_square", {v[0]}, y,
                         [xd = v[0].detach(), passes](const Tensor& dy, autograd::GradSink& g) {
                             Tensor gx = g.grad(0);
                             gx.add_(dy * xd, 2.0 * (1.0 + 1e-12 * double(++*passes)));
                         });
        return y;
    };
    GradcheckResult r = gradcheck(drifting_square, {x});
    INFO(r.report);
    REQUIRE_FALSE(r.ok);
    REQUIRE_THAT(r.report, Contains("op drifting_square") && Contains("repeated backward") && Contains("input 0"));
    REQUIRE_THAT(r.report, !Contains("finite differences") && !Contains("zero grad_output"));

    // The right gradient plus a constant: not zero for a zero incoming gradient.
    auto biased_square = [](const std::vector<Tensor>& v) {
        Tensor y;
        {
            NoGradGuard ng;
            y = v[0] * v[0];
        }
        autograd::record("biased_square", {v[0]}, y, [xd = v[0].detach()](const Tensor& dy, autograd::GradSink& g) {
            Tensor gx = g.grad(0);
            gx.add_(dy * xd, 2.0);
            gx.add_(Tensor::full(gx.shape(), 1e-3, DType::float64));
        });
        return y;
    };
    r = gradcheck(biased_square, {x});
    INFO(r.report);
    REQUIRE_FALSE(r.ok);
    REQUIRE_THAT(r.report, Contains("op biased_square") && Contains("zero grad_output") && Contains("6 of 6"));
    REQUIRE_THAT(r.report, !Contains("repeated backward"));
}

TEST_CASE("gradcheck rejects inputs it cannot check", "[autograd][gradcheck][errors]") {
    auto id = [](const std::vector<Tensor>& v) { return v[0] * 1.0; };
    REQUIRE_THROWS_WITH(gradcheck(id, {Tensor::ones({2}).requires_grad_()}), Catch::Contains("float64"));
    REQUIRE_THROWS_WITH(gradcheck(id, {Tensor::ones({2}, DType::float64)}), Catch::Contains("nothing to check"));
}

// ---------------------------------------------------------------------------- custom ops
namespace {

// d/dx x^3 = 3x^2: the example of include/dyad/autograd.h.
const autograd::CustomOp kCube{"cube", [](const std::vector<Tensor>& in) { return mul(mul(in[0], in[0]), in[0]); },
                               [](const Tensor& dy, const std::vector<Tensor>& in, const Tensor&) {
                                   return std::vector<Tensor>{mul(dy, mul(mul(in[0], in[0]), 3.0))};
                               }};

// softplus(a) * b with the output reused in backward: d/da = sigmoid(a) * b, d/db = softplus(a).
const autograd::CustomOp kSoftplusTimes{
    "softplus_times", [](const std::vector<Tensor>& in) { return mul(log(add(exp(in[0]), 1.0)), in[1]); },
    [](const Tensor& dy, const std::vector<Tensor>& in, const Tensor& out) {
        const Tensor e = exp(in[0]);
        const Tensor sig = div(e, add(e, 1.0));
        return std::vector<Tensor>{mul(dy, mul(sig, in[1])), mul(dy, div(out, in[1]))};
    }};

}  // namespace

TEST_CASE("custom ops: forward and backward written by the user pass a gradient check", "[autograd][gradcheck]") {
    manual_seed(4);
    const Tensor x = Tensor::randn({3, 5}, DType::float64).requires_grad_();
    const GradcheckResult r = gradcheck([](const std::vector<Tensor>& v) { return autograd::apply(kCube, v); }, {x});
    INFO(r.report);
    REQUIRE(r.ok);
    const Tensor a = Tensor::randn({4}, DType::float64).requires_grad_();
    const Tensor b = add(Tensor::rand({4}, DType::float64), 0.5).requires_grad_();  // away from 0 (divided by)
    const GradcheckResult r2 =
        gradcheck([](const std::vector<Tensor>& v) { return autograd::apply(kSoftplusTimes, v); }, {a, b});
    INFO(r2.report);
    REQUIRE(r2.ok);
}

TEST_CASE("custom ops: accumulation, no recording without grad, and named errors", "[autograd][errors]") {
    using Catch::Contains;
    Tensor x = Tensor::full({2}, 2.0).requires_grad_();
    // Used twice with another op: gradients add (3x^2 + 1 = 13).
    sum(add(autograd::apply(kCube, {x}), x)).backward();
    REQUIRE(x.grad().to_vector<float>() == std::vector<float>{13, 13});
    {
        NoGradGuard ng;
        const Tensor y = autograd::apply(kCube, {x});
        REQUIRE_FALSE(y.requires_grad());
        REQUIRE(y.to_vector<float>() == std::vector<float>{8, 8});
    }
    // A backward of the wrong arity, shape or kind is named when backward runs.
    autograd::CustomOp bad = kCube;
    bad.name = "bad_cube";
    bad.backward = [](const Tensor& dy, const std::vector<Tensor>&, const Tensor&) {
        return std::vector<Tensor>{dy, dy};
    };
    REQUIRE_THROWS_WITH(sum(autograd::apply(bad, {x})).backward(),
                        Contains("bad_cube: backward returned 2 gradients for 1 inputs"));
    bad.backward = [](const Tensor&, const std::vector<Tensor>&, const Tensor&) {
        return std::vector<Tensor>{Tensor::zeros({3})};
    };
    REQUIRE_THROWS_WITH(sum(autograd::apply(bad, {x})).backward(), Contains("bad_cube: the gradient of input 0"));
    bad.backward = nullptr;
    REQUIRE_THROWS_WITH(autograd::apply(bad, {x}), Contains("bad_cube: the custom op has no backward function"));
    bad.forward = [](const std::vector<Tensor>&) { return Tensor(); };
    REQUIRE_THROWS_WITH(autograd::apply(bad, {Tensor::ones({1})}), Contains("forward returned an undefined tensor"));
    // An input changed in place after the op recorded it: backward refuses, as for dyad's own ops.
    Tensor y = Tensor::full({2}, 3.0).requires_grad_();
    Tensor h = mul(y, 1.0);
    const Tensor out = autograd::apply(kCube, {h});
    {
        NoGradGuard ng;
        h.add_(Tensor::ones({2}));
    }
    REQUIRE_THROWS(sum(out).backward());
}

TEST_CASE("inference mode records nothing and gives the values of a recorded forward", "[autograd][pool]") {
    manual_seed(8);
    const Tensor x = Tensor::randn({2, 3, 6, 6}).requires_grad_();
    const Tensor with_grad = max_pool2d(x, 2);
    const Tensor fused_with_grad = relu_max_pool2d(x, 3, 2, 1);
    InferenceModeGuard im;
    REQUIRE_FALSE(is_grad_enabled());
    const Tensor y = max_pool2d(x, 2), z = relu_max_pool2d(x, 3, 2, 1);
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(y.to_vector<float>() == with_grad.to_vector<float>());
    REQUIRE(z.to_vector<float>() == fused_with_grad.to_vector<float>());
}
