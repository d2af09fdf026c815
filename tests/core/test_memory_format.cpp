// Memory formats (tensor.h): channels_last (NHWC) tensors, their detection and conversion (differentiable,
// gradient-checked in float64), and every 4-D op taking a channels_last input: the same values and input
// gradients as from the NCHW input, bit for bit on naive (and on omp where its NHWC kernels add in the
// NCHW order; within the parity tolerances of the naive reference elsewhere), the result and the input's
// gradient in the input's format; the engine's gradient layouts; float64 gradient checks of every
// channels_last op.
#include "support/catch.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/files.h"
#include "support/kernel_sets.h"
#include "support/memory_format_cases.h"
#include "support/random.h"

using namespace dyad;

namespace {

Tensor channels_last(const Tensor& x) { return x.contiguous(MemoryFormat::channels_last); }

}  // namespace

TEST_CASE("channels_last tensors: strides, detection and conversion", "[tensor][memory_format]") {
    const Tensor x = test::random_tensor({2, 3, 4, 5}, 1);
    CHECK(x.memory_format() == MemoryFormat::contiguous);
    CHECK(x.is_contiguous(MemoryFormat::contiguous));
    CHECK(!x.is_contiguous(MemoryFormat::channels_last));

    const Tensor y = channels_last(x);
    CHECK(y.shape() == x.shape());
    CHECK(y.strides() == std::vector<int64_t>{4 * 5 * 3, 1, 5 * 3, 3});  // N, C, H, W over NHWC memory
    CHECK(y.memory_format() == MemoryFormat::channels_last);
    CHECK(y.is_contiguous(MemoryFormat::channels_last));
    CHECK(!y.is_contiguous());
    CHECK(y.to_vector<float>() == x.to_vector<float>());  // the same elements at the same indices
    // In memory: the three channels of pixel (0, 0, 0) first.
    const float* p = y.data<float>();
    for (int64_t c = 0; c < 3; c++) CHECK(p[c] == x.select(0, 0).select(0, c).select(0, 0).select(0, 0).item());
    CHECK(y.contiguous(MemoryFormat::channels_last).is_same(y));  // nothing to do
    CHECK(y.contiguous().is_contiguous());
    CHECK(y.contiguous().to_vector<float>() == x.to_vector<float>());
    CHECK(std::string(memory_format_name(y.memory_format())) == "channels_last");

    // One channel, or 1x1 images: dense in both formats, reported as made (the size-1 dims' strides).
    const Tensor one_channel = test::random_tensor({2, 1, 3, 3}, 2);
    CHECK(one_channel.is_contiguous(MemoryFormat::channels_last));
    CHECK(one_channel.memory_format() == MemoryFormat::contiguous);
    const Tensor one_channel_cl = channels_last(one_channel);
    CHECK(one_channel_cl.memory_format() == MemoryFormat::channels_last);
    CHECK(one_channel_cl.strides() == std::vector<int64_t>{9, 1, 3, 1});
    CHECK(one_channel_cl.to_vector<float>() == one_channel.to_vector<float>());
    CHECK(one_channel_cl.contiguous().is_same(one_channel_cl));  // already dense row-major: itself
    CHECK(channels_last(test::random_tensor({4, 8, 1, 1}, 3)).memory_format() == MemoryFormat::channels_last);
    CHECK(test::random_tensor({4, 8, 1, 1}, 3).memory_format() == MemoryFormat::contiguous);
    CHECK(channels_last(test::random_tensor({1, 1, 1, 1}, 3)).memory_format() == MemoryFormat::contiguous);
    // A transposed view is neither.
    CHECK(!x.transpose(2, 3).is_contiguous(MemoryFormat::channels_last));
    CHECK(x.transpose(2, 3).memory_format() == MemoryFormat::contiguous);

    REQUIRE_THROWS_WITH(test::random_tensor({3, 4, 5}, 4).contiguous(MemoryFormat::channels_last),
                        Catch::Contains("needs a 4-D (N, C, H, W) tensor, got (3, 4, 5)"));
    CHECK(!test::random_tensor({3, 4, 5}, 4).is_contiguous(MemoryFormat::channels_last));
}

TEST_CASE("contiguous(channels_last) is differentiable (float64)", "[tensor][memory_format][gradcheck]") {
    const Tensor x = test::random_tensor({2, 3, 4, 5}, 5, test::Layout::contiguous, DType::float64).requires_grad_();
    GradcheckResult r = gradcheck([](const std::vector<Tensor>& v) { return channels_last(v[0]); }, {x});
    INFO(r.report);
    CHECK(r.ok);
    // And back: from channels_last to contiguous.
    const Tensor y = channels_last(test::random_tensor({2, 3, 4, 5}, 6, test::Layout::contiguous, DType::float64))
                         .detach()
                         .requires_grad_();
    r = gradcheck([](const std::vector<Tensor>& v) { return v[0].contiguous() * 2.0; }, {y});
    INFO(r.report);
    CHECK(r.ok);
}

