// Pooling frontends: argument checks, the forward kernel, and a backward that adds into dx. Max pooling
// saves the int32 position of each window's maximum within its input plane; the backward scatters
// through it without looking at x again. relu_max_pool2d is max pooling of relu(x) in one pass; its
// backward also reads y, to pass gradient only where the output is > 0. Every pool runs in its input's
// memory format (channels_last kernels for a channels_last x): y, the positions and the gradients in it.
#include <string>

#include "dyad/ops.h"
#include "kernels/pool.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

namespace {

std::string size2_str(Size2 v) { return "(" + std::to_string(v.h) + ", " + std::to_string(v.w) + ")"; }

// Checks shared by every pool: x defined, floating, 4-D, a non-empty batch and non-empty planes.
void check_input(const char* op, const Tensor& x) {
    detail::check_defined(op, x, "x");
    detail::check_floating(op, x);
    DYAD_CHECK(x.dim() == 4, op, ": x must be 4-D (N, C, H, W), got ", shape_str(x.shape()));
    DYAD_CHECK(x.size(0) > 0, op, ": empty batch, x ", shape_str(x.shape()));
    DYAD_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": empty image plane, x ", shape_str(x.shape()));
}

// Checks the window arguments of a fixed-window pool and returns the kernel's shape struct.
Pool2dShape window_shape(const char* op, const Tensor& x, Size2 kernel, Size2 stride, Size2 padding) {
    check_input(op, x);
    const std::string xs = "x " + shape_str(x.shape());
    DYAD_CHECK(kernel.h >= 1 && kernel.w >= 1, op, ": kernel size must be >= 1, got ", size2_str(kernel), " (", xs,
               ")");
    DYAD_CHECK(stride.h >= 0 && stride.w >= 0, op, ": stride must be >= 1 (or 0 for the kernel size), got ",
               size2_str(stride), " (", xs, ")");
    DYAD_CHECK(padding.h >= 0 && padding.w >= 0, op, ": padding must be >= 0, got ", size2_str(padding), " (", xs, ")");
    DYAD_CHECK(2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w, op, ": padding ", size2_str(padding),
               " must be at most half the kernel size ", size2_str(kernel), " (", xs, ")");
    Pool2dShape s;
    s.n = x.size(0), s.c = x.size(1), s.h = x.size(2), s.w = x.size(3);
    s.kh = kernel.h, s.kw = kernel.w;
    s.stride_h = stride.h == 0 ? kernel.h : stride.h;
    s.stride_w = stride.w == 0 ? kernel.w : stride.w;
    s.pad_h = padding.h, s.pad_w = padding.w;
    DYAD_CHECK(s.kh <= s.h + 2 * s.pad_h && s.kw <= s.w + 2 * s.pad_w, op, ": kernel ", s.kh, "x", s.kw,
               " is larger than the padded input ", s.h + 2 * s.pad_h, "x", s.w + 2 * s.pad_w, " (", xs, ", padding ",
               size2_str(padding), ")");
    s.p = (s.h + 2 * s.pad_h - s.kh) / s.stride_h + 1;
    s.q = (s.w + 2 * s.pad_w - s.kw) / s.stride_w + 1;
    s.channels_last = x.memory_format() == MemoryFormat::channels_last;
    return s;
}

MemoryFormat format_of(const Pool2dShape& s) {
    return s.channels_last ? MemoryFormat::channels_last : MemoryFormat::contiguous;
}

