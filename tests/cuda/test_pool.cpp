// CUDA pooling kernels against the naive CPU reference, on the case lists of the CPU tests
// (support/pool_cases.h). Every CUDA pooling kernel reproduces naive's float expressions in naive's
// order (max pooling picks elements by naive's rules; the average forwards add in double and round once;
// the backward gathers add the same terms in the same order as naive's scatter), so every comparison here
// is bit-for-bit: values, argmax indices, gradients through autograd, and the accumulate contract of the
// *_bwd kernels called directly on device memory. Ties, NaN and -inf inputs and non-contiguous inputs
// are covered. The fused relu_max_pool2d is also checked against max_pool2d(relu(x)) on the GPU, with
// -0.0 in the data.
#include "support/catch.h"

#include <algorithm>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/pool.h"
#include "support/compare.h"
#include "support/pool_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AdaptiveCase;
using test::count_nan;
using test::cpu;
using test::gpu;
using test::naive_reference;
using test::nan_filled;
using test::require_identical;
using test::same_bits;
using test::WindowCase;

namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) { return test::random_tensor({n}, seed).to_vector<float>(); }

// A flat device copy of v, and a device buffer read back.
Tensor device_floats(const std::vector<float>& v) { return gpu(Tensor::from_vector(v, {int64_t(v.size())})); }
std::vector<float> host_floats(const Tensor& t) { return cpu(t).to_vector<float>(); }

std::string window_str(const Pool2dShape& s) {
    std::ostringstream os;
    os << "x (" << s.n << ", " << s.c << ", " << s.h << ", " << s.w << ") k (" << s.kh << ", " << s.kw << ") stride ("
       << s.stride_h << ", " << s.stride_w << ") pad (" << s.pad_h << ", " << s.pad_w << ") out (" << s.p << ", " << s.q
       << ")";
    return os.str();
}

// The output and the gradient of sum(w * f(x)) for x on the CPU with the naive kernels, and for the same
// x on the GPU: both must be identical.
void require_same_forward_and_gradient(const std::function<Tensor(const Tensor&)>& f, const Tensor& x_cpu,
                                       const Tensor& x_gpu, uint64_t seed) {
    Tensor y_ref, g_ref;
    naive_reference([&] {
        Tensor xl = x_cpu.detach().requires_grad_();
        y_ref = f(xl);
        y_ref.backward(test::random_tensor(y_ref.shape(), seed));
        g_ref = xl.grad();
        return 0;
    });
    Tensor xl = x_gpu.detach().requires_grad_();
    const Tensor y = f(xl);
    REQUIRE(y.device() == Device::cuda());
    y.backward(gpu(test::random_tensor(y.shape(), seed)));
    require_identical(y_ref, cpu(y));
    require_identical(g_ref, cpu(xl.grad()));
}

}  // namespace

