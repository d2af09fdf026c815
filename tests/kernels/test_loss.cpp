// Softmax, log-softmax and cross-entropy on the CPU kernel sets: known values in float32 and float64, one
// class and full smoothing, int64 labels on naive and in float64, float64 gradient checks, the fused
// cross-entropy against the same loss built from existing ops, and errors. Parity of every kernel set with
// naive (odd shapes, the kernels into outputs that start as NaN, inf, NaN and huge logits): tests/ops/loss.cpp.
#include "support/catch.h"

#include <cmath>
#include <regex>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/loss_cases.h"
#include "support/random.h"

using namespace dyad;
using test::AllClose;
using test::make;
using test::random_labels;
using test::values;

namespace {

constexpr CpuKernels kKernelSets[] = {CpuKernels::naive, CpuKernels::omp};
constexpr DType kFloatTypes[] = {DType::float32, DType::float64};

// q = (1 - eps) * onehot(labels) + eps / c as a float64 tensor (n, c).
Tensor smoothed_targets(const Tensor& labels, int64_t c, double eps) {
    const std::vector<int32_t> lab = labels.to_vector<int32_t>();
    std::vector<double> q(lab.size() * size_t(c), eps / double(c));
    for (size_t i = 0; i < lab.size(); i++) q[i * size_t(c) + size_t(lab[i])] += 1.0 - eps;
    return Tensor::from_vector(q, {int64_t(lab.size()), c});
}

// The loss from existing differentiable ops: -mean over rows of sum_c q * log_softmax(x).
Tensor composite_cross_entropy(const Tensor& x, const Tensor& labels, double eps) {
    const Tensor q = smoothed_targets(labels, x.size(1), eps).to(x.dtype());
    return neg(mean(sum(mul(q, log_softmax(x, 1)), {1})));
}

enum class Which { softmax, log_softmax };
Tensor run(Which w, const Tensor& x, int64_t dim) {
    return w == Which::softmax ? softmax(x, dim) : log_softmax(x, dim);
}
const char* name(Which w) { return w == Which::softmax ? "softmax" : "log_softmax"; }

}  // namespace

// ---------------------------------------------------------------------------- known values
TEST_CASE("softmax and log_softmax: known values in both kernel sets", "[loss][naive][omp]") {
    const std::vector<double> sm = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
    const std::vector<double> lsm = {-2.40760596444438, -1.4076059644443801, -0.40760596444438013};
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const double rtol = dt == DType::float32 ? 1e-6 : 1e-14;
            // Along the last dim, and along dim 0 of the transpose (the same numbers, strided input).
            const Tensor x = make({1, 2, 3, 11, 12, 13}, {2, 3}, dt);
            const Tensor y = softmax(x);
            REQUIRE(y.shape() == Shape{2, 3});
            REQUIRE(y.dtype() == dt);
            REQUIRE_THAT(values(y), AllClose(std::vector<double>{sm[0], sm[1], sm[2], sm[0], sm[1], sm[2]}).rtol(rtol));
            REQUIRE_THAT(values(softmax(x.t(), 0).t()), AllClose(values(y)).rtol(rtol));
            REQUIRE_THAT(values(log_softmax(x, -1)),
                         AllClose(std::vector<double>{lsm[0], lsm[1], lsm[2], lsm[0], lsm[1], lsm[2]}).rtol(rtol));
            // Along dim 0: two rows, columns differ by 10.
            const double a = 1 / (1 + std::exp(10.0));
            REQUIRE_THAT(values(softmax(x, 0)), AllClose(std::vector<double>{a, a, a, 1 - a, 1 - a, 1 - a}).rtol(rtol));
            // A 0-d tensor is one row of one element.
            REQUIRE(values(softmax(make({5}, {}, dt)))[0] == 1.0);
            REQUIRE(values(log_softmax(make({5}, {}, dt)))[0] == 0.0);
        }
    }
}

