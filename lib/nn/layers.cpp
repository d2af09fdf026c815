// The layers: each registers its parameters and buffers under PyTorch's names, initialises them like
// PyTorch, and forwards to the functional op (lib/ops). extra_repr() prints PyTorch's argument strings.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dyad/autograd.h"
#include "dyad/dist.h"
#include "dyad/nn.h"
#include "kernels/elementwise.h"
#include "lib/dispatch.h"

namespace dyad::nn {

namespace {

// Uniform values in [-bound, bound) from the manual_seed generator.
Tensor uniform(const Shape& shape, double bound) {
    NoGradGuard ng;
    return Tensor::rand(shape) * (2.0 * bound) - bound;
}

// "(3, 3)": a Size2 as PyTorch prints a normalised pair.
std::string pair_str(Size2 s) { return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")"; }

// "2" when both sizes agree, else "(2, 3)": how PyTorch prints the pooling arguments given as an int.
std::string size_str(Size2 s) { return s.h == s.w ? std::to_string(s.h) : pair_str(s); }

// A float32 parameter for a bfloat16 input: its bfloat16 copy, recorded, so the gradient reaches the
// float32 parameter (the master weight) in float32. Anything else as it is (a mismatch is the op's error).
Tensor as_input_dtype(const Tensor& p, const Tensor& x) {
    if (p.defined() && x.defined() && x.dtype() == DType::bfloat16 && p.dtype() == DType::float32)
        return p.to(DType::bfloat16);
    return p;
}

// A double as Python's repr prints it: the shortest digits that read back the same, "0.1", "1e-05",
// "1.0".
std::string py_float(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    int digits = 1;
    for (; digits < 17; digits++) {
        std::snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
    const int exponent = std::atoi(std::strchr(buf, 'e') + 1);
    if (v != 0 && (exponent < -4 || exponent >= 16)) return buf;
    std::snprintf(buf, sizeof buf, "%.*f", std::max(0, digits - 1 - exponent), v);
    std::string s = buf;
    if (s.find('.') == std::string::npos) s += ".0";
    return s;
}

void check_size(const char* layer, const char* what, Size2 s, int64_t min) {
    DYAD_CHECK(s.h >= min && s.w >= min, layer, ": ", what, " ", pair_str(s), " must be >= ", min);
}

}  // namespace

// ---------------------------------------------------------------------------- Conv2d
Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride, Size2 padding, bool bias)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), stride_(stride), padding_(padding) {
    DYAD_CHECK(in_ > 0 && out_ > 0, "Conv2d: channels must be positive, got in ", in_, " out ", out_);
    check_size("Conv2d", "kernel_size", kernel_, 1);
    check_size("Conv2d", "stride", stride_, 1);
    check_size("Conv2d", "padding", padding_, 0);
    const double bound = 1.0 / std::sqrt(double(in_ * kernel_.h * kernel_.w));
    weight_ = &register_parameter("weight", uniform({out_, in_, kernel_.h, kernel_.w}, bound));
    bias_ = bias ? &register_parameter("bias", uniform({out_}, bound)) : &no_bias_;
}

Tensor Conv2d::forward(const Tensor& x) {
    return conv2d(x, as_input_dtype(*weight_, x), as_input_dtype(*bias_, x), stride_, padding_);
}

Tensor Conv2d::forward_relu(const Tensor& x) {
    return conv2d_relu(x, as_input_dtype(*weight_, x), as_input_dtype(*bias_, x), stride_, padding_);
}

std::string Conv2d::extra_repr() const {
    std::string s = std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + pair_str(kernel_) +
                    ", stride=" + pair_str(stride_);
    if (!(padding_ == Size2(0))) s += ", padding=" + pair_str(padding_);
    if (!bias_->defined()) s += ", bias=False";
    return s;
}

// ---------------------------------------------------------------------------- Linear
Linear::Linear(int64_t in_features, int64_t out_features, bool bias) : in_(in_features), out_(out_features) {
    DYAD_CHECK(in_ > 0 && out_ > 0, "Linear: features must be positive, got in ", in_, " out ", out_);
    const double bound = 1.0 / std::sqrt(double(in_));
    weight_ = &register_parameter("weight", uniform({out_, in_}, bound));
    bias_ = bias ? &register_parameter("bias", uniform({out_}, bound)) : &no_bias_;
}

Tensor Linear::forward(const Tensor& x) { return linear(x, as_input_dtype(*weight_, x), as_input_dtype(*bias_, x)); }

std::string Linear::extra_repr() const {
    return "in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
           ", bias=" + (bias_->defined() ? "True" : "False");
}

// ---------------------------------------------------------------------------- activations, pooling
Tensor ReLU::forward(const Tensor& x) { return relu(x); }

MaxPool2d::MaxPool2d(Size2 kernel_size, Size2 stride, Size2 padding)
    : kernel_(kernel_size), stride_(stride == Size2(0) ? kernel_size : stride), padding_(padding) {
    check_size("MaxPool2d", "kernel_size", kernel_, 1);
    check_size("MaxPool2d", "stride", stride_, 1);
    check_size("MaxPool2d", "padding", padding_, 0);
}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_, stride_, padding_); }

