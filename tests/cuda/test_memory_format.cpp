// Memory formats on the GPU: every 4-D op given a channels_last input returns its result in channels_last,
// with the values and input gradients of the same op on the NCHW input on the same GPU (deterministic
// algorithms, so the two runs can be compared bit for bit), and the conversion itself on the device.
#include "support/catch.h"

#include <functional>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
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
    for (const test::FormatOp& op : ops) {
        INFO(op.name);
        const Tensor x = x0.detach().clone().requires_grad_();
        const Tensor xl = channels_last(x0).detach().requires_grad_();
        const Tensor y = op.fn(x), yl = op.fn(xl);
        CHECK(yl.memory_format() == MemoryFormat::channels_last);
        test::require_identical(test::cpu(y), test::cpu(yl));
        const Tensor g = test::gpu(test::random_tensor(y.shape(), 21));
        y.backward(g);
        yl.backward(g);
        test::require_identical(test::cpu(x.grad()), test::cpu(xl.grad()));
    }
    set_deterministic(was_deterministic);
}
