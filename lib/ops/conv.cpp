// conv2d frontend: argument checks, the forward kernel, and a backward that runs only the kernels whose
// gradients are needed (the input image of a first layer needs no backward data pass).
#include <string>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "kernels/conv.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

namespace {

std::string size2_str(Size2 v) { return "(" + std::to_string(v.h) + ", " + std::to_string(v.w) + ")"; }

// Checks every argument and returns the kernel's shape struct.
Conv2dShape conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding) {
    detail::check_defined("conv2d", x, "x");
    detail::check_defined("conv2d", weight, "weight");
    detail::check_floating("conv2d", x);
    detail::check_same("conv2d", x, weight);
    if (bias.defined()) detail::check_same("conv2d", x, bias);
    DYAD_CHECK(x.dim() == 4, "conv2d: x must be 4-D (N, C, H, W), got ", shape_str(x.shape()));
    DYAD_CHECK(weight.dim() == 4, "conv2d: weight must be 4-D (K, C, R, S), got ", shape_str(weight.shape()));
    const std::string shapes = "x " + shape_str(x.shape()) + ", weight " + shape_str(weight.shape());
    DYAD_CHECK(x.size(1) == weight.size(1), "conv2d: channel mismatch: x has ", x.size(1), " channels, weight expects ",
               weight.size(1), " (", shapes, ")");
    DYAD_CHECK(weight.size(0) > 0 && weight.size(1) > 0 && weight.size(2) > 0 && weight.size(3) > 0,
               "conv2d: weight has an empty dim (", shapes, ")");
    if (bias.defined())
        DYAD_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "conv2d: bias must have shape (", weight.size(0),
                   ") for ", weight.size(0), " filters, got ", shape_str(bias.shape()), " (", shapes, ")");
    DYAD_CHECK(stride.h >= 1 && stride.w >= 1, "conv2d: stride must be >= 1, got ", size2_str(stride), " (", shapes,
               ")");
    DYAD_CHECK(padding.h >= 0 && padding.w >= 0, "conv2d: padding must be >= 0, got ", size2_str(padding), " (", shapes,
               ")");
    DYAD_CHECK(x.size(0) > 0, "conv2d: empty batch (", shapes, ")");

    Conv2dShape s;
    s.n = x.size(0), s.c = x.size(1), s.h = x.size(2), s.w = x.size(3);
    s.k = weight.size(0), s.r = weight.size(2), s.s = weight.size(3);
    s.stride_h = stride.h, s.stride_w = stride.w, s.pad_h = padding.h, s.pad_w = padding.w;
    DYAD_CHECK(s.r <= s.h + 2 * s.pad_h && s.s <= s.w + 2 * s.pad_w, "conv2d: kernel ", s.r, "x", s.s,
               " is larger than the padded input ", s.h + 2 * s.pad_h, "x", s.w + 2 * s.pad_w, " (", shapes,
               ", padding ", size2_str(padding), ")");
    s.p = (s.h + 2 * s.pad_h - s.r) / s.stride_h + 1;
    s.q = (s.w + 2 * s.pad_w - s.s) / s.stride_w + 1;
    return s;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding) {
    const Conv2dShape s = conv2d_shape(x, weight, bias, stride, padding);
    const Tensor xc = x.contiguous(), wc = weight.contiguous();
    const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
    Tensor y = Tensor::empty({s.n, s.k, s.p, s.q}, x.dtype(), x.device());
    DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), conv2d_fwd, s, y.data<T>(), xc.data<T>(), wc.data<T>(),
                        bc.defined() ? bc.data<T>() : nullptr);

    // Inputs x, weight and (when given) bias, in that order: the sink's indices.
    const bool has_bias = bias.defined();
    auto backward = [s, has_bias, xd = xc.detach(), wd = wc.detach()](const Tensor& dy, autograd::GradSink& g) {
        if (g.needs(0)) {
            const Tensor& dx = g.grad(0);
            DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), conv2d_bwd_data, s, dx.data<T>(), dy.data<T>(), wd.data<T>());
        }
        const bool need_db = has_bias && g.needs(2);
        if (g.needs(1)) {
            const Tensor& dw = g.grad(1);
            DYAD_DISPATCH_FLOAT(dw.device(), dw.dtype(), conv2d_bwd_filter, s, dw.data<T>(),
                                need_db ? g.grad(2).data<T>() : nullptr, dy.data<T>(), xd.data<T>());
        } else if (need_db) {
            // Only the bias: its gradient is dy summed over (N, P, Q), no filter pass.
            NoGradGuard ng;
            detail::accumulate(g.grad(2), sum(dy, {0, 2, 3}));
        }
    };
    if (has_bias)
        autograd::record("conv2d", {x, weight, bias}, y, std::move(backward));
    else
        autograd::record("conv2d", {x, weight}, y, std::move(backward));
    return y;
}

}  // namespace dyad
