// Softmax, log-softmax and cross-entropy frontends. softmax along `dim` views a contiguous x as
// (outer, reduce, inner), so any dim needs no permuted copy. cross_entropy is fused: the forward keeps
// the log-sum-exp of each row and the backward is one pass, (softmax - q) / N times the incoming gradient.
#include "kernels/loss.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"

namespace dyad {

namespace {

// x seen as (outer, reduce, inner) around `dim` (negative counts from the end; a 0-d tensor accepts 0
// and -1 and is one row of one element).
ReduceShape softmax_shape(const char* op, const Tensor& x, int64_t dim) {
    const int64_t nd = x.dim();
    const int64_t d = detail::wrap_dim(dim, nd, op);
    ReduceShape rs;
    for (int64_t k = 0; k < nd; k++) {
        const int64_t n = x.shape()[size_t(k)];
        if (k < d)
            rs.outer *= n;
        else if (k == d)
            rs.reduce *= n;
        else
            rs.inner *= n;
    }
    return rs;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
    detail::check_floating("softmax", x);
    const ReduceShape rs = softmax_shape("softmax", x, dim);
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), softmax_fwd, rs, y.data<T>(), xc.data<T>());
    autograd::record("softmax", {x}, y,
                     [rs, yd = y.detach()](const Tensor& dy, autograd::GradSink& g) {
                         const Tensor& dx = g.grad(0);
                         DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), softmax_bwd, rs, dx.data<T>(), dy.data<T>(),
                                             yd.data<T>());
                     },
                     {y});
    return y;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
    detail::check_floating("log_softmax", x);
    const ReduceShape rs = softmax_shape("log_softmax", x, dim);
    const Tensor xc = x.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), log_softmax_fwd, rs, y.data<T>(), xc.data<T>());
    autograd::record("log_softmax", {x}, y,
                     [rs, yd = y.detach()](const Tensor& dy, autograd::GradSink& g) {
                         const Tensor& dx = g.grad(0);
                         DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), log_softmax_bwd, rs, dx.data<T>(), dy.data<T>(),
                                             yd.data<T>());
                     },
                     {y});
    return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
    const char* op = "cross_entropy";
    detail::check_defined(op, logits, "logits");
    detail::check_defined(op, labels, "labels");
    DYAD_CHECK(logits.dim() == 2, op, ": logits must be (N, C), got ", shape_str(logits.shape()));
    DYAD_CHECK(is_floating(logits.dtype()), op, ": logits must be float32, float64 or bfloat16, got ",
               dtype_name(logits.dtype()));
    // bfloat16 logits (a bfloat16 model's output): the loss in float32 on their exact widening, the
    // gradient rounded once into bfloat16 by the conversion's backward. The loss is float32.
    if (logits.dtype() == DType::bfloat16) return cross_entropy(logits.to(DType::float32), labels, label_smoothing);
    DYAD_CHECK(labels.dim() == 1, op, ": labels must be (N), got ", shape_str(labels.shape()));
    DYAD_CHECK(labels.dtype() == DType::int32 || labels.dtype() == DType::int64, op,
               ": labels must be int32 or int64, got ", dtype_name(labels.dtype()));
    DYAD_CHECK(logits.device() == labels.device(), op, ": logits on ", logits.device().str(), " but labels on ",
               labels.device().str());
    const int64_t n = logits.size(0), c = logits.size(1);
    DYAD_CHECK(labels.size(0) == n, op, ": logits ", shape_str(logits.shape()), " and labels ",
               shape_str(labels.shape()), " disagree on N (", n, " vs ", labels.size(0), ")");
    DYAD_CHECK(n > 0, op, ": empty batch (logits ", shape_str(logits.shape()), ")");
    DYAD_CHECK(c > 0, op, ": no classes (logits ", shape_str(logits.shape()), ")");
    DYAD_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
               label_smoothing);
    const Tensor lab_dev = labels.contiguous();
    // On the CPU the labels are checked here. On a GPU the kernel checks them, and a bad label is thrown
    // at the next synchronisation (reading them back here would make every step wait for the GPU).
    if (labels.device().is_cpu()) {
        detail::visit_dtype(labels.dtype(), [&](auto l) {
            using L = decltype(l);
            const L* lv = lab_dev.data<L>();
            for (int64_t i = 0; i < n; i++)
                DYAD_CHECK(int64_t(lv[i]) >= 0 && int64_t(lv[i]) < c, op, ": label ", int64_t(lv[i]), " at index ", i,
                           " is out of range [0, ", c, ") for ", c, " classes");
        });
    }
    const bool wide = labels.dtype() == DType::int64;
    const Tensor xc = logits.contiguous();
    Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
    Tensor lse = Tensor::empty({n}, logits.dtype(), logits.device());
    if (wide)
        DYAD_DISPATCH_FLOAT(logits.device(), logits.dtype(), cross_entropy_fwd, n, c, loss.data<T>(), lse.data<T>(),
                            xc.data<T>(), lab_dev.data<int64_t>(), T(label_smoothing));
    else
        DYAD_DISPATCH_FLOAT(logits.device(), logits.dtype(), cross_entropy_fwd, n, c, loss.data<T>(), lse.data<T>(),
                            xc.data<T>(), lab_dev.data<int32_t>(), T(label_smoothing));
    autograd::record(
        op, {logits}, loss,
        [n, c, xd = xc.detach(), lse, lab_dev, wide, label_smoothing](const Tensor& dy, autograd::GradSink& g) {
            const Tensor& dx = g.grad(0);
            if (wide)
                DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), cross_entropy_bwd, n, c, dx.data<T>(), dy.data<T>(),
                                    xd.data<T>(), lse.data<T>(), lab_dev.data<int64_t>(), T(label_smoothing));
            else
                DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), cross_entropy_bwd, n, c, dx.data<T>(), dy.data<T>(),
                                    xd.data<T>(), lse.data<T>(), lab_dev.data<int32_t>(), T(label_smoothing));
        },
        {xc});
    return loss;
}

}  // namespace dyad
