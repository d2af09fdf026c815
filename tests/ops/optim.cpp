// The optimizer kernels on every kernel set against the naive reference. sgd_step and adam_step compute
// each element with naive's float expression, so they are compared bit for bit: every SgdParams mode,
// first steps (whose momentum buffer starts as NaN: it is written without being read), pointers on and off
// the 16-byte alignment, many tensors of odd sizes in one multi-tensor step (the GPU's sgd_step_multi and
// adam_step_multi; a CPU set steps the tensors one by one), every Adam mode. Through the API: optim::Sgd
// and AdamW stepping a model's parameters as the naive CPU does (queueing work only: no host wait), Sgd's
// check_finite, clip_grad_norm_ against naive. Sgd and Adam against the rule written out in doubles,
// schedules, state and errors: tests/nn/test_optim.cpp.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/optim.h"
#include "support/compare.h"
#include "support/kernel_sets.h"
#include "support/optim_cases.h"
#include "support/random.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::same_bits;

namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) { return test::random_tensor({n}, seed).to_vector<float>(); }

// The n elements of v from `offset` on (the ones a kernel wrote).
std::vector<float> part(const std::vector<float>& v, int64_t offset, int64_t n) {
    return std::vector<float>(v.begin() + offset, v.begin() + offset + n);
}

// The multi-tensor steps: one CUDA kernel steps many tensors in few launches, each element exactly as
// sgd_step / adam_step; a CPU set has no such kernel and steps the tensors one by one.
void sgd_step_multi(const test::KernelSet& ks, const SgdTensor* list, int count, const SgdParams& p) {
    if (!ks.is_cuda()) {
        for (int i = 0; i < count; i++) omp::sgd_step(list[i].n, list[i].param, list[i].grad, list[i].momentum_buf, p);
        return;
    }
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    cuda::sgd_step_multi(list, count, p);
#else
    FAIL("a cuda kernel set in a build without CUDA");
#endif
}

void adam_step_multi(const test::KernelSet& ks, const AdamTensor* list, int count, const AdamParams& p) {
    if (!ks.is_cuda()) {
        for (int i = 0; i < count; i++) {
            const AdamTensor& t = list[i];
            omp::adam_step(t.n, t.param, t.grad, t.exp_avg, t.exp_avg_sq, t.max_exp_avg_sq, p);
        }
        return;
    }
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    cuda::adam_step_multi(list, count, p);
#else
    FAIL("a cuda kernel set in a build without CUDA");
#endif
}

}  // namespace

// ---------------------------------------------------------------------------- sgd_step kernels
DYAD_KERNEL_TEST("sgd_step and sgd_step_multi equal naive bit for bit in every mode", "[optim]") {
    for (int64_t n : test::sgd_sizes()) {
        // One extra element: offset 1 makes every pointer misaligned for float4 (the GPU's scalar path, the
        // CPU's unaligned vector loop); the element past the end at offset 0 must stay untouched.
        const std::vector<float> p0 = random_floats(n + 1, 71), g = random_floats(n + 1, 72),
                                 b_finite = random_floats(n + 1, 73);
        for (const optim::SgdOptions& o : test::sgd_option_sets()) {
            const bool mom = o.momentum != 0;
            for (bool first : {true, false}) {
                // The first step initialises the buffer without reading it: it starts as NaN, and once as
                // finite values too (the result must not depend on them).
                for (bool nan_buffer : {true, false}) {
                    if (nan_buffer && !first) continue;
                    const std::vector<float> b0 = nan_buffer ? test::nan_filled<float>(n + 1) : b_finite;
                    for (int64_t offset : {0, 1}) {
                        for (bool multi : {false, true}) {
                            INFO("n " << n << " " << test::describe(o) << " first_step " << first << " NaN buffer "
                                      << nan_buffer << " offset " << offset
                                      << (multi ? " sgd_step_multi" : " sgd_step"));
                            const SgdParams sp = test::sgd_kernel_params(o, first);
                            std::vector<float> pn = p0, bn = b0;
                            naive::sgd_step<float>(n, pn.data() + offset, g.data() + offset,
                                                   mom ? bn.data() + offset : nullptr, sp);
                            const Tensor pd = test::buffer(ks, p0), gd = test::buffer(ks, g), bd = test::buffer(ks, b0);
                            float* param = test::ptr(pd) + offset;
                            const float* grad = test::ptr(gd) + offset;
                            float* buf = mom ? test::ptr(bd) + offset : nullptr;
                            if (multi) {
                                const SgdTensor t{param, grad, buf, n};
                                sgd_step_multi(ks, &t, 1, sp);
                            } else {
                                DYAD_KCALL(ks, sgd_step, n, param, grad, buf, sp);
                            }
                            test::require_close(pn, test::host(pd), test::tol::exact(ks));
                            test::require_close(bn, test::host(bd), test::tol::exact(ks));
                            REQUIRE_FALSE(same_bits(pn, p0));
                            REQUIRE(test::count_nan(part(pn, offset, n)) == 0);
                            if (mom) REQUIRE(test::count_nan(part(bn, offset, n)) == 0);
                            if (first && mom && nan_buffer) {
                                // A first step from a finite buffer gives the same bits: the NaN was never read.
                                std::vector<float> pf = p0, bf = b_finite;
                                naive::sgd_step<float>(n, pf.data() + offset, g.data() + offset, bf.data() + offset,
                                                       sp);
                                REQUIRE(same_bits(pn, pf));
                                REQUIRE(same_bits(part(bn, offset, n), part(bf, offset, n)));
                            }
                        }
                    }
                }
            }
        }
    }
}

