// Batch normalisation (batch_norm2d) on the CPU kernel sets: hand-checked outputs and running statistics
// (momentum, unbiased variance) in float32 and float64, eval mode, the hand-checked training gradient and
// its accumulation, omp's results for any thread count, float64 gradient checks in training and eval mode
// with and without the affine transform, and argument errors. Parity of every kernel set with naive and
// the float64 reference (the kernels on odd shapes with a large mean offset, the frontend):
// tests/ops/norm.cpp.
#include "support/catch.h"

#include <cmath>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "kernels/norm.h"
#include "support/compare.h"
#include "support/norm_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::count_nan;
using test::nan_filled;
using test::same_bits;
using test::values;

namespace {

const CpuKernels kBothSets[] = {CpuKernels::naive, CpuKernels::omp};

Tensor vec(std::vector<double> v, DType dt = DType::float32) {
    const int64_t n = int64_t(v.size());
    return Tensor::from_vector(std::move(v), {n}).to(dt);
}

std::vector<float> random_floats(int64_t n, uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    std::vector<float> v = test::random_tensor({n}, seed).to_vector<float>();
    for (float& e : v) e = e * scale + offset;
    return v;
}

// x (2, 2, 1, 2): channel 0 holds {1, 2, 3, 6} (mean 3, biased variance 3.5, unbiased 14/3), channel 1
// holds {0, 0, 4, 4} (mean 2, biased variance 4, unbiased 16/3).
const std::vector<double> kX = {1, 2, 0, 0, 3, 6, 4, 4};
const double kMean[2] = {3, 2}, kVar[2] = {3.5, 4}, kUnbiased[2] = {14.0 / 3, 16.0 / 3};

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("batch_norm2d training: hand-checked output and running statistics", "[batchnorm][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const double eps = 1e-5, tol = dt == DType::float32 ? 1e-6 : 1e-12;
            const Tensor x = Tensor::from_vector(kX, {2, 2, 1, 2}).to(dt);
            Tensor rm = vec({0, 0}, dt), rv = vec({1, 1}, dt);
            const Tensor w = vec({2, -1}, dt), b = vec({0.5, 1}, dt);

            // No affine transform: (x - mean) / sqrt(var + eps).
            Tensor y = batch_norm2d(x, rm, rv, Tensor(), Tensor(), true);
            REQUIRE(y.shape() == Shape{2, 2, 1, 2});
            std::vector<double> expect(8), expect_affine(8);
            for (size_t i = 0; i < 8; i++) {
                const size_t c = (i / 2) % 2;
                expect[i] = (kX[i] - kMean[c]) / std::sqrt(kVar[c] + eps);
                expect_affine[i] = expect[i] * (c == 0 ? 2.0 : -1.0) + (c == 0 ? 0.5 : 1.0);
            }
            REQUIRE_THAT(values(y), AllClose(expect).rtol(tol).atol(tol));
            // running = 0.9 * running + 0.1 * batch statistic, with the unbiased variance.
            REQUIRE_THAT(values(rm), AllClose(std::vector<double>{0.3, 0.2}).rtol(tol));
            REQUIRE_THAT(values(rv),
                         AllClose(std::vector<double>{0.9 + 0.1 * kUnbiased[0], 0.9 + 0.1 * kUnbiased[1]}).rtol(tol));

            // A second step with the affine transform and momentum 0.5 from the updated statistics.
            y = batch_norm2d(x, rm, rv, w, b, true, 0.5);
            REQUIRE_THAT(values(y), AllClose(expect_affine).rtol(tol).atol(tol));
            REQUIRE_THAT(values(rm), AllClose(std::vector<double>{0.5 * 0.3 + 0.5 * 3, 0.5 * 0.2 + 0.5 * 2}).rtol(tol));
            REQUIRE_THAT(values(rv),
                         AllClose(std::vector<double>{0.5 * (0.9 + 0.1 * kUnbiased[0]) + 0.5 * kUnbiased[0],
                                                      0.5 * (0.9 + 0.1 * kUnbiased[1]) + 0.5 * kUnbiased[1]})
                             .rtol(tol));

            // Without running statistics nothing is updated and the output is the same.
            REQUIRE_THAT(values(batch_norm2d(x, Tensor(), Tensor(), w, b, true)),
                         AllClose(expect_affine).rtol(tol).atol(tol));

            // A non-contiguous running statistic (every other element of a longer vector) is updated in place.
            const Tensor rm_wide = vec({10, -1, 20, -1}, dt), rv_wide = vec({1, -1, 2, -1}, dt);
            batch_norm2d(x, rm_wide.slice(0, 0, 4, 2), rv_wide.slice(0, 0, 4, 2), Tensor(), Tensor(), true, 0.25);
            REQUIRE_THAT(values(rm_wide),
                         AllClose(std::vector<double>{0.75 * 10 + 0.25 * 3, -1, 0.75 * 20 + 0.25 * 2, -1}).rtol(tol));
            REQUIRE_THAT(values(rv_wide), AllClose(std::vector<double>{0.75 * 1 + 0.25 * kUnbiased[0], -1,
                                                                       0.75 * 2 + 0.25 * kUnbiased[1], -1})
                                              .rtol(tol));
        }
    }
}

