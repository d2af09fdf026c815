// Batch normalisation on every kernel set against the naive reference and the float64 reference, on the
// case list of support/norm_cases.h (odd shapes, planes of one value, long planes, many channels), with a
// large mean offset for the accuracy of the statistics (a one-pass variance would fail), with and without
// the affine transform: the training forward (saved statistics, running statistics, y; without running
// statistics the same bits), the eval forward, the training and eval backward into buffers that already
// hold values (they must add), null outputs (dx alone, dgamma alone: the same bits), run-to-run
// determinism, and the batch_norm2d frontend on non-contiguous inputs through autograd. The naive reference
// is held to the same float64 checks. The kernel cases run on NCHW operands and again on channels_last
// ((n, hw, c)) ones, with the same claims and tolerances. Known values, float64 gradient checks, errors
// and the omp thread count: tests/kernels/test_norm.cpp (NCHW) and tests/kernels/test_channels_last_kernels.cpp.
//
// Tolerances (support/tolerances.h): every set adds the per-channel sums in double or flushes float lanes
// into double (omp), so the statistics differ from the float64 reference by rounding only; y and dx are
// float expressions of those; dgamma and dbeta are sums over the channel. The eval forward and the eval dx
// are naive's float expressions on the same per-channel constants in every set: identical bits.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/norm.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/kernel_sets.h"
#include "support/norm_cases.h"
#include "support/random.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::BnCase;
using test::count_nan;
using test::nan_filled;
using test::same_bits;

namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    std::vector<float> v = test::random_tensor({n}, seed).to_vector<float>();
    for (float& e : v) e = e * scale + offset;
    return v;
}

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// The training forward's outputs.
struct TrainOut {
    std::vector<float> y, mean, invstd, rm, rv;
};

// Output, gradients and running statistics of batch_norm2d on x (weight w, bias b, upstream gradient dy),
// all on x's device.
struct FrontendResults {
    Tensor y, gx, gw, gb, rm, rv;
};
FrontendResults batch_norm_and_grad(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy,
                                    bool training) {
    const Device d = x.device();
    FrontendResults r;
    r.rm = Tensor::full({7}, 0.5, DType::float32, d), r.rv = Tensor::full({7}, 2.0, DType::float32, d);
    Tensor xl = x.detach().requires_grad_(), wl = w.detach().to(d).requires_grad_(),
           bl = b.detach().to(d).requires_grad_();
    r.y = batch_norm2d(xl, r.rm, r.rv, wl, bl, training);
    r.y.backward(dy.to(d));
    r.gx = xl.grad(), r.gw = wl.grad(), r.gb = bl.grad();
    return r;
}

}  // namespace

