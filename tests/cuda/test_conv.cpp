// CUDA convolution against the naive CPU reference on every case of the CPU conv tests, with cuDNN and
// with im2col + GEMM (on cuBLAS and on the tiled kernel): the kernels called directly on device pointers
// (forward with and without bias into a NaN-filled y, the fused bias + ReLU forward, backward data and
// backward filter + bias accumulating into pre-filled buffers), conv2d and conv2d_relu through autograd
// (contiguous and non-contiguous x), im2col / col2im on their own, chunked lowering, deterministic mode
// (bit-identical runs), and the per-shape cache (a repeated shape skips the algorithm search and
// allocates nothing).
#include "support/catch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "kernels/cuda/conv_algo.h"  // fail_next, fallbacks
#include "kernels/cuda/runtime.h"
#include "support/compare.h"
#include "support/conv_cases.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::ConvCase;
using test::values;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Which convolution runs on the GPU.
enum class Impl { cudnn, im2col_cublas, im2col_tiled };
const char* impl_name(Impl i) {
    return i == Impl::cudnn ? "cudnn" : i == Impl::im2col_cublas ? "im2col + cublas" : "im2col + tiled";
}
constexpr Impl kImpls[] = {Impl::cudnn, Impl::im2col_cublas, Impl::im2col_tiled};

// Restores every GPU setting a test changes.
struct SettingsGuard {
    cuda::ConvImpl conv = cuda::conv_impl();
    cuda::GemmImpl gemm = cuda::gemm_impl();
    bool det = deterministic();
    Precision prec = precision();
    ~SettingsGuard() {
        cuda::set_conv_impl(conv);
        cuda::set_gemm_impl(gemm);
        set_deterministic(det);
        set_precision(prec);
    }
};

void select(Impl impl) {
    set_precision(Precision::fp32);
    cuda::set_conv_impl(impl == Impl::cudnn ? cuda::ConvImpl::cudnn : cuda::ConvImpl::im2col);
    cuda::set_gemm_impl(impl == Impl::im2col_tiled ? cuda::GemmImpl::tiled : cuda::GemmImpl::cublas);
}

// Tolerance for a float32 sum of `len` terms whose partial sums are of order `mag`. im2col + GEMM in
// strict FP32 differs from naive by summation order only: the CPU conv tests' rtol 1e-5 and atol
// 1e-6 * sqrt(len) (tests/kernels/test_conv.cpp). cuDNN may pick Winograd or FFT algorithms, whose
// transforms add rounding of their own: gpu.h's kGemmRtol / kGemmAtol.
struct Tol {
    double rtol, atol;
};
Tol tol(Impl impl, int64_t len, double mag = 1.0) {
    if (impl == Impl::cudnn) return {test::kGemmRtol, test::kGemmAtol * mag};
    return {1e-5, 1e-6 * std::sqrt(double(std::max<int64_t>(len, 1))) * mag};
}

