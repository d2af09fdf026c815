// 2-D convolution on the CPU kernel sets: hand-checked values, the omp kernels against naive with 1, 2
// and 3 threads (both the per-image and the threaded-GEMM schedule), float64 gradient checks of conv2d,
// the gradients that are computed only when needed, conv2d against an independent unfold + matmul
// formulation built from other ops, conv2d_relu against relu(conv2d(...)) and its gradient checks, and
// the argument errors. Parity of every kernel set with naive (the shared cases, the accumulate contract,
// no input channels, autograd, deterministic runs): tests/ops/conv.cpp.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "support/compare.h"
#include "support/conv_cases.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/tolerances.h"

using namespace dyad;
using test::AllClose;
using test::conv_cases;
using test::ConvCase;
using test::Layout;
using test::make;
using test::same_bits;
using test::shape_of;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Tolerance of a float32 sum of `len` O(1) products against the naive reference: rtol 1e-5, atol
// 1e-6 * sqrt(len), as for GEMM (docs/testing.md). The comparisons with other formulations below use
// unscaled N(0, 1) operands and scale the atol by the results' magnitude.
double conv_atol(int64_t len) { return 1e-6 * std::sqrt(double(std::max<int64_t>(len, 1))); }
constexpr double kConvRtol = 1e-5;

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("conv2d of a hand-checked 3x3 image and 2x2 filter", "[conv][naive][omp]") {
    // x = [1 2 3; 4 5 6; 7 8 9], w = [1 2; 3 4], bias 1.
    // Stride 1, no padding: y[p][q] = sum of w * the 2x2 window at (p, q) = [37 47; 67 77], plus 1.
    // Stride 2, padding 1: the windows start at -1 and 1: [4 18; 36 77] (only w[1][1] * x[0][0] = 4 in the
    // first, 3 * 2 + 4 * 3 = 18 in the second ...).
    // Backward with dy = ones (stride 1): dx counts each x element once per window covering it, weighted:
    // [1 3 2; 4 10 6; 3 7 4]; dw[r][t] = the sum of the 2x2 block of x at (r, t): [12 16; 24 28]; dbias 4.
    for (CpuKernels k : kKernelSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            Tensor x = make({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, dt).requires_grad_();
            Tensor w = make({1, 2, 3, 4}, {1, 1, 2, 2}, dt).requires_grad_();
            Tensor b = make({1}, {1}, dt).requires_grad_();
            const Tensor y = conv2d(x, w, b);
            REQUIRE(y.shape() == Shape{1, 1, 2, 2});
            REQUIRE(y.dtype() == dt);
            REQUIRE(values(y) == std::vector<double>{38, 48, 68, 78});
            y.backward(Tensor::ones({1, 1, 2, 2}, dt));
            REQUIRE(values(x.grad()) == std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4});
            REQUIRE(values(w.grad()) == std::vector<double>{12, 16, 24, 28});
            REQUIRE(values(b.grad()) == std::vector<double>{4});

            const Tensor y2 = conv2d(x.detach(), w.detach(), Tensor(), 2, 1);
            REQUIRE(y2.shape() == Shape{1, 1, 2, 2});
            REQUIRE(values(y2) == std::vector<double>{4, 18, 36, 77});
        }
    }
}

TEST_CASE("conv2d kernels on a hand-checked case, float and double", "[conv][naive][omp]") {
    // Two channels and two filters, called on the kernels directly. x channel 0 = [1 2; 3 4], channel 1
    // = [0 1; 1 0]; a 1x1 filter set w = [[1, 10], [2, 0]] (filter k, channel c): y[0] = x0 + 10 x1, y[1]
    // = 2 x0; bias [0.5, -1].
    Conv2dShape s;
    s.n = 1, s.c = 2, s.h = 2, s.w = 2, s.k = 2, s.r = 1, s.s = 1, s.p = 2, s.q = 2;
    const std::vector<float> x = {1, 2, 3, 4, 0, 1, 1, 0}, w = {1, 10, 2, 0}, b = {0.5f, -1};
    const std::vector<float> expect = {1.5f, 12.5f, 13.5f, 4.5f, 1, 3, 5, 7};
    std::vector<float> y(8, kNaN);
    naive::conv2d_fwd<float>(s, y.data(), x.data(), w.data(), b.data());
    REQUIRE(y == expect);
    std::fill(y.begin(), y.end(), kNaN);
    omp::conv2d_fwd(s, y.data(), x.data(), w.data(), b.data());
    REQUIRE(y == expect);
    std::vector<double> yd(8);
    naive::conv2d_fwd<double>(s, yd.data(), to_double(x).data(), to_double(w).data(), to_double(b).data());
    REQUIRE(yd == to_double(expect));
}

