// Activations (relu): known values, omp-vs-naive parity (exact), float64 gradient checks, the kink
// convention at 0 and special values, and argument errors.
#include "support/catch.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/activation.h"
#include "support/compare.h"
#include "support/elementwise_cases.h"
#include "support/random.h"
#include "support/shapes.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::count_nan;
using test::Layout;
using test::make;
using test::nan_filled;
using test::require_identical;
using test::same_bits;
using test::values;
using test::with_zeros;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
constexpr DType kFloatTypes[] = {DType::float32, DType::float64};
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// ---------------------------------------------------------------------------- known values, kinks
TEST_CASE("relu: known values, NaN stays NaN, infinities", "[activation][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const Tensor y = relu(make({-2, -0.5, 0, 0.5, 3, kNaN, -kInf, kInf}, {2, 4}, dt));
            REQUIRE(y.shape() == Shape{2, 4});
            REQUIRE(y.dtype() == dt);
            REQUIRE_THAT(values(y), AllClose(std::vector<double>{0, 0, 0, 0.5, 3, kNaN, 0, kInf}));
            // A strided input gives a contiguous result with the same values.
            const Tensor x = make({-1, 2, -3, 4, 5, -6}, {2, 3}, dt).t();
            const Tensor yt = relu(x);
            REQUIRE(yt.is_contiguous());
            REQUIRE(values(yt) == std::vector<double>{0, 4, 2, 5, 0, 0});
        }
    }
}

TEST_CASE("relu gradient: 1 where x > 0, exactly 0 at x = 0 and below", "[activation][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            Tensor x = make({-1, -0.0, 0, 1e-30, 2, kNaN}, {6}, dt).requires_grad_();
            relu(x).backward(make({10, 20, 30, 40, 50, 60}, {6}, dt));
            REQUIRE(values(x.grad()) == std::vector<double>{0, 0, 0, 40, 50, 0});  // NaN > 0 is false
            // Gradients accumulate: a second use of x adds its share.
            Tensor z = make({-1, 0, 3}, {3}, dt).requires_grad_();
            sum(relu(z) + relu(z) * 2.0).backward();
            REQUIRE(values(z.grad()) == std::vector<double>{0, 0, 3});
        }
    }
}

// ---------------------------------------------------------------------------- parity
// Exact (rtol = atol = 0): relu is a compare and a select per element in both kernel sets.
TEST_CASE("relu forward and backward: omp equals naive exactly", "[activation][naive][omp]") {
    const Layout layouts[] = {Layout::contiguous, Layout::transposed, Layout::strided};
    for (const Shape& shape : test::unary_shapes()) {
        const Tensor dy = test::random_tensor(shape, 32);
        for (Layout layout : layouts) {
            INFO(shape_str(shape) << " " << test::layout_name(layout));
            const Tensor x = with_zeros(shape, 31, layout);
            Tensor y[2], dx[2];
            for (int i = 0; i < 2; i++) {
                CpuKernelsGuard guard(kKernelSets[i]);
                Tensor xl = x.detach().requires_grad_();  // a leaf view of the same layout
                y[i] = relu(xl);
                y[i].backward(dy);
                dx[i] = xl.grad();
            }
            require_identical(y[0], y[1]);
            require_identical(dx[0], dx[1]);
        }
    }
}

TEST_CASE("relu_fwd kernels write every element: omp equals naive into outputs that start as NaN",
          "[activation][naive][omp]") {
    // Sizes below and over the omp threshold, and SIMD tails; exact zeros of both signs mixed in.
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(33), int64_t(40000), int64_t(100003)}) {
        INFO("n " << n);
        const std::vector<float> x = with_zeros({n}, 34, Layout::contiguous).to_vector<float>();
        std::vector<float> y_naive = nan_filled<float>(n), y_omp = nan_filled<float>(n);
        naive::relu_fwd(y_naive.data(), x.data(), n);
        omp::relu_fwd(y_omp.data(), x.data(), n);
        REQUIRE(same_bits(y_naive, y_omp));
        REQUIRE(count_nan(y_naive) == 0);
    }
}

TEST_CASE("relu_bwd kernels leave dx bit for bit alone where x <= 0", "[activation][naive][omp]") {
    // dx starts with -0 and other values; dy holds inf and NaN where x <= 0: neither may leak into dx,
    // and a -0 must stay -0 (an added +0 would flip it). Where x > 0, dy is added to what dx held.
    const int64_t n = 40000;  // over the omp threshold, so the threads split it
    const test::ReluBwdData d = test::relu_bwd_data(n);
    const std::vector<float>&x = d.x, &dy = d.dy, &dx0 = d.dx0;
    std::vector<float> dx_naive = dx0, dx_omp = dx0;
    naive::relu_bwd(dx_naive.data(), dy.data(), x.data(), n);
    omp::relu_bwd(dx_omp.data(), dy.data(), x.data(), n);
    REQUIRE(same_bits(dx_naive, dx_omp));
    int64_t changed = 0, not_added = 0;
    for (int64_t i = 0; i < n; i++) {
        const size_t j = size_t(i);
        if (!(x[j] > 0) && std::memcmp(&dx_omp[j], &dx0[j], sizeof(float)) != 0) changed++;
        const float sum = dx0[j] + dy[j];  // inf and NaN included: one float addition, exact to compare
        if (x[j] > 0 && std::memcmp(&dx_omp[j], &sum, sizeof(float)) != 0 &&
            !(std::isnan(sum) && std::isnan(dx_omp[j])))
            not_added++;
    }
    REQUIRE(changed == 0);
    REQUIRE(not_added == 0);
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("relu: gradcheck away from the kink", "[activation][gradcheck]") {
    // Inputs at least 1e-3 from the kinks (x = 0 and, for the composite below, x = 0.5), far beyond the
    // finite-difference step of 1e-6.
    manual_seed(33);
    std::vector<double> v = Tensor::randn({4, 5}, DType::float64).to_vector<double>();
    for (double& e : v)
        for (double kink : {0.0, 0.5})
            if (std::abs(e - kink) < 1e-3) e = kink + (e < kink ? -0.1 : 0.1);
    const Tensor x = Tensor::from_vector(v, {4, 5}).requires_grad_();
    GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x});
    INFO(r.report);
    REQUIRE(r.ok);
    // Composed with elementwise ops, x used twice: relu(x) * x + relu(x * 0.5 - 0.25).
    r = gradcheck([](const std::vector<Tensor>& in) { return relu(in[0]) * in[0] + relu(in[0] * 0.5 - 0.25); }, {x});
    INFO(r.report);
    REQUIRE(r.ok);
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("relu argument errors name the op and the dtype", "[activation][errors]") {
    using Catch::Contains;
    REQUIRE_THROWS_WITH(relu(Tensor::ones({2, 3}, DType::int32)), Contains("relu") && Contains("int32"));
    REQUIRE_THROWS_WITH(relu(Tensor::ones({4}, DType::uint8)), Contains("relu") && Contains("uint8"));
    REQUIRE_THROWS_WITH(relu(Tensor()), Contains("relu") && Contains("undefined"));
}
