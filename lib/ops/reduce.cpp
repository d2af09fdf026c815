// Reduction op frontends. Every reduction is brought to the kernels' (outer, reduce, inner) form: the
// reduced dims are moved to the middle of a contiguous copy when they are not already adjacent.
#include <algorithm>
#include <functional>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "kernels/reduce.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"

namespace dyad {

namespace {

// A reduction plan: x (permuted if needed, contiguous) seen as (outer, reduce, inner).
struct Plan {
    Tensor x;  // contiguous input, reduced dims adjacent
    ReduceShape rs;
    Shape out_shape;            // with or without kept dims
    std::vector<int64_t> perm;  // permutation applied to the input (empty: none)
};

Plan make_plan(const char* op, const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
    detail::check_floating(op, x);
    const int64_t nd = x.dim();
    for (auto& d : dims) d = detail::wrap_dim(d, nd, op);
    std::vector<int64_t> sorted = dims;
    std::sort(sorted.begin(), sorted.end());
    DYAD_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), op,
               ": dim listed twice in the dims for ", shape_str(x.shape()));
    Plan p;
    // A 0-d tensor accepts dim 0 (or -1), which wrap_dim maps to 0: give it a slot.
    std::vector<bool> red(static_cast<size_t>(std::max<int64_t>(nd, 1)), false);
    for (int64_t d : sorted) red[size_t(d)] = true;
    for (int64_t d = 0; d < nd; d++) {
        if (red[size_t(d)]) {
            if (keepdim) p.out_shape.push_back(1);
        } else {
            p.out_shape.push_back(x.shape()[size_t(d)]);
        }
    }
    const bool adjacent = sorted.empty() || sorted.back() - sorted.front() + 1 == int64_t(sorted.size());
    if (adjacent) {
        p.x = x.contiguous();
        const int64_t first = sorted.empty() ? nd : sorted.front(), last = sorted.empty() ? nd - 1 : sorted.back();
        for (int64_t d = 0; d < nd; d++) {
            const int64_t n = x.shape()[size_t(d)];
            if (d < first)
                p.rs.outer *= n;
            else if (d <= last)
                p.rs.reduce *= n;
            else
                p.rs.inner *= n;
        }
    } else {
        // Kept dims first, reduced dims last: (outer, reduce, 1).
        for (int64_t d = 0; d < nd; d++)
            if (!red[size_t(d)]) p.perm.push_back(d);
        for (int64_t d : sorted) p.perm.push_back(d);
        NoGradGuard ng;
        p.x = x.permute(p.perm).contiguous();
        for (int64_t d = 0; d < nd; d++) (red[size_t(d)] ? p.rs.reduce : p.rs.outer) *= x.shape()[size_t(d)];
    }
    return p;
}

std::vector<int64_t> all_dims(const Tensor& x) {
    std::vector<int64_t> d(static_cast<size_t>(x.dim()));
    for (int64_t i = 0; i < x.dim(); i++) d[size_t(i)] = i;
    return d;
}

// Runs a backward kernel into dx, or, when the forward permuted x, into a buffer of the permuted shape
// that is then added into dx through the inverse permutation.
void scatter_back(const Tensor& dx, const std::vector<int64_t>& perm, const Shape& permuted_shape,
                  const std::function<void(const Tensor&)>& kernel) {
    if (perm.empty()) return kernel(dx);
    Tensor tmp = Tensor::zeros(permuted_shape, dx.dtype(), dx.device());
    kernel(tmp);
    std::vector<int64_t> inv(perm.size());
    for (size_t i = 0; i < perm.size(); i++) inv[size_t(perm[i])] = int64_t(i);
    detail::accumulate(dx, tmp.permute(inv));
}

Tensor sum_impl(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool mean) {
    const Plan p = make_plan(op, x, dims, keepdim);
    DYAD_CHECK(!mean || p.rs.reduce > 0, op, ": mean over zero elements of ", shape_str(x.shape()));
    const double scale = mean ? 1.0 / double(p.rs.reduce) : 1.0;
    Tensor y = Tensor::empty(p.out_shape, x.dtype(), x.device());
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), sum_fwd, y.data<T>(), p.x.data<T>(), p.rs, C(scale));
    autograd::record(
        op, {x}, y, [rs = p.rs, perm = p.perm, pshape = p.x.shape(), scale](const Tensor& dy, autograd::GradSink& g) {
            scatter_back(g.grad(0), perm, pshape, [&](const Tensor& dx) {
                DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), sum_bwd, dx.data<T>(), dy.data<T>(), rs, C(scale));
            });
        });
    return y;
}

