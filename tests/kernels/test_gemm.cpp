// GEMM family: a hand-checked product, the omp kernel against the naive reference on the shared case list
// (alpha/beta, transposes, padded leading dims, shared operands, batches accumulating into one C, NaN in
// C with beta 0, every thread split), the matmul frontend on both CPU kernel sets in every layout, float64
// gradient checks of matmul, and its errors.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/gemm.h"  // naive::gemm, omp::gemm, omp::gemm_isa, GemmShape
#include "support/compare.h"
#include "support/gemm_cases.h"
#include "support/random.h"
#include "support/shapes.h"

using namespace dyad;
using test::AllClose;
using test::Layout;
using test::matmul_cases;
using test::MatmulCase;
using test::values;
using test::view_as;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Tolerance for a float32 GEMM against naive: rtol 1e-5, atol 1e-6 * sqrt(k). The summation order
// differs (k blocks, FMA), and the rounding error of a length-k dot product grows with k: with O(1)
// partial sums it is a random walk of k roundings, about eps * sqrt(k / 2). The kernel tests scale A by
// 1 / sqrt(k) (as a layer initialised for unit-variance outputs would) so that C and the partial sums are
// O(1) for every k; with unscaled N(0, 1) data C grows like sqrt(k) and its rounding error like k.
double gemm_atol(int64_t k) { return 1e-6 * std::sqrt(double(std::max<int64_t>(k, 1))); }
constexpr double kGemmRtol = 1e-5;

std::vector<float> randn_floats(int64_t n, uint64_t seed) {
    manual_seed(seed);
    return Tensor::randn({std::max<int64_t>(n, 1)}).to_vector<float>();
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// How one kernel-level run lays out its operands.
struct Variant {
    const char* name;
    float alpha = 1, beta = 0;
    int64_t batch = 0;                        // 0: the case's own batch
    int64_t pad = 0;                          // extra elements at the end of every row of A, B and C (lda > cols ...)
    bool shared_a = false, shared_b = false;  // batch stride 0
    bool shared_c = false;                    // stride_c 0: batches accumulate into one C (beta 1)
    bool nan_c = false;                       // C starts as NaN (beta must be 0)
};

// Runs omp::gemm, naive::gemm<float> and naive::gemm<double> on the same float values and compares the
// whole C buffers, padding included (it must be left alone): omp against naive in float (the parity the
// CUDA tests also check) and against the exact float64 result. With nan_c every result must be finite.
void check_against_naive(const test::GemmCase& gc, const Variant& v) {
    GemmShape s;
    s.batch = v.batch ? v.batch : gc.batch;
    s.m = gc.m, s.n = gc.n, s.k = gc.k;
    s.trans_a = gc.trans_a, s.trans_b = gc.trans_b;
    const int64_t a_rows = s.trans_a ? s.k : s.m, a_cols = s.trans_a ? s.m : s.k;
    const int64_t b_rows = s.trans_b ? s.n : s.k, b_cols = s.trans_b ? s.k : s.n;
    s.lda = a_cols + v.pad, s.ldb = b_cols + v.pad, s.ldc = s.n + v.pad;
    s.stride_a = v.shared_a ? 0 : a_rows * s.lda;
    s.stride_b = v.shared_b ? 0 : b_rows * s.ldb;
    s.stride_c = v.shared_c ? 0 : s.m * s.ldc;
    const int64_t na = (v.shared_a ? 1 : s.batch) * a_rows * s.lda;
    const int64_t nb = (v.shared_b ? 1 : s.batch) * b_rows * s.ldb;
    const int64_t nc = (v.shared_c ? 1 : s.batch) * s.m * s.ldc;
    INFO("batch " << s.batch << " m " << s.m << " n " << s.n << " k " << s.k << " trans_a " << s.trans_a << " trans_b "
                  << s.trans_b << " variant " << v.name << " isa " << omp::gemm_isa() << " threads " << num_threads());

    std::vector<float> a = randn_floats(na, 1);
    const float scale = float(1.0 / std::sqrt(double(s.k)));
    for (float& x : a) x *= scale;
    const std::vector<float> b = randn_floats(nb, 2);
    std::vector<float> c = v.nan_c ? std::vector<float>(size_t(nc), kNaN) : randn_floats(nc, 3);
    c.resize(size_t(nc));
    std::vector<float> c_naive = c;
    std::vector<double> c_exact = to_double(c);
    naive::gemm<float>(s, v.alpha, a.data(), b.data(), v.beta, c_naive.data());
    naive::gemm<double>(s, v.alpha, to_double(a).data(), to_double(b).data(), v.beta, c_exact.data());
    omp::gemm(s, v.alpha, a.data(), b.data(), v.beta, c.data());

    // With stride_c 0 the batches' products add up: the sum has length batch * k.
    const double atol = gemm_atol(v.shared_c ? s.batch * s.k : s.k);
    const std::vector<double> actual = to_double(c);
    REQUIRE_THAT(actual, AllClose(to_double(c_naive)).rtol(kGemmRtol).atol(atol));
    REQUIRE_THAT(actual, AllClose(c_exact).rtol(kGemmRtol).atol(atol));
    if (v.nan_c)
        for (int64_t p = 0; p < s.batch; p++)
            for (int64_t i = 0; i < s.m; i++)
                for (int64_t j = 0; j < s.n; j++) REQUIRE(std::isfinite(c[size_t(p * s.stride_c + i * s.ldc + j)]));
}

bool heavy(const test::GemmCase& gc) { return gc.batch * gc.m * gc.n * gc.k > (int64_t(1) << 24); }

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("gemm of a hand-checked 2x3 by 3x2 product", "[gemm][naive][omp]") {
    // A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12]: A B = [58 64; 139 154].
    const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8, 9, 10, 11, 12};
    const std::vector<float> at = {1, 4, 2, 5, 3, 6}, bt = {7, 9, 11, 8, 10, 12};  // stored transposed
    GemmShape s;
    s.m = 2, s.n = 2, s.k = 3, s.lda = 3, s.ldb = 2, s.ldc = 2;

    std::vector<float> c(4, kNaN);
    omp::gemm(s, 1.0f, a.data(), b.data(), 0.0f, c.data());
    REQUIRE(c == std::vector<float>{58, 64, 139, 154});
    naive::gemm<float>(s, 1.0f, a.data(), b.data(), 0.0f, c.data());
    REQUIRE(c == std::vector<float>{58, 64, 139, 154});

    // C = 2 A B + 0.5 C, from C = [2 4; 6 8].
    c = {2, 4, 6, 8};
    omp::gemm(s, 2.0f, a.data(), b.data(), 0.5f, c.data());
    REQUIRE(c == std::vector<float>{117, 130, 281, 312});

    // The same product from transposed storage.
    GemmShape t = s;
    t.trans_a = t.trans_b = true, t.lda = 2, t.ldb = 3;
    c.assign(4, kNaN);
    omp::gemm(t, 1.0f, at.data(), bt.data(), 0.0f, c.data());
    REQUIRE(c == std::vector<float>{58, 64, 139, 154});
}

