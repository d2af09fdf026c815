// CUDA softmax, log-softmax and cross-entropy against the naive CPU reference, on the case lists of the
// CPU tests (support/loss_cases.h): softmax along every dim of 3-D shapes (rows along the last dim and
// strided columns), cross-entropy for C = 1, 7, 200 and odd N with and without label smoothing, outputs
// and autograd gradients, non-contiguous inputs, huge logits, inf and NaN logits, the forward kernels into
// outputs that start as NaN and the accumulate contract of the *_bwd kernels, and a label out of range
// found on the GPU (thrown at the next synchronisation).
//
// Tolerances: the GPU works in float with CUDA's expf/logf (at most 2 ulp) and sums in a tree, naive in
// double; the errors are float roundings of terms like x - max (|x - max| up to ~25 here, so about 1e-6
// absolute) and of sums of up to 300 terms, so gpu.h's kReduceRtol / kReduceAtol (1e-5) leave a margin of
// about 10 and still catch any wrong index or formula. Cross-entropy gradients are dloss / N * (p - q):
// their absolute error scales with 1 / N, and so does their atol.
#include "support/catch.h"

#include <cmath>
#include <string>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "kernels/cuda/runtime.h"
#include "kernels/loss.h"
#include "support/compare.h"
#include "support/loss_cases.h"
#include "support/random.h"
#include "support/unwritten.h"

using namespace dyad;
using test::AllClose;
using test::count_nan;
using test::cpu;
using test::gpu;
using test::kReduceAtol;
using test::kReduceRtol;
using test::make;
using test::naive_reference;
using test::random_labels;
using test::values;

namespace {

Tensor device_floats(const std::vector<float>& v) { return gpu(Tensor::from_vector(v, {int64_t(v.size())})); }
std::vector<float> host_floats(const Tensor& t) { return cpu(t).to_vector<float>(); }

enum class Which { softmax, log_softmax };
Tensor run(Which w, const Tensor& x, int64_t dim) {
    return w == Which::softmax ? softmax(x, dim) : log_softmax(x, dim);
}
const char* name(Which w) { return w == Which::softmax ? "softmax" : "log_softmax"; }

// Output and input gradient (backward of sum(dy * y)) of softmax or log_softmax along dim, for x given
// on its device.
void forward_backward(Which w, const Tensor& x, int64_t dim, const Tensor& dy, Tensor& y, Tensor& dx) {
    Tensor xl = x.detach().requires_grad_();
    y = run(w, xl, dim);
    y.backward(dy);
    dx = xl.grad();
}

void require_softmax_parity(Which w, const Tensor& x_cpu, const Tensor& x_gpu, int64_t dim, uint64_t seed) {
    const Tensor dy = test::random_tensor(x_cpu.shape(), seed);
    Tensor y_ref, dx_ref, y, dx;
    naive_reference([&] {
        forward_backward(w, x_cpu, dim, dy, y_ref, dx_ref);
        return 0;
    });
    forward_backward(w, x_gpu, dim, gpu(dy), y, dx);
    REQUIRE(y.device() == Device::cuda());
    REQUIRE(dx.device() == Device::cuda());
    REQUIRE_THAT(values(y), AllClose(values(y_ref)).rtol(kReduceRtol).atol(kReduceAtol));
    REQUIRE_THAT(values(dx), AllClose(values(dx_ref)).rtol(kReduceRtol).atol(kReduceAtol));
}

// Loss and logits gradient (incoming gradient 0.5) of cross_entropy for logits and labels on one device.
void cross_entropy_fb(const Tensor& x, const Tensor& labels, double eps, Tensor& loss, Tensor& dx) {
    Tensor xl = x.detach().requires_grad_();
    loss = cross_entropy(xl, labels, eps);
    loss.backward(make({0.5}, {}, DType::float32).to(x.device()));
    dx = xl.grad();
}

}  // namespace

TEST_CASE("cuda softmax and log_softmax along every dim match naive, forward and backward", "[cuda][loss]") {
    uint64_t seed = 41;
    for (const Shape& shape : test::softmax_shapes()) {
        const Tensor x = test::random_tensor(shape, seed++) * 3.0;
        const Tensor xg = gpu(x);
        for (Which w : {Which::softmax, Which::log_softmax}) {
            for (int64_t dim = -1; dim < 3; dim++) {
                INFO(name(w) << " " << shape_str(shape) << " dim " << dim);
                require_softmax_parity(w, x, xg, dim, seed++);
            }
        }
    }
}