// ---------------------------------------------------------------------------- thread counts
TEST_CASE("conv2d omp kernels match naive with 1, 2 and 3 threads", "[conv][omp]") {
    // With 2 or 3 threads, batches of 4, 6, 8 and 9 run one image per thread; 1, 3, 5 and 7 run the
    // images in turn with the GEMM threaded (support/conv_cases.h).
    const test::KernelSet omp_set = {test::KernelSet::Kind::omp, "omp", Device::cpu()};
    for (const ConvCase& cc : conv_cases()) {
        const test::ConvReference ref = test::make_conv_reference(cc);
        for (int threads : {1, 2, 3}) {
            NumThreadsGuard nt(threads);
            INFO(test::describe(cc) << ", " << threads << " threads");
            const int m = omp::winograd_tile(ref.s);
            test::check_conv_kernels(omp_set, ref, [&](int64_t len) { return test::tol::conv(omp_set, len, m); });
        }
    }
}

// ---------------------------------------------------------------------------- Winograd
namespace {

const test::KernelSet& omp_kernels() {
    static const test::KernelSet set = {test::KernelSet::Kind::omp, "omp", Device::cpu()};
    return set;
}

// The Winograd cases and the shared cases Winograd applies to.
std::vector<ConvCase> winograd_parity_cases() {
    std::vector<ConvCase> all = test::winograd_cases();
    for (const ConvCase& cc : conv_cases())
        if (omp::winograd_applies(test::shape_of(cc))) all.push_back(cc);
    return all;
}

}  // namespace

TEST_CASE("Winograd F(2x2,3x3) and F(4x4,3x3) match naive in every pass", "[conv][omp][winograd]") {
    const std::vector<ConvCase> cases = winograd_parity_cases();
    REQUIRE(cases.size() >= 12);
    for (const ConvCase& cc : cases) {
        const test::ConvReference ref = test::make_conv_reference(cc);
        for (const auto& [alg, tile] :
             {std::pair{CpuConvAlgorithm::winograd2, 2}, std::pair{CpuConvAlgorithm::winograd4, 4}}) {
            const int m = tile;  // a copy: C++17 lambdas cannot capture a structured binding
            test::CpuConvScope algorithm(alg);
            INFO(test::describe(cc) << ", F(" << m << "x" << m << ",3x3)");
            REQUIRE(omp::winograd_tile(ref.s) == m);
            test::check_conv_kernels(omp_kernels(), ref,
                                     [&](int64_t len) { return test::tol::conv(omp_kernels(), len, m); });
        }
    }
}

TEST_CASE("Winograd gives the same bits with 1, 2 and 3 threads", "[conv][omp][winograd]") {
    // Every sum runs in an order that does not depend on the thread count: the transforms are per tile and
    // channel, the GEMMs split by matrix or by tile of C, and the filter gradient sums its blocks in order.
    for (const ConvCase& cc : {test::winograd_cases()[7], test::winograd_cases()[8]}) {
        const test::ConvReference ref = test::make_conv_reference(cc);
        const Conv2dShape& s = ref.s;
        for (CpuConvAlgorithm alg : {CpuConvAlgorithm::winograd2, CpuConvAlgorithm::winograd4}) {
            test::CpuConvScope algorithm(alg);
            std::vector<std::vector<float>> first;
            for (int threads : {1, 2, 3}) {
                NumThreadsGuard nt(threads);
                INFO(test::describe(cc) << ", " << cpu_conv_algorithm_name(alg) << ", " << threads << " threads");
                std::vector<float> y(size_t(ref.ny)), dx = ref.dx0, dw = ref.dw0, db = ref.db0;
                omp::conv2d_fwd(s, y.data(), ref.x.data(), ref.w_fwd.data(), ref.bias.data());
                omp::conv2d_bwd_data(s, dx.data(), ref.dy_data.data(), ref.w_data.data());
                omp::conv2d_bwd_filter(s, dw.data(), db.data(), ref.dy_filter.data(), ref.x.data());
                const std::vector<std::vector<float>> now = {y, dx, dw, db};
                if (first.empty())
                    first = now;
                else
                    for (size_t i = 0; i < now.size(); i++) REQUIRE(now[i] == first[i]);
            }
        }
    }
}