TEST_CASE("cuda max_pool2d kernels equal naive bit for bit, ties and NaN included", "[cuda][pool]") {
    cuda::use_device(0);
    uint64_t seed = 1;
    for (const WindowCase& c : test::window_cases()) {
        for (bool specials : {false, true}) {
            const Pool2dShape s = test::window_shape(c);
            INFO(window_str(s) << " specials " << specials);
            const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
            const std::vector<float> x = test::tied_values(nx, seed++, specials);
            // Outputs start as NaN (indices as -1) on both sides: an element left unwritten fails.
            std::vector<float> y0 = nan_filled<float>(ny);
            std::vector<int32_t> i0(static_cast<size_t>(ny), test::kUnwrittenIndex);
            naive::max_pool2d_fwd(s, y0.data(), i0.data(), x.data());
            if (!specials) REQUIRE(count_nan(y0) == 0);
            REQUIRE(std::all_of(i0.begin(), i0.end(), [](int32_t i) { return i >= 0; }));

            const Tensor xd = device_floats(x);
            Tensor yd = test::nan_tensor(ny, Device::cuda());
            Tensor id = Tensor::full({ny}, double(test::kUnwrittenIndex), DType::int32, Device::cuda());
            cuda::max_pool2d_fwd(s, yd.data<float>(), id.data<int32_t>(), xd.data<float>());
            REQUIRE(same_bits(host_floats(yd), y0));
            REQUIRE(cpu(id).to_vector<int32_t>() == i0);
            // Inference: no positions, the same maxima (relu_max_pool2d_fwd too).
            Tensor y_only = test::nan_tensor(ny, Device::cuda()), r_only = test::nan_tensor(ny, Device::cuda());
            cuda::max_pool2d_fwd(s, y_only.data<float>(), nullptr, xd.data<float>());
            REQUIRE(same_bits(host_floats(y_only), y0));
            std::vector<float> r0 = nan_filled<float>(ny);
            naive::relu_max_pool2d_fwd<float>(s, r0.data(), nullptr, x.data());
            cuda::relu_max_pool2d_fwd(s, r_only.data<float>(), nullptr, xd.data<float>());
            REQUIRE(same_bits(host_floats(r_only), r0));

            // Backward into a gradient that already holds values: it must add, as naive does.
            const std::vector<float> dy = random_floats(ny, seed++);
            const std::vector<float> dx_init = random_floats(nx, seed++);
            std::vector<float> dx0 = dx_init;
            naive::max_pool2d_bwd(s, dx0.data(), dy.data(), i0.data());
            const Tensor dyd = device_floats(dy);
            Tensor dxd = device_floats(dx_init);
            cuda::max_pool2d_bwd(s, dxd.data<float>(), dyd.data<float>(), id.data<int32_t>());
            REQUIRE(same_bits(host_floats(dxd), dx0));
        }
    }
}

TEST_CASE("cuda relu_max_pool2d kernels equal naive bit for bit, signed zeros and NaN included", "[cuda][pool]") {
    cuda::use_device(0);
    uint64_t seed = 600;
    for (const WindowCase& c : test::window_cases()) {
        for (bool specials : {false, true}) {
            const Pool2dShape s = test::window_shape(c);
            INFO(window_str(s) << " specials " << specials);
            const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
            const std::vector<float> x = test::signed_zero_tied_values(nx, seed++, specials);
            std::vector<float> y0 = nan_filled<float>(ny);
            std::vector<int32_t> i0(static_cast<size_t>(ny), test::kUnwrittenIndex);
            naive::relu_max_pool2d_fwd(s, y0.data(), i0.data(), x.data());
            if (!specials) REQUIRE(count_nan(y0) == 0);
            REQUIRE(std::all_of(i0.begin(), i0.end(), [](int32_t i) { return i >= 0; }));

            // Outputs start as NaN (indices as -1): an element left unwritten fails.
            const Tensor xd = device_floats(x);
            Tensor yd = test::nan_tensor(ny, Device::cuda());
            Tensor id = Tensor::full({ny}, double(test::kUnwrittenIndex), DType::int32, Device::cuda());
            cuda::relu_max_pool2d_fwd(s, yd.data<float>(), id.data<int32_t>(), xd.data<float>());
            REQUIRE(same_bits(host_floats(yd), y0));
            REQUIRE(cpu(id).to_vector<int32_t>() == i0);

            // Backward into a gradient that already holds values: it must add, as naive does; only outputs
            // > 0 pass their gradient.
            const std::vector<float> dy = random_floats(ny, seed++);
            const std::vector<float> dx_init = random_floats(nx, seed++);
            std::vector<float> dx0 = dx_init;
            naive::relu_max_pool2d_bwd(s, dx0.data(), dy.data(), i0.data(), y0.data());
            const Tensor dyd = device_floats(dy);
            Tensor dxd = device_floats(dx_init);
            cuda::relu_max_pool2d_bwd(s, dxd.data<float>(), dyd.data<float>(), id.data<int32_t>(), yd.data<float>());
            REQUIRE(same_bits(host_floats(dxd), dx0));
        }
    }
}