TEST_CASE("gemm degenerate sizes", "[gemm][naive][omp]") {
    GemmShape s;
    s.m = 2, s.n = 3, s.k = 0, s.lda = 1, s.ldb = 3, s.ldc = 3;
    const float one = 1;
    SECTION("k = 0 scales C by beta") {
        std::vector<float> c = {1, 2, 3, 4, 5, 6};
        omp::gemm(s, 1.0f, &one, &one, 2.0f, c.data());
        REQUIRE(c == std::vector<float>{2, 4, 6, 8, 10, 12});
    }
    SECTION("k = 0 with beta 0 writes zeros without reading C") {
        std::vector<float> c(6, kNaN);
        omp::gemm(s, 1.0f, &one, &one, 0.0f, c.data());
        REQUIRE(c == std::vector<float>(6, 0.0f));
    }
    SECTION("m = 0 or n = 0 leaves C alone") {
        std::vector<float> c(6, 7.0f);
        s.k = 4, s.m = 0;
        omp::gemm(s, 1.0f, &one, &one, 0.0f, c.data());
        s.m = 2, s.n = 0;
        omp::gemm(s, 1.0f, &one, &one, 0.0f, c.data());
        REQUIRE(c == std::vector<float>(6, 7.0f));
    }
}

TEST_CASE("omp gemm reports its micro-kernel", "[gemm][omp]") {
    const std::string isa = omp::gemm_isa();
    INFO("isa " << isa);
    REQUIRE((isa == "avx512" || isa == "avx2" || isa == "portable"));
}

