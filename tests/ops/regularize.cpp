// Dropout and the finiteness checks on every kernel set against the naive reference. Dropout's mask is a
// hash of (seed, index), the same on every device and thread count, and each value naive's float
// expression, so everything is compared bit for bit: the kernels on pointers on and off the 16-byte
// alignment, writing every element of outputs that start as NaN (values) or as a byte that is neither 0 nor
// 1 (masks), the backward adding to what dx held; dropout through the API with the same seed, its
// gradient, one draw per call, a transposed input. isfinite, all_finite and count_nonfinite with inf and
// NaN at odd positions, in every block of the GPU's passes, on strided views and empty tensors. Keep
// fractions, eval mode, float64 gradcheck, errors and the CPU sets' known values in float64:
// tests/kernels/test_regularize.cpp.
#include "support/catch.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/optim.h"
#include "support/compare.h"
#include "support/kernel_sets.h"
#include "support/optim_cases.h"
#include "support/random.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;
using test::same_bits;

namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) { return test::random_tensor({n}, seed).to_vector<float>(); }

// count_nonfinite of set ks: it returns its count (DYAD_KCALL calls a kernel for its effects only).
int64_t count_nonfinite(const test::KernelSet& ks, int64_t n, const float* x) {
    if (!ks.is_cuda()) return omp::count_nonfinite(n, x);
#if DYAD_WITH_CUDA
    cuda::use_device(0);
    return cuda::count_nonfinite(n, x);
#else
    FAIL("a cuda kernel set in a build without CUDA");
    return -1;
#endif
}

}  // namespace

// ---------------------------------------------------------------------------- dropout kernels
DYAD_KERNEL_TEST("dropout_fwd and dropout_bwd draw naive's mask and values bit for bit", "[dropout]") {
    // Sizes around the omp thresholds and SIMD widths; p values whose float rounding is below and above p.
    for (int64_t n : test::dropout_sizes()) {
        for (double p : test::dropout_probs()) {
            // One extra element: offset 1 misaligns every pointer (the GPU's scalar path); offset 0 takes the
            // vector path, and the element past the end must stay untouched.
            for (int64_t offset : {0, 1}) {
                INFO("n " << n << " p " << p << " offset " << offset);
                const std::vector<float> x = random_floats(n + 1, 61), dy = random_floats(n + 1, 62);
                // y starts as NaN and the mask as a byte that is neither 0 nor 1, so every element must be
                // written; dx starts at 0.5, and the backward kernel must add to it.
                std::vector<float> y = test::nan_filled<float>(n + 1), dx(size_t(n + 1), 0.5f);
                std::vector<uint8_t> m(size_t(n + 1), test::kUnwrittenByte);
                naive::dropout_fwd<float>(n, y.data() + offset, m.data() + offset, x.data() + offset, p, 12345);
                naive::dropout_bwd<float>(n, dx.data() + offset, dy.data() + offset, m.data() + offset, p);
                REQUIRE(test::count_nan(std::vector<float>(y.begin() + offset, y.begin() + offset + n)) == 0);
                REQUIRE(test::count_not_01(std::vector<uint8_t>(m.begin() + offset, m.begin() + offset + n)) == 0);

                const Tensor xd = test::buffer(ks, x), dyd = test::buffer(ks, dy),
                             yd = test::buffer(ks, test::nan_filled<float>(n + 1)),
                             dxd = test::buffer(ks, std::vector<float>(size_t(n + 1), 0.5f)),
                             md = test::buffer_u8(ks, std::vector<uint8_t>(size_t(n + 1), test::kUnwrittenByte));
                DYAD_KCALL(ks, dropout_fwd, n, test::ptr(yd) + offset, test::ptr<uint8_t>(md) + offset,
                           test::ptr(xd) + offset, p, 12345);
                DYAD_KCALL(ks, dropout_bwd, n, test::ptr(dxd) + offset, test::ptr(dyd) + offset,
                           test::ptr<uint8_t>(md) + offset, p);
                const std::vector<uint8_t> mask = test::host_u8(md);
                REQUIRE(mask == m);
                test::require_close(y, test::host(yd), test::tol::exact(ks));
                const std::vector<float> dx_set = test::host(dxd);
                test::require_close(dx, dx_set, test::tol::exact(ks));  // dx += ..., from 0.5

                // dx against the rule in double: 0.5 + dy / (1 - p) where kept; and the mask is the documented
                // hash, compared in double.
                std::vector<double> expect(static_cast<size_t>(n)), got(static_cast<size_t>(n));
                for (int64_t i = 0; i < n; i++) {
                    const size_t j = size_t(offset + i);
                    expect[size_t(i)] = 0.5 + (mask[j] ? double(dy[j]) / (1.0 - p) : 0.0);
                    got[size_t(i)] = dx_set[j];
                }
                REQUIRE_THAT(got, test::AllClose(expect).rtol(1e-6).atol(1e-6));
                for (int64_t i = 0; i < n; i += 97)
                    REQUIRE(mask[size_t(offset + i)] == uint8_t(double(dropout_uniform(12345, uint64_t(i))) >= p));
            }
        }
    }
    DYAD_KCALL(ks, dropout_fwd, 0, static_cast<float*>(nullptr), nullptr, static_cast<const float*>(nullptr), 0.5, 1);
    DYAD_KCALL(ks, dropout_bwd, 0, static_cast<float*>(nullptr), static_cast<const float*>(nullptr), nullptr, 0.5);
    synchronize();
}

