// The channels_last (NHWC) layout of the pooling and batch-norm kernels. The naive reference reads and
// writes every element through the shape's offsets and keeps its order of operations per element, so
// its NHWC run on a tensor equals its NCHW run on the same logical tensor bit for bit, in float64 and
// float32: every pool kernel (max, fused relu + max, average, adaptive average, forward and backward,
// max pool positions included) and every batch-norm kernel (training and eval forward, backward in
// training and eval mode, the relu-fused ones), on odd shapes with padding and stride variety. The
// permutations between the layouts are in support/layout.h. Then omp's NHWC kernels: the same bits for any
// thread count (the fused batch norm + relu in both layouts: tests/kernels/test_norm.cpp). omp and cuda
// against naive on NHWC operands: tests/ops/pool.cpp and tests/ops/norm.cpp.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/norm.h"
#include "kernels/pool.h"
#include "support/compare.h"
#include "support/layout.h"
#include "support/norm_cases.h"
#include "support/pool_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::count_nan;
using test::nan_filled;
using test::same_bits;
using test::to_nchw;
using test::to_nhwc;

namespace {

template <typename T>
std::vector<T> widen(const std::vector<float>& v) {
    return std::vector<T>(v.begin(), v.end());
}

std::vector<float> random_floats(int64_t n, uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    std::vector<float> v = test::random_tensor({n}, seed).to_vector<float>();
    for (float& e : v) e = e * scale + offset;
    return v;
}

template <typename T>
const char* type_name() {
    return sizeof(T) == 8 ? "float64" : "float32";
}

// ---------------------------------------------------------------------------- pool
std::string pool_str(const Pool2dShape& s) {
    std::ostringstream os;
    os << "x (" << s.n << ", " << s.c << ", " << s.h << ", " << s.w << ") k (" << s.kh << ", " << s.kw << ") stride ("
       << s.stride_h << ", " << s.stride_w << ") pad (" << s.pad_h << ", " << s.pad_w << ") out (" << s.p << ", " << s.q
       << ")";
    return os.str();
}

// The fixed-window cases of the parity tests plus odd shapes (3, 5, 7, 9) with every padding up to half
// the kernel and strides below, at and above it.
std::vector<Pool2dShape> window_shapes() {
    std::vector<Pool2dShape> out;
    for (const test::WindowCase& c : test::window_cases()) out.push_back(test::window_shape(c));
    const test::WindowCase extra[] = {
        {{3, 5, 7, 9}, 2, 0, 0},
        {{3, 5, 7, 9}, 3, 1, 1},
        {{3, 5, 7, 9}, 3, 2, 1},
        {{3, 5, 7, 9}, {3, 5}, {2, 3}, {1, 2}},
        {{3, 5, 7, 9}, {2, 3}, {3, 4}, {1, 0}},
        {{3, 5, 7, 9}, 4, 1, 2},
        {{2, 1, 9, 7}, {5, 1}, {1, 1}, {2, 0}},
        {{1, 9, 4, 11}, {1, 4}, {1, 3}, {0, 2}},
    };
    for (const test::WindowCase& c : extra) out.push_back(test::window_shape(c));
    return out;
}

std::vector<Pool2dShape> adaptive_shapes() {
    std::vector<Pool2dShape> out;
    for (const test::AdaptiveCase& c : test::adaptive_cases()) out.push_back(test::adaptive_shape(c));
    const test::AdaptiveCase extra[] = {{{3, 5, 7, 9}, {3, 4}}, {{3, 5, 7, 9}, 1}, {{3, 5, 7, 9}, {9, 11}}};
    for (const test::AdaptiveCase& c : extra) out.push_back(test::adaptive_shape(c));
    return out;
}

// Every max-pool kernel (plain and fused with relu) on shape s (NCHW) and its NHWC twin: the NHWC outputs
// and positions, permuted back, equal the NCHW ones bit for bit; the backwards, run into gradients that
// hold values, too.
template <typename T>
void check_max_pools(Pool2dShape s, uint64_t& seed) {
    s.channels_last = false;
    Pool2dShape sl = s;
    sl.channels_last = true;
    const int64_t n = s.n, c = s.c, hw = s.h * s.w, pq = s.p * s.q, nx = n * c * hw, ny = n * c * pq;
    for (bool relu : {false, true}) {
        INFO("relu " << relu);
        // Ties, NaN, -inf and signed zeros: every rule of the window scan.
        const std::vector<T> x = widen<T>(test::signed_zero_tied_values(nx, seed++, true));
        const std::vector<T> xl = to_nhwc(x, n, c, hw);
        std::vector<T> y = nan_filled<T>(ny), yl = nan_filled<T>(ny);
        std::vector<int32_t> idx(size_t(ny), test::kUnwrittenIndex), idxl(size_t(ny), test::kUnwrittenIndex);
        auto fwd = [&](const Pool2dShape& sh, T* yp, int32_t* ip, const T* xp) {
            relu ? naive::relu_max_pool2d_fwd(sh, yp, ip, xp) : naive::max_pool2d_fwd(sh, yp, ip, xp);
        };
        fwd(s, y.data(), idx.data(), x.data());
        fwd(sl, yl.data(), idxl.data(), xl.data());
        REQUIRE(same_bits(to_nchw(yl, n, c, pq), y));
        REQUIRE(to_nchw(idxl, n, c, pq) == idx);
        REQUIRE(std::all_of(idx.begin(), idx.end(), [hw](int32_t i) { return i >= 0 && i < hw; }));
        // Without positions: the same values.
        std::vector<T> yl2 = nan_filled<T>(ny);
        fwd(sl, yl2.data(), nullptr, xl.data());
        REQUIRE(same_bits(yl2, yl));

        // Backward into gradients that hold values.
        const std::vector<T> dy = widen<T>(random_floats(ny, seed++));
        const std::vector<T> dx0 = widen<T>(random_floats(nx, seed++));
        const std::vector<T> dyl = to_nhwc(dy, n, c, pq);
        std::vector<T> dx = dx0, dxl = to_nhwc(dx0, n, c, hw);
        if (relu) {
            naive::relu_max_pool2d_bwd(s, dx.data(), dy.data(), idx.data(), y.data());
            naive::relu_max_pool2d_bwd(sl, dxl.data(), dyl.data(), idxl.data(), yl.data());
        } else {
            naive::max_pool2d_bwd(s, dx.data(), dy.data(), idx.data());
            naive::max_pool2d_bwd(sl, dxl.data(), dyl.data(), idxl.data());
        }
        REQUIRE(same_bits(to_nchw(dxl, n, c, hw), dx));
        if (!relu) REQUIRE_FALSE(same_bits(dx, dx0));  // the backward did add something
    }
}

// The average pools (fixed window or adaptive) the same way.
template <typename T>
void check_avg_pools(Pool2dShape s, bool adaptive, uint64_t& seed) {
    s.channels_last = false;
    Pool2dShape sl = s;
    sl.channels_last = true;
    const int64_t n = s.n, c = s.c, hw = s.h * s.w, pq = s.p * s.q, nx = n * c * hw, ny = n * c * pq;
    const std::vector<T> x = widen<T>(random_floats(nx, seed++));
    const std::vector<T> xl = to_nhwc(x, n, c, hw);
    std::vector<T> y = nan_filled<T>(ny), yl = nan_filled<T>(ny);
    if (adaptive) {
        naive::adaptive_avg_pool2d_fwd(s, y.data(), x.data());
        naive::adaptive_avg_pool2d_fwd(sl, yl.data(), xl.data());
    } else {
        naive::avg_pool2d_fwd(s, y.data(), x.data());
        naive::avg_pool2d_fwd(sl, yl.data(), xl.data());
    }
    REQUIRE(count_nan(y) == 0);
    REQUIRE(same_bits(to_nchw(yl, n, c, pq), y));

    const std::vector<T> dy = widen<T>(random_floats(ny, seed++));
    const std::vector<T> dx0 = widen<T>(random_floats(nx, seed++));
    const std::vector<T> dyl = to_nhwc(dy, n, c, pq);
    std::vector<T> dx = dx0, dxl = to_nhwc(dx0, n, c, hw);
    if (adaptive) {
        naive::adaptive_avg_pool2d_bwd(s, dx.data(), dy.data());
        naive::adaptive_avg_pool2d_bwd(sl, dxl.data(), dyl.data());
    } else {
        naive::avg_pool2d_bwd(s, dx.data(), dy.data());
        naive::avg_pool2d_bwd(sl, dxl.data(), dyl.data());
    }
    REQUIRE(same_bits(to_nchw(dxl, n, c, hw), dx));
}

// ---------------------------------------------------------------------------- batch norm
const test::BnCase kBnShapes[] = {{3, 5, 63}, {1, 1, 2}, {2, 3, 49}, {7, 3, 1}, {4, 17, 33}, {2, 64, 257}};

// The training forward's outputs.
template <typename T>
struct BnTrain {
    std::vector<T> y, mean, invstd, rm, rv;
};

// Every batch-norm kernel on (n, c, hw) and its NHWC twin, plain and fused with relu, with and without
// the affine transform: the NHWC results, permuted back, equal the NCHW ones bit for bit.
template <typename T>
void check_batch_norms(const test::BnCase& bc, bool affine, bool relu, uint64_t& seed) {
    BatchNormShape s;
    s.n = bc.n, s.c = bc.c, s.hw = bc.hw;
    BatchNormShape sl = s;
    sl.channels_last = true;
    const int64_t n = s.n, c = s.c, hw = s.hw, numel = n * c * hw;
    const std::vector<T> x = widen<T>(random_floats(numel, seed++, 2.0f, 3.0f));
    const std::vector<T> xl = to_nhwc(x, n, c, hw);
    const std::vector<T> gamma = widen<T>(random_floats(c, seed++, 0.5f, 1.0f)),
                         beta = widen<T>(random_floats(c, seed++));
    const std::vector<T> rm0 = widen<T>(random_floats(c, seed++));
    std::vector<T> rv0 = widen<T>(random_floats(c, seed++));
    for (T& v : rv0) v = v * v + T(0.5);
    const T* g = affine ? gamma.data() : nullptr;
    const T* b = affine ? beta.data() : nullptr;

    // Training forward, with running statistics.
    auto train = [&](const BatchNormShape& sh, const std::vector<T>& in) {
        BnTrain<T> o{nan_filled<T>(numel), nan_filled<T>(c), nan_filled<T>(c), rm0, rv0};
        if (relu)
            naive::batch_norm_relu_fwd_train(sh, o.y.data(), o.mean.data(), o.invstd.data(), o.rm.data(), o.rv.data(),
                                             in.data(), g, b, T(0.1), T(1e-5));
        else
            naive::batch_norm_fwd_train(sh, o.y.data(), o.mean.data(), o.invstd.data(), o.rm.data(), o.rv.data(),
                                        in.data(), g, b, T(0.1), T(1e-5));
        return o;
    };
    const BnTrain<T> t = train(s, x), tl = train(sl, xl);
    REQUIRE(count_nan(t.y) + count_nan(t.mean) + count_nan(t.invstd) == 0);
    REQUIRE(same_bits(to_nchw(tl.y, n, c, hw), t.y));
    REQUIRE(same_bits(tl.mean, t.mean));
    REQUIRE(same_bits(tl.invstd, t.invstd));
    REQUIRE(same_bits(tl.rm, t.rm));
    REQUIRE(same_bits(tl.rv, t.rv));

    // Eval forward.
    auto eval = [&](const BatchNormShape& sh, const std::vector<T>& in) {
        std::vector<T> y = nan_filled<T>(numel);
        if (relu)
            naive::batch_norm_relu_fwd_eval(sh, y.data(), in.data(), rm0.data(), rv0.data(), g, b, T(1e-5));
        else
            naive::batch_norm_fwd_eval(sh, y.data(), in.data(), rm0.data(), rv0.data(), g, b, T(1e-5));
        return y;
    };
    const std::vector<T> ye = eval(s, x), yel = eval(sl, xl);
    REQUIRE(count_nan(ye) == 0);
    REQUIRE(same_bits(to_nchw(yel, n, c, hw), ye));

    // Backward, training (the saved batch statistics) and eval (the running ones), into gradients that
    // hold values.
    const std::vector<T> dy = widen<T>(random_floats(numel, seed++));
    const std::vector<T> dx0 = widen<T>(random_floats(numel, seed++)), dg0 = widen<T>(random_floats(c, seed++)),
                         db0 = widen<T>(random_floats(c, seed++));
    const std::vector<T> dyl = to_nhwc(dy, n, c, hw);
    for (bool training : {true, false}) {
        INFO("backward, training " << training);
        std::vector<T> mean = t.mean, invstd = t.invstd;
        if (!training)
            for (size_t k = 0; k < size_t(c); k++)
                mean[k] = rm0[k], invstd[k] = T(1.0 / std::sqrt(double(rv0[k]) + 1e-5));
        const std::vector<T>& y_nchw = training ? t.y : ye;  // the fused backward's mask
        const std::vector<T>& y_nhwc = training ? tl.y : yel;
        auto bwd = [&](const BatchNormShape& sh, std::vector<T>& dx, std::vector<T>& dg, std::vector<T>& db,
                       const std::vector<T>& dyv, const std::vector<T>& yv, const std::vector<T>& in) {
            T* dgp = affine ? dg.data() : nullptr;
            T* dbp = affine ? db.data() : nullptr;
            if (relu)
                naive::batch_norm_relu_bwd(sh, training, dx.data(), dgp, dbp, dyv.data(), yv.data(), in.data(),
                                           mean.data(), invstd.data(), g);
            else
                naive::batch_norm_bwd(sh, training, dx.data(), dgp, dbp, dyv.data(), in.data(), mean.data(),
                                      invstd.data(), g);
        };
        std::vector<T> dx = dx0, dg = dg0, db = db0, dxl = to_nhwc(dx0, n, c, hw), dgl = dg0, dbl = db0;
        bwd(s, dx, dg, db, dy, y_nchw, x);
        bwd(sl, dxl, dgl, dbl, dyl, y_nhwc, xl);
        REQUIRE(count_nan(dx) == 0);
        REQUIRE(same_bits(to_nchw(dxl, n, c, hw), dx));
        REQUIRE(same_bits(dgl, dg));
        REQUIRE(same_bits(dbl, db));
        if (!affine) REQUIRE((same_bits(dg, dg0) && same_bits(db, db0)));  // null: nothing written
    }
}

}  // namespace