// ---------------------------------------------------------------------------- parity
TEST_CASE("omp gemm matches naive on the shared cases", "[gemm][omp]") {
    // Every case in both plain forms; the cheaper ones (all but the 8192-deep and 300x500x333 cases) also
    // with shared operands and batched accumulation. Batched variants use the case's batch, or 3.
    const Variant plain = {"alpha 1 beta 0, C NaN", 1.0f, 0.0f, 0, 0, false, false, false, true};
    const Variant scaled = {"alpha 0.5 beta 2, padded rows", 0.5f, 2.0f, 0, 3};
    const Variant shared_a = {"batch, A shared, beta 1", 1.0f, 1.0f, 0, 1, true};
    const Variant shared_b = {"batch, B shared, beta 0", 1.5f, 0.0f, 0, 0, false, true};
    const Variant accumulate = {"batch, stride_c 0, beta 1", 1.0f, 1.0f, 0, 2, false, false, true};
    for (const test::GemmCase& gc : test::gemm_cases()) {
        check_against_naive(gc, plain);
        check_against_naive(gc, scaled);
        if (heavy(gc)) continue;
        for (Variant v : {shared_a, shared_b, accumulate}) {
            v.batch = gc.batch > 1 ? gc.batch : 3;
            check_against_naive(gc, v);
        }
    }
}

TEST_CASE("omp gemm is correct for every thread split", "[gemm][omp]") {
    // Thin and wide C (one dim split), odd thread counts (uneven tiles), even batches (whole batches per
    // thread) and odd ones with stride_c 0 (every thread walks the batches over its own tile).
    const std::vector<test::GemmCase> cases = {
        {1, 7, 300, 100, false, false}, {1, 300, 7, 100, true, true},    {1, 61, 67, 129, false, true},
        {4, 33, 35, 70, true, false},   {1, 256, 256, 64, false, false},
    };
    const Variant accumulate = {"batch 3, stride_c 0, beta 1", 1.0f, 1.0f, 3, 1, false, false, true};
    const Variant even = {"batch 4, B shared", 1.0f, 0.0f, 4, 0, false, true};
    for (int threads : {1, 2, 3, 4, 7}) {
        NumThreadsGuard tg(threads);
        INFO("threads " << threads);
        for (const test::GemmCase& gc : cases) {
            check_against_naive(gc, {"alpha 1 beta 0", 1.0f, 0.0f});
            check_against_naive(gc, accumulate);
            check_against_naive(gc, even);
        }
    }
}

// ---------------------------------------------------------------------------- matmul frontend

TEST_CASE("matmul on omp matches naive in every layout", "[gemm][omp]") {
    // Unscaled N(0, 1) operands are fine here: k <= 47 keeps the rounding error well inside gemm_atol.
    for (const MatmulCase& mc : matmul_cases()) {
        INFO(mc.name << ": a " << shape_str(mc.a) << " b " << shape_str(mc.b) << " layout " << layout_name(mc.layout));
        const Tensor a = view_as(test::random_tensor(mc.a, 11, mc.layout), mc.t_a);
        const Tensor b = view_as(test::random_tensor(mc.b, 12, mc.layout), mc.t_b);
        const int64_t k = a.size(-1);
        Tensor y_naive, y_omp;
        {
            CpuKernelsGuard g(CpuKernels::naive);
            y_naive = matmul(a, b);
        }
        {
            CpuKernelsGuard g(CpuKernels::omp);
            y_omp = matmul(a, b);
        }
        const int64_t batch = std::max(a.dim() == 3 ? a.size(0) : 1, b.dim() == 3 ? b.size(0) : 1);
        const Shape expect =
            (a.dim() == 3 || b.dim() == 3) ? Shape{batch, a.size(-2), b.size(-1)} : Shape{a.size(-2), b.size(-1)};
        REQUIRE(y_omp.shape() == expect);
        REQUIRE(y_naive.shape() == expect);
        REQUIRE_THAT(values(y_omp), AllClose(values(y_naive)).rtol(kGemmRtol).atol(gemm_atol(k)));
    }
}