DYAD_KERNEL_TEST("sgd_step_multi over many tensors of odd sizes, some misaligned (several GPU launches)", "[optim]") {
    // The tensors of test::sgd_multi_sizes packed into one buffer per array at offsets that are sometimes
    // 16-byte aligned and sometimes not. Gaps of 3 or 4 elements between tensors must stay untouched.
    const std::vector<int64_t> sizes = test::sgd_multi_sizes();
    std::vector<int64_t> starts;
    int64_t total = 0;
    for (size_t i = 0; i < sizes.size(); i++) {
        total += (i % 3 == 0) ? 3 : 4;  // alternately keeps and breaks 16-byte alignment
        starts.push_back(total);
        total += sizes[i];
    }
    total += 3;
    const std::vector<float> p0 = random_floats(total, 81), g = random_floats(total, 82), b0 = random_floats(total, 83);
    for (const optim::SgdOptions& o : test::sgd_option_sets()) {
        for (bool first : {true, false}) {
            INFO(test::describe(o) << " first_step " << first);
            const SgdParams sp = test::sgd_kernel_params(o, first);
            const bool mom = o.momentum != 0;
            std::vector<float> pn = p0, bn = b0;
            for (size_t i = 0; i < sizes.size(); i++)
                naive::sgd_step<float>(sizes[i], pn.data() + starts[i], g.data() + starts[i],
                                       mom ? bn.data() + starts[i] : nullptr, sp);
            const Tensor pd = test::buffer(ks, p0), gd = test::buffer(ks, g), bd = test::buffer(ks, b0);
            std::vector<SgdTensor> list;
            for (size_t i = 0; i < sizes.size(); i++)
                list.push_back({test::ptr(pd) + starts[i], test::ptr(gd) + starts[i],
                                mom ? test::ptr(bd) + starts[i] : nullptr, sizes[i]});
            sgd_step_multi(ks, list.data(), int(list.size()), sp);
            test::require_close(pn, test::host(pd), test::tol::exact(ks));
            test::require_close(bn, test::host(bd), test::tol::exact(ks));
        }
    }
    // No tensors, or only empty ones: nothing to launch.
    sgd_step_multi(ks, nullptr, 0, SgdParams{});
    const SgdTensor empty{nullptr, nullptr, nullptr, 0};
    sgd_step_multi(ks, &empty, 1, SgdParams{});
    DYAD_KCALL(ks, sgd_step, 0, nullptr, nullptr, nullptr, SgdParams{});
    synchronize();
}

