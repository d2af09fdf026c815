// relu on every kernel set against the naive reference: forward and backward through autograd on the
// shared shapes in every layout, special values (NaN, infinities, signed zeros), the relu_fwd kernel
// writing every element, the relu_bwd contract (dx untouched where x <= 0, dy added elsewhere), and
// views starting off the 16-byte alignment (the GPU's float4 path and its scalar tail). Known values in
// float64, gradient checks and errors: tests/kernels/test_activation.cpp.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/kernel_sets.h"
#include "support/random.h"
#include "support/shapes.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::Layout;

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

DYAD_KERNEL_TEST("relu forward and backward equal naive on every shape and layout", "[activation]") {
    for (const Shape& shape : test::unary_shapes()) {
        const Tensor dy = test::random_tensor(shape, 32);
        for (Layout layout : test::kLayouts) {
            INFO(shape_str(shape) << " " << test::layout_name(layout));
            const Tensor x = test::with_zeros(shape, 31, layout);  // exact +-0 mixed in: the kink is hit
            const Tensor xs = test::same_layout_on(x, layout, ks.device);
            REQUIRE(xs.strides() == x.strides());
            const Results expected = test::naive_reference([&] { return relu_and_grad(x, dy); });
            const Results actual = relu_and_grad(xs, test::on(ks, dy));
            REQUIRE(actual.y.device() == ks.device);
            REQUIRE(actual.y.is_contiguous());
            test::require_close(expected.y, actual.y, test::tol::exact(ks));
            test::require_close(expected.dx, actual.dx, test::tol::exact(ks));
        }
    }
}

DYAD_KERNEL_TEST("relu: NaN stays NaN, infinities, signed zeros, the gradient at the kink", "[activation]") {
    const Tensor x = test::make({-2, -0.5, 0, -0.0, 0.5, 3, kNaN, -kInf, kInf}, {9}, DType::float32);
    const Tensor y = relu(test::on(ks, x));
    // relu selects: even the NaN's bytes pass through, so the whole result matches byte for byte.
    test::require_close(test::naive_reference([&] { return relu(x); }), y, test::tol::exact(ks));
    REQUIRE_THAT(test::values(y), test::AllClose(std::vector<double>{0, 0, 0, 0, 0.5, 3, kNaN, 0, kInf}));
    REQUIRE(std::signbit(y.to(Device::cpu()).to_vector<float>()[3]));  // relu(-0) is x itself: -0

    Tensor xl = test::on(ks, test::make({-1, -0.0, 0, 1e-30, 2, kNaN}, {6}, DType::float32)).requires_grad_();
    relu(xl).backward(test::on(ks, test::make({10, 20, 30, 40, 50, 60}, {6}, DType::float32)));
    REQUIRE(test::values(xl.grad()) == std::vector<double>{0, 0, 0, 40, 50, 0});  // NaN > 0 is false
}

DYAD_KERNEL_TEST("relu_fwd writes every element: equal to naive into outputs that start as NaN", "[activation]") {
    // Sizes around the GPU's float4 width, below and over the omp threshold, and SIMD tails; exact zeros
    // of both signs mixed in.
    for (int64_t n :
         {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(7), int64_t(33), int64_t(40000), int64_t(100003)}) {
        INFO("n " << n);
        const std::vector<float> x = test::with_zeros({n}, 34, Layout::contiguous).to_vector<float>();
        std::vector<float> y = test::nan_filled<float>(n);
        naive::relu_fwd(y.data(), x.data(), n);
        REQUIRE(test::count_nan(y) == 0);
        const Tensor xs = test::buffer(ks, x), ys = test::nan_buffer(ks, n);
        DYAD_KCALL(ks, relu_fwd, test::ptr(ys), test::ptr(xs), n);
        test::require_close(y, test::host(ys), test::tol::exact(ks));
    }
}

DYAD_KERNEL_TEST("relu_bwd leaves dx bit for bit alone where x <= 0 and adds dy elsewhere", "[activation]") {
    // dy holds inf and NaN also where x <= 0: neither may leak into dx, and dx's -0 must stay -0 (an added
    // +0 would flip it). Where x > 0, dy is added to what dx held: one float addition per element.
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(40000), int64_t(40003)}) {
        INFO("n " << n);
        const test::ReluBwdData d = test::relu_bwd_data(n);
        std::vector<float> dx_naive = d.dx0;
        naive::relu_bwd(dx_naive.data(), d.dy.data(), d.x.data(), n);
        const Tensor xs = test::buffer(ks, d.x), dys = test::buffer(ks, d.dy), dxs = test::buffer(ks, d.dx0);
        DYAD_KCALL(ks, relu_bwd, test::ptr(dxs), test::ptr(dys), test::ptr(xs), n);
        const std::vector<float> dx = test::host(dxs);
        test::require_close(dx_naive, dx, test::tol::arith(ks));
        int64_t changed = 0, not_added = 0;
        for (int64_t i = 0; i < n; i++) {
            const size_t j = size_t(i);
            if (!(d.x[j] > 0) && std::memcmp(&dx[j], &d.dx0[j], sizeof(float)) != 0) changed++;
            const float sum = d.dx0[j] + d.dy[j];  // inf and NaN included: one float addition
            if (d.x[j] > 0 && !(sum == dx[j] || (std::isnan(sum) && std::isnan(dx[j])))) not_added++;
        }
        REQUIRE(changed == 0);
        REQUIRE(not_added == 0);
    }
}

DYAD_KERNEL_TEST("relu on views that start off the 16-byte alignment, whole vectors and scalar tails", "[activation]") {
    // Views starting at element k of a larger tensor: 16-byte aligned for k = 0 and 4, not for 1 and 3.
    for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(5), int64_t(1023), int64_t(65537)}) {
        const Tensor x = test::with_zeros({n + 4}, 33, Layout::contiguous);
        const Tensor dy = test::random_tensor({n + 4}, 34);
        const Tensor xs = test::on(ks, x), dys = test::on(ks, dy);
        for (int64_t kx : {0, 1, 3, 4}) {
            for (int64_t kd : {0, 1}) {
                INFO("n " << n << " x at " << kx << " dy at " << kd);
                const Tensor xv = x.slice(0, kx, kx + n), dyv = dy.slice(0, kd, kd + n);
                const Tensor xsv = xs.slice(0, kx, kx + n), dysv = dys.slice(0, kd, kd + n);
                REQUIRE(xsv.is_contiguous());
                const Results expected = test::naive_reference([&] { return relu_and_grad(xv, dyv); });
                const Results actual = relu_and_grad(xsv, dysv);
                test::require_close(expected.y, actual.y, test::tol::exact(ks));
                test::require_close(expected.dx, actual.dx, test::tol::exact(ks));
            }
        }
    }
}