// max (min = false) and min: values and the index of the first extreme; backward routes dy to that index.
// bfloat16: on the widened values (exact), so the values, positions and gradients are the float32 ones.
Tensor extreme_impl(const char* op, bool min, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    if (x.defined() && x.dtype() == DType::bfloat16)
        return extreme_impl(op, min, x.to(DType::float32), dims, keepdim).to(DType::bfloat16);
    const Plan p = make_plan(op, x, dims, keepdim);
    DYAD_CHECK(p.rs.reduce > 0, op, ": reduction over zero elements of ", shape_str(x.shape()));
    DYAD_CHECK(p.rs.reduce <= INT32_MAX, op, ": reduction over ", p.rs.reduce, " elements does not fit an int32 index");
    Tensor y = Tensor::empty(p.out_shape, x.dtype(), x.device());
    Tensor idx = Tensor::empty(p.out_shape, DType::int32, x.device());
    if (min)
        DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), min_fwd, y.data<T>(), idx.data<int32_t>(), p.x.data<T>(), p.rs);
    else
        DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), max_fwd, y.data<T>(), idx.data<int32_t>(), p.x.data<T>(), p.rs);
    autograd::record(op, {x}, y,
                     [idx, rs = p.rs, perm = p.perm, pshape = p.x.shape()](const Tensor& dy, autograd::GradSink& g) {
                         scatter_back(g.grad(0), perm, pshape, [&](const Tensor& dx) {
                             DYAD_DISPATCH_FLOAT(dx.device(), dx.dtype(), max_bwd, dx.data<T>(), dy.data<T>(),
                                                 idx.data<int32_t>(), rs);
                         });
                     });
    return y;
}

// argmax (min = false) and argmin along one dim.
Tensor arg_extreme(const char* op, bool min, const Tensor& x, int64_t dim, bool keepdim) {
    detail::check_floating(op, x);
    if (x.dtype() == DType::bfloat16) return arg_extreme(op, min, x.detach().to(DType::float32), dim, keepdim);
    Plan p = make_plan(op, x.detach(), {dim}, keepdim);
    DYAD_CHECK(p.rs.reduce > 0, op, ": dim ", dim, " of ", shape_str(x.shape()), " is empty");
    DYAD_CHECK(p.rs.reduce <= INT32_MAX, op, ": dim of size ", p.rs.reduce, " does not fit an int32 index");
    Tensor idx = Tensor::empty(p.out_shape, DType::int32, x.device());
    if (min)
        DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), min_fwd, static_cast<T*>(nullptr), idx.data<int32_t>(),
                            p.x.data<T>(), p.rs);
    else
        DYAD_DISPATCH_FLOAT(x.device(), x.dtype(), max_fwd, static_cast<T*>(nullptr), idx.data<int32_t>(),
                            p.x.data<T>(), p.rs);
    return idx;
}

// Over all elements: the flat row-major index.
Tensor arg_extreme_all(const char* op, bool min, const Tensor& x) {
    detail::check_floating(op, x);
    DYAD_CHECK(x.numel() > 0, op, ": empty tensor ", shape_str(x.shape()));
    DYAD_CHECK(x.numel() <= INT32_MAX, op, ": ", x.numel(), " elements do not fit an int32 index");
    const Tensor flat = x.detach().reshape({x.numel()});
    return arg_extreme(op, min, flat, 0, false);
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_impl("sum", x, all_dims(x), false, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    return sum_impl("sum", x, dims, keepdim, false);
}
Tensor mean(const Tensor& x) { return sum_impl("mean", x, all_dims(x), false, true); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    return sum_impl("mean", x, dims, keepdim, true);
}
Tensor max(const Tensor& x) { return extreme_impl("max", false, x, all_dims(x), false); }
Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    return extreme_impl("max", false, x, dims, keepdim);
}
Tensor min(const Tensor& x) { return extreme_impl("min", true, x, all_dims(x), false); }
Tensor min(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    return extreme_impl("min", true, x, dims, keepdim);
}

Tensor argmax(const Tensor& x) { return arg_extreme_all("argmax", false, x); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return arg_extreme("argmax", false, x, dim, keepdim); }
Tensor argmin(const Tensor& x) { return arg_extreme_all("argmin", true, x); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return arg_extreme("argmin", true, x, dim, keepdim); }

}  // namespace dyad