// ---------------------------------------------------------------------------- optim::Sgd
DYAD_KERNEL_TEST("Sgd steps a model's parameters exactly as the naive CPU does, with no host wait", "[optim]") {
    for (const optim::SgdOptions& o : test::sgd_option_sets()) {
        INFO(test::describe(o));
        // The same model twice (same seed), one moved to the set's device.
        manual_seed(2024);
        const auto ref_model = models::baseline_cnn(10, 3, 8);
        manual_seed(2024);
        const auto set_model = models::baseline_cnn(10, 3, 8);
        set_model->to(ks.device);
        const nn::NamedTensors ref_params = ref_model->named_parameters(), set_params = set_model->named_parameters();
        REQUIRE(ref_params.size() == set_params.size());
        optim::Sgd ref_opt(ref_params, o), set_opt(set_params, o);
        for (int t = 0; t < 5; t++) {
            INFO("step " << t);
            if (t == 3) {  // a rate change mid-way
                ref_opt.set_lr(0.03);
                set_opt.set_lr(0.03);
            }
            for (size_t j = 0; j < ref_params.size(); j++) {
                Tensor rp = ref_params[j].second, sp = set_params[j].second;
                // Step 1: parameter 2 has no gradient, so in step 2 its momentum starts while the others'
                // continue (two groups of first_step in one step).
                if (t <= 1 && j == 2) {
                    rp.zero_grad();
                    sp.zero_grad();
                    continue;
                }
                const Tensor grad = test::random_tensor(rp.shape(), 1000 + uint64_t(100 * t) + j);
                rp.set_grad(grad);
                sp.set_grad(test::on(ks, grad));
            }
            test::naive_reference([&] { ref_opt.step(); });
            const size_t waits = cuda::host_waits();
            set_opt.step();
            REQUIRE(cuda::host_waits() == waits);  // an optimizer step only queues work
            for (size_t j = 0; j < ref_params.size(); j++) {
                INFO(ref_params[j].first);
                REQUIRE(set_params[j].second.device() == ks.device);
                test::require_close(ref_params[j].second, set_params[j].second, test::tol::exact(ks));
            }
        }
        const auto ref_state = ref_opt.state_dict(), set_state = set_opt.state_dict();
        REQUIRE(ref_state.size() == set_state.size());
        for (size_t j = 0; j < ref_state.size(); j++) {
            INFO(ref_state[j].first);
            REQUIRE(set_state[j].first == ref_state[j].first);
            test::require_close(ref_state[j].second, set_state[j].second, test::tol::exact(ks));
        }
    }
}

DYAD_KERNEL_TEST("Sgd check_finite finds a NaN gradient on the set's device and changes nothing", "[optim]") {
    optim::SgdOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.check_finite = true;
    Tensor w = Tensor::ones({4}, DType::float32, ks.device).requires_grad_();
    Tensor bias = Tensor::ones({3}, DType::float32, ks.device).requires_grad_();
    optim::Sgd opt({{"fc.weight", w}, {"fc.bias", bias}}, o);
    w.set_grad(Tensor::full({4}, 0.5, DType::float32, ks.device));
    bias.set_grad(test::on(ks, Tensor::from_vector(std::vector<float>{1, std::nanf(""), 1}, {3})));
    REQUIRE_THROWS_WITH(opt.step(), Catch::Contains("fc.bias") && Catch::Contains("non-finite"));
    REQUIRE(test::values(w) == std::vector<double>{1, 1, 1, 1});
    REQUIRE(opt.state_dict().empty());
    bias.set_grad(Tensor::ones({3}, DType::float32, ks.device));
    opt.step();
    REQUIRE(test::values(w) == std::vector<double>(4, double(1.0f - 0.1f * 0.5f)));
}

// ---------------------------------------------------------------------------- adam_step kernels
DYAD_KERNEL_TEST("adam_step and adam_step_multi equal naive bit for bit in every mode", "[optim]") {
    // Second moments start positive and first moments random, as after some steps; amsgrad's maximum starts
    // between them so both branches of the max are taken.
    for (int64_t n : test::sgd_sizes()) {
        const std::vector<float> p0 = random_floats(n, 81), g = random_floats(n, 82), m0 = random_floats(n, 83);
        std::vector<float> v0 = random_floats(n, 84), vmax0 = v0;
        for (size_t i = 0; i < v0.size(); i++) {
            v0[i] = v0[i] * v0[i];
            vmax0[i] = v0[i] * (i % 2 ? 2.0f : 0.5f);
        }
        for (const AdamParams& ap : test::adam_kernel_params()) {
            for (bool multi : {false, true}) {
                INFO("n " << n << " " << test::describe(ap) << (multi ? " adam_step_multi" : " adam_step"));
                std::vector<float> pn = p0, mn = m0, vn = v0, xn = vmax0;
                naive::adam_step<float>(n, pn.data(), g.data(), mn.data(), vn.data(), ap.amsgrad ? xn.data() : nullptr,
                                        ap);
                const Tensor p = test::buffer(ks, p0), gg = test::buffer(ks, g), m = test::buffer(ks, m0),
                             v = test::buffer(ks, v0), x = test::buffer(ks, vmax0);
                float* vmax = ap.amsgrad ? test::ptr(x) : nullptr;
                if (multi) {
                    const AdamTensor t{test::ptr(p), test::ptr(gg), test::ptr(m), test::ptr(v), vmax, n};
                    adam_step_multi(ks, &t, 1, ap);
                } else {
                    DYAD_KCALL(ks, adam_step, n, test::ptr(p), test::ptr(gg), test::ptr(m), test::ptr(v), vmax, ap);
                }
                test::require_close(pn, test::host(p), test::tol::exact(ks));
                test::require_close(mn, test::host(m), test::tol::exact(ks));
                test::require_close(vn, test::host(v), test::tol::exact(ks));
                test::require_close(xn, test::host(x), test::tol::exact(ks));
                REQUIRE(pn != p0);  // the step changed the parameters
            }
        }
    }
}

