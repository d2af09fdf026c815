// The CUDA convolution's implementation choices against the naive CPU reference: im2col + GEMM (on
// cuBLAS and on the tiled kernel) on every check that tests/ops/conv.cpp runs on cuDNN (the default):
// the kernels on the shared cases, conv2d and conv2d_relu through autograd, deterministic runs; chunked
// lowering, im2col / col2im on their own, cuDNN's per-shape cache (a repeated shape skips the algorithm
// search and allocates nothing) and its fallbacks when an algorithm is refused at execution. The same for
// channels_last operands (NHWC x, y and gradients, KRSC weights; cuDNN runs them in tests/ops/conv.cpp):
// im2col's NHWC kernels and GEMMs on the shared cases and across chunks, the NHWC im2col / col2im on
// their own, separate cuDNN plans for an NCHW and an NHWC convolution of the same sizes, and the
// fallbacks from cuDNN's NHWC algorithms (the fused bias + ReLU included) to im2col.
#include "support/catch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/conv.h"
#include "kernels/cuda/conv_algo.h"  // fail_next, fallbacks
#include "kernels/cuda/runtime.h"
#include "support/compare.h"
#include "support/conv_cases.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/tolerances.h"

using namespace dyad;
using test::AllClose;
using test::ConvCase;
using test::values;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// The cuda kernel set (dyad_cuda_tests holds only it).
const test::KernelSet& cuda_set() { return test::kernel_sets().front(); }

// Which convolution runs on the GPU.
enum class Impl { cudnn, im2col_cublas, im2col_tiled };
const char* impl_name(Impl i) {
    return i == Impl::cudnn ? "cudnn" : i == Impl::im2col_cublas ? "im2col + cublas" : "im2col + tiled";
}
constexpr Impl kIm2col[] = {Impl::im2col_cublas, Impl::im2col_tiled};

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

// The tolerance of an implementation for a result of `len` terms: cuDNN's row of the table (Winograd
// and FFT algorithms round on their own), the dot rule for im2col + GEMM in strict FP32 (only the
// summation order differs from naive, as on omp).
test::ConvTol tol_of(Impl impl) {
    if (impl == Impl::cudnn) return [](int64_t len) { return test::tol::conv(cuda_set(), len); };
    return [](int64_t len) { return test::tol::dot(cuda_set(), len); };
}

