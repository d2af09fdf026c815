// Activations (relu) on the CPU kernel sets: known values in float32 and float64, the kink convention at 0
// and special values, float64 gradient checks, and argument errors. Parity of every kernel set with naive:
// tests/ops/activation.cpp.
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