// An output (or position) tensor of s's output shape in s's layout.
Tensor pool_output(const Pool2dShape& s, DType dtype, Device device) {
    return detail::empty_in({s.n, s.c, s.p, s.q}, dtype, device, format_of(s));
}

}  // namespace

Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding) {
    const Pool2dShape s = window_shape("max_pool2d", x, kernel, stride, padding);
    DYAD_CHECK(s.h * s.w <= INT32_MAX, "max_pool2d: an image plane of ", s.h, "x", s.w,
               " elements does not fit an int32 index");
    const Tensor xc = x.contiguous(format_of(s));
    Tensor y = pool_output(s, x.dtype(), x.device());
    // The positions of the maxima serve backward only: not made when nothing is recorded (inference).
    if (!autograd::needs_grad({x})) {
        DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), max_pool2d_fwd, s, y.data<T>(), nullptr, xc.data<T>());
        return y;
    }
    Tensor idx = pool_output(s, DType::int32, x.device());
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), max_pool2d_fwd, s, y.data<T>(), idx.data<int32_t>(), xc.data<T>());
    autograd::record("max_pool2d", {x}, y, [s, idx](const Tensor& dy, autograd::GradSink& g) {
        const Tensor& dx = g.grad(0);
        DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), max_pool2d_bwd, s, dx.data<T>(), dy.data<T>(),
                                 idx.data<int32_t>());
    });
    autograd::mark_format_aware(y);
    return y;
}

Tensor relu_max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding) {
    const char* op = "relu_max_pool2d";
    const Pool2dShape s = window_shape(op, x, kernel, stride, padding);
    DYAD_CHECK(s.h * s.w <= INT32_MAX, op, ": an image plane of ", s.h, "x", s.w,
               " elements does not fit an int32 index");
    const Tensor xc = x.contiguous(format_of(s));
    Tensor y = pool_output(s, x.dtype(), x.device());
    if (!autograd::needs_grad({x})) {  // inference: no positions (see max_pool2d)
        DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), relu_max_pool2d_fwd, s, y.data<T>(), nullptr, xc.data<T>());
        return y;
    }
    Tensor idx = pool_output(s, DType::int32, x.device());
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), relu_max_pool2d_fwd, s, y.data<T>(), idx.data<int32_t>(),
                             xc.data<T>());
    // The backward reads y (which outputs are > 0): saved, so an in-place update of y before backward
    // is an error rather than a wrong gradient.
    autograd::record(op, {x}, y,
                     [s, idx, yd = y.detach()](const Tensor& dy, autograd::GradSink& g) {
                         const Tensor& dx = g.grad(0);
                         DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), relu_max_pool2d_bwd, s, dx.data<T>(),
                                                  dy.data<T>(), idx.data<int32_t>(), yd.data<T>());
                     },
                     {y});
    autograd::mark_format_aware(y);
    return y;
}

Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding) {
    const Pool2dShape s = window_shape("avg_pool2d", x, kernel, stride, padding);
    const Tensor xc = x.contiguous(format_of(s));
    Tensor y = pool_output(s, x.dtype(), x.device());
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), avg_pool2d_fwd, s, y.data<T>(), xc.data<T>());
    autograd::record("avg_pool2d", {x}, y, [s](const Tensor& dy, autograd::GradSink& g) {
        const Tensor& dx = g.grad(0);
        DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), avg_pool2d_bwd, s, dx.data<T>(), dy.data<T>());
    });
    autograd::mark_format_aware(y);
    return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output) {
    const char* op = "adaptive_avg_pool2d";
    check_input(op, x);
    DYAD_CHECK(output.h >= 1 && output.w >= 1, op, ": output size must be >= 1, got ", size2_str(output), " (x ",
               shape_str(x.shape()), ")");
    Pool2dShape s;
    s.n = x.size(0), s.c = x.size(1), s.h = x.size(2), s.w = x.size(3);
    s.p = output.h, s.q = output.w;
    s.channels_last = x.memory_format() == MemoryFormat::channels_last;
    const Tensor xc = x.contiguous(format_of(s));
    Tensor y = pool_output(s, x.dtype(), x.device());
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), adaptive_avg_pool2d_fwd, s, y.data<T>(), xc.data<T>());
    autograd::record(op, {x}, y, [s](const Tensor& dy, autograd::GradSink& g) {
        const Tensor& dx = g.grad(0);
        DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), adaptive_avg_pool2d_bwd, s, dx.data<T>(), dy.data<T>());
    });
    autograd::mark_format_aware(y);
    return y;
}

}  // namespace dyad
