// CUDA GEMM against the naive CPU reference: cuda::gemm_cublas and cuda::gemm_tiled called directly on
// device pointers for every case of the shared list (alpha/beta, padded leading dims, shared operands,
// batches accumulating into one C, NaN in C with beta 0, misaligned starts that force the tiled
// kernel's scalar loads), degenerate sizes, matmul and linear through the API with each GemmImpl
// (values and gradients), and the math setting: TF32 within its own tolerance, strict FP32 exact where
// TF32's rounding would show.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/gemm.h"
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

// The CPU GEMM tests' tolerance (tests/kernels/test_gemm.cpp): rtol 1e-5, atol 1e-6 * sqrt(k), with A
// scaled by 1 / sqrt(k) so that C and its partial sums are O(1). Strict FP32 on the GPU (cuBLAS with
// CUBLAS_COMPUTE_32F, the tiled kernel's fmaf chains) differs from naive by summation order only, the
// same situation as omp.
double gemm_atol(int64_t k) { return 1e-6 * std::sqrt(double(std::max<int64_t>(k, 1))); }
constexpr double kRtol = 1e-5;

enum class Impl { cublas, tiled };
const char* impl_name(Impl i) { return i == Impl::cublas ? "cublas" : "tiled"; }

void run_impl(Impl impl, const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
    if (impl == Impl::cublas)
        cuda::gemm_cublas(s, alpha, a, b, beta, c);
    else
        cuda::gemm_tiled(s, alpha, a, b, beta, c);
}

