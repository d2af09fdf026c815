// Helpers shared by the op frontends.
#include "lib/ops/common.h"

#include <algorithm>
#include <numeric>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "kernels/elementwise.h"
#include "lib/dispatch.h"
#include "lib/tensor/impl.h"

namespace dyad {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; i++) {
        const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        DYAD_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                   " do not broadcast (dim ", i, ": ", da, " vs ", db, ")");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

namespace detail {

StridedShape make_strided(const Shape& shape, std::initializer_list<std::vector<int64_t>> strides, const char* op) {
    const int nops = int(strides.size());
    DYAD_ASSERT(nops >= 1 && nops <= 3);
    std::vector<const std::vector<int64_t>*> st;
    for (const auto& s : strides) st.push_back(&s);
    // Visit the dims in the order of the first operand's (the output's) strides, largest first, so that the
    // innermost loop walks its memory with the smallest step: a row-major output keeps the shape's order, a
    // channels_last one (strides H*W*C, 1, W*C, C) is walked N, H, W, C, one run when the inputs share its
    // layout. Every element is computed on its own, so the order changes no result. Ties keep the order.
    std::vector<size_t> order(shape.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return (*st[0])[a] > (*st[0])[b]; });
    // Keep dims of size != 1, merging each into the previous kept dim when every operand steps across
    // the pair as one run (outer stride == inner stride * inner size).
    StridedShape out;
    std::vector<int64_t> size;
    std::vector<std::vector<int64_t>> ks;
    ks.resize(size_t(nops));
    for (const size_t d : order) {
        if (shape[d] == 1) continue;
        bool merge = !size.empty();
        for (int o = 0; o < nops && merge; o++) merge = (*st[size_t(o)])[d] * shape[d] == ks[size_t(o)].back();
        if (merge) {
            size.back() *= shape[d];
            for (int o = 0; o < nops; o++) ks[size_t(o)].back() = (*st[size_t(o)])[d];
        } else {
            size.push_back(shape[d]);
            for (int o = 0; o < nops; o++) ks[size_t(o)].push_back((*st[size_t(o)])[d]);
        }
    }
    if (size.empty()) {  // a single element (or an empty shape): one dim of size numel
        size.push_back(shape_numel(shape));
        for (int o = 0; o < nops; o++) ks[size_t(o)].push_back(1);
    }
    DYAD_CHECK(size.size() <= size_t(kMaxDims), op, ": shape ", shape_str(shape), " needs ", size.size(),
               " non-mergeable dims; kernels take at most ", kMaxDims);
    out.ndim = int(size.size());
    for (int d = 0; d < out.ndim; d++) {
        out.size[d] = size[size_t(d)];
        for (int o = 0; o < nops; o++) out.stride[o][d] = ks[size_t(o)][size_t(d)];
    }
    return out;
}

std::vector<int64_t> broadcast_strides(const Tensor& t, const Shape& shape) {
    const size_t n = shape.size(), m = t.shape().size();
    DYAD_ASSERT(m <= n);
    std::vector<int64_t> st(n, 0);
    for (size_t i = 0; i < m; i++) {
        const size_t d = n - m + i;
        st[d] = t.shape()[i] == 1 && shape[d] != 1 ? 0 : t.strides()[i];
    }
    return st;
}

void check_defined(const char* op, const Tensor& t, const char* arg) {
    DYAD_CHECK(t.defined(), op, ": argument ", arg, " is an undefined tensor");
}

void check_floating(const char* op, const Tensor& t) {
    check_defined(op, t, "x");
    DYAD_CHECK(is_floating(t.dtype()), op, ": needs a float32 or float64 tensor, got ", dtype_name(t.dtype()), " ",
               shape_str(t.shape()));
}

void check_same(const char* op, const Tensor& a, const Tensor& b) {
    check_defined(op, a, "a");
    check_defined(op, b, "b");
    DYAD_CHECK(a.device() == b.device(), op, ": tensors are on different devices (", a.device().str(), " ",
               shape_str(a.shape()), " vs ", b.device().str(), " ", shape_str(b.shape()), ")");
    DYAD_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ (", dtype_name(a.dtype()), " ", shape_str(a.shape()),
               " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()), ")");
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
    if (g.shape() == shape) return g;
    // Reduce the leading dims g has in excess, and the dims where shape has 1 but g does not.
    const size_t lead = g.shape().size() - shape.size();
    std::vector<int64_t> dims;
    for (size_t d = 0; d < g.shape().size(); d++)
        if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) dims.push_back(int64_t(d));
    NoGradGuard ng;
    return sum(g, dims, /*keepdim=*/false).reshape(shape);
}

void accumulate(const Tensor& dst, const Tensor& src) {
    DYAD_ASSERT(dst.dtype() == src.dtype() && dst.device() == src.device());
    const StridedShape s =
        make_strided(dst.shape(), {dst.strides(), dst.strides(), broadcast_strides(src, dst.shape())}, "accumulate");
    // bfloat16: added in float, rounded once.
    DYAD_DISPATCH_FLOAT_BF16(dst.device(), dst.dtype(), binary_fwd, BinaryOp::add, dst.data<T>(), dst.data<T>(),
                             src.data<T>(), s);
}

Tensor empty_in(const Shape& shape, DType dtype, Device device, MemoryFormat format) {
    if (format == MemoryFormat::contiguous) return Tensor::empty(shape, dtype, device);
    DYAD_CHECK(shape.size() == 4, "channels_last needs a 4-D shape, got ", shape_str(shape));
    return Tensor::empty({shape[0], shape[2], shape[3], shape[1]}, dtype, device).permute({0, 3, 1, 2});
}

Tensor in_format_of(const Tensor& y, const Tensor& x) {
    if (y.dim() != 4 || x.memory_format() != MemoryFormat::channels_last) return y;
    return y.contiguous(MemoryFormat::channels_last);
}

}  // namespace detail
}  // namespace dyad
