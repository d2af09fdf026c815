// Index op frontends: gather, index_select (a gather whose index is broadcast along every other dim) and
// topk (whose backward is gather's: its values are x gathered at its indices). Index values are checked
// here on the CPU; on a GPU the gather kernel checks them and a bad one is thrown at the next wait.
#include "kernels/index.h"

#include <utility>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"

namespace dyad {

namespace {

void check_index(const char* op, const Tensor& x, const Tensor& index) {
    detail::check_defined(op, index, "index");
    DYAD_CHECK(index.dtype() == DType::int32 || index.dtype() == DType::int64, op,
               ": index must be int32 or int64, got ", dtype_name(index.dtype()), " ", shape_str(index.shape()));
    DYAD_CHECK(index.device() == x.device(), op, ": x on ", x.device().str(), " but index on ", index.device().str());
}

// Every value of a CPU index (contiguous) in [0, size): else an error naming the value and its position.
// `where(k)` describes position k for the message.
template <typename Where>
void check_range(const char* op, const Tensor& index, int64_t size, int64_t dim, const Shape& x_shape, Where where) {
    if (!index.device().is_cpu()) return;
    detail::visit_dtype(index.dtype(), [&](auto t) {
        using I = decltype(t);
        const I* v = index.data<I>();
        for (int64_t k = 0, n = index.numel(); k < n; k++)
            DYAD_CHECK(int64_t(v[k]) >= 0 && int64_t(v[k]) < size, op, ": index ", int64_t(v[k]), " at position ",
                       where(k), " is out of range [0, ", size, ") for dim ", dim, " of x ", shape_str(x_shape));
    });
}

// The gather's layout: output (= index) shape `shape`, x's strides, the index's strides.
GatherShape gather_shape(const Shape& shape, const std::vector<int64_t>& x_strides,
                         const std::vector<int64_t>& index_strides, int64_t dim, int64_t x_dim_size,
                         bool index_select) {
    GatherShape s;
    s.ndim = int(shape.size());
    s.dim = int(dim);
    for (int d = 0; d < s.ndim; d++) {
        s.size[d] = shape[size_t(d)];
        s.x_stride[d] = x_strides[size_t(d)];
        s.index_stride[d] = index_strides[size_t(d)];
    }
    s.x_dim_size = x_dim_size;
    s.index_select = index_select;
    return s;
}

// out[p] = x[p with dim replaced by index[p]] over index's shape (index checked already). Backward: the
// gather_bwd kernel into x's (contiguous) gradient.
Tensor gather_impl(const char* op, bool is_select, const Tensor& x, int64_t dim, const Tensor& index) {
    const Shape& shape = index.shape();
    const GatherShape s = gather_shape(shape, x.strides(), index.strides(), dim, x.shape()[size_t(dim)], is_select);
    Tensor out = Tensor::empty(shape, x.dtype(), x.device());
    if (index.dtype() == DType::int64)
        DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), gather_fwd, out.data<T>(), x.data<T>(), index.data<int64_t>(), s);
    else
        DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), gather_fwd, out.data<T>(), x.data<T>(), index.data<int32_t>(), s);
    if (autograd::needs_grad({x})) {
        GatherShape bs = s;  // the gradient buffer is contiguous
        const std::vector<int64_t> cs = detail::contiguous_strides(x.shape());
        for (int d = 0; d < bs.ndim; d++) bs.x_stride[d] = cs[size_t(d)];
        autograd::record(op, {x}, out,
                         [bs, index](const Tensor& dy, autograd::GradSink& g) {
                             const Tensor& dx = g.grad(0);
                             if (index.dtype() == DType::int64)
                                 DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), gather_bwd, dx.data<T>(), dy.data<T>(),
                                                     index.data<int64_t>(), bs);
                             else
                                 DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), gather_bwd, dx.data<T>(), dy.data<T>(),
                                                     index.data<int32_t>(), bs);
                         },
                         {index});
    }
    return out;
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
    const char* op = "gather";
    detail::check_floating(op, x);
    check_index(op, x, index);
    DYAD_CHECK(x.dim() <= kMaxDims, op, ": x ", shape_str(x.shape()), " has more than ", kMaxDims, " dims");
    // A 0-d x (and index) is treated as one element along a dim of size 1, as PyTorch does.
    if (x.dim() == 0) {
        DYAD_CHECK(index.dim() == 0, op, ": index ", shape_str(index.shape()), " must have the 0 dims of x ()");
        detail::wrap_dim(dim, 0, op);
        return gather(x.reshape({1}), 0, index.reshape({1})).reshape({});
    }
    const int64_t d = detail::wrap_dim(dim, x.dim(), op);
    DYAD_CHECK(index.dim() == x.dim(), op, ": index ", shape_str(index.shape()), " must have as many dims as x ",
               shape_str(x.shape()));
    for (int64_t k = 0; k < x.dim(); k++)
        DYAD_CHECK(k == d || index.shape()[size_t(k)] <= x.shape()[size_t(k)], op, ": index ", shape_str(index.shape()),
                   " is larger than x ", shape_str(x.shape()), " in dim ", k, " (only dim ", d, " may differ freely)");
    // Contiguous, so that a position (in messages, CPU or GPU) is the flat row-major one.
    const Tensor idx = index.contiguous();
    const Shape& ishape = idx.shape();
    check_range(op, idx, x.shape()[size_t(d)], d, x.shape(), [&](int64_t k) {
        Shape c(ishape.size());
        for (size_t q = ishape.size(); q-- > 0;) c[q] = k % ishape[q], k /= ishape[q];
        return shape_str(c);
    });
    return gather_impl(op, false, x, d, idx);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
    const char* op = "index_select";
    detail::check_floating(op, x);
    check_index(op, x, index);
    DYAD_CHECK(index.dim() <= 1, op, ": index must be 1-D (or 0-d), got ", shape_str(index.shape()));
    DYAD_CHECK(x.dim() <= kMaxDims, op, ": x ", shape_str(x.shape()), " has more than ", kMaxDims, " dims");
    if (x.dim() == 0) {
        detail::wrap_dim(dim, 0, op);
        return index_select(x.reshape({1}), 0, index).reshape(index.dim() == 0 ? Shape{} : Shape{index.numel()});
    }
    const int64_t d = detail::wrap_dim(dim, x.dim(), op);
    const Tensor idx = index.reshape({index.numel()}).contiguous();
    check_range(op, idx, x.shape()[size_t(d)], d, x.shape(), [](int64_t k) { return k; });
    // The output is x's shape with dim d of the index's length; the index is read at (..., j, ...) for every
    // other coordinate (stride 0 there).
    Shape shape = x.shape();
    shape[size_t(d)] = idx.numel();
    std::vector<int64_t> strides(shape.size(), 0);
    strides[size_t(d)] = 1;
    const Tensor expanded = detail::make_view(idx, shape, strides, idx.offset());
    return gather_impl(op, true, x, d, expanded);
}

