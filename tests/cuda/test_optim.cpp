// CUDA tests for optim: cuda vs naive. Every kernel here computes each element with naive's float
// expression, so results are compared bit for bit: sgd_step and sgd_step_multi in every SgdParams mode
// of the CPU tests (aligned and misaligned pointers, many tensors of odd sizes, more than one launch's
// worth), optim::Sgd stepping a model's parameters on the GPU against the same on the CPU, the dropout
// mask and values against the CPU's, and the finiteness checks with inf and NaN at odd positions. Outputs
// a kernel must write start as NaN (the first step's momentum buffer, dropout's values) or, for masks, as
// a byte that is neither 0 nor 1.
#include "support/catch.h"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/optim.h"
#include "support/compare.h"
#include "support/optim_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::cpu;
using test::gpu;
using test::naive_reference;
using test::require_identical;
using test::same_bits;

namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) { return test::random_tensor({n}, seed).to_vector<float>(); }

// NaN among the n elements of v from `offset` on (the ones a kernel wrote).
int64_t nan_in(const std::vector<float>& v, int64_t offset, int64_t n) {
    return test::count_nan(std::vector<float>(v.begin() + offset, v.begin() + offset + n));
}

Tensor on_gpu(const std::vector<float>& v) { return Tensor::from_vector(v, {int64_t(v.size())}, Device::cuda()); }
Tensor on_gpu(const std::vector<uint8_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}, Device::cuda()); }

}  // namespace

// ---------------------------------------------------------------------------- sgd_step kernels
TEST_CASE("cuda sgd_step and sgd_step_multi equal naive bit for bit in every mode", "[cuda][optim]") {
    cuda::use_device(0);
    for (int64_t n : test::sgd_sizes()) {
        // One extra element: offset 1 makes every pointer misaligned for float4 (the scalar path).
        const std::vector<float> p0 = random_floats(n + 1, 71), g = random_floats(n + 1, 72),
                                 b_finite = random_floats(n + 1, 73);
        for (const optim::SgdOptions& o : test::sgd_option_sets()) {
            for (bool first : {true, false}) {
                // The first step initialises the buffer without reading it: it starts as NaN then.
                const std::vector<float> b0 = first ? test::nan_filled<float>(n + 1) : b_finite;
                for (int64_t offset : {0, 1}) {
                    for (bool multi : {false, true}) {
                        INFO("n " << n << " " << test::describe(o) << " first_step " << first << " offset " << offset
                                  << (multi ? " sgd_step_multi" : " sgd_step"));
                        const SgdParams sp = test::sgd_kernel_params(o, first);
                        const bool mom = o.momentum != 0;
                        std::vector<float> pn = p0, bn = b0;
                        naive::sgd_step<float>(n, pn.data() + offset, g.data() + offset,
                                               mom ? bn.data() + offset : nullptr, sp);
                        const Tensor pd = on_gpu(p0), gd = on_gpu(g), bd = on_gpu(b0);
                        float* param = pd.data<float>() + offset;
                        const float* grad = gd.data<float>() + offset;
                        float* buf = mom ? bd.data<float>() + offset : nullptr;
                        if (multi) {
                            const SgdTensor t{param, grad, buf, n};
                            cuda::sgd_step_multi(&t, 1, sp);
                        } else {
                            cuda::sgd_step(n, param, grad, buf, sp);
                        }
                        REQUIRE(same_bits(pd.to_vector<float>(), pn));
                        REQUIRE(same_bits(bd.to_vector<float>(), bn));
                        REQUIRE_FALSE(same_bits(pn, p0));
                        REQUIRE(nan_in(pn, offset, n) == 0);
                        if (mom) REQUIRE(nan_in(bn, offset, n) == 0);
                    }
                }
            }
        }
    }
}

