// The 4-D ops the memory-format tests run on a channels_last input and on the same NCHW input (tests/core
// and tests/cuda test_memory_format.cpp): every op that gives a 4-D result, with its parameters on `device`.
// An op whose channels_last kernels add in another order than its NCHW ones on some set (convolutions,
// batch norm, average pools: NHWC im2col against Winograd, channel-blocked sums) names the tolerances of
// its result and input gradient against the naive NCHW reference; the others give the same bits as the
// NCHW run on every set. The naive set's channels_last kernels add in its NCHW order: identical there.
#pragma once
#include <functional>
#include <vector>

#include "dyad/dyad.h"
#include "support/random.h"
#include "support/tolerances.h"

namespace dyad::test {

struct FormatOp {
    const char* name;
    std::function<Tensor(const Tensor&)> fn;
    // Null: identical to the NCHW run on every set. Else the tolerances against naive's NCHW result.
    std::function<Tolerance(const KernelSet&)> y_tol = nullptr, dx_tol = nullptr;
};

inline std::vector<FormatOp> memory_format_ops(Device device) {
    const Tensor w = random_tensor({6, 3, 3, 3}, 10).to(device), b = random_tensor({6}, 11).to(device);
    const Tensor gamma = random_tensor({3}, 12).to(device), beta = random_tensor({3}, 13).to(device);
    const Tensor bias = random_tensor({1, 3, 1, 1}, 14).to(device);
    const Tensor mean0 = Tensor::zeros({3}, DType::float32, device), var1 = Tensor::ones({3}, DType::float32, device);
    // A convolution's output sums C*R*S = 27 products, its input gradient K*R*S = 54.
    const auto conv_y = [](const KernelSet& ks) { return tol::conv(ks, 27); };
    const auto conv_dx = [](const KernelSet& ks) { return tol::conv(ks, 54); };
    return {
        {"relu", [](const Tensor& x) { return relu(x); }},
        {"exp", [](const Tensor& x) { return exp(x); }},
        {"tanh", [](const Tensor& x) { return tanh(x); }},
        {"add (broadcast bias)", [=](const Tensor& x) { return add(x, bias); }},
        {"mul (bias first)", [=](const Tensor& x) { return mul(bias, x); }},
        {"mul (two inputs)", [](const Tensor& x) { return mul(x, x); }},
        {"conv2d",
         [=](const Tensor& x) {
             return conv2d(x, w, b, {1, 1}, {1, 1});
         },
         conv_y, conv_dx},
        {"conv2d stride 2",
         [=](const Tensor& x) {
             return conv2d(x, w, b, {2, 2}, {1, 1});
         },
         conv_y, conv_dx},
        {"conv2d_relu",
         [=](const Tensor& x) {
             return conv2d_relu(x, w, b, {1, 1}, {1, 1});
         },
         conv_y, conv_dx},
        {"max_pool2d",
         [](const Tensor& x) {
             return max_pool2d(x, {2, 2}, {2, 2}, {0, 0});
         }},
        {"relu_max_pool2d",
         [](const Tensor& x) {
             return relu_max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
         }},
        {"avg_pool2d",
         [](const Tensor& x) {
             return avg_pool2d(x, {2, 2}, {1, 1}, {0, 0});
         },
         tol::pool_avg_fwd, tol::exact},
        {"adaptive_avg_pool2d",
         [](const Tensor& x) {
             return adaptive_avg_pool2d(x, {2, 3});
         },
         tol::pool_avg_fwd, tol::exact},
        {"batch_norm2d",
         [=](const Tensor& x) { return batch_norm2d(x, mean0.clone(), var1.clone(), gamma, beta, true, 0.1, 1e-5); },
         tol::bn_output, tol::bn_output},
        {"batch_norm2d_relu",
         [=](const Tensor& x) {
             return batch_norm2d_relu(x, mean0.clone(), var1.clone(), gamma, beta, true, 0.1, 1e-5);
         },
         tol::bn_output, tol::bn_output},
        {"dropout",
         [](const Tensor& x) {
             manual_seed(77);
             return dropout(x, 0.3, true);
         }},
    };
}

}  // namespace dyad::test