namespace {

// Forward outputs (y and the saved statistics) start as NaN, so an element no kernel writes fails; the
// backward gradients start with values, and the kernels must add to them.
void check_batch_norm_kernels(const test::KernelSet& ks, bool channels_last, uint64_t seed) {
    for (const BnCase& bc : test::bn_cases()) {
        for (float offset : {0.0f, 50.0f}) {
            for (bool affine : {true, false}) {
                BatchNormShape s;
                s.n = bc.n, s.c = bc.c, s.hw = bc.hw;
                s.channels_last = channels_last;
                const int64_t count = s.n * s.hw, numel = s.n * s.c * s.hw;
                INFO("(n, c, hw) = (" << s.n << ", " << s.c << ", " << s.hw << ") offset " << offset << " affine "
                                      << affine << (channels_last ? " channels_last" : ""));
                const std::vector<float> x = random_floats(numel, seed++, 2.0f, offset);
                const std::vector<float> gamma = random_floats(s.c, seed++, 0.5f, 1.0f);
                const std::vector<float> beta = random_floats(s.c, seed++);
                const std::vector<float> rm0 = random_floats(s.c, seed++);
                std::vector<float> rv0 = random_floats(s.c, seed++);
                for (float& v : rv0) v = v * v + 0.5f;
                const float* g = affine ? gamma.data() : nullptr;
                const float* b = affine ? beta.data() : nullptr;
                const std::vector<double> xd = as_double(x), gd = as_double(gamma), bd = as_double(beta);
                const Tensor xs = test::buffer(ks, x);
                const Tensor gs = affine ? test::buffer(ks, gamma) : Tensor();
                const Tensor bs = affine ? test::buffer(ks, beta) : Tensor();

                // Training forward: the float64 reference, naive in float32, the set.
                std::vector<double> yd = nan_filled<double>(numel), md = nan_filled<double>(s.c),
                                    isd = nan_filled<double>(s.c);
                std::vector<double> rmd = as_double(rm0), rvd = as_double(rv0);
                naive::batch_norm_fwd_train(s, yd.data(), md.data(), isd.data(), rmd.data(), rvd.data(), xd.data(),
                                            affine ? gd.data() : nullptr, affine ? bd.data() : nullptr, 0.1, 1e-5);
                REQUIRE(count_nan(yd) + count_nan(md) + count_nan(isd) == 0);
                TrainOut ref{nan_filled<float>(numel), nan_filled<float>(s.c), nan_filled<float>(s.c), rm0, rv0};
                naive::batch_norm_fwd_train(s, ref.y.data(), ref.mean.data(), ref.invstd.data(), ref.rm.data(),
                                            ref.rv.data(), x.data(), g, b, 0.1f, 1e-5f);
                REQUIRE(count_nan(ref.y) + count_nan(ref.mean) + count_nan(ref.invstd) == 0);
                const Tensor ys = test::nan_buffer(ks, numel), ms = test::nan_buffer(ks, s.c),
                             iss = test::nan_buffer(ks, s.c), rms = test::buffer(ks, rm0), rvs = test::buffer(ks, rv0);
                DYAD_KCALL(ks, batch_norm_fwd_train, s, test::ptr(ys), test::ptr(ms), test::ptr(iss), test::ptr(rms),
                           test::ptr(rvs), test::ptr(xs), test::ptr(gs), test::ptr(bs), 0.1f, 1e-5f);
                const TrainOut out{test::host(ys), test::host(ms), test::host(iss), test::host(rms), test::host(rvs)};
                const TrainOut* both[] = {&ref, &out};
                for (const TrainOut* o : both) {
                    INFO((o == &ref ? "naive" : ks.name) << " vs float64");
                    test::require_close(md, as_double(o->mean), test::tol::bn_mean(ks));
                    test::require_close(isd, as_double(o->invstd), test::tol::bn_invstd(ks));
                    test::require_close(rmd, as_double(o->rm), test::tol::bn_running(ks));
                    test::require_close(rvd, as_double(o->rv), test::tol::bn_running(ks));
                    test::require_close(yd, as_double(o->y), test::tol::bn_output(ks));
                }
                test::require_close(ref.y, out.y, test::tol::bn_output(ks));
                {
                    // Without running statistics: the same outputs, bit for bit.
                    const Tensor y2 = test::nan_buffer(ks, numel), m2 = test::nan_buffer(ks, s.c),
                                 is2 = test::nan_buffer(ks, s.c);
                    DYAD_KCALL(ks, batch_norm_fwd_train, s, test::ptr(y2), test::ptr(m2), test::ptr(is2), nullptr,
                               nullptr, test::ptr(xs), test::ptr(gs), test::ptr(bs), 0.1f, 1e-5f);
                    REQUIRE(same_bits(test::host(y2), out.y));
                    REQUIRE(same_bits(test::host(m2), out.mean));
                    REQUIRE(same_bits(test::host(is2), out.invstd));
                }

                // Eval forward: naive's float expressions on the same running statistics.
                std::vector<float> ye = nan_filled<float>(numel);
                naive::batch_norm_fwd_eval(s, ye.data(), x.data(), rm0.data(), rv0.data(), g, b, 1e-5f);
                REQUIRE(count_nan(ye) == 0);
                const Tensor yes = test::nan_buffer(ks, numel), rm0s = test::buffer(ks, rm0),
                             rv0s = test::buffer(ks, rv0);
                DYAD_KCALL(ks, batch_norm_fwd_eval, s, test::ptr(yes), test::ptr(xs), test::ptr(rm0s), test::ptr(rv0s),
                           test::ptr(gs), test::ptr(bs), 1e-5f);
                test::require_close(ye, test::host(yes), test::tol::exact(ks));

                // Backward, training and eval, into buffers that already hold values (they must add).
                const std::vector<float> dy = random_floats(numel, seed++);
                const std::vector<float> dx0 = random_floats(numel, seed++), dg0 = random_floats(s.c, seed++),
                                         db0 = random_floats(s.c, seed++);
                const std::vector<double> dyd = as_double(dy);
                const Tensor dys = test::buffer(ks, dy);
                for (bool training : {true, false}) {
                    INFO("backward, training " << training);
                    // The statistics: naive's saved batch ones, or those of the running statistics.
                    std::vector<float> sm = ref.mean, si = ref.invstd;
                    if (!training)
                        for (int64_t c = 0; c < s.c; c++) {
                            sm[size_t(c)] = rm0[size_t(c)];
                            si[size_t(c)] = float(1.0 / std::sqrt(double(rv0[size_t(c)]) + 1e-5));
                        }
                    const Tensor sms = test::buffer(ks, sm), sis = test::buffer(ks, si);
                    std::vector<float> dxn = dx0, dgn = dg0, dbn = db0;
                    naive::batch_norm_bwd(s, training, dxn.data(), affine ? dgn.data() : nullptr,
                                          affine ? dbn.data() : nullptr, dy.data(), x.data(), sm.data(), si.data(), g);
                    const Tensor dxs = test::buffer(ks, dx0), dgs = test::buffer(ks, dg0), dbs = test::buffer(ks, db0);
                    DYAD_KCALL(ks, batch_norm_bwd, s, training, test::ptr(dxs), affine ? test::ptr(dgs) : nullptr,
                               affine ? test::ptr(dbs) : nullptr, test::ptr(dys), test::ptr(xs), test::ptr(sms),
                               test::ptr(sis), test::ptr(gs));
                    // The float64 reference into zeros, added to the initial values.
                    std::vector<double> rdx(static_cast<size_t>(numel), 0.0), rdg(size_t(s.c), 0.0),
                        rdb(size_t(s.c), 0.0);
                    const std::vector<double> smd = as_double(sm), sid = as_double(si);
                    naive::batch_norm_bwd(s, training, rdx.data(), rdg.data(), rdb.data(), dyd.data(), xd.data(),
                                          smd.data(), sid.data(), affine ? gd.data() : nullptr);
                    for (size_t i = 0; i < rdx.size(); i++) rdx[i] += double(dx0[i]);
                    for (size_t i = 0; i < rdg.size(); i++) rdg[i] += double(dg0[i]), rdb[i] += double(db0[i]);
                    const std::vector<float> dx = test::host(dxs), dg = test::host(dgs), db = test::host(dbs);
                    for (int i = 0; i < 2; i++) {
                        INFO((i == 0 ? "naive" : ks.name) << " vs float64");
                        test::require_close(rdx, as_double(i == 0 ? dxn : dx), test::tol::bn_output(ks));
                        if (affine) {
                            test::require_close(rdg, as_double(i == 0 ? dgn : dg), test::tol::bn_param_grad(ks, count));
                            test::require_close(rdb, as_double(i == 0 ? dbn : db), test::tol::bn_param_grad(ks, count));
                        } else {
                            REQUIRE((i == 0 ? dgn : dg) == dg0);  // null pointers: nothing written
                            REQUIRE((i == 0 ? dbn : db) == db0);
                        }
                    }
                    // The eval dx is dy * float(gamma * invstd) added in float, as naive.
                    if (!training) test::require_close(dxn, dx, test::tol::exact(ks));
                    // dx alone (dgamma and dbeta not needed), and dgamma alone: the same bits as the full call.
                    const Tensor dx_only = test::buffer(ks, dx0), dg_only = test::buffer(ks, dg0);
                    DYAD_KCALL(ks, batch_norm_bwd, s, training, test::ptr(dx_only), nullptr, nullptr, test::ptr(dys),
                               test::ptr(xs), test::ptr(sms), test::ptr(sis), test::ptr(gs));
                    REQUIRE(same_bits(test::host(dx_only), dx));
                    if (affine) {
                        DYAD_KCALL(ks, batch_norm_bwd, s, training, nullptr, test::ptr(dg_only), nullptr,
                                   test::ptr(dys), test::ptr(xs), test::ptr(sms), test::ptr(sis), test::ptr(gs));
                        REQUIRE(same_bits(test::host(dg_only), dg));
                    }
                }
            }
        }
    }
}

}  // namespace

