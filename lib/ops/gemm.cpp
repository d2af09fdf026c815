// matmul frontend. Operands are passed to the GEMM kernel in the layout they already have: a transposed
// view becomes trans_a/trans_b instead of a copy. Gradients are GEMMs with beta = 1, accumulating straight
// into the gradient buffers.
#include "kernels/gemm.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad {

namespace {

// The logical matrix op(t) of each batch: rows x cols, stored row-major (trans false, row stride ld) or
// column-major (trans true, column stride ld); bstride is the batch stride (0: shared by every batch).
struct MatView {
    Tensor t;
    int64_t rows = 0, cols = 0, ld = 0, bstride = 0;
    bool trans = false;
};

MatView mat_view(const Tensor& x) {
    const int64_t nd = x.dim();
    MatView v;
    v.rows = x.size(-2), v.cols = x.size(-1);
    const int64_t s0 = x.strides()[size_t(nd - 2)], s1 = x.strides()[size_t(nd - 1)];
    if ((s1 == 1 || v.cols == 1) && s0 >= v.cols) {
        v.t = x, v.trans = false, v.ld = s0;
    } else if ((s0 == 1 || v.rows == 1) && s1 >= v.rows) {
        v.t = x, v.trans = true, v.ld = s1;
    } else {
        v.t = x.contiguous(), v.trans = false, v.ld = v.cols;
    }
    if (v.rows == 1 && !v.trans) v.ld = std::max<int64_t>(v.ld, v.cols);
    if (v.cols == 1 && v.trans) v.ld = std::max<int64_t>(v.ld, v.rows);
    v.bstride = (nd == 3 && x.size(0) > 1) ? v.t.strides()[0] : 0;
    return v;
}

MatView transposed(MatView v) {
    std::swap(v.rows, v.cols);
    v.trans = !v.trans;
    return v;
}

// C[b] = A[b] * B[b] + beta * C[b] for b < batch; C is contiguous with batch stride c_bstride.
void run_gemm(int64_t batch, const MatView& a, const MatView& b, double beta, const Tensor& c, int64_t c_bstride) {
    GemmShape s;
    s.batch = batch, s.m = a.rows, s.n = b.cols, s.k = a.cols;
    s.trans_a = a.trans, s.trans_b = b.trans;
    s.lda = a.ld, s.ldb = b.ld, s.ldc = b.cols;
    s.stride_a = a.bstride, s.stride_b = b.bstride, s.stride_c = c_bstride;
    DYAD_DISPATCH_FLOAT_BF16(c.device(), c.dtype(), gemm, s, C(1), a.t.data<T>(), b.t.data<T>(), C(beta), c.data<T>());
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
    detail::check_same("matmul", a, b);
    detail::check_floating("matmul", a);
    DYAD_CHECK((a.dim() == 2 || a.dim() == 3) && (b.dim() == 2 || b.dim() == 3),
               "matmul: operands must be 2-D or 3-D, got ", shape_str(a.shape()), " and ", shape_str(b.shape()));
    DYAD_CHECK(a.size(-1) == b.size(-2), "matmul: inner dims differ: a ", shape_str(a.shape()), " has ", a.size(-1),
               " columns but b ", shape_str(b.shape()), " has ", b.size(-2), " rows");
    const int64_t ba = a.dim() == 3 ? a.size(0) : 1, bb = b.dim() == 3 ? b.size(0) : 1;
    DYAD_CHECK(ba == bb || ba == 1 || bb == 1, "matmul: batch sizes differ: ", shape_str(a.shape()), " and ",
               shape_str(b.shape()));
    const int64_t batch = std::max(ba, bb);
    const bool batched = a.dim() == 3 || b.dim() == 3;
    const int64_t m = a.size(-2), n = b.size(-1);
    Tensor y = Tensor::empty(batched ? Shape{batch, m, n} : Shape{m, n}, a.dtype(), a.device());
    const MatView av = mat_view(a), bv = mat_view(b);
    run_gemm(batch, av, bv, 0.0, y, m * n);

    autograd::record("matmul", {a, b}, y,
                     [av, bv, batch, m, n](const Tensor& dy, autograd::GradSink& g) {
                         MatView dyv;
                         dyv.t = dy, dyv.rows = m, dyv.cols = n, dyv.ld = n, dyv.bstride = batch > 1 ? m * n : 0;
                         if (g.needs(0)) {
                             // dA = dY * B^T; a shared (2-D or batch-1) A sums over batches: C batch stride 0, beta 1.
                             const Tensor& da = g.grad(0);
                             run_gemm(batch, dyv, transposed(bv), 1.0, da, av.bstride ? av.rows * av.cols : 0);
                         }
                         if (g.needs(1)) {
                             const Tensor& db = g.grad(1);
                             run_gemm(batch, transposed(av), dyv, 1.0, db, bv.bstride ? bv.rows * bv.cols : 0);
                         }
                     },
                     {av.t, bv.t});
    return y;
}

}  // namespace dyad
