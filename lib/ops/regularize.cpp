// Dropout and the finiteness checks. dropout draws one 64-bit seed from the global generator per training
// call; the mask bits are then a counter-based hash of (seed, index), the same on every backend. A training
// call inside a captured step (dyad/capture.h) throws: a graph would replay one seed.
#include <cmath>

#include "dyad/ops.h"
#include "kernels/optim.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"
#include "lib/tensor/random.h"

namespace dyad {

namespace {
// Whether `device` is recording a captured step (dyad/capture.h); false for the CPU and without CUDA.
bool cuda_capturing(Device device) {
#if DYAD_WITH_CUDA
    return device.is_cuda() && cuda::capturing(device.index);
#else
    (void)device;
    return false;
#endif
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
    detail::check_floating("dropout", x);
    DYAD_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
    if (!training || p == 0.0) return x;
    // The seed is drawn on the host and passed to the kernel: a CUDA graph would replay the seed of the
    // capture at every step, the same mask each time. Checked before the draw, so the generator is untouched.
    DYAD_CHECK(!cuda_capturing(x.device()), "dropout: cannot run in training mode inside a captured step on ",
               x.device().str(), ": it draws a new random seed on the host at each call, which a CUDA graph would ",
               "replay unchanged");
    const uint64_t seed = detail::global_generator().next();
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    Tensor mask = Tensor::empty(x.shape(), DType::uint8, x.device());
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), dropout_fwd, y.numel(), y.data<T>(), mask.data<uint8_t>(),
                             xc.data<T>(), p, seed);
    autograd::record("dropout", {x}, y, [mask, p](const Tensor& dy, autograd::GradSink& g) {
        const Tensor& dx = g.grad(0);
        DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), dropout_bwd, dx.numel(), dx.data<T>(), dy.data<T>(),
                                 mask.data<uint8_t>(), p);
    });
    return detail::in_format_of(y, x);
}

Tensor isfinite(const Tensor& x) {
    detail::check_defined("isfinite", x, "x");
    if (!is_floating(x.dtype())) return Tensor::ones(x.shape(), DType::uint8, x.device());  // integers are finite
    const Tensor xc = x.contiguous();
    Tensor out = Tensor::empty(x.shape(), DType::uint8, x.device());
    DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), isfinite_fwd, xc.numel(), out.data<uint8_t>(), xc.data<T>());
    return out;
}

bool all_finite(const Tensor& x) {
    detail::check_defined("all_finite", x, "x");
    if (!is_floating(x.dtype())) return true;
    const Tensor xc = x.contiguous();
    // DYAD_DISPATCH_FLOAT discards return values, so the same choice is spelled out here. On a GPU the
    // count comes back to the host: all_finite waits for the GPU.
    int64_t bad = 0;
    if (x.device().is_cuda()) {
        if (x.dtype() != DType::float32) detail::fail_cuda_dtype(__FILE__, __LINE__, "all_finite", x.dtype());
#if DYAD_WITH_CUDA
        cuda::use_device(x.device().index);
        bad = cuda::count_nonfinite(xc.numel(), xc.data<float>());
#else
        detail::fail_no_cuda_build(__FILE__, __LINE__, "all_finite");
#endif
    } else if (x.dtype() == DType::float64) {
        bad = naive::count_nonfinite<double>(xc.numel(), xc.data<double>());
    } else if (detail::kernel_set(x.device()) == detail::KernelSet::naive) {
        bad = naive::count_nonfinite<float>(xc.numel(), xc.data<float>());
    } else {
        bad = omp::count_nonfinite(xc.numel(), xc.data<float>());
    }
    return bad == 0;
}

}  // namespace dyad
