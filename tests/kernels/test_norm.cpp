// Batch normalisation (batch_norm2d): hand-checked outputs and running statistics (momentum, unbiased
// variance), eval mode, omp-vs-naive parity on the kernels for odd shapes (with a large mean offset for
// the accuracy of the statistics), accumulation of the backward kernel, float64 gradient checks in
// training and eval mode with and without the affine transform, and argument errors.
#include "support/catch.h"

#include <cmath>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/norm.h"
#include "support/compare.h"
#include "support/norm_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::BnCase;
using test::count_nan;
using test::nan_filled;
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

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

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

// ---------------------------------------------------------------------------- omp vs naive
// The omp kernels add per-channel sums in float lanes flushed into double every 1024 elements; naive
// adds everything in double. Both are compared with naive<double> on the same float inputs. Tolerances:
// the mean to rtol 1e-6 / atol 1e-6 (float rounding of the result itself is 6e-8 relative), invstd to
// rtol 1e-5 (the variance is a sum of squares: rounding grows with the run length of 64 per lane), the
// running statistics likewise; y and dx are float expressions of those: rtol/atol 1e-5; dgamma and dbeta
// are sums over the channel: atol 1e-6 * sqrt(count), as for the reduce kernels. The forward outputs (y
// and the saved statistics) start as NaN, so an element no kernel writes fails; the backward gradients
// start with values, and the kernel must add to them.
TEST_CASE("batch_norm kernels: omp matches naive and the float64 reference", "[batchnorm][naive][omp]") {
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
                const float* g = affine ? gamma.data() : nullptr;
                const float* b = affine ? beta.data() : nullptr;
                const std::vector<double> xd = as_double(x), gd = as_double(gamma), bd = as_double(beta);

                // Training forward.
                std::vector<float> y[2], mean[2], invstd[2], rm[2] = {rm0, rm0}, rv[2] = {rv0, rv0};
                for (int i = 0; i < 2; i++) {
                    y[i] = nan_filled<float>(numel);
                    mean[i] = nan_filled<float>(s.c);
                    invstd[i] = nan_filled<float>(s.c);
                }
                naive::batch_norm_fwd_train(s, y[0].data(), mean[0].data(), invstd[0].data(), rm[0].data(),
                                            rv[0].data(), x.data(), g, b, 0.1f, 1e-5f);
                omp::batch_norm_fwd_train(s, y[1].data(), mean[1].data(), invstd[1].data(), rm[1].data(), rv[1].data(),
                                          x.data(), g, b, 0.1f, 1e-5f);
                std::vector<double> yd = nan_filled<double>(numel), md = nan_filled<double>(s.c),
                                    isd = nan_filled<double>(s.c);
                std::vector<double> rmd = as_double(rm0), rvd = as_double(rv0);
                naive::batch_norm_fwd_train(s, yd.data(), md.data(), isd.data(), rmd.data(), rvd.data(), xd.data(),
                                            affine ? gd.data() : nullptr, affine ? bd.data() : nullptr, 0.1, 1e-5);
                for (int i = 0; i < 2; i++) {
                    INFO((i ? "omp" : "naive") << " vs float64");
                    REQUIRE_THAT(as_double(mean[i]), AllClose(md).rtol(1e-6).atol(1e-6));
                    REQUIRE_THAT(as_double(invstd[i]), AllClose(isd).rtol(1e-5));
                    REQUIRE_THAT(as_double(rm[i]), AllClose(rmd).rtol(1e-5).atol(1e-6));
                    REQUIRE_THAT(as_double(rv[i]), AllClose(rvd).rtol(1e-5).atol(1e-6));
                    REQUIRE_THAT(as_double(y[i]), AllClose(yd).rtol(1e-5).atol(1e-5));
                }
                REQUIRE_THAT(y[1], AllClose(y[0]).rtol(1e-5).atol(1e-5));
                REQUIRE(count_nan(yd) + count_nan(md) + count_nan(isd) == 0);
                REQUIRE(count_nan(y[0]) + count_nan(mean[0]) + count_nan(invstd[0]) == 0);

                // Eval forward.
                for (int i = 0; i < 2; i++) y[i] = nan_filled<float>(numel);
                naive::batch_norm_fwd_eval(s, y[0].data(), x.data(), rm0.data(), rv0.data(), g, b, 1e-5f);
                omp::batch_norm_fwd_eval(s, y[1].data(), x.data(), rm0.data(), rv0.data(), g, b, 1e-5f);
                REQUIRE_THAT(y[1], AllClose(y[0]).rtol(1e-6).atol(1e-6));
                REQUIRE(count_nan(y[0]) == 0);

                // Backward, training and eval, into buffers that already hold values (they must add).
                const std::vector<float> dy = random_floats(numel, seed++);
                const std::vector<float> dx0 = random_floats(numel, seed++), dg0 = random_floats(s.c, seed++),
                                         db0 = random_floats(s.c, seed++);
                const std::vector<double> dyd = as_double(dy);
                for (bool training : {true, false}) {
                    INFO("backward, training " << training);
                    // The statistics: the saved batch ones, or those of the running statistics.
                    std::vector<float> sm = mean[0], si = invstd[0];
                    if (!training)
                        for (int64_t c = 0; c < s.c; c++) {
                            sm[size_t(c)] = rm0[size_t(c)];
                            si[size_t(c)] = float(1.0 / std::sqrt(double(rv0[size_t(c)]) + 1e-5));
                        }
                    std::vector<float> dx[2] = {dx0, dx0}, dg[2] = {dg0, dg0}, db[2] = {db0, db0};
                    naive::batch_norm_bwd(s, training, dx[0].data(), affine ? dg[0].data() : nullptr,
                                          affine ? db[0].data() : nullptr, dy.data(), x.data(), sm.data(), si.data(),
                                          g);
                    omp::batch_norm_bwd(s, training, dx[1].data(), affine ? dg[1].data() : nullptr,
                                        affine ? db[1].data() : nullptr, dy.data(), x.data(), sm.data(), si.data(), g);
                    // The float64 reference into zeros, added to the initial values.
                    std::vector<double> rdx(static_cast<size_t>(numel), 0.0), rdg(size_t(s.c), 0.0),
                        rdb(size_t(s.c), 0.0);
                    const std::vector<double> smd = as_double(sm), sid = as_double(si);
                    naive::batch_norm_bwd(s, training, rdx.data(), rdg.data(), rdb.data(), dyd.data(), xd.data(),
                                          smd.data(), sid.data(), affine ? gd.data() : nullptr);
                    for (size_t i = 0; i < rdx.size(); i++) rdx[i] += double(dx0[i]);
                    for (size_t i = 0; i < rdg.size(); i++) rdg[i] += double(dg0[i]), rdb[i] += double(db0[i]);
                    const double sum_atol = 1e-6 * std::sqrt(double(count));
                    for (int i = 0; i < 2; i++) {
                        INFO((i ? "omp" : "naive") << " vs float64");
                        REQUIRE_THAT(as_double(dx[i]), AllClose(rdx).rtol(1e-5).atol(1e-5));
                        if (affine) {
                            REQUIRE_THAT(as_double(dg[i]), AllClose(rdg).rtol(1e-5).atol(sum_atol));
                            REQUIRE_THAT(as_double(db[i]), AllClose(rdb).rtol(1e-5).atol(sum_atol));
                        } else {
                            REQUIRE(dg[i] == dg0);  // null pointers: nothing written
                            REQUIRE(db[i] == db0);
                        }
                    }
                    // dx alone (dgamma and dbeta not needed), and dgamma alone.
                    std::vector<float> dx_only = dx0, dg_only = dg0;
                    omp::batch_norm_bwd(s, training, dx_only.data(), nullptr, nullptr, dy.data(), x.data(), sm.data(),
                                        si.data(), g);
                    REQUIRE(dx_only == dx[1]);
                    if (affine) {
                        omp::batch_norm_bwd(s, training, nullptr, dg_only.data(), nullptr, dy.data(), x.data(),
                                            sm.data(), si.data(), g);
                        REQUIRE(dg_only == dg[1]);
                    }
                }
            }
        }
    }
}

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

