// CUDA batch-norm kernels against the naive CPU reference, on the case list of the CPU tests
// (support/norm_cases.h), with a large mean offset for the accuracy of the statistics, with and without
// the affine transform: the training forward (saved statistics, running statistics, y), the eval forward,
// the training and eval backward into buffers that already hold values (they must add), null outputs,
// run-to-run determinism, and the batch_norm2d frontend on a non-contiguous input through autograd.
//
// Tolerances: the GPU's per-channel sums are in double like naive's (another order: double rounding
// only), so its statistics and gradients meet the float64 reference with the tolerances the CPU tests
// hold naive and omp to. The eval forward and the eval dx use naive's float expressions term by term
// (no FMA contraction) on the same per-channel constants: identical bits.
#include "support/catch.h"

#include <cmath>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/norm.h"
#include "support/compare.h"
#include "support/norm_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::BnCase;
using test::cpu;
using test::gpu;
using test::naive_reference;
using test::same_bits;
using test::values;

namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    std::vector<float> v = test::random_tensor({n}, seed).to_vector<float>();
    for (float& e : v) e = e * scale + offset;
    return v;
}

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

Tensor device_floats(const std::vector<float>& v) { return gpu(Tensor::from_vector(v, {int64_t(v.size())})); }
std::vector<float> host_floats(const Tensor& t) { return cpu(t).to_vector<float>(); }
float* ptr(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

}  // namespace

