// The GEMM family's cases and checks, shared by tests/ops/gemm.cpp (every kernel set), the omp thread
// splits in tests/kernels/test_gemm.cpp and the CUDA implementations in tests/cuda/test_gemm.cpp (the
// tiled kernel next to cuBLAS): the kernel-level variants (alpha/beta, padded leading dims, shared
// operands, batches accumulating into one C, NaN in C with beta 0, misaligned starts), the tiled
// kernel's whole and partial tiles, degenerate sizes, and the matmul frontend's operands in every layout
// and transposition, batched and broadcast.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/gemm.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"  // same_layout_on
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/shapes.h"
#include "support/tolerances.h"

namespace dyad::test {

// Operands stored with shape a / b (contiguous, or in `layout`), then viewed transposed when t_a / t_b:
// a 2-D operand with x.t(), a 3-D one with transpose(-1, -2).
struct MatmulCase {
    const char* name;
    Shape a, b;
    bool t_a = false, t_b = false;
    Layout layout = Layout::contiguous;
};

inline Tensor view_as(const Tensor& stored, bool t) {
    if (!t) return stored;
    return stored.dim() == 2 ? stored.t() : stored.transpose(-1, -2);
}

inline const std::vector<MatmulCase>& matmul_cases() {
    static const std::vector<MatmulCase> c = {
        {"2-D", {33, 47}, {47, 29}},
        {"2-D, a.t()", {47, 33}, {47, 29}, true, false},
        {"2-D, b.t() (a linear layer)", {33, 47}, {29, 47}, false, true},
        {"2-D, both .t()", {47, 33}, {29, 47}, true, true},
        {"2-D, transposed memory", {33, 47}, {47, 29}, false, false, Layout::transposed},
        {"2-D, strided (copied)", {33, 47}, {47, 29}, false, false, Layout::strided},
        {"3-D batched", {3, 17, 23}, {3, 23, 19}},
        {"3-D, both transpose(-1, -2)", {3, 23, 17}, {3, 19, 23}, true, true},
        {"3-D, transposed memory", {3, 17, 23}, {3, 23, 19}, false, false, Layout::transposed},
        {"2-D x 3-D", {17, 23}, {3, 23, 19}},
        {"3-D x 2-D (shared weight)", {3, 17, 23}, {23, 19}},
        {"3-D x 2-D.t()", {3, 17, 23}, {19, 23}, false, true},
        {"batch 1 x batch 4", {1, 17, 23}, {4, 23, 19}},
        {"batch 4 x batch 1", {4, 17, 23}, {1, 23, 19}},
        {"vector-like rows and columns", {1, 40}, {40, 1}},
    };
    return c;
}

// ---------------------------------------------------------------------------- kernel-level variants
// How one kernel-level run lays out its operands.
struct GemmVariant {
    const char* name;
    float alpha = 1, beta = 0;
    int64_t batch = 0;                        // 0: the case's own batch
    int64_t pad = 0;                          // extra elements at the end of every row of A, B and C (lda > cols ...)
    bool shared_a = false, shared_b = false;  // batch stride 0
    bool shared_c = false;                    // stride_c 0: batches accumulate into one C (beta 1)
    bool nan_c = false;                       // C starts as NaN (beta must be 0)
    int64_t offset = 0;                       // elements before each operand's start (1: 4 bytes off alignment)
};

// Every case of gemm_cases() runs in these; offset 1 makes every start 4 bytes past a 16-byte boundary
// (the GPU tiled kernel's scalar loads, the CPU's unaligned packing).
inline const std::vector<GemmVariant>& gemm_variants() {
    static const std::vector<GemmVariant> v = {
        {"alpha 1 beta 0, C NaN", 1.0f, 0.0f, 0, 0, false, false, false, true},
        {"alpha 0.5 beta 2, padded rows", 0.5f, 2.0f, 0, 3},
        {"alpha 1.5 beta 0, starts 4 bytes off, C NaN", 1.5f, 0.0f, 0, 0, false, false, false, true, 1},
    };
    return v;
}

// The cheaper cases (all but heavy ones) also run batched: with the case's batch, or 3.
inline const std::vector<GemmVariant>& gemm_batched_variants() {
    static const std::vector<GemmVariant> v = {
        {"batch, A shared, beta 1", 1.0f, 1.0f, 0, 1, true},
        {"batch, B shared, beta 0", 1.5f, 0.0f, 0, 0, false, true},
        {"batch, stride_c 0, beta 1", 1.0f, 1.0f, 0, 2, false, false, true},
    };
    return v;
}

// The 8192-deep and the 300x500x333 cases.
inline bool heavy(const GemmCase& gc) { return gc.batch * gc.m * gc.n * gc.k > (int64_t(1) << 24); }

// Sizes that are multiples of 4 (the GPU tiled kernel's float4 loads and stores) with several 128x128
// tiles and k steps, and one past them (every edge guard), in all four transpose combinations; run in
// gemm_tile_variants().
inline const std::vector<GemmCase>& gemm_tile_cases() {
    static const std::vector<GemmCase> c = [] {
        std::vector<GemmCase> v;
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (const GemmCase& base : {GemmCase{1, 256, 384, 64, ta, tb}, GemmCase{1, 257, 385, 67, ta, tb},
                                             GemmCase{1, 132, 4, 1024, ta, tb}, GemmCase{1, 4, 132, 9, ta, tb}})
                    v.push_back(base);
        return v;
    }();
    return c;
}

inline const std::vector<GemmVariant>& gemm_tile_variants() {
    static const std::vector<GemmVariant> v = {
        {"alpha 1 beta 0, C NaN", 1.0f, 0.0f, 0, 0, false, false, false, true},
        {"batch 3, alpha 0.5 beta 2, rows padded by 4", 0.5f, 2.0f, 3, 4},
        {"batch 3, stride_c 0, beta 1", 1.0f, 1.0f, 3, 0, false, false, true},
    };
    return v;
}

// ---------------------------------------------------------------------------- checks
// A GEMM kernel on device pointers of its set: DYAD_KCALL's gemm, or one CUDA implementation directly.
using GemmFn = std::function<void(const GemmShape&, float, const float*, const float*, float, float*)>;

inline GemmFn gemm_of(const KernelSet& ks) {
    return [ks](const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
        DYAD_KCALL(ks, gemm, s, alpha, a, b, beta, c);
    };
}

inline std::vector<float> gemm_randn(int64_t n, uint64_t seed) {
    manual_seed(seed);
    std::vector<float> v = Tensor::randn({std::max<int64_t>(n, 1)}).to_vector<float>();
    v.resize(size_t(n));
    return v;
}

inline std::vector<double> gemm_to_double(const std::vector<float>& v) {
    return std::vector<double>(v.begin(), v.end());
}

// Runs `gemm` (a kernel of set ks), naive::gemm<float> and naive::gemm<double> on the same float values
// and compares the whole C buffers, padding included (it must be left alone): against naive in float
// and against the exact float64 result, under the dot rule. A is scaled by 1 / sqrt(k) (as a layer
// initialised for unit-variance outputs would) so that C and the partial sums are O(1) for every k; with
// stride_c 0 the batches' products add up, a sum of length batch * k. With nan_c every result must be
// finite (C was written without being read).
inline void check_gemm(const KernelSet& ks, const GemmFn& gemm, const GemmCase& gc, const GemmVariant& v) {
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
    // omp's micro-kernel and thread count decide its blocking: part of the failure message there.
    const std::string omp_split =
        ks.is_cuda() ? std::string()
                     : std::string(", isa ") + omp::gemm_isa() + ", threads " + std::to_string(num_threads());
    INFO(ks.name << ": batch " << s.batch << " m " << s.m << " n " << s.n << " k " << s.k << " trans_a " << s.trans_a
                 << " trans_b " << s.trans_b << " variant " << v.name << omp_split);

    std::vector<float> a = gemm_randn(na, 1);
    const float scale = float(1.0 / std::sqrt(double(std::max<int64_t>(s.k, 1))));
    for (float& x : a) x *= scale;
    const std::vector<float> b = gemm_randn(nb, 2);
    const std::vector<float> c0 =
        v.nan_c ? std::vector<float>(size_t(nc), std::numeric_limits<float>::quiet_NaN()) : gemm_randn(nc, 3);
    std::vector<float> c_naive = c0;
    std::vector<double> c_exact = gemm_to_double(c0);
    naive::gemm<float>(s, v.alpha, a.data(), b.data(), v.beta, c_naive.data());
    naive::gemm<double>(s, v.alpha, gemm_to_double(a).data(), gemm_to_double(b).data(), v.beta, c_exact.data());

    const Tensor da = buffer(ks, a, v.offset), db = buffer(ks, b, v.offset), dc = buffer(ks, c0, v.offset);
    gemm(s, v.alpha, ptr(da) + v.offset, ptr(db) + v.offset, v.beta, ptr(dc) + v.offset);
    const std::vector<float> got = host(dc, v.offset);

    const Tolerance t = tol::dot(ks, v.shared_c ? s.batch * s.k : s.k);
    require_close(c_naive, got, t);
    require_close(c_exact, gemm_to_double(got), t);
    if (v.nan_c)
        for (int64_t p = 0; p < s.batch; p++)
            for (int64_t i = 0; i < s.m; i++)
                for (int64_t j = 0; j < s.n; j++) REQUIRE(std::isfinite(got[size_t(p * s.stride_c + i * s.ldc + j)]));
}

// Degenerate sizes: k = 0 scales C by beta, and with beta 0 writes zeros without reading C (NaN there);
// m = 0, n = 0 or batch 0 leave C alone.
inline void check_gemm_degenerate(const KernelSet& ks, const GemmFn& gemm) {
    GemmShape s;
    s.m = 2, s.n = 3, s.k = 0, s.lda = 1, s.ldb = 3, s.ldc = 3;
    const Tensor one = buffer(ks, std::vector<float>(4, 1.0f));
    Tensor c = buffer(ks, {1, 2, 3, 4, 5, 6});
    gemm(s, 1.0f, ptr(one), ptr(one), 2.0f, ptr(c));
    require_close(std::vector<float>{2, 4, 6, 8, 10, 12}, host(c), tol::same_values(ks));
    c = nan_buffer(ks, 6);
    gemm(s, 1.0f, ptr(one), ptr(one), 0.0f, ptr(c));
    require_close(std::vector<float>(6, 0.0f), host(c), tol::same_values(ks));

    c = buffer(ks, std::vector<float>(6, 7.0f));
    GemmShape e = s;
    e.k = 4, e.m = 0;
    gemm(e, 1.0f, ptr(one), ptr(one), 0.0f, ptr(c));
    e.m = 2, e.n = 0;
    gemm(e, 1.0f, ptr(one), ptr(one), 0.0f, ptr(c));
    e.n = 3, e.batch = 0;
    gemm(e, 1.0f, ptr(one), ptr(one), 0.0f, ptr(c));
    require_close(std::vector<float>(6, 7.0f), host(c), tol::same_values(ks));
}

// matmul of one case on set ks against naive: the operands laid out on the set's device as the case says
// (transposed or strided views there too, so the frontend passes transposes and leading dims straight to
// the kernel), the result's shape and device, its values, and the gradients of both operands (backward
// GEMMs with beta 1, and stride_c 0 for an operand shared across the batch). Unscaled N(0, 1) operands:
// k <= 47 keeps the rounding error well inside the dot rule.
inline void check_matmul(const KernelSet& ks, const MatmulCase& mc) {
    INFO(ks.name << " " << mc.name << ": a " << shape_str(mc.a) << " b " << shape_str(mc.b) << " layout "
                 << layout_name(mc.layout));
    const Tensor a_host = random_tensor(mc.a, 21, mc.layout), b_host = random_tensor(mc.b, 22, mc.layout);
    Tensor ya, ga, gb;
    naive_reference([&] {
        Tensor a = a_host.detach().requires_grad_(), b = b_host.detach().requires_grad_();
        ya = matmul(view_as(a, mc.t_a), view_as(b, mc.t_b));
        sum(mul(ya, random_tensor(ya.shape(), 23))).backward();
        ga = a.grad(), gb = b.grad();
        return 0;
    });
    const int64_t batch = std::max(mc.a.size() == 3 ? mc.a[0] : 1, mc.b.size() == 3 ? mc.b[0] : 1);
    const Tensor av = view_as(a_host, mc.t_a), bv = view_as(b_host, mc.t_b);
    const Shape expect = (mc.a.size() == 3 || mc.b.size() == 3) ? Shape{batch, av.size(-2), bv.size(-1)}
                                                                : Shape{av.size(-2), bv.size(-1)};
    REQUIRE(ya.shape() == expect);

    Tensor a = same_layout_on(a_host, mc.layout, ks.device).requires_grad_();
    Tensor b = same_layout_on(b_host, mc.layout, ks.device).requires_grad_();
    REQUIRE(a.strides() == a_host.strides());
    const Tensor y = matmul(view_as(a, mc.t_a), view_as(b, mc.t_b));
    REQUIRE(y.device() == ks.device);
    REQUIRE(y.shape() == expect);
    require_close(ya, y, tol::dot(ks, av.size(-1)));
    sum(mul(y, on(ks, random_tensor(y.shape(), 23)))).backward();
    // dA sums over n, dB over the batch rows: the longest sum sets the tolerance.
    const int64_t len = std::max(y.size(-1), y.numel() / y.size(-1));
    require_close(ga, a.grad(), tol::dot(ks, len));
    require_close(gb, b.grad(), tol::dot(ks, len));
}

}  // namespace dyad::test