TEST_CASE("Winograd F(4x4,3x3) stays within its bound on the baseline's and the ResNet's shapes",
          "[conv][omp][winograd]") {
    // The layers of the reference CNN (32 -> 64 on 32x32, 64 -> 128 on 16x16) and of the ResNet-18 (64 to 512
    // channels on 64x64 down to 8x8), one image each: every pass against the float64 naive result, under the
    // tolerance table's row (1e-4; docs/testing.md records the errors measured).
    const std::vector<ConvCase> layers = {
        {"baseline conv2", 1, 32, 32, 32, 64, 3, 3, 1, 1, 1, 1},
        {"baseline conv3", 1, 64, 16, 16, 128, 3, 3, 1, 1, 1, 1},
        {"ResNet 64 @ 64x64", 1, 64, 64, 64, 64, 3, 3, 1, 1, 1, 1},
        {"ResNet 128 @ 32x32", 1, 128, 32, 32, 128, 3, 3, 1, 1, 1, 1},
        {"ResNet 256 @ 16x16", 1, 256, 16, 16, 256, 3, 3, 1, 1, 1, 1},
        {"ResNet 512 @ 8x8", 1, 512, 8, 8, 512, 3, 3, 1, 1, 1, 1},
    };
    test::CpuConvScope algorithm(CpuConvAlgorithm::winograd4);
    for (const ConvCase& cc : layers) {
        INFO(test::describe(cc));
        const test::ConvReference ref = test::make_conv_reference(cc);
        test::check_conv_kernels(omp_kernels(), ref,
                                 [](int64_t len) { return test::tol::conv(omp_kernels(), len, 4); });
    }
}

TEST_CASE("the automatic CPU convolution picks Winograd from 16 channels on", "[conv][omp][winograd]") {
    // automatic gives the bits of winograd4 where the rule picks it and those of im2col elsewhere.
    auto forward = [](const ConvCase& cc, CpuConvAlgorithm alg) {
        test::CpuConvScope algorithm(alg);
        const Conv2dShape s = test::shape_of(cc);
        const std::vector<float> x = test::conv_randn(s.n * s.c * s.h * s.w, 1);
        const std::vector<float> w = test::conv_randn(s.k * s.c * s.r * s.s, 2, 0.1);
        std::vector<float> y(size_t(s.n * s.k * s.p * s.q));
        omp::conv2d_fwd(s, y.data(), x.data(), w.data(), nullptr);
        return y;
    };
    const std::vector<std::pair<ConvCase, bool>> cases = {
        {{"16 -> 16, 8x8", 2, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1}, true},
        {{"3 -> 32 (the first layer)", 2, 3, 8, 8, 32, 3, 3, 1, 1, 1, 1}, false},
        {{"32 -> 8", 2, 32, 8, 8, 8, 3, 3, 1, 1, 1, 1}, false},
        {{"16 -> 16, 3x3 output", 2, 16, 3, 3, 16, 3, 3, 1, 1, 1, 1}, false},
        {{"16 -> 16, stride 2", 2, 16, 9, 9, 16, 3, 3, 2, 2, 1, 1}, false},
        {{"16 -> 16, 5x5", 2, 16, 9, 9, 16, 5, 5, 1, 1, 2, 2}, false},
    };
    for (const auto& [cc, winograd] : cases) {
        INFO(test::describe(cc));
        const std::vector<float> automatic = forward(cc, CpuConvAlgorithm::automatic);
        REQUIRE(automatic == forward(cc, winograd ? CpuConvAlgorithm::winograd4 : CpuConvAlgorithm::im2col));
        if (omp::winograd_applies(test::shape_of(cc)))  // the two algorithms differ in rounding here
            REQUIRE(forward(cc, CpuConvAlgorithm::winograd4) != forward(cc, CpuConvAlgorithm::im2col));
    }
}