TEST_CASE("cuda batch_norm kernels match naive and the float64 reference", "[cuda][batchnorm]") {
    cuda::use_device(0);
    uint64_t seed = 1;
    for (const BnCase& bc : test::bn_cases()) {
        for (float offset : {0.0f, 50.0f}) {
            for (bool affine : {true, false}) {
                BatchNormShape s;
                s.n = bc.n, s.c = bc.c, s.hw = bc.hw;
                const int64_t count = s.n * s.hw, numel = s.n * s.c * s.hw;
                INFO("(n, c, hw) = (" << s.n << ", " << s.c << ", " << s.hw << ") offset " << offset << " affine "
                                      << affine);
                const std::vector<float> x = random_floats(numel, seed++, 2.0f, offset);
                const std::vector<float> gamma = random_floats(s.c, seed++, 0.5f, 1.0f);
                const std::vector<float> beta = random_floats(s.c, seed++);
                const std::vector<float> rm0 = random_floats(s.c, seed++);
                std::vector<float> rv0 = random_floats(s.c, seed++);
                for (float& v : rv0) v = v * v + 0.5f;
                const std::vector<double> xd = as_double(x), gd = as_double(gamma), bd = as_double(beta);
                const Tensor x_dev = device_floats(x);
                const Tensor g_dev = affine ? device_floats(gamma) : Tensor();
                const Tensor b_dev = affine ? device_floats(beta) : Tensor();

                // Training forward: the float64 reference, then the GPU.
                // Forward outputs start as NaN everywhere: an element left unwritten fails.
                std::vector<double> yr = test::nan_filled<double>(numel), mr = test::nan_filled<double>(s.c),
                                    isr = test::nan_filled<double>(s.c);
                std::vector<double> rmr = as_double(rm0), rvr = as_double(rv0);
                naive::batch_norm_fwd_train(s, yr.data(), mr.data(), isr.data(), rmr.data(), rvr.data(), xd.data(),
                                            affine ? gd.data() : nullptr, affine ? bd.data() : nullptr, 0.1, 1e-5);
                REQUIRE(test::count_nan(yr) + test::count_nan(mr) + test::count_nan(isr) == 0);
                Tensor y_dev = test::nan_tensor(numel, Device::cuda());
                Tensor mean_dev = test::nan_tensor(s.c, Device::cuda());
                Tensor invstd_dev = test::nan_tensor(s.c, Device::cuda());
                Tensor rm_dev = device_floats(rm0), rv_dev = device_floats(rv0);
                cuda::batch_norm_fwd_train(s, ptr(y_dev), ptr(mean_dev), ptr(invstd_dev), ptr(rm_dev), ptr(rv_dev),
                                           ptr(x_dev), ptr(g_dev), ptr(b_dev), 0.1f, 1e-5f);
                const std::vector<float> mean = host_floats(mean_dev), invstd = host_floats(invstd_dev);
                REQUIRE_THAT(as_double(mean), AllClose(mr).rtol(1e-6).atol(1e-6));
                REQUIRE_THAT(as_double(invstd), AllClose(isr).rtol(1e-5));
                REQUIRE_THAT(values(rm_dev), AllClose(rmr).rtol(1e-5).atol(1e-6));
                REQUIRE_THAT(values(rv_dev), AllClose(rvr).rtol(1e-5).atol(1e-6));
                REQUIRE_THAT(values(y_dev), AllClose(yr).rtol(1e-5).atol(1e-5));
                // Without running statistics: the same outputs, bit for bit.
                Tensor y2_dev = test::nan_tensor(numel, Device::cuda());
                Tensor mean2_dev = test::nan_tensor(s.c, Device::cuda());
                Tensor invstd2_dev = test::nan_tensor(s.c, Device::cuda());
                cuda::batch_norm_fwd_train(s, ptr(y2_dev), ptr(mean2_dev), ptr(invstd2_dev), nullptr, nullptr,
                                           ptr(x_dev), ptr(g_dev), ptr(b_dev), 0.1f, 1e-5f);
                REQUIRE(same_bits(host_floats(y2_dev), host_floats(y_dev)));
                REQUIRE(same_bits(host_floats(mean2_dev), mean));
                REQUIRE(same_bits(host_floats(invstd2_dev), invstd));

                // Eval forward: naive's float expressions on the same running statistics: identical bits.
                std::vector<float> ye = test::nan_filled<float>(numel);
                naive::batch_norm_fwd_eval(s, ye.data(), x.data(), rm0.data(), rv0.data(),
                                           affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr, 1e-5f);
                const Tensor rm0_dev = device_floats(rm0), rv0_dev = device_floats(rv0);
                Tensor ye_dev = test::nan_tensor(numel, Device::cuda());
                cuda::batch_norm_fwd_eval(s, ptr(ye_dev), ptr(x_dev), ptr(rm0_dev), ptr(rv0_dev), ptr(g_dev),
                                          ptr(b_dev), 1e-5f);
                REQUIRE(test::count_nan(ye) == 0);
                REQUIRE(same_bits(host_floats(ye_dev), ye));

                // Backward, training and eval, into buffers that already hold values (they must add).
                const std::vector<float> dy = random_floats(numel, seed++);
                const std::vector<float> dx0 = random_floats(numel, seed++), dg0 = random_floats(s.c, seed++),
                                         db0 = random_floats(s.c, seed++);
                const std::vector<double> dyd = as_double(dy);
                const Tensor dy_dev = device_floats(dy);
                for (bool training : {true, false}) {
                    INFO("backward, training " << training);
                    // The statistics: the GPU's saved batch ones, or those of the running statistics.
                    std::vector<float> sm = mean, si = invstd;
                    if (!training)
                        for (int64_t c = 0; c < s.c; c++) {
                            sm[size_t(c)] = rm0[size_t(c)];
                            si[size_t(c)] = float(1.0 / std::sqrt(double(rv0[size_t(c)]) + 1e-5));
                        }
                    const Tensor sm_dev = device_floats(sm), si_dev = device_floats(si);
                    Tensor dx_dev = device_floats(dx0), dg_dev = device_floats(dg0), db_dev = device_floats(db0);
                    cuda::batch_norm_bwd(s, training, ptr(dx_dev), affine ? ptr(dg_dev) : nullptr,
                                         affine ? ptr(db_dev) : nullptr, ptr(dy_dev), ptr(x_dev), ptr(sm_dev),
                                         ptr(si_dev), ptr(g_dev));
                    // The float64 reference into zeros, added to the initial values.
                    std::vector<double> rdx(static_cast<size_t>(numel), 0.0), rdg(size_t(s.c), 0.0),
                        rdb(size_t(s.c), 0.0);
                    const std::vector<double> smd = as_double(sm), sid = as_double(si);
                    naive::batch_norm_bwd(s, training, rdx.data(), rdg.data(), rdb.data(), dyd.data(), xd.data(),
                                          smd.data(), sid.data(), affine ? gd.data() : nullptr);
                    for (size_t i = 0; i < rdx.size(); i++) rdx[i] += double(dx0[i]);
                    for (size_t i = 0; i < rdg.size(); i++) rdg[i] += double(dg0[i]), rdb[i] += double(db0[i]);
                    const double sum_atol = 1e-6 * std::sqrt(double(count));
                    const std::vector<float> dx = host_floats(dx_dev), dg = host_floats(dg_dev),
                                             db = host_floats(db_dev);
                    REQUIRE_THAT(as_double(dx), AllClose(rdx).rtol(1e-5).atol(1e-5));
                    if (affine) {
                        REQUIRE_THAT(as_double(dg), AllClose(rdg).rtol(1e-5).atol(sum_atol));
                        REQUIRE_THAT(as_double(db), AllClose(rdb).rtol(1e-5).atol(sum_atol));
                    } else {
                        REQUIRE(dg == dg0);  // null pointers: nothing written
                        REQUIRE(db == db0);
                    }
                    if (!training) {
                        // dx = dy * float(gamma * invstd) added in float, as naive: identical bits.
                        std::vector<float> dxn = dx0;
                        naive::batch_norm_bwd(s, false, dxn.data(), static_cast<float*>(nullptr),
                                              static_cast<float*>(nullptr), dy.data(), x.data(), sm.data(), si.data(),
                                              affine ? gamma.data() : nullptr);
                        REQUIRE(same_bits(dx, dxn));
                    }
                    // dx alone (dgamma and dbeta not needed), and dgamma alone: the same bits as the full call.
                    Tensor dx_only = device_floats(dx0), dg_only = device_floats(dg0);
                    cuda::batch_norm_bwd(s, training, ptr(dx_only), nullptr, nullptr, ptr(dy_dev), ptr(x_dev),
                                         ptr(sm_dev), ptr(si_dev), ptr(g_dev));
                    REQUIRE(same_bits(host_floats(dx_only), dx));
                    if (affine) {
                        cuda::batch_norm_bwd(s, training, nullptr, ptr(dg_only), nullptr, ptr(dy_dev), ptr(x_dev),
                                             ptr(sm_dev), ptr(si_dev), ptr(g_dev));
                        REQUIRE(same_bits(host_floats(dg_only), dg));
                    }
                }
            }
        }
    }
}

