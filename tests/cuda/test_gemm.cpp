// The CUDA GEMM's implementation choices against the naive CPU reference: dyad's tiled kernel (called
// directly, and as the GEMM behind matmul and linear) on every shared case, tile and degenerate size that
// tests/ops/gemm.cpp and tests/ops/linear.cpp run on cuBLAS (the default); gemm() following the GEMM
// implementation setting; and the math setting: TF32 within its own tolerance, strict FP32 exact where
// TF32's rounding would show.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/gemm.h"
#include "support/compare.h"
#include "support/gemm_cases.h"
#include "support/kernel_sets.h"
#include "support/linear_cases.h"
#include "support/random.h"
#include "support/shapes.h"

using namespace dyad;
using test::AllClose;
using test::MatmulCase;
using test::values;

namespace {

// The cuda kernel set (dyad_cuda_tests holds only it) and its tiled GEMM, called directly.
const test::KernelSet& cuda_set() { return test::kernel_sets().front(); }
const test::GemmFn kTiled = [](const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
    cuda::use_device(0);
    cuda::gemm_tiled(s, alpha, a, b, beta, c);
};

// The CPU GEMM tests' tolerance (tests/support/tolerances.h, tol::dot): rtol 1e-5, atol 1e-6 * sqrt(k).
double gemm_atol(int64_t k) { return 1e-6 * std::sqrt(double(std::max<int64_t>(k, 1))); }
constexpr double kRtol = 1e-5;

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Restores the GEMM implementation and the math setting when a test ends.
struct SettingsGuard {
    cuda::GemmImpl gemm = cuda::gemm_impl();
    Precision prec = precision();
    ~SettingsGuard() {
        cuda::set_gemm_impl(gemm);
        set_precision(prec);
    }
};

}  // namespace

// ---------------------------------------------------------------------------- the tiled kernel
TEST_CASE("cuda tiled gemm matches naive on the shared cases", "[cuda][gemm]") {
    for (const test::GemmCase& gc : test::gemm_cases()) {
        for (const test::GemmVariant& v : test::gemm_variants()) test::check_gemm(cuda_set(), kTiled, gc, v);
        if (test::heavy(gc)) continue;
        for (test::GemmVariant v : test::gemm_batched_variants()) {
            v.batch = gc.batch > 1 ? gc.batch : 3;
            test::check_gemm(cuda_set(), kTiled, gc, v);
        }
    }
}

TEST_CASE("cuda tiled gemm on whole and partial tiles in every transpose combination", "[cuda][gemm]") {
    for (const test::GemmCase& gc : test::gemm_tile_cases())
        for (const test::GemmVariant& v : test::gemm_tile_variants()) test::check_gemm(cuda_set(), kTiled, gc, v);
}

TEST_CASE("cuda tiled gemm degenerate sizes", "[cuda][gemm]") { test::check_gemm_degenerate(cuda_set(), kTiled); }

TEST_CASE("cuda gemm follows the GEMM implementation setting", "[cuda][gemm]") {
    // gemm() runs the selected kernel: both give the naive result on a case with partial tiles. cuBLAS is
    // the default, the implementation tests/ops runs.
    SettingsGuard restore;
    REQUIRE(cuda::gemm_impl() == cuda::GemmImpl::cublas);
    const test::GemmCase gc = {2, 33, 65, 47, true, false};
    for (cuda::GemmImpl g : {cuda::GemmImpl::cublas, cuda::GemmImpl::tiled}) {
        cuda::set_gemm_impl(g);
        REQUIRE(cuda::gemm_impl() == g);
        GemmShape s;
        s.batch = 2, s.m = gc.m, s.n = gc.n, s.k = gc.k, s.trans_a = true;
        s.lda = s.m, s.ldb = s.n, s.ldc = s.n;
        s.stride_a = s.k * s.m, s.stride_b = s.k * s.n, s.stride_c = s.m * s.n;
        const std::vector<float> a = test::gemm_randn(2 * s.k * s.m, 11), b = test::gemm_randn(2 * s.k * s.n, 12);
        std::vector<float> c(size_t(2 * s.m * s.n), 0.0f);
        naive::gemm<float>(s, 1.0f, a.data(), b.data(), 0.0f, c.data());
        cuda::use_device(0);
        const Tensor da = test::buffer(cuda_set(), a), db = test::buffer(cuda_set(), b);
        Tensor dc = test::nan_buffer(cuda_set(), 2 * s.m * s.n);
        cuda::gemm(s, 1.0f, da.data<float>(), db.data<float>(), 0.0f, dc.data<float>());
        // Unscaled N(0, 1) data: C is of order sqrt(k), its rounding error of order k * eps.
        REQUIRE_THAT(values(dc), AllClose(to_double(c)).rtol(kRtol).atol(gemm_atol(s.k) * std::sqrt(double(s.k))));
    }
}