TEST_CASE("CPU convolution algorithms by name", "[conv][omp][winograd]") {
    for (CpuConvAlgorithm a : {CpuConvAlgorithm::automatic, CpuConvAlgorithm::im2col, CpuConvAlgorithm::winograd2,
                               CpuConvAlgorithm::winograd4}) {
        REQUIRE(parse_cpu_conv_algorithm(cpu_conv_algorithm_name(a)) == a);
        test::CpuConvScope scope(a);
        REQUIRE(cpu_conv_algorithm() == a);
    }
    REQUIRE_THROWS_WITH(parse_cpu_conv_algorithm("fft"),
                        Catch::Contains("'fft'") && Catch::Contains("im2col") && Catch::Contains("winograd4"));
}

// ---------------------------------------------------------------------------- gradients
namespace {

struct GradCase {
    const char* name;
    Shape x, w;
    Size2 stride, padding;
    bool bias;
};

}  // namespace

TEST_CASE("conv2d gradients (float64)", "[conv][gradcheck]") {
    const std::vector<GradCase> cases = {
        {"3x2 kernel", {2, 2, 5, 4}, {3, 2, 3, 2}, 1, 0, true},
        {"stride 2, padding 1", {1, 3, 6, 5}, {2, 3, 3, 3}, 2, 1, true},
        {"stride (1, 2), padding (2, 1), no bias", {2, 2, 4, 5}, {2, 2, 2, 3}, {1, 2}, {2, 1}, false},
        {"1x1", {2, 3, 3, 4}, {4, 3, 1, 1}, 1, 0, true},
    };
    for (const GradCase& gc : cases) {
        INFO(gc.name << ": x " << shape_str(gc.x) << " w " << shape_str(gc.w));
        Tensor x = test::random_tensor(gc.x, 41, Layout::contiguous, DType::float64).requires_grad_();
        Tensor w = test::random_tensor(gc.w, 42, Layout::contiguous, DType::float64).requires_grad_();
        const Size2 st = gc.stride, pad = gc.padding;
        GradcheckResult r;
        if (gc.bias) {
            Tensor b = test::random_tensor({gc.w[0]}, 43, Layout::contiguous, DType::float64).requires_grad_();
            r = gradcheck([st, pad](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], st, pad); },
                          {x, w, b});
        } else {
            r = gradcheck([st, pad](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), st, pad); },
                          {x, w});
        }
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

TEST_CASE("conv2d computes only the gradients that are needed", "[conv][naive][omp]") {
    // A first layer: x does not require grad and gets none; the weight and bias gradients are the same as
    // when x requires grad. A frozen weight with a trainable bias: dbias = dy summed over (N, P, Q).
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor x = test::random_tensor({3, 2, 7, 6}, 51);
        const Tensor dy = test::random_tensor({3, 4, 4, 3}, 52);
        Tensor w1 = test::random_tensor({4, 2, 3, 3}, 53).requires_grad_();
        Tensor b1 = test::random_tensor({4}, 54).requires_grad_();
        conv2d(x, w1, b1, 2, 1).backward(dy);
        REQUIRE_FALSE(x.grad().defined());

        Tensor x2 = x.detach().requires_grad_();
        Tensor w2 = w1.detach().clone().requires_grad_();
        Tensor b2 = b1.detach().clone().requires_grad_();
        conv2d(x2, w2, b2, 2, 1).backward(dy);
        REQUIRE(x2.grad().defined());
        REQUIRE(values(w1.grad()) == values(w2.grad()));
        REQUIRE(values(b1.grad()) == values(b2.grad()));

        const Tensor w3 = w1.detach();
        Tensor b3 = b1.detach().clone().requires_grad_();
        conv2d(x, w3, b3, 2, 1).backward(dy);
        REQUIRE_THAT(values(b3.grad()), AllClose(values(sum(dy, {0, 2, 3}))).rtol(1e-6).atol(1e-6));
    }
}