TopK topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
    (void)sorted;  // the result is always sorted (a valid order for sorted == false too, as in PyTorch)
    const char* op = "topk";
    detail::check_floating(op, x);
    DYAD_CHECK(x.dim() <= kMaxDims, op, ": x ", shape_str(x.shape()), " has more than ", kMaxDims, " dims");
    const int64_t nd = x.dim();
    const int64_t d = detail::wrap_dim(dim, nd, op);
    ReduceShape rs;
    for (int64_t q = 0; q < nd; q++) {
        const int64_t n = x.shape()[size_t(q)];
        (q < d ? rs.outer : q == d ? rs.reduce : rs.inner) *= n;
    }
    DYAD_CHECK(k >= 0 && k <= rs.reduce, op, ": k = ", k, " is out of range [0, ", rs.reduce, "] for dim ", dim, " of ",
               shape_str(x.shape()));
    DYAD_CHECK(nd > 0 || k == 1, op, ": k = ", k, " for a 0-d tensor (only k = 1 has a shape)");
    Shape shape = x.shape();
    if (nd > 0) shape[size_t(d)] = k;
    const Tensor xc = x.contiguous();
    TopK r;
    r.values = Tensor::empty(shape, x.dtype(), x.device());
    r.indices = Tensor::empty(shape, DType::int64, x.device());
    DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), topk_fwd, r.values.data<T>(), r.indices.data<int64_t>(), xc.data<T>(),
                        rs, k, largest);
    if (autograd::needs_grad({x})) {
        // values = gather(x, d, indices): the gather's backward, with the indices seen as (outer, k, inner).
        const Shape vshape = {rs.outer, k, rs.inner};
        const GatherShape bs = gather_shape(vshape, detail::contiguous_strides({rs.outer, rs.reduce, rs.inner}),
                                            detail::contiguous_strides(vshape), 1, rs.reduce, false);
        autograd::record(op, {x}, r.values,
                         [bs, idx = r.indices](const Tensor& dy, autograd::GradSink& g) {
                             const Tensor& dx = g.grad(0);
                             DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), gather_bwd, dx.data<T>(), dy.data<T>(),
                                                 idx.data<int64_t>(), bs);
                         },
                         {r.indices});
    }
    return r;
}

}  // namespace dyad
