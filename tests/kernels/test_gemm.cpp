// GEMM on the CPU kernel sets: a hand-checked product, omp's micro-kernel and every thread split against
// naive, float64 gradient checks of matmul, and its errors. Parity of every kernel set with naive (the
// shared cases, tiles, degenerate sizes, matmul in every layout): tests/ops/gemm.cpp.
#include "support/catch.h"

#include <limits>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/gemm.h"  // naive::gemm, omp::gemm, omp::gemm_isa, GemmShape
#include "support/compare.h"
#include "support/gemm_cases.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/shapes.h"

using namespace dyad;
using test::Layout;
using test::MatmulCase;
using test::view_as;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

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

TEST_CASE("omp gemm reports its micro-kernel", "[gemm][omp]") {
    const std::string isa = omp::gemm_isa();
    INFO("isa " << isa);
    REQUIRE((isa == "avx512" || isa == "avx2" || isa == "portable"));
}

// ---------------------------------------------------------------------------- thread splits
TEST_CASE("omp gemm is correct for every thread split", "[gemm][omp]") {
    // Thin and wide C (one dim split), odd thread counts (uneven tiles), even batches (whole batches per
    // thread) and odd ones with stride_c 0 (every thread walks the batches over its own tile).
    const std::vector<test::GemmCase> cases = {
        {1, 7, 300, 100, false, false}, {1, 300, 7, 100, true, true},    {1, 61, 67, 129, false, true},
        {4, 33, 35, 70, true, false},   {1, 256, 256, 64, false, false},
    };
    const test::GemmVariant plain = {"alpha 1 beta 0", 1.0f, 0.0f};
    const test::GemmVariant accumulate = {"batch 3, stride_c 0, beta 1", 1.0f, 1.0f, 3, 1, false, false, true};
    const test::GemmVariant even = {"batch 4, B shared", 1.0f, 0.0f, 4, 0, false, true};
    const test::KernelSet omp_set = {test::KernelSet::Kind::omp, "omp", Device::cpu()};
    const test::GemmFn gemm = test::gemm_of(omp_set);
    for (int threads : {1, 2, 3, 4, 7}) {
        NumThreadsGuard tg(threads);
        INFO("threads " << threads);
        for (const test::GemmCase& gc : cases) {
            test::check_gemm(omp_set, gemm, gc, plain);
            test::check_gemm(omp_set, gemm, gc, accumulate);
            test::check_gemm(omp_set, gemm, gc, even);
        }
    }
}

// ---------------------------------------------------------------------------- gradients
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
