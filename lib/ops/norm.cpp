// batch_norm2d frontend. Training normalises with the batch statistics, which the kernel also saves for
// the backward pass, and updates the running statistics in place outside autograd. Eval normalises with
// a snapshot of the running statistics, which the backward pass then treats as constants. It runs in x's
// memory format (channels_last kernels for a channels_last x), y and the gradients in it.
#include <cmath>
#include <string>
#include <vector>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "kernels/norm.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

namespace {

constexpr const char* kOp = "batch_norm2d";

// The dtype of the parameters and statistics: x's, or float32 for a bfloat16 x (normalised in float32, as
// PyTorch's mixed precision keeps batch norm).
DType param_dtype(const Tensor& x) { return x.dtype() == DType::bfloat16 ? DType::float32 : x.dtype(); }

// A per-channel vector argument: defined ones must be on x's device, in param_dtype(x) and of shape (C).
void check_channel_vector(const Tensor& t, const char* name, const Tensor& x) {
    if (!t.defined()) return;
    DYAD_CHECK(t.device() == x.device(), kOp, ": ", name, " is on ", t.device().str(), " but x ", shape_str(x.shape()),
               " is on ", x.device().str());
    DYAD_CHECK(t.dtype() == param_dtype(x), kOp, ": ", name, " must be ", dtype_name(param_dtype(x)), " for a ",
               dtype_name(x.dtype()), " x ", shape_str(x.shape()), ", got ", dtype_name(t.dtype()));
    DYAD_CHECK(t.dim() == 1 && t.size(0) == x.size(1), kOp, ": ", name, " must have shape (", x.size(1), ") for the ",
               x.size(1), " channels of x ", shape_str(x.shape()), ", got ", shape_str(t.shape()));
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

// batch_norm2d, and with relu (CPU only) batch_norm2d_relu: the fused kernels, y saved for the mask.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps, bool relu);

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                    const Tensor& bias, bool training, double momentum, double eps) {
    return batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, false);
}

Tensor batch_norm2d_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                         const Tensor& bias, bool training, double momentum, double eps) {
    if (x.defined() && x.device().is_cuda())
        return relu(batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, false));
    return batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, true);
}

