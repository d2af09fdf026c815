// 2-D convolution on every kernel set against the naive reference (float, and float64 for the exact
// result): the kernels on the shared cases (forward with and without bias and the fused bias + ReLU
// forward into outputs that start as NaN, backward data and backward filter + bias accumulating into
// pre-filled buffers, dweight the same bits without dbias), the accumulate contract, no input channels,
// conv2d and conv2d_relu through autograd (contiguous and non-contiguous x), and bit-identical runs in
// deterministic mode. The kernel cases, the accumulate contract and the no-channel case run again on
// channels_last operands (NHWC x, y and gradients, KRSC weights) against naive in that layout. The
// checks themselves: support/conv_cases.h. naive's NHWC against its NCHW, and omp's NHWC thread counts:
// tests/kernels/test_channels_last_conv.cpp. Known values, omp's thread counts, conv2d against
// formulations built from other ops, float64 gradient checks and errors: tests/kernels/test_conv.cpp;
// the CUDA implementations (im2col, cuDNN's plan cache and fallbacks): tests/cuda/test_conv.cpp.
#include "support/catch.h"

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "support/compare.h"
#include "support/conv_cases.h"
#include "support/kernel_sets.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::ConvCase;

namespace {

// The set's own convolution (cuDNN by default on the GPU; on the CPU im2col or, for 3x3 stride-1
// convolutions of 16 or more channels, Winograd) under the table's conv row for the algorithm it runs.
test::ConvTol conv_tol(const test::KernelSet& ks, const Conv2dShape& s) {
    const int m = ks.is_cuda() ? 0 : omp::winograd_tile(s);
    return [ks, m](int64_t len) { return test::tol::conv(ks, len, m); };
}
test::ConvTol conv_tol(const test::KernelSet& ks, const ConvCase& cc) { return conv_tol(ks, test::shape_of(cc)); }

}  // namespace

DYAD_KERNEL_TEST("conv2d kernels match naive on the shared cases", "[conv]") {
    for (const ConvCase& cc : test::conv_cases()) {
        INFO(test::describe(cc));
        test::check_conv_kernels(ks, test::make_conv_reference(cc), conv_tol(ks, cc));
    }
}

DYAD_KERNEL_TEST("conv2d kernels match naive on the shared cases, channels_last", "[conv][channels_last]") {
    // The same cases (and the 3x3 stride-1 ones Winograd would take in NCHW) with NHWC x, y and
    // gradients and KRSC weights: y starts as NaN, the gradients pre-filled (support/conv_cases.h).
    std::vector<ConvCase> cases = test::conv_cases();
    for (const ConvCase& cc : test::winograd_cases()) cases.push_back(cc);
    for (const ConvCase& cc : cases) {
        INFO(test::describe(cc) << ", channels_last");
        const test::ConvReference ref = test::make_conv_reference(cc, true);
        test::check_conv_kernels(ks, ref, conv_tol(ks, ref.s));
    }
}

DYAD_KERNEL_TEST("conv2d backward kernels accumulate into the gradient buffers", "[conv]") {
    // From zeroed buffers, then from pre-filled ones: the second result is the first plus the pre-fill
    // (one float add per element, so within an ulp or so of the values), for naive (the reference the
    // parity cases rely on) and the set, in both layouts. Two runs compared: deterministic mode
    // (support/conv_cases.h).
    const ConvCase cc = {"accumulate", 4, 3, 9, 7, 5, 3, 3, 2, 1, 1, 1};
    for (bool channels_last : {false, true}) {
        INFO((channels_last ? "channels_last" : "NCHW"));
        Conv2dShape s = test::shape_of(cc);
        s.channels_last = channels_last;
        const int64_t nx = s.n * s.c * s.h * s.w, nw = s.k * s.c * s.r * s.s, ny = s.n * s.k * s.p * s.q;
        const std::vector<float> x = test::conv_randn(nx, 1), w = test::conv_randn(nw, 2), dy = test::conv_randn(ny, 3);
        const std::vector<float> dx0 = test::conv_randn(nx, 4), dw0 = test::conv_randn(nw, 5);
        const std::vector<float> db0 = test::conv_randn(s.k, 6);
        test::DeterministicScope det;

        struct Grads {
            std::vector<float> dx, dw, db;
        };
        // The backward kernels from dx, dw, db: naive on host vectors, the set on its device.
        auto naive_bwd = [&](Grads g) {
            naive::conv2d_bwd_data<float>(s, g.dx.data(), dy.data(), w.data());
            naive::conv2d_bwd_filter<float>(s, g.dw.data(), g.db.data(), dy.data(), x.data());
            return g;
        };
        const Tensor xs = test::buffer(ks, x), ws = test::buffer(ks, w), dys = test::buffer(ks, dy);
        auto set_bwd = [&](const Grads& g) {
            const Tensor dx = test::buffer(ks, g.dx), dw = test::buffer(ks, g.dw), db = test::buffer(ks, g.db);
            DYAD_KCALL(ks, conv2d_bwd_data, s, test::ptr(dx), test::ptr(dys), test::ptr(ws));
            DYAD_KCALL(ks, conv2d_bwd_filter, s, test::ptr(dw), test::ptr(db), test::ptr(dys), test::ptr(xs));
            return Grads{test::host(dx), test::host(dw), test::host(db)};
        };
        auto plus = [](const std::vector<float>& a, const std::vector<float>& b) {
            std::vector<double> r(a.size());
            for (size_t i = 0; i < a.size(); i++) r[i] = double(a[i]) + double(b[i]);
            return r;
        };
        const Grads zeros = {std::vector<float>(size_t(nx), 0.0f), std::vector<float>(size_t(nw), 0.0f),
                             std::vector<float>(size_t(s.k), 0.0f)};
        const Grads prefilled = {dx0, dw0, db0};
        const std::pair<const char*, Grads> runs[2][2] = {
            {{"naive", naive_bwd(zeros)}, {"naive", naive_bwd(prefilled)}},
            {{ks.name, set_bwd(zeros)}, {ks.name, set_bwd(prefilled)}},
        };
        for (const auto& run : runs) {
            INFO(run[0].first);
            const Grads &fresh = run[0].second, &acc = run[1].second;
            const test::Tolerance t = test::tol::few_ulp(ks);
            test::require_close(plus(fresh.dx, dx0), test::conv_to_double(acc.dx), t);
            test::require_close(plus(fresh.dw, dw0), test::conv_to_double(acc.dw), t);
            test::require_close(plus(fresh.db, db0), test::conv_to_double(acc.db), t);
        }
    }
}