TEST_CASE("cuda softmax and log_softmax of non-contiguous inputs match naive", "[cuda][loss]") {
    // The same transposed view on both devices; softmax along each of its dims.
    const Tensor base = test::random_tensor({9, 7, 33}, 60) * 3.0;
    const Tensor x_cpu = base.transpose(0, 2), x_gpu = gpu(base).transpose(0, 2);
    REQUIRE_FALSE(x_gpu.is_contiguous());
    for (Which w : {Which::softmax, Which::log_softmax}) {
        for (int64_t dim = 0; dim < 3; dim++) {
            INFO(name(w) << " dim " << dim);
            require_softmax_parity(w, x_cpu, x_gpu, dim, uint64_t(61 + dim));
        }
    }
}

TEST_CASE("cuda cross_entropy matches naive for C = 1, 7, 200 and odd N, with and without smoothing", "[cuda][loss]") {
    for (int64_t c : test::cross_entropy_classes()) {
        for (int64_t n : test::cross_entropy_batches()) {
            const Tensor x = test::random_tensor({n, c}, uint64_t(n * 1000 + c)) * 4.0;
            const Tensor labels = random_labels(n, c, uint64_t(n + c));
            for (double eps : {0.0, 0.1}) {
                INFO("N " << n << " C " << c << " smoothing " << eps);
                Tensor loss_ref, dx_ref, loss, dx;
                naive_reference([&] {
                    cross_entropy_fb(x, labels, eps, loss_ref, dx_ref);
                    return 0;
                });
                cross_entropy_fb(gpu(x), gpu(labels), eps, loss, dx);
                REQUIRE(loss.device() == Device::cuda());
                REQUIRE_THAT(values(loss), AllClose(values(loss_ref)).rtol(kReduceRtol));
                REQUIRE_THAT(values(dx), AllClose(values(dx_ref)).rtol(kReduceRtol).atol(kReduceAtol / double(n)));
            }
        }
    }
}

TEST_CASE("cuda cross_entropy with int64 labels equals the int32 run bit for bit", "[cuda][loss]") {
    for (int64_t c : test::cross_entropy_classes()) {
        const int64_t n = 33;
        INFO("C " << c);
        const Tensor x = gpu(test::random_tensor({n, c}, uint64_t(c + 5)) * 4.0);
        const Tensor l32 = random_labels(n, c, uint64_t(c + 6));
        for (double eps : {0.0, 0.1}) {
            Tensor loss32, dx32, loss64, dx64;
            cross_entropy_fb(x, gpu(l32), eps, loss32, dx32);
            cross_entropy_fb(x, gpu(l32.to(DType::int64)), eps, loss64, dx64);
            test::require_identical(cpu(loss32), cpu(loss64));
            test::require_identical(cpu(dx32), cpu(dx64));
        }
    }
    // A bad int64 label is a deferred fault with its full value.
    const Tensor x = gpu(test::random_tensor({4, 5}, 91));
    const Tensor bad = gpu(Tensor::from_vector(std::vector<int64_t>{0, int64_t(1) << 33, 1, 2}, {4}));
    REQUIRE_THROWS_WITH(cross_entropy(x, bad).item(),
                        Catch::Contains("label 8589934592") && Catch::Contains("index 1"));
    REQUIRE_NOTHROW(synchronize());
}

TEST_CASE("cuda cross_entropy of non-contiguous logits matches naive", "[cuda][loss]") {
    // Logits (65, 200) viewed from memory laid out (200, 65).
    const Tensor base = test::random_tensor({200, 65}, 70) * 4.0;
    const Tensor labels = random_labels(65, 200, 71);
    Tensor loss_ref, dx_ref, loss, dx;
    naive_reference([&] {
        cross_entropy_fb(base.t(), labels, 0.1, loss_ref, dx_ref);
        return 0;
    });
    const Tensor xg = gpu(base).t();
    REQUIRE_FALSE(xg.is_contiguous());
    cross_entropy_fb(xg, gpu(labels), 0.1, loss, dx);
    REQUIRE_THAT(values(loss), AllClose(values(loss_ref)).rtol(kReduceRtol));
    REQUIRE_THAT(values(dx), AllClose(values(dx_ref)).rtol(kReduceRtol).atol(kReduceAtol / 65.0));
}

