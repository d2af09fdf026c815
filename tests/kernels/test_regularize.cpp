// Dropout and the finiteness checks: naive and omp draw the same mask bit for bit, the keep fraction is
// within a binomial bound of 1 - p, survivors are scaled by 1 / (1 - p), eval mode and p = 0 return x
// itself, float64 gradcheck with a fixed mask, argument errors; isfinite/all_finite with inf, -inf and
// NaN at odd positions. The SGD kernels' first momentum step, which writes the buffer without reading it
// (the rest of sgd_step is tested with the optimizer, tests/nn/test_optim.cpp).
#include "support/catch.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/optim.h"
#include "support/compare.h"
#include "support/optim_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::count_nan;
using test::count_not_01;
using test::kUnwrittenByte;
using test::nan_filled;
using test::same_bits;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// ---------------------------------------------------------------------------- dropout
TEST_CASE("dropout kernels: naive and omp give the same mask and values bit for bit", "[dropout][naive][omp]") {
    // Sizes around the omp thresholds and SIMD widths; p values whose float rounding is below and above p.
    // y starts as NaN and the mask as a byte that is neither 0 nor 1, so every element must be written;
    // dx starts at 0.5, and the backward kernel must add to it.
    for (int64_t n : test::dropout_sizes()) {
        for (double p : test::dropout_probs()) {
            INFO("n " << n << " p " << p);
            const Tensor xt = test::random_tensor({n}, 61);
            const float* x = xt.data<float>();
            std::vector<float> y0 = nan_filled<float>(n), y1 = nan_filled<float>(n), dx0(static_cast<size_t>(n), 0.5f),
                               dx1(static_cast<size_t>(n), 0.5f);
            std::vector<uint8_t> m0(static_cast<size_t>(n), kUnwrittenByte), m1(static_cast<size_t>(n), kUnwrittenByte);
            naive::dropout_fwd<float>(n, y0.data(), m0.data(), x, p, 12345);
            omp::dropout_fwd(n, y1.data(), m1.data(), x, p, 12345);
            REQUIRE(m0 == m1);
            REQUIRE(same_bits(y0, y1));
            REQUIRE(count_not_01(m0) == 0);
            REQUIRE(count_nan(y0) == 0);
            naive::dropout_bwd<float>(n, dx0.data(), x, m0.data(), p);
            omp::dropout_bwd(n, dx1.data(), x, m1.data(), p);
            REQUIRE(same_bits(dx0, dx1));
            std::vector<double> expect(static_cast<size_t>(n));
            for (size_t i = 0; i < expect.size(); i++) expect[i] = 0.5 + (m0[i] ? double(x[i]) / (1.0 - p) : 0.0);
            REQUIRE_THAT(std::vector<double>(dx0.begin(), dx0.end()), AllClose(expect).rtol(1e-6).atol(1e-6));
            // The mask is the documented hash, compared in double.
            for (int64_t i = 0; i < n; i += 97)
                REQUIRE(m0[size_t(i)] == uint8_t(double(dropout_uniform(12345, uint64_t(i))) >= p));
        }
    }
}

TEST_CASE("dropout: the same seed gives the same mask in both kernel sets", "[dropout][naive][omp]") {
    const Tensor x = test::random_tensor({37, 129}, 62);
    Tensor y[2];
    for (int i = 0; i < 2; i++) {
        CpuKernelsGuard guard(kKernelSets[i]);
        manual_seed(99);
        y[i] = dropout(x, 0.4, true);
    }
    REQUIRE(same_bits(y[0].to_vector<float>(), y[1].to_vector<float>()));
    // One draw per call: the next call has another mask.
    manual_seed(99);
    const Tensor a = dropout(x, 0.4, true), b = dropout(x, 0.4, true);
    REQUIRE(same_bits(a.to_vector<float>(), y[0].to_vector<float>()));
    REQUIRE_FALSE(same_bits(a.to_vector<float>(), b.to_vector<float>()));
}

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

TEST_CASE("isfinite_fwd and count_nonfinite kernels: omp equals naive", "[dropout][naive][omp]") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t n : test::dropout_sizes()) {
        INFO("n " << n);
        std::vector<float> x = test::random_tensor({n}, 65).to_vector<float>();
        // Specials at odd positions (those past n are skipped), and subnormal, zero and max values.
        const std::vector<std::pair<int64_t, float>> specials = {
            {0, nan},   {3, inf},      {5, -inf},   {6, 1e-40f}, {7, -0.0f}, {17, std::numeric_limits<float>::max()},
            {31, -nan}, {n - 1, -inf}, {n / 2, nan}};
        for (const auto& [pos, v] : specials)
            if (pos < n) x[size_t(pos)] = v;
        int64_t expect = 0;
        for (float v : x) expect += std::isinf(v) || std::isnan(v);
        std::vector<uint8_t> f0(size_t(n), 7), f1(size_t(n), 7);
        naive::isfinite_fwd<float>(n, f0.data(), x.data());
        omp::isfinite_fwd(n, f1.data(), x.data());
        REQUIRE(f0 == f1);
        int64_t wrong = 0;
        for (int64_t i = 0; i < n; i++) wrong += f0[size_t(i)] != uint8_t(std::isfinite(x[size_t(i)]));
        REQUIRE(wrong == 0);
        REQUIRE(naive::count_nonfinite<float>(n, x.data()) == expect);
        REQUIRE(omp::count_nonfinite(n, x.data()) == expect);
    }
}

// ---------------------------------------------------------------------------- SGD, first momentum step
TEST_CASE("sgd_step kernels: the first momentum step writes the buffer without reading it", "[optim][naive][omp]") {
    // The buffer starts as NaN: on the first step it is initialised from the gradient, so neither the
    // parameters nor the buffer may see the NaN, and the result equals a step from a finite buffer.
    for (int64_t n : test::sgd_sizes()) {
        const std::vector<float> p0 = test::random_tensor({n}, 74).to_vector<float>();
        const std::vector<float> g = test::random_tensor({n}, 75).to_vector<float>();
        const std::vector<float> b_finite = test::random_tensor({n}, 76).to_vector<float>();
        for (const optim::SgdOptions& o : test::sgd_option_sets()) {
            if (o.momentum == 0) continue;
            INFO("n " << n << " " << test::describe(o));
            const SgdParams sp = test::sgd_kernel_params(o, true);
            std::vector<float> pn = p0, po = p0, pf = p0, bn = nan_filled<float>(n), bo = nan_filled<float>(n),
                               bf = b_finite;
            naive::sgd_step<float>(n, pn.data(), g.data(), bn.data(), sp);
            omp::sgd_step(n, po.data(), g.data(), bo.data(), sp);
            naive::sgd_step<float>(n, pf.data(), g.data(), bf.data(), sp);
            REQUIRE(count_nan(pn) + count_nan(bn) == 0);
            REQUIRE(same_bits(pn, po));
            REQUIRE(same_bits(bn, bo));
            REQUIRE(same_bits(pn, pf));
            REQUIRE(same_bits(bn, bf));
        }
    }
}