Tensor MaxPool2d::forward_relu(const Tensor& x) { return relu_max_pool2d(x, kernel_, stride_, padding_); }

std::string MaxPool2d::extra_repr() const {
    return "kernel_size=" + size_str(kernel_) + ", stride=" + size_str(stride_) + ", padding=" + size_str(padding_) +
           ", dilation=1, ceil_mode=False";
}

AvgPool2d::AvgPool2d(Size2 kernel_size, Size2 stride, Size2 padding)
    : kernel_(kernel_size), stride_(stride == Size2(0) ? kernel_size : stride), padding_(padding) {
    check_size("AvgPool2d", "kernel_size", kernel_, 1);
    check_size("AvgPool2d", "stride", stride_, 1);
    check_size("AvgPool2d", "padding", padding_, 0);
}

Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel_, stride_, padding_); }

std::string AvgPool2d::extra_repr() const {
    return "kernel_size=" + size_str(kernel_) + ", stride=" + size_str(stride_) + ", padding=" + size_str(padding_);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_(output_size) {
    check_size("AdaptiveAvgPool2d", "output_size", output_, 1);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_); }

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + size_str(output_); }

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_, end_); }

std::string Flatten::extra_repr() const {
    return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
}

// ---------------------------------------------------------------------------- Dropout
Dropout::Dropout(double p) : p_(p) { DYAD_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p); }

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training()); }

std::string Dropout::extra_repr() const { return "p=" + py_float(p_) + ", inplace=False"; }

// ---------------------------------------------------------------------------- BatchNorm2d
BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, bool affine)
    : c_(num_features), eps_(eps), momentum_(momentum), affine_(affine) {
    DYAD_CHECK(c_ > 0, "BatchNorm2d: num_features must be positive, got ", c_);
    DYAD_CHECK(eps_ > 0, "BatchNorm2d: eps must be positive, got ", eps_);
    DYAD_CHECK(momentum_ >= 0 && momentum_ <= 1, "BatchNorm2d: momentum must be in [0, 1], got ", momentum_);
    if (affine_) {
        weight_ = &register_parameter("weight", Tensor::ones({c_}));
        bias_ = &register_parameter("bias", Tensor::zeros({c_}));
    }
    running_mean_ = &register_buffer("running_mean", Tensor::zeros({c_}));
    running_var_ = &register_buffer("running_var", Tensor::ones({c_}));
    num_batches_tracked_ = &register_buffer("num_batches_tracked", Tensor::zeros({}, DType::int32));
}

Tensor BatchNorm2d::forward(const Tensor& x) { return run(x, false); }

Tensor BatchNorm2d::forward_relu(const Tensor& x) { return run(x, true); }

Tensor BatchNorm2d::run(const Tensor& x, bool relu) {
    const bool training = is_training();
    if (training) {
        // PyTorch counts the batch before normalising; the count only matters for momentum=None, which
        // dyad does not offer, but it is part of the state_dict.
        Tensor& n = *num_batches_tracked_;
        NoGradGuard ng;
        if (n.device().is_cpu()) {
            *n.data<int32_t>() += 1;
        } else {
            DYAD_CUDA_CALL(n.device(), add_i32, n.data<int32_t>(), 1, 1);  // no host round trip
        }
    }
    const Tensor& w = affine_ ? *weight_ : none_;
    const Tensor& b = affine_ ? *bias_ : none_;
    if (training && sync_ && dist::world_size() > 1) {
        Tensor y = dist::sync_batch_norm2d(x, *running_mean_, *running_var_, w, b, momentum_, eps_);
        return relu ? dyad::relu(y) : y;
    }
    return relu ? batch_norm2d_relu(x, *running_mean_, *running_var_, w, b, training, momentum_, eps_)
                : batch_norm2d(x, *running_mean_, *running_var_, w, b, training, momentum_, eps_);
}

std::string BatchNorm2d::extra_repr() const {
    return std::to_string(c_) + ", eps=" + py_float(eps_) + ", momentum=" + py_float(momentum_) +
           ", affine=" + (affine_ ? "True" : "False") + ", track_running_stats=True";
}

// ---------------------------------------------------------------------------- BasicBlock
BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride) {
    DYAD_CHECK(stride >= 1, "BasicBlock: stride must be >= 1, got ", stride);
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, stride, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out_channels));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, false));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out_channels));
    if (stride != 1 || in_channels != out_channels) {
        auto ds = std::make_shared<Sequential>();
        ds->push_back(std::make_shared<Conv2d>(in_channels, out_channels, 1, stride, 0, false));
        ds->push_back(std::make_shared<BatchNorm2d>(out_channels));
        downsample_ = register_module("downsample", ds);
    }
}

Tensor BasicBlock::forward(const Tensor& x) {
    Tensor out = fusion_active() ? bn1_->forward_relu((*conv1_)(x)) : relu((*bn1_)((*conv1_)(x)));
    out = (*bn2_)((*conv2_)(out));
    const Tensor identity = downsample_ ? (*downsample_)(x) : x;
    return relu(out + identity);
}

}  // namespace dyad::nn