TEST_CASE("cuda softmax and cross_entropy stay finite for huge logits", "[cuda][loss]") {
    Tensor x = gpu(make({1e4, -1e4, 0, -1e4, 1e4, 5e3}, {2, 3}, DType::float32)).requires_grad_();
    const Tensor labels = gpu(Tensor::from_vector(std::vector<int32_t>{1, 0}, {2}));
    Tensor loss = cross_entropy(x, labels);
    REQUIRE(loss.item() == Approx(2e4).epsilon(1e-6));  // each row: lse = 1e4, x[label] = -1e4
    loss.backward();
    REQUIRE_THAT(values(x.grad()), AllClose(std::vector<double>{0.5, -0.5, 0, -0.5, 0.5, 0}).atol(1e-6));
    REQUIRE(std::isfinite(cross_entropy(x, labels, 0.2).item()));
    REQUIRE_THAT(values(softmax(x)), AllClose(std::vector<double>{1, 0, 0, 0, 1, 0}).atol(1e-6));
    REQUIRE_THAT(values(log_softmax(x)), AllClose(std::vector<double>{0, -2e4, -1e4, -2e4, 0, -5e3}).rtol(1e-6));
}

TEST_CASE("cuda cross_entropy kernels with inf and NaN logits: the loss shows it, other rows stay finite",
          "[cuda][loss]") {
    // The cases and the expected value of each, and why, are in tests/support/loss_cases.h.
    cuda::use_device(0);
    const int64_t n = test::kNonFiniteRows, c = test::kNonFiniteClasses;
    const Tensor labd = gpu(Tensor::from_vector(test::non_finite_labels(), {n}));
    const Tensor dloss = device_floats({1.0f});
    for (const test::NonFiniteLogits& k : test::non_finite_logit_cases()) {
        INFO(k.name);
        const std::vector<float> x = test::non_finite_logits(k);
        const Tensor xd = device_floats(x);
        Tensor loss = test::nan_tensor(1, Device::cuda()), lse = test::nan_tensor(n, Device::cuda());
        Tensor dx = device_floats(std::vector<float>(size_t(n * c), 0.0f));
        cuda::cross_entropy_fwd(n, c, loss.data<float>(), lse.data<float>(), xd.data<float>(), labd.data<int32_t>(),
                                k.eps);
        cuda::cross_entropy_bwd(n, c, dx.data<float>(), dloss.data<float>(), xd.data<float>(), lse.data<float>(),
                                labd.data<int32_t>(), k.eps);
        const std::string wrong = test::check_non_finite(k, x, host_floats(loss)[0], host_floats(lse), host_floats(dx));
        INFO(wrong);
        REQUIRE(wrong.empty());
    }
}