std::vector<float> randn_floats(int64_t n, uint64_t seed) {
    manual_seed(seed);
    return Tensor::randn({std::max<int64_t>(n, 1)}).to_vector<float>();
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Host floats copied into a new GPU buffer with `offset` leading elements of padding (offset 1 makes
// every start 4 bytes past a 16-byte boundary).
Tensor device_buffer(const std::vector<float>& v, int64_t offset) {
    std::vector<float> padded(size_t(offset), 0.0f);
    padded.insert(padded.end(), v.begin(), v.end());
    return Tensor::from_vector(padded, {int64_t(padded.size())}).to(Device::cuda());
}

std::vector<float> host_values(const Tensor& d, int64_t offset) {
    std::vector<float> v = d.to(Device::cpu()).to_vector<float>();
    return std::vector<float>(v.begin() + offset, v.end());
}

// How one kernel-level run lays out its operands (as in the CPU test, plus `offset`).
struct Variant {
    const char* name;
    float alpha = 1, beta = 0;
    int64_t batch = 0;                        // 0: the case's own batch
    int64_t pad = 0;                          // extra elements at the end of every row of A, B and C
    bool shared_a = false, shared_b = false;  // batch stride 0
    bool shared_c = false;                    // stride_c 0: batches accumulate into one C (beta 1)
    bool nan_c = false;                       // C starts as NaN (beta must be 0)
    int64_t offset = 0;                       // elements before each operand's start
};

// Runs the GPU kernel and naive::gemm (float and double) on the same values and compares the whole C
// buffers, padding included (it must be left alone). With nan_c every result must be finite.
void check_against_naive(Impl impl, const test::GemmCase& gc, const Variant& v) {
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
    INFO(impl_name(impl) << ": batch " << s.batch << " m " << s.m << " n " << s.n << " k " << s.k << " trans_a "
                         << s.trans_a << " trans_b " << s.trans_b << " variant " << v.name);

    std::vector<float> a = randn_floats(na, 1);
    a.resize(size_t(na));
    const float scale = float(1.0 / std::sqrt(double(std::max<int64_t>(s.k, 1))));
    for (float& x : a) x *= scale;
    std::vector<float> b = randn_floats(nb, 2);
    b.resize(size_t(nb));
    std::vector<float> c = v.nan_c ? std::vector<float>(size_t(nc), kNaN) : randn_floats(nc, 3);
    c.resize(size_t(nc));
    std::vector<float> c_naive = c;
    std::vector<double> c_exact = to_double(c);
    naive::gemm<float>(s, v.alpha, a.data(), b.data(), v.beta, c_naive.data());
    naive::gemm<double>(s, v.alpha, to_double(a).data(), to_double(b).data(), v.beta, c_exact.data());

    cuda::use_device(0);
    const Tensor da = device_buffer(a, v.offset), db = device_buffer(b, v.offset), dc = device_buffer(c, v.offset);
    run_impl(impl, s, v.alpha, da.data<float>() + v.offset, db.data<float>() + v.offset, v.beta,
             dc.data<float>() + v.offset);
    const std::vector<float> got = host_values(dc, v.offset);

    const double atol = gemm_atol(v.shared_c ? s.batch * s.k : s.k);
    const std::vector<double> actual = to_double(got);
    REQUIRE_THAT(actual, AllClose(to_double(c_naive)).rtol(kRtol).atol(atol));
    REQUIRE_THAT(actual, AllClose(c_exact).rtol(kRtol).atol(atol));
    if (v.nan_c)
        for (int64_t p = 0; p < s.batch; p++)
            for (int64_t i = 0; i < s.m; i++)
                for (int64_t j = 0; j < s.n; j++) REQUIRE(std::isfinite(got[size_t(p * s.stride_c + i * s.ldc + j)]));
}

bool heavy(const test::GemmCase& gc) { return gc.batch * gc.m * gc.n * gc.k > (int64_t(1) << 24); }

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

// ---------------------------------------------------------------------------- kernels
TEST_CASE("cuda gemm kernels match naive on the shared cases", "[cuda][gemm]") {
    const Variant plain = {"alpha 1 beta 0, C NaN", 1.0f, 0.0f, 0, 0, false, false, false, true};
    const Variant scaled = {"alpha 0.5 beta 2, padded rows", 0.5f, 2.0f, 0, 3};
    const Variant misaligned = {
        "alpha 1.5 beta 0, starts 4 bytes off, C NaN", 1.5f, 0.0f, 0, 0, false, false, false, true, 1};
    const Variant shared_a = {"batch, A shared, beta 1", 1.0f, 1.0f, 0, 1, true};
    const Variant shared_b = {"batch, B shared, beta 0", 1.5f, 0.0f, 0, 0, false, true};
    const Variant accumulate = {"batch, stride_c 0, beta 1", 1.0f, 1.0f, 0, 2, false, false, true};
    for (Impl impl : {Impl::cublas, Impl::tiled})
        for (const test::GemmCase& gc : test::gemm_cases()) {
            check_against_naive(impl, gc, plain);
            check_against_naive(impl, gc, scaled);
            check_against_naive(impl, gc, misaligned);
            if (heavy(gc)) continue;
            for (Variant v : {shared_a, shared_b, accumulate}) {
                v.batch = gc.batch > 1 ? gc.batch : 3;
                check_against_naive(impl, gc, v);
            }
        }
}

TEST_CASE("cuda tiled gemm on whole and partial tiles in every transpose combination", "[cuda][gemm]") {
    // Sizes that are multiples of 4 (the float4 loads and stores) with several 128x128 tiles and k steps,
    // and one past them (every edge guard), in all four transpose combinations; batched, with padded rows.
    const Variant plain = {"alpha 1 beta 0, C NaN", 1.0f, 0.0f, 0, 0, false, false, false, true};
    const Variant batched = {"batch 3, alpha 0.5 beta 2, rows padded by 4", 0.5f, 2.0f, 3, 4};
    const Variant accumulate = {"batch 3, stride_c 0, beta 1", 1.0f, 1.0f, 3, 0, false, false, true};
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (const test::GemmCase& base :
                 {test::GemmCase{1, 256, 384, 64, ta, tb}, test::GemmCase{1, 257, 385, 67, ta, tb},
                  test::GemmCase{1, 132, 4, 1024, ta, tb}, test::GemmCase{1, 4, 132, 9, ta, tb}}) {
                check_against_naive(Impl::tiled, base, plain);
                check_against_naive(Impl::tiled, base, batched);
                check_against_naive(Impl::tiled, base, accumulate);
            }
}

TEST_CASE("cuda gemm degenerate sizes", "[cuda][gemm]") {
    cuda::use_device(0);
    GemmShape s;
    s.m = 2, s.n = 3, s.k = 0, s.lda = 1, s.ldb = 3, s.ldc = 3;
    const Tensor one = Tensor::ones({4}, DType::float32, Device::cuda());
    for (Impl impl : {Impl::cublas, Impl::tiled}) {
        INFO(impl_name(impl));
        // k = 0 scales C by beta; with beta 0 it writes zeros without reading C.
        Tensor c = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {6}).to(Device::cuda());
        run_impl(impl, s, 1.0f, one.data<float>(), one.data<float>(), 2.0f, c.data<float>());
        REQUIRE(c.to_vector<float>() == std::vector<float>{2, 4, 6, 8, 10, 12});
        c = Tensor::full({6}, NAN, DType::float32, Device::cuda());
        run_impl(impl, s, 1.0f, one.data<float>(), one.data<float>(), 0.0f, c.data<float>());
        REQUIRE(c.to_vector<float>() == std::vector<float>(6, 0.0f));
        // m = 0, n = 0 or batch 0 leave C alone.
        c = Tensor::full({6}, 7.0, DType::float32, Device::cuda());
        GemmShape e = s;
        e.k = 4, e.m = 0;
        run_impl(impl, e, 1.0f, one.data<float>(), one.data<float>(), 0.0f, c.data<float>());
        e.m = 2, e.n = 0;
        run_impl(impl, e, 1.0f, one.data<float>(), one.data<float>(), 0.0f, c.data<float>());
        e.n = 3, e.batch = 0;
        run_impl(impl, e, 1.0f, one.data<float>(), one.data<float>(), 0.0f, c.data<float>());
        REQUIRE(c.to_vector<float>() == std::vector<float>(6, 7.0f));
    }
}

TEST_CASE("cuda gemm follows the GEMM implementation setting", "[cuda][gemm]") {
    // gemm() runs the selected kernel: both give the naive result on a case with partial tiles.
    SettingsGuard restore;
    const test::GemmCase gc = {2, 33, 65, 47, true, false};
    for (cuda::GemmImpl g : {cuda::GemmImpl::cublas, cuda::GemmImpl::tiled}) {
        cuda::set_gemm_impl(g);
        REQUIRE(cuda::gemm_impl() == g);
        GemmShape s;
        s.batch = 2, s.m = gc.m, s.n = gc.n, s.k = gc.k, s.trans_a = true;
        s.lda = s.m, s.ldb = s.n, s.ldc = s.n;
        s.stride_a = s.k * s.m, s.stride_b = s.k * s.n, s.stride_c = s.m * s.n;
        const std::vector<float> a = randn_floats(2 * s.k * s.m, 11), b = randn_floats(2 * s.k * s.n, 12);
        std::vector<float> c(size_t(2 * s.m * s.n), 0.0f);
        naive::gemm<float>(s, 1.0f, a.data(), b.data(), 0.0f, c.data());
        cuda::use_device(0);
        const Tensor da = device_buffer(a, 0), db = device_buffer(b, 0);
        Tensor dc = Tensor::full({2 * s.m * s.n}, NAN, DType::float32, Device::cuda());
        cuda::gemm(s, 1.0f, da.data<float>(), db.data<float>(), 0.0f, dc.data<float>());
        // Unscaled N(0, 1) data: C is of order sqrt(k), its rounding error of order k * eps.
        REQUIRE_THAT(values(dc), AllClose(to_double(c)).rtol(kRtol).atol(gemm_atol(s.k) * std::sqrt(double(s.k))));
    }
}

// ---------------------------------------------------------------------------- matmul and linear

TEST_CASE("cuda matmul matches naive with each GEMM implementation, values and gradients", "[cuda][gemm]") {
    // The operands are laid out on the GPU as the case says (transposed or strided views of GPU memory),
    // so the frontend passes transposes and leading dims straight to the kernel. Unscaled N(0, 1) data with
    // k <= 47: well inside gemm_atol. Gradients: backward GEMMs with beta 1 and stride_c 0.
    SettingsGuard restore;
    for (cuda::GemmImpl g : {cuda::GemmImpl::cublas, cuda::GemmImpl::tiled}) {
        cuda::set_gemm_impl(g);
        for (const MatmulCase& mc : matmul_cases()) {
            INFO((g == cuda::GemmImpl::cublas ? "cublas" : "tiled")
                 << " " << mc.name << ": a " << shape_str(mc.a) << " b " << shape_str(mc.b));
            const Tensor a_host = test::random_tensor(mc.a, 21), b_host = test::random_tensor(mc.b, 22);
            Tensor ya, ga, gb;
            {
                CpuKernelsGuard naive(CpuKernels::naive);
                Tensor a = a_host.detach().requires_grad_(), b = b_host.detach().requires_grad_();
                ya = matmul(view_as(a, mc.t_a), view_as(b, mc.t_b));
                sum(mul(ya, test::random_tensor(ya.shape(), 23))).backward();
                ga = a.grad(), gb = b.grad();
            }
            // The same values, stored on the GPU in the case's layout.
            auto on_gpu = [&](const Tensor& host) {
                const Tensor d = test::gpu(host);
                if (mc.layout == Layout::transposed) return d.transpose(-1, -2).contiguous().transpose(-1, -2);
                if (mc.layout == Layout::strided) {
                    Shape wide = host.shape();
                    wide.back() *= 2;
                    Tensor view = Tensor::zeros(wide, DType::float32, Device::cuda()).slice(-1, 0, wide.back(), 2);
                    view.copy_(d);
                    return view;
                }
                return d;
            };
            Tensor a = on_gpu(a_host).requires_grad_(), b = on_gpu(b_host).requires_grad_();
            const Tensor y = matmul(view_as(a, mc.t_a), view_as(b, mc.t_b));
            REQUIRE(y.device() == Device::cuda());
            REQUIRE(y.shape() == ya.shape());
            const int64_t k = view_as(a_host, mc.t_a).size(-1);
            REQUIRE_THAT(values(y), AllClose(values(ya)).rtol(kRtol).atol(gemm_atol(k)));
            sum(mul(y, test::gpu(test::random_tensor(y.shape(), 23)))).backward();
            const int64_t len = std::max(y.size(-1), y.numel() / y.size(-1));
            REQUIRE_THAT(values(a.grad()), AllClose(values(ga)).rtol(kRtol).atol(gemm_atol(len)));
            REQUIRE_THAT(values(b.grad()), AllClose(values(gb)).rtol(kRtol).atol(gemm_atol(len)));
        }
    }
}

TEST_CASE("cuda linear matches naive with each GEMM implementation", "[cuda][gemm]") {
    // The baseline CNN's linear layers (batch 64: 8192 -> 256, 256 -> 200) and an odd one; x scaled by
    // 1 / sqrt(in) so y is O(1). Gradients of x, weight and bias.
    SettingsGuard restore;
    struct Case {
        int64_t batch, in, out;
    };
    for (cuda::GemmImpl g : {cuda::GemmImpl::cublas, cuda::GemmImpl::tiled}) {
        cuda::set_gemm_impl(g);
        for (const Case& lc : {Case{64, 8192, 256}, Case{64, 256, 200}, Case{7, 33, 5}}) {
            INFO((g == cuda::GemmImpl::cublas ? "cublas" : "tiled")
                 << ": batch " << lc.batch << " in " << lc.in << " out " << lc.out);
            const Tensor x_host = mul(test::random_tensor({lc.batch, lc.in}, 31), 1.0 / std::sqrt(double(lc.in)));
            const Tensor w_host = test::random_tensor({lc.out, lc.in}, 32);
            const Tensor b_host = test::random_tensor({lc.out}, 33);
            const Tensor dy_host = mul(test::random_tensor({lc.batch, lc.out}, 34), 1.0 / std::sqrt(double(lc.batch)));
            std::vector<double> expect[4];
            {
                CpuKernelsGuard naive(CpuKernels::naive);
                Tensor x = x_host.detach().requires_grad_(), w = w_host.detach().requires_grad_();
                Tensor b = b_host.detach().requires_grad_();
                const Tensor y = linear(x, w, b);
                sum(mul(y, dy_host)).backward();
                expect[0] = values(y), expect[1] = values(x.grad()), expect[2] = values(w.grad());
                expect[3] = values(b.grad());
            }
            Tensor x = test::gpu(x_host).requires_grad_(), w = test::gpu(w_host).requires_grad_();
            Tensor b = test::gpu(b_host).requires_grad_();
            const Tensor y = linear(x, w, b);
            sum(mul(y, test::gpu(dy_host))).backward();
            // dx sums `out` terms of dy * w (w unscaled, dy scaled by 1/sqrt(batch)): O(sqrt(out / batch)).
            const double dx_scale = std::max(1.0, std::sqrt(double(lc.out) / double(lc.batch)));
            REQUIRE_THAT(values(y), AllClose(expect[0]).rtol(kRtol).atol(gemm_atol(lc.in)));
            REQUIRE_THAT(values(x.grad()), AllClose(expect[1]).rtol(kRtol).atol(gemm_atol(lc.out) * dx_scale));
            REQUIRE_THAT(values(w.grad()), AllClose(expect[2]).rtol(kRtol).atol(gemm_atol(lc.batch)));
            REQUIRE_THAT(values(b.grad()), AllClose(expect[3]).rtol(kRtol).atol(gemm_atol(lc.batch)));
        }
    }
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
        REQUIRE_THAT(values(matmul(test::gpu(a), test::gpu(b))), AllClose(values(exact)).rtol(1e-3).atol(1e-2));
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