DYAD_KERNEL_TEST("conv2d kernels with no input channels write the bias and its gradient", "[conv]") {
    // The sums over channels are empty: y = bias (0 without one; the fused forward relu of that), dbias
    // += sum of dy; dx and dweight are empty. The frontend refuses such a weight; the kernels still keep
    // the contract. The values by hand, for naive and for the set, in both layouts.
    for (bool channels_last : {false, true}) {
        INFO((channels_last ? "channels_last" : "NCHW"));
        Conv2dShape s;
        s.n = 2, s.c = 0, s.h = 5, s.w = 4, s.k = 3, s.r = 3, s.s = 3, s.p = 3, s.q = 2;
        s.channels_last = channels_last;
        const int64_t ny = s.n * s.k * s.p * s.q;
        const std::vector<float> bias = {0.5f, -1.25f, 2.0f}, dy = test::conv_randn(ny, 7), db0 = {1.0f, 2.0f, 3.0f};
        std::vector<double> want_y(static_cast<size_t>(ny)), want_db(db0.begin(), db0.end());
        for (int64_t i = 0; i < ny; i++) {
            const int64_t k = channels_last ? i % s.k : (i / (s.p * s.q)) % s.k;
            want_y[size_t(i)] = bias[size_t(k)];
            want_db[size_t(k)] += double(dy[size_t(i)]);
        }
        const std::vector<double> zeros(size_t(ny), 0.0);
        const test::Tolerance same = test::tol::same_values(ks), sum12 = test::tol::few_ulp(ks);

        std::vector<float> y = test::nan_filled<float>(ny), y0 = y, db_naive = db0;
        naive::conv2d_fwd<float>(s, y.data(), nullptr, nullptr, bias.data());
        naive::conv2d_fwd<float>(s, y0.data(), nullptr, nullptr, nullptr);
        naive::conv2d_bwd_filter<float>(s, nullptr, db_naive.data(), dy.data(), nullptr);
        test::require_close(want_y, test::conv_to_double(y), same);
        test::require_close(zeros, test::conv_to_double(y0), same);
        test::require_close(want_db, test::conv_to_double(db_naive), sum12);

        const Tensor b = test::buffer(ks, bias), g = test::buffer(ks, dy), db = test::buffer(ks, db0);
        const Tensor ys = test::nan_buffer(ks, ny), y0s = test::nan_buffer(ks, ny);
        const Tensor yr = test::nan_buffer(ks, ny), y0r = test::nan_buffer(ks, ny);
        DYAD_KCALL(ks, conv2d_fwd, s, test::ptr(ys), nullptr, nullptr, test::ptr(b));
        DYAD_KCALL(ks, conv2d_fwd, s, test::ptr(y0s), nullptr, nullptr, nullptr);
        test::conv2d_bias_relu_fwd(ks, s, test::ptr(yr), nullptr, nullptr, test::ptr(b));
        test::conv2d_bias_relu_fwd(ks, s, test::ptr(y0r), nullptr, nullptr, nullptr);
        DYAD_KCALL(ks, conv2d_bwd_filter, s, nullptr, test::ptr(db), test::ptr(g), nullptr);
        test::require_close(want_y, test::conv_to_double(test::host(ys)), same);
        test::require_close(zeros, test::conv_to_double(test::host(y0s)), same);
        test::require_close(test::relu_of(want_y), test::conv_to_double(test::host(yr)), same);
        test::require_close(zeros, test::conv_to_double(test::host(y0r)), same);
        // 12 terms per channel, summed in another order: a few ulp.
        test::require_close(want_db, test::conv_to_double(test::host(db)), sum12);
        test::require_close(db_naive, test::host(db), sum12);
    }
}

DYAD_KERNEL_TEST("conv2d through autograd matches naive", "[conv]") {
    int i = 0;
    for (const ConvCase& cc : test::conv_cases())
        test::check_conv_autograd(ks, cc, false, (i++ % 2) == 1, conv_tol(ks, cc));
}

DYAD_KERNEL_TEST("conv2d_relu through autograd matches naive relu of conv2d", "[conv]") {
    int i = 0;
    for (const ConvCase& cc : test::conv_cases())
        test::check_conv_autograd(ks, cc, true, (i++ % 2) == 0, conv_tol(ks, cc));
}

DYAD_KERNEL_TEST("conv2d_relu without a bias matches naive relu of conv2d", "[conv]") {
    test::check_conv_relu_no_bias(ks, conv_tol(ks, {"relu, no bias", 3, 4, 9, 8, 5, 3, 3, 1, 1, 1, 1}));
}

DYAD_KERNEL_TEST("conv2d in deterministic mode gives the same bits twice", "[conv]") {
    for (const ConvCase& cc : test::conv_deterministic_cases()) test::check_conv_deterministic(ks, cc);
}