TEST_CASE("cuda relu_max_pool2d frontend equals naive and max_pool2d of relu on the GPU", "[cuda][pool]") {
    uint64_t seed = 700;
    for (const WindowCase& c : test::window_cases()) {
        for (bool specials : {false, true}) {
            INFO("x " << shape_str(c.x) << " k (" << c.k.h << ", " << c.k.w << ") stride (" << c.s.h << ", " << c.s.w
                      << ") pad (" << c.p.h << ", " << c.p.w << ") specials " << specials);
            const Tensor x =
                Tensor::from_vector(test::signed_zero_tied_values(shape_numel(c.x), seed++, specials), c.x);
            auto fused = [&](const Tensor& t) { return relu_max_pool2d(t, c.k, c.s, c.p); };
            auto pair = [&](const Tensor& t) { return max_pool2d(relu(t), c.k, c.s, c.p); };
            // The GPU against naive on the CPU.
            require_same_forward_and_gradient(fused, x, gpu(x), seed++);
            // The fused op against the pair, both on the GPU: values and the gradient of a weighted sum.
            const Tensor xg = gpu(x);
            Tensor y[2], g[2];
            const std::function<Tensor(const Tensor&)> fns[2] = {pair, fused};
            for (int i = 0; i < 2; i++) {
                Tensor xl = xg.detach().requires_grad_();
                y[i] = fns[i](xl);
                REQUIRE(y[i].device() == Device::cuda());
                y[i].backward(gpu(test::random_tensor(y[i].shape(), seed)));
                g[i] = xl.grad();
            }
            seed++;
            require_identical(cpu(y[0]), cpu(y[1]));
            require_identical(cpu(g[0]), cpu(g[1]));
        }
    }
    // A non-contiguous input.
    const Tensor base = test::random_tensor({3, 5, 11, 9}, 800);
    require_same_forward_and_gradient(
        [](const Tensor& t) {
            return relu_max_pool2d(t, {3, 2}, 2, 1);
        },
        base.transpose(2, 3), gpu(base).transpose(2, 3), 801);
}

TEST_CASE("cuda avg_pool2d kernels equal naive bit for bit, backward accumulates", "[cuda][pool]") {
    cuda::use_device(0);
    uint64_t seed = 100;
    for (const WindowCase& c : test::window_cases()) {
        const Pool2dShape s = test::window_shape(c);
        INFO(window_str(s));
        const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
        const std::vector<float> x = random_floats(nx, seed++);
        std::vector<float> y0 = nan_filled<float>(ny);  // outputs start as NaN on both sides
        naive::avg_pool2d_fwd(s, y0.data(), x.data());
        REQUIRE(count_nan(y0) == 0);
        const Tensor xd = device_floats(x);
        Tensor yd = test::nan_tensor(ny, Device::cuda());
        cuda::avg_pool2d_fwd(s, yd.data<float>(), xd.data<float>());
        REQUIRE(same_bits(host_floats(yd), y0));

        const std::vector<float> dy = random_floats(ny, seed++);
        const std::vector<float> dx_init = random_floats(nx, seed++);
        std::vector<float> dx0 = dx_init;
        naive::avg_pool2d_bwd(s, dx0.data(), dy.data());
        const Tensor dyd = device_floats(dy);
        Tensor dxd = device_floats(dx_init);
        cuda::avg_pool2d_bwd(s, dxd.data<float>(), dyd.data<float>());
        REQUIRE(same_bits(host_floats(dxd), dx0));
    }
}

TEST_CASE("cuda adaptive_avg_pool2d kernels equal naive bit for bit, backward accumulates", "[cuda][pool]") {
    cuda::use_device(0);
    uint64_t seed = 200;
    for (const AdaptiveCase& c : test::adaptive_cases()) {
        Pool2dShape s;
        s.n = c.x[0], s.c = c.x[1], s.h = c.x[2], s.w = c.x[3], s.p = c.out.h, s.q = c.out.w;
        INFO("x " << shape_str(c.x) << " output (" << s.p << ", " << s.q << ")");
        const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
        const std::vector<float> x = random_floats(nx, seed++);
        std::vector<float> y0 = nan_filled<float>(ny);  // outputs start as NaN on both sides
        naive::adaptive_avg_pool2d_fwd(s, y0.data(), x.data());
        REQUIRE(count_nan(y0) == 0);
        const Tensor xd = device_floats(x);
        Tensor yd = test::nan_tensor(ny, Device::cuda());
        cuda::adaptive_avg_pool2d_fwd(s, yd.data<float>(), xd.data<float>());
        REQUIRE(same_bits(host_floats(yd), y0));

        const std::vector<float> dy = random_floats(ny, seed++);
        const std::vector<float> dx_init = random_floats(nx, seed++);
        std::vector<float> dx0 = dx_init;
        naive::adaptive_avg_pool2d_bwd(s, dx0.data(), dy.data());
        const Tensor dyd = device_floats(dy);
        Tensor dxd = device_floats(dx_init);
        cuda::adaptive_avg_pool2d_bwd(s, dxd.data<float>(), dyd.data<float>());
        REQUIRE(same_bits(host_floats(dxd), dx0));
    }
}