TEST_CASE("batch_norm2d eval: running statistics, unchanged, and a gradient through them", "[batchnorm][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const double eps = 1e-3, tol = dt == DType::float32 ? 1e-6 : 1e-12;
            const std::vector<double> rmv = {1, 2}, rvv = {4, 0.25}, wv = {2, -1}, bv = {0.5, 1};
            Tensor x = Tensor::from_vector(kX, {2, 2, 1, 2}).to(dt).requires_grad_();
            Tensor rm = vec(rmv, dt), rv = vec(rvv, dt);
            Tensor w = vec(wv, dt).requires_grad_(), b = vec(bv, dt).requires_grad_();
            Tensor y = batch_norm2d(x, rm, rv, w, b, false, 0.1, eps);
            std::vector<double> expect(8), dx(8), dw(2, 0.0), db(2, 0.0);
            const std::vector<double> dy = {1, -2, 3, 0.5, -1, 2, 0.25, 4};
            for (size_t i = 0; i < 8; i++) {
                const size_t c = (i / 2) % 2;
                const double istd = 1 / std::sqrt(rvv[c] + eps);
                expect[i] = (kX[i] - rmv[c]) * istd * wv[c] + bv[c];
                dx[i] = dy[i] * wv[c] * istd;
                dw[c] += dy[i] * (kX[i] - rmv[c]) * istd;
                db[c] += dy[i];
            }
            REQUIRE_THAT(values(y), AllClose(expect).rtol(tol).atol(tol));
            REQUIRE(values(rm) == rmv);  // eval leaves the running statistics alone
            REQUIRE(values(rv) == rvv);
            // The backward pass uses the statistics of the forward pass, even when they change afterwards.
            {
                NoGradGuard ng;
                rm.fill_(100);
                rv.fill_(100);
            }
            y.backward(Tensor::from_vector(dy, {2, 2, 1, 2}).to(dt));
            REQUIRE_THAT(values(x.grad()), AllClose(dx).rtol(tol).atol(tol));
            REQUIRE_THAT(values(w.grad()), AllClose(dw).rtol(tol).atol(tol));
            REQUIRE_THAT(values(b.grad()), AllClose(db).rtol(tol).atol(tol));
        }
    }
}