TEST_CASE("matmul gradients on omp match naive", "[gemm][omp]") {
    // The backward GEMMs run with beta 1 into the gradient buffers, and with stride_c 0 for an operand
    // shared across the batch.
    for (const MatmulCase& mc : matmul_cases()) {
        if (mc.layout != Layout::contiguous) continue;
        INFO(mc.name << ": a " << shape_str(mc.a) << " b " << shape_str(mc.b));
        std::vector<double> ga[2], gb[2];
        int64_t len = 1;
        for (int set = 0; set < 2; set++) {
            CpuKernelsGuard g(set == 0 ? CpuKernels::naive : CpuKernels::omp);
            Tensor a = test::random_tensor(mc.a, 21).requires_grad_();
            Tensor b = test::random_tensor(mc.b, 22).requires_grad_();
            const Tensor y = matmul(view_as(a, mc.t_a), view_as(b, mc.t_b));
            const Tensor w = test::random_tensor(y.shape(), 23);
            sum(mul(y, w)).backward();
            ga[set] = values(a.grad()), gb[set] = values(b.grad());
            // dA sums over n, dB over the batch rows: the longest sum sets the tolerance.
            len = std::max(y.size(-1), y.numel() / y.size(-1));
        }
        REQUIRE_THAT(ga[1], AllClose(ga[0]).rtol(kGemmRtol).atol(gemm_atol(len)));
        REQUIRE_THAT(gb[1], AllClose(gb[0]).rtol(kGemmRtol).atol(gemm_atol(len)));
    }
}

TEST_CASE("matmul gradients (float64)", "[gemm][gradcheck]") {
    // Smaller sizes than the parity cases: gradcheck runs two forward passes per input element.
    const std::vector<MatmulCase> cases = {
        {"2-D", {3, 4}, {4, 5}},
        {"2-D, a.t()", {4, 3}, {4, 5}, true, false},
        {"2-D, b.t()", {3, 4}, {5, 4}, false, true},
        {"2-D, both .t()", {4, 3}, {5, 4}, true, true},
        {"3-D batched", {2, 3, 4}, {2, 4, 5}},
        {"3-D, both transpose(-1, -2)", {2, 4, 3}, {2, 5, 4}, true, true},
        {"2-D x 3-D", {3, 4}, {2, 4, 5}},
        {"3-D x 2-D weight shared across the batch", {3, 3, 4}, {4, 5}},
        {"3-D x 2-D.t() weight", {3, 3, 4}, {5, 4}, false, true},
        {"batch 1 x batch 3", {1, 3, 4}, {3, 4, 5}},
        {"batch 3 x batch 1", {3, 3, 4}, {1, 4, 5}},
    };
    for (const MatmulCase& mc : cases) {
        INFO(mc.name << ": a " << shape_str(mc.a) << " b " << shape_str(mc.b));
        Tensor a = test::random_tensor(mc.a, 31, Layout::contiguous, DType::float64).requires_grad_();
        Tensor b = test::random_tensor(mc.b, 32, Layout::contiguous, DType::float64).requires_grad_();
        const bool ta = mc.t_a, tb = mc.t_b;
        const GradcheckResult r = gradcheck(
            [ta, tb](const std::vector<Tensor>& in) { return matmul(view_as(in[0], ta), view_as(in[1], tb)); }, {a, b});
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("matmul errors name the op and the shapes", "[gemm][errors]") {
    using Catch::Contains;
    const Tensor a23 = Tensor::zeros({2, 3}), b45 = Tensor::zeros({4, 5});
    REQUIRE_THROWS_WITH(matmul(a23, b45),
                        Contains("matmul") && Contains("inner dims") && Contains("(2, 3)") && Contains("(4, 5)"));
    REQUIRE_THROWS_WITH(matmul(Tensor::zeros({3}), Tensor::zeros({3, 2})),
                        Contains("matmul") && Contains("2-D or 3-D") && Contains("(3)"));
    REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 2, 3, 4}), Tensor::zeros({4, 5})),
                        Contains("matmul") && Contains("2-D or 3-D") && Contains("(2, 2, 3, 4)"));
    REQUIRE_THROWS_WITH(
        matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5})),
        Contains("matmul") && Contains("batch sizes differ") && Contains("(2, 3, 4)") && Contains("(3, 4, 5)"));
    REQUIRE_THROWS_WITH(matmul(a23, Tensor::zeros({3, 2}, DType::float64)),
                        Contains("matmul") && Contains("dtypes differ") && Contains("float32") && Contains("float64"));
    REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 3}, DType::int32), Tensor::zeros({3, 2}, DType::int32)),
                        Contains("matmul") && Contains("int32") && Contains("(2, 3)"));
}
