// Memory formats on the GPU: every 4-D op given a channels_last input returns its result in channels_last,
// with the values and input gradients of the same op on the NCHW input on the same GPU (deterministic
// algorithms, so the two runs can be compared bit for bit), and the conversion itself on the device.
#include "support/catch.h"

#include <functional>
#include <vector>

#include "cuda/gpu.h"
#include "dyad/dyad.h"
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

    const Tensor w = test::gpu(test::random_tensor({6, 3, 3, 3}, 10)), b = test::gpu(test::random_tensor({6}, 11));
    const Tensor gamma = test::gpu(test::random_tensor({3}, 12)), beta = test::gpu(test::random_tensor({3}, 13));
    const Tensor bias = test::gpu(test::random_tensor({1, 3, 1, 1}, 14));
    const Tensor mean0 = test::gpu(Tensor::zeros({3})), var1 = test::gpu(Tensor::ones({3}));
    struct Op {
        const char* name;
        std::function<Tensor(const Tensor&)> fn;
    };
    const std::vector<Op> ops{
        {"relu", [](const Tensor& x) { return relu(x); }},
        {"exp", [](const Tensor& x) { return exp(x); }},
        {"add (broadcast bias)", [&](const Tensor& x) { return add(x, bias); }},
        {"mul (two inputs)", [](const Tensor& x) { return mul(x, x); }},
        {"conv2d",
         [&](const Tensor& x) {
             return conv2d(x, w, b, {1, 1}, {1, 1});
         }},
        {"conv2d_relu",
         [&](const Tensor& x) {
             return conv2d_relu(x, w, b, {2, 2}, {1, 1});
         }},
        {"max_pool2d",
         [](const Tensor& x) {
             return max_pool2d(x, {2, 2}, {2, 2}, {0, 0});
         }},
        {"avg_pool2d",
         [](const Tensor& x) {
             return avg_pool2d(x, {2, 2}, {1, 1}, {0, 0});
         }},
        {"adaptive_avg_pool2d",
         [](const Tensor& x) {
             return adaptive_avg_pool2d(x, {2, 3});
         }},
        {"batch_norm2d",
         [&](const Tensor& x) { return batch_norm2d(x, mean0.clone(), var1.clone(), gamma, beta, true, 0.1, 1e-5); }},
        {"batch_norm2d_relu",
         [&](const Tensor& x) {
             return batch_norm2d_relu(x, mean0.clone(), var1.clone(), gamma, beta, true, 0.1, 1e-5);
         }},
        {"dropout",
         [](const Tensor& x) {
             manual_seed(77);
             return dropout(x, 0.3, true);
         }},
    };
    for (const Op& op : ops) {
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