TEST_CASE("cross_entropy: known values and gradient, with and without smoothing", "[loss][naive][omp]") {
    const double lse = 3.40760596444438;  // log(e + e^2 + e^3)
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            CpuKernelsGuard guard(k);
            INFO(cpu_kernels_name(k) << " " << dtype_name(dt));
            const double rtol = dt == DType::float32 ? 1e-6 : 1e-14;
            const Tensor labels = Tensor::from_vector(std::vector<int32_t>{2, 0}, {2});
            Tensor x = make({1, 2, 3, 1, 2, 3}, {2, 3}, dt).requires_grad_();
            Tensor loss = cross_entropy(x, labels);
            REQUIRE(loss.shape() == Shape{});
            REQUIRE(loss.dtype() == dt);
            // rows: lse - 3 and lse - 1
            REQUIRE_THAT(values(loss), AllClose(std::vector<double>{lse - 2}).rtol(rtol));
            loss.backward();
            const double p0 = 0.09003057317038046, p1 = 0.24472847105479767, p2 = 0.6652409557748219;
            REQUIRE_THAT(values(x.grad()),
                         AllClose(std::vector<double>{p0 / 2, p1 / 2, (p2 - 1) / 2, (p0 - 1) / 2, p1 / 2, p2 / 2})
                             .rtol(rtol)
                             .atol(1e-7));
            // Smoothing 0.3 with labels {2, 2}: row loss = lse - 0.7 * 3 - 0.1 * (1 + 2 + 3).
            x.zero_grad();
            loss = cross_entropy(x, Tensor::from_vector(std::vector<int32_t>{2, 2}, {2}), 0.3);
            REQUIRE_THAT(values(loss), AllClose(std::vector<double>{lse - 2.1 - 0.6}).rtol(rtol));
            loss.backward(make({4}, {}, dt));  // incoming gradient 4: dx = 4 / 2 * (p - q)
            REQUIRE_THAT(values(x.grad()), AllClose(std::vector<double>{2 * (p0 - 0.1), 2 * (p1 - 0.1), 2 * (p2 - 0.8),
                                                                        2 * (p0 - 0.1), 2 * (p1 - 0.1), 2 * (p2 - 0.8)})
                                               .rtol(rtol)
                                               .atol(1e-7));
        }
    }
}

TEST_CASE("cross_entropy with one class is 0 and label smoothing 1 ignores the labels", "[loss][naive][omp]") {
    for (CpuKernels k : kKernelSets) {
        CpuKernelsGuard guard(k);
        INFO(cpu_kernels_name(k));
        Tensor x = make({3, -7, 100}, {3, 1}, DType::float32).requires_grad_();
        Tensor loss = cross_entropy(x, Tensor::zeros({3}, DType::int32));
        REQUIRE(loss.item() == 0.0);
        loss.backward();
        REQUIRE(values(x.grad()) == std::vector<double>{0, 0, 0});
        // eps = 1: q is uniform, so the labels do not matter.
        const Tensor y = make({1, 2, 3, 4, 0, -1}, {2, 3}, DType::float32);
        const double a = cross_entropy(y, Tensor::from_vector(std::vector<int32_t>{0, 1}, {2}), 1.0).item();
        const double b = cross_entropy(y, Tensor::from_vector(std::vector<int32_t>{2, 2}, {2}), 1.0).item();
        REQUIRE(a == b);
    }
}

TEST_CASE("cross_entropy with int64 labels gives the int32 results bit for bit: naive, and float64",
          "[loss][naive][omp]") {
    // The label only picks a column, so the dtype that carries it cannot change a bit of the result. omp in
    // float32 is a kernel set under test like cuda (tests/ops/loss.cpp, the kernels called directly too);
    // float64 runs on the naive kernels in both settings.
    for (CpuKernels k : kKernelSets) {
        for (DType dt : kFloatTypes) {
            if (k == CpuKernels::omp && dt == DType::float32) continue;
            CpuKernelsGuard guard(k);
            for (int64_t c : test::cross_entropy_classes()) {
                const int64_t n = 7;
                INFO(cpu_kernels_name(k) << " " << dtype_name(dt) << " C " << c);
                const Tensor x = (test::random_tensor({n, c}, uint64_t(c), test::Layout::contiguous, dt) * 4.0);
                const Tensor l32 = random_labels(n, c, uint64_t(c + 1));
                const Tensor l64 = l32.to(DType::int64);
                REQUIRE(l64.dtype() == DType::int64);
                for (double eps : {0.0, 0.1}) {
                    Tensor loss[2], dx[2];
                    const Tensor lab[2] = {l32, l64};
                    for (int i = 0; i < 2; i++) {
                        Tensor xl = x.detach().requires_grad_();
                        loss[i] = cross_entropy(xl, lab[i], eps);
                        loss[i].backward();
                        dx[i] = xl.grad();
                    }
                    test::require_identical(loss[0], loss[1]);
                    test::require_identical(dx[0], dx[1]);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------- gradients
TEST_CASE("softmax and log_softmax: gradcheck along every dim", "[loss][gradcheck]") {
    manual_seed(51);
    const Tensor x = (Tensor::randn({3, 4, 5}, DType::float64) * 2.0).requires_grad_();
    for (Which w : {Which::softmax, Which::log_softmax}) {
        for (int64_t dim : {0, 1, 2, -1}) {
            INFO(name(w) << " dim " << dim);
            const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return run(w, in[0], dim); }, {x});
            INFO(r.report);
            REQUIRE(r.ok);
        }
    }
}

TEST_CASE("cross_entropy: gradcheck with and without label smoothing", "[loss][gradcheck]") {
    manual_seed(52);
    const Tensor x = (Tensor::randn({5, 7}, DType::float64) * 2.0).requires_grad_();
    const Tensor labels = random_labels(5, 7, 3);
    for (double eps : {0.0, 0.25, 1.0}) {
        INFO("smoothing " << eps);
        const GradcheckResult r =
            gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], labels, eps); }, {x});
        INFO(r.report);
        REQUIRE(r.ok);
    }
}