TEST_CASE("batch_norm2d frontend: omp matches naive, outputs and gradients", "[batchnorm][naive][omp]") {
    const Tensor x = test::random_tensor({5, 7, 9, 3}, 500, test::Layout::transposed);
    const Tensor w = test::random_tensor({7}, 501), b = test::random_tensor({7}, 502);
    const Tensor dy = test::random_tensor({5, 7, 9, 3}, 503);
    for (bool training : {true, false}) {
        INFO("training " << training);
        Tensor y[2], gx[2], gw[2], gb[2], rm[2], rv[2];
        for (int i = 0; i < 2; i++) {
            CpuKernelsGuard guard(kBothSets[i]);
            rm[i] = Tensor::full({7}, 0.5), rv[i] = Tensor::full({7}, 2.0);
            Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_(), bl = b.detach().requires_grad_();
            y[i] = batch_norm2d(xl, rm[i], rv[i], wl, bl, training);
            y[i].backward(dy);
            gx[i] = xl.grad(), gw[i] = wl.grad(), gb[i] = bl.grad();
        }
        REQUIRE_THAT(values(y[1]), AllClose(values(y[0])).rtol(1e-5).atol(1e-5));
        REQUIRE_THAT(values(gx[1]), AllClose(values(gx[0])).rtol(1e-5).atol(1e-5));
        REQUIRE_THAT(values(gw[1]), AllClose(values(gw[0])).rtol(1e-5).atol(1e-4));
        REQUIRE_THAT(values(gb[1]), AllClose(values(gb[0])).rtol(1e-5).atol(1e-4));
        REQUIRE_THAT(values(rm[1]), AllClose(values(rm[0])).rtol(1e-5).atol(1e-6));
        REQUIRE_THAT(values(rv[1]), AllClose(values(rv[0])).rtol(1e-5).atol(1e-6));
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