// ---------------------------------------------------------------------------- matmul and linear
TEST_CASE("cuda matmul on the tiled GEMM matches naive, values and gradients", "[cuda][gemm]") {
    SettingsGuard restore;
    cuda::set_gemm_impl(cuda::GemmImpl::tiled);
    for (const MatmulCase& mc : test::matmul_cases()) test::check_matmul(cuda_set(), mc);
}

TEST_CASE("cuda linear on the tiled GEMM matches naive", "[cuda][gemm]") {
    SettingsGuard restore;
    cuda::set_gemm_impl(cuda::GemmImpl::tiled);
    for (const test::LinearCase& lc : test::linear_cases()) test::check_linear(cuda_set(), lc);
}

// ---------------------------------------------------------------------------- math setting
TEST_CASE("cuda matmul in TF32 stays within TF32 rounding of the exact product", "[cuda][gemm]") {
    // TF32 keeps 10 mantissa bits (unit roundoff 2^-11 = 4.9e-4) of each input; every product then
    // carries up to two such roundings, and with A scaled by 1 / sqrt(k) the result's error is a random
    // walk of k terms of size at most 2^-10 * |a b|, with E(a b)^2 = 1 / k: a standard deviation below
    // 2^-10 = 1e-3 for O(1) results, whatever k. atol 1e-2 is 10 of those (the largest case has 16k
    // results); rtol 1e-3 covers two roundings of a single large product.
    SettingsGuard restore;
    cuda::set_gemm_impl(cuda::GemmImpl::cublas);
    set_precision(Precision::tf32);
    for (const test::GemmCase& gc : test::gemm_cases()) {
        INFO("m " << gc.m << " n " << gc.n << " k " << gc.k);
        const Tensor a = mul(test::random_tensor({gc.m, gc.k}, 41), 1.0 / std::sqrt(double(gc.k)));
        const Tensor b = test::random_tensor({gc.k, gc.n}, 42);
        const Tensor exact = matmul(a.to(DType::float64), b.to(DType::float64));
        REQUIRE_THAT(values(matmul(test::on(cuda_set(), a), test::on(cuda_set(), b))),
                     AllClose(values(exact)).rtol(1e-3).atol(1e-2));
    }
}

TEST_CASE("cuda strict FP32 keeps the bits TF32 would round away", "[cuda][gemm]") {
    // a = 1 + 2^-12 needs 12 mantissa bits: TF32 (10) rounds it to 1, so a TF32 product of a (128 x 256)
    // of a and (256 x 128) of ones would give 256 everywhere. In FP32 every partial sum j * a = j + j / 4096
    // is exact (at most 20 significant bits), so strict FP32, in any summation order, gives exactly
    // 256 + 1/16. Both the cuBLAS path (CUBLAS_COMPUTE_32F) and the tiled kernel must.
    SettingsGuard restore;
    set_precision(Precision::fp32);
    const float a_val = 1.0f + std::ldexp(1.0f, -12);
    const int64_t m = 128, n = 128, k = 256;
    // TF32's rounding of a: keep 10 mantissa bits (round to nearest).
    const float a_tf32 = std::ldexp(std::round(std::ldexp(a_val, 10)), -10);
    REQUIRE(a_tf32 == 1.0f);
    const double tf32_answer = double(k) * a_tf32, exact = double(k) * double(a_val);
    REQUIRE(exact - tf32_answer == 1.0 / 16);
    const Tensor a = Tensor::full({m, k}, double(a_val), DType::float32, Device::cuda());
    const Tensor b = Tensor::ones({k, n}, DType::float32, Device::cuda());
    for (cuda::GemmImpl g : {cuda::GemmImpl::cublas, cuda::GemmImpl::tiled}) {
        cuda::set_gemm_impl(g);
        INFO((g == cuda::GemmImpl::cublas ? "cublas" : "tiled"));
        REQUIRE(values(matmul(a, b)) == std::vector<double>(size_t(m * n), exact));
    }
}