// ---------------------------------------------------------------------------- independent formulation
namespace {

// conv2d written with other ops: for every filter tap (r, t), the strided slice of the padded input that
// the tap meets, times the tap's (K, C) weight matrix, summed over the taps; plus the bias. Padding is a
// copy into a zero tensor, outside the graph: with padding 0 the whole expression is differentiable.
Tensor conv_by_taps(const Tensor& x, const Tensor& w, const Tensor& b, Size2 stride, Size2 pad) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
    const int64_t k = w.size(0), r = w.size(2), s = w.size(3);
    const int64_t p = (h + 2 * pad.h - r) / stride.h + 1, q = (wd + 2 * pad.w - s) / stride.w + 1;
    Tensor xp = x;
    if (pad.h || pad.w) {
        NoGradGuard ng;
        xp = Tensor::zeros({n, c, h + 2 * pad.h, wd + 2 * pad.w}, x.dtype());
        xp.slice(2, pad.h, pad.h + h).slice(3, pad.w, pad.w + wd).copy_(x);
    }
    Tensor y;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < s; j++) {
            const Tensor patch =
                xp.slice(2, i, i + stride.h * (p - 1) + 1, stride.h).slice(3, j, j + stride.w * (q - 1) + 1, stride.w);
            const Tensor tap = w.select(3, j).select(2, i);                 // (K, C)
            const Tensor term = matmul(tap, patch.reshape({n, c, p * q}));  // (N, K, P*Q)
            y = y.defined() ? y + term : term;
        }
    y = y.reshape({n, k, p, q});
    return b.defined() ? y + b.reshape({k, 1, 1}) : y;
}

}  // namespace

TEST_CASE("conv2d equals a sum of per-tap matmuls", "[conv][naive][omp]") {
    // Forward with padding on both kernel sets, in float32, with a transposed (non-contiguous) x.
    const std::vector<GradCase> cases = {
        {"3x3 pad 1", {3, 4, 9, 8}, {5, 4, 3, 3}, 1, 1, true},
        {"5x3 stride (2, 1) pad (2, 0)", {2, 3, 11, 7}, {3, 3, 5, 3}, {2, 1}, {2, 0}, true},
        {"2x2 stride 2, no bias", {5, 2, 8, 9}, {7, 2, 2, 2}, 2, 0, false},
    };
    for (const GradCase& gc : cases) {
        const Tensor x = test::random_tensor(gc.x, 61, Layout::transposed);
        const Tensor w = test::random_tensor(gc.w, 62);
        const Tensor b = gc.bias ? test::random_tensor({gc.w[0]}, 63) : Tensor();
        const int64_t len = gc.w[1] * gc.w[2] * gc.w[3];
        for (CpuKernels k : kKernelSets) {
            CpuKernelsGuard guard(k);
            INFO(gc.name << " " << cpu_kernels_name(k));
            const Tensor expect = conv_by_taps(x, w, b, gc.stride, gc.padding);
            const Tensor y = conv2d(x, w, b, gc.stride, gc.padding);
            REQUIRE(y.shape() == expect.shape());
            // Unscaled N(0, 1) operands: y is of order sqrt(len), hence atol scaled by it.
            REQUIRE_THAT(values(y), AllClose(values(expect)).rtol(kConvRtol).atol(conv_atol(len) * std::sqrt(len)));
        }
    }
}