TEST_CASE("batch_norm2d training gradient: hand-checked, and it accumulates", "[batchnorm][naive][omp]") {
    for (CpuKernels k : kBothSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        // The output of a training batch norm sums to beta * count per channel whatever x is: the gradient
        // of sum(y) w.r.t. x is 0, w.r.t. beta the count, w.r.t. gamma sum(xhat) = 0.
        Tensor x = Tensor::from_vector(kX, {2, 2, 1, 2}).to(DType::float32).requires_grad_();
        Tensor w = vec({2, -1}).requires_grad_(), b = vec({0.5, 1}).requires_grad_();
        sum(batch_norm2d(x, Tensor(), Tensor(), w, b, true)).backward();
        REQUIRE_THAT(values(x.grad()), AllClose(std::vector<double>(8, 0.0)).atol(1e-6));
        REQUIRE_THAT(values(w.grad()), AllClose(std::vector<double>{0, 0}).atol(1e-6));
        REQUIRE_THAT(values(b.grad()), AllClose(std::vector<double>{4, 4}).atol(1e-6));
        // sum(y^2) = count * gamma^2 * var / (var + eps) + ...: its gradient w.r.t. gamma is 2 * gamma *
        // count * var / (var + eps) (beta 0). Run it twice: gradients accumulate.
        Tensor w2 = vec({2, -1}).requires_grad_();
        for (int rep = 0; rep < 2; rep++) {
            const Tensor y = batch_norm2d(x.detach(), Tensor(), Tensor(), w2, Tensor(), true);
            sum(y * y).backward();
        }
        const std::vector<double> expect = {2 * 2 * 2 * 4 * kVar[0] / (kVar[0] + 1e-5),
                                            2 * 2 * -1 * 4 * kVar[1] / (kVar[1] + 1e-5)};
        REQUIRE_THAT(values(w2.grad()), AllClose(expect).rtol(1e-5));
    }
}

// ---------------------------------------------------------------------------- omp
TEST_CASE("omp batch_norm kernels give the same bits for any thread count", "[batchnorm][omp]") {
    // Threads take whole channels: the summation order does not depend on the thread count.
    BatchNormShape s;
    s.n = 9, s.c = 13, s.hw = 515;
    const int64_t numel = s.n * s.c * s.hw;
    const std::vector<float> x = random_floats(numel, 700, 3.0f, 1.0f), dy = random_floats(numel, 701);
    const std::vector<float> gamma = random_floats(s.c, 702), beta = random_floats(s.c, 703);
    std::vector<float> y[2], mean[2], invstd[2], dx[2], dg[2], db[2];
    for (int t = 0; t < 2; t++) {
        NumThreadsGuard threads(t + 1);
        y[t] = nan_filled<float>(numel), dx[t].assign(size_t(numel), 0.0f);  // outputs NaN; gradients add
        mean[t] = nan_filled<float>(s.c), invstd[t] = nan_filled<float>(s.c);
        dg[t].assign(size_t(s.c), 0.0f), db[t].assign(size_t(s.c), 0.0f);
        omp::batch_norm_fwd_train(s, y[t].data(), mean[t].data(), invstd[t].data(), nullptr, nullptr, x.data(),
                                  gamma.data(), beta.data(), 0.1f, 1e-5f);
        omp::batch_norm_bwd(s, true, dx[t].data(), dg[t].data(), db[t].data(), dy.data(), x.data(), mean[t].data(),
                            invstd[t].data(), gamma.data());
    }
    REQUIRE(count_nan(y[0]) + count_nan(mean[0]) + count_nan(invstd[0]) == 0);
    REQUIRE(y[0] == y[1]);
    REQUIRE(mean[0] == mean[1]);
    REQUIRE(invstd[0] == invstd[1]);
    REQUIRE(dx[0] == dx[1]);
    REQUIRE(dg[0] == dg[1]);
    REQUIRE(db[0] == db[1]);
}

