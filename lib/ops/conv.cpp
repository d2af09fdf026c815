// conv2d frontend: argument checks, the forward kernel, and a backward that runs only the kernels whose
// gradients are needed (the input image of a first layer needs no backward data pass). conv2d_relu is
// the same convolution with a ReLU fused into the forward pass on the GPU; its backward masks dy by the
// output's sign and then runs conv2d's backward. A convolution runs in channels_last (NHWC kernels, the
// weight read as (K, R, S, C) through a recorded conversion, y and the gradients channels_last) when x or
// the weight is channels_last, as PyTorch decides; in NCHW otherwise.
#include <string>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

namespace {

std::string size2_str(Size2 v) { return "(" + std::to_string(v.h) + ", " + std::to_string(v.w) + ")"; }

// Checks every argument and returns the kernel's shape struct.
Conv2dShape conv2d_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
                         Size2 padding) {
    detail::check_defined(op, x, "x");
    detail::check_defined(op, weight, "weight");
    detail::check_floating(op, x);
    detail::check_same(op, x, weight);
    if (bias.defined()) detail::check_same(op, x, bias);
    DYAD_CHECK(x.dim() == 4, op, ": x must be 4-D (N, C, H, W), got ", shape_str(x.shape()));
    DYAD_CHECK(weight.dim() == 4, op, ": weight must be 4-D (K, C, R, S), got ", shape_str(weight.shape()));
    const std::string shapes = "x " + shape_str(x.shape()) + ", weight " + shape_str(weight.shape());
    DYAD_CHECK(x.size(1) == weight.size(1), op, ": channel mismatch: x has ", x.size(1), " channels, weight expects ",
               weight.size(1), " (", shapes, ")");
    DYAD_CHECK(weight.size(0) > 0 && weight.size(1) > 0 && weight.size(2) > 0 && weight.size(3) > 0, op,
               ": weight has an empty dim (", shapes, ")");
    if (bias.defined())
        DYAD_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op, ": bias must have shape (", weight.size(0),
                   ") for ", weight.size(0), " filters, got ", shape_str(bias.shape()), " (", shapes, ")");
    DYAD_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be >= 1, got ", size2_str(stride), " (", shapes, ")");
    DYAD_CHECK(padding.h >= 0 && padding.w >= 0, op, ": padding must be >= 0, got ", size2_str(padding), " (", shapes,
               ")");
    DYAD_CHECK(x.size(0) > 0, op, ": empty batch (", shapes, ")");

    Conv2dShape s;
    s.n = x.size(0), s.c = x.size(1), s.h = x.size(2), s.w = x.size(3);
    s.k = weight.size(0), s.r = weight.size(2), s.s = weight.size(3);
    s.stride_h = stride.h, s.stride_w = stride.w, s.pad_h = padding.h, s.pad_w = padding.w;
    DYAD_CHECK(s.r <= s.h + 2 * s.pad_h && s.s <= s.w + 2 * s.pad_w, op, ": kernel ", s.r, "x", s.s,
               " is larger than the padded input ", s.h + 2 * s.pad_h, "x", s.w + 2 * s.pad_w, " (", shapes,
               ", padding ", size2_str(padding), ")");
    s.p = (s.h + 2 * s.pad_h - s.r) / s.stride_h + 1;
    s.q = (s.w + 2 * s.pad_w - s.s) / s.stride_w + 1;
    return s;
}

// conv2d's backward given dy: the kernels whose gradients are needed. Inputs x, weight and (when given)
// bias, in that order: the sink's indices.
void conv2d_backward(const Conv2dShape& s, bool has_bias, const Tensor& xd, const Tensor& wd, const Tensor& dy,
                     autograd::GradSink& g) {
    if (g.needs(0)) {
        const Tensor& dx = g.grad(0);
        DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), conv2d_bwd_data, s, dx.data<T>(), dy.data<T>(), wd.data<T>());
    }
    const bool need_db = has_bias && g.needs(2);
    if (g.needs(1)) {
        const Tensor& dw = g.grad(1);
        DYAD_DISPATCH_FLOAT_BF16(dw.device(), dw.dtype(), conv2d_bwd_filter, s, dw.data<T>(),
                                 need_db ? g.grad(2).data<T>() : nullptr, dy.data<T>(), xd.data<T>());
    } else if (need_db) {
        // Only the bias: its gradient is dy summed over (N, P, Q), no filter pass.
        NoGradGuard ng;
        detail::accumulate(g.grad(2), sum(dy, {0, 2, 3}));
    }
}