TEST_CASE("conv2d gradients equal those of the per-tap matmuls", "[conv][naive][omp]") {
    // No padding, so the composite is differentiable end to end: dx, dw, db through slice, select,
    // reshape, matmul and add, against conv2d's own backward kernels.
    struct Case {
        Shape x, w;
        Size2 stride;
    };
    const std::vector<Case> cases = {{{4, 3, 9, 8}, {5, 3, 3, 3}, 1}, {{3, 2, 11, 9}, {7, 2, 3, 2}, {2, 3}}};
    for (const Case& cc : cases) {
        for (CpuKernels k : kKernelSets) {
            CpuKernelsGuard guard(k);
            INFO("x " << shape_str(cc.x) << " w " << shape_str(cc.w) << " " << cpu_kernels_name(k));
            std::vector<double> grads[2][3];
            Shape yshape;
            for (int way = 0; way < 2; way++) {
                Tensor x = test::random_tensor(cc.x, 71).requires_grad_();
                Tensor w = test::random_tensor(cc.w, 72).requires_grad_();
                Tensor b = test::random_tensor({cc.w[0]}, 73).requires_grad_();
                const Tensor y = way == 0 ? conv_by_taps(x, w, b, cc.stride, 0) : conv2d(x, w, b, cc.stride, 0);
                y.backward(test::random_tensor(y.shape(), 74));
                grads[way][0] = values(x.grad()), grads[way][1] = values(w.grad()), grads[way][2] = values(b.grad());
                yshape = y.shape();
            }
            // Unscaled N(0, 1) data: dx sums up to K*R*S products, dw and db N*P*Q of them, each term O(1).
            const int64_t len_dx = cc.w[0] * cc.w[2] * cc.w[3], len_dw = yshape[0] * yshape[2] * yshape[3];
            const double tol_dx = conv_atol(len_dx) * std::sqrt(len_dx), tol_dw = conv_atol(len_dw) * std::sqrt(len_dw);
            REQUIRE_THAT(grads[1][0], AllClose(grads[0][0]).rtol(kConvRtol).atol(tol_dx));
            REQUIRE_THAT(grads[1][1], AllClose(grads[0][1]).rtol(kConvRtol).atol(tol_dw));
            REQUIRE_THAT(grads[1][2], AllClose(grads[0][2]).rtol(kConvRtol).atol(tol_dw));
        }
    }
}

TEST_CASE("a 1x1 conv2d is a matmul over the channels", "[conv][naive][omp]") {
    const Tensor x = test::random_tensor({3, 6, 5, 7}, 81);
    const Tensor w = test::random_tensor({4, 6, 1, 1}, 82);
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        const Tensor expect = matmul(w.reshape({4, 6}), x.reshape({3, 6, 35})).reshape({3, 4, 5, 7});
        REQUIRE_THAT(values(conv2d(x, w)), AllClose(values(expect)).rtol(kConvRtol).atol(1e-5));
    }
}

// ---------------------------------------------------------------------------- conv2d_relu
TEST_CASE("conv2d_relu equals relu of conv2d, values and gradients", "[conv][naive][omp]") {
    // On the CPU conv2d_relu runs conv2d's kernels and then relu's, and its backward masks dy by the
    // output's sign before conv2d's backward: the same operations as the composition, so the same bits.
    // About half the outputs are negative (zero-mean data), so both sides of the mask are exercised.
    const std::vector<GradCase> cases = {
        {"3x3 pad 1", {3, 4, 9, 8}, {5, 4, 3, 3}, 1, 1, true},
        {"5x3 stride (2, 1) pad (2, 0)", {2, 3, 11, 7}, {3, 3, 5, 3}, {2, 1}, {2, 0}, true},
        {"2x2 stride 2, no bias", {5, 2, 8, 9}, {7, 2, 2, 2}, 2, 0, false},
        {"1x1", {2, 6, 5, 7}, {4, 6, 1, 1}, 1, 0, true},
    };
    for (const GradCase& gc : cases) {
        for (CpuKernels k : kKernelSets) {
            CpuKernelsGuard guard(k);
            INFO(gc.name << " " << cpu_kernels_name(k));
            std::vector<float> out[2], grads[2][3];
            for (int way = 0; way < 2; way++) {
                Tensor x = test::random_tensor(gc.x, 91, Layout::transposed).requires_grad_();
                Tensor w = test::random_tensor(gc.w, 92).requires_grad_();
                Tensor b = gc.bias ? test::random_tensor({gc.w[0]}, 93).requires_grad_() : Tensor();
                const Tensor y = way == 0 ? relu(conv2d(x, w, b, gc.stride, gc.padding))
                                          : conv2d_relu(x, w, b, gc.stride, gc.padding);
                out[way] = y.detach().contiguous().to_vector<float>();
                sum(mul(y, test::random_tensor(y.shape(), 94))).backward();
                grads[way][0] = x.grad().to_vector<float>();
                grads[way][1] = w.grad().to_vector<float>();
                if (gc.bias) grads[way][2] = b.grad().to_vector<float>();
            }
            size_t zeros = 0;
            for (float v : out[1]) zeros += v == 0.0f;
            REQUIRE(zeros > 0);
            REQUIRE(zeros < out[1].size());
            REQUIRE(same_bits(out[1], out[0]));
            for (int i = 0; i < 3; i++) REQUIRE(same_bits(grads[1][i], grads[0][i]));
        }
    }
}