TEST_CASE("cuda pooling frontends: outputs and autograd gradients equal naive", "[cuda][pool]") {
    uint64_t seed = 300;
    for (const WindowCase& c : test::window_cases()) {
        INFO("x " << shape_str(c.x) << " k (" << c.k.h << ", " << c.k.w << ") stride (" << c.s.h << ", " << c.s.w
                  << ") pad (" << c.p.h << ", " << c.p.w << ")");
        // Tied values with NaN and -inf for max pooling; normal values for the average.
        const Tensor xt = Tensor::from_vector(test::tied_values(shape_numel(c.x), seed++, true), c.x);
        const Tensor xr = test::random_tensor(c.x, seed++);
        require_same_forward_and_gradient([&](const Tensor& t) { return max_pool2d(t, c.k, c.s, c.p); }, xt, gpu(xt),
                                          seed++);
        require_same_forward_and_gradient([&](const Tensor& t) { return avg_pool2d(t, c.k, c.s, c.p); }, xr, gpu(xr),
                                          seed++);
    }
    for (const AdaptiveCase& c : test::adaptive_cases()) {
        INFO("adaptive x " << shape_str(c.x) << " output (" << c.out.h << ", " << c.out.w << ")");
        const Tensor x = test::random_tensor(c.x, seed++);
        require_same_forward_and_gradient([&](const Tensor& t) { return adaptive_avg_pool2d(t, c.out); }, x, gpu(x),
                                          seed++);
    }
}

TEST_CASE("cuda pooling frontends on non-contiguous inputs equal naive", "[cuda][pool]") {
    // The same transposed view on both devices: (3, 5, 9, 11) viewed from memory laid out (3, 5, 11, 9).
    const Tensor base = test::random_tensor({3, 5, 11, 9}, 400);
    const Tensor x_cpu = base.transpose(2, 3), x_gpu = gpu(base).transpose(2, 3);
    REQUIRE_FALSE(x_gpu.is_contiguous());
    require_same_forward_and_gradient([](const Tensor& t) { return max_pool2d(t, {3, 2}, 2, 1); }, x_cpu, x_gpu, 401);
    require_same_forward_and_gradient([](const Tensor& t) { return avg_pool2d(t, {3, 2}, 2, 1); }, x_cpu, x_gpu, 402);
    require_same_forward_and_gradient(
        [](const Tensor& t) {
            return adaptive_avg_pool2d(t, {4, 5});
        },
        x_cpu, x_gpu, 403);
}

TEST_CASE("cuda pooling on the reference CNN's shapes equals naive", "[cuda][pool]") {
    // The 2x2/2 max pool after the first conv block and the global average pool of the head, batch 8.
    const Tensor x1 = test::random_tensor({8, 32, 64, 64}, 500);
    require_same_forward_and_gradient([](const Tensor& t) { return max_pool2d(t, 2); }, x1, gpu(x1), 501);
    require_same_forward_and_gradient([](const Tensor& t) { return relu_max_pool2d(t, 2); }, x1, gpu(x1), 504);
    const Tensor x2 = test::random_tensor({8, 512, 8, 8}, 502);
    require_same_forward_and_gradient([](const Tensor& t) { return adaptive_avg_pool2d(t, 1); }, x2, gpu(x2), 503);
}