TEST_CASE("every 4-D op gives the same results from a channels_last input, in channels_last",
          "[tensor][memory_format]") {
    const std::vector<test::FormatOp> ops = test::memory_format_ops(Device::cpu());
    const test::KernelSet& omp_set = test::kernel_sets().front();
    REQUIRE(omp_set.kind == test::KernelSet::Kind::omp);
    for (const test::FormatOp& op : ops) {
        // The reference: naive on the NCHW input.
        Tensor y_ref, dx_ref;
        {
            CpuKernelsGuard guard(CpuKernels::naive);
            const Tensor x = test::random_tensor({2, 3, 7, 9}, 20).requires_grad_();
            y_ref = op.fn(x);
            y_ref.backward(test::random_tensor(y_ref.shape(), 21));
            dx_ref = x.grad();
        }
        for (const CpuKernels kernels : {CpuKernels::naive, CpuKernels::omp}) {
            CpuKernelsGuard guard(kernels);
            INFO(op.name << (kernels == CpuKernels::naive ? " on naive" : " on omp"));
            const Tensor x = test::random_tensor({2, 3, 7, 9}, 20).requires_grad_();
            const Tensor xl = channels_last(x.detach()).requires_grad_();
            const Tensor y = op.fn(x), yl = op.fn(xl);
            CHECK(yl.memory_format() == MemoryFormat::channels_last);
            const Tensor dy = test::random_tensor(y.shape(), 21);
            y.backward(dy);
            yl.backward(dy);
            CHECK(xl.grad().memory_format() == MemoryFormat::channels_last);  // the gradient keeps the layout
            if (kernels == CpuKernels::naive || !op.y_tol) {
                // Same kernels' order in both layouts: the same bits as from the NCHW input.
                test::require_identical(y, yl);
                test::require_identical(x.grad(), xl.grad());
            } else {
                test::require_close(y_ref, yl, op.y_tol(omp_set));
                test::require_close(dx_ref, xl.grad(), op.dx_tol(omp_set));
            }
        }
    }
}

TEST_CASE("a CNN trains the same from channels_last images", "[tensor][memory_format][nn]") {
    const Tensor x = test::random_tensor({4, 3, 16, 16}, 30);
    const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 7, 3, 0}, {4});
    // The loss and every parameter's gradient, from NCHW or channels_last images, on one kernel set.
    auto run = [&](CpuKernels kernels, bool cl) {
        CpuKernelsGuard guard(kernels);
        manual_seed(3);
        auto model = models::baseline_cnn(10, 3, 16);
        const Tensor loss = cross_entropy((*model)(cl ? channels_last(x) : x), labels);
        loss.backward();
        std::vector<Tensor> out{loss};
        for (const auto& [name, p] : model->named_parameters()) out.push_back(p.grad());
        return out;
    };
    const std::vector<Tensor> reference = run(CpuKernels::naive, false);
    // naive adds in the same order in both layouts.
    const std::vector<Tensor> naive_cl = run(CpuKernels::naive, true);
    for (size_t i = 0; i < reference.size(); i++) test::require_identical(reference[i], naive_cl[i]);
    // omp against naive: each of the model's four convolutions within its rule (im2col's dot rule, or
    // Winograd F(4x4)'s 1e-4, which channels_last runs on NCHW copies exactly as the NCHW model does), the
    // error carried through the layers above it and into the parameter gradients, which sum over the batch
    // and every position: 1e-4 relative, 1e-6 absolute on gradients of order 1e-3 (measured: at most 2e-5
    // relative).
    const std::vector<Tensor> omp_cl = run(CpuKernels::omp, true);
    for (size_t i = 0; i < reference.size(); i++) {
        INFO("result " << i << " (0: the loss, then the parameters' gradients)");
        test::require_close(reference[i], omp_cl[i], test::Tolerance{1e-4, 1e-6});
    }
}

