// Memory formats on the GPU: every 4-D op given a channels_last input returns its result and input gradient
// in channels_last, with the values and input gradients of the same op on the NCHW input on the same GPU
// (deterministic algorithms, compared bit for bit) where the NHWC kernels add in the NCHW order, and within
// the parity tolerances of the naive NCHW reference where they do not (convolutions through cuDNN's NHWC
// algorithms, batch norm, average pools); and the conversion itself on the device.
#include "support/catch.h"

#include <functional>
#include <utility>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
#include "support/kernel_sets.h"
#include "support/memory_format_cases.h"
#include "support/random.h"

using namespace dyad;

namespace {

Tensor channels_last(const Tensor& x) { return x.contiguous(MemoryFormat::channels_last); }

}  // namespace

TEST_CASE("cuda channels_last: conversion and every 4-D op", "[cuda][memory_format]") {
    const bool was_deterministic = deterministic();
    set_deterministic(true);
    const Tensor x0 = test::gpu(test::random_tensor({2, 3, 7, 9}, 20));
    const Tensor xl0 = channels_last(x0);
    CHECK(xl0.memory_format() == MemoryFormat::channels_last);
    CHECK(xl0.device().is_cuda());
    test::require_identical(test::cpu(x0), test::cpu(xl0));

    const std::vector<test::FormatOp> ops = test::memory_format_ops(Device::cuda());
    const std::vector<test::FormatOp> cpu_ops = test::memory_format_ops(Device::cpu());
    const test::KernelSet& cuda_set = test::kernel_sets().front();
    for (size_t i = 0; i < ops.size(); i++) {
        const test::FormatOp& op = ops[i];
        INFO(op.name);
        const Tensor x = x0.detach().clone().requires_grad_();
        const Tensor xl = channels_last(x0).detach().requires_grad_();
        const Tensor y = op.fn(x), yl = op.fn(xl);
        CHECK(yl.memory_format() == MemoryFormat::channels_last);
        const Tensor g = test::gpu(test::random_tensor(y.shape(), 21));
        y.backward(g);
        yl.backward(g);
        CHECK(xl.grad().memory_format() == MemoryFormat::channels_last);
        if (!op.y_tol) {
            test::require_identical(test::cpu(y), test::cpu(yl));
            test::require_identical(test::cpu(x.grad()), test::cpu(xl.grad()));
            continue;
        }
        // NHWC kernels (cuDNN's NHWC algorithms, channel-tiled sums) against naive's NCHW result.
        const auto [y_ref, dx_ref] = test::naive_reference([&] {
            const Tensor xc = test::cpu(x0).detach().requires_grad_();
            const Tensor yc = cpu_ops[i].fn(xc);
            yc.backward(test::cpu(g));
            return std::make_pair(yc.detach(), xc.grad());
        });
        test::require_close(y_ref, test::cpu(yl), op.y_tol(cuda_set));
        test::require_close(dx_ref, test::cpu(xl.grad()), op.dx_tol(cuda_set));
    }
    set_deterministic(was_deterministic);
}
