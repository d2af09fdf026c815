// View ops: new shape/strides/offset over the same storage, no copy. Each is differentiable: backward
// applies the same view to the input's gradient buffer and adds dy into it (expand sums instead).
#include <algorithm>
#include <functional>
#include <optional>

#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"

namespace dyad {

using detail::wrap_dim;

namespace {

struct ViewMeta {
    Shape shape;
    std::vector<int64_t> strides;
    int64_t offset;
};
using ViewFn = std::function<ViewMeta(const Tensor&)>;

// any_layout: f gives the view of a tensor in any dense layout (a permutation), so the node takes its
// gradients as they are laid out (format_aware); the other views compute their strides from dx's as if it
// were row-major, so they get row-major gradients.
Tensor apply_view(const char* name, const Tensor& x, ViewFn f, bool any_layout = false) {
    DYAD_CHECK(x.defined(), name, ": the tensor is undefined");
    const ViewMeta m = f(x);
    Tensor y = detail::make_view(x, m.shape, m.strides, m.offset);
    autograd::record(name, {x}, y, [f](const Tensor& dy, autograd::GradSink& g) {
        const Tensor& dx = g.grad(0);
        const ViewMeta dm = f(dx);
        detail::accumulate(detail::make_view(dx, dm.shape, dm.strides, dm.offset), dy);
    });
    if (any_layout) autograd::mark_format_aware(y);
    return y;
}

// Strides that let `shape` view memory laid out as (old_shape, old_strides), or nothing when the
// requested shape would need a copy. Works on runs of old dims that are contiguous with each other: every
// new dim must fall inside one such run.
std::optional<std::vector<int64_t>> view_strides(const Shape& old_shape, const std::vector<int64_t>& old_strides,
                                                 const Shape& shape) {
    std::vector<int64_t> st(shape.size(), 1);
    if (shape_numel(old_shape) == 0 || old_shape.empty()) return detail::contiguous_strides(shape);
    int64_t nd = int64_t(shape.size()) - 1;
    int64_t run_stride = old_strides.back(), run_numel = 1, view_numel = 1;
    for (int64_t od = int64_t(old_shape.size()) - 1; od >= 0; od--) {
        run_numel *= old_shape[size_t(od)];
        const bool run_ends =
            od == 0 || (old_shape[size_t(od - 1)] != 1 && old_strides[size_t(od - 1)] != run_numel * run_stride);
        if (!run_ends) continue;
        while (nd >= 0 && (view_numel < run_numel || shape[size_t(nd)] == 1)) {
            st[size_t(nd)] = view_numel * run_stride;
            view_numel *= shape[size_t(nd)];
            nd--;
        }
        if (view_numel != run_numel) return std::nullopt;
        if (od > 0) run_stride = old_strides[size_t(od - 1)], run_numel = 1, view_numel = 1;
    }
    if (nd != -1) return std::nullopt;
    return st;
}

// Resolves one -1 in `shape` against numel; checks the element count.
Shape infer_shape(const char* op, const Shape& in, const Shape& shape) {
    Shape out = shape;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < out.size(); i++) {
        if (out[i] == -1) {
            DYAD_CHECK(infer < 0, op, ": only one dim can be -1 in ", shape_str(shape));
            infer = int64_t(i);
        } else {
            DYAD_CHECK(out[i] >= 0, op, ": negative size in ", shape_str(shape));
            known *= out[i];
        }
    }
    const int64_t n = shape_numel(in);
    if (infer >= 0) {
        DYAD_CHECK(known != 0 && n % known == 0, op, ": cannot view ", shape_str(in), " (", n, " elements) as ",
                   shape_str(shape));
        out[size_t(infer)] = n / known;
    }
    DYAD_CHECK(shape_numel(out) == n, op, ": cannot view ", shape_str(in), " (", n, " elements) as ", shape_str(shape),
               " (", shape_numel(out), " elements)");
    return out;
}

}  // namespace