TEST_CASE("gradients keep their tensor's memory format through the tape", "[tensor][memory_format][autograd]") {
    const Tensor x0 = test::random_tensor({2, 3, 4, 5}, 40, test::Layout::contiguous, DType::float64);
    const Tensor g = test::random_tensor({2, 3, 4, 5}, 41, test::Layout::contiguous, DType::float64);

    SECTION("a channels_last leaf gets a channels_last gradient; an NCHW one an NCHW gradient") {
        const Tensor a = x0.detach().requires_grad_(), b = channels_last(x0).detach().requires_grad_();
        (relu(a) * 3.0).backward(g);
        (relu(b) * 3.0).backward(g);
        CHECK(b.grad().memory_format() == MemoryFormat::channels_last);
        CHECK(a.grad().memory_format() == MemoryFormat::contiguous);
        test::require_identical(a.grad(), b.grad());
        // A second backward accumulates into the same channels_last buffer.
        const Tensor first = b.grad();
        (relu(b) * 3.0).backward(g);
        CHECK(b.grad().is_same(first));
        test::require_identical(b.grad(), (a.grad() * 2.0));
    }
    SECTION("an op with row-major gradients only, between channels_last ones") {
        // flatten and sum see row-major gradients; relu and exp keep channels_last ones; the engine converts
        // at each boundary, and every path adds up.
        const Tensor a = x0.detach().requires_grad_(), b = channels_last(x0).detach().requires_grad_();
        auto f = [](const Tensor& x) {
            const Tensor r = relu(x);
            return sum(exp(r) * r.flatten(1).reshape(r.shape())) + sum(sum(r, {1}));
        };
        f(a).backward();
        f(b).backward();
        CHECK(b.grad().memory_format() == MemoryFormat::channels_last);
        CHECK_THAT(test::values(b.grad()), test::AllClose(test::values(a.grad())).rtol(1e-12).atol(1e-12));
    }
    SECTION("backward(gradient) takes a seed in either format") {
        const Tensor a = x0.detach().requires_grad_(), b = channels_last(x0).detach().requires_grad_();
        const Tensor ya = exp(a), yb = exp(b);
        REQUIRE(yb.memory_format() == MemoryFormat::channels_last);
        ya.backward(channels_last(g));  // channels_last seed, NCHW result
        yb.backward(g);                 // NCHW seed, channels_last result
        test::require_identical(a.grad(), b.grad());
    }
    SECTION("a leaf whose existing gradient is in the other format keeps accumulating correctly") {
        Tensor b = channels_last(x0).detach().requires_grad_();
        b.set_grad(g.clone());  // row-major
        (b * 2.0).backward(g);
        CHECK(b.grad().memory_format() == MemoryFormat::channels_last);
        test::require_identical(b.grad(), g * 3.0);
    }
    SECTION("gradcheck through mixed layouts (float64)") {
        const Tensor x = channels_last(x0).detach().requires_grad_();
        const GradcheckResult r = gradcheck(
            [](const std::vector<Tensor>& v) {
                const Tensor t = tanh(v[0]) * v[0];
                return t.flatten(1) * 0.5 + relu(t).contiguous().flatten(1);
            },
            {x});
        INFO(r.report);
        CHECK(r.ok);
    }
}

TEST_CASE("gradient checks of every channels_last 4-D op (float64, naive)", "[tensor][memory_format][gradcheck]") {
    CpuKernelsGuard guard(CpuKernels::naive);
    const DType f64 = DType::float64;
    auto t = [&](const Shape& shape, uint64_t seed) {
        return test::random_tensor(shape, seed, test::Layout::contiguous, f64);
    };
    // Inputs that are channels_last leaves; the weights of the convolutions in both layouts.
    const Tensor x = channels_last(t({2, 3, 5, 6}, 50)).detach().requires_grad_();
    const Tensor w = t({4, 3, 3, 3}, 51).requires_grad_(), b = t({4}, 52).requires_grad_();
    const Tensor w_cl = channels_last(t({4, 3, 3, 3}, 53)).detach().requires_grad_();
    const Tensor gamma = t({3}, 54).requires_grad_(), beta = t({3}, 55).requires_grad_();
    const Tensor mean0 = Tensor::zeros({3}, f64), var1 = Tensor::ones({3}, f64);
    using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
    struct Case {
        const char* name;
        Fn fn;
        std::vector<Tensor> inputs;
    };
    const std::vector<Case> cases = {
        {"conv2d",
         [](const std::vector<Tensor>& v) {
             return conv2d(v[0], v[1], v[2], {2, 1}, {1, 1});
         },
         {x, w, b}},
        {"conv2d, channels_last weight",
         [](const std::vector<Tensor>& v) {
             return conv2d(v[0], v[1], Tensor(), {1, 1}, {0, 1});
         },
         {t({2, 3, 5, 6}, 56).requires_grad_(), w_cl}},
        {"conv2d_relu",
         [](const std::vector<Tensor>& v) {
             return conv2d_relu(v[0], v[1], v[2], {1, 1}, {1, 1});
         },
         {x, w, b}},
        {"max_pool2d",
         [](const std::vector<Tensor>& v) {
             return max_pool2d(v[0], {2, 2}, {2, 2}, {1, 0});
         },
         {x}},
        {"relu_max_pool2d",
         [](const std::vector<Tensor>& v) {
             return relu_max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1});
         },
         {x}},
        {"avg_pool2d",
         [](const std::vector<Tensor>& v) {
             return avg_pool2d(v[0], {2, 3}, {1, 2}, {1, 1});
         },
         {x}},
        {"adaptive_avg_pool2d",
         [](const std::vector<Tensor>& v) {
             return adaptive_avg_pool2d(v[0], {3, 4});
         },
         {x}},
        {"batch_norm2d",
         [=](const std::vector<Tensor>& v) {
             return batch_norm2d(v[0], mean0.clone(), var1.clone(), v[1], v[2], true, 0.1, 1e-5);
         },
         {x, gamma, beta}},
        {"batch_norm2d_relu",
         [=](const std::vector<Tensor>& v) {
             return batch_norm2d_relu(v[0], mean0.clone(), var1.clone(), v[1], v[2], true, 0.1, 1e-5);
         },
         {x, gamma, beta}},
        {"relu", [](const std::vector<Tensor>& v) { return relu(v[0]); }, {x}},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        {
            NoGradGuard ng;
            const Tensor y = c.fn(c.inputs);
            CHECK(y.memory_format() == MemoryFormat::channels_last);  // a channels_last op is what is checked
        }
        const GradcheckResult r = gradcheck(c.fn, c.inputs);
        INFO(r.report);
        CHECK(r.ok);
    }
}