TEST_CASE("cuda sgd_step_multi over many tensors of odd sizes (several launches)", "[cuda][optim]") {
    cuda::use_device(0);
    // 150 tensors (the kernel takes up to 48 per launch): empty ones, sizes around the 2048-element
    // chunk of a block and the float4 width, and larger ones, packed into one buffer per array at
    // offsets that are sometimes 16-byte aligned and sometimes not. Gaps of 3 elements between tensors
    // must stay untouched.
    std::vector<int64_t> sizes;
    for (int i = 0; i < 150; i++) {
        const int64_t special[] = {0, 1, 3, 4, 5, 2047, 2048, 2049, 4096, 6145, 100003};
        sizes.push_back(i % 4 == 0 ? special[(i / 4) % 11] : (int64_t(i) * 7919) % 3001 + 1);
    }
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
            const Tensor pd = on_gpu(p0), gd = on_gpu(g), bd = on_gpu(b0);
            std::vector<SgdTensor> list;
            for (size_t i = 0; i < sizes.size(); i++)
                list.push_back({pd.data<float>() + starts[i], gd.data<float>() + starts[i],
                                mom ? bd.data<float>() + starts[i] : nullptr, sizes[i]});
            cuda::sgd_step_multi(list.data(), int(list.size()), sp);
            REQUIRE(same_bits(pd.to_vector<float>(), pn));
            REQUIRE(same_bits(bd.to_vector<float>(), bn));
        }
    }
    // No tensors, or only empty ones: nothing to launch.
    cuda::sgd_step_multi(nullptr, 0, SgdParams{});
    const SgdTensor empty{nullptr, nullptr, nullptr, 0};
    cuda::sgd_step_multi(&empty, 1, SgdParams{});
    cuda::sgd_step(0, nullptr, nullptr, nullptr, SgdParams{});
    synchronize();
}

// ---------------------------------------------------------------------------- optim::Sgd
TEST_CASE("cuda Sgd steps a model's parameters exactly as the naive CPU does", "[cuda][optim]") {
    for (const optim::SgdOptions& o : test::sgd_option_sets()) {
        INFO(test::describe(o));
        // The same model twice (same seed), one moved to the GPU.
        manual_seed(2024);
        const auto ref_model = models::baseline_cnn(10, 3, 8);
        manual_seed(2024);
        const auto gpu_model = models::baseline_cnn(10, 3, 8);
        gpu_model->to(Device::cuda());
        const nn::NamedTensors ref_params = ref_model->named_parameters(), gpu_params = gpu_model->named_parameters();
        REQUIRE(ref_params.size() == gpu_params.size());
        optim::Sgd ref_opt(ref_params, o), gpu_opt(gpu_params, o);
        for (int t = 0; t < 5; t++) {
            INFO("step " << t);
            if (t == 3) {  // a rate change mid-way
                ref_opt.set_lr(0.03);
                gpu_opt.set_lr(0.03);
            }
            for (size_t j = 0; j < ref_params.size(); j++) {
                Tensor rp = ref_params[j].second, gp = gpu_params[j].second;
                // Step 1: parameter 2 has no gradient, so in step 2 its momentum starts while the others'
                // continue (two groups of first_step in one step).
                if ((t <= 1 && j == 2)) {
                    rp.zero_grad();
                    gp.zero_grad();
                    continue;
                }
                const Tensor grad = test::random_tensor(rp.shape(), 1000 + uint64_t(100 * t) + j);
                rp.set_grad(grad);
                gp.set_grad(gpu(grad));
            }
            {
                CpuKernelsGuard guard(CpuKernels::naive);
                ref_opt.step();
            }
            const size_t waits = cuda::host_waits();
            gpu_opt.step();
            REQUIRE(cuda::host_waits() == waits);  // an optimizer step only queues work
            for (size_t j = 0; j < ref_params.size(); j++) {
                INFO(ref_params[j].first);
                REQUIRE(gpu_params[j].second.device() == Device::cuda());
                require_identical(ref_params[j].second, cpu(gpu_params[j].second));
            }
        }
        const auto ref_state = ref_opt.state_dict(), gpu_state = gpu_opt.state_dict();
        REQUIRE(ref_state.size() == gpu_state.size());
        for (size_t j = 0; j < ref_state.size(); j++) {
            INFO(ref_state[j].first);
            REQUIRE(gpu_state[j].first == ref_state[j].first);
            require_identical(ref_state[j].second, cpu(gpu_state[j].second));
        }
    }
}