Tensor Tensor::view(const Shape& shape) const {
    DYAD_CHECK(defined(), "view: the tensor is undefined");
    const Shape target = infer_shape("view", this->shape(), shape);
    DYAD_CHECK(view_strides(this->shape(), strides(), target).has_value(), "view: ", shape_str(this->shape()),
               " with strides ", shape_str(strides()), " cannot be viewed as ", shape_str(target),
               " without a copy; use reshape()");
    return apply_view("view", *this, [target](const Tensor& t) {
        return ViewMeta{target, *view_strides(t.shape(), t.strides(), target), t.offset()};
    });
}

Tensor Tensor::reshape(const Shape& shape) const {
    DYAD_CHECK(defined(), "reshape: the tensor is undefined");
    const Shape target = infer_shape("reshape", this->shape(), shape);
    if (view_strides(this->shape(), strides(), target)) return view(target);
    return contiguous().view(target);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
    const int64_t nd = dim();
    if (nd == 0) return reshape({1});
    const int64_t s = wrap_dim(start_dim, nd, "flatten"), e = wrap_dim(end_dim, nd, "flatten");
    DYAD_CHECK(s <= e, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim, " for ", shape_str(shape()));
    Shape out;
    for (int64_t d = 0; d < s; d++) out.push_back(shape()[size_t(d)]);
    int64_t n = 1;
    for (int64_t d = s; d <= e; d++) n *= shape()[size_t(d)];
    out.push_back(n);
    for (int64_t d = e + 1; d < nd; d++) out.push_back(shape()[size_t(d)]);
    return reshape(out);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
    DYAD_CHECK(defined(), "permute: the tensor is undefined");
    const int64_t nd = dim();
    DYAD_CHECK(int64_t(dims.size()) == nd, "permute: ", dims.size(), " dims given for a tensor with ", nd, " dims ",
               shape_str(shape()));
    std::vector<int64_t> p(dims.size());
    std::vector<bool> seen(static_cast<size_t>(nd), false);
    for (size_t i = 0; i < dims.size(); i++) {
        p[i] = wrap_dim(dims[i], nd, "permute");
        DYAD_CHECK(!seen[size_t(p[i])], "permute: dim ", dims[i], " appears twice in ", shape_str(dims));
        seen[size_t(p[i])] = true;
    }
    return apply_view(
        "permute", *this,
        [p](const Tensor& t) {
            ViewMeta m{Shape(p.size()), std::vector<int64_t>(p.size()), t.offset()};
            for (size_t i = 0; i < p.size(); i++) {
                m.shape[i] = t.shape()[size_t(p[i])];
                m.strides[i] = t.strides()[size_t(p[i])];
            }
            return m;
        },
        /*any_layout=*/true);
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
    DYAD_CHECK(defined(), "transpose: the tensor is undefined");
    const int64_t nd = dim();
    std::vector<int64_t> p(static_cast<size_t>(nd));
    for (int64_t i = 0; i < nd; i++) p[size_t(i)] = i;
    if (nd == 0) return permute({});
    std::swap(p[size_t(wrap_dim(dim0, nd, "transpose"))], p[size_t(wrap_dim(dim1, nd, "transpose"))]);
    return permute(p);
}

Tensor Tensor::t() const {
    DYAD_CHECK(defined() && dim() == 2, "t(): needs a 2-D tensor, got ", defined() ? shape_str(shape()) : "undefined");
    return transpose(0, 1);
}

Tensor Tensor::slice(int64_t dim_, int64_t start, int64_t end, int64_t step) const {
    DYAD_CHECK(defined(), "slice: the tensor is undefined");
    const int64_t d = wrap_dim(dim_, dim(), "slice");
    DYAD_CHECK(step >= 1, "slice: step must be >= 1, got ", step);
    const int64_t n = shape()[size_t(d)];
    // Python-like: negative bounds count from the end, out-of-range bounds are clamped.
    auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
    const int64_t lo = clampi(start), hi = std::max(lo, clampi(end));
    const int64_t len = (hi - lo + step - 1) / step;
    return apply_view("slice", *this, [d, lo, len, step](const Tensor& t) {
        ViewMeta m{t.shape(), t.strides(), t.offset() + lo * t.strides()[size_t(d)]};
        m.shape[size_t(d)] = len;
        m.strides[size_t(d)] *= step;
        return m;
    });
}