TEST_CASE("cuda batch_norm kernels give the same bits run to run", "[cuda][batchnorm]") {
    // The reference CNN's second block at batch 8: the sums split over several blocks per channel.
    cuda::use_device(0);
    BatchNormShape s;
    s.n = 8, s.c = 64, s.hw = 32 * 32;
    const int64_t numel = s.n * s.c * s.hw;
    const Tensor x = device_floats(random_floats(numel, 700, 3.0f, 1.0f)),
                 dy = device_floats(random_floats(numel, 701));
    const Tensor gamma = device_floats(random_floats(s.c, 702)), beta = device_floats(random_floats(s.c, 703));
    std::vector<float> y[2], mean[2], invstd[2], dx[2], dg[2], db[2];
    for (int t = 0; t < 2; t++) {
        Tensor yt = test::nan_tensor(numel, Device::cuda());  // outputs NaN; gradients add to zeros
        Tensor mt = test::nan_tensor(s.c, Device::cuda());
        Tensor it = test::nan_tensor(s.c, Device::cuda());
        Tensor dxt = Tensor::zeros({numel}, DType::float32, Device::cuda());
        Tensor dgt = Tensor::zeros({s.c}, DType::float32, Device::cuda());
        Tensor dbt = Tensor::zeros({s.c}, DType::float32, Device::cuda());
        cuda::batch_norm_fwd_train(s, ptr(yt), ptr(mt), ptr(it), nullptr, nullptr, ptr(x), ptr(gamma), ptr(beta), 0.1f,
                                   1e-5f);
        cuda::batch_norm_bwd(s, true, ptr(dxt), ptr(dgt), ptr(dbt), ptr(dy), ptr(x), ptr(mt), ptr(it), ptr(gamma));
        y[t] = host_floats(yt), mean[t] = host_floats(mt), invstd[t] = host_floats(it);
        dx[t] = host_floats(dxt), dg[t] = host_floats(dgt), db[t] = host_floats(dbt);
    }
    REQUIRE(test::count_nan(y[0]) + test::count_nan(mean[0]) + test::count_nan(invstd[0]) == 0);
    REQUIRE(same_bits(y[0], y[1]));
    REQUIRE(same_bits(mean[0], mean[1]));
    REQUIRE(same_bits(invstd[0], invstd[1]));
    REQUIRE(same_bits(dx[0], dx[1]));
    REQUIRE(same_bits(dg[0], dg[1]));
    REQUIRE(same_bits(db[0], db[1]));
}

