// The convolution family's cases and checks, shared by tests/ops/conv.cpp (every kernel set), the omp
// thread counts in tests/kernels/test_conv.cpp and the CUDA implementations in tests/cuda/test_conv.cpp
// (im2col on cuBLAS and on the tiled GEMM next to cuDNN, the cuDNN fallbacks). Odd sizes throughout,
// every stride/padding corner (taps entirely in the padding, a kernel larger than the input, a stride
// larger than the kernel), 1x1 convolutions and conv3-like layers.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "support/compare.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/tolerances.h"

namespace dyad::test {

struct ConvCase {
    const char* name;
    int64_t n, c, h, w, k, r, s;
    int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

inline Conv2dShape shape_of(const ConvCase& cc) {
    Conv2dShape s;
    s.n = cc.n, s.c = cc.c, s.h = cc.h, s.w = cc.w, s.k = cc.k, s.r = cc.r, s.s = cc.s;
    s.stride_h = cc.stride_h, s.stride_w = cc.stride_w, s.pad_h = cc.pad_h, s.pad_w = cc.pad_w;
    s.p = (s.h + 2 * s.pad_h - s.r) / s.stride_h + 1;
    s.q = (s.w + 2 * s.pad_w - s.s) / s.stride_w + 1;
    return s;
}

// With 2 or 3 threads, batches of 4, 6, 8 and 9 run one image per thread in the omp kernels; 1, 3, 5
// and 7 run the images in turn with the GEMM threaded.
inline const std::vector<ConvCase>& conv_cases() {
    static const std::vector<ConvCase> c = {
        {"C = 1, K = 1, 3x3", 1, 1, 7, 7, 1, 3, 3},
        {"3x3 pad 1", 3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1},
        {"3x3 stride 2 pad 1", 5, 2, 13, 9, 3, 3, 3, 2, 2, 1, 1},
        {"5x3 stride (2, 1) pad (2, 1)", 2, 3, 11, 13, 7, 5, 3, 2, 1, 2, 1},
        {"1x1 (no im2col), N = 7", 7, 5, 9, 7, 3, 1, 1},
        {"1x1 stride 2", 4, 5, 9, 7, 9, 1, 1, 2, 2},
        {"1x1 pad 1", 3, 3, 5, 7, 5, 1, 1, 1, 1, 1, 1},
        {"N = 1", 1, 4, 17, 15, 5, 3, 3, 1, 1, 1, 1},
        {"3x5 stride (1, 2) pad (2, 0), K = 11, N = 9", 9, 3, 15, 17, 11, 3, 5, 1, 2, 2, 0},
        {"C = 1, 7x7 stride 2 pad 3", 4, 1, 33, 31, 5, 7, 7, 2, 2, 3, 3},
        {"kernel as large as the input", 5, 3, 5, 5, 3, 5, 5},
        {"kernel larger than the input, inside the padding", 2, 2, 3, 3, 3, 4, 4, 1, 1, 1, 1},
        {"stride larger than the kernel", 3, 2, 10, 11, 3, 2, 2, 3, 3},
        {"5x5 pad 2 on a 1x1 image: taps entirely in the padding", 3, 2, 1, 1, 3, 5, 5, 1, 1, 2, 2},
        {"5x5 pad 2 on 6x2 images", 2, 2, 6, 2, 3, 5, 5, 1, 1, 2, 2},
        {"padding 2, stride 2, even kernel", 6, 3, 8, 9, 5, 2, 4, 2, 2, 2, 2},
        {"several row chunks per image (conv3-like)", 8, 32, 16, 16, 65, 3, 3, 1, 1, 1, 1},
        {"uneven row chunks", 6, 16, 33, 33, 9, 3, 3, 1, 1, 1, 1},
    };
    return c;
}

// Cases for the Winograd kernels (3x3, stride 1, padding 0-2): every padding, outputs that are not a
// multiple of the tile (partial tiles on the right and bottom), images smaller than one tile, one-column
// images, channel counts that do not fill the 8 lanes, and enough tiles for several blocks.
inline const std::vector<ConvCase>& winograd_cases() {
    static const std::vector<ConvCase> c = {
        {"Winograd: C = 1, K = 1, pad 0", 1, 1, 7, 7, 1, 3, 3},
        {"Winograd: pad 1, 9x11", 3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1},
        {"Winograd: pad 0, 13x10", 2, 5, 13, 10, 7, 3, 3},
        {"Winograd: pad 2", 2, 5, 7, 9, 6, 3, 3, 1, 1, 2, 2},
        {"Winograd: pad (2, 0)", 3, 4, 8, 11, 5, 3, 3, 1, 1, 2, 0},
        {"Winograd: one-column images", 4, 9, 5, 1, 3, 3, 3, 1, 1, 1, 1},
        {"Winograd: a 3x3 image, pad 2 (5x5 out, smaller than a tile)", 1, 3, 3, 3, 2, 3, 3, 1, 1, 2, 2},
        {"Winograd: 37 -> 19 channels", 2, 37, 10, 12, 19, 3, 3, 1, 1, 1, 1},
        {"Winograd: several blocks of tiles", 9, 17, 15, 17, 11, 3, 3, 1, 1, 1, 1},
    };
    return c;
}

// Selects the omp kernels' 3x3 convolution algorithm for a scope.
class CpuConvScope {
public:
    explicit CpuConvScope(CpuConvAlgorithm a) : was_(cpu_conv_algorithm()) { set_cpu_conv_algorithm(a); }
    ~CpuConvScope() { set_cpu_conv_algorithm(was_); }
    CpuConvScope(const CpuConvScope&) = delete;
    CpuConvScope& operator=(const CpuConvScope&) = delete;

private:
    CpuConvAlgorithm was_;
};

inline std::string describe(const ConvCase& cc) {
    return std::string(cc.name) + ": x (" + std::to_string(cc.n) + ", " + std::to_string(cc.c) + ", " +
           std::to_string(cc.h) + ", " + std::to_string(cc.w) + ") w (" + std::to_string(cc.k) + ", " +
           std::to_string(cc.c) + ", " + std::to_string(cc.r) + ", " + std::to_string(cc.s) + ") stride (" +
           std::to_string(cc.stride_h) + ", " + std::to_string(cc.stride_w) + ") pad (" + std::to_string(cc.pad_h) +
           ", " + std::to_string(cc.pad_w) + ")";
}

// ---------------------------------------------------------------------------- kernels of a set
// conv2d_bias_relu_fwd of set ks: CUDA's fused kernel, or on omp what conv2d_relu runs on the CPU,
// the forward kernel and relu in place.
inline void conv2d_bias_relu_fwd(const KernelSet& ks, const Conv2dShape& s, float* y, const float* x,
                                 const float* weight, const float* bias) {
    if (ks.is_cuda()) {
#if DYAD_WITH_CUDA
        cuda::use_device(0);
        cuda::conv2d_bias_relu_fwd(s, y, x, weight, bias);
#else
        FAIL("a cuda kernel set in a build without CUDA");
#endif
    } else {
        omp::conv2d_fwd(s, y, x, weight, bias);
        omp::relu_fwd(y, y, s.n * s.k * s.p * s.q);
    }
}

// Selects deterministic mode for a scope. The CPU kernels are deterministic always; on the GPU only
// deterministic mode promises the same bits from run to run (cuDNN's other algorithms may add in any
// order), which checks that compare two runs bit for bit, or one run with a second one plus a known
// term, need.
class DeterministicScope {
public:
    DeterministicScope() : was_(deterministic()) { set_deterministic(true); }
    ~DeterministicScope() { set_deterministic(was_); }
    DeterministicScope(const DeterministicScope&) = delete;
    DeterministicScope& operator=(const DeterministicScope&) = delete;

private:
    bool was_;
};

// The tolerance a check uses for a result summing `len` terms: tol::conv for a set's own convolution,
// tol::dot for CUDA's im2col + GEMM.
using ConvTol = std::function<Tolerance(int64_t len)>;

inline std::vector<float> conv_randn(int64_t n, uint64_t seed, double scale = 1.0) {
    manual_seed(seed);
    std::vector<float> v = Tensor::randn({std::max<int64_t>(n, 1)}).to_vector<float>();
    v.resize(size_t(n));
    for (float& e : v) e = float(e * scale);
    return v;
}

inline std::vector<double> conv_to_double(const std::vector<float>& v) {
    return std::vector<double>(v.begin(), v.end());
}

inline std::vector<float> relu_of(const std::vector<float>& v) {
    std::vector<float> r(v.size());
    for (size_t i = 0; i < v.size(); i++) r[i] = v[i] < 0.0f ? 0.0f : v[i];
    return r;
}

inline std::vector<double> relu_of(const std::vector<double>& v) {
    std::vector<double> r(v.size());
    for (size_t i = 0; i < v.size(); i++) r[i] = v[i] < 0.0 ? 0.0 : v[i];
    return r;
}

// ---------------------------------------------------------------------------- kernel parity
// The operands of one case and the naive results (float and float64) of every pass. The operands are
// scaled so that every result is O(1): the weight by 1 / sqrt(terms per output) in forward and backward
// data, dy by 1 / sqrt(N*P*Q) in backward filter. The gradient buffers start with values: the backward
// kernels must add to them. With channels_last every operand is read as NHWC (the weight as KRSC): the
// same random buffers, another logical tensor, and naive computes its reference in that layout.
struct ConvReference {
    Conv2dShape s;
    int64_t nx = 0, nw = 0, ny = 0;
    std::vector<float> x, w_fwd, w_data, bias, dy_data, dy_filter, dx0, dw0, db0;
    std::vector<float> y, y_nobias, dx, dw, db;                                 // naive<float>
    std::vector<double> y_exact, y_nobias_exact, dx_exact, dw_exact, db_exact;  // naive<double>
};

inline ConvReference make_conv_reference(const ConvCase& cc, bool channels_last = false) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    ConvReference ref;
    Conv2dShape& s = ref.s;
    s = shape_of(cc);
    s.channels_last = channels_last;
    ref.nx = s.n * s.c * s.h * s.w, ref.nw = s.k * s.c * s.r * s.s, ref.ny = s.n * s.k * s.p * s.q;
    ref.x = conv_randn(ref.nx, 1);
    ref.w_fwd = conv_randn(ref.nw, 2, 1.0 / std::sqrt(double(s.c * s.r * s.s)));
    ref.w_data = conv_randn(ref.nw, 2, 1.0 / std::sqrt(double(s.k * s.r * s.s)));
    ref.bias = conv_randn(s.k, 3);
    ref.dy_data = conv_randn(ref.ny, 4);
    ref.dy_filter = conv_randn(ref.ny, 4, 1.0 / std::sqrt(double(s.n * s.p * s.q)));
    ref.dx0 = conv_randn(ref.nx, 5), ref.dw0 = conv_randn(ref.nw, 6), ref.db0 = conv_randn(s.k, 7);