DYAD_KERNEL_TEST("batch_norm kernels equal naive and the float64 reference", "[batchnorm]") {
    // Two draws of the data. The second is one on which the eval backward's dgamma (the running mean 50 away
    // from the batch's: a sum of large terms that cancel) was 3.5e-4 off in the (4, 64, 1024) case while
    // omp summed it in float lanes.
    for (uint64_t seed : {1, 6001}) check_batch_norm_kernels(ks, false, seed);
}

DYAD_KERNEL_TEST("batch_norm kernels on channels_last operands equal naive and the float64 reference",
                 "[batchnorm][channels_last]") {
    for (uint64_t seed : {1001, 7001}) check_batch_norm_kernels(ks, true, seed);
}

namespace {

// Shapes whose sums split over several blocks per channel on the GPU (and over several groups of rows in
// omp's channels_last kernels).
void check_batch_norm_run_to_run(const test::KernelSet& ks, bool channels_last) {
    for (const BnCase& bc : test::bn_determinism_cases()) {
        BatchNormShape s;
        s.n = bc.n, s.c = bc.c, s.hw = bc.hw;
        s.channels_last = channels_last;
        const int64_t numel = s.n * s.c * s.hw;
        INFO("(n, c, hw) = (" << s.n << ", " << s.c << ", " << s.hw << ")" << (channels_last ? " channels_last" : ""));
        const Tensor x = test::buffer(ks, random_floats(numel, 700, 3.0f, 1.0f)),
                     dy = test::buffer(ks, random_floats(numel, 701));
        const Tensor gamma = test::buffer(ks, random_floats(s.c, 702)),
                     beta = test::buffer(ks, random_floats(s.c, 703));
        std::vector<float> y[2], mean[2], invstd[2], dx[2], dg[2], db[2];
        for (int t = 0; t < 2; t++) {
            // Outputs start as NaN; gradients add to zeros.
            const Tensor yt = test::nan_buffer(ks, numel), mt = test::nan_buffer(ks, s.c),
                         it = test::nan_buffer(ks, s.c);
            const Tensor dxt = test::buffer(ks, std::vector<float>(size_t(numel), 0.0f));
            const Tensor dgt = test::buffer(ks, std::vector<float>(size_t(s.c), 0.0f));
            const Tensor dbt = test::buffer(ks, std::vector<float>(size_t(s.c), 0.0f));
            DYAD_KCALL(ks, batch_norm_fwd_train, s, test::ptr(yt), test::ptr(mt), test::ptr(it), nullptr, nullptr,
                       test::ptr(x), test::ptr(gamma), test::ptr(beta), 0.1f, 1e-5f);
            DYAD_KCALL(ks, batch_norm_bwd, s, true, test::ptr(dxt), test::ptr(dgt), test::ptr(dbt), test::ptr(dy),
                       test::ptr(x), test::ptr(mt), test::ptr(it), test::ptr(gamma));
            y[t] = test::host(yt), mean[t] = test::host(mt), invstd[t] = test::host(it);
            dx[t] = test::host(dxt), dg[t] = test::host(dgt), db[t] = test::host(dbt);
        }
        REQUIRE(count_nan(y[0]) + count_nan(mean[0]) + count_nan(invstd[0]) == 0);
        REQUIRE(same_bits(y[0], y[1]));
        REQUIRE(same_bits(mean[0], mean[1]));
        REQUIRE(same_bits(invstd[0], invstd[1]));
        REQUIRE(same_bits(dx[0], dx[1]));
        REQUIRE(same_bits(dg[0], dg[1]));
        REQUIRE(same_bits(db[0], db[1]));
    }
}

}  // namespace