Tensor Tensor::select(int64_t dim_, int64_t index) const {
    DYAD_CHECK(defined(), "select: the tensor is undefined");
    const int64_t d = wrap_dim(dim_, dim(), "select");
    const int64_t n = shape()[size_t(d)];
    DYAD_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dim ", dim_, " of size ", n,
               " in ", shape_str(shape()));
    const int64_t i = index < 0 ? index + n : index;
    return apply_view("select", *this, [d, i](const Tensor& t) {
        ViewMeta m{t.shape(), t.strides(), t.offset() + i * t.strides()[size_t(d)]};
        m.shape.erase(m.shape.begin() + d);
        m.strides.erase(m.strides.begin() + d);
        return m;
    });
}

Tensor Tensor::squeeze() const {
    DYAD_CHECK(defined(), "squeeze: the tensor is undefined");
    return apply_view("squeeze", *this, [](const Tensor& t) {
        ViewMeta m{{}, {}, t.offset()};
        for (size_t i = 0; i < t.shape().size(); i++)
            if (t.shape()[i] != 1) m.shape.push_back(t.shape()[i]), m.strides.push_back(t.strides()[i]);
        return m;
    });
}

Tensor Tensor::squeeze(int64_t dim_) const {
    DYAD_CHECK(defined(), "squeeze: the tensor is undefined");
    const int64_t d = wrap_dim(dim_, dim(), "squeeze");
    DYAD_CHECK(shape()[size_t(d)] == 1, "squeeze: dim ", dim_, " of ", shape_str(shape()), " has size ",
               shape()[size_t(d)], ", not 1");
    return apply_view("squeeze", *this, [d](const Tensor& t) {
        ViewMeta m{t.shape(), t.strides(), t.offset()};
        m.shape.erase(m.shape.begin() + d);
        m.strides.erase(m.strides.begin() + d);
        return m;
    });
}

Tensor Tensor::unsqueeze(int64_t dim_) const {
    DYAD_CHECK(defined(), "unsqueeze: the tensor is undefined");
    const int64_t d = wrap_dim(dim_, dim() + 1, "unsqueeze");
    return apply_view("unsqueeze", *this, [d](const Tensor& t) {
        ViewMeta m{t.shape(), t.strides(), t.offset()};
        const int64_t st = d < int64_t(t.shape().size()) ? t.strides()[size_t(d)] * t.shape()[size_t(d)] : 1;
        m.shape.insert(m.shape.begin() + d, 1);
        m.strides.insert(m.strides.begin() + d, st);
        return m;
    });
}

Tensor Tensor::expand(const Shape& shape) const {
    DYAD_CHECK(defined(), "expand: the tensor is undefined");
    DYAD_CHECK(shape.size() >= this->shape().size() && broadcast_shapes(this->shape(), shape, "expand") == shape,
               "expand: ", shape_str(this->shape()), " cannot be expanded to ", shape_str(shape));
    Tensor y = detail::make_view(*this, shape, detail::broadcast_strides(*this, shape), offset());
    autograd::record("expand", {*this}, y, [in = this->shape()](const Tensor& dy, autograd::GradSink& g) {
        detail::accumulate(g.grad(0), detail::sum_to(dy, in));
    });
    return y;
}