// ---------------------------------------------------------------------------- fused with ReLU
TEST_CASE("batch_norm_relu kernels: batch norm then relu in one pass, omp against naive",
          "[batchnorm][omp][naive][channels_last]") {
    // omp's fused kernels give the bits of its batch norm followed by relu_fwd's rule (forward) and of its
    // backward on dy masked by relu_bwd's rule (backward); naive's are that composition by construction.
    // omp against naive: the batch-norm rows of the tolerance table, through the same statistics. Both
    // layouts (channels_last: (n, hw, c) operands).
    for (const bool channels_last : {false, true}) {
        for (const test::BnCase& bc : test::bn_cases()) {
            BatchNormShape s;
            s.n = bc.n, s.c = bc.c, s.hw = bc.hw;
            s.channels_last = channels_last;
            INFO("n " << s.n << " c " << s.c << " hw " << s.hw << (channels_last ? " channels_last" : ""));
            const int64_t numel = s.n * s.c * s.hw;
            const std::vector<float> x = random_floats(numel, 710, 2.0f, 0.5f), dy = random_floats(numel, 711);
            const std::vector<float> gamma = random_floats(s.c, 712), beta = random_floats(s.c, 713);
            const std::vector<float> rm = random_floats(s.c, 714), rv = random_floats(s.c, 715, 0.1f, 1.0f);
            for (bool training : {true, false}) {
                INFO("training " << training);
                std::vector<float> y = nan_filled<float>(numel), plain = nan_filled<float>(numel);
                std::vector<float> mean = nan_filled<float>(s.c), invstd = nan_filled<float>(s.c), mean2(size_t(s.c)),
                                   invstd2(size_t(s.c));
                if (training) {
                    omp::batch_norm_relu_fwd_train(s, y.data(), mean.data(), invstd.data(), nullptr, nullptr, x.data(),
                                                   gamma.data(), beta.data(), 0.1f, 1e-5f);
                    omp::batch_norm_fwd_train(s, plain.data(), mean2.data(), invstd2.data(), nullptr, nullptr, x.data(),
                                              gamma.data(), beta.data(), 0.1f, 1e-5f);
                    REQUIRE(count_nan(mean) + count_nan(invstd) == 0);
                    REQUIRE(same_bits(mean, mean2));
                    REQUIRE(same_bits(invstd, invstd2));
                } else {
                    for (int64_t c = 0; c < s.c; c++)
                        mean[size_t(c)] = rm[size_t(c)],
                        invstd[size_t(c)] = float(1.0 / std::sqrt(double(rv[size_t(c)]) + 1e-5));
                    omp::batch_norm_relu_fwd_eval(s, y.data(), x.data(), rm.data(), rv.data(), gamma.data(),
                                                  beta.data(), 1e-5f);
                    omp::batch_norm_fwd_eval(s, plain.data(), x.data(), rm.data(), rv.data(), gamma.data(), beta.data(),
                                             1e-5f);
                }
                REQUIRE(count_nan(y) == 0);
                std::vector<float> relu_of_plain(plain.size()), masked(dy.size());
                for (size_t k = 0; k < plain.size(); k++) relu_of_plain[k] = plain[k] < 0.0f ? 0.0f : plain[k];
                REQUIRE(same_bits(y, relu_of_plain));
                for (size_t k = 0; k < dy.size(); k++) masked[k] = plain[k] > 0.0f ? dy[k] : 0.0f;

                // Backward into buffers that hold values: fused against the masked dy, bit for bit.
                const std::vector<float> dx0 = random_floats(numel, 716), dg0 = random_floats(s.c, 717),
                                         db0 = random_floats(s.c, 718);
                std::vector<float> dx = dx0, dg = dg0, db = db0, dx2 = dx0, dg2 = dg0, db2 = db0;
                omp::batch_norm_relu_bwd(s, training, dx.data(), dg.data(), db.data(), dy.data(), y.data(), x.data(),
                                         mean.data(), invstd.data(), gamma.data());
                omp::batch_norm_bwd(s, training, dx2.data(), dg2.data(), db2.data(), masked.data(), x.data(),
                                    mean.data(), invstd.data(), gamma.data());
                REQUIRE(same_bits(dx, dx2));
                REQUIRE(same_bits(dg, dg2));
                REQUIRE(same_bits(db, db2));

                // naive's fused kernels on the same layout and statistics.
                std::vector<float> yn = nan_filled<float>(numel), mn(size_t(s.c)), isn(size_t(s.c));
                if (training)
                    naive::batch_norm_relu_fwd_train<float>(s, yn.data(), mn.data(), isn.data(), nullptr, nullptr,
                                                            x.data(), gamma.data(), beta.data(), 0.1f, 1e-5f);
                else
                    naive::batch_norm_relu_fwd_eval<float>(s, yn.data(), x.data(), rm.data(), rv.data(), gamma.data(),
                                                           beta.data(), 1e-5f);
                REQUIRE_THAT(y, AllClose(yn).rtol(1e-5).atol(1e-5));
                if (!training) REQUIRE(same_bits(y, yn));  // the eval forward: naive's float expressions
                std::vector<float> dxn = dx0, dgn = dg0, dbn = db0;
                naive::batch_norm_relu_bwd<float>(s, training, dxn.data(), dgn.data(), dbn.data(), dy.data(), y.data(),
                                                  x.data(), mean.data(), invstd.data(), gamma.data());
                const double walk = 1e-6 * std::sqrt(double(s.n * s.hw));
                REQUIRE_THAT(dx, AllClose(dxn).rtol(1e-5).atol(1e-5));
                REQUIRE_THAT(dg, AllClose(dgn).rtol(1e-5).atol(walk));
                REQUIRE_THAT(db, AllClose(dbn).rtol(1e-5).atol(walk));
            }
        }
    }
}