// ---------------------------------------------------------------------------- dropout through the API
DYAD_KERNEL_TEST("dropout through the API: the same seed draws naive's mask, the gradient goes through it",
                 "[dropout]") {
    const Tensor x = test::random_tensor({37, 129}, 62);
    const Tensor dy = test::random_tensor({37, 129}, 63);
    for (double p : test::dropout_probs()) {
        INFO("p " << p);
        Tensor xr = x.detach().requires_grad_(), xs = test::on(ks, x).requires_grad_();
        const Tensor yr = test::naive_reference([&] {
            manual_seed(99);
            Tensor y = dropout(xr, p, true);
            y.backward(dy);
            return y;
        });
        manual_seed(99);
        const Tensor ys = dropout(xs, p, true);
        ys.backward(test::on(ks, dy));
        REQUIRE(ys.device() == ks.device);
        test::require_close(yr, ys, test::tol::exact(ks));
        test::require_close(xr.grad(), xs.grad(), test::tol::exact(ks));
    }
    // One draw per call: the same seed gives naive's mask, the next call another one.
    const Tensor ref = test::naive_reference([&] {
        manual_seed(99);
        return dropout(x, 0.4, true);
    });
    manual_seed(99);
    const Tensor a = dropout(test::on(ks, x), 0.4, true), b = dropout(test::on(ks, x), 0.4, true);
    test::require_close(ref, a, test::tol::exact(ks));
    REQUIRE_FALSE(same_bits(test::host(a), test::host(b)));
    // Non-contiguous input: the transposed view is copied first, the mask follows the result's order.
    const Tensor xt = test::random_tensor({33, 17}, 64, test::Layout::transposed);
    const Tensor reft = test::naive_reference([&] {
        manual_seed(5);
        return dropout(xt, 0.3, true);
    });
    manual_seed(5);
    test::require_close(reft, dropout(test::on(ks, xt), 0.3, true), test::tol::exact(ks));
}