namespace {

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps, bool relu) {
    detail::check_defined(kOp, x, "x");
    detail::check_floating(kOp, x);
    DYAD_CHECK(x.dim() == 4, kOp, ": x must be 4-D (N, C, H, W), got ", shape_str(x.shape()));
    check_channel_vector(running_mean, "running_mean", x);
    check_channel_vector(running_var, "running_var", x);
    check_channel_vector(weight, "weight", x);
    check_channel_vector(bias, "bias", x);
    DYAD_CHECK(running_mean.defined() == running_var.defined(), kOp,
               ": running_mean and running_var must both be given or both be undefined (x ", shape_str(x.shape()), ")");
    BatchNormShape s;
    s.n = x.size(0), s.c = x.size(1), s.hw = x.size(2) * x.size(3);
    const MemoryFormat f = x.memory_format();
    s.channels_last = f == MemoryFormat::channels_last;
    if (training) {
        DYAD_CHECK(s.n * s.hw > 1, kOp, ": training needs more than one value per channel, got x ",
                   shape_str(x.shape()), " (N*H*W = ", s.n * s.hw, ")");
    } else {
        DYAD_CHECK(running_mean.defined(), kOp, ": eval mode (training = false) needs running_mean and running_var (x ",
                   shape_str(x.shape()), ")");
    }

    const Tensor xc = x.contiguous(f);
    const Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
    const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
    Tensor y = detail::empty_in(x.shape(), x.dtype(), x.device(), f);
    Tensor mean, invstd;  // the statistics the backward pass uses
    if (training) {
        mean = Tensor::empty({s.c}, param_dtype(x), x.device());
        invstd = Tensor::empty({s.c}, param_dtype(x), x.device());
        // The kernel updates the running statistics through raw pointers: a non-contiguous one is updated
        // in a contiguous copy, written back afterwards.
        Tensor rm, rv;
        if (running_mean.defined()) {
            rm = running_mean.is_contiguous() ? running_mean : running_mean.contiguous();
            rv = running_var.is_contiguous() ? running_var : running_var.contiguous();
        }
        if (relu)
            DYAD_DISPATCH_CPU_FLOAT_BF16(x.dtype(), batch_norm_relu_fwd_train, s, y.data<T>(), mean.data<C>(),
                                         invstd.data<C>(), ptr_or_null<C>(rm), ptr_or_null<C>(rv), xc.data<T>(),
                                         ptr_or_null<C>(wc), ptr_or_null<C>(bc), C(momentum), C(eps));
        else
            DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), batch_norm_fwd_train, s, y.data<T>(), mean.data<C>(),
                                     invstd.data<C>(), ptr_or_null<C>(rm), ptr_or_null<C>(rv), xc.data<T>(),
                                     ptr_or_null<C>(wc), ptr_or_null<C>(bc), C(momentum), C(eps));
        if (running_mean.defined()) {
            NoGradGuard ng;
            if (!rm.is_same(running_mean)) running_mean.detach().copy_(rm);
            if (!rv.is_same(running_var)) running_var.detach().copy_(rv);
        }
    } else {
        const Tensor rm = running_mean.contiguous(), rv = running_var.contiguous();
        if (relu)
            DYAD_DISPATCH_CPU_FLOAT_BF16(x.dtype(), batch_norm_relu_fwd_eval, s, y.data<T>(), xc.data<T>(),
                                         rm.data<C>(), rv.data<C>(), ptr_or_null<C>(wc), ptr_or_null<C>(bc), C(eps));
        else
            DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), batch_norm_fwd_eval, s, y.data<T>(), xc.data<T>(),
                                     rm.data<C>(), rv.data<C>(), ptr_or_null<C>(wc), ptr_or_null<C>(bc), C(eps));
        if (autograd::needs_grad({x, weight, bias})) {
            // A snapshot: the running statistics may change before backward runs.
            NoGradGuard ng;
            mean = rm.detach().clone();
            invstd = div(1.0, sqrt(add(rv.detach(), eps)));
        }
    }

    // Inputs x, then weight and bias when given: the sink's indices.
    std::vector<Tensor> inputs = {x};
    const int wi = weight.defined() ? int(inputs.size()) : -1;
    if (weight.defined()) inputs.push_back(weight);
    const int bi = bias.defined() ? int(inputs.size()) : -1;
    if (bias.defined()) inputs.push_back(bias);
    autograd::record(
        relu ? "batch_norm2d_relu" : kOp, inputs, y,
        [s, training, wi, bi, xd = xc.detach(), gd = wc.defined() ? wc.detach() : Tensor(), mean, invstd,
         yd = relu ? y.detach() : Tensor()](const Tensor& dy, autograd::GradSink& g) {
            const Tensor dx = g.needs(0) ? g.grad(0) : Tensor();
            const Tensor dw = wi >= 0 && g.needs(size_t(wi)) ? g.grad(size_t(wi)) : Tensor();
            const Tensor db = bi >= 0 && g.needs(size_t(bi)) ? g.grad(size_t(bi)) : Tensor();
            if (yd.defined())
                DYAD_DISPATCH_CPU_FLOAT_BF16(dy.dtype(), batch_norm_relu_bwd, s, training, ptr_or_null<T>(dx),
                                             ptr_or_null<C>(dw), ptr_or_null<C>(db), dy.data<T>(), yd.data<T>(),
                                             xd.data<T>(), mean.data<C>(), invstd.data<C>(), ptr_or_null<C>(gd));
            else
                DYAD_DISPATCH_FLOAT_BF16(dy.device(), dy.dtype(), batch_norm_bwd, s, training, ptr_or_null<T>(dx),
                                         ptr_or_null<C>(dw), ptr_or_null<C>(db), dy.data<T>(), xd.data<T>(),
                                         mean.data<C>(), invstd.data<C>(), ptr_or_null<C>(gd));
        },
        {xc, wc});
    autograd::mark_format_aware(y);
    return y;
}

}  // namespace

}  // namespace dyad