TEST_CASE("channels_last parameters: Module::to, optimizer state and checkpoints keep the layout",
          "[tensor][memory_format][nn][optim]") {
    const Tensor x = test::random_tensor({4, 3, 16, 16}, 60);
    const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 7, 3, 0}, {4});
    // Three steps of a CNN with momentum SGD (or AdamW) from NCHW or channels_last images and weights, on
    // naive (whose NHWC kernels add in its NCHW order): the same parameters bit for bit.
    auto train = [&](bool cl, bool adamw) {
        CpuKernelsGuard guard(CpuKernels::naive);
        manual_seed(4);
        auto model = models::baseline_cnn(10, 3, 16);
        if (cl) model->to(MemoryFormat::channels_last);
        std::unique_ptr<optim::Optimizer> opt;
        if (adamw)
            opt = std::make_unique<optim::AdamW>(model->named_parameters(), optim::AdamWOptions{});
        else
            opt = std::make_unique<optim::Sgd>(model->named_parameters(), optim::SgdOptions{0.05, 0.9, 0, 5e-4});
        for (int step = 0; step < 3; step++) {
            opt->zero_grad();
            cross_entropy((*model)(cl ? channels_last(x) : x), labels).backward();
            opt->step();
        }
        return model;
    };
    for (const bool adamw : {false, true}) {
        INFO((adamw ? "AdamW" : "SGD"));
        const auto a = train(false, adamw), b = train(true, adamw);
        const auto pa = a->named_parameters(), pb = b->named_parameters();
        REQUIRE(pa.size() == pb.size());
        for (size_t i = 0; i < pa.size(); i++) {
            INFO(pa[i].first);
            if (pa[i].second.dim() == 4) {
                CHECK(pb[i].second.memory_format() == MemoryFormat::channels_last);
                CHECK(pb[i].second.grad().memory_format() == MemoryFormat::channels_last);
            }
            test::require_identical(pa[i].second, pb[i].second);
        }
    }

    // Back to NCHW, and a checkpoint of the channels_last model loads into an NCHW one with the same values.
    const auto m = train(true, false);
    const std::string path = test::output_path("memory_format", "cl.safetensors");
    io::save_tensors(path, m->named_parameters());
    auto fresh = models::baseline_cnn(10, 3, 16);
    fresh->load_state_dict(io::load_tensors(path));
    const auto pm = m->named_parameters(), pf = fresh->named_parameters();
    for (size_t i = 0; i < pm.size(); i++) test::require_identical(pm[i].second, pf[i].second);
    m->to(MemoryFormat::contiguous);
    for (const auto& [name, p] : m->named_parameters()) CHECK(p.is_contiguous());

    // An optimizer refuses a parameter that is dense in neither layout.
    const Tensor strided = test::random_tensor({4, 6}, 61).t().detach().requires_grad_();
    optim::Sgd sgd({strided}, optim::SgdOptions{});
    sum(strided * 2.0).backward();
    REQUIRE_THROWS_WITH(sgd.step(), Catch::Contains("must be dense (row-major or channels_last)"));
}