void record_conv(const char* name, const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                 autograd::BackwardFn backward, std::initializer_list<Tensor> saved) {
    if (bias.defined())
        autograd::record(name, {x, weight, bias}, y, std::move(backward), saved);
    else
        autograd::record(name, {x, weight}, y, std::move(backward), saved);
}

// The operands in the layout s asks for: x read in it, the weight as (K, C, R, S) or (K, R, S, C).
struct ConvOperands {
    Tensor x, weight, bias;
    MemoryFormat format;
};
ConvOperands conv_operands(Conv2dShape& s, const Tensor& x, const Tensor& weight, const Tensor& bias) {
    const bool cl =
        x.memory_format() == MemoryFormat::channels_last || weight.memory_format() == MemoryFormat::channels_last;
    s.channels_last = cl;
    const MemoryFormat f = cl ? MemoryFormat::channels_last : MemoryFormat::contiguous;
    return {x.contiguous(f), weight.contiguous(f), bias.defined() ? bias.contiguous() : Tensor(), f};
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding) {
    Conv2dShape s = conv2d_shape("conv2d", x, weight, bias, stride, padding);
    const auto [xc, wc, bc, f] = conv_operands(s, x, weight, bias);
    Tensor y = detail::empty_in({s.n, s.k, s.p, s.q}, x.dtype(), x.device(), f);
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), conv2d_fwd, s, y.data<T>(), xc.data<T>(), wc.data<T>(),
                             bc.defined() ? bc.data<T>() : nullptr);

    const bool has_bias = bias.defined();
    // The node's inputs are the operands as the kernels read them: wc's gradient goes back through its
    // layout conversion, when there was one, to the weight.
    record_conv("conv2d", xc, wc, bias, y,
                [s, has_bias, xd = xc.detach(), wd = wc.detach()](const Tensor& dy, autograd::GradSink& g) {
                    conv2d_backward(s, has_bias, xd, wd, dy, g);
                },
                {xc, wc});
    autograd::mark_format_aware(y);
    return y;
}

Tensor conv2d_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding) {
    Conv2dShape s = conv2d_shape("conv2d_relu", x, weight, bias, stride, padding);
    const auto [xc, wc, bc, f] = conv_operands(s, x, weight, bias);
    Tensor y = detail::empty_in({s.n, s.k, s.p, s.q}, x.dtype(), x.device(), f);
    if (x.device().is_cuda()) {
        // One fused cuDNN call where cuDNN offers it.
        if (x.dtype() == DType::bfloat16) {
            DYAD_CUDA_CALL(x.device(), conv2d_bias_relu_fwd, s, y.data<bfloat16>(), xc.data<bfloat16>(),
                           wc.data<bfloat16>(), bc.defined() ? bc.data<bfloat16>() : nullptr);
        } else {
            if (x.dtype() != DType::float32) detail::fail_cuda_dtype(__FILE__, __LINE__, "conv2d_relu", x.dtype());
            DYAD_CUDA_CALL(x.device(), conv2d_bias_relu_fwd, s, y.data<float>(), xc.data<float>(), wc.data<float>(),
                           bc.defined() ? bc.data<float>() : nullptr);
        }
    } else {
        DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), conv2d_fwd, s, y.data<T>(), xc.data<T>(), wc.data<T>(),
                                 bc.defined() ? bc.data<T>() : nullptr);
        DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), relu_fwd, y.data<T>(), y.data<T>(), y.numel());  // in place
    }

    // y > 0 exactly where the convolution's output is > 0: dy masked by it is the gradient at the ReLU's
    // input (0 at exactly 0, as relu), which conv2d's backward takes from there.
    const bool has_bias = bias.defined();
    record_conv("conv2d_relu", xc, wc, bias, y,
                [s, has_bias, xd = xc.detach(), wd = wc.detach(), yd = y.detach(), fmt = f](const Tensor& dy,
                                                                                            autograd::GradSink& g) {
                    Tensor masked = detail::empty_in(dy.shape(), dy.dtype(), dy.device(), fmt);
                    masked.zero_();
                    DYAD_DISPATCH_FLOAT_BF16(dy.device(), dy.dtype(), relu_bwd, masked.data<T>(), dy.data<T>(),
                                             yd.data<T>(), masked.numel());
                    conv2d_backward(s, has_bias, xd, wd, masked, g);
                },
                {xc, wc, y});
    autograd::mark_format_aware(y);
    return y;
}

}  // namespace dyad