std::vector<float> randn_floats(int64_t n, uint64_t seed, double scale = 1.0) {
    return test::conv_randn(n, seed, scale);
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

Tensor device(const std::vector<float>& v) { return Tensor::from_vector(v, {int64_t(v.size())}).to(Device::cuda()); }

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// ---------------------------------------------------------------------------- im2col
TEST_CASE("cuda im2col conv2d kernels match naive on the shared cases", "[cuda][conv]") {
    SettingsGuard restore;
    REQUIRE(cuda::conv_impl() == cuda::ConvImpl::cudnn);  // the default, which tests/ops/conv.cpp runs
    for (const ConvCase& cc : test::conv_cases()) {
        const test::ConvReference ref = test::make_conv_reference(cc);
        for (Impl impl : kIm2col) {
            select(impl);
            INFO(impl_name(impl) << " " << test::describe(cc));
            test::check_conv_kernels(cuda_set(), ref, tol_of(impl));
        }
    }
}

TEST_CASE("cuda im2col lowering spans several chunks of images", "[cuda][conv]") {
    // One image's column matrix is 576 x 16384 floats (36 MiB): more than half the lowering budget, so
    // each image is a chunk of its own and the three images take three rounds.
    SettingsGuard restore;
    const ConvCase cc = {"3 chunks", 3, 64, 128, 128, 8, 3, 3, 1, 1, 1, 1};
    const test::ConvReference ref = test::make_conv_reference(cc);
    for (Impl impl : kIm2col) {
        select(impl);
        INFO(impl_name(impl));
        test::check_conv_kernels(cuda_set(), ref, tol_of(impl));
    }
}

TEST_CASE("cuda im2col and col2im on their own", "[cuda][conv]") {
    // im2col copies (exactly, zeros in the padding); col2im adds every column entry back where it came
    // from, onto what dx held.
    cuda::use_device(0);
    for (const ConvCase& cc : test::conv_cases()) {
        INFO(test::describe(cc));
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

// ---------------------------------------------------------------------------- im2col through autograd
TEST_CASE("cuda im2col conv2d through autograd matches naive", "[cuda][conv]") {
    SettingsGuard restore;
    for (Impl impl : kIm2col) {
        select(impl);
        INFO(impl_name(impl));
        int i = 0;
        for (const ConvCase& cc : test::conv_cases())
            test::check_conv_autograd(cuda_set(), cc, false, (i++ % 2) == 1, tol_of(impl));
    }
}

TEST_CASE("cuda im2col conv2d_relu through autograd matches naive relu of conv2d", "[cuda][conv]") {
    SettingsGuard restore;
    for (Impl impl : kIm2col) {
        select(impl);
        INFO(impl_name(impl));
        int i = 0;
        for (const ConvCase& cc : test::conv_cases())
            test::check_conv_autograd(cuda_set(), cc, true, (i++ % 2) == 0, tol_of(impl));
    }
}

TEST_CASE("cuda im2col conv2d_relu without a bias", "[cuda][conv]") {
    SettingsGuard restore;
    for (Impl impl : kIm2col) {
        select(impl);
        INFO(impl_name(impl));
        test::check_conv_relu_no_bias(cuda_set(), tol_of(impl));
    }
}

// ---------------------------------------------------------------------------- determinism and cache
TEST_CASE("cuda im2col conv2d in deterministic mode gives the same bits twice", "[cuda][conv]") {
    // im2col is deterministic always; cuDNN limited to deterministic algorithms: tests/ops/conv.cpp.
    SettingsGuard restore;
    for (Impl impl : kIm2col) {
        select(impl);
        INFO(impl_name(impl));
        for (const ConvCase& cc : test::conv_deterministic_cases()) test::check_conv_deterministic(cuda_set(), cc);
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

// A bfloat16 pass cuDNN refuses (or has no algorithm for) runs the float path on widened copies of its
// operands and rounds the results once: the same contract, so the results are naive's bfloat16 ones within
// the float row plus one bfloat16 step (tests/ops/bfloat16.cpp's rule). Both layouts.
TEST_CASE("cuda bfloat16 conv2d falls back to the float path on widened operands", "[cuda][conv][bfloat16]") {
    SettingsGuard restore;
    struct Reset {
        ~Reset() { cuda::conv_algo::fail_next(0); }
    } reset;
    select(Impl::cudnn);
    for (const MemoryFormat f : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
        INFO((f == MemoryFormat::channels_last ? "channels_last" : "NCHW"));
        const Tensor x = test::random_tensor({2, 5, 9, 7}, 1).to(DType::bfloat16).contiguous(f);
        const Tensor w = (test::random_tensor({4, 5, 3, 3}, 2) * (1 / std::sqrt(45.0))).to(DType::bfloat16);
        const Tensor b = test::random_tensor({4}, 3).to(DType::bfloat16);
        const Tensor g = test::random_tensor({2, 4, 9, 7}, 4).to(DType::bfloat16);
        auto run = [&](Device d) {
            const Tensor xl = x.to(d).detach().requires_grad_(), wl = w.to(d).detach().requires_grad_(),
                         bl = b.to(d).detach().requires_grad_();
            const Tensor y = conv2d_relu(xl, wl, bl, 1, 1);
            y.backward(g.to(d).contiguous(y.memory_format()));
            return std::vector<Tensor>{y.detach(), xl.grad(), wl.grad(), bl.grad()};
        };
        const std::vector<Tensor> ref = test::naive_reference([&] { return run(Device::cpu()); });
        const size_t before = cuda::conv_algo::fallbacks();
        cuda::conv_algo::fail_next(1000000);  // every cuDNN algorithm refused, bfloat16 and float alike
        const std::vector<Tensor> got = run(Device::cuda());
        cuda::conv_algo::fail_next(0);
        REQUIRE(cuda::conv_algo::fallbacks() > before);
        for (size_t i = 0; i < ref.size(); i++) {
            INFO("result " << i);
            REQUIRE(got[i].dtype() == DType::bfloat16);
            // One bfloat16 step (2^-7 relative) on top of the float im2col path's own difference: dw sums 126
            // products of order 1 (values up to about 10), which the dot rule puts at about 1e-4.
            test::require_close(ref[i], got[i], {1.0 / 128 + 1e-4, 1e-3});
        }
    }
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
    const test::ConvTol cudnn = tol_of(Impl::cudnn);
    const std::vector<ConvCase> cases = {
        {"fallback 3x3 pad 1", 3, 5, 13, 11, 7, 3, 3, 1, 1, 1, 1},
        {"fallback 1x1", 4, 6, 9, 7, 5, 1, 1},
    };
    for (const ConvCase& cc : cases) {
        const test::ConvReference ref = test::make_conv_reference(cc);
        test::check_conv_kernels(cuda_set(), ref, cudnn);  // searches the algorithms of every pass first
        const Conv2dShape& s = ref.s;
        cuda::use_device(0);
        {
            INFO(test::describe(cc) << ": the first algorithm refused");
            const size_t before = cuda::conv_algo::fallbacks();
            const Tensor x = device(ref.x), w = device(ref.w_fwd), b = device(ref.bias);
            const Tensor y = device(std::vector<float>(size_t(ref.ny), kNaN));
            cuda::conv_algo::fail_next(1);
            cuda::conv2d_fwd(s, y.data<float>(), x.data<float>(), w.data<float>(), b.data<float>());
            test::require_close(ref.y, test::host(y), cudnn(s.c * s.r * s.s));
            REQUIRE(cuda::conv_algo::fallbacks() == before + 1);
            const Tensor dx = device(ref.dx0), wd = device(ref.w_data), dy = device(ref.dy_data);
            cuda::conv_algo::fail_next(1);
            cuda::conv2d_bwd_data(s, dx.data<float>(), dy.data<float>(), wd.data<float>());
            test::require_close(ref.dx, test::host(dx), cudnn(s.k * s.r * s.s));
            REQUIRE(cuda::conv_algo::fallbacks() == before + 2);
            const Tensor dw = device(ref.dw0), db = device(ref.db0), dyf = device(ref.dy_filter);
            cuda::conv_algo::fail_next(1);
            cuda::conv2d_bwd_filter(s, dw.data<float>(), db.data<float>(), dyf.data<float>(), x.data<float>());
            test::require_close(ref.dw, test::host(dw), cudnn(s.n * s.p * s.q));
            test::require_close(ref.db, test::host(db), cudnn(s.n * s.p * s.q));
            REQUIRE(cuda::conv_algo::fallbacks() == before + 3);
        }
        {
            INFO(test::describe(cc) << ": every algorithm refused, im2col computes everything");
            const size_t before = cuda::conv_algo::fallbacks();
            cuda::conv_algo::fail_next(1000000);
            // 7 calls in the default mode, each refused at least once (and 2 more in deterministic mode).
            test::check_conv_kernels(cuda_set(), ref, cudnn);
            cuda::conv_algo::fail_next(0);
            REQUIRE(cuda::conv_algo::fallbacks() >= before + 7);
        }
        test::check_conv_kernels(cuda_set(), ref, cudnn);  // and cuDNN runs again once nothing is refused
    }
}

// ---------------------------------------------------------------------------- channels_last
TEST_CASE("cuda im2col conv2d kernels match naive on channels_last operands", "[cuda][conv][channels_last]") {
    // The shared cases (stride 2, padding, 1x1 with and without lowering, 3x3, 5x3, 7x7, non-square
    // images and kernels) and the 3x3 stride-1 ones, NHWC against naive in NHWC: forward with and without
    // bias, the fused bias + ReLU forward, backward data, backward filter with and without dbias.
    SettingsGuard restore;
    std::vector<ConvCase> cases = test::conv_cases();
    for (const ConvCase& cc : test::winograd_cases()) cases.push_back(cc);
    for (const ConvCase& cc : cases) {
        const test::ConvReference ref = test::make_conv_reference(cc, true);
        for (Impl impl : kIm2col) {
            select(impl);
            INFO(impl_name(impl) << " " << test::describe(cc) << ", channels_last");
            test::check_conv_kernels(cuda_set(), ref, tol_of(impl));
        }
    }
}

TEST_CASE("cuda im2col channels_last lowering spans several chunks of images", "[cuda][conv][channels_last]") {
    // As the NCHW case above: each image's (16384 x 576) column matrix is a chunk of its own.
    SettingsGuard restore;
    const ConvCase cc = {"3 chunks", 3, 64, 128, 128, 8, 3, 3, 1, 1, 1, 1};
    const test::ConvReference ref = test::make_conv_reference(cc, true);
    for (Impl impl : kIm2col) {
        select(impl);
        INFO(impl_name(impl) << ", channels_last");
        test::check_conv_kernels(cuda_set(), ref, tol_of(impl));
    }
}

TEST_CASE("cuda channels_last im2col and col2im on their own", "[cuda][conv][channels_last]") {
    // With channels_last, one image's x is (h, w, c) and its column matrix (p*q, r*s*c): row oh * q + ow,
    // column (r * S + t) * C + c. im2col copies exactly (zeros in the padding); col2im adds every entry
    // back where it came from, onto what dx held.
    cuda::use_device(0);
    for (const ConvCase& cc : test::conv_cases()) {
        INFO(test::describe(cc) << ", channels_last");
        Conv2dShape s = test::shape_of(cc);
        s.channels_last = true;
        const int64_t hwc = s.h * s.w * s.c, rsc = s.r * s.s * s.c, pq = s.p * s.q;
        const std::vector<float> x = randn_floats(hwc, 24), col_in = randn_floats(pq * rsc, 25);
        const std::vector<float> dx0 = randn_floats(hwc, 26);
        std::vector<float> col(size_t(pq * rsc));
        std::vector<double> dx = to_double(dx0);
        for (int64_t oh = 0; oh < s.p; oh++)
            for (int64_t ow = 0; ow < s.q; ow++)
                for (int64_t r = 0; r < s.r; r++)
                    for (int64_t t = 0; t < s.s; t++)
                        for (int64_t c = 0; c < s.c; c++) {
                            const int64_t at = (oh * s.q + ow) * rsc + (r * s.s + t) * s.c + c;
                            const int64_t ih = oh * s.stride_h - s.pad_h + r, iw = ow * s.stride_w - s.pad_w + t;
                            const bool in = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
                            const int64_t xi = (ih * s.w + iw) * s.c + c;
                            col[size_t(at)] = in ? x[size_t(xi)] : 0.0f;
                            if (in) dx[size_t(xi)] += col_in[size_t(at)];
                        }
        const Tensor dxd = device(x), dcol = device(std::vector<float>(size_t(pq * rsc), kNaN));
        cuda::im2col(s, dcol.data<float>(), dxd.data<float>());
        REQUIRE(test::same_bits(dcol.to_vector<float>(), col));
        const Tensor ddx = device(dx0), dcol_in = device(col_in);
        cuda::col2im(s, ddx.data<float>(), dcol_in.data<float>());
        REQUIRE_THAT(values(ddx), AllClose(dx).rtol(1e-6).atol(1e-6 * double(s.r * s.s)));
    }
}

TEST_CASE("cuda conv2d keeps separate cuDNN plans for NCHW and channels_last", "[cuda][conv][channels_last]") {
    // The same sizes in both layouts, alternating, with the plan of each built on its first call: a plan
    // shared by the two would describe one of them wrongly, and its results would not be naive's.
    SettingsGuard restore;
    select(Impl::cudnn);
    const test::ConvTol cudnn = tol_of(Impl::cudnn);
    const ConvCase cc = {"NCHW and NHWC plans", 3, 6, 11, 9, 7, 3, 3, 2, 1, 1, 1};
    const test::ConvReference nchw = test::make_conv_reference(cc, false);
    const test::ConvReference nhwc = test::make_conv_reference(cc, true);
    for (int round = 0; round < 2; round++) {
        {
            INFO("NCHW, round " << round);
            test::check_conv_kernels(cuda_set(), nchw, cudnn);
        }
        {
            INFO("channels_last, round " << round);
            test::check_conv_kernels(cuda_set(), nhwc, cudnn);
        }
    }
}

TEST_CASE("cuda channels_last conv2d falls back from cuDNN to im2col", "[cuda][conv][channels_last]") {
    // Every cuDNN algorithm refused at execution (conv_algo::fail_next): the NHWC calls, the fused bias +
    // ReLU forward included, run im2col's NHWC path and still give naive's results; then cuDNN again.
    SettingsGuard restore;
    struct Reset {
        ~Reset() { cuda::conv_algo::fail_next(0); }
    } reset;
    select(Impl::cudnn);
    const test::ConvTol cudnn = tol_of(Impl::cudnn);
    const std::vector<ConvCase> cases = {
        {"channels_last fallback 3x3 stride 2 pad 1", 3, 5, 13, 11, 7, 3, 3, 2, 2, 1, 1},
        {"channels_last fallback 1x1", 4, 6, 9, 7, 5, 1, 1},
    };
    for (const ConvCase& cc : cases) {
        INFO(test::describe(cc));
        const test::ConvReference ref = test::make_conv_reference(cc, true);
        // The first run searches the algorithms of every pass. Where cuDNN has no NHWC algorithm for a
        // pass, that pass runs im2col without any refusal, so only the results are required here.
        test::check_conv_kernels(cuda_set(), ref, cudnn);
        cuda::conv_algo::fail_next(1000000);
        test::check_conv_kernels(cuda_set(), ref, cudnn);
        cuda::conv_algo::fail_next(0);
        test::check_conv_kernels(cuda_set(), ref, cudnn);
    }
}
