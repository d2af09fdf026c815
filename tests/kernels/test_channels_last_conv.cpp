// channels_last convolution: the naive reference on NHWC operands (KRSC weights) gives the same bits as on
// the same logical tensors in NCHW, for float and double, in every pass (the reference walks the same
// loops in both layouts, only the offsets differ, so its sums are taken in the same order); and the omp
// kernels on NHWC operands against that reference with 1, 2 and 3 threads (per-image and threaded-GEMM
// schedules). The NHWC parity of every kernel set on the shared cases: tests/ops/conv.cpp.
#include "support/catch.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "support/conv_cases.h"
#include "support/kernel_sets.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::ConvCase;

namespace {

// (d0, d1, d2, d3) -> (d0, d2, d3, d1): NCHW to NHWC, and KCRS to KRSC.
template <typename T>
std::vector<T> to_channels_last(const std::vector<T>& v, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    REQUIRE(int64_t(v.size()) == d0 * d1 * d2 * d3);
    std::vector<T> out(v.size());
    for (int64_t a = 0; a < d0; a++)
        for (int64_t b = 0; b < d1; b++)
            for (int64_t c = 0; c < d2; c++)
                for (int64_t d = 0; d < d3; d++)
                    out[size_t(((a * d2 + c) * d3 + d) * d1 + b)] = v[size_t(((a * d1 + b) * d2 + c) * d3 + d)];
    return out;
}

// The inverse: (d0, d2, d3, d1) -> (d0, d1, d2, d3), with the dims named as in NCHW.
template <typename T>
std::vector<T> to_channels_first(const std::vector<T>& v, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    REQUIRE(int64_t(v.size()) == d0 * d1 * d2 * d3);
    std::vector<T> out(v.size());
    for (int64_t a = 0; a < d0; a++)
        for (int64_t b = 0; b < d1; b++)
            for (int64_t c = 0; c < d2; c++)
                for (int64_t d = 0; d < d3; d++)
                    out[size_t(((a * d1 + b) * d2 + c) * d3 + d)] = v[size_t(((a * d2 + c) * d3 + d) * d1 + b)];
    return out;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <typename T>
std::vector<T> randn(int64_t n, uint64_t seed) {
    const std::vector<float> f = test::conv_randn(n, seed);
    return std::vector<T>(f.begin(), f.end());
}

// Odd sizes, unit and stride-2 (and mixed) strides, padding on either axis, 1x1, 3x3 and non-square
// kernels, a kernel reaching past the input into the padding, a single channel.
const std::vector<ConvCase>& layout_cases() {
    static const std::vector<ConvCase> c = {
        {"3x3 pad 1", 3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1},
        {"3x3 stride 2 pad 1", 3, 5, 9, 7, 4, 3, 3, 2, 2, 1, 1},
        {"5x3 stride (2, 1) pad (2, 1)", 2, 3, 11, 13, 7, 5, 3, 2, 1, 2, 1},
        {"3x5 stride (1, 2) pad (2, 0)", 2, 3, 7, 9, 5, 3, 5, 1, 2, 2, 0},
        {"1x1", 2, 5, 7, 5, 3, 1, 1},
        {"1x1 stride 2", 3, 3, 9, 7, 5, 1, 1, 2, 2},
        {"2x4 stride 2 pad 2", 2, 3, 8, 9, 5, 2, 4, 2, 2, 2, 2},
        {"kernel larger than the input, inside the padding", 2, 2, 3, 3, 3, 4, 4, 1, 1, 1, 1},
        {"C = 1, K = 1", 1, 1, 7, 7, 1, 3, 3},
    };
    return c;
}

// Every pass of naive<T> on one case in both layouts: the NHWC results, brought back to NCHW, are the
// NCHW results bit for bit. Forward into NaN-filled y (with and without bias); backward into pre-filled
// gradients (backward filter with and without dbias).
template <typename T>
void check_layouts(const ConvCase& cc) {
    const Conv2dShape s = test::shape_of(cc);
    Conv2dShape cl = s;
    cl.channels_last = true;
    const int64_t nx = s.n * s.c * s.h * s.w, nw = s.k * s.c * s.r * s.s, ny = s.n * s.k * s.p * s.q;
    // NCHW (KCRS) operands and their NHWC (KRSC) copies.
    const std::vector<T> x = randn<T>(nx, 1), w = randn<T>(nw, 2), b = randn<T>(s.k, 3), dy = randn<T>(ny, 4);
    const std::vector<T> dx0 = randn<T>(nx, 5), dw0 = randn<T>(nw, 6), db0 = randn<T>(s.k, 7);
    const std::vector<T> x_cl = to_channels_last(x, s.n, s.c, s.h, s.w), w_cl = to_channels_last(w, s.k, s.c, s.r, s.s);
    const std::vector<T> dy_cl = to_channels_last(dy, s.n, s.k, s.p, s.q);
    // The helpers undo each other.
    REQUIRE(same_bits(to_channels_first(x_cl, s.n, s.c, s.h, s.w), x));
    const T nan = std::numeric_limits<T>::quiet_NaN();

    for (bool with_bias : {true, false}) {
        INFO((with_bias ? "with bias" : "without bias"));
        const T* bias = with_bias ? b.data() : nullptr;
        std::vector<T> y(size_t(ny), nan), y_cl(size_t(ny), nan);
        naive::conv2d_fwd<T>(s, y.data(), x.data(), w.data(), bias);
        naive::conv2d_fwd<T>(cl, y_cl.data(), x_cl.data(), w_cl.data(), bias);
        CHECK(test::count_nan(y_cl) == 0);
        CHECK(same_bits(to_channels_first(y_cl, s.n, s.k, s.p, s.q), y));

        std::vector<T> dw = dw0, db = db0, dw_cl = to_channels_last(dw0, s.k, s.c, s.r, s.s), db_cl = db0;
        naive::conv2d_bwd_filter<T>(s, dw.data(), with_bias ? db.data() : nullptr, dy.data(), x.data());
        naive::conv2d_bwd_filter<T>(cl, dw_cl.data(), with_bias ? db_cl.data() : nullptr, dy_cl.data(), x_cl.data());
        CHECK(same_bits(to_channels_first(dw_cl, s.k, s.c, s.r, s.s), dw));
        CHECK(same_bits(db_cl, db));
        if (!with_bias) CHECK(same_bits(db_cl, db0));
    }
    std::vector<T> dx = dx0, dx_cl = to_channels_last(dx0, s.n, s.c, s.h, s.w);
    naive::conv2d_bwd_data<T>(s, dx.data(), dy.data(), w.data());
    naive::conv2d_bwd_data<T>(cl, dx_cl.data(), dy_cl.data(), w_cl.data());
    CHECK(same_bits(to_channels_first(dx_cl, s.n, s.c, s.h, s.w), dx));
    CHECK_FALSE(same_bits(dx, dx0));  // the pass did add something
}

}  // namespace

TEST_CASE("naive conv2d on NHWC operands equals NCHW bit for bit, float64", "[conv][naive][channels_last]") {
    for (const ConvCase& cc : layout_cases()) {
        INFO(test::describe(cc));
        check_layouts<double>(cc);
    }
}

TEST_CASE("naive conv2d on NHWC operands equals NCHW bit for bit, float32", "[conv][naive][channels_last]") {
    for (const ConvCase& cc : layout_cases()) {
        INFO(test::describe(cc));
        check_layouts<float>(cc);
    }
}

TEST_CASE("omp channels_last conv2d kernels match naive with 1, 2 and 3 threads", "[conv][omp][channels_last]") {
    // With 2 or 3 threads, batches of 4, 6, 8 and 9 run one image per thread; 1, 3, 5 and 7 run the
    // images in turn with the GEMM threaded. Never Winograd: the im2col tolerance, whatever the setting.
    const test::KernelSet omp_set = {test::KernelSet::Kind::omp, "omp", Device::cpu()};
    for (const ConvCase& cc : test::conv_cases()) {
        const test::ConvReference ref = test::make_conv_reference(cc, true);
        REQUIRE(omp::winograd_tile(ref.s) == 0);
        for (int threads : {1, 2, 3}) {
            NumThreadsGuard nt(threads);
            INFO(test::describe(cc) << ", channels_last, " << threads << " threads");
            test::check_conv_kernels(omp_set, ref, [&](int64_t len) { return test::tol::conv(omp_set, len, 0); });
        }
    }
    // Forcing Winograd leaves a channels_last shape on im2col.
    test::CpuConvScope wino(CpuConvAlgorithm::winograd4);
    const ConvCase cc = {"3x3 pad 1, 16 channels", 2, 16, 9, 9, 16, 3, 3, 1, 1, 1, 1};
    Conv2dShape s = test::shape_of(cc);
    REQUIRE(omp::winograd_tile(s) == 4);
    s.channels_last = true;
    REQUIRE(omp::winograd_tile(s) == 0);
    test::check_conv_kernels(omp_set, test::make_conv_reference(cc, true),
                             [&](int64_t len) { return test::tol::conv(omp_set, len, 0); });
}