TEST_CASE("cuda Sgd check_finite finds a NaN gradient on the GPU and changes nothing", "[cuda][optim]") {
    optim::SgdOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.check_finite = true;
    Tensor w = Tensor::ones({4}, DType::float32, Device::cuda()).requires_grad_();
    Tensor bias = Tensor::ones({3}, DType::float32, Device::cuda()).requires_grad_();
    optim::Sgd opt({{"fc.weight", w}, {"fc.bias", bias}}, o);
    w.set_grad(Tensor::full({4}, 0.5, DType::float32, Device::cuda()));
    bias.set_grad(Tensor::from_vector(std::vector<float>{1, std::nanf(""), 1}, {3}, Device::cuda()));
    REQUIRE_THROWS_WITH(opt.step(), Catch::Contains("fc.bias") && Catch::Contains("non-finite"));
    REQUIRE(test::values(w) == std::vector<double>{1, 1, 1, 1});
    REQUIRE(opt.state_dict().empty());
    bias.set_grad(Tensor::ones({3}, DType::float32, Device::cuda()));
    opt.step();
    REQUIRE(test::values(w) == std::vector<double>(4, double(1.0f - 0.1f * 0.5f)));
}

// ---------------------------------------------------------------------------- dropout
TEST_CASE("cuda dropout kernels draw the CPU's mask and values bit for bit", "[cuda][dropout]") {
    cuda::use_device(0);
    for (int64_t n : test::dropout_sizes()) {
        for (double p : test::dropout_probs()) {
            // Offset 1 misaligns every pointer (the scalar path); offset 0 takes the vector path.
            for (int64_t offset : {0, 1}) {
                INFO("n " << n << " p " << p << " offset " << offset);
                const std::vector<float> x = random_floats(n + 1, 61), dy = random_floats(n + 1, 62);
                std::vector<float> y = test::nan_filled<float>(n + 1), dx(size_t(n + 1), 0.5f);
                std::vector<uint8_t> m(size_t(n + 1), test::kUnwrittenByte);
                naive::dropout_fwd<float>(n, y.data() + offset, m.data() + offset, x.data() + offset, p, 12345);
                naive::dropout_bwd<float>(n, dx.data() + offset, dy.data() + offset, m.data() + offset, p);
                REQUIRE(nan_in(y, offset, n) == 0);
                REQUIRE(test::count_not_01(std::vector<uint8_t>(m.begin() + offset, m.begin() + offset + n)) == 0);
                const Tensor xd = on_gpu(x), dyd = on_gpu(dy), yd = on_gpu(test::nan_filled<float>(n + 1)),
                             dxd = on_gpu(std::vector<float>(size_t(n + 1), 0.5f)),
                             md = on_gpu(std::vector<uint8_t>(size_t(n + 1), test::kUnwrittenByte));
                cuda::dropout_fwd(n, yd.data<float>() + offset, md.data<uint8_t>() + offset, xd.data<float>() + offset,
                                  p, 12345);
                cuda::dropout_bwd(n, dxd.data<float>() + offset, dyd.data<float>() + offset,
                                  md.data<uint8_t>() + offset, p);
                REQUIRE(md.to_vector<uint8_t>() == m);
                REQUIRE(same_bits(yd.to_vector<float>(), y));
                REQUIRE(same_bits(dxd.to_vector<float>(), dx));  // dx += ..., from 0.5
            }
        }
    }
    cuda::dropout_fwd(0, nullptr, nullptr, nullptr, 0.5, 1);
    cuda::dropout_bwd(0, nullptr, nullptr, nullptr, 0.5);
    synchronize();
}

TEST_CASE("cuda dropout through the API: same seed, same mask as the CPU, gradient through it", "[cuda][dropout]") {
    const Tensor x = test::random_tensor({37, 129}, 62);
    const Tensor dy = test::random_tensor({37, 129}, 63);
    for (double p : test::dropout_probs()) {
        INFO("p " << p);
        Tensor xc = x.detach().requires_grad_(), xg = gpu(x).requires_grad_();
        const Tensor yc = naive_reference([&] {
            manual_seed(99);
            Tensor y = dropout(xc, p, true);
            y.backward(dy);
            return y;
        });
        manual_seed(99);
        const Tensor yg = dropout(xg, p, true);
        yg.backward(gpu(dy));
        REQUIRE(yg.device() == Device::cuda());
        require_identical(yc, cpu(yg));
        require_identical(xc.grad(), cpu(xg.grad()));
    }
    // Non-contiguous input: the transposed view is copied first, the mask follows the result's order.
    const Tensor xt = test::random_tensor({33, 17}, 64, test::Layout::transposed);
    const Tensor ref = naive_reference([&] {
        manual_seed(5);
        return dropout(xt, 0.3, true);
    });
    manual_seed(5);
    require_identical(ref, cpu(dropout(gpu(xt), 0.3, true)));
}