std::vector<float> randn_floats(int64_t n, uint64_t seed, double scale = 1.0) {
    manual_seed(seed);
    std::vector<float> v = Tensor::randn({std::max<int64_t>(n, 1)}).to_vector<float>();
    v.resize(size_t(n));
    for (float& e : v) e = float(e * scale);
    return v;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

Tensor device(const std::vector<float>& v) { return Tensor::from_vector(v, {int64_t(v.size())}).to(Device::cuda()); }

std::string describe(const ConvCase& cc) {
    return std::string(cc.name) + ": x (" + std::to_string(cc.n) + ", " + std::to_string(cc.c) + ", " +
           std::to_string(cc.h) + ", " + std::to_string(cc.w) + ") w (" + std::to_string(cc.k) + ", " +
           std::to_string(cc.c) + ", " + std::to_string(cc.r) + ", " + std::to_string(cc.s) + ") stride (" +
           std::to_string(cc.stride_h) + ", " + std::to_string(cc.stride_w) + ") pad (" + std::to_string(cc.pad_h) +
           ", " + std::to_string(cc.pad_w) + ")";
}

// The operands of one case and the naive float results of every pass, as the CPU parity test builds them:
// operands scaled so that every result is O(1).
struct Reference {
    Conv2dShape s;
    int64_t nx = 0, nw = 0, ny = 0;
    std::vector<float> x, w_fwd, w_data, bias, dy_data, dy_filter, dx0, dw0, db0;
    std::vector<float> y, y_nobias, dx, dw, db;
};

Reference make_reference(const ConvCase& cc) {
    Reference ref;
    Conv2dShape& s = ref.s;
    s = test::shape_of(cc);
    ref.nx = s.n * s.c * s.h * s.w, ref.nw = s.k * s.c * s.r * s.s, ref.ny = s.n * s.k * s.p * s.q;
    ref.x = randn_floats(ref.nx, 1);
    ref.w_fwd = randn_floats(ref.nw, 2, 1.0 / std::sqrt(double(s.c * s.r * s.s)));
    ref.w_data = randn_floats(ref.nw, 2, 1.0 / std::sqrt(double(s.k * s.r * s.s)));
    ref.bias = randn_floats(s.k, 3);
    ref.dy_data = randn_floats(ref.ny, 4);
    ref.dy_filter = randn_floats(ref.ny, 4, 1.0 / std::sqrt(double(s.n * s.p * s.q)));
    ref.dx0 = randn_floats(ref.nx, 5), ref.dw0 = randn_floats(ref.nw, 6), ref.db0 = randn_floats(s.k, 7);
    ref.y.assign(size_t(ref.ny), kNaN), ref.y_nobias.assign(size_t(ref.ny), kNaN);
    naive::conv2d_fwd<float>(s, ref.y.data(), ref.x.data(), ref.w_fwd.data(), ref.bias.data());
    naive::conv2d_fwd<float>(s, ref.y_nobias.data(), ref.x.data(), ref.w_fwd.data(), nullptr);
    ref.dx = ref.dx0, ref.dw = ref.dw0, ref.db = ref.db0;
    naive::conv2d_bwd_data<float>(s, ref.dx.data(), ref.dy_data.data(), ref.w_data.data());
    naive::conv2d_bwd_filter<float>(s, ref.dw.data(), ref.db.data(), ref.dy_filter.data(), ref.x.data());
    return ref;
}

std::vector<double> relu_of(const std::vector<float>& v) {
    std::vector<double> r(v.size());
    for (size_t i = 0; i < v.size(); i++) r[i] = v[i] < 0.0f ? 0.0 : double(v[i]);
    return r;
}

void check_kernels(Impl impl, const Reference& ref) {
    const Conv2dShape& s = ref.s;
    const int64_t len_fwd = s.c * s.r * s.s, len_data = s.k * s.r * s.s, len_filter = s.n * s.p * s.q;
    cuda::use_device(0);
    const Tensor x = device(ref.x), w_fwd = device(ref.w_fwd), w_data = device(ref.w_data), bias = device(ref.bias);
    const Tensor dy_data = device(ref.dy_data), dy_filter = device(ref.dy_filter);
    {  // forward: y is written without being read (it starts as NaN)
        const Tensor y = device(std::vector<float>(size_t(ref.ny), kNaN));
        cuda::conv2d_fwd(s, y.data<float>(), x.data<float>(), w_fwd.data<float>(), bias.data<float>());
        const Tol t = tol(impl, len_fwd);
        REQUIRE_THAT(values(y), AllClose(to_double(ref.y)).rtol(t.rtol).atol(t.atol));
        const Tensor y2 = device(std::vector<float>(size_t(ref.ny), kNaN));
        cuda::conv2d_fwd(s, y2.data<float>(), x.data<float>(), w_fwd.data<float>(), nullptr);
        REQUIRE_THAT(values(y2), AllClose(to_double(ref.y_nobias)).rtol(t.rtol).atol(t.atol));
        // The fused forward: relu is 1-Lipschitz, so the tolerance carries over; no NaN may leak from y.
        const Tensor y3 = device(std::vector<float>(size_t(ref.ny), kNaN));
        cuda::conv2d_bias_relu_fwd(s, y3.data<float>(), x.data<float>(), w_fwd.data<float>(), bias.data<float>());
        REQUIRE_THAT(values(y3), AllClose(relu_of(ref.y)).rtol(t.rtol).atol(t.atol));
        const Tensor y4 = device(std::vector<float>(size_t(ref.ny), kNaN));
        cuda::conv2d_bias_relu_fwd(s, y4.data<float>(), x.data<float>(), w_fwd.data<float>(), nullptr);
        REQUIRE_THAT(values(y4), AllClose(relu_of(ref.y_nobias)).rtol(t.rtol).atol(t.atol));
    }
    {  // backward data accumulates into dx
        const Tensor dx = device(ref.dx0);
        cuda::conv2d_bwd_data(s, dx.data<float>(), dy_data.data<float>(), w_data.data<float>());
        const Tol t = tol(impl, len_data);
        REQUIRE_THAT(values(dx), AllClose(to_double(ref.dx)).rtol(t.rtol).atol(t.atol));
    }
    {  // backward filter accumulates into dweight and dbias; without dbias, dweight is the same
        const Tensor dw = device(ref.dw0), db = device(ref.db0), dw2 = device(ref.dw0);
        cuda::conv2d_bwd_filter(s, dw.data<float>(), db.data<float>(), dy_filter.data<float>(), x.data<float>());
        cuda::conv2d_bwd_filter(s, dw2.data<float>(), nullptr, dy_filter.data<float>(), x.data<float>());
        const Tol t = tol(impl, len_filter);
        REQUIRE_THAT(values(dw), AllClose(to_double(ref.dw)).rtol(t.rtol).atol(t.atol));
        REQUIRE_THAT(values(dw2), AllClose(to_double(ref.dw)).rtol(t.rtol).atol(t.atol));
        REQUIRE_THAT(values(db), AllClose(to_double(ref.db)).rtol(t.rtol).atol(t.atol));
    }
}

// conv2d (or conv2d_relu) of one case through autograd on the GPU and on the naive CPU kernels: values
// and the gradients of x, weight and bias. x is N(0, 1), the weight scaled by 1 / sqrt(C*R*S) (y is
// O(1)), the loss weights g by 1 / sqrt(N*P*Q) (dweight and dbias are O(1); dx is smaller).
void check_autograd(Impl impl, const ConvCase& cc, bool fused, bool strided_x) {
    const Conv2dShape s = test::shape_of(cc);
    const Size2 stride{cc.stride_h, cc.stride_w}, pad{cc.pad_h, cc.pad_w};
    const Tensor x_host = test::random_tensor({cc.n, cc.c, cc.h, cc.w}, 11);
    const Tensor w_host =
        mul(test::random_tensor({cc.k, cc.c, cc.r, cc.s}, 12), 1.0 / std::sqrt(double(s.c * s.r * s.s)));
    const Tensor b_host = test::random_tensor({cc.k}, 13);
    const Tensor g_host = mul(test::random_tensor({s.n, s.k, s.p, s.q}, 14), 1.0 / std::sqrt(double(s.n * s.p * s.q)));

    // GPU.
    Tensor x = test::gpu(x_host).requires_grad_(), w = test::gpu(w_host).requires_grad_();
    Tensor b = test::gpu(b_host).requires_grad_();
    // A non-contiguous view of the same values: memory holds the transpose of the last two dims.
    const Tensor xin = strided_x ? x.transpose(2, 3).contiguous().transpose(2, 3) : x;
    if (strided_x) REQUIRE_FALSE(xin.is_contiguous());
    const Tensor y = fused ? conv2d_relu(xin, w, b, stride, pad) : conv2d(xin, w, b, stride, pad);
    REQUIRE(y.device() == Device::cuda());
    sum(mul(y, test::gpu(g_host))).backward();
    const std::vector<double> y_gpu = values(y);

    // Naive CPU. For conv2d_relu the reference backward uses the GPU's own mask (y > 0): an output within
    // rounding of 0 could fall on either side of the ReLU, and the gradient would jump there.
    std::vector<double> expect[4];
    {
        CpuKernelsGuard naive(CpuKernels::naive);
        Tensor xr = x_host.detach().requires_grad_(), wr = w_host.detach().requires_grad_();
        Tensor br = b_host.detach().requires_grad_();
        const Tensor z = conv2d(xr, wr, br, stride, pad);
        Tensor g = g_host;
        if (fused) {
            NoGradGuard ng;
            std::vector<float> mask(y_gpu.size());
            for (size_t i = 0; i < mask.size(); i++) mask[i] = y_gpu[i] > 0 ? 1.0f : 0.0f;
            g = mul(g_host, Tensor::from_vector(mask, g_host.shape()));
        }
        sum(mul(z, g)).backward();
        expect[0] = fused ? relu_of(z.detach().contiguous().to_vector<float>()) : values(z);
        expect[1] = values(xr.grad()), expect[2] = values(wr.grad()), expect[3] = values(br.grad());
    }
    const Tol ty = tol(impl, s.c * s.r * s.s), tdx = tol(impl, s.k * s.r * s.s), tdw = tol(impl, s.n * s.p * s.q);
    REQUIRE_THAT(y_gpu, AllClose(expect[0]).rtol(ty.rtol).atol(ty.atol));
    if (fused)
        for (double v : y_gpu) REQUIRE(v >= 0.0);
    REQUIRE_THAT(values(x.grad()), AllClose(expect[1]).rtol(tdx.rtol).atol(tdx.atol));
    REQUIRE_THAT(values(w.grad()), AllClose(expect[2]).rtol(tdw.rtol).atol(tdw.atol));
    REQUIRE_THAT(values(b.grad()), AllClose(expect[3]).rtol(tdw.rtol).atol(tdw.atol));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// ---------------------------------------------------------------------------- kernels
TEST_CASE("cuda conv2d kernels match naive on the shared cases", "[cuda][conv]") {
    SettingsGuard restore;
    for (const ConvCase& cc : test::conv_cases()) {
        const Reference ref = make_reference(cc);
        for (Impl impl : kImpls) {
            select(impl);
            INFO(impl_name(impl) << " " << describe(cc));
            check_kernels(impl, ref);
        }
    }
}

TEST_CASE("cuda im2col lowering spans several chunks of images", "[cuda][conv]") {
    // One image's column matrix is 576 x 16384 floats (36 MiB): more than half the lowering budget, so
    // each image is a chunk of its own and the three images take three rounds.
    SettingsGuard restore;
    const ConvCase cc = {"3 chunks", 3, 64, 128, 128, 8, 3, 3, 1, 1, 1, 1};
    const Reference ref = make_reference(cc);
    for (Impl impl : {Impl::im2col_cublas, Impl::im2col_tiled}) {
        select(impl);
        INFO(impl_name(impl));
        check_kernels(impl, ref);
    }
}

TEST_CASE("cuda im2col and col2im on their own", "[cuda][conv]") {
    // im2col copies (exactly, zeros in the padding); col2im adds every column entry back where it came
    // from, onto what dx held.
    cuda::use_device(0);
    for (const ConvCase& cc : test::conv_cases()) {
        INFO(describe(cc));
        const Conv2dShape s = test::shape_of(cc);
        const int64_t chw = s.c * s.h * s.w, crs = s.c * s.r * s.s, pq = s.p * s.q;
        const std::vector<float> x = randn_floats(chw, 21), col_in = randn_floats(crs * pq, 22);
        const std::vector<float> dx0 = randn_floats(chw, 23);
        std::vector<float> col(size_t(crs * pq));
        std::vector<double> dx = to_double(dx0);
        for (int64_t c = 0; c < s.c; c++)
            for (int64_t r = 0; r < s.r; r++)
                for (int64_t t = 0; t < s.s; t++)
                    for (int64_t oh = 0; oh < s.p; oh++)
                        for (int64_t ow = 0; ow < s.q; ow++) {
                            const int64_t row = (c * s.r + r) * s.s + t, ih = oh * s.stride_h - s.pad_h + r,
                                          iw = ow * s.stride_w - s.pad_w + t;
                            const bool in = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
                            col[size_t(row * pq + oh * s.q + ow)] = in ? x[size_t((c * s.h + ih) * s.w + iw)] : 0.0f;
                            if (in) dx[size_t((c * s.h + ih) * s.w + iw)] += col_in[size_t(row * pq + oh * s.q + ow)];
                        }
        const Tensor dxd = device(x), dcol = device(std::vector<float>(size_t(crs * pq), kNaN));
        cuda::im2col(s, dcol.data<float>(), dxd.data<float>());
        REQUIRE(test::same_bits(dcol.to_vector<float>(), col));
        const Tensor ddx = device(dx0), dcol_in = device(col_in);
        cuda::col2im(s, ddx.data<float>(), dcol_in.data<float>());
        // At most R*S + 1 terms per element, in float against double.
        REQUIRE_THAT(values(ddx), AllClose(dx).rtol(1e-6).atol(1e-6 * double(s.r * s.s)));
    }
}

// ---------------------------------------------------------------------------- autograd
TEST_CASE("cuda conv2d through autograd matches naive", "[cuda][conv]") {
    SettingsGuard restore;
    for (Impl impl : kImpls) {
        select(impl);
        int i = 0;
        for (const ConvCase& cc : test::conv_cases()) {
            const bool strided = (i++ % 2) == 1;
            INFO(impl_name(impl) << " " << describe(cc) << (strided ? ", non-contiguous x" : ""));
            check_autograd(impl, cc, false, strided);
        }
    }
}

TEST_CASE("cuda conv2d_relu through autograd matches naive relu of conv2d", "[cuda][conv]") {
    SettingsGuard restore;
    for (Impl impl : kImpls) {
        select(impl);
        int i = 0;
        for (const ConvCase& cc : test::conv_cases()) {
            const bool strided = (i++ % 2) == 0;
            INFO(impl_name(impl) << " " << describe(cc) << (strided ? ", non-contiguous x" : ""));
            check_autograd(impl, cc, true, strided);
        }
    }
}

TEST_CASE("cuda conv2d_relu without a bias", "[cuda][conv]") {
    SettingsGuard restore;
    for (Impl impl : kImpls) {
        select(impl);
        INFO(impl_name(impl));
        const Tensor x = test::random_tensor({3, 4, 9, 8}, 31);
        const Tensor w = mul(test::random_tensor({5, 4, 3, 3}, 32), 1.0 / 6.0);
        const Tensor expect = test::naive_reference([&] { return relu(conv2d(x, w, Tensor(), 1, 1)); });
        const Tol t = tol(impl, 36);
        REQUIRE_THAT(values(conv2d_relu(test::gpu(x), test::gpu(w), Tensor(), 1, 1)),
                     AllClose(values(expect)).rtol(t.rtol).atol(t.atol));
    }
}

// ---------------------------------------------------------------------------- determinism and cache
TEST_CASE("cuda conv2d in deterministic mode gives the same bits twice", "[cuda][conv]") {
    // Forward, backward data, backward filter and bias, twice from the same inputs: bit-identical, with
    // cuDNN limited to deterministic algorithms, and with im2col (always deterministic).
    SettingsGuard restore;
    const std::vector<ConvCase> cases = {
        {"conv2-like", 16, 32, 32, 32, 64, 3, 3, 1, 1, 1, 1},
        {"conv3-like", 16, 64, 16, 16, 128, 3, 3, 1, 1, 1, 1},
        {"stride 2, 5x5", 8, 16, 31, 29, 24, 5, 5, 2, 2, 2, 2},
    };
    for (Impl impl : kImpls) {
        select(impl);
        set_deterministic(true);
        for (const ConvCase& cc : cases) {
            INFO(impl_name(impl) << " " << describe(cc));
            std::vector<float> runs[2][4];
            for (int run = 0; run < 2; run++) {
                Tensor x = test::gpu(test::random_tensor({cc.n, cc.c, cc.h, cc.w}, 41)).requires_grad_();
                Tensor w = test::gpu(test::random_tensor({cc.k, cc.c, cc.r, cc.s}, 42)).requires_grad_();
                Tensor b = test::gpu(test::random_tensor({cc.k}, 43)).requires_grad_();
                const Tensor y = conv2d(x, w, b, {cc.stride_h, cc.stride_w}, {cc.pad_h, cc.pad_w});
                sum(mul(y, test::gpu(test::random_tensor(y.shape(), 44)))).backward();
                runs[run][0] = y.detach().to_vector<float>(), runs[run][1] = x.grad().to_vector<float>();
                runs[run][2] = w.grad().to_vector<float>(), runs[run][3] = b.grad().to_vector<float>();
            }
            for (int i = 0; i < 4; i++) REQUIRE(test::same_bits(runs[0][i], runs[1][i]));
        }
    }
}

TEST_CASE("cuda conv2d caches its plan per shape", "[cuda][conv]") {
    // The first call of a shape (under these settings) builds its descriptors and searches cuDNN's
    // algorithms, timing every candidate; later calls reuse both: they are faster than the first, give
    // the same bits, and allocate nothing (the workspace is reused).
    SettingsGuard restore;
    select(Impl::cudnn);
    set_deterministic(true);
    cuda::use_device(0);
    const ConvCase cc = {"a shape no other test uses", 12, 24, 27, 25, 40, 3, 3, 1, 1, 1, 1};
    const Conv2dShape s = test::shape_of(cc);
    const Tensor x = device(randn_floats(s.n * s.c * s.h * s.w, 51));
    const Tensor w = device(randn_floats(s.k * s.c * s.r * s.s, 52, 1.0 / std::sqrt(double(s.c * s.r * s.s))));
    const Tensor y1 = Tensor::empty({s.n * s.k * s.p * s.q}, DType::float32, Device::cuda());
    const Tensor y2 = Tensor::empty({s.n * s.k * s.p * s.q}, DType::float32, Device::cuda());
    synchronize();

    auto t0 = std::chrono::steady_clock::now();
    cuda::conv2d_fwd(s, y1.data<float>(), x.data<float>(), w.data<float>(), nullptr);
    synchronize();
    const double first = seconds_since(t0);

    const size_t allocations = cuda::memory_stats().allocations;
    t0 = std::chrono::steady_clock::now();
    cuda::conv2d_fwd(s, y2.data<float>(), x.data<float>(), w.data<float>(), nullptr);
    synchronize();
    const double second = seconds_since(t0);
    INFO("first call " << first * 1e3 << " ms, second " << second * 1e3 << " ms");
    REQUIRE(second < first);
    REQUIRE(cuda::memory_stats().allocations == allocations);
    REQUIRE(test::same_bits(y1.to_vector<float>(), y2.to_vector<float>()));
}

// ---------------------------------------------------------------------------- fallbacks
TEST_CASE("cuda conv2d runs the next algorithm, then im2col, when cuDNN refuses one at execution", "[cuda][conv]") {
    // conv_algo::fail_next(n) makes the next n execution attempts report CUDNN_STATUS_NOT_SUPPORTED, as an
    // algorithm that Find timed does when later pointers are misaligned for it or its workspace cannot be
    // had. Every call (forward, fused bias + ReLU, backward data, backward filter) must still give naive's
    // results, first from the next algorithm, then (all refused) from im2col.
    SettingsGuard restore;
    struct Reset {
        ~Reset() { cuda::conv_algo::fail_next(0); }
    } reset;
    select(Impl::cudnn);
    const std::vector<ConvCase> cases = {
        {"fallback 3x3 pad 1", 3, 5, 13, 11, 7, 3, 3, 1, 1, 1, 1},
        {"fallback 1x1", 4, 6, 9, 7, 5, 1, 1},
    };
    for (const ConvCase& cc : cases) {
        const Reference ref = make_reference(cc);
        check_kernels(Impl::cudnn, ref);  // searches the algorithms of every pass first
        const Conv2dShape& s = ref.s;
        cuda::use_device(0);
        {
            INFO(describe(cc) << ": the first algorithm refused");
            const size_t before = cuda::conv_algo::fallbacks();
            const Tensor x = device(ref.x), w = device(ref.w_fwd), b = device(ref.bias);
            const Tensor y = device(std::vector<float>(size_t(ref.ny), kNaN));
            cuda::conv_algo::fail_next(1);
            cuda::conv2d_fwd(s, y.data<float>(), x.data<float>(), w.data<float>(), b.data<float>());
            const Tol t = tol(Impl::cudnn, s.c * s.r * s.s);
            REQUIRE_THAT(values(y), AllClose(to_double(ref.y)).rtol(t.rtol).atol(t.atol));
            REQUIRE(cuda::conv_algo::fallbacks() == before + 1);
            const Tensor dx = device(ref.dx0), wd = device(ref.w_data), dy = device(ref.dy_data);
            cuda::conv_algo::fail_next(1);
            cuda::conv2d_bwd_data(s, dx.data<float>(), dy.data<float>(), wd.data<float>());
            const Tol td = tol(Impl::cudnn, s.k * s.r * s.s);
            REQUIRE_THAT(values(dx), AllClose(to_double(ref.dx)).rtol(td.rtol).atol(td.atol));
            REQUIRE(cuda::conv_algo::fallbacks() == before + 2);
            const Tensor dw = device(ref.dw0), db = device(ref.db0), dyf = device(ref.dy_filter);
            cuda::conv_algo::fail_next(1);
            cuda::conv2d_bwd_filter(s, dw.data<float>(), db.data<float>(), dyf.data<float>(), x.data<float>());
            const Tol tf = tol(Impl::cudnn, s.n * s.p * s.q);
            REQUIRE_THAT(values(dw), AllClose(to_double(ref.dw)).rtol(tf.rtol).atol(tf.atol));
            REQUIRE_THAT(values(db), AllClose(to_double(ref.db)).rtol(tf.rtol).atol(tf.atol));
            REQUIRE(cuda::conv_algo::fallbacks() == before + 3);
        }
        {
            INFO(describe(cc) << ": every algorithm refused, im2col computes everything");
            const size_t before = cuda::conv_algo::fallbacks();
            cuda::conv_algo::fail_next(1000000);
            check_kernels(Impl::cudnn, ref);  // 7 calls, each refused at least once
            cuda::conv_algo::fail_next(0);
            REQUIRE(cuda::conv_algo::fallbacks() >= before + 7);
        }
        check_kernels(Impl::cudnn, ref);  // and cuDNN runs again once nothing is refused
    }
}

TEST_CASE("cuda conv2d kernels with no input channels write the bias, as naive does", "[cuda][conv]") {
    Conv2dShape s;
    s.n = 2, s.c = 0, s.h = 5, s.w = 4, s.k = 3, s.r = 3, s.s = 3, s.p = 3, s.q = 2;
    const int64_t ny = s.n * s.k * s.p * s.q;
    const std::vector<float> bias = {0.5f, -1.25f, 2.0f}, dy = randn_floats(ny, 7), db0 = {1.0f, 2.0f, 3.0f};
    std::vector<float> want_y(size_t(ny), kNaN), want_relu(size_t(ny), kNaN), want_db = db0;
    naive::conv2d_fwd<float>(s, want_y.data(), nullptr, nullptr, bias.data());
    naive::conv2d_bwd_filter<float>(s, nullptr, want_db.data(), dy.data(), nullptr);
    cuda::use_device(0);
    const Tensor b = device(bias), g = device(dy), db = device(db0);
    const Tensor y = device(std::vector<float>(size_t(ny), kNaN)),
                 y_relu = device(std::vector<float>(size_t(ny), kNaN));
    cuda::conv2d_fwd(s, y.data<float>(), nullptr, nullptr, b.data<float>());
    cuda::conv2d_bias_relu_fwd(s, y_relu.data<float>(), nullptr, nullptr, b.data<float>());
    cuda::conv2d_bwd_filter(s, nullptr, db.data<float>(), g.data<float>(), nullptr);
    REQUIRE_THAT(values(y), AllClose(to_double(want_y)).rtol(0).atol(0));
    REQUIRE_THAT(values(y_relu), AllClose(relu_of(want_y)).rtol(0).atol(0));
    // 12 terms per channel, summed in another order: a few ulp.
    REQUIRE_THAT(values(db), AllClose(to_double(want_db)).rtol(1e-6).atol(1e-6));
}