// ---------------------------------------------------------------------------- cat, stack
// A composition of existing kernels: each input is copied (the strided copy kernel, converting nothing)
// into its slice of the output, and backward adds the matching slice of dy into each input's gradient
// (the add kernel through a view). A dedicated kernel would do the same passes over memory.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
    const char* op = "cat";
    DYAD_CHECK(!tensors.empty(), op, ": needs at least one tensor");
    const Tensor& first = tensors[0];
    for (size_t i = 0; i < tensors.size(); i++) DYAD_CHECK(tensors[i].defined(), op, ": tensor ", i, " is undefined");
    DYAD_CHECK(first.dim() >= 1, op, ": tensor 0 is 0-d (shape ()); cat joins tensors along an existing dim");
    const int64_t nd = first.dim();
    const int64_t d = wrap_dim(dim, nd, op);
    Shape out_shape = first.shape();
    out_shape[size_t(d)] = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
        const Tensor& t = tensors[i];
        DYAD_CHECK(t.dtype() == first.dtype(), op, ": tensor ", i, " is ", dtype_name(t.dtype()), " but tensor 0 is ",
                   dtype_name(first.dtype()));
        DYAD_CHECK(t.device() == first.device(), op, ": tensor ", i, " is on ", t.device().str(),
                   " but tensor 0 is on ", first.device().str());
        DYAD_CHECK(t.dim() == nd, op, ": tensor ", i, " has shape ", shape_str(t.shape()), " but tensor 0 has ",
                   shape_str(first.shape()), " (", t.dim(), " vs ", nd, " dims)");
        for (int64_t k = 0; k < nd; k++)
            DYAD_CHECK(k == d || t.shape()[size_t(k)] == first.shape()[size_t(k)], op, ": tensor ", i, " has shape ",
                       shape_str(t.shape()), " but tensor 0 has ", shape_str(first.shape()),
                       ": they must match in every dim but dim ", d, " (they differ in dim ", k, ")");
        out_shape[size_t(d)] += t.shape()[size_t(d)];
    }
    Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
    // Input i fills out[..., offsets[i] : offsets[i] + size_i, ...] along d.
    std::vector<int64_t> offsets(tensors.size());
    int64_t offset = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
        const Tensor& t = tensors[i];
        offsets[i] = offset;
        Shape part = out_shape;
        part[size_t(d)] = t.shape()[size_t(d)];
        detail::copy_into(detail::make_view(out, part, out.strides(), offset * out.strides()[size_t(d)]), t);
        offset += t.shape()[size_t(d)];
    }
    if (is_floating(first.dtype())) {
        autograd::record(op, tensors, out, [d, offsets](const Tensor& dy, autograd::GradSink& g) {
            for (size_t i = 0; i < offsets.size(); i++) {
                if (!g.needs(i)) continue;
                const Tensor& dx = g.grad(i);
                detail::accumulate(dx, detail::make_view(dy, dx.shape(), dy.strides(),
                                                         dy.offset() + offsets[i] * dy.strides()[size_t(d)]));
            }
        });
    }
    return out;
}

// unsqueeze (a differentiable view) then cat: the gradient flows back through both.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
    const char* op = "stack";
    DYAD_CHECK(!tensors.empty(), op, ": needs at least one tensor");
    for (size_t i = 0; i < tensors.size(); i++) {
        DYAD_CHECK(tensors[i].defined(), op, ": tensor ", i, " is undefined");
        DYAD_CHECK(tensors[i].shape() == tensors[0].shape(), op, ": tensor ", i, " has shape ",
                   shape_str(tensors[i].shape()), " but tensor 0 has ", shape_str(tensors[0].shape()),
                   " (stack needs equal shapes)");
    }
    const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, op);
    std::vector<Tensor> parts;
    parts.reserve(tensors.size());
    for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(d));
    return cat(parts, d);
}

Tensor reshape(const Tensor& x, const Shape& shape) { return x.reshape(shape); }
Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) { return x.flatten(start_dim, end_dim); }
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) { return x.transpose(dim0, dim1); }
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) { return x.permute(dims); }
Tensor squeeze(const Tensor& x, int64_t dim) { return x.squeeze(dim); }
Tensor unsqueeze(const Tensor& x, int64_t dim) { return x.unsqueeze(dim); }

}  // namespace dyad