// ---------------------------------------------------------------------------- AdamW, clipping
DYAD_KERNEL_TEST("AdamW steps a model's parameters exactly as the naive CPU does, with no host wait", "[optim]") {
    for (bool amsgrad : {false, true}) {
        INFO("amsgrad " << amsgrad);
        manual_seed(2025);
        const auto ref_model = models::baseline_cnn(10, 3, 8);
        manual_seed(2025);
        const auto set_model = models::baseline_cnn(10, 3, 8);
        set_model->to(ks.device);
        const nn::NamedTensors rp = ref_model->named_parameters(), sp = set_model->named_parameters();
        optim::AdamWOptions o;
        o.lr = 0.01;
        o.amsgrad = amsgrad;
        // Two groups (decay and no decay): two lists per step on the GPU.
        optim::AdamW ref_opt(optim::decay_groups(rp, 0.05), o), set_opt(optim::decay_groups(sp, 0.05), o);
        for (int t = 0; t < 4; t++) {
            for (size_t j = 0; j < rp.size(); j++) {
                Tensor a = rp[j].second, b = sp[j].second;
                if (t == 1 && j == 0) {  // one parameter skips a step: its own step count lags
                    a.zero_grad();
                    b.zero_grad();
                    continue;
                }
                const Tensor grad = test::random_tensor(a.shape(), 2000 + uint64_t(100 * t) + j);
                a.set_grad(grad);
                b.set_grad(test::on(ks, grad));
            }
            test::naive_reference([&] { ref_opt.step(); });
            const size_t waits = cuda::host_waits();
            set_opt.step();
            REQUIRE(cuda::host_waits() == waits);
            for (size_t j = 0; j < rp.size(); j++) {
                INFO("step " << t << " " << rp[j].first);
                test::require_close(rp[j].second, sp[j].second, test::tol::exact(ks));
            }
        }
    }
}

DYAD_KERNEL_TEST("clip_grad_norm_ matches naive, stays on the set's device and waits for nothing", "[optim]") {
    for (double norm_type : {2.0, std::numeric_limits<double>::infinity()}) {
        for (double max_norm : {0.5, 1e6}) {
            INFO("norm_type " << norm_type << " max_norm " << max_norm);
            std::vector<Tensor> ref_params, set_params;
            const std::vector<int64_t> sizes = test::clip_sizes();
            for (size_t i = 0; i < sizes.size(); i++) {
                const int64_t n = sizes[i];
                Tensor r = Tensor::zeros({n}).requires_grad_();
                Tensor s = Tensor::zeros({n}, DType::float32, ks.device).requires_grad_();
                const Tensor grad = test::random_tensor({n}, 3000 + uint64_t(i));
                r.set_grad(grad);
                s.set_grad(test::on(ks, grad));
                ref_params.push_back(r);
                set_params.push_back(s);
            }
            const double want =
                test::naive_reference([&] { return optim::clip_grad_norm_(ref_params, max_norm, norm_type).item(); });
            const size_t waits = cuda::host_waits();
            const Tensor total = optim::clip_grad_norm_(set_params, max_norm, norm_type);
            REQUIRE(cuda::host_waits() == waits);
            REQUIRE(total.device() == ks.device);
            test::require_close(std::vector<double>{want}, std::vector<double>{total.item()}, test::tol::grad_norm(ks));
            for (size_t i = 0; i < ref_params.size(); i++) {
                INFO("tensor " << i);
                test::require_close(ref_params[i].grad(), set_params[i].grad(), test::tol::grad_clip(ks));
            }
        }
    }
}
