// channels_last convolution: the naive reference on NHWC operands (KRSC weights) gives the same bits as on
// the same logical tensors in NCHW, for float and double, in every pass (the reference walks the same
// loops in both layouts, only the offsets differ, so its sums are taken in the same order); and the omp
// kernels on NHWC operands against that reference with 1, 2 and 3 threads (per-image and threaded-GEMM
// schedules); and, where omp picks Winograd (automatically or forced), omp on NHWC operands against omp on
// the same tensors in NCHW, bit for bit (the NHWC pass runs the NCHW Winograd code on transposed copies).
// The NHWC parity of every kernel set on the shared cases: tests/ops/conv.cpp.
#include "support/catch.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "support/conv_cases.h"
#include "support/kernel_sets.h"
#include "support/layout.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::ConvCase;

namespace {

// (d0, d1, d2, d3) -> (d0, d2, d3, d1): NCHW to NHWC, and KCRS to KRSC; and back.
template <typename T>
std::vector<T> to_channels_last(const std::vector<T>& v, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    REQUIRE(int64_t(v.size()) == d0 * d1 * d2 * d3);
    return test::to_nhwc(v, d0, d1, d2 * d3);
}
template <typename T>
std::vector<T> to_channels_first(const std::vector<T>& v, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    REQUIRE(int64_t(v.size()) == d0 * d1 * d2 * d3);
    return test::to_nchw(v, d0, d1, d2 * d3);
}
using test::same_bits;

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
    // images in turn with the GEMM threaded. The tolerance row of the algorithm omp picks for the shape:
    // im2col, or Winograd on the 3x3 stride-1 cases of 16 or more channels.
    const test::KernelSet omp_set = {test::KernelSet::Kind::omp, "omp", Device::cpu()};
    for (const ConvCase& cc : test::conv_cases()) {
        const test::ConvReference ref = test::make_conv_reference(cc, true);
        const int m = omp::winograd_tile(ref.s);
        for (int threads : {1, 2, 3}) {
            NumThreadsGuard nt(threads);
            INFO(test::describe(cc) << ", channels_last, " << threads << " threads");
            test::check_conv_kernels(omp_set, ref, [&](int64_t len) { return test::tol::conv(omp_set, len, m); });
        }
    }
}

namespace {

// Every omp pass on one Winograd case in both layouts, at 1 and 2 threads: the NHWC results, brought back
// to NCHW, are the NCHW results bit for bit. Forward into NaN-filled y with and without bias; backward into
// pre-filled gradients (backward filter with and without dbias), so the accumulation is checked too.
void check_winograd_layouts(const ConvCase& cc, int m) {
    const Conv2dShape s = test::shape_of(cc);
    Conv2dShape cl = s;
    cl.channels_last = true;
    REQUIRE(omp::winograd_tile(s) == m);
    REQUIRE(omp::winograd_tile(cl) == m);
    const int64_t nx = s.n * s.c * s.h * s.w, nw = s.k * s.c * s.r * s.s, ny = s.n * s.k * s.p * s.q;
    const std::vector<float> x = randn<float>(nx, 1), w = randn<float>(nw, 2), b = randn<float>(s.k, 3);
    const std::vector<float> dy = randn<float>(ny, 4), dx0 = randn<float>(nx, 5), dw0 = randn<float>(nw, 6);
    const std::vector<float> db0 = randn<float>(s.k, 7);
    const std::vector<float> x_cl = to_channels_last(x, s.n, s.c, s.h, s.w);
    const std::vector<float> w_cl = to_channels_last(w, s.k, s.c, s.r, s.s);
    const std::vector<float> dy_cl = to_channels_last(dy, s.n, s.k, s.p, s.q);
    const float nan = std::numeric_limits<float>::quiet_NaN();

    for (int threads : {1, 2}) {
        NumThreadsGuard nt(threads);
        for (bool with_bias : {true, false}) {
            INFO(threads << " threads, " << (with_bias ? "with bias" : "without bias"));
            const float* bias = with_bias ? b.data() : nullptr;
            std::vector<float> y(size_t(ny), nan), y_cl(size_t(ny), nan);
            omp::conv2d_fwd(s, y.data(), x.data(), w.data(), bias);
            omp::conv2d_fwd(cl, y_cl.data(), x_cl.data(), w_cl.data(), bias);
            CHECK(test::count_nan(y) == 0);
            CHECK(same_bits(to_channels_first(y_cl, s.n, s.k, s.p, s.q), y));

            std::vector<float> dw = dw0, db = db0, dw_cl = to_channels_last(dw0, s.k, s.c, s.r, s.s), db_cl = db0;
            omp::conv2d_bwd_filter(s, dw.data(), with_bias ? db.data() : nullptr, dy.data(), x.data());
            omp::conv2d_bwd_filter(cl, dw_cl.data(), with_bias ? db_cl.data() : nullptr, dy_cl.data(), x_cl.data());
            CHECK_FALSE(same_bits(dw, dw0));  // the pass did add something
            CHECK(same_bits(to_channels_first(dw_cl, s.k, s.c, s.r, s.s), dw));
            CHECK(same_bits(db_cl, db));
            if (!with_bias) CHECK(same_bits(db_cl, db0));
        }
        INFO(threads << " threads");
        std::vector<float> dx = dx0, dx_cl = to_channels_last(dx0, s.n, s.c, s.h, s.w);
        omp::conv2d_bwd_data(s, dx.data(), dy.data(), w.data());
        omp::conv2d_bwd_data(cl, dx_cl.data(), dy_cl.data(), w_cl.data());
        CHECK_FALSE(same_bits(dx, dx0));
        CHECK(same_bits(to_channels_first(dx_cl, s.n, s.c, s.h, s.w), dx));
    }
}

}  // namespace