DYAD_KERNEL_TEST("batch_norm kernels give the same bits run to run", "[batchnorm]") {
    check_batch_norm_run_to_run(ks, false);
}

DYAD_KERNEL_TEST("batch_norm kernels on channels_last operands give the same bits run to run",
                 "[batchnorm][channels_last]") {
    check_batch_norm_run_to_run(ks, true);
}

DYAD_KERNEL_TEST("batch_norm2d frontend equals naive on non-contiguous inputs, outputs and gradients", "[batchnorm]") {
    // (5, 7, 9, 3) views of memory laid out (5, 7, 3, 9), the same view on both devices: unit normal
    // values, and values of mean 1 and deviation 2.
    const Tensor w = test::random_tensor({7}, 501), b = test::random_tensor({7}, 502);
    const Tensor dy = test::random_tensor({5, 7, 9, 3}, 503);
    const Tensor inputs[] = {test::random_tensor({5, 7, 9, 3}, 500, test::Layout::transposed),
                             (test::random_tensor({5, 7, 3, 9}, 500) * 2.0 + 1.0).transpose(2, 3)};
    for (int input = 0; input < 2; input++) {
        const Tensor& x = inputs[input];
        const Tensor xs = test::same_layout_on(x, test::Layout::transposed, ks.device);
        REQUIRE_FALSE(xs.is_contiguous());
        REQUIRE(xs.strides() == x.strides());
        for (bool training : {true, false}) {
            INFO("input " << input << " training " << training);
            const FrontendResults expected =
                test::naive_reference([&] { return batch_norm_and_grad(x, w, b, dy, training); });
            const FrontendResults actual = batch_norm_and_grad(xs, w, b, dy, training);
            REQUIRE(actual.y.device() == ks.device);
            test::require_close(expected.y, actual.y, test::tol::bn_output(ks));
            test::require_close(expected.gx, actual.gx, test::tol::bn_output(ks));
            test::require_close(expected.gw, actual.gw, test::tol::bn_frontend_param_grad(ks));
            test::require_close(expected.gb, actual.gb, test::tol::bn_frontend_param_grad(ks));
            test::require_close(expected.rm, actual.rm, test::tol::bn_running(ks));
            test::require_close(expected.rv, actual.rv, test::tol::bn_running(ks));
        }
    }
}