TEST_CASE("cuda softmax and cross_entropy backward kernels accumulate into dx", "[cuda][loss]") {
    // The forward kernels write into outputs that start as NaN (an element left unwritten fails); the
    // backward kernels add to what dx holds.
    cuda::use_device(0);
    // Rows along the last dim (inner 1) and strided columns (inner 4).
    for (const ReduceShape s : {ReduceShape{7, 33, 1}, ReduceShape{3, 5, 4}}) {
        INFO("outer " << s.outer << " reduce " << s.reduce << " inner " << s.inner);
        const int64_t n = s.outer * s.reduce * s.inner;
        const std::vector<float> x = test::random_tensor({n}, 80).to_vector<float>();
        const std::vector<float> dy = test::random_tensor({n}, 81).to_vector<float>();
        const std::vector<float> dx_init = test::random_tensor({n}, 82).to_vector<float>();
        const Tensor xd = device_floats(x), dyd = device_floats(dy), zero = device_floats(std::vector<float>(n, 0.0f));
        for (bool is_log : {false, true}) {
            INFO((is_log ? "log_softmax" : "softmax"));
            Tensor yd = test::nan_tensor(n, Device::cuda());
            if (is_log)
                cuda::log_softmax_fwd(s, yd.data<float>(), xd.data<float>());
            else
                cuda::softmax_fwd(s, yd.data<float>(), xd.data<float>());
            std::vector<float> y0 = test::nan_filled<float>(n);
            if (is_log)
                naive::log_softmax_fwd<float>(s, y0.data(), x.data());
            else
                naive::softmax_fwd<float>(s, y0.data(), x.data());
            REQUIRE(count_nan(host_floats(yd)) == 0);
            REQUIRE_THAT(host_floats(yd), AllClose(y0).rtol(kReduceRtol).atol(kReduceAtol));
            auto bwd = [&](Tensor& dx, const Tensor& g) {
                if (is_log)
                    cuda::log_softmax_bwd(s, dx.data<float>(), g.data<float>(), yd.data<float>());
                else
                    cuda::softmax_bwd(s, dx.data<float>(), g.data<float>(), yd.data<float>());
            };
            // dy = 0 adds exactly nothing.
            Tensor ones = device_floats(std::vector<float>(n, 1.0f));
            bwd(ones, zero);
            REQUIRE(host_floats(ones) == std::vector<float>(n, 1.0f));
            // Into initial values: the result is the initial values plus the gradient into zeros (the same
            // float terms, added to a different start: one rounding apart).
            Tensor acc = device_floats(dx_init), fresh = device_floats(std::vector<float>(n, 0.0f));
            bwd(acc, dyd);
            bwd(fresh, dyd);
            const std::vector<float> a = host_floats(acc), f = host_floats(fresh);
            std::vector<double> expect(static_cast<size_t>(n));
            for (size_t i = 0; i < expect.size(); i++) expect[i] = double(dx_init[i]) + double(f[i]);
            REQUIRE_THAT(std::vector<double>(a.begin(), a.end()), AllClose(expect).rtol(1e-6).atol(1e-6));
        }
    }
    // Cross-entropy backward into initial values.
    const int64_t n = 9, c = 13;
    const std::vector<float> x = test::random_tensor({n * c}, 83).to_vector<float>();
    const std::vector<int32_t> lab = random_labels(n, c, 84).to_vector<int32_t>();
    const std::vector<float> dx_init = test::random_tensor({n * c}, 85).to_vector<float>();
    const Tensor xd = device_floats(x), labd = gpu(Tensor::from_vector(lab, {n}));
    Tensor loss = test::nan_tensor(1, Device::cuda()), lse = test::nan_tensor(n, Device::cuda());
    cuda::cross_entropy_fwd(n, c, loss.data<float>(), lse.data<float>(), xd.data<float>(), labd.data<int32_t>(), 0.1f);
    const Tensor dloss = device_floats({2.0f});
    Tensor acc = device_floats(dx_init), fresh = device_floats(std::vector<float>(size_t(n * c), 0.0f));
    cuda::cross_entropy_bwd(n, c, acc.data<float>(), dloss.data<float>(), xd.data<float>(), lse.data<float>(),
                            labd.data<int32_t>(), 0.1f);
    cuda::cross_entropy_bwd(n, c, fresh.data<float>(), dloss.data<float>(), xd.data<float>(), lse.data<float>(),
                            labd.data<int32_t>(), 0.1f);
    const std::vector<float> a = host_floats(acc), f = host_floats(fresh);
    std::vector<double> expect(a.size());
    for (size_t i = 0; i < expect.size(); i++) expect[i] = double(dx_init[i]) + double(f[i]);
    REQUIRE_THAT(std::vector<double>(a.begin(), a.end()), AllClose(expect).rtol(1e-6).atol(1e-6));
    // The saved log-sum-exp is naive's.
    std::vector<float> loss0(1), lse0(static_cast<size_t>(n));
    naive::cross_entropy_fwd<float>(n, c, loss0.data(), lse0.data(), x.data(), lab.data(), 0.1f);
    REQUIRE(count_nan(host_floats(lse)) + count_nan(host_floats(loss)) == 0);
    REQUIRE_THAT(host_floats(lse), AllClose(lse0).rtol(kReduceRtol).atol(kReduceAtol));
    REQUIRE_THAT(host_floats(loss), AllClose(loss0).rtol(kReduceRtol));
}

TEST_CASE("cuda cross_entropy with a label out of range throws at the next synchronisation", "[cuda][loss]") {
    using Catch::Contains;
    const Tensor x = gpu(test::random_tensor({4, 5}, 90));
    const Tensor bad = gpu(Tensor::from_vector(std::vector<int32_t>{0, 4, 5, 1}, {4}));
    // Queuing the op does not wait for the GPU; the fault is thrown by the next synchronisation, as a
    // dyad::Error naming the label, its index and the class count.
    Tensor loss = cross_entropy(x, bad);
    bool thrown = false;
    try {
        synchronize();
    } catch (const Error& e) {
        thrown = true;
        REQUIRE_THAT(std::string(e.what()), Contains("cross_entropy") && Contains("label 5") && Contains("index 2") &&
                                                Contains("out of range") && Contains("5 classes"));
    }
    REQUIRE(thrown);
    // The fault is cleared once thrown; the bad row made the loss NaN (its label was never read as an
    // index).
    REQUIRE(std::isnan(loss.item()));
    // A negative label, found when the loss is read.
    const Tensor negative = gpu(Tensor::from_vector(std::vector<int32_t>{0, 0, 0, -1}, {4}));
    REQUIRE_THROWS_WITH(cross_entropy(x, negative).item(),
                        Contains("label -1") && Contains("index 3") && Contains("out of range"));
    // The GPU stays usable: a good call afterwards matches naive, and nothing more is thrown.
    const Tensor good = Tensor::from_vector(std::vector<int32_t>{0, 4, 3, 1}, {4});
    const double ref = naive_reference([&] { return cross_entropy(cpu(x), good).item(); });
    REQUIRE(cross_entropy(x, gpu(good)).item() == Approx(ref).epsilon(kReduceRtol));
    REQUIRE_NOTHROW(synchronize());
}
