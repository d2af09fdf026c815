// Activation op frontends.
#include "kernels/activation.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

Tensor relu(const Tensor& x) {
    detail::check_floating("relu", x);
    // The kernels are flat: x, y and their gradients share one dense layout (channels_last stays so).
    const MemoryFormat f = x.memory_format();
    const Tensor xc = x.contiguous(f);
    Tensor y = detail::empty_in(x.shape(), x.dtype(), x.device(), f);
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), relu_fwd, y.data<T>(), xc.data<T>(), y.numel());
    autograd::record("relu", {x}, y,
                     [xd = xc.detach(), f](const Tensor& dy, autograd::GradSink& g) {
                         const Tensor& dx = g.grad(0);
                         const Tensor dyc = dy.contiguous(f);
                         DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), relu_bwd, dx.data<T>(), dyc.data<T>(),
                                                  xd.data<T>(), dx.numel());
                     },
                     {xc});
    autograd::mark_format_aware(y);
    return y;
}

}  // namespace dyad