TEST_CASE("cross_entropy equals -mean(sum(q * log_softmax)) from existing ops", "[loss][gradcheck]") {
    manual_seed(53);
    const Tensor x0 = Tensor::randn({9, 6}, DType::float64) * 3.0;
    const Tensor labels = random_labels(9, 6, 5);
    for (double eps : {0.0, 0.1, 0.6}) {
        INFO("smoothing " << eps);
        Tensor a = x0.clone().requires_grad_(), b = x0.clone().requires_grad_();
        const Tensor fused = cross_entropy(a, labels, eps), composite = composite_cross_entropy(b, labels, eps);
        REQUIRE_THAT(values(fused), AllClose(values(composite)).rtol(1e-13));
        fused.backward();
        composite.backward();
        REQUIRE_THAT(values(a.grad()), AllClose(values(b.grad())).rtol(1e-12).atol(1e-15));
    }
    // The same in float32 with the omp kernels: only float rounding apart.
    CpuKernelsGuard guard(CpuKernels::omp);
    const Tensor xf = x0.to(DType::float32);
    REQUIRE(cross_entropy(xf, labels, 0.1).item() ==
            Approx(composite_cross_entropy(xf, labels, 0.1).item()).epsilon(1e-6));
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("cross_entropy argument errors name the op and the values", "[loss][errors]") {
    using Catch::Contains;
    const Tensor x = Tensor::zeros({4, 5});
    const Tensor labels = Tensor::from_vector(std::vector<int32_t>{0, 4, 5, 1}, {4});
    try {
        (void)cross_entropy(x, labels);
        FAIL("no exception");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        REQUIRE(std::regex_search(msg, std::regex(R"(^[a-z_]+\.cpp:[0-9]+: cross_entropy: )")));
        REQUIRE_THAT(msg, Contains("label 5") && Contains("index 2") && Contains("5 classes"));
    }
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector(std::vector<int32_t>{0, 0, 0, -1}, {4})),
                        Contains("label -1") && Contains("index 3"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4})),
                        Contains("cross_entropy") && Contains("int32 or int64") && Contains("float32"));
    // int64 labels are checked the same way, with their full value (beyond int32 too).
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector(std::vector<int64_t>{0, 4, 5, 1}, {4})),
                        Contains("label 5") && Contains("index 2") && Contains("5 classes"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector(std::vector<int64_t>{0, int64_t(1) << 32, 0, 1}, {4})),
                        Contains("label 4294967296") && Contains("index 1"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}, DType::uint8)), Contains("uint8"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({3}, DType::int32)),
                        Contains("(4, 5)") && Contains("(3)") && Contains("N"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({20}), Tensor::zeros({4}, DType::int32)),
                        Contains("(N, C)") && Contains("(20)"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4, 1}, DType::int32)), Contains("(4, 1)"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({4, 5}, DType::int32), Tensor::zeros({4}, DType::int32)),
                        Contains("logits") && Contains("int32"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({0, 5}), Tensor::zeros({0}, DType::int32)),
                        Contains("empty batch"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({4, 0}), Tensor::zeros({4}, DType::int32)), Contains("no classes"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}, DType::int32), 1.5),
                        Contains("label_smoothing") && Contains("1.5"));
    REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}, DType::int32), -0.1), Contains("label_smoothing"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor(), labels), Contains("cross_entropy") && Contains("undefined"));
}

TEST_CASE("softmax argument errors name the op", "[loss][errors]") {
    using Catch::Contains;
    REQUIRE_THROWS_WITH(softmax(Tensor::zeros({2, 3}), 2), Contains("softmax") && Contains("dim 2"));
    REQUIRE_THROWS_WITH(log_softmax(Tensor::zeros({2, 3}), -3), Contains("log_softmax") && Contains("-3"));
    REQUIRE_THROWS_WITH(softmax(Tensor::zeros({2}, DType::int32)), Contains("softmax") && Contains("int32"));
    REQUIRE_THROWS_WITH(log_softmax(Tensor()), Contains("undefined"));
}