TEST_CASE("batch_norm2d_relu equals relu(batch_norm2d) with its gradients, and the ResNet's fusion changes no bit",
          "[batchnorm][nn]") {
    for (CpuKernels set : kBothSets) {
        CpuKernelsGuard guard(set);
        INFO(cpu_kernels_name(set));
        const Tensor x0 = test::random_tensor({4, 6, 5, 3}, 720);
        const Tensor w0 = test::random_tensor({6}, 721), b0 = test::random_tensor({6}, 722);
        for (bool training : {true, false}) {
            INFO("training " << training);
            Tensor got[4], want[4];
            for (int fused = 0; fused < 2; fused++) {
                const Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(),
                             b = b0.detach().requires_grad_();
                const Tensor rm = Tensor::zeros({6}), rv = Tensor::ones({6});
                const Tensor y = fused ? batch_norm2d_relu(x, rm, rv, w, b, training)
                                       : relu(batch_norm2d(x, rm, rv, w, b, training));
                sum(y * test::random_tensor({4, 6, 5, 3}, 723)).backward();
                Tensor* out = fused ? got : want;
                out[0] = y.detach(), out[1] = x.grad(), out[2] = w.grad(), out[3] = b.grad();
            }
            for (int i = 0; i < 4; i++) REQUIRE(values(got[i]) == values(want[i]));
        }
    }
    // A ResNet-18 step's outputs and gradients: the same bits with the fusion on and off.
    auto run = [](bool fuse) {
        nn::set_fuse_layers(fuse);
        manual_seed(5);
        auto model = models::resnet18_small(7, 3);
        const Tensor x = test::random_tensor({2, 3, 16, 16}, 724);
        const Tensor out = (*model)(x);
        sum(out).backward();
        std::vector<std::vector<double>> v = {values(out)};
        for (auto& [name, p] : model->named_parameters()) v.push_back(values(p.grad()));
        nn::set_fuse_layers(true);
        return v;
    };
    REQUIRE(run(true) == run(false));
}