TEST_CASE("conv2d_relu gradients (float64)", "[conv][gradcheck]") {
    const std::vector<GradCase> cases = {
        {"3x2 kernel", {2, 2, 5, 4}, {3, 2, 3, 2}, 1, 0, true},
        {"stride 2, padding 1", {1, 3, 6, 5}, {2, 3, 3, 3}, 2, 1, true},
        {"stride (1, 2), padding (2, 1), no bias", {2, 2, 4, 5}, {2, 2, 2, 3}, {1, 2}, {2, 1}, false},
    };
    for (const GradCase& gc : cases) {
        INFO(gc.name << ": x " << shape_str(gc.x) << " w " << shape_str(gc.w));
        Tensor x = test::random_tensor(gc.x, 101, Layout::contiguous, DType::float64).requires_grad_();
        Tensor w = test::random_tensor(gc.w, 102, Layout::contiguous, DType::float64).requires_grad_();
        const Size2 st = gc.stride, pad = gc.padding;
        GradcheckResult r;
        if (gc.bias) {
            Tensor b = test::random_tensor({gc.w[0]}, 103, Layout::contiguous, DType::float64).requires_grad_();
            r = gradcheck(
                [st, pad](const std::vector<Tensor>& in) { return conv2d_relu(in[0], in[1], in[2], st, pad); },
                {x, w, b});
        } else {
            r = gradcheck(
                [st, pad](const std::vector<Tensor>& in) { return conv2d_relu(in[0], in[1], Tensor(), st, pad); },
                {x, w});
        }
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

TEST_CASE("conv2d_relu checks its arguments as conv2d does", "[conv][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({2, 3, 8, 8}), w = Tensor::zeros({4, 3, 3, 3}), b = Tensor::zeros({4});
    REQUIRE_THROWS_WITH(conv2d_relu(Tensor::zeros({3, 8, 8}), w),
                        Contains("conv2d_relu: x must be 4-D") && Contains("(3, 8, 8)"));
    REQUIRE_THROWS_WITH(conv2d_relu(x, Tensor::zeros({4, 5, 3, 3})),
                        Contains("conv2d_relu") && Contains("channel mismatch"));
    REQUIRE_THROWS_WITH(conv2d_relu(x, w, Tensor::zeros({5})),
                        Contains("conv2d_relu") && Contains("bias must have shape (4)"));
    REQUIRE_THROWS_WITH(conv2d_relu(x, w, b, 0), Contains("conv2d_relu") && Contains("stride must be >= 1"));
    REQUIRE_THROWS_WITH(conv2d_relu(x, w, b, 1, {0, -1}), Contains("conv2d_relu") && Contains("padding must be >= 0"));
    REQUIRE_THROWS_WITH(conv2d_relu(Tensor::zeros({2, 3, 2, 8}), w),
                        Contains("conv2d_relu") && Contains("larger than the padded input"));
    REQUIRE_THROWS_WITH(conv2d_relu(Tensor::zeros({0, 3, 8, 8}), w),
                        Contains("conv2d_relu") && Contains("empty batch"));
    REQUIRE_THROWS_WITH(conv2d_relu(x, Tensor::zeros({4, 3, 3, 3}, DType::float64)),
                        Contains("conv2d_relu") && Contains("dtypes differ"));
    REQUIRE_THROWS_WITH(conv2d_relu(Tensor(), w), Contains("conv2d_relu") && Contains("undefined"));
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("conv2d argument errors name the op and the shapes", "[conv][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({2, 3, 8, 8}), w = Tensor::zeros({4, 3, 3, 3}), b = Tensor::zeros({4});

    try {
        (void)conv2d(Tensor::zeros({3, 8, 8}), w);
        FAIL("no exception");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        REQUIRE(std::regex_search(msg, std::regex(R"(^conv\.cpp:[0-9]+: conv2d: x must be 4-D .*\(3, 8, 8\))")));
    }
    REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3})),
                        Contains("conv2d") && Contains("weight must be 4-D") && Contains("(4, 3, 3)"));
    REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 5, 3, 3})), Contains("conv2d") && Contains("channel mismatch") &&
                                                                    Contains("(2, 3, 8, 8)") &&
                                                                    Contains("(4, 5, 3, 3)"));
    REQUIRE_THROWS_WITH(conv2d(x, w, Tensor::zeros({5})),
                        Contains("conv2d") && Contains("bias must have shape (4)") && Contains("(5)"));
    REQUIRE_THROWS_WITH(conv2d(x, w, Tensor::zeros({1, 4})),
                        Contains("conv2d") && Contains("bias") && Contains("(1, 4)"));
    REQUIRE_THROWS_WITH(conv2d(x, w, b, 0), Contains("conv2d") && Contains("stride must be >= 1") &&
                                                Contains("(0, 0)") && Contains("(2, 3, 8, 8)"));
    REQUIRE_THROWS_WITH(conv2d(x, w, b, {1, -2}), Contains("conv2d") && Contains("stride") && Contains("(1, -2)"));
    REQUIRE_THROWS_WITH(conv2d(x, w, b, 1, {0, -1}),
                        Contains("conv2d") && Contains("padding must be >= 0") && Contains("(0, -1)"));
    REQUIRE_THROWS_WITH(
        conv2d(Tensor::zeros({2, 3, 2, 8}), w),
        Contains("conv2d") && Contains("kernel 3x3 is larger than the padded input 2x8") && Contains("(2, 3, 2, 8)"));
    REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({2, 3, 8, 1}), w, b, 1, {1, 0}),
                        Contains("conv2d") && Contains("larger than the padded input 10x1"));
    REQUIRE_NOTHROW(conv2d(Tensor::zeros({2, 3, 1, 1}), w, b, 1, 1));  // fits in the padding: 1x1 output
    REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({0, 3, 8, 8}), w),
                        Contains("conv2d") && Contains("empty batch") && Contains("(0, 3, 8, 8)"));
    REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 0, 3})),
                        Contains("conv2d") && Contains("empty dim") && Contains("(4, 3, 0, 3)"));
    REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 3}, DType::float64)),
                        Contains("conv2d") && Contains("dtypes differ") && Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_WITH(conv2d(x, w, Tensor::zeros({4}, DType::float64)),
                        Contains("conv2d") && Contains("dtypes differ") && Contains("(4)"));
    REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({2, 3, 8, 8}, DType::int32), Tensor::zeros({4, 3, 3, 3}, DType::int32)),
                        Contains("conv2d") && Contains("int32") && Contains("(2, 3, 8, 8)"));
    REQUIRE_THROWS_WITH(conv2d(Tensor(), w), Contains("conv2d") && Contains("x") && Contains("undefined"));
    REQUIRE_THROWS_WITH(conv2d(x, Tensor()), Contains("conv2d") && Contains("weight") && Contains("undefined"));
}

TEST_CASE("conv2d with tensors on different devices is an error", "[conv][errors]") {
    if (!cuda_available()) return;  // no CUDA tensor can be created without a GPU (see test_errors.cpp)
    const Tensor x = Tensor::zeros({1, 1, 3, 3}), w = Tensor::zeros({1, 1, 2, 2}, DType::float32, Device::cuda());
    REQUIRE_THROWS_WITH(conv2d(x, w),
                        Catch::Contains("conv2d") && Catch::Contains("different devices") && Catch::Contains("cuda:0"));
}
