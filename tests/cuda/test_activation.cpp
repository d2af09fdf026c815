// CUDA relu against the naive CPU kernels: forward and backward on the shared shapes in every layout
// (exact: a compare and a select, or one add, per element), special values, the relu_bwd contract (dx
// untouched where x <= 0), and the float4 and misaligned paths.
#include "support/catch.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "kernels/cuda/runtime.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/random.h"
#include "support/shapes.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::cpu;
using test::gpu;
using test::Layout;
using test::require_identical;
using test::values;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// relu forward and the gradient of a relu of x (a leaf view of x's layout) for upstream gradient dy.
struct Results {
    Tensor y, dx;
};
Results relu_and_grad(const Tensor& x, const Tensor& dy) {
    Tensor xl = x.detach().requires_grad_();
    Tensor y = relu(xl);
    y.backward(dy);
    return {y, xl.grad()};
}

}  // namespace

TEST_CASE("cuda relu forward and backward equal naive on every shape and layout", "[cuda][activation]") {
    for (const Shape& shape : test::unary_shapes()) {
        const Tensor dy = test::random_tensor(shape, 32);
        const Tensor dy_g = gpu(dy);
        for (Layout layout : test::kLayouts) {
            INFO(shape_str(shape) << " " << test::layout_name(layout));
            const Tensor x = test::with_zeros(shape, 31, layout);  // exact +-0 mixed in: the kink is hit
            const Tensor xg = test::same_layout_on(x, layout, Device::cuda());
            REQUIRE(xg.strides() == x.strides());
            const Results expected = test::naive_reference([&] { return relu_and_grad(x, dy); });
            const Results actual = relu_and_grad(xg, dy_g);
            REQUIRE(actual.y.device() == Device::cuda());
            REQUIRE(actual.y.is_contiguous());
            require_identical(expected.y, cpu(actual.y));
            require_identical(expected.dx, cpu(actual.dx));
        }
    }
}

TEST_CASE("cuda relu: NaN stays NaN, infinities, signed zeros", "[cuda][activation]") {
    const Tensor x = test::make({-2, -0.5, 0, -0.0, 0.5, 3, kNaN, -kInf, kInf}, {9}, DType::float32);
    const Tensor y = relu(gpu(x));
    // relu selects: even the NaN's bytes pass through, so the whole result matches byte for byte.
    require_identical(test::naive_reference([&] { return relu(x); }), cpu(y));
    REQUIRE_THAT(values(y), AllClose(std::vector<double>{0, 0, 0, 0, 0.5, 3, kNaN, 0, kInf}));
    REQUIRE(std::signbit(cpu(y).to_vector<float>()[3]));  // relu(-0) is x itself: -0

    Tensor xl = gpu(test::make({-1, -0.0, 0, 1e-30, 2, kNaN}, {6}, DType::float32)).detach().requires_grad_();
    relu(xl).backward(gpu(test::make({10, 20, 30, 40, 50, 60}, {6}, DType::float32)));
    REQUIRE(values(xl.grad()) == std::vector<double>{0, 0, 0, 40, 50, 0});  // NaN > 0 is false
}

TEST_CASE("cuda relu_fwd writes every output element: equal to naive into NaN", "[cuda][activation]") {
    // The kernel directly, at sizes around the float4 width and large ones, exact zeros of both signs.
    cuda::use_device(0);
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(40000), int64_t(100003)}) {
        INFO("n " << n);
        const std::vector<float> x = test::with_zeros({n}, 34, Layout::contiguous).to_vector<float>();
        std::vector<float> y = test::nan_filled<float>(n);
        naive::relu_fwd(y.data(), x.data(), n);
        REQUIRE(test::count_nan(y) == 0);
        const Tensor xg = gpu(Tensor::from_vector(x, {n})), yg = test::nan_tensor(n, Device::cuda());
        cuda::relu_fwd(yg.data<float>(), xg.data<float>(), n);
        REQUIRE(test::same_bits(cpu(yg).to_vector<float>(), y));
    }
}

TEST_CASE("cuda relu_bwd leaves dx bit for bit alone where x <= 0", "[cuda][activation]") {
    // The kernel directly, at sizes around the float4 width and a large one. dy holds inf and NaN also
    // where x <= 0; neither may leak, and dx's -0 must stay -0. Where x > 0, dx + dy is compared by
    // value: a NaN dy gives the GPU's canonical NaN, not dy's payload.
    cuda::use_device(0);
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(40000), int64_t(40003)}) {
        INFO("n " << n);
        const test::ReluBwdData d = test::relu_bwd_data(n);
        std::vector<float> dx_naive = d.dx0;
        naive::relu_bwd(dx_naive.data(), d.dy.data(), d.x.data(), n);
        const Tensor xg = gpu(Tensor::from_vector(d.x, {n})), dyg = gpu(Tensor::from_vector(d.dy, {n}));
        const Tensor dxg = gpu(Tensor::from_vector(d.dx0, {n}));
        cuda::relu_bwd(dxg.data<float>(), dyg.data<float>(), xg.data<float>(), n);
        const std::vector<float> dx_gpu = cpu(dxg).to_vector<float>();
        int64_t changed = 0;
        for (int64_t i = 0; i < n; i++)
            if (!(d.x[size_t(i)] > 0) && std::memcmp(&dx_gpu[size_t(i)], &d.dx0[size_t(i)], sizeof(float)) != 0)
                changed++;
        REQUIRE(changed == 0);
        REQUIRE_THAT(dx_gpu, AllClose(dx_naive));
    }
}

TEST_CASE("cuda relu: float4 path, scalar tail and misaligned views", "[cuda][activation]") {
    // Views starting at element k of a larger tensor: 16-byte aligned for k = 0 and 4, not for 1 and 3.
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(1023), int64_t(65537)}) {
        const Tensor x = test::with_zeros({n + 4}, 33, Layout::contiguous);
        const Tensor dy = test::random_tensor({n + 4}, 34);
        const Tensor xg = gpu(x), dyg = gpu(dy);
        for (int64_t kx : {0, 1, 3, 4}) {
            for (int64_t kd : {0, 1}) {
                INFO("n " << n << " x at " << kx << " dy at " << kd);
                const Tensor xv = x.slice(0, kx, kx + n), dyv = dy.slice(0, kd, kd + n);
                const Tensor xgv = xg.slice(0, kx, kx + n), dygv = dyg.slice(0, kd, kd + n);
                REQUIRE(xgv.is_contiguous());
                const Results expected = test::naive_reference([&] { return relu_and_grad(xv, dyv); });
                const Results actual = relu_and_grad(xgv, dygv);
                require_identical(expected.y, cpu(actual.y));
                require_identical(expected.dx, cpu(actual.dx));
            }
        }
    }
}