    ref.y.assign(size_t(ref.ny), nan), ref.y_nobias.assign(size_t(ref.ny), nan);
    naive::conv2d_fwd<float>(s, ref.y.data(), ref.x.data(), ref.w_fwd.data(), ref.bias.data());
    naive::conv2d_fwd<float>(s, ref.y_nobias.data(), ref.x.data(), ref.w_fwd.data(), nullptr);
    ref.dx = ref.dx0, ref.dw = ref.dw0, ref.db = ref.db0;
    naive::conv2d_bwd_data<float>(s, ref.dx.data(), ref.dy_data.data(), ref.w_data.data());
    naive::conv2d_bwd_filter<float>(s, ref.dw.data(), ref.db.data(), ref.dy_filter.data(), ref.x.data());

    const std::vector<double> x = conv_to_double(ref.x), w_fwd = conv_to_double(ref.w_fwd);
    const std::vector<double> w_data = conv_to_double(ref.w_data), bias = conv_to_double(ref.bias);
    ref.y_exact.resize(size_t(ref.ny)), ref.y_nobias_exact.resize(size_t(ref.ny));
    naive::conv2d_fwd<double>(s, ref.y_exact.data(), x.data(), w_fwd.data(), bias.data());
    naive::conv2d_fwd<double>(s, ref.y_nobias_exact.data(), x.data(), w_fwd.data(), nullptr);
    ref.dx_exact = conv_to_double(ref.dx0), ref.dw_exact = conv_to_double(ref.dw0);
    ref.db_exact = conv_to_double(ref.db0);
    naive::conv2d_bwd_data<double>(s, ref.dx_exact.data(), conv_to_double(ref.dy_data).data(), w_data.data());
    naive::conv2d_bwd_filter<double>(s, ref.dw_exact.data(), ref.db_exact.data(), conv_to_double(ref.dy_filter).data(),
                                     x.data());
    return ref;
}

// A float32 result of set ks against the naive float32 and the exact float64 ones.
inline void require_conv_close(const std::vector<float>& naive_f, const std::vector<double>& exact,
                               const std::vector<float>& actual, Tolerance t) {
    require_close(naive_f, actual, t);
    require_close(exact, conv_to_double(actual), t);
}

// The kernels of set ks on one case against naive: the forward with and without bias and the fused bias
// + ReLU forward, each into a y that starts as NaN (written without being read); backward data
// accumulating into a pre-filled dx; backward filter and bias accumulating into pre-filled dweight and
// dbias. Without dbias, dweight is the same; in deterministic mode, the two give the same bits (omp adds
// its threads' partial sums in a fixed order; on the GPU only deterministic mode promises it).
inline void check_conv_kernels(const KernelSet& ks, const ConvReference& ref, const ConvTol& tol) {
    const Conv2dShape& s = ref.s;
    const int64_t len_fwd = s.c * s.r * s.s, len_data = s.k * s.r * s.s, len_filter = s.n * s.p * s.q;
    const Tensor x = buffer(ks, ref.x), w_fwd = buffer(ks, ref.w_fwd), w_data = buffer(ks, ref.w_data);
    const Tensor bias = buffer(ks, ref.bias), dy_data = buffer(ks, ref.dy_data);
    const Tensor dy_filter = buffer(ks, ref.dy_filter);
    {  // forward
        const Tolerance t = tol(len_fwd);
        const Tensor y = nan_buffer(ks, ref.ny), y2 = nan_buffer(ks, ref.ny);
        DYAD_KCALL(ks, conv2d_fwd, s, ptr(y), ptr(x), ptr(w_fwd), ptr(bias));
        require_conv_close(ref.y, ref.y_exact, host(y), t);
        DYAD_KCALL(ks, conv2d_fwd, s, ptr(y2), ptr(x), ptr(w_fwd), nullptr);
        require_conv_close(ref.y_nobias, ref.y_nobias_exact, host(y2), t);
        // The fused forward: relu is 1-Lipschitz, so the tolerance carries over; no NaN may leak from y.
        const Tensor y3 = nan_buffer(ks, ref.ny), y4 = nan_buffer(ks, ref.ny);
        conv2d_bias_relu_fwd(ks, s, ptr(y3), ptr(x), ptr(w_fwd), ptr(bias));
        require_conv_close(relu_of(ref.y), relu_of(ref.y_exact), host(y3), t);
        conv2d_bias_relu_fwd(ks, s, ptr(y4), ptr(x), ptr(w_fwd), nullptr);
        require_conv_close(relu_of(ref.y_nobias), relu_of(ref.y_nobias_exact), host(y4), t);
    }
    {  // backward data accumulates into dx
        const Tensor dx = buffer(ks, ref.dx0);
        DYAD_KCALL(ks, conv2d_bwd_data, s, ptr(dx), ptr(dy_data), ptr(w_data));
        require_conv_close(ref.dx, ref.dx_exact, host(dx), tol(len_data));
    }
    {  // backward filter accumulates into dweight and dbias; without dbias, dweight is the same
        const Tolerance t = tol(len_filter);
        const Tensor dw = buffer(ks, ref.dw0), db = buffer(ks, ref.db0), dw2 = buffer(ks, ref.dw0);
        DYAD_KCALL(ks, conv2d_bwd_filter, s, ptr(dw), ptr(db), ptr(dy_filter), ptr(x));
        DYAD_KCALL(ks, conv2d_bwd_filter, s, ptr(dw2), nullptr, ptr(dy_filter), ptr(x));
        require_conv_close(ref.dw, ref.dw_exact, host(dw), t);
        require_conv_close(ref.dw, ref.dw_exact, host(dw2), t);
        require_conv_close(ref.db, ref.db_exact, host(db), t);
    }
    {  // the same bits with and without dbias, run after run
        DeterministicScope det;
        const Tensor dw = buffer(ks, ref.dw0), db = buffer(ks, ref.db0), dw2 = buffer(ks, ref.dw0);
        DYAD_KCALL(ks, conv2d_bwd_filter, s, ptr(dw), ptr(db), ptr(dy_filter), ptr(x));
        DYAD_KCALL(ks, conv2d_bwd_filter, s, ptr(dw2), nullptr, ptr(dy_filter), ptr(x));
        const std::vector<float> dw_host = host(dw);
        require_conv_close(ref.dw, ref.dw_exact, dw_host, tol(len_filter));
        REQUIRE(same_bits(dw_host, host(dw2)));
    }
}

// ---------------------------------------------------------------------------- autograd parity
// conv2d (or conv2d_relu) of one case through autograd on set ks and on the naive CPU kernels: values
// and the gradients of x, weight and bias. x is N(0, 1), the weight scaled by 1 / sqrt(C*R*S) (y is
// O(1)), the loss weights g by 1 / sqrt(N*P*Q) (dweight and dbias are O(1); dx is smaller). strided_x:
// x is a non-contiguous view on the set's device (memory holds the transpose of the last two dims).
inline void check_conv_autograd(const KernelSet& ks, const ConvCase& cc, bool fused, bool strided_x,
                                const ConvTol& tol) {
    INFO(ks.name << " " << (fused ? "conv2d_relu " : "conv2d ") << describe(cc)
                 << (strided_x ? ", non-contiguous x" : ""));
    const Conv2dShape s = shape_of(cc);
    const Size2 stride{cc.stride_h, cc.stride_w}, pad{cc.pad_h, cc.pad_w};
    const Tensor x_host = random_tensor({cc.n, cc.c, cc.h, cc.w}, 11);
    const Tensor w_host =
        mul(random_tensor({cc.k, cc.c, cc.r, cc.s}, 12), 1.0 / std::sqrt(double(s.c * s.r * s.s))).detach();
    const Tensor b_host = random_tensor({cc.k}, 13);
    const Tensor g_host =
        mul(random_tensor({s.n, s.k, s.p, s.q}, 14), 1.0 / std::sqrt(double(s.n * s.p * s.q))).detach();

    Tensor x = on(ks, x_host).requires_grad_(), w = on(ks, w_host).requires_grad_();
    Tensor b = on(ks, b_host).requires_grad_();
    // A 1-pixel-wide or -high image's transposed copy is contiguous again: there, every other element of
    // a stack of two copies along a new last dim.
    const Tensor xin = !strided_x               ? x
                       : (cc.h > 1 && cc.w > 1) ? x.transpose(2, 3).contiguous().transpose(2, 3)
                                                : stack({x, x}, 4).select(4, 0);
    if (strided_x) REQUIRE_FALSE(xin.is_contiguous());
    const Tensor y = fused ? conv2d_relu(xin, w, b, stride, pad) : conv2d(xin, w, b, stride, pad);
    REQUIRE(y.device() == ks.device);
    sum(mul(y, on(ks, g_host))).backward();
    const std::vector<double> y_set = values(y);

    // Naive. For conv2d_relu the reference backward uses the set's own mask (y > 0): an output within
    // rounding of 0 could fall on either side of the ReLU, and the gradient would jump there.
    std::vector<double> expect[4];
    naive_reference([&] {
        Tensor xr = x_host.detach().requires_grad_(), wr = w_host.detach().requires_grad_();
        Tensor br = b_host.detach().requires_grad_();
        const Tensor z = conv2d(xr, wr, br, stride, pad);
        Tensor g = g_host;
        if (fused) {
            NoGradGuard ng;
            std::vector<float> mask(y_set.size());
            for (size_t i = 0; i < mask.size(); i++) mask[i] = y_set[i] > 0 ? 1.0f : 0.0f;
            g = mul(g_host, Tensor::from_vector(mask, g_host.shape()));
        }
        sum(mul(z, g)).backward();
        expect[0] = fused ? relu_of(values(z)) : values(z);
        expect[1] = values(xr.grad()), expect[2] = values(wr.grad()), expect[3] = values(br.grad());
        return 0;
    });
    require_close(expect[0], y_set, tol(s.c * s.r * s.s));
    if (fused)
        for (double v : y_set) REQUIRE(v >= 0.0);
    require_close(expect[1], values(x.grad()), tol(s.k * s.r * s.s));
    require_close(expect[2], values(w.grad()), tol(s.n * s.p * s.q));
    require_close(expect[3], values(b.grad()), tol(s.n * s.p * s.q));
}

// conv2d_relu without a bias against naive relu(conv2d(...)).
inline void check_conv_relu_no_bias(const KernelSet& ks, const ConvTol& tol) {
    const Tensor x = random_tensor({3, 4, 9, 8}, 31);
    const Tensor w = mul(random_tensor({5, 4, 3, 3}, 32), 1.0 / 6.0).detach();
    const Tensor expect = naive_reference([&] { return relu(conv2d(x, w, Tensor(), 1, 1)); });
    require_close(expect, conv2d_relu(on(ks, x), on(ks, w), Tensor(), 1, 1), tol(36));
}

// ---------------------------------------------------------------------------- determinism
// Cases for the run-to-run check: the CNN's conv2 and conv3 layers and a strided 5x5.
inline const std::vector<ConvCase>& conv_deterministic_cases() {
    static const std::vector<ConvCase> c = {
        {"conv2-like", 16, 32, 32, 32, 64, 3, 3, 1, 1, 1, 1},
        {"conv3-like", 16, 64, 16, 16, 128, 3, 3, 1, 1, 1, 1},
        {"stride 2, 5x5", 8, 16, 31, 29, 24, 5, 5, 2, 2, 2, 2},
    };
    return c;
}

// Forward, backward data, backward filter and bias through autograd, twice from the same inputs in
// deterministic mode: bit-identical.
inline void check_conv_deterministic(const KernelSet& ks, const ConvCase& cc) {
    INFO(ks.name << " " << describe(cc));
    DeterministicScope det;
    std::vector<float> runs[2][4];
    for (int run = 0; run < 2; run++) {
        Tensor x = on(ks, random_tensor({cc.n, cc.c, cc.h, cc.w}, 41)).requires_grad_();
        Tensor w = on(ks, random_tensor({cc.k, cc.c, cc.r, cc.s}, 42)).requires_grad_();
        Tensor b = on(ks, random_tensor({cc.k}, 43)).requires_grad_();
        const Tensor y = conv2d(x, w, b, {cc.stride_h, cc.stride_w}, {cc.pad_h, cc.pad_w});
        sum(mul(y, on(ks, random_tensor(y.shape(), 44)))).backward();
        runs[run][0] = y.detach().to(Device::cpu()).to_vector<float>();
        runs[run][1] = x.grad().to(Device::cpu()).to_vector<float>();
        runs[run][2] = w.grad().to(Device::cpu()).to_vector<float>();
        runs[run][3] = b.grad().to(Device::cpu()).to_vector<float>();
    }
    for (int i = 0; i < 4; i++) REQUIRE(same_bits(runs[0][i], runs[1][i]));
}

}  // namespace dyad::test