// ---------------------------------------------------------------------------- finiteness
DYAD_KERNEL_TEST("isfinite and all_finite on the set's device: inf, -inf and NaN at odd positions, views, empty",
                 "[dropout]") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const int64_t n = 100003;  // over the omp threshold, odd
    for (int64_t pos : {int64_t(0), int64_t(17), int64_t(n / 2 + 1), n - 1}) {
        for (float bad : {inf, -inf, nan}) {
            INFO("position " << pos << " value " << bad);
            std::vector<float> v(size_t(n), 1.5f);
            v[size_t(pos)] = bad;
            const Tensor x = Tensor::from_vector(v, {n});
            const Tensor xs = test::on(ks, x);
            REQUIRE_FALSE(all_finite(xs));
            const Tensor f = isfinite(xs);
            REQUIRE(f.device() == ks.device);
            test::require_close(test::naive_reference([&] { return isfinite(x); }), f, test::tol::exact(ks));
            const std::vector<uint8_t> fv = test::host_u8(f);
            int64_t zeros = 0;
            for (uint8_t b : fv) zeros += b == 0;
            REQUIRE(zeros == 1);
            REQUIRE(fv[size_t(pos)] == 0);
        }
    }
    std::vector<float> big(size_t(n), std::numeric_limits<float>::max());
    big[3] = -0.0f;
    big[5] = 1e-40f;  // subnormal: finite
    REQUIRE(all_finite(test::on(ks, Tensor::from_vector(big, {n}))));
    // A strided view: the non-finite element is inside the view or skipped by it.
    const Tensor m = test::on(ks, Tensor::from_vector(std::vector<float>{1, nan, 3, 4, 5, inf}, {2, 3}));
    REQUIRE_FALSE(all_finite(m.t()));
    REQUIRE(all_finite(m.slice(1, 0, 1)));
    REQUIRE(test::host_u8(isfinite(m.t())) == std::vector<uint8_t>{1, 1, 0, 1, 1, 0});
    REQUIRE(isfinite(m).shape() == Shape{2, 3});
    REQUIRE(isfinite(m).dtype() == DType::uint8);
    REQUIRE(all_finite(Tensor::zeros({0}, DType::float32, ks.device)));
    REQUIRE(isfinite(Tensor::zeros({0}, DType::float32, ks.device)).numel() == 0);
}

DYAD_KERNEL_TEST("count_nonfinite and isfinite_fwd equal naive: many specials, every block, misaligned", "[dropout]") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t n : test::nonfinite_sizes()) {
        // One extra element: the view at offset 1 is misaligned for float4.
        std::vector<float> x = random_floats(n + 1, 66);
        // Specials at odd positions (those past the end are skipped), subnormal, zero and max values, and
        // one every 9973 elements (in every block of the GPU's first pass).
        const std::vector<std::pair<int64_t, float>> specials = {
            {0, nan},   {3, inf},      {5, -inf},   {6, 1e-40f}, {7, -0.0f}, {17, std::numeric_limits<float>::max()},
            {31, -nan}, {n - 1, -inf}, {n / 2, nan}};
        for (const auto& [pos, v] : specials)
            if (pos < n) x[size_t(pos)] = v;
        for (int64_t i = 1; i < n + 1; i += 9973)
            x[size_t(i)] = (i / 9973) % 3 == 0 ? nan : (i / 9973) % 3 == 1 ? inf : -inf;
        x[size_t(n - 1)] = inf;  // the last element of the aligned view
        x[size_t(n)] = nan;      // the last element of the misaligned view
        for (int64_t offset : {0, 1}) {
            INFO("n " << n << " offset " << offset);
            const float* xo = x.data() + offset;
            int64_t expect = 0;
            for (int64_t i = 0; i < n; i++) expect += std::isinf(xo[i]) || std::isnan(xo[i]);
            REQUIRE(expect >= 1);
            REQUIRE(naive::count_nonfinite<float>(n, xo) == expect);
            // Flags start as a byte that is neither 0 nor 1: every one must be written.
            std::vector<uint8_t> f(size_t(n + 1), 9);
            naive::isfinite_fwd<float>(n, f.data() + offset, xo);
            int64_t wrong = 0;
            for (int64_t i = 0; i < n; i++) wrong += f[size_t(offset + i)] != uint8_t(std::isfinite(xo[i]));
            REQUIRE(wrong == 0);

            const Tensor xd = test::buffer(ks, x), fd = test::buffer_u8(ks, std::vector<uint8_t>(size_t(n + 1), 9));
            const size_t waits = cuda::host_waits();
            REQUIRE(count_nonfinite(ks, n, test::ptr(xd) + offset) == expect);
            // The count comes back to the host: the GPU's one documented wait.
            REQUIRE(cuda::host_waits() == waits + (ks.is_cuda() ? 1 : 0));
            DYAD_KCALL(ks, isfinite_fwd, n, test::ptr<uint8_t>(fd) + offset, test::ptr(xd) + offset);
            REQUIRE(test::host_u8(fd) == f);
        }
    }
    REQUIRE(count_nonfinite(ks, 0, nullptr) == 0);
    DYAD_KCALL(ks, isfinite_fwd, 0, nullptr, nullptr);
    synchronize();
}