TEST_CASE("naive pool kernels on channels_last operands equal the NCHW run bit for bit, float64 and float32",
          "[pool][naive][channels_last]") {
    uint64_t seed = 1;
    for (const Pool2dShape& s : window_shapes()) {
        INFO(pool_str(s));
        {
            INFO("float64");
            check_max_pools<double>(s, seed);
            check_avg_pools<double>(s, false, seed);
        }
        {
            INFO("float32");
            check_max_pools<float>(s, seed);
            check_avg_pools<float>(s, false, seed);
        }
    }
    for (const Pool2dShape& s : adaptive_shapes()) {
        INFO("adaptive " << pool_str(s));
        check_avg_pools<double>(s, true, seed);
        check_avg_pools<float>(s, true, seed);
    }
}

TEST_CASE("naive batch_norm kernels on channels_last operands equal the NCHW run bit for bit, float64 and float32",
          "[batchnorm][naive][channels_last]") {
    uint64_t seed = 100;
    for (const test::BnCase& bc : kBnShapes)
        for (bool affine : {true, false})
            for (bool relu : {false, true}) {
                INFO("(n, c, hw) = (" << bc.n << ", " << bc.c << ", " << bc.hw << ") affine " << affine << " relu "
                                      << relu);
                {
                    INFO(type_name<double>());
                    check_batch_norms<double>(bc, affine, relu, seed);
                }
                {
                    INFO(type_name<float>());
                    check_batch_norms<float>(bc, affine, relu, seed);
                }
            }
}