// ---------------------------------------------------------------------------- finiteness
TEST_CASE("cuda isfinite, all_finite and count_nonfinite find inf and NaN at odd positions", "[cuda][dropout]") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const int64_t n = 100003;
    for (int64_t pos : {int64_t(0), int64_t(17), int64_t(n / 2 + 1), n - 1}) {
        for (float bad : {inf, -inf, nan}) {
            INFO("position " << pos << " value " << bad);
            std::vector<float> v(size_t(n), 1.5f);
            v[size_t(pos)] = bad;
            const Tensor x = Tensor::from_vector(v, {n});
            const Tensor xg = gpu(x);
            REQUIRE_FALSE(all_finite(xg));
            const Tensor f = isfinite(xg);
            REQUIRE(f.device() == Device::cuda());
            require_identical(naive_reference([&] { return isfinite(x); }), cpu(f));
        }
    }
    std::vector<float> big(size_t(n), std::numeric_limits<float>::max());
    big[3] = -0.0f;
    big[5] = 1e-40f;  // subnormal: finite
    REQUIRE(all_finite(gpu(Tensor::from_vector(big, {n}))));
    // A strided view on the GPU.
    const Tensor m = gpu(Tensor::from_vector(std::vector<float>{1, nan, 3, 4, 5, inf}, {2, 3}));
    REQUIRE_FALSE(all_finite(m.t()));
    REQUIRE(all_finite(m.slice(1, 0, 1)));
    REQUIRE(isfinite(m.t()).to_vector<uint8_t>() == std::vector<uint8_t>{1, 1, 0, 1, 1, 0});
    REQUIRE(all_finite(Tensor::zeros({0}, DType::float32, Device::cuda())));
    REQUIRE(isfinite(Tensor::zeros({0}, DType::float32, Device::cuda())).numel() == 0);
}

TEST_CASE("cuda count_nonfinite and isfinite_fwd kernels: many specials, every block, misaligned", "[cuda][dropout]") {
    cuda::use_device(0);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    // 5000011 elements: more than the first pass's 1024 blocks cover in one sweep.
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(33), int64_t(100003), int64_t(5000011)}) {
        std::vector<float> x = random_floats(n + 1, 66);
        for (int64_t i = 1; i < n + 1; i += 9973)
            x[size_t(i)] = (i / 9973) % 3 == 0 ? nan : (i / 9973) % 3 == 1 ? inf : -inf;
        x[size_t(n - 1)] = inf;  // the last element of the aligned view
        x[size_t(n)] = nan;      // the last element of the misaligned view
        for (int64_t offset : {0, 1}) {
            INFO("n " << n << " offset " << offset);
            const int64_t expect = naive::count_nonfinite<float>(n, x.data() + offset);
            std::vector<uint8_t> f(size_t(n + 1), 9);
            naive::isfinite_fwd<float>(n, f.data() + offset, x.data() + offset);
            const Tensor xd = on_gpu(x), fd = on_gpu(std::vector<uint8_t>(size_t(n + 1), 9));
            const size_t waits = cuda::host_waits();
            REQUIRE(cuda::count_nonfinite(n, xd.data<float>() + offset) == expect);
            REQUIRE(cuda::host_waits() == waits + 1);  // the documented sync point
            REQUIRE(expect >= 1);
            cuda::isfinite_fwd(n, fd.data<uint8_t>() + offset, xd.data<float>() + offset);
            REQUIRE(fd.to_vector<uint8_t>() == f);
        }
    }
    REQUIRE(cuda::count_nonfinite(0, nullptr) == 0);
    cuda::isfinite_fwd(0, nullptr, nullptr);
    synchronize();
}

