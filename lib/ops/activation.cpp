// Activation op frontends.
#include "kernels/activation.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

Tensor relu(const Tensor& x) {
    detail::check_floating("relu", x);
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), relu_fwd, y.data<T>(), xc.data<T>(), y.numel());
    autograd::record("relu", {x}, y,
                     [xd = xc.detach()](const Tensor& dy, autograd::GradSink& g) {
                         const Tensor& dx = g.grad(0);
                         DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), relu_bwd, dx.data<T>(), dy.data<T>(),
                                             xd.data<T>(), dx.numel());
                     },
                     {xc});
    return detail::in_format_of(y, x);
}

}  // namespace dyad
