// linear frontend: y = x @ weight^T + bias as one GEMM. x (..., in) is viewed as a matrix (M, in); the
// weight (out, in) is read transposed by the GEMM kernel (trans_b) instead of being copied, and the bias
// is written into y first so the GEMM adds onto it (beta = 1). The backward passes are GEMMs with
// beta = 1 that accumulate straight into the gradient buffers; the bias gradient is dy's column sums.
#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "kernels/gemm.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

namespace {

// C (m, n) = op(A) * op(B) + beta * C, all contiguous except where lda/ldb say otherwise.
void gemm2d(int64_t m, int64_t n, int64_t k, const Tensor& a, bool trans_a, int64_t lda, const Tensor& b, bool trans_b,
            int64_t ldb, double beta, const Tensor& c) {
    GemmShape s;
    s.m = m, s.n = n, s.k = k;
    s.trans_a = trans_a, s.trans_b = trans_b;
    s.lda = lda, s.ldb = ldb, s.ldc = n;
    DYAD_DISPATCH_FLOAT_BF16(c.device(), c.dtype(), gemm, s, C(1), a.data<T>(), b.data<T>(), C(beta), c.data<T>());
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    detail::check_defined("linear", x, "x");
    detail::check_defined("linear", weight, "weight");
    detail::check_floating("linear", x);
    detail::check_same("linear", x, weight);
    if (bias.defined()) detail::check_same("linear", x, bias);
    DYAD_CHECK(x.dim() >= 1, "linear: x must have at least 1 dim (..., in_features), got ", shape_str(x.shape()));
    DYAD_CHECK(weight.dim() == 2, "linear: weight must be 2-D (out_features, in_features), got ",
               shape_str(weight.shape()));
    const int64_t in = weight.size(1), out = weight.size(0);
    DYAD_CHECK(x.size(-1) == in, "linear: in_features mismatch: x ", shape_str(x.shape()), " has ", x.size(-1),
               " features but weight ", shape_str(weight.shape()), " expects ", in);
    if (bias.defined())
        DYAD_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: bias must have shape (", out, ") for weight ",
                   shape_str(weight.shape()), ", got ", shape_str(bias.shape()));

    const Tensor xc = x.contiguous();
    const int64_t m = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    // The GEMM's B is W^T (in, out). A row-major weight (out, in), the usual case, is read transposed
    // (trans_b); a weight stored column-major (a transposed view of an (in, out) tensor) is W^T stored
    // row-major and is read as it is. Any other layout is copied.
    const int64_t s0 = weight.strides()[0], s1 = weight.strides()[1];
    Tensor wc = weight;
    bool w_trans = true;
    int64_t ldw = in;
    if ((s1 == 1 || in == 1) && s0 >= in) {
        ldw = s0;
    } else if ((s0 == 1 || out == 1) && s1 >= out) {
        w_trans = false, ldw = s1;
    } else {
        wc = weight.contiguous();
    }

    Shape out_shape = x.shape();
    out_shape.back() = out;
    Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
    if (bias.defined()) {
        NoGradGuard ng;
        y.view({m, out}).copy_(bias.detach().expand({m, out}));
    }
    if (m > 0 && out > 0) {
        if (in > 0)
            gemm2d(m, out, in, xc, false, in, wc, w_trans, ldw, bias.defined() ? 1.0 : 0.0, y);
        else if (!bias.defined())
            y.detach().zero_();
    }

    const bool has_bias = bias.defined();
    auto backward = [m, in, out, w_trans, ldw, has_bias, xd = xc.detach(), wd = wc.detach()](const Tensor& dy,
                                                                                             autograd::GradSink& g) {
        if (m == 0 || in == 0 || out == 0) return;
        if (g.needs(0)) {
            // dx (m, in) += dy (m, out) * W (out, in): W as stored is op(B) without a transpose when it is
            // row-major (out, in), and transposed when it is stored (in, out).
            gemm2d(m, in, out, dy, false, out, wd, !w_trans, ldw, 1.0, g.grad(0));
        }
        if (g.needs(1)) {
            // dW (out, in) += dy^T (out, m) * x (m, in).
            gemm2d(out, in, m, dy, true, out, xd, false, in, 1.0, g.grad(1));
        }
        if (has_bias && g.needs(2)) {
            NoGradGuard ng;
            detail::accumulate(g.grad(2), sum(dy.view({m, out}), {0}));
        }
    };
    if (has_bias)
        autograd::record("linear", {x, weight, bias}, y, std::move(backward), {xc, wc});
    else
        autograd::record("linear", {x, weight}, y, std::move(backward), {xc, wc});
    return y;
}

}  // namespace dyad