// ---------------------------------------------------------------------------- Adam, AdamW, clipping
TEST_CASE("cuda adam_step and adam_step_multi equal naive bit for bit in every mode", "[cuda][optim]") {
    cuda::use_device(0);
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
                const Tensor p = on_gpu(p0), gg = on_gpu(g), m = on_gpu(m0), v = on_gpu(v0), x = on_gpu(vmax0);
                float* vmax = ap.amsgrad ? x.data<float>() : nullptr;
                if (multi) {
                    const AdamTensor t{p.data<float>(), gg.data<float>(), m.data<float>(), v.data<float>(), vmax, n};
                    cuda::adam_step_multi(&t, 1, ap);
                } else {
                    cuda::adam_step(n, p.data<float>(), gg.data<float>(), m.data<float>(), v.data<float>(), vmax, ap);
                }
                REQUIRE(same_bits(pn, cpu(p).to_vector<float>()));
                REQUIRE(same_bits(mn, cpu(m).to_vector<float>()));
                REQUIRE(same_bits(vn, cpu(v).to_vector<float>()));
                REQUIRE(same_bits(xn, cpu(x).to_vector<float>()));
            }
        }
    }
}

TEST_CASE("cuda AdamW steps a model's parameters exactly as the naive CPU does, with no host wait", "[cuda][optim]") {
    for (bool amsgrad : {false, true}) {
        INFO("amsgrad " << amsgrad);
        manual_seed(2025);
        const auto ref_model = models::baseline_cnn(10, 3, 8);
        manual_seed(2025);
        const auto gpu_model = models::baseline_cnn(10, 3, 8);
        gpu_model->to(Device::cuda());
        const nn::NamedTensors rp = ref_model->named_parameters(), gp = gpu_model->named_parameters();
        optim::AdamWOptions o;
        o.lr = 0.01;
        o.amsgrad = amsgrad;
        // Two groups (decay and no decay): two lists per step on the GPU.
        optim::AdamW ref_opt(optim::decay_groups(rp, 0.05), o), gpu_opt(optim::decay_groups(gp, 0.05), o);
        for (int t = 0; t < 4; t++) {
            for (size_t j = 0; j < rp.size(); j++) {
                Tensor a = rp[j].second, b = gp[j].second;
                if (t == 1 && j == 0) {  // one parameter skips a step: its own step count lags
                    a.zero_grad();
                    b.zero_grad();
                    continue;
                }
                const Tensor grad = test::random_tensor(a.shape(), 2000 + uint64_t(100 * t) + j);
                a.set_grad(grad);
                b.set_grad(gpu(grad));
            }
            {
                CpuKernelsGuard guard(CpuKernels::naive);
                ref_opt.step();
            }
            const size_t waits = cuda::host_waits();
            gpu_opt.step();
            REQUIRE(cuda::host_waits() == waits);
            for (size_t j = 0; j < rp.size(); j++) {
                INFO("step " << t << " " << rp[j].first);
                require_identical(rp[j].second, cpu(gp[j].second));
            }
        }
    }
}

TEST_CASE("cuda clip_grad_norm_ matches the CPU, stays on the GPU and waits for nothing", "[cuda][optim]") {
    for (double norm_type : {2.0, double(INFINITY)}) {
        for (double max_norm : {0.5, 1e6}) {
            INFO("norm_type " << norm_type << " max_norm " << max_norm);
            std::vector<Tensor> cpu_params, gpu_params;
            // Many tensors (more than one launch's worth) of odd sizes, one large.
            for (int i = 0; i < 130; i++) {
                const int64_t n = i == 7 ? 100003 : 1 + (i * 37) % 301;
                Tensor c = Tensor::zeros({n}).requires_grad_(), g = Tensor::zeros({n}, DType::float32, Device::cuda());
                g.requires_grad_();
                const Tensor grad = test::random_tensor({n}, 3000 + uint64_t(i));
                c.set_grad(grad);
                g.set_grad(gpu(grad));
                cpu_params.push_back(c);
                gpu_params.push_back(g);
            }
            double want = 0;
            {
                CpuKernelsGuard guard(CpuKernels::naive);
                want = optim::clip_grad_norm_(cpu_params, max_norm, norm_type).item();
            }
            const size_t waits = cuda::host_waits();
            const Tensor total = optim::clip_grad_norm_(gpu_params, max_norm, norm_type);
            REQUIRE(cuda::host_waits() == waits);
            REQUIRE(total.device() == Device::cuda());
            // Both sums are in double and rounded to float once; only their order differs.
            REQUIRE(total.item() == Approx(want).epsilon(1e-6));
            for (size_t i = 0; i < cpu_params.size(); i++) {
                INFO("tensor " << i);
                REQUIRE_THAT(test::values(cpu(gpu_params[i].grad())),
                             test::AllClose(test::values(cpu_params[i].grad())).rtol(2e-6).atol(0));
            }
        }
    }
}