TEST_CASE("omp channels_last Winograd conv2d equals NCHW bit for bit", "[conv][omp][channels_last]") {
    SECTION("automatic: 3x3 stride 1, 16 or more channels, 4x4 or more outputs") {
        // Padding 0, 1, 2 and mixed; channel counts off the 8-lane and 16-channel task boundaries; 34
        // output columns give whole rows of 8 F(4x4) tiles (the row gathers and scatters) and a ragged one.
        const std::vector<ConvCase> cases = {
            {"pad 1, 9x11, C = K = 16", 2, 16, 9, 11, 16, 3, 3, 1, 1, 1, 1},
            {"pad 0, 8x6, C = 17, K = 20", 3, 17, 8, 6, 20, 3, 3, 1, 1, 0, 0},
            {"pad 2, 5x7, C = 24, K = 16", 1, 24, 5, 7, 16, 3, 3, 1, 1, 2, 2},
            {"pad (0, 2), 7x5, C = 16, K = 19", 2, 16, 7, 5, 19, 3, 3, 1, 1, 0, 2},
            {"pad 1, 34x34, C = 16, K = 24", 2, 16, 34, 34, 24, 3, 3, 1, 1, 1, 1},
        };
        test::CpuConvScope scope(CpuConvAlgorithm::automatic);
        for (const ConvCase& cc : cases) {
            INFO(test::describe(cc));
            check_winograd_layouts(cc, 4);
        }
        // Below the automatic thresholds both layouts stay on im2col.
        const Conv2dShape few_channels = test::shape_of({"C = 8", 2, 8, 9, 9, 16, 3, 3, 1, 1, 1, 1});
        Conv2dShape few_channels_cl = few_channels;
        few_channels_cl.channels_last = true;
        CHECK(omp::winograd_tile(few_channels) == 0);
        CHECK(omp::winograd_tile(few_channels_cl) == 0);
    }
    SECTION("forced F(2x2, 3x3) and F(4x4, 3x3) on small odd shapes") {
        const std::vector<ConvCase> cases = {
            {"pad 1, 9x11", 3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1},
            {"pad 0, 7x5", 2, 5, 7, 5, 3, 3, 3, 1, 1, 0, 0},
            {"C = 1, K = 1, pad 2, 3x3", 1, 1, 3, 3, 1, 3, 3, 1, 1, 2, 2},
            {"pad (2, 0), 6x9", 2, 7, 6, 9, 9, 3, 3, 1, 1, 2, 0},
        };
        for (const auto& [algo, m] :
             {std::pair{CpuConvAlgorithm::winograd2, 2}, std::pair{CpuConvAlgorithm::winograd4, 4}}) {
            test::CpuConvScope scope(algo);
            for (const ConvCase& cc : cases) {
                INFO(test::describe(cc) << ", F(" << m << "x" << m << ", 3x3)");
                check_winograd_layouts(cc, m);
            }
            // A forced Winograd still leaves what it cannot run (stride 2) on im2col, in both layouts.
            Conv2dShape strided = test::shape_of({"stride 2", 2, 16, 9, 9, 16, 3, 3, 2, 2, 1, 1});
            CHECK(omp::winograd_tile(strided) == 0);
            strided.channels_last = true;
            CHECK(omp::winograd_tile(strided) == 0);
        }
    }
}