TEST_CASE("batch_norm2d_relu gradients (float64), training and eval", "[batchnorm][gradcheck]") {
    const DType f64 = DType::float64;
    // None of these values of the normalised x lies within the step (1e-6) of relu's kink, where a central
    // difference would not be the gradient.
    const Tensor x = test::random_tensor({3, 4, 3, 2}, 730, test::Layout::contiguous, f64).requires_grad_();
    const Tensor w =
        (test::random_tensor({4}, 731, test::Layout::contiguous, f64) * 0.5 + 1.0).detach().requires_grad_();
    const Tensor b = test::random_tensor({4}, 732, test::Layout::contiguous, f64).requires_grad_();
    for (bool training : {true, false}) {
        INFO("training " << training);
        const GradcheckResult r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                return batch_norm2d_relu(v[0], Tensor::zeros({4}, f64), Tensor::ones({4}, f64), v[1], v[2], training,
                                         0.1, 1e-3);
            },
            {x, w, b});
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("batch_norm2d gradients (float64), training and eval, with and without affine", "[batchnorm][gradcheck]") {
    const DType f64 = DType::float64;
    const Tensor x = test::random_tensor({3, 4, 3, 2}, 600, test::Layout::contiguous, f64).requires_grad_();
    const Tensor w =
        (test::random_tensor({4}, 601, test::Layout::contiguous, f64) * 0.5 + 1.0).detach().requires_grad_();
    const Tensor b = test::random_tensor({4}, 602, test::Layout::contiguous, f64).requires_grad_();
    const Tensor rm = test::random_tensor({4}, 603, test::Layout::contiguous, f64);
    const Tensor rv = (test::random_tensor({4}, 604, test::Layout::contiguous, f64) * 0.3 + 1.0).detach();

    for (bool training : {true, false}) {
        INFO("training " << training);
        GradcheckResult r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                // Fresh running statistics per call: training updates them.
                return batch_norm2d(v[0], rm.clone(), rv.clone(), v[1], v[2], training, 0.1, 1e-3);
            },
            {x, w, b});
        INFO("affine: " << r.report);
        REQUIRE(r.ok);
        r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                return batch_norm2d(v[0], rm.clone(), rv.clone(), Tensor(), Tensor(), training, 0.1, 1e-3);
            },
            {x});
        INFO("no affine: " << r.report);
        REQUIRE(r.ok);
        // Only the weight (no bias), and x held constant.
        r = gradcheck(
            [&](const std::vector<Tensor>& v) {
                return batch_norm2d(v[0], rm.clone(), rv.clone(), v[1], Tensor(), training, 0.1, 1e-3);
            },
            {x.detach(), w});
        INFO("weight only: " << r.report);
        REQUIRE(r.ok);
    }
    // Training without running statistics, on a strided input, composed with a nonlinearity.
    const GradcheckResult r = gradcheck(
        [](const std::vector<Tensor>& v) {
            const Tensor y = batch_norm2d(v[0].transpose(2, 3), Tensor(), Tensor(), v[1], v[2], true);
            return y * y;
        },
        {x, w, b});
    INFO(r.report);
    REQUIRE(r.ok);
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("batch_norm2d argument errors name the op and the shapes", "[batchnorm][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({2, 3, 4, 4});
    const Tensor c3 = Tensor::ones({3}), c4 = Tensor::ones({4});
    REQUIRE_THROWS_WITH(batch_norm2d(Tensor::zeros({2, 3, 4}), c3, c3, c3, c3, true),
                        Contains("batch_norm2d") && Contains("4-D") && Contains("(2, 3, 4)"));
    REQUIRE_THROWS_WITH(batch_norm2d(x, c3, c3, c4, c3, true), Contains("batch_norm2d") &&
                                                                   Contains("weight must have shape (3)") &&
                                                                   Contains("(4)") && Contains("(2, 3, 4, 4)"));
    REQUIRE_THROWS_WITH(batch_norm2d(x, c3, c3, c3, Tensor::ones({3, 1}), true),
                        Contains("bias must have shape (3)") && Contains("(3, 1)"));
    REQUIRE_THROWS_WITH(batch_norm2d(x, c4, c3, c3, c3, true), Contains("running_mean must have shape (3)"));
    REQUIRE_THROWS_WITH(batch_norm2d(x, c3, Tensor::ones({2}), c3, c3, false),
                        Contains("running_var must have shape (3)") && Contains("(2)"));
    REQUIRE_THROWS_WITH(batch_norm2d(x, c3, Tensor(), c3, c3, true),
                        Contains("batch_norm2d") && Contains("running_mean and running_var"));
    REQUIRE_THROWS_WITH(
        batch_norm2d(Tensor::zeros({1, 3, 1, 1}), c3, c3, c3, c3, true),
        Contains("batch_norm2d") && Contains("more than one value per channel") && Contains("(1, 3, 1, 1)"));
    REQUIRE_NOTHROW(batch_norm2d(Tensor::zeros({1, 3, 1, 1}), c3, c3, c3, c3, false));  // eval is fine
    REQUIRE_THROWS_WITH(
        batch_norm2d(x, Tensor(), Tensor(), c3, c3, false),
        Contains("batch_norm2d") && Contains("eval") && Contains("running_mean") && Contains("(2, 3, 4, 4)"));
    REQUIRE_THROWS_WITH(
        batch_norm2d(Tensor::zeros({2, 3, 4, 4}, DType::int32), Tensor(), Tensor(), Tensor(), Tensor(), true),
        Contains("batch_norm2d") && Contains("int32"));
    REQUIRE_THROWS_WITH(batch_norm2d(x, Tensor(), Tensor(), Tensor::ones({3}, DType::float64), Tensor(), true),
                        Contains("batch_norm2d") && Contains("float64"));
    REQUIRE_THROWS_WITH(batch_norm2d(Tensor(), c3, c3, c3, c3, true),
                        Contains("batch_norm2d") && Contains("undefined"));
}