// ---------------------------------------------------------------------------- omp
TEST_CASE("omp channels_last pool and batch_norm kernels give the same bits for any thread count",
          "[pool][batchnorm][omp][channels_last]") {
    // Over the parallel threshold, with several channel blocks and groups of rows.
    SECTION("pools") {
        test::WindowCase wc{{3, 130, 17, 15}, 3, 2, 1};
        Pool2dShape s = test::window_shape(wc);
        s.channels_last = true;
        const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
        const std::vector<float> x = random_floats(nx, 800), dy = random_floats(ny, 801);
        std::vector<float> y[2], ya[2], dx[2], dxa[2];
        std::vector<int32_t> idx[2];
        for (int t = 0; t < 2; t++) {
            NumThreadsGuard threads(t + 1);
            y[t] = nan_filled<float>(ny), ya[t] = nan_filled<float>(ny);
            idx[t].assign(size_t(ny), test::kUnwrittenIndex);
            dx[t].assign(size_t(nx), 0.0f), dxa[t].assign(size_t(nx), 0.0f);
            omp::max_pool2d_fwd(s, y[t].data(), idx[t].data(), x.data());
            omp::max_pool2d_bwd(s, dx[t].data(), dy.data(), idx[t].data());
            omp::avg_pool2d_fwd(s, ya[t].data(), x.data());
            omp::avg_pool2d_bwd(s, dxa[t].data(), dy.data());
        }
        REQUIRE(count_nan(y[0]) + count_nan(ya[0]) == 0);
        REQUIRE(same_bits(y[0], y[1]));
        REQUIRE(idx[0] == idx[1]);
        REQUIRE(same_bits(dx[0], dx[1]));
        REQUIRE(same_bits(ya[0], ya[1]));
        REQUIRE(same_bits(dxa[0], dxa[1]));
    }
    SECTION("batch norm") {
        for (const test::BnCase& bc : {test::BnCase{9, 13, 515}, test::BnCase{4, 3, 20000}, test::BnCase{2, 700, 40}}) {
            BatchNormShape s;
            s.n = bc.n, s.c = bc.c, s.hw = bc.hw;
            s.channels_last = true;
            INFO("n " << s.n << " c " << s.c << " hw " << s.hw);
            const int64_t numel = s.n * s.c * s.hw;
            const std::vector<float> x = random_floats(numel, 700, 3.0f, 1.0f), dy = random_floats(numel, 701);
            const std::vector<float> gamma = random_floats(s.c, 702), beta = random_floats(s.c, 703);
            std::vector<float> y[2], mean[2], invstd[2], dx[2], dg[2], db[2];
            for (int t = 0; t < 2; t++) {
                NumThreadsGuard threads(t + 1);
                y[t] = nan_filled<float>(numel), dx[t].assign(size_t(numel), 0.0f);
                mean[t] = nan_filled<float>(s.c), invstd[t] = nan_filled<float>(s.c);
                dg[t].assign(size_t(s.c), 0.0f), db[t].assign(size_t(s.c), 0.0f);
                omp::batch_norm_fwd_train(s, y[t].data(), mean[t].data(), invstd[t].data(), nullptr, nullptr, x.data(),
                                          gamma.data(), beta.data(), 0.1f, 1e-5f);
                omp::batch_norm_bwd(s, true, dx[t].data(), dg[t].data(), db[t].data(), dy.data(), x.data(),
                                    mean[t].data(), invstd[t].data(), gamma.data());
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
}