TEST_CASE("cuda batch_norm2d frontend matches naive on a non-contiguous input, outputs and gradients",
          "[cuda][batchnorm]") {
    // The same transposed view on both devices: (5, 7, 9, 3) from memory laid out (5, 7, 3, 9).
    const Tensor base = test::random_tensor({5, 7, 3, 9}, 500) * 2.0 + 1.0;
    const Tensor w = test::random_tensor({7}, 501), b = test::random_tensor({7}, 502);
    const Tensor dy = test::random_tensor({5, 7, 9, 3}, 503);
    for (bool training : {true, false}) {
        INFO("training " << training);
        Tensor y[2], gx[2], gw[2], gb[2], rm[2], rv[2];
        for (int i = 0; i < 2; i++) {
            const bool on_gpu = i == 1;
            auto run = [&] {
                auto dev = [&](const Tensor& t) { return on_gpu ? gpu(t) : t; };
                rm[i] = dev(Tensor::full({7}, 0.5)), rv[i] = dev(Tensor::full({7}, 2.0));
                const Tensor x = dev(base).transpose(2, 3);
                REQUIRE_FALSE(x.is_contiguous());
                Tensor xl = x.detach().requires_grad_(), wl = dev(w).detach().requires_grad_(),
                       bl = dev(b).detach().requires_grad_();
                y[i] = batch_norm2d(xl, rm[i], rv[i], wl, bl, training);
                y[i].backward(dev(dy));
                gx[i] = xl.grad(), gw[i] = wl.grad(), gb[i] = bl.grad();
                return 0;
            };
            if (on_gpu)
                run();
            else
                naive_reference(run);
        }
        REQUIRE(y[1].device() == Device::cuda());
        REQUIRE_THAT(values(y[1]), AllClose(values(y[0])).rtol(1e-5).atol(1e-5));
        REQUIRE_THAT(values(gx[1]), AllClose(values(gx[0])).rtol(1e-5).atol(1e-5));
        REQUIRE_THAT(values(gw[1]), AllClose(values(gw[0])).rtol(1e-5).atol(1e-4));
        REQUIRE_THAT(values(gb[1]), AllClose(values(gb[0])).rtol(1e-5).atol(1e-4));
        REQUIRE_THAT(values(rm[1]), AllClose(values(rm[0])).rtol(1e-5).atol(1e-6));
        REQUIRE_THAT(values(rv[1]), AllClose(values(rv[0])).rtol(1e-5).atol(1e-6));
    }
}
