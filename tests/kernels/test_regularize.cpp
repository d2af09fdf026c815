// Dropout and the finiteness checks on the CPU kernel sets: the keep fraction is within a binomial bound of
// 1 - p, survivors are scaled by 1 / (1 - p), eval mode and p = 0 return x itself, float64 gradcheck with a
// fixed mask, argument errors; isfinite/all_finite with inf, -inf and NaN at odd positions in float32 and
// float64, integer and empty tensors. Parity of every kernel set with naive (masks, values, the finiteness
// kernels): tests/ops/regularize.cpp.
#include "support/catch.h"

#include <cmath>
#include <limits>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/random.h"

using namespace dyad;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// ---------------------------------------------------------------------------- dropout
TEST_CASE("dropout: keep fraction within a binomial bound, survivors scaled by 1 / (1 - p)", "[dropout][naive][omp]") {
    const int64_t n = 1 << 20;
    const Tensor x = Tensor::ones({n});
    for (CpuKernels k : kKernelSets) {
        for (double p : {0.1, 0.5, 0.8}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " p " << p);
            manual_seed(7);
            const std::vector<float> y = dropout(x, p, true).to_vector<float>();
            const float scale = float(1.0 / (1.0 - p));
            int64_t kept = 0, other = 0;
            for (float v : y) {
                if (v == scale)
                    kept++;
                else if (v != 0.0f)
                    other++;
            }
            REQUIRE(other == 0);
            // Kept ~ Binomial(n, 1 - p): 6 standard deviations (a false alarm about once in 5e8 runs).
            const double expect = double(n) * (1 - p), sd = std::sqrt(double(n) * p * (1 - p));
            REQUIRE(std::abs(double(kept) - expect) <= 6 * sd);
        }
    }
}

TEST_CASE("dropout: eval mode and p = 0 return x itself, gradient uses the mask", "[dropout][naive][omp]") {
    const Tensor x = test::random_tensor({5, 6}, 63);
    REQUIRE(dropout(x, 0.5, false).is_same(x));
    REQUIRE(dropout(x, 0.0, true).is_same(x));
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        Tensor xl = x.detach().requires_grad_();
        const Tensor y = dropout(xl, 0.25, true);
        y.backward(Tensor::ones({5, 6}));
        const std::vector<double> yv = values(y), xv = values(x), g = values(xl.grad());
        for (size_t i = 0; i < yv.size(); i++) {
            const bool kept = yv[i] != 0.0;
            REQUIRE(g[i] == (kept ? double(float(1.0 / 0.75)) : 0.0));
            if (kept) REQUIRE(yv[i] == double(float(xv[i]) * float(1.0 / 0.75)));  // x * 1 / (1 - p) in float
        }
    }
}

TEST_CASE("dropout: gradcheck in float64 with a fixed mask", "[dropout][gradcheck]") {
    manual_seed(64);
    const Tensor x = Tensor::randn({6, 7}, DType::float64).requires_grad_();
    // Reseeded before every evaluation, so every finite-difference evaluation sees the same mask.
    const GradcheckResult r = gradcheck(
        [](const std::vector<Tensor>& in) {
            manual_seed(2024);
            return dropout(in[0], 0.3, true) * in[0];
        },
        {x});
    INFO(r.report);
    REQUIRE(r.ok);
}

TEST_CASE("dropout argument errors name the op and p", "[dropout][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::ones({3});
    REQUIRE_THROWS_WITH(dropout(x, 1.0, true), Contains("dropout") && Contains("p must be in [0, 1)") && Contains("1"));
    REQUIRE_THROWS_WITH(dropout(x, -0.1, true), Contains("dropout") && Contains("-0.1"));
    REQUIRE_THROWS_WITH(dropout(x, 1.5, false), Contains("dropout") && Contains("1.5"));
    REQUIRE_THROWS_WITH(dropout(x, kNaN, true), Contains("dropout") && Contains("nan"));
    REQUIRE_THROWS_WITH(dropout(Tensor::ones({3}, DType::int32), 0.5, true), Contains("dropout") && Contains("int32"));
}

// ---------------------------------------------------------------------------- isfinite / all_finite
TEST_CASE("isfinite and all_finite find inf, -inf and NaN at odd positions", "[dropout][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        for (DType dt : {DType::float32, DType::float64}) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const int64_t n = 100003;  // over the omp threshold, odd
            for (int64_t pos : {int64_t(0), int64_t(17), int64_t(n / 2 + 1), n - 1}) {
                for (double bad : {kInf, -kInf, kNaN}) {
                    INFO("position " << pos << " value " << bad);
                    std::vector<double> v(size_t(n), 1.5);
                    v[size_t(pos)] = bad;
                    const Tensor x = Tensor::from_vector(v, {n}).to(dt);
                    REQUIRE_FALSE(all_finite(x));
                    const std::vector<uint8_t> f = isfinite(x).to_vector<uint8_t>();
                    int64_t zeros = 0;
                    for (uint8_t b : f) zeros += b == 0;
                    REQUIRE(zeros == 1);
                    REQUIRE(f[size_t(pos)] == 0);
                }
            }
            std::vector<double> big(size_t(n), std::numeric_limits<float>::max());
            big[3] = -0.0;
            big[5] = 1e-40;  // subnormal in float: finite
            REQUIRE(all_finite(Tensor::from_vector(big, {n}).to(dt)));
            // A strided view: the non-finite element is inside the view or skipped by it.
            const Tensor m = Tensor::from_vector(std::vector<double>{1, kNaN, 3, 4, 5, kInf}, {2, 3}).to(dt);
            REQUIRE_FALSE(all_finite(m.t()));
            REQUIRE(all_finite(m.slice(1, 0, 1)));
            REQUIRE(isfinite(m.t()).to_vector<uint8_t>() == std::vector<uint8_t>{1, 1, 0, 1, 1, 0});
            REQUIRE(isfinite(m).shape() == Shape{2, 3});
            REQUIRE(isfinite(m).dtype() == DType::uint8);
        }
    }
}

TEST_CASE("isfinite and all_finite on integer and empty tensors", "[dropout]") {
    REQUIRE(all_finite(Tensor::full({4}, 7, DType::int32)));
    REQUIRE(all_finite(Tensor::zeros({3}, DType::uint8)));
    REQUIRE(isfinite(Tensor::zeros({2, 2}, DType::int32)).to_vector<uint8_t>() == std::vector<uint8_t>{1, 1, 1, 1});
    REQUIRE(all_finite(Tensor::zeros({0, 3})));
    REQUIRE(isfinite(Tensor::zeros({0})).numel() == 0);
    REQUIRE_THROWS_WITH(all_finite(Tensor()), Catch::Contains("all_finite") && Catch::Contains("undefined"));
    REQUIRE_THROWS_WITH(isfinite(Tensor()), Catch::Contains("isfinite") && Catch::Contains("undefined"));
}
